/* vl_evidence.c — thermodynamic integration with parallel tempering (and
 * annealed importance sampling) for the log evidence of a vl_model; see
 * vl_evidence.h for the contract. */
#include "vl/vl_evidence.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_eigen.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>

#define CONFOUND_PRECISION 1e-8   /* the engine's prior precision of beta */
#define PREC_FLOOR 1.2664165549094176e-14 /* exp(-32), the engine's floor */
#define LOG2PI 1.8378770664093453
#define TWO_PI 6.283185307179586
#define TARGET_ACCEPT 0.25
#define MAX_PRIOR_TRIES 10000     /* prior draws tried for one valid model */

/* ---- random numbers: xoshiro256** seeded by splitmix64, one per replica ---- */

typedef struct { uint64_t s[4]; int have; double spare; } ev_rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void rng_seed(ev_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (0xD1B54A32D192ED03ULL * (stream + 1));
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    r->have = 0;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(ev_rng *r)
{
    uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return res;
}

/* uniform on (0, 1) */
static double rng_unif(ev_rng *r)
{
    return ((double)(rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* standard normal (Marsaglia's polar method) */
static double rng_norm(ev_rng *r)
{
    if (r->have) {
        r->have = 0;
        return r->spare;
    }
    double u, v, s;
    do {
        u = 2.0 * rng_unif(r) - 1.0;
        v = 2.0 * rng_unif(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double f = sqrt(-2.0 * log(s) / s);
    r->spare = v * f;
    r->have = 1;
    return u * f;
}

/* ---- what every replica shares (read-only once built) ---- */

typedef struct {
    const vl_model *M;
    const double *y;
    vl_evidence_options o;
    int np, nz, nh, d, ny, nobs, cs;
    double *V;          /* np x nz: theta = pE + V z */
    double *pvar;       /* d prior variances of x = (z, h - hE) */
    double *Eh;         /* nh: h when fixed */
    double *beta;       /* K */
    double *Lk;         /* K x d x d: Cholesky factors (lower) of the proposal covariances */
    double *mk;         /* K x d: Laplace means of the power posteriors */
    double *Lq, *mq;    /* Laplace path: the reference q = N(mq, Lq Lq') */
    double lq_norm;     /*   -log|2 pi Lq Lq'| / 2 */
    double lp_norm;     /* -log|2 pi Pi0^-1| / 2 */
    /* confounds: per block, eigen-decomposition of G = X0'X0 (constant-w path) */
    int nb, nblk, nx0;
    double *Gev, *Gvec; /* nx0, nx0 x nx0 (column j = eigenvector j) */
    int w_const;        /* every block has one precision on all its rows */
} ev_setup;

typedef struct {
    const ev_setup *S;
    void *user;
    double *theta, *h, *f, *w, *e, *t1, *t2, *A, *xt;
    long evals;
} ev_work;

/* the confounds' marginal: + 1/2 b'A^-1 b - 1/2 log|A| + nx0/2 log pi_b
 * for one block, b = X0'W e, A = X0'W X0 + pi_b I */
static double confound_term(ev_work *W, int blk)
{
    const ev_setup *S = W->S;
    const int nb = S->nb, nx0 = S->nx0;
    const double *X0 = S->M->X0, *e = W->e + (size_t)blk * nb, *w = W->w + (size_t)blk * nb;
    double *b = W->t1;
    for (int j = 0; j < nx0; j++) {
        double s = 0.0;
        for (int r = 0; r < nb; r++)
            s += X0[r + (size_t)j * nb] * w[r] * e[r];
        b[j] = s;
    }
    double q = 0.0, ld = 0.0;
    if (S->w_const) {   /* A = w G + pi I: diagonal in G's eigenvectors */
        for (int i = 0; i < nx0; i++) {
            double u = 0.0;
            for (int j = 0; j < nx0; j++)
                u += S->Gvec[j * nx0 + i] * b[j];
            double a = w[0] * S->Gev[i] + CONFOUND_PRECISION;
            q += u * u / a;
            ld += log(a);
        }
    } else {
        double *A = W->A;
        for (int i = 0; i < nx0; i++)
            for (int j = 0; j <= i; j++) {
                double s = i == j ? CONFOUND_PRECISION : 0.0;
                for (int r = 0; r < nb; r++)
                    s += X0[r + (size_t)i * nb] * w[r] * X0[r + (size_t)j * nb];
                A[i * nx0 + j] = A[j * nx0 + i] = s;
            }
        gsl_matrix_view Av = gsl_matrix_view_array(A, nx0, nx0);
        if (gsl_linalg_cholesky_decomp1(&Av.matrix))
            return -INFINITY;
        for (int i = 0; i < nx0; i++)
            ld += 2.0 * log(A[i * nx0 + i]);
        gsl_vector_view bv = gsl_vector_view_array(b, nx0), uv = gsl_vector_view_array(W->t2, nx0);
        gsl_linalg_cholesky_solve(&Av.matrix, &bv.vector, &uv.vector);
        for (int i = 0; i < nx0; i++)
            q += b[i] * W->t2[i];
    }
    return 0.5 * q - 0.5 * ld + 0.5 * nx0 * log(CONFOUND_PRECISION);
}

/* log p(y | theta, h), beta integrated out; theta and h already in W */
static double loglik_at(ev_work *W)
{
    const ev_setup *S = W->S;
    const vl_model *M = S->M;
    W->evals++;
    int prc = M->predict(W->user, W->theta, W->f);
    if (prc < 0 || (prc > 0 && S->o.reject_flagged))
        return -INFINITY;
    const int ny = S->ny, cs = S->cs;
    for (int r = 0; r < S->nobs; r++) {
        W->e[r] = S->y[r] - W->f[r];
        if (!isfinite(W->e[r]))
            return -INFINITY;
    }
    for (int r = 0; r < ny; r++)
        W->w[r] = 0.0;
    for (int i = 0; i < S->nh; i++) {
        double lam = PREC_FLOOR + exp(W->h[i]);
        const double *Q = M->Q + (size_t)i * ny;
        for (int r = 0; r < ny; r++)
            W->w[r] += lam * Q[r];
    }
    double ldw = 0.0, ewe = 0.0;
    for (int r = 0; r < ny; r++)   /* as the engine's F: only usable precisions */
        if (W->w[r] > 1e-16 && W->w[r] < 1e16)
            ldw += log(W->w[r]);
    for (int r = 0; r < S->nobs; r++)
        ewe += W->w[r >> cs] * W->e[r] * W->e[r];
    double L = 0.5 * ldw - 0.5 * ewe - 0.5 * ny * LOG2PI;
    for (int blk = 0; blk < S->nblk && S->nx0 > 0; blk++)
        L += confound_term(W, blk);
    return isfinite(L) ? L : -INFINITY;
}

/* x = (z, h - hE) into theta and h */
static void unpack(ev_work *W, const double *x)
{
    const ev_setup *S = W->S;
    for (int i = 0; i < S->np; i++) {
        double s = S->M->pE[i];
        for (int k = 0; k < S->nz; k++)
            s += S->V[(size_t)i * S->nz + k] * x[k];
        W->theta[i] = s;
    }
    for (int i = 0; i < S->nh; i++)
        W->h[i] = S->o.sample_h ? S->M->hE[i] + x[S->nz + i] : S->Eh[i];
}

static double loglik_x(ev_work *W, const double *x)
{
    unpack(W, x);
    return loglik_at(W);
}

/* log prior of x up to its constant */
static double logprior(const ev_setup *S, const double *x)
{
    double s = 0.0;
    for (int i = 0; i < S->d; i++)
        s += x[i] * x[i] / S->pvar[i];
    return -0.5 * s;
}

/* log q(x), normalised (Laplace path) */
static double logref(const ev_setup *S, const double *x, double *t)
{
    const int d = S->d;
    double q = 0.0;
    for (int a = 0; a < d; a++) {   /* t = Lq^-1 (x - mq) */
        double v = x[a] - S->mq[a];
        for (int b = 0; b < a; b++)
            v -= S->Lq[a * d + b] * t[b];
        t[a] = v / S->Lq[a * d + a];
        q += t[a] * t[a];
    }
    return -0.5 * q + S->lq_norm;
}

/* the density the ladder starts from, up to a constant: the prior, or q */
static double logbase(ev_work *W, const double *x)
{
    return W->S->o.path == VL_EV_PATH_LAPLACE ? logref(W->S, x, W->xt) : logprior(W->S, x);
}

/* the energy U whose beta-weighted exponential tilts the base: log p(y|x)
 * (prior path) or log p(y|x) p(x) / q(x) (Laplace path) */
static double energy(ev_work *W, const double *x)
{
    double L = loglik_x(W, x);
    if (W->S->o.path != VL_EV_PATH_LAPLACE || L == -INFINITY)
        return L;
    return L + logprior(W->S, x) + W->S->lp_norm - logref(W->S, x, W->xt);
}

/* ---- setup ---- */

/* the prior's eigen-subspace, as the engine's (vl_nlsi.c prior_subspace) */
static int subspace(ev_setup *S)
{
    const vl_model *M = S->M;
    const int np = S->np;
    S->pvar = NULL;
    if (M->pV) {
        int k = 0;
        for (int i = 0; i < np; i++)
            k += M->pV[i] > 0.0;
        S->nz = k;
        S->V = calloc((size_t)np * (k ? k : 1), sizeof(double));
        S->pvar = malloc(sizeof(double) * (size_t)(k + M->nh + 1));
        if (!S->V || !S->pvar)
            return VL_ERR_NOMEM;
        k = 0;
        for (int i = 0; i < np; i++)
            if (M->pV[i] > 0.0) {
                S->V[(size_t)i * S->nz + k] = 1.0;
                S->pvar[k++] = M->pV[i];
            }
        return VL_OK;
    }
    gsl_matrix *A = gsl_matrix_alloc(np, np), *Ev = gsl_matrix_alloc(np, np);
    gsl_vector *ev = gsl_vector_alloc(np);
    gsl_eigen_symmv_workspace *ew = gsl_eigen_symmv_alloc(np);
    int rc = VL_ERR_NOMEM;
    if (A && Ev && ev && ew) {
        memcpy(A->data, M->pC, sizeof(double) * (size_t)np * np);
        gsl_eigen_symmv(A, ev, Ev, ew);
        gsl_eigen_symmv_sort(ev, Ev, GSL_EIGEN_SORT_VAL_DESC);
        int rows = 0;
        for (int i = 0; i < np; i++) {
            int any = 0;
            for (int j = 0; j < np && !any; j++)
                any = M->pC[i * np + j] != 0.0;
            rows += any;
        }
        double ss = 0.0;
        for (int i = 0; i < np; i++)
            ss += gsl_vector_get(ev, i) * gsl_vector_get(ev, i);
        int k = 0;
        for (int i = 0; i < np; i++) {
            double l = gsl_vector_get(ev, i);
            if (l > 0 && ss > 0 && l * l * rows / ss > 64 * DBL_EPSILON)
                k++;
        }
        S->nz = k;
        S->V = calloc((size_t)np * (k ? k : 1), sizeof(double));
        S->pvar = malloc(sizeof(double) * (size_t)(k + M->nh + 1));
        if (S->V && S->pvar) {
            for (int i = 0; i < np; i++)
                for (int j = 0; j < k; j++)
                    S->V[(size_t)i * k + j] = gsl_matrix_get(Ev, i, j);
            for (int j = 0; j < k; j++)
                S->pvar[j] = gsl_vector_get(ev, j);
            rc = VL_OK;
        }
    }
    if (A) gsl_matrix_free(A);
    if (Ev) gsl_matrix_free(Ev);
    if (ev) gsl_vector_free(ev);
    if (ew) gsl_eigen_symmv_free(ew);
    return rc;
}

/* symmetric d x d: eigenvalues clamped below at floor (in place) */
static int clamp_eigen(double *A, int d, double floor_)
{
    gsl_matrix *B = gsl_matrix_alloc(d, d), *Ev = gsl_matrix_alloc(d, d);
    gsl_vector *ev = gsl_vector_alloc(d);
    gsl_eigen_symmv_workspace *ew = gsl_eigen_symmv_alloc(d);
    int ok = B && Ev && ev && ew;
    if (ok) {
        memcpy(B->data, A, sizeof(double) * (size_t)d * d);
        gsl_eigen_symmv(B, ev, Ev, ew);
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) {
                double s = 0.0;
                for (int k = 0; k < d; k++)
                    s += gsl_matrix_get(Ev, i, k) * fmax(gsl_vector_get(ev, k), floor_) *
                         gsl_matrix_get(Ev, j, k);
                A[i * d + j] = s;
            }
    }
    if (B) gsl_matrix_free(B);
    if (Ev) gsl_matrix_free(Ev);
    if (ev) gsl_vector_free(ev);
    if (ew) gsl_eigen_symmv_free(ew);
    return ok ? VL_OK : VL_ERR_NOMEM;
}

/* in place: inverse of a symmetric positive definite matrix; -1 if not */
static int spd_inverse(double *A, int d)
{
    gsl_matrix_view v = gsl_matrix_view_array(A, d, d);
    if (gsl_linalg_cholesky_decomp1(&v.matrix) || gsl_linalg_cholesky_invert(&v.matrix))
        return -1;
    return 0;
}

/* The likelihood's curvature H = Pi - Pi0 in x (clamped to >= 0), and the
 * Laplace mode m of x; then per temperature the power posterior's Laplace
 * covariance (beta H + Pi0)^-1 (its Cholesky factor) and mean. */
static int proposals(ev_setup *S, const double *Ep, const double *Cp, const double *Eh)
{
    const int d = S->d, nz = S->nz, np = S->np, K = S->o.temperatures;
    const vl_model *M = S->M;
    double *H = calloc((size_t)d * d, sizeof(double)), *m = calloc((size_t)d, sizeof(double));
    double *C = malloc(sizeof(double) * (size_t)d * d), *tmp = malloc(sizeof(double) * (size_t)np * nz);
    S->Lk = malloc(sizeof(double) * (size_t)K * d * d);
    S->mk = malloc(sizeof(double) * (size_t)K * d);
    int rc = VL_ERR_NOMEM;
    if (!H || !m || !C || !tmp || !S->Lk || !S->mk)
        goto done;
    /* Cz = V' Cp V, its inverse minus the prior precision */
    for (int i = 0; i < np; i++)
        for (int b = 0; b < nz; b++) {
            double s = 0.0;
            for (int j = 0; j < np; j++)
                s += Cp[(size_t)i * np + j] * S->V[(size_t)j * nz + b];
            tmp[(size_t)i * nz + b] = s;
        }
    for (int a = 0; a < nz; a++)
        for (int b = 0; b < nz; b++) {
            double s = 0.0;
            for (int i = 0; i < np; i++)
                s += S->V[(size_t)i * nz + a] * tmp[(size_t)i * nz + b];
            H[a * d + b] = s;
        }
    for (int a = 0; a < nz; a++) {   /* symmetric, and a floor for a singular Cp */
        for (int b = 0; b < a; b++)
            H[a * d + b] = H[b * d + a] = 0.5 * (H[a * d + b] + H[b * d + a]);
        H[a * d + a] += 1e-12 * S->pvar[a];
    }
    /* invert the theta block only */
    {
        double *B = malloc(sizeof(double) * (size_t)(nz ? nz : 1) * (nz ? nz : 1));
        if (!B)
            goto done;
        for (int a = 0; a < nz; a++)
            for (int b = 0; b < nz; b++)
                B[a * nz + b] = H[a * d + b];
        int bad = nz && spd_inverse(B, nz);
        for (int a = 0; a < nz; a++)
            for (int b = 0; b < nz; b++)
                H[a * d + b] = (bad ? 0.0 : B[a * nz + b]) - (a == b ? 1.0 / S->pvar[a] : 0.0);
        free(B);
    }
    for (int a = 0; a < nz; a++) {
        double s = 0.0;
        for (int i = 0; i < np; i++)
            s += S->V[(size_t)i * nz + a] * (Ep[i] - M->pE[i]);
        m[a] = s;
    }
    /* h: the Fisher information of the noise model at Eh */
    if (S->o.sample_h) {
        const int nh = S->nh, ny = S->ny;
        double *w = calloc((size_t)ny, sizeof(double));
        if (!w)
            goto done;
        for (int i = 0; i < nh; i++)
            for (int r = 0; r < ny; r++)
                w[r] += (PREC_FLOOR + exp(Eh[i])) * M->Q[(size_t)i * ny + r];
        for (int i = 0; i < nh; i++) {
            for (int j = 0; j <= i; j++) {
                double s = 0.0, li = exp(Eh[i]), lj = exp(Eh[j]);
                for (int r = 0; r < ny; r++)
                    if (w[r] > 0.0)
                        s += 0.5 * li * M->Q[(size_t)i * ny + r] * lj * M->Q[(size_t)j * ny + r] /
                             (w[r] * w[r]);
                H[(nz + i) * d + nz + j] = H[(nz + j) * d + nz + i] = s;
            }
            m[nz + i] = Eh[i] - M->hE[i];
        }
        free(w);
    }
    if (clamp_eigen(H, d, 0.0))
        goto done;
    S->lp_norm = 0.0;
    for (int a = 0; a < d; a++)
        S->lp_norm -= 0.5 * log(TWO_PI * S->pvar[a]);
    if (S->o.path == VL_EV_PATH_LAPLACE) {
        /* q = N(m, c Sigma), Sigma = (H + Pi0)^-1 the Laplace covariance;
           the ladder's targets are near N(m, Sigma / (b + (1 - b) / c)) */
        const double c = S->o.ref_inflate;
        S->Lq = malloc(sizeof(double) * (size_t)d * d);
        S->mq = malloc(sizeof(double) * (size_t)d);
        if (!S->Lq || !S->mq)
            goto done;
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++)
                C[a * d + b] = H[a * d + b] + (a == b ? 1.0 / S->pvar[a] : 0.0);
        gsl_matrix_view v = gsl_matrix_view_array(C, d, d);
        if (spd_inverse(C, d) || gsl_linalg_cholesky_decomp1(&v.matrix)) {
            rc = VL_ERR_NONFINITE;
            goto done;
        }
        S->lq_norm = -0.5 * d * log(TWO_PI);
        for (int a = 0; a < d; a++) {
            S->mq[a] = m[a];
            for (int b = 0; b < d; b++)
                S->Lq[a * d + b] = b <= a ? sqrt(c) * C[a * d + b] : 0.0;
            S->lq_norm -= log(S->Lq[a * d + a]);
        }
        for (int k = 0; k < K; k++) {
            double bk = S->beta[k], f = 1.0 / sqrt(c * (bk + (1.0 - bk) / c));
            for (int a = 0; a < d * d; a++)
                S->Lk[(size_t)k * d * d + a] = f * S->Lq[a];
            memcpy(S->mk + (size_t)k * d, m, sizeof(double) * d);
        }
        rc = VL_OK;
        goto done;
    }
    for (int k = 0; k < K; k++) {
        double bk = S->beta[k], *L = S->Lk + (size_t)k * d * d, *mu = S->mk + (size_t)k * d;
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++)
                C[a * d + b] = bk * H[a * d + b] + (a == b ? 1.0 / S->pvar[a] : 0.0);
        if (spd_inverse(C, d)) {
            rc = VL_ERR_NONFINITE;
            goto done;
        }
        /* mean: C (beta H m) */
        for (int a = 0; a < d; a++) {
            double s = 0.0;
            for (int b = 0; b < d; b++) {
                double hm = 0.0;
                for (int c = 0; c < d; c++)
                    hm += H[b * d + c] * m[c];
                s += C[a * d + b] * bk * hm;
            }
            mu[a] = s;
        }
        gsl_matrix_view v = gsl_matrix_view_array(C, d, d);
        if (gsl_linalg_cholesky_decomp1(&v.matrix)) {
            rc = VL_ERR_NONFINITE;
            goto done;
        }
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++)
                L[a * d + b] = b <= a ? C[a * d + b] : 0.0;
    }
    rc = VL_OK;
done:
    free(H);
    free(m);
    free(C);
    free(tmp);
    return rc;
}

static int confound_setup(ev_setup *S)
{
    const vl_model *M = S->M;
    S->nx0 = (M->X0 && M->nx0 > 0) ? M->nx0 : 0;
    S->nb = S->nx0 ? M->nb : S->ny;
    S->nblk = S->ny / S->nb;
    if (!S->nx0)
        return VL_OK;
    /* one precision per block? (each component constant on each block) */
    S->w_const = 1;
    for (int i = 0; i < S->nh && S->w_const; i++)
        for (int r = 0; r < S->ny && S->w_const; r++)
            if (M->Q[(size_t)i * S->ny + r] != M->Q[(size_t)i * S->ny + (r / S->nb) * S->nb])
                S->w_const = 0;
    const int nx0 = S->nx0, nb = S->nb;
    S->Gev = malloc(sizeof(double) * nx0);
    S->Gvec = malloc(sizeof(double) * nx0 * nx0);
    gsl_matrix *G = gsl_matrix_alloc(nx0, nx0), *Ev = gsl_matrix_alloc(nx0, nx0);
    gsl_vector *ev = gsl_vector_alloc(nx0);
    gsl_eigen_symmv_workspace *ew = gsl_eigen_symmv_alloc(nx0);
    int ok = S->Gev && S->Gvec && G && Ev && ev && ew;
    if (ok) {
        for (int i = 0; i < nx0; i++)
            for (int j = 0; j < nx0; j++) {
                double s = 0.0;
                for (int r = 0; r < nb; r++)
                    s += M->X0[r + (size_t)i * nb] * M->X0[r + (size_t)j * nb];
                gsl_matrix_set(G, i, j, s);
            }
        gsl_eigen_symmv(G, ev, Ev, ew);
        for (int i = 0; i < nx0; i++) {
            S->Gev[i] = fmax(gsl_vector_get(ev, i), 0.0);
            for (int j = 0; j < nx0; j++)
                S->Gvec[j * nx0 + i] = gsl_matrix_get(Ev, j, i);
        }
    }
    if (G) gsl_matrix_free(G);
    if (Ev) gsl_matrix_free(Ev);
    if (ev) gsl_vector_free(ev);
    if (ew) gsl_eigen_symmv_free(ew);
    return ok ? VL_OK : VL_ERR_NOMEM;
}

static void setup_free(ev_setup *S)
{
    free(S->V);
    free(S->pvar);
    free(S->Eh);
    free(S->beta);
    free(S->Lk);
    free(S->mk);
    free(S->Lq);
    free(S->mq);
    free(S->Gev);
    free(S->Gvec);
}

static int work_init(ev_work *W, const ev_setup *S, void *user)
{
    memset(W, 0, sizeof *W);
    W->S = S;
    W->user = user;
    int nx = S->nx0 > 0 ? S->nx0 : 1;
    W->theta = malloc(sizeof(double) * S->np);
    W->h = malloc(sizeof(double) * S->nh);
    W->f = malloc(sizeof(double) * S->nobs);
    W->e = malloc(sizeof(double) * S->nobs);
    W->w = malloc(sizeof(double) * S->ny);
    W->t1 = malloc(sizeof(double) * nx);
    W->t2 = malloc(sizeof(double) * nx);
    W->A = malloc(sizeof(double) * nx * nx);
    W->xt = malloc(sizeof(double) * (S->d > 0 ? S->d : 1));
    return W->theta && W->h && W->f && W->e && W->w && W->t1 && W->t2 && W->A && W->xt ? VL_OK
                                                                                          : VL_ERR_NOMEM;
}

static void work_free(ev_work *W)
{
    free(W->theta);
    free(W->h);
    free(W->f);
    free(W->e);
    free(W->w);
    free(W->t1);
    free(W->t2);
    free(W->A);
    free(W->xt);
}

/* ---- one replica ---- */

typedef struct {
    double log_z, log_z_trapezoid;
    double *sumL, *sumL2;     /* K */
    double *traceL;           /* samples x K (TI), for R-hat */
    double *sum_theta, *sum_theta2, *sum_h; /* np, np, nh at beta = 1 */
    double wsum;              /* AIS: total weight of sum_theta (TI: count) */
    double *samples;          /* keep: samples x np */
    long accepted, proposed, top_acc, top_prop, swaps, swap_tries;
    long prior_tries, prior_valid;
    int status;
} ev_replica;

/* one valid independent draw from the base (prior or q) into x, its energy in L */
static int prior_draw(ev_work *W, ev_rng *rng, double *x, double *L, ev_replica *R)
{
    const ev_setup *S = W->S;
    const int d = S->d;
    for (int t = 0; t < MAX_PRIOR_TRIES; t++) {
        if (S->o.path == VL_EV_PATH_LAPLACE) {
            for (int i = 0; i < d; i++)
                W->xt[i] = rng_norm(rng);
            for (int a = 0; a < d; a++) {
                double v = S->mq[a];
                for (int b = 0; b <= a; b++)
                    v += S->Lq[a * d + b] * W->xt[b];
                x[a] = v;
            }
        } else {
            for (int i = 0; i < d; i++)
                x[i] = sqrt(S->pvar[i]) * rng_norm(rng);
        }
        double l = energy(W, x);
        R->prior_tries++;
        if (l > -INFINITY) {
            R->prior_valid++;
            *L = l;
            return 0;
        }
    }
    return -1;
}

/* x' = x + s L xi */
static void propose(const ev_setup *S, int k, double s, const double *x, double *xp, double *xi,
                    ev_rng *rng)
{
    const int d = S->d;
    const double *L = S->Lk + (size_t)k * d * d;
    for (int i = 0; i < d; i++)
        xi[i] = rng_norm(rng);
    for (int a = 0; a < d; a++) {
        double v = 0.0;
        for (int b = 0; b <= a; b++)
            v += L[a * d + b] * xi[b];
        xp[a] = x[a] + s * v;
    }
}

/* accumulate theta (and h) at beta = 1 with weight wt */
static void collect(ev_work *W, ev_replica *R, const double *x, double wt, int index)
{
    const ev_setup *S = W->S;
    unpack(W, x);
    for (int i = 0; i < S->np; i++) {
        R->sum_theta[i] += wt * W->theta[i];
        R->sum_theta2[i] += wt * W->theta[i] * W->theta[i];
    }
    for (int i = 0; i < S->nh; i++)
        R->sum_h[i] += wt * W->h[i];
    R->wsum += wt;
    if (R->samples && index >= 0)
        memcpy(R->samples + (size_t)index * S->np, W->theta, sizeof(double) * S->np);
}

static double log_sum_exp(const double *a, int n)
{
    double mx = -INFINITY, s = 0.0;
    for (int i = 0; i < n; i++)
        mx = fmax(mx, a[i]);
    for (int i = 0; i < n; i++)
        s += exp(a[i] - mx);
    return mx + log(s);
}

static int run_ti(ev_work *W, ev_replica *R, uint64_t stream)
{
    const ev_setup *S = W->S;
    const int K = S->o.temperatures, d = S->d, N = S->o.samples, B = S->o.burnin;
    ev_rng rng;
    rng_seed(&rng, S->o.seed, stream);
    double *x = malloc(sizeof(double) * (size_t)K * d), *L = malloc(sizeof(double) * K);
    double *lp = malloc(sizeof(double) * K), *ls = malloc(sizeof(double) * K);
    double *xp = malloc(sizeof(double) * d), *xi = malloc(sizeof(double) * d);
    int rc = VL_ERR_NOMEM;
    if (!x || !L || !lp || !ls || !xp || !xi)
        goto done;
    rc = VL_ERR_MODEL;
    /* start each temperature near its Laplace mean (the prior at beta 0) */
    if (prior_draw(W, &rng, x, &L[0], R))
        goto done;
    lp[0] = logbase(W, x);
    for (int k = 1; k < K; k++) {
        double *xk = x + (size_t)k * d;
        int ok = 0;
        for (int t = 0; t < 100 && !ok; t++) {
            propose(S, k, 1.0, S->mk + (size_t)k * d, xk, xi, &rng);
            L[k] = energy(W, xk);
            ok = L[k] > -INFINITY;
        }
        if (!ok)
            goto done;
        lp[k] = logbase(W, xk);
        ls[k] = log(2.38 / sqrt((double)d));
    }
    for (int it = 0; it < B + N; it++) {
        int kept = it >= B;
        if (prior_draw(W, &rng, x, &L[0], R))
            goto done;
        lp[0] = logbase(W, x);
        for (int k = 1; k < K; k++) {
            double *xk = x + (size_t)k * d, bk = S->beta[k];
            propose(S, k, exp(ls[k]), xk, xp, xi, &rng);
            double Lp = energy(W, xp), lpp = logbase(W, xp);
            double la = bk * (Lp - L[k]) + lpp - lp[k];
            int a = Lp > -INFINITY && log(rng_unif(&rng)) < la;
            if (a) {
                memcpy(xk, xp, sizeof(double) * d);
                L[k] = Lp;
                lp[k] = lpp;
            }
            if (!kept)   /* Robbins-Monro on the log scale, burn-in only */
                ls[k] += (((a ? 1.0 : 0.0) - TARGET_ACCEPT)) / pow(it + 1.0, 0.6);
            else {
                R->accepted += a;
                R->proposed++;
                if (k == K - 1) {
                    R->top_acc += a;
                    R->top_prop++;
                }
            }
        }
        /* swaps between neighbours: even pairs, then odd pairs, alternately */
        for (int k = it & 1; k + 1 < K; k += 2) {
            double la = (S->beta[k] - S->beta[k + 1]) * (L[k + 1] - L[k]);
            int a = log(rng_unif(&rng)) < la;
            if (kept) {
                R->swaps += a;
                R->swap_tries++;
            }
            if (a) {
                for (int i = 0; i < d; i++) {
                    double t = x[(size_t)k * d + i];
                    x[(size_t)k * d + i] = x[(size_t)(k + 1) * d + i];
                    x[(size_t)(k + 1) * d + i] = t;
                }
                double t = L[k]; L[k] = L[k + 1]; L[k + 1] = t;
                t = lp[k]; lp[k] = lp[k + 1]; lp[k + 1] = t;
            }
        }
        if (kept) {
            int s = it - B;
            for (int k = 0; k < K; k++) {
                R->sumL[k] += L[k];
                R->sumL2[k] += L[k] * L[k];
                R->traceL[(size_t)s * K + k] = L[k];
            }
            collect(W, R, x + (size_t)(K - 1) * d, 1.0, s);
        }
    }
    /* the integral over beta, on this replica: the stepping-stone identity
       log Z_{k+1}/Z_k = log E_k[exp((b_{k+1} - b_k) log L)] (exact for any
       schedule, as the samples grow), and the trapezoid with Friel et
       al.'s variance correction beside it */
    double z = 0.0, zt = 0.0, *tmp = malloc(sizeof(double) * N);
    if (!tmp) {
        rc = VL_ERR_NOMEM;
        goto done;
    }
    for (int k = 0; k + 1 < K; k++) {
        double db = S->beta[k + 1] - S->beta[k];
        for (int i = 0; i < N; i++)
            tmp[i] = db * R->traceL[(size_t)i * K + k];
        z += log_sum_exp(tmp, N) - log((double)N);
        double m0 = R->sumL[k] / N, m1 = R->sumL[k + 1] / N;
        double v0 = fmax(R->sumL2[k] / N - m0 * m0, 0.0), v1 = fmax(R->sumL2[k + 1] / N - m1 * m1, 0.0);
        zt += 0.5 * db * (m0 + m1) - db * db / 12.0 * (v1 - v0);
    }
    free(tmp);
    R->log_z_trapezoid = zt + log((double)R->prior_valid / (double)R->prior_tries);
    R->log_z = z + log((double)R->prior_valid / (double)R->prior_tries);
    rc = VL_OK;
done:
    free(x);
    free(L);
    free(lp);
    free(ls);
    free(xp);
    free(xi);
    return rc;
}

/* annealed importance sampling: N particles through the K temperatures,
 * one Metropolis move per temperature (Laplace proposal, scale 2.38/sqrt d) */
static int run_ais(ev_work *W, ev_replica *R, uint64_t stream)
{
    const ev_setup *S = W->S;
    const int K = S->o.temperatures, d = S->d, N = S->o.samples;
    ev_rng rng;
    rng_seed(&rng, S->o.seed, stream);
    double *x = malloc(sizeof(double) * d), *xp = malloc(sizeof(double) * d);
    double *xi = malloc(sizeof(double) * d), *lw = malloc(sizeof(double) * N);
    double *xs = malloc(sizeof(double) * (size_t)N * d);
    int rc = VL_ERR_NOMEM;
    if (!x || !xp || !xi || !lw || !xs)
        goto done;
    rc = VL_ERR_MODEL;
    const double s = 2.38 / sqrt((double)d);
    for (int n = 0; n < N; n++) {
        double L;
        if (prior_draw(W, &rng, x, &L, R))
            goto done;
        double lp = logbase(W, x), w = 0.0;
        for (int k = 1; k < K; k++) {
            w += (S->beta[k] - S->beta[k - 1]) * L;
            propose(S, k, s, x, xp, xi, &rng);
            double Lp = energy(W, xp), lpp = logbase(W, xp);
            int a = Lp > -INFINITY && log(rng_unif(&rng)) < S->beta[k] * (Lp - L) + lpp - lp;
            if (a) {
                memcpy(x, xp, sizeof(double) * d);
                L = Lp;
                lp = lpp;
            }
            R->accepted += a;
            R->proposed++;
            if (k == K - 1) {
                R->top_acc += a;
                R->top_prop++;
            }
            R->sumL[k] += L;
            R->sumL2[k] += L * L;
        }
        lw[n] = w;
        memcpy(xs + (size_t)n * d, x, sizeof(double) * d);
    }
    double lse = log_sum_exp(lw, N);
    for (int n = 0; n < N; n++)
        collect(W, R, xs + (size_t)n * d, exp(lw[n] - lse), n);
    R->log_z = lse - log((double)N) + log((double)R->prior_valid / (double)R->prior_tries);
    R->log_z_trapezoid = NAN;
    rc = VL_OK;
done:
    free(x);
    free(xp);
    free(xi);
    free(lw);
    free(xs);
    return rc;
}

/* ---- threads over replicas ---- */

typedef struct {
    const ev_setup *S;
    ev_replica *reps;
    void *user;
    int first, stride, status;
    long evals;
    char msg[128];
} ev_thread;

static void *thread_main(void *arg)
{
    ev_thread *T = arg;
    ev_work W;
    T->status = work_init(&W, T->S, T->user);
    for (int c = T->first; c < T->S->o.chains && T->status == VL_OK; c += T->stride) {
        ev_replica *R = &T->reps[c];
        R->status = T->S->o.method == VL_EV_AIS ? run_ais(&W, R, (uint64_t)c)
                                                : run_ti(&W, R, (uint64_t)c);
        if (R->status)
            T->status = R->status;
    }
    T->evals = W.evals;
    work_free(&W);
    return NULL;
}

static int replica_alloc(ev_replica *R, const ev_setup *S)
{
    const int K = S->o.temperatures, N = S->o.samples, np = S->np;
    memset(R, 0, sizeof *R);
    R->sumL = calloc(K, sizeof(double));
    R->sumL2 = calloc(K, sizeof(double));
    R->traceL = calloc((size_t)N * K, sizeof(double));
    R->sum_theta = calloc(np, sizeof(double));
    R->sum_theta2 = calloc(np, sizeof(double));
    R->sum_h = calloc(S->nh, sizeof(double));
    if (S->o.keep_samples)
        R->samples = calloc((size_t)N * np, sizeof(double));
    return R->sumL && R->sumL2 && R->traceL && R->sum_theta && R->sum_theta2 && R->sum_h &&
           (R->samples || !S->o.keep_samples);
}

static void replica_free(ev_replica *R)
{
    free(R->sumL);
    free(R->sumL2);
    free(R->traceL);
    free(R->sum_theta);
    free(R->sum_theta2);
    free(R->sum_h);
    free(R->samples);
}

/* split R-hat of column k of the C traces (N x K each) */
static double split_rhat(const ev_replica *reps, int C, int N, int K, int k)
{
    const int n = N / 2, m = 2 * C;
    if (n < 2)
        return NAN;
    double W = 0.0, mb = 0.0, *means = malloc(sizeof(double) * m);
    if (!means)
        return NAN;
    for (int c = 0; c < C; c++)
        for (int half = 0; half < 2; half++) {
            double s = 0.0, s2 = 0.0;
            for (int i = 0; i < n; i++) {
                double v = reps[c].traceL[(size_t)(half * n + i) * K + k];
                s += v;
                s2 += v * v;
            }
            double mu = s / n;
            means[2 * c + half] = mu;
            W += (s2 - n * mu * mu) / (n - 1);
            mb += mu;
        }
    W /= m;
    mb /= m;
    double Bv = 0.0;
    for (int j = 0; j < m; j++)
        Bv += (means[j] - mb) * (means[j] - mb);
    Bv *= (double)n / (m - 1);
    free(means);
    if (!(W > 0.0))
        return Bv > 0.0 ? INFINITY : 1.0;
    double var = (n - 1.0) / n * W + Bv / n;
    return sqrt(var / W);
}

void vl_evidence_defaults(vl_evidence_options *o)
{
    memset(o, 0, sizeof *o);
    o->method = VL_EV_TI;
    o->temperatures = 16;
    o->power = 5.0;
    o->samples = 1000;
    o->burnin = 300;
    o->chains = 4;
    o->threads = 1;
    o->seed = 1;
    o->sample_h = 1;
    o->reject_flagged = 1;
    o->path = VL_EV_PATH_LAPLACE;
    o->ref_inflate = 1.44;
}

void vl_evidence_result_free(vl_evidence_result *R)
{
    if (!R)
        return;
    free(R->chain_log_evidence);
    free(R->beta);
    free(R->mean_loglik);
    free(R->var_loglik);
    free(R->post_mean);
    free(R->post_sd);
    free(R->post_mean_h);
    free(R->mcse_mean);
    free(R->samples);
    free(R);
}

static int check_options(const vl_model *M, const vl_evidence_options *o, char *errbuf, size_t errlen)
{
    if (!M || M->np < 1 || M->ny < 1 || M->nh < 1 || !M->pE || !M->Q || !M->hE || !M->hC ||
        !M->predict || (!M->pV && !M->pC)) {
        vl_set_err(errbuf, errlen, "evidence: the model is incomplete");
        return VL_ERR_INPUT;
    }
    if (M->X0 && M->nx0 > 0 && (M->complex_data || M->nb < 1 || M->ny % M->nb)) {
        vl_set_err(errbuf, errlen, "evidence: confounds need real data and blocks dividing ny");
        return VL_ERR_INPUT;
    }
    for (int i = 0; i < M->nh; i++)
        if (!(M->hC[i] > 0.0)) {
            vl_set_err(errbuf, errlen, "evidence: hyperprior variance %d is not positive", i + 1);
            return VL_ERR_INPUT;
        }
    if ((o->path != VL_EV_PATH_PRIOR && o->path != VL_EV_PATH_LAPLACE) ||
        (o->path == VL_EV_PATH_LAPLACE && !(o->ref_inflate >= 1.0 && o->ref_inflate < 1e6))) {
        vl_set_err(errbuf, errlen, "evidence: unknown path %d or reference inflation %g below 1", o->path,
                o->ref_inflate);
        return VL_ERR_INPUT;
    }
    if (o->method != VL_EV_TI && o->method != VL_EV_AIS) {
        vl_set_err(errbuf, errlen, "evidence: unknown method %d", o->method);
        return VL_ERR_INPUT;
    }
    if (o->temperatures < 2 || o->temperatures > 10000 || o->samples < 4 || o->samples > 100000000 ||
        o->burnin < 0 || o->chains < 1 || o->chains > 10000 || o->threads < 1 || !(o->power > 0.0) ||
        (double)o->samples * o->temperatures > 1e9) {
        vl_set_err(errbuf, errlen, "evidence: temperatures must be >= 2, samples >= 4, chains >= 1, "
                                "threads >= 1 and the power > 0 (got %d, %d, %d, %d, %g)",
                o->temperatures, o->samples, o->chains, o->threads, o->power);
        return VL_ERR_INPUT;
    }
    return VL_OK;
}

/* pool the replicas into the result */
static int summarise(const ev_setup *S, ev_replica *reps, vl_evidence_result *R)
{
    const int C = S->o.chains, K = S->o.temperatures, N = S->o.samples, np = S->np, nh = S->nh;
    R->chain_log_evidence = malloc(sizeof(double) * C);
    R->beta = malloc(sizeof(double) * K);
    R->mean_loglik = calloc(K, sizeof(double));
    R->var_loglik = calloc(K, sizeof(double));
    R->post_mean = calloc(np, sizeof(double));
    R->post_sd = calloc(np, sizeof(double));
    R->post_mean_h = calloc(nh, sizeof(double));
    R->mcse_mean = calloc(np, sizeof(double));
    if (S->o.keep_samples)
        R->samples = malloc(sizeof(double) * (size_t)C * N * np);
    if (!R->chain_log_evidence || !R->beta || !R->mean_loglik || !R->var_loglik || !R->post_mean ||
        !R->post_sd || !R->post_mean_h || !R->mcse_mean || (S->o.keep_samples && !R->samples))
        return VL_ERR_NOMEM;
    memcpy(R->beta, S->beta, sizeof(double) * K);
    double sz = 0.0, sz2 = 0.0, wtot = 0.0, st = 0.0, st2 = 0.0;
    long acc = 0, prop = 0, tacc = 0, tprop = 0, sw = 0, swt = 0, ptries = 0, pvalid = 0;
    const int nper = N;   /* TI: kept sweeps; AIS: particles */
    for (int c = 0; c < C; c++) {
        ev_replica *P = &reps[c];
        R->chain_log_evidence[c] = P->log_z;
        sz += P->log_z;
        sz2 += P->log_z * P->log_z;
        st += P->log_z_trapezoid;
        st2 += P->log_z_trapezoid * P->log_z_trapezoid;
        for (int k = 0; k < K; k++) {
            R->mean_loglik[k] += P->sumL[k] / nper / C;
            R->var_loglik[k] += P->sumL2[k] / nper / C;
        }
        for (int i = 0; i < np; i++) {
            R->post_mean[i] += P->sum_theta[i];
            R->post_sd[i] += P->sum_theta2[i];
        }
        for (int i = 0; i < nh; i++)
            R->post_mean_h[i] += P->sum_h[i];
        wtot += P->wsum;
        acc += P->accepted; prop += P->proposed; tacc += P->top_acc; tprop += P->top_prop;
        sw += P->swaps; swt += P->swap_tries; ptries += P->prior_tries; pvalid += P->prior_valid;
        if (R->samples)
            memcpy(R->samples + (size_t)c * N * np, P->samples, sizeof(double) * (size_t)N * np);
    }
    for (int k = 0; k < K; k++)
        R->var_loglik[k] = fmax(R->var_loglik[k] - R->mean_loglik[k] * R->mean_loglik[k], 0.0);
    R->log_evidence = sz / C;
    R->se = C > 1 ? sqrt(fmax(sz2 - C * R->log_evidence * R->log_evidence, 0.0) / (C - 1) / C) : NAN;
    R->log_evidence_trapezoid = st / C;
    R->se_trapezoid = C > 1 ? sqrt(fmax(st2 - C * R->log_evidence_trapezoid * R->log_evidence_trapezoid,
                                        0.0) / (C - 1) / C) : NAN;
    for (int i = 0; i < np; i++) {
        R->post_mean[i] /= wtot;
        R->post_sd[i] = sqrt(fmax(R->post_sd[i] / wtot - R->post_mean[i] * R->post_mean[i], 0.0));
        double s2 = 0.0;   /* between-replica spread of the replica means */
        for (int c = 0; c < C; c++) {
            double mc = reps[c].sum_theta[i] / reps[c].wsum - R->post_mean[i];
            s2 += mc * mc;
        }
        R->mcse_mean[i] = C > 1 ? sqrt(s2 / (C - 1) / C) : NAN;
    }
    for (int i = 0; i < nh; i++)
        R->post_mean_h[i] /= wtot;
    R->accept_rate = prop ? (double)acc / prop : NAN;
    R->accept_rate_top = tprop ? (double)tacc / tprop : NAN;
    R->swap_rate = swt ? (double)sw / swt : NAN;
    R->invalid_prior_mass = ptries ? 1.0 - (double)pvalid / ptries : NAN;
    R->rhat = R->rhat_max = NAN;
    if (S->o.method == VL_EV_TI && C >= 1) {
        R->rhat = split_rhat(reps, C, N, K, K - 1);
        R->rhat_max = R->rhat;
        for (int k = 1; k < K; k++) {
            double r = split_rhat(reps, C, N, K, k);
            if (r > R->rhat_max || isnan(R->rhat_max))
                R->rhat_max = r;
        }
    }
    R->nkept = C * N;
    return VL_OK;
}

int vl_evidence(const vl_model *model, void *const *users, const double *y,
                const double *Ep, const double *Cp, const double *Eh,
                const vl_evidence_options *o, vl_evidence_result **out,
                char *errbuf, size_t errlen)
{
    if (out)
        *out = NULL;
    if (!out || !o || !users || !y || !Ep || !Cp || !Eh) {
        vl_set_err(errbuf, errlen, "evidence: missing argument");
        return VL_ERR_INPUT;
    }
    int rc = check_options(model, o, errbuf, errlen);
    if (rc)
        return rc;
    ev_setup S;   /* GSL's abort handler is off process-wide (vl_init) */
    memset(&S, 0, sizeof S);
    S.M = model;
    S.y = y;
    S.o = *o;
    S.np = model->np;
    S.nh = model->nh;
    S.ny = model->ny;
    S.cs = model->complex_data ? 1 : 0;
    S.nobs = model->ny << S.cs;
    const int K = o->temperatures, C = o->chains;
    int nthreads = o->threads < C ? o->threads : C;
    ev_replica *reps = calloc(C, sizeof *reps);
    ev_thread *T = calloc(nthreads, sizeof *T);
    pthread_t *tid = calloc(nthreads, sizeof *tid);
    vl_evidence_result *R = calloc(1, sizeof *R);
    rc = VL_ERR_NOMEM;
    if (!reps || !T || !tid || !R || (rc = subspace(&S)))
        goto done;
    rc = VL_ERR_NOMEM;
    S.d = S.nz + (o->sample_h ? S.nh : 0);
    for (int i = 0; i < S.nh && o->sample_h; i++)
        S.pvar[S.nz + i] = model->hC[i];
    S.Eh = malloc(sizeof(double) * S.nh);
    S.beta = malloc(sizeof(double) * K);
    if (!S.Eh || !S.beta)
        goto done;
    memcpy(S.Eh, Eh, sizeof(double) * S.nh);
    for (int k = 0; k < K; k++)
        S.beta[k] = pow((double)k / (K - 1), o->power);
    if (S.d < 1) {
        rc = VL_ERR_INPUT;
        vl_set_err(errbuf, errlen, "evidence: nothing to sample (every prior variance is zero)");
        goto done;
    }
    if ((rc = confound_setup(&S)) || (rc = proposals(&S, Ep, Cp, Eh))) {
        vl_set_err(errbuf, errlen, rc == VL_ERR_NOMEM ? "out of memory"
                                                   : "evidence: the Laplace covariance is not usable");
        goto done;
    }
    for (int c = 0; c < C; c++)
        if (!replica_alloc(&reps[c], &S))
            goto done;
    for (int t = 0; t < nthreads; t++) {
        T[t] = (ev_thread){.S = &S, .reps = reps, .user = users[t], .first = t, .stride = nthreads};
        if (t > 0 && pthread_create(&tid[t], NULL, thread_main, &T[t])) {
            for (int u = 1; u < t; u++)
                pthread_join(tid[u], NULL);
            vl_set_err(errbuf, errlen, "evidence: cannot start a thread");
            goto done;
        }
    }
    thread_main(&T[0]);
    for (int t = 1; t < nthreads; t++)
        pthread_join(tid[t], NULL);
    rc = VL_OK;
    for (int t = 0; t < nthreads; t++) {
        R->evaluations += T[t].evals;
        if (T[t].status && !rc)
            rc = T[t].status;
    }
    if (rc) {
        vl_set_err(errbuf, errlen, rc == VL_ERR_NOMEM ? "out of memory"
                                : "evidence: the model could not be evaluated near the prior or the "
                                  "posterior (every prediction failed)");
        goto done;
    }
    R->np = S.np;
    R->nh = S.nh;
    R->K = K;
    R->chains = C;
    R->sample_h = o->sample_h;
    if ((rc = summarise(&S, reps, R))) {
        vl_set_err(errbuf, errlen, "out of memory");
        goto done;
    }
    *out = R;
    R = NULL;
done:
    for (int c = 0; reps && c < C; c++)
        replica_free(&reps[c]);
    free(reps);
    free(T);
    free(tid);
    vl_evidence_result_free(R);
    setup_free(&S);
    return rc;
}

double vl_evidence_loglik(const vl_model *model, void *user, const double *y,
                          const double *theta, const double *h)
{
    ev_setup S;
    memset(&S, 0, sizeof S);
    S.M = model;
    S.y = y;
    S.np = model->np;
    S.nh = model->nh;
    S.ny = model->ny;
    S.cs = model->complex_data ? 1 : 0;
    S.nobs = model->ny << S.cs;
    ev_work W;
    memset(&W, 0, sizeof W);
    double L = NAN;
    if (confound_setup(&S) == VL_OK && work_init(&W, &S, user) == VL_OK) {
        memcpy(W.theta, theta, sizeof(double) * S.np);
        memcpy(W.h, h, sizeof(double) * S.nh);
        L = loglik_at(&W);
    }
    work_free(&W);
    setup_free(&S);
    return L;
}
