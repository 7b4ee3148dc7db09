/* report_rdcm.c — the report of one regression DCM result (see report.h):
 * the connectivity matrix A as a heatmap with the regions in the spec's
 * order, the inclusion probabilities of sparse rDCM, the fit in time of
 * the first regions (observed BOLD against the inputs run through the
 * posterior model, as TAPAS's y_pred_rdcm; needs the result's spec and
 * data, else the report says why it is missing), and a table of F, p0
 * and the noise per region. One self-contained HTML file, written
 * atomically; figures also as PNG files when png_dir is given. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dcm/report/report.h"
#include "io/io_atomic.h"
#include "io/io_spec.h"
#include "models/model_dcm.h"
#include "models/model_rdcm.h"
#include "models/model_rdcm_sim.h"

#define HALF_PI 1.57079632679489661923

static void b64(FILE *fp, const unsigned char *d, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0) |
                     (i + 2 < n ? d[i + 2] : 0);
        fputc(t[v >> 18 & 63], fp);
        fputc(t[v >> 12 & 63], fp);
        fputc(i + 1 < n ? t[v >> 6 & 63] : '=', fp);
        fputc(i + 2 < n ? t[v & 63] : '=', fp);
    }
}

static void esc(FILE *fp, const char *s)
{
    for (; *s; s++)
        if (*s == '<')
            fputs("&lt;", fp);
        else if (*s == '>')
            fputs("&gt;", fp);
        else if (*s == '&')
            fputs("&amp;", fp);
        else
            fputc(*s, fp);
}

/* value in [lo, hi] to a colour: diverging blue - white - red around 0
 * (signed) or white - black (probabilities). */
static io_rgb cell_colour(double x, double lim, int signed_scale)
{
    if (!isfinite(x))
        return PLOT_LIGHT;
    if (!signed_scale) {
        double g = 1.0 - fmin(fmax(x, 0.0), 1.0);
        return plot_rgb(g, g, g);
    }
    double t = lim > 0 ? fmin(fabs(x) / lim, 1.0) : 0.0;
    return x >= 0 ? plot_rgb(1.0, 1.0 - t, 1.0 - t) : plot_rgb(1.0 - t, 1.0 - t, 1.0);
}

/* An n x n heatmap of M (row = target i, column = source j, element at
 * i + n j), regions labelled (all when n <= 60, else every k-th). */
static int heatmap(plot_figure *f, const char *title, const char *subtitle, const double *M, int n,
                   char *const *names, int signed_scale, const double *mask)
{
    const double cell = n <= 30 ? 16.0 : n <= 100 ? 6.0 : n <= 250 ? 3.0 : 1.6;
    const double left = 70, top = 60, side = cell * n;
    cairo_t *cr = plot_figure_begin(f, left + side + 110, top + side + 60);
    if (!cr)
        return -1;
    plot_title(cr, left + side + 110, 8, title, subtitle);
    double lim = 0;
    for (int k = 0; k < n * n; k++)
        if (isfinite(M[k]) && (k % (n + 1)) != 0)   /* the scale of the connections between regions */
            lim = fmax(lim, fabs(M[k]));
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++) {
            double x = M[i + (size_t)n * j];
            io_rgb c = mask && mask[i + (size_t)n * j] == 0 ? PLOT_LIGHT
                       : i == j && signed_scale ? plot_rgb(0.55, 0.55, 0.55)
                                                : cell_colour(x, lim, signed_scale);
            cairo_set_source_rgb(cr, c.r, c.g, c.b);
            cairo_rectangle(cr, left + j * cell, top + i * cell, cell, cell);
            cairo_fill(cr);
        }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 0.8);
    cairo_rectangle(cr, left, top, side, side);
    cairo_stroke(cr);
    int every = n <= 60 ? 1 : (int)ceil(n / 40.0);
    double fs = fmin(9.0, fmax(cell * every * 0.8, 5.0));
    for (int i = 0; i < n; i += every) {
        plot_text(cr, left - 4, top + (i + 0.5) * cell, names[i], fs, PLOT_RIGHT, PLOT_MIDDLE, 0,
                  PLOT_NORMAL, PLOT_BLACK);
        plot_text(cr, left + (i + 0.5) * cell, top + side + 4, names[i], fs, PLOT_RIGHT, PLOT_MIDDLE,
                  HALF_PI, PLOT_NORMAL, PLOT_BLACK);
    }
    plot_text(cr, left - 50, top + side / 2, "to (target)", 9, PLOT_CENTRE, PLOT_MIDDLE, HALF_PI,
              PLOT_ITALIC, PLOT_BLACK);
    plot_text(cr, left + side / 2, top - 6, "from (source)", 9, PLOT_CENTRE, PLOT_BOTTOM, 0, PLOT_ITALIC, PLOT_BLACK);
    /* colour bar */
    double bx = left + side + 30, bh = fmin(side, 200);
    for (int q = 0; q < 100; q++) {
        double v = signed_scale ? lim * (1 - 2 * q / 99.0) : 1 - q / 99.0;
        io_rgb c = cell_colour(v, lim, signed_scale);
        cairo_set_source_rgb(cr, c.r, c.g, c.b);
        cairo_rectangle(cr, bx, top + q * bh / 100, 14, bh / 100 + 0.5);
        cairo_fill(cr);
    }
    char lab[64];
    snprintf(lab, sizeof lab, signed_scale ? "%+.3g Hz" : "%.0f", signed_scale ? lim : 1.0);
    plot_text(cr, bx + 18, top, lab, 8, PLOT_LEFT, PLOT_TOP, 0, PLOT_NORMAL, PLOT_BLACK);
    snprintf(lab, sizeof lab, signed_scale ? "%+.3g Hz" : "%.0f", signed_scale ? -lim : 0.0);
    plot_text(cr, bx + 18, top + bh, lab, 8, PLOT_LEFT, PLOT_BOTTOM, 0, PLOT_NORMAL, PLOT_BLACK);
    return 0;
}

/* n x n matrix (nested rows) of the document into column-major M. */
static int read_rows(json_t *j, int n, double *M)
{
    if (!json_is_array(j) || (int)json_array_size(j) != n)
        return -1;
    for (int i = 0; i < n; i++) {
        json_t *r = json_array_get(j, (size_t)i);
        if (!json_is_array(r) || (int)json_array_size(r) != n)
            return -1;
        for (int q = 0; q < n; q++) {
            json_t *x = json_array_get(r, (size_t)q);
            M[i + (size_t)n * q] = json_is_number(x) ? json_number_value(x) : NAN;
        }
    }
    return 0;
}

/* n x k matrix (nested rows) of the document into column-major M. */
static int read_rect(json_t *j, int n, int k, double *M)
{
    if (!json_is_array(j) || (int)json_array_size(j) != n)
        return -1;
    for (int i = 0; i < n; i++) {
        json_t *r = json_array_get(j, (size_t)i);
        if (!json_is_array(r) || (int)json_array_size(r) != k)
            return -1;
        for (int q = 0; q < k; q++) {
            json_t *x = json_array_get(r, (size_t)q);
            M[i + (size_t)n * q] = json_is_number(x) ? json_number_value(x) : NAN;
        }
    }
    return 0;
}

#define FIT_REGIONS 4   /* panels of the fit figure: the first regions of the spec */

/* The fit in time, as TAPAS's signal.y_pred_rdcm: the result's spec is
 * re-read (its data and inputs), and the inputs are run through TAPAS's
 * generator (model_rdcm_generate) with the posterior means (sparse: times
 * the inclusion probabilities, as tapas_rdcm_compute_signals), without
 * noise, plus each region's baseline. *P and the prediction (v x n) on
 * success; else NULL with the reason in why. Resting state (no inputs)
 * has no fit in time: the noise-free model is flat. */
static dcm_problem *rdcm_problem(const char *result, json_t *doc, const io_result_summary *s,
                                 char *why, size_t len)
{
    const int n = s->n, m = s->m;
    json_t *sp = json_object_get(doc, "spec");
    if (!json_is_string(sp)) {
        snprintf(why, len, "%s names no spec", result);
        return NULL;
    }
    dcm_problem *P = NULL;
    dcm_error err = {0, ""};
    if (io_spec_load(json_string_value(sp), &P, &err)) {
        snprintf(why, len, "its spec could not be read (%s)", err.msg);
        return NULL;
    }
    if (P->analysis != DCM_ANALYSIS_RDCM || P->n != n || P->m != m) {
        snprintf(why, len, "its spec %s no longer matches the result (%d regions, %d inputs)",
                 json_string_value(sp), n, m);
        dcm_problem_free(P);
        return NULL;
    }
    return P;
}

static double *rdcm_predict(const char *result, json_t *doc, const io_result_summary *s,
                            const dcm_problem *P, char *why, size_t len)
{
    const int n = s->n, m = s->m, sparse = s->rdcm == 2;
    if (m == 0) {
        snprintf(why, len, "resting state (no inputs): the noise-free model has no signal to show");
        return NULL;
    }
    const int v = P->v, Nu = P->M->nu;
    dcm_error err = {0, ""};
    double *A = malloc(sizeof(double) * (size_t)n * n), *C = malloc(sizeof(double) * (size_t)n * m);
    double *IA = malloc(sizeof(double) * (size_t)n * n), *IC = malloc(sizeof(double) * (size_t)n * m);
    double *u = malloc(sizeof(double) * (size_t)Nu * m), *y = malloc(sizeof(double) * (size_t)v * n);
    int ok = A && C && IA && IC && u && y;
    json_t *pm = json_object_get(doc, "posterior_mean"), *ip = json_object_get(doc, "inclusion_probability");
    if (!ok)
        snprintf(why, len, "out of memory");
    else if (read_rect(json_object_get(pm, "A"), n, n, A) || read_rect(json_object_get(pm, "C"), n, m, C) ||
             (sparse && (read_rect(json_object_get(ip, "A"), n, n, IA) ||
                         read_rect(json_object_get(ip, "C"), n, m, IC)))) {
        snprintf(why, len, "%s: the posterior blocks A, C are not %dx%d, %dx%d matrices", result, n, n, n, m);
        ok = 0;
    }
    if (ok) {
        for (int k = 0; sparse && k < n * n; k++)
            A[k] *= IA[k];
        for (int k = 0; sparse && k < n * m; k++)
            C[k] *= IC[k];
        /* model_dcm keeps the inputs row-major; the generator takes columns */
        for (int t = 0; t < Nu; t++)
            for (int j = 0; j < m; j++)
                u[t + (size_t)Nu * j] = P->M->u[(size_t)t * m + j];
        if (model_rdcm_generate(A, C, n, u, m, v, MODEL_DCM_MICROTIME, P->M->TR, INFINITY, 0,
                                P->region_names, NULL, y, &err)) {
            snprintf(why, len, "the posterior model could not be integrated (%s)", err.msg);
            ok = 0;
        }
    }
    json_t *base = json_object_get(pm, "baseline");
    for (int k = 0; ok && json_is_array(base) && k < n; k++)
        for (int t = 0; t < v; t++)
            y[t + (size_t)v * k] += json_number_value(json_array_get(base, (size_t)k));
    free(A);
    free(C);
    free(IA);
    free(IC);
    free(u);
    if (!ok) {
        free(y);
        return NULL;
    }
    return y;
}

/* The fit in the frequency domain of the first FIT_REGIONS regions: the
 * regression's response Yd (the DFT of the forward difference of the
 * filtered series, what rDCM fits) and its prediction X mu (TAPAS's
 * yd_pred_rdcm_fft; sparse: mu weighted by the inclusion probabilities),
 * as magnitudes over the half spectrum, NAN at bins outside the
 * regression. obs, pred: FIT_REGIONS x (N/2 + 1); *N_out the scans. */
static int spectral_fit(json_t *doc, const io_result_summary *s, const dcm_problem *P,
                        double **obs_out, double **pred_out, int *N_out, char *why, size_t len)
{
    const int n = s->n, m = s->m, N = P->v, nh = N / 2 + 1, sparse = s->rdcm == 2;
    const int np = n < FIT_REGIONS ? n : FIT_REGIONS, r = MODEL_DCM_MICROTIME;
    const int empirical = P->rdcm.data != 0;
    const double input_scale = empirical ? 1.0 : 1.0 / r, c_scale = empirical ? 16.0 : 1.0;
    double *A = malloc(sizeof(double) * (size_t)n * n), *C = malloc(sizeof(double) * (size_t)n * (m + 1));
    double *IA = malloc(sizeof(double) * (size_t)n * n), *IC = malloc(sizeof(double) * (size_t)n * (m + 1));
    double *obs = malloc(sizeof(double) * (size_t)np * nh), *pred = malloc(sizeof(double) * (size_t)np * nh);
    model_rdcm_spectra S;
    memset(&S, 0, sizeof S);
    int ok = A && C && IA && IC && obs && pred;
    json_t *pm = json_object_get(doc, "posterior_mean"), *ip = json_object_get(doc, "inclusion_probability");
    if (!ok)
        snprintf(why, len, "out of memory");
    else if (read_rect(json_object_get(pm, "A"), n, n, A) ||
             (m > 0 && read_rect(json_object_get(pm, "C"), n, m, C)) ||
             (sparse && (read_rect(json_object_get(ip, "A"), n, n, IA) ||
                         (m > 0 && read_rect(json_object_get(ip, "C"), n, m, IC))))) {
        snprintf(why, len, "the posterior blocks A, C are not %dx%d, %dx%d matrices", n, n, n, m);
        ok = 0;
    }
    dcm_error err = {0, ""};
    if (ok && model_rdcm_spectra_build_strided(&S, P->Y, N, n, P->M->TR, m > 0 ? P->M->u : NULL,
                                               (size_t)m, 1, m, r, P->rdcm.filter, 1, &err)) {
        snprintf(why, len, "the spectra could not be computed (%s)", err.msg);
        ok = 0;
    }
    json_t *base = json_object_get(pm, "baseline"), *ipb = json_object_get(ip, "baseline");
    for (int k = 0; ok && k < np; k++) {
        const unsigned char *mask = S.mask + (size_t)k * N;
        double b = json_is_array(base) ? json_number_value(json_array_get(base, (size_t)k)) : 0.0;
        if (sparse && json_is_array(ipb))
            b *= json_number_value(json_array_get(ipb, (size_t)k));
        for (int f = 0; f < nh; f++) {
            double *o = obs + (size_t)k * nh + f, *q = pred + (size_t)k * nh + f;
            if (!mask[f]) {
                *o = *q = NAN;
                continue;
            }
            double complex x = b * input_scale * S.U[(size_t)m * N + f];
            for (int j = 0; j < n; j++) {
                size_t at = k + (size_t)n * j;
                x += A[at] * (sparse ? IA[at] : 1.0) * S.Yf[(size_t)j * N + f];
            }
            for (int i = 0; i < m; i++) {
                size_t at = k + (size_t)n * i;
                x += C[at] / c_scale * (sparse ? IC[at] : 1.0) * input_scale * S.U[(size_t)i * N + f];
            }
            *o = cabs(model_rdcm_response(&S, k, f));
            *q = cabs(x);
        }
    }
    model_rdcm_spectra_free(&S);
    free(A);
    free(C);
    free(IA);
    free(IC);
    if (!ok) {
        free(obs);
        free(pred);
        return -1;
    }
    *obs_out = obs, *pred_out = pred, *N_out = N;
    return 0;
}

/* Observed and predicted spectra of the first regions, one panel each. */
static int spectral_figure(plot_figure *f, const dcm_problem *P, const double *obs,
                           const double *pred, int N)
{
    const int nh = N / 2 + 1, np = P->n < FIT_REGIONS ? P->n : FIT_REGIONS;
    const double W = 900, left = 88, right = 24, ph = 140, gap = 56, top = 96, bottom = 56;
    const double df = 1.0 / (N * P->M->TR);
    cairo_t *cr = plot_figure_begin(f, W, top + np * ph + (np - 1) * gap + bottom);
    if (!cr)
        return -1;
    plot_title(cr, W, 10, "Observed and predicted spectra (the fit in the frequency domain)",
               "|Yd(f)|: the regression's response; |X mu|: its prediction (TAPAS's yd_pred_rdcm_fft); "
               "bins in the regression only");
    const io_rgb pcol = plot_rgb(0.80, 0.15, 0.10), ocol = plot_rgb(0.25, 0.25, 0.25);
    plot_legend_entry leg[2] = {{"observed |Yd|", ocol, PLOT_KEY_DOTTED}, {"predicted |X mu|", pcol, PLOT_KEY_LINE}};
    double lw, lh;
    plot_legend_size(cr, leg, 2, 2, &lw, &lh);
    plot_legend(cr, W - right - lw, 52, leg, 2, 2);
    char buf[512];
    for (int k = 0; k < np; k++) {
        const double *o = obs + (size_t)k * nh, *p = pred + (size_t)k * nh;
        double hi = 0, fmax_hz = 0;
        int rows = 0;
        for (int q = 0; q < nh; q++)
            if (isfinite(o[q])) {
                hi = fmax(hi, fmax(o[q], p[q]));
                fmax_hz = q * df;
                rows++;
            }
        if (!(hi > 0))
            hi = 1;
        if (!(fmax_hz > 0))
            fmax_hz = (nh - 1) * df;
        plot_axes ax;
        const double y0 = top + k * (ph + gap);
        plot_axes_init(&ax, cr, left, y0, W - left - right, ph, 0, fmax_hz, 0, hi, 1);
        plot_axes_draw(&ax, k == np - 1 ? "frequency (Hz)" : NULL, "magnitude",
                       PLOT_XTICKS | PLOT_YTICKS | PLOT_XGRID | PLOT_YGRID);
        for (int q = 0; q < nh; q++)
            if (isfinite(o[q])) {
                plot_point(&ax, q * df, o[q], 1.6, ocol, 1);
            }
        plot_line(&ax, NULL, 0, df, p, nh, 1, pcol, 1.4, PLOT_SOLID);
        snprintf(buf, sizeof buf, "%s: %d bins up to %.3g Hz", P->region_names[k], rows, fmax_hz);
        plot_text(cr, left, y0 - 8, buf, 13, PLOT_LEFT, PLOT_BOTTOM, 0, PLOT_BOLD, PLOT_BLACK);
    }
    return cairo_status(cr) == CAIRO_STATUS_SUCCESS ? 0 : -1;
}

/* Observed and predicted BOLD of the first FIT_REGIONS regions, one
 * panel each; r2[k]: the variance of region k's data the fit explains. */
static int fit_figure(plot_figure *f, const dcm_problem *P, const double *yp, double *r2)
{
    const int v = P->v, np = P->n < FIT_REGIONS ? P->n : FIT_REGIONS;
    const double W = 900, left = 88, right = 24, ph = 140, gap = 56, top = 96, bottom = 56;
    cairo_t *cr = plot_figure_begin(f, W, top + np * ph + (np - 1) * gap + bottom);
    if (!cr)
        return -1;
    plot_title(cr, W, 10, "Observed and predicted BOLD (the fit in time)",
               "the inputs through the posterior model, no noise (TAPAS's y_pred_rdcm); first regions of the spec");
    const io_rgb pcol = plot_rgb(0.80, 0.15, 0.10);
    plot_legend_entry leg[2] = {{"observed", PLOT_BLACK, PLOT_KEY_DOTTED}, {"predicted", pcol, PLOT_KEY_LINE}};
    double lw, lh;
    plot_legend_size(cr, leg, 2, 2, &lw, &lh);
    plot_legend(cr, W - right - lw, 52, leg, 2, 2);
    char buf[512], xl[160];
    snprintf(xl, sizeof xl, "scan (TR = %g s)", P->M->TR);
    for (int k = 0; k < np; k++) {
        const double *y = P->Y + (size_t)k * v, *p = yp + (size_t)k * v;
        double lo = INFINITY, hi = -INFINITY, mean = 0, ss = 0, sr = 0;
        for (int t = 0; t < v; t++) {
            lo = fmin(lo, fmin(y[t], p[t]));
            hi = fmax(hi, fmax(y[t], p[t]));
            mean += y[t] / v;
        }
        for (int t = 0; t < v; t++) {
            ss += (y[t] - mean) * (y[t] - mean);
            sr += (y[t] - p[t]) * (y[t] - p[t]);
        }
        r2[k] = ss > 0 ? 1 - sr / ss : NAN;
        plot_axes ax;
        const double y0 = top + k * (ph + gap);
        plot_axes_init(&ax, cr, left, y0, W - left - right, ph, 0, v - 1, lo, hi, 1);
        ax.xmin = 0;
        ax.xmax = v - 1;
        plot_axes_draw(&ax, k == np - 1 ? xl : NULL, "BOLD",
                       PLOT_XTICKS | PLOT_YTICKS | PLOT_XGRID | PLOT_YGRID);
        plot_line(&ax, NULL, 0, 1, y, v, 1, PLOT_BLACK, 1.2, PLOT_DOTTED);
        plot_line(&ax, NULL, 0, 1, p, v, 1, pcol, 1.6, PLOT_SOLID);
        snprintf(buf, sizeof buf, "%s: variance explained %.1f %%", P->region_names[k], 100 * r2[k]);
        plot_text(cr, left, y0 - 8, buf, 13, PLOT_LEFT, PLOT_BOTTOM, 0, PLOT_BOLD, PLOT_BLACK);
    }
    return cairo_status(cr) == CAIRO_STATUS_SUCCESS ? 0 : -1;
}

int report_rdcm_write(const char *result, const char *out, const char *png_dir, double scale,
                      dcm_error *err)
{
    if (report_cairo_need(err))
        return DCM_ERR_SYSTEM;
    io_result_summary s;
    json_t *doc = NULL;
    int rc = io_result_load_doc(result, &s, &doc, err);
    if (rc)
        return rc;
    const int n = s.n, sparse = s.rdcm == 2;
    double *A = malloc(sizeof(double) * (size_t)n * n), *Ip = malloc(sizeof(double) * (size_t)n * n);
    plot_figure figs[4];
    memset(figs, 0, sizeof figs);
    unsigned char *png[4] = {NULL, NULL, NULL, NULL};
    size_t len[4] = {0, 0, 0, 0};
    const char *fig_file[4], *fig_alt[4], *fig_cap[4];
    int nf = 0, Nspec = 0;
    dcm_problem *FP = NULL;   /* the spec re-read for the fit */
    double *yp = NULL, r2[FIT_REGIONS], *sobs = NULL, *spred = NULL;
    char why[1200] = "", why_f[1200] = "";
    if (!A || !Ip) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    if (read_rows(json_object_get(json_object_get(doc, "posterior_mean"), "A"), n, A) ||
        (sparse && read_rows(json_object_get(json_object_get(doc, "inclusion_probability"), "A"), n, Ip))) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"posterior_mean\".\"A\"%s must be %dx%d matrices",
                           result, sparse ? " and \"inclusion_probability\".\"A\"" : "", n, n);
        goto done;
    }
    char sub[256];
    snprintf(sub, sizeof sub, "%s, %d regions in the spec's order; F = %.2f",
             sparse ? "sparse rDCM" : "rDCM", n, s.F);
    fig_file[nf] = "connectivity";
    fig_alt[nf] = "connectivity";
    fig_cap[nf] = "Posterior mean of A (Hz), row = target, column = source, regions in the spec's order; "
                  "red excitatory, blue inhibitory, grey the self-connections (their scale differs), "
                  "light grey connections not in the model.";
    if (heatmap(&figs[nf++], "Effective connectivity A (posterior mean)", sub, A, n, s.regions, 1,
                sparse ? NULL : s.pV))
        rc = DCM_ERR_SYSTEM;
    if (!rc && sparse) {
        fig_file[nf] = "inclusion";
        fig_alt[nf] = "inclusion probabilities";
        fig_cap[nf] = "Posterior inclusion probability of each connection (black = 1).";
        if (heatmap(&figs[nf++], "Inclusion probability of each connection", "sparse rDCM: q(z = 1)", Ip,
                    n, s.regions, 0, NULL))
            rc = DCM_ERR_SYSTEM;
    }
    /* the fit in time: optional (the spec may have moved); the reason is reported */
    if (!rc && !(FP = rdcm_problem(result, doc, &s, why, sizeof why)))
        snprintf(why_f, sizeof why_f, "%s", why);
    if (!rc && FP && !spectral_fit(doc, &s, FP, &sobs, &spred, &Nspec, why_f, sizeof why_f)) {
        fig_file[nf] = "fit_spectra";
        fig_alt[nf] = "observed and predicted spectra";
        fig_cap[nf] = "The fit in the frequency domain, what rDCM regresses: the magnitude of each "
                      "region's response Yd(f) (the DFT of the forward difference of its filtered "
                      "series; dots, 0 at bins the filter removed) and of its prediction X mu from the "
                      "posterior means (line; sparse: weighted by the inclusion probabilities), at the "
                      "frequencies of the region's regression.";
        if (spectral_figure(&figs[nf++], FP, sobs, spred, Nspec))
            rc = DCM_ERR_SYSTEM;
    }
    if (!rc && FP && (yp = rdcm_predict(result, doc, &s, FP, why, sizeof why))) {
        fig_file[nf] = "fit";
        fig_alt[nf] = "observed and predicted BOLD";
        fig_cap[nf] = "Observed BOLD (dotted) and the posterior model's prediction (solid): the inputs "
                      "run through the fitted A and C (sparse: weighted by the inclusion probabilities) "
                      "without noise, plus the baseline, as TAPAS's y_pred_rdcm.";
        if (fit_figure(&figs[nf++], FP, yp, r2))
            rc = DCM_ERR_SYSTEM;
    }
    for (int q = 0; !rc && q < nf; q++)
        if (plot_figure_png(&figs[q], scale, &png[q], &len[q]))
            rc = DCM_ERR_SYSTEM;
    if (rc) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "%s: could not draw the figures (out of memory?)", out);
        goto done;
    }
    io_atomic outs[5];
    memset(outs, 0, sizeof outs);
    int no = 0;
    if (png_dir && mkdir(png_dir, 0777) && errno != EEXIST) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot create %s: %s", png_dir, strerror(errno));
        goto done;
    }
    for (int q = 0; png_dir && q < nf; q++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.png", png_dir, fig_file[q]);
        if ((rc = io_atomic_open(&outs[no], path, err)))
            break;
        fwrite(png[q], 1, len[q], outs[no++].fp);
    }
    if (!rc && !(rc = io_atomic_open(&outs[no], out, err))) {
        FILE *fp = outs[no++].fp;
        fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>dcm report: ", fp);
        esc(fp, result);
        fputs("</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;"
              "text-align:right}</style></head><body>\n<h1>Regression DCM: ", fp);
        esc(fp, result);
        fprintf(fp, "</h1>\n<p>%s, %d regions, %d inputs. Free energy F = %.4f (the sum over "
                "regions).", sparse ? "Sparse rDCM" : "rDCM", n, s.m, s.F);
        if (sparse)
            fprintf(fp, " Chosen p0 = %g.", json_number_value(json_object_get(doc, "p0")));
        fputs("</p>\n", fp);
        json_t *w = json_object_get(doc, "warnings");
        size_t i;
        json_t *x;
        fputs(json_array_size(w) ? "<ul>\n" : "<p>No warnings.</p>\n", fp);
        json_array_foreach(w, i, x) {
            fputs("<li>", fp);
            esc(fp, json_is_string(x) ? json_string_value(x) : "?");
            fputs("</li>\n", fp);
        }
        if (json_array_size(w))
            fputs("</ul>\n", fp);
        for (int q = 0; q < nf; q++) {
            fprintf(fp, "<figure><img alt=\"%s\" width=\"%d\" height=\"%d\" src=\"data:image/png;base64,",
                    fig_alt[q], (int)figs[q].w, (int)figs[q].h);
            b64(fp, png[q], len[q]);
            fprintf(fp, "\"><figcaption>%s</figcaption></figure>\n", fig_cap[q]);
        }
        if (!sobs) {
            fputs("<p>No fit in the frequency domain: ", fp);
            esc(fp, why_f);
            fputs(".</p>\n", fp);
        }
        if (!yp) {
            fputs("<p>No fit in time: ", fp);
            esc(fp, why);
            fputs(".</p>\n", fp);
        }
        json_t *Fr = json_object_get(doc, "free_energy_regions"), *it = json_object_get(doc, "iterations_regions");
        json_t *tau = json_object_get(json_object_get(doc, "noise"), "precision_mean");
        fputs("<table><tr><th>region</th><th>F</th><th>VB iterations</th><th>noise precision</th></tr>\n", fp);
        for (int k = 0; k < n; k++) {
            fputs("<tr><td>", fp);
            esc(fp, s.regions[k]);
            fprintf(fp, "</td><td>%.4f</td><td>%lld</td><td>%.4g</td></tr>\n",
                    json_number_value(json_array_get(Fr, (size_t)k)),
                    (long long)json_integer_value(json_array_get(it, (size_t)k)),
                    json_number_value(json_array_get(tau, (size_t)k)));
        }
        fputs("</table>\n</body></html>\n", fp);
    }
    if (!rc)
        rc = io_atomic_commit_all(outs, no, err);
    else
        for (int q = 0; q < no; q++)
            io_atomic_abort(&outs[q]);
done:
    for (int q = 0; q < 4; q++) {
        free(png[q]);
        plot_figure_free(&figs[q]);
    }
    free(yp);
    free(sobs);
    free(spred);
    dcm_problem_free(FP);
    free(A);
    free(Ip);
    json_decref(doc);
    io_result_summary_free(&s);
    return rc;
}
