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

#include "dcm/dcm_api.h"
#include "io/io_nifti.h"
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
    static const char *const names[] = {"img.nii", "img.nii.gz", "table.tsv", "spec.json",
                                        "ts.tsv", "conf.tsv", "ev.tsv", "u.tsv", NULL};
    char path[256];
    for (int i = 0; names[i]; i++) {
        snprintf(path, sizeof path, "/tmp/dcm-fuzz-%ld/%s", (long)getpid(), names[i]);
        unlink(path);
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

#endif
