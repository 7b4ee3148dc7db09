/* test_group_cli.c — group commands end to end: compare --rfx, reduce,
 * average and peb against SPM12's reference results, and their bad-input
 * cases. Runs the binary named by $DCM_BIN. */
#include "tests/test_util.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[256];
static char out[1 << 20];

static int run(const char *args)
{
    return test_dcm(args, out, sizeof out);
}

static void write_file(const char *rel, const char *text)
{
    test_write_file(tmpdir, rel, text);
}

static json_t *run_json(const char *args)
{
    if (run(args) != 0) {
        printf("\n  dcm %s failed: %s\n", args, out);
        return NULL;
    }
    json_error_t e;
    json_t *o = json_loads(out, 0, &e);
    if (!o)
        printf("\n  not JSON (%s): %.200s\n", e.text, out);
    return o;
}

static double num(json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static double max_diff_arrays(json_t *a, json_t *b)
{
    double d = 0.0;
    if (json_array_size(a) != json_array_size(b))
        return INFINITY;
    for (size_t i = 0; i < json_array_size(a); i++)
        d = fmax(d, fabs(json_number_value(json_array_get(a, i)) - json_number_value(json_array_get(b, i))));
    return d;
}

static void test_rfx_vs_spm(void)
{
    char ref[512];
    if (!test_shared_path("reference/attention/spm_bms_2models.json", ref, sizeof ref))
        return;
    json_t *r = test_load_json(ref);
    json_t *lme = json_object_get(r, "lme");
    char text[4096], *p = text;
    p += sprintf(p, "subject\tm1\tm2\n");
    for (size_t i = 0; i < json_array_size(lme); i++)
        p += sprintf(p, "s%zu\t%.17g\t%.17g\n", i, json_number_value(json_array_get(json_array_get(lme, i), 0)),
                     json_number_value(json_array_get(json_array_get(lme, i), 1)));
    write_file("lme.tsv", text);
    char args[1024];
    snprintf(args, sizeof args, "compare --rfx --lme %s/lme.tsv --json", tmpdir);
    json_t *o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    const char *keys[] = {"alpha", "exp_r", "xp", "pxp"};
    for (int k = 0; k < 4; k++) {
        double d = max_diff_arrays(json_object_get(o, keys[k]), json_object_get(r, keys[k]));
        printf("\n  %s: max |ours - SPM| %.2e", keys[k], d);
        CU_ASSERT(d < 1e-4);
    }
    double dbor = fabs(num(o, "bor") - num(r, "bor"));
    printf("\n  bor: |ours - SPM| %.2e\n", dbor);
    CU_ASSERT(dbor < 1e-4);
    json_decref(o);
    /* families: m1 alone vs m2 alone equals the model-level answer */
    snprintf(args, sizeof args, "compare --rfx --lme %s/lme.tsv --family A=m1 --family B=m2 --json", tmpdir);
    o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    json_t *fam = json_object_get(o, "families");
    CU_ASSERT_DOUBLE_EQUAL(num(json_array_get(fam, 0), "exp_r"),
                           json_number_value(json_array_get(json_object_get(r, "exp_r"), 0)), 1e-4);
    json_decref(o);
    json_decref(r);
}

/* SPM's fwd posterior, reduced with Attention on V1 -> V5 switched off */
static void test_bmr_vs_spm(void)
{
    char ref[512], post[512];
    if (!test_shared_path("reference/attention/spm_bmr_fwd_no_attention.json", ref, sizeof ref) ||
        !test_shared_path("reference/attention/spm_attention_fwd.json", post, sizeof post))
        return;
    char args[2048];
    snprintf(args, sizeof args, "reduce %s --off 'B:Attention:V1->V5' --json", post);
    json_t *o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    json_t *r = test_load_json(ref);
    double dF = num(o, "dF"), dF_spm = num(r, "dF");
    json_t *v = json_object_get(o, "vector");
    double dE = max_diff_arrays(json_object_get(v, "posterior_mean"), json_object_get(r, "sE"));
    double dV = max_diff_arrays(json_object_get(v, "posterior_var"), json_object_get(r, "sC_diag"));
    printf("\n  dF %.6f (SPM %.6f), max |dE| %.2e, max |dVar| %.2e\n", dF, dF_spm, dE, dV);
    CU_ASSERT(fabs(dF - dF_spm) < 1e-6);
    CU_ASSERT(dE < 1e-6);
    CU_ASSERT(dV < 1e-6);
    json_decref(o);
    json_decref(r);
}

/* SPM's twelve subject posteriors in the dcm batch layout */
static int write_peb_group(void)
{
    char ref[512], fwd[512];
    if (!test_shared_path("reference/group/spm_peb_group.json", ref, sizeof ref) ||
        !test_shared_path("reference/attention/spm_attention_fwd.json", fwd, sizeof fwd))
        return 0;
    json_t *r = test_load_json(ref), *f = test_load_json(fwd);
    char path[1024];
    snprintf(path, sizeof path, "%s/peb", tmpdir);
    mkdir(path, 0755);
    json_t *subs = json_object_get(r, "subjects"), *design = json_object_get(r, "design");
    char dtext[4096], *p = dtext;
    p += sprintf(p, "subject\tintercept\tgroup\n");
    for (size_t i = 0; i < json_array_size(subs); i++) {
        json_t *s = json_array_get(subs, i);
        const char *name = json_string_value(json_object_get(s, "subject"));
        json_t *row = json_array_get(design, i);
        p += sprintf(p, "%s\t%.17g\t%.17g\n", name, json_number_value(json_array_get(row, 0)),
                     json_number_value(json_array_get(row, 1)));
        snprintf(path, sizeof path, "%s/peb/%s", tmpdir, name);
        mkdir(path, 0755);
        json_t *res = json_object();
        json_object_set(res, "model", json_object_get(f, "model"));
        json_object_set(res, "free_energy", json_object_get(s, "F"));
        json_t *vec = json_object();
        json_object_set(vec, "prior_mean", json_object_get(r, "prior_mean"));
        json_object_set(vec, "prior_var", json_object_get(r, "prior_var"));
        json_object_set(vec, "posterior_mean", json_object_get(s, "posterior_mean"));
        json_object_set(vec, "posterior_cov", json_object_get(s, "posterior_cov"));
        json_object_set_new(res, "vector", vec);
        snprintf(path, sizeof path, "%s/peb/%s/fwd.json", tmpdir, name);
        json_dump_file(res, path, JSON_REAL_PRECISION(17));
        json_decref(res);
    }
    write_file("design.tsv", dtext);
    json_decref(r);
    json_decref(f);
    return 1;
}

static void test_peb_vs_spm(void)
{
    if (!write_peb_group())
        return;
    char ref[512];
    test_shared_path("reference/group/spm_peb_group.json", ref, sizeof ref);
    json_t *r = test_load_json(ref), *peb = json_object_get(r, "peb");
    char args[2048];
    snprintf(args, sizeof args, "peb %s/peb --model fwd --design %s/design.tsv --params 'B:*' --json",
             tmpdir, tmpdir);
    json_t *o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    double dF = fabs(num(o, "free_energy") - num(peb, "F"));
    /* effects are listed parameter-fastest within each covariate */
    json_t *eff = json_object_get(o, "effects"), *Ep = json_object_get(peb, "Ep");
    double dEp = 0.0;
    for (int j = 0; j < 2; j++)
        for (int q = 0; q < 2; q++)
            dEp = fmax(dEp, fabs(num(json_array_get(eff, (size_t)(q + 2 * j)), "mean") -
                                 json_number_value(json_array_get(json_array_get(Ep, (size_t)q), (size_t)j))));
    const char *name = json_string_value(json_object_get(json_array_get(eff, 3), "parameter"));
    printf("\n  PEB: |dF| %.2e, max |dEp| %.2e; group effect on %s %.4f (SPM %.4f)\n", dF, dEp, name,
           num(json_array_get(eff, 3), "mean"), num(peb, "group_effect_B_Attention_V1toV5"));
    CU_ASSERT(dF < 0.1);
    CU_ASSERT(dEp < 1e-3);
    CU_ASSERT_STRING_EQUAL(name, "B:Attention:V1->V5");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(o, "subjects")), 12);
    json_decref(o);
    json_decref(r);
    /* a design whose subjects do not match the results */
    write_file("design_bad.tsv", "subject\tintercept\nsub-01\t1\nsub-99\t1\n");
    snprintf(args, sizeof args, "peb %s/peb --model fwd --design %s/design_bad.tsv --params 'B:*'",
             tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "sub-0"));
    snprintf(args, sizeof args, "peb %s/peb --model fwd --design %s/design.tsv --params 'B:Atention:*'",
             tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Atention"));
}

static void test_average(void)
{
    char post[512];
    if (!test_shared_path("reference/attention/spm_attention_fwd.json", post, sizeof post))
        return;
    char bwd[512];
    test_shared_path("reference/attention/spm_attention_bwd.json", bwd, sizeof bwd);
    char args[2048];
    snprintf(args, sizeof args, "average %s %s --json", post, bwd);
    json_t *o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    json_t *m = json_object_get(o, "models");
    double w1 = num(json_array_get(m, 0), "weight"), w2 = num(json_array_get(m, 1), "weight");
    /* weights are the posterior model probabilities: log ratio = 24.71 */
    printf("\n  BMA weights %.3e / %.3e, log ratio %.3f\n", w1, w2, log(w1 / w2));
    CU_ASSERT_DOUBLE_EQUAL(log(w1 / w2), 24.7107, 1e-3);
    json_decref(o);
}

static void test_bad_inputs(void)
{
    char args[2048];
    write_file("lme_nan.tsv", "subject\tm1\tm2\ns1\t-10\tNaN\ns2\t-11\t-12\n");
    snprintf(args, sizeof args, "compare --rfx --lme %s/lme_nan.tsv", tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "line 2"));
    write_file("lme_ragged.tsv", "subject\tm1\tm2\ns1\t-10\t-9\ns2\t-11\n");
    snprintf(args, sizeof args, "compare --rfx --lme %s/lme_ragged.tsv", tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "line 3"));
    write_file("lme_dup.tsv", "subject\tm1\tm2\ns1\t-10\t-9\ns1\t-11\t-8\n");
    snprintf(args, sizeof args, "compare --rfx --lme %s/lme_dup.tsv", tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "twice"));
    char post[512];
    if (test_shared_path("reference/attention/spm_attention_fwd.json", post, sizeof post)) {
        snprintf(args, sizeof args, "reduce %s --off 'B:Attention:V1->MT'", post);
        CU_ASSERT_EQUAL(run(args), 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "MT"));
        snprintf(args, sizeof args, "reduce %s --off 'Q:V1->V5'", post);
        CU_ASSERT_EQUAL(run(args), 2);
        snprintf(args, sizeof args, "reduce %s --off 'B:Photic:V1->V5'", post);
        CU_ASSERT_EQUAL(run(args), 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "already switched off"));
    }
    CU_ASSERT_EQUAL(run("compare --rfx a.json b.json"), 1);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dcm-group-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    static const test_case cases[] = {
        {"compare --rfx reproduces spm_BMS", test_rfx_vs_spm},
        {"reduce reproduces spm_log_evidence_reduce", test_bmr_vs_spm},
        {"peb reproduces spm_dcm_peb on SPM's subject posteriors", test_peb_vs_spm},
        {"average weights models by their evidence", test_average},
        {"bad tables and parameter names: exit 2", test_bad_inputs},
        {NULL, NULL}};
    int rc = test_run("group commands", cases);
    if (test_remove_dir(tmpdir))
        rc = 1;
    return rc;
}
