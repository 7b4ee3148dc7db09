/* dcm_loo.c — leave-one-out cross-validation of PEB (spm_dcm_loo,
 * spm_dcm_ppd): the training PEB through dcm_peb, the left-out subject
 * through the engine's within-subject PEB (vl_peb_single). */
#include "dcm/dcm_loo.h"
#include "dcm/dcm_group.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>

#include "vl/vl_peb.h"

#define LOO_PASSES 4 /* spm_dcm_ppd's four passes over the prior of b */

/* "WHO: message" for an error from a fold */
static void loo_prefix(dcm_error *err, int subject)
{
    if (!err)
        return;
    char msg[sizeof err->msg];
    memcpy(msg, err->msg, sizeof msg);
    msg[sizeof msg - 1] = 0;
    int k = snprintf(err->msg, sizeof err->msg, "leaving out subject %d: ", subject);
    if (k > 0 && (size_t)k < sizeof err->msg)
        memcpy(err->msg + k, msg, strnlen(msg, sizeof err->msg - (size_t)k - 1) + 1),
            err->msg[sizeof err->msg - 1] = 0;
}

void dcm_loo_result_free(dcm_loo_result *r)
{
    if (!r)
        return;
    free(r->qE);
    free(r->qC);
    free(r->truth);
    free(r->iterations);
    free(r->converged);
    memset(r, 0, sizeof *r);
}

int dcm_loo_correlation(const double *qE, const double *truth, int n, dcm_loo_result *R,
                        dcm_error *err)
{
    if (n < 3)
        return dcm_error_set(err, DCM_ERR_INPUT, "leave-one-out: a correlation needs at least 3 subjects");
    double mx = 0.0, my = 0.0;
    for (int i = 0; i < n; i++) {
        mx += truth[i] / n;
        my += qE[i] / n;
    }
    double sxx = 0.0, syy = 0.0, sxy = 0.0;
    for (int i = 0; i < n; i++) {
        sxx += (truth[i] - mx) * (truth[i] - mx);
        syy += (qE[i] - my) * (qE[i] - my);
        sxy += (truth[i] - mx) * (qE[i] - my);
    }
    R->df = n - 2;
    if (!(sxx > 0) || !(syy > 0)) {
        /* a constant covariate or constant predictions: no correlation */
        R->r = R->t = R->p = R->p_two_sided = NAN;
        return DCM_OK;
    }
    R->r = sxy / sqrt(sxx * syy);
    /* the t of the slope of qE on [1, truth] (spm_ancova's contrast [0 1]) */
    double r2 = R->r * R->r;
    R->t = r2 < 1.0 ? R->r * sqrt(R->df / (1.0 - r2)) : copysign(INFINITY, R->r);
    R->p = gsl_cdf_tdist_Q(R->t, R->df);
    R->p_two_sided = 2.0 * gsl_cdf_tdist_Q(fabs(R->t), R->df);
    return DCM_OK;
}

/* The training input: every subject but `out` (arrays in work). */
typedef struct {
    double *Ep, *Cp, *pE, *pV, *F, *X;
} loo_train;

static void loo_take(const dcm_peb_input *in, int out, loo_train *T)
{
    const int np = in->np, nx = in->nx;
    const size_t nn = (size_t)np * np;
    int k = 0;
    for (int i = 0; i < in->nsub; i++) {
        if (i == out)
            continue;
        memcpy(T->Ep + (size_t)k * np, in->Ep + (size_t)i * np, sizeof(double) * np);
        memcpy(T->Cp + (size_t)k * nn, in->Cp + (size_t)i * nn, sizeof(double) * nn);
        memcpy(T->pE + (size_t)k * np, in->pE + (size_t)i * np, sizeof(double) * np);
        memcpy(T->pV + (size_t)k * np, in->pV + (size_t)i * np, sizeof(double) * np);
        T->F[k] = in->F ? in->F[i] : 0.0;
        memcpy(T->X + (size_t)k * nx, in->X + (size_t)i * nx, sizeof(double) * nx);
        k++;
    }
}

/* spm_dcm_ppd's prediction for subject s from the training PEB P */
static int loo_predict(const dcm_peb_input *in, int s, int col, const dcm_peb_result *P,
                       const double *Xtrain, double *qE, double *qC, dcm_error *err)
{
    const int np = in->np, nx = in->nx, ns = P->np, ntr = in->nsub - 1;
    const size_t nn = (size_t)np * np;
    double *blk = malloc(sizeof(double) * (4 * (size_t)ns + 2 * (size_t)ns * ns + 3 * (size_t)nx +
                                           2 * (size_t)nx * nx));
    if (!blk)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    double *sqE = blk, *spE = sqE + ns, *sqC = spE + ns, *spC = sqC + (size_t)ns * ns;
    double *bE = spC + (size_t)ns * ns, *bC = bE + nx, *Ep = bC + (size_t)nx * nx,
           *Cp = Ep + nx;
    /* the subject's own moments on the selected parameters */
    for (int a = 0; a < ns; a++) {
        int ia = P->sel[a];
        sqE[a] = in->Ep[(size_t)s * np + ia];
        spE[a] = in->pE[(size_t)s * np + ia];
        for (int b = 0; b < ns; b++) {
            int ib = P->sel[b];
            sqC[a * ns + b] = in->Cp[(size_t)s * nn + (size_t)ia * np + ib];
            spC[a * ns + b] = a == b ? in->pV[(size_t)s * np + ia] : 0.0;
        }
    }
    /* prior of b: the known covariates at their values, the predicted one
       at 0 with variance 4 var(training column) (+ the pass's floor) */
    double m = 0.0, v = 0.0;
    for (int i = 0; i < ntr; i++)
        m += Xtrain[(size_t)i * nx + col] / ntr;
    for (int i = 0; i < ntr; i++) {
        double d = Xtrain[(size_t)i * nx + col] - m;
        v += d * d / (ntr - 1);
    }
    const double vcol = 4.0 * v;
    for (int j = 0; j < nx; j++)
        bE[j] = j == col ? 0.0 : in->X[(size_t)s * nx + j];
    int rc = DCM_OK;
    for (int pass = 0; pass < LOO_PASSES && !rc; pass++) {
        memset(bC, 0, sizeof(double) * nx * nx);
        for (int j = 0; j < nx; j++)
            bC[j * nx + j] = (j == col ? vcol : 0.0) + exp(-(double)pass);
        vl_peb_single_input si = {.np = ns, .nw = nx, .qE = sqE, .qC = sqC, .pE = spE, .pC = spC,
                                  .F = in->F ? in->F[s] : 0.0, .W = P->Ep, .Ce = P->Ce, .bE = bE,
                                  .bC = bC, .maxit = 0};
        double F = 0.0;
        int vr = vl_peb_single(&si, Ep, Cp, &F, NULL);
        if (vr)
            rc = dcm_error_from_vl(vr, "leave-one-out prediction",
                                   vr == VL_ERR_NONFINITE ? "a non-finite value arose" : NULL, err);
        bE[col] = Ep[col];
    }
    if (!rc) {
        *qE = Ep[col];
        *qC = Cp[col * nx + col];
        if (!isfinite(*qE) || !isfinite(*qC))
            rc = dcm_error_set(err, DCM_ERR_NUMERIC, "leave-one-out prediction: non-finite prediction");
    }
    free(blk);
    return rc;
}

int dcm_loo(const dcm_peb_input *in, int col, dcm_loo_result *out, dcm_error *err)
{
    memset(out, 0, sizeof *out);
    if (!in || !in->X || in->nsub < 3 || in->np < 1 || !in->Ep || !in->Cp || !in->pE || !in->pV)
        return dcm_error_set(err, DCM_ERR_INPUT, "leave-one-out needs at least 3 subjects with a design "
                             "(%d given)", in ? in->nsub : 0);
    if (in->nx < 2 || col < 1 || col >= in->nx)
        return dcm_error_set(err, DCM_ERR_INPUT, "leave-one-out predicts a design column other than the "
                             "first (the constant): column %d of %d", col + 1, in ? in->nx : 0);
    const int N = in->nsub, np = in->np, nx = in->nx;
    out->nsub = N;
    out->col = col;
    out->qE = malloc(sizeof(double) * N);
    out->qC = malloc(sizeof(double) * N);
    out->truth = malloc(sizeof(double) * N);
    out->iterations = calloc((size_t)N, sizeof(int));
    out->converged = calloc((size_t)N, sizeof(int));
    loo_train T;
    T.Ep = malloc(sizeof(double) * (size_t)(N - 1) * np);
    T.Cp = malloc(sizeof(double) * (size_t)(N - 1) * np * np);
    T.pE = malloc(sizeof(double) * (size_t)(N - 1) * np);
    T.pV = malloc(sizeof(double) * (size_t)(N - 1) * np);
    T.F = malloc(sizeof(double) * (size_t)(N - 1));
    T.X = malloc(sizeof(double) * (size_t)(N - 1) * nx);
    int rc = DCM_OK;
    if (!out->qE || !out->qC || !out->truth || !out->iterations || !out->converged || !T.Ep ||
        !T.Cp || !T.pE || !T.pV || !T.F || !T.X)
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    for (int s = 0; s < N && !rc; s++) {
        out->truth[s] = in->X[(size_t)s * nx + col];
        loo_take(in, s, &T);
        dcm_peb_input tr = *in;
        tr.nsub = N - 1;
        tr.Ep = T.Ep;
        tr.Cp = T.Cp;
        tr.pE = T.pE;
        tr.pV = T.pV;
        tr.F = T.F;
        tr.X = T.X;
        dcm_peb_result P;
        if ((rc = dcm_peb(&tr, &P, err))) {
            loo_prefix(err, s + 1);
            break;
        }
        out->iterations[s] = P.iterations;
        out->converged[s] = P.converged;
        rc = loo_predict(in, s, col, &P, T.X, &out->qE[s], &out->qC[s], err);
        if (rc)
            loo_prefix(err, s + 1);
        dcm_peb_result_free(&P);
    }
    if (!rc)
        rc = dcm_loo_correlation(out->qE, out->truth, N, out, err);
    free(T.Ep);
    free(T.Cp);
    free(T.pE);
    free(T.pV);
    free(T.F);
    free(T.X);
    if (rc)
        dcm_loo_result_free(out);
    return rc;
}
