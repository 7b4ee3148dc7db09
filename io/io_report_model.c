/* io_report_model.c — reading a result for `dcm report` / `dcm review`:
 * time series, parameter names and fit statistics (see io_report.h). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_report.h"
#include "io/io_pnames.h"
#include "models/model_dcm.h"

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

static int fit_stats(io_report_model *m, dcm_error *err)
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

int io_report_load(const char *path, io_report_model *m, dcm_error *err)
{
    memset(m, 0, sizeof *m);
    m->TR = NAN;
    int rc = io_result_load(path, &m->s, err);
    if (rc)
        return rc;
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        goto fail;
    }
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
    for (int k = 0; k < np; k++) {
        double sd = io_report_param_sd(m, k);
        m->Pp[k] = (m->s.pV[k] > 0.0 && sd > 0.0)
                       ? 0.5 * erfc((m->s.pE[k] - fabs(m->s.Ep[k])) / sd / sqrt(2.0))
                       : NAN;
    }
    if ((rc = fit_stats(m, err)))
        goto fail;
    json_decref(root);
    return DCM_OK;
fail:
    json_decref(root);
    io_report_model_free(m);
    return rc;
}

void io_report_model_free(io_report_model *m)
{
    io_result_summary_free(&m->s);
    free(m->name);
    free(m->y_obs);
    free(m->y_pred);
    free(m->y_conf);
    free(m->F_trace);
    free(m->Pp);
    free(m->r2);
    memset(m, 0, sizeof *m);
    m->TR = NAN;
}

/* ------------------------------------------------------------------ */
/* parameters                                                           */

static void layout(const io_report_model *m, model_dcm_layout *L)
{
    model_dcm_layout_init(L, m->s.n, m->s.m, m->s.nd > 0);
}

int io_report_param_group(const io_report_model *m, int k, int *sub)
{
    model_dcm_layout L;
    layout(m, &L);
    const int n = m->s.n, nn = n * n;
    int dummy;
    if (!sub)
        sub = &dummy;
    *sub = 0;
    if (k < L.off_B)
        return IO_REPORT_GROUP_A;
    if (k < L.off_C) {
        *sub = (k - L.off_B) / nn;
        return IO_REPORT_GROUP_B;
    }
    if (k < L.off_D)
        return IO_REPORT_GROUP_C;
    if (k < L.off_transit) {
        *sub = (k - L.off_D) / nn;
        return IO_REPORT_GROUP_D;
    }
    return IO_REPORT_GROUP_HAEMO;
}

void io_report_param_ends(const io_report_model *m, int k, int *from, int *to)
{
    model_dcm_layout L;
    layout(m, &L);
    const int n = m->s.n, nn = n * n;
    *from = *to = -1;
    int r;
    if (k < L.off_B)
        r = k - L.off_A;
    else if (k < L.off_C)
        r = (k - L.off_B) % nn;
    else if (k < L.off_D) {
        r = k - L.off_C;    /* column-major n x m: row = region, column = input */
        *to = r % n;
        *from = r / n;
        return;
    } else if (k < L.off_transit)
        r = (k - L.off_D) % nn;
    else {
        if (k < L.off_decay)
            *to = k - L.off_transit;
        return;
    }
    *to = r % n;   /* row = target */
    *from = r / n; /* column = source */
}

void io_report_param_name(const io_report_model *m, int k, int style, char *buf, size_t len)
{
    /* one naming syntax everywhere (io_pnames.h), in figures too */
    (void)style;
    io_pname_space S = {m->s.n, m->s.m, m->s.nd, m->s.regions, m->s.inputs};
    if (io_pname_format(&S, k, buf, len))
        snprintf(buf, len, "?");
}

int io_report_param_free(const io_report_model *m, int k)
{
    return m->s.pV[k] > 0.0;
}

double io_report_param_sd(const io_report_model *m, int k)
{
    double c = m->s.Cp[(size_t)k * m->s.np + k];
    return c >= 0.0 ? sqrt(c) : NAN;
}
