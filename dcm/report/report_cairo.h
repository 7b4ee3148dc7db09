/* report_cairo.h — cairo and fontconfig, loaded when the first figure is drawn.
 *
 * Why: cairo brings fontconfig, freetype, pixman, libpng and the X11
 * client libraries: 19 of the 33 shared libraries `dcm` would map at
 * start-up. Mapping and relocating them, and their constructors, cost
 * ~5 ms per process (measured against a program that links nothing on
 * this machine, where a page fault costs ~11 us), while only `dcm report`
 * draws. A batch of thousands of 0.1 s estimates paid it for nothing. So
 * the report calls cairo through this table, filled by dlopen on first
 * use (as io_matio.h does for matio).
 *
 * Contract
 * - report_cairo_need(err) loads both libraries once per process
 *   (pthread_once; afterwards the table is only read, so threads may share
 *   it): DCM_OK, or DCM_ERR_SYSTEM with a message naming the library and
 *   dlerror()'s reason. The report's entry points (report_write,
 *   report_rdcm_write, plot_figure_begin) call it before drawing.
 * - report_cairo() is the table (loading it if need be); its functions are
 *   valid only after report_cairo_need returned DCM_OK.
 * - report_cairo_loaded() says whether the libraries were loaded, so that
 *   a command that never drew need not load them to release their caches.
 * - The report's sources include this header (through plot.h) after
 *   <cairo.h>: every cairo_* function they use is then a macro for the
 *   table's entry, so the drawing code reads as plain cairo. A cairo
 *   function newly used in dcm/report or dcm/cli needs a line in
 *   REPORT_CAIRO_FUNCS and a #define below (the link fails otherwise:
 *   bin/dcm does not link cairo).
 */
#ifndef REPORT_CAIRO_H
#define REPORT_CAIRO_H

#include <cairo.h>

#include "dcm/core/dcm_core.h"

/* the cairo functions the report and the command use, without "cairo_" */
#define REPORT_CAIRO_FUNCS(X) \
    X(arc) \
    X(clip) \
    X(close_path) \
    X(create) \
    X(curve_to) \
    X(debug_reset_static_data) \
    X(destroy) \
    X(fill) \
    X(fill_preserve) \
    X(image_surface_create) \
    X(line_to) \
    X(move_to) \
    X(new_path) \
    X(new_sub_path) \
    X(paint) \
    X(recording_surface_create) \
    X(rectangle) \
    X(restore) \
    X(rotate) \
    X(save) \
    X(scale) \
    X(select_font_face) \
    X(set_dash) \
    X(set_font_size) \
    X(set_line_cap) \
    X(set_line_join) \
    X(set_line_width) \
    X(set_source_rgb) \
    X(set_source_rgba) \
    X(set_source_surface) \
    X(show_text) \
    X(status) \
    X(stroke) \
    X(surface_destroy) \
    X(surface_flush) \
    X(surface_status) \
    X(surface_write_to_png_stream) \
    X(text_extents) \
    X(translate)

typedef struct {
#define REPORT_CAIRO_FIELD(name) __typeof__(cairo_##name) *name;
    REPORT_CAIRO_FUNCS(REPORT_CAIRO_FIELD)
#undef REPORT_CAIRO_FIELD
    void (*FcFini)(void);   /* fontconfig's: its caches, at the end of a report */
} report_cairo_api;

int report_cairo_need(dcm_error *err);
const report_cairo_api *report_cairo(void);
int report_cairo_loaded(void);

#ifndef REPORT_CAIRO_NO_MACROS
#define cairo_arc (report_cairo()->arc)
#define cairo_clip (report_cairo()->clip)
#define cairo_close_path (report_cairo()->close_path)
#define cairo_create (report_cairo()->create)
#define cairo_curve_to (report_cairo()->curve_to)
#define cairo_debug_reset_static_data (report_cairo()->debug_reset_static_data)
#define cairo_destroy (report_cairo()->destroy)
#define cairo_fill (report_cairo()->fill)
#define cairo_fill_preserve (report_cairo()->fill_preserve)
#define cairo_image_surface_create (report_cairo()->image_surface_create)
#define cairo_line_to (report_cairo()->line_to)
#define cairo_move_to (report_cairo()->move_to)
#define cairo_new_path (report_cairo()->new_path)
#define cairo_new_sub_path (report_cairo()->new_sub_path)
#define cairo_paint (report_cairo()->paint)
#define cairo_recording_surface_create (report_cairo()->recording_surface_create)
#define cairo_rectangle (report_cairo()->rectangle)
#define cairo_restore (report_cairo()->restore)
#define cairo_rotate (report_cairo()->rotate)
#define cairo_save (report_cairo()->save)
#define cairo_scale (report_cairo()->scale)
#define cairo_select_font_face (report_cairo()->select_font_face)
#define cairo_set_dash (report_cairo()->set_dash)
#define cairo_set_font_size (report_cairo()->set_font_size)
#define cairo_set_line_cap (report_cairo()->set_line_cap)
#define cairo_set_line_join (report_cairo()->set_line_join)
#define cairo_set_line_width (report_cairo()->set_line_width)
#define cairo_set_source_rgb (report_cairo()->set_source_rgb)
#define cairo_set_source_rgba (report_cairo()->set_source_rgba)
#define cairo_set_source_surface (report_cairo()->set_source_surface)
#define cairo_show_text (report_cairo()->show_text)
#define cairo_status (report_cairo()->status)
#define cairo_stroke (report_cairo()->stroke)
#define cairo_surface_destroy (report_cairo()->surface_destroy)
#define cairo_surface_flush (report_cairo()->surface_flush)
#define cairo_surface_status (report_cairo()->surface_status)
#define cairo_surface_write_to_png_stream (report_cairo()->surface_write_to_png_stream)
#define cairo_text_extents (report_cairo()->text_extents)
#define cairo_translate (report_cairo()->translate)
#endif

#endif
