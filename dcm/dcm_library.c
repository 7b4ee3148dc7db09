/* dcm_library.c — the public entry points that are not the estimator:
 * version, loading a problem from a file, problem and result accessors,
 * saving a result, and the one process-wide set-up a library caller
 * should not have to know about (see include/dcm/dcm.h). */
#include "dcm/dcm_api.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "io/io_mat.h"
#include "models/model_csd.h"
#include "io/io_pnames.h"
#include "io/io_result.h"
#include "io/io_spec.h"
#include "vl/vl_linalg.h"
#include "vl/vl_status.h"

/* OpenBLAS's own threads only add overhead on the small matrices of one
 * DCM; parallelism belongs to the caller (one estimate per thread). */
extern void openblas_set_num_threads(int);
/* OpenBLAS (pthreads build) starts its worker pool when it is loaded; the
 * idle workers spin in sched_yield for ~0.1 s of CPU before they sleep.
 * With one thread asked for they are never used: stop them (the library
 * starts them again itself should more threads ever be asked for). */
extern int blas_thread_shutdown_(void);

static pthread_once_t library_once = PTHREAD_ONCE_INIT;

static void library_setup(void)
{
    vl_init();                    /* GSL: return codes, not abort() */
    openblas_set_num_threads(1);
    blas_thread_shutdown_();
}

void dcm_library_init(void)
{
    pthread_once(&library_once, library_setup);
}

const char *dcm_version(void)
{
    return DCM_VERSION_STRING;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls > lx && !strcmp(s + ls - lx, suffix);
}

int dcm_problem_load(const char *spec_path, dcm_problem **P, dcm_error *err)
{
    dcm_library_init();
    if (!P)
        return dcm_error_set(err, DCM_ERR_USAGE, "dcm_problem_load: no place for the problem (P is NULL)");
    *P = NULL;
    if (!spec_path)
        return dcm_error_set(err, DCM_ERR_USAGE, "dcm_problem_load: no spec file named");
    return has_suffix(spec_path, ".mat") ? io_mat_load_dcm(spec_path, P, err)
                                         : io_spec_load(spec_path, P, err);
}

double dcm_result_free_energy(const dcm_result *R)
{
    return R ? R->F : 0.0 / 0.0;
}

int dcm_error_from_vl(int vl_status, const char *context, const char *detail, dcm_error *err)
{
    int code;
    switch (vl_status) {
    case VL_OK:
    case VL_WARN_NOCONV:
        return DCM_OK;
    case VL_ERR_INPUT: code = DCM_ERR_INPUT; break;
    case VL_ERR_NOMEM: code = DCM_ERR_SYSTEM; break;
    default: code = DCM_ERR_NUMERIC; break;
    }
    const char *what = detail && detail[0] ? detail : vl_status_str(vl_status);
    if (context && context[0])
        return dcm_error_set(err, code, "%s: %s", context, what);
    return dcm_error_set(err, code, "%s", what);
}

/* ---- accessors of include/dcm/dcm.h ---- */

int dcm_problem_regions(const dcm_problem *P) { return P ? P->n : -1; }
int dcm_problem_inputs(const dcm_problem *P) { return P ? P->m : -1; }
int dcm_problem_scans(const dcm_problem *P) { return P ? P->v : -1; }

const char *dcm_problem_region_name(const dcm_problem *P, int i)
{
    return P && i >= 0 && i < P->n ? P->region_names[i] : NULL;
}

const char *dcm_problem_input_name(const dcm_problem *P, int j)
{
    return P && j >= 0 && j < P->m ? P->input_names[j] : NULL;
}

/* The one place the public API meets the parameter naming of io/io_pnames.h
 * (its layout is the model's): the number of parameters of P, and with
 * name != NULL, *name = the malloc'd name of parameter k (NULL when out of
 * range or out of memory). */
static int problem_pnames(const dcm_problem *P, int k, char **name)
{
    io_pname_space S = {P->n, P->m, P->M->L.nd, P->region_names, P->input_names,
                        P->analysis == DCM_ANALYSIS_RDCM ? IO_PNAME_RDCM : P->analysis == DCM_ANALYSIS_CSD};
    if (name)
        *name = io_pname_name(&S, k);
    return io_pname_count(&S);
}

int dcm_problem_parameters(const dcm_problem *P)
{
    return P && P->M ? problem_pnames(P, 0, NULL) : -1;
}

int dcm_problem_parameter_name(const dcm_problem *P, int k, char *buf, size_t len)
{
    if (buf && len)
        buf[0] = 0;
    if (!P || !P->M || k < 0)
        return -1;
    char *name = NULL;
    int np = problem_pnames(P, k, &name);
    if (k >= np || !name) {
        free(name);
        return -1;
    }
    size_t whole = strlen(name);
    if (buf && len) {
        size_t cut = whole < len ? whole : len - 1;
        memcpy(buf, name, cut);
        buf[cut] = 0;
    }
    free(name);
    return whole > INT_MAX ? INT_MAX : (int)whole;
}

static int in_params(const dcm_result *R, int k) { return R && k >= 0 && k < R->np; }

int dcm_result_parameters(const dcm_result *R) { return R ? R->np : -1; }

double dcm_result_prior_mean(const dcm_result *R, int k)
{
    return in_params(R, k) ? R->pE[k] : NAN;
}

double dcm_result_prior_sd(const dcm_result *R, int k)
{
    return in_params(R, k) ? sqrt(fmax(R->pV[k], 0.0)) : NAN;
}

double dcm_result_posterior_mean(const dcm_result *R, int k)
{
    return in_params(R, k) ? R->Ep[k] : NAN;
}

/* A regression DCM keeps no Cp: parameter k's variance from its region's
 * diagonal (C in reported units: x 16 for empirical data). */
static double rdcm_var(const dcm_result *R, int k)
{
    const dcm_rdcm_result *X = R->rdcm;
    const int nn = X->n * X->n;
    const double s = X->has_baseline ? 16.0 : 1.0;
    return k < nn ? X->Var_A[k] : X->Var_C[k - nn] * s * s;
}

double dcm_result_posterior_sd(const dcm_result *R, int k)
{
    if (in_params(R, k) && !R->Cp && R->rdcm)
        return sqrt(fmax(rdcm_var(R, k), 0.0));
    return in_params(R, k) && R->Cp ? sqrt(fmax(R->Cp[(size_t)k * R->np + k], 0.0)) : NAN;
}

double dcm_result_posterior_cov(const dcm_result *R, int i, int j)
{
    if (in_params(R, i) && in_params(R, j) && !R->Cp && R->rdcm)   /* only the diagonal is kept */
        return i == j ? rdcm_var(R, i) : NAN;
    return in_params(R, i) && in_params(R, j) && R->Cp ? R->Cp[(size_t)i * R->np + j] : NAN;
}

double dcm_result_posterior_probability(const dcm_result *R, int k)
{
    return in_params(R, k) && R->Pp ? R->Pp[k] : NAN;
}

int dcm_result_regions(const dcm_result *R) { return R ? R->n : -1; }

double dcm_result_noise_log_precision(const dcm_result *R, int i)
{
    if (!R || !R->Eh || i < 0 || i >= R->n)
        return NAN;
    /* spectral DCM: one precision per channel (i, j); region i's own is (i, i) */
    return R->analysis == DCM_ANALYSIS_CSD ? R->Eh[i + (size_t)R->n * i] : R->Eh[i];
}

int dcm_result_iterations(const dcm_result *R) { return R ? R->iterations : -1; }
int dcm_result_converged(const dcm_result *R) { return R ? R->converged : -1; }
int dcm_result_stopped(const dcm_result *R) { return R ? R->stopped : -1; }
double dcm_result_seconds(const dcm_result *R) { return R ? R->seconds : NAN; }
int dcm_result_warning_count(const dcm_result *R) { return R ? R->warnings.count : -1; }

const char *dcm_result_warning(const dcm_result *R, int i)
{
    return R && i >= 0 && i < R->warnings.count ? R->warnings.items[i] : NULL;
}

int dcm_problem_load_json(const char *json_text, const char *base_dir, const char *name,
                          dcm_problem **P, dcm_error *err)
{
    dcm_library_init();
    if (!P)
        return dcm_error_set(err, DCM_ERR_USAGE, "dcm_problem_load_json: no place for the problem (P is NULL)");
    return io_spec_load_text(json_text, base_dir, name, IO_SPEC_DEFAULT, P, err);
}

/* R must be a fit of P: the checks dcm_result_save and dcm_result_json share. */
static int check_fit_of(const dcm_result *R, const dcm_problem *P, const char *fn, dcm_error *err)
{
    if (!P->M || R->n != P->n || R->v != P->v || R->np != problem_pnames(P, 0, NULL))
        return dcm_error_set(err, DCM_ERR_USAGE,
                             "%s: the result (%d regions, %d scans, %d parameters) is "
                             "not a fit of the problem %s (%d regions, %d scans): pass the problem "
                             "given to dcm_estimate",
                             fn, R->n, R->v, R->np, P->source ? P->source : "", P->n, P->v);
    return DCM_OK;
}

int dcm_result_json(const dcm_result *R, const dcm_problem *P, char **text, dcm_error *err)
{
    dcm_library_init();
    if (text)
        *text = NULL;
    if (!R || !P || !text)
        return dcm_error_set(err, DCM_ERR_USAGE, "dcm_result_json: %s is NULL",
                             !R ? "the result" : !P ? "the problem" : "the place for the text");
    int rc = check_fit_of(R, P, "dcm_result_json", err);
    return rc ? rc : io_result_json_text(P, R, text, err);
}

void dcm_free(void *p)
{
    free(p);
}

int dcm_result_save(const dcm_result *R, const dcm_problem *P, const char *path, dcm_error *err)
{
    dcm_library_init();
    if (!R || !P || !path)
        return dcm_error_set(err, DCM_ERR_USAGE, "dcm_result_save: %s is NULL",
                             !R ? "the result" : !P ? "the problem" : "the path");
    int rc = check_fit_of(R, P, "dcm_result_save", err);
    if (rc)
        return rc;
    return io_result_write_json(path, P, R, err);
}

int dcm_problem_prior(const dcm_problem *P, double *pE, double *pV, dcm_error *err)
{
    if (!P || !P->M)
        return dcm_error_set(err, DCM_ERR_USAGE, "dcm_problem_prior: no problem");
    if (P->analysis == DCM_ANALYSIS_RDCM)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: a regression DCM has no prior in SPM's flat "
                             "order (its priors are per region)", P->source ? P->source : "problem");
    const int np = problem_pnames(P, 0, NULL);
    double *e = malloc(sizeof(double) * (size_t)(np + 1)), *v = malloc(sizeof(double) * (size_t)(np + 1));
    if (!e || !v) {
        free(e);
        free(v);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    if (P->analysis == DCM_ANALYSIS_CSD)
        model_csd_priors(P->n, P->M->a, e, v);
    else
        model_dcm_priors(P->M, e, v);
    if (pE)
        memcpy(pE, e, sizeof(double) * (size_t)np);
    if (pV)
        memcpy(pV, v, sizeof(double) * (size_t)np);
    free(e);
    free(v);
    return DCM_OK;
}

/* Gaussian noise of SD sd(region)/snr added to each region of y (v x n), as
 * `dcm simulate --snr` adds it (same generator, same order of draws). */
static int add_noise(const dcm_problem *P, double snr, unsigned long seed, double *y, dcm_error *err)
{
    const int n = P->n, v = P->v;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    gsl_rng_set(rng, seed);
    int rc = DCM_OK;
    for (int j = 0; j < n && !rc; j++) {
        double mu = 0.0, ss = 0.0;
        for (int s = 0; s < v; s++)
            mu += y[s + (size_t)j * v];
        mu /= v;
        for (int s = 0; s < v; s++)
            ss += (y[s + (size_t)j * v] - mu) * (y[s + (size_t)j * v] - mu);
        double sdj = sqrt(ss / (v > 1 ? v - 1 : 1));
        if (sdj == 0.0) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "region %s has no signal with these parameters, so "
                               "an SNR cannot be set: give it a driving input or a connection",
                               P->region_names[j]);
            break;
        }
        for (int s = 0; s < v; s++)
            y[s + (size_t)j * v] += gsl_ran_gaussian(rng, sdj / snr);
    }
    gsl_rng_free(rng);
    return rc;
}

int dcm_simulate(const dcm_problem *P, const double *theta, double snr, unsigned long seed,
                 double *y, dcm_error *err)
{
    dcm_library_init();
    if (!P || !P->M || !y)
        return dcm_error_set(err, DCM_ERR_USAGE, "dcm_simulate: %s is NULL", !y ? "y" : "the problem");
    const int np = problem_pnames(P, 0, NULL);
    double *prior = NULL;
    if (!theta) {
        if (!(prior = malloc(sizeof(double) * (size_t)(np + 1))))
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        int rc = dcm_problem_prior(P, prior, NULL, err);
        if (rc) {
            free(prior);
            return rc;
        }
        theta = prior;
    }
    for (int k = 0; k < np; k++)
        if (!isfinite(theta[k])) {
            char name[256];
            dcm_problem_parameter_name(P, k, name, sizeof name);
            free(prior);
            return dcm_error_set(err, DCM_ERR_INPUT, "dcm_simulate: parameter %s is not finite", name);
        }
    int rc;
    if (P->analysis == DCM_ANALYSIS_CSD)
        rc = dcm_simulate_csd(P, theta, seed, snr > 0.0 ? snr : 0.0, y, err);
    else if (P->analysis == DCM_ANALYSIS_RDCM)
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: simulate a regression DCM with `dcm simulate` "
                           "(TAPAS's generator); dcm_simulate covers task and spectral DCMs",
                           P->source ? P->source : "problem");
    else if (!(rc = dcm_predict(P, theta, y, err)) && snr > 0.0 && isfinite(snr))
        rc = add_noise(P, snr, seed, y, err);
    free(prior);
    return rc;
}

int dcm_result_file_parameter_names(const char *path, char **names, int *count, dcm_error *err)
{
    dcm_library_init();
    if (names)
        *names = NULL;
    if (count)
        *count = 0;
    if (!path || !names)
        return dcm_error_set(err, DCM_ERR_USAGE, "dcm_result_file_parameter_names: %s is NULL",
                             !path ? "the path" : "the place for the names");
    io_result_summary S = {0};
    int rc = io_result_load(path, &S, err);
    if (rc) {
        io_result_summary_free(&S);
        return rc;
    }
    io_pname_space sp = io_result_space(&S);
    const int np = io_pname_count(&sp);
    size_t len = 0, cap = 64;
    char *out = malloc(cap);
    for (int k = 0; k < np && out; k++) {
        char *name = io_pname_name(&sp, k);
        size_t ln = name ? strlen(name) : 0;
        if (!name || len + ln + 2 > cap) {
            char *grown = name ? realloc(out, cap = 2 * (len + ln + 2)) : NULL;
            if (!grown) {
                free(out);
                out = NULL;
            }
            out = grown;
        }
        if (out) {
            memcpy(out + len, name, ln);
            len += ln;
            out[len++] = '\n';
        }
        free(name);
    }
    io_result_summary_free(&S);
    if (!out)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory while naming the parameters", path);
    out[len] = '\0';
    *names = out;
    if (count)
        *count = np;
    return DCM_OK;
}
