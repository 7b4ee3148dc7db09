/* test_python_api.c — the public functions the Python package stands on
 * (include/dcm/dcm.h): a spec as JSON text with its data inline
 * (dcm_problem_load_json) gives the fit of the same data in files; the
 * result as text (dcm_result_json) is the file dcm_result_save writes; a
 * result file's parameter names (dcm_result_file_parameter_names) are the
 * problem's; dcm_simulate is the model's prediction plus `dcm simulate`'s
 * noise; inline data that are wrong give messages naming the field. Runs
 * on the bundled attention design (no ../shared). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "tests/test_util.h"

#include <limits.h>
#include <stdlib.h>

#include "dcm/dcm_api.h"

static char tmpdir[64];
static char events[PATH_MAX];
static int simulate_is_prediction, simulate_noise;   /* found by setup */
static double *Y;   /* 360 x 3 column-major: simulated from truth.json at SNR 2, seed 1 */
enum { V = 360, N = 3 };

static const char *design_keys =
    "\"TR\": 3.22, \"TE\": 0.04, \"regions\": [\"V1\", \"V5\", \"SPC\"],"
    " \"inputs\": [\"Photic\", \"Motion\", \"Attention\"],"
    " \"a\": [\"V1 -> V5\", \"V5 -> V1\", \"V5 -> SPC\", \"SPC -> V5\"],"
    " \"b\": {\"Motion\": [\"V1 -> V5\"], \"Attention\": [\"V1 -> V5\"]},"
    " \"c\": {\"Photic\": [\"V1\"]}, \"options\": {\"maxit\": 6}";

/* {"V1": [...], ...} of y (v x n column-major), doubles to 17 digits */
static char *inline_series(const double *y, const char *const *names)
{
    size_t cap = (size_t)V * N * 32 + 256, o = 0;
    char *s = malloc(cap);
    o += (size_t)snprintf(s + o, cap - o, "{");
    for (int i = 0; i < N; i++) {
        o += (size_t)snprintf(s + o, cap - o, "%s\"%s\": [", i ? ", " : "", names[i]);
        for (int t = 0; t < V; t++)
            o += (size_t)snprintf(s + o, cap - o, "%s%.17g", t ? "," : "", y[t + i * V]);
        o += (size_t)snprintf(s + o, cap - o, "]");
    }
    snprintf(s + o, cap - o, "}");
    return s;
}

static char *spec_text(const char *timeseries, const char *events_value)
{
    size_t len = strlen(timeseries) + strlen(events_value) + strlen(design_keys) + 64;
    char *s = malloc(len);
    snprintf(s, len, "{%s, \"timeseries\": %s, \"events\": %s}", design_keys, timeseries, events_value);
    return s;
}

static int setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dcm-pyapi-XXXXXX");
    if (!mkdtemp(tmpdir) || !realpath("datasets/attention_design/events.tsv", events))
        return -1;
    static const char *const names[N] = {"V1", "V5", "SPC"};
    double zeros[V * N] = {0};
    char *ts = inline_series(zeros, names), ev[PATH_MAX + 4];
    snprintf(ev, sizeof ev, "\"%s\"", events);
    char *text = spec_text(ts, ev);
    dcm_problem *P = NULL;
    dcm_error err = {0, ""};
    int rc = dcm_problem_load_json(text, NULL, "design", &P, &err);
    free(ts);
    free(text);
    if (rc) {
        printf("setup: %s\n", err.msg);
        return -1;
    }
    const int np = dcm_problem_parameters(P);
    double *theta = malloc(sizeof(double) * np);
    dcm_problem_prior(P, theta, NULL, &err);
    static const struct { const char *name; double value; } truth[] = {
        {"A:V1->V5", 0.45}, {"A:V5->V1", -0.10}, {"A:V5->SPC", 0.35}, {"A:SPC->V5", -0.15},
        {"B:Motion:V1->V5", 0.30}, {"B:Attention:V1->V5", 0.40}, {"C:Photic->V1", 0.60}};
    for (int k = 0; k < np; k++) {
        char name[128];
        dcm_problem_parameter_name(P, k, name, sizeof name);
        for (size_t q = 0; q < sizeof truth / sizeof truth[0]; q++)
            if (!strcmp(name, truth[q].name))
                theta[k] = truth[q].value;
    }
    Y = malloc(sizeof(double) * V * N);
    rc = dcm_simulate(P, theta, 2.0, 1, Y, &err);
    /* without noise: the model's prediction */
    double *clean = malloc(sizeof(double) * V * N), *pred = malloc(sizeof(double) * V * N);
    simulate_is_prediction = dcm_simulate(P, theta, 0.0, 1, clean, &err) == DCM_OK &&
                             dcm_predict(P, theta, pred, &err) == DCM_OK &&
                             memcmp(clean, pred, sizeof(double) * V * N) == 0;
    /* with noise: not the prediction, and the same noise again from the same seed */
    simulate_noise = rc == DCM_OK && memcmp(Y, pred, sizeof(double) * V * N) != 0 &&
                     dcm_simulate(P, theta, 2.0, 1, clean, &err) == DCM_OK &&
                     memcmp(Y, clean, sizeof(double) * V * N) == 0;
    free(clean);
    free(pred);
    free(theta);
    dcm_problem_free(P);
    return rc ? -1 : 0;
}

static void test_simulate(void)
{
    CU_ASSERT(simulate_is_prediction);
    CU_ASSERT(simulate_noise);
}

static void write_tsv(const char *path)
{
    FILE *f = fopen(path, "w");
    fprintf(f, "V1\tV5\tSPC\n");
    for (int t = 0; t < V; t++)
        fprintf(f, "%.17g\t%.17g\t%.17g\n", Y[t], Y[t + V], Y[t + 2 * V]);
    fclose(f);
}

static void test_inline_data_give_the_file_fit(void)
{
    char tsv[128], specpath[128], ev[PATH_MAX + 4];
    snprintf(tsv, sizeof tsv, "%s/timeseries.tsv", tmpdir);
    write_tsv(tsv);
    snprintf(ev, sizeof ev, "\"%s\"", events);
    char *text = spec_text("\"timeseries.tsv\"", ev);
    test_write_file(tmpdir, "spec.json", text);
    free(text);
    snprintf(specpath, sizeof specpath, "%s/spec.json", tmpdir);

    dcm_error err = {0, ""};
    dcm_problem *Pf = NULL, *Pi = NULL;
    dcm_result *Rf = NULL, *Ri = NULL;
    CU_ASSERT_EQUAL_FATAL(dcm_problem_load(specpath, &Pf, &err), DCM_OK);
    /* the same data inline, events as objects (the file's rows) */
    static const char *const names[N] = {"V1", "V5", "SPC"};
    char *ts = inline_series(Y, names);
    FILE *f = fopen(events, "r");
    char line[256], *evs = malloc(65536);
    size_t o = (size_t)snprintf(evs, 65536, "[");
    int first = 1;
    CU_ASSERT_PTR_NOT_NULL_FATAL(fgets(line, sizeof line, f));   /* header: onset duration trial_type */
    while (fgets(line, sizeof line, f)) {
        double on, du;
        char tt[64];
        if (sscanf(line, "%lf\t%lf\t%63s", &on, &du, tt) == 3)
            o += (size_t)snprintf(evs + o, 65536 - o, "%s{\"onset\": %.17g, \"duration\": %.17g, "
                                  "\"trial_type\": \"%s\"}", first ? "" : ",", on, du, tt);
        first = 0;
    }
    fclose(f);
    snprintf(evs + o, 65536 - o, "]");
    text = spec_text(ts, evs);
    CU_ASSERT_EQUAL_FATAL(dcm_problem_load_json(text, tmpdir, "inline", &Pi, &err), DCM_OK);
    free(text);
    CU_ASSERT_EQUAL_FATAL(dcm_estimate(Pf, NULL, NULL, &Rf, &err), DCM_OK);
    CU_ASSERT_EQUAL_FATAL(dcm_estimate(Pi, NULL, NULL, &Ri, &err), DCM_OK);
    printf("\n  F file %.10f, inline %.10f\n", dcm_result_free_energy(Rf), dcm_result_free_energy(Ri));
    CU_ASSERT_EQUAL(dcm_result_free_energy(Rf), dcm_result_free_energy(Ri));
    for (int k = 0; k < dcm_result_parameters(Rf); k++)
        CU_ASSERT_EQUAL(dcm_result_posterior_mean(Rf, k), dcm_result_posterior_mean(Ri, k));

    /* the text is the file dcm_result_save writes */
    char *json = NULL, out[160];
    CU_ASSERT_EQUAL_FATAL(dcm_result_json(Ri, Pi, &json, &err), DCM_OK);
    snprintf(out, sizeof out, "%s/fit.json", tmpdir);
    CU_ASSERT_EQUAL_FATAL(dcm_result_save(Ri, Pi, out, &err), DCM_OK);
    f = fopen(out, "r");
    size_t len = strlen(json);
    char *bytes = malloc(len + 2);
    size_t got = fread(bytes, 1, len + 1, f);
    fclose(f);
    CU_ASSERT_EQUAL(got, len);
    CU_ASSERT_EQUAL(memcmp(bytes, json, len), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"spec\": \"inline\""));
    free(bytes);
    dcm_free(json);
    CU_ASSERT_EQUAL(dcm_result_json(Ri, NULL, &json, &err), DCM_ERR_USAGE);

    /* the file's parameter names are the problem's */
    char *names_text = NULL;
    int count = 0;
    CU_ASSERT_EQUAL_FATAL(dcm_result_file_parameter_names(out, &names_text, &count, &err), DCM_OK);
    CU_ASSERT_EQUAL(count, dcm_problem_parameters(Pi));
    char *p = names_text;
    for (int k = 0; k < count; k++) {
        char name[128];
        dcm_problem_parameter_name(Pi, k, name, sizeof name);
        char *nl = strchr(p, '\n');
        CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
        CU_ASSERT_EQUAL((size_t)(nl - p), strlen(name));
        CU_ASSERT_EQUAL(strncmp(p, name, strlen(name)), 0);
        p = nl + 1;
    }
    CU_ASSERT_EQUAL(*p, '\0');
    dcm_free(names_text);
    free(ts);
    free(evs);
    dcm_result_free(Rf);
    dcm_result_free(Ri);
    dcm_problem_free(Pf);
    dcm_problem_free(Pi);
}

/* One load of a spec text that must fail with DCM_ERR_INPUT and a message holding want. */
static void expect_error(const char *timeseries, const char *events_value, const char *want)
{
    char *text = spec_text(timeseries, events_value);
    dcm_problem *P = NULL;
    dcm_error err = {0, ""};
    int rc = dcm_problem_load_json(text, tmpdir, "s", &P, &err);
    printf("  %s\n", err.msg);
    CU_ASSERT_EQUAL(rc, DCM_ERR_INPUT);
    CU_ASSERT_PTR_NULL(P);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, want));
    free(text);
}

static void test_bad_inline_data_are_named(void)
{
    char ev[PATH_MAX + 4];
    snprintf(ev, sizeof ev, "\"%s\"", events);
    printf("\n");
    expect_error("{\"V1\": [\"x\"], \"V5\": [1], \"SPC\": [2]}", ev,
                 "s: \"timeseries\"[\"V1\"][0] must be a finite number, not a string");
    expect_error("{\"V1\": [1, 2], \"V5\": [1], \"SPC\": [2, 3]}", ev,
                 "\"timeseries\"[\"V5\"] has 1 values but the first region's has 2");
    expect_error("{\"V1\": [1, 2], \"V5\": [1, 2]}", ev, "s \"timeseries\": no column \"SPC\"");
    expect_error("\"timeseries.tsv\"", "[{\"onset\": 0, \"duration\": 1}]",
                 "\"events\"[0]: \"trial_type\" must be a string (the input's name), not missing");
    expect_error("\"timeseries.tsv\"", "[{\"onset\": -3, \"duration\": 1, \"trial_type\": \"Photic\"}]",
                 "s \"events\", line 1, column 1 (\"onset\"): -3 is negative");
    expect_error("\"timeseries.tsv\"", "[{\"onset\": 0, \"duration\": 30, \"trial_type\": \"Photic\"}]",
                 "s \"events\": input \"Motion\" has no events");
    dcm_problem *P = NULL;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL(dcm_problem_load_json("{\"TR\": 2,", NULL, NULL, &P, &err), DCM_ERR_INPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "spec:1:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "invalid JSON"));
}

int main(void)
{
    if (setup() != 0) {
        printf("test_python_api: setup failed (run from the repository)\n");
        return 1;
    }
    static const test_case cases[] = {
        {"inline data give the file's fit; result text = saved file; names", test_inline_data_give_the_file_fit},
        {"bad inline data are named", test_bad_inline_data_are_named},
        {"dcm_simulate: the prediction, plus seeded noise", test_simulate},
        {NULL, NULL}};
    int rc = test_run("python_api", cases);
    free(Y);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
