/* fuzz_targets.h — what each fuzz harness does with one input. Shared by
 * the libFuzzer programs (fuzz/fuzz_*.c, built by `make fuzz` with clang)
 * and by tests/test_fuzz_regressions.c, which replays the files of fuzz/regressions
 * under the normal sanitized build so that every crash found stays fixed.
 *
 * Each target writes the input to a private temporary file (the readers
 * take paths), runs the reader, frees what it returned and removes the
 * file. Return value: the reader's status (ignored by libFuzzer). */
#ifndef FUZZ_TARGETS_H
#define FUZZ_TARGETS_H

#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nifti1.h>

#include "dcm/dcm_api.h"
#include "dcm/dcm_batch.h"
#include "dcm/cli/cli.h"
#include "io/io_extract.h"
#include "io/io_lme.h"
#include "io/io_mat.h"
#include "io/io_nifti.h"
#include "dcm/report/report.h"
#include "io/io_result.h"
#include "io/io_spec.h"
#include "io/io_tsv.h"

/* Write data to /tmp/dcm-fuzz-PID/NAME (the folder is made on first use);
 * 0 on success. */
static inline int fuzz_to_file(const uint8_t *data, size_t size, const char *name, char *path,
                               size_t len)
{
    snprintf(path, len, "/tmp/dcm-fuzz-%ld", (long)getpid());
    if (access(path, F_OK) != 0 && mkdir(path, 0700) != 0)
        return -1;
    snprintf(path, len, "/tmp/dcm-fuzz-%ld/%s", (long)getpid(), name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            close(fd);
            unlink(path);
            return -1;
        }
        off += (size_t)w;
    }
    close(fd);
    return 0;
}

/* Remove this process's temporary folder (at exit). */
static inline void fuzz_cleanup(void)
{
    static const char *const names[] = {
        "img.nii", "img.nii.gz", "table.tsv", "spec.json", "ts.tsv", "conf.tsv", "ev.tsv", "u.tsv",
        "bold.nii", "atlas.nii", "xconf.tsv", "roi.tsv", "roi_confounds.tsv", "roi.json",
        "result.json", "rspec.json", "rts.tsv", "rev.tsv", "x.mat", "manifest.tsv", "design.tsv",
        "peb/s1/m.json", "peb/s2/m.json", "peb/s3/m.json", "peb/s1", "peb/s2", "peb/s3", "peb",
        NULL};
    char path[256];
    for (int i = 0; names[i]; i++) {
        snprintf(path, sizeof path, "/tmp/dcm-fuzz-%ld/%s", (long)getpid(), names[i]);
        if (unlink(path) != 0)
            rmdir(path);
    }
    snprintf(path, sizeof path, "/tmp/dcm-fuzz-%ld", (long)getpid());
    rmdir(path);
}

/* NIfTI header path: the header alone, then the whole image as a 4D
 * series and as a 3D volume (.nii, and .nii.gz when the input starts with
 * gzip's magic bytes). */
static inline int fuzz_nifti(const uint8_t *data, size_t size)
{
    char path[256];
    const char *name = size >= 2 && data[0] == 0x1f && data[1] == 0x8b ? "img.nii.gz" : "img.nii";
    if (fuzz_to_file(data, size, name, path, sizeof path))
        return 0;
    dcm_error err;
    io_nifti img;
    int rc = io_nifti_open(path, IO_NIFTI_HEADER, &img, &err);
    if (rc == DCM_OK) {
        io_nifti_close(&img);
        for (int want = IO_NIFTI_3D; want <= IO_NIFTI_4D; want++)
            if (io_nifti_open(path, want, &img, &err) == DCM_OK) {
                /* touch the first and last values and the transforms */
                double xyz[3], ijk[3];
                (void)io_nifti_value(&img, 0, 0);
                (void)io_nifti_value(&img, img.nvox3 - 1, img.nt - 1);
                io_nifti_vox2mm(&img, 1, 2, 3, xyz);
                (void)io_nifti_mm2vox(&img, xyz, ijk);
                io_nifti_close(&img);
            }
    }
    unlink(path);
    return rc;
}

static inline int fuzz_tsv(const uint8_t *data, size_t size)
{
    char path[256];
    if (fuzz_to_file(data, size, "table.tsv", path, sizeof path))
        return 0;
    dcm_error err;
    io_table t;
    int rc = io_tsv_read(path, &t, &err);
    if (rc == DCM_OK)
        io_table_free(&t);
    io_text_table tt;
    if (io_text_read(path, &tt, &err) == DCM_OK)
        io_text_free(&tt);
    unlink(path);
    return rc;
}

/* Strings naming special files would make the spec reader read devices
 * (/dev/zero never ends): such inputs test the OS, not the parser. */
static inline int fuzz_names_special(json_t *j)
{
    if (json_is_string(j)) {
        const char *s = json_string_value(j);
        return strstr(s, "dev") || strstr(s, "proc") || strstr(s, "sys") || strstr(s, "fd") ||
               strstr(s, "run") || strstr(s, "fifo");
    }
    if (json_is_array(j)) {
        size_t i;
        json_t *x;
        json_array_foreach(j, i, x) if (fuzz_names_special(x)) return 1;
    }
    if (json_is_object(j)) {
        const char *k;
        json_t *x;
        json_object_foreach(j, k, x) if (fuzz_names_special(x)) return 1;
    }
    return 0;
}

/* Data files the spec seeds (fuzz/seeds/spec) name, so that fuzzed
 * specs get past "file not found" into the checks that follow. */
static inline void fuzz_spec_files(void)
{
    char path[256], text[4096];
    snprintf(path, sizeof path, "/tmp/dcm-fuzz-%ld/u.tsv", (long)getpid());
    if (access(path, F_OK) == 0)
        return;
    const char *ts = "R1\tR2\tV1\tV5\tSPC\n1\t2\t3\t4\t5\n2\t1\t0\t-1\t3\n0.5\t0\t1\t2\t1\n"
                     "1\t1\t1\t0\t2\n";
    const char *conf = "1\t0.1\n1\t0.2\n1\t-0.1\n1\t0\n";
    const char *ev = "onset\tduration\ttrial_type\n0\t2\tStim\n2\t4\tAttn\n4\t2\tPhotic\n"
                     "1\t1\tMotion\n3\t0\tAttention\n";
    char *p = text;
    for (int t = 0; t < 64; t++)
        p += sprintf(p, "%d\t%d\t%d\n", (t / 8) % 2, (t / 16) % 2, t % 3 == 0);
    const char *names[4] = {"ts.tsv", "conf.tsv", "ev.tsv", "u.tsv"};
    const char *bodies[4] = {ts, conf, ev, text};
    for (int i = 0; i < 4; i++)
        fuzz_to_file((const uint8_t *)bodies[i], strlen(bodies[i]), names[i], path, sizeof path);
}

static inline int fuzz_spec(const uint8_t *data, size_t size)
{
    fuzz_spec_files();
    json_error_t je;
    json_t *j = json_loadb((const char *)data, size, 0, &je);
    int special = j && fuzz_names_special(j);
    json_decref(j);
    if (special)
        return 0;
    char path[256];
    if (fuzz_to_file(data, size, "spec.json", path, sizeof path))
        return 0;
    dcm_error err;
    dcm_problem *P = NULL;
    int rc = io_spec_load(path, &P, &err);
    dcm_problem_free(P);
    P = NULL;
    if (io_spec_load_ex(path, IO_SPEC_DESIGN_ONLY, &P, &err) == DCM_OK)
        dcm_problem_free(P);
    unlink(path);
    return rc;
}

/* ---- extract: a tiny 4D image and atlas made from the input ----
 * Byte 0..2: grid nx ny nz (1..4, 1..4, 1..3), byte 3: scans (3..34),
 * byte 4: flags (bit 0 mean instead of eigenvariate, 1 high-pass, 2 sphere
 * instead of atlas, 3 sphere within the atlas, 4 confound columns, 5 a
 * scl_slope from the data, 6 write the outputs, 7 data as int16), byte 5:
 * the atlas label (0..3), byte 6: TR, byte 7: sphere radius. Then one atlas
 * label per voxel (value % 4) and the voxel values (float32 or int16, NaN
 * and Inf included); both are read cyclically from the input, so short
 * inputs give repeated, tied or all-zero patterns. The header is always
 * valid: the NIfTI harness covers headers; this one drives the numerics
 * (regression on the DCT and confounds, LAPACK's eigensolver). */

/* Bytes of the input read cyclically from offset `from` (0 when empty). */
static inline uint8_t fuzz_cyc(const uint8_t *data, size_t size, size_t from, size_t k)
{
    if (size <= from)
        return 0;
    return data[from + k % (size - from)];
}

/* A NIfTI-1 image nx x ny x nz x nt on a 2 mm grid centred on 0 (sform);
 * datatype DT_FLOAT32, DT_INT16 or DT_UINT8; vals holds nx*ny*nz*nt
 * values of that type. */
static inline int fuzz_write_nifti(const char *name, int nx, int ny, int nz, int nt, int dtype,
                                   const void *vals, double tr, float slope, char *path, size_t len)
{
    nifti_1_header h;
    memset(&h, 0, sizeof h);
    h.sizeof_hdr = 348;
    h.dim[0] = nt > 1 ? 4 : 3;
    h.dim[1] = (short)nx;
    h.dim[2] = (short)ny;
    h.dim[3] = (short)nz;
    h.dim[4] = (short)nt;
    for (int i = 5; i < 8; i++)
        h.dim[i] = 1;
    h.datatype = (short)dtype;
    int bytes = dtype == DT_FLOAT32 ? 4 : dtype == DT_INT16 ? 2 : 1;
    h.bitpix = (short)(8 * bytes);
    h.pixdim[0] = 1;
    h.pixdim[1] = h.pixdim[2] = h.pixdim[3] = 2;
    h.pixdim[4] = (float)tr;
    h.xyzt_units = NIFTI_UNITS_MM | NIFTI_UNITS_SEC;
    h.vox_offset = 352;
    h.scl_slope = slope;
    h.sform_code = NIFTI_XFORM_SCANNER_ANAT;
    h.srow_x[0] = h.srow_y[1] = h.srow_z[2] = 2;
    h.srow_x[3] = (float)-nx;
    h.srow_y[3] = (float)-ny;
    h.srow_z[3] = (float)-nz;
    memcpy(h.magic, "n+1", 4);
    size_t nbytes = (size_t)nx * ny * nz * nt * bytes;
    size_t total = 352 + nbytes;
    uint8_t *buf = calloc(1, total);
    if (!buf)
        return -1;
    memcpy(buf, &h, sizeof h);
    memcpy(buf + 352, vals, nbytes);
    int rc = fuzz_to_file(buf, total, name, path, len);
    free(buf);
    return rc;
}

static inline int fuzz_extract(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    const int nx = 1 + data[0] % 4, ny = 1 + data[1] % 4, nz = 1 + data[2] % 3;
    const int nt = 3 + data[3] % 32, flags = data[4];
    const size_t nvox = (size_t)nx * ny * nz, nval = nvox * nt;
    const double tr = 0.5 + data[6] / 32.0;
    uint8_t *labels = malloc(nvox);
    void *vals = malloc(nval * 4);
    if (!labels || !vals) {
        free(labels);
        free(vals);
        return 0;
    }
    for (size_t i = 0; i < nvox; i++)
        labels[i] = fuzz_cyc(data, size, 8, i) % 4;
    const size_t from = 8 + nvox;
    const int int16 = flags & 128;
    for (size_t i = 0; i < nval; i++) {
        uint8_t b[4];
        for (int k = 0; k < 4; k++)
            b[k] = fuzz_cyc(data, size, from, 4 * i + (size_t)k);
        if (int16)
            memcpy((int16_t *)vals + i, b, 2);
        else
            memcpy((float *)vals + i, b, 4);
    }
    float slope = 1.0f;
    if (flags & 32)
        for (int k = 0; k < 4; k++)
            ((uint8_t *)&slope)[k] = fuzz_cyc(data, size, from, (size_t)k + 1);
    char bold[256], atlas[256], conf[256], prefix[256];
    int rc = -1;
    if (fuzz_write_nifti("bold.nii", nx, ny, nz, nt, int16 ? DT_INT16 : DT_FLOAT32, vals, tr, slope,
                         bold, sizeof bold) ||
        fuzz_write_nifti("atlas.nii", nx, ny, nz, 1, DT_UINT8, labels, tr, 1.0f, atlas, sizeof atlas))
        goto out;
    io_extract_opts o;
    memset(&o, 0, sizeof o);
    o.bold = bold;
    o.name = "roi";
    o.summary = flags & 1 ? IO_SUMMARY_MEAN : IO_SUMMARY_EIGEN;
    o.hpf = flags & 2 ? 4.0 * tr : 0.0;
    o.tr = tr;
    if (!(flags & 4) || (flags & 8)) {
        o.atlas = atlas;
        o.label = data[5] % 4;
    }
    if (flags & 12) {
        o.sphere = 1;
        o.radius = data[7] / 16.0;
        o.centre[0] = (data[7] % 3) - 1.0;
    }
    char *columns[2] = {"c1", "c2"};
    if (flags & 16) {
        /* two confound columns from the data: one a copy of the first
         * voxel's series (collinear with the signal), one from the bytes */
        char *text = malloc(32 + (size_t)nt * 64), *p = text;
        if (!text)
            goto out;
        p += sprintf(p, "c1\tc2\n");
        for (int t = 0; t < nt; t++) {
            double a = int16 ? ((int16_t *)vals)[(size_t)t * nvox] : ((float *)vals)[(size_t)t * nvox];
            p += sprintf(p, "%.9g\t%d\n", a, (int)fuzz_cyc(data, size, 0, (size_t)t) - 128);
        }
        int w = fuzz_to_file((const uint8_t *)text, strlen(text), "xconf.tsv", conf, sizeof conf);
        free(text);
        if (w)
            goto out;
        o.confounds = conf;
        o.columns = columns;
        o.ncolumns = 2;
    }
    dcm_error err;
    io_extract_result r;
    memset(&r, 0, sizeof r);
    rc = io_extract_run(&o, &r, &err);
    if (rc == DCM_OK && (flags & 64)) {
        snprintf(prefix, sizeof prefix, "/tmp/dcm-fuzz-%ld/roi", (long)getpid());
        (void)io_extract_write(prefix, &o, &r, &err);
    }
    if (rc == DCM_OK)
        io_extract_result_free(&r);
out:
    free(labels);
    free(vals);
    return rc;
}

/* Commands print their tables and JSON on stdout: send it to /dev/null
 * while one runs (stderr stays, for the sanitizers' reports). Returns the
 * saved descriptor for fuzz_quiet_end (-1: nothing to restore). */
static inline int fuzz_quiet_begin(void)
{
    fflush(stdout);
    int saved = dup(1), null = open("/dev/null", O_WRONLY);
    if (saved >= 0 && null >= 0)
        dup2(null, 1);
    if (null >= 0)
        close(null);
    return saved;
}

static inline void fuzz_quiet_end(int saved)
{
    fflush(stdout);
    if (saved >= 0) {
        dup2(saved, 1);
        close(saved);
    }
}

/* ---- result JSON: what compare / average / peb / reduce / report read ----
 * A two-region, one-input spec (R1, R2, Stim; 24 scans) is written next to
 * the input so that io_params_load has a problem to fill. */
static inline int fuzz_result_spec(char *path, size_t len)
{
    char text[4096], *p = text, tmp[256];
    p += sprintf(p, "R1\tR2\n");
    for (int t = 0; t < 24; t++)
        p += sprintf(p, "%.4f\t%.4f\n", (t / 4) % 2 + 0.1 * (t % 3), ((t + 2) / 4) % 2 - 0.05 * (t % 5));
    if (fuzz_to_file((const uint8_t *)text, strlen(text), "rts.tsv", tmp, sizeof tmp))
        return -1;
    const char *ev = "onset\tduration\ttrial_type\n0\t8\tStim\n16\t8\tStim\n32\t8\tStim\n";
    if (fuzz_to_file((const uint8_t *)ev, strlen(ev), "rev.tsv", tmp, sizeof tmp))
        return -1;
    const char *spec = "{\"TR\": 2.0, \"TE\": 0.04, \"scans\": 24, \"timeseries\": \"rts.tsv\", \"events\": \"rev.tsv\",\n"
                       " \"regions\": [\"R1\", \"R2\"], \"inputs\": [\"Stim\"],\n"
                       " \"a\": [\"R1 -> R2\", \"R2 -> R1\"], \"c\": {\"Stim\": [\"R1\"]}}\n";
    return fuzz_to_file((const uint8_t *)spec, strlen(spec), "rspec.json", path, len);
}

static inline int fuzz_result(const uint8_t *data, size_t size)
{
    char path[256], spec[256];
    if (fuzz_to_file(data, size, "result.json", path, sizeof path))
        return 0;
    dcm_error err;
    io_result_summary s;
    int rc = io_result_load(path, &s, &err);
    io_result_summary_free(&s);
    report_model m;
    if (report_load(path, &m, &err) == DCM_OK)
        report_model_free(&m);
    io_lme_table T;
    if (io_lme_read(path, &T, &err) == DCM_OK)
        io_lme_free(&T);
    dcm_problem *P = NULL;
    if (fuzz_result_spec(spec, sizeof spec) == 0 && io_spec_load(spec, &P, &err) == DCM_OK) {
        double *theta = calloc((size_t)P->M->L.np, sizeof(double));
        if (theta)
            (void)io_params_load(path, P, theta, &err);
        free(theta);
    }
    dcm_problem_free(P);
    if (rc == DCM_OK) {
        /* what the commands do with a loaded result: BMR, comparison and
         * averaging against itself */
        int saved = fuzz_quiet_begin();
        char *reduce[] = {"reduce", path, "--search", "--json", NULL};
        (void)cmd_reduce(4, reduce);
        char *compare[] = {"compare", path, path, "--json", NULL};
        (void)cmd_compare(4, compare);
        char *average[] = {"average", path, path, "--json", NULL};
        (void)cmd_average(4, average);
        fuzz_quiet_end(saved);
    }
    unlink(path);
    return rc;
}

/* ---- SPM .mat files: VOI_*.mat and DCM_*.mat readers ---- */
static inline int fuzz_mat(const uint8_t *data, size_t size)
{
    char path[256];
    if (fuzz_to_file(data, size, "x.mat", path, sizeof path))
        return 0;
    dcm_error err;
    io_voi voi;
    int rc_voi = io_mat_load_voi(path, &voi, &err);
    if (rc_voi == DCM_OK)
        io_voi_free(&voi);
    dcm_problem *P = NULL;
    int rc = io_mat_load_dcm(path, &P, &err);
    dcm_problem_free(P);
    if (rc_voi == DCM_OK)
        rc = DCM_OK; /* read as a VOI */
    static const char *const fields[] = {"DCM.Y.y", "DCM.U.u", "DCM.a", "xY.u", "DCM.Ep.A", NULL};
    for (int i = 0; fields[i]; i++) {
        int rank = 0;
        size_t dims[4];
        double *x = NULL;
        if (io_mat_read_array(path, fields[i], &rank, dims, &x, &err) == DCM_OK)
            free(x);
    }
    unlink(path);
    return rc;
}

/* ---- batch manifest (spec files named in it must exist: spec.json,
 * ts.tsv ... are made next to it) ---- */
static inline int fuzz_manifest(const uint8_t *data, size_t size)
{
    fuzz_spec_files();
    char path[256], spec[256];
    const char *s = "{}\n";
    if (fuzz_to_file((const uint8_t *)s, strlen(s), "spec.json", spec, sizeof spec) ||
        fuzz_to_file(data, size, "manifest.tsv", path, sizeof path))
        return 0;
    dcm_error err;
    dcm_batch_manifest m;
    int rc = dcm_batch_manifest_load(path, &m, &err);
    if (rc == DCM_OK)
        dcm_batch_manifest_free(&m);
    unlink(path);
    return rc;
}

/* ---- PEB design, through `dcm peb` on a batch folder of three subjects
 * (s1, s2, s3) holding the result seeds fuzz/seeds/result/sub-0[123].json
 * (paths relative to the repository, where make fuzz and make test run),
 * so that a design that reads runs PEB's numerics. ---- */
static inline int fuzz_copy(const char *from, const char *to)
{
    FILE *f = fopen(from, "rb");
    if (!f)
        return -1;
    FILE *g = fopen(to, "wb");
    if (!g) {
        fclose(f);
        return -1;
    }
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, g);
    fclose(f);
    return fclose(g);
}

static inline int fuzz_design(const uint8_t *data, size_t size)
{
    char dir[256], sub[300], to[320], from[64], path[256];
    snprintf(dir, sizeof dir, "/tmp/dcm-fuzz-%ld/peb", (long)getpid());
    if (access(dir, F_OK) != 0) {
        if (fuzz_to_file(data, 0, "design.tsv", path, sizeof path) || mkdir(dir, 0700))
            return 0;
        for (int s = 1; s <= 3; s++) {
            snprintf(sub, sizeof sub, "%s/s%d", dir, s);
            snprintf(to, sizeof to, "%s/m.json", sub);
            snprintf(from, sizeof from, "fuzz/seeds/result/sub-0%d.json", s);
            if (mkdir(sub, 0700) || fuzz_copy(from, to))
                return 0;
        }
    }
    if (fuzz_to_file(data, size, "design.tsv", path, sizeof path))
        return 0;
    char *argv[] = {"peb", dir, "--model", "m", "--design", path, "--params", "A:*", "--json", NULL};
    int saved = fuzz_quiet_begin();
    int rc = cmd_peb(9, argv);
    fuzz_quiet_end(saved);
    unlink(path);
    return rc;
}

#endif
