/* report_fig.c — the figures of `dcm report`, drawn with plot
 * (cairo): fit, parameters, connectivity, free energy, model comparison. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/report/plot.h"
#include "dcm/report/report.h"
#include "models/model_layout.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define FIG_W 960.0

/* colours shared by all figures: input k, the A block, the prediction */
static io_rgb input_col(int k)
{
    return plot_palette(k + 1);
}

static io_rgb a_col(void)
{
    return plot_palette(0);
}

static int finish(plot_figure *f)
{
    return cairo_status(f->cr) == CAIRO_STATUS_SUCCESS ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* observed and predicted BOLD                                          */

/* The fit and the inputs share one x axis: scans 0 .. v (scan s is
 * sampled at s*TR; the inputs run to the end of the last scan), in a plot
 * rectangle of the same left edge and width. */
#define SCAN_LEFT 88.0
#define SCAN_RIGHT 24.0

static int scan_count(const report_model *m)
{
    return m->v >= 2 ? m->v : m->design.v;
}

static void scan_axes(plot_axes *ax, cairo_t *cr, const report_model *m, double y0, double h, double lo,
                      double hi)
{
    const int v = scan_count(m);
    plot_axes_init(ax, cr, SCAN_LEFT, y0, FIG_W - SCAN_LEFT - SCAN_RIGHT, h, 0, v, lo, hi, 1);
    ax->xmin = 0;
    ax->xmax = v;
}

static void scan_label(const report_model *m, char *buf, size_t len)
{
    if (isfinite(m->TR))
        snprintf(buf, len, "scan (1 scan = TR = %g s; scan s is acquired at s x TR)", m->TR);
    else
        snprintf(buf, len, "scan");
}

int report_fig_fit(const report_model *m, plot_figure *f)
{
    const int n = m->s.n, v = m->v;
    if (v < 2 || n < 1 || !m->y_pred)
        return -1;
    const double right = SCAN_RIGHT, ph = 150, gap = 64, bottom = 56;
    plot_legend_entry leg[2] = {
        {"observed (detrended, scaled)", PLOT_BLACK, PLOT_KEY_DOTTED},
        {m->y_conf ? "predicted (model + fitted confounds)" : "predicted", a_col(), PLOT_KEY_LINE}};
    /* a scratch surface to measure the legend */
    plot_figure tmp;
    cairo_t *mcr = plot_figure_begin(&tmp, 10, 10);
    if (!mcr)
        return -1;
    double lw, lh;
    plot_legend_size(mcr, leg, 2, 2, &lw, &lh);
    plot_figure_free(&tmp);
    const double top = 52 + lh + 34;
    const double H = top + n * ph + (n - 1) * gap + bottom;
    cairo_t *cr = plot_figure_begin(f, FIG_W, H);
    if (!cr)
        return -1;
    char title[512], buf[512], xl[160];
    snprintf(title, sizeof title, "Observed and predicted BOLD: %s", m->name);
    plot_title(cr, FIG_W, 10, title,
                  "one panel per region; x: scans, as in the inputs figure (BOLD in scaled units)");
    plot_legend(cr, FIG_W - right - lw, 52, leg, 2, 2);
    scan_label(m, xl, sizeof xl);
    double *pc = malloc(sizeof(double) * (size_t)v);
    if (!pc)
        return -1;
    for (int j = 0; j < n; j++) {
        const double *y = m->y_obs + (size_t)j * v, *p = m->y_pred + (size_t)j * v;
        const double *c = m->y_conf ? m->y_conf + (size_t)j * v : NULL;
        double lo = INFINITY, hi = -INFINITY;
        for (int s = 0; s < v; s++) {
            pc[s] = p[s] + (c ? c[s] : 0.0);
            if (isfinite(y[s])) {
                lo = fmin(lo, y[s]);
                hi = fmax(hi, y[s]);
            }
            if (isfinite(pc[s])) {
                lo = fmin(lo, pc[s]);
                hi = fmax(hi, pc[s]);
            }
        }
        plot_axes ax;
        double y0 = top + j * (ph + gap);
        scan_axes(&ax, cr, m, y0, ph, lo, hi);
        plot_axes_draw(&ax, j == n - 1 ? xl : NULL, "BOLD (scaled units)",
                          PLOT_XTICKS | PLOT_YTICKS | PLOT_XGRID | PLOT_YGRID | PLOT_ZERO_Y);
        plot_line(&ax, NULL, 0, 1, y, v, 1, PLOT_BLACK, 1.5, PLOT_DOTTED);
        plot_line(&ax, NULL, 0, 1, pc, v, 1, a_col(), 1.7, PLOT_SOLID);
        if (isfinite(m->r2[j]))
            snprintf(buf, sizeof buf, "%s: variance explained %.1f %%", m->s.regions[j], 100 * m->r2[j]);
        else
            snprintf(buf, sizeof buf, "%s", m->s.regions[j]);
        plot_text(cr, SCAN_LEFT, y0 - 8, buf, 13, PLOT_LEFT, PLOT_BOTTOM, 0, PLOT_BOLD, PLOT_BLACK);
    }
    free(pc);
    return finish(f);
}

/* ------------------------------------------------------------------ */
/* inputs over time                                                     */

/* "drives V1, V5; modulates V1->V5" from the free C and B parameters of input u */
void report_input_role(const report_model *m, int u, char *buf, size_t len)
{
    model_layout T;
    model_layout_init(&T, m->s.n, m->s.m, m->s.nd > 0, m->s.two_state);
    const model_layout_block *BB = &T.block[MODEL_BLOCK_B], *BC = &T.block[MODEL_BLOCK_C];
    size_t o = 0;
    int nc = 0, nb = 0;
    buf[0] = 0;
    for (int i = 0; i < m->s.n && o < len; i++)
        if (report_param_free(m, model_layout_index(BC, i, u, 0)))
            o += (size_t)snprintf(buf + o, len - o, "%s%s", nc++ ? ", " : "drives ", m->s.regions[i]);
    for (int t = 0; t < m->s.n && o < len; t++)
        for (int f = 0; f < m->s.n && o < len; f++)
            if (report_param_free(m, model_layout_index(BB, t, f, u)))
                o += (size_t)snprintf(buf + o, len - o, "%s%s->%s", nb++ ? ", " : nc ? "; modulates " : "modulates ",
                                      m->s.regions[f], m->s.regions[t]);
    if (!nc && !nb && len > 0)
        snprintf(buf, len, "neither drives nor modulates anything in this model");
}

int report_fig_inputs(const report_model *m, plot_figure *f)
{
    const io_result_design *d = &m->design;
    const int nin = m->s.m, nu = d->nu, v = scan_count(m);
    if (nu < 1 || nin < 1 || !d->u || v < 1)
        return -1;
    const double ph = 58, gap = 50, top = 74, bottom = 56;
    const double H = top + nin * ph + (nin - 1) * gap + bottom;
    cairo_t *cr = plot_figure_begin(f, FIG_W, H);
    if (!cr)
        return -1;
    char title[512], buf[1024], role[768], xl[160];
    snprintf(title, sizeof title, "Inputs over time: %s", m->name);
    plot_title(cr, FIG_W, 10, title,
                  "one row per input, as the model integrated it (micro-time, 16 bins per scan); x as in the "
                  "fit figure");
    scan_label(m, xl, sizeof xl);
    const double per_scan = (double)nu / (d->v > 0 ? d->v : v); /* bins per scan */
    for (int k = 0; k < nin; k++) {
        const double *u = d->u + (size_t)k * nu;
        double lo = 0.0, hi = 0.0, on = 0.0;
        int events = 0;
        for (int b = 0; b < nu; b++) {
            lo = fmin(lo, u[b]);
            hi = fmax(hi, u[b]);
        }
        report_input_on(m, k, &events, &on);
        if (hi <= lo)
            hi = lo + 1.0;
        plot_axes ax;
        const double y0 = top + k * (ph + gap);
        scan_axes(&ax, cr, m, y0, ph, lo, hi);
        ax.ymin = lo;
        ax.ymax = hi + 0.08 * (hi - lo);
        ax.ystep = hi - lo;
        plot_axes_draw(&ax, k == nin - 1 ? xl : NULL, NULL, PLOT_XTICKS | PLOT_YTICKS | PLOT_XGRID);
        io_rgb c = input_col(k);
        /* the input as a step function, filled down to zero */
        cairo_save(cr);
        cairo_rectangle(cr, ax.x, ax.y, ax.w, ax.h);
        cairo_clip(cr);
        cairo_new_path(cr);
        const double zero = plot_py(&ax, 0.0);
        cairo_move_to(cr, plot_px(&ax, 0.0), zero);
        for (int b = 0; b < nu; b++) {
            double yb = plot_py(&ax, u[b]);
            cairo_line_to(cr, plot_px(&ax, b / per_scan), yb);
            cairo_line_to(cr, plot_px(&ax, (b + 1) / per_scan), yb);
        }
        cairo_line_to(cr, plot_px(&ax, nu / per_scan), zero);
        cairo_close_path(cr);
        cairo_set_source_rgba(cr, c.r, c.g, c.b, 0.35);
        cairo_fill_preserve(cr);
        cairo_set_source_rgb(cr, c.r, c.g, c.b);
        cairo_set_line_width(cr, 1.4);
        cairo_stroke(cr);
        cairo_restore(cr);
        report_input_role(m, k, role, sizeof role);
        snprintf(buf, sizeof buf, "%s: on %d time%s, %.4g s in all; %s", m->s.inputs[k], events,
                 events == 1 ? "" : "s", on, role);
        plot_text(cr, SCAN_LEFT, y0 - 8, buf, 12.5, PLOT_LEFT, PLOT_BOTTOM, 0, PLOT_BOLD, c);
    }
    return finish(f);
}

/* ------------------------------------------------------------------ */
/* parameters: forest plot                                              */

typedef struct {
    int k;        /* parameter, or -1 for a group header */
    int group, sub;
} row;

/* Block titles with the units of MANUAL section 5.4. */
static void group_title(const report_model *m, int g, int sub, char *buf, size_t len)
{
    const int two = m->s.two_state;
    switch (g) {
    case REPORT_GROUP_A:
        snprintf(buf, len, "A: endogenous connections (%s)",
                 two ? "log scale: rate exp(A)/8 Hz"
                     : "Hz; self-connections log scale: rate -exp(A)/2 Hz");
        break;
    case REPORT_GROUP_B:
        snprintf(buf, len, "B(%s): modulation of connections by %s (%s)", m->s.inputs[sub], m->s.inputs[sub],
                 two ? "log scale, added to A" : "Hz per unit input; self-connections log scale");
        break;
    case REPORT_GROUP_C:
        snprintf(buf, len, "C: driving inputs (enter divided by 16: rate C/16 Hz per unit input)");
        break;
    case REPORT_GROUP_D:
        snprintf(buf, len, "D(%s): nonlinear modulation by activity in %s (%s)", m->s.regions[sub],
                 m->s.regions[sub], two ? "log scale, added to A" : "Hz per unit activity; self-connections log scale");
        break;
    case REPORT_GROUP_SPECTRA:
        snprintf(buf, len, "spectra: a fluctuations, b global noise, c regional noise (log amplitude / "
                           "log exponent)");
        break;
    default:
        snprintf(buf, len, "haemodynamic: transit, decay, epsilon (log scaling of the prior value)");
        break;
    }
}

static io_rgb group_col(int g, int sub)
{
    switch (g) {
    case REPORT_GROUP_A:
        return a_col();
    case REPORT_GROUP_B:
        return input_col(sub);
    case REPORT_GROUP_C:
        return PLOT_BLACK;
    case REPORT_GROUP_D:
        return plot_rgb(0.45, 0.25, 0.55);
    case REPORT_GROUP_SPECTRA:
        return plot_palette(5);
    default:
        return PLOT_GREY;
    }
}

int report_fig_params(const report_model *m, double threshold, plot_figure *f)
{
    const int np = m->s.np;
    /* the interval drawn is the one the marking rule uses (report.h) */
    const double z = report_interval_z(threshold), level = 100.0 * (2.0 * threshold - 1.0);
    int any_pe = 0;
    row *rows = malloc(sizeof(row) * (size_t)(2 * np + 1));
    if (!rows)
        return -1;
    int nr = 0, lastg = -1, lasts = -1;
    double lo = 0.0, hi = 0.0;
    for (int k = 0; k < np; k++) {
        if (!report_param_free(m, k))
            continue;
        int sub, g = report_param_group(m, k, &sub);
        if (g != lastg || sub != lasts) {
            rows[nr++] = (row){-1, g, sub};
            lastg = g;
            lasts = sub;
        }
        rows[nr++] = (row){k, g, sub};
        double sd = report_param_sd(m, k), e = m->s.Ep[k];
        if (isfinite(e) && isfinite(sd)) {
            lo = fmin(lo, e - z * sd);
            hi = fmax(hi, e + z * sd);
        }
        any_pe |= m->s.pE[k] != 0.0 && !m->s.csd;
    }
    /* names are whole, however long (report_name_cap) */
    const size_t bufsz = report_name_cap(m) + 256;
    char *buf = malloc(bufsz), thr[64];
    if (!buf) {
        free(rows);
        return -1;
    }
    snprintf(thr, sizeof thr, "%g", threshold);
    char l1[160], l2[160], l3[160];
    snprintf(l1, sizeof l1, "Pp > %s: the interval lies beyond the prior mean", thr);
    snprintf(l2, sizeof l2, "Pp ≤ %s", thr);
    snprintf(l3, sizeof l3, "%.4g %% credible interval (mean ± %.3f sd)", level, z);
    plot_legend_entry leg[4] = {{l1, PLOT_BLACK, PLOT_KEY_POINT},
                                   {l2, PLOT_BLACK, PLOT_KEY_HOLLOW},
                                   {l3, PLOT_BLACK, PLOT_KEY_ERRORBAR},
                                   {"± prior mean (A: 1/128 Hz)", PLOT_GREY, PLOT_KEY_DOTTED}};
    const int nleg = any_pe ? 4 : 3;
    plot_figure tmp;
    cairo_t *mcr = plot_figure_begin(&tmp, 10, 10);
    if (!mcr) {
        free(rows);
        free(buf);
        return -1;
    }
    double labw = 120;
    for (int r = 0; r < nr; r++)
        if (rows[r].k >= 0) {
            report_param_name(m, rows[r].k, REPORT_NAME_FIGURE, buf, bufsz);
            labw = fmax(labw, plot_text_width(mcr, buf, 12, PLOT_NORMAL));
        }
    labw = fmin(labw, 0.4 * FIG_W); /* a very long name is cut at the figure's edge; the table has it whole */
    double lw, lh;
    plot_legend_size(mcr, leg, nleg, 2, &lw, &lh);
    plot_figure_free(&tmp);
    const double row_h = 22, top = 52 + lh + 40, valw = 232, bottom = 62;
    const double left = 24 + labw + 14, right = valw + 10;
    const double H = top + (nr ? nr : 1) * row_h + bottom;
    cairo_t *cr = plot_figure_begin(f, FIG_W, H);
    if (!cr) {
        free(rows);
        free(buf);
        return -1;
    }
    snprintf(buf, bufsz, "Parameters: %s", m->name);
    plot_title(cr, FIG_W, 10, buf, "every free parameter (prior variance > 0), grouped by block; units "
                                      "in each block's title");
    plot_legend(cr, (FIG_W - lw) / 2, 52, leg, nleg, 2);
    plot_axes ax;
    plot_axes_init(&ax, cr, left, top, FIG_W - left - right, (nr ? nr : 1) * row_h, lo, hi, 0,
                      nr ? nr : 1, 1);
    ax.ymin = 0;
    ax.ymax = nr ? nr : 1;
    ax.ystep = 0;
    snprintf(buf, bufsz, "posterior mean and %.4g %% credible interval (units as in each block's title)",
             level);
    plot_axes_draw(&ax, buf, NULL, PLOT_XTICKS | PLOT_XGRID | PLOT_ZERO_X);
    snprintf(buf, bufsz, "mean [%.4g %% CI]  Pp", level);
    plot_text(cr, ax.x + ax.w + 10, top - 6, buf, 11, PLOT_LEFT, PLOT_BOTTOM, 0,
                 PLOT_BOLD, PLOT_BLACK);
    if (!nr)
        plot_text(cr, FIG_W / 2, top + row_h / 2, "no free parameters", 12, PLOT_CENTRE,
                     PLOT_MIDDLE, 0, PLOT_ITALIC, PLOT_GREY);
    for (int r = 0; r < nr; r++) {
        double yc = nr - r - 0.5, py = plot_py(&ax, yc);
        io_rgb col = group_col(rows[r].group, rows[r].sub);
        if (rows[r].k < 0) {
            /* header: a tinted band across the plot and the block's name */
            cairo_save(cr);
            cairo_rectangle(cr, 12, py - row_h / 2 + 1, FIG_W - 24, row_h - 2);
            cairo_set_source_rgba(cr, col.r, col.g, col.b, 0.10);
            cairo_fill(cr);
            cairo_restore(cr);
            group_title(m, rows[r].group, rows[r].sub, buf, bufsz);
            plot_text(cr, 18, py, buf, 12, PLOT_LEFT, PLOT_MIDDLE, 0, PLOT_BOLD, col);
            continue;
        }
        int k = rows[r].k;
        double e = m->s.Ep[k], sd = report_param_sd(m, k);
        report_param_name(m, k, REPORT_NAME_FIGURE, buf, bufsz);
        plot_text(cr, left - 12, py, buf, 12, PLOT_RIGHT, PLOT_MIDDLE, 0, PLOT_NORMAL,
                     PLOT_BLACK);
        /* spectral DCM's Pp is about |Ep - pE|: no band of +-pE */
        const double pe = m->s.csd ? 0.0 : m->s.pE[k];
        if (pe != 0.0) { /* the prior mean the rule compares with: a band from -pE to +pE */
            double x0 = plot_px(&ax, -fabs(pe)), x1 = plot_px(&ax, fabs(pe));
            cairo_save(cr);
            cairo_rectangle(cr, x0, py - row_h / 2 + 2, x1 - x0, row_h - 4);
            cairo_set_source_rgba(cr, 0.5, 0.5, 0.5, 0.22);
            cairo_fill(cr);
            cairo_restore(cr);
        }
        if (pe != 0.0)
            for (int side = -1; side <= 1; side += 2) {
                double xp = plot_px(&ax, side * fabs(pe));
                cairo_save(cr);
                cairo_set_source_rgb(cr, PLOT_GREY.r, PLOT_GREY.g, PLOT_GREY.b);
                cairo_set_line_width(cr, 1.0);
                double dash[] = {2.0, 2.0};
                cairo_set_dash(cr, dash, 2, 0);
                cairo_move_to(cr, xp, py - row_h / 2 + 2);
                cairo_line_to(cr, xp, py + row_h / 2 - 2);
                cairo_stroke(cr);
                cairo_restore(cr);
            }
        plot_herror(&ax, yc, e - z * sd, e + z * sd, 8, col, 1.8);
        int mark = isfinite(m->Pp[k]) && m->Pp[k] > threshold;
        plot_point(&ax, e, yc, 4.5, col, mark);
        snprintf(buf, bufsz, "%.3f [%.3f, %.3f]  %.3f%s", e, e - z * sd, e + z * sd, m->Pp[k],
                 mark ? " *" : "");
        plot_text(cr, ax.x + ax.w + 10, py, buf, 11, PLOT_LEFT, PLOT_MIDDLE, 0, PLOT_NORMAL,
                     PLOT_BLACK);
    }
    free(rows);
    free(buf);
    return finish(f);
}

/* ------------------------------------------------------------------ */
/* connectivity diagram                                                 */

int report_fig_network(const report_model *m, double threshold, plot_figure *f)
{
    const int n = m->s.n, nin = m->s.m, np = m->s.np;
    const double R = n <= 2 ? 170 : n <= 4 ? 190 : 150 + 12 * n, rn = n <= 6 ? 42 : 34;
    const double margin = 130, top = 56;
    const double W = fmax(FIG_W * 0.75, 2 * (R + rn + margin));
    /* which inputs modulate (B) or drive (C) anything */
    int *usesB = calloc((size_t)(nin ? nin : 1), sizeof(int)), *usesC = calloc((size_t)(nin ? nin : 1), sizeof(int));
    double *px = malloc(sizeof(double) * (size_t)n), *py = malloc(sizeof(double) * (size_t)n);
    double *midx = malloc(sizeof(double) * (size_t)n * n), *midy = malloc(sizeof(double) * (size_t)n * n);
    plot_legend_entry *leg = malloc(sizeof(plot_legend_entry) * (size_t)(2 * nin + 3));
    char **labels = calloc((size_t)(2 * nin + 3), sizeof(char *));
    int rc = -1, nd_free = 0, na_between = 0;
    const int two = m->s.two_state;
    const io_rgb dcol = plot_rgb(0.45, 0.25, 0.55);
    model_layout T;
    report_layout(m, &T);
    const model_layout_block *BA = &T.block[MODEL_BLOCK_A], *BB = &T.block[MODEL_BLOCK_B],
                             *BC = &T.block[MODEL_BLOCK_C], *BD = &T.block[MODEL_BLOCK_D];
    if (!usesB || !usesC || !px || !py || !midx || !midy || !leg || !labels)
        goto done;
    for (int i = 0; i < n * n; i++)
        midx[i] = midy[i] = NAN;
    for (int k = 0; k < np; k++) {
        if (!report_param_free(m, k))
            continue;
        int sub, g = report_param_group(m, k, &sub), from, to;
        report_param_ends(m, k, &from, &to);
        if (g == REPORT_GROUP_B)
            usesB[sub] = 1;
        else if (g == REPORT_GROUP_C)
            usesC[from] = 1;
        else if (g == REPORT_GROUP_D)
            nd_free++;
        else if (g == REPORT_GROUP_A && from != to)
            na_between++;
    }
    int nl = 0;
    if (na_between)
        leg[nl++] = (plot_legend_entry){two ? "endogenous connection (A): posterior mean, log scale"
                                           : "endogenous connection (A): posterior mean, Hz",
                                       PLOT_BLACK, PLOT_KEY_ARROW};
    for (int u = 0; u < nin; u++) {
        char buf[300];
        if (usesC[u]) {
            snprintf(buf, sizeof buf, "driving input %s (C; enters as C/16 Hz)", m->s.inputs[u]);
            if (!(labels[nl] = strdup(buf)))
                goto done;
            leg[nl] = (plot_legend_entry){labels[nl], input_col(u), PLOT_KEY_ARROW};
            nl++;
        }
        if (usesB[u]) {
            snprintf(buf, sizeof buf, "modulation by %s (B), %s", m->s.inputs[u], two ? "log scale" : "Hz per unit input");
            if (!(labels[nl] = strdup(buf)))
                goto done;
            leg[nl] = (plot_legend_entry){labels[nl], input_col(u), PLOT_KEY_POINT};
            nl++;
        }
    }
    if (nd_free)
        leg[nl++] = (plot_legend_entry){two ? "nonlinear modulation (D) by a region, log scale"
                                               : "nonlinear modulation (D) by a region, Hz",
                                           dcol, PLOT_KEY_DASHED};
    plot_figure tmp;
    cairo_t *mcr = plot_figure_begin(&tmp, 10, 10);
    if (!mcr)
        goto done;
    double lw, lh;
    plot_legend_size(mcr, leg, nl, 2, &lw, &lh);
    double Wl = fmax(W, lw + 40);
    plot_figure_free(&tmp);
    /* node positions on a circle (V1 at the top, clockwise; two regions
       side by side), then the figure's height from their extent */
    double umin = INFINITY, umax = -INFINITY;
    for (int i = 0; i < n; i++) {
        double ang = n == 2 ? (i == 0 ? M_PI : 0.0) : -M_PI / 2 + 2 * M_PI * i / n;
        px[i] = n > 1 ? R * cos(ang) : 0.0;
        py[i] = n > 1 ? R * sin(ang) : 0.0;
        /* extent of the node and of its driving inputs (drawn outwards) */
        int hasC = 0;
        for (int u = 0; u < nin; u++)
            hasC |= report_param_free(m, model_layout_index(BC, i, u, 0));
        double uy = n > 1 ? sin(ang) : -1.0, reach = hasC ? rn + 92 : rn + 24;
        umin = fmin(umin, fmin(py[i] - rn - 24, py[i] + reach * uy));
        umax = fmax(umax, fmax(py[i] + rn + 24, py[i] + reach * uy));
    }
    const double cx = Wl / 2, cy = top + 10 - umin;
    const double diag_h = umax - umin + 20;
    for (int i = 0; i < n; i++) {
        px[i] += cx;
        py[i] += cy;
    }
    const double H = top + diag_h + 8 + lh + 36;
    cairo_t *cr = plot_figure_begin(f, Wl, H);
    if (!cr)
        goto done;
    char buf[512];
    snprintf(buf, sizeof buf, "Connectivity: %s", m->name);
    plot_title(cr, Wl, 10, buf,
                  m->s.two_state ? "two-state model: numbers are log scaling factors"
                                 : "posterior means: A and B in Hz, C enters as C/16 Hz; * marks posterior "
                                   "probability above the threshold");
    /* endogenous connections and their modulations */
    for (int to = 0; to < n; to++)
        for (int from = 0; from < n; from++) {
            if (from == to)
                continue;
            int ka = model_layout_index(BA, to, from, 0);
            int anyB = 0;
            for (int u = 0; u < nin; u++)
                anyB |= report_param_free(m, model_layout_index(BB, to, from, u));
            if (!report_param_free(m, ka) && !anyB)
                continue;
            int back = report_param_free(m, model_layout_index(BA, from, to, 0));
            double bend = back ? 26 : 0;
            /* end points on the node circles, towards the bent curve */
            double mx, my;
            plot_arrow_at(px[from], py[from], px[to], py[to], bend, 0.5, &mx, &my);
            double c0x = px[from], c0y = py[from], c1x = px[to], c1y = py[to];
            double d0 = hypot(mx - c0x, my - c0y), d1 = hypot(mx - c1x, my - c1y);
            double x0 = c0x + (rn + 3) * (mx - c0x) / d0, y0 = c0y + (rn + 3) * (my - c0y) / d0;
            double x1 = c1x + (rn + 4) * (mx - c1x) / d1, y1 = c1y + (rn + 4) * (my - c1y) / d1;
            double e = m->s.Ep[ka];
            int fixed = !report_param_free(m, ka);
            double width = fixed ? 1.2 : 1.4 + 2.2 * fmin(fabs(e), 1.0);
            plot_arrow(cr, x0, y0, x1, y1, bend, width, 13, fixed ? PLOT_GREY : PLOT_BLACK,
                          fixed ? PLOT_DASHED : PLOT_SOLID, &mx, &my);
            midx[to + from * n] = mx;
            midy[to + from * n] = my;
            if (!fixed) {
                int mark = isfinite(m->Pp[ka]) && m->Pp[ka] > threshold;
                snprintf(buf, sizeof buf, "%.2f%s", e, mark ? "*" : "");
                plot_label_box(cr, mx, my, buf, 12, PLOT_BOLD, PLOT_BLACK);
            }
            /* modulations: coloured dots along the arrow, the value beside */
            int q = 0;
            for (int u = 0; u < nin; u++) {
                int kb = model_layout_index(BB, to, from, u);
                if (!report_param_free(m, kb))
                    continue;
                double bx, by, ox, oy;
                plot_arrow_at(x0, y0, x1, y1, bend, 0.74 - 0.12 * q, &bx, &by);
                /* offset of the value: perpendicular to the chord, on the
                   outer side of a bent arrow (away from its reverse) */
                double dx = x1 - x0, dy = y1 - y0, L = hypot(dx, dy);
                double nx = L > 0 ? -dy / L : 0, ny = L > 0 ? dx / L : 0;
                if (bend < 0) {
                    nx = -nx;
                    ny = -ny;
                }
                cairo_new_sub_path(cr);
                cairo_arc(cr, bx, by, 6.5, 0, 2 * M_PI);
                io_rgb c = input_col(u);
                cairo_set_source_rgb(cr, c.r, c.g, c.b);
                cairo_fill_preserve(cr);
                cairo_set_source_rgb(cr, 1, 1, 1);
                cairo_set_line_width(cr, 1.5);
                cairo_stroke(cr);
                int mark = isfinite(m->Pp[kb]) && m->Pp[kb] > threshold;
                snprintf(buf, sizeof buf, "%+.2f%s", m->s.Ep[kb], mark ? "*" : "");
                ox = bx + 20 * nx;
                oy = by + 20 * ny;
                plot_text(cr, ox, oy, buf, 11.5, nx > 0.3 ? PLOT_LEFT : nx < -0.3 ? PLOT_RIGHT : PLOT_CENTRE,
                             PLOT_MIDDLE, 0, PLOT_BOLD, c);
                q++;
            }
        }
    /* nonlinear modulation: a dashed arrow from the modulating region to
       the middle of the connection it gates */
    for (int k = 0; k < BD->slices; k++)
        for (int to = 0; to < n; to++)
            for (int from = 0; from < n; from++) {
                int kd = model_layout_index(BD, to, from, k);
                double tx = midx[to + from * n], ty = midy[to + from * n];
                if (!report_param_free(m, kd) || !isfinite(tx))
                    continue;
                double dx = tx - px[k], dy = ty - py[k], d = hypot(dx, dy);
                if (d < rn + 20)
                    continue;
                double sx = px[k] + (rn + 3) * dx / d, sy = py[k] + (rn + 3) * dy / d;
                double ex = tx - 12 * dx / d, ey = ty - 12 * dy / d;
                double mx, my;
                plot_arrow(cr, sx, sy, ex, ey, 18, 1.6, 10, dcol, PLOT_DASHED, &mx, &my);
                int mark = isfinite(m->Pp[kd]) && m->Pp[kd] > threshold;
                snprintf(buf, sizeof buf, "D %.2f%s", m->s.Ep[kd], mark ? "*" : "");
                plot_label_box(cr, mx, my, buf, 11, PLOT_BOLD, dcol);
            }
    /* driving inputs: short coloured arrows from outside the circle */
    for (int i = 0; i < n; i++) {
        int nc = 0, q = 0;
        for (int u = 0; u < nin; u++)
            nc += report_param_free(m, model_layout_index(BC, i, u, 0));
        for (int u = 0; u < nin; u++) {
            int kc = model_layout_index(BC, i, u, 0);
            if (!report_param_free(m, kc))
                continue;
            double base = n > 1 ? atan2(py[i] - cy, px[i] - cx) : -M_PI / 2;
            double ang = base + (q - (nc - 1) / 2.0) * 0.8;
            double ux = cos(ang), uy = sin(ang);
            double sx = px[i] + (rn + 62) * ux, sy = py[i] + (rn + 62) * uy;
            double ex = px[i] + (rn + 3) * ux, ey = py[i] + (rn + 3) * uy;
            io_rgb c = input_col(u);
            plot_arrow(cr, sx, sy, ex, ey, 0, 2.4, 12, c, PLOT_SOLID, NULL, NULL);
            int mark = isfinite(m->Pp[kc]) && m->Pp[kc] > threshold;
            snprintf(buf, sizeof buf, "%s %.2f%s", m->s.inputs[u], m->s.Ep[kc], mark ? "*" : "");
            int ha = ux > 0.35 ? PLOT_LEFT : ux < -0.35 ? PLOT_RIGHT : PLOT_CENTRE;
            int va = uy > 0.35 ? PLOT_TOP : uy < -0.35 ? PLOT_BOTTOM : PLOT_MIDDLE;
            plot_text(cr, sx + 4 * ux, sy + 4 * uy, buf, 12, ha, va, 0, PLOT_BOLD, c);
            q++;
        }
    }
    /* nodes */
    for (int i = 0; i < n; i++) {
        cairo_new_sub_path(cr);
        cairo_arc(cr, px[i], py[i], rn, 0, 2 * M_PI);
        cairo_set_source_rgb(cr, 0.93, 0.95, 0.98);
        cairo_fill_preserve(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_set_line_width(cr, 1.8);
        cairo_stroke(cr);
        /* the name, smaller when it would not fit in the circle */
        double fs = 14;
        while (fs > 8 && plot_text_width(cr, m->s.regions[i], fs, PLOT_BOLD) > 2 * rn - 10)
            fs -= 0.5;
        plot_text(cr, px[i], py[i] - 6, m->s.regions[i], fs, PLOT_CENTRE, PLOT_MIDDLE, 0,
                     PLOT_BOLD, PLOT_BLACK);
        int ks = model_layout_index(BA, i, i, 0);
        if (report_param_free(m, ks)) {
            if (m->s.two_state)
                snprintf(buf, sizeof buf, "self %.2f", m->s.Ep[ks]);
            else
                snprintf(buf, sizeof buf, "self %.2f Hz", -0.5 * exp(m->s.Ep[ks]));
            plot_text(cr, px[i], py[i] + 13, buf, 10, PLOT_CENTRE, PLOT_MIDDLE, 0, PLOT_NORMAL,
                         PLOT_GREY);
        }
        /* modulation of the self-connection: a coloured ring segment */
        for (int u = 0, q = 0; u < nin; u++) {
            int kb = model_layout_index(BB, i, i, u);
            if (!report_param_free(m, kb))
                continue;
            io_rgb c = input_col(u);
            double a0 = M_PI / 2 - 0.45 * q, bx = px[i] + rn * cos(a0), by = py[i] + rn * sin(a0);
            cairo_new_sub_path(cr);
            cairo_arc(cr, bx, by, 6.5, 0, 2 * M_PI);
            cairo_set_source_rgb(cr, c.r, c.g, c.b);
            cairo_fill_preserve(cr);
            cairo_set_source_rgb(cr, 1, 1, 1);
            cairo_set_line_width(cr, 1.5);
            cairo_stroke(cr);
            int mark = isfinite(m->Pp[kb]) && m->Pp[kb] > threshold;
            snprintf(buf, sizeof buf, "self %+.2f%s", m->s.Ep[kb], mark ? "*" : "");
            plot_text(cr, bx + 10, by + 8, buf, 11, PLOT_LEFT, PLOT_MIDDLE, 0, PLOT_BOLD, c);
            q++;
        }
    }
    double ly = top + diag_h + 8;
    plot_legend(cr, (Wl - lw) / 2, ly, leg, nl, 2);
    plot_text(cr, Wl / 2, ly + lh + 8,
                 m->s.two_state ? "inside each node: its self-connection (log scale); * posterior probability above the threshold"
                                : "inside each node: its self-inhibition -0.5*exp(A) in Hz; * posterior probability above the threshold",
                 10.5, PLOT_CENTRE, PLOT_TOP, 0, PLOT_NORMAL, PLOT_GREY);
    rc = finish(f);
done:
    if (labels)
        for (int i = 0; i < 2 * nin + 3; i++)
            free(labels[i]);
    free(labels);
    free(leg);
    free(usesB);
    free(usesC);
    free(px);
    free(py);
    free(midx);
    free(midy);
    return rc;
}

/* ------------------------------------------------------------------ */
/* spectral DCM: observed and predicted cross-spectra                   */

int report_fig_spectra(const report_model *m, plot_figure *f, double *rects)
{
    const int n = m->s.n, nw = m->nw;
    if (n < 1 || nw < 2 || !m->Hz || !m->csd_obs || !m->csd_pred)
        return -1;
    /* small panels: y ticks on each only while they are wide enough */
    const int yticks = n <= 4;
    const double fs = n <= 6 ? 12 : 9.5;   /* region names */
    plot_legend_entry leg[2] = {{"observed |CSD| (MAR estimate of the data)", PLOT_BLACK, PLOT_KEY_LINE},
                                {"predicted |CSD| (model at the posterior mean)", a_col(), PLOT_KEY_DASHED}};
    plot_figure tmp;
    cairo_t *mcr = plot_figure_begin(&tmp, 10, 10);
    if (!mcr)
        return -1;
    double lw, lh, labw = 20;
    plot_legend_size(mcr, leg, 2, 2, &lw, &lh);
    for (int i = 0; i < n; i++)   /* row names whole (up to a cap; long ones run into the margin) */
        labw = fmax(labw, fmin(plot_text_width(mcr, m->s.regions[i], fs, PLOT_BOLD), 200));
    plot_figure_free(&tmp);
    /* left: the row names, then (with y ticks) the tick labels and "|CSD|" */
    const double left = 16 + labw + (yticks ? 84 : 8), right = 20;
    const double W = fmax(FIG_W, left + right + n * (yticks ? 190.0 : 96.0));
    const double gx = yticks ? 52 : 10, gy = n <= 4 ? 34 : 14, bottom = 64;
    const double pw = (W - left - right - (n - 1) * gx) / n, ph = fmin(pw * 0.72, 190);
    const double top = 52 + lh + 44;
    const double H = top + n * ph + (n - 1) * gy + bottom;
    cairo_t *cr = plot_figure_begin(f, W, H);
    if (!cr)
        return -1;
    double *mag = malloc(sizeof(double) * 2 * (size_t)nw);
    if (!mag)
        return -1;
    char buf[512];
    snprintf(buf, sizeof buf, "Cross-spectra, observed and predicted: %s", m->name);
    plot_title(cr, W, 10, buf,
               "panel (row i, column j): magnitude of the cross-spectral density of regions i and j "
               "against frequency (Hz); diagonal: auto-spectra");
    plot_legend(cr, (W - lw) / 2, 52, leg, 2, 2);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double hi = 0.0;
            for (int w = 0; w < nw; w++) {
                size_t q = 2 * ((size_t)w + (size_t)nw * (i + (size_t)n * j));
                mag[w] = hypot(m->csd_obs[q], m->csd_obs[q + 1]);
                mag[nw + w] = hypot(m->csd_pred[q], m->csd_pred[q + 1]);
                if (isfinite(mag[w]))
                    hi = fmax(hi, mag[w]);
                if (isfinite(mag[nw + w]))
                    hi = fmax(hi, mag[nw + w]);
            }
            const double x = left + j * (pw + gx), y = top + i * (ph + gy);
            plot_axes ax;
            plot_axes_init(&ax, cr, x, y, pw, ph, m->Hz[0], m->Hz[nw - 1], 0.0, hi > 0 ? hi : 1.0, 0);
            double a, b, step;
            plot_nice(0.0, hi > 0 ? hi : 1.0, 3, &a, &b, &step);
            ax.ymin = 0.0;
            ax.ymax = b;
            ax.ystep = yticks ? step : 0.0;
            plot_nice(m->Hz[0], m->Hz[nw - 1], n <= 4 ? 3 : 2, &a, &b, &step);
            ax.xstep = i == n - 1 ? step : 0.0;
            plot_axes_draw(&ax, i == n - 1 && j == (n - 1) / 2 ? "frequency (Hz)" : NULL,
                           yticks && j == 0 ? "|CSD|" : NULL,
                           (i == n - 1 ? PLOT_XTICKS : 0) | (yticks ? PLOT_YTICKS | PLOT_YGRID : 0));
            if (i == j) { /* the auto-spectra: a tinted frame */
                cairo_save(cr);
                cairo_rectangle(cr, x, y, pw, ph);
                cairo_set_source_rgba(cr, 0.0, 0.45, 0.7, 0.06);
                cairo_fill(cr);
                cairo_restore(cr);
            }
            plot_line(&ax, m->Hz, 0, 0, mag, nw, 1, PLOT_BLACK, 1.4, PLOT_SOLID);
            plot_line(&ax, m->Hz, 0, 0, mag + nw, nw, 1, a_col(), 1.6, PLOT_DASHED);
            if (!yticks) { /* no y axis: the panel's peak instead */
                snprintf(buf, sizeof buf, "%.2g", hi);
                plot_text(cr, x + pw - 3, y + 3, buf, 8.5, PLOT_RIGHT, PLOT_TOP, 0, PLOT_NORMAL, PLOT_GREY);
            }
            if (rects) {
                double *r = rects + 4 * ((size_t)i * n + j);
                r[0] = x;
                r[1] = y;
                r[2] = pw;
                r[3] = ph;
            }
        }
    /* region names: columns on top, rows on the left */
    for (int j = 0; j < n; j++)
        plot_text(cr, left + j * (pw + gx) + pw / 2, top - 8, m->s.regions[j], fs, PLOT_CENTRE, PLOT_BOTTOM,
                  0, PLOT_BOLD, PLOT_BLACK);
    for (int i = 0; i < n; i++)
        plot_text(cr, 16 + labw, top + i * (ph + gy) + ph / 2, m->s.regions[i], fs, PLOT_RIGHT, PLOT_MIDDLE, 0,
                  PLOT_BOLD, PLOT_BLACK);
    free(mag);
    return finish(f);
}

/* ------------------------------------------------------------------ */
/* free energy                                                          */

int report_fig_free_energy(const report_model *m, plot_figure *f)
{
    const int nt = m->ntrace;
    if (nt < 1)
        return -1;
    const double W = FIG_W, H = 400, left = 100, right = 30, top = 70, bottom = 62;
    cairo_t *cr = plot_figure_begin(f, W, H);
    if (!cr)
        return -1;
    char title[512], sub[512];
    snprintf(title, sizeof title, "Free energy over iterations: %s", m->name);
    snprintf(sub, sizeof sub, "final F = %.2f nats after %d iteration%s%s", m->s.F, nt, nt == 1 ? "" : "s",
             m->s.converged == 1 ? " (converged)" : m->s.converged == 0 ? " (NOT converged)" : "");
    plot_title(cr, W, 10, title, sub);
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < nt; i++)
        if (isfinite(m->F_trace[i])) {
            lo = fmin(lo, m->F_trace[i]);
            hi = fmax(hi, m->F_trace[i]);
        }
    plot_axes ax;
    plot_axes_init(&ax, cr, left, top, W - left - right, H - top - bottom, 1, nt, lo, hi, 1);
    ax.xmin = 0.5;
    ax.xmax = nt + 0.5;
    ax.xstep = fmax(1.0, round(ax.xstep));
    plot_axes_draw(&ax, "iteration", "free energy F (nats)",
                      PLOT_XTICKS | PLOT_YTICKS | PLOT_XGRID | PLOT_YGRID);
    plot_hline(&ax, m->s.F, plot_palette(1), PLOT_DASHED, NULL);
    plot_line(&ax, NULL, 1, 1, m->F_trace, nt, 1, a_col(), 1.8, PLOT_SOLID);
    for (int i = 0; i < nt; i++)
        plot_point(&ax, i + 1, m->F_trace[i], 3.5, a_col(), 1);
    plot_legend_entry leg[2] = {{"F after each iteration", a_col(), PLOT_KEY_POINT},
                                   {"final F (the model's log-evidence bound)", plot_palette(1),
                                    PLOT_KEY_DASHED}};
    double lw, lh;
    plot_legend_size(cr, leg, 2, 1, &lw, &lh);
    plot_legend(cr, ax.x + ax.w - lw - 10, ax.y + ax.h - lh - 30, leg, 2, 1);
    return finish(f);
}

/* ------------------------------------------------------------------ */
/* model comparison                                                     */

int report_fig_compare(const report_model *models, int k, const double *lbf,
                          const double *post, plot_figure *f)
{
    if (k < 1)
        return -1;
    plot_legend_entry *leg = malloc(sizeof(plot_legend_entry) * (size_t)k);
    if (!leg)
        return -1;
    for (int i = 0; i < k; i++)
        leg[i] = (plot_legend_entry){models[i].name, plot_palette(i), PLOT_KEY_BOX};
    plot_figure tmp;
    cairo_t *mcr = plot_figure_begin(&tmp, 10, 10);
    if (!mcr) {
        free(leg);
        return -1;
    }
    int per_row = k < 6 ? k : 6;
    double lw, lh;
    plot_legend_size(mcr, leg, k, per_row, &lw, &lh);
    plot_figure_free(&tmp);
    const double W = FIG_W, top = 56 + lh + 34, ph = 300, bottom = 70, H = top + ph + bottom;
    cairo_t *cr = plot_figure_begin(f, W, H);
    if (!cr) {
        free(leg);
        return -1;
    }
    plot_title(cr, W, 10, "Model comparison (fixed effects)",
                  "free energy differences between models fitted to the same data, equal prior probabilities");
    plot_legend(cr, (W - lw) / 2, 52, leg, k, per_row);
    const double pw = (W - 100 - 90 - 30) / 2;
    /* left: log Bayes factor against the best model */
    double lo = -3.5;
    for (int i = 0; i < k; i++)
        if (isfinite(lbf[i]))
            lo = fmin(lo, lbf[i] * 1.08);
    plot_axes a1;
    plot_axes_init(&a1, cr, 100, top, pw, ph, 0.4, k + 0.6, lo, 0.0, 1);
    a1.xmin = 0.4;
    a1.xmax = k + 0.6;
    a1.ymax = fmax(a1.ymax, 0.0) + (a1.ymax - a1.ymin) * 0.06;
    a1.xstep = 0; /* categories: names drawn below, the axis label under them */
    plot_axes_draw(&a1, "model", "log Bayes factor vs best model (nats)",
                      PLOT_XTICKS | PLOT_YTICKS | PLOT_YGRID | PLOT_ZERO_Y);
    char buf[64];
    for (int i = 0; i < k; i++) {
        double x = i + 1.0;
        plot_vbar(&a1, x, 0.6, 0.0, lbf[i], plot_palette(i));
        snprintf(buf, sizeof buf, "%.2f", lbf[i]);
        double yv = plot_py(&a1, lbf[i]);
        double y0 = plot_py(&a1, 0.0);
        plot_text(cr, plot_px(&a1, x), fabs(yv - y0) < 16 ? y0 - 3 : yv + 3, buf, 11,
                     PLOT_CENTRE, fabs(yv - y0) < 16 ? PLOT_BOTTOM : PLOT_TOP, 0, PLOT_BOLD,
                     PLOT_BLACK);
        plot_text(cr, plot_px(&a1, x), top + ph + 6, models[i].name, 11, PLOT_CENTRE,
                     PLOT_TOP, 0, PLOT_NORMAL, PLOT_BLACK);
    }
    plot_hline(&a1, -3.0, plot_palette(1), PLOT_DASHED, "−3: strong evidence against");
    /* right: posterior probabilities */
    plot_axes a2;
    plot_axes_init(&a2, cr, 100 + pw + 90, top, pw, ph, 0.4, k + 0.6, 0.0, 1.0, 1);
    a2.xmin = 0.4;
    a2.xmax = k + 0.6;
    a2.ymin = 0.0;
    a2.ymax = 1.08;
    a2.ystep = 0.2;
    a2.xstep = 0;
    plot_axes_draw(&a2, "model", "posterior model probability", PLOT_XTICKS | PLOT_YTICKS | PLOT_YGRID);
    for (int i = 0; i < k; i++) {
        double x = i + 1.0;
        plot_vbar(&a2, x, 0.6, 0.0, post[i], plot_palette(i));
        snprintf(buf, sizeof buf, "%.3f", post[i]);
        plot_text(cr, plot_px(&a2, x), plot_py(&a2, post[i]) - 3, buf, 11, PLOT_CENTRE,
                     PLOT_BOTTOM, 0, PLOT_BOLD, PLOT_BLACK);
        plot_text(cr, plot_px(&a2, x), top + ph + 6, models[i].name, 11, PLOT_CENTRE,
                     PLOT_TOP, 0, PLOT_NORMAL, PLOT_BLACK);
    }
    plot_hline(&a2, 0.95, plot_palette(1), PLOT_DASHED, "0.95: strong evidence for");
    free(leg);
    return finish(f);
}

/* ------------------------------------------------------------------ */
/* group comparison: random effects                                     */

int report_fig_group(const report_group *g, plot_figure *f)
{
    const int k = g ? g->nmod : 0;
    if (k < 1 || !g->models || !g->exp_r || !g->xp || !g->pxp)
        return -1;
    const int nl = k + 2;
    plot_legend_entry *leg = malloc(sizeof(plot_legend_entry) * (size_t)nl);
    if (!leg)
        return -1;
    char chance[96];
    snprintf(chance, sizeof chance, "1/%d: all models equally frequent (exp_r)", k);
    for (int i = 0; i < k; i++)
        leg[i] = (plot_legend_entry){g->models[i], plot_palette(i), PLOT_KEY_BOX};
    leg[k] = (plot_legend_entry){chance, PLOT_GREY, PLOT_KEY_DOTTED};
    leg[k + 1] = (plot_legend_entry){"0.95: strong evidence (xp, pxp)", PLOT_BLACK, PLOT_KEY_DASHED};
    /* measure: the legend (as many entries per row as fit) and the names */
    plot_figure tmp;
    cairo_t *mcr = plot_figure_begin(&tmp, 10, 10);
    if (!mcr) {
        free(leg);
        return -1;
    }
    const double W = FIG_W, name_fs = 11, val_fs = 10.5;
    int per_row = nl < 6 ? nl : 6;
    double lw, lh;
    plot_legend_size(mcr, leg, nl, per_row, &lw, &lh);
    while (per_row > 1 && lw > W - 40) {
        per_row--;
        plot_legend_size(mcr, leg, nl, per_row, &lw, &lh);
    }
    double namew = 0, valw = plot_text_width(mcr, "0.000", val_fs, PLOT_BOLD);
    for (int i = 0; i < k; i++)
        namew = fmax(namew, plot_text_width(mcr, g->models[i], name_fs, PLOT_NORMAL));
    plot_figure_free(&tmp);
    /* three panels side by side for a few models, else one above the other */
    const int side = k <= 6, cols = side ? 3 : 1, rows = side ? 1 : 3;
    const double left = 76, gap_x = 72, right = 22, title_h = 26;
    const double pw = (W - left - right - (cols - 1) * gap_x) / cols, ph = side ? 290 : 220;
    const double slot = pw / (k + 0.2);
    const int rotate = namew > slot - 6;
    const double names_h = rotate ? namew * 0.7071 + 18 : 22;
    const double row_h = title_h + ph + names_h + (side ? 0 : 18);
    const double top = 56 + lh + 18, bottom = 16;
    const double H = top + rows * row_h + bottom;
    cairo_t *cr = plot_figure_begin(f, W, H);
    if (!cr) {
        free(leg);
        return -1;
    }
    char sub[512];
    snprintf(sub, sizeof sub,
             "%d subjects, %d models; Bayesian omnibus risk BOR = %.3g (posterior probability that all "
             "models are equally frequent)%s",
             g->nsub, k, g->bor, g->converged ? "" : "; NOT converged");
    plot_title(cr, W, 10, "Group model comparison (random effects)", sub);
    plot_legend(cr, (W - lw) / 2, 52, leg, nl, per_row);
    static const char *titles[3] = {"exp_r: expected frequency", "xp: exceedance probability",
                                    "pxp: protected exceedance probability"};
    static const char *ylabels[3] = {"frequency (share of subjects)", "probability", "probability"};
    const double *vals[3] = {g->exp_r, g->xp, g->pxp};
    /* panel titles: one size, as large as fits over the narrowest panel */
    double tfs = 12.5;
    for (int p = 0; p < 3; p++)
        while (tfs > 9 && plot_text_width(cr, titles[p], tfs, PLOT_BOLD) > pw + 12)
            tfs -= 0.5;
    char buf[64];
    for (int p = 0; p < 3; p++) {
        const double x0 = left + (side ? p * (pw + gap_x) : 0), y0 = top + (side ? 0 : p * row_h) + title_h;
        plot_axes ax;
        plot_axes_init(&ax, cr, x0, y0, pw, ph, 0.4, k + 0.6, 0.0, 1.0, 1);
        ax.xmin = 0.4;
        ax.xmax = k + 0.6;
        ax.ymin = 0.0;
        ax.ymax = 1.08;
        ax.ystep = 0.2;
        ax.xstep = 0; /* categories: the names are drawn below */
        plot_axes_draw(&ax, NULL, ylabels[p], PLOT_YTICKS | PLOT_YGRID);
        plot_text(cr, x0 + pw / 2, y0 - 8, titles[p], tfs, PLOT_CENTRE, PLOT_BOTTOM, 0, PLOT_BOLD,
                     PLOT_BLACK);
        for (int i = 0; i < k; i++) {
            double x = i + 1.0, v = vals[p][i];
            plot_vbar(&ax, x, 0.62, 0.0, isfinite(v) ? v : 0.0, plot_palette(i));
        }
        if (p == 0)
            plot_hline(&ax, 1.0 / k, PLOT_GREY, PLOT_DOTTED, NULL);
        else
            plot_hline(&ax, 0.95, PLOT_BLACK, PLOT_DASHED, NULL);
        for (int i = 0; i < k; i++) {
            double x = i + 1.0, v = vals[p][i], px = plot_px(&ax, x);
            if (valw <= slot - 2 && isfinite(v)) {
                snprintf(buf, sizeof buf, "%.3f", v);
                double ty = plot_py(&ax, fmax(v, 0.0)) - 3;
                double tw = plot_text_width(cr, buf, val_fs, PLOT_BOLD);
                /* a white backing keeps the number legible across a reference line */
                cairo_save(cr);
                cairo_rectangle(cr, px - tw / 2 - 1.5, ty - val_fs - 0.5, tw + 3, val_fs + 0.5);
                cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
                cairo_fill(cr);
                cairo_restore(cr);
                plot_text(cr, px, ty, buf, val_fs, PLOT_CENTRE, PLOT_BOTTOM, 0, PLOT_BOLD,
                             PLOT_BLACK);
            }
            if (rotate)
                plot_text(cr, px + 4, y0 + ph + 8, g->models[i], name_fs, PLOT_RIGHT, PLOT_MIDDLE,
                             -M_PI / 4, PLOT_NORMAL, PLOT_BLACK);
            else
                plot_text(cr, px, y0 + ph + 6, g->models[i], name_fs, PLOT_CENTRE, PLOT_TOP, 0,
                             PLOT_NORMAL, PLOT_BLACK);
        }
    }
    free(leg);
    return finish(f);
}
