/* io_params.h — parameter values by name, for `dcm simulate`.
 *
 * Contract
 * - A "names object" is a flat JSON object whose keys are the canonical
 *   parameter names of io_pnames.h ("A:V1->V5", "B:Attention:V1->V5",
 *   "C:Photic->V1", "D:SPC:V1->V5", "transit:V1", "decay", "epsilon") and
 *   whose values are numbers. Blanks are ignored as in selectors, and
 *   "C:INPUT:REGION" is accepted for "C:INPUT->REGION".
 *   io_params_is_names() tells such an object from the block layout (any
 *   key holding ':' makes it one); io_params_apply_names() writes each
 *   value into theta (np, SPM's flat order) and leaves the rest alone.
 *   An unknown name is an error that lists the near matches (edit
 *   distance, ignoring case) or else the parameters the spec switches on;
 *   a parameter given twice, a block key mixed in, or a non-number value
 *   is an error naming the key.
 * - Spectral DCM problems (P->analysis DCM_ANALYSIS_CSD) use its table
 *   and priors (model_layout_init_csd, model_csd_priors) throughout.
 * - io_params_check_off() refuses a theta that gives a parameter the spec
 *   switches off (prior variance 0) any value other than its prior mean
 *   (0, or -32 for a two-state model's absent A), in every block alike;
 *   the message names the parameters and the spec field to change.
 * - io_params_write_names() writes every parameter with a non-zero prior
 *   variance (and, when `only` (np) is not NULL, only[i] != 0) as a names
 *   object (each number in the fewest digits, up to
 *   17, that read back exactly; atomically), so
 *   the file read back by --params gives the same theta. With `hold`
 *   not NULL the written temporary file is handed over uncommitted, for
 *   the caller to commit (io_atomic_commit) or drop (io_atomic_abort)
 *   together with its other outputs.
 * - io_params_index() maps a name to its index, -1 when unknown.
 * - Errors: DCM_ERR_INPUT naming `path` (the parameter file), or
 *   DCM_ERR_SYSTEM (out of memory, cannot write). No global state.
 */
#ifndef IO_PARAMS_H
#define IO_PARAMS_H

#include <jansson.h>

#include "models/model_problem.h"
#include "io/io_atomic.h"

int io_params_is_names(json_t *obj);
int io_params_apply_names(const char *path, json_t *obj, const dcm_problem *P, double *theta,
                          dcm_error *err);
int io_params_index(const dcm_problem *P, const char *name);
int io_params_check_off(const char *path, const dcm_problem *P, const double *theta,
                        dcm_error *err);
int io_params_write_names(const char *path, const dcm_problem *P, const double *theta,
                          const unsigned char *only, io_atomic *hold, dcm_error *err);

#endif
