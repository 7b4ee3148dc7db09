/* vl_nlsi.h — variational Laplace inversion of a nonlinear model.
 *
 * Contract
 * - The engine knows nothing about brains. A model is: a Gaussian prior
 *   over np parameters, and a function from a parameter vector to a
 *   predicted data vector of length ny. Data are modelled as
 *       y = g(theta) + X0 beta + e,   e ~ N(0, Sigma(h)),
 *   Sigma(h)^-1 = sum_i exp(h_i) Q_i with diagonal precision components
 *   Q_i, log-normal hyperpriors on h, and confound coefficients beta with a
 *   flat prior (precision 1e-8), X0 acting on each block of nb samples.
 * - The scheme is SPM12's (spm_nlsi_GN): Gauss–Newton ascent of the
 *   negative free energy F in the eigen-subspace of the prior covariance,
 *   regularised Levenberg–Marquardt style by a matrix-exponential step
 *   whose log-rate grows on success and shrinks on failure; Fisher scoring
 *   of h in an inner loop; convergence when the predicted increase of F
 *   stays below 0.1 for four iterations.
 * - vl_nlsi() allocates its own workspace, calls `predict` (which must be
 *   thread-compatible through its ctx) and returns a vl_result that the
 *   caller frees. No global state.
 */
#ifndef VL_NLSI_H
#define VL_NLSI_H

#include <stddef.h>

/* Predict ny data from theta (np). Return 0 on success, > 0 for a
 * prediction that is usable but flagged (e.g. an integrator that stopped
 * early), < 0 when no prediction could be made. */
typedef int (*vl_predict_fn)(void *ctx, const double *theta, double *y);

/* Called after every iteration: F of the kept estimate, predicted
 * increase of the next step, whether this iteration's F was accepted. */
typedef void (*vl_progress_fn)(void *ctx, int iteration, double F,
                               double dF_predicted, int accepted);

typedef struct {
    int np;
    const double *pE;      /* np prior mean */
    const double *pV;      /* np prior variances (diagonal prior), or NULL */
    const double *pC;      /* np x np prior covariance (row-major), if pV NULL */
    const double *P0;      /* starting parameters, NULL for pE */
    int ny;
    const double *y;       /* ny data */
    int nh;
    const double *Q;       /* nh x ny diagonals of the precision components */
    const double *hE;      /* nh hyperprior means */
    const double *hC;      /* nh hyperprior variances */
    int nb, nx0;           /* confounds X0: nb x nx0, column-major, applied */
    const double *X0;      /*   block-wise to each of the ny/nb blocks */
    int maxit;
    vl_predict_fn predict;
    void *ctx;
    vl_progress_fn progress;
    void *progress_ctx;
} vl_problem;

typedef struct {
    int np, nh, ny, nbeta;
    double *Ep;            /* np posterior mean */
    double *Cp;            /* np x np posterior covariance, row-major */
    double *Eh;            /* nh noise log-precisions */
    double *beta;          /* confound coefficients */
    double F;
    double L[3];           /* accuracy, parameter complexity, precision terms */
    int iterations;
    int converged;
    int ntrace;
    double *F_trace;       /* kept F after each iteration */
    double *y_pred;        /* g(Ep), ny */
    double *y_conf;        /* X0 beta, ny */
    int predict_flag;      /* the predict return value at Ep */
} vl_result;

#include "vl/vl_status.h"   /* VL_OK, VL_ERR_* */

int vl_nlsi(const vl_problem *P, vl_result **out, char *errbuf, size_t errlen);
void vl_result_free(vl_result *R);

/* SPM's regularised Gauss-Newton step (spm_dx): for gradient g and
 * curvature H (n x n row-major), dx = (expm(tH) - I) H^-1 g with
 * t = exp(lograte - logdet(H)/n); a Newton step when t > exp(16).
 * Returns 0, -1 on numerical failure, -2 when out of memory. */
int vl_dx(const double *H, const double *g, int n, double lograte,
          double *dx);

#endif
