/* dcm_csd.c — spectral DCM: data feature, priors and the inversion through
 * the engine (see dcm_csd.h). */
#include "dcm/dcm_csd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gsl/gsl_eigen.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>

#include "dcm/dcm_api.h"
#include "vl/vl_nlsi.h"

void dcm_csd_result_free(dcm_csd_result *R)
{
    if (!R)
        return;
    free(R->pE);
    free(R->pV);
    free(R->Ep);
    free(R->Cp);
    free(R->Pp);
    free(R->Eh);
    free(R->F_trace);
    free(R->Hz);
    free(R->csd_obs);
    free(R->csd_pred);
    free(R->pC);
    free(R);
}

/* (dcm_csd.h) one implementation for task and spectral DCM */
double *dcm_mode_constrained_prior(const double *y, int v, int n, const double *X0, int nx0,
                                   const double *pV, int np, int maxnodes, int *modes_kept)
{
    double *C = calloc((size_t)np * np, sizeof(double));
    double *r = malloc(sizeof(double) * (size_t)v * n);
    gsl_matrix *X = gsl_matrix_alloc((size_t)v, (size_t)nx0);
    gsl_vector *tau = gsl_vector_alloc((size_t)(nx0 < v ? nx0 : v));
    gsl_vector *b = gsl_vector_alloc((size_t)nx0), *res = gsl_vector_alloc((size_t)v);
    gsl_matrix *G = gsl_matrix_alloc((size_t)n, (size_t)n), *E = gsl_matrix_alloc((size_t)n, (size_t)n);
    gsl_vector *ev = gsl_vector_alloc((size_t)n);
    gsl_eigen_symmv_workspace *ew = gsl_eigen_symmv_alloc((size_t)n);
    double *K = malloc(sizeof(double) * (size_t)n * n);
    int ok = C && r && X && tau && b && res && G && E && ev && ew && K;
    if (ok) {
        for (int i = 0; i < np; i++)
            C[(size_t)i * np + i] = pV[i];
        /* residuals of each region after least squares on the confounds */
        for (int t = 0; t < v; t++)
            for (int j = 0; j < nx0; j++)
                gsl_matrix_set(X, (size_t)t, (size_t)j, X0[t + j * v]);
        gsl_linalg_QR_decomp(X, tau);
        for (int i = 0; i < n; i++) {
            gsl_vector_const_view yi = gsl_vector_const_view_array(y + (size_t)i * v, (size_t)v);
            gsl_linalg_QR_lssolve(X, tau, &yi.vector, b, res);
            memcpy(r + (size_t)i * v, res->data, sizeof(double) * v);
        }
        /* modes: eigenvectors of y'y, largest first (spm_svd(y')) */
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double s = 0.0;
                for (int t = 0; t < v; t++)
                    s += r[(size_t)i * v + t] * r[(size_t)j * v + t];
                gsl_matrix_set(G, (size_t)i, (size_t)j, s);
            }
        gsl_eigen_symmv(G, ev, E, ew);
        gsl_eigen_symmv_sort(ev, E, GSL_EIGEN_SORT_VAL_DESC);
        double sum = 0.0;
        for (int i = 0; i < n; i++)
            sum += gsl_vector_get(ev, (size_t)i);
        int keep = 0;
        for (int i = 0; i < n && keep < maxnodes; i++)
            if (sum > 0 && gsl_vector_get(ev, (size_t)i) * n / sum > 1e-6)
                keep++;
        if (modes_kept)
            *modes_kept = keep;
        /* K = V V' */
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double s = 0.0;
                for (int c = 0; c < keep; c++)
                    s += gsl_matrix_get(E, (size_t)i, (size_t)c) * gsl_matrix_get(E, (size_t)j, (size_t)c);
                K[i * n + j] = s;
            }
        /* A block (column-major vec(A)): kron(K, K) diag(pV_A) kron(K, K)' */
        const int nn = n * n;
        for (int a = 0; a < nn; a++)
            for (int c = 0; c < nn; c++) {
                double s = 0.0;
                for (int e = 0; e < nn; e++) {
                    if (pV[e] == 0.0)
                        continue;
                    /* kron(K,K)[x][e] for x = i + j n, e = k + l n is K[j][l] K[i][k] */
                    double ka = K[(a / n) * n + e / n] * K[(a % n) * n + e % n];
                    double kc = K[(c / n) * n + e / n] * K[(c % n) * n + e % n];
                    s += ka * pV[e] * kc;
                }
                C[(size_t)a * np + c] = s;
            }
    }
    free(r);
    free(K);
    if (X) gsl_matrix_free(X);
    if (tau) gsl_vector_free(tau);
    if (b) gsl_vector_free(b);
    if (res) gsl_vector_free(res);
    if (G) gsl_matrix_free(G);
    if (E) gsl_matrix_free(E);
    if (ev) gsl_vector_free(ev);
    if (ew) gsl_eigen_symmv_free(ew);
    if (!ok) {
        free(C);
        return NULL;
    }
    return C;
}

/* the engine's prediction: the CSD as interleaved (re, im) doubles */
static int predict_csd(void *user, const double *theta, double *y)
{
    return model_csd_predict(user, theta, (double complex *)y, NULL) ? -1 : 0;
}

typedef struct {
    dcm_progress_fn fn;
    void *ctx;
} progress_relay;

static int relay_progress(void *ctx, int iteration, double F, double dF, int accepted)
{
    progress_relay *r = ctx;
    return r->fn ? r->fn(r->ctx, iteration, F, dF, accepted) : 0;
}

static double std_normal_cdf(double z)
{
    return 0.5 * erfc(-z / sqrt(2.0));
}

int dcm_csd_estimate(const double *Y, int T, int n, double TR, const double *a,
                     const dcm_csd_options *opt, dcm_progress_fn progress, void *progress_ctx,
                     dcm_csd_result **out, dcm_error *err)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dcm_library_init();
    dcm_csd_options o = DCM_CSD_OPTIONS_DEFAULT;
    if (opt)
        o = *opt;
    if (!out || !Y || !a)
        return dcm_error_set(err, DCM_ERR_USAGE, "dcm_csd_estimate: missing argument");
    *out = NULL;
    if (n < 1 || T < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "spectral DCM needs at least one region and one scan");
    char buf[256];
    if (dcm_check_tr(TR, buf, sizeof buf))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s", buf);
    if (o.order < 2 || o.maxit < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "spectral DCM: \"order\" must be at least 2 and "
                             "\"maxit\" at least 1 (got %d and %d)", o.order, o.maxit);
    const int nw = MODEL_CSD_NW;
    const size_t nT = (size_t)T * n, ncsd = (size_t)nw * n * n;
    int rc = DCM_ERR_SYSTEM;
    dcm_csd_result *R = calloc(1, sizeof *R);
    double *Ys = malloc(sizeof(double) * nT);
    double *Q = NULL, *hE = NULL, *hC = NULL, *ones = NULL;
    model_csd_work *W = NULL;
    model_csd_mar mar = {0};
    vl_result *V = NULL;
    if (!R || !Ys)
        goto nomem;
    R->n = n;
    R->nw = nw;
    model_csd_layout_init(&R->L, n);
    const int np = R->np = R->L.np;
    /* detrend (remove each region's mean) and scale to 1/(4 std) */
    memcpy(Ys, Y, sizeof(double) * nT);
    for (int j = 0; j < n; j++) {
        double mu = 0.0;
        for (int t = 0; t < T; t++)
            mu += Ys[t + (size_t)T * j];
        mu /= T;
        for (int t = 0; t < T; t++)
            Ys[t + (size_t)T * j] -= mu;
    }
    double mu = 0.0, ss = 0.0;
    for (size_t k = 0; k < nT; k++)
        mu += Ys[k];
    mu /= (double)nT;
    for (size_t k = 0; k < nT; k++)
        ss += (Ys[k] - mu) * (Ys[k] - mu);
    double sd = nT > 1 ? sqrt(ss / (double)(nT - 1)) : 0.0;
    if (!(sd > 0.0) || !isfinite(sd)) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "the time series are constant (or not finite): "
                           "there is no spectrum to fit");
        goto fail;
    }
    R->scale = 1.0 / (4.0 * sd);
    for (size_t k = 0; k < nT; k++)
        Ys[k] *= R->scale;
    /* the data feature */
    R->Hz = malloc(sizeof(double) * nw);
    R->csd_obs = malloc(sizeof(double complex) * ncsd);
    R->csd_pred = malloc(sizeof(double complex) * ncsd);
    if (!R->Hz || !R->csd_obs || !R->csd_pred)
        goto nomem;
    model_csd_frequencies(T, TR, nw, R->Hz);
    if (model_csd_mar_fit(Ys, T, n, o.order, &mar, buf, sizeof buf)) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "spectral DCM: %s (%d scans, %d regions, order %d)",
                           buf, T, n, o.order);
        goto fail;
    }
    R->mar_iterations = mar.iterations;
    if (model_csd_mar_spectra(&mar, R->Hz, nw, TR, R->csd_obs)) {
        rc = dcm_error_set(err, DCM_ERR_NUMERIC, "spectral DCM: the MAR model of the data has no "
                           "spectrum (its lag polynomial is singular at some frequency)");
        goto fail;
    }
    /* priors, noise components (one per channel), hyperpriors */
    R->nh = n * n;
    R->pE = malloc(sizeof(double) * np);
    R->pV = malloc(sizeof(double) * np);
    Q = calloc((size_t)R->nh * ncsd, sizeof(double));
    hE = malloc(sizeof(double) * R->nh);
    hC = malloc(sizeof(double) * R->nh);
    W = model_csd_work_alloc(n, nw, R->Hz, o.order - 1, o.TE);
    if (!R->pE || !R->pV || !Q || !hE || !hC || !W)
        goto nomem;
    model_csd_priors(n, a, R->pE, R->pV);
    /* large networks: SPM confines the prior on A to the data's principal
       modes (after the detrending above: the constant is the confound) */
    if (o.maxnodes > 0 && n > o.maxnodes) {
        if (!(ones = malloc(sizeof(double) * (size_t)T)))
            goto nomem;
        for (int t = 0; t < T; t++)
            ones[t] = 1.0;
        R->pC = dcm_mode_constrained_prior(Ys, T, n, ones, 1, R->pV, np, o.maxnodes, &R->modes);
        if (!R->pC)
            goto nomem;
    }
    for (int k = 0; k < R->nh; k++) {
        hE[k] = 8.0;
        hC[k] = 1.0 / 128.0;
        for (int w = 0; w < nw; w++)
            Q[(size_t)k * ncsd + (size_t)k * nw + w] = 1.0;
    }
    progress_relay relay = {progress, progress_ctx};
    vl_problem VP = {
        .model = {.np = np, .pE = R->pE, .pV = R->pC ? NULL : R->pV, .pC = R->pC,
                  .ny = (int)ncsd, .complex_data = 1,
                  .predict = predict_csd, .user = W, .nh = R->nh, .Q = Q, .hE = hE, .hC = hC},
        .y = (const double *)R->csd_obs,
        .maxit = o.maxit,
        .progress = relay_progress,
        .progress_ctx = &relay};
    char ebuf[512] = "";
    int vrc = vl_nlsi(&VP, &V, ebuf, sizeof ebuf);
    if (vrc) {
        /* the advice only the spectral model can give (the engine's message
         * speaks of predictions) */
        char detail[700];
        snprintf(detail, sizeof detail, "%s%s", ebuf,
                 vrc == VL_ERR_MODEL ? "; check the connection switches and that each column "
                                       "of the time series is one region" : "");
        rc = dcm_error_from_vl(vrc, "spectral DCM", detail, err);
        goto fail;
    }
    R->Ep = V->Ep;
    R->Cp = V->Cp;
    R->Eh = V->Eh;
    R->F_trace = V->F_trace;
    V->Ep = V->Cp = V->Eh = V->F_trace = NULL;
    R->ntrace = V->ntrace;
    R->F = V->F;
    memcpy(R->L3, V->L, sizeof R->L3);
    R->iterations = V->iterations;
    R->converged = V->converged;
    R->stopped = V->stopped;
    memcpy(R->csd_pred, V->y_pred, sizeof(double complex) * ncsd);
    R->Pp = malloc(sizeof(double) * np);
    if (!R->Pp)
        goto nomem;
    /* spm_dcm_fmri_csd's Pp: the probability that a parameter differs from
     * its prior mean, Phi(|Ep - pE| / sd) — not the task DCM's "exceeds its
     * prior mean in size" (dcm_posterior_probability) */
    for (int k = 0; k < np; k++) {
        double v = R->Cp[(size_t)k * np + k];
        R->Pp[k] = v > 0.0 ? std_normal_cdf(fabs(R->Ep[k] - R->pE[k]) / sqrt(v)) : NAN;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    R->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    *out = R;
    R = NULL;
    rc = DCM_OK;
    goto fail;
nomem:
    rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory for spectral DCM (%d regions)", n);
fail:
    vl_result_free(V);
    model_csd_mar_free(&mar);
    model_csd_work_free(W);
    free(Ys);
    free(ones);
    free(Q);
    free(hE);
    free(hC);
    dcm_csd_result_free(R);
    return rc;
}

/* Regress the confounds X0 (v x nx0, with a constant added) out of each
 * region's series Y (v x n, in place): Gram–Schmidt on [1, X0], columns
 * that add nothing new (collinear) dropped. Non-zero without memory. */
static int regress_out(double *Y, int v, int n, const double *X0, int nx0)
{
    double *Q = malloc(sizeof(double) * (size_t)v * (size_t)(nx0 + 1));
    if (!Q)
        return -1;
    int k = 0;
    for (int c = 0; c <= nx0; c++) {
        double *q = Q + (size_t)k * v, norm0 = 0.0, norm = 0.0;
        for (int t = 0; t < v; t++) {
            q[t] = c == 0 ? 1.0 : X0[t + (size_t)(c - 1) * v];
            norm0 += q[t] * q[t];
        }
        for (int r = 0; r < k; r++) {
            const double *p = Q + (size_t)r * v;
            double d = 0.0;
            for (int t = 0; t < v; t++)
                d += p[t] * q[t];
            for (int t = 0; t < v; t++)
                q[t] -= d * p[t];
        }
        for (int t = 0; t < v; t++)
            norm += q[t] * q[t];
        if (!(norm > 1e-20 * norm0) || !(norm > 0.0))
            continue;   /* collinear with the columns before it */
        norm = sqrt(norm);
        for (int t = 0; t < v; t++)
            q[t] /= norm;
        k++;
    }
    for (int j = 0; j < n; j++) {
        double *y = Y + (size_t)j * v;
        for (int r = 0; r < k; r++) {
            const double *p = Q + (size_t)r * v;
            double d = 0.0;
            for (int t = 0; t < v; t++)
                d += p[t] * y[t];
            for (int t = 0; t < v; t++)
                y[t] -= d * p[t];
        }
    }
    free(Q);
    return 0;
}

/* SPM's spm_dcm_fmri_check on the spectra: variance explained by the
 * predicted CSD (|.|^2 summed over frequencies and channels), the largest
 * connection, the effective number of parameters, the accepted steps. */
static int csd_fit_checks(const dcm_problem *P, dcm_result *R, const double *pC, dcm_warnings *warn)
{
    const int n = P->n, np = R->np;
    const size_t ncsd = (size_t)R->nw * n * n;
    R->diag.variance_explained = dcm_variance_explained(R->csd_obs, R->csd_pred, NULL, 2 * ncsd);
    double amax = -1.0;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++)
            if (i != j)
                amax = fmax(amax, fabs(R->Ep[i + j * n]));   /* A is the first block */
    R->diag.max_abs_connection = amax >= 0.0 ? amax : NAN;
    R->diag.effective_parameters =
        P->v > 1 ? dcm_kl_normal(np, R->Ep, R->Cp, R->pE, R->pV, pC) / log((double)P->v) : NAN;
    R->diag.accepted_steps = dcm_accepted_steps(R->F_trace, R->ntrace);
    if (R->stopped &&
        dcm_warnings_add(warn, "the fit was stopped by the caller after %d iterations, before "
                               "it converged", R->iterations))
        return -1;
    return dcm_diagnostics_warn(&R->diag, warn);
}

int dcm_csd_estimate_problem(const dcm_problem *P, dcm_progress_fn progress, void *progress_ctx,
                             dcm_result **out, dcm_error *err)
{
    if (!out || !P)
        return dcm_error_set(err, DCM_ERR_USAGE, "dcm_estimate: %s is NULL", P ? "out" : "the problem");
    *out = NULL;
    int rc = dcm_problem_validate(P, err);
    if (rc)
        return rc;
    if (P->analysis != DCM_ANALYSIS_CSD)
        return dcm_error_set(err, DCM_ERR_USAGE, "dcm_csd_estimate_problem: not a spectral DCM");
    dcm_warnings warn = {0, NULL};
    if (dcm_warnings_copy(&warn, &P->warnings)) {
        dcm_warnings_free(&warn);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    if ((rc = dcm_problem_check_design(P, &warn, err))) {   /* a constant region */
        dcm_warnings_free(&warn);
        return rc;
    }
    const int n = P->n, v = P->v;
    const size_t nT = (size_t)v * n;
    dcm_csd_result *C = NULL;
    dcm_result *R = calloc(1, sizeof *R);
    double *Y = malloc(sizeof(double) * nT);
    if (!R || !Y)
        goto nomem;
    memcpy(Y, P->Y, sizeof(double) * nT);
    if (P->nx0 > 0 && regress_out(Y, v, n, P->X0, P->nx0))
        goto nomem;
    dcm_csd_options o = {P->csd_order, P->maxit, P->M->TE, P->maxnodes};
    if ((rc = dcm_csd_estimate(Y, v, n, P->M->TR, P->M->a, &o, progress, progress_ctx, &C, err))) {
        if (P->source && err && strncmp(err->msg, P->source, strlen(P->source))) {
            char msg[sizeof err->msg];
            memcpy(msg, err->msg, sizeof msg);
            dcm_error_set(err, rc, "%s: %.900s", P->source, msg);
        }
        goto fail;
    }
    /* move the spectral fit into the library's result */
    R->analysis = DCM_ANALYSIS_CSD;
    R->np = C->np;
    R->n = n;
    R->v = v;
    R->pE = C->pE; C->pE = NULL;
    R->pV = C->pV; C->pV = NULL;
    R->Ep = C->Ep; C->Ep = NULL;
    R->Cp = C->Cp; C->Cp = NULL;
    R->Pp = C->Pp; C->Pp = NULL;
    R->Eh = C->Eh; C->Eh = NULL;
    R->F_trace = C->F_trace; C->F_trace = NULL;
    R->Hz = C->Hz; C->Hz = NULL;
    R->csd_obs = (double *)C->csd_obs; C->csd_obs = NULL;
    R->csd_pred = (double *)C->csd_pred; C->csd_pred = NULL;
    R->nh = C->nh;
    R->nw = C->nw;
    R->ntrace = C->ntrace;
    R->F = C->F;
    memcpy(R->L, C->L3, sizeof R->L);
    R->iterations = C->iterations;
    R->converged = C->converged;
    R->stopped = C->stopped;
    R->scale = C->scale;
    R->mar_iterations = C->mar_iterations;
    R->seconds = C->seconds;
    /* the series the spectra were taken of: confounds out, detrended, scaled */
    if (!(R->y_obs = malloc(sizeof(double) * nT)))
        goto nomem;
    for (int j = 0; j < n; j++) {
        double mu = 0.0;
        for (int t = 0; t < v; t++)
            mu += Y[t + (size_t)j * v];
        mu /= v;
        for (int t = 0; t < v; t++)
            R->y_obs[t + (size_t)j * v] = (Y[t + (size_t)j * v] - mu) * R->scale;
    }
    if (C->modes &&
        dcm_warnings_add(&warn, "%d regions exceed \"maxnodes\" (%d): as SPM does, the prior "
                         "covariance of A was confined to the data's %d principal modes "
                         "(eigenmode constraint); reduce and average use the unconstrained "
                         "prior variances", n, P->maxnodes, C->modes))
        goto nomem;
    if (csd_fit_checks(P, R, C->pC, &warn))
        goto nomem;
    R->warnings = warn;
    warn.count = 0;
    warn.items = NULL;
    *out = R;
    R = NULL;
    rc = DCM_OK;
    goto fail;
nomem:
    rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory for spectral DCM (%d regions)", n);
fail:
    dcm_warnings_free(&warn);
    dcm_csd_result_free(C);
    dcm_result_free(R);
    free(Y);
    return rc;
}
