/* report_evidence.c — the sampled log evidence in the report (issue 16):
 * evidence files of dcm evidence -o, matched to the results they were
 * computed from by the hash of the result's bytes, and two figures: F
 * against the sampled log evidence per model, and one model's sampled
 * marginals over its Laplace Gaussians (report.h). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/dcm_evidence.h"
#include "dcm/report/plot.h"
#include "dcm/report/report.h"
#include "io/io_atomic.h"

#define EV_FIG_W 960.0
#define EV_SQRT2PI 2.5066282746310002

void report_evidence_free(report_evidence *e)
{
    if (!e)
        return;
    for (int i = 0; e->names && i < e->np; i++)
        free(e->names[i]);
    free(e->names);
    free(e->path);
    free(e->result);
    free(e->hash);
    free(e->method);
    free(e->laplace_mean);
    free(e->laplace_sd);
    free(e->sample_mean);
    free(e->sample_sd);
    free(e->hist_lo);
    free(e->hist_hi);
    free(e->counts);
    memset(e, 0, sizeof *e);
    e->model = -1;
}

/* a number, or NaN for null (dcm evidence writes null for non-finite) */
static int get_num(json_t *o, const char *key, double *x)
{
    json_t *v = json_object_get(o, key);
    if (json_is_null(v)) {
        *x = NAN;
        return 0;
    }
    if (!json_is_number(v))
        return -1;
    *x = json_number_value(v);
    return 0;
}

static int load_params(json_t *params, report_evidence *e, dcm_error *err)
{
    const int np = (int)json_array_size(params);
    e->names = calloc((size_t)np + 1, sizeof(char *));
    double **v[6] = {&e->laplace_mean, &e->laplace_sd, &e->sample_mean, &e->sample_sd, &e->hist_lo, &e->hist_hi};
    for (int a = 0; a < 6; a++)
        *v[a] = calloc((size_t)np + 1, sizeof(double));
    if (!e->names || !e->laplace_mean || !e->laplace_sd || !e->sample_mean || !e->sample_sd || !e->hist_lo ||
        !e->hist_hi)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    static const char *const keys[4] = {"laplace_mean", "laplace_sd", "sample_mean", "sample_sd"};
    e->nbins = -1;
    for (int i = 0; i < np; i++) {
        json_t *p = json_array_get(params, (size_t)i);
        const char *name = json_string_value(json_object_get(p, "name"));
        if (!name)
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"parameters\"[%d] has no \"name\"", e->path, i);
        if (!(e->names[i] = strdup(name)))
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        e->np = i + 1;
        for (int a = 0; a < 4; a++)
            if (get_num(p, keys[a], &(*v[a])[i]))
                return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"parameters\"[%d] (%s): \"%s\" must be a number",
                                     e->path, i, name, keys[a]);
        json_t *h = json_object_get(p, "histogram"), *c = json_object_get(h, "counts");
        int nb = (int)json_array_size(c);
        if (!h || nb < 1 || get_num(h, "lo", &e->hist_lo[i]) || get_num(h, "hi", &e->hist_hi[i]) ||
            !(e->hist_hi[i] > e->hist_lo[i]) || (e->nbins >= 0 && nb != e->nbins))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"parameters\"[%d] (%s): no valid \"histogram\" "
                                 "(lo < hi, counts, the same bins for all); write the file with dcm evidence -o",
                                 e->path, i, name);
        if (e->nbins < 0) {
            e->nbins = nb;
            if (!(e->counts = calloc((size_t)np * nb, sizeof(double))))
                return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        }
        for (int b = 0; b < nb; b++) {
            json_t *x = json_array_get(c, (size_t)b);
            if (!json_is_integer(x) || json_integer_value(x) < 0)
                return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"parameters\"[%d] (%s): histogram counts must "
                                     "be non-negative integers", e->path, i, name);
            e->counts[(size_t)i * nb + b] = (double)json_integer_value(x);
        }
    }
    if (e->nbins < 0)
        e->nbins = 0;
    return DCM_OK;
}

int report_evidence_load(const char *path, report_evidence *e, dcm_error *err)
{
    memset(e, 0, sizeof *e);
    e->model = -1;
    json_error_t je;
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s, line %d: not JSON (%s)", path, je.line, je.text);
    int rc = DCM_OK;
    const char *kind = json_string_value(json_object_get(o, "kind"));
    const char *res = json_string_value(json_object_get(o, "result"));
    const char *hash = json_string_value(json_object_get(o, "result_hash"));
    const char *method = json_string_value(json_object_get(o, "method"));
    if (!(e->path = strdup(path))) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    } else if (!kind || strcmp(kind, "evidence") || !res || !hash) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s is not an evidence file (\"kind\": \"evidence\", \"result\", "
                           "\"result_hash\"): write one with dcm evidence RESULT.json -o EVIDENCE.json", path);
    } else if (!(e->result = strdup(res)) || !(e->hash = strdup(hash)) ||
               !(e->method = strdup(method ? method : "ti"))) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    } else if (get_num(o, "log_evidence", &e->log_evidence) || get_num(o, "se", &e->se) ||
               get_num(o, "free_energy", &e->free_energy)) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"log_evidence\", \"se\" and \"free_energy\" must be numbers",
                           path);
    } else if (!json_is_array(json_object_get(o, "parameters"))) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: no \"parameters\" array", path);
    } else {
        e->samples_used = (int)json_integer_value(json_object_get(o, "samples_used"));
        e->chains = (int)json_integer_value(json_object_get(o, "chains"));
        e->temperatures = (int)json_integer_value(json_object_get(o, "temperatures"));
        rc = load_params(json_object_get(o, "parameters"), e, err);
    }
    json_decref(o);
    if (rc)
        report_evidence_free(e);
    return rc;
}

int report_evidence_match(report_evidence *ev, int ne, const report_model *models, int k, dcm_error *err)
{
    char (*hex)[17] = calloc((size_t)(k > 0 ? k : 1), sizeof *hex);
    if (!hex)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    int rc = DCM_OK;
    for (int i = 0; i < k && !rc; i++)
        rc = dcm_evidence_file_hash(models[i].s.path, hex[i], err);
    for (int j = 0; j < ne && !rc; j++) {
        ev[j].model = -1;
        for (int i = 0; i < k && ev[j].model < 0; i++)
            if (!strcmp(hex[i], ev[j].hash))
                ev[j].model = i;
        for (int i = 0; i < k && ev[j].model < 0 && !rc; i++)
            if (io_same_target(models[i].s.path, ev[j].result))
                rc = dcm_error_set(err, DCM_ERR_INPUT, "--evidence %s was computed from %s (hash %s), which has "
                                   "changed since (hash now %s: re-estimated or edited): run dcm evidence on it "
                                   "again", ev[j].path, ev[j].result, ev[j].hash, hex[i]);
        if (ev[j].model < 0 && !rc) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "--evidence %s was computed from %s (hash %s), which is none "
                               "of the result files given (changed or re-estimated since?): give that result, "
                               "or run dcm evidence on the result again", ev[j].path, ev[j].result, ev[j].hash);
            break;
        }
        for (int i = 0; i < j; i++)
            if (ev[i].model == ev[j].model)
                rc = dcm_error_set(err, DCM_ERR_INPUT, "--evidence %s and %s are both of the result %s: give "
                                   "one evidence file per result", ev[i].path, ev[j].path,
                                   models[ev[j].model].s.path);
        if (!rc && ev[j].np > models[ev[j].model].s.np)
            rc = dcm_error_set(err, DCM_ERR_INPUT, "--evidence %s: %d parameters, more than its result %s has",
                               ev[j].path, ev[j].np, models[ev[j].model].s.path);
    }
    free(hex);
    return rc;
}

int report_fig_evidence(const report_model *models, const report_evidence *ev, int ne, plot_figure *f)
{
    if (ne < 1)
        return -1;
    const double W = EV_FIG_W, top = 96, ph = 300, bottom = 56, H = top + ph + bottom, left = 100, gap_x = 90;
    const double pw = (W - left - gap_x - 30) / 2;
    cairo_t *cr = plot_figure_begin(f, W, H);
    if (!cr)
        return -1;
    plot_title(cr, W, 10, "Free energy and sampled log evidence",
               "left: F (dot) and ln p(y|m) by sampling with \u00b12 SE; right: the gap ln p(y|m) \u2212 F "
               "with \u00b12 SE");
    const plot_legend_entry leg[2] = {{"free energy F", plot_palette(0), PLOT_KEY_POINT},
                                      {"sampled log evidence \u00b12 SE", plot_palette(1), PLOT_KEY_ERRORBAR}};
    double lw, lh;
    plot_legend_size(cr, leg, 2, 2, &lw, &lh);
    plot_legend(cr, (W - lw) / 2, 50, leg, 2, 2);
    double lo = INFINITY, hi = -INFINITY, glo = 0.0, ghi = 0.0;
    for (int j = 0; j < ne; j++) {
        const report_evidence *e = &ev[j];
        double v[3] = {e->free_energy, e->log_evidence - 2 * e->se, e->log_evidence + 2 * e->se};
        for (int a = 0; a < 3; a++)
            if (isfinite(v[a])) {
                lo = fmin(lo, v[a]);
                hi = fmax(hi, v[a]);
            }
        double g = e->log_evidence - e->free_energy;
        if (isfinite(g) && isfinite(e->se)) {
            glo = fmin(glo, g - 2 * e->se);
            ghi = fmax(ghi, g + 2 * e->se);
        }
    }
    if (!isfinite(lo)) {
        lo = 0;
        hi = 1;
    }
    double pad = fmax((hi - lo) * 0.08, 0.5), gpad = fmax((ghi - glo) * 0.12, 0.25);
    plot_axes a1, a2;
    plot_axes_init(&a1, cr, left, top, pw, ph, 0.4, ne + 0.6, lo - pad, hi + pad, 1);
    a1.xmin = 0.4;
    a1.xmax = ne + 0.6;
    a1.xstep = 0;
    plot_axes_draw(&a1, NULL, "nats", PLOT_YTICKS | PLOT_YGRID);
    plot_axes_init(&a2, cr, left + pw + gap_x, top, pw, ph, 0.4, ne + 0.6, glo - gpad, ghi + gpad, 1);
    a2.xmin = 0.4;
    a2.xmax = ne + 0.6;
    a2.xstep = 0;
    plot_axes_draw(&a2, NULL, "ln p(y|m) \u2212 F (nats)", PLOT_YTICKS | PLOT_YGRID);
    plot_hline(&a2, 0.0, PLOT_GREY, PLOT_DASHED, NULL);
    char buf[64];
    for (int j = 0; j < ne; j++) {
        const report_evidence *e = &ev[j];
        const char *name = e->model >= 0 ? models[e->model].name : e->result;
        double x = j + 1.0, g = e->log_evidence - e->free_energy;
        plot_point(&a1, x - 0.12, e->free_energy, 5.0, plot_palette(0), 1);
        plot_vinterval(&a1, x + 0.12, e->log_evidence - 2 * e->se, e->log_evidence + 2 * e->se, plot_palette(1), 1.6, 5);
        plot_point(&a1, x + 0.12, e->log_evidence, 4.0, plot_palette(1), 1);
        plot_vinterval(&a2, x, g - 2 * e->se, g + 2 * e->se, plot_palette(1), 1.6, 5);
        plot_point(&a2, x, g, 4.0, plot_palette(1), 1);
        snprintf(buf, sizeof buf, "%+.2f (SE %.2f)", g, e->se);
        plot_text(cr, plot_px(&a2, x), plot_py(&a2, g + 2 * e->se) - 5, buf, 10.5, PLOT_CENTRE, PLOT_BOTTOM, 0,
                  PLOT_BOLD, PLOT_BLACK);
        for (int p = 0; p < 2; p++)
            plot_text(cr, plot_px(p ? &a2 : &a1, x), top + ph + 6, name, 11, PLOT_CENTRE, PLOT_TOP, 0,
                      PLOT_NORMAL, PLOT_BLACK);
    }
    return 0;
}

int report_fig_marginals(const report_evidence *e, plot_figure *f)
{
    if (!e || e->np < 1 || e->nbins < 1 || !e->counts)
        return -1;
    const int ncol = e->np < 4 ? e->np : 4, nrow = (e->np + ncol - 1) / ncol, nb = e->nbins;
    const double W = EV_FIG_W, top = 92, left = 24, right = 16, cw = (W - left - right) / ncol, rh = 150;
    const double H = top + nrow * rh + 10;
    cairo_t *cr = plot_figure_begin(f, W, H);
    if (!cr)
        return -1;
    char sub[256];
    snprintf(sub, sizeof sub, "histogram of %d samples at \u03b2 = 1 (density) and the Laplace Gaussian "
             "N(Ep, Cp_ii) of each free parameter", e->samples_used);
    plot_title(cr, W, 10, "Posterior marginals: sampled and Laplace", sub);
    const plot_legend_entry leg[3] = {{"samples (histogram)", plot_rgb(0.62, 0.72, 0.85), PLOT_KEY_BOX},
                                      {"Laplace N(Ep, Cp_ii)", plot_palette(1), PLOT_KEY_LINE},
                                      {"sampled mean", plot_palette(0), PLOT_KEY_DASHED}};
    double lw, lh;
    plot_legend_size(cr, leg, 3, 3, &lw, &lh);
    plot_legend(cr, (W - lw) / 2, 48, leg, 3, 3);
    for (int i = 0; i < e->np; i++) {
        const double px = left + (i % ncol) * cw, py = top + (i / ncol) * rh;
        const double m = e->laplace_mean[i], sd = e->laplace_sd[i], lo = e->hist_lo[i], hi = e->hist_hi[i];
        const double bw = (hi - lo) / nb;
        double n = 0.0, dmax = 0.0;
        for (int b = 0; b < nb; b++)
            n += e->counts[(size_t)i * nb + b];
        for (int b = 0; b < nb; b++)
            dmax = fmax(dmax, n > 0 ? e->counts[(size_t)i * nb + b] / (n * bw) : 0.0);
        double xlo = lo, xhi = hi;
        if (isfinite(m) && sd > 0) {
            xlo = fmin(xlo, m - 3.5 * sd);
            xhi = fmax(xhi, m + 3.5 * sd);
            dmax = fmax(dmax, 1.0 / (EV_SQRT2PI * sd));
        }
        plot_axes ax;
        plot_axes_init(&ax, cr, px + 10, py + 22, cw - 24, rh - 52, xlo, xhi, 0.0, dmax * 1.08, 0);
        ax.ystep = 0;
        double na, nb2;
        plot_nice(xlo, xhi, 4, &na, &nb2, &ax.xstep);
        plot_text(cr, px + cw / 2, py + 4, e->names[i], 10.5, PLOT_CENTRE, PLOT_TOP, 0, PLOT_BOLD, PLOT_BLACK);
        cairo_save(cr);
        cairo_rectangle(cr, ax.x, ax.y, ax.w, ax.h);
        cairo_clip(cr);
        cairo_set_line_width(cr, 0.6);
        for (int b = 0; b < nb && n > 0; b++) {
            double d = e->counts[(size_t)i * nb + b] / (n * bw);
            double x0 = plot_px(&ax, lo + b * bw), x1 = plot_px(&ax, lo + (b + 1) * bw), y1 = plot_py(&ax, d);
            cairo_rectangle(cr, x0, y1, x1 - x0, plot_py(&ax, 0.0) - y1);
            cairo_set_source_rgb(cr, 0.62, 0.72, 0.85);
            cairo_fill_preserve(cr);
            cairo_set_source_rgb(cr, 0.35, 0.45, 0.6);
            cairo_stroke(cr);
        }
        cairo_restore(cr);
        if (isfinite(m) && sd > 0) {
            double xs[121], ys[121];
            for (int t = 0; t <= 120; t++) {
                xs[t] = xlo + (xhi - xlo) * t / 120.0;
                double z = (xs[t] - m) / sd;
                ys[t] = exp(-0.5 * z * z) / (EV_SQRT2PI * sd);
            }
            plot_line(&ax, xs, 0, 0, ys, 121, 1, plot_palette(1), 1.8, PLOT_SOLID);
        }
        if (isfinite(e->sample_mean[i]))
            plot_vline(&ax, e->sample_mean[i], plot_palette(0), PLOT_DASHED, NULL);
        plot_axes_draw(&ax, NULL, NULL, PLOT_XTICKS);
    }
    return 0;
}
