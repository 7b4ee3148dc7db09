/* cmd_estimate.c — `dcm estimate SPEC.json -o RESULT.json` */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/cli/cli.h"
#include "io/io_atomic.h"
#include "io/io_mat.h"
#include "io/io_result.h"
#include "io/io_spec.h"

static const char *help =
    "usage: dcm estimate SPEC.json|DCM_NAME.mat -o RESULT.json [options]\n"
    "\n"
    "Fit the DCM described by SPEC.json to its data with variational Laplace,\n"
    "exactly as SPM12's spm_dcm_estimate, and write the posterior, the free\n"
    "energy and the fitted BOLD to RESULT.json (written atomically).\n"
    "The design is checked first (TR in seconds, no constant region, unique\n"
    "names: else exit 2, nothing written); suspicious designs and fits that\n"
    "SPM's spm_dcm_fmri_check would flag are warnings, printed on stderr and\n"
    "kept in the result's \"warnings\" (see dcm check, MANUAL \"Checks and\n"
    "warnings\").\n"
    "A DCM_NAME.mat that SPM specified (the struct DCM) may stand for SPEC.json.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE   result file (required)\n"
    "  --mat FILE.mat      also write the estimated model as SPM's DCM struct\n"
    "  --maxit N           maximum iterations (default: the spec's, else 128)\n"
    "  --integrator NAME   bilinear (SPM's, default) or ode (accurate nonlinear)\n"
    "  -q, --quiet         do not print the iterations on stderr (warnings\n"
    "                      are printed all the same)\n"
    "  --log-json          print one JSON object per event on stderr instead\n"
    "                      (start, iteration, warning, done, error), for pipelines;\n"
    "                      -q does not silence these\n"
    "  -h, --help          this help\n"
    "\n"
    "example:\n"
    "  dcm estimate attention_fwd.json -o fwd.json\n"
    "  dcm estimate DCM_fwd.mat -o fwd.json --mat DCM_fwd_estimated.mat\n";

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
    long maxit = -1;
    progress_state ps = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(help, stdout);
            return DCM_OK;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (++i >= argc)
                return cli_fail("estimate", DCM_ERR_USAGE, "%s needs a file name", a);
            output = argv[i];
        } else if (!strcmp(a, "--mat")) {
            if (++i >= argc)
                return cli_fail("estimate", DCM_ERR_USAGE, "--mat needs a file name (OUT.mat)");
            mat_out = argv[i];
        } else if (!strcmp(a, "--maxit")) {
            if (++i >= argc || cli_parse_int(argv[i], 1, 100000, &maxit))
                return cli_fail("estimate", DCM_ERR_USAGE, "--maxit needs a whole number from 1 to 100000");
        } else if (!strcmp(a, "--integrator")) {
            if (++i >= argc || (strcmp(argv[i], "bilinear") && strcmp(argv[i], "ode")))
                return cli_fail("estimate", DCM_ERR_USAGE, "--integrator takes 'bilinear' or 'ode'");
            integrator = argv[i];
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            ps.quiet = 1;
        } else if (!strcmp(a, "--log-json")) {
            ps.log_json = 1;
        } else if (a[0] == '-' && a[1]) {
            return cli_fail("estimate", DCM_ERR_USAGE, "unknown option '%s' (see dcm estimate --help)", a);
        } else if (!spec) {
            spec = a;
        } else {
            return cli_fail("estimate", DCM_ERR_USAGE, "one SPEC.json at a time ('%s' is extra)", a);
        }
    }
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
    if (maxit > 0)
        P->maxit = (int)maxit;
    if (integrator)
        P->M->integrator = strcmp(integrator, "ode") ? MODEL_INT_BILINEAR : MODEL_INT_ODE;
    if (ps.log_json)
        log_event(json_pack("{s:s, s:s, s:i, s:i, s:i, s:i}", "event", "start", "spec", spec,
                            "regions", P->n, "inputs", P->m, "scans", P->v, "parameters", P->M->L.np));
    else if (!ps.quiet)
        fprintf(stderr, "dcm estimate: %s — %d regions, %d inputs, %d scans, %d parameters\n",
                spec, P->n, P->m, P->v, P->M->L.np);
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
