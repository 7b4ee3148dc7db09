/* model_rdcm.h — regression DCM (rDCM, Frässle et al. 2017) and sparse rDCM
 * (Frässle et al. 2018) as the TAPAS toolbox computes them: a linear DCM
 * dx/dt = A x + C u observed through a fixed haemodynamic response, turned
 * into one Bayesian linear regression per region in the frequency domain.
 *
 * Contract
 * - Sizes: N scans, n regions, m inputs, r micro-time bins per scan,
 *   Nu = N r. Matrices are column-major. Regressor columns of a region's
 *   design are numbered 0..n-1 (the filtered spectrum of region j, i.e. a
 *   connection from j), n..n+m-1 (input), n+m (the constant confound).
 * - Steps: model_rdcm_hrf (TAPAS's fixed HRF by forward Euler),
 *   model_rdcm_spectra_build (circular convolution of the inputs with the
 *   HRF, DFTs of data, inputs and HRF, the filter and the regression rows of
 *   every region), model_rdcm_normal (the real form of one region's complex
 *   regression: W = XᴴX, v = XᴴYd, yy = YdᴴYd), model_rdcm_priors,
 *   model_rdcm_ridge (variational Bayes with a fixed pattern) and
 *   model_rdcm_sparse (one restart of the sparse variant with binary
 *   inclusion variables).
 * - Real form: for 0 < f < N/2 with f and N-f both regression rows, row f
 *   becomes √2 Re and row N-f √2 Im of row f; rows 0 and N/2 keep their real
 *   part (the imaginary part is 0). W, v, yy are those of the complex
 *   regression, which is real because the rows are symmetric and the DFT of
 *   real data is conjugate-symmetric. N_k (bins) counts complex rows.
 * - Inputs: the circular convolution with the HRF of an input that is
 *   piecewise constant in few runs (block and event designs) is summed
 *   from its runs (prefix sums of h, long double), others by Nu-point FFTs
 *   (planned only then); both agree with TAPAS's FFT to rounding.
 * - FFTW: plan creation is not thread-safe in FFTW, execution is. All plans
 *   are made inside model_rdcm_spectra_build, under a mutex private to this
 *   file (FFTW's planner is process-global state; the mutex only serialises
 *   access to it), with FFTW_ESTIMATE, so that results do not depend on
 *   timing. Everything after the spectra (design, VB) uses no FFTW and no
 *   shared state: one model_rdcm_ws per thread.
 * - Randomness (sparse rDCM's update order) comes from a model_rdcm_rng the
 *   caller seeds; there is no hidden generator. TAPAS draws Octave/MATLAB
 *   randperm, which is not reproduced (its ordered variant is).
 * - Linear algebra: Cholesky factor and inverse by the loops in
 *   model_rdcm.c for small blocks (<= 12), OpenBLAS's LAPACK dpotrf/dpotri
 *   above (the library sets OpenBLAS to one thread: dcm_library_init).
 * - Errors: dcm_error codes (DCM_ERR_INPUT for data that cannot be fitted,
 *   DCM_ERR_SYSTEM for memory), with a sentence saying what to fix.
 */
#ifndef MODEL_RDCM_H
#define MODEL_RDCM_H

#include <complex.h>
#include <stddef.h>
#include <stdint.h>

#include "dcm/core/dcm_core.h"

#define MODEL_RDCM_MAXIT 501        /* VB iterations (TAPAS) */
#define MODEL_RDCM_TOL 1e-10        /* stop when (F_old - F)^2 < tol */
#define MODEL_RDCM_A0 2.0           /* Gamma prior of the noise precision: shape */
#define MODEL_RDCM_B0 1.0           /* ... and rate */
#define MODEL_RDCM_UNINFORMATIVE 1e-4  /* |H(f)| or sum |U(f)| below: a bin without signal */
#define MODEL_RDCM_MU_ZERO 1e-5     /* sparse: |mu| below is set to 0 (with its z) */
#define MODEL_RDCM_Z_MIN 1e-10      /* sparse: z at or below does not enter log p(z), log q(z) */
/* Seconds of HRF a series must cover: after 32 s the response is below
 * 0.3 % of its peak (the fixed HRF at dt = TR/16 for TR in 0.5..3 s). A
 * shorter series wraps the response around in the circular convolution. */
#define MODEL_RDCM_HRF_SUPPORT_S 32.0

/* TAPAS's fixed HRF: the BOLD response of one region (A = -1) to a unit
 * input in micro-time bin 0, haemodynamics at their prior, integrated by
 * forward Euler with step dt over Nu steps; h[i] is the BOLD at step i. */
void model_rdcm_hrf(double dt, int Nu, double *h);

/* FFTW's planner lock of this module, for the other rDCM files that plan
 * FFTs (model_rdcm_sim.c): take it around fftw_plan_* and
 * fftw_destroy_plan, never around fftw_execute. */
void model_rdcm_planner_lock(void);
void model_rdcm_planner_unlock(void);

/* The frequency-domain data of one problem. */
typedef struct {
    int N, n, m, r;
    int resting;              /* no inputs: the filter skips the input test, resting band */
    double TR, thr;           /* repetition time, filter strength (TAPAS filter_str) */
    double *h;                /* Nu: the HRF at micro-time */
    double *uconv;            /* N x (m+1): convolved inputs at the scans; column m = 1 */
    double complex *Y;        /* N x n: DFT of each region's series */
    double complex *Yf;       /* N x n: filtered (bins not kept set to 0) */
    double complex *U;        /* N x (m+1): DFT of uconv */
    double complex *H;        /* N: DFT of the HRF sampled at the scans */
    unsigned char *mask;      /* N x n: 0 not a regression row, 1 a row the filter zeroed, 2 kept */
    int *bins;                /* n: N_k, regression rows (complex bins) of region k */
    int *kept;                /* n: bins kept by the filter */
    double *sd_re, *sd_im;    /* n: SD of Re/Im Y over the uninformative bins */
    int n_uninformative;      /* bins with |H| or sum |U| <= MODEL_RDCM_UNINFORMATIVE */
} model_rdcm_spectra;

/* Y: N x n; u: Nu x m inputs at micro-time (NULL when m = 0); r >= 1; thr
 * the filter strength (TAPAS: 1 = weakest ... ; default 5). Fails (with what
 * to fix) when the series is shorter than MODEL_RDCM_HRF_SUPPORT_S, or when
 * a region keeps no informative frequency after filtering (naming it). */
int model_rdcm_spectra_build(model_rdcm_spectra *S, const double *Y, int N, int n, double TR,
                             const double *u, int m, int r, double thr, dcm_error *err);
/* The same with the inputs' convolutions shared among up to `threads`
 * threads (the same numbers for any count). */
int model_rdcm_spectra_build_mt(model_rdcm_spectra *S, const double *Y, int N, int n, double TR,
                                const double *u, int m, int r, double thr, int threads,
                                dcm_error *err);
/* The same with input i, micro-time bin t at u[t * u_step_bin + i *
 * u_step_input] (so a caller's bins x inputs array needs no transposing). */
int model_rdcm_spectra_build_strided(model_rdcm_spectra *S, const double *Y, int N, int n,
                                     double TR, const double *u, size_t u_step_bin,
                                     size_t u_step_input, int m, int r, double thr, int threads,
                                     dcm_error *err);
void model_rdcm_spectra_free(model_rdcm_spectra *S);

/* The response of region k at bin f: the DFT of its forward difference,
 * (e^{2 pi i f/N} - 1) Yf_k(f) / TR. */
double complex model_rdcm_response(const model_rdcm_spectra *S, int k, int f);

/* One region's regression in real form. cols[0..D-1] are regressor columns
 * (numbering above); input columns (and the constant) are multiplied by
 * input_scale (TAPAS: 1/r for simulated data, 1 for empirical). W is D x D,
 * v has D entries; *bins = N_k. work: N*(D+1) doubles. */
void model_rdcm_normal(const model_rdcm_spectra *S, int k, const int *cols, int D,
                       double input_scale, double *W, double *v, double *yy, int *bins,
                       double *work);
/* The regression rows of region k in real form (at most N), written as
 * rows x D (column-major, leading dimension N) into X and the response
 * into y; returns the number of real rows. */
int model_rdcm_design(const model_rdcm_spectra *S, int k, const int *cols, int D,
                      double input_scale, double *X, double *y);

/* Priors of the regressors of region k (TAPAS, from SPM's one-state DCM):
 * self-connection mean -0.5 precision 8n; other connections mean 0
 * precision n/8; inputs mean 0 precision 1; the constant mean 0 precision
 * baseline_precision (rDCM 1e-8, sparse rDCM 1). */
void model_rdcm_priors(int n, int m, int k, const int *cols, int D, double baseline_precision,
                       double *m0, double *l0);

/* The F terms, in this order (the last two are sparse rDCM's). */
enum { MODEL_RDCM_LOG_LIK, MODEL_RDCM_LOG_P_WEIGHT, MODEL_RDCM_LOG_P_PREC,
       MODEL_RDCM_LOG_Q_WEIGHT, MODEL_RDCM_LOG_Q_PREC, MODEL_RDCM_LOG_P_Z,
       MODEL_RDCM_LOG_Q_Z, MODEL_RDCM_NTERMS };

/* A region's posterior: q(theta) = N(mu, Sigma), q(tau) = Gamma(aN, bN),
 * (sparse) q(z_i = 1) = z_i. Arrays of D (Sigma D x D), owned by the caller
 * (model_rdcm_fit_alloc). */
typedef struct {
    int D;
    double *mu, *Sigma, *z;
    double aN, bN, F;
    double terms[MODEL_RDCM_NTERMS];
    int iterations;
} model_rdcm_fit;

int model_rdcm_fit_alloc(model_rdcm_fit *fit, int D);
void model_rdcm_fit_free(model_rdcm_fit *fit);
void model_rdcm_fit_copy(model_rdcm_fit *dst, const model_rdcm_fit *src);

/* Workspace for D up to Dmax; one per thread. */
typedef struct model_rdcm_ws model_rdcm_ws;
model_rdcm_ws *model_rdcm_ws_alloc(int Dmax);
void model_rdcm_ws_free(model_rdcm_ws *ws);

/* rDCM regressions with at least this many regressors use one
 * eigendecomposition for all VB iterations instead of a Cholesky factor per
 * iteration (the same numbers to rounding; much faster for whole-brain
 * patterns). model_rdcm_ws_set_eig_from changes it (tests compare both). */
#define MODEL_RDCM_EIG_FROM 24
void model_rdcm_ws_set_eig_from(model_rdcm_ws *ws, int D);

/* Optional per-iteration record (F and tau after each VB iteration). */
typedef struct {
    int cap, len;
    double *F, *tau;
} model_rdcm_trace;

/* rDCM: VB for one region from tau = a0/b0 until (F_old - F)^2 < tol or
 * MODEL_RDCM_MAXIT iterations. Returns DCM_OK, or DCM_ERR_NUMERIC when the
 * posterior precision is not positive definite. */
int model_rdcm_ridge(const double *W, const double *v, double yy, int bins, const double *m0,
                     const double *l0, int D, model_rdcm_ws *ws, model_rdcm_fit *fit,
                     model_rdcm_trace *trace);

/* A small generator (xoshiro256**) for sparse rDCM's update orders. */
typedef struct {
    uint64_t s[4];
} model_rdcm_rng;
/* Seed from (seed, stream): distinct streams give independent sequences,
 * so region k's restarts draw the same orders whatever thread runs them. */
void model_rdcm_rng_seed(model_rdcm_rng *g, uint64_t seed, uint64_t stream);
uint64_t model_rdcm_rng_next(model_rdcm_rng *g);

/* Sparse rDCM, one restart for one region: prior inclusion probabilities
 * p0 (D; 0 and 1 fix a regressor out or in), z updated in the order
 * 0..D-1 every iteration when rng is NULL (TAPAS made deterministic), else
 * in a fresh random permutation every iteration (TAPAS's randperm).
 * The first q(theta) of a restart depends only on (W, v, priors, p0): with
 * same_start = 1 it is taken from the previous call on this ws (which must
 * have had the same arguments), else computed and kept there. Only the
 * block of regressors with a non-zero inclusion probability is factorised
 * (the others keep their prior), which is what makes 100 restarts cheap. */
int model_rdcm_sparse(const double *W, const double *v, double yy, int bins, const double *m0,
                      const double *l0, const double *p0, int D, model_rdcm_rng *rng,
                      int same_start, model_rdcm_ws *ws, model_rdcm_fit *fit,
                      model_rdcm_trace *trace);

#endif
