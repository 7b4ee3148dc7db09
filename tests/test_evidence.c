/* test_evidence.c — the sampled log evidence (vl/vl_evidence.h, issue 16)
 * on a linear-Gaussian model whose log evidence is known in closed form
 * (no ../shared needed): the estimate within 3 standard errors and 0.5
 * nats of the exact value on both paths and by AIS, the Laplace F equal
 * to it there, determinism per seed whatever the threads, and the command
 * on the attention data when ../shared is present (small and cheap; the
 * heavy study is scripts/evidence_study.sh). */
#define _XOPEN_SOURCE 700 /* realpath */
#include <limits.h>
#include <stdlib.h>

#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>

#include "dcm/dcm_api.h"
#include "vl/vl_evidence.h"
#include "vl/vl_nlsi.h"
#include "tests/test_util.h"

#define LOG2PI 1.8378770664093453
#define PREC_FLOOR 1.2664165549094176e-14

enum { NY = 40, NP = 4, NB = 20, NX0 = 2, NBLK = NY / NB, NU = NBLK * NX0 };

typedef struct {
    const double *X;   /* NY x NP row-major */
    long calls;
} lin;

static int lin_predict(void *user, const double *theta, double *y)
{
    lin *m = user;
    for (int r = 0; r < NY; r++) {
        double s = 0.0;
        for (int k = 0; k < NP; k++)
            s += m->X[r * NP + k] * theta[k];
        y[r] = s;
    }
    m->calls++;
    return 0;
}

static double pseudo(int i)
{
    return sin(1.7 * i + 0.3) + 0.5 * cos(0.37 * i * i);
}

/* log N(y; Xa m, I/lam + Xa C0 Xa') by Cholesky, rows NY, na unknowns */
static double exact_evidence(const double *Xa, int na, const double *y, const double *m,
                             const double *C0, double lam)
{
    gsl_matrix *S = gsl_matrix_alloc(NY, NY);
    double r[NY];
    for (int i = 0; i < NY; i++) {
        double xm = 0.0;
        for (int a = 0; a < na; a++)
            xm += Xa[i * na + a] * m[a];
        r[i] = y[i] - xm;
        for (int j = 0; j < NY; j++) {
            double s = i == j ? 1.0 / lam : 0.0;
            for (int a = 0; a < na; a++)
                for (int b = 0; b < na; b++)
                    s += Xa[i * na + a] * C0[a * na + b] * Xa[j * na + b];
            gsl_matrix_set(S, i, j, s);
        }
    }
    gsl_linalg_cholesky_decomp1(S);
    double ld = 0.0;
    for (int i = 0; i < NY; i++)
        ld += 2.0 * log(gsl_matrix_get(S, i, i));
    gsl_vector_view rv = gsl_vector_view_array(r, NY);
    gsl_vector *z = gsl_vector_alloc(NY);
    gsl_linalg_cholesky_solve(S, &rv.vector, z);
    double q = 0.0;
    for (int i = 0; i < NY; i++)
        q += r[i] * gsl_vector_get(z, i);
    gsl_vector_free(z);
    gsl_matrix_free(S);
    return -0.5 * (NY * LOG2PI + ld + q);
}

/* the test problem: y = X theta + X0 beta + e, confounds per block of NB,
 * known noise (hC 1e-16 pins h at hE) */
typedef struct {
    double X[NY * NP], y[NY], X0[NB * NX0], pE[NP], pV[NP], Q[NY], hE[1], hC[1];
    lin lm;
    vl_model M;
    double exact;
} problem;

static void build(problem *P, int with_confounds)
{
    const double theta[NP] = {0.8, -0.5, 0.3, 1.2};
    for (int r = 0; r < NY; r++)
        for (int k = 0; k < NP; k++)
            P->X[r * NP + k] = pseudo(7 * r + 3 * k) + (k == r % NP ? 1.0 : 0.0);
    for (int r = 0; r < NB; r++) {
        P->X0[r] = 1.0;
        P->X0[r + NB] = (r - 9.5) / 10.0;
    }
    for (int r = 0; r < NY; r++) {
        double s = 0.3 * pseudo(1000 + r);
        for (int k = 0; k < NP; k++)
            s += P->X[r * NP + k] * theta[k];
        P->y[r] = s + (with_confounds ? 0.7 - 0.4 * (r / NB) + 0.3 * P->X0[r % NB + NB] : 0.0);
        P->Q[r] = 1.0;
    }
    const double pE[NP] = {0.1, 0.0, -0.2, 0.5}, pV[NP] = {1.0, 0.5, 2.0, 0.25};
    memcpy(P->pE, pE, sizeof pE);
    memcpy(P->pV, pV, sizeof pV);
    P->hE[0] = 2.0;
    P->hC[0] = 1e-16;
    P->lm = (lin){P->X, 0};
    P->M = (vl_model){.np = NP, .pE = P->pE, .pV = P->pV, .ny = NY, .predict = lin_predict,
                      .user = &P->lm, .nh = 1, .Q = P->Q, .hE = P->hE, .hC = P->hC};
    if (with_confounds) {
        P->M.nb = NB;
        P->M.nx0 = NX0;
        P->M.X0 = P->X0;
    }
    /* exact: theta and (with confounds) beta ~ N(0, 1e8) as unknowns */
    const int na = NP + (with_confounds ? NU : 0);
    double *Xa = calloc((size_t)NY * na, sizeof(double)), *m = calloc(na, sizeof(double));
    double *C0 = calloc((size_t)na * na, sizeof(double));
    for (int r = 0; r < NY; r++) {
        for (int k = 0; k < NP; k++)
            Xa[r * na + k] = P->X[r * NP + k];
        for (int u = 0; u < na - NP; u++)
            Xa[r * na + NP + u] = (u / NX0 == r / NB) ? P->X0[r % NB + (u % NX0) * NB] : 0.0;
    }
    for (int k = 0; k < NP; k++) {
        m[k] = pE[k];
        C0[k * na + k] = pV[k];
    }
    for (int u = NP; u < na; u++)
        C0[u * na + u] = 1e8;
    P->exact = exact_evidence(Xa, na, P->y, m, C0, PREC_FLOOR + exp(P->hE[0]));
    free(Xa);
    free(m);
    free(C0);
}

/* the VL posterior at its optimum (the engine iterated to convergence) */
static vl_result *laplace(problem *P)
{
    vl_engine *E = NULL;
    vl_result *R = NULL;
    char msg[256] = "";
    CU_ASSERT_EQUAL_FATAL(vl_engine_alloc(&P->M, &E, msg, sizeof msg), VL_OK);
    CU_ASSERT_EQUAL(vl_engine_init(E, P->y, NULL, msg, sizeof msg), VL_OK);
    for (int k = 1; k <= 2000; k++) {
        CU_ASSERT_EQUAL_FATAL(vl_engine_iterate(E, msg, sizeof msg), VL_OK);
        if (fabs(vl_engine_state(E)->dF_predicted) < 1e-24 && k > 8)
            break;
    }
    CU_ASSERT_EQUAL(vl_engine_result(E, &R, msg, sizeof msg), VL_OK);
    vl_engine_free(E);
    return R;
}

static vl_evidence_result *sample(problem *P, const vl_result *V, vl_evidence_options *o, int threads)
{
    lin users_lm[4];
    void *users[4];
    for (int t = 0; t < 4; t++) {
        users_lm[t] = (lin){P->X, 0};
        users[t] = &users_lm[t];
    }
    o->threads = threads;
    vl_evidence_result *R = NULL;
    char msg[256] = "";
    int rc = vl_evidence(&P->M, users, P->y, V->Ep, V->Cp, V->Eh, o, &R, msg, sizeof msg);
    if (rc)
        printf("\n  vl_evidence: %s", msg);
    CU_ASSERT_EQUAL(rc, VL_OK);
    return R;
}

static void check_exact(int with_confounds)
{
    problem *P = calloc(1, sizeof *P);
    build(P, with_confounds);
    vl_result *V = laplace(P);
    CU_ASSERT_PTR_NOT_NULL_FATAL(V);
    printf("\n  %s: exact log evidence %.6f, Laplace F %.6f (|dF| %.1e)",
           with_confounds ? "with confounds" : "no confounds", P->exact, V->F, fabs(V->F - P->exact));
    CU_ASSERT(fabs(V->F - P->exact) < 1e-6);
    /* the sampler's likelihood at the posterior mean is finite */
    double L = vl_evidence_loglik(&P->M, &P->lm, P->y, V->Ep, V->Eh);
    CU_ASSERT(isfinite(L));
    struct { int method, path, samples; const char *name; } runs[] = {
        {VL_EV_TI, VL_EV_PATH_LAPLACE, 400, "ti, Laplace path"},
        {VL_EV_TI, VL_EV_PATH_PRIOR, 600, "ti, prior path"},
        {VL_EV_AIS, VL_EV_PATH_LAPLACE, 400, "ais, Laplace path"}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        vl_evidence_options o;
        vl_evidence_defaults(&o);
        o.method = runs[i].method;
        o.path = runs[i].path;
        o.samples = runs[i].samples;
        o.burnin = 200;
        o.temperatures = runs[i].path == VL_EV_PATH_PRIOR ? 24 : 8;
        o.power = runs[i].path == VL_EV_PATH_PRIOR ? 5.0 : 1.0;
        o.chains = 4;
        o.sample_h = 0;   /* known noise: h fixed at hE, as the closed form */
        vl_evidence_result *R = sample(P, V, &o, 2);
        CU_ASSERT_PTR_NOT_NULL_FATAL(R);
        double d = R->log_evidence - P->exact;
        printf("\n    %-18s %.4f +- %.4f (off by %+.4f = %+.1f SE), acceptance %.2f, swaps %.2f, "
               "R-hat %.3f", runs[i].name, R->log_evidence, R->se, d, d / R->se, R->accept_rate,
               R->swap_rate, R->rhat);
        CU_ASSERT(isfinite(R->log_evidence) && R->se > 0.0);
        CU_ASSERT(fabs(d) <= 3.0 * R->se + 1e-3);
        CU_ASSERT(fabs(d) < 0.5);
        /* posterior means within 4 Monte-Carlo SEs of the exact (= Laplace) ones */
        for (int k = 0; k < NP; k++)
            CU_ASSERT(fabs(R->post_mean[k] - V->Ep[k]) <= 4.0 * R->mcse_mean[k] + 0.02);
        vl_evidence_result_free(R);
    }
    vl_result_free(V);
    free(P);
}

static void test_exact_plain(void) { check_exact(0); }
static void test_exact_confounds(void) { check_exact(1); }

/* the same seed gives the same numbers with 1 or 2 threads; another seed not */
static void test_determinism(void)
{
    problem *P = calloc(1, sizeof *P);
    build(P, 1);
    vl_result *V = laplace(P);
    CU_ASSERT_PTR_NOT_NULL_FATAL(V);
    vl_evidence_options o;
    vl_evidence_defaults(&o);
    o.samples = 60;
    o.burnin = 20;
    o.temperatures = 4;
    o.chains = 3;
    o.keep_samples = 1;
    vl_evidence_result *a = sample(P, V, &o, 1), *b = sample(P, V, &o, 2);
    o.seed = 2;
    vl_evidence_result *c = sample(P, V, &o, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT(a->log_evidence == b->log_evidence);
    CU_ASSERT(memcmp(a->chain_log_evidence, b->chain_log_evidence, sizeof(double) * 3) == 0);
    CU_ASSERT(memcmp(a->samples, b->samples, sizeof(double) * (size_t)a->nkept * NP) == 0);
    CU_ASSERT(a->log_evidence != c->log_evidence);
    CU_ASSERT_EQUAL(a->nkept, 180);
    printf("\n  seed 1: %.6f (1 and 2 threads), seed 2: %.6f", a->log_evidence, c->log_evidence);
    vl_evidence_result_free(a);
    vl_evidence_result_free(b);
    vl_evidence_result_free(c);
    /* bad options are refused */
    o.temperatures = 1;
    vl_evidence_result *R = NULL;
    void *users[1] = {&P->lm};
    char msg[256] = "";
    CU_ASSERT_EQUAL(vl_evidence(&P->M, users, P->y, V->Ep, V->Cp, V->Eh, &o, &R, msg, sizeof msg),
                    VL_ERR_INPUT);
    CU_ASSERT_PTR_NULL(R);
    CU_ASSERT(strstr(msg, "temperatures") != NULL);
    vl_result_free(V);
    free(P);
}

/* the command on the attention data: finite, the same numbers for 1 and
 * 2 threads, usage errors */
static void test_cli_attention(void)
{
    char data[512], out[8192];
    if (!test_shared_path("datasets/attention/timeseries.tsv", data, sizeof data))
        return;
    char dir[] = "/tmp/test_evidence_XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    const char *D = test_shared_dir();
    char spec[4096];
    snprintf(spec, sizeof spec,
             "{\"TR\": 3.22, \"TE\": 0.04,\n"
             " \"timeseries\": \"%s/datasets/attention/timeseries.tsv\", \"regions\": [\"V1\", \"V5\", \"SPC\"],\n"
             " \"confounds\": \"%s/datasets/attention/confounds.tsv\",\n"
             " \"events\": \"%s/datasets/attention/events.tsv\", \"inputs\": [\"Photic\", \"Motion\", \"Attention\"],\n"
             " \"a\": [[1,1,0],[1,1,1],[0,1,1]],\n"
             " \"b\": {\"Motion\": [[0,0,0],[1,0,0],[0,0,0]], \"Attention\": [[0,0,0],[1,0,0],[0,0,0]]},\n"
             " \"c\": [[1,0,0],[0,0,0],[0,0,0]], \"delays\": [1.61, 1.61, 1.61],\n"
             " \"options\": {\"two_state\": false, \"centre\": false, \"maxit\": 128}}\n", D, D, D);
    test_write_file(dir, "fwd_spec.json", spec);
    char args[2048];
    snprintf(args, sizeof args, "estimate -q %s/fwd_spec.json -o %s/fwd.json", dir, dir);
    CU_ASSERT_EQUAL_FATAL(test_dcm(args, out, sizeof out), 0);
    double ev[2];
    for (int t = 1; t <= 2; t++) {
        snprintf(args, sizeof args, "evidence %s/fwd.json --samples 30 --burnin 10 --temperatures 4 "
                 "--chains 2 -j %d --json --samples-out %s/samples.tsv", dir, t, dir);
        json_t *j = test_dcm_json(args, out, sizeof out);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        ev[t - 1] = json_number_value(json_object_get(j, "log_evidence"));
        double F = json_number_value(json_object_get(j, "free_energy"));
        CU_ASSERT(isfinite(ev[t - 1]));
        CU_ASSERT(fabs(F - -3236.13) < 0.5);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "samples_used")), 60);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "noise")), "sampled");
        json_decref(j);
    }
    printf("\n  attention fwd (tiny run): %.4f with 1 and %.4f with 2 threads", ev[0], ev[1]);
    CU_ASSERT(ev[0] == ev[1]);
    CU_ASSERT(test_exists_in(dir, "samples.tsv"));
    snprintf(args, sizeof args, "evidence %s/fwd.json --method xyz", dir);
    CU_ASSERT_EQUAL(test_dcm(args, out, sizeof out), 1);
    snprintf(args, sizeof args, "evidence %s/missing.json", dir);
    CU_ASSERT_EQUAL(test_dcm(args, out, sizeof out), 2);
    /* compare --evidence: a bad method is a usage error, named */
    snprintf(args, sizeof args, "compare %s/fwd.json %s/fwd.json --evidence xyz", dir, dir);
    CU_ASSERT_EQUAL(test_dcm(args, out, sizeof out), 1);
    CU_ASSERT(strstr(out, "--evidence must be ti or ais") != NULL);
    test_remove_dir(dir);
}

/* the report of the sampled evidence (no ../shared needed): the bundled
 * attention design simulated, both models fitted, a tiny evidence each
 * written with -o, then dcm report --evidence: both figures in the HTML and
 * as PNGs, the table's numbers those of the evidence files, histograms
 * that count the samples; an evidence file of another (or a changed)
 * result, or not an evidence file, refused with exit 2 and nothing written */
static void test_report_evidence(void)
{
    char design[PATH_MAX], out[16384], args[4096];
    if (!realpath("datasets/attention_design", design)) {
        test_skip("datasets/attention_design not found (run the tests from the repository)");
        return;
    }
    char dir[] = "/tmp/test_evidence_report_XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(args, sizeof args, "cp '%s'/events.tsv '%s'/truth.json '%s'/fwd.json '%s'/bwd.json '%s'/", design,
             design, design, design, dir);
    CU_ASSERT_EQUAL_FATAL(system(args), 0);
    snprintf(args, sizeof args, "simulate %s/fwd.json --params %s/truth.json --snr 2 --seed 1 -o %s/timeseries.tsv",
             dir, dir, dir);
    CU_ASSERT_EQUAL_FATAL(test_dcm(args, out, sizeof out), 0);
    const char *m[2] = {"fwd", "bwd"};
    json_t *ev[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "estimate -q %s/%s.json -o %s/%s_fit.json", dir, m[i], dir, m[i]);
        CU_ASSERT_EQUAL_FATAL(test_dcm(args, out, sizeof out), 0);
        snprintf(args, sizeof args, "evidence %s/%s_fit.json --samples 40 --burnin 10 --temperatures 4 --chains 2 "
                 "-o %s/%s.evidence.json", dir, m[i], dir, m[i]);
        CU_ASSERT_EQUAL_FATAL(test_dcm(args, out, sizeof out), 0);
        CU_ASSERT(strstr(out, "log evidence") != NULL);   /* the table is still printed */
        char name[64];
        snprintf(name, sizeof name, "%s.evidence.json", m[i]);
        ev[i] = test_load_in(dir, name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ev[i]);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(ev[i], "kind")), "evidence");
        CU_ASSERT_EQUAL(strlen(json_string_value(json_object_get(ev[i], "result_hash"))), 16);
        /* F of the evidence file is the result's */
        snprintf(name, sizeof name, "%s_fit.json", m[i]);
        json_t *r = test_load_in(dir, name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_object_get(ev[i], "free_energy")),
                               json_number_value(json_object_get(r, "free_energy")), 1e-9);
        json_decref(r);
        /* every free parameter has a histogram counting all samples */
        json_t *ps = json_object_get(ev[i], "parameters");
        const json_int_t used = json_integer_value(json_object_get(ev[i], "samples_used"));
        CU_ASSERT_EQUAL(used, 80);
        CU_ASSERT(json_array_size(ps) >= 10);
        for (size_t q = 0; q < json_array_size(ps); q++) {
            json_t *h = json_object_get(json_array_get(ps, q), "histogram"), *c = json_object_get(h, "counts");
            json_int_t sum = 0;
            for (size_t b = 0; b < json_array_size(c); b++)
                sum += json_integer_value(json_array_get(c, b));
            CU_ASSERT_EQUAL(sum, used);
            CU_ASSERT(json_number_value(json_object_get(h, "lo")) < json_number_value(json_object_get(h, "hi")));
        }
    }
    snprintf(args, sizeof args, "report %s/fwd_fit.json %s/bwd_fit.json --evidence %s/fwd.evidence.json "
             "--evidence %s/bwd.evidence.json -o %s/report.html --png %s/png", dir, dir, dir, dir, dir, dir);
    CU_ASSERT_EQUAL_FATAL(test_dcm(args, out, sizeof out), 0);
    CU_ASSERT(test_exists_in(dir, "png/evidence.png"));
    CU_ASSERT(test_exists_in(dir, "png/fwd_fit_marginals.png"));
    CU_ASSERT(test_exists_in(dir, "png/bwd_fit_marginals.png"));
    char path[1024];
    snprintf(path, sizeof path, "%s/report.html", dir);
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static char html[8 << 20];
    size_t n = fread(html, 1, sizeof html - 1, f);
    html[n] = 0;
    fclose(f);
    CU_ASSERT(strstr(html, "id=\"fig-evidence.png\"") != NULL);
    CU_ASSERT(strstr(html, "id=\"fig-fwd_fit_marginals.png\"") != NULL);
    CU_ASSERT(strstr(html, "id=\"fig-bwd_fit_marginals.png\"") != NULL);
    for (int i = 0; i < 2; i++) {   /* the table row and the caption: the evidence file's numbers */
        double L = json_number_value(json_object_get(ev[i], "log_evidence"));
        double se = json_number_value(json_object_get(ev[i], "se"));
        double F = json_number_value(json_object_get(ev[i], "free_energy"));
        char row[512], cap[256];
        snprintf(row, sizeof row, "<td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>80</td>", F, L, se, L - F);
        snprintf(cap, sizeof cap, "Log evidence %.4f &plusmn; %.4f, F %.4f.", L, se, F);
        CU_ASSERT(strstr(html, row) != NULL);
        CU_ASSERT(strstr(html, cap) != NULL);
        printf("\n  %s: F %.4f, sampled %.4f +- %.4f (tiny run), gap %.2f", m[i], F, L, se, L - F);
    }
    /* refused, exit 2, nothing written: the evidence of another result ... */
    snprintf(args, sizeof args, "report %s/fwd_fit.json --evidence %s/bwd.evidence.json -o %s/bad.html --png %s/badpng",
             dir, dir, dir, dir);
    CU_ASSERT_EQUAL(test_dcm(args, out, sizeof out), 2);
    CU_ASSERT(strstr(out, "bwd.evidence.json was computed from") != NULL);
    CU_ASSERT(strstr(out, "none of the result files given") != NULL);
    CU_ASSERT(!test_exists_in(dir, "bad.html"));
    CU_ASSERT(!test_exists_in(dir, "badpng"));
    /* ... of a result changed since (one byte more) ... */
    snprintf(args, sizeof args, "cp %s/fwd_fit.json %s/changed.json && echo >> %s/changed.json", dir, dir, dir);
    CU_ASSERT_EQUAL_FATAL(system(args), 0);
    snprintf(args, sizeof args, "report %s/changed.json --evidence %s/fwd.evidence.json -o %s/bad.html", dir, dir, dir);
    CU_ASSERT_EQUAL(test_dcm(args, out, sizeof out), 2);
    CU_ASSERT(!test_exists_in(dir, "bad.html"));
    /* ... of this very result, edited since (said so) ... */
    snprintf(args, sizeof args, "cp %s/fwd_fit.json %s/keep.json && echo >> %s/fwd_fit.json", dir, dir, dir);
    CU_ASSERT_EQUAL_FATAL(system(args), 0);
    snprintf(args, sizeof args, "report %s/fwd_fit.json --evidence %s/fwd.evidence.json -o %s/bad.html", dir, dir, dir);
    CU_ASSERT_EQUAL(test_dcm(args, out, sizeof out), 2);
    CU_ASSERT(strstr(out, "which has changed since") != NULL);
    CU_ASSERT(!test_exists_in(dir, "bad.html"));
    snprintf(args, sizeof args, "mv %s/keep.json %s/fwd_fit.json", dir, dir);
    CU_ASSERT_EQUAL_FATAL(system(args), 0);
    /* ... two for one result, a result file given as evidence */
    snprintf(args, sizeof args, "report %s/fwd_fit.json --evidence %s/fwd.evidence.json --evidence "
             "%s/fwd.evidence.json -o %s/bad.html", dir, dir, dir, dir);
    CU_ASSERT_EQUAL(test_dcm(args, out, sizeof out), 2);
    CU_ASSERT(strstr(out, "one evidence file per result") != NULL);
    snprintf(args, sizeof args, "report %s/fwd_fit.json --evidence %s/bwd_fit.json -o %s/bad.html", dir, dir, dir);
    CU_ASSERT_EQUAL(test_dcm(args, out, sizeof out), 2);
    CU_ASSERT(strstr(out, "is not an evidence file") != NULL);
    CU_ASSERT(!test_exists_in(dir, "bad.html"));
    /* evidence -o never replaces its input */
    snprintf(args, sizeof args, "evidence %s/fwd_fit.json --samples 10 --chains 2 -o %s/fwd_fit.json", dir, dir);
    CU_ASSERT_EQUAL(test_dcm(args, out, sizeof out), 2);
    json_t *r = test_load_in(dir, "fwd_fit.json");
    CU_ASSERT_PTR_NOT_NULL(r);
    CU_ASSERT_PTR_NULL(json_object_get(r, "kind"));
    json_decref(r);
    CU_ASSERT(test_no_temp_files(dir));
    json_decref(ev[0]);
    json_decref(ev[1]);
    test_remove_dir(dir);
}

int main(void)
{
    static const test_case cases[] = {
        {"linear-Gaussian: sampled = exact log evidence = Laplace F", test_exact_plain},
        {"linear-Gaussian with confounds (integrated out): sampled = exact", test_exact_confounds},
        {"determinism per seed whatever the threads; bad options", test_determinism},
        {"dcm evidence on the attention data (tiny run)", test_cli_attention},
        {"report --evidence: F vs sampled evidence, marginals; mismatches refused", test_report_evidence},
        {NULL, NULL}};
    return test_run("sampled log evidence", cases);
}
