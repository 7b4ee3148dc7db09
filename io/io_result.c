/* io_result.c — results as JSON, parameter files (see io_result.h). */
#include "io/io_result.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_atomic.h"
#include "io/io_params.h"
#include "io/io_result_inputs.h"
#include "io/io_pnames.h"

/* ------------------------------------------------------------------ */
/* building                                                             */

typedef struct {
    int ok;   /* 0 once an allocation failed */
} jb;

static json_t *chk(jb *b, json_t *j)
{
    if (!j)
        b->ok = 0;
    return j;
}

static void set(jb *b, json_t *obj, const char *key, json_t *val)
{
    if (!val || !obj || json_object_set_new(obj, key, val) != 0)
        b->ok = 0;
}

static void push(jb *b, json_t *arr, json_t *val)
{
    if (!val || !arr || json_array_append_new(arr, val) != 0)
        b->ok = 0;
}

static json_t *jnum(jb *b, double x)
{
    return chk(b, isfinite(x) ? json_real(x) : json_null());
}

/* A switch: an integer when whole (as SPM's reference files). */
static json_t *jswitch(jb *b, double x)
{
    if (isfinite(x) && x == floor(x) && fabs(x) < 1e15)
        return chk(b, json_integer((json_int_t)x));
    return jnum(b, x);
}

static json_t *jstrings(jb *b, char *const *s, int k)
{
    json_t *a = chk(b, json_array());
    for (int i = 0; i < k; i++)
        push(b, a, chk(b, json_string(s[i] ? s[i] : "")));
    return a;
}

static json_t *jvec(jb *b, const double *x, int k)
{
    if (!x)
        return chk(b, json_null());
    json_t *a = chk(b, json_array());
    for (int i = 0; i < k; i++)
        push(b, a, jnum(b, x[i]));
    return a;
}

/* rows x cols matrix stored with element (i, j) at x[i*rs + j*cs] as
 * nested rows. mask (same addressing, may be NULL): null where mask == 0.
 * asswitch: integers for whole values. */
static json_t *jmat(jb *b, const double *x, const double *mask, int rows, int cols, int rs,
                    int cs, int asswitch)
{
    if (!x)
        return chk(b, json_null());
    json_t *a = chk(b, json_array());
    for (int i = 0; i < rows; i++) {
        json_t *r = chk(b, json_array());
        for (int j = 0; j < cols; j++) {
            size_t k = (size_t)i * rs + (size_t)j * cs;
            if (mask && mask[k] == 0.0)
                push(b, r, chk(b, json_null()));
            else
                push(b, r, asswitch ? jswitch(b, x[k]) : jnum(b, x[k]));
        }
        push(b, a, r);
    }
    return a;
}

/* The name of index q along axis a of the table (model_layout.h). */
static const char *axis_name(const dcm_problem *P, model_layout_axis a, int q)
{
    return a == MODEL_AXIS_INPUT ? P->input_names[q] : P->region_names[q];
}

/* Slice k of block B, x and mask (may be NULL) pointing at the block's
 * first element: a matrix (nested rows) when the block has columns, a
 * vector when it has rows only, else a number; null where mask == 0. */
static json_t *jslice(jb *b, const model_layout_block *B, const double *x, const double *mask, int k,
                      int asswitch)
{
    const size_t off = (size_t)k * B->rows * B->cols;
    if (B->col_axis)
        return jmat(b, x + off, mask ? mask + off : NULL, B->rows, B->cols, 1, B->rows, asswitch);
    if (mask && !B->row_axis && mask[off] == 0.0)
        return chk(b, json_null());
    if (!B->row_axis)
        return asswitch ? jswitch(b, x[off]) : jnum(b, x[off]);
    json_t *a = chk(b, json_array());
    for (int i = 0; i < B->rows; i++)
        push(b, a, mask && mask[off + i] == 0.0 ? chk(b, json_null())
                   : asswitch ? jswitch(b, x[off + i]) : jnum(b, x[off + i]));
    return a;
}

/* Block B as JSON: per-slice blocks (B, D) as an object keyed by input or
 * region name ({} when there are none), the others as jslice. */
static json_t *jblock(jb *b, const dcm_problem *P, const model_layout_block *B, const double *x,
                      const double *mask, int asswitch)
{
    if (!B->slice_axis)
        return jslice(b, B, x, mask, 0, asswitch);
    json_t *o = chk(b, json_object());
    for (int k = 0; k < B->slices; k++)
        set(b, o, axis_name(P, B->slice_axis, k), jslice(b, B, x, mask, k, asswitch));
    return o;
}

/* Parameter blocks of the flat vector x (np) in SPM's layout, one key per
 * block of the table; entries where mask (np, may be NULL) is 0 are
 * written as null. */
static json_t *jblocks(jb *b, const dcm_problem *P, const double *x, const double *mask)
{
    if (!x)
        return chk(b, json_null());
    model_layout T;
    dcm_problem_table(P, &T);
    json_t *o = chk(b, json_object());
    for (int k = 0; k < T.nblocks; k++) {
        const model_layout_block *B = &T.block[k];
        set(b, o, B->name, jblock(b, P, B, x + B->offset, mask ? mask + B->offset : NULL, 0));
    }
    return o;
}

/* "A, B (per input), C, D (per region), transit, decay, epsilon; each
 * matrix column-major" from the table. */
static json_t *jorder(jb *b, const model_layout *T)
{
    char buf[256];
    size_t o = 0;
    for (int k = 0; k < T->nblocks && o < sizeof buf; k++) {
        const model_layout_block *B = &T->block[k];
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s%s", k ? ", " : "", B->name,
                              B->slice_axis == MODEL_AXIS_INPUT ? " (per input)"
                              : B->slice_axis ? " (per region)" : "");
    }
    if (o < sizeof buf)
        snprintf(buf + o, sizeof buf - o, "; each matrix column-major");
    return chk(b, json_string(buf));
}

/* A complex array in the model_csd layout (w + nw (i + n j), (re, im)
 * pairs) as {"real": [w][i][j], "imag": [w][i][j]}. */
static json_t *jcsd(jb *b, const double *z, int nw, int n)
{
    if (!z)
        return chk(b, json_null());
    json_t *o = chk(b, json_object());
    for (int part = 0; part < 2; part++) {
        json_t *W = chk(b, json_array());
        for (int w = 0; w < nw; w++) {
            json_t *rows = chk(b, json_array());
            for (int i = 0; i < n; i++) {
                json_t *row = chk(b, json_array());
                for (int j = 0; j < n; j++)
                    push(b, row, jnum(b, z[2 * ((size_t)w + (size_t)nw * (i + (size_t)n * j)) + part]));
                push(b, rows, row);
            }
            push(b, W, rows);
        }
        set(b, o, part ? "imag" : "real", W);
    }
    return o;
}

/* The model of a spectral DCM: regions, TR, TE, its "a" switches and
 * options (no inputs, b, c, d or delays). */
static json_t *jmodel_csd(jb *b, const dcm_problem *P)
{
    const model_dcm *M = P->M;
    json_t *o = chk(b, json_object());
    set(b, o, "analysis", chk(b, json_string("csd")));
    set(b, o, "regions", jstrings(b, P->region_names, P->n));
    set(b, o, "inputs", chk(b, json_array()));
    set(b, o, "TR", jnum(b, M->TR));
    set(b, o, "TE", jnum(b, M->TE));
    set(b, o, "a", jmat(b, M->a, NULL, P->n, P->n, 1, P->n, 1));
    json_t *opt = chk(b, json_object());
    set(b, opt, "order", chk(b, json_integer(P->csd_order)));
    set(b, opt, "maxit", chk(b, json_integer(P->maxit)));
    set(b, opt, "maxnodes", chk(b, json_integer(P->maxnodes)));
    set(b, opt, "nonlinear", chk(b, json_integer(0)));
    set(b, opt, "two_state", chk(b, json_integer(0)));
    set(b, opt, "hE", jnum(b, 8.0));
    set(b, opt, "hC", jnum(b, 1.0 / 128.0));
    set(b, o, "options", opt);
    return o;
}

/* What only a spectral fit has: frequencies, the empirical and predicted
 * cross-spectra, the MAR order and iterations, the noise channels. */
static json_t *jspectra(jb *b, const dcm_problem *P, const dcm_result *R)
{
    json_t *o = chk(b, json_object());
    set(b, o, "frequencies", jvec(b, R->Hz, R->Hz ? R->nw : 0));
    set(b, o, "empirical", jcsd(b, R->csd_obs, R->nw, P->n));
    set(b, o, "predicted", jcsd(b, R->csd_pred, R->nw, P->n));
    set(b, o, "layout", chk(b, json_string("[frequency][target region i][source region j]; "
                                           "noise_log_precision[i + n j] is channel (i, j)")));
    set(b, o, "mar_order", chk(b, json_integer(P->csd_order)));
    set(b, o, "mar_iterations", chk(b, json_integer(R->mar_iterations)));
    return o;
}

static json_t *jmodel(jb *b, const dcm_problem *P)
{
    if (P->analysis == DCM_ANALYSIS_CSD)
        return jmodel_csd(b, P);
    const model_dcm *M = P->M;
    const int n = P->n, m = P->m;
    json_t *o = chk(b, json_object());
    set(b, o, "regions", jstrings(b, P->region_names, n));
    set(b, o, "inputs", jstrings(b, P->input_names, m));
    set(b, o, "TR", jnum(b, M->TR));
    set(b, o, "TE", jnum(b, M->TE));
    set(b, o, "delays", jvec(b, M->delays, n));
    /* the switches, shaped like the blocks they switch on */
    model_layout T;
    model_dcm_table(M, &T);
    for (int k = 0; k < MODEL_BLOCK_COUNT; k++)
        if (T.block[k].spec)
            set(b, o, T.block[k].spec, jblock(b, P, &T.block[k], model_dcm_switches(M, k), NULL, 1));
    json_t *opt = chk(b, json_object());
    set(b, opt, "nonlinear", chk(b, json_integer(M->nonlinear)));
    set(b, opt, "two_state", chk(b, json_integer(M->two_state)));
    set(b, opt, "centre", chk(b, json_integer(P->centre)));
    set(b, opt, "maxit", chk(b, json_integer(P->maxit)));
    set(b, opt, "maxnodes", chk(b, json_integer(P->maxnodes)));
    set(b, opt, "integrator",
        chk(b, json_string(M->integrator == MODEL_INT_ODE ? "ode" : "bilinear")));
    set(b, opt, "hE", jnum(b, P->hE));
    set(b, opt, "hC", jnum(b, P->hC));
    set(b, o, "options", opt);
    return o;
}

/* ------------------------------------------------------------------ */
/* regression DCM (analysis DCM_ANALYSIS_RDCM)                          */

/* An n x cols column-major matrix as nested rows, x scaled by s (NULL:
 * null). */
static json_t *jrows(jb *b, const double *x, int n, int cols, double s)
{
    if (!x)
        return chk(b, json_null());
    json_t *a = chk(b, json_array());
    for (int i = 0; i < n; i++) {
        json_t *r = chk(b, json_array());
        for (int j = 0; j < cols; j++)
            push(b, r, jnum(b, s * x[i + (size_t)n * j]));
        push(b, a, r);
    }
    return a;
}

static json_t *jsqrt_rows(jb *b, const double *var, int n, int cols, double s)
{
    json_t *a = chk(b, json_array());
    for (int i = 0; i < n; i++) {
        json_t *r = chk(b, json_array());
        for (int j = 0; j < cols; j++) {
            double v = var[i + (size_t)n * j];
            push(b, r, jnum(b, v >= 0 ? s * sqrt(v) : NAN));
        }
        push(b, a, r);
    }
    return a;
}

static json_t *jints(jb *b, const int *x, int k)
{
    json_t *a = chk(b, json_array());
    for (int i = 0; i < k; i++)
        push(b, a, chk(b, json_integer(x[i])));
    return a;
}

/* {"A": ..., "C": ..., "baseline": [n] when a regressor} */
static json_t *jrdcm_blocks(jb *b, const dcm_rdcm_result *X, const double *A, const double *C,
                            const double *base, double c_scale, int sd)
{
    const int n = X->n, m = X->m;
    json_t *o = chk(b, json_object());
    set(b, o, "A", sd ? jsqrt_rows(b, A, n, n, 1.0) : jrows(b, A, n, n, 1.0));
    set(b, o, "C", sd ? jsqrt_rows(b, C, n, m, c_scale) : jrows(b, C, n, m, 1.0));
    if (X->has_baseline && base)
        set(b, o, "baseline", sd ? jsqrt_rows(b, base, n, 1, 1.0) : jvec(b, base, n));
    return o;
}

static json_t *jmodel_rdcm(jb *b, const dcm_problem *P)
{
    const model_dcm *M = P->M;
    const int n = P->n, m = P->m;
    const dcm_rdcm_spec *o = &P->rdcm;
    json_t *j = chk(b, json_object());
    set(b, j, "regions", jstrings(b, P->region_names, n));
    set(b, j, "inputs", jstrings(b, P->input_names, m));
    set(b, j, "TR", jnum(b, M->TR));
    set(b, j, "a", jrows(b, M->a, n, n, 1.0));
    set(b, j, "c", jrows(b, M->c, n, m, 1.0));
    json_t *r = chk(b, json_object());
    set(b, r, "data", chk(b, json_string(o->data ? "empirical" : "simulated")));
    set(b, r, "filter", jnum(b, o->filter));
    if (o->method) {
        set(b, r, "p0", o->np0 ? jvec(b, o->p0, o->np0) : chk(b, json_null()));
        set(b, r, "restarts", chk(b, json_integer(o->order ? 1 : o->restarts)));
        set(b, r, "order", chk(b, json_string(o->order ? "fixed" : "random")));
        set(b, r, "seed", chk(b, json_integer((json_int_t)o->seed)));
    }
    set(b, j, "rdcm", r);
    return j;
}

/* Write a built result document (consumed) to path atomically; keep: as
 * the writers' (NULL: commit now; else left open for the caller). ok: 0
 * when building it ran out of memory. */
/* Where a built result goes: a file (keep as below) or, with text set,
 * a malloc'd string (*text, the file's bytes). */
typedef struct {
    io_atomic *keep;
    char **text;
} result_sink;

static int dump_result(json_t *root, int ok, const char *path, const result_sink *to, dcm_error *err)
{
    io_atomic *keep = to->keep;
    if (!ok) {
        json_decref(root);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory while building the result", path);
    }
    if (to->text) {   /* the same bytes as the file, '\n' included */
        char *t = json_dumps(root, JSON_INDENT(1) | JSON_REAL_PRECISION(17));
        size_t len = t ? strlen(t) : 0;
        char *out = t ? realloc(t, len + 2) : NULL;
        json_decref(root);
        if (!out) {
            free(t);
            return dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory while writing the result", path);
        }
        out[len] = '\n';
        out[len + 1] = '\0';
        *to->text = out;
        return DCM_OK;
    }
    io_atomic a, *ap = keep ? keep : &a;
    int rc = io_atomic_open(ap, path, err);
    if (rc) {
        json_decref(root);
        return rc;
    }
    if (json_dumpf(root, ap->fp, JSON_INDENT(1) | JSON_REAL_PRECISION(17)) != 0 ||
        fputc('\n', ap->fp) == EOF) {
        int e = errno;
        io_atomic_abort(ap);
        json_decref(root);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "cannot write %s: %s", path,
                             e ? strerror(e) : "write failed");
    }
    json_decref(root);
    return keep ? DCM_OK : io_atomic_commit(ap, err);
}

static int rdcm_write(const char *path, const dcm_problem *P, const dcm_result *R,
                      const result_sink *keep, dcm_error *err)
{
    const dcm_rdcm_result *X = R->rdcm;
    const int n = P->n, m = P->m, np = n * n + n * m;
    if (!X || R->analysis != DCM_ANALYSIS_RDCM || X->n != n || X->m != m || R->np != np)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: the result is not a regression DCM of this "
                             "problem (%d regions, %d inputs)", path, n, m);
    const int sparse = X->method == 1;
    const double c_scale = P->rdcm.data ? 16.0 : 1.0;   /* Var_C is in regression units */
    jb b = {1};
    json_t *root = chk(&b, json_object());
    set(&b, root, "source", chk(&b, json_string("dcm (C11 reimplementation of TAPAS rDCM)")));
    set(&b, root, "spec", chk(&b, P->source ? json_string(P->source) : json_null()));
    set(&b, root, "analysis", chk(&b, json_string("rdcm")));
    set(&b, root, "method", chk(&b, json_string(sparse ? "sparse_rdcm" : "rdcm")));
    set(&b, root, "model", jmodel_rdcm(&b, P));
    set(&b, root, "free_energy", jnum(&b, X->F));
    set(&b, root, "free_energy_regions", jvec(&b, X->F_regions, n));
    static const char *const terms[] = {"log_lik", "log_p_weight", "log_p_prec", "log_q_weight",
                                        "log_q_prec", "log_p_z", "log_q_z"};
    json_t *ft = chk(&b, json_object());
    for (int t = 0; t < (sparse ? 7 : 5); t++) {
        json_t *a = chk(&b, json_array());
        for (int k = 0; k < n; k++)
            push(&b, a, jnum(&b, X->F_terms[(size_t)k * 7 + t]));
        set(&b, ft, terms[t], a);
    }
    set(&b, root, "free_energy_terms_regions", ft);
    set(&b, root, "posterior_mean", jrdcm_blocks(&b, X, X->Ep_A, X->Ep_C, X->Ep_baseline, c_scale, 0));
    set(&b, root, "posterior_sd", jrdcm_blocks(&b, X, X->Var_A, X->Var_C, X->Var_baseline, c_scale, 1));
    json_t *pm = chk(&b, json_object()), *pv = chk(&b, json_object());
    set(&b, pm, "A", jrows(&b, R->pE, n, n, 1.0));
    set(&b, pm, "C", jrows(&b, R->pE + (size_t)n * n, n, m, 1.0));
    set(&b, pv, "A", jrows(&b, R->pV, n, n, 1.0));
    set(&b, pv, "C", jrows(&b, R->pV + (size_t)n * n, n, m, 1.0));
    set(&b, root, "prior_mean", pm);
    set(&b, root, "prior_var", pv);
    if (sparse) {
        set(&b, root, "inclusion_probability",
            jrdcm_blocks(&b, X, X->Ip_A, X->Ip_C, X->Ip_baseline, 1.0, 0));
        set(&b, root, "p0_grid", jvec(&b, X->p0_grid, X->np0));
        set(&b, root, "free_energy_per_p0", jvec(&b, X->F_per_p0, X->np0));
        set(&b, root, "p0", jnum(&b, X->p0));
    }
    json_t *noise = chk(&b, json_object());
    set(&b, noise, "shape", jvec(&b, X->aN, n));
    set(&b, noise, "rate", jvec(&b, X->bN, n));
    double *tau = malloc(sizeof(double) * (size_t)n);
    if (!tau)
        b.ok = 0;
    for (int k = 0; tau && k < n; k++)
        tau[k] = X->aN[k] / X->bN[k];
    set(&b, noise, "precision_mean", jvec(&b, tau, tau ? n : 0));
    free(tau);
    set(&b, root, "noise", noise);
    set(&b, root, "noise_log_precision", jvec(&b, R->Eh, n));
    set(&b, root, "iterations", chk(&b, json_integer(R->iterations)));
    set(&b, root, "iterations_regions", jints(&b, X->iterations, n));
    set(&b, root, "frequency_bins_regions", jints(&b, X->bins, n));
    set(&b, root, "converged", chk(&b, json_boolean(R->converged)));
    /* what compare needs to tell that two fits saw the same data */
    double fp[3] = {0, 0, 0};
    for (size_t k = 0; k < (size_t)P->v * n; k++)
        fp[0] += 1, fp[1] += P->Y[k], fp[2] += P->Y[k] * P->Y[k];
    set(&b, root, "data_fingerprint", jvec(&b, fp, 3));
    set(&b, root, "seconds", jnum(&b, R->seconds));
    set(&b, root, "warnings", jstrings(&b, R->warnings.items, R->warnings.count));
    json_t *dg = chk(&b, json_object());
    set(&b, dg, "max_abs_connection", jnum(&b, R->diag.max_abs_connection));
    set(&b, root, "diagnostics", dg);
    set(&b, root, "regions", jstrings(&b, P->region_names, n));
    set(&b, root, "inputs", jstrings(&b, P->input_names, m));
    json_t *vec = chk(&b, json_object());
    set(&b, vec, "order", chk(&b, json_string("A, C; each matrix column-major")));
    set(&b, vec, "prior_mean", jvec(&b, R->pE, np));
    set(&b, vec, "prior_var", jvec(&b, R->pV, np));
    set(&b, vec, "posterior_mean", jvec(&b, R->Ep, np));
    double *var = malloc(sizeof(double) * (size_t)(np ? np : 1));
    if (!var)
        b.ok = 0;
    for (int k = 0; var && k < n * n; k++)
        var[k] = X->Var_A[k];
    for (int k = 0; var && k < n * m; k++)
        var[n * n + k] = X->Var_C[k] * c_scale * c_scale;
    set(&b, vec, "posterior_var", jvec(&b, var, var ? np : 0));
    free(var);
    set(&b, root, "vector", vec);
    return dump_result(root, b.ok, path, keep, err);
}

/* keep: NULL to write and commit PATH; else opened on PATH, filled and
 * left uncommitted for the caller's io_atomic_commit_all. */
static int result_write(const char *path, const dcm_problem *P, const dcm_result *R,
                        const result_sink *keep, dcm_error *err)
{
    if (!P || !P->M || !R)
        return dcm_error_set(err, DCM_ERR_USAGE, "%s: nothing to write (no problem or result)", path);
    if (P->analysis == DCM_ANALYSIS_RDCM)
        return rdcm_write(path, P, R, keep, err);
    model_layout T;
    dcm_problem_table(P, &T);
    const int n = P->n, v = P->v, np = T.np, csd = P->analysis == DCM_ANALYSIS_CSD;
    if (R->np != np || (csd && (R->analysis != DCM_ANALYSIS_CSD || R->nh != n * n)))
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: the result has %d parameters but the model has %d; was it "
                             "estimated from this problem?", path, R->np, np);
    jb b = {1};
    json_t *root = chk(&b, json_object());
    set(&b, root, "source", chk(&b, json_string("dcm (C11 reimplementation of SPM12 DCM for fMRI)")));
    set(&b, root, "spec", chk(&b, P->source ? json_string(P->source) : json_null()));
    if (csd)   /* task results keep their keys as they were */
        set(&b, root, "analysis", chk(&b, json_string("csd")));
    set(&b, root, "model", jmodel(&b, P));
    set(&b, root, "free_energy", jnum(&b, R->F));
    json_t *terms = chk(&b, json_object());
    set(&b, terms, "accuracy", jnum(&b, R->L[0]));
    set(&b, terms, "parameters", jnum(&b, R->L[1]));
    set(&b, terms, "precision", jnum(&b, R->L[2]));
    set(&b, root, "free_energy_terms", terms);

    double *sd = R->Cp ? malloc(sizeof(double) * (size_t)(np ? np : 1)) : NULL;
    if (R->Cp && !sd)
        b.ok = 0;
    if (sd)
        for (int k = 0; k < np; k++) {
            double c = R->Cp[(size_t)k * np + k];
            sd[k] = c >= 0.0 ? sqrt(c) : NAN;
        }
    set(&b, root, "posterior_mean", jblocks(&b, P, R->Ep, NULL));
    set(&b, root, "posterior_sd", jblocks(&b, P, sd, NULL));
    set(&b, root, "posterior_probability", jblocks(&b, P, R->Pp, R->pV));
    set(&b, root, "prior_mean", jblocks(&b, P, R->pE, NULL));
    set(&b, root, "prior_var", jblocks(&b, P, R->pV, NULL));
    free(sd);

    set(&b, root, "noise_log_precision", jvec(&b, R->Eh, csd ? R->nh : n));
    set(&b, root, "iterations", chk(&b, json_integer(R->iterations)));
    set(&b, root, "converged", chk(&b, json_boolean(R->converged)));
    set(&b, root, "free_energy_trajectory", jvec(&b, R->F_trace, R->F_trace ? R->ntrace : 0));
    set(&b, root, "data_scale", jnum(&b, R->scale));
    set(&b, root, "observed_bold_scaled", jmat(&b, R->y_obs, NULL, v, n, 1, v, 0));
    set(&b, root, "predicted_bold_scaled", jmat(&b, R->y_pred, NULL, v, n, 1, v, 0));
    if (R->y_conf)
        set(&b, root, "fitted_confounds_scaled", jmat(&b, R->y_conf, NULL, v, n, 1, v, 0));
    if (csd)
        set(&b, root, "spectra", jspectra(&b, P, R));
    set(&b, root, "seconds", jnum(&b, R->seconds));
    set(&b, root, "warnings", jstrings(&b, R->warnings.items, R->warnings.count));
    json_t *dg = chk(&b, json_object());
    set(&b, dg, "variance_explained", jnum(&b, R->diag.variance_explained));
    set(&b, dg, "max_abs_connection", jnum(&b, R->diag.max_abs_connection));
    set(&b, dg, "effective_parameters", jnum(&b, R->diag.effective_parameters));
    set(&b, dg, "accepted_steps",
        chk(&b, R->diag.accepted_steps >= 0 ? json_integer(R->diag.accepted_steps) : json_null()));
    set(&b, root, "diagnostics", dg);
    if (!csd)
        set(&b, root, "design", chk(&b, io_result_design_json(P))); /* io_result_inputs.h */
    set(&b, root, "regions", jstrings(&b, P->region_names, n));
    set(&b, root, "inputs", jstrings(&b, P->input_names, P->m));
    json_t *vec = chk(&b, json_object());
    set(&b, vec, "order", jorder(&b, &T));
    set(&b, vec, "prior_mean", jvec(&b, R->pE, np));
    set(&b, vec, "prior_var", jvec(&b, R->pV, np));
    set(&b, vec, "posterior_mean", jvec(&b, R->Ep, np));
    set(&b, vec, "posterior_cov", jmat(&b, R->Cp, NULL, np, np, np, 1, 0));
    set(&b, root, "vector", vec);
    return dump_result(root, b.ok, path, keep, err);
}

int io_result_write_json(const char *path, const dcm_problem *P, const dcm_result *R,
                         dcm_error *err)
{
    result_sink to = {NULL, NULL};
    return result_write(path, P, R, &to, err);
}

int io_result_write_json_to(void *atomic, const char *path, const dcm_problem *P,
                            const dcm_result *R, dcm_error *err)
{
    result_sink to = {atomic, NULL};
    return result_write(path, P, R, &to, err);
}

int io_result_json_text(const dcm_problem *P, const dcm_result *R, char **text, dcm_error *err)
{
    *text = NULL;
    result_sink to = {NULL, text};
    return result_write("result", P, R, &to, err);
}

/* ------------------------------------------------------------------ */
/* reading                                                              */

json_t *io_result_json_load(const char *path, dcm_error *err)
{
    return io_json_load(path, "result", 1, err);
}

json_t *io_json_load(const char *path, const char *what, int object_only, dcm_error *err)
{
    FILE *f = io_input_open(path, what, err);   /* a FIFO must not hang */
    if (!f)
        return NULL;
    json_error_t je;
    io_skip_bom(f);   /* a parameter file saved by a Windows editor */
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!root) {
        dcm_error_set(err, DCM_ERR_INPUT, "%s:%d:%d: invalid JSON: %s", path, je.line, je.column,
                      je.text);
        return NULL;
    }
    if (object_only && !json_is_object(root)) {
        json_decref(root);
        dcm_error_set(err, DCM_ERR_INPUT, "%s: expected a JSON object at the top level", path);
        return NULL;
    }
    return root;
}

/* Read k numbers of array j into out[i*stride]. */
static int read_vec(const char *path, const char *field, json_t *j, int k, double *out, int stride,
                    dcm_error *err)
{
    if (!json_is_array(j))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: %s must be an array of %d numbers", path,
                             field, k);
    if ((int)json_array_size(j) != k)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: %s has %d entries; expected %d", path, field,
                             (int)json_array_size(j), k);
    for (int i = 0; i < k; i++) {
        json_t *x = json_array_get(j, (size_t)i);
        if (!json_is_number(x))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: %s[%d] must be a number", path, field, i);
        out[(size_t)i * stride] = json_number_value(x);
    }
    return DCM_OK;
}

/* rows x cols nested rows; element (i, j) to out[i*rs + j*cs]. */
static int read_mat(const char *path, const char *field, json_t *j, int rows, int cols,
                    double *out, int rs, int cs, dcm_error *err)
{
    if (!json_is_array(j) || (int)json_array_size(j) != rows)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: %s must be a %dx%d matrix (array of %d rows)",
                             path, field, rows, cols, rows);
    char f[300];
    for (int i = 0; i < rows; i++) {
        snprintf(f, sizeof f, "%s[%d]", field, i);
        if (read_vec(path, f, json_array_get(j, (size_t)i), cols, out + (size_t)i * rs, cs, err))
            return DCM_ERR_INPUT;
    }
    return DCM_OK;
}

static int check_names(const char *path, const char *field, json_t *j, char *const *names, int k,
                       dcm_error *err)
{
    if (!j)
        return DCM_OK;
    int ok = json_is_array(j) && (int)json_array_size(j) == k;
    for (int i = 0; ok && i < k; i++) {
        json_t *x = json_array_get(j, (size_t)i);
        ok = json_is_string(x) && strcmp(json_string_value(x), names[i]) == 0;
    }
    if (ok)
        return DCM_OK;
    char want[512];
    size_t len = 0;
    want[0] = '\0';
    for (int i = 0; i < k && len < sizeof want - 64; i++)
        len += (size_t)snprintf(want + len, sizeof want - len, "%s%s", i ? ", " : "", names[i]);
    return dcm_error_set(err, DCM_ERR_INPUT,
                         "%s: \"%s\" do not match the model's (%s, in this order)", path, field, want);
}

static int name_index(char *const *names, int k, const char *name)
{
    for (int i = 0; i < k; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

/* "a, b, c" into buf (cut to fit) */
static void join_names(char *buf, size_t len, char *const *names, int k)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < k && o < len - 64; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", names[i]);
}

/* Slice k of block B from JSON val into theta (B's shape: jslice). */
static int read_slice(const char *path, const char *field, json_t *val, const model_layout_block *B,
                      int k, double *theta, dcm_error *err)
{
    double *x = theta + model_layout_index(B, 0, 0, k);
    if (B->col_axis)
        return read_mat(path, field, val, B->rows, B->cols, x, 1, B->rows, err);
    if (B->row_axis)
        return read_vec(path, field, val, B->rows, x, 1, err);
    if (!json_is_number(val))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: %s must be a number", path, field);
    *x = json_number_value(val);
    return DCM_OK;
}

/* Block B from JSON val: per-slice blocks as an object keyed by input or
 * region name (any subset), the others as read_slice. */
static int read_block(const char *path, const char *field, json_t *val, const model_layout_block *B,
                      const dcm_problem *P, double *theta, dcm_error *err)
{
    if (!B->slice_axis)
        return read_slice(path, field, val, B, 0, theta, err);
    const int isin = B->slice_axis == MODEL_AXIS_INPUT;
    const char *what = isin ? "input" : "region";
    char *const *names = isin ? P->input_names : P->region_names;
    const int count = isin ? P->m : P->n;
    if (!json_is_object(val))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: %s must be an object keyed by %s name", path,
                             field, what);
    const char *k2;
    json_t *v2;
    json_object_foreach(val, k2, v2) {
        int idx = name_index(names, count, k2);
        if (idx < 0) {
            char list[512];
            join_names(list, sizeof list, names, count);
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: %s: unknown %s \"%s\"; the %ss are: %s", path,
                                 field, what, k2, what, list);
        }
        if (B->optional && B->slices == 0)
            return dcm_error_set(err, DCM_ERR_INPUT,
                                 "%s: %s.\"%s\": the model is bilinear (no \"%s\"), so it has no "
                                 "%s parameters", path, field, k2, B->spec, B->name);
        char f2[500];
        snprintf(f2, sizeof f2, "%s.\"%s\"", field, k2);
        int rc = read_slice(path, f2, v2, B, idx, theta, err);
        if (rc)
            return rc;
    }
    return DCM_OK;
}

int io_params_load(const char *path, const dcm_problem *P, double *theta, dcm_error *err)
{
    json_t *root = io_result_json_load(path, err);
    if (!root)
        return DCM_ERR_INPUT;
    model_layout T;
    dcm_problem_table(P, &T);
    const int n = P->n, m = P->m;
    int rc = DCM_OK;
    json_t *blocks = json_object_get(root, "posterior_mean");
    const char *pre = blocks ? "\"posterior_mean\"." : "";
    char field[400];
    if (blocks) {
        if (!json_is_object(blocks)) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"posterior_mean\" must be an object", path);
            goto done;
        }
        if ((rc = check_names(path, "regions", json_object_get(root, "regions"), P->region_names, n,
                              err)) ||
            (rc = check_names(path, "inputs", json_object_get(root, "inputs"), P->input_names, m, err)))
            goto done;
    } else if (io_params_is_names(root)) {
        /* {"A:V1->V5": 0.4, ...}: the names every other command uses */
        rc = io_params_apply_names(path, root, P, theta, err);
        goto done;
    } else {
        blocks = root;
    }
    const char *key;
    json_t *val;
    json_object_foreach(blocks, key, val) {
        snprintf(field, sizeof field, "%s\"%s\"", pre, key);
        const model_layout_block *B = model_layout_find(&T, key);
        if (B) {
            rc = read_block(path, field, val, B, P, theta, err);
        } else if (blocks == root && (strcmp(key, "regions") == 0 || strcmp(key, "inputs") == 0)) {
            rc = check_names(path, key, val, strcmp(key, "regions") == 0 ? P->region_names
                                                                         : P->input_names,
                             strcmp(key, "regions") == 0 ? n : m, err);
        } else {
            char names[160];
            size_t o = 0;
            for (int k = 0; k < T.nblocks && o < sizeof names; k++)
                o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", k ? ", " : "", T.block[k].name);
            rc = dcm_error_set(err, DCM_ERR_INPUT,
                               "%s: unknown key %s; parameter blocks are %s (or give a result file "
                               "with \"posterior_mean\", or parameter names such as \"A:V1->V5\")",
                               path, field, names);
        }
        if (rc)
            break;
    }
done:
    json_decref(root);
    return rc;
}

void io_result_summary_free(io_result_summary *s)
{
    if (!s)
        return;
    if (s->regions)
        for (int i = 0; i < s->n; i++)
            free(s->regions[i]);
    if (s->inputs)
        for (int j = 0; j < s->m; j++)
            free(s->inputs[j]);
    free(s->regions);
    free(s->inputs);
    free(s->path);
    free(s->pE);
    free(s->pV);
    free(s->Ep);
    free(s->Cp);
    free(s->Vp);
    free(s->Eh);
    memset(s, 0, sizeof *s);
    s->iterations = s->converged = -1;
    s->data_scale = NAN;
}

/* A name must be usable in a parameter name (io_pnames.h): not empty,
 * no "->" or ':' (the syntax's separators), no blanks at either end. */
static const char *name_fault(const char *s)
{
    size_t l = strlen(s);
    if (!l)
        return "is empty";
    if (strstr(s, "->"))
        return "contains \"->\", which parameter names use between regions";
    if (strchr(s, ':'))
        return "contains ':', which parameter names use between their parts";
    if (s[0] == ' ' || s[0] == '\t' || s[l - 1] == ' ' || s[l - 1] == '\t')
        return "begins or ends with a blank";
    return NULL;
}

static int read_names(const char *path, const char *key, json_t *root, char ***out, int *k,
                      dcm_error *err)
{
    json_t *j = json_object_get(root, key);
    if (!json_is_array(j) || json_array_size(j) == 0)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"%s\" must be a non-empty array of names; is "
                             "this a dcm result file?", path, key);
    if (json_array_size(j) > IO_RESULT_MAX_NAMES)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"%s\" lists %zu names; at most %d are supported",
                             path, key, json_array_size(j), IO_RESULT_MAX_NAMES);
    *k = (int)json_array_size(j);
    *out = calloc((size_t)*k, sizeof(char *));
    if (!*out)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    for (int i = 0; i < *k; i++) {
        json_t *x = json_array_get(j, (size_t)i);
        if (!json_is_string(x))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"%s\"[%d] must be a string", path, key, i);
        const char *v = json_string_value(x), *why = name_fault(v);
        if (why || strlen(v) != json_string_length(x))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"%s\"[%d] \"%s\" %s; rename it in the spec",
                                 path, key, i, v, why ? why : "contains a NUL character");
        for (int q = 0; q < i; q++)
            if (!strcmp((*out)[q], v))
                return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"%s\" names \"%s\" twice", path, key, v);
        if (!((*out)[i] = strdup(v)))
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    return DCM_OK;
}

/* Count, sum and sum of squares of "observed_bold_scaled" (a fingerprint
 * of the data, unchanged by the order of the regions). */
static void observed_fingerprint(json_t *root, io_result_summary *s)
{
    json_t *obs = json_object_get(root, "observed_bold_scaled");
    double n = 0, sum = 0, ss = 0;
    size_t i, j;
    json_t *row, *x;
    json_array_foreach(obs, i, row) {
        json_array_foreach(row, j, x) {
            double y = json_number_value(x);
            n += 1;
            sum += y;
            ss += y * y;
        }
    }
    s->have_fingerprint = n > 0;
    s->fingerprint[0] = n;
    s->fingerprint[1] = sum;
    s->fingerprint[2] = ss;
}

int io_result_same_data(const io_result_summary *a, const io_result_summary *b)
{
    if (!a->have_fingerprint || !b->have_fingerprint)
        return -1;
    const double *x = a->fingerprint, *y = b->fingerprint;
    /* sums in another order differ by rounding only: compare on the
       scale of the data (sqrt(n * sum of squares)) */
    double scale = sqrt(fmax(x[0] * x[2], 0.0)) + fabs(x[1]);
    return x[0] == y[0] && fabs(x[1] - y[1]) <= 1e-9 * scale && fabs(x[2] - y[2]) <= 1e-9 * fabs(x[2]);
}

int io_result_same_kind(const io_result_summary *a, const io_result_summary *b)
{
    return (a->nd > 0) == (b->nd > 0) && a->two_state == b->two_state && a->csd == b->csd &&
           a->rdcm == b->rdcm;
}

const char *io_result_kind(const io_result_summary *s)
{
    if (s->rdcm)
        return s->rdcm == 2 ? "sparse regression DCM" : "regression DCM";
    if (s->csd)
        return "spectral (resting-state CSD)";
    if (s->two_state)
        return s->nd ? "two-state nonlinear" : "two-state bilinear";
    return s->nd ? "nonlinear" : "bilinear";
}

static void permute_rows(double *x, const int *map, int k, double *tmp)
{
    for (int p = 0; p < k; p++)
        tmp[map[p]] = x[p];
    memcpy(x, tmp, sizeof(double) * (size_t)k);
}

int io_result_align(io_result_summary *s, const io_result_summary *ref, dcm_error *err)
{
    io_pname_space from = io_result_space(s), to = io_result_space(ref);
    if (s->csd != ref->csd)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s is %s but %s is %s: their parameters cannot be "
                             "matched", s->path, io_result_kind(s), ref->path, io_result_kind(ref));
    if ((from.nd > 0) == (to.nd > 0) && s->np != ref->np)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s and %s have different parameter counts", s->path,
                             ref->path);
    const int np = s->np;
    int *map = malloc(sizeof(int) * (size_t)np);
    /* a regression DCM has no dense covariance: vectors only */
    double *tmp = malloc(sizeof(double) * (s->Cp ? (size_t)np * (size_t)np : (size_t)np + s->n * s->n));
    if (!map || !tmp) {
        free(map);
        free(tmp);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    int rc = io_pname_map(&from, s->path, &to, ref->path, map, err);
    if (rc)
        goto done;
    int same = 1;
    for (int p = 0; p < np; p++)
        same &= map[p] == p;
    if (same)
        goto done;
    permute_rows(s->pE, map, np, tmp);
    permute_rows(s->pV, map, np, tmp);
    permute_rows(s->Ep, map, np, tmp);
    if (s->Vp)
        permute_rows(s->Vp, map, np, tmp);
    for (int p = 0; s->Cp && p < np; p++)
        for (int q = 0; q < np; q++)
            tmp[(size_t)map[p] * np + map[q]] = s->Cp[(size_t)p * np + q];
    if (s->Cp)
        memcpy(s->Cp, tmp, sizeof(double) * (size_t)np * np);
    /* per-region and per-input lists in the reference's order */
    int *rmap = malloc(sizeof(int) * (size_t)(s->n + s->m));
    char **names = malloc(sizeof(char *) * (size_t)(s->n > s->m ? s->n : s->m));
    if (!rmap || !names) {
        free(rmap);
        free(names);
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < s->n; i++)
        for (int q = 0; q < ref->n; q++)
            if (!strcmp(s->regions[i], ref->regions[q]))
                rmap[i] = q;
    if (s->Eh && !s->csd)
        permute_rows(s->Eh, rmap, s->n, tmp);
    if (s->Eh && s->csd) {   /* channel (i, j) at i + n j: both indices move */
        for (int j = 0; j < s->n; j++)
            for (int i = 0; i < s->n; i++)
                tmp[rmap[i] + (size_t)s->n * rmap[j]] = s->Eh[i + (size_t)s->n * j];
        memcpy(s->Eh, tmp, sizeof(double) * (size_t)s->n * s->n);
    }
    for (int i = 0; i < s->n; i++)
        names[rmap[i]] = s->regions[i];
    memcpy(s->regions, names, sizeof(char *) * (size_t)s->n);
    for (int j = 0; j < s->m; j++)
        for (int q = 0; q < ref->m; q++)
            if (!strcmp(s->inputs[j], ref->inputs[q]))
                rmap[j] = q;
    for (int j = 0; j < s->m; j++)
        names[rmap[j]] = s->inputs[j];
    memcpy(s->inputs, names, sizeof(char *) * (size_t)s->m);
    free(rmap);
    free(names);
done:
    free(map);
    free(tmp);
    return rc;
}

io_pname_space io_result_space(const io_result_summary *s)
{
    io_pname_space S = {s->n, s->m, s->nd, s->regions, s->inputs, s->rdcm ? IO_PNAME_RDCM : s->csd};
    return S;
}

/* A regression DCM result (rdcm_write): names (inputs may be none), the
 * flat A, C vectors with the posterior variances (Vp; no Cp), F, noise,
 * and the data fingerprint. */
static int rdcm_load(const char *path, json_t *root, io_result_summary *s, dcm_error *err)
{
    json_t *me = json_object_get(root, "method");
    const char *mv = json_is_string(me) ? json_string_value(me) : "";
    if (strcmp(mv, "rdcm") && strcmp(mv, "sparse_rdcm"))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"method\" must be \"rdcm\" or "
                             "\"sparse_rdcm\" in a regression DCM result", path);
    s->rdcm = strcmp(mv, "rdcm") ? 2 : 1;
    json_t *ro = json_object_get(json_object_get(root, "model"), "rdcm");
    json_t *fl = json_object_get(ro, "filter"), *da = json_object_get(ro, "data");
    s->rdcm_filter = json_is_number(fl) ? json_number_value(fl) : NAN;
    s->rdcm_empirical = json_is_string(da) && !strcmp(json_string_value(da), "empirical");
    int rc = read_names(path, "regions", root, &s->regions, &s->n, err);
    if (rc)
        return rc;
    json_t *in = json_object_get(root, "inputs");
    if (json_is_array(in) && json_array_size(in) == 0) {   /* resting state */
        if (!(s->inputs = calloc(1, sizeof(char *))))
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    } else if ((rc = read_names(path, "inputs", root, &s->inputs, &s->m, err))) {
        return rc;
    }
    const long long npl = (long long)s->n * s->n + (long long)s->n * s->m;
    if (npl > 4LL * IO_RESULT_MAX_NAMES * IO_RESULT_MAX_NAMES)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: too many parameters", path);
    const int np = (int)npl;
    s->np = np;
    s->nh = s->n;
    json_t *vec = json_object_get(root, "vector");
    if (!json_is_object(vec))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: missing \"vector\"", path);
    s->pE = malloc(sizeof(double) * (size_t)np);
    s->pV = malloc(sizeof(double) * (size_t)np);
    s->Ep = malloc(sizeof(double) * (size_t)np);
    s->Vp = malloc(sizeof(double) * (size_t)np);
    s->Eh = malloc(sizeof(double) * (size_t)s->n);
    if (!s->pE || !s->pV || !s->Ep || !s->Vp || !s->Eh)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    if ((rc = read_vec(path, "\"vector\".\"prior_mean\"", json_object_get(vec, "prior_mean"), np,
                       s->pE, 1, err)) ||
        (rc = read_vec(path, "\"vector\".\"prior_var\"", json_object_get(vec, "prior_var"), np,
                       s->pV, 1, err)) ||
        (rc = read_vec(path, "\"vector\".\"posterior_mean\"", json_object_get(vec, "posterior_mean"),
                       np, s->Ep, 1, err)) ||
        (rc = read_vec(path, "\"vector\".\"posterior_var\"", json_object_get(vec, "posterior_var"),
                       np, s->Vp, 1, err)) ||
        (rc = read_vec(path, "\"noise_log_precision\"", json_object_get(root, "noise_log_precision"),
                       s->n, s->Eh, 1, err)))
        return rc;
    for (int p = 0; p < np; p++)
        if (s->pV[p] < 0 || s->Vp[p] < 0)
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: a %s variance at \"vector\" entry %d is "
                                 "negative (the file is damaged)", path, s->pV[p] < 0 ? "prior" :
                                 "posterior", p);
    json_t *it = json_object_get(root, "iterations");
    if (json_is_integer(it))
        s->iterations = (int)json_integer_value(it);
    json_t *cv = json_object_get(root, "converged");
    if (json_is_boolean(cv))
        s->converged = json_is_true(cv);
    json_t *fp = json_object_get(root, "data_fingerprint");
    if (json_is_array(fp) && json_array_size(fp) == 3) {
        s->have_fingerprint = 1;
        for (int k = 0; k < 3; k++)
            s->fingerprint[k] = json_number_value(json_array_get(fp, (size_t)k));
    }
    return DCM_OK;
}

int io_result_load(const char *path, io_result_summary *out, dcm_error *err)
{
    return io_result_load_doc(path, out, NULL, err);
}

int io_result_load_doc(const char *path, io_result_summary *out, json_t **doc, dcm_error *err)
{
    memset(out, 0, sizeof *out);
    out->iterations = out->converged = -1;
    out->data_scale = NAN;
    if (doc)
        *doc = NULL;
    json_t *root = io_result_json_load(path, err);
    if (!root)
        return DCM_ERR_INPUT;
    int rc = DCM_OK;
    io_result_summary *s = out;
    if (!(s->path = strdup(path))) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    json_t *F = json_object_get(root, "free_energy");
    if (!json_is_number(F)) {
        /* other dcm outputs are JSON too: say which one it is and what to use */
        if (json_object_get(root, "free_energy_reduced"))
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s is the output of `dcm reduce`, not a fitted "
                               "model: compare the estimates, or give its \"free_energy_reduced\" "
                               "to `dcm compare --lme`", path);
        else
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"free_energy\" must be a number; is this "
                               "a dcm result file?", path);
        goto done;
    }
    s->F = json_number_value(F);
    json_t *an = json_object_get(root, "analysis");
    if (an && !(json_is_string(an) && (!strcmp(json_string_value(an), "csd") ||
                                       !strcmp(json_string_value(an), "task") ||
                                       !strcmp(json_string_value(an), "rdcm")))) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"analysis\" must be \"task\", \"csd\" or "
                           "\"rdcm\"", path);
        goto done;
    }
    s->csd = an && !strcmp(json_string_value(an), "csd");
    if (an && !strcmp(json_string_value(an), "rdcm")) {
        rc = rdcm_load(path, root, s, err);
        goto done;
    }
    /* names at the top level (dcm) or in "model" (SPM's reference files) */
    json_t *names = json_object_get(root, "regions") ? root : json_object_get(root, "model");
    if ((rc = read_names(path, "regions", names, &s->regions, &s->n, err)))
        goto done;
    if (s->csd) {   /* spectral DCM: no inputs */
        if (!(s->inputs = calloc(1, sizeof(char *)))) {
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
    } else if ((rc = read_names(path, "inputs", names, &s->inputs, &s->m, err))) {
        goto done;
    }
    const int n = s->n, m = s->m;
    json_t *vec = json_object_get(root, "vector");
    json_t *pm = json_object_get(vec, "posterior_mean");
    if (!json_is_object(vec) || !json_is_array(pm)) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: missing \"vector\".\"posterior_mean\"", path);
        goto done;
    }
    /* sizes in 64 bits: a count that does not fit an int (or whose
       covariance could not be held) is refused, never wrapped */
    const long long base = model_layout_count(n, m, 0), full = model_layout_count(n, m, 1);
    const long long ncsd = model_layout_count_csd(n);
    const size_t npa = json_array_size(pm);
    if (s->csd) {
        if ((long long)npa != ncsd || ncsd > IO_RESULT_MAX_PARAMS) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"vector\".\"posterior_mean\" has %zu entries; "
                               "a spectral DCM of %d regions has %lld (at most %d are supported)",
                               path, npa, n, ncsd, IO_RESULT_MAX_PARAMS);
            goto done;
        }
        s->nd = 0;
    } else if ((long long)npa == base && base <= IO_RESULT_MAX_PARAMS)
        s->nd = 0;
    else if ((long long)npa == full && full <= IO_RESULT_MAX_PARAMS)
        s->nd = n;
    else {
        if (base > IO_RESULT_MAX_PARAMS)
            rc = dcm_error_set(err, DCM_ERR_INPUT,
                               "%s: %d regions and %d inputs mean %lld parameters; at most %d are "
                               "supported", path, n, m, base, IO_RESULT_MAX_PARAMS);
        else
            rc = dcm_error_set(err, DCM_ERR_INPUT,
                               "%s: \"vector\".\"posterior_mean\" has %zu entries; %d regions and %d "
                               "inputs need %lld (bilinear) or %lld (nonlinear)", path, npa, n, m, base,
                               full);
        goto done;
    }
    const int np = (int)npa;
    s->np = np;
    json_t *opt = json_object_get(json_object_get(root, "model"), "options");
    json_t *ts = json_object_get(opt, "two_state");
    s->two_state = json_is_true(ts) || (json_is_integer(ts) && json_integer_value(ts) != 0);
    s->pE = malloc(sizeof(double) * (size_t)np);
    s->pV = malloc(sizeof(double) * (size_t)np);
    s->Ep = malloc(sizeof(double) * (size_t)np);
    s->Cp = malloc(sizeof(double) * (size_t)np * (size_t)np);
    if (!s->pE || !s->pV || !s->Ep || !s->Cp) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    if ((rc = read_vec(path, "\"vector\".\"prior_mean\"", json_object_get(vec, "prior_mean"), np,
                       s->pE, 1, err)) ||
        (rc = read_vec(path, "\"vector\".\"prior_var\"", json_object_get(vec, "prior_var"), np, s->pV,
                       1, err)) ||
        (rc = read_vec(path, "\"vector\".\"posterior_mean\"", pm, np, s->Ep, 1, err)) ||
        (rc = read_mat(path, "\"vector\".\"posterior_cov\"", json_object_get(vec, "posterior_cov"),
                       np, np, s->Cp, np, 1, err)))
        goto done;
    /* a negative variance is a damaged file: its sd would print as NaN */
    for (int p = 0; p < np && !rc; p++) {
        double v = s->Cp[(size_t)p * np + p];
        if (s->pV[p] < 0)
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"vector\".\"prior_var\"[%d] is %g: a variance "
                               "cannot be negative (the file is damaged)", path, p, s->pV[p]);
        else if (v < 0)
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"vector\".\"posterior_cov\"[%d][%d] is %g: a "
                               "variance cannot be negative (the file is damaged)", path, p, p, v);
    }
    if (rc)
        goto done;
    json_t *eh = json_object_get(root, "noise_log_precision");
    s->nh = s->csd ? n * n : n;   /* spectral DCM: one per channel (i, j), at i + n j */
    if (eh && !json_is_null(eh)) {
        if (!(s->Eh = malloc(sizeof(double) * (size_t)s->nh))) {
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
        if ((rc = read_vec(path, "\"noise_log_precision\"", eh, s->nh, s->Eh, 1, err)))
            goto done;
    }
    json_t *it = json_object_get(root, "iterations");
    if (json_is_integer(it))
        s->iterations = (int)json_integer_value(it);
    json_t *cv = json_object_get(root, "converged");
    if (json_is_boolean(cv))
        s->converged = json_is_true(cv);
    json_t *sc = json_object_get(root, "data_scale");
    if (json_is_number(sc))
        s->data_scale = json_number_value(sc);
    observed_fingerprint(root, s);
done:
    if (rc)
        io_result_summary_free(out);
    if (doc && !rc)
        *doc = root;   /* the caller reads further fields, then json_decref */
    else
        json_decref(root);
    return rc;
}
