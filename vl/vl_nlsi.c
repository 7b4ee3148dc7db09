/* vl_nlsi.c — variational Laplace (Gauss–Newton / Levenberg–Marquardt
 * ascent of the free energy), following the scheme of SPM12's spm_nlsi_GN.
 * See vl_nlsi.h for the model it inverts. */
#include "vl/vl_nlsi.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>

#include "vl/vl_linalg.h"

#define FD_STEP 3.3546262790251185e-04  /* exp(-8), SPM's spm_diff step */
#define EXP32 7.896296018268069e+13     /* exp(32): Jacobian blow-up bound */
#define PREC_FLOOR 1.2664165549094176e-14 /* exp(-32) added to precisions */
#define CONFOUND_PRECISION 1e-8
#define MSTEP_MAX 8
#define REVERT_TRIES 4

static void set_err(char *buf, size_t len, const char *fmt, ...)
{
    if (!buf || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

int vl_dx(const double *H, const double *g, int n, double lograte, double *dx)
{
    double *work = malloc(sizeof(double) * vl_logdet_work(n));
    if (!work)
        return -2;
    double ld = vl_logdet(H, n, work);
    free(work);
    if (isnan(ld))
        return -1;
    double t = exp(lograte - ld / n);
    if (t > exp(16.0)) {
        /* Newton step: dx = -H^+ g, via the symmetric eigensystem */
        gsl_matrix *A = gsl_matrix_alloc((size_t)n, (size_t)n);
        gsl_matrix *V = gsl_matrix_alloc((size_t)n, (size_t)n);
        gsl_vector *ev = gsl_vector_alloc((size_t)n);
        gsl_eigen_symmv_workspace *ew = gsl_eigen_symmv_alloc((size_t)n);
        if (!A || !V || !ev || !ew) {
            if (A) gsl_matrix_free(A);
            if (V) gsl_matrix_free(V);
            if (ev) gsl_vector_free(ev);
            if (ew) gsl_eigen_symmv_free(ew);
            return -2;
        }
        memcpy(A->data, H, sizeof(double) * (size_t)n * n);
        gsl_eigen_symmv(A, ev, V, ew);
        double emax = 0.0;
        for (int i = 0; i < n; i++)
            emax = fmax(emax, fabs(gsl_vector_get(ev, (size_t)i)));
        double tol = n * emax * DBL_EPSILON;
        for (int i = 0; i < n; i++)
            dx[i] = 0.0;
        for (int k = 0; k < n; k++) {
            double lam = gsl_vector_get(ev, (size_t)k);
            if (fabs(lam) <= tol)
                continue;
            double proj = 0.0;
            for (int i = 0; i < n; i++)
                proj += gsl_matrix_get(V, (size_t)i, (size_t)k) * g[i];
            for (int i = 0; i < n; i++)
                dx[i] -= gsl_matrix_get(V, (size_t)i, (size_t)k) * proj / lam;
        }
        gsl_matrix_free(A);
        gsl_matrix_free(V);
        gsl_vector_free(ev);
        gsl_eigen_symmv_free(ew);
        return 0;
    }
    /* expm([0 0; t g, t H]) carries (expm(tH) - I) H^-1 g in its first
       column: a step that moves from gradient ascent (small t) to a full
       Newton step (large t) without ever inverting H. */
    const int N = n + 1;
    double *Aug = calloc((size_t)N * N, sizeof(double));
    double *E = malloc(sizeof(double) * (size_t)N * N);
    vl_expm_work *w = vl_expm_alloc(N);
    int rc = Aug && E && w ? -1 : -2;
    if (Aug && E && w) {
        for (int i = 0; i < n; i++) {
            Aug[(i + 1) * N] = t * g[i];
            for (int j = 0; j < n; j++)
                Aug[(i + 1) * N + j + 1] = t * H[i * n + j];
        }
        if (vl_expm(Aug, N, E, w) == 0) {
            for (int i = 0; i < n; i++)
                dx[i] = E[(i + 1) * N];
            rc = 0;
        }
    }
    free(Aug);
    free(E);
    vl_expm_free(w);
    return rc;
}

void vl_result_free(vl_result *R)
{
    if (!R)
        return;
    free(R->Ep);
    free(R->Cp);
    free(R->Eh);
    free(R->beta);
    free(R->F_trace);
    free(R->y_pred);
    free(R->y_conf);
    free(R);
}

/* Everything one inversion needs, allocated once. */
typedef struct {
    const vl_problem *P;
    int np, nP, nu, npp, ny, nh, nblk;
    double *V;          /* np x nP, row-major: prior eigenvectors kept */
    double *ipc;        /* npp prior precisions in the reduced space */
    double *theta, *theta2, *f0, *f1;
    double *J;          /* ny x npp row-major, J = -[dfdp, dfdu] */
    double *e, *w;      /* prediction error, precision diagonal */
    double *Pp, *Cp;    /* npp x npp */
    double *JC;         /* ny x npp */
    double *djcj;       /* ny: diag(J Cp J') */
    double *PS;         /* nh x ny */
    double *dFdh, *dFdhh, *Ch, *dh, *d;
    double *work;
} vl_ws;

static void ws_free(vl_ws *W)
{
    free(W->V);
    free(W->ipc);
    free(W->theta);
    free(W->theta2);
    free(W->f0);
    free(W->f1);
    free(W->J);
    free(W->e);
    free(W->w);
    free(W->Pp);
    free(W->Cp);
    free(W->JC);
    free(W->djcj);
    free(W->PS);
    free(W->dFdh);
    free(W->dFdhh);
    free(W->Ch);
    free(W->dh);
    free(W->d);
    free(W->work);
}

/* The prior's eigen-subspace: directions with non-zero prior variance.
 * For a diagonal prior these are simply the free parameters. */
static int prior_subspace(const vl_problem *P, vl_ws *W, double *pvar)
{
    const int np = P->np;
    if (P->pV) {
        int k = 0;
        for (int i = 0; i < np; i++)
            if (P->pV[i] > 0.0)
                k++;
        W->nP = k;
        W->V = calloc((size_t)np * (k ? k : 1), sizeof(double));
        if (!W->V)
            return -1;
        k = 0;
        for (int i = 0; i < np; i++)
            if (P->pV[i] > 0.0) {
                W->V[i * W->nP + k] = 1.0;
                pvar[k++] = P->pV[i];
            }
        return 0;
    }
    gsl_matrix *A = gsl_matrix_alloc((size_t)np, (size_t)np);
    gsl_matrix *E = gsl_matrix_alloc((size_t)np, (size_t)np);
    gsl_vector *ev = gsl_vector_alloc((size_t)np);
    gsl_eigen_symmv_workspace *ew = gsl_eigen_symmv_alloc((size_t)np);
    if (!A || !E || !ev || !ew)
        return -1;
    memcpy(A->data, P->pC, sizeof(double) * (size_t)np * np);
    gsl_eigen_symmv(A, ev, E, ew);
    gsl_eigen_symmv_sort(ev, E, GSL_EIGEN_SORT_VAL_DESC);
    /* keep directions as SPM's spm_svd(pC, 0) does: normalised squared
       eigenvalues above 64 eps, over the rows that are not all zero */
    int rows = 0;
    for (int i = 0; i < np; i++) {
        int any = 0;
        for (int j = 0; j < np && !any; j++)
            any = P->pC[i * np + j] != 0.0;
        rows += any;
    }
    double ss = 0.0;
    for (int i = 0; i < np; i++)
        ss += gsl_vector_get(ev, (size_t)i) * gsl_vector_get(ev, (size_t)i);
    int k = 0;
    for (int i = 0; i < np; i++) {
        double l = gsl_vector_get(ev, (size_t)i);
        if (l > 0 && ss > 0 && l * l * rows / ss > 64 * DBL_EPSILON)
            k++;
    }
    W->nP = k;
    W->V = calloc((size_t)np * (k ? k : 1), sizeof(double));
    if (W->V) {
        for (int i = 0; i < np; i++)
            for (int j = 0; j < k; j++)
                W->V[i * k + j] = gsl_matrix_get(E, (size_t)i, (size_t)j);
        for (int j = 0; j < k; j++)
            pvar[j] = gsl_vector_get(ev, (size_t)j);
    }
    gsl_matrix_free(A);
    gsl_matrix_free(E);
    gsl_vector_free(ev);
    gsl_eigen_symmv_free(ew);
    return W->V ? 0 : -1;
}

/* theta = pE + V p */
static void to_theta(const vl_ws *W, const double *p, double *theta)
{
    const vl_problem *P = W->P;
    for (int i = 0; i < W->np; i++) {
        double s = P->pE[i];
        for (int j = 0; j < W->nP; j++)
            s += W->V[i * W->nP + j] * p[j];
        theta[i] = s;
    }
}

static int finite_vec(const double *x, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* Prediction and finite-difference Jacobian along the prior subspace.
 * Returns 0 when usable, -1 when the model could not be evaluated or its
 * sensitivity exploded (SPM's "revert" condition). */
static int predict_and_jacobian(vl_ws *W, const double *p)
{
    const vl_problem *P = W->P;
    const int ny = W->ny, npp = W->npp;
    to_theta(W, p, W->theta);
    if (P->predict(P->ctx, W->theta, W->f0) < 0 || !finite_vec(W->f0, ny))
        return -1;
    for (int i = 0; i < W->nP; i++) {
        for (int k = 0; k < W->np; k++)
            W->theta2[k] = W->theta[k] + W->V[k * W->nP + i] * FD_STEP;
        if (P->predict(P->ctx, W->theta2, W->f1) < 0)
            return -1;
        for (int r = 0; r < ny; r++)
            W->J[r * npp + i] = -(W->f1[r] - W->f0[r]) / FD_STEP;
    }
    /* inf-norm of df/dp: the largest absolute row sum */
    double nrm = 0.0;
    for (int r = 0; r < ny; r++) {
        double s = 0.0;
        for (int i = 0; i < W->nP; i++)
            s += fabs(W->J[r * npp + i]);
        if (!(s == s))
            return -1;
        nrm = fmax(nrm, s);
    }
    if (nrm > EXP32)
        return -1;
    return 0;
}

/* e = y - f - X0 beta (block-wise) */
static void prediction_error(vl_ws *W, const double *p)
{
    const vl_problem *P = W->P;
    const double *beta = p + W->nP;
    for (int r = 0; r < W->ny; r++) {
        int blk = r / P->nb, row = r % P->nb;
        double c = 0.0;
        for (int j = 0; j < P->nx0; j++)
            c += P->X0[row + j * P->nb] * beta[blk * P->nx0 + j];
        W->e[r] = P->y[r] - W->f0[r] - c;
    }
}

int vl_nlsi(const vl_problem *P, vl_result **out, char *errbuf, size_t errlen)
{
    vl_init();
    *out = NULL;
    if (P->np < 1 || P->ny < 1 || P->nh < 1 || !P->pE || !P->y || !P->Q ||
        !P->predict || (!P->pV && !P->pC) || P->nb < 1 || P->ny % P->nb) {
        set_err(errbuf, errlen, "inversion problem is incomplete or inconsistent");
        return VL_ERR_INPUT;
    }
    vl_ws W;
    memset(&W, 0, sizeof W);
    W.P = P;
    W.np = P->np;
    W.ny = P->ny;
    W.nh = P->nh;
    W.nblk = P->ny / P->nb;
    W.nu = P->X0 ? W.nblk * P->nx0 : 0;
    int rc = VL_ERR_NOMEM;
    vl_result *R = calloc(1, sizeof *R);
    double *pvar = malloc(sizeof(double) * (size_t)P->np);
    double *p = NULL, *Cp_keep = NULL, *p_keep = NULL, *h = NULL, *h_keep = NULL;
    double *dFdp = NULL, *dFdpp = NULL, *dp = NULL;
    if (!R || !pvar || prior_subspace(P, &W, pvar))
        goto done;
    const int nP = W.nP, npp = nP + W.nu, ny = W.ny, nh = W.nh;
    W.npp = npp;
    size_t NPP = (size_t)npp * npp;
    W.ipc = malloc(sizeof(double) * npp);
    W.theta = malloc(sizeof(double) * W.np);
    W.theta2 = malloc(sizeof(double) * W.np);
    W.f0 = malloc(sizeof(double) * ny);
    W.f1 = malloc(sizeof(double) * ny);
    W.J = calloc((size_t)ny * npp, sizeof(double));
    W.e = malloc(sizeof(double) * ny);
    W.w = malloc(sizeof(double) * ny);
    W.Pp = malloc(sizeof(double) * NPP);
    W.Cp = malloc(sizeof(double) * NPP);
    W.JC = malloc(sizeof(double) * (size_t)ny * npp);
    W.djcj = malloc(sizeof(double) * ny);
    W.PS = malloc(sizeof(double) * (size_t)nh * ny);
    W.dFdh = malloc(sizeof(double) * nh);
    W.dFdhh = malloc(sizeof(double) * nh * nh);
    W.Ch = malloc(sizeof(double) * nh * nh);
    W.dh = malloc(sizeof(double) * nh);
    W.d = malloc(sizeof(double) * nh);
    W.work = malloc(sizeof(double) * (vl_logdet_work(npp) + NPP));
    p = calloc(npp, sizeof(double));
    p_keep = calloc(npp, sizeof(double));
    Cp_keep = calloc(NPP, sizeof(double));
    h = malloc(sizeof(double) * nh);
    h_keep = malloc(sizeof(double) * nh);
    dFdp = calloc(npp, sizeof(double));
    dFdpp = calloc(NPP, sizeof(double));
    dp = calloc(npp, sizeof(double));
    R->F_trace = malloc(sizeof(double) * (size_t)(P->maxit > 0 ? P->maxit : 1));
    if (!W.ipc || !W.theta || !W.theta2 || !W.f0 || !W.f1 || !W.J || !W.e ||
        !W.w || !W.Pp || !W.Cp || !W.JC || !W.djcj || !W.PS || !W.dFdh ||
        !W.dFdhh || !W.Ch || !W.dh || !W.d || !W.work || !p || !p_keep ||
        !Cp_keep || !h || !h_keep || !dFdp || !dFdpp || !dp || !R->F_trace)
        goto done;

    /* prior precisions in the reduced space; confounds nearly flat */
    for (int i = 0; i < nP; i++)
        W.ipc[i] = 1.0 / pvar[i];
    for (int i = nP; i < npp; i++)
        W.ipc[i] = CONFOUND_PRECISION;
    /* confound columns of the Jacobian are constant: J = -kron(I, X0) */
    for (int r = 0; r < ny; r++) {
        int blk = r / P->nb, row = r % P->nb;
        for (int j = 0; j < P->nx0 && W.nu; j++)
            W.J[r * npp + nP + blk * P->nx0 + j] = -P->X0[row + j * P->nb];
    }
    /* start: p = V'(P0 - pE), beta = least-squares fit of the data */
    if (P->P0) {
        for (int j = 0; j < nP; j++) {
            double s = 0.0;
            for (int i = 0; i < W.np; i++)
                s += W.V[i * nP + j] * (P->P0[i] - P->pE[i]);
            p[j] = s;
        }
    }
    if (W.nu) {
        gsl_matrix *X = gsl_matrix_alloc((size_t)P->nb, (size_t)P->nx0);
        gsl_matrix *Vs = gsl_matrix_alloc((size_t)P->nx0, (size_t)P->nx0);
        gsl_vector *S = gsl_vector_alloc((size_t)P->nx0);
        gsl_vector *wk = gsl_vector_alloc((size_t)P->nx0);
        if (!X || !Vs || !S || !wk || P->nb < P->nx0) {
            if (X) gsl_matrix_free(X);
            if (Vs) gsl_matrix_free(Vs);
            if (S) gsl_vector_free(S);
            if (wk) gsl_vector_free(wk);
            if (P->nb < P->nx0) {
                set_err(errbuf, errlen, "more confound columns (%d) than samples (%d)", P->nx0, P->nb);
                rc = VL_ERR_INPUT;
            }
            goto done;
        }
        for (int r = 0; r < P->nb; r++)
            for (int j = 0; j < P->nx0; j++)
                gsl_matrix_set(X, (size_t)r, (size_t)j, P->X0[r + j * P->nb]);
        gsl_linalg_SV_decomp(X, Vs, S, wk); /* X <- U */
        double tol = P->nb * gsl_vector_get(S, 0) * DBL_EPSILON;
        for (int b = 0; b < W.nblk; b++) {
            const double *yb = P->y + (size_t)b * P->nb;
            for (int k = 0; k < P->nx0; k++) {
                double s = gsl_vector_get(S, (size_t)k);
                if (s <= tol)
                    continue;
                double uy = 0.0;
                for (int r = 0; r < P->nb; r++)
                    uy += gsl_matrix_get(X, (size_t)r, (size_t)k) * yb[r];
                for (int j = 0; j < P->nx0; j++)
                    p[nP + b * P->nx0 + j] += gsl_matrix_get(Vs, (size_t)j, (size_t)k) * uy / s;
            }
        }
        gsl_matrix_free(X);
        gsl_matrix_free(Vs);
        gsl_vector_free(S);
        gsl_vector_free(wk);
    }
    for (int i = 0; i < nh; i++)
        h[i] = P->hE[i];

    double F_keep = -INFINITY, L_keep[3] = {0, 0, 0};
    double v = -4.0;
    int criterion[4] = {0, 0, 0, 0};
    int k;
    int have_keep = 0;
    const double log2pi = log(8.0 * atan(1.0));
    for (k = 1; k <= P->maxit; k++) {
        /* E-step: prediction and its sensitivity to the parameters */
        int revert = predict_and_jacobian(&W, p);
        if (revert && k > 1) {
            /* back off towards the last good estimate with heavier
               regularisation */
            for (int tr = 0; tr < REVERT_TRIES && revert; tr++) {
                v = fmin(v - 2.0, -4.0);
                int dr = vl_dx(dFdpp, dFdp, npp, v, dp);
                if (dr == -2) {
                    rc = VL_ERR_NOMEM;
                    goto done;
                }
                if (dr)
                    break;
                for (int i = 0; i < npp; i++)
                    p[i] = p_keep[i] + dp[i];
                revert = predict_and_jacobian(&W, p);
            }
        }
        if (revert) {
            set_err(errbuf, errlen,
                    "the model diverged: its prediction is not finite (or its "
                    "sensitivity exceeds exp(32)) at iteration %d; check the "
                    "connectivity switches, inputs and TR", k);
            rc = VL_ERR_DIVERGED;
            goto done;
        }
        prediction_error(&W, p);

        /* M-step: Fisher scoring of the noise log-precisions */
        double dFh = 0.0;
        for (int it = 0; it < MSTEP_MAX; it++) {
            for (int r = 0; r < ny; r++) {
                double s = 0.0;
                for (int i = 0; i < nh; i++)
                    s += P->Q[(size_t)i * ny + r] * (PREC_FLOOR + exp(h[i]));
                W.w[r] = s;
            }
            /* Pp = J' diag(w) J, via JW = diag(sqrt w) J */
            for (int r = 0; r < ny; r++) {
                double sw = sqrt(W.w[r]);
                for (int c = 0; c < npp; c++)
                    W.JC[r * npp + c] = sw * W.J[r * npp + c];
            }
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, npp, ny, 1.0,
                        W.JC, npp, 0.0, W.Pp, npp);
            for (int a = 0; a < npp; a++)
                for (int b = 0; b < a; b++)
                    W.Pp[a * npp + b] = W.Pp[b * npp + a];
            memcpy(W.Cp, W.Pp, sizeof(double) * NPP);
            for (int a = 0; a < npp; a++)
                W.Cp[a * npp + a] += W.ipc[a];
            int ir = vl_inv_reg(W.Cp, npp, -1.0);
            if (ir) {
                set_err(errbuf, errlen, "posterior precision is not positive definite at iteration %d", k);
                rc = ir == -2 ? VL_ERR_NOMEM : VL_ERR_DIVERGED;
                goto done;
            }
            /* diag(J Cp J') for the trace terms */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ny, npp, npp,
                        1.0, W.J, npp, W.Cp, npp, 0.0, W.JC, npp);
            for (int r = 0; r < ny; r++) {
                double s = 0.0;
                for (int c = 0; c < npp; c++)
                    s += W.JC[r * npp + c] * W.J[r * npp + c];
                W.djcj[r] = s;
            }
            for (int i = 0; i < nh; i++) {
                double eh = exp(h[i]), tr = 0.0, ee = 0.0, tc = 0.0;
                const double *Qi = P->Q + (size_t)i * ny;
                double *PSi = W.PS + (size_t)i * ny;
                for (int r = 0; r < ny; r++) {
                    PSi[r] = Qi[r] * eh / W.w[r];
                    tr += PSi[r];
                    ee += Qi[r] * eh * W.e[r] * W.e[r];
                    tc += Qi[r] * eh * W.djcj[r];
                }
                W.dFdh[i] = tr / 2.0 - ee / 2.0 - tc / 2.0;
            }
            for (int i = 0; i < nh; i++)
                for (int j = i; j < nh; j++) {
                    double s = 0.0;
                    const double *a = W.PS + (size_t)i * ny, *b = W.PS + (size_t)j * ny;
                    for (int r = 0; r < ny; r++)
                        s += a[r] * b[r];
                    W.dFdhh[i * nh + j] = W.dFdhh[j * nh + i] = -s / 2.0;
                }
            for (int i = 0; i < nh; i++) {
                W.d[i] = h[i] - P->hE[i];
                W.dFdh[i] -= W.d[i] / P->hC[i];
                W.dFdhh[i * nh + i] -= 1.0 / P->hC[i];
            }
            for (int i = 0; i < nh * nh; i++)
                W.Ch[i] = -W.dFdhh[i];
            int irh = vl_inv_reg(W.Ch, nh, -1.0);
            if (irh) {
                set_err(errbuf, errlen, "noise precision curvature is singular at iteration %d", k);
                rc = irh == -2 ? VL_ERR_NOMEM : VL_ERR_DIVERGED;
                goto done;
            }
            int dr = vl_dx(W.dFdhh, W.dFdh, nh, 4.0, W.dh);
            if (dr) {
                set_err(errbuf, errlen, "noise precision update failed at iteration %d", k);
                rc = dr == -2 ? VL_ERR_NOMEM : VL_ERR_DIVERGED;
                goto done;
            }
            dFh = 0.0;
            for (int i = 0; i < nh; i++) {
                W.dh[i] = fmin(fmax(W.dh[i], -1.0), 1.0);
                h[i] += W.dh[i];
                dFh += W.dFdh[i] * W.dh[i];
            }
            if (dFh < 1e-2)
                break;
        }

        /* free energy: accuracy + parameter and precision complexity,
           evaluated (as SPM does) with the precisions of the last M-step
           evaluation */
        double L[3];
        double ldw = 0.0, ewe = 0.0;
        for (int r = 0; r < ny; r++) {
            if (W.w[r] > 1e-16 && W.w[r] < 1e16)
                ldw += log(W.w[r]);
            ewe += W.w[r] * W.e[r] * W.e[r];
        }
        L[0] = ldw / 2.0 - ewe / 2.0 - ny * log2pi / 2.0;
        double ldipc = 0.0, pip = 0.0;
        for (int i = 0; i < npp; i++) {
            ldipc += log(W.ipc[i]);
            pip += p[i] * W.ipc[i] * p[i];
        }
        double ldCp = vl_logdet_spd(W.Cp, npp, W.work);
        L[1] = (ldipc + ldCp) / 2.0 - pip / 2.0;
        double ldihc = 0.0, dihd = 0.0;
        for (int i = 0; i < nh; i++) {
            ldihc += -log(P->hC[i]);
            dihd += W.d[i] * W.d[i] / P->hC[i];
        }
        double ldCh = vl_logdet_spd(W.Ch, nh, W.work);
        L[2] = (ldihc + ldCh) / 2.0 - dihd / 2.0;
        double F = L[0] + L[1] + L[2];
        if (!isfinite(F)) {
            set_err(errbuf, errlen, "free energy is not finite at iteration %d", k);
            rc = VL_ERR_DIVERGED;
            goto done;
        }

        int accepted = (F > F_keep) || k < 3;
        if (accepted) {
            memcpy(p_keep, p, sizeof(double) * npp);
            memcpy(h_keep, h, sizeof(double) * nh);
            memcpy(Cp_keep, W.Cp, sizeof(double) * NPP);
            F_keep = F;
            memcpy(L_keep, L, sizeof L);
            have_keep = 1;
            /* gradient and curvature of F at the accepted point */
            for (int a = 0; a < npp; a++) {
                double s = 0.0;
                for (int r = 0; r < ny; r++)
                    s += W.J[r * npp + a] * W.w[r] * W.e[r];
                dFdp[a] = -s - W.ipc[a] * p[a];
            }
            for (size_t l = 0; l < NPP; l++)
                dFdpp[l] = -W.Pp[l];
            for (int a = 0; a < npp; a++)
                dFdpp[a * npp + a] -= W.ipc[a];
            v = fmin(v + 0.5, 4.0);
        } else {
            memcpy(p, p_keep, sizeof(double) * npp);
            memcpy(h, h_keep, sizeof(double) * nh);
            v = fmin(v - 2.0, -4.0);
        }
        int dr = vl_dx(dFdpp, dFdp, npp, v, dp);
        if (dr) {
            set_err(errbuf, errlen, "parameter update failed at iteration %d", k);
            rc = dr == -2 ? VL_ERR_NOMEM : VL_ERR_DIVERGED;
            goto done;
        }
        double dF = 0.0;
        for (int i = 0; i < npp; i++) {
            p[i] += dp[i];
            dF += dFdp[i] * dp[i];
        }
        R->F_trace[R->ntrace++] = F_keep;
        if (P->progress)
            P->progress(P->progress_ctx, k, F_keep, dF, accepted);
        criterion[3] = criterion[2];
        criterion[2] = criterion[1];
        criterion[1] = criterion[0];
        criterion[0] = dF < 1e-1;
        if (criterion[0] && criterion[1] && criterion[2] && criterion[3]) {
            R->converged = 1;
            break;
        }
    }
    if (!have_keep) {
        set_err(errbuf, errlen, "no iterations were run (maxit = %d)", P->maxit);
        rc = VL_ERR_INPUT;
        goto done;
    }
    R->iterations = k > P->maxit ? P->maxit : k;

    /* outputs: the kept estimate mapped back to the full parameter space */
    R->np = W.np;
    R->nh = nh;
    R->ny = ny;
    R->nbeta = W.nu;
    R->Ep = malloc(sizeof(double) * W.np);
    R->Cp = calloc((size_t)W.np * W.np, sizeof(double));
    R->Eh = malloc(sizeof(double) * nh);
    R->beta = malloc(sizeof(double) * (W.nu ? W.nu : 1));
    R->y_pred = malloc(sizeof(double) * ny);
    R->y_conf = calloc(ny, sizeof(double));
    if (!R->Ep || !R->Cp || !R->Eh || !R->beta || !R->y_pred || !R->y_conf)
        goto done;
    to_theta(&W, p_keep, R->Ep);
    /* Cp = V C V' */
    double *VC = malloc(sizeof(double) * (size_t)W.np * (nP ? nP : 1));
    if (!VC)
        goto done;
    for (int i = 0; i < W.np; i++)
        for (int b = 0; b < nP; b++) {
            double s = 0.0;
            for (int a = 0; a < nP; a++)
                s += W.V[i * nP + a] * Cp_keep[a * npp + b];
            VC[i * nP + b] = s;
        }
    for (int i = 0; i < W.np; i++)
        for (int j = 0; j < W.np; j++) {
            double s = 0.0;
            for (int b = 0; b < nP; b++)
                s += VC[i * nP + b] * W.V[j * nP + b];
            R->Cp[i * W.np + j] = s;
        }
    free(VC);
    memcpy(R->Eh, h_keep, sizeof(double) * nh);
    memcpy(R->beta, p_keep + nP, sizeof(double) * W.nu);
    R->F = F_keep;
    memcpy(R->L, L_keep, sizeof L_keep);
    R->predict_flag = P->predict(P->ctx, R->Ep, R->y_pred);
    for (int r = 0; r < ny && W.nu; r++) {
        int blk = r / P->nb, row = r % P->nb;
        double c = 0.0;
        for (int j = 0; j < P->nx0; j++)
            c += P->X0[row + j * P->nb] * R->beta[blk * P->nx0 + j];
        R->y_conf[r] = c;
    }
    *out = R;
    R = NULL;
    rc = VL_OK;
done:
    if (rc == VL_ERR_NOMEM)
        set_err(errbuf, errlen, "out of memory");
    vl_result_free(R);
    ws_free(&W);
    free(pvar);
    free(p);
    free(p_keep);
    free(Cp_keep);
    free(h);
    free(h_keep);
    free(dFdp);
    free(dFdpp);
    free(dp);
    return rc;
}
