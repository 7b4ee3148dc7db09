/* cmd_simulate.c — `dcm simulate SPEC.json --params P.json [--vary NAME=SD]
 * --snr S --seed N -o timeseries.tsv`: BOLD data from known parameters. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"
#include "io/io_atomic.h"
#include "dcm/cli/cmd_simulate_rdcm.h"
#include "io/io_params.h"
#include "io/io_pnames.h"
#include "io/io_result.h"
#include "io/io_spec.h"
#include "io/io_tsv.h"
#include "models/model_csd.h"

/* The --vary stream's seed is the --seed XOR this (32-bit golden ratio), so
 * the parameter draws never repeat the numbers of the same seed's noise. */
#define SIMULATE_VARY_SEED_MIX 0x9E3779B9UL

static const char *const usage[] = {
    "SPEC.json [--params P.json] [--vary NAME=SD ...] [--snr S] [--seed N]\n"
    "                    [--params-out FILE] [--spec-out FILE] -o OUT.tsv",
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
    "has the spec's region names as header and is written atomically.\n"
    "\n"
    "A spectral spec (\"analysis\": \"csd\") simulates resting state as SPM's\n"
    "DEM_demo_connectivity_fMRI: AR(1) fluctuations (coefficient 1/2, SD 1/4)\n"
    "drive every region through the task model's equations, after a burn-in of\n"
    "128 s; AR(1) observation noise (1/2, SD 1/8, or sd(signal)/S with --snr)\n"
    "is added. Only A, transit, decay and epsilon are simulated; without\n"
    "--params every connection the spec's \"a\" switches on is 0.3 Hz from an\n"
    "earlier-listed region to a later one and -0.2 Hz back. --spec-out FILE\n"
    "writes a spectral spec that estimates the output.\n";

static const char *footer =
    "Random numbers: GSL's MT19937 in two streams. The noise: seeded with N,\n"
    "region by region, scan by scan. --vary: seeded with N XOR 0x9E3779B9, one\n"
    "normal draw per varied parameter with SD > 0 in the parameters' flat order\n"
    "(A, B, C, D, transit, decay, epsilon; matrices column by column). So the\n"
    "noise does not depend on --vary, and --params-out FILE given back as\n"
    "--params with the same seed reproduces the data.\n"
    "\n"
    "rDCM specs (\"method\": \"rdcm\" or \"sparse_rdcm\"): TAPAS's generator (Euler\n"
    "neuronal states at TR/16, the fixed HRF, noise SD std(signal)/S per region,\n"
    "GSL MT19937 seeded with N); --params holds \"A\" (Hz) and \"C\" (TAPAS units)\n"
    "as lists of rows, or is an rDCM result JSON (its \"posterior_mean\"); the spec\n"
    "needs \"scans\" (or its time series). Resting-state rDCM (no inputs) has\n"
    "nothing to drive the network and is refused.\n"
    "\n"
    "examples:\n"
    "  dcm simulate fwd.json --params truth.json --snr 2 --seed 7 -o timeseries.tsv\n"
    "  dcm simulate fwd.json --params truth.json --vary 'A:*=0.05' --vary 'B:*=0.1' \\\n"
    "      --snr 3 --seed 12 --params-out sub-12_truth.json -o sub-12.tsv\n"
    "  dcm simulate rest.json --seed 3 --params-out truth.json --spec-out fit.json -o rest.tsv\n"
    "\n"
    "Spectral specs: one MT19937 stream seeded with N draws the fluctuations\n"
    "(region by region, scan by scan, burn-in included), then the noise.\n";

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

/* One --vary NAME=SD: set sd[i] for the parameters NAME matches that the
 * simulation uses (usable[i]: switched on, and for spectral specs one of
 * A, transit, decay, epsilon). */
static int apply_vary(const dcm_problem *P, const char *arg, const unsigned char *usable, int np,
                      double *sd, unsigned char *mask)
{
    const char *eq = strrchr(arg, '=');
    double s;
    if (!eq || eq == arg || cli_parse_double(eq + 1, &s) || s < 0)
        return cli_fail("simulate", DCM_ERR_USAGE,
                        "--vary '%s': write NAME=SD with SD a number >= 0 (e.g. --vary 'B:*=0.1')", arg);
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
        on += mask[i] && usable[i];
        off += mask[i] && !usable[i];
    }
    if (!on || (off && !strchr(name, '*'))) {
        rc = P->analysis == DCM_ANALYSIS_CSD
                 ? cli_fail("simulate", DCM_ERR_INPUT,
                            "--vary '%s': %s not simulated: a resting-state simulation uses A (the "
                            "connections the spec's \"a\" switches on), transit, decay and epsilon; "
                            "a, b, c and C describe the fitted spectra, not the simulated "
                            "fluctuations and noise",
                            name, strchr(name, '*') ? "every parameter this matches is" : "this parameter is")
                 : cli_fail("simulate", DCM_ERR_INPUT,
                            "--vary '%s': %s the spec switches off; it cannot vary (switch it on in the "
                            "spec, or name a parameter that is on)",
                            name, strchr(name, '*') ? "every parameter this matches is one" : "this is a parameter");
        goto done;
    }
    for (int i = 0; i < np; i++)
        if (mask[i] && usable[i])
            sd[i] = s;
done:
    free(name);
    return rc;
}

/* ---- resting state (spectral specs) ---- */

/* Which parameters a simulation uses: switched on (prior variance > 0)
 * and, for a spectral spec, in A, transit, decay or epsilon (C is I by
 * construction; a, b, c describe the fitted spectra). */
static void usable_params(const dcm_problem *P, const double *pV, int np, unsigned char *usable)
{
    model_layout T;
    dcm_problem_table(P, &T);
    for (int i = 0; i < np; i++) {
        int b = model_layout_locate(&T, i, NULL, NULL, NULL);
        usable[i] = pV[i] > 0 &&
                    (P->analysis != DCM_ANALYSIS_CSD ||
                     b == MODEL_BLOCK_A || b == MODEL_BLOCK_TRANSIT || b == MODEL_BLOCK_DECAY ||
                     b == MODEL_BLOCK_EPSILON);
    }
}

/* Without --params: every switched-on connection 0.3 Hz forward (from an
 * earlier-listed region to a later one) and -0.2 Hz backward, the two
 * values of SPM's DEM_demo_induced_fMRI chain. */
static void default_network(const dcm_problem *P, const double *pV, double *theta)
{
    const int n = P->n;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++)
            if (i != j && pV[i + j * n] > 0)
                theta[i + j * n] = i > j ? 0.3 : -0.2;
}

/* The spectral C (the dummy input's weights) is fixed at 0: a value on it
 * is refused with the reason, before io_params_check_off's generic one. */
static int check_csd_c(const char *params, const dcm_problem *P, const double *theta)
{
    model_csd_layout L;
    model_csd_layout_init(&L, P->n);
    for (int i = 0; i < P->n; i++)
        if (theta[L.off_C + i] != 0.0)
            return cli_fail("simulate", DCM_ERR_INPUT,
                            "%s: C:%s is %g, but a spectral DCM has no C to set: the simulated "
                            "fluctuations enter every region with weight 1 (SPM's C = I); remove "
                            "the C values",
                            params, P->region_names[i], theta[L.off_C + i]);
    return DCM_OK;
}

/* The path of `target` as a spec written at `spec` should name it:
 * relative (its base name) when both are in the same folder as written,
 * else absolute. NULL when out of memory or the folder cannot be resolved. */
static char *path_from_spec(const char *spec, const char *target)
{
    const char *ss = strrchr(spec, '/'), *ts = strrchr(target, '/');
    size_t ls = ss ? (size_t)(ss - spec) : 0, lt = ts ? (size_t)(ts - target) : 0;
    if (ls == lt && strncmp(spec, target, ls) == 0)
        return strdup(ts ? ts + 1 : target);
    if (target[0] == '/')
        return strdup(target);
    char *dir = ts ? strndup(target, lt ? lt : 1) : strdup(".");
    char *real = dir ? realpath(dir, NULL) : NULL;
    char *out = NULL;
    const char *base = ts ? ts + 1 : target;
    if (real && (out = malloc(strlen(real) + strlen(base) + 2)))
        sprintf(out, "%s/%s", real, base);
    free(dir);
    free(real);
    return out;
}

/* --spec-out: the input spec with "timeseries" naming the output, "scans"
 * its length and no "confounds" (the simulated series have none), written
 * into *held (not yet in place). */
static int write_spec_out(const char *spec, const char *spec_out, const char *output, int scans,
                          io_atomic *held)
{
    json_error_t je;
    json_t *root = json_load_file(spec, JSON_REJECT_DUPLICATES, &je);
    char *ts = path_from_spec(spec_out, output);
    dcm_error err = {0, ""};
    int rc = DCM_OK;
    if (!root || !ts) {
        rc = cli_fail("simulate", DCM_ERR_SYSTEM, "cannot build the --spec-out spec from %s%s", spec,
                      root ? " (out of memory, or the output's folder cannot be resolved)" : "");
        goto done;
    }
    json_object_del(root, "confounds");
    if (json_object_set_new(root, "timeseries", json_string(ts)) ||
        json_object_set_new(root, "scans", json_integer(scans))) {
        rc = cli_fail("simulate", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    if ((rc = io_atomic_open(held, spec_out, &err))) {
        rc = cli_report("simulate", &err);
        goto done;
    }
    if (json_dumpf(root, held->fp, JSON_INDENT(2)) || fputc('\n', held->fp) == EOF) {
        io_atomic_abort(held);
        rc = cli_fail("simulate", DCM_ERR_SYSTEM, "cannot write %s", spec_out);
    }
done:
    json_decref(root);
    free(ts);
    return rc;
}

/* Resting-state data for a spectral spec (dcm_simulate_csd), then
 * the outputs: --params-out and --spec-out held until the series is in
 * place, so either all appear or none. */
static int simulate_csd(const dcm_problem *P, const char *spec, const double *theta,
                        const unsigned char *usable, double snr, long seed, const char *params,
                        const char *params_out, const char *spec_out, const char *output, double *y)
{
    dcm_error err = {0, ""};
    if (dcm_simulate_csd(P, theta, (unsigned long)seed, snr, y, &err))
        return cli_report("simulate", &err);
    io_atomic held[2];
    memset(held, 0, sizeof held);
    int nheld = 0, rc;
    if (params_out) {
        if ((rc = io_params_write_names(params_out, P, theta, usable, &held[nheld], &err)))
            return cli_report("simulate", &err);
        nheld++;
    }
    if (spec_out) {
        if ((rc = write_spec_out(spec, spec_out, output, P->v, &held[nheld]))) {
            io_atomic_abort(&held[0]);
            return rc;
        }
        nheld++;
    }
    if ((rc = io_tsv_write(output, P->v, P->n, y, (const char *const *)P->region_names, &err))) {
        for (int k = 0; k < nheld; k++)
            io_atomic_abort(&held[k]);
        return cli_report("simulate", &err);
    }
    if (nheld && (rc = io_atomic_commit_all(held, nheld, &err)))
        return cli_report("simulate", &err);
    /* a result file as --params brings the fitted spectra along: say that
       they did not shape these data */
    model_csd_layout L;
    model_csd_layout_init(&L, P->n);
    int spectral = 0;
    for (int i = L.off_a; i < L.np; i++)
        spectral |= theta[i] != 0.0;
    if (params && spectral)
        fprintf(stderr, "dcm simulate: note: the values of a, b and c in %s (the fitted model's "
                "fluctuation and noise spectra) were not used: the simulated fluctuations and noise "
                "are AR(1) processes (MANUAL 16.4)%s\n", params,
                params_out ? "; they are not in the --params-out file" : "");
    return DCM_OK;
}

int cmd_simulate(int argc, char **argv)
{
    const char *spec = NULL, *params = NULL, *output = NULL, *params_out = NULL, *spec_out = NULL;
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
        CLI_STRING(0, "spec-out", &spec_out, "FILE",
                   "spectral specs: also write a spec that estimates the output (the input spec with "
                   "\"timeseries\" naming it, \"scans\" its length, no \"confounds\")",
                   .missing = "--spec-out needs a file name"),
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
        if (spec_out)
            cli_plan_output(&plan, spec_out, "--spec-out");
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
    /* the design's warnings (events past the last scan, onsets that look
       like scans, ...) hold for the simulated data as for a fit */
    for (int i = 0; i < P->warnings.count; i++)
        fprintf(stderr, "dcm simulate: warning: %s\n", P->warnings.items[i]);
    /* regression DCM: TAPAS's generator (cmd_simulate_rdcm.c) */
    if (P->analysis == DCM_ANALYSIS_RDCM) {
        free(vary);
        rc = nvary || params_out || spec_out
                 ? cli_fail("simulate", DCM_ERR_USAGE, "--vary, --params-out and --spec-out are "
                            "not available for rDCM specs")
                 : simulate_rdcm(P, params, snr, (unsigned long)seed, output);
        dcm_problem_free(P);
        return rc;
    }
    const int csd = P->analysis == DCM_ANALYSIS_CSD;
    if (spec_out && !csd) {
        dcm_problem_free(P);
        free(vary);
        return cli_fail("simulate", DCM_ERR_USAGE,
                        "--spec-out is for spectral specs (\"analysis\": \"csd\"); a task spec "
                        "estimates the output when its \"timeseries\" names it");
    }
    const model_dcm_layout *L = &P->M->L;
    model_layout T;
    dcm_problem_table(P, &T);
    const int np = T.np, n = P->n, v = P->v;
    double *theta = malloc(sizeof(double) * np), *pV = malloc(sizeof(double) * np);
    double *sd = calloc((size_t)np, sizeof(double));
    unsigned char *mask = malloc((size_t)np), *usable = malloc((size_t)np);
    double *y = malloc(sizeof(double) * (size_t)v * n);
    /* two streams: the noise's is the one `simulate` always used, so data
       without --vary are unchanged, and adding --vary (or reusing a
       --params-out file) leaves the noise as it was */
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937), *rng_vary = gsl_rng_alloc(gsl_rng_mt19937);
    if (!theta || !pV || !sd || !mask || !usable || !y || !rng || !rng_vary) {
        rc = cli_fail("simulate", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    gsl_rng_set(rng, (unsigned long)seed);
    gsl_rng_set(rng_vary, (unsigned long)seed ^ SIMULATE_VARY_SEED_MIX);
    if (csd)
        model_csd_priors(n, P->M->a, theta, pV);
    else
        model_dcm_priors(P->M, theta, pV);
    usable_params(P, pV, np, usable);
    if (csd && !params)
        default_network(P, pV, theta);
    if (params && (rc = io_params_load(params, P, theta, &err))) {
        rc = cli_report("simulate", &err);
        goto done;
    }
    if (params && csd && (rc = check_csd_c(params, P, theta)))
        goto done;
    if (params && (rc = io_params_check_off(params, P, theta, &err))) {
        rc = cli_report("simulate", &err);
        goto done;
    }
    for (int k = 0; k < nvary; k++)
        if ((rc = apply_vary(P, vary[k], usable, np, sd, mask)))
            goto done;
    /* in flat order; SD 0 draws nothing (the same as no --vary) */
    for (int i = 0; i < np; i++)
        if (sd[i] > 0)
            theta[i] += gsl_ran_gaussian(rng_vary, sd[i]);
    if (csd) {
        rc = simulate_csd(P, spec, theta, usable, snr, seed, params, params_out, spec_out, output, y);
        goto done;
    }
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
    if (params_out && (rc = io_params_write_names(params_out, P, theta, NULL, &held, &err))) {
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
    free(usable);
    free(y);
    dcm_problem_free(P);
    return rc;
}
