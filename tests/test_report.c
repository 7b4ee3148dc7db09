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
#include <fontconfig/fontconfig.h>
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dcm/report/report.h"
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
    FcFini(); /* the figures drawn in this process: leak checkers see only our allocations */
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

static const char *kinds[] = {"fit", "inputs", "network", "parameters", "free_energy"};
#define NKINDS 5

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
    CU_ASSERT_EQUAL(nimg, 11); /* 5 per model + the comparison */
    CU_ASSERT_EQUAL(ndata, nimg);
    CU_ASSERT_EQUAL(count(html, "src=\""), ndata); /* no other source */
    /* every figure, with a caption that explains its legend */
    char id[128];
    for (int m = 1; m <= 2; m++)
        for (int k = 0; k < NKINDS; k++) {
            snprintf(id, sizeof id, "id=\"fig-m%d_%s.png\"", m, kinds[k]);
            CU_ASSERT_PTR_NOT_NULL(strstr(html, id));
        }
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "id=\"fig-comparison.png\""));
    CU_ASSERT_EQUAL(count(html, "Legend:"), 11);
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
        for (int k = 0; k < NKINDS; k++) {
            snprintf(name, sizeof name, "figs/m%d_%s.png", m, kinds[k]);
            unsigned w = 0, h = 0;
            CU_ASSERT(png_size(name, &w, &h));
            if (m == 1)
                printf("  %s: %u x %u\n", name, w, h);
            CU_ASSERT(w >= 1000 && w <= 4000);
            CU_ASSERT(h >= 280 && h <= 8000);
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
    CU_ASSERT_EQUAL(count(html, "<img "), 5);
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
    /* the report and its PNGs are one result: a figure that cannot be put
       in place (its name is taken by a folder) leaves the earlier report and
       figures exactly as they were */
    CU_ASSERT_EQUAL_FATAL(run("report m1.json -o keep.html --png keepfigs"), 0);
    size_t len0 = 0, plen0 = 0;
    char *html0 = slurp("keep.html", &len0), *png0 = slurp("keepfigs/m1_parameters.png", &plen0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(png0);
    char dirpath[512];
    /* the last figure written; the parameters figure before it differs at
       another threshold, so it would have been replaced one by one */
    path_of(dirpath, sizeof dirpath, "keepfigs/m1_free_energy.png");
    CU_ASSERT_EQUAL_FATAL(unlink(dirpath), 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(dirpath, 0700), 0);
    CU_ASSERT_EQUAL(run("report m1.json --threshold 0.99 -o keep.html --png keepfigs"), 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "m1_free_energy.png"));
    size_t len1 = 0, plen1 = 0;
    char *html1 = slurp("keep.html", &len1), *png1 = slurp("keepfigs/m1_parameters.png", &plen1);
    CU_ASSERT(html1 && len1 == len0 && memcmp(html0, html1, len0) == 0);
    CU_ASSERT(png1 && plen1 == plen0 && memcmp(png0, png1, plen0) == 0);
    CU_ASSERT(no_temp_files("keepfigs"));
    CU_ASSERT(no_temp_files(""));
    rmdir(dirpath);
    free(html0);
    free(html1);
    free(png0);
    free(png1);
    /* a figure's name (known only once the models are named) that is an
       input result or the report: refused, the input kept, no figure
       written (the PNGs and the report are one result: all or none) */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd '%s' && mkdir -p pngin && cp m1.json pngin/r.json && cp m1.json pngin/r_fit.png",
             tmpdir);
    CU_ASSERT_EQUAL(sh(cmd), 0);
    char *before = slurp("pngin/r_fit.png", NULL);
    CU_ASSERT_EQUAL(run("report pngin/r.json pngin/r_fit.png -o pngin/rep.html --png pngin"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "the figure pngin/r_fit.png is the result file pngin/r_fit.png"));
    char *after = slurp("pngin/r_fit.png", NULL);
    CU_ASSERT(before && after && !strcmp(before, after));
    free(before);
    free(after);
    CU_ASSERT_FALSE(exists("pngin/rep.html"));
    CU_ASSERT_FALSE(exists("pngin/r_network.png"));
    CU_ASSERT_EQUAL(run("report pngin/r.json -o pngin/r_inputs.png --png pngin"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "is the report -o pngin/r_inputs.png"));
    CU_ASSERT_FALSE(exists("pngin/r_inputs.png"));
    CU_ASSERT_FALSE(exists("pngin/r_network.png"));
    CU_ASSERT(no_temp_files("pngin"));
}

/* ---- what was fitted (issue 8 item 8) ---- */

/* x of the leftmost and rightmost columns of a PNG holding a vertical run of
   at least `run` dark grey pixels: the frames of the plots */
static int frame_edges(const char *name, int run, int *left, int *right)
{
    char path[512];
    path_of(path, sizeof path, name);
    cairo_surface_t *img = cairo_image_surface_create_from_png(path);
    if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(img);
        return 0;
    }
    cairo_surface_flush(img);
    int w = cairo_image_surface_get_width(img), h = cairo_image_surface_get_height(img);
    int stride = cairo_image_surface_get_stride(img);
    const unsigned char *px = cairo_image_surface_get_data(img);
    *left = *right = -1;
    for (int x = 0; x < w; x++) {
        int len = 0, best = 0;
        for (int y = 0; y < h; y++) {
            const unsigned char *p = px + (size_t)y * stride + 4 * (size_t)x;
            /* dark and grey (the frame, antialiased), not a coloured line */
            int grey = abs(p[0] - p[1]) < 30 && abs(p[1] - p[2]) < 30;
            len = (grey && p[0] < 170) ? len + 1 : 0;
            best = len > best ? len : best;
        }
        if (best >= run) {
            if (*left < 0)
                *left = x;
            *right = x;
        }
    }
    cairo_surface_destroy(img);
    return *left >= 0;
}

/* the text of the <td> after "<th>KEY</th><td>" (malloc'ed, NULL if absent) */
static char *table_cell(const char *html, const char *key)
{
    char k[256];
    snprintf(k, sizeof k, "<tr><th>%s</th><td>", key);
    const char *p = strstr(html, k);
    if (!p)
        return NULL;
    p += strlen(k);
    const char *e = strstr(p, "</td>");
    return e ? strndup(p, (size_t)(e - p)) : NULL;
}

static void test_inputs_figure(void)
{
    /* the result records the design: 120 scans x 16 bins of TR/16 = 0.125 s */
    char path[512];
    path_of(path, sizeof path, "m1.json");
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    json_t *d = json_object_get(j, "design");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(d, "microtime_bins")), 1920);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(d, "scans")), 120);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_object_get(d, "microtime_dt")), 0.125, 1e-12);
    /* six Stim blocks of 20 s: six runs of bins round(onset/dt) .. round((onset+20)/dt)
       inclusive (161 bins), the last one clipped at the last bin (MANUAL 3.3) */
    json_t *stim = json_object_get(json_object_get(d, "inputs"), "Stim");
    CU_ASSERT_EQUAL_FATAL(json_array_size(stim), 6);
    for (int b = 0; b < 6; b++) {
        json_t *r = json_array_get(stim, (size_t)b);
        int first = (40 * b + 20) * 8;
        CU_ASSERT_EQUAL(json_integer_value(json_array_get(r, 0)), first);
        CU_ASSERT_EQUAL(json_integer_value(json_array_get(r, 1)), first + 161 > 1920 ? 1920 - first : 161);
        CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_array_get(r, 2)), 1.0, 0);
    }
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(d, "confound_columns")), 0);
    json_decref(j);

    CU_ASSERT_EQUAL_FATAL(run("report m1.json -o inputs.html --png ifigs --scale 1"), 0);
    char *html = slurp("inputs.html", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "id=\"fig-m1_inputs.png\""));
    /* one row per input, in words under the figure, with its time on */
    const char *ol = strstr(html, "<ol class=\"inputs\">");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ol);
    const char *end = strstr(ol, "</ol>");
    CU_ASSERT_PTR_NOT_NULL_FATAL(end);
    int rows = 0;
    for (const char *p = ol; (p = strstr(p, "<li>")) && p < end; p++)
        rows++;
    CU_ASSERT_EQUAL(rows, 2);
    char want[256];
    const double stim_on = (5 * 161 + 160) * 0.125, attn_on = (5 * 81 + 80) * 0.125;
    snprintf(want, sizeof want, "<li><b>Stim</b>: on 6 times, %.4g s in all; drives R1</li>", stim_on);
    CU_ASSERT_PTR_NOT_NULL(strstr(ol, want));
    snprintf(want, sizeof want, "<li><b>Attn</b>: on 6 times, %.4g s in all; modulates R1-&gt;R2</li>", attn_on);
    CU_ASSERT_PTR_NOT_NULL(strstr(ol, want));
    free(html);
    /* the inputs share the fit's x axis: same plot frame left and right */
    int fl, fr, il, ir;
    CU_ASSERT_FATAL(frame_edges("ifigs/m1_fit.png", 40, &fl, &fr));
    CU_ASSERT_FATAL(frame_edges("ifigs/m1_inputs.png", 40, &il, &ir));
    printf("\n  plot frames: fit x %d..%d, inputs x %d..%d\n", fl, fr, il, ir);
    CU_ASSERT_EQUAL(fl, il);
    CU_ASSERT_EQUAL(fr, ir);
    CU_ASSERT(fr - fl > 700);
    /* and the figure has one panel per input: 2 frames stacked */
    unsigned w1 = 0, h1 = 0;
    CU_ASSERT(png_size("ifigs/m1_inputs.png", &w1, &h1));
    CU_ASSERT_EQUAL(w1, 960);
    /* via the library: the design as loaded, input by input */
    report_model m;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(report_load(path, &m, &err), DCM_OK);
    int times;
    double on;
    CU_ASSERT_EQUAL(report_input_on(&m, 0, &times, &on), 0);
    CU_ASSERT_EQUAL(times, 6);
    CU_ASSERT_DOUBLE_EQUAL(on, stim_on, 1e-9);
    plot_figure f1, f2;
    memset(&f1, 0, sizeof f1);
    memset(&f2, 0, sizeof f2);
    CU_ASSERT_EQUAL(report_fig_inputs(&m, &f1), 0);
    /* one input fewer: one panel fewer */
    m.s.m = 1;
    CU_ASSERT_EQUAL(report_fig_inputs(&m, &f2), 0);
    m.s.m = 2;
    printf("  inputs figure: %.0f px high with 2 inputs, %.0f with 1\n", f1.h, f2.h);
    CU_ASSERT(f1.h > f2.h + 50);
    plot_figure_free(&f1);
    plot_figure_free(&f2);
    report_model_free(&m);
    /* an older result (no "design"): a note instead of the figure */
    path_of(path, sizeof path, "m1.json");
    j = json_load_file(path, 0, &jerr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    json_object_del(j, "design");
    path_of(path, sizeof path, "old.json");
    CU_ASSERT_EQUAL_FATAL(json_dump_file(j, path, 0), 0);
    json_decref(j);
    CU_ASSERT_EQUAL_FATAL(run("report old.json -o old.html"), 0);
    html = slurp("old.html", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    CU_ASSERT_PTR_NULL(strstr(html, "_inputs.png"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "does not record the input design"));
    free(html);
    /* a malformed or oversized design is an input error naming the field; nothing written */
    const char *bad[2] = {"{\"microtime_dt\": 0.125, \"microtime_bins\": 1920, \"scans\": 120, "
                          "\"inputs\": {\"Stim\": [[1900, 40, 1]], \"Attn\": []}}",
                          "{\"microtime_dt\": 0.125, \"microtime_bins\": 99999999, \"scans\": 120, "
                          "\"inputs\": {\"Stim\": [], \"Attn\": []}}"};
    for (int i = 0; i < 2; i++) {
        path_of(path, sizeof path, "m1.json");
        j = json_load_file(path, 0, &jerr);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        json_object_set_new(j, "design", json_loads(bad[i], 0, &jerr));
        path_of(path, sizeof path, "baddesign.json");
        CU_ASSERT_EQUAL_FATAL(json_dump_file(j, path, 0), 0);
        json_decref(j);
        CU_ASSERT_EQUAL(run("report baddesign.json -o baddesign.html"), 2);
        printf("  [bad design %d] %s", i + 1, out);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "baddesign.json: \"design\""));
        CU_ASSERT_FALSE(exists("baddesign.html"));
    }
}

static void test_settings_table(void)
{
    char path[512];
    path_of(path, sizeof path, "m1.json");
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    json_t *model = json_object_get(j, "model"), *opt = json_object_get(model, "options");
    char want[256];
    CU_ASSERT_EQUAL_FATAL(run("report m1.json -o fitted.html"), 0);
    char *html = slurp("fitted.html", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<h3>What was fitted</h3>"));
    struct {
        const char *key;
        char value[256];
    } rows[9];
    int nr = 0;
    rows[nr].key = "TR";
    snprintf(rows[nr++].value, 256, "2 s");
    rows[nr].key = "TE";
    snprintf(rows[nr++].value, 256, "0.04 s");
    rows[nr].key = "slice-timing delays";
    snprintf(rows[nr++].value, 256, "%g s for every region",
             json_number_value(json_array_get(json_object_get(model, "delays"), 0)));
    rows[nr].key = "scans";
    snprintf(rows[nr++].value, 256, "120");
    rows[nr].key = "confound columns";
    snprintf(rows[nr++].value, 256, "1: a constant (SPM&#39;s default)");
    rows[nr].key = "data scale";
    snprintf(rows[nr++].value, 256, "%.6g (each region", json_number_value(json_object_get(j, "data_scale")));
    rows[nr].key = "maxit";
    snprintf(rows[nr++].value, 256, "%d", (int)json_integer_value(json_object_get(opt, "maxit")));
    rows[nr].key = "maxnodes";
    snprintf(rows[nr++].value, 256, "%d", (int)json_integer_value(json_object_get(opt, "maxnodes")));
    rows[nr].key = "model";
    snprintf(rows[nr++].value, 256, "bilinear, one-state, integrator bilinear");
    for (int i = 0; i < nr; i++) {
        char *cell = table_cell(html, rows[i].key);
        printf("%s  %-20s %s", i ? "" : "\n", rows[i].key, cell ? cell : "(missing)");
        printf("\n");
        CU_ASSERT_PTR_NOT_NULL(cell);
        if (cell)
            CU_ASSERT_EQUAL(strncmp(cell, rows[i].value, strlen(rows[i].value)), 0);
        free(cell);
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<tr><th>inputs mean-centred (centre)</th><td>no</td></tr>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<tr><th>noise log-precision prior</th><td>mean hE = 6, variance hC = "
                                        "1/128</td></tr>"));
    /* prior means and variances as the model used them (MANUAL 7.3) */
    const char *priors[] = {"<td>A between regions</td><td>1/128</td><td>1/64</td>",
                            "<td>A self-connections</td><td>0</td><td>1/64</td>",
                            "<td>B</td><td>0</td><td>1</td>", "<td>C</td><td>0</td><td>1</td>",
                            "<td>transit</td><td>0</td><td>1/256</td>", "<td>decay</td><td>0</td><td>1/256</td>",
                            "<td>epsilon</td><td>0</td><td>1/256</td>"};
    for (int i = 0; i < 7; i++)
        CU_ASSERT_PTR_NOT_NULL(strstr(html, priors[i]));
    CU_ASSERT_PTR_NULL(strstr(html, "<td>D</td>")); /* bilinear: no D */
    (void)want;
    free(html);
    json_decref(j);
}

static void test_unique_titles(void)
{
    CU_ASSERT_EQUAL_FATAL(sh("true"), 0);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir -p sub-01 sub-02 a/x b/x && cp m1.json sub-01/fwd.json && cp m2.json sub-02/fwd.json"
             " && cp m1.json a/x/fwd.json && cp m2.json b/x/fwd.json",
             tmpdir);
    CU_ASSERT_EQUAL_FATAL(sh(cmd), 0);
    CU_ASSERT_EQUAL_FATAL(run("report sub-01/fwd.json sub-02/fwd.json -o dup.html --png dfigs"), 0);
    char *html = slurp("dup.html", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<h2 id=\"model-1\">Model 1: sub-01/fwd</h2>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<h2 id=\"model-2\">Model 2: sub-02/fwd</h2>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<h3>Parameters of sub-01/fwd</h3>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<h3>Parameters of sub-02/fwd</h3>"));
    free(html);
    CU_ASSERT(exists("dfigs/sub-01_fwd_fit.png") && exists("dfigs/sub-02_fwd_fit.png"));
    /* deeper: the shortest suffix that differs */
    CU_ASSERT_EQUAL_FATAL(run("report a/x/fwd.json b/x/fwd.json m1.json -o deep.html"), 0);
    html = slurp("deep.html", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "Model 1: a/x/fwd</h2>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "Model 2: b/x/fwd</h2>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "Model 3: m1</h2>")); /* no clash: its plain name */
    free(html);
    /* the same file twice */
    CU_ASSERT_EQUAL_FATAL(run("report m1.json ./m1.json -o twice.html"), 0);
    html = slurp("twice.html", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "Model 1: m1</h2>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "Model 2: m1 (2)</h2>"));
    free(html);
}

/* m1.json with parameter k moved to mean e and sd (the "vector" block,
   which the report reads) */
static void set_param(json_t *j, int k, double e, double sd)
{
    json_t *vec = json_object_get(j, "vector");
    json_array_set_new(json_object_get(vec, "posterior_mean"), (size_t)k, json_real(e));
    json_t *row = json_array_get(json_object_get(vec, "posterior_cov"), (size_t)k);
    json_array_set_new(row, (size_t)k, json_real(sd * sd));
}

/* The parameter table row of `name`: mean, sd, interval, prior mean, Pp, marked */
static int param_row(const char *html, const char *name, double v[6], int *marked)
{
    char key[128];
    snprintf(key, sizeof key, "<tr><td>%s</td><td>", name);
    const char *p = strstr(html, key);
    int n = 0;
    if (!p || sscanf(p + strlen(key), "%lf</td><td>%lf</td><td>[%lf, %lf]</td><td>%lf</td><td>%lf%n", &v[0],
                     &v[1], &v[2], &v[3], &v[4], &v[5], &n) != 6)
        return 0;
    *marked = !strncmp(p + strlen(key) + n, " <span class=\"mark\">*", 21);
    return 1;
}

static void test_forest_rule(void)
{
    char path[512];
    path_of(path, sizeof path, "m1.json");
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    /* the case: A = -0.101 [-0.196, -0.005], Pp 0.945 (prior mean 1/128) */
    const double z = 1.6448536269514722, lo = -0.196, hi = -0.005;
    const int kA = 1, kB = 9 + 9 + 1, kC = 27; /* A:R1->R2, B:Attn:R1->R2, C:Stim->R1 */
    set_param(j, kA, (lo + hi) / 2, (hi - lo) / (2 * z));
    /* just above and just below Pp = 0.95 with prior mean 0 */
    set_param(j, kB, 0.1, 0.1 / 1.65);
    set_param(j, kC, 0.1, 0.1 / 1.64);
    path_of(path, sizeof path, "border.json");
    CU_ASSERT_EQUAL_FATAL(json_dump_file(j, path, JSON_REAL_PRECISION(17)), 0);
    json_decref(j);
    CU_ASSERT_EQUAL_FATAL(run("report border.json -o border.html"), 0);
    char *html = slurp("border.html", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    double v[6];
    int marked = -1;
    CU_ASSERT_FATAL(param_row(html, "A:R1-&gt;R2", v, &marked));
    printf("\n  A:R1->R2 = %.4f [%.4f, %.4f], prior mean %.6f, Pp %.4f, %s\n", v[0], v[2], v[3], v[4], v[5],
           marked ? "marked" : "not marked");
    CU_ASSERT(v[2] < 0 && v[3] < 0);                  /* the interval excludes zero ... */
    CU_ASSERT(v[3] > -1.0 / 128);                     /* ... but not the prior mean */
    CU_ASSERT(v[5] > 0.944 && v[5] < 0.9455);         /* so Pp is below 0.95 */
    CU_ASSERT_DOUBLE_EQUAL(v[4], 1.0 / 128, 1e-6);
    CU_ASSERT_FALSE(marked);
    CU_ASSERT_FATAL(param_row(html, "B:Attn:R1-&gt;R2", v, &marked));
    CU_ASSERT(v[5] > 0.95 && v[2] > 0 && marked);     /* just above: filled, interval beyond 0 */
    CU_ASSERT_FATAL(param_row(html, "C:Stim-&gt;R1", v, &marked));
    CU_ASSERT(v[5] < 0.95 && v[2] < 0 && v[3] > 0 && !marked);
    /* the caption states that rule, and no other */
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<b>A dot is filled exactly when Pp &gt; 0.95</b>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "90 % credible interval (mean &plusmn; 1.645 sd)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "excludes zero but is hollow"));
    CU_ASSERT_PTR_NULL(strstr(html, "an interval that excludes zero is strong evidence"));
    free(html);
    /* the library: the figure's fill (Pp > P) is the interval lying beyond the prior mean,
       for every parameter and several thresholds */
    report_model m;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(report_load(path, &m, &err), DCM_OK);
    const double thr[] = {0.5, 0.9, 0.95, 0.99};
    int checked = 0;
    for (int t = 0; t < 4; t++)
        for (int k = 0; k < m.s.np; k++) {
            if (!report_param_free(&m, k))
                continue;
            CU_ASSERT_EQUAL(report_param_beyond_prior(&m, k, report_interval_z(thr[t])), m.Pp[k] > thr[t]);
            checked++;
        }
    CU_ASSERT(checked > 40);
    CU_ASSERT_DOUBLE_EQUAL(report_interval_z(0.95), z, 1e-9);
    CU_ASSERT_FALSE(report_param_beyond_prior(&m, kA, z));
    CU_ASSERT(report_param_beyond_prior(&m, kB, z));
    plot_figure f;
    memset(&f, 0, sizeof f);
    CU_ASSERT_EQUAL(report_fig_params(&m, 0.95, &f), 0);
    plot_figure_free(&f);
    report_model_free(&m);
    /* another threshold: the interval drawn follows it (Pp > 0.99 <=> 98 % interval) */
    CU_ASSERT_EQUAL_FATAL(run("report border.json -o border99.html --threshold 0.99"), 0);
    html = slurp("border99.html", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<th>98 % credible interval</th>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<b>A dot is filled exactly when Pp &gt; 0.99</b>"));
    CU_ASSERT_FATAL(param_row(html, "B:Attn:R1-&gt;R2", v, &marked));
    CU_ASSERT(v[2] < 0 && !marked); /* the 98 % interval reaches zero: hollow */
    free(html);
}

static void test_units(void)
{
    CU_ASSERT_EQUAL_FATAL(run("report m1.json -o units.html"), 0);
    char *html = slurp("units.html", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    /* C enters divided by 16 (MANUAL 5.4), in the forest plot's and the diagram's captions */
    CU_ASSERT(count(html, "C/16 Hz per unit input") >= 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "C enters the equations divided by 16"));
    CU_ASSERT_PTR_NULL(strstr(html, "A, B, C and D are rates in Hz"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "between-region A, B and D are rates in Hz"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "self-inhibition rate &minus;0.5&middot;exp(A) in Hz"));
    free(html);
    /* the manual says the same (when the tests run from the source tree) */
    FILE *f = fopen("MANUAL.md", "r");
    if (f) {
        static char manual[1 << 20];
        size_t n = fread(manual, 1, sizeof manual - 1, f);
        manual[n] = 0;
        fclose(f);
        const char *u = strstr(manual, "### 5.4 Units");
        CU_ASSERT_PTR_NOT_NULL_FATAL(u);
        const char *e = strstr(u + 5, "\n## ");
        CU_ASSERT_PTR_NOT_NULL_FATAL(e);
        char *sec = strndup(u, (size_t)(e - u));
        CU_ASSERT_PTR_NOT_NULL(strstr(sec, "C/16 Hz per unit input"));
        CU_ASSERT_PTR_NOT_NULL(strstr(sec, "diagonals of B and D"));
        free(sec);
    } else {
        printf("\nSKIP (part): MANUAL.md not in the working directory\n");
    }
}

static void test_warnings(void)
{
    char path[512];
    path_of(path, sizeof path, "m1.json");
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    json_object_set_new(j, "warnings", json_pack("[ss]", "TR 3 s: 2 events start after the last scan",
                                                 "variance explained 4.2 % is below 10 % <check>"));
    json_object_set_new(j, "diagnostics", json_pack("{sfsfsfsi}", "variance_explained", 4.2, "max_abs_connection",
                                                    0.0625, "effective_parameters", 0.5, "accepted_steps", 1));
    path_of(path, sizeof path, "warned.json");
    CU_ASSERT_EQUAL_FATAL(json_dump_file(j, path, 0), 0);
    json_object_set_new(j, "warnings", json_array());
    path_of(path, sizeof path, "clean.json");
    CU_ASSERT_EQUAL_FATAL(json_dump_file(j, path, 0), 0);
    json_object_set_new(j, "warnings", json_integer(3));
    path_of(path, sizeof path, "badwarn.json");
    CU_ASSERT_EQUAL_FATAL(json_dump_file(j, path, 0), 0);
    /* a result written before results carried warnings */
    json_object_del(j, "warnings");
    json_object_del(j, "diagnostics");
    path_of(path, sizeof path, "old.json");
    CU_ASSERT_EQUAL_FATAL(json_dump_file(j, path, 0), 0);
    json_decref(j);

    CU_ASSERT_EQUAL_FATAL(run("report warned.json clean.json old.json -o warned.html"), 0);
    char *html = slurp("warned.html", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    /* at the top of the section: right after its title, before any table */
    const char *h = strstr(html, "<h2 id=\"model-1\">Model 1: warned</h2>\n<div class=\"warn\"><b>2 warnings from "
                                 "dcm estimate</b>");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    const char *w1 = strstr(h, "<li>TR 3 s: 2 events start after the last scan</li>");
    const char *w2 = strstr(h, "<li>variance explained 4.2 % is below 10 % &lt;check&gt;</li>");
    const char *tab = strstr(h, "<table");
    CU_ASSERT(w1 && w2 && tab && w1 < tab && w2 < tab);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "Model 1: warned</a> <span class=\"mark\">(2 warnings)</span>"));
    /* the diagnostics in a table */
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<tr><td>variance explained, all regions</td><td>4.2 %</td>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<tr><td>largest between-region |A|</td><td>0.0625 Hz</td>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<tr><td>effective number of parameters</td><td>0.50</td>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<tr><td>accepted steps</td><td>1</td>"));
    /* an empty list says so; an older result says it has none recorded */
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "Model 2: clean</h2>\n<p class=\"ok\">no warnings</p>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "Model 3: old</h2>\n<p class=\"meta\">This result file predates"));
    CU_ASSERT_EQUAL(count(html, "<div class=\"warn\">"), 1);
    free(html);
    /* a malformed list is an input error naming the field */
    CU_ASSERT_EQUAL(run("report badwarn.json -o badwarn.html"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"warnings\""));
    CU_ASSERT_FALSE(exists("badwarn.html"));
}

/* issue 9: regions are matched by name, names are whole */
static void test_names_matched(void)
{
    /* the same model with its regions listed in another order, fitted to the same data */
    write_file("perm.json",
               "{\"TR\": 2.0, \"TE\": 0.04, \"scans\": 120,\n"
               " \"timeseries\": \"ts.tsv\", \"regions\": [\"R3\", \"R1\", \"R2\"],\n"
               " \"events\": \"events.tsv\", \"inputs\": [\"Stim\", \"Attn\"],\n"
               " \"a\": [\"R1 -> R2\", \"R2 -> R3\"],\n"
               " \"b\": {\"Attn\": [\"R1 -> R2\"]},\n"
               " \"c\": {\"Stim\": [\"R1\"]}}\n");
    CU_ASSERT_EQUAL_FATAL(run("estimate -q perm.json -o mperm.json"), 0);
    CU_ASSERT_EQUAL_FATAL(run("report m1.json mperm.json -o perm.html"), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "no model comparison"));
    char *html = slurp("perm.html", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<h2 id=\"comparison\">"));
    CU_ASSERT_PTR_NULL(strstr(html, "No comparison"));
    /* the same model: log Bayes factor ~ 0 */
    const char *r = strstr(html, "<tr><td>mperm</td><td>");
    double F = NAN, lbf = NAN;
    CU_ASSERT_FATAL(r && sscanf(r + strlen("<tr><td>mperm</td><td>"), "%lf</td><td>%lf", &F, &lbf) == 2);
    printf("\n  regions reordered: F = %.4f, log BF vs best %.4f\n", F, lbf);
    CU_ASSERT(fabs(lbf) < 0.05);
    free(html);
    /* a region the other lacks: no comparison, and the message names it */
    CU_ASSERT_EQUAL_FATAL(run("report m1.json long.json -o long.html"), 2); /* not there yet */
    char path[512];
    path_of(path, sizeof path, "m1.json");
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    char longname[401];
    memset(longname, 'x', 400);
    longname[400] = 0;
    memcpy(longname, "Region", 6);
    json_array_set_new(json_object_get(j, "regions"), 1, json_string(longname));
    path_of(path, sizeof path, "long.json");
    CU_ASSERT_EQUAL_FATAL(json_dump_file(j, path, JSON_REAL_PRECISION(17)), 0);
    json_decref(j);
    CU_ASSERT_EQUAL_FATAL(run("report m1.json long.json -o long.html"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no model comparison"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "has a region R2 that long lacks"));
    html = slurp("long.html", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(html);
    /* the parameter named whole: "A:R1->Regionxxx...x" (400 characters) */
    char want[512];
    snprintf(want, sizeof want, "<tr><td>A:R1-&gt;%s</td>", longname);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, want));
    snprintf(want, sizeof want, "<tr><td>B:Attn:R1-&gt;%s</td>", longname);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, want));
    free(html);
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
    CU_ASSERT_EQUAL(count(html, "<img "), 12); /* 5 per model, comparison, group comparison */
    CU_ASSERT_EQUAL(count(html, "Legend:"), 12);
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
                                      {"inputs figure on the fit's scan axis", test_inputs_figure},
                                      {"what was fitted: TR, TE, delays, confounds, scale, options, priors",
                                       test_settings_table},
                                      {"results with the same file name get distinct titles", test_unique_titles},
                                      {"forest plot: filled exactly when Pp > P, borderline case", test_forest_rule},
                                      {"units as MANUAL 5.4 states them", test_units},
                                      {"warnings at the top, diagnostics in a table", test_warnings},
                                      {"regions matched by name, names whole", test_names_matched},
                                      {"report --lme: group comparison (random effects)", test_group},
                                      {"headless Chromium renders the report", test_chromium},
                                      {NULL, NULL}};
    int rc = test_run("report", cases);
    teardown();
    return rc;
}
