/* test_util.h — shared helpers for the CUnit test programs.
 *
 * Each tests/test_*.c is its own program: it registers its suites with
 * TEST_MAIN and runs them. Tests that need SPM's reference results read
 * them in place from ../shared (or $DCM_SHARED) and skip with a message
 * when that folder is absent.
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

/* Tests build paths and commands in fixed buffers; a truncated one makes
 * its test fail visibly, so GCC's may-truncate warnings are noise here. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include <CUnit/Basic.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <unistd.h>

/* Mark the running test as skipped, with the reason. CUnit has no skip
 * state (a test that returns early counts as passed), so the line names
 * the test: scripts/run_tests.sh counts each named test once as skipped
 * and takes it off CUnit's passed count. */
static inline void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void test_skip(const char *fmt, ...)
{
    CU_pTest t = CU_get_current_test();
    printf("\nSKIP: [%s] ", t && t->pName ? t->pName : "?");
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* The shared folder, as an absolute path (specs written to temporary
 * folders refer to its files). */
static inline const char *test_shared_dir(void)
{
    static char dir[4096];
    const char *env = getenv("DCM_SHARED");
    const char *d = env && *env ? env : "../shared";
    char cwd[2048];
    if (d[0] == '/' || !getcwd(cwd, sizeof cwd))
        snprintf(dir, sizeof dir, "%s", d);
    else
        snprintf(dir, sizeof dir, "%s/%s", cwd, d);
    return dir;
}

/* Path of a file under the shared folder, or NULL (and a SKIP line) when
 * it does not exist. */
static inline char *test_shared_path(const char *rel, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", test_shared_dir(), rel);
    struct stat st;
    if (stat(buf, &st) != 0) {
        test_skip("%s not found — SPM reference checks need ../shared beside the "
                  "repository (or DCM_SHARED=/path/to/shared)", buf);
        return NULL;
    }
    return buf;
}

static inline json_t *test_load_json(const char *path)
{
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (!j)
        printf("cannot parse %s: %s (line %d)\n", path, err.text, err.line);
    return j;
}

/* Copy a JSON array of numbers (null -> NAN) into out; returns count. */
static inline int test_json_vec(json_t *arr, double *out, int max)
{
    int k = 0;
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) {
        if (k >= max)
            break;
        out[k++] = json_is_number(x) ? json_number_value(x) : NAN;
    }
    return k;
}

/* Copy a JSON array of rows into a column-major rows x cols matrix. */
static inline int test_json_mat_colmajor(json_t *arr, double *out, int rows, int cols)
{
    if ((int)json_array_size(arr) != rows)
        return -1;
    for (int i = 0; i < rows; i++) {
        json_t *row = json_array_get(arr, (size_t)i);
        if ((int)json_array_size(row) != cols)
            return -1;
        for (int j = 0; j < cols; j++) {
            json_t *x = json_array_get(row, (size_t)j);
            out[i + j * rows] = json_is_number(x) ? json_number_value(x) : NAN;
        }
    }
    return 0;
}

static inline double test_max_abs(const double *a, int n)
{
    double m = 0.0;
    for (int i = 0; i < n; i++)
        if (fabs(a[i]) > m)
            m = fabs(a[i]);
    return m;
}

/* max |a - b| / max |b| */
static inline double test_rel_err(const double *a, const double *b, int n)
{
    double d = 0.0;
    for (int i = 0; i < n; i++)
        if (fabs(a[i] - b[i]) > d)
            d = fabs(a[i] - b[i]);
    double s = test_max_abs(b, n);
    return s > 0 ? d / s : d;
}

/* The dcm command under test: $DCM_BIN (make test sets the sanitized
 * build), else bin/dcm. */
static inline const char *test_dcm_bin(void)
{
    const char *b = getenv("DCM_BIN");
    return b && *b ? b : "bin/dcm";
}

/* Run a shell command with stderr merged into out; returns its exit
 * status (-1 if it did not exit normally). */
static inline int test_shell(const char *command, char *out, size_t outlen)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "%s 2>&1", command);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t k = fread(out, 1, outlen - 1, p);
    out[k] = 0;
    while (fgetc(p) != EOF) /* drain, so the command never dies of SIGPIPE */
        ;
    int st = pclose(p);
    return (st != -1 && (st & 0x7f) == 0) ? (st >> 8) & 0xff : -1;
}

/* Run `dcm ARGS` (see test_shell). */
static inline int test_dcm(const char *args, char *out, size_t outlen)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s", test_dcm_bin(), args);
    return test_shell(cmd, out, outlen);
}

/* Run `dcm ARGS` and parse its JSON (from the first '{': warnings on
 * stderr come first); NULL, with the reason printed, when it exits
 * non-zero or prints no JSON. out keeps the whole output. */
static inline json_t *test_dcm_json(const char *args, char *out, size_t outlen)
{
    int rc = test_dcm(args, out, outlen);
    if (rc) {
        printf("\n  dcm %s: exit %d: %.2000s\n", args, rc, out);
        return NULL;
    }
    const char *start = strchr(out, '{');
    json_error_t e;
    json_t *o = start ? json_loads(start, 0, &e) : NULL;
    if (!o)
        printf("\n  not JSON: %.300s\n", out);
    return o;
}

/* Whether DIR/NAME exists; the parsed JSON file DIR/NAME (NULL if not). */
static inline int test_exists_in(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}
static inline json_t *test_load_in(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return test_load_json(path);
}

/* Remove a test's temporary folder and everything in it; 0 on success. */
static inline int test_remove_dir(const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* 1 when no io_atomic temporary file ("*.tmp*") is left anywhere under
 * dir (recursively); prints each one found. A missing dir counts as clean. */
static inline int test_no_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 1;
    struct dirent *e;
    int ok = 1;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (strstr(e->d_name, ".tmp")) {
            printf("\n  leftover temporary file %s", path);
            ok = 0;
        }
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && !test_no_temp_files(path))
            ok = 0;
    }
    closedir(d);
    return ok;
}

/* Write text to DIR/REL. */
static inline void test_write_file(const char *dir, const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

static inline int test_run(const char *suite, const test_case *cases)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite(suite, NULL, NULL);
    for (const test_case *c = cases; c->name; c++)
        CU_add_test(s, c->name, c->fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_tests_failed();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return (failed || failures) ? 1 : 0;
}

#endif
