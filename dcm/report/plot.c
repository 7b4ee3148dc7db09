/* plot.c — a tiny plotting layer on top of cairo (see plot.h). */
#include "dcm/report/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FONT "DejaVu Sans"
#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

io_rgb plot_rgb(double r, double g, double b)
{
    io_rgb c = {r, g, b};
    return c;
}

io_rgb plot_palette(int i)
{
    /* Okabe-Ito: blue, vermillion, bluish green, orange, reddish purple,
       sky blue, yellow-brown */
    static const double p[][3] = {{0.000, 0.447, 0.698}, {0.835, 0.369, 0.000},
                                  {0.000, 0.620, 0.451}, {0.902, 0.624, 0.000},
                                  {0.800, 0.475, 0.655}, {0.337, 0.706, 0.914},
                                  {0.600, 0.500, 0.100}};
    const int k = (int)(sizeof p / sizeof *p);
    i = ((i % k) + k) % k;
    return plot_rgb(p[i][0], p[i][1], p[i][2]);
}

static void set_col(cairo_t *cr, io_rgb c)
{
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
}

static void set_dash(cairo_t *cr, int dash, double width)
{
    if (dash == PLOT_DOTTED) {
        double d[2] = {0.01, 2.6 * width + 1.2};
        cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
        cairo_set_dash(cr, d, 2, 0);
    } else if (dash == PLOT_DASHED) {
        double d[2] = {5.0, 3.5};
        cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
        cairo_set_dash(cr, d, 2, 0);
    } else {
        cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
        cairo_set_dash(cr, NULL, 0, 0);
    }
}

/* ------------------------------------------------------------------ */
/* figures                                                              */

cairo_t *plot_figure_begin(plot_figure *f, double w, double h)
{
    memset(f, 0, sizeof *f);
    if (report_cairo_need(NULL))
        return NULL;   /* the entry points said why (report_cairo_need) */
    cairo_rectangle_t ext = {0, 0, w, h};
    f->w = w;
    f->h = h;
    f->rec = cairo_recording_surface_create(CAIRO_CONTENT_COLOR_ALPHA, &ext);
    if (cairo_surface_status(f->rec) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(f->rec);
        f->rec = NULL;
        return NULL;
    }
    f->cr = cairo_create(f->rec);
    if (cairo_status(f->cr) != CAIRO_STATUS_SUCCESS) {
        plot_figure_free(f);
        return NULL;
    }
    cairo_set_source_rgb(f->cr, 1, 1, 1);
    cairo_paint(f->cr);
    cairo_set_line_join(f->cr, CAIRO_LINE_JOIN_ROUND);
    return f->cr;
}

typedef struct {
    unsigned char *buf;
    size_t len, cap;
    int failed;
} membuf;

static cairo_status_t write_mem(void *closure, const unsigned char *data, unsigned int length)
{
    membuf *m = closure;
    if (m->len + length > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < m->len + length)
            cap *= 2;
        unsigned char *nb = realloc(m->buf, cap);
        if (!nb) {
            m->failed = 1;
            return CAIRO_STATUS_WRITE_ERROR;
        }
        m->buf = nb;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, data, length);
    m->len += length;
    return CAIRO_STATUS_SUCCESS;
}

int plot_figure_png(plot_figure *f, double scale, unsigned char **png, size_t *len)
{
    *png = NULL;
    *len = 0;
    if (!f->cr || cairo_status(f->cr) != CAIRO_STATUS_SUCCESS)
        return -1;
    cairo_surface_flush(f->rec);
    int W = (int)ceil(f->w * scale), H = (int)ceil(f->h * scale);
    cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(img);
        return -1;
    }
    cairo_t *cr = cairo_create(img);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_scale(cr, scale, scale);
    cairo_set_source_surface(cr, f->rec, 0, 0);
    cairo_paint(cr);
    int bad = cairo_status(cr) != CAIRO_STATUS_SUCCESS;
    cairo_destroy(cr);
    membuf m = {NULL, 0, 0, 0};
    if (!bad && cairo_surface_write_to_png_stream(img, write_mem, &m) != CAIRO_STATUS_SUCCESS)
        bad = 1;
    cairo_surface_destroy(img);
    if (bad || m.failed) {
        free(m.buf);
        return -1;
    }
    *png = m.buf;
    *len = m.len;
    return 0;
}

void plot_figure_free(plot_figure *f)
{
    if (f->cr)
        cairo_destroy(f->cr);
    if (f->rec)
        cairo_surface_destroy(f->rec);
    memset(f, 0, sizeof *f);
}

/* ------------------------------------------------------------------ */
/* text                                                                 */

static void font(cairo_t *cr, double size, int style)
{
    cairo_select_font_face(cr, FONT,
                           (style & PLOT_ITALIC) ? CAIRO_FONT_SLANT_ITALIC : CAIRO_FONT_SLANT_NORMAL,
                           (style & PLOT_BOLD) ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

double plot_text_width(cairo_t *cr, const char *text, double size, int style)
{
    cairo_text_extents_t te;
    font(cr, size, style);
    cairo_text_extents(cr, text, &te);
    return te.x_advance;
}

double plot_text(cairo_t *cr, double x, double y, const char *text, double size, int halign,
                    int valign, double angle, int style, io_rgb col)
{
    cairo_text_extents_t te;
    font(cr, size, style);
    cairo_text_extents(cr, text, &te);
    double dx = halign == PLOT_CENTRE ? -te.x_advance / 2 : halign == PLOT_RIGHT ? -te.x_advance : 0;
    /* DejaVu Sans: cap height ~0.73 em, descent ~0.24 em */
    double dy = valign == PLOT_TOP ? 0.76 * size
              : valign == PLOT_MIDDLE ? 0.36 * size
              : valign == PLOT_BOTTOM ? -0.24 * size : 0.0;
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    cairo_move_to(cr, dx, dy);
    set_col(cr, col);
    cairo_show_text(cr, text);
    cairo_restore(cr);
    return te.x_advance;
}

void plot_label_box(cairo_t *cr, double x, double y, const char *text, double size, int style,
                       io_rgb col)
{
    double w = plot_text_width(cr, text, size, style);
    double pw = 3.0, ph = 2.0, h = size * 1.05;
    double x0 = x - w / 2 - pw, y0 = y - h / 2 - ph, bw = w + 2 * pw, bh = h + 2 * ph, r = 3.0;
    cairo_save(cr);
    cairo_new_sub_path(cr);
    cairo_arc(cr, x0 + bw - r, y0 + r, r, -M_PI / 2, 0);
    cairo_arc(cr, x0 + bw - r, y0 + bh - r, r, 0, M_PI / 2);
    cairo_arc(cr, x0 + r, y0 + bh - r, r, M_PI / 2, M_PI);
    cairo_arc(cr, x0 + r, y0 + r, r, M_PI, 3 * M_PI / 2);
    cairo_close_path(cr);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.92);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
    cairo_set_line_width(cr, 0.8);
    set_dash(cr, PLOT_SOLID, 0.8);
    cairo_stroke(cr);
    cairo_restore(cr);
    plot_text(cr, x, y, text, size, PLOT_CENTRE, PLOT_MIDDLE, 0, style, col);
}

void plot_title(cairo_t *cr, double w, double y, const char *title, const char *subtitle)
{
    plot_text(cr, w / 2, y, title, 15, PLOT_CENTRE, PLOT_TOP, 0, PLOT_BOLD, PLOT_BLACK);
    if (subtitle && *subtitle)
        plot_text(cr, w / 2, y + 21, subtitle, 11.5, PLOT_CENTRE, PLOT_TOP, 0, PLOT_NORMAL,
                     PLOT_GREY);
}

/* ------------------------------------------------------------------ */
/* axes                                                                 */

void plot_nice(double lo, double hi, int nticks, double *a, double *b, double *step)
{
    if (!isfinite(lo) || !isfinite(hi)) {
        lo = 0.0;
        hi = 1.0;
    }
    if (lo > hi) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    if (hi - lo <= 1e-12 * fmax(1.0, fabs(hi))) {
        double d = fabs(lo) > 0 ? 0.1 * fabs(lo) : 1.0;
        lo -= d;
        hi += d;
    }
    if (nticks < 2)
        nticks = 2;
    double raw = (hi - lo) / nticks;
    double mag = pow(10.0, floor(log10(raw)));
    double norm = raw / mag;
    double s = (norm < 1.5 ? 1.0 : norm < 3.0 ? 2.0 : norm < 7.0 ? 5.0 : 10.0) * mag;
    *step = s;
    *a = floor(lo / s + 1e-9) * s;
    *b = ceil(hi / s - 1e-9) * s;
}

void plot_axes_init(plot_axes *ax, cairo_t *cr, double x, double y, double w, double h,
                       double xmin, double xmax, double ymin, double ymax, int nice)
{
    memset(ax, 0, sizeof *ax);
    ax->cr = cr;
    ax->x = x;
    ax->y = y;
    ax->w = w;
    ax->h = h;
    double a, b, s;
    plot_nice(xmin, xmax, w > 500 ? 10 : 6, &a, &b, &s);
    ax->xstep = s;
    if (nice) {
        xmin = a;
        xmax = b;
    } else if (!(xmax > xmin)) {
        xmin = a;
        xmax = b;
    }
    plot_nice(ymin, ymax, h > 250 ? 6 : 4, &a, &b, &s);
    ax->ystep = s;
    if (nice) {
        ymin = a;
        ymax = b;
    } else if (!(ymax > ymin)) {
        ymin = a;
        ymax = b;
    }
    ax->xmin = xmin;
    ax->xmax = xmax;
    ax->ymin = ymin;
    ax->ymax = ymax;
}

double plot_px(const plot_axes *ax, double x)
{
    return ax->x + (x - ax->xmin) / (ax->xmax - ax->xmin) * ax->w;
}

double plot_py(const plot_axes *ax, double y)
{
    return ax->y + ax->h - (y - ax->ymin) / (ax->ymax - ax->ymin) * ax->h;
}

void plot_format_tick(char *buf, size_t len, double v, double step)
{
    if (fabs(v) < 1e-9 * fmax(step, 1e-300))
        v = 0.0;
    double big = fmax(fabs(v), step);
    if (big >= 1e6 || (step < 1e-4 && v != 0.0)) {
        snprintf(buf, len, "%.3g", v);
        return;
    }
    int dec = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 6)
        dec = 6;
    /* a step of 2.5 or 0.25 needs one more digit */
    double scaled = step * pow(10.0, dec);
    if (fabs(scaled - round(scaled)) > 1e-6)
        dec++;
    snprintf(buf, len, "%.*f", dec, v);
    if (!strcmp(buf, "-0") || !strncmp(buf, "-0.0", 4)) {
        int zero = 1;
        for (const char *p = buf + 1; *p; p++)
            if (*p != '0' && *p != '.')
                zero = 0;
        if (zero)
            memmove(buf, buf + 1, strlen(buf));
    }
}

void plot_axes_draw(const plot_axes *ax, const char *xlabel, const char *ylabel, int flags)
{
    cairo_t *cr = ax->cr;
    char buf[64];
    const double tick = 5.0, fs = 11.0;
    cairo_save(cr);
    set_dash(cr, PLOT_SOLID, 1);
    /* grid */
    cairo_set_line_width(cr, 0.8);
    set_col(cr, PLOT_LIGHT);
    if ((flags & PLOT_XGRID) && ax->xstep > 0)
        for (double t = ceil(ax->xmin / ax->xstep - 1e-9) * ax->xstep; t <= ax->xmax + 1e-9 * ax->xstep;
             t += ax->xstep) {
            cairo_move_to(cr, plot_px(ax, t), ax->y);
            cairo_line_to(cr, plot_px(ax, t), ax->y + ax->h);
        }
    if ((flags & PLOT_YGRID) && ax->ystep > 0)
        for (double t = ceil(ax->ymin / ax->ystep - 1e-9) * ax->ystep; t <= ax->ymax + 1e-9 * ax->ystep;
             t += ax->ystep) {
            cairo_move_to(cr, ax->x, plot_py(ax, t));
            cairo_line_to(cr, ax->x + ax->w, plot_py(ax, t));
        }
    cairo_stroke(cr);
    /* zero lines */
    cairo_set_line_width(cr, 1.0);
    set_col(cr, PLOT_GREY);
    if ((flags & PLOT_ZERO_X) && ax->xmin < 0 && ax->xmax > 0) {
        cairo_move_to(cr, plot_px(ax, 0), ax->y);
        cairo_line_to(cr, plot_px(ax, 0), ax->y + ax->h);
    }
    if ((flags & PLOT_ZERO_Y) && ax->ymin < 0 && ax->ymax > 0) {
        cairo_move_to(cr, ax->x, plot_py(ax, 0));
        cairo_line_to(cr, ax->x + ax->w, plot_py(ax, 0));
    }
    cairo_stroke(cr);
    /* frame */
    set_col(cr, PLOT_BLACK);
    cairo_set_line_width(cr, 1.0);
    cairo_rectangle(cr, ax->x, ax->y, ax->w, ax->h);
    cairo_stroke(cr);
    /* ticks and labels */
    double ywidth = 0.0;
    if ((flags & PLOT_XTICKS) && ax->xstep > 0) {
        for (double t = ceil(ax->xmin / ax->xstep - 1e-9) * ax->xstep; t <= ax->xmax + 1e-9 * ax->xstep;
             t += ax->xstep) {
            double px = plot_px(ax, t);
            cairo_move_to(cr, px, ax->y + ax->h);
            cairo_line_to(cr, px, ax->y + ax->h + tick);
            cairo_stroke(cr);
            plot_format_tick(buf, sizeof buf, t, ax->xstep);
            plot_text(cr, px, ax->y + ax->h + tick + 3, buf, fs, PLOT_CENTRE, PLOT_TOP, 0,
                         PLOT_NORMAL, PLOT_BLACK);
        }
    }
    if ((flags & PLOT_YTICKS) && ax->ystep > 0) {
        for (double t = ceil(ax->ymin / ax->ystep - 1e-9) * ax->ystep; t <= ax->ymax + 1e-9 * ax->ystep;
             t += ax->ystep) {
            double py = plot_py(ax, t);
            cairo_move_to(cr, ax->x, py);
            cairo_line_to(cr, ax->x - tick, py);
            cairo_stroke(cr);
            plot_format_tick(buf, sizeof buf, t, ax->ystep);
            double w = plot_text(cr, ax->x - tick - 3, py, buf, fs, PLOT_RIGHT, PLOT_MIDDLE, 0,
                                    PLOT_NORMAL, PLOT_BLACK);
            if (w > ywidth)
                ywidth = w;
        }
    }
    if (xlabel && *xlabel)
        plot_text(cr, ax->x + ax->w / 2, ax->y + ax->h + ((flags & PLOT_XTICKS) ? 26 : 8), xlabel,
                     12, PLOT_CENTRE, PLOT_TOP, 0, PLOT_NORMAL, PLOT_BLACK);
    if (ylabel && *ylabel)
        plot_text(cr, ax->x - tick - ywidth - 10, ax->y + ax->h / 2, ylabel, 12, PLOT_CENTRE,
                     PLOT_BOTTOM, -M_PI / 2, PLOT_NORMAL, PLOT_BLACK);
    cairo_restore(cr);
}

/* ------------------------------------------------------------------ */
/* marks                                                                */

static void clip(const plot_axes *ax)
{
    cairo_save(ax->cr);
    cairo_rectangle(ax->cr, ax->x, ax->y, ax->w, ax->h);
    cairo_clip(ax->cr);
}

void plot_line(const plot_axes *ax, const double *x, double x0, double dx, const double *y,
                  int n, int stride, io_rgb col, double width, int dash)
{
    cairo_t *cr = ax->cr;
    clip(ax);
    set_col(cr, col);
    cairo_set_line_width(cr, width);
    set_dash(cr, dash, width);
    int pen = 0;
    for (int i = 0; i < n; i++) {
        double xi = x ? x[i] : x0 + i * dx, yi = y[(size_t)i * stride];
        if (!isfinite(xi) || !isfinite(yi)) {
            pen = 0;
            continue;
        }
        if (pen)
            cairo_line_to(cr, plot_px(ax, xi), plot_py(ax, yi));
        else
            cairo_move_to(cr, plot_px(ax, xi), plot_py(ax, yi));
        pen = 1;
    }
    cairo_stroke(cr);
    cairo_restore(cr);
}

static void disc(cairo_t *cr, double px, double py, double r, io_rgb col, int filled)
{
    cairo_new_sub_path(cr);
    cairo_arc(cr, px, py, r, 0, 2 * M_PI);
    if (filled) {
        set_col(cr, col);
        cairo_fill(cr);
    } else {
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_fill_preserve(cr);
        set_col(cr, col);
        cairo_set_line_width(cr, 1.5);
        set_dash(cr, PLOT_SOLID, 1.5);
        cairo_stroke(cr);
    }
}

void plot_point(const plot_axes *ax, double x, double y, double radius, io_rgb col, int filled)
{
    if (!isfinite(x) || !isfinite(y))
        return;
    clip(ax);
    disc(ax->cr, plot_px(ax, x), plot_py(ax, y), radius, col, filled);
    cairo_restore(ax->cr);
}

void plot_vbar(const plot_axes *ax, double x, double width, double base, double value,
                  io_rgb col)
{
    if (!isfinite(value))
        return;
    cairo_t *cr = ax->cr;
    clip(ax);
    double x0 = plot_px(ax, x - width / 2), x1 = plot_px(ax, x + width / 2);
    double y0 = plot_py(ax, base), y1 = plot_py(ax, value);
    cairo_rectangle(cr, x0, fmin(y0, y1), x1 - x0, fabs(y1 - y0));
    set_col(cr, col);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    cairo_set_line_width(cr, 0.8);
    set_dash(cr, PLOT_SOLID, 0.8);
    cairo_stroke(cr);
    cairo_restore(cr);
}

void plot_herror(const plot_axes *ax, double y, double xlo, double xhi, double cap,
                    io_rgb col, double width)
{
    if (!isfinite(xlo) || !isfinite(xhi) || !isfinite(y))
        return;
    cairo_t *cr = ax->cr;
    clip(ax);
    double py = plot_py(ax, y), a = plot_px(ax, xlo), b = plot_px(ax, xhi);
    set_col(cr, col);
    cairo_set_line_width(cr, width);
    set_dash(cr, PLOT_SOLID, width);
    cairo_move_to(cr, a, py);
    cairo_line_to(cr, b, py);
    cairo_move_to(cr, a, py - cap / 2);
    cairo_line_to(cr, a, py + cap / 2);
    cairo_move_to(cr, b, py - cap / 2);
    cairo_line_to(cr, b, py + cap / 2);
    cairo_stroke(cr);
    cairo_restore(cr);
}

void plot_hline(const plot_axes *ax, double y, io_rgb col, int dash, const char *label)
{
    if (!(y >= ax->ymin && y <= ax->ymax))
        return;
    cairo_t *cr = ax->cr;
    double py = plot_py(ax, y);
    cairo_save(cr);
    set_col(cr, col);
    cairo_set_line_width(cr, 1.2);
    set_dash(cr, dash, 1.2);
    cairo_move_to(cr, ax->x, py);
    cairo_line_to(cr, ax->x + ax->w, py);
    cairo_stroke(cr);
    cairo_restore(cr);
    if (label && *label) {
        double w = plot_text_width(cr, label, 10, PLOT_ITALIC);
        plot_label_box(cr, ax->x + 8 + w / 2, py - 10, label, 10, PLOT_ITALIC, col);
    }
}

void plot_vline(const plot_axes *ax, double x, io_rgb col, int dash, const char *label)
{
    if (!(x >= ax->xmin && x <= ax->xmax))
        return;
    cairo_t *cr = ax->cr;
    double px = plot_px(ax, x);
    cairo_save(cr);
    set_col(cr, col);
    cairo_set_line_width(cr, 1.2);
    set_dash(cr, dash, 1.2);
    cairo_move_to(cr, px, ax->y);
    cairo_line_to(cr, px, ax->y + ax->h);
    cairo_stroke(cr);
    cairo_restore(cr);
    if (label && *label)
        plot_text(cr, px + 4, ax->y + 4, label, 10, PLOT_LEFT, PLOT_TOP, 0, PLOT_ITALIC, col);
}

/* ------------------------------------------------------------------ */
/* legend                                                               */

#define KEY_W 26.0
#define ROW_H 19.0
#define PAD 7.0
#define LEG_FS 11.0

static void entry_widths(cairo_t *cr, const plot_legend_entry *e, int n, int per_row,
                         double *colw)
{
    for (int c = 0; c < per_row; c++)
        colw[c] = 0.0;
    for (int i = 0; i < n; i++) {
        double w = KEY_W + 6 + plot_text_width(cr, e[i].label, LEG_FS, PLOT_NORMAL);
        if (w > colw[i % per_row])
            colw[i % per_row] = w;
    }
}

void plot_legend_size(cairo_t *cr, const plot_legend_entry *e, int n, int per_row, double *w,
                         double *h)
{
    if (per_row < 1)
        per_row = 1;
    if (per_row > n)
        per_row = n > 0 ? n : 1;
    double colw[64];
    if (per_row > 64)
        per_row = 64;
    entry_widths(cr, e, n, per_row, colw);
    double tw = 0.0;
    for (int c = 0; c < per_row; c++)
        tw += colw[c] + (c ? 14 : 0);
    int rows = (n + per_row - 1) / per_row;
    *w = tw + 2 * PAD;
    *h = rows * ROW_H + 2 * PAD - 4;
}

static void draw_key(cairo_t *cr, double x, double y, const plot_legend_entry *e)
{
    cairo_save(cr);
    set_col(cr, e->col);
    double cy = y;
    switch (e->key) {
    case PLOT_KEY_LINE:
    case PLOT_KEY_DOTTED:
    case PLOT_KEY_DASHED: {
        double lw = e->key == PLOT_KEY_DOTTED ? 2.2 : 2.0;
        cairo_set_line_width(cr, lw);
        set_dash(cr, e->key == PLOT_KEY_LINE ? PLOT_SOLID
                    : e->key == PLOT_KEY_DOTTED ? PLOT_DOTTED : PLOT_DASHED, lw);
        cairo_move_to(cr, x + 1, cy);
        cairo_line_to(cr, x + KEY_W - 1, cy);
        cairo_stroke(cr);
        break;
    }
    case PLOT_KEY_POINT:
    case PLOT_KEY_HOLLOW:
        disc(cr, x + KEY_W / 2, cy, 4.5, e->col, e->key == PLOT_KEY_POINT);
        break;
    case PLOT_KEY_BOX:
        cairo_rectangle(cr, x + 4, cy - 6, KEY_W - 8, 12);
        cairo_fill_preserve(cr);
        cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
        cairo_set_line_width(cr, 0.8);
        cairo_stroke(cr);
        break;
    case PLOT_KEY_ERRORBAR:
        cairo_set_line_width(cr, 1.6);
        cairo_move_to(cr, x + 2, cy);
        cairo_line_to(cr, x + KEY_W - 2, cy);
        cairo_move_to(cr, x + 2, cy - 4);
        cairo_line_to(cr, x + 2, cy + 4);
        cairo_move_to(cr, x + KEY_W - 2, cy - 4);
        cairo_line_to(cr, x + KEY_W - 2, cy + 4);
        cairo_stroke(cr);
        break;
    case PLOT_KEY_ARROW:
    default:
        plot_arrow(cr, x + 1, cy, x + KEY_W - 1, cy, 0, 2.0, 8.0, e->col, PLOT_SOLID, NULL, NULL);
        break;
    }
    cairo_restore(cr);
}

double plot_legend(cairo_t *cr, double x, double y, const plot_legend_entry *e, int n,
                      int per_row)
{
    if (n <= 0)
        return 0.0;
    if (per_row < 1)
        per_row = 1;
    if (per_row > n)
        per_row = n;
    if (per_row > 64)
        per_row = 64;
    double w, h, colw[64];
    plot_legend_size(cr, e, n, per_row, &w, &h);
    entry_widths(cr, e, n, per_row, colw);
    cairo_save(cr);
    cairo_rectangle(cr, x, y, w, h);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_set_line_width(cr, 0.8);
    set_dash(cr, PLOT_SOLID, 0.8);
    cairo_stroke(cr);
    cairo_restore(cr);
    for (int i = 0; i < n; i++) {
        int r = i / per_row, c = i % per_row;
        double cx = x + PAD;
        for (int k = 0; k < c; k++)
            cx += colw[k] + 14;
        double cy = y + PAD + r * ROW_H + ROW_H / 2 - 2;
        draw_key(cr, cx, cy, &e[i]);
        plot_text(cr, cx + KEY_W + 6, cy, e[i].label, LEG_FS, PLOT_LEFT, PLOT_MIDDLE, 0,
                     PLOT_NORMAL, PLOT_BLACK);
    }
    return h;
}

/* ------------------------------------------------------------------ */
/* arrows                                                               */

/* quadratic Bezier control point for a mid-point offset of `bend` */
static void control(double x0, double y0, double x1, double y1, double bend, double *cx, double *cy)
{
    double dx = x1 - x0, dy = y1 - y0, L = hypot(dx, dy);
    double nx = L > 0 ? -dy / L : 0, ny = L > 0 ? dx / L : 0;
    /* "left of travel" in screen coordinates (y down) */
    *cx = (x0 + x1) / 2 + 2 * bend * nx;
    *cy = (y0 + y1) / 2 + 2 * bend * ny;
}

void plot_arrow_at(double x0, double y0, double x1, double y1, double bend, double t, double *x,
                      double *y)
{
    double cx, cy;
    control(x0, y0, x1, y1, bend, &cx, &cy);
    double u = 1 - t;
    *x = u * u * x0 + 2 * u * t * cx + t * t * x1;
    *y = u * u * y0 + 2 * u * t * cy + t * t * y1;
}

void plot_arrow(cairo_t *cr, double x0, double y0, double x1, double y1, double bend,
                   double width, double head, io_rgb col, int dash, double *mx, double *my)
{
    double cx, cy;
    control(x0, y0, x1, y1, bend, &cx, &cy);
    /* direction at the tip */
    double tx = x1 - cx, ty = y1 - cy, tl = hypot(tx, ty);
    if (tl <= 0) {
        tx = x1 - x0;
        ty = y1 - y0;
        tl = hypot(tx, ty);
    }
    if (tl <= 0)
        return;
    tx /= tl;
    ty /= tl;
    /* stop the shaft inside the head */
    double L = hypot(x1 - x0, y1 - y0) + fabs(bend);
    double tend = L > 0 ? 1.0 - 0.75 * head / L : 1.0;
    if (tend < 0.5)
        tend = 0.5;
    double ex, ey;
    plot_arrow_at(x0, y0, x1, y1, bend, tend, &ex, &ey);
    /* the sub-curve [0, tend] of a quadratic Bezier has control point
       P0 + tend (C - P0) */
    double qx = x0 + tend * (cx - x0), qy = y0 + tend * (cy - y0);
    cairo_save(cr);
    set_col(cr, col);
    cairo_set_line_width(cr, width);
    set_dash(cr, dash, width);
    cairo_move_to(cr, x0, y0);
    cairo_curve_to(cr, x0 + 2.0 / 3.0 * (qx - x0), y0 + 2.0 / 3.0 * (qy - y0),
                   ex + 2.0 / 3.0 * (qx - ex), ey + 2.0 / 3.0 * (qy - ey), ex, ey);
    cairo_stroke(cr);
    set_dash(cr, PLOT_SOLID, width);
    double hw = head * 0.45;
    cairo_move_to(cr, x1, y1);
    cairo_line_to(cr, x1 - head * tx - hw * ty, y1 - head * ty + hw * tx);
    cairo_line_to(cr, x1 - head * tx * 0.8, y1 - head * ty * 0.8);
    cairo_line_to(cr, x1 - head * tx + hw * ty, y1 - head * ty - hw * tx);
    cairo_close_path(cr);
    cairo_fill(cr);
    cairo_restore(cr);
    if (mx && my)
        plot_arrow_at(x0, y0, x1, y1, bend, 0.5, mx, my);
}

void plot_vinterval(const plot_axes *ax, double x, double lo, double hi, io_rgb col,
                    double line_width, double cap)
{
    if (!isfinite(lo) || !isfinite(hi))
        return;
    cairo_t *cr = ax->cr;
    double px = plot_px(ax, x), y0 = plot_py(ax, lo), y1 = plot_py(ax, hi);
    cairo_save(cr);
    cairo_rectangle(cr, ax->x, ax->y, ax->w, ax->h);
    cairo_clip(cr);
    cairo_set_source_rgb(cr, col.r, col.g, col.b);
    cairo_set_line_width(cr, line_width);
    cairo_move_to(cr, px, y0);
    cairo_line_to(cr, px, y1);
    cairo_move_to(cr, px - cap, y0);
    cairo_line_to(cr, px + cap, y0);
    cairo_move_to(cr, px - cap, y1);
    cairo_line_to(cr, px + cap, y1);
    cairo_stroke(cr);
    cairo_restore(cr);
}
