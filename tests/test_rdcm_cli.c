/* test_rdcm_cli.c — regression DCM from the spec and the command:
 * "method": "rdcm" / "sparse_rdcm" specs fitted by `dcm estimate` on
 * smith50 against TAPAS's numbers (../shared/reference/rdcm; SKIP without
 * it), the result read back by io_result_load, compare / review / check /
 * reduce / peb / batch on rDCM results, resting state (no inputs), and the
 * bad input an rDCM spec can have (exit 2, the reason, no output). */
#define _XOPEN_SOURCE 700
#include <complex.h>
#include <math.h>
#include <matio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dcm/dcm_api.h"
#include "io/io_mat.h"
#include "io/io_pnames.h"
#include "io/io_result.h"
#include "io/io_spec.h"
#include "models/model_layout.h"
#include "tests/test_util.h"

static char tmpdir[256];
static char out[65536];

#define DATA "datasets/rdcm/smith50/"
#define REF "reference/rdcm/smith50/"

static int exists(const char *name)
{
    return test_exists_in(tmpdir, name);
}

static json_t *load_tmp(const char *name)
{
    return test_load_in(tmpdir, name);
}

static json_t *shared_json(const char *rel)
{
    char path[4096];
    if (!test_shared_path(rel, path, sizeof path))
        return NULL;
    return test_load_json(path);
}

/* Write NAME: the smith50 spec with the given method and "rdcm" options
 * (extra: more top-level keys, "" for none). 0 when ../shared is absent. */
static int smith50_spec(const char *name, const char *method, const char *rdcm, const char *extra)
{
    char bold[4096], events[4096];
    if (!test_shared_path(DATA "bold.tsv.gz", bold, sizeof bold) ||
        !test_shared_path(DATA "events.tsv", events, sizeof events))
        return 0;
    json_t *model = shared_json(DATA "model.json");
    if (!model)
        return 0;
    json_t *spec = json_object();
    json_object_set_new(spec, "method", json_string(method));
    json_object_set(spec, "TR", json_object_get(model, "TR"));
    json_object_set_new(spec, "timeseries", json_string(bold));
    json_object_set_new(spec, "events", json_string(events));
    json_object_set(spec, "regions", json_object_get(model, "regions"));
    json_object_set(spec, "inputs", json_object_get(model, "inputs"));
    /* the reference's a is boolean: the spec takes 0/1 */
    json_t *a = json_array(), *ra;
    size_t i, j;
    json_t *x;
    json_array_foreach(json_object_get(model, "a"), i, ra) {
        json_t *row = json_array();
        json_array_foreach(ra, j, x)
            json_array_append_new(row, json_integer(json_is_true(x) || json_number_value(x) != 0));
        json_array_append_new(a, row);
    }
    json_object_set_new(spec, "a", a);
    json_object_set(spec, "c", json_object_get(model, "c"));
    json_error_t je;
    json_object_set_new(spec, "rdcm", json_loads(rdcm, 0, &je));
    if (extra && *extra) {
        json_t *e = json_loads(extra, 0, &je);
        json_object_update(spec, e);
        json_decref(e);
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    int ok = json_dump_file(spec, path, 0) == 0;
    json_decref(spec);
    json_decref(model);
    return ok;
}

/* Largest |x - y| (rel = 1: relative to |y|) over nested arrays of the
 * same shape; INFINITY when the shapes differ. */
static double max_diff(json_t *x, json_t *y, int rel)
{
    if (json_is_number(x) && json_is_number(y)) {
        double a = json_number_value(x), b = json_number_value(y), d = fabs(a - b);
        return rel ? (b != 0 ? d / fabs(b) : d) : d;
    }
    if (!json_is_array(x) || !json_is_array(y) || json_array_size(x) != json_array_size(y))
        return INFINITY;
    double d = 0.0;
    for (size_t i = 0; i < json_array_size(x); i++)
        d = fmax(d, max_diff(json_array_get(x, i), json_array_get(y, i), rel));
    return d;
}

/* Largest relative difference between sd^2 (ours) and variances (ref). */
static double var_diff(json_t *sd, json_t *var)
{
    double d = 0.0;
    for (size_t i = 0; i < json_array_size(sd); i++)
        for (size_t j = 0; j < json_array_size(json_array_get(sd, i)); j++) {
            double s = json_number_value(json_array_get(json_array_get(sd, i), j));
            double v = json_number_value(json_array_get(json_array_get(var, i), j));
            d = fmax(d, v > 0 ? fabs(s * s - v) / v : fabs(s * s));
        }
    return d;
}

static double mat_vs_json(const char *mat, const char *field, json_t *j, int sq, int rel);

static json_t *ridge_result;   /* the smith50 rDCM fit (shared by later tests) */

/* dcm estimate on smith50 (rDCM, TAPAS type 's') equals TAPAS's output:
 * F per region 1e-6 relative, Ep 1e-8, posterior variances 1e-8
 * relative, aN exactly, bN 1e-9 relative; fitted in 2 threads. */
static void test_smith50_ridge(void)
{
    if (!smith50_spec("ridge.json", "rdcm", "{\"data\": \"simulated\"}", "")) {
        test_skip("../shared rdcm smith50 data are absent");
        return;
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "estimate %s/ridge.json -o %s/ridge_fit.json --mat %s/ridge_fit.mat -q -j 2",
             tmpdir, tmpdir, tmpdir);
    int rc = test_dcm(cmd, out, sizeof out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "(rDCM)"));
    json_t *r = load_tmp("ridge_fit.json"), *ref = shared_json(REF "rdcm_ridge.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "analysis")), "rdcm");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "method")), "rdcm");
    double F = json_number_value(json_object_get(r, "free_energy"));
    double Fref = json_number_value(json_object_get(ref, "logF"));
    CU_ASSERT(fabs(F - Fref) <= 1e-6 * fabs(Fref));
    double dFr = max_diff(json_object_get(r, "free_energy_regions"),
                          json_object_get(ref, "logF_regions"), 1);
    double dA = max_diff(json_object_get(json_object_get(r, "posterior_mean"), "A"),
                         json_object_get(json_object_get(ref, "Ep"), "A"), 0);
    double dC = max_diff(json_object_get(json_object_get(r, "posterior_mean"), "C"),
                         json_object_get(json_object_get(ref, "Ep"), "C"), 0);
    double dVA = var_diff(json_object_get(json_object_get(r, "posterior_sd"), "A"),
                          json_object_get(json_object_get(ref, "posterior_var"), "A"));
    double dVC = var_diff(json_object_get(json_object_get(r, "posterior_sd"), "C"),
                          json_object_get(json_object_get(ref, "posterior_var"), "C"));
    json_t *noise = json_object_get(r, "noise"), *rn = json_object_get(ref, "noise");
    double daN = max_diff(json_object_get(noise, "shape"), json_object_get(rn, "aN"), 0);
    double dbN = max_diff(json_object_get(noise, "rate"), json_object_get(rn, "bN"), 1);
    printf("\n  smith50 rDCM: F %.6f (TAPAS %.6f); max rel F_k %.1e, |dA| %.1e, |dC| %.1e, "
           "rel var A %.1e C %.1e, aN %.1e, rel bN %.1e ", F, Fref, dFr, dA, dC, dVA, dVC, daN, dbN);
    CU_ASSERT(dFr <= 1e-6);
    CU_ASSERT(dA <= 1e-8);
    CU_ASSERT(dC <= 1e-8);
    CU_ASSERT(dVA <= 1e-8);
    CU_ASSERT(dVC <= 1e-8);
    CU_ASSERT(daN == 0.0);
    CU_ASSERT(dbN <= 1e-9);
    /* --mat: TAPAS's output struct holds TAPAS's numbers */
    char mat[1024];
    snprintf(mat, sizeof mat, "%s/ridge_fit.mat", tmpdir);
    CU_ASSERT(mat_vs_json(mat, "output.Ep.A", json_object_get(json_object_get(ref, "Ep"), "A"), 0, 0) <= 1e-8);
    CU_ASSERT(mat_vs_json(mat, "output.Ep.C", json_object_get(json_object_get(ref, "Ep"), "C"), 0, 0) <= 1e-8);
    CU_ASSERT(mat_vs_json(mat, "output.logF_r", json_object_get(ref, "logF_regions"), 0, 1) <= 1e-6);
    CU_ASSERT(mat_vs_json(mat, "output.logF", json_object_get(ref, "logF"), 0, 0) <= 1e-6 * fabs(Fref));
    CU_ASSERT(max_diff(json_object_get(r, "iterations_regions"),
                       json_object_get(ref, "vb_iterations_regions"), 0) == 0.0);
    CU_ASSERT(max_diff(json_object_get(r, "frequency_bins_regions"),
                       json_object_get(ref, "n_eff_regions"), 0) == 0.0);
    /* no B, no dense covariance; simulated data: no baseline regressor */
    CU_ASSERT_PTR_NULL(json_object_get(json_object_get(r, "posterior_mean"), "B"));
    CU_ASSERT_PTR_NULL(json_object_get(json_object_get(r, "posterior_mean"), "baseline"));
    CU_ASSERT_PTR_NULL(json_object_get(json_object_get(r, "vector"), "posterior_cov"));

    /* the one loader reads it back */
    char path[1024];
    snprintf(path, sizeof path, "%s/ridge_fit.json", tmpdir);
    io_result_summary s;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(io_result_load(path, &s, &err), DCM_OK);
    CU_ASSERT_EQUAL(s.rdcm, 1);
    CU_ASSERT_EQUAL(s.n, 50);
    CU_ASSERT_EQUAL(s.m, 25);
    CU_ASSERT_EQUAL(s.np, 50 * 50 + 50 * 25);
    CU_ASSERT_PTR_NULL(s.Cp);
    CU_ASSERT_EQUAL(s.F, F);
    /* A:R02->R01 is A[0][1] in the file (row = target) */
    io_pname_space S = io_result_space(&s);
    int idx = -1;
    for (int p = 0; p < s.np; p++) {
        char nm[64];
        io_pname_format(&S, p, nm, sizeof nm);
        if (!strcmp(nm, "A:R02->R01"))
            idx = p;
    }
    CU_ASSERT_EQUAL(idx, 0 + 50 * 1);
    if (idx >= 0)
        CU_ASSERT_EQUAL(s.Ep[idx], json_number_value(json_array_get(json_array_get(
                                       json_object_get(json_object_get(r, "posterior_mean"), "A"), 0), 1)));
    io_result_summary_free(&s);
    json_decref(ref);
    ridge_result = r;
}

/* Ordered (deterministic) sparse rDCM over TAPAS's default 19-value grid:
 * F per p0 (1e-6 relative) and the chosen p0 identical, Ep to 1e-6,
 * inclusion probabilities rounded at 0.5 identical. */
static void test_smith50_sparse_ordered(void)
{
    if (!smith50_spec("sparse.json", "sparse_rdcm", "{\"data\": \"simulated\", \"order\": \"fixed\"}",
                      "")) {
        test_skip("../shared rdcm smith50 data are absent");
        return;
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "estimate %s/sparse.json -o %s/sparse_fit.json -q -j 2", tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(test_dcm(cmd, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "p0 = 0.05"));
    json_t *r = load_tmp("sparse_fit.json"), *ref = shared_json(REF "rdcm_sparse_ordered.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "method")), "sparse_rdcm");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(r, "p0_grid")), 19);
    CU_ASSERT(max_diff(json_object_get(r, "p0_grid"), json_object_get(ref, "p0_grid"), 0) == 0.0);
    double dF = max_diff(json_object_get(r, "free_energy_per_p0"), json_object_get(ref, "logF_per_p0"), 1);
    CU_ASSERT(dF <= 1e-6);
    CU_ASSERT_EQUAL(json_number_value(json_object_get(r, "p0")),
                    json_number_value(json_object_get(ref, "chosen_p0")));
    double dA = max_diff(json_object_get(json_object_get(r, "posterior_mean"), "A"),
                         json_object_get(json_object_get(ref, "Ep"), "A"), 0);
    CU_ASSERT(dA <= 1e-6);
    json_t *ip = json_object_get(json_object_get(r, "inclusion_probability"), "A");
    json_t *iref = json_object_get(json_object_get(ref, "Ip"), "A");
    int flips = 0;
    for (size_t i = 0; i < json_array_size(iref); i++)
        for (size_t j = 0; j < json_array_size(json_array_get(iref, i)); j++)
            flips += (json_number_value(json_array_get(json_array_get(ip, i), j)) > 0.5) !=
                     (json_number_value(json_array_get(json_array_get(iref, i), j)) > 0.5);
    printf("\n  ordered sparse: max rel F per p0 %.1e, chosen p0 %g, |dA| %.1e, Ip flips %d ", dF,
           json_number_value(json_object_get(r, "p0")), dA, flips);
    CU_ASSERT_EQUAL(flips, 0);
    json_decref(r);
    json_decref(ref);
}

/* compare, review, check, reduce (refused) and peb on rDCM results */
static void test_downstream(void)
{
    if (!ridge_result) {
        test_skip("needs the smith50 rDCM fit (../shared)");
        return;
    }
    /* a second model: R02 -> R01 switched on in addition */
    if (!smith50_spec("ridge2.json", "rdcm", "{\"data\": \"simulated\"}", ""))
        return;
    json_t *sp = load_tmp("ridge2.json");
    json_t *row0 = json_array_get(json_object_get(sp, "a"), 0);
    int extra = -1;
    for (size_t j = 1; j < json_array_size(row0) && extra < 0; j++)
        if (json_integer_value(json_array_get(row0, j)) == 0)
            extra = (int)j;
    CU_ASSERT_FATAL(extra > 0);
    json_array_set_new(row0, (size_t)extra, json_integer(1));
    char path[1024];
    snprintf(path, sizeof path, "%s/ridge2.json", tmpdir);
    json_dump_file(sp, path, 0);
    json_decref(sp);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "estimate %s/ridge2.json -o %s/ridge2_fit.json -q", tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(test_dcm(cmd, out, sizeof out), 0);
    json_t *r2 = load_tmp("ridge2_fit.json");
    double F1 = json_number_value(json_object_get(ridge_result, "free_energy"));
    double F2 = json_number_value(json_object_get(r2, "free_energy"));
    /* only region 1's regression changed */
    json_t *f1 = json_object_get(ridge_result, "free_energy_regions"),
           *f2 = json_object_get(r2, "free_energy_regions");
    CU_ASSERT(json_number_value(json_array_get(f1, 0)) != json_number_value(json_array_get(f2, 0)));
    CU_ASSERT_EQUAL(json_number_value(json_array_get(f1, 7)), json_number_value(json_array_get(f2, 7)));
    json_decref(r2);

    snprintf(cmd, sizeof cmd, "compare %s/ridge_fit.json %s/ridge2_fit.json --json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL(test_dcm(cmd, out, sizeof out), 0);
    json_error_t je;
    json_t *c = json_loads(out, 0, &je);
    CU_ASSERT_PTR_NOT_NULL(c);
    if (c) {
        char *txt = json_dumps(c, 0);
        char f1s[64];
        snprintf(f1s, sizeof f1s, "%.4f", F1);
        (void)F2;
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "ridge2_fit.json"));
        free(txt);
        json_decref(c);
    }

    snprintf(cmd, sizeof cmd, "review %s/ridge_fit.json", tmpdir);
    CU_ASSERT_EQUAL(test_dcm(cmd, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "regression DCM"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "R02 -> R01") || strstr(out, "A:"));

    snprintf(cmd, sizeof cmd, "check %s/ridge_fit.json", tmpdir);
    CU_ASSERT_EQUAL(test_dcm(cmd, out, sizeof out), 0);

    snprintf(cmd, sizeof cmd, "report %s/ridge_fit.json -o %s/ridge.html --png %s/png", tmpdir, tmpdir,
             tmpdir);
    CU_ASSERT_EQUAL(test_dcm(cmd, out, sizeof out), 0);
    CU_ASSERT(exists("ridge.html"));
    CU_ASSERT(exists("png/connectivity.png"));
    CU_ASSERT_FALSE(exists("png/inclusion.png"));   /* rDCM: no inclusion probabilities */
    snprintf(cmd, sizeof cmd, "report %s/ridge_fit.json %s/ridge2_fit.json -o %s/two.html", tmpdir,
             tmpdir, tmpdir);
    CU_ASSERT_EQUAL(test_dcm(cmd, out, sizeof out), 1);
    CU_ASSERT_FALSE(exists("two.html"));

    snprintf(cmd, sizeof cmd, "reduce %s/ridge_fit.json --off 'A:R02->R01' -o %s/red.json", tmpdir,
             tmpdir);
    CU_ASSERT_EQUAL(test_dcm(cmd, out, sizeof out), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "regression DCM"));
    CU_ASSERT_FALSE(exists("red.json"));
}

/* Resting state: no inputs, empirical data (the constant is a regressor):
 * the result has C with no columns and a baseline; -j does not change it. */
static void test_resting_state(void)
{
    const int n = 4, N = 400;
    char *text = malloc(64 * (size_t)N * n + 64);
    size_t o = (size_t)sprintf(text, "V1\tV2\tV3\tV4\n");
    double x[4] = {0, 0, 0, 0};
    unsigned seed = 7;
    for (int t = 0; t < N; t++) {
        double e[4];
        for (int k = 0; k < 4; k++) {
            seed = seed * 1103515245u + 12345u;
            e[k] = ((seed >> 8) & 0xffff) / 65536.0 - 0.5;
        }
        x[0] = 0.8 * x[0] + e[0];
        x[1] = 0.7 * x[1] + 0.3 * x[0] + e[1];
        x[2] = 0.7 * x[2] + 0.3 * x[1] + e[2];
        x[3] = 0.6 * x[3] + e[3];
        o += (size_t)sprintf(text + o, "%.6f\t%.6f\t%.6f\t%.6f\n", x[0], x[1], x[2], x[3]);
    }
    test_write_file(tmpdir, "rest.tsv", text);
    free(text);
    test_write_file(tmpdir, "rest.json",
                    "{\"method\": \"rdcm\", \"TR\": 2, \"timeseries\": \"rest.tsv\",\n"
                    " \"regions\": [\"V1\", \"V2\", \"V3\", \"V4\"],\n"
                    " \"a\": [\"V1 -> V2\", \"V2 -> V3\", \"V3 -> V4\"]}\n");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "estimate %s/rest.json -o %s/rest1.json -q", tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(test_dcm(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "estimate %s/rest.json -o %s/rest3.json -q -j 3", tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(test_dcm(cmd, out, sizeof out), 0);
    json_t *a = load_tmp("rest1.json"), *b = load_tmp("rest3.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(json_number_value(json_object_get(a, "free_energy")),
                    json_number_value(json_object_get(b, "free_energy")));
    CU_ASSERT_EQUAL(json_array_size(json_object_get(a, "inputs")), 0);
    json_t *pm = json_object_get(a, "posterior_mean");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(pm, "baseline")), 4);
    /* switched-off connection: exactly the prior (0), present ones move */
    json_t *A = json_object_get(pm, "A");
    CU_ASSERT_EQUAL(json_number_value(json_array_get(json_array_get(A, 0), 3)), 0.0);
    CU_ASSERT(json_number_value(json_array_get(json_array_get(A, 1), 0)) != 0.0);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(a, "free_energy_regions")), 4);
    json_decref(a);
    json_decref(b);
    char path[1024];
    snprintf(path, sizeof path, "%s/rest1.json", tmpdir);
    io_result_summary s;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL(io_result_load(path, &s, &err), DCM_OK);
    CU_ASSERT_EQUAL(s.m, 0);
    CU_ASSERT_EQUAL(s.np, 16);
    io_result_summary_free(&s);
}

/* Write a 4-region resting-state series (coupled AR(1), V1 -> V2 weight
 * w) of N scans to NAME. */
static void rest_series(const char *name, int N, double w, unsigned seed)
{
    char *text = malloc(64 * (size_t)N * 4 + 64);
    size_t o = (size_t)sprintf(text, "V1\tV2\tV3\tV4\n");
    double x[4] = {0, 0, 0, 0};
    for (int t = 0; t < N; t++) {
        double e[4];
        for (int k = 0; k < 4; k++) {
            seed = seed * 1103515245u + 12345u;
            e[k] = ((seed >> 8) & 0xffff) / 65536.0 - 0.5;
        }
        x[1] = 0.6 * x[1] + w * x[0] + e[1];
        x[0] = 0.8 * x[0] + e[0];
        x[2] = 0.7 * x[2] + 0.3 * x[1] + e[2];
        x[3] = 0.6 * x[3] + e[3];
        o += (size_t)sprintf(text + o, "%.6f\t%.6f\t%.6f\t%.6f\n", x[0], x[1], x[2], x[3]);
    }
    test_write_file(tmpdir, name, text);
    free(text);
}

/* dcm batch with rDCM specs in the manifest, then dcm peb over A of the
 * subjects' results (a group difference in V1 -> V2). */
static void test_batch_peb(void)
{
    char manifest[4096] = "subject\tmodel\tspec\n", design[1024] = "subject\tintercept\tgroup\n";
    for (int i = 0; i < 6; i++) {
        char ts[64], spec[64], text[1024];
        snprintf(ts, sizeof ts, "s%d.tsv", i);
        snprintf(spec, sizeof spec, "s%d.json", i);
        rest_series(ts, 500, i < 3 ? 0.1 : 0.5, 11u + 7u * (unsigned)i);
        snprintf(text, sizeof text,
                 "{\"method\": \"rdcm\", \"TR\": 2, \"timeseries\": \"%s\", "
                 "\"regions\": [\"V1\", \"V2\", \"V3\", \"V4\"], "
                 "\"a\": [\"V1 -> V2\", \"V2 -> V3\", \"V3 -> V4\"]}", ts);
        test_write_file(tmpdir, spec, text);
        size_t l = strlen(manifest);
        snprintf(manifest + l, sizeof manifest - l, "sub%d\tchain\t%s\n", i, spec);
        l = strlen(design);
        snprintf(design + l, sizeof design - l, "sub%d\t1\t%d\n", i, i < 3 ? -1 : 1);
    }
    test_write_file(tmpdir, "manifest.tsv", manifest);
    test_write_file(tmpdir, "design.tsv", design);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "batch %s/manifest.tsv -o %s/group -j 2 -q", tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(test_dcm(cmd, out, sizeof out), 0);
    CU_ASSERT(exists("group/sub5/chain.json"));
    CU_ASSERT(exists("group/summary.tsv"));
    snprintf(cmd, sizeof cmd, "peb %s/group --model chain --design %s/design.tsv --params 'A:*' --json",
             tmpdir, tmpdir);
    int rc = test_dcm(cmd, out, sizeof out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    json_error_t je;
    json_t *o = json_loads(strchr(out, '{'), JSON_DISABLE_EOF_CHECK, &je);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    /* the group effect of V1 -> V2 is positive (0.5 vs 0.1 in the data) */
    json_t *eff = json_object_get(o, "effects");
    int seen = 0;
    size_t i;
    json_t *e;
    json_array_foreach(eff, i, e) {
        const char *p = json_string_value(json_object_get(e, "parameter"));
        const char *c = json_string_value(json_object_get(e, "covariate"));
        if (p && c && !strcmp(p, "A:V1->V2") && !strcmp(c, "group")) {
            seen = 1;
            printf("\n  PEB group effect on A:V1->V2: %g ", json_number_value(json_object_get(e, "mean")));
            CU_ASSERT(json_number_value(json_object_get(e, "mean")) > 0);
        }
    }
    CU_ASSERT(seen);
    json_decref(o);

    /* dcm loo on the same results (it crashed on rDCM's missing joint
       covariance): the group predicted from A:V1->V2, every prediction
       finite */
    snprintf(cmd, sizeof cmd, "loo %s/group --model chain --design %s/design.tsv --param 'A:V1->V2' "
             "--covariate group --json", tmpdir, tmpdir);
    rc = test_dcm(cmd, out, sizeof out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    o = json_loads(strchr(out, '{'), JSON_DISABLE_EOF_CHECK, &je);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    json_t *pred = json_object_get(o, "predicted");
    CU_ASSERT_EQUAL(json_array_size(pred), 6);
    int finite = json_array_size(pred) == 6;
    json_array_foreach(pred, i, e) finite &= json_is_number(e) && isfinite(json_number_value(e));
    CU_ASSERT(finite);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(o, "parameters"), 0)), "A:V1->V2");
    printf("LOO r %g ", json_number_value(json_object_get(o, "r")));
    CU_ASSERT(json_is_number(json_object_get(o, "r")) && json_number_value(json_object_get(o, "r")) > 0);
    json_decref(o);
}

/* Bad input: exit 2, a message naming the fault, no output file. */
static void expect_refusal(const char *spec_name, const char *text, const char *needle)
{
    test_write_file(tmpdir, spec_name, text);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "estimate %s/%s -o %s/bad_out.json -q", tmpdir, spec_name, tmpdir);
    int rc = test_dcm(cmd, out, sizeof out);
    CU_ASSERT_EQUAL(rc, 2);
    if (!strstr(out, needle))
        printf("\n  %s: expected \"%s\" in: %s", spec_name, needle, out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, needle));
    CU_ASSERT_FALSE(exists("bad_out.json"));
}

static void test_bad_input(void)
{
    /* 40 scans x TR 0.5 s = 20 s: shorter than the HRF's 32 s */
    char text[8192];
    size_t o = (size_t)snprintf(text, sizeof text, "A\tB\n");
    for (int t = 0; t < 40; t++)
        o += (size_t)snprintf(text + o, sizeof text - o, "%g\t%g\n", sin(t * 0.7), cos(t * 0.3));
    test_write_file(tmpdir, "short.tsv", text);
    o = (size_t)snprintf(text, sizeof text, "A\tB\n");
    for (int t = 0; t < 200; t++)
        o += (size_t)snprintf(text + o, sizeof text - o, "%g\t%g\n", sin(t * 0.7), cos(t * 0.3));
    test_write_file(tmpdir, "ok.tsv", text);
    test_write_file(tmpdir, "events.tsv", "onset\tduration\ttrial_type\n10\t20\tu\n60\t20\tu\n");
#define HEAD "{\"method\": \"rdcm\", \"TR\": 0.5, \"regions\": [\"A\", \"B\"], \"a\": [\"A -> B\"], "
    expect_refusal("short.json", HEAD "\"timeseries\": \"short.tsv\"}", "shorter than");
    expect_refusal("p0.json",
                   "{\"method\": \"sparse_rdcm\", \"TR\": 0.5, \"regions\": [\"A\", \"B\"], "
                   "\"a\": [\"A -> B\"], \"timeseries\": \"ok.tsv\", \"rdcm\": {\"p0\": 1.5}}",
                   "strictly between 0 and 1");
    expect_refusal("p0grid.json",
                   "{\"method\": \"sparse_rdcm\", \"TR\": 0.5, \"regions\": [\"A\", \"B\"], "
                   "\"a\": [\"A -> B\"], \"timeseries\": \"ok.tsv\", \"rdcm\": {\"p0\": [0.1, 0]}}",
                   "\"p0\"[1] is 0");
    expect_refusal("b.json",
                   HEAD "\"timeseries\": \"ok.tsv\", \"inputs\": [\"u\"], \"events\": \"events.tsv\", "
                   "\"c\": {\"u\": [\"A\"]}, \"b\": {\"u\": [\"A -> B\"]}}",
                   "has no B");
    expect_refusal("d.json", HEAD "\"timeseries\": \"ok.tsv\", \"d\": {\"A\": [\"A -> B\"]}}", "has no D");
    expect_refusal("restarts.json",
                   "{\"method\": \"sparse_rdcm\", \"TR\": 0.5, \"regions\": [\"A\", \"B\"], "
                   "\"a\": [\"A -> B\"], \"timeseries\": \"ok.tsv\", \"rdcm\": {\"restarts\": 0}}",
                   "\"restarts\" must be a whole number from 1");
    expect_refusal("key.json", HEAD "\"timeseries\": \"ok.tsv\", \"rdcm\": {\"filtr\": 5}}",
                   "unknown key \"filtr\"");
    expect_refusal("method.json",
                   "{\"method\": \"rdcn\", \"TR\": 0.5, \"regions\": [\"A\", \"B\"], \"a\": [\"A -> B\"], "
                   "\"timeseries\": \"ok.tsv\"}", "\"method\" must be");
    expect_refusal("data.json", HEAD "\"timeseries\": \"ok.tsv\", \"rdcm\": {\"data\": \"real\"}}",
                   "\"data\" must be \"empirical\"");
    expect_refusal("ridge_p0.json", HEAD "\"timeseries\": \"ok.tsv\", \"rdcm\": {\"p0\": 0.5}}",
                   "belong to sparse rDCM");
    expect_refusal("opts.json", HEAD "\"timeseries\": \"ok.tsv\", \"options\": {\"maxit\": 3}}",
                   "not used by regression DCM");
    expect_refusal("noc.json", HEAD "\"timeseries\": \"ok.tsv\", \"inputs\": [\"u\"], "
                   "\"events\": \"events.tsv\"}", "missing \"c\"");
    /* --maxit makes no sense for rDCM: a usage error (--mat: test_rdcm_mat) */
    test_write_file(tmpdir, "good.json", HEAD "\"timeseries\": \"ok.tsv\"}");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "estimate %s/good.json -o %s/bad_out.json --maxit 3", tmpdir, tmpdir);
    CU_ASSERT_EQUAL(test_dcm(cmd, out, sizeof out), 1);
    CU_ASSERT_FALSE(exists("bad_out.json"));
#undef HEAD
}

/* The rDCM parameter table: A then C, nothing else; names as a task DCM's. */
static void test_table(void)
{
    model_layout T;
    CU_ASSERT_EQUAL(model_layout_init_rdcm(&T, 3, 2), 0);
    CU_ASSERT_EQUAL(T.np, 9 + 6);
    CU_ASSERT_EQUAL(T.block[MODEL_BLOCK_A].offset, 0);
    CU_ASSERT_EQUAL(T.block[MODEL_BLOCK_C].offset, 9);
    CU_ASSERT_EQUAL(T.block[MODEL_BLOCK_B].count, 0);
    CU_ASSERT_EQUAL(T.block[MODEL_BLOCK_TRANSIT].count, 0);
    char *regions[] = {"V1", "V2", "V3"}, *inputs[] = {"u", "w"};
    io_pname_space S = {3, 2, 0, regions, inputs, IO_PNAME_RDCM};
    CU_ASSERT_EQUAL(io_pname_count(&S), 15);
    char nm[64];
    io_pname_format(&S, 1, nm, sizeof nm);
    CU_ASSERT_STRING_EQUAL(nm, "A:V1->V2");
    io_pname_format(&S, 9 + 3, nm, sizeof nm);
    CU_ASSERT_STRING_EQUAL(nm, "C:w->V1");
    io_pname_space task = {3, 2, 0, regions, inputs, 0};
    int map[64];
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL(io_pname_map(&S, "r.json", &task, "t.json", map, &err), DCM_ERR_INPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "regression"));
}

/* Largest |mat - json| over a .mat array (column-major, rows x cols) and
 * a JSON matrix (list of rows) or vector (rows = its length, cols 1);
 * sq: compare with the square of the JSON values (SDs -> variances);
 * rel: relative to |json|. INFINITY when a shape differs. */
static double mat_vs_json(const char *mat, const char *field, json_t *j, int sq, int rel)
{
    int rank = 0;
    size_t dims[4] = {0, 0, 0, 0};
    double *x = NULL;
    dcm_error err = {0, ""};
    if (io_mat_read_array(mat, field, &rank, dims, &x, &err) != DCM_OK) {
        printf("\n  %s: %s", field, err.msg);
        return INFINITY;
    }
    size_t rows = json_array_size(j), cols = 1;
    int matrix = rows && json_is_array(json_array_get(j, 0));
    if (matrix)
        cols = json_array_size(json_array_get(j, 0));
    double d = 0.0;
    if (json_is_number(j)) {
        rows = cols = 1;
        d = fabs(x[0] - json_number_value(j));
    } else if (rank != 2 || dims[0] * dims[1] != rows * cols ||
               (matrix && (dims[0] != rows || dims[1] != cols))) {
        d = INFINITY;
    } else {
        for (size_t i = 0; i < rows; i++)
            for (size_t c = 0; c < cols; c++) {
                json_t *e = matrix ? json_array_get(json_array_get(j, i), c) : json_array_get(j, i);
                double y = json_number_value(e), m = x[i + rows * c];
                if (sq)
                    y *= y;
                double dd = fabs(m - y);
                d = fmax(d, rel && y != 0 ? dd / fabs(y) : dd);
            }
    }
    free(x);
    return d;
}

/* A complex N x 1 field of output.signal, read with matio: re, im
 * (malloc'd); returns the length or -1. */
static long mat_complex_field(const char *path, const char *field, double **re, double **im)
{
    *re = *im = NULL;
    mat_t *mf = Mat_Open(path, MAT_ACC_RDONLY);
    if (!mf)
        return -1;
    long len = -1;
    matvar_t *o = Mat_VarRead(mf, "output");
    matvar_t *sg = o ? Mat_VarGetStructFieldByName(o, "signal", 0) : NULL;
    matvar_t *f = sg ? Mat_VarGetStructFieldByName(sg, field, 0) : NULL;
    if (f && f->isComplex && f->class_type == MAT_C_DOUBLE && f->rank == 2 && f->dims[1] == 1) {
        const mat_complex_split_t *z = f->data;
        len = (long)f->dims[0];
        *re = malloc(sizeof(double) * (size_t)len);
        *im = malloc(sizeof(double) * (size_t)len);
        memcpy(*re, z->Re, sizeof(double) * (size_t)len);
        memcpy(*im, z->Im, sizeof(double) * (size_t)len);
    }
    Mat_VarFree(o);
    Mat_Close(mf);
    return len;
}

/* output.signal and output.residuals against a recomputation from the
 * data: yd_source_fft at every bin the filter kept is the DFT of the
 * forward difference of y_source (computed here directly), 0 elsewhere;
 * yd_pred_rdcm_fft fits it (less residual than the response itself);
 * R_rdcm = y_source - y_pred_rdcm and y_mse_rdcm its mean square. */
static void check_mat_signals(const char *mat, int N, int n, double TR)
{
    int rank;
    size_t dims[4];
    double *y = NULL, *yp = NULL, *R = NULL, *mse = NULL, *dr, *di, *pr, *pi;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(io_mat_read_array(mat, "output.signal.y_source", &rank, dims, &y, &err), DCM_OK);
    CU_ASSERT_EQUAL(io_mat_read_array(mat, "output.signal.y_pred_rdcm", &rank, dims, &yp, &err), DCM_OK);
    CU_ASSERT_EQUAL(io_mat_read_array(mat, "output.residuals.R_rdcm", &rank, dims, &R, &err), DCM_OK);
    CU_ASSERT_EQUAL(io_mat_read_array(mat, "output.residuals.y_mse_rdcm", &rank, dims, &mse, &err), DCM_OK);
    CU_ASSERT_EQUAL(mat_complex_field(mat, "yd_source_fft", &dr, &di), (long)N * n);
    CU_ASSERT_EQUAL(mat_complex_field(mat, "yd_pred_rdcm_fft", &pr, &pi), (long)N * n);
    if (y && yp && R && mse && dr && pr) {
        double d = 0, ms = 0, scale = 0;
        for (int q = 0; q < N * n; q++) {
            d = fmax(d, fabs(y[q] - yp[q] - R[q]));
            ms += R[q] * R[q] / (N * n);
            scale = fmax(scale, fabs(y[q]));
        }
        CU_ASSERT(d <= 1e-12 * scale);
        CU_ASSERT_DOUBLE_EQUAL(mse[0], ms, 1e-12 * ms);
        for (int k = 0; k < n; k++) {
            double worst = 0, big = 0, res = 0, tot = 0;
            int kept = 0;
            for (int f = 0; f < N; f++) {
                size_t q = f + (size_t)N * k;
                double complex yd = dr[q] + I * di[q], p = pr[q] + I * pi[q];
                big = fmax(big, cabs(yd));
                if (yd == 0)
                    continue;
                kept++;
                double complex Y = 0;
                for (int t = 0; t < N; t++)
                    Y += y[t + (size_t)N * k] * cexp(-2 * M_PI * I * (double)f * t / N);
                worst = fmax(worst, cabs(yd - (cexp(2 * M_PI * I * (double)f / N) - 1) * Y / TR));
                res += cabs(yd - p) * cabs(yd - p);
                tot += cabs(yd) * cabs(yd);
            }
            CU_ASSERT(kept > 2);
            CU_ASSERT(worst <= 1e-9 * big);
            CU_ASSERT(res < 0.9 * tot);
            printf("\n  region %d: %d kept bins, yd_source vs direct DFT %.2e, |yd - pred|^2 / |yd|^2 = %.3f",
                   k + 1, kept, worst / big, res / tot);
        }
    }
    free(y);
    free(yp);
    free(R);
    free(mse);
    free(dr);
    free(di);
    free(pr);
    free(pi);
}

/* output.sN (TAPAS's per-region posterior covariances, kept because
 * --mat was asked): n cells of (n+m+nb)^2, symmetric, diagonals equal to
 * output.Vp (C back in the regression's units), positive definite over
 * the region's regressors, and not diagonal (a full covariance). */
static void check_mat_sN(const char *mat, int n, int m, int nb, double c_scale)
{
    int rank;
    size_t dims[4];
    double *VA = NULL, *VC = NULL;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(io_mat_read_array(mat, "output.Vp.A", &rank, dims, &VA, &err), DCM_OK);
    CU_ASSERT_EQUAL_FATAL(io_mat_read_array(mat, "output.Vp.C", &rank, dims, &VC, &err), DCM_OK);
    mat_t *mf = Mat_Open(mat, MAT_ACC_RDONLY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mf);
    matvar_t *o = Mat_VarRead(mf, "output");
    matvar_t *c = o ? Mat_VarGetStructFieldByName(o, "sN", 0) : NULL;
    CU_ASSERT_FATAL(c && c->class_type == MAT_C_CELL && c->dims[0] == (size_t)n);
    const int D = n + m + nb;
    double worst = 0, offdiag = 0;
    int pd = 1;
    for (int k = 0; k < n; k++) {
        matvar_t *S = Mat_VarGetCell(c, k);
        CU_ASSERT_FATAL(S && S->dims[0] == (size_t)D && S->dims[1] == (size_t)D);
        const double *x = S->data;
        int idx[256], d = 0;
        for (int j = 0; j < D; j++) {
            double want = j < n ? VA[k + (size_t)n * j] : j < n + m ? VC[k + (size_t)n * (j - n)] / (c_scale * c_scale) : -1;
            if (want >= 0)
                worst = fmax(worst, fabs(x[j + (size_t)D * j] - want) / fmax(want, 1e-300));
            if (x[j + (size_t)D * j] > 0 && d < 256)
                idx[d++] = j;
            for (int i = 0; i < D; i++) {
                worst = fmax(worst, fabs(x[i + (size_t)D * j] - x[j + (size_t)D * i]) / fmax(fabs(x[i + (size_t)D * j]), 1e-300) * (x[i + (size_t)D * j] != 0));
                if (i != j)
                    offdiag = fmax(offdiag, fabs(x[i + (size_t)D * j]));
            }
        }
        /* Cholesky over the region's regressors */
        double L[256 * 256];
        for (int j = 0; j < d && pd; j++)
            for (int i = j; i < d; i++) {
                double v = x[idx[i] + (size_t)D * idx[j]];
                for (int q = 0; q < j; q++)
                    v -= L[i + 256 * q] * L[j + 256 * q];
                if (i == j) {
                    if (!(v > 0))
                        pd = 0;
                    L[j + 256 * j] = sqrt(v > 0 ? v : 1);
                } else {
                    L[i + 256 * j] = v / L[j + 256 * j];
                }
            }
    }
    printf("\n  sN: diagonal vs Vp, symmetry %.1e; largest off-diagonal %.2e; positive definite %d", worst,
           offdiag, pd);
    CU_ASSERT(worst <= 1e-12);
    CU_ASSERT(offdiag > 0);
    CU_ASSERT(pd);
    Mat_VarFree(o);
    Mat_Close(mf);
    free(VA);
    free(VC);
}

/* dcm estimate --mat on an rDCM spec writes TAPAS's `output` struct: read
 * back with matio it equals the JSON result (Ep, variances, F, noise,
 * inclusion probabilities, p0 grid) to 1e-12; shapes as TAPAS's. Data
 * simulated here by `dcm simulate` (no ../shared). */
static void test_rdcm_mat(void)
{
    test_write_file(tmpdir, "mev.tsv", "onset\tduration\ttrial_type\n10\t20\tstim\n60\t15\tstim\n"
                                       "100\t25\tstim\n150\t10\tstim\n");
#define MSPEC(extra)                                                                        \
    "{\"TR\": 1.0, \"regions\": [\"V1\", \"V5\", \"PFC\"], \"inputs\": [\"stim\"],\n"       \
    " \"events\": \"mev.tsv\", \"a\": [[1, 0, 0], [1, 1, 0], [0, 1, 1]], \"c\": [[1], [0], [0]],\n" extra "}\n"
    test_write_file(tmpdir, "msim.json", MSPEC("\"method\": \"rdcm\", \"scans\": 200, "
                                               "\"rdcm\": {\"data\": \"simulated\"}"));
    test_write_file(tmpdir, "mtruth.json", "{\"A\": [[-0.5, 0, 0], [0.4, -0.5, 0], [0, 0.3, -0.5]],\n"
                                           " \"C\": [[2], [0], [0]]}\n");
    test_write_file(tmpdir, "mridge.json", MSPEC("\"method\": \"rdcm\", \"timeseries\": \"my.tsv\", "
                                                 "\"rdcm\": {\"data\": \"empirical\"}"));
    test_write_file(tmpdir, "msparse.json",
                    MSPEC("\"method\": \"sparse_rdcm\", \"timeseries\": \"my.tsv\", \"rdcm\": {\"data\": "
                          "\"simulated\", \"order\": \"fixed\", \"p0\": [0.3, 0.5, 0.7]}"));
#undef MSPEC
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "simulate %s/msim.json --params %s/mtruth.json --snr 3 --seed 5 -o %s/my.tsv",
             tmpdir, tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(test_dcm(cmd, out, sizeof out), 0);
    static const char *const names[] = {"mridge", "msparse"};
    for (int s = 0; s < 2; s++) {
        char mat[1024];
        snprintf(mat, sizeof mat, "%s/%s.mat", tmpdir, names[s]);
        snprintf(cmd, sizeof cmd, "estimate %s/%s.json -o %s/%s_fit.json --mat %s -q", tmpdir, names[s],
                 tmpdir, names[s], mat);
        CU_ASSERT_EQUAL_FATAL(test_dcm(cmd, out, sizeof out), 0);
        char fit[256];
        snprintf(fit, sizeof fit, "%s_fit.json", names[s]);
        json_t *r = load_tmp(fit);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        json_t *pm = json_object_get(r, "posterior_mean"), *sd = json_object_get(r, "posterior_sd");
        json_t *noise = json_object_get(r, "noise");
        double e;
        CU_ASSERT((e = mat_vs_json(mat, "output.Ep.A", json_object_get(pm, "A"), 0, 0)) <= 1e-12);
        CU_ASSERT((e = mat_vs_json(mat, "output.Ep.C", json_object_get(pm, "C"), 0, 0)) <= 1e-12);
        CU_ASSERT(mat_vs_json(mat, "output.Vp.A", json_object_get(sd, "A"), 1, 1) <= 1e-12);
        CU_ASSERT(mat_vs_json(mat, "output.Vp.C", json_object_get(sd, "C"), 1, 1) <= 1e-12);
        CU_ASSERT(mat_vs_json(mat, "output.logF", json_object_get(r, "free_energy"), 0, 0) <= 1e-12);
        CU_ASSERT(mat_vs_json(mat, "output.logF_r", json_object_get(r, "free_energy_regions"), 0, 0) <=
                  1e-12);
        CU_ASSERT(mat_vs_json(mat, "output.aN", json_object_get(noise, "shape"), 0, 0) <= 1e-12);
        CU_ASSERT(mat_vs_json(mat, "output.bN", json_object_get(noise, "rate"), 0, 1) <= 1e-12);
        CU_ASSERT(mat_vs_json(mat, "output.t", json_object_get(noise, "precision_mean"), 0, 1) <= 1e-12);
        /* the F of a region moved: a wrong field would not pass */
        CU_ASSERT(mat_vs_json(mat, "output.logF_r", json_object_get(r, "noise_log_precision"), 0, 0) > 1e-3);
        int rank;
        size_t dims[4];
        double *x = NULL;
        dcm_error err = {0, ""};
        /* shapes as TAPAS's: B n x n x m, logF_r 1 x n, aN n x 1, y_source Y(:), u at micro-time */
        CU_ASSERT_EQUAL(io_mat_read_array(mat, "output.Ep.B", &rank, dims, &x, &err), DCM_OK);
        CU_ASSERT(rank == 3 && dims[0] == 3 && dims[1] == 3 && dims[2] == 1);
        CU_ASSERT(x && x[4] == 0.0);
        free(x);
        x = NULL;
        CU_ASSERT_EQUAL(io_mat_read_array(mat, "output.logF_r", &rank, dims, &x, &err), DCM_OK);
        CU_ASSERT(dims[0] == 1 && dims[1] == 3);
        free(x);
        x = NULL;
        CU_ASSERT_EQUAL(io_mat_read_array(mat, "output.signal.y_source", &rank, dims, &x, &err), DCM_OK);
        CU_ASSERT(dims[0] == 600 && dims[1] == 1);
        free(x);
        x = NULL;
        CU_ASSERT_EQUAL(io_mat_read_array(mat, "output.inputs.u", &rank, dims, &x, &err), DCM_OK);
        CU_ASSERT(dims[0] == 200 * 16 && dims[1] == 1);
        double on = 0;
        for (size_t k = 0; x && k < dims[0]; k++)
            on += x[k];
        CU_ASSERT_DOUBLE_EQUAL(on, (20 + 15 + 25 + 10) * 16, 1e-9);   /* 70 s of events */
        free(x);
        x = NULL;
        if (s == 0) {
            /* empirical: the baseline is a regressor; Ip is the pattern with its diagonal */
            CU_ASSERT(mat_vs_json(mat, "output.Ep.baseline", json_object_get(pm, "baseline"), 0, 0) <= 1e-12);
            json_t *ip = json_loads("[[1, 0, 0], [1, 1, 0], [0, 1, 1]]", 0, NULL);
            CU_ASSERT(mat_vs_json(mat, "output.Ip.A", ip, 0, 0) == 0.0);
            json_decref(ip);
        } else {
            json_t *ip = json_object_get(r, "inclusion_probability");
            CU_ASSERT(mat_vs_json(mat, "output.Ip.A", json_object_get(ip, "A"), 0, 0) <= 1e-12);
            CU_ASSERT(mat_vs_json(mat, "output.Ip.C", json_object_get(ip, "C"), 0, 0) <= 1e-12);
            CU_ASSERT(mat_vs_json(mat, "output.p0", json_object_get(r, "p0"), 0, 0) == 0.0);
            CU_ASSERT(mat_vs_json(mat, "output.p0_all", json_object_get(r, "p0_grid"), 0, 0) == 0.0);
            CU_ASSERT(mat_vs_json(mat, "output.logF_all", json_object_get(r, "free_energy_per_p0"), 0, 0) <=
                      1e-12);
            CU_ASSERT_EQUAL(io_mat_read_array(mat, "output.logF_term.log_q_z", &rank, dims, &x, &err), DCM_OK);
            free(x);
            x = NULL;
        }
        json_decref(r);
    }
    for (int s = 0; s < 2; s++) {
        char mat[1024];
        snprintf(mat, sizeof mat, "%s/%s.mat", tmpdir, names[s]);
        check_mat_signals(mat, 200, 3, 1.0);
        check_mat_sN(mat, 3, 1, s == 0, s == 0 ? 16.0 : 1.0);   /* mridge: empirical */
    }
    /* dcm report draws the fit in time from the result's spec (data and inputs) */
    snprintf(cmd, sizeof cmd, "report %s/msparse_fit.json -o %s/msparse.html --png %s/mpng", tmpdir, tmpdir,
             tmpdir);
    CU_ASSERT_EQUAL(test_dcm(cmd, out, sizeof out), 0);
    CU_ASSERT(exists("mpng/fit.png") && exists("mpng/inclusion.png") && exists("mpng/connectivity.png"));
    CU_ASSERT(exists("mpng/fit_spectra.png"));   /* the fit in the frequency domain */
    char hp[1024];
    snprintf(hp, sizeof hp, "%s/msparse.html", tmpdir);
    FILE *hf = fopen(hp, "r");
    static char html[1 << 20];
    size_t hn = hf ? fread(html, 1, sizeof html - 1, hf) : 0;
    html[hn] = '\0';
    if (hf)
        fclose(hf);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "alt=\"observed and predicted BOLD\""));
    CU_ASSERT_PTR_NULL(strstr(html, "No fit in time"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "alt=\"observed and predicted spectra\""));
    CU_ASSERT_PTR_NULL(strstr(html, "No fit in the frequency domain"));
    /* its spec gone: the report is still written, and says why the fit is missing */
    snprintf(hp, sizeof hp, "%s/msparse.json", tmpdir);
    CU_ASSERT_EQUAL(unlink(hp), 0);
    snprintf(cmd, sizeof cmd, "report %s/msparse_fit.json -o %s/msparse2.html", tmpdir, tmpdir);
    CU_ASSERT_EQUAL(test_dcm(cmd, out, sizeof out), 0);
    snprintf(hp, sizeof hp, "%s/msparse2.html", tmpdir);
    hf = fopen(hp, "r");
    hn = hf ? fread(html, 1, sizeof html - 1, hf) : 0;
    html[hn] = '\0';
    if (hf)
        fclose(hf);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "No fit in time: its spec could not be read"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "No fit in the frequency domain: its spec could not be read"));
    /* the .mat cannot be written: neither file is left */
    snprintf(cmd, sizeof cmd, "estimate %s/mridge.json -o %s/nomat.json --mat %s/no/such/dir/r.mat -q",
             tmpdir, tmpdir, tmpdir);
    CU_ASSERT_NOT_EQUAL(test_dcm(cmd, out, sizeof out), 0);
    CU_ASSERT_FALSE(exists("nomat.json"));
}

static int setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_rdcm_cli.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : 1;
}

int main(void)
{
    if (setup())
        return 1;
    static const test_case cases[] = {
        {"rDCM table: A then C, task names, no match with a task DCM", test_table},
        {"dcm estimate smith50 rDCM equals TAPAS (F_k 1e-6, Ep 1e-8, var 1e-8)", test_smith50_ridge},
        {"dcm estimate smith50 ordered sparse rDCM: F per p0, chosen p0, Ep, Ip", test_smith50_sparse_ordered},
        {"compare / review / check / reduce on rDCM results", test_downstream},
        {"resting-state rDCM (no inputs), threads do not change it", test_resting_state},
        {"dcm batch with rDCM specs, dcm peb over A of their results", test_batch_peb},
        {"rDCM spec bad input: exit 2, the reason, no output", test_bad_input},
        {"dcm estimate --mat on rDCM: TAPAS's output struct equals the JSON (1e-12)", test_rdcm_mat},
        {NULL, NULL}};
    int rc = test_run("rdcm_cli", cases);
    json_decref(ridge_result);
    test_remove_dir(tmpdir);
    return rc;
}
