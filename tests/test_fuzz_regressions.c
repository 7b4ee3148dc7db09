/* test_fuzz_regressions.c — replay the inputs kept in fuzz/regressions
 * (crashes `make fuzz` found, and other hostile inputs) and the seeds
 * (fuzz/seeds) through the fuzz targets (fuzz/fuzz_targets.h), under the
 * sanitized build of `make test`: each must be rejected or read cleanly,
 * never crash. File names say the target: nifti-*, tsv-*, spec-*,
 * extract-*, result-*, mat-*, manifest-*, design-*. The seeds of extract,
 * result, mat, manifest and design must also be read (they are valid
 * inputs: a harness that rejects them would fuzz nothing but the first
 * check). */
#include <dirent.h>

#include "fuzz/fuzz_targets.h"
#include "tests/test_util.h"

/* Run every file of dir whose name starts with prefix (or all, when
 * prefix is NULL) through target; returns how many ran. */
static int replay_counting(const char *dir, const char *prefix,
                           int (*target)(const uint8_t *, size_t), int *rejected)
{
    DIR *d = opendir(dir);
    if (!d) {
        printf("\n  (no folder %s)", dir);
        return 0;
    }
    struct dirent *e;
    int k = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || (prefix && strncmp(e->d_name, prefix, strlen(prefix)) != 0))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        uint8_t *buf = malloc(1 << 20);
        size_t n = fread(buf, 1, 1 << 20, f);
        fclose(f);
        int rc = target(buf, n);
        printf("\n  %-40s %6zu bytes -> %s", e->d_name, n, rc ? "rejected" : "read");
        if (rc && rejected)
            ++*rejected;
        free(buf);
        k++;
    }
    closedir(d);
    return k;
}

static int replay(const char *dir, const char *prefix, int (*target)(const uint8_t *, size_t))
{
    return replay_counting(dir, prefix, target, NULL);
}

/* Regressions of target NAME, then its seeds, each of which must be read. */
static void replay_target(const char *name, int (*target)(const uint8_t *, size_t))
{
    char prefix[64], seeds[128];
    snprintf(prefix, sizeof prefix, "%s-", name);
    snprintf(seeds, sizeof seeds, "fuzz/seeds/%s", name);
    int rejected = 0;
    (void)replay("fuzz/regressions", prefix, target);
    int k = replay_counting(seeds, NULL, target, &rejected);
    CU_ASSERT(k >= 2);
    CU_ASSERT_EQUAL(rejected, 0);
}

static void test_extract(void) { replay_target("extract", fuzz_extract); }
static void test_result(void) { replay_target("result", fuzz_result); }
static void test_mat(void) { replay_target("mat", fuzz_mat); }
static void test_manifest(void) { replay_target("manifest", fuzz_manifest); }
static void test_design(void) { replay_target("design", fuzz_design); }

static void test_nifti(void)
{
    int k = replay("fuzz/regressions", "nifti-", fuzz_nifti) + replay("fuzz/seeds/nifti", NULL, fuzz_nifti);
    CU_ASSERT(k > 0);
}

static void test_tsv(void)
{
    int k = replay("fuzz/regressions", "tsv-", fuzz_tsv) + replay("fuzz/seeds/tsv", NULL, fuzz_tsv);
    CU_ASSERT(k > 0);
}

static void test_spec(void)
{
    int k = replay("fuzz/regressions", "spec-", fuzz_spec) + replay("fuzz/seeds/spec", NULL, fuzz_spec);
    CU_ASSERT(k > 0);
}

int main(void)
{
    static const test_case cases[] = {
        {"NIfTI inputs from fuzzing are rejected or read, never crash", test_nifti},
        {"TSV inputs from fuzzing", test_tsv},
        {"spec inputs from fuzzing", test_spec},
        {"extract on tiny images from fuzzing (eigenvariate, LAPACK)", test_extract},
        {"result JSON inputs from fuzzing (load, reduce, compare, average)", test_result},
        {"SPM .mat inputs from fuzzing", test_mat},
        {"batch manifests from fuzzing", test_manifest},
        {"PEB designs from fuzzing (dcm peb on three subjects)", test_design},
        {NULL, NULL}};
    int rc = test_run("fuzz regressions", cases);
    fuzz_cleanup();
    return rc;
}
