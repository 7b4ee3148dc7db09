/* dcm_rdcm.h — regression DCM for whole-brain networks (rDCM and sparse
 * rDCM, as TAPAS's tapas_rdcm_estimate) from data in memory.
 *
 * Contract
 * - dcm_rdcm_estimate() takes the BOLD series Y (N scans x n regions,
 *   column-major), the TR, the inputs at micro-time u (N*r bins x m,
 *   column-major; r bins per scan; NULL and m = 0 for resting state), the
 *   switches a (n x n, row = target, column = source; the diagonal is
 *   always estimated) and c (n x m), and options. It touches no files and
 *   no global state except FFTW's planner, which model_rdcm guards with its
 *   own lock; several estimates may run in parallel threads.
 * - Regions are independent regressions and run in opts->threads threads.
 *   Results do not depend on the number of threads (random update orders
 *   are drawn from a stream per region and p0 value, seeded by opts->seed,
 *   so the result at one p0 is also the same whatever the rest of the grid).
 *   TAPAS's orders come from Octave/MATLAB's randperm and are not
 *   reproduced: random-restart results match TAPAS's only as one random
 *   run matches another (in F, and in the chosen p0).
 * - rDCM fits the pattern a, c. Sparse rDCM considers every connection
 *   (prior inclusion probability p0; self-connections always in), the
 *   inputs fixed by c (TAPAS's restrictInputs), for each p0 of a grid,
 *   keeps the best of `restarts` restarts per region, and returns the p0
 *   with the largest total F (first maximum).
 * - data = simulated reproduces TAPAS's type 's' (input regressors / r, no
 *   constant regressor); empirical its type 'r' (the constant is a
 *   regressor of every region, Ep.C reported x 16 as TAPAS does; Var_C
 *   is left in the units of the regression, as TAPAS leaves its sN).
 * - Errors: dcm_error with what to fix (DCM_ERR_INPUT for bad input,
 *   DCM_ERR_NUMERIC, DCM_ERR_SYSTEM).
 */
#ifndef DCM_RDCM_H
#define DCM_RDCM_H

#include "dcm/core/dcm_core.h"
#include "models/model_rdcm.h"

typedef enum { DCM_RDCM_RIDGE, DCM_RDCM_SPARSE } dcm_rdcm_method;
typedef enum { DCM_RDCM_SIMULATED, DCM_RDCM_EMPIRICAL } dcm_rdcm_data;
typedef enum { DCM_RDCM_ORDER_RANDOM, DCM_RDCM_ORDER_FIXED } dcm_rdcm_order;

#define DCM_RDCM_MAX_GRID 1000

typedef struct {
    dcm_rdcm_method method;
    dcm_rdcm_data data;
    double filter;        /* filter strength (TAPAS filter_str, 5) */
    int np0;              /* sparse: p0 values in p0 (0: TAPAS's grid 0.05:0.05:0.95) */
    const double *p0;     /* sparse: the p0 values, each in (0, 1) */
    int restarts;         /* sparse: restarts per region and p0 (TAPAS: 100) */
    dcm_rdcm_order order; /* sparse: random update orders (TAPAS) or 1..D (deterministic) */
    unsigned long long seed;
    int threads;          /* worker threads (>= 1) */
    int keep_covariance;  /* 1: the result keeps each region's full posterior covariance
                             (Sigma, Sigma_cols, Sigma_D; sparse: for every p0 until the
                             choice, so n D^2 per p0 in memory) */
} dcm_rdcm_options;

#define DCM_RDCM_OPTIONS_DEFAULT \
    {DCM_RDCM_RIDGE, DCM_RDCM_EMPIRICAL, 5.0, 0, NULL, 100, DCM_RDCM_ORDER_RANDOM, 2406ULL, 1, 0}

/* dcm_rdcm_result: defined in dcm/core/dcm_core.h (a dcm_result carries one). */

/* TAPAS's default p0 grid: 0.05 + k 0.05, k = 0..18 (19 values). */
#define DCM_RDCM_GRID_DEFAULT 19
void dcm_rdcm_default_grid(double *p0);

/* Events to inputs at micro-time (u: Nu x m, column-major): input of event
 * e is 1 in bins round(onset/dt) <= k < round((onset+duration)/dt). */
int dcm_rdcm_events_to_inputs(int nev, const double *onset, const double *duration,
                              const int *input, int m, int Nu, double dt, double *u,
                              dcm_error *err);

int dcm_rdcm_estimate(const double *Y, int N, int n, double TR, const double *u, int m, int r,
                      const double *a, const double *c, const dcm_rdcm_options *opt,
                      dcm_rdcm_result **out, dcm_error *err);

/* dcm_estimate's path for a problem with analysis DCM_ANALYSIS_RDCM (a
 * spec with "method": "rdcm" or "sparse_rdcm"): inputs from P->M->u, the
 * switches from P->M->a and c, options from P->rdcm. The dcm_result holds
 * Ep, pE, pV over A then C (np = n^2 + n m; model_layout_init_rdcm), no
 * Cp, Eh = log of each region's noise precision mean, iterations = the
 * largest over regions, and the whole per-region result in R->rdcm.
 * A region stopped by MODEL_RDCM_MAXIT, or a chosen p0 at an end of the
 * grid, is a warning. */
int dcm_rdcm_estimate_problem(const dcm_problem *P, dcm_result **out, dcm_error *err);

#endif
