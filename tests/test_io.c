/* test_io.c — file formats: TSV tables, atomic writes, BIDS events, JSON
 * specs (and every way a spec can be wrong), result files. */
#include <dirent.h>
#include <unistd.h>

#include "dcm/dcm_api.h"
#include "io/io_atomic.h"
#include "io/io_events.h"
#include "io/io_result.h"
#include "io/io_spec.h"
#include "io/io_tsv.h"
#include "tests/test_util.h"

/* ------------------------------------------------------------------ */
/* temporary directories and files                                      */

static int make_tmpdir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/dcm-test-io-XXXXXX");
    return mkdtemp(dir) != NULL;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Number of entries in dir whose name contains sub. */
static int count_entries(const char *dir, const char *sub)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int k = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, sub))
            k++;
    closedir(d);
    return k;
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* An absolute version of path (the spec lives in another directory). */
static int abs_path(const char *path, char *out, size_t len)
{
    if (path[0] == '/')
        return snprintf(out, len, "%s", path) < (int)len;
    char cwd[2048];
    if (!getcwd(cwd, sizeof cwd))
        return 0;
    return snprintf(out, len, "%s/%s", cwd, path) < (int)len;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Assert err carries code and contains every given substring. */
#define ASSERT_ERR(rc, e, want, ...)                                                   \
    do {                                                                               \
        CU_ASSERT_EQUAL((rc), (want));                                                 \
        CU_ASSERT_EQUAL((e).code, (want));                                             \
        const char *subs_[] = {__VA_ARGS__, NULL};                                     \
        for (int q_ = 0; subs_[q_]; q_++)                                              \
            if (!strstr((e).msg, subs_[q_])) {                                         \
                printf("\n  message \"%s\" lacks \"%s\"\n", (e).msg, subs_[q_]);       \
                CU_FAIL("error message lacks an expected substring");                  \
            }                                                                          \
    } while (0)

/* ------------------------------------------------------------------ */
/* a small data set: 3 regions, 3 inputs, 8 scans, TR = 2              */

#define FX_V 8
#define FX_TR 2.0

static double fx_y(int t, int region) { return sin(0.7 * t + region) + 0.1 * region; }

static void fixture_files(const char *dir)
{
    char buf[4096];
    size_t k = 0;
    /* columns in another order than "regions", plus an extra one */
    k += (size_t)snprintf(buf + k, sizeof buf - k, "SPC\tV1\textra\tV5\n");
    for (int t = 0; t < FX_V; t++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%.17g\t%.17g\t%d\t%.17g\n", fx_y(t, 2),
                              fx_y(t, 0), t, fx_y(t, 1));
    write_text(dir, "ts.tsv", buf);
    k = 0;
    for (int t = 0; t < FX_V; t++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "1,%d\n", t - 4);
    write_text(dir, "conf.csv", buf);
    write_text(dir, "events.tsv",
               "onset\tduration\ttrial_type\tresponse_time\n"
               "0\t4\tPhotic\t0.5\n"
               "4\t2\tMotion\tn/a\n"
               "8\t2\tAttention\tn/a\n"
               "9\t1\tAttention\tn/a\n"
               "3\t1\tButtonPress\tn/a\n"
               "14\t10\tPhotic\tn/a\n");
}

static const char *BASE_SPEC =
    "{\"TR\": 2.0, \"TE\": 0.04, \"timeseries\": \"ts.tsv\", \"regions\": [\"V1\", \"V5\", \"SPC\"],"
    " \"confounds\": \"conf.csv\", \"events\": \"events.tsv\","
    " \"inputs\": [\"Photic\", \"Motion\", \"Attention\"],"
    " \"a\": [[1,1,0],[1,1,1],[0,1,1]],"
    " \"b\": {\"Motion\": [[0,0,0],[1,0,0],[0,0,0]], \"Attention\": [[0,0,0],[1,0,0],[0,0,0]]},"
    " \"c\": [[1,0,0],[0,0,0],[0,0,0]],"
    " \"delays\": [1, 1, 0.5], \"options\": {\"maxit\": 64, \"centre\": true, \"hE\": 7}}";

static const char *EDGE_SPEC =
    "{\"TR\": 2.0, \"TE\": 0.04, \"timeseries\": \"ts.tsv\", \"regions\": [\"V1\", \"V5\", \"SPC\"],"
    " \"confounds\": \"conf.csv\", \"events\": \"events.tsv\","
    " \"inputs\": [\"Photic\", \"Motion\", \"Attention\"],"
    " \"a\": [\"V1 -> V5\", \"V5 -> V1\", \"V5->SPC\", \"SPC -> V5\"],"
    " \"b\": {\"Motion\": [\"V1 -> V5\"], \"Attention\": [\"V1 -> V5\"]},"
    " \"c\": {\"Photic\": [\"V1\"]},"
    " \"delays\": [1, 1, 0.5], \"options\": {\"maxit\": 64, \"centre\": true, \"hE\": 7}}";

/* Write spec (a JSON value) as dir/spec.json and load it. */
static int load_json_spec(const char *dir, json_t *spec, dcm_problem **P, dcm_error *e)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/spec.json", dir);
    CU_ASSERT_EQUAL(json_dump_file(spec, p, JSON_INDENT(1)), 0);
    memset(e, 0, sizeof *e);
    return io_spec_load(p, P, e);
}

/* Load BASE_SPEC with one key replaced (value given as JSON text; NULL
 * deletes the key) in a fresh fixture; returns the code, fills e. */
static int load_variant(const char *base, const char *key, const char *value, dcm_error *e)
{
    char dir[256];
    CU_ASSERT_FATAL(make_tmpdir(dir, sizeof dir));
    fixture_files(dir);
    json_t *spec = json_loads(base, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(spec);
    if (key) {
        if (value) {
            json_error_t je;
            json_t *v = json_loads(value, JSON_DECODE_ANY, &je);
            CU_ASSERT_PTR_NOT_NULL_FATAL(v);
            json_object_set_new(spec, key, v);
        } else {
            json_object_del(spec, key);
        }
    }
    dcm_problem *P = NULL;
    int rc = load_json_spec(dir, spec, &P, e);
    if (rc == DCM_OK)
        dcm_problem_free(P);
    else
        CU_ASSERT_PTR_NULL(P);
    json_decref(spec);
    remove_tree(dir);
    return rc;
}

/* ------------------------------------------------------------------ */
/* TSV                                                                  */

static void test_tsv_read(void)
{
    char dir[256];
    CU_ASSERT_FATAL(make_tmpdir(dir, sizeof dir));
    char p[512];
    dcm_error e = {0};
    io_table t;

    write_text(dir, "h.tsv", "a\tb\n1\t2.5\n\n-3e-2\t4\r\n");
    snprintf(p, sizeof p, "%s/h.tsv", dir);
    CU_ASSERT_EQUAL_FATAL(io_tsv_read(p, &t, &e), DCM_OK);
    CU_ASSERT_EQUAL(t.rows, 2);
    CU_ASSERT_EQUAL(t.cols, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t.names);
    CU_ASSERT_STRING_EQUAL(t.names[1], "b");
    CU_ASSERT_EQUAL(io_table_find(&t, "b"), 1);
    CU_ASSERT_EQUAL(io_table_find(&t, "c"), -1);
    CU_ASSERT_EQUAL(t.data[0], 1.0);
    CU_ASSERT_EQUAL(t.data[1], -3e-2);
    CU_ASSERT_EQUAL(t.data[2], 2.5);
    CU_ASSERT_EQUAL(t.data[3], 4.0);
    CU_ASSERT_EQUAL(t.line[1], 4);
    io_table_free(&t);

    write_text(dir, "n.csv", "1,2,3\n4,5,6\n");
    snprintf(p, sizeof p, "%s/n.csv", dir);
    CU_ASSERT_EQUAL_FATAL(io_tsv_read(p, &t, &e), DCM_OK);
    CU_ASSERT_PTR_NULL(t.names);
    CU_ASSERT_EQUAL(t.rows, 2);
    CU_ASSERT_EQUAL(t.cols, 3);
    CU_ASSERT_EQUAL(t.data[1 + 2 * 2], 6.0);
    io_table_free(&t);

    write_text(dir, "one.tsv", "7\n8\n");
    snprintf(p, sizeof p, "%s/one.tsv", dir);
    CU_ASSERT_EQUAL_FATAL(io_tsv_read(p, &t, &e), DCM_OK);
    CU_ASSERT_EQUAL(t.cols, 1);
    CU_ASSERT_EQUAL(t.data[1], 8.0);
    io_table_free(&t);
    remove_tree(dir);
}

static void test_tsv_errors(void)
{
    char dir[256];
    CU_ASSERT_FATAL(make_tmpdir(dir, sizeof dir));
    char p[512];
    dcm_error e = {0};
    io_table t;
    int rc;

    write_text(dir, "ragged.tsv", "x\ty\n1\t2\n3\t4\n5\n");
    snprintf(p, sizeof p, "%s/ragged.tsv", dir);
    rc = io_tsv_read(p, &t, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "ragged.tsv", "line 4", "1 columns", "has 2");

    write_text(dir, "nan.tsv", "x\ty\n1\t2\n3\tnan\n");
    snprintf(p, sizeof p, "%s/nan.tsv", dir);
    rc = io_tsv_read(p, &t, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "nan.tsv", "line 3", "column 2 (\"y\")", "\"nan\"", "not finite");

    write_text(dir, "inf.csv", "1,-Inf\n");
    snprintf(p, sizeof p, "%s/inf.csv", dir);
    rc = io_tsv_read(p, &t, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "line 1", "column 2", "not finite");

    write_text(dir, "big.csv", "1,1e999\n");
    snprintf(p, sizeof p, "%s/big.csv", dir);
    rc = io_tsv_read(p, &t, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "line 1", "not finite");

    write_text(dir, "text.tsv", "x\ty\n1\t2\n3\tabc\n");
    snprintf(p, sizeof p, "%s/text.tsv", dir);
    rc = io_tsv_read(p, &t, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "line 3", "column 2", "\"abc\" is not a number");

    write_text(dir, "emptycell.tsv", "1\t\t3\n");
    snprintf(p, sizeof p, "%s/emptycell.tsv", dir);
    rc = io_tsv_read(p, &t, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "line 1", "column 2", "empty cell");

    write_text(dir, "mixed.tsv", "1\tb\n1\t2\n");
    snprintf(p, sizeof p, "%s/mixed.tsv", dir);
    rc = io_tsv_read(p, &t, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "line 1", "mixes names");

    write_text(dir, "empty.tsv", "\n  \n");
    snprintf(p, sizeof p, "%s/empty.tsv", dir);
    rc = io_tsv_read(p, &t, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "empty.tsv", "empty");

    write_text(dir, "hdr.tsv", "x\ty\n");
    snprintf(p, sizeof p, "%s/hdr.tsv", dir);
    rc = io_tsv_read(p, &t, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "no data rows");

    snprintf(p, sizeof p, "%s/absent.tsv", dir);
    rc = io_tsv_read(p, &t, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "cannot open", "absent.tsv");

    double x = 0;
    CU_ASSERT_EQUAL(io_parse_number(" 1.5 ", &x), 0);
    CU_ASSERT_EQUAL(x, 1.5);
    CU_ASSERT_EQUAL(io_parse_number("NaN", &x), 2);
    CU_ASSERT_EQUAL(io_parse_number("infinity", &x), 2);
    CU_ASSERT_EQUAL(io_parse_number("1.5x", &x), 1);
    CU_ASSERT_EQUAL(io_parse_number("n/a", &x), 1);
    remove_tree(dir);
}

/* The reader's fast path for plain decimals must give strtod's double, bit
 * for bit, and leave everything else (hex, overflow, words, junk) to the
 * checks behind it. */
static void test_parse_number_as_strtod(void)
{
    static const char *fmts[] = {"%.*f", "%.*e", "%.*g", "%.*E"};
    unsigned long long s = 12345;
    int mismatches = 0, failures = 0;
    for (int i = 0; i < 200000; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(s >> 11) / 9007199254740992.0 - 0.5;
        int e = (int)((s >> 3) % 48) - 24, prec = (int)((s >> 20) % 18);
        char b[64];
        snprintf(b, sizeof b, fmts[i % 4], prec, u * pow(10.0, e));
        double x = -1, y = strtod(b, NULL);
        if (io_parse_number(b, &x) != 0)
            failures++;
        else if (memcmp(&x, &y, sizeof x) != 0)
            mismatches++;
    }
    CU_ASSERT_EQUAL(failures, 0);
    CU_ASSERT_EQUAL(mismatches, 0);
    const char *same[] = {"-0", "+.5", "1.", "00012.5000", "0x10", "1e-400", "123456789012345678",
                          "0.1234567890123456789", "9007199254740993", "1e22", "1e23", "4.9e-324",
                          "0.000000000000000000000000001", " 2.5e+3\t"};
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        double x = -1, y = strtod(same[i], NULL);
        CU_ASSERT_EQUAL(io_parse_number(same[i], &x), 0);
        CU_ASSERT_EQUAL(memcmp(&x, &y, sizeof x), 0);
    }
    double x = 7;
    CU_ASSERT_EQUAL(io_parse_number("1e400", &x), 2);
    CU_ASSERT_EQUAL(io_parse_number("-inf", &x), 2);
    CU_ASSERT_EQUAL(io_parse_number("1e", &x), 1);
    CU_ASSERT_EQUAL(io_parse_number("1e+", &x), 1);
    CU_ASSERT_EQUAL(io_parse_number(".", &x), 1);
    CU_ASSERT_EQUAL(io_parse_number("1,2", &x), 1);
    CU_ASSERT_EQUAL(io_parse_number("--1", &x), 1);
    CU_ASSERT_EQUAL(io_parse_number("1.5 2", &x), 1);
    CU_ASSERT_EQUAL(x, 7);
}

static void test_tsv_write_atomic(void)
{
    char dir[256];
    CU_ASSERT_FATAL(make_tmpdir(dir, sizeof dir));
    char p[512];
    dcm_error e = {0};
    const double data[6] = {1.0 / 3.0, -2e-300, 5, 1e300, 0.1, -7};
    const char *names[3] = {"a", "b", "c"};
    snprintf(p, sizeof p, "%s/out.tsv", dir);
    CU_ASSERT_EQUAL_FATAL(io_tsv_write(p, 2, 3, data, names, &e), DCM_OK);
    CU_ASSERT_EQUAL(count_entries(dir, ".tmp."), 0);
    io_table t;
    CU_ASSERT_EQUAL_FATAL(io_tsv_read(p, &t, &e), DCM_OK);
    CU_ASSERT_EQUAL(t.rows, 2);
    CU_ASSERT_EQUAL(t.cols, 3);
    CU_ASSERT_STRING_EQUAL(t.names[2], "c");
    CU_ASSERT_EQUAL(memcmp(t.data, data, sizeof data), 0);
    io_table_free(&t);
    /* overwrite in place, without header */
    CU_ASSERT_EQUAL_FATAL(io_tsv_write(p, 3, 2, data, NULL, &e), DCM_OK);
    CU_ASSERT_EQUAL_FATAL(io_tsv_read(p, &t, &e), DCM_OK);
    CU_ASSERT_PTR_NULL(t.names);
    CU_ASSERT_EQUAL(t.rows, 3);
    CU_ASSERT_EQUAL(memcmp(t.data, data, sizeof data), 0);
    io_table_free(&t);
    CU_ASSERT_EQUAL(count_entries(dir, ""), 1);

    /* abort leaves nothing; a failed open leaves nothing */
    io_atomic a;
    snprintf(p, sizeof p, "%s/aborted.tsv", dir);
    CU_ASSERT_EQUAL_FATAL(io_atomic_open(&a, p, &e), DCM_OK);
    fputs("partial", a.fp);
    /* unnamed (O_TMPFILE) while writing: nothing visible; else PATH.tmp.* */
    CU_ASSERT_EQUAL(count_entries(dir, "aborted.tsv.tmp."), a.unnamed ? 0 : 1);
    io_atomic_abort(&a);
    CU_ASSERT_EQUAL(count_entries(dir, "aborted"), 0);
    snprintf(p, sizeof p, "%s/missing-dir/x.tsv", dir);
    int rc = io_tsv_write(p, 2, 3, data, names, &e);
    ASSERT_ERR(rc, e, DCM_ERR_SYSTEM, "missing-dir/x.tsv");
    CU_ASSERT_FALSE(file_exists(p));
    CU_ASSERT_EQUAL(count_entries(dir, ""), 1);
    remove_tree(dir);
}

/* ------------------------------------------------------------------ */
/* events                                                               */

static void test_events_reference(void)
{
    char epath[512], upath[512];
    if (!test_shared_path("datasets/attention/events.tsv", epath, sizeof epath) ||
        !test_shared_path("datasets/attention/inputs_microtime.tsv", upath, sizeof upath))
        return;
    const int v = 360, m = 3, nu = v * 16;
    char *names[3] = {"Photic", "Motion", "Attention"};
    double *u = calloc((size_t)nu * m, sizeof(double));
    dcm_error e = {0};
    CU_ASSERT_EQUAL_FATAL(io_events_to_microtime(epath, 3.22, v, m, names, u, NULL, &e), DCM_OK);
    io_table ref;
    CU_ASSERT_EQUAL_FATAL(io_tsv_read(upath, &ref, &e), DCM_OK);
    CU_ASSERT_EQUAL_FATAL(ref.rows, nu);
    CU_ASSERT_EQUAL_FATAL(ref.cols, m);
    int mismatches = 0;
    for (int t = 0; t < nu; t++)
        for (int j = 0; j < m; j++)
            if (u[t * m + j] != ref.data[t + j * nu]) {
                if (mismatches++ < 5)
                    printf("\n  bin %d input %s: ours %g, SPM %g", t, names[j], u[t * m + j],
                           ref.data[t + j * nu]);
            }
    CU_ASSERT_EQUAL(mismatches, 0);
    io_table_free(&ref);
    free(u);
}

static void test_events_rules(void)
{
    char dir[256];
    CU_ASSERT_FATAL(make_tmpdir(dir, sizeof dir));
    fixture_files(dir);
    char p[512];
    snprintf(p, sizeof p, "%s/events.tsv", dir);
    char *names[3] = {"Photic", "Motion", "Attention"};
    const int m = 3, nu = FX_V * 16;
    double u[FX_V * 16 * 3];
    dcm_error e = {0};
    CU_ASSERT_EQUAL_FATAL(io_events_to_microtime(p, FX_TR, FX_V, m, names, u, NULL, &e), DCM_OK);
    /* dt = 0.125: Photic 0..4 s -> bins 0..32; 14..24 s -> 112..127 (clipped) */
    for (int t = 0; t < nu; t++) {
        double want = (t <= 32 || t >= 112) ? 1.0 : 0.0;
        CU_ASSERT_EQUAL(u[t * m + 0], want);
    }
    /* Motion 4..6 s -> bins 32..48 */
    CU_ASSERT_EQUAL(u[31 * m + 1], 0.0);
    CU_ASSERT_EQUAL(u[32 * m + 1], 1.0);
    CU_ASSERT_EQUAL(u[48 * m + 1], 1.0);
    CU_ASSERT_EQUAL(u[49 * m + 1], 0.0);
    /* Attention 8..10 s and 9..10 s overlap and add: bins 72..80 are 2 */
    CU_ASSERT_EQUAL(u[63 * m + 2], 0.0);
    CU_ASSERT_EQUAL(u[64 * m + 2], 1.0);
    CU_ASSERT_EQUAL(u[72 * m + 2], 2.0);
    CU_ASSERT_EQUAL(u[80 * m + 2], 2.0);
    CU_ASSERT_EQUAL(u[81 * m + 2], 0.0);

    /* an input without events */
    char *names2[2] = {"Photic", "Rest"};
    double u2[FX_V * 16 * 2];
    int rc = io_events_to_microtime(p, FX_TR, FX_V, 2, names2, u2, NULL, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "input \"Rest\" has no events", "\"ButtonPress\"");

    /* negative onset / duration, bad number, missing column */
    write_text(dir, "neg.tsv", "onset\tduration\ttrial_type\n0\t1\tPhotic\n-1\t1\tPhotic\n");
    snprintf(p, sizeof p, "%s/neg.tsv", dir);
    rc = io_events_to_microtime(p, FX_TR, FX_V, 1, names, u, NULL, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "neg.tsv", "line 3", "onset", "negative");
    write_text(dir, "negd.tsv", "trial_type\tonset\tduration\nPhotic\t0\t-2\n");
    snprintf(p, sizeof p, "%s/negd.tsv", dir);
    rc = io_events_to_microtime(p, FX_TR, FX_V, 1, names, u, NULL, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "line 2", "duration", "negative");
    write_text(dir, "bad.tsv", "onset\tduration\ttrial_type\n0\tn/a\tPhotic\n");
    snprintf(p, sizeof p, "%s/bad.tsv", dir);
    rc = io_events_to_microtime(p, FX_TR, FX_V, 1, names, u, NULL, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "line 2", "\"n/a\" is not a number");
    write_text(dir, "nohdr.tsv", "0\t1\tPhotic\n");
    snprintf(p, sizeof p, "%s/nohdr.tsv", dir);
    rc = io_events_to_microtime(p, FX_TR, FX_V, 1, names, u, NULL, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "line 1", "onset", "trial_type");
    remove_tree(dir);
}

/* ------------------------------------------------------------------ */
/* specs                                                                */

static void check_fixture_problem(const dcm_problem *P)
{
    const int n = 3, m = 3;
    const model_dcm *M = P->M;
    CU_ASSERT_EQUAL(P->n, n);
    CU_ASSERT_EQUAL(P->m, m);
    CU_ASSERT_EQUAL(P->v, FX_V);
    CU_ASSERT_EQUAL(M->nu, FX_V * 16);
    CU_ASSERT_STRING_EQUAL(P->region_names[1], "V5");
    CU_ASSERT_STRING_EQUAL(P->input_names[2], "Attention");
    CU_ASSERT_EQUAL(M->TR, 2.0);
    CU_ASSERT_EQUAL(M->TE, 0.04);
    CU_ASSERT_EQUAL(M->delays[0], 1.0);
    CU_ASSERT_EQUAL(M->delays[2], 0.5);
    CU_ASSERT_EQUAL(P->maxit, 64);
    CU_ASSERT_EQUAL(P->centre, 1);
    CU_ASSERT_EQUAL(P->hE, 7.0);
    CU_ASSERT_EQUAL(P->hC, 1.0 / 128.0);
    CU_ASSERT_EQUAL(M->nonlinear, 0);
    CU_ASSERT_EQUAL(M->two_state, 0);
    CU_ASSERT_EQUAL(M->integrator, MODEL_INT_BILINEAR);
    /* Y picked by name */
    int yok = 1;
    for (int i = 0; i < n; i++)
        for (int t = 0; t < FX_V; t++)
            yok &= P->Y[t + i * FX_V] == fx_y(t, i);
    CU_ASSERT_TRUE(yok);
    /* confounds: CSV without header */
    CU_ASSERT_EQUAL(P->nx0, 2);
    CU_ASSERT_EQUAL(P->X0[3], 1.0);
    CU_ASSERT_EQUAL(P->X0[FX_V + 0], -4.0);
    CU_ASSERT_EQUAL(P->X0[FX_V + 7], 3.0);
    /* switches column-major: a[i + j*n], row i = target, column j = source */
    const double a[9] = {1, 1, 0, 1, 1, 1, 0, 1, 1};
    CU_ASSERT_EQUAL(memcmp(M->a, a, sizeof a), 0);
    CU_ASSERT_EQUAL(M->a[1 + 0 * 3], 1.0);   /* V1 -> V5 */
    CU_ASSERT_EQUAL(M->a[2 + 0 * 3], 0.0);   /* V1 -> SPC absent */
    for (int k = 0; k < m; k++)
        for (int q = 0; q < n * n; q++)
            CU_ASSERT_EQUAL(M->b[k * n * n + q], (k >= 1 && q == 1) ? 1.0 : 0.0);
    for (int q = 0; q < n * m; q++)
        CU_ASSERT_EQUAL(M->c[q], q == 0 ? 1.0 : 0.0);
    /* inputs from the events */
    CU_ASSERT_EQUAL(M->u[32 * 3 + 0], 1.0);
    CU_ASSERT_EQUAL(M->u[33 * 3 + 0], 0.0);
    CU_ASSERT_EQUAL(M->u[72 * 3 + 2], 2.0);
    CU_ASSERT_PTR_NOT_NULL(P->source);
    if (P->source)
        CU_ASSERT_PTR_NOT_NULL(strstr(P->source, "spec.json"));
    CU_ASSERT_EQUAL(M->L.np, 9 + 27 + 9 + 3 + 2);
}

static void test_spec_load(void)
{
    char dir[256];
    CU_ASSERT_FATAL(make_tmpdir(dir, sizeof dir));
    fixture_files(dir);
    json_t *spec = json_loads(BASE_SPEC, 0, NULL);
    dcm_problem *P = NULL;
    dcm_error e = {0};
    int rc = load_json_spec(dir, spec, &P, &e);
    if (rc)
        printf("\n  %s\n", e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, DCM_OK);
    check_fixture_problem(P);
    CU_ASSERT_EQUAL(dcm_problem_validate(P, &e), DCM_OK);
    dcm_problem_free(P);

    /* defaults: no delays, confounds or options; micro-time inputs file */
    json_object_del(spec, "delays");
    json_object_del(spec, "confounds");
    json_object_del(spec, "options");
    json_object_del(spec, "events");
    json_object_set_new(spec, "inputs_microtime", json_string("u.tsv"));
    char buf[16 * FX_V * 8];
    size_t k = 0;
    for (int t = 0; t < 16 * FX_V; t++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%d\t0\t%g\n", t < 5, t * 0.5);
    write_text(dir, "u.tsv", buf);
    rc = load_json_spec(dir, spec, &P, &e);
    if (rc)
        printf("\n  %s\n", e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, DCM_OK);
    CU_ASSERT_EQUAL(P->M->delays[1], 1.0);   /* TR/2 */
    CU_ASSERT_EQUAL(P->nx0, 0);
    CU_ASSERT_PTR_NULL(P->X0);
    CU_ASSERT_EQUAL(P->maxit, 128);
    CU_ASSERT_EQUAL(P->hE, 6.0);
    CU_ASSERT_EQUAL(P->centre, 0);
    CU_ASSERT_EQUAL(P->M->u[4 * 3 + 0], 1.0);
    CU_ASSERT_EQUAL(P->M->u[5 * 3 + 0], 0.0);
    CU_ASSERT_EQUAL(P->M->u[7 * 3 + 2], 3.5);
    dcm_problem_free(P);

    /* wrong number of micro-time rows */
    write_text(dir, "u.tsv", "1\t0\t0\n");
    rc = load_json_spec(dir, spec, &P, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "u.tsv", "has 1 rows", "expected 128");
    json_decref(spec);
    remove_tree(dir);
}

static void test_spec_edges_equal_matrices(void)
{
    char dir[256];
    CU_ASSERT_FATAL(make_tmpdir(dir, sizeof dir));
    fixture_files(dir);
    json_t *s1 = json_loads(BASE_SPEC, 0, NULL), *s2 = json_loads(EDGE_SPEC, 0, NULL);
    dcm_problem *P1 = NULL, *P2 = NULL;
    dcm_error e = {0};
    CU_ASSERT_EQUAL_FATAL(load_json_spec(dir, s1, &P1, &e), DCM_OK);
    int rc = load_json_spec(dir, s2, &P2, &e);
    if (rc)
        printf("\n  %s\n", e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, DCM_OK);
    check_fixture_problem(P2);
    const int n = 3, m = 3;
    CU_ASSERT_EQUAL(memcmp(P1->M->a, P2->M->a, sizeof(double) * n * n), 0);
    CU_ASSERT_EQUAL(memcmp(P1->M->b, P2->M->b, sizeof(double) * n * n * m), 0);
    CU_ASSERT_EQUAL(memcmp(P1->M->c, P2->M->c, sizeof(double) * n * m), 0);
    dcm_problem_free(P1);
    dcm_problem_free(P2);

    /* d by edge list -> nonlinear model with n D slices */
    json_object_set_new(s2, "d", json_loads("{\"SPC\": [\"V1 -> V5\"]}", 0, NULL));
    json_object_set_new(json_object_get(s2, "options"), "integrator", json_string("ode"));
    rc = load_json_spec(dir, s2, &P2, &e);
    if (rc)
        printf("\n  %s\n", e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, DCM_OK);
    CU_ASSERT_EQUAL(P2->M->nonlinear, 1);
    CU_ASSERT_EQUAL(P2->M->L.nd, 3);
    CU_ASSERT_EQUAL(P2->M->integrator, MODEL_INT_ODE);
    for (int q = 0; q < n * n * n; q++)
        CU_ASSERT_EQUAL(P2->M->d[q], q == 2 * n * n + 1 + 0 * n ? 1.0 : 0.0);
    dcm_problem_free(P2);
    /* the same d as a matrix */
    json_object_set_new(s1, "d", json_loads("{\"SPC\": [[0,0,0],[1,0,0],[0,0,0]]}", 0, NULL));
    CU_ASSERT_EQUAL_FATAL(load_json_spec(dir, s1, &P1, &e), DCM_OK);
    CU_ASSERT_EQUAL(P1->M->d[2 * n * n + 1], 1.0);
    CU_ASSERT_EQUAL(P1->M->L.np, 9 + 27 + 9 + 27 + 3 + 2);
    dcm_problem_free(P1);
    json_decref(s1);
    json_decref(s2);
    remove_tree(dir);
}

static void test_spec_design_only(void)
{
    char dir[256];
    CU_ASSERT_FATAL(make_tmpdir(dir, sizeof dir));
    fixture_files(dir);
    json_t *spec = json_loads(EDGE_SPEC, 0, NULL);
    json_object_set_new(spec, "scans", json_integer(FX_V));
    json_object_set_new(spec, "timeseries", json_string("not-yet.tsv"));
    json_object_set_new(spec, "confounds", json_string("not-yet-either.tsv"));
    char p[512];
    snprintf(p, sizeof p, "%s/spec.json", dir);
    CU_ASSERT_EQUAL_FATAL(json_dump_file(spec, p, 0), 0);
    dcm_problem *P = NULL;
    dcm_error e = {0};
    int rc = io_spec_load_ex(p, IO_SPEC_DESIGN_ONLY, &P, &e);
    if (rc)
        printf("\n  %s\n", e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, DCM_OK);
    CU_ASSERT_EQUAL(P->v, FX_V);
    CU_ASSERT_EQUAL(P->nx0, 0);
    CU_ASSERT_EQUAL(test_max_abs(P->Y, FX_V * 3), 0.0);
    CU_ASSERT_EQUAL(P->M->u[72 * 3 + 2], 2.0);
    dcm_problem_free(P);
    /* a full load needs the data */
    rc = io_spec_load(p, &P, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "cannot open", "not-yet.tsv");
    /* "scans" must agree with the time series */
    json_object_set_new(spec, "timeseries", json_string("ts.tsv"));
    json_object_set_new(spec, "confounds", json_string("conf.csv"));
    json_object_set_new(spec, "scans", json_integer(9));
    rc = load_json_spec(dir, spec, &P, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"scans\" is 9", "has 8 rows");
    json_object_set_new(spec, "scans", json_string("8"));
    rc = load_json_spec(dir, spec, &P, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"scans\" must be a whole number");
    json_decref(spec);
    remove_tree(dir);
}

static void test_spec_attention(void)
{
    char ts[512], conf[512], ev[512], up[512];
    if (!test_shared_path("datasets/attention/timeseries.tsv", ts, sizeof ts) ||
        !test_shared_path("datasets/attention/confounds.tsv", conf, sizeof conf) ||
        !test_shared_path("datasets/attention/events.tsv", ev, sizeof ev) ||
        !test_shared_path("datasets/attention/inputs_microtime.tsv", up, sizeof up))
        return;
    char dir[256], abs_ts[4096], abs_conf[4096], abs_ev[4096];
    CU_ASSERT_FATAL(abs_path(ts, abs_ts, sizeof abs_ts) && abs_path(conf, abs_conf, sizeof abs_conf) &&
                    abs_path(ev, abs_ev, sizeof abs_ev));
    CU_ASSERT_FATAL(make_tmpdir(dir, sizeof dir));
    json_t *spec = json_pack(
        "{s:f, s:f, s:s, s:[sss], s:s, s:s, s:[sss], s:[[iii][iii][iii]], "
        "s:{s:[s], s:[s]}, s:{s:[s]}, s:[fff]}",
        "TR", 3.22, "TE", 0.04, "timeseries", abs_ts, "regions", "V1", "V5", "SPC", "confounds",
        abs_conf, "events", abs_ev, "inputs", "Photic", "Motion", "Attention", "a", 1, 1, 0, 1, 1,
        1, 0, 1, 1, "b", "Motion", "V1 -> V5", "Attention", "V1 -> V5", "c", "Photic", "V1",
        "delays", 1.61, 1.61, 1.61);
    CU_ASSERT_PTR_NOT_NULL_FATAL(spec);
    dcm_problem *P = NULL;
    dcm_error e = {0};
    int rc = load_json_spec(dir, spec, &P, &e);
    if (rc)
        printf("\n  %s\n", e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, DCM_OK);
    CU_ASSERT_EQUAL(P->v, 360);
    CU_ASSERT_EQUAL(P->nx0, 19);
    CU_ASSERT_EQUAL(P->M->L.np, 50);
    io_table u, y;
    CU_ASSERT_EQUAL_FATAL(io_tsv_read(up, &u, &e), DCM_OK);
    CU_ASSERT_EQUAL_FATAL(io_tsv_read(ts, &y, &e), DCM_OK);
    int same = u.rows == P->M->nu;
    for (int t = 0; same && t < u.rows; t++)
        for (int j = 0; j < 3; j++)
            same &= P->M->u[t * 3 + j] == u.data[t + j * u.rows];
    CU_ASSERT_TRUE(same);
    CU_ASSERT_EQUAL(memcmp(P->Y, y.data, sizeof(double) * 360 * 3), 0);
    io_table_free(&u);
    io_table_free(&y);
    dcm_problem_free(P);
    json_decref(spec);
    remove_tree(dir);
}

static void test_spec_malformed_json(void)
{
    char dir[256];
    CU_ASSERT_FATAL(make_tmpdir(dir, sizeof dir));
    fixture_files(dir);
    write_text(dir, "spec.json", "{\"TR\": 2.0,\n \"TE\": 0.04,\n \"regions\": [\"V1\" \"V5\"]\n}\n");
    char p[512];
    snprintf(p, sizeof p, "%s/spec.json", dir);
    dcm_problem *P = (dcm_problem *)&p;   /* must be reset to NULL */
    dcm_error e = {0};
    int rc = io_spec_load(p, &P, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "spec.json:3:", "invalid JSON");
    CU_ASSERT_PTR_NULL(P);
    /* duplicate keys are rejected too */
    write_text(dir, "spec.json", "{\"TR\": 2.0, \"TR\": 3.0}");
    rc = io_spec_load(p, &P, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "spec.json:1:", "duplicate");
    snprintf(p, sizeof p, "%s/none.json", dir);
    rc = io_spec_load(p, &P, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "cannot open", "none.json");
    remove_tree(dir);
}

static void test_spec_missing_timeseries(void)
{
    dcm_error e;
    int rc = load_variant(BASE_SPEC, "timeseries", "\"nope.tsv\"", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "cannot open", "nope.tsv", "No such file");
}

static void test_spec_ragged_row(void)
{
    char dir[256];
    CU_ASSERT_FATAL(make_tmpdir(dir, sizeof dir));
    fixture_files(dir);
    write_text(dir, "ts.tsv", "V1\tV5\tSPC\n1\t2\t3\n4\t5\n7\t8\t9\n");
    json_t *spec = json_loads(BASE_SPEC, 0, NULL);
    dcm_problem *P = NULL;
    dcm_error e;
    int rc = load_json_spec(dir, spec, &P, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "ts.tsv", "line 3", "2 columns");
    CU_ASSERT_PTR_NULL(P);
    json_decref(spec);
    remove_tree(dir);
}

static void test_spec_nan_data(void)
{
    char dir[256];
    CU_ASSERT_FATAL(make_tmpdir(dir, sizeof dir));
    fixture_files(dir);
    write_text(dir, "ts.tsv", "V1\tV5\tSPC\n1\t2\t3\n4\tNaN\t6\n7\t8\t9\n");
    json_t *spec = json_loads(BASE_SPEC, 0, NULL);
    dcm_problem *P = NULL;
    dcm_error e;
    int rc = load_json_spec(dir, spec, &P, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "ts.tsv", "line 3", "column 2 (\"V5\")", "not finite");
    /* NaN in the confounds as well */
    fixture_files(dir);
    write_text(dir, "conf.csv", "1,0\n1,inf\n");
    rc = load_json_spec(dir, spec, &P, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "conf.csv", "line 2", "not finite");
    json_decref(spec);
    remove_tree(dir);
}

static void test_spec_confounds_length(void)
{
    char dir[256];
    CU_ASSERT_FATAL(make_tmpdir(dir, sizeof dir));
    fixture_files(dir);
    write_text(dir, "conf.csv", "1,0\n1,1\n1,2\n1,3\n1,4\n1,5\n1,6\n");
    json_t *spec = json_loads(BASE_SPEC, 0, NULL);
    dcm_problem *P = NULL;
    dcm_error e;
    int rc = load_json_spec(dir, spec, &P, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "conf.csv", "7 rows", "8 scans");
    json_decref(spec);
    remove_tree(dir);
}

static void test_spec_bad_tr(void)
{
    dcm_error e;
    int rc = load_variant(BASE_SPEC, "TR", "0", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "spec.json", "\"TR\" is 0", "positive");
    rc = load_variant(BASE_SPEC, "TR", "-3.2", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"TR\" is -3.2");
    rc = load_variant(BASE_SPEC, "TR", "\"3.22\"", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"TR\" must be a number", "not a string");
    rc = load_variant(BASE_SPEC, "TR", NULL, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "missing \"TR\"");
    rc = load_variant(BASE_SPEC, "TE", "-1", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"TE\" is -1");
    rc = load_variant(BASE_SPEC, "delays", "[1, 1, 2.5]", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"delays\" for region SPC is 2.5", "[0, TR]");
    rc = load_variant(BASE_SPEC, "delays", "[1, 1]", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"delays\" has 2 entries", "needs 3");
}

/* Issue 9: names are matched whole. A region name longer than any fixed
 * buffer must not be cut into another region's name (an edge of the
 * 300-character region used to be wired to the region named by its first
 * 255 characters). */
static void test_spec_names_whole(void)
{
    char dir[256];
    CU_ASSERT_FATAL(make_tmpdir(dir, sizeof dir));
    fixture_files(dir);
    char longer[301], prefix[256];
    memset(longer, 'R', 300);
    longer[300] = 0;
    memset(prefix, 'R', 255);
    prefix[255] = 0;
    json_t *spec = json_loads(BASE_SPEC, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(spec);
    json_object_del(spec, "timeseries");
    json_object_del(spec, "confounds");
    json_object_set_new(spec, "scans", json_integer(FX_V));
    json_object_set_new(spec, "regions", json_pack("[s, s, s]", prefix, longer, "SPC"));
    char edge[400];
    snprintf(edge, sizeof edge, "%s -> SPC", longer);
    json_object_set_new(spec, "a", json_pack("[s]", edge));
    json_object_del(spec, "b");
    json_object_set_new(spec, "c", json_pack("{s:[s]}", "Photic", prefix));
    char p[1024];
    snprintf(p, sizeof p, "%s/spec.json", dir);
    CU_ASSERT_EQUAL(json_dump_file(spec, p, 0), 0);
    dcm_problem *P = NULL;
    dcm_error e = {0, ""};
    CU_ASSERT_EQUAL_FATAL(io_spec_load_ex(p, IO_SPEC_DESIGN_ONLY, &P, &e), DCM_OK);
    CU_ASSERT_EQUAL(strlen(P->region_names[1]), 300);
    CU_ASSERT_EQUAL(P->M->a[2 + 1 * 3], 1.0);   /* longer -> SPC */
    CU_ASSERT_EQUAL(P->M->a[2 + 0 * 3], 0.0);   /* not prefix -> SPC */
    dcm_problem_free(P);
    json_decref(spec);
    remove_tree(dir);

    /* names that the parameter syntax ("B:Attention:V1->V5") cannot address */
    int rc = load_variant(BASE_SPEC, "regions", "[\"V1\", \"V5:left\", \"SPC\"]", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"regions\"[1] = \"V5:left\"", "may not contain ':'");
    rc = load_variant(BASE_SPEC, "regions", "[\"V1\", \"V5->x\", \"SPC\"]", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"regions\"[1]", "may not contain \"->\"");
    rc = load_variant(BASE_SPEC, "regions", "[\"V1\", \"V5 \", \"SPC\"]", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"regions\"[1]", "white space");
    rc = load_variant(BASE_SPEC, "inputs", "[\"Photic\", \"Motion\", \"Att:ention\"]", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"inputs\"[2] = \"Att:ention\"", "may not contain ':'");
    rc = load_variant(BASE_SPEC, "inputs", "[\"Photic\", \"\\tMotion\", \"Attention\"]", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"inputs\"[1]", "white space");
    /* the same rule for problems built in C (and the .mat loader) */
    dcm_problem *Q = dcm_problem_alloc(1, 1, 4, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(Q);
    Q->region_names[0] = strdup("A:B");
    Q->input_names[0] = strdup("u");
    rc = dcm_problem_validate(Q, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "region 1 is called \"A:B\"", "':'");
    dcm_problem_free(Q);
}

/* Issue 9: messages that say what is wrong. */
static void test_spec_messages(void)
{
    dcm_error e;
    /* a delay written with more digits than the TR is the TR */
    int rc = load_variant(BASE_SPEC, "delays", "[1, 2.0000001, 0.5]", &e);
    CU_ASSERT_EQUAL(rc, DCM_OK);
    if (rc)
        printf("\n  %s\n", e.msg);
    rc = load_variant(BASE_SPEC, "delays", "[1, 2.001, 0.5]", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "is 2.001 s", "[0, 2] s");
    /* maxit: the real bounds */
    rc = load_variant(BASE_SPEC, "options", "{\"maxit\": 1000001}", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"maxit\"", "from 1 to 1000000");
    rc = load_variant(BASE_SPEC, "options", "{\"maxit\": 0}", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"maxit\"", "from 1 to 1000000");
    /* TR in milliseconds */
    rc = load_variant(BASE_SPEC, "TR", "2000", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"TR\" is 2000", "looks like milliseconds", "write 2");
    rc = load_variant(BASE_SPEC, "TR", "31", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"TR\" is 31", "(0, 30]");

    /* a header of numbers: numeric region names, or no header at all */
    char dir[256];
    CU_ASSERT_FATAL(make_tmpdir(dir, sizeof dir));
    fixture_files(dir);
    char buf[2048];
    size_t k = (size_t)snprintf(buf, sizeof buf, "1\t2\t3\n");
    for (int t = 0; t < FX_V; t++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%g\t%g\t%g\n", fx_y(t, 0), fx_y(t, 1), fx_y(t, 2));
    write_text(dir, "num.tsv", buf);
    json_t *spec = json_loads(BASE_SPEC, 0, NULL);
    json_object_set_new(spec, "timeseries", json_string("num.tsv"));
    json_object_set_new(spec, "regions", json_pack("[s, s, s]", "1", "2", "3"));
    dcm_problem *P = NULL;
    rc = load_json_spec(dir, spec, &P, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "num.tsv", "3 of the region names (1, 2, 3) are numbers",
               "names that are not numbers");
    json_object_set_new(spec, "regions", json_pack("[s, s, s]", "V1", "V5", "SPC"));
    rc = load_json_spec(dir, spec, &P, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "num.tsv, line 1", "holds numbers, not a header",
               "V1, V5, SPC");
    json_decref(spec);
    remove_tree(dir);
}

static void test_spec_unknown_region(void)
{
    dcm_error e;
    int rc = load_variant(BASE_SPEC, "c", "{\"Photic\": [\"V2\"]}", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"c\"", "unknown region \"V2\"", "V1, V5, SPC");
    rc = load_variant(EDGE_SPEC, "a", "[\"V1 -> V4\"]", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"a\"[0]", "unknown region \"V4\"", "V1, V5, SPC");
    rc = load_variant(BASE_SPEC, "d", "{\"PFC\": [[0,0,0],[1,0,0],[0,0,0]]}", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"d\"", "unknown region \"PFC\"");
    rc = load_variant(BASE_SPEC, "regions", "[\"V1\", \"V5\", \"PFC\"]", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "ts.tsv", "no column \"PFC\"", "SPC, V1, extra, V5");
    rc = load_variant(EDGE_SPEC, "a", "[\"V1 => V5\"]", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"a\"[0]", "is not an edge", "FROM -> TO");
}

static void test_spec_unknown_input(void)
{
    dcm_error e;
    int rc = load_variant(BASE_SPEC, "b", "{\"Attn\": [[0,0,0],[1,0,0],[0,0,0]]}", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"b\"", "unknown input \"Attn\"", "Photic, Motion, Attention");
    rc = load_variant(EDGE_SPEC, "c", "{\"Visual\": [\"V1\"]}", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"c\"", "unknown input \"Visual\"");
    rc = load_variant(EDGE_SPEC, "inputs", "[\"Photic\", \"Motion\", \"Attention\", \"Rest\"]", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "events.tsv", "input \"Rest\" has no events");
}

static void test_spec_no_driving_input(void)
{
    dcm_error e;
    int rc = load_variant(BASE_SPEC, "c", "[[0,0,0],[0,0,0],[0,0,0]]", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "spec.json", "no driving input: every entry of \"c\" is 0");
    rc = load_variant(EDGE_SPEC, "c", "{}", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "no driving input");
}

static void test_spec_impossible_connection(void)
{
    dcm_error e;
    int rc = load_variant(EDGE_SPEC, "b", "{\"Attention\": [\"V1 -> SPC\"]}", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "impossible connectivity", "Attention", "V1 -> SPC", "\"a\"");
    rc = load_variant(BASE_SPEC, "d", "{\"V5\": [\"SPC -> V1\"]}", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "impossible connectivity", "region V5", "SPC -> V1", "\"d\"");
    /* self-modulation needs no entry in "a" */
    rc = load_variant(EDGE_SPEC, "b", "{\"Attention\": [\"SPC -> SPC\"]}", &e);
    CU_ASSERT_EQUAL(rc, DCM_OK);
}

static void test_spec_unknown_key(void)
{
    dcm_error e;
    int rc = load_variant(BASE_SPEC, "optoins", "{}", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "spec.json", "unknown key \"optoins\"",
               "did you mean \"options\"?");
    rc = load_variant(BASE_SPEC, "options", "{\"max_it\": 3}", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "unknown key \"max_it\" in \"options\"", "\"maxit\"");
    rc = load_variant(BASE_SPEC, "options", "{\"integrator\": \"euler\"}", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"integrator\" must be \"bilinear\" or \"ode\"");
    rc = load_variant(BASE_SPEC, "options", "{\"two_state\": \"yes\"}", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"two_state\" must be true or false");
}

static void test_spec_matrix_size(void)
{
    dcm_error e;
    int rc = load_variant(BASE_SPEC, "a", "[[1,1],[1,1]]", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"a\" must be a 3x3 matrix", "2 rows");
    rc = load_variant(BASE_SPEC, "c", "[[1,0],[0,0],[0,0]]", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"c\" must be a 3x3 matrix", "row 0 has 2 entries");
    rc = load_variant(BASE_SPEC, "b", "{\"Motion\": [[0,0,0,0],[1,0,0,0],[0,0,0,0]]}", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"b\".\"Motion\" must be a 3x3 matrix");
    rc = load_variant(BASE_SPEC, "a", "[[1,1,0],[1,\"x\",1],[0,1,1]]", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"a\"[1][1] must be a number");
    rc = load_variant(BASE_SPEC, "a", "7", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"a\" must be a 3x3 matrix", "not a number");
    rc = load_variant(BASE_SPEC, "a", "[[1,1,0],[1,1,1],[0,1,-1]]", &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "switch a", "SPC -> SPC");
}

/* ------------------------------------------------------------------ */
/* validation of a hand-made problem                                    */

static void test_problem_validate(void)
{
    dcm_problem *P = dcm_problem_alloc(2, 1, 4, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(P);
    CU_ASSERT_EQUAL(P->maxit, 128);
    CU_ASSERT_EQUAL(P->hE, 6.0);
    CU_ASSERT_EQUAL(P->hC, 1.0 / 128.0);
    CU_ASSERT_EQUAL(P->centre, 0);
    P->region_names[0] = strdup("A");
    P->region_names[1] = strdup("B");
    P->input_names[0] = strdup("u");
    P->M->TR = 2;
    P->M->TE = 0.03;
    P->M->a[0] = P->M->a[3] = 1;
    P->M->c[0] = 1;
    dcm_error e = {0};
    CU_ASSERT_EQUAL(dcm_problem_validate(P, &e), DCM_OK);
    P->M->delays[1] = 2.5;
    ASSERT_ERR(dcm_problem_validate(P, &e), e, DCM_ERR_INPUT, "\"delays\" for region B");
    P->M->delays[1] = 0;
    P->Y[5] = NAN;
    ASSERT_ERR(dcm_problem_validate(P, &e), e, DCM_ERR_INPUT, "region B at scan 2");
    P->Y[5] = 0;
    P->M->u[7] = INFINITY;
    ASSERT_ERR(dcm_problem_validate(P, &e), e, DCM_ERR_INPUT, "input u at micro-time bin 8");
    P->M->u[7] = 0;
    P->M->b[1] = 1;   /* A -> B modulated, but a[1] is off */
    ASSERT_ERR(dcm_problem_validate(P, &e), e, DCM_ERR_INPUT, "impossible connectivity",
               "input u modulates A -> B");
    P->M->a[1] = 1;
    CU_ASSERT_EQUAL(dcm_problem_validate(P, &e), DCM_OK);
    P->M->TR = NAN;
    ASSERT_ERR(dcm_problem_validate(P, &e), e, DCM_ERR_INPUT, "\"TR\" is nan");
    P->M->TR = 2;
    free(P->input_names[0]);
    P->input_names[0] = NULL;
    ASSERT_ERR(dcm_problem_validate(P, &e), e, DCM_ERR_INPUT, "input 1 has no name");
    CU_ASSERT_EQUAL(dcm_error_set(NULL, DCM_ERR_USAGE, "x %d", 1), DCM_ERR_USAGE);
    dcm_problem_free(P);
    dcm_problem_free(NULL);
    dcm_result_free(NULL);
}

/* ------------------------------------------------------------------ */
/* results                                                              */

/* A 2-region, 2-input bilinear problem and a fake result for it. */
static dcm_problem *small_problem(void)
{
    dcm_problem *P = dcm_problem_alloc(2, 2, 5, 0);
    P->region_names[0] = strdup("left");
    P->region_names[1] = strdup("right");
    P->input_names[0] = strdup("stim");
    P->input_names[1] = strdup("ctx");
    P->M->TR = 2.5;
    P->M->TE = 0.03;
    P->M->delays[0] = P->M->delays[1] = 1.25;
    for (int k = 0; k < 4; k++)
        P->M->a[k] = 1;
    P->M->b[4 + 1] = 1;   /* ctx on left -> right */
    P->M->c[0] = 1;
    P->source = strdup("small.json");
    return P;
}

static dcm_result *fake_result(const dcm_problem *P)
{
    const int np = P->M->L.np, n = P->n, v = P->v;
    dcm_result *R = calloc(1, sizeof *R);
    R->np = np;
    R->n = n;
    R->v = v;
    R->pE = malloc(sizeof(double) * np);
    R->pV = malloc(sizeof(double) * np);
    R->Ep = malloc(sizeof(double) * np);
    R->Pp = malloc(sizeof(double) * np);
    R->Cp = calloc((size_t)np * np, sizeof(double));
    model_dcm_priors(P->M, R->pE, R->pV);
    for (int i = 0; i < np; i++) {
        R->Ep[i] = R->pV[i] ? sin(i + 1.0) / 3.0 : R->pE[i];
        R->Pp[i] = R->pV[i] ? 0.5 + 0.4 * cos(i) : NAN;
        for (int j = 0; j < np; j++)
            if (R->pV[i] && R->pV[j])
                R->Cp[i * np + j] = (i == j ? 0.01 : 1e-4 / (1 + abs(i - j))) * (1 + i * 1e-3);
    }
    for (int i = 0; i < np; i++)
        for (int j = 0; j < i; j++)
            R->Cp[i * np + j] = R->Cp[j * np + i];
    R->Eh = malloc(sizeof(double) * n);
    R->Eh[0] = 2.5;
    R->Eh[1] = 1.0 / 7.0;
    R->F = -1234.5678901234567;
    R->L[0] = -1000.1;
    R->L[1] = -200.2;
    R->L[2] = -34.3;
    R->iterations = 17;
    R->converged = 1;
    R->ntrace = 3;
    R->F_trace = malloc(sizeof(double) * 3);
    R->F_trace[0] = -2000;
    R->F_trace[1] = -1500;
    R->F_trace[2] = R->F;
    R->scale = 0.377;
    R->y_obs = malloc(sizeof(double) * v * n);
    R->y_pred = malloc(sizeof(double) * v * n);
    for (int k = 0; k < v * n; k++) {
        R->y_obs[k] = cos(k * 0.3);
        R->y_pred[k] = cos(k * 0.3) * 0.9;
    }
    R->seconds = 0.25;
    return R;
}

static void test_result_roundtrip(void)
{
    char dir[256], p[512];
    CU_ASSERT_FATAL(make_tmpdir(dir, sizeof dir));
    dcm_problem *P = small_problem();
    dcm_error e = {0};
    CU_ASSERT_EQUAL_FATAL(dcm_problem_validate(P, &e), DCM_OK);
    dcm_result *R = fake_result(P);
    const int np = R->np, n = 2;
    snprintf(p, sizeof p, "%s/result.json", dir);
    int rc = io_result_write_json(p, P, R, &e);
    if (rc)
        printf("\n  %s\n", e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, DCM_OK);
    CU_ASSERT_EQUAL(count_entries(dir, ".tmp."), 0);
    CU_ASSERT_EQUAL(count_entries(dir, ""), 1);

    io_result_summary s;
    rc = io_result_load(p, &s, &e);
    if (rc)
        printf("\n  %s\n", e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, DCM_OK);
    CU_ASSERT_EQUAL(s.F, R->F);
    CU_ASSERT_EQUAL(s.n, 2);
    CU_ASSERT_EQUAL(s.m, 2);
    CU_ASSERT_EQUAL(s.nd, 0);
    CU_ASSERT_EQUAL_FATAL(s.np, np);
    CU_ASSERT_STRING_EQUAL(s.regions[1], "right");
    CU_ASSERT_STRING_EQUAL(s.inputs[1], "ctx");
    CU_ASSERT_EQUAL(memcmp(s.Ep, R->Ep, sizeof(double) * np), 0);
    CU_ASSERT_EQUAL(memcmp(s.pE, R->pE, sizeof(double) * np), 0);
    CU_ASSERT_EQUAL(memcmp(s.pV, R->pV, sizeof(double) * np), 0);
    CU_ASSERT_EQUAL(memcmp(s.Cp, R->Cp, sizeof(double) * np * np), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.Eh);
    CU_ASSERT_EQUAL(memcmp(s.Eh, R->Eh, sizeof(double) * n), 0);
    CU_ASSERT_EQUAL(s.iterations, 17);
    CU_ASSERT_EQUAL(s.converged, 1);
    CU_ASSERT_EQUAL(s.data_scale, 0.377);
    io_result_summary_free(&s);
    io_result_summary_free(&s);   /* idempotent */

    /* the block layout, as SPM's reference files */
    json_t *root = test_load_json(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    const model_dcm_layout *L = &P->M->L;
    json_t *pm = json_object_get(root, "posterior_mean");
    json_t *A = json_object_get(pm, "A");
    double Am[4];
    CU_ASSERT_EQUAL(test_json_mat_colmajor(A, Am, 2, 2), 0);
    CU_ASSERT_EQUAL(memcmp(Am, R->Ep + L->off_A, sizeof Am), 0);
    double Bm[4];
    CU_ASSERT_EQUAL(test_json_mat_colmajor(json_object_get(json_object_get(pm, "B"), "ctx"), Bm, 2, 2), 0);
    CU_ASSERT_EQUAL(Bm[1], R->Ep[model_dcm_idx_B(L, 1, 1, 0)]);
    double Cm[4];
    CU_ASSERT_EQUAL(test_json_mat_colmajor(json_object_get(pm, "C"), Cm, 2, 2), 0);
    CU_ASSERT_EQUAL(memcmp(Cm, R->Ep + L->off_C, sizeof Cm), 0);
    CU_ASSERT_EQUAL(json_object_size(json_object_get(pm, "D")), 0);
    CU_ASSERT_EQUAL(json_real_value(json_object_get(pm, "epsilon")), R->Ep[L->off_epsilon]);
    json_t *pp = json_object_get(root, "posterior_probability");
    /* B stim has prior variance 0 everywhere: null */
    CU_ASSERT_TRUE(json_is_null(json_array_get(json_array_get(
        json_object_get(json_object_get(pp, "B"), "stim"), 0), 1)));
    CU_ASSERT_TRUE(json_is_number(json_array_get(json_array_get(
        json_object_get(json_object_get(pp, "B"), "ctx"), 1), 0)));
    json_t *sd = json_object_get(json_object_get(root, "posterior_sd"), "transit");
    CU_ASSERT_EQUAL(json_real_value(json_array_get(sd, 1)),
                    sqrt(R->Cp[(L->off_transit + 1) * (np + 1)]));
    CU_ASSERT_EQUAL(json_array_size(json_object_get(root, "predicted_bold_scaled")), 5);
    CU_ASSERT_EQUAL(json_array_size(json_array_get(json_object_get(root, "observed_bold_scaled"), 0)), 2);
    CU_ASSERT_EQUAL(json_real_value(json_array_get(json_array_get(
                        json_object_get(root, "predicted_bold_scaled"), 3), 1)), R->y_pred[3 + 5]);
    CU_ASSERT_TRUE(json_is_true(json_object_get(root, "converged")));
    json_t *model = json_object_get(root, "model");
    CU_ASSERT_EQUAL(json_integer_value(json_array_get(json_array_get(
                        json_object_get(json_object_get(model, "b"), "ctx"), 1), 0)), 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(model, "options"),
                                                             "integrator")), "bilinear");
    CU_ASSERT_EQUAL(json_array_size(json_array_get(json_object_get(json_object_get(root, "vector"),
                                                                   "posterior_cov"), 0)), (size_t)np);
    json_decref(root);

    /* the result file feeds `dcm simulate --params` */
    double *theta = calloc(np, sizeof(double));
    CU_ASSERT_EQUAL(io_params_load(p, P, theta, &e), DCM_OK);
    CU_ASSERT_EQUAL(memcmp(theta, R->Ep, sizeof(double) * np), 0);
    free(theta);

    /* a failed write leaves neither the file nor a temporary */
    snprintf(p, sizeof p, "%s/no-such-dir/result.json", dir);
    rc = io_result_write_json(p, P, R, &e);
    ASSERT_ERR(rc, e, DCM_ERR_SYSTEM, "no-such-dir/result.json");
    CU_ASSERT_FALSE(file_exists(p));
    CU_ASSERT_EQUAL(count_entries(dir, ""), 1);

    dcm_result_free(R);
    dcm_problem_free(P);
    remove_tree(dir);
}

static void test_params_load(void)
{
    char dir[256], p[512];
    CU_ASSERT_FATAL(make_tmpdir(dir, sizeof dir));
    dcm_problem *P = small_problem();
    const model_dcm_layout *L = &P->M->L;
    const int np = L->np;
    double *theta = malloc(sizeof(double) * np), *pV = malloc(sizeof(double) * np);
    double *pE = malloc(sizeof(double) * np);
    model_dcm_priors(P->M, pE, pV);
    memcpy(theta, pE, sizeof(double) * np);
    write_text(dir, "params.json",
               "{\"A\": [[-0.1, 0.2], [0.3, -0.4]], \"B\": {\"ctx\": [[0, 0], [0.5, 0]]},\n"
               " \"decay\": 0.05}");
    snprintf(p, sizeof p, "%s/params.json", dir);
    dcm_error e = {0};
    int rc = io_params_load(p, P, theta, &e);
    if (rc)
        printf("\n  %s\n", e.msg);
    CU_ASSERT_EQUAL(rc, DCM_OK);
    CU_ASSERT_EQUAL(theta[model_dcm_idx_A(L, 1, 0)], 0.3);   /* row 1 = target */
    CU_ASSERT_EQUAL(theta[model_dcm_idx_A(L, 0, 1)], 0.2);
    CU_ASSERT_EQUAL(theta[model_dcm_idx_B(L, 1, 1, 0)], 0.5);
    CU_ASSERT_EQUAL(theta[L->off_decay], 0.05);
    CU_ASSERT_EQUAL(theta[L->off_epsilon], pE[L->off_epsilon]);   /* untouched */
    CU_ASSERT_EQUAL(theta[L->off_C], pE[L->off_C]);

    write_text(dir, "params.json", "{\"A\": [[1, 2, 3], [4, 5, 6]]}");
    rc = io_params_load(p, P, theta, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "params.json", "\"A\"[0] has 3 entries; expected 2");
    write_text(dir, "params.json", "{\"B\": {\"Attention\": [[0, 0], [0, 0]]}}");
    rc = io_params_load(p, P, theta, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "unknown input \"Attention\"", "stim, ctx");
    write_text(dir, "params.json", "{\"D\": {\"left\": [[0, 0], [0, 0]]}}");
    rc = io_params_load(p, P, theta, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "bilinear");
    write_text(dir, "params.json", "{\"E\": 1}");
    rc = io_params_load(p, P, theta, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "unknown key \"E\"");
    write_text(dir, "params.json", "{\"regions\": [\"right\", \"left\"], \"A\": [[0,0],[0,0]]}");
    rc = io_params_load(p, P, theta, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "\"regions\" do not match", "left, right");
    write_text(dir, "params.json", "{\"A\": [[0,0],\n[0,0]],}");
    rc = io_params_load(p, P, theta, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "params.json:2:", "invalid JSON");
    free(theta);
    free(pE);
    free(pV);
    dcm_problem_free(P);
    remove_tree(dir);
}

static void test_result_load_reference(void)
{
    char path[512];
    if (!test_shared_path("reference/attention/spm_attention_fwd.json", path, sizeof path))
        return;
    io_result_summary s;
    dcm_error e = {0};
    int rc = io_result_load(path, &s, &e);
    if (rc)
        printf("\n  %s\n", e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, DCM_OK);
    CU_ASSERT_EQUAL(s.n, 3);
    CU_ASSERT_EQUAL(s.m, 3);
    CU_ASSERT_EQUAL(s.np, 50);
    CU_ASSERT_DOUBLE_EQUAL(s.F, -3236.13, 0.01);
    CU_ASSERT_STRING_EQUAL(s.inputs[2], "Attention");
    CU_ASSERT_EQUAL(s.pV[0], 1.0 / 64.0);
    io_result_summary_free(&s);
    /* not a result file */
    char ev[512];
    if (!test_shared_path("reference/attention/spm_bms_2models.json", ev, sizeof ev))
        return;
    rc = io_result_load(ev, &s, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "free_energy");
    io_result_summary_free(&s);
}

int main(void)
{
    static const test_case cases[] = {
        {"tsv: read with and without header", test_tsv_read},
        {"tsv: ragged, NaN/Inf, text, empty", test_tsv_errors},
        {"tsv: numbers read as strtod reads them, bit for bit", test_parse_number_as_strtod},
        {"tsv: atomic write, abort, failed write", test_tsv_write_atomic},
        {"events: attention events equal SPM's micro-time inputs", test_events_reference},
        {"events: bins, overlap, clipping, errors", test_events_rules},
        {"spec: load a full spec and defaults", test_spec_load},
        {"spec: edge lists give the matrix switches; d", test_spec_edges_equal_matrices},
        {"spec: design only (dcm simulate)", test_spec_design_only},
        {"spec: the attention data set", test_spec_attention},
        {"spec error: malformed JSON", test_spec_malformed_json},
        {"spec error: missing time series", test_spec_missing_timeseries},
        {"spec error: ragged TSV row", test_spec_ragged_row},
        {"spec error: NaN in data", test_spec_nan_data},
        {"spec error: confounds length", test_spec_confounds_length},
        {"spec error: TR, TE, delays", test_spec_bad_tr},
        {"spec: names are whole; parameter syntax refused in names", test_spec_names_whole},
        {"spec error: delays rounding, maxit bounds, TR in ms, numeric header", test_spec_messages},
        {"spec error: unknown region", test_spec_unknown_region},
        {"spec error: unknown input", test_spec_unknown_input},
        {"spec error: no driving input", test_spec_no_driving_input},
        {"spec error: impossible connectivity", test_spec_impossible_connection},
        {"spec error: unknown key", test_spec_unknown_key},
        {"spec error: matrix size", test_spec_matrix_size},
        {"problem: validate", test_problem_validate},
        {"result: JSON round trip and failed write", test_result_roundtrip},
        {"result: parameter files", test_params_load},
        {"result: load SPM's reference file", test_result_load_reference},
        {NULL, NULL}};
    return test_run("io", cases);
}
