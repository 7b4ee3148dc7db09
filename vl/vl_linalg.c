/* vl_linalg.c — matrix exponential, log-determinants and inverses. */
#include "vl/vl_linalg.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_permutation.h>
#include <gsl/gsl_vector.h>
#include <pthread.h>

static pthread_once_t gsl_handler_once = PTHREAD_ONCE_INIT;

static void turn_off_gsl_aborts(void)
{
    gsl_set_error_handler_off();
}

/* GSL aborts on a failed factorisation by default; we test return codes
   instead. The handler is process-wide, so it is switched off exactly once. */
void vl_init(void)
{
    pthread_once(&gsl_handler_once, turn_off_gsl_aborts);
}

void vl_set_err(char *buf, size_t len, const char *fmt, ...)
{
    if (!buf || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

struct vl_expm_work {
    int n;
    double *X, *T, *Nm, *Dm;
    gsl_permutation *perm;
};

vl_expm_work *vl_expm_alloc(int n)
{
    vl_expm_work *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    size_t nn = (size_t)n * n;
    w->n = n;
    w->X = malloc(nn * sizeof(double));
    w->T = malloc(nn * sizeof(double));
    w->Nm = malloc(nn * sizeof(double));
    w->Dm = malloc(nn * sizeof(double));
    w->perm = gsl_permutation_alloc((size_t)n);
    if (!w->X || !w->T || !w->Nm || !w->Dm || !w->perm) {
        vl_expm_free(w);
        return NULL;
    }
    return w;
}

void vl_expm_free(vl_expm_work *w)
{
    if (!w)
        return;
    free(w->X);
    free(w->T);
    free(w->Nm);
    free(w->Dm);
    if (w->perm)
        gsl_permutation_free(w->perm);
    free(w);
}

static void matmul(const double *A, const double *B, double *C, int n)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, A,
                n, B, n, 0.0, C, n);
}

int vl_expm(const double *A, int n, double *E, vl_expm_work *w)
{
    const int q = 6;
    const size_t nn = (size_t)n * n;
    double norm = 0.0;
    for (int i = 0; i < n; i++) {
        double r = 0.0;
        for (int j = 0; j < n; j++)
            r += fabs(A[i * n + j]);
        if (!isfinite(r)) /* NaN compares false below: test each row */
            return VL_ERR_NONFINITE;
        if (r > norm)
            norm = r;
    }
    /* scale so that |A/2^s| < 1/2, where the (6,6) Pade approximant is
       accurate to double precision */
    int e = 0;
    (void)frexp(norm, &e);
    int s = e + 1 > 0 ? e + 1 : 0;
    double scale = ldexp(1.0, -s);
    for (size_t k = 0; k < nn; k++)
        w->X[k] = A[k] * scale;
    memcpy(w->T, w->X, nn * sizeof(double)); /* T holds the scaled A */
    /* N = I + c1 X + c2 X^2 ..., D = I - c1 X + c2 X^2 ... */
    double c = 0.5;
    for (size_t k = 0; k < nn; k++) {
        w->Nm[k] = c * w->T[k];
        w->Dm[k] = -c * w->T[k];
    }
    for (int i = 0; i < n; i++) {
        w->Nm[i * n + i] += 1.0;
        w->Dm[i * n + i] += 1.0;
    }
    int positive = 1;
    for (int k = 2; k <= q; k++) {
        c = c * (q - k + 1) / (k * (2.0 * q - k + 1));
        matmul(w->T, w->X, E, n); /* X <- A X, using E as scratch */
        memcpy(w->X, E, nn * sizeof(double));
        for (size_t l = 0; l < nn; l++) {
            double cx = c * w->X[l];
            w->Nm[l] += cx;
            w->Dm[l] += positive ? cx : -cx;
        }
        positive = !positive;
    }
    /* E = D \ N */
    gsl_matrix_view Dv = gsl_matrix_view_array(w->Dm, (size_t)n, (size_t)n);
    /* a permutation of order n over the workspace's (GSL insists that the
       sizes match, and n may be below the workspace's order) */
    gsl_permutation perm = {(size_t)n, w->perm->data};
    int sig;
    int rc = gsl_linalg_LU_decomp(&Dv.matrix, &perm, &sig);
    if (rc == 0) {
        gsl_matrix_view Nv = gsl_matrix_view_array(w->Nm, (size_t)n, (size_t)n);
        for (int j = 0; j < n; j++) {
            gsl_vector_view col = gsl_matrix_column(&Nv.matrix, (size_t)j);
            rc = gsl_linalg_LU_svx(&Dv.matrix, &perm, &col.vector);
            if (rc)
                break;
        }
    }
    if (rc)
        return VL_ERR_NONFINITE;
    memcpy(E, w->Nm, nn * sizeof(double));
    for (int k = 0; k < s; k++) {
        matmul(E, E, w->X, n);
        memcpy(E, w->X, nn * sizeof(double));
    }
    return VL_OK;
}

size_t vl_logdet_work(int n)
{
    return (size_t)n * n * 2 + 8 * (size_t)n + 64;
}

#define LOGDET_TOL 1e-16

double vl_logdet(const double *A, int n, double *work)
{
    /* keep rows/columns with a non-zero diagonal (SPM drops null variances);
       their indices live in the workspace's tail, past the two k x k
       matrices, so that a NaN result always means a NaN input */
    double *keep = work + 2 * (size_t)n * n;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (A[i * n + i] != 0.0)
            keep[k++] = i;
    double *C = work;
    int diagonal = 1, symmetric = 1;
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) {
            double a = A[(size_t)keep[i] * n + (size_t)keep[j]];
            if (isnan(a))
                return NAN;
            C[i * k + j] = a;
            if (i != j && a != 0.0)
                diagonal = 0;
        }
    double H = 0.0;
    if (diagonal) {
        for (int i = 0; i < k; i++) {
            double d = C[i * k + i];
            if (d > LOGDET_TOL && d < 1.0 / LOGDET_TOL)
                H += log(d);
        }
        return H;
    }
    for (int i = 0; i < k && symmetric; i++)
        for (int j = 0; j < i; j++)
            if (fabs(C[i * k + j] - C[j * k + i]) > LOGDET_TOL) {
                symmetric = 0;
                break;
            }
    gsl_matrix_view Cv = gsl_matrix_view_array(C, (size_t)k, (size_t)k);
    if (symmetric) {
        double *Ccopy = work + (size_t)k * k;
        memcpy(Ccopy, C, sizeof(double) * (size_t)k * k);
        gsl_matrix_view Cc = gsl_matrix_view_array(Ccopy, (size_t)k, (size_t)k);
        if (gsl_linalg_cholesky_decomp1(&Cc.matrix) == 0) {
            for (int i = 0; i < k; i++)
                H += 2.0 * log(Ccopy[i * k + i]);
            return H;
        }
        /* symmetric but not positive definite: singular values are the
           absolute eigenvalues */
        gsl_vector *ev = gsl_vector_alloc((size_t)k);
        gsl_eigen_symm_workspace *ew = gsl_eigen_symm_alloc((size_t)k);
        if (!ev || !ew) {
            gsl_vector_free(ev);
            if (ew)
                gsl_eigen_symm_free(ew);
            return NAN;
        }
        gsl_eigen_symm(&Cv.matrix, ev, ew);
        for (int i = 0; i < k; i++) {
            double s = fabs(gsl_vector_get(ev, (size_t)i));
            if (s > LOGDET_TOL && s < 1.0 / LOGDET_TOL)
                H += log(s);
        }
        gsl_vector_free(ev);
        gsl_eigen_symm_free(ew);
        return H;
    }
    gsl_matrix *Vm = gsl_matrix_alloc((size_t)k, (size_t)k);
    gsl_vector *sv = gsl_vector_alloc((size_t)k);
    gsl_vector *wk = gsl_vector_alloc((size_t)k);
    if (!Vm || !sv || !wk) {
        if (Vm)
            gsl_matrix_free(Vm);
        if (sv)
            gsl_vector_free(sv);
        if (wk)
            gsl_vector_free(wk);
        return NAN;
    }
    gsl_linalg_SV_decomp(&Cv.matrix, Vm, sv, wk);
    for (int i = 0; i < k; i++) {
        double s = gsl_vector_get(sv, (size_t)i);
        if (s > LOGDET_TOL && s < 1.0 / LOGDET_TOL)
            H += log(s);
    }
    gsl_matrix_free(Vm);
    gsl_vector_free(sv);
    gsl_vector_free(wk);
    return H;
}

static int finite_all(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

struct vl_inv_work {
    int n;
    double *B;             /* n x n copy for the LU fallback */
    gsl_permutation *perm;
};

vl_inv_work *vl_inv_alloc(int n)
{
    vl_inv_work *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->n = n;
    w->B = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1) * (size_t)(n > 0 ? n : 1));
    w->perm = gsl_permutation_alloc((size_t)(n > 0 ? n : 1));
    if (!w->B || !w->perm) {
        vl_inv_free(w);
        return NULL;
    }
    return w;
}

void vl_inv_free(vl_inv_work *w)
{
    if (!w)
        return;
    free(w->B);
    if (w->perm)
        gsl_permutation_free(w->perm);
    free(w);
}

double vl_inv_default_tol(const double *A, int n)
{
    double norm = 0.0;
    for (int i = 0; i < n; i++) {
        double r = 0.0;
        for (int j = 0; j < n; j++)
            r += fabs(A[i * n + j]);
        if (r > norm)
            norm = r;
    }
    return vl_inv_tol_of_norm(norm, n);
}

double vl_inv_tol_of_norm(double norm, int n)
{
    int e = 0;
    double spacing = 0.0;
    if (norm > 0) {
        (void)frexp(norm, &e); /* norm = f 2^e, f in [1/2, 1) */
        spacing = ldexp(1.0, e - 53);
    } else {
        spacing = DBL_TRUE_MIN;
    }
    return fmax(spacing * n, exp(-32.0));
}

int vl_inv_reg_ws(double *A, int n, double tol, vl_inv_work *w)
{
    vl_init();
    if (n <= 0)
        return VL_OK;
    if (!w || w->n != n)
        return VL_ERR_INPUT;
    const size_t nn = (size_t)n * n;
    if (!finite_all(A, nn))
        return VL_ERR_NONFINITE;
    if (tol < 0)
        tol = vl_inv_default_tol(A, n);
    double *B = w->B;
    for (int i = 0; i < n; i++)
        A[i * n + i] += tol;
    memcpy(B, A, sizeof(double) * nn);
    gsl_matrix_view Av = gsl_matrix_view_array(A, (size_t)n, (size_t)n);
    int rc = gsl_linalg_cholesky_decomp1(&Av.matrix);
    if (rc == 0)
        rc = gsl_linalg_cholesky_invert(&Av.matrix);
    if (rc != 0) {
        /* not positive definite: LU with partial pivoting, as inv() */
        memcpy(A, B, sizeof(double) * nn);
        gsl_matrix_view Bv = gsl_matrix_view_array(B, (size_t)n, (size_t)n);
        int sig = 0;
        rc = gsl_linalg_LU_decomp(&Bv.matrix, w->perm, &sig);
        if (rc == 0)
            rc = gsl_linalg_LU_invert(&Bv.matrix, w->perm, &Av.matrix);
    }
    if (rc != 0 || !finite_all(A, nn))
        return VL_ERR_NONFINITE;
    /* symmetrise away rounding */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++) {
            double v = 0.5 * (A[i * n + j] + A[j * n + i]);
            A[i * n + j] = A[j * n + i] = v;
        }
    return VL_OK;
}

int vl_inv_reg(double *A, int n, double tol)
{
    vl_init();
    if (n <= 0)
        return VL_OK;
    if (!finite_all(A, (size_t)n * n))
        return VL_ERR_NONFINITE;
    vl_inv_work *w = vl_inv_alloc(n);
    if (!w)
        return VL_ERR_NOMEM;
    int rc = vl_inv_reg_ws(A, n, tol, w);
    vl_inv_free(w);
    return rc;
}

double vl_logdet_spd(const double *A, int n, double *work)
{
    memcpy(work, A, sizeof(double) * (size_t)n * n);
    gsl_matrix_view Av = gsl_matrix_view_array(work, (size_t)n, (size_t)n);
    int rc = gsl_linalg_cholesky_decomp1(&Av.matrix);
    if (rc)
        return NAN;
    double H = 0.0;
    for (int i = 0; i < n; i++)
        H += 2.0 * log(work[i * n + i]);
    return H;
}

/* ---- SPM's spm_dx ---- */

struct vl_dx_work {
    int n;
    double *ldwork;        /* vl_logdet_work(n) */
    double *Aug, *E;       /* (n+1) x (n+1) */
    vl_expm_work *expm;    /* order n + 1 */
    gsl_matrix *A, *V;     /* Newton branch: eigensystem of H */
    gsl_vector *ev;
    gsl_eigen_symmv_workspace *ew;
    /* dx_symmetric: H = Q T Q' (LAPACK's dsytrd: Householder reflectors
       kept in S and tau), T = Z diag(lam) Z' (dstedc, divide and conquer,
       into Z); the step needs Q only on vectors (dormtr), so the n^3 back
       transformation of all eigenvectors (dsyevd's) is never made: ~1.4x
       at order 72, ~3.5x at 278. Hs is the H that S, tau, Z, lam belong
       to: the engine asks again with the same curvature after a rejected
       step (only the rate changes), and then nothing is decomposed. */
    double *S, *Z, *Hs, *lam, *tau, *offd, *u, *lwork;
    int *iwork, nlwork, niwork, have_eig;
};

extern void dsytrd_(const char *uplo, const int *n, double *a, const int *lda, double *d,
                    double *e, double *tau, double *work, const int *lwork, int *info);
extern void dstedc_(const char *compz, const int *n, double *d, double *e, double *z,
                    const int *ldz, double *work, const int *lwork, int *iwork,
                    const int *liwork, int *info);
extern void dormtr_(const char *side, const char *uplo, const char *trans, const int *m,
                    const int *n, double *a, const int *lda, const double *tau, double *c,
                    const int *ldc, double *work, const int *lwork, int *info);

vl_dx_work *vl_dx_alloc(int n)
{
    if (n < 1)
        return NULL;
    vl_dx_work *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    const size_t N = (size_t)n + 1;
    w->n = n;
    w->ldwork = malloc(sizeof(double) * vl_logdet_work(n));
    w->Aug = malloc(sizeof(double) * N * N);
    w->E = malloc(sizeof(double) * N * N);
    w->expm = vl_expm_alloc(n + 1);
    w->A = gsl_matrix_alloc((size_t)n, (size_t)n);
    w->V = gsl_matrix_alloc((size_t)n, (size_t)n);
    w->ev = gsl_vector_alloc((size_t)n);
    w->ew = gsl_eigen_symmv_alloc((size_t)n);
    /* workspace: dstedc's minimum for COMPZ = I, or dsytrd's / dormtr's
       (one column) optimum when larger (asked once here) */
    w->nlwork = 1 + 4 * n + n * n;
    w->niwork = 3 + 5 * n;
    {
        int lq = -1, info = 0, one = 1;
        double q = 0.0, d = 0.0, e = 0.0, t = 0.0, a = 0.0, c = 0.0;
        dsytrd_("L", &n, &a, &n, &d, &e, &t, &q, &lq, &info);
        if (info == 0 && q > w->nlwork)
            w->nlwork = (int)q;
        dormtr_("L", "L", "T", &n, &one, &a, &n, &t, &c, &n, &q, &lq, &info);
        if (info == 0 && q > w->nlwork)
            w->nlwork = (int)q;
    }
    w->S = malloc(sizeof(double) * (size_t)n * n);
    w->Z = malloc(sizeof(double) * (size_t)n * n);
    w->Hs = malloc(sizeof(double) * (size_t)n * n);
    w->lam = malloc(sizeof(double) * (size_t)n);
    w->tau = malloc(sizeof(double) * (size_t)n);
    w->offd = malloc(sizeof(double) * (size_t)n);
    w->u = malloc(sizeof(double) * (size_t)n);
    w->lwork = malloc(sizeof(double) * (size_t)w->nlwork);
    w->iwork = malloc(sizeof(int) * (size_t)w->niwork);
    if (!w->S || !w->Z || !w->Hs || !w->lam || !w->tau || !w->offd || !w->u || !w->lwork ||
        !w->iwork) {
        vl_dx_free(w);
        return NULL;
    }
    if (!w->ldwork || !w->Aug || !w->E || !w->expm || !w->A || !w->V || !w->ev || !w->ew) {
        vl_dx_free(w);
        return NULL;
    }
    return w;
}

void vl_dx_free(vl_dx_work *w)
{
    if (!w)
        return;
    free(w->ldwork);
    free(w->Aug);
    free(w->E);
    vl_expm_free(w->expm);
    if (w->A) gsl_matrix_free(w->A);
    if (w->V) gsl_matrix_free(w->V);
    if (w->ev) gsl_vector_free(w->ev);
    if (w->ew) gsl_eigen_symmv_free(w->ew);
    free(w->S);
    free(w->Z);
    free(w->Hs);
    free(w->tau);
    free(w->offd);
    free(w->u);
    free(w->lam);
    free(w->lwork);
    free(w->iwork);
    free(w);
}

/* dx = -H^+ g via the symmetric eigensystem */
static int dx_newton(const double *H, const double *g, int n, double *dx, vl_dx_work *w)
{
    memcpy(w->A->data, H, sizeof(double) * (size_t)n * n);
    gsl_eigen_symmv(w->A, w->ev, w->V, w->ew);
    double emax = 0.0;
    for (int i = 0; i < n; i++)
        emax = fmax(emax, fabs(gsl_vector_get(w->ev, (size_t)i)));
    double tol = n * emax * DBL_EPSILON;
    for (int i = 0; i < n; i++)
        dx[i] = 0.0;
    for (int k = 0; k < n; k++) {
        double lam = gsl_vector_get(w->ev, (size_t)k);
        if (fabs(lam) <= tol)
            continue;
        double proj = 0.0;
        for (int i = 0; i < n; i++)
            proj += gsl_matrix_get(w->V, (size_t)i, (size_t)k) * g[i];
        for (int i = 0; i < n; i++)
            dx[i] -= gsl_matrix_get(w->V, (size_t)i, (size_t)k) * proj / lam;
    }
    return VL_OK;
}

#define DX_GENERAL 1

/* The eigensystem of a symmetric H (n x n, either layout): eigenvalues
 * in w->lam, H = Q Z diag(lam) Z' Q' with Q's reflectors in S, tau and Z
 * in w->Z (column-major). Kept while H stays the same. 0, or -1 when
 * LAPACK fails. */
static int sym_eigensystem(const double *H, int n, vl_dx_work *w)
{
    const size_t nn = (size_t)n * n;
    if (w->have_eig && !memcmp(w->Hs, H, sizeof(double) * nn))
        return 0;
    w->have_eig = 0;
    memcpy(w->S, H, sizeof(double) * nn);
    int info = 0;
    dsytrd_("L", &n, w->S, &n, w->lam, w->offd, w->tau, w->lwork, &w->nlwork, &info);
    if (info == 0)
        dstedc_("I", &n, w->lam, w->offd, w->Z, &n, w->lwork, &w->nlwork, w->iwork,
                &w->niwork, &info);
    if (info != 0)
        return -1;
    memcpy(w->Hs, H, sizeof(double) * nn);
    w->have_eig = 1;
    return 0;
}

/* x <- Q' x (trans "T") or Q x ("N"), Q from sym_eigensystem */
static int sym_apply_q(const char *trans, int n, double *x, vl_dx_work *w)
{
    int one = 1, info = 0;
    dormtr_("L", "L", trans, &n, &one, w->S, &n, w->tau, x, &n, w->lwork, &w->nlwork, &info);
    return info;
}

/* spm_dx for an exactly symmetric H with a non-zero diagonal (the
 * engine's curvature), from one eigensystem H = V diag(lam) V' (V = Q Z,
 * sym_eigensystem): the singular values SPM's logdet takes are |lam|,
 * and the first column of expm([0 0; t g, t H]) is
 * V diag(expm1(t lam) / lam) V' g, so neither the SVD nor the
 * (n+1)-order exponential is needed (O(n^3) once instead of ~15
 * products; the same step to rounding). Returns DX_GENERAL when H is not
 * of that kind (vl_dx_ws then goes SPM's way). */
static int dx_symmetric(const double *H, const double *g, int n, double lograte, double *dx,
                        vl_dx_work *w)
{
    for (int i = 0; i < n; i++) {
        if (!(H[(size_t)i * n + i] != 0.0) || !isfinite(H[(size_t)i * n + i]))
            return DX_GENERAL;
        for (int j = 0; j < i; j++)
            if (H[(size_t)i * n + j] != H[(size_t)j * n + i] || !isfinite(H[(size_t)i * n + j]))
                return DX_GENERAL;
    }
    if (sym_eigensystem(H, n, w))
        return DX_GENERAL;
    const double *Z = w->Z, *lamv = w->lam;
    /* vl_logdet's cases: a diagonal H counts its entries in (TOL, 1/TOL)
       with their signs, a positive definite one (Cholesky) every
       eigenvalue, any other the |eigenvalues| in (TOL, 1/TOL) (SVD) */
    int diagonal = 1, positive = 1;
    for (int i = 0; i < n && diagonal; i++)
        for (int j = 0; j < n; j++)
            if (i != j && H[(size_t)i * n + j] != 0.0) {
                diagonal = 0;
                break;
            }
    for (int k = 0; k < n; k++)
        positive = positive && lamv[k] > 0.0;
    double ld = 0.0;
    for (int k = 0; k < n; k++) {
        double s = diagonal ? H[(size_t)k * n + k] : fabs(lamv[k]);
        if ((positive && !diagonal) || (s > LOGDET_TOL && s < 1.0 / LOGDET_TOL))
            ld += log(s);
    }
    const double t = exp(lograte - ld / n);
    const int newton = t > exp(16.0);
    double emax = 0.0;
    for (int i = 0; i < n; i++)
        emax = fmax(emax, fabs(lamv[i]));
    const double tol = n * emax * DBL_EPSILON;
    /* dx = Q Z f(lam) Z' Q' g */
    double *u = w->u;
    memcpy(dx, g, sizeof(double) * (size_t)n);
    if (sym_apply_q("T", n, dx, w))
        return DX_GENERAL;
    for (int k = 0; k < n; k++) {
        const double lam = lamv[k];
        double f;
        if (newton) {   /* dx_newton's pseudo-inverse */
            f = fabs(lam) <= tol ? 0.0 : -1.0 / lam;
        } else {
            f = lam != 0.0 ? expm1(t * lam) / lam : t;
        }
        double proj = 0.0;
        for (int i = 0; i < n; i++)
            proj += Z[(size_t)i + (size_t)k * n] * dx[i];
        u[k] = proj * f;
    }
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int k = 0; k < n; k++)
            s += Z[(size_t)i + (size_t)k * n] * u[k];
        dx[i] = s;
    }
    if (sym_apply_q("N", n, dx, w))
        return DX_GENERAL;
    for (int i = 0; i < n; i++)
        if (!isfinite(dx[i]))
            return VL_ERR_NONFINITE;
    return VL_OK;
}

int vl_dx_ws(const double *H, const double *g, int n, double lograte,
             double *dx, vl_dx_work *w)
{
    if (!w || w->n != n)
        return VL_ERR_INPUT;
    int rc = dx_symmetric(H, g, n, lograte, dx, w);
    if (rc != DX_GENERAL)
        return rc;
    double ld = vl_logdet(H, n, w->ldwork);
    if (isnan(ld))
        return VL_ERR_NONFINITE;
    double t = exp(lograte - ld / n);
    if (t > exp(16.0))
        return dx_newton(H, g, n, dx, w);
    /* expm([0 0; t g, t H]) carries (expm(tH) - I) H^-1 g in its first
       column: a step that moves from gradient ascent (small t) to a full
       Newton step (large t) without ever inverting H. */
    const int N = n + 1;
    memset(w->Aug, 0, sizeof(double) * (size_t)N * N);
    for (int i = 0; i < n; i++) {
        w->Aug[(i + 1) * N] = t * g[i];
        for (int j = 0; j < n; j++)
            w->Aug[(i + 1) * N + j + 1] = t * H[i * n + j];
    }
    if (vl_expm(w->Aug, N, w->E, w->expm) != VL_OK)
        return VL_ERR_NONFINITE;
    for (int i = 0; i < n; i++)
        dx[i] = w->E[(i + 1) * N];
    return VL_OK;
}

int vl_dx(const double *H, const double *g, int n, double lograte, double *dx)
{
    vl_init();
    vl_dx_work *w = vl_dx_alloc(n);
    if (!w)
        return n < 1 ? VL_ERR_INPUT : VL_ERR_NOMEM;
    int rc = vl_dx_ws(H, g, n, lograte, dx, w);
    vl_dx_free(w);
    return rc;
}
