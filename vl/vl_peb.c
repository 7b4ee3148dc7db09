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
 * augmented system [0 0; t f, t J] (SPM's spm_dx with a scalar {t}).
 * Returns a vl_status. */
static int fisher_step(const double *J, const double *f, int n, double t0, double *dx)
{
    const int N = n + 1;
    double *A = calloc((size_t)N * N * 2 + vl_logdet_work(n), sizeof(double));
    if (!A)
        return VL_ERR_NOMEM;
    double *E = A + (size_t)N * N, *ldw = E + (size_t)N * N;
    double ld = vl_logdet(J, n, ldw);
    double t = exp(t0 - ld / n);
    int rc = 0;
    if (!isfinite(t) || t > exp(16.0)) {
        /* Newton step: -J^-1 f (SPM uses the pseudo-inverse here) */
        double *Ji = E;
        memcpy(Ji, J, sizeof(double) * (size_t)n * n);
        rc = inv_status(vl_inv_reg(Ji, n, 0.0));
        if (rc == VL_OK) {
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
        rc = !w ? VL_ERR_NOMEM : vl_expm(A, N, E, w) ? VL_ERR_NONFINITE : VL_OK;
        vl_expm_free(w);
        if (rc == VL_OK)
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

/* ------------------------------------------------------------ options */

typedef struct {
    double alpha, beta, hE, hC;
    int maxit;
    vl_peb_qmode qmode;
    const int *comp;
    int ncomp;
} peb_options;

/* SPM's defaults for what the caller left at zero */
static int peb_options_read(const vl_peb_opts *opts, peb_options *o)
{
    o->alpha = opts && opts->alpha > 0 ? opts->alpha : 1.0;
    o->beta = opts && opts->beta > 0 ? opts->beta : 16.0;
    o->hE = opts ? opts->hE : 0.0;
    o->hC = opts && opts->hC > 0 ? opts->hC : 1.0 / 16.0;
    o->maxit = opts && opts->maxit > 0 ? opts->maxit : 64;
    o->qmode = opts ? opts->Q : VL_PEB_Q_SINGLE;
    o->comp = opts ? opts->comp : NULL;
    o->ncomp = opts ? opts->ncomp : 0;
    if (o->qmode == VL_PEB_Q_CUSTOM && (!o->comp || o->ncomp < 1))
        return VL_ERR_INPUT;
    if (o->qmode < VL_PEB_Q_SINGLE || o->qmode > VL_PEB_Q_NONE)
        return VL_ERR_INPUT;
    return VL_OK;
}

static int peb_check_input(const vl_peb_input *in)
{
    if (!in || in->nsub < 2 || in->np < 1 || !in->qE || !in->qC || !in->pE ||
        (!in->pC && !in->pV))
        return VL_ERR_INPUT;
    const int Ns = in->nsub, n = in->np;
    const size_t nn = (size_t)n * n;
    if (!finite_all(in->qE, (long)Ns * n) || !finite_all(in->qC, (long)(Ns * nn)) ||
        !finite_all(in->pE, (long)Ns * n) ||
        (in->pC && !finite_all(in->pC, (long)(Ns * nn))) ||
        (!in->pC && !finite_all(in->pV, (long)Ns * n)) || (in->F && !finite_all(in->F, Ns)) ||
        (in->X && !finite_all(in->X, (long)Ns * in->nx)))
        return VL_ERR_NONFINITE;
    if ((in->X ? in->nx : 1) < 1)
        return VL_ERR_INPUT;
    return VL_OK;
}

/* subject s's first-level prior covariance, full or diagonal */
static double prior_c(const vl_peb_input *in, int s, int i, int j)
{
    const int n = in->np;
    return in->pC ? in->pC[(size_t)s * n * n + (size_t)i * n + j]
                  : (i == j ? in->pV[(size_t)s * n + i] : 0.0);
}

/* the parameters treated as random effects (sel holds np ints) */
static int peb_select(const vl_peb_input *in, const peb_options *o, int *sel, int *Np)
{
    const int n = in->np;
    *Np = 0;
    if (in->sel) {
        if (in->nsel < 1 || in->nsel > n)
            return VL_ERR_INPUT;
        for (int i = 0; i < in->nsel; i++) {
            if (in->sel[i] < 0 || in->sel[i] >= n)
                return VL_ERR_INPUT;
            sel[(*Np)++] = in->sel[i];
        }
    } else {
        for (int i = 0; i < n; i++)
            if (prior_c(in, 0, i, i) != 0.0)
                sel[(*Np)++] = i;
        if (*Np == 0)
            return VL_ERR_INPUT;
    }
    if (o->qmode == VL_PEB_Q_CUSTOM && o->comp)
        for (int i = 0; i < *Np; i++)
            if (o->comp[i] >= o->ncomp)
                return VL_ERR_INPUT;
    return VL_OK;
}

/* ------------------------------------------------------------- model */

typedef struct {
    /* sizes */
    int Ns, Np, r, Nx, Nb, Ng, Nt;
    /* subject moments in the subspace: Ns x r, Ns x r x r */
    double *qE, *qC, *pE, *pC, *iF;
    const double *X;
    double *Xd;       /* Ns x Nx: the design (a constant when none given) */
    double *Xc;
    double *U;        /* Np x r */
    double *pQ;       /* r x r */
    double *Q;        /* Ng x r x r */
    double *bE, *bP, *gE, *gP, *ipC;
    double *PE, *PC;  /* mean first-level prior of the selected parameters */
} peb_model;

static void peb_model_free(peb_model *m)
{
    free(m->qE);
    free(m->qC);
    free(m->pE);
    free(m->pC);
    free(m->iF);
    free(m->Xd);
    free(m->Xc);
    free(m->U);
    free(m->pQ);
    free(m->Q);
    free(m->bE);
    free(m->bP);
    free(m->gE);
    free(m->gP);
    free(m->ipC);
    free(m->PE);
    free(m->PC);
    memset(m, 0, sizeof *m); /* freed twice is then harmless */
}

/* The mean first-level prior of the selected parameters, its principal
 * subspace (U, r), and every subject's moments projected onto it, the
 * posterior shrunk as SPM does. */
static int peb_setup_subjects(peb_model *m, const vl_peb_input *in, const int *sel)
{
    const int Ns = m->Ns, Np = m->Np, n = in->np;
    const size_t nn = (size_t)n * n, pp = (size_t)Np * Np;
    m->PE = calloc((size_t)Np, sizeof(double));
    m->PC = calloc(pp, sizeof(double));
    m->U = malloc(sizeof(double) * pp);
    double *tmp = malloc(sizeof(double) * pp), *tmp2 = malloc(sizeof(double) * pp);
    double *ptmp = NULL;
    int rc = VL_OK;
    if (!m->PE || !m->PC || !tmp || !tmp2 || !m->U) {
        rc = VL_ERR_NOMEM;
        goto done;
    }
    for (int s = 0; s < Ns; s++)
        for (int i = 0; i < Np; i++) {
            m->PE[i] += in->pE[(size_t)s * n + sel[i]] / Ns;
            for (int j = 0; j < Np; j++)
                m->PC[i * Np + j] += prior_c(in, s, sel[i], sel[j]) / Ns;
        }
    int r = 0;
    if ((rc = vl_bmr_subspace(m->PC, Np, PEB_SVD_THR, m->U, &r)) != VL_OK)
        goto done;
    if (r == 0) {
        rc = VL_ERR_INPUT;
        goto done;
    }
    m->r = r;
    const size_t rr = (size_t)r * r;
    m->qE = malloc(sizeof(double) * (size_t)Ns * r);
    m->pE = malloc(sizeof(double) * (size_t)Ns * r);
    m->qC = malloc(sizeof(double) * Ns * rr);
    m->pC = malloc(sizeof(double) * Ns * rr);
    m->iF = calloc((size_t)Ns, sizeof(double));
    ptmp = malloc(sizeof(double) * (size_t)Np * r);
    if (!m->qE || !m->pE || !m->qC || !m->pC || !m->iF || !ptmp) {
        rc = VL_ERR_NOMEM;
        goto done;
    }
    for (int s = 0; s < Ns; s++) {
        double *sub = tmp2; /* Np x Np selection */
        double *qv = tmp;   /* Np selection of a mean */
        for (int i = 0; i < Np; i++)
            qv[i] = in->qE[(size_t)s * n + sel[i]];
        cblas_dgemv(CblasRowMajor, CblasTrans, Np, r, 1.0, m->U, r, qv, 1, 0.0,
                    m->qE + (size_t)s * r, 1);
        for (int i = 0; i < Np; i++)
            qv[i] = in->pE[(size_t)s * n + sel[i]];
        cblas_dgemv(CblasRowMajor, CblasTrans, Np, r, 1.0, m->U, r, qv, 1, 0.0,
                    m->pE + (size_t)s * r, 1);
        for (int i = 0; i < Np; i++)
            for (int j = 0; j < Np; j++)
                sub[i * Np + j] = in->qC[(size_t)s * nn + (size_t)sel[i] * n + sel[j]];
        project(sub, m->U, Np, r, m->qC + s * rr, ptmp);
        for (int i = 0; i < Np; i++)
            for (int j = 0; j < Np; j++)
                sub[i * Np + j] = prior_c(in, s, sel[i], sel[j]);
        project(sub, m->U, Np, r, m->pC + s * rr, ptmp);
        /* shrink the posterior to allow for inefficient first-level
           inversions: qC = (qC^-1 + pC^-1 / 16)^-1 */
        double *a = tmp, *c = tmp2;
        memcpy(a, m->qC + s * rr, sizeof(double) * rr);
        memcpy(c, m->pC + s * rr, sizeof(double) * rr);
        if ((rc = inv_status(vl_inv_reg(a, r, -1.0))) ||
            (rc = inv_status(vl_inv_reg(c, r, -1.0))))
            goto done;
        for (size_t k = 0; k < rr; k++)
            a[k] += c[k] / PEB_SHRINK;
        if ((rc = inv_status(vl_inv_reg(a, r, -1.0))))
            goto done;
        memcpy(m->qC + s * rr, a, sizeof(double) * rr);
        m->iF[s] = in->F ? in->F[s] : 0.0;
    }
done:
    free(tmp);
    free(tmp2);
    free(ptmp);
    return rc;
}

/* The between-subject design and SPM's rescaling of each covariate. */
static int peb_setup_design(peb_model *m, const vl_peb_input *in)
{
    const int Ns = m->Ns, Nx = m->Nx;
    m->Xd = malloc(sizeof(double) * (size_t)Ns * Nx);
    m->Xc = malloc(sizeof(double) * (size_t)Nx);
    if (!m->Xd || !m->Xc)
        return VL_ERR_NOMEM;
    for (int s = 0; s < Ns; s++)
        for (int j = 0; j < Nx; j++)
            m->Xd[s * Nx + j] = in->X ? in->X[(size_t)s * Nx + j] : 1.0;
    m->X = m->Xd;
    for (int j = 0; j < Nx; j++) {
        double ss = 0.0;
        for (int s = 0; s < Ns; s++)
            ss += m->Xd[s * Nx + j] * m->Xd[s * Nx + j];
        if (!(ss > 0))
            return VL_ERR_INPUT;
        m->Xc[j] = Ns / ss;
    }
    return VL_OK;
}

/* The random-effect precision pQ = (U' (PC / beta) U)^-1 and its
 * components Q_j (those that vanish in the subspace are dropped). */
static int peb_setup_components(peb_model *m, const peb_options *o)
{
    const int Np = m->Np, r = m->r;
    const size_t pp = (size_t)Np * Np, rr = (size_t)r * r;
    m->pQ = malloc(sizeof(double) * rr);
    double *pq = malloc(sizeof(double) * pp); /* (PC / beta)^-1 */
    double *tmp = malloc(sizeof(double) * pp);
    double *ptmp = malloc(sizeof(double) * (size_t)Np * r);
    int rc = VL_OK;
    if (!m->pQ || !pq || !tmp || !ptmp) {
        rc = VL_ERR_NOMEM;
        goto done;
    }
    for (size_t k = 0; k < pp; k++)
        tmp[k] = m->PC[k] / o->beta;
    project(tmp, m->U, Np, r, m->pQ, ptmp);
    memcpy(pq, tmp, sizeof(double) * pp);
    if ((rc = inv_status(vl_inv_reg(m->pQ, r, -1.0))) ||
        (rc = inv_status(vl_inv_reg(pq, Np, -1.0))))
        goto done;
    int Ng = 0, ncomp = 0;
    switch (o->qmode) {
    case VL_PEB_Q_SINGLE: ncomp = 1; break;
    case VL_PEB_Q_ALL: ncomp = Np; break;
    case VL_PEB_Q_CUSTOM: ncomp = o->ncomp; break;
    case VL_PEB_Q_NONE: ncomp = 0; break;
    }
    m->Q = malloc(sizeof(double) * rr * (size_t)(ncomp ? ncomp : 1));
    if (!m->Q) {
        rc = VL_ERR_NOMEM;
        goto done;
    }
    if (o->qmode == VL_PEB_Q_SINGLE) {
        memcpy(m->Q, m->pQ, sizeof(double) * rr);
        Ng = 1;
    } else if (o->qmode != VL_PEB_Q_NONE) {
        for (int c = 0; c < ncomp; c++) {
            /* the block of pq on this component's parameters, in the subspace */
            memset(tmp, 0, sizeof(double) * pp);
            for (int i = 0; i < Np; i++)
                for (int j = 0; j < Np; j++) {
                    int ci = o->qmode == VL_PEB_Q_ALL ? i : o->comp[i];
                    int cj = o->qmode == VL_PEB_Q_ALL ? j : o->comp[j];
                    if (ci == c && cj == c)
                        tmp[i * Np + j] = pq[i * Np + j];
                }
            double *Qc = m->Q + (size_t)Ng * rr;
            project(tmp, m->U, Np, r, Qc, ptmp);
            int any = 0;
            for (size_t k = 0; k < rr; k++)
                if (Qc[k] != 0.0)
                    any = 1;
            if (any)
                Ng++;
        }
    }
    m->Ng = Ng;
    m->Nb = r * m->Nx;
    m->Nt = m->Nb + Ng;
done:
    free(pq);
    free(tmp);
    free(ptmp);
    return rc;
}

/* Second-level priors: group effects b ~ N(bE, bP^-1) (the first-level
 * prior, scaled per covariate), log-precisions g ~ N(gE, gP^-1). */
static int peb_setup_priors(peb_model *m, const peb_options *o)
{
    const int Np = m->Np, r = m->r, Nx = m->Nx, Nb = m->Nb, Ng = m->Ng, Nt = m->Nt;
    const size_t pp = (size_t)Np * Np, rr = (size_t)r * r;
    m->bE = calloc((size_t)Nb, sizeof(double));
    m->bP = calloc((size_t)Nb * Nb, sizeof(double));
    m->gE = malloc(sizeof(double) * (size_t)(Ng ? Ng : 1));
    m->gP = calloc((size_t)(Ng ? Ng * Ng : 1), sizeof(double));
    m->ipC = calloc((size_t)Nt * Nt, sizeof(double));
    double *bC0 = malloc(sizeof(double) * rr), *ptmp = malloc(sizeof(double) * (size_t)Np * r);
    double *tmp = malloc(sizeof(double) * pp);
    int rc = VL_OK;
    if (!m->bE || !m->bP || !m->gE || !m->gP || !m->ipC || !bC0 || !ptmp || !tmp) {
        rc = VL_ERR_NOMEM;
        goto done;
    }
    cblas_dgemv(CblasRowMajor, CblasTrans, Np, r, 1.0, m->U, r, m->PE, 1, 0.0, m->bE, 1);
    for (size_t k = 0; k < pp; k++)
        tmp[k] = m->PC[k] / o->alpha;
    project(tmp, m->U, Np, r, bC0, ptmp);
    for (int j = 0; j < Nx; j++)
        for (int a = 0; a < r; a++)
            for (int c = 0; c < r; c++)
                m->bP[(j * r + a) * Nb + j * r + c] = m->Xc[j] * bC0[a * r + c];
    if ((rc = inv_status(vl_inv_reg(m->bP, Nb, -1.0))))
        goto done;
    for (int j = 0; j < Ng; j++) {
        m->gE[j] = o->hE;
        m->gP[j * Ng + j] = o->hC;
    }
    if (Ng && (rc = inv_status(vl_inv_reg(m->gP, Ng, -1.0))))
        goto done;
    for (int i = 0; i < Nb; i++)
        for (int j = 0; j < Nb; j++)
            m->ipC[i * Nt + j] = m->bP[i * Nb + j];
    for (int i = 0; i < Ng; i++)
        for (int j = 0; j < Ng; j++)
            m->ipC[(Nb + i) * Nt + Nb + j] = m->gP[i * Ng + j];
done:
    free(bC0);
    free(ptmp);
    free(tmp);
    return rc;
}

/* -------------------------------------------------------- evaluation */

/* state of one evaluation of F and its derivatives */
typedef struct {
    double F;
    double *dFdb, *dFdbb, *dFdg, *dFdgg, *dFdbg;
    double *rP, *rC;
} peb_eval;

/* scratch of peb_evaluate, carved from one block */
typedef struct {
    double *rE, *sE, *dE, *v, *w, *sC, *T1, *T2;
    double *A;  /* Ng x r x r: rC Q_k rC - sC Q_k sC */
    double *V;  /* Ng x r: Q_k dE */
    double *SV; /* Ng x r: sC Q_k dE */
    double *eg; /* Ng: exp(g) */
} peb_scratch;

static size_t peb_scratch_size(const peb_model *m)
{
    const size_t r = (size_t)m->r, rr = r * r, Ngw = (size_t)(m->Ng ? m->Ng : 1);
    return 5 * r + 3 * rr + Ngw * rr + 2 * Ngw * r + Ngw + 16;
}

static peb_scratch peb_scratch_carve(const peb_model *m, double *work)
{
    const size_t r = (size_t)m->r, rr = r * r, Ng = (size_t)m->Ng;
    peb_scratch s;
    s.rE = work;
    s.sE = s.rE + r;
    s.dE = s.sE + r;
    s.v = s.dE + r;
    s.w = s.v + r;
    s.sC = s.w + r;
    s.T1 = s.sC + rr;
    s.T2 = s.T1 + rr;
    s.A = s.T2 + rr;
    s.V = s.A + Ng * rr;
    s.SV = s.V + Ng * r;
    s.eg = s.SV + Ng * r;
    return s;
}

/* Pi(g) = pQ e^-8 + sum_j e^g_j Q_j (pQ itself without components), and
 * its inverse, the expected random-effect covariance. */
static int peb_random_precision(const peb_model *m, const double *g, peb_eval *e, double *eg)
{
    const int r = m->r, Ng = m->Ng;
    const size_t rr = (size_t)r * r;
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
    return inv_status(vl_inv_reg(e->rC, r, -1.0));
}

/* gradients and curvatures of the second-level priors */
static void peb_prior_terms(const peb_model *m, const double *b, const double *g, peb_eval *e)
{
    const int Nb = m->Nb, Ng = m->Ng;
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
}

/* One subject's share of the E-step over the group effects b:
 * dF/db += Xi' rP dE, d2F/db2 += Xi' (rP sC rP - rP) Xi. */
static void peb_subject_effects(const peb_model *m, const double *Xi, peb_eval *e,
                                const peb_scratch *s)
{
    const int r = m->r, Nb = m->Nb, Nx = m->Nx;
    const size_t rr = (size_t)r * r;
    mv(e->rP, s->dE, r, r, s->v);
    for (int j = 0; j < Nx; j++)
        for (int k = 0; k < r; k++)
            e->dFdb[j * r + k] += Xi[j] * s->v[k];
    mm(0, 0, r, r, r, e->rP, s->sC, s->T1);
    mm(0, 0, r, r, r, s->T1, e->rP, s->T2);
    for (size_t k = 0; k < rr; k++)
        s->T2[k] -= e->rP[k];
    for (int j1 = 0; j1 < Nx; j1++)
        for (int j2 = 0; j2 < Nx; j2++) {
            double x = Xi[j1] * Xi[j2];
            if (x == 0.0)
                continue;
            for (int a = 0; a < r; a++)
                for (int c = 0; c < r; c++)
                    e->dFdbb[(j1 * r + a) * Nb + j2 * r + c] += x * s->T2[a * r + c];
        }
}

/* One subject's share of the M-step over the precision components g:
 * gradient, curvature and the cross terms with b. */
static void peb_subject_components(const peb_model *m, const double *Xi, peb_eval *e,
                                   const peb_scratch *s)
{
    const int r = m->r, Ng = m->Ng, Nx = m->Nx;
    const size_t rr = (size_t)r * r;
    for (int j = 0; j < Ng; j++) {
        const double *Qj = m->Q + j * rr;
        mv(Qj, s->dE, r, r, s->V + (size_t)j * r);
        mv(s->sC, s->V + (size_t)j * r, r, r, s->SV + (size_t)j * r);
        /* A_j = rC Q_j rC - sC Q_j sC */
        mm(0, 0, r, r, r, e->rC, Qj, s->T1);
        mm(0, 0, r, r, r, s->T1, e->rC, s->A + j * rr);
        mm(0, 0, r, r, r, s->sC, Qj, s->T1);
        mm(0, 0, r, r, r, s->T1, s->sC, s->T2);
        for (size_t k = 0; k < rr; k++)
            s->A[j * rr + k] -= s->T2[k];
    }
    for (int j = 0; j < Ng; j++) {
        const double *Qj = m->Q + j * rr;
        const double *vj = s->V + (size_t)j * r;
        /* tr((rC - sC) Q_j) - dE' Q_j dE */
        double tr = 0.0;
        for (int a = 0; a < r; a++)
            for (int c = 0; c < r; c++)
                tr += (e->rC[a * r + c] - s->sC[a * r + c]) * Qj[c * r + a];
        double dg = s->eg[j] * (tr - dot(s->dE, vj, r)) / 2.0;
        e->dFdg[j] += dg;
        e->dFdgg[j * Ng + j] += dg;
        /* d2F/dbdg_j += e^g_j Xi' (I - rP sC) Q_j dE */
        mv(e->rP, s->SV + (size_t)j * r, r, r, s->w);
        for (int jx = 0; jx < Nx; jx++)
            for (int k = 0; k < r; k++)
                e->dFdbg[(jx * r + k) * Ng + j] += s->eg[j] * Xi[jx] * (vj[k] - s->w[k]);
        for (int k = 0; k < Ng; k++) {
            const double *Ak = s->A + k * rr;
            double t2 = 0.0;
            for (int a = 0; a < r; a++)
                for (int c = 0; c < r; c++)
                    t2 += Ak[a * r + c] * Qj[c * r + a];
            double q2 = dot(s->V + (size_t)k * r, s->SV + (size_t)j * r, r);
            e->dFdgg[j * Ng + k] -= s->eg[j] * s->eg[k] * (t2 / 2.0 - q2);
        }
    }
}

/* F (accuracy part: the subjects' reduced evidences), gradients and
 * curvatures at (b, g). Every subject's evidence and posterior under the
 * empirical prior come from Bayesian model reduction. */
static int peb_evaluate(const peb_model *m, const double *b, const double *g, peb_eval *e,
                        double *work)
{
    const int r = m->r, Nx = m->Nx;
    const size_t rr = (size_t)r * r;
    peb_scratch s = peb_scratch_carve(m, work);
    int rc = peb_random_precision(m, g, e, s.eg);
    if (rc)
        return rc;
    peb_prior_terms(m, b, g, e);
    double F = 0.0;
    for (int i = 0; i < m->Ns; i++) {
        const double *Xi = m->X + (size_t)i * Nx;
        for (int k = 0; k < r; k++) {
            double a = 0.0;
            for (int j = 0; j < Nx; j++)
                a += Xi[j] * b[j * r + k];
            s.rE[k] = a;
        }
        double Fi = 0.0;
        if ((rc = vl_bmr_reduce(r, m->qE + (size_t)i * r, m->qC + i * rr, m->pE + (size_t)i * r,
                                m->pC + i * rr, s.rE, e->rC, &Fi, s.sE, s.sC)))
            return rc == VL_ERR_NOMEM ? rc : VL_ERR_NONFINITE;
        F += Fi + m->iF[i];
        for (int k = 0; k < r; k++)
            s.dE[k] = s.sE[k] - s.rE[k];
        peb_subject_effects(m, Xi, e, &s);
        if (m->Ng)
            peb_subject_components(m, Xi, e, &s);
    }
    e->F = F;
    return VL_OK;
}

/* ------------------------------------------------------- iteration */

typedef struct {
    double *work, *b, *g, *bs, *gs, *dFdp, *dFdpp, *dp, *Cb, *Cg, *Cp, *M2;
    peb_eval cur, best;
} peb_work;

static void peb_eval_free(peb_eval *e)
{
    free(e->dFdb);
    free(e->dFdbb);
    free(e->dFdg);
    free(e->dFdgg);
    free(e->dFdbg);
    free(e->rP);
    free(e->rC);
}

static void peb_work_free(peb_work *w)
{
    peb_eval_free(&w->cur);
    peb_eval_free(&w->best);
    free(w->work);
    free(w->b);
    free(w->g);
    free(w->bs);
    free(w->gs);
    free(w->dFdp);
    free(w->dFdpp);
    free(w->dp);
    free(w->Cb);
    free(w->Cg);
    free(w->Cp);
    free(w->M2);
    memset(w, 0, sizeof *w);
}

static int peb_work_alloc(peb_work *w, const peb_model *m)
{
    const int Nb = m->Nb, Nt = m->Nt, Ngw = m->Ng ? m->Ng : 1;
    const size_t rr = (size_t)m->r * m->r;
    memset(w, 0, sizeof *w);
    w->work = malloc(sizeof(double) * peb_scratch_size(m));
    w->b = malloc(sizeof(double) * Nb);
    w->g = malloc(sizeof(double) * Ngw);
    w->bs = malloc(sizeof(double) * Nb);
    w->gs = malloc(sizeof(double) * Ngw);
    w->dFdp = malloc(sizeof(double) * Nt);
    w->dFdpp = malloc(sizeof(double) * (size_t)Nt * Nt);
    w->dp = malloc(sizeof(double) * Nt);
    w->Cb = malloc(sizeof(double) * (size_t)Nb * Nb);
    w->Cg = malloc(sizeof(double) * (size_t)Ngw * Ngw);
    w->Cp = malloc(sizeof(double) * (size_t)Nt * Nt);
    w->M2 = malloc(sizeof(double) * ((size_t)Nt * Nt + vl_logdet_work(Nt)));
    peb_eval *ev[2] = {&w->cur, &w->best};
    for (int k = 0; k < 2; k++) {
        ev[k]->dFdb = malloc(sizeof(double) * Nb);
        ev[k]->dFdbb = malloc(sizeof(double) * (size_t)Nb * Nb);
        ev[k]->dFdg = malloc(sizeof(double) * Ngw);
        ev[k]->dFdgg = malloc(sizeof(double) * (size_t)Ngw * Ngw);
        ev[k]->dFdbg = malloc(sizeof(double) * (size_t)Nb * Ngw);
        ev[k]->rP = malloc(sizeof(double) * rr);
        ev[k]->rC = malloc(sizeof(double) * rr);
        if (!ev[k]->dFdb || !ev[k]->dFdbb || !ev[k]->dFdg || !ev[k]->dFdgg || !ev[k]->dFdbg ||
            !ev[k]->rP || !ev[k]->rC)
            return VL_ERR_NOMEM;
    }
    if (!w->work || !w->b || !w->g || !w->bs || !w->gs || !w->dFdp || !w->dFdpp || !w->dp ||
        !w->Cb || !w->Cg || !w->Cp || !w->M2)
        return VL_ERR_NOMEM;
    return VL_OK;
}

/* gradient and curvature of F in (b, g), stacked */
static void peb_gather(const peb_model *m, const peb_eval *e, double *dFdp, double *dFdpp)
{
    const int Nb = m->Nb, Ng = m->Ng, Nt = m->Nt;
    for (int i = 0; i < Nb; i++)
        dFdp[i] = e->dFdb[i];
    for (int j = 0; j < Ng; j++)
        dFdp[Nb + j] = e->dFdg[j];
    for (int i = 0; i < Nt; i++)
        for (int j = 0; j < Nt; j++) {
            double v;
            if (i < Nb && j < Nb)
                v = e->dFdbb[i * Nb + j];
            else if (i < Nb)
                v = e->dFdbg[i * Ng + (j - Nb)];
            else if (j < Nb)
                v = e->dFdbg[j * Ng + (i - Nb)];
            else
                v = e->dFdgg[(i - Nb) * Ng + (j - Nb)];
            dFdpp[i * Nt + j] = v;
        }
}

/* conditional covariances: of (b, g) jointly, of b given g, of g given b */
static int peb_covariances(const peb_model *m, peb_work *w)
{
    const int Nb = m->Nb, Ng = m->Ng, Nt = m->Nt;
    for (int k = 0; k < Nt * Nt; k++)
        w->Cp[k] = -w->dFdpp[k];
    for (int k = 0; k < Nb * Nb; k++)
        w->Cb[k] = -w->cur.dFdbb[k];
    for (int k = 0; k < Ng * Ng; k++)
        w->Cg[k] = -w->cur.dFdgg[k];
    int rc;
    if ((rc = inv_status(vl_inv_reg(w->Cp, Nt, -1.0))) ||
        (rc = inv_status(vl_inv_reg(w->Cb, Nb, -1.0))) ||
        (Ng && (rc = inv_status(vl_inv_reg(w->Cg, Ng, -1.0)))))
        return rc;
    return VL_OK;
}

/* complexity of the second level: SPM's form, b' bP b / 2 (not centred
 * on bE; identical when the prior mean of the group effects is zero, e.g.
 * for B and C parameters) + g' gP g / 2 - ln|ipC Cp| / 2 */
static double peb_complexity(const peb_model *m, const double *b, const double *g,
                             const double *Cp, double *M2)
{
    const int Nb = m->Nb, Ng = m->Ng, Nt = m->Nt;
    double Fb = 0.0, Fg = 0.0;
    for (int i = 0; i < Nb; i++)
        for (int k = 0; k < Nb; k++)
            Fb += b[i] * m->bP[i * Nb + k] * b[k];
    for (int i = 0; i < Ng; i++)
        for (int k = 0; k < Ng; k++)
            Fg += g[i] * m->gP[i * Ng + k] * g[k];
    mm(0, 0, Nt, Nt, Nt, m->ipC, Cp, M2);
    double ld = vl_logdet(M2, Nt, M2 + (size_t)Nt * Nt);
    return Fb / 2 + Fg / 2 - ld / 2;
}

/* F at the current point, with the covariances (the free-energy step) */
static int peb_free_energy(const peb_model *m, peb_work *w, double *F)
{
    int rc = peb_evaluate(m, w->b, w->g, &w->cur, w->work);
    if (rc)
        return rc;
    peb_gather(m, &w->cur, w->dFdp, w->dFdpp);
    if ((rc = peb_covariances(m, w)))
        return rc;
    *F = w->cur.F - peb_complexity(m, w->b, w->g, w->Cp, w->M2);
    return isfinite(*F) ? VL_OK : VL_ERR_NONFINITE;
}

/* keep this expansion point, or return to the last accepted one; the
 * regularisation t follows SPM's schedule */
static void peb_accept_or_reject(const peb_model *m, peb_work *w, double F, double *F0,
                                 double *dF, double *t)
{
    const int Nb = m->Nb, Ng = m->Ng;
    if (F >= *F0) {
        *dF = F - *F0;
        *F0 = F;
        memcpy(w->bs, w->b, sizeof(double) * Nb);
        memcpy(w->gs, w->g, sizeof(double) * Ng);
        memcpy(w->best.dFdb, w->cur.dFdb, sizeof(double) * Nb);
        memcpy(w->best.dFdbb, w->cur.dFdbb, sizeof(double) * (size_t)Nb * Nb);
        memcpy(w->best.dFdg, w->cur.dFdg, sizeof(double) * Ng);
        memcpy(w->best.dFdgg, w->cur.dFdgg, sizeof(double) * (size_t)Ng * Ng);
        *t = fmin(*t + 0.25, 2.0);
    } else {
        *t = fmax(*t - 1.0, -4.0);
        memcpy(w->b, w->bs, sizeof(double) * Nb);
        memcpy(w->g, w->gs, sizeof(double) * Ng);
    }
}

/* The Fisher scoring step from the gradient just computed (as SPM); a
 * large step ignores the conditional dependencies between b and g. */
static int peb_step(const peb_model *m, peb_work *w, double t, int accepted)
{
    const int Nb = m->Nb, Ng = m->Ng, Nt = m->Nt;
    int rc;
    if ((rc = fisher_step(w->dFdpp, w->dFdp, Nt, t, w->dp)))
        return rc;
    double n1 = 0.0;
    for (int i = 0; i < Nt; i++)
        n1 += fabs(w->dp[i]);
    if (!(n1 < 8.0)) {
        const peb_eval *src = accepted ? &w->cur : &w->best;
        for (int i = 0; i < Nt; i++)
            for (int j = 0; j < Nt; j++) {
                double v = 0.0;
                if (i < Nb && j < Nb)
                    v = src->dFdbb[i * Nb + j];
                else if (i >= Nb && j >= Nb)
                    v = src->dFdgg[(i - Nb) * Ng + (j - Nb)];
                w->dFdpp[i * Nt + j] = v;
            }
        if ((rc = fisher_step(w->dFdpp, w->dFdp, Nt, t, w->dp)))
            return rc;
    }
    for (int i = 0; i < Nb; i++)
        w->b[i] += w->dp[i];
    for (int j = 0; j < Ng; j++)
        w->g[j] += tanh(w->dp[Nb + j]); /* bounded log-precision steps */
    return VL_OK;
}

/* The iteration driver: variational Laplace over (b, g) from the prior
 * means; *F is the free energy of the last evaluation. */
static int peb_iterate(const peb_model *m, peb_work *w, int maxit, double *F, int *iterations,
                       int *converged)
{
    memcpy(w->b, m->bE, sizeof(double) * m->Nb);
    for (int j = 0; j < m->Ng; j++)
        w->g[j] = m->gE[j];
    double t = -4.0, F0 = 0.0, dF = 0.0;
    int it, rc;
    for (it = 1; it <= maxit; it++) {
        if ((rc = peb_free_energy(m, w, F)) != VL_OK)
            return rc;
        if (it == 1)
            F0 = *F;
        peb_accept_or_reject(m, w, *F, &F0, &dF, &t);
        if ((rc = peb_step(m, w, t, *F >= F0)) != VL_OK)
            return rc;
        /* stop when the last accepted step gained < 1e-4, or when the
           regularisation has hit its floor */
        if (it > 4 && (t <= -4.0 || dF < 1e-4))
            break;
    }
    *converged = it <= maxit;
    *iterations = it > maxit ? maxit : it;
    return VL_OK;
}

/* ------------------------------------------------------------ output */

/* back from the subspace: Ep = U b, Cp = U Cb U' per covariate pair,
 * Ce = U rC U' */
static int peb_outputs(const peb_model *m, const peb_work *w, const int *sel, vl_peb_result *out)
{
    const int Np = m->Np, Nx = m->Nx, r = m->r, Nb = m->Nb, Ng = m->Ng;
    const int Ngw = Ng ? Ng : 1;
    out->np = Np;
    out->nx = Nx;
    out->ng = Ng;
    out->sel = malloc(sizeof(int) * (size_t)Np);
    out->Ep = malloc(sizeof(double) * (size_t)Np * Nx);
    out->Cp = malloc(sizeof(double) * (size_t)Np * Nx * Np * Nx);
    out->Eh = malloc(sizeof(double) * Ngw);
    out->Ch = malloc(sizeof(double) * (size_t)Ngw * Ngw);
    out->Ce = malloc(sizeof(double) * (size_t)Np * Np);
    double *ptmp = malloc(sizeof(double) * (size_t)Np * r);
    if (!out->sel || !out->Ep || !out->Cp || !out->Eh || !out->Ch || !out->Ce || !ptmp) {
        free(ptmp);
        return VL_ERR_NOMEM;
    }
    memcpy(out->sel, sel, sizeof(int) * (size_t)Np);
    for (int i = 0; i < Np; i++)
        for (int j = 0; j < Nx; j++) {
            double a = 0.0;
            for (int k = 0; k < r; k++)
                a += m->U[i * r + k] * w->b[j * r + k];
            out->Ep[i * Nx + j] = a;
        }
    const int NP = Np * Nx;
    for (int j1 = 0; j1 < Nx; j1++)
        for (int j2 = 0; j2 < Nx; j2++)
            for (int i1 = 0; i1 < Np; i1++)
                for (int i2 = 0; i2 < Np; i2++) {
                    double a = 0.0;
                    for (int k1 = 0; k1 < r; k1++)
                        for (int k2 = 0; k2 < r; k2++)
                            a += m->U[i1 * r + k1] * w->Cb[(j1 * r + k1) * Nb + j2 * r + k2] *
                                 m->U[i2 * r + k2];
                    out->Cp[(j1 * Np + i1) * NP + j2 * Np + i2] = a;
                }
    memcpy(out->Eh, w->g, sizeof(double) * (size_t)Ng);
    memcpy(out->Ch, w->Cg, sizeof(double) * (size_t)Ng * Ng);
    mm(0, 0, Np, r, r, m->U, w->cur.rC, ptmp);
    mm(0, 1, Np, Np, r, ptmp, m->U, out->Ce);
    free(ptmp);
    return VL_OK;
}

/* -------------------------------------------------------------- main */

int vl_peb(const vl_peb_input *in, const vl_peb_opts *opts, vl_peb_result *out)
{
    vl_init();
    if (!out)
        return VL_ERR_INPUT;
    memset(out, 0, sizeof *out);
    peb_options o;
    int rc = peb_check_input(in);
    if (rc == VL_OK)
        rc = peb_options_read(opts, &o);
    if (rc)
        return rc;
    int *sel = malloc(sizeof(int) * (size_t)in->np);
    if (!sel)
        return VL_ERR_NOMEM;
    peb_model m;
    memset(&m, 0, sizeof m);
    peb_work w;
    memset(&w, 0, sizeof w);
    m.Ns = in->nsub;
    m.Nx = in->X ? in->nx : 1;
    double F = 0.0;
    int it = 0, converged = 0;
    if ((rc = peb_select(in, &o, sel, &m.Np)) || (rc = peb_setup_subjects(&m, in, sel)) ||
        (rc = peb_setup_design(&m, in)) || (rc = peb_setup_components(&m, &o)) ||
        (rc = peb_setup_priors(&m, &o)) || (rc = peb_work_alloc(&w, &m)) ||
        (rc = peb_iterate(&m, &w, o.maxit, &F, &it, &converged)))
        goto done;
    out->iterations = it;
    out->converged = converged;
    out->F = F;
    rc = peb_outputs(&m, &w, sel, out);
done:
    free(sel);
    peb_model_free(&m);
    peb_work_free(&w);
    if (rc)
        vl_peb_result_free(out);
    return rc;
}

/* ------------------------------------------------------------ spm_dcm_bmr_all */

#define BMR_ALL_NMAX 8

typedef struct {
    int n;
    const double *qE, *qC, *pE, *pC;
    double *rE, *rC, *sE, *sC; /* work: reduced prior, reduced posterior */
    /* the search scores models in the principal subspace of pC (SPM's
       U = spm_svd(pC)): u axes, U n x u row-major, and the moments there */
    int u;
    double *U, *uqE, *uqC, *upE, *upC;
    double *ws;                /* scratch for spm_log_evidence */
    double *scr;               /* 3 n^2: R, R pC and rC of bmr_all_G */
    int *idx;                  /* n */
} bmr_all_ctx;

#define SPM_LOG_EVIDENCE_TOL 1.1253517471925912e-07 /* exp(-16) */

/* SPM's spm_log_evidence(qE,qC,pE,pC,rE,rC) with one output (the form
 * spm_dcm_bmr_all scores models with): only the parameters whose prior
 * the reduction changes, those with prior variance above TOL = exp(-16),
 * and every inverse spm_inv(A, TOL) = (A + TOL I)^-1. ws holds
 * 9 n^2 + 6 n + vl_logdet_work(n) doubles; idx n ints. */
static int spm_log_evidence(int n, const double *qE, const double *qC, const double *pE,
                            const double *pC, const double *rE, const double *rC, double *ws, int *idx,
                            double *F)
{
    const double tol = SPM_LOG_EVIDENCE_TOL;
    int m = 0;
    for (int i = 0; i < n; i++) {
        int changed = pE[i] != rE[i];
        for (int j = 0; j < n && !changed; j++)
            changed = pC[(size_t)i * n + j] != rC[(size_t)i * n + j];
        idx[m] = i;
        m += changed;
    }
    if (m == 0)   /* nothing changed: SPM keeps every parameter */
        for (int i = 0; i < n; i++)
            idx[m++] = i;
    int mm = 0;
    for (int a = 0; a < m; a++)
        if (pC[(size_t)idx[a] * n + idx[a]] > tol)
            idx[mm++] = idx[a];
    m = mm;
    *F = 0.0;
    if (m == 0)
        return VL_OK;
    const size_t q = (size_t)m * m;
    double *qP = ws, *pP = qP + q, *rP = pP + q, *sC = rP + q, *pC2 = sC + q, *T1 = pC2 + q, *T2 = T1 + q;
    double *e = T2 + q, *qe = e + m, *pe = qe + m, *re = pe + m, *se = re + m, *tmp = se + m,
           *lw = tmp + m;
    for (int a = 0; a < m; a++) {
        qe[a] = qE[idx[a]];
        pe[a] = pE[idx[a]];
        re[a] = rE[idx[a]];
        for (int b = 0; b < m; b++) {
            size_t ab = (size_t)a * m + b, src = (size_t)idx[a] * n + idx[b];
            qP[ab] = qC[src];
            pP[ab] = pC[src];
            rP[ab] = rC[src];
        }
    }
    int rc;
    if ((rc = vl_inv_reg(qP, m, tol)) || (rc = vl_inv_reg(pP, m, tol)) || (rc = vl_inv_reg(rP, m, tol)))
        return rc;
    for (size_t k = 0; k < q; k++) {
        sC[k] = qP[k] + rP[k] - pP[k];
        pC2[k] = pP[k];
    }
    if ((rc = vl_inv_reg(sC, m, tol)) || (rc = vl_inv_reg(pC2, m, tol)))
        return rc;
    /* sE = qP qE + rP rE - pP pE (the precision-weighted mean, as SPM) */
    cblas_dgemv(CblasRowMajor, CblasNoTrans, m, m, 1.0, qP, m, qe, 1, 0.0, se, 1);
    cblas_dgemv(CblasRowMajor, CblasNoTrans, m, m, 1.0, rP, m, re, 1, 1.0, se, 1);
    cblas_dgemv(CblasRowMajor, CblasNoTrans, m, m, -1.0, pP, m, pe, 1, 1.0, se, 1);
    double quad = 0.0;
    const double *vec[4] = {qe, re, pe, se};
    const double *mat[4] = {qP, rP, pP, sC};
    const double sign[4] = {1.0, 1.0, -1.0, -1.0};
    for (int t = 0; t < 4; t++) {
        cblas_dgemv(CblasRowMajor, CblasNoTrans, m, m, 1.0, mat[t], m, vec[t], 1, 0.0, tmp, 1);
        quad += sign[t] * cblas_ddot(m, vec[t], 1, tmp, 1);
    }
    /* logdet(rP qP sC pC) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, m, m, 1.0, rP, m, qP, m, 0.0, T1, m);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, m, m, 1.0, T1, m, sC, m, 0.0, T2, m);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, m, m, 1.0, T2, m, pC2, m, 0.0, T1, m);
    (void)e;
    double ld = vl_logdet(T1, m, lw);
    *F = 0.5 * (ld - quad);
    return isfinite(*F) ? VL_OK : VL_ERR_NONFINITE;
}

/* the search's score of the model with on[i] == 0 switched off: SPM's
 * reduced prior in the subspace, R = U' diag(on) U, rC = R pC R,
 * rE = R pE, then spm_log_evidence */
static int bmr_all_G(bmr_all_ctx *x, const unsigned char *on, double *F)
{
    const int n = x->n, u = x->u;
    const size_t uu = (size_t)u * u;
    double *R = x->scr, *T = R + uu, *rC = T + uu, *rE = x->rE;
    for (int a = 0; a < u; a++)
        for (int b = 0; b < u; b++) {
            double v = 0.0;
            for (int i = 0; i < n; i++)
                if (on[i])
                    v += x->U[(size_t)i * u + a] * x->U[(size_t)i * u + b];
            R[(size_t)a * u + b] = v;
        }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, u, u, u, 1.0, R, u, x->upC, u, 0.0, T, u);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, u, u, u, 1.0, T, u, R, u, 0.0, rC, u);
    cblas_dgemv(CblasRowMajor, CblasNoTrans, u, u, 1.0, R, u, x->upE, 1, 0.0, rE, 1);
    return spm_log_evidence(u, x->uqE, x->uqC, x->upE, x->upC, rE, rC, x->ws, x->idx, F);
}

/* U = spm_svd(pC) and the moments in its subspace */
static int bmr_all_subspace(bmr_all_ctx *x)
{
    const int n = x->n;
    const size_t nn = (size_t)n * n;
    x->U = malloc(sizeof(double) * nn);
    x->uqE = malloc(sizeof(double) * n);
    x->upE = malloc(sizeof(double) * n);
    x->uqC = malloc(sizeof(double) * nn);
    x->upC = malloc(sizeof(double) * nn);
    x->ws = malloc(sizeof(double) * (9 * nn + 6 * (size_t)n + vl_logdet_work(n)));
    x->scr = malloc(sizeof(double) * 3 * nn);
    x->idx = malloc(sizeof(int) * n);
    if (!x->U || !x->uqE || !x->upE || !x->uqC || !x->upC || !x->ws || !x->scr || !x->idx)
        return VL_ERR_NOMEM;
    int rc = vl_bmr_subspace(x->pC, n, 1e-6, x->U, &x->u);
    if (rc)
        return rc;
    const int u = x->u;
    double *T = x->scr; /* n x u */
    cblas_dgemv(CblasRowMajor, CblasTrans, n, u, 1.0, x->U, u, x->qE, 1, 0.0, x->uqE, 1);
    cblas_dgemv(CblasRowMajor, CblasTrans, n, u, 1.0, x->U, u, x->pE, 1, 0.0, x->upE, 1);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, u, n, 1.0, x->qC, n, x->U, u, 0.0, T, u);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, u, u, n, 1.0, x->U, u, T, u, 0.0, x->uqC, u);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, u, n, 1.0, x->pC, n, x->U, u, 0.0, T, u);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, u, u, n, 1.0, x->U, u, T, u, 0.0, x->upC, u);
    return VL_OK;
}

/* log-evidence of the model with the parameters where on[i] == 0 switched
 * off (reduced prior mean and variance 0); the reduced posterior in
 * x->sE, x->sC when want_post */
static int bmr_all_score(bmr_all_ctx *x, const unsigned char *on, int want_post, double *F)
{
    const int n = x->n;
    for (int i = 0; i < n; i++) {
        x->rE[i] = on[i] ? x->pE[i] : 0.0;
        for (int j = 0; j < n; j++)
            x->rC[(size_t)i * n + j] = on[i] && on[j] ? x->pC[(size_t)i * n + j] : 0.0;
    }
    int rc = vl_bmr_reduce(n, x->qE, x->qC, x->pE, x->pC, x->rE, x->rC, F, want_post ? x->sE : NULL,
                           want_post ? x->sC : NULL);
    if (rc == VL_OK && !isfinite(*F))
        rc = VL_ERR_NONFINITE;
    return rc;
}

/* the k candidates whose removal alone costs least (largest dF first; ties
 * keep the earlier parameter, as MATLAB's sort) */
static int bmr_all_shortlist(bmr_all_ctx *x, unsigned char *on, int *k, int nk, int *nmodels)
{
    double *Z = malloc(sizeof(double) * nk);
    if (!Z)
        return VL_ERR_NOMEM;
    int rc = VL_OK;
    for (int i = 0; i < nk && rc == VL_OK; i++) {
        on[k[i]] = 0;
        rc = bmr_all_G(x, on, &Z[i]);
        on[k[i]] = 1;
        ++*nmodels;
    }
    /* stable insertion sort of (Z, k) by Z, largest first */
    for (int a = 1; a < nk && rc == VL_OK; a++) {
        double z = Z[a];
        int ka = k[a], b = a;
        for (; b > 0 && Z[b - 1] < z; b--) {
            Z[b] = Z[b - 1];
            k[b] = k[b - 1];
        }
        Z[b] = z;
        k[b] = ka;
    }
    free(Z);
    return rc;
}

/* whether model m of the pass over k[0..nk) switches k[j] off, in
   spm_perm_mtx's order: model 0 switches every candidate off, the last
   none (column j alternates in blocks of 2^(nk-1-j) models, starting with
   "off"). The order matters: among models of equal evidence the first
   wins, as MATLAB's max. */
static int bmr_all_off(int m, int nk, int j)
{
    return !((m >> (nk - 1 - j)) & 1);
}

/* one pass over all 2^nk models of the candidates k: G (log-evidences),
   p (posteriors); the best model's parameters are switched off in on[];
   returns how many */
static int bmr_all_pass(bmr_all_ctx *x, unsigned char *on, const int *k, int nk, double *G, double *p,
                        int *nelim, int *nmodels)
{
    const int nm = 1 << nk;
    unsigned char *r = malloc((size_t)x->n);
    if (!r)
        return VL_ERR_NOMEM;
    int rc = VL_OK;
    for (int m = 0; m < nm && rc == VL_OK; m++) {
        memcpy(r, on, (size_t)x->n);
        for (int j = 0; j < nk; j++)
            if (bmr_all_off(m, nk, j))
                r[k[j]] = 0;
        rc = bmr_all_G(x, r, &G[m]);
        ++*nmodels;
    }
    free(r);
    if (rc)
        return rc;
    int best = 0;   /* the first of equals, as MATLAB's max */
    for (int m = 1; m < nm; m++)
        if (G[m] > G[best])
            best = m;
    double sum = 0.0;
    for (int m = 0; m < nm; m++)
        sum += p[m] = exp(G[m] - G[best]);
    for (int m = 0; m < nm; m++)
        p[m] /= sum;
    *nelim = 0;
    for (int j = 0; j < nk; j++)
        if (bmr_all_off(best, nk, j)) {
            on[k[j]] = 0;
            ++*nelim;
        }
    return VL_OK;
}

/* Pp and the BMA of the last pass (see vl_peb_bmr_all) */
static int bmr_all_average(bmr_all_ctx *x, const unsigned char *on, const int *k, int nk, const double *G,
                           const double *p, double *Ep, double *Vp, double *Pp)
{
    const int n = x->n, nm = 1 << nk;
    for (int i = 0; i < n; i++)
        Pp[i] = on[i] ? 1.0 : 0.0;
    for (int j = 0; j < nk; j++) {
        double s0 = 0.0, s1 = 0.0;
        int n0 = 0, n1 = 0;
        for (int m = 0; m < nm; m++) {
            if (bmr_all_off(m, nk, j)) {
                s1 += p[m];
                n1++;
            } else {
                s0 += p[m];
                n0++;
            }
        }
        double m0 = n0 ? s0 / n0 : 0.0, m1 = n1 ? s1 / n1 : 0.0;
        Pp[k[j]] = m0 + m1 > 0 ? m0 / (m0 + m1) : 0.0;
    }
    double Gmax = G[0];
    for (int m = 1; m < nm; m++)
        Gmax = fmax(Gmax, G[m]);
    vl_bma a;
    unsigned char *r = malloc((size_t)n);
    double *var = malloc(sizeof(double) * n);
    if (!r || !var || vl_bma_init(&a, n, 0)) {
        free(r);
        free(var);
        return VL_ERR_NOMEM;
    }
    int rc = VL_OK;
    for (int m = 0; m < nm && rc == VL_OK; m++) {
        if (!(G[m] > Gmax - 8.0))
            continue;
        memcpy(r, on, (size_t)n);
        for (int j = 0; j < nk; j++)
            if (bmr_all_off(m, nk, j))
                r[k[j]] = 0;
        double F;
        if ((rc = bmr_all_score(x, r, 1, &F)))
            break;
        for (int i = 0; i < n; i++)
            var[i] = x->sC[(size_t)i * n + i];
        vl_bma_add(&a, F, x->sE, var, NULL);
    }
    if (rc == VL_OK)
        vl_bma_finish(&a, Ep, Vp, NULL);
    vl_bma_free(&a);
    free(r);
    free(var);
    return rc;
}

int vl_peb_bmr_all(int n, const double *qE, const double *qC, const double *pE, const double *pC,
                   double *Ep, double *Vp, double *Pp, int *nmodels)
{
    int dummy = 0;
    if (!nmodels)
        nmodels = &dummy;
    *nmodels = 0;
    if (n < 1 || !qE || !qC || !pE || !pC || !Ep || !Vp || !Pp)
        return VL_ERR_INPUT;
    const size_t nn = (size_t)n * n;
    bmr_all_ctx x = {n, qE, qC, pE, pC, malloc(sizeof(double) * n), malloc(sizeof(double) * nn),
                     malloc(sizeof(double) * n), malloc(sizeof(double) * nn), 0, NULL, NULL, NULL, NULL,
                     NULL, NULL, NULL, NULL};
    unsigned char *on = malloc((size_t)n);
    int *k = malloc(sizeof(int) * n);
    double *G = malloc(sizeof(double) * (1 << BMR_ALL_NMAX)), *p = malloc(sizeof(double) * (1 << BMR_ALL_NMAX));
    int rc = (x.rE && x.rC && x.sE && x.sC && on && k && G && p) ? VL_OK : VL_ERR_NOMEM;
    if (rc == VL_OK)
        rc = bmr_all_subspace(&x);
    /* the candidates: prior variance above mean(variances < 1024) / 1024 */
    double sum = 0.0;
    int cnt = 0;
    for (int i = 0; i < n && rc == VL_OK; i++) {
        double q = pC[(size_t)i * n + i];
        if (!isfinite(q))
            rc = VL_ERR_NONFINITE;
        else if (q < 1024) {
            sum += q;
            cnt++;
        }
    }
    for (int i = 0; i < n && rc == VL_OK; i++) {
        double q = pC[(size_t)i * n + i];
        on[i] = cnt ? q > sum / cnt / 1024.0 : q > 0;
    }
    /* k: the candidates of the last pass run (nk of them; 0: none ran) */
    int nk = 0, greedy = 1;
    int *cand = malloc(sizeof(int) * n);
    if (!cand && rc == VL_OK)
        rc = VL_ERR_NOMEM;
    while (rc == VL_OK && greedy) {
        int nc = 0;
        for (int i = 0; i < n; i++)
            if (on[i])
                cand[nc++] = i;
        if (nc > BMR_ALL_NMAX) {
            if ((rc = bmr_all_shortlist(&x, on, cand, nc, nmodels)))
                break;
            nc = BMR_ALL_NMAX;
        } else {
            greedy = 0;
        }
        if (nc == 0)   /* all switched off by earlier passes: keep the last */
            break;
        memcpy(k, cand, sizeof(int) * nc);
        nk = nc;
        int nelim = 0;
        if ((rc = bmr_all_pass(&x, on, k, nk, G, p, &nelim, nmodels)))
            break;
        greedy = greedy && nelim;
    }
    free(cand);
    if (rc == VL_OK && nk == 0) {
        /* nothing free from the start: the full model */
        for (int i = 0; i < n; i++) {
            Ep[i] = qE[i];
            Vp[i] = qC[(size_t)i * n + i];
            Pp[i] = 0.0;
        }
    } else if (rc == VL_OK) {
        rc = bmr_all_average(&x, on, k, nk, G, p, Ep, Vp, Pp);
    }
    free(x.rE);
    free(x.rC);
    free(x.sE);
    free(x.sC);
    free(x.U);
    free(x.uqE);
    free(x.upE);
    free(x.uqC);
    free(x.upC);
    free(x.ws);
    free(x.scr);
    free(x.idx);
    free(on);
    free(k);
    free(G);
    free(p);
    return rc;
}

/* ------------------------------------------------------------ one subject */

/* the scratch of vl_peb_single, carved from one block */
typedef struct {
    double *rP, *rC, *bP, *b, *bs, *rE, *sE, *sC, *dE, *v, *T1, *T2, *dFdb, *dFdbb, *gs, *gss, *M2;
    double *dp, *J;
} peb_single_ws;

static double *peb_single_carve(peb_single_ws *w, int np, int nw)
{
    const size_t pp = (size_t)np * np, ww = (size_t)nw * nw;
    const size_t big = pp > ww ? pp : ww;
    double *blk = malloc(sizeof(double) * (6 * pp + 9 * ww + 5 * (size_t)np + 7 * (size_t)nw +
                                           3 * big + vl_logdet_work(nw) + 16));
    if (!blk)
        return NULL;
    double *p = blk;
    w->rP = p, p += pp;
    w->rC = p, p += pp;
    w->sC = p, p += pp;
    w->T1 = p, p += big;
    w->T2 = p, p += big;
    w->bP = p, p += ww;
    w->dFdbb = p, p += ww;
    w->gss = p, p += ww;  /* dFdbb at the last accepted point */
    w->J = p, p += ww;
    w->M2 = p, p += ww + vl_logdet_work(nw) + big;
    w->b = p, p += nw;
    w->bs = p, p += nw;
    w->dFdb = p, p += nw;
    w->gs = p, p += nw;   /* dFdb at the last accepted point (kept as SPM keeps it) */
    w->dp = p, p += nw;
    w->rE = p, p += np;
    w->sE = p, p += np;
    w->dE = p, p += np;
    w->v = p, p += np + nw;
    return blk;
}

/* F, gradient and curvature of the single-subject model at b */
static int peb_single_eval(const vl_peb_single_input *in, peb_single_ws *w, double *F)
{
    const int np = in->np, nw = in->nw;
    mv(in->W, w->b, np, nw, w->rE);
    double Fi = 0.0;
    int rc = vl_bmr_reduce(np, in->qE, in->qC, in->pE, in->pC, w->rE, w->rC, &Fi, w->sE, w->sC);
    if (rc)
        return rc == VL_ERR_NOMEM ? rc : VL_ERR_NONFINITE;
    for (int k = 0; k < np; k++)
        w->dE[k] = w->sE[k] - w->rE[k];
    /* dF/db = -bP (b - bE) + W' rP dE */
    for (int a = 0; a < nw; a++) {
        double s = 0.0;
        for (int c = 0; c < nw; c++)
            s -= w->bP[a * nw + c] * (w->b[c] - in->bE[c]);
        w->dFdb[a] = s;
    }
    mv(w->rP, w->dE, np, np, w->v);
    cblas_dgemv(CblasRowMajor, CblasTrans, np, nw, 1.0, in->W, nw, w->v, 1, 1.0, w->dFdb, 1);
    /* d2F/db2 = -bP + W' (rP sC rP - rP) W */
    mm(0, 0, np, np, np, w->rP, w->sC, w->T1);
    mm(0, 0, np, np, np, w->T1, w->rP, w->T2);
    for (size_t k = 0; k < (size_t)np * np; k++)
        w->T2[k] -= w->rP[k];
    mm(0, 0, np, nw, np, w->T2, in->W, w->T1);
    mm(1, 0, nw, nw, np, in->W, w->T1, w->dFdbb);
    for (size_t k = 0; k < (size_t)nw * nw; k++)
        w->dFdbb[k] -= w->bP[k];
    /* complexity with Cb = (-dFdbb)^-1: b' bP b / 2 - ln|bP Cb| / 2 */
    for (size_t k = 0; k < (size_t)nw * nw; k++)
        w->J[k] = -w->dFdbb[k];
    if ((rc = inv_status(vl_inv_reg(w->J, nw, -1.0))))
        return rc;
    double Fb = 0.0;
    for (int a = 0; a < nw; a++)
        for (int c = 0; c < nw; c++)
            Fb += w->b[a] * w->bP[a * nw + c] * w->b[c];
    mm(0, 0, nw, nw, nw, w->bP, w->J, w->M2);
    double ld = vl_logdet(w->M2, nw, w->M2 + (size_t)nw * nw);
    *F = Fi + in->F - (Fb / 2 - ld / 2);
    return isfinite(*F) ? VL_OK : VL_ERR_NONFINITE;
}

int vl_peb_single(const vl_peb_single_input *in, double *Ep, double *Cp, double *F, int *iterations)
{
    vl_init();
    if (!in || in->np < 1 || in->nw < 1 || !in->qE || !in->qC || !in->pE || !in->pC || !in->W ||
        !in->Ce || !in->bE || !in->bC || !Ep || !Cp || !F)
        return VL_ERR_INPUT;
    const int np = in->np, nw = in->nw;
    const size_t pp = (size_t)np * np, ww = (size_t)nw * nw;
    if (!finite_all(in->qE, np) || !finite_all(in->qC, (long)pp) || !finite_all(in->pE, np) ||
        !finite_all(in->pC, (long)pp) || !finite_all(in->W, (long)np * nw) ||
        !finite_all(in->Ce, (long)pp) || !finite_all(in->bE, nw) || !finite_all(in->bC, (long)ww) ||
        !isfinite(in->F))
        return VL_ERR_NONFINITE;
    peb_single_ws w;
    double *blk = peb_single_carve(&w, np, nw);
    if (!blk)
        return VL_ERR_NOMEM;
    /* rP = Ce^-1 (no components: the prior precision itself), rC = rP^-1 */
    memcpy(w.rP, in->Ce, sizeof(double) * pp);
    memcpy(w.bP, in->bC, sizeof(double) * ww);
    int rc = inv_status(vl_inv_reg(w.rP, np, -1.0));
    if (!rc) {
        memcpy(w.rC, w.rP, sizeof(double) * pp);
        rc = inv_status(vl_inv_reg(w.rC, np, -1.0));
    }
    if (!rc)
        rc = inv_status(vl_inv_reg(w.bP, nw, -1.0));
    memcpy(w.b, in->bE, sizeof(double) * nw);
    const int maxit = in->maxit > 0 ? in->maxit : 64;
    double t = -4.0, F0 = 0.0, dF = 0.0, Fn = 0.0;
    int it;
    for (it = 1; it <= maxit && !rc; it++) {
        if ((rc = peb_single_eval(in, &w, &Fn)))
            break;
        memcpy(Cp, w.J, sizeof(double) * ww);
        if (it == 1)
            F0 = Fn;
        /* the step uses the gradient and curvature just computed, as SPM
           (dFdp, dFdpp are assembled before a rejection restores b) */
        memcpy(w.T1, w.dFdbb, sizeof(double) * ww);
        if (Fn >= F0) {
            dF = Fn - F0;
            F0 = Fn;
            memcpy(w.bs, w.b, sizeof(double) * nw);
            memcpy(w.gss, w.dFdbb, sizeof(double) * ww);
            t = fmin(t + 0.25, 2.0);
        } else {
            t = fmax(t - 1.0, -4.0);
            memcpy(w.b, w.bs, sizeof(double) * nw);
        }
        if ((rc = fisher_step(w.T1, w.dFdb, nw, t, w.dp)))
            break;
        double n1 = 0.0;
        for (int a = 0; a < nw; a++)
            n1 += fabs(w.dp[a]);
        if (!(n1 < 8.0)) {
            /* SPM then steps with the curvature of the last accepted point */
            memcpy(w.T1, w.gss, sizeof(double) * ww);
            if ((rc = fisher_step(w.T1, w.dFdb, nw, t, w.dp)))
                break;
        }
        for (int a = 0; a < nw; a++)
            w.b[a] += w.dp[a];
        if (it > 4 && (t <= -4.0 || dF < 1e-4))
            break;
    }
    if (!rc) {
        memcpy(Ep, w.b, sizeof(double) * nw);
        *F = Fn;
        if (iterations)
            *iterations = it > maxit ? maxit : it;
    }
    free(blk);
    return rc;
}
