/* cmd_review.c — `dcm review RESULT.json [--threshold P]`: a terminal
 * summary of one fitted model, as SPM's review: every free parameter with
 * its posterior mean, sd and posterior probability, the fit per region,
 * free energy, iterations and convergence, noise precision. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"
#include "dcm/report/report.h"

static const char *const usage[] = {"RESULT.json [--threshold P]", NULL};

static const char *description =
    "Summarise one fitted model (a result of dcm estimate) in the terminal:\n"
    "  - every free parameter (prior variance > 0) with its posterior mean, sd\n"
    "    and posterior probability Pp (the probability that the effect exceeds\n"
    "    its prior mean in size); parameters with Pp > P are marked '*'.\n"
    "    Names (as in every command): \"A:V1->V5\" endogenous connection,\n"
    "    \"B:Attention:V1->V5\" its modulation by an input, \"C:Photic->V1\"\n"
    "    driving input, \"D:SPC:V1->V5\" nonlinear modulation, \"transit:V1\",\n"
    "    \"decay\", \"epsilon\" haemodynamics. A, B, D are in Hz (B per unit\n"
    "    input) and C enters divided by 16 (C/16 Hz per unit input), except the\n"
    "    self-connections \"A:V1->V1\", which (like the haemodynamic parameters)\n"
    "    are log scaling factors (self-inhibition -0.5*exp(A) Hz).\n"
    "  - fit: variance explained per region, 1 - var(residual)/var(observed),\n"
    "    the residual taking off the prediction and the fitted confounds;\n"
    "  - free energy, iterations, convergence, noise log-precision per region.\n"
    "The result's warnings (design and fit checks, see dcm check) come first.\n";

static const char *footer =
    "exit status: 0 success, 1 usage error, 2 unreadable or invalid result file\n"
    "\n"
    "example:\n"
    "  dcm estimate fwd_spec.json -o fwd.json\n"
    "  dcm review fwd.json --threshold 0.99\n";

static const char *yes_no(int x)
{
    return x < 0 ? "unknown" : x ? "yes" : "no";
}

static void print_names(char *const *names, int k)
{
    for (int i = 0; i < k; i++)
        printf("%s%s", i ? ", " : "", names[i]);
}

int cmd_review(int argc, char **argv)
{
    const char *file = NULL;
    double threshold = 0.95;
    const cli_opt options[] = {
        CLI_DOUBLE(0, "threshold", &threshold, "P",
                   "mark parameters whose posterior probability exceeds P (0 < P < 1; default 0.95)",
                   .min = 0.0, .max = 1.0, .bounds = CLI_BOUNDS_OPEN,
                   .missing = "--threshold needs a probability, e.g. --threshold 0.95",
                   .invalid = "--threshold must be a probability between 0 and 1 (exclusive), not '%v'"),
        CLI_END};
    const cli_command cmd = {"review", usage, description, footer, options, 0};
    int npos;
    int prc = cli_options_parse(&cmd, argc, argv, &npos);
    if (prc)
        return prc == CLI_OPTIONS_HELP ? DCM_OK : prc;
    if (npos > 1)
        return cli_fail("review", DCM_ERR_USAGE,
                        "review takes one result file ('%s' and '%s' given); "
                        "use dcm report or dcm compare for several", argv[1], argv[2]);
    file = npos ? argv[1] : NULL;
    if (!file)
        return cli_fail("review", DCM_ERR_USAGE, "give a result file (see dcm review --help)");

    report_model m;
    dcm_error err = {0, ""};
    if (report_load(file, &m, &err))
        return cli_report("review", &err);
    const io_result_summary *s = &m.s;
    const int n = s->n;

    /* warnings first: they say whether the rest can be trusted */
    if (m.nwarn > 0) {   /* as report_load read them: no second parse of the file */
        printf("WARNINGS     %d (see dcm check %s)\n", m.nwarn, file);
        for (int i = 0; i < m.nwarn; i++)
            printf("  ! %s\n", m.warnings[i]);
        printf("\n");
    }

    printf("result       %s\n", file);
    printf("model        %d region%s (", n, n == 1 ? "" : "s");
    print_names(s->regions, n);
    printf("), %d input%s (", s->m, s->m == 1 ? "" : "s");
    print_names(s->inputs, s->m);
    printf(")");
    if (m.v)
        printf(", %d scans", m.v);
    if (isfinite(m.TR))
        printf(", TR %g s", m.TR);
    printf("%s%s\n", s->nd ? ", nonlinear" : "", s->two_state ? ", two-state" : "");
    printf("free energy  F = %.4f\n", s->F);
    if (s->iterations >= 0)
        printf("iterations   %d\n", s->iterations);
    printf("converged    %s\n", yes_no(s->converged));

    /* parameters */
    int width = 9, nfree = 0, nmarked = 0;
    /* a parameter name holds at most three region/input names: size the
       buffer from the longest so no name is cut */
    size_t longest = 0;
    for (int j = 0; j < n; j++)
        longest = strlen(s->regions[j]) > longest ? strlen(s->regions[j]) : longest;
    for (int j = 0; j < s->m; j++)
        longest = strlen(s->inputs[j]) > longest ? strlen(s->inputs[j]) : longest;
    size_t namelen = 3 * longest + 64;
    char *name = malloc(namelen);
    if (!name) {
        report_model_free(&m);
        return cli_fail("review", DCM_ERR_SYSTEM, "out of memory");
    }
    for (int k = 0; k < s->np; k++)
        if (report_param_free(&m, k)) {
            report_param_name(&m, k, REPORT_NAME_REVIEW, name, namelen);
            if ((int)strlen(name) > width)
                width = (int)strlen(name);
        }
    printf("\n%-*s %10s %10s %8s\n", width, "parameter", "mean", "sd", "Pp");
    for (int k = 0; k < s->np; k++) {
        if (!report_param_free(&m, k))
            continue;
        nfree++;
        report_param_name(&m, k, REPORT_NAME_REVIEW, name, namelen);
        int mark = isfinite(m.Pp[k]) && m.Pp[k] > threshold;
        nmarked += mark;
        printf("%-*s %10.4f %10.4f %8.4f%s\n", width, name, s->Ep[k], report_param_sd(&m, k), m.Pp[k],
               mark ? " *" : "");
    }
    printf("* posterior probability > %g: %d of %d free parameters\n", threshold, nmarked, nfree);
    printf("  units: A (between regions), B, D in Hz; C enters as C/16 Hz; self-connections\n"
           "  A:Vi->Vi and the haemodynamic parameters are log scaling factors (0 = prior)\n");

    /* fit */
    printf("\nfit          variance explained = 1 - var(residual) / var(observed),\n"
           "             residual = observed - predicted%s (scaled units)\n",
           m.y_conf ? " - fitted confounds" : "");
    if (!m.v)
        printf("  (the file holds no time series)\n");
    int rw = 6;
    for (int j = 0; j < n; j++)
        if ((int)strlen(s->regions[j]) > rw)
            rw = (int)strlen(s->regions[j]);
    if (m.v || s->Eh)
        printf("  %-*s %18s %20s\n", rw, "region", "variance explained", "noise log-precision");
    for (int j = 0; j < n && (m.v || s->Eh); j++) {
        printf("  %-*s", rw, s->regions[j]);
        if (isfinite(m.r2[j]))
            printf(" %18.3f", m.r2[j]);
        else
            printf(" %18s", "n/a");
        if (s->Eh)
            printf(" %20.3f", s->Eh[j]);
        else
            printf(" %20s", "n/a");
        printf("\n");
    }
    if (m.v) {
        double mean = 0.0;
        int k = 0;
        for (int j = 0; j < n; j++)
            if (isfinite(m.r2[j])) {
                mean += m.r2[j];
                k++;
            }
        if (k)
            printf("  mean variance explained %.3f\n", mean / k);
    }
    free(name);
    report_model_free(&m);
    return DCM_OK;
}
