/* cmd_compare.c — `dcm compare`: Bayesian model comparison over result
 * files (one subject) or over a table of log-evidences (a group), with
 * fixed or random effects, and families of models. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"
#include "io/io_lme.h"
#include "io/io_result.h"

static const char *const usage[] = {"RESULT1.json RESULT2.json ... [options]",
                                    "--lme LME.tsv [--rfx] [options]", NULL};

static const char *description =
    "Bayesian model comparison.\n"
    "  Result files: models fitted to the same data (one subject) are compared\n"
    "  by their free energies F: log Bayes factor against the best (F - F_best)\n"
    "  and posterior probability under equal priors.\n"
    "  --lme LME.tsv: a group; header 'subject' then the model names, one row\n"
    "  per subject (dcm batch writes it as OUTDIR/summary.tsv).\n"
    "    fixed effects (default): summed log-evidence, posterior probabilities;\n"
    "    --rfx: random effects (Stephan et al. 2009, Rigoux et al. 2014): Dirichlet\n"
    "    counts alpha, expected frequencies exp_r, exceedance probabilities xp,\n"
    "    protected exceedance probabilities pxp and Bayesian omnibus risk bor.\n";

static const char *footer =
    "examples:\n"
    "  dcm compare fwd.json bwd.json\n"
    "  dcm compare --rfx --lme out/summary.tsv --json\n"
    "  dcm compare --rfx --lme out/summary.tsv --family forward=fwd,fwd2 --family backward=bwd\n";
typedef struct {
    char *name;
    char *members; /* comma-separated, as given */
} family_arg;

static char *model_name(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    char *s = strdup(b);
    if (!s)
        return NULL;
    size_t l = strlen(s);
    if (l > 5 && !strcmp(s + l - 5, ".json"))
        s[l - 5] = 0;
    return s;
}

static json_t *json_names(char *const *names, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(names[i]));
    return a;
}

/* Map --family arguments to a model -> family index partition. */
static int parse_families(const family_arg *fa, int nf, char *const *models, int nmod,
                          int *fam, dcm_error *err)
{
    for (int k = 0; k < nmod; k++)
        fam[k] = -1;
    for (int f = 0; f < nf; f++) {
        char *list = strdup(fa[f].members);
        if (!list)
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        char *save = NULL;
        for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            int k;
            for (k = 0; k < nmod; k++)
                if (!strcmp(tok, models[k]))
                    break;
            if (k == nmod) {
                dcm_error_set(err, DCM_ERR_USAGE, "--family %s: unknown model '%s'", fa[f].name, tok);
                free(list);
                return DCM_ERR_USAGE;
            }
            if (fam[k] >= 0) {
                dcm_error_set(err, DCM_ERR_USAGE, "model '%s' is in two families (%s and %s)", tok,
                              fa[fam[k]].name, fa[f].name);
                free(list);
                return DCM_ERR_USAGE;
            }
            fam[k] = f;
        }
        free(list);
    }
    for (int k = 0; k < nmod; k++)
        if (fam[k] < 0)
            return dcm_error_set(err, DCM_ERR_USAGE,
                                 "model '%s' is in no family: with --family every model needs one",
                                 models[k]);
    return DCM_OK;
}

/* Index of the first non-finite entry of x (n), or -1. */
static int first_nonfinite(const double *x, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return -1;
}

/* Largest |log-evidence|, to say what made a result non-finite. */
static double largest_lme(const io_lme_table *T)
{
    double mx = 0.0;
    for (long i = 0; i < (long)T->nsub * T->nmod; i++)
        mx = fmax(mx, fabs(T->lme[i]));
    return mx;
}

/* A non-finite number is never printed as a result: exit 3 naming it. */
static int refuse_nonfinite(const io_lme_table *T, const char *what, const double *x, int n,
                            char *const *names)
{
    int i = first_nonfinite(x, n);
    if (i < 0)
        return DCM_OK;
    return cli_fail("compare", DCM_ERR_NUMERIC,
                    "the %s of %s is not a finite number: the log-evidences (up to %g in magnitude) "
                    "overflow double precision when combined; check the table for misplaced values",
                    what, names ? names[i] : "the comparison", largest_lme(T));
}

/* One subject: a 1 x k table of the result files' free energies, after
 * checking they were fitted to the same data. Returns 0 or an exit code. */
static int load_results(const char **files, int k, io_lme_table *T)
{
    dcm_error err = {0, ""};
    T->nsub = 1;
    T->nmod = k;
    T->subjects = calloc(1, sizeof(char *));
    T->models = calloc((size_t)k, sizeof(char *));
    T->lme = malloc(sizeof(double) * k);
    if (!T->subjects || !T->models || !T->lme)
        return cli_fail("compare", DCM_ERR_SYSTEM, "out of memory");
    T->subjects[0] = strdup("data");
    io_result_summary s0;
    memset(&s0, 0, sizeof s0);
    for (int i = 0; i < k; i++) {
        io_result_summary s;
        if (io_result_load(files[i], &s, &err)) {
            io_result_summary_free(&s0);
            return cli_report("compare", &err);
        }
        T->lme[i] = s.F;
        if (!(T->models[i] = model_name(files[i]))) {
            io_result_summary_free(&s);
            io_result_summary_free(&s0);
            return cli_fail("compare", DCM_ERR_SYSTEM, "out of memory");
        }
        if (i == 0) {
            s0 = s; /* kept to compare the others with */
            continue;
        }
        /* free energies are log-evidences of particular data: the
           same regions (in any order) and the same observed BOLD */
        int same = io_result_same_data(&s, &s0), nreg = s.n, n0 = s0.n;
        if (s.csd != s0.csd) {   /* cross-spectra and time series are different data */
            int csd = s.csd;
            io_result_summary_free(&s);
            io_result_summary_free(&s0);
            return cli_fail("compare", DCM_ERR_INPUT,
                            "%s is a %s DCM but %s is a %s DCM: one fits the cross-spectra, the other "
                            "the time series, so their free energies are of different data and cannot "
                            "be compared", files[i], csd ? "spectral" : "task", files[0],
                            csd ? "task" : "spectral");
        }
        if ((s.rdcm != 0) != (s0.rdcm != 0) ||
            (s.rdcm && (s.rdcm_empirical != s0.rdcm_empirical ||
                        !(s.rdcm_filter == s0.rdcm_filter)))) {
            int r = s.rdcm != 0, r0 = s0.rdcm != 0;
            io_result_summary_free(&s);
            io_result_summary_free(&s0);
            if (r != r0)
                return cli_fail("compare", DCM_ERR_INPUT,
                                "%s is a %s DCM but %s is a %s DCM: regression DCM's free energy is "
                                "that of a frequency-domain regression, not of the time series, so "
                                "the two cannot be compared", files[i], r ? "regression" : "classical",
                                files[0], r0 ? "regression" : "classical");
            return cli_fail("compare", DCM_ERR_INPUT,
                            "%s and %s are regression DCMs with different \"rdcm\" \"data\" or "
                            "\"filter\" settings: their regressions have different rows, so their "
                            "free energies cannot be compared", files[i], files[0]);
        }
        int regions_agree = nreg == n0;
        for (int r = 0; regions_agree && r < nreg; r++) {
            int found = 0;
            for (int q = 0; q < n0; q++)
                found |= !strcmp(s.regions[r], s0.regions[q]);
            regions_agree = found;
        }
        io_result_summary_free(&s);
        if (same == 0) {
            io_result_summary_free(&s0);
            return cli_fail("compare", DCM_ERR_INPUT,
                            "%s and %s were fitted to different data (their observed BOLD differs): "
                            "free energies of different data cannot be compared", files[i], files[0]);
        }
        if (!regions_agree) {
            io_result_summary_free(&s0);
            return cli_fail("compare", DCM_ERR_INPUT,
                            "%s and %s model different regions (%d and %d, or other names): models "
                            "compared by their free energy must be fitted to the same data",
                            files[i], files[0], nreg, n0);
        }
    }
    io_result_summary_free(&s0);
    return DCM_OK;
}

/* Random effects over the table: its numbers into o, and a table. */
static int report_rfx(const io_lme_table *T, int as_json, json_t *o)
{
    const int nsub = T->nsub, nmod = T->nmod;
    dcm_error err = {0, ""};
    int rc;
    dcm_bms_rfx_result R;
    if (dcm_bms_rfx(T->lme, nsub, nmod, &R, &err)) {
        dcm_bms_rfx_result_free(&R);
        return cli_report("compare", &err);
    }
    if ((rc = refuse_nonfinite(T, "Dirichlet count", R.alpha, nmod, T->models)) ||
        (rc = refuse_nonfinite(T, "expected frequency", R.exp_r, nmod, T->models)) ||
        (rc = refuse_nonfinite(T, "exceedance probability", R.xp, nmod, T->models)) ||
        (rc = refuse_nonfinite(T, "protected exceedance probability", R.pxp, nmod, T->models)) ||
        (rc = refuse_nonfinite(T, "Bayesian omnibus risk", &R.bor, 1, NULL))) {
        dcm_bms_rfx_result_free(&R);
        return rc;
    }
    if (!R.converged)
        fprintf(stderr, "dcm compare: warning: the variational iterations did not converge\n");
    json_object_set_new(o, "method", json_string("random effects"));
    json_object_set_new(o, "alpha", cli_json_vec(R.alpha, nmod));
    json_object_set_new(o, "exp_r", cli_json_vec(R.exp_r, nmod));
    json_object_set_new(o, "xp", cli_json_vec(R.xp, nmod));
    json_object_set_new(o, "pxp", cli_json_vec(R.pxp, nmod));
    json_object_set_new(o, "bor", json_real(R.bor));
    if (!as_json) {
        printf("random-effects BMS over %d subjects\n", nsub);
        printf("%-20s %10s %10s %10s %10s\n", "model", "alpha", "exp_r", "xp", "pxp");
        for (int m = 0; m < nmod; m++)
            printf("%-20s %10.4f %10.4f %10.4f %10.4f\n", T->models[m], R.alpha[m], R.exp_r[m],
                   R.xp[m], R.pxp[m]);
        printf("Bayesian omnibus risk (no model is more frequent): %.4f\n", R.bor);
    }
    dcm_bms_rfx_result_free(&R);
    return DCM_OK;
}

/* Fixed effects over the table (files: the result files of one subject,
 * NULL for an --lme table): its numbers into o, and a table. */
static int report_ffx(const io_lme_table *T, const char **files, int as_json, json_t *o)
{
    const int nsub = T->nsub, nmod = T->nmod;
    dcm_error err = {0, ""};
    double *slme = malloc(sizeof(double) * nmod), *post = malloc(sizeof(double) * nmod),
           *lbf = malloc(sizeof(double) * nmod);
    int fr = (slme && post && lbf) ? dcm_bms_ffx(T->lme, nsub, nmod, NULL, slme, post, lbf, &err)
                                   : DCM_ERR_SYSTEM;
    int rc = DCM_OK;
    if (!fr && ((rc = refuse_nonfinite(T, "log Bayes factor", lbf, nmod, T->models)) ||
                (rc = refuse_nonfinite(T, "posterior probability", post, nmod, T->models)))) {
        free(slme);
        free(post);
        free(lbf);
        return rc;
    }
    if (fr) {
        free(slme);
        free(post);
        free(lbf);
        if (fr == DCM_ERR_SYSTEM)
            rc = cli_fail("compare", DCM_ERR_SYSTEM, "out of memory");
        else if (fr == DCM_ERR_NUMERIC)
            rc = cli_fail("compare", DCM_ERR_NUMERIC,
                          "the summed log-evidence of a model overflows double precision (log-"
                          "evidences up to %g in magnitude over %d subjects): check the table for "
                          "misplaced values", largest_lme(T), nsub);
        else
            rc = cli_fail("compare", DCM_ERR_NUMERIC, "fixed-effects comparison failed");
        return rc;
    }
    json_object_set_new(o, "method", json_string("fixed effects"));
    json_object_set_new(o, "log_evidence", cli_json_vec(slme, nmod));
    json_object_set_new(o, "log_bayes_factor", cli_json_vec(lbf, nmod));
    json_object_set_new(o, "posterior_probability", cli_json_vec(post, nmod));
    if (files) {
        json_t *arr = json_array();
        for (int m = 0; m < nmod; m++) {
            json_t *e = json_object();
            json_object_set_new(e, "model", json_string(T->models[m]));
            json_object_set_new(e, "file", json_string(files[m]));
            json_object_set_new(e, "free_energy", json_real(slme[m]));
            json_object_set_new(e, "log_bayes_factor", json_real(lbf[m]));
            json_object_set_new(e, "posterior_probability", json_real(post[m]));
            json_array_append_new(arr, e);
        }
        json_object_set_new(o, "results", arr);
    }
    if (!as_json) {
        if (nsub > 1)
            printf("fixed-effects comparison over %d subjects (summed log-evidence)\n", nsub);
        printf("%-24s %14s %14s %12s\n", "model", nsub > 1 ? "sum F" : "F", "log BF", "P(model)");
        for (int m = 0; m < nmod; m++)
            printf("%-24s %14.4f %14.4f %12.4f\n", T->models[m], slme[m], lbf[m], post[m]);
        if (nmod == 2)
            printf("\nlog Bayes factor %s vs %s: %.4f\n", T->models[0], T->models[1],
                   slme[0] - slme[1]);
    }
    free(slme);
    free(post);
    free(lbf);
    return DCM_OK;
}

static int report_families(const double *lme, int nsub, int nmod, const family_arg *fa, int nf,
                           char *const *models, int rfx, int as_json, json_t *o)
{
    int *fam = malloc(sizeof(int) * nmod);
    dcm_error err = {0, ""};
    if (!fam)
        return cli_fail("compare", DCM_ERR_SYSTEM, "out of memory");
    int rc = parse_families(fa, nf, models, nmod, fam, &err);
    if (rc) {
        free(fam);
        return cli_report("compare", &err);
    }
    dcm_bms_family_result fr;
    rc = dcm_bms_family(lme, nsub, nmod, fam, nf, rfx, &fr, &err);
    free(fam);
    if (rc) {
        dcm_bms_family_result_free(&fr);
        return cli_fail("compare", DCM_ERR_NUMERIC, "family comparison failed (%s)",
                        rc == DCM_ERR_NUMERIC ? "a summed log-evidence overflows double precision"
                                              : "numerical failure");
    }
    int bad = first_nonfinite(fr.exp_r, nf);
    if (bad < 0 && rfx) {
        const double *arrs[] = {fr.alpha, fr.xp, fr.pxp};
        for (int a = 0; a < 3 && bad < 0; a++)
            bad = first_nonfinite(arrs[a], nf);
        if (bad < 0 && !isfinite(fr.bor))
            bad = 0;
    }
    if (bad >= 0) {
        dcm_bms_family_result_free(&fr);
        return cli_fail("compare", DCM_ERR_NUMERIC,
                        "the comparison of family %s is not a finite number: the log-evidences "
                        "overflow double precision when combined", fa[bad].name);
    }
    if (as_json) {
        json_t *fj = json_array();
        for (int f = 0; f < nf; f++) {
            json_t *e = json_object();
            json_object_set_new(e, "family", json_string(fa[f].name));
            json_object_set_new(e, "models", json_string(fa[f].members));
            if (rfx) {
                json_object_set_new(e, "alpha", json_real(fr.alpha[f]));
                json_object_set_new(e, "exp_r", json_real(fr.exp_r[f]));
                json_object_set_new(e, "xp", json_real(fr.xp[f]));
                json_object_set_new(e, "pxp", json_real(fr.pxp[f]));
            } else {
                json_object_set_new(e, "posterior_probability", json_real(fr.exp_r[f]));
            }
            json_array_append_new(fj, e);
        }
        json_object_set_new(o, "families", fj);
        if (rfx)
            json_object_set_new(o, "family_bor", json_real(fr.bor));
    } else {
        printf("\nfamilies (%s):\n", rfx ? "random effects" : "fixed effects");
        if (rfx) {
            printf("%-20s %10s %10s %10s %10s\n", "family", "alpha", "exp_r", "xp", "pxp");
            for (int f = 0; f < nf; f++)
                printf("%-20s %10.4f %10.4f %10.4f %10.4f\n", fa[f].name, fr.alpha[f], fr.exp_r[f],
                       fr.xp[f], fr.pxp[f]);
            printf("family Bayesian omnibus risk: %.4f\n", fr.bor);
        } else {
            printf("%-20s %12s\n", "family", "P(family)");
            for (int f = 0; f < nf; f++)
                printf("%-20s %12.4f\n", fa[f].name, fr.exp_r[f]);
        }
    }
    dcm_bms_family_result_free(&fr);
    return DCM_OK;
}

/* --family NAME=M1,M2 (value: the family_arg array, count: how many) */
static int take_family(const cli_opt *opt, char *arg)
{
    family_arg *fa = opt->value;
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1])
        return -1;
    *eq = 0;
    fa[*opt->count].name = arg;
    fa[(*opt->count)++].members = eq + 1;
    return 0;
}

int cmd_compare(int argc, char **argv)
{
    int as_json = 0, rfx = 0, k = 0, nf = 0;
    const char *lme_path = NULL, *evidence = NULL;
    const char **files = calloc((size_t)argc, sizeof *files);
    family_arg *fa = calloc((size_t)argc, sizeof *fa);
    int rc = DCM_OK;
    io_lme_table T;
    memset(&T, 0, sizeof T);
    json_t *o = NULL;
    if (!files || !fa) {
        rc = cli_fail("compare", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    const cli_opt options[] = {
        CLI_STRING(0, "lme", &lme_path, "FILE", "log-evidence table (subjects x models)",
                   .missing = "--lme needs a file"),
        CLI_SET_INT(0, "rfx", &rfx, 1, "random-effects BMS (needs --lme)"),
        CLI_SET_INT(0, "ffx", &rfx, 0, "fixed effects (default)"),
        CLI_CALLBACK(0, "family", fa, "NAME=M1,M2", take_family,
                     "a family of models (repeat; every model in exactly one)", .count = &nf,
                     .missing = "--family takes NAME=MODEL1,MODEL2,..."),
        CLI_FLAG(0, "json", &as_json, "print a JSON object instead of a table"),
        CLI_STRING(0, "evidence", &evidence, "ti|ais",
                   "also the sampled log evidence of each result with its standard error beside F "
                   "(dcm evidence with its defaults; MANUAL 18)", .flags = CLI_OPT_NONEMPTY),
        CLI_END};
    const cli_command cmd = {"compare", usage, description, footer, options, 0};
    rc = cli_options_parse(&cmd, argc, argv, &k);
    if (rc) {
        rc = rc == CLI_OPTIONS_HELP ? DCM_OK : rc;
        goto done;
    }
    for (int i = 0; i < k; i++)
        files[i] = argv[1 + i];
    if (evidence && strcmp(evidence, "ti") && strcmp(evidence, "ais")) {
        rc = cli_fail("compare", DCM_ERR_USAGE, "--evidence must be ti or ais, not '%s'", evidence);
        goto done;
    }
    if (lme_path && k) {
        rc = cli_fail("compare", DCM_ERR_USAGE, "give result files or --lme, not both");
        goto done;
    }
    {
        /* compare writes no file; its inputs must still be regular files */
        cli_plan plan;
        cli_plan_init(&plan, "compare");
        cli_plan_input(&plan, lme_path, "--lme");
        for (int i = 0; i < k; i++)
            cli_plan_input(&plan, files[i], "the result file");
        rc = cli_plan_check(&plan);
        cli_plan_free(&plan);
        if (rc)
            goto done;
    }
    dcm_error err = {0, ""};
    if (lme_path) {
        if ((rc = io_lme_read(lme_path, &T, &err))) {
            rc = cli_report("compare", &err);
            goto done;
        }
    } else {
        if (k < 2) {
            rc = cli_fail("compare", DCM_ERR_USAGE,
                          "give at least two result files, or --lme TABLE (see dcm compare --help)");
            goto done;
        }
        if (rfx) {
            rc = cli_fail("compare", DCM_ERR_USAGE,
                          "random effects need several subjects: use --lme TABLE (dcm batch writes "
                          "OUTDIR/summary.tsv)");
            goto done;
        }
        if ((rc = load_results(files, k, &T)))
            goto done;
    }
    const int nsub = T.nsub, nmod = T.nmod;
    if (nmod < 2) {
        rc = cli_fail("compare", DCM_ERR_INPUT, "%s: compare needs at least two models",
                      lme_path ? lme_path : "input");
        goto done;
    }
    if (nf) { /* check the partition before printing anything */
        int *fam = malloc(sizeof(int) * nmod);
        if (!fam) {
            rc = cli_fail("compare", DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
        rc = parse_families(fa, nf, T.models, nmod, fam, &err);
        free(fam);
        if (rc) {
            rc = cli_report("compare", &err);
            goto done;
        }
    }
    o = json_object();
    json_object_set_new(o, "models", json_names(T.models, nmod));
    json_object_set_new(o, "subjects", json_integer(nsub));
    if (rfx) {
        if (nsub < 2) {
            rc = cli_fail("compare", DCM_ERR_INPUT, "%s: random effects need at least two subjects",
                          lme_path);
            goto done;
        }
        if ((rc = report_rfx(&T, as_json, o)))
            goto done;
    } else {
        if ((rc = report_ffx(&T, lme_path ? NULL : files, as_json, o)))
            goto done;
    }
    if (evidence && lme_path) {
        rc = cli_fail("compare", DCM_ERR_USAGE, "--evidence needs result files, not --lme");
        goto done;
    }
    if (evidence && (rc = cli_compare_evidence(files, k, evidence, as_json, o)))
        goto done;
    if (nf && (rc = report_families(T.lme, nsub, nmod, fa, nf, T.models, rfx, as_json, o)))
        goto done;
    if (as_json)
        rc = cli_emit_json("compare", o, 1, NULL);
done:
    json_decref(o);
    io_lme_free(&T);
    free(files);
    free(fa);
    return rc;
}
