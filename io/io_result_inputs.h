/* io_result_inputs.h — the input design of a fit, as the result file's
 * "design" block, so that a report can show what was fitted without the
 * spec and its data files.
 *
 * Contract
 * - io_result_design_json(P) builds (new reference; NULL when out of
 *   memory):
 *     "design": {
 *       "microtime_dt": TR/16 (s), "microtime_bins": v*16, "scans": v,
 *       "inputs": {"NAME": [[first_bin, bins, value], ...], ...},
 *       "confound_columns": k (0: a constant only, SPM's default),
 *       "confound_constant": true when the confound matrix holds a
 *                            constant column (or is the default)
 *     }
 *   Each input is run-length coded over the micro-time bins as the model
 *   integrates it (before any mean-centring, which "options"."centre"
 *   records): one triple per run of equal non-zero value, bins counted
 *   from 0 (bin b covers [b*dt, (b+1)*dt) s from the first scan), runs of
 *   zero left out. Input k at bin b is u[b*m + k] of model_dcm.
 * - io_result_design_load() reads that block back into a caller-owned
 *   io_result_design (dense micro-time arrays); a file without the block
 *   (older results, SPM's reference files) gives DCM_OK with nu = 0.
 *   A malformed block is DCM_ERR_INPUT naming the file and the field.
 * - No global state.
 */
#ifndef IO_RESULT_INPUTS_H
#define IO_RESULT_INPUTS_H

#include <jansson.h>

#include "models/model_problem.h"

json_t *io_result_design_json(const dcm_problem *P);

typedef struct {
    int nu;                 /* micro-time bins (0: the file has no design) */
    int v;                  /* scans */
    int m;                  /* inputs (as the result's "inputs") */
    double dt;              /* seconds per bin */
    double *u;              /* nu x m, column-major: input k at bin b is u[b + k*nu] */
    int confound_columns;   /* -1 when unknown */
    int confound_constant;  /* -1 when unknown */
} io_result_design;

/* root: the parsed result; inputs: the result's input names (m). */
int io_result_design_load(const char *path, json_t *root, char *const *inputs, int m,
                          io_result_design *d, dcm_error *err);
void io_result_design_free(io_result_design *d);

#endif
