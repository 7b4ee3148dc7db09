/* report_cairo.c — cairo and fontconfig through dlopen on first use (see
 * report_cairo.h). */
#define REPORT_CAIRO_NO_MACROS
#include "dcm/report/report_cairo.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* the sonames of the ABI the headers describe (stable since cairo 1.0 and
   fontconfig 2.0) */
#define CAIRO_SONAME "libcairo.so.2"
#define FONTCONFIG_SONAME "libfontconfig.so.1"

/* Written once under pthread_once, read-only afterwards (as io_matio.c) */
static pthread_once_t cairo_once = PTHREAD_ONCE_INIT;
static report_cairo_api cairo_api;
static atomic_int cairo_ok;   /* also read outside the once (report_cairo_loaded) */
static char cairo_why[512];

static void *need_sym(void *h, const char *lib, const char *name, int *ok)
{
    void *p = dlsym(h, name);
    if (!p && *ok) {
        snprintf(cairo_why, sizeof cairo_why, "%s has no %s", lib, name);
        *ok = 0;
    }
    return p;
}

static void cairo_load(void)
{
    void *hc = dlopen(CAIRO_SONAME, RTLD_NOW | RTLD_LOCAL);
    void *hf = hc ? dlopen(FONTCONFIG_SONAME, RTLD_NOW | RTLD_LOCAL) : NULL;
    if (!hc || !hf) {
        const char *e = dlerror();
        snprintf(cairo_why, sizeof cairo_why, "%s", e ? e : "dlopen failed");
        return;
    }
    report_cairo_api api;
    int ok = 1;
    void *p;
    /* object to function pointer by memcpy, as POSIX allows */
#define REPORT_CAIRO_LOAD(name)                                                                    \
    p = need_sym(hc, CAIRO_SONAME, "cairo_" #name, &ok);                                           \
    memcpy(&api.name, &p, sizeof p);
    REPORT_CAIRO_FUNCS(REPORT_CAIRO_LOAD)
#undef REPORT_CAIRO_LOAD
    p = need_sym(hf, FONTCONFIG_SONAME, "FcFini", &ok);
    memcpy(&api.FcFini, &p, sizeof p);
    if (!ok)
        return;
    cairo_api = api;
    cairo_ok = 1;   /* the handles stay open for the life of the process */
}

int report_cairo_need(dcm_error *err)
{
    pthread_once(&cairo_once, cairo_load);
    if (cairo_ok)
        return DCM_OK;
    return dcm_error_set(err, DCM_ERR_SYSTEM,
                         "drawing the report's figures needs the cairo and fontconfig libraries "
                         "(%s, %s), which could not be loaded: %s (install Debian's libcairo2 and "
                         "libfontconfig1 packages)",
                         CAIRO_SONAME, FONTCONFIG_SONAME, cairo_why);
}

const report_cairo_api *report_cairo(void)
{
    pthread_once(&cairo_once, cairo_load);
    return &cairo_api;
}

int report_cairo_loaded(void)
{
    return cairo_ok;   /* no load: a command that never drew loads nothing */
}
