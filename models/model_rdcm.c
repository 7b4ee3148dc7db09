/* model_rdcm.c — regression DCM: HRF, spectra, filter, regression in real
 * form, priors, VB for rDCM and sparse rDCM (see model_rdcm.h). */
#include "models/model_rdcm.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>
#include <gsl/gsl_cblas.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_sf_gamma.h>
#include <gsl/gsl_sf_psi.h>

#include "vl/vl_linalg.h"

#define TWO_PI (2.0 * M_PI)
#define LN_2PI 1.8378770664093454836

/* FFTW's planner is process-global and not thread-safe; plans are made and
 * destroyed only while holding this lock (executing them needs none). */
static pthread_mutex_t fftw_planner_lock = PTHREAD_MUTEX_INITIALIZER;

void model_rdcm_planner_lock(void)
{
    pthread_mutex_lock(&fftw_planner_lock);
}

void model_rdcm_planner_unlock(void)
{
    pthread_mutex_unlock(&fftw_planner_lock);
}

/* ---- the fixed HRF ---------------------------------------------------- */

void model_rdcm_hrf(double dt, int Nu, double *h)
{
    /* haemodynamics at SPM's prior (transit = decay = 0): TAPAS's constants */
    const double kappa = 0.64, gamma = 0.32, tau = 2.0, alpha = 0.32, rho = 0.32;
    /* BOLD: V0 = 4, nu0 = 40.3, E0 = 0.4 (0.32 in the dynamics), TE = 0.04,
     * r0 = 25, epsilon = 1 (so the (1 - v) term vanishes) */
    const double k1 = 4.3 * 40.3 * 0.4 * 0.04, k2 = 25.0 * 0.4 * 0.04, k3 = 0.0;
    double x = 0, s = 0, f = 1, v = 1, q = 1, lf = 0, lv = 0, lq = 0;
    for (int i = 0; i < Nu; i++) {
        h[i] = 4.0 * (k1 * (1 - q) + k2 * (1 - q / v) + k3 * (1 - v));
        double u = i == 0 ? 1.0 : 0.0;
        double va = pow(v, 1.0 / alpha);
        double x1 = x + dt * (-x + u);
        double s1 = s + dt * (x - kappa * s - gamma * (f - 1));
        double lf1 = lf + dt * (s / f);
        double lv1 = lv + dt * (f - va) / (tau * v);
        double lq1 = lq + dt * (f * (1 - pow(1 - rho, 1.0 / f)) / rho - va * q / v) / (tau * q);
        x = x1, s = s1, lf = lf1, lv = lv1, lq = lq1;
        f = exp(lf), v = exp(lv), q = exp(lq);
    }
}

/* ---- spectra and filter ----------------------------------------------- */

void model_rdcm_spectra_free(model_rdcm_spectra *S)
{
    if (!S)
        return;
    free(S->h);
    free(S->uconv);
    free(S->Y);
    free(S->Yf);
    free(S->U);
    free(S->H);
    free(S->mask);
    free(S->bins);
    free(S->kept);
    free(S->sd_re);
    free(S->sd_im);
    memset(S, 0, sizeof *S);
}

#define CONV_MAX_THREADS 64

/* The real FFTs one build needs, planned once under the lock. */
typedef struct {
    int N, Nu;
    double *tu, *tn;             /* time-domain buffers, Nu and N */
    fftw_complex *fu, *fn;       /* half spectra, Nu/2+1 and N/2+1 */
    fftw_plan fwd_u, inv_u, fwd_n;
} rdcm_ffts;

static void ffts_free(rdcm_ffts *F)
{
    pthread_mutex_lock(&fftw_planner_lock);
    if (F->fwd_u)
        fftw_destroy_plan(F->fwd_u);
    if (F->inv_u)
        fftw_destroy_plan(F->inv_u);
    if (F->fwd_n)
        fftw_destroy_plan(F->fwd_n);
    pthread_mutex_unlock(&fftw_planner_lock);
    fftw_free(F->tu);
    fftw_free(F->tn);
    fftw_free(F->fu);
    fftw_free(F->fn);
}

static int ffts_init(rdcm_ffts *F, int N, int Nu)
{
    memset(F, 0, sizeof *F);
    F->N = N, F->Nu = Nu;
    F->tn = fftw_malloc(sizeof(double) * (size_t)N);
    F->fn = fftw_malloc(sizeof(fftw_complex) * (size_t)(N / 2 + 1));
    if (!F->tn || !F->fn)
        return -1;
    pthread_mutex_lock(&fftw_planner_lock);
    F->fwd_n = fftw_plan_dft_r2c_1d(N, F->tn, F->fn, FFTW_ESTIMATE);
    pthread_mutex_unlock(&fftw_planner_lock);
    return F->fwd_n ? 0 : -1;
}

/* The Nu-point transforms, only for inputs that are not blocks. */
static int ffts_plan_u(rdcm_ffts *F)
{
    int Nu = F->Nu;
    F->tu = fftw_malloc(sizeof(double) * (size_t)Nu);
    F->fu = fftw_malloc(sizeof(fftw_complex) * (size_t)(Nu / 2 + 1));
    if (!F->tu || !F->fu)
        return -1;
    pthread_mutex_lock(&fftw_planner_lock);
    F->fwd_u = fftw_plan_dft_r2c_1d(Nu, F->tu, F->fu, FFTW_ESTIMATE);
    F->inv_u = fftw_plan_dft_c2r_1d(Nu, F->fu, F->tu, FFTW_ESTIMATE);
    pthread_mutex_unlock(&fftw_planner_lock);
    return F->fwd_u && F->inv_u ? 0 : -1;
}

/* Full N-bin DFT of x (N samples) into out, by conjugate symmetry. */
static void dft_full(rdcm_ffts *F, const double *x, size_t stride, double complex *out)
{
    int N = F->N;
    for (int t = 0; t < N; t++)
        F->tn[t] = x[(size_t)t * stride];
    fftw_execute(F->fwd_n);
    for (int f = 0; f <= N / 2; f++)
        out[f] = F->fn[f];
    for (int f = N / 2 + 1; f < N; f++)
        out[f] = conj(F->fn[N - f]);
}

/* Sample SD (N-1) of a list. */
static double sd(const double *x, int k)
{
    if (k < 2)
        return 0.0;
    double mean = 0, ss = 0;
    for (int i = 0; i < k; i++)
        mean += x[i];
    mean /= k;
    for (int i = 0; i < k; i++)
        ss += (x[i] - mean) * (x[i] - mean);
    return sqrt(ss / (k - 1));
}

/* TAPAS's filter for region k: which bins are kept, then the rows. */
static void filter_region(model_rdcm_spectra *S, int k, const unsigned char *uninformative,
                          double *scratch_re, double *scratch_im)
{
    int N = S->N;
    const double complex *Y = S->Y + (size_t)k * N;
    unsigned char *mask = S->mask + (size_t)k * N;
    int ne = 0;
    for (int f = 0; f < N; f++)
        if (uninformative[f]) {
            scratch_re[ne] = creal(Y[f]);
            scratch_im[ne] = cimag(Y[f]);
            ne++;
        }
    double sr = ne > 1 ? sd(scratch_re, ne) : 0.0, si = ne > 1 ? sd(scratch_im, ne) : 0.0;
    S->sd_re[k] = sr, S->sd_im[k] = si;
    /* the informative band: task designs up to 7/16 of the sampling rate */
    double hpf = fmax(16.0 + 4.0 * (S->thr - 1.0), 16.0);
    int band = (int)round(7.0 * N / (S->resting ? hpf : 16.0));
    unsigned char *keep = (unsigned char *)scratch_re;  /* reuse: N bytes */
    for (int f = 0; f < N; f++)
        keep[f] = (fabs(creal(Y[f])) > S->thr * sr || fabs(cimag(Y[f])) > S->thr * si) &&
                  !uninformative[f] && (f <= band || f >= N - band);
    keep[0] = 1;
    for (int f = 1; f < N; f++)      /* symmetric: f kept when N - f is */
        if (keep[N - f])
            keep[f] = 1;
    int half = (int)round(N / 2.0), f1 = 0, f2 = N, nk = 0;
    for (int f = 0; f <= half && f < N; f++)
        if (keep[f])
            f1 = f;
    for (int f = half; f < N; f++)
        if (keep[f]) {
            f2 = f;
            break;
        }
    int bins = 0;
    for (int f = 0; f < N; f++) {
        int row = f <= f1 || f >= f2;
        mask[f] = row ? (keep[f] ? 2 : 1) : 0;
        bins += row;
        nk += keep[f];
        S->Yf[(size_t)k * N + f] = keep[f] ? Y[f] : 0.0;
    }
    S->bins[k] = bins;
    S->kept[k] = nk;
}

/* The inputs at micro-time: input i, bin t at u[t * st + i * si]. */
typedef struct {
    const double *u;
    size_t st, si;
} rdcm_inputs;

static double input_at(const rdcm_inputs *in, int i, int t)
{
    return in->u[(size_t)t * in->st + (size_t)i * in->si];
}

/* The runs of equal value of the inputs, found in one pass over the
 * bins (in the order the caller keeps them): run j of input i starts at
 * bin start[i * cap + j] with value val[...]; runs[i] counts them, and
 * only the first cap are kept (more: the input takes the FFT). */
typedef struct {
    int cap;
    int *start, *runs;
    double *val;
} rdcm_runs;

static int runs_find(rdcm_runs *R, const rdcm_inputs *in, int m, int Nu, int cap)
{
    R->cap = cap;
    R->start = malloc(sizeof(int) * (size_t)m * cap);
    R->val = malloc(sizeof(double) * (size_t)m * cap);
    R->runs = calloc((size_t)m, sizeof(int));
    double *prev = malloc(sizeof(double) * (size_t)m);
    if (!R->start || !R->val || !R->runs || !prev) {
        free(prev);
        return -1;
    }
    for (int t = 0; t < Nu; t++) {
        const double *ut = in->u + (size_t)t * in->st;
        for (int i = 0; i < m; i++) {
            double x = ut[(size_t)i * in->si];
            if (t > 0 && x == prev[i])
                continue;
            int j = R->runs[i]++;
            if (j < cap) {
                R->start[(size_t)i * cap + j] = t;
                R->val[(size_t)i * cap + j] = x;
            }
            prev[i] = x;
        }
    }
    free(prev);
    return 0;
}

static void runs_free(rdcm_runs *R)
{
    free(R->start);
    free(R->val);
    free(R->runs);
}

/* Block designs: u piecewise constant in few runs. A run of value a over
 * bins [k0, k1) adds a * sum_{j=k0}^{k1-1} h[(s - j) mod Nu] to the
 * circular convolution at s: a circular range sum of h, O(1) from prefix
 * sums P (Nu + 1, long double: the differences keep ~19 digits). This is
 * TAPAS's real(ifft(fft(u) .* fft(h))) without the Nu-point transforms
 * (which for Nu = 16 N with N not smooth cost more than the whole fit);
 * the two agree to rounding (1e-16 of the largest value). */
static void convolve_runs(model_rdcm_spectra *S, const rdcm_runs *R, int i, const long double *P,
                          long double *acc)
{
    int N = S->N, r = S->r, Nu = N * r, nr = R->runs[i];
    const int *start = R->start + (size_t)i * R->cap;
    const double *val = R->val + (size_t)i * R->cap;
    double *w = S->uconv + (size_t)i * N;
    for (int t = 0; t < N; t++)
        acc[t] = 0;
    for (int j = 0; j < nr; j++) {
        double a = val[j];
        if (a == 0)
            continue;
        int k0 = start[j], k = j + 1 < nr ? start[j + 1] : Nu, L = k - k0;
        /* indices (s - k + 1 ... s - k0) mod Nu at s = t r: the first is
         * lo, stepping by r (no division in the loop) */
        int lo = ((1 - k) % Nu + Nu) % Nu;
        for (int t = 0; t < N; t++) {
            long double sum = lo + L <= Nu ? P[lo + L] - P[lo] : (P[Nu] - P[lo]) + P[lo + L - Nu];
            acc[t] += a * sum;
            lo += r;
            if (lo >= Nu)
                lo -= Nu;
        }
    }
    for (int t = 0; t < N; t++)
        w[t] = (double)acc[t];
}

/* Inputs first, first + step, ... of convolve_inputs that need the FFT,
 * with buffers of their own (FFTW's new-array execute is thread-safe;
 * same plan, same numbers in any thread). */
typedef struct {
    model_rdcm_spectra *S;
    const rdcm_ffts *F;
    const rdcm_inputs *in;
    const unsigned char *by_fft;
    const double complex *Hu;
    int first, step, rc;
} conv_part;

static void *convolve_part(void *arg)
{
    conv_part *c = arg;
    model_rdcm_spectra *S = c->S;
    int N = S->N, Nu = N * S->r, nh = Nu / 2 + 1;
    double *tu = fftw_malloc(sizeof(double) * (size_t)Nu);
    fftw_complex *fu = fftw_malloc(sizeof(fftw_complex) * (size_t)nh);
    c->rc = tu && fu ? 0 : -1;
    for (int i = c->first; i < S->m && c->rc == 0; i += c->step) {
        if (!c->by_fft[i])
            continue;
        for (int t = 0; t < Nu; t++)
            tu[t] = input_at(c->in, i, t);
        fftw_execute_dft_r2c(c->F->fwd_u, tu, fu);
        double complex *fz = (double complex *)fu;
        for (int f = 0; f < nh; f++)
            fz[f] *= c->Hu[f];
        fftw_execute_dft_c2r(c->F->inv_u, fu, tu);   /* unnormalised: divide by Nu */
        for (int t = 0; t < N; t++)
            S->uconv[(size_t)i * N + t] = tu[(size_t)t * S->r] / Nu;
    }
    fftw_free(tu);
    fftw_free(fu);
    return NULL;
}

/* Convolve every input circularly with the HRF at micro-time and sample
 * the result at the scans (TAPAS: real(ifft(fft(u) .* fft(h)))): block
 * inputs by their runs, others by FFT (planned only then), shared among
 * up to `threads` threads. */
static int convolve_inputs(model_rdcm_spectra *S, rdcm_ffts *F, const rdcm_inputs *in,
                           int threads)
{
    int N = S->N, Nu = N * S->r, nh = Nu / 2 + 1, m = S->m, any_fft = 0;
    unsigned char *by_fft = malloc((size_t)m);
    long double *P = malloc(sizeof(long double) * ((size_t)Nu + 1 + (size_t)N));
    if (!by_fft || !P) {
        free(by_fft);
        free(P);
        return -1;
    }
    /* runs cost N each, an FFT pair ~ 2 Nu log2(Nu) / N of them */
    int cap = (int)fmin(2.0 * Nu * log2((double)Nu) / N, (double)Nu) + 1;
    rdcm_runs R = {0};
    if (runs_find(&R, in, m, Nu, cap)) {
        runs_free(&R);
        free(by_fft);
        free(P);
        return -1;
    }
    for (int i = 0; i < m; i++) {
        by_fft[i] = R.runs[i] > cap;
        any_fft |= by_fft[i];
    }
    P[0] = 0;
    for (int k = 0; k < Nu; k++)
        P[k + 1] = P[k] + S->h[k];
    for (int i = 0; i < m; i++)
        if (!by_fft[i])
            convolve_runs(S, &R, i, P, P + Nu + 1);
    runs_free(&R);
    free(P);
    int rc = 0;
    double complex *Hu = NULL;
    if (any_fft && (ffts_plan_u(F) || !(Hu = malloc(sizeof(double complex) * (size_t)nh))))
        rc = -1;
    if (any_fft && rc == 0) {
        memcpy(F->tu, S->h, sizeof(double) * (size_t)Nu);
        fftw_execute(F->fwd_u);
        memcpy(Hu, F->fu, sizeof(double complex) * (size_t)nh);
        if (threads > m)
            threads = m;
        if (threads > CONV_MAX_THREADS)
            threads = CONV_MAX_THREADS;
        if (threads < 1)
            threads = 1;
        conv_part part[CONV_MAX_THREADS];
        pthread_t tid[CONV_MAX_THREADS];
        int started[CONV_MAX_THREADS] = {0};
        for (int t = 0; t < threads; t++)
            part[t] = (conv_part){S, F, in, by_fft, Hu, t, threads, 0};
        for (int t = 1; t < threads; t++)
            started[t] = pthread_create(&tid[t], NULL, convolve_part, &part[t]) == 0;
        /* a thread that did not start: its inputs done here */
        convolve_part(&part[0]);
        rc = part[0].rc;
        for (int t = 1; t < threads; t++) {
            if (started[t])
                pthread_join(tid[t], NULL);
            else
                convolve_part(&part[t]);
            rc |= part[t].rc;
        }
    }
    free(Hu);
    free(by_fft);
    return rc;
}

static int spectra_alloc(model_rdcm_spectra *S)
{
    size_t N = (size_t)S->N, n = (size_t)S->n, mc = (size_t)S->m + 1;
    S->h = malloc(sizeof(double) * N * (size_t)S->r);
    S->uconv = calloc(N * mc, sizeof(double));
    S->Y = malloc(sizeof(double complex) * N * n);
    S->Yf = malloc(sizeof(double complex) * N * n);
    S->U = malloc(sizeof(double complex) * N * mc);
    S->H = malloc(sizeof(double complex) * N);
    S->mask = malloc(N * n);
    S->bins = calloc(n, sizeof(int));
    S->kept = calloc(n, sizeof(int));
    S->sd_re = calloc(n, sizeof(double));
    S->sd_im = calloc(n, sizeof(double));
    return S->h && S->uconv && S->Y && S->Yf && S->U && S->H && S->mask && S->bins && S->kept &&
                   S->sd_re && S->sd_im
               ? 0
               : -1;
}

int model_rdcm_spectra_build(model_rdcm_spectra *S, const double *Y, int N, int n, double TR,
                             const double *u, int m, int r, double thr, dcm_error *err)
{
    return model_rdcm_spectra_build_mt(S, Y, N, n, TR, u, m, r, thr, 1, err);
}

int model_rdcm_spectra_build_mt(model_rdcm_spectra *S, const double *Y, int N, int n, double TR,
                                const double *u, int m, int r, double thr, int threads,
                                dcm_error *err)
{
    return model_rdcm_spectra_build_strided(S, Y, N, n, TR, u, 1, (size_t)N * r, m, r, thr,
                                            threads, err);
}

int model_rdcm_spectra_build_strided(model_rdcm_spectra *S, const double *Y, int N, int n,
                                     double TR, const double *u, size_t u_step_bin,
                                     size_t u_step_input, int m, int r, double thr, int threads,
                                     dcm_error *err)
{
    memset(S, 0, sizeof *S);
    if (n < 1 || m < 0 || r < 1 || !(TR > 0) || !(thr >= 0) || (m > 0 && !u))
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "rDCM needs at least one region, a positive TR, micro-time bins per "
                             "scan >= 1 and a filter strength >= 0 (got n = %d, TR = %g, r = %d, "
                             "filter = %g)", n, TR, r, thr);
    if (N < 4 || N * TR < MODEL_RDCM_HRF_SUPPORT_S)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "the time series has %d scans (%.4g s at TR %g s), shorter than the "
                             "%g s the haemodynamic response lasts; rDCM needs a longer series",
                             N, N * TR, TR, MODEL_RDCM_HRF_SUPPORT_S);
    if ((double)N * r > 1e9)
        return dcm_error_set(err, DCM_ERR_INPUT, "%d scans x %d micro-time bins is too many samples",
                             N, r);
    vl_init();
    S->N = N, S->n = n, S->m = m, S->r = r, S->TR = TR, S->thr = thr, S->resting = m == 0;
    rdcm_ffts F = {0};
    unsigned char *unin = malloc((size_t)N);
    double *scratch = malloc(sizeof(double) * 2 * (size_t)N);
    int rc = DCM_OK;
    if (spectra_alloc(S) || !unin || !scratch || ffts_init(&F, N, N * r)) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "rDCM: out of memory for %d scans x %d regions", N, n);
        goto done;
    }
    int Nu = N * r;
    model_rdcm_hrf(TR / r, Nu, S->h);
    rdcm_inputs in = {u, u_step_bin, u_step_input};
    if (m > 0 && convolve_inputs(S, &F, &in, threads)) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "rDCM: out of memory for %d scans x %d regions", N, n);
        goto done;
    }
    for (int t = 0; t < N; t++)
        S->uconv[(size_t)m * N + t] = 1.0;
    dft_full(&F, S->h, (size_t)r, S->H);
    for (int k = 0; k < n; k++)
        dft_full(&F, Y + (size_t)k * N, 1, S->Y + (size_t)k * N);
    for (int i = 0; i < m; i++)
        dft_full(&F, S->uconv + (size_t)i * N, 1, S->U + (size_t)i * N);
    /* the constant's DFT, exactly */
    for (int f = 0; f < N; f++)
        S->U[(size_t)m * N + f] = f == 0 ? (double)N : 0.0;
    S->n_uninformative = 0;
    for (int f = 0; f < N; f++) {
        double su = 0;
        for (int i = 0; i <= m; i++)
            su += cabs(S->U[(size_t)i * N + f]);
        unin[f] = cabs(S->H[f]) <= MODEL_RDCM_UNINFORMATIVE ||
                  (!S->resting && su <= MODEL_RDCM_UNINFORMATIVE);
        S->n_uninformative += unin[f];
    }
    for (int k = 0; k < n; k++) {
        filter_region(S, k, unin, scratch, scratch + N);
        if (S->kept[k] <= 1) {
            rc = dcm_error_set(err, DCM_ERR_INPUT,
                               "region %d keeps no informative frequency after filtering (filter "
                               "strength %g): its spectrum does not rise above %g x the noise SD "
                               "outside the band; check that the series is not constant, or lower "
                               "the filter strength", k + 1, thr, thr);
            goto done;
        }
    }
done:
    ffts_free(&F);
    free(unin);
    free(scratch);
    if (rc != DCM_OK)
        model_rdcm_spectra_free(S);
    return rc;
}

/* ---- the regression of one region ------------------------------------ */

/* Regressor column c at bin f. */
static double complex regressor(const model_rdcm_spectra *S, int c, int f, double input_scale)
{
    if (c < S->n)
        return S->Yf[(size_t)c * S->N + f];
    return S->U[(size_t)(c - S->n) * S->N + f] * input_scale;
}

double complex model_rdcm_response(const model_rdcm_spectra *S, int k, int f)
{
    /* forward difference in time = (e^{2 pi i f/N} - 1) in frequency */
    return (cexp(I * TWO_PI * f / S->N) - 1.0) * S->Yf[(size_t)k * S->N + f] / S->TR;
}

int model_rdcm_design(const model_rdcm_spectra *S, int k, const int *cols, int D,
                      double input_scale, double *X, double *y)
{
    int N = S->N, rows = 0;
    const unsigned char *mask = S->mask + (size_t)k * N;
    for (int f = 0; f < N; f++) {
        if (!mask[f])
            continue;
        int g = (N - f) % N;
        double complex yd = model_rdcm_response(S, k, f);
        if (f == g) {                       /* bins 0 and N/2: real */
            for (int j = 0; j < D; j++)
                X[rows + (size_t)N * j] = creal(regressor(S, cols[j], f, input_scale));
            y[rows++] = creal(yd);
            continue;
        }
        if (mask[g] && f > g)              /* the conjugate of a row already written */
            continue;
        double w = mask[g] ? M_SQRT2 : 1.0; /* an unpaired row gives the real part of XᴴX */
        for (int j = 0; j < D; j++) {
            double complex x = regressor(S, cols[j], f, input_scale);
            X[rows + (size_t)N * j] = w * creal(x);
            X[rows + 1 + (size_t)N * j] = w * cimag(x);
        }
        y[rows] = w * creal(yd);
        y[rows + 1] = w * cimag(yd);
        rows += 2;
    }
    return rows;
}

void model_rdcm_normal(const model_rdcm_spectra *S, int k, const int *cols, int D,
                       double input_scale, double *W, double *v, double *yy, int *bins,
                       double *work)
{
    int N = S->N;
    double *X = work, *y = work + (size_t)N * D;
    int rows = model_rdcm_design(S, k, cols, D, input_scale, X, y);
    cblas_dsyrk(CblasColMajor, CblasLower, CblasTrans, D, rows, 1.0, X, N, 0.0, W, D);
    for (int j = 0; j < D; j++)
        for (int i = 0; i < j; i++)
            W[i + (size_t)D * j] = W[j + (size_t)D * i];
    cblas_dgemv(CblasColMajor, CblasTrans, rows, D, 1.0, X, N, y, 1, 0.0, v, 1);
    *yy = cblas_ddot(rows, y, 1, y, 1);
    *bins = S->bins[k];
}

void model_rdcm_priors(int n, int m, int k, const int *cols, int D, double baseline_precision,
                       double *m0, double *l0)
{
    for (int j = 0; j < D; j++) {
        int c = cols[j];
        if (c == k) {
            m0[j] = -0.5, l0[j] = 8.0 * n;
        } else if (c < n) {
            m0[j] = 0.0, l0[j] = n / 8.0;
        } else if (c < n + m) {
            m0[j] = 0.0, l0[j] = 1.0;
        } else {
            m0[j] = 0.0, l0[j] = baseline_precision;
        }
    }
}

/* ---- variational Bayes ------------------------------------------------ */

struct model_rdcm_ws {
    int Dmax;
    int eig_from;        /* rDCM: D from which one eigendecomposition is used */
    double *P, *SA, *g, *zG, *rhs, *tmp, *sdiag;
    /* sparse rDCM: Sigma of the current q(theta) as a dense D x D (the
     * prior's variance outside the active set; contiguous columns for the
     * sweeps instead of a lookup per term), and per-call constants of p0: logit p0, log(1 - p0), log(p0 / (1 - p0)) */
    double *Sd, *lgt, *l1p, *lodd;
    int *order, *nzlist;   /* update order; indices of the non-zero z */
    /* sparse rDCM: the active set (zG != 0) of the current q(theta) */
    int na, *act, *pos;
    double logdetP;
    /* the first q(theta) of a restart, shared by restarts (same_start) */
    int c_valid, c_na, *c_act, *c_pos;
    double *c_SA, *c_mu, c_logdetP;
};

model_rdcm_ws *model_rdcm_ws_alloc(int Dmax)
{
    model_rdcm_ws *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    size_t D = (size_t)Dmax;
    w->Dmax = Dmax;
    w->eig_from = MODEL_RDCM_EIG_FROM;
    w->P = malloc(sizeof(double) * D * D);
    w->SA = malloc(sizeof(double) * D * D);
    w->c_SA = malloc(sizeof(double) * D * D);
    w->g = malloc(sizeof(double) * D);
    w->zG = malloc(sizeof(double) * D);
    w->rhs = malloc(sizeof(double) * D);
    w->tmp = malloc(sizeof(double) * D);
    w->sdiag = malloc(sizeof(double) * D);
    w->Sd = malloc(sizeof(double) * D * D);
    w->lgt = malloc(sizeof(double) * D);
    w->l1p = malloc(sizeof(double) * D);
    w->lodd = malloc(sizeof(double) * D);
    w->c_mu = malloc(sizeof(double) * D);
    w->order = malloc(sizeof(int) * D);
    w->nzlist = malloc(sizeof(int) * D);
    w->act = malloc(sizeof(int) * D);
    w->pos = malloc(sizeof(int) * D);
    w->c_act = malloc(sizeof(int) * D);
    w->c_pos = malloc(sizeof(int) * D);
    if (!w->P || !w->SA || !w->c_SA || !w->g || !w->zG || !w->rhs || !w->tmp || !w->sdiag ||
        !w->Sd || !w->lgt || !w->l1p || !w->lodd ||
        !w->c_mu || !w->order || !w->nzlist || !w->act || !w->pos || !w->c_act || !w->c_pos) {
        model_rdcm_ws_free(w);
        return NULL;
    }
    return w;
}

void model_rdcm_ws_free(model_rdcm_ws *w)
{
    if (!w)
        return;
    free(w->P);
    free(w->SA);
    free(w->c_SA);
    free(w->g);
    free(w->zG);
    free(w->rhs);
    free(w->tmp);
    free(w->sdiag);
    free(w->Sd);
    free(w->lgt);
    free(w->l1p);
    free(w->lodd);
    free(w->c_mu);
    free(w->order);
    free(w->nzlist);
    free(w->act);
    free(w->pos);
    free(w->c_act);
    free(w->c_pos);
    free(w);
}

int model_rdcm_fit_alloc(model_rdcm_fit *fit, int D)
{
    memset(fit, 0, sizeof *fit);
    fit->D = D;
    fit->mu = calloc((size_t)D, sizeof(double));
    fit->z = calloc((size_t)D, sizeof(double));
    fit->Sigma = calloc((size_t)D * D, sizeof(double));
    if (!fit->mu || !fit->z || !fit->Sigma) {
        model_rdcm_fit_free(fit);
        return -1;
    }
    return 0;
}

void model_rdcm_fit_free(model_rdcm_fit *fit)
{
    free(fit->mu);
    free(fit->z);
    free(fit->Sigma);
    memset(fit, 0, sizeof *fit);
}

void model_rdcm_fit_copy(model_rdcm_fit *dst, const model_rdcm_fit *src)
{
    size_t D = (size_t)src->D;
    memcpy(dst->mu, src->mu, sizeof(double) * D);
    memcpy(dst->z, src->z, sizeof(double) * D);
    memcpy(dst->Sigma, src->Sigma, sizeof(double) * D * D);
    dst->aN = src->aN, dst->bN = src->bN, dst->F = src->F, dst->iterations = src->iterations;
    memcpy(dst->terms, src->terms, sizeof dst->terms);
}

/* Below this size the Cholesky factor and inverse are computed by the loops
 * here: GSL's blocked routines call OpenBLAS, whose per-call overhead
 * dominates for the few active regressors of a sparse rDCM region. */
#define SMALL_CHOL 12

/* Sigma = inv(P) for a small SPD P (D x D, column-major; P overwritten by
 * its lower Cholesky factor L). Column-oriented loops (contiguous axpy and
 * dot products). Returns ln|P| or NAN. */
static double chol_inverse_small(double *P, double *Sigma, int D)
{
    double ld = 0;
    for (int j = 0; j < D; j++) {          /* left-looking: column j of L */
        double *Lj = P + (size_t)D * j;
        for (int k = 0; k < j; k++) {
            const double *Lk = P + (size_t)D * k;
            double ljk = Lk[j];
            for (int i = j; i < D; i++)
                Lj[i] -= ljk * Lk[i];
        }
        if (!(Lj[j] > 0))
            return NAN;
        double ljj = sqrt(Lj[j]), r = 1.0 / ljj;
        Lj[j] = ljj;
        ld += 2.0 * log(ljj);
        for (int i = j + 1; i < D; i++)
            Lj[i] *= r;
    }
    /* M = L^-1, column j by forward substitution, into Sigma (lower part) */
    for (int j = 0; j < D; j++) {
        double *m = Sigma + (size_t)D * j;
        for (int i = 0; i < D; i++)
            m[i] = i == j ? 1.0 : 0.0;
        for (int k = j; k < D; k++) {
            const double *Lk = P + (size_t)D * k;
            m[k] /= Lk[k];
            double mk = m[k];
            for (int i = k + 1; i < D; i++)
                m[i] -= mk * Lk[i];
        }
    }
    /* Sigma = M' M: (i, j) = column i . column j of M over rows >= max(i, j);
     * the upper triangle of P (free: L lives below) holds it meanwhile */
    for (int j = 0; j < D; j++) {
        const double *mj = Sigma + (size_t)D * j;
        for (int i = 0; i <= j; i++) {
            const double *mi = Sigma + (size_t)D * i;
            double x = 0;
            for (int k = j; k < D; k++)
                x += mi[k] * mj[k];
            if (i < j)
                P[i + (size_t)D * j] = x;
            else
                P[j + (size_t)D * j] = x;   /* L's diagonal is no longer needed */
        }
    }
    for (int j = 0; j < D; j++)
        for (int i = 0; i <= j; i++)
            Sigma[i + (size_t)D * j] = Sigma[j + (size_t)D * i] = P[i + (size_t)D * j];
    return ld;
}

/* LAPACK (OpenBLAS's optimised dpotrf/dpotri) */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
extern void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info);

/* Sigma = inv(P) (P overwritten); returns ln|P|, or NAN when P is not
 * positive definite. */
static double chol_inverse(double *P, double *Sigma, int D)
{
    if (D <= SMALL_CHOL)
        return chol_inverse_small(P, Sigma, D);
    int info = 0;
    dpotrf_("L", &D, P, &D, &info);
    if (info != 0)
        return NAN;
    double ld = 0;
    for (int i = 0; i < D; i++)
        ld += 2.0 * log(P[i + (size_t)D * i]);
    memcpy(Sigma, P, sizeof(double) * (size_t)D * D);
    dpotri_("L", &D, Sigma, &D, &info);
    if (info != 0)
        return NAN;
    for (int j = 0; j < D; j++)
        for (int i = 0; i < j; i++)
            Sigma[i + (size_t)D * j] = Sigma[j + (size_t)D * i];
    return ld;
}

/* The F terms shared by rDCM and sparse rDCM (the weight prior is diagonal). */
static void free_energy_terms(double *t, const double *mu, const double *sdiag, const double *m0,
                              const double *l0, int D, int bins, double aN, double bN, double QF,
                              double tau, double logdetP)
{
    double a0 = MODEL_RDCM_A0, b0 = MODEL_RDCM_B0;
    double elog_tau = gsl_sf_psi(aN) - log(bN);
    double ldl0 = 0, quad = 0, tr = 0;
    for (int i = 0; i < D; i++) {
        double d = mu[i] - m0[i];
        ldl0 += log(l0[i]);
        quad += l0[i] * d * d;
        tr += l0[i] * sdiag[i];
    }
    t[MODEL_RDCM_LOG_LIK] = bins / 2.0 * elog_tau - bins / 2.0 * LN_2PI - tau * QF;
    t[MODEL_RDCM_LOG_P_WEIGHT] = 0.5 * ldl0 - D / 2.0 * LN_2PI - 0.5 * quad - 0.5 * tr;
    t[MODEL_RDCM_LOG_P_PREC] = a0 * log(b0) - gsl_sf_lngamma(a0) + (a0 - 1) * elog_tau - b0 * tau;
    t[MODEL_RDCM_LOG_Q_WEIGHT] = -0.5 * logdetP + D / 2.0 * (1.0 + LN_2PI);
    t[MODEL_RDCM_LOG_Q_PREC] = aN - log(bN) + gsl_sf_lngamma(aN) + (1 - aN) * gsl_sf_psi(aN);
}

static double sum_terms(const double *t, int k)
{
    double s = 0;
    for (int i = 0; i < k; i++)
        s += t[i];
    return s;
}

static void trace_add(model_rdcm_trace *tr, double F, double tau)
{
    if (tr && tr->len < tr->cap) {
        tr->F[tr->len] = F;
        tr->tau[tr->len] = tau;
        tr->len++;
    }
}

/* sum_ij A_ij B_ij of two symmetric D x D matrices */
static double frobenius(const double *A, const double *B, int D)
{
    double s = 0;
    for (size_t i = 0; i < (size_t)D * D; i++)
        s += A[i] * B[i];
    return s;
}

/* rDCM VB with a Cholesky factor of the posterior precision per iteration. */
static int ridge_chol(const double *W, const double *v, double yy, int bins, const double *m0,
                      const double *l0, int D, model_rdcm_ws *ws, model_rdcm_fit *fit,
                      model_rdcm_trace *trace)
{
    size_t DD = (size_t)D * D;
    double tau = MODEL_RDCM_A0 / MODEL_RDCM_B0, F_old = -INFINITY;
    fit->aN = MODEL_RDCM_A0 + bins / 2.0;
    for (int it = 1; it <= MODEL_RDCM_MAXIT; it++) {
        for (size_t i = 0; i < DD; i++)
            ws->P[i] = tau * W[i];
        for (int i = 0; i < D; i++) {
            ws->P[i + (size_t)D * i] += l0[i];
            ws->rhs[i] = tau * v[i] + l0[i] * m0[i];
        }
        double logdetP = chol_inverse(ws->P, fit->Sigma, D);
        if (isnan(logdetP))
            return DCM_ERR_NUMERIC;
        cblas_dsymv(CblasColMajor, CblasLower, D, 1.0, fit->Sigma, D, ws->rhs, 1, 0.0, fit->mu, 1);
        cblas_dsymv(CblasColMajor, CblasLower, D, 1.0, W, D, fit->mu, 1, 0.0, ws->tmp, 1);
        double QF = 0.5 * (yy - 2.0 * cblas_ddot(D, fit->mu, 1, v, 1) +
                           cblas_ddot(D, fit->mu, 1, ws->tmp, 1)) +
                    0.5 * frobenius(W, fit->Sigma, D);
        fit->bN = MODEL_RDCM_B0 + QF;
        tau = fit->aN / fit->bN;
        for (int i = 0; i < D; i++)
            ws->sdiag[i] = fit->Sigma[i + (size_t)D * i];
        free_energy_terms(fit->terms, fit->mu, ws->sdiag, m0, l0, D, bins, fit->aN, fit->bN, QF,
                          tau, logdetP);
        fit->terms[MODEL_RDCM_LOG_P_Z] = fit->terms[MODEL_RDCM_LOG_Q_Z] = 0.0;
        fit->F = sum_terms(fit->terms, 5);
        fit->iterations = it;
        trace_add(trace, fit->F, tau);
        if ((F_old - fit->F) * (F_old - fit->F) < MODEL_RDCM_TOL)
            break;
        F_old = fit->F;
    }
    for (int i = 0; i < D; i++)
        fit->z[i] = 1.0;
    return DCM_OK;
}

extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info);

/* rDCM VB with one eigendecomposition: with S = L0^-1/2 and S W S = U Lambda
 * U', the precision tau W + L0 is S^-1 U (tau Lambda + I) U' S^-1 for every
 * tau, so each iteration costs O(D^2) instead of a D^3 factorisation:
 *   mu = S U (tau Lambda + I)^-1 U' S (tau v + L0 m0),
 *   Sigma_ii = s_i^2 sum_k U_ik^2 / (tau lambda_k + 1),
 *   tr(W Sigma) = sum_k lambda_k / (tau lambda_k + 1),
 *   ln|P| = sum ln l0 + sum_k ln(tau lambda_k + 1). */
static int ridge_eig(const double *W, const double *v, double yy, int bins, const double *m0,
                     const double *l0, int D, model_rdcm_ws *ws, model_rdcm_fit *fit,
                     model_rdcm_trace *trace)
{
    size_t DD = (size_t)D * D;
    double *U = ws->P, *lam = ws->g, *bv = ws->zG, *bm = ws->rhs, *y = ws->c_mu, *sc = ws->sdiag;
    double ldl0 = 0;
    for (int i = 0; i < D; i++) {
        sc[i] = 1.0 / sqrt(l0[i]);
        ldl0 += log(l0[i]);
    }
    for (int j = 0; j < D; j++)
        for (int i = 0; i < D; i++)
            U[i + (size_t)D * j] = sc[i] * W[i + (size_t)D * j] * sc[j];
    int info = 0, lwork = -1, liwork = -1, iq;
    double wq;
    dsyevd_("V", "L", &D, U, &D, lam, &wq, &lwork, &iq, &liwork, &info);
    lwork = (int)wq + 1, liwork = iq + 1;
    double *work = malloc(sizeof(double) * (size_t)lwork);
    int *iwork = malloc(sizeof(int) * (size_t)liwork);
    if (!work || !iwork) {
        free(work);
        free(iwork);
        return DCM_ERR_SYSTEM;
    }
    dsyevd_("V", "L", &D, U, &D, lam, work, &lwork, iwork, &liwork, &info);
    free(work);
    free(iwork);
    if (info != 0)
        return DCM_ERR_NUMERIC;
    /* U' S v and U' S L0 m0 */
    for (int i = 0; i < D; i++) {
        ws->tmp[i] = sc[i] * v[i];
        y[i] = sc[i] * l0[i] * m0[i];
    }
    cblas_dgemv(CblasColMajor, CblasTrans, D, D, 1.0, U, D, ws->tmp, 1, 0.0, bv, 1);
    cblas_dgemv(CblasColMajor, CblasTrans, D, D, 1.0, U, D, y, 1, 0.0, bm, 1);
    double tau = MODEL_RDCM_A0 / MODEL_RDCM_B0, F_old = -INFINITY, *sdiag = ws->SA;
    fit->aN = MODEL_RDCM_A0 + bins / 2.0;
    for (int it = 1; it <= MODEL_RDCM_MAXIT; it++) {
        double logdetP = ldl0, trWS = 0;
        for (int k = 0; k < D; k++) {
            double e = tau * lam[k] + 1.0;
            if (!(e > 0))
                return DCM_ERR_NUMERIC;
            logdetP += log(e);
            trWS += lam[k] / e;
            y[k] = (tau * bv[k] + bm[k]) / e;
        }
        cblas_dgemv(CblasColMajor, CblasNoTrans, D, D, 1.0, U, D, y, 1, 0.0, fit->mu, 1);
        for (int i = 0; i < D; i++) {
            fit->mu[i] *= sc[i];
            sdiag[i] = 0;
        }
        for (int k = 0; k < D; k++) {
            double dk = 1.0 / (tau * lam[k] + 1.0);
            const double *Uk = U + (size_t)D * k;
            for (int i = 0; i < D; i++)
                sdiag[i] += Uk[i] * Uk[i] * dk;
        }
        for (int i = 0; i < D; i++)
            sdiag[i] *= sc[i] * sc[i];
        cblas_dsymv(CblasColMajor, CblasLower, D, 1.0, W, D, fit->mu, 1, 0.0, ws->tmp, 1);
        double QF = 0.5 * (yy - 2.0 * cblas_ddot(D, fit->mu, 1, v, 1) +
                           cblas_ddot(D, fit->mu, 1, ws->tmp, 1)) +
                    0.5 * trWS;
        fit->bN = MODEL_RDCM_B0 + QF;
        double tau_used = tau;
        tau = fit->aN / fit->bN;
        free_energy_terms(fit->terms, fit->mu, sdiag, m0, l0, D, bins, fit->aN, fit->bN, QF, tau,
                          logdetP);
        fit->terms[MODEL_RDCM_LOG_P_Z] = fit->terms[MODEL_RDCM_LOG_Q_Z] = 0.0;
        fit->F = sum_terms(fit->terms, 5);
        fit->iterations = it;
        trace_add(trace, fit->F, tau);
        if ((F_old - fit->F) * (F_old - fit->F) < MODEL_RDCM_TOL || it == MODEL_RDCM_MAXIT) {
            /* the covariance of this iteration: S U (tau Lambda + I)^-1 U' S */
            double *V = ws->c_SA;
            for (int k = 0; k < D; k++) {
                double r = 1.0 / sqrt(tau_used * lam[k] + 1.0);
                for (int i = 0; i < D; i++)
                    V[i + (size_t)D * k] = sc[i] * U[i + (size_t)D * k] * r;
            }
            cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, D, D, 1.0, V, D, 0.0, fit->Sigma, D);
            for (int j = 0; j < D; j++)
                for (int i = 0; i < j; i++)
                    fit->Sigma[i + (size_t)D * j] = fit->Sigma[j + (size_t)D * i];
            break;
        }
        F_old = fit->F;
    }
    (void)DD;
    for (int i = 0; i < D; i++)
        fit->z[i] = 1.0;
    return DCM_OK;
}

void model_rdcm_ws_set_eig_from(model_rdcm_ws *ws, int D)
{
    ws->eig_from = D;
}

int model_rdcm_ridge(const double *W, const double *v, double yy, int bins, const double *m0,
                     const double *l0, int D, model_rdcm_ws *ws, model_rdcm_fit *fit,
                     model_rdcm_trace *trace)
{
    if (D >= ws->eig_from)
        return ridge_eig(W, v, yy, bins, m0, l0, D, ws, fit, trace);
    return ridge_chol(W, v, yy, bins, m0, l0, D, ws, fit, trace);
}

/* ---- sparse rDCM ------------------------------------------------------ */

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void model_rdcm_rng_seed(model_rdcm_rng *g, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ splitmix64(&stream);
    for (int i = 0; i < 4; i++)
        g->s[i] = splitmix64(&x);
}

uint64_t model_rdcm_rng_next(model_rdcm_rng *g)
{
    uint64_t *s = g->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* a uniformly random permutation of 0..D-1 (Fisher-Yates, unbiased) */
static void permutation(model_rdcm_rng *g, int *order, int D)
{
    for (int i = 0; i < D; i++)
        order[i] = i;
    for (int i = D - 1; i > 0; i--) {
        uint64_t bound = (uint64_t)i + 1, lim = UINT64_MAX - UINT64_MAX % bound, x;
        do
            x = model_rdcm_rng_next(g);
        while (x >= lim);
        int j = (int)(x % bound), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static double logit(double p)
{
    if (p <= 0)
        return -INFINITY;
    if (p >= 1)
        return INFINITY;
    return log(p / (1 - p));
}

/* q(theta) of sparse rDCM given the inclusion probabilities zG of the last
 * update. Regressors with zG_i = 0 exactly have no row in E[Z W Z]: their
 * precision is the prior's (Sigma_ii = 1/l0_i, mu_i = m0_i, uncoupled), so
 * only the block of the others (the active set) is factorised. The numbers
 * are those of the full D x D inverse (zero terms add nothing). */
static int sparse_theta(const double *W, const double *v, const double *m0, const double *l0,
                        const double *zG, double tau, int D, model_rdcm_ws *ws, double *mu)
{
    int na = 0;
    double ld = 0;
    for (int i = 0; i < D; i++) {
        ws->pos[i] = -1;
        mu[i] = m0[i];
        if (zG[i] != 0.0) {
            ws->pos[i] = na;
            ws->act[na++] = i;
        } else {
            ld += log(l0[i]);
        }
    }
    ws->na = na;
    double *P = ws->P, *SA = ws->SA, *tz = ws->tmp;
    for (int a = 0; a < na; a++)
        tz[a] = tau * zG[ws->act[a]];
    for (int b = 0; b < na; b++) {
        int j = ws->act[b];
        const double *Wj = W + (size_t)D * j;
        double *Pb = P + (size_t)na * b, tzj = tz[b], zj = zG[j];
        if (na == D)   /* every regressor active: contiguous, vectorised */
            for (int a = 0; a < na; a++)
                Pb[a] = tz[a] * zj * Wj[a];
        else
            for (int a = 0; a < na; a++)
                Pb[a] = tz[a] * zj * Wj[ws->act[a]];
        Pb[b] = tzj * Wj[j] + l0[j];
        ws->rhs[b] = tzj * v[j] + l0[j] * m0[j];
    }
    if (na > 0) {
        double ldA = chol_inverse(P, SA, na);
        if (isnan(ldA))
            return DCM_ERR_NUMERIC;
        ld += ldA;
        /* x = SA rhs by columns: each x_a sums over b in order, as a
         * dot product would, but na independent sums run side by side */
        double *x = ws->g;   /* free until the next sweep */
        for (int a = 0; a < na; a++)
            x[a] = 0.0;
        for (int b = 0; b < na; b++) {
            const double *Sb = SA + (size_t)na * b;
            double rb = ws->rhs[b];
            for (int a = 0; a < na; a++)
                x[a] += Sb[a] * rb;
        }
        for (int a = 0; a < na; a++)
            mu[ws->act[a]] = x[a];
    }
    ws->logdetP = ld;
    return DCM_OK;
}

/* ws->Sd = the dense Sigma of the current q(theta): Sd[j + D i] = Sigma_ji */
static void sparse_sigma_dense(model_rdcm_ws *ws, const double *l0, int D)
{
    double *Sd = ws->Sd;
    memset(Sd, 0, sizeof(double) * (size_t)D * D);
    for (int i = 0; i < D; i++)
        if (ws->pos[i] < 0)
            Sd[i + (size_t)D * i] = 1.0 / l0[i];
    for (int b = 0; b < ws->na; b++) {
        const double *Sb = ws->SA + (size_t)ws->na * b;
        double *col = Sd + (size_t)D * ws->act[b];
        for (int a = 0; a < ws->na; a++)
            col[ws->act[a]] = Sb[a];
    }
}

static void sparse_theta_save(model_rdcm_ws *ws, const double *mu, int D)
{
    size_t na = (size_t)ws->na;
    memcpy(ws->c_SA, ws->SA, sizeof(double) * na * na);
    memcpy(ws->c_act, ws->act, sizeof(int) * na);
    memcpy(ws->c_pos, ws->pos, sizeof(int) * (size_t)D);
    memcpy(ws->c_mu, mu, sizeof(double) * (size_t)D);
    ws->c_na = ws->na, ws->c_logdetP = ws->logdetP, ws->c_valid = 1;
}

static void sparse_theta_load(model_rdcm_ws *ws, double *mu, int D)
{
    size_t na = (size_t)ws->c_na;
    memcpy(ws->SA, ws->c_SA, sizeof(double) * na * na);
    memcpy(ws->act, ws->c_act, sizeof(int) * na);
    memcpy(ws->pos, ws->c_pos, sizeof(int) * (size_t)D);
    memcpy(mu, ws->c_mu, sizeof(double) * (size_t)D);
    ws->na = ws->c_na, ws->logdetP = ws->c_logdetP;
}

/* Insert i into the sorted list (length *len) if absent; remove it when
 * out. Keeping the list sorted keeps the sums below in index order, the
 * order of the dense sum over all regressors (zero terms add nothing). */
static void list_set(int *list, int *len, int i, int in)
{
    int a = 0;
    while (a < *len && list[a] < i)
        a++;
    int present = a < *len && list[a] == i;
    if (in && !present) {
        memmove(list + a + 1, list + a, sizeof(int) * (size_t)(*len - a));
        list[a] = i;
        (*len)++;
    } else if (!in && present) {
        memmove(list + a, list + a + 1, sizeof(int) * (size_t)(*len - a - 1));
        (*len)--;
    }
}

/* One sweep of coordinate updates of q(z), each using those before it:
 * g_i -= tau sum_j z_j Q_ji with z_i = 1, Q = W o (mu mu' + Sigma). Only
 * the non-zero z_j (a sorted list) enter the sum. */
static void sparse_z_sweep(const double *W, const double *v, const double *mu, double tau, int D, model_rdcm_rng *rng,
                           model_rdcm_ws *ws, double *z)
{
    double *g = ws->g;
    int *nzl = ws->nzlist, nnz = 0;
    for (int i = 0; i < D; i++) {
        g[i] = ws->lgt[i] + tau * mu[i] * v[i] +
               tau * W[i + (size_t)D * i] * (mu[i] * mu[i] + ws->Sd[i + (size_t)D * i]) / 2.0;
        if (z[i] != 0.0)
            nzl[nnz++] = i;
    }
    if (rng)
        permutation(rng, ws->order, D);
    else
        for (int i = 0; i < D; i++)
            ws->order[i] = i;
    for (int t = 0; t < D; t++) {
        int i = ws->order[t];
        if (z[i] == 0.0)   /* the list holds exactly the non-zero z */
            list_set(nzl, &nnz, i, 1);
        z[i] = 1.0;
        const double *Wi = W + (size_t)D * i, *Si = ws->Sd + (size_t)D * i;
        double s = 0, mi = mu[i];
        for (int a = 0; a < nnz; a++) {
            int j = nzl[a];
            s += z[j] * (Wi[j] * (mu[j] * mi + Si[j]));
        }
        g[i] -= tau * s;
        z[i] = 1.0 / (1.0 + exp(-g[i]));
        if (z[i] == 0.0)
            list_set(nzl, &nnz, i, 0);
    }
}

int model_rdcm_sparse(const double *W, const double *v, double yy, int bins, const double *m0,
                      const double *l0, const double *p0, int D, model_rdcm_rng *rng,
                      int same_start, model_rdcm_ws *ws, model_rdcm_fit *fit,
                      model_rdcm_trace *trace)
{
    double tau = MODEL_RDCM_A0 / MODEL_RDCM_B0, F_old = -INFINITY;
    double *z = fit->z, *zG = ws->zG, *mu = fit->mu;
    int *nz = ws->nzlist, nnz;   /* free again after the sweep */
    fit->aN = MODEL_RDCM_A0 + bins / 2.0;
    for (int i = 0; i < D; i++) {
        z[i] = zG[i] = p0[i];
        ws->lgt[i] = logit(p0[i]);
        ws->l1p[i] = log(1 - p0[i]);
        ws->lodd[i] = log(p0[i] / (1 - p0[i]));
    }
    for (int it = 1; it <= MODEL_RDCM_MAXIT; it++) {
        /* q(theta) given the z of the last update (before any pruning); the
         * first depends only on p0, so restarts share it */
        if (it == 1 && same_start && ws->c_valid) {
            sparse_theta_load(ws, mu, D);
        } else {
            int rc = sparse_theta(W, v, m0, l0, zG, tau, D, ws, mu);
            if (rc != DCM_OK)
                return rc;
            if (it == 1)
                sparse_theta_save(ws, mu, D);
        }
        sparse_sigma_dense(ws, l0, D);
        sparse_z_sweep(W, v, mu, tau, D, rng, ws, z);
        memcpy(zG, z, sizeof(double) * (size_t)D);
        /* q(tau): E||Yd - X Z theta||^2 / 2 with this mu, Sigma and the new z */
        nnz = 0;
        for (int i = 0; i < D; i++)
            if (zG[i] != 0.0)
                nz[nnz++] = i;
        double muZv = 0, muGmu = 0, trGS = 0;
        for (int a = 0; a < nnz; a++) {
            int i = nz[a];
            const double *Wi = W + (size_t)D * i, *Si = ws->Sd + (size_t)D * i;
            double zi = zG[i], mi = mu[i];
            muZv += mi * zi * v[i];
            for (int b = 0; b < nnz; b++) {
                int j = nz[b];
                double Gij = i == j ? zi * Wi[i] : zi * zG[j] * Wi[j];   /* E[Z W Z] */
                double Sij = Si[j];
                muGmu += mi * Gij * mu[j];
                trGS += Gij * Sij;
            }
        }
        double QF = 0.5 * yy - muZv + 0.5 * muGmu + 0.5 * trGS;
        fit->bN = MODEL_RDCM_B0 + QF;
        tau = fit->aN / fit->bN;
        /* prune: tiny means out, and their inclusion with them */
        for (int i = 0; i < D; i++) {
            if (fabs(mu[i]) < MODEL_RDCM_MU_ZERO)
                mu[i] = 0.0;
            if (mu[i] == 0.0)
                z[i] = 0.0;
            ws->sdiag[i] = ws->Sd[i + (size_t)D * i];
        }
        free_energy_terms(fit->terms, mu, ws->sdiag, m0, l0, D, bins, fit->aN, fit->bN, QF, tau,
                          ws->logdetP);
        double lpz = 0, lqz = 0;
        for (int i = 0; i < D; i++)
            if (z[i] > MODEL_RDCM_Z_MIN && z[i] < 1.0) {
                lpz += ws->l1p[i] + z[i] * ws->lodd[i];
                lqz += -(1 - z[i]) * log(1 - z[i]) - z[i] * log(z[i]);
            }
        fit->terms[MODEL_RDCM_LOG_P_Z] = lpz;
        fit->terms[MODEL_RDCM_LOG_Q_Z] = lqz;
        fit->F = sum_terms(fit->terms, MODEL_RDCM_NTERMS);
        fit->iterations = it;
        trace_add(trace, fit->F, tau);
        if ((F_old - fit->F) * (F_old - fit->F) < MODEL_RDCM_TOL)
            break;
        F_old = fit->F;
    }
    /* the posterior covariance of the last q(theta) */
    for (int j = 0; j < D; j++)
        for (int i = 0; i < D; i++)
            fit->Sigma[i + (size_t)D * j] = ws->Sd[i + (size_t)D * j];
    return DCM_OK;
}
