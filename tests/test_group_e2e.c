/* test_group_e2e.c — group analysis end to end with `dcm batch`:
 * - SPM's simulated group (../shared/datasets/group_sim): batch + peb give
 *   SPM's group effect on B:Attention:V1->V5 (to 0.05);
 * - recovery on a simulated group of 20 (fixed seeds): random-effects BMS
 *   picks the generating model among 3 (xp > 0.9), PEB finds the true group
 *   difference (P > 0.95) and not the null ones, and `reduce --search`
 *   switches off the connections the generating model lacks. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <limits.h>
#include <stdlib.h>

#include "tests/test_util.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NSUB 20

static char tmpdir[256];
static char out[1 << 20];

static int run(const char *args)
{
    return test_dcm(args, out, sizeof out);
}

static json_t *run_json(const char *args)
{
    int rc = run(args);
    if (rc) {
        printf("\n  dcm %s: exit %d: %.2000s\n", args, rc, out);
        return NULL;
    }
    json_error_t e;
    json_t *o = json_loads(out, 0, &e);
    if (!o)
        printf("\n  not JSON (%s): %.300s\n", e.text, out);
    return o;
}

static void write_file(const char *rel, const char *text)
{
    test_write_file(tmpdir, rel, text);
}

static json_t *effect(json_t *peb, const char *param, const char *cov)
{
    json_t *e;
    size_t i;
    json_array_foreach(json_object_get(peb, "effects"), i, e) {
        if (!strcmp(json_string_value(json_object_get(e, "parameter")), param) &&
            !strcmp(json_string_value(json_object_get(e, "covariate")), cov))
            return e;
    }
    return NULL;
}

/* ---- SPM's simulated group ---- */
static void test_group_sim_vs_spm(void)
{
    char ref[512], data[512], ev[512];
    if (!test_shared_path("reference/group/spm_peb_group.json", ref, sizeof ref) ||
        !test_shared_path("datasets/group_sim/design.tsv", data, sizeof data) ||
        !test_shared_path("datasets/attention/events.tsv", ev, sizeof ev))
        return;
    char dir[PATH_MAX], evabs[PATH_MAX], d2[512];
    snprintf(d2, sizeof d2, "%s/datasets/group_sim", test_shared_dir());
    CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(d2, dir));
    CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(ev, evabs));
    char manifest[8192], *m = manifest;
    m += sprintf(m, "subject\tmodel\tspec\n");
    for (int s = 1; s <= 12; s++) {
        char spec[16384], name[64];
        snprintf(spec, sizeof spec,
                 "{\"TR\": 3.22, \"TE\": 0.04, \"timeseries\": \"%s/sub-%02d_timeseries.tsv\",\n"
                 " \"regions\": [\"V1\", \"V5\", \"SPC\"], \"events\": \"%s\",\n"
                 " \"inputs\": [\"Photic\", \"Motion\", \"Attention\"],\n"
                 " \"a\": [[1,1,0],[1,1,1],[0,1,1]],\n"
                 " \"b\": {\"Motion\": [[0,0,0],[1,0,0],[0,0,0]], \"Attention\": [[0,0,0],[1,0,0],[0,0,0]]},\n"
                 " \"c\": [[1,0,0],[0,0,0],[0,0,0]], \"delays\": [1.61, 1.61, 1.61]}\n",
                 dir, s, evabs);
        snprintf(name, sizeof name, "sim_sub-%02d.json", s);
        write_file(name, spec);
        m += sprintf(m, "sub-%02d\tfwd\t%s\n", s, name);
    }
    write_file("sim_manifest.tsv", manifest);
    char args[4096];
    snprintf(args, sizeof args, "batch %s/sim_manifest.tsv -o %s/sim_out -j 2 -q", tmpdir, tmpdir);
    int rc = run(args);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    snprintf(args, sizeof args, "peb %s/sim_out --model fwd --design %s --params 'B:*' --q all --json", tmpdir, data);
    json_t *o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    json_t *r = test_load_json(ref);
    double ours = json_number_value(json_object_get(effect(o, "B:Attention:V1->V5", "group"), "mean"));
    double spm = json_number_value(json_object_get(json_object_get(r, "peb"), "group_effect_B_Attention_V1toV5"));
    /* and the subjects' free energies agree with SPM's */
    double dFmax = 0.0;
    for (int s = 0; s < 12; s++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/sim_out/sub-%02d/fwd.json", tmpdir, s + 1);
        json_t *res = test_load_json(p);
        double F = json_number_value(json_object_get(res, "free_energy"));
        double Fs = json_number_value(json_object_get(json_array_get(json_object_get(r, "subjects"), (size_t)s), "F"));
        dFmax = fmax(dFmax, fabs(F - Fs));
        json_decref(res);
    }
    printf("\n  group effect B:Attention:V1->V5: ours %.4f, SPM %.4f; max |F - F_SPM| over subjects %.3f\n",
           ours, spm, dFmax);
    CU_ASSERT(fabs(ours - spm) <= 0.05);
    CU_ASSERT(dFmax <= 0.5);
    json_decref(o);
    json_decref(r);
}

/* ---- recovery on a simulated group ---- */

static const char *model_edges[3] = {
    /* m1 (generating): Attention modulates V1 -> V5 */
    "\"b\": {\"Motion\": [\"V1 -> V5\"], \"Attention\": [\"V1 -> V5\"]}",
    /* m2: Attention modulates SPC -> V5 */
    "\"b\": {\"Motion\": [\"V1 -> V5\"], \"Attention\": [\"SPC -> V5\"]}",
    /* m3: Attention modulates V5 -> SPC */
    "\"b\": {\"Motion\": [\"V1 -> V5\"], \"Attention\": [\"V5 -> SPC\"]}"};

static void write_spec(const char *file, const char *ts, const char *b, const char *extra_a)
{
    char cwd[PATH_MAX], spec[16384];
    CU_ASSERT_PTR_NOT_NULL(getcwd(cwd, sizeof cwd));
    snprintf(spec, sizeof spec,
             "{\"TR\": 3.22, \"TE\": 0.04, \"scans\": 360, \"timeseries\": \"%s\",\n"
             " \"regions\": [\"V1\", \"V5\", \"SPC\"],\n"
             " \"events\": \"%s/datasets/attention_design/events.tsv\",\n"
             " \"inputs\": [\"Photic\", \"Motion\", \"Attention\"],\n"
             " \"a\": [\"V1 -> V5\", \"V5 -> V1\", \"V5 -> SPC\", \"SPC -> V5\"%s],\n"
             " %s,\n \"c\": {\"Photic\": [\"V1\"]}}\n",
             ts, cwd, extra_a, b);
    write_file(file, spec);
}

static void test_recovery_group(void)
{
    if (access("datasets/attention_design/events.tsv", R_OK)) {
        printf("\nSKIP: datasets/attention_design/events.tsv not found (run the tests from the repository)\n");
        return;
    }
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 2026);
    char manifest[16384], *m = manifest, design[4096], *d = design;
    m += sprintf(m, "subject\tmodel\tspec\n");
    d += sprintf(d, "subject\tintercept\tgroup\n");
    char args[4096];
    for (int s = 0; s < NSUB; s++) {
        int grp = s >= NSUB / 2;
        /* subject-level variability around a common network; group 2 has a
           stronger attentional modulation of V1 -> V5 */
        char truth[2048], name[256], ts[256];
        snprintf(truth, sizeof truth,
                 "{\"A\": [[0, %.4f, 0], [%.4f, 0, %.4f], [0, %.4f, 0]],\n"
                 " \"B\": {\"Motion\": [[0,0,0],[%.4f,0,0],[0,0,0]], \"Attention\": [[0,0,0],[%.4f,0,0],[0,0,0]]},\n"
                 " \"C\": [[%.4f,0,0],[0,0,0],[0,0,0]]}\n",
                 -0.1 + gsl_ran_gaussian(rng, 0.05), 0.4 + gsl_ran_gaussian(rng, 0.05),
                 -0.1 + gsl_ran_gaussian(rng, 0.05), 0.3 + gsl_ran_gaussian(rng, 0.05),
                 0.3 + gsl_ran_gaussian(rng, 0.05), 0.2 + 0.4 * grp + gsl_ran_gaussian(rng, 0.05),
                 0.8 + gsl_ran_gaussian(rng, 0.05));
        snprintf(name, sizeof name, "truth_%02d.json", s);
        write_file(name, truth);
        snprintf(ts, sizeof ts, "ts_%02d.tsv", s);
        char spec[64];
        snprintf(spec, sizeof spec, "gen_%02d.json", s);
        write_spec(spec, ts, model_edges[0], "");
        snprintf(args, sizeof args, "simulate %s/%s --params %s/%s --snr %g --seed %d -o %s/%s", tmpdir, spec,
                 tmpdir, name, 5.0, 100 + s, tmpdir, ts);
        CU_ASSERT_EQUAL_FATAL(run(args), 0);
        for (int k = 0; k < 3; k++) {
            snprintf(spec, sizeof spec, "m%d_%02d.json", k + 1, s);
            write_spec(spec, ts, model_edges[k], "");
            m += sprintf(m, "s%02d\tm%d\t%s\n", s, k + 1, spec);
        }
        d += sprintf(d, "s%02d\t1\t%s\n", s, grp ? "0.5" : "-0.5");
    }
    /* one subject also gets a full model for the automatic search */
    write_spec("full_00.json", "ts_00.tsv",
               "\"b\": {\"Motion\": [\"V1 -> V5\", \"V5 -> SPC\"], \"Attention\": [\"V1 -> V5\", \"SPC -> V5\", \"V5 -> SPC\"]}",
               ", \"V1 -> SPC\", \"SPC -> V1\"");
    m += sprintf(m, "s00\tfull\tfull_00.json\n");
    write_file("manifest.tsv", manifest);
    write_file("design.tsv", design);
    gsl_rng_free(rng);
    snprintf(args, sizeof args, "batch %s/manifest.tsv -o %s/out -j 2 -q", tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(run(args), 0);

    /* random-effects BMS over the three hypotheses (the full model is only
       s00's and is left out of the table) */
    char lme[16384], *l = lme;
    l += sprintf(l, "subject\tm1\tm2\tm3\n");
    for (int s = 0; s < NSUB; s++) {
        l += sprintf(l, "s%02d", s);
        for (int k = 0; k < 3; k++) {
            char p[1024];
            snprintf(p, sizeof p, "%s/out/s%02d/m%d.json", tmpdir, s, k + 1);
            json_t *res = test_load_json(p);
            l += sprintf(l, "\t%.17g", json_number_value(json_object_get(res, "free_energy")));
            json_decref(res);
        }
        l += sprintf(l, "\n");
    }
    write_file("lme3.tsv", lme);
    snprintf(args, sizeof args, "compare --rfx --lme %s/lme3.tsv --json", tmpdir);
    json_t *o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    double xp1 = json_number_value(json_array_get(json_object_get(o, "xp"), 0));
    printf("\n  RFX over 3 models, 20 subjects: xp(generating model) = %.4f\n", xp1);
    CU_ASSERT(xp1 > 0.9);
    json_decref(o);

    /* PEB: the group difference is on B:Attention:V1->V5 only */
    snprintf(args, sizeof args, "peb %s/out --model m1 --design %s/design.tsv --params 'B:*' --params 'A:*' --q all --json",
             tmpdir, tmpdir);
    o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    json_t *e;
    size_t i;
    int nnull = 0, nnull_low = 0;
    json_array_foreach(json_object_get(o, "effects"), i, e) {
        const char *p = json_string_value(json_object_get(e, "parameter"));
        const char *c = json_string_value(json_object_get(e, "covariate"));
        double prob = json_number_value(json_object_get(e, "probability"));
        if (strcmp(c, "group"))
            continue;
        if (!strcmp(p, "B:Attention:V1->V5")) {
            printf("  group effect on %s: %.3f (true 0.4), P = %.4f\n", p,
                   json_number_value(json_object_get(e, "mean")), prob);
            CU_ASSERT(prob > 0.95);
        } else {
            nnull++;
            nnull_low += prob < 0.5;
            printf("  null %s: %.3f sd %.3f P %.3f\n", p, json_number_value(json_object_get(e, "mean")), json_number_value(json_object_get(e, "sd")), prob);
        }
    }
    printf("  null group effects with P < 0.5: %d of %d\n", nnull_low, nnull);
    CU_ASSERT(nnull >= 5);
    CU_ASSERT(nnull_low >= 0.8 * nnull);
    /* the search over reduced group models keeps the true group effect */
    int kept_true = 0, nreduced = 0;
    json_array_foreach(json_object_get(json_object_get(o, "reduction"), "effects"), i, e) {
        if (!strcmp(json_string_value(json_object_get(e, "covariate")), "group") &&
            !strcmp(json_string_value(json_object_get(e, "parameter")), "B:Attention:V1->V5"))
            kept_true = json_is_true(json_object_get(e, "kept"));
        nreduced += !json_is_true(json_object_get(e, "kept"));
    }
    printf("  group-level reduction: %d effects switched off, true group effect kept: %d\n", nreduced, kept_true);
    CU_ASSERT(kept_true);
    CU_ASSERT(nreduced >= 4);
    json_decref(o);

    /* automatic search on the full model of s00 */
    snprintf(args, sizeof args, "reduce %s/out/s00/full.json --search --json", tmpdir);
    o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    const char *absent[] = {"A:V1->SPC", "A:SPC->V1", "B:Motion:V5->SPC", "B:Attention:SPC->V5",
                            "B:Attention:V5->SPC"};
    const char *present[] = {"A:V1->V5", "A:V5->SPC", "B:Motion:V1->V5", "B:Attention:V1->V5", "C:Photic->V1"};
    json_t *off = json_object_get(o, "switched_off");
    int found_absent = 0, found_present = 0;
    for (size_t a = 0; a < 5; a++) {
        json_array_foreach(off, i, e) {
            if (!strcmp(json_string_value(e), absent[a]))
                found_absent++;
            if (!strcmp(json_string_value(e), present[a]))
                found_present++;
        }
    }
    printf("  search switched off %zu parameters: %d of 5 truly absent, %d of 5 truly present\n",
           json_array_size(off), found_absent, found_present);
    CU_ASSERT(found_absent >= 4);
    CU_ASSERT_EQUAL(found_present, 0);
    json_decref(o);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dcm-e2e-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    static const test_case cases[] = {
        {"batch + peb on SPM's simulated group match SPM", test_group_sim_vs_spm},
        {"group recovery: RFX, PEB and automatic reduction", test_recovery_group},
        {NULL, NULL}};
    int rc = test_run("group end to end", cases);
    if (test_remove_dir(tmpdir))
        rc = 1;
    return rc;
}
