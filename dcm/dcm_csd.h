/* dcm_csd.h — spectral DCM (resting state) as SPM12's spm_dcm_fmri_csd:
 * the cross-spectral densities of the regional time series fitted by a
 * linearised DCM driven by endogenous fluctuations (models/model_csd.h)
 * through the variational Laplace engine (vl/vl_nlsi.h).
 *
 * Contract
 * - dcm_csd_estimate() takes the raw time series (T x n, column-major),
 *   the TR, the n x n connection switches a (column-major, row = target;
 *   the diagonal is always free) and SPM's options, and returns the fit.
 *   It touches no files and no global state (threads may run fits in
 *   parallel).
 * - Steps (SPM's): detrend and scale to 1/(4 std); frequencies; the
 *   empirical CSD from a Bayesian MAR(order) model; priors; inversion with
 *   n^2 noise components (one per channel, hyperprior 8, 1/128) and the
 *   predicted CSD re-parameterised through AR(order - 1).
 * - Parameters are in SPM's flat order (model_csd_layout).
 */
#ifndef DCM_CSD_H
#define DCM_CSD_H

#include <complex.h>

#include "dcm/core/dcm_core.h"
#include "models/model_csd.h"
#include "models/model_problem.h"

typedef struct {
    int order;      /* MAR order of the data feature (SPM: 8) */
    int maxit;      /* VL iterations (SPM: 128) */
    double TE;      /* echo time, s (SPM: 0.04) */
} dcm_csd_options;

#define DCM_CSD_OPTIONS_DEFAULT {MODEL_CSD_ORDER, 128, 0.04}

typedef struct {
    int n, np, nw, nh;
    model_csd_layout L;
    double *pE, *pV;          /* priors, np */
    double *Ep, *Cp, *Pp;     /* posterior mean, covariance (np x np row-major), probability */
    double *Eh;               /* nh = n^2 noise log-precisions, channel i + n j */
    double F, L3[3];          /* free energy and its accuracy/complexity terms */
    int iterations, converged, stopped;
    int ntrace;
    double *F_trace;
    double scale;             /* 1/(4 std) of the detrended data */
    double *Hz;               /* nw */
    double complex *csd_obs;  /* nw*n*n, empirical (model_csd.h layout) */
    double complex *csd_pred; /* nw*n*n, predicted at Ep */
    int mar_iterations;
    double seconds;
} dcm_csd_result;

int dcm_csd_estimate(const double *Y, int T, int n, double TR, const double *a,
                     const dcm_csd_options *opt, dcm_progress_fn progress, void *progress_ctx,
                     dcm_csd_result **out, dcm_error *err);
void dcm_csd_result_free(dcm_csd_result *R);

/* dcm_estimate's path for a problem with analysis DCM_ANALYSIS_CSD (from
 * a spec with "analysis": "csd"): validates it, refuses a constant region
 * (dcm_problem_check_design), regresses the confounds (P->X0, with a
 * constant) out of every region, runs dcm_csd_estimate with the problem's
 * order, maxit and TE, and returns a dcm_result holding the parameters in
 * the order of model_layout_init_csd, the n^2 noise log-precisions, the
 * frequencies, the empirical and predicted CSD, y_obs (the series the
 * spectra were taken of, scaled) and SPM's fit checks on the spectra
 * (variance explained by the predicted CSD) as warnings. */
int dcm_csd_estimate_problem(const dcm_problem *P, dcm_progress_fn progress, void *progress_ctx,
                             dcm_result **out, dcm_error *err);

#endif
