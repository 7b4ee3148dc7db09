/* dcm_estimate.c — estimation of a DCM for fMRI: the data preparation
 * of SPM12's spm_dcm_estimate around the generic VL engine. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dcm/dcm_api.h"
#include "dcm/dcm_csd.h"
#include "dcm/dcm_rdcm.h"
#include "models/model_integrate.h"
#include "vl/vl_nlsi.h"

/* SPM's finite-difference step (spm_diff), as the engine's */
#define JAC_FD_STEP 3.3546262790251185e-04 /* exp(-8) */

typedef struct {
    const model_dcm *M;
    model_int_work *W;
    int last_flag;
    /* the Jacobian in threads: one workspace, parameter copy and
       prediction per thread, along the engine's directions V (its prior
       eigen-directions; for a diagonal prior the unit vectors of the
       parameters it moves, so the differences are those of unit columns
       to the bit, written straight into the engine's Jacobian: no np-wide
       copy); thread t takes directions t, t + T, ... */
    int nthreads, np, ny, ncols;
    model_int_work **Wt;   /* nthreads; Wt[0] = W */
    double *theta2, *f1;   /* nthreads x np, nthreads x ny */
    const double *V;       /* directions mode: np x nd, row-major */
    int nd;
    /* the parameters of W's last prediction: the Jacobian at them takes
       the columns that move observation-only parameters from its states */
    double *theta_last;    /* np */
    int last_valid;        /* W still holds the states of that prediction */
    char *done;            /* per column: already computed that way */
    /* the largest |z|_1 of the prediction at the Jacobian's theta (W's
       last), +Inf when unknown: columns that move haemodynamics alone
       integrate only the regions they move (model_int_predict_region) */
    double base_norm;
} predict_ctx;

/* vl_predict_fn: the BOLD prediction of the model in user at theta */
static int predict_bold(void *user, const double *theta, double *y)
{
    predict_ctx *c = user;
    int rc = model_int_predict(c->M, theta, y, c->W);
    c->last_flag = rc;
    if (c->theta_last)
        memcpy(c->theta_last, theta, sizeof(double) * c->np);
    c->last_valid = 1;
    return rc == MODEL_INT_FAILED ? -1 : rc;
}

typedef struct {
    predict_ctx *c;
    int t, rc;
    const double *theta, *f;
    double *out;   /* the engine's D (ldd columns) */
    int ld;
} jac_part;

/* Direction q's perturbed parameters into th: SPM's forward-difference
 * step, the engine's very expression (a zero entry of V leaves theta's
 * value as it is) */
static void perturb(const predict_ctx *c, int q, const double *theta, double *th)
{
    for (int k = 0; k < c->np; k++)
        th[k] = theta[k] + c->V[(size_t)k * c->nd + q] * JAC_FD_STEP;
}

/* The region whose haemodynamics alone column q moves
 * (model_dcm_haemo_region: its transit), -1 when it moves more */
static int column_region(const predict_ctx *c, int q)
{
    int region = -1;
    for (int k = 0; k < c->np; k++) {
        if (c->V[(size_t)k * c->nd + q] == 0.0)
            continue;
        const int r = model_dcm_haemo_region(c->M, k);
        if (r < 0 || (region >= 0 && r != region))
            return -1;
        region = r;
    }
    return region;
}

/* Thread t's columns by SPM's forward differences: each column is the
 * same computation whichever thread does it, so the Jacobian does not
 * depend on the number of threads. */
static void *jacobian_part(void *arg)
{
    jac_part *J = arg;
    predict_ctx *c = J->c;
    const int np = c->np, ny = c->ny, nq = c->nd;
    double *th = c->theta2 + (size_t)J->t * np, *f1 = c->f1 + (size_t)J->t * ny;
    for (int q = J->t; q < nq; q += c->nthreads) {
        if (c->done[q])
            continue;
        memcpy(th, J->theta, sizeof(double) * np);
        perturb(c, q, J->theta, th);
        int rc = MODEL_INT_UNSURE;
        const int region = isfinite(c->base_norm) ? column_region(c, q) : -1;
        if (region >= 0) {
            /* the other regions' states do not move: their columns of
               the prediction are the base's */
            memcpy(f1, J->f, sizeof(double) * ny);
            rc = model_int_predict_region(c->M, th, region, c->base_norm, f1, c->Wt[J->t]);
        }
        if (rc == MODEL_INT_UNSURE)
            rc = model_int_predict(c->M, th, f1, c->Wt[J->t]);
        if (rc == MODEL_INT_FAILED) {
            J->rc = -1;
            return NULL;
        }
        const int k = q;
        for (int r = 0; r < ny; r++)
            J->out[(size_t)r * J->ld + k] = (f1[r] - J->f[r]) / JAC_FD_STEP;
    }
    return NULL;
}

/* 1 when column q moves observation-only parameters alone */
static int observation_only(const predict_ctx *c, int q)
{
    int any = 0;
    for (int k = 0; k < c->np; k++)
        if (c->V[(size_t)k * c->nd + q] != 0.0) {
            if (!model_dcm_observation_only(c->M, k))
                return 0;
            any = 1;
        }
    return any;
}

/* All columns: first those that move the observation only, from the
 * states of the prediction at theta (the engine's last, checked: the same
 * numbers as integrating anew) before the threads reuse W; the rest
 * shared among c->nthreads threads. */
static int jacobian_columns(predict_ctx *c, const double *theta, const double *f, double *out,
                            int ld)
{
    const int nq = c->nd;
    memset(c->done, 0, (size_t)(nq > 0 ? nq : 1));
    int replay = c->last_valid && c->last_flag == MODEL_INT_OK &&
                 memcmp(c->theta_last, theta, sizeof(double) * c->np) == 0;
    c->base_norm = replay ? model_int_max_norm(c->W) : INFINITY;
    for (int q = 0; q < nq && replay; q++) {
        if (!observation_only(c, q))
            continue;
        memcpy(c->theta2, theta, sizeof(double) * c->np);
        perturb(c, q, theta, c->theta2);
        if (model_int_observe(c->M, c->theta2, c->f1, c->W))
            break;   /* cannot happen after an OK prediction: predict then */
        const int k = q;
        for (int r = 0; r < c->ny; r++)
            out[(size_t)r * ld + k] = (c->f1[r] - f[r]) / JAC_FD_STEP;
        c->done[q] = 1;
    }
    c->last_valid = 0;   /* the columns below integrate in W */
    jac_part part[64];
    pthread_t tid[64];
    int started[64] = {0};
    const int T = c->nthreads;
    for (int t = 0; t < T; t++)
        part[t] = (jac_part){c, t, 0, theta, f, out, ld};
    for (int t = 1; t < T; t++)
        started[t] = pthread_create(&tid[t], NULL, jacobian_part, &part[t]) == 0;
    jacobian_part(&part[0]);
    for (int t = 1; t < T; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            jacobian_part(&part[t]);   /* no thread: this one does its share */
    }
    for (int t = 0; t < T; t++)
        if (part[t].rc)
            return -1;
    return 0;
}

/* vl_jacobian_dirs_fn: the engine's differences along its directions */
static int jacobian_dirs_threads(void *user, const double *theta, const double *f,
                                 const double *V, int nd, double *D, int ldd)
{
    predict_ctx *c = user;
    if (nd > c->ncols)
        return -1;   /* more directions than set up for: cannot happen */
    c->V = V;
    c->nd = nd;
    return jacobian_columns(c, theta, f, D, ldd);
}

/* Set up the Jacobian hook for P->threads threads (one included: the hook
 * also skips the integration of observation-only columns and integrates
 * haemodynamic columns on their region's subsystem): up to np of the
 * engine's directions. Returns 0, -1 out of memory. */
static int jacobian_threads_init(predict_ctx *c, const dcm_problem *P, int np, int ny)
{
    int T = P->threads < 1 ? 1 : P->threads > 64 ? 64 : P->threads;
    c->nthreads = 1;
    c->np = np;
    c->ny = ny;
    const int ncols = np;   /* the engine's directions: at most np */
    c->ncols = ncols;
    c->Wt = calloc((size_t)T, sizeof *c->Wt);
    c->theta2 = malloc(sizeof(double) * np * T);
    c->f1 = malloc(sizeof(double) * (size_t)ny * T);
    c->theta_last = malloc(sizeof(double) * np);
    c->done = malloc((size_t)(np > 0 ? np : 1));
    if (!c->Wt || !c->theta2 || !c->f1 || !c->theta_last || !c->done)
        return -1;
    if (T > ncols)
        T = ncols > 0 ? ncols : 1;
    c->Wt[0] = c->W;
    c->nthreads = T;   /* before the workspaces: free releases those made */
    for (int t = 1; t < T; t++)
        if (!(c->Wt[t] = model_int_alloc(c->M)))
            return -1;
    return 0;
}

static void jacobian_threads_free(predict_ctx *c)
{
    if (c->Wt)
        for (int t = 1; t < c->nthreads; t++)
            model_int_free(c->Wt[t]);
    free(c->Wt);
    free(c->theta2);
    free(c->f1);
    free(c->theta_last);
    free(c->done);
}

/* The engine's status as a dcm_error (dcm_error_from_vl), with the advice
 * that only the brain model can give: the engine speaks of predictions and
 * sensitivities, the user of connections, inputs and TR. */
static int engine_error(const dcm_problem *P, int vrc, const char *msg, dcm_error *err)
{
    char context[600], detail[700];
    snprintf(context, sizeof context, "%s%sestimation failed", P->source ? P->source : "",
             P->source ? ": " : "");
    if (vrc == VL_ERR_MODEL)
        snprintf(detail, sizeof detail, "%s; check the connectivity switches, inputs and TR", msg);
    else
        snprintf(detail, sizeof detail, "%s", msg);
    return dcm_error_from_vl(vrc, context, detail, err);
}

/* SPM's options.centre: remove each input's mean over the session */
static void centre_inputs(model_dcm *M)
{
        for (int j = 0; j < M->m; j++) {
            double s = 0.0;
            for (int t = 0; t < M->nu; t++)
                s += M->u[t * M->m + j];
            s /= M->nu;
            for (int t = 0; t < M->nu; t++)
                M->u[t * M->m + j] -= s;
        }
}

/* The data as SPM fits them: each region's mean removed, then scaled so
 * that the largest excursion is at most 4 (SPM: "a maximum change of 4%").
 * y (v x n column-major) receives them; returns the scale. */
static double detrend_and_scale(const dcm_problem *P, double *y)
{
    const int n = P->n, v = P->v;
    double ymax = -INFINITY, ymin = INFINITY;
    for (int j = 0; j < n; j++) {
        double mu = 0.0;
        for (int s = 0; s < v; s++)
            mu += P->Y[s + j * v];
        mu /= v;
        for (int s = 0; s < v; s++) {
            double x = P->Y[s + j * v] - mu;
            y[s + j * v] = x;
            ymax = fmax(ymax, x);
            ymin = fmin(ymin, x);
        }
    }
    double scale = 4.0 / fmax(ymax - ymin, 4.0);
    for (int k = 0; k < n * v; k++)
        y[k] *= scale;
    return scale;
}

/* The engine's precision components: one per region (1 on its v scans of
 * the n v data, Q zeroed by the caller), with the options' hyperprior. */
static void region_noise(const dcm_problem *P, double *Q, double *hE, double *hC)
{
    const int n = P->n, v = P->v, ny = n * v;
    for (int j = 0; j < n; j++) {
        for (int s = 0; s < v; s++)
            Q[(size_t)j * ny + s + j * v] = 1.0;
        hE[j] = P->hE;
        hC[j] = P->hC;
    }
}

/* Move the engine's arrays into the result. */
static void take_fit(dcm_result *R, vl_result *V)
{
    R->Ep = V->Ep; V->Ep = NULL;
    R->Cp = V->Cp; V->Cp = NULL;
    R->Eh = V->Eh; V->Eh = NULL;
    R->F_trace = V->F_trace; V->F_trace = NULL;
    R->y_pred = V->y_pred; V->y_pred = NULL;
    R->y_conf = V->y_conf; V->y_conf = NULL;
    R->ntrace = V->ntrace;
    R->F = V->F;
    memcpy(R->L, V->L, sizeof R->L);
    R->iterations = V->iterations;
    R->converged = V->converged;
    R->stopped = V->stopped;
}

/* Probability that each effect exceeds its prior mean in size (NaN where
 * the prior variance or the posterior sd is 0). Non-zero without memory. */
static int posterior_probabilities(dcm_result *R)
{
    const int np = R->np;
    R->Pp = malloc(sizeof(double) * np);
    if (!R->Pp)
        return -1;
    dcm_posterior_probability(np, R->Ep, R->Cp, R->pE, R->pV, R->Pp);   /* the one Pp */
    return 0;
}

/* Fit checks (SPM's spm_dcm_fmri_check) and their warnings; a fit stopped
 * by the caller says so. Non-zero without memory. */
static int fit_checks(const dcm_problem *P, dcm_result *R, const double *pC_full,
                      dcm_warnings *warn)
{
    const int n = P->n, v = P->v, np = R->np;
    R->diag.variance_explained = dcm_variance_explained(R->y_obs, R->y_pred, R->y_conf, (size_t)n * v);
    double amax = -1.0;   /* stays < 0 for a single region: no connection */
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++)
            if (i != j)
                amax = fmax(amax, fabs(R->Ep[P->M->L.off_A + i + j * n]));
    R->diag.max_abs_connection = amax >= 0.0 ? amax : NAN;
    R->diag.effective_parameters =
        v > 1 ? dcm_kl_normal(np, R->Ep, R->Cp, R->pE, R->pV, pC_full) / log((double)v) : NAN;
    R->diag.accepted_steps = dcm_accepted_steps(R->F_trace, R->ntrace);
    if (R->stopped &&
        dcm_warnings_add(warn, "the fit was stopped by the caller after %d iterations, before "
                               "it converged", R->iterations))
        return -1;
    return dcm_diagnostics_warn(&R->diag, warn);
}

int dcm_predict(const dcm_problem *P, const double *theta, double *y,
                dcm_error *err)
{
    if (P->analysis == DCM_ANALYSIS_RDCM)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: a regression DCM is fitted in the frequency "
                             "domain; predicting BOLD from it is not supported", P->source ? P->source
                                                                                       : "problem");
    if (P->analysis == DCM_ANALYSIS_CSD)   /* its prediction is a spectrum (model_csd_predict) */
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: a spectral DCM predicts cross-spectra, not BOLD "
                             "time series", P->source ? P->source : "problem");
    model_dcm *M = model_dcm_copy(P->M); /* private: its inputs may be mean-centred */
    if (M && P->centre)
        centre_inputs(M);
    /* the integrator's schedule copies the inputs: build it after centring */
    model_int_work *W = M ? model_int_alloc(M) : NULL;
    if (!W) {
        model_dcm_free(M);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    int rc = model_int_predict(M, theta, y, W);
    model_int_free(W);
    model_dcm_free(M);
    if (rc == MODEL_INT_FAILED)
        return dcm_error_set(err, DCM_ERR_NUMERIC,
                             "the model's prediction is not finite for these parameters");
    if (rc == MODEL_INT_DIVERGED)
        return dcm_error_set(err, DCM_ERR_NUMERIC,
                             "the model diverges for these parameters (hidden states exceed 1e6); "
                             "check that the connectivity is stable (self-connections negative)");
    return DCM_OK;
}

/* The vl_model that dcm_estimate inverts for a task problem (dcm_api.h). */
int dcm_fmri_model_build(const dcm_problem *P, dcm_fmri_model *F)
{
    memset(F, 0, sizeof *F);
    const int n = P->n, v = P->v, ny = n * v;
    const int np = P->M->L.np;
    F->M = model_dcm_copy(P->M); /* private: its inputs may be mean-centred */
    F->Q = calloc((size_t)n * ny, sizeof(double));
    F->hE = malloc(sizeof(double) * n);
    F->hC = malloc(sizeof(double) * n);
    F->pE = malloc(sizeof(double) * np);
    F->pV = malloc(sizeof(double) * np);
    F->y = malloc(sizeof(double) * ny);
    if (!F->M || !F->Q || !F->hE || !F->hC || !F->pE || !F->pV || !F->y)
        goto fail;
    F->scale = detrend_and_scale(P, F->y);
    if (P->centre)
        centre_inputs(F->M);
    model_dcm_priors(F->M, F->pE, F->pV);
    region_noise(P, F->Q, F->hE, F->hC);
    const double *X0 = P->X0;
    int nx0 = P->nx0;
    if (nx0 == 0 || !X0) {
        F->ones = malloc(sizeof(double) * v);
        if (!F->ones)
            goto fail;
        for (int s = 0; s < v; s++)
            F->ones[s] = 1.0;
        X0 = F->ones;
        nx0 = 1;
    }
    /* large networks: SPM confines the prior on A to the data's principal
       modes (options.maxnodes) */
    if (P->maxnodes > 0 && n > P->maxnodes) {
        F->pC_full = dcm_mode_constrained_prior(F->y, v, n, X0, nx0, F->pV, np, P->maxnodes, NULL);
        if (!F->pC_full)
            goto fail;
    }
    /* the seam (docs/ARCHITECTURE.md, "The seam a new model implements"): the BOLD model as a vl_model */
    F->vm = (vl_model){.np = np, .pE = F->pE, .pV = F->pC_full ? NULL : F->pV, .pC = F->pC_full,
                       .ny = ny, .complex_data = 0,
                       .predict = predict_bold, .jacobian = NULL, .user = NULL,
                       .nh = n, .Q = F->Q, .hE = F->hE, .hC = F->hC,
                       .nb = v, .nx0 = nx0, .X0 = X0};
    return 0;
fail:
    dcm_fmri_model_free(F);
    return -1;
}

void dcm_fmri_model_free(dcm_fmri_model *F)
{
    model_dcm_free(F->M);
    free(F->Q);
    free(F->hE);
    free(F->hC);
    free(F->pE);
    free(F->pV);
    free(F->y);
    free(F->ones);
    free(F->pC_full);
    memset(F, 0, sizeof *F);
}

struct dcm_fmri_user {
    predict_ctx pc;
};

void *dcm_fmri_user_alloc(const dcm_fmri_model *F)
{
    struct dcm_fmri_user *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->pc.M = F->M;
    u->pc.W = model_int_alloc(F->M);
    if (!u->pc.W) {
        free(u);
        return NULL;
    }
    return u;
}

void dcm_fmri_user_free(void *user)
{
    struct dcm_fmri_user *u = user;
    if (!u)
        return;
    model_int_free(u->pc.W);
    free(u);
}

int dcm_estimate(const dcm_problem *P, dcm_progress_fn progress,
                 void *progress_ctx, dcm_result **out, dcm_error *err)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dcm_library_init();
    if (!out || !P)
        return dcm_error_set(err, DCM_ERR_USAGE, "dcm_estimate: %s is NULL", P ? "out" : "the problem");
    *out = NULL;
    if (P->analysis == DCM_ANALYSIS_CSD)   /* resting state: the spectra, not the series */
        return dcm_csd_estimate_problem(P, progress, progress_ctx, out, err);
    if (P->analysis == DCM_ANALYSIS_RDCM) {   /* one regression per region, no VL engine */
        int rrc = dcm_rdcm_estimate_problem(P, out, err);
        if (rrc == DCM_OK) {   /* the whole command's time, as the other paths */
            clock_gettime(CLOCK_MONOTONIC, &t1);
            (*out)->seconds = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
        }
        return rrc;
    }
    int rc = dcm_problem_validate(P, err);
    if (rc)
        return rc;
    /* design warnings: the loader's, then those found here */
    dcm_warnings warn = {0, NULL};
    if (dcm_warnings_copy(&warn, &P->warnings)) {
        dcm_warnings_free(&warn);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    if ((rc = dcm_problem_check_design(P, &warn, err))) {
        dcm_warnings_free(&warn);
        return rc;
    }
    const int np = P->M->L.np;
    rc = DCM_ERR_SYSTEM;
    dcm_fmri_model FM;
    model_int_work *W = NULL;
    dcm_result *R = calloc(1, sizeof *R);
    vl_result *V = NULL;
    predict_ctx pc = {0};
    if (dcm_fmri_model_build(P, &FM) || !R)
        goto fail;
    R->np = np;
    R->n = P->n;
    R->v = P->v;
    /* the result owns the priors and the data */
    R->pE = FM.pE; FM.pE = NULL;
    R->pV = FM.pV; FM.pV = NULL;
    R->y_obs = FM.y; FM.y = NULL;
    R->scale = FM.scale;
    W = model_int_alloc(FM.M);
    if (!W)
        goto fail;
    pc.M = FM.M;
    pc.W = W;
    const double *pC_full = FM.pC_full;
    if (jacobian_threads_init(&pc, P, np, P->n * P->v))
        goto fail;
    vl_problem VP = {.model = FM.vm, .y = R->y_obs, .P0 = NULL, .maxit = P->maxit,
                     .progress = progress, .progress_ctx = progress_ctx};
    VP.model.pE = R->pE;
    VP.model.pV = pC_full ? NULL : R->pV;
    VP.model.user = &pc;
    VP.model.jacobian_dirs = jacobian_dirs_threads;
    char msg[512] = "";
    int vrc = vl_nlsi(&VP, &V, msg, sizeof msg);
    if (vrc) {
        rc = engine_error(P, vrc, msg, err);
        goto cleanup;
    }
    if (V->predict_flag != MODEL_INT_OK) {
        rc = dcm_error_set(err, DCM_ERR_NUMERIC,
                           "%s%sthe estimated model diverges (hidden states exceed 1e6): "
                           "its prediction is not usable; check the connectivity and inputs",
                           P->source ? P->source : "", P->source ? ": " : "");
        goto cleanup;
    }
    take_fit(R, V);
    if (posterior_probabilities(R) || fit_checks(P, R, pC_full, &warn))
        goto fail;
    R->warnings = warn;
    warn.count = 0;
    warn.items = NULL;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    R->seconds = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    *out = R;
    R = NULL;
    rc = DCM_OK;
    goto cleanup;
fail:
    rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
cleanup:
    dcm_warnings_free(&warn);
    vl_result_free(V);
    jacobian_threads_free(&pc);
    model_int_free(W);
    dcm_result_free(R);
    dcm_fmri_model_free(&FM);
    return rc;
}
