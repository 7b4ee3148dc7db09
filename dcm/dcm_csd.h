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
 * - More regions than options.maxnodes: SPM's eigenmode constraint on the
 *   prior covariance of A (dcm_mode_constrained_prior on the detrended,
 *   scaled series), R->modes says how many modes were kept.
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
    int maxnodes;   /* above this many regions the prior on A is confined to
                       the data's maxnodes principal modes (SPM: 8; 0 = never) */
} dcm_csd_options;

#define DCM_CSD_OPTIONS_DEFAULT {MODEL_CSD_ORDER, 128, 0.04, 8}

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
    int modes;                /* principal modes the prior on A was confined to
                                 (n > maxnodes), 0 when unconstrained */
    double *pC;               /* that prior covariance (np x np row-major), NULL
                                 when unconstrained (diag(pV) then) */
    double seconds;
} dcm_csd_result;

/* SPM's eigenvector (functional-connectivity mode) constraint for networks
 * of more than maxnodes regions, shared by task and spectral DCM: with V
 * the first maxnodes principal modes of y (v x n, column-major) after
 * least squares on the confounds X0 (v x nx0, nx0 >= 1; SPM:
 * spm_svd(y')), the prior covariance of the A block (the first n^2
 * parameters, column-major vec(A)) becomes K diag(pV_A) K' with
 * K = kron(VV', VV'); the other parameters keep diag(pV). Modes whose
 * normalised eigenvalue is below 1e-6 are dropped (spm_svd), so fewer than
 * maxnodes may be kept (*modes_kept, when not NULL). Returns a full np x np
 * prior covariance (row-major, the caller frees it), NULL without memory. */
double *dcm_mode_constrained_prior(const double *y, int v, int n, const double *X0, int nx0,
                                   const double *pV, int np, int maxnodes, int *modes_kept);

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
