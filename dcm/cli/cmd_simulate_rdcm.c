/* cmd_simulate_rdcm.c — `dcm simulate` for rDCM specs (cmd_simulate_rdcm.h). */
#include "dcm/cli/cmd_simulate_rdcm.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/cli/cli.h"
#include "io/io_atomic.h"
#include "io/io_result.h"
#include "io/io_tsv.h"
#include "models/model_rdcm_sim.h"

/* rows x cols block (lists of rows; numbers) into column-major; `pre`
 * names where the block sits in messages */
static int matrix(const char *file, json_t *root, const char *pre, const char *key, int rows,
                  int cols, double *out, dcm_error *err)
{
    json_t *x = json_object_get(root, key);
    int ok = json_is_array(x) && (int)json_array_size(x) == rows;
    for (int i = 0; ok && i < rows; i++) {
        json_t *row = json_array_get(x, (size_t)i);
        ok = json_is_array(row) && (int)json_array_size(row) == cols;
        for (int j = 0; ok && j < cols; j++) {
            json_t *e = json_array_get(row, (size_t)j);
            ok = json_is_number(e) && isfinite(json_number_value(e));
            out[i + (size_t)rows * j] = json_number_value(e);
        }
    }
    if (!ok)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: %s\"%s\" must be a %d x %d matrix of numbers "
                             "(a list of %d rows; row = target region, column = %s)", file, pre, key,
                             rows, cols, rows, strcmp(key, "C") ? "source region" : "input");
    return DCM_OK;
}

/* A result's names (when it has them) must be the spec's, in order. */
static int same_names(const char *path, json_t *root, const char *key, char *const *names, int k,
                      const char *spec, dcm_error *err)
{
    json_t *x = json_object_get(root, key);
    if (!x)
        return DCM_OK;
    int ok = json_is_array(x) && (int)json_array_size(x) == k;
    for (int i = 0; ok && i < k; i++) {
        const char *s = json_string_value(json_array_get(x, (size_t)i));
        ok = s && !strcmp(s, names[i]);
    }
    if (!ok)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: its \"%s\" are not the %d %s of %s (same "
                             "names, same order); the result is of another model", path, key, k,
                             key, spec);
    return DCM_OK;
}

/* A and C from --params (truth blocks, or a result's "posterior_mean"),
 * checked against the switches. */
static int load_params(const char *path, const dcm_problem *P, double *A, double *C,
                       dcm_error *err)
{
    const int n = P->n, m = P->m;
    json_t *j = io_json_load(path, "--params file", 1, err);
    if (!j)
        return err->code ? err->code : DCM_ERR_INPUT;
    json_t *pm = json_object_get(j, "posterior_mean"), *blocks = pm ? pm : j;
    const char *pre = pm ? "\"posterior_mean\"." : "";
    int rc = DCM_OK;
    if (pm && !json_is_object(pm))
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"posterior_mean\" must be an object with the "
                           "blocks \"A\" and \"C\" (an rDCM result)", path);
    if (!rc && pm)
        rc = same_names(path, j, "regions", P->region_names, n, P->source, err);
    if (!rc && pm)
        rc = same_names(path, j, "inputs", P->input_names, m, P->source, err);
    if (!rc)
        rc = matrix(path, blocks, pre, "A", n, n, A, err);
    if (!rc)
        rc = matrix(path, blocks, pre, "C", n, m, C, err);
    json_decref(j);
    const double *a = P->M->a, *c = P->M->c;
    for (int i = 0; i < n && !rc; i++)
        for (int k = 0; k < n && !rc; k++)
            if (i != k && A[i + (size_t)n * k] != 0 && a[i + (size_t)n * k] == 0)
                rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: %sA[%d][%d] (%s -> %s) is %g but the "
                                   "spec's \"a\" switches that connection off", path, pre, i, k,
                                   P->region_names[k], P->region_names[i], A[i + (size_t)n * k]);
    for (int i = 0; i < n && !rc; i++)
        for (int k = 0; k < m && !rc; k++)
            if (C[i + (size_t)n * k] != 0 && c[i + (size_t)n * k] == 0)
                rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: %sC[%d][%d] (%s -> %s) is %g but the "
                                   "spec's \"c\" switches that input off", path, pre, i, k,
                                   P->input_names[k], P->region_names[i], C[i + (size_t)n * k]);
    return rc;
}

int simulate_rdcm(const dcm_problem *P, const char *params, double snr, unsigned long seed,
                  const char *output)
{
    const int n = P->n, m = P->m, N = P->v, r = MODEL_DCM_MICROTIME, Nu = P->M->nu;
    if (m == 0)
        return cli_fail("simulate", DCM_ERR_INPUT, "%s: a resting-state rDCM spec (no \"inputs\") "
                        "cannot be simulated: TAPAS's generator drives the network only through "
                        "its inputs (the states start at 0 and stay there without them); add "
                        "\"inputs\", \"events\" and \"c\", or simulate resting state with a "
                        "spectral spec (\"analysis\": \"csd\")", P->source);
    if (!params)
        return cli_fail("simulate", DCM_ERR_USAGE, "an rDCM spec needs --params with the blocks "
                        "\"A\" (regions x regions, Hz) and \"C\" (regions x inputs, TAPAS units), "
                        "or an rDCM result JSON");
    if (Nu != N * r)   /* io_spec samples the inputs at TR/16, the generator's micro-time */
        return cli_fail("simulate", DCM_ERR_INPUT, "%s: the inputs have %d micro-time bins; "
                        "expected %d (%d per scan)", P->source, Nu, N * r, r);
    dcm_error err = {0, ""};
    int rc = DCM_OK;
    double *A = calloc((size_t)n * n, sizeof(double));
    double *C = calloc((size_t)n * m, sizeof(double));
    double *u = malloc(sizeof(double) * (size_t)Nu * m);
    double *y = malloc(sizeof(double) * (size_t)N * n);
    if (!A || !C || !u || !y)
        rc = dcm_error_set(&err, DCM_ERR_SYSTEM, "out of memory");
    /* model_dcm keeps u row by row (u[t m + j]); the generator wants columns */
    for (int t = 0; !rc && t < Nu; t++)
        for (int j = 0; j < m; j++)
            u[t + (size_t)Nu * j] = P->M->u[(size_t)t * m + j];
    if (!rc)
        rc = load_params(params, P, A, C, &err);
    if (!rc)
        rc = model_rdcm_generate(A, C, n, u, m, N, r, P->M->TR, snr, seed, P->region_names, NULL, y,
                                 &err);
    if (!rc)
        rc = io_tsv_write(output, N, n, y, (const char *const *)P->region_names, &err);
    free(A);
    free(C);
    free(u);
    free(y);
    return rc ? cli_report("simulate", &err) : DCM_OK;
}
