/* cmd_estimate.c — `dcm estimate SPEC.json -o RESULT.json` */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"
#include "dcm/dcm_batch.h"
#include "io/io_atomic.h"
#include "io/io_mat.h"
#include "io/io_result.h"
#include "io/io_spec.h"

static const char *const usage[] = {"SPEC.json|DCM_NAME.mat -o RESULT.json [options]", NULL};

static const char *description =
    "Fit the DCM described by SPEC.json to its data with variational Laplace,\n"
    "exactly as SPM12's spm_dcm_estimate, and write the posterior, the free\n"
    "energy and the fitted BOLD to RESULT.json (written atomically).\n"
    "The design is checked first (TR in seconds, no constant region, unique\n"
    "names: else exit 2, nothing written); suspicious designs and fits that\n"
    "SPM's spm_dcm_fmri_check would flag are warnings, printed on stderr and\n"
    "kept in the result's \"warnings\" (see dcm check, MANUAL \"Checks and\n"
    "warnings\").\n"
    "A DCM_NAME.mat that SPM specified (the struct DCM) may stand for SPEC.json.\n";

static const char *footer =
    "example:\n"
    "  dcm estimate attention_fwd.json -o fwd.json\n"
    "  dcm estimate DCM_fwd.mat -o fwd.json --mat DCM_fwd_estimated.mat\n";

static int check_integrator(const cli_opt *opt, char *arg)
{
    if (strcmp(arg, "bilinear") && strcmp(arg, "ode"))
        return -1;
    *(const char **)opt->value = arg;
    return 0;
}

typedef struct {
    int quiet;
    int log_json;
} progress_state;

/* one compact JSON object per line on stderr, then it is freed */
static void log_event(json_t *o)
{
    char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (txt)
        fprintf(stderr, "%s\n", txt);
    free(txt);
    json_decref(o);
}

static int print_progress(void *ctx, int it, double F, double dF, int accepted)
{
    progress_state *s = ctx;
    if (s->log_json)
        log_event(json_pack("{s:s, s:i, s:f, s:f, s:b}", "event", "iteration", "iteration", it,
                            "F", F, "dF_predicted", dF, "accepted", accepted));
    else if (!s->quiet)
        fprintf(stderr, "  iteration %3d  F = %.4f  predicted dF = %.3e  %s\n", it, F,
                dF, accepted ? "(accepted)" : "(rejected: smaller step)");
    return 0; /* the command never stops a fit early */
}

static int fail_event(const progress_state *ps, const dcm_error *err)
{
    if (ps->log_json) {
        log_event(json_pack("{s:s, s:i, s:s}", "event", "error", "code", err->code, "message", err->msg));
        return err->code ? err->code : DCM_ERR_SYSTEM;
    }
    return cli_report("estimate", err);
}

int cmd_estimate(int argc, char **argv)
{
    const char *spec = NULL, *output = NULL, *integrator = NULL, *mat_out = NULL;
    long maxit = -1, threads = 0;   /* 0: the cores this process may use */
    int spm12_te = 0;
    progress_state ps = {0};
    const cli_opt options[] = {
        CLI_STRING('o', "output", &output, "FILE", "result file (required)", .missing = "%o needs a file name"),
        CLI_STRING(0, "mat", &mat_out, "FILE.mat", "also write the estimated model as SPM's DCM struct (rDCM: TAPAS's output struct)",
                   .missing = "--mat needs a file name (OUT.mat)"),
        CLI_INT(0, "maxit", &maxit, "N", 1, 100000, "maximum iterations (default: the spec's, else 128)",
                .missing = "--maxit needs a whole number from 1 to 100000"),
        CLI_CALLBACK(0, "integrator", &integrator, "NAME", check_integrator,
                     "bilinear (SPM's, default) or ode (accurate nonlinear)",
                     .missing = "--integrator takes 'bilinear' or 'ode'"),
        CLI_FLAG(0, "spm12-te", &spm12_te,
                 "compute BOLD with TE = 0.04 s as SPM12 r7771 does whatever the spec or DCM.TE says "
                 "(default: the spec's TE)"),
        CLI_INT('j', "jobs", &threads, "N", 1, 1024,
                "threads for one estimate: the Jacobian's columns (task fMRI), the regions "
                "(regression DCM) (default: the cores this process may use; the result does not "
                "depend on N)",
                .missing = "-j needs a whole number of threads from 1 to 1024"),
        CLI_INT(0, "threads", &threads, "N", 1, 1024, "the same as -j",
                .missing = "--threads needs a whole number of threads from 1 to 1024"),
        CLI_FLAG('q', "quiet", &ps.quiet,
                 "do not print the iterations on stderr (warnings are printed all the same)"),
        CLI_FLAG(0, "log-json", &ps.log_json,
                 "print one JSON object per event on stderr instead (start, iteration, warning, done, "
                 "error), for pipelines; -q does not silence these"),
        CLI_END};
    const cli_command cmd = {"estimate", usage, description, footer, options, 0};
    int npos;
    int prc0 = cli_options_parse(&cmd, argc, argv, &npos);
    if (prc0)
        return prc0 == CLI_OPTIONS_HELP ? DCM_OK : prc0;
    if (npos > 1)
        return cli_fail("estimate", DCM_ERR_USAGE, "one SPEC.json at a time ('%s' is extra)", argv[2]);
    spec = npos ? argv[1] : NULL;
    if (!spec)
        return cli_fail("estimate", DCM_ERR_USAGE, "no SPEC.json given (see dcm estimate --help)");
    if (!output)
        return cli_fail("estimate", DCM_ERR_USAGE, "no output file: add -o RESULT.json");

    /* outputs checked before any work: never an input, a device or an
       unwritable folder */
    cli_plan plan;
    cli_plan_init(&plan, "estimate");
    plan.quiet = ps.log_json;   /* then the refusal is an error event */
    cli_plan_spec(&plan, spec);
    cli_plan_output(&plan, output, "-o");
    if (mat_out)
        cli_plan_output(&plan, mat_out, "--mat");
    int prc = cli_plan_check(&plan);
    dcm_error perr = plan.err;
    cli_plan_free(&plan);
    if (prc)
        return ps.log_json ? fail_event(&ps, &perr) : prc;

    dcm_error err = {0, ""};
    dcm_problem *P = NULL;
    size_t ls = strlen(spec);
    int is_mat = ls > 4 && !strcmp(spec + ls - 4, ".mat");
    if (is_mat ? io_mat_load_dcm(spec, &P, &err) : io_spec_load(spec, &P, &err))
        return fail_event(&ps, &err);
    if (P->analysis == DCM_ANALYSIS_CSD && integrator) {
        dcm_error_set(&err, DCM_ERR_USAGE, "%s is a spectral DCM (\"analysis\": \"csd\"): --integrator "
                      "does not apply to it (its model is linearised, not integrated)", spec);
        dcm_problem_free(P);
        return fail_event(&ps, &err);
    }
    /* --mat is TAPAS's output struct for rDCM (io_mat_write_dcm_to) */
    if (P->analysis == DCM_ANALYSIS_RDCM && (integrator || spm12_te || maxit > 0)) {
        dcm_error_set(&err, DCM_ERR_USAGE, "%s is a regression DCM (\"method\": \"%s\"): %s does not "
                      "apply to it", spec, P->rdcm.method ? "sparse_rdcm" : "rdcm",
                      integrator ? "--integrator" : spm12_te ? "--spm12-te"
                                                 : "--maxit (TAPAS's 501 VB iterations)");
        dcm_problem_free(P);
        return fail_event(&ps, &err);
    }
    P->rdcm.threads = threads > 0 ? (int)threads : dcm_batch_cpus(NULL);
    P->rdcm.keep_covariance = mat_out != NULL;   /* TAPAS's sN in the .mat */
    P->threads = P->rdcm.threads;
    if (maxit > 0)
        P->maxit = (int)maxit;
    if (spm12_te && io_mat_use_spm12_te(P)) {
        dcm_problem_free(P);
        dcm_error_set(&err, DCM_ERR_SYSTEM, "out of memory");
        return fail_event(&ps, &err);
    }
    if (integrator)
        P->M->integrator = strcmp(integrator, "ode") ? MODEL_INT_BILINEAR : MODEL_INT_ODE;
    if (ps.log_json)
        log_event(json_pack("{s:s, s:s, s:i, s:i, s:i, s:i}", "event", "start", "spec", spec,
                            "regions", P->n, "inputs", P->m, "scans", P->v, "parameters", dcm_problem_parameters(P)));
    else if (!ps.quiet)
        fprintf(stderr, "dcm estimate: %s — %d regions, %d inputs, %d scans, %d parameters\n",
                spec, P->n, P->m, P->v, dcm_problem_parameters(P));
    dcm_result *R = NULL;
    int rc = dcm_estimate(P, print_progress, &ps, &R, &err);
    /* both outputs or neither: written, then committed together */
    io_atomic outs[2];
    memset(outs, 0, sizeof outs);
    if (rc == DCM_OK)
        rc = io_result_write_json_to(&outs[0], output, P, R, &err);
    if (rc == DCM_OK && mat_out && !(rc = io_atomic_open(&outs[1], mat_out, &err)) &&
        (rc = io_mat_write_dcm_to(&outs[1], P, R, &err)))
        io_atomic_abort(&outs[1]);
    if (rc == DCM_OK)
        rc = io_atomic_commit_all(outs, mat_out ? 2 : 1, &err);
    else
        for (int k = 0; k < 2; k++)
            io_atomic_abort(&outs[k]);
    if (rc) {
        dcm_result_free(R);
        dcm_problem_free(P);
        return fail_event(&ps, &err);
    }
    /* warnings are printed even with -q: they say the result may be wrong */
    for (int i = 0; i < R->warnings.count; i++) {
        if (ps.log_json)
            log_event(json_pack("{s:s, s:s}", "event", "warning", "message", R->warnings.items[i]));
        else
            fprintf(stderr, "dcm estimate: warning: %s\n", R->warnings.items[i]);
    }
    if (ps.log_json)
        log_event(json_pack("{s:s, s:f, s:i, s:b, s:f, s:s, s:i}", "event", "done", "F", R->F,
                            "iterations", R->iterations, "converged", R->converged, "seconds",
                            R->seconds, "output", output, "warnings", R->warnings.count));
    if (R->rdcm && R->rdcm->method == 1)
        printf("%s: F = %.4f (sparse rDCM, p0 = %g), at most %d VB iterations per region, %.3f s -> %s",
               spec, R->F, R->rdcm->p0, R->iterations, R->seconds, output);
    else if (R->rdcm)
        printf("%s: F = %.4f (rDCM), at most %d VB iterations per region, %.3f s -> %s", spec, R->F,
               R->iterations, R->seconds, output);
    else
        printf("%s: F = %.4f, %d iterations, %s, %.3f s -> %s", spec, R->F,
               R->iterations, R->converged ? "converged" : "NOT converged (maxit reached)",
               R->seconds, output);
    if (R->warnings.count)
        printf(" (%d warning%s: see dcm check)", R->warnings.count, R->warnings.count == 1 ? "" : "s");
    printf("\n");
    dcm_result_free(R);
    dcm_problem_free(P);
    return DCM_OK;
}
