/* test_csd.c — the pieces of spectral DCM against SPM12's components
 * (../shared/reference/spectral/spm_spectral_4_components.json): the
 * frequencies, the scaling, the Bayesian MAR data feature, the priors, and
 * every intermediate of the predicted CSD at the prior and posterior means. */
#include "test_util.h"

#include <complex.h>

#include "io/io_tsv.h"
#include "models/model_csd.h"
#include "dcm/dcm_csd.h"

#define NMAX 8

/* complex [nw][n][n] (object {real, imag}) into the contract layout */
static int json_csd(json_t *obj, int nw, int n, double complex *out)
{
    json_t *re = json_object_get(obj, "real"), *im = json_object_get(obj, "imag");
    if (!re || !im || (int)json_array_size(re) != nw)
        return -1;
    for (int w = 0; w < nw; w++)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                json_t *r = json_array_get(json_array_get(json_array_get(re, (size_t)w), (size_t)i), (size_t)j);
                json_t *m = json_array_get(json_array_get(json_array_get(im, (size_t)w), (size_t)i), (size_t)j);
                if (!json_is_number(r) || !json_is_number(m))
                    return -1;
                out[w + (size_t)nw * (i + (size_t)n * j)] = json_number_value(r) + I * json_number_value(m);
            }
    return 0;
}

/* real [K][n][n] into lag-major column-major blocks x[k*n*n + i + j*n] */
static int json_cube(json_t *arr, int K, int n, double *out)
{
    if ((int)json_array_size(arr) != K)
        return -1;
    for (int k = 0; k < K; k++)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                json_t *x = json_array_get(json_array_get(json_array_get(arr, (size_t)k), (size_t)i), (size_t)j);
                if (!json_is_number(x))
                    return -1;
                out[(size_t)k * n * n + i + j * n] = json_number_value(x);
            }
    return 0;
}

static double rel_err_c(const double complex *a, const double complex *b, size_t count)
{
    double d = 0.0, m = 0.0;
    for (size_t k = 0; k < count; k++) {
        d = fmax(d, cabs(a[k] - b[k]));
        m = fmax(m, cabs(b[k]));
    }
    return m > 0 ? d / m : d;
}

static double rel_err(const double *a, const double *b, size_t count)
{
    double d = 0.0, m = 0.0;
    for (size_t k = 0; k < count; k++) {
        d = fmax(d, fabs(a[k] - b[k]));
        m = fmax(m, fabs(b[k]));
    }
    return m > 0 ? d / m : d;
}

static json_t *components(void)
{
    char path[4096];
    if (!test_shared_path("reference/spectral/spm_spectral_4_components.json", path, sizeof path))
        return NULL;
    return test_load_json(path);
}

/* the scaled data: detrended, then 1/(4 std) of all values */
static double *scaled_data(int *T, int *n, double *scale)
{
    char path[4096];
    if (!test_shared_path("datasets/spectral/spectral_4/timeseries.tsv", path, sizeof path))
        return NULL;
    io_table t;
    dcm_error err = {0, ""};
    if (io_tsv_read(path, &t, &err)) {
        printf("%s\n", err.msg);
        return NULL;
    }
    *T = t.rows;
    *n = t.cols;
    double *Y = t.data;
    t.data = NULL;
    io_table_free(&t);
    size_t N = (size_t)*T * *n;
    for (int j = 0; j < *n; j++) {
        double mu = 0.0;
        for (int r = 0; r < *T; r++)
            mu += Y[r + (size_t)*T * j];
        mu /= *T;
        for (int r = 0; r < *T; r++)
            Y[r + (size_t)*T * j] -= mu;
    }
    double s = 0.0, mu = 0.0;
    for (size_t k = 0; k < N; k++)
        mu += Y[k];
    mu /= (double)N;
    for (size_t k = 0; k < N; k++)
        s += (Y[k] - mu) * (Y[k] - mu);
    *scale = 1.0 / (4.0 * sqrt(s / (double)(N - 1)));
    for (size_t k = 0; k < N; k++)
        Y[k] *= *scale;
    return Y;
}

static void test_frequencies_and_scale(void)
{
    json_t *c = components();
    if (!c)
        return;
    double Hz[MODEL_CSD_NW], ref[MODEL_CSD_NW];
    model_csd_frequencies(512, 2.0, MODEL_CSD_NW, Hz);
    CU_ASSERT_EQUAL(test_json_vec(json_object_get(c, "Hz"), ref, MODEL_CSD_NW), MODEL_CSD_NW);
    double e = rel_err(Hz, ref, MODEL_CSD_NW);
    printf("\n  Hz: max relative error %.2e\n", e);
    CU_ASSERT(e < 1e-14);
    int T, n;
    double scale;
    double *Y = scaled_data(&T, &n, &scale);
    CU_ASSERT_PTR_NOT_NULL_FATAL(Y);
    double sref = json_number_value(json_object_get(c, "data_scale"));
    printf("  data_scale %.17g (SPM %.17g)\n", scale, sref);
    CU_ASSERT(fabs(scale - sref) < 1e-12 * sref);
    free(Y);
    json_decref(c);
}

static void test_mar_feature(void)
{
    json_t *c = components();
    if (!c)
        return;
    int T, n;
    double scale;
    double *Y = scaled_data(&T, &n, &scale);
    CU_ASSERT_PTR_NOT_NULL_FATAL(Y);
    json_t *emp = json_object_get(c, "empirical");
    model_csd_mar mar;
    char msg[256];
    CU_ASSERT_EQUAL_FATAL(model_csd_mar_fit(Y, T, n, MODEL_CSD_ORDER, &mar, msg, sizeof msg), 0);
    double lag[MODEL_CSD_ORDER * NMAX * NMAX], cov[NMAX * NMAX];
    CU_ASSERT_EQUAL_FATAL(json_cube(json_object_get(emp, "mar_lag"), MODEL_CSD_ORDER, n, lag), 0);
    CU_ASSERT_EQUAL_FATAL(test_json_mat_colmajor(json_object_get(emp, "mar_noise_cov"), cov, n, n), 0);
    double el = rel_err(mar.lag, lag, (size_t)MODEL_CSD_ORDER * n * n);
    double ec = rel_err(mar.noise_cov, cov, (size_t)n * n);
    int it_ref = (int)json_integer_value(json_object_get(emp, "mar_iterations"));
    printf("\n  MAR(8): lags %.2e, noise covariance %.2e (relative), iterations %d (SPM %d)\n", el, ec,
           mar.iterations, it_ref);
    CU_ASSERT(el < 1e-10);
    CU_ASSERT(ec < 1e-10);
    CU_ASSERT_EQUAL(mar.iterations, it_ref);
    double Hz[MODEL_CSD_NW];
    model_csd_frequencies(T, 2.0, MODEL_CSD_NW, Hz);
    size_t cnt = (size_t)MODEL_CSD_NW * n * n;
    double complex *csd = malloc(cnt * sizeof *csd), *ref = malloc(cnt * sizeof *ref);
    CU_ASSERT_EQUAL(model_csd_mar_spectra(&mar, Hz, MODEL_CSD_NW, 2.0, csd), 0);
    CU_ASSERT_EQUAL_FATAL(json_csd(json_object_get(emp, "csd"), MODEL_CSD_NW, n, ref), 0);
    double e = rel_err_c(csd, ref, cnt);
    printf("  empirical CSD: max relative error %.2e\n", e);
    CU_ASSERT(e < 1e-10);
    free(csd);
    free(ref);
    model_csd_mar_free(&mar);
    free(Y);
    json_decref(c);
}

static void check_point(json_t *pt, const char *label, int n, const double *Hz)
{
    const int nw = MODEL_CSD_NW, nx = 5 * n;
    model_csd_layout L;
    model_csd_layout_init(&L, n);
    double P[NMAX * NMAX + 3 * NMAX + 6];
    CU_ASSERT_EQUAL_FATAL(test_json_vec(json_object_get(pt, "P"), P, L.np), L.np);
    int p = (int)json_integer_value(json_object_get(pt, "ar_order"));
    model_csd_work *W = model_csd_work_alloc(n, nw, Hz, p, 0.04);
    CU_ASSERT_PTR_NOT_NULL_FATAL(W);
    size_t cnt = (size_t)nw * n * n;
    double complex *y = malloc(cnt * sizeof *y), *ref = malloc(cnt * sizeof *ref);
    double complex *Gu = malloc(cnt * sizeof *Gu), *Gn = malloc(cnt * sizeof *Gn);
    double complex *S = malloc(cnt * sizeof *S), *G = malloc(cnt * sizeof *G);
    double *ccf = malloc(sizeof(double) * 200 * n * n), *arl = malloc(sizeof(double) * p * n * n);
    double *arc = malloc(sizeof(double) * n * n), *dfdx = malloc(sizeof(double) * nx * nx);
    double *dfdu = malloc(sizeof(double) * nx * n), *dgdx = malloc(sizeof(double) * n * nx);
    double *buf = calloc((size_t)200 * n * n + (size_t)nx * nx, sizeof(double));
    model_csd_parts parts = {Gu, Gn, S, G, ccf, 0, arl, arc, dfdx, dfdu, dgdx, -1};
    CU_ASSERT_EQUAL_FATAL(model_csd_predict(W, P, y, &parts), 0);
    struct { const char *name; double complex *mine; double tol; } cs[] = {
        {"Gu", Gu, 1e-12}, {"Gn", Gn, 1e-12}, {"transfer", S, 1e-11}, {"csd_raw", G, 1e-11}, {"csd", y, 1e-11}};
    printf("\n  %s:", label);
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        CU_ASSERT_EQUAL_FATAL(json_csd(json_object_get(pt, cs[k].name), nw, n, ref), 0);
        double e = rel_err_c(cs[k].mine, ref, cnt);
        printf(" %s %.1e", cs[k].name, e);
        CU_ASSERT(e < cs[k].tol);
    }
    /* Jacobians */
    CU_ASSERT_EQUAL(test_json_mat_colmajor(json_object_get(pt, "dfdx"), buf, nx, nx), 0);
    double e = rel_err(dfdx, buf, (size_t)nx * nx);
    printf(" dfdx %.1e", e);
    CU_ASSERT(e < 1e-12);
    CU_ASSERT(test_json_mat_colmajor(json_object_get(pt, "dfdu"), buf, nx, n) == 0 &&
              rel_err(dfdu, buf, (size_t)nx * n) < 1e-12);
    CU_ASSERT(test_json_mat_colmajor(json_object_get(pt, "dgdx"), buf, n, nx) == 0 &&
              rel_err(dgdx, buf, (size_t)n * nx) < 1e-12);
    CU_ASSERT_EQUAL(parts.conditioned, (int)json_integer_value(json_object_get(pt, "n_eigenvalues_conditioned")));
    /* cross-correlations [2N+1][n][n] */
    json_t *jc = json_object_get(pt, "ccf_raw");
    int L2 = (int)json_array_size(jc);
    CU_ASSERT_EQUAL_FATAL(parts.nccf, L2);
    CU_ASSERT_EQUAL_FATAL(json_cube(jc, L2, n, buf), 0);
    double dmax = 0.0, mmax = 0.0;
    for (int t = 0; t < L2; t++)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double a = ccf[t + (size_t)L2 * (i + (size_t)n * j)], b = buf[(size_t)t * n * n + i + j * n];
                dmax = fmax(dmax, fabs(a - b));
                mmax = fmax(mmax, fabs(b));
            }
    printf(" ccf %.1e", dmax / mmax);
    CU_ASSERT(dmax / mmax < 1e-11);
    CU_ASSERT_EQUAL_FATAL(json_cube(json_object_get(pt, "ar_lag"), p, n, buf), 0);
    e = rel_err(arl, buf, (size_t)p * n * n);
    printf(" ar_lag %.1e", e);
    CU_ASSERT(e < 1e-11);
    CU_ASSERT_EQUAL(test_json_mat_colmajor(json_object_get(pt, "ar_noise_cov"), buf, n, n), 0);
    e = rel_err(arc, buf, (size_t)n * n);
    printf(" ar_noise %.1e\n", e);
    CU_ASSERT(e < 1e-11);
    free(y); free(ref); free(Gu); free(Gn); free(S); free(G); free(ccf); free(arl); free(arc);
    free(dfdx); free(dfdu); free(dgdx); free(buf);
    model_csd_work_free(W);
}

static void test_predicted_csd(void)
{
    json_t *c = components();
    if (!c)
        return;
    int n = (int)json_array_size(json_object_get(c, "regions"));
    double Hz[MODEL_CSD_NW];
    test_json_vec(json_object_get(c, "Hz"), Hz, MODEL_CSD_NW);
    check_point(json_object_get(c, "prior_mean"), "at the prior mean", n, Hz);
    check_point(json_object_get(c, "posterior_mean"), "at the posterior mean", n, Hz);
    json_decref(c);
}

static void test_priors(void)
{
    char path[4096];
    if (!test_shared_path("reference/spectral/spm_spectral_4_reduced.json", path, sizeof path))
        return;
    json_t *r = test_load_json(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    json_t *m = json_object_get(r, "model");
    int n = (int)json_array_size(json_object_get(m, "a"));
    double a[NMAX * NMAX];
    CU_ASSERT_EQUAL_FATAL(test_json_mat_colmajor(json_object_get(m, "a"), a, n, n), 0);
    model_csd_layout L;
    model_csd_layout_init(&L, n);
    double pE[NMAX * NMAX + 3 * NMAX + 6], pV[NMAX * NMAX + 3 * NMAX + 6];
    double rE[NMAX * NMAX + 3 * NMAX + 6], rV[NMAX * NMAX + 3 * NMAX + 6];
    model_csd_priors(n, a, pE, pV);
    json_t *v = json_object_get(r, "vector");
    CU_ASSERT_EQUAL(test_json_vec(json_object_get(v, "prior_mean"), rE, L.np), L.np);
    CU_ASSERT_EQUAL(test_json_vec(json_object_get(v, "prior_var"), rV, L.np), L.np);
    int same = 1;
    for (int k = 0; k < L.np; k++)
        same &= pE[k] == rE[k] && pV[k] == rV[k];
    printf("\n  priors of the reduced model (np = %d): %s\n", L.np, same ? "identical" : "DIFFER");
    CU_ASSERT(same);
    json_decref(r);
}

/* The whole inversion, full and reduced model, against SPM's estimates. */
static void check_inversion(const char *file, double tolF, double tolEp, double tolEh)
{
    char path[4096], rel[256];
    snprintf(rel, sizeof rel, "reference/spectral/%s", file);
    if (!test_shared_path(rel, path, sizeof path))
        return;
    json_t *r = test_load_json(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    int T, n;
    double scale;
    double *Y0 = scaled_data(&T, &n, &scale);   /* for the sizes; the fit scales raw data */
    CU_ASSERT_PTR_NOT_NULL_FATAL(Y0);
    free(Y0);
    char tsv[4096];
    test_shared_path("datasets/spectral/spectral_4/timeseries.tsv", tsv, sizeof tsv);
    io_table t;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(io_tsv_read(tsv, &t, &err), 0);
    double a[NMAX * NMAX];
    CU_ASSERT_EQUAL_FATAL(test_json_mat_colmajor(json_object_get(json_object_get(r, "model"), "a"), a, n, n), 0);
    dcm_csd_options opt = DCM_CSD_OPTIONS_DEFAULT;
    dcm_csd_result *R = NULL;
    int rc = dcm_csd_estimate(t.data, t.rows, t.cols, 2.0, a, &opt, NULL, NULL, &R, &err);
    if (rc)
        printf("\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    json_t *v = json_object_get(r, "vector");
    double Ep[NMAX * NMAX + 3 * NMAX + 6], Vp[NMAX * NMAX + 3 * NMAX + 6], Eh[NMAX * NMAX];
    CU_ASSERT_EQUAL(test_json_vec(json_object_get(v, "posterior_mean"), Ep, R->np), R->np);
    CU_ASSERT_EQUAL(test_json_vec(json_object_get(v, "posterior_var"), Vp, R->np), R->np);
    CU_ASSERT_EQUAL(test_json_vec(json_object_get(json_object_get(r, "hyper"), "Eh"), Eh, n * n), n * n);
    double Fref = json_number_value(json_object_get(r, "free_energy"));
    int itref = (int)json_integer_value(json_object_get(json_object_get(r, "optimiser"), "iterations"));
    double Pp[NMAX * NMAX + 3 * NMAX + 6];
    CU_ASSERT_EQUAL(test_json_vec(json_object_get(v, "posterior_probability"), Pp, R->np), R->np);
    double dPp = 0.0;
    for (int k = 0; k < R->np; k++)
        if (!isnan(Pp[k]))
            dPp = fmax(dPp, fabs(R->Pp[k] - Pp[k]));
        else
            CU_ASSERT(isnan(R->Pp[k]));
    printf("\n  posterior probabilities: max |dPp| %.1e", dPp);
    CU_ASSERT(dPp < tolEp * 100);
    double dEp = 0.0, dsd = 0.0, dEh = 0.0;
    for (int k = 0; k < R->np; k++) {
        dEp = fmax(dEp, fabs(R->Ep[k] - Ep[k]));
        if (Vp[k] > 0)
            dsd = fmax(dsd, fabs(sqrt(R->Cp[(size_t)k * R->np + k]) - sqrt(Vp[k])) / sqrt(Vp[k]));
    }
    for (int k = 0; k < n * n; k++)
        dEh = fmax(dEh, fabs(R->Eh[k] - Eh[k]));
    printf("\n  %s: F %.6f (SPM %.6f, |dF| %.1e), iterations %d (SPM %d), max |dEp| %.1e, "
           "sd %.1e relative, max |dEh| %.1e, %.2f s\n", file, R->F, Fref, fabs(R->F - Fref),
           R->iterations, itref, dEp, dsd, dEh, R->seconds);
    CU_ASSERT_EQUAL(R->iterations, itref);
    CU_ASSERT(fabs(R->F - Fref) < tolF);
    CU_ASSERT(dEp < tolEp);
    CU_ASSERT(dsd < tolEp);
    CU_ASSERT(dEh < tolEh);
    CU_ASSERT(fabs(R->scale - scale) < 1e-15);
    dcm_csd_result_free(R);
    io_table_free(&t);
    json_decref(r);
}

static void test_inversion_full(void)
{
    check_inversion("spm_spectral_4_full.json", 1e-4, 1e-6, 1e-6);
}

static void test_inversion_reduced(void)
{
    /* the same iterations and F trajectory (to SPM's 4 printed digits), but F
     * ends 0.028 lower than SPM's: the noise components whose clipped M-step
     * passes swing h by +-1 end up to 7.5e-5 from SPM's h (the settled ones
     * agree to 3e-8), and F is taken one clipped pass from the optimum, where
     * dF/dh is in the hundreds: a first-order sum over them predicts 0.025 of
     * the 0.028 (vl/vl_nlsi.c, the M-step's comment) */
    check_inversion("spm_spectral_4_reduced.json", 0.05, 5e-5, 2e-4);
}

int main(void)
{
    static const test_case cases[] = {
        {"CSD frequencies and data scale equal SPM's", test_frequencies_and_scale},
        {"CSD priors equal SPM's (reduced model)", test_priors},
        {"MAR(8) data feature and empirical CSD equal SPM's", test_mar_feature},
        {"predicted CSD and its pieces equal SPM's", test_predicted_csd},
        {"spectral DCM inversion equals SPM's (full model)", test_inversion_full},
        {"spectral DCM inversion equals SPM's (reduced model)", test_inversion_reduced},
        {NULL, NULL}};
    return test_run("csd", cases);
}
