/* bench_csd_sim.h — resting-state BOLD of n regions for timing and for the
 * size/TR tests of spectral DCM (make bench, tests/test_csd_sizes.c).
 *
 * Contract
 * - bench_csd_sim() fills Y (T x n, column-major) with the BOLD of the
 *   spectral model's own linearised system (models/model_csd.h: the
 *   Jacobians dfdx, dfdu, dgdx at rest with C = I) driven, as SPM's
 *   DEM_demo_connectivity_fMRI does, by AR(1) fluctuations (coefficient
 *   1/2, sd 1/4, one value per scan) and observed with AR(1) noise (sd
 *   1/8). One exact step per scan: x <- e^{J TR} x + J^-1 (e^{J TR} - I) B u.
 * - A (n x n, column-major, row = target, Hz) is the true coupling (the
 *   diagonal is SPM's log self-inhibition, 0 = 0.5 Hz); transit (n, or
 *   NULL for 0) the log transit times. Deterministic in seed (its own
 *   generator, no libc state). Returns 0, or -1 (memory, singular model).
 * - bench_csd_sim_network() writes a test network: a chain i -> i+1
 *   (0.3 Hz) with feedback i+1 -> i (-0.15 Hz) and every third region
 *   driving the one three ahead (0.12 Hz) — stable for any n.
 * Not part of the library: a helper of the bench and the tests.
 */
#ifndef BENCH_CSD_SIM_H
#define BENCH_CSD_SIM_H

#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>

#include "models/model_csd.h"

static inline void bench_csd_sim_network(int n, double *A)
{
    memset(A, 0, sizeof(double) * (size_t)n * n);
    for (int i = 0; i + 1 < n; i++) {
        A[(i + 1) + (size_t)i * n] = 0.3;     /* i -> i+1 */
        A[i + (size_t)(i + 1) * n] = -0.15;   /* i+1 -> i */
    }
    for (int i = 0; i + 3 < n; i += 3)
        A[(i + 3) + (size_t)i * n] = 0.12;
}

/* splitmix64 and Box-Muller: standard normal draws */
static inline double bench_csd_sim_randn(unsigned long long *s)
{
    double u[2];
    for (int k = 0; k < 2; k++) {
        unsigned long long z = (*s += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        u[k] = ((double)(z >> 11) + 0.5) / 9007199254740992.0;
    }
    return sqrt(-2.0 * log(u[0])) * cos(2.0 * M_PI * u[1]);
}

static inline int bench_csd_sim(int n, int T, double TR, const double *A, const double *transit,
                                unsigned long long seed, double *Y)
{
    const int nx = 5 * n, na = nx + n, nw = MODEL_CSD_NW, burn = 64;
    double Hz[MODEL_CSD_NW];
    model_csd_frequencies(T, TR, nw, Hz);
    model_csd_layout L;
    model_csd_layout_init(&L, n);
    double *P = calloc((size_t)L.np, sizeof(double));
    double complex *csd = malloc(sizeof(double complex) * (size_t)nw * n * n);
    double *dfdx = malloc(sizeof(double) * (size_t)nx * nx);
    double *dfdu = malloc(sizeof(double) * (size_t)nx * n);
    double *dgdx = malloc(sizeof(double) * (size_t)n * nx);
    double *x = calloc((size_t)nx, sizeof(double)), *xn = malloc(sizeof(double) * (size_t)nx);
    double *u = calloc((size_t)n, sizeof(double)), *e = calloc((size_t)n, sizeof(double));
    gsl_matrix *Maug = gsl_matrix_calloc((size_t)na, (size_t)na);
    gsl_matrix *E = gsl_matrix_alloc((size_t)na, (size_t)na);
    model_csd_work *W = model_csd_work_alloc(n, nw, Hz, MODEL_CSD_ORDER - 1, 0.04);
    int rc = -1;
    if (!P || !csd || !dfdx || !dfdu || !dgdx || !x || !xn || !u || !e || !Maug || !E || !W)
        goto done;
    for (int k = 0; k < n * n; k++)
        P[L.off_A + k] = A[k];
    for (int i = 0; i < n; i++)
        P[L.off_transit + i] = transit ? transit[i] : 0.0;
    model_csd_parts parts = {0};
    parts.dfdx = dfdx;
    parts.dfdu = dfdu;
    parts.dgdx = dgdx;
    if (model_csd_predict(W, P, csd, &parts))
        goto done;
    /* e^{[J B; 0 0] TR} = [e^{J TR}, J^-1 (e^{J TR} - I) B; 0, I] */
    for (int i = 0; i < nx; i++) {
        for (int j = 0; j < nx; j++)
            gsl_matrix_set(Maug, (size_t)i, (size_t)j, dfdx[i + (size_t)j * nx] * TR);
        for (int j = 0; j < n; j++)
            gsl_matrix_set(Maug, (size_t)i, (size_t)(nx + j), dfdu[i + (size_t)j * nx] * TR);
    }
    if (gsl_linalg_exponential_ss(Maug, E, GSL_PREC_DOUBLE))
        goto done;
    unsigned long long s = seed * 0x2545F4914F6CDD1DULL + 1;
    const double a = 0.5, sd_in = sqrt(1.0 - a * a);
    for (int t = -burn; t < T; t++) {
        for (int i = 0; i < n; i++) {
            u[i] = a * u[i] + sd_in * bench_csd_sim_randn(&s);
            e[i] = a * e[i] + sd_in * bench_csd_sim_randn(&s);
        }
        for (int r = 0; r < nx; r++) {
            double acc = 0.0;
            for (int c = 0; c < nx; c++)
                acc += gsl_matrix_get(E, (size_t)r, (size_t)c) * x[c];
            for (int c = 0; c < n; c++)
                acc += gsl_matrix_get(E, (size_t)r, (size_t)(nx + c)) * u[c] / 4.0;
            xn[r] = acc;
        }
        memcpy(x, xn, sizeof(double) * (size_t)nx);
        if (t < 0)
            continue;
        for (int i = 0; i < n; i++) {
            double y = 0.0;
            for (int c = 0; c < nx; c++)
                y += dgdx[i + (size_t)c * n] * x[c];
            Y[t + (size_t)T * i] = y + e[i] / 8.0;
        }
    }
    rc = 0;
done:
    free(P);
    free(csd);
    free(dfdx);
    free(dfdu);
    free(dgdx);
    free(x);
    free(xn);
    free(u);
    free(e);
    if (Maug)
        gsl_matrix_free(Maug);
    if (E)
        gsl_matrix_free(E);
    model_csd_work_free(W);
    return rc;
}

#endif
