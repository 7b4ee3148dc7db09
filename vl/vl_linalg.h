/* vl_linalg.h — dense linear algebra the inversion scheme leans on.
 *
 * Contract
 * - Matrices are plain arrays of doubles, n x n, stored contiguously.
 *   vl_expm does not care whether the caller thinks row- or column-major
 *   (expm(A') = expm(A)'), the others say which they expect.
 * - Workspaces are explicit: allocate once for a size, reuse, free.
 * - No global state; every function is safe to call from several threads
 *   on distinct workspaces.
 * - Status: functions that can fail return a vl_status (vl/vl_status.h):
 *   VL_OK, VL_ERR_NONFINITE (NaN/Inf input, singular or failed
 *   factorisation) or VL_ERR_NOMEM. vl_logdet* return NaN on failure.
 */
#ifndef VL_LINALG_H
#define VL_LINALG_H

#include <stddef.h>

#include "vl/vl_status.h"

/* Switch GSL's abort-on-error handler off (once per process; thread-safe).
 * Every public entry point that may reach GSL calls it; callers may too. */
void vl_init(void);

/* printf into the caller's error buffer buf[len] (nothing when buf is NULL
 * or len 0): how the engine's entry points say what went wrong */
void vl_set_err(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

typedef struct vl_expm_work vl_expm_work;

/* Workspace for matrix exponentials of order up to n. */
vl_expm_work *vl_expm_alloc(int n);
void vl_expm_free(vl_expm_work *w);

/* E = expm(A) for an n x n matrix (n <= the workspace's order) by a
 * (6,6) Pade approximant with scaling and squaring (Golub & Van Loan,
 * Alg. 11.3.1): A is scaled by 2^-s so that its inf-norm is below 1/2.
 * A and E may not alias. Returns VL_OK, or VL_ERR_NONFINITE when A holds
 * NaN/Inf (or the Pade denominator is singular). */
int vl_expm(const double *A, int n, double *E, vl_expm_work *w);

/* Log-determinant with SPM's conventions (spm_logdet): rows/columns with
 * zero diagonal are dropped; a diagonal matrix contributes the log of its
 * diagonal entries that lie in (1e-16, 1e16); a symmetric positive definite
 * matrix its Cholesky log-determinant; otherwise the sum of the logs of the
 * singular values in (1e-16, 1e16). A is n x n, row-major. `work` needs
 * vl_logdet_work(n) doubles. Returns NaN if A holds NaN. */
size_t vl_logdet_work(int n);
double vl_logdet(const double *A, int n, double *work);

/* Inverse of a symmetric matrix regularised as SPM's spm_inv(A, tol):
 * (A + tol I)^-1, by Cholesky, or LU with partial pivoting when A + tol I
 * is not positive definite; tol < 0 selects spm_inv's default
 * max(eps(|A|_inf) n, exp(-32)). A (n x n, row-major) is overwritten and
 * symmetrised. Returns VL_OK, VL_ERR_NONFINITE if it is singular or holds
 * NaN/Inf, VL_ERR_NOMEM when out of memory (A is then left regularised but
 * not inverted). vl_inv_reg allocates its scratch on every call;
 * vl_inv_reg_ws uses a workspace of exactly order n. */
int vl_inv_reg(double *A, int n, double tol);

/* spm_inv's default regularisation of A (n x n): max(eps(|A|_inf) n,
 * exp(-32)), the tol vl_inv_reg takes when given tol < 0. */
double vl_inv_default_tol(const double *A, int n);
/* the same from |A|_inf (the largest absolute row sum), for a caller that
 * knows where A's zeros are */
double vl_inv_tol_of_norm(double norm, int n);

typedef struct vl_inv_work vl_inv_work;
vl_inv_work *vl_inv_alloc(int n);
void vl_inv_free(vl_inv_work *w);
int vl_inv_reg_ws(double *A, int n, double tol, vl_inv_work *w);

/* SPM's regularised Gauss-Newton step (spm_dx): for gradient g and
 * curvature H (n x n row-major), dx = (expm(tH) - I) H^-1 g with
 * t = exp(lograte - logdet(H)/n), taken from the first column of
 * expm([0 0; t g, t H]); a Newton step -H^+ g (pseudo-inverse over the
 * eigenvalues above n max|lambda| eps) when t > exp(16). Returns VL_OK,
 * VL_ERR_NONFINITE on numerical failure, VL_ERR_NOMEM. vl_dx allocates
 * its scratch on every call; vl_dx_ws uses a workspace of exactly order n
 * (allocate once, reuse for every step of that size). */
typedef struct vl_dx_work vl_dx_work;
vl_dx_work *vl_dx_alloc(int n);
void vl_dx_free(vl_dx_work *w);
int vl_dx_ws(const double *H, const double *g, int n, double lograte,
             double *dx, vl_dx_work *w);
int vl_dx(const double *H, const double *g, int n, double lograte,
          double *dx);

/* Log-determinant of a symmetric positive definite matrix via Cholesky;
 * returns NaN when it is not positive definite. A is not changed. */
double vl_logdet_spd(const double *A, int n, double *work);

#endif
