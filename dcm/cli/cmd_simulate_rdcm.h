/* cmd_simulate_rdcm.h — `dcm simulate` for regression DCM specs
 * ("method": "rdcm" | "sparse_rdcm"): TAPAS's generator
 * (models/model_rdcm_sim.h) with A and C from --params.
 *
 * Contract
 * - simulate_rdcm_method() says whether a spec is an rDCM spec: 1 rdcm,
 *   2 sparse_rdcm, 0 anything else (or a file it cannot read: the task
 *   loader then reports that), without validating the rest.
 * - simulate_rdcm() loads the design (TR, regions, inputs, events, a, c,
 *   scans), A and C from the --params file (blocks "A": n x n and "C":
 *   n x m as lists of rows, TAPAS's units, as the rDCM truth.json), and
 *   writes the series atomically with the region names as header. Values
 *   on connections the spec switches off are an error. Exit codes as
 *   every command (1 usage, 2 input, 3 numerical, 4 system).
 */
#ifndef CMD_SIMULATE_RDCM_H
#define CMD_SIMULATE_RDCM_H

int simulate_rdcm_method(const char *spec);
int simulate_rdcm(const char *spec, const char *params, double snr, unsigned long seed,
                  const char *output);

#endif
