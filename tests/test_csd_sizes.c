/* test_csd_sizes.c — spectral DCM on other sizes, TRs and lengths than the
 * public spectral_4 (the held-out cases are 3 and 6 regions, TRs 0.72-3 s,
 * 200-1200 scans), on resting-state data simulated from a known network
 * (bench/bench_csd_sim.h). Needs nothing from ../shared.
 * Each fit must converge with a finite F and explain the spectra, and be
 * consistent with itself: the predicted CSD it reports is the model's at
 * its posterior mean, F is the sum of its terms and the parameter term is
 * recomputed from the posterior, and relabelling the regions relabels the
 * answer. More regions than maxnodes: SPM's eigenmode constraint. */
#include "test_util.h"

#include <complex.h>

#include <gsl/gsl_eigen.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>

#include "bench/bench_csd_sim.h"
#include "dcm/dcm_csd.h"
#include "models/model_csd.h"

/* Simulate n regions (the chain network), T scans at TR, and fit the full
 * model; NULL (and a failed assertion) when it could not. Y receives the
 * data when not NULL (T x n). */
static dcm_csd_result *fit_sim(int n, int T, double TR, unsigned long long seed, double *Yout)
{
    double *A = malloc(sizeof(double) * n * n), *Y = malloc(sizeof(double) * n * T);
    double *a = malloc(sizeof(double) * n * n), *transit = malloc(sizeof(double) * n);
    dcm_csd_result *R = NULL;
    CU_ASSERT_FATAL(A && Y && a && transit);
    bench_csd_sim_network(n, A);
    for (int i = 0; i < n; i++)
        transit[i] = 0.05 * sin(1.0 + i);   /* regions differ a little */
    for (int k = 0; k < n * n; k++)
        a[k] = 1.0;
    CU_ASSERT_EQUAL_FATAL(bench_csd_sim(n, T, TR, A, transit, seed, Y), 0);
    dcm_error err = {0, ""};
    dcm_csd_options opt = DCM_CSD_OPTIONS_DEFAULT;
    int rc = dcm_csd_estimate(Y, T, n, TR, a, &opt, NULL, NULL, &R, &err);
    if (rc)
        printf("\n  %d regions, %d scans, TR %g: %s", n, T, TR, err.msg);
    CU_ASSERT_EQUAL(rc, 0);
    if (Yout)
        memcpy(Yout, Y, sizeof(double) * n * T);
    free(A);
    free(Y);
    free(a);
    free(transit);
    return R;
}

/* |predicted CSD reported - the model's CSD at Ep| relative to its largest */
static double pred_consistency(const dcm_csd_result *R, double TE)
{
    const int n = R->n, nw = R->nw;
    const size_t nc = (size_t)nw * n * n;
    double complex *csd = malloc(sizeof(double complex) * nc);
    model_csd_work *W = model_csd_work_alloc(n, nw, R->Hz, MODEL_CSD_ORDER - 1, TE);
    CU_ASSERT_FATAL(csd && W);
    CU_ASSERT_EQUAL_FATAL(model_csd_predict(W, R->Ep, csd, NULL), 0);
    double d = 0.0, m = 0.0;
    for (size_t k = 0; k < nc; k++) {
        d = fmax(d, cabs(csd[k] - R->csd_pred[k]));
        m = fmax(m, cabs(R->csd_pred[k]));
    }
    model_csd_work_free(W);
    free(csd);
    return d / m;
}

/* The parameter term of F from the posterior (diagonal prior, free
 * parameters only): 1/2 log|pC^-1 Cp| - 1/2 (Ep - pE)' pC^-1 (Ep - pE). */
static double parameter_term(const dcm_csd_result *R)
{
    int idx[512], m = 0;
    for (int k = 0; k < R->np && m < 512; k++)
        if (R->pV[k] > 0.0)
            idx[m++] = k;
    gsl_matrix *C = gsl_matrix_alloc((size_t)m, (size_t)m);
    double quad = 0.0, logpv = 0.0;
    for (int a = 0; a < m; a++) {
        double d = R->Ep[idx[a]] - R->pE[idx[a]];
        quad += d * d / R->pV[idx[a]];
        logpv += log(R->pV[idx[a]]);
        for (int b = 0; b < m; b++)
            gsl_matrix_set(C, (size_t)a, (size_t)b, R->Cp[(size_t)idx[a] * R->np + idx[b]]);
    }
    double ld = 0.0;
    if (gsl_linalg_cholesky_decomp1(C) == 0)
        for (int a = 0; a < m; a++)
            ld += 2.0 * log(gsl_matrix_get(C, (size_t)a, (size_t)a));
    else
        ld = NAN;
    gsl_matrix_free(C);
    return 0.5 * (ld - logpv) - 0.5 * quad;
}

/* variance of the empirical CSD explained by the predicted one, % */
static double variance_explained(const dcm_csd_result *R)
{
    const size_t nc = (size_t)R->nw * R->n * R->n;
    double ss = 0.0, se = 0.0;
    double complex mu = 0.0;
    for (size_t k = 0; k < nc; k++)
        mu += R->csd_obs[k] / (double)nc;
    for (size_t k = 0; k < nc; k++) {
        ss += cabs(R->csd_obs[k] - mu) * cabs(R->csd_obs[k] - mu);
        se += cabs(R->csd_obs[k] - R->csd_pred[k]) * cabs(R->csd_obs[k] - R->csd_pred[k]);
    }
    return 100.0 * (1.0 - se / ss);
}

static void check_fit(int n, int T, double TR)
{
    dcm_csd_result *R = fit_sim(n, T, TR, (unsigned long long)(1000 * n + T + 10 * TR), NULL);
    if (!R)
        return;
    double ve = variance_explained(R), pc = pred_consistency(R, 0.04);
    double L2 = parameter_term(R), sumL = R->L3[0] + R->L3[1] + R->L3[2];
    /* the true chain's strongest connection (R1 -> R2, 0.3 Hz) */
    double a21 = R->Ep[1];
    printf("\n  %d regions, %4d scans, TR %.2f: F %.4f, %d iterations, %.1f%% of the spectra, "
           "A(R2,R1) %.3f; |pred - model(Ep)| %.1e, |F - sum| %.1e, L2 %.6f (recomputed %.6f)",
           n, T, TR, R->F, R->iterations, ve, a21, pc, fabs(R->F - sumL), R->L3[1], L2);
    CU_ASSERT(R->converged);
    CU_ASSERT(R->iterations < 128);
    CU_ASSERT(isfinite(R->F));
    CU_ASSERT(ve > 50.0);   /* SPM warns below 10 %; 61-86 % here */
    CU_ASSERT(pc < 1e-12);
    CU_ASSERT(fabs(R->F - sumL) < 1e-9 * fabs(R->F));
    CU_ASSERT(fabs(R->L3[1] - L2) < 1e-6 * fmax(1.0, fabs(L2)));
    /* the frequency grid depends on T TR only below 128 s (not here) */
    CU_ASSERT_DOUBLE_EQUAL(R->Hz[0], 1.0 / 128.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(R->Hz[R->nw - 1], 1.0 / fmax(8.0, 2.0 * TR), 1e-15);
    CU_ASSERT(a21 > 0.0);   /* the true sign of the strongest connection */
    dcm_csd_result_free(R);
}

static void test_three_regions(void)
{
    const double TRs[] = {0.72, 1.0, 3.0};
    const int Ts[] = {200, 1200};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 2; b++)
            check_fit(3, Ts[b], TRs[a]);
}

static void test_six_regions(void)
{
    check_fit(6, 1200, 0.72);
    check_fit(6, 200, 1.0);
    check_fit(6, 200, 3.0);
}

/* Relabelling the regions relabels the answer: fit Y and Y with its
 * columns reversed, compare F and every A, transit and c entry. */
static void test_permutation(void)
{
    const int n = 3, T = 300;
    const double TR = 1.0;
    double *Y = malloc(sizeof(double) * n * T), *Yp = malloc(sizeof(double) * n * T);
    double a[9];
    for (int k = 0; k < 9; k++)
        a[k] = 1.0;
    dcm_csd_result *R = fit_sim(n, T, TR, 77, Y), *Rp = NULL;
    CU_ASSERT_FATAL(R != NULL);
    int perm[3] = {2, 0, 1};   /* new region i is old region perm[i] */
    for (int i = 0; i < n; i++)
        memcpy(Yp + (size_t)i * T, Y + (size_t)perm[i] * T, sizeof(double) * T);
    dcm_error err = {0, ""};
    dcm_csd_options opt = DCM_CSD_OPTIONS_DEFAULT;
    CU_ASSERT_EQUAL_FATAL(dcm_csd_estimate(Yp, T, n, TR, a, &opt, NULL, NULL, &Rp, &err), 0);
    model_csd_layout L;
    model_csd_layout_init(&L, n);
    double dA = 0.0, dh = 0.0, dcsd = 0.0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            dA = fmax(dA, fabs(Rp->Ep[L.off_A + i + j * n] - R->Ep[L.off_A + perm[i] + perm[j] * n]));
            dh = fmax(dh, fabs(Rp->Eh[i + j * n] - R->Eh[perm[i] + perm[j] * n]));
            for (int w = 0; w < R->nw; w++)
                dcsd = fmax(dcsd, cabs(Rp->csd_pred[w + R->nw * (i + n * j)] -
                                       R->csd_pred[w + R->nw * (perm[i] + n * perm[j])]));
        }
        dA = fmax(dA, fabs(Rp->Ep[L.off_transit + i] - R->Ep[L.off_transit + perm[i]]));
        dA = fmax(dA, fabs(Rp->Ep[L.off_c + i] - R->Ep[L.off_c + perm[i]]));
    }
    printf("\n  regions relabelled: |dF| %.1e, iterations %d / %d, max |dEp| %.1e, |dEh| %.1e, "
           "|dCSD| %.1e", fabs(R->F - Rp->F), R->iterations, Rp->iterations, dA, dh, dcsd);
    CU_ASSERT_EQUAL(R->iterations, Rp->iterations);
    CU_ASSERT(fabs(R->F - Rp->F) < 1e-6);
    CU_ASSERT(dA < 1e-6);
    CU_ASSERT(dh < 1e-6);
    dcm_csd_result_free(R);
    dcm_csd_result_free(Rp);
    free(Y);
    free(Yp);
}

/* More regions than maxnodes: the prior (and so the posterior) covariance
 * of A has rank at most maxnodes^2; at or below maxnodes no constraint. */
static void test_maxnodes(void)
{
    const int n = 5, T = 256, nn = n * n;
    double A[25], a[25], *Y = malloc(sizeof(double) * n * T);
    bench_csd_sim_network(n, A);
    for (int k = 0; k < nn; k++)
        a[k] = 1.0;
    CU_ASSERT_EQUAL_FATAL(bench_csd_sim(n, T, 2.0, A, NULL, 5, Y), 0);
    dcm_error err = {0, ""};
    dcm_csd_options opt = DCM_CSD_OPTIONS_DEFAULT;
    opt.maxnodes = 3;
    opt.maxit = 16;
    dcm_csd_result *R = NULL, *U = NULL;
    CU_ASSERT_EQUAL_FATAL(dcm_csd_estimate(Y, T, n, 2.0, a, &opt, NULL, NULL, &R, &err), 0);
    opt.maxnodes = 5;
    CU_ASSERT_EQUAL_FATAL(dcm_csd_estimate(Y, T, n, 2.0, a, &opt, NULL, NULL, &U, &err), 0);
    gsl_matrix *C = gsl_matrix_alloc(nn, nn);
    gsl_vector *ev = gsl_vector_alloc(nn);
    gsl_eigen_symm_workspace *ws = gsl_eigen_symm_alloc(nn);
    int rank[2] = {0, 0};
    const double *Cps[2] = {R->Cp, U->Cp};
    for (int m = 0; m < 2; m++) {
        for (int i = 0; i < nn; i++)
            for (int j = 0; j < nn; j++)
                gsl_matrix_set(C, i, j, Cps[m][(size_t)i * R->np + j]);
        gsl_eigen_symm(C, ev, ws);
        double emax = gsl_vector_max(ev);
        for (int i = 0; i < nn; i++)
            rank[m] += gsl_vector_get(ev, i) > 1e-9 * emax;
    }
    printf("\n  5 regions, maxnodes 3: %d modes, posterior A covariance rank %d, F %.2f; "
           "maxnodes 5: %d modes, rank %d, F %.2f", R->modes, rank[0], R->F, U->modes, rank[1], U->F);
    CU_ASSERT_EQUAL(R->modes, 3);
    CU_ASSERT(R->pC != NULL);
    CU_ASSERT(rank[0] <= 9);
    CU_ASSERT(isfinite(R->F));
    CU_ASSERT_EQUAL(U->modes, 0);
    CU_ASSERT(U->pC == NULL);
    CU_ASSERT_EQUAL(rank[1], nn);
    gsl_eigen_symm_free(ws);
    gsl_vector_free(ev);
    gsl_matrix_free(C);
    dcm_csd_result_free(R);
    dcm_csd_result_free(U);
    free(Y);
}

int main(void)
{
    static const test_case cases[] = {
        {"3 regions at TR 0.72/1/3 s, 200 and 1200 scans", test_three_regions},
        {"6 regions at TR 0.72/1/3 s, 200 and 1200 scans", test_six_regions},
        {"relabelling the regions relabels the fit", test_permutation},
        {"more regions than maxnodes: eigenmode constraint", test_maxnodes},
        {NULL, NULL}};
    return test_run("csd_sizes", cases);
}
