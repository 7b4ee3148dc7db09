/* dcm_peb_space.c — a space of reduced group models over a PEB and
 * families of them (SPM's spm_dcm_peb_bmc with a model space and
 * spm_dcm_peb_bmc_fam); see dcm_peb_space.h for the maths. */
#include "dcm/dcm_peb_space.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>

#include "vl/vl_status.h"

/* SPM's Occam's window for the BMA (spm_dcm_peb_bmc, spm_dcm_peb_bmc_fam) */
#define SPACE_OCCAM 8.0
/* spm_log_evidence_reduce's regularisation of its inverses (spm_inv(A, 1e-8)) */
#define SPACE_EPS 1e-8

int dcm_peb_space_unique(const unsigned char *K, int nm, int np, unsigned char *keep, int *dup_of)
{
    int kept = 0;
    for (int m = 0; m < nm; m++) {
        int dup = -1;
        for (int e = 0; e < m && dup < 0; e++)
            if (keep[e] && !memcmp(K + (size_t)m * np, K + (size_t)e * np, (size_t)np))
                dup = e;
        keep[m] = dup < 0;
        if (dup_of)
            dup_of[m] = dup;
        kept += dup < 0;
    }
    return kept;
}

void dcm_peb_space_result_free(dcm_peb_space_result *r)
{
    if (!r)
        return;
    free(r->K);
    free(r->F);
    free(r->P);
    free(r->Pc);
    free(r->Pd);
    free(r->Pw);
    free(r->Px);
    free(r->sE);
    free(r->sV);
    free(r->Ep);
    free(r->Vp);
    free(r->Pp);
    free(r->in_bma);
    memset(r, 0, sizeof *r);
}

static double design_value(const double *X, int nx, int i, int j)
{
    return X ? X[(size_t)i * nx + j] : 1.0;
}

/* SPM's PEB.M: the group prior of vec(Ep) (parameters fastest), diagonal;
 * and the PEB posterior mean in the same order */
static void group_prior(const dcm_peb_result *P, const double *X, int nsub, const double *pE,
                        const double *pV, double alpha, double *bE, double *bC, double *qE)
{
    const int nb = P->np * P->nx, nx = P->nx;
    memset(bC, 0, sizeof(double) * (size_t)nb * nb);
    for (int j = 0; j < nx; j++) {
        double sx = 0.0;
        for (int i = 0; i < nsub; i++)
            sx += design_value(X, nx, i, j) * design_value(X, nx, i, j);
        double xc = sx > 0 ? nsub / sx : 1.0;
        for (int q = 0; q < P->np; q++) {
            int k = q + j * P->np;
            bE[k] = j == 0 ? pE[P->sel[q]] : 0.0;
            bC[(size_t)k * nb + k] = xc * pV[P->sel[q]] / alpha;
            qE[k] = P->Ep[q * nx + j];
        }
    }
}

/* posterior over the joint models, its marginals and SPM's Pw / Px */
static void space_posteriors(const dcm_peb_space_result *S, const double *post, double *Pw, double *Px)
{
    const int nc = S->nc, nd = S->nd, np = S->np;
    for (int q = 0; q < np; q++) {
        /* mean marginal of the models with q on and with q off, per factor */
        double on_c = 0, off_c = 0, on_d = 0, off_d = 0;
        int n_on = 0, n_off = 0;
        for (int m = 0; m < S->nm; m++) {
            double rc = 0.0, cd = 0.0;
            for (int j = 0; j < nd; j++)
                rc += post[m * nd + j];
            if (nd > 1)
                for (int i = 0; i < nc; i++)
                    cd += post[i * nd + m];
            if (S->K[(size_t)m * np + q]) {
                on_c += rc;
                on_d += cd;
                n_on++;
            } else {
                off_c += rc;
                off_d += cd;
                n_off++;
            }
        }
        /* a parameter on in every model (or in none) is present with
           probability 1 (0): SPM leaves those out of its Kname list */
        if (!n_off) {
            Pw[q] = 1.0;
            if (Px)
                Px[q] = 1.0;
            continue;
        }
        if (!n_on) {
            Pw[q] = 0.0;
            if (Px)
                Px[q] = 0.0;
            continue;
        }
        on_c /= n_on;
        off_c /= n_off;
        Pw[q] = on_c + off_c > 0 ? on_c / (on_c + off_c) : 0.5;
        if (Px) {
            on_d /= n_on;
            off_d /= n_off;
            Px[q] = on_d + off_d > 0 ? on_d / (on_d + off_d) : 0.5;
        }
    }
}

/* Mixture mean and variance over the joint models with use[m] != 0,
 * weights exp(F) renormalised over them (spm_dcm_bma's expectation). */
static int space_bma(const double *F, const unsigned char *use, int nmod, int n, const double *sE,
                     const double *sV, double *Ep, double *Vp)
{
    double Fmax = -INFINITY, z = 0.0;
    for (int m = 0; m < nmod; m++)
        if (use[m])
            Fmax = fmax(Fmax, F[m]);
    if (!isfinite(Fmax))
        return -1;
    memset(Ep, 0, sizeof(double) * n);
    memset(Vp, 0, sizeof(double) * n);
    for (int m = 0; m < nmod; m++) {
        if (!use[m])
            continue;
        double w = exp(F[m] - Fmax);
        z += w;
        for (int k = 0; k < n; k++) {
            double e = sE[(size_t)m * n + k];
            Ep[k] += w * e;
            Vp[k] += w * (fmax(sV[(size_t)m * n + k], 0.0) + e * e);
        }
    }
    for (int k = 0; k < n; k++) {
        Ep[k] /= z;
        Vp[k] = fmax(Vp[k] / z - Ep[k] * Ep[k], 0.0);
        if (!isfinite(Ep[k]) || !isfinite(Vp[k]))
            return k + 1;
    }
    return 0;
}

/* Score joint model (i, j): the effects of covariate 0 off in row i and
 * of covariate 1 off in row j get reduced prior mean 0 and variance 0.
 * With the group prior diagonal, that reduced prior is the full prior
 * conditioned on those effects being 0, so the reduction is exact in
 * closed form (Savage-Dickey and Gaussian conditioning):
 *     dF = ln N(0; qE_S, qC_SS) - ln N(0; bE_S, bC_SS)
 *     sE = qE - qC(:,S) qC_SS^-1 qE_S,  sC = qC - qC(:,S) qC_SS^-1 qC(S,:)
 * SPM's spm_log_evidence_reduce reaches the same limit through precisions
 * of 1e8 for the switched-off effects; on the tutorial's PEB that route
 * loses up to 0.16 in F to rounding (the F of the same model moves by
 * that much with the number of BLAS threads), this one is stable. As
 * SPM, effects outside the principal subspace of the prior (spm_svd(pC,
 * 1e-6): variances too small beside the others, e.g. a covariate in
 * large units) are fixed at their prior mean: sE = bE there, sV = 0. */
typedef struct {
    int nb;
    unsigned char *kept;   /* nb: in the prior's principal subspace */
    int *S;                /* the switched-off effects (kept ones) */
    gsl_matrix *C, *Ai, *G; /* |S| x |S| work */
    gsl_vector *x, *y;
} space_work;

static void space_work_free(space_work *w)
{
    free(w->kept);
    free(w->S);
    if (w->C)
        gsl_matrix_free(w->C);
    if (w->Ai)
        gsl_matrix_free(w->Ai);
    if (w->G)
        gsl_matrix_free(w->G);
    if (w->x)
        gsl_vector_free(w->x);
    if (w->y)
        gsl_vector_free(w->y);
    memset(w, 0, sizeof *w);
}

static int space_work_init(space_work *w, int nb, const double *bC)
{
    memset(w, 0, sizeof *w);
    w->nb = nb;
    w->kept = calloc((size_t)nb, 1);
    w->S = malloc(sizeof(int) * nb);
    w->C = gsl_matrix_alloc((size_t)nb, (size_t)nb);
    w->Ai = gsl_matrix_alloc((size_t)nb, (size_t)nb);
    w->G = gsl_matrix_alloc((size_t)nb, (size_t)nb);
    w->x = gsl_vector_alloc((size_t)nb);
    w->y = gsl_vector_alloc((size_t)nb);
    if (!w->kept || !w->S || !w->C || !w->Ai || !w->G || !w->x || !w->y)
        return -1;
    /* spm_svd(pC, 1e-6) of a diagonal pC: variances v with v^2 nb' / sum v^2 > 1e-6
       (nb': the non-zero ones) */
    double ss = 0.0;
    int nz = 0;
    for (int k = 0; k < nb; k++) {
        double v = bC[(size_t)k * nb + k];
        ss += v * v;
        nz += v != 0.0;
    }
    for (int k = 0; k < nb; k++) {
        double v = bC[(size_t)k * nb + k];
        w->kept[k] = v != 0.0 && v * v * nz / ss > 1e-6;
    }
    return 0;
}

static int score_model(const dcm_peb_result *P, const unsigned char *Ki, const unsigned char *Kj,
                       const double *qE, const double *bE, const double *bC, space_work *w, double *F,
                       double *sE, double *sV)
{
    const int nb = P->np * P->nx;
    const double *qC = P->Cp;
    int ns = 0;
    for (int k = 0; k < nb; k++) {
        int q = k % P->np, j = k / P->np;
        int on = j == 0 ? Ki[q] : j == 1 ? Kj[q] : 1;
        if (!on && w->kept[k])
            w->S[ns++] = k;
    }
    for (int k = 0; k < nb; k++) {
        sE[k] = w->kept[k] ? qE[k] : bE[k];
        sV[k] = w->kept[k] ? qC[(size_t)k * nb + k] : 0.0;
    }
    *F = 0.0;
    if (!ns)
        return VL_OK;
    gsl_matrix_view C = gsl_matrix_submatrix(w->C, 0, 0, (size_t)ns, (size_t)ns);
    gsl_vector_view x = gsl_vector_subvector(w->x, 0, (size_t)ns);
    gsl_vector_view y = gsl_vector_subvector(w->y, 0, (size_t)ns);
    for (int a = 0; a < ns; a++) {
        for (int b = 0; b < ns; b++)
            gsl_matrix_set(&C.matrix, (size_t)a, (size_t)b,
                           qC[(size_t)w->S[a] * nb + w->S[b]] + (a == b ? SPACE_EPS : 0.0));
        gsl_vector_set(&y.vector, (size_t)a, qE[w->S[a]]);
    }
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    int gr = gsl_linalg_cholesky_decomp1(&C.matrix);
    if (!gr)
        gr = gsl_linalg_cholesky_solve(&C.matrix, &y.vector, &x.vector); /* x = qC_SS^-1 qE_S */
    gsl_set_error_handler(old);
    if (gr)
        return VL_ERR_NONFINITE;
    /* SPM inverts every covariance as (C + eps I)^-1 (eps = 1e-8): its F is
       the reduction with A = qC_SS + eps I, B = bC_SS + eps I and a reduced
       prior variance of eps (not 0) on S. With M = A^-1 - B^-1 and
       G = I + eps M that is the limit above plus -1/2 ln|G| + eps/2 s'G^-1 s
       (s = A^-1 qE_S - B^-1 bE_S); the eps terms are not negligible for an
       effect of large z and small variance (0.002 on a synthetic group) */
    const double eps = SPACE_EPS;
    gsl_matrix_view Ai = gsl_matrix_submatrix(w->Ai, 0, 0, (size_t)ns, (size_t)ns);
    gsl_matrix_view G = gsl_matrix_submatrix(w->G, 0, 0, (size_t)ns, (size_t)ns);
    gsl_matrix_memcpy(&Ai.matrix, &C.matrix);
    old = gsl_set_error_handler_off();
    gr = gsl_linalg_cholesky_invert(&Ai.matrix);
    for (int a = 0; a < ns && !gr; a++)
        for (int b = 0; b < ns; b++) {
            double m = gsl_matrix_get(&Ai.matrix, (size_t)a, (size_t)b);
            if (a == b)
                m -= 1.0 / (bC[(size_t)w->S[a] * nb + w->S[a]] + eps);
            gsl_matrix_set(&G.matrix, (size_t)a, (size_t)b, (a == b) + eps * m);
        }
    if (!gr)
        gr = gsl_linalg_cholesky_decomp1(&G.matrix);
    gsl_set_error_handler(old);
    if (gr)
        return VL_ERR_NONFINITE;
    double ldq = 0.0, quad_q = 0.0, ldp = 0.0, quad_p = 0.0, ldg = 0.0;
    for (int a = 0; a < ns; a++) {
        int k = w->S[a];
        double v = bC[(size_t)k * nb + k] + eps;
        ldq += 2.0 * log(gsl_matrix_get(&C.matrix, (size_t)a, (size_t)a));
        ldg += 2.0 * log(gsl_matrix_get(&G.matrix, (size_t)a, (size_t)a));
        quad_q += qE[k] * gsl_vector_get(&x.vector, (size_t)a);
        ldp += log(v);
        quad_p += bE[k] * bE[k] / v;
        gsl_vector_set(&y.vector, (size_t)a, gsl_vector_get(&x.vector, (size_t)a) - bE[k] / v);
    }
    double sGs = 0.0;
    gsl_linalg_cholesky_svx(&G.matrix, &y.vector); /* G^-1 s, in place */
    for (int a = 0; a < ns; a++) {
        int k = w->S[a];
        sGs += (gsl_vector_get(&x.vector, (size_t)a) - bE[k] / (bC[(size_t)k * nb + k] + eps)) *
               gsl_vector_get(&y.vector, (size_t)a);
    }
    *F = -0.5 * ldq - 0.5 * quad_q + 0.5 * ldp + 0.5 * quad_p - 0.5 * ldg + 0.5 * eps * sGs;
    /* the posterior conditioned on the switched-off effects being 0;
       variances need row k of qC_SS^-1 qC(S, k) */
    for (int k = 0; k < nb; k++) {
        if (!w->kept[k])
            continue;
        double m = 0.0;
        for (int a = 0; a < ns; a++)
            m += qC[(size_t)k * nb + w->S[a]] * gsl_vector_get(&x.vector, (size_t)a);
        sE[k] = qE[k] - m;
        for (int a = 0; a < ns; a++)
            gsl_vector_set(&y.vector, (size_t)a, qC[(size_t)w->S[a] * nb + k]);
        gsl_linalg_cholesky_svx(&C.matrix, &y.vector);
        double r = 0.0;
        for (int a = 0; a < ns; a++)
            r += qC[(size_t)k * nb + w->S[a]] * gsl_vector_get(&y.vector, (size_t)a);
        sV[k] = fmax(qC[(size_t)k * nb + k] - r, 0.0);
    }
    for (int a = 0; a < ns; a++) {
        sE[w->S[a]] = 0.0;
        sV[w->S[a]] = 0.0;
    }
    return isfinite(*F) ? VL_OK : VL_ERR_NONFINITE;
}

int dcm_peb_space(const dcm_peb_result *P, const double *X, int nsub, const double *pE,
                  const double *pV, double alpha, const unsigned char *K, int nm,
                  dcm_peb_space_result *out, dcm_error *err)
{
    memset(out, 0, sizeof *out);
    if (!P || !P->Ep || !P->Cp || !pE || !pV || !K || nsub < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "model space: no PEB result, priors or models");
    if (nm < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "model space: no models");
    if (!(alpha > 0))
        alpha = 1.0;
    const int np = P->np, nx = P->nx, nb = np * nx;
    const int nc = nm, nd = nx > 1 ? nm : 1, nmod = nc * nd;
    out->nm = nm;
    out->np = np;
    out->nx = nx;
    out->nc = nc;
    out->nd = nd;
    out->n = nb;
    const size_t nbb = (size_t)nb * nb;
    double *bE = malloc(sizeof(double) * nb), *bC = malloc(sizeof(double) * nbb);
    double *qE = malloc(sizeof(double) * nb);
    space_work w;
    memset(&w, 0, sizeof w);
    out->K = malloc((size_t)nm * np);
    out->F = malloc(sizeof(double) * nmod);
    out->P = malloc(sizeof(double) * nmod);
    out->Pc = calloc((size_t)nc, sizeof(double));
    out->Pd = calloc((size_t)nd, sizeof(double));
    out->Pw = malloc(sizeof(double) * np);
    out->Px = nd > 1 ? malloc(sizeof(double) * np) : NULL;
    out->sE = malloc(sizeof(double) * nmod * nb);
    out->sV = malloc(sizeof(double) * nmod * nb);
    out->Ep = malloc(sizeof(double) * nb);
    out->Vp = malloc(sizeof(double) * nb);
    out->Pp = calloc((size_t)nb, sizeof(double));
    out->in_bma = calloc((size_t)nmod, 1);
    int rc = DCM_OK;
    if (!bE || !bC || !qE || !out->K || !out->F || !out->P || !out->Pc ||
        !out->Pd || !out->Pw || (nd > 1 && !out->Px) || !out->sE || !out->sV || !out->Ep ||
        !out->Vp || !out->Pp || !out->in_bma) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    memcpy(out->K, K, (size_t)nm * np);
    group_prior(P, X, nsub, pE, pV, alpha, bE, bC, qE);
    if (space_work_init(&w, nb, bC)) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    double Fmax = -INFINITY;
    for (int i = 0; i < nc && !rc; i++)
        for (int j = 0; j < nd && !rc; j++) {
            int m = i * nd + j;
            int vr = score_model(P, K + (size_t)i * np, K + (size_t)(nd > 1 ? j : 0) * np, qE, bE, bC,
                                 &w, &out->F[m], out->sE + (size_t)m * nb,
                                 out->sV + (size_t)m * nb);
            if (vr || !isfinite(out->F[m]))
                rc = dcm_error_set(err, DCM_ERR_NUMERIC,
                                         "the model space: the reduction to joint model %d x %d "
                                         "gave a non-finite free energy (group posterior too "
                                         "extreme to reduce)", i + 1, j + 1);
            else if (out->F[m] > Fmax) {
                Fmax = out->F[m];
                out->best_c = i;
                out->best_d = j;
            }
        }
    if (rc)
        goto done;
    double z = 0.0;
    for (int m = 0; m < nmod; m++)
        z += out->P[m] = exp(out->F[m] - Fmax);
    for (int m = 0; m < nmod; m++) {
        out->P[m] /= z;
        out->Pc[m / nd] += out->P[m];
        out->Pd[m % nd] += out->P[m];
        out->in_bma[m] = out->F[m] > Fmax - SPACE_OCCAM;
        out->nbma += out->in_bma[m];
    }
    space_posteriors(out, out->P, out->Pw, out->Px);
    /* Pp: posterior mass of the joint models with the effect on */
    for (int k = 0; k < nb; k++) {
        int q = k % np, j = k / np;
        if (j >= 2) {
            out->Pp[k] = 1.0;
            continue;
        }
        for (int m = 0; m < nmod; m++) {
            int row = j == 0 ? m / nd : m % nd;
            if (K[(size_t)row * np + q])
                out->Pp[k] += out->P[m];
        }
        out->Pp[k] = fmin(out->Pp[k], 1.0);
    }
    int bad = space_bma(out->F, out->in_bma, nmod, nb, out->sE, out->sV, out->Ep, out->Vp);
    if (bad)
        rc = dcm_error_set(err, DCM_ERR_NUMERIC, "the model space: the Bayesian model average of "
                           "group effect %d is not finite", bad);
done:
    free(bE);
    free(bC);
    free(qE);
    space_work_free(&w);
    if (rc)
        dcm_peb_space_result_free(out);
    return rc;
}

void dcm_peb_family_result_free(dcm_peb_family_result *r)
{
    if (!r)
        return;
    free(r->family_prior);
    free(r->model_prior);
    free(r->model_post);
    free(r->Pf);
    free(r->Pfc);
    free(r->Pfd);
    free(r->Pw);
    free(r->Px);
    free(r->Ep);
    free(r->Vp);
    free(r->in_bma);
    memset(r, 0, sizeof *r);
}

int dcm_peb_families(const dcm_peb_space_result *S, const int *fam, int nfam, int bma,
                     dcm_peb_family_result *out, dcm_error *err)
{
    memset(out, 0, sizeof *out);
    if (!S || !S->F || !fam || nfam < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "families: no model space or families");
    if (bma < DCM_PEB_FAM_BMA_ALL || bma > DCM_PEB_FAM_BMA_NONE)
        return dcm_error_set(err, DCM_ERR_INPUT, "families: unknown BMA option %d", bma);
    const int nm = S->nm, nc = S->nc, nd = S->nd, nmod = nc * nd, nfd = nd > 1 ? nfam : 1;
    int *size = calloc((size_t)nfam, sizeof(int));
    if (!size)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    for (int m = 0; m < nm; m++) {
        if (fam[m] < 0 || fam[m] >= nfam) {
            free(size);
            return dcm_error_set(err, DCM_ERR_INPUT, "families: model %d is in family %d, not in "
                                 "1..%d", m + 1, fam[m] + 1, nfam);
        }
        size[fam[m]]++;
    }
    for (int f = 0; f < nfam; f++)
        if (!size[f]) {
            free(size);
            return dcm_error_set(err, DCM_ERR_INPUT, "families: family %d has no model", f + 1);
        }
    out->nfam = nfam;
    out->nc = nc;
    out->nd = nd;
    out->nfd = nfd;
    out->bma = bma;
    out->family_prior = malloc(sizeof(double) * nfam);
    out->model_prior = malloc(sizeof(double) * nmod);
    out->model_post = malloc(sizeof(double) * nmod);
    out->Pf = calloc((size_t)nfam * nfd, sizeof(double));
    out->Pfc = calloc((size_t)nfam, sizeof(double));
    out->Pfd = calloc((size_t)nfd, sizeof(double));
    out->Pw = malloc(sizeof(double) * S->np);
    out->Px = nd > 1 ? malloc(sizeof(double) * S->np) : NULL;
    int rc = DCM_OK;
    if (!out->family_prior || !out->model_prior || !out->model_post || !out->Pf || !out->Pfc ||
        !out->Pfd || !out->Pw || (nd > 1 && !out->Px)) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    /* every family the same prior, shared by its models, in each factor */
    double Fmax = -INFINITY, z = 0.0;
    for (int m = 0; m < nmod; m++)
        Fmax = fmax(Fmax, S->F[m]);
    for (int f = 0; f < nfam; f++)
        out->family_prior[f] = 1.0 / nfam;
    for (int i = 0; i < nc; i++)
        for (int j = 0; j < nd; j++) {
            int m = i * nd + j;
            double pw = 1.0 / ((double)size[fam[i]] * nfam);
            double pb = nd > 1 ? 1.0 / ((double)size[fam[j]] * nfam) : 1.0;
            out->model_prior[m] = pw * pb;
            z += out->model_post[m] = exp(S->F[m] - Fmax) * out->model_prior[m];
        }
    for (int i = 0; i < nc; i++)
        for (int j = 0; j < nd; j++) {
            int m = i * nd + j, a = fam[i], b = nd > 1 ? fam[j] : 0;
            out->model_post[m] /= z;
            out->Pf[a * nfd + b] += out->model_post[m];
        }
    double best = -1.0;
    for (int a = 0; a < nfam; a++)
        for (int b = 0; b < nfd; b++) {
            out->Pfc[a] += out->Pf[a * nfd + b];
            out->Pfd[b] += out->Pf[a * nfd + b];
            if (out->Pf[a * nfd + b] > best) {
                best = out->Pf[a * nfd + b];
                out->win_c = a;
                out->win_d = b;
            }
        }
    space_posteriors(S, out->model_post, out->Pw, out->Px);
    if (bma == DCM_PEB_FAM_BMA_NONE)
        goto done;
    out->in_bma = calloc((size_t)nmod, 1);
    out->Ep = malloc(sizeof(double) * S->n);
    out->Vp = malloc(sizeof(double) * S->n);
    if (!out->in_bma || !out->Ep || !out->Vp) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    /* SPM: the window is 8 below the best F of all; WINNING keeps the
       winning family pair's models in it */
    for (int i = 0; i < nc; i++)
        for (int j = 0; j < nd; j++) {
            int m = i * nd + j;
            int in = S->F[m] > Fmax - SPACE_OCCAM;
            if (bma == DCM_PEB_FAM_BMA_WINNING)
                in &= fam[i] == out->win_c && (nd == 1 || fam[j] == out->win_d);
            out->in_bma[m] = (unsigned char)in;
            out->nbma += in;
        }
    if (!out->nbma) { /* the winning families' models are all far below the best */
        free(out->Ep);
        free(out->Vp);
        out->Ep = out->Vp = NULL;
        goto done;
    }
    int bad = space_bma(S->F, out->in_bma, nmod, S->n, S->sE, S->sV, out->Ep, out->Vp);
    if (bad)
        rc = dcm_error_set(err, DCM_ERR_NUMERIC, "families: the Bayesian model average of group "
                           "effect %d is not finite", bad);
done:
    free(size);
    if (rc)
        dcm_peb_family_result_free(out);
    return rc;
}
