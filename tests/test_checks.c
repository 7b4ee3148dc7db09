/* test_checks.c — design checks before fitting, fit checks after it, and
 * the warnings they leave (issue 8): `dcm estimate` refuses design slips
 * with exit 2 and no output, warns on suspicious designs and poor fits
 * (stderr, also with -q, and the result's "warnings"), stays silent on a
 * correctly specified fit; `dcm check`, `dcm review` and `dcm batch`
 * show the warnings. The data are the bundled attention design simulated
 * here (and SPM's attention data from ../shared when present). */
#define _XOPEN_SOURCE 700 /* realpath */
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>

#include "dcm/dcm_api.h"
#include "tests/test_util.h"

static char tmpdir[256];
static char out[131072];
static int have_data;   /* setup simulated the attention design */

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return test_dcm(args, out, sizeof out);
}

static int exists(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return access(path, F_OK) == 0;
}

static json_t *load(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return test_load_json(path);
}

static int count_in(const char *text, const char *what)
{
    int k = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
        k++;
    return k;
}

/* The attention design's forward model, with TR, events and time series
 * as given, extra JSON keys in `extra`. */
static void write_spec(const char *name, const char *TR, const char *events, const char *ts,
                       const char *inputs, const char *extra)
{
    char text[4096];
    snprintf(text, sizeof text,
             "{\"TR\": %s, \"TE\": 0.04, \"timeseries\": \"%s\",\n"
             " \"regions\": [\"V1\", \"V5\", \"SPC\"], \"events\": \"%s\",\n"
             " \"inputs\": [\"Photic\", \"Motion\", \"Attention\"%s],\n"
             " \"a\": [\"V1 -> V5\", \"V5 -> V1\", \"V5 -> SPC\", \"SPC -> V5\"],\n"
             " \"b\": {\"Motion\": [\"V1 -> V5\"], \"Attention\": [\"V1 -> V5\"]},\n"
             " \"c\": {\"Photic\": [\"V1\"]}%s}\n",
             TR, ts, events, inputs, extra);
    test_write_file(tmpdir, name, text);
}

/* Copy the bundled design and simulate its data (the demo's truth). */
static int setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dcm-checks-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    char design[PATH_MAX], cmd[2048];
    if (!realpath("datasets/attention_design", design)) {
        printf("\nSKIP: datasets/attention_design not found (run the tests from the repository)\n");
        return 0;
    }
    snprintf(cmd, sizeof cmd, "cp '%s'/events.tsv '%s'/truth.json '%s'/fwd.json '%s'/", design, design,
             design, tmpdir);
    if (system(cmd) != 0)
        return -1;
    if (run("simulate %s/fwd.json --params %s/truth.json --snr 2 --seed 1 -o %s/timeseries.tsv",
            tmpdir, tmpdir, tmpdir) != 0) {
        printf("simulate failed: %s\n", out);
        return -1;
    }
    /* onsets and durations of the same design written in scans */
    char in[512], outp[512];
    snprintf(in, sizeof in, "%s/events.tsv", tmpdir);
    snprintf(outp, sizeof outp, "%s/events_scans.tsv", tmpdir);
    FILE *f = fopen(in, "r"), *g = fopen(outp, "w");
    if (!f || !g)
        return -1;
    char line[256], type[64];
    double on, dur;
    if (fgets(line, sizeof line, f))
        fputs(line, g);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%lf %lf %63s", &on, &dur, type) == 3)
            fprintf(g, "%g\t%g\t%s\n", on / 3.22, dur / 3.22, type);
    fclose(f);
    fclose(g);
    have_data = 1;
    return 0;
}

static int teardown(void)
{
    return test_remove_dir(tmpdir);
}

/* ---- units: the numbers behind the checks ---- */

static void test_diagnostic_maths(void)
{
    /* variance explained: 100 PSS / (PSS + RSS) */
    double obs[4] = {1, 2, 3, 4}, pred[4] = {1, 2, 3, 3}, conf[4] = {0, 0, 0, 1};
    CU_ASSERT_DOUBLE_EQUAL(dcm_variance_explained(obs, pred, NULL, 4), 100.0 * 23 / 24, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(dcm_variance_explained(obs, pred, conf, 4), 100.0, 1e-12);
    double zero[4] = {0};
    CU_ASSERT(isnan(dcm_variance_explained(zero, zero, NULL, 4)));
    /* KL of N(1, 0.5) from N(0, 1): (0.5 + 1 - 1 + log 2) / 2; a
       parameter with no prior variance is left out */
    double Ep[2] = {1, 7}, Cp[4] = {0.5, 0, 0, 0}, pE[2] = {0, 0}, pV[2] = {1, 0};
    CU_ASSERT_DOUBLE_EQUAL(dcm_kl_normal(2, Ep, Cp, pE, pV, NULL), 0.5 * (0.5 + log(2.0)), 1e-12);
    /* the same prior given as a full covariance */
    double pC[4] = {1, 0, 0, 0};
    CU_ASSERT_DOUBLE_EQUAL(dcm_kl_normal(2, Ep, Cp, pE, NULL, pC), 0.5 * (0.5 + log(2.0)), 1e-12);
    /* a correlated 4-parameter posterior, one parameter switched off: the
       diagonal prior's path (no eigendecomposition) equals the general
       one; a posterior that is not positive definite gives NaN on both */
    double Ep4[4] = {0.3, -1.2, 5, 0.7}, pE4[4] = {0.1, 0, 0, -0.2}, pV4[4] = {0.5, 2, 0, 1.0 / 16};
    double Cp4[16] = {0.20, 0.05, 0, -0.01, 0.05, 0.90, 0, 0.02, 0, 0, 0, 0, -0.01, 0.02, 0, 0.03};
    double pC4[16] = {0};
    for (int i = 0; i < 4; i++)
        pC4[i * 5] = pV4[i];
    const double kl_diag = dcm_kl_normal(4, Ep4, Cp4, pE4, pV4, NULL);
    CU_ASSERT(isfinite(kl_diag) && kl_diag > 0.0);
    CU_ASSERT_DOUBLE_EQUAL(kl_diag, dcm_kl_normal(4, Ep4, Cp4, pE4, NULL, pC4), 1e-12);
    Cp4[1] = Cp4[4] = 0.5;   /* |corr| > 1: not positive definite */
    CU_ASSERT(isnan(dcm_kl_normal(4, Ep4, Cp4, pE4, pV4, NULL)));
    CU_ASSERT(isnan(dcm_kl_normal(4, Ep4, Cp4, pE4, NULL, pC4)));
    /* steps that raised F after the first */
    double Ft[5] = {-10, -12, -12, -11, -11};
    CU_ASSERT_EQUAL(dcm_accepted_steps(Ft, 5), 1);
    CU_ASSERT_EQUAL(dcm_accepted_steps(Ft, 2), 0);
    CU_ASSERT_EQUAL(dcm_accepted_steps(Ft, 1), -1);
    CU_ASSERT_EQUAL(dcm_accepted_steps(NULL, 0), -1);
    /* each threshold makes its warning, and only its own */
    dcm_diagnostics ok = {87.3, 0.69, 17.0, 16}, bad = {9.9, 0.12, 0.99, 0};
    dcm_warnings w = {0, NULL};
    CU_ASSERT_EQUAL(dcm_diagnostics_warn(&ok, &w), DCM_OK);
    CU_ASSERT_EQUAL(w.count, 0);
    CU_ASSERT_EQUAL(dcm_diagnostics_warn(&bad, &w), DCM_OK);
    CU_ASSERT_EQUAL_FATAL(w.count, 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(w.items[0], "no step after the first"));
    CU_ASSERT_PTR_NOT_NULL(strstr(w.items[1], "variance explained is 9.9 %"));
    CU_ASSERT_PTR_NOT_NULL(strstr(w.items[2], "0.120 Hz"));
    CU_ASSERT_PTR_NOT_NULL(strstr(w.items[3], "0.99 effective parameters"));
    dcm_warnings_free(&w);
    CU_ASSERT_EQUAL(w.count, 0);
}

static void test_tr_and_names(void)
{
    char buf[300];
    CU_ASSERT_PTR_NULL(dcm_check_tr(3.22, buf, sizeof buf));
    CU_ASSERT_PTR_NULL(dcm_check_tr(30.0, buf, sizeof buf));
    const char *m = dcm_check_tr(3220, buf, sizeof buf);
    CU_ASSERT(m && strstr(m, "milliseconds") && strstr(m, "3.22"));
    m = dcm_check_tr(45, buf, sizeof buf);
    CU_ASSERT(m && strstr(m, "(0, 30]") && !strstr(m, "milliseconds"));
    CU_ASSERT_PTR_NOT_NULL(dcm_check_tr(0, buf, sizeof buf));
    CU_ASSERT_PTR_NOT_NULL(dcm_check_tr(-2, buf, sizeof buf));
    CU_ASSERT_PTR_NOT_NULL(dcm_check_tr(NAN, buf, sizeof buf));
    CU_ASSERT_PTR_NULL(dcm_name_problem("V1"));
    CU_ASSERT_PTR_NULL(dcm_name_problem("left V5"));
    CU_ASSERT_PTR_NOT_NULL(dcm_name_problem("V1->V5"));
    CU_ASSERT_PTR_NOT_NULL(dcm_name_problem("B:V1"));
    CU_ASSERT_PTR_NOT_NULL(dcm_name_problem(" V1"));
    CU_ASSERT_PTR_NOT_NULL(dcm_name_problem("V1\t"));
    CU_ASSERT_PTR_NOT_NULL(dcm_name_problem("V\n1"));
    CU_ASSERT_PTR_NOT_NULL(dcm_name_problem(""));
}

/* ---- no false alarms ---- */

static void assert_no_warnings(const char *result)
{
    json_t *r = load(result);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    json_t *w = json_object_get(r, "warnings");
    CU_ASSERT(json_is_array(w) && json_array_size(w) == 0);
    json_t *d = json_object_get(r, "diagnostics");
    CU_ASSERT(json_number_value(json_object_get(d, "variance_explained")) > 50.0);
    CU_ASSERT(json_number_value(json_object_get(d, "max_abs_connection")) > 0.125);
    CU_ASSERT(json_number_value(json_object_get(d, "effective_parameters")) > 1.0);
    CU_ASSERT(json_integer_value(json_object_get(d, "accepted_steps")) > 3);
    json_decref(r);
}

static void test_good_fit_no_warning(void)
{
    if (!have_data)
        return;
    write_spec("good.json", "3.22", "events.tsv", "timeseries.tsv", "", "");
    CU_ASSERT_EQUAL(run("estimate -q %s/good.json -o %s/good_r.json", tmpdir, tmpdir), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "warning"));
    assert_no_warnings("good_r.json");
    /* dcm check agrees: no '!' and no warning line */
    CU_ASSERT_EQUAL(run("check %s/good_r.json", tmpdir), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "warning:"));
    char *row = strchr(out, '\n'), *end = row ? strchr(row + 1, '\n') : NULL;
    CU_ASSERT_FATAL(row && end);
    *end = 0;
    CU_ASSERT_PTR_NULL(strchr(row, '!'));
}

/* SPM's attention data, as SPM specifies it: no warning either. */
static void test_spm_attention_no_warning(void)
{
    char p[512];
    if (!test_shared_path("datasets/attention/timeseries.tsv", p, sizeof p))
        return;
    char abs[PATH_MAX], text[4096];
    snprintf(p, sizeof p, "%s/datasets/attention", test_shared_dir());
    CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(p, abs));
    const char *mod[2] = {"[[0,0,0],[1,0,0],[0,0,0]]", "[[0,0,0],[0,0,1],[0,0,0]]"};
    for (int k = 0; k < 2; k++) {
        snprintf(text, sizeof text,
                 "{\"TR\": 3.22, \"TE\": 0.04, \"timeseries\": \"%s/timeseries.tsv\",\n"
                 " \"regions\": [\"V1\", \"V5\", \"SPC\"], \"confounds\": \"%s/confounds.tsv\",\n"
                 " \"events\": \"%s/events.tsv\", \"inputs\": [\"Photic\", \"Motion\", \"Attention\"],\n"
                 " \"a\": [[1,1,0],[1,1,1],[0,1,1]],\n"
                 " \"b\": {\"Motion\": [[0,0,0],[1,0,0],[0,0,0]], \"Attention\": %s},\n"
                 " \"c\": [[1,0,0],[0,0,0],[0,0,0]]}\n", abs, abs, abs, mod[k]);
        test_write_file(tmpdir, k ? "spm_bwd.json" : "spm_fwd.json", text);
        CU_ASSERT_EQUAL(run("estimate -q %s/spm_%s.json -o %s/spm_%s_r.json", tmpdir, k ? "bwd" : "fwd",
                            tmpdir, k ? "bwd" : "fwd"), 0);
        CU_ASSERT_PTR_NULL(strstr(out, "warning"));
        assert_no_warnings(k ? "spm_bwd_r.json" : "spm_fwd_r.json");
    }
    /* SPM's own result, which has no "diagnostics": dcm check computes
       them from its fields and finds the same connection and information */
    char ref[512];
    if (!test_shared_path("reference/attention/spm_attention_fwd.json", ref, sizeof ref))
        return;
    CU_ASSERT_EQUAL(run("check --json %s %s/spm_fwd_r.json", ref, tmpdir), 0);
    json_t *j = json_loads(out, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    json_t *a = json_object_get(j, "results");
    json_t *d0 = json_object_get(json_array_get(a, 0), "diagnostics");
    json_t *d1 = json_object_get(json_array_get(a, 1), "diagnostics");
    double e0 = json_number_value(json_object_get(d0, "effective_parameters"));
    double e1 = json_number_value(json_object_get(d1, "effective_parameters"));
    printf("\n  effective parameters: SPM's result %.3f, ours %.3f", e0, e1);
    CU_ASSERT(fabs(e0 - e1) < 0.5 && e1 > 10);
    CU_ASSERT(json_is_null(json_object_get(d0, "variance_explained")));   /* no observed data */
    CU_ASSERT(fabs(json_number_value(json_object_get(d0, "max_abs_connection")) -
                   json_number_value(json_object_get(d1, "max_abs_connection"))) < 0.05);
    json_decref(j);
}

/* The case: SPM's attention data with "TR": 3.0 ends "converged"
 * at F = -5439.7 after 6 iterations, every step after the first
 * rejected. */
static void test_spm_attention_wrong_tr(void)
{
    char p[512];
    if (!test_shared_path("datasets/attention/timeseries.tsv", p, sizeof p))
        return;
    char abs[PATH_MAX], text[4096];
    snprintf(p, sizeof p, "%s/datasets/attention", test_shared_dir());
    CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(p, abs));
    snprintf(text, sizeof text,
             "{\"TR\": 3.0, \"TE\": 0.04, \"timeseries\": \"%s/timeseries.tsv\",\n"
             " \"regions\": [\"V1\", \"V5\", \"SPC\"], \"confounds\": \"%s/confounds.tsv\",\n"
             " \"events\": \"%s/events.tsv\", \"inputs\": [\"Photic\", \"Motion\", \"Attention\"],\n"
             " \"a\": [[1,1,0],[1,1,1],[0,1,1]],\n"
             " \"b\": {\"Motion\": [[0,0,0],[1,0,0],[0,0,0]], \"Attention\": [[0,0,0],[1,0,0],[0,0,0]]},\n"
             " \"c\": [[1,0,0],[0,0,0],[0,0,0]]}\n", abs, abs, abs);
    test_write_file(tmpdir, "spm_tr3.json", text);
    CU_ASSERT_EQUAL(run("estimate -q %s/spm_tr3.json -o %s/spm_tr3_r.json", tmpdir, tmpdir), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no step after the first was accepted"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "variance explained is 0.0 %"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "2 \"Photic\" events start after the last scan"));
    json_t *r = load("spm_tr3_r.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    json_t *d = json_object_get(r, "diagnostics");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(d, "accepted_steps")), 0);
    CU_ASSERT(json_number_value(json_object_get(d, "variance_explained")) < 1.0);
    CU_ASSERT(json_number_value(json_object_get(d, "max_abs_connection")) < 0.125);
    CU_ASSERT(json_number_value(json_object_get(d, "effective_parameters")) < 1.0);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(r, "warnings")), 7);
    json_decref(r);
}

/* ---- refusals: exit 2, a message that says what to fix, no output ---- */

static void assert_refused(const char *spec, const char *what1, const char *what2)
{
    CU_ASSERT_EQUAL(run("estimate -q %s/%s -o %s/refused.json", tmpdir, spec, tmpdir), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, what1));
    if (what2)
        CU_ASSERT_PTR_NOT_NULL(strstr(out, what2));
    if (!strstr(out, what1) || (what2 && !strstr(out, what2)))
        printf("\n  got: %s", out);
    CU_ASSERT_FALSE(exists("refused.json"));
    CU_ASSERT(test_no_temp_files(tmpdir));
}

static void test_tr_refused(void)
{
    if (!have_data)
        return;
    write_spec("tr_ms.json", "3220", "events.tsv", "timeseries.tsv", "", "");
    assert_refused("tr_ms.json", "looks like milliseconds", "write 3.22");
    write_spec("tr_big.json", "45", "events.tsv", "timeseries.tsv", "", "");
    assert_refused("tr_big.json", "must lie in (0, 30]", NULL);
    write_spec("tr_zero.json", "0", "events.tsv", "timeseries.tsv", "", "");
    assert_refused("tr_zero.json", "positive number of seconds", NULL);
    /* TE in milliseconds: the same unit slip, one key further */
    write_spec("te_ms.json", "3.22", "events.tsv", "timeseries.tsv", "", "");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "sed -i 's/\"TE\": 0.04/\"TE\": 40/' %s/te_ms.json", tmpdir);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    assert_refused("te_ms.json", "\"TE\" is 40 s, not shorter than the TR (3.22 s)",
                   "40 looks like milliseconds; write 0.04");
}

static void test_constant_region_refused(void)
{
    if (!have_data)
        return;
    char in[512], outp[512], line[512];
    snprintf(in, sizeof in, "%s/timeseries.tsv", tmpdir);
    snprintf(outp, sizeof outp, "%s/ts_const.tsv", tmpdir);
    FILE *f = fopen(in, "r"), *g = fopen(outp, "w");
    CU_ASSERT_FATAL(f && g);
    if (fgets(line, sizeof line, f))
        fputs(line, g);
    double a, b, c;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%lf %lf %lf", &a, &b, &c) == 3)
            fprintf(g, "%.17g\t%.17g\t%.17g\n", a, 1000.0 + 1e-13 * b, c);  /* rounding noise */
    fclose(f);
    fclose(g);
    write_spec("const.json", "3.22", "events.tsv", "ts_const.tsv", "", "");
    assert_refused("const.json", "region V5 has zero variance", NULL);
}

static void test_duplicate_names_refused(void)
{
    if (!have_data)
        return;
    test_write_file(tmpdir, "dup_regions.json",
                    "{\"TR\": 3.22, \"TE\": 0.04, \"timeseries\": \"timeseries.tsv\",\n"
                    " \"regions\": [\"V1\", \"V1\", \"SPC\"], \"events\": \"events.tsv\",\n"
                    " \"inputs\": [\"Photic\"], \"a\": [\"V1 -> SPC\"], \"c\": {\"Photic\": [\"V1\"]}}\n");
    assert_refused("dup_regions.json", "\"regions\" lists \"V1\" twice", NULL);
    write_spec("dup_inputs.json", "3.22", "events.tsv", "timeseries.tsv", ", \"Motion\"", "");
    assert_refused("dup_inputs.json", "\"inputs\" lists \"Motion\" twice", NULL);
    /* a header naming one region's column twice: which is its data? */
    test_write_file(tmpdir, "ts_dup.tsv", "V1\tV5\tV5\tSPC\n1\t2\t3\t4\n2\t3\t1\t5\n3\t1\t2\t6\n");
    write_spec("dup_cols.json", "3.22", "events.tsv", "ts_dup.tsv", "", "");
    assert_refused("dup_cols.json", "names column \"V5\" twice (columns 2 and 3)", NULL);
    /* names that differ only in case are one name typed twice (the
       structural check, so also for .mat and library callers) */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "sed '1s/SPC/v1/' %s/timeseries.tsv > %s/ts_case.tsv && "
             "sed 's/Attention/photic/' %s/events.tsv > %s/events_case.tsv", tmpdir, tmpdir, tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    test_write_file(tmpdir, "case_regions.json",
                    "{\"TR\": 3.22, \"TE\": 0.04, \"timeseries\": \"ts_case.tsv\",\n"
                    " \"regions\": [\"V1\", \"V5\", \"v1\"], \"events\": \"events.tsv\",\n"
                    " \"inputs\": [\"Photic\"], \"a\": [\"V1 -> V5\"], \"c\": {\"Photic\": [\"V1\"]}}\n");
    assert_refused("case_regions.json", "region name \"v1\" is used twice (regions 1 and 3, as \"V1\": names "
                   "that differ only in case are the same name)", NULL);
    test_write_file(tmpdir, "case_inputs.json",
                    "{\"TR\": 3.22, \"TE\": 0.04, \"timeseries\": \"timeseries.tsv\",\n"
                    " \"regions\": [\"V1\", \"V5\", \"SPC\"], \"events\": \"events_case.tsv\",\n"
                    " \"inputs\": [\"Photic\", \"photic\"], \"a\": [\"V1 -> V5\"], \"c\": {\"Photic\": [\"V1\"]}}\n");
    assert_refused("case_inputs.json", "input name \"photic\" is used twice (inputs 1 and 2, as \"Photic\"", NULL);
    /* names that the parameter syntax cannot address */
    test_write_file(tmpdir, "colon.json",
                    "{\"TR\": 3.22, \"TE\": 0.04, \"timeseries\": \"timeseries.tsv\",\n"
                    " \"regions\": [\"V1\", \"V5\", \"SPC\"], \"events\": \"events.tsv\",\n"
                    " \"inputs\": [\"Photic:on\"], \"a\": [\"V1 -> SPC\"], \"c\": {\"Photic:on\": [\"V1\"]}}\n");
    assert_refused("colon.json", "\"inputs\"[0] = \"Photic:on\": names may not contain ':'", NULL);
}

/* ---- warnings: the fit goes on, the result says what is suspicious ---- */

/* Fit spec -> result with -q; the warnings must be on stderr (printed
 * although -q) and in the result; returns the result (caller frees). */
static json_t *fit_with_warnings(const char *spec, const char *result, const char *opts)
{
    CU_ASSERT_EQUAL(run("estimate -q %s %s/%s -o %s/%s", opts, tmpdir, spec, tmpdir, result), 0);
    const char *said = strstr(opts, "--log-json") ? "\"event\":\"warning\"" : "dcm estimate: warning: ";
    CU_ASSERT_PTR_NOT_NULL(strstr(out, said));
    json_t *r = load(result);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    json_t *w = json_object_get(r, "warnings");
    CU_ASSERT(json_array_size(w) > 0);
    CU_ASSERT_EQUAL((int)json_array_size(w), count_in(out, said));
    return r;
}

static int has_warning(json_t *r, const char *what)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(r, "warnings"), i, x)
        if (strstr(json_string_value(x), what))
            return 1;
    printf("\n  no warning \"%s\"", what);
    return 0;
}

/* TR 3.0 instead of 3.22: the inversion stays at its start */
static void test_wrong_tr_fit_flagged(void)
{
    if (!have_data)
        return;
    write_spec("tr3.json", "3.0", "events.tsv", "timeseries.tsv", "", "");
    json_t *r = fit_with_warnings("tr3.json", "tr3_r.json", "");
    CU_ASSERT(has_warning(r, "\"Attention\" event starts after the last scan (360 scans x TR 3 s"));
    CU_ASSERT(has_warning(r, "\"Photic\" event ends more than one TR after the last scan"));
    json_t *d = json_object_get(r, "diagnostics");
    double ve = json_number_value(json_object_get(d, "variance_explained"));
    printf("\n  TR 3.0: variance explained %.3f %%, max|A| %.4f Hz, %.3f effective parameters, "
           "%d steps", ve, json_number_value(json_object_get(d, "max_abs_connection")),
           json_number_value(json_object_get(d, "effective_parameters")),
           (int)json_integer_value(json_object_get(d, "accepted_steps")));
    if (json_integer_value(json_object_get(d, "accepted_steps")) == 0)
        CU_ASSERT(has_warning(r, "no step after the first was accepted"));
    if (ve < 10.0)
        CU_ASSERT(has_warning(r, "variance explained is"));
    json_decref(r);
    /* review shows them first; check marks them */
    CU_ASSERT_EQUAL(run("review %s/tr3_r.json", tmpdir), 0);
    CU_ASSERT(strncmp(out, "WARNINGS", 8) == 0);
    CU_ASSERT_EQUAL(run("check %s/tr3_r.json", tmpdir), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "warning: "));
}

/* TR 2 on 360 scans: the events after 720 s used to be dropped silently */
static void test_short_tr_drops_events(void)
{
    if (!have_data)
        return;
    write_spec("tr2.json", "2", "events.tsv", "timeseries.tsv", "", "");
    json_t *r = fit_with_warnings("tr2.json", "tr2_r.json", "--log-json");
    CU_ASSERT(has_warning(r, "3 \"Photic\" events start after the last scan (360 scans x TR 2 s = 720 s)"));
    CU_ASSERT(has_warning(r, "3 \"Motion\" events start"));
    CU_ASSERT(has_warning(r, "4 \"Attention\" events start"));
    /* and the fit is flagged: SPM's checks see a fit of nothing */
    CU_ASSERT(has_warning(r, "variance explained is"));
    CU_ASSERT(json_number_value(json_object_get(json_object_get(r, "diagnostics"),
                                                "variance_explained")) < 10.0);
    json_decref(r);
}

static void test_onsets_in_scans(void)
{
    if (!have_data)
        return;
    write_spec("scans.json", "3.22", "events_scans.tsv", "timeseries.tsv", "", "");
    json_t *r = fit_with_warnings("scans.json", "scans_r.json", "");
    CU_ASSERT(has_warning(r, "are the onsets in scans?"));
    json_decref(r);
}

/* an input on for less than a TR, events that end long after the run */
static void test_short_and_late_inputs(void)
{
    if (!have_data)
        return;
    char path[512];
    snprintf(path, sizeof path, "%s/events.tsv", tmpdir);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp %s %s/events_extra.tsv && printf '100\\t1\\tBlip\\n1150\\t100\\tLong\\n' "
             ">> %s/events_extra.tsv", path, tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    write_spec("extra.json", "3.22", "events_extra.tsv", "timeseries.tsv", ", \"Blip\", \"Long\"", "");
    json_t *r = fit_with_warnings("extra.json", "extra_r.json", "--maxit 3");
    CU_ASSERT(has_warning(r, "input \"Blip\" is on for"));
    CU_ASSERT(has_warning(r, "less than one TR (3.22 s)"));
    CU_ASSERT(has_warning(r, "1 \"Long\" event ends more than one TR after the last scan"));
    json_decref(r);
}

/* A region constant but for one spike has variance, so it passes the
 * zero-variance check; the fit then explains one scan: a warning. */
static void test_spike_region_warned(void)
{
    if (!have_data)
        return;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "awk -F'\\t' -v OFS='\\t' 'NR>1{$3=(NR==100)?5:0}1' %s/timeseries.tsv "
             "> %s/ts_spike.tsv", tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    write_spec("spike.json", "3.22", "events.tsv", "ts_spike.tsv", "", "");
    json_t *r = fit_with_warnings("spike.json", "spike_r.json", "--maxit 3");
    CU_ASSERT(has_warning(r, "region SPC is 0 at 359 of its 360 scans"));
    json_decref(r);
}

/* ---- batch: warnings.tsv ---- */

static void test_batch_warnings_tsv(void)
{
    if (!have_data || !exists("good_r.json") || !exists("tr2_r.json"))
        return;
    /* the slip's result holds its event warnings and its fit warnings;
       the batch must list exactly those */
    json_t *r = load("tr2_r.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    int nw = (int)json_array_size(json_object_get(r, "warnings"));
    json_decref(r);
    CU_ASSERT(nw >= 3);
    char said[64];
    snprintf(said, sizeof said, "%d warnings about the designs or fits", nw);
    test_write_file(tmpdir, "manifest.tsv", "subject\tmodel\tspec\ns1\tgood\tgood.json\ns1\tslip\ttr2.json\n");
    CU_ASSERT_EQUAL(run("batch -q %s/manifest.tsv -o %s/batch -j 1", tmpdir, tmpdir), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, said));
    char path[512], text[8192] = "";
    snprintf(path, sizeof path, "%s/batch/warnings.tsv", tmpdir);
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    size_t k = fread(text, 1, sizeof text - 1, f);
    text[k] = 0;
    fclose(f);
    CU_ASSERT(strncmp(text, "subject\tmodel\twarning\n", 22) == 0);
    CU_ASSERT_EQUAL(count_in(text, "\n"), 1 + nw);
    CU_ASSERT_EQUAL(count_in(text, "s1\tslip\t"), nw);
    CU_ASSERT_PTR_NULL(strstr(text, "s1\tgood\t"));
}

static void test_check_command(void)
{
    CU_ASSERT_EQUAL(run("check --help"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "example"));
    CU_ASSERT_EQUAL(run("check"), 1);
    CU_ASSERT_EQUAL(run("check --frobnicate x.json"), 1);
    test_write_file(tmpdir, "not_result.json", "{\"TR\": 2}\n");
    CU_ASSERT_EQUAL(run("check %s/not_result.json", tmpdir), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "not a result"));
    CU_ASSERT_EQUAL(run("check %s/missing.json", tmpdir), 2);
    if (!have_data || !exists("good_r.json") || !exists("tr2_r.json"))
        return;
    CU_ASSERT_EQUAL(run("check --json %s/good_r.json %s/tr2_r.json", tmpdir, tmpdir), 0);
    json_t *j = json_loads(out, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    json_t *a = json_object_get(j, "results");
    CU_ASSERT_EQUAL(json_array_size(a), 2);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(json_array_get(a, 0), "warnings")), 0);
    CU_ASSERT(json_array_size(json_object_get(json_array_get(a, 1), "warnings")) > 0);
    json_decref(j);
    /* a result written before diagnostics existed: computed from its fields */
    json_t *r = load("tr2_r.json"), *g = load("good_r.json");
    CU_ASSERT_FATAL(r && g);
    json_t *dr = json_deep_copy(json_object_get(r, "diagnostics"));
    json_t *dg = json_deep_copy(json_object_get(g, "diagnostics"));
    json_object_del(r, "diagnostics");
    json_object_del(r, "warnings");
    json_object_del(g, "diagnostics");
    json_object_del(g, "warnings");
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/old_tr2.json", tmpdir);
    snprintf(p2, sizeof p2, "%s/old_good.json", tmpdir);
    CU_ASSERT_EQUAL(json_dump_file(r, p1, JSON_REAL_PRECISION(17)), 0);
    CU_ASSERT_EQUAL(json_dump_file(g, p2, JSON_REAL_PRECISION(17)), 0);
    CU_ASSERT_EQUAL(run("check --json %s %s", p1, p2), 0);
    j = json_loads(out, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    a = json_object_get(j, "results");
    const char *keys[] = {"variance_explained", "max_abs_connection", "effective_parameters",
                          "accepted_steps"};
    for (int k = 0; k < 4; k++) {
        double x0 = json_number_value(json_object_get(dr, keys[k]));
        double y0 = json_number_value(json_object_get(json_object_get(json_array_get(a, 0), "diagnostics"), keys[k]));
        double x1 = json_number_value(json_object_get(dg, keys[k]));
        double y1 = json_number_value(json_object_get(json_object_get(json_array_get(a, 1), "diagnostics"), keys[k]));
        CU_ASSERT(fabs(x0 - y0) <= 1e-6 * fmax(1.0, fabs(x0)));
        CU_ASSERT(fabs(x1 - y1) <= 1e-6 * fmax(1.0, fabs(x1)));
    }
    /* the fit warnings follow from the computed numbers; the old good
       result has none */
    CU_ASSERT(json_array_size(json_object_get(json_array_get(a, 0), "warnings")) > 0);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(json_array_get(a, 1), "warnings")), 0);
    json_decref(j);
    json_decref(r);
    json_decref(g);
    json_decref(dr);
    json_decref(dg);
}

int main(void)
{
    if (setup() != 0) {
        printf("setup failed\n");
        return 1;
    }
    static const test_case cases[] = {
        {"diagnostics: variance explained, KL, steps, thresholds", test_diagnostic_maths},
        {"TR range and name syntax", test_tr_and_names},
        {"a correct fit of the attention design raises no warning", test_good_fit_no_warning},
        {"SPM's attention data, fwd and bwd: no warning", test_spm_attention_no_warning},
        {"SPM's attention data with TR 3.0: every fit check fires", test_spm_attention_wrong_tr},
        {"TR in milliseconds, too large or zero: refused", test_tr_refused},
        {"a constant region: refused, named", test_constant_region_refused},
        {"repeated region, input or column names: refused", test_duplicate_names_refused},
        {"a region constant but for one spike: warned", test_spike_region_warned},
        {"TR 3.0 instead of 3.22: events and fit flagged", test_wrong_tr_fit_flagged},
        {"TR 2: events after the run counted per trial type", test_short_tr_drops_events},
        {"onsets written in scans: asked about", test_onsets_in_scans},
        {"an input shorter than one TR, an event past the run", test_short_and_late_inputs},
        {"batch writes warnings.tsv", test_batch_warnings_tsv},
        {"dcm check: table, JSON, older results", test_check_command},
        {NULL, NULL}};
    int rc = test_run("checks", cases);
    teardown();
    return rc;
}
