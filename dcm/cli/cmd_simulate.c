/* cmd_simulate.c — `dcm simulate SPEC.json --params P.json [--vary NAME=SD]
 * --snr S --seed N -o timeseries.tsv`: BOLD data from known parameters. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"
#include "io/io_params.h"
#include "io/io_pnames.h"
#include "io/io_result.h"
#include "io/io_spec.h"
#include "io/io_tsv.h"

/* The --vary stream's seed is the --seed XOR this (32-bit golden ratio), so
 * the parameter draws never repeat the numbers of the same seed's noise. */
#define SIMULATE_VARY_SEED_MIX 0x9E3779B9UL

static const char *const usage[] = {
    "SPEC.json [--params P.json] [--vary NAME=SD ...] [--snr S] [--seed N]\n"
    "                    [--params-out FILE] -o OUT.tsv",
    NULL};

static const char *description =
    "Generate regional BOLD time series from the model in SPEC.json (its TR,\n"
    "inputs, connectivity and delays; the spec's time series need not exist:\n"
    "give \"scans\" instead) with parameters from P.json, one of:\n"
    "  - parameter names, as every other command writes them:\n"
    "      {\"A:V1->V5\": 0.4, \"B:Attention:V1->V5\": 0.3, \"C:Photic->V1\": 0.6}\n"
    "  - blocks A, B, C, D, transit, decay, epsilon laid out as in a result's\n"
    "    posterior_mean, e.g. {\"C\": [[0.6, 0, 0], [0, 0, 0], [0, 0, 0]]}\n"
    "  - a result file (its posterior mean).\n"
    "Parameters not given take their prior mean. A non-zero value on a\n"
    "parameter the spec switches off (a, b, c, d) is an error, as is a network\n"
    "with no driving input (every C zero): it would be silent. Gaussian noise\n"
    "is added to each region with standard deviation sd(signal)/S. The output\n"
    "has the spec's region names as header and is written atomically.\n";

static const char *footer =
    "Random numbers: GSL's MT19937 in two streams. The noise: seeded with N,\n"
    "region by region, scan by scan. --vary: seeded with N XOR 0x9E3779B9, one\n"
    "normal draw per varied parameter with SD > 0 in the parameters' flat order\n"
    "(A, B, C, D, transit, decay, epsilon; matrices column by column). So the\n"
    "noise does not depend on --vary, and --params-out FILE given back as\n"
    "--params with the same seed reproduces the data.\n"
    "\n"
    "examples:\n"
    "  dcm simulate fwd.json --params truth.json --snr 2 --seed 7 -o timeseries.tsv\n"
    "  dcm simulate fwd.json --params truth.json --vary 'A:*=0.05' --vary 'B:*=0.1' \\\n"
    "      --snr 3 --seed 12 --params-out sub-12_truth.json -o sub-12.tsv\n";

/* What SPM's scaling (dcm_estimate.c: each region's mean removed, then
 * everything times 4/range when the range exceeds 4) will do to these data. */
static void rescaling_note(const double *y, int v, int n)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < n; j++) {
        double mu = 0.0;
        for (int s = 0; s < v; s++)
            mu += y[s + j * v] / v;
        for (int s = 0; s < v; s++) {
            lo = fmin(lo, y[s + j * v] - mu);
            hi = fmax(hi, y[s + j * v] - mu);
        }
    }
    if (!(hi - lo > 4.0))
        return;
    double k = 4.0 / (hi - lo);
    fprintf(stderr,
            "dcm simulate: note: these data span %.2f (largest minus smallest value over all regions, "
            "each region's mean removed), more than SPM's 4 %% signal change. dcm estimate, like SPM, "
            "will multiply them by %.3f (the result's data_scale) before fitting, so its estimates "
            "describe the rescaled data: expect C near %.3f times the simulated C, and A, B and D "
            "only roughly equal to the simulated values. To compare estimates with these parameters "
            "directly, simulate with a smaller C (or less noise) so the data span at most 4.\n",
            hi - lo, k, k);
}

/* One --vary NAME=SD: set sd[i] for the switched-on parameters NAME
 * matches. */
static int apply_vary(const dcm_problem *P, const char *arg, const double *pV, double *sd,
                      unsigned char *mask)
{
    const char *eq = strrchr(arg, '=');
    double s;
    if (!eq || eq == arg || cli_parse_double(eq + 1, &s) || s < 0)
        return cli_fail("simulate", DCM_ERR_USAGE,
                        "--vary '%s': write NAME=SD with SD a number >= 0 (e.g. --vary 'B:*=0.1')", arg);
    const int np = P->M->L.np;
    char *name = strndup(arg, (size_t)(eq - arg));
    if (!name)
        return cli_fail("simulate", DCM_ERR_SYSTEM, "out of memory");
    memset(mask, 0, (size_t)np);
    io_pname_space S = {P->n, P->m, P->M->L.nd, P->region_names, P->input_names,
                        P->analysis == DCM_ANALYSIS_CSD};
    dcm_error err = {0, ""};
    int rc = DCM_OK;
    if (io_pname_select(&S, name, mask, &err)) {
        rc = cli_fail("simulate", DCM_ERR_USAGE, "--vary: %s", err.msg);
        goto done;
    }
    int on = 0, off = 0;
    for (int i = 0; i < np; i++) {
        on += mask[i] && pV[i] > 0;
        off += mask[i] && pV[i] == 0;
    }
    if (!on || (off && !strchr(name, '*'))) {
        rc = cli_fail("simulate", DCM_ERR_INPUT,
                      "--vary '%s': %s the spec switches off; it cannot vary (switch it on in the "
                      "spec, or name a parameter that is on)",
                      name, strchr(name, '*') ? "every parameter this matches is one" : "this is a parameter");
        goto done;
    }
    for (int i = 0; i < np; i++)
        if (mask[i] && pV[i] > 0)
            sd[i] = s;
done:
    free(name);
    return rc;
}

int cmd_simulate(int argc, char **argv)
{
    const char *spec = NULL, *params = NULL, *output = NULL, *params_out = NULL;
    const char **vary = calloc((size_t)argc, sizeof *vary);
    int nvary = 0;
    double snr = INFINITY;
    long seed = 1;
    if (!vary)
        return cli_fail("simulate", DCM_ERR_SYSTEM, "out of memory");
    int rc = DCM_OK;
    const cli_opt options[] = {
        CLI_STRING(0, "params", &params, "FILE", "parameter values (see above)",
                   .missing = "--params needs a file name"),
        CLI_LIST(0, "vary", vary, &nvary, "NAME=SD",
                 "draw the parameters NAME names from a normal with their value as mean and standard "
                 "deviation SD (repeatable; wildcards as in reduce --off: 'B:*=0.1', 'A:*->V5=0.05'; only "
                 "parameters the spec switches on; a later --vary overrides an earlier one)",
                 .missing = "--vary needs NAME=SD (e.g. --vary 'B:*=0.1')"),
        CLI_DOUBLE(0, "snr", &snr, "S", "signal-to-noise ratio per region (default: no noise)",
                   .min = 0.0, .max = INFINITY, .bounds = CLI_BOUNDS_OPEN,
                   .missing = "--snr needs a positive number"),
        CLI_INT(0, "seed", &seed, "N", 0, 4294967295.0,
                "random seed, 0 to 4294967295 (default 1): the same seed and inputs give the same output, "
                "byte for byte",
                .missing = "--seed needs a whole number from 0 to 4294967295"),
        CLI_STRING(0, "params-out", &params_out, "FILE",
                   "write the parameters simulated from (after --vary) by name, to compare with estimates "
                   "or to reuse as --params",
                   .missing = "--params-out needs a file name"),
        CLI_STRING('o', "output", &output, "FILE", "output TSV (required)", .missing = "%o needs a file name"),
        CLI_END};
    const cli_command cmd = {"simulate", usage, description, footer, options, 0};
    int npos;
    rc = cli_options_parse(&cmd, argc, argv, &npos);
    if (rc == CLI_OPTIONS_HELP) {
        free(vary);
        return DCM_OK;
    }
    if (!rc && npos > 1)
        rc = cli_fail("simulate", DCM_ERR_USAGE, "one SPEC.json at a time ('%s' is extra)", argv[2]);
    if (!rc && npos)
        spec = argv[1];
    if (!rc && !spec)
        rc = cli_fail("simulate", DCM_ERR_USAGE, "no SPEC.json given (see dcm simulate --help)");
    if (!rc && !output)
        rc = cli_fail("simulate", DCM_ERR_USAGE, "no output file: add -o OUT.tsv");
    /* the files checked before any work: --params-out may be neither an
       input nor the -o output */
    if (!rc) {
        cli_plan plan;
        cli_plan_init(&plan, "simulate");
        cli_plan_spec_design(&plan, spec);
        if (params)
            cli_plan_input(&plan, params, "the --params file");
        cli_plan_output(&plan, output, "-o");
        if (params_out)
            cli_plan_output(&plan, params_out, "--params-out");
        rc = cli_plan_check(&plan);
        cli_plan_free(&plan);
    }
    if (rc) {
        free(vary);
        return rc;
    }

    dcm_error err = {0, ""};
    dcm_problem *P = NULL;
    if (io_spec_load_ex(spec, IO_SPEC_DESIGN_ONLY, &P, &err)) {
        free(vary);
        return cli_report("simulate", &err);
    }
    const model_dcm_layout *L = &P->M->L;
    const int np = L->np, n = P->n, v = P->v;
    double *theta = malloc(sizeof(double) * np), *pV = malloc(sizeof(double) * np);
    double *sd = calloc((size_t)np, sizeof(double));
    unsigned char *mask = malloc((size_t)np);
    double *y = malloc(sizeof(double) * (size_t)v * n);
    /* two streams: the noise's is the one `simulate` always used, so data
       without --vary are unchanged, and adding --vary (or reusing a
       --params-out file) leaves the noise as it was */
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937), *rng_vary = gsl_rng_alloc(gsl_rng_mt19937);
    if (!theta || !pV || !sd || !mask || !y || !rng || !rng_vary) {
        rc = cli_fail("simulate", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    gsl_rng_set(rng, (unsigned long)seed);
    gsl_rng_set(rng_vary, (unsigned long)seed ^ SIMULATE_VARY_SEED_MIX);
    model_dcm_priors(P->M, theta, pV);
    if (params && ((rc = io_params_load(params, P, theta, &err)) ||
                   (rc = io_params_check_off(params, P, theta, &err)))) {
        rc = cli_report("simulate", &err);
        goto done;
    }
    for (int k = 0; k < nvary; k++)
        if ((rc = apply_vary(P, vary[k], pV, sd, mask)))
            goto done;
    /* in flat order; SD 0 draws nothing (the same as no --vary) */
    for (int i = 0; i < np; i++)
        if (sd[i] > 0)
            theta[i] += gsl_ran_gaussian(rng_vary, sd[i]);
    int driven = 0, any_c = 0;
    for (int k = L->off_C; k < L->off_D; k++) {
        driven |= theta[k] != 0.0;
        any_c |= pV[k] > 0;
    }
    if (!driven) {
        rc = any_c ? cli_fail("simulate", DCM_ERR_INPUT,
                              "no driving input: every C parameter is 0 (%s), so the network would "
                              "stay silent; give the inputs the spec's \"c\" switches on a value, "
                              "e.g. {\"C:%s->%s\": 0.5} in --params",
                              params ? "none is set in the --params file" : "their prior mean; no --params given",
                              P->input_names[0], P->region_names[0])
                   : cli_fail("simulate", DCM_ERR_INPUT,
                              "no driving input: the spec's \"c\" switches no input on, so the network "
                              "would stay silent; add e.g. \"c\": {\"%s\": [\"%s\"]} to %s",
                              P->input_names[0], P->region_names[0], spec);
        goto done;
    }
    if ((rc = dcm_predict(P, theta, y, &err))) {
        rc = cli_report("simulate", &err);
        goto done;
    }
    int flat = 1;
    for (int k = 1; k < v * n && flat; k++)
        flat = y[k] == y[k - 1];
    if (flat) {
        rc = cli_fail("simulate", DCM_ERR_INPUT,
                      "the simulated BOLD is flat in every region: the inputs with a non-zero C are "
                      "never on during the %d scans; check the spec's events or C", v);
        goto done;
    }
    if (isfinite(snr)) {
        for (int j = 0; j < n; j++) {
            double mu = 0.0, ss = 0.0;
            for (int s = 0; s < v; s++)
                mu += y[s + j * v];
            mu /= v;
            for (int s = 0; s < v; s++)
                ss += (y[s + j * v] - mu) * (y[s + j * v] - mu);
            double sdj = sqrt(ss / (v > 1 ? v - 1 : 1));
            if (sdj == 0.0) {
                rc = cli_fail("simulate", DCM_ERR_INPUT,
                              "region %s has no signal with these parameters, so an SNR "
                              "cannot be set: give it a driving input or a connection",
                              P->region_names[j]);
                goto done;
            }
            for (int s = 0; s < v; s++)
                y[s + j * v] += gsl_ran_gaussian(rng, sdj / snr);
        }
    }
    /* both outputs or neither: the parameters wait, written but not
       renamed into place, until the time series is */
    io_atomic held = {0};
    if (params_out && (rc = io_params_write_names(params_out, P, theta, &held, &err))) {
        rc = cli_report("simulate", &err);
        goto done;
    }
    if ((rc = io_tsv_write(output, v, n, y, (const char *const *)P->region_names, &err))) {
        io_atomic_abort(&held);
        rc = cli_report("simulate", &err);
        goto done;
    }
    if (params_out && (rc = io_atomic_commit(&held, &err))) {
        rc = cli_report("simulate", &err);
        goto done;
    }
    rescaling_note(y, v, n);
done:
    if (rng)
        gsl_rng_free(rng);
    if (rng_vary)
        gsl_rng_free(rng_vary);
    free(vary);
    free(theta);
    free(pV);
    free(sd);
    free(mask);
    free(y);
    dcm_problem_free(P);
    return rc;
}
