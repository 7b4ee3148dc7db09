/* vl_nlsi.h — variational Laplace inversion of a nonlinear model: an
 * engine that models plug into (docs/ARCHITECTURE.md, "The seam a new model implements").
 *
 * Contract
 * - The engine knows nothing about brains. A model (vl_model) is: a
 *   Gaussian prior over np parameters, a function from a parameter vector
 *   to a predicted data vector of ny values (real, or complex), optionally
 *   its Jacobian, and the precision components of its noise. Data are
 *   modelled as
 *       y = g(theta) + X0 beta + e,   e ~ N(0, Sigma(h)),
 *   Sigma(h)^-1 = sum_i (exp(-32) + exp(h_i)) Q_i with diagonal precision
 *   components Q_i, log-normal hyperpriors on h, and confound coefficients
 *   beta with a flat prior (precision 1e-8), X0 acting on each block of nb
 *   samples.
 * - The scheme is SPM12's (spm_nlsi_GN): Gauss–Newton ascent of the
 *   negative free energy F in the eigen-subspace of the prior covariance,
 *   regularised Levenberg–Marquardt style by a matrix-exponential step
 *   whose log-rate grows on success and shrinks on failure; Fisher scoring
 *   of h in an inner loop; convergence when the predicted increase of F
 *   stays below 0.1 for four iterations.
 * - Complex data (complex_data = 1): y, the prediction and the Jacobian's
 *   rows hold (re, im) pairs, interleaved as C99's double complex arrays.
 *   As SPM does, every quadratic form takes its real part (e^H iS e,
 *   J^H iS J, J^H iS e), so real and imaginary parts act as two
 *   observations with the same precision, while log|iS|, tr(P_i S) and the
 *   ny log(2 pi) of the Gaussian normalisation count each complex value
 *   once. Q and w are per value (ny). Confounds are real-only: with complex
 *   data nx0 must be 0.
 * - Two ways in: the driver vl_nlsi() runs a whole inversion; or
 *   vl_engine_alloc / vl_engine_init / vl_engine_iterate / vl_engine_result
 *   / vl_engine_free for a caller that wants to own the loop (GSL's
 *   multifit_nlinear and SUNDIALS CVODE are the model). The engine
 *   allocates all its workspaces in vl_engine_alloc; an iteration does not
 *   allocate (GSL's eigen/SVD routines aside).
 * - Threads: no global state. One engine per thread; callbacks receive the
 *   model's user pointer and must be safe to call from the thread that
 *   runs the engine (distinct engines may run concurrently if their user
 *   data are distinct).
 * - Status: every function that can fail returns a vl_status
 *   (vl/vl_status.h) and, given an errbuf, a message in the engine's own
 *   terms (the model's owner adds what its user should check).
 */
#ifndef VL_NLSI_H
#define VL_NLSI_H

#include <stddef.h>

#include "vl/vl_linalg.h"   /* vl_dx, vl_expm, vl_logdet, vl_inv_reg */
#include "vl/vl_status.h"   /* VL_OK, VL_ERR_* */

/* Predict the data (ny doubles, or 2 ny interleaved re/im for complex
 * data) at theta (np). Return 0 on success, > 0 for a prediction that is
 * usable but flagged (e.g. an integrator that stopped early), < 0 when no
 * prediction could be made. */
typedef int (*vl_predict_fn)(void *user, const double *theta, double *y);

/* Optional analytic Jacobian: dfdtheta (rows x np, row-major, rows = ny
 * or 2 ny for complex data; row r is d y_r / d theta) at theta, where f is
 * the prediction at theta just computed by predict. Return 0, or < 0 when
 * it cannot be evaluated (treated like a failed prediction). Without it
 * the engine takes SPM's forward differences (step exp(-8)) along the
 * prior's eigen-directions. */
typedef int (*vl_jacobian_fn)(void *user, const double *theta, const double *f,
                              double *dfdtheta);

/* Optional: the engine's own forward differences, done by the model (in
 * threads, say): for each direction i < nd, the column
 * D[r * ldd + i] = (f(theta + V[k * nd + i] h) - f_r) / h, h = exp(-8),
 * where theta2[k] = theta[k] + V[k * nd + i] * h exactly as the engine
 * forms it (V is np x nd, row-major: the prior's eigen-directions), so
 * that the columns are the engine's to the bit. Return 0, or < 0 as a
 * failed prediction. Used when jacobian is NULL. */
typedef int (*vl_jacobian_dirs_fn)(void *user, const double *theta, const double *f,
                                   const double *V, int nd, double *D, int ldd);

/* Called by the driver after every iteration: F of the kept estimate,
 * predicted increase of the next step, whether this iteration's F was
 * accepted. Return 0 to go on; non-zero stops the fit: vl_nlsi then
 * returns VL_OK with the kept estimate and result->stopped = 1. */
typedef int (*vl_progress_fn)(void *ctx, int iteration, double F,
                              double dF_predicted, int accepted);

/* The model: everything that does not change from one data set to the
 * next. Pointers are borrowed and must outlive the engine. */
typedef struct {
    int np;
    const double *pE;      /* np prior mean */
    const double *pV;      /* np prior variances (diagonal prior), or NULL */
    const double *pC;      /* np x np prior covariance (row-major), if pV NULL */
    int ny;                /* data values (complex values count once) */
    int complex_data;      /* 0: real data; 1: interleaved (re, im) pairs */
    vl_predict_fn predict; /* required */
    vl_jacobian_fn jacobian; /* optional, NULL: finite differences */
    vl_jacobian_dirs_fn jacobian_dirs; /* optional: those differences by the model */
    void *user;            /* passed to predict and jacobian */
    int nh;
    const double *Q;       /* nh x ny diagonals of the precision components */
    const double *hE;      /* nh hyperprior means (h starts here) */
    const double *hC;      /* nh hyperprior variances */
    int nb, nx0;           /* confounds X0: nb x nx0, column-major, applied */
    const double *X0;      /*   block-wise to each of the ny/nb blocks */
    int mstep_sums;        /* VL_MSTEP_AUTO (0), or force how the M-step sums */
} vl_model;

/* How the M-step forms J' iS J and tr(P_i S): over the data rows every
 * pass (the reference order), or over per-component Gram matrices made once
 * per Jacobian (cheap for large models; rounds differently). AUTO picks the
 * Gram matrices for many components or large row sums. */
enum { VL_MSTEP_AUTO = 0, VL_MSTEP_ROWS = 1, VL_MSTEP_GRAM = 2 };

/* One inversion for the driver: the model, the data and the options. */
typedef struct {
    vl_model model;
    const double *y;       /* ny data (2 ny for complex data) */
    const double *P0;      /* starting parameters, NULL for pE */
    int maxit;
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
    int stopped;           /* the progress callback asked to stop */
    int ntrace;
    double *F_trace;       /* kept F after each iteration (driver only) */
    double *y_pred;        /* g(Ep), ny (2 ny complex) */
    double *y_conf;        /* X0 beta, ny (2 ny complex, zero) */
    int predict_flag;      /* the predict return value at Ep */
} vl_result;

/* The driver: alloc, init, iterate until convergence, maxit or a stop
 * from the progress callback, result, free. */
int vl_nlsi(const vl_problem *P, vl_result **out, char *errbuf, size_t errlen);
void vl_result_free(vl_result *R);

/* ---- the engine, step by step ---- */

typedef struct vl_engine vl_engine;

/* After each vl_engine_iterate. */
typedef struct {
    int iteration;         /* iterations done */
    double F;              /* F of the kept (best accepted) estimate */
    double F_current;      /* F at this iteration's parameters */
    double dF_predicted;   /* predicted increase of the step just taken */
    int accepted;          /* this iteration's F was accepted */
    int converged;         /* dF_predicted < 0.1 four times in a row */
    int mstep_path;        /* how the last M-step pass inverted the posterior
                              precision: VL_MSTEP_PATH_* */
} vl_state;

/* The posterior precision, inverted whole (spm_inv: Cholesky, else LU);
 * as an arrow (confound blocks no component couples: block Cholesky
 * factors and the Schur complement of the parameter block); or as an
 * arrow whose blocks each belong to one component and are diagonal in the
 * eigenvectors of that component's (constant) confound Gram matrix. The
 * same numbers to rounding; diagnostics and tests. */
enum { VL_MSTEP_PATH_WHOLE = 0, VL_MSTEP_PATH_ARROW = 1, VL_MSTEP_PATH_ARROW_DIAG = 2 };

/* Check the model, find the prior's eigen-subspace and allocate every
 * workspace. On failure *out is NULL. */
int vl_engine_alloc(const vl_model *model, vl_engine **out, char *errbuf, size_t errlen);
/* Start (or restart) at P0 (NULL: the prior mean) with h = hE and the
 * confounds' least-squares fit to y (borrowed until the next init). */
int vl_engine_init(vl_engine *E, const double *y, const double *P0,
                   char *errbuf, size_t errlen);
/* One iteration: prediction and Jacobian (backing off on failure), M-step,
 * F, accept or reject, Levenberg–Marquardt step. */
int vl_engine_iterate(vl_engine *E, char *errbuf, size_t errlen);
const vl_state *vl_engine_state(const vl_engine *E);
/* The kept estimate as a result (F_trace empty, stopped 0: the driver's);
 * VL_ERR_INPUT before the first iteration. */
int vl_engine_result(vl_engine *E, vl_result **out, char *errbuf, size_t errlen);
void vl_engine_free(vl_engine *E);

#endif
