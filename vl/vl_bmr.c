/* vl_bmr.c — Bayesian model reduction (closed-form evidence and posterior
 * of a model that differs from a fitted one only in its Gaussian prior). */
#include "vl/vl_bmr.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_permutation.h>
#include <gsl/gsl_vector.h>

#include "vl/vl_linalg.h"

#define BMR_TOL 1e-8      /* spm_log_evidence_reduce's inversion tolerance */
#define BMR_SVD_THR 1e-6  /* its spm_svd threshold on the prior covariance */

/* ------------------------------------------------------------ helpers */

/* C = op(A) op(B), row-major; A is m x k after op, B k x n after op */
/* vl_inv_reg's result as a vl_status: its out-of-memory (-2, or
 * VL_ERR_NOMEM) kept apart from a singular or non-finite matrix */
static int inv_status(int r)
{
    return r == 0 ? VL_OK : (r == -2 || r == VL_ERR_NOMEM) ? VL_ERR_NOMEM : VL_ERR_NONFINITE;
}

static void mm(int ta, int tb, int m, int n, int k, const double *A, const double *B,
               double *C)
{
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                m, n, k, 1.0, A, ta ? m : k, B, tb ? k : n, 0.0, C, n);
}

static int all_finite(const double *a, long n)
{
    for (long i = 0; i < n; i++)
        if (!isfinite(a[i]))
            return 0;
    return 1;
}

typedef struct {
    int i;
    double v;
} idx_val;

static int cmp_desc(const void *a, const void *b)
{
    const idx_val *x = a, *y = b;
    if (x->v > y->v)
        return -1;
    if (x->v < y->v)
        return 1;
    return (x->i > y->i) - (x->i < y->i); /* stable */
}

int vl_bmr_subspace(const double *C, int n, double thr, double *U, int *r)
{
    vl_init();
    *r = 0;
    if (n <= 0)
        return VL_OK;
    if (!all_finite(C, (long)n * n))
        return VL_ERR_NONFINITE;
    memset(U, 0, sizeof(double) * (size_t)n * n);
    int *nz = malloc(sizeof(int) * (size_t)n);
    idx_val *s = malloc(sizeof(idx_val) * (size_t)n);
    if (!nz || !s) {
        free(nz);
        free(s);
        return VL_ERR_NOMEM;
    }
    int m = 0, diagonal = 1;
    for (int i = 0; i < n; i++) {
        int any = 0;
        for (int j = 0; j < n; j++)
            if (C[i * n + j] != 0.0) {
                any = 1;
                if (j != i)
                    diagonal = 0;
            }
        if (any)
            nz[m++] = i;
    }
    int rc = VL_OK;
    if (m == 0) {
        /* nothing */
    } else if (diagonal) {
        double ss = 0.0;
        for (int a = 0; a < m; a++) {
            s[a].i = nz[a];
            s[a].v = C[nz[a] * n + nz[a]];
            ss += s[a].v * s[a].v;
        }
        qsort(s, (size_t)m, sizeof(idx_val), cmp_desc);
        int k = 0;
        for (int a = 0; a < m; a++)
            if (s[a].v * s[a].v * m / ss > thr)
                U[s[a].i * n + k++] = 1.0;
        *r = k;
    } else {
        gsl_matrix *S = gsl_matrix_alloc((size_t)m, (size_t)m);
        gsl_matrix *V = gsl_matrix_alloc((size_t)m, (size_t)m);
        gsl_vector *ev = gsl_vector_alloc((size_t)m);
        gsl_eigen_symmv_workspace *w = gsl_eigen_symmv_alloc((size_t)m);
        if (!S || !V || !ev || !w) {
            rc = VL_ERR_NOMEM;
        } else {
            for (int a = 0; a < m; a++)
                for (int b = 0; b < m; b++)
                    gsl_matrix_set(S, (size_t)a, (size_t)b, C[nz[a] * n + nz[b]]);
            if (gsl_eigen_symmv(S, ev, V, w) != 0) {
                rc = VL_ERR_NONFINITE;
            } else {
                gsl_eigen_symmv_sort(ev, V, GSL_EIGEN_SORT_ABS_DESC);
                double ss = 0.0;
                for (int a = 0; a < m; a++) {
                    double l = gsl_vector_get(ev, (size_t)a);
                    ss += l * l;
                }
                int k = 0;
                for (int a = 0; a < m; a++) {
                    double l = gsl_vector_get(ev, (size_t)a);
                    if (l * l * m / ss > thr) {
                        for (int b = 0; b < m; b++)
                            U[nz[b] * n + k] = gsl_matrix_get(V, (size_t)b, (size_t)a);
                        k++;
                    }
                }
                *r = k;
            }
        }
        if (S)
            gsl_matrix_free(S);
        if (V)
            gsl_matrix_free(V);
        if (ev)
            gsl_vector_free(ev);
        if (w)
            gsl_eigen_symmv_free(w);
    }
    /* U is n x n storage used as n x r: compact the rows to stride r */
    if (rc == VL_OK && *r < n) {
        int k = *r;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < k; j++)
                U[i * k + j] = U[i * n + j];
    }
    free(nz);
    free(s);
    return rc;
}

/* ------------------------------------------------------------- reduce */

/* P = U' A U (U n x r row-major, A n x n); tmp: n*r */
static void project(const double *A, const double *U, int n, int r, double *P, double *tmp)
{
    mm(0, 0, n, r, n, A, U, tmp); /* A U: n x r */
    mm(1, 0, r, r, n, U, tmp, P); /* U' (A U) */
}

static double dot(const double *a, const double *b, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* y = A x (A r x r) */
static void mv(const double *A, const double *x, int r, double *y)
{
    cblas_dgemv(CblasRowMajor, CblasNoTrans, r, r, 1.0, A, r, x, 1, 0.0, y, 1);
}

int vl_bmr_reduce(int n, const double *qE, const double *qC, const double *pE,
                  const double *pC, const double *rE, const double *rC, double *dF,
                  double *sE, double *sC)
{
    vl_init();
    if (n < 1 || !qE || !qC || !pE || !pC || !rE || !rC || !dF)
        return VL_ERR_INPUT;
    const long nn = (long)n * n;
    if (!all_finite(qE, n) || !all_finite(pE, n) || !all_finite(rE, n) ||
        !all_finite(qC, nn) || !all_finite(pC, nn) || !all_finite(rC, nn))
        return VL_ERR_NONFINITE;
    /* workspace: U (n*n), tmp (n*n), 6 r x r matrices, 8 vectors */
    double *mem = malloc(sizeof(double) * (size_t)(2 * nn + 6 * nn + 8 * n +
                                                   (long)vl_logdet_work(n)));
    if (!mem)
        return VL_ERR_NOMEM;
    double *U = mem, *tmp = U + nn, *qP = tmp + nn, *pP = qP + nn, *rP = pP + nn;
    double *sCr = rP + nn, *pCr = sCr + nn, *prod = pCr + nn;
    double *q = prod + nn, *p = q + n, *r_ = p + n, *s = r_ + n, *t1 = s + n, *t2 = t1 + n;
    double *ldw = t2 + 2 * n;
    int r = 0, rc = VL_OK;
    if ((rc = vl_bmr_subspace(pC, n, BMR_SVD_THR, U, &r)) != VL_OK) {
        free(mem);
        return rc;
    }
    if (r > 0) {
        /* moments in the subspace */
        cblas_dgemv(CblasRowMajor, CblasTrans, n, r, 1.0, U, r, qE, 1, 0.0, q, 1);
        cblas_dgemv(CblasRowMajor, CblasTrans, n, r, 1.0, U, r, pE, 1, 0.0, p, 1);
        cblas_dgemv(CblasRowMajor, CblasTrans, n, r, 1.0, U, r, rE, 1, 0.0, r_, 1);
        project(qC, U, n, r, qP, tmp);
        project(pC, U, n, r, pP, tmp);
        project(rC, U, n, r, rP, tmp);
        if ((rc = inv_status(vl_inv_reg(qP, r, BMR_TOL))) ||
            (rc = inv_status(vl_inv_reg(pP, r, BMR_TOL))) ||
            (rc = inv_status(vl_inv_reg(rP, r, BMR_TOL))))
            goto done;
        /* sP = qP + rP - pP; sC = sP^-1; the full prior covariance is
           recovered from its (regularised) precision, as SPM */
        for (long k = 0; k < (long)r * r; k++)
            sCr[k] = qP[k] + rP[k] - pP[k];
        memcpy(pCr, pP, sizeof(double) * (size_t)r * r);
        if ((rc = inv_status(vl_inv_reg(sCr, r, BMR_TOL))) ||
            (rc = inv_status(vl_inv_reg(pCr, r, BMR_TOL))))
            goto done;
        /* s = qP q + rP r - pP p (the reduced posterior's precision-weighted mean) */
        double quad = 0.0;
        mv(qP, q, r, t1);
        quad += dot(q, t1, r);
        for (int i = 0; i < r; i++)
            s[i] = t1[i];
        mv(rP, r_, r, t1);
        quad += dot(r_, t1, r);
        for (int i = 0; i < r; i++)
            s[i] += t1[i];
        mv(pP, p, r, t1);
        quad -= dot(p, t1, r);
        for (int i = 0; i < r; i++)
            s[i] -= t1[i];
        mv(sCr, s, r, t2); /* reduced posterior mean in the subspace */
        quad -= dot(s, t2, r);
        /* ln |rP qP sC pC| */
        mm(0, 0, r, r, r, rP, qP, prod);
        mm(0, 0, r, r, r, prod, sCr, tmp);
        mm(0, 0, r, r, r, tmp, pCr, prod);
        double ld = vl_logdet(prod, r, ldw);
        if (!isfinite(ld) || !isfinite(quad)) {
            rc = VL_ERR_NONFINITE;
            goto done;
        }
        *dF = 0.5 * (ld - quad);
    } else {
        *dF = 0.0;
    }
    if (sE) {
        /* U (sC s) + rE - U U' rE */
        for (int i = 0; i < n; i++) {
            double a = rE[i];
            for (int k = 0; k < r; k++)
                a += U[i * r + k] * (t2[k] - r_[k]);
            sE[i] = a;
        }
    }
    if (sC) {
        if (r > 0) {
            mm(0, 0, n, r, r, U, sCr, tmp); /* U sC: n x r */
            mm(0, 1, n, n, r, tmp, U, sC);  /* (U sC) U' */
        } else {
            memset(sC, 0, sizeof(double) * (size_t)nn);
        }
    }
done:
    free(mem);
    return rc;
}

/* ------------------------------------------------------------- search */

void vl_bmr_search_result_free(vl_bmr_search_result *r)
{
    if (!r)
        return;
    free(r->keep);
    free(r->Ep);
    free(r->Cp);
    free(r->Ep_bma);
    free(r->Cp_bma);
    free(r->Pp);
    memset(r, 0, sizeof *r); /* counts too: a freed result reads as empty */
}

/* ---------------------------------------------------------------- BMA */

int vl_bma_init(vl_bma *a, int n, int full)
{
    memset(a, 0, sizeof *a);
    a->n = n;
    a->full = full;
    a->fmax = -INFINITY;
    a->m1 = calloc((size_t)n, sizeof(double));
    a->m2 = calloc(full ? (size_t)n * n : (size_t)n, sizeof(double));
    a->pp = calloc((size_t)n, sizeof(double));
    if (!a->m1 || !a->m2 || !a->pp) {
        vl_bma_free(a);
        return VL_ERR_NOMEM;
    }
    return VL_OK;
}

void vl_bma_free(vl_bma *a)
{
    free(a->m1);
    free(a->m2);
    free(a->pp);
    a->m1 = a->m2 = a->pp = NULL;
}

/* sum += w (E, C + E E', present) */
static void bma_accumulate(vl_bma *a, double w, const double *E, const double *C,
                           const unsigned char *present)
{
    const int n = a->n;
    a->w += w;
    for (int i = 0; i < n; i++) {
        a->m1[i] += w * E[i];
        if (present && present[i])
            a->pp[i] += w;
        if (a->full)
            for (int j = 0; j < n; j++)
                a->m2[i * n + j] += w * (C[i * n + j] + E[i] * E[j]);
        else
            a->m2[i] += w * (C[i] + E[i] * E[i]);
    }
}

void vl_bma_add_weighted(vl_bma *a, double weight, const double *E, const double *C,
                         const unsigned char *present)
{
    a->normalised = 1;
    bma_accumulate(a, weight, E, C, present);
}

void vl_bma_add(vl_bma *a, double F, const double *E, const double *C,
                const unsigned char *present)
{
    const int n = a->n;
    const long n2 = a->full ? (long)n * n : n;
    if (F > a->fmax) {
        double k = exp(a->fmax - F);
        a->w *= k;
        for (int i = 0; i < n; i++) {
            a->m1[i] *= k;
            a->pp[i] *= k;
        }
        for (long i = 0; i < n2; i++)
            a->m2[i] *= k;
        a->fmax = F;
    }
    bma_accumulate(a, exp(F - a->fmax), E, C, present);
}

void vl_bma_finish(const vl_bma *a, double *mean, double *C, double *pp)
{
    const int n = a->n;
    const double w = a->normalised ? 1.0 : a->w; /* x / 1.0 is x exactly */
    for (int i = 0; i < n; i++) {
        double m = a->m1[i] / w;
        if (mean)
            mean[i] = m;
        if (pp)
            pp[i] = a->pp[i] / w;
    }
    if (!C)
        return;
    for (int i = 0; i < n; i++) {
        double mi = a->m1[i] / w;
        if (a->full)
            for (int j = 0; j < n; j++)
                C[i * n + j] = a->m2[i * n + j] / w - mi * (a->m1[j] / w);
        else
            C[i] = a->m2[i] / w - mi * mi;
    }
}

/* ------------------------------------------------------------- search */

typedef struct {
    int n;
    const double *qE, *qC, *pE, *pC;
    double *rC, *sE, *sC;
    unsigned char *present;
    vl_bma bma;
} search_ctx;

/* score the model with parameters `off` switched off; enter it in the BMA */
static int score(search_ctx *c, const unsigned char *off, double *dF)
{
    const int n = c->n;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            c->rC[i * n + j] = (off[i] || off[j]) ? 0.0 : c->pC[i * n + j];
    int rc = vl_bmr_reduce(n, c->qE, c->qC, c->pE, c->pC, c->pE, c->rC, dF, c->sE, c->sC);
    if (rc)
        return rc;
    for (int i = 0; i < n; i++)
        c->present[i] = !off[i] && c->pC[i * n + i] > 0;
    vl_bma_add(&c->bma, *dF, c->sE, c->sC, c->present);
    return 0;
}

int vl_bmr_search(int n, const double *qE, const double *qC, const double *pE,
                  const double *pC, const unsigned char *candidates,
                  vl_bmr_search_result *out)
{
    vl_init();
    if (!out)
        return VL_ERR_INPUT;
    memset(out, 0, sizeof *out);
    if (n < 1 || !qE || !qC || !pE || !pC)
        return VL_ERR_INPUT;
    const size_t nn = (size_t)n * n;
    out->n = n;
    out->keep = malloc((size_t)n);
    out->Ep = malloc(sizeof(double) * (size_t)n);
    out->Cp = malloc(sizeof(double) * nn);
    out->Ep_bma = calloc((size_t)n, sizeof(double));
    out->Cp_bma = calloc(nn, sizeof(double));
    out->Pp = calloc((size_t)n, sizeof(double));
    unsigned char *off = calloc((size_t)n, 1), *trial = calloc((size_t)n, 1);
    unsigned char *cand = calloc((size_t)n, 1);
    double *dfi = malloc(sizeof(double) * (size_t)n);
    search_ctx c = {n, qE, qC, pE, pC, malloc(sizeof(double) * nn),
                    malloc(sizeof(double) * (size_t)n), malloc(sizeof(double) * nn),
                    malloc((size_t)n), {0}};
    int rc = vl_bma_init(&c.bma, n, 1);
    if (rc || !out->keep || !out->Ep || !out->Cp || !out->Ep_bma || !out->Cp_bma || !out->Pp ||
        !off || !trial || !cand || !dfi || !c.rC || !c.sE || !c.sC || !c.present) {
        rc = VL_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < n; i++)
        cand[i] = (candidates ? candidates[i] != 0 : 1) && pC[i * n + i] > 0;
    /* the full model */
    double Fcur = 0.0, f = 0.0;
    if ((rc = score(&c, off, &f)) != 0)
        goto done;
    Fcur = f;
    out->nmodels = 1;
    for (;;) {
        int best = -1, nimp = 0;
        for (int i = 0; i < n; i++) {
            dfi[i] = -INFINITY;
            if (!cand[i] || off[i])
                continue;
            memcpy(trial, off, (size_t)n);
            trial[i] = 1;
            if ((rc = score(&c, trial, &dfi[i])) != 0)
                goto done;
            out->nmodels++;
            if (dfi[i] > Fcur) {
                nimp++;
                if (best < 0 || dfi[i] > dfi[best])
                    best = i;
            }
        }
        if (best < 0)
            break;
        double Fnew = dfi[best];
        memcpy(trial, off, (size_t)n);
        trial[best] = 1;
        if (nimp > 1) {
            unsigned char *joint = malloc((size_t)n);
            if (!joint) {
                rc = VL_ERR_NOMEM;
                goto done;
            }
            memcpy(joint, off, (size_t)n);
            for (int i = 0; i < n; i++)
                if (dfi[i] > Fcur)
                    joint[i] = 1;
            double fj = 0.0;
            rc = score(&c, joint, &fj);
            out->nmodels++;
            if (rc == 0 && fj >= Fnew) {
                memcpy(trial, joint, (size_t)n);
                Fnew = fj;
            }
            free(joint);
            if (rc)
                goto done;
        }
        memcpy(off, trial, (size_t)n);
        Fcur = Fnew;
    }
    /* the selected model's posterior */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            c.rC[i * n + j] = (off[i] || off[j]) ? 0.0 : pC[i * n + j];
    if ((rc = vl_bmr_reduce(n, qE, qC, pE, pC, pE, c.rC, &out->dF, out->Ep, out->Cp)) != 0)
        goto done;
    out->nremoved = 0;
    for (int i = 0; i < n; i++) {
        out->keep[i] = !off[i] && pC[i * n + i] > 0;
        out->nremoved += off[i];
    }
    vl_bma_finish(&c.bma, out->Ep_bma, out->Cp_bma, out->Pp);
done:
    vl_bma_free(&c.bma);
    free(c.present);
    free(off);
    free(trial);
    free(cand);
    free(dfi);
    free(c.rC);
    free(c.sE);
    free(c.sC);
    if (rc)
        vl_bmr_search_result_free(out);
    return rc;
}
