/* io_extract.c — regional time series from 4D images (see io_extract.h). */
#include "io/io_extract.h"

#include <errno.h>
#include <fftw3.h>
#include <float.h>
#include <limits.h>
#include <stdarg.h>
#include <gsl/gsl_blas.h>
#include <gsl/gsl_linalg.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_atlas.h"
#include "io/io_atomic.h"
#include "io/io_nifti.h"
#include "io/io_tsv.h"
#include "vl/vl_linalg.h"

/* LAPACK (OpenBLAS): selected eigenpairs of a symmetric matrix. */
extern void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a,
                    const int *lda, const double *vl, const double *vu, const int *il,
                    const int *iu, const double *abstol, int *m, double *w, double *z,
                    const int *ldz, int *isuppz, double *work, const int *lwork, int *iwork,
                    const int *liwork, int *info, size_t l1, size_t l2, size_t l3);

/* ------------------------------------------------------------------ */
/* the high-pass basis                                                 */

int io_dct_ncols(int v, double TR, double cutoff)
{
    if (v < 1 || !(TR > 0) || !(cutoff > 0))
        return 1;
    double k = floor(2.0 * (v * TR) / cutoff + 1.0);
    return k < 1 ? 1 : k > v ? v : (int)k;
}

/* guards FFTW's planner, which every thread in the process shares */
static pthread_mutex_t fftw_planner_lock = PTHREAD_MUTEX_INITIALIZER;

int io_dct_basis(int v, int K, double *C, dcm_error *err)
{
    if (v < 1 || K < 1 || K > v)
        return dcm_error_set(err, DCM_ERR_INPUT, "DCT basis: %d columns for %d scans", K, v);
    /* FFTW's REDFT01 (DCT-III) of the unit vector e_k is
       Y_t = 2 cos(pi k (2t+1) / (2v)) for k > 0 and 1 for k = 0, so the
       K transforms of e_0..e_{K-1}, rescaled, are spm_dctmtx's columns. */
    double *in = fftw_malloc(sizeof(double) * (size_t)v * K);
    double *out = fftw_malloc(sizeof(double) * (size_t)v * K);
    if (!in || !out) {
        fftw_free(in);
        fftw_free(out);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "DCT basis: out of memory");
    }
    int nn[1] = {v};
    fftw_r2r_kind kind[1] = {FFTW_REDFT01};
    /* FFTW's planner is not thread-safe (execution is): serialise it */
    pthread_mutex_lock(&fftw_planner_lock);
    fftw_plan p = fftw_plan_many_r2r(1, nn, K, in, NULL, 1, v, out, NULL, 1, v, kind,
                                     FFTW_ESTIMATE);
    pthread_mutex_unlock(&fftw_planner_lock);
    if (!p) {
        fftw_free(in);
        fftw_free(out);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "DCT basis: FFTW cannot plan a DCT of %d", v);
    }
    memset(in, 0, sizeof(double) * (size_t)v * K);
    for (int k = 0; k < K; k++)
        in[k + (size_t)k * v] = 1.0;
    fftw_execute(p);
    pthread_mutex_lock(&fftw_planner_lock);
    fftw_destroy_plan(p);
    pthread_mutex_unlock(&fftw_planner_lock);
    for (int k = 0; k < K; k++) {
        double s = k == 0 ? 1.0 / sqrt((double)v) : 1.0 / sqrt(2.0 * v);
        for (int t = 0; t < v; t++)
            C[t + (size_t)k * v] = out[t + (size_t)k * v] * s;
    }
    fftw_free(in);
    fftw_free(out);
    return DCM_OK;
}

/* ------------------------------------------------------------------ */
/* adjustment and summaries                                            */

int io_regress_out(double *Y, int v, int nvox, const double *X0, int k, int *rank,
                   dcm_error *err)
{
    if (rank)
        *rank = 0;
    if (k == 0)
        return DCM_OK;
    if (k >= v)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%d confound columns for %d scans: nothing would be left of the data; "
                             "use fewer confounds or a longer high-pass cutoff", k, v);
    vl_init();
    gsl_matrix *U = gsl_matrix_alloc((size_t)v, (size_t)k);
    gsl_matrix *V = gsl_matrix_alloc((size_t)k, (size_t)k);
    gsl_vector *S = gsl_vector_alloc((size_t)k);
    if (!U || !V || !S) {
        gsl_matrix_free(U);
        gsl_matrix_free(V);
        gsl_vector_free(S);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    for (int t = 0; t < v; t++)
        for (int j = 0; j < k; j++)
            gsl_matrix_set(U, (size_t)t, (size_t)j, X0[t + (size_t)j * v]);
    int rc = DCM_OK;
    if (gsl_linalg_SV_decomp_jacobi(U, V, S) != 0) {
        rc = dcm_error_set(err, DCM_ERR_NUMERIC, "the confound matrix has no SVD (not finite?)");
        goto done;
    }
    /* MATLAB's rank tolerance */
    double smax = gsl_vector_get(S, 0), tol = (v > k ? v : k) * smax * DBL_EPSILON;
    int r = 0;
    for (int j = 0; j < k; j++)
        if (gsl_vector_get(S, (size_t)j) > tol)
            r++;
    if (rank)
        *rank = r;
    /* the kept columns of U, contiguous (the same arithmetic in the same
       order as reading U in place, without GSL's per-element accessor:
       this loop runs over every voxel of every region) */
    double *Uc = malloc(sizeof(double) * (size_t)v * (r ? (size_t)r : 1));
    if (!Uc) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    for (int j = 0, q = 0; j < k; j++)
        if (gsl_vector_get(S, (size_t)j) > tol) {
            for (int t = 0; t < v; t++)
                Uc[t + (size_t)q * v] = gsl_matrix_get(U, (size_t)t, (size_t)j);
            q++;
        }
    for (int c = 0; c < nvox; c++) {
        double *y = Y + (size_t)c * v;
        for (int j = 0; j < r; j++) {
            const double *u = Uc + (size_t)j * v;
            double b = 0.0;
            for (int t = 0; t < v; t++)
                b += u[t] * y[t];
            for (int t = 0; t < v; t++)
                y[t] -= b * u[t];
        }
    }
    free(Uc);
done:
    gsl_matrix_free(U);
    gsl_matrix_free(V);
    gsl_vector_free(S);
    return rc;
}

/* Two eigenvalues closer than this (relative to the largest) are a tie:
 * the principal eigenvector is then not defined (any mix of the tied
 * ones is as good), so the eigenvariate would be an arbitrary choice.
 * Sampling noise separates real eigenvalues by far more. */
#define IO_EIGEN_TIE_RTOL 1e-6

int io_eigenvariate(const double *y, int v, int nvox, double *u, double *weights,
                    double *explained, dcm_error *err)
{
    if (v < 1 || nvox < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "eigenvariate of an empty region");
    vl_init();
    /* SPM: the eigenvectors of the smaller of y'y (voxels) and yy' (scans) */
    const int big = v > nvox;       /* m > n in spm_regions */
    const int g = big ? nvox : v;
    /* LAPACK indexes the g x g matrix with 32-bit integers */
    if (g > 46340)
        return dcm_error_set(err, DCM_ERR_INPUT, "eigenvariate of %d scans x %d voxels: the "
                             "smaller of the two may be at most 46340; use --summary mean", v, nvox);
    /* dsyevr with RANGE = 'I' may return more eigenpairs than asked for
       when eigenvalues are tied (up to all g of them): W, Z and ISUPPZ are
       sized for that worst case, as its documentation requires (W: N,
       Z: LDZ x N, ISUPPZ: 2 N). */
    double *G = malloc(sizeof(double) * (size_t)g * g);
    double *Z = malloc(sizeof(double) * (size_t)g * g);
    double *W = malloc(sizeof(double) * (size_t)g);
    double *wv = malloc(sizeof(double) * (size_t)nvox);
    int *isuppz = malloc(sizeof(int) * 2 * (size_t)g);
    double *work = NULL;
    int *iwork = NULL;
    int rc = DCM_OK;
    if (!G || !Z || !W || !wv || !isuppz) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory (eigenvariate of %d scans x %d "
                           "voxels)", v, nvox);
        goto done;
    }
    /* the column-major v x nvox y is the row-major nvox x v matrix Yt:
       y'y = Yt Yt' and yy' = Yt' Yt */
    gsl_matrix_const_view Yt = gsl_matrix_const_view_array(y, (size_t)nvox, (size_t)v);
    gsl_matrix_view Gv = gsl_matrix_view_array(G, (size_t)g, (size_t)g);
    gsl_blas_dsyrk(CblasUpper, big ? CblasNoTrans : CblasTrans, 1.0, &Yt.matrix, 0.0, &Gv.matrix);
    double trace = 0.0;
    for (int i = 0; i < g; i++) {
        trace += G[(size_t)i * g + i];
        for (int j = 0; j < i; j++)
            G[(size_t)i * g + j] = G[(size_t)j * g + i];
    }
    if (!isfinite(trace)) {
        rc = dcm_error_set(err, DCM_ERR_NUMERIC, "eigenvariate: the region's values are too large "
                           "(their squares overflow)");
        goto done;
    }
    if (!(trace > 0)) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "the region's time series have no variance left "
                           "after adjustment (constant voxels?)");
        goto done;
    }
    /* the two largest eigenpairs (one when g = 1) */
    char jobz = 'V', range = 'I', uplo = 'U';
    int il = g > 1 ? g - 1 : 1, iu = g, mfound = 0, info = 0, lwork = -1, liwork = -1, iwq = 0;
    double abstol = 0.0, vlo = 0.0, vhi = 0.0, wq = 0.0;
    dsyevr_(&jobz, &range, &uplo, &g, G, &g, &vlo, &vhi, &il, &iu, &abstol, &mfound, W, Z, &g,
            isuppz, &wq, &lwork, &iwq, &liwork, &info, 1, 1, 1);
    if (info != 0 || !(wq >= 1) || !(wq < INT_MAX - 1.0) || iwq < 1 || iwq > INT_MAX - 1) {
        rc = dcm_error_set(err, DCM_ERR_NUMERIC, "eigenvariate: the eigensolver's workspace query "
                           "failed (info %d)", info);
        goto done;
    }
    lwork = (int)wq + 1;
    liwork = iwq + 1;
    work = malloc(sizeof(double) * (size_t)lwork);
    iwork = malloc(sizeof(int) * (size_t)liwork);
    if (!work || !iwork) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    dsyevr_(&jobz, &range, &uplo, &g, G, &g, &vlo, &vhi, &il, &iu, &abstol, &mfound, W, Z, &g,
            isuppz, work, &lwork, iwork, &liwork, &info, 1, 1, 1);
    if (info != 0 || mfound < iu - il + 1 || mfound > g) {
        rc = dcm_error_set(err, DCM_ERR_NUMERIC, "eigenvariate: the eigensolver failed (info %d, "
                           "%d eigenvalues found)", info, mfound);
        goto done;
    }
    /* the largest and the runner-up among those found (ascending order,
       but do not rely on it) */
    int top = 0;
    for (int q = 1; q < mfound; q++)
        if (W[q] > W[top])
            top = q;
    double w1 = W[top], w2 = -INFINITY;   /* (y may be scaled: print shares only) */
    for (int q = 0; q < mfound; q++)
        if (q != top && W[q] > w2)
            w2 = W[q];
    if (!(w1 > 0) || !isfinite(w1)) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "the region's time series have no variance left "
                           "after adjustment (constant voxels?)");
        goto done;
    }
    if (mfound > 1 && w1 - w2 <= IO_EIGEN_TIE_RTOL * w1) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "the region has no single principal component: its "
                           "%s largest eigenvalues are equal (each %.3g%% of the variance), so the "
                           "eigenvariate would be an arbitrary mix of their eigenvectors; use "
                           "--summary mean or another region", mfound > 2 ? "several" : "two",
                           100.0 * w1 / trace);
        goto done;
    }
    const double *z = Z + (size_t)top * g;
    double rs = sqrt(w1);
    if (big) {
        /* v = z (voxel weights); u = y v / sqrt(s1) */
        memcpy(wv, z, sizeof(double) * (size_t)nvox);
        for (int t = 0; t < v; t++) {
            double acc = 0.0;
            for (int c = 0; c < nvox; c++)
                acc += y[t + (size_t)c * v] * wv[c];
            u[t] = acc / rs;
        }
    } else {
        /* u = z; v = y'u / sqrt(s1) */
        memcpy(u, z, sizeof(double) * (size_t)v);
        for (int c = 0; c < nvox; c++) {
            double acc = 0.0;
            for (int t = 0; t < v; t++)
                acc += y[t + (size_t)c * v] * u[t];
            wv[c] = acc / rs;
        }
    }
    double sum = 0.0;
    for (int c = 0; c < nvox; c++)
        sum += wv[c];
    double d = sum < 0 ? -1.0 : 1.0;
    double f = d * sqrt(w1 / nvox);
    for (int t = 0; t < v; t++)
        u[t] *= f;
    if (weights)
        for (int c = 0; c < nvox; c++)
            weights[c] = wv[c] * d;
    if (explained)
        *explained = w1 / trace;
done:
    free(G);
    free(Z);
    free(W);
    free(wv);
    free(isuppz);
    free(work);
    free(iwork);
    return rc;
}

void io_mean_series(const double *y, int v, int nvox, double *u, double *explained)
{
    for (int t = 0; t < v; t++) {
        double acc = 0.0;
        for (int c = 0; c < nvox; c++)
            acc += y[t + (size_t)c * v];
        u[t] = nvox ? acc / nvox : 0.0;
    }
    if (!explained)
        return;
    double uu = 0.0, tot = 0.0, fit = 0.0;
    for (int t = 0; t < v; t++)
        uu += u[t] * u[t];
    for (int c = 0; c < nvox; c++) {
        double b = 0.0;
        for (int t = 0; t < v; t++) {
            b += u[t] * y[t + (size_t)c * v];
            tot += y[t + (size_t)c * v] * y[t + (size_t)c * v];
        }
        fit += uu > 0 ? b * b / uu : 0.0;
    }
    *explained = tot > 0 ? fit / tot : 0.0;
}

/* ------------------------------------------------------------------ */
/* the pipeline                                                        */

/* residual norm / raw norm at or below which a voxel is constant: far
   above the ~1e-15 of rounding in the regression, far below the 6e-8
   resolution of float32 data */
#define IO_FLAT_RTOL 1e-10
/* scans per image (see io_extract_run) */
#define IO_EXTRACT_MAX_SCANS 100000
/* The confound matrix's SVD costs about v K^2 (K ~ 2 v TR / cutoff grows
   with the scans): 5000 scans and 157 columns (1.2e8) take a second
   under the sanitizers, 12000 scans and 376 columns (1.7e9) 15 s; this
   bound keeps a small file claiming a long run or a long TR
   from running for hours. */
#define IO_EXTRACT_MAX_SVD_WORK 2e9

/* Append a sentence to r->warning ("; " between them). */
static void add_warning(io_extract_result *r, const char *fmt, ...)
{
    size_t k = strlen(r->warning);
    if (k + 3 >= sizeof r->warning)
        return;
    if (k)
        k += (size_t)snprintf(r->warning + k, sizeof r->warning - k, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->warning + k, sizeof r->warning - k, fmt, ap);
    va_end(ap);
}

void io_extract_result_free(io_extract_result *r)
{
    if (!r)
        return;
    free(r->y);
    free(r->X0);
    if (r->x0_names)
        for (int j = 0; j < r->nx0; j++)
            free(r->x0_names[j]);
    free(r->x0_names);
    free(r->sidecar);
    memset(r, 0, sizeof *r);
}

/* BIDS sidecar: the BOLD path with .json for .nii/.nii.gz/.hdr/.img
 * (allocated: a fixed buffer would cut a long path and name another file). */
static char *sidecar_path(const char *bold)
{
    static const char *const ext[] = {".nii.gz", ".hdr.gz", ".img.gz", ".nii", ".hdr", ".img", NULL};
    size_t l = strlen(bold), le = 0;
    for (int i = 0; ext[i] && !le; i++) {
        size_t k = strlen(ext[i]);
        if (l > k && strcmp(bold + l - k, ext[i]) == 0)
            le = k;
    }
    char *out = malloc(l - le + 6);
    if (out) {
        memcpy(out, bold, l - le);
        memcpy(out + l - le, ".json", 6);
    }
    return out;
}

/* The chosen confound columns of a TSV with a header; "n/a" cells (as
 * fMRIPrep writes in the first row of derivatives) become the mean of
 * the column's other values. out: v x ncol column-major. */
static int read_confounds(const io_extract_opts *o, int v, double *out, dcm_error *err)
{
    io_text_table t;
    int rc = io_text_read(o->confounds, &t, err);
    if (rc)
        return rc;
    if (t.rows < 1) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: empty file; expected a header and one row per "
                           "scan", o->confounds);
        goto done;
    }
    if (t.rows - 1 != v) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: %d rows after the header but %s has %d volumes; "
                           "the confounds need one row per scan", o->confounds, t.rows - 1, o->bold, v);
        goto done;
    }
    for (int q = 0; q < o->ncolumns; q++) {
        int c = -1;
        for (int j = 0; j < t.cols && c < 0; j++)
            if (strcmp(t.cells[j], o->columns[q]) == 0)
                c = j;
        if (c < 0) {
            char list[400] = "";
            size_t k = 0;
            for (int j = 0; j < t.cols && k + 40 < sizeof list; j++)
                k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", j ? ", " : "", t.cells[j]);
            if (k + 40 >= sizeof list)
                snprintf(list + sizeof list - 5, 5, "...");
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: no column \"%s\" (the header has: %s)",
                               o->confounds, o->columns[q], list);
            goto done;
        }
        double sum = 0.0;
        int nvalid = 0;
        double *col = out + (size_t)q * v;
        for (int r = 1; r <= v; r++) {
            const char *cell = t.cells[(size_t)r * t.cols + c];
            double x;
            if (strcmp(cell, "n/a") == 0 || strcmp(cell, "N/A") == 0) {
                col[r - 1] = NAN;
                continue;
            }
            if (io_parse_number(cell, &x) != 0) {
                rc = dcm_error_set(err, DCM_ERR_INPUT, "%s, line %d, column %d (\"%s\"): \"%s\" is "
                                   "not a finite number", o->confounds, t.line[r], c + 1,
                                   o->columns[q], cell);
                goto done;
            }
            col[r - 1] = x;
            sum += x;
            nvalid++;
        }
        if (nvalid == 0) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: column \"%s\" holds no number",
                               o->confounds, o->columns[q]);
            goto done;
        }
        for (int r = 0; r < v; r++)
            if (isnan(col[r]))
                col[r] = sum / nvalid;
    }
done:
    io_text_free(&t);
    return rc;
}

/* RepetitionTime / SliceTiming from the sidecar, when there is one. */
static int read_sidecar(const io_extract_opts *o, io_extract_result *r, double *tr_side,
                        json_t **slice_timing, json_t **root, dcm_error *err)
{
    *tr_side = 0.0;
    *slice_timing = NULL;
    *root = NULL;
    char *path = sidecar_path(o->bold);
    if (!path)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    struct stat st;
    if (stat(path, &st) != 0) {
        free(path);
        return DCM_OK;
    }
    r->sidecar = path;
    /* a FIFO would block json_load_file */
    if (!S_ISREG(st.st_mode))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: the BIDS sidecar is not a regular file (a "
                             "FIFO or device would block or never end)", path);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s:%d:%d: invalid JSON in the BIDS sidecar: %s",
                             path, je.line, je.column, je.text);
    *root = j;
    if (!json_is_object(j))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: the BIDS sidecar must be a JSON object", path);
    json_t *x = json_object_get(j, "RepetitionTime");
    if (x) {
        if (!json_is_number(x) || !(json_number_value(x) > 0) || !isfinite(json_number_value(x)))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"RepetitionTime\" must be a positive "
                                 "number of seconds", path);
        *tr_side = json_number_value(x);
    }
    *slice_timing = json_object_get(j, "SliceTiming");
    return DCM_OK;
}

/* TR: --tr, else the BIDS sidecar, else the header (r->tr, tr_source,
 * sidecar, a warning when the header disagrees). *st: the sidecar's
 * SliceTiming (owned by *side, which the caller releases). */
static int extract_tr(const io_extract_opts *o, const io_nifti *bold, io_extract_result *r,
                      json_t **st, json_t **side, dcm_error *err)
{
    double tr_side;
    int rc;
    if ((rc = read_sidecar(o, r, &tr_side, st, side, err)))
        return rc;
    if (o->tr > 0) {
        r->tr = o->tr;
        snprintf(r->tr_source, sizeof r->tr_source, "--tr");
    } else if (tr_side > 0) {
        r->tr = tr_side;
        snprintf(r->tr_source, sizeof r->tr_source, "sidecar RepetitionTime");
    } else if (bold->tr > 0) {
        r->tr = bold->tr;
        snprintf(r->tr_source, sizeof r->tr_source, "%s", bold->tr_units_known
                 ? "header pixdim[4]" : "header pixdim[4] (units unset: seconds assumed)");
    } else {
        char why[96];
        if (isnan(bold->tr_header))
            snprintf(why, sizeof why, "is not a number");
        else if (bold->tr_header < 0 || isinf(bold->tr_header))
            snprintf(why, sizeof why, "is %g (%s: not a repetition time),", bold->tr_header,
                     bold->tr_header < 0 ? "negative" : "infinite");
        else
            snprintf(why, sizeof why, "is unset (0)");
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: no repetition time: the header's pixdim[4] %s "
                           "and there is no BIDS sidecar with RepetitionTime; give --tr SECONDS",
                           o->bold, why);
        return rc;
    }
    if (bold->tr > 0 && bold->tr_units_known && fabs(bold->tr - r->tr) > 1e-3 * r->tr)
        add_warning(r, "the TR of the header (%g s) differs from the one used (%g s, %s)", bold->tr,
                    r->tr, r->tr_source);
    return DCM_OK;
}

/* The confound matrix X0 = [constant, DCT high-pass, chosen columns]
 * for r->v scans at r->tr (r->X0, x0_names, nx0, ndct; r->y allocated). */
static int extract_confounds(const io_extract_opts *o, io_extract_result *r, dcm_error *err)
{
    int rc = DCM_OK;
    int K = o->hpf > 0 ? io_dct_ncols(r->v, r->tr, o->hpf) : 1;
    r->ndct = K - 1;
    r->nx0 = K + o->ncolumns;
    if (r->nx0 >= r->v) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%d confound columns (constant, %d high-pass, %d "
                           "chosen) for %d scans: use a longer --hpf or fewer columns", r->nx0,
                           r->ndct, o->ncolumns, r->v);
        return rc;
    }
    if ((double)r->v * r->nx0 * r->nx0 > IO_EXTRACT_MAX_SVD_WORK) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: %d confound columns (constant, %d high-pass "
                           "for %d scans of %g s at a %g s cutoff, %d chosen) are too many to "
                           "regress out in reasonable time; use a longer --hpf (or --no-hpf), or "
                           "split the run", o->bold, r->nx0, r->ndct, r->v, r->tr, o->hpf,
                           o->ncolumns);
        return rc;
    }
    r->X0 = malloc(sizeof(double) * (size_t)r->v * r->nx0);
    r->x0_names = calloc((size_t)r->nx0, sizeof(char *));
    r->y = malloc(sizeof(double) * (size_t)r->v);
    if (!r->X0 || !r->x0_names || !r->y) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        return rc;
    }
    if ((rc = io_dct_basis(r->v, K, r->X0, err)))
        return rc;
    if (o->ncolumns && (rc = read_confounds(o, r->v, r->X0 + (size_t)K * r->v, err)))
        return rc;
    for (int j = 0; j < r->nx0; j++) {
        char nm[64];
        if (j == 0)
            snprintf(nm, sizeof nm, "constant");
        else if (j < K)
            snprintf(nm, sizeof nm, "cosine%02d", j);
        r->x0_names[j] = strdup(j < K ? nm : o->columns[j - K]);
        if (!r->x0_names[j]) {
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            return rc;
        }
    }
    return DCM_OK;
}

/* Y (r->v x nvox voxel series, overwritten) adjusted for r->X0 and
 * summarised into y (r->v) with *explained; *nflat: voxels left constant
 * by the adjustment. what: whose series, for messages ("the region's"). */
static int summarise(const io_extract_opts *o, io_extract_result *r, double *Y, int nvox,
                     const char *what, double *y, double *explained, int *nflat, dcm_error *err)
{
    /* Scale the data by a power of two (exact) so that squares and sums
       of squares neither overflow nor underflow; the summaries are
       linear in the data, so the scale is put back at the end. */
    double ymax = 0.0;
    const int v = r->v;
    int rc;
    for (size_t q = 0; q < (size_t)v * nvox; q++)
        ymax = fmax(ymax, fabs(Y[q]));
    const double scale = ymax > 0 ? ldexp(1.0, ilogb(ymax)) : 1.0;
    double *ss_raw = malloc(sizeof(double) * (size_t)nvox);
    if (!ss_raw) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        return rc;
    }
    for (int c = 0; c < nvox; c++) {
        double *col = Y + (size_t)c * v, ss = 0.0;
        for (int t = 0; t < v; t++) {
            col[t] /= scale;
            ss += col[t] * col[t];
        }
        ss_raw[c] = ss;
    }
    if ((rc = io_regress_out(Y, v, nvox, r->X0, r->nx0, &r->x0_rank, err))) {
        free(ss_raw);
        return rc;
    }
    /* A voxel whose residuals are rounding noise of its values (a
       constant voxel, or one the confounds explain entirely) carries no
       signal; a region of only such voxels has nothing to summarise, and
       its "variance explained" would be that of the noise. */
    int flat = 0;
    double worst = 0.0;
    for (int c = 0; c < nvox; c++) {
        const double *col = Y + (size_t)c * v;
        double ss = 0.0;
        for (int t = 0; t < v; t++)
            ss += col[t] * col[t];
        double rel = ss_raw[c] > 0 ? sqrt(ss / ss_raw[c]) : 0.0;
        worst = fmax(worst, rel);
        flat += rel <= IO_FLAT_RTOL;
    }
    free(ss_raw);
    if (flat == nvox) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: %s time series %s constant: after "
                           "removing the %s only rounding noise is left (at most %.2g of the "
                           "values); there is no signal to extract", o->bold, what,
                           nvox == 1 ? "is" : "are all", r->nx0 == 1 ? "constant"
                           : "confounds (constant, high-pass, chosen columns)", worst);
        return rc;
    }
    *nflat = flat;
    if (o->summary == IO_SUMMARY_MEAN)
        io_mean_series(Y, v, nvox, y, explained);
    else if ((rc = io_eigenvariate(Y, v, nvox, y, NULL, explained, err)))
        return rc;
    for (int t = 0; t < v; t++) {
        y[t] *= scale;
        if (!isfinite(y[t])) {
            rc = dcm_error_set(err, DCM_ERR_NUMERIC, "%s: %s summary overflows (values near "
                               "%g)", o->bold, what, ymax);
            return rc;
        }
    }
    return DCM_OK;
}

/* The --mask image, which must lie on the BOLD grid (none: DCM_OK). */
static int open_mask(const io_extract_opts *o, const io_nifti *bold, io_nifti *mimg, dcm_error *err)
{
    if (!o->mask)
        return DCM_OK;
    int rc = io_nifti_open(o->mask, IO_NIFTI_3D, mimg, err);
    char why[512];
    if (!rc && !io_nifti_same_grid(bold, mimg, why, sizeof why))
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: the mask is not on the grid of %s: %s; resample it "
                           "to the BOLD image first", o->mask, o->bold, why);
    return rc;
}

int io_extract_run(const io_extract_opts *o, io_extract_result *r, dcm_error *err)
{
    memset(r, 0, sizeof *r);
    io_nifti bold = {0}, mimg = {0}, aimg = {0};
    unsigned char *sel = NULL;
    double *Y = NULL;
    json_t *side = NULL;
    int rc;
    if (!o->mask && !o->atlas && !o->sphere)
        return dcm_error_set(err, DCM_ERR_USAGE, "no region: give a mask, an atlas label or a sphere");
    if ((rc = io_nifti_open(o->bold, IO_NIFTI_4D, &bold, err)))
        return rc;
    char why[512];
    if ((rc = open_mask(o, &bold, &mimg, err)))
        goto done;
    if (o->atlas) {
        if ((rc = io_nifti_open(o->atlas, IO_NIFTI_3D, &aimg, err)))
            goto done;
        if (!io_nifti_same_grid(&bold, &aimg, why, sizeof why)) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: the atlas is not on the grid of %s: %s; "
                               "resample it to the BOLD image first", o->atlas, o->bold, why);
            goto done;
        }
    }
    const int nx = bold.nx, ny = bold.ny, nz = bold.nz, v = bold.nt;
    /* a small file may claim millions of volumes (of one voxel) */
    if (v > IO_EXTRACT_MAX_SCANS) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: %d volumes; at most %d are supported (one "
                           "fMRI run)", o->bold, v, IO_EXTRACT_MAX_SCANS);
        goto done;
    }
    if (o->sphere) {
        double ijk[3];
        if (!(o->radius > 0) || !isfinite(o->radius)) {
            rc = dcm_error_set(err, DCM_ERR_USAGE, "the sphere's radius must be positive (mm)");
            goto done;
        }
        io_nifti_mm2vox(&bold, o->centre, ijk);
        const int dim[3] = {nx, ny, nz};
        for (int a = 0; a < 3; a++)
            if (!(ijk[a] >= -0.5 && ijk[a] <= dim[a] - 0.5)) {
                double lo[3], hi[3];
                io_nifti_vox2mm(&bold, 0, 0, 0, lo);
                io_nifti_vox2mm(&bold, nx - 1, ny - 1, nz - 1, hi);
                rc = dcm_error_set(err, DCM_ERR_INPUT,
                                   "%s: the sphere centre (%g, %g, %g) mm lies outside the image "
                                   "(voxel %.1f, %.1f, %.1f of %dx%dx%d through the %s; corner "
                                   "voxels at (%g, %g, %g) and (%g, %g, %g) mm)",
                                   o->bold, o->centre[0], o->centre[1], o->centre[2], ijk[0], ijk[1],
                                   ijk[2], nx, ny, nz, bold.affine_source, lo[0], lo[1], lo[2],
                                   hi[0], hi[1], hi[2]);
                goto done;
            }
    }
    sel = calloc(bold.nvox3, 1);
    if (!sel) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    size_t nsel = 0, nmask = 0, nlabel = 0, nsphere = 0;
    double lmin = INFINITY, lmax = -INFINITY;
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++)
            for (int i = 0; i < nx; i++) {
                size_t vox = (size_t)i + (size_t)nx * ((size_t)j + (size_t)ny * k);
                int in = 1;
                if (o->mask) {
                    double x = io_nifti_value(&mimg, vox, 0);
                    int m = isfinite(x) && x != 0.0;
                    nmask += m;
                    in &= m;
                }
                if (o->atlas) {
                    double x = io_nifti_value(&aimg, vox, 0);
                    int m = isfinite(x) && fabs(x - (double)o->label) < 1e-3;
                    if (isfinite(x) && x != 0.0) {
                        lmin = fmin(lmin, x);
                        lmax = fmax(lmax, x);
                    }
                    nlabel += m;
                    in &= m;
                }
                if (o->sphere) {
                    double xyz[3];
                    io_nifti_vox2mm(&bold, i, j, k, xyz);
                    double d2 = 0.0;
                    for (int a = 0; a < 3; a++)
                        d2 += (xyz[a] - o->centre[a]) * (xyz[a] - o->centre[a]);
                    int m = d2 <= o->radius * o->radius * (1.0 + 1e-9);
                    nsphere += m;
                    in &= m;
                }
                sel[vox] = (unsigned char)in;
                nsel += in;
            }
    if (nsel == 0) {
        if (o->mask && nmask == 0)
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: empty region: the mask has no non-zero "
                               "voxel", o->mask);
        else if (o->atlas && nlabel == 0) {
            if (isfinite(lmin))
                rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: empty region: no voxel has label %ld "
                                   "(the atlas holds labels from %g to %g)", o->atlas, o->label,
                                   lmin, lmax);
            else
                rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: empty region: the atlas has no "
                                   "labelled voxel", o->atlas);
        } else if (o->sphere && nsphere == 0)
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: empty region: no voxel centre lies within "
                               "%g mm of (%g, %g, %g) mm", o->bold, o->radius, o->centre[0],
                               o->centre[1], o->centre[2]);
        else
            rc = dcm_error_set(err, DCM_ERR_INPUT, "empty region: the sphere (%g mm around (%g, "
                               "%g, %g) mm) and the %s do not overlap", o->radius, o->centre[0],
                               o->centre[1], o->centre[2], o->mask ? "mask" : "atlas label");
        goto done;
    }
    if (nsel > (size_t)INT_MAX) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: the region has %zu voxels; at most %d are "
                           "supported", o->bold, nsel, INT_MAX);
        goto done;
    }
    /* voxel data, leaving out voxels with non-finite values (io_nifti
       keeps NaN and Inf as stored) */
    Y = malloc(sizeof(double) * (size_t)v * nsel);
    if (!Y) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory (%zu voxels x %d scans)", nsel, v);
        goto done;
    }
    int nvox = 0;
    double cen[3] = {0, 0, 0};
    for (size_t vox = 0; vox < bold.nvox3; vox++) {
        if (!sel[vox])
            continue;
        double *col = Y + (size_t)nvox * v;
        int finite = 1;
        for (int t = 0; t < v; t++) {
            col[t] = io_nifti_value(&bold, vox, t);
            finite &= isfinite(col[t]) != 0;
        }
        if (!finite) {
            r->excluded++;
            continue;
        }
        cen[0] += (double)(vox % (size_t)nx);
        cen[1] += (double)((vox / (size_t)nx) % (size_t)ny);
        cen[2] += (double)(vox / ((size_t)nx * ny));
        nvox++;
    }
    if (nvox == 0) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: empty region: all %zu voxels of the region hold "
                           "values that are not finite (NaN or Inf)", o->bold, nsel);
        goto done;
    }
    r->nvox = nvox;
    r->v = v;
    if (r->excluded)
        add_warning(r, "%d of the region's %zu voxels were left out: their time series hold NaN "
                    "or Inf values", r->excluded, nsel);
    for (int a = 0; a < 3; a++) {
        cen[a] /= nvox;
        r->centre_vox[a] = (int)lround(cen[a]);
    }
    if (o->sphere)
        memcpy(r->centre_mm, o->centre, sizeof r->centre_mm);
    else
        io_nifti_vox2mm(&bold, cen[0], cen[1], cen[2], r->centre_mm);

    json_t *st;
    if ((rc = extract_tr(o, &bold, r, &st, &side, err)))
        goto done;

    /* slice timing */
    if (o->slice_timing) {
        if (!st) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: --slice-timing needs \"SliceTiming\" in "
                               "the BIDS sidecar%s%s", o->bold, r->sidecar ? " " : " (none found)",
                               r->sidecar ? r->sidecar : "");
            goto done;
        }
        int sd = bold.slice_dim ? bold.slice_dim : 3;
        int nslices = sd == 1 ? nx : sd == 2 ? ny : nz;
        if (!json_is_array(st) || (int)json_array_size(st) != nslices) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"SliceTiming\" must list %d times (one per "
                               "slice along dimension %d), not %s", r->sidecar, nslices, sd,
                               json_is_array(st) ? "a different number" : "a non-array");
            goto done;
        }
        r->slice = r->centre_vox[sd - 1];
        json_t *x = json_array_get(st, (size_t)r->slice);
        double d = json_is_number(x) ? json_number_value(x) : NAN;
        if (!(d >= 0) || !(d < r->tr + 1e-9)) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"SliceTiming\"[%d] must be a time in [0, "
                               "TR) seconds", r->sidecar, r->slice);
            goto done;
        }
        r->delay = d;
        r->have_delay = 1;
    }

    if ((rc = extract_confounds(o, r, err)))
        goto done;
    int flat = 0;
    if ((rc = summarise(o, r, Y, nvox, "the region's", r->y, &r->explained, &flat, err)))
        goto done;
    if (flat)
        add_warning(r, "%d of the region's %d voxels are constant over time (after removing the "
                    "confounds)", flat, nvox);
done:
    json_decref(side);
    free(sel);
    free(Y);
    io_nifti_close(&bold);
    io_nifti_close(&mimg);
    io_nifti_close(&aimg);
    if (rc)
        io_extract_result_free(r);
    return rc;
}

/* ------------------------------------------------------------------ */
/* outputs                                                             */

static void write_tsv(FILE *f, int rows, int cols, const double *x, char *const *names)
{
    for (int j = 0; j < cols; j++)
        fprintf(f, "%s%s", j ? "\t" : "", names[j]);
    fputc('\n', f);
    for (int t = 0; t < rows; t++) {
        for (int j = 0; j < cols; j++)
            fprintf(f, "%s%.17g", j ? "\t" : "", x[t + (size_t)j * rows]);
        fputc('\n', f);
    }
}

/* The fields of PREFIX.json about the data and the adjustment (common to
 * one region and to every label of an atlas). */
static void describe_adjustment(json_t *j, const io_extract_opts *o, const io_extract_result *r)
{
    json_object_set_new(j, "summary", json_string(o->summary == IO_SUMMARY_MEAN
                                                      ? "mean" : "eigenvariate"));
    json_object_set_new(j, "scans", json_integer(r->v));
    json_object_set_new(j, "TR", json_real(r->tr));
    json_object_set_new(j, "TR_source", json_string(r->tr_source));
    if (r->sidecar)
        json_object_set_new(j, "sidecar", json_string(r->sidecar));
    json_object_set_new(j, "hpf_cutoff", o->hpf > 0 ? json_real(o->hpf) : json_null());
    json_object_set_new(j, "highpass_columns", json_integer(r->ndct));
    json_t *cn = json_array();
    for (int q = 0; q < o->ncolumns; q++)
        json_array_append_new(cn, json_string(o->columns[q]));
    json_object_set_new(j, "confound_columns", cn);
    if (o->confounds)
        json_object_set_new(j, "confounds_source", json_string(o->confounds));
    json_object_set_new(j, "confounds_rank", json_integer(r->x0_rank));
}

static void describe_files(json_t *j, const char *prefix)
{
    char buf[1100];
    snprintf(buf, sizeof buf, "%s.tsv", prefix);
    json_object_set_new(j, "timeseries", json_string(buf));
    snprintf(buf, sizeof buf, "%s_confounds.tsv", prefix);
    json_object_set_new(j, "confounds", json_string(buf));
}

static json_t *describe(const char *prefix, const io_extract_opts *o, const io_extract_result *r)
{
    json_t *j = json_object();
    json_t *reg = json_object();
    json_object_set_new(j, "name", json_string(o->name));
    json_object_set_new(j, "bold", json_string(o->bold));
    if (o->mask)
        json_object_set_new(reg, "mask", json_string(o->mask));
    if (o->atlas) {
        json_object_set_new(reg, "atlas", json_string(o->atlas));
        json_object_set_new(reg, "label", json_integer(o->label));
    }
    if (o->sphere) {
        json_object_set_new(reg, "sphere_centre_mm",
                            json_pack("[fff]", o->centre[0], o->centre[1], o->centre[2]));
        json_object_set_new(reg, "sphere_radius_mm", json_real(o->radius));
    }
    json_object_set_new(j, "region", reg);
    json_object_set_new(j, "voxels", json_integer(r->nvox));
    json_object_set_new(j, "voxels_excluded_nonfinite", json_integer(r->excluded));
    json_object_set_new(j, "centre_mm",
                        json_pack("[fff]", r->centre_mm[0], r->centre_mm[1], r->centre_mm[2]));
    json_object_set_new(j, "centre_voxel",
                        json_pack("[iii]", r->centre_vox[0], r->centre_vox[1], r->centre_vox[2]));
    json_object_set_new(j, "variance_explained", json_real(r->explained));
    describe_adjustment(j, o, r);
    if (r->have_delay) {
        json_object_set_new(j, "delay", json_real(r->delay));
        json_object_set_new(j, "slice", json_integer(r->slice));
    }
    if (r->warning[0])
        json_object_set_new(j, "warning", json_string(r->warning));
    describe_files(j, prefix);
    return j;
}

/* PREFIX.tsv (the series y, v x ny, named), PREFIX_confounds.tsv and
 * PREFIX.json (j, released here), all three or none. */
static int write_outputs(const char *prefix, json_t *j, int ny, const double *y, char *const *names,
                         const io_extract_result *r, dcm_error *err)
{
    size_t lp = strlen(prefix);
    char *paths[3];
    static const char *const suffix[3] = {".tsv", "_confounds.tsv", ".json"};
    io_atomic a[3];
    int opened = 0, rc = DCM_OK;
    memset(a, 0, sizeof a);
    for (int i = 0; i < 3; i++) {
        paths[i] = malloc(lp + 20);
        if (paths[i])
            snprintf(paths[i], lp + 20, "%s%s", prefix, suffix[i]);
    }
    if (!j || !paths[0] || !paths[1] || !paths[2]) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    for (; opened < 3; opened++)
        if ((rc = io_atomic_open(&a[opened], paths[opened], err)))
            break;
    if (rc)
        goto done;
    write_tsv(a[0].fp, r->v, ny, y, names);
    write_tsv(a[1].fp, r->v, r->nx0, r->X0, r->x0_names);
    int jrc = json_dumpf(j, a[2].fp, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    fputc('\n', a[2].fp);
    if (jrc != 0) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "%s: cannot write", paths[2]);
        goto done;
    }
    /* everything is written: the three replace the old ones together or
       not at all (earlier files are restored, never deleted) */
    rc = io_atomic_commit_all(a, 3, err);
    opened = 0;
done:
    json_decref(j);
    for (int i = 0; i < opened; i++)
        io_atomic_abort(&a[i]);
    for (int i = 0; i < 3; i++)
        free(paths[i]);
    return rc;
}

int io_extract_write(const char *prefix, const io_extract_opts *o, const io_extract_result *r,
                     dcm_error *err)
{
    char *name = (char *)o->name;
    return write_outputs(prefix, describe(prefix, o, r), 1, r->y, &name, r, err);
}

/* ------------------------------------------------------------------ */
/* every label of an atlas (io_extract_atlas_run)                      */

/* A growing string (warnings that list labels can be long). */
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0 || b->oom)
        return;
    if (b->len + (size_t)need + 1 > b->cap) {
        size_t cap = 2 * (b->len + (size_t)need + 1) + 64;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)need;
}

/* a new sentence of the warning */
static void sb_sentence(strbuf *b)
{
    if (b->len)
        sb_printf(b, "; ");
}

void io_extract_atlas_result_free(io_extract_atlas_result *r)
{
    if (!r)
        return;
    io_extract_result_free(&r->common);
    for (int k = 0; k < r->nregions; k++)
        free(r->name[k]);
    for (int k = 0; k < r->nmissing; k++) {
        free(r->missing_name[k]);
        free(r->missing_why[k]);
    }
    free(r->label);
    free(r->name);
    free(r->nvox);
    free(r->excluded);
    free(r->explained);
    free(r->centre_mm);
    free(r->Y);
    free(r->missing);
    free(r->missing_name);
    free(r->missing_why);
    free(r->warning);
    memset(r, 0, sizeof *r);
}

static int find_long(const long *a, int n, long x)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (a[mid] == x)
            return mid;
        if (a[mid] < x)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* The table's name of a label, else label_N (allocated). */
static char *label_name(const io_atlas_names *t, long label)
{
    const char *nm = t->count ? io_atlas_names_find(t, label) : NULL;
    char buf[32];
    if (!nm) {
        snprintf(buf, sizeof buf, "label_%ld", label);
        nm = buf;
    }
    return strdup(nm);
}

static int add_missing(io_extract_atlas_result *r, long label, char *name, const char *why)
{
    char *w = strdup(why);
    if (!name || !w) {
        free(name);
        free(w);
        return -1;
    }
    r->missing[r->nmissing] = label;
    r->missing_name[r->nmissing] = name;
    r->missing_why[r->nmissing++] = w;
    return 0;
}

/* The labels of the atlas and of the table, merged (both ascending). */
static long *merge_labels(const long *a, int na, const long *b, int nb, int *n)
{
    long *m = malloc(sizeof(long) * (size_t)(na + nb + 1));
    int i = 0, j = 0, k = 0;
    if (!m)
        return NULL;
    while (i < na || j < nb) {
        long x = j >= nb || (i < na && a[i] <= b[j]) ? a[i] : b[j];
        m[k++] = x;
        while (i < na && a[i] == x)
            i++;
        while (j < nb && b[j] == x)
            j++;
    }
    *n = k;
    return m;
}

/* The result's arrays for up to n regions. */
static int atlas_result_alloc(io_extract_atlas_result *r, int n, int v)
{
    size_t k = n ? (size_t)n : 1;
    r->label = malloc(sizeof(long) * k);
    r->name = calloc(k, sizeof(char *));
    r->nvox = calloc(k, sizeof(int));
    r->excluded = calloc(k, sizeof(int));
    r->explained = calloc(k, sizeof(double));
    r->centre_mm = calloc(3 * k, sizeof(double));
    r->Y = malloc(sizeof(double) * k * (size_t)v);
    r->missing = malloc(sizeof(long) * k);
    r->missing_name = calloc(k, sizeof(char *));
    r->missing_why = calloc(k, sizeof(char *));
    return r->label && r->name && r->nvox && r->excluded && r->explained && r->centre_mm && r->Y &&
           r->missing && r->missing_name && r->missing_why ? 0 : -1;
}

/* One label's voxels (list of BOLD voxel indices) into region k of r, or
 * into the missing list with the reason. */
static int atlas_region(const io_extract_opts *o, const io_nifti *bold, io_extract_atlas_result *r,
                        long label, char *name, const size_t *list, int count, double *Y,
                        strbuf *wb, dcm_error *err)
{
    io_extract_result *c = &r->common;
    const int v = c->v, nx = bold->nx, ny = bold->ny;
    int nvox = 0, excluded = 0;
    double cen[3] = {0, 0, 0};
    for (int q = 0; q < count; q++) {
        size_t vox = list[q];
        double *col = Y + (size_t)nvox * v;
        int finite = 1;
        for (int t = 0; t < v; t++) {
            col[t] = io_nifti_value(bold, vox, t);
            finite &= isfinite(col[t]) != 0;
        }
        if (!finite) {
            excluded++;
            continue;
        }
        cen[0] += (double)(vox % (size_t)nx);
        cen[1] += (double)((vox / (size_t)nx) % (size_t)ny);
        cen[2] += (double)(vox / ((size_t)nx * ny));
        nvox++;
    }
    if (nvox == 0)
        return add_missing(r, label, name, "only voxels with NaN or Inf values")
                   ? dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory") : DCM_OK;
    const int k = r->nregions;
    char what[300];
    snprintf(what, sizeof what, "region %s's (label %ld)", name, label);
    int flat = 0;
    dcm_error e = {0, ""};
    int rc = summarise(o, c, Y, nvox, what, r->Y + (size_t)k * v, &r->explained[k], &flat, &e);
    if (rc == DCM_ERR_INPUT)
        return add_missing(r, label, name, "its time series are constant after removing the confounds")
                   ? dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory") : DCM_OK;
    if (rc) {
        free(name);
        *err = e;
        return rc;
    }
    r->label[k] = label;
    r->name[k] = name;
    r->nvox[k] = nvox;
    r->excluded[k] = excluded;
    io_nifti_vox2mm(bold, cen[0] / nvox, cen[1] / nvox, cen[2] / nvox, r->centre_mm + 3 * k);
    r->nregions++;
    if (excluded) {
        sb_sentence(wb);
        sb_printf(wb, "%s: %d of its %d voxels were left out (NaN or Inf values)", name, excluded,
                  count);
    }
    if (flat) {
        sb_sentence(wb);
        sb_printf(wb, "%s: %d of its %d voxels are constant over time (after removing the "
                  "confounds)", name, flat, nvox);
    }
    return DCM_OK;
}

/* The warnings about labels without a column and labels without a name. */
static void atlas_warnings(const io_extract_opts *o, const io_extract_atlas_result *r, strbuf *wb,
                           const long *unnamed, int nunnamed)
{
    if (r->nmissing) {
        sb_sentence(wb);
        sb_printf(wb, "%d label%s of %s%s%s ha%s no column:", r->nmissing, r->nmissing == 1 ? "" : "s",
                  o->atlas, o->labels ? " and " : "", o->labels ? o->labels : "",
                  r->nmissing == 1 ? "s" : "ve");
        for (int k = 0; k < r->nmissing; k++)
            sb_printf(wb, "%s %s (%ld): %s", k ? "," : "", r->missing_name[k], r->missing[k],
                      r->missing_why[k]);
    }
    if (nunnamed) {
        sb_sentence(wb);
        sb_printf(wb, "%d label%s of the atlas %s not in %s and %s named label_N:", nunnamed,
                  nunnamed == 1 ? "" : "s", nunnamed == 1 ? "is" : "are", o->labels,
                  nunnamed == 1 ? "is" : "are");
        for (int k = 0; k < nunnamed && k < 50; k++)
            sb_printf(wb, " %ld", unnamed[k]);
        if (nunnamed > 50)
            sb_printf(wb, " ...");
    }
}

int io_extract_atlas_run(const io_extract_opts *o, io_extract_atlas_result *r, dcm_error *err)
{
    memset(r, 0, sizeof *r);
    io_extract_result *c = &r->common;
    io_nifti bold = {0}, mimg = {0}, aimg = {0};
    io_atlas_names names = {0};
    long *lab = NULL, *alabels = NULL, *cand = NULL, *unnamed = NULL;
    int *cnt = NULL, *cnt_all = NULL, nal = 0, ncand = 0, nunnamed = 0;
    size_t *start = NULL, *list = NULL;
    double *Y = NULL;
    json_t *side = NULL;
    strbuf wb = {0};
    int rc;
    if (!o->atlas || o->sphere || o->slice_timing)
        return dcm_error_set(err, DCM_ERR_USAGE, "every label of an atlas needs the atlas, and takes "
                             "no sphere and no slice timing");
    if ((rc = io_nifti_open(o->bold, IO_NIFTI_4D, &bold, err)))
        return rc;
    if ((rc = open_mask(o, &bold, &mimg, err)))
        goto done;
    if ((rc = io_nifti_open(o->atlas, IO_NIFTI_3D, &aimg, err)))
        goto done;
    const int v = bold.nt;
    if (v > IO_EXTRACT_MAX_SCANS) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: %d volumes; at most %d are supported (one "
                           "fMRI run)", o->bold, v, IO_EXTRACT_MAX_SCANS);
        goto done;
    }
    if (o->labels && (rc = io_atlas_names_read(o->labels, &names, err)))
        goto done;
    if ((rc = io_atlas_labels(&aimg, &alabels, &nal, err)))
        goto done;
    r->atlas_labels = nal;
    if (nal == 0) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: the atlas has no labelled voxel (every value is "
                           "0, NaN or Inf)", o->atlas);
        goto done;
    }
    lab = malloc(sizeof(long) * (bold.nvox3 ? bold.nvox3 : 1));
    cand = merge_labels(alabels, nal, names.index, names.count, &ncand);
    unnamed = malloc(sizeof(long) * (size_t)nal);
    if (!lab || !cand || !unnamed) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    if ((rc = io_atlas_sample(&aimg, &bold, lab, &r->resampled, err)))
        goto done;
    /* the voxels sorted into labels: counted in one pass over the grid,
       then listed by label (a counting sort), so that each label's series
       are read from its own list, not by scanning the image per label */
    cnt = calloc((size_t)ncand, sizeof(int));
    cnt_all = calloc((size_t)ncand, sizeof(int));
    start = calloc((size_t)ncand + 1, sizeof(size_t));
    if (!cnt || !cnt_all || !start) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    size_t total = 0;
    for (size_t vox = 0; vox < bold.nvox3; vox++) {
        if (!lab[vox])
            continue;
        int k = find_long(cand, ncand, lab[vox]);   /* always found: lab holds atlas labels */
        cnt_all[k]++;
        if (o->mask) {
            double x = io_nifti_value(&mimg, vox, 0);
            if (!(isfinite(x) && x != 0.0)) {
                lab[vox] = 0;
                continue;
            }
        }
        cnt[k]++;
        total++;
    }
    int maxcnt = 0;
    for (int k = 0; k < ncand; k++) {
        start[k + 1] = start[k] + (size_t)cnt[k];
        maxcnt = cnt[k] > maxcnt ? cnt[k] : maxcnt;
    }
    list = malloc(sizeof(size_t) * (total ? total : 1));
    Y = malloc(sizeof(double) * (size_t)v * (maxcnt ? (size_t)maxcnt : 1));
    if (!list || !Y || atlas_result_alloc(r, ncand, v)) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory (%zu labelled voxels x %d scans)",
                           total, v);
        goto done;
    }
    for (int k = 0; k < ncand; k++)
        cnt[k] = 0;
    for (size_t vox = 0; vox < bold.nvox3; vox++)
        if (lab[vox]) {
            int k = find_long(cand, ncand, lab[vox]);
            list[start[k] + (size_t)cnt[k]++] = vox;
        }
    c->v = v;
    json_t *st;
    if ((rc = extract_tr(o, &bold, c, &st, &side, err)) || (rc = extract_confounds(o, c, err)))
        goto done;
    for (int k = 0; k < ncand && !rc; k++) {
        char *name = label_name(&names, cand[k]);
        int in_atlas = find_long(alabels, nal, cand[k]) >= 0;
        if (in_atlas && names.count && !io_atlas_names_find(&names, cand[k]))
            unnamed[nunnamed++] = cand[k];
        /* a label_N that a table's name already is would make two columns alike */
        if (name && names.count && !io_atlas_names_find(&names, cand[k]))
            for (int q = 0; q < names.count && !rc; q++)
                if (!strcmp(names.name[q], name))
                    rc = dcm_error_set(err, DCM_ERR_INPUT, "%s, line %d: the name \"%s\" is also what "
                                       "the unnamed atlas label %ld would be called; rename it or "
                                       "add label %ld to the table", o->labels, names.line[q], name,
                                       cand[k], cand[k]);
        if (rc) {
            free(name);
            break;
        }
        const char *gone = !in_atlas ? "not in the atlas"
                         : cnt_all[k] == 0 ? "no voxel on the BOLD grid after resampling the atlas"
                         : cnt[k] == 0 ? "no voxel inside the mask" : NULL;
        if (!name || gone) {
            if (!name || add_missing(r, cand[k], name, gone))
                rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            continue;
        }
        rc = atlas_region(o, &bold, r, cand[k], name, list + start[k], cnt[k], Y, &wb, err);
    }
    if (rc)
        goto done;
    if (r->nregions == 0) {
        strbuf lb = {0};
        for (int k = 0; k < r->nmissing && k < 10; k++)
            sb_printf(&lb, "%s%s: %s", k ? "; " : "", r->missing_name[k], r->missing_why[k]);
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: no label of the atlas has a usable voxel in %s%s "
                           "(%s%s)%s", o->atlas, o->bold, r->resampled ? " after resampling (do the "
                           "two images cover the same space? compare their sform/qform)" : "",
                           lb.s ? lb.s : "", r->nmissing > 10 ? "; ..." : "",
                           o->mask ? "; the mask may not overlap the atlas" : "");
        free(lb.s);
        goto done;
    }
    strbuf all = {0};
    if (c->warning[0])
        sb_printf(&all, "%s", c->warning);
    atlas_warnings(o, r, &all, unnamed, nunnamed);
    if (wb.len) {
        sb_sentence(&all);
        sb_printf(&all, "%s", wb.s);
    }
    r->warning = all.s ? all.s : strdup("");
    if (all.oom || wb.oom || !r->warning)
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
done:
    free(wb.s);
    json_decref(side);
    free(lab);
    free(alabels);
    free(cand);
    free(unnamed);
    free(cnt);
    free(cnt_all);
    free(start);
    free(list);
    free(Y);
    io_atlas_names_free(&names);
    io_nifti_close(&bold);
    io_nifti_close(&mimg);
    io_nifti_close(&aimg);
    if (rc)
        io_extract_atlas_result_free(r);
    return rc;
}

int io_extract_atlas_write(const char *prefix, const io_extract_opts *o,
                           const io_extract_atlas_result *r, dcm_error *err)
{
    json_t *j = json_object();
    json_object_set_new(j, "bold", json_string(o->bold));
    json_object_set_new(j, "atlas", json_string(o->atlas));
    if (o->labels)
        json_object_set_new(j, "labels_table", json_string(o->labels));
    if (o->mask)
        json_object_set_new(j, "mask", json_string(o->mask));
    json_object_set_new(j, "atlas_resampled", json_boolean(r->resampled));
    if (r->resampled)
        json_object_set_new(j, "resampling", json_string("nearest neighbour through the affines "
                                                         "(sform, else qform)"));
    json_object_set_new(j, "atlas_labels", json_integer(r->atlas_labels));
    json_t *regs = json_array();
    for (int k = 0; k < r->nregions; k++) {
        const double *c = r->centre_mm + 3 * k;
        json_array_append_new(regs, json_pack("{s:s, s:I, s:i, s:i, s:[fff], s:f}", "name",
                                              r->name[k], "label", (json_int_t)r->label[k], "voxels",
                                              r->nvox[k], "voxels_excluded_nonfinite",
                                              r->excluded[k], "centre_mm", c[0], c[1], c[2],
                                              "variance_explained", r->explained[k]));
    }
    json_object_set_new(j, "regions", regs);
    json_t *miss = json_array();
    for (int k = 0; k < r->nmissing; k++)
        json_array_append_new(miss, json_pack("{s:s, s:I, s:s}", "name", r->missing_name[k], "label",
                                              (json_int_t)r->missing[k], "reason", r->missing_why[k]));
    json_object_set_new(j, "missing_labels", miss);
    describe_adjustment(j, o, &r->common);
    if (r->warning && r->warning[0])
        json_object_set_new(j, "warning", json_string(r->warning));
    describe_files(j, prefix);
    return write_outputs(prefix, j, r->nregions, r->Y, r->name, &r->common, err);
}
