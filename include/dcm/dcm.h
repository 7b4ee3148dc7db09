/* dcm/dcm.h — the public C API of libdcm: dynamic causal modelling for fMRI.
 *
 * Contract
 * - Link with `pkg-config --cflags --libs dcm`. The header is C11 and
 *   C++-safe; every symbol it declares starts with dcm_ / DCM_.
 * - A dcm_problem is one checked DCM (model structure, inputs, scanner, data,
 *   confounds) loaded from a JSON spec or an SPM DCM .mat file with
 *   dcm_problem_load(). dcm_estimate() inverts it by variational Laplace
 *   exactly as SPM12's spm_dcm_estimate (same priors, scaling, noise model and
 *   free energy) and returns a dcm_result.
 * - Errors: every function that can fail returns a DCM_ERR_* code (also the
 *   command's exit status) and fills a caller-owned dcm_error with a message
 *   that says what to fix (file, line, field). The library never prints,
 *   never exits and keeps no global mutable state: distinct problems may be
 *   estimated from parallel threads.
 * - Process set-up is done once, on the first call (pthread_once): GSL's
 *   abort-on-error handler is switched off (the library checks every status
 *   itself) and OpenBLAS is told to use one thread (the matrices of one DCM
 *   are small; run estimates in parallel threads instead). A program that
 *   needs other settings may change them after its first call.
 * - Ownership: objects returned through an out-pointer belong to the caller,
 *   who releases them with the matching *_free (NULL is accepted).
 */
#ifndef DCM_DCM_H
#define DCM_DCM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exit codes of the command, and error codes of the library */
enum {
    DCM_OK = 0,
    DCM_ERR_USAGE = 1,    /* bad command line */
    DCM_ERR_INPUT = 2,    /* unreadable or invalid input files */
    DCM_ERR_NUMERIC = 3,  /* the model diverged / the inversion failed */
    DCM_ERR_SYSTEM = 4    /* out of memory, cannot write output */
};

/* What went wrong: the code and a message saying what to fix. */
typedef struct {
    int code;
    char msg[1024];
} dcm_error;

/* Opaque to library users; the library's own code sees the definitions. */
typedef struct dcm_problem dcm_problem;
typedef struct dcm_result dcm_result;

/* The library's version, "MAJOR.MINOR.PATCH". */
const char *dcm_version(void);

/* Load and check a spec (JSON, see MANUAL) or an SPM DCM .mat file. On
 * success *P owns the problem; on failure *P is NULL and err says why. */
int dcm_problem_load(const char *spec_path, dcm_problem **P, dcm_error *err);
void dcm_problem_free(dcm_problem *P);

/* Progress report: called after every VL iteration (may be NULL). Return
 * 0 to go on; non-zero stops the fit after this iteration: dcm_estimate
 * then succeeds with the best estimate so far, marked stopped (and not
 * converged) in the result. */
typedef int (*dcm_progress_fn)(void *ctx, int iteration, double F,
                               double dF_predicted, int accepted);

/* Fit P. On success *out owns the result. */
int dcm_estimate(const dcm_problem *P, dcm_progress_fn progress,
                 void *progress_ctx, dcm_result **out, dcm_error *err);
void dcm_result_free(dcm_result *R);

/* The negative free energy (log-evidence bound) of a fit. */
double dcm_result_free_energy(const dcm_result *R);

#ifdef __cplusplus
}
#endif

#endif
