/* test_rdcm.c — regression DCM against TAPAS (../shared/reference/rdcm):
 * region 1 piece by piece (HRF, spectra, filter masks, normal equations,
 * priors, VB trajectories of rDCM and ordered sparse rDCM), then the whole
 * smith50 case (rDCM; ordered sparse rDCM over TAPAS's p0 grid), and the
 * errors for input rDCM cannot fit. */
#include "test_util.h"

#include <complex.h>
#include <zlib.h>

#include "dcm/dcm_rdcm.h"
#include "io/io_tsv.h"
#include "models/model_rdcm.h"

#define REF "reference/rdcm/smith50/"
#define DATA "datasets/rdcm/smith50/"

/* The smith50 case, loaded once. */
typedef struct {
    int loaded, ok;
    int N, n, m, r;
    double TR;
    double *Y, *u, *a, *c;   /* N x n, Nu x m, n x n, n x m */
} smith50;

static smith50 case_s;

static double rel_err(const double *a, const double *b, size_t count)
{
    double d = 0.0, m = 0.0;
    for (size_t k = 0; k < count; k++) {
        d = fmax(d, fabs(a[k] - b[k]));
        m = fmax(m, fabs(b[k]));
    }
    return m > 0 ? d / m : d;
}

static double max_abs_diff(const double *a, const double *b, size_t count)
{
    double d = 0.0;
    for (size_t k = 0; k < count; k++)
        d = fmax(d, fabs(a[k] - b[k]));
    return d;
}

/* largest |a - b| / |b| over entries with b != 0 (and |a| where b = 0) */
static double max_rel_entry(const double *a, const double *b, size_t count)
{
    double d = 0.0;
    for (size_t k = 0; k < count; k++)
        d = fmax(d, b[k] != 0 ? fabs(a[k] - b[k]) / fabs(b[k]) : fabs(a[k]));
    return d;
}

/* a JSON matrix of rows (numbers or booleans) into column-major */
static int json_matrix(json_t *arr, int rows, int cols, double *out)
{
    if (!arr || (int)json_array_size(arr) != rows)
        return -1;
    for (int i = 0; i < rows; i++) {
        json_t *row = json_array_get(arr, (size_t)i);
        if ((int)json_array_size(row) != cols)
            return -1;
        for (int j = 0; j < cols; j++) {
            json_t *x = json_array_get(row, (size_t)j);
            out[i + (size_t)rows * j] = json_is_boolean(x) ? (json_is_true(x) ? 1.0 : 0.0)
                                                           : json_number_value(x);
        }
    }
    return 0;
}

static json_t *load_ref(const char *rel)
{
    char path[4096];
    if (!test_shared_path(rel, path, sizeof path))
        return NULL;
    return test_load_json(path);
}

static int load_events(const char *path, json_t *inputs, smith50 *s)
{
    io_text_table t;
    dcm_error err = {0};
    if (io_text_read(path, &t, &err) != DCM_OK) {
        printf("\n%s\n", err.msg);
        return -1;
    }
    int nev = t.rows - 1, rc = 0;
    double *on = malloc(sizeof(double) * (size_t)nev), *du = malloc(sizeof(double) * (size_t)nev);
    int *in = malloc(sizeof(int) * (size_t)nev);
    for (int e = 0; e < nev; e++) {
        char **row = t.cells + (size_t)(e + 1) * t.cols;
        on[e] = atof(row[0]);
        du[e] = atof(row[1]);
        in[e] = -1;
        for (int i = 0; i < s->m; i++)
            if (!strcmp(row[2], json_string_value(json_array_get(inputs, (size_t)i))))
                in[e] = i;
    }
    s->u = malloc(sizeof(double) * (size_t)s->N * s->r * s->m);
    if (dcm_rdcm_events_to_inputs(nev, on, du, in, s->m, s->N * s->r, s->TR / s->r, s->u, &err)) {
        printf("\n%s\n", err.msg);
        rc = -1;
    }
    free(on);
    free(du);
    free(in);
    io_text_free(&t);
    return rc;
}

static const smith50 *load_smith50(void)
{
    smith50 *s = &case_s;
    char path[4096];
    if (!test_shared_path(DATA "bold.tsv.gz", path, sizeof path))
        return NULL;
    if (s->loaded)
        return s->ok ? s : NULL;
    s->loaded = 1;
    io_table bold;
    dcm_error err = {0};
    if (io_tsv_read(path, &bold, &err) != DCM_OK) {
        printf("\n%s\n", err.msg);
        return NULL;
    }
    json_t *model = load_ref(DATA "model.json");
    if (!model) {
        io_table_free(&bold);
        return NULL;
    }
    s->N = bold.rows, s->n = bold.cols;
    s->m = (int)json_integer_value(json_object_get(model, "n_inputs"));
    s->r = (int)json_integer_value(json_object_get(model, "microtime_per_scan"));
    s->TR = json_number_value(json_object_get(model, "TR"));
    s->Y = bold.data;
    bold.data = NULL;
    io_table_free(&bold);
    s->a = malloc(sizeof(double) * (size_t)s->n * s->n);
    s->c = malloc(sizeof(double) * (size_t)s->n * s->m);
    snprintf(path, sizeof path, "%s/" DATA "events.tsv", test_shared_dir());
    if (json_matrix(json_object_get(model, "a"), s->n, s->n, s->a) ||
        json_matrix(json_object_get(model, "c"), s->n, s->m, s->c) ||
        load_events(path, json_object_get(model, "inputs"), s)) {
        json_decref(model);
        return NULL;
    }
    json_decref(model);
    s->ok = 1;
    return s;
}

static void free_smith50(void)
{
    free(case_s.Y);
    free(case_s.u);
    free(case_s.a);
    free(case_s.c);
}

/* A gzip TSV as a table (one column per name). */
static int read_gz_table(const char *rel, io_table *t)
{
    char path[4096];
    if (!test_shared_path(rel, path, sizeof path))
        return -1;
    dcm_error err = {0};
    if (io_tsv_read(path, t, &err) != DCM_OK) {
        printf("\n%s\n", err.msg);
        CU_FAIL("reference table unreadable");
        return -1;
    }
    return 0;
}

static double *column(const io_table *t, const char *name)
{
    int j = io_table_find(t, name);
    CU_ASSERT_FATAL(j >= 0);
    return t->data + (size_t)t->rows * j;
}

/* ---- components of region 1 ------------------------------------------- */

static void test_hrf(void)
{
    const smith50 *s = load_smith50();
    io_table t;
    if (!s || read_gz_table(REF "hrf.tsv.gz", &t))
        return;
    int Nu = s->N * s->r;
    CU_ASSERT_EQUAL_FATAL(t.rows, Nu);
    double *h = malloc(sizeof(double) * (size_t)Nu);
    model_rdcm_hrf(s->TR / s->r, Nu, h);
    double e = max_abs_diff(h, t.data, (size_t)Nu), peak = test_max_abs(t.data, Nu);
    printf("\n  HRF: max |h - TAPAS| = %.3g (peak %.5f), relative to the peak %.3g ", e, peak, e / peak);
    CU_ASSERT(e / peak < 1e-12);
    CU_ASSERT(h[0] == 0 && h[3] == 0 && h[4] < 0);
    free(h);
    io_table_free(&t);
}

static void test_spectra_and_masks(void)
{
    const smith50 *s = load_smith50();
    io_table fft, masks, uc;
    if (!s || read_gz_table(REF "region1_fft.tsv.gz", &fft))
        return;
    if (read_gz_table(REF "filter_masks.tsv.gz", &masks)) {
        io_table_free(&fft);
        return;
    }
    if (read_gz_table(REF "region1_uconv.tsv.gz", &uc)) {
        io_table_free(&fft);
        io_table_free(&masks);
        return;
    }
    model_rdcm_spectra S;
    dcm_error err = {0};
    CU_ASSERT_EQUAL_FATAL(model_rdcm_spectra_build(&S, s->Y, s->N, s->n, s->TR, s->u, s->m, s->r, 5.0, &err),
                          DCM_OK);
    int N = s->N;
    /* masks of every region, identical */
    int differ = 0;
    CU_ASSERT_EQUAL(masks.rows, N);
    CU_ASSERT_EQUAL(masks.cols, s->n);
    for (int k = 0; k < s->n && masks.rows == N; k++)
        for (int f = 0; f < N; f++)
            differ += S.mask[(size_t)k * N + f] != (int)masks.data[f + (size_t)N * k];
    printf("\n  filter masks: %d of %d entries differ; region 1: %d rows, %d kept, "
           "%d uninformative bins ", differ, N * s->n, S.bins[0], S.kept[0], S.n_uninformative);
    CU_ASSERT_EQUAL(differ, 0);
    /* convolved input u_2 at the scans */
    double e_uc = rel_err(S.uconv + (size_t)1 * N, column(&uc, "u_2"), (size_t)N);
    /* spectra and regressors of region 1 at every bin */
    double *re = malloc(sizeof(double) * N * 2), *ref = malloc(sizeof(double) * N * 2);
    struct {
        const char *name;
        int what;   /* 0 Y raw, 1 Yd, 2 H, 3 regressor */
        int col;
    } items[] = {{"Yfft", 0, 0}, {"Yd", 1, 0}, {"Hfft", 2, 0}, {"X_A_R01", 3, 0},
                 {"X_A_R02", 3, 1}, {"X_A_R05", 3, 4}, {"X_C_u_2", 3, 51}};
    double worst = 0;
    for (size_t it = 0; it < sizeof items / sizeof items[0]; it++) {
        char nr[64], ni[64];
        snprintf(nr, sizeof nr, "%s_re", items[it].name);
        snprintf(ni, sizeof ni, "%s_im", items[it].name);
        double *cr = column(&fft, nr), *ci = column(&fft, ni);
        for (int f = 0; f < N; f++) {
            double complex x;
            int c = items[it].col;
            switch (items[it].what) {
            case 0: x = S.Y[f]; break;
            case 1: x = model_rdcm_response(&S, 0, f); break;
            case 2: x = S.H[f]; break;
            default: x = c < s->n ? S.Yf[(size_t)c * N + f] : S.U[(size_t)(c - s->n) * N + f] / s->r;
            }
            re[2 * f] = creal(x), re[2 * f + 1] = cimag(x);
            ref[2 * f] = cr[f], ref[2 * f + 1] = ci[f];
        }
        double e = rel_err(re, ref, 2 * (size_t)N);
        printf("\n  %-8s max relative error %.3g", items[it].name, e);
        worst = fmax(worst, e);
    }
    double *row = column(&fft, "row"), *keep = column(&fft, "keep");
    int rows_differ = 0;
    for (int f = 0; f < N; f++)
        rows_differ += (S.mask[f] != 0) != (row[f] != 0) || (S.mask[f] == 2) != (keep[f] != 0);
    printf("\n  convolved input u_2: %.3g; rows/keep differing: %d ", e_uc, rows_differ);
    CU_ASSERT(worst < 1e-12);
    CU_ASSERT(e_uc < 1e-12);
    CU_ASSERT_EQUAL(rows_differ, 0);
    free(re);
    free(ref);
    model_rdcm_spectra_free(&S);
    io_table_free(&fft);
    io_table_free(&masks);
    io_table_free(&uc);
}

/* Region 1's normal equations for the given columns, checked against ref. */
static int region1_normal(const smith50 *s, const model_rdcm_spectra *S, const int *cols, int D,
                          json_t *ref, double *W, double *v, double *yy, int *bins, const char *label)
{
    double *work = malloc(sizeof(double) * (size_t)s->N * (D + 1));
    double *Wr = malloc(sizeof(double) * D * D), *vr = malloc(sizeof(double) * D);
    model_rdcm_normal(S, 0, cols, D, 1.0 / s->r, W, v, yy, bins, work);
    int ok = !json_matrix(json_object_get(ref, "W"), D, D, Wr) &&
             test_json_vec(json_object_get(ref, "v"), vr, D) == D;
    CU_ASSERT_FATAL(ok);
    double eW = rel_err(W, Wr, (size_t)D * D), ev = rel_err(v, vr, (size_t)D);
    printf("\n  %s normal equations (D = %d): W %.3g, v %.3g relative", label, D, eW, ev);
    CU_ASSERT(eW < 1e-9);
    CU_ASSERT(ev < 1e-9);
    free(work);
    free(Wr);
    free(vr);
    return 0;
}

static void test_region1_ridge(void)
{
    const smith50 *s = load_smith50();
    json_t *J = s ? load_ref(REF "components_region1.json") : NULL;
    if (!J)
        return;
    json_t *R = json_object_get(J, "ridge");
    model_rdcm_spectra S;
    dcm_error err = {0};
    CU_ASSERT_EQUAL_FATAL(model_rdcm_spectra_build(&S, s->Y, s->N, s->n, s->TR, s->u, s->m, s->r, 5.0, &err),
                          DCM_OK);
    const int cols[4] = {0, 1, 4, s->n + 1};   /* A:R01, A:R02, A:R05, C:u_2 */
    const int D = 4;
    double W[16], v[4], yy, m0[4], l0[4], ref[32];
    int bins;
    region1_normal(s, &S, cols, D, R, W, v, &yy, &bins, "rDCM");
    double yyr = json_number_value(json_object_get(R, "YtY"));
    printf(", YtY %.3g, bins %d (TAPAS %d)", fabs(yy - yyr) / yyr, bins,
           (int)json_integer_value(json_object_get(J, "n_eff")));
    CU_ASSERT(fabs(yy - yyr) / yyr < 1e-9);
    CU_ASSERT_EQUAL(bins, json_integer_value(json_object_get(J, "n_eff")));
    model_rdcm_priors(s->n, s->m, 0, cols, D, 1e-8, m0, l0);
    test_json_vec(json_object_get(R, "prior_mean"), ref, 4);
    CU_ASSERT(max_abs_diff(m0, ref, 4) == 0);
    test_json_vec(json_object_get(R, "prior_precision"), ref, 4);
    CU_ASSERT(max_abs_diff(l0, ref, 4) == 0);
    /* the VB trajectory */
    model_rdcm_ws *ws = model_rdcm_ws_alloc(D);
    model_rdcm_fit fit;
    model_rdcm_fit_alloc(&fit, D);
    double tf[MODEL_RDCM_MAXIT], tt[MODEL_RDCM_MAXIT];
    model_rdcm_trace tr = {MODEL_RDCM_MAXIT, 0, tf, tt};
    CU_ASSERT_EQUAL(model_rdcm_ridge(W, v, yy, bins, m0, l0, D, ws, &fit, &tr), DCM_OK);
    int it = (int)json_integer_value(json_object_get(R, "iterations"));
    CU_ASSERT_EQUAL(fit.iterations, it);
    CU_ASSERT_EQUAL_FATAL(tr.len, it);
    test_json_vec(json_object_get(R, "F_trace"), ref, it);
    double eF = rel_err(tf, ref, (size_t)it);
    test_json_vec(json_object_get(R, "tau_trace"), ref, it);
    double et = rel_err(tt, ref, (size_t)it);
    test_json_vec(json_object_get(R, "mN"), ref, D);
    double em = max_abs_diff(fit.mu, ref, (size_t)D);
    json_matrix(json_object_get(R, "sN"), D, D, ref);
    double eS = rel_err(fit.Sigma, ref, (size_t)D * D);
    double ea = fabs(fit.aN - json_number_value(json_object_get(R, "aN")));
    double eb = fabs(fit.bN / json_number_value(json_object_get(R, "bN")) - 1);
    const char *tn[5] = {"log_lik", "log_p_weight", "log_p_prec", "log_q_weight", "log_q_prec"};
    double eterm = 0;
    for (int i = 0; i < 5; i++) {
        double x = json_number_value(json_object_get(json_object_get(R, "terms"), tn[i]));
        eterm = fmax(eterm, fabs(fit.terms[i] - x) / fabs(x));
    }
    printf("\n  rDCM VB: %d iterations, F trace %.3g, tau trace %.3g relative; mu %.3g, Sigma %.3g "
           "relative; aN %.3g, bN %.3g, F terms %.3g ", fit.iterations, eF, et, em, eS, ea, eb, eterm);
    CU_ASSERT(eF < 1e-9 && et < 1e-9 && em < 1e-8 && eS < 1e-8 && ea == 0 && eb < 1e-9 && eterm < 1e-9);
    model_rdcm_fit_free(&fit);
    model_rdcm_ws_free(ws);
    model_rdcm_spectra_free(&S);
    json_decref(J);
}

static void test_region1_sparse_ordered(void)
{
    const smith50 *s = load_smith50();
    json_t *J = s ? load_ref(REF "components_region1.json") : NULL;
    if (!J)
        return;
    json_t *R = json_object_get(J, "sparse_ordered");
    model_rdcm_spectra S;
    dcm_error err = {0};
    CU_ASSERT_EQUAL_FATAL(model_rdcm_spectra_build(&S, s->Y, s->N, s->n, s->TR, s->u, s->m, s->r, 5.0, &err),
                          DCM_OK);
    int D = s->n + s->m + 1, bins, cols[128];
    for (int j = 0; j < D; j++)
        cols[j] = j;
    double *W = malloc(sizeof(double) * D * D), *v = malloc(sizeof(double) * D), yy;
    double *m0 = malloc(sizeof(double) * D), *l0 = malloc(sizeof(double) * D);
    double *p0 = malloc(sizeof(double) * D), *ref = malloc(sizeof(double) * D);
    region1_normal(s, &S, cols, D, R, W, v, &yy, &bins, "sparse");
    model_rdcm_priors(s->n, s->m, 0, cols, D, 1.0, m0, l0);
    double pz = json_number_value(json_object_get(R, "p0"));
    for (int j = 0; j < D; j++)
        p0[j] = j == 0 ? 1.0 : j < s->n ? pz : j < s->n + s->m ? s->c[0 + (size_t)s->n * (j - s->n)] : 0.0;
    model_rdcm_ws *ws = model_rdcm_ws_alloc(D);
    model_rdcm_fit fit;
    model_rdcm_fit_alloc(&fit, D);
    double tf[MODEL_RDCM_MAXIT], tt[MODEL_RDCM_MAXIT];
    model_rdcm_trace tr = {MODEL_RDCM_MAXIT, 0, tf, tt};
    CU_ASSERT_EQUAL(model_rdcm_sparse(W, v, yy, bins, m0, l0, p0, D, NULL, 0, ws, &fit, &tr), DCM_OK);
    int it = (int)json_integer_value(json_object_get(R, "iterations"));
    CU_ASSERT_EQUAL(fit.iterations, it);
    int nt = tr.len < it ? tr.len : it;
    test_json_vec(json_object_get(R, "F_trace"), ref, nt);
    double eF = rel_err(tf, ref, (size_t)nt);
    test_json_vec(json_object_get(R, "mN"), ref, D);
    double em = max_abs_diff(fit.mu, ref, (size_t)D);
    test_json_vec(json_object_get(R, "z"), ref, D);
    double ez = max_abs_diff(fit.z, ref, (size_t)D);
    test_json_vec(json_object_get(R, "sN_diag"), ref, D);
    for (int i = 0; i < D; i++)
        m0[i] = fit.Sigma[i + (size_t)D * i];
    double es = max_rel_entry(m0, ref, (size_t)D);
    double eb = fabs(fit.bN / json_number_value(json_object_get(R, "bN")) - 1);
    const char *tn[7] = {"log_lik", "log_p_weight", "log_p_prec", "log_q_weight", "log_q_prec",
                         "log_p_z", "log_q_z"};
    double eterm = 0;
    for (int i = 0; i < 7; i++) {
        double x = json_number_value(json_object_get(json_object_get(R, "terms"), tn[i]));
        eterm = fmax(eterm, fabs(fit.terms[i] - x) / fmax(fabs(x), 1.0));
    }
    printf("\n  sparse VB (ordered, p0 %.2f): %d iterations (TAPAS %d), F trace %.3g relative; mu %.3g, "
           "z %.3g, diag Sigma %.3g relative; bN %.3g, F terms %.3g ", pz, fit.iterations, it, eF, em,
           ez, es, eb, eterm);
    CU_ASSERT(eF < 1e-9 && em < 1e-6 && ez < 1e-6 && es < 1e-6 && eb < 1e-9 && eterm < 1e-9);
    model_rdcm_fit_free(&fit);
    model_rdcm_ws_free(ws);
    free(W);
    free(v);
    free(m0);
    free(l0);
    free(p0);
    free(ref);
    model_rdcm_spectra_free(&S);
    json_decref(J);
}

/* rDCM with every connection of region 1 (D = n + 1): the
 * eigendecomposition path (used for whole-brain patterns) against the
 * Cholesky path, iteration by iteration. */
static void test_ridge_eig_path(void)
{
    const smith50 *s = load_smith50();
    if (!s)
        return;
    model_rdcm_spectra S;
    dcm_error err = {0};
    CU_ASSERT_EQUAL_FATAL(model_rdcm_spectra_build(&S, s->Y, s->N, s->n, s->TR, s->u, s->m, s->r, 5.0, &err),
                          DCM_OK);
    int D = s->n + 1, bins, cols[64];
    for (int j = 0; j < s->n; j++)
        cols[j] = j;
    cols[s->n] = s->n + 1;   /* input u_2 */
    double *W = malloc(sizeof(double) * D * D), *v = malloc(sizeof(double) * D), yy;
    double *m0 = malloc(sizeof(double) * D), *l0 = malloc(sizeof(double) * D);
    double *work = malloc(sizeof(double) * (size_t)s->N * (D + 1));
    model_rdcm_normal(&S, 0, cols, D, 1.0 / s->r, W, v, &yy, &bins, work);
    model_rdcm_priors(s->n, s->m, 0, cols, D, 1e-8, m0, l0);
    model_rdcm_ws *ws = model_rdcm_ws_alloc(D);
    model_rdcm_fit fc, fe;
    model_rdcm_fit_alloc(&fc, D);
    model_rdcm_fit_alloc(&fe, D);
    double tfc[MODEL_RDCM_MAXIT], ttc[MODEL_RDCM_MAXIT], tfe[MODEL_RDCM_MAXIT], tte[MODEL_RDCM_MAXIT];
    model_rdcm_trace trc = {MODEL_RDCM_MAXIT, 0, tfc, ttc}, tre = {MODEL_RDCM_MAXIT, 0, tfe, tte};
    model_rdcm_ws_set_eig_from(ws, D + 1);
    CU_ASSERT_EQUAL_FATAL(model_rdcm_ridge(W, v, yy, bins, m0, l0, D, ws, &fc, &trc), DCM_OK);
    model_rdcm_ws_set_eig_from(ws, 1);
    CU_ASSERT_EQUAL_FATAL(model_rdcm_ridge(W, v, yy, bins, m0, l0, D, ws, &fe, &tre), DCM_OK);
    CU_ASSERT_EQUAL_FATAL(trc.len, tre.len);
    double eF = rel_err(tfe, tfc, (size_t)trc.len), et = rel_err(tte, ttc, (size_t)trc.len);
    double em = max_abs_diff(fe.mu, fc.mu, (size_t)D);
    double eS = rel_err(fe.Sigma, fc.Sigma, (size_t)D * D);
    printf("\n  region 1, all %d connections: %d iterations; eigen vs Cholesky path: F trace %.3g, tau "
           "%.3g relative, mu %.3g, Sigma %.3g relative ", s->n, fc.iterations, eF, et, em, eS);
    CU_ASSERT(fc.iterations == fe.iterations && eF < 1e-10 && et < 1e-9 && em < 1e-9 && eS < 1e-9);
    model_rdcm_fit_free(&fc);
    model_rdcm_fit_free(&fe);
    model_rdcm_ws_free(ws);
    free(W);
    free(v);
    free(m0);
    free(l0);
    free(work);
    model_rdcm_spectra_free(&S);
}

/* ---- the whole smith50 case ------------------------------------------- */

/* Compare a result matrix (n x cols) with a reference block. */
static double block_err(json_t *ref, const char *group, const char *name, const double *x, int rows,
                        int cols, int relative)
{
    double *r = malloc(sizeof(double) * (size_t)rows * cols);
    int bad = json_matrix(json_object_get(json_object_get(ref, group), name), rows, cols, r);
    CU_ASSERT_FATAL(!bad);
    double e = relative ? max_rel_entry(x, r, (size_t)rows * cols) : max_abs_diff(x, r, (size_t)rows * cols);
    free(r);
    return e;
}

static void test_smith50_ridge(void)
{
    const smith50 *s = load_smith50();
    json_t *ref = s ? load_ref(REF "rdcm_ridge.json") : NULL;
    if (!ref)
        return;
    dcm_rdcm_options o = DCM_RDCM_OPTIONS_DEFAULT;
    o.data = DCM_RDCM_SIMULATED;
    o.threads = 2;
    dcm_rdcm_result *R = NULL;
    dcm_error err = {0};
    int rc = dcm_rdcm_estimate(s->Y, s->N, s->n, s->TR, s->u, s->m, s->r, s->a, s->c, &o, &R, &err);
    CU_ASSERT_EQUAL_FATAL(rc, DCM_OK);
    int n = s->n, m = s->m;
    double Fr = json_number_value(json_object_get(ref, "logF"));
    double eF = fabs(R->F - Fr) / fabs(Fr);
    double *x = malloc(sizeof(double) * n);
    test_json_vec(json_object_get(ref, "logF_regions"), x, n);
    double eFr = max_rel_entry(R->F_regions, x, (size_t)n);
    test_json_vec(json_object_get(json_object_get(ref, "noise"), "aN"), x, n);
    double eaN = max_abs_diff(R->aN, x, (size_t)n);
    test_json_vec(json_object_get(json_object_get(ref, "noise"), "bN"), x, n);
    double ebN = max_rel_entry(R->bN, x, (size_t)n);
    int it_differ = 0, bins_differ = 0;
    test_json_vec(json_object_get(ref, "vb_iterations_regions"), x, n);
    for (int k = 0; k < n; k++)
        it_differ += R->iterations[k] != (int)x[k];
    test_json_vec(json_object_get(ref, "n_eff_regions"), x, n);
    for (int k = 0; k < n; k++)
        bins_differ += R->bins[k] != (int)x[k];
    double eA = block_err(ref, "Ep", "A", R->Ep_A, n, n, 0);
    double eC = block_err(ref, "Ep", "C", R->Ep_C, n, m, 0);
    double eVA = block_err(ref, "posterior_var", "A", R->Var_A, n, n, 1);
    double eVC = block_err(ref, "posterior_var", "C", R->Var_C, n, m, 1);
    printf("\n  smith50 rDCM: F %.6f (TAPAS %.6f), relative %.3g; per region %.3g; Ep.A %.3g, Ep.C %.3g; "
           "variances A %.3g, C %.3g relative; aN %.3g, bN %.3g; iterations differ in %d, bins in %d "
           "regions; %.3f s ", R->F, Fr, eF, eFr, eA, eC, eVA, eVC, eaN, ebN, it_differ, bins_differ,
           R->seconds);
    CU_ASSERT(eF < 1e-6 && eFr < 1e-6);
    CU_ASSERT(eA < 1e-8 && eC < 1e-8);
    CU_ASSERT(eVA < 1e-8 && eVC < 1e-8);
    CU_ASSERT(eaN == 0 && ebN < 1e-9);
    CU_ASSERT_EQUAL(it_differ, 0);
    CU_ASSERT_EQUAL(bins_differ, 0);
    /* one thread gives the same numbers */
    dcm_rdcm_result *R1 = NULL;
    o.threads = 1;
    CU_ASSERT_EQUAL_FATAL(dcm_rdcm_estimate(s->Y, s->N, s->n, s->TR, s->u, s->m, s->r, s->a, s->c, &o, &R1, &err),
                          DCM_OK);
    CU_ASSERT(R1->F == R->F && max_abs_diff(R1->Ep_A, R->Ep_A, (size_t)n * n) == 0);
    dcm_rdcm_result_free(R1);
    free(x);
    dcm_rdcm_result_free(R);
    json_decref(ref);
}

static void test_smith50_sparse_ordered(void)
{
    const smith50 *s = load_smith50();
    json_t *ref = s ? load_ref(REF "rdcm_sparse_ordered.json") : NULL;
    if (!ref)
        return;
    int n = s->n, m = s->m;
    double grid[64];
    int np0 = test_json_vec(json_object_get(ref, "p0_grid"), grid, 64);
    dcm_rdcm_options o = DCM_RDCM_OPTIONS_DEFAULT;
    o.method = DCM_RDCM_SPARSE;
    o.data = DCM_RDCM_SIMULATED;
    o.order = DCM_RDCM_ORDER_FIXED;
    o.np0 = np0;
    o.p0 = grid;
    o.threads = 2;
    dcm_rdcm_result *R = NULL;
    dcm_error err = {0};
    int rc = dcm_rdcm_estimate(s->Y, s->N, n, s->TR, s->u, m, s->r, s->a, s->c, &o, &R, &err);
    CU_ASSERT_EQUAL_FATAL(rc, DCM_OK);
    double Fp[64];
    test_json_vec(json_object_get(ref, "logF_per_p0"), Fp, np0);
    double eFp = max_rel_entry(R->F_per_p0, Fp, (size_t)np0);
    double chosen = json_number_value(json_object_get(ref, "chosen_p0"));
    double *x = malloc(sizeof(double) * n);
    test_json_vec(json_object_get(ref, "logF_regions"), x, n);
    double eFr = max_rel_entry(R->F_regions, x, (size_t)n);
    int it_differ = 0;
    test_json_vec(json_object_get(ref, "vb_iterations_regions"), x, n);
    for (int k = 0; k < n; k++)
        it_differ += R->iterations[k] != (int)x[k];
    double eA = block_err(ref, "Ep", "A", R->Ep_A, n, n, 0);
    double eC = block_err(ref, "Ep", "C", R->Ep_C, n, m, 0);
    double eIA = block_err(ref, "Ip", "A", R->Ip_A, n, n, 0);
    double eIC = block_err(ref, "Ip", "C", R->Ip_C, n, m, 0);
    double eVA = block_err(ref, "posterior_var", "A", R->Var_A, n, n, 1);
    printf("\n  smith50 ordered sparse rDCM over %d p0: F per p0 %.3g relative; chosen p0 %.2f "
           "(TAPAS %.2f); at it: F per region %.3g; Ep.A %.3g, Ep.C %.3g, Ip.A %.3g, Ip.C %.3g, var A "
           "%.3g relative; iterations differ in %d regions; %.3f s ",
           np0, eFp, R->p0, chosen, eFr, eA, eC, eIA, eIC, eVA, it_differ, R->seconds);
    CU_ASSERT(eFp < 1e-6 && eFr < 1e-6);
    CU_ASSERT(R->p0 == chosen);
    CU_ASSERT(eA < 1e-6 && eC < 1e-6 && eIA < 1e-6 && eIC < 1e-6);
    CU_ASSERT(eVA < 1e-6);
    CU_ASSERT_EQUAL(it_differ, 0);
    free(x);
    dcm_rdcm_result_free(R);
    json_decref(ref);
}

/* Sparse rDCM with TAPAS's random update orders and 100 restarts, at the
 * p0 TAPAS chose (the whole grid takes too long for a test; the result at
 * one p0 does not depend on the rest of the grid). The orders are not
 * Octave's, so F is compared within the tolerance of the issue (0.1 %), and
 * one thread must give the same numbers as two. */
static void test_smith50_sparse_random(void)
{
    const smith50 *s = load_smith50();
    json_t *ref = s ? load_ref(REF "rdcm_sparse.json") : NULL;
    if (!ref)
        return;
    int n = s->n, m = s->m;
    double p0 = json_number_value(json_object_get(ref, "chosen_p0")), Fp[64];
    double grid[64];
    int np0 = test_json_vec(json_object_get(ref, "p0_grid"), grid, 64), at = -1;
    test_json_vec(json_object_get(ref, "logF_per_p0"), Fp, np0);
    for (int p = 0; p < np0; p++)
        if (grid[p] == p0)
            at = p;
    CU_ASSERT_FATAL(at >= 0);
    dcm_rdcm_options o = DCM_RDCM_OPTIONS_DEFAULT;
    o.method = DCM_RDCM_SPARSE;
    o.data = DCM_RDCM_SIMULATED;
    o.np0 = 1;
    o.p0 = &p0;
    o.threads = 2;
    dcm_rdcm_result *R = NULL, *R1 = NULL;
    dcm_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dcm_rdcm_estimate(s->Y, s->N, n, s->TR, s->u, m, s->r, s->a, s->c, &o, &R, &err),
                          DCM_OK);
    double rel = fabs(R->F - Fp[at]) / fabs(Fp[at]);
    printf("\n  smith50 sparse rDCM, 100 random restarts at p0 %.2f (seed %llu): F %.3f, TAPAS %.3f "
           "(its other seeds: see run_to_run_at_chosen_p0), relative difference %.3g; %.2f s ",
           p0, o.seed, R->F, Fp[at], rel, R->seconds);
    CU_ASSERT(rel < 1e-3);
    /* the same with one thread, restarts cut to 10 to keep the test short */
    dcm_rdcm_result_free(R);
    o.restarts = 10;
    CU_ASSERT_EQUAL_FATAL(dcm_rdcm_estimate(s->Y, s->N, n, s->TR, s->u, m, s->r, s->a, s->c, &o, &R, &err),
                          DCM_OK);
    o.threads = 1;
    CU_ASSERT_EQUAL_FATAL(dcm_rdcm_estimate(s->Y, s->N, n, s->TR, s->u, m, s->r, s->a, s->c, &o, &R1, &err),
                          DCM_OK);
    CU_ASSERT(R->F == R1->F && max_abs_diff(R->Ep_A, R1->Ep_A, (size_t)n * n) == 0 &&
              max_abs_diff(R->Ip_A, R1->Ip_A, (size_t)n * n) == 0);
    dcm_rdcm_result_free(R);
    dcm_rdcm_result_free(R1);
    json_decref(ref);
}

/* ---- input rDCM cannot fit (no ../shared needed) ---------------------- */

static void synthetic(int N, int n, double *Y)
{
    for (int k = 0; k < n; k++)
        for (int t = 0; t < N; t++)
            Y[t + (size_t)N * k] = sin(0.05 * t * (k + 1)) + 0.3 * cos(0.31 * t + k) + 0.01 * ((t * 7919 + k * 31) % 17);
}

static void test_bad_input(void)
{
    enum { N = 200, n = 3 };
    double Y[N * n], a[n * n];
    synthetic(N, n, Y);
    for (int i = 0; i < n * n; i++)
        a[i] = 1;
    dcm_rdcm_options o = DCM_RDCM_OPTIONS_DEFAULT;
    dcm_rdcm_result *R = NULL;
    dcm_error err = {0};
    /* resting state fits */
    CU_ASSERT_EQUAL(dcm_rdcm_estimate(Y, N, n, 0.5, NULL, 0, 16, a, NULL, &o, &R, &err), DCM_OK);
    CU_ASSERT(R && isfinite(R->F) && R->has_baseline);
    dcm_rdcm_result_free(R);
    /* a series shorter than the HRF */
    CU_ASSERT_EQUAL(dcm_rdcm_estimate(Y, 40, n, 0.5, NULL, 0, 16, a, NULL, &o, &R, &err), DCM_ERR_INPUT);
    printf("\n  short: %s", err.msg);
    CU_ASSERT(strstr(err.msg, "40 scans") && strstr(err.msg, "longer series"));
    CU_ASSERT_PTR_NULL(R);
    /* a constant region has no informative frequency */
    double Yc[N * n];
    memcpy(Yc, Y, sizeof Yc);
    for (int t = 0; t < N; t++)
        Yc[t + N * 1] = 3.0;
    CU_ASSERT_EQUAL(dcm_rdcm_estimate(Yc, N, n, 0.5, NULL, 0, 16, a, NULL, &o, &R, &err), DCM_ERR_INPUT);
    printf("\n  constant: %s", err.msg);
    CU_ASSERT(strstr(err.msg, "region 2 keeps no informative frequency") != NULL);
    /* p0 outside (0, 1) */
    double p0[2] = {0.2, 1.0};
    o.method = DCM_RDCM_SPARSE, o.np0 = 2, o.p0 = p0;
    CU_ASSERT_EQUAL(dcm_rdcm_estimate(Y, N, n, 0.5, NULL, 0, 16, a, NULL, &o, &R, &err), DCM_ERR_INPUT);
    printf("\n  p0: %s ", err.msg);
    CU_ASSERT(strstr(err.msg, "p0 value 2 is 1") != NULL);
    p0[1] = 0.3;
    o.restarts = 3;
    CU_ASSERT_EQUAL(dcm_rdcm_estimate(Y, N, n, 0.5, NULL, 0, 16, a, NULL, &o, &R, &err), DCM_OK);
    CU_ASSERT(R && R->np0 == 2 && (R->p0 == 0.2 || R->p0 == 0.3));
    CU_ASSERT(R && R->F == R->F_per_p0[R->p0_index]);
    dcm_rdcm_result_free(R);
    /* a non-finite value */
    Yc[5] = NAN;
    o.method = DCM_RDCM_RIDGE;
    CU_ASSERT_EQUAL(dcm_rdcm_estimate(Yc, N, n, 0.5, NULL, 0, 16, a, NULL, &o, &R, &err), DCM_ERR_INPUT);
    CU_ASSERT(strstr(err.msg, "region 1, scan 6") != NULL);
}

/* The inputs convolved with the HRF (circularly, sampled at the scans):
 * block inputs (few runs, by prefix sums) and a noisy input (by FFT)
 * against the definition sum_k h[k] u[(t r - k) mod Nu] computed here
 * directly; an odd number of scans and TR 2 s; the same numbers when the
 * inputs are passed bins x inputs (strided) instead of inputs x bins. */
static void test_input_convolution(void)
{
    enum { N = 45, n = 2, m = 3, r = 16, Nu = N * r };
    const double TR = 2.0;
    double Y[N * n], *u = malloc(sizeof(double) * Nu * m), *ut = malloc(sizeof(double) * Nu * m);
    double *h = malloc(sizeof(double) * Nu);
    CU_ASSERT_FATAL(u && ut && h);
    synthetic(N, n, Y);
    for (int k = 0; k < Nu; k++) {
        u[k] = (k >= 40 && k < 200) || (k >= 500 && k < 530) ? 1.0 : 0.0;   /* blocks */
        u[Nu + k] = k >= Nu - 50 || k < 30 ? 2.5 : k >= 300 && k < 301 ? -1.0 : 0.0;  /* wraps */
        u[2 * Nu + k] = sin(0.37 * k) + 0.2 * ((k * 7919) % 13);   /* every bin differs: FFT */
    }
    for (int k = 0; k < Nu; k++)
        for (int i = 0; i < m; i++)
            ut[(size_t)k * m + i] = u[(size_t)i * Nu + k];
    model_rdcm_hrf(TR / r, Nu, h);
    model_rdcm_spectra S, St;
    dcm_error err = {0};
    CU_ASSERT_EQUAL_FATAL(model_rdcm_spectra_build(&S, Y, N, n, TR, u, m, r, 5.0, &err), DCM_OK);
    CU_ASSERT_EQUAL_FATAL(model_rdcm_spectra_build_strided(&St, Y, N, n, TR, ut, m, 1, m, r, 5.0, 2, &err),
                          DCM_OK);
    double worst[m] = {0}, big = 0;
    for (int i = 0; i < m; i++)
        for (int t = 0; t < N; t++) {
            long double w = 0;
            for (int k = 0; k < Nu; k++)
                w += (long double)h[k] * u[(size_t)i * Nu + ((t * r - k) % Nu + Nu) % Nu];
            big = fmax(big, fabs((double)w));
            worst[i] = fmax(worst[i], fabs(S.uconv[(size_t)i * N + t] - (double)w));
            CU_ASSERT(S.uconv[(size_t)i * N + t] == St.uconv[(size_t)i * N + t]);
        }
    printf("\n  |uconv - direct| / max: blocks %.1e, wrapping blocks %.1e, FFT %.1e ", worst[0] / big,
           worst[1] / big, worst[2] / big);
    for (int i = 0; i < m; i++)
        CU_ASSERT(worst[i] <= 1e-13 * big);
    model_rdcm_spectra_free(&S);
    model_rdcm_spectra_free(&St);
    free(u);
    free(ut);
    free(h);
}

/* io_parse_number's fast paths (15 digits; 16 to 19 digits in long
 * double) give the double strtod gives, bit for bit: doubles written with
 * %.17g and %.16g, and decimals next to halfway points between doubles
 * (the double-rounding cases), 300000 of them. */
static void test_parse_number_exact(void)
{
    uint64_t st = 88172645463325252ull;
    long mismatches = 0, fast = 0;
    char buf[64];
    for (long i = 0; i < 300000; i++) {
        st ^= st << 13, st ^= st >> 7, st ^= st << 17;
        double d, u = (double)(st >> 11) / 9007199254740992.0;   /* [0, 1) */
        int kind = (int)(i % 4);
        if (kind == 0) {
            memcpy(&d, &st, sizeof d);
            if (!isfinite(d))
                continue;
            snprintf(buf, sizeof buf, "%.17g", d);
        } else if (kind == 1) {
            snprintf(buf, sizeof buf, "%.16g", (u - 0.5) * pow(10, (int)(i % 21) - 10));
        } else {
            d = u * pow(10, (int)(i % 11) - 5);
            long double mid = ((long double)d + nextafter(d, INFINITY)) / 2;
            snprintf(buf, sizeof buf, kind == 2 ? "%.18Lg" : "%.19Lg", mid);
        }
        double a = 0, b = strtod(buf, NULL);
        if (io_parse_number(buf, &a) != 0)
            continue;
        fast++;
        if (memcmp(&a, &b, sizeof a) != 0 && mismatches++ < 5)
            printf("\n  %s: %.17g, strtod %.17g", buf, a, b);
    }
    printf("\n  %ld numbers, %ld differ from strtod ", fast, mismatches);
    CU_ASSERT(fast > 290000);
    CU_ASSERT_EQUAL(mismatches, 0);
}

/* .tsv.gz tables (io_tsv): read as the plain table; a truncated gzip is an
 * error that names the file (no ../shared needed). */
static void test_tsv_gz(void)
{
    char dir[] = "/tmp/test_rdcm_gzXXXXXX", path[256];
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/y.tsv.gz", dir);
    const char text[] = "R1\tR2\n1.5\t-2\n3\t4e-3\n";
    gzFile g = gzopen(path, "wb");
    CU_ASSERT_FATAL(g != NULL);
    gzwrite(g, text, (unsigned)strlen(text));
    gzclose(g);
    io_table t;
    dcm_error err = {0};
    CU_ASSERT_EQUAL_FATAL(io_tsv_read(path, &t, &err), DCM_OK);
    CU_ASSERT(t.rows == 2 && t.cols == 2 && t.data[0] == 1.5 && t.data[3] == 4e-3);
    CU_ASSERT(t.names && !strcmp(t.names[1], "R2"));
    io_table_free(&t);
    /* cut the compressed file in half */
    FILE *f = fopen(path, "rb");
    unsigned char buf[256];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    f = fopen(path, "wb");
    fwrite(buf, 1, len / 2, f);
    fclose(f);
    int rc = io_tsv_read(path, &t, &err);
    printf("\n  truncated: %s ", err.msg);
    CU_ASSERT_EQUAL(rc, DCM_ERR_INPUT);
    CU_ASSERT(strstr(err.msg, "y.tsv.gz") && strstr(err.msg, "gzip"));
    test_remove_dir(dir);
}

int main(void)
{
    static const test_case cases[] = {
        {"rDCM HRF equals TAPAS's", test_hrf},
        {"rDCM spectra, regressors and filter masks equal TAPAS's", test_spectra_and_masks},
        {"rDCM region 1: normal equations, priors, VB trajectory", test_region1_ridge},
        {"sparse rDCM region 1 (ordered): normal equations, VB trajectory", test_region1_sparse_ordered},
        {"rDCM's eigendecomposition path equals its Cholesky path", test_ridge_eig_path},
        {"smith50 rDCM equals TAPAS's", test_smith50_ridge},
        {"smith50 ordered sparse rDCM equals TAPAS's over the p0 grid", test_smith50_sparse_ordered},
        {"smith50 sparse rDCM with random restarts: F within 0.1 % of TAPAS's", test_smith50_sparse_random},
        {"gzip-compressed TSV tables are read, a truncated one refused", test_tsv_gz},
        {"rDCM refuses input it cannot fit, with what to fix", test_bad_input},
        {"rDCM inputs convolved with the HRF: blocks and FFT equal the definition", test_input_convolution},
        {"TSV numbers: the fast paths equal strtod bit for bit", test_parse_number_exact},
        {NULL, NULL}};
    int rc = test_run("rdcm", cases);
    free_smith50();
    return rc;
}
