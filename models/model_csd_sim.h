/* model_csd_sim.h — resting-state BOLD from a known network, generated as
 * SPM12's DEM_demo_connectivity_fMRI does, so that spectral DCM
 * (model_csd.h) can be checked against a known truth.
 *
 * Contract
 * - Neuronal fluctuations: every region receives its own stationary AR(1)
 *   process with lag-one correlation fluct_ar and standard deviation
 *   fluct_sd (SPM: spm_rand_mar(T, n, 1/2)/4), held constant over each
 *   scan and entering the region through C = I. spm_rand_mar draws the
 *   same Gaussian process (covariance toeplitz(a^|i-j|)) through sqrtm of
 *   a T x T matrix; here it is drawn by the recursion e_1 = z_1,
 *   e_t = a e_{t-1} + sqrt(1 - a^2) z_t, which has that covariance exactly.
 * - The hidden states follow the task model's full nonlinear neuronal and
 *   haemodynamic equations (models/model_dcm.h), integrated from rest by
 *   model_integrate.h's ODE scheme; the BOLD signal of scan k is
 *   model_dcm_gx of the states at k TR, after the fluctuations of the
 *   scans before it (SPM integrates with spm_int_J, a local linearisation
 *   over each TR; the ODE solves the same equations without that step).
 * - The first `burnin` scans are simulated and discarded, so the data do
 *   not start from the resting state but from the stationary process.
 * - Observation noise: an independent AR(1) process per region (noise_ar,
 *   standard deviation noise_sd; SPM: spm_rand_mar(T, n, 1/2)/8), or, when
 *   snr > 0, standard deviation sd(noiseless BOLD of the region) / snr.
 * - Parameters theta are spectral DCM's (model_csd.h layout: A, C,
 *   transit, decay, epsilon, a, b, c); the generator uses A, transit,
 *   decay and epsilon: C is I by construction and a, b, c describe the
 *   fitted model's spectra, not these AR(1) processes.
 * - Random numbers: GSL's MT19937 seeded with `seed`; standard normal
 *   draws, first the fluctuations region by region, scan by scan
 *   (burnin + scans each), then the noise region by region, scan by scan.
 *   The same inputs give the same output, bit for bit.
 * - No global state; y is scans x n, column-major (y[t + k*scans]).
 */
#ifndef MODEL_CSD_SIM_H
#define MODEL_CSD_SIM_H

/* SPM's DEM_demo_connectivity_fMRI */
#define MODEL_CSD_SIM_FLUCT_AR 0.5
#define MODEL_CSD_SIM_FLUCT_SD 0.25
#define MODEL_CSD_SIM_NOISE_AR 0.5
#define MODEL_CSD_SIM_NOISE_SD 0.125
/* discarded before the data: a few times the slowest haemodynamic time
   constant (about 10 s) */
#define MODEL_CSD_SIM_BURNIN_SECONDS 128.0

typedef struct {
    double TR, TE;             /* seconds */
    int scans;                 /* kept (>= 1) */
    int burnin;                /* simulated first and discarded (>= 0) */
    double fluct_ar, fluct_sd; /* neuronal fluctuations: AR(1) coefficient in [0, 1), SD >= 0 */
    double noise_ar, noise_sd; /* observation noise, likewise */
    double snr;                /* > 0: noise SD = sd(signal)/snr per region, noise_sd unused */
    unsigned long seed;
} model_csd_sim_opts;

/* SPM's values above for TR, TE and scans; burnin MODEL_CSD_SIM_BURNIN_SECONDS
 * in whole scans; snr 0; seed 1. */
void model_csd_sim_defaults(model_csd_sim_opts *o, double TR, double TE, int scans);

enum {
    MODEL_CSD_SIM_OK = 0,
    MODEL_CSD_SIM_BADARG,    /* sizes, TR, TE or AR coefficients out of range */
    MODEL_CSD_SIM_UNSTABLE,  /* the Jacobian at rest has an eigenvalue with real part >= 0 */
    MODEL_CSD_SIM_DIVERGED,  /* the states grew beyond 1e6 or stopped being finite */
    MODEL_CSD_SIM_FLAT,      /* a region's noiseless BOLD is constant (snr cannot be set) */
    MODEL_CSD_SIM_NOMEM
};

/* Simulate n regions at parameters theta (model_csd.h layout) into y
 * (o->scans x n). signal (same shape, may be NULL) receives the BOLD
 * before noise; *max_re (may be NULL) the largest real part of the
 * eigenvalues of the Jacobian at rest (1/s). Returns MODEL_CSD_SIM_*. */
int model_csd_simulate(int n, const double *theta, const model_csd_sim_opts *o, double *y,
                       double *signal, double *max_re);

#endif
