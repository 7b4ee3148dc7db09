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

typedef struct {
    int bin;        /* 0-based micro-time bin */
    int change;     /* inputs change here (or first bin) */
    int pattern;    /* index of the input row in force from here */
    int scan;       /* scan sampled here, -1 if none */
    int nsamp;      /* regions sampled here */
    int samp_off;   /* offset into samp_regions */
    int gap;        /* bins to the next event (0 for the last) */
    int key;        /* index of the (pattern, gap) propagator */
    int slot;       /* index among the sampled events (-1 if none) */
} int_event;

struct model_int_work {
    int N;                  /* augmented states integrated: Nfull, or the subsystem's */
    int Nfull;              /* augmented state size nx + 1 */
    /* the integrated states as augmented indices into the full system
       (set_map): region by region for the bilinear schemes, so that the
       operators' blocks are contiguous; sub_region >= 0 when only that
       region's subsystem is integrated (model_int_predict_region) */
    int *sub_idx;
    int sub_region;
    int map;                /* MAP_* or the region of set_map */
    int *pos_v, *pos_q;     /* n: where region j's log v and log q are in z, -1 if not */
    double bold_k[3];       /* model_dcm_bold_coeffs of the prediction's P */
    double other_norm;      /* bound on the 1-norm of the states left out */
    double max_norm;        /* largest 1-norm of z over the last prediction */
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
    /* the propagators of each input pattern over 1, 2, 4, ... bins
       (exp(J dt 2^i), i < nlev, by squaring): a step of g bins is the
       product of those of g's binary digits */
    int nlev;
    double *lad;            /* npat x nlev x N^2 */
    int *lprof;             /* npat x nlev x 2N: their column profiles */
    int *pat_ladder;        /* npat: 1 when pattern p's ladder is formed */
    int *pat_levels;        /* npat: levels pattern p's steps need */
    double *pat_cost;       /* npat: what the ladder saves its steps */
    double *Jt, *Et;        /* N^2 scratch */
    double *z, *z2;         /* N */
    double *fx_work;
    double *f0, *f1, *xp, *up, *dfdx0, *dfdx1, *g;
    double *fu, *fcol;      /* 2 nx and 2 nx scratch for the reductions */
    /* small-matrix kernels (no BLAS call overhead, nothing allocated per
       step): the operators' non-zeros as compressed rows over the union of
       the M0/M1/M2 patterns, the values of each input pattern on it */
    int kernel;             /* MODEL_INT_KERNEL_* */
    int nnz;
    int *rowptr, *col, *pos; /* N + 1, NN, NN: pos = dense index r + c N */
    double *val;            /* npat x NN: values of pattern p at [p NN + l] */
    double *vt;             /* NN: this step's values (nonlinear) */
    double *opv;            /* nonlinear: M0, M1_j, M2_j on the non-zeros, (1 + m + n) x NN */
    int *op_on;             /* nonlinear: 1 + m + n, 0 for an operator with no non-zero */
    int *key_uses, *key_s;  /* nkey: steps taking it; Taylor sub-steps */
    double *pa, *pb, *pc, *pd, *pn; /* NN scratch of the dense expm */
    int *piv;               /* N */
    /* column profiles (rows lo[j] <= i < hi[j] hold column j's non-zeros)
       of the formed propagators, for products that skip the exact zeros:
       2N per key (lo then hi), 2N for Et, 2N scratch */
    int *eprof, *prof;
    double *w1, *w2;        /* N scratch of the Taylor action */
    /* the states at every sampled event of the last prediction, kept so
       that observation-only parameters need no integration (model_int_observe) */
    int nslot;
    double *zs;             /* nslot x N */
    int states_ok;          /* the last prediction ran to the end */
};

enum { MAP_FULL = -1, MAP_IDENTITY = -2 };

/* The states W integrates, in z = [1; ...] order: MAP_IDENTITY the full
 * state in model_dcm's order (the ODE integrator, model_int_bireduce);
 * MAP_FULL the neural states first (x, then two-state xI), then each
 * region's s f v q together; region r the neural states and r's s f v q
 * alone (model_int_predict_region). The neural x stay first, as
 * soreduce_states and the nonlinear scheme take them. */
static void set_map(model_int_work *W, const model_dcm *M, int map)
{
    const int n = M->n;
    int *idx = W->sub_idx, N = 0;
    W->map = map;
    W->sub_region = map >= 0 ? map : -1;
    for (int j = 0; j < n; j++)
        W->pos_v[j] = W->pos_q[j] = -1;
    if (map == MAP_IDENTITY) {
        for (N = 0; N < W->Nfull; N++)
            idx[N] = N;
        for (int j = 0; j < n; j++) {
            W->pos_v[j] = 1 + 3 * n + j;
            W->pos_q[j] = 1 + 4 * n + j;
        }
        W->N = N;
        return;
    }
    idx[N++] = 0;
    for (int j = 0; j < n; j++)
        idx[N++] = 1 + j;
    if (M->two_state)
        for (int j = 0; j < n; j++)
            idx[N++] = 1 + 5 * n + j;
    for (int r = 0; r < n; r++) {
        if (map >= 0 && r != map)
            continue;
        for (int h = 1; h <= 4; h++)
            idx[N++] = 1 + h * n + r;
        W->pos_v[r] = N - 2;
        W->pos_q[r] = N - 1;
    }
    W->N = N;
}

/* the map a full prediction with M's integrator takes */
static int full_map(const model_dcm *M)
{
    return M->integrator == MODEL_INT_ODE ? MAP_IDENTITY : MAP_FULL;
}

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
    W->N = W->Nfull = N;
    W->sub_region = -1;
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
        E->slot = E->nsamp ? W->nslot++ : -1;
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
    W->sub_idx = malloc(sizeof(int) * N);
    W->pos_v = malloc(sizeof(int) * n);
    W->pos_q = malloc(sizeof(int) * n);
    if (!W->sub_idx || !W->pos_v || !W->pos_q)
        goto fail;
    set_map(W, M, MAP_IDENTITY);
    W->M0 = malloc(sizeof(double) * NN);
    W->M1 = malloc(sizeof(double) * NN * (m ? m : 1));
    W->M2 = malloc(sizeof(double) * NN * n);
    W->Jp = malloc(sizeof(double) * NN * W->npat);
    int maxgap = 1;
    for (int k = 0; k < W->nkey; k++)
        maxgap = W->key_gap[k] > maxgap ? W->key_gap[k] : maxgap;
    W->nlev = 1;
    while ((2 << (W->nlev - 1)) <= maxgap)
        W->nlev++;
    W->lad = malloc(sizeof(double) * NN * W->nlev * W->npat);
    W->lprof = malloc(sizeof(int) * 2 * (size_t)N * W->nlev * W->npat);
    W->pat_ladder = calloc((size_t)W->npat + 1, sizeof(int));
    W->pat_levels = calloc((size_t)W->npat + 1, sizeof(int));
    W->pat_cost = calloc((size_t)W->npat + 1, sizeof(double));
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
    W->rowptr = malloc(sizeof(int) * (N + 1));
    W->col = malloc(sizeof(int) * NN);
    W->pos = malloc(sizeof(int) * NN);
    W->val = malloc(sizeof(double) * NN * W->npat);
    W->vt = malloc(sizeof(double) * NN);
    if (M->nonlinear) {
        W->opv = malloc(sizeof(double) * NN * (size_t)(1 + m + n));
        W->op_on = malloc(sizeof(int) * (size_t)(1 + m + n));
        if (!W->opv || !W->op_on)
            goto fail;
    }
    W->key_uses = calloc((size_t)W->nkey + 1, sizeof(int));
    W->key_s = calloc((size_t)W->nkey + 1, sizeof(int));
    W->pa = malloc(sizeof(double) * NN);
    W->pb = malloc(sizeof(double) * NN);
    W->pc = malloc(sizeof(double) * NN);
    W->pd = malloc(sizeof(double) * NN);
    W->pn = malloc(sizeof(double) * NN);
    W->piv = malloc(sizeof(int) * N);
    W->eprof = malloc(sizeof(int) * 2 * (size_t)N);
    W->prof = malloc(sizeof(int) * 2 * (size_t)N);
    W->w1 = malloc(sizeof(double) * N);
    W->w2 = malloc(sizeof(double) * N);
    W->zs = malloc(sizeof(double) * N * (size_t)(W->nslot ? W->nslot : 1));
    if (!W->zs || !W->rowptr || !W->col || !W->pos || !W->val || !W->vt || !W->lad || !W->lprof || !W->pat_ladder || !W->pat_levels || !W->pat_cost || !W->key_uses || !W->key_s || !W->pa ||
        !W->pb || !W->pc || !W->pd || !W->pn || !W->piv || !W->eprof || !W->prof || !W->w1 || !W->w2)
        goto fail;
    for (int k = 0; k < W->nev; k++)
        if (W->ev[k].gap > 0)
            W->key_uses[W->ev[k].key]++;
    for (int k = 0; k < W->nkey; k++) {
        int lev = 0;
        while ((2 << lev) <= W->key_gap[k])
            lev++;
        if (W->key_gap[k] > 0 && lev + 1 > W->pat_levels[W->key_pattern[k]])
            W->pat_levels[W->key_pattern[k]] = lev + 1;
    }
    if (!W->M0 || !W->M1 || !W->M2 || !W->Jp || !W->Jt || !W->Et ||
        !W->z || !W->z2 || !W->fx_work || !W->f0 || !W->f1 || !W->xp ||
        !W->up || !W->dfdx0 || !W->dfdx1 || !W->g || !W->fu || !W->fcol)
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
    free(W->sub_idx);
    free(W->pos_v);
    free(W->pos_q);
    free(W->samp_regions);
    free(W->patterns);
    free(W->key_pattern);
    free(W->key_gap);
    free(W->M0);
    free(W->M1);
    free(W->M2);
    free(W->Jp);
    free(W->lad);
    free(W->lprof);
    free(W->pat_ladder);
    free(W->pat_levels);
    free(W->pat_cost);
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
    free(W->rowptr);
    free(W->col);
    free(W->pos);
    free(W->val);
    free(W->vt);
    free(W->opv);
    free(W->op_on);
    free(W->key_uses);
    free(W->key_s);
    free(W->pa);
    free(W->pb);
    free(W->pc);
    free(W->pd);
    free(W->pn);
    free(W->piv);
    free(W->eprof);
    free(W->prof);
    free(W->w1);
    free(W->w2);
    free(W->zs);
    free(W);
}

/* One-sided finite-difference Jacobian df/dx at (x, u), as spm_diff, on
 * the integrated states (W->sub_idx): J is ns x ns, ns = W->N - 1. Each
 * column is its own difference, so a subsystem's are the full system's. */
static void fd_jacobian(const model_dcm *M, const double *P, const double *x,
                        const double *u, const double *fref, double *J,
                        model_int_work *W)
{
    const int nx = model_dcm_nstates(M), ns = W->N - 1;
    const int *st = W->sub_idx + 1;   /* augmented indices: state st[i] - 1 */
    memcpy(W->xp, x, sizeof(double) * nx);
    for (int i = 0; i < ns; i++) {
        const int xi = st[i] - 1;
        W->xp[xi] = x[xi] + FD_STEP;
        /* only the rows that depend on state xi move */
        memcpy(W->f1, fref, sizeof(double) * nx);
        model_dcm_fx_rows(M, P, W->xp, u, xi, W->f1, W->fx_work);
        for (int r = 0; r < ns; r++)
            J[r + i * ns] = (W->f1[st[r] - 1] - fref[st[r] - 1]) / FD_STEP;
        W->xp[xi] = x[xi];
    }
}

/* v[i] = f[state of integrated state i] */
static void gather_states(const model_int_work *W, const double *f, double *v)
{
    for (int i = 0; i < W->N - 1; i++)
        v[i] = f[W->sub_idx[i + 1] - 1];
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

/* The bilinear operators on the integrated states (W->sub_idx, W->N):
 * the principal submatrices of the full ones, entry for entry. */
static void bireduce(const model_dcm *M, const double *P, double *M0, double *M1,
                     model_int_work *W)
{
    const int nx = model_dcm_nstates(M), m = M->m, N = W->N, ns = N - 1;
    double *x0 = W->z2; /* expansion point: rest */
    memset(x0, 0, sizeof(double) * W->Nfull);
    memset(W->up, 0, sizeof(double) * (m ? m : 1));
    double *f0 = W->f0, *fs = W->fcol;
    model_dcm_fx(M, P, x0, W->up, f0, NULL, NULL, W->fx_work);
    fd_jacobian(M, P, x0, W->up, f0, W->dfdx0, W);
    gather_states(W, f0, fs);
    augment(ns, fs, W->dfdx0, M0); /* f0 - J*x0 with x0 = 0 */
    double *fu = W->fu, *dfdu = W->fu + nx;
    for (int j = 0; j < m; j++) {
        W->up[j] = FD_STEP;
        model_dcm_fx(M, P, x0, W->up, fu, NULL, NULL, W->fx_work);
        fd_jacobian(M, P, x0, W->up, fu, W->dfdx1, W);
        W->up[j] = 0.0;
        for (int r = 0; r < nx; r++)
            dfdu[r] = (fu[r] - f0[r]) / FD_STEP;
        for (int k = 0; k < ns * ns; k++)
            W->dfdx1[k] = (W->dfdx1[k] - W->dfdx0[k]) / FD_STEP;
        gather_states(W, dfdu, fs);
        augment(ns, fs, W->dfdx1, M1 + (size_t)j * N * N);
    }
}

void model_int_bireduce(const model_dcm *M, const double *P, double *M0,
                        double *M1, model_int_work *W)
{
    const int map = W->map;
    set_map(W, M, MAP_IDENTITY);
    bireduce(M, P, M0, M1, W);
    set_map(W, M, map);
}

/* spm_soreduce's state operators for the neural states: M2_j holds
 * column j of df/dx and d(df/dx)/dx_j (finite differences of finite
 * differences), so that the Jacobian follows the neural activity. */
static void soreduce_states(const model_dcm *M, const double *P,
                            model_int_work *W)
{
    const int nx = model_dcm_nstates(M), N = W->N, ns = N - 1, n = M->n;
    double *x0 = W->z2;
    memset(x0, 0, sizeof(double) * W->Nfull);
    memset(W->up, 0, sizeof(double) * (M->m ? M->m : 1));
    double *fpert = W->fcol, *col = W->fcol + nx;
    /* the neural states come first in the full and in every subsystem */
    for (int j = 0; j < n; j++) {
        x0[j] = FD_STEP;
        model_dcm_fx(M, P, x0, W->up, fpert, NULL, NULL, W->fx_work);
        fd_jacobian(M, P, x0, W->up, fpert, W->dfdx1, W);
        x0[j] = 0.0;
        for (int k = 0; k < ns * ns; k++)
            W->dfdx1[k] = (W->dfdx1[k] - W->dfdx0[k]) / FD_STEP;
        for (int r = 0; r < ns; r++)
            col[r] = W->dfdx0[r + j * ns];
        augment(ns, col, W->dfdx1, W->M2 + (size_t)j * N * N);
    }
}

static void observe(const model_dcm *M, const double *P, const int_event *E,
                    const double *z, double *y, model_int_work *W)
{
    (void)P;
    if (W->sub_region < 0)
        memcpy(W->zs + (size_t)E->slot * W->N, z, sizeof(double) * W->N);
    for (int r = 0; r < E->nsamp; r++) {
        const int j = W->samp_regions[E->samp_off + r];
        if (W->pos_v[j] >= 0)   /* a subsystem observes its region alone */
            y[E->scan + (size_t)j * M->v] = model_dcm_bold(W->bold_k, z[W->pos_v[j]], z[W->pos_q[j]]);
    }
}

static double norm1(const double *z, int N)
{
    double s = 0.0;
    for (int i = 0; i < N; i++)
        s += fabs(z[i]);
    return s;
}

/* norm1 in four lanes (not one chain of dependent adds): the same sum in
 * another order, within N ulps of it (NaN and Inf as norm1) */
static double norm1_lanes(const double *z, int N)
{
    double a[4] = {0.0, 0.0, 0.0, 0.0};
    int i = 0;
    for (; i + 4 <= N; i += 4)
        for (int l = 0; l < 4; l++)
            a[l] += fabs(z[i + l]);
    for (; i < N; i++)
        a[0] += fabs(z[i]);
    return (a[0] + a[1]) + (a[2] + a[3]);
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

/* ---- small-matrix kernels ----------------------------------------------
 * The augmented operators are small (N = 5n + 2 .. 6n + 1) and sparse: the
 * neural block holds the switched-on connections only, the haemodynamics
 * couple each region's four states among themselves. Entries that are not
 * switched on come out of the finite differences as exact zeros, so the
 * pattern of non-zeros is exact, and a product over the non-zeros sums the
 * same terms, in the same order, as a dense loop would. */

/* The union of the non-zeros of the n_ops dense N x N operators at ops[]
 * as compressed rows (rowptr, col, pos = r + c N). NaN counts as non-zero,
 * so that it propagates and is caught. */
static void pattern_union(model_int_work *W, const double *const *ops, const size_t *count,
                          int n_ops)
{
    const int N = W->N;
    const size_t NN = (size_t)N * N;
    int nz = 0;
    for (int r = 0; r < N; r++) {
        W->rowptr[r] = nz;
        for (int c = 0; c < N; c++) {
            size_t l = (size_t)r + (size_t)c * N;
            int on = 0;
            for (int o = 0; o < n_ops && !on; o++)
                for (size_t b = 0; b < count[o] && !on; b++)
                    on = ops[o][b * NN + l] != 0.0;
            if (on) {
                W->col[nz] = c;
                W->pos[nz] = (int)l;
                nz++;
            }
        }
    }
    W->rowptr[N] = nz;
    W->nnz = nz;
}

static double norm_inf_vec(const double *x, int N)
{
    double s = 0.0;
    for (int i = 0; i < N; i++) {
        double a = fabs(x[i]);
        if (!(a <= s))
            s = a;   /* also takes NaN */
    }
    return s;
}

/* max row sum of |A| on the compressed rows (NaN when A holds one) */
static double csr_norm_inf(const model_int_work *W, const double *v)
{
    double nrm = 0.0;
    for (int r = 0; r < W->N; r++) {
        double s = 0.0;
        for (int p = W->rowptr[r]; p < W->rowptr[r + 1]; p++)
            s += fabs(v[p]);
        if (!(s <= nrm))
            nrm = s;   /* also takes NaN */
    }
    return nrm;
}

/* Largest norm of A tau per sub-step of the Taylor action: Al-Mohy and
 * Higham's theta_30 for double precision; the series then converges in
 * at most ~30 terms, losing at most e^3.5 ulps to cancellation. */
#define ACTION_THETA 3.5
#define ACTION_MAX_TERMS 60
/* the series is cut where two terms in a row fall below this part of the sum */
#define ACTION_TOL 1.1102230246251565e-16 /* 2^-53 */

/* Sub-steps of the action of exp(A tau), from ||A tau||_inf */
static int action_substeps(double eta)
{
    if (!(eta <= 1e12))
        return -1;
    return eta <= ACTION_THETA ? 1 : (int)ceil(eta / ACTION_THETA);
}

/* z <- exp(A tau) z by the truncated Taylor series in s sub-steps
 * (Al-Mohy & Higham 2011 without their shift): the propagator itself is
 * never formed; each term is one pass over the non-zeros that also adds it
 * to z and takes the norms of the stopping test. */
static void expm_action(model_int_work *W, const double *v, double tau, int s, double *z)
{
    const int N = W->N;
    const int *rowptr = W->rowptr, *col = W->col;
    const double h = tau / s;
    double *t = W->w1, *t2 = W->w2;
    for (int i = 0; i < s; i++) {
        memcpy(t, z, sizeof(double) * N);
        double c1 = norm_inf_vec(t, N);
        for (int k = 1; k <= ACTION_MAX_TERMS; k++) {
            const double hk = h / k;
            double ct = 0.0, cz = 0.0;
            for (int r = 0; r < N; r++) {
                double a = 0.0;
                for (int p = rowptr[r]; p < rowptr[r + 1]; p++)
                    a += v[p] * t[col[p]];
                a *= hk;
                t2[r] = a;
                z[r] += a;
                const double fa = fabs(a), fz = fabs(z[r]);
                ct = fa > ct ? fa : ct;
                cz = fz > cz ? fz : cz;
            }
            double *sw = t;
            t = t2;
            t2 = sw;
            if (!(c1 + ct > ACTION_TOL * cz))
                break;   /* converged, or NaN: the caller's norm test sees it */
            c1 = ct;
        }
    }
}

/* The small kernels' loops are written to be vectorised; -O2 of GCC 12
 * vectorises only loops without run-time checks, so ask for it here. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define VECTORISE __attribute__((optimize("tree-vectorize"), target_clones("avx2", "default")))
#elif defined(__GNUC__) && !defined(__clang__)
#define VECTORISE __attribute__((optimize("tree-vectorize")))
#else
#define VECTORISE
#endif

/* rows summed at once in registers by the small products: two 4-double
 * vectors (GNU C vector extensions, the plain loop elsewhere) */
#define ROWS 8
#if defined(__GNUC__)
typedef double v4d __attribute__((vector_size(32)));
/* acc[0..7] += a[0..7] * b, each lane as the scalar a[r] * b + acc[r] */
#define ROWS_FMA(acc0, acc1, a, b)                                                    \
    do {                                                                              \
        const v4d bb_ = {(b), (b), (b), (b)};                                         \
        v4d a0_, a1_;                                                                 \
        memcpy(&a0_, (a), sizeof a0_);                                                \
        memcpy(&a1_, (a) + 4, sizeof a1_);                                            \
        acc0 += a0_ * bb_;                                                            \
        acc1 += a1_ * bb_;                                                            \
    } while (0)
#define ROWS_DECL(acc0, acc1) v4d acc0 = {0.0, 0.0, 0.0, 0.0}, acc1 = acc0
#define ROWS_STORE(c, acc0, acc1)                                                     \
    do {                                                                              \
        memcpy((c), &acc0, sizeof acc0);                                              \
        memcpy((c) + 4, &acc1, sizeof acc1);                                          \
    } while (0)
#else
#define ROWS_DECL(acc0, acc1) double acc0[ROWS] = {0.0}; double *acc1 = acc0 + 4
#define ROWS_FMA(acc0, acc1, a, b)                                                    \
    do {                                                                              \
        for (int r_ = 0; r_ < ROWS; r_++)                                             \
            acc0[r_] += (a)[r_] * (b);                                                \
    } while (0)
#define ROWS_STORE(c, acc0, acc1) memcpy((c), acc0, sizeof(double) * ROWS)
#endif

/* Up to this order the plain loops beat a BLAS call (measured on the
 * development machine: call overhead and locking dominate at N = 16). */
#define SMALL_N 20

/* Multiply-adds of forming exp(A tau) by Pade: ~12 products of order N,
 * counted at a quarter above SMALL_N, where BLAS runs them ~4x faster. */
static double dense_expm_cost(int N)
{
    double n3 = (double)N * N * N;
    return N > SMALL_N ? 3.0 * n3 : 12.0 * n3;
}

/* ... and of one product of order N, on the same scale */
static double matmul_cost(int N)
{
    return dense_expm_cost(N) / 12.0;
}

/* Multiply-adds of a step of gap bins by the ladder's propagators */
static double ladder_step_cost(int N, int gap)
{
    int digits = 0;
    for (; gap > 0; gap >>= 1)
        digits += gap & 1;
    return digits * (double)N * N;
}

/* Multiply-adds of one Taylor action in s sub-steps (~22 terms each) */
static double action_cost(const model_int_work *W, int s)
{
    return 22.0 * s * (W->nnz + 2.0 * W->N);
}

/* The column profile of the N x N column-major A: column j's non-zeros
 * lie in rows lo[j] <= i < hi[j] (lo = hi = 0 for a zero column), lo and
 * hi = lo + N. The operators are block-triangular (the neural states do not
 * see the haemodynamics, nor one region's haemodynamics another's) and so
 * are their powers and propagators: many exact zeros. */
static void col_profile(const double *A, int N, int *lo)
{
    int *hi = lo + N;
    for (int j = 0; j < N; j++) {
        const double *a = A + (size_t)j * N;
        int f = 0, l = N;
        while (f < N && a[f] == 0.0)
            f++;
        while (l > f && a[l - 1] == 0.0)
            l--;
        lo[j] = f < N ? f : 0;
        hi[j] = f < N ? l : 0;
    }
}

/* C = A B, all N x N column-major, A's column profile in prof (col_profile);
 * plain loops the compiler vectorises (a BLAS call costs more than the
 * product at these sizes). Only exact zeros are skipped: the terms left
 * are summed in the order of the dense loop, so the result is the same. */
VECTORISE static void small_matmul(const double *restrict A, const double *restrict B, double *restrict C,
                         int N, const int *prof)
{
    if (N > SMALL_N) {   /* the vector kernels of BLAS win from here on */
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0, A, N, B, N, 0.0,
                    C, N);
        return;
    }
    const int *lo = prof, *hi = prof + N;
    for (int j = 0; j < N; j++) {
        const double *b = B + (size_t)j * N;
        double *c = C + (size_t)j * N;
        /* blocks of ROWS rows summed in registers (a column summed in
           memory waits on its own stores) */
        int i0 = 0;
        for (; i0 + ROWS <= N; i0 += ROWS) {
            ROWS_DECL(acc0, acc1);
            for (int k = 0; k < N; k++) {
                const double bk = b[k];
                if (bk == 0.0 || hi[k] <= i0 || lo[k] >= i0 + ROWS)
                    continue;
                ROWS_FMA(acc0, acc1, A + (size_t)k * N + i0, bk);
            }
            ROWS_STORE(c + i0, acc0, acc1);
        }
        for (int i = i0; i < N; i++) {
            double acc = 0.0;
            for (int k = 0; k < N; k++)
                if (b[k] != 0.0 && i >= lo[k] && i < hi[k])
                    acc += A[i + (size_t)k * N] * b[k];
            c[i] = acc;
        }
    }
}

/* E = exp(A): Pade (6,6) with scaling and squaring, as vl_expm (the same
 * scaling rule and coefficients) in plain loops with the LU solve done
 * here. Returns 0, or -1 when A is not finite or the denominator singular. */
static int small_expm(const double *A, double *E, int *Eprof, model_int_work *W)
{
    const int N = W->N, q = 6;
    const size_t NN = (size_t)N * N;
    double *X = W->pa, *T = W->pb, *Nm = W->pc, *Dm = W->pd, *S = W->pn;
    double norm = 0.0;
    for (int c = 0; c < N; c++) {
        double r = 0.0;
        for (int i = 0; i < N; i++)
            r += fabs(A[i + (size_t)c * N]);
        if (!isfinite(r))
            return -1;
        norm = fmax(norm, r);
    }
    int e = 0;
    (void)frexp(norm, &e);
    const int s = e + 1 > 0 ? e + 1 : 0;
    const double scale = ldexp(1.0, -s);
    for (size_t l = 0; l < NN; l++)
        X[l] = T[l] = A[l] * scale;
    double c = 0.5;
    for (size_t l = 0; l < NN; l++) {
        Nm[l] = c * T[l];
        Dm[l] = -c * T[l];
    }
    for (int i = 0; i < N; i++) {
        Nm[i + (size_t)i * N] += 1.0;
        Dm[i + (size_t)i * N] += 1.0;
    }
    int positive = 1;
    col_profile(T, N, W->prof);
    for (int k = 2; k <= q; k++) {
        c = c * (q - k + 1) / (k * (2.0 * q - k + 1));
        small_matmul(T, X, S, N, W->prof);
        memcpy(X, S, sizeof(double) * NN);
        for (size_t l = 0; l < NN; l++) {
            double cx = c * X[l];
            Nm[l] += cx;
            Dm[l] += positive ? cx : -cx;
        }
        positive = !positive;
    }
    /* LU of Dm with partial pivoting (column-major, in place) */
    for (int k = 0; k < N; k++) {
        int p = k;
        double big = fabs(Dm[k + (size_t)k * N]);
        for (int i = k + 1; i < N; i++)
            if (fabs(Dm[i + (size_t)k * N]) > big) {
                big = fabs(Dm[i + (size_t)k * N]);
                p = i;
            }
        if (!(big > 0.0))
            return -1;
        W->piv[k] = p;
        if (p != k)
            for (int j = 0; j < N; j++) {
                double t = Dm[k + (size_t)j * N];
                Dm[k + (size_t)j * N] = Dm[p + (size_t)j * N];
                Dm[p + (size_t)j * N] = t;
            }
        const double d = Dm[k + (size_t)k * N];
        for (int i = k + 1; i < N; i++)
            Dm[i + (size_t)k * N] /= d;
        for (int j = k + 1; j < N; j++) {
            const double f = Dm[k + (size_t)j * N];
            if (f == 0.0)
                continue;
            double *dj = Dm + (size_t)j * N;
            const double *dk = Dm + (size_t)k * N;
            for (int i = k + 1; i < N; i++)
                dj[i] -= dk[i] * f;
        }
    }
    /* solve Dm E = Nm: the row interchanges, then L and U */
    for (int k = 0; k < N; k++)
        if (W->piv[k] != k)
            for (int j = 0; j < N; j++) {
                double t = Nm[k + (size_t)j * N];
                Nm[k + (size_t)j * N] = Nm[W->piv[k] + (size_t)j * N];
                Nm[W->piv[k] + (size_t)j * N] = t;
            }
    if (N > SMALL_N) {
        cblas_dtrsm(CblasColMajor, CblasLeft, CblasLower, CblasNoTrans, CblasUnit, N, N, 1.0, Dm, N,
                    Nm, N);
        cblas_dtrsm(CblasColMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, N, N, 1.0, Dm,
                    N, Nm, N);
    } else {
        for (int j = 0; j < N; j++) {
            double *b = Nm + (size_t)j * N;
            for (int k = 0; k < N; k++) {
                const double bk = b[k];
                if (bk == 0.0)
                    continue;   /* only zeros to subtract */
                const double *lk = Dm + (size_t)k * N;
                for (int i = k + 1; i < N; i++)
                    b[i] -= lk[i] * bk;
            }
            for (int k = N - 1; k >= 0; k--) {
                b[k] /= Dm[k + (size_t)k * N];
                const double bk = b[k];
                if (bk == 0.0)
                    continue;
                const double *uk = Dm + (size_t)k * N;
                for (int i = 0; i < k; i++)
                    b[i] -= uk[i] * bk;
            }
        }
    }
    for (int k = 0; k < s; k++) {
        col_profile(Nm, N, W->prof);
        small_matmul(Nm, Nm, S, N, W->prof);
        memcpy(Nm, S, sizeof(double) * NN);
    }
    memcpy(E, Nm, sizeof(double) * NN);
    col_profile(E, N, Eprof);
    return 0;
}

/* z <- E z for a dense propagator E (column-major, its profile in prof) */
VECTORISE static void dense_apply(const double *restrict E, const int *prof, double *restrict z,
                                  double *restrict z2, int N)
{
    if (N > SMALL_N) {
        cblas_dgemv(CblasColMajor, CblasNoTrans, N, N, 1.0, E, N, z, 1, 0.0, z2, 1);
        memcpy(z, z2, sizeof(double) * N);
        return;
    }
    (void)prof;
    int i0 = 0;
    for (; i0 + ROWS <= N; i0 += ROWS) {   /* as small_matmul */
        ROWS_DECL(acc0, acc1);
        for (int j = 0; j < N; j++)
            ROWS_FMA(acc0, acc1, E + (size_t)j * N + i0, z[j]);
        ROWS_STORE(z2 + i0, acc0, acc1);
    }
    for (int i = i0; i < N; i++) {
        double acc = 0.0;
        for (int j = 0; j < N; j++)
            acc += E[i + (size_t)j * N] * z[j];
        z2[i] = acc;
    }
    memcpy(z, z2, sizeof(double) * N);
}

/* Propagate z over tau with the operator whose non-zeros are v (its dense
 * form in Jd, for the formed propagator): the Taylor action, or for stiff
 * steps — where the action needs many sub-steps — exp(A tau) formed by
 * Pade. Returns 0, or -1 for a non-finite operator. */
static int step_once(model_int_work *W, const double *v, double *Jd, double tau, double *z)
{
    const int N = W->N;
    int s = action_substeps(tau * csr_norm_inf(W, v));
    if (s < 0)
        return -1;
    int dense = W->kernel == MODEL_INT_KERNEL_DENSE ||
                (W->kernel == MODEL_INT_KERNEL_AUTO && action_cost(W, s) > dense_expm_cost(N));
    if (!dense) {
        expm_action(W, v, tau, s, z);
        return 0;
    }
    const size_t NN = (size_t)N * N;
    memset(Jd, 0, sizeof(double) * NN);
    for (int p = 0; p < W->nnz; p++)
        Jd[W->pos[p]] = v[p] * tau;
    if (small_expm(Jd, W->Et, W->eprof, W))
        return -1;
    dense_apply(W->Et, W->eprof, z, W->z2, N);
    return 0;
}

/* Gather the values of the dense operator Jd on the pattern */
static void gather(const model_int_work *W, const double *Jd, double *v)
{
    for (int p = 0; p < W->nnz; p++)
        v[p] = Jd[W->pos[p]];
}

/* SPM's test on the whole state; a subsystem adds the bound on the states
 * it leaves out and, when the sum passes, cannot tell (MODEL_INT_UNSURE) */
static int diverged(const double *z, model_int_work *W)
{
    double nrm = norm1_lanes(z, W->N);
    if (nrm > W->max_norm)
        W->max_norm = nrm * (1.0 + 1e-12);   /* a bound on the exact norm */
    if (W->sub_region >= 0)
        nrm += W->other_norm;
    if (nrm <= MODEL_INT_DIVERGENCE_NORM * (1.0 - 1e-9))
        return MODEL_INT_OK;
    nrm = norm1(z, W->N);   /* near the limit or past it: SPM's sum decides */
    if (W->sub_region >= 0)
        return nrm + W->other_norm <= MODEL_INT_DIVERGENCE_NORM ? MODEL_INT_OK
               : isfinite(nrm)                        ? MODEL_INT_UNSURE
                                                      : MODEL_INT_FAILED;
    if (nrm <= MODEL_INT_DIVERGENCE_NORM)
        return MODEL_INT_OK;
    return isfinite(nrm) ? MODEL_INT_DIVERGED : MODEL_INT_FAILED;
}

static int predict_bilinear(const model_dcm *M, const double *P, double *y,
                            model_int_work *W)
{
    const int N = W->N;
    const size_t NN = (size_t)N * N;
    const double dt = M->TR / MODEL_DCM_MICROTIME;
    bireduce(M, P, W->M0, W->M1, W);
    const double *ops[2] = {W->M0, W->M1};
    const size_t count[2] = {1, (size_t)M->m};
    pattern_union(W, ops, count, 2);
    for (int p = 0; p < W->npat; p++) {
        input_jacobian(M, W->patterns + (size_t)p * M->m, W->Jp + p * NN, W);
        gather(W, W->Jp + p * NN, W->val + p * NN);
    }
    /* Inputs are blocks and samples regular: a handful of (input, gap)
       pairs cover every step. A pattern's propagators over 1, 2, 4, ...
       bins are formed when its steps use them often enough to pay for it
       (a step then costs a product per binary digit of its gap), else its
       steps are Taylor actions. */
    double *action = W->pat_cost;
    for (int p = 0; p < W->npat; p++)
        action[p] = 0.0;
    for (int k = 0; k < W->nkey; k++) {
        if (W->key_gap[k] == 0)
            continue;
        const double tau = W->key_gap[k] * dt;
        const double *v = W->val + (size_t)W->key_pattern[k] * NN;
        int s = action_substeps(tau * csr_norm_inf(W, v));
        if (s < 0)
            return MODEL_INT_FAILED;
        W->key_s[k] = s;
        action[W->key_pattern[k]] += W->key_uses[k] * (action_cost(W, s) - ladder_step_cost(N, W->key_gap[k]));
    }
    for (int p = 0; p < W->npat; p++) {
        const int lev = W->pat_levels[p];
        W->pat_ladder[p] = lev > 0 && (W->kernel == MODEL_INT_KERNEL_DENSE ||
                                       (W->kernel == MODEL_INT_KERNEL_AUTO &&
                                        action[p] > dense_expm_cost(N) + (lev - 1) * matmul_cost(N)));
    }
    for (int p = 0; p < W->npat; p++) {
        if (!W->pat_ladder[p])
            continue;
        /* exp(J dt) first: with J dt 2^i scaled by 2^-s as small_expm
           does, the rungs are the very propagators it would form over
           2^i bins whenever its scaling takes at least i squarings */
        const double *J = W->Jp + (size_t)p * NN;
        double *L = W->lad + (size_t)p * W->nlev * NN;
        int *Lp = W->lprof + (size_t)p * W->nlev * 2 * N;
        for (size_t l = 0; l < NN; l++)
            W->Et[l] = J[l] * dt;
        if (small_expm(W->Et, L, Lp, W))
            return MODEL_INT_FAILED;
        for (int i = 1; i < W->pat_levels[p]; i++) {
            small_matmul(L + (i - 1) * NN, L + (i - 1) * NN, L + i * NN, N, Lp + (i - 1) * 2 * N);
            col_profile(L + i * NN, N, Lp + i * 2 * N);
        }
    }
    double *z = W->z;
    memset(z, 0, sizeof(double) * N);
    z[0] = 1.0;
    for (int e = 0; e < W->nev; e++) {
        const int_event *E = &W->ev[e];
        if (E->nsamp)
            observe(M, P, E, z, y, W);
        if (E->gap == 0)
            continue;
        const int k = E->key, p = W->key_pattern[k];
        if (W->pat_ladder[p]) {
            const double *L = W->lad + (size_t)p * W->nlev * NN;
            const int *Lp = W->lprof + (size_t)p * W->nlev * 2 * N;
            for (int i = W->pat_levels[p] - 1; i >= 0; i--)
                if (E->gap >> i & 1)
                    dense_apply(L + i * NN, Lp + i * 2 * N, z, W->z2, N);
        } else
            expm_action(W, W->val + (size_t)W->key_pattern[k] * NN, E->gap * dt, W->key_s[k], z);
        int rc = diverged(z, W);
        if (rc)
            return rc;
    }
    return MODEL_INT_OK;
}

static int predict_nonlinear_D(const model_dcm *M, const double *P, double *y,
                               model_int_work *W)
{
    const int N = W->N, n = M->n, m = M->m;
    const size_t NN = (size_t)N * N;
    const double dt = M->TR / MODEL_DCM_MICROTIME;
    bireduce(M, P, W->M0, W->M1, W);
    soreduce_states(M, P, W);
    const double *ops[3] = {W->M0, W->M1, W->M2};
    const size_t count[3] = {1, (size_t)m, (size_t)n};
    pattern_union(W, ops, count, 3);
    /* the operators on the non-zeros, each contiguous */
    const int nnz = W->nnz;
    for (int o = 0; o < 1 + m + n; o++) {
        const double *A = o == 0 ? W->M0 : o <= m ? W->M1 + (size_t)(o - 1) * NN
                                                  : W->M2 + (size_t)(o - 1 - m) * NN;
        double *g = W->opv + (size_t)o * nnz;
        W->op_on[o] = 0;
        for (int q = 0; q < nnz; q++) {
            g[q] = A[W->pos[q]];
            W->op_on[o] |= g[q] != 0.0;
        }
    }
    double *z = W->z, *v = W->vt;
    memset(z, 0, sizeof(double) * N);
    z[0] = 1.0;
    for (int e = 0; e < W->nev; e++) {
        const int_event *E = &W->ev[e];
        const double *u = M->u + (size_t)E->bin * m;
        /* J = M0 + sum_j u_j M1_j + sum_j x_j M2_j on the non-zeros: each
           entry summed in the order of the dense form (an operator without
           non-zeros adds only zeros) */
        memcpy(v, W->opv, sizeof(double) * nnz);
        for (int o = 1; o < 1 + m + n; o++) {
            const double c = o <= m ? u[o - 1] : z[o - m];
            if (!W->op_on[o] || (o <= m && c == 0.0))
                continue;
            const double *g = W->opv + (size_t)o * nnz;
            for (int q = 0; q < nnz; q++)
                v[q] += c * g[q];
        }
        if (E->nsamp)
            observe(M, P, E, z, y, W);
        if (E->gap == 0)
            continue;
        if (step_once(W, v, W->Jt, E->gap * dt, z))
            return MODEL_INT_FAILED;
        int rc = diverged(z, W);
        if (rc)
            return rc;
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
        if (!(norm1(W->z, W->N) <= MODEL_INT_DIVERGENCE_NORM)) {
            rc = MODEL_INT_DIVERGED;
            break;
        }
    }
    gsl_odeiv2_driver_free(d);
    return rc;
}

void model_int_set_kernel(model_int_work *W, int kernel)
{
    W->kernel = kernel;
}

int model_int_predict(const model_dcm *M, const double *P, double *y,
                      model_int_work *W)
{
    W->states_ok = 0;
    W->max_norm = 1.0;   /* z starts at [1; 0] */
    memset(y, 0, sizeof(double) * (size_t)M->v * M->n);
    for (int i = 0; i < M->L.np; i++)
        if (!isfinite(P[i]))
            return MODEL_INT_FAILED;
    set_map(W, M, full_map(M));
    model_dcm_bold_coeffs(M, P, W->bold_k);
    int rc = M->integrator == MODEL_INT_ODE ? predict_ode(M, P, y, W)
             : M->nonlinear                 ? predict_nonlinear_D(M, P, y, W)
                                            : predict_bilinear(M, P, y, W);
    W->states_ok = rc == MODEL_INT_OK;
    if (M->integrator == MODEL_INT_ODE)
        W->max_norm = INFINITY;   /* not followed between the steps */
    return rc;
}

int model_int_observe(const model_dcm *M, const double *P, double *y, model_int_work *W)
{
    if (!W->states_ok)
        return -1;
    memset(y, 0, sizeof(double) * (size_t)M->v * M->n);
    model_dcm_bold_coeffs(M, P, W->bold_k);
    for (int e = 0; e < W->nev; e++) {
        const int_event *E = &W->ev[e];
        if (!E->nsamp)
            continue;
        const double *z = W->zs + (size_t)E->slot * W->N;
        for (int r = 0; r < E->nsamp; r++) {
            const int j = W->samp_regions[E->samp_off + r];
            y[E->scan + (size_t)j * M->v] = model_dcm_bold(W->bold_k, z[W->pos_v[j]], z[W->pos_q[j]]);
        }
    }
    return 0;
}

double model_int_max_norm(const model_int_work *W)
{
    return W->states_ok ? W->max_norm : INFINITY;
}

int model_int_predict_region(const model_dcm *M, const double *P, int region, double other_norm,
                             double *y, model_int_work *W)
{
    const int n = M->n;
    if (M->integrator != MODEL_INT_BILINEAR || region < 0 || region >= n ||
        !(other_norm <= MODEL_INT_DIVERGENCE_NORM))
        return MODEL_INT_UNSURE;
    for (int i = 0; i < M->L.np; i++)
        if (!isfinite(P[i]))
            return MODEL_INT_FAILED;
    set_map(W, M, region);
    model_dcm_bold_coeffs(M, P, W->bold_k);
    W->other_norm = other_norm;
    W->states_ok = 0;
    W->max_norm = 1.0;
    memset(y + (size_t)region * M->v, 0, sizeof(double) * (size_t)M->v);
    int rc = M->nonlinear ? predict_nonlinear_D(M, P, y, W) : predict_bilinear(M, P, y, W);
    set_map(W, M, full_map(M));   /* back to the full system */
    return rc;
}
