/* io_events.h — BIDS events.tsv to DCM inputs at micro-time.
 *
 * Contract
 * - The file needs a header naming the columns onset, duration and
 *   trial_type (any order; extra columns are ignored). Onsets and
 *   durations are seconds, finite and >= 0.
 * - Inputs are sampled at dt = TR/16 on nu = v*16 bins; bin k (0-based)
 *   covers [k dt, (k+1) dt). An event of trial type input_names[j] adds 1
 *   to bins round(onset/dt) ... round((onset+duration)/dt) inclusive,
 *   clipped to the last bin, so overlapping events add (SPM's rule).
 * - Trial types that are not inputs are ignored. An input with no event
 *   inside the scan time is an error naming it.
 * - Suspicious timing is a warning appended to `warnings` (may be NULL):
 *   events that start after the last scan (they are left out) or end
 *   more than one TR past it, counted per trial type; and onsets that all
 *   lie early in the run although, read as scan numbers, they would
 *   spread over it ("are the onsets in scans?").
 */
#ifndef IO_EVENTS_H
#define IO_EVENTS_H

#include "io/io_tsv.h"
#include "models/model_problem.h"

/* Fill u (nu*m, u[t*m + j], as model_dcm) from the events file.
 * DCM_OK or DCM_ERR_INPUT with "FILE, line L: ..." messages. */
int io_events_to_microtime(const char *path, double TR, int v, int m,
                           char *const *input_names, double *u, dcm_warnings *warnings,
                           dcm_error *err);

/* The same with a choice of rule: IO_EVENTS_SPM (above) or IO_EVENTS_TAPAS
 * (regression DCM: bins round(onset/dt) <= k < round((onset+duration)/dt)
 * are 1, overlapping events do not add; TAPAS's DCM.U.u). */
enum { IO_EVENTS_SPM = 0, IO_EVENTS_TAPAS = 1 };
int io_events_to_microtime_rule(const char *path, double TR, int v, int m,
                                char *const *input_names, double *u, dcm_warnings *warnings,
                                int rule, dcm_error *err);

/* The same from a table already read (io_tsv.h): row 0 the header, rows
 * 1.. the events, line[r] what messages call row r's line; `path` names
 * the table in messages (the spec's inline "events", io_spec.c). */
int io_events_table_to_microtime(const char *path, const io_text_table *t, double TR, int v,
                                 int m, char *const *input_names, double *u,
                                 dcm_warnings *warnings, int rule, dcm_error *err);

#endif
