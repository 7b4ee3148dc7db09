/* io_spec.c — load a DCM from a JSON spec (see io_spec.h). */
#include "io/io_spec.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io/io_atomic.h"
#include "io/io_events.h"
#include "io/io_mat.h"
#include "io/io_tsv.h"

typedef struct {
    const char *path;   /* the spec file, for messages */
    char *dir;          /* its directory, "" or ending in '/' */
    dcm_error *err;
    char **regions;     /* borrowed from the JSON document */
    int n;
    char **inputs;
    int m;
    char **voi;         /* per region: its SPM VOI file (borrowed), or NULL */
} spec_ctx;

static const char *const top_keys[] = {
    "TR", "TE", "scans", "timeseries", "regions", "confounds", "events", "inputs_microtime",
    "inputs", "a", "b", "c", "d", "delays", "options", "analysis", "method", "rdcm", NULL
};
static const char *const option_keys[] = {
    "two_state", "centre", "maxit", "maxnodes", "integrator", "hE", "hC", "nonlinear", "spm12_te", NULL
};

static int fail(const spec_ctx *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const spec_ctx *s, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dcm_error_set(s->err, DCM_ERR_INPUT, "%s: %s", s->path, msg);
}

static const char *type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Levenshtein distance, capped for long strings. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    int d[41][41];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

/* ", "-joined list into buf. */
static void join_names(char *buf, size_t len, const char *const *names, int count)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; (count < 0 ? names[i] != NULL : i < count) && k + 8 < len; i++) {
        int w = snprintf(buf + k, len - k, "%s%s", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= len - k) {
            snprintf(buf + (len > 4 ? len - 4 : 0), len > 4 ? 4 : len, "...");
            return;
        }
        k += (size_t)w;
    }
}

static int check_keys(const spec_ctx *s, json_t *obj, const char *const *valid, const char *where)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        int ok = 0;
        for (int i = 0; valid[i]; i++)
            if (strcmp(key, valid[i]) == 0)
                ok = 1;
        if (ok)
            continue;
        const char *best = NULL;
        int bd = 3;
        for (int i = 0; valid[i]; i++) {
            int dd = strcasecmp(key, valid[i]) == 0 ? 0 : edit_distance(key, valid[i]);
            if (dd < bd) {
                bd = dd;
                best = valid[i];
            }
        }
        char list[512], hint[128] = "";
        join_names(list, sizeof list, valid, -1);
        if (best)
            snprintf(hint, sizeof hint, " (did you mean \"%s\"?)", best);
        return fail(s, "unknown key \"%s\"%s%s; valid keys are: %s", key, where, hint, list);
    }
    return DCM_OK;
}

/* Path of a file named in the spec, relative to the spec's directory. */
static char *resolve(const spec_ctx *s, const char *rel)
{
    size_t ld = rel[0] == '/' ? 0 : strlen(s->dir), lr = strlen(rel);
    char *p = malloc(ld + lr + 1);
    if (p) {
        memcpy(p, s->dir, ld);
        memcpy(p + ld, rel, lr + 1);
    }
    return p;
}

static int get_number(const spec_ctx *s, json_t *obj, const char *key, const char *what,
                      double *x)
{
    json_t *j = json_object_get(obj, key);
    if (!j)
        return fail(s, "missing \"%s\" (%s)", key, what);
    if (!json_is_number(j))
        return fail(s, "\"%s\" must be a number (%s), not %s", key, what, type_name(j));
    *x = json_number_value(j);
    return DCM_OK;
}

static int get_string(const spec_ctx *s, json_t *obj, const char *key, const char *what,
                      const char **out)
{
    json_t *j = json_object_get(obj, key);
    if (!j)
        return fail(s, "missing \"%s\" (%s)", key, what);
    if (!json_is_string(j) || !json_string_value(j)[0])
        return fail(s, "\"%s\" must be a non-empty string (%s), not %s", key, what,
                    json_is_string(j) ? "an empty string" : type_name(j));
    *out = json_string_value(j);
    return DCM_OK;
}

/* A list of unique names; the strings stay owned by the JSON document. */
static int get_names(const spec_ctx *s, json_t *obj, const char *key, char ***names, int *count)
{
    json_t *arr = json_object_get(obj, key);
    if (!arr)
        return fail(s, "missing \"%s\" (a list of names)", key);
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return fail(s, "\"%s\" must be a non-empty array of names, not %s", key,
                    json_is_array(arr) ? "an empty array" : type_name(arr));
    int k = (int)json_array_size(arr);
    *names = calloc((size_t)k, sizeof(char *));
    if (!*names)
        return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
    *count = k;
    for (int i = 0; i < k; i++) {
        json_t *x = json_array_get(arr, (size_t)i);
        if (!json_is_string(x) || !json_string_value(x)[0])
            return fail(s, "\"%s\"[%d] must be a non-empty string, not %s", key, i,
                        json_is_string(x) ? "an empty string" : type_name(x));
        const char *nm = json_string_value(x);
        const char *why = dcm_name_problem(nm);
        if (why)
            return fail(s, "\"%s\"[%d] = \"%s\": %s; rename it", key, i, nm, why);
        for (int q = 0; q < i; q++)
            if (strcmp((*names)[q], nm) == 0)
                return fail(s, "\"%s\" lists \"%s\" twice", key, nm);
        (*names)[i] = (char *)nm;
    }
    return DCM_OK;
}

/* "regions": names, or objects {"name": ..., "voi": "VOI_x_1.mat"} whose
 * time series is the SPM VOI file's xY.u (strings and objects may mix). */
static int get_regions(spec_ctx *s, json_t *root)
{
    json_t *arr = json_object_get(root, "regions");
    int objects = 0;
    for (size_t i = 0; json_is_array(arr) && i < json_array_size(arr); i++)
        objects |= json_is_object(json_array_get(arr, i));
    if (!objects)
        return get_names(s, root, "regions", &s->regions, &s->n);
    static const char *const region_keys[] = {"name", "voi", NULL};
    int k = (int)json_array_size(arr);
    s->regions = calloc((size_t)k, sizeof(char *));
    s->voi = calloc((size_t)k, sizeof(char *));
    if (!s->regions || !s->voi)
        return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
    s->n = k;
    for (int i = 0; i < k; i++) {
        json_t *x = json_array_get(arr, (size_t)i), *jn = x;
        char where[64];
        snprintf(where, sizeof where, " in \"regions\"[%d]", i);
        if (json_is_object(x)) {
            if (check_keys(s, x, region_keys, where))
                return DCM_ERR_INPUT;
            jn = json_object_get(x, "name");
            json_t *jv = json_object_get(x, "voi");
            if (jv && (!json_is_string(jv) || !json_string_value(jv)[0]))
                return fail(s, "\"regions\"[%d].\"voi\" must be the path of an SPM VOI file "
                            "(VOI_NAME_1.mat), not %s", i, json_is_string(jv) ? "an empty string"
                                                                          : type_name(jv));
            s->voi[i] = jv ? (char *)json_string_value(jv) : NULL;
            if (!jn)
                return fail(s, "\"regions\"[%d] needs a \"name\"", i);
        }
        if (!json_is_string(jn) || !json_string_value(jn)[0])
            return fail(s, "\"regions\"[%d]%s must be a non-empty string, not %s", i,
                        jn == x ? "" : ".\"name\"",
                        json_is_string(jn) ? "an empty string" : type_name(jn));
        const char *nm = json_string_value(jn);
        const char *why = dcm_name_problem(nm);
        if (why)
            return fail(s, "\"regions\"[%d] = \"%s\": %s; rename it", i, nm, why);
        for (int q = 0; q < i; q++)
            if (strcmp(s->regions[q], nm) == 0)
                return fail(s, "\"regions\" lists \"%s\" twice", nm);
        s->regions[i] = (char *)nm;
    }
    return DCM_OK;
}

static int find_name(char *const *names, int count, const char *name)
{
    for (int i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

static int region_index(const spec_ctx *s, const char *name, const char *field, int *out)
{
    *out = find_name(s->regions, s->n, name);
    if (*out >= 0)
        return DCM_OK;
    char list[512];
    join_names(list, sizeof list, (const char *const *)s->regions, s->n);
    return fail(s, "%s: unknown region \"%s\"; the regions are: %s", field, name, list);
}

static int input_index(const spec_ctx *s, const char *name, const char *field, int *out)
{
    *out = find_name(s->inputs, s->m, name);
    if (*out >= 0)
        return DCM_OK;
    char list[512];
    join_names(list, sizeof list, (const char *const *)s->inputs, s->m);
    return fail(s, "%s: unknown input \"%s\"; the inputs are: %s", field, name, list);
}

/* A number or boolean switch value. */
static int switch_value(const spec_ctx *s, json_t *x, const char *field, int i, int j, double *out)
{
    if (json_is_number(x))
        *out = json_number_value(x);
    else if (json_is_boolean(x))
        *out = json_is_true(x) ? 1.0 : 0.0;
    else
        return fail(s, "%s[%d][%d] must be a number (0 or 1), not %s", field, i, j, type_name(x));
    return DCM_OK;
}

/* rows x cols nested rows (row = target) into out (column-major). */
static int parse_matrix(const spec_ctx *s, json_t *arr, const char *field, int rows, int cols,
                        const char *shape_hint, double *out)
{
    if (!json_is_array(arr))
        return fail(s, "%s must be a %dx%d matrix (%s), not %s", field, rows, cols, shape_hint,
                    type_name(arr));
    if ((int)json_array_size(arr) != rows)
        return fail(s, "%s must be a %dx%d matrix (%s): it has %d rows instead of %d", field, rows,
                    cols, shape_hint, (int)json_array_size(arr), rows);
    for (int i = 0; i < rows; i++) {
        json_t *row = json_array_get(arr, (size_t)i);
        if (!json_is_array(row))
            return fail(s, "%s must be a %dx%d matrix (%s): row %d is %s, not an array of %d numbers",
                        field, rows, cols, shape_hint, i, type_name(row), cols);
        if ((int)json_array_size(row) != cols)
            return fail(s, "%s must be a %dx%d matrix (%s): row %d has %d entries instead of %d",
                        field, rows, cols, shape_hint, i, (int)json_array_size(row), cols);
        for (int j = 0; j < cols; j++)
            if (switch_value(s, json_array_get(row, (size_t)j), field, i, j, &out[i + j * rows]))
                return DCM_ERR_INPUT;
    }
    return DCM_OK;
}

/* "FROM -> TO" */
static int parse_edge(const spec_ctx *s, json_t *x, const char *field, int idx, int *from, int *to)
{
    if (!json_is_string(x))
        return fail(s, "%s[%d] must be an edge string \"FROM -> TO\", not %s", field, idx,
                    type_name(x));
    const char *e = json_string_value(x);
    const char *arrow = strstr(e, "->");
    if (!arrow)
        return fail(s, "%s[%d] = \"%s\" is not an edge; write \"FROM -> TO\" (e.g. \"%s -> %s\")",
                    field, idx, e, s->regions[0], s->regions[s->n > 1 ? 1 : 0]);
    /* the names are copied whole (no fixed-size buffer may cut a long
       name into another region's) */
    const char *p = e, *q = arrow;
    while (*p == ' ' || *p == '\t')
        p++;
    while (q > p && (q[-1] == ' ' || q[-1] == '\t'))
        q--;
    char *a = strndup(p, (size_t)(q - p));
    p = arrow + 2;
    while (*p == ' ' || *p == '\t')
        p++;
    char *b = strdup(p);
    if (!a || !b) {
        free(a);
        free(b);
        return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
    }
    size_t lb = strlen(b);
    while (lb && (b[lb - 1] == ' ' || b[lb - 1] == '\t'))
        b[--lb] = '\0';
    int rc;
    if (!a[0] || !b[0] || strstr(b, "->")) {
        rc = fail(s, "%s[%d] = \"%s\" is not an edge; write \"FROM -> TO\"", field, idx, e);
    } else {
        char where[300];
        snprintf(where, sizeof where, "%s[%d] (\"%.200s%s\")", field, idx, e,
                 strlen(e) > 200 ? "..." : "");
        rc = region_index(s, a, where, from) || region_index(s, b, where, to) ? DCM_ERR_INPUT
                                                                            : DCM_OK;
    }
    free(a);
    free(b);
    return rc;
}

/* An n x n connectivity block: a matrix (array of arrays) or an edge list
 * (array of strings). *edges tells which form it was. */
static int parse_conn(const spec_ctx *s, json_t *j, const char *field, double *out, int *edges)
{
    const int n = s->n;
    *edges = 0;
    if (!json_is_array(j))
        return fail(s, "%s must be a %dx%d matrix (rows = target, columns = source) or a list of "
                    "edges \"FROM -> TO\", not %s", field, n, n, type_name(j));
    json_t *first = json_array_get(j, 0);
    if (json_array_size(j) == 0 || json_is_string(first)) {
        *edges = 1;
        memset(out, 0, sizeof(double) * (size_t)n * n);
        for (int k = 0; k < (int)json_array_size(j); k++) {
            int from, to;
            int erc = parse_edge(s, json_array_get(j, (size_t)k), field, k, &from, &to);
            if (erc)
                return erc;   /* an input error, or out of memory */
            out[to + from * n] = 1.0;
        }
        return DCM_OK;
    }
    char hint[64];
    snprintf(hint, sizeof hint, "rows = target, columns = source");
    return parse_matrix(s, j, field, n, n, hint, out);
}

static int get_bool(const spec_ctx *s, json_t *opt, const char *key, int *out)
{
    json_t *j = json_object_get(opt, key);
    if (!j)
        return DCM_OK;
    if (json_is_boolean(j))
        *out = json_is_true(j);
    else if (json_is_integer(j) && (json_integer_value(j) == 0 || json_integer_value(j) == 1))
        *out = (int)json_integer_value(j);
    else
        return fail(s, "\"options\".\"%s\" must be true or false, not %s", key, type_name(j));
    return DCM_OK;
}

typedef struct {
    double *a, *b, *c, *d;  /* n*n, n*n*m, n*m, n*n*n */
    int any_d;
} structure;

static int parse_structure(const spec_ctx *s, json_t *root, structure *st)
{
    const int n = s->n, m = s->m;
    char field[320];
    int edges, crc;
    json_t *j = json_object_get(root, "a");
    if (!j)
        return fail(s, "missing \"a\" (the connections: an %dx%d matrix, row = target, column = "
                    "source, or a list of edges \"FROM -> TO\")", n, n);
    if ((crc = parse_conn(s, j, "\"a\"", st->a, &edges)))
        return crc;   /* an input error, or out of memory */
    if (edges)
        for (int i = 0; i < n; i++)
            st->a[i + i * n] = 1.0;   /* self-connections are always on */

    j = json_object_get(root, "b");
    if (j) {
        if (!json_is_object(j))
            return fail(s, "\"b\" must be an object keyed by input name ({\"%s\": ...}), not %s",
                        s->inputs[0], type_name(j));
        const char *key;
        json_t *val;
        json_object_foreach(j, key, val) {
            int k;
            if (input_index(s, key, "\"b\"", &k))
                return DCM_ERR_INPUT;
            snprintf(field, sizeof field, "\"b\".\"%s\"", key);
            if ((crc = parse_conn(s, val, field, st->b + (size_t)k * n * n, &edges)))
                return crc;   /* an input error, or out of memory */
        }
    }

    j = json_object_get(root, "c");
    if (!j && m == 0)
        goto no_c;   /* a resting-state rDCM: no inputs (checked by the caller) */
    if (!j)
        return fail(s, "missing \"c\" (the driving inputs: an %dx%d matrix, row = region, column = "
                    "input, or {\"%s\": [\"%s\"]})", n, m, s->inputs[0], s->regions[0]);
    if (json_is_array(j)) {
        char hint[64];
        snprintf(hint, sizeof hint, "rows = regions, columns = inputs");
        if (parse_matrix(s, j, "\"c\"", n, m, hint, st->c))
            return DCM_ERR_INPUT;
    } else if (json_is_object(j)) {
        const char *key;
        json_t *val;
        json_object_foreach(j, key, val) {
            int k;
            if (input_index(s, key, "\"c\"", &k))
                return DCM_ERR_INPUT;
            snprintf(field, sizeof field, "\"c\".\"%s\"", key);
            json_t *one = json_is_string(val) ? val : NULL;
            if (!one && !json_is_array(val))
                return fail(s, "%s must be a list of the regions the input drives, not %s", field,
                            type_name(val));
            int cnt = one ? 1 : (int)json_array_size(val);
            for (int q = 0; q < cnt; q++) {
                json_t *x = one ? one : json_array_get(val, (size_t)q);
                if (!json_is_string(x))
                    return fail(s, "%s[%d] must be a region name, not %s", field, q, type_name(x));
                int r;
                if (region_index(s, json_string_value(x), field, &r))
                    return DCM_ERR_INPUT;
                st->c[r + k * n] = 1.0;
            }
        }
    } else {
        return fail(s, "\"c\" must be an %dx%d matrix or an object {input: [regions]}, not %s", n, m,
                    type_name(j));
    }

no_c:
    j = json_object_get(root, "d");
    if (j) {
        if (!json_is_object(j))
            return fail(s, "\"d\" must be an object keyed by modulating region ({\"%s\": ...}), not %s",
                        s->regions[0], type_name(j));
        const char *key;
        json_t *val;
        json_object_foreach(j, key, val) {
            int k;
            if (region_index(s, key, "\"d\"", &k))
                return DCM_ERR_INPUT;
            snprintf(field, sizeof field, "\"d\".\"%s\"", key);
            if ((crc = parse_conn(s, val, field, st->d + (size_t)k * n * n, &edges)))
                return crc;   /* an input error, or out of memory */
        }
        for (int k = 0; k < n * n * n; k++)
            if (st->d[k] != 0.0)
                st->any_d = 1;
    }
    return DCM_OK;
}

/* "spm12_te": true fits as SPM12 r7771, whose spm_gx_fmri uses TE = 0.04 s
   whatever the spec says (io_mat.h) */
static int parse_spm12_te(const spec_ctx *s, json_t *opt, dcm_problem *P)
{
    int on = 0;
    if (get_bool(s, opt, "spm12_te", &on))
        return DCM_ERR_INPUT;
    if (on)
        P->M->TE = IO_SPM12_TE;
    return DCM_OK;
}

static int parse_options(const spec_ctx *s, json_t *root, dcm_problem *P, int *nonlinear)
{
    json_t *opt = json_object_get(root, "options");
    if (!opt)
        return DCM_OK;
    if (!json_is_object(opt))
        return fail(s, "\"options\" must be an object, not %s", type_name(opt));
    if (check_keys(s, opt, option_keys, " in \"options\""))
        return DCM_ERR_INPUT;
    if (get_bool(s, opt, "two_state", &P->M->two_state) || get_bool(s, opt, "centre", &P->centre) ||
        get_bool(s, opt, "nonlinear", nonlinear) || parse_spm12_te(s, opt, P))
        return DCM_ERR_INPUT;
    json_t *j = json_object_get(opt, "maxit");
    if (j) {
        if (!json_is_integer(j) || json_integer_value(j) < 1 || json_integer_value(j) > 1000000)
            return fail(s, "\"options\".\"maxit\" is %s; it must be a whole number of iterations "
                        "from 1 to 1000000", json_is_integer(j) ? "out of range" : type_name(j));
        P->maxit = (int)json_integer_value(j);
    }
    j = json_object_get(opt, "maxnodes");
    if (j) {
        if (!json_is_integer(j) || json_integer_value(j) < 1 || json_integer_value(j) > 1000)
            return fail(s, "\"options\".\"maxnodes\" is %s; it must be a whole number of regions "
                        "from 1 to 1000", json_is_integer(j) ? "out of range" : type_name(j));
        P->maxnodes = (int)json_integer_value(j);
    }
    j = json_object_get(opt, "integrator");
    if (j) {
        const char *v = json_is_string(j) ? json_string_value(j) : "";
        if (strcmp(v, "bilinear") == 0)
            P->M->integrator = MODEL_INT_BILINEAR;
        else if (strcmp(v, "ode") == 0)
            P->M->integrator = MODEL_INT_ODE;
        else
            return fail(s, "\"options\".\"integrator\" must be \"bilinear\" or \"ode\"");
    }
    if (json_object_get(opt, "hE") && get_number(s, opt, "hE", "noise log-precision prior mean", &P->hE))
        return DCM_ERR_INPUT;
    if (json_object_get(opt, "hC") && get_number(s, opt, "hC", "noise log-precision prior variance", &P->hC))
        return DCM_ERR_INPUT;
    return DCM_OK;
}

/* Time series: header required, columns picked by region name. */
/* What messages call an inline table of the spec: SPEC "key" (malloc'd). */
static char *inline_name(const spec_ctx *s, const char *key)
{
    size_t len = strlen(s->path) + strlen(key) + 8;
    char *p = malloc(len);
    if (p)
        snprintf(p, len, "%s \"%s\"", s->path, key);
    return p;
}

/* One finite number of an inline table into *x. */
static int inline_number(const spec_ctx *s, json_t *x, const char *key, const char *col, int row,
                         double *out)
{
    if (!json_is_number(x) || !isfinite(json_number_value(x)))
        return fail(s, "\"%s\"%s%s%s[%d] must be a finite number, not %s", key, col ? "[\"" : "",
                    col ? col : "", col ? "\"]" : "", row, json_is_number(x) ? "NaN or Inf" : type_name(x));
    *out = json_number_value(x);
    return DCM_OK;
}

/* "timeseries" given inline as {region: [one value per scan], ...}: the
 * same table a TSV with a header gives (a library caller's arrays, e.g.
 * the Python package's; numbers read back exactly). */
static int inline_timeseries(const spec_ctx *s, json_t *obj, io_table *ts)
{
    const int cols = (int)json_object_size(obj);
    if (cols < 1)
        return fail(s, "\"timeseries\" is an empty object; give {region: [values], ...}");
    json_t *first = json_object_iter_value(json_object_iter(obj));
    const int rows = json_is_array(first) ? (int)json_array_size(first) : 0;
    if (!(ts->names = calloc((size_t)cols, sizeof(char *))) ||
        !(ts->data = malloc(sizeof(double) * ((size_t)rows * cols + 1))) ||
        !(ts->line = malloc(sizeof(int) * ((size_t)rows + 1))))
        return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
    ts->cols = cols;
    ts->rows = rows;
    for (int r = 0; r < rows; r++)
        ts->line[r] = r + 1;
    int c = 0;
    const char *key;
    json_t *col;
    json_object_foreach(obj, key, col) {
        if (!(ts->names[c] = strdup(key)))
            return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
        if (!json_is_array(col))
            return fail(s, "\"timeseries\"[\"%s\"] must be an array of numbers (one per scan), "
                        "not %s", key, type_name(col));
        if ((int)json_array_size(col) != rows || rows < 1)
            return fail(s, "\"timeseries\"[\"%s\"] has %d values but the first region's has %d; "
                        "every region needs one value per scan", key, (int)json_array_size(col), rows);
        for (int r = 0; r < rows; r++)
            if (inline_number(s, json_array_get(col, (size_t)r), "timeseries", key, r,
                              &ts->data[r + (size_t)c * rows]))
                return DCM_ERR_INPUT;
        c++;
    }
    return DCM_OK;
}

/* An inline table given as rows of numbers ("confounds": [[...], ...]). */
static int inline_rows(const spec_ctx *s, json_t *arr, const char *key, io_table *t)
{
    const int rows = (int)json_array_size(arr);
    json_t *r0 = json_array_get(arr, 0);
    const int cols = json_is_array(r0) ? (int)json_array_size(r0) : 0;
    if (rows < 1 || cols < 1)
        return fail(s, "\"%s\" must be a file name or a non-empty array of rows of numbers", key);
    if (!(t->data = malloc(sizeof(double) * (size_t)rows * cols)) ||
        !(t->line = malloc(sizeof(int) * (size_t)rows)))
        return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
    t->rows = rows;
    t->cols = cols;
    for (int r = 0; r < rows; r++) {
        json_t *row = json_array_get(arr, (size_t)r);
        t->line[r] = r + 1;
        if (!json_is_array(row) || (int)json_array_size(row) != cols)
            return fail(s, "\"%s\"[%d] must be an array of %d numbers (as row 0)", key, r, cols);
        for (int c = 0; c < cols; c++)
            if (inline_number(s, json_array_get(row, (size_t)c), key, NULL, r,
                              &t->data[r + (size_t)c * rows]))
                return DCM_ERR_INPUT;
    }
    return DCM_OK;
}

/* "events" given inline as [{"onset": s, "duration": s, "trial_type":
 * name}, ...]: the text table a BIDS events.tsv gives (row 0 the header),
 * so the one events reader (io_events.h) places them. */
static int inline_events(const spec_ctx *s, json_t *arr, io_text_table *t)
{
    static const char *const cols[3] = {"onset", "duration", "trial_type"};
    const int rows = (int)json_array_size(arr) + 1;
    if (!(t->cells = calloc((size_t)rows * 3, sizeof(char *))) ||
        !(t->line = malloc(sizeof(int) * (size_t)rows)))
        return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
    t->rows = rows;
    t->cols = 3;
    t->delim = '\t';
    for (int c = 0; c < 3; c++)
        if (!(t->cells[c] = strdup(cols[c])))
            return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
    t->line[0] = 0;
    for (int r = 1; r < rows; r++) {
        json_t *ev = json_array_get(arr, (size_t)r - 1);
        t->line[r] = r;   /* messages say "line K": the K-th event (1-based) */
        if (!json_is_object(ev))
            return fail(s, "\"events\"[%d] must be an object {\"onset\": s, \"duration\": s, "
                        "\"trial_type\": name}, not %s", r - 1, type_name(ev));
        for (int c = 0; c < 3; c++) {
            json_t *x = json_object_get(ev, cols[c]);
            char buf[64];
            if (c < 2 && json_is_number(x))
                snprintf(buf, sizeof buf, "%.17g", json_number_value(x));
            else if (c == 2 && json_is_string(x))
                ;
            else
                return fail(s, "\"events\"[%d]: \"%s\" must be %s, not %s", r - 1, cols[c],
                            c < 2 ? "a number of seconds" : "a string (the input's name)",
                            x ? type_name(x) : "missing");
            if (!(t->cells[(size_t)r * 3 + c] = strdup(c < 2 ? buf : json_string_value(x))))
                return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
        }
    }
    return DCM_OK;
}

static int load_timeseries(const spec_ctx *s, json_t *root, io_table *ts, char **tpath)
{
    const char *rel;
    json_t *jts = json_object_get(root, "timeseries");
    if (json_is_object(jts)) {
        if (!(*tpath = inline_name(s, "timeseries")))
            return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
        int rc = inline_timeseries(s, jts, ts);
        if (rc)
            return rc;
        goto check_columns;
    }
    if (get_string(s, root, "timeseries", "a TSV file with one column per region, or an object "
                   "{region: [values]}", &rel))
        return DCM_ERR_INPUT;
    *tpath = resolve(s, rel);
    if (!*tpath)
        return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
    int rc = io_tsv_read(*tpath, ts, s->err);
    if (rc)
        return rc;
    char list[512];
    join_names(list, sizeof list, (const char *const *)s->regions, s->n);
    if (!ts->names) {
        /* a header made only of numbers reads as data: say so when the
           regions' names are numbers */
        int numeric = 0;
        for (int i = 0; i < s->n; i++) {
            double x;
            numeric += io_parse_number(s->regions[i], &x) != 1;
        }
        if (numeric)
            return dcm_error_set(s->err, DCM_ERR_INPUT,
                                 "%s: no header line naming the regions: a first line made only "
                                 "of numbers is read as data, and %d of the region names (%s) are "
                                 "numbers; give the regions names that are not numbers (e.g. "
                                 "\"R%s\") in the spec and in the header",
                                 *tpath, numeric, list, s->regions[0]);
        return dcm_error_set(s->err, DCM_ERR_INPUT,
                             "%s, line %d: the first line holds numbers, not a header; add a first "
                             "line naming the region columns (%s), separated by tabs",
                             *tpath, ts->line && ts->rows ? ts->line[0] : 1, list);
    }
check_columns:
    for (int i = 0; i < s->n; i++) {
        int first = -1;
        for (int c = 0; c < ts->cols; c++)
            if (strcmp(ts->names[c], s->regions[i]) == 0) {
                if (first >= 0)
                    return dcm_error_set(s->err, DCM_ERR_INPUT,
                                         "%s: the header names column \"%s\" twice (columns %d "
                                         "and %d); which one is region %s's data?",
                                         *tpath, s->regions[i], first + 1, c + 1, s->regions[i]);
                first = c;
            }
    }
    for (int i = 0; i < s->n; i++)
        if (!(s->voi && s->voi[i]) && io_table_find(ts, s->regions[i]) < 0) {
            char cols[512];
            join_names(cols, sizeof cols, (const char *const *)ts->names, ts->cols);
            return dcm_error_set(s->err, DCM_ERR_INPUT,
                                 "%s: no column \"%s\" for region %s (the header has: %s)",
                                 *tpath, s->regions[i], s->regions[i], cols);
        }
    return DCM_OK;
}

static int load_confounds(const spec_ctx *s, json_t *root, dcm_problem *P, const char *tpath)
{
    json_t *j = json_object_get(root, "confounds");
    if (!j)
        return DCM_OK;
    const char *rel;
    io_table ct = {0};
    char *cpath;
    int rc;
    if (json_is_array(j)) {   /* inline: rows of numbers, one per scan */
        if (!(cpath = inline_name(s, "confounds")))
            return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
        rc = inline_rows(s, j, "confounds", &ct);
        goto read;
    }
    if (get_string(s, root, "confounds", "a TSV file of confound regressors, one row per scan, "
                   "or an array of rows", &rel))
        return DCM_ERR_INPUT;
    if (!(cpath = resolve(s, rel)))
        return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
    rc = io_tsv_read(cpath, &ct, s->err);
read:
    if (rc) {
        io_table_free(&ct);
        free(cpath);
        return rc;
    }
    if (ct.rows != P->v) {
        rc = dcm_error_set(s->err, DCM_ERR_INPUT,
                           "%s: confounds have %d rows but the time series %s has %d scans; "
                           "they need one row per scan", cpath, ct.rows, tpath, P->v);
    } else {
        P->nx0 = ct.cols;
        P->X0 = ct.data;   /* already v x nx0 column-major */
        ct.data = NULL;
    }
    io_table_free(&ct);
    free(cpath);
    return rc;
}

/* The VOI files of the regions that name one (vois[i] stays empty for the
 * others): every xY.u must have `*scans` rows (when > 0, counted from
 * `from`), else the first VOI sets it. */
static int load_vois(const spec_ctx *s, io_voi *vois, int *scans, const char **from,
                     char **vpaths)
{
    for (int i = 0; s->voi && i < s->n; i++) {
        if (!s->voi[i])
            continue;
        if (!(vpaths[i] = resolve(s, s->voi[i])))
            return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
        int rc = io_mat_load_voi(vpaths[i], &vois[i], s->err);
        if (rc)
            return rc;
        if (*scans > 0 && vois[i].v != *scans)
            return dcm_error_set(s->err, DCM_ERR_INPUT,
                                 "%s: xY.u has %d scans but %s has %d; region %s needs one value "
                                 "per scan", vpaths[i], vois[i].v, *from, *scans, s->regions[i]);
        if (*scans <= 0) {
            *scans = vois[i].v;
            *from = vpaths[i];
        }
    }
    return DCM_OK;
}

static int load_inputs(const spec_ctx *s, json_t *root, dcm_problem *P, int rule)
{
    json_t *ev = json_object_get(root, "events"), *mt = json_object_get(root, "inputs_microtime");
    if (ev && mt)
        return fail(s, "give either \"events\" or \"inputs_microtime\", not both");
    if (!ev && !mt)
        return fail(s, "missing \"events\" (a BIDS events.tsv) or \"inputs_microtime\" (a TSV of "
                    "%d rows x %d inputs)", P->M->nu, P->m);
    const char *rel;
    int rc;
    if (json_is_array(ev)) {   /* inline: [{onset, duration, trial_type}, ...] */
        io_text_table t = {0};
        char *name = inline_name(s, "events");
        rc = name ? inline_events(s, ev, &t) : dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
        if (!rc)
            rc = io_events_table_to_microtime(name, &t, P->M->TR, P->v, P->m, P->input_names,
                                              P->M->u, &P->warnings, rule, s->err);
        io_text_free(&t);
        free(name);
        return rc;
    }
    if (ev) {
        if (get_string(s, root, "events", "a BIDS events.tsv or an array of events", &rel))
            return DCM_ERR_INPUT;
        char *epath = resolve(s, rel);
        if (!epath)
            return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
        rc = io_events_to_microtime_rule(epath, P->M->TR, P->v, P->m, P->input_names, P->M->u,
                                         &P->warnings, rule, s->err);
        free(epath);
        return rc;
    }
    if (get_string(s, root, "inputs_microtime", "a TSV of inputs at micro-time", &rel))
        return DCM_ERR_INPUT;
    char *upath = resolve(s, rel);
    if (!upath)
        return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
    io_table ut;
    rc = io_tsv_read(upath, &ut, s->err);
    if (rc) {
        free(upath);
        return rc;
    }
    const int m = P->m, nu = P->M->nu;
    if (ut.rows != nu) {
        rc = dcm_error_set(s->err, DCM_ERR_INPUT,
                           "%s: has %d rows; expected %d (16 micro-time bins for each of the %d scans)",
                           upath, ut.rows, nu, P->v);
    } else if (!ut.names && ut.cols != m) {
        rc = dcm_error_set(s->err, DCM_ERR_INPUT,
                           "%s: has %d columns; expected one per input (%d)", upath, ut.cols, m);
    } else {
        for (int j = 0; j < m && rc == DCM_OK; j++) {
            int c = j;
            if (ut.names && (c = io_table_find(&ut, P->input_names[j])) < 0) {
                rc = dcm_error_set(s->err, DCM_ERR_INPUT, "%s: no column \"%s\" for input %s",
                                   upath, P->input_names[j], P->input_names[j]);
                break;
            }
            for (int t = 0; t < nu; t++)
                P->M->u[(size_t)t * m + j] = ut.data[t + (size_t)c * nu];
        }
    }
    io_table_free(&ut);
    free(upath);
    return rc;
}

static int load_delays(const spec_ctx *s, json_t *root, dcm_problem *P)
{
    const int n = P->n;
    json_t *j = json_object_get(root, "delays");
    if (!j) {
        for (int i = 0; i < n; i++)
            P->M->delays[i] = P->M->TR / 2.0;
        return DCM_OK;
    }
    if (json_is_number(j)) {
        for (int i = 0; i < n; i++)
            P->M->delays[i] = json_number_value(j);
        return DCM_OK;
    }
    if (!json_is_array(j))
        return fail(s, "\"delays\" must be an array of %d numbers (seconds, one per region), not %s",
                    n, type_name(j));
    if ((int)json_array_size(j) != n)
        return fail(s, "\"delays\" has %d entries; it needs %d (seconds, one per region)",
                    (int)json_array_size(j), n);
    for (int i = 0; i < n; i++) {
        json_t *x = json_array_get(j, (size_t)i);
        if (!json_is_number(x))
            return fail(s, "\"delays\"[%d] must be a number, not %s", i, type_name(x));
        P->M->delays[i] = json_number_value(x);
    }
    return DCM_OK;
}

/* ------------------------------------------------------------------ */
/* spectral DCM ("analysis": "csd")                                     */

static const char *const csd_top_keys[] = {
    "analysis", "TR", "TE", "scans", "timeseries", "regions", "confounds", "a", "options", NULL
};
static const char *const csd_option_keys[] = {"order", "maxit", "maxnodes", NULL};

/* A whole number in [lo, hi] from "options".key into *out (kept when absent). */
static int csd_option_int(const spec_ctx *s, json_t *opt, const char *key, int lo, int hi,
                          const char *what, int *out)
{
    json_t *j = json_object_get(opt, key);
    if (!j)
        return DCM_OK;
    if (!json_is_integer(j) || json_integer_value(j) < lo || json_integer_value(j) > hi)
        return fail(s, "\"options\".\"%s\" is %s; it must be a whole number of %s from %d to %d", key,
                    json_is_integer(j) ? "out of range" : type_name(j), what, lo, hi);
    *out = (int)json_integer_value(j);
    return DCM_OK;
}

/* The keys of a task spec a resting-state model has no use for: refused
 * with the reason, not ignored (a half-converted task spec would be fitted
 * as something else than its author meant). */
static int csd_refuse_task_keys(const spec_ctx *s, json_t *root)
{
    static const char *const task_only[] = {"inputs", "events", "inputs_microtime", "b", "c", "d",
                                            "delays", NULL};
    for (int i = 0; task_only[i]; i++)
        if (json_object_get(root, task_only[i]))
            return fail(s, "\"%s\" is given, but spectral DCM (\"analysis\": \"csd\") has no "
                        "experimental inputs: it fits the cross-spectra of resting-state data with "
                        "a model driven by endogenous fluctuations, so \"inputs\", \"events\", "
                        "\"inputs_microtime\", \"b\", \"c\", \"d\" and \"delays\" do not apply; remove "
                        "\"%s\" or drop \"analysis\": \"csd\" to fit a task DCM", task_only[i],
                        task_only[i]);
    return check_keys(s, root, csd_top_keys, " of a spectral DCM spec");
}

/* A spectral DCM spec: TR, timeseries, regions, a; optional TE (0.04),
 * scans, confounds, options {order, maxit, maxnodes}. */
static int load_csd(spec_ctx *s, json_t *root, int flags, dcm_problem **out)
{
    *out = NULL;
    int rc = csd_refuse_task_keys(s, root);
    if (rc)
        return rc;
    double TR, TE = 0.04;
    if ((rc = get_number(s, root, "TR", "repetition time in seconds", &TR)) ||
        (json_object_get(root, "TE") && (rc = get_number(s, root, "TE", "echo time in seconds", &TE))))
        return rc;
    char trmsg[300];
    if (dcm_check_tr(TR, trmsg, sizeof trmsg))
        return fail(s, "%s", trmsg);
    if ((rc = get_regions(s, root)))
        return rc;
    if (s->voi)
        return fail(s, "spectral DCM takes the regions' series from \"timeseries\"; VOI files in "
                    "\"regions\" are not supported for \"analysis\": \"csd\" yet");
    const int n = s->n;
    double *a = calloc((size_t)n * n, sizeof(double));
    if (!a)
        return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
    io_table ts = {0};
    char *tpath = NULL;
    dcm_problem *P = NULL;
    int edges;
    json_t *ja = json_object_get(root, "a");
    if (!ja) {
        rc = fail(s, "missing \"a\" (the connections: an %dx%d matrix, row = target, column = "
                  "source, or a list of edges \"FROM -> TO\")", n, n);
        goto done;
    }
    if ((rc = parse_conn(s, ja, "\"a\"", a, &edges)))
        goto done;
    json_t *js = json_object_get(root, "scans");
    if (js && (!json_is_integer(js) || json_integer_value(js) < 1 || json_integer_value(js) > 10000000)) {
        rc = json_is_integer(js)
                 ? fail(s, "\"scans\" is %lld; it must be a whole number of scans from 1 to 10000000",
                        (long long)json_integer_value(js))
                 : fail(s, "\"scans\" must be a whole number of scans >= 1, not %s", type_name(js));
        goto done;
    }
    /* simulation (dcm simulate) with "scans": the series need not exist */
    const int design_only = (flags & IO_SPEC_DESIGN_ONLY) && js;
    if (!design_only && (rc = load_timeseries(s, root, &ts, &tpath)))
        goto done;
    if (!design_only && js && json_integer_value(js) != ts.rows) {
        rc = fail(s, "\"scans\" must be the number of rows of the time series %s (%d)", tpath, ts.rows);
        goto done;
    }
    const int scans = design_only ? (int)json_integer_value(js) : ts.rows;
    if (!(P = dcm_problem_alloc_csd(n, scans)) || !(P->source = strdup(s->path))) {
        rc = dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (!(P->region_names[i] = strdup(s->regions[i]))) {
            rc = dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
        if (design_only)
            continue;
        int c = io_table_find(&ts, s->regions[i]);
        memcpy(P->Y + (size_t)i * P->v, ts.data + (size_t)c * ts.rows, sizeof(double) * (size_t)P->v);
    }
    P->M->TR = TR;
    P->M->TE = TE;
    /* SPM's spectral priors always free the self-connections */
    for (int k = 0; k < n * n; k++)
        P->M->a[k] = (k % (n + 1) == 0) ? 1.0 : a[k];
    json_t *opt = json_object_get(root, "options");
    if (opt) {
        if (!json_is_object(opt)) {
            rc = fail(s, "\"options\" must be an object, not %s", type_name(opt));
            goto done;
        }
        if ((rc = check_keys(s, opt, csd_option_keys, " in \"options\" of a spectral DCM spec")) ||
            (rc = csd_option_int(s, opt, "order", 2, 64, "lags (the MAR order of the spectra)",
                                 &P->csd_order)) ||
            (rc = csd_option_int(s, opt, "maxit", 1, 1000000, "iterations", &P->maxit)) ||
            (rc = csd_option_int(s, opt, "maxnodes", 1, 1000, "regions", &P->maxnodes)))
            goto done;
    }
    if (!design_only && (rc = load_confounds(s, root, P, tpath)))
        goto done;
    rc = dcm_problem_validate(P, s->err);
done:
    if (rc) {
        dcm_problem_free(P);
        P = NULL;
    }
    *out = P;
    free(a);
    io_table_free(&ts);
    free(tpath);
    return rc;
}

/* ------------------------------------------------------------------ */
/* regression DCM ("method": "rdcm" | "sparse_rdcm")                     */

static const char *const rdcm_keys[] = {"data", "filter", "p0", "restarts", "order", "seed", NULL};

/* "method": absent (0: classical DCM), "rdcm" (1), "sparse_rdcm" (2). */
static int spec_method(const spec_ctx *s, json_t *root, int *method)
{
    json_t *j = json_object_get(root, "method");
    *method = 0;
    if (!j)
        return DCM_OK;
    const char *v = json_is_string(j) ? json_string_value(j) : NULL;
    if (v && !strcmp(v, "rdcm"))
        *method = 1;
    else if (v && !strcmp(v, "sparse_rdcm"))
        *method = 2;
    else if (!v || strcmp(v, "dcm"))
        return fail(s, "\"method\" must be \"dcm\" (classical DCM, the default), \"rdcm\" "
                    "(regression DCM) or \"sparse_rdcm\" (sparse regression DCM), not %s%s%s",
                    v ? "\"" : "", v ? v : type_name(j), v ? "\"" : "");
    return DCM_OK;
}

/* Keys of a task spec that regression DCM has no use for: a clear refusal
 * rather than a silent drop. */
static int rdcm_refuse_keys(const spec_ctx *s, json_t *root)
{
    if (json_object_get(root, "b"))
        return fail(s, "\"b\" is given, but regression DCM (\"method\": \"rdcm\" or "
                    "\"sparse_rdcm\") is linear and has no B (modulatory) matrix; drop \"b\" or "
                    "use \"method\": \"dcm\"");
    if (json_object_get(root, "d"))
        return fail(s, "\"d\" is given, but regression DCM (\"method\": \"rdcm\" or "
                    "\"sparse_rdcm\") is linear and has no D (nonlinear gating) matrix; drop \"d\" "
                    "or use \"method\": \"dcm\"");
    static const char *const unused[] = {"delays", "options", "confounds", "analysis", NULL};
    static const char *const why[] = {
        "rDCM's fixed haemodynamic response has no slice-timing delays",
        "rDCM's options go in \"rdcm\": {\"data\", \"filter\", \"p0\", \"restarts\", "
        "\"order\", \"seed\"}",
        "rDCM models only a constant confound (TAPAS); regress other confounds out first",
        "regression DCM fits the time series in the frequency domain (task or resting state "
        "without \"analysis\")"};
    for (int i = 0; unused[i]; i++)
        if (json_object_get(root, unused[i]))
            return fail(s, "\"%s\" is not used by regression DCM: %s", unused[i], why[i]);
    if (json_object_get(root, "inputs") && !json_object_get(root, "c"))
        return fail(s, "missing \"c\" (the driving inputs of the rDCM: an n x m matrix, row = "
                    "region, column = input, or {input: [regions]})");
    if (!json_object_get(root, "inputs") &&
        (json_object_get(root, "c") || json_object_get(root, "events") ||
         json_object_get(root, "inputs_microtime")))
        return fail(s, "\"c\", \"events\" or \"inputs_microtime\" is given without \"inputs\"; "
                    "list the inputs (a resting-state rDCM has none of the four)");
    return DCM_OK;
}

/* "rdcm": {"data", "filter", "p0", "restarts", "order", "seed"}. */
static int parse_rdcm(const spec_ctx *s, json_t *root, int method, dcm_rdcm_spec *o)
{
    o->method = method == 2;
    json_t *r = json_object_get(root, "rdcm");
    if (!r)
        return DCM_OK;
    if (!json_is_object(r))
        return fail(s, "\"rdcm\" must be an object {\"data\": \"empirical\", \"filter\": 5, ...}, "
                    "not %s", type_name(r));
    if (check_keys(s, r, rdcm_keys, " in \"rdcm\""))
        return DCM_ERR_INPUT;
    json_t *j;
    if ((j = json_object_get(r, "data"))) {
        const char *v = json_is_string(j) ? json_string_value(j) : "";
        if (!strcmp(v, "empirical"))
            o->data = 1;
        else if (!strcmp(v, "simulated"))
            o->data = 0;
        else
            return fail(s, "\"rdcm\".\"data\" must be \"empirical\" (measured data, TAPAS type "
                        "'r') or \"simulated\" (TAPAS type 's')");
    }
    if ((j = json_object_get(r, "filter"))) {
        if (!json_is_number(j) || !(json_number_value(j) >= 0))
            return fail(s, "\"rdcm\".\"filter\" must be a number >= 0 (the filter strength, "
                        "TAPAS's filter_str: 5)");
        o->filter = json_number_value(j);
    }
    if ((j = json_object_get(r, "order"))) {
        const char *v = json_is_string(j) ? json_string_value(j) : "";
        if (!strcmp(v, "random"))
            o->order = 0;
        else if (!strcmp(v, "fixed"))
            o->order = 1;
        else
            return fail(s, "\"rdcm\".\"order\" must be \"random\" (TAPAS: a random update order "
                        "per restart) or \"fixed\" (deterministic, one restart)");
    }
    if ((j = json_object_get(r, "restarts"))) {
        if (!json_is_integer(j) || json_integer_value(j) < 1 || json_integer_value(j) > 1000000)
            return fail(s, "\"rdcm\".\"restarts\" must be a whole number from 1 to 1000000 "
                        "(TAPAS: 100), not %s", json_is_integer(j) ? "out of range" : type_name(j));
        o->restarts = (int)json_integer_value(j);
    }
    if ((j = json_object_get(r, "seed"))) {
        if (!json_is_integer(j) || json_integer_value(j) < 0)
            return fail(s, "\"rdcm\".\"seed\" must be a whole number >= 0");
        o->seed = (unsigned long long)json_integer_value(j);
    }
    if ((j = json_object_get(r, "p0"))) {
        int one = json_is_number(j);
        if (!one && (!json_is_array(j) || json_array_size(j) == 0 ||
                     json_array_size(j) > 1000))
            return fail(s, "\"rdcm\".\"p0\" must be a number or a list of 1 to 1000 numbers in "
                        "(0, 1) (TAPAS's grid: 0.05, 0.10, ..., 0.95)");
        int k = one ? 1 : (int)json_array_size(j);
        if (!(o->p0 = malloc(sizeof(double) * (size_t)k)))
            return dcm_error_set(s->err, DCM_ERR_SYSTEM, "out of memory");
        o->np0 = k;
        for (int i = 0; i < k; i++) {
            json_t *x = one ? j : json_array_get(j, (size_t)i);
            if (!json_is_number(x))
                return fail(s, "\"rdcm\".\"p0\"[%d] must be a number in (0, 1), not %s", i,
                            type_name(x));
            double p = json_number_value(x);
            if (!(p > 0 && p < 1) && one)
                return fail(s, "\"rdcm\".\"p0\" is %g; a prior inclusion probability must lie "
                            "strictly between 0 and 1", p);
            if (!(p > 0 && p < 1))
                return fail(s, "\"rdcm\".\"p0\"[%d] is %g; a prior inclusion probability must "
                            "lie strictly between 0 and 1", i, p);
            o->p0[i] = p;
        }
    }
    if (!o->method && (json_object_get(r, "p0") || json_object_get(r, "restarts") ||
                       json_object_get(r, "order")))
        return fail(s, "\"rdcm\": \"p0\", \"restarts\" and \"order\" belong to sparse rDCM; "
                    "use \"method\": \"sparse_rdcm\" or drop them");
    return DCM_OK;
}

/* "analysis": absent or "task" (0), "csd" (1); an input error otherwise. */
static int spec_analysis(const spec_ctx *s, json_t *root, int *csd)
{
    json_t *j = json_object_get(root, "analysis");
    *csd = 0;
    if (!j)
        return DCM_OK;
    const char *v = json_is_string(j) ? json_string_value(j) : NULL;
    if (v && !strcmp(v, "csd"))
        *csd = 1;
    else if (!v || strcmp(v, "task"))
        return fail(s, "\"analysis\" must be \"task\" (fit the BOLD time series, the default) or "
                    "\"csd\" (spectral DCM of resting-state data), not %s%s%s",
                    v ? "\"" : "", v ? v : type_name(j), v ? "\"" : "");
    return DCM_OK;
}

int io_spec_load(const char *path, dcm_problem **out, dcm_error *err)
{
    return io_spec_load_ex(path, IO_SPEC_DEFAULT, out, err);
}

static int spec_load_doc(json_t *root, const char *path, const char *dir, int flags,
                         dcm_problem **out, dcm_error *err);

int io_spec_load_ex(const char *path, int flags, dcm_problem **out, dcm_error *err)
{
    *out = NULL;
    FILE *f = io_input_open(path, "spec", err);   /* a FIFO must not hang */
    if (!f)
        return err && err->code ? err->code : DCM_ERR_INPUT;
    json_error_t je;
    io_skip_bom(f);
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!root)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s:%d:%d: invalid JSON: %s", path, je.line,
                             je.column, je.text);
    return spec_load_doc(root, path, NULL, flags, out, err);
}

int io_spec_load_text(const char *text, const char *dir, const char *name, int flags,
                      dcm_problem **out, dcm_error *err)
{
    *out = NULL;
    if (!name || !name[0])
        name = "spec";
    if (!text)
        return dcm_error_set(err, DCM_ERR_USAGE, "%s: no JSON text given", name);
    json_error_t je;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s:%d:%d: invalid JSON: %s", name, je.line,
                             je.column, je.text);
    return spec_load_doc(root, name, dir ? dir : "", flags, out, err);
}

/* Loads the parsed spec root (consumed); dir: where relative file names
 * resolve (NULL: the directory of path). */
static int spec_load_doc(json_t *root, const char *path, const char *dir, int flags,
                         dcm_problem **out, dcm_error *err)
{
    spec_ctx s = {.path = path, .err = err};
    int rc = DCM_OK;
    dcm_problem *P = NULL;
    io_table ts = {0};
    char *tpath = NULL;
    io_voi *vois = NULL;
    char **vpaths = NULL;
    structure st = {0};
    const char *slash = dir ? NULL : strrchr(path, '/');
    size_t ld = dir ? strlen(dir) : slash ? (size_t)(slash - path) + 1 : 0;
    const int add_slash = dir && ld && dir[ld - 1] != '/';
    s.dir = malloc(ld + 2);
    if (!s.dir) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    memcpy(s.dir, dir ? dir : path, ld);
    if (add_slash)
        s.dir[ld++] = '/';
    s.dir[ld] = '\0';

    if (!json_is_object(root)) {
        rc = fail(&s, "the spec must be a JSON object {\"TR\": ..., \"regions\": [...], ...}, not %s",
                  type_name(root));
        goto done;
    }
    int csd;
    if (json_object_get(root, "method") && json_object_get(root, "analysis")) {
        rc = fail(&s, "give \"method\" (regression DCM) or \"analysis\" (spectral DCM), not both: "
                  "rDCM fits task or resting-state series without \"analysis\"");
        goto done;
    }
    if ((rc = spec_analysis(&s, root, &csd)))
        goto done;
    if (csd) {
        rc = load_csd(&s, root, flags, &P);
        goto done;
    }
    int method;
    if ((rc = spec_method(&s, root, &method)))
        goto done;
    if ((rc = check_keys(&s, root, top_keys, "")))
        goto done;
    if (!method && json_object_get(root, "rdcm")) {
        rc = fail(&s, "\"rdcm\" options are given but \"method\" is not \"rdcm\" or "
                  "\"sparse_rdcm\"; add \"method\": \"rdcm\"");
        goto done;
    }
    if (method && (rc = rdcm_refuse_keys(&s, root)))
        goto done;
    double TR, TE = 0.04;   /* rDCM's fixed HRF does not use TE: optional there */
    if ((rc = get_number(&s, root, "TR", "repetition time in seconds", &TR)) ||
        ((!method || json_object_get(root, "TE")) &&
         (rc = get_number(&s, root, "TE", "echo time in seconds", &TE))))
        goto done;
    char trmsg[300];
    if (dcm_check_tr(TR, trmsg, sizeof trmsg)) {
        rc = fail(&s, "%s", trmsg);
        goto done;
    }
    if (!(TE > 0.0) || !isfinite(TE)) {
        rc = fail(&s, "\"TE\" is %g; the echo time must be a positive number of seconds", TE);
        goto done;
    }
    if ((rc = get_regions(&s, root)) ||
        ((!method || json_object_get(root, "inputs")) &&
         (rc = get_names(&s, root, "inputs", &s.inputs, &s.m))))
        goto done;
    const int n = s.n, m = s.m;
    st.a = calloc((size_t)n * n, sizeof(double));
    st.b = calloc((size_t)n * n * m + 1, sizeof(double));
    st.c = calloc((size_t)n * m + 1, sizeof(double));
    st.d = calloc((size_t)n * n * n, sizeof(double));
    if (!st.a || !st.b || !st.c || !st.d) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    if ((rc = parse_structure(&s, root, &st)))
        goto done;
    int scans = 0;
    json_t *js = json_object_get(root, "scans");
    if (js && (!json_is_integer(js) || json_integer_value(js) < 1 || json_integer_value(js) > 10000000)) {
        rc = fail(&s, "\"scans\" must be a whole number of scans >= 1, not %s", type_name(js));
        goto done;
    }
    if (js)
        scans = (int)json_integer_value(js);
    const int design_only = (flags & IO_SPEC_DESIGN_ONLY) && scans > 0;
    int from_ts = 0;   /* some region's series comes from "timeseries" */
    for (int i = 0; i < n; i++)
        from_ts |= !(s.voi && s.voi[i]);
    const char *scans_from = "\"scans\"";
    if ((flags & IO_SPEC_DESIGN_ONLY) && !js && from_ts && !json_object_get(root, "timeseries")) {
        /* simulation: say what sets the length, not only that data are missing */
        rc = fail(&s, "missing \"scans\" (the number of scans to simulate) or \"timeseries\" "
                  "(a TSV whose rows give it)");
        goto done;
    }
    if (!design_only && from_ts) {
        if ((rc = load_timeseries(&s, root, &ts, &tpath)))
            goto done;
        if (scans > 0 && ts.rows != scans) {
            rc = fail(&s, "\"scans\" is %d but the time series %s has %d rows", scans, tpath, ts.rows);
            goto done;
        }
        scans = ts.rows;
        scans_from = tpath;
    }
    if (!design_only && s.voi) {
        vois = calloc((size_t)n, sizeof *vois);
        vpaths = calloc((size_t)n, sizeof *vpaths);
        if (!vois || !vpaths) {
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
        if ((rc = load_vois(&s, vois, &scans, &scans_from, vpaths)))
            goto done;
    }

    P = method ? dcm_problem_alloc_rdcm(n, m, scans) : dcm_problem_alloc(n, m, scans, st.any_d);
    if (!P || !(P->source = strdup(path))) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++)
        if (!(P->region_names[i] = strdup(s.regions[i]))) {
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
    for (int j = 0; j < m; j++)
        if (!(P->input_names[j] = strdup(s.inputs[j]))) {
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
    if (!design_only)
        for (int i = 0; i < n; i++) {
            if (vois && vois[i].u) {
                memcpy(P->Y + (size_t)i * P->v, vois[i].u, sizeof(double) * (size_t)P->v);
                continue;
            }
            int c = io_table_find(&ts, s.regions[i]);
            memcpy(P->Y + (size_t)i * P->v, ts.data + (size_t)c * ts.rows,
                   sizeof(double) * (size_t)P->v);
        }
    model_dcm *M = P->M;
    M->TR = TR;
    M->TE = TE;
    if (method) {   /* regression DCM: the switches, the inputs by TAPAS's rule, options */
        memcpy(M->a, st.a, sizeof(double) * (size_t)n * n);
        for (int i = 0; i < n; i++)
            M->a[i + (size_t)i * n] = 1.0;   /* TAPAS estimates every self-connection */
        memcpy(M->c, st.c, sizeof(double) * (size_t)n * m);
        if ((rc = parse_rdcm(&s, root, method, &P->rdcm)) ||
            (m > 0 && (rc = load_inputs(&s, root, P, IO_EVENTS_TAPAS))))
            goto done;
        rc = dcm_problem_validate(P, err);
        goto done;
    }
    int nonlinear = st.any_d;
    if ((rc = parse_options(&s, root, P, &nonlinear)))
        goto done;
    if (nonlinear != M->nonlinear) {
        if (st.any_d) {
            rc = fail(&s, "\"options\".\"nonlinear\" is false but \"d\" switches are on; drop one");
            goto done;
        }
        M->nonlinear = nonlinear;
        model_dcm_layout_init(&M->L, n, m, nonlinear);
    }
    memcpy(M->a, st.a, sizeof(double) * (size_t)n * n);
    memcpy(M->b, st.b, sizeof(double) * (size_t)n * n * m);
    memcpy(M->c, st.c, sizeof(double) * (size_t)n * m);
    memcpy(M->d, st.d, sizeof(double) * (size_t)n * n * n);
    if ((rc = load_delays(&s, root, P)) ||
        (!design_only && (rc = load_confounds(&s, root, P, scans_from))) ||
        (rc = load_inputs(&s, root, P, IO_EVENTS_SPM)))
        goto done;
    /* as SPM: without "confounds", the first VOI's xY.X0 */
    for (int i = 0; vois && !P->X0 && !json_object_get(root, "confounds") && i < n; i++)
        if (vois[i].u) {
            if (vois[i].nx0 > 0) {
                P->nx0 = vois[i].nx0;
                P->X0 = vois[i].X0;
                vois[i].X0 = NULL;
            }
            break;
        }
    rc = dcm_problem_validate(P, err);

done:
    if (rc != DCM_OK) {
        dcm_problem_free(P);
        P = NULL;
    }
    *out = P;
    io_table_free(&ts);
    free(tpath);
    free(st.a);
    free(st.b);
    free(st.c);
    free(st.d);
    for (int i = 0; vois && i < s.n; i++)
        io_voi_free(&vois[i]);
    for (int i = 0; vpaths && i < s.n; i++)
        free(vpaths[i]);
    free(vois);
    free(vpaths);
    free(s.voi);
    free(s.regions);
    free(s.inputs);
    free(s.dir);
    json_decref(root);
    return rc;
}
