/* test_vl.c — the VL engine on its own (no ../shared): a linear-Gaussian
 * model whose posterior and log evidence are known in closed form, complex
 * data, the stop callback, the Jacobian hook, and the linear algebra it
 * leans on (vl_expm, vl_logdet, vl_inv_reg, vl_dx) against values known by
 * hand.
 *
 * Known noise: the engine always estimates log-precisions h; a hyperprior
 * of variance hC = 1e-16 pins h at hE (it moves by ~hC dF/dh ~ 1e-15), so
 * the precision is lambda = exp(-32) + exp(hE) and the closed forms hold
 * with that lambda; the hyperprior's own term of F is ~ hC ny. (With
 * hC = 1e-12 the jitter of h, ~1e-11 per iteration, moves F by ~1e-10.)
 * Achieved: |F - log evidence| 1e-14..1e-12 (asserted < 1e-10), max|dCp|
 * ~1e-14, posterior means to 1e-11..1e-7 (see f_cost). */
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>

#include "dcm/dcm_api.h"
#include "models/model_dcm.h"
#include "vl/vl_linalg.h"
#include "vl/vl_nlsi.h"
#include "tests/test_util.h"

#define PREC_FLOOR 1.2664165549094176e-14 /* exp(-32), the engine's floor */
#define LOG2PI 1.8378770664093453

/* ---- a linear model y = X theta (+ X0 beta), real or complex ---- */

typedef struct {
    int ny, np, complex_data;   /* X: rows x np, rows = ny or 2 ny */
    const double *X;
    long predicts, jacobians;   /* calls seen */
} linear_model;

static int linear_predict(void *user, const double *theta, double *y)
{
    linear_model *m = user;
    int rows = m->ny << m->complex_data;
    for (int r = 0; r < rows; r++) {
        double s = 0.0;
        for (int k = 0; k < m->np; k++)
            s += m->X[r * m->np + k] * theta[k];
        y[r] = s;
    }
    m->predicts++;
    return 0;
}

static int linear_jacobian(void *user, const double *theta, const double *f, double *J)
{
    linear_model *m = user;
    (void)theta;
    (void)f;
    memcpy(J, m->X, sizeof(double) * (size_t)(m->ny << m->complex_data) * m->np);
    m->jacobians++;
    return 0;
}

/* a reproducible design, data and prior */
enum { NY = 24, NP = 4 };

static double pseudo(int i)
{
    return sin(1.7 * i + 0.3) + 0.5 * cos(0.37 * i * i);
}

static void design(double *X, int rows, int np, int seed)
{
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < np; k++)
            X[r * np + k] = pseudo(seed + 7 * r + 3 * k) + (k == r % np ? 1.0 : 0.0);
}

static void data(const double *X, int rows, int np, const double *theta, double *y, int seed)
{
    for (int r = 0; r < rows; r++) {
        double s = 0.3 * pseudo(1000 + seed + r);
        for (int k = 0; k < np; k++)
            s += X[r * np + k] * theta[k];
        y[r] = s;
    }
}

/* ---- closed forms (GSL Cholesky) ---- */

/* Posterior of theta ~ N(m, C0), y = X theta + e, e ~ N(0, I / lam):
 * Cp = (lam X'X + C0^-1)^-1, Ep = Cp (lam X'y + C0^-1 m); and the log
 * evidence log N(y; X m, S), S = I / lam + X C0 X'. X rows x np
 * row-major, C0 np x np row-major (symmetric positive definite), np <= 64.
 * Pp receives the posterior precision Cp^-1. */
static double closed_form(const double *X, const double *y, int rows, int np, const double *m,
                          const double *C0, double lam, double *Ep, double *Cp, double *Pp)
{
    gsl_matrix *iC0 = gsl_matrix_alloc(np, np), *A = gsl_matrix_alloc(np, np);
    gsl_vector *b = gsl_vector_alloc(np);
    memcpy(iC0->data, C0, sizeof(double) * np * np);
    gsl_linalg_cholesky_decomp1(iC0);
    gsl_linalg_cholesky_invert(iC0);
    for (int i = 0; i < np; i++) {
        double s = 0.0;
        for (int j = 0; j < np; j++) {
            double a = gsl_matrix_get(iC0, i, j);
            for (int t = 0; t < rows; t++)
                a += lam * X[t * np + i] * X[t * np + j];
            gsl_matrix_set(A, i, j, a);
            s += gsl_matrix_get(iC0, i, j) * m[j];
        }
        for (int t = 0; t < rows; t++)
            s += lam * X[t * np + i] * y[t];
        gsl_vector_set(b, i, s);
    }
    memcpy(Pp, A->data, sizeof(double) * np * np);
    gsl_linalg_cholesky_decomp1(A);
    gsl_vector_view E = gsl_vector_view_array(Ep, np);
    gsl_linalg_cholesky_solve(A, b, &E.vector);
    gsl_linalg_cholesky_invert(A);
    memcpy(Cp, A->data, sizeof(double) * np * np);
    /* evidence, by Woodbury (well conditioned even with the confounds'
       flat prior): S^-1 = lam I - lam^2 X Cp X', |S| = |C0| / (|Cp| lam^ny) */
    double ldC0 = 0.0, ldCp = 0.0;
    memcpy(iC0->data, C0, sizeof(double) * np * np);
    gsl_linalg_cholesky_decomp1(iC0);
    for (int i = 0; i < np; i++)
        ldC0 += 2.0 * log(gsl_matrix_get(iC0, i, i));
    memcpy(iC0->data, Cp, sizeof(double) * np * np);
    gsl_linalg_cholesky_decomp1(iC0);
    for (int i = 0; i < np; i++)
        ldCp += 2.0 * log(gsl_matrix_get(iC0, i, i));
    double rr = 0.0, xr[64] = {0};
    for (int s = 0; s < rows; s++) {
        double xm = 0.0;
        for (int k = 0; k < np; k++)
            xm += X[s * np + k] * m[k];
        double res = y[s] - xm;
        rr += res * res;
        for (int k = 0; k < np; k++)
            xr[k] += X[s * np + k] * res;
    }
    double q = lam * rr;
    for (int i = 0; i < np; i++)
        for (int j = 0; j < np; j++)
            q -= lam * lam * xr[i] * Cp[i * np + j] * xr[j];
    double ld = ldC0 - ldCp - rows * log(lam);
    gsl_matrix_free(iC0);
    gsl_matrix_free(A);
    gsl_vector_free(b);
    return -0.5 * (rows * LOG2PI + ld + q);
}

/* The same log evidence straight from its definition, log N(y; X m, S)
 * with S = I / lam + X C0 X' by Cholesky (an independent check of the
 * Woodbury form where S is well conditioned). */
static double direct_evidence(const double *X, const double *y, int rows, int np,
                              const double *m, const double *C0, double lam)
{
    gsl_matrix *S = gsl_matrix_alloc(rows, rows);
    gsl_vector *r = gsl_vector_alloc(rows), *Sr = gsl_vector_alloc(rows);
    for (int s = 0; s < rows; s++) {
        double xm = 0.0;
        for (int k = 0; k < np; k++)
            xm += X[s * np + k] * m[k];
        gsl_vector_set(r, s, y[s] - xm);
        for (int t = 0; t < rows; t++) {
            double c = s == t ? 1.0 / lam : 0.0;
            for (int i = 0; i < np; i++)
                for (int j = 0; j < np; j++)
                    c += X[s * np + i] * C0[i * np + j] * X[t * np + j];
            gsl_matrix_set(S, s, t, c);
        }
    }
    gsl_linalg_cholesky_decomp1(S);
    double ld = 0.0, q = 0.0;
    for (int s = 0; s < rows; s++)
        ld += 2.0 * log(gsl_matrix_get(S, s, s));
    gsl_linalg_cholesky_solve(S, r, Sr);
    for (int s = 0; s < rows; s++)
        q += gsl_vector_get(r, s) * gsl_vector_get(Sr, s);
    gsl_matrix_free(S);
    gsl_vector_free(r);
    gsl_vector_free(Sr);
    return -0.5 * (rows * LOG2PI + ld + q);
}

/* Run the engine step by step until the predicted increase of F is below
 * 1e-24 (SPM's own stopping rule, dF < 0.1 four times, stops earlier than
 * a closed-form comparison needs; after rejected steps the step shrinks to
 * nothing once F's improvements fall below its rounding). Returns the
 * result. */
static vl_result *run_to_optimum(const vl_model *M, const double *y, int *iterations, int maxit)
{
    vl_engine *E = NULL;
    char msg[256] = "";
    vl_result *R = NULL;
    CU_ASSERT_EQUAL_FATAL(vl_engine_alloc(M, &E, msg, sizeof msg), VL_OK);
    CU_ASSERT_EQUAL(vl_engine_init(E, y, NULL, msg, sizeof msg), VL_OK);
    int k;
    for (k = 1; k <= maxit; k++) {
        int rc = vl_engine_iterate(E, msg, sizeof msg);
        CU_ASSERT_EQUAL(rc, VL_OK);
        if (rc) {
            printf("\n  iterate: %s", msg);
            break;
        }
        const vl_state *st = vl_engine_state(E);
        CU_ASSERT_EQUAL(st->iteration, k);
        if (fabs(st->dF_predicted) < 1e-24 && k > 8)
            break;
    }
    CU_ASSERT(k <= maxit);
    if (getenv("TEST_VL_DEBUG"))
        printf("\n  last dF_predicted %.3e F %.15g", vl_engine_state(E)->dF_predicted, vl_engine_state(E)->F);
    *iterations = k;
    CU_ASSERT_EQUAL(vl_engine_result(E, &R, msg, sizeof msg), VL_OK);
    vl_engine_free(E);
    return R;
}

static double max_abs_diff(const double *a, const double *b, int n)
{
    double d = 0.0;
    for (int i = 0; i < n; i++)
        d = fmax(d, fabs(a[i] - b[i]));
    return d;
}

/* What a posterior-mean error d = a - b costs in F: d' Pp d / 2. The
 * engine accepts a step only when F rises, and F rounds at ~1e-14 of its
 * terms, so along a direction of curvature c the mean is resolved to
 * ~sqrt(1e-14 / c), a few 1e-8 (how far depends on the CPU's BLAS kernels
 * and libm); this cost is the measure that does not depend on c. */
static double f_cost(const double *a, const double *b, const double *Pp, int n)
{
    double q = 0.0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            q += (a[i] - b[i]) * Pp[i * n + j] * (a[j] - b[j]);
    return 0.5 * q;
}

/* one known precision component over all ny values */
static double Q_ones[4 * NY], hE_known[1] = {2.0}, hC_known[1] = {1e-16};

static void fill_Q(void)
{
    for (int i = 0; i < 4 * NY; i++)
        Q_ones[i] = 1.0;
}

static void test_linear_closed_form(void)
{
    fill_Q();
    double X[NY * NP], y[NY], theta[NP] = {0.8, -0.5, 0.3, 1.2};
    design(X, NY, NP, 0);
    data(X, NY, NP, theta, y, 0);
    const double pE[NP] = {0.1, 0.0, -0.2, 0.5}, pV[NP] = {1.0, 0.5, 2.0, 0.25};
    linear_model lm = {NY, NP, 0, X, 0, 0};
    vl_model M = {.np = NP, .pE = pE, .pV = pV, .ny = NY, .predict = linear_predict, .user = &lm,
                  .nh = 1, .Q = Q_ones, .hE = hE_known, .hC = hC_known};
    double C0[NP * NP] = {0}, Ep[NP], Cp[NP * NP], Pp[NP * NP];
    for (int i = 0; i < NP; i++)
        C0[i * NP + i] = pV[i];
    const double lam = PREC_FLOOR + exp(hE_known[0]);
    double logev = closed_form(X, y, NY, NP, pE, C0, lam, Ep, Cp, Pp);
    CU_ASSERT(fabs(logev - direct_evidence(X, y, NY, NP, pE, C0, lam)) < 1e-10);
    int it = 0;
    vl_result *R = run_to_optimum(&M, y, &it, 400);
    CU_ASSERT_PTR_NOT_NULL_FATAL(R);
    double dEp = max_abs_diff(R->Ep, Ep, NP), dCp = max_abs_diff(R->Cp, Cp, NP * NP);
    double dF = fabs(R->F - logev), cost = f_cost(R->Ep, Ep, Pp, NP);
    printf("\n  diagonal prior: %d iterations, F %.10f, log evidence %.10f, |dF| %.1e, "
           "max|dEp| %.1e (costing %.1e in F), max|dCp| %.1e, |dh| %.1e", it, R->F, logev, dF,
           dEp, cost, dCp, fabs(R->Eh[0] - hE_known[0]));
    CU_ASSERT(dF < 1e-10);
    CU_ASSERT(cost < 1e-11);
    CU_ASSERT(dEp < 1e-6);
    CU_ASSERT(dCp < 1e-10);
    CU_ASSERT(fabs(R->Eh[0] - hE_known[0]) < 1e-12);
    /* the prediction at the posterior mean is returned */
    double f[NY];
    linear_predict(&lm, R->Ep, f);
    CU_ASSERT(max_abs_diff(R->y_pred, f, NY) == 0.0);
    vl_result_free(R);

    /* the driver with SPM's stopping rule: converged, near the optimum */
    vl_problem P = {.model = M, .y = y, .maxit = 128};
    char msg[256] = "";
    CU_ASSERT_EQUAL(vl_nlsi(&P, &R, msg, sizeof msg), VL_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(R);
    CU_ASSERT_EQUAL(R->converged, 1);
    CU_ASSERT_EQUAL(R->stopped, 0);
    CU_ASSERT_EQUAL(R->ntrace, R->iterations);
    CU_ASSERT(R->F <= logev + 1e-8);
    CU_ASSERT(logev - R->F < 0.5);
    for (int i = 1; i < R->ntrace; i++)
        CU_ASSERT(R->F_trace[i] >= R->F_trace[i - 1] || i < 2);
    printf("\n  driver: converged after %d iterations, F short of the evidence by %.2e",
           R->iterations, logev - R->F);
    vl_result_free(R);
}

/* a full prior covariance (the eigen-subspace path), a fixed parameter
 * (zero prior variance) and confounds with their flat prior */
static void full_prior_confounds(int per_block, int sums, double *F_out);

static void test_linear_full_prior_confounds(void)
{
    full_prior_confounds(0, VL_MSTEP_AUTO, NULL);
}

/* one noise component per block of confounds (as one per region): the
 * M-step's per-component Gram matrices (each over its own block's
 * confound columns) and the sums over rows reach the same closed form */
static void test_mstep_gram_vs_rows(void)
{
    double F_rows = 0.0, F_gram = 0.0;
    full_prior_confounds(1, VL_MSTEP_ROWS, &F_rows);
    full_prior_confounds(1, VL_MSTEP_GRAM, &F_gram);
    printf("\n  per-block components: F over rows %.12f, over Gram matrices %.12f (%.1e)", F_rows, F_gram,
           F_gram - F_rows);
    CU_ASSERT(F_rows != 0.0 && fabs(F_gram - F_rows) < 1e-9);
}

/* The arrow-shaped M-step against the rows: three blocks of 8 samples,
 * two confounds each, components on the blocks' rows in four layouts.
 * The sums over Gram matrices invert the posterior precision by blocks
 * (one component per block: diagonalised; two on a block: block Cholesky;
 * a block no component reaches; one component over all rows: whole) and
 * must reach the rows' posterior, precisions and F to rounding. */
enum { AB = 8, AX0 = 2, ABLK = NY / AB };

static vl_result *arrow_fit(int layout, int sums, int *path)
{
    static double X[NY * NP], y[NY], X0[AB * AX0];
    const double theta[NP] = {0.4, 0.9, -0.7, 0.2}, pE[NP] = {0.0, 0.2, 0.0, -0.1};
    static const double pV[NP] = {1.0, 0.8, 0.5, 0.5};
    design(X, NY, NP, 11);
    for (int r = 0; r < AB; r++) {
        X0[r] = 1.0;
        X0[r + AB] = (r - 3.5) / 4.0;
    }
    data(X, NY, NP, theta, y, 5);
    for (int r = 0; r < NY; r++)
        y[r] += 0.5 - 0.3 * (r / AB) + 0.2 * X0[r % AB + AB];
    /* components: one per block (layout 0: ones, G_i from J and X0 in
       place; otherwise weighted rows); layout 1 adds one on block 1's
       second half; layout 2 leaves block 2 to no component; layout 3 is
       one component over all rows */
    static double Q[4 * NY];
    double hE[4], hC[4];
    int nh = 0;
    memset(Q, 0, sizeof Q);
    if (layout == 3) {
        for (int r = 0; r < NY; r++)
            Q[r] = 1.0;
        nh = 1;
    } else {
        for (int b = 0; b < (layout == 2 ? ABLK - 1 : ABLK); b++, nh++)
            for (int r = b * AB; r < (b + 1) * AB; r++)
                Q[nh * NY + r] = layout == 0 ? 1.0 : 1.0 + 0.1 * (r % 3);
        if (layout == 1) {
            for (int r = AB + AB / 2; r < 2 * AB; r++)
                Q[nh * NY + r] = 0.5;
            nh++;
        }
    }
    for (int i = 0; i < nh; i++) {
        hE[i] = 1.0 + 0.2 * i;
        hC[i] = 1.0 / 16;
    }
    linear_model lm = {NY, NP, 0, X, 0, 0};
    vl_model M = {.np = NP, .pE = pE, .pV = pV, .ny = NY, .predict = linear_predict, .user = &lm,
                  .nh = nh, .Q = Q, .hE = hE, .hC = hC, .nb = AB, .nx0 = AX0, .X0 = X0,
                  .mstep_sums = sums};
    vl_engine *E = NULL;
    char msg[256] = "";
    vl_result *R = NULL;
    CU_ASSERT_EQUAL_FATAL(vl_engine_alloc(&M, &E, msg, sizeof msg), VL_OK);
    CU_ASSERT_EQUAL(vl_engine_init(E, y, NULL, msg, sizeof msg), VL_OK);
    for (int k = 1; k <= 64; k++) {
        CU_ASSERT_EQUAL_FATAL(vl_engine_iterate(E, msg, sizeof msg), VL_OK);
        if (vl_engine_state(E)->converged)
            break;
    }
    *path = vl_engine_state(E)->mstep_path;
    CU_ASSERT_EQUAL(vl_engine_result(E, &R, msg, sizeof msg), VL_OK);
    vl_engine_free(E);
    return R;
}

static void test_mstep_arrow_paths(void)
{
    const int want[4] = {VL_MSTEP_PATH_ARROW_DIAG, VL_MSTEP_PATH_ARROW, VL_MSTEP_PATH_ARROW_DIAG,
                         VL_MSTEP_PATH_WHOLE};
    for (int layout = 0; layout < 4; layout++) {
        int prow = -1, pgram = -1;
        vl_result *Rr = arrow_fit(layout, VL_MSTEP_ROWS, &prow);
        vl_result *Rg = arrow_fit(layout, VL_MSTEP_GRAM, &pgram);
        CU_ASSERT_PTR_NOT_NULL_FATAL(Rr);
        CU_ASSERT_PTR_NOT_NULL_FATAL(Rg);
        CU_ASSERT_EQUAL(prow, VL_MSTEP_PATH_WHOLE);
        CU_ASSERT_EQUAL(pgram, want[layout]);
        double dEp = 0.0, dCp = 0.0, dEh = 0.0, dbeta = 0.0;
        for (int a = 0; a < NP; a++) {
            dEp = fmax(dEp, fabs(Rr->Ep[a] - Rg->Ep[a]));
            for (int b = 0; b < NP; b++)
                dCp = fmax(dCp, fabs(Rr->Cp[a * NP + b] - Rg->Cp[a * NP + b]));
        }
        for (int i = 0; i < Rr->nh; i++)
            dEh = fmax(dEh, fabs(Rr->Eh[i] - Rg->Eh[i]));
        for (int u = 0; u < Rr->nbeta; u++)
            dbeta = fmax(dbeta, fabs(Rr->beta[u] - Rg->beta[u]));
        printf("\n  layout %d (path %d): F %.12f, |dF| %.1e, max|dEp| %.1e, max|dCp| %.1e, "
               "max|dEh| %.1e, max|dbeta| %.1e", layout, pgram, Rr->F, fabs(Rr->F - Rg->F), dEp,
               dCp, dEh, dbeta);
        CU_ASSERT(isfinite(Rr->F) && fabs(Rr->F - Rg->F) < 1e-9);
        CU_ASSERT(dEp < 1e-9 && dCp < 1e-12 && dEh < 1e-9 && dbeta < 1e-8);
        CU_ASSERT_EQUAL(Rr->iterations, Rg->iterations);
        vl_result_free(Rr);
        vl_result_free(Rg);
    }
}

static void full_prior_confounds(int per_block, int sums, double *F_out)
{
    fill_Q();
    enum { NB = 12, NX0 = 2, NBLK = NY / NB, NU = NBLK * NX0, NT = NP + NU };
    double X[NY * NP], y[NY], theta[NP] = {0.4, 0.9, -0.7, 0.2};
    design(X, NY, NP, 5);
    double X0[NB * NX0]; /* column-major: a constant and a ramp */
    for (int r = 0; r < NB; r++) {
        X0[r] = 1.0;
        X0[r + NB] = (r - 5.5) / 6.0;
    }
    data(X, NY, NP, theta, y, 9);
    for (int r = 0; r < NY; r++)
        y[r] += 0.7 - 0.2 * (r / NB) + 0.3 * X0[r % NB + NB];
    const double pE[NP] = {0.0, 0.2, 0.0, -0.1};
    double pC[NP * NP] = {1.0, 0.3, 0.0, 0.0,
                          0.3, 0.8, 0.0, 0.0,
                          0.0, 0.0, 0.0, 0.0,   /* the third parameter is fixed */
                          0.0, 0.0, 0.0, 0.5};
    linear_model lm = {NY, NP, 0, X, 0, 0};
    vl_model M = {.np = NP, .pE = pE, .pC = pC, .ny = NY, .predict = linear_predict, .user = &lm,
                  .nh = 1, .Q = Q_ones, .hE = hE_known, .hC = hC_known,
                  .nb = NB, .nx0 = NX0, .X0 = X0, .mstep_sums = sums};
    double Qb[NBLK * NY] = {0}, hEb[NBLK], hCb[NBLK];
    for (int b = 0; b < NBLK && per_block; b++) {
        for (int r = b * NB; r < (b + 1) * NB; r++)
            Qb[b * NY + r] = 1.0;
        hEb[b] = hE_known[0];
        hCb[b] = hC_known[0];
    }
    if (per_block) {
        M.nh = NBLK;
        M.Q = Qb;
        M.hE = hEb;
        M.hC = hCb;
    }
    /* closed form over the free unknowns: theta 1, 2, 4 and the NU
       confound coefficients (prior N(0, 1e8)) */
    const int free_idx[3] = {0, 1, 3};
    enum { NF = 3 + NU };
    double Xa[NY * NF], ya[NY], m[NF] = {0}, C0[NF * NF] = {0};
    for (int r = 0; r < NY; r++) {
        ya[r] = y[r] - X[r * NP + 2] * pE[2];
        for (int a = 0; a < 3; a++)
            Xa[r * NF + a] = X[r * NP + free_idx[a]];
        for (int u = 0; u < NU; u++)
            Xa[r * NF + 3 + u] = (u / NX0 == r / NB) ? X0[r % NB + (u % NX0) * NB] : 0.0;
    }
    for (int a = 0; a < 3; a++) {
        m[a] = pE[free_idx[a]];
        for (int b = 0; b < 3; b++)
            C0[a * NF + b] = pC[free_idx[a] * NP + free_idx[b]];
    }
    for (int u = 0; u < NU; u++)
        C0[(3 + u) * NF + 3 + u] = 1e8;
    double Ep[NF], Cp[NF * NF], Pp[NF * NF];
    const double lam = PREC_FLOOR + exp(hE_known[0]);
    double logev = closed_form(Xa, ya, NY, NF, m, C0, lam, Ep, Cp, Pp);
    int it = 0;
    vl_result *R = run_to_optimum(&M, y, &it, 2000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(R);
    CU_ASSERT_EQUAL(R->nbeta, NU);
    double dEp = 0.0, dCp = 0.0;
    for (int a = 0; a < 3; a++) {
        dEp = fmax(dEp, fabs(R->Ep[free_idx[a]] - Ep[a]));
        for (int b = 0; b < 3; b++)
            dCp = fmax(dCp, fabs(R->Cp[free_idx[a] * NP + free_idx[b]] - Cp[a * NF + b]));
    }
    double dbeta = 0.0, est[NF];
    for (int u = 0; u < NU; u++)
        dbeta = fmax(dbeta, fabs(R->beta[u] - Ep[3 + u]));
    for (int a = 0; a < 3; a++)
        est[a] = R->Ep[free_idx[a]];
    for (int u = 0; u < NU; u++)
        est[3 + u] = R->beta[u];
    double cost = f_cost(est, Ep, Pp, NF);
    /* the fixed parameter stays at its prior mean with zero variance */
    CU_ASSERT(fabs(R->Ep[2] - pE[2]) < 1e-15);
    CU_ASSERT(fabs(R->Cp[2 * NP + 2]) < 1e-15);
    double dF = fabs(R->F - logev);
    printf("\n  full prior + confounds%s: %d iterations, |dF| %.1e, max|dEp| %.1e, max|dbeta| %.1e "
           "(costing %.1e in F), max|dCp| %.1e",
           per_block ? (sums == VL_MSTEP_GRAM ? " (per block, Gram)" : " (per block, rows)") : "", it, dF,
           dEp, dbeta, cost, dCp);
    if (F_out)
        *F_out = R->F;
    CU_ASSERT(dF < 1e-10);
    CU_ASSERT(cost < 1e-11);
    CU_ASSERT(dEp < 1e-6);
    CU_ASSERT(dCp < 1e-10);
    CU_ASSERT(dbeta < 1e-6);
    vl_result_free(R);
}

/* complex data: imaginary parts zero reproduce the real fit (h free);
 * complex vs stacked real/imaginary rows give the same posterior, and F
 * differs only by the normalisation counted once per complex value */
static void test_complex(void)
{
    fill_Q();
    double X[NY * NP], y[NY], theta[NP] = {0.5, 0.1, -0.4, 0.9};
    design(X, NY, NP, 11);
    data(X, NY, NP, theta, y, 3);
    const double pE[NP] = {0}, pV[NP] = {1.0, 1.0, 1.0, 1.0};
    double hE[1] = {0.0}, hC[1] = {1.0};
    /* (a) real vs complex with zero imaginary parts, noise estimated */
    double Xc[2 * NY * NP], yc[2 * NY];
    for (int r = 0; r < NY; r++) {
        for (int k = 0; k < NP; k++) {
            Xc[(2 * r) * NP + k] = X[r * NP + k];
            Xc[(2 * r + 1) * NP + k] = 0.0;
        }
        yc[2 * r] = y[r];
        yc[2 * r + 1] = 0.0;
    }
    linear_model lr = {NY, NP, 0, X, 0, 0}, lc = {NY, NP, 1, Xc, 0, 0};
    vl_model Mr = {.np = NP, .pE = pE, .pV = pV, .ny = NY, .predict = linear_predict,
                   .user = &lr, .nh = 1, .Q = Q_ones, .hE = hE, .hC = hC};
    vl_model Mz = Mr;
    Mz.complex_data = 1;
    Mz.user = &lc;
    int itr = 0, itz = 0;
    vl_result *Rr = run_to_optimum(&Mr, y, &itr, 400), *Rc = run_to_optimum(&Mz, yc, &itz, 400);
    CU_ASSERT_PTR_NOT_NULL_FATAL(Rr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(Rc);
    double dF = fabs(Rr->F - Rc->F), dEp = max_abs_diff(Rr->Ep, Rc->Ep, NP);
    double dEh = fabs(Rr->Eh[0] - Rc->Eh[0]);
    printf("\n  complex, zero imaginary parts vs real: |dF| %.1e, max|dEp| %.1e, |dEh| %.1e, "
           "iterations %d/%d", dF, dEp, dEh, itr, itz);
    /* zero rows add exact zeros, so in practice the two agree to the bit;
       the bounds allow a BLAS that sums in another order */
    CU_ASSERT(dF < 1e-10);
    CU_ASSERT(dEp < 1e-6);
    CU_ASSERT(dEh < 1e-6);
    vl_result_free(Rr);
    vl_result_free(Rc);

    /* (b) a genuinely complex model vs the same rows stacked as 2 NY real
       observations, noise known */
    double Xi[NY * NP], yi[NY];
    design(Xi, NY, NP, 23);
    data(Xi, NY, NP, theta, yi, 17);
    double Xs[2 * NY * NP], ys[2 * NY];
    for (int r = 0; r < NY; r++) {
        for (int k = 0; k < NP; k++) {
            Xc[(2 * r) * NP + k] = X[r * NP + k];
            Xc[(2 * r + 1) * NP + k] = Xi[r * NP + k];
            Xs[r * NP + k] = X[r * NP + k];
            Xs[(NY + r) * NP + k] = Xi[r * NP + k];
        }
        yc[2 * r] = y[r];
        yc[2 * r + 1] = yi[r];
        ys[r] = y[r];
        ys[NY + r] = yi[r];
    }
    linear_model ls = {2 * NY, NP, 0, Xs, 0, 0};
    vl_model Mc = {.np = NP, .pE = pE, .pV = pV, .ny = NY, .complex_data = 1,
                   .predict = linear_predict, .user = &lc, .nh = 1, .Q = Q_ones,
                   .hE = hE_known, .hC = hC_known};
    vl_model Ms = Mc;
    Ms.ny = 2 * NY;
    Ms.complex_data = 0;
    Ms.user = &ls;
    int itc = 0, its = 0;
    Rc = run_to_optimum(&Mc, yc, &itc, 400);
    Rr = run_to_optimum(&Ms, ys, &its, 400);
    CU_ASSERT_PTR_NOT_NULL_FATAL(Rc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(Rr);
    const double lam = PREC_FLOOR + exp(hE_known[0]);
    double C0[NP * NP] = {0}, Ep[NP], Cp[NP * NP], Pp[NP * NP];
    for (int i = 0; i < NP; i++)
        C0[i * NP + i] = pV[i];
    double logev = closed_form(Xs, ys, 2 * NY, NP, pE, C0, lam, Ep, Cp, Pp);
    /* stacked: 2 NY values; complex: NY values, each counted once in
       0.5 log|iS| - 0.5 ny log(2 pi) */
    double expected = logev - 0.5 * NY * log(lam) + 0.5 * NY * LOG2PI;
    dF = fabs(Rc->F - expected);
    double dFs = fabs(Rr->F - logev);
    double cost_c = f_cost(Rc->Ep, Ep, Pp, NP), cost_s = f_cost(Rr->Ep, Ep, Pp, NP);
    double dCp = fmax(max_abs_diff(Rc->Cp, Cp, NP * NP), max_abs_diff(Rr->Cp, Cp, NP * NP));
    printf("\n  complex vs stacked real/imaginary (closed form of the stacked model): "
           "|F_complex - (log ev - ny/2 log lambda + ny/2 log 2pi)| %.1e, |F_stacked - log ev| %.1e, "
           "mean errors costing %.1e / %.1e in F, max|dCp| %.1e", dF, dFs, cost_c, cost_s, dCp);
    CU_ASSERT(dF < 1e-10);
    CU_ASSERT(dFs < 1e-10);
    CU_ASSERT(cost_c < 1e-11);
    CU_ASSERT(cost_s < 1e-11);
    CU_ASSERT(dCp < 1e-10);
    /* and the complex prediction comes back interleaved */
    double f[2 * NY];
    linear_predict(&lc, Rc->Ep, f);
    CU_ASSERT(max_abs_diff(Rc->y_pred, f, 2 * NY) == 0.0);
    vl_result_free(Rr);
    vl_result_free(Rc);

    /* confounds are real-only: refused with complex data */
    char msg[256] = "";
    double X0[NY] = {0};
    vl_engine *E = NULL;
    vl_model Mbad = Mc;
    Mbad.nb = NY;
    Mbad.nx0 = 1;
    Mbad.X0 = X0;
    CU_ASSERT_EQUAL(vl_engine_alloc(&Mbad, &E, msg, sizeof msg), VL_ERR_INPUT);
    CU_ASSERT_PTR_NULL(E);
    CU_ASSERT(strstr(msg, "complex") != NULL);
}

/* ---- the stop callback ---- */

typedef struct {
    int stop_at, calls, last_iteration;
    double last_F;
} stopper;

static int stop_at_k(void *ctx, int iteration, double F, double dF, int accepted)
{
    stopper *s = ctx;
    (void)dF;
    (void)accepted;
    s->calls++;
    s->last_iteration = iteration;
    s->last_F = F;
    return iteration == s->stop_at;
}

static void test_stop(void)
{
    fill_Q();
    double X[NY * NP], y[NY], theta[NP] = {0.8, -0.5, 0.3, 1.2};
    design(X, NY, NP, 0);
    data(X, NY, NP, theta, y, 0);
    const double pE[NP] = {0}, pV[NP] = {1.0, 1.0, 1.0, 1.0};
    double hE[1] = {0.0}, hC[1] = {1.0};
    linear_model lm = {NY, NP, 0, X, 0, 0};
    stopper s = {3, 0, 0, 0.0};
    vl_problem P = {.model = {.np = NP, .pE = pE, .pV = pV, .ny = NY, .predict = linear_predict,
                              .user = &lm, .nh = 1, .Q = Q_ones, .hE = hE, .hC = hC},
                    .y = y, .maxit = 64, .progress = stop_at_k, .progress_ctx = &s};
    vl_result *R = NULL;
    char msg[256] = "";
    fill_Q();
    CU_ASSERT_EQUAL(vl_nlsi(&P, &R, msg, sizeof msg), VL_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(R);
    CU_ASSERT_EQUAL(s.calls, 3);
    CU_ASSERT_EQUAL(R->stopped, 1);
    CU_ASSERT_EQUAL(R->converged, 0);
    CU_ASSERT_EQUAL(R->iterations, 3);
    CU_ASSERT_EQUAL(R->ntrace, 3);
    CU_ASSERT_EQUAL(R->F, s.last_F);
    CU_ASSERT_EQUAL(R->F_trace[2], s.last_F);
    vl_result_free(R);
    /* a callback that never stops: the fit runs to convergence */
    s.stop_at = -1;
    s.calls = 0;
    CU_ASSERT_EQUAL(vl_nlsi(&P, &R, msg, sizeof msg), VL_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(R);
    CU_ASSERT_EQUAL(R->stopped, 0);
    CU_ASSERT_EQUAL(R->converged, 1);
    CU_ASSERT(R->iterations > 3);
    CU_ASSERT_EQUAL(s.calls, R->iterations);
    vl_result_free(R);
}

/* the public callback (dcm_progress_fn) reaches the engine: a simulated
 * two-region DCM stopped after two iterations */
static void test_stop_dcm_estimate(void)
{
    const int n = 2, v = 64;
    dcm_problem *P = dcm_problem_alloc(n, 1, v, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(P);
    model_dcm *M = P->M;
    M->TR = 2.0;
    for (int i = 0; i < n; i++) {
        char name[8];
        snprintf(name, sizeof name, "R%d", i + 1);
        P->region_names[i] = strdup(name);
        M->delays[i] = 1.0;
        M->a[i + i * n] = 1;
    }
    M->a[1] = 1; /* R1 -> R2 */
    P->input_names[0] = strdup("U");
    M->c[0] = 1;
    for (int t = 0; t < M->nu; t++)
        M->u[t] = (t / 128) % 2;
    const int np = M->L.np;
    double *theta = malloc(sizeof(double) * np), *pV = malloc(sizeof(double) * np);
    model_dcm_priors(M, theta, pV);
    theta[model_dcm_idx_C(&M->L, 0, 0)] = 1.0;
    theta[model_dcm_idx_A(&M->L, 1, 0)] = 0.5;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(dcm_predict(P, theta, P->Y, &err), DCM_OK);
    for (int k = 0; k < v * n; k++)
        P->Y[k] += 0.02 * pseudo(k);
    stopper s = {2, 0, 0, 0.0};
    dcm_result *R = NULL;
    CU_ASSERT_EQUAL_FATAL(dcm_estimate(P, stop_at_k, &s, &R, &err), DCM_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(R);
    printf("\n  dcm_estimate stopped: iterations %d, stopped %d, converged %d, F %.3f",
           R->iterations, R->stopped, R->converged, R->F);
    CU_ASSERT_EQUAL(s.calls, 2);
    CU_ASSERT_EQUAL(R->stopped, 1);
    CU_ASSERT_EQUAL(dcm_result_stopped(R), 1);   /* the public accessor */
    CU_ASSERT_EQUAL(R->converged, 0);
    CU_ASSERT_EQUAL(R->iterations, 2);
    CU_ASSERT_EQUAL(R->F, s.last_F);
    /* and the result's warnings say so (they reach the result JSON) */
    int said = 0;
    for (int i = 0; i < R->warnings.count; i++)
        said += strstr(R->warnings.items[i], "stopped by the caller after 2 iterations") != NULL;
    CU_ASSERT_EQUAL(said, 1);
    dcm_result_free(R);
    /* without a callback the same problem runs on */
    R = NULL;
    CU_ASSERT_EQUAL_FATAL(dcm_estimate(P, NULL, NULL, &R, &err), DCM_OK);
    CU_ASSERT_EQUAL(R->stopped, 0);
    CU_ASSERT(R->iterations > 2);
    for (int i = 0; i < R->warnings.count; i++)
        CU_ASSERT(strstr(R->warnings.items[i], "stopped") == NULL);
    dcm_result_free(R);
    free(theta);
    free(pV);
    dcm_problem_free(P);
}

/* ---- the Jacobian hook ---- */

/* y_t = a exp(-b s_t) + c s_t: nonlinear in b */
typedef struct {
    int ny;
    long predicts, jacobians;
} decay_model;

static int decay_predict(void *user, const double *th, double *y)
{
    decay_model *m = user;
    for (int t = 0; t < m->ny; t++) {
        double s = 0.25 * t;
        y[t] = th[0] * exp(-th[1] * s) + th[2] * s;
    }
    m->predicts++;
    return 0;
}

static int decay_jacobian(void *user, const double *th, const double *f, double *J)
{
    decay_model *m = user;
    (void)f;
    for (int t = 0; t < m->ny; t++) {
        double s = 0.25 * t, e = exp(-th[1] * s);
        J[t * 3 + 0] = e;
        J[t * 3 + 1] = -th[0] * s * e;
        J[t * 3 + 2] = s;
    }
    m->jacobians++;
    return 0;
}

static void test_jacobian_hook(void)
{
    fill_Q();
    /* a linear model: forward differences are exact up to rounding */
    double X[NY * NP], y[NY], theta[NP] = {0.8, -0.5, 0.3, 1.2};
    design(X, NY, NP, 0);
    data(X, NY, NP, theta, y, 0);
    const double pE[NP] = {0}, pV[NP] = {1.0, 1.0, 1.0, 1.0};
    double hE[1] = {0.0}, hC[1] = {1.0};
    linear_model lfd = {NY, NP, 0, X, 0, 0}, ljac = lfd;
    vl_model Mf = {.np = NP, .pE = pE, .pV = pV, .ny = NY, .predict = linear_predict,
                   .user = &lfd, .nh = 1, .Q = Q_ones, .hE = hE, .hC = hC};
    vl_model Mj = Mf;
    Mj.jacobian = linear_jacobian;
    Mj.user = &ljac;
    int itf = 0, itj = 0;
    vl_result *R = run_to_optimum(&Mf, y, &itf, 400), *Rj = run_to_optimum(&Mj, y, &itj, 400);
    CU_ASSERT_PTR_NOT_NULL_FATAL(R);
    CU_ASSERT_PTR_NOT_NULL_FATAL(Rj);
    double dF = fabs(R->F - Rj->F), dEp = max_abs_diff(R->Ep, Rj->Ep, NP);
    printf("\n  linear, analytic vs finite-difference Jacobian: |dF| %.1e, max|dEp| %.1e; "
           "predict calls %ld vs %ld, jacobian calls %ld", dF, dEp, ljac.predicts, lfd.predicts,
           ljac.jacobians);
    CU_ASSERT(dF < 1e-10);
    CU_ASSERT(dEp < 1e-6);
    /* the hook replaces the NP extra predictions of every iteration (one
       more prediction at the posterior mean for the result) */
    CU_ASSERT_EQUAL(ljac.jacobians, itj);
    CU_ASSERT_EQUAL(ljac.predicts, itj + 1);
    CU_ASSERT_EQUAL(lfd.predicts, itf * (NP + 1) + 1);
    CU_ASSERT_EQUAL(lfd.jacobians, 0);
    vl_result_free(R);
    vl_result_free(Rj);
    char msg[256] = "";

    /* a nonlinear model: the same optimum to the accuracy of the
       differences (step exp(-8)) */
    double yd[NY];
    const double th[3] = {2.0, 0.7, 0.3};
    decay_model dfd = {NY, 0, 0}, djac = {NY, 0, 0};
    decay_predict(&dfd, th, yd);
    for (int t = 0; t < NY; t++)
        yd[t] += 0.05 * pseudo(t);
    const double pE3[3] = {1.0, 0.5, 0.0}, pV3[3] = {4.0, 1.0, 1.0};
    vl_problem D = {.model = {.np = 3, .pE = pE3, .pV = pV3, .ny = NY, .predict = decay_predict,
                              .user = &dfd, .nh = 1, .Q = Q_ones, .hE = hE, .hC = hC},
                    .y = yd, .maxit = 128};
    vl_problem Dj = D;
    Dj.model.jacobian = decay_jacobian;
    Dj.model.user = &djac;
    CU_ASSERT_EQUAL(vl_nlsi(&D, &R, msg, sizeof msg), VL_OK);
    CU_ASSERT_EQUAL(vl_nlsi(&Dj, &Rj, msg, sizeof msg), VL_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(R);
    CU_ASSERT_PTR_NOT_NULL_FATAL(Rj);
    dF = fabs(R->F - Rj->F);
    dEp = max_abs_diff(R->Ep, Rj->Ep, 3);
    printf("\n  nonlinear decay, analytic vs finite differences: |dF| %.1e, max|dEp| %.1e, "
           "Ep %.4f %.4f %.4f", dF, dEp, Rj->Ep[0], Rj->Ep[1], Rj->Ep[2]);
    CU_ASSERT(dF < 1e-2);
    CU_ASSERT(dEp < 1e-2);
    CU_ASSERT(fabs(Rj->Ep[1] - th[1]) < 0.1);
    CU_ASSERT(djac.jacobians > 0);
    vl_result_free(R);
    vl_result_free(Rj);
}

/* a model that cannot be evaluated: VL_ERR_MODEL with the iteration */
static int failing_predict(void *user, const double *theta, double *y)
{
    (void)user;
    (void)theta;
    (void)y;
    return -1;
}

static void test_errors(void)
{
    fill_Q();
    const double pE[2] = {0}, pV[2] = {1, 1}, y[NY] = {0};
    double hE[1] = {0.0}, hC[1] = {1.0};
    vl_problem P = {.model = {.np = 2, .pE = pE, .pV = pV, .ny = NY, .predict = failing_predict,
                              .nh = 1, .Q = Q_ones, .hE = hE, .hC = hC},
                    .y = y, .maxit = 8};
    vl_result *R = NULL;
    char msg[256] = "";
    CU_ASSERT_EQUAL(vl_nlsi(&P, &R, msg, sizeof msg), VL_ERR_MODEL);
    CU_ASSERT_PTR_NULL(R);
    CU_ASSERT(strstr(msg, "iteration 1") != NULL);
    /* nothing about brains in the engine's messages */
    CU_ASSERT(strstr(msg, "connectivity") == NULL);
    P.maxit = 0;
    CU_ASSERT_EQUAL(vl_nlsi(&P, &R, msg, sizeof msg), VL_ERR_INPUT);
    CU_ASSERT(strstr(msg, "maxit = 0") != NULL);
    P.maxit = 8;
    hC[0] = 0.0;
    CU_ASSERT_EQUAL(vl_nlsi(&P, &R, msg, sizeof msg), VL_ERR_INPUT);
    CU_ASSERT(strstr(msg, "hyperprior 1") != NULL);
    hC[0] = 1.0;
    P.model.predict = NULL;
    CU_ASSERT_EQUAL(vl_nlsi(&P, &R, msg, sizeof msg), VL_ERR_INPUT);
    /* iterate before init */
    P.model.predict = failing_predict;
    vl_engine *E = NULL;
    CU_ASSERT_EQUAL_FATAL(vl_engine_alloc(&P.model, &E, msg, sizeof msg), VL_OK);
    CU_ASSERT_EQUAL(vl_engine_iterate(E, msg, sizeof msg), VL_ERR_INPUT);
    CU_ASSERT_EQUAL(vl_engine_result(E, &R, msg, sizeof msg), VL_ERR_INPUT);
    CU_ASSERT_PTR_NULL(R);
    vl_engine_free(E);
    CU_ASSERT_STRING_EQUAL(vl_status_str(VL_ERR_MODEL), "the model could not be evaluated");
}

/* ---- linear algebra against closed forms ---- */

static void test_expm(void)
{
    vl_expm_work *w = vl_expm_alloc(3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    double E[9];
    /* diagonal, with a norm that needs scaling and squaring */
    const double D[9] = {1.5, 0, 0, 0, -2.0, 0, 0, 0, 10.0};
    CU_ASSERT_EQUAL(vl_expm(D, 3, E, w), VL_OK);
    CU_ASSERT(fabs(E[0] - exp(1.5)) < 1e-14 * exp(1.5));
    CU_ASSERT(fabs(E[4] - exp(-2.0)) < 1e-14);
    CU_ASSERT(fabs(E[8] - exp(10.0)) / exp(10.0) < 1e-13);
    CU_ASSERT(fabs(E[1]) + fabs(E[2]) + fabs(E[3]) + fabs(E[5]) + fabs(E[6]) + fabs(E[7]) == 0.0);
    /* nilpotent: expm(N) = I + N + N^2/2 */
    const double N[9] = {0, 2, 3, 0, 0, 4, 0, 0, 0};
    const double EN[9] = {1, 2, 3 + 2 * 4 / 2.0, 0, 1, 4, 0, 0, 1};
    CU_ASSERT_EQUAL(vl_expm(N, 3, E, w), VL_OK);
    CU_ASSERT(max_abs_diff(E, EN, 9) < 1e-14);
    /* rotation generator: expm([0 -t; t 0]) = [cos -sin; sin cos] */
    const double t = 2.5;
    const double G[4] = {0, -t, t, 0}, R[4] = {cos(t), -sin(t), sin(t), cos(t)};
    CU_ASSERT_EQUAL(vl_expm(G, 2, E, w), VL_OK);
    printf("\n  expm rotation max err %.1e", max_abs_diff(E, R, 4));
    CU_ASSERT(max_abs_diff(E, R, 4) < 1e-14);
    /* zero matrix: identity */
    const double Z[4] = {0};
    CU_ASSERT_EQUAL(vl_expm(Z, 2, E, w), VL_OK);
    CU_ASSERT(E[0] == 1.0 && E[3] == 1.0 && E[1] == 0.0 && E[2] == 0.0);
    /* NaN: refused */
    const double B[4] = {1, NAN, 0, 1};
    CU_ASSERT_EQUAL(vl_expm(B, 2, E, w), VL_ERR_NONFINITE);
    vl_expm_free(w);
}

static void test_logdet(void)
{
    double work[128];
    CU_ASSERT(vl_logdet_work(3) <= 128);
    /* diagonal: zeros dropped (SPM's null variances), entries outside
       (1e-16, 1e16) ignored */
    const double D[9] = {2, 0, 0, 0, 0, 0, 0, 0, 5};
    CU_ASSERT(fabs(vl_logdet(D, 3, work) - log(10.0)) < 1e-15);
    const double Dneg[4] = {-3, 0, 0, 4};
    CU_ASSERT(fabs(vl_logdet(Dneg, 2, work) - log(4.0)) < 1e-15);
    /* symmetric positive definite 2x2 by hand: det [2 1; 1 2] = 3 */
    const double S[4] = {2, 1, 1, 2};
    CU_ASSERT(fabs(vl_logdet(S, 2, work) - log(3.0)) < 1e-14);
    CU_ASSERT(fabs(vl_logdet_spd(S, 2, work) - log(3.0)) < 1e-14);
    /* symmetric indefinite: eigenvalues 3, -1 -> log 3 + log 1 */
    const double I2[4] = {1, 2, 2, 1};
    CU_ASSERT(fabs(vl_logdet(I2, 2, work) - log(3.0)) < 1e-14);
    CU_ASSERT(isnan(vl_logdet_spd(I2, 2, work)));
    /* general: singular values of [1 2; 3 4] multiply to |det| = 2 */
    const double A[4] = {1, 2, 3, 4};
    CU_ASSERT(fabs(vl_logdet(A, 2, work) - log(2.0)) < 1e-14);
    const double Nn[4] = {1, NAN, NAN, 1};
    CU_ASSERT(isnan(vl_logdet(Nn, 2, work)));
}

static void test_inv_reg(void)
{
    /* [2 1; 1 2]^-1 = [2 -1; -1 2] / 3 (Cholesky path) */
    double A[4] = {2, 1, 1, 2};
    const double Ai[4] = {2 / 3.0, -1 / 3.0, -1 / 3.0, 2 / 3.0};
    CU_ASSERT_EQUAL(vl_inv_reg(A, 2, 0.0), VL_OK);
    CU_ASSERT(max_abs_diff(A, Ai, 4) < 1e-15);
    /* the default regularisation exp(-32) barely moves it */
    double A2[4] = {2, 1, 1, 2};
    CU_ASSERT_EQUAL(vl_inv_reg(A2, 2, -1.0), VL_OK);
    CU_ASSERT(max_abs_diff(A2, Ai, 4) < 1e-13);
    /* an explicit tol: (A + I)^-1 = [3 1; 1 3]^-1 = [3 -1; -1 3] / 8 */
    double A3[4] = {2, 1, 1, 2};
    const double A3i[4] = {3 / 8.0, -1 / 8.0, -1 / 8.0, 3 / 8.0};
    CU_ASSERT_EQUAL(vl_inv_reg(A3, 2, 1.0), VL_OK);
    CU_ASSERT(max_abs_diff(A3, A3i, 4) < 1e-15);
    /* indefinite: the LU path, [1 2; 2 1]^-1 = [-1 2; 2 -1] / 3 */
    double B[4] = {1, 2, 2, 1};
    const double Bi[4] = {-1 / 3.0, 2 / 3.0, 2 / 3.0, -1 / 3.0};
    CU_ASSERT_EQUAL(vl_inv_reg(B, 2, 0.0), VL_OK);
    CU_ASSERT(max_abs_diff(B, Bi, 4) < 1e-15);
    /* singular without regularisation; NaN */
    double S[4] = {1, 1, 1, 1};
    CU_ASSERT_EQUAL(vl_inv_reg(S, 2, 0.0), VL_ERR_NONFINITE);
    double Nn[4] = {1, 0, 0, NAN};
    CU_ASSERT_EQUAL(vl_inv_reg(Nn, 2, 0.0), VL_ERR_NONFINITE);
    /* the workspace form: same answer, reused; a workspace of the wrong
       order is refused */
    vl_inv_work *w = vl_inv_alloc(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    for (int rep = 0; rep < 2; rep++) {
        double C[4] = {2, 1, 1, 2};
        CU_ASSERT_EQUAL(vl_inv_reg_ws(C, 2, 0.0, w), VL_OK);
        CU_ASSERT(max_abs_diff(C, Ai, 4) == 0.0 || max_abs_diff(C, Ai, 4) < 1e-15);
    }
    double C3[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    CU_ASSERT_EQUAL(vl_inv_reg_ws(C3, 3, 0.0, w), VL_ERR_INPUT);
    vl_inv_free(w);
}

static void test_dx(void)
{
    /* H = diag(-2, -4): its log-determinant counts no entry (SPM keeps
       diagonal entries in (1e-16, 1e16) only), so t = exp(v), and
       dx_i = (exp(t h_i) - 1) / h_i g_i */
    const double H[4] = {-2, 0, 0, -4}, g[2] = {1.0, -0.5};
    double dx[2];
    for (double v = -4.0; v <= 4.0; v += 2.0) {
        const double t = exp(v);
        const double want[2] = {(exp(-2 * t) - 1) / -2 * g[0], (exp(-4 * t) - 1) / -4 * g[1]};
        CU_ASSERT_EQUAL(vl_dx(H, g, 2, v, dx), VL_OK);
        CU_ASSERT(max_abs_diff(dx, want, 2) < 1e-14);
    }
    /* t > exp(16): the Newton step -H^-1 g */
    CU_ASSERT_EQUAL(vl_dx(H, g, 2, 20.0, dx), VL_OK);
    CU_ASSERT(fabs(dx[0] - 0.5) < 1e-15 && fabs(dx[1] + 0.125) < 1e-15);
    /* a full H: the step solves the linear ODE dx/dt = H x + g from 0,
       which for large t approaches -H^-1 g: H = [-2 1; 1 -2],
       -H^-1 g = [2 1; 1 2] g / 3 */
    const double Hf[4] = {-2, 1, 1, -2};
    const double newton[2] = {(2 * g[0] + g[1]) / 3, (g[0] + 2 * g[1]) / 3};
    CU_ASSERT_EQUAL(vl_dx(Hf, g, 2, 20.0, dx), VL_OK);
    CU_ASSERT(max_abs_diff(dx, newton, 2) < 1e-14);
    /* logdet(Hf) = log 3 (symmetric indefinite path... here negative
       definite: |eigenvalues| 1, 3); at v = log(3)/2 + 3, t = e^3: the
       eigen-decomposition H = -1 (u1), -3 (u2) gives the step by hand */
    double v = 0.5 * log(3.0) + 3.0, t = exp(3.0);
    double g1 = (g[0] + g[1]) / sqrt(2.0), g2 = (g[0] - g[1]) / sqrt(2.0);
    double s1 = (exp(-t) - 1) / -1 * g1, s2 = (exp(-3 * t) - 1) / -3 * g2;
    const double want[2] = {(s1 + s2) / sqrt(2.0), (s1 - s2) / sqrt(2.0)};
    CU_ASSERT_EQUAL(vl_dx(Hf, g, 2, v, dx), VL_OK);
    printf("\n  dx (full H, expm branch) max err %.1e", max_abs_diff(dx, want, 2));
    CU_ASSERT(max_abs_diff(dx, want, 2) < 1e-13);
    /* the workspace form gives the same bits, reused */
    vl_dx_work *w = vl_dx_alloc(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    double dx2[2];
    for (int rep = 0; rep < 3; rep++) {
        CU_ASSERT_EQUAL(vl_dx_ws(Hf, g, 2, v, dx2, w), VL_OK);
        CU_ASSERT(dx2[0] == dx[0] && dx2[1] == dx[1]);
    }
    CU_ASSERT_EQUAL(vl_dx_ws(Hf, g, 1, v, dx2, w), VL_ERR_INPUT);
    const double Hn[4] = {NAN, 0, 0, 1};
    CU_ASSERT_EQUAL(vl_dx_ws(Hn, g, 2, v, dx2, w), VL_ERR_NONFINITE);
    vl_dx_free(w);
}

/* vl_dx_ws on a symmetric curvature (the engine's: one eigensystem, kept
 * while H is unchanged) against the first column of expm([0 0; t g, t H])
 * formed by hand, and a Newton step against a Cholesky solve; the kept
 * eigensystem gives the fresh workspace's steps bit for bit */
static void test_dx_symmetric(void)
{
    enum { N = 30 };
    static double H[N * N], H2[N * N], g[N], Aug[(N + 1) * (N + 1)], Ex[(N + 1) * (N + 1)];
    double B[N * N];
    for (int i = 0; i < N * N; i++)
        B[i] = pseudo(31 + i);
    /* H = -(B B' / N + diag(10^(-6..3))): negative definite, spread */
    for (int i = 0; i < N; i++) {
        g[i] = pseudo(500 + i);
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < N; k++)
                s += B[i * N + k] * B[j * N + k];
            H[i * N + j] = -s / N - (i == j ? pow(10.0, -6.0 + 9.0 * i / (N - 1)) : 0.0);
        }
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < i; j++)
            H[i * N + j] = H[j * N + i];   /* exactly symmetric */
    memcpy(H2, H, sizeof H);
    H2[3 * N + 5] = H2[5 * N + 3] = H[3 * N + 5] * 1.5;
    vl_dx_work *w = vl_dx_alloc(N), *wf = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    double work[2 * N * N + 8 * N + 64], maxrel = 0.0;
    const double rates[3] = {-4.0, -1.0, 2.0};
    for (int c = 0; c < 3; c++) {
        double dx[N], dxf[N];
        CU_ASSERT_EQUAL(vl_dx_ws(H, g, N, rates[c], dx, w), VL_OK);
        wf = vl_dx_alloc(N);
        CU_ASSERT_EQUAL(vl_dx_ws(H, g, N, rates[c], dxf, wf), VL_OK);
        vl_dx_free(wf);
        CU_ASSERT(!memcmp(dx, dxf, sizeof dx));
        double t = exp(rates[c] - vl_logdet(H, N, work) / N);
        memset(Aug, 0, sizeof Aug);
        for (int i = 0; i < N; i++) {
            Aug[(i + 1) * (N + 1)] = t * g[i];
            for (int j = 0; j < N; j++)
                Aug[(i + 1) * (N + 1) + j + 1] = t * H[i * N + j];
        }
        vl_expm_work *ew = vl_expm_alloc(N + 1);
        CU_ASSERT_EQUAL(vl_expm(Aug, N + 1, Ex, ew), VL_OK);
        vl_expm_free(ew);
        double num = 0.0, den = 0.0;
        for (int i = 0; i < N; i++) {
            num = fmax(num, fabs(dx[i] - Ex[(i + 1) * (N + 1)]));
            den = fmax(den, fabs(Ex[(i + 1) * (N + 1)]));
        }
        maxrel = fmax(maxrel, num / den);
    }
    /* a changed H is decomposed again */
    double dx2[N], dx2f[N];
    CU_ASSERT_EQUAL(vl_dx_ws(H2, g, N, -1.0, dx2, w), VL_OK);
    wf = vl_dx_alloc(N);
    CU_ASSERT_EQUAL(vl_dx_ws(H2, g, N, -1.0, dx2f, wf), VL_OK);
    vl_dx_free(wf);
    CU_ASSERT(!memcmp(dx2, dx2f, sizeof dx2));
    /* Newton (t > e^16): -H^-1 g */
    double dxn[N], want[N];
    CU_ASSERT_EQUAL(vl_dx_ws(H, g, N, 40.0, dxn, w), VL_OK);
    gsl_matrix *A = gsl_matrix_alloc(N, N);
    for (int i = 0; i < N * N; i++)
        A->data[i] = -H[i];
    gsl_linalg_cholesky_decomp1(A);
    gsl_vector_const_view gv = gsl_vector_const_view_array(g, N);
    gsl_vector_view wv = gsl_vector_view_array(want, N);
    gsl_linalg_cholesky_solve(A, &gv.vector, &wv.vector);
    gsl_matrix_free(A);
    double nnum = 0.0, nden = 0.0;
    for (int i = 0; i < N; i++) {
        nnum = fmax(nnum, fabs(dxn[i] - want[i]));
        nden = fmax(nden, fabs(want[i]));
    }
    printf("\n  symmetric 30 x 30 (|lambda| 1e-6..1e3): vs expm by hand max rel %.1e, Newton vs "
           "Cholesky rel %.1e", maxrel, nnum / nden);
    CU_ASSERT(maxrel < 1e-9);
    CU_ASSERT(nnum / nden < 1e-8);
    vl_dx_free(w);
}

/* SPM's M-step, by hand, on iteration 1 of a linear model whose noise
 * hyperprior (hE 6, hC 1/128, SPM's DCM default) is far above the data's
 * log-precision: up to 8 Fisher-scoring passes with t = e^4 (SPM's
 * spm_logdet of a negative diagonal is 0), steps clipped to +-1, stop when
 * dFdh dh < 1e-2; F uses the precision of the last pass (before its update)
 * while the kept h is the updated one. The clipped steps overshoot where
 * the Fisher curvature -ny/2 - 1/hC understates the true one, so h can
 * oscillate by +-1 across the passes: on the PEB tutorial's sub-08 that
 * oscillation decides which steps SPM accepts (see vl_nlsi.c). */
static void test_mstep_as_spm(void)
{
    enum { R = 200, K = 3 };
    double X[R * K], y[R], theta[K] = {0.6, -0.4, 0.9}, Q[R];
    design(X, R, K, 11);
    data(X, R, K, theta, y, 11);
    for (int r = 0; r < R; r++)
        Q[r] = 1.0;
    const double pE[K] = {0.0, 0.0, 0.0}, pV[K] = {1.0, 0.5, 2.0};
    const double hE[1] = {6.0}, hC[1] = {1.0 / 128.0};
    linear_model lm = {R, K, 0, X, 0, 0};
    vl_model M = {.np = K, .pE = pE, .pV = pV, .ny = R, .predict = linear_predict,
                  .jacobian = linear_jacobian, .user = &lm, .nh = 1, .Q = Q, .hE = hE,
                  .hC = hC};
    /* the hand computation at p = 0: e = y, J = -X */
    double XtX[K * K] = {0}, ee = 0.0;
    for (int r = 0; r < R; r++) {
        ee += y[r] * y[r];
        for (int a = 0; a < K; a++)
            for (int b = 0; b < K; b++)
                XtX[a * K + b] += X[r * K + a] * X[r * K + b];
    }
    double h = hE[0], w = 0.0, ldCp = 0.0, H = 0.0, d = 0.0;
    int passes = 0, clipped = 0;
    for (int m = 0; m < 8; m++) {
        w = PREC_FLOOR + exp(h);
        gsl_matrix *C = gsl_matrix_alloc(K, K);
        for (int a = 0; a < K; a++)
            for (int b = 0; b < K; b++)
                gsl_matrix_set(C, a, b, w * XtX[a * K + b] + (a == b ? 1.0 / pV[a] : 0.0));
        gsl_linalg_cholesky_decomp1(C);
        ldCp = 0.0;
        for (int a = 0; a < K; a++)
            ldCp -= 2.0 * log(gsl_matrix_get(C, a, a));
        gsl_linalg_cholesky_invert(C);
        double trc = 0.0;  /* tr(Cp J' P J) = e^h tr(Cp X'X) */
        for (int a = 0; a < K; a++)
            for (int b = 0; b < K; b++)
                trc += gsl_matrix_get(C, a, b) * XtX[b * K + a];
        gsl_matrix_free(C);
        const double eh = exp(h);
        d = h - hE[0];
        double g = R * (eh / w) / 2.0 - eh * ee / 2.0 - eh * trc / 2.0 - d / hC[0];
        H = -R * (eh / w) * (eh / w) / 2.0 - 1.0 / hC[0];
        double t = exp(4.0), dh = (exp(t * H) - 1.0) / H * g;
        clipped += fabs(dh) > 1.0;
        dh = fmin(fmax(dh, -1.0), 1.0);
        h += dh;
        passes++;
        if (g * dh < 1e-2)
            break;
    }
    const double Fhand = R * log(w) / 2.0 - w * ee / 2.0 - R * LOG2PI / 2.0 +
                         (-log(pV[0]) - log(pV[1]) - log(pV[2]) + ldCp) / 2.0 +
                         (log(1.0 / hC[0]) - log(-H)) / 2.0 - d * d / hC[0] / 2.0;
    vl_engine *E = NULL;
    vl_result *Res = NULL;
    char msg[256] = "";
    CU_ASSERT_EQUAL_FATAL(vl_engine_alloc(&M, &E, msg, sizeof msg), VL_OK);
    CU_ASSERT_EQUAL(vl_engine_init(E, y, NULL, msg, sizeof msg), VL_OK);
    CU_ASSERT_EQUAL(vl_engine_iterate(E, msg, sizeof msg), VL_OK);
    const vl_state *st = vl_engine_state(E);
    CU_ASSERT_EQUAL(vl_engine_result(E, &Res, msg, sizeof msg), VL_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(Res);
    printf("\n  iteration 1: %d M-step passes (%d clipped), h %.12f (hand %.12f), "
           "F %.10f (hand %.10f)", passes, clipped, Res->Eh[0], h, st->F, Fhand);
    /* the case exercises the clip and more than one pass */
    CU_ASSERT(clipped >= 2);
    CU_ASSERT(passes >= 4);
    CU_ASSERT(fabs(Res->Eh[0] - h) < 1e-12);
    CU_ASSERT(fabs(st->F - Fhand) < 1e-8 * fabs(Fhand));
    vl_result_free(Res);
    vl_engine_free(E);
}

int main(void)
{
    static const test_case cases[] = {
        {"linear-Gaussian: posterior and F = exact log evidence", test_linear_closed_form},
        {"linear-Gaussian: full prior covariance, fixed parameter, confounds",
         test_linear_full_prior_confounds},
        {"M-step over per-component Gram matrices = over rows (confounds per block)",
         test_mstep_gram_vs_rows},
        {"M-step as an arrow (blocks, diagonalised, gap, whole) = over rows",
         test_mstep_arrow_paths},
        {"complex data: zero imaginary parts, complex vs stacked", test_complex},
        {"progress callback stops the fit", test_stop},
        {"dcm_estimate passes the stop through", test_stop_dcm_estimate},
        {"Jacobian hook vs finite differences", test_jacobian_hook},
        {"engine errors: failing model, bad options, order of calls", test_errors},
        {"noise M-step as SPM: clipped passes, F at the last pass's precision",
         test_mstep_as_spm},
        {"vl_expm: diagonal, nilpotent, rotation", test_expm},
        {"vl_logdet: diagonal, 2x2 by hand, indefinite, general", test_logdet},
        {"vl_inv_reg: Cholesky, LU, regularised, singular", test_inv_reg},
        {"vl_dx: diagonal, Newton, full H by hand, workspace", test_dx},
        {"vl_dx: symmetric H by one eigensystem = expm by hand, kept while H is",
         test_dx_symmetric},
        {NULL, NULL}};
    return test_run("VL engine", cases);
}
