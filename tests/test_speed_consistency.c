/* test_speed_consistency.c — the speed-ups must not change the numbers:
 * the integrator's kernels (Taylor action on the sparse operator, Pade
 * propagators formed once, or the automatic choice between them) agree to
 * rounding, on gentle and stiff models, bilinear and nonlinear; a workspace
 * reused across predictions gives the same prediction as a new one; the
 * states observed again for epsilon give the prediction's bits; and
 * `dcm estimate -j N` gives bit-identical results whatever N, with a
 * diagonal prior and with a full one (the engine's directions), one- and
 * two-state. */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/model_dcm.h"
#include "models/model_integrate.h"
#include "tests/test_util.h"

/* 3 regions in a chain with feedback, 3 inputs in blocks of 10 scans
 * (input 1 always on, 2 and 3 alternating), TR 3.22 s, 120 scans, delays
 * half a TR; nonlinear adds a D slice (region 3 gates 1 -> 2). */
static model_dcm *test_model(int nonlinear, double *P)
{
    const int n = 3, m = 3, v = 120;
    model_dcm *M = model_dcm_alloc(n, m, v, nonlinear);
    CU_ASSERT_PTR_NOT_NULL_FATAL(M);
    M->TR = 3.22;
    for (int j = 0; j < n; j++) {
        M->delays[j] = 1.61;
        M->a[j + j * n] = 1;
    }
    M->a[1 + 0 * n] = M->a[0 + 1 * n] = M->a[2 + 1 * n] = M->a[1 + 2 * n] = 1;
    M->b[1 * n * n + 1 + 0 * n] = M->b[2 * n * n + 1 + 0 * n] = 1;
    M->c[0] = 1;
    if (nonlinear)
        M->d[2 * n * n + 1 + 0 * n] = 1;
    for (int t = 0; t < M->nu; t++) {
        int block = t / (10 * MODEL_DCM_MICROTIME);
        M->u[t * m + 0] = (t / 40) % 3 != 0;   /* short photic bursts */
        M->u[t * m + 1] = block % 2;
        M->u[t * m + 2] = (block / 2) % 2;
    }
    double *pV = malloc(sizeof(double) * M->L.np);
    model_dcm_priors(M, P, pV);
    free(pV);
    P[model_dcm_idx_A(&M->L, 1, 0)] = 0.45;
    P[model_dcm_idx_A(&M->L, 0, 1)] = -0.1;
    P[model_dcm_idx_A(&M->L, 2, 1)] = 0.35;
    P[model_dcm_idx_A(&M->L, 1, 2)] = -0.15;
    P[model_dcm_idx_B(&M->L, 1, 1, 0)] = 0.3;
    P[model_dcm_idx_B(&M->L, 2, 1, 0)] = 0.4;
    P[model_dcm_idx_C(&M->L, 0, 0)] = 0.6;
    if (nonlinear)
        P[model_dcm_idx_D(&M->L, 2, 1, 0)] = 0.5;
    return M;
}

/* The three kernels on one model and parameter vector: all succeed, the
 * signal is not trivial, and they agree to rounding. */
static void kernels_agree(int nonlinear, double self_log_rate, double tol)
{
    double P[256];
    model_dcm *M = test_model(nonlinear, P);
    /* a log self-inhibition of 3 makes region 1 decay at e^3/2 = 10 Hz:
       the steps are stiff, the action needs many sub-steps and the
       automatic choice forms the propagators */
    P[model_dcm_idx_A(&M->L, 0, 0)] = self_log_rate;
    const int ny = M->v * M->n;
    double *y[3];
    const int kernel[3] = {MODEL_INT_KERNEL_AUTO, MODEL_INT_KERNEL_DENSE, MODEL_INT_KERNEL_ACTION};
    for (int k = 0; k < 3; k++) {
        y[k] = malloc(sizeof(double) * ny);
        model_int_work *W = model_int_alloc(M);
        CU_ASSERT_PTR_NOT_NULL_FATAL(W);
        model_int_set_kernel(W, kernel[k]);
        CU_ASSERT_EQUAL(model_int_predict(M, P, y[k], W), MODEL_INT_OK);
        model_int_free(W);
    }
    double e_dense = test_rel_err(y[0], y[1], ny), e_action = test_rel_err(y[2], y[1], ny);
    printf("\n  %s, log self-rate %.0f: max |y| %.3f, auto vs Pade %.1e, action vs Pade %.1e",
           nonlinear ? "nonlinear" : "bilinear", self_log_rate, test_max_abs(y[1], ny), e_dense,
           e_action);
    CU_ASSERT(test_max_abs(y[1], ny) > 0.05);
    CU_ASSERT(e_dense < tol);
    CU_ASSERT(e_action < tol);
    for (int k = 0; k < 3; k++)
        free(y[k]);
    model_dcm_free(M);
}

static void test_kernels_bilinear(void)
{
    kernels_agree(0, 0.0, 1e-12);
    kernels_agree(0, 3.0, 1e-12);
}

static void test_kernels_nonlinear(void)
{
    kernels_agree(1, 0.0, 1e-12);
    kernels_agree(1, 3.0, 1e-12);
}

/* A workspace keeps the pattern, values and propagators of the last
 * prediction: predicting at P2 after P1 must give exactly what a fresh
 * workspace gives at P2 (nothing stale is reused). */
static void test_workspace_reuse_exact(void)
{
    for (int nonlinear = 0; nonlinear < 2; nonlinear++) {
        double P[256], P2[256];
        model_dcm *M = test_model(nonlinear, P);
        memcpy(P2, P, sizeof P);
        P2[model_dcm_idx_A(&M->L, 1, 0)] = 0.8;           /* other values */
        P2[model_dcm_idx_A(&M->L, 2, 0)] = 0.2;           /* another pattern */
        P2[model_dcm_idx_A(&M->L, 0, 0)] = 2.5;           /* stiffer */
        const int ny = M->v * M->n;
        double *y1 = malloc(sizeof(double) * ny), *y2 = malloc(sizeof(double) * ny);
        model_int_work *W = model_int_alloc(M), *Wf = model_int_alloc(M);
        CU_ASSERT_PTR_NOT_NULL_FATAL(W);
        CU_ASSERT_PTR_NOT_NULL_FATAL(Wf);
        CU_ASSERT_EQUAL(model_int_predict(M, P, y1, W), MODEL_INT_OK);
        CU_ASSERT_EQUAL(model_int_predict(M, P2, y1, W), MODEL_INT_OK);
        CU_ASSERT_EQUAL(model_int_predict(M, P2, y2, Wf), MODEL_INT_OK);
        CU_ASSERT(memcmp(y1, y2, sizeof(double) * ny) == 0);
        CU_ASSERT(test_rel_err(y1, y2, ny) == 0.0);
        free(y1);
        free(y2);
        model_int_free(W);
        model_int_free(Wf);
        model_dcm_free(M);
    }
}

/* The columns of the Jacobian that move epsilon only are observed again
 * from the kept states (model_int_observe): the same bits as integrating
 * anew, for the bilinear and the nonlinear scheme; not after a failed
 * prediction. */
static void test_observe_again_exact(void)
{
    for (int nonlinear = 0; nonlinear < 2; nonlinear++) {
        double P[256], P2[256];
        model_dcm *M = test_model(nonlinear, P);
        const int ny = M->v * M->n, ke = M->L.off_epsilon;
        CU_ASSERT(model_dcm_observation_only(M, ke));
        CU_ASSERT(!model_dcm_observation_only(M, M->L.off_decay));
        CU_ASSERT(!model_dcm_observation_only(M, model_dcm_idx_A(&M->L, 1, 0)));
        memcpy(P2, P, sizeof P);
        P2[ke] += 0.05;
        double *y1 = malloc(sizeof(double) * ny), *y2 = malloc(sizeof(double) * ny);
        model_int_work *W = model_int_alloc(M);
        CU_ASSERT_PTR_NOT_NULL_FATAL(W);
        CU_ASSERT_EQUAL(model_int_predict(M, P, y1, W), MODEL_INT_OK);
        CU_ASSERT_EQUAL(model_int_observe(M, P2, y1, W), 0);
        CU_ASSERT_EQUAL(model_int_predict(M, P2, y2, W), MODEL_INT_OK);
        CU_ASSERT(memcmp(y1, y2, sizeof(double) * ny) == 0);
        double *y0 = malloc(sizeof(double) * ny);
        CU_ASSERT_EQUAL(model_int_observe(M, P, y0, W), 0);
        printf("\n  %s: epsilon +0.05 moves y by %.2e (relative), observed again exactly",
               nonlinear ? "nonlinear" : "bilinear", test_rel_err(y0, y2, ny));
        CU_ASSERT(test_rel_err(y0, y2, ny) > 1e-3);   /* the column is not zero */
        P2[0] = NAN;
        CU_ASSERT_EQUAL(model_int_predict(M, P2, y2, W), MODEL_INT_FAILED);
        CU_ASSERT_EQUAL(model_int_observe(M, P, y1, W), -1);
        free(y0);
        free(y1);
        free(y2);
        model_int_free(W);
        model_dcm_free(M);
    }
}

/* The free energy and posterior of `dcm estimate` with -j 1, 2 and 3,
 * compared as the text the result file holds: identical. */
static void estimate_threads_identical(const char *dir, const char *spec)
{
    char out[16384], args[2048];
    char F[3][64] = {"", "", ""}, Ep[3][4096];
    for (int j = 1; j <= 3; j++) {
        snprintf(args, sizeof args, "estimate %s/%s -o %s/r%d.json -q -j %d --maxit 6", dir, spec,
                 dir, j, j);
        int rc = test_dcm(args, out, sizeof out);
        if (rc)
            printf("\n  dcm %s: exit %d: %.500s", args, rc, out);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        char name[32];
        snprintf(name, sizeof name, "r%d.json", j);
        json_t *r = test_load_in(dir, name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        snprintf(F[j - 1], sizeof F[0], "%.17g", json_real_value(json_object_get(r, "free_energy")));
        char *ep = json_dumps(json_object_get(r, "posterior_mean"), JSON_COMPACT | JSON_REAL_PRECISION(17));
        CU_ASSERT_PTR_NOT_NULL_FATAL(ep);
        snprintf(Ep[j - 1], sizeof Ep[0], "%s", ep);
        free(ep);
        json_decref(r);
    }
    printf("\n  %s: F %s (-j 1), %s (-j 2), %s (-j 3)", spec, F[0], F[1], F[2]);
    CU_ASSERT(isfinite(atof(F[0])) && strlen(Ep[0]) > 20);
    CU_ASSERT_STRING_EQUAL(F[0], F[1]);
    CU_ASSERT_STRING_EQUAL(F[0], F[2]);
    CU_ASSERT_STRING_EQUAL(Ep[0], Ep[1]);
    CU_ASSERT_STRING_EQUAL(Ep[0], Ep[2]);
}

static void test_threads_identical(void)
{
    char dir[] = "/tmp/dcm_speed_XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char out[8192], cmd[4096];
    snprintf(cmd, sizeof cmd, "cp datasets/attention_design/events.tsv datasets/attention_design/fwd.json "
             "datasets/attention_design/truth.json %s/", dir);
    CU_ASSERT_EQUAL_FATAL(test_shell(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "simulate %s/fwd.json --params %s/truth.json --snr 3 --seed 7 -o %s/timeseries.tsv",
             dir, dir, dir);
    int rc = test_dcm(cmd, out, sizeof out);
    if (rc)
        printf("\n  dcm %s: exit %d: %.500s", cmd, rc, out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    estimate_threads_identical(dir, "fwd.json");
    /* the nonlinear scheme: fwd with SPC gating V1 -> V5 */
    snprintf(cmd, sizeof cmd, "sed 's/\"c\": {/\"d\": {\"SPC\": [\"V1 -> V5\"]}, \"c\": {/' %s/fwd.json > %s/nl.json",
             dir, dir);
    CU_ASSERT_EQUAL_FATAL(test_shell(cmd, out, sizeof out), 0);
    estimate_threads_identical(dir, "nl.json");
    /* a full prior (maxnodes below the regions): the engine's directions,
       taken by the model in threads */
    snprintf(cmd, sizeof cmd, "sed 's/\"c\": {/\"options\": {\"maxnodes\": 2}, \"c\": {/' %s/fwd.json > %s/full.json",
             dir, dir);
    CU_ASSERT_EQUAL_FATAL(test_shell(cmd, out, sizeof out), 0);
    estimate_threads_identical(dir, "full.json");
    /* two-state neurons: the transit columns' subsystems hold the
       inhibitory states too */
    snprintf(cmd, sizeof cmd, "sed 's/\"c\": {/\"options\": {\"two_state\": true}, \"c\": {/' %s/fwd.json > %s/two.json",
             dir, dir);
    CU_ASSERT_EQUAL_FATAL(test_shell(cmd, out, sizeof out), 0);
    estimate_threads_identical(dir, "two.json");
    printf("\n");
    test_remove_dir(dir);
}

int main(void)
{
    const test_case cases[] = {
        {"kernels agree (bilinear, gentle and stiff)", test_kernels_bilinear},
        {"kernels agree (nonlinear D, gentle and stiff)", test_kernels_nonlinear},
        {"a reused workspace predicts exactly as a new one", test_workspace_reuse_exact},
        {"epsilon's columns observed again: exactly the prediction", test_observe_again_exact},
        {"estimate -j 1, 2, 3: identical F and posterior", test_threads_identical},
        {NULL, NULL}};
    return test_run("speed_consistency", cases);
}
