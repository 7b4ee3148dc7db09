/* dcm_api.h — the public library API behind the `dcm` command.
 *
 * Contract
 * - A dcm_problem is a fully checked, in-memory description of one DCM:
 *   the model (structure, inputs, scanner) plus the data and confounds.
 *   io/ builds it from files (io_spec_load); C users may fill it directly.
 * - dcm_estimate() inverts it with variational Laplace exactly as SPM12's
 *   spm_dcm_estimate does (detrending and scaling of Y, priors, noise
 *   hyperpriors, confounds) and returns a dcm_result. It touches no files
 *   and no global state: distinct problems may be estimated in parallel
 *   threads.
 * - Errors are reported through dcm_error: a code (DCM_ERR_*, which is
 *   also the command's exit status) and a message that says what to fix.
 */
#ifndef DCM_API_H
#define DCM_API_H

#include <stddef.h>

#include "models/model_dcm.h"

/* Exit codes of the command, and error codes of the library */
enum {
    DCM_OK = 0,
    DCM_ERR_USAGE = 1,    /* bad command line */
    DCM_ERR_INPUT = 2,    /* unreadable or invalid input files */
    DCM_ERR_NUMERIC = 3,  /* the model diverged / the inversion failed */
    DCM_ERR_SYSTEM = 4    /* out of memory, cannot write output */
};

typedef struct {
    int code;
    char msg[1024];
} dcm_error;

/* printf-style: set err (if not NULL) and return code. */
int dcm_error_set(dcm_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef struct {
    int n, m;               /* regions, inputs */
    char **region_names;    /* n */
    char **input_names;     /* m */
    model_dcm *M;           /* structure, inputs at micro-time, TR/TE/delays */
    int v;                  /* scans */
    double *Y;              /* v x n, column-major, as read (unscaled) */
    int nx0;                /* confound columns (0: a constant, as SPM) */
    double *X0;             /* v x nx0, column-major */
    /* options */
    int centre;             /* mean-centre the inputs */
    int maxit;              /* maximum VL iterations (SPM: 128) */
    int maxnodes;           /* above this many regions, the prior on A is
                               confined to the data's principal modes (SPM: 8) */
    double hE, hC;          /* noise log-precision prior mean/variance (6, 1/128) */
    char *source;           /* where the problem came from (for messages) */
} dcm_problem;

dcm_problem *dcm_problem_alloc(int n, int m, int v, int nonlinear);
void dcm_problem_free(dcm_problem *P);
/* Check a filled problem (names, sizes, finite values, TR, delays,
 * connectivity). Returns DCM_OK or DCM_ERR_INPUT with a message. */
int dcm_problem_validate(const dcm_problem *P, dcm_error *err);

typedef struct {
    int np;                 /* parameters, SPM's flat order (model_dcm.h) */
    double *pE, *pV;        /* prior mean, prior variance */
    double *Ep;             /* posterior mean */
    double *Cp;             /* posterior covariance, np x np row-major */
    double *Pp;             /* posterior probability (NaN where pV = 0) */
    int n, v;
    double *Eh;             /* noise log-precision per region */
    double F;               /* negative free energy (log-evidence bound) */
    double L[3];            /* accuracy, parameter and precision terms of F */
    int iterations;
    int converged;
    int ntrace;
    double *F_trace;        /* accepted F at every iteration */
    double scale;           /* factor applied to the detrended data */
    double *y_obs;          /* v x n column-major, detrended and scaled */
    double *y_pred;         /* v x n column-major, predicted BOLD (scaled units) */
    double *y_conf;         /* v x n, fitted confounds */
    double seconds;
} dcm_result;

void dcm_result_free(dcm_result *R);

/* Progress report: called after every VL iteration (may be NULL). */
typedef void (*dcm_progress_fn)(void *ctx, int iteration, double F,
                                double dF_predicted, int accepted);

int dcm_estimate(const dcm_problem *P, dcm_progress_fn progress,
                 void *progress_ctx, dcm_result **out, dcm_error *err);

/* Predicted BOLD (v x n column-major, unscaled, no confounds) for
 * parameters theta (np): used by `dcm simulate`. */
int dcm_predict(const dcm_problem *P, const double *theta, double *y,
                dcm_error *err);

/* Fixed-effects comparison of k models from their free energies:
 * log Bayes factors against the best and posterior probabilities. */
void dcm_compare_ffx(const double *F, int k, double *logBF, double *post);

#endif
