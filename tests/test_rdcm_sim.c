/* test_rdcm_sim.c — TAPAS's rDCM generator (models/model_rdcm_sim): the
 * noise-free smith50 data against TAPAS's (../shared, skipped when absent),
 * the noise at the asked SNR and its seed, bad input, and recovery of a
 * simulated 10-region sparse network by rDCM and sparse rDCM, and `dcm
 * simulate` on rDCM specs (loaded by io_spec, design only). */
#include "test_util.h"

#include "dcm/dcm_rdcm.h"
#include "io/io_tsv.h"
#include "models/model_rdcm_sim.h"

#define REF "reference/rdcm/smith50/"
#define DATA "datasets/rdcm/smith50/"

/* a JSON matrix of rows into column-major */
static int json_matrix(json_t *arr, int rows, int cols, double *out)
{
    if (!arr || (int)json_array_size(arr) != rows)
        return -1;
    for (int i = 0; i < rows; i++) {
        json_t *row = json_array_get(arr, (size_t)i);
        if ((int)json_array_size(row) != cols)
            return -1;
        for (int j = 0; j < cols; j++)
            out[i + (size_t)rows * j] = json_number_value(json_array_get(row, (size_t)j));
    }
    return 0;
}

/* smith50's events into inputs at micro-time (TAPAS's rule) */
static double *smith50_inputs(json_t *model, int N, int r, double TR, int m)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/" DATA "events.tsv", test_shared_dir());
    io_text_table t;
    dcm_error err = {0};
    if (io_text_read(path, &t, &err) != DCM_OK)
        return NULL;
    json_t *inputs = json_object_get(model, "inputs");
    int nev = t.rows - 1;
    double *on = malloc(sizeof(double) * (size_t)nev), *du = malloc(sizeof(double) * (size_t)nev);
    int *in = malloc(sizeof(int) * (size_t)nev);
    for (int e = 0; e < nev; e++) {
        char **row = t.cells + (size_t)(e + 1) * t.cols;
        on[e] = atof(row[0]);
        du[e] = atof(row[1]);
        in[e] = -1;
        for (int i = 0; i < m; i++)
            if (!strcmp(row[2], json_string_value(json_array_get(inputs, (size_t)i))))
                in[e] = i;
    }
    double *u = malloc(sizeof(double) * (size_t)N * r * m);
    if (dcm_rdcm_events_to_inputs(nev, on, du, in, m, N * r, TR / r, u, &err)) {
        free(u);
        u = NULL;
    }
    free(on);
    free(du);
    free(in);
    io_text_free(&t);
    return u;
}

/* The noise-free data of TAPAS's generator for smith50 (truth.json's A and
 * C, the events), to 1e-10 of their largest value. */
static void test_smith50_clean(void)
{
    char path[4096];
    if (!test_shared_path(REF "y_clean.tsv.gz", path, sizeof path))
        return;
    io_table ref;
    dcm_error err = {0};
    CU_ASSERT_FATAL(io_tsv_read(path, &ref, &err) == DCM_OK);
    char mpath[4096], tpath[4096];
    snprintf(mpath, sizeof mpath, "%s/" DATA "model.json", test_shared_dir());
    snprintf(tpath, sizeof tpath, "%s/" DATA "truth.json", test_shared_dir());
    json_t *model = test_load_json(mpath), *truth = test_load_json(tpath);
    CU_ASSERT_FATAL(model && truth);
    int N = (int)json_integer_value(json_object_get(model, "n_scans"));
    int n = (int)json_integer_value(json_object_get(model, "n_regions"));
    int m = (int)json_integer_value(json_object_get(model, "n_inputs"));
    int r = (int)json_integer_value(json_object_get(model, "microtime_per_scan"));
    double TR = json_number_value(json_object_get(model, "TR"));
    CU_ASSERT_FATAL(ref.rows == N && ref.cols == n);
    double *A = malloc(sizeof(double) * (size_t)n * n), *C = malloc(sizeof(double) * (size_t)n * m);
    CU_ASSERT_FATAL(!json_matrix(json_object_get(truth, "A"), n, n, A) &&
                    !json_matrix(json_object_get(truth, "C"), n, m, C));
    double *u = smith50_inputs(model, N, r, TR, m);
    CU_ASSERT_FATAL(u != NULL);
    double *yc = malloc(sizeof(double) * (size_t)N * n), *y = malloc(sizeof(double) * (size_t)N * n);
    CU_ASSERT_FATAL(model_rdcm_generate(A, C, n, u, m, N, r, TR, INFINITY, 1, NULL, yc, y, &err) ==
                    DCM_OK);
    double d = 0, big = 0;
    for (size_t q = 0; q < (size_t)N * n; q++) {
        d = fmax(d, fabs(yc[q] - ref.data[q]));
        big = fmax(big, fabs(ref.data[q]));
    }
    printf("\n  smith50 y_clean: max |diff| %.3g, largest value %.3g (relative %.2g)", d, big, d / big);
    CU_ASSERT(big > 0.01);
    CU_ASSERT(d <= 1e-10 * big);
    /* no noise asked: y is y_clean */
    CU_ASSERT(memcmp(y, yc, sizeof(double) * (size_t)N * n) == 0);
    free(A);
    free(C);
    free(u);
    free(yc);
    free(y);
    json_decref(model);
    json_decref(truth);
    io_table_free(&ref);
}

/* ---- a small sparse network (no ../shared needed) ---------------------- */

#define NET_N 10
#define NET_M 3
#define NET_SCANS 600
#define NET_R 16
#define NET_TR 1.0

typedef struct {
    double A[NET_N * NET_N], C[NET_N * NET_M];
    double *u;   /* Nu x m */
} network;

/* Self-connections -0.5; a ring-and-chords pattern of 14 connections of
 * size 0.2-0.45 with mixed signs (14 of 90 possible); three block inputs
 * drive regions 0, 4 and 7 (C = 3, 2, 3 in TAPAS units). */
static void make_network(network *w)
{
    static const int edges[][2] = {{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 8},
                                   {8, 9}, {0, 5}, {2, 7}, {9, 3}, {6, 1}, {4, 8}};
    static const double w_edge[] = {0.4, 0.35, -0.3, 0.45, 0.3, -0.25, 0.4, 0.35,
                                    0.3, -0.35, 0.25, 0.3, -0.2, 0.3};
    memset(w->A, 0, sizeof w->A);
    memset(w->C, 0, sizeof w->C);
    for (int i = 0; i < NET_N; i++)
        w->A[i + NET_N * i] = -0.5;
    for (size_t e = 0; e < sizeof edges / sizeof edges[0]; e++)
        w->A[edges[e][1] + NET_N * edges[e][0]] = w_edge[e];   /* from edges[e][0] to edges[e][1] */
    w->C[0 + NET_N * 0] = 3.0;
    w->C[4 + NET_N * 1] = 2.0;
    w->C[7 + NET_N * 2] = 3.0;
    const int Nu = NET_SCANS * NET_R;
    const double dt = NET_TR / NET_R;
    w->u = calloc((size_t)Nu * NET_M, sizeof(double));
    /* blocks of 4-20 s at irregular intervals (a fixed LCG), so that the
       inputs are not periodic and excite a broad band of frequencies */
    unsigned state = 12345u;
    for (int j = 0; j < NET_M; j++) {
        double t = 0.0;
        for (;;) {
            state = state * 1103515245u + 12345u;
            double gap = 4.0 + 16.0 * ((state >> 8) & 0xffff) / 65536.0;
            state = state * 1103515245u + 12345u;
            double dur = 4.0 + 16.0 * ((state >> 8) & 0xffff) / 65536.0;
            t += gap;
            if (t >= Nu * dt)
                break;
            for (int k = (int)(t / dt); k < Nu && k * dt < t + dur; k++)
                w->u[k + (size_t)Nu * j] = 1.0;
            t += dur;
        }
    }
}

/* SNR as TAPAS defines it (std(signal)/std(noise) per region), and the seed */
static void test_noise_and_seed(void)
{
    network w;
    make_network(&w);
    const int N = NET_SCANS, n = NET_N;
    double *yc = malloc(sizeof(double) * N * n), *y1 = malloc(sizeof(double) * N * n);
    double *y2 = malloc(sizeof(double) * N * n), *y3 = malloc(sizeof(double) * N * n);
    dcm_error err = {0};
    CU_ASSERT_FATAL(model_rdcm_generate(w.A, w.C, n, w.u, NET_M, N, NET_R, NET_TR, 3.0, 7, NULL, yc,
                                        y1, &err) == DCM_OK);
    CU_ASSERT_FATAL(model_rdcm_generate(w.A, w.C, n, w.u, NET_M, N, NET_R, NET_TR, 3.0, 7, NULL, NULL,
                                        y2, &err) == DCM_OK);
    CU_ASSERT_FATAL(model_rdcm_generate(w.A, w.C, n, w.u, NET_M, N, NET_R, NET_TR, 3.0, 8, NULL, NULL,
                                        y3, &err) == DCM_OK);
    CU_ASSERT(memcmp(y1, y2, sizeof(double) * N * n) == 0);
    CU_ASSERT(memcmp(y1, y3, sizeof(double) * N * n) != 0);
    double worst = 0.0;
    for (int k = 0; k < n; k++) {
        double ms = 0, ss = 0, mn = 0, sn = 0;
        for (int t = 0; t < N; t++) {
            ms += yc[t + N * k] / N;
            mn += (y1[t + N * k] - yc[t + N * k]) / N;
        }
        for (int t = 0; t < N; t++) {
            double e = y1[t + N * k] - yc[t + N * k];
            ss += (yc[t + N * k] - ms) * (yc[t + N * k] - ms);
            sn += (e - mn) * (e - mn);
        }
        double snr = sqrt(ss / sn);
        worst = fmax(worst, fabs(snr - 3.0));
    }
    /* 600 draws: the sample SD is within ~3 * 3/sqrt(1200) = 0.26 of 3 */
    printf("\n  SNR 3 asked: largest |SNR - 3| over regions %.3f", worst);
    CU_ASSERT(worst < 0.3);
    free(w.u);
    free(yc);
    free(y1);
    free(y2);
    free(y3);
}

static void test_bad_input(void)
{
    network w;
    make_network(&w);
    const int N = NET_SCANS, n = NET_N;
    double *y = malloc(sizeof(double) * N * n);
    dcm_error err = {0};
    /* unstable: a positive self-connection grows without bound */
    double A[NET_N * NET_N];
    memcpy(A, w.A, sizeof A);
    A[3 + NET_N * 3] = 2.0;
    CU_ASSERT(model_rdcm_generate(A, w.C, n, w.u, NET_M, N, NET_R, NET_TR, 3.0, 1, NULL, NULL, y,
                                  &err) == DCM_ERR_NUMERIC);
    CU_ASSERT(strstr(err.msg, "unstable") != NULL);
    /* a region that nothing drives cannot be given an SNR */
    memcpy(A, w.A, sizeof A);
    for (int j = 0; j < n; j++)
        if (j != 9)
            A[9 + NET_N * j] = 0.0;
    char *names[NET_N] = {"R0", "R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9"};
    err = (dcm_error){0};
    CU_ASSERT(model_rdcm_generate(A, w.C, n, w.u, NET_M, N, NET_R, NET_TR, 3.0, 1, names, NULL, y,
                                  &err) == DCM_ERR_INPUT);
    CU_ASSERT(strstr(err.msg, "region R9 has no signal") != NULL);
    err = (dcm_error){0};
    CU_ASSERT(model_rdcm_generate(w.A, w.C, n, w.u, NET_M, N, NET_R, NET_TR, -1.0, 1, NULL, NULL, y,
                                  &err) == DCM_ERR_INPUT);
    CU_ASSERT(strstr(err.msg, "SNR") != NULL);
    free(w.u);
    free(y);
}

typedef struct {
    double rmse, rmse_null;   /* over all n^2 entries; null: the prior mean */
    double sign_true;         /* share of true connections with the right sign */
    double sens, spec;        /* off-diagonal: present found / absent left out */
} recovery;

/* An off-diagonal estimate counts as present when |A| > 0.1 Hz (sparse:
 * inclusion probability > 0.5). */
static recovery score(const double *truth, const double *Ep, const double *Ip, int n)
{
    recovery s = {0};
    int ntrue = 0, nsign = 0, np = 0, nfound = 0, na = 0, nleft = 0;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++) {
            double t = truth[i + n * j], e = Ep[i + n * j], prior = i == j ? -0.5 : 0.0;
            s.rmse += (e - t) * (e - t);
            s.rmse_null += (prior - t) * (prior - t);
            if (t != 0.0) {
                ntrue++;
                nsign += (e > 0) == (t > 0) && e != 0.0;
            }
            if (i == j)
                continue;
            int found = Ip ? Ip[i + n * j] > 0.5 : fabs(e) > 0.1;
            if (t != 0.0) {
                np++;
                nfound += found;
            } else {
                na++;
                nleft += !found;
            }
        }
    s.rmse = sqrt(s.rmse / (n * n));
    s.rmse_null = sqrt(s.rmse_null / (n * n));
    s.sign_true = (double)nsign / ntrue;
    s.sens = np ? (double)nfound / np : 1.0;
    s.spec = na ? (double)nleft / na : 1.0;
    return s;
}

/* Recovery of the 10-region network at SNR 3 (noise seed 2406), 600 scans
 * of TR 1 s. Measured (this case): rDCM RMSE 0.028 (null: the prior mean,
 * 0.123), every true sign right; ordered sparse rDCM (one restart, TAPAS's
 * p0 grid) chooses p0 0.85 and includes nearly every connection: RMSE
 * 0.092, signs 1.0, sensitivity 1.0, specificity 0.20; 10 random restarts
 * choose p0 0.25: RMSE 0.084, signs 0.96, sensitivity 0.93, specificity
 * 0.76 (smith50 in the reference README: sparse RMSE 0.064-0.066 against
 * a null of 0.070, sensitivity 0.71-0.74, specificity 0.93-0.96: sparse
 * rDCM finds the structure only roughly). Asserted, with margins:
 *   rDCM (true pattern): RMSE < 0.35 x null, every true sign right;
 *   sparse rDCM, both forms: RMSE < 0.85 x null, signs of >= 90 % of the
 *   true connections, sensitivity >= 0.85; specificity >= 0.1 (ordered,
 *   one restart) and >= 0.6 (random restarts): restarts matter, as on
 *   smith50. Presence: inclusion probability > 0.5 (sparse), |A| > 0.1 Hz
 *   (rDCM). */
static void test_recovery(void)
{
    network w;
    make_network(&w);
    const int N = NET_SCANS, n = NET_N, m = NET_M;
    double *y = malloc(sizeof(double) * N * n);
    dcm_error err = {0};
    CU_ASSERT_FATAL(model_rdcm_generate(w.A, w.C, n, w.u, m, N, NET_R, NET_TR, 3.0, 2406, NULL, NULL,
                                        y, &err) == DCM_OK);
    double a[NET_N * NET_N], c[NET_N * NET_M];
    for (int q = 0; q < n * n; q++)
        a[q] = w.A[q] != 0.0;
    for (int q = 0; q < n * m; q++)
        c[q] = w.C[q] != 0.0;
    dcm_rdcm_options opt = DCM_RDCM_OPTIONS_DEFAULT;
    opt.data = DCM_RDCM_SIMULATED;
    dcm_rdcm_result *R = NULL;
    CU_ASSERT_FATAL(dcm_rdcm_estimate(y, N, n, NET_TR, w.u, m, NET_R, a, c, &opt, &R, &err) == DCM_OK);
    recovery s = score(w.A, R->Ep_A, NULL, n);
    printf("\n  rDCM: RMSE %.4f (null %.4f), true signs %.2f, F %.1f", s.rmse, s.rmse_null,
           s.sign_true, R->F);
    CU_ASSERT(s.rmse < 0.35 * s.rmse_null);
    CU_ASSERT(s.sign_true == 1.0);
    dcm_rdcm_result_free(R);
    R = NULL;
    opt.method = DCM_RDCM_SPARSE;
    opt.order = DCM_RDCM_ORDER_FIXED;
    opt.restarts = 1;
    CU_ASSERT_FATAL(dcm_rdcm_estimate(y, N, n, NET_TR, w.u, m, NET_R, a, c, &opt, &R, &err) == DCM_OK);
    s = score(w.A, R->Ep_A, R->Ip_A, n);
    printf("\n  sparse rDCM (ordered, p0 %.2f): RMSE %.4f (null %.4f), true signs %.2f, "
           "sensitivity %.2f, specificity %.2f", R->p0, s.rmse, s.rmse_null, s.sign_true, s.sens,
           s.spec);
    CU_ASSERT(s.rmse < 0.85 * s.rmse_null);
    CU_ASSERT(s.sign_true >= 0.9);
    CU_ASSERT(s.sens >= 0.85);
    CU_ASSERT(s.spec >= 0.1);
    dcm_rdcm_result_free(R);
    R = NULL;
    /* random restarts (TAPAS's default form, fewer restarts to keep the test short) */
    opt.order = DCM_RDCM_ORDER_RANDOM;
    opt.restarts = 10;
    opt.threads = 2;
    CU_ASSERT_FATAL(dcm_rdcm_estimate(y, N, n, NET_TR, w.u, m, NET_R, a, c, &opt, &R, &err) == DCM_OK);
    s = score(w.A, R->Ep_A, R->Ip_A, n);
    printf("\n  sparse rDCM (10 random restarts, p0 %.2f): RMSE %.4f, true signs %.2f, "
           "sensitivity %.2f, specificity %.2f", R->p0, s.rmse, s.sign_true, s.sens, s.spec);
    CU_ASSERT(s.rmse < 0.85 * s.rmse_null);
    CU_ASSERT(s.sign_true >= 0.9);
    CU_ASSERT(s.sens >= 0.85);
    CU_ASSERT(s.spec >= 0.6);
    dcm_rdcm_result_free(R);
    free(w.u);
    free(y);
}


/* ---- dcm simulate with an rDCM spec ------------------------------------ */

/* A 3-region spec with one input, in dir. */
static void write_small_spec(const char *dir)
{
    test_write_file(dir, "events.tsv", "onset\tduration\ttrial_type\n10\t20\tstim\n60\t15\tstim\n"
                                       "100\t25\tstim\n150\t10\tstim\n");
    test_write_file(dir, "spec.json",
                    "{\"method\": \"rdcm\", \"TR\": 1.0, \"scans\": 200,\n"
                    " \"regions\": [\"V1\", \"V5\", \"PFC\"], \"inputs\": [\"stim\"],\n"
                    " \"events\": \"events.tsv\",\n"
                    " \"a\": [[1, 0, 0], [1, 1, 0], [0, 1, 1]], \"c\": [[1], [0], [0]],\n"
                    " \"rdcm\": {\"data\": \"simulated\"}}\n");
    test_write_file(dir, "truth.json", "{\"A\": [[-0.5, 0, 0], [0.4, -0.5, 0], [0, 0.3, -0.5]],\n"
                                       " \"C\": [[2], [0], [0]]}\n");
    test_write_file(dir, "off.json", "{\"A\": [[-0.5, 0, 0.2], [0.4, -0.5, 0], [0, 0.3, -0.5]],\n"
                                     " \"C\": [[2], [0], [0]]}\n");
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = calloc((size_t)n + 1, 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n)
        b[0] = '\0';
    fclose(f);
    return b;
}

static void test_cli(void)
{
    char dir[] = "/tmp/test_rdcm_simXXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    write_small_spec(dir);
    char args[4096], out[8192];
    snprintf(args, sizeof args, "simulate %s/spec.json --params %s/truth.json --snr 3 --seed 5 -o %s/y1.tsv",
             dir, dir, dir);
    int rc = test_dcm(args, out, sizeof out);
    printf("\n  %s", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    snprintf(args, sizeof args, "simulate %s/spec.json --params %s/truth.json --snr 3 --seed 5 -o %s/y2.tsv",
             dir, dir, dir);
    CU_ASSERT_EQUAL(test_dcm(args, out, sizeof out), 0);
    snprintf(args, sizeof args, "simulate %s/spec.json --params %s/truth.json --snr 3 --seed 6 -o %s/y3.tsv",
             dir, dir, dir);
    CU_ASSERT_EQUAL(test_dcm(args, out, sizeof out), 0);
    char p1[512], p2[512], p3[512];
    snprintf(p1, sizeof p1, "%s/y1.tsv", dir);
    snprintf(p2, sizeof p2, "%s/y2.tsv", dir);
    snprintf(p3, sizeof p3, "%s/y3.tsv", dir);
    char *a = slurp(p1), *b = slurp(p2), *c = slurp(p3);
    CU_ASSERT_FATAL(a && b && c);
    CU_ASSERT(strncmp(a, "V1\tV5\tPFC\n", 10) == 0);
    CU_ASSERT(strcmp(a, b) == 0);
    CU_ASSERT(strcmp(a, c) != 0);
    free(a);
    free(b);
    free(c);
    io_table t;
    dcm_error err = {0};
    CU_ASSERT_EQUAL_FATAL(io_tsv_read(p1, &t, &err), DCM_OK);
    CU_ASSERT_EQUAL(t.rows, 200);
    CU_ASSERT_EQUAL(t.cols, 3);
    io_table_free(&t);
    /* bad input: exit 2 (1 for usage), the reason, no output */
    static const struct {
        const char *tail;
        int code;
        const char *needle;
    } bad[] = {{"--params DIR/off.json", 2, "switches that connection off"},
               {"", 1, "needs --params"},
               {"--params DIR/truth.json --vary A:*=0.1", 1, "not available for rDCM"},
               {"--params DIR/spec.json", 2, "\"A\" must be a 3 x 3 matrix"}};
    for (size_t q = 0; q < sizeof bad / sizeof bad[0]; q++) {
        char tail[1024];
        const char *at = strstr(bad[q].tail, "DIR");
        if (at)
            snprintf(tail, sizeof tail, "%.*s%s%s", (int)(at - bad[q].tail), bad[q].tail, dir, at + 3);
        else
            snprintf(tail, sizeof tail, "%s", bad[q].tail);
        snprintf(args, sizeof args, "simulate %s/spec.json %s -o %s/bad.tsv", dir, tail, dir);
        rc = test_dcm(args, out, sizeof out);
        printf("\n  exit %d: %s", rc, out);
        CU_ASSERT_EQUAL(rc, bad[q].code);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, bad[q].needle));
        char bp[512];
        snprintf(bp, sizeof bp, "%s/bad.tsv", dir);
        CU_ASSERT(access(bp, F_OK) != 0);
    }
    test_remove_dir(dir);
}

/* dcm simulate reads rDCM specs through io_spec: edge lists equal matrices,
 * an rDCM result's posterior_mean is a --params file, resting state and a
 * spec without a length are refused with the reason, io_spec's checks apply. */
static void test_cli_spec_forms(void)
{
    char dir[] = "/tmp/test_rdcm_simXXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    write_small_spec(dir);
    test_write_file(dir, "edges.json",
                    "{\"method\": \"rdcm\", \"TR\": 1.0, \"scans\": 200,\n"
                    " \"regions\": [\"V1\", \"V5\", \"PFC\"], \"inputs\": [\"stim\"],\n"
                    " \"events\": \"events.tsv\", \"a\": [\"V1 -> V5\", \"V5 -> PFC\"],\n"
                    " \"c\": {\"stim\": [\"V1\"]}, \"rdcm\": {\"data\": \"simulated\"}}\n");
    char args[4096], out[8192], p1[512], p2[512];
    const char *runs[] = {"spec.json --params %s/truth.json --snr 10 --seed 5 -o %s/m.tsv",
                          "edges.json --params %s/truth.json --snr 10 --seed 5 -o %s/e.tsv"};
    for (int k = 0; k < 2; k++) {
        char tail[1024];
        snprintf(tail, sizeof tail, runs[k], dir, dir);
        snprintf(args, sizeof args, "simulate %s/%s", dir, tail);
        CU_ASSERT_EQUAL_FATAL(test_dcm(args, out, sizeof out), 0);
    }
    snprintf(p1, sizeof p1, "%s/m.tsv", dir);
    snprintf(p2, sizeof p2, "%s/e.tsv", dir);
    char *a = slurp(p1), *b = slurp(p2);
    CU_ASSERT_FATAL(a && b);
    CU_ASSERT(strcmp(a, b) == 0);   /* edge lists: the same switches as the matrices */
    free(a);
    free(b);
    /* fit the simulated series, then simulate from the fit's posterior mean:
       the same data as from those blocks written as a truth file */
    test_write_file(dir, "fitspec.json",
                    "{\"method\": \"rdcm\", \"TR\": 1.0, \"timeseries\": \"m.tsv\",\n"
                    " \"regions\": [\"V1\", \"V5\", \"PFC\"], \"inputs\": [\"stim\"],\n"
                    " \"events\": \"events.tsv\", \"a\": [\"V1 -> V5\", \"V5 -> PFC\"],\n"
                    " \"c\": {\"stim\": [\"V1\"]}, \"rdcm\": {\"data\": \"simulated\"}}\n");
    snprintf(args, sizeof args, "estimate %s/fitspec.json -o %s/fit.json", dir, dir);
    CU_ASSERT_EQUAL_FATAL(test_dcm(args, out, sizeof out), 0);
    char fp[512];
    snprintf(fp, sizeof fp, "%s/fit.json", dir);
    json_t *fit = test_load_json(fp);
    CU_ASSERT_FATAL(fit != NULL);
    json_t *pm = json_object_get(fit, "posterior_mean");
    double a10 = json_number_value(json_array_get(json_array_get(json_object_get(pm, "A"), 1), 0));
    printf("\n  fit of the simulated data (SNR 10): A V1->V5 %.3f (true 0.4)", a10);
    CU_ASSERT(fabs(a10 - 0.4) < 0.1);
    json_t *blocks = json_pack("{s:O, s:O}", "A", json_object_get(pm, "A"), "C",
                               json_object_get(pm, "C"));
    snprintf(p1, sizeof p1, "%s/blocks.json", dir);
    CU_ASSERT_FATAL(json_dump_file(blocks, p1, JSON_REAL_PRECISION(17)) == 0);
    json_decref(blocks);
    snprintf(args, sizeof args, "simulate %s/spec.json --params %s --seed 9 --snr 4 -o %s/fb.tsv",
             dir, p1, dir);
    CU_ASSERT_EQUAL(test_dcm(args, out, sizeof out), 0);
    snprintf(args, sizeof args, "simulate %s/spec.json --params %s --seed 9 --snr 4 -o %s/fr.tsv",
             dir, fp, dir);
    CU_ASSERT_EQUAL(test_dcm(args, out, sizeof out), 0);
    snprintf(p1, sizeof p1, "%s/fb.tsv", dir);
    snprintf(p2, sizeof p2, "%s/fr.tsv", dir);
    a = slurp(p1);
    b = slurp(p2);
    CU_ASSERT_FATAL(a && b);
    CU_ASSERT(strcmp(a, b) == 0);
    CU_ASSERT(strncmp(a, "V1\tV5\tPFC\n", 10) == 0);
    free(a);
    free(b);
    /* a result of another model (renamed regions) */
    json_array_set_new(json_object_get(fit, "regions"), 2, json_string("FEF"));
    snprintf(p1, sizeof p1, "%s/other.json", dir);
    CU_ASSERT_FATAL(json_dump_file(fit, p1, 0) == 0);
    json_decref(fit);
    test_write_file(dir, "rest.json",
                    "{\"method\": \"rdcm\", \"TR\": 1.0, \"scans\": 200,\n"
                    " \"regions\": [\"V1\", \"V5\", \"PFC\"], \"a\": [\"V1 -> V5\"]}\n");
    test_write_file(dir, "noscans.json",
                    "{\"method\": \"rdcm\", \"TR\": 1.0, \"regions\": [\"V1\", \"V5\", \"PFC\"],\n"
                    " \"inputs\": [\"stim\"], \"events\": \"events.tsv\", \"a\": [\"V1 -> V5\"],\n"
                    " \"c\": {\"stim\": [\"V1\"]}}\n");
    test_write_file(dir, "withb.json",
                    "{\"method\": \"rdcm\", \"TR\": 1.0, \"scans\": 200, \"regions\": [\"V1\", \"V5\"],\n"
                    " \"inputs\": [\"stim\"], \"events\": \"events.tsv\", \"a\": [\"V1 -> V5\"],\n"
                    " \"b\": {\"stim\": [\"V1 -> V5\"]}, \"c\": {\"stim\": [\"V1\"]}}\n");
    static const struct {
        const char *spec, *params, *needle;
    } bad[] = {{"spec.json", "other.json", "the result is of another model"},
               {"rest.json", "truth.json", "a resting-state rDCM spec (no \"inputs\") cannot be simulated"},
               {"noscans.json", "truth.json", "missing \"scans\" (the number of scans to simulate)"},
               {"withb.json", "truth.json", "has no B (modulatory) matrix"}};
    for (size_t q = 0; q < sizeof bad / sizeof bad[0]; q++) {
        snprintf(args, sizeof args, "simulate %s/%s --params %s/%s -o %s/bad.tsv", dir, bad[q].spec,
                 dir, bad[q].params, dir);
        int rc = test_dcm(args, out, sizeof out);
        printf("\n  exit %d: %s", rc, out);
        CU_ASSERT_EQUAL(rc, 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, bad[q].needle));
        snprintf(p1, sizeof p1, "%s/bad.tsv", dir);
        CU_ASSERT(access(p1, F_OK) != 0);
    }
    test_remove_dir(dir);
}

/* The command on smith50's design and truth gives TAPAS's noise-free data. */
static void test_cli_smith50(void)
{
    char ref[4096];
    if (!test_shared_path(REF "y_clean.tsv.gz", ref, sizeof ref))
        return;
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s/" DATA "model.json", test_shared_dir());
    json_t *m = test_load_json(mpath);
    CU_ASSERT_FATAL(m != NULL);
    char dir[] = "/tmp/test_rdcm_simXXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    json_t *spec = json_pack("{s:s, s:O, s:O, s:O, s:O, s:O, s:O}", "method", "rdcm", "TR",
                             json_object_get(m, "TR"), "regions", json_object_get(m, "regions"),
                             "inputs", json_object_get(m, "inputs"), "a", json_object_get(m, "a"),
                             "c", json_object_get(m, "c"), "scans", json_object_get(m, "n_scans"));
    char ev[4200];
    snprintf(ev, sizeof ev, "%s/" DATA "events.tsv", test_shared_dir());
    json_object_set_new(spec, "events", json_string(ev));
    char sp[512], yp[512], args[8192], out[8192];
    snprintf(sp, sizeof sp, "%s/spec.json", dir);
    snprintf(yp, sizeof yp, "%s/y.tsv", dir);
    json_dump_file(spec, sp, 0);
    json_decref(spec);
    json_decref(m);
    snprintf(args, sizeof args, "simulate %s --params %s/" DATA "truth.json -o %s", sp,
             test_shared_dir(), yp);
    int rc = test_dcm(args, out, sizeof out);
    printf("\n  %s", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    io_table a, b;
    dcm_error err = {0};
    CU_ASSERT_EQUAL_FATAL(io_tsv_read(yp, &a, &err), DCM_OK);
    CU_ASSERT_EQUAL_FATAL(io_tsv_read(ref, &b, &err), DCM_OK);
    CU_ASSERT_FATAL(a.rows == b.rows && a.cols == b.cols);
    double d = 0, big = 0;
    for (size_t q = 0; q < (size_t)a.rows * a.cols; q++) {
        d = fmax(d, fabs(a.data[q] - b.data[q]));
        big = fmax(big, fabs(b.data[q]));
    }
    printf("\n  dcm simulate on smith50: max |diff| from TAPAS's y_clean %.2g (largest %.3g)", d, big);
    CU_ASSERT(d <= 1e-10 * big);
    io_table_free(&a);
    io_table_free(&b);
    test_remove_dir(dir);
}

int main(void)
{
    static const test_case cases[] = {
        {"rDCM generator: smith50's noise-free data equal TAPAS's", test_smith50_clean},
        {"rDCM generator: noise at the asked SNR, reproducible by seed", test_noise_and_seed},
        {"rDCM generator: unstable A, silent region, bad SNR refused", test_bad_input},
        {"rDCM and sparse rDCM recover a simulated 10-region network", test_recovery},
        {"dcm simulate with an rDCM spec: seeded output, bad input refused", test_cli},
        {"dcm simulate reads rDCM specs through io_spec: edge lists, result params, refusals",
         test_cli_spec_forms},
        {"dcm simulate on smith50's spec and truth gives TAPAS's noise-free data", test_cli_smith50},
        {NULL, NULL}};
    return test_run("rdcm_sim", cases);
}
