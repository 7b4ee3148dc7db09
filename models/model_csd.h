/* model_csd.h — spectral DCM for resting-state fMRI: the cross-spectral
 * density (CSD) of regional BOLD, as SPM12's spm_dcm_fmri_csd defines it.
 *
 * Contract
 * - Data feature: the detrended, scaled time series are summarised by a
 *   Bayesian multivariate autoregressive model of order p (8), whose
 *   spectrum at nw (32) frequencies is the complex n x n CSD the model is
 *   fitted to (model_csd_mar_fit, model_csd_mar_spectra).
 * - Model: a linearised one-state DCM (models/model_dcm.h) driven by
 *   endogenous fluctuations with a power-law spectrum, observed with
 *   power-law noise (global and regional). Its transfer functions at the
 *   frequencies give a predicted CSD, which is passed through an AR(p-1)
 *   model as SPM does (model_csd_predict).
 * - Parameters, SPM's flat order (spm_vec of DCM.Ep):
 *     A (n x n, column-major, row = target), C (n, fixed at 0),
 *     transit (n), decay, epsilon, a (2), b (2), c (n)
 *   np = n^2 + 3n + 6 (B and D are empty).
 * - Complex arrays are C99 double complex. A CSD is stored as SPM's
 *   vec: csd[w + nw*(i + n*j)], frequency fastest, then row i (target),
 *   then column j (source).
 * - No global state: a model_csd_work belongs to one thread.
 */
#ifndef MODEL_CSD_H
#define MODEL_CSD_H

#include <complex.h>
#include <stddef.h>

/* SPM's defaults */
#define MODEL_CSD_NW 32        /* frequencies */
#define MODEL_CSD_ORDER 8      /* MAR order of the data feature */

/* Offsets of the parameter blocks in the flat vector. */
typedef struct {
    int n, np;
    int off_A, off_C, off_transit, off_decay, off_epsilon, off_a, off_b, off_c;
} model_csd_layout;

void model_csd_layout_init(model_csd_layout *L, int n);

/* SPM's frequency grid: nw values from 1/min(128, T TR) to 1/max(8, 2 TR). */
void model_csd_frequencies(int scans, double TR, int nw, double *Hz);

/* Priors of spm_dcm_fmri_priors for CSD (one-state, induced): a is the
 * n x n switch matrix (column-major, row = target); pE, pV have np
 * entries. */
void model_csd_priors(int n, const double *a, double *pE, double *pV);

/* A multivariate AR model y_t + sum_k a_k y_{t-k} = e_t. */
typedef struct {
    int n, p;
    double *lag;        /* p*n*n: a_k(i,j) at lag[k*n*n + i + j*n], k = 0..p-1 */
    double *noise_cov;  /* n*n, column-major */
    int iterations;     /* variational iterations run */
} model_csd_mar;

/* Bayesian MAR(p) of Y (T x n, column-major) as SPM's spm_mar: maximum
 * likelihood start, then variational updates with one global shrinkage
 * precision. noise_cov is the ML residual covariance (divisor T). Returns 0,
 * or -1 with a message in errbuf (too few scans, singular design, memory). */
int model_csd_mar_fit(const double *Y, int T, int n, int p, model_csd_mar *mar,
                      char *errbuf, size_t errlen);
void model_csd_mar_free(model_csd_mar *mar);

/* The spectrum of an AR model at the nw frequencies Hz, sampled every dt
 * seconds: csd(f) = 2 dt H(f) noise_cov H(f)^H, H(f) = inv(I + sum_k a_k
 * exp(-2 pi i f k dt)). csd as in the contract. Returns 0, -1 when I + sum
 * is singular at some frequency. */
int model_csd_mar_spectra(const model_csd_mar *mar, const double *Hz, int nw, double dt,
                          double complex *csd);

/* The intermediate quantities of one prediction (any pointer may be NULL;
 * shapes as documented, complex arrays in the csd layout unless noted). */
typedef struct {
    double complex *Gu, *Gn;     /* nw*n*n fluctuation and noise spectra */
    double complex *transfer;    /* nw*n*n S(w) */
    double complex *csd_raw;     /* nw*n*n S Gu S^H + Gn */
    double *ccf;                 /* (2N+1)*n*n: ccf[t + L*(i + n*j)], lag (t-N) dt */
    int nccf;                    /* 2N+1 (set when ccf is not NULL) */
    double *ar_lag;              /* ar_order*n*n, as model_csd_mar.lag */
    double *ar_noise_cov;        /* n*n, column-major */
    double *dfdx, *dfdu, *dgdx;  /* 5n x 5n, 5n x n, n x 5n, column-major */
    int conditioned;             /* eigenvalues with Re > -1/32 (moved) */
} model_csd_parts;

typedef struct model_csd_work model_csd_work;

/* A workspace for predictions of an n-region model at nw frequencies Hz
 * (copied), with an AR re-parameterisation of order ar_order (SPM: p - 1
 * = 7). TE is the echo time (s) of the BOLD equation. NULL when out of
 * memory. */
model_csd_work *model_csd_work_alloc(int n, int nw, const double *Hz, int ar_order, double TE);
void model_csd_work_free(model_csd_work *W);

/* Predicted CSD (nw*n*n, contract layout) at parameters P (np). parts may
 * be NULL. Returns 0, or -1 when a linear system is singular. */
int model_csd_predict(model_csd_work *W, const double *P, double complex *csd,
                      model_csd_parts *parts);

#endif
