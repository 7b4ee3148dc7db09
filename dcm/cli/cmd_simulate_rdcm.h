/* cmd_simulate_rdcm.h — `dcm simulate` for regression DCM specs
 * ("method": "rdcm" | "sparse_rdcm"): TAPAS's generator
 * (models/model_rdcm_sim.h) with A and C from --params.
 *
 * Contract
 * - simulate_rdcm() takes the problem io_spec_load_ex(spec,
 *   IO_SPEC_DESIGN_ONLY) built (analysis DCM_ANALYSIS_RDCM: TR, regions,
 *   inputs at micro-time by TAPAS's rule, the a and c switches, the number
 *   of scans); the spec parser is io_spec's alone.
 * - --params holds "A" (n x n, Hz) and "C" (n x m, TAPAS units) as lists of
 *   rows (as the rDCM truth.json), or is an rDCM result JSON whose
 *   "posterior_mean" has those blocks (its "regions"/"inputs", when given,
 *   must be the spec's). Values on connections the spec switches off are
 *   an error.
 * - A resting-state spec (no inputs) is refused: TAPAS's generator drives
 *   the network only through its inputs (the states start at 0 and stay
 *   there), so it has nothing to simulate.
 * - The series are written atomically with the region names as header.
 *   Exit codes as every command (1 usage, 2 input, 3 numerical, 4 system).
 */
#ifndef CMD_SIMULATE_RDCM_H
#define CMD_SIMULATE_RDCM_H

#include "models/model_problem.h"

int simulate_rdcm(const dcm_problem *P, const char *params, double snr, unsigned long seed,
                  const char *output);

#endif
