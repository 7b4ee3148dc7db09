/* core_result.c — release a dcm_result; warnings; the fit diagnostics of
 * SPM's spm_dcm_fmri_check (see dcm_api.h). */
#include "dcm/core/dcm_core.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_eigen.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>

void dcm_result_free(dcm_result *R)
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
    free(R->y_obs);
    free(R->y_pred);
    free(R->y_conf);
    free(R->Hz);
    free(R->csd_obs);
    free(R->csd_pred);
    dcm_rdcm_result_free(R->rdcm);
    dcm_warnings_free(&R->warnings);
    free(R);
}

void dcm_rdcm_result_free(dcm_rdcm_result *R)
{
    if (!R)
        return;
    free(R->Ep_A);
    free(R->Ep_C);
    free(R->Ep_baseline);
    free(R->Var_A);
    free(R->Var_C);
    free(R->Var_baseline);
    free(R->F_regions);
    free(R->F_terms);
    free(R->aN);
    free(R->bN);
    free(R->iterations);
    free(R->bins);
    free(R->Ip_A);
    free(R->Ip_C);
    free(R->Ip_baseline);
    free(R->p0_grid);
    free(R->F_per_p0);
    for (int k = 0; R->Sigma && k < R->n; k++) {
        free(R->Sigma[k]);
        free(R->Sigma_cols[k]);
    }
    free(R->Sigma);
    free(R->Sigma_cols);
    free(R->Sigma_D);
    free(R);
}

double dcm_variance_explained(const double *obs, const double *pred, const double *conf,
                              size_t count)
{
    double pss = 0.0, rss = 0.0;
    for (size_t k = 0; k < count; k++) {
        double r = obs[k] - pred[k] - (conf ? conf[k] : 0.0);
        pss += pred[k] * pred[k];
        rss += r * r;
    }
    if (!(pss + rss > 0.0))
        return NAN;
    return 100.0 * pss / (pss + rss);
}

/* The KL divergence is computed in the eigenbasis of the prior covariance,
 * keeping the directions with non-negligible prior variance (parameters
 * switched off have none; SPM uses the pseudo-inverse likewise). */
/* The same KL for a diagonal prior: its eigenbasis is the parameters
 * themselves, so no eigendecomposition of the np x np prior is needed (on
 * a 12-region model, np = 637, that alone took ~90 ms). log det of Cp's
 * block on the kept parameters from its Cholesky factor, NaN when it is
 * not positive definite (as the general path's eigenvalue test). A plain
 * loop: GSL's Cholesky would call GSL's error handler, which is process
 * state this layer does not own. */
static double kl_normal_diagonal(int np, const double *Ep, const double *Cp, const double *pE,
                                 const double *pV)
{
    const size_t N = (size_t)np;
    double lmax = 0.0;
    for (size_t i = 0; i < N; i++)
        lmax = fmax(lmax, pV[i]);
    if (!(lmax > 0.0))
        return NAN;
    size_t *keep = malloc(sizeof(size_t) * N);
    size_t k = 0;
    for (size_t i = 0; keep && i < N; i++)
        if (pV[i] > lmax * 1e-12)
            keep[k++] = i;
    double *L = keep ? malloc(sizeof(double) * (k > 0 ? k * k : 1)) : NULL;
    if (!L) {
        free(keep);
        return NAN;
    }
    double sum = -(double)k;
    for (size_t a = 0; a < k; a++) {
        const size_t i = keep[a];
        const double d = Ep[i] - pE[i];
        sum += (Cp[i * N + i] + d * d) / pV[i] + log(pV[i]);
        for (size_t b = 0; b < k; b++)
            L[a * k + b] = Cp[i * N + keep[b]];
    }
    /* lower Cholesky factor in place, row by row */
    int pd = 1;
    for (size_t a = 0; a < k && pd; a++) {
        for (size_t b = 0; b <= a; b++) {
            double s = L[a * k + b];
            for (size_t c = 0; c < b; c++)
                s -= L[a * k + c] * L[b * k + c];
            if (b < a) {
                L[a * k + b] = s / L[b * k + b];
            } else if (s > 0.0) {
                L[a * k + a] = sqrt(s);
                sum -= 2.0 * log(L[a * k + a]);
            } else {
                pd = 0;
            }
        }
    }
    free(L);
    free(keep);
    return pd && isfinite(sum) ? 0.5 * sum : NAN;
}

double dcm_kl_normal(int np, const double *Ep, const double *Cp, const double *pE,
                     const double *pV, const double *pC)
{
    if (np < 1 || !Ep || !Cp || !pE || (!pV && !pC))
        return NAN;
    if (!pC)
        return kl_normal_diagonal(np, Ep, Cp, pE, pV);
    const size_t N = (size_t)np;
    double kl = NAN;
    gsl_matrix *C = gsl_matrix_calloc(N, N), *U = gsl_matrix_alloc(N, N);
    gsl_vector *lam = gsl_vector_alloc(N);
    gsl_eigen_symmv_workspace *ws = gsl_eigen_symmv_alloc(N);
    gsl_matrix *Q = NULL, *Qc = NULL;
    gsl_vector *qlam = NULL;
    gsl_eigen_symm_workspace *qws = NULL;
    if (!C || !U || !lam || !ws)
        goto done;
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++)
            gsl_matrix_set(C, i, j, pC ? pC[i * N + j] : (i == j ? pV[i] : 0.0));
    if (gsl_eigen_symmv(C, lam, U, ws))
        goto done;
    double lmax = 0.0;
    for (size_t i = 0; i < N; i++)
        lmax = fmax(lmax, gsl_vector_get(lam, i));
    if (!(lmax > 0.0))
        goto done;
    size_t k = 0;
    size_t *keep = malloc(sizeof(size_t) * N);
    if (!keep)
        goto done;
    for (size_t i = 0; i < N; i++)
        if (gsl_vector_get(lam, i) > lmax * 1e-12)
            keep[k++] = i;
    Q = gsl_matrix_alloc(k, k);
    Qc = gsl_matrix_alloc(k, k);
    qlam = gsl_vector_alloc(k);
    qws = gsl_eigen_symm_alloc(k);
    double *d = calloc(k, sizeof(double)), *tmp = malloc(sizeof(double) * N);
    if (!Q || !Qc || !qlam || !qws || !d || !tmp) {
        free(keep);
        free(d);
        free(tmp);
        goto done;
    }
    /* Q = U_k' Cp U_k, d = U_k' (Ep - pE) */
    for (size_t a = 0; a < k; a++) {
        for (size_t i = 0; i < N; i++) {
            double s = 0.0;
            for (size_t j = 0; j < N; j++)
                s += Cp[i * N + j] * gsl_matrix_get(U, j, keep[a]);
            tmp[i] = s;
        }
        for (size_t b = 0; b < k; b++) {
            double s = 0.0;
            for (size_t i = 0; i < N; i++)
                s += gsl_matrix_get(U, i, keep[b]) * tmp[i];
            gsl_matrix_set(Q, b, a, s);
        }
        double s = 0.0;
        for (size_t i = 0; i < N; i++)
            s += gsl_matrix_get(U, i, keep[a]) * (Ep[i] - pE[i]);
        d[a] = s;
    }
    double sum = -(double)k;
    for (size_t a = 0; a < k; a++) {
        double l = gsl_vector_get(lam, keep[a]);
        sum += (gsl_matrix_get(Q, a, a) + d[a] * d[a]) / l + log(l);
    }
    gsl_matrix_memcpy(Qc, Q);
    int ok = gsl_eigen_symm(Qc, qlam, qws) == 0;
    for (size_t a = 0; ok && a < k; a++) {
        double l = gsl_vector_get(qlam, a);
        if (!(l > 0.0))
            ok = 0;
        else
            sum -= log(l);
    }
    if (ok && isfinite(sum))
        kl = 0.5 * sum;
    free(keep);
    free(d);
    free(tmp);
done:
    if (C) gsl_matrix_free(C);
    if (U) gsl_matrix_free(U);
    if (lam) gsl_vector_free(lam);
    if (ws) gsl_eigen_symmv_free(ws);
    if (Q) gsl_matrix_free(Q);
    if (Qc) gsl_matrix_free(Qc);
    if (qlam) gsl_vector_free(qlam);
    if (qws) gsl_eigen_symm_free(qws);
    return kl;
}

int dcm_accepted_steps(const double *F_trace, int ntrace)
{
    if (!F_trace || ntrace < 2)   /* one iteration: no step to judge */
        return -1;
    int k = 0;
    for (int i = 1; i < ntrace; i++)
        if (F_trace[i] > F_trace[i - 1])
            k++;
    return k;
}

int dcm_diagnostics_warn(const dcm_diagnostics *d, dcm_warnings *w)
{
    int rc = DCM_OK;
    if (d->accepted_steps == 0)
        rc |= dcm_warnings_add(w, "the inversion never improved on its first step (no step after "
                               "the first was accepted): the fit is the prior, not the data; check "
                               "that TR, onsets and durations match the data (see MANUAL, "
                               "\"Checks and warnings\")");
    if (isfinite(d->variance_explained) && d->variance_explained < DCM_CHECK_MIN_VARIANCE)
        rc |= dcm_warnings_add(w, "variance explained is %.1f %% (below %g %%): the model does not "
                               "fit the data; check the design (TR, onsets, units) and the regions",
                               d->variance_explained, DCM_CHECK_MIN_VARIANCE);
    if (isfinite(d->max_abs_connection) && d->max_abs_connection < DCM_CHECK_MIN_CONNECTION)
        rc |= dcm_warnings_add(w, "the largest connection between regions is %.3f Hz (below 1/8 Hz): "
                               "the regions hardly interact in this fit",
                               d->max_abs_connection);
    if (isfinite(d->effective_parameters) && d->effective_parameters < DCM_CHECK_MIN_EFFECTIVE)
        rc |= dcm_warnings_add(w, "the data informed %.2f effective parameters (below %g): the "
                               "posterior has hardly moved from the prior",
                               d->effective_parameters, DCM_CHECK_MIN_EFFECTIVE);
    return rc ? DCM_ERR_SYSTEM : DCM_OK;
}
