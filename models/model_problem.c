/* model_problem.c — allocation, validation and design checks of a
 * dcm_problem: one fMRI DCM (models/model_dcm.h) with its data (see
 * model_problem.h). */
#include "models/model_problem.h"

#include "models/model_rdcm.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Names that differ only in case ("V1", "v1") are one region or input
 * typed twice: parameter names would tell them apart, a reader would not. */
static int same_name(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}
#define CASE_NOTE(a, b) strcmp(a, b) ? ", as \"" : "", strcmp(a, b) ? (a) : "", \
                        strcmp(a, b) ? "\": names that differ only in case are the same name" : ""

dcm_problem *dcm_problem_alloc(int n, int m, int v, int nonlinear)
{
    if (n < 1 || m < 0 || v < 1)
        return NULL;
    dcm_problem *P = calloc(1, sizeof *P);
    if (!P)
        return NULL;
    P->n = n;
    P->m = m;
    P->v = v;
    P->M = model_dcm_alloc(n, m, v, nonlinear);
    P->region_names = calloc((size_t)n, sizeof(char *));
    P->input_names = calloc((size_t)(m ? m : 1), sizeof(char *));
    P->Y = calloc((size_t)v * (size_t)n, sizeof(double));
    if (!P->M || !P->region_names || !P->input_names || !P->Y) {
        dcm_problem_free(P);
        return NULL;
    }
    P->nx0 = 0;
    P->X0 = NULL;
    P->centre = 0;
    P->maxit = 128;
    P->maxnodes = 8;
    P->hE = 6.0;
    P->hC = 1.0 / 128.0;
    return P;
}

dcm_problem *dcm_problem_alloc_rdcm(int n, int m, int v)
{
    dcm_problem *P = dcm_problem_alloc(n, m, v, 0);
    if (!P)
        return NULL;
    P->analysis = DCM_ANALYSIS_RDCM;
    P->rdcm = (dcm_rdcm_spec){.method = 0, .data = 1, .order = 0, .filter = 5.0, .np0 = 0,
                              .p0 = NULL, .restarts = 100, .seed = 2406ULL};   /* TAPAS's */
    for (int i = 0; i < n; i++)
        P->M->a[i + i * n] = 1.0;   /* self-connections are always estimated */
    return P;
}

dcm_problem *dcm_problem_alloc_csd(int n, int v)
{
    dcm_problem *P = dcm_problem_alloc(n, 0, v, 0);
    if (!P)
        return NULL;
    P->analysis = DCM_ANALYSIS_CSD;
    P->csd_order = 8;   /* SPM's spm_dcm_fmri_csd defaults */
    P->maxit = 128;
    P->maxnodes = 8;
    P->hE = 8.0;        /* the spectral noise hyperprior (fixed, model_csd) */
    P->hC = 1.0 / 128.0;
    for (int i = 0; i < n; i++)
        P->M->a[i + i * n] = 1.0;   /* self-connections are always free */
    return P;
}

void dcm_problem_free(dcm_problem *P)
{
    if (!P)
        return;
    if (P->region_names)
        for (int i = 0; i < P->n; i++)
            free(P->region_names[i]);
    if (P->input_names)
        for (int j = 0; j < P->m; j++)
            free(P->input_names[j]);
    free(P->region_names);
    free(P->input_names);
    model_dcm_free(P->M);
    free(P->Y);
    free(P->X0);
    free(P->source);
    free(P->rdcm.p0);
    dcm_warnings_free(&P->warnings);
    free(P);
}

/* Name of region i or input j for messages (never NULL). */
static const char *rname(const dcm_problem *P, int i)
{
    return P->region_names && P->region_names[i] ? P->region_names[i] : "?";
}

static const char *iname(const dcm_problem *P, int j)
{
    return P->input_names && P->input_names[j] ? P->input_names[j] : "?";
}

/* Check one switch value: finite and non-negative (it scales a prior
 * variance). */
static int check_switch(const char *src, double x,
                        const char *field, const char *what, dcm_error *err)
{
    if (!isfinite(x) || x < 0.0)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: switch %s%s is %g; connectivity switches must be "
                             "0 (off) or 1 (on)", src, field, what, x);
    return DCM_OK;
}

/* Spectral DCM (resting state): no inputs, no b, c or d; the a switches,
 * names, TR, finite data and enough scans for the MAR order of the data
 * feature. What task checks need (inputs, driving input, delays) does not
 * apply. */
/* Names of regions or inputs ("region"/"input"): present, usable (see
 * dcm_name_problem), and not repeated (ignoring case). */
static int check_names(char *const *names, int count, const char *kind, const char *src,
                       dcm_error *err)
{
    for (int i = 0; i < count; i++) {
        if (!names[i] || !names[i][0])
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: %s %d has no name", src, kind, i + 1);
        const char *why = dcm_name_problem(names[i]);
        if (why)
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: %s %d is called \"%s\": %s; rename it",
                                 src, kind, i + 1, names[i], why);
        for (int k = 0; k < i; k++)
            if (names[k] && same_name(names[k], names[i]))
                return dcm_error_set(err, DCM_ERR_INPUT,
                                     "%s: %s name \"%s\" is used twice (%ss %d and %d%s%s%s)",
                                     src, kind, names[i], kind, k + 1, i + 1,
                                     CASE_NOTE(names[k], names[i]));
    }
    return DCM_OK;
}

/* The data and the confounds are finite, and X0 is there when nx0 says so. */
static int check_data(const dcm_problem *P, const char *src, dcm_error *err)
{
    const int n = P->n, v = P->v;
    for (int i = 0; i < n; i++)
        for (int t = 0; t < v; t++)
            if (!isfinite(P->Y[t + (size_t)i * v]))
                return dcm_error_set(err, DCM_ERR_INPUT,
                                     "%s: data for region %s at scan %d is not finite (%g)",
                                     src, rname(P, i), t + 1, P->Y[t + (size_t)i * v]);
    if (P->nx0 < 0 || (P->nx0 > 0 && !P->X0))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: confounds: nx0 = %d but X0 is %s",
                             src, P->nx0, P->X0 ? "set" : "NULL");
    for (int k = 0; k < P->nx0; k++)
        for (int t = 0; t < v; t++)
            if (!isfinite(P->X0[t + (size_t)k * v]))
                return dcm_error_set(err, DCM_ERR_INPUT,
                                     "%s: confound column %d at scan %d is not finite", src, k + 1, t + 1);
    return DCM_OK;
}

/* Every "a" switch is 0 or 1 (check_switch). */
static int check_a_switches(const dcm_problem *P, const char *src, dcm_error *err)
{
    const int n = P->n;
    char what[256];
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++) {
            snprintf(what, sizeof what, " (%s -> %s)", rname(P, j), rname(P, i));
            if (check_switch(src, P->M->a[i + j * n], "a", what, err))
                return DCM_ERR_INPUT;
        }
    return DCM_OK;
}

static int validate_csd(const dcm_problem *P, const char *src, dcm_error *err)
{
    const model_dcm *M = P->M;
    const int n = P->n, v = P->v;
    if (P->m != 0 || M->m != 0 || M->nonlinear)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: spectral DCM (\"analysis\": \"csd\") has no experimental inputs and "
                             "no \"b\", \"c\" or \"d\" (the model is driven by endogenous "
                             "fluctuations); the problem has %d input%s%s",
                             src, P->m, P->m == 1 ? "" : "s", M->nonlinear ? " and is nonlinear" : "");
    if (M->n != n || M->v != v || !M->a || !P->Y || !P->region_names)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: model and problem sizes differ, or arrays are "
                             "unallocated", src);
    if (check_names(P->region_names, n, "region", src, err))
        return DCM_ERR_INPUT;
    char trmsg[300];
    if (dcm_check_tr(M->TR, trmsg, sizeof trmsg))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: %s", src, trmsg);
    if (!isfinite(M->TE) || M->TE <= 0.0 || M->TE >= M->TR)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"TE\" is %g; the echo time must be a positive "
                             "number of seconds below the TR (%g s)", src, M->TE, M->TR);
    if (P->maxit < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: option \"maxit\" is %d; it must be a whole "
                             "number of iterations of at least 1", src, P->maxit);
    const int p = P->csd_order;
    if (p < 2 || p > 64)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: option \"order\" is %d; the order of the "
                             "autoregressive model of the spectra must be from 2 to 64 (SPM: 8)",
                             src, p);
    /* the MAR(p) design has v - p rows and p n columns: it needs more rows */
    if ((long long)v - p <= (long long)p * n)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: too few scans for spectral DCM: %d scans, but a MAR(%d) model of "
                             "%d regions needs more than %d (order x (regions + 1)); use more scans "
                             "or a lower \"order\"", src, v, p, n, p * (n + 1));
    if (check_data(P, src, err))
        return DCM_ERR_INPUT;
    if (check_a_switches(P, src, err))
        return DCM_ERR_INPUT;
    return DCM_OK;
}

/* Regression DCM: the a and c switches, inputs at micro-time (m may be 0),
 * no b and no d (a linear model), series long enough to hold the fixed
 * HRF, and options TAPAS accepts. */
static int validate_rdcm(const dcm_problem *P, const char *src, dcm_error *err)
{
    const model_dcm *M = P->M;
    const int n = P->n, m = P->m, v = P->v;
    if (M->n != n || M->m != m || M->v != v || !M->a || !M->c || !P->Y || !P->region_names ||
        (m > 0 && (!M->u || !P->input_names)) || M->nu != v * MODEL_DCM_MICROTIME)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: model and problem sizes differ, or arrays are "
                             "unallocated", src);
    if (M->nonlinear)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: regression DCM is linear: it has no \"d\" "
                             "(gating) switches", src);
    for (size_t k = 0; M->b && k < (size_t)n * n * m; k++)
        if (M->b[k] != 0)
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: regression DCM is linear: it has no "
                                 "\"b\" (modulation) switches", src);
    if (check_names(P->region_names, n, "region", src, err) ||
        check_names(P->input_names, m, "input", src, err))
        return DCM_ERR_INPUT;
    char trmsg[300];
    if (dcm_check_tr(M->TR, trmsg, sizeof trmsg))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: %s", src, trmsg);
    if (v * M->TR < MODEL_RDCM_HRF_SUPPORT_S)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: the time series has %d scans x TR %g s = %g s, shorter than the "
                             "%g s the fixed haemodynamic response of rDCM spans; rDCM needs longer "
                             "series (typically hundreds of scans)", src, v, M->TR, v * M->TR,
                             MODEL_RDCM_HRF_SUPPORT_S);
    if (check_data(P, src, err) || check_a_switches(P, src, err))
        return DCM_ERR_INPUT;
    for (int j = 0; j < m; j++)
        for (int i = 0; i < n; i++) {
            char what[256];
            snprintf(what, sizeof what, " (%s -> %s)", iname(P, j), rname(P, i));
            if (check_switch(src, M->c[i + j * n], "c", what, err))
                return DCM_ERR_INPUT;
        }
    for (size_t k = 0; m > 0 && k < (size_t)M->nu * m; k++)
        if (!isfinite(M->u[k]))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: input %s is not finite at micro-time bin "
                                 "%zu", src, iname(P, (int)(k % m)), k / m + 1);
    const dcm_rdcm_spec *o = &P->rdcm;
    if (o->method != 0 && o->method != 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: unknown rDCM method %d", src, o->method);
    if (!(o->filter >= 0) || !isfinite(o->filter))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"rdcm\".\"filter\" is %g; the filter "
                             "strength must be a number >= 0 (TAPAS: 5)", src, o->filter);
    for (int i = 0; i < o->np0; i++)
        if (!(o->p0[i] > 0 && o->p0[i] < 1))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"rdcm\".\"p0\" value %d is %g; a prior "
                                 "inclusion probability must lie strictly between 0 and 1", src,
                                 i + 1, o->p0[i]);
    if (o->restarts < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"rdcm\".\"restarts\" is %d; it must be at "
                             "least 1 (TAPAS: 100)", src, o->restarts);
    return DCM_OK;
}

void dcm_problem_table(const dcm_problem *P, model_layout *T)
{
    if (P->analysis == DCM_ANALYSIS_RDCM)
        model_layout_init_rdcm(T, P->n, P->m);
    else if (P->analysis == DCM_ANALYSIS_CSD)
        model_layout_init_csd(T, P->n);
    else
        model_dcm_table(P->M, T);
}

int dcm_problem_validate(const dcm_problem *P, dcm_error *err)
{
    const char *src = P && P->source ? P->source : "problem";
    if (!P || !P->M)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: no model (problem or P->M is NULL)", src);
    const model_dcm *M = P->M;
    const int n = P->n, m = P->m, v = P->v;
    char what[256];

    if (n < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: need at least one region (n = %d)", src, n);
    if (P->analysis == DCM_ANALYSIS_CSD)
        return validate_csd(P, src, err);
    if (P->analysis == DCM_ANALYSIS_RDCM)
        return validate_rdcm(P, src, err);
    if (P->analysis != DCM_ANALYSIS_TASK)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: unknown analysis %d", src, (int)P->analysis);
    if (m < 1)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: need at least one input (m = %d); list them in \"inputs\"", src, m);
    if (v < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: need at least one scan (v = %d)", src, v);
    if (M->n != n || M->m != m)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: model has %d regions and %d inputs but the problem has %d and %d",
                             src, M->n, M->m, n, m);
    if (M->v != v)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: model has %d scans (M->v) but the data have %d (v)", src, M->v, v);
    if (M->nu != v * MODEL_DCM_MICROTIME)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: inputs have %d micro-time bins; expected %d (%d scans x %d)",
                             src, M->nu, v * MODEL_DCM_MICROTIME, v, MODEL_DCM_MICROTIME);
    if (!P->region_names || !P->input_names || !P->Y || !M->a || !M->b || !M->c ||
        !M->delays || !M->u || (M->nonlinear && !M->d))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: problem has unallocated arrays", src);

    /* names: present, non-empty, unique */
    if (check_names(P->region_names, n, "region", src, err))
        return DCM_ERR_INPUT;
    if (check_names(P->input_names, m, "input", src, err))
        return DCM_ERR_INPUT;

    /* scanner */
    char trmsg[300];
    if (dcm_check_tr(M->TR, trmsg, sizeof trmsg))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: %s", src, trmsg);
    if (!isfinite(M->TE) || M->TE <= 0.0)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: \"TE\" is %g; the echo time must be a positive number of seconds",
                             src, M->TE);
    /* the echo comes before the next excitation: a TE not below the TR is a
       unit slip (milliseconds), and it would change the BOLD model silently */
    if (M->TE >= M->TR) {
        char ms[80] = "";
        if (M->TE >= 1.0)
            snprintf(ms, sizeof ms, ": %g looks like milliseconds; write %g", M->TE, M->TE / 1000.0);
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: \"TE\" is %g s, not shorter than the TR (%g s); the echo time is in "
                             "seconds (typically 0.02 to 0.05)%s",
                             src, M->TE, M->TR, ms);
    }
    for (int i = 0; i < n; i++) {
        double d = M->delays[i];
        /* a delay written with more digits than the TR (3.2200001 for
           3.22) is the TR: tolerate a relative rounding of 1e-6 */
        if (!isfinite(d) || d < 0.0 || d > M->TR * (1.0 + 1e-6))
            return dcm_error_set(err, DCM_ERR_INPUT,
                                 "%s: \"delays\" for region %s is %.10g s; slice-timing delays must "
                                 "lie in [0, TR] = [0, %.10g] s", src, rname(P, i), d, M->TR);
    }
    if (M->two_state != 0 && M->two_state != 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: option two_state must be 0 or 1 (is %d)",
                             src, M->two_state);
    if (M->integrator != MODEL_INT_BILINEAR && M->integrator != MODEL_INT_ODE)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: unknown integrator %d; use \"bilinear\" or \"ode\"", src, M->integrator);

    /* options */
    if (P->maxit < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: option \"maxit\" is %d; it must be a whole "
                             "number of iterations of at least 1", src, P->maxit);
    if (!isfinite(P->hE))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: option \"hE\" must be a finite number", src);
    if (!isfinite(P->hC) || P->hC <= 0.0)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: option \"hC\" is %g; the noise prior variance must be positive",
                             src, P->hC);

    /* data */
    if (check_data(P, src, err))
        return DCM_ERR_INPUT;
    for (int t = 0; t < M->nu; t++)
        for (int j = 0; j < m; j++)
            if (!isfinite(M->u[(size_t)t * m + j]))
                return dcm_error_set(err, DCM_ERR_INPUT,
                                     "%s: input %s at micro-time bin %d is not finite",
                                     src, iname(P, j), t + 1);

    /* switches */
    if (check_a_switches(P, src, err))
        return DCM_ERR_INPUT;
    int any_c = 0;
    for (int j = 0; j < m; j++)
        for (int i = 0; i < n; i++) {
            double c = M->c[i + j * n];
            snprintf(what, sizeof what, " (input %s -> region %s)", iname(P, j), rname(P, i));
            if (check_switch(src, c, "c", what, err))
                return DCM_ERR_INPUT;
            if (c != 0.0)
                any_c = 1;
        }
    if (!any_c)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: no driving input: every entry of \"c\" is 0; at least one input must "
                             "drive a region (e.g. \"c\": {\"%s\": [\"%s\"]})",
                             src, iname(P, 0), rname(P, 0));
    for (int k = 0; k < m; k++)
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++) {
                double b = M->b[(size_t)k * n * n + i + j * n];
                snprintf(what, sizeof what, "[\"%s\"] (%s -> %s)", iname(P, k), rname(P, j), rname(P, i));
                if (check_switch(src, b, "b", what, err))
                    return DCM_ERR_INPUT;
                if (b != 0.0 && i != j && M->a[i + j * n] == 0.0)
                    return dcm_error_set(err, DCM_ERR_INPUT,
                                         "%s: impossible connectivity: input %s modulates %s -> %s "
                                         "(\"b\"), but that connection is absent from \"a\"; add "
                                         "%s -> %s to \"a\" or remove it from \"b\"",
                                         src, iname(P, k), rname(P, j), rname(P, i),
                                         rname(P, j), rname(P, i));
            }
    int any_d = 0;
    if (M->d) {
        for (int k = 0; k < n; k++)
            for (int j = 0; j < n; j++)
                for (int i = 0; i < n; i++) {
                    double d = M->d[(size_t)k * n * n + i + j * n];
                    snprintf(what, sizeof what, "[\"%s\"] (%s -> %s)", rname(P, k), rname(P, j),
                             rname(P, i));
                    if (check_switch(src, d, "d", what, err))
                        return DCM_ERR_INPUT;
                    if (d == 0.0)
                        continue;
                    any_d = 1;
                    if (i != j && M->a[i + j * n] == 0.0)
                        return dcm_error_set(err, DCM_ERR_INPUT,
                                             "%s: impossible connectivity: region %s modulates %s -> %s "
                                             "(\"d\"), but that connection is absent from \"a\"; add "
                                             "%s -> %s to \"a\" or remove it from \"d\"",
                                             src, rname(P, k), rname(P, j), rname(P, i),
                                             rname(P, j), rname(P, i));
                }
    }
    if (any_d && !M->nonlinear)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: \"d\" switches are on but the model is bilinear (M->nonlinear = 0); "
                             "allocate the problem with nonlinear = 1", src);
    if (M->L.n != n || M->L.m != m || M->L.nd != (M->nonlinear ? n : 0))
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: parameter layout is stale; call model_dcm_layout_init after "
                             "changing n, m or nonlinear", src);
    return DCM_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int dcm_problem_check_design(const dcm_problem *P, dcm_warnings *w, dcm_error *err)
{
    const char *src = P->source ? P->source : "problem";
    const int n = P->n, m = P->m, v = P->v;
    /* a constant region: nothing to explain, and SPM's scaling divides by
       its range; compare the range with the values' size so that rounding
       noise on a constant still counts as constant */
    for (int i = 0; i < n; i++) {
        const double *y = P->Y + (size_t)i * v;
        double lo = y[0], hi = y[0];
        for (int t = 1; t < v; t++) {
            lo = fmin(lo, y[t]);
            hi = fmax(hi, y[t]);
        }
        if (hi - lo <= 1e-12 * fmax(fabs(hi), fabs(lo)))
            return dcm_error_set(err, DCM_ERR_INPUT,
                                 "%s: region %s has zero variance (its time series is %g at all %d "
                                 "scans): there is nothing to fit; check that its column holds the "
                                 "region's data, or leave the region out",
                                 src, rname(P, i), y[0], v);
    }
    /* a region that holds one value at half the scans or more (constant
       but for a spike, or zero-filled): the fit explains a few scans */
    double *sorted = malloc(sizeof(double) * (size_t)(v > 0 ? v : 1));
    if (!sorted)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    for (int i = 0; i < n; i++) {
        memcpy(sorted, P->Y + (size_t)i * v, sizeof(double) * (size_t)v);
        qsort(sorted, (size_t)v, sizeof(double), cmp_double);
        int best = 0;
        double value = 0.0;
        for (int t = 0, run = 0; t < v; t++) {
            run = (t > 0 && sorted[t] == sorted[t - 1]) ? run + 1 : 1;
            if (run > best) {
                best = run;
                value = sorted[t];
            }
        }
        if (2 * best >= v &&
            dcm_warnings_add(w, "region %s is %g at %d of its %d scans: its variance comes from the "
                             "few other scans; check that its column holds the region's data",
                             rname(P, i), value, best, v)) {
            free(sorted);
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        }
    }
    free(sorted);
    /* an input that is on for less than one TR in total hardly changes the
       BOLD signal: its parameters stay at their priors */
    const model_dcm *M = P->M;
    const double dt = M->TR / MODEL_DCM_MICROTIME;
    for (int j = 0; j < m; j++) {
        int on = 0;
        for (int t = 0; t < M->nu; t++)
            on += M->u[(size_t)t * m + j] != 0.0;
        if (on * dt < M->TR &&
            dcm_warnings_add(w, "input \"%s\" is on for %.3g s in total, less than one TR (%g s): "
                             "its effects can hardly be estimated; check its durations (in seconds)",
                             iname(P, j), on * dt, M->TR))
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    return DCM_OK;
}
