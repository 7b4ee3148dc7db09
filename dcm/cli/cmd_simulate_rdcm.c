/* cmd_simulate_rdcm.c — `dcm simulate` for rDCM specs (cmd_simulate_rdcm.h). */
#include "dcm/cli/cmd_simulate_rdcm.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/cli/cli.h"
#include "dcm/dcm_rdcm.h"
#include "io/io_atomic.h"
#include "io/io_tsv.h"
#include "models/model_rdcm_sim.h"

/* micro-time bins per scan: TAPAS's (every reference case) */
#define SIMULATE_RDCM_R 16

static json_t *load_json(const char *path, const char *what, dcm_error *err)
{
    FILE *f = io_input_open(path, what, err);
    if (!f)
        return NULL;
    io_skip_bom(f);
    json_error_t je;
    json_t *j = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!j)
        dcm_error_set(err, DCM_ERR_INPUT, "%s:%d:%d: invalid JSON: %s", path, je.line, je.column,
                      je.text);
    else if (!json_is_object(j)) {
        dcm_error_set(err, DCM_ERR_INPUT, "%s: must be a JSON object", path);
        json_decref(j);
        j = NULL;
    }
    return j;
}

int simulate_rdcm_method(const char *spec)
{
    dcm_error err = {0, ""};
    FILE *f = io_input_open(spec, "spec", &err);
    if (!f)
        return 0;
    io_skip_bom(f);
    json_t *j = json_loadf(f, 0, NULL);
    fclose(f);
    const char *m = json_string_value(json_object_get(j, "method"));
    int kind = m && !strcmp(m, "rdcm") ? 1 : m && !strcmp(m, "sparse_rdcm") ? 2 : 0;
    json_decref(j);
    return kind;
}

/* The design of an rDCM spec. Until io_spec parses rDCM specs (the rDCM
 * spec loader replaces this), the fields simulation needs: TR, regions
 * and inputs (names), events (a BIDS events.tsv, relative to the spec),
 * scans, a and c as matrices (lists of rows). */
typedef struct {
    double TR;
    int n, m, N;
    char **regions, **inputs;
    double *a, *c;   /* column-major switches */
    double *u;       /* N r x m inputs at micro-time */
} rdcm_design;

static void design_free(rdcm_design *d)
{
    for (int i = 0; i < d->n; i++)
        free(d->regions[i]);
    for (int i = 0; i < d->m; i++)
        free(d->inputs[i]);
    free(d->regions);
    free(d->inputs);
    free(d->a);
    free(d->c);
    free(d->u);
    memset(d, 0, sizeof *d);
}

static int names(const char *spec, json_t *root, const char *key, char ***out, int *count,
                 dcm_error *err)
{
    json_t *x = json_object_get(root, key);
    *count = 0;
    if (!x)
        return DCM_OK;
    if (!json_is_array(x))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"%s\" must be a list of names", spec, key);
    size_t k = json_array_size(x);
    *out = calloc(k ? k : 1, sizeof(char *));
    if (!*out)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    for (size_t i = 0; i < k; i++) {
        const char *s = json_string_value(json_array_get(x, i));
        if (!s || !s[0])
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"%s\"[%zu] must be a name", spec, key, i);
        (*out)[i] = strdup(s);
        *count = (int)i + 1;
        if (!(*out)[i])
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    return DCM_OK;
}

/* rows x cols matrix (lists of rows; numbers or booleans) into column-major */
static int matrix(const char *file, json_t *root, const char *key, int rows, int cols, double *out,
                  dcm_error *err)
{
    json_t *x = json_object_get(root, key);
    int ok = json_is_array(x) && (int)json_array_size(x) == rows;
    for (int i = 0; ok && i < rows; i++) {
        json_t *row = json_array_get(x, (size_t)i);
        ok = json_is_array(row) && (int)json_array_size(row) == cols;
        for (int j = 0; ok && j < cols; j++) {
            json_t *e = json_array_get(row, (size_t)j);
            ok = json_is_number(e) || json_is_boolean(e);
            out[i + (size_t)rows * j] = json_is_boolean(e) ? json_is_true(e) : json_number_value(e);
            ok = ok && isfinite(out[i + (size_t)rows * j]);
        }
    }
    if (!ok)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"%s\" must be a %d x %d matrix of numbers "
                             "(a list of %d rows; row = target region, column = %s)", file, key, rows,
                             cols, rows, strcmp(key, "c") && strcmp(key, "C") ? "source region" : "input");
    return DCM_OK;
}

/* The events file into inputs at micro-time (TAPAS's rule). */
static int events(const char *spec, const char *rel, rdcm_design *d, dcm_error *err)
{
    const char *slash = strrchr(spec, '/');
    size_t ld = rel[0] == '/' || !slash ? 0 : (size_t)(slash - spec) + 1;
    char *path = malloc(ld + strlen(rel) + 1);
    if (!path)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    memcpy(path, spec, ld);
    strcpy(path + ld, rel);
    io_text_table t;
    int rc = io_text_read(path, &t, err);
    if (rc) {
        free(path);
        return rc;
    }
    int co = -1, cd = -1, ct = -1, nev = t.rows - 1;
    for (int c = 0; c < t.cols && t.rows > 0; c++) {
        co = !strcmp(t.cells[c], "onset") ? c : co;
        cd = !strcmp(t.cells[c], "duration") ? c : cd;
        ct = !strcmp(t.cells[c], "trial_type") ? c : ct;
    }
    double *on = malloc(sizeof(double) * (size_t)(nev > 0 ? nev : 1));
    double *du = malloc(sizeof(double) * (size_t)(nev > 0 ? nev : 1));
    int *in = malloc(sizeof(int) * (size_t)(nev > 0 ? nev : 1));
    if (co < 0 || cd < 0 || ct < 0)
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: needs a header with onset, duration and "
                           "trial_type", path);
    else if (!on || !du || !in)
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    for (int e = 0; e < nev && !rc; e++) {
        char **row = t.cells + (size_t)(e + 1) * t.cols;
        if (io_parse_number(row[co], &on[e]) || io_parse_number(row[cd], &du[e]) || on[e] < 0 ||
            du[e] < 0) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s, line %d: onset and duration must be "
                               "seconds >= 0", path, t.line[e + 1]);
            break;
        }
        in[e] = -1;
        for (int i = 0; i < d->m; i++)
            if (!strcmp(row[ct], d->inputs[i]))
                in[e] = i;
    }
    const int Nu = d->N * SIMULATE_RDCM_R;
    if (!rc && !(d->u = calloc((size_t)Nu * d->m, sizeof(double))))
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    if (!rc)
        rc = dcm_rdcm_events_to_inputs(nev, on, du, in, d->m, Nu, d->TR / SIMULATE_RDCM_R, d->u, err);
    free(on);
    free(du);
    free(in);
    free(path);
    io_text_free(&t);
    return rc;
}

static int design_load(const char *spec, rdcm_design *d, dcm_error *err)
{
    memset(d, 0, sizeof *d);
    json_t *root = load_json(spec, "spec", err);
    if (!root)
        return err->code ? err->code : DCM_ERR_INPUT;
    int rc = DCM_OK;
    json_t *tr = json_object_get(root, "TR"), *sc = json_object_get(root, "scans");
    char trmsg[300];
    d->TR = json_number_value(tr);
    if (!json_is_number(tr) || dcm_check_tr(d->TR, trmsg, sizeof trmsg)) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"TR\" must be the repetition time in seconds",
                           spec);
        goto done;
    }
    if (!json_is_integer(sc) || json_integer_value(sc) < 2 || json_integer_value(sc) > 1000000) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: simulation needs \"scans\", the number of scans "
                           "to generate (a whole number >= 2)", spec);
        goto done;
    }
    d->N = (int)json_integer_value(sc);
    if ((rc = names(spec, root, "regions", &d->regions, &d->n, err)) ||
        (rc = names(spec, root, "inputs", &d->inputs, &d->m, err)))
        goto done;
    if (d->n < 1) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"regions\" must name at least one region", spec);
        goto done;
    }
    d->a = calloc((size_t)d->n * d->n, sizeof(double));
    d->c = calloc((size_t)d->n * (d->m ? d->m : 1), sizeof(double));
    if (!d->a || !d->c) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    if ((rc = matrix(spec, root, "a", d->n, d->n, d->a, err)) ||
        (d->m && (rc = matrix(spec, root, "c", d->n, d->m, d->c, err))))
        goto done;
    const char *ev = json_string_value(json_object_get(root, "events"));
    if (d->m && !ev)
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"events\" (a BIDS events.tsv) is needed for "
                           "the inputs", spec);
    else if (d->m)
        rc = events(spec, ev, d, err);
done:
    json_decref(root);
    if (rc)
        design_free(d);
    return rc;
}

/* A and C from --params, checked against the switches. */
static int load_params(const char *path, const rdcm_design *d, double *A, double *C, dcm_error *err)
{
    json_t *j = load_json(path, "--params file", err);
    if (!j)
        return err->code ? err->code : DCM_ERR_INPUT;
    int rc = matrix(path, j, "A", d->n, d->n, A, err);
    if (!rc && d->m)
        rc = matrix(path, j, "C", d->n, d->m, C, err);
    json_decref(j);
    for (int i = 0; i < d->n && !rc; i++)
        for (int k = 0; k < d->n && !rc; k++)
            if (i != k && A[i + (size_t)d->n * k] != 0 && d->a[i + (size_t)d->n * k] == 0)
                rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: A[%d][%d] (%s -> %s) is %g but the spec's "
                                   "\"a\" switches that connection off", path, i, k, d->regions[k],
                                   d->regions[i], A[i + (size_t)d->n * k]);
    for (int i = 0; i < d->n && !rc; i++)
        for (int k = 0; k < d->m && !rc; k++)
            if (C[i + (size_t)d->n * k] != 0 && d->c[i + (size_t)d->n * k] == 0)
                rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: C[%d][%d] (%s -> %s) is %g but the spec's "
                                   "\"c\" switches that input off", path, i, k, d->inputs[k],
                                   d->regions[i], C[i + (size_t)d->n * k]);
    return rc;
}

int simulate_rdcm(const char *spec, const char *params, double snr, unsigned long seed,
                  const char *output)
{
    if (!params)
        return cli_fail("simulate", DCM_ERR_USAGE, "an rDCM spec needs --params with the blocks "
                        "\"A\" (regions x regions, Hz) and \"C\" (regions x inputs, TAPAS units)");
    dcm_error err = {0, ""};
    rdcm_design d;
    if (design_load(spec, &d, &err))
        return cli_report("simulate", &err);
    int rc = DCM_OK;
    double *A = calloc((size_t)d.n * d.n, sizeof(double));
    double *C = calloc((size_t)d.n * (d.m ? d.m : 1), sizeof(double));
    double *y = malloc(sizeof(double) * (size_t)d.N * d.n);
    if (!A || !C || !y)
        rc = dcm_error_set(&err, DCM_ERR_SYSTEM, "out of memory");
    if (!rc)
        rc = load_params(params, &d, A, C, &err);
    if (!rc)
        rc = model_rdcm_generate(A, C, d.n, d.u, d.m, d.N, SIMULATE_RDCM_R, d.TR, snr, seed, d.regions,
                                 NULL, y, &err);
    if (!rc)
        rc = io_tsv_write(output, d.N, d.n, y, (const char *const *)d.regions, &err);
    free(A);
    free(C);
    free(y);
    design_free(&d);
    return rc ? cli_report("simulate", &err) : DCM_OK;
}
