/* io_plot.h — a tiny plotting layer on top of cairo, for `dcm report`.
 *
 * Contract
 * - A figure is drawn once into a cairo recording surface (vector
 *   commands, in "points" of 1/96 inch at scale 1) and then rendered to
 *   PNG bytes at any scale: io_plot_figure_begin() gives the cairo_t to
 *   draw on (white background already painted), io_plot_figure_png()
 *   renders it, io_plot_figure_free() releases it.
 * - Axes map data coordinates to a rectangle of the figure:
 *   io_plot_axes_init() chooses "nice" tick steps, io_plot_axes_draw()
 *   draws the frame, grid, ticks, tick labels and axis labels. Lines,
 *   points, bars and error bars are drawn in data coordinates and clipped
 *   to the plot rectangle; text, legends and titles in figure coordinates.
 * - Everything is caller-owned and reentrant: no global state (cairo's own
 *   font caches aside). Drawing never fails loudly: errors are sticky in
 *   the cairo_t and reported once by io_plot_figure_png().
 */
#ifndef IO_PLOT_H
#define IO_PLOT_H

#include <cairo.h>
#include <stddef.h>

typedef struct {
    double r, g, b;
} io_rgb;

/* Colour-blind-safe palette (Okabe & Ito), cycled by index. */
io_rgb io_plot_palette(int i);
io_rgb io_plot_rgb(double r, double g, double b);
#define IO_PLOT_BLACK ((io_rgb){0.0, 0.0, 0.0})
#define IO_PLOT_GREY ((io_rgb){0.45, 0.45, 0.45})
#define IO_PLOT_LIGHT ((io_rgb){0.88, 0.88, 0.88})

typedef struct {
    cairo_surface_t *rec;  /* recording surface */
    cairo_t *cr;
    double w, h;           /* size at scale 1 */
} io_plot_figure;

/* Returns the cairo_t to draw on, or NULL when out of memory. */
cairo_t *io_plot_figure_begin(io_plot_figure *f, double w, double h);
/* Render at `scale` (2 for high-resolution screens) into malloc'ed PNG
 * bytes. Returns 0, or -1 when cairo reports an error (out of memory, or
 * a drawing error recorded earlier). */
int io_plot_figure_png(io_plot_figure *f, double scale, unsigned char **png, size_t *len);
void io_plot_figure_free(io_plot_figure *f);

/* ---- text ---- */
enum { IO_PLOT_LEFT = 0, IO_PLOT_CENTRE = 1, IO_PLOT_RIGHT = 2 };      /* horizontal anchor */
enum { IO_PLOT_TOP = 0, IO_PLOT_MIDDLE = 1, IO_PLOT_BASELINE = 2, IO_PLOT_BOTTOM = 3 };
enum { IO_PLOT_NORMAL = 0, IO_PLOT_BOLD = 1, IO_PLOT_ITALIC = 2 };

/* Draw text anchored at (x, y); angle in radians (counter-clockwise, e.g.
 * -pi/2 for a vertical y-axis label reading upwards). Returns its width. */
double io_plot_text(cairo_t *cr, double x, double y, const char *text, double size, int halign,
                    int valign, double angle, int style, io_rgb col);
double io_plot_text_width(cairo_t *cr, const char *text, double size, int style);
/* Text on a white rounded box (labels on lines). */
void io_plot_label_box(cairo_t *cr, double x, double y, const char *text, double size, int style,
                       io_rgb col);
void io_plot_title(cairo_t *cr, double w, double y, const char *title, const char *subtitle);

/* ---- axes ---- */
typedef struct {
    cairo_t *cr;
    double x, y, w, h;              /* plot rectangle (figure coordinates) */
    double xmin, xmax, ymin, ymax;  /* data limits */
    double xstep, ystep;            /* tick steps (0: no ticks on that axis) */
} io_plot_axes;

/* Nice limits and tick step covering [lo, hi] with about `nticks` ticks
 * (lo == hi is widened; non-finite values give [0, 1]). */
void io_plot_nice(double lo, double hi, int nticks, double *a, double *b, double *step);
/* Limits are widened to nice tick values when `nice` is set. */
void io_plot_axes_init(io_plot_axes *ax, cairo_t *cr, double x, double y, double w, double h,
                       double xmin, double xmax, double ymin, double ymax, int nice);
double io_plot_px(const io_plot_axes *ax, double x);
double io_plot_py(const io_plot_axes *ax, double y);

enum {
    IO_PLOT_XTICKS = 1,   /* numeric ticks and labels on x */
    IO_PLOT_YTICKS = 2,   /* numeric ticks and labels on y */
    IO_PLOT_XGRID = 4,
    IO_PLOT_YGRID = 8,
    IO_PLOT_ZERO_X = 16,  /* a line at x = 0 */
    IO_PLOT_ZERO_Y = 32   /* a line at y = 0 */
};
/* Frame, grid, ticks and labels (NULL labels are left out). */
void io_plot_axes_draw(const io_plot_axes *ax, const char *xlabel, const char *ylabel, int flags);

/* ---- marks (data coordinates, clipped to the plot rectangle) ---- */
enum { IO_PLOT_SOLID = 0, IO_PLOT_DOTTED = 1, IO_PLOT_DASHED = 2 };

/* y[i*stride] against x[i] (x NULL: x = x0 + i*dx). Non-finite points
 * break the line. */
void io_plot_line(const io_plot_axes *ax, const double *x, double x0, double dx, const double *y,
                  int n, int stride, io_rgb col, double width, int dash);
void io_plot_point(const io_plot_axes *ax, double x, double y, double radius, io_rgb col, int filled);
/* A vertical bar from y = base to y = value at x, `width` in data units. */
void io_plot_vbar(const io_plot_axes *ax, double x, double width, double base, double value,
                  io_rgb col);
/* Horizontal error bar from xlo to xhi at y, with caps `cap` px high. */
void io_plot_herror(const io_plot_axes *ax, double y, double xlo, double xhi, double cap,
                    io_rgb col, double width);
/* A horizontal or vertical reference line across the plot, with an
 * optional label at its end. */
void io_plot_hline(const io_plot_axes *ax, double y, io_rgb col, int dash, const char *label);
void io_plot_vline(const io_plot_axes *ax, double x, io_rgb col, int dash, const char *label);

/* ---- legend ---- */
enum {
    IO_PLOT_KEY_LINE = 0, IO_PLOT_KEY_DOTTED, IO_PLOT_KEY_DASHED, IO_PLOT_KEY_POINT,
    IO_PLOT_KEY_HOLLOW, IO_PLOT_KEY_BOX, IO_PLOT_KEY_ERRORBAR, IO_PLOT_KEY_ARROW
};
typedef struct {
    const char *label;
    io_rgb col;
    int key;
} io_plot_legend_entry;

/* A framed legend with its top-left corner at (x, y); entries laid out in
 * rows of at most `per_row` (1: a vertical list). Returns its height. */
double io_plot_legend(cairo_t *cr, double x, double y, const io_plot_legend_entry *e, int n,
                      int per_row);
/* Size of that legend without drawing it. */
void io_plot_legend_size(cairo_t *cr, const io_plot_legend_entry *e, int n, int per_row, double *w,
                         double *h);

/* An arrow from (x0, y0) to (x1, y1) bent by `bend` px (perpendicular
 * offset of the mid-point, positive to the left of the direction of
 * travel), with its head at the end. The mid-point of the curve is
 * returned in (mx, my) when not NULL. */
void io_plot_arrow(cairo_t *cr, double x0, double y0, double x1, double y1, double bend,
                   double width, double head, io_rgb col, int dash, double *mx, double *my);
/* The point at parameter t in [0, 1] along the same curve. */
void io_plot_arrow_at(double x0, double y0, double x1, double y1, double bend, double t, double *x,
                      double *y);

/* Format a number for a tick label with the precision that `step` needs. */
void io_plot_format_tick(char *buf, size_t len, double v, double step);

#endif
