/* test_simulate.c — `dcm simulate` at the command line: values on
 * switched-off parameters refused in every block, parameters by name,
 * --vary (reproducible, SD 0 = none, spread as asked), --params-out, no
 * driving input refused, the bundled demo inside SPM's 4 % range, and
 * resting-state data from spectral specs (seeded, truth, --spec-out, bad
 * input).
 * Runs the binary named by $DCM_BIN (the sanitized build under make test). */
#include <stdlib.h>

#include "tests/test_util.h"

static char tmpdir[256];
static char out[65536];

static int run(const char *args)
{
    return test_dcm(args, out, sizeof out);
}

static void write_file(const char *name, const char *text)
{
    test_write_file(tmpdir, name, text);
}

static int exists(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return access(path, F_OK) == 0;
}

/* Whole file into a malloc'd string (NULL when unreadable). */
static char *slurp(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long k = ftell(f);
    rewind(f);
    char *s = malloc((size_t)k + 1);
    if (s && fread(s, 1, (size_t)k, f) != (size_t)k) {
        free(s);
        s = NULL;
    }
    if (s)
        s[k] = 0;
    fclose(f);
    return s;
}

/* 1 when both files exist and hold the same bytes. */
static int same_file(const char *a, const char *b)
{
    char *x = slurp(a), *y = slurp(b);
    int same = x && y && strcmp(x, y) == 0;
    free(x);
    free(y);
    return same;
}

/* Run `simulate SPEC [--params PARAMS] EXTRA -o OUT`, files in tmpdir. */
static int simulate(const char *spec, const char *params, const char *extra, const char *output)
{
    char args[2048], pp[600] = "";
    if (params)
        snprintf(pp, sizeof pp, " --params %s/%s", tmpdir, params);
    snprintf(args, sizeof args, "simulate %s/%s%s %s -o %s/%s", tmpdir, spec, pp, extra, tmpdir, output);
    return run(args);
}

/* Largest minus smallest value over all regions of a simulated TSV, each
 * region's mean removed: what estimation compares with 4. */
static double tsv_range(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return NAN;
    char line[4096];
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return NAN;
    }
    double *y = NULL;
    int v = 0, n = 0, cap = 0;
    while (fgets(line, sizeof line, f)) {
        char *p = line, *end;
        int j = 0;
        for (;;) {
            double x = strtod(p, &end);
            if (end == p)
                break;
            if (v * 8 + j >= cap) {
                cap = cap ? 2 * cap : 4096;
                y = realloc(y, sizeof(double) * (size_t)cap);
            }
            y[v * 8 + j++] = x;
            p = end;
        }
        n = j;
        v++;
    }
    fclose(f);
    double lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < n; j++) {
        double mu = 0.0;
        for (int s = 0; s < v; s++)
            mu += y[s * 8 + j] / v;
        for (int s = 0; s < v; s++) {
            lo = fmin(lo, y[s * 8 + j] - mu);
            hi = fmax(hi, y[s * 8 + j] - mu);
        }
    }
    free(y);
    return hi - lo;
}

static void write_design(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/events.tsv", tmpdir);
    FILE *f = fopen(path, "w");
    fprintf(f, "onset\tduration\ttrial_type\n");
    for (int b = 0; b < 6; b++) {
        fprintf(f, "%.1f\t20\tStim\n", 40.0 * b + 20.0);
        fprintf(f, "%.1f\t10\tAttn\n", 40.0 * b + 30.0);
    }
    fclose(f);
    static const char *spec =
        "{\"TR\": 2.0, \"TE\": 0.04, \"scans\": 120, \"timeseries\": \"ts.tsv\",\n"
        " \"regions\": [\"R1\", \"R2\", \"R3\"], \"events\": \"events.tsv\", \"inputs\": [\"Stim\", \"Attn\"],\n"
        " \"a\": [\"R1 -> R2\", \"R2 -> R3\"], \"b\": {\"Attn\": [\"R1 -> R2\"]},\n"
        " \"c\": {\"Stim\": [\"R1\"]}%s}\n";
    char text[1024];
    snprintf(text, sizeof text, spec, "");
    write_file("model.json", text);
    /* nonlinear: R3 gates R1 -> R2 */
    snprintf(text, sizeof text, spec, ",\n \"d\": {\"R3\": [\"R1 -> R2\"]}");
    write_file("nl.json", text);
    snprintf(text, sizeof text, spec, "");
    char *c = strstr(text, "\"c\": {\"Stim\": [\"R1\"]}");
    memcpy(c, "\"c\": {\"Stim\": [    ]}", 21);
    write_file("noc.json", text);
    /* the same truth as blocks and as names */
    write_file("blocks.json",
               "{\"A\": [[0, 0, 0], [0.4, 0, 0], [0, 0.3, 0]],\n"
               " \"B\": {\"Attn\": [[0, 0, 0], [0.3, 0, 0], [0, 0, 0]]},\n"
               " \"C\": [[0.8, 0], [0, 0], [0, 0]], \"decay\": 0.05}\n");
    write_file("names.json",
               "{\"A:R1->R2\": 0.4, \"A:R2->R3\": 0.3, \"B:Attn:R1->R2\": 0.3,\n"
               " \"C:Stim->R1\": 0.8, \"decay\": 0.05}\n");
}

/* ---- values on switched-off parameters ---- */

static void expect_off(const char *spec, const char *params_text, const char *name, const char *field)
{
    write_file("off.json", params_text);
    int rc = simulate(spec, "off.json", "--snr 3", "off.tsv");
    printf("\n  [%s] exit %d: %s", name, rc, out);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, name));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "switches off"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, field));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "off.json"));
    CU_ASSERT_FALSE(exists("off.tsv"));
    CU_ASSERT(test_no_temp_files(tmpdir));
}

static void test_switched_off_every_block(void)
{
    /* blocks: row = target, column = source */
    expect_off("model.json", "{\"A\": [[0, 0, 0.2], [0.4, 0, 0], [0, 0.3, 0]], \"C\": [[0.8, 0], [0, 0], [0, 0]]}",
               "A:R3->R1", "(\"a\")");
    expect_off("model.json", "{\"B\": {\"Attn\": [[0, 0, 0], [0, 0, 0], [0, 0.5, 0]]}, \"C\": [[0.8, 0], [0, 0], [0, 0]]}",
               "B:Attn:R2->R3", "(\"b\")");
    expect_off("model.json", "{\"C\": [[0.8, 0], [0.5, 0], [0, 0]]}", "C:Stim->R2", "(\"c\")");
    expect_off("nl.json", "{\"C\": [[0.8, 0], [0, 0], [0, 0]], \"D\": {\"R3\": [[0, 0, 0], [0, 0, 0], [0.2, 0, 0]]}}",
               "D:R3:R1->R3", "(\"d\")");
    /* the same by name */
    expect_off("model.json", "{\"A:R3->R1\": 0.2, \"C:Stim->R1\": 0.8}", "A:R3->R1", "(\"a\")");
    expect_off("model.json", "{\"B:Attn:R2->R3\": 0.5, \"C:Stim->R1\": 0.8}", "B:Attn:R2->R3", "(\"b\")");
    expect_off("model.json", "{\"C:Attn->R1\": 0.5, \"C:Stim->R1\": 0.8}", "C:Attn->R1", "(\"c\")");
    expect_off("nl.json", "{\"D:R3:R1->R3\": 0.2, \"C:Stim->R1\": 0.8}", "D:R3:R1->R3", "(\"d\")");
    /* a zero there is fine: it is the prior mean */
    write_file("zero.json", "{\"A:R3->R1\": 0, \"C:Stim->R1\": 0.8}");
    CU_ASSERT_EQUAL(simulate("model.json", "zero.json", "", "zero.tsv"), 0);
    CU_ASSERT(exists("zero.tsv"));
}

/* ---- parameters by name ---- */

static void test_names_equal_blocks(void)
{
    CU_ASSERT_EQUAL_FATAL(simulate("model.json", "blocks.json", "--snr 3 --seed 9", "b.tsv"), 0);
    CU_ASSERT_EQUAL_FATAL(simulate("model.json", "names.json", "--snr 3 --seed 9", "n.tsv"), 0);
    CU_ASSERT(same_file("b.tsv", "n.tsv"));
    /* blanks ignored, C also as C:INPUT:REGION */
    write_file("names2.json",
               "{\"A: R1 -> R2\": 0.4, \"A:R2->R3\": 0.3, \"B:Attn: R1->R2\": 0.3,\n"
               " \"C:Stim:R1\": 0.8, \"decay\": 0.05}\n");
    CU_ASSERT_EQUAL_FATAL(simulate("model.json", "names2.json", "--snr 3 --seed 9", "n2.tsv"), 0);
    CU_ASSERT(same_file("b.tsv", "n2.tsv"));
    /* and a different value gives different data (the names are used) */
    write_file("names3.json", "{\"A:R1->R2\": 0.2, \"A:R2->R3\": 0.3, \"B:Attn:R1->R2\": 0.3, "
                              "\"C:Stim->R1\": 0.8, \"decay\": 0.05}\n");
    CU_ASSERT_EQUAL_FATAL(simulate("model.json", "names3.json", "--snr 3 --seed 9", "n3.tsv"), 0);
    CU_ASSERT_FALSE(same_file("b.tsv", "n3.tsv"));
    /* a parameter file saved with a UTF-8 byte order mark reads the same */
    write_file("names_bom.json", "\xef\xbb\xbf{\"A:R1->R2\": 0.4, \"A:R2->R3\": 0.3, \"B:Attn:R1->R2\": 0.3,\n"
                                 " \"C:Stim->R1\": 0.8, \"decay\": 0.05}\n");
    CU_ASSERT_EQUAL(simulate("model.json", "names_bom.json", "--snr 3 --seed 9", "nb.tsv"), 0);
    CU_ASSERT(same_file("b.tsv", "nb.tsv"));
}

static void test_names_errors(void)
{
    write_file("typo.json", "{\"A:R1->R4\": 0.4, \"C:Stim->R1\": 0.8}");
    CU_ASSERT_EQUAL(simulate("model.json", "typo.json", "", "typo.tsv"), 2);
    printf("\n  [typo] %s", out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "unknown parameter \"A:R1->R4\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "did you mean"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "A:R1->R2"));
    CU_ASSERT_FALSE(exists("typo.tsv"));

    write_file("far.json", "{\"Zebra:stripes\": 1, \"C:Stim->R1\": 0.8}");
    CU_ASSERT_EQUAL(simulate("model.json", "far.json", "", "far.tsv"), 2);
    printf("\n  [far] %s", out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "parameters this spec switches on are"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "B:Attn:R1->R2"));
    CU_ASSERT_PTR_NULL(strstr(out, "B:Attn:R2->R3")); /* switched off: not offered */
    CU_ASSERT_FALSE(exists("far.tsv"));

    write_file("twice.json", "{\"A:R1->R2\": 0.4, \"A: R1 -> R2\": 0.3, \"C:Stim->R1\": 0.8}");
    CU_ASSERT_EQUAL(simulate("model.json", "twice.json", "", "twice.tsv"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "name the same parameter"));

    write_file("mixed.json", "{\"A:R1->R2\": 0.4, \"C\": [[0.8, 0], [0, 0], [0, 0]]}");
    CU_ASSERT_EQUAL(simulate("model.json", "mixed.json", "", "mixed.tsv"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"C\" is a block"));

    write_file("str.json", "{\"A:R1->R2\": \"0.4\", \"C:Stim->R1\": 0.8}");
    CU_ASSERT_EQUAL(simulate("model.json", "str.json", "", "str.tsv"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"A:R1->R2\" must be a number"));

    write_file("dbil.json", "{\"D:R3:R1->R2\": 0.2, \"C:Stim->R1\": 0.8}");
    CU_ASSERT_EQUAL(simulate("model.json", "dbil.json", "", "dbil.tsv"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "bilinear"));
    CU_ASSERT_FALSE(exists("mixed.tsv") || exists("str.tsv") || exists("twice.tsv") || exists("dbil.tsv"));
    CU_ASSERT(test_no_temp_files(tmpdir));
}

/* ---- --vary ---- */

static void test_vary_reproducible(void)
{
    const char *vary = "--vary 'A:*=0.05' --vary 'B:*=0.1' --snr 3";
    char extra[256];
    snprintf(extra, sizeof extra, "%s --seed 4", vary);
    CU_ASSERT_EQUAL_FATAL(simulate("model.json", "names.json", extra, "v4a.tsv"), 0);
    CU_ASSERT_EQUAL_FATAL(simulate("model.json", "names.json", extra, "v4b.tsv"), 0);
    CU_ASSERT(same_file("v4a.tsv", "v4b.tsv"));
    snprintf(extra, sizeof extra, "%s --seed 5", vary);
    CU_ASSERT_EQUAL_FATAL(simulate("model.json", "names.json", extra, "v5.tsv"), 0);
    CU_ASSERT_FALSE(same_file("v4a.tsv", "v5.tsv"));
    /* the parameters differ too, not only the noise: compare noise-free */
    CU_ASSERT_EQUAL_FATAL(simulate("model.json", "names.json", "--vary 'B:*=0.1' --seed 4", "nf4.tsv"), 0);
    CU_ASSERT_EQUAL_FATAL(simulate("model.json", "names.json", "--vary 'B:*=0.1' --seed 5", "nf5.tsv"), 0);
    CU_ASSERT_EQUAL_FATAL(simulate("model.json", "names.json", "", "nf.tsv"), 0);
    CU_ASSERT_FALSE(same_file("nf4.tsv", "nf5.tsv"));
    CU_ASSERT_FALSE(same_file("nf4.tsv", "nf.tsv"));

    /* SD 0 is the same as no --vary, noise included */
    CU_ASSERT_EQUAL_FATAL(simulate("model.json", "names.json", "--snr 3 --seed 4", "plain.tsv"), 0);
    CU_ASSERT_EQUAL_FATAL(simulate("model.json", "names.json", "--vary 'B:*=0' --vary 'A:R1->R2=0' --snr 3 --seed 4",
                                   "sd0.tsv"), 0);
    CU_ASSERT(same_file("plain.tsv", "sd0.tsv"));

    /* the drawn parameters, given back with the same seed, reproduce the data */
    char args[2048];
    snprintf(args, sizeof args,
             "simulate %s/model.json --params %s/names.json --vary 'A:*=0.05' --vary 'B:*=0.1' --snr 3 "
             "--seed 4 --params-out %s/drawn.json -o %s/v4c.tsv", tmpdir, tmpdir, tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(run(args), 0);
    CU_ASSERT(same_file("v4a.tsv", "v4c.tsv"));
    CU_ASSERT_EQUAL_FATAL(simulate("model.json", "drawn.json", "--snr 3 --seed 4", "again.tsv"), 0);
    CU_ASSERT(same_file("v4a.tsv", "again.tsv"));
    /* the file names the switched-on parameters only, and the drawn B moved */
    json_t *d = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/drawn.json", tmpdir);
    d = test_load_json(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_PTR_NULL(json_object_get(d, "A:R3->R1"));
    CU_ASSERT_EQUAL(json_number_value(json_object_get(d, "C:Stim->R1")), 0.8);
    double b = json_number_value(json_object_get(d, "B:Attn:R1->R2"));
    CU_ASSERT(b != 0.3 && fabs(b - 0.3) < 0.5);
    json_decref(d);
}

static void test_vary_spread(void)
{
    /* K runs, three parameters varied in each: the standardised draws
       should have mean 0 and SD 1 */
    const int K = 60;
    const char *names[3] = {"A:R1->R2", "B:Attn:R1->R2", "C:Stim->R1"};
    const double mean[3] = {0.4, 0.3, 0.8}, sd[3] = {0.05, 0.1, 0.2};
    double s1 = 0.0, s2 = 0.0;
    int got = 0;
    for (int k = 0; k < K; k++) {
        char args[2048];
        snprintf(args, sizeof args,
                 "simulate %s/model.json --params %s/names.json --vary 'A:R1->R2=0.05' "
                 "--vary 'B:*=0.1' --vary 'C:Stim->R1=0.2' --seed %d --params-out %s/d.json -o %s/d.tsv",
                 tmpdir, tmpdir, 1000 + k, tmpdir, tmpdir);
        if (run(args) != 0) {
            printf("\n  draw %d failed: %s", k, out);
            continue;
        }
        char path[512];
        snprintf(path, sizeof path, "%s/d.json", tmpdir);
        json_t *d = test_load_json(path);
        if (!d)
            continue;
        for (int p = 0; p < 3; p++) {
            double z = (json_number_value(json_object_get(d, names[p])) - mean[p]) / sd[p];
            s1 += z;
            s2 += z * z;
            got++;
        }
        /* what was not varied stays put */
        CU_ASSERT_EQUAL(json_number_value(json_object_get(d, "A:R2->R3")), 0.3);
        json_decref(d);
    }
    CU_ASSERT_EQUAL_FATAL(got, 3 * K);
    double m = s1 / got, sdev = sqrt((s2 - got * m * m) / (got - 1));
    printf("\n  %d standardised draws: mean %.4f (expected 0 +- %.3f), sd %.3f (expected 1 +- %.3f)", got, m,
           1.0 / sqrt(got), sdev, 1.0 / sqrt(2.0 * (got - 1)));
    /* about four standard errors */
    CU_ASSERT(fabs(m) < 4.0 / sqrt(got));
    CU_ASSERT(fabs(sdev - 1.0) < 4.0 / sqrt(2.0 * (got - 1)));
}

static void test_vary_errors(void)
{
    CU_ASSERT_EQUAL(simulate("model.json", "names.json", "--vary 'A:R3->R1=0.1'", "ve.tsv"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "A:R3->R1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "switches off"));
    CU_ASSERT_EQUAL(simulate("model.json", "names.json", "--vary 'D:*=0.1'", "ve.tsv"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--vary"));
    CU_ASSERT_EQUAL(simulate("model.json", "names.json", "--vary 'A:R1->R2'", "ve.tsv"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "NAME=SD"));
    CU_ASSERT_EQUAL(simulate("model.json", "names.json", "--vary 'A:R1->R2=-1'", "ve.tsv"), 1);
    CU_ASSERT_EQUAL(simulate("model.json", "names.json", "--vary 'A:R1->R9=0.1'", "ve.tsv"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "unknown region 'R9'"));
    CU_ASSERT_FALSE(exists("ve.tsv"));
}

static void test_params_out_outputs(void)
{
    char *before = slurp("names.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    char args[2048];
    /* naming the --params file: refused, the file untouched */
    snprintf(args, sizeof args, "simulate %s/model.json --params %s/names.json --vary 'B:*=0.1' "
             "--params-out %s/names.json -o %s/po.tsv", tmpdir, tmpdir, tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "is the --params file"));
    char *after = slurp("names.json");
    CU_ASSERT(after && strcmp(before, after) == 0);
    free(after);
    free(before);
    CU_ASSERT_FALSE(exists("po.tsv"));
    /* the time series cannot be written: no parameter file either */
    snprintf(args, sizeof args, "simulate %s/model.json --params %s/names.json --params-out %s/po.json "
             "-o %s/no/such/dir/po.tsv", tmpdir, tmpdir, tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no/such/dir"));
    CU_ASSERT_FALSE(exists("po.json"));
    CU_ASSERT(test_no_temp_files(tmpdir));
}

/* ---- no driving input ---- */

static void test_no_driving_input(void)
{
    CU_ASSERT_EQUAL(simulate("model.json", NULL, "", "silent.tsv"), 2);
    printf("\n  [no --params] %s", out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no driving input"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "C:Stim->R1"));
    write_file("noc_params.json", "{\"A:R1->R2\": 0.4, \"C:Stim->R1\": 0}");
    CU_ASSERT_EQUAL(simulate("model.json", "noc_params.json", "--snr 2", "silent.tsv"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no driving input"));
    write_file("empty.json", "{}");
    CU_ASSERT_EQUAL(simulate("model.json", "empty.json", "", "silent.tsv"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no driving input"));
    CU_ASSERT_EQUAL(simulate("noc.json", NULL, "", "silent.tsv"), 2);
    printf("\n  [no c] %s", out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "driving input"));
    CU_ASSERT_FALSE(exists("silent.tsv"));
    CU_ASSERT(test_no_temp_files(tmpdir));
}

/* ---- the rescaling note ---- */

static void test_rescaling_note(void)
{
    /* a strong drive: the data span more than 4 */
    write_file("strong.json", "{\"A:R1->R2\": 0.4, \"A:R2->R3\": 0.3, \"C:Stim->R1\": 6}");
    CU_ASSERT_EQUAL_FATAL(simulate("model.json", "strong.json", "--snr 2", "strong.tsv"), 0);
    double range = tsv_range("strong.tsv");
    printf("\n  strong drive: range %.2f; %s", range, out);
    CU_ASSERT(range > 4.0);
    char *note = strstr(out, "note:");
    CU_ASSERT_PTR_NOT_NULL_FATAL(note);
    CU_ASSERT_PTR_NULL(strstr(note + 1, "note:")); /* once */
    char want[64];
    snprintf(want, sizeof want, "span %.2f", range);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    snprintf(want, sizeof want, "multiply them by %.3f", 4.0 / range);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "data_scale"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "simulated C"));
    /* a moderate one: no note */
    CU_ASSERT_EQUAL_FATAL(simulate("model.json", "names.json", "--snr 2", "mild.tsv"), 0);
    CU_ASSERT(tsv_range("mild.tsv") < 4.0);
    CU_ASSERT_PTR_NULL(strstr(out, "note"));
}

static void test_bundled_demo(void)
{
    const char *files[] = {"fwd.json", "events.tsv", "truth.json"};
    for (int i = 0; i < 3; i++) {
        char src[256];
        snprintf(src, sizeof src, "datasets/attention_design/%s", files[i]);
        if (access(src, R_OK)) {
            printf("\nSKIP: %s not found (run the tests from the repository)\n", src);
            return;
        }
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "cp %s %s/demo_%s", src, tmpdir, files[i]);
        CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    }
    /* the spec reads events.tsv beside it */
    char *spec = slurp("demo_fwd.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(spec);
    char *ev = strstr(spec, "\"events.tsv\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    char text[4096];
    snprintf(text, sizeof text, "%.*s\"demo_events.tsv\"%s", (int)(ev - spec), spec, ev + strlen("\"events.tsv\""));
    write_file("demo_fwd.json", text);
    free(spec);
    /* as scripts/demo.sh runs it */
    CU_ASSERT_EQUAL_FATAL(simulate("demo_fwd.json", "demo_truth.json", "--snr 2 --seed 1", "demo_ts.tsv"), 0);
    double range = tsv_range("demo_ts.tsv");
    printf("\n  demo data span %.3f; simulate said: '%s'", range, out);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT(range < 4.0);
    /* the noise-free truth leaves room for the noise */
    CU_ASSERT_EQUAL_FATAL(simulate("demo_fwd.json", "demo_truth.json", "", "demo_nf.tsv"), 0);
    double nf = tsv_range("demo_nf.tsv");
    printf("\n  noise-free %.3f", nf);
    CU_ASSERT(nf < 3.0);
}

/* ---- spectral specs (resting state) ---- */

static const char *REST =
    "{\"analysis\": \"csd\", \"TR\": 2, \"scans\": 256, \"timeseries\": \"rest.tsv\",\n"
    " \"regions\": [\"R1\", \"R2\", \"R3\"], \"a\": [\"R1 -> R2\", \"R2 -> R1\", \"R2 -> R3\"]%s}\n";

static void write_rest(const char *name, const char *extra)
{
    char text[2048];
    snprintf(text, sizeof text, REST, extra);
    write_file(name, text);
}

/* Rows and columns of a TSV (header not counted), -1 rows when unreadable. */
static int tsv_shape(const char *name, int *cols)
{
    char *t = slurp(name);
    if (!t)
        return -1;
    int rows = -1;
    *cols = 1;
    for (char *p = t; *p && *p != '\n'; p++)
        *cols += *p == '\t';
    for (char *p = t; *p; p++)
        rows += *p == '\n';
    free(t);
    return rows;
}

static void test_csd_simulate(void)
{
    write_rest("rest.json", "");
    /* the default network, seeded: same seed same bytes, other seed other data */
    char extra[1024];
    snprintf(extra, sizeof extra, "--seed 5 --params-out %s/rest_truth.json", tmpdir);
    CU_ASSERT_EQUAL_FATAL(simulate("rest.json", NULL, extra, "rest.tsv"), 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(simulate("rest.json", NULL, "--seed 5", "rest_b.tsv"), 0);
    CU_ASSERT(same_file("rest.tsv", "rest_b.tsv"));
    CU_ASSERT_EQUAL(simulate("rest.json", NULL, "--seed 6", "rest_c.tsv"), 0);
    CU_ASSERT(!same_file("rest.tsv", "rest_c.tsv"));
    int cols = 0;
    CU_ASSERT_EQUAL(tsv_shape("rest.tsv", &cols), 256);
    CU_ASSERT_EQUAL(cols, 3);
    /* the truth: the default values on the switched-on connections, only
       what the generator uses (no a, b, c, C) */
    char *truth = slurp("rest_truth.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(truth);
    CU_ASSERT_PTR_NOT_NULL(strstr(truth, "\"A:R1->R2\": 0.3"));
    CU_ASSERT_PTR_NOT_NULL(strstr(truth, "\"A:R2->R1\": -0.2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(truth, "\"A:R2->R3\": 0.3"));
    CU_ASSERT_PTR_NULL(strstr(truth, "A:R3->R2"));
    CU_ASSERT_PTR_NULL(strstr(truth, "a(1)"));
    CU_ASSERT_PTR_NULL(strstr(truth, "c:R1"));
    free(truth);
    /* the truth given back reproduces the data */
    CU_ASSERT_EQUAL(simulate("rest.json", "rest_truth.json", "--seed 5", "rest_d.tsv"), 0);
    CU_ASSERT(same_file("rest.tsv", "rest_d.tsv"));
    /* --vary draws only what is simulated; --snr changes the noise only */
    CU_ASSERT_EQUAL(simulate("rest.json", NULL, "--seed 5 --vary 'A:*=0.05'", "rest_v.tsv"), 0);
    CU_ASSERT(!same_file("rest.tsv", "rest_v.tsv"));
    CU_ASSERT_EQUAL(simulate("rest.json", NULL, "--seed 5 --vary 'a(1)=0.1'", "x.tsv"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "not simulated"));
    CU_ASSERT(!exists("x.tsv"));
    CU_ASSERT_EQUAL(simulate("rest.json", NULL, "--seed 5 --snr 4", "rest_s.tsv"), 0);
    CU_ASSERT(!same_file("rest.tsv", "rest_s.tsv"));
    /* --spec-out: a spec that estimates the output */
    char args[2048];
    snprintf(args, sizeof args, "simulate %s/rest.json --seed 5 --spec-out %s/fit.json -o %s/other.tsv", tmpdir,
             tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(run(args), 0);
    char *fit = slurp("fit.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fit);
    CU_ASSERT_PTR_NOT_NULL(strstr(fit, "\"timeseries\": \"other.tsv\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(fit, "\"analysis\": \"csd\""));
    free(fit);
    snprintf(args, sizeof args, "estimate %s/fit.json -q -o %s/fit_result.json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 0);
    CU_ASSERT(exists("fit_result.json"));
    /* --spec-out on a task spec is a usage error */
    snprintf(args, sizeof args, "simulate %s/model.json --spec-out %s/t.json -o %s/t.tsv", tmpdir, tmpdir,
             tmpdir);
    CU_ASSERT_EQUAL(run(args), 1);
    CU_ASSERT(!exists("t.json") && !exists("t.tsv"));
}

/* Bad input on spectral specs: exit 2, no output of any kind. */
static void test_csd_simulate_errors(void)
{
    static const struct {
        const char *extra, *params, *expect;
    } cases[] = {
        {", \"b\": {}", NULL, "\"b\" is given"},
        {", \"c\": [[1],[0],[0]]", NULL, "\"c\" is given"},
        {", \"d\": {}", NULL, "\"d\" is given"},
        {", \"inputs\": [\"Stim\"]", NULL, "\"inputs\" is given"},
        {", \"scans\": 0", NULL, "\"scans\""},
        {"", "bad_c.json", "C:R1"},
        {"", "bad_off.json", "switches off"},
        {"", "unstable.json", "unstable"},
        {"", "unknown.json", "unknown parameter"},
    };
    write_file("bad_c.json", "{\"C:R1\": 1}\n");
    write_file("bad_off.json", "{\"A:R3->R2\": 0.2}\n");
    write_file("unstable.json", "{\"A:R1->R2\": 2, \"A:R2->R1\": 2, \"A:R1->R1\": -3, \"A:R2->R2\": -3}\n");
    write_file("unknown.json", "{\"A:R1->R9\": 0.2}\n");
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char extra[256];
        /* "scans" given twice would be invalid JSON: the scans case replaces it */
        if (strstr(cases[k].extra, "scans")) {
            write_file("bad.json", "{\"analysis\": \"csd\", \"TR\": 2, \"scans\": 0, \"timeseries\": "
                                   "\"rest.tsv\", \"regions\": [\"R1\", \"R2\"], \"a\": [\"R1 -> R2\"]}\n");
        } else {
            snprintf(extra, sizeof extra, "%s", cases[k].extra);
            write_rest("bad.json", extra);
        }
        char po[512];
        snprintf(po, sizeof po, "--params-out %s/bad_truth.json", tmpdir);
        int rc = simulate("bad.json", cases[k].params, po, "bad.tsv");
        CU_ASSERT_EQUAL(rc, 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, cases[k].expect));
        if (rc != 2 || !strstr(out, cases[k].expect))
            printf("\n  case %zu: exit %d, '%s'", k, rc, out);
        CU_ASSERT(!exists("bad.tsv"));
        CU_ASSERT(!exists("bad_truth.json"));
    }
    /* too few scans for the MAR order: the simulated data could not be fitted */
    write_file("short.json", "{\"analysis\": \"csd\", \"TR\": 2, \"scans\": 20, \"timeseries\": "
                             "\"rest.tsv\", \"regions\": [\"R1\", \"R2\", \"R3\"], \"a\": [\"R1 -> R2\"]}\n");
    CU_ASSERT_EQUAL(simulate("short.json", NULL, "", "bad.tsv"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "too few scans"));
    CU_ASSERT(!exists("bad.tsv"));
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dcm-simulate-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        printf("cannot create a temporary folder\n");
        return 1;
    }
    write_design();
    static const test_case cases[] = {
        {"a value on a switched-off parameter: exit 2 in every block, by name or by block",
         test_switched_off_every_block},
        {"--params by name gives the same data as the blocks", test_names_equal_blocks},
        {"--params by name: unknown, repeated, mixed, non-number", test_names_errors},
        {"--vary: same seed same data, other seed other data, SD 0 = none, --params-out",
         test_vary_reproducible},
        {"--vary: the draws have the SD asked for", test_vary_spread},
        {"--vary: switched-off, malformed, unknown", test_vary_errors},
        {"--params-out: never an input, never without the time series", test_params_out_outputs},
        {"no driving input: exit 2, no output", test_no_driving_input},
        {"the rescaling note: once, says what is rescaled", test_rescaling_note},
        {"the bundled demo stays within SPM's 4 % range", test_bundled_demo},
        {"spectral specs: seeded resting-state data, truth, --vary, --snr, --spec-out",
         test_csd_simulate},
        {"spectral specs: b/c/d/inputs, zero scans, C, switched-off, unstable: exit 2, no output",
         test_csd_simulate_errors},
        {NULL, NULL}};
    int rc = test_run("simulate", cases);
    test_remove_dir(tmpdir);
    return rc;
}
