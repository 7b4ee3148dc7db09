/* test_integrate_region.c — the Jacobian's shortcuts for the haemodynamic
 * parameters must stand in for the full integration: a transit column
 * integrated on the closed subsystem of the neural states and its region
 * (model_int_predict_region) gives that region's prediction to rounding and
 * leaves the other regions' as they are, for bilinear, nonlinear (D) and
 * two-state models; it says MODEL_INT_UNSURE where it cannot tell (the
 * divergence test on the whole state, the ODE integrator); the rows of f
 * that one state moves (model_dcm_fx_rows) are model_dcm_fx's bit for bit;
 * and the parameters it applies to come from the layout. */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/model_dcm.h"
#include "models/model_integrate.h"
#include "tests/test_util.h"

enum { KIND_BILINEAR, KIND_NONLINEAR, KIND_TWO_STATE, KIND_TWO_STATE_D, KIND_COUNT };
static const char *const kind_name[KIND_COUNT] = {"bilinear", "nonlinear D", "two-state",
                                                  "two-state with D"};

/* 3 regions in a chain with feedback, 2 inputs in blocks, TR 2.4 s, 90
 * scans, a different sampling delay per region (the events then sample
 * one region at a time); D: region 3 gates 1 -> 2. */
static model_dcm *test_model(int kind, double *P)
{
    const int n = 3, m = 2, v = 90;
    const int nonlinear = kind == KIND_NONLINEAR || kind == KIND_TWO_STATE_D;
    model_dcm *M = model_dcm_alloc(n, m, v, nonlinear);
    CU_ASSERT_PTR_NOT_NULL_FATAL(M);
    M->two_state = kind == KIND_TWO_STATE || kind == KIND_TWO_STATE_D;
    M->TR = 2.4;
    for (int j = 0; j < n; j++) {
        M->delays[j] = 0.4 * (j + 1);
        M->a[j + j * n] = 1;
    }
    M->a[1 + 0 * n] = M->a[0 + 1 * n] = M->a[2 + 1 * n] = 1;
    M->b[1 * n * n + 2 + 1 * n] = 1;
    M->c[0] = 1;
    if (nonlinear)
        M->d[2 * n * n + 1 + 0 * n] = 1;
    for (int t = 0; t < M->nu; t++) {
        M->u[t * m + 0] = (t / 100) % 2;
        M->u[t * m + 1] = (t / 230) % 2;
    }
    double *pV = malloc(sizeof(double) * M->L.np);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pV);
    model_dcm_priors(M, P, pV);
    free(pV);
    P[model_dcm_idx_A(&M->L, 1, 0)] = 0.4;
    P[model_dcm_idx_A(&M->L, 0, 1)] = -0.2;
    P[model_dcm_idx_A(&M->L, 2, 1)] = 0.3;
    P[model_dcm_idx_B(&M->L, 1, 2, 1)] = 0.5;
    P[model_dcm_idx_C(&M->L, 0, 0)] = 0.7;
    if (nonlinear)
        P[model_dcm_idx_D(&M->L, 2, 1, 0)] = 0.6;
    for (int j = 0; j < n; j++)
        P[M->L.off_transit + j] = 0.05 * (j - 1);
    P[M->L.off_decay] = 0.1;
    return M;
}

/* For each region r: the full prediction at P with transit_r moved, and
 * the base prediction (at P) with region r's column from the subsystem */
static void region_matches_full(int kind)
{
    double P[512], P2[512];
    model_dcm *M = test_model(kind, P);
    const int n = M->n, v = M->v, ny = n * v;
    model_int_work *W = model_int_alloc(M);
    CU_ASSERT_PTR_NOT_NULL_FATAL(W);
    double *base = malloc(sizeof(double) * ny), *full = malloc(sizeof(double) * ny),
           *sub = malloc(sizeof(double) * ny);
    CU_ASSERT_PTR_NOT_NULL_FATAL(base && full && sub);
    CU_ASSERT_EQUAL_FATAL(model_int_predict(M, P, base, W), MODEL_INT_OK);
    const double bound = model_int_max_norm(W);
    CU_ASSERT(isfinite(bound) && bound >= 1.0);
    double worst = 0.0, others = 0.0, moved = INFINITY;
    for (int r = 0; r < n; r++) {
        memcpy(P2, P, sizeof(double) * M->L.np);
        P2[M->L.off_transit + r] += 0.2;
        CU_ASSERT_EQUAL_FATAL(model_int_predict(M, P2, full, W), MODEL_INT_OK);
        memcpy(sub, base, sizeof(double) * ny);
        CU_ASSERT_EQUAL_FATAL(model_int_predict_region(M, P2, r, bound, sub, W), MODEL_INT_OK);
        for (int j = 0; j < n; j++) {
            if (j == r) {
                worst = fmax(worst, test_rel_err(sub + j * v, full + j * v, v));
                moved = fmin(moved, test_rel_err(base + j * v, full + j * v, v));
            } else {
                /* untouched, and the full integration agrees: the other
                   regions do not see transit_r */
                CU_ASSERT(memcmp(sub + j * v, base + j * v, sizeof(double) * v) == 0);
                others = fmax(others, test_rel_err(full + j * v, base + j * v, v));
            }
        }
    }
    /* the workspace predicts in full again afterwards, the same bits */
    CU_ASSERT_EQUAL(model_int_predict(M, P, full, W), MODEL_INT_OK);
    CU_ASSERT(memcmp(full, base, sizeof(double) * ny) == 0);
    printf("\n  %s: region vs full %.1e, other regions moved %.1e, transit's effect %.1e",
           kind_name[kind], worst, others, moved);
    CU_ASSERT(worst < 1e-12);
    CU_ASSERT(others < 1e-12);
    CU_ASSERT(moved > 1e-3);   /* the column did change: not the base's */
    free(base);
    free(full);
    free(sub);
    model_int_free(W);
    model_dcm_free(M);
}

static void test_region_bilinear(void) { region_matches_full(KIND_BILINEAR); }
static void test_region_nonlinear(void) { region_matches_full(KIND_NONLINEAR); }
static void test_region_two_state(void)
{
    region_matches_full(KIND_TWO_STATE);
    region_matches_full(KIND_TWO_STATE_D);
}

/* Where the subsystem cannot tell whether the whole state would pass 1e6,
 * or integrates another way, it says so instead of guessing */
static void test_region_unsure(void)
{
    double P[512];
    model_dcm *M = test_model(KIND_BILINEAR, P);
    const int ny = M->n * M->v;
    model_int_work *W = model_int_alloc(M);
    double *y = malloc(sizeof(double) * ny);
    CU_ASSERT_PTR_NOT_NULL_FATAL(W && y);
    CU_ASSERT_EQUAL(model_int_predict(M, P, y, W), MODEL_INT_OK);
    CU_ASSERT_EQUAL(model_int_predict_region(M, P, 0, MODEL_INT_DIVERGENCE_NORM, y, W), MODEL_INT_UNSURE);
    CU_ASSERT_EQUAL(model_int_predict_region(M, P, 0, INFINITY, y, W), MODEL_INT_UNSURE);
    CU_ASSERT_EQUAL(model_int_predict_region(M, P, M->n, 1.0, y, W), MODEL_INT_UNSURE);
    CU_ASSERT_EQUAL(model_int_predict_region(M, P, -1, 1.0, y, W), MODEL_INT_UNSURE);
    P[M->L.off_transit] = NAN;
    CU_ASSERT_EQUAL(model_int_predict_region(M, P, 0, 1.0, y, W), MODEL_INT_FAILED);
    model_int_free(W);
    M->integrator = MODEL_INT_ODE;
    P[M->L.off_transit] = 0.0;
    W = model_int_alloc(M);
    CU_ASSERT_PTR_NOT_NULL_FATAL(W);
    CU_ASSERT_EQUAL(model_int_predict_region(M, P, 0, 1.0, y, W), MODEL_INT_UNSURE);
    /* the ODE integrator does not follow the norm between its steps */
    CU_ASSERT_EQUAL(model_int_predict(M, P, y, W), MODEL_INT_OK);
    CU_ASSERT(isinf(model_int_max_norm(W)));
    free(y);
    model_int_free(W);
    model_dcm_free(M);
}

/* transit_i -> region i; every other parameter (decay, epsilon, the
 * neural blocks) -> -1 */
static void test_haemo_region_layout(void)
{
    double P[512];
    for (int kind = 0; kind < KIND_COUNT; kind++) {
        model_dcm *M = test_model(kind, P);
        int regions = 0;
        for (int k = 0; k < M->L.np; k++) {
            const int r = model_dcm_haemo_region(M, k);
            if (k >= M->L.off_transit && k < M->L.off_transit + M->n) {
                CU_ASSERT_EQUAL(r, k - M->L.off_transit);
                regions++;
            } else {
                CU_ASSERT_EQUAL(r, -1);
            }
        }
        CU_ASSERT_EQUAL(regions, M->n);
        CU_ASSERT_EQUAL(model_dcm_haemo_region(M, M->L.off_decay), -1);
        model_dcm_free(M);
    }
}

/* f at x with one state moved: model_dcm_fx_rows over f(x) gives
 * model_dcm_fx's vector bit for bit, for every state */
static void test_fx_rows_exact(void)
{
    double P[512];
    for (int kind = 0; kind < KIND_COUNT; kind++) {
        model_dcm *M = test_model(kind, P);
        const int nx = model_dcm_nstates(M);
        double *work = malloc(sizeof(double) * (model_dcm_fx_work(M) + 1));
        double x[64], u[2] = {1.0, 0.5}, f0[64], f1[64], fr[64];
        CU_ASSERT_PTR_NOT_NULL_FATAL(work);
        for (int i = 0; i < nx; i++)
            x[i] = 0.05 * sin(1.7 * i + 0.3);
        model_dcm_fx(M, P, x, u, f0, NULL, NULL, work);
        int same = 0;
        for (int i = 0; i < nx; i++) {
            const double xi = x[i];
            x[i] += 3.3546262790251185e-04;
            model_dcm_fx(M, P, x, u, f1, NULL, NULL, work);
            memcpy(fr, f0, sizeof(double) * nx);
            model_dcm_fx_rows(M, P, x, u, i, fr, work);
            same += memcmp(fr, f1, sizeof(double) * nx) == 0;
            x[i] = xi;
        }
        CU_ASSERT_EQUAL(same, nx);
        free(work);
        model_dcm_free(M);
    }
}

int main(void)
{
    const test_case cases[] = {
        {"a transit column by its region's subsystem: bilinear", test_region_bilinear},
        {"a transit column by its region's subsystem: nonlinear D", test_region_nonlinear},
        {"a transit column by its region's subsystem: two-state", test_region_two_state},
        {"the subsystem says when it cannot stand in", test_region_unsure},
        {"the region of a parameter comes from the layout", test_haemo_region_layout},
        {"the rows one state moves are model_dcm_fx's bits", test_fx_rows_exact},
        {NULL, NULL}};
    return test_run("integrate_region", cases);
}
