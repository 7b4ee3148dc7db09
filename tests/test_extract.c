/* test_extract.c — `dcm extract` and io/io_extract: small synthetic 4D
 * images with known signals (written here with nifticlib) check masks,
 * atlas labels, spheres in world coordinates through a non-trivial sform
 * (and a qform), the high-pass basis, the eigenvariate against a direct
 * SVD, confound regression, TR and slice timing from BIDS sidecars, every
 * image format; and every kind of bad input gets exit 2, a clear message
 * and no output file. */
#include <dirent.h>
#include <gsl/gsl_linalg.h>
#include <nifti2_io.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <zlib.h>
#include <unistd.h>

#include "io/io_extract.h"
#include "io/io_nifti.h"
#include "io/io_tsv.h"
#include "tests/test_util.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static char tmpdir[256];
static char out[65536];

static int run(const char *args)
{
    return test_dcm(args, out, sizeof out);
}

static char *tp(const char *name)
{
    static char buf[8][1024];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static int count_with_prefix(const char *prefix)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int k = 0;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 || strstr(e->d_name, ".tmp"))
            k++;
    closedir(d);
    return k;
}

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(tp(name), "w");
    fputs(text, f);
    fclose(f);
}

/* ---- the synthetic data set ---- */

enum { NX = 12, NY = 10, NZ = 8, NV = 80 };
#define TR_S 2.0
#define NVOX3 (NX * NY * NZ)
#define VOX(i, j, k) ((size_t)(i) + NX * ((size_t)(j) + NY * (size_t)(k)))

/* a deterministic pseudo-random number in [-1, 1) */
static double prand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return ((*s >> 8) & 0xFFFF) / 32768.0 - 1.0;
}

static double sig_a(int t) { return sin(0.31 * t) + 0.5 * ((t / 10) % 2); }
static double sig_b(int t) { return cos(0.17 * t) - 0.3 * sin(0.05 * t * t / NV); }
static double conf_c(int t) { return 0.02 * t + 0.4 * sin(0.9 * t); }

/* region A: a box; region B: another box (atlas label 2) */
static int in_a(int i, int j, int k) { return i >= 2 && i <= 4 && j >= 3 && j <= 5 && k >= 2 && k <= 3; }
static int in_b(int i, int j, int k) { return i >= 7 && i <= 9 && j >= 1 && j <= 4 && k >= 4 && k <= 6; }
static double w_a(int i, int j, int k) { return 1.0 + 0.3 * i + 0.1 * j + 0.05 * k; }
/* distinct per-voxel amplitude used by the sphere checks */
static double amp(int i, int j, int k) { return 1.0 + i + 0.1 * j + 0.01 * k; }

/* sform: rotations about z (30 deg) and x (15 deg), voxels 2 x 2.5 x 3 mm */
static void make_sform(double A[4][4])
{
    double cz = cos(M_PI / 6), sz = sin(M_PI / 6), cx = cos(M_PI / 12), sx = sin(M_PI / 12);
    double Rz[3][3] = {{cz, -sz, 0}, {sz, cz, 0}, {0, 0, 1}};
    double Rx[3][3] = {{1, 0, 0}, {0, cx, -sx}, {0, sx, cx}};
    double S[3] = {2.0, 2.5, 3.0}, off[3] = {-20.0, 30.0, -10.0};
    memset(A, 0, sizeof(double) * 16);
    for (int r = 0; r < 3; r++) {
        for (int c = 0; c < 3; c++) {
            double x = 0;
            for (int q = 0; q < 3; q++)
                x += Rz[r][q] * Rx[q][c];
            A[r][c] = x * S[c];
        }
        A[r][3] = off[r];
    }
    A[3][3] = 1;
}

typedef struct {
    int ftype;              /* NIFTI_FTYPE_* */
    int datatype;           /* DT_FLOAT64, DT_INT16, ... */
    double slope, inter;    /* for integer types */
    int sform;              /* 1: the rotated sform; 0: none */
    int qform;              /* 1: qform = voxel sizes + offset */
    double tr;              /* pixdim[4] */
    int time_units;
} img_opts;

static const img_opts DEFAULT_IMG = {NIFTI_FTYPE_NIFTI1_1, DT_FLOAT64, 0, 0, 1, 1, TR_S,
                                     NIFTI_UNITS_SEC};

/* Write an image of nx*ny*nz*nt doubles (values before scaling). */
static int write_img(const char *path, int nt, const double *x, const img_opts *o)
{
    int64_t dims[8] = {nt > 1 ? 4 : 3, NX, NY, NZ, nt, 1, 1, 1};
    nifti_image *nim = nifti_make_new_nim(dims, o->datatype, 1);
    if (!nim)
        return -1;
    size_t n = (size_t)NVOX3 * nt;
    for (size_t q = 0; q < n; q++) {
        double v = x[q];
        if (o->datatype == DT_FLOAT64)
            ((double *)nim->data)[q] = v;
        else if (o->datatype == DT_FLOAT32)
            ((float *)nim->data)[q] = (float)v;
        else if (o->datatype == DT_INT16)
            ((int16_t *)nim->data)[q] = (int16_t)lround((v - o->inter) / (o->slope ? o->slope : 1));
        else if (o->datatype == DT_UINT8)
            ((uint8_t *)nim->data)[q] = (uint8_t)lround(v);
    }
    if (o->datatype == DT_INT16) {
        nim->scl_slope = o->slope;
        nim->scl_inter = o->inter;
    }
    nim->dx = nim->pixdim[1] = 2.0;
    nim->dy = nim->pixdim[2] = 2.5;
    nim->dz = nim->pixdim[3] = 3.0;
    nim->dt = nim->pixdim[4] = nt > 1 ? o->tr : 0.0;
    nim->xyz_units = NIFTI_UNITS_MM;
    nim->time_units = o->time_units;
    nim->slice_dim = 3;
    if (o->qform) {
        nim->qform_code = NIFTI_XFORM_SCANNER_ANAT;
        nim->quatern_b = nim->quatern_c = nim->quatern_d = 0.0;
        nim->qoffset_x = 5.0;
        nim->qoffset_y = -7.0;
        nim->qoffset_z = 11.0;
        nim->qfac = 1.0;
        nim->qto_xyz = nifti_quatern_to_dmat44(0, 0, 0, 5.0, -7.0, 11.0, 2.0, 2.5, 3.0, 1.0);
    }
    if (o->sform) {
        double A[4][4];
        make_sform(A);
        nim->sform_code = NIFTI_XFORM_MNI_152;
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                nim->sto_xyz.m[r][c] = A[r][c];
    }
    nim->nifti_type = o->ftype;
    if (nifti_set_filenames(nim, path, 0, 1) != 0) {
        nifti_image_free(nim);
        return -1;
    }
    nim->nifti_type = o->ftype;   /* the file name alone says NIfTI-1 */
    if (o->ftype == NIFTI_FTYPE_NIFTI2_1) {
        /* this nifticlib's writer loses the NIfTI-2 header: write it here */
        nifti_2_header h;
        int rc = nifti_convert_nim2n2hdr(nim, &h);
        memcpy(h.magic, "n+2\0\r\n\032\n", 8);
        h.vox_offset = 544;
        FILE *f = rc ? NULL : fopen(path, "wb");
        char ext[4] = {0, 0, 0, 0};
        if (!f || fwrite(&h, sizeof h, 1, f) != 1 || fwrite(ext, 4, 1, f) != 1 ||
            fwrite(nim->data, (size_t)nim->nbyper, (size_t)nim->nvox, f) != (size_t)nim->nvox)
            rc = -1;
        if (f)
            fclose(f);
        nifti_image_free(nim);
        return rc;
    }
    nifti_image_write(nim);
    nifti_image_free(nim);
    return 0;
}

/* The BOLD series: background noise, region A = 100 + w s_A(t), region B =
 * 80 + s_B(t); with_conf adds z * c(t) to A's voxels. */
static double *make_bold(int with_conf, int use_amp)
{
    double *x = malloc(sizeof(double) * NVOX3 * NV);
    unsigned seed = 7;
    for (int t = 0; t < NV; t++)
        for (int k = 0; k < NZ; k++)
            for (int j = 0; j < NY; j++)
                for (int i = 0; i < NX; i++) {
                    double v = 50.0 + prand(&seed);
                    if (use_amp)
                        v = 100.0 + amp(i, j, k) * sig_a(t);
                    else if (in_a(i, j, k))
                        v = 100.0 + w_a(i, j, k) * sig_a(t) +
                            (with_conf ? (0.5 + 0.1 * i) * conf_c(t) : 0.0);
                    else if (in_b(i, j, k))
                        v = 80.0 + sig_b(t);
                    x[VOX(i, j, k) + (size_t)NVOX3 * t] = v;
                }
    return x;
}

static double *make_labels(int which)   /* 0: mask of A, 1: atlas (A=1, B=2) */
{
    double *x = calloc(NVOX3, sizeof(double));
    for (int k = 0; k < NZ; k++)
        for (int j = 0; j < NY; j++)
            for (int i = 0; i < NX; i++)
                x[VOX(i, j, k)] = in_a(i, j, k) ? 1.0 : (which && in_b(i, j, k)) ? 2.0 : 0.0;
    return x;
}

/* ---- independent reference computations ---- */

/* residuals of s (v) on the columns of X (v x k) by GSL least squares */
static void residual(const double *X, int k, double *s, int v)
{
    gsl_matrix *A = gsl_matrix_alloc(v, k);
    gsl_vector *b = gsl_vector_alloc(v), *x = gsl_vector_alloc(k), *r = gsl_vector_alloc(v);
    gsl_vector *tau = gsl_vector_alloc(k);
    for (int t = 0; t < v; t++) {
        for (int j = 0; j < k; j++)
            gsl_matrix_set(A, t, j, X[t + j * v]);
        gsl_vector_set(b, t, s[t]);
    }
    gsl_linalg_QR_decomp(A, tau);
    gsl_linalg_QR_lssolve(A, tau, b, x, r);
    for (int t = 0; t < v; t++)
        s[t] = gsl_vector_get(r, t);
    gsl_matrix_free(A);
    gsl_vector_free(b);
    gsl_vector_free(x);
    gsl_vector_free(r);
    gsl_vector_free(tau);
}

/* spm_dctmtx by its formula */
static void dct_direct(int v, int K, double *C)
{
    for (int k = 0; k < K; k++)
        for (int t = 0; t < v; t++)
            C[t + k * v] = k == 0 ? 1.0 / sqrt(v) : sqrt(2.0 / v) * cos(M_PI * (2 * t + 1) * k / (2.0 * v));
}

/* For rank-one data y = s w' the eigenvariate is s ||w|| / sqrt(n). */
static double rank_one_error(const double *u, const double *s, double wnorm, int nvox, int v)
{
    double e = 0, m = 0;
    for (int t = 0; t < v; t++) {
        double ref = s[t] * wnorm / sqrt(nvox);
        e = fmax(e, fabs(u[t] - ref));
        m = fmax(m, fabs(ref));
    }
    return e / m;
}

/* ---- unit checks ---- */

static void test_dct_basis(void)
{
    dcm_error err;
    CU_ASSERT_EQUAL(io_dct_ncols(360, 3.22, 128), 19);
    CU_ASSERT_EQUAL(io_dct_ncols(NV, TR_S, 128), 3);
    CU_ASSERT_EQUAL(io_dct_ncols(100, 2.0, 400), 2);
    int sizes[] = {1, 2, 7, 80, 257, 360};
    double worst_o = 0, worst_f = 0;
    for (size_t q = 0; q < sizeof sizes / sizeof *sizes; q++) {
        int v = sizes[q], K = v < 20 ? v : 20;
        double *C = malloc(sizeof(double) * v * K), *D = malloc(sizeof(double) * v * K);
        CU_ASSERT_EQUAL_FATAL(io_dct_basis(v, K, C, &err), 0);
        dct_direct(v, K, D);
        for (int i = 0; i < v * K; i++)
            worst_f = fmax(worst_f, fabs(C[i] - D[i]));
        for (int a = 0; a < K; a++)
            for (int b = 0; b < K; b++) {
                double dot = 0;
                for (int t = 0; t < v; t++)
                    dot += C[t + a * v] * C[t + b * v];
                worst_o = fmax(worst_o, fabs(dot - (a == b)));
            }
        free(C);
        free(D);
    }
    printf("\n  FFTW DCT basis: max |C'C - I| = %.2e, max |C - cosine formula| = %.2e", worst_o, worst_f);
    CU_ASSERT(worst_o < 1e-12);
    CU_ASSERT(worst_f < 1e-12);
    double C1[4];
    CU_ASSERT_EQUAL(io_dct_basis(2, 3, C1, &err), DCM_ERR_INPUT);
}

/* the eigenvariate against a direct SVD of y, both of SPM's branches */
static void test_eigenvariate_direct(void)
{
    int shapes[][2] = {{50, 20}, {30, 90}, {40, 40}, {12, 1}};
    for (size_t q = 0; q < sizeof shapes / sizeof *shapes; q++) {
        int v = shapes[q][0], n = shapes[q][1];
        double *y = malloc(sizeof(double) * v * n), *u = malloc(sizeof(double) * v);
        double *w = malloc(sizeof(double) * n);
        unsigned seed = 11 + q;
        for (int c = 0; c < n; c++)
            for (int t = 0; t < v; t++)
                y[t + c * v] = sin(0.2 * t + c) + 0.3 * prand(&seed);
        dcm_error err;
        double expl;
        CU_ASSERT_EQUAL_FATAL(io_eigenvariate(y, v, n, u, w, &expl, &err), 0);
        /* direct: y = U S V' (GSL wants rows >= columns: decompose y or y') */
        int tall = v >= n, r = tall ? v : n, c = tall ? n : v;
        gsl_matrix *A = gsl_matrix_alloc(r, c), *V = gsl_matrix_alloc(c, c);
        gsl_vector *S = gsl_vector_alloc(c), *work = gsl_vector_alloc(c);
        for (int t = 0; t < v; t++)
            for (int k = 0; k < n; k++)
                gsl_matrix_set(A, tall ? t : k, tall ? k : t, y[t + k * v]);
        gsl_linalg_SV_decomp(A, V, S, work);
        double s1 = gsl_vector_get(S, 0), ss = 0, sumv = 0;
        for (int k = 0; k < c; k++)
            ss += gsl_vector_get(S, k) * gsl_vector_get(S, k);
        double *ul = malloc(sizeof(double) * v), *vr = malloc(sizeof(double) * n);
        for (int t = 0; t < v; t++)
            ul[t] = tall ? gsl_matrix_get(A, t, 0) : gsl_matrix_get(V, t, 0);
        for (int k = 0; k < n; k++) {
            vr[k] = tall ? gsl_matrix_get(V, k, 0) : gsl_matrix_get(A, k, 0);
            sumv += vr[k];
        }
        double d = sumv < 0 ? -1 : 1, e = 0, m = 0, ew = 0;
        for (int t = 0; t < v; t++) {
            double ref = d * ul[t] * s1 / sqrt(n);
            e = fmax(e, fabs(u[t] - ref));
            m = fmax(m, fabs(ref));
        }
        for (int k = 0; k < n; k++)
            ew = fmax(ew, fabs(w[k] - d * vr[k]));
        printf("\n  %dx%d: max |u - direct| / max|u| = %.2e, weights %.2e, explained %.4f (direct %.4f)",
               v, n, e / m, ew, expl, s1 * s1 / ss);
        CU_ASSERT(e / m < 1e-10);
        CU_ASSERT(ew < 1e-8);
        CU_ASSERT_DOUBLE_EQUAL(expl, s1 * s1 / ss, 1e-10);
        gsl_matrix_free(A);
        gsl_matrix_free(V);
        gsl_vector_free(S);
        gsl_vector_free(work);
        free(ul);
        free(vr);
        free(y);
        free(u);
        free(w);
    }
}

/* ---- images ---- */

static void setup_images(void)
{
    double *bold = make_bold(0, 0), *mask = make_labels(0), *atlas = make_labels(1);
    img_opts o = DEFAULT_IMG;
    write_img(tp("bold.nii"), NV, bold, &o);
    write_img(tp("mask.nii"), 1, mask, &o);
    write_img(tp("atlas.nii"), 1, atlas, &o);
    img_opts g = o;
    g.ftype = NIFTI_FTYPE_NIFTI1_1;
    write_img(tp("bold_gz.nii.gz"), NV, bold, &g);
    write_img(tp("mask_gz.nii.gz"), 1, mask, &g);
    g.ftype = NIFTI_FTYPE_NIFTI2_1;
    write_img(tp("bold_n2.nii"), NV, bold, &g);
    write_img(tp("mask_n2.nii"), 1, mask, &g);
    g.ftype = NIFTI_FTYPE_ANALYZE;
    g.sform = g.qform = 0;
    g.datatype = DT_FLOAT32;
    write_img(tp("bold_an.hdr"), NV, bold, &g);
    write_img(tp("mask_an.hdr"), 1, mask, &g);
    img_opts i16 = DEFAULT_IMG;
    i16.datatype = DT_INT16;
    i16.slope = 0.001;
    i16.inter = 50.0;
    write_img(tp("bold_i16.nii"), NV, bold, &i16);
    free(bold);
    free(mask);
    free(atlas);
}

static void opts_init(io_extract_opts *o, const char *bold)
{
    memset(o, 0, sizeof *o);
    o->bold = bold;
    o->name = "A";
    o->hpf = 0;
    o->summary = IO_SUMMARY_EIGEN;
}

static double wnorm_a(void)
{
    double w2 = 0;
    for (int k = 0; k < NZ; k++)
        for (int j = 0; j < NY; j++)
            for (int i = 0; i < NX; i++)
                if (in_a(i, j, k))
                    w2 += w_a(i, j, k) * w_a(i, j, k);
    return sqrt(w2);
}

/* s_A with the constant (and optionally the DCT) regressed out */
static void adjusted_sig_a(double *s, int K)
{
    for (int t = 0; t < NV; t++)
        s[t] = sig_a(t);
    double *C = malloc(sizeof(double) * NV * K);
    dct_direct(NV, K, C);
    residual(C, K, s, NV);
    free(C);
}

static void test_mask_region(void)
{
    io_extract_opts o;
    io_extract_result r;
    dcm_error err;
    opts_init(&o, tp("bold.nii"));
    o.mask = tp("mask.nii");
    int rc = io_extract_run(&o, &r, &err);
    if (rc)
        printf("\n  %s", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(r.nvox, 18);
    CU_ASSERT_EQUAL(r.v, NV);
    CU_ASSERT_EQUAL(r.nx0, 1);
    double s[NV];
    adjusted_sig_a(s, 1);
    double e = rank_one_error(r.y, s, wnorm_a(), 18, NV);
    printf("\n  mask: %d voxels, eigenvariate vs s_A ||w||/sqrt(n): rel. error %.2e, explained %.6f",
           r.nvox, e, r.explained);
    CU_ASSERT(e < 1e-10);
    CU_ASSERT_DOUBLE_EQUAL(r.explained, 1.0, 1e-10);
    /* centre: the centroid of the box (3, 4, 2.5) through the sform */
    double A[4][4], c[3];
    make_sform(A);
    for (int q = 0; q < 3; q++)
        c[q] = A[q][0] * 3 + A[q][1] * 4 + A[q][2] * 2.5 + A[q][3];
    for (int q = 0; q < 3; q++)
        CU_ASSERT_DOUBLE_EQUAL(r.centre_mm[q], c[q], 1e-4);
    io_extract_result_free(&r);
    /* with the high-pass filter (K = 3 for 80 scans of 2 s at 128 s) */
    o.hpf = 128;
    CU_ASSERT_EQUAL_FATAL(io_extract_run(&o, &r, &err), 0);
    CU_ASSERT_EQUAL(r.nx0, 3);
    CU_ASSERT_EQUAL(r.ndct, 2);
    adjusted_sig_a(s, 3);
    e = rank_one_error(r.y, s, wnorm_a(), 18, NV);
    printf("\n  with the DCT high-pass (%d columns): rel. error %.2e", r.ndct, e);
    CU_ASSERT(e < 1e-10);
    io_extract_result_free(&r);
    /* the mean summary of rank-one data: mean(w) * s */
    o.summary = IO_SUMMARY_MEAN;
    o.hpf = 0;
    CU_ASSERT_EQUAL_FATAL(io_extract_run(&o, &r, &err), 0);
    adjusted_sig_a(s, 1);
    double wm = 0, em = 0;
    for (int k = 0; k < NZ; k++)
        for (int j = 0; j < NY; j++)
            for (int i = 0; i < NX; i++)
                if (in_a(i, j, k))
                    wm += w_a(i, j, k) / 18.0;
    for (int t = 0; t < NV; t++)
        em = fmax(em, fabs(r.y[t] - wm * s[t]));
    printf("\n  mean summary: max error %.2e", em);
    CU_ASSERT(em < 1e-10);
    io_extract_result_free(&r);
}

static void test_atlas_label(void)
{
    io_extract_opts o;
    io_extract_result r;
    dcm_error err;
    opts_init(&o, tp("bold.nii"));
    o.atlas = tp("atlas.nii");
    o.label = 2;
    CU_ASSERT_EQUAL_FATAL(io_extract_run(&o, &r, &err), 0);
    CU_ASSERT_EQUAL(r.nvox, 3 * 4 * 3);
    /* region B is 80 + s_B exactly: the eigenvariate is s_B (demeaned) */
    double s[NV], mu = 0, e = 0;
    for (int t = 0; t < NV; t++)
        mu += sig_b(t) / NV;
    for (int t = 0; t < NV; t++) {
        s[t] = sig_b(t) - mu;
        e = fmax(e, fabs(r.y[t] - s[t]));   /* ||w|| / sqrt(n) = 1 */
    }
    printf("\n  atlas label 2: %d voxels, max error %.2e", r.nvox, e);
    CU_ASSERT(e < 1e-10);
    io_extract_result_free(&r);
    o.label = 7;
    CU_ASSERT_EQUAL(io_extract_run(&o, &r, &err), DCM_ERR_INPUT);
    printf("\n  label 7: %s", err.msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no voxel has label 7"));
}

/* voxels whose centres lie within R of c, through affine A */
static int expected_sphere(double A[4][4], const double c[3], double R, const double *mask,
                           double *amp_mean)
{
    int n = 0;
    double s = 0;
    for (int k = 0; k < NZ; k++)
        for (int j = 0; j < NY; j++)
            for (int i = 0; i < NX; i++) {
                double d2 = 0;
                for (int q = 0; q < 3; q++) {
                    double x = A[q][0] * i + A[q][1] * j + A[q][2] * k + A[q][3] - c[q];
                    d2 += x * x;
                }
                if (d2 <= R * R && (!mask || mask[VOX(i, j, k)] != 0)) {
                    n++;
                    s += amp(i, j, k);
                }
            }
    *amp_mean = n ? s / n : 0;
    return n;
}

static void sphere_case(const char *bold, double A[4][4], const double c[3], double R,
                        const char *mask_path, const double *mask)
{
    io_extract_opts o;
    io_extract_result r;
    dcm_error err;
    opts_init(&o, bold);
    o.sphere = 1;
    memcpy(o.centre, c, sizeof o.centre);
    o.radius = R;
    o.mask = mask_path;
    o.summary = IO_SUMMARY_MEAN;
    double am;
    int n = expected_sphere(A, c, R, mask, &am);
    int rc = io_extract_run(&o, &r, &err);
    if (rc)
        printf("\n  %s", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    /* every voxel is 100 + amp * s_A: the mean is mean(amp) * s_A (demeaned) */
    double s[NV], e = 0;
    adjusted_sig_a(s, 1);
    for (int t = 0; t < NV; t++)
        e = fmax(e, fabs(r.y[t] - am * s[t]));
    printf("\n  sphere (%.1f, %.1f, %.1f) r %.1f%s: %d voxels (expected %d), mean amplitude error %.2e",
           c[0], c[1], c[2], R, mask_path ? " within the mask" : "", r.nvox, n, e);
    CU_ASSERT_EQUAL(r.nvox, n);
    CU_ASSERT(e < 1e-9);
    for (int q = 0; q < 3; q++)
        CU_ASSERT_DOUBLE_EQUAL(r.centre_mm[q], c[q], 1e-12);
    io_extract_result_free(&r);
}

static void test_sphere_world(void)
{
    double *bold = make_bold(0, 1);
    img_opts o = DEFAULT_IMG;   /* rotated sform + a different qform */
    write_img(tp("amp_sform.nii"), NV, bold, &o);
    o.sform = 0;                /* qform only */
    write_img(tp("amp_qform.nii"), NV, bold, &o);
    free(bold);
    double A[4][4], Q[4][4] = {{2, 0, 0, 5}, {0, 2.5, 0, -7}, {0, 0, 3, 11}, {0, 0, 0, 1}};
    make_sform(A);
    /* centre at the world position of voxel (5, 4, 3) plus an offset */
    double c[3];
    for (int q = 0; q < 3; q++)
        c[q] = A[q][0] * 5 + A[q][1] * 4 + A[q][2] * 3 + A[q][3] + 0.7;
    sphere_case(tp("amp_sform.nii"), A, c, 5.0, NULL, NULL);
    sphere_case(tp("amp_sform.nii"), A, c, 9.0, NULL, NULL);
    double cq[3] = {5 + 2 * 6, -7 + 2.5 * 5, 11 + 3 * 4};
    sphere_case(tp("amp_qform.nii"), Q, cq, 6.5, NULL, NULL);
    /* intersection with the mask of region A */
    double *mask = make_labels(0);
    img_opts m = DEFAULT_IMG;
    write_img(tp("mask_a.nii"), 1, mask, &m);
    double ca[3];
    for (int q = 0; q < 3; q++)
        ca[q] = A[q][0] * 2 + A[q][1] * 3 + A[q][2] * 2 + A[q][3];
    sphere_case(tp("amp_sform.nii"), A, ca, 4.0, tp("mask_a.nii"), mask);
    free(mask);
    /* a long --sphere argument is parsed whole (a 256-byte buffer used to
       cut "0...06" to "0...0", a radius of 0) */
    char arg[600], zeros[301], args[2048];
    memset(zeros, '0', 300);
    zeros[300] = '\0';
    snprintf(arg, sizeof arg, "%.6f,%.6f,%.6f,%s6", c[0], c[1], c[2], zeros);
    snprintf(args, sizeof args, "extract %s --sphere %s --summary mean --name S -o %s",
             tp("amp_sform.nii"), arg, tp("long_sphere"));
    int rc = run(args);
    printf("\n  --sphere of %zu characters: exit %d", strlen(arg), rc);
    CU_ASSERT_EQUAL(rc, 0);
    json_t *j = test_load_json(tp("long_sphere.json"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_object_get(json_object_get(j, "region"),
                                                             "sphere_radius_mm")), 6.0, 0);
    json_decref(j);
}

/* the same data in every format give the same series */
static void test_formats(void)
{
    const char *bolds[] = {"bold.nii", "bold_gz.nii.gz", "bold_n2.nii", "bold_an.hdr", "bold_i16.nii"};
    const char *masks[] = {"mask.nii", "mask_gz.nii.gz", "mask_n2.nii", "mask_an.hdr", "mask.nii"};
    const char *fmt[] = {"NIfTI-1", "NIfTI-1", "NIfTI-2", "ANALYZE 7.5", "NIfTI-1"};
    double ref[NV];
    for (int q = 0; q < 5; q++) {
        io_nifti img;
        dcm_error err;
        int orc = io_nifti_open(tp(bolds[q]), IO_NIFTI_4D, &img, &err);
        if (orc)
            printf("\n  %s", err.msg);
        CU_ASSERT_EQUAL_FATAL(orc, 0);
        if (strcmp(img.format, fmt[q]))
            printf("\n  %s: format %s, expected %s", bolds[q], img.format, fmt[q]);
        CU_ASSERT_STRING_EQUAL(img.format, fmt[q]);
        CU_ASSERT_EQUAL(img.nt, NV);
        CU_ASSERT_STRING_EQUAL(img.affine_source, q == 3 ? "voxel sizes" : "sform");
        io_nifti_close(&img);
        io_extract_opts o;
        io_extract_result r;
        opts_init(&o, tp(bolds[q]));
        o.mask = tp(masks[q]);
        int rc = io_extract_run(&o, &r, &err);
        if (rc)
            printf("\n  %s: %s", bolds[q], err.msg);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        if (q == 0)
            memcpy(ref, r.y, sizeof ref);
        double e = 0;
        for (int t = 0; t < NV; t++)
            e = fmax(e, fabs(r.y[t] - ref[t]));
        /* float32 and int16 (slope 0.001) storage round the data */
        double tol = q == 3 ? 1e-4 : q == 4 ? 2e-3 : 1e-12;
        printf("\n  %-15s %-12s %d voxels, max |y - NIfTI-1 float64| = %.2e", bolds[q], fmt[q],
               r.nvox, e);
        CU_ASSERT(e <= tol);
        io_extract_result_free(&r);
    }
}

/* fMRIPrep-style confounds: named columns, n/a in derivatives */
static void test_confounds(void)
{
    double *bold = make_bold(1, 0);
    img_opts o = DEFAULT_IMG;
    write_img(tp("bold_conf.nii"), NV, bold, &o);
    free(bold);
    FILE *f = fopen(tp("conf.tsv"), "w");
    fprintf(f, "global_signal\ttrans_x\ttrans_x_derivative1\tcsf\n");
    for (int t = 0; t < NV; t++) {
        if (t == 0)
            fprintf(f, "%.17g\t%.17g\tn/a\t%.17g\n", 1.0 + 0.1 * t, conf_c(t), cos(0.3 * t));
        else
            fprintf(f, "%.17g\t%.17g\t%.17g\t%.17g\n", 1.0 + 0.1 * t, conf_c(t),
                    conf_c(t) - conf_c(t - 1), cos(0.3 * t));
    }
    fclose(f);
    io_extract_opts e;
    io_extract_result r;
    dcm_error err;
    opts_init(&e, tp("bold_conf.nii"));
    e.mask = tp("mask.nii");
    e.confounds = tp("conf.tsv");
    char *cols[] = {"trans_x", "trans_x_derivative1"};
    e.columns = cols;
    e.ncolumns = 2;
    int rc = io_extract_run(&e, &r, &err);
    if (rc)
        printf("\n  %s", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(r.nx0, 3);
    CU_ASSERT_STRING_EQUAL(r.x0_names[1], "trans_x");
    /* n/a: the mean of the other rows */
    double mu = 0;
    for (int t = 1; t < NV; t++)
        mu += (conf_c(t) - conf_c(t - 1)) / (NV - 1);
    CU_ASSERT_DOUBLE_EQUAL(r.X0[2 * NV], mu, 1e-12);
    /* the confound is gone: s_A with [1, c, dc] regressed out */
    double s[NV];
    for (int t = 0; t < NV; t++)
        s[t] = sig_a(t);
    residual(r.X0, 3, s, NV);
    double err_c = rank_one_error(r.y, s, wnorm_a(), 18, NV);
    printf("\n  confounds trans_x, trans_x_derivative1 regressed out: rel. error %.2e", err_c);
    CU_ASSERT(err_c < 1e-9);
    io_extract_result_free(&r);
    /* without them the confound leaks in */
    e.confounds = NULL;
    e.ncolumns = 0;
    CU_ASSERT_EQUAL_FATAL(io_extract_run(&e, &r, &err), 0);
    CU_ASSERT(rank_one_error(r.y, s, wnorm_a(), 18, NV) > 1e-3);
    io_extract_result_free(&r);
}

/* TR and slice timing from a BIDS sidecar and the header */
static void test_tr_and_slice_timing(void)
{
    io_extract_opts o;
    io_extract_result r;
    dcm_error err;
    double *bold = make_bold(0, 0);
    img_opts ms = DEFAULT_IMG;
    ms.tr = 2000.0;
    ms.time_units = NIFTI_UNITS_MSEC;
    write_img(tp("bold_ms.nii"), NV, bold, &ms);
    free(bold);
    opts_init(&o, tp("bold_ms.nii"));
    o.mask = tp("mask.nii");
    CU_ASSERT_EQUAL_FATAL(io_extract_run(&o, &r, &err), 0);
    CU_ASSERT_DOUBLE_EQUAL(r.tr, 2.0, 1e-12);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.tr_source, "header"));
    io_extract_result_free(&r);
    /* sidecar: interleaved slice times; region A's centre is slice 2.5 -> 3 (round half away) */
    char text[2048], *p = text;
    p += sprintf(p, "{\"RepetitionTime\": 2.0, \"SliceTiming\": [");
    for (int k = 0; k < NZ; k++)
        p += sprintf(p, "%s%.4f", k ? ", " : "", (k % 2 ? (NZ / 2 + k / 2) : k / 2) * 2.0 / NZ);
    sprintf(p, "]}\n");
    write_file("bold_ms.json", text);
    o.slice_timing = 1;
    CU_ASSERT_EQUAL_FATAL(io_extract_run(&o, &r, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.tr_source, "sidecar"));
    CU_ASSERT_EQUAL(r.have_delay, 1);
    CU_ASSERT_EQUAL(r.slice, 3);
    CU_ASSERT_DOUBLE_EQUAL(r.delay, (NZ / 2 + 1) * 2.0 / NZ, 1e-9);
    printf("\n  TR %g s (%s); centre slice %d acquired at %.3f s", r.tr, r.tr_source, r.slice, r.delay);
    io_extract_result_free(&r);
    /* --tr wins, and a disagreeing header is reported */
    o.tr = 2.5;
    o.slice_timing = 0;
    CU_ASSERT_EQUAL_FATAL(io_extract_run(&o, &r, &err), 0);
    CU_ASSERT_DOUBLE_EQUAL(r.tr, 2.5, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.warning, "differs"));
    io_extract_result_free(&r);
}

/* ---- the command ---- */

static void test_cli_outputs(void)
{
    char args[4096];
    snprintf(args, sizeof args, "extract %s --mask %s --name V1 --hpf 128 -o %s", tp("bold.nii"),
             tp("mask.nii"), tp("out_v1"));
    int rc = run(args);
    printf("\n  %s", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    io_table t;
    dcm_error err;
    CU_ASSERT_EQUAL_FATAL(io_tsv_read(tp("out_v1.tsv"), &t, &err), 0);
    CU_ASSERT_EQUAL(t.rows, NV);
    CU_ASSERT_EQUAL(t.cols, 1);
    CU_ASSERT(t.names && strcmp(t.names[0], "V1") == 0);
    io_table_free(&t);
    CU_ASSERT_EQUAL_FATAL(io_tsv_read(tp("out_v1_confounds.tsv"), &t, &err), 0);
    CU_ASSERT_EQUAL(t.rows, NV);
    CU_ASSERT_EQUAL(t.cols, 3);
    CU_ASSERT(t.names && strcmp(t.names[0], "constant") == 0);
    io_table_free(&t);
    json_t *j = test_load_json(tp("out_v1.json"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "voxels")), 18);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "centre_mm")), 3);
    CU_ASSERT(json_is_number(json_object_get(j, "variance_explained")));
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_object_get(j, "TR")), TR_S, 1e-12);
    json_decref(j);
    /* the outputs feed a spec directly */
    write_file("events_x.tsv", "onset\tduration\ttrial_type\n20\t20\tstim\n100\t20\tstim\n");
    write_file("spec_x.json",
               "{\"TR\": 2.0, \"TE\": 0.04, \"timeseries\": \"out_v1.tsv\", \"confounds\": "
               "\"out_v1_confounds.tsv\",\n \"regions\": [\"V1\"], \"events\": \"events_x.tsv\", "
               "\"inputs\": [\"stim\"], \"a\": [[1]], \"c\": [[1]], \"options\": {\"maxit\": 4}}\n");
    snprintf(args, sizeof args, "estimate -q %s -o %s", tp("spec_x.json"), tp("res_x.json"));
    rc = run(args);
    printf("  estimate on the extracted region: exit %d", rc);
    CU_ASSERT_EQUAL(rc, 0);
    /* slice timing through the command */
    write_file("bold.json", "{\"RepetitionTime\": 2.0, \"SliceTiming\": [0, 1, 0.25, 1.25, 0.5, 1.5, 0.75, 1.75]}");
    snprintf(args, sizeof args, "extract %s --atlas %s --label 2 --name B --slice-timing --summary mean -o %s",
             tp("bold.nii"), tp("atlas.nii"), tp("out_b"));
    rc = run(args);
    printf("\n  %s", out);
    CU_ASSERT_EQUAL(rc, 0);
    j = test_load_json(tp("out_b.json"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_object_get(j, "delay")), 1.5, 1e-12); /* slice 5 */
    json_decref(j);
    unlink(tp("bold.json"));
    CU_ASSERT_EQUAL(run("extract --help"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "example"));
}

/* ---- bad input: exit 2 (1 for usage), a clear message, no output ---- */

static void expect_fail(const char *args_tail, int code, const char *needle)
{
    char args[4096];
    snprintf(args, sizeof args, "extract %s --name R -o %s", args_tail, tp("bad_out"));
    int rc = run(args);
    printf("\n  exit %d: %s", rc, out);
    CU_ASSERT_EQUAL(rc, code);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, needle));
    CU_ASSERT_EQUAL(count_with_prefix("bad_out"), 0);
}

static void copy_prefix(const char *from, const char *to, long bytes)
{
    FILE *f = fopen(tp(from), "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n);
    size_t k = fread(buf, 1, n, f);
    fclose(f);
    f = fopen(tp(to), "wb");
    fwrite(buf, 1, bytes < 0 ? (long)k + bytes : bytes, f);
    fclose(f);
    free(buf);
}

static void test_bad_truncated(void)
{
    char a[2048];
    copy_prefix("bold.nii", "trunc.nii", -1000);
    snprintf(a, sizeof a, "%s --mask %s", tp("trunc.nii"), tp("mask.nii"));
    expect_fail(a, 2, "truncated");
    copy_prefix("bold.nii", "trunc_hdr.nii", 200);
    snprintf(a, sizeof a, "%s --mask %s", tp("trunc_hdr.nii"), tp("mask.nii"));
    expect_fail(a, 2, "trunc_hdr.nii");
    copy_prefix("bold_gz.nii.gz", "trunc.nii.gz", 3000);
    snprintf(a, sizeof a, "%s --mask %s", tp("trunc.nii.gz"), tp("mask.nii"));
    expect_fail(a, 2, "trunc.nii.gz");
    /* a corrupt deflate stream (bytes overwritten in the middle) */
    copy_prefix("bold_gz.nii.gz", "corrupt.nii.gz", -1);
    FILE *g = fopen(tp("corrupt.nii.gz"), "r+b");
    fseek(g, 0, SEEK_END);
    long len = ftell(g);
    fseek(g, len / 2, SEEK_SET);
    for (int i = 0; i < 64; i++)
        fputc(0xA5 ^ i, g);
    fclose(g);
    snprintf(a, sizeof a, "%s --mask %s", tp("corrupt.nii.gz"), tp("mask.nii"));
    expect_fail(a, 2, "corrupt.nii.gz");
    CU_ASSERT(strstr(out, "corrupt compressed data") || strstr(out, "truncated"));
}

static void test_bad_corrupt(void)
{
    char a[2048];
    FILE *f = fopen(tp("corrupt.nii"), "wb");
    for (int i = 0; i < 5000; i++)
        fputc((i * 7919) & 0xFF, f);
    fclose(f);
    snprintf(a, sizeof a, "%s --mask %s", tp("corrupt.nii"), tp("mask.nii"));
    expect_fail(a, 2, "not a readable NIfTI");
    /* a valid header claiming an unsupported data type (complex) */
    int64_t dims[8] = {4, NX, NY, NZ, 2, 1, 1, 1};
    nifti_image *nim = nifti_make_new_nim(dims, DT_COMPLEX64, 1);
    nim->pixdim[4] = nim->dt = 2.0;
    nim->nifti_type = NIFTI_FTYPE_NIFTI1_1;
    nifti_set_filenames(nim, tp("cplx.nii"), 0, 1);
    nifti_image_write(nim);
    nifti_image_free(nim);
    snprintf(a, sizeof a, "%s --mask %s", tp("cplx.nii"), tp("mask.nii"));
    expect_fail(a, 2, "not supported");
}

static void test_bad_3d_bold(void)
{
    char a[2048];
    snprintf(a, sizeof a, "%s --mask %s", tp("mask.nii"), tp("mask.nii"));
    expect_fail(a, 2, "single volume");
    snprintf(a, sizeof a, "%s --mask %s", tp("bold.nii"), tp("bold.nii"));
    expect_fail(a, 2, "a 3D volume is needed");
}

static void test_bad_grid(void)
{
    char a[2048];
    /* the ANALYZE mask has no sform: same dimensions, other affine */
    snprintf(a, sizeof a, "%s --mask %s", tp("bold.nii"), tp("mask_an.hdr"));
    expect_fail(a, 2, "not on the grid");
    /* other dimensions */
    int64_t dims[8] = {3, NX + 1, NY, NZ, 1, 1, 1, 1};
    nifti_image *nim = nifti_make_new_nim(dims, DT_UINT8, 1);
    nim->nifti_type = NIFTI_FTYPE_NIFTI1_1;
    nifti_set_filenames(nim, tp("mask_big.nii"), 0, 1);
    nifti_image_write(nim);
    nifti_image_free(nim);
    snprintf(a, sizeof a, "%s --mask %s", tp("bold.nii"), tp("mask_big.nii"));
    expect_fail(a, 2, "dimensions");
}

static void test_bad_empty_region(void)
{
    char a[2048];
    double *zero = calloc(NVOX3, sizeof(double));
    img_opts o = DEFAULT_IMG;
    write_img(tp("mask_empty.nii"), 1, zero, &o);
    free(zero);
    snprintf(a, sizeof a, "%s --mask %s", tp("bold.nii"), tp("mask_empty.nii"));
    expect_fail(a, 2, "empty region");
    snprintf(a, sizeof a, "%s --atlas %s --label 9", tp("bold.nii"), tp("atlas.nii"));
    expect_fail(a, 2, "no voxel has label 9");
    /* a sphere inside the image that misses the mask */
    double A[4][4], c[3];
    make_sform(A);
    for (int q = 0; q < 3; q++)
        c[q] = A[q][0] * 10 + A[q][1] * 8 + A[q][2] * 6 + A[q][3];
    snprintf(a, sizeof a, "%s --mask %s --sphere %.6f,%.6f,%.6f,2", tp("bold.nii"), tp("mask.nii"),
             c[0], c[1], c[2]);
    expect_fail(a, 2, "do not overlap");
}

static void test_bad_sphere_outside(void)
{
    char a[2048];
    snprintf(a, sizeof a, "%s --sphere 500,500,500,6", tp("bold.nii"));
    expect_fail(a, 2, "outside the image");
}

static void test_bad_other(void)
{
    char a[2048];
    snprintf(a, sizeof a, "%s --mask %s --confounds %s --columns trans_q", tp("bold.nii"),
             tp("mask.nii"), tp("conf.tsv"));
    expect_fail(a, 2, "no column \"trans_q\"");
    write_file("short_conf.tsv", "trans_x\n1\n2\n");
    snprintf(a, sizeof a, "%s --mask %s --confounds %s --columns trans_x", tp("bold.nii"),
             tp("mask.nii"), tp("short_conf.tsv"));
    expect_fail(a, 2, "one row per scan");
    /* no TR anywhere */
    double *bold = make_bold(0, 0);
    img_opts o = DEFAULT_IMG;
    o.tr = 0;
    write_img(tp("bold_notr.nii"), NV, bold, &o);
    free(bold);
    snprintf(a, sizeof a, "%s --mask %s", tp("bold_notr.nii"), tp("mask.nii"));
    expect_fail(a, 2, "--tr");
    snprintf(a, sizeof a, "%s --mask %s --slice-timing", tp("bold.nii"), tp("mask.nii"));
    expect_fail(a, 2, "SliceTiming");
    /* usage errors: exit 1 */
    snprintf(a, sizeof a, "%s", tp("bold.nii"));
    expect_fail(a, 1, "no region");
    snprintf(a, sizeof a, "%s --sphere 1,2,3", tp("bold.nii"));
    expect_fail(a, 1, "--sphere");
    snprintf(a, sizeof a, "%s --atlas %s", tp("bold.nii"), tp("atlas.nii"));
    expect_fail(a, 1, "--label");
    snprintf(a, sizeof a, "%s --mask %s --confounds %s", tp("bold.nii"), tp("mask.nii"), tp("conf.tsv"));
    expect_fail(a, 1, "--columns");
    snprintf(a, sizeof a, "%s --mask %s", tp("absent.nii"), tp("mask.nii"));
    expect_fail(a, 2, "absent.nii");
    /* --name follows the spec's rule for region names (a trailing space
       or ':' was written into the TSV header, then refused by estimate) */
    const char *names[] = {"'R '", "' R'", "A:B", "'R->S'", "R,S"};
    const char *why[] = {"white space", "white space", "may not contain ':'", "\"->\"", "commas"};
    for (int k = 0; k < 5; k++) {
        snprintf(a, sizeof a, "extract %s --mask %s --name %s -o %s", tp("bold.nii"), tp("mask.nii"),
                 names[k], tp("bad_out"));
        CU_ASSERT_EQUAL(run(a), 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, why[k]));
        CU_ASSERT_EQUAL(count_with_prefix("bad_out"), 0);
    }
}

static void test_bad_sidecar(void)
{
    char a[2048];
    double *bold = make_bold(0, 0);
    img_opts o = DEFAULT_IMG;
    write_img(tp("bold_side.nii"), NV, bold, &o);
    free(bold);
    write_file("bold_side.json", "{\"RepetitionTime\": 2.0,");
    snprintf(a, sizeof a, "%s --mask %s", tp("bold_side.nii"), tp("mask.nii"));
    expect_fail(a, 2, "bold_side.json:");
    write_file("bold_side.json", "{\"RepetitionTime\": \"2 s\"}");
    expect_fail(a, 2, "RepetitionTime");
}

/* ---- issue 9: the eigensolver, non-finite voxels, headers, limits ---- */

/* `dcm extract ARGS --name R -o bad_out` under a time limit (a FIFO must
 * not hang it): exit code, message, and no output or temporary file. */
static void expect_fail_timed(const char *args_tail, int code, const char *needle,
                              const char *absent)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "timeout 60 %s extract %s --name R -o %s", test_dcm_bin(), args_tail,
             tp("bad_out"));
    int rc = test_shell(cmd, out, sizeof out);
    printf("\n  exit %d: %s", rc, out);
    CU_ASSERT_EQUAL(rc, code);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, needle));
    if (absent)
        CU_ASSERT_PTR_NULL(strstr(out, absent));
    CU_ASSERT_PTR_NULL(strstr(out, "runtime error"));
    CU_ASSERT_PTR_NULL(strstr(out, "AddressSanitizer"));
    CU_ASSERT_EQUAL(count_with_prefix("bad_out"), 0);
    CU_ASSERT(test_no_temp_files(tmpdir));
}

/* overwrite n bytes of a file at offset */
static void patch_file(const char *name, long offset, const void *bytes, size_t n)
{
    FILE *f = fopen(tp(name), "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, offset, SEEK_SET);
    fwrite(bytes, 1, n, f);
    fclose(f);
}

static void copy_file(const char *from, const char *to)
{
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(tp(from), &st), 0);
    copy_prefix(from, to, (long)st.st_size);
}

/* region A (18 voxels) replaced by the series f(c, t) of its c-th voxel */
static void write_region_a(const char *name, double (*f)(int c, int t), int datatype)
{
    double *bold = make_bold(0, 0);
    for (int t = 0; t < NV; t++) {
        int c = 0;
        for (int k = 0; k < NZ; k++)
            for (int j = 0; j < NY; j++)
                for (int i = 0; i < NX; i++)
                    if (in_a(i, j, k))
                        bold[VOX(i, j, k) + (size_t)NVOX3 * t] = f(c++, t);
    }
    img_opts o = DEFAULT_IMG;
    o.datatype = datatype;
    write_img(tp(name), NV, bold, &o);
    free(bold);
}

/* 18 zero-mean, mutually orthogonal series of equal norm: cosines and
   sines of 9 distinct whole frequencies over the 80 scans */
static double orth_series(int c, int t)
{
    int f = c / 2 + 1;
    return 100.0 + (c % 2 ? sin(2 * M_PI * f * t / NV) : cos(2 * M_PI * f * t / NV));
}
static double const_series(int c, int t) { (void)t; return 100.0 + 0 * c; }
static double zero_series(int c, int t) { (void)c; (void)t; return 0.0; }
static double half_const_series(int c, int t)
{
    int i = c % 3;   /* the first of every three voxels is constant */
    return i == 0 ? 250.0 : 100.0 + (1.0 + c) * sig_a(t);
}

/* Tied top eigenvalues: dsyevr may return every tied eigenpair, which
 * overran the single double given as W. Both of SPM's branches (more
 * scans than voxels and the reverse), many ties, and all zeros. */
static void test_eigen_ties(void)
{
    dcm_error err;
    int shapes[][2] = {{32, 24}, {64, 24}, {16, 48}, {8, 200}, {200, 30}};
    for (size_t q = 0; q < sizeof shapes / sizeof *shapes; q++) {
        int v = shapes[q][0], n = shapes[q][1];
        double *y = calloc((size_t)v * n, sizeof(double)), u[256], w[256];
        if (v > n) {   /* orthogonal zero-mean columns of equal norm */
            for (int c = 0; c < n; c++)
                for (int t = 0; t < v; t++)
                    y[t + (size_t)c * v] = c % 2 ? sin(2 * M_PI * (c / 2 + 1) * t / v)
                                                 : cos(2 * M_PI * (c / 2 + 1) * t / v);
        } else {       /* each voxel an impulse: y y' = (n / v) I */
            for (int c = 0; c < n; c++)
                y[c % v + (size_t)c * v] = 1.0;
        }
        int rc = io_eigenvariate(y, v, n, u, w, NULL, &err);
        printf("\n  %d scans x %d voxels, all eigenvalues tied: exit %d: %s", v, n, rc,
               rc ? err.msg : "");
        CU_ASSERT_EQUAL(rc, DCM_ERR_INPUT);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no single principal component"));
        /* all zeros: no variance */
        memset(y, 0, sizeof(double) * (size_t)v * n);
        CU_ASSERT_EQUAL(io_eigenvariate(y, v, n, u, w, NULL, &err), DCM_ERR_INPUT);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no variance"));
        /* a clear winner among tied runners-up is fine: boost voxel 0 */
        if (v > n) {
            for (int c = 0; c < n; c++)
                for (int t = 0; t < v; t++)
                    y[t + (size_t)c * v] = (c == 0 ? 3.0 : 1.0) *
                                           (c % 2 ? sin(2 * M_PI * (c / 2 + 1) * t / v)
                                                  : cos(2 * M_PI * (c / 2 + 1) * t / v));
            double expl;
            CU_ASSERT_EQUAL(io_eigenvariate(y, v, n, u, w, &expl, &err), 0);
            /* s1 = 9 v / 2: u = voxel 0's unit series * sqrt(s1 / n)
               = cos(2 pi t / v) * 3 / sqrt(n) */
            double e = 0;
            for (int t = 0; t < v; t++)
                e = fmax(e, fabs(u[t] - 3.0 * cos(2 * M_PI * t / v) / sqrt(n)));
            CU_ASSERT(e < 1e-10);
            CU_ASSERT_DOUBLE_EQUAL(expl, 9.0 / (9.0 + (n - 1)), 1e-12);
        }
        free(y);
    }
    /* mostly zero voxels (the region nifticlib used to make of NaNs): two
       equal orthogonal voxels among 38 zero ones tie; three unequal do not */
    {
        const int v = 80, n = 40;
        double *y = calloc((size_t)v * n, sizeof(double)), u[80], w[40];
        for (int t = 0; t < v; t++) {
            y[t + 5 * v] = cos(2 * M_PI * 3 * t / v);
            y[t + 17 * v] = sin(2 * M_PI * 3 * t / v);
        }
        CU_ASSERT_EQUAL(io_eigenvariate(y, v, n, u, w, NULL, &err), DCM_ERR_INPUT);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no single principal component"));
        for (int t = 0; t < v; t++)
            y[t + 30 * v] = 2.0 * cos(2 * M_PI * 5 * t / v);
        double expl;
        CU_ASSERT_EQUAL(io_eigenvariate(y, v, n, u, w, &expl, &err), 0);
        /* voxel 30 wins: s1 = 4 v / 2 of a total 6 v / 2; weight 1 on it;
           u = y w / sqrt(s1) * sqrt(s1 / n) = its series / sqrt(n) */
        CU_ASSERT_DOUBLE_EQUAL(expl, 4.0 / 6.0, 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(w[30], 1.0, 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(u[0], 2.0 / sqrt((double)n), 1e-12);
        free(y);
    }
    /* through the command: a region of orthogonal voxels, and an all-zero one */
    char a[2048];
    write_region_a("bold_orth.nii", orth_series, DT_FLOAT64);
    snprintf(a, sizeof a, "%s --mask %s --no-hpf", tp("bold_orth.nii"), tp("mask.nii"));
    expect_fail_timed(a, 2, "no single principal component", NULL);
    /* the mean is defined: it works */
    snprintf(a, sizeof a, "extract %s --mask %s --no-hpf --summary mean --name O -o %s",
             tp("bold_orth.nii"), tp("mask.nii"), tp("orth_mean"));
    CU_ASSERT_EQUAL(run(a), 0);
    write_region_a("bold_zero.nii", zero_series, DT_FLOAT32);
    snprintf(a, sizeof a, "%s --mask %s", tp("bold_zero.nii"), tp("mask.nii"));
    expect_fail_timed(a, 2, "constant", NULL);
}

/* a region whose voxels are constant (to rounding) is refused, with either
 * summary, rather than "explaining 100 %" of rounding noise */
static void test_constant_region(void)
{
    char a[2048];
    write_region_a("bold_const.nii", const_series, DT_FLOAT64);
    snprintf(a, sizeof a, "%s --mask %s", tp("bold_const.nii"), tp("mask.nii"));
    expect_fail_timed(a, 2, "constant", "100");
    snprintf(a, sizeof a, "%s --mask %s --summary mean --hpf 128", tp("bold_const.nii"),
             tp("mask.nii"));
    expect_fail_timed(a, 2, "only rounding noise", NULL);
    /* a third of the voxels constant: extracted, with a warning */
    write_region_a("bold_half.nii", half_const_series, DT_FLOAT64);
    io_extract_opts o;
    io_extract_result r;
    dcm_error err;
    opts_init(&o, tp("bold_half.nii"));
    o.mask = tp("mask.nii");
    CU_ASSERT_EQUAL_FATAL(io_extract_run(&o, &r, &err), 0);
    printf("\n  warning: %s", r.warning);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.warning, "6 of the region's 18 voxels are constant"));
    CU_ASSERT_EQUAL(r.nvox, 18);
    io_extract_result_free(&r);
    /* huge and tiny values: scaled, not overflowed */
    double big_scale[] = {1e200, 1e-200};
    for (int q = 0; q < 2; q++) {
        double *bold = make_bold(0, 0);
        for (size_t k = 0; k < (size_t)NVOX3 * NV; k++)
            bold[k] *= big_scale[q];
        img_opts io = DEFAULT_IMG;
        write_img(tp("bold_scaled.nii"), NV, bold, &io);
        free(bold);
        opts_init(&o, tp("bold_scaled.nii"));
        o.mask = tp("mask.nii");
        int rc = io_extract_run(&o, &r, &err);
        if (rc)
            printf("\n  %s", err.msg);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        double s[NV];
        adjusted_sig_a(s, 1);
        for (int t = 0; t < NV; t++)
            s[t] *= big_scale[q];
        double e = rank_one_error(r.y, s, wnorm_a(), 18, NV);
        printf("\n  data x %g: rel. error %.2e, explained %.6f", big_scale[q], e, r.explained);
        CU_ASSERT(e < 1e-10);
        CU_ASSERT_DOUBLE_EQUAL(r.explained, 1.0, 1e-10);
        io_extract_result_free(&r);
    }
}

/* NaN and Inf voxels are left out, counted and warned about (nifticlib
 * turned them into zeros, which then entered the region) */
static void test_nonfinite_voxels(void)
{
    double *bold = make_bold(0, 0);
    /* 3 voxels of region A with a NaN (float32 and float64), one with Inf */
    const int bad[4][4] = {{2, 3, 2, 5}, {4, 5, 3, 0}, {3, 4, 2, 79}, {2, 5, 3, 40}};
    for (int q = 0; q < 4; q++)
        bold[VOX(bad[q][0], bad[q][1], bad[q][2]) + (size_t)NVOX3 * bad[q][3]] =
            q == 3 ? INFINITY : NAN;
    img_opts o = DEFAULT_IMG;
    write_img(tp("bold_nan.nii"), NV, bold, &o);
    o.datatype = DT_FLOAT32;
    write_img(tp("bold_nan32.nii.gz"), NV, bold, &o);
    free(bold);
    double w2 = 0;
    for (int k = 0; k < NZ; k++)
        for (int j = 0; j < NY; j++)
            for (int i = 0; i < NX; i++) {
                int isbad = 0;
                for (int q = 0; q < 4; q++)
                    isbad |= i == bad[q][0] && j == bad[q][1] && k == bad[q][2];
                if (in_a(i, j, k) && !isbad)
                    w2 += w_a(i, j, k) * w_a(i, j, k);
            }
    const char *names[] = {"bold_nan.nii", "bold_nan32.nii.gz"};
    for (int q = 0; q < 2; q++) {
        io_nifti img;
        dcm_error err;
        CU_ASSERT_EQUAL_FATAL(io_nifti_open(tp(names[q]), IO_NIFTI_4D, &img, &err), 0);
        CU_ASSERT(isnan(io_nifti_value(&img, VOX(2, 3, 2), 5)));
        CU_ASSERT(isinf(io_nifti_value(&img, VOX(2, 5, 3), 40)));
        io_nifti_close(&img);
        io_extract_opts e;
        io_extract_result r;
        opts_init(&e, tp(names[q]));
        e.mask = tp("mask.nii");
        CU_ASSERT_EQUAL_FATAL(io_extract_run(&e, &r, &err), 0);
        double s[NV];
        adjusted_sig_a(s, 1);
        double er = rank_one_error(r.y, s, sqrt(w2), 14, NV);
        printf("\n  %s: %d voxels, %d left out, rel. error %.2e; warning: %s", names[q], r.nvox,
               r.excluded, er, r.warning);
        CU_ASSERT_EQUAL(r.nvox, 14);
        CU_ASSERT_EQUAL(r.excluded, 4);
        CU_ASSERT(er < (q ? 1e-5 : 1e-10));
        CU_ASSERT_PTR_NOT_NULL(strstr(r.warning, "4 of the region's 18 voxels were left out"));
        io_extract_result_free(&r);
    }
    char a[2048];
    snprintf(a, sizeof a, "extract %s --mask %s --name A -o %s", tp("bold_nan.nii"),
             tp("mask.nii"), tp("out_nan"));
    int rc = run(a);
    printf("\n  %s", out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "warning: 4 of the region's 18 voxels were left out"));
    json_t *j = test_load_json(tp("out_nan.json"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "voxels")), 14);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "voxels_excluded_nonfinite")), 4);
    json_decref(j);
}

/* vox_offset and scl_slope/scl_inter are checked on the raw header */
static void test_bad_header_fields(void)
{
    char a[2048];
    /* NIfTI-1: vox_offset is a float at byte 108, scl_slope 112, scl_inter 116 */
    const float offs[] = {0.0f, 100.0f, 348.0f, 352.5f, NAN, -16.0f, 2e9f};
    const char *why[] = {"inside the 348-byte header", "inside the 348-byte header",
                         "inside the 348-byte header", "not a whole number", "not a whole number",
                         "negative", "header extensions"};
    for (size_t q = 0; q < sizeof offs / sizeof *offs; q++) {
        copy_file("bold.nii", "bold_off.nii");
        patch_file("bold_off.nii", 108, &offs[q], 4);
        snprintf(a, sizeof a, "%s --mask %s", tp("bold_off.nii"), tp("mask.nii"));
        expect_fail_timed(a, 2, why[q], NULL);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "vox_offset"));
    }
    /* NIfTI-2: vox_offset is an int64 at byte 168 */
    int64_t off2 = 540;
    copy_file("bold_n2.nii", "bold_off2.nii");
    patch_file("bold_off2.nii", 168, &off2, 8);
    snprintf(a, sizeof a, "%s --mask %s", tp("bold_off2.nii"), tp("mask_n2.nii"));
    expect_fail_timed(a, 2, "inside the 540-byte header", NULL);
    /* scaling */
    const float slopes[][2] = {{NAN, 0}, {INFINITY, 0}, {-INFINITY, 0}, {0.001f, NAN},
                               {0.001f, INFINITY}};
    for (size_t q = 0; q < sizeof slopes / sizeof *slopes; q++) {
        copy_file("bold_i16.nii", "bold_slope.nii");
        patch_file("bold_slope.nii", 112, slopes[q], 8);
        snprintf(a, sizeof a, "%s --mask %s", tp("bold_slope.nii"), tp("mask.nii"));
        expect_fail_timed(a, 2, q < 3 ? "scl_slope is" : "scl_inter is", NULL);
    }
    /* a zero slope means unscaled (NIfTI), which is accepted */
    const float zero[2] = {0, 7};
    copy_file("bold_i16.nii", "bold_slope0.nii");
    patch_file("bold_slope0.nii", 112, zero, 8);
    io_nifti img;
    dcm_error err;
    CU_ASSERT_EQUAL_FATAL(io_nifti_open(tp("bold_slope0.nii"), IO_NIFTI_4D, &img, &err), 0);
    io_nifti_close(&img);
    /* negative, NaN and zero pixdim[4] (byte 92) without another TR */
    const float dts[] = {-2.0f, NAN, 0.0f};
    const char *dmsg[] = {"pixdim[4] is -2 (negative: not a repetition time)",
                          "pixdim[4] is not a number", "pixdim[4] is unset (0)"};
    for (int q = 0; q < 3; q++) {
        copy_file("bold.nii", "bold_dt.nii");
        patch_file("bold_dt.nii", 92, &dts[q], 4);
        snprintf(a, sizeof a, "%s --mask %s", tp("bold_dt.nii"), tp("mask.nii"));
        expect_fail_timed(a, 2, dmsg[q], q < 2 ? "unset" : NULL);
    }
}

/* growth of the peak resident memory (MB) of a child that opens path */
static long open_in_child_rss(const char *path, int *rc_out)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        struct rusage r0, r1;
        getrusage(RUSAGE_SELF, &r0);
        io_nifti img;
        dcm_error err;
        int rc = io_nifti_open(path, IO_NIFTI_4D, &img, &err);
        io_nifti_close(&img);
        getrusage(RUSAGE_SELF, &r1);
        long grow = (r1.ru_maxrss - r0.ru_maxrss) / 1024;
        if (write(fd[1], &grow, sizeof grow) != (ssize_t)sizeof grow)
            _exit(98);
        _exit(rc);
    }
    close(fd[1]);
    long grow = -1;
    if (read(fd[0], &grow, sizeof grow) != (ssize_t)sizeof grow)
        grow = -1;
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    *rc_out = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return grow;
}

/* A .nii.gz whose vox_offset leaves room for a 256 MB extension of zeros
 * (a 256 kB file): nifticlib would inflate the extension into memory. */
static void test_gzip_bomb(void)
{
    int64_t dims[8] = {4, 2, 2, 2, 3, 1, 1, 1};
    nifti_image *nim = nifti_make_new_nim(dims, DT_FLOAT32, 1);
    nifti_1_header h;
    nifti_convert_nim2n1hdr(nim, &h);
    const long ext = 256L << 20;
    h.vox_offset = (float)(352 + ext);
    h.pixdim[4] = 2.0f;
    memcpy(h.magic, "n+1\0", 4);
    gzFile g = gzopen(tp("bomb.nii.gz"), "wb6");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    gzwrite(g, &h, 348);
    char e[4] = {1, 0, 0, 0};
    gzwrite(g, e, 4);
    int32_t esize = (int32_t)ext, ecode = 6;
    gzwrite(g, &esize, 4);
    gzwrite(g, &ecode, 4);
    char *z = calloc(1 << 20, 1);
    for (long left = ext - 8; left > 0; left -= 1 << 20)
        gzwrite(g, z, (unsigned)(left > (1 << 20) ? (1 << 20) : left));
    free(z);
    gzwrite(g, nim->data, (unsigned)(nim->nbyper * nim->nvox));
    gzclose(g);
    nifti_image_free(nim);
    struct stat st;
    stat(tp("bomb.nii.gz"), &st);
    int rc;
    long mb = open_in_child_rss(tp("bomb.nii.gz"), &rc);
    printf("\n  %lld-byte .nii.gz claiming a %ld MB extension: exit %d, peak resident +%ld MB",
           (long long)st.st_size, ext >> 20, rc, mb);
    CU_ASSERT_EQUAL(rc, DCM_ERR_INPUT);
    CU_ASSERT(mb >= 0 && mb < 64);
    char a[2048];
    snprintf(a, sizeof a, "%s --sphere 0,0,0,5", tp("bomb.nii.gz"));
    expect_fail_timed(a, 2, "header extensions", NULL);
    /* a separate .hdr larger than a header with its extensions may be */
    copy_file("bold_an.hdr", "big_an.hdr");
    copy_file("bold_an.img", "big_an.img");
    FILE *f = fopen(tp("big_an.hdr"), "ab");
    char *pad = calloc(1 << 20, 1);
    for (int q = 0; q < 17; q++)
        fwrite(pad, 1, 1 << 20, f);
    fclose(f);
    free(pad);
    snprintf(a, sizeof a, "%s --mask %s", tp("big_an.hdr"), tp("mask_an.hdr"));
    expect_fail_timed(a, 2, "the header file has", NULL);
    unlink(tp("big_an.hdr"));
    unlink(tp("big_an.img"));
}

/* images, header/data files and sidecars must be regular files: a FIFO
 * used to block the reader for ever */
static void test_special_files(void)
{
    char a[2048];
    CU_ASSERT_EQUAL_FATAL(mkfifo(tp("fifo.nii"), 0600), 0);
    snprintf(a, sizeof a, "%s --mask %s", tp("fifo.nii"), tp("mask.nii"));
    /* the command's file plan (cli.c) refuses them before the reader
       is reached; io_nifti refuses them too for library callers */
    expect_fail_timed(a, 2, "fifo.nii is a FIFO (named pipe); inputs must be regular files", NULL);
    snprintf(a, sizeof a, "%s --atlas %s --label 1", tp("bold.nii"), tp("fifo.nii"));
    expect_fail_timed(a, 2, "--atlas /", NULL);
    expect_fail_timed(a, 2, "fifo.nii is a FIFO (named pipe)", NULL);
    snprintf(a, sizeof a, "%s --mask /dev/zero", tp("bold.nii"));
    expect_fail_timed(a, 2, "/dev/zero is a character device; inputs must be regular files", NULL);
    /* an ANALYZE pair whose .img is a FIFO */
    copy_file("bold_an.hdr", "pair_fifo.hdr");
    CU_ASSERT_EQUAL_FATAL(mkfifo(tp("pair_fifo.img"), 0600), 0);
    snprintf(a, sizeof a, "%s --mask %s", tp("pair_fifo.hdr"), tp("mask_an.hdr"));
    expect_fail_timed(a, 2, "ANALYZE pair", NULL);
    expect_fail_timed(a, 2, "pair_fifo.img is a FIFO", NULL);
    /* a sidecar that is a FIFO */
    copy_file("bold.nii", "bold_sfifo.nii");
    CU_ASSERT_EQUAL_FATAL(mkfifo(tp("bold_sfifo.json"), 0600), 0);
    snprintf(a, sizeof a, "%s --mask %s", tp("bold_sfifo.nii"), tp("mask.nii"));
    expect_fail_timed(a, 2, "sidecar", NULL);
    expect_fail_timed(a, 2, "bold_sfifo.json is a FIFO", NULL);
    unlink(tp("fifo.nii"));
    unlink(tp("pair_fifo.img"));
    unlink(tp("pair_fifo.hdr"));
    unlink(tp("bold_sfifo.json"));
}

/* an atlas we may not read is reported as such (with the reason), not as
 * "not a NIfTI"; as root the check runs in a child that drops to nobody */
static void test_unreadable_atlas(void)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/unreadable", tmpdir);
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0755), 0);
    chmod(tmpdir, 0755);
    char atlas[512];
    snprintf(atlas, sizeof atlas, "%s/atlas.nii", dir);
    copy_file("atlas.nii", "unreadable/atlas.nii");
    CU_ASSERT_EQUAL_FATAL(chmod(atlas, 0), 0);
    int fd[2];
    CU_ASSERT_EQUAL_FATAL(pipe(fd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        if (geteuid() == 0 && setuid(65534) != 0)
            _exit(99);
        io_nifti img;
        dcm_error err;
        int rc = io_nifti_open(atlas, IO_NIFTI_3D, &img, &err);
        io_nifti_close(&img);
        if (write(fd[1], err.msg, strlen(err.msg) + 1) < 0)
            _exit(98);
        _exit(rc);
    }
    close(fd[1]);
    char msg[1024] = "";
    ssize_t n = read(fd[0], msg, sizeof msg - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    printf("\n  unreadable atlas: exit %d: %s", WEXITSTATUS(st), msg);
    CU_ASSERT_EQUAL(WEXITSTATUS(st), DCM_ERR_INPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "cannot read"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "Permission denied"));
    CU_ASSERT_PTR_NULL(strstr(msg, "not a"));
    chmod(atlas, 0600);
    chmod(tmpdir, 0700);
}

/* more volumes than a run holds, or a high-pass basis too large to fit
 * (20001 volumes of one voxel: a 20001 x 626 confound matrix and its SVD,
 * over 5 minutes): refused;
 * and a sidecar beside a BOLD path longer than 1024 characters is found */
static void test_limits_and_long_paths(void)
{
    int64_t dims[8] = {4, 1, 1, 1, 20001, 1, 1, 1};
    nifti_image *nim = nifti_make_new_nim(dims, DT_FLOAT32, 1);
    for (int t = 0; t < 20001; t++)
        ((float *)nim->data)[t] = (float)(100 + sin(0.1 * t));
    nim->pixdim[4] = nim->dt = 2.0f;
    nim->time_units = NIFTI_UNITS_SEC;
    nim->nifti_type = NIFTI_FTYPE_NIFTI1_1;
    nifti_set_filenames(nim, tp("long_run.nii"), 0, 1);
    nifti_image_write(nim);
    nifti_image_free(nim);
    char a[2048];
    snprintf(a, sizeof a, "%s --sphere 0,0,0,5", tp("long_run.nii"));
    expect_fail_timed(a, 2, "626 confound columns (constant, 625 high-pass for 20001 scans", NULL);
    /* without the high-pass basis it is quick */
    snprintf(a, sizeof a, "extract %s --sphere 0,0,0,5 --no-hpf --name L -o %s",
             tp("long_run.nii"), tp("long_run_out"));
    CU_ASSERT_EQUAL(run(a), 0);
    dims[4] = 100001;
    nim = nifti_make_new_nim(dims, DT_UINT8, 1);
    nim->pixdim[4] = nim->dt = 2.0f;
    nim->nifti_type = NIFTI_FTYPE_NIFTI1_1;
    nifti_set_filenames(nim, tp("longer_run.nii"), 0, 1);
    nifti_image_write(nim);
    nifti_image_free(nim);
    snprintf(a, sizeof a, "%s --sphere 0,0,0,5 --no-hpf", tp("longer_run.nii"));
    expect_fail_timed(a, 2, "100001 volumes; at most 100000", NULL);
    /* five nested folders of 240 characters */
    char path[2048], comp[241];
    memset(comp, 'd', 240);
    comp[240] = '\0';
    snprintf(path, sizeof path, "%s", tmpdir);
    for (int q = 0; q < 5; q++) {
        size_t l = strlen(path);
        snprintf(path + l, sizeof path - l, "/%s", comp);
        CU_ASSERT_EQUAL_FATAL(mkdir(path, 0700), 0);
    }
    char bold[2100], side[2100];
    snprintf(bold, sizeof bold, "%s/bold.nii", path);
    snprintf(side, sizeof side, "%s/bold.json", path);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && printf '{\"RepetitionTime\": 2.5}' > '%s'",
             tp("bold.nii"), bold, side);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    io_extract_opts o;
    io_extract_result r;
    dcm_error err;
    opts_init(&o, bold);
    o.mask = tp("mask.nii");
    CU_ASSERT_EQUAL_FATAL(io_extract_run(&o, &r, &err), 0);
    printf("\n  BOLD path of %zu characters: TR %g s from %s", strlen(bold), r.tr, r.tr_source);
    CU_ASSERT_DOUBLE_EQUAL(r.tr, 2.5, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.sidecar);
    CU_ASSERT_STRING_EQUAL(r.sidecar, side);
    io_extract_result_free(&r);
}

static int setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dcm-extract-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    setup_images();
    return 0;
}

static void teardown(void)
{
    if (test_remove_dir(tmpdir))
        printf("cannot remove %s\n", tmpdir);
}


/* ---- every label of an atlas (--all-labels) ---- */

/* An atlas image of any size with an sform only (qform unset). */
static void write_atlas_grid(const char *path, int nx, int ny, int nz, const double *x, double A[4][4])
{
    int64_t dims[8] = {3, nx, ny, nz, 1, 1, 1, 1};
    nifti_image *nim = nifti_make_new_nim(dims, DT_INT16, 1);
    for (size_t q = 0; q < (size_t)nx * ny * nz; q++)
        ((int16_t *)nim->data)[q] = (int16_t)lround(x[q]);
    nim->dx = nim->pixdim[1] = 4.0;
    nim->dy = nim->pixdim[2] = 5.0;
    nim->dz = nim->pixdim[3] = 6.0;
    nim->xyz_units = NIFTI_UNITS_MM;
    nim->qform_code = 0;
    nim->sform_code = NIFTI_XFORM_MNI_152;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            nim->sto_xyz.m[r][c] = A[r][c];
    nifti_set_filenames(nim, path, 0, 1);
    nifti_image_write(nim);
    nifti_image_free(nim);
}

/* The coarse atlas: 2x the BOLD voxels, origin at BOLD voxel SHIFT (no
 * BOLD centre falls half-way between two atlas voxels), 8 x 6 x 5 voxels
 * (the BOLD is 12 x 10 x 8: some atlas voxels lie outside it). Labels
 * 1..5 in a pattern; label 9 only in atlas column I = 7 (BOLD i >= 14:
 * outside); label 40 nowhere near the BOLD (I = 7 too). */
#define CA_NX 8
#define CA_NY 6
#define CA_NZ 5
static const double SHIFT[3] = {0.25, -0.3, 0.6};

static long coarse_label(int I, int J, int K)
{
    if (I == 7)
        return J == 0 ? 40 : 9;
    return 1 + (I + 2 * J + 3 * K) % 5;
}

/* the label the BOLD voxel (i, j, k) should get: atlas voxel
   round((ijk - SHIFT) / 2), 0 outside */
static long expected_label(int i, int j, int k)
{
    int ijk[3] = {i, j, k}, IJK[3], dim[3] = {CA_NX, CA_NY, CA_NZ};
    for (int a = 0; a < 3; a++) {
        IJK[a] = (int)floor((ijk[a] - SHIFT[a]) / 2.0 + 0.5);
        if (IJK[a] < 0 || IJK[a] >= dim[a])
            return 0;
    }
    return coarse_label(IJK[0], IJK[1], IJK[2]);
}

static void setup_coarse_atlas(void)
{
    double A[4][4], C[4][4];
    make_sform(A);
    for (int r = 0; r < 4; r++) {
        for (int c = 0; c < 3; c++)
            C[r][c] = 2.0 * A[r][c];
        C[r][3] = A[r][0] * SHIFT[0] + A[r][1] * SHIFT[1] + A[r][2] * SHIFT[2] + A[r][3];
    }
    double *x = calloc(CA_NX * CA_NY * CA_NZ, sizeof(double));
    for (int K = 0; K < CA_NZ; K++)
        for (int J = 0; J < CA_NY; J++)
            for (int I = 0; I < CA_NX; I++)
                x[I + CA_NX * (J + CA_NY * K)] = (double)coarse_label(I, J, K);
    write_atlas_grid(tp("atlas_coarse.nii"), CA_NX, CA_NY, CA_NZ, x, C);
    /* the same labels already on the BOLD grid, for per-label extraction */
    double *y = calloc(NVOX3, sizeof(double));
    for (int k = 0; k < NZ; k++)
        for (int j = 0; j < NY; j++)
            for (int i = 0; i < NX; i++)
                y[VOX(i, j, k)] = (double)expected_label(i, j, k);
    img_opts o = DEFAULT_IMG;
    write_img(tp("atlas_resampled.nii"), 1, y, &o);
    free(x);
    free(y);
    write_file("labels.tsv", "index\tname\tcolor\n1\tVis\t#ff0000\n2\tSomMot\t#00ff00\n"
               "3\tDorsAttn\t#0000ff\n4\tLimbic\t#ffff00\n5\tDefault\t#00ffff\n12\tGhost\t#000000\n");
}

/* Same grid: one column per label, each equal to the single-label path. */
static void test_all_labels_same_grid(void)
{
    io_extract_opts o;
    io_extract_atlas_result r;
    dcm_error err;
    opts_init(&o, tp("bold.nii"));
    o.name = NULL;
    o.atlas = tp("atlas.nii");
    o.all_labels = 1;
    o.hpf = 128;
    int rc = io_extract_atlas_run(&o, &r, &err);
    if (rc)
        printf("\n  %s", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(r.resampled, 0);
    CU_ASSERT_EQUAL_FATAL(r.nregions, 2);
    CU_ASSERT_EQUAL(r.nmissing, 0);
    CU_ASSERT_STRING_EQUAL(r.name[0], "label_1");
    CU_ASSERT_STRING_EQUAL(r.name[1], "label_2");
    CU_ASSERT_EQUAL(r.nvox[0], 18);
    CU_ASSERT_EQUAL(r.nvox[1], 36);
    CU_ASSERT_STRING_EQUAL(r.warning, "");
    for (int k = 0; k < 2; k++) {
        io_extract_opts o1 = o;
        o1.all_labels = 0;
        o1.name = "R";
        o1.label = k + 1;
        io_extract_result r1;
        CU_ASSERT_EQUAL_FATAL(io_extract_run(&o1, &r1, &err), 0);
        double d = 0;
        for (int t = 0; t < NV; t++)
            d = fmax(d, fabs(r1.y[t] - r.Y[t + (size_t)NV * k]));
        printf("\n  label %d: all-labels vs --label: max |diff| %.2e, explained %.4f vs %.4f", k + 1, d,
               r.explained[k], r1.explained);
        CU_ASSERT(d == 0.0);
        CU_ASSERT(r.explained[k] == r1.explained);
        for (int a = 0; a < 3; a++)
            CU_ASSERT_DOUBLE_EQUAL(r.centre_mm[3 * k + a], r1.centre_mm[a], 1e-9);
        io_extract_result_free(&r1);
    }
    CU_ASSERT_EQUAL(r.common.nx0, 3);
    io_extract_atlas_result_free(&r);
}

/* A coarser, shifted atlas: the voxels each label gets, names from the
 * table, the labels without a column and why, and the columns equal to
 * per-label extraction with the atlas already on the BOLD grid. */
static void test_all_labels_resampled(void)
{
    setup_coarse_atlas();
    io_extract_opts o;
    io_extract_atlas_result r;
    dcm_error err;
    /* own copies: tp() recycles its buffers */
    char bold_p[1024], atlas_p[1024], labels_p[1024], mask_p[1024], res_p[1024];
    snprintf(bold_p, sizeof bold_p, "%s", tp("bold.nii"));
    snprintf(atlas_p, sizeof atlas_p, "%s", tp("atlas_coarse.nii"));
    snprintf(labels_p, sizeof labels_p, "%s", tp("labels.tsv"));
    snprintf(mask_p, sizeof mask_p, "%s", tp("mask.nii"));
    snprintf(res_p, sizeof res_p, "%s", tp("atlas_resampled.nii"));
    opts_init(&o, bold_p);
    o.name = NULL;
    o.atlas = atlas_p;
    o.labels = labels_p;
    o.all_labels = 1;
    o.summary = IO_SUMMARY_MEAN;
    int rc = io_extract_atlas_run(&o, &r, &err);
    if (rc)
        printf("\n  %s", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    printf("\n  warning: %s", r.warning);
    CU_ASSERT_EQUAL(r.resampled, 1);
    CU_ASSERT_EQUAL(r.atlas_labels, 7);
    CU_ASSERT_EQUAL_FATAL(r.nregions, 5);
    static const char *const names[] = {"Vis", "SomMot", "DorsAttn", "Limbic", "Default"};
    int count[6] = {0};
    for (int k = 0; k < NZ; k++)
        for (int j = 0; j < NY; j++)
            for (int i = 0; i < NX; i++) {
                long l = expected_label(i, j, k);
                CU_ASSERT(l <= 5);   /* 9 and 40 lie outside the BOLD */
                count[l]++;
            }
    for (int k = 0; k < 5; k++) {
        CU_ASSERT_EQUAL(r.label[k], k + 1);
        CU_ASSERT_STRING_EQUAL(r.name[k], names[k]);
        CU_ASSERT_EQUAL(r.nvox[k], count[k + 1]);
        printf("\n  %s: %d voxels (expected %d)", r.name[k], r.nvox[k], count[k + 1]);
    }
    /* 9 and 40: in the atlas, not on the BOLD grid; 12: named, not in the atlas */
    CU_ASSERT_EQUAL_FATAL(r.nmissing, 3);
    CU_ASSERT_EQUAL(r.missing[0], 9);
    CU_ASSERT_STRING_EQUAL(r.missing_name[0], "label_9");
    CU_ASSERT_PTR_NOT_NULL(strstr(r.missing_why[0], "no voxel on the BOLD grid"));
    CU_ASSERT_EQUAL(r.missing[1], 12);
    CU_ASSERT_STRING_EQUAL(r.missing_name[1], "Ghost");
    CU_ASSERT_STRING_EQUAL(r.missing_why[1], "not in the atlas");
    CU_ASSERT_EQUAL(r.missing[2], 40);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.warning, "3 labels of"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.warning, "Ghost (12): not in the atlas"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.warning, "2 labels of the atlas are not in"));
    /* the columns: per-label extraction on the resampled atlas, and the
       mean of the demeaned voxel series computed here */
    double *bold = make_bold(0, 0);
    for (int k = 0; k < 5; k++) {
        io_extract_opts o1 = o;
        o1.all_labels = 0;
        o1.labels = NULL;
        o1.name = "R";
        o1.atlas = res_p;
        o1.label = k + 1;
        io_extract_result r1;
        CU_ASSERT_EQUAL_FATAL(io_extract_run(&o1, &r1, &err), 0);
        double d = 0, dm = 0;
        for (int t = 0; t < NV; t++) {
            double m = 0;
            int n = 0;
            for (size_t v = 0; v < NVOX3; v++) {
                size_t i = v % NX, j = (v / NX) % NY, kk = v / (NX * NY);
                if (expected_label((int)i, (int)j, (int)kk) != k + 1)
                    continue;
                double mu = 0;
                for (int q = 0; q < NV; q++)
                    mu += bold[v + (size_t)NVOX3 * q] / NV;
                m += bold[v + (size_t)NVOX3 * t] - mu;
                n++;
            }
            d = fmax(d, fabs(r1.y[t] - r.Y[t + (size_t)NV * k]));
            dm = fmax(dm, fabs(m / n - r.Y[t + (size_t)NV * k]));
        }
        printf("\n  %s: vs --label on the resampled atlas %.1e, vs direct mean %.1e", names[k], d, dm);
        CU_ASSERT(d == 0.0);
        CU_ASSERT(dm < 1e-9);
        io_extract_result_free(&r1);
    }
    free(bold);
    io_extract_atlas_result_free(&r);
    /* with a mask (region A's box): labels outside it are reported */
    o.mask = mask_p;
    rc = io_extract_atlas_run(&o, &r, &err);
    if (rc)
        printf("\n  %s", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    int inmask = 0;
    for (int k = 0; k < r.nregions; k++)
        inmask += r.nvox[k];
    CU_ASSERT_EQUAL(inmask, 18);
    int outside = 0;
    for (int k = 0; k < r.nmissing; k++)
        outside += !strcmp(r.missing_why[k], "no voxel inside the mask");
    printf("\n  with the mask: %d regions, %d labels outside it", r.nregions, outside);
    CU_ASSERT_EQUAL(r.nregions + outside, 5);
    io_extract_atlas_result_free(&r);
}

static void test_all_labels_cli(void)
{
    char args[4096];
    snprintf(args, sizeof args, "extract %s --atlas %s --all-labels --labels %s --hpf 128 -o %s",
             tp("bold.nii"), tp("atlas_coarse.nii"), tp("labels.tsv"), tp("out_all"));
    int rc = run(args);
    printf("\n  %s", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "5 regions"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "warning: 3 labels of"));
    io_table t;
    dcm_error err;
    CU_ASSERT_EQUAL_FATAL(io_tsv_read(tp("out_all.tsv"), &t, &err), 0);
    CU_ASSERT_EQUAL(t.rows, NV);
    CU_ASSERT_EQUAL(t.cols, 5);
    CU_ASSERT(t.names && !strcmp(t.names[0], "Vis") && !strcmp(t.names[4], "Default"));
    io_table_free(&t);
    CU_ASSERT_EQUAL_FATAL(io_tsv_read(tp("out_all_confounds.tsv"), &t, &err), 0);
    CU_ASSERT_EQUAL(t.cols, 3);
    io_table_free(&t);
    json_t *j = test_load_json(tp("out_all.json"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT(json_is_true(json_object_get(j, "atlas_resampled")));
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "regions")), 5);
    json_t *m = json_object_get(j, "missing_labels");
    CU_ASSERT_EQUAL(json_array_size(m), 3);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(m, 1), "name")), "Ghost");
    json_decref(j);
    /* usage errors: exit 1, nothing written */
    static const struct {
        const char *tail, *needle;
    } usage[] = {{"--all-labels", "--all-labels needs --atlas"},
                 {"--atlas ATLAS --all-labels --label 2", "--all-labels takes no --label"},
                 {"--atlas ATLAS --all-labels --name X", "--all-labels takes no --name"},
                 {"--atlas ATLAS --all-labels --sphere 0,0,0,5", "--all-labels takes no --sphere"},
                 {"--atlas ATLAS --label 1 --name X --labels L.tsv", "--labels needs --all-labels"}};
    for (size_t q = 0; q < sizeof usage / sizeof usage[0]; q++) {
        char tail[1024];
        const char *at = strstr(usage[q].tail, "ATLAS");
        if (at)
            snprintf(tail, sizeof tail, "%.*s%s%s", (int)(at - usage[q].tail), usage[q].tail,
                     tp("atlas.nii"), at + 5);
        else
            snprintf(tail, sizeof tail, "%s", usage[q].tail);
        snprintf(args, sizeof args, "extract %s %s -o %s", tp("bold.nii"), tail, tp("bad_all"));
        rc = run(args);
        printf("\n  exit %d: %s", rc, out);
        CU_ASSERT_EQUAL(rc, 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, usage[q].needle));
    }
    CU_ASSERT_EQUAL(count_with_prefix("bad_all"), 0);
}

/* bad atlases and tables: exit 2 with the reason, nothing written */
static void test_all_labels_bad(void)
{
    double *x = calloc(NVOX3, sizeof(double));
    img_opts o = DEFAULT_IMG;
    write_img(tp("atlas_zero.nii"), 1, x, &o);
    x[VOX(3, 4, 2)] = 2.5;
    write_img(tp("atlas_frac.nii"), 1, x, &o);
    /* an atlas far from the BOLD: every label lost */
    double A[4][4];
    make_sform(A);
    A[0][3] += 1000.0;
    for (size_t q = 0; q < NVOX3; q++)
        x[q] = 1 + (double)(q % 3);
    write_atlas_grid(tp("atlas_far.nii"), NX, NY, NZ, x, A);
    free(x);
    write_file("labels_dup.tsv", "index\tname\n1\tA\n2\tB\n1\tC\n");
    write_file("labels_noname.tsv", "index\tlabel\n1\tA\n");
    write_file("labels_clash.tsv", "index\tname\n1\tlabel_2\n");
    static const struct {
        const char *atlas, *labels, *needle;
    } bad[] = {{"atlas_zero.nii", NULL, "the atlas has no labelled voxel"},
               {"atlas_frac.nii", NULL, "holds 2.5, not a whole-number label"},
               {"atlas_far.nii", NULL, "no label of the atlas has a usable voxel"},
               {"atlas.nii", "labels_dup.tsv", "index 1 is listed twice"},
               {"atlas.nii", "labels_noname.tsv", "\"index\" and \"name\""},
               {"atlas.nii", "labels_clash.tsv", "would be called"}};
    for (size_t q = 0; q < sizeof bad / sizeof bad[0]; q++) {
        char args[4096], lab[1100] = "";
        if (bad[q].labels)
            snprintf(lab, sizeof lab, "--labels %s", tp(bad[q].labels));
        snprintf(args, sizeof args, "extract %s --atlas %s --all-labels %s -o %s", tp("bold.nii"),
                 tp(bad[q].atlas), lab, tp("bad_all"));
        int rc = run(args);
        printf("\n  exit %d: %s", rc, out);
        CU_ASSERT_EQUAL(rc, 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, bad[q].needle));
    }
    CU_ASSERT_EQUAL(count_with_prefix("bad_all"), 0);
}

extern void openblas_set_num_threads(int);

int main(void)
{
    openblas_set_num_threads(1);
    if (setup())
        return 1;
    static const test_case cases[] = {
        {"DCT high-pass basis: orthonormal, the cosine formula, SPM's K", test_dct_basis},
        {"eigenvariate against a direct SVD (both of SPM's branches)", test_eigenvariate_direct},
        {"mask: voxels, centre through the sform, eigenvariate, high-pass, mean", test_mask_region},
        {"atlas label", test_atlas_label},
        {"spheres in world coordinates (rotated sform, qform, with a mask)", test_sphere_world},
        {"NIfTI-1, .nii.gz, NIfTI-2, ANALYZE, scaled int16 give the same series", test_formats},
        {"fMRIPrep confound columns (with n/a) are regressed out", test_confounds},
        {"TR from header units, sidecar, --tr; slice timing delay", test_tr_and_slice_timing},
        {"dcm extract writes PREFIX.tsv/_confounds.tsv/.json that a spec can use", test_cli_outputs},
        {"truncated NIfTI: exit 2", test_bad_truncated},
        {"corrupt NIfTI / unsupported type: exit 2", test_bad_corrupt},
        {"3D image where 4D is needed (and vice versa): exit 2", test_bad_3d_bold},
        {"mask and BOLD grids differ: exit 2", test_bad_grid},
        {"empty region: exit 2", test_bad_empty_region},
        {"sphere outside the image: exit 2", test_bad_sphere_outside},
        {"bad confounds, no TR, usage errors", test_bad_other},
        {"malformed BIDS sidecar: exit 2", test_bad_sidecar},
        {"tied eigenvalues (orthogonal or all-zero voxels): a clean refusal, no overrun",
         test_eigen_ties},
        {"a constant region is refused; constant voxels warned; huge/tiny values scaled",
         test_constant_region},
        {"NaN/Inf voxels are left out, counted and warned about", test_nonfinite_voxels},
        {"invalid vox_offset, scl_slope/scl_inter, pixdim[4]: exit 2 saying which",
         test_bad_header_fields},
        {"a .nii.gz extension bomb and an oversized .hdr are refused in bounded memory",
         test_gzip_bomb},
        {"FIFOs and devices as image, atlas, .img part or sidecar: exit 2, no hang",
         test_special_files},
        {"an unreadable atlas says it cannot be read, and why", test_unreadable_atlas},
        {"too many volumes or high-pass columns refused; sidecars beside long paths", test_limits_and_long_paths},
        {"--all-labels on the BOLD grid: each column equals --label's", test_all_labels_same_grid},
        {"--all-labels with a coarser shifted atlas: voxels, names, missing labels, --label equality",
         test_all_labels_resampled},
        {"dcm extract --all-labels: outputs, warning, usage errors", test_all_labels_cli},
        {"--all-labels: empty, fractional or distant atlas, bad labels tables: exit 2", test_all_labels_bad},
        {NULL, NULL}};
    int rc = test_run("extract", cases);
    teardown();
    return rc;
}
