/* cmd_simulate.c — `dcm simulate SPEC.json --params P.json --snr S --seed N
 * -o timeseries.tsv`: BOLD data from known parameters. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "dcm/dcm_cli.h"
#include "io/io_result.h"
#include "io/io_spec.h"
#include "io/io_tsv.h"

static const char *help =
    "usage: dcm simulate SPEC.json [--params P.json] [--snr S] [--seed N] -o OUT.tsv\n"
    "\n"
    "Generate regional BOLD time series from the model in SPEC.json (its TR,\n"
    "inputs, connectivity and delays; the spec's time series need not exist:\n"
    "give \"scans\" instead) with parameters from P.json: a result file (its\n"
    "posterior mean) or a JSON object with any of the blocks A, B, C, D,\n"
    "transit, decay, epsilon laid out as in a result's posterior_mean.\n"
    "Parameters not given take their prior mean. Gaussian noise is added to\n"
    "each region with standard deviation sd(signal)/S. The output has the\n"
    "spec's region names as header and is written atomically.\n"
    "\n"
    "options:\n"
    "  --params FILE   parameters (default: the prior mean, a silent network)\n"
    "  --snr S         signal-to-noise ratio per region (default: no noise)\n"
    "  --seed N        random seed (default 1)\n"
    "  -o FILE         output TSV (required)\n"
    "  -h, --help      this help\n"
    "\n"
    "example:\n"
    "  dcm simulate fwd.json --params truth.json --snr 2 --seed 7 -o timeseries.tsv\n";

int cmd_simulate(int argc, char **argv)
{
    const char *spec = NULL, *params = NULL, *output = NULL;
    double snr = INFINITY;
    long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(help, stdout);
            return DCM_OK;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (++i >= argc)
                return cli_fail("simulate", DCM_ERR_USAGE, "%s needs a file name", a);
            output = argv[i];
        } else if (!strcmp(a, "--params")) {
            if (++i >= argc)
                return cli_fail("simulate", DCM_ERR_USAGE, "--params needs a file name");
            params = argv[i];
        } else if (!strcmp(a, "--snr")) {
            if (++i >= argc || cli_parse_double(argv[i], &snr) || snr <= 0)
                return cli_fail("simulate", DCM_ERR_USAGE, "--snr needs a positive number");
        } else if (!strcmp(a, "--seed")) {
            if (++i >= argc || cli_parse_int(argv[i], 0, 4294967295L, &seed))
                return cli_fail("simulate", DCM_ERR_USAGE, "--seed needs a whole number from 0 to 4294967295");
        } else if (a[0] == '-' && a[1]) {
            return cli_fail("simulate", DCM_ERR_USAGE, "unknown option '%s' (see dcm simulate --help)", a);
        } else if (!spec) {
            spec = a;
        } else {
            return cli_fail("simulate", DCM_ERR_USAGE, "one SPEC.json at a time ('%s' is extra)", a);
        }
    }
    if (!spec)
        return cli_fail("simulate", DCM_ERR_USAGE, "no SPEC.json given (see dcm simulate --help)");
    if (!output)
        return cli_fail("simulate", DCM_ERR_USAGE, "no output file: add -o OUT.tsv");

    cli_plan plan;
    cli_plan_init(&plan, "simulate");
    cli_plan_spec_design(&plan, spec);
    if (params)
        cli_plan_input(&plan, params, "--params");
    cli_plan_output(&plan, output, "-o");
    int prc = cli_plan_check(&plan);
    cli_plan_free(&plan);
    if (prc)
        return prc;

    dcm_error err = {0, ""};
    dcm_problem *P = NULL;
    if (io_spec_load_ex(spec, IO_SPEC_DESIGN_ONLY, &P, &err))
        return cli_report("simulate", &err);
    const int np = P->M->L.np, n = P->n, v = P->v;
    double *theta = malloc(sizeof(double) * np), *pV = malloc(sizeof(double) * np);
    double *y = malloc(sizeof(double) * (size_t)v * n);
    int rc = DCM_OK;
    gsl_rng *rng = NULL;
    if (!theta || !pV || !y) {
        rc = cli_fail("simulate", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    model_dcm_priors(P->M, theta, pV);
    if (params && io_params_load(params, P, theta, &err)) {
        rc = cli_report("simulate", &err);
        goto done;
    }
    if (dcm_predict(P, theta, y, &err)) {
        rc = cli_report("simulate", &err);
        goto done;
    }
    if (isfinite(snr)) {
        rng = gsl_rng_alloc(gsl_rng_mt19937);
        if (!rng) {
            rc = cli_fail("simulate", DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
        gsl_rng_set(rng, (unsigned long)seed);
        for (int j = 0; j < n; j++) {
            double mu = 0.0, ss = 0.0;
            for (int s = 0; s < v; s++)
                mu += y[s + j * v];
            mu /= v;
            for (int s = 0; s < v; s++)
                ss += (y[s + j * v] - mu) * (y[s + j * v] - mu);
            double sd = sqrt(ss / (v > 1 ? v - 1 : 1));
            if (sd == 0.0) {
                rc = cli_fail("simulate", DCM_ERR_INPUT,
                              "region %s has no signal with these parameters, so an SNR "
                              "cannot be set: give it a driving input or a connection",
                              P->region_names[j]);
                goto done;
            }
            for (int s = 0; s < v; s++)
                y[s + j * v] += gsl_ran_gaussian(rng, sd / snr);
        }
    }
    /* SPM (and dcm estimate) rescale data whose range exceeds 4 (percent
       signal change); estimates are then in rescaled units */
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
    if (hi - lo > 4.0)
        fprintf(stderr, "dcm simulate: note: the simulated BOLD spans %.2f (> 4 %% signal change); "
                "estimation rescales such data by %.3f, so estimated A, B, C, D will not equal "
                "these parameters\n", hi - lo, 4.0 / (hi - lo));
    if (io_tsv_write(output, v, n, y, (const char *const *)P->region_names, &err)) {
        rc = cli_report("simulate", &err);
        goto done;
    }
done:
    if (rng)
        gsl_rng_free(rng);
    free(theta);
    free(pV);
    free(y);
    dcm_problem_free(P);
    return rc;
}
