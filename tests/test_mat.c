/* test_mat.c — SPM interoperability through .mat files: VOI regions in a
 * spec, DCM .mat files specified by SPM, the --mat output (SPM12's DCM
 * names and shapes), and .mat files that are wrong in every way that
 * matters (clear message, exit 2, no output). */
#include <dirent.h>
#include <matio.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dcm/dcm_api.h"
#include "io/io_extract.h"
#include "io/io_mat.h"
#include "io/io_spec.h"
#include "io/io_tsv.h"
#include "tests/test_util.h"

static char tmpdir[256];
static char out[65536];

static int run(const char *args)
{
    return test_dcm(args, out, sizeof out);
}

static char *tpath(const char *name)
{
    static char buf[4][1024];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static int exists(const char *name)
{
    return access(tpath(name), F_OK) == 0;
}

static int no_temp_files(void)
{
    return test_no_temp_files(tmpdir);
}

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(tpath(name), "w");
    fputs(text, f);
    fclose(f);
}

/* ---- writing .mat files the way SPM (MATLAB) does ---- */

static matvar_t *m_num(int rank, size_t d0, size_t d1, size_t d2, const double *x)
{
    size_t dims[3] = {d0, d1, d2};
    static const double zero = 0;
    size_t n = d0 * d1 * (rank == 3 ? d2 : 1);
    return Mat_VarCreate(NULL, MAT_C_DOUBLE, MAT_T_DOUBLE, rank, dims, (void *)(n ? x : &zero), 0);
}

static matvar_t *m_scalar(double x)
{
    return m_num(2, 1, 1, 0, &x);
}

/* MATLAB stores char arrays as UTF-16 */
static matvar_t *m_str(const char *s)
{
    size_t len = strlen(s);
    uint16_t buf[256];
    for (size_t i = 0; i < len && i < 256; i++)
        buf[i] = (uint16_t)s[i];
    size_t dims[2] = {1, len};
    return Mat_VarCreate(NULL, MAT_C_CHAR, MAT_T_UINT16, 2, dims, buf, 0);
}

static matvar_t *m_cellstr(const char *const *names, int k)
{
    size_t dims[2] = {1, (size_t)k};
    matvar_t *cells[16];
    for (int i = 0; i < k; i++)
        cells[i] = m_str(names[i]);
    return Mat_VarCreate(NULL, MAT_C_CELL, MAT_T_CELL, 2, dims, cells, 0);
}

static matvar_t *m_struct(const char *name, const char *const *fields)
{
    size_t dims[2] = {1, 1};
    return Mat_VarCreateStruct2(name, 2, dims, fields);
}

static void m_set(matvar_t *s, const char *f, matvar_t *x)
{
    Mat_VarFree(Mat_VarSetStructFieldByName(s, f, 0, x));
}

/* A design as SPM specifies it. The inputs are stored sparse, as
 * spm_get_ons makes them. */
typedef struct {
    int n, m, v;
    double TR, TE;
    const double *y;        /* v x n */
    const double *X0;       /* v x nx0 or NULL */
    int nx0;
    const double *u;        /* nu x m column-major */
    const double *a, *b, *c;
    const double *delays;
    const char *const *rnames, *const *inames;
    int omit;               /* 0, or which field to leave out (tests) */
} spm_design;

enum { OMIT_NONE = 0, OMIT_Y_Y = 1, OMIT_U = 2, OMIT_A = 3 };

static int write_spm_dcm(const char *path, const spm_design *d)
{
    static const char *const top[] = {"a", "b", "c", "d", "U", "Y", "v", "n", "TE", "delays",
                                      "options", NULL};
    matvar_t *D = m_struct("DCM", top);
    const int n = d->n, m = d->m, v = d->v, nu = v * 16;
    if (d->omit != OMIT_A)
        m_set(D, "a", m_num(2, (size_t)n, (size_t)n, 0, d->a));
    m_set(D, "b", m_num(3, (size_t)n, (size_t)n, (size_t)m, d->b));
    m_set(D, "c", m_num(2, (size_t)n, (size_t)m, 0, d->c));
    m_set(D, "d", m_num(3, (size_t)n, (size_t)n, 0, NULL));
    /* U.u sparse */
    static const char *const uf[] = {"u", "name", "dt", NULL};
    matvar_t *U = m_struct(NULL, uf);
    mat_sparse_t sp;
    memset(&sp, 0, sizeof sp);
    mat_uint32_t *jc = calloc((size_t)m + 1, sizeof *jc);
    mat_uint32_t *ir = malloc(sizeof *ir * (size_t)nu * m + 1);
    double *val = malloc(sizeof *val * (size_t)nu * m + 1);
    mat_uint32_t nz = 0;
    for (int j = 0; j < m; j++) {
        jc[j] = nz;
        for (int t = 0; t < nu; t++)
            if (d->u[t + (size_t)j * nu] != 0.0) {
                ir[nz] = (mat_uint32_t)t;
                val[nz++] = d->u[t + (size_t)j * nu];
            }
    }
    jc[m] = nz;
    sp.nzmax = nz;
    sp.ir = ir;
    sp.nir = nz;
    sp.jc = jc;
    sp.njc = (mat_uint32_t)m + 1;
    sp.ndata = nz;
    sp.data = val;
    size_t udims[2] = {(size_t)nu, (size_t)m};
    matvar_t *su = Mat_VarCreate(NULL, MAT_C_SPARSE, MAT_T_DOUBLE, 2, udims, &sp, MAT_F_DONT_COPY_DATA);
    m_set(U, "u", su);
    m_set(U, "name", m_cellstr(d->inames, m));
    m_set(U, "dt", m_scalar(d->TR / 16));
    if (d->omit != OMIT_U)
        m_set(D, "U", U);
    static const char *const yf[] = {"y", "X0", "dt", "name", NULL};
    matvar_t *Y = m_struct(NULL, yf);
    if (d->omit != OMIT_Y_Y)
        m_set(Y, "y", m_num(2, (size_t)v, (size_t)n, 0, d->y));
    if (d->X0)
        m_set(Y, "X0", m_num(2, (size_t)v, (size_t)d->nx0, 0, d->X0));
    m_set(Y, "dt", m_scalar(d->TR));
    m_set(Y, "name", m_cellstr(d->rnames, n));
    m_set(D, "Y", Y);
    m_set(D, "v", m_scalar(v));
    m_set(D, "n", m_scalar(n));
    m_set(D, "TE", m_scalar(d->TE));
    m_set(D, "delays", m_num(2, (size_t)n, 1, 0, d->delays));
    static const char *const of[] = {"nonlinear", "two_state", "stochastic", "centre", "induced",
                                     "maxit", NULL};
    matvar_t *O = m_struct(NULL, of);
    m_set(O, "nonlinear", m_scalar(0));
    m_set(O, "two_state", m_scalar(0));
    m_set(O, "stochastic", m_scalar(0));
    m_set(O, "centre", m_scalar(0));
    m_set(O, "induced", m_scalar(0));
    m_set(O, "maxit", m_scalar(128));
    m_set(D, "options", O);
    mat_t *mat = Mat_CreateVer(path, NULL, MAT_FT_MAT5);
    int rc = mat ? Mat_VarWrite(mat, D, MAT_COMPRESSION_ZLIB) : -1;
    if (mat)
        Mat_Close(mat);
    /* the sparse U.u points at our arrays (MAT_F_DONT_COPY_DATA): detach */
    su->data = NULL;
    Mat_VarFree(D);
    if (d->omit == OMIT_U) {
        Mat_VarFree(U);
    }
    free(jc);
    free(ir);
    free(val);
    return rc;
}

/* ---- estimation helpers ---- */

static double estimate(dcm_problem *P, dcm_result **R)
{
    dcm_error err = {0, ""};
    int rc = dcm_estimate(P, NULL, NULL, R, &err);
    if (rc)
        printf("\n  estimate failed: %s\n", err.msg);
    return rc ? NAN : (*R)->F;
}

static int have_attention(void)
{
    char p[512];
    return test_shared_path("datasets/attention/VOI_V1_1.mat", p, sizeof p) != NULL;
}

static const char *att(const char *file)
{
    static char buf[4][512];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/datasets/attention/%s", test_shared_dir(), file);
    return buf[k];
}

static const char *const att_regions[3] = {"V1", "V5", "SPC"};
static const char *const att_inputs[3] = {"Photic", "Motion", "Attention"};
static const char *att_conn =
    " \"a\": [[1,1,0],[1,1,1],[0,1,1]],\n"
    " \"b\": {\"Motion\": [[0,0,0],[1,0,0],[0,0,0]], \"Attention\": [[0,0,0],[1,0,0],[0,0,0]]},\n"
    " \"c\": [[1,0,0],[0,0,0],[0,0,0]],\n"
    " \"delays\": [1.61, 1.61, 1.61]";

/* ---- 1. VOI sources ---- */

/* SPM's eigenvariate of each VOI's xY.y reproduces its xY.u */
static void test_voi_eigenvariate(void)
{
    if (!have_attention())
        return;
    for (int r = 0; r < 3; r++) {
        char f[64];
        snprintf(f, sizeof f, "VOI_%s_1.mat", att_regions[r]);
        io_voi voi;
        dcm_error err;
        CU_ASSERT_EQUAL_FATAL(io_mat_load_voi(att(f), &voi, &err), 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(voi.y);
        double *u = malloc(sizeof(double) * voi.v), expl = 0;
        CU_ASSERT_EQUAL(io_eigenvariate(voi.y, voi.v, voi.nvox, u, NULL, &expl, &err), 0);
        double e = 0;
        for (int t = 0; t < voi.v; t++)
            e = fmax(e, fabs(u[t] - voi.u[t]));
        printf("\n  %s: %d scans x %d voxels, max |u - xY.u| = %.2e (max |xY.u| %.2f), "
               "first eigenvariate explains %.1f%%, xyz (%.1f, %.1f, %.1f), X0 %d columns",
               f, voi.v, voi.nvox, e, test_max_abs(voi.u, voi.v), 100 * expl, voi.xyz[0],
               voi.xyz[1], voi.xyz[2], voi.nx0);
        CU_ASSERT(e <= 1e-6);
        CU_ASSERT_EQUAL(voi.nx0, 19);
        free(u);
        io_voi_free(&voi);
    }
}

/* The high-pass part of SPM's xY.X0 is our DCT basis. */
static void test_voi_dct(void)
{
    if (!have_attention())
        return;
    io_voi voi;
    dcm_error err;
    CU_ASSERT_EQUAL_FATAL(io_mat_load_voi(att("VOI_V5_1.mat"), &voi, &err), 0);
    int K = io_dct_ncols(voi.v, 3.22, 128);
    CU_ASSERT_EQUAL(K, 19);
    double *C = malloc(sizeof(double) * voi.v * K);
    CU_ASSERT_EQUAL(io_dct_basis(voi.v, K, C, &err), 0);
    double e = 0;
    for (int k = 1; k < K; k++)
        for (int t = 0; t < voi.v; t++)
            e = fmax(e, fabs(C[t + k * voi.v] - voi.X0[t + k * voi.v]));
    printf("\n  DCT columns 2..19 vs SPM's xY.X0: max difference %.2e", e);
    CU_ASSERT(e < 1e-12);
    free(C);
    io_voi_free(&voi);
}

/* TSV files at full precision from the VOIs, so that both routes see the
 * same numbers. */
static void write_voi_tsvs(void)
{
    io_voi vo[3];
    dcm_error err;
    double *ts = NULL;
    for (int r = 0; r < 3; r++) {
        char f[64];
        snprintf(f, sizeof f, "VOI_%s_1.mat", att_regions[r]);
        CU_ASSERT_EQUAL_FATAL(io_mat_load_voi(att(f), &vo[r], &err), 0);
    }
    int v = vo[0].v;
    ts = malloc(sizeof(double) * v * 3);
    for (int r = 0; r < 3; r++)
        memcpy(ts + r * v, vo[r].u, sizeof(double) * v);
    CU_ASSERT_EQUAL(io_tsv_write(tpath("voi_ts.tsv"), v, 3, ts, att_regions, &err), 0);
    CU_ASSERT_EQUAL(io_tsv_write(tpath("voi_x0.tsv"), v, vo[0].nx0, vo[0].X0, NULL, &err), 0);
    free(ts);
    for (int r = 0; r < 3; r++)
        io_voi_free(&vo[r]);
}

static void test_voi_spec_equals_tsv_spec(void)
{
    if (!have_attention())
        return;
    write_voi_tsvs();
    char text[8192];
    snprintf(text, sizeof text,
             "{\"TR\": 3.22, \"TE\": 0.04,\n"
             " \"regions\": [{\"name\": \"V1\", \"voi\": \"%s\"}, {\"name\": \"V5\", \"voi\": \"%s\"},\n"
             "             {\"name\": \"SPC\", \"voi\": \"%s\"}],\n"
             " \"events\": \"%s\", \"inputs\": [\"Photic\", \"Motion\", \"Attention\"],\n%s}\n",
             att("VOI_V1_1.mat"), att("VOI_V5_1.mat"), att("VOI_SPC_1.mat"), att("events.tsv"),
             att_conn);
    write_file("voi_spec.json", text);
    snprintf(text, sizeof text,
             "{\"TR\": 3.22, \"TE\": 0.04, \"timeseries\": \"voi_ts.tsv\", \"confounds\": "
             "\"voi_x0.tsv\",\n \"regions\": [\"V1\", \"V5\", \"SPC\"],\n"
             " \"events\": \"%s\", \"inputs\": [\"Photic\", \"Motion\", \"Attention\"],\n%s}\n",
             att("events.tsv"), att_conn);
    write_file("tsv_spec.json", text);
    snprintf(text, sizeof text,
             "{\"TR\": 3.22, \"TE\": 0.04, \"timeseries\": \"%s\", \"confounds\": \"%s\",\n"
             " \"regions\": [\"V1\", \"V5\", \"SPC\"],\n"
             " \"events\": \"%s\", \"inputs\": [\"Photic\", \"Motion\", \"Attention\"],\n%s}\n",
             att("timeseries.tsv"), att("confounds.tsv"), att("events.tsv"), att_conn);
    write_file("shared_tsv_spec.json", text);

    dcm_problem *Pv = NULL, *Pt = NULL, *Ps = NULL;
    dcm_result *Rv = NULL, *Rt = NULL, *Rs = NULL;
    dcm_error err;
    int lrc = io_spec_load(tpath("voi_spec.json"), &Pv, &err);
    if (lrc)
        printf("\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(lrc, 0);
    CU_ASSERT_EQUAL_FATAL(io_spec_load(tpath("tsv_spec.json"), &Pt, &err), 0);
    CU_ASSERT_EQUAL_FATAL(io_spec_load(tpath("shared_tsv_spec.json"), &Ps, &err), 0);
    CU_ASSERT_EQUAL(Pv->nx0, 19);   /* the first VOI's xY.X0 */
    double Fv = estimate(Pv, &Rv), Ft = estimate(Pt, &Rt), Fs = estimate(Ps, &Rs);
    double dEp = 0;
    for (int i = 0; Rv && Rt && i < Rv->np; i++)
        dEp = fmax(dEp, fabs(Rv->Ep[i] - Rt->Ep[i]));
    printf("\n  F from VOI files %.10f, from the same data as TSV %.10f: |dF| = %.2e, max |dEp| = "
           "%.2e\n  (the shared timeseries.tsv, rounded to 10 digits, gives F %.10f: |dF| = %.2e)",
           Fv, Ft, fabs(Fv - Ft), dEp, Fs, fabs(Fv - Fs));
    CU_ASSERT(fabs(Fv - Ft) <= 1e-9);
    CU_ASSERT(fabs(Fv - Fs) <= 1e-3);
    dcm_result_free(Rv);
    dcm_result_free(Rt);
    dcm_result_free(Rs);
    dcm_problem_free(Pv);
    dcm_problem_free(Pt);
    dcm_problem_free(Ps);
}

/* VOI errors in specs name the file and the field */
static void test_voi_spec_errors(void)
{
    char text[4096];
    dcm_problem *P = NULL;
    dcm_error err;
    write_file("not_a_mat.mat", "this is text, not a MATLAB file\n");
    snprintf(text, sizeof text,
             "{\"TR\": 2, \"TE\": 0.04, \"regions\": [{\"name\": \"R1\", \"voi\": \"not_a_mat.mat\"}],"
             " \"inputs_microtime\": \"u.tsv\", \"inputs\": [\"u\"], \"a\": [[1]], \"c\": [[1]]}");
    write_file("bad_voi1.json", text);
    CU_ASSERT_EQUAL(io_spec_load(tpath("bad_voi1.json"), &P, &err), DCM_ERR_INPUT);
    printf("\n  %s", err.msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not_a_mat.mat"));
    CU_ASSERT_PTR_NULL(P);
    snprintf(text, sizeof text,
             "{\"TR\": 2, \"TE\": 0.04, \"regions\": [{\"name\": \"R1\", \"vio\": \"x.mat\"}],"
             " \"inputs_microtime\": \"u.tsv\", \"inputs\": [\"u\"], \"a\": [[1]], \"c\": [[1]]}");
    write_file("bad_voi2.json", text);
    CU_ASSERT_EQUAL(io_spec_load(tpath("bad_voi2.json"), &P, &err), DCM_ERR_INPUT);
    printf("\n  %s", err.msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "did you mean \"voi\""));
    /* a .mat without xY */
    mat_t *mat = Mat_CreateVer(tpath("no_xy.mat"), NULL, MAT_FT_MAT5);
    size_t dims[2] = {1, 1};
    double one = 1;
    matvar_t *q = Mat_VarCreate("something", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, &one, 0);
    Mat_VarWrite(mat, q, MAT_COMPRESSION_NONE);
    Mat_VarFree(q);
    Mat_Close(mat);
    io_voi voi;
    CU_ASSERT_EQUAL(io_mat_load_voi(tpath("no_xy.mat"), &voi, &err), DCM_ERR_INPUT);
    printf("\n  %s", err.msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no variable \"xY\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "something"));
}

/* ---- 2. DCM .mat files ---- */

typedef struct {
    double *y, *X0, *u;
    int nx0;
} att_data;

static int load_att(att_data *A)
{
    memset(A, 0, sizeof *A);
    io_voi vo[3];
    dcm_error err;
    for (int r = 0; r < 3; r++) {
        char f[64];
        snprintf(f, sizeof f, "VOI_%s_1.mat", att_regions[r]);
        if (io_mat_load_voi(att(f), &vo[r], &err))
            return -1;
    }
    A->y = malloc(sizeof(double) * 360 * 3);
    for (int r = 0; r < 3; r++)
        memcpy(A->y + r * 360, vo[r].u, sizeof(double) * 360);
    A->nx0 = vo[0].nx0;
    A->X0 = vo[0].X0;
    vo[0].X0 = NULL;
    for (int r = 0; r < 3; r++)
        io_voi_free(&vo[r]);
    io_table t;
    if (io_tsv_read(att("inputs_microtime.tsv"), &t, &err))
        return -1;
    A->u = t.data;
    t.data = NULL;
    io_table_free(&t);
    return 0;
}

static const double att_a[9] = {1, 1, 0, 1, 1, 1, 0, 1, 1};   /* column-major */
static double att_b[27];
static const double att_c[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0};
static const double att_delays[3] = {1.61, 1.61, 1.61};

static void att_design(spm_design *d, const att_data *A)
{
    memset(att_b, 0, sizeof att_b);
    att_b[9 + 1] = 1;    /* Motion: V1 -> V5 (row 2, column 1) */
    att_b[18 + 1] = 1;   /* Attention: V1 -> V5 */
    spm_design x = {3, 3, 360, 3.22, 0.04, A->y, A->X0, A->nx0, A->u, att_a, att_b, att_c,
                    att_delays, att_regions, att_inputs, OMIT_NONE};
    *d = x;
}

static void test_dcm_mat_equals_spec(void)
{
    if (!have_attention())
        return;
    att_data A = {NULL, NULL, NULL, 0};
    CU_ASSERT_EQUAL_FATAL(load_att(&A), 0);
    spm_design d;
    att_design(&d, &A);
    CU_ASSERT_EQUAL_FATAL(write_spm_dcm(tpath("DCM_fwd.mat"), &d), 0);
    /* the equivalent JSON spec: VOI sources + micro-time inputs */
    char text[8192];
    snprintf(text, sizeof text,
             "{\"TR\": 3.22, \"TE\": 0.04,\n"
             " \"regions\": [{\"name\": \"V1\", \"voi\": \"%s\"}, {\"name\": \"V5\", \"voi\": \"%s\"},\n"
             "             {\"name\": \"SPC\", \"voi\": \"%s\"}],\n"
             " \"inputs_microtime\": \"%s\", \"inputs\": [\"Photic\", \"Motion\", \"Attention\"],\n%s}\n",
             att("VOI_V1_1.mat"), att("VOI_V5_1.mat"), att("VOI_SPC_1.mat"),
             att("inputs_microtime.tsv"), att_conn);
    write_file("fwd_spec.json", text);
    dcm_problem *Pm = NULL, *Pj = NULL;
    dcm_result *Rm = NULL, *Rj = NULL;
    dcm_error err;
    int rc = io_mat_load_dcm(tpath("DCM_fwd.mat"), &Pm, &err);
    if (rc)
        printf("\n  %s", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(io_spec_load(tpath("fwd_spec.json"), &Pj, &err), 0);
    CU_ASSERT_STRING_EQUAL(Pm->region_names[2], "SPC");
    CU_ASSERT_STRING_EQUAL(Pm->input_names[2], "Attention");
    CU_ASSERT_EQUAL(Pm->M->L.np, 50);
    double Fm = estimate(Pm, &Rm), Fj = estimate(Pj, &Rj);
    printf("\n  F from DCM.mat %.10f, from the JSON spec %.10f: |dF| = %.2e", Fm, Fj, fabs(Fm - Fj));
    CU_ASSERT(fabs(Fm - Fj) <= 1e-9);
    /* and SPM's own number */
    char ref[512];
    if (test_shared_path("reference/attention/spm_attention_fwd.json", ref, sizeof ref)) {
        json_t *j = test_load_json(ref);
        double Fspm = json_number_value(json_object_get(j, "free_energy"));
        printf("\n  SPM12's F %.4f: |dF| = %.2e", Fspm, fabs(Fm - Fspm));
        CU_ASSERT(fabs(Fm - Fspm) < 0.5);
        json_decref(j);
    }
    /* the command: .mat in, JSON and --mat out */
    char args[2048];
    snprintf(args, sizeof args, "estimate -q %s -o %s --mat %s", tpath("DCM_fwd.mat"),
             tpath("fwd_mat_result.json"), tpath("DCM_fwd_est.mat"));
    CU_ASSERT_EQUAL(run(args), 0);
    printf("\n  %s", out);
    CU_ASSERT(exists("DCM_fwd_est.mat"));
    /* the --mat output reloads, and its F and Ep are the estimate's */
    int rank;
    size_t dims[4];
    double *x = NULL;
    CU_ASSERT_EQUAL(io_mat_read_array(tpath("DCM_fwd_est.mat"), "DCM.F", &rank, dims, &x, &err), 0);
    printf("\n  --mat DCM.F %.10f (|dF| vs the library's estimate %.2e)", x ? x[0] : NAN,
           x ? fabs(x[0] - Fm) : NAN);
    CU_ASSERT(x && fabs(x[0] - Fm) < 1e-9);
    free(x);
    CU_ASSERT_EQUAL(io_mat_read_array(tpath("DCM_fwd_est.mat"), "DCM.Ep.A", &rank, dims, &x, &err), 0);
    double dA = 0;
    for (int i = 0; x && i < 9; i++)
        dA = fmax(dA, fabs(x[i] - Rm->Ep[i]));
    printf("\n  --mat DCM.Ep.A vs the library's: max |d| %.2e", dA);
    CU_ASSERT(dA < 1e-12);
    free(x);
    dcm_problem *Pr = NULL;
    rc = io_mat_load_dcm(tpath("DCM_fwd_est.mat"), &Pr, &err);
    if (rc)
        printf("\n  reload: %s", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    dcm_result *Rr = NULL;
    double Fr = estimate(Pr, &Rr);
    printf("\n  re-estimating the --mat output: F %.10f (|dF| = %.2e)", Fr, fabs(Fr - Fm));
    /* Y.y is stored scaled; rescaling by ~1 perturbs it at 1e-16, which the
       optimiser's stopping rule turns into ~1e-6 in F */
    CU_ASSERT(fabs(Fr - Fm) < 1e-4);
    dcm_result_free(Rr);
    dcm_problem_free(Pr);
    dcm_result_free(Rm);
    dcm_result_free(Rj);
    dcm_problem_free(Pm);
    dcm_problem_free(Pj);
    free(A.y);
    free(A.X0);
    free(A.u);
}

/* A small synthetic DCM (no shared data needed): .mat vs JSON. */
static void synth_design(spm_design *d, double **y, double **u)
{
    static const double a[4] = {1, 1, 0, 1};
    static const double b[4] = {0, 0, 0, 0};
    static const double c[2] = {1, 0};
    static const double dl[2] = {1.0, 1.0};
    static const char *const rn[2] = {"left", "right"};
    static const char *const in[1] = {"stim"};
    const int v = 64, nu = v * 16;
    *u = calloc(nu, sizeof(double));
    *y = malloc(sizeof(double) * v * 2);
    for (int t = 0; t < nu; t++)
        (*u)[t] = (t / 128) % 2 ? 1.0 : 0.0;   /* 8-scan blocks */
    for (int s = 0; s < v; s++) {
        double on = (s / 8) % 2 ? 1.0 : 0.0;
        (*y)[s] = 0.8 * on + 0.1 * sin(1.3 * s);
        (*y)[s + v] = 0.5 * (s ? ((s - 1) / 8) % 2 : 0) + 0.1 * cos(0.7 * s);
    }
    spm_design x = {2, 1, v, 2.0, 0.04, *y, NULL, 0, *u, a, b, c, dl, rn, in, OMIT_NONE};
    *d = x;
}

static void test_synthetic_mat_equals_spec(void)
{
    spm_design d;
    double *y, *u;
    synth_design(&d, &y, &u);
    CU_ASSERT_EQUAL_FATAL(write_spm_dcm(tpath("DCM_synth.mat"), &d), 0);
    dcm_error err;
    CU_ASSERT_EQUAL(io_tsv_write(tpath("synth_ts.tsv"), 64, 2, y, d.rnames, &err), 0);
    CU_ASSERT_EQUAL(io_tsv_write(tpath("synth_u.tsv"), 64 * 16, 1, u, NULL, &err), 0);
    write_file("synth.json",
               "{\"TR\": 2.0, \"TE\": 0.04, \"timeseries\": \"synth_ts.tsv\",\n"
               " \"regions\": [\"left\", \"right\"], \"inputs_microtime\": \"synth_u.tsv\",\n"
               " \"inputs\": [\"stim\"], \"a\": [[1, 0], [1, 1]], \"c\": [[1], [0]],\n"
               " \"delays\": [1.0, 1.0], \"options\": {\"maxit\": 128}}\n");
    dcm_problem *Pm = NULL, *Pj = NULL;
    dcm_result *Rm = NULL, *Rj = NULL;
    CU_ASSERT_EQUAL_FATAL(io_mat_load_dcm(tpath("DCM_synth.mat"), &Pm, &err), 0);
    CU_ASSERT_EQUAL_FATAL(io_spec_load(tpath("synth.json"), &Pj, &err), 0);
    double Fm = estimate(Pm, &Rm), Fj = estimate(Pj, &Rj);
    printf("\n  synthetic: F from DCM.mat %.10f, from JSON %.10f, |dF| = %.2e", Fm, Fj,
           fabs(Fm - Fj));
    CU_ASSERT(fabs(Fm - Fj) <= 1e-9);
    /* --mat output through the library */
    CU_ASSERT_EQUAL(io_mat_write_dcm(tpath("DCM_synth_est.mat"), Pm, Rm, &err), 0);
    dcm_problem *Pr = NULL;
    CU_ASSERT_EQUAL(io_mat_load_dcm(tpath("DCM_synth_est.mat"), &Pr, &err), 0);
    if (Pr) {
        CU_ASSERT_STRING_EQUAL(Pr->region_names[1], "right");
        CU_ASSERT_EQUAL(Pr->v, 64);
    }
    dcm_problem_free(Pr);
    dcm_result_free(Rm);
    dcm_result_free(Rj);
    dcm_problem_free(Pm);
    dcm_problem_free(Pj);
    free(y);
    free(u);
}

/* The --mat output has SPM12's DCM field names and shapes. */
static void test_mat_output_names_and_shapes(void)
{
    if (!exists("DCM_synth_est.mat")) {
        printf("\nSKIP: DCM_synth_est.mat was not written\n");
        return;
    }
    const char *p = tpath("DCM_synth_est.mat");
    const int n = 2, m = 1, v = 64, np = 4 + 4 + 2 + 0 + 2 + 1 + 1;
    struct {
        const char *field;
        int d0, d1, d2;   /* d2 = -1: rank 2 */
    } want[] = {
        {"DCM.a", n, n, -1}, {"DCM.b", n, n, m}, {"DCM.c", n, m, -1}, {"DCM.d", n, n, 0},
        {"DCM.U.u", v * 16, m, -1}, {"DCM.U.dt", 1, 1, -1},
        {"DCM.Y.y", v, n, -1}, {"DCM.Y.X0", v, 1, -1}, {"DCM.Y.dt", 1, 1, -1},
        {"DCM.Y.scale", 1, 1, -1}, {"DCM.v", 1, 1, -1}, {"DCM.n", 1, 1, -1},
        {"DCM.TE", 1, 1, -1}, {"DCM.delays", n, 1, -1},
        {"DCM.options.two_state", 1, 1, -1}, {"DCM.options.centre", 1, 1, -1},
        {"DCM.options.nonlinear", 1, 1, -1}, {"DCM.options.maxit", 1, 1, -1},
        {"DCM.Ep.A", n, n, -1}, {"DCM.Ep.B", n, n, m}, {"DCM.Ep.C", n, m, -1},
        {"DCM.Ep.D", n, n, 0}, {"DCM.Ep.transit", n, 1, -1}, {"DCM.Ep.decay", 1, 1, -1},
        {"DCM.Ep.epsilon", 1, 1, -1},
        {"DCM.Pp.A", n, n, -1}, {"DCM.Pp.B", n, n, m}, {"DCM.Vp.C", n, m, -1},
        {"DCM.Vp.transit", n, 1, -1},
        {"DCM.Cp", np, np, -1}, {"DCM.F", 1, 1, -1}, {"DCM.y", v, n, -1}, {"DCM.R", v, n, -1},
        {"DCM.Ce", n, 1, -1},
        {"DCM.M.pE.A", n, n, -1}, {"DCM.M.pE.epsilon", 1, 1, -1}, {"DCM.M.pC", np, np, -1},
        {"DCM.M.hE", 1, 1, -1}, {"DCM.M.hC", 1, 1, -1},
    };
    dcm_error err;
    printf("\n  ");
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        int rank;
        size_t dims[4];
        double *x = NULL;
        int rc = io_mat_read_array(p, want[i].field, &rank, dims, &x, &err);
        if (rc)
            printf("\n  %s", err.msg);
        CU_ASSERT_EQUAL(rc, 0);
        int ok = rc == 0 && (int)dims[0] == want[i].d0 && (int)dims[1] == want[i].d1 &&
                 (want[i].d2 < 0 ? rank == 2 : rank == 3 && (int)dims[2] == want[i].d2);
        /* MATLAB drops trailing singleton dimensions: n x n x 1 is n x n */
        if (!ok && rc == 0 && want[i].d2 == 1 && rank == 2)
            ok = (int)dims[0] == want[i].d0 && (int)dims[1] == want[i].d1;
        if (!ok && rc == 0 && want[i].d2 == 1 && rank == 3)
            ok = (int)dims[0] == want[i].d0 && (int)dims[1] == want[i].d1 && dims[2] == 1;
        printf("%s %zux%zu%s%s ", want[i].field + 4, dims[0], dims[1],
               rank == 3 ? (dims[2] ? "x." : "x0") : "", ok ? "" : "(WRONG)");
        CU_ASSERT(ok);
        free(x);
    }
    /* the names of the top-level fields and of Ep */
    mat_t *mat = Mat_Open(p, MAT_ACC_RDONLY);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mat);
    matvar_t *D = Mat_VarRead(mat, "DCM");
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    const char *need[] = {"a", "b", "c", "d", "U", "Y", "v", "n", "TE", "delays", "options",
                          "Ep", "Cp", "Pp", "Vp", "F", "y", "R", "Ce", "M", NULL};
    char *const *fn = Mat_VarGetStructFieldnames(D);
    unsigned nf = Mat_VarGetNumberOfFields(D);
    for (int i = 0; need[i]; i++) {
        int found = 0;
        for (unsigned k = 0; k < nf; k++)
            found |= strcmp(fn[k], need[i]) == 0;
        if (!found)
            printf("\n  missing DCM.%s", need[i]);
        CU_ASSERT(found);
    }
    matvar_t *Y = Mat_VarGetStructFieldByName(D, "Y", 0);
    matvar_t *names = Mat_VarGetStructFieldByName(Y, "name", 0);
    CU_ASSERT_EQUAL(names->class_type, MAT_C_CELL);
    matvar_t *U = Mat_VarGetStructFieldByName(D, "U", 0);
    CU_ASSERT_EQUAL(Mat_VarGetStructFieldByName(U, "name", 0)->class_type, MAT_C_CELL);
    Mat_VarFree(D);
    Mat_Close(mat);
}

/* ---- bad .mat files: exit 2, clear message, no output ---- */

static void expect_estimate_failure(const char *mat, const char *needle)
{
    char args[2048];
    unlink(tpath("bad_out.json"));
    snprintf(args, sizeof args, "estimate -q %s -o %s --mat %s", tpath(mat), tpath("bad_out.json"),
             tpath("bad_out.mat"));
    int rc = run(args);
    printf("\n  [%s] exit %d: %s", mat, rc, out);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, needle));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, mat));
    CU_ASSERT_FALSE(exists("bad_out.json"));
    CU_ASSERT_FALSE(exists("bad_out.mat"));
    CU_ASSERT(no_temp_files());
}

static void test_bad_mat_files(void)
{
    /* not a MAT file at all */
    write_file("text.mat", "not a mat file\n");
    expect_estimate_failure("text.mat", "not a MATLAB .mat file");
    /* a MAT file without the DCM variable */
    mat_t *mat = Mat_CreateVer(tpath("nodcm.mat"), NULL, MAT_FT_MAT5);
    size_t dims[2] = {1, 1};
    double one = 1;
    matvar_t *q = Mat_VarCreate("xY", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, &one, 0);
    Mat_VarWrite(mat, q, MAT_COMPRESSION_NONE);
    Mat_VarFree(q);
    Mat_Close(mat);
    expect_estimate_failure("nodcm.mat", "no variable \"DCM\"");
    /* DCM without Y.y, without U, without a */
    spm_design d;
    double *y, *u;
    synth_design(&d, &y, &u);
    d.omit = OMIT_Y_Y;
    CU_ASSERT_EQUAL(write_spm_dcm(tpath("noyy.mat"), &d), 0);
    expect_estimate_failure("noyy.mat", "DCM.Y.y");
    d.omit = OMIT_U;
    CU_ASSERT_EQUAL(write_spm_dcm(tpath("nou.mat"), &d), 0);
    expect_estimate_failure("nou.mat", "DCM.U");
    d.omit = OMIT_A;
    CU_ASSERT_EQUAL(write_spm_dcm(tpath("noa.mat"), &d), 0);
    expect_estimate_failure("noa.mat", "DCM.a");
    /* c of the wrong shape: 3x1 for 2 regions and 1 input */
    d.omit = OMIT_NONE;
    CU_ASSERT_EQUAL(write_spm_dcm(tpath("badc.mat"), &d), 0);
    {
        mat_t *mm = Mat_Open(tpath("badc.mat"), MAT_ACC_RDONLY);
        matvar_t *D = Mat_VarRead(mm, "DCM");
        Mat_Close(mm);
        double cc[3] = {1, 0, 0};
        Mat_VarFree(Mat_VarSetStructFieldByName(D, "c", 0, m_num(2, 3, 1, 0, cc)));
        mm = Mat_CreateVer(tpath("badc.mat"), NULL, MAT_FT_MAT5);
        Mat_VarWrite(mm, D, MAT_COMPRESSION_ZLIB);
        Mat_Close(mm);
        Mat_VarFree(D);
    }
    expect_estimate_failure("badc.mat", "DCM.c is 3x1; expected 2x1");
    free(y);
    free(u);
    /* a DCM .mat with a truncated end */
    FILE *f = fopen(tpath("DCM_synth.mat"), "rb");
    if (f) {
        char buf[200000];
        size_t k = fread(buf, 1, sizeof buf, f);
        fclose(f);
        f = fopen(tpath("trunc.mat"), "wb");
        fwrite(buf, 1, k / 2, f);
        fclose(f);
        expect_estimate_failure("trunc.mat", "trunc.mat");
        expect_estimate_failure("trunc.mat", "the file is truncated");
        /* cut inside the 128-byte header */
        f = fopen(tpath("trunc_head.mat"), "wb");
        fwrite(buf, 1, 100, f);
        fclose(f);
        expect_estimate_failure("trunc_head.mat", "the file is truncated (100 bytes");
    }
    /* the estimated DCM (--mat output) cut short: truncated, not "DCM.n has
       0 dimensions" */
    f = fopen(tpath("DCM_synth_est.mat"), "rb");
    if (f) {
        static char buf[400000];
        size_t k = fread(buf, 1, sizeof buf, f);
        fclose(f);
        f = fopen(tpath("trunc_est.mat"), "wb");
        fwrite(buf, 1, k - 7, f);
        fclose(f);
        expect_estimate_failure("trunc_est.mat", "the file is truncated");
        CU_ASSERT_PTR_NULL(strstr(out, "0 dimensions"));
    }
}

/* --mat on a full disk: matio's write errors are caught (and the file is
 * read back before it is put in place), so the writer returns
 * DCM_ERR_SYSTEM and the earlier .mat is untouched. The disk fills at
 * RLIMIT_FSIZE, set in a child process with SIGXFSZ ignored. */
static void test_mat_write_full_disk(void)
{
    dcm_problem *P = NULL;
    dcm_result *R = NULL;
    dcm_error err = {0, ""};
    if (io_mat_load_dcm(tpath("DCM_synth.mat"), &P, &err)) {
        printf("\nSKIP: DCM_synth.mat was not written\n");
        return;
    }
    estimate(P, &R);
    CU_ASSERT_PTR_NOT_NULL_FATAL(R);
    CU_ASSERT_EQUAL_FATAL(io_mat_write_dcm(tpath("full.mat"), P, R, &err), 0);
    FILE *f = fopen(tpath("full.mat"), "rb");
    static char before[400000], after[400000];
    size_t nb = f ? fread(before, 1, sizeof before, f) : 0;
    if (f)
        fclose(f);
    CU_ASSERT_FATAL(nb > 4096);
    for (long limit = 512; limit < (long)nb; limit *= 4) {
        pid_t pid = fork();
        CU_ASSERT_FATAL(pid >= 0);
        if (pid == 0) {
            signal(SIGXFSZ, SIG_IGN);
            struct rlimit rl = {(rlim_t)limit, (rlim_t)limit};
            setrlimit(RLIMIT_FSIZE, &rl);
            dcm_error e = {0, ""};
            _exit(io_mat_write_dcm(tpath("full.mat"), P, R, &e));
        }
        int st;
        waitpid(pid, &st, 0);
        CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == DCM_ERR_SYSTEM);
        f = fopen(tpath("full.mat"), "rb");
        size_t na = f ? fread(after, 1, sizeof after, f) : 0;
        if (f)
            fclose(f);
        CU_ASSERT(na == nb && !memcmp(before, after, nb));
    }
    CU_ASSERT(test_no_temp_files(tmpdir));
    dcm_result_free(R);
    dcm_problem_free(P);
}

static void test_missing_mat_file(void)
{
    expect_estimate_failure("absent.mat", "cannot open");
}

/* matio is loaded on first use (io/io_matio.h): the command does not map
 * it (nor HDF5), a JSON spec needs no matio, and a .mat without a loadable
 * matio is a clear error (exit 4) with nothing written. */
static void test_matio_loaded_on_demand(void)
{
    const char *rel = getenv("DCM_RELEASE_BIN");
    if (rel && *rel && !access(rel, X_OK)) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "ldd '%s'", rel);
        CU_ASSERT_EQUAL(test_shell(cmd, out, sizeof out), 0);
        CU_ASSERT_PTR_NULL(strstr(out, "libmatio"));
        CU_ASSERT_PTR_NULL(strstr(out, "libhdf5"));
    }
    /* the synthetic files of test_synthetic_mat_equals_spec */
    char args[2048];
    snprintf(args, sizeof args, "estimate -q %s -o %s", tpath("synth.json"), tpath("nomatio.json"));
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "DCM_MATIO_LIBRARY=/nonexistent/libmatio.so %s %s", test_dcm_bin(), args);
    CU_ASSERT_EQUAL(test_shell(cmd, out, sizeof out), 0);
    CU_ASSERT(exists("nomatio.json"));
    snprintf(args, sizeof args, "estimate -q %s -o %s", tpath("DCM_synth.mat"), tpath("nomatio2.json"));
    snprintf(cmd, sizeof cmd, "DCM_MATIO_LIBRARY=/nonexistent/libmatio.so %s %s", test_dcm_bin(), args);
    int rc = test_shell(cmd, out, sizeof out);
    printf("\n  without matio: exit %d: %s", rc, out);
    CU_ASSERT_EQUAL(rc, 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "needs the matio library"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "/nonexistent/libmatio.so"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "DCM_synth.mat"));
    CU_ASSERT_FALSE(exists("nomatio2.json"));
}

static int setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dcm-mat-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static void teardown(void)
{
    if (test_remove_dir(tmpdir))
        printf("cannot remove %s\n", tmpdir);
}

/* as the dcm command does (dcm/main.c): one BLAS thread, so that the
 * library's sums run in the same order as the command's */
extern void openblas_set_num_threads(int);

int main(void)
{
    openblas_set_num_threads(1);
    if (setup())
        return 1;
    static const test_case cases[] = {
        {"SPM's eigenvariate of each VOI's xY.y reproduces xY.u (1e-6)", test_voi_eigenvariate},
        {"the DCT high-pass basis equals the one in SPM's xY.X0", test_voi_dct},
        {"a spec with VOI regions gives the TSV spec's F (1e-9)", test_voi_spec_equals_tsv_spec},
        {"VOI errors in a spec name the file and field", test_voi_spec_errors},
        {"an SPM-specified DCM.mat gives the JSON spec's F (1e-9); --mat reloads",
         test_dcm_mat_equals_spec},
        {"synthetic DCM.mat vs JSON spec, and --mat through the library",
         test_synthetic_mat_equals_spec},
        {"--mat output: SPM12's DCM field names and shapes", test_mat_output_names_and_shapes},
        {"bad .mat files: exit 2, named field, no output", test_bad_mat_files},
        {"a missing .mat: exit 2", test_missing_mat_file},
        {"--mat on a full disk: exit 4, the old .mat intact", test_mat_write_full_disk},
        {"matio is loaded only for .mat files; without it a clear error", test_matio_loaded_on_demand},
        {NULL, NULL}};
    int rc = test_run("mat", cases);
    teardown();
    return rc;
}
