/* core_error.c — errors, warnings and the name/TR checks every layer uses
 * (see dcm_core.h). */
#include "dcm/core/dcm_core.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dcm_error_set(dcm_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

static char *vstrprintf(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (len < 0)
        return NULL;
    char *s = malloc((size_t)len + 1);
    if (s)
        vsnprintf(s, (size_t)len + 1, fmt, ap);
    return s;
}

char *dcm_strprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vstrprintf(fmt, ap);
    va_end(ap);
    return s;
}

int dcm_warnings_add(dcm_warnings *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vstrprintf(fmt, ap);
    va_end(ap);
    char **items = s ? realloc(w->items, sizeof(char *) * (size_t)(w->count + 1)) : NULL;
    if (!items) {
        free(s);
        return DCM_ERR_SYSTEM;
    }
    w->items = items;
    w->items[w->count++] = s;
    return DCM_OK;
}

int dcm_warnings_copy(dcm_warnings *dst, const dcm_warnings *src)
{
    for (int i = 0; src && i < src->count; i++)
        if (dcm_warnings_add(dst, "%s", src->items[i]))
            return DCM_ERR_SYSTEM;
    return DCM_OK;
}

void dcm_warnings_free(dcm_warnings *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->count; i++)
        free(w->items[i]);
    free(w->items);
    w->items = NULL;
    w->count = 0;
}

const char *dcm_check_tr(double TR, char *buf, size_t len)
{
    if (!isfinite(TR) || TR <= 0.0)
        snprintf(buf, len, "\"TR\" is %g; the repetition time must be a positive number of "
                 "seconds (e.g. 3.22)", TR);
    else if (TR >= 100.0 && TR / 1000.0 <= DCM_TR_MAX)   /* 100 ms .. 30 s in ms */
        snprintf(buf, len, "\"TR\" is %g, but the repetition time is in seconds and must lie in "
                 "(0, %g]: %g looks like milliseconds; write %g", TR, DCM_TR_MAX, TR, TR / 1000.0);
    else if (TR > DCM_TR_MAX)
        snprintf(buf, len, "\"TR\" is %g, but the repetition time is in seconds and must lie in "
                 "(0, %g]", TR, DCM_TR_MAX);
    else
        return NULL;
    return buf;
}

const char *dcm_name_problem(const char *name)
{
    if (!name || !name[0])
        return "names may not be empty";
    size_t len = strlen(name);
    if (strstr(name, "->"))
        return "names may not contain \"->\" (it separates source and target in \"A:V1->V5\")";
    if (strchr(name, ':'))
        return "names may not contain ':' (it separates the parts of \"B:Attention:V1->V5\")";
    if (isspace((unsigned char)name[0]) || isspace((unsigned char)name[len - 1]))
        return "names may not start or end with white space";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return "names may not contain control characters (tabs, line breaks)";
    return NULL;
}
