/* model_csd.c — the data feature and the generative model of spectral DCM
 * (see model_csd.h). */
#include "models/model_csd.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_blas.h>
#include <gsl/gsl_cblas.h>
#include <gsl/gsl_complex.h>
#include <gsl/gsl_complex_math.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_permutation.h>
#include <gsl/gsl_vector.h>

#include "models/model_dcm.h"
#include "vl/vl_linalg.h"

#define TWO_PI (2.0 * M_PI)

/* a CSD element: frequency w, row i, column j */
#define CSD(x, nw, n, w, i, j) ((x)[(w) + (size_t)(nw) * ((i) + (size_t)(n) * (j))])


/* GSL's complex element as a C99 complex (and back). */
static double complex to_c99(gsl_complex z)
{
    return GSL_REAL(z) + I * GSL_IMAG(z);
}

static double complex mget(const gsl_matrix_complex *M, int i, int j)
{
    return to_c99(gsl_matrix_complex_get(M, (size_t)i, (size_t)j));
}

void model_csd_layout_init(model_csd_layout *L, int n)
{
    L->n = n;
    L->off_A = 0;
    L->off_C = n * n;
    L->off_transit = L->off_C + n;
    L->off_decay = L->off_transit + n;
    L->off_epsilon = L->off_decay + 1;
    L->off_a = L->off_epsilon + 1;
    L->off_b = L->off_a + 2;
    L->off_c = L->off_b + 2;
    L->np = L->off_c + n;
}

void model_csd_frequencies(int scans, double TR, int nw, double *Hz)
{
    double lo = 1.0 / fmin(128.0, scans * TR);
    double hi = 1.0 / fmax(8.0, 2.0 * TR);
    for (int k = 0; k < nw; k++)
        Hz[k] = nw > 1 ? lo + (hi - lo) * k / (nw - 1) : lo;
}

void model_csd_priors(int n, const double *a, double *pE, double *pV)
{
    model_csd_layout L;
    model_csd_layout_init(&L, n);
    memset(pE, 0, sizeof(double) * (size_t)L.np);
    memset(pV, 0, sizeof(double) * (size_t)L.np);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++) {
            int on = i != j && a[i + j * n] != 0.0;
            pE[L.off_A + i + j * n] = on ? 1.0 / 128.0 : 0.0;
            pV[L.off_A + i + j * n] = (on || i == j) ? 1.0 / 64.0 : 0.0;
        }
    /* C: the dummy input's weights stay at 0 (variance 0) */
    for (int i = 0; i < n; i++)
        pV[L.off_transit + i] = 1.0 / 256.0;
    pV[L.off_decay] = 1.0 / 256.0;
    pV[L.off_epsilon] = 1.0 / 256.0;
    for (int k = 0; k < 2; k++) {
        pV[L.off_a + k] = 1.0 / 64.0;
        pV[L.off_b + k] = 1.0 / 64.0;
    }
    for (int i = 0; i < n; i++)
        pV[L.off_c + i] = 1.0 / 64.0;
}

/* ---- the data feature: Bayesian MAR(p) ---- */

void model_csd_mar_free(model_csd_mar *mar)
{
    if (!mar)
        return;
    free(mar->lag);
    free(mar->noise_cov);
    mar->lag = mar->noise_cov = NULL;
}

static void set_err(char *buf, size_t len, const char *msg)
{
    if (buf && len) {
        strncpy(buf, msg, len - 1);
        buf[len - 1] = '\0';
    }
}

/* Invert a symmetric positive definite matrix in place; 0 or -1. */
static int spd_invert(gsl_matrix *A)
{
    if (gsl_linalg_cholesky_decomp1(A))
        return -1;
    return gsl_linalg_cholesky_invert(A) ? -1 : 0;
}

int model_csd_mar_fit(const double *Y, int T, int n, int p, model_csd_mar *mar,
                      char *errbuf, size_t errlen)
{
    memset(mar, 0, sizeof *mar);
    const int rows = T - p, k = p * n, nw = k * n;   /* nw: coefficients */
    if (n < 1 || p < 1 || rows <= k) {
        set_err(errbuf, errlen, "too few scans for the MAR model of the spectra "
                "(need more than order x (regions + 1))");
        return -1;
    }
    vl_init();
    int rc = -1;
    gsl_matrix *X = gsl_matrix_alloc((size_t)rows, (size_t)k);
    gsl_matrix *y = gsl_matrix_alloc((size_t)rows, (size_t)n);
    gsl_matrix *U = gsl_matrix_alloc((size_t)rows, (size_t)k);
    gsl_matrix *V = gsl_matrix_alloc((size_t)k, (size_t)k);
    gsl_vector *s = gsl_vector_alloc((size_t)k), *svw = gsl_vector_alloc((size_t)k);
    gsl_matrix *Wml = gsl_matrix_alloc((size_t)k, (size_t)n);
    gsl_matrix *W = gsl_matrix_alloc((size_t)k, (size_t)n);
    gsl_matrix *Wprev = gsl_matrix_alloc((size_t)k, (size_t)n);
    gsl_matrix *XX = gsl_matrix_alloc((size_t)k, (size_t)k);
    gsl_matrix *iXX = gsl_matrix_alloc((size_t)k, (size_t)k);
    gsl_matrix *E = gsl_matrix_alloc((size_t)n, (size_t)n);
    gsl_matrix *Lam = gsl_matrix_alloc((size_t)n, (size_t)n);
    gsl_matrix *res = gsl_matrix_alloc((size_t)rows, (size_t)n);
    gsl_matrix *Sw = gsl_matrix_alloc((size_t)nw, (size_t)nw);
    gsl_matrix *KL = gsl_matrix_alloc((size_t)nw, (size_t)nw);
    gsl_vector *b = gsl_vector_alloc((size_t)nw);
    mar->lag = calloc((size_t)p * n * n, sizeof(double));
    mar->noise_cov = calloc((size_t)n * n, sizeof(double));
    if (!X || !y || !U || !V || !s || !svw || !Wml || !W || !Wprev || !XX || !iXX || !E || !Lam ||
        !res || !Sw || !KL || !b || !mar->lag || !mar->noise_cov) {
        set_err(errbuf, errlen, "out of memory for the MAR model of the spectra");
        goto done;
    }
    mar->n = n;
    mar->p = p;
    /* regressors: row t holds [y_{t-1}, ..., y_{t-p}] */
    for (int t = 0; t < rows; t++) {
        for (int r = 0; r < n; r++)
            gsl_matrix_set(y, (size_t)t, (size_t)r, Y[(size_t)(t + p) + (size_t)T * r]);
        for (int l = 1; l <= p; l++)
            for (int r = 0; r < n; r++)
                gsl_matrix_set(X, (size_t)t, (size_t)((l - 1) * n + r),
                               Y[(size_t)(t + p - l) + (size_t)T * r]);
    }
    /* maximum likelihood by the pseudo-inverse (SVD) */
    gsl_matrix_memcpy(U, X);
    if (gsl_linalg_SV_decomp(U, V, s, svw)) {
        set_err(errbuf, errlen, "the SVD of the MAR design failed");
        goto done;
    }
    double tol = gsl_vector_get(s, 0) * DBL_EPSILON * k;
    gsl_matrix_set_zero(Wml);
    for (int c = 0; c < k; c++) {
        double sc = gsl_vector_get(s, (size_t)c);
        if (sc <= tol)
            continue;
        for (int r = 0; r < n; r++) {
            double uy = 0.0;
            for (int t = 0; t < rows; t++)
                uy += gsl_matrix_get(U, (size_t)t, (size_t)c) * gsl_matrix_get(y, (size_t)t, (size_t)r);
            for (int q = 0; q < k; q++)
                *gsl_matrix_ptr(Wml, (size_t)q, (size_t)r) += gsl_matrix_get(V, (size_t)q, (size_t)c) * uy / sc;
        }
    }
    /* ML residual covariance, divisor T */
    gsl_matrix_memcpy(res, y);
    gsl_blas_dgemm(CblasNoTrans, CblasNoTrans, -1.0, X, Wml, 1.0, res);
    gsl_blas_dgemm(CblasTrans, CblasNoTrans, 1.0 / T, res, res, 0.0, E);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++)
            mar->noise_cov[i + j * n] = gsl_matrix_get(E, (size_t)i, (size_t)j);
    /* start: w = W_ml, Sw = kron(noise_cov, inv(X'X)) */
    gsl_blas_dgemm(CblasTrans, CblasNoTrans, 1.0, X, X, 0.0, XX);
    gsl_matrix_memcpy(iXX, XX);
    if (spd_invert(iXX)) {
        set_err(errbuf, errlen, "the MAR design is singular (a region may be constant)");
        goto done;
    }
    gsl_matrix_memcpy(W, Wml);
    for (int bi = 0; bi < n; bi++)
        for (int bj = 0; bj < n; bj++)
            for (int q = 0; q < k; q++)
                for (int r = 0; r < k; r++)
                    gsl_matrix_set(Sw, (size_t)(bi * k + q), (size_t)(bj * k + r),
                                   mar->noise_cov[bi + bj * n] * gsl_matrix_get(iXX, (size_t)q, (size_t)r));
    const int maxit = 32;
    int it;
    for (it = 1; it <= maxit; it++) {
        /* the global shrinkage precision (Gamma posterior) */
        double ww = 0.0, trS = 0.0;
        for (int q = 0; q < k; q++)
            for (int r = 0; r < n; r++)
                ww += gsl_matrix_get(W, (size_t)q, (size_t)r) * gsl_matrix_get(W, (size_t)q, (size_t)r);
        for (int q = 0; q < nw; q++)
            trS += gsl_matrix_get(Sw, (size_t)q, (size_t)q);
        double b_alpha = 1.0 / (0.5 * ww + 0.5 * trS + 1.0 / 1000.0);
        double c_alpha = 0.5 * p * n * n + 0.001;
        double alpha = b_alpha * c_alpha;
        /* noise precision: expected residual sum of squares */
        gsl_matrix_memcpy(res, y);
        gsl_blas_dgemm(CblasNoTrans, CblasNoTrans, -1.0, X, W, 1.0, res);
        gsl_blas_dgemm(CblasTrans, CblasNoTrans, 1.0, res, res, 0.0, E);
        for (int bi = 0; bi < n; bi++)
            for (int bj = 0; bj < n; bj++) {
                double tr = 0.0;   /* tr(Sw[bi,bj] X'X) (raw rows: same sums, no accessors) */
                for (int q = 0; q < k; q++) {
                    const double *sw = Sw->data + (size_t)(bi * k + q) * Sw->tda + (size_t)bj * k;
                    for (int r = 0; r < k; r++)
                        tr += sw[r] * XX->data[(size_t)r * XX->tda + (size_t)q];
                }
                *gsl_matrix_ptr(E, (size_t)bi, (size_t)bj) += tr;
            }
        gsl_matrix_memcpy(Lam, E);
        if (spd_invert(Lam)) {
            set_err(errbuf, errlen, "the MAR noise covariance is singular");
            goto done;
        }
        gsl_matrix_scale(Lam, (double)T);
        if (it > 2) {
            double d2 = 0.0;
            for (int q = 0; q < k; q++)
                for (int r = 0; r < n; r++) {
                    double d = gsl_matrix_get(W, (size_t)q, (size_t)r) - gsl_matrix_get(Wprev, (size_t)q, (size_t)r);
                    d2 += d * d;
                }
            if (sqrt(d2) / (p * n * n) < 1e-4)
                break;
        }
        gsl_matrix_memcpy(Wprev, W);
        /* Sw = inv(kron(Lam, X'X) + alpha I); vec(w) = Sw kron(Lam, X'X) vec(W_ml) */
        for (int bi = 0; bi < n; bi++)
            for (int bj = 0; bj < n; bj++) {
                const double lij = gsl_matrix_get(Lam, (size_t)bi, (size_t)bj);
                for (int q = 0; q < k; q++) {
                    double *kl = KL->data + (size_t)(bi * k + q) * KL->tda + (size_t)bj * k;
                    const double *xx = XX->data + (size_t)q * XX->tda;
                    for (int r = 0; r < k; r++)
                        kl[r] = lij * xx[r];
                }
            }
        for (int q = 0; q < nw; q++) {
            double acc = 0.0;
            const double *kl = KL->data + (size_t)q * KL->tda;
            for (int r = 0; r < nw; r++)
                acc += kl[r] * Wml->data[(size_t)(r % k) * Wml->tda + (size_t)(r / k)];
            gsl_vector_set(b, (size_t)q, acc);
        }
        gsl_matrix_memcpy(Sw, KL);
        for (int q = 0; q < nw; q++)
            *gsl_matrix_ptr(Sw, (size_t)q, (size_t)q) += alpha;
        if (spd_invert(Sw)) {
            set_err(errbuf, errlen, "the MAR posterior covariance is singular");
            goto done;
        }
        for (int q = 0; q < nw; q++) {
            double acc = 0.0;
            const double *sw = Sw->data + (size_t)q * Sw->tda;
            for (int r = 0; r < nw; r++)
                acc += sw[r] * b->data[(size_t)r * b->stride];
            gsl_matrix_set(W, (size_t)(q % k), (size_t)(q / k), acc);
        }
    }
    mar->iterations = it > maxit ? maxit : it;
    /* lag matrices: a_l = -(rows of lag l of w)' */
    for (int l = 0; l < p; l++)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                mar->lag[(size_t)l * n * n + i + j * n] = -gsl_matrix_get(W, (size_t)(l * n + j), (size_t)i);
    rc = 0;
done:
    gsl_matrix_free(X);
    gsl_matrix_free(y);
    gsl_matrix_free(U);
    gsl_matrix_free(V);
    gsl_vector_free(s);
    gsl_vector_free(svw);
    gsl_matrix_free(Wml);
    gsl_matrix_free(W);
    gsl_matrix_free(Wprev);
    gsl_matrix_free(XX);
    gsl_matrix_free(iXX);
    gsl_matrix_free(E);
    gsl_matrix_free(Lam);
    gsl_matrix_free(res);
    gsl_matrix_free(Sw);
    gsl_matrix_free(KL);
    gsl_vector_free(b);
    if (rc)
        model_csd_mar_free(mar);
    return rc;
}

/* |z|^2 (orders like |z|, without hypot) and 1/z (without the C99
 * division's special-case handling: z is a non-zero pivot) */
static inline double cabs2(double complex z)
{
    return creal(z) * creal(z) + cimag(z) * cimag(z);
}

static inline double complex crecip(double complex z)
{
    double s = 1.0 / cabs2(z);
    return creal(z) * s - I * (cimag(z) * s);
}

/* Complex LU with partial pivoting (largest modulus) of the n x n
 * column-major A, in place; 0, or -1 when a pivot is 0. For the small
 * per-frequency systems: GSL's element accessors cost more than the
 * arithmetic at these sizes. */
static int clu_decomp(double complex *A, int n, int *piv)
{
    for (int k = 0; k < n; k++) {
        int p = k;
        double best = cabs2(A[k + (size_t)k * n]);
        for (int i = k + 1; i < n; i++) {
            double m = cabs2(A[i + (size_t)k * n]);
            if (m > best) {
                best = m;
                p = i;
            }
        }
        piv[k] = p;
        if (!(best > 0.0))
            return -1;
        if (p != k)
            for (int j = 0; j < n; j++) {
                double complex t = A[k + (size_t)j * n];
                A[k + (size_t)j * n] = A[p + (size_t)j * n];
                A[p + (size_t)j * n] = t;
            }
        double complex rd = crecip(A[k + (size_t)k * n]);
        for (int i = k + 1; i < n; i++)
            A[i + (size_t)k * n] *= rd;
        for (int j = k + 1; j < n; j++) {
            double complex akj = A[k + (size_t)j * n];
            if (akj == 0.0)
                continue;
            /* cj -= ck akj in real arithmetic (the product's formula, no
               C99 NaN-recovery branch: the loop vectorises) */
            const double ar = creal(akj), ai = cimag(akj);
            double *cj = (double *)(A + (size_t)j * n);
            const double *ck = (const double *)(A + (size_t)k * n);
            for (int i = k + 1; i < n; i++) {
                const double xr = ck[2 * i], xi = ck[2 * i + 1];
                cj[2 * i] -= xr * ar - xi * ai;
                cj[2 * i + 1] -= xr * ai + xi * ar;
            }
        }
    }
    return 0;
}

/* Solve LU x = b in place (b: n values), the factors of clu_decomp. */
static void clu_solve(const double complex *LU, int n, const int *piv, double complex *b)
{
    for (int k = 0; k < n; k++) {
        if (piv[k] != k) {
            double complex t = b[k];
            b[k] = b[piv[k]];
            b[piv[k]] = t;
        }
        const double br = creal(b[k]), bi = cimag(b[k]);
        const double *l = (const double *)(LU + (size_t)k * n);
        double *bb = (double *)b;
        for (int i = k + 1; i < n; i++) {
            bb[2 * i] -= l[2 * i] * br - l[2 * i + 1] * bi;
            bb[2 * i + 1] -= l[2 * i] * bi + l[2 * i + 1] * br;
        }
    }
    for (int k = n - 1; k >= 0; k--) {
        b[k] *= crecip(LU[k + (size_t)k * n]);
        const double br = creal(b[k]), bi = cimag(b[k]);
        const double *u = (const double *)(LU + (size_t)k * n);
        double *bb = (double *)b;
        for (int i = 0; i < k; i++) {
            bb[2 * i] -= u[2 * i] * br - u[2 * i + 1] * bi;
            bb[2 * i + 1] -= u[2 * i] * bi + u[2 * i + 1] * br;
        }
    }
}

/* Complex n x n inverse through LU (GSL), column by column with the
 * triangular solves (GSL's LU_invert goes through a zdotu that OpenBLAS
 * over-reads on small matrices); 0 or -1 when singular. M is overwritten;
 * out receives the inverse. */
static int complex_inverse(gsl_matrix_complex *M, gsl_matrix_complex *out, gsl_permutation *perm)
{
    int sign;
    if (gsl_linalg_complex_LU_decomp(M, perm, &sign))
        return -1;
    for (size_t i = 0; i < M->size1; i++)
        if (gsl_complex_abs(gsl_matrix_complex_get(M, i, i)) == 0.0)
            return -1;
    gsl_matrix_complex_set_identity(out);
    for (size_t j = 0; j < M->size2; j++) {
        gsl_vector_complex_view col = gsl_matrix_complex_column(out, j);
        if (gsl_linalg_complex_LU_svx(M, perm, &col.vector))
            return -1;
    }
    return 0;
}

/* Lower Cholesky factor of the symmetric n x n column-major C into Lc
 * (column-major, upper part zero); 0, or -1 when C is not positive
 * definite. */
static int real_cholesky(const double *C, int n, double *Lc)
{
    memset(Lc, 0, sizeof(double) * (size_t)n * n);
    for (int j = 0; j < n; j++) {
        double d = C[j + (size_t)j * n];
        for (int k = 0; k < j; k++)
            d -= Lc[j + (size_t)k * n] * Lc[j + (size_t)k * n];
        if (!(d > 0.0))
            return -1;
        d = sqrt(d);
        Lc[j + (size_t)j * n] = d;
        for (int i = j + 1; i < n; i++) {
            double s = C[i + (size_t)j * n];
            for (int k = 0; k < j; k++)
                s -= Lc[i + (size_t)k * n] * Lc[j + (size_t)k * n];
            Lc[i + (size_t)j * n] = s / d;
        }
    }
    return 0;
}

int model_csd_mar_spectra(const model_csd_mar *mar, const double *Hz, int nw, double dt,
                          double complex *csd)
{
    const int n = mar->n, p = mar->p;
    const size_t nn = (size_t)n * n;
    int rc = -1;
    double complex *M = malloc(sizeof(double complex) * nn);
    double complex *H = malloc(sizeof(double complex) * nn);
    double complex *HS = malloc(sizeof(double complex) * nn);
    double complex *phase = malloc(sizeof(double complex) * (size_t)(p > 0 ? p : 1));
    double *Lc = malloc(sizeof(double) * nn);
    int *piv = malloc(sizeof(int) * (size_t)n);
    if (!M || !H || !HS || !phase || !Lc || !piv)
        goto done;
    /* noise_cov = L L' (when positive definite): csd = 2 dt Z Z^H with
       Z = H L = (I + sum_k a_k e^{-2 pi i f k dt})^-1 L, half the work of
       forming H and H S H^H */
    const int chol = real_cholesky(mar->noise_cov, n, Lc) == 0;
    for (int w = 0; w < nw; w++) {
        /* exp(-2 pi i f k dt), once per frequency and lag (not per element) */
        for (int l = 0; l < p; l++)
            phase[l] = cexp(-I * TWO_PI * Hz[w] * (l + 1) * dt);
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++) {
                double complex z = i == j ? 1.0 : 0.0;
                for (int l = 0; l < p; l++)
                    z += mar->lag[(size_t)l * nn + i + (size_t)j * n] * phase[l];
                M[i + (size_t)j * n] = z;
            }
        if (clu_decomp(M, n, piv))
            goto done;
        if (chol) {
            for (int j = 0; j < n; j++) {
                double complex *zj = H + (size_t)j * n;
                for (int i = 0; i < n; i++)
                    zj[i] = Lc[i + (size_t)j * n];
                clu_solve(M, n, piv, zj);
            }
            for (int j = 0; j < n; j++)
                for (int i = 0; i <= j; i++) {
                    double complex acc = 0.0;
                    for (int c = 0; c < n; c++)
                        acc += H[i + (size_t)c * n] * conj(H[j + (size_t)c * n]);
                    CSD(csd, nw, n, w, i, j) = 2.0 * dt * acc;
                    CSD(csd, nw, n, w, j, i) = conj(2.0 * dt * acc);
                }
            continue;
        }
        /* H = inv(I + sum_k a_k e^{-2 pi i f k dt}) */
        for (int j = 0; j < n; j++) {
            double complex *hj = H + (size_t)j * n;
            for (int i = 0; i < n; i++)
                hj[i] = i == j ? 1.0 : 0.0;
            clu_solve(M, n, piv, hj);
        }
        /* csd = 2 dt (H S) H^H: n^3, not n^4 */
        for (int c = 0; c < n; c++)
            for (int i = 0; i < n; i++) {
                double complex acc = 0.0;
                for (int a2 = 0; a2 < n; a2++)
                    acc += H[i + (size_t)a2 * n] * mar->noise_cov[a2 + c * n];
                HS[i + (size_t)c * n] = acc;
            }
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++) {
                double complex acc = 0.0;
                for (int c = 0; c < n; c++)
                    acc += HS[i + (size_t)c * n] * conj(H[j + (size_t)c * n]);
                CSD(csd, nw, n, w, i, j) = 2.0 * dt * acc;
            }
    }
    rc = 0;
done:
    free(M);
    free(H);
    free(HS);
    free(phase);
    free(Lc);
    free(piv);
    return rc;
}

/* ---- the generative model ---- */

struct model_csd_work {
    int n, nw, nx, ar_order;
    double *Hz;
    model_csd_layout L;
    model_dcm *M;          /* one-state DCM with n inputs, C = I: the Jacobians */
    double *Pd;            /* its parameter vector */
    double *x0, *u0, *f, *fwork;
    double *dfdx, *dfdu, *dgdx, *g;
    double complex *S, *Gu, *Gn, *G;
    double *ccf;
    int N, L2;             /* csd2ccf bins and 2N+1 lags */
    double *twiddle;       /* 2nw x L2: rows 2w, 2w+1 = Re, -Im of exp(2 pi i bin
                              lag / L2), made once (csd_to_ccf's matrix product) */
    gsl_matrix_complex *K, *KZ;     /* nx x nx, nx x n */
    gsl_permutation *perm_x;
    gsl_matrix *Byw, *Ayw;          /* Yule-Walker: (p n) x (p n), (p n) x n */
    gsl_permutation *perm_yw;
    gsl_eigen_nonsymmv_workspace *eig;
    gsl_matrix *Jcopy;
    gsl_vector_complex *eval;
    gsl_matrix_complex *evec, *evec_inv, *evec_lu;
    gsl_permutation *perm_e;
    /* the block path of transfer_blocks: neuronal n x n, haemodynamic 4 x 4 */
    double complex *Kx, *Xx, *k4;
    double complex *Sf, *SGf;   /* one frequency's S and S Gu, row-major n x n */
    int *piv_x, piv4[4];
    gsl_matrix *Jx, *J4;
    gsl_vector_complex *evx, *ev4;
    gsl_eigen_nonsymm_workspace *eigx, *eig4;
    model_csd_mar ar;
};

void model_csd_work_free(model_csd_work *W)
{
    if (!W)
        return;
    free(W->Hz);
    model_dcm_free(W->M);
    free(W->Pd);
    free(W->x0);
    free(W->u0);
    free(W->f);
    free(W->fwork);
    free(W->dfdx);
    free(W->dfdu);
    free(W->dgdx);
    free(W->g);
    free(W->S);
    free(W->Gu);
    free(W->Gn);
    free(W->G);
    free(W->ccf);
    free(W->twiddle);
    gsl_matrix_complex_free(W->K);
    gsl_matrix_complex_free(W->KZ);
    gsl_permutation_free(W->perm_x);
    gsl_matrix_free(W->Byw);
    gsl_matrix_free(W->Ayw);
    gsl_permutation_free(W->perm_yw);
    if (W->eig)
        gsl_eigen_nonsymmv_free(W->eig);
    gsl_matrix_free(W->Jcopy);
    gsl_vector_complex_free(W->eval);
    gsl_matrix_complex_free(W->evec);
    gsl_matrix_complex_free(W->evec_inv);
    gsl_matrix_complex_free(W->evec_lu);
    gsl_permutation_free(W->perm_e);
    free(W->Kx);
    free(W->Xx);
    free(W->Sf);
    free(W->SGf);
    free(W->k4);
    free(W->piv_x);
    gsl_matrix_free(W->Jx);
    gsl_matrix_free(W->J4);
    gsl_vector_complex_free(W->evx);
    gsl_vector_complex_free(W->ev4);
    if (W->eigx)
        gsl_eigen_nonsymm_free(W->eigx);
    if (W->eig4)
        gsl_eigen_nonsymm_free(W->eig4);
    model_csd_mar_free(&W->ar);
    free(W);
}

model_csd_work *model_csd_work_alloc(int n, int nw, const double *Hz, int ar_order, double TE)
{
    if (n < 1 || nw < 2 || ar_order < 1)
        return NULL;
    vl_init();
    model_csd_work *W = calloc(1, sizeof *W);
    if (!W)
        return NULL;
    W->n = n;
    W->nw = nw;
    W->ar_order = ar_order;
    model_csd_layout_init(&W->L, n);
    const int nx = W->nx = 5 * n;
    const size_t nnw = (size_t)nw * n * n;
    W->Hz = malloc(sizeof(double) * (size_t)nw);
    W->M = model_dcm_alloc(n, n, 1, 0);
    if (!W->Hz || !W->M)
        goto fail;
    memcpy(W->Hz, Hz, sizeof(double) * (size_t)nw);
    W->M->TE = TE;
    W->M->TR = 1.0;   /* unused by the Jacobians */
    for (int k = 0; k < n * n; k++)
        W->M->a[k] = 1.0;
    for (int i = 0; i < n; i++)
        W->M->c[i + i * n] = 1.0;
    /* csd2ccf: dt = 1/(2 Hz_max), bins of width dw up to 1/(2 dt) */
    double dw = Hz[1] - Hz[0];
    double dtc = 1.0 / (2.0 * Hz[nw - 1]);
    W->N = (int)ceil((1.0 / dtc) / 2.0 / dw - 1e-9);
    int first = (int)ceil(Hz[0] / dw - 1e-9);
    if (W->N < 1 || first < 1 || first + nw - 1 > W->N)
        goto fail;
    W->L2 = 2 * W->N + 1;
    const int pn = ar_order * n;
    W->Pd = calloc((size_t)W->M->L.np, sizeof(double));
    W->x0 = calloc((size_t)nx, sizeof(double));
    W->u0 = calloc((size_t)n, sizeof(double));
    W->f = calloc((size_t)nx, sizeof(double));
    W->fwork = calloc(model_dcm_fx_work(W->M) + 1, sizeof(double));
    W->dfdx = calloc((size_t)nx * nx, sizeof(double));
    W->dfdu = calloc((size_t)nx * n, sizeof(double));
    W->dgdx = calloc((size_t)n * nx, sizeof(double));
    W->g = calloc((size_t)n, sizeof(double));
    W->S = calloc(nnw, sizeof(double complex));
    W->Gu = calloc(nnw, sizeof(double complex));
    W->Gn = calloc(nnw, sizeof(double complex));
    W->G = calloc(nnw, sizeof(double complex));
    W->ccf = calloc((size_t)W->L2 * n * n, sizeof(double));
    W->twiddle = malloc(sizeof(double) * 2 * (size_t)nw * W->L2);
    if (W->twiddle)
        for (int w = 0; w < nw; w++)
            for (int t = 0; t < W->L2; t++) {
                double complex z = cexp(I * TWO_PI * (double)(w + first) * (t - W->N) / W->L2);
                W->twiddle[(size_t)(2 * w) * W->L2 + t] = creal(z);
                W->twiddle[(size_t)(2 * w + 1) * W->L2 + t] = -cimag(z);
            }
    W->K = gsl_matrix_complex_alloc((size_t)nx, (size_t)nx);
    W->KZ = gsl_matrix_complex_alloc((size_t)nx, (size_t)n);
    W->perm_x = gsl_permutation_alloc((size_t)nx);
    W->Byw = gsl_matrix_alloc((size_t)pn, (size_t)pn);
    W->Ayw = gsl_matrix_alloc((size_t)pn, (size_t)n);
    W->perm_yw = gsl_permutation_alloc((size_t)pn);
    W->eig = gsl_eigen_nonsymmv_alloc((size_t)nx);
    W->Jcopy = gsl_matrix_alloc((size_t)nx, (size_t)nx);
    W->eval = gsl_vector_complex_alloc((size_t)nx);
    W->evec = gsl_matrix_complex_alloc((size_t)nx, (size_t)nx);
    W->evec_inv = gsl_matrix_complex_alloc((size_t)nx, (size_t)nx);
    W->evec_lu = gsl_matrix_complex_alloc((size_t)nx, (size_t)nx);
    W->perm_e = gsl_permutation_alloc((size_t)nx);
    W->Kx = malloc(sizeof(double complex) * (size_t)n * n);
    W->Sf = malloc(sizeof(double complex) * (size_t)n * n);
    W->SGf = malloc(sizeof(double complex) * (size_t)n * n);
    W->Xx = malloc(sizeof(double complex) * (size_t)n * n);
    W->k4 = malloc(sizeof(double complex) * 20);
    W->piv_x = malloc(sizeof(int) * (size_t)n);
    W->Jx = gsl_matrix_alloc((size_t)n, (size_t)n);
    W->J4 = gsl_matrix_alloc(4, 4);
    W->evx = gsl_vector_complex_alloc((size_t)n);
    W->ev4 = gsl_vector_complex_alloc(4);
    W->eigx = gsl_eigen_nonsymm_alloc((size_t)n);
    W->eig4 = gsl_eigen_nonsymm_alloc(4);
    if (!W->Kx || !W->Sf || !W->SGf || !W->Xx || !W->k4 || !W->piv_x || !W->Jx || !W->J4 || !W->evx || !W->ev4 ||
        !W->eigx || !W->eig4)
        goto fail;
    W->ar.n = n;
    W->ar.p = ar_order;
    W->ar.lag = calloc((size_t)ar_order * n * n, sizeof(double));
    W->ar.noise_cov = calloc((size_t)n * n, sizeof(double));
    if (!W->Pd || !W->x0 || !W->u0 || !W->f || !W->fwork || !W->dfdx || !W->dfdu || !W->dgdx ||
        !W->g || !W->S || !W->Gu || !W->Gn || !W->G || !W->ccf || !W->twiddle || !W->K || !W->KZ || !W->perm_x ||
        !W->Byw || !W->Ayw || !W->perm_yw || !W->eig || !W->Jcopy || !W->eval || !W->evec ||
        !W->evec_inv || !W->evec_lu || !W->perm_e || !W->ar.lag || !W->ar.noise_cov)
        goto fail;
    return W;
fail:
    model_csd_work_free(W);
    return NULL;
}

/* Any eigenvalue of the real m x m matrix A (gsl, destroyed) with real part
 * above -1/32? 1 yes, 0 no, -1 when the QR iteration failed. */
static int eig_above(gsl_matrix *A, gsl_vector_complex *ev, gsl_eigen_nonsymm_workspace *ws)
{
    if (gsl_eigen_nonsymm(A, ev, ws))
        return -1;
    for (size_t k = 0; k < ev->size; k++)
        if (creal(to_c99(gsl_vector_complex_get(ev, k))) > -1.0 / 32.0)
            return 1;
    return 0;
}

/* S(w) by blocks. The linearised one-state DCM is block-triangular: the
 * neuronal states (first n) do not depend on the haemodynamic ones, and
 * region r's four haemodynamic states (n + r, 2n + r, 3n + r, 4n + r)
 * depend only on each other and on neuronal state r, which is also all its
 * BOLD signal sees. So (2 pi i w - dfdx)^-1 eliminates into an n x n
 * neuronal system and n 4 x 4 ones: S(w)_ij = t_i(w) X(w)_ij with
 * X = (2 pi i w - Jxx)^-1 dfdu_x and t_i region i's haemodynamic transfer
 * function — the same solution as the 5n x 5n system for a fraction of
 * the work (the eigenvalues of dfdx are those of the blocks). Returns 1
 * when done, 0 when dfdx lacks this structure or an eigenvalue must be
 * conditioned (the caller then takes the general path), -1 when singular. */
static int transfer_blocks(model_csd_work *W)
{
    const int n = W->n, nx = W->nx, nw = W->nw;
    const double *J = W->dfdx;
    for (int j = 0; j < nx; j++)
        for (int i = 0; i < nx; i++) {
            if (J[i + (size_t)j * nx] == 0.0)
                continue;
            int ti = i / n, tj = j / n;
            if ((ti == 0 && tj > 0) || (ti > 0 && i % n != j % n))
                return 0;
        }
    for (int j = 0; j < n; j++)
        for (int i = n; i < nx; i++)
            if (W->dfdu[i + (size_t)j * nx] != 0.0)
                return 0;
    for (int c = 0; c < nx; c++)
        for (int i = 0; i < n; i++)
            if (W->dgdx[i + (size_t)c * n] != 0.0 && (c < n || c % n != i))
                return 0;
    /* eigenvalues: SPM conditions those with real part above -1/32 */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            gsl_matrix_set(W->Jx, (size_t)i, (size_t)j, J[i + (size_t)j * nx]);
    if (eig_above(W->Jx, W->evx, W->eigx))
        return 0;
    for (int r = 0; r < n; r++) {
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++)
                gsl_matrix_set(W->J4, (size_t)a, (size_t)b,
                               J[(size_t)(a + 1) * n + r + (size_t)((b + 1) * n + r) * nx]);
        if (eig_above(W->J4, W->ev4, W->eig4))
            return 0;
    }
    double complex *K = W->Kx, *X = W->Xx, *k4 = W->k4, *z = W->k4 + 16;
    for (int w = 0; w < nw; w++) {
        const double complex iw = I * TWO_PI * W->Hz[w];
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++)
                K[i + (size_t)j * n] = (i == j ? iw : 0.0) - J[i + (size_t)j * nx];
        if (clu_decomp(K, n, W->piv_x))
            return -1;
        for (int j = 0; j < n; j++) {
            double complex *xj = X + (size_t)j * n;
            for (int i = 0; i < n; i++)
                xj[i] = W->dfdu[i + (size_t)j * nx];
            clu_solve(K, n, W->piv_x, xj);
        }
        for (int r = 0; r < n; r++) {
            /* region r: z = (2 pi i w - H_r)^-1 dH_r/dx_r, t = dg_r/dH_r . z */
            for (int a = 0; a < 4; a++) {
                const size_t row = (size_t)(a + 1) * n + r;
                for (int b = 0; b < 4; b++)
                    k4[a + 4 * b] = (a == b ? iw : 0.0) - J[row + ((size_t)(b + 1) * n + r) * nx];
                z[a] = J[row + (size_t)r * nx];
            }
            if (clu_decomp(k4, 4, W->piv4))
                return -1;
            clu_solve(k4, 4, W->piv4, z);
            double complex t = 0.0;
            for (int a = 0; a < 4; a++)
                t += W->dgdx[r + ((size_t)(a + 1) * n + r) * n] * z[a];
            for (int j = 0; j < n; j++)
                CSD(W->S, nw, n, w, r, j) = t * X[r + (size_t)j * n];
        }
    }
    return 1;
}

/* Transfer functions S(w) = dgdx (2 pi i w I - dfdx)^-1 dfdu, through the
 * eigen-decomposition when an eigenvalue must be moved left (SPM caps the
 * real parts at -1/32). Returns the number moved, or -1. */
static int transfer_functions(model_csd_work *W)
{
    const int n = W->n, nx = W->nx, nw = W->nw;
    int fast = transfer_blocks(W);
    if (fast)
        return fast > 0 ? 0 : -1;
    /* eigenvalues of the Jacobian */
    for (int i = 0; i < nx; i++)
        for (int j = 0; j < nx; j++)
            gsl_matrix_set(W->Jcopy, (size_t)i, (size_t)j, W->dfdx[i + (size_t)j * nx]);
    if (gsl_eigen_nonsymmv(W->Jcopy, W->eval, W->evec, W->eig))
        return -1;
    int moved = 0;
    for (int k = 0; k < nx; k++)
        if (creal(to_c99(gsl_vector_complex_get(W->eval, (size_t)k))) > -1.0 / 32.0)
            moved++;
    if (moved) {
        /* S(w) = dgdx V diag(1/(2 pi i w - s)) V^-1 dfdu, s conditioned */
        int sign;
        gsl_matrix_complex_memcpy(W->evec_lu, W->evec);
        (void)sign;
        if (complex_inverse(W->evec_lu, W->evec_inv, W->perm_e))
            return -1;
        for (int w = 0; w < nw; w++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) {
                    double complex acc = 0.0;
                    for (int k = 0; k < nx; k++) {
                        double complex sk = to_c99(gsl_vector_complex_get(W->eval, (size_t)k));
                        double complex s = fmin(creal(sk), -1.0 / 32.0) + I * cimag(sk);
                        double complex gv = 0.0, vu = 0.0;
                        for (int a = 0; a < nx; a++) {
                            gv += W->dgdx[i + (size_t)a * n] * mget(W->evec, a, k);
                            vu += mget(W->evec_inv, k, a) * W->dfdu[a + (size_t)j * nx];
                        }
                        acc += gv * vu / (I * TWO_PI * W->Hz[w] - s);
                    }
                    CSD(W->S, nw, n, w, i, j) = acc;
                }
        return moved;
    }
    for (int w = 0; w < nw; w++) {
        for (int i = 0; i < nx; i++)
            for (int j = 0; j < nx; j++) {
                double re = -W->dfdx[i + (size_t)j * nx];
                double im = i == j ? TWO_PI * W->Hz[w] : 0.0;
                gsl_matrix_complex_set(W->K, (size_t)i, (size_t)j, gsl_complex_rect(re, im));
            }
        int sign;
        if (gsl_linalg_complex_LU_decomp(W->K, W->perm_x, &sign))
            return -1;
        for (int j = 0; j < n; j++) {
            gsl_vector_complex_view col = gsl_matrix_complex_column(W->KZ, (size_t)j);
            for (int i = 0; i < nx; i++)
                gsl_vector_complex_set(&col.vector, (size_t)i, gsl_complex_rect(W->dfdu[i + (size_t)j * nx], 0.0));
            if (gsl_linalg_complex_LU_svx(W->K, W->perm_x, &col.vector))
                return -1;
        }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double complex acc = 0.0;
                for (int a = 0; a < nx; a++) {
                    acc += W->dgdx[i + (size_t)a * n] * mget(W->KZ, a, j);
                }
                CSD(W->S, nw, n, w, i, j) = acc;
            }
    }
    return 0;
}

/* Spectra of the fluctuations (Gu, diagonal) and of the noise (Gn): power
 * laws in frequency normalised over the grid. */
static void fluctuation_spectra(model_csd_work *W, const double *P)
{
    const int n = W->n, nw = W->nw;
    const model_csd_layout *L = &W->L;
    double ea = exp(P[L->off_a + 1]), eb = exp(P[L->off_b + 1]);
    double su = 0.0, sn = 0.0;
    for (int w = 0; w < nw; w++) {
        su += pow(W->Hz[w], -ea);
        sn += pow(W->Hz[w], -eb / 2.0);
    }
    const double eab = exp(P[L->off_a]), ebb = exp(P[L->off_b]);
    for (int w = 0; w < nw; w++) {
        double gu = eab * pow(W->Hz[w], -ea) / su;
        double gn = pow(W->Hz[w], -eb / 2.0) / sn;
        for (int i = 0; i < n; i++) {
            const double eci = exp(P[L->off_c + i]);
            for (int j = 0; j < n; j++) {
                CSD(W->Gu, nw, n, w, i, j) = i == j ? gu : 0.0;
                CSD(W->Gn, nw, n, w, i, j) = ebb * gn + (i == j ? eci * gn : 0.0);
            }
        }
    }
}

/* Cross-correlation functions of a CSD on the frequency grid (SPM's
 * spm_csd2ccf): the spectrum is placed in bins of width dw and inverted
 * with a Hermitian-symmetric DFT of length 2N+1 (a direct sum: 2N+1 is
 * small, and the planner of an FFT library is not thread-safe). */
static void csd_to_ccf(model_csd_work *W, const double complex *G)
{
    const int n = W->n, nw = W->nw, N = W->N, L = W->L2;
    const double dw = W->Hz[1] - W->Hz[0];
    /* ccf[t + L ch] = 2 N dw / L sum_w Re(G[w, ch] e^{2 pi i (w + first)(t - N) / L}):
       Hz[w] sits in bin w + first of [0; g; flip(conj g)]. All channels at
       once as one product: (n^2 x 2nw, the CSD's interleaved re/im) times
       (2nw x L, the twiddles) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n * n, L, 2 * nw, 2.0 * N * dw / L,
                (const double *)G, 2 * nw, W->twiddle, L, 0.0, W->ccf, L);
}

/* Yule-Walker AR(p) fit of the cross-correlations at lags 0..p (SPM's
 * spm_ccf2mar): block-Toeplitz normal equations, lag matrices and noise. */
static int ccf_to_mar(model_csd_work *W)
{
    const int n = W->n, p = W->ar_order, N = W->N, L = W->L2;
#define CCF(lag, i, j) W->ccf[(N + (lag)) + (size_t)L * ((i) + (size_t)n * (j))]
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            for (int k = 0; k < p; k++) {
                gsl_matrix_set(W->Ayw, (size_t)(i * p + k), (size_t)j, CCF(k + 1, i, j));
                for (int l = 0; l < p; l++)
                    gsl_matrix_set(W->Byw, (size_t)(i * p + k), (size_t)(j * p + l),
                                   k >= l ? CCF(k - l, i, j) : CCF(l - k, j, i));
            }
        }
    int sign;
    if (gsl_linalg_LU_decomp(W->Byw, W->perm_yw, &sign))
        return -1;
    for (int k = 0; k < p * n; k++)
        if (gsl_matrix_get(W->Byw, (size_t)k, (size_t)k) == 0.0)
            return -1;
    /* noise_cov = ccf(0) - A' a, a = B \ A (solved column by column) */
    double *acol = malloc(sizeof(double) * (size_t)p * n);
    if (!acol)
        return -1;
    for (int j = 0; j < n; j++) {
        gsl_vector_view col = gsl_matrix_column(W->Ayw, (size_t)j);
        gsl_vector_view sol = gsl_vector_view_array(acol, (size_t)p * n);
        if (gsl_linalg_LU_solve(W->Byw, W->perm_yw, &col.vector, &sol.vector)) {
            free(acol);
            return -1;
        }
        for (int i = 0; i < n; i++) {
            double s = CCF(0, i, j);
            for (int q = 0; q < p * n; q++)
                s -= gsl_matrix_get(W->Ayw, (size_t)q, (size_t)i) * acol[q];
            W->ar.noise_cov[i + j * n] = s;
        }
        for (int i = 0; i < n; i++)
            for (int k = 0; k < p; k++)
                W->ar.lag[(size_t)k * n * n + i + j * n] = -acol[i * p + k];
    }
    free(acol);
#undef CCF
    return 0;
}

int model_csd_predict(model_csd_work *W, const double *P, double complex *csd,
                      model_csd_parts *parts)
{
    const int n = W->n, nw = W->nw, nx = W->nx;
    const model_csd_layout *L = &W->L;
    const model_dcm_layout *LD = &W->M->L;
    /* the DCM's parameters: A, B = 0, C = I, haemodynamics */
    memset(W->Pd, 0, sizeof(double) * (size_t)LD->np);
    for (int k = 0; k < n * n; k++)
        W->Pd[LD->off_A + k] = P[L->off_A + k];
    for (int i = 0; i < n; i++) {
        W->Pd[model_dcm_idx_C(LD, i, i)] = 1.0;
        W->Pd[LD->off_transit + i] = P[L->off_transit + i];
    }
    W->Pd[LD->off_decay] = P[L->off_decay];
    W->Pd[LD->off_epsilon] = P[L->off_epsilon];
    model_dcm_fx(W->M, W->Pd, W->x0, W->u0, W->f, W->dfdx, W->dfdu, W->fwork);
    model_dcm_gx(W->M, W->Pd, W->x0, W->g, W->dgdx);
    int moved = transfer_functions(W);
    if (moved < 0)
        return -1;
    fluctuation_spectra(W, P);
    /* G = S Gu S^H + Gn, one frequency at a time from contiguous copies
       (the products in the same order, in real arithmetic) */
    for (int w = 0; w < nw; w++) {
        for (int i = 0; i < n; i++)
            for (int a = 0; a < n; a++) {
                W->Sf[i * n + a] = CSD(W->S, nw, n, w, i, a);
                W->SGf[i * n + a] = CSD(W->S, nw, n, w, i, a) * CSD(W->Gu, nw, n, w, a, a);
            }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                const double *sg = (const double *)(W->SGf + (size_t)i * n);
                const double *sj = (const double *)(W->Sf + (size_t)j * n);
                double complex g0 = CSD(W->Gn, nw, n, w, i, j);
                double re = creal(g0), im = cimag(g0);
                for (int a = 0; a < n; a++) {
                    /* sg_a * conj(sj_a) */
                    re += sg[2 * a] * sj[2 * a] + sg[2 * a + 1] * sj[2 * a + 1];
                    im += sg[2 * a + 1] * sj[2 * a] - sg[2 * a] * sj[2 * a + 1];
                }
                CSD(W->G, nw, n, w, i, j) = re + I * im;
            }
    }
    /* re-parameterised through an AR(p-1) model, as SPM */
    csd_to_ccf(W, W->G);
    if (ccf_to_mar(W))
        return -1;
    if (model_csd_mar_spectra(&W->ar, W->Hz, nw, 1.0 / (2.0 * W->Hz[nw - 1]), csd))
        return -1;
    if (parts) {
        size_t nnw = (size_t)nw * n * n;
        if (parts->Gu) memcpy(parts->Gu, W->Gu, nnw * sizeof(double complex));
        if (parts->Gn) memcpy(parts->Gn, W->Gn, nnw * sizeof(double complex));
        if (parts->transfer) memcpy(parts->transfer, W->S, nnw * sizeof(double complex));
        if (parts->csd_raw) memcpy(parts->csd_raw, W->G, nnw * sizeof(double complex));
        if (parts->ccf) {
            memcpy(parts->ccf, W->ccf, (size_t)W->L2 * n * n * sizeof(double));
            parts->nccf = W->L2;
        }
        if (parts->ar_lag) memcpy(parts->ar_lag, W->ar.lag, (size_t)W->ar_order * n * n * sizeof(double));
        if (parts->ar_noise_cov) memcpy(parts->ar_noise_cov, W->ar.noise_cov, (size_t)n * n * sizeof(double));
        if (parts->dfdx) memcpy(parts->dfdx, W->dfdx, (size_t)nx * nx * sizeof(double));
        if (parts->dfdu) memcpy(parts->dfdu, W->dfdu, (size_t)nx * n * sizeof(double));
        if (parts->dgdx) memcpy(parts->dgdx, W->dgdx, (size_t)n * nx * sizeof(double));
        parts->conditioned = moved;
    }
    return 0;
}
