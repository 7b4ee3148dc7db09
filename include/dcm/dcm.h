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
 * - Process set-up is done once, on the first call (dcm_library_init,
 *   pthread_once): GSL's abort-on-error handler is switched off (the library
 *   checks every status itself) and OpenBLAS is told to use one thread (the
 *   matrices of one DCM are small; run estimates in parallel threads
 *   instead). Both settings are process-wide: a program that needs others
 *   calls dcm_library_init() itself first and changes them afterwards.
 * - Threads: no global mutable state; one problem may be estimated from
 *   several threads at once (dcm_estimate only reads it), a result is read
 *   by any number of threads. Freeing an object while another thread uses
 *   it is the caller's error.
 * - Ownership: objects returned through an out-pointer belong to the caller,
 *   who releases them with the matching *_free (NULL is accepted). Strings
 *   returned by accessors belong to the object they came from and live as
 *   long as it does.
 * - Accessors never fail loudly: a NULL object or an index out of range
 *   gives NaN (numbers), -1 (counts) or NULL (strings).
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

/* The once-only process set-up described above; every entry point calls
 * it, a program calls it first only to change the settings afterwards. */
void dcm_library_init(void);

/* ---- A problem: sizes and names (names belong to P) ---- */
int dcm_problem_regions(const dcm_problem *P);   /* n */
int dcm_problem_inputs(const dcm_problem *P);    /* m */
int dcm_problem_scans(const dcm_problem *P);     /* v */
const char *dcm_problem_region_name(const dcm_problem *P, int i);
const char *dcm_problem_input_name(const dcm_problem *P, int j);
/* Parameters of P's model, in SPM's flat order (A, B, C, D, transit,
 * decay, epsilon); a fit of P has as many (dcm_result_parameters). */
int dcm_problem_parameters(const dcm_problem *P);
/* Name of parameter k as the command writes it ("A:V1->V5",
 * "B:Attention:V1->V5", "C:Photic->V1", "D:SPC:V1->V5", "transit:V5",
 * "decay", "epsilon") into buf (len bytes, always terminated). Returns the
 * length of the whole name, like snprintf (a value >= len means buf was
 * too small), or -1 when k is out of range or memory ran out. */
int dcm_problem_parameter_name(const dcm_problem *P, int k, char *buf, size_t len);

/* ---- A fit: parameter k in [0, dcm_result_parameters(R)) ---- */
int dcm_result_parameters(const dcm_result *R);
double dcm_result_prior_mean(const dcm_result *R, int k);
double dcm_result_prior_sd(const dcm_result *R, int k);
double dcm_result_posterior_mean(const dcm_result *R, int k);
double dcm_result_posterior_sd(const dcm_result *R, int k);
/* Posterior covariance of parameters i and j. A regression DCM ("method":
 * "rdcm") keeps only each region's variances: NaN off the diagonal. */
double dcm_result_posterior_cov(const dcm_result *R, int i, int j);
/* SPM's Pp: posterior probability that parameter k exceeds its prior mean
 * in size (for the connections, prior mean 0: that it is not zero); NaN for
 * fixed parameters (prior SD 0). */
double dcm_result_posterior_probability(const dcm_result *R, int k);
/* Noise log-precision of region i (of dcm_result_regions(R)); of a spectral
 * DCM, that of region i's own channel (i, i) of its n x n. */
int dcm_result_regions(const dcm_result *R);
double dcm_result_noise_log_precision(const dcm_result *R, int i);
int dcm_result_iterations(const dcm_result *R);
/* 1 when the inversion converged, 0 when it stopped at the iteration cap. */
int dcm_result_converged(const dcm_result *R);
/* 1 when the progress callback stopped the fit (the kept estimate is returned
 * and a warning says so), else 0. */
int dcm_result_stopped(const dcm_result *R);
/* Wall-clock seconds the fit took. */
double dcm_result_seconds(const dcm_result *R);
/* Design and fit warnings (suspicious but valid), one sentence each. */
int dcm_result_warning_count(const dcm_result *R);
const char *dcm_result_warning(const dcm_result *R, int i);

/* Write R, the fit of P, to path as the command's result JSON (MANUAL
 * section 5; `dcm estimate -o`), atomically: path is replaced whole or left
 * as it was. DCM_ERR_USAGE when R is not a fit of P (other sizes),
 * DCM_ERR_SYSTEM when the file cannot be written. */
int dcm_result_save(const dcm_result *R, const dcm_problem *P, const char *path, dcm_error *err);

/* ---- Specs and results in memory (e.g. for the Python package) ---- */

/* Load and check a spec given as JSON text rather than a file: the same
 * keys and checks as dcm_problem_load. File names in it resolve against
 * base_dir (NULL or "": the working directory); name is what messages and
 * the result's "spec" call it (NULL: "spec"). The data may also be given
 * inline (MANUAL section 18): "timeseries" {region: [one number per
 * scan]}, "confounds" [[one row per scan], ...], "events" [{"onset": s,
 * "duration": s, "trial_type": input}, ...]. */
int dcm_problem_load_json(const char *json_text, const char *base_dir, const char *name,
                          dcm_problem **P, dcm_error *err);

/* R, the fit of P, as the text dcm_result_save writes (the result JSON,
 * MANUAL section 5): on success *text is a string the caller frees with
 * dcm_free. Errors as dcm_result_save (never DCM_ERR_SYSTEM for a file). */
int dcm_result_json(const dcm_result *R, const dcm_problem *P, char **text, dcm_error *err);

/* The prior of P's parameters in SPM's flat order (dcm_problem_parameters
 * values each; either array may be NULL). DCM_ERR_INPUT for a regression
 * DCM, whose priors are per region. */
int dcm_problem_prior(const dcm_problem *P, double *pE, double *pV, dcm_error *err);

/* Simulated BOLD of P's design at parameters theta (SPM's flat order;
 * NULL: the prior mean) into y (scans x regions, column-major: region i's
 * series at y + i * scans); P's own data are not used. A task DCM: the
 * model's prediction plus, when snr > 0, Gaussian noise of SD sd(region)/
 * snr per region from GSL's mt19937 seeded with seed (what `dcm simulate
 * --snr --seed` writes for the same parameters); a spectral DCM: SPM's
 * resting-state generator (snr <= 0: its default noise). */
int dcm_simulate(const dcm_problem *P, const double *theta, double snr, unsigned long seed,
                 double *y, dcm_error *err);

/* The parameter names of a result file (`dcm estimate -o`; names as
 * dcm_problem_parameter_name gives them, in SPM's flat order, the order of
 * the file's "vector"), one per line, into *names (the caller frees it with
 * dcm_free); *count receives how many (may be NULL). */
int dcm_result_file_parameter_names(const char *path, char **names, int *count, dcm_error *err);

/* Frees memory the library handed over (dcm_result_json's text, names). */
void dcm_free(void *p);

#ifdef __cplusplus
}
#endif

#include "dcm_group.h" /* group analysis: BMS, BMR, BMA, PEB */

#endif
