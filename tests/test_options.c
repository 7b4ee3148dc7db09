/* test_options.c — the model options that SPM's reference files do not
 * cover: two-state neurons, nonlinear (D) modulation, centred inputs.
 * Analytic Jacobians are checked against central differences, priors
 * against SPM12's formulas, and the integrators for consistency. */
#include "dcm/dcm_api.h"
#include "models/model_dcm.h"
#include "models/model_integrate.h"
#include "tests/test_util.h"

#include <gsl/gsl_rng.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_randist.h>

/* three regions, two inputs, every switch on */
static model_dcm *full_model(int two_state, int nonlinear)
{
    model_dcm *M = model_dcm_alloc(3, 2, 40, nonlinear);
    M->two_state = two_state;
    M->TR = 2.0;
    for (int k = 0; k < 9; k++)
        M->a[k] = 1.0;
    for (int k = 0; k < 18; k++)
        M->b[k] = 1.0;
    for (int k = 0; k < 6; k++)
        M->c[k] = 1.0;
    for (int k = 0; k < 27 && nonlinear; k++)
        M->d[k] = 1.0;
    for (int j = 0; j < 3; j++)
        M->delays[j] = 1.0;
    return M;
}

static double jacobian_error(model_dcm *M, unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    const int nx = model_dcm_nstates(M), np = M->L.np, m = M->m;
    double *P = malloc(sizeof(double) * np), *x = malloc(sizeof(double) * nx);
    double u[2], f[32], fp[32], fm[32], J[32 * 32], Ju[64];
    double *work = malloc(sizeof(double) * model_dcm_fx_work(M));
    for (int i = 0; i < np; i++)
        P[i] = gsl_ran_gaussian(r, 0.2);
    for (int i = 0; i < nx; i++)
        x[i] = gsl_ran_gaussian(r, 0.3);
    u[0] = gsl_rng_uniform(r);
    u[1] = gsl_rng_uniform(r);
    model_dcm_fx(M, P, x, u, f, J, Ju, work);
    double worst = 0.0, h = 1e-6;
    for (int j = 0; j < nx; j++) {
        double x0 = x[j];
        x[j] = x0 + h;
        model_dcm_fx(M, P, x, u, fp, NULL, NULL, work);
        x[j] = x0 - h;
        model_dcm_fx(M, P, x, u, fm, NULL, NULL, work);
        x[j] = x0;
        for (int i = 0; i < nx; i++) {
            double fd = (fp[i] - fm[i]) / (2 * h);
            worst = fmax(worst, fabs(fd - J[i + j * nx]) / fmax(1.0, fabs(fd)));
        }
    }
    for (int j = 0; j < m; j++) {
        double u0 = u[j];
        u[j] = u0 + h;
        model_dcm_fx(M, P, x, u, fp, NULL, NULL, work);
        u[j] = u0 - h;
        model_dcm_fx(M, P, x, u, fm, NULL, NULL, work);
        u[j] = u0;
        for (int i = 0; i < nx; i++) {
            double fd = (fp[i] - fm[i]) / (2 * h);
            worst = fmax(worst, fabs(fd - Ju[i + j * nx]) / fmax(1.0, fabs(fd)));
        }
    }
    free(P);
    free(x);
    free(work);
    gsl_rng_free(r);
    return worst;
}

static void test_jacobians(void)
{
    const int cfg[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
    for (int c = 0; c < 4; c++) {
        model_dcm *M = full_model(cfg[c][0], cfg[c][1]);
        double e = 0.0;
        for (unsigned long s = 1; s <= 5; s++)
            e = fmax(e, jacobian_error(M, s));
        printf("\n  two_state %d nonlinear %d: max Jacobian error vs central differences %.2e",
               cfg[c][0], cfg[c][1], e);
        CU_ASSERT(e < 1e-6);
        model_dcm_free(M);
    }
    printf("\n");
}

/* SPM12's spm_dcm_fmri_priors, two-state branch:
 * A mean (a+I)*32-32, var (a+I)/16; B var b/4; C var 4c; D var d/4. */
static void test_two_state_priors(void)
{
    model_dcm *M = full_model(1, 1);
    M->a[1] = 0.0; /* switch off V1 -> V2 (row 1, column 0) */
    M->b[0 * 9 + 3] = 0.0;
    const int np = M->L.np;
    double *pE = malloc(sizeof(double) * np), *pV = malloc(sizeof(double) * np);
    model_dcm_priors(M, pE, pV);
    CU_ASSERT_EQUAL(pE[model_dcm_idx_A(&M->L, 1, 0)], -32.0);
    CU_ASSERT_EQUAL(pV[model_dcm_idx_A(&M->L, 1, 0)], 0.0);
    CU_ASSERT_EQUAL(pE[model_dcm_idx_A(&M->L, 0, 1)], 0.0);
    CU_ASSERT_EQUAL(pV[model_dcm_idx_A(&M->L, 0, 1)], 1.0 / 16);
    CU_ASSERT_EQUAL(pE[model_dcm_idx_A(&M->L, 2, 2)], 0.0);
    CU_ASSERT_EQUAL(pV[model_dcm_idx_A(&M->L, 2, 2)], 1.0 / 16);
    CU_ASSERT_EQUAL(pV[model_dcm_idx_B(&M->L, 0, 1, 0)], 0.25);
    CU_ASSERT_EQUAL(pV[model_dcm_idx_B(&M->L, 0, 0, 1)], 0.0);
    CU_ASSERT_EQUAL(pV[model_dcm_idx_C(&M->L, 2, 1)], 4.0);
    CU_ASSERT_EQUAL(pV[model_dcm_idx_D(&M->L, 2, 1, 0)], 0.25);
    CU_ASSERT_EQUAL(pV[M->L.off_transit], 1.0 / 256);
    CU_ASSERT_EQUAL(pV[M->L.off_decay], 1.0 / 256);
    CU_ASSERT_EQUAL(pV[M->L.off_epsilon], 1.0 / 256);
    CU_ASSERT_EQUAL(np, 9 + 18 + 6 + 27 + 3 + 2);
    /* one-state: A mean a/128 off the diagonal, var (a+I)/64; D var d */
    M->two_state = 0;
    model_dcm_priors(M, pE, pV);
    CU_ASSERT_EQUAL(pE[model_dcm_idx_A(&M->L, 0, 1)], 1.0 / 128);
    CU_ASSERT_EQUAL(pE[model_dcm_idx_A(&M->L, 1, 1)], 0.0);
    CU_ASSERT_EQUAL(pV[model_dcm_idx_A(&M->L, 1, 1)], 1.0 / 64);
    CU_ASSERT_EQUAL(pV[model_dcm_idx_A(&M->L, 1, 0)], 0.0);
    CU_ASSERT_EQUAL(pV[model_dcm_idx_D(&M->L, 2, 1, 0)], 1.0);
    free(pE);
    free(pV);
    model_dcm_free(M);
}

/* The two-state model at rest: excitatory self-decay 1/2 and inhibitory
 * feedback exp(A_ii)/8, so a pulse into region 1 must decay back to 0
 * and the inhibitory state must follow the excitatory one. */
static void test_two_state_dynamics(void)
{
    model_dcm *M = full_model(1, 0);
    const int np = M->L.np;
    double *pE = malloc(sizeof(double) * np), *pV = malloc(sizeof(double) * np);
    model_dcm_priors(M, pE, pV);
    pE[model_dcm_idx_C(&M->L, 0, 0)] = 0.05; /* near-linear regime */
    for (int t = 0; t < 16 * 5; t++)
        M->u[t * 2] = 1.0; /* first 5 scans */
    model_int_work *W = model_int_alloc(M);
    double *y = malloc(sizeof(double) * M->v * 3);
    CU_ASSERT_EQUAL(model_int_predict(M, pE, y, W), MODEL_INT_OK);
    double peak = 0.0;
    for (int s = 0; s < M->v; s++)
        peak = fmax(peak, y[s]);
    printf("\n  two-state BOLD peak %.4f, last %.2e\n", peak, y[M->v - 1]);
    CU_ASSERT(peak > 0.01);
    CU_ASSERT(fabs(y[M->v - 1]) < 0.2 * peak);
    /* the ODE integrator agrees in this near-linear regime */
    M->integrator = MODEL_INT_ODE;
    model_int_work *W2 = model_int_alloc(M);
    double *y2 = malloc(sizeof(double) * M->v * 3);
    CU_ASSERT_EQUAL(model_int_predict(M, pE, y2, W2), MODEL_INT_OK);
    CU_ASSERT(test_rel_err(y2, y, M->v * 3) < 0.02);
    free(y);
    free(y2);
    free(pE);
    free(pV);
    model_int_free(W);
    model_int_free(W2);
    model_dcm_free(M);
}

/* spm_int_D: nonlinear modulation must change the response, and stay
 * finite and stable for modest D. */
static void test_nonlinear_D(void)
{
    model_dcm *M = full_model(0, 1);
    const int np = M->L.np;
    double *pE = malloc(sizeof(double) * np), *pV = malloc(sizeof(double) * np);
    model_dcm_priors(M, pE, pV);
    pE[model_dcm_idx_C(&M->L, 0, 0)] = 1.0;
    pE[model_dcm_idx_A(&M->L, 1, 0)] = 0.3;
    for (int t = 0; t < 16 * 10; t++)
        M->u[t * 2] = 1.0;
    model_int_work *W = model_int_alloc(M);
    double *y0 = malloc(sizeof(double) * M->v * 3), *y1 = malloc(sizeof(double) * M->v * 3);
    CU_ASSERT_EQUAL(model_int_predict(M, pE, y0, W), MODEL_INT_OK);
    pE[model_dcm_idx_D(&M->L, 0, 1, 0)] = 2.0; /* V1 gates V1 -> V2 */
    CU_ASSERT_EQUAL(model_int_predict(M, pE, y1, W), MODEL_INT_OK);
    double d = 0.0;
    for (int s = 0; s < M->v; s++)
        d = fmax(d, fabs(y1[s + M->v] - y0[s + M->v]));
    printf("\n  D changes region 2's BOLD by up to %.4f (peak %.4f)\n", d,
           test_max_abs(y0 + M->v, M->v));
    CU_ASSERT(d > 1e-3);
    CU_ASSERT(test_max_abs(y1, M->v * 3) < 10.0);
    free(y0);
    free(y1);
    free(pE);
    free(pV);
    model_int_free(W);
    model_dcm_free(M);
}

/* Centring: inputs are mean-corrected before integration (SPM's
 * options.centre), so a constant input has no effect at all. */
static void test_centre(void)
{
    dcm_problem *P = dcm_problem_alloc(1, 1, 30, 0);
    model_dcm *M = P->M;
    M->TR = 2.0;
    M->a[0] = 1;
    M->c[0] = 1;
    M->delays[0] = 1.0;
    for (int t = 0; t < M->nu; t++)
        M->u[t] = 1.0;
    P->region_names[0] = strdup("R");
    P->input_names[0] = strdup("U");
    const int np = M->L.np;
    double *theta = malloc(sizeof(double) * np), *pV = malloc(sizeof(double) * np);
    double y[30];
    model_dcm_priors(M, theta, pV);
    theta[model_dcm_idx_C(&M->L, 0, 0)] = 1.0;
    dcm_error err;
    P->centre = 0;
    CU_ASSERT_EQUAL(dcm_predict(P, theta, y, &err), DCM_OK);
    CU_ASSERT(test_max_abs(y, 30) > 0.01);
    P->centre = 1;
    CU_ASSERT_EQUAL(dcm_predict(P, theta, y, &err), DCM_OK);
    printf("\n  centred constant input: max |y| %.3e\n", test_max_abs(y, 30));
    CU_ASSERT(test_max_abs(y, 30) < 1e-12);
    free(theta);
    free(pV);
    dcm_problem_free(P);
}

/* More regions than maxnodes: SPM confines the prior on A to the data's
 * principal modes, kron(VV', VV'), so the posterior covariance of A has
 * rank at most maxnodes^2. */
static void test_maxnodes(void)
{
    const int n = 4, v = 120;
    dcm_problem *P = dcm_problem_alloc(n, 1, v, 0);
    model_dcm *M = P->M;
    M->TR = 2.0;
    for (int i = 0; i < n; i++) {
        char name[8];
        snprintf(name, sizeof name, "R%d", i + 1);
        P->region_names[i] = strdup(name);
        M->delays[i] = 1.0;
        M->a[i + i * n] = 1;
        if (i)
            M->a[i + (i - 1) * n] = M->a[(i - 1) + i * n] = 1; /* a chain */
    }
    P->input_names[0] = strdup("U");
    M->c[0] = 1;
    for (int t = 0; t < M->nu; t++)
        M->u[t] = (t / 160) % 2;
    const int np = M->L.np;
    double *theta = malloc(sizeof(double) * np), *pV = malloc(sizeof(double) * np);
    model_dcm_priors(M, theta, pV);
    theta[model_dcm_idx_C(&M->L, 0, 0)] = 1.0;
    for (int i = 1; i < n; i++)
        theta[model_dcm_idx_A(&M->L, i, i - 1)] = 0.4;
    dcm_error err;
    CU_ASSERT_EQUAL_FATAL(dcm_predict(P, theta, P->Y, &err), DCM_OK);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 9);
    for (int k = 0; k < v * n; k++)
        P->Y[k] += gsl_ran_gaussian(rng, 0.05);
    gsl_rng_free(rng);
    P->maxnodes = 2;
    dcm_result *R = NULL;
    CU_ASSERT_EQUAL_FATAL(dcm_estimate(P, NULL, NULL, &R, &err), DCM_OK);
    /* rank of the A block of Cp */
    const int nn = n * n;
    gsl_matrix *A = gsl_matrix_alloc(nn, nn);
    for (int a = 0; a < nn; a++)
        for (int b = 0; b < nn; b++)
            gsl_matrix_set(A, a, b, R->Cp[a * np + b]);
    gsl_vector *ev = gsl_vector_alloc(nn);
    gsl_eigen_symm_workspace *w = gsl_eigen_symm_alloc(nn);
    gsl_eigen_symm(A, ev, w);
    double emax = gsl_vector_max(ev);
    int rank = 0;
    for (int i = 0; i < nn; i++)
        rank += gsl_vector_get(ev, i) > 1e-9 * emax;
    int free_a = 0;
    for (int i = 0; i < nn; i++)
        free_a += pV[i] > 0;
    printf("\n  %d regions, maxnodes 2: F %.2f, %d free A parameters, posterior A covariance rank %d\n", n,
           R->F, free_a, rank);
    CU_ASSERT(isfinite(R->F));
    CU_ASSERT(rank <= 4);
    CU_ASSERT(free_a > 4);
    gsl_eigen_symm_free(w);
    gsl_vector_free(ev);
    gsl_matrix_free(A);
    free(theta);
    free(pV);
    dcm_result_free(R);
    dcm_problem_free(P);
}

int main(void)
{
    static const test_case cases[] = {
        {"analytic Jacobians agree with central differences", test_jacobians},
        {"two-state and one-state priors follow SPM12's formulas", test_two_state_priors},
        {"two-state dynamics: a pulse decays; ODE agrees", test_two_state_dynamics},
        {"nonlinear D modulation changes the response", test_nonlinear_D},
        {"centred inputs remove a constant input", test_centre},
        {"more regions than maxnodes: A confined to the data's modes", test_maxnodes},
        {NULL, NULL}};
    return test_run("options", cases);
}
