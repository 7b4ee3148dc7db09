/* cmd_average.c — `dcm average`: Bayesian model averaging of parameters
 * over models (one subject) and over a group of subjects. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/dcm_cli.h"
#include "io/io_batchdir.h"
#include "io/io_pnames.h"
#include "io/io_result.h"

static const char *help =
    "usage: dcm average RESULT1.json RESULT2.json ... [options]\n"
    "       dcm average --batch OUTDIR [--models M1,M2,...] [options]\n"
    "\n"
    "Bayesian model averaging (BMA) of parameters. For one subject, each model\n"
    "k is weighted by its posterior probability exp(F_k) / sum exp(F); the\n"
    "average posterior has mean sum_k w_k Ep_k and variance sum_k w_k (Vp_k +\n"
    "Ep_k^2) - mean^2 (a parameter a model switches off counts as its prior\n"
    "mean, 0 for connections). With --occam D only models within D of the best\n"
    "log-evidence are averaged (Occam's window).\n"
    "For a group (--batch, the layout dcm batch writes), every subject's BMA is\n"
    "computed with that subject's evidences, and the group average is the mean\n"
    "of the subject averages, with its standard error over subjects.\n"
    "\n"
    "options:\n"
    "  --batch OUTDIR    average over OUTDIR/<subject>/<model>.json\n"
    "  --models LIST     which models (default: all found)\n"
    "  --occam D         Occam's window in log-evidence units (e.g. 3)\n"
    "  --json            print JSON instead of a table\n"
    "  -o FILE           also write the JSON to FILE (atomically)\n"
    "  -h, --help        this help\n"
    "\n"
    "examples:\n"
    "  dcm average fwd.json bwd.json\n"
    "  dcm average --batch out --occam 3 --json\n";

typedef struct {
    int np;
    double *mean, *var;
    double *weights; /* per model */
} bma;

/* BMA over k loaded results; returns 0 or an exit code. */
static int average(io_result_summary *R, int k, double occam, bma *out, const char *who)
{
    const int np = R[0].np;
    for (int i = 1; i < k; i++)
        if (R[i].np != np || R[i].n != R[0].n || R[i].m != R[0].m)
            return cli_fail("average", DCM_ERR_INPUT,
                            "%s: %s and %s have different parameter spaces (regions, inputs or D); "
                            "only models of the same regions and inputs can be averaged",
                            who, R[0].path, R[i].path);
    double Fmax = -INFINITY;
    for (int i = 0; i < k; i++)
        Fmax = fmax(Fmax, R[i].F);
    double z = 0.0;
    for (int i = 0; i < k; i++) {
        out->weights[i] = (occam > 0 && R[i].F < Fmax - occam) ? 0.0 : exp(R[i].F - Fmax);
        z += out->weights[i];
    }
    for (int i = 0; i < k; i++)
        out->weights[i] /= z;
    for (int p = 0; p < np; p++) {
        double m = 0.0, s2 = 0.0;
        for (int i = 0; i < k; i++) {
            double e = R[i].Ep[p], v = fmax(R[i].Cp[p * np + p], 0.0);
            m += out->weights[i] * e;
            s2 += out->weights[i] * (v + e * e);
        }
        out->mean[p] = m;
        out->var[p] = fmax(s2 - m * m, 0.0);
    }
    return DCM_OK;
}

static json_t *named(const io_pname_space *S, const io_result_summary *R0, const double *mean,
                     const double *var, const char *sd_key)
{
    json_t *arr = json_array();
    char name[256];
    for (int p = 0; p < R0->np; p++) {
        io_pname_format(S, p, name, sizeof name);
        json_t *e = json_object();
        json_object_set_new(e, "name", json_string(name));
        json_object_set_new(e, "mean", json_real(mean[p]));
        json_object_set_new(e, sd_key, json_real(sqrt(var[p])));
        json_array_append_new(arr, e);
    }
    return arr;
}

/* parameters free in at least one of the models */
static int any_free(io_result_summary *R, int k, int p)
{
    for (int i = 0; i < k; i++)
        if (R[i].pV[p] > 0)
            return 1;
    return 0;
}

int cmd_average(int argc, char **argv)
{
    const char *batch = NULL, *models = NULL, *out_path = NULL;
    double occam = 0.0;
    int as_json = 0, k = 0;
    const char **files = calloc((size_t)argc, sizeof *files);
    int rc = DCM_OK;
    io_batchdir B;
    memset(&B, 0, sizeof B);
    io_result_summary *R = NULL;
    int nR = 0;
    json_t *o = NULL;
    bma avg = {0, NULL, NULL, NULL};
    double *gsum = NULL, *gsq = NULL;
    if (!files)
        return cli_fail("average", DCM_ERR_SYSTEM, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(help, stdout);
            goto done;
        } else if (!strcmp(a, "--batch") || !strcmp(a, "--models") || (!strcmp(a, "-o") || !strcmp(a, "--output")) ||
                   !strcmp(a, "--occam")) {
            if (++i >= argc) {
                rc = cli_fail("average", DCM_ERR_USAGE, "%s needs a value", a);
                goto done;
            }
            if (!strcmp(a, "--batch"))
                batch = argv[i];
            else if (!strcmp(a, "--models"))
                models = argv[i];
            else if ((!strcmp(a, "-o") || !strcmp(a, "--output")))
                out_path = argv[i];
            else if (cli_parse_double(argv[i], &occam) || occam <= 0) {
                rc = cli_fail("average", DCM_ERR_USAGE, "--occam needs a positive number");
                goto done;
            }
        } else if (!strcmp(a, "--json")) {
            as_json = 1;
        } else if (a[0] == '-' && a[1]) {
            rc = cli_fail("average", DCM_ERR_USAGE, "unknown option '%s' (see dcm average --help)", a);
            goto done;
        } else {
            files[k++] = a;
        }
    }
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
    dcm_error err = {0, ""};
    o = json_object();
    char name[256];
    if (!batch) {
        R = calloc((size_t)k, sizeof *R);
        avg.weights = malloc(sizeof(double) * k);
        if (!R || !avg.weights) {
            rc = cli_fail("average", DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
        for (int i = 0; i < k; i++, nR++)
            if (io_result_load(files[i], &R[i], &err)) {
                rc = cli_report("average", &err);
                goto done;
            }
        avg.mean = malloc(sizeof(double) * R[0].np);
        avg.var = malloc(sizeof(double) * R[0].np);
        if (!avg.mean || !avg.var) {
            rc = cli_fail("average", DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
        if ((rc = average(R, k, occam, &avg, "average")))
            goto done;
        io_pname_space S = {R[0].n, R[0].m, R[0].nd, R[0].regions, R[0].inputs};
        json_t *w = json_array();
        for (int i = 0; i < k; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "file", json_string(files[i]));
            json_object_set_new(e, "free_energy", json_real(R[i].F));
            json_object_set_new(e, "weight", json_real(avg.weights[i]));
            json_array_append_new(w, e);
        }
        json_object_set_new(o, "models", w);
        json_object_set_new(o, "parameters", named(&S, &R[0], avg.mean, avg.var, "sd"));
        if (!as_json) {
            printf("%-32s %12s %10s\n", "model", "F", "weight");
            for (int i = 0; i < k; i++)
                printf("%-32s %12.4f %10.4f\n", files[i], R[i].F, avg.weights[i]);
            printf("\n%-28s %10s %10s\n", "parameter", "BMA mean", "sd");
            for (int p = 0; p < R[0].np; p++)
                if (any_free(R, k, p)) {
                    io_pname_format(&S, p, name, sizeof name);
                    printf("%-28s %10.4f %10.4f\n", name, avg.mean[p], sqrt(avg.var[p]));
                }
        }
    } else {
        if ((rc = io_batchdir_scan(batch, &B, &err))) {
            rc = cli_report("average", &err);
            goto done;
        }
        /* which models */
        int *use = malloc(sizeof(int) * (B.nmod ? B.nmod : 1)), nuse = 0;
        if (!use) {
            rc = cli_fail("average", DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
        if (models) {
            char *list = strdup(models), *save = NULL;
            for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                int m = io_batchdir_model(&B, t);
                if (m < 0) {
                    free(list);
                    free(use);
                    rc = cli_fail("average", DCM_ERR_INPUT, "%s: no results for model '%s'", batch, t);
                    goto done;
                }
                use[nuse++] = m;
            }
            free(list);
        } else {
            for (int m = 0; m < B.nmod; m++)
                use[nuse++] = m;
        }
        if (nuse < 1) {
            free(use);
            rc = cli_fail("average", DCM_ERR_INPUT, "%s: no model results found", batch);
            goto done;
        }
        R = calloc((size_t)nuse, sizeof *R);
        avg.weights = malloc(sizeof(double) * nuse);
        json_t *subs = json_array();
        json_object_set_new(o, "subjects", subs);
        int nsub_used = 0, np = -1;
        io_result_summary first;
        memset(&first, 0, sizeof first);
        for (int s = 0; s < B.nsub; s++) {
            int complete = 1;
            for (int u = 0; u < nuse; u++)
                complete &= B.has[s * B.nmod + use[u]];
            if (!complete) {
                fprintf(stderr, "dcm average: %s lacks some of the models; left out\n", B.subjects[s]);
                continue;
            }
            for (int u = 0; u < nuse; u++, nR++) {
                char *p = io_batchdir_path(&B, s, use[u]);
                int lr = io_result_load(p, &R[u], &err);
                free(p);
                if (lr) {
                    free(use);
                    rc = cli_report("average", &err);
                    goto done;
                }
            }
            if (np < 0) {
                np = R[0].np;
                avg.mean = malloc(sizeof(double) * np);
                avg.var = malloc(sizeof(double) * np);
                gsum = calloc((size_t)np, sizeof(double));
                gsq = calloc((size_t)np, sizeof(double));
                if (!avg.mean || !avg.var || !gsum || !gsq) {
                    free(use);
                    rc = cli_fail("average", DCM_ERR_SYSTEM, "out of memory");
                    goto done;
                }
                /* keep names and which parameters are free for the report */
                if (io_result_load(R[0].path, &first, &err)) {
                    free(use);
                    rc = cli_report("average", &err);
                    goto done;
                }
            } else if (R[0].np != np) {
                free(use);
                io_result_summary_free(&first);
                rc = cli_fail("average", DCM_ERR_INPUT, "%s: subjects have different parameter spaces",
                              batch);
                goto done;
            }
            if ((rc = average(R, nuse, occam, &avg, B.subjects[s]))) {
                free(use);
                io_result_summary_free(&first);
                goto done;
            }
            json_t *e = json_object();
            json_object_set_new(e, "subject", json_string(B.subjects[s]));
            json_t *w = json_object();
            for (int u = 0; u < nuse; u++)
                json_object_set_new(w, B.models[use[u]], json_real(avg.weights[u]));
            json_object_set_new(e, "weights", w);
            json_t *mv = json_array();
            for (int p = 0; p < np; p++) {
                json_array_append_new(mv, json_real(avg.mean[p]));
                gsum[p] += avg.mean[p];
                gsq[p] += avg.mean[p] * avg.mean[p];
            }
            json_object_set_new(e, "bma_mean", mv);
            json_array_append_new(subs, e);
            nsub_used++;
            for (int u = 0; u < nuse; u++)
                io_result_summary_free(&R[u]);
            nR = 0;
        }
        free(use);
        if (nsub_used < 1) {
            io_result_summary_free(&first);
            rc = cli_fail("average", DCM_ERR_INPUT, "%s: no subject has all the models", batch);
            goto done;
        }
        for (int p = 0; p < np; p++) {
            double m = gsum[p] / nsub_used;
            avg.mean[p] = m;
            /* squared standard error of the group mean */
            avg.var[p] = nsub_used > 1
                             ? fmax(gsq[p] - nsub_used * m * m, 0.0) / (nsub_used - 1) / nsub_used
                             : 0.0;
        }
        io_pname_space S = {first.n, first.m, first.nd, first.regions, first.inputs};
        json_object_set_new(o, "group", named(&S, &first, avg.mean, avg.var, "standard_error"));
        json_object_set_new(o, "n_subjects", json_integer(nsub_used));
        if (!as_json) {
            printf("group BMA over %d subjects\n%-28s %10s %10s\n", nsub_used, "parameter", "mean",
                   "s.e.");
            for (int p = 0; p < np; p++)
                if (first.pV[p] > 0 || avg.mean[p] != first.pE[p]) {
                    io_pname_format(&S, p, name, sizeof name);
                    printf("%-28s %10.4f %10.4f\n", name, avg.mean[p], sqrt(avg.var[p]));
                }
        }
        io_result_summary_free(&first);
    }
    rc = cli_emit_json("average", o, as_json, out_path);
done:
    for (int i = 0; i < nR; i++)
        io_result_summary_free(&R[i]);
    free(R);
    free(avg.mean);
    free(avg.var);
    free(avg.weights);
    free(gsum);
    free(gsq);
    json_decref(o);
    io_batchdir_free(&B);
    free(files);
    return rc;
}
