/* test_group_cli.c — group commands end to end: compare --rfx, reduce,
 * average and peb against SPM12's reference results, and their bad-input
 * cases. Runs the binary named by $DCM_BIN. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <limits.h>
#include <stdlib.h>

#include "tests/test_util.h"

#include "io/io_pnames.h"
#include "io/io_result.h"

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
    snprintf(args, sizeof args, "peb %s/peb --model fwd --design %s/design.tsv --params 'B:*' --q all --json",
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
        /* a reduce output given to compare is named as such, with what to do */
        snprintf(args, sizeof args, "reduce %s --off 'B:Attention:V1->V5' -o %s/red_out.json", post,
                 tmpdir);
        CU_ASSERT_EQUAL(run(args), 0);
        snprintf(args, sizeof args, "compare %s %s/red_out.json", post, tmpdir);
        CU_ASSERT_EQUAL(run(args), 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "is the output of `dcm reduce`, not a fitted model"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "--lme"));
    }
    CU_ASSERT_EQUAL(run("compare --rfx a.json b.json"), 1);
}


/* ---- results meet by name ---- */

static char fit_dir[512];

/* Fit the attention model twice: as written (fwd) and with its regions
 * and inputs listed in another order (perm). 0 when the data is absent. */
static int fit_fwd_and_permuted(void)
{
    static int done = -1;
    if (done >= 0)
        return done;
    done = 0;
    char ts[512];
    if (!test_shared_path("datasets/attention/timeseries.tsv", ts, sizeof ts))
        return 0;
    char abs[PATH_MAX], d[512];
    snprintf(d, sizeof d, "%s/datasets/attention", test_shared_dir());
    if (!realpath(d, abs))
        return 0;
    char text[8192];
    snprintf(text, sizeof text,
             "{\"TR\": 3.22, \"TE\": 0.04, \"timeseries\": \"%s/timeseries.tsv\",\n"
             " \"regions\": [\"V1\", \"V5\", \"SPC\"], \"confounds\": \"%s/confounds.tsv\",\n"
             " \"events\": \"%s/events.tsv\", \"inputs\": [\"Photic\", \"Motion\", \"Attention\"],\n"
             " \"a\": [[1,1,0],[1,1,1],[0,1,1]],\n"
             " \"b\": {\"Motion\": [[0,0,0],[1,0,0],[0,0,0]], \"Attention\": [[0,0,0],[1,0,0],[0,0,0]]},\n"
             " \"c\": [[1,0,0],[0,0,0],[0,0,0]], \"delays\": [1.61, 1.61, 1.61]}\n", abs, abs, abs);
    write_file("fwd_spec.json", text);
    /* the same network: regions SPC, V1, V5 and inputs Attention, Photic,
       Motion (rows and columns of a, b, c permuted to match) */
    snprintf(text, sizeof text,
             "{\"TR\": 3.22, \"TE\": 0.04, \"timeseries\": \"%s/timeseries.tsv\",\n"
             " \"regions\": [\"SPC\", \"V1\", \"V5\"], \"confounds\": \"%s/confounds.tsv\",\n"
             " \"events\": \"%s/events.tsv\", \"inputs\": [\"Attention\", \"Photic\", \"Motion\"],\n"
             " \"a\": [[1,0,1],[0,1,1],[1,1,1]],\n"
             " \"b\": {\"Motion\": [[0,0,0],[0,0,0],[0,1,0]], \"Attention\": [[0,0,0],[0,0,0],[0,1,0]]},\n"
             " \"c\": [[0,0,0],[0,1,0],[0,0,0]], \"delays\": [1.61, 1.61, 1.61]}\n", abs, abs, abs);
    write_file("perm_spec.json", text);
    char args[2048];
    snprintf(fit_dir, sizeof fit_dir, "%s", tmpdir);
    snprintf(args, sizeof args, "estimate -q %s/fwd_spec.json -o %s/fwd.json", tmpdir, tmpdir);
    if (run(args) != 0) {
        printf("\n  %s", out);
        return 0;
    }
    snprintf(args, sizeof args, "estimate -q %s/perm_spec.json -o %s/perm.json", tmpdir, tmpdir);
    if (run(args) != 0) {
        printf("\n  %s", out);
        return 0;
    }
    done = 1;
    return 1;
}

/* posterior mean of each named parameter of a result, via the loader */
static double ep_by_name(const char *path, const char *name)
{
    io_result_summary s;
    dcm_error err;
    double v = NAN;
    if (io_result_load(path, &s, &err))
        return NAN;
    io_pname_space S = io_result_space(&s);
    for (int p = 0; p < s.np; p++) {
        char *nm = io_pname_name(&S, p);
        if (nm && !strcmp(nm, name))
            v = s.Ep[p];
        free(nm);
    }
    io_result_summary_free(&s);
    return v;
}

/* largest |mean - fwd's posterior mean| over a list of {name, mean} */
static double worst_vs_fwd(json_t *params, const char *mean_key, int *count)
{
    char fwd[1024];
    snprintf(fwd, sizeof fwd, "%s/fwd.json", fit_dir);
    double d = 0.0;
    size_t i;
    json_t *e;
    *count = 0;
    json_array_foreach(params, i, e) {
        double ref = ep_by_name(fwd, json_string_value(json_object_get(e, "name")));
        d = fmax(d, isfinite(ref) ? fabs(num(e, mean_key) - ref) : INFINITY);
        (*count)++;
    }
    return d;
}

static void copy_file(const char *from, const char *to)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

static void test_average_by_name(void)
{
    if (!fit_fwd_and_permuted())
        return;
    char args[4096];
    /* the same model in two orders averages to itself, parameter by name */
    snprintf(args, sizeof args, "average %s/fwd.json %s/perm.json --json", tmpdir, tmpdir);
    json_t *o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    int n = 0;
    double d = worst_vs_fwd(json_object_get(o, "parameters"), "mean", &n);
    printf("\n  fwd + permuted fwd: %d parameters, max |BMA - fwd| %.1e", n, d);
    CU_ASSERT(d < 1e-4);
    /* only parameters some model estimates: 15 free in this network */
    CU_ASSERT_EQUAL(n, 15);
    json_decref(o);
    snprintf(args, sizeof args, "average %s/perm.json %s/fwd.json --json", tmpdir, tmpdir);
    o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    d = worst_vs_fwd(json_object_get(o, "parameters"), "mean", &n);
    CU_ASSERT(d < 1e-4);
    CU_ASSERT_EQUAL(n, 15);
    json_decref(o);

    /* a batch where the second subject's files are swapped */
    char path[1024], src[1024];
    const char *subj[] = {"s1", "s2"};
    for (int s = 0; s < 2; s++) {
        snprintf(path, sizeof path, "%s/bybatch/%s", tmpdir, subj[s]);
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
        CU_ASSERT_EQUAL(system(cmd), 0);
        snprintf(src, sizeof src, "%s/%s.json", tmpdir, s ? "perm" : "fwd");
        snprintf(path, sizeof path, "%s/bybatch/%s/m1.json", tmpdir, subj[s]);
        copy_file(src, path);
        snprintf(src, sizeof src, "%s/%s.json", tmpdir, s ? "fwd" : "perm");
        snprintf(path, sizeof path, "%s/bybatch/%s/m2.json", tmpdir, subj[s]);
        copy_file(src, path);
    }
    snprintf(args, sizeof args, "average --batch %s/bybatch --json", tmpdir);
    o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    d = worst_vs_fwd(json_object_get(o, "group"), "mean", &n);
    printf("\n  batch of permuted results: %d group parameters, max |mean - fwd| %.1e", n, d);
    CU_ASSERT(d < 1e-4);
    CU_ASSERT_EQUAL(n, 15);
    /* no parameter that no model has (A:V1->SPC is off in the network) */
    size_t gi;
    json_t *ge;
    json_array_foreach(json_object_get(o, "group"), gi, ge)
        CU_ASSERT(strcmp(json_string_value(json_object_get(ge, "name")), "A:V1->SPC") != 0);
    json_decref(o);

    /* peb: a subject whose result lists the regions in another order
       gives the same group result as one that does not */
    const char *layout[2][2] = {{"fwd", "fwd"}, {"fwd", "perm"}};
    double F[2] = {0, 0}, effect[2] = {0, 0};
    write_file("design2.tsv", "subject\tintercept\ns1\t1\ns2\t1\n");
    for (int v = 0; v < 2; v++) {
        for (int s = 0; s < 2; s++) {
            snprintf(path, sizeof path, "%s/pebp%d/%s", tmpdir, v, subj[s]);
            char cmd[1200];
            snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
            CU_ASSERT_EQUAL(system(cmd), 0);
            snprintf(src, sizeof src, "%s/%s.json", tmpdir, layout[v][s]);
            snprintf(path, sizeof path, "%s/pebp%d/%s/m.json", tmpdir, v, subj[s]);
            copy_file(src, path);
        }
        snprintf(args, sizeof args, "peb %s/pebp%d --model m --design %s/design2.tsv --params 'B:*' --json",
                 tmpdir, v, tmpdir);
        o = run_json(args);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        F[v] = num(o, "free_energy");
        json_t *e;
        size_t i;
        json_array_foreach(json_object_get(o, "effects"), i, e)
            if (!strcmp(json_string_value(json_object_get(e, "parameter")), "B:Attention:V1->V5"))
                effect[v] = num(e, "mean");
        json_decref(o);
    }
    printf("\n  peb: F %.4f vs %.4f, B:Attention:V1->V5 %.4f vs %.4f\n", F[0], F[1], effect[0], effect[1]);
    CU_ASSERT(fabs(F[0] - F[1]) < 1e-3);
    CU_ASSERT(fabs(effect[0] - effect[1]) < 1e-4);
    CU_ASSERT(fabs(effect[0]) > 0.01);
}

/* write a modified copy of fwd.json: edit(root) changes it */
static void write_variant(const char *name, void (*edit)(json_t *))
{
    char src[1024], dst[1024];
    snprintf(src, sizeof src, "%s/fwd.json", tmpdir);
    snprintf(dst, sizeof dst, "%s/%s", tmpdir, name);
    json_t *r = test_load_json(src);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    edit(r);
    CU_ASSERT_EQUAL(json_dump_file(r, dst, JSON_REAL_PRECISION(17)), 0);
    json_decref(r);
}

static void edit_region_pfc(json_t *r)
{
    json_array_set_new(json_object_get(r, "regions"), 2, json_string("PFC"));
}

static void edit_data(json_t *r)
{
    json_t *row = json_array_get(json_object_get(r, "observed_bold_scaled"), 0);
    json_array_set_new(row, 0, json_real(json_number_value(json_array_get(row, 0)) + 1.0));
}

static void edit_two_state(json_t *r)
{
    json_object_set_new(json_object_get(json_object_get(r, "model"), "options"), "two_state",
                        json_integer(1));
}

static void edit_arrow(json_t *r)
{
    json_array_set_new(json_object_get(r, "regions"), 1, json_string("V5->x"));
}

static char long_name[301];

static void edit_long(json_t *r)
{
    json_array_set_new(json_object_get(r, "regions"), 2, json_string(long_name));
}

/* 1300 regions: n^3 overflows an int */
static void edit_huge(json_t *r)
{
    json_t *names = json_array();
    char nm[32];
    for (int i = 0; i < 1300; i++) {
        snprintf(nm, sizeof nm, "r%d", i);
        json_array_append_new(names, json_string(nm));
    }
    json_object_set_new(r, "regions", names);
}

/* B and C means of 1e300: finite in the file, not once combined */
static void edit_huge_means(json_t *r)
{
    json_t *pm = json_object_get(json_object_get(r, "vector"), "posterior_mean");
    for (size_t i = 9; i < 36 && i < json_array_size(pm); i++)
        json_array_set_new(pm, i, json_real(1e300 * (1.0 + json_number_value(json_array_get(pm, i)))));
}

/* a negative posterior variance: the sd would be NaN */
static void edit_negative_variance(json_t *r)
{
    json_t *pc = json_object_get(json_object_get(r, "vector"), "posterior_cov");
    json_array_set_new(json_array_get(pc, 1), 1, json_real(-1.0));
}

static void test_results_refused(void)
{
    if (!fit_fwd_and_permuted())
        return;
    char args[4096];
    write_variant("pfc.json", edit_region_pfc);
    write_variant("otherdata.json", edit_data);
    write_variant("twostate.json", edit_two_state);
    write_variant("arrow.json", edit_arrow);
    write_variant("huge.json", edit_huge);
    /* other regions: refused, naming what differs */
    snprintf(args, sizeof args, "average %s/fwd.json %s/pfc.json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "'SPC'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "'PFC'"));
    /* other data */
    snprintf(args, sizeof args, "average %s/fwd.json %s/otherdata.json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "different data"));
    /* other kind */
    snprintf(args, sizeof args, "average %s/fwd.json %s/twostate.json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "two-state"));
    /* a name a parameter name cannot carry */
    snprintf(args, sizeof args, "average %s/fwd.json %s/arrow.json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "V5->x"));
    /* a parameter count past an int */
    snprintf(args, sizeof args, "reduce %s/huge.json --search", tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "1300 regions"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "at most"));
    /* peb: subjects with other regions or kinds are refused */
    const char *bad[] = {"pfc", "twostate"};
    const char *want[] = {"'PFC'", "two-state"};
    write_file("design2.tsv", "subject\tintercept\ns1\t1\ns2\t1\n");
    for (int b = 0; b < 2; b++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "mkdir -p %s/pebbad%d/s1 %s/pebbad%d/s2 && cp %s/fwd.json %s/pebbad%d/s1/m.json && "
                 "cp %s/%s.json %s/pebbad%d/s2/m.json", tmpdir, b, tmpdir, b, tmpdir, tmpdir, b, tmpdir,
                 bad[b], tmpdir, b);
        CU_ASSERT_EQUAL(system(cmd), 0);
        snprintf(args, sizeof args, "peb %s/pebbad%d --model m --design %s/design2.tsv --params 'B:*'",
                 tmpdir, b, tmpdir);
        CU_ASSERT_EQUAL(run(args), 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, want[b]));
    }
    /* non-finite combinations are exit 3 naming the cause, never NaN */
    write_variant("hugemeans.json", edit_huge_means);
    snprintf(args, sizeof args, "average %s/fwd.json %s/hugemeans.json --json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "is not finite"));
    CU_ASSERT_PTR_NULL(strstr(out, "nan"));
    /* a negative variance is refused at load by every command */
    write_variant("negvar.json", edit_negative_variance);
    const char *cmds[] = {"review %s/negvar.json", "average %s/fwd.json %s/negvar.json --json",
                          "reduce %s/negvar.json --search --json"};
    for (int c = 0; c < 3; c++) {
        snprintf(args, sizeof args, cmds[c], tmpdir, tmpdir);
        CU_ASSERT_EQUAL(run(args), 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"vector\".\"posterior_cov\"[1][1] is -1: a variance cannot be negative"));
        CU_ASSERT_PTR_NULL(strstr(out, "nan"));
    }
    /* reduce: the same, with the reason rather than a bare "code -2" */
    snprintf(args, sizeof args, "reduce %s/hugemeans.json --off 'B:Motion:V1->V5' --json", tmpdir);
    CU_ASSERT_EQUAL(run(args), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "model reduction failed for"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "is not finite (posterior means or covariances"));
    CU_ASSERT_PTR_NULL(strstr(out, "code -"));
    {
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "mkdir -p %s/pebhuge/s1 %s/pebhuge/s2 %s/pebhuge/s3 && cp %s/fwd.json %s/pebhuge/s1/m.json && "
                 "cp %s/perm.json %s/pebhuge/s2/m.json && cp %s/hugemeans.json %s/pebhuge/s3/m.json",
                 tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir);
        CU_ASSERT_EQUAL(system(cmd), 0);
        write_file("design3.tsv", "subject\tintercept\ns1\t1\ns2\t1\ns3\t1\n");
        snprintf(args, sizeof args, "peb %s/pebhuge --model m --design %s/design3.tsv --params 'B:*' --json",
                 tmpdir, tmpdir);
        CU_ASSERT_EQUAL(run(args), 3);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "s3/m.json"));
        CU_ASSERT_PTR_NULL(strstr(out, "{"));
    }
    /* names are whole: a 300-character region name comes back entire */
    memset(long_name, 'R', 300);
    long_name[300] = 0;
    write_variant("long1.json", edit_long);
    copy_file(strcat(strcpy(args, tmpdir), "/long1.json"), strcat(strcpy(out, tmpdir), "/long2.json"));
    snprintf(args, sizeof args, "average %s/long1.json %s/long2.json --json", tmpdir, tmpdir);
    json_t *o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    char want_name[400];
    snprintf(want_name, sizeof want_name, "A:V5->%s", long_name);
    int found = 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(o, "parameters"), i, e)
        found |= !strcmp(json_string_value(json_object_get(e, "name")), want_name);
    CU_ASSERT(found);
    json_decref(o);
    snprintf(args, sizeof args, "reduce %s/long1.json --off 'A:V5->%s' --json", tmpdir, long_name);
    o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(o, "switched_off"), 0)),
                           want_name);
    json_decref(o);
}

static void test_peb_messages(void)
{
    if (!fit_fwd_and_permuted())
        return;
    char args[4096], cmd[2048];
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/pebm/s1 %s/pebm/s2 && cp %s/fwd.json %s/pebm/s1/fwd.json && "
             "cp %s/fwd.json %s/pebm/s2/fwd.json && cp %s/perm.json %s/pebm/s2/other.json",
             tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    write_file("design2.tsv", "subject\tintercept\ns1\t1\ns2\t1\n");
    /* an unknown model: the message lists those present */
    snprintf(args, sizeof args, "peb %s/pebm --model fwdd --design %s/design2.tsv --params 'B:*'", tmpdir,
             tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "'fwdd'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "fwd, other"));
    /* bad design cells: a clean refusal (once a double free under ASan) */
    const char *designs[] = {"subject\tintercept\ns1\t1\ns2\tnan\n", "subject\tintercept\ns1\t1\ns1\t1\n",
                             "subject\tintercept\ns1\t1\ns2\t\n"};
    const char *want[] = {"'nan' is not a finite number", "appears twice", "line 3"};
    for (int d = 0; d < 3; d++) {
        write_file("design_bad2.tsv", designs[d]);
        snprintf(args, sizeof args, "peb %s/pebm --model fwd --design %s/design_bad2.tsv --params 'B:*'",
                 tmpdir, tmpdir);
        CU_ASSERT_EQUAL(run(args), 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, want[d]));
        CU_ASSERT_PTR_NULL(strstr(out, "AddressSanitizer"));
    }
}

/* non-finite numbers never pass as results */
static void test_nonfinite_compare(void)
{
    char args[2048];
    write_file("lme_big.tsv", "subject\tm1\tm2\tm3\ns1\t1e308\t-10\t-11\ns2\t1e308\t-12\t-13\n");
    snprintf(args, sizeof args, "compare --lme %s/lme_big.tsv --json", tmpdir);
    CU_ASSERT_EQUAL(run(args), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "overflows"));
    CU_ASSERT_PTR_NULL(strstr(out, "{"));
    snprintf(args, sizeof args, "compare --rfx --lme %s/lme_big.tsv --json", tmpdir);
    CU_ASSERT_EQUAL(run(args), 3);
    CU_ASSERT_PTR_NULL(strstr(out, "{"));
    CU_ASSERT_PTR_NULL(strstr(out, "nan"));
    write_file("lme_inf.tsv", "subject\tm1\tm2\ns1\t1e400\t-10\ns2\t-11\t-12\n");
    snprintf(args, sizeof args, "compare --lme %s/lme_inf.tsv --json", tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "'1e400' is not finite"));
    /* large but representable: every array has one entry per model */
    write_file("lme_large.tsv", "subject\tm1\tm2\tm3\ns1\t-1e300\t-10\t-11\ns2\t-1e300\t-12\t-13\n");
    snprintf(args, sizeof args, "compare --rfx --lme %s/lme_large.tsv --json", tmpdir);
    json_t *o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    const char *keys[] = {"alpha", "exp_r", "xp", "pxp"};
    for (int k = 0; k < 4; k++)
        CU_ASSERT_EQUAL(json_array_size(json_object_get(o, keys[k])), 3);
    CU_ASSERT(json_is_number(json_object_get(o, "bor")));
    json_decref(o);
    snprintf(args, sizeof args, "compare --lme %s/lme_large.tsv --json", tmpdir);
    o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    const char *fk[] = {"log_evidence", "log_bayes_factor", "posterior_probability"};
    for (int k = 0; k < 3; k++)
        CU_ASSERT_EQUAL(json_array_size(json_object_get(o, fk[k])), 3);
    json_decref(o);
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
        {"average and peb match parameters by name (permuted refit)", test_average_by_name},
        {"results of other regions, data, kinds or sizes are refused; names whole", test_results_refused},
        {"peb: unknown model lists the models; bad design cells", test_peb_messages},
        {"compare: non-finite results are exit 3, arrays whole", test_nonfinite_compare},
        {NULL, NULL}};
    int rc = test_run("group commands", cases);
    if (test_remove_dir(tmpdir))
        rc = 1;
    return rc;
}
