/* report_peb.c — second-level results in the report: a PEB result (the
 * parameter x covariate effects with their intervals, Bayesian model
 * averages with Pp after a search) and a leave-one-out result (predicted
 * against true covariate, as spm_dcm_loo's figure). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/report/plot.h"
#include "dcm/report/report.h"

#define PEB_FIG_W 960.0
#define PEB_Z90 1.6448536269514722 /* 90% interval, as spm_plot_ci */

void report_second_free(report_second *s)
{
    if (!s)
        return;
    for (int k = 0; k < s->np && s->pnames; k++)
        free(s->pnames[k]);
    for (int j = 0; j < s->nx && s->xnames; j++)
        free(s->xnames[j]);
    for (int i = 0; i < s->nsub && s->subjects; i++)
        free(s->subjects[i]);
    free(s->pnames);
    free(s->xnames);
    free(s->subjects);
    free(s->mean);
    free(s->sd);
    free(s->prob);
    free(s->truth);
    free(s->pred);
    free(s->pred_sd);
    free(s->path);
    free(s->covariate);
    memset(s, 0, sizeof *s);
}

static int index_of(char **names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s))
            return i;
    return -1;
}

static int load_peb(json_t *o, report_second *s, dcm_error *err)
{
    json_t *eff = json_object_get(o, "effects"), *g = json_object_get(o, "group");
    const size_t ne = json_array_size(eff);
    s->kind = REPORT_SECOND_PEB;
    s->search = json_object_get(o, "search") != NULL;
    s->F = json_number_value(json_object_get(g, "F"));
    s->iterations = (int)json_integer_value(json_object_get(g, "iterations"));
    s->converged = json_is_true(json_object_get(g, "converged"));
    s->nsub = 0;
    s->pnames = calloc(ne + 1, sizeof(char *));
    s->xnames = calloc(ne + 1, sizeof(char *));
    if (!s->pnames || !s->xnames)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    for (size_t k = 0; k < ne; k++) {
        json_t *e = json_array_get(eff, k);
        const char *p = json_string_value(json_object_get(e, "parameter"));
        const char *x = json_string_value(json_object_get(e, "covariate"));
        if (!p || !x || !json_is_number(json_object_get(e, "mean")) || !json_is_number(json_object_get(e, "sd")))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"effects\"[%zu] needs parameter, covariate, mean and sd",
                                 s->path, k);
        if (index_of(s->pnames, s->np, p) < 0 && !(s->pnames[s->np++] = strdup(p)))
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        if (index_of(s->xnames, s->nx, x) < 0 && !(s->xnames[s->nx++] = strdup(x)))
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    const size_t nb = (size_t)s->np * s->nx;
    s->mean = calloc(nb + 1, sizeof(double));
    s->sd = calloc(nb + 1, sizeof(double));
    s->prob = malloc(sizeof(double) * (nb + 1));
    if (!s->mean || !s->sd || !s->prob)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    for (size_t k = 0; k < nb; k++)
        s->prob[k] = NAN;
    for (size_t k = 0; k < ne; k++) {
        json_t *e = json_array_get(eff, k);
        int q = index_of(s->pnames, s->np, json_string_value(json_object_get(e, "parameter")));
        int j = index_of(s->xnames, s->nx, json_string_value(json_object_get(e, "covariate")));
        size_t idx = (size_t)q + (size_t)j * s->np;
        s->mean[idx] = json_number_value(json_object_get(e, "mean"));
        s->sd[idx] = json_number_value(json_object_get(e, "sd"));
        json_t *p = json_object_get(e, "probability");
        if (json_is_number(p))
            s->prob[idx] = json_number_value(p);
    }
    return DCM_OK;
}

static int load_loo(json_t *o, report_second *s, dcm_error *err)
{
    json_t *subs = json_object_get(o, "subjects");
    s->kind = REPORT_SECOND_LOO;
    s->nsub = (int)json_array_size(subs);
    const char *cov = json_string_value(json_object_get(o, "covariate"));
    s->covariate = strdup(cov ? cov : "covariate");
    s->subjects = calloc((size_t)s->nsub + 1, sizeof(char *));
    s->truth = malloc(sizeof(double) * ((size_t)s->nsub + 1));
    s->pred = malloc(sizeof(double) * ((size_t)s->nsub + 1));
    s->pred_sd = malloc(sizeof(double) * ((size_t)s->nsub + 1));
    json_t *params = json_object_get(o, "parameters");
    s->np = (int)json_array_size(params);
    s->pnames = calloc((size_t)s->np + 1, sizeof(char *));
    if (!s->covariate || !s->subjects || !s->truth || !s->pred || !s->pred_sd || !s->pnames)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    for (int k = 0; k < s->np; k++) {
        const char *p = json_string_value(json_array_get(params, (size_t)k));
        if (!(s->pnames[k] = strdup(p ? p : "?")))
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    for (int i = 0; i < s->nsub; i++) {
        json_t *e = json_array_get(subs, (size_t)i);
        const char *name = json_string_value(json_object_get(e, "subject"));
        json_t *t = json_object_get(e, "true"), *p = json_object_get(e, "predicted"), *d = json_object_get(e, "sd");
        if (!name || !json_is_number(t) || !json_is_number(p) || !json_is_number(d))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"subjects\"[%d] needs subject, true, predicted and sd",
                                 s->path, i);
        if (!(s->subjects[i] = strdup(name)))
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        s->truth[i] = json_number_value(t);
        s->pred[i] = json_number_value(p);
        s->pred_sd[i] = json_number_value(d);
    }
    json_t *r = json_object_get(o, "r"), *p = json_object_get(o, "p"), *p2 = json_object_get(o, "p_two_sided");
    s->r = json_is_number(r) ? json_number_value(r) : NAN;
    s->p = json_is_number(p) ? json_number_value(p) : NAN;
    s->p_two_sided = json_is_number(p2) ? json_number_value(p2) : NAN;
    if (s->nsub < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: a leave-one-out result with no subjects", s->path);
    return DCM_OK;
}

int report_second_load(const char *path, report_second *s, dcm_error *err)
{
    memset(s, 0, sizeof *s);
    json_error_t je;
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s, line %d: not JSON (%s)", path, je.line, je.text);
    s->path = strdup(path);
    const char *kind = json_string_value(json_object_get(o, "kind"));
    int rc = !s->path                        ? dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory")
             : kind && !strcmp(kind, "loo")  ? load_loo(o, s, err)
             : json_is_array(json_object_get(o, "effects")) ? load_peb(o, s, err)
                                                            : dcm_error_set(err, DCM_ERR_INPUT,
                                                                            "%s is neither a PEB nor a "
                                                                            "leave-one-out result", path);
    json_decref(o);
    if (rc)
        report_second_free(s);
    return rc;
}

int report_fig_peb(const report_second *s, int j, plot_figure *f)
{
    if (!s || s->kind != REPORT_SECOND_PEB || j < 0 || j >= s->nx || s->np < 1)
        return -1;
    const int np = s->np;
    plot_figure tmp;
    cairo_t *mcr = plot_figure_begin(&tmp, 10, 10);
    if (!mcr)
        return -1;
    double namew = 0;
    for (int q = 0; q < np; q++)
        namew = fmax(namew, plot_text_width(mcr, s->pnames[q], 10.5, PLOT_NORMAL));
    plot_figure_free(&tmp);
    const double W = PEB_FIG_W, left = 80, right = 24, top = 64, ph = 260, names_h = namew * 0.7071 + 24;
    const double H = top + ph + names_h + 12;
    cairo_t *cr = plot_figure_begin(f, W, H);
    if (!cr)
        return -1;
    double lo = 0, hi = 0;
    for (int q = 0; q < np; q++) {
        double m = s->mean[q + j * np], d = s->sd[q + j * np];
        if (isfinite(m) && isfinite(d)) {
            lo = fmin(lo, m - PEB_Z90 * d);
            hi = fmax(hi, m + PEB_Z90 * d);
        }
    }
    char title[512], sub[512];
    snprintf(title, sizeof title, "%s: %s", s->search ? "Bayesian model average" : "Group effects", s->xnames[j]);
    snprintf(sub, sizeof sub, "mean and 90%% interval per parameter; F = %.2f, %d iterations%s%s", s->F,
             s->iterations, s->converged ? "" : " (NOT converged)",
             s->search ? "; Pp above each bar (* Pp > 0.95)" : "");
    plot_title(cr, W, 10, title, sub);
    plot_axes ax;
    plot_axes_init(&ax, cr, left, top, W - left - right, ph, 0.4, np + 0.6, lo, hi, 1);
    ax.xmin = 0.4;
    ax.xmax = np + 0.6;
    ax.xstep = 0;
    plot_axes_draw(&ax, NULL, "effect", PLOT_YTICKS | PLOT_YGRID | PLOT_ZERO_Y);
    for (int q = 0; q < np; q++) {
        double m = s->mean[q + j * np], d = s->sd[q + j * np], pp = s->prob[q + j * np];
        io_rgb col = isfinite(pp) && pp > 0.95 ? plot_palette(0) : plot_rgb(0.62, 0.72, 0.85);
        plot_vbar(&ax, q + 1.0, 0.6, 0.0, isfinite(m) ? m : 0.0, col);
        if (isfinite(d) && d > 0)
            plot_vinterval(&ax, q + 1.0, m - PEB_Z90 * d, m + PEB_Z90 * d, PLOT_BLACK, 1.4, 3);
        if (s->search && isfinite(pp)) {
            char buf[32];
            snprintf(buf, sizeof buf, "%.2f%s", pp, pp > 0.95 ? "*" : "");
            plot_text(cr, plot_px(&ax, q + 1.0), ax.y + 4, buf, 9.5, PLOT_CENTRE, PLOT_TOP, 0, PLOT_NORMAL,
                      PLOT_GREY);
        }
        double px = plot_px(&ax, q + 1.0), py = ax.y + ax.h + 6;
        plot_text(cr, px, py, s->pnames[q], 10.5, PLOT_RIGHT, PLOT_TOP, -0.7853981633974483, PLOT_NORMAL, PLOT_BLACK);
    }
    return 0;
}

int report_fig_loo(const report_second *s, plot_figure *f)
{
    if (!s || s->kind != REPORT_SECOND_LOO || s->nsub < 1)
        return -1;
    const double W = PEB_FIG_W, H = 520, left = 86, right = 40, top = 70, bottom = 60;
    cairo_t *cr = plot_figure_begin(f, W, H);
    if (!cr)
        return -1;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < s->nsub; i++) {
        xlo = fmin(xlo, s->truth[i]);
        xhi = fmax(xhi, s->truth[i]);
        ylo = fmin(ylo, s->pred[i] - PEB_Z90 * s->pred_sd[i]);
        yhi = fmax(yhi, s->pred[i] + PEB_Z90 * s->pred_sd[i]);
    }
    double pad = (xhi - xlo) * 0.05 + 1e-9;
    char title[512], sub[512];
    snprintf(title, sizeof title, "Leave-one-out prediction of %s", s->covariate);
    snprintf(sub, sizeof sub, "%d subjects; r = %.3f, p = %.4f one-tailed (as SPM), %.4f two-sided; from %s%s",
             s->nsub, s->r, s->p, s->p_two_sided, s->np > 0 ? s->pnames[0] : "?", s->np > 1 ? ", ..." : "");
    plot_title(cr, W, 10, title, sub);
    plot_axes ax;
    plot_axes_init(&ax, cr, left, top, W - left - right, H - top - bottom, xlo - pad, xhi + pad, ylo, yhi, 1);
    char xl[256], yl[256];
    snprintf(xl, sizeof xl, "true %s", s->covariate);
    snprintf(yl, sizeof yl, "predicted %s (90%% interval)", s->covariate);
    plot_axes_draw(&ax, xl, yl, PLOT_XTICKS | PLOT_YTICKS | PLOT_XGRID | PLOT_YGRID);
    /* least-squares line of predicted on true */
    double mx = 0, my = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < s->nsub; i++) {
        mx += s->truth[i] / s->nsub;
        my += s->pred[i] / s->nsub;
    }
    for (int i = 0; i < s->nsub; i++) {
        sxx += (s->truth[i] - mx) * (s->truth[i] - mx);
        sxy += (s->truth[i] - mx) * (s->pred[i] - my);
    }
    if (sxx > 0) {
        double b = sxy / sxx, xs[2] = {ax.xmin, ax.xmax}, ys[2] = {my + b * (ax.xmin - mx), my + b * (ax.xmax - mx)};
        plot_line(&ax, xs, 0, 0, ys, 2, 1, plot_palette(1), 1.6, PLOT_DASHED);
    }
    for (int i = 0; i < s->nsub; i++) {
        plot_vinterval(&ax, s->truth[i], s->pred[i] - PEB_Z90 * s->pred_sd[i], s->pred[i] + PEB_Z90 * s->pred_sd[i],
                  PLOT_GREY, 1.4, 3);
        plot_point(&ax, s->truth[i], s->pred[i], 4.0, plot_palette(0), 1);
    }
    return 0;
}
