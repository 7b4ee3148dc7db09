/* vl_bms.c — fixed- and random-effects Bayesian model selection. */
#include "vl/vl_bms.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_integration.h>
#include <gsl/gsl_sf_gamma.h>
#include <gsl/gsl_sf_psi.h>

#include "vl/vl_linalg.h"

#define BMS_DEFAULT_TOL 1e-3 /* spm_BMS: cc = 10e-4 */
#define BMS_DEFAULT_MAXIT 10000

static int check_lme(const double *lme, int nsub, int nmod)
{
    if (!lme || nsub < 1 || nmod < 1)
        return VL_BMS_EINVAL;
    for (long i = 0; i < (long)nsub * nmod; i++)
        if (!isfinite(lme[i]))
            return VL_BMS_ENONFINITE;
    return VL_BMS_OK;
}

/* ---------------------------------------------------------------- FFX */

int vl_bms_ffx(const double *lme, int nsub, int nmod, const double *prior,
               double *slme, double *post, double *logbf)
{
    int rc = check_lme(lme, nsub, nmod);
    if (rc)
        return rc;
    double psum = 0.0;
    if (prior) {
        for (int k = 0; k < nmod; k++) {
            if (!isfinite(prior[k]) || prior[k] < 0)
                return VL_BMS_EINVAL;
            psum += prior[k];
        }
        if (!(psum > 0))
            return VL_BMS_EINVAL;
    }
    double *s = malloc(sizeof(double) * (size_t)nmod);
    if (!s)
        return VL_BMS_ENOMEM;
    double smax = -INFINITY;
    for (int k = 0; k < nmod; k++) {
        double acc = 0.0;
        for (int i = 0; i < nsub; i++)
            acc += lme[(long)i * nmod + k];
        s[k] = acc;
        if (!isfinite(acc)) { /* the sum overflowed */
            free(s);
            return VL_BMS_ENONFINITE;
        }
        if (acc > smax)
            smax = acc;
    }
    if (slme)
        memcpy(slme, s, sizeof(double) * (size_t)nmod);
    if (logbf)
        for (int k = 0; k < nmod; k++)
            logbf[k] = s[k] - smax;
    if (post) {
        /* posterior under the prior; relative to the best model so the
           exponentials cannot overflow */
        double z = 0.0;
        for (int k = 0; k < nmod; k++) {
            double w = prior ? prior[k] / psum : 1.0 / nmod;
            post[k] = w * exp(s[k] - smax);
            z += post[k];
        }
        for (int k = 0; k < nmod; k++)
            post[k] /= z;
    }
    free(s);
    return VL_BMS_OK;
}

/* ------------------------------------------------- exceedance (Gamma) */

typedef struct {
    const double *alpha;
    int K, k;
    double la;  /* ln alpha_k */
    double c0;  /* alpha_k ln alpha_k - alpha_k - ln Gamma(alpha_k) */
} xp_ctx;

/* log P(a, e^s): the regularised lower incomplete gamma function at e^s,
 * with its small-argument series when e^s is negligible next to 1. */
static double log_gamma_cdf_exp(double a, double s)
{
    if (s < -50.0) {
        double x = exp(s);
        return a * s - gsl_sf_lngamma(a + 1.0) - x * a / (a + 1.0);
    }
    double x = exp(s);
    gsl_sf_result r;
    if (x < a + 1.0) {
        if (gsl_sf_gamma_inc_P_e(a, x, &r) != 0 || !(r.val > 0))
            return -INFINITY;
        return log(r.val);
    }
    if (gsl_sf_gamma_inc_Q_e(a, x, &r) != 0)
        return -INFINITY;
    return log1p(-r.val);
}

/* density of s = log G_k, times the probability that all other G_j lie
   below e^s */
static double xp_integrand(double s, void *p)
{
    const xp_ctx *c = p;
    double a = c->alpha[c->k];
    /* a s - e^s - ln Gamma(a), written around s = ln a so that large counts
       do not cancel catastrophically: with u = s - ln a it is
       c0 - a (e^u - 1 - u) */
    double u = s - c->la;
    double l = c->c0 - a * (expm1(u) - u);
    for (int j = 0; j < c->K && l > -745.0; j++)
        if (j != c->k)
            l += log_gamma_cdf_exp(c->alpha[j], s);
    return l > -745.0 ? exp(l) : 0.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int vl_dirichlet_exceedance(const double *alpha, int K, double *xp)
{
    vl_init();
    if (!alpha || !xp || K < 1)
        return VL_BMS_EINVAL;
    for (int k = 0; k < K; k++)
        if (!isfinite(alpha[k]) || !(alpha[k] > 0))
            return VL_BMS_EINVAL;
    if (K == 1) {
        xp[0] = 1.0;
        return VL_BMS_OK;
    }
    if (K == 2) {
        /* r_1 ~ Beta(alpha_1, alpha_2): P(r_1 > 1/2) = I_{1/2}(alpha_2, alpha_1) */
        xp[0] = gsl_cdf_beta_P(0.5, alpha[1], alpha[0]);
        xp[1] = gsl_cdf_beta_P(0.5, alpha[0], alpha[1]);
        return VL_BMS_OK;
    }
    gsl_integration_cquad_workspace *ws = gsl_integration_cquad_workspace_alloc(200);
    double *pts = malloc(sizeof(double) * (size_t)(K + 16));
    if (!ws || !pts) {
        if (ws)
            gsl_integration_cquad_workspace_free(ws);
        free(pts);
        return VL_BMS_ENOMEM;
    }
    int status = VL_BMS_OK;
    for (int k = 0; k < K; k++) {
        const double a = alpha[k];
        /* log G_k has mean psi(a) and sd sqrt(psi'(a)); 40 sd below the
           mean leaves out e^-40 of its mass in every regime (the lower
           tail is exponential with rate a), and above e^s1 the Gamma
           tail is below e^-40 too. */
        const double mu = gsl_sf_psi(a), sd = sqrt(gsl_sf_psi_1(a));
        const double s0 = mu - 40.0 * sd;
        const double s1 = log(a + 40.0 * sqrt(a) + 40.0);
        int np = 0;
        pts[np++] = s0;
        pts[np++] = s1;
        static const double offs[] = {-8, -4, -2, -1, -0.5, 0, 0.5, 1, 2, 4};
        for (size_t o = 0; o < sizeof offs / sizeof offs[0]; o++) {
            double p = mu + offs[o] * sd;
            if (p > s0 && p < s1)
                pts[np++] = p;
        }
        for (int j = 0; j < K; j++) {
            if (j == k)
                continue;
            double p = gsl_sf_psi(alpha[j]);
            if (p > s0 && p < s1)
                pts[np++] = p;
        }
        qsort(pts, (size_t)np, sizeof(double), cmp_double);
        int m = 1; /* drop duplicates */
        for (int i = 1; i < np; i++)
            if (pts[i] > pts[m - 1])
                pts[m++] = pts[i];
        xp_ctx ctx = {alpha, K, k, log(a), a * log(a) - a - gsl_sf_lngamma(a)};
        gsl_function f = {xp_integrand, &ctx};
        double val = 0.0, err = 0.0;
        /* doubly-adaptive Clenshaw-Curtis on each piece (robust to the
           rounding noise of the incomplete gamma functions) */
        for (int i = 0; i + 1 < m; i++) {
            double v = 0.0, e = 0.0;
            int rc = gsl_integration_cquad(&f, pts[i], pts[i + 1], 1e-14, 1e-10, ws, &v, &e,
                                           NULL);
            val += v;
            err += e;
            if (rc != 0 && e > 1e-8)
                status = VL_BMS_ENOCONV;
        }
        if (err > 1e-6)
            status = VL_BMS_ENOCONV;
        xp[k] = val;
    }
    gsl_integration_cquad_workspace_free(ws);
    free(pts);
    return status;
}

/* ------------------------------------------------------ VB and bor */

/* g (nsub x nmod) from alpha: softmax over models of
   lme + psi(alpha_k) - psi(sum alpha) */
static void vb_assign(const double *lme, int nsub, int nmod, const double *alpha,
                      double *g, double *elog)
{
    double a0 = 0.0;
    for (int k = 0; k < nmod; k++)
        a0 += alpha[k];
    double p0 = gsl_sf_psi(a0);
    for (int k = 0; k < nmod; k++)
        elog[k] = gsl_sf_psi(alpha[k]) - p0;
    for (int i = 0; i < nsub; i++) {
        const double *l = lme + (long)i * nmod;
        double *gi = g + (long)i * nmod;
        double mx = -INFINITY;
        for (int k = 0; k < nmod; k++) {
            gi[k] = l[k] + elog[k];
            if (gi[k] > mx)
                mx = gi[k];
        }
        double z = 0.0;
        for (int k = 0; k < nmod; k++) {
            gi[k] = exp(gi[k] - mx);
            z += gi[k];
        }
        for (int k = 0; k < nmod; k++)
            gi[k] /= z;
    }
}

/* the VB iteration of spm_BMS; alpha (nmod) and g (nsub x nmod) are
   outputs; returns iterations, negated if max_iter was reached */
static int vb_dirichlet(const double *lme, int nsub, int nmod, const double *alpha0,
                        double tol, int max_iter, double *alpha, double *g, double *work)
{
    double *elog = work, *prev = work + nmod;
    memcpy(alpha, alpha0, sizeof(double) * (size_t)nmod);
    int it = 0;
    for (;;) {
        vb_assign(lme, nsub, nmod, alpha, g, elog);
        memcpy(prev, alpha, sizeof(double) * (size_t)nmod);
        double c = 0.0;
        for (int k = 0; k < nmod; k++) {
            double b = 0.0;
            for (int i = 0; i < nsub; i++)
                b += g[(long)i * nmod + k];
            alpha[k] = alpha0[k] + b;
            c += (alpha[k] - prev[k]) * (alpha[k] - prev[k]);
        }
        it++;
        if (sqrt(c) <= tol)
            return it;
        if (it >= max_iter)
            return -it;
    }
}

int vl_bms_bor(const double *lme, int nsub, int nmod, const double *alpha,
               const double *g, const double *alpha0, const int *fam,
               int nfam, double *bor, double *F0, double *F1)
{
    vl_init();
    int rc = check_lme(lme, nsub, nmod);
    if (rc)
        return rc;
    if (!alpha || !g || !alpha0)
        return VL_BMS_EINVAL;
    double *elog = malloc(sizeof(double) * (size_t)nmod * 3);
    if (!elog)
        return VL_BMS_ENOMEM;
    double *fprior = elog + nmod, *g0 = elog + 2 * nmod;
    if (fam) {
        if (nfam < 1) {
            free(elog);
            return VL_BMS_EINVAL;
        }
        for (int k = 0; k < nmod; k++) {
            if (fam[k] < 0 || fam[k] >= nfam) {
                free(elog);
                return VL_BMS_EINVAL;
            }
        }
        for (int k = 0; k < nmod; k++) {
            int size = 0;
            for (int j = 0; j < nmod; j++)
                size += fam[j] == fam[k];
            fprior[k] = 1.0 / ((double)nfam * size);
        }
    }
    const double eps = DBL_EPSILON; /* as SPM: log(g + eps) */
    /* alternative: free energy of the variational posterior (Rigoux et
       al. 2014, A.20) */
    double a0 = 0.0, p0 = 0.0;
    for (int k = 0; k < nmod; k++) {
        a0 += alpha[k];
        p0 += alpha0[k];
    }
    double psia0 = gsl_sf_psi(a0);
    double Sqf = -gsl_sf_lngamma(a0), ELJ = gsl_sf_lngamma(p0), Sqm = 0.0;
    for (int k = 0; k < nmod; k++) {
        elog[k] = gsl_sf_psi(alpha[k]) - psia0;
        Sqf += gsl_sf_lngamma(alpha[k]) - (alpha[k] - 1.0) * elog[k];
        ELJ += -gsl_sf_lngamma(alpha0[k]) + (alpha0[k] - 1.0) * elog[k];
    }
    for (int i = 0; i < nsub; i++)
        for (int k = 0; k < nmod; k++) {
            double gik = g[(long)i * nmod + k];
            Sqm -= gik * log(gik + eps);
            ELJ += gik * (elog[k] + lme[(long)i * nmod + k]);
        }
    double f1 = ELJ + Sqf + Sqm;
    /* null: all frequencies equal (A.17) — each subject's model posterior
       under a flat (or family-flat) model prior */
    double f0m = 0.0, f0f = 0.0;
    for (int i = 0; i < nsub; i++) {
        const double *l = lme + (long)i * nmod;
        double mx = -INFINITY, z = 0.0;
        for (int k = 0; k < nmod; k++)
            if (l[k] > mx)
                mx = l[k];
        for (int k = 0; k < nmod; k++) {
            g0[k] = exp(l[k] - mx);
            z += g0[k];
        }
        for (int k = 0; k < nmod; k++) {
            double gk = g0[k] / z;
            f0m += gk * (l[k] - log((double)nmod) - log(gk + eps));
            if (fam)
                f0f += gk * (l[k] - log(gk + eps) + log(fprior[k]));
        }
    }
    double f0v = fam ? f0f : f0m;
    free(elog);
    if (F0)
        *F0 = f0v;
    if (F1)
        *F1 = f1;
    if (bor)
        *bor = 1.0 / (1.0 + exp(f1 - f0v));
    return VL_BMS_OK;
}

/* ------------------------------------------------------------- RFX */

void vl_bms_rfx_result_free(vl_bms_rfx_result *r)
{
    if (!r)
        return;
    free(r->alpha);
    free(r->exp_r);
    free(r->xp);
    free(r->pxp);
    free(r->g);
    memset(r, 0, sizeof *r); /* counts too: a freed result reads as empty */
}

static void opts_defaults(const vl_bms_opts *o, double *tol, int *maxit)
{
    *tol = (o && o->tol > 0) ? o->tol : BMS_DEFAULT_TOL;
    *maxit = (o && o->max_iter > 0) ? o->max_iter : BMS_DEFAULT_MAXIT;
}

int vl_bms_rfx(const double *lme, int nsub, int nmod, const vl_bms_opts *opts,
               vl_bms_rfx_result *out)
{
    vl_init();
    if (!out)
        return VL_BMS_EINVAL;
    memset(out, 0, sizeof *out);
    int rc = check_lme(lme, nsub, nmod);
    if (rc)
        return rc;
    double tol;
    int maxit;
    opts_defaults(opts, &tol, &maxit);
    if (opts && opts->alpha0)
        for (int k = 0; k < nmod; k++)
            if (!isfinite(opts->alpha0[k]) || !(opts->alpha0[k] > 0))
                return VL_BMS_EINVAL;
    out->nsub = nsub;
    out->nmod = nmod;
    size_t nk = (size_t)nmod;
    out->alpha = malloc(sizeof(double) * nk);
    out->exp_r = malloc(sizeof(double) * nk);
    out->xp = malloc(sizeof(double) * nk);
    out->pxp = malloc(sizeof(double) * nk);
    out->g = malloc(sizeof(double) * nk * (size_t)nsub);
    double *work = malloc(sizeof(double) * nk * 3);
    if (!out->alpha || !out->exp_r || !out->xp || !out->pxp || !out->g || !work) {
        free(work);
        vl_bms_rfx_result_free(out);
        return VL_BMS_ENOMEM;
    }
    double *alpha0 = work + 2 * nmod;
    for (int k = 0; k < nmod; k++)
        alpha0[k] = (opts && opts->alpha0) ? opts->alpha0[k] : 1.0;
    int it = vb_dirichlet(lme, nsub, nmod, alpha0, tol, maxit, out->alpha, out->g, work);
    out->iterations = it < 0 ? -it : it;
    int status = it < 0 ? VL_BMS_ENOCONV : VL_BMS_OK;
    double a0 = 0.0;
    for (int k = 0; k < nmod; k++)
        a0 += out->alpha[k];
    for (int k = 0; k < nmod; k++)
        out->exp_r[k] = out->alpha[k] / a0;
    rc = vl_dirichlet_exceedance(out->alpha, nmod, out->xp);
    if (rc == VL_BMS_ENOCONV)
        status = VL_BMS_ENOCONV;
    else if (rc) {
        free(work);
        vl_bms_rfx_result_free(out);
        return rc;
    }
    rc = vl_bms_bor(lme, nsub, nmod, out->alpha, out->g, alpha0, NULL, 0, &out->bor,
                    &out->F0, &out->F1);
    free(work);
    if (rc) {
        vl_bms_rfx_result_free(out);
        return rc;
    }
    for (int k = 0; k < nmod; k++)
        out->pxp[k] = (1.0 - out->bor) * out->xp[k] + out->bor / nmod;
    return status;
}

/* --------------------------------------------------------- families */

void vl_bms_family_result_free(vl_bms_family_result *r)
{
    if (!r)
        return;
    free(r->alpha);
    free(r->exp_r);
    free(r->xp);
    free(r->pxp);
    free(r->model_alpha0);
    free(r->model_alpha);
    free(r->model_post);
    r->alpha = r->exp_r = r->xp = r->pxp = NULL;
    r->model_alpha0 = r->model_alpha = r->model_post = NULL;
}

int vl_bms_family(const double *lme, int nsub, int nmod, const int *fam,
                  int nfam, int rfx, const vl_bms_opts *opts,
                  vl_bms_family_result *out)
{
    vl_init();
    if (!out)
        return VL_BMS_EINVAL;
    memset(out, 0, sizeof *out);
    int rc = check_lme(lme, nsub, nmod);
    if (rc)
        return rc;
    if (!fam || nfam < 1)
        return VL_BMS_EINVAL;
    int *size = calloc((size_t)nfam, sizeof(int));
    if (!size)
        return VL_BMS_ENOMEM;
    for (int k = 0; k < nmod; k++) {
        if (fam[k] < 0 || fam[k] >= nfam) {
            free(size);
            return VL_BMS_EINVAL;
        }
        size[fam[k]]++;
    }
    for (int f = 0; f < nfam; f++)
        if (size[f] == 0) {
            free(size);
            return VL_BMS_EINVAL;
        }
    out->nfam = nfam;
    out->nmod = nmod;
    size_t nf = (size_t)nfam, nk = (size_t)nmod;
    out->alpha = malloc(sizeof(double) * nf);
    out->exp_r = malloc(sizeof(double) * nf);
    out->xp = malloc(sizeof(double) * nf);
    out->pxp = malloc(sizeof(double) * nf);
    out->model_alpha0 = malloc(sizeof(double) * nk);
    out->model_alpha = malloc(sizeof(double) * nk);
    out->model_post = malloc(sizeof(double) * nk);
    if (!out->alpha || !out->exp_r || !out->xp || !out->pxp || !out->model_alpha0 ||
        !out->model_alpha || !out->model_post) {
        free(size);
        vl_bms_family_result_free(out);
        return VL_BMS_ENOMEM;
    }
    int status = VL_BMS_OK;
    if (!rfx) {
        double *prior = out->model_alpha0;
        for (int k = 0; k < nmod; k++)
            prior[k] = 1.0 / ((double)nfam * size[fam[k]]);
        rc = vl_bms_ffx(lme, nsub, nmod, prior, NULL, out->model_post, NULL);
        if (rc) {
            free(size);
            vl_bms_family_result_free(out);
            return rc;
        }
        for (int f = 0; f < nfam; f++) {
            out->exp_r[f] = 0.0;
            out->alpha[f] = out->xp[f] = out->pxp[f] = NAN;
        }
        for (int k = 0; k < nmod; k++) {
            out->exp_r[fam[k]] += out->model_post[k];
            out->model_alpha[k] = NAN;
        }
        out->bor = NAN;
        free(size);
        return VL_BMS_OK;
    }
    double tol;
    int maxit;
    opts_defaults(opts, &tol, &maxit);
    double *g = malloc(sizeof(double) * nk * (size_t)nsub);
    double *work = malloc(sizeof(double) * nk * 2);
    if (!g || !work) {
        free(g);
        free(work);
        free(size);
        vl_bms_family_result_free(out);
        return VL_BMS_ENOMEM;
    }
    for (int k = 0; k < nmod; k++)
        out->model_alpha0[k] = 1.0 / size[fam[k]];
    int it = vb_dirichlet(lme, nsub, nmod, out->model_alpha0, tol, maxit, out->model_alpha, g,
                          work);
    if (it < 0)
        status = VL_BMS_ENOCONV;
    double a0 = 0.0;
    for (int k = 0; k < nmod; k++)
        a0 += out->model_alpha[k];
    for (int f = 0; f < nfam; f++)
        out->alpha[f] = 0.0;
    for (int k = 0; k < nmod; k++) {
        out->model_post[k] = out->model_alpha[k] / a0;
        out->alpha[fam[k]] += out->model_alpha[k];
    }
    for (int f = 0; f < nfam; f++)
        out->exp_r[f] = out->alpha[f] / a0;
    rc = vl_dirichlet_exceedance(out->alpha, nfam, out->xp);
    if (rc == VL_BMS_ENOCONV)
        status = VL_BMS_ENOCONV;
    if (rc == VL_BMS_OK || rc == VL_BMS_ENOCONV)
        rc = vl_bms_bor(lme, nsub, nmod, out->model_alpha, g, out->model_alpha0, fam, nfam,
                        &out->bor, NULL, NULL);
    free(g);
    free(work);
    free(size);
    if (rc) {
        vl_bms_family_result_free(out);
        return rc;
    }
    for (int f = 0; f < nfam; f++)
        out->pxp[f] = (1.0 - out->bor) * out->xp[f] + out->bor / nfam;
    return status;
}
