/* dcm_group.c — group analysis as a library: the engine's BMS, BMR, BMA
 * and PEB (vl/) behind the public API of include/dcm/dcm_group.h, with
 * its statuses mapped to dcm_error in one place (dcm_error_from_vl). */
#include "dcm/dcm_group.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vl/vl_bmr.h"
#include "vl/vl_bms.h"
#include "vl/vl_peb.h"

/* ------------------------------------------------------------ BMS */

int dcm_bms_ffx(const double *lme, int nsub, int nmod, const double *prior, double *slme,
                double *post, double *logbf, dcm_error *err)
{
    int vr = vl_bms_ffx(lme, nsub, nmod, prior, slme, post, logbf);
    return dcm_error_from_vl(vr, "fixed-effects comparison",
                             vr == VL_ERR_NONFINITE
                                 ? "a log-evidence, or the sum of a model's, is not a finite number"
                                 : NULL,
                             err);
}

void dcm_bms_rfx_result_free(dcm_bms_rfx_result *r)
{
    if (!r)
        return;
    free(r->alpha);
    free(r->exp_r);
    free(r->xp);
    free(r->pxp);
    free(r->g);
    memset(r, 0, sizeof *r);
}

int dcm_bms_rfx(const double *lme, int nsub, int nmod, dcm_bms_rfx_result *out, dcm_error *err)
{
    memset(out, 0, sizeof *out);
    vl_bms_rfx_result R;
    int vr = vl_bms_rfx(lme, nsub, nmod, NULL, &R);
    if (vr != VL_OK && vr != VL_WARN_NOCONV) {
        vl_bms_rfx_result_free(&R);
        return dcm_error_from_vl(vr, "random-effects BMS",
                                 vr == VL_ERR_NONFINITE ? "a log-evidence is NaN or infinite"
                                 : vr == VL_ERR_INPUT   ? "the table needs at least one subject and "
                                                          "one model"
                                                        : NULL,
                                 err);
    }
    *out = (dcm_bms_rfx_result){R.nsub, R.nmod, R.alpha, R.exp_r, R.xp, R.pxp, R.g,
                                R.bor, R.F0, R.F1, R.iterations, vr == VL_OK};
    return DCM_OK; /* the arrays are out's now */
}

void dcm_bms_family_result_free(dcm_bms_family_result *r)
{
    if (!r)
        return;
    free(r->alpha);
    free(r->exp_r);
    free(r->xp);
    free(r->pxp);
    free(r->model_post);
    memset(r, 0, sizeof *r);
}

int dcm_bms_family(const double *lme, int nsub, int nmod, const int *fam, int nfam, int rfx,
                   dcm_bms_family_result *out, dcm_error *err)
{
    memset(out, 0, sizeof *out);
    vl_bms_family_result R;
    int vr = vl_bms_family(lme, nsub, nmod, fam, nfam, rfx, NULL, &R);
    if (vr != VL_OK && vr != VL_WARN_NOCONV) {
        vl_bms_family_result_free(&R);
        return dcm_error_from_vl(vr, "family comparison",
                                 vr == VL_ERR_NONFINITE
                                     ? "a log-evidence, or the sum of a model's, is not a finite number"
                                 : vr == VL_ERR_INPUT ? "every model needs a family (0 to nfam - 1) "
                                                        "and every family a member"
                                                      : NULL,
                                 err);
    }
    *out = (dcm_bms_family_result){R.nfam, R.nmod, R.alpha, R.exp_r, R.xp, R.pxp,
                                   R.bor, R.model_post, vr == VL_OK};
    free(R.model_alpha0);
    free(R.model_alpha);
    return DCM_OK;
}

/* ------------------------------------------------------------ Pp */

void dcm_posterior_probability(int np, const double *Ep, const double *Cp, const double *pE,
                               const double *pV, double *Pp)
{
    for (int i = 0; i < np; i++) {
        double sd = sqrt(fmax(Cp[(size_t)i * np + i], 0.0));
        /* 1 - Phi(z), Phi(z) = erfc(-z / sqrt 2) / 2: spm_Ncdf's form */
        Pp[i] = (pV[i] > 0.0 && sd > 0.0)
                    ? 1.0 - 0.5 * erfc(-((pE[i] - fabs(Ep[i])) / sd) / sqrt(2.0))
                    : NAN;
    }
}

/* ------------------------------------------------------------ BMR */

int dcm_bmr_reduce(int n, const double *qE, const double *qC, const double *pE, const double *pC,
                   const double *rE, const double *rC, double *dF, double *sE, double *sC,
                   dcm_error *err)
{
    int vr = vl_bmr_reduce(n, qE, qC, pE, pC, rE, rC, dF, sE, sC);
    return dcm_error_from_vl(vr, "model reduction",
                             vr == VL_ERR_NONFINITE
                                 ? "the reduced free energy or posterior is not finite (posterior "
                                   "means or covariances too large to combine)"
                                 : NULL,
                             err);
}

int dcm_bmr_switch_off(int n, const double *Ep, const double *Cp, const double *pE,
                       const double *pV, const unsigned char *off, double *dF, double *sE,
                       double *sC, dcm_error *err)
{
    if (n < 1 || !pV || !off)
        return dcm_error_set(err, DCM_ERR_INPUT, "model reduction: no parameters");
    const size_t nn = (size_t)n * n;
    double *pC = calloc(nn, sizeof(double)), *rC = calloc(nn, sizeof(double));
    if (!pC || !rC) {
        free(pC);
        free(rC);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        pC[(size_t)i * n + i] = pV[i];
        rC[(size_t)i * n + i] = off[i] ? 0.0 : pV[i];
    }
    int rc = dcm_bmr_reduce(n, Ep, Cp, pE, pC, pE, rC, dF, sE, sC, err);
    free(pC);
    free(rC);
    return rc;
}

void dcm_bmr_search_result_free(dcm_bmr_search_result *r)
{
    if (!r)
        return;
    free(r->keep);
    free(r->Ep);
    free(r->Cp);
    free(r->Ep_bma);
    free(r->Cp_bma);
    free(r->Pp);
    memset(r, 0, sizeof *r);
}

int dcm_bmr_search(int n, const double *qE, const double *qC, const double *pE, const double *pC,
                   const unsigned char *candidates, dcm_bmr_search_result *out, dcm_error *err)
{
    memset(out, 0, sizeof *out);
    vl_bmr_search_result B;
    int vr = vl_bmr_search(n, qE, qC, pE, pC, candidates, &B);
    if (vr) {
        vl_bmr_search_result_free(&B);
        return dcm_error_from_vl(vr, "model search",
                                 vr == VL_ERR_NONFINITE
                                     ? "the reduced free energy or posterior is not finite "
                                       "(posterior means or covariances too large to combine)"
                                     : NULL,
                                 err);
    }
    *out = (dcm_bmr_search_result){B.n, B.keep, B.dF, B.Ep, B.Cp, B.Ep_bma, B.Cp_bma, B.Pp,
                                   B.nmodels, B.nremoved};
    return DCM_OK;
}

/* ------------------------------------------------------------ BMA */

int dcm_bma(int k, int np, const double *F, const double *const *Ep, const double *const *Cp,
            double occam, double *weights, double *mean, double *var, int *bad_model,
            int *bad_param, dcm_error *err)
{
    if (bad_model)
        *bad_model = -1;
    if (bad_param)
        *bad_param = -1;
    if (k < 1 || np < 0)
        return dcm_error_set(err, DCM_ERR_INPUT, "model average: no models");
    double Fmax = -INFINITY;
    for (int i = 0; i < k; i++) {
        if (!isfinite(F[i])) {
            if (bad_model)
                *bad_model = i;
            return dcm_error_set(err, DCM_ERR_NUMERIC,
                                 "model average: model %d has a non-finite free energy", i + 1);
        }
        Fmax = fmax(Fmax, F[i]);
    }
    double z = 0.0;
    for (int i = 0; i < k; i++) {
        weights[i] = (occam > 0 && F[i] < Fmax - occam) ? 0.0 : exp(F[i] - Fmax);
        z += weights[i];
    }
    for (int i = 0; i < k; i++)
        weights[i] /= z;
    vl_bma a;
    double *v = malloc(sizeof(double) * (size_t)(np ? np : 1));
    if (!v || vl_bma_init(&a, np, 0)) {
        free(v);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    for (int i = 0; i < k; i++) {
        for (int p = 0; p < np; p++)
            v[p] = fmax(Cp[i][(size_t)p * np + p], 0.0);
        vl_bma_add_weighted(&a, weights[i], Ep[i], v, NULL);
    }
    vl_bma_finish(&a, mean, var, NULL);
    int rc = DCM_OK;
    for (int p = 0; p < np; p++) {
        if (!isfinite(mean[p]) || !isfinite(a.m2[p])) { /* the mixture's second moment */
            if (bad_param)
                *bad_param = p;
            rc = dcm_error_set(err, DCM_ERR_NUMERIC,
                               "model average: the average of parameter %d is not finite (its "
                               "posterior means or variances are too large to combine)", p + 1);
            break;
        }
        var[p] = fmax(var[p], 0.0);
    }
    vl_bma_free(&a);
    free(v);
    return rc;
}

int dcm_group_mean(int nsub, int np, const double *X, double *mean, double *se2, int *bad_param,
                   dcm_error *err)
{
    if (bad_param)
        *bad_param = -1;
    if (nsub < 1 || np < 0)
        return dcm_error_set(err, DCM_ERR_INPUT, "group mean: no subjects");
    for (int p = 0; p < np; p++) {
        double sum = 0.0, sq = 0.0;
        for (int s = 0; s < nsub; s++) {
            double x = X[(size_t)s * np + p];
            sum += x;
            sq += x * x;
        }
        double m = sum / nsub;
        mean[p] = m;
        /* squared standard error of the group mean */
        se2[p] = nsub > 1 ? fmax(sq - nsub * m * m, 0.0) / (nsub - 1) / nsub : 0.0;
        if (!isfinite(mean[p]) || !isfinite(se2[p])) {
            if (bad_param)
                *bad_param = p;
            return dcm_error_set(err, DCM_ERR_NUMERIC,
                                 "group mean: the average of parameter %d is not finite", p + 1);
        }
    }
    return DCM_OK;
}

/* ------------------------------------------------------------ PEB */

void dcm_peb_result_free(dcm_peb_result *r)
{
    if (!r)
        return;
    free(r->sel);
    free(r->Ep);
    free(r->Cp);
    free(r->Eh);
    free(r->Ch);
    free(r->Ce);
    memset(r, 0, sizeof *r);
}

int dcm_peb(const dcm_peb_input *in, dcm_peb_result *out, dcm_error *err)
{
    memset(out, 0, sizeof *out);
    if (!in)
        return dcm_error_set(err, DCM_ERR_INPUT, "PEB: no input");
    vl_peb_input vin = {.nsub = in->nsub, .np = in->np, .qE = in->Ep, .qC = in->Cp, .pE = in->pE,
                        .pC = NULL, .pV = in->pV, .F = in->F, .sel = in->sel, .nsel = in->nsel,
                        .X = in->X, .nx = in->nx};
    vl_peb_opts opts;
    memset(&opts, 0, sizeof opts);
    switch (in->q) {
    case DCM_PEB_Q_FROM_SINGLE: opts.Q = in->single ? VL_PEB_Q_SINGLE : VL_PEB_Q_ALL; break;
    case DCM_PEB_Q_SINGLE: opts.Q = VL_PEB_Q_SINGLE; break;
    case DCM_PEB_Q_ALL: opts.Q = VL_PEB_Q_ALL; break;
    case DCM_PEB_Q_FIELDS:
        if (!in->field || in->nfield < 1)
            return dcm_error_set(err, DCM_ERR_INPUT, "PEB: M.Q = 'fields' needs the field of each "
                                 "selected parameter");
        for (int k = 0; k < in->nsel; k++)
            if (in->field[k] < 0 || in->field[k] >= in->nfield)
                return dcm_error_set(err, DCM_ERR_INPUT, "PEB: field %d of selected parameter %d "
                                     "is not in 0..%d", in->field[k], k, in->nfield - 1);
        opts.Q = VL_PEB_Q_CUSTOM;
        opts.comp = in->field;
        opts.ncomp = in->nfield;
        break;
    default:
        return dcm_error_set(err, DCM_ERR_INPUT, "PEB: unknown precision components (q = %d)", in->q);
    }
    opts.maxit = in->maxit;
    opts.alpha = in->alpha;
    opts.beta = in->beta;
    opts.hE = in->hE;
    opts.hC = in->hC;
    vl_peb_result P;
    int vr = vl_peb(&vin, &opts, &P);
    if (vr) {
        vl_peb_result_free(&P);
        return dcm_error_from_vl(vr, "the group-level inversion",
                                 vr == VL_ERR_NONFINITE
                                     ? "a non-finite value arose in the group-level update"
                                 : vr == VL_ERR_INPUT ? "invalid design or sizes"
                                                      : NULL,
                                 err);
    }
    *out = (dcm_peb_result){P.np, P.nx, P.ng, P.sel, P.Ep, P.Cp, P.Eh, P.Ch, P.Ce, P.F,
                            P.iterations, P.converged};
    return DCM_OK;
}

static double design_x(const double *X, int nx, int i, int j)
{
    return X ? X[(size_t)i * nx + j] : 1.0;
}

/* SPM's prior scaling of covariate j: nsub / sum_i X(i,j)^2 */
static double covariate_scale(const double *X, int nsub, int nx, int j)
{
    double sx = 0.0;
    for (int i = 0; i < nsub; i++)
        sx += design_x(X, nx, i, j) * design_x(X, nx, i, j);
    return sx > 0 ? nsub / sx : 1.0;
}

void dcm_peb_effects(const dcm_peb_result *P, const double *X, int nsub, const double *pV,
                     double *mean, double *var, double *dF, double *prob)
{
    const int nx = P->nx, nb = P->np * nx;
    for (int j = 0; j < nx; j++) {
        double xc = covariate_scale(X, nsub, nx, j);
        for (int q = 0; q < P->np; q++) {
            int k = q + j * P->np;
            double m = P->Ep[q * nx + j];
            double v = P->Cp[(size_t)k * nb + k];
            double pv = xc * pV[P->sel[q]];
            double d = 0.5 * log(pv / v) - 0.5 * m * m / v; /* F(without) - F(with) */
            if (mean)
                mean[k] = m;
            if (var)
                var[k] = v;
            if (dF)
                dF[k] = d;
            if (prob)
                prob[k] = 1.0 / (1.0 + exp(d));
        }
    }
}

int dcm_peb_reduce(const dcm_peb_result *P, const double *X, int nsub, const double *pE,
                   const double *pV, dcm_bmr_search_result *out, dcm_error *err)
{
    memset(out, 0, sizeof *out);
    const int nb = P->np * P->nx, nx = P->nx;
    double *bE = malloc(sizeof(double) * nb), *bC = calloc((size_t)nb * nb, sizeof(double));
    double *qE = malloc(sizeof(double) * nb);
    if (!bE || !bC || !qE) {
        free(bE);
        free(bC);
        free(qE);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    for (int j = 0; j < nx; j++) {
        double sx = 0.0;
        for (int i = 0; i < nsub; i++)
            sx += design_x(X, nx, i, j) * design_x(X, nx, i, j);
        int intercept = 1;
        for (int i = 0; i < nsub; i++)
            intercept &= design_x(X, nx, i, j) == design_x(X, nx, 0, j);
        for (int q = 0; q < P->np; q++) {
            int k = q + j * P->np; /* vec(Ep): parameters fastest */
            bE[k] = (intercept && j == 0) ? pE[P->sel[q]] : 0.0;
            bC[(size_t)k * nb + k] = (sx > 0 ? nsub / sx : 1.0) * pV[P->sel[q]];
            qE[k] = P->Ep[q * nx + j];
        }
    }
    dcm_error e2 = {0, ""};
    int rc = dcm_bmr_search(nb, qE, P->Cp, bE, bC, NULL, out, &e2);
    free(bE);
    free(bC);
    free(qE);
    if (rc)
        return dcm_error_set(err, rc, "model reduction over the group effects: %s", e2.msg);
    for (int k = 0; k < nb; k++)
        if (!isfinite(out->Ep_bma[k]) || !isfinite(out->Pp[k]) || !isfinite(out->dF)) {
            dcm_bmr_search_result_free(out);
            return dcm_error_set(err, DCM_ERR_NUMERIC,
                                 "model reduction over the group effects gave a non-finite value "
                                 "(group effect %d): check the subjects' results for extreme values",
                                 k + 1);
        }
    return DCM_OK;
}

int dcm_peb_subject_posterior(const dcm_peb_result *P, const double *Xi, int np, const double *Ep,
                              const double *Cp, const double *pE, const double *pV, double *sE,
                              double *dF, dcm_error *err)
{
    const int nx = P->nx;
    double *rE = malloc(sizeof(double) * np), *rC = calloc((size_t)np * np, sizeof(double));
    double *pC = calloc((size_t)np * np, sizeof(double));
    if (!rE || !rC || !pC) {
        free(rE);
        free(rC);
        free(pC);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    for (int p = 0; p < np; p++) {
        pC[p * np + p] = pV[p];
        rC[p * np + p] = pV[p];
        rE[p] = pE[p];
    }
    for (int q = 0; q < P->np; q++) {
        int a = P->sel[q];
        double m = 0.0;
        for (int j = 0; j < nx; j++)
            m += (Xi ? Xi[j] : 1.0) * P->Ep[q * nx + j];
        rE[a] = m;
        for (int q2 = 0; q2 < P->np; q2++)
            rC[a * np + P->sel[q2]] = P->Ce[q * P->np + q2];
    }
    *dF = 0.0;
    int rc = dcm_bmr_reduce(np, Ep, Cp, pE, pC, rE, rC, dF, sE, NULL, err);
    for (int q = 0; rc == DCM_OK && q < P->np; q++)
        if (!isfinite(sE[P->sel[q]]) || !isfinite(*dF))
            rc = dcm_error_set(err, DCM_ERR_NUMERIC,
                               "the posterior under the group prior is not finite");
    free(rE);
    free(rC);
    free(pC);
    return rc;
}

int dcm_peb_search(const dcm_peb_result *P, const double *X, int nsub, const double *pE,
                   const double *pV, double alpha, dcm_peb_search_result *out, dcm_error *err)
{
    memset(out, 0, sizeof *out);
    if (!P || !P->Ep || !P->Cp || !pE || !pV || nsub < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "PEB search: no PEB result or priors");
    const int nb = P->np * P->nx, nx = P->nx;
    if (!(alpha > 0))
        alpha = 1.0;
    double *bE = malloc(sizeof(double) * nb), *bC = calloc((size_t)nb * nb, sizeof(double));
    double *qE = malloc(sizeof(double) * nb);
    out->Ep = malloc(sizeof(double) * nb);
    out->Vp = malloc(sizeof(double) * nb);
    out->Pp = malloc(sizeof(double) * nb);
    int rc = DCM_OK;
    if (!bE || !bC || !qE || !out->Ep || !out->Vp || !out->Pp)
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    for (int j = 0; j < nx && !rc; j++) {
        double xc = covariate_scale(X, nsub, nx, j);
        for (int q = 0; q < P->np; q++) {
            int k = q + j * P->np; /* vec(Ep): parameters fastest */
            bE[k] = j == 0 ? pE[P->sel[q]] : 0.0; /* SPM: kron(Xe, bE), Xe = e1 */
            bC[(size_t)k * nb + k] = xc * pV[P->sel[q]] / alpha;
            qE[k] = P->Ep[q * nx + j];
        }
    }
    if (!rc) {
        int vr = vl_peb_bmr_all(nb, qE, P->Cp, bE, bC, out->Ep, out->Vp, out->Pp, &out->nmodels);
        if (vr)
            rc = dcm_error_from_vl(vr, "the search over reduced group models",
                                   vr == VL_ERR_NONFINITE ? "a non-finite log-evidence" : NULL, err);
    }
    for (int k = 0; k < nb && !rc; k++)
        if (!isfinite(out->Ep[k]) || !isfinite(out->Vp[k]) || !isfinite(out->Pp[k]))
            rc = dcm_error_set(err, DCM_ERR_NUMERIC, "the search over reduced group models gave a "
                               "non-finite value (group effect %d)", k + 1);
    free(bE);
    free(bC);
    free(qE);
    if (rc)
        dcm_peb_search_result_free(out);
    else
        out->n = nb;
    return rc;
}

void dcm_peb_search_result_free(dcm_peb_search_result *r)
{
    if (!r)
        return;
    free(r->Ep);
    free(r->Vp);
    free(r->Pp);
    memset(r, 0, sizeof *r);
}
