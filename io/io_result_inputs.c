/* io_result_inputs.c — the "design" block of a result (see
 * io_result_inputs.h). */
#include "io/io_result_inputs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/model_dcm.h"

/* Add v to o under key; returns -1 when anything is missing. */
static int put(json_t *o, const char *key, json_t *v)
{
    return (v && json_object_set_new(o, key, v) == 0) ? 0 : -1;
}

/* run-length code of input k: [[first_bin, bins, value], ...], zero runs left out */
static json_t *runs(const model_dcm *M, int k)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    const int nu = M->nu, m = M->m;
    for (int b = 0; b < nu;) {
        double x = M->u[(size_t)b * m + k];
        int e = b + 1;
        while (e < nu && M->u[(size_t)e * m + k] == x)
            e++;
        if (x != 0.0 && isfinite(x)) {
            json_t *r = json_pack("[iif]", b, e - b, x);
            if (!r || json_array_append_new(a, r)) {
                json_decref(a);
                return NULL;
            }
        }
        b = e;
    }
    return a;
}

/* does column c of the v x k confound matrix hold one value? */
static int constant_column(const double *X, int v, int c)
{
    for (int s = 1; s < v; s++)
        if (X[s + (size_t)c * v] != X[(size_t)c * v])
            return 0;
    return v > 0;
}

json_t *io_result_design_json(const dcm_problem *P)
{
    if (!P || !P->M)
        return json_null();
    const model_dcm *M = P->M;
    json_t *o = json_object(), *in = json_object();
    int bad = !o || !in;
    bad |= !o || put(o, "microtime_dt", json_real(M->TR / MODEL_DCM_MICROTIME));
    bad |= !o || put(o, "microtime_bins", json_integer(M->u ? M->nu : 0));
    bad |= !o || put(o, "scans", json_integer(P->v));
    for (int k = 0; !bad && k < P->m; k++)
        bad |= put(in, P->input_names[k], M->u ? runs(M, k) : json_array());
    if (!bad) {
        bad |= put(o, "inputs", in);
        in = NULL;
    }
    int constant = P->nx0 == 0 || !P->X0;
    for (int c = 0; !constant && c < P->nx0; c++)
        constant = constant_column(P->X0, P->v, c);
    bad |= !o || put(o, "confound_columns", json_integer(P->X0 ? P->nx0 : 0));
    bad |= !o || put(o, "confound_constant", json_boolean(constant));
    json_decref(in);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

void io_result_design_free(io_result_design *d)
{
    free(d->u);
    memset(d, 0, sizeof *d);
    d->confound_columns = d->confound_constant = -1;
}

int io_result_design_load(const char *path, json_t *root, char *const *inputs, int m,
                          io_result_design *d, dcm_error *err)
{
    memset(d, 0, sizeof *d);
    d->confound_columns = d->confound_constant = -1;
    json_t *o = json_object_get(root, "design");
    if (!o || json_is_null(o))
        return DCM_OK;
    json_t *dt = json_object_get(o, "microtime_dt"), *nu = json_object_get(o, "microtime_bins");
    json_t *v = json_object_get(o, "scans"), *in = json_object_get(o, "inputs");
    if (!json_is_object(o) || !json_is_number(dt) || !(json_number_value(dt) > 0) ||
        !json_is_integer(nu) || json_integer_value(nu) < 0 || json_integer_value(nu) > 100000000 ||
        !json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 10000000 ||
        !json_is_object(in))
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: \"design\" must hold \"microtime_dt\" (> 0), \"microtime_bins\", "
                             "\"scans\" and \"inputs\"", path);
    json_t *cc = json_object_get(o, "confound_columns"), *ck = json_object_get(o, "confound_constant");
    d->confound_columns = json_is_integer(cc) ? (int)json_integer_value(cc) : -1;
    d->confound_constant = json_is_boolean(ck) ? json_is_true(ck) : -1;
    d->dt = json_number_value(dt);
    d->v = (int)json_integer_value(v);
    d->m = m;
    const int n_u = (int)json_integer_value(nu);
    if (!n_u || !m)
        return DCM_OK;
    /* bounded by what a fit can have (16 bins per scan), not by what a file claims */
    if (d->v < 1 || n_u > MODEL_DCM_MICROTIME * d->v || (double)n_u * m > 2e7)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: \"design\" has %d micro-time bins for %d scans and %d inputs; a fit has %d "
                             "bins per scan (and at most 2e7 values in all)", path, n_u, d->v, m,
                             MODEL_DCM_MICROTIME);
    if (!(d->u = calloc((size_t)n_u * (size_t)m, sizeof(double))))
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    for (int k = 0; k < m; k++) {
        json_t *r = json_object_get(in, inputs[k]);
        if (!json_is_array(r)) {
            io_result_design_free(d);
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"design\".\"inputs\" has no runs for the input "
                                 "\"%s\"", path, inputs[k]);
        }
        for (size_t i = 0; i < json_array_size(r); i++) {
            json_t *t = json_array_get(r, i);
            json_t *b0 = json_array_get(t, 0), *len = json_array_get(t, 1), *x = json_array_get(t, 2);
            if (!json_is_array(t) || json_array_size(t) != 3 || !json_is_integer(b0) || !json_is_integer(len) ||
                !json_is_number(x) || json_integer_value(b0) < 0 || json_integer_value(len) < 1 ||
                json_integer_value(b0) + json_integer_value(len) > n_u) {
                io_result_design_free(d);
                return dcm_error_set(err, DCM_ERR_INPUT,
                                     "%s: \"design\".\"inputs\".\"%s\" run %zu must be [first_bin, bins, "
                                     "value] within the %d micro-time bins", path, inputs[k], i + 1, n_u);
            }
            const int s = (int)json_integer_value(b0), e = s + (int)json_integer_value(len);
            for (int b = s; b < e; b++)
                d->u[b + (size_t)k * n_u] = json_number_value(x);
        }
    }
    d->nu = n_u;
    return DCM_OK;
}
