/* model_rdcm_sim.c — TAPAS's rDCM data generator (model_rdcm_sim.h). */
#include "models/model_rdcm_sim.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "models/model_rdcm.h"

/* TAPAS scales the driving input by this, whatever the micro-time (euler_gen) */
#define RDCM_SIM_C_SCALE 16.0

/* Forward Euler over 2 Nu steps (the inputs twice); x: 2Nu x n, column-major. */
static int integrate(const double *A, const double *C, int n, const double *u, int m, int Nu,
                     double dt, double *x)
{
    const size_t L = 2 * (size_t)Nu;
    double *cur = calloc((size_t)n, sizeof(double)), *drive = malloc(sizeof(double) * (size_t)n);
    if (!cur || !drive) {
        free(cur);
        free(drive);
        return -1;
    }
    for (size_t i = 0; i < L; i++) {
        for (int k = 0; k < n; k++)
            x[i + L * k] = cur[k];
        size_t iu = i % (size_t)Nu;
        for (int k = 0; k < n; k++)
            drive[k] = 0.0;
        for (int j = 0; j < m; j++) {
            double uj = u[iu + (size_t)Nu * j];
            if (uj != 0.0)
                for (int k = 0; k < n; k++)
                    drive[k] += C[k + (size_t)n * j] * uj / RDCM_SIM_C_SCALE;
        }
        for (int j = 0; j < n; j++) {
            double xj = cur[j];
            if (xj != 0.0)
                for (int k = 0; k < n; k++)
                    drive[k] += A[k + (size_t)n * j] * xj;
        }
        for (int k = 0; k < n; k++)
            cur[k] += dt * drive[k];
    }
    free(cur);
    free(drive);
    return 0;
}

int model_rdcm_generate(const double *A, const double *C, int n, const double *u, int m, int N,
                        int r, double TR, double snr, unsigned long seed, char *const *names,
                        double *y_clean, double *y, dcm_error *err)
{
    if (n < 1 || m < 0 || N < 2 || r < 1 || !(TR > 0) || !isfinite(TR) || (m > 0 && (!u || !C)))
        return dcm_error_set(err, DCM_ERR_INPUT, "rDCM simulation: needs at least one region, two "
                             "scans, a positive TR and r >= 1 micro-time bins per scan (got n %d, "
                             "N %d, TR %g, r %d)", n, N, TR, r);
    if (!(snr > 0))
        return dcm_error_set(err, DCM_ERR_INPUT, "rDCM simulation: the SNR must be positive (or "
                             "infinite for no noise), not %g", snr);
    if ((double)N * r * 2.0 * (n + 2) > 4e9)
        return dcm_error_set(err, DCM_ERR_INPUT, "rDCM simulation: %d scans x %d bins x %d regions "
                             "is too large to hold in memory", N, r, n);
    const int Nu = N * r;
    const size_t L = 2 * (size_t)Nu, nf = L / 2 + 1;
    const double dt = TR / r;
    int rc = DCM_OK;
    double *x = malloc(sizeof(double) * L * (size_t)n);
    double *h = malloc(sizeof(double) * (size_t)Nu);
    double *yc = y_clean ? y_clean : malloc(sizeof(double) * (size_t)N * n);
    double *buf = fftw_malloc(sizeof(double) * L);
    fftw_complex *Hf = fftw_malloc(sizeof(fftw_complex) * nf), *Xf = fftw_malloc(sizeof(fftw_complex) * nf);
    fftw_plan fwd = NULL, inv = NULL;
    if (!x || !h || !yc || !buf || !Hf || !Xf) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory (rDCM simulation, %d regions x %zu "
                           "micro-time bins)", n, L);
        goto done;
    }
    if (integrate(A, C, n, u, m, Nu, dt, x)) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    for (size_t q = 0; q < L * (size_t)n; q++)
        if (!isfinite(x[q])) {
            int k = (int)(q / L);
            rc = dcm_error_set(err, DCM_ERR_NUMERIC, "rDCM simulation: the neuronal state of region "
                               "%s diverges (micro-time bin %zu): A is unstable; make the "
                               "self-connections more negative or the connections weaker",
                               names ? names[k] : "", q % L);
            goto done;
        }
    model_rdcm_hrf(dt, Nu, h);
    model_rdcm_planner_lock();
    fwd = fftw_plan_dft_r2c_1d((int)L, buf, Xf, FFTW_ESTIMATE);
    inv = fftw_plan_dft_c2r_1d((int)L, Xf, buf, FFTW_ESTIMATE);
    model_rdcm_planner_unlock();
    if (!fwd || !inv) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "rDCM simulation: cannot plan an FFT of %zu points", L);
        goto done;
    }
    /* h zero-padded to 2 Nu: the outputs Nu..2Nu-1 reach back at most Nu-1
       bins, to bin 1, so the circular convolution does not wrap there */
    memcpy(buf, h, sizeof(double) * (size_t)Nu);
    memset(buf + Nu, 0, sizeof(double) * (size_t)Nu);
    fftw_execute_dft_r2c(fwd, buf, Hf);
    for (int k = 0; k < n; k++) {
        memcpy(buf, x + L * k, sizeof(double) * L);
        fftw_execute_dft_r2c(fwd, buf, Xf);
        for (size_t f = 0; f < nf; f++) {
            double a = Xf[f][0], b = Xf[f][1], c = Hf[f][0], d = Hf[f][1];
            Xf[f][0] = a * c - b * d;
            Xf[f][1] = a * d + b * c;
        }
        fftw_execute_dft_c2r(inv, Xf, buf);
        for (int t = 0; t < N; t++)
            yc[t + (size_t)N * k] = buf[(size_t)Nu + (size_t)t * r] / (double)L;
    }
    for (size_t q = 0; q < (size_t)N * n; q++)
        y[q] = yc[q];
    if (isfinite(snr)) {
        gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
        if (!g) {
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
        gsl_rng_set(g, seed);
        for (int k = 0; k < n && !rc; k++) {
            const double *col = yc + (size_t)N * k;
            double mu = 0.0, ss = 0.0;
            for (int t = 0; t < N; t++)
                mu += col[t];
            mu /= N;
            for (int t = 0; t < N; t++)
                ss += (col[t] - mu) * (col[t] - mu);
            double sd = sqrt(ss / (N - 1));
            if (!(sd > 0)) {
                rc = dcm_error_set(err, DCM_ERR_INPUT, "rDCM simulation: region %s has no signal "
                                   "(no input reaches it through C and A), so its noise cannot be "
                                   "set from an SNR", names ? names[k] : "");
                break;
            }
            for (int t = 0; t < N; t++)
                y[t + (size_t)N * k] += gsl_ran_gaussian(g, sd / snr);
        }
        gsl_rng_free(g);
    }
done:
    model_rdcm_planner_lock();
    if (fwd)
        fftw_destroy_plan(fwd);
    if (inv)
        fftw_destroy_plan(inv);
    model_rdcm_planner_unlock();
    fftw_free(buf);
    fftw_free(Hf);
    fftw_free(Xf);
    free(x);
    free(h);
    if (yc != y_clean)
        free(yc);
    return rc;
}
