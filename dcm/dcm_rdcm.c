/* dcm_rdcm.c — rDCM and sparse rDCM estimation, regions in threads (see
 * dcm_rdcm.h). */
#include "dcm/dcm_rdcm.h"

#include "dcm/dcm_api.h"

#include <math.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Static_assert(MODEL_RDCM_NTERMS == 7, "dcm_rdcm_result.F_terms holds 7 terms per region");

/* TAPAS scales the reported C of empirical data by 16 (its micro-time
 * resolution, hard-coded there). */
#define TAPAS_EMPIRICAL_C_SCALE 16.0
/* the constant's prior precision in rDCM (in sparse rDCM it is 1) */
#define RIDGE_BASELINE_PRECISION 1e-8

/* One region's posterior at one p0 (only diagonals: a full Sigma per
 * region and p0 would not fit in memory for hundreds of regions). */
typedef struct {
    double *mu, *z, *var;   /* D each */
    double *Sigma;          /* D x D when the caller keeps covariances, else NULL */
    double aN, bN, F, terms[MODEL_RDCM_NTERMS];
    int iterations;
} region_fit;

typedef struct {
    int D, bins;
    int *cols;              /* D regressor columns (model_rdcm.h numbering) */
    region_fit *fit;        /* one per p0 (rDCM: one) */
} region_out;

typedef struct {
    const model_rdcm_spectra *S;
    const dcm_rdcm_options *opt;
    const double *a, *c;
    int n, m, np0, Dmax;
    int keep_cov;           /* keep each fit's full Sigma (region_fit.Sigma) */
    const double *grid;
    double input_scale;
    region_out *reg;
    atomic_int next;
    pthread_mutex_t lock;
    int rc;
    dcm_error err;
} rdcm_job;

void dcm_rdcm_default_grid(double *p0)
{
    for (int k = 0; k < DCM_RDCM_GRID_DEFAULT; k++)
        /* as Octave's range 0.05:0.05:0.95 (TAPAS): base + k inc, so the
           third is 0.15000000000000002, with the last clamped to the
           limit (0.95, not 0.9500000000000001) */
        p0[k] = fmin(0.05 + k * 0.05, 0.95);
}

int dcm_rdcm_events_to_inputs(int nev, const double *onset, const double *duration,
                              const int *input, int m, int Nu, double dt, double *u,
                              dcm_error *err)
{
    memset(u, 0, sizeof(double) * (size_t)Nu * (size_t)m);
    for (int e = 0; e < nev; e++) {
        if (input[e] < 0 || input[e] >= m || !isfinite(onset[e]) || !isfinite(duration[e]) ||
            duration[e] < 0)
            return dcm_error_set(err, DCM_ERR_INPUT,
                                 "event %d: needs an input 1..%d, a finite onset and a duration "
                                 ">= 0 (got input %d, onset %g, duration %g)",
                                 e + 1, m, input[e] + 1, onset[e], duration[e]);
        double k0 = round(onset[e] / dt), k1 = round((onset[e] + duration[e]) / dt);
        for (double k = fmax(k0, 0); k < k1 && k < Nu; k++)
            u[(size_t)input[e] * Nu + (size_t)k] = 1.0;
    }
    return DCM_OK;
}

/* The regressors of region k: rDCM the pattern (self always), then its
 * inputs, then (empirical) the constant; sparse rDCM all of them. */
static int region_columns(const rdcm_job *J, int k, int *cols)
{
    int n = J->n, m = J->m, D = 0, sparse = J->opt->method == DCM_RDCM_SPARSE;
    for (int j = 0; j < n; j++)
        if (sparse || j == k || J->a[k + (size_t)n * j] != 0)
            cols[D++] = j;
    for (int i = 0; i < m; i++)
        if (sparse || J->c[k + (size_t)n * i] != 0)
            cols[D++] = n + i;
    if (sparse || J->opt->data == DCM_RDCM_EMPIRICAL)
        cols[D++] = n + m;
    return D;
}

static void keep_fit(region_fit *dst, const model_rdcm_fit *src)
{
    int D = src->D;
    memcpy(dst->mu, src->mu, sizeof(double) * (size_t)D);
    memcpy(dst->z, src->z, sizeof(double) * (size_t)D);
    for (int i = 0; i < D; i++)
        dst->var[i] = src->Sigma[i + (size_t)D * i];
    if (dst->Sigma)
        memcpy(dst->Sigma, src->Sigma, sizeof(double) * (size_t)D * D);
    dst->aN = src->aN, dst->bN = src->bN, dst->F = src->F, dst->iterations = src->iterations;
    memcpy(dst->terms, src->terms, sizeof dst->terms);
}

/* Per-thread buffers. */
typedef struct {
    model_rdcm_ws *ws;
    model_rdcm_fit fit, best;
    double *W, *v, *m0, *l0, *p0, *work;
} worker_buf;

static void worker_free(worker_buf *b)
{
    model_rdcm_ws_free(b->ws);
    model_rdcm_fit_free(&b->fit);
    model_rdcm_fit_free(&b->best);
    free(b->W);
    free(b->v);
    free(b->m0);
    free(b->l0);
    free(b->p0);
    free(b->work);
}

static int worker_alloc(worker_buf *b, int Dmax, int N)
{
    memset(b, 0, sizeof *b);
    size_t D = (size_t)Dmax;
    b->ws = model_rdcm_ws_alloc(Dmax);
    b->W = malloc(sizeof(double) * D * D);
    b->v = malloc(sizeof(double) * D);
    b->m0 = malloc(sizeof(double) * D);
    b->l0 = malloc(sizeof(double) * D);
    b->p0 = malloc(sizeof(double) * D);
    b->work = malloc(sizeof(double) * (size_t)N * (D + 1));
    if (!b->ws || !b->W || !b->v || !b->m0 || !b->l0 || !b->p0 || !b->work ||
        model_rdcm_fit_alloc(&b->fit, Dmax) || model_rdcm_fit_alloc(&b->best, Dmax)) {
        worker_free(b);
        return -1;
    }
    return 0;
}

/* Sparse rDCM's prior inclusion probabilities of region k's regressors. */
static void inclusion_prior(const rdcm_job *J, int k, double p0, double *pz)
{
    int n = J->n, m = J->m;
    for (int j = 0; j < n; j++)
        pz[j] = j == k ? 1.0 : p0;
    for (int i = 0; i < m; i++)
        pz[n + i] = J->c[k + (size_t)n * i] != 0 ? 1.0 : 0.0;
    pz[n + m] = J->opt->data == DCM_RDCM_EMPIRICAL ? 1.0 : 0.0;
}

static int fit_region(rdcm_job *J, int k, worker_buf *b)
{
    region_out *R = &J->reg[k];
    int D = R->D;
    const dcm_rdcm_options *o = J->opt;
    int sparse = o->method == DCM_RDCM_SPARSE;
    double yy;
    model_rdcm_normal(J->S, k, R->cols, D, J->input_scale, b->W, b->v, &yy, &R->bins, b->work);
    model_rdcm_priors(J->n, J->m, k, R->cols, D, sparse ? 1.0 : RIDGE_BASELINE_PRECISION, b->m0,
                      b->l0);
    b->fit.D = b->best.D = D;
    if (!sparse) {
        int rc = model_rdcm_ridge(b->W, b->v, yy, R->bins, b->m0, b->l0, D, b->ws, &b->fit, NULL);
        if (rc == DCM_OK)
            keep_fit(&R->fit[0], &b->fit);
        return rc;
    }
    int restarts = o->order == DCM_RDCM_ORDER_FIXED ? 1 : o->restarts;
    for (int p = 0; p < J->np0; p++) {
        inclusion_prior(J, k, J->grid[p], b->p0);
        /* one stream per region and p0 value (not grid position): a p0's
         * result does not depend on the rest of the grid or on threads */
        uint64_t bits;
        memcpy(&bits, &J->grid[p], sizeof bits);
        model_rdcm_rng rng;
        model_rdcm_rng_seed(&rng, o->seed, ((uint64_t)k << 40) ^ bits);
        for (int s = 0; s < restarts; s++) {
            int rc = model_rdcm_sparse(b->W, b->v, yy, R->bins, b->m0, b->l0, b->p0, D,
                                       o->order == DCM_RDCM_ORDER_FIXED ? NULL : &rng, s > 0, b->ws,
                                       &b->fit, NULL);
            if (rc != DCM_OK)
                return rc;
            if (s == 0 || b->fit.F > b->best.F)   /* the first on ties */
                model_rdcm_fit_copy(&b->best, &b->fit);
        }
        keep_fit(&R->fit[p], &b->best);
    }
    return DCM_OK;
}

static void *worker(void *arg)
{
    rdcm_job *J = arg;
    worker_buf b;
    if (worker_alloc(&b, J->Dmax, J->S->N)) {
        pthread_mutex_lock(&J->lock);
        if (J->rc == DCM_OK)
            J->rc = dcm_error_set(&J->err, DCM_ERR_SYSTEM, "rDCM: out of memory for a worker");
        pthread_mutex_unlock(&J->lock);
        return NULL;
    }
    for (;;) {
        int k = atomic_fetch_add(&J->next, 1);
        if (k >= J->n)
            break;
        pthread_mutex_lock(&J->lock);
        int stop = J->rc != DCM_OK;
        pthread_mutex_unlock(&J->lock);
        if (stop)
            break;
        int rc = fit_region(J, k, &b);
        if (rc != DCM_OK) {
            pthread_mutex_lock(&J->lock);
            if (J->rc == DCM_OK && rc == DCM_ERR_SYSTEM)
                J->rc = dcm_error_set(&J->err, rc, "rDCM: out of memory fitting region %d", k + 1);
            else if (J->rc == DCM_OK)
                J->rc = dcm_error_set(&J->err, rc,
                                      "rDCM: the posterior precision of region %d is not positive "
                                      "definite; check the region's series for extreme values",
                                      k + 1);
            pthread_mutex_unlock(&J->lock);
            break;
        }
    }
    worker_free(&b);
    return NULL;
}

static int check_input(const double *Y, int N, int n, double TR, const double *u, size_t st,
                       size_t si, int m, int r, const double *a, const double *c,
                       const dcm_rdcm_options *o, dcm_error *err)
{
    char buf[256];
    if (!Y || N < 1 || n < 1 || !a || (m > 0 && (!u || !c)) || m < 0 || r < 1 || !o)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "rDCM needs data (scans x regions), the a switches, and for m > 0 "
                             "inputs at micro-time, the c switches, and r >= 1 bins per scan");
    const char *why = dcm_check_tr(TR, buf, sizeof buf);
    if (why)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s", why);
    for (int k = 0; k < n; k++)
        for (int t = 0; t < N; t++)
            if (!isfinite(Y[t + (size_t)N * k]))
                return dcm_error_set(err, DCM_ERR_INPUT,
                                     "region %d, scan %d: value is not finite; rDCM needs "
                                     "complete series (remove or interpolate the scan)", k + 1, t + 1);
    for (size_t t = 0; t < (size_t)N * r; t++)
        for (int i = 0; i < m; i++)
            if (!isfinite(u[t * st + (size_t)i * si]))
                return dcm_error_set(err, DCM_ERR_INPUT, "input %d, micro-time bin %zu: not finite",
                                     i + 1, t + 1);
    if (o->method != DCM_RDCM_RIDGE && o->method != DCM_RDCM_SPARSE)
        return dcm_error_set(err, DCM_ERR_INPUT, "rDCM method must be rdcm or sparse_rdcm");
    if (!(o->filter >= 0) || !isfinite(o->filter))
        return dcm_error_set(err, DCM_ERR_INPUT, "rDCM filter strength must be >= 0 (TAPAS: 5), got %g",
                             o->filter);
    if (o->threads < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "rDCM threads must be >= 1, got %d", o->threads);
    if (o->method == DCM_RDCM_SPARSE) {
        if (o->np0 < 0 || o->np0 > DCM_RDCM_MAX_GRID || (o->np0 > 0 && !o->p0))
            return dcm_error_set(err, DCM_ERR_INPUT, "rDCM p0 grid must have 1..%d values",
                                 DCM_RDCM_MAX_GRID);
        for (int i = 0; i < o->np0; i++)
            if (!(o->p0[i] > 0 && o->p0[i] < 1))
                return dcm_error_set(err, DCM_ERR_INPUT,
                                     "rDCM p0 value %d is %g; a prior inclusion probability must "
                                     "lie strictly between 0 and 1 (TAPAS's grid: 0.05 ... 0.95)",
                                     i + 1, o->p0[i]);
        if (o->restarts < 1)
            return dcm_error_set(err, DCM_ERR_INPUT, "rDCM restarts must be >= 1 (TAPAS: 100), got %d",
                                 o->restarts);
    }
    return DCM_OK;
}

static int result_alloc(dcm_rdcm_result *R, int n, int m, int np0)
{
    size_t nn = (size_t)n * n, nm = (size_t)n * (m > 0 ? m : 1);
    R->Ep_A = calloc(nn, sizeof(double));
    R->Ep_C = calloc(nm, sizeof(double));
    R->Ep_baseline = calloc((size_t)n, sizeof(double));
    R->Var_A = calloc(nn, sizeof(double));
    R->Var_C = calloc(nm, sizeof(double));
    R->Var_baseline = calloc((size_t)n, sizeof(double));
    R->F_regions = calloc((size_t)n, sizeof(double));
    R->F_terms = calloc((size_t)n * MODEL_RDCM_NTERMS, sizeof(double));
    R->aN = calloc((size_t)n, sizeof(double));
    R->bN = calloc((size_t)n, sizeof(double));
    R->iterations = calloc((size_t)n, sizeof(int));
    R->bins = calloc((size_t)n, sizeof(int));
    int ok = R->Ep_A && R->Ep_C && R->Ep_baseline && R->Var_A && R->Var_C && R->Var_baseline &&
             R->F_regions && R->F_terms && R->aN && R->bN && R->iterations && R->bins;
    if (np0 > 0) {
        R->Ip_A = calloc(nn, sizeof(double));
        R->Ip_C = calloc(nm, sizeof(double));
        R->Ip_baseline = calloc((size_t)n, sizeof(double));
        R->p0_grid = calloc((size_t)np0, sizeof(double));
        R->F_per_p0 = calloc((size_t)np0, sizeof(double));
        ok = ok && R->Ip_A && R->Ip_C && R->Ip_baseline && R->p0_grid && R->F_per_p0;
    }
    return ok ? 0 : -1;
}

/* Place region k's fit at p0 index p into the result's A, C, baseline. */
static void place_region(dcm_rdcm_result *R, const region_out *ro, int k, int p, int sparse,
                         double c_scale)
{
    int n = R->n, m = R->m;
    const region_fit *f = &ro->fit[p];
    for (int i = 0; i < ro->D; i++) {
        int col = ro->cols[i];
        double *E, *V, *P, s = 1.0;
        if (col < n) {
            size_t at = k + (size_t)n * col;
            E = R->Ep_A + at, V = R->Var_A + at, P = sparse ? R->Ip_A + at : NULL;
        } else if (col < n + m) {
            size_t at = k + (size_t)n * (col - n);
            E = R->Ep_C + at, V = R->Var_C + at, P = sparse ? R->Ip_C + at : NULL, s = c_scale;
        } else {
            if (!R->has_baseline)
                continue;
            E = R->Ep_baseline + k, V = R->Var_baseline + k, P = sparse ? R->Ip_baseline + k : NULL;
        }
        *E = f->mu[i] * s;
        *V = f->var[i];
        if (P)
            *P = f->z[i];
    }
    R->F_regions[k] = f->F;
    memcpy(R->F_terms + (size_t)k * MODEL_RDCM_NTERMS, f->terms, sizeof f->terms);
    R->aN[k] = f->aN, R->bN[k] = f->bN, R->iterations[k] = f->iterations;
    R->bins[k] = ro->bins;
}

static void regions_free(region_out *reg, int n, int np0)
{
    if (!reg)
        return;
    for (int k = 0; k < n; k++) {
        free(reg[k].cols);
        if (reg[k].fit)
            for (int p = 0; p < np0; p++) {
                free(reg[k].fit[p].mu);
                free(reg[k].fit[p].z);
                free(reg[k].fit[p].var);
                free(reg[k].fit[p].Sigma);
            }
        free(reg[k].fit);
    }
    free(reg);
}

static int regions_alloc(rdcm_job *J)
{
    int n = J->n, np = J->np0;
    J->reg = calloc((size_t)n, sizeof *J->reg);
    if (!J->reg)
        return -1;
    J->Dmax = 1;
    for (int k = 0; k < n; k++) {
        region_out *R = &J->reg[k];
        R->cols = malloc(sizeof(int) * (size_t)(n + J->m + 1));
        R->fit = calloc((size_t)np, sizeof *R->fit);
        if (!R->cols || !R->fit)
            return -1;
        R->D = region_columns(J, k, R->cols);
        if (R->D > J->Dmax)
            J->Dmax = R->D;
        for (int p = 0; p < np; p++) {
            R->fit[p].mu = malloc(sizeof(double) * (size_t)R->D);
            R->fit[p].z = malloc(sizeof(double) * (size_t)R->D);
            R->fit[p].var = malloc(sizeof(double) * (size_t)R->D);
            if (!R->fit[p].mu || !R->fit[p].z || !R->fit[p].var)
                return -1;
            if (J->keep_cov &&
                !(R->fit[p].Sigma = malloc(sizeof(double) * (size_t)R->D * R->D)))
                return -1;
        }
    }
    return 0;
}

static int run_threads(rdcm_job *J, int threads)
{
    if (threads > J->n)
        threads = J->n;
    pthread_t *tid = malloc(sizeof(pthread_t) * (size_t)threads);
    if (!tid)
        return dcm_error_set(&J->err, DCM_ERR_SYSTEM, "rDCM: out of memory for threads");
    int started = 0;
    for (int t = 1; t < threads; t++) {
        if (pthread_create(&tid[t], NULL, worker, J) != 0)
            break;   /* fewer threads: the others share the regions */
        started = t;
    }
    worker(J);
    for (int t = 1; t <= started; t++)
        pthread_join(tid[t], NULL);
    free(tid);
    return J->rc;
}

/* The result's full covariances (opt->keep_covariance): taken over from
 * the fits when J kept them (one p0), else every region fitted again at
 * the chosen p0 alone. The fit of a region at a p0 depends only on the
 * region, the p0 and the seed (its own random stream), so the second fit
 * is the first, bit for bit; memory n D^2, not n D^2 per grid value. */
static int keep_covariances(rdcm_job *J, dcm_rdcm_result *R, int best, const dcm_rdcm_options *opt,
                            dcm_error *err)
{
    const int n = J->n;
    R->Sigma = calloc((size_t)n, sizeof(double *));
    R->Sigma_cols = calloc((size_t)n, sizeof(int *));
    R->Sigma_D = calloc((size_t)n, sizeof(int));
    if (!R->Sigma || !R->Sigma_cols || !R->Sigma_D)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "rDCM: out of memory for %d covariances", n);
    rdcm_job J2, *from = J;
    int p = best, rc = DCM_OK;
    memset(&J2, 0, sizeof J2);
    if (!J->keep_cov) {
        J2.S = J->S, J2.opt = opt, J2.a = J->a, J2.c = J->c, J2.n = n, J2.m = J->m;
        J2.np0 = 1, J2.grid = J->grid + best, J2.input_scale = J->input_scale, J2.keep_cov = 1;
        atomic_init(&J2.next, 0);
        pthread_mutex_init(&J2.lock, NULL);
        if (regions_alloc(&J2))
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "rDCM: out of memory for %d covariances", n);
        else if ((rc = run_threads(&J2, opt->threads)) != DCM_OK && err)
            *err = J2.err;
        from = &J2, p = 0;
    }
    for (int k = 0; rc == DCM_OK && k < n; k++) {
        R->Sigma[k] = from->reg[k].fit[p].Sigma;
        from->reg[k].fit[p].Sigma = NULL;
        R->Sigma_cols[k] = from->reg[k].cols;
        from->reg[k].cols = NULL;
        R->Sigma_D[k] = from->reg[k].D;
    }
    if (from == &J2) {
        pthread_mutex_destroy(&J2.lock);
        regions_free(J2.reg, n, 1);
    }
    return rc;
}

/* dcm_rdcm_estimate with input i, micro-time bin t at u[t st + i si]. */
static int estimate_strided(const double *Y, int N, int n, double TR, const double *u, size_t st,
                            size_t si, int m, int r, const double *a, const double *c,
                            const dcm_rdcm_options *opt, dcm_rdcm_result **out, dcm_error *err);

int dcm_rdcm_estimate(const double *Y, int N, int n, double TR, const double *u, int m, int r,
                      const double *a, const double *c, const dcm_rdcm_options *opt,
                      dcm_rdcm_result **out, dcm_error *err)
{
    return estimate_strided(Y, N, n, TR, u, 1, (size_t)N * (r > 0 ? r : 0), m, r, a, c, opt, out,
                            err);
}

static int estimate_strided(const double *Y, int N, int n, double TR, const double *u, size_t st,
                            size_t si, int m, int r, const double *a, const double *c,
                            const dcm_rdcm_options *opt, dcm_rdcm_result **out, dcm_error *err)
{
    *out = NULL;
    dcm_library_init();   /* GSL error codes, OpenBLAS single-threaded */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = check_input(Y, N, n, TR, u, st, si, m, r, a, c, opt, err);
    if (rc != DCM_OK)
        return rc;
    int sparse = opt->method == DCM_RDCM_SPARSE;
    double grid[DCM_RDCM_GRID_DEFAULT];
    dcm_rdcm_default_grid(grid);
    model_rdcm_spectra S;
    rc = model_rdcm_spectra_build_strided(&S, Y, N, n, TR, u, st, si, m, r, opt->filter,
                                          opt->threads, err);
    if (rc != DCM_OK)
        return rc;
    rdcm_job J;
    memset(&J, 0, sizeof J);
    J.S = &S, J.opt = opt, J.a = a, J.c = c, J.n = n, J.m = m;
    J.np0 = sparse ? (opt->np0 > 0 ? opt->np0 : DCM_RDCM_GRID_DEFAULT) : 1;
    J.grid = sparse && opt->np0 > 0 ? opt->p0 : grid;
    J.input_scale = opt->data == DCM_RDCM_SIMULATED ? 1.0 / r : 1.0;
    /* sparse: the covariances only at the chosen p0 (keep_covariances) */
    J.keep_cov = opt->keep_covariance && J.np0 == 1;
    atomic_init(&J.next, 0);
    pthread_mutex_init(&J.lock, NULL);
    dcm_rdcm_result *R = calloc(1, sizeof *R);
    if (!R || regions_alloc(&J) || result_alloc(R, n, m, sparse ? J.np0 : 0)) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "rDCM: out of memory for %d regions", n);
        goto done;
    }
    rc = run_threads(&J, opt->threads);
    if (rc != DCM_OK) {
        if (err)
            *err = J.err;
        goto done;
    }
    R->n = n, R->m = m, R->method = opt->method;
    R->has_baseline = opt->data == DCM_RDCM_EMPIRICAL;
    int best = 0;
    if (sparse) {
        R->np0 = J.np0;
        for (int p = 0; p < J.np0; p++) {
            R->p0_grid[p] = J.grid[p];
            for (int k = 0; k < n; k++)
                R->F_per_p0[p] += J.reg[k].fit[p].F;
            if (R->F_per_p0[p] > R->F_per_p0[best])   /* the first maximum */
                best = p;
        }
        R->p0_index = best, R->p0 = J.grid[best];
    }
    double c_scale = opt->data == DCM_RDCM_EMPIRICAL ? TAPAS_EMPIRICAL_C_SCALE : 1.0;
    R->F = 0;
    for (int k = 0; k < n; k++) {
        place_region(R, &J.reg[k], k, best, sparse, c_scale);
        R->F += R->F_regions[k];
    }
    if (opt->keep_covariance && (rc = keep_covariances(&J, R, best, opt, err)) != DCM_OK)
        goto done;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    R->seconds = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    *out = R;
    R = NULL;
done:
    pthread_mutex_destroy(&J.lock);
    regions_free(J.reg, n, J.np0);
    dcm_rdcm_result_free(R);
    model_rdcm_spectra_free(&S);
    return rc;
}

/* The prior of every parameter (A then C, model_layout_init_rdcm) as the
 * regression uses it (model_rdcm_priors), with C in reported units. */
static void problem_priors(const dcm_problem *P, int sparse, double c_scale, double *pE, double *pV)
{
    const int n = P->n, m = P->m;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++) {
            size_t k = i + (size_t)n * j;
            int on = sparse || i == j || P->M->a[k] != 0;
            pE[k] = i == j ? -0.5 : 0.0;
            pV[k] = !on ? 0.0 : i == j ? 1.0 / (8.0 * n) : 8.0 / n;
        }
    for (size_t k = 0; k < (size_t)n * m; k++) {
        pE[(size_t)n * n + k] = 0.0;
        pV[(size_t)n * n + k] = P->M->c[k] != 0 ? c_scale * c_scale : 0.0;
    }
}

int dcm_rdcm_estimate_problem(const dcm_problem *P, dcm_result **out, dcm_error *err)
{
    *out = NULL;
    int rc = dcm_problem_validate(P, err);
    if (rc)
        return rc;
    const int n = P->n, m = P->m, v = P->v, r = MODEL_DCM_MICROTIME, Nu = P->M->nu;
    const dcm_rdcm_spec *sp = &P->rdcm;
    dcm_rdcm_options o = DCM_RDCM_OPTIONS_DEFAULT;
    o.method = sp->method ? DCM_RDCM_SPARSE : DCM_RDCM_RIDGE;
    o.data = sp->data ? DCM_RDCM_EMPIRICAL : DCM_RDCM_SIMULATED;
    o.order = sp->order ? DCM_RDCM_ORDER_FIXED : DCM_RDCM_ORDER_RANDOM;
    o.filter = sp->filter, o.np0 = sp->np0, o.p0 = sp->p0, o.restarts = sp->restarts;
    o.seed = sp->seed, o.threads = sp->threads > 0 ? sp->threads : 1;
    o.keep_covariance = sp->keep_covariance;
    if (Nu != v * r)
        return dcm_error_set(err, DCM_ERR_INPUT, "rDCM: %d micro-time bins for %d scans (needs %d)",
                             Nu, v, v * r);
    /* model_dcm keeps u[t*m + j]: read in place, no transposed copy */
    dcm_rdcm_result *X = NULL;
    rc = estimate_strided(P->Y, v, n, P->M->TR, m > 0 ? P->M->u : NULL, (size_t)m, 1, m, r,
                          P->M->a, m > 0 ? P->M->c : NULL, &o, &X, err);
    if (rc) {
        if (err && P->source && !strstr(err->msg, P->source)) {   /* name the spec */
            char msg[2 * sizeof err->msg + 8];
            snprintf(msg, sizeof msg, "%s: %s", P->source, err->msg);
            memcpy(err->msg, msg, sizeof err->msg);
            err->msg[sizeof err->msg - 1] = '\0';
        }
        return rc;
    }
    const int np = n * n + n * m, sparse = o.method == DCM_RDCM_SPARSE;
    const double c_scale = o.data == DCM_RDCM_EMPIRICAL ? TAPAS_EMPIRICAL_C_SCALE : 1.0;
    dcm_result *R = calloc(1, sizeof *R);
    if (!R || !(R->pE = malloc(sizeof(double) * np)) || !(R->pV = malloc(sizeof(double) * np)) ||
        !(R->Ep = malloc(sizeof(double) * np)) || !(R->Eh = malloc(sizeof(double) * n))) {
        dcm_result_free(R);
        dcm_rdcm_result_free(X);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory for the result of %d regions", n);
    }
    R->analysis = DCM_ANALYSIS_RDCM;
    R->rdcm = X;
    R->np = np, R->n = n, R->v = v;
    R->F = X->F;
    problem_priors(P, sparse, c_scale, R->pE, R->pV);
    memcpy(R->Ep, X->Ep_A, sizeof(double) * (size_t)n * n);
    if (m > 0)
        memcpy(R->Ep + (size_t)n * n, X->Ep_C, sizeof(double) * (size_t)n * m);
    int maxit_regions = 0;
    for (int k = 0; k < n; k++) {
        R->Eh[k] = log(X->aN[k] / X->bN[k]);
        if (X->iterations[k] > R->iterations)
            R->iterations = X->iterations[k];
        maxit_regions += X->iterations[k] >= MODEL_RDCM_MAXIT;
    }
    R->converged = maxit_regions == 0;
    R->scale = 1.0;
    R->seconds = X->seconds;
    R->diag = (dcm_diagnostics){NAN, NAN, NAN, -1};
    double amax = 0;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++)
            if (i != j)
                amax = fmax(amax, fabs(X->Ep_A[i + (size_t)n * j]));
    R->diag.max_abs_connection = amax;
    int wrc = dcm_warnings_copy(&R->warnings, &P->warnings);
    if (maxit_regions)
        wrc |= dcm_warnings_add(&R->warnings, "%d region%s stopped at %d VB iterations before the "
                                "free energy settled (TAPAS's limit)", maxit_regions,
                                maxit_regions == 1 ? "" : "s", MODEL_RDCM_MAXIT);
    if (sparse && X->np0 > 1 && (X->p0_index == 0 || X->p0_index == X->np0 - 1))
        wrc |= dcm_warnings_add(&R->warnings, "the chosen p0 (%g) is at the %s end of the grid: the "
                                "best prior inclusion probability may lie beyond it", X->p0,
                                X->p0_index == 0 ? "lower" : "upper");
    if (wrc) {
        dcm_result_free(R);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    *out = R;
    return DCM_OK;
}
