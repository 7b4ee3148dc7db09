/* model_csd_sim.c — resting-state BOLD from a known network (see
 * model_csd_sim.h): fluctuations into the task model's equations. */
#include "models/model_csd_sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_eigen.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "models/model_csd.h"
#include "models/model_dcm.h"
#include "models/model_integrate.h"

void model_csd_sim_defaults(model_csd_sim_opts *o, double TR, double TE, int scans)
{
    memset(o, 0, sizeof *o);
    o->TR = TR;
    o->TE = TE;
    o->scans = scans;
    o->burnin = TR > 0.0 ? (int)ceil(MODEL_CSD_SIM_BURNIN_SECONDS / TR - 1e-9) : 0;
    o->fluct_ar = MODEL_CSD_SIM_FLUCT_AR;
    o->fluct_sd = MODEL_CSD_SIM_FLUCT_SD;
    o->noise_ar = MODEL_CSD_SIM_NOISE_AR;
    o->noise_sd = MODEL_CSD_SIM_NOISE_SD;
    o->seed = 1;
}

/* A stationary AR(1) series of unit variance and lag-one correlation a,
 * times sd, from len standard normal draws (spm_rand_mar's process). */
static void ar1_series(gsl_rng *rng, double a, double sd, int len, double *out, int stride)
{
    const double s = sqrt(1.0 - a * a);
    double e = 0.0;
    for (int t = 0; t < len; t++) {
        double z = gsl_ran_gaussian(rng, 1.0);
        e = t ? a * e + s * z : z;
        out[(size_t)t * stride] = sd * e;
    }
}

/* The task model's parameters (n inputs, C = I) from spectral ones, as
 * model_csd_predict builds them for its Jacobians. */
static void task_params(const model_dcm *M, const double *theta, double *Pd)
{
    const int n = M->n;
    model_csd_layout L;
    model_csd_layout_init(&L, n);
    const model_dcm_layout *LD = &M->L;
    memset(Pd, 0, sizeof(double) * (size_t)LD->np);
    for (int k = 0; k < n * n; k++)
        Pd[LD->off_A + k] = theta[L.off_A + k];
    for (int i = 0; i < n; i++) {
        Pd[model_dcm_idx_C(LD, i, i)] = 1.0;
        Pd[LD->off_transit + i] = theta[L.off_transit + i];
    }
    Pd[LD->off_decay] = theta[L.off_decay];
    Pd[LD->off_epsilon] = theta[L.off_epsilon];
}

/* Largest real part of the eigenvalues of df/dx at rest; NAN when the
 * eigen-solver fails or memory runs out. */
static double rest_max_re(const model_dcm *M, const double *Pd)
{
    const int nx = model_dcm_nstates(M);
    double *x = calloc((size_t)nx, sizeof(double)), *u = calloc((size_t)M->m, sizeof(double));
    double *f = malloc(sizeof(double) * (size_t)nx), *J = malloc(sizeof(double) * (size_t)nx * nx);
    double *work = malloc(sizeof(double) * (model_dcm_fx_work(M) + 1));
    gsl_matrix *G = gsl_matrix_alloc((size_t)nx, (size_t)nx);
    gsl_vector_complex *ev = gsl_vector_complex_alloc((size_t)nx);
    gsl_eigen_nonsymm_workspace *ws = gsl_eigen_nonsymm_alloc((size_t)nx);
    double best = NAN;
    if (x && u && f && J && work && G && ev && ws) {
        model_dcm_fx(M, Pd, x, u, f, J, NULL, work);
        for (int i = 0; i < nx; i++)
            for (int j = 0; j < nx; j++)
                gsl_matrix_set(G, (size_t)i, (size_t)j, J[i + (size_t)j * nx]);
        if (gsl_eigen_nonsymm(G, ev, ws) == 0) {
            best = -INFINITY;
            for (int i = 0; i < nx; i++)
                best = fmax(best, GSL_REAL(gsl_vector_complex_get(ev, (size_t)i)));
        }
    }
    if (ws)
        gsl_eigen_nonsymm_free(ws);
    gsl_vector_complex_free(ev);
    gsl_matrix_free(G);
    free(x);
    free(u);
    free(f);
    free(J);
    free(work);
    return best;
}

static int check_opts(int n, const model_csd_sim_opts *o)
{
    if (n < 1 || o->scans < 1 || o->burnin < 0 || o->scans > 10000000 - o->burnin)
        return MODEL_CSD_SIM_BADARG;
    if (!(o->TR > 0.0) || !isfinite(o->TR) || !(o->TE > 0.0) || !isfinite(o->TE))
        return MODEL_CSD_SIM_BADARG;
    if (!(o->fluct_ar >= 0.0 && o->fluct_ar < 1.0) || !(o->noise_ar >= 0.0 && o->noise_ar < 1.0))
        return MODEL_CSD_SIM_BADARG;
    if (!(o->fluct_sd >= 0.0) || !isfinite(o->fluct_sd) || !(o->noise_sd >= 0.0) ||
        !isfinite(o->noise_sd) || !(o->snr >= 0.0) || isnan(o->snr))
        return MODEL_CSD_SIM_BADARG;
    return MODEL_CSD_SIM_OK;
}

int model_csd_simulate(int n, const double *theta, const model_csd_sim_opts *o, double *y,
                       double *signal, double *max_re)
{
    if (max_re)
        *max_re = NAN;
    int rc = check_opts(n, o);
    if (rc)
        return rc;
    model_csd_layout L;
    model_csd_layout_init(&L, n);
    for (int i = 0; i < L.np; i++)
        if (!isfinite(theta[i]))
            return MODEL_CSD_SIM_BADARG;
    const int v = o->scans, vt = o->scans + o->burnin;
    /* n inputs, one per region, C = I: the fluctuations drive the regions */
    model_dcm *M = model_dcm_alloc(n, n, vt, 0);
    double *Pd = M ? malloc(sizeof(double) * (size_t)M->L.np) : NULL;
    double *yt = malloc(sizeof(double) * (size_t)vt * n);
    double *fl = malloc(sizeof(double) * (size_t)vt * n);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    model_int_work *W = NULL;
    if (!M || !Pd || !yt || !fl || !rng) {
        rc = MODEL_CSD_SIM_NOMEM;
        goto done;
    }
    M->TR = o->TR;
    M->TE = o->TE;
    M->integrator = MODEL_INT_ODE;
    for (int k = 0; k < n * n; k++)
        M->a[k] = 1.0;
    for (int i = 0; i < n; i++)
        M->c[i + i * n] = 1.0;   /* delays stay 0: region k sampled at the start of each scan */
    task_params(M, theta, Pd);
    double re = rest_max_re(M, Pd);
    if (max_re)
        *max_re = re;
    if (isnan(re)) {
        rc = MODEL_CSD_SIM_NOMEM;
        goto done;
    }
    if (re >= 0.0) {
        rc = MODEL_CSD_SIM_UNSTABLE;
        goto done;
    }
    gsl_rng_set(rng, o->seed);
    for (int k = 0; k < n; k++)
        ar1_series(rng, o->fluct_ar, o->fluct_sd, vt, fl + (size_t)k * vt, 1);
    /* held over each scan's micro-time bins */
    for (int t = 0; t < M->nu; t++)
        for (int k = 0; k < n; k++)
            M->u[(size_t)t * n + k] = fl[(size_t)(t / MODEL_DCM_MICROTIME) + (size_t)k * vt];
    if (!(W = model_int_alloc(M))) {
        rc = MODEL_CSD_SIM_NOMEM;
        goto done;
    }
    if (model_int_predict(M, Pd, yt, W) != MODEL_INT_OK) {
        rc = MODEL_CSD_SIM_DIVERGED;
        goto done;
    }
    for (int k = 0; k < n; k++)
        memcpy(y + (size_t)k * v, yt + (size_t)k * vt + o->burnin, sizeof(double) * (size_t)v);
    if (signal)
        memcpy(signal, y, sizeof(double) * (size_t)v * n);
    /* the noise: drawn whatever its scale, so the numbers of a seed do not
       depend on --snr */
    for (int k = 0; k < n; k++) {
        double sd = o->noise_sd;
        if (o->snr > 0.0) {
            double mu = 0.0, ss = 0.0;
            for (int t = 0; t < v; t++)
                mu += y[t + (size_t)k * v] / v;
            for (int t = 0; t < v; t++)
                ss += (y[t + (size_t)k * v] - mu) * (y[t + (size_t)k * v] - mu);
            sd = sqrt(ss / (v > 1 ? v - 1 : 1)) / o->snr;
            if (!(sd > 0.0)) {
                rc = MODEL_CSD_SIM_FLAT;
                goto done;
            }
        }
        ar1_series(rng, o->noise_ar, 1.0, v, fl, 1);
        for (int t = 0; t < v; t++)
            y[t + (size_t)k * v] += sd * fl[t];
    }
done:
    model_int_free(W);
    model_dcm_free(M);
    if (rng)
        gsl_rng_free(rng);
    free(Pd);
    free(yt);
    free(fl);
    return rc;
}
