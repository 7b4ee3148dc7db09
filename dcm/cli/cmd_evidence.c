/* cmd_evidence.c — `dcm evidence`: the log evidence of an estimated model
 * by sampling (thermodynamic integration or annealed importance sampling),
 * beside the free energy F that approximates it (issue 16, MANUAL "Checking
 * F: sampled log evidence"). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"
#include "dcm/dcm_evidence.h"
#include "io/io_atomic.h"

static const char *const usage[] = {
    "RESULT.json [--method ti|ais] [--temperatures K] [--samples N] [--chains C] [--seed S] "
    "[-j THREADS] [--json] [--samples-out FILE] [-o EVIDENCE.json]", NULL};

static const char *description =
    "The log evidence ln p(y|m) of an estimated task DCM by sampling, to check\n"
    "the free energy F that DCM compares models with: ln p(y|m) = F + KL[q||p],\n"
    "so kl_gap = log_evidence - F is what the Laplace approximation misses.\n"
    "\n"
    "The model is re-built from the spec the result names (the same data,\n"
    "priors, confounds and BOLD model as the fit). Thermodynamic integration\n"
    "(ti): K power posteriors p(y|theta)^b p(theta) q(theta)^(1-b) from a\n"
    "reference q (the Laplace posterior, widened; --path prior: from the prior)\n"
    "to the posterior, b = (k/(K-1))^P, sampled\n"
    "by Metropolis with the Laplace covariance of each power posterior as the\n"
    "proposal (its scale adapted in burn-in only) and swaps between\n"
    "neighbouring temperatures; ln p(y|m) is the integral over b of the mean\n"
    "log likelihood. The noise log-precisions are sampled with their\n"
    "hyperprior; the confound coefficients are integrated out exactly. The\n"
    "standard error is that of C independent replicas (threads run replicas;\n"
    "the numbers depend on the seed only, not on the threads).\n";

static const char *footer =
    "output: log_evidence, se, free_energy, kl_gap (= log_evidence - F),\n"
    "acceptance and swap rates, rhat (split R-hat of the log likelihood at b = 1\n"
    "over replicas; rhat_max over all temperatures), evaluations, seconds\n"
    "(wall and CPU). --samples-out writes the posterior samples (b = 1) as TSV\n"
    "with a header of parameter names. -o writes the JSON (with the result's\n"
    "hash and a histogram of each parameter's samples at b = 1) for\n"
    "dcm report --evidence, which draws F against the sampled evidence and the\n"
    "sampled marginals over the Laplace Gaussians. A |kl_gap| within 2 se of 0 says F is\n"
    "as good as the evidence for this model; compare gaps across models.\n"
    "\n"
    "examples:\n"
    "  dcm evidence fwd.json\n"
    "  dcm evidence fwd.json -o fwd.evidence.json\n"
    "  dcm report fwd.json --evidence fwd.evidence.json -o report.html\n"
    "  dcm evidence fwd.json --samples 4000 --chains 8 -j 2 --json\n";

static json_t *jnum(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

static int write_samples(const char *path, const dcm_evidence_out *o)
{
    io_atomic a;
    dcm_error err = {0, ""};
    if (io_atomic_open(&a, path, &err))
        return cli_report("evidence", &err);
    const vl_evidence_result *E = o->ev;
    for (int i = 0; i < o->np; i++)
        fprintf(a.fp, "%s%s", i ? "\t" : "", o->names[i]);
    fputc('\n', a.fp);
    for (int s = 0; s < E->nkept; s++)
        for (int i = 0; i < o->np; i++)
            fprintf(a.fp, "%.17g%c", E->samples[(size_t)s * o->np + i], i + 1 < o->np ? '\t' : '\n');
    if (io_atomic_commit(&a, &err))
        return cli_report("evidence", &err);
    return DCM_OK;
}

/* bins of the histogram of each parameter's samples at b = 1 (-o) */
#define EVIDENCE_HIST_BINS 30

/* {"lo", "hi", "counts"}: EVIDENCE_HIST_BINS equal bins over the range of
 * the kept samples of parameter i (NULL without samples) */
static json_t *histogram(const vl_evidence_result *E, int np, int i)
{
    if (!E->samples || E->nkept < 1)
        return NULL;
    double lo = INFINITY, hi = -INFINITY;
    for (int s = 0; s < E->nkept; s++) {
        double x = E->samples[(size_t)s * np + i];
        lo = fmin(lo, x);
        hi = fmax(hi, x);
    }
    if (!isfinite(lo) || !isfinite(hi))
        return NULL;
    if (!(hi > lo)) {   /* one value: a bin around it */
        double d = fmax(fabs(lo) * 1e-6, 1e-12);
        lo -= d;
        hi += d;
    }
    long counts[EVIDENCE_HIST_BINS] = {0};
    for (int s = 0; s < E->nkept; s++) {
        int b = (int)((E->samples[(size_t)s * np + i] - lo) / (hi - lo) * EVIDENCE_HIST_BINS);
        counts[b < 0 ? 0 : b >= EVIDENCE_HIST_BINS ? EVIDENCE_HIST_BINS - 1 : b]++;
    }
    json_t *c = json_array();
    for (int b = 0; b < EVIDENCE_HIST_BINS && c; b++)
        json_array_append_new(c, json_integer(counts[b]));
    return json_pack("{s:f, s:f, s:o}", "lo", lo, "hi", hi, "counts", c);
}

/* what -o adds to the JSON: the identity of the result (dcm report
 * matches evidence files to results by it) and the histograms */
static int add_report_fields(json_t *j, const char *input, const dcm_evidence_out *o)
{
    char hex[17];
    dcm_error err = {0, ""};
    if (dcm_evidence_file_hash(input, hex, &err))
        return cli_report("evidence", &err);
    json_object_set_new(j, "kind", json_string("evidence"));
    json_object_set_new(j, "result_hash", json_string(hex));
    json_t *params = json_object_get(j, "parameters");
    size_t q = 0;
    for (int i = 0; i < o->np; i++) {
        if (!(o->prior_var[i] > 0.0))
            continue;
        json_t *h = histogram(o->ev, o->np, i);
        if (h)
            json_object_set_new(json_array_get(params, q), "histogram", h);
        q++;
    }
    return DCM_OK;
}

static json_t *as_json(const char *input, const dcm_evidence_out *o, const vl_evidence_options *op)
{
    const vl_evidence_result *E = o->ev;
    json_t *params = json_array();
    for (int i = 0; i < o->np && params; i++) {
        if (!(o->prior_var[i] > 0.0))
            continue;
        json_array_append_new(params, json_pack("{s:s, s:o, s:o, s:o, s:o, s:o}", "name", o->names[i],
                              "laplace_mean", jnum(o->laplace_mean[i]), "laplace_sd", jnum(o->laplace_sd[i]),
                              "sample_mean", jnum(E->post_mean[i]), "sample_sd", jnum(E->post_sd[i]),
                              "mcse", jnum(E->mcse_mean[i])));
    }
    json_t *chains = cli_json_vec(E->chain_log_evidence, E->chains);
    json_t *beta = cli_json_vec(E->beta, E->K), *ml = cli_json_vec(E->mean_loglik, E->K);
    json_t *vl = cli_json_vec(E->var_loglik, E->K);
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:s, s:i, s:i, s:i, s:i, s:I, s:o, s:o, s:o, "
                     "s:o, s:o, s:o, s:o, s:I, s:i, s:o, s:o, s:o, s:{s:o, s:o, s:o}, s:o, s:{s:o, s:o}}",
                     "result", input, "spec", o->spec,
                     "method", op->method == VL_EV_AIS ? "ais" : "ti",
                     "path", op->path == VL_EV_PATH_PRIOR ? "prior" : "laplace",
                     "log_evidence", jnum(E->log_evidence), "se", jnum(E->se),
                     "log_evidence_trapezoid", jnum(E->log_evidence_trapezoid),
                     "free_energy", jnum(o->F), "kl_gap", jnum(E->log_evidence - o->F),
                     "noise", E->sample_h ? "sampled" : "fixed at the posterior",
                     "temperatures", E->K, "samples", op->samples, "burnin", op->burnin,
                     "chains", E->chains, "seed", (json_int_t)op->seed,
                     "acceptance", jnum(E->accept_rate), "acceptance_top", jnum(E->accept_rate_top),
                     "swap_rate", jnum(E->swap_rate), "rhat", jnum(E->rhat), "rhat_max", jnum(E->rhat_max),
                     "invalid_prior_mass", jnum(E->invalid_prior_mass),
                     "chain_log_evidence", chains,
                     "evaluations", (json_int_t)E->evaluations, "samples_used", E->nkept,
                     "seconds", jnum(o->seconds), "cpu_seconds", jnum(o->cpu_seconds),
                     "threads", json_integer(op->threads),
                     "schedule", "beta", beta, "mean_loglik", ml, "var_loglik", vl,
                     "parameters", params, "noise_log_precision", "laplace",
                     cli_json_vec(o->laplace_h, o->nh), "sampled", cli_json_vec(E->post_mean_h, E->nh));
}

static void print_table(const char *input, const dcm_evidence_out *o, const vl_evidence_options *op)
{
    const vl_evidence_result *E = o->ev;
    printf("result        %s (spec %s)\n", input, o->spec);
    printf("method        %s, %d temperatures (power %g), %d chains x %d samples%s, seed %llu\n",
           op->method == VL_EV_AIS ? "annealed importance sampling" : "thermodynamic integration",
           E->K, op->power, E->chains, op->samples,
           op->method == VL_EV_AIS ? " (particles)" : "", (unsigned long long)op->seed);
    printf("path          from the %s\n", op->path == VL_EV_PATH_PRIOR ? "prior (power posteriors)"
                                   : "Laplace posterior (referenced power posteriors)");
    printf("noise         log-precisions %s\n", E->sample_h ? "sampled (hyperprior)" : "fixed at the posterior");
    printf("log evidence  %.3f +- %.3f (MC standard error)\n", E->log_evidence, E->se);
    if (isfinite(E->log_evidence_trapezoid))
        printf("  trapezoid   %.3f +- %.3f (corrected trapezoid over the same samples)\n",
               E->log_evidence_trapezoid, E->se_trapezoid);
    printf("free energy   %.3f\n", o->F);
    printf("kl gap        %.3f (log evidence - F)\n", E->log_evidence - o->F);
    printf("acceptance    %.3f (b = 1: %.3f), swaps %.3f\n", E->accept_rate, E->accept_rate_top,
           E->swap_rate);
    printf("R-hat         %.3f (b = 1), %.3f (largest)\n", E->rhat, E->rhat_max);
    if (E->invalid_prior_mass > 0)
        printf("invalid       %.4f of the draws at b = 0 (%s) could not be evaluated (their mass is "
               "accounted for)\n", E->invalid_prior_mass, op->path == VL_EV_PATH_PRIOR ? "prior" : "reference");
    printf("evaluations   %ld, %.1f s (CPU %.1f s, %d thread%s)\n", E->evaluations, o->seconds,
           o->cpu_seconds, op->threads, op->threads == 1 ? "" : "s");
    printf("\n%-28s %11s %10s %11s %10s %9s\n", "parameter", "Laplace", "sd", "sampled", "sd", "z");
    for (int i = 0; i < o->np; i++) {
        if (!(o->prior_var[i] > 0.0))
            continue;
        double z = (E->post_mean[i] - o->laplace_mean[i]) / E->mcse_mean[i];
        printf("%-28s %11.4f %10.4f %11.4f %10.4f %9.2f\n", o->names[i], o->laplace_mean[i],
               o->laplace_sd[i], E->post_mean[i], E->post_sd[i], z);
    }
    for (int i = 0; i < o->nh; i++)
        printf("%-28s %11.4f %10s %11.4f\n", i ? "" : "noise log-precision", o->laplace_h[i], "",
               E->post_mean_h[i]);
    printf("(z: sampled - Laplace mean in Monte-Carlo standard errors of the sampled mean)\n");
}

static int parse_path(const cli_opt *opt, char *arg)
{
    int *m = opt->value;
    if (!strcmp(arg, "laplace"))
        *m = VL_EV_PATH_LAPLACE;
    else if (!strcmp(arg, "prior"))
        *m = VL_EV_PATH_PRIOR;
    else
        return -1;
    return 0;
}

static int parse_method(const cli_opt *opt, char *arg)
{
    int *m = opt->value;
    if (!strcmp(arg, "ti"))
        *m = VL_EV_TI;
    else if (!strcmp(arg, "ais"))
        *m = VL_EV_AIS;
    else
        return -1;
    return 0;
}

int cmd_evidence(int argc, char **argv)
{
    vl_evidence_options op;
    vl_evidence_defaults(&op);
    long K = op.temperatures, N = op.samples, C = op.chains, seed = (long)op.seed, threads = 2, burn = -1;
    double power = -1.0;   /* by path: 1 from the Laplace posterior, 5 from the prior */
    int json = 0, fixed_h = 0, npos = 0;
    const char *samples_out = NULL, *spec = NULL, *json_out = NULL;
    const cli_opt options[] = {
        CLI_CALLBACK(0, "method", &op.method, "ti|ais", parse_method,
                     "thermodynamic integration with parallel tempering (default) or annealed "
                     "importance sampling", .invalid = "%o must be ti or ais, not '%v'"),
        CLI_CALLBACK(0, "path", &op.path, "laplace|prior", parse_path,
                     "where the ladder starts: the Laplace posterior widened by 1.2 in sd (default; "
                     "few temperatures suffice) or the prior (the classical power posteriors; needs "
                     "many temperatures when the data are informative)",
                     .invalid = "%o must be laplace or prior, not '%v'"),
        CLI_INT(0, "temperatures", &K, "K", 2, 1000, "temperatures of the schedule (default 16)"),
        CLI_DOUBLE(0, "power", &power, "P", "schedule b_k = (k/(K-1))^P (default 1 on the Laplace path, 5 on the prior path)",
                   .min = 0, .max = 100, .bounds = CLI_BOUNDS_OPEN),
        CLI_INT(0, "samples", &N, "N", 10, 10000000,
                "kept sweeps per chain (ais: particles per chain; default 1000)"),
        CLI_INT(0, "burnin", &burn, "N", 0, 10000000, "adaptation sweeps before (default 30% of samples)"),
        CLI_INT(0, "chains", &C, "C", 2, 1000, "independent replicas, for the standard error (default 4)"),
        CLI_INT(0, "seed", &seed, "S", 0, 2147483647L, "random seed (default 1)"),
        CLI_INT('j', "threads", &threads, "THREADS", 1, 256, "threads over chains (default 2)"),
        CLI_FLAG(0, "fixed-noise", &fixed_h, "fix the noise log-precisions at the posterior instead of "
                                             "sampling them: the evidence given those precisions"),
        CLI_STRING(0, "spec", &spec, "FILE", "the spec to re-build the model from (default: the one "
                                             "the result names)", .flags = CLI_OPT_NONEMPTY),
        CLI_FLAG(0, "json", &json, "print JSON instead of the table"),
        CLI_STRING(0, "samples-out", &samples_out, "FILE",
                   "write the posterior samples (b = 1) as TSV", .flags = CLI_OPT_NONEMPTY),
        CLI_STRING('o', "output", &json_out, "FILE",
                   "write the JSON with the result's hash and histograms of the samples, for dcm "
                   "report --evidence (atomically; the table or --json is still printed)",
                   .flags = CLI_OPT_NONEMPTY),
        CLI_END};
    const cli_command cmd = {"evidence", usage, description, footer, options, 0};
    int rc = cli_options_parse(&cmd, argc, argv, &npos);
    if (rc)
        return rc == CLI_OPTIONS_HELP ? DCM_OK : rc;
    if (npos != 1)
        return cli_fail("evidence", DCM_ERR_USAGE, npos ? "one RESULT.json at a time ('%s' is extra)"
                                                        : "give a result file (see dcm evidence --help)",
                        npos ? argv[2] : "");
    const char *input = argv[1];
    op.temperatures = (int)K;
    op.samples = (int)N;
    op.burnin = burn >= 0 ? (int)burn : (int)(0.3 * N);
    op.chains = (int)C;
    op.seed = (uint64_t)seed;
    op.threads = (int)(threads < C ? threads : C);
    op.power = power > 0 ? power : op.path == VL_EV_PATH_PRIOR ? 5.0 : 1.0;
    op.sample_h = !fixed_h;
    op.keep_samples = samples_out != NULL || json_out != NULL;
    cli_plan plan;
    cli_plan_init(&plan, "evidence");
    cli_plan_input(&plan, input, "the result file");
    if (spec)
        cli_plan_input(&plan, spec, "the spec");
    cli_plan_output(&plan, samples_out, "--samples-out");
    cli_plan_output(&plan, json_out, "-o");
    rc = cli_plan_check(&plan);
    cli_plan_free(&plan);
    if (rc)
        return rc;
    dcm_evidence_out o;
    dcm_error err = {0, ""};
    if ((rc = dcm_evidence_run(input, spec, &op, &o, &err)))
        return cli_report("evidence", &err);
    if (samples_out && (rc = write_samples(samples_out, &o))) {
        dcm_evidence_out_free(&o);
        return rc;
    }
    if (json || json_out) {
        json_t *j = as_json(input, &o, &op);
        if (!j)
            rc = cli_fail("evidence", DCM_ERR_SYSTEM, "out of memory");
        else if (!json_out || !(rc = add_report_fields(j, input, &o)))
            rc = cli_emit_json("evidence", j, json, json_out);
        json_decref(j);
    }
    if (!json && !rc)
        print_table(input, &o, &op);
    dcm_evidence_out_free(&o);
    return rc;
}

/* `dcm compare --evidence ti|ais R...`: each model's sampled log evidence
 * (defaults of dcm evidence, 2 threads) with its standard error beside F,
 * and the log Bayes factors against the first model both ways. Adds
 * "evidence" to o (JSON) or prints a table. */
int cli_compare_evidence(const char **files, int k, const char *method, int as_json, json_t *o)
{
    vl_evidence_options op;
    vl_evidence_defaults(&op);
    if (!strcmp(method, "ais"))
        op.method = VL_EV_AIS;
    else if (strcmp(method, "ti"))
        return cli_fail("compare", DCM_ERR_USAGE, "--evidence must be ti or ais, not '%s'", method);
    op.power = 1.0;
    op.threads = 2;
    op.burnin = (int)(0.3 * op.samples);
    double *lev = calloc(k, sizeof(double)), *se = calloc(k, sizeof(double)), *F = calloc(k, sizeof(double));
    json_t *arr = json_array();
    int rc = DCM_OK;
    if (!lev || !se || !F || !arr) {
        rc = cli_fail("compare", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < k; i++) {
        dcm_evidence_out ev;
        dcm_error err = {0, ""};
        if ((rc = dcm_evidence_run(files[i], NULL, &op, &ev, &err))) {
            rc = cli_report("compare", &err);
            goto done;
        }
        lev[i] = ev.ev->log_evidence;
        se[i] = ev.ev->se;
        F[i] = ev.F;
        json_array_append_new(arr, json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "result", files[i],
                              "free_energy", jnum(F[i]), "log_evidence", jnum(lev[i]), "se", jnum(se[i]),
                              "kl_gap", jnum(lev[i] - F[i]), "log_bf_sampled", jnum(lev[i] - lev[0]),
                              "log_bf_F", jnum(F[i] - F[0])));
        dcm_evidence_out_free(&ev);
    }
    if (as_json) {
        json_object_set_new(o, "evidence", arr);
        arr = NULL;
    } else {
        printf("\nsampled log evidence (%s, %d temperatures, %d chains x %d samples, seed %llu):\n",
               method, op.temperatures, op.chains, op.samples, (unsigned long long)op.seed);
        printf("%-24s %12s %12s %8s %9s %18s %10s\n", "model", "F", "log ev", "se", "gap",
               "log BF (sampled)", "log BF (F)");
        for (int i = 0; i < k; i++)
            printf("%-24s %12.3f %12.3f %8.3f %9.3f %10.3f +- %5.3f %10.3f\n", files[i], F[i], lev[i],
                   se[i], lev[i] - F[i], lev[i] - lev[0], i ? hypot(se[i], se[0]) : 0.0, F[i] - F[0]);
        printf("(log BF against the first model; gap = log evidence - F)\n");
    }
done:
    json_decref(arr);
    free(lev);
    free(se);
    free(F);
    return rc;
}
