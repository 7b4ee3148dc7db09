/* test_cli.c — the `dcm` command end to end: the spec route against SPM12,
 * simulate -> estimate -> compare, help texts, and every kind of bad input
 * (clear message, documented exit code, no output file left behind).
 * Runs the binary named by $DCM_BIN (the sanitized build under make test). */
#define _XOPEN_SOURCE 700 /* realpath */
#include <limits.h>
#include <stdlib.h>

#include "io/io_result.h"
#include "tests/test_util.h"

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[256];
static char out[65536];

/* Run `dcm ARGS` (stderr merged), keep its output in `out`, return its
 * exit status. */
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

static int no_temp_files(void)
{
    return test_no_temp_files(tmpdir);
}

/* A small, valid three-region problem: design and data generated here. */
static void write_design(void)
{
    FILE *f;
    char path[512];
    snprintf(path, sizeof path, "%s/events.tsv", tmpdir);
    f = fopen(path, "w");
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
}

static const char *spec_body =
    "{\"TR\": 2.0, \"TE\": 0.04, \"scans\": 120,\n"
    " \"timeseries\": \"%s\", \"regions\": [\"R1\", \"R2\", \"R3\"],\n"
    " \"events\": \"events.tsv\", \"inputs\": [\"Stim\", \"Attn\"],\n"
    " \"a\": [\"R1 -> R2\", \"R2 -> R3\"%s],\n"
    " \"b\": {\"Attn\": [\"R1 -> R2\"]},\n"
    " \"c\": {\"Stim\": [\"R1\"]}%s}\n";

static void write_spec(const char *name, const char *ts, const char *extra_edges,
                       const char *extra_keys)
{
    char text[2048];
    snprintf(text, sizeof text, spec_body, ts, extra_edges, extra_keys);
    write_file(name, text);
}

static int setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dcm-cli-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    write_design();
    write_spec("model.json", "ts.tsv", "", "");
    char args[1024];
    snprintf(args, sizeof args, "simulate %s/model.json --params %s/truth.json --snr 4 --seed 5 -o %s/ts.tsv",
             tmpdir, tmpdir, tmpdir);
    return run(args) == 0 ? 0 : -1;
}

static int teardown(void)
{
    return test_remove_dir(tmpdir);
}

/* ---- the working paths ---- */

static void test_help(void)
{
    const char *cmds[] = {"estimate", "simulate", "compare", "reduce", "average", "peb",
                          "batch", "extract", "report", "review", "check"};
    for (int i = 0; i < 11; i++) {
        char args[64];
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        CU_ASSERT_EQUAL(run(args), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "example"));
    }
    CU_ASSERT_EQUAL(run("--help"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "exit status"));
    CU_ASSERT_EQUAL(run("frobnicate"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "not a command"));
    CU_ASSERT_EQUAL(run("estimate"), 1);
    CU_ASSERT_EQUAL(run("estimate x.json --maxit zero -o y.json"), 1);
}

/* Every option a command accepts is in its --help: the commands come from
 * `dcm --help`, their options from the command's own table (the hidden
 * --list-options prints it), so neither list is a copy kept here. Each
 * listed option is also accepted (not "unknown") by the command. */
static void test_help_lists_every_option(void)
{
    CU_ASSERT_EQUAL_FATAL(run("--help"), 0);
    char commands[32][32];
    int ncmd = 0;
    const char *p = strstr(out, "commands:\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    p += strlen("commands:\n");
    while (ncmd < 32 && sscanf(p, "  %31s", commands[ncmd]) == 1 && !strncmp(p, "  ", 2)) {
        ncmd++;
        p = strchr(p, '\n');
        if (!p)
            break;
        p++;
    }
    CU_ASSERT_EQUAL(ncmd, 14);   /* estimate ... check, loo, bids, evidence */
    int checked = 0;
    for (int c = 0; c < ncmd; c++) {
        char args[128], options[4096], help[16384];
        snprintf(args, sizeof args, "%s --list-options", commands[c]);
        CU_ASSERT_EQUAL(run(args), 0);
        snprintf(options, sizeof options, "%s", out);
        snprintf(args, sizeof args, "%s --help", commands[c]);
        CU_ASSERT_EQUAL(run(args), 0);
        snprintf(help, sizeof help, "%s", out);
        int nlong = 0;
        for (char *save = NULL, *o = strtok_r(options, "\n", &save); o; o = strtok_r(NULL, "\n", &save)) {
            if (strncmp(o, "--", 2))
                continue;
            nlong++;
            /* the whole name: "--params" is not found inside "--params-out" */
            int found = 0;
            size_t len = strlen(o);
            for (const char *h = strstr(help, o); h && !found; h = strstr(h + 1, o))
                found = (h == help || h[-1] == ' ' || h[-1] == '\n') &&
                        (h[len] == ' ' || h[len] == '\n' || h[len] == ',' || h[len] == '=');
            if (!found)
                printf("\n  dcm %s --help does not show %s\n", commands[c], o);
            CU_ASSERT(found);
            checked++;
            if (!strcmp(o, "--help"))
                continue;
            /* accepted: a usage error for what is missing, never "unknown" */
            snprintf(args, sizeof args, "%s %s", commands[c], o);
            int rc = run(args);
            CU_ASSERT(rc == 1);
            CU_ASSERT_PTR_NULL(strstr(out, "unknown option"));
        }
        CU_ASSERT(nlong >= 2); /* at least one option and --help */
    }
    printf("\n  %d long options of %d commands found in their --help\n", checked, ncmd);
    /* the parser's syntax in a real command: --opt=value, -- */
    CU_ASSERT_EQUAL(run("estimate x.json --maxit=zero -o y.json"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--maxit needs a whole number from 1 to 100000"));
    CU_ASSERT_EQUAL(run("review --threshold=2 r.json"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--threshold must be a probability between 0 and 1 (exclusive), not '2'"));
    CU_ASSERT_EQUAL(run("estimate --frobnicate x.json"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "unknown option '--frobnicate' (see dcm estimate --help)"));
    CU_ASSERT_EQUAL(run("review -- --not-an-option.json"), 2); /* a file name after -- */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--not-an-option.json"));
}

static void test_simulate_estimate_compare(void)
{
    char args[1024];
    write_spec("alt.json", "ts.tsv", ", \"R1 -> R3\"", "");
    snprintf(args, sizeof args, "estimate -q %s/model.json -o %s/m1.json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(run(args), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "converged"));
    snprintf(args, sizeof args, "estimate %s/alt.json -o %s/m2.json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(run(args), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "iteration"));
    CU_ASSERT(no_temp_files());
    snprintf(args, sizeof args, "compare --json %s/m1.json %s/m2.json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 0);
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    json_t *models = json_object_get(o, "results");
    double p1 = json_real_value(json_object_get(json_array_get(models, 0), "posterior_probability"));
    double p2 = json_real_value(json_object_get(json_array_get(models, 1), "posterior_probability"));
    double f1 = json_real_value(json_object_get(json_array_get(models, 0), "free_energy"));
    double f2 = json_real_value(json_object_get(json_array_get(models, 1), "free_energy"));
    printf("\n  true model F %.2f, model with an extra connection F %.2f\n", f1, f2);
    CU_ASSERT_DOUBLE_EQUAL(p1 + p2, 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(p1 / p2, exp(f1 - f2), 1e-9 * p1 / p2);
    CU_ASSERT(f1 > f2); /* the extra connection is not worth its complexity */
    json_decref(o);
    /* models fitted to different data cannot be compared by F */
    snprintf(args, sizeof args, "simulate %s/model.json --params %s/truth.json --snr 2 --seed 6 -o %s/ts2.tsv",
             tmpdir, tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(run(args), 0);
    write_spec("other.json", "ts2.tsv", "", "");
    snprintf(args, sizeof args, "estimate -q %s/other.json -o %s/m3.json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(run(args), 0);
    snprintf(args, sizeof args, "compare %s/m1.json %s/m3.json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "different data"));
    /* the result holds what the issue asks for, and the truth is recovered */
    dcm_error err;
    io_result_summary s;
    memset(&s, 0, sizeof s);
    char path[512];
    snprintf(path, sizeof path, "%s/m1.json", tmpdir);
    CU_ASSERT_EQUAL_FATAL(io_result_load(path, &s, &err), 0);
    CU_ASSERT_EQUAL(s.n, 3);
    CU_ASSERT_EQUAL(s.converged, 1);
    int iA = 1; /* A(R2 <- R1), column-major */
    printf("  A(R1->R2) = %.3f +- %.3f (true 0.4)\n", s.Ep[iA], sqrt(s.Cp[iA * s.np + iA]));
    CU_ASSERT(fabs(s.Ep[iA] - 0.4) < 0.15);
    io_result_summary_free(&s);
    json_t *r = json_load_file(path, 0, &je);
    const char *keys[] = {"free_energy", "posterior_mean", "posterior_sd", "posterior_probability",
                          "noise_log_precision", "iterations", "converged",
                          "free_energy_trajectory", "observed_bold_scaled",
                          "predicted_bold_scaled", "seconds"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        CU_ASSERT_PTR_NOT_NULL(json_object_get(r, keys[i]));
    json_t *pm = json_object_get(r, "posterior_mean");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(pm, "A")), 3);
    CU_ASSERT_PTR_NOT_NULL(json_object_get(json_object_get(pm, "B"), "Attn"));
    CU_ASSERT_EQUAL(json_array_size(json_object_get(r, "predicted_bold_scaled")), 120);
    json_decref(r);
}

/* --log-json: every stderr line is one JSON object; start, iterations, done */
static void test_log_json(void)
{
    char args[2048];
    snprintf(args, sizeof args, "estimate %s/model.json -o %s/lj.json --log-json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(run(args), 0);
    int lines = 0, iterations = 0, ok = 1;
    char first[32] = "", last[32] = "";
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] != '{')
            continue; /* the summary line on stdout */
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (!o) {
            ok = 0;
            continue;
        }
        const char *ev = json_string_value(json_object_get(o, "event"));
        if (ev) {
            if (!lines)
                snprintf(first, sizeof first, "%s", ev);
            snprintf(last, sizeof last, "%s", ev);
            iterations += !strcmp(ev, "iteration");
        }
        lines++;
        json_decref(o);
    }
    printf("\n  %d JSON lines, %d iterations, first '%s', last '%s'\n", lines, iterations, first, last);
    CU_ASSERT(ok);
    CU_ASSERT_STRING_EQUAL(first, "start");
    CU_ASSERT_STRING_EQUAL(last, "done");
    CU_ASSERT(iterations >= 4);
    snprintf(args, sizeof args, "estimate %s/absent.json -o %s/lj2.json --log-json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"event\":\"error\""));
}

/* The spec route on SPM's data gives SPM's answer. */
static void test_spm_attention_via_spec(void)
{
    char ref[512], data[512];
    if (!test_shared_path("reference/attention/spm_attention_fwd.json", ref, sizeof ref) ||
        !test_shared_path("datasets/attention/timeseries.tsv", data, sizeof data))
        return;
    char abs[PATH_MAX];
    snprintf(data, sizeof data, "%s/datasets/attention", test_shared_dir());
    CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(data, abs));
    char text[16384];
    snprintf(text, sizeof text,
             "{\"TR\": 3.22, \"TE\": 0.04,\n"
             " \"timeseries\": \"%s/timeseries.tsv\", \"regions\": [\"V1\", \"V5\", \"SPC\"],\n"
             " \"confounds\": \"%s/confounds.tsv\",\n"
             " \"events\": \"%s/events.tsv\", \"inputs\": [\"Photic\", \"Motion\", \"Attention\"],\n"
             " \"a\": [[1,1,0],[1,1,1],[0,1,1]],\n"
             " \"b\": {\"Motion\": [[0,0,0],[1,0,0],[0,0,0]], \"Attention\": [[0,0,0],[1,0,0],[0,0,0]]},\n"
             " \"c\": [[1,0,0],[0,0,0],[0,0,0]],\n"
             " \"delays\": [1.61, 1.61, 1.61],\n"
             " \"options\": {\"two_state\": false, \"centre\": false, \"maxit\": 128}}\n",
             abs, abs, abs);
    write_file("attention_fwd.json", text);
    char args[1024];
    snprintf(args, sizeof args, "estimate -q %s/attention_fwd.json -o %s/fwd_result.json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(run(args), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/fwd_result.json", tmpdir);
    io_result_summary ours, spm;
    memset(&ours, 0, sizeof ours);
    memset(&spm, 0, sizeof spm);
    dcm_error err;
    CU_ASSERT_EQUAL_FATAL(io_result_load(path, &ours, &err), 0);
    CU_ASSERT_EQUAL_FATAL(io_result_load(ref, &spm, &err), 0);
    CU_ASSERT_EQUAL_FATAL(ours.np, spm.np);
    double dEp = 0.0;
    for (int i = 0; i < ours.np; i++)
        dEp = fmax(dEp, fabs(ours.Ep[i] - spm.Ep[i]));
    printf("\n  via the spec: F %.4f (SPM %.4f), max |dEp| %.2e\n", ours.F, spm.F, dEp);
    CU_ASSERT(fabs(ours.F - spm.F) <= 0.5);
    CU_ASSERT(dEp <= 0.01);
    io_result_summary_free(&ours);
    io_result_summary_free(&spm);
    /* Bayesian model reduction of our own estimate agrees with SPM's
       reduction of its estimate */
    char bmr[512];
    if (!test_shared_path("reference/attention/spm_bmr_fwd_no_attention.json", bmr, sizeof bmr))
        return;
    snprintf(args, sizeof args, "reduce %s --off 'B:Attention:V1->V5' --json", path);
    CU_ASSERT_EQUAL_FATAL(run(args), 0);
    json_error_t je;
    json_t *o = json_loads(out, 0, &je), *r = json_load_file(bmr, 0, &je);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    double dF = json_number_value(json_object_get(o, "dF"));
    double dF_spm = json_number_value(json_object_get(r, "dF"));
    json_t *sE = json_object_get(json_object_get(o, "vector"), "posterior_mean");
    double dE = 0.0;
    for (size_t i = 0; i < json_array_size(sE); i++)
        dE = fmax(dE, fabs(json_number_value(json_array_get(sE, i)) -
                           json_number_value(json_array_get(json_object_get(r, "sE"), i))));
    printf("  BMR of our estimate: dF %.4f (SPM %.4f), max |reduced mean - SPM's| %.2e\n", dF, dF_spm, dE);
    CU_ASSERT(fabs(dF - dF_spm) <= 0.5);
    CU_ASSERT(dE <= 0.01);
    json_decref(o);
    json_decref(r);
}

/* ---- bad input: message, exit code, no output ---- */

static void expect_failure(const char *spec, int code, const char *needle)
{
    char args[2048];
    snprintf(args, sizeof args, "estimate -q %s/%s -o %s/bad_out.json", tmpdir, spec, tmpdir);
    int rc = run(args);
    printf("\n  [%s] exit %d: %s", spec, rc, out);
    CU_ASSERT_EQUAL(rc, code);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, needle));
    CU_ASSERT_FALSE(exists("bad_out.json"));
    CU_ASSERT(no_temp_files());
}

static void test_bad_json(void)
{
    write_file("bad1.json", "{\"TR\": 2.0,\n \"TE\": 0.04\n \"regions\": []}\n");
    expect_failure("bad1.json", 2, "bad1.json:3:10"); /* file:line:column */
}

static void test_missing_file(void)
{
    write_spec("bad2.json", "no_such.tsv", "", "");
    expect_failure("bad2.json", 2, "no_such.tsv");
    char args[2048];
    snprintf(args, sizeof args, "estimate %s/absent.json -o %s/bad_out.json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "absent.json"));
}

static void test_wrong_columns(void)
{
    write_file("cols.tsv", "R1\tR2\n1\t2\n3\t4\n");
    write_spec("bad3.json", "cols.tsv", "", "");
    expect_failure("bad3.json", 2, "R3");
    write_file("ragged.tsv", "R1\tR2\tR3\n1\t2\t3\n4\t5\n");
    write_spec("bad3b.json", "ragged.tsv", "", "");
    expect_failure("bad3b.json", 2, "line 3");
}

static void test_nan_in_data(void)
{
    char text[65536], *p = text;
    p += sprintf(p, "R1\tR2\tR3\n");
    for (int i = 0; i < 120; i++)
        p += sprintf(p, "%s\t0.1\t0.2\n", i == 17 ? "NaN" : "0.3");
    write_file("nan.tsv", text);
    write_spec("bad4.json", "nan.tsv", "", "");
    expect_failure("bad4.json", 2, "line 19");
}

static void test_lengths_disagree(void)
{
    write_file("short_conf.tsv", "1\n1\n1\n");
    write_spec("bad5.json", "ts.tsv", "", ", \"confounds\": \"short_conf.tsv\"");
    expect_failure("bad5.json", 2, "confounds");
}

static void test_bad_TR(void)
{
    char text[2048];
    snprintf(text, sizeof text, spec_body, "ts.tsv", "", "");
    char *tr = strstr(text, "2.0");
    memcpy(tr, "0.0", 3);
    write_file("bad6.json", text);
    expect_failure("bad6.json", 2, "TR");
}

static void test_unknown_names(void)
{
    write_spec("bad7.json", "ts.tsv", ", \"R1 -> MT\"", "");
    expect_failure("bad7.json", 2, "MT");
    char text[2048];
    snprintf(text, sizeof text, spec_body, "ts.tsv", "", "");
    char *b = strstr(text, "{\"Attn\"");
    memcpy(b, "{\"Atxn\"", 7);
    write_file("bad8.json", text);
    expect_failure("bad8.json", 2, "Atxn");
}

static void test_no_driving_input(void)
{
    char text[2048];
    snprintf(text, sizeof text, spec_body, "ts.tsv", "", "");
    char *c = strstr(text, "\"c\": {\"Stim\": [\"R1\"]}");
    memcpy(c, "\"c\": {\"Stim\": [    ]}", 21);
    write_file("bad9.json", text);
    expect_failure("bad9.json", 2, "driving input");
}

static void test_diverging_model(void)
{
    /* strong mutual excitation: the network is unstable */
    write_file("unstable.json", "{\"A\": [[0, 3, 0], [3, 0, 0], [0, 0.3, 0]], \"C\": [[1, 0], [0, 0], [0, 0]]}\n");
    write_spec("unstable_model.json", "ts.tsv", ", \"R2 -> R1\"", "");
    char args[1024];
    snprintf(args, sizeof args, "simulate %s/unstable_model.json --params %s/unstable.json -o %s/bad_sim.tsv",
             tmpdir, tmpdir, tmpdir);
    int rc = run(args);
    printf("\n  [unstable] exit %d: %s", rc, out);
    CU_ASSERT_EQUAL(rc, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "diverge"));
    CU_ASSERT_FALSE(exists("bad_sim.tsv"));
    CU_ASSERT(no_temp_files());
}

static void test_unwritable_output(void)
{
    char args[1024];
    snprintf(args, sizeof args, "estimate -q %s/model.json -o %s/no/such/dir/r.json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no/such/dir"));
}

/* valgrind's memcheck on the release binary (ASan builds cannot run
 * under valgrind): no leak, no invalid access, for a whole estimate. */
static void test_valgrind_estimate(void)
{
    const char *rel = getenv("DCM_RELEASE_BIN");
    if (!rel || access(rel, X_OK) || system("valgrind --version >/dev/null 2>&1")) {
        test_skip("valgrind or the release binary ($DCM_RELEASE_BIN) is not available");
        return;
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect,possible "
             "--error-exitcode=9 %s estimate -q %s/model.json -o %s/vg.json 2>&1",
             rel, tmpdir, tmpdir);
    FILE *p = popen(cmd, "r");
    size_t k = fread(out, 1, sizeof out - 1, p);
    out[k] = 0;
    int st = pclose(p);
    printf("\n  valgrind exit %d%s%s", WEXITSTATUS(st), k ? ": " : "", out);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CU_ASSERT(exists("vg.json"));
}

int main(void)
{
    if (setup()) {
        printf("cannot prepare the test directory or simulate its data: %s\n", out);
        return 1;
    }
    static const test_case cases[] = {
        {"help, version and usage errors", test_help},
        {"every command's --help shows every option it accepts", test_help_lists_every_option},
        {"simulate -> estimate -> compare", test_simulate_estimate_compare},
        {"--log-json: one JSON object per event", test_log_json},
        {"the spec route reproduces SPM12 on the attention data", test_spm_attention_via_spec},
        {"malformed JSON: line and column, exit 2", test_bad_json},
        {"missing files: exit 2, named", test_missing_file},
        {"wrong column count / ragged rows: exit 2", test_wrong_columns},
        {"NaN in the data: exit 2 with its line", test_nan_in_data},
        {"lengths that disagree: exit 2", test_lengths_disagree},
        {"TR <= 0: exit 2", test_bad_TR},
        {"unknown region or input names: exit 2", test_unknown_names},
        {"no driving input: exit 2", test_no_driving_input},
        {"a model that diverges: exit 3, no output", test_diverging_model},
        {"an output that cannot be written: exit 4", test_unwritable_output},
        {"valgrind: dcm estimate leaks nothing", test_valgrind_estimate},
        {NULL, NULL}};
    int rc = test_run("cli", cases);
    teardown();
    return rc;
}
