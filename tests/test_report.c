/* test_report.c — `dcm report` and `dcm review` end to end, on results
 * made here by `dcm simulate` + `dcm estimate` (a small three-region
 * model, as tests/test_cli.c): the HTML is self-contained and holds every
 * figure, --png writes sensible PNGs, review marks the right parameters and
 * gives variance explained in [0, 1], bad inputs exit 2 and write nothing.
 * With --lme (a log-evidence table made here) the report holds a
 * random-effects group comparison whose numbers are those of dcm compare
 * --rfx, with or without result files; bad tables exit 2.
 * When /usr/bin/chromium exists the report is rendered headless: no console
 * errors and a page that is not blank. Runs the binary named by $DCM_BIN. */
#include <cairo.h>
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test_util.h"

static char tmpdir[256];
static char out[262144];

static int sh(const char *cmd)
{
    return test_shell(cmd, out, sizeof out);
}

/* Run `dcm ARGS` inside tmpdir. */
static int run(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", tmpdir, test_dcm_bin(), args);
    return sh(cmd);
}

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

static void write_file(const char *name, const char *text)
{
    char path[512];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static int exists(const char *name)
{
    char path[512];
    path_of(path, sizeof path, name);
    return access(path, F_OK) == 0;
}

/* malloc'ed contents of a file in tmpdir (NULL when unreadable) */
static char *slurp(const char *name, size_t *len)
{
    char path[512];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b)
        b[n] = 0;
    fclose(f);
    if (len)
        *len = (size_t)n;
    return b;
}

static int count(const char *hay, const char *needle)
{
    int k = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        k++;
    return k;
}

/* width and height from a PNG's IHDR; 0 when it is not a PNG */
static int png_size(const char *name, unsigned *w, unsigned *h)
{
    char path[512];
    path_of(path, sizeof path, name);
    unsigned char b[24];
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t k = fread(b, 1, sizeof b, f);
    fclose(f);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (k != 24 || memcmp(b, sig, 8) || memcmp(b + 12, "IHDR", 4))
        return 0;
    *w = (unsigned)b[16] << 24 | (unsigned)b[17] << 16 | (unsigned)b[18] << 8 | b[19];
    *h = (unsigned)b[20] << 24 | (unsigned)b[21] << 16 | (unsigned)b[22] << 8 | b[23];
    return 1;
}

/* no "*.tmp*" left under a directory of tmpdir ("" for tmpdir itself) */
static int no_temp_files(const char *sub)
{
    char path[512];
    path_of(path, sizeof path, sub);
    return test_no_temp_files(path);
}

/* ---- a small simulated data set, fitted twice ---- */

static int setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dcm-report-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    char path[512];
    path_of(path, sizeof path, "events.tsv");
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "onset\tduration\ttrial_type\n");
    for (int b = 0; b < 6; b++) {
        fprintf(f, "%.1f\t20\tStim\n", 40.0 * b + 20.0);
        fprintf(f, "%.1f\t10\tAttn\n", 40.0 * b + 30.0);
    }
    fclose(f);
    write_file("truth.json",
               "{\"A\": [[0, 0, 0], [0.4, 0, 0], [0, 0.3, 0]],\n"
               " \"B\": {\"Attn\": [[0, 0, 0], [0.3, 0, 0], [0, 0, 0]]},\n"
               " \"C\": [[0.8, 0], [0, 0], [0, 0]]}\n");
    const char *spec =
        "{\"TR\": 2.0, \"TE\": 0.04, \"scans\": 120,\n"
        " \"timeseries\": \"ts.tsv\", \"regions\": [\"R1\", \"R2\", \"R3\"],\n"
        " \"events\": \"events.tsv\", \"inputs\": [\"Stim\", \"Attn\"],\n"
        " \"a\": [\"R1 -> R2\", \"R2 -> R3\"%s],\n"
        " \"b\": {\"Attn\": [\"R1 -> R2\"]},\n"
        " \"c\": {\"Stim\": [\"R1\"]}}\n";
    char text[1024];
    snprintf(text, sizeof text, spec, "");
    write_file("model.json", text);
    snprintf(text, sizeof text, spec, ", \"R3 -> R2\"");
    write_file("alt.json", text);
    if (run("simulate model.json --params truth.json --snr 4 --seed 5 -o ts.tsv") != 0 ||
        run("estimate -q model.json -o m1.json") != 0 || run("estimate -q alt.json -o m2.json") != 0) {
        printf("setup failed: %s\n", out);
        return -1;
    }
    write_file("not_a_result.json", "{\"hello\": [1, 2, 3]}\n");
    write_file("broken.json", "{\"free_energy\": -10, \n");
    return 0;
}

static int teardown(void)
{
    cairo_debug_reset_static_data();
    return test_remove_dir(tmpdir);
}

/* ---- tests ---- */

static void test_help(void)
{
    CU_ASSERT_EQUAL(run("report --help"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "example"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "exit status"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--png"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--lme"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "group_comparison.png"));
    CU_ASSERT_EQUAL(run("review --help"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "example"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "exit status"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--threshold"));
    CU_ASSERT_EQUAL(run("help report"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "dcm report"));
    /* usage errors: 1 */
    CU_ASSERT_EQUAL(run("report m1.json"), 1); /* no -o */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "-o"));
    CU_ASSERT_EQUAL(run("report -o x.html"), 1); /* no result */
    CU_ASSERT_EQUAL(run("report m1.json -o x.html --frobnicate"), 1);
    CU_ASSERT_EQUAL(run("report m1.json -o x.html --threshold 1.5"), 1);
    CU_ASSERT_EQUAL(run("report m1.json -o m1.json"), 1);
    CU_ASSERT_EQUAL(run("report -o x.html --lme"), 1); /* --lme needs a value */
    CU_ASSERT_EQUAL(run("report --lme x.tsv -o x.tsv"), 1); /* -o naming the table */
    CU_ASSERT_FALSE(exists("x.html"));
    CU_ASSERT_EQUAL(run("review"), 1);
    CU_ASSERT_EQUAL(run("review m1.json m2.json"), 1);
    CU_ASSERT_EQUAL(run("review m1.json --threshold 0"), 1);
    CU_ASSERT_EQUAL(run("review m1.json --threshold"), 1);
}

static const char *kinds[] = {"fit", "network", "parameters", "free_energy"};

static void test_report_html(void)
{
    int rc = run("report m1.json m2.json -o report.html --png figs");
    printf("\n  %s", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT(no_temp_files(""));
    CU_ASSERT(no_temp_files("figs"));
    size_t len = 0;
    char *html = slurp("report.html", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    printf("  report.html: %zu bytes\n", len);
    /* self-contained: nothing to fetch, every image a data URI */
    CU_ASSERT_PTR_NULL(strstr(html, "http://"));
    CU_ASSERT_PTR_NULL(strstr(html, "https://"));
    CU_ASSERT_PTR_NULL(strstr(html, "<script"));
    CU_ASSERT_PTR_NULL(strstr(html, "<link"));
    CU_ASSERT_PTR_NULL(strstr(html, "url("));
    int nimg = count(html, "<img "), ndata = count(html, "src=\"data:image/png;base64,");
    printf("  %d images, %d data URIs\n", nimg, ndata);
    CU_ASSERT_EQUAL(nimg, 9); /* 4 per model + the comparison */
    CU_ASSERT_EQUAL(ndata, nimg);
    CU_ASSERT_EQUAL(count(html, "src=\""), ndata); /* no other source */
    /* every figure, with a caption that explains its legend */
    char id[128];
    for (int m = 1; m <= 2; m++)
        for (int k = 0; k < 4; k++) {
            snprintf(id, sizeof id, "id=\"fig-m%d_%s.png\"", m, kinds[k]);
            CU_ASSERT_PTR_NOT_NULL(strstr(html, id));
        }
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "id=\"fig-comparison.png\""));
    CU_ASSERT_EQUAL(count(html, "Legend:"), 9);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "Model comparison"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "log Bayes factor"));
    /* parameter names as the figures label them */
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "A:R1-&gt;R2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "B:Attn:R1-&gt;R2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "C:Stim-&gt;R1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "A:R3-&gt;R2")); /* only in m2 */
    /* the base64 of the first image decodes to a PNG: "iVBORw0KGgo" */
    const char *d = strstr(html, "base64,");
    CU_ASSERT(d && !strncmp(d + 7, "iVBORw0KGgo", 11));
    free(html);
    /* --png: every figure as a PNG of sensible size (drawn at scale 2) */
    char name[256];
    for (int m = 1; m <= 2; m++)
        for (int k = 0; k < 4; k++) {
            snprintf(name, sizeof name, "figs/m%d_%s.png", m, kinds[k]);
            unsigned w = 0, h = 0;
            CU_ASSERT(png_size(name, &w, &h));
            if (m == 1)
                printf("  %s: %u x %u\n", name, w, h);
            CU_ASSERT(w >= 1000 && w <= 4000);
            CU_ASSERT(h >= 300 && h <= 8000);
        }
    unsigned w = 0, h = 0;
    CU_ASSERT(png_size("figs/comparison.png", &w, &h));
    CU_ASSERT(w >= 1000 && h >= 300);
    /* --scale 1: half the pixels */
    CU_ASSERT_EQUAL(run("report m1.json -o one.html --png figs1 --scale 1"), 0);
    unsigned w1 = 0, h1 = 0;
    CU_ASSERT(png_size("figs1/m1_fit.png", &w1, &h1));
    CU_ASSERT(w1 == 960);
    /* one model: no comparison */
    html = slurp("one.html", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    CU_ASSERT_EQUAL(count(html, "<img "), 4);
    CU_ASSERT_PTR_NULL(strstr(html, "id=\"comparison\""));
    free(html);
    CU_ASSERT_FALSE(exists("figs1/comparison.png"));
}

/* A review line "NAME  mean  sd  Pp [*]": is it there, and marked? */
static int review_line(const char *name, int *marked)
{
    const char *p = out;
    size_t l = strlen(name);
    while ((p = strstr(p, name))) {
        if ((p == out || p[-1] == '\n') && p[l] == ' ') {
            const char *e = strchr(p, '\n');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            *marked = n > 0 && p[n - 1] == '*';
            return 1;
        }
        p += l;
    }
    return 0;
}

static void test_review(void)
{
    int rc = run("review m1.json");
    printf("\n%s", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    int mk = 0;
    /* the true effects are large: marked at 0.95 */
    const char *strong[] = {"A:R1->R2", "A:R2->R3", "B:Attn:R1->R2", "C:Stim->R1"};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT(review_line(strong[i], &mk));
        CU_ASSERT(mk);
    }
    CU_ASSERT(review_line("A:R1->R1", &mk));
    CU_ASSERT(review_line("transit:R2", &mk));
    CU_ASSERT(review_line("decay", &mk));
    CU_ASSERT(review_line("epsilon", &mk));
    CU_ASSERT_FALSE(review_line("A R3->R2", &mk)); /* not in this model */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "free energy  F = "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "converged    yes"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "iterations"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "noise log-precision"));
    /* variance explained per region, within [0, 1] */
    const char *regions[] = {"R1", "R2", "R3"};
    for (int j = 0; j < 3; j++) {
        char key[16];
        snprintf(key, sizeof key, "\n  %s ", regions[j]);
        const char *p = strstr(out, key);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        double ve = NAN, eh = NAN;
        CU_ASSERT_EQUAL(sscanf(p + strlen(key), "%lf %lf", &ve, &eh), 2);
        printf("  %s: variance explained %.3f, noise log-precision %.2f\n", regions[j], ve, eh);
        CU_ASSERT(ve >= 0.0 && ve <= 1.0);
        CU_ASSERT(isfinite(eh));
    }
    /* SNR 4 on a good model: most of the variance is explained */
    const char *p = strstr(out, "mean variance explained ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    double mean = atof(p + strlen("mean variance explained "));
    CU_ASSERT(mean > 0.5 && mean <= 1.0);
    /* a lower threshold marks at least as many */
    int n95 = count(out, " *\n");
    CU_ASSERT_EQUAL(run("review m1.json --threshold 0.5"), 0);
    CU_ASSERT(count(out, " *\n") >= n95);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "posterior probability > 0.5"));
}

static void test_bad_inputs(void)
{
    const char *bad[] = {"missing.json", "not_a_result.json", "broken.json", "model.json"};
    char args[512];
    for (int i = 0; i < 4; i++) {
        snprintf(args, sizeof args, "report m1.json %s -o bad.html --png badfigs", bad[i]);
        int rc = run(args);
        printf("\n  [report %s] exit %d: %s", bad[i], rc, out);
        CU_ASSERT_EQUAL(rc, 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, bad[i]));
        CU_ASSERT_FALSE(exists("bad.html"));
        CU_ASSERT_FALSE(exists("badfigs"));
        snprintf(args, sizeof args, "review %s", bad[i]);
        rc = run(args);
        printf("  [review %s] exit %d: %s", bad[i], rc, out);
        CU_ASSERT_EQUAL(rc, 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, bad[i]));
    }
    CU_ASSERT(no_temp_files(""));
    /* cannot write: 4, nothing left behind */
    CU_ASSERT_EQUAL(run("report m1.json -o no/such/dir/r.html"), 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no/such/dir/r.html"));
    write_file("a_file", "x");
    CU_ASSERT_EQUAL(run("report m1.json -o r.html --png a_file"), 4);
    CU_ASSERT_FALSE(exists("r.html"));
}

/* ---- group comparison (--lme) ---- */

static const char *group_models[3] = {"fwd", "bwd", "none"};

/* 8 subjects x 3 models: fwd wins clearly (7 subjects by 6 to 9 nats),
   one subject prefers bwd. `cell` (if not NULL) replaces subject 5's bwd. */
static void write_lme(const char *name, const char *cell)
{
    char text[2048];
    int o = snprintf(text, sizeof text, "subject\tfwd\tbwd\tnone\n");
    for (int i = 1; i <= 8; i++) {
        double f = -1000.0 - 3.0 * i, b = i == 3 ? f + 2.0 : f - 6.0 - i % 3, n = f - 12.0 + i % 2;
        char bc[64];
        if (i == 5 && cell)
            snprintf(bc, sizeof bc, "%s", cell);
        else
            snprintf(bc, sizeof bc, "%.2f", b);
        o += snprintf(text + o, sizeof text - (size_t)o, "sub-%02d\t%.2f\t%s\t%.2f\n", i, f, bc, n);
    }
    write_file(name, text);
}

/* The row of `model` in the group table of html: alpha, exp_r, xp, pxp. */
static int group_row(const char *html, const char *model, double v[4])
{
    const char *sec = strstr(html, "<h2 id=\"group-comparison\">");
    if (!sec)
        return 0;
    char key[128];
    snprintf(key, sizeof key, "<tr><td>%s</td><td>", model);
    const char *p = strstr(sec, key);
    return p && sscanf(p + strlen(key), "%lf</td><td>%lf</td><td>%lf</td><td>%lf", &v[0], &v[1], &v[2],
                       &v[3]) == 4;
}

static void test_group(void)
{
    write_lme("group.tsv", NULL);
    int rc = run("report --lme group.tsv -o group.html --png gfigs");
    printf("\n  %s", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT(no_temp_files(""));
    CU_ASSERT(no_temp_files("gfigs"));
    size_t len = 0;
    char *html = slurp("group.html", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    printf("  group.html: %zu bytes\n", len);
    /* the group section alone: one figure, its caption, the table */
    CU_ASSERT_PTR_NOT_NULL(
        strstr(html, "<h2 id=\"group-comparison\">Group model comparison (random effects)</h2>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "href=\"#group-comparison\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "id=\"fig-group_comparison.png\""));
    CU_ASSERT_EQUAL(count(html, "<img "), 1);
    CU_ASSERT_EQUAL(count(html, "src=\"data:image/png;base64,iVBORw0KGgo"), 1);
    CU_ASSERT_EQUAL(count(html, "Legend:"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<th>alpha</th><th>exp_r</th><th>xp</th><th>pxp</th>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "Bayesian omnibus risk"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "protected exceedance probability"));
    CU_ASSERT_PTR_NULL(strstr(html, "id=\"model-1\""));
    CU_ASSERT_PTR_NULL(strstr(html, "id=\"comparison\""));
    CU_ASSERT_PTR_NULL(strstr(html, "<script"));
    CU_ASSERT_PTR_NULL(strstr(html, "http://"));
    CU_ASSERT_PTR_NULL(strstr(html, "https://"));
    /* the numbers are those of dcm compare --rfx */
    CU_ASSERT_EQUAL_FATAL(run("compare --rfx --lme group.tsv --json"), 0);
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    const char *keys[4] = {"alpha", "exp_r", "xp", "pxp"};
    double ref[4][3], xpsum = 0.0;
    for (int q = 0; q < 4; q++)
        CU_ASSERT_EQUAL(test_json_vec(json_object_get(j, keys[q]), ref[q], 3), 3);
    json_t *names = json_object_get(j, "models");
    CU_ASSERT_EQUAL(json_array_size(names), 3);
    for (int m = 0; m < 3; m++) {
        CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(names, (size_t)m)), group_models[m]);
        double v[4] = {NAN, NAN, NAN, NAN};
        CU_ASSERT_FATAL(group_row(html, group_models[m], v));
        printf("  %-5s alpha %.4f exp_r %.4f xp %.4f pxp %.4f (compare: xp %.6f)\n", group_models[m], v[0],
               v[1], v[2], v[3], ref[2][m]);
        for (int q = 0; q < 4; q++)
            CU_ASSERT(fabs(v[q] - ref[q][m]) <= 1e-4);
        xpsum += v[2];
    }
    CU_ASSERT(fabs(xpsum - 1.0) <= 2e-4);
    double v[4];
    CU_ASSERT(group_row(html, "fwd", v) && v[2] > 0.95 && v[3] > 0.95); /* the clear winner */
    /* the omnibus risk, as the report prints it (3 significant digits) */
    double bor = json_number_value(json_object_get(j, "bor")), bor_html = NAN;
    const char *b = strstr(html, "BOR = ");
    CU_ASSERT_FATAL(b && sscanf(b + 6, "%lf", &bor_html) == 1);
    CU_ASSERT(fabs(bor_html - bor) <= 5e-3 * bor);
    json_decref(j);
    free(html);
    /* the figure: a PNG at scale 2, of sensible size */
    unsigned w = 0, h = 0;
    CU_ASSERT(png_size("gfigs/group_comparison.png", &w, &h));
    printf("  gfigs/group_comparison.png: %u x %u\n", w, h);
    CU_ASSERT_EQUAL(w, 1920);
    CU_ASSERT(h >= 600 && h <= 3000);
    size_t plen = 0;
    char *png = slurp("gfigs/group_comparison.png", &plen);
    CU_ASSERT(png && plen > 20000); /* bars, text, legend: not an empty image */
    free(png);

    /* with result files: both comparisons and the models, the group first */
    CU_ASSERT_EQUAL_FATAL(run("report m1.json m2.json --lme group.tsv -o both.html --png bfigs"), 0);
    html = slurp("both.html", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    CU_ASSERT_EQUAL(count(html, "<img "), 10); /* 4 per model, comparison, group comparison */
    CU_ASSERT_EQUAL(count(html, "Legend:"), 10);
    const char *g = strstr(html, "id=\"group-comparison\""), *c = strstr(html, "<h2 id=\"comparison\"");
    CU_ASSERT(g && c && g < c);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "id=\"model-2\""));
    free(html);
    CU_ASSERT(exists("bfigs/group_comparison.png") && exists("bfigs/comparison.png") &&
              exists("bfigs/m1_fit.png"));
    /* without --lme: no group section */
    CU_ASSERT_FALSE(exists("figs/group_comparison.png"));

    /* bad tables: exit 2 with io_lme_read's message, nothing written */
    write_lme("nan.tsv", "NaN");
    write_lme("text.tsv", "abc");
    write_file("ragged.tsv", "subject\tfwd\tbwd\ns1\t-10\t-12\ns2\t-11\n");
    write_file("one_subject.tsv", "subject\tfwd\tbwd\ns1\t-10\t-12\n");
    write_file("one_model.tsv", "subject\tfwd\ns1\t-10\ns2\t-11\n");
    write_file("no_header.tsv", "s1\t-10\t-12\ns2\t-11\t-13\n");
    const char *bad[] = {"nan.tsv", "text.tsv", "ragged.tsv", "one_subject.tsv", "one_model.tsv",
                         "no_header.tsv", "missing.tsv"};
    char args[512];
    for (int i = 0; i < 7; i++) {
        for (int with_results = 0; with_results < 2; with_results++) {
            snprintf(args, sizeof args, "report %s--lme %s -o bad.html --png badfigs",
                     with_results ? "m1.json " : "", bad[i]);
            rc = run(args);
            if (!with_results)
                printf("  [report --lme %s] exit %d: %s", bad[i], rc, out);
            CU_ASSERT_EQUAL(rc, 2);
            CU_ASSERT_PTR_NOT_NULL(strstr(out, bad[i]));
            CU_ASSERT_FALSE(exists("bad.html"));
            CU_ASSERT_FALSE(exists("badfigs"));
        }
    }
    /* the NaN is named with its line and column */
    run("report --lme nan.tsv -o bad.html");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "line 6"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "not finite"));
    CU_ASSERT(no_temp_files(""));
}

/* Headless Chromium renders the report: no console messages, not blank. */
static void test_chromium(void)
{
    const char *chrome = getenv("DCM_CHROMIUM"); /* to try another build, or none */
    if (!chrome || !*chrome)
        chrome = "/usr/bin/chromium";
    if (access(chrome, X_OK) != 0) {
        printf("\nSKIP: %s not found — the rendering check needs Chromium (apt-get install chromium)\n",
               chrome);
        return;
    }
    if (!exists("report.html") && run("report m1.json m2.json -o report.html") != 0) {
        CU_FAIL("no report to render");
        return;
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && profile=$(mktemp -d) && timeout 120 %s --headless --no-sandbox --disable-gpu "
             "--disable-quic --no-first-run --disable-background-networking --disable-component-update "
             "--disable-sync --hide-scrollbars --user-data-dir=\"$profile\" --enable-logging=stderr --v=0 "
             "--screenshot=%s/shot.png --window-size=1280,4000 file://%s/report.html 2>chrome.log; "
             "rc=$?; rm -rf \"$profile\"; exit $rc",
             tmpdir, chrome, tmpdir, tmpdir);
    int rc = sh(cmd);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    size_t len = 0;
    char *log = slurp("chrome.log", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    /* the page has no scripts: any console message means a problem, such as
       a resource that failed to load */
    int console = count(log, ":CONSOLE(");
    if (console)
        printf("\n  console messages:\n%s\n", log);
    CU_ASSERT_EQUAL(console, 0);
    CU_ASSERT_PTR_NULL(strstr(log, "Failed to load resource"));
    CU_ASSERT_PTR_NULL(strstr(log, "Uncaught"));
    free(log);
    char png[512];
    path_of(png, sizeof png, "shot.png");
    cairo_surface_t *img = cairo_image_surface_create_from_png(png);
    CU_ASSERT_EQUAL_FATAL(cairo_surface_status(img), CAIRO_STATUS_SUCCESS);
    int w = cairo_image_surface_get_width(img), h = cairo_image_surface_get_height(img);
    int stride = cairo_image_surface_get_stride(img);
    cairo_surface_flush(img);
    const unsigned char *px = cairo_image_surface_get_data(img);
    long ink = 0, colour = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const unsigned char *p = px + (size_t)y * stride + 4 * (size_t)x; /* B G R A */
            if (p[0] < 235 || p[1] < 235 || p[2] < 235)
                ink++;
            if (abs(p[0] - p[2]) > 60) /* blue lines, orange bars */
                colour++;
        }
    printf("\n  screenshot %d x %d: %ld non-white pixels (%.1f %%), %ld coloured\n", w, h, ink,
           100.0 * ink / ((double)w * h), colour);
    CU_ASSERT_EQUAL(w, 1280);
    CU_ASSERT_EQUAL(h, 4000);
    CU_ASSERT(ink > 100000);  /* text and figures, not a blank page */
    /* the figures' colours are there, so the images decoded: with broken
       images the page keeps its text, tables and blue rules (~8000 coloured
       pixels), the figures bring ~70000 */
    CU_ASSERT(colour > 30000);
    cairo_surface_destroy(img);
}

int main(void)
{
    if (setup() != 0) {
        printf("test_report: cannot set up %s (is %s built?)\n", tmpdir, test_dcm_bin());
        return 1;
    }
    static const test_case cases[] = {{"help and usage errors", test_help},
                                      {"report: self-contained HTML and PNGs", test_report_html},
                                      {"review: parameters, marks, fit", test_review},
                                      {"bad inputs: exit 2, nothing written", test_bad_inputs},
                                      {"report --lme: group comparison (random effects)", test_group},
                                      {"headless Chromium renders the report", test_chromium},
                                      {NULL, NULL}};
    int rc = test_run("report", cases);
    teardown();
    return rc;
}
