/* plot.h — a tiny plotting layer on top of cairo, for `dcm report`.
 *
 * Contract
 * - A figure is drawn once into a cairo recording surface (vector
 *   commands, in "points" of 1/96 inch at scale 1) and then rendered to
 *   PNG bytes at any scale: plot_figure_begin() gives the cairo_t to
 *   draw on (white background already painted), plot_figure_png()
 *   renders it, plot_figure_free() releases it.
 * - Axes map data coordinates to a rectangle of the figure:
 *   plot_axes_init() chooses "nice" tick steps, plot_axes_draw()
 *   draws the frame, grid, ticks, tick labels and axis labels. Lines,
 *   points, bars and error bars are drawn in data coordinates and clipped
 *   to the plot rectangle; text, legends and titles in figure coordinates.
 * - Everything is caller-owned and reentrant: no global state (cairo's own
 *   font caches aside). Drawing never fails loudly: errors are sticky in
 *   the cairo_t and reported once by plot_figure_png().
 */
#ifndef PLOT_H
#define PLOT_H

#include <cairo.h>
#include <stddef.h>

#include "dcm/report/report_cairo.h"

typedef struct {
    double r, g, b;
} io_rgb;

/* Colour-blind-safe palette (Okabe & Ito), cycled by index. */
io_rgb plot_palette(int i);
io_rgb plot_rgb(double r, double g, double b);
#define PLOT_BLACK ((io_rgb){0.0, 0.0, 0.0})
#define PLOT_GREY ((io_rgb){0.45, 0.45, 0.45})
#define PLOT_LIGHT ((io_rgb){0.88, 0.88, 0.88})

typedef struct {
    cairo_surface_t *rec;  /* recording surface */
    cairo_t *cr;
    double w, h;           /* size at scale 1 */
} plot_figure;

/* Returns the cairo_t to draw on, or NULL when out of memory. */
cairo_t *plot_figure_begin(plot_figure *f, double w, double h);
/* Render at `scale` (2 for high-resolution screens) into malloc'ed PNG
 * bytes. Returns 0, or -1 when cairo reports an error (out of memory, or
 * a drawing error recorded earlier). */
int plot_figure_png(plot_figure *f, double scale, unsigned char **png, size_t *len);
void plot_figure_free(plot_figure *f);

/* ---- text ---- */
enum { PLOT_LEFT = 0, PLOT_CENTRE = 1, PLOT_RIGHT = 2 };      /* horizontal anchor */
enum { PLOT_TOP = 0, PLOT_MIDDLE = 1, PLOT_BASELINE = 2, PLOT_BOTTOM = 3 };
enum { PLOT_NORMAL = 0, PLOT_BOLD = 1, PLOT_ITALIC = 2 };

/* Draw text anchored at (x, y); angle in radians (counter-clockwise, e.g.
 * -pi/2 for a vertical y-axis label reading upwards). Returns its width. */
double plot_text(cairo_t *cr, double x, double y, const char *text, double size, int halign,
                    int valign, double angle, int style, io_rgb col);
double plot_text_width(cairo_t *cr, const char *text, double size, int style);
/* Text on a white rounded box (labels on lines). */
void plot_label_box(cairo_t *cr, double x, double y, const char *text, double size, int style,
                       io_rgb col);
void plot_title(cairo_t *cr, double w, double y, const char *title, const char *subtitle);

/* ---- axes ---- */
typedef struct {
    cairo_t *cr;
    double x, y, w, h;              /* plot rectangle (figure coordinates) */
    double xmin, xmax, ymin, ymax;  /* data limits */
    double xstep, ystep;            /* tick steps (0: no ticks on that axis) */
} plot_axes;

/* Nice limits and tick step covering [lo, hi] with about `nticks` ticks
 * (lo == hi is widened; non-finite values give [0, 1]). */
void plot_nice(double lo, double hi, int nticks, double *a, double *b, double *step);
/* Limits are widened to nice tick values when `nice` is set. */
void plot_axes_init(plot_axes *ax, cairo_t *cr, double x, double y, double w, double h,
                       double xmin, double xmax, double ymin, double ymax, int nice);
double plot_px(const plot_axes *ax, double x);
double plot_py(const plot_axes *ax, double y);
/* A vertical interval lo..hi at data x, capped (cap: half-width in pixels),
 * clipped to the plot area; nothing when lo or hi is not finite. */
void plot_vinterval(const plot_axes *ax, double x, double lo, double hi, io_rgb col,
                    double line_width, double cap);

enum {
    PLOT_XTICKS = 1,   /* numeric ticks and labels on x */
    PLOT_YTICKS = 2,   /* numeric ticks and labels on y */
    PLOT_XGRID = 4,
    PLOT_YGRID = 8,
    PLOT_ZERO_X = 16,  /* a line at x = 0 */
    PLOT_ZERO_Y = 32   /* a line at y = 0 */
};
/* Frame, grid, ticks and labels (NULL labels are left out). */
void plot_axes_draw(const plot_axes *ax, const char *xlabel, const char *ylabel, int flags);

/* ---- marks (data coordinates, clipped to the plot rectangle) ---- */
enum { PLOT_SOLID = 0, PLOT_DOTTED = 1, PLOT_DASHED = 2 };

/* y[i*stride] against x[i] (x NULL: x = x0 + i*dx). Non-finite points
 * break the line. */
void plot_line(const plot_axes *ax, const double *x, double x0, double dx, const double *y,
                  int n, int stride, io_rgb col, double width, int dash);
void plot_point(const plot_axes *ax, double x, double y, double radius, io_rgb col, int filled);
/* A vertical bar from y = base to y = value at x, `width` in data units. */
void plot_vbar(const plot_axes *ax, double x, double width, double base, double value,
                  io_rgb col);
/* Horizontal error bar from xlo to xhi at y, with caps `cap` px high. */
void plot_herror(const plot_axes *ax, double y, double xlo, double xhi, double cap,
                    io_rgb col, double width);
/* A horizontal or vertical reference line across the plot, with an
 * optional label at its end. */
void plot_hline(const plot_axes *ax, double y, io_rgb col, int dash, const char *label);
void plot_vline(const plot_axes *ax, double x, io_rgb col, int dash, const char *label);

/* ---- legend ---- */
enum {
    PLOT_KEY_LINE = 0, PLOT_KEY_DOTTED, PLOT_KEY_DASHED, PLOT_KEY_POINT,
    PLOT_KEY_HOLLOW, PLOT_KEY_BOX, PLOT_KEY_ERRORBAR, PLOT_KEY_ARROW
};
typedef struct {
    const char *label;
    io_rgb col;
    int key;
} plot_legend_entry;

/* A framed legend with its top-left corner at (x, y); entries laid out in
 * rows of at most `per_row` (1: a vertical list). Returns its height. */
double plot_legend(cairo_t *cr, double x, double y, const plot_legend_entry *e, int n,
                      int per_row);
/* Size of that legend without drawing it. */
void plot_legend_size(cairo_t *cr, const plot_legend_entry *e, int n, int per_row, double *w,
                         double *h);

/* An arrow from (x0, y0) to (x1, y1) bent by `bend` px (perpendicular
 * offset of the mid-point, positive to the left of the direction of
 * travel), with its head at the end. The mid-point of the curve is
 * returned in (mx, my) when not NULL. */
void plot_arrow(cairo_t *cr, double x0, double y0, double x1, double y1, double bend,
                   double width, double head, io_rgb col, int dash, double *mx, double *my);
/* The point at parameter t in [0, 1] along the same curve. */
void plot_arrow_at(double x0, double y0, double x1, double y1, double bend, double t, double *x,
                      double *y);

/* Format a number for a tick label with the precision that `step` needs. */
void plot_format_tick(char *buf, size_t len, double v, double step);

#endif
