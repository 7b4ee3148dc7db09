/* cli.c — helpers the subcommands share (messages, strict parsing,
 * the output plan). */
#define _GNU_SOURCE /* O_TMPFILE, strndup */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "dcm/cli/cli.h"
#include "io/io_atomic.h"
#include "io/io_batchdir.h"

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

/* ---- the output discipline (see cli.h) ---- */

enum { PLAN_IN = 0, PLAN_IN_DIR = 1, PLAN_OUT = 2, PLAN_OUT_DIR = 3, PLAN_OUT_DIR_OWN = 4 };

/* The plan's verdict: printed as "dcm CMD: ...", or kept in p->err when
 * p->quiet (estimate --log-json reports it as an event). */
static int plan_fail(cli_plan *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int plan_fail(cli_plan *p, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err.msg, sizeof p->err.msg, fmt, ap);
    va_end(ap);
    p->err.code = code;
    if (!p->quiet)
        fprintf(stderr, "dcm %s: %s\n", p->cmd, p->err.msg);
    return code;
}

void cli_plan_init(cli_plan *p, const char *cmd)
{
    memset(p, 0, sizeof *p);
    p->cmd = cmd;
}

void cli_plan_free(cli_plan *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->f[i].path);
    free(p->f);
    memset(p, 0, sizeof *p);
}

static void plan_add(cli_plan *p, const char *path, const char *what, int kind)
{
    if (!path || !*path)
        return;
    if (p->n == p->cap) {
        int nc = p->cap ? 2 * p->cap : 16;
        cli_plan_file *f = realloc(p->f, sizeof *f * (size_t)nc);
        if (!f) {
            p->oom = 1;
            return;
        }
        p->f = f;
        p->cap = nc;
    }
    char *d = strdup(path);
    if (!d) {
        p->oom = 1;
        return;
    }
    p->f[p->n++] = (cli_plan_file){d, what, kind};
}

void cli_plan_input(cli_plan *p, const char *path, const char *what)
{
    plan_add(p, path, what, PLAN_IN);
}

void cli_plan_input_dir(cli_plan *p, const char *path, const char *what)
{
    plan_add(p, path, what, PLAN_IN_DIR);
}

void cli_plan_output(cli_plan *p, const char *path, const char *what)
{
    plan_add(p, path, what, PLAN_OUT);
}

void cli_plan_output_dir(cli_plan *p, const char *path, const char *what)
{
    plan_add(p, path, what, PLAN_OUT_DIR);
}

void cli_plan_output_dir_own(cli_plan *p, const char *path, const char *what)
{
    plan_add(p, path, what, PLAN_OUT_DIR_OWN);
}

/* a data file a spec names, relative to the spec's folder */
static void plan_spec_file(cli_plan *p, const char *spec, json_t *j, const char *what)
{
    const char *rel = json_string_value(j);
    if (!rel || !*rel)
        return;
    const char *slash = strrchr(spec, '/');
    size_t ld = (rel[0] == '/' || !slash) ? 0 : (size_t)(slash - spec) + 1;
    char *full = malloc(ld + strlen(rel) + 1);
    if (!full) {
        p->oom = 1;
        return;
    }
    memcpy(full, spec, ld);
    strcpy(full + ld, rel);
    plan_add(p, full, what, PLAN_IN);
    free(full);
}

static void plan_spec(cli_plan *p, const char *spec, int design_only)
{
    plan_add(p, spec, "the spec", PLAN_IN);
    size_t l = strlen(spec);
    if (l > 4 && !strcmp(spec + l - 4, ".mat"))
        return;
    dcm_error e = {0, ""};
    FILE *f = io_input_open(spec, "spec", &e);
    if (!f)
        return;   /* the check (or the reader) says why */
    io_skip_bom(f);   /* as the spec reader does */
    json_t *root = json_loadf(f, 0, NULL);
    fclose(f);
    if (!json_is_object(root)) {
        json_decref(root);
        return;
    }
    static const char *const keys[] = {"timeseries", "events", "confounds", "inputs_microtime", NULL};
    static const char *const whats[] = {"the spec's timeseries", "the spec's events",
                                        "the spec's confounds", "the spec's inputs_microtime"};
    for (int k = 0; keys[k]; k++)
        if (!design_only || k == 1 || k == 3)
            plan_spec_file(p, spec, json_object_get(root, keys[k]), whats[k]);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(root, "regions"), i, r)
        if (json_is_object(r) && !design_only)
            plan_spec_file(p, spec, json_object_get(r, "voi"), "a VOI file of the spec");
    json_decref(root);
}

void cli_plan_spec(cli_plan *p, const char *spec)
{
    plan_spec(p, spec, 0);
}

void cli_plan_spec_design(cli_plan *p, const char *spec)
{
    plan_spec(p, spec, 1);
}

void cli_plan_batchdir(cli_plan *p, const char *outdir)
{
    plan_add(p, outdir, "the batch folder", PLAN_IN_DIR);
    io_batchdir b;
    dcm_error e = {0, ""};
    if (io_batchdir_scan(outdir, &b, &e))
        return;   /* the command reports it */
    for (int s = 0; s < b.nsub; s++)
        for (int m = 0; m < b.nmod; m++)
            if (b.has[s * b.nmod + m]) {
                char *path = io_batchdir_path(&b, s, m);
                if (!path)
                    p->oom = 1;
                plan_add(p, path, "a result of the batch folder", PLAN_IN);
                free(path);
            }
    io_batchdir_free(&b);
    size_t l = strlen(outdir) + 16;
    char *sum = malloc(l);
    if (!sum) {
        p->oom = 1;
        return;
    }
    snprintf(sum, l, "%s/summary.tsv", outdir);
    plan_add(p, sum, "the batch folder's summary", PLAN_IN);
    free(sum);
}

/* Folder part of path ("." when none); caller frees. */
static char *plan_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* 0 when a file can be created in dir (created and removed at once; an
 * unnamed O_TMPFILE leaves no trace), else errno. */
static int probe_dir(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
        return errno;
    size_t l = strlen(dir) + 32;
    char *name = malloc(l);
    if (!name)
        return ENOMEM;
    int e = EEXIST;
    for (int k = 0; k < 16 && e == EEXIST; k++) {
        snprintf(name, l, "%s/.dcm-probe.tmp.%ld%d", dir, (long)getpid(), k);
        fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        e = fd < 0 ? errno : 0;
    }
    if (fd >= 0) {
        close(fd);
        unlink(name);
    }
    free(name);
    return e;
}

/* realpath of the folder + "/" + the last component (the file need not
 * exist); NULL when the folder does not exist. */
static char *plan_canon(const char *path)
{
    char *dir = plan_dirname(path);
    char *rd = dir ? realpath(dir, NULL) : NULL;
    free(dir);
    if (!rd)
        return NULL;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *out = malloc(strlen(rd) + strlen(base) + 2);
    if (out)
        sprintf(out, "%s/%s", rd, base);
    free(rd);
    return out;
}

/* 1 when the existing file `inner` lies inside the folder `outer` (both
 * resolved: symbolic links and ".." do not hide it). */
static int plan_inside(const char *inner, const char *outer_real)
{
    char *ri = realpath(inner, NULL);
    if (!ri)
        return 0;
    size_t lo = strlen(outer_real);
    int in = !strncmp(ri, outer_real, lo) && (outer_real[lo - 1] == '/' || ri[lo] == '/');
    free(ri);
    return in;
}

static int plan_check_output_file(cli_plan *p, const cli_plan_file *o, int oi)
{
    struct stat so;
    int exists = stat(o->path, &so) == 0;
    if (exists && !S_ISREG(so.st_mode))
        return plan_fail(p, DCM_ERR_SYSTEM, "cannot write %s %s: it is %s, not a regular file; "
                        "refusing to replace it", o->what, o->path, io_file_kind(so.st_mode));
    for (int i = 0; exists && i < p->n; i++) {
        struct stat si;
        if (p->f[i].kind == PLAN_IN && stat(p->f[i].path, &si) == 0 && si.st_dev == so.st_dev &&
            si.st_ino == so.st_ino)
            return plan_fail(p, DCM_ERR_INPUT, "%s %s is %s of this run (%s): refusing to "
                            "overwrite an input; choose another output name", o->what, o->path,
                            p->f[i].what, p->f[i].path);
    }
    char *co = plan_canon(o->path);
    for (int i = 0; co && i < oi; i++) {
        if (p->f[i].kind != PLAN_OUT)
            continue;
        char *ci = plan_canon(p->f[i].path);
        int same = ci && !strcmp(ci, co);
        free(ci);
        if (same) {
            free(co);
            return plan_fail(p, DCM_ERR_USAGE, "%s %s and %s %s are the same file; give two "
                            "different names", p->f[i].what, p->f[i].path, o->what, o->path);
        }
    }
    free(co);
    char *dir = plan_dirname(o->path);
    if (!dir)
        return plan_fail(p, DCM_ERR_SYSTEM, "out of memory");
    struct stat sd;
    int rc = DCM_OK;
    int found = stat(dir, &sd) == 0;
    if (!found || !S_ISDIR(sd.st_mode))
        rc = plan_fail(p, DCM_ERR_SYSTEM, "cannot write %s %s: the folder %s %s", o->what, o->path,
                      dir, !found && errno == ENOENT ? "does not exist"
                           : found ? "is not a folder" : strerror(errno));
    else {
        int e = probe_dir(dir);
        if (e)
            rc = plan_fail(p, DCM_ERR_SYSTEM, "cannot write %s %s: cannot create files in %s: %s",
                          o->what, o->path, dir, strerror(e));
    }
    free(dir);
    return rc;
}

static int plan_check_output_dir(cli_plan *p, const cli_plan_file *o)
{
    struct stat sd;
    if (stat(o->path, &sd) == 0) {
        if (!S_ISDIR(sd.st_mode))
            return plan_fail(p, DCM_ERR_SYSTEM, "cannot write into %s %s: it is %s, not a folder",
                            o->what, o->path, io_file_kind(sd.st_mode));
        char *rd = realpath(o->path, NULL);
        if (!rd)
            return plan_fail(p, DCM_ERR_SYSTEM, "cannot use %s %s: %s", o->what, o->path,
                            strerror(errno));
        for (int i = 0; o->kind == PLAN_OUT_DIR_OWN && i < p->n; i++)
            if (p->f[i].kind == PLAN_IN && plan_inside(p->f[i].path, rd)) {
                int rc = plan_fail(p, DCM_ERR_INPUT, "%s %s holds %s of this run (%s): outputs "
                                  "would be written among the inputs; choose a folder of their own "
                                  "(e.g. %s/results)", o->what, o->path, p->f[i].what, p->f[i].path,
                                  o->path);
                free(rd);
                return rc;
            }
        free(rd);
        int e = probe_dir(o->path);
        return e ? plan_fail(p, DCM_ERR_SYSTEM, "cannot write into %s %s: %s", o->what, o->path,
                            strerror(e))
                 : DCM_OK;
    }
    if (errno != ENOENT)
        return plan_fail(p, DCM_ERR_SYSTEM, "cannot use %s %s: %s", o->what, o->path,
                        strerror(errno));
    /* created later (mkdir -p): its nearest existing ancestor must take it */
    char *up = strdup(o->path);
    if (!up)
        return plan_fail(p, DCM_ERR_SYSTEM, "out of memory");
    int rc = DCM_OK;
    for (;;) {
        char *d = plan_dirname(up);
        free(up);
        up = d;
        if (!up) {
            rc = plan_fail(p, DCM_ERR_SYSTEM, "out of memory");
            break;
        }
        struct stat sa;
        if (stat(up, &sa) == 0) {
            int e = S_ISDIR(sa.st_mode) ? probe_dir(up) : ENOTDIR;
            if (e)
                rc = plan_fail(p, DCM_ERR_SYSTEM, "cannot create %s %s: %s: %s", o->what, o->path,
                              up, strerror(e));
            break;
        }
        if (!strcmp(up, ".") || !strcmp(up, "/"))
            break;
    }
    free(up);
    return rc;
}

int cli_plan_check(cli_plan *p)
{
    if (p->oom)
        return plan_fail(p, DCM_ERR_SYSTEM, "out of memory");
    for (int i = 0; i < p->n; i++) {
        struct stat st;
        if (p->f[i].kind == PLAN_IN && stat(p->f[i].path, &st) == 0 && !S_ISREG(st.st_mode))
            return plan_fail(p, DCM_ERR_INPUT, "%s %s is %s; inputs must be regular files",
                            p->f[i].what, p->f[i].path, io_file_kind(st.st_mode));
    }
    for (int i = 0; i < p->n; i++) {
        int rc = p->f[i].kind == PLAN_OUT       ? plan_check_output_file(p, &p->f[i], i)
                 : p->f[i].kind >= PLAN_OUT_DIR ? plan_check_output_dir(p, &p->f[i])
                                                : DCM_OK;
        if (rc)
            return rc;
    }
    return DCM_OK;
}
