/* model_integrate.c — integrators that turn DCM parameters into BOLD. */
#include "models/model_integrate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_odeiv2.h>

#include "vl/vl_linalg.h"

/* SPM's finite-difference step (spm_diff) */
#define FD_STEP 3.3546262790251185e-04 /* exp(-8) */
/* SPM stops integrating once |z|_1 exceeds this */
#define DIVERGENCE_NORM 1e6

typedef struct {
    int bin;        /* 0-based micro-time bin */
    int change;     /* inputs change here (or first bin) */
    int pattern;    /* index of the input row in force from here */
    int scan;       /* scan sampled here, -1 if none */
    int nsamp;      /* regions sampled here */
    int samp_off;   /* offset into samp_regions */
    int gap;        /* bins to the next event (0 for the last) */
    int key;        /* index of the (pattern, gap) propagator */
} int_event;

struct model_int_work {
    int N;                  /* augmented state size nx + 1 */
    int nev;
    int_event *ev;
    int *samp_regions;
    int npat;
    double *patterns;       /* npat x m input rows */
    int nkey;
    int *key_pattern, *key_gap;
    /* numeric buffers */
    double *M0, *M1, *M2;   /* N^2, m N^2, n N^2 */
    double *Jp;             /* npat N^2 */
    double *Ek;             /* nkey N^2 */
    double *Jt, *Et;        /* N^2 scratch */
    double *z, *z2;         /* N */
    double *fx_work;
    double *f0, *f1, *xp, *up, *dfdx0, *dfdx1, *g;
    double *fu, *fcol;      /* 2 nx and 2 nx scratch for the reductions */
    vl_expm_work *expm;
};

static int add_pattern(model_int_work *W, const double *row, int m)
{
    for (int p = 0; p < W->npat; p++)
        if (memcmp(W->patterns + (size_t)p * m, row, sizeof(double) * (size_t)m) == 0)
            return p;
    memcpy(W->patterns + (size_t)W->npat * m, row, sizeof(double) * (size_t)m);
    return W->npat++;
}

static int add_key(model_int_work *W, int pattern, int gap)
{
    for (int k = 0; k < W->nkey; k++)
        if (W->key_pattern[k] == pattern && W->key_gap[k] == gap)
            return k;
    W->key_pattern[W->nkey] = pattern;
    W->key_gap[W->nkey] = gap;
    return W->nkey++;
}

static int sample_bin_offset(const model_dcm *M, int j)
{
    double dt = M->TR / MODEL_DCM_MICROTIME;
    int D = (int)lround(M->delays[j] / dt);
    return D < 1 ? 1 : D;
}

model_int_work *model_int_alloc(const model_dcm *M)
{
    vl_init();
    const int nu = M->nu, v = M->v, n = M->n, m = M->m;
    const int nx = model_dcm_nstates(M), N = nx + 1;
    model_int_work *W = calloc(1, sizeof *W);
    if (!W)
        return NULL;
    W->N = N;
    /* mark event bins */
    char *is_change = calloc((size_t)nu, 1);
    int *scan_at = malloc(sizeof(int) * (size_t)nu);
    int *nsamp_at = calloc((size_t)nu, sizeof(int));
    char *is_extra = calloc((size_t)nu, 1);
    if (!is_change || !scan_at || !nsamp_at || !is_extra)
        goto fail;
    for (int t = 0; t < nu; t++)
        scan_at[t] = -1;
    is_change[0] = 1;
    for (int t = 1; t < nu; t++)
        if (memcmp(M->u + (size_t)t * m, M->u + (size_t)(t - 1) * m,
                   sizeof(double) * (size_t)m) != 0)
            is_change[t] = 1;
    int total_samples = 0;
    for (int j = 0; j < n; j++) {
        int D = sample_bin_offset(M, j);
        for (int k = 0; k < v; k++) {
            /* SPM: bin ceil(k*nu/v) + D, 1-based */
            int bin = (int)ceil((double)k * nu / v) + D - 1;
            if (bin < 0 || bin >= nu)
                goto fail;
            if (scan_at[bin] < 0)
                scan_at[bin] = k;
            nsamp_at[bin]++;
            total_samples++;
        }
    }
    if (M->nonlinear && M->integrator == MODEL_INT_BILINEAR) {
        /* spm_int_D re-evaluates the Jacobian about every second */
        int nsteps = (int)lround(M->TR > 1.0 ? M->TR : 1.0);
        int D1 = sample_bin_offset(M, 0);
        for (int k = 0; k <= (v - 1) * nsteps; k++) {
            int bin = (int)ceil((double)k * nu / v / nsteps) + D1 - 1;
            if (bin >= 0 && bin < nu)
                is_extra[bin] = 1;
        }
    }
    int nev = 0;
    for (int t = 0; t < nu; t++)
        if (is_change[t] || nsamp_at[t] || is_extra[t])
            nev++;
    W->ev = calloc((size_t)nev, sizeof(int_event));
    W->samp_regions = malloc(sizeof(int) * (size_t)(total_samples ? total_samples : 1));
    W->patterns = malloc(sizeof(double) * (size_t)(nev + 1) * (m ? m : 1));
    W->key_pattern = malloc(sizeof(int) * (size_t)nev);
    W->key_gap = malloc(sizeof(int) * (size_t)nev);
    if (!W->ev || !W->samp_regions || !W->patterns || !W->key_pattern || !W->key_gap)
        goto fail;
    W->nev = nev;
    int e = 0, so = 0, pattern = 0;
    for (int t = 0; t < nu; t++) {
        if (!(is_change[t] || nsamp_at[t] || is_extra[t]))
            continue;
        int_event *E = &W->ev[e];
        E->bin = t;
        E->change = is_change[t];
        if (is_change[t])
            pattern = add_pattern(W, M->u + (size_t)t * m, m);
        E->pattern = pattern;
        E->scan = scan_at[t];
        E->samp_off = so;
        if (nsamp_at[t]) {
            for (int j = 0; j < n; j++) {
                int bin = (int)ceil((double)scan_at[t] * nu / v) + sample_bin_offset(M, j) - 1;
                if (bin == t)
                    W->samp_regions[so++] = j;
            }
        }
        E->nsamp = so - E->samp_off;
        e++;
    }
    for (e = 0; e < nev; e++) {
        W->ev[e].gap = (e + 1 < nev) ? W->ev[e + 1].bin - W->ev[e].bin : 0;
        W->ev[e].key = add_key(W, W->ev[e].pattern, W->ev[e].gap);
    }
    free(is_change);
    free(scan_at);
    free(nsamp_at);
    free(is_extra);
    is_change = NULL;
    scan_at = NULL;
    nsamp_at = NULL;
    is_extra = NULL;

    size_t NN = (size_t)N * N;
    W->M0 = malloc(sizeof(double) * NN);
    W->M1 = malloc(sizeof(double) * NN * (m ? m : 1));
    W->M2 = malloc(sizeof(double) * NN * n);
    W->Jp = malloc(sizeof(double) * NN * W->npat);
    W->Ek = malloc(sizeof(double) * NN * W->nkey);
    W->Jt = malloc(sizeof(double) * NN);
    W->Et = malloc(sizeof(double) * NN);
    W->z = malloc(sizeof(double) * N);
    W->z2 = malloc(sizeof(double) * N);
    W->fx_work = malloc(sizeof(double) * (model_dcm_fx_work(M) + 1));
    W->f0 = malloc(sizeof(double) * nx);
    W->f1 = malloc(sizeof(double) * nx);
    W->xp = malloc(sizeof(double) * nx);
    W->up = malloc(sizeof(double) * (m ? m : 1));
    W->dfdx0 = malloc(sizeof(double) * nx * nx);
    W->dfdx1 = malloc(sizeof(double) * nx * nx);
    W->g = malloc(sizeof(double) * n);
    W->fu = malloc(sizeof(double) * 2 * nx);
    W->fcol = malloc(sizeof(double) * 2 * nx);
    W->expm = vl_expm_alloc(N);
    if (!W->M0 || !W->M1 || !W->M2 || !W->Jp || !W->Ek || !W->Jt || !W->Et ||
        !W->z || !W->z2 || !W->fx_work || !W->f0 || !W->f1 || !W->xp ||
        !W->up || !W->dfdx0 || !W->dfdx1 || !W->g || !W->fu || !W->fcol || !W->expm)
        goto fail;
    return W;
fail:
    free(is_change);
    free(scan_at);
    free(nsamp_at);
    free(is_extra);
    model_int_free(W);
    return NULL;
}

void model_int_free(model_int_work *W)
{
    if (!W)
        return;
    free(W->ev);
    free(W->samp_regions);
    free(W->patterns);
    free(W->key_pattern);
    free(W->key_gap);
    free(W->M0);
    free(W->M1);
    free(W->M2);
    free(W->Jp);
    free(W->Ek);
    free(W->Jt);
    free(W->Et);
    free(W->z);
    free(W->z2);
    free(W->fx_work);
    free(W->f0);
    free(W->f1);
    free(W->xp);
    free(W->up);
    free(W->dfdx0);
    free(W->dfdx1);
    free(W->g);
    free(W->fu);
    free(W->fcol);
    vl_expm_free(W->expm);
    free(W);
}

/* One-sided finite-difference Jacobian df/dx at (x, u), as spm_diff. */
static void fd_jacobian(const model_dcm *M, const double *P, const double *x,
                        const double *u, const double *fref, double *J,
                        model_int_work *W)
{
    const int nx = model_dcm_nstates(M);
    memcpy(W->xp, x, sizeof(double) * nx);
    for (int i = 0; i < nx; i++) {
        W->xp[i] = x[i] + FD_STEP;
        model_dcm_fx(M, P, W->xp, u, W->f1, NULL, NULL, W->fx_work);
        for (int r = 0; r < nx; r++)
            J[r + i * nx] = (W->f1[r] - fref[r]) / FD_STEP;
        W->xp[i] = x[i];
    }
}

/* Place an nx-block (column 0 = c, rest = B) into an augmented N x N
 * column-major matrix whose first row is zero. */
static void augment(int nx, const double *c, const double *B, double *out)
{
    const int N = nx + 1;
    memset(out, 0, sizeof(double) * (size_t)N * N);
    for (int r = 0; r < nx; r++)
        out[(r + 1)] = c[r];
    for (int j = 0; j < nx; j++)
        for (int r = 0; r < nx; r++)
            out[(r + 1) + (j + 1) * N] = B[r + j * nx];
}

void model_int_bireduce(const model_dcm *M, const double *P, double *M0,
                        double *M1, model_int_work *W)
{
    const int nx = model_dcm_nstates(M), m = M->m, N = nx + 1;
    double *x0 = W->z2; /* expansion point: rest */
    memset(x0, 0, sizeof(double) * N);
    memset(W->up, 0, sizeof(double) * (m ? m : 1));
    double *f0 = W->f0;
    model_dcm_fx(M, P, x0, W->up, f0, NULL, NULL, W->fx_work);
    fd_jacobian(M, P, x0, W->up, f0, W->dfdx0, W);
    augment(nx, f0, W->dfdx0, M0); /* f0 - J*x0 with x0 = 0 */
    double *fu = W->fu, *dfdu = W->fu + nx;
    for (int j = 0; j < m; j++) {
        W->up[j] = FD_STEP;
        model_dcm_fx(M, P, x0, W->up, fu, NULL, NULL, W->fx_work);
        fd_jacobian(M, P, x0, W->up, fu, W->dfdx1, W);
        W->up[j] = 0.0;
        for (int r = 0; r < nx; r++)
            dfdu[r] = (fu[r] - f0[r]) / FD_STEP;
        for (int k = 0; k < nx * nx; k++)
            W->dfdx1[k] = (W->dfdx1[k] - W->dfdx0[k]) / FD_STEP;
        augment(nx, dfdu, W->dfdx1, M1 + (size_t)j * N * N);
    }
}

/* spm_soreduce's state operators for the neural states: M2_j holds
 * column j of df/dx and d(df/dx)/dx_j (finite differences of finite
 * differences), so that the Jacobian follows the neural activity. */
static void soreduce_states(const model_dcm *M, const double *P,
                            model_int_work *W)
{
    const int nx = model_dcm_nstates(M), N = nx + 1, n = M->n;
    double *x0 = W->z2;
    memset(x0, 0, sizeof(double) * N);
    memset(W->up, 0, sizeof(double) * (M->m ? M->m : 1));
    double *fpert = W->fcol, *col = W->fcol + nx;
    for (int j = 0; j < n; j++) {
        x0[j] = FD_STEP;
        model_dcm_fx(M, P, x0, W->up, fpert, NULL, NULL, W->fx_work);
        fd_jacobian(M, P, x0, W->up, fpert, W->dfdx1, W);
        x0[j] = 0.0;
        for (int k = 0; k < nx * nx; k++)
            W->dfdx1[k] = (W->dfdx1[k] - W->dfdx0[k]) / FD_STEP;
        for (int r = 0; r < nx; r++)
            col[r] = W->dfdx0[r + j * nx];
        augment(nx, col, W->dfdx1, W->M2 + (size_t)j * N * N);
    }
}

static void observe(const model_dcm *M, const double *P, const int_event *E,
                    const double *z, double *y, model_int_work *W)
{
    model_dcm_gx(M, P, z + 1, W->g, NULL);
    for (int r = 0; r < E->nsamp; r++) {
        int j = W->samp_regions[E->samp_off + r];
        y[E->scan + (size_t)j * M->v] = W->g[j];
    }
}

static double norm1(const double *z, int N)
{
    double s = 0.0;
    for (int i = 0; i < N; i++)
        s += fabs(z[i]);
    return s;
}

static void input_jacobian(const model_dcm *M, const double *u, double *J,
                           model_int_work *W)
{
    const size_t NN = (size_t)W->N * W->N;
    memcpy(J, W->M0, sizeof(double) * NN);
    for (int j = 0; j < M->m; j++) {
        if (u[j] == 0.0)
            continue;
        const double *M1 = W->M1 + (size_t)j * NN;
        for (size_t k = 0; k < NN; k++)
            J[k] += u[j] * M1[k];
    }
}

static int predict_bilinear(const model_dcm *M, const double *P, double *y,
                            model_int_work *W)
{
    const int N = W->N;
    const size_t NN = (size_t)N * N;
    const double dt = M->TR / MODEL_DCM_MICROTIME;
    model_int_bireduce(M, P, W->M0, W->M1, W);
    for (int p = 0; p < W->npat; p++)
        input_jacobian(M, W->patterns + (size_t)p * M->m, W->Jp + p * NN, W);
    /* Inputs are blocks and samples regular: a handful of (input, gap)
       pairs cover every step, so each propagator is computed once. */
    for (int k = 0; k < W->nkey; k++) {
        if (W->key_gap[k] == 0)
            continue;
        const double *J = W->Jp + (size_t)W->key_pattern[k] * NN;
        double tau = W->key_gap[k] * dt;
        for (size_t l = 0; l < NN; l++)
            W->Jt[l] = J[l] * tau;
        if (vl_expm(W->Jt, N, W->Ek + (size_t)k * NN, W->expm))
            return MODEL_INT_FAILED;
    }
    double *z = W->z, *z2 = W->z2;
    memset(z, 0, sizeof(double) * N);
    z[0] = 1.0;
    for (int e = 0; e < W->nev; e++) {
        const int_event *E = &W->ev[e];
        if (E->nsamp)
            observe(M, P, E, z, y, W);
        if (E->gap == 0)
            continue;
        cblas_dgemv(CblasColMajor, CblasNoTrans, N, N, 1.0,
                    W->Ek + (size_t)E->key * NN, N, z, 1, 0.0, z2, 1);
        memcpy(z, z2, sizeof(double) * N);
        if (!(norm1(z, N) <= DIVERGENCE_NORM))
            return isfinite(norm1(z, N)) ? MODEL_INT_DIVERGED : MODEL_INT_FAILED;
    }
    return MODEL_INT_OK;
}

static int predict_nonlinear_D(const model_dcm *M, const double *P, double *y,
                               model_int_work *W)
{
    const int N = W->N, n = M->n;
    const size_t NN = (size_t)N * N;
    const double dt = M->TR / MODEL_DCM_MICROTIME;
    model_int_bireduce(M, P, W->M0, W->M1, W);
    soreduce_states(M, P, W);
    double *z = W->z, *z2 = W->z2;
    memset(z, 0, sizeof(double) * N);
    z[0] = 1.0;
    for (int e = 0; e < W->nev; e++) {
        const int_event *E = &W->ev[e];
        input_jacobian(M, M->u + (size_t)E->bin * M->m, W->Jt, W);
        for (int j = 0; j < n; j++) {
            const double *M2 = W->M2 + (size_t)j * NN;
            double xj = z[j + 1];
            for (size_t k = 0; k < NN; k++)
                W->Jt[k] += xj * M2[k];
        }
        if (E->nsamp)
            observe(M, P, E, z, y, W);
        if (E->gap == 0)
            continue;
        for (size_t l = 0; l < NN; l++)
            W->Jt[l] *= E->gap * dt;
        if (vl_expm(W->Jt, N, W->Et, W->expm))
            return MODEL_INT_FAILED;
        cblas_dgemv(CblasColMajor, CblasNoTrans, N, N, 1.0, W->Et, N, z, 1,
                    0.0, z2, 1);
        memcpy(z, z2, sizeof(double) * N);
        if (!(norm1(z, N) <= DIVERGENCE_NORM))
            return isfinite(norm1(z, N)) ? MODEL_INT_DIVERGED : MODEL_INT_FAILED;
    }
    return MODEL_INT_OK;
}

typedef struct {
    const model_dcm *M;
    const double *P;
    const double *u;
    double *work;
} ode_ctx;

static int ode_rhs(double t, const double x[], double dxdt[], void *params)
{
    (void)t;
    ode_ctx *c = params;
    model_dcm_fx(c->M, c->P, x, c->u, dxdt, NULL, NULL, c->work);
    for (int i = 0; i < model_dcm_nstates(c->M); i++)
        if (!isfinite(dxdt[i]))
            return GSL_EBADFUNC;
    return GSL_SUCCESS;
}

static int predict_ode(const model_dcm *M, const double *P, double *y,
                       model_int_work *W)
{
    const int nx = model_dcm_nstates(M);
    const double dt = M->TR / MODEL_DCM_MICROTIME;
    ode_ctx c = {M, P, NULL, W->fx_work};
    gsl_odeiv2_system sys = {ode_rhs, NULL, (size_t)nx, &c};
    gsl_odeiv2_driver *d = gsl_odeiv2_driver_alloc_y_new(
        &sys, gsl_odeiv2_step_rk8pd, 1e-3, 1e-10, 1e-10);
    if (!d)
        return MODEL_INT_FAILED;
    double *x = W->z + 1;
    memset(W->z, 0, sizeof(double) * W->N);
    double t = 0.0;
    int rc = MODEL_INT_OK;
    for (int e = 0; e < W->nev; e++) {
        const int_event *E = &W->ev[e];
        if (E->nsamp)
            observe(M, P, E, W->z, y, W);
        if (E->gap == 0)
            continue;
        c.u = M->u + (size_t)E->bin * M->m;
        gsl_odeiv2_driver_reset(d);
        double t1 = t + E->gap * dt;
        if (gsl_odeiv2_driver_apply(d, &t, t1, x) != GSL_SUCCESS) {
            rc = MODEL_INT_FAILED;
            break;
        }
        if (!(norm1(W->z, W->N) <= DIVERGENCE_NORM)) {
            rc = MODEL_INT_DIVERGED;
            break;
        }
    }
    gsl_odeiv2_driver_free(d);
    return rc;
}

int model_int_predict(const model_dcm *M, const double *P, double *y,
                      model_int_work *W)
{
    memset(y, 0, sizeof(double) * (size_t)M->v * M->n);
    for (int i = 0; i < M->L.np; i++)
        if (!isfinite(P[i]))
            return MODEL_INT_FAILED;
    if (M->integrator == MODEL_INT_ODE)
        return predict_ode(M, P, y, W);
    if (M->nonlinear)
        return predict_nonlinear_D(M, P, y, W);
    return predict_bilinear(M, P, y, W);
}
