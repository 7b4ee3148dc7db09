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
        return VL_ERR_INPUT;
    for (long i = 0; i < (long)nsub * nmod; i++)
        if (!isfinite(lme[i]))
            return VL_ERR_NONFINITE;
    return VL_OK;
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
                return VL_ERR_INPUT;
            psum += prior[k];
        }
        if (!(psum > 0))
            return VL_ERR_INPUT;
    }
    double *s = malloc(sizeof(double) * (size_t)nmod);
    if (!s)
        return VL_ERR_NOMEM;
    double smax = -INFINITY;
    for (int k = 0; k < nmod; k++) {
        double acc = 0.0;
        for (int i = 0; i < nsub; i++)
            acc += lme[(long)i * nmod + k];
        s[k] = acc;
        if (!isfinite(acc)) { /* the sum overflowed */
            free(s);
            return VL_ERR_NONFINITE;
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
    return VL_OK;
}

/* ------------------------------------------------- exceedance (Gamma) */

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

/* The integrand of xp_k is p_Gamma(log-scale; alpha_k) times the product
 * of the other K-1 Gamma CDFs. That product is the same for every k but
 * one factor: with L(s) = sum_j log P(alpha_j, e^s), model k's integrand
 * is exp(log p_k(s) + L(s) - log P(alpha_k, e^s)). All K integrals are
 * therefore done together on one set of nodes, computing L once per node:
 * O(K) work per node instead of O(K^2) (the previous per-model adaptive
 * quadrature evaluated the whole product for every model at its own
 * nodes: 800 models took minutes). Equal counts (models no subject
 * favours keep alpha0 exactly) are evaluated once. */
typedef struct {
    int nd;       /* distinct counts */
    double *a;    /* nd, descending */
    double *cnt;  /* nd: how many models share a[d] */
    double *la;   /* ln a */
    double *c0;   /* a ln a - a - ln Gamma(a) */
    double *ell;  /* nd scratch: log P(a_d, e^s) */
} xp_set;

/* log p_d(s) + sum_{j != one copy of d} log P(a_j, e^s) for every d at
   node s, exponentiated into val (nd). */
static void xp_node(const xp_set *X, double s, double *val)
{
    double L = 0.0;
    int d;
    for (d = 0; d < X->nd; d++) {
        X->ell[d] = log_gamma_cdf_exp(X->a[d], s);
        L += X->cnt[d] * X->ell[d];
        /* every term is <= 0: past e^-800 every integrand is negligible
           (each is at most (a_k + e^s) e^L) */
        if (!(L > -800.0))
            break;
    }
    if (d < X->nd) {
        memset(val, 0, sizeof(double) * (size_t)X->nd);
        return;
    }
    for (d = 0; d < X->nd; d++) {
        double a = X->a[d], u = s - X->la[d];
        double lf = X->c0[d] - a * (expm1(u) - u);
        double l = X->ell[d] == -INFINITY ? -INFINITY : lf + L - X->ell[d];
        val[d] = l > -745.0 ? exp(l) : 0.0;
    }
}

static int cmp_desc(const void *p, const void *q)
{
    double x = *(const double *)p, y = *(const double *)q;
    return (x < y) - (x > y);
}

/* Gauss-Legendre nodes/weights on [-1, 1] for n points (n = 10, 20). */
static void gl_rule(int n, double *x, double *w)
{
    gsl_integration_glfixed_table *t = gsl_integration_glfixed_table_alloc((size_t)n);
    for (int i = 0; i < n; i++)
        gsl_integration_glfixed_point(-1.0, 1.0, (size_t)i, &x[i], &w[i], t);
    gsl_integration_glfixed_table_free(t);
}

int vl_dirichlet_exceedance(const double *alpha, int K, double *xp)
{
    vl_init();
    if (!alpha || !xp || K < 1)
        return VL_ERR_INPUT;
    for (int k = 0; k < K; k++)
        if (!isfinite(alpha[k]) || !(alpha[k] > 0))
            return VL_ERR_INPUT;
    if (K == 1) {
        xp[0] = 1.0;
        return VL_OK;
    }
    if (K == 2) {
        /* r_1 ~ Beta(alpha_1, alpha_2): P(r_1 > 1/2) = I_{1/2}(alpha_2, alpha_1) */
        xp[0] = gsl_cdf_beta_P(0.5, alpha[1], alpha[0]);
        xp[1] = gsl_cdf_beta_P(0.5, alpha[0], alpha[1]);
        return VL_OK;
    }
    enum { NG = 20, NL = 10, VL_XP_MAX_PANELS = 100000 };
    xp_set X = {0};
    double *buf = malloc(sizeof(double) * (size_t)K * 9);
    int *stack_depth = NULL;
    double *stack = NULL;
    int status = VL_OK;
    if (!buf)
        return VL_ERR_NOMEM;
    double *sorted = buf, *vg = buf + K, *vl = buf + 2 * K, *acc = buf + 3 * K, *node = buf + 4 * K;
    X.a = buf + 5 * K;
    X.cnt = buf + 6 * K;
    X.la = buf + 7 * K;
    X.c0 = buf + 8 * K;
    memcpy(sorted, alpha, sizeof(double) * (size_t)K);
    qsort(sorted, (size_t)K, sizeof(double), cmp_desc);
    for (int k = 0; k < K; k++) {
        if (X.nd && sorted[k] == X.a[X.nd - 1]) {
            X.cnt[X.nd - 1] += 1.0;
            continue;
        }
        X.a[X.nd] = sorted[k];
        X.cnt[X.nd] = 1.0;
        X.la[X.nd] = log(sorted[k]);
        X.c0[X.nd] = sorted[k] * X.la[X.nd] - sorted[k] - gsl_sf_lngamma(sorted[k]);
        X.nd++;
    }
    if (X.nd == 1) { /* all counts equal: by symmetry */
        for (int k = 0; k < K; k++)
            xp[k] = 1.0 / K;
        free(buf);
        return VL_OK;
    }
    X.ell = sorted; /* sorted is no longer needed */
    const int nd = X.nd;
    /* range: log G_k has mean psi(a) and sd sqrt(psi'(a)); 40 sd below the
       lowest mean leaves out e^-40 of any model's mass (the lower tail is
       exponential with rate a), above log(a + 40 sqrt(a) + 40) for the
       largest count every Gamma tail is below e^-40 too. */
    double lo = INFINITY, hi = -INFINITY, sdmin = INFINITY;
    for (int d = 0; d < nd; d++) {
        double mu = gsl_sf_psi(X.a[d]), sd = sqrt(gsl_sf_psi_1(X.a[d]));
        lo = fmin(lo, mu - 40.0 * sd);
        hi = fmax(hi, log(X.a[d] + 40.0 * sqrt(X.a[d]) + 40.0));
        sdmin = fmin(sdmin, sd);
    }
    /* where the product of all CDFs is below e^-800 nothing contributes:
       move lo up to there (L is increasing in s) */
    {
        double l0 = lo, l1 = hi;
        xp_node(&X, l0, vg);
        int any = 0;
        for (int d = 0; d < nd; d++)
            any |= vg[d] > 0;
        if (!any) {
            for (int it = 0; it < 60; it++) {
                double mid = 0.5 * (l0 + l1);
                double L = 0.0;
                for (int d = 0; d < nd && L > -800.0; d++)
                    L += X.cnt[d] * log_gamma_cdf_exp(X.a[d], mid);
                if (L > -800.0)
                    l1 = mid;
                else
                    l0 = mid;
            }
            lo = l0;
        }
    }
    double xg[NG], wg[NG], xl[NL], wl[NL];
    gl_rule(NG, xg, wg);
    gl_rule(NL, xl, wl);
    /* start from panels no wider than 2 sd of the narrowest density (so
       no peak can fall between nodes), then bisect where a 20-point and a
       10-point Gauss rule disagree by more than the panel's share of 1e-12 */
    const double total = hi - lo;
    int npan0 = (int)ceil(total / (2.0 * sdmin));
    if (npan0 < 8)
        npan0 = 8;
    if (npan0 > 20000)
        npan0 = 20000;
    int cap = npan0 + 256, top = 0;
    stack = malloc(sizeof(double) * 2 * (size_t)cap);
    stack_depth = malloc(sizeof(int) * (size_t)cap);
    if (!stack || !stack_depth) {
        status = VL_ERR_NOMEM;
        goto done;
    }
    for (int i = npan0 - 1; i >= 0; i--) {
        stack[2 * top] = lo + total * i / npan0;
        stack[2 * top + 1] = i == npan0 - 1 ? hi : lo + total * (i + 1) / npan0;
        stack_depth[top++] = 0;
    }
    memset(acc, 0, sizeof(double) * (size_t)nd);
    double worst = 0.0;
    long panels = 0;
    int budget_spent = 0;
    while (top > 0) {
        top--;
        double l = stack[2 * top], r = stack[2 * top + 1];
        int depth = stack_depth[top];
        double c = 0.5 * (l + r), h = 0.5 * (r - l);
        memset(vg, 0, sizeof(double) * (size_t)nd);
        memset(vl, 0, sizeof(double) * (size_t)nd);
        for (int i = 0; i < NG; i++) {
            xp_node(&X, c + h * xg[i], node);
            for (int d = 0; d < nd; d++)
                vg[d] += h * wg[i] * node[d];
        }
        for (int i = 0; i < NL; i++) {
            xp_node(&X, c + h * xl[i], node);
            for (int d = 0; d < nd; d++)
                vl[d] += h * wl[i] * node[d];
        }
        /* accept when every model's two rules agree to the panel's share
           of 1e-12 or to 1e-10 of its own value there (the incomplete
           gamma functions of large counts carry rounding noise near 1e-12, so a
           purely absolute test could bisect forever) */
        int ok = 1;
        double e = 0.0;
        for (int d = 0; d < nd; d++) {
            double diff = fabs(vg[d] - vl[d]);
            if (diff > 1e-12 * (r - l) / total + 1e-10 * fabs(vg[d])) {
                ok = 0;
                e = fmax(e, diff);
            }
        }
        if (++panels > VL_XP_MAX_PANELS)
            budget_spent = 1;
        if (ok || depth >= 40 || budget_spent) {
            for (int d = 0; d < nd; d++)
                acc[d] += vg[d];
            worst = fmax(worst, e);
            continue;
        }
        if (top + 2 > cap) {
            int nc = 2 * cap;
            double *ns = realloc(stack, sizeof(double) * 2 * (size_t)nc);
            if (ns)
                stack = ns;
            int *nd2 = ns ? realloc(stack_depth, sizeof(int) * (size_t)nc) : NULL;
            if (!ns || !nd2) {
                status = VL_ERR_NOMEM;
                goto done;
            }
            stack_depth = nd2;
            cap = nc;
        }
        stack[2 * top] = c;
        stack[2 * top + 1] = r;
        stack_depth[top++] = depth + 1;
        stack[2 * top] = l;
        stack[2 * top + 1] = c;
        stack_depth[top++] = depth + 1;
    }
    if (worst > 1e-8 || budget_spent)
        status = VL_WARN_NOCONV;
    /* each model takes the value of its count */
    for (int k = 0; k < K; k++) {
        int lo_i = 0, hi_i = nd - 1; /* a is descending */
        while (lo_i < hi_i) {
            int mid = (lo_i + hi_i) / 2;
            if (X.a[mid] > alpha[k])
                lo_i = mid + 1;
            else
                hi_i = mid;
        }
        xp[k] = acc[lo_i];
    }
done:
    free(stack);
    free(stack_depth);
    free(buf);
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
        return VL_ERR_INPUT;
    double *elog = malloc(sizeof(double) * (size_t)nmod * 3);
    if (!elog)
        return VL_ERR_NOMEM;
    double *fprior = elog + nmod, *g0 = elog + 2 * nmod;
    if (fam) {
        if (nfam < 1) {
            free(elog);
            return VL_ERR_INPUT;
        }
        for (int k = 0; k < nmod; k++) {
            if (fam[k] < 0 || fam[k] >= nfam) {
                free(elog);
                return VL_ERR_INPUT;
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
    return VL_OK;
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
        return VL_ERR_INPUT;
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
                return VL_ERR_INPUT;
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
        return VL_ERR_NOMEM;
    }
    double *alpha0 = work + 2 * nmod;
    for (int k = 0; k < nmod; k++)
        alpha0[k] = (opts && opts->alpha0) ? opts->alpha0[k] : 1.0;
    int it = vb_dirichlet(lme, nsub, nmod, alpha0, tol, maxit, out->alpha, out->g, work);
    out->iterations = it < 0 ? -it : it;
    int status = it < 0 ? VL_WARN_NOCONV : VL_OK;
    double a0 = 0.0;
    for (int k = 0; k < nmod; k++)
        a0 += out->alpha[k];
    for (int k = 0; k < nmod; k++)
        out->exp_r[k] = out->alpha[k] / a0;
    rc = vl_dirichlet_exceedance(out->alpha, nmod, out->xp);
    if (rc == VL_WARN_NOCONV)
        status = VL_WARN_NOCONV;
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
    memset(r, 0, sizeof *r); /* counts too: a freed result reads as empty */
}

int vl_bms_family(const double *lme, int nsub, int nmod, const int *fam,
                  int nfam, int rfx, const vl_bms_opts *opts,
                  vl_bms_family_result *out)
{
    vl_init();
    if (!out)
        return VL_ERR_INPUT;
    memset(out, 0, sizeof *out);
    int rc = check_lme(lme, nsub, nmod);
    if (rc)
        return rc;
    if (!fam || nfam < 1)
        return VL_ERR_INPUT;
    int *size = calloc((size_t)nfam, sizeof(int));
    if (!size)
        return VL_ERR_NOMEM;
    for (int k = 0; k < nmod; k++) {
        if (fam[k] < 0 || fam[k] >= nfam) {
            free(size);
            return VL_ERR_INPUT;
        }
        size[fam[k]]++;
    }
    for (int f = 0; f < nfam; f++)
        if (size[f] == 0) {
            free(size);
            return VL_ERR_INPUT;
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
        return VL_ERR_NOMEM;
    }
    int status = VL_OK;
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
        return VL_OK;
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
        return VL_ERR_NOMEM;
    }
    for (int k = 0; k < nmod; k++)
        out->model_alpha0[k] = 1.0 / size[fam[k]];
    int it = vb_dirichlet(lme, nsub, nmod, out->model_alpha0, tol, maxit, out->model_alpha, g,
                          work);
    if (it < 0)
        status = VL_WARN_NOCONV;
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
    if (rc == VL_WARN_NOCONV)
        status = VL_WARN_NOCONV;
    if (rc == VL_OK || rc == VL_WARN_NOCONV)
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
