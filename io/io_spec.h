/* io_spec.h — a DCM described by a JSON spec file.
 *
 * Contract
 * - io_spec_load() reads the spec, the time series, confounds and events
 *   (paths relative to the spec's directory), builds a dcm_problem and runs
 *   dcm_problem_validate on it. On success *out owns everything
 *   (dcm_problem_free); on failure *out is NULL and err says what to fix:
 *   the file (with line:column for malformed JSON, line and column for
 *   tables) or the field. Unknown keys are errors, so typos are not
 *   silently ignored.
 * - Regions may come from SPM VOI files instead of the time series:
 *   "regions": [{"name": "V1", "voi": "VOI_V1_1.mat"}, "V5", ...] takes
 *   V1's series from the file's xY.u (io_mat.h); "timeseries" is needed
 *   only for regions given by name alone. Without "confounds" the
 *   confounds are the first VOI's xY.X0, as SPM does.
 * - Keys: TR, TE, timeseries, regions, inputs (required); events or
 *   inputs_microtime (exactly one); a, c (required); b, d, confounds,
 *   scans (checked against the time series), delays (default TR/2 each),
 *   options {two_state, centre, maxit, integrator "bilinear"|"ode", hE,
 *   hC, nonlinear} (optional).
 * - io_spec_load_ex(..., IO_SPEC_DESIGN_ONLY, ...) loads only the design
 *   (for `dcm simulate`): with "scans" the time series and confounds are
 *   not read (they need not exist) and Y is all zeros; without "scans" the
 *   time series is read as usual to learn the number of scans.
 * - Data may be given inline instead of as files (a library caller's
 *   arrays): "timeseries" {region: [one number per scan]}, "confounds"
 *   [[row of numbers], ...] (one row per scan), "events" [{"onset",
 *   "duration", "trial_type"}, ...] (read by the one events reader,
 *   io_events.h). Messages name them as SPEC "timeseries" etc.
 * - Connectivity: matrices are row = target, column = source (converted to
 *   the column-major switches of model_dcm); or edge lists "FROM -> TO"
 *   ("a" edge lists switch self-connections on). "b" is keyed by input,
 *   "d" by modulating region (any non-zero d makes the model nonlinear);
 *   "c" is an n x m matrix or {input: [regions it drives]}.
 * - "analysis": "csd" (default "task") is spectral DCM of resting-state
 *   data (load_csd, MANUAL 16): TR, timeseries, regions, a (required);
 *   TE (0.04), scans, confounds (regressed out before the spectra),
 *   options {order, maxit, maxnodes} (optional). inputs, events,
 *   inputs_microtime, b, c, d and delays are refused with the reason; the
 *   problem has analysis DCM_ANALYSIS_CSD, m = 0 and only the a switches.
 *   IO_SPEC_DESIGN_ONLY (simulation) works as for task specs: with
 *   "scans" the time series and confounds are not read.
 */
#ifndef IO_SPEC_H
#define IO_SPEC_H

#include "models/model_problem.h"

enum {
    IO_SPEC_DEFAULT = 0,
    IO_SPEC_DESIGN_ONLY = 1   /* data files optional when "scans" is given */
};

int io_spec_load(const char *path, dcm_problem **out, dcm_error *err);
int io_spec_load_ex(const char *path, int flags, dcm_problem **out, dcm_error *err);
/* The same from JSON text in memory (dcm_problem_load_json): dir is where
 * file names in it resolve (NULL or "": the working directory), name what
 * messages and the result's "spec" call it (NULL: "spec"). */
int io_spec_load_text(const char *text, const char *dir, const char *name, int flags,
                      dcm_problem **out, dcm_error *err);

#endif
