/* cmd_average.c — `dcm average`: Bayesian model averaging of parameters
 * over models (one subject) and over a group of subjects. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"
#include "io/io_batchdir.h"
#include "io/io_pnames.h"
#include "io/io_result.h"

static const char *const usage[] = {"RESULT1.json RESULT2.json ... [options]",
                                    "--batch OUTDIR [--models M1,M2,...] [options]", NULL};

static const char *description =
    "Bayesian model averaging (BMA) of parameters. For one subject, each model\n"
    "k is weighted by its posterior probability exp(F_k) / sum exp(F); the\n"
    "average posterior has mean sum_k w_k Ep_k and variance sum_k w_k (Vp_k +\n"
    "Ep_k^2) - mean^2 (a parameter a model switches off counts as its prior\n"
    "mean, 0 for connections). With --occam D only models within D of the best\n"
    "log-evidence are averaged (Occam's window).\n"
    "For a group (--batch, the layout dcm batch writes), every subject's BMA is\n"
    "computed with that subject's evidences, and the group average is the mean\n"
    "of the subject averages, with its standard error over subjects.\n";

static const char *footer =
    "examples:\n"
    "  dcm average fwd.json bwd.json\n"
    "  dcm average --batch out --occam 3 --json\n";
typedef struct {
    int np;
    double *mean, *var;
    double *weights; /* per model */
} bma;

/* R[i] (i > 0) joins R[0]: the same kind of model fitted to the same data,
 * its parameters put in R[0]'s order by name. Returns 0 or an exit code. */
static int join_first(io_result_summary *R, int i, const char *who)
{
    if (!io_result_same_kind(&R[i], &R[0]))
        return cli_fail("average", DCM_ERR_INPUT,
                        "%s: %s is a %s model but %s is %s: models of different kinds are not averaged",
                        who, R[i].path, io_result_kind(&R[i]), R[0].path, io_result_kind(&R[0]));
    if (io_result_same_data(&R[i], &R[0]) == 0)
        return cli_fail("average", DCM_ERR_INPUT,
                        "%s: %s and %s were fitted to different data (their observed BOLD differs): "
                        "a model average weighs models of the same data", who, R[i].path, R[0].path);
    dcm_error err = {0, ""};
    if (io_result_align(&R[i], &R[0], &err))
        return cli_report("average", &err);
    return DCM_OK;
}

/* not-finite message naming the parameter (the library gives its index) */
static int not_finite(const io_result_summary *R0, int p, const char *fmt_who, const char *who,
                      const char *why)
{
    io_pname_space S = io_result_space(R0);
    char *name = io_pname_name(&S, p);
    int rc = cli_fail("average", DCM_ERR_NUMERIC, "%s: the %s of %s is not finite (%s)", who,
                      fmt_who, name ? name : "a parameter", why);
    free(name);
    return rc;
}

/* BMA over k loaded results (aligned to R[0]); returns 0 or an exit code. */
static int average(io_result_summary *R, int k, double occam, bma *out, const char *who)
{
    const double **Ep = malloc(sizeof *Ep * k), **Cp = malloc(sizeof *Cp * k);
    double *F = malloc(sizeof(double) * k);
    if (!Ep || !Cp || !F) {
        free(Ep);
        free(Cp);
        free(F);
        return cli_fail("average", DCM_ERR_SYSTEM, "out of memory");
    }
    for (int i = 0; i < k; i++) {
        F[i] = R[i].F;
        Ep[i] = R[i].Ep;
        Cp[i] = R[i].Cp;
    }
    dcm_error err = {0, ""};
    int bad_model, bad_param;
    int rc = dcm_bma(k, R[0].np, F, Ep, Cp, occam, out->weights, out->mean, out->var, &bad_model,
                     &bad_param, &err);
    free(Ep);
    free(Cp);
    free(F);
    if (rc && bad_model >= 0)
        return cli_fail("average", DCM_ERR_NUMERIC, "%s: %s has a non-finite free energy", who,
                        R[bad_model].path);
    if (rc && bad_param >= 0)
        return not_finite(&R[0], bad_param, "average", who,
                          "its posterior means or variances are too large to combine");
    return rc ? cli_report("average", &err) : DCM_OK;
}

/* parameters free in at least one of the models, ORed into mask */
static void mark_free(const io_result_summary *R, int k, unsigned char *mask)
{
    for (int i = 0; i < k; i++)
        for (int p = 0; p < R[i].np; p++)
            if (R[i].pV[p] > 0)
                mask[p] = 1;
}

/* the averaged parameters, by name: only those some model estimates */
static int report(const io_pname_space *S, int np, const unsigned char *free_mask, const double *mean,
                  const double *var, const char *sd_key, const char *sd_title, int as_json, json_t **out)
{
    json_t *arr = json_array();
    if (!as_json)
        printf("%-28s %10s %10s\n", "parameter", sd_key[0] == 's' && sd_key[1] == 'd' ? "BMA mean" : "mean",
               sd_title);
    for (int p = 0; p < np; p++) {
        if (!free_mask[p])
            continue;
        char *name = io_pname_name(S, p);
        if (!name) {
            json_decref(arr);
            return cli_fail("average", DCM_ERR_SYSTEM, "out of memory");
        }
        json_t *e = json_object();
        json_object_set_new(e, "name", json_string(name));
        json_object_set_new(e, "mean", json_real(mean[p]));
        json_object_set_new(e, sd_key, json_real(sqrt(var[p])));
        json_array_append_new(arr, e);
        if (!as_json)
            printf("%-28s %10.4f %10.4f\n", name, mean[p], sqrt(var[p]));
        free(name);
    }
    *out = arr;
    return DCM_OK;
}

/* Files of one subject: each model's weight, and the average. */
static int average_files(const char **files, int k, double occam, int as_json, json_t *o)
{
    int rc = DCM_OK;
    io_result_summary *R = NULL;
    int nR = 0;
    bma avg = {0, NULL, NULL, NULL};
    unsigned char *free_mask = NULL;
    dcm_error err = {0, ""};
    R = calloc((size_t)k, sizeof *R);
    avg.weights = malloc(sizeof(double) * k);
    if (!R || !avg.weights) {
        rc = cli_fail("average", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < k; i++) {
        nR = i + 1; /* R[i] is freed at the end, loaded or not */
        if (io_result_load(files[i], &R[i], &err)) {
            rc = cli_report("average", &err);
            goto done;
        }
        if (i && (rc = join_first(R, i, "average")))
            goto done;
    }
    const int np = R[0].np;
    avg.mean = malloc(sizeof(double) * np);
    avg.var = malloc(sizeof(double) * np);
    free_mask = calloc((size_t)np, 1);
    if (!avg.mean || !avg.var || !free_mask) {
        rc = cli_fail("average", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    if ((rc = average(R, k, occam, &avg, "average")))
        goto done;
    mark_free(R, k, free_mask);
    io_pname_space S = io_result_space(&R[0]);
    json_t *w = json_array();
    for (int i = 0; i < k; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "file", json_string(files[i]));
        json_object_set_new(e, "free_energy", json_real(R[i].F));
        json_object_set_new(e, "weight", json_real(avg.weights[i]));
        json_array_append_new(w, e);
    }
    json_object_set_new(o, "models", w);
    if (!as_json) {
        printf("%-32s %12s %10s\n", "model", "F", "weight");
        for (int i = 0; i < k; i++)
            printf("%-32s %12.4f %10.4f\n", files[i], R[i].F, avg.weights[i]);
        printf("\n");
    }
    json_t *params = NULL;
    if ((rc = report(&S, np, free_mask, avg.mean, avg.var, "sd", "sd", as_json, &params)))
        goto done;
    json_object_set_new(o, "parameters", params);
done:
    for (int i = 0; i < nR; i++)
        io_result_summary_free(&R[i]);
    free(R);
    free(free_mask);
    free(avg.mean);
    free(avg.var);
    free(avg.weights);
    return rc;
}

/* The models of --models LIST (all when NULL) as indices of B into use
 * (B->nmod entries); *nuse their number. Returns 0 or an exit code. */
static int choose_models(const io_batchdir *B, const char *batch, const char *models, int *use,
                         int *nuse)
{
    *nuse = 0;
    if (!models) {
        for (int m = 0; m < B->nmod; m++)
            use[(*nuse)++] = m;
        return DCM_OK;
    }
    char *list = strdup(models), *save = NULL;
    if (!list)
        return cli_fail("average", DCM_ERR_SYSTEM, "out of memory");
    int rc = DCM_OK;
    for (char *t = strtok_r(list, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
        int m = io_batchdir_model(B, t);
        if (m < 0) {
            char *known = io_batchdir_model_list(B);
            rc = cli_fail("average", DCM_ERR_INPUT, "%s: no results for model '%s'; the models "
                          "there are: %s", batch, t, known ? known : "(out of memory)");
            free(known);
            break;
        }
        int dup = 0;
        for (int u = 0; u < *nuse; u++)
            dup |= use[u] == m;
        if (dup)
            rc = cli_fail("average", DCM_ERR_USAGE, "--models names '%s' twice", t);
        else
            use[(*nuse)++] = m;
    }
    free(list);
    return rc;
}

/* A batch: every subject's average with its own evidences, then the group
 * mean of the subjects' averages with its standard error. */
static int average_batch(const char *batch, const char *models, double occam, int as_json,
                         json_t *o)
{
    int rc = DCM_OK;
    io_batchdir B;
    memset(&B, 0, sizeof B);
    io_result_summary *R = NULL;
    int nR = 0;
    bma avg = {0, NULL, NULL, NULL};
    double *gX = NULL; /* subjects' BMA means, one row each */
    unsigned char *free_mask = NULL;
    int *use = NULL;
    io_result_summary first;
    memset(&first, 0, sizeof first);
    dcm_error err = {0, ""};
    if ((rc = io_batchdir_scan(batch, &B, &err))) {
        rc = cli_report("average", &err);
        goto done;
    }
    /* which models */
    int nuse = 0;
    if (!(use = malloc(sizeof(int) * (B.nmod ? B.nmod : 1)))) {
        rc = cli_fail("average", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    if ((rc = choose_models(&B, batch, models, use, &nuse)))
        goto done;
    if (nuse < 1) {
        rc = cli_fail("average", DCM_ERR_INPUT, "%s: no model results found", batch);
        goto done;
    }
    R = calloc((size_t)nuse, sizeof *R);
    avg.weights = malloc(sizeof(double) * nuse);
    if (!R || !avg.weights) {
        rc = cli_fail("average", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    json_t *subs = json_array();
    json_object_set_new(o, "subjects", subs);
    int nsub_used = 0, np = -1;
    for (int s = 0; s < B.nsub; s++) {
        int complete = 1;
        for (int u = 0; u < nuse; u++)
            complete &= B.has[s * B.nmod + use[u]];
        if (!complete) {
            fprintf(stderr, "dcm average: %s lacks some of the models; left out\n", B.subjects[s]);
            continue;
        }
        for (int u = 0; u < nuse; u++) {
            nR = u + 1;
            char *p = io_batchdir_path(&B, s, use[u]);
            int lr = p ? io_result_load(p, &R[u], &err)
                       : dcm_error_set(&err, DCM_ERR_SYSTEM, "out of memory");
            free(p);
            if (lr) {
                rc = cli_report("average", &err);
                goto done;
            }
            if (u && (rc = join_first(R, u, B.subjects[s])))
                goto done;
        }
        if (np < 0) {
            np = R[0].np;
            avg.mean = malloc(sizeof(double) * np);
            avg.var = malloc(sizeof(double) * np);
            gX = malloc(sizeof(double) * (size_t)B.nsub * np);
            free_mask = calloc((size_t)np, 1);
            if (!avg.mean || !avg.var || !gX || !free_mask) {
                rc = cli_fail("average", DCM_ERR_SYSTEM, "out of memory");
                goto done;
            }
            /* the first subject's first model gives the names and order */
            if (io_result_load(R[0].path, &first, &err)) {
                rc = cli_report("average", &err);
                goto done;
            }
        } else {
            /* every subject's models meet the first subject's by name */
            if (!io_result_same_kind(&R[0], &first)) {
                rc = cli_fail("average", DCM_ERR_INPUT, "%s is a %s model but %s is %s: models of "
                              "different kinds are not averaged", R[0].path, io_result_kind(&R[0]),
                              first.path, io_result_kind(&first));
                goto done;
            }
            for (int u = 0; u < nuse; u++)
                if (io_result_align(&R[u], &first, &err)) {
                    rc = cli_report("average", &err);
                    goto done;
                }
        }
        if ((rc = average(R, nuse, occam, &avg, B.subjects[s])))
            goto done;
        mark_free(R, nuse, free_mask);
        json_t *e = json_object();
        json_object_set_new(e, "subject", json_string(B.subjects[s]));
        json_t *w = json_object();
        for (int u = 0; u < nuse; u++)
            json_object_set_new(w, B.models[use[u]], json_real(avg.weights[u]));
        json_object_set_new(e, "weights", w);
        json_t *mv = json_array();
        for (int p = 0; p < np; p++)
            json_array_append_new(mv, json_real(avg.mean[p]));
        memcpy(gX + (size_t)nsub_used * np, avg.mean, sizeof(double) * np);
        json_object_set_new(e, "bma_mean", mv);
        json_array_append_new(subs, e);
        nsub_used++;
        for (int u = 0; u < nuse; u++)
            io_result_summary_free(&R[u]);
        nR = 0;
    }
    if (nsub_used < 1) {
        rc = cli_fail("average", DCM_ERR_INPUT, "%s: no subject has all the models", batch);
        goto done;
    }
    int bad_param;
    if (dcm_group_mean(nsub_used, np, gX, avg.mean, avg.var, &bad_param, &err)) {
        rc = bad_param >= 0 ? not_finite(&first, bad_param, "group average", batch,
                                         "the subjects' averages are too large to combine")
                            : cli_report("average", &err);
        goto done;
    }
    /* which parameter each bma_mean entry is */
    io_pname_space S = io_result_space(&first);
    json_t *order = json_array();
    for (int p = 0; p < np; p++) {
        char *name = io_pname_name(&S, p);
        if (!name) {
            json_decref(order);
            rc = cli_fail("average", DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
        json_array_append_new(order, json_string(name));
        free(name);
    }
    json_object_set_new(o, "bma_mean_order", order);
    json_object_set_new(o, "n_subjects", json_integer(nsub_used));
    if (!as_json)
        printf("group BMA over %d subjects\n", nsub_used);
    json_t *group = NULL;
    if ((rc = report(&S, np, free_mask, avg.mean, avg.var, "standard_error", "s.e.", as_json, &group)))
        goto done;
    json_object_set_new(o, "group", group);
done:
    for (int i = 0; i < nR; i++)
        io_result_summary_free(&R[i]);
    io_result_summary_free(&first);
    free(R);
    free(use);
    free(free_mask);
    free(avg.mean);
    free(avg.var);
    free(avg.weights);
    free(gX);
    io_batchdir_free(&B);
    return rc;
}

int cmd_average(int argc, char **argv)
{
    const char *batch = NULL, *models = NULL, *out_path = NULL;
    double occam = 0.0;
    int as_json = 0, k = 0;
    const char **files = calloc((size_t)argc, sizeof *files);
    int rc = DCM_OK;
    json_t *o = NULL;
    if (!files)
        return cli_fail("average", DCM_ERR_SYSTEM, "out of memory");
    const cli_opt options[] = {
        CLI_STRING(0, "batch", &batch, "OUTDIR", "average over OUTDIR/<subject>/<model>.json"),
        CLI_STRING(0, "models", &models, "LIST", "which models (default: all found)"),
        CLI_DOUBLE(0, "occam", &occam, "D", "Occam's window in log-evidence units (e.g. 3)", .min = 0.0,
                   .max = INFINITY, .bounds = CLI_BOUNDS_OPEN, .invalid = "--occam needs a positive number"),
        CLI_FLAG(0, "json", &as_json, "print JSON instead of a table"),
        CLI_STRING('o', "output", &out_path, "FILE", "also write the JSON to FILE (atomically)"),
        CLI_END};
    const cli_command cmd = {"average", usage, description, footer, options, 0};
    rc = cli_options_parse(&cmd, argc, argv, &k);
    if (rc) {
        rc = rc == CLI_OPTIONS_HELP ? DCM_OK : rc;
        goto done;
    }
    for (int i = 0; i < k; i++)
        files[i] = argv[1 + i];
    if ((batch && k) || (!batch && k < 2)) {
        rc = cli_fail("average", DCM_ERR_USAGE, "give two or more result files, or --batch OUTDIR");
        goto done;
    }
    {
        cli_plan plan;
        cli_plan_init(&plan, "average");
        if (batch)
            cli_plan_batchdir(&plan, batch);
        for (int i = 0; i < k; i++)
            cli_plan_input(&plan, files[i], "the result file");
        cli_plan_output(&plan, out_path, "-o");
        rc = cli_plan_check(&plan);
        cli_plan_free(&plan);
        if (rc)
            goto done;
    }
    o = json_object();
    rc = batch ? average_batch(batch, models, occam, as_json, o)
               : average_files(files, k, occam, as_json, o);
    if (rc)
        goto done;
    rc = cli_emit_json("average", o, as_json, out_path);
done:
    json_decref(o);
    free(files);
    return rc;
}
