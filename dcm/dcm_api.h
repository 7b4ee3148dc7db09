/* dcm_api.h — the library API behind the `dcm` command: the public
 * header (include/dcm/dcm.h) plus what the command and the tests use
 * beyond it.
 *
 * Contract
 * - dcm_estimate() inverts a dcm_problem with variational Laplace exactly
 *   as SPM12's spm_dcm_estimate does (detrending and scaling of Y, priors,
 *   noise hyperpriors, confounds) and returns a dcm_result. It touches no
 *   files and no global state: distinct problems may be estimated in
 *   parallel threads.
 * - Errors and warnings follow dcm/core/dcm_core.h.
 */
#ifndef DCM_API_H
#define DCM_API_H

#include <stddef.h>

#include "dcm/core/dcm_core.h"
#include "models/model_problem.h"
#include "vl/vl_nlsi.h"

/* The version of the library and the command. */
#define DCM_VERSION_STRING "0.1.0"

/* The process-wide set-up of include/dcm/dcm.h (GSL handler, one OpenBLAS
 * thread), done once whoever calls first; the public entry points call it. */
void dcm_library_init(void);


/* The one map from an engine status (vl/vl_status.h) to the library's
 * error: VL_ERR_INPUT -> DCM_ERR_INPUT, VL_ERR_NOMEM -> DCM_ERR_SYSTEM, the
 * numerical failures -> DCM_ERR_NUMERIC. The message is "CONTEXT: DETAIL"
 * (DETAIL: the engine's message, or the status in words when empty).
 * Returns the dcm code (DCM_OK for VL_OK and VL_WARN_NOCONV). */
int dcm_error_from_vl(int vl_status, const char *context, const char *detail, dcm_error *err);

/* Predicted BOLD (v x n column-major, unscaled, no confounds) for
 * parameters theta (np): used by `dcm simulate`. */
int dcm_predict(const dcm_problem *P, const double *theta, double *y,
                dcm_error *err);

/* The vl_model dcm_estimate inverts for a task (fMRI BOLD) problem, and
 * what it borrows: the detrended, scaled data y (v x n), the priors, one
 * noise component per region, the confounds (a constant when none) and,
 * past maxnodes, the mode-constrained prior pC_full. vm.user is NULL: a
 * caller sets it to a dcm_fmri_user_alloc'd state (one per thread).
 * dcm_fmri_model_build returns non-zero without memory (F zeroed). */
typedef struct {
    model_dcm *M;
    double *Q, *hE, *hC, *pE, *pV, *y, *ones, *pC_full;
    double scale;
    vl_model vm;
} dcm_fmri_model;
int dcm_fmri_model_build(const dcm_problem *P, dcm_fmri_model *F);
void dcm_fmri_model_free(dcm_fmri_model *F);
void *dcm_fmri_user_alloc(const dcm_fmri_model *F);
void dcm_fmri_user_free(void *user);

/* Resting-state BOLD (v x n column-major) for a spectral problem at
 * parameters theta (its layout, model_csd.h), generated as SPM's
 * DEM_demo_connectivity_fMRI does (models/model_csd_sim.h: AR(1)
 * fluctuations through the task model's equations, AR(1) noise of SD 1/8,
 * or sd(signal)/snr when snr > 0), seeded: used by `dcm simulate`.
 * DCM_ERR_INPUT for an unstable network or a problem that is not
 * spectral, DCM_ERR_NUMERIC when the integration diverges. */
int dcm_simulate_csd(const dcm_problem *P, const double *theta, unsigned long seed, double snr,
                     double *y, dcm_error *err);

#endif
