/* test_alloc_fail.c — the library's error paths when memory runs out.
 *
 * This program is linked with -Wl,--wrap=malloc,--wrap=calloc,
 * --wrap=realloc,--wrap=strdup (Makefile): every call of those from the
 * library's objects (and this file) goes through the wrappers below, which
 * fail the Nth allocation. libc's own strdup calls malloc from inside libc,
 * which --wrap cannot see, hence strdup's own wrapper. Allocations made
 * inside other libraries (jansson, matio, GSL, nifticlib) are not counted.
 *
 * For each representative operation and N = 1, 2, ... until the operation
 * makes fewer than N allocations (so it ran to the end): the operation must
 * either succeed (a failed allocation that has a fallback) or return an
 * error code with a message; never crash, never leak (LeakSanitizer checks
 * the whole run at exit), never trip ASan/UBSan, never leave a temporary or
 * half-written output. The counter lives here only: the library keeps no
 * global state. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_targets.h"
#include "io/io_events.h"
#include "io/io_extract.h"
#include "io/io_lme.h"
#include "io/io_mat.h"
#include "dcm/report/report.h"
#include "io/io_result.h"
#include "io/io_spec.h"
#include "io/io_tsv.h"
#include "dcm/dcm_batch.h"
#include "vl/vl_nlsi.h"
#include "tests/test_util.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

/* 0: counting off. Otherwise the allocation numbered fail_at fails. */
static long fail_at;
static long seen;

static int alloc_fails(void)
{
    if (!fail_at)
        return 0;
    return ++seen == fail_at;
}

void *__wrap_malloc(size_t n) { return alloc_fails() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t k, size_t n) { return alloc_fails() ? NULL : __real_calloc(k, n); }
void *__wrap_realloc(void *p, size_t n) { return alloc_fails() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return alloc_fails() ? NULL : __real_strdup(s); }

static char dir[256];

static const char *in_dir(const char *rel, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", dir, rel);
    return buf;
}

/* Run op with the 1st, 2nd, ... allocation failing until it completes;
 * returns the number of allocations of a full run (0 when it never
 * completed within limit). Every outcome is checked. */
static long drive(const char *name, int (*op)(dcm_error *err), long limit)
{
    long n, system_errors = 0, other_errors = 0, survived = 0;
    for (n = 1; n <= limit; n++) {
        dcm_error err = {0, ""};
        seen = 0;
        fail_at = n;
        int rc = op(&err);
        fail_at = 0;
        if (seen < n) {
            /* no Nth allocation: the run was complete and must succeed */
            if (rc != DCM_OK)
                printf("\n  %s: a run without failures gave %d: %s", name, rc, err.msg);
            CU_ASSERT_EQUAL(rc, DCM_OK);
            break;
        }
        if (rc == DCM_OK) {
            survived++;
            continue;
        }
        if (!err.msg[0])
            printf("\n  %s: allocation %ld failed -> code %d without a message", name, n, rc);
        CU_ASSERT(err.msg[0] != '\0');
        if (rc == DCM_ERR_SYSTEM) {
            system_errors++;
        } else {
            other_errors++;
            printf("\n  %s: allocation %ld failed -> code %d: %s", name, n, rc, err.msg);
        }
        /* running out of memory is a system error, not a fault of the input */
        CU_ASSERT_EQUAL(rc, DCM_ERR_SYSTEM);
    }
    printf("\n  %-28s %5ld allocations: %ld out-of-memory errors, %ld other codes, %ld survived",
           name, n - 1, system_errors, other_errors, survived);
    CU_ASSERT(n <= limit);
    CU_ASSERT(test_no_temp_files(dir));
    return n <= limit ? n - 1 : 0;
}

/* ---- the operations ---- */

static int op_spec(dcm_error *err)
{
    char p[512];
    dcm_problem *P = NULL;
    int rc = io_spec_load(in_dir("spec.json", p, sizeof p), &P, err);
    dcm_problem_free(P);
    return rc;
}

static int op_spec_design(dcm_error *err)
{
    char p[512];
    dcm_problem *P = NULL;
    int rc = io_spec_load_ex(in_dir("spec.json", p, sizeof p), IO_SPEC_DESIGN_ONLY, &P, err);
    dcm_problem_free(P);
    return rc;
}

static int op_tsv(dcm_error *err)
{
    char p[512];
    io_table t;
    int rc = io_tsv_read(in_dir("ts.tsv", p, sizeof p), &t, err);
    if (rc == DCM_OK)
        io_table_free(&t);
    if (rc)
        return rc;
    io_text_table tt;
    rc = io_text_read(in_dir("ts.tsv", p, sizeof p), &tt, err);
    if (rc == DCM_OK)
        io_text_free(&tt);
    return rc;
}

static int op_events(dcm_error *err)
{
    char p[512];
    char *names[2] = {"Stim", "Attn"};
    const int v = 24, nu = v * 16;
    double *u = __real_malloc(sizeof(double) * nu * 2);
    int rc = io_events_to_microtime(in_dir("ev.tsv", p, sizeof p), 2.0, v, 2, names, u, NULL, err);
    free(u);
    return rc;
}

static int op_result(dcm_error *err)
{
    io_result_summary s;
    int rc = io_result_load("fuzz/seeds/result/sub-01.json", &s, err);
    io_result_summary_free(&s);
    if (rc)
        return rc;
    report_model m;
    rc = report_load("fuzz/seeds/result/sub-02.json", &m, err);
    if (rc == DCM_OK)
        report_model_free(&m);
    return rc;
}

static int op_lme(dcm_error *err)
{
    char p[512];
    io_lme_table T;
    int rc = io_lme_read(in_dir("lme.tsv", p, sizeof p), &T, err);
    if (rc == DCM_OK)
        io_lme_free(&T);
    return rc;
}

static int op_manifest(dcm_error *err)
{
    char p[512];
    dcm_batch_manifest m;
    int rc = dcm_batch_manifest_load(in_dir("manifest.tsv", p, sizeof p), &m, err);
    if (rc == DCM_OK)
        dcm_batch_manifest_free(&m);
    return rc;
}

static int op_mat(dcm_error *err)
{
    dcm_problem *P = NULL;
    int rc = io_mat_load_dcm("fuzz/seeds/mat/dcm.mat", &P, err);
    dcm_problem_free(P);
    if (rc)
        return rc;
    P = NULL;
    rc = io_mat_load_dcm("fuzz/seeds/mat/dcm_z.mat", &P, err); /* compressed */
    dcm_problem_free(P);
    if (rc)
        return rc;
    io_voi voi;
    rc = io_mat_load_voi("fuzz/seeds/mat/voi.mat", &voi, err);
    if (rc == DCM_OK)
        io_voi_free(&voi);
    return rc;
}

/* estimate (two iterations) and write the result as JSON and .mat */
static int op_estimate(dcm_error *err)
{
    char p[512], out[512], mat[512];
    dcm_problem *P = NULL;
    dcm_result *R = NULL;
    int rc = io_spec_load(in_dir("short.json", p, sizeof p), &P, err);
    if (rc == DCM_OK)
        rc = dcm_estimate(P, NULL, NULL, &R, err);
    if (rc == DCM_OK) {
        in_dir("r.json", out, sizeof out);
        in_dir("r.mat", mat, sizeof mat);
        rc = io_result_write_json(out, P, R, err);
        if (rc == DCM_OK)
            rc = io_mat_write_dcm(mat, P, R, err);
        /* whole or absent: a failed write leaves no file */
        CU_ASSERT(rc == DCM_OK || access(mat, F_OK) != 0);
        unlink(out);
        unlink(mat);
    }
    dcm_result_free(R);
    dcm_problem_free(P);
    return rc;
}

static int op_extract(dcm_error *err)
{
    char bold[512], atlas[512];
    io_extract_opts o;
    memset(&o, 0, sizeof o);
    o.bold = in_dir("bold.nii", bold, sizeof bold);
    o.atlas = in_dir("atlas.nii", atlas, sizeof atlas);
    o.label = 1;
    o.name = "roi";
    o.hpf = 8.0;
    o.tr = 2.0;
    o.summary = IO_SUMMARY_EIGEN;
    io_extract_result r;
    memset(&r, 0, sizeof r);
    int rc = io_extract_run(&o, &r, err);
    if (rc == DCM_OK)
        io_extract_result_free(&r);
    return rc;
}

/* the VL engine on its own: a linear model y = X theta with confounds and
 * a full prior covariance through the driver, then a complex-data model
 * with an analytic Jacobian step by step */
enum { ENG_NY = 16, ENG_NP = 3 };

static int eng_predict(void *user, const double *theta, double *y)
{
    const double *X = user;
    for (int r = 0; r < ENG_NY; r++)
        y[r] = X[r * ENG_NP] * theta[0] + X[r * ENG_NP + 1] * theta[1] + X[r * ENG_NP + 2] * theta[2];
    return 0;
}

static int eng_predict_complex(void *user, const double *theta, double *y)
{
    const double *X = user; /* 2 ENG_NY rows: (re, im) interleaved */
    for (int r = 0; r < 2 * ENG_NY; r++)
        y[r] = X[r * ENG_NP] * theta[0] + X[r * ENG_NP + 1] * theta[1] + X[r * ENG_NP + 2] * theta[2];
    return 0;
}

static int eng_jacobian_complex(void *user, const double *theta, const double *f, double *J)
{
    (void)theta;
    (void)f;
    memcpy(J, user, sizeof(double) * 2 * ENG_NY * ENG_NP);
    return 0;
}

static int op_engine(dcm_error *err)
{
    double X[2 * ENG_NY * ENG_NP], y[2 * ENG_NY], X0[ENG_NY / 2], Q[ENG_NY];
    for (int r = 0; r < 2 * ENG_NY; r++) {
        for (int k = 0; k < ENG_NP; k++)
            X[r * ENG_NP + k] = sin(1.3 * r + 0.7 * k) + (k == r % ENG_NP);
        y[r] = 0.5 * X[r * ENG_NP] - 0.3 * X[r * ENG_NP + 1] + 0.1 * cos(2.1 * r);
    }
    for (int r = 0; r < ENG_NY / 2; r++)
        X0[r] = 1.0;
    for (int r = 0; r < ENG_NY; r++)
        Q[r] = 1.0;
    const double pE[ENG_NP] = {0}, pC[ENG_NP * ENG_NP] = {1, 0.2, 0, 0.2, 1, 0, 0, 0, 0.5};
    const double hE[1] = {0}, hC[1] = {1};
    vl_problem P = {.model = {.np = ENG_NP, .pE = pE, .pC = pC, .ny = ENG_NY,
                              .predict = eng_predict, .user = X, .nh = 1, .Q = Q, .hE = hE,
                              .hC = hC, .nb = ENG_NY / 2, .nx0 = 1, .X0 = X0},
                    .y = y, .maxit = 32};
    vl_result *R = NULL;
    char msg[256] = "";
    int vrc = vl_nlsi(&P, &R, msg, sizeof msg);
    if (vrc == VL_OK && !(R && isfinite(R->F) && R->ntrace == R->iterations)) {
        printf("\n  engine: VL_OK without a usable result");
        CU_FAIL("vl_nlsi result");
    }
    vl_result_free(R);
    R = NULL;
    if (vrc)
        return dcm_error_from_vl(vrc, "engine (linear model)", msg, err);
    /* step by step, complex data, analytic Jacobian */
    const double pV[ENG_NP] = {1, 1, 1};
    vl_model M = {.np = ENG_NP, .pE = pE, .pV = pV, .ny = ENG_NY, .complex_data = 1,
                  .predict = eng_predict_complex, .jacobian = eng_jacobian_complex, .user = X,
                  .nh = 1, .Q = Q, .hE = hE, .hC = hC};
    vl_engine *E = NULL;
    vrc = vl_engine_alloc(&M, &E, msg, sizeof msg);
    if (vrc == VL_OK)
        vrc = vl_engine_init(E, y, NULL, msg, sizeof msg);
    for (int k = 0; k < 4 && vrc == VL_OK; k++)
        vrc = vl_engine_iterate(E, msg, sizeof msg);
    if (vrc == VL_OK)
        vrc = vl_engine_result(E, &R, msg, sizeof msg);
    vl_result_free(R);
    vl_engine_free(E);
    if (vrc)
        return dcm_error_from_vl(vrc, "engine (complex model)", msg, err);
    /* the linear algebra's own allocating forms */
    double A[4] = {2, 1, 1, 2}, H[4] = {-2, 1, 1, -2}, g[2] = {1, -1}, dx[2];
    vrc = vl_inv_reg(A, 2, -1.0);
    if (vrc == VL_OK)
        vrc = vl_dx(H, g, 2, 0.0, dx);
    if (vrc)
        return dcm_error_from_vl(vrc, "linear algebra", NULL, err);
    return DCM_OK;
}

/* ---- setup: small inputs in a private folder ---- */

static void write_inputs(void)
{
    char ts[4096], *p = ts;
    p += sprintf(p, "R1\tR2\n");
    for (int t = 0; t < 24; t++)
        p += sprintf(p, "%.4f\t%.4f\n", (t / 4) % 2 + 0.1 * (t % 3), ((t + 2) / 4) % 2 - 0.05 * (t % 5));
    test_write_file(dir, "ts.tsv", ts);
    test_write_file(dir, "ev.tsv", "onset\tduration\ttrial_type\n0\t8\tStim\n16\t8\tStim\n"
                                   "32\t8\tStim\n8\t4\tAttn\n24\t4\tAttn\n");
    const char *spec_head = "{\"TR\": 2.0, \"TE\": 0.04, \"scans\": 24, \"timeseries\": \"ts.tsv\",\n"
                            " \"events\": \"ev.tsv\", \"regions\": [\"R1\", \"R2\"],\n"
                            " \"inputs\": [\"Stim\", \"Attn\"], \"a\": [\"R1 -> R2\", \"R2 -> R1\"],\n"
                            " \"b\": {\"Attn\": [\"R1 -> R2\"]}, \"c\": {\"Stim\": [\"R1\"]}";
    char spec[2048];
    snprintf(spec, sizeof spec, "%s}\n", spec_head);
    test_write_file(dir, "spec.json", spec);
    snprintf(spec, sizeof spec, "%s, \"options\": {\"maxit\": 2}}\n", spec_head);
    test_write_file(dir, "short.json", spec);
    test_write_file(dir, "lme.tsv", "subject\tm1\tm2\tm3\ns1\t-10\t-12\t-9\ns2\t-20\t-19\t-25\n");
    test_write_file(dir, "manifest.tsv", "subject\tmodel\tspec\ns1\tfull\tspec.json\n"
                                         "s1\tshort\tshort.json\ns2\tfull\tspec.json\n");
    /* a 3 x 3 x 2 image of 20 scans; atlas label 1 on 12 voxels */
    enum { NX = 3, NY = 3, NZ = 2, NT = 20, NV = NX * NY * NZ };
    float vals[NV * NT];
    uint8_t labels[NV];
    for (int i = 0; i < NV; i++) {
        labels[i] = i % 3 ? 1 : 2;
        for (int t = 0; t < NT; t++)
            vals[t * NV + i] = (float)(100 + (t % 6 < 3) * (1 + i % 4) + 0.3 * ((t * 7 + i * 3) % 5));
    }
    char path[512];
    /* fuzz_write_nifti writes under its own /tmp/dcm-fuzz-PID folder; move
     * the files into ours */
    if (fuzz_write_nifti("bold.nii", NX, NY, NZ, NT, DT_FLOAT32, vals, 2.0, 1.0f, path, sizeof path) == 0) {
        char to[512];
        rename(path, in_dir("bold.nii", to, sizeof to));
    }
    if (fuzz_write_nifti("atlas.nii", NX, NY, NZ, 1, DT_UINT8, labels, 2.0, 1.0f, path, sizeof path) == 0) {
        char to[512];
        rename(path, in_dir("atlas.nii", to, sizeof to));
    }
    fuzz_cleanup();
}

static void test_spec(void) { CU_ASSERT(drive("spec + problem", op_spec, 5000) > 0); }
static void test_spec_design(void) { CU_ASSERT(drive("spec, design only", op_spec_design, 5000) > 0); }
static void test_tsv(void) { CU_ASSERT(drive("TSV tables", op_tsv, 5000) > 0); }
static void test_events(void) { CU_ASSERT(drive("events", op_events, 5000) > 0); }
static void test_result(void) { CU_ASSERT(drive("result JSON", op_result, 5000) > 0); }
static void test_lme(void) { CU_ASSERT(drive("log-evidence table", op_lme, 5000) > 0); }
static void test_manifest(void) { CU_ASSERT(drive("batch manifest", op_manifest, 5000) > 0); }
static void test_mat(void) { CU_ASSERT(drive(".mat (DCM, VOI)", op_mat, 5000) > 0); }
static void test_extract(void) { CU_ASSERT(drive("extract (eigenvariate)", op_extract, 5000) > 0); }
static void test_estimate(void) { CU_ASSERT(drive("estimate + write", op_estimate, 20000) > 0); }
static void test_engine(void) { CU_ASSERT(drive("VL engine (linear models)", op_engine, 5000) > 0); }

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/dcm-allocfail-%ld", (long)getpid());
    if (mkdir(dir, 0700) != 0) {
        perror(dir);
        return 1;
    }
    write_inputs();
    static const test_case cases[] = {
        {"spec load and problem build under failing allocations", test_spec},
        {"spec load, design only", test_spec_design},
        {"TSV reader", test_tsv},
        {"events reader", test_events},
        {"result JSON loaders", test_result},
        {"log-evidence table", test_lme},
        {"batch manifest", test_manifest},
        {".mat readers", test_mat},
        {"extract (regression, eigenvariate)", test_extract},
        {"estimate (2 iterations), JSON and .mat writers", test_estimate},
        {"VL engine: driver, step by step, complex data, linear algebra", test_engine},
        {NULL, NULL}};
    int rc = test_run("allocation failures", cases);
    test_remove_dir(dir);
    return rc;
}
