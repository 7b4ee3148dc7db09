/* report_model.c — reading a result for `dcm report` / `dcm review`:
 * time series, parameter names and fit statistics (see report.h). */
#define _XOPEN_SOURCE 700 /* realpath */
#include <gsl/gsl_cdf.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/report/report.h"
#include "io/io_pnames.h"
#include "models/model_layout.h"

static char *model_name(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t l = strlen(b);
    if (l > 5 && !strcmp(b + l - 5, ".json"))
        l -= 5;
    char *s = malloc(l + 1);
    if (s) {
        memcpy(s, b, l);
        s[l] = 0;
    }
    return s;
}

/* A v x n matrix stored as v rows of n numbers (null -> NaN) into a
 * column-major array. v < 0: take the row count from the file. */
static int read_rows(const char *path, const char *field, json_t *arr, int n, int *v,
                     double **out, dcm_error *err)
{
    *out = NULL;
    if (!json_is_array(arr))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"%s\" must be an array of rows (one per scan)",
                             path, field);
    int rows = (int)json_array_size(arr);
    if (*v >= 0 && rows != *v)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: \"%s\" has %d rows but \"observed_bold_scaled\" has %d", path,
                             field, rows, *v);
    if (rows == 0 || n == 0)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"%s\" is empty", path, field);
    double *y = malloc(sizeof(double) * (size_t)rows * (size_t)n);
    if (!y)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    for (int s = 0; s < rows; s++) {
        json_t *row = json_array_get(arr, (size_t)s);
        if (!json_is_array(row) || (int)json_array_size(row) != n) {
            free(y);
            return dcm_error_set(err, DCM_ERR_INPUT,
                                 "%s: \"%s\" row %d must hold %d numbers (one per region)", path,
                                 field, s + 1, n);
        }
        for (int j = 0; j < n; j++) {
            json_t *x = json_array_get(row, (size_t)j);
            if (json_is_number(x))
                y[s + (size_t)j * rows] = json_number_value(x);
            else if (json_is_null(x))
                y[s + (size_t)j * rows] = NAN;
            else {
                free(y);
                return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"%s\" row %d column %d is not a number",
                                     path, field, s + 1, j + 1);
            }
        }
    }
    *v = rows;
    *out = y;
    return DCM_OK;
}

static double variance(const double *x, int v)
{
    double mu = 0.0;
    int k = 0;
    for (int i = 0; i < v; i++)
        if (isfinite(x[i])) {
            mu += x[i];
            k++;
        }
    if (k < 2)
        return NAN;
    mu /= k;
    double s = 0.0;
    for (int i = 0; i < v; i++)
        if (isfinite(x[i]))
            s += (x[i] - mu) * (x[i] - mu);
    return s / (k - 1);
}

static int fit_stats(report_model *m, dcm_error *err)
{
    const int n = m->s.n, v = m->v;
    m->r2 = malloc(sizeof(double) * (size_t)(n ? n : 1));
    double *res = malloc(sizeof(double) * (size_t)(v ? v : 1));
    if (!m->r2 || !res) {
        free(res);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    for (int j = 0; j < n; j++) {
        if (!v) {
            m->r2[j] = NAN;
            continue;
        }
        const double *y = m->y_obs + (size_t)j * v, *p = m->y_pred + (size_t)j * v;
        const double *c = m->y_conf ? m->y_conf + (size_t)j * v : NULL;
        for (int s = 0; s < v; s++)
            res[s] = y[s] - p[s] - (c ? c[s] : 0.0);
        double vy = variance(y, v), vr = variance(res, v);
        m->r2[j] = vy > 0 ? 1.0 - vr / vy : NAN;
    }
    free(res);
    return DCM_OK;
}

static int json_int_or(json_t *o, const char *key, int dflt)
{
    json_t *x = json_object_get(o, key);
    if (json_is_boolean(x))
        return json_is_true(x);
    if (json_is_integer(x) && json_integer_value(x) >= INT_MIN && json_integer_value(x) <= INT_MAX)
        return (int)json_integer_value(x);
    return dflt;
}

static double json_num_or_nan(json_t *o, const char *key)
{
    json_t *x = json_object_get(o, key);
    return json_is_number(x) ? json_number_value(x) : NAN;
}

static void unknown_settings(report_model *m)
{
    m->TR = m->TE = m->hE = m->hC = NAN;
    m->nonlinear = m->centre = m->maxit = m->maxnodes = -1;
    m->nwarn = -1;
    m->diag_ve = m->diag_max_a = m->diag_neff = NAN;
    m->diag_accepted = -1;
    m->design.confound_columns = m->design.confound_constant = -1;
}

/* What was fitted, and the checks of dcm estimate: all optional (older
 * results and SPM's reference files lack some), but malformed ones are
 * errors. */
static int load_settings(const char *path, json_t *root, report_model *m, dcm_error *err)
{
    json_t *model = json_object_get(root, "model");
    json_t *opt = json_object_get(model, "options");
    m->TE = json_num_or_nan(model, "TE");
    json_t *dl = json_object_get(model, "delays");
    if (json_is_array(dl) && (int)json_array_size(dl) == m->s.n && m->s.n > 0) {
        if (!(m->delays = malloc(sizeof(double) * (size_t)m->s.n)))
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        for (int j = 0; j < m->s.n; j++) {
            json_t *x = json_array_get(dl, (size_t)j);
            m->delays[j] = json_is_number(x) ? json_number_value(x) : NAN;
        }
    }
    m->nonlinear = json_int_or(opt, "nonlinear", m->s.nd ? 1 : -1);
    m->centre = json_int_or(opt, "centre", -1);
    m->maxit = json_int_or(opt, "maxit", -1);
    m->maxnodes = json_int_or(opt, "maxnodes", -1);
    m->hE = json_num_or_nan(opt, "hE");
    m->hC = json_num_or_nan(opt, "hC");
    json_t *integ = json_object_get(opt, "integrator");
    if (json_is_string(integ) && !(m->integrator = strdup(json_string_value(integ))))
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    json_t *w = json_object_get(root, "warnings");
    if (w && !json_is_null(w)) {
        if (!json_is_array(w))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"warnings\" must be an array of strings", path);
        size_t k = json_array_size(w);
        if (!(m->warnings = calloc(k ? k : 1, sizeof(char *))))
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        m->nwarn = 0;
        for (size_t i = 0; i < k; i++) {
            json_t *x = json_array_get(w, i);
            if (!json_is_string(x))
                return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"warnings\" entry %zu must be a string", path,
                                     i + 1);
            if (!(m->warnings[m->nwarn] = strdup(json_string_value(x))))
                return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            m->nwarn++;
        }
    }
    json_t *dg = json_object_get(root, "diagnostics");
    if (json_is_object(dg)) {
        m->diag_ve = json_num_or_nan(dg, "variance_explained");
        m->diag_max_a = json_num_or_nan(dg, "max_abs_connection");
        m->diag_neff = json_num_or_nan(dg, "effective_parameters");
        m->diag_accepted = json_int_or(dg, "accepted_steps", -1);
    }
    return io_result_design_load(path, root, m->s.inputs, m->s.m, &m->design, err);
}

/* ------------------------------------------------------------------ */
/* spectral DCM                                                         */

/* One complex [w][i][j] array ({"real", "imag"}) into the model_csd layout
 * (re, im) at w + nw (i + n j); every element must be a number. Shapes are
 * checked in a first pass, so the allocation is never larger than the file. */
static int read_csd(const char *path, const char *name, json_t *c, int nw, int n, double **out,
                    dcm_error *err)
{
    json_t *part[2] = {json_object_get(c, "real"), json_object_get(c, "imag")};
    if (!json_is_object(c) || !json_is_array(part[0]) || !json_is_array(part[1]))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"spectra\".\"%s\" must be an object with "
                             "\"real\" and \"imag\" arrays", path, name);
    double *z = NULL;
    for (int pass = 0; pass < 2; pass++) {
        if (pass && !(z = *out = malloc(sizeof(double) * 2 * (size_t)nw * n * n)))
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        for (int p = 0; p < 2; p++) {
            if ((int)json_array_size(part[p]) != nw)
                return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"spectra\".\"%s\".\"%s\" has %zu "
                                     "frequencies but \"frequencies\" has %d", path, name,
                                     p ? "imag" : "real", json_array_size(part[p]), nw);
            for (int w = 0; w < nw; w++) {
                json_t *rows = json_array_get(part[p], (size_t)w);
                for (int i = 0; i < n; i++) {
                    json_t *row = json_array_get(rows, (size_t)i);
                    if (!json_is_array(rows) || (int)json_array_size(rows) != n || !json_is_array(row) ||
                        (int)json_array_size(row) != n)
                        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"spectra\".\"%s\".\"%s\" "
                                             "frequency %d must be %d x %d (one row per region)", path,
                                             name, p ? "imag" : "real", w + 1, n, n);
                    for (int j = 0; j < n; j++) {
                        json_t *x = json_array_get(row, (size_t)j);
                        if (!json_is_number(x))
                            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"spectra\".\"%s\".\"%s\""
                                                 "[%d][%d][%d] is not a number", path, name,
                                                 p ? "imag" : "real", w, i, j);
                        if (z)
                            z[2 * ((size_t)w + (size_t)nw * (i + (size_t)n * j)) + p] = json_number_value(x);
                    }
                }
            }
        }
    }
    return DCM_OK;
}

/* The "spectra" of a spectral result: required (the report draws them). */
static int read_spectra(const char *path, json_t *root, report_model *m, dcm_error *err)
{
    const int n = m->s.n;
    json_t *sp = json_object_get(root, "spectra");
    json_t *hz = json_object_get(sp, "frequencies");
    if (!json_is_object(sp) || !json_is_array(hz) || json_array_size(hz) < 2 ||
        json_array_size(hz) > 100000)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: a spectral DCM result needs \"spectra\" with "
                             "\"frequencies\" (at least 2), \"empirical\" and \"predicted\" (as dcm "
                             "estimate writes them)", path);
    m->nw = (int)json_array_size(hz);
    if (!(m->Hz = malloc(sizeof(double) * (size_t)m->nw)))
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    for (int w = 0; w < m->nw; w++) {
        json_t *x = json_array_get(hz, (size_t)w);
        m->Hz[w] = json_is_number(x) ? json_number_value(x) : NAN;
        if (!(m->Hz[w] > 0) || !isfinite(m->Hz[w]) || (w && !(m->Hz[w] > m->Hz[w - 1])))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"spectra\".\"frequencies\"[%d] must be a "
                                 "positive number above the one before it", path, w);
    }
    int rc = read_csd(path, "empirical", json_object_get(sp, "empirical"), m->nw, n, &m->csd_obs, err);
    if (!rc)
        rc = read_csd(path, "predicted", json_object_get(sp, "predicted"), m->nw, n, &m->csd_pred, err);
    return rc;
}

/* spm_dcm_fmri_csd's Pp: Phi(|Ep - pE| / sd), NaN for fixed parameters */
static void csd_probability(report_model *m)
{
    const int np = m->s.np;
    for (int k = 0; k < np; k++) {
        double v = m->s.Cp[(size_t)k * np + k];
        m->Pp[k] = m->s.pV[k] > 0.0 && v > 0.0
                       ? 0.5 * erfc(-fabs(m->s.Ep[k] - m->s.pE[k]) / sqrt(v) / sqrt(2.0))
                       : NAN;
    }
}

/* Variance of region i's auto-spectrum explained, as dcm review gives it. */
static int csd_fit_stats(report_model *m, dcm_error *err)
{
    const int n = m->s.n, nw = m->nw;
    if (!(m->r2 = malloc(sizeof(double) * (size_t)(n ? n : 1))))
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    for (int i = 0; i < n; i++) {
        double ps = 0.0, rs = 0.0;
        for (int w = 0; w < nw; w++)
            for (int p = 0; p < 2; p++) {
                size_t q = 2 * ((size_t)w + (size_t)nw * (i + (size_t)n * i)) + p;
                ps += m->csd_pred[q] * m->csd_pred[q];
                rs += (m->csd_obs[q] - m->csd_pred[q]) * (m->csd_obs[q] - m->csd_pred[q]);
            }
        m->r2[i] = ps + rs > 0 ? ps / (ps + rs) : NAN;
    }
    return DCM_OK;
}

int report_load(const char *path, report_model *m, dcm_error *err)
{
    memset(m, 0, sizeof *m);
    unknown_settings(m);
    /* one parse, by the one loader of result files (io_result.h) */
    json_t *root = NULL;
    int rc = io_result_load_doc(path, &m->s, &root, err);
    if (rc)
        return rc;
    const int n = m->s.n, np = m->s.np;
    if (!(m->name = model_name(path))) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto fail;
    }
    json_t *model = json_object_get(root, "model");
    json_t *tr = json_object_get(model, "TR");
    if (json_is_number(tr) && json_number_value(tr) > 0)
        m->TR = json_number_value(tr);
    /* time series */
    json_t *obs = json_object_get(root, "observed_bold_scaled");
    json_t *pred = json_object_get(root, "predicted_bold_scaled");
    json_t *conf = json_object_get(root, "fitted_confounds_scaled");
    if (obs && !json_is_null(obs)) {
        int v = -1;
        if ((rc = read_rows(path, "observed_bold_scaled", obs, n, &v, &m->y_obs, err)))
            goto fail;
        m->v = v;
    }
    if (m->s.csd) {   /* the fit is that of the spectra: no predicted series */
        if ((rc = read_spectra(path, root, m, err)))
            goto fail;
    } else if (obs && !json_is_null(obs)) {
        int v = m->v;
        if (!pred || json_is_null(pred)) {
            rc = dcm_error_set(err, DCM_ERR_INPUT,
                               "%s: has \"observed_bold_scaled\" but no \"predicted_bold_scaled\"", path);
            goto fail;
        }
        if ((rc = read_rows(path, "predicted_bold_scaled", pred, n, &v, &m->y_pred, err)))
            goto fail;
        if (conf && !json_is_null(conf) &&
            (rc = read_rows(path, "fitted_confounds_scaled", conf, n, &v, &m->y_conf, err)))
            goto fail;
        m->v = v;
    }
    /* free-energy trajectory */
    json_t *ft = json_object_get(root, "free_energy_trajectory");
    if (ft && !json_is_null(ft)) {
        if (!json_is_array(ft)) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"free_energy_trajectory\" must be an array of numbers",
                               path);
            goto fail;
        }
        m->ntrace = (int)json_array_size(ft);
        if (m->ntrace) {
            if (!(m->F_trace = malloc(sizeof(double) * (size_t)m->ntrace))) {
                rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
                goto fail;
            }
            for (int i = 0; i < m->ntrace; i++) {
                json_t *x = json_array_get(ft, (size_t)i);
                if (!json_is_number(x) && !json_is_null(x)) {
                    rc = dcm_error_set(err, DCM_ERR_INPUT,
                                       "%s: \"free_energy_trajectory\" entry %d is not a number", path, i + 1);
                    goto fail;
                }
                m->F_trace[i] = json_is_number(x) ? json_number_value(x) : NAN;
            }
        }
    }
    /* posterior probabilities, as dcm estimate computes them */
    if (!(m->Pp = malloc(sizeof(double) * (size_t)(np ? np : 1)))) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto fail;
    }
    if (m->s.csd)
        csd_probability(m);
    else
        dcm_posterior_probability(np, m->s.Ep, m->s.Cp, m->s.pE, m->s.pV, m->Pp);
    if ((rc = m->s.csd ? csd_fit_stats(m, err) : fit_stats(m, err)) || (rc = load_settings(path, root, m, err)))
        goto fail;
    json_decref(root);
    return DCM_OK;
fail:
    json_decref(root);
    report_model_free(m);
    return rc;
}

void report_model_free(report_model *m)
{
    io_result_summary_free(&m->s);
    free(m->name);
    free(m->y_obs);
    free(m->y_pred);
    free(m->y_conf);
    free(m->F_trace);
    free(m->Pp);
    free(m->r2);
    free(m->delays);
    free(m->integrator);
    free(m->Hz);
    free(m->csd_obs);
    free(m->csd_pred);
    if (m->warnings)
        for (int i = 0; i < m->nwarn; i++)
            free(m->warnings[i]);
    free(m->warnings);
    io_result_design_free(&m->design);
    memset(m, 0, sizeof *m);
    unknown_settings(m);
}

/* ------------------------------------------------------------------ */
/* unique names                                                         */

/* The last `depth` components of path (without ".json"), malloc'ed;
 * *whole is set when the path has no more components. */
static char *path_suffix(const char *path, int depth, int *whole)
{
    size_t l = strlen(path);
    if (l > 5 && !strcmp(path + l - 5, ".json"))
        l -= 5;
    while (l > 1 && path[l - 1] == '/')
        l--;
    size_t start = l;
    int d = 0;
    while (start > 0) {
        if (path[start - 1] == '/' && ++d == depth)
            break;
        start--;
    }
    *whole = start == 0;
    char *s = malloc(l - start + 1);
    if (s) {
        memcpy(s, path + start, l - start);
        s[l - start] = 0;
    }
    return s;
}

int report_unique_names(report_model *models, int k)
{
    if (k < 2)
        return 0;
    char **names = calloc((size_t)k, sizeof *names), **full = calloc((size_t)k, sizeof *full);
    int rc = -1;
    if (!names || !full)
        goto done;
    /* absolute paths tell "a/fwd.json" from "b/fwd.json" whatever the working directory */
    for (int i = 0; i < k; i++) {
        full[i] = realpath(models[i].s.path, NULL);
        if (!full[i] && !(full[i] = strdup(models[i].s.path)))
            goto done;
    }
    for (int i = 0; i < k; i++) {
        int clash = 0, nth = 1;
        for (int j = 0; j < k; j++)
            if (j != i && !strcmp(models[i].name, models[j].name)) {
                if (strcmp(full[i], full[j]))
                    clash = 1;
                else if (j < i)
                    nth++;
            }
        char *mine = NULL;
        /* the shortest suffix of i's path that no other file of that name ends with */
        for (int depth = 2; clash; depth++) {
            int whole = 0, unique = 1;
            if (!(mine = path_suffix(full[i], depth, &whole)))
                goto done;
            for (int j = 0; j < k && unique; j++) {
                if (j == i || strcmp(models[i].name, models[j].name) || !strcmp(full[i], full[j]))
                    continue;
                int w2;
                char *theirs = path_suffix(full[j], depth, &w2);
                if (!theirs)
                    goto done_mine;
                unique = strcmp(mine, theirs) != 0;
                free(theirs);
            }
            if (unique || whole)
                break;
            free(mine);
            mine = NULL;
        }
        if (nth > 1) { /* the same file again: number the repeats */
            const char *base = mine ? mine : models[i].name;
            size_t l = strlen(base) + 16;
            char *t = malloc(l);
            if (!t)
                goto done_mine;
            snprintf(t, l, "%s (%d)", base, nth);
            free(mine);
            mine = t;
        }
        names[i] = mine;
        continue;
    done_mine:
        free(mine);
        goto done;
    }
    for (int i = 0; i < k; i++)
        if (names[i]) {
            free(models[i].name);
            models[i].name = names[i];
            names[i] = NULL;
        }
    rc = 0;
done:
    for (int i = 0; names && i < k; i++)
        free(names[i]);
    for (int i = 0; full && i < k; i++)
        free(full[i]);
    free(names);
    free(full);
    return rc;
}

/* ------------------------------------------------------------------ */
/* parameters                                                           */

/* The block table of a loaded result (model_layout.h). */
static void table_of(const report_model *m, model_layout *T)
{
    if (m->s.csd)
        model_layout_init_csd(T, m->s.n);
    else
        model_layout_init(T, m->s.n, m->s.m, m->s.nd > 0, m->s.two_state);
}

void report_layout(const report_model *m, model_layout *T)
{
    table_of(m, T);
}

int report_param_group(const report_model *m, int k, int *sub)
{
    model_layout T;
    table_of(m, &T);
    int dummy, slice = 0;
    if (!sub)
        sub = &dummy;
    int b = model_layout_locate(&T, k, NULL, NULL, &slice);
    /* the slice names the input (B) or region (D) */
    *sub = b >= 0 && T.block[b].slice_axis ? slice : 0;
    switch (b) {
    case MODEL_BLOCK_A:
        return REPORT_GROUP_A;
    case MODEL_BLOCK_B:
        return REPORT_GROUP_B;
    case MODEL_BLOCK_C:
        return REPORT_GROUP_C;
    case MODEL_BLOCK_D:
        return REPORT_GROUP_D;
    case MODEL_BLOCK_CSD_A:
    case MODEL_BLOCK_CSD_B:
    case MODEL_BLOCK_CSD_C:
        return REPORT_GROUP_SPECTRA;
    default:
        return REPORT_GROUP_HAEMO;
    }
}

void report_param_ends(const report_model *m, int k, int *from, int *to)
{
    model_layout T;
    table_of(m, &T);
    int i, j, b = model_layout_locate(&T, k, &i, &j, NULL);
    *from = *to = -1;
    if (b < 0)
        return;
    /* row = target (a region), column = source (a region, or C's input) */
    if (T.block[b].row_axis)
        *to = i;
    if (T.block[b].col_axis)
        *from = j;
}

void report_param_name(const report_model *m, int k, int style, char *buf, size_t len)
{
    /* one naming syntax everywhere (io_pnames.h), in figures too */
    (void)style;
    io_pname_space S = io_result_space(&m->s);
    if (io_pname_format(&S, k, buf, len))
        snprintf(buf, len, "?");
}

size_t report_name_cap(const report_model *m)
{
    io_pname_space S = io_result_space(&m->s);
    return io_pname_cap(&S);
}

int report_param_free(const report_model *m, int k)
{
    return m->s.pV[k] > 0.0;
}

int report_input_on(const report_model *m, int k, int *times, double *seconds)
{
    const io_result_design *d = &m->design;
    *times = 0;
    *seconds = 0.0;
    if (d->nu < 1 || !d->u || k < 0 || k >= m->s.m)
        return -1;
    const double *u = d->u + (size_t)k * d->nu;
    for (int b = 0; b < d->nu; b++)
        if (u[b] != 0.0) {
            *seconds += d->dt;
            *times += b == 0 || u[b - 1] == 0.0;
        }
    return 0;
}

double report_interval_z(double threshold)
{
    return gsl_cdf_ugaussian_Pinv(threshold);
}

int report_param_beyond_prior(const report_model *m, int k, double z)
{
    double sd = report_param_sd(m, k), e = m->s.Ep[k];
    if (!report_param_free(m, k) || !(sd > 0.0) || !isfinite(e))
        return 0;
    /* Pp = Phi((|Ep| - pE) / sd) > Phi(z)  <=>  |Ep| - z sd > pE */
    return fabs(e) - z * sd > m->s.pE[k];
}

double report_param_sd(const report_model *m, int k)
{
    double c = m->s.Cp[(size_t)k * m->s.np + k];
    return c >= 0.0 ? sqrt(c) : NAN;
}
