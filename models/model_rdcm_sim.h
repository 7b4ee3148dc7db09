/* model_rdcm_sim.h — synthetic BOLD data for regression DCM, as TAPAS's
 * tapas_rdcm_generate makes them (the data of the rDCM reference cases).
 *
 * Contract
 * - Neuronal states of the linear DCM by forward Euler at the micro-time
 *   step dt = TR / r: x[0] = 0, x[i+1] = x[i] + dt (A x[i] + C u[i] / 16),
 *   C in TAPAS's units (TAPAS divides C by 16 whatever r is), over the
 *   inputs repeated (TAPAS: three copies; the middle copy is what is kept,
 *   and it depends only on the first two, so two are integrated here).
 * - Each region's x is convolved (linearly) with TAPAS's fixed HRF
 *   (model_rdcm_hrf, the same function the estimation uses) and the middle
 *   copy sampled every r bins: y_clean[t] = sum_{k<Nu} h[k] x[Nu + t r - k].
 *   The convolution is one FFT of length 2 Nu per region (FFTW, planned
 *   under model_rdcm's planner lock).
 * - Noise (snr finite): Gaussian with SD std(y_clean_k) / snr per region k
 *   (std with N - 1, TAPAS's definition of SNR), drawn from GSL's MT19937
 *   seeded with `seed`, region by region, scan by scan: the same seed gives
 *   the same data, byte for byte. snr = INFINITY adds no noise.
 * - Errors: DCM_ERR_INPUT (sizes, a region without signal when noise is
 *   asked for), DCM_ERR_NUMERIC (states that diverge: A unstable at this
 *   dt), DCM_ERR_SYSTEM (memory). No global state besides FFTW's planner.
 */
#ifndef MODEL_RDCM_SIM_H
#define MODEL_RDCM_SIM_H

#include "dcm/core/dcm_core.h"

/* A: n x n column-major (A[i + n j]: from region j to region i, Hz); C:
 * n x m column-major (NULL when m = 0); u: Nu x m column-major inputs at
 * micro-time (Nu = N r); y_clean (may be NULL) and y: N x n column-major.
 * names (may be NULL): region names for messages. */
int model_rdcm_generate(const double *A, const double *C, int n, const double *u, int m, int N,
                        int r, double TR, double snr, unsigned long seed, char *const *names,
                        double *y_clean, double *y, dcm_error *err);

#endif
