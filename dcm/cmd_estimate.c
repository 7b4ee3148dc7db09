/* cmd_estimate.c — `dcm estimate SPEC.json -o RESULT.json` */
#include <stdio.h>
#include <string.h>

#include "dcm/dcm_cli.h"
#include "io/io_result.h"
#include "io/io_spec.h"

static const char *help =
    "usage: dcm estimate SPEC.json -o RESULT.json [options]\n"
    "\n"
    "Fit the DCM described by SPEC.json to its data with variational Laplace,\n"
    "exactly as SPM12's spm_dcm_estimate, and write the posterior, the free\n"
    "energy and the fitted BOLD to RESULT.json (written atomically).\n"
    "\n"
    "options:\n"
    "  -o, --output FILE   result file (required)\n"
    "  --maxit N           maximum iterations (default: the spec's, else 128)\n"
    "  --integrator NAME   bilinear (SPM's, default) or ode (accurate nonlinear)\n"
    "  -q, --quiet         do not print the iterations on stderr\n"
    "  -h, --help          this help\n"
    "\n"
    "example:\n"
    "  dcm estimate attention_fwd.json -o fwd.json\n";

typedef struct {
    int quiet;
} progress_state;

static void print_progress(void *ctx, int it, double F, double dF, int accepted)
{
    progress_state *s = ctx;
    if (s->quiet)
        return;
    fprintf(stderr, "  iteration %3d  F = %.4f  predicted dF = %.3e  %s\n", it, F,
            dF, accepted ? "(accepted)" : "(rejected: smaller step)");
}

int cmd_estimate(int argc, char **argv)
{
    const char *spec = NULL, *output = NULL, *integrator = NULL;
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
        } else if (!strcmp(a, "--maxit")) {
            if (++i >= argc || cli_parse_int(argv[i], 1, 100000, &maxit))
                return cli_fail("estimate", DCM_ERR_USAGE, "--maxit needs a whole number from 1 to 100000");
        } else if (!strcmp(a, "--integrator")) {
            if (++i >= argc || (strcmp(argv[i], "bilinear") && strcmp(argv[i], "ode")))
                return cli_fail("estimate", DCM_ERR_USAGE, "--integrator takes 'bilinear' or 'ode'");
            integrator = argv[i];
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            ps.quiet = 1;
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

    dcm_error err = {0, ""};
    dcm_problem *P = NULL;
    if (io_spec_load(spec, &P, &err))
        return cli_report("estimate", &err);
    if (maxit > 0)
        P->maxit = (int)maxit;
    if (integrator)
        P->M->integrator = strcmp(integrator, "ode") ? MODEL_INT_BILINEAR : MODEL_INT_ODE;
    if (!ps.quiet)
        fprintf(stderr, "dcm estimate: %s — %d regions, %d inputs, %d scans, %d parameters\n",
                spec, P->n, P->m, P->v, P->M->L.np);
    dcm_result *R = NULL;
    int rc = dcm_estimate(P, print_progress, &ps, &R, &err);
    if (rc == DCM_OK)
        rc = io_result_write_json(output, P, R, &err);
    if (rc) {
        dcm_result_free(R);
        dcm_problem_free(P);
        return cli_report("estimate", &err);
    }
    printf("%s: F = %.4f, %d iterations, %s, %.3f s -> %s\n", spec, R->F,
           R->iterations, R->converged ? "converged" : "NOT converged (maxit reached)",
           R->seconds, output);
    dcm_result_free(R);
    dcm_problem_free(P);
    return DCM_OK;
}
