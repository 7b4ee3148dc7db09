/* io_result.h — estimation results as JSON, and parameter files.
 *
 * Contract
 * - io_result_write_json() writes one JSON object (atomically, io_atomic.h;
 *   numbers with 17 significant digits so doubles read back exactly; NaN
 *   and Inf as null) laid out like SPM's reference files: "model",
 *   "free_energy", "posterior_mean" / "posterior_sd" /
 *   "posterior_probability" / "prior_mean" / "prior_var" as blocks
 *   {"A": n x n rows (row = target), "B": {input: n x n}, "C": n x m,
 *   "D": {region: n x n} ({} when bilinear), "transit": [n], "decay",
 *   "epsilon"} (posterior_probability is null where the prior variance is
 *   0), "noise_log_precision", "iterations", "converged",
 *   "free_energy_trajectory", "data_scale", "observed_bold_scaled" and
 *   "predicted_bold_scaled" (v rows of n), "seconds", "regions", "inputs"
 *   and "vector" {"order", "prior_mean", "prior_var", "posterior_mean",
 *   "posterior_cov" (np rows of np)} in SPM's flat order; "warnings" (an
 *   array of sentences, [] when nothing is wrong) and "diagnostics"
 *   {"variance_explained" (percent), "max_abs_connection" (Hz),
 *   "effective_parameters", "accepted_steps"} (see dcm_api.h).
 * - A spectral DCM (problem analysis DCM_ANALYSIS_CSD) is written in the
 *   same schema plus "analysis": "csd": the blocks of model_layout_init_csd
 *   (A, B {}, C [n], D {}, transit, decay, epsilon, a [2], b [2], c [n]),
 *   "noise_log_precision" n^2 (channel i + n j), "spectra" {"frequencies",
 *   "empirical", "predicted" ({"real", "imag"} [w][i][j]), "layout",
 *   "mar_order", "mar_iterations"}, "predicted_bold_scaled" null, no
 *   "design"; a task result's bytes do not change. io_result_load reads
 *   the kind into io_result_summary.csd.
 * - A regression DCM (problem analysis DCM_ANALYSIS_RDCM) is written with
 *   "analysis": "rdcm", "method" ("rdcm" | "sparse_rdcm"), "model" {regions,
 *   inputs, TR, a, c, rdcm {options}}, "free_energy" (sum over regions),
 *   "free_energy_regions", "free_energy_terms_regions" {term: [n]},
 *   "posterior_mean" / "posterior_sd" {"A" n x n, "C" n x m, "baseline" [n]
 *   when the constant is a regressor (empirical data)}, "prior_mean" /
 *   "prior_var" {A, C}, "noise" {"shape", "rate", "precision_mean"} (the
 *   Gamma posterior of each region's noise precision), "iterations" (the
 *   largest), "iterations_regions", "frequency_bins_regions", sparse adds
 *   "inclusion_probability" {A, C, baseline}, "p0_grid",
 *   "free_energy_per_p0", "p0"; "data_fingerprint" [count, sum, sum of
 *   squares of the series]; "vector" {prior_mean, prior_var,
 *   posterior_mean, posterior_var} over A then C. No dense covariance:
 *   rDCM's posterior is per region, and only its diagonal is kept.
 *   io_result_load reads it with rdcm = 1 or 2, Cp NULL and Vp.
 * - io_params_load() overwrites entries of theta (np, pre-filled by the
 *   caller, normally with the prior mean) from a result file (its
 *   "posterior_mean"), from an object holding those blocks directly, or
 *   from a flat object keyed by parameter names (io_params.h; any key
 *   with ':' selects this form); absent blocks and names are left alone.
 *   Shapes and names are checked.
 * - io_result_load() reads back what later tools need (dcm compare, BMR,
 *   PEB) into a caller-owned io_result_summary. It refuses region/input
 *   names a parameter name cannot carry ("->", ':', blanks at the ends,
 *   repeats) and sizes past IO_RESULT_MAX_* (never an int overflow).
 * - io_result_json_load() is the one reader of result and parameter
 *   files: io_result_load(), io_params_load() and report_load()
 *   (dcm/report) all parse through it, with one strictness: a FIFO or
 *   directory is refused (never hangs), a UTF-8 BOM is skipped, invalid
 *   JSON is "FILE:LINE:COL: invalid JSON: ...", a key given twice and a
 *   top level other than an object are refused. io_result_load_doc()
 *   hands the parsed document to a caller that reads more fields, so a
 *   file is parsed once.
 * - Errors: DCM_ERR_INPUT naming the file (line:column for bad JSON) and
 *   field; DCM_ERR_SYSTEM when the output cannot be written (no file is
 *   left behind).
 */
#ifndef IO_RESULT_H
#define IO_RESULT_H

#include <jansson.h>

#include "io/io_pnames.h"
#include "models/model_problem.h"

int io_result_write_json(const char *path, const dcm_problem *P, const dcm_result *R,
                         dcm_error *err);
/* The same into an io_atomic (io/io_atomic.h) opened here on path and left
 * uncommitted (the caller commits it, e.g. with other files of the same
 * result through io_atomic_commit_all, or aborts it). */
int io_result_write_json_to(void *atomic, const char *path, const dcm_problem *P,
                            const dcm_result *R, dcm_error *err);

/* The same document as a malloc'd string (*text; the file's bytes). */
int io_result_json_text(const dcm_problem *P, const dcm_result *R, char **text, dcm_error *err);

int io_params_load(const char *path, const dcm_problem *P, double *theta, dcm_error *err);

typedef struct {
    char *path;             /* the file it was read from */
    int n, m, nd, np;       /* regions, inputs, D slices (0 or n), parameters */
    int two_state;          /* from model.options (0 when absent) */
    char **regions;         /* n */
    char **inputs;          /* m */
    double F;               /* free energy */
    double *pE, *pV;        /* prior mean and variance (np) */
    double *Ep;             /* posterior mean (np) */
    double *Cp;             /* posterior covariance (np x np, row-major) */
    int csd;                /* 1: a spectral DCM ("analysis": "csd"; m = 0, np =
                               model_layout_count_csd(n)) */
    int rdcm;               /* 1: regression DCM, 2: sparse ("analysis": "rdcm"; np =
                               n^2 + n m over A then C; Cp NULL, Vp the posterior
                               variances: rDCM keeps per-region diagonals only) */
    double *Vp;             /* posterior variances (np), regression DCM only */
    double rdcm_filter;     /* its "model"."rdcm" filter strength and data (1 empirical, */
    int rdcm_empirical;     /* 0 simulated): the regression rows depend on them */
    int nh;                 /* noise components: n (task) or n^2 (spectral) */
    double *Eh;             /* noise log-precision (nh), NULL when absent */
    int iterations;         /* -1 when absent */
    int converged;          /* -1 when absent */
    double data_scale;      /* NaN when absent */
    int have_fingerprint;   /* observed_bold_scaled present */
    double fingerprint[3];  /* its count, sum, sum of squares */
} io_result_summary;

/* Limits checked at load: a result beyond them is refused, not wrapped. */
#define IO_RESULT_MAX_NAMES 10000
#define IO_RESULT_MAX_PARAMS 20000 /* the covariance alone is 3.2 GB */

/* On failure *out is left empty (safe to pass to io_result_summary_free). */
int io_result_load(const char *path, io_result_summary *out, dcm_error *err);
/* The same, and on success *doc = the parsed file (the caller
 * json_decref's it; NULL on failure). */
int io_result_load_doc(const char *path, io_result_summary *out, json_t **doc, dcm_error *err);
/* The parsed JSON object of a result or parameter file (new reference),
 * or NULL with DCM_ERR_INPUT in err (see the contract above). */
json_t *io_result_json_load(const char *path, dcm_error *err);
/* The same reader for any JSON input the commands take (model spaces,
 * families, parameter blocks): `what` names it in messages; object_only 0
 * also accepts a top-level array. */
json_t *io_json_load(const char *path, const char *what, int object_only, dcm_error *err);
/* Frees the arrays of s and zeroes it (the struct itself is the caller's). */
void io_result_summary_free(io_result_summary *s);

/* The parameter-name space of a loaded result (io_pnames.h). */
io_pname_space io_result_space(const io_result_summary *s);

/* 1 when a and b were fitted to the same observed data (the fingerprint of
 * observed_bold_scaled agrees up to rounding), 0 when not, -1 when either
 * lacks the data (e.g. SPM's reference files). */
int io_result_same_data(const io_result_summary *a, const io_result_summary *b);
/* 1 when a and b are the same kind of model (bilinear or nonlinear, one-
 * or two-state, task or spectral); io_result_kind names it for messages. */
int io_result_same_kind(const io_result_summary *a, const io_result_summary *b);
const char *io_result_kind(const io_result_summary *s);
/* Reorders s's parameters, regions and inputs to ref's order, matching
 * them by name (io_pname_map); DCM_ERR_INPUT naming the difference when
 * the two have different regions, inputs or D blocks. */
int io_result_align(io_result_summary *s, const io_result_summary *ref, dcm_error *err);

#endif
