/* dcm_cli.c — helpers the subcommands share (messages, strict parsing). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dcm/dcm_cli.h"
#include "io/io_atomic.h"

int cli_fail(const char *cmd, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "dcm %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_report(const char *cmd, const dcm_error *err)
{
    fprintf(stderr, "dcm %s: %s\n", cmd, err->msg[0] ? err->msg : "failed");
    return err->code ? err->code : DCM_ERR_SYSTEM;
}

int cli_parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (*end || errno || !isfinite(x))
        return -1;
    *out = x;
    return 0;
}

int cli_parse_int(const char *s, long min, long max, long *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (*end || errno || x < min || x > max)
        return -1;
    *out = x;
    return 0;
}

int cli_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

json_t *cli_json_vec(const double *x, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_real(x[i]));
    return a;
}

int cli_emit_json(const char *cmd, json_t *o, int print, const char *out_path)
{
    char *txt = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    if (!txt)
        return cli_fail(cmd, DCM_ERR_SYSTEM, "out of memory");
    if (print)
        puts(txt);
    int rc = DCM_OK;
    if (out_path) {
        io_atomic a;
        dcm_error err = {0, ""};
        if (io_atomic_open(&a, out_path, &err)) {
            rc = cli_report(cmd, &err);
        } else {
            fputs(txt, a.fp);
            fputc('\n', a.fp);
            if (io_atomic_commit(&a, &err))
                rc = cli_report(cmd, &err);
        }
    }
    free(txt);
    return rc;
}
