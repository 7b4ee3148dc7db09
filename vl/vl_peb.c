/* vl_peb.c — Parametric Empirical Bayes (second-level model over
 * first-level posteriors) by Bayesian model reduction and variational
 * Laplace, after SPM12's spm_dcm_peb. */
#include "vl/vl_peb.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cblas.h>

#include "vl/vl_bmr.h"
#include "vl/vl_linalg.h"

#define PEB_SVD_THR 1e-6    /* spm_svd default */
#define PEB_SHRINK 16.0     /* qC <- (qC^-1 + pC^-1 / 16)^-1 */
#define PEB_PRIOR_FLOOR exp(-8.0) /* random-effect precision >= pQ e^-8 */

/* ------------------------------------------------------------ helpers */

static void mm(int ta, int tb, int m, int n, int k, const double *A, const double *B,
               double *C)
{
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                m, n, k, 1.0, A, ta ? m : k, B, tb ? k : n, 0.0, C, n);
}

static void mv(const double *A, const double *x, int m, int n, double *y)
{
    cblas_dgemv(CblasRowMajor, CblasNoTrans, m, n, 1.0, A, n, x, 1, 0.0, y, 1);
}

static double dot(const double *a, const double *b, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static int finite_all(const double *a, long n)
{
    for (long i = 0; i < n; i++)
        if (!isfinite(a[i]))
            return 0;
    return 1;
}

/* P = U' A U with U (n x r), A (n x n); tmp n*r */
static void project(const double *A, const double *U, int n, int r, double *P, double *tmp)
{
    mm(0, 0, n, r, n, A, U, tmp);
    mm(1, 0, r, r, n, U, tmp, P);
}

/* dx = (expm(t J) - I) J^-1 f with t = exp(t0 - ln|J| / n), via the
 * augmented system [0 0; t f, t J] (SPM's spm_dx with a scalar {t}) */
static int fisher_step(const double *J, const double *f, int n, double t0, double *dx)
{
    const int N = n + 1;
    double *A = calloc((size_t)N * N * 2 + vl_logdet_work(n), sizeof(double));
    if (!A)
        return -1;
    double *E = A + (size_t)N * N, *ldw = E + (size_t)N * N;
    double ld = vl_logdet(J, n, ldw);
    double t = exp(t0 - ld / n);
    int rc = 0;
    if (!isfinite(t) || t > exp(16.0)) {
        /* Newton step: -J^-1 f (SPM uses the pseudo-inverse here) */
        double *Ji = E;
        memcpy(Ji, J, sizeof(double) * (size_t)n * n);
        rc = vl_inv_reg(Ji, n, 0.0);
        if (rc == 0) {
            mv(Ji, f, n, n, dx);
            for (int i = 0; i < n; i++)
                dx[i] = -dx[i];
        }
    } else {
        for (int i = 0; i < n; i++) {
            A[(i + 1) * N] = t * f[i];
            for (int j = 0; j < n; j++)
                A[(i + 1) * N + j + 1] = t * J[i * n + j];
        }
        vl_expm_work *w = vl_expm_alloc(N);
        rc = w ? vl_expm(A, N, E, w) : -1;
        vl_expm_free(w);
        if (rc == 0)
            for (int i = 0; i < n; i++)
                dx[i] = E[(i + 1) * N];
    }
    free(A);
    return rc;
}

/* ------------------------------------------------------------ result */

void vl_peb_result_free(vl_peb_result *r)
{
    if (!r)
        return;
    free(r->sel);
    free(r->Ep);
    free(r->Cp);
    free(r->Eh);
    free(r->Ch);
    free(r->Ce);
    memset(r, 0, sizeof *r); /* counts too: a freed result reads as empty */
}

/* ------------------------------------------------------------- main */

typedef struct {
    /* sizes */
    int Ns, Np, r, Nx, Nb, Ng, Nt;
    /* subject moments in the subspace: Ns x r, Ns x r x r */
    double *qE, *qC, *pE, *pC, *iF;
    const double *X;
    double *Xc;
    double *U;        /* Np x r */
    double *pQ;       /* r x r */
    double *Q;        /* Ng x r x r */
    double *bE, *bP, *gE, *gP, *ipC;
} peb_model;

static void peb_model_free(peb_model *m)
{
    free(m->qE);
    free(m->qC);
    free(m->pE);
    free(m->pC);
    free(m->iF);
    free(m->Xc);
    free(m->U);
    free(m->pQ);
    free(m->Q);
    free(m->bE);
    free(m->bP);
    free(m->gE);
    free(m->gP);
    free(m->ipC);
    memset(m, 0, sizeof *m); /* freed twice is then harmless */
}

/* state of one evaluation of F and its derivatives */
typedef struct {
    double F, Fc;
    double *dFdb, *dFdbb, *dFdg, *dFdgg, *dFdbg;
    double *rP, *rC;
} peb_eval;

/* F, gradients and curvatures at (b, g) */
static int peb_evaluate(const peb_model *m, const double *b, const double *g, peb_eval *e,
                        double *work)
{
    const int r = m->r, Nb = m->Nb, Ng = m->Ng, Nx = m->Nx;
    const size_t rr = (size_t)r * r;
    double *rE = work, *sE = rE + r, *dE = sE + r, *v = dE + r, *w = v + r;
    double *sC = w + r, *T1 = sC + rr, *T2 = T1 + rr;
    double *A = T2 + rr;          /* Ng x r x r: rC Q_k rC - sC Q_k sC */
    double *V = A + (size_t)Ng * rr; /* Ng x r: Q_k dE */
    double *SV = V + (size_t)Ng * r; /* Ng x r: sC Q_k dE */
    double *eg = SV + (size_t)Ng * r;

    /* random-effect precision, floored at a fraction of pQ */
    for (size_t k = 0; k < rr; k++)
        e->rP[k] = m->pQ[k] * PEB_PRIOR_FLOOR;
    if (Ng == 0)
        memcpy(e->rP, m->pQ, sizeof(double) * rr);
    for (int j = 0; j < Ng; j++) {
        eg[j] = exp(g[j]);
        for (size_t k = 0; k < rr; k++)
            e->rP[k] += eg[j] * m->Q[j * rr + k];
    }
    memcpy(e->rC, e->rP, sizeof(double) * rr);
    if (vl_inv_reg(e->rC, r, -1.0))
        return VL_PEB_ENONFINITE;

    /* prior terms */
    for (int i = 0; i < Nb; i++) {
        double a = 0.0;
        for (int k = 0; k < Nb; k++)
            a -= m->bP[i * Nb + k] * (b[k] - m->bE[k]);
        e->dFdb[i] = a;
    }
    for (int k = 0; k < Nb * Nb; k++)
        e->dFdbb[k] = -m->bP[k];
    for (int i = 0; i < Ng; i++) {
        double a = 0.0;
        for (int k = 0; k < Ng; k++)
            a -= m->gP[i * Ng + k] * (g[k] - m->gE[k]);
        e->dFdg[i] = a;
    }
    for (int k = 0; k < Ng * Ng; k++)
        e->dFdgg[k] = -m->gP[k];
    memset(e->dFdbg, 0, sizeof(double) * (size_t)Nb * (Ng ? Ng : 1));

    /* subjects: evidence and posterior under the empirical prior by BMR */
    double F = 0.0;
    for (int s = 0; s < m->Ns; s++) {
        const double *Xi = m->X + (size_t)s * Nx;
        for (int k = 0; k < r; k++) {
            double a = 0.0;
            for (int j = 0; j < Nx; j++)
                a += Xi[j] * b[j * r + k];
            rE[k] = a;
        }
        double Fi = 0.0;
        int rc = vl_bmr_reduce(r, m->qE + (size_t)s * r, m->qC + s * rr, m->pE + (size_t)s * r,
                               m->pC + s * rr, rE, e->rC, &Fi, sE, sC);
        if (rc)
            return VL_PEB_ENONFINITE;
        F += Fi + m->iF[s];
        for (int k = 0; k < r; k++)
            dE[k] = sE[k] - rE[k];
        /* dF/db += Xi' rP dE */
        mv(e->rP, dE, r, r, v);
        for (int j = 0; j < Nx; j++)
            for (int k = 0; k < r; k++)
                e->dFdb[j * r + k] += Xi[j] * v[k];
        /* d2F/db2 += Xi' (rP sC rP - rP) Xi */
        mm(0, 0, r, r, r, e->rP, sC, T1);
        mm(0, 0, r, r, r, T1, e->rP, T2);
        for (size_t k = 0; k < rr; k++)
            T2[k] -= e->rP[k];
        for (int j1 = 0; j1 < Nx; j1++)
            for (int j2 = 0; j2 < Nx; j2++) {
                double x = Xi[j1] * Xi[j2];
                if (x == 0.0)
                    continue;
                for (int a = 0; a < r; a++)
                    for (int c = 0; c < r; c++)
                        e->dFdbb[(j1 * r + a) * Nb + j2 * r + c] += x * T2[a * r + c];
            }
        if (Ng == 0)
            continue;
        /* precision components */
        for (int j = 0; j < Ng; j++) {
            const double *Qj = m->Q + j * rr;
            mv(Qj, dE, r, r, V + (size_t)j * r);
            mv(sC, V + (size_t)j * r, r, r, SV + (size_t)j * r);
            /* A_j = rC Q_j rC - sC Q_j sC */
            mm(0, 0, r, r, r, e->rC, Qj, T1);
            mm(0, 0, r, r, r, T1, e->rC, A + j * rr);
            mm(0, 0, r, r, r, sC, Qj, T1);
            mm(0, 0, r, r, r, T1, sC, T2);
            for (size_t k = 0; k < rr; k++)
                A[j * rr + k] -= T2[k];
        }
        for (int j = 0; j < Ng; j++) {
            const double *Qj = m->Q + j * rr;
            const double *vj = V + (size_t)j * r;
            /* tr((rC - sC) Q_j) - dE' Q_j dE */
            double tr = 0.0;
            for (int a = 0; a < r; a++)
                for (int c = 0; c < r; c++)
                    tr += (e->rC[a * r + c] - sC[a * r + c]) * Qj[c * r + a];
            double dg = eg[j] * (tr - dot(dE, vj, r)) / 2.0;
            e->dFdg[j] += dg;
            e->dFdgg[j * Ng + j] += dg;
            /* d2F/dbdg_j += e^g_j Xi' (I - rP sC) Q_j dE */
            mv(e->rP, SV + (size_t)j * r, r, r, w);
            for (int jx = 0; jx < Nx; jx++)
                for (int k = 0; k < r; k++)
                    e->dFdbg[(jx * r + k) * Ng + j] += eg[j] * Xi[jx] * (vj[k] - w[k]);
            for (int k = 0; k < Ng; k++) {
                const double *Ak = A + k * rr;
                double t2 = 0.0;
                for (int a = 0; a < r; a++)
                    for (int c = 0; c < r; c++)
                        t2 += Ak[a * r + c] * Qj[c * r + a];
                double q2 = dot(V + (size_t)k * r, SV + (size_t)j * r, r);
                e->dFdgg[j * Ng + k] -= eg[j] * eg[k] * (t2 / 2.0 - q2);
            }
        }
    }
    e->F = F;
    return VL_PEB_OK;
}

int vl_peb(const vl_peb_input *in, const vl_peb_opts *opts, vl_peb_result *out)
{
    vl_init();
    if (!out)
        return VL_PEB_EINVAL;
    memset(out, 0, sizeof *out);
    if (!in || in->nsub < 2 || in->np < 1 || !in->qE || !in->qC || !in->pE ||
        (!in->pC && !in->pV))
        return VL_PEB_EINVAL;
    const int Ns = in->nsub, n = in->np;
    const size_t nn = (size_t)n * n;
    if (!finite_all(in->qE, (long)Ns * n) || !finite_all(in->qC, (long)(Ns * nn)) ||
        !finite_all(in->pE, (long)Ns * n) ||
        (in->pC && !finite_all(in->pC, (long)(Ns * nn))) ||
        (!in->pC && !finite_all(in->pV, (long)Ns * n)) || (in->F && !finite_all(in->F, Ns)) ||
        (in->X && !finite_all(in->X, (long)Ns * in->nx)))
        return VL_PEB_ENONFINITE;
    const int Nx = in->X ? in->nx : 1;
    if (Nx < 1)
        return VL_PEB_EINVAL;

    /* options */
    const double alpha = opts && opts->alpha > 0 ? opts->alpha : 1.0;
    const double beta = opts && opts->beta > 0 ? opts->beta : 16.0;
    const double hE = opts ? opts->hE : 0.0;
    const double hC = opts && opts->hC > 0 ? opts->hC : 1.0 / 16.0;
    const int maxit = opts && opts->maxit > 0 ? opts->maxit : 64;
    const vl_peb_qmode qmode = opts ? opts->Q : VL_PEB_Q_SINGLE;
    if (qmode == VL_PEB_Q_CUSTOM && (!opts->comp || opts->ncomp < 1))
        return VL_PEB_EINVAL;
    if (qmode < VL_PEB_Q_SINGLE || qmode > VL_PEB_Q_NONE)
        return VL_PEB_EINVAL;

#define PRIOR_C(s, i, j)                                                                          \
    (in->pC ? in->pC[(size_t)(s) * nn + (size_t)(i) * n + (j)]                                    \
            : ((i) == (j) ? in->pV[(size_t)(s) * n + (i)] : 0.0))

    /* selected parameters */
    int Np = 0;
    int *sel = malloc(sizeof(int) * (size_t)n);
    if (!sel)
        return VL_PEB_ENOMEM;
    if (in->sel) {
        if (in->nsel < 1 || in->nsel > n) {
            free(sel);
            return VL_PEB_EINVAL;
        }
        for (int i = 0; i < in->nsel; i++) {
            if (in->sel[i] < 0 || in->sel[i] >= n) {
                free(sel);
                return VL_PEB_EINVAL;
            }
            sel[Np++] = in->sel[i];
        }
    } else {
        for (int i = 0; i < n; i++)
            if (PRIOR_C(0, i, i) != 0.0)
                sel[Np++] = i;
        if (Np == 0) {
            free(sel);
            return VL_PEB_EINVAL;
        }
    }
    if (qmode == VL_PEB_Q_CUSTOM && opts->comp)
        for (int i = 0; i < Np; i++)
            if (opts->comp[i] >= opts->ncomp) {
                free(sel);
                return VL_PEB_EINVAL;
            }

    peb_model m;
    memset(&m, 0, sizeof m);
    m.Ns = Ns;
    m.Np = Np;
    m.Nx = Nx;
    const size_t pp = (size_t)Np * Np;
    double *PE = calloc((size_t)Np, sizeof(double)), *PC = calloc(pp, sizeof(double));
    double *tmp = malloc(sizeof(double) * pp), *tmp2 = malloc(sizeof(double) * pp);
    double *Xd = NULL;
    peb_eval cur = {0}, best = {0};
    double *work = NULL, *b = NULL, *g = NULL, *bs = NULL, *gs = NULL, *dFdp = NULL,
           *dFdpp = NULL, *dp = NULL, *Cb = NULL, *Cg = NULL, *Cp = NULL, *M2 = NULL;
    int rc = VL_PEB_OK;
    m.U = malloc(sizeof(double) * pp);
    if (!PE || !PC || !tmp || !tmp2 || !m.U) {
        rc = VL_PEB_ENOMEM;
        goto done;
    }
    /* mean first-level prior of the selected parameters */
    for (int s = 0; s < Ns; s++)
        for (int i = 0; i < Np; i++) {
            PE[i] += in->pE[(size_t)s * n + sel[i]] / Ns;
            for (int j = 0; j < Np; j++)
                PC[i * Np + j] += PRIOR_C(s, sel[i], sel[j]) / Ns;
        }
    /* its principal subspace */
    int r = 0;
    if (vl_bmr_subspace(PC, Np, PEB_SVD_THR, m.U, &r) || r == 0) {
        rc = r == 0 ? VL_PEB_EINVAL : VL_PEB_ENONFINITE;
        goto done;
    }
    m.r = r;
    const size_t rr = (size_t)r * r;
    m.qE = malloc(sizeof(double) * (size_t)Ns * r);
    m.pE = malloc(sizeof(double) * (size_t)Ns * r);
    m.qC = malloc(sizeof(double) * Ns * rr);
    m.pC = malloc(sizeof(double) * Ns * rr);
    m.iF = calloc((size_t)Ns, sizeof(double));
    if (!m.qE || !m.pE || !m.qC || !m.pC || !m.iF) {
        rc = VL_PEB_ENOMEM;
        goto done;
    }
    for (int s = 0; s < Ns; s++) {
        double *sub = tmp2; /* Np x Np selection */
        double *qv = tmp;   /* Np selection of a mean */
        for (int i = 0; i < Np; i++)
            qv[i] = in->qE[(size_t)s * n + sel[i]];
        cblas_dgemv(CblasRowMajor, CblasTrans, Np, r, 1.0, m.U, r, qv, 1, 0.0,
                    m.qE + (size_t)s * r, 1);
        for (int i = 0; i < Np; i++)
            qv[i] = in->pE[(size_t)s * n + sel[i]];
        cblas_dgemv(CblasRowMajor, CblasTrans, Np, r, 1.0, m.U, r, qv, 1, 0.0,
                    m.pE + (size_t)s * r, 1);
        double *ptmp = malloc(sizeof(double) * (size_t)Np * r);
        if (!ptmp) {
            rc = VL_PEB_ENOMEM;
            goto done;
        }
        for (int i = 0; i < Np; i++)
            for (int j = 0; j < Np; j++)
                sub[i * Np + j] = in->qC[(size_t)s * nn + (size_t)sel[i] * n + sel[j]];
        project(sub, m.U, Np, r, m.qC + s * rr, ptmp);
        for (int i = 0; i < Np; i++)
            for (int j = 0; j < Np; j++)
                sub[i * Np + j] = PRIOR_C(s, sel[i], sel[j]);
        project(sub, m.U, Np, r, m.pC + s * rr, ptmp);
        free(ptmp);
        /* shrink the posterior to allow for inefficient first-level
           inversions: qC = (qC^-1 + pC^-1 / 16)^-1 */
        double *a = tmp, *c = tmp2;
        memcpy(a, m.qC + s * rr, sizeof(double) * rr);
        memcpy(c, m.pC + s * rr, sizeof(double) * rr);
        if (vl_inv_reg(a, r, -1.0) || vl_inv_reg(c, r, -1.0)) {
            rc = VL_PEB_ENONFINITE;
            goto done;
        }
        for (size_t k = 0; k < rr; k++)
            a[k] += c[k] / PEB_SHRINK;
        if (vl_inv_reg(a, r, -1.0)) {
            rc = VL_PEB_ENONFINITE;
            goto done;
        }
        memcpy(m.qC + s * rr, a, sizeof(double) * rr);
        m.iF[s] = in->F ? in->F[s] : 0.0;
    }

    /* design */
    Xd = malloc(sizeof(double) * (size_t)Ns * Nx);
    m.Xc = malloc(sizeof(double) * (size_t)Nx);
    if (!Xd || !m.Xc) {
        rc = VL_PEB_ENOMEM;
        goto done;
    }
    for (int s = 0; s < Ns; s++)
        for (int j = 0; j < Nx; j++)
            Xd[s * Nx + j] = in->X ? in->X[(size_t)s * Nx + j] : 1.0;
    m.X = Xd;
    for (int j = 0; j < Nx; j++) {
        double ss = 0.0;
        for (int s = 0; s < Ns; s++)
            ss += Xd[s * Nx + j] * Xd[s * Nx + j];
        if (!(ss > 0)) {
            rc = VL_PEB_EINVAL;
            goto done;
        }
        m.Xc[j] = Ns / ss;
    }

    /* random-effect precision: pQ = (U' (PC / beta) U)^-1 and components */
    m.pQ = malloc(sizeof(double) * rr);
    double *pq = malloc(sizeof(double) * pp); /* (PC / beta)^-1 */
    if (!m.pQ || !pq) {
        free(pq);
        rc = VL_PEB_ENOMEM;
        goto done;
    }
    {
        double *ptmp = malloc(sizeof(double) * (size_t)Np * r);
        if (!ptmp) {
            free(pq);
            rc = VL_PEB_ENOMEM;
            goto done;
        }
        for (size_t k = 0; k < pp; k++)
            tmp[k] = PC[k] / beta;
        project(tmp, m.U, Np, r, m.pQ, ptmp);
        free(ptmp);
    }
    memcpy(pq, tmp, sizeof(double) * pp);
    if (vl_inv_reg(m.pQ, r, -1.0) || vl_inv_reg(pq, Np, -1.0)) {
        free(pq);
        rc = VL_PEB_ENONFINITE;
        goto done;
    }
    int Ng = 0, ncomp = 0;
    switch (qmode) {
    case VL_PEB_Q_SINGLE: ncomp = 1; break;
    case VL_PEB_Q_ALL: ncomp = Np; break;
    case VL_PEB_Q_CUSTOM: ncomp = opts->ncomp; break;
    case VL_PEB_Q_NONE: ncomp = 0; break;
    }
    m.Q = malloc(sizeof(double) * rr * (size_t)(ncomp ? ncomp : 1));
    if (!m.Q) {
        free(pq);
        rc = VL_PEB_ENOMEM;
        goto done;
    }
    if (qmode == VL_PEB_Q_SINGLE) {
        memcpy(m.Q, m.pQ, sizeof(double) * rr);
        Ng = 1;
    } else if (qmode != VL_PEB_Q_NONE) {
        double *ptmp = malloc(sizeof(double) * (size_t)Np * r);
        if (!ptmp) {
            free(pq);
            rc = VL_PEB_ENOMEM;
            goto done;
        }
        for (int c = 0; c < ncomp; c++) {
            /* the block of pq on this component's parameters, in the subspace */
            memset(tmp, 0, sizeof(double) * pp);
            for (int i = 0; i < Np; i++)
                for (int j = 0; j < Np; j++) {
                    int ci = qmode == VL_PEB_Q_ALL ? i : opts->comp[i];
                    int cj = qmode == VL_PEB_Q_ALL ? j : opts->comp[j];
                    if (ci == c && cj == c)
                        tmp[i * Np + j] = pq[i * Np + j];
                }
            double *Qc = m.Q + (size_t)Ng * rr;
            project(tmp, m.U, Np, r, Qc, ptmp);
            int any = 0;
            for (size_t k = 0; k < rr; k++)
                if (Qc[k] != 0.0)
                    any = 1;
            if (any)
                Ng++;
        }
        free(ptmp);
    }
    free(pq);
    m.Ng = Ng;
    const int Nb = r * Nx, Nt = Nb + Ng;
    m.Nb = Nb;
    m.Nt = Nt;

    /* second-level priors */
    m.bE = calloc((size_t)Nb, sizeof(double));
    m.bP = calloc((size_t)Nb * Nb, sizeof(double));
    m.gE = malloc(sizeof(double) * (size_t)(Ng ? Ng : 1));
    m.gP = calloc((size_t)(Ng ? Ng * Ng : 1), sizeof(double));
    m.ipC = calloc((size_t)Nt * Nt, sizeof(double));
    double *bC0 = malloc(sizeof(double) * rr), *ptmp = malloc(sizeof(double) * (size_t)Np * r);
    if (!m.bE || !m.bP || !m.gE || !m.gP || !m.ipC || !bC0 || !ptmp) {
        free(bC0);
        free(ptmp);
        rc = VL_PEB_ENOMEM;
        goto done;
    }
    cblas_dgemv(CblasRowMajor, CblasTrans, Np, r, 1.0, m.U, r, PE, 1, 0.0, m.bE, 1);
    for (size_t k = 0; k < pp; k++)
        tmp[k] = PC[k] / alpha;
    project(tmp, m.U, Np, r, bC0, ptmp);
    free(ptmp);
    for (int j = 0; j < Nx; j++)
        for (int a = 0; a < r; a++)
            for (int c = 0; c < r; c++)
                m.bP[(j * r + a) * Nb + j * r + c] = m.Xc[j] * bC0[a * r + c];
    free(bC0);
    if (vl_inv_reg(m.bP, Nb, -1.0)) {
        rc = VL_PEB_ENONFINITE;
        goto done;
    }
    for (int j = 0; j < Ng; j++) {
        m.gE[j] = hE;
        m.gP[j * Ng + j] = hC;
    }
    if (Ng && vl_inv_reg(m.gP, Ng, -1.0)) {
        rc = VL_PEB_ENONFINITE;
        goto done;
    }
    for (int i = 0; i < Nb; i++)
        for (int j = 0; j < Nb; j++)
            m.ipC[i * Nt + j] = m.bP[i * Nb + j];
    for (int i = 0; i < Ng; i++)
        for (int j = 0; j < Ng; j++)
            m.ipC[(Nb + i) * Nt + Nb + j] = m.gP[i * Ng + j];

    /* working storage */
    const int Ngw = Ng ? Ng : 1;
    size_t wsz = 5 * (size_t)r + 3 * rr + (size_t)Ngw * rr + 2 * (size_t)Ngw * r + Ngw + 16;
    work = malloc(sizeof(double) * wsz);
    b = malloc(sizeof(double) * Nb);
    g = malloc(sizeof(double) * Ngw);
    bs = malloc(sizeof(double) * Nb);
    gs = malloc(sizeof(double) * Ngw);
    dFdp = malloc(sizeof(double) * Nt);
    dFdpp = malloc(sizeof(double) * (size_t)Nt * Nt);
    dp = malloc(sizeof(double) * Nt);
    Cb = malloc(sizeof(double) * (size_t)Nb * Nb);
    Cg = malloc(sizeof(double) * (size_t)Ngw * Ngw);
    Cp = malloc(sizeof(double) * (size_t)Nt * Nt);
    M2 = malloc(sizeof(double) * ((size_t)Nt * Nt + vl_logdet_work(Nt)));
    peb_eval *ev[2] = {&cur, &best};
    for (int k = 0; k < 2; k++) {
        ev[k]->dFdb = malloc(sizeof(double) * Nb);
        ev[k]->dFdbb = malloc(sizeof(double) * (size_t)Nb * Nb);
        ev[k]->dFdg = malloc(sizeof(double) * Ngw);
        ev[k]->dFdgg = malloc(sizeof(double) * (size_t)Ngw * Ngw);
        ev[k]->dFdbg = malloc(sizeof(double) * (size_t)Nb * Ngw);
        ev[k]->rP = malloc(sizeof(double) * rr);
        ev[k]->rC = malloc(sizeof(double) * rr);
        if (!ev[k]->dFdb || !ev[k]->dFdbb || !ev[k]->dFdg || !ev[k]->dFdgg || !ev[k]->dFdbg ||
            !ev[k]->rP || !ev[k]->rC) {
            rc = VL_PEB_ENOMEM;
            goto done;
        }
    }
    if (!work || !b || !g || !bs || !gs || !dFdp || !dFdpp || !dp || !Cb || !Cg || !Cp || !M2) {
        rc = VL_PEB_ENOMEM;
        goto done;
    }

    /* variational Laplace over (b, g) */
    memcpy(b, m.bE, sizeof(double) * Nb);
    for (int j = 0; j < Ng; j++)
        g[j] = m.gE[j];
    double t = -4.0, F = 0.0, F0 = 0.0, dF = 0.0;
    int it = 0;
    for (it = 1; it <= maxit; it++) {
        if ((rc = peb_evaluate(&m, b, g, &cur, work)) != 0)
            goto done;
        F = cur.F;
        /* gradient and curvature of F in (b, g) */
        for (int i = 0; i < Nb; i++)
            dFdp[i] = cur.dFdb[i];
        for (int j = 0; j < Ng; j++)
            dFdp[Nb + j] = cur.dFdg[j];
        for (int i = 0; i < Nt; i++)
            for (int j = 0; j < Nt; j++) {
                double v;
                if (i < Nb && j < Nb)
                    v = cur.dFdbb[i * Nb + j];
                else if (i < Nb)
                    v = cur.dFdbg[i * Ng + (j - Nb)];
                else if (j < Nb)
                    v = cur.dFdbg[j * Ng + (i - Nb)];
                else
                    v = cur.dFdgg[(i - Nb) * Ng + (j - Nb)];
                dFdpp[i * Nt + j] = v;
            }
        /* conditional covariances */
        for (int k = 0; k < Nt * Nt; k++)
            Cp[k] = -dFdpp[k];
        for (int k = 0; k < Nb * Nb; k++)
            Cb[k] = -cur.dFdbb[k];
        for (int k = 0; k < Ng * Ng; k++)
            Cg[k] = -cur.dFdgg[k];
        if (vl_inv_reg(Cp, Nt, -1.0) || vl_inv_reg(Cb, Nb, -1.0) ||
            (Ng && vl_inv_reg(Cg, Ng, -1.0))) {
            rc = VL_PEB_ENONFINITE;
            goto done;
        }
        /* complexity of the second level: SPM's form, b' bP b / 2 (not
           centred on bE; identical when the prior mean of the group
           effects is zero, e.g. for B and C parameters) */
        double Fb = 0.0, Fg = 0.0;
        for (int i = 0; i < Nb; i++)
            for (int k = 0; k < Nb; k++)
                Fb += b[i] * m.bP[i * Nb + k] * b[k];
        for (int i = 0; i < Ng; i++)
            for (int k = 0; k < Ng; k++)
                Fg += g[i] * m.gP[i * Ng + k] * g[k];
        mm(0, 0, Nt, Nt, Nt, m.ipC, Cp, M2);
        double ld = vl_logdet(M2, Nt, M2 + (size_t)Nt * Nt);
        double Fc = Fb / 2 + Fg / 2 - ld / 2;
        F -= Fc;
        if (!isfinite(F)) {
            rc = VL_PEB_ENONFINITE;
            goto done;
        }
        if (it == 1)
            F0 = F;
        if (F >= F0) {
            /* accept: keep this expansion point */
            dF = F - F0;
            F0 = F;
            memcpy(bs, b, sizeof(double) * Nb);
            memcpy(gs, g, sizeof(double) * Ng);
            memcpy(best.dFdb, cur.dFdb, sizeof(double) * Nb);
            memcpy(best.dFdbb, cur.dFdbb, sizeof(double) * (size_t)Nb * Nb);
            memcpy(best.dFdg, cur.dFdg, sizeof(double) * Ng);
            memcpy(best.dFdgg, cur.dFdgg, sizeof(double) * (size_t)Ng * Ng);
            t = fmin(t + 0.25, 2.0);
        } else {
            /* reject: return to the last accepted point, regularise more */
            t = fmax(t - 1.0, -4.0);
            memcpy(b, bs, sizeof(double) * Nb);
            memcpy(g, gs, sizeof(double) * Ng);
        }
        /* Fisher scoring step (from the gradient just computed, as SPM) */
        if (fisher_step(dFdpp, dFdp, Nt, t, dp)) {
            rc = VL_PEB_ENONFINITE;
            goto done;
        }
        double n1 = 0.0;
        for (int i = 0; i < Nt; i++)
            n1 += fabs(dp[i]);
        if (!(n1 < 8.0)) {
            /* large step: ignore conditional dependencies between b and g */
            const peb_eval *src = F >= F0 ? &cur : &best;
            for (int i = 0; i < Nt; i++)
                for (int j = 0; j < Nt; j++) {
                    double v = 0.0;
                    if (i < Nb && j < Nb)
                        v = src->dFdbb[i * Nb + j];
                    else if (i >= Nb && j >= Nb)
                        v = src->dFdgg[(i - Nb) * Ng + (j - Nb)];
                    dFdpp[i * Nt + j] = v;
                }
            if (fisher_step(dFdpp, dFdp, Nt, t, dp)) {
                rc = VL_PEB_ENONFINITE;
                goto done;
            }
        }
        for (int i = 0; i < Nb; i++)
            b[i] += dp[i];
        for (int j = 0; j < Ng; j++)
            g[j] += tanh(dp[Nb + j]); /* bounded log-precision steps */
        /* stop when the last accepted step gained < 1e-4, or when the
           regularisation has hit its floor */
        if (it > 4 && (t <= -4.0 || dF < 1e-4))
            break;
    }
    if (it > maxit)
        it = maxit;

    /* outputs */
    out->np = Np;
    out->nx = Nx;
    out->ng = Ng;
    out->iterations = it;
    out->F = F;
    out->sel = malloc(sizeof(int) * (size_t)Np);
    out->Ep = malloc(sizeof(double) * (size_t)Np * Nx);
    out->Cp = malloc(sizeof(double) * (size_t)Np * Nx * Np * Nx);
    out->Eh = malloc(sizeof(double) * Ngw);
    out->Ch = malloc(sizeof(double) * (size_t)Ngw * Ngw);
    out->Ce = malloc(sizeof(double) * pp);
    if (!out->sel || !out->Ep || !out->Cp || !out->Eh || !out->Ch || !out->Ce) {
        rc = VL_PEB_ENOMEM;
        goto done;
    }
    memcpy(out->sel, sel, sizeof(int) * (size_t)Np);
    for (int i = 0; i < Np; i++)
        for (int j = 0; j < Nx; j++) {
            double a = 0.0;
            for (int k = 0; k < r; k++)
                a += m.U[i * r + k] * b[j * r + k];
            out->Ep[i * Nx + j] = a;
        }
    {
        const int NP = Np * Nx;
        for (int j1 = 0; j1 < Nx; j1++)
            for (int j2 = 0; j2 < Nx; j2++)
                for (int i1 = 0; i1 < Np; i1++)
                    for (int i2 = 0; i2 < Np; i2++) {
                        double a = 0.0;
                        for (int k1 = 0; k1 < r; k1++)
                            for (int k2 = 0; k2 < r; k2++)
                                a += m.U[i1 * r + k1] * Cb[(j1 * r + k1) * Nb + j2 * r + k2] *
                                     m.U[i2 * r + k2];
                        out->Cp[(j1 * Np + i1) * NP + j2 * Np + i2] = a;
                    }
    }
    memcpy(out->Eh, g, sizeof(double) * (size_t)Ng);
    memcpy(out->Ch, Cg, sizeof(double) * (size_t)Ng * Ng);
    {
        double *ptmp2 = malloc(sizeof(double) * (size_t)Np * r);
        if (!ptmp2) {
            rc = VL_PEB_ENOMEM;
            goto done;
        }
        mm(0, 0, Np, r, r, m.U, cur.rC, ptmp2);
        mm(0, 1, Np, Np, r, ptmp2, m.U, out->Ce);
        free(ptmp2);
    }

done:
    free(sel);
    free(PE);
    free(PC);
    free(tmp);
    free(tmp2);
    free(Xd);
    peb_model_free(&m);
    peb_eval *evs[2] = {&cur, &best};
    for (int k = 0; k < 2; k++) {
        free(evs[k]->dFdb);
        free(evs[k]->dFdbb);
        free(evs[k]->dFdg);
        free(evs[k]->dFdgg);
        free(evs[k]->dFdbg);
        free(evs[k]->rP);
        free(evs[k]->rC);
    }
    free(work);
    free(b);
    free(g);
    free(bs);
    free(gs);
    free(dFdp);
    free(dFdpp);
    free(dp);
    free(Cb);
    free(Cg);
    free(Cp);
    free(M2);
    if (rc)
        vl_peb_result_free(out);
    return rc;
#undef PRIOR_C
}
