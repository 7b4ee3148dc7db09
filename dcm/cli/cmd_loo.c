/* cmd_loo.c — `dcm loo`: leave-one-out cross-validation of a group model
 * (SPM's spm_dcm_loo): can the selected parameters predict a subject's
 * covariate from the other subjects' PEB? */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"
#include "dcm/cli/cli_peb.h"
#include "dcm/dcm_loo.h"
#include "io/io_batchdir.h"
#include "io/io_result.h"

static const char *const usage[] = {
    "OUTDIR --model NAME --design DESIGN.tsv --param SEL [--param SEL ...] --covariate NAME\n"
    "               [--q single|all] [--maxit N] [--subjects S1,S2,...] [--json] [-o LOO.json]",
    NULL};

static const char *description =
    "Leave-one-out cross-validation (SPM's spm_dcm_loo): for each subject, PEB\n"
    "over the others' estimates of model NAME (OUTDIR/<subject>/NAME.json), then\n"
    "the posterior predictive density of that subject's covariate given its own\n"
    "parameters and the group model (spm_dcm_ppd: the covariate is unknown,\n"
    "prior N(0, 4 var + 1), the subject's other covariates known). Reported: each\n"
    "subject's predicted value with its sd, the true value, and the out-of-sample\n"
    "correlation r with its p value as SPM's figure gives it (one-tailed: does\n"
    "the prediction rise with the truth?) and two-sided.\n"
    "\n"
    "DESIGN.tsv: as dcm peb (a 'subject' column, then the covariates with a\n"
    "header; the first covariate is the constant). --covariate names the column\n"
    "to predict. The training PEB uses SPM's defaults as spm_dcm_ppd does\n"
    "(M.Q 'single', 64 iterations; with one parameter 'single' = 'all').\n";

static const char *footer =
    "example (the PEB tutorial: does the Words modulation of rdF predict LI?):\n"
    "  dcm loo out --model full --design design.tsv --param 'B(4,4,3)' --covariate LI -o loo.json\n"
    "  dcm report loo.json -o loo.html\n";

/* --q single|all */
static int take_q(const cli_opt *opt, char *arg)
{
    static const char *const names[] = {"single", "all"};
    static const int codes[] = {DCM_PEB_Q_SINGLE, DCM_PEB_Q_ALL};
    for (int k = 0; k < 2; k++)
        if (!strcmp(arg, names[k])) {
            *(int *)opt->value = codes[k];
            return 0;
        }
    return -1;
}

/* the column called name, or an error listing the columns */
static int find_covariate(const design *D, const char *dpath, const char *name, int *col)
{
    for (int j = 0; j < D->nx; j++)
        if (!strcmp(D->covariates[j], name)) {
            if (j == 0)
                return cli_fail("loo", DCM_ERR_INPUT, "--covariate %s is the first column of %s, the constant "
                                "(SPM's X(:,1)); predict one of the others", name, dpath);
            *col = j;
            return DCM_OK;
        }
    char list[1024];
    size_t o = 0;
    for (int j = 0; j < D->nx && o < sizeof list; j++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", j ? ", " : "", D->covariates[j]);
    return cli_fail("loo", DCM_ERR_INPUT, "--covariate %s is not a column of %s; its columns are: %s", name,
                    dpath, list);
}

static json_t *loo_json(const dcm_loo_result *L, const design *D, const char *model, const char *covariate,
                        json_t *params, int q, int maxit)
{
    json_t *o = json_object(), *subs = json_array();
    json_object_set_new(o, "kind", json_string("loo"));
    json_object_set_new(o, "model", json_string(model));
    json_object_set_new(o, "covariate", json_string(covariate));
    json_object_set_new(o, "parameters", json_incref(params));
    for (int i = 0; i < L->nsub; i++) {
        json_t *s = json_object();
        json_object_set_new(s, "subject", json_string(D->subjects[i]));
        json_object_set_new(s, "true", json_real(L->truth[i]));
        json_object_set_new(s, "predicted", json_real(L->qE[i]));
        json_object_set_new(s, "sd", json_real(sqrt(L->qC[i])));
        json_object_set_new(s, "peb_converged", json_boolean(L->converged[i]));
        json_array_append_new(subs, s);
    }
    json_object_set_new(o, "subjects", subs);
    json_object_set_new(o, "predicted", cli_json_vec(L->qE, L->nsub));
    json_t *sd = json_array();
    for (int i = 0; i < L->nsub; i++)
        json_array_append_new(sd, json_real(sqrt(L->qC[i])));
    json_object_set_new(o, "sd", sd);
    json_object_set_new(o, "true", cli_json_vec(L->truth, L->nsub));
    json_object_set_new(o, "r", isfinite(L->r) ? json_real(L->r) : json_null());
    json_object_set_new(o, "p", isfinite(L->p) ? json_real(L->p) : json_null());
    json_object_set_new(o, "p_two_sided", isfinite(L->p_two_sided) ? json_real(L->p_two_sided) : json_null());
    json_object_set_new(o, "t", isfinite(L->t) ? json_real(L->t) : json_null());
    json_object_set_new(o, "df", json_integer(L->df));
    json_t *M = json_object();
    json_object_set_new(M, "Q", json_string(q == DCM_PEB_Q_ALL ? "all" : "single"));
    json_object_set_new(M, "maxit", json_integer(maxit));
    json_object_set_new(o, "M", M);
    return o;
}

static void loo_print(const dcm_loo_result *L, const design *D, const char *covariate, json_t *params)
{
    printf("leave-one-out prediction of %s from", covariate);
    for (size_t k = 0; k < json_array_size(params); k++)
        printf("%s %s", k ? "," : "", json_string_value(json_array_get(params, k)));
    printf(" (%d subjects)\n\n%-16s %12s %12s %12s\n", L->nsub, "subject", "true", "predicted", "sd");
    for (int i = 0; i < L->nsub; i++)
        printf("%-16s %12.4f %12.4f %12.4f\n", D->subjects[i], L->truth[i], L->qE[i], sqrt(L->qC[i]));
    printf("\nout-of-sample correlation r = %.4f (df %d): p = %.5f one-tailed (as SPM), %.5f two-sided\n",
           L->r, L->df, L->p, L->p_two_sided);
}

int cmd_loo(int argc, char **argv)
{
    const char *outdir = NULL, *model = NULL, *dpath = NULL, *out_path = NULL, *covariate = NULL;
    int as_json = 0, nsel_args = 0, nsubj_args = 0, q = DCM_PEB_Q_SINGLE;
    long maxit = 64;
    const char **sels = calloc((size_t)argc + 1, sizeof *sels);
    const char **subj_args = calloc((size_t)argc + 1, sizeof *subj_args);
    io_batchdir B;
    memset(&B, 0, sizeof B);
    design D;
    memset(&D, 0, sizeof D);
    io_result_summary *R = NULL;
    int nR = 0, *sel = NULL;
    double *F = NULL;
    peb_stack st = {0};
    dcm_loo_result L;
    memset(&L, 0, sizeof L);
    json_t *o = NULL, *params = json_array();
    int rc = DCM_OK;
    if (!sels || !subj_args || !params) {
        rc = cli_fail("loo", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    const cli_opt options[] = {
        CLI_STRING(0, "model", &model, "NAME", "which model's results"),
        CLI_STRING(0, "design", &dpath, "FILE", "between-subject design (as dcm peb)"),
        CLI_LIST(0, "param", sels, &nsel_args, "SEL",
                 "the parameter(s) that predict: a name ('B:Words:rdF->rdF'), SPM's name ('B(4,4,3)') or a "
                 "pattern ('B:*'); repeat to add"),
        CLI_LIST(0, "params", sels, &nsel_args, "SEL", "the same as --param"),
        CLI_STRING(0, "covariate", &covariate, "NAME", "the design column to predict (e.g. LI)"),
        CLI_LIST(0, "subjects", subj_args, &nsubj_args, "S1,S2,...", "only these subjects (repeatable)",
                 .flags = CLI_OPT_NONEMPTY),
        CLI_GROUP("the training PEB (spm_dcm_peb):"),
        CLI_CALLBACK(0, "q", &q, "single|all", take_q,
                     "between-subject precision components (default single, as spm_dcm_ppd)",
                     .invalid = "--q takes 'single' or 'all'"),
        CLI_INT(0, "maxit", &maxit, "N", 1, 100000, "most iterations of each PEB (default 64, as SPM)"),
        CLI_GROUP("output:"),
        CLI_FLAG(0, "json", &as_json, "print JSON instead of a table"),
        CLI_STRING('o', "output", &out_path, "FILE", "also write the JSON to FILE (atomically)"),
        CLI_END};
    const cli_command cmd = {"loo", usage, description, footer, options, 0};
    int npos;
    rc = cli_options_parse(&cmd, argc, argv, &npos);
    if (rc) {
        rc = rc == CLI_OPTIONS_HELP ? DCM_OK : rc;
        goto done;
    }
    if (npos > 1) {
        rc = cli_fail("loo", DCM_ERR_USAGE, "one OUTDIR at a time ('%s' is extra)", argv[2]);
        goto done;
    }
    if (npos)
        outdir = argv[1];
    if (!outdir || !model || !dpath || !nsel_args || !covariate) {
        rc = cli_fail("loo", DCM_ERR_USAGE, "give OUTDIR, --model NAME, --design DESIGN.tsv, --param SEL and "
                      "--covariate NAME (see dcm loo --help)");
        goto done;
    }
    {
        cli_plan plan;
        cli_plan_init(&plan, "loo");
        cli_plan_batchdir(&plan, outdir);
        cli_plan_input(&plan, dpath, "--design");
        cli_plan_output(&plan, out_path, "-o");
        rc = cli_plan_check(&plan);
        cli_plan_free(&plan);
        if (rc)
            goto done;
    }
    dcm_error err = {0, ""};
    int col = -1;
    if ((rc = peb_load_subjects("loo", 3, outdir, model, dpath, subj_args, nsubj_args, &B, &D, &R, &nR, &F)) ||
        (rc = find_covariate(&D, dpath, covariate, &col)))
        goto done;
    const int N = D.nsub, np = R[0].np;
    io_pname_space S = io_result_space(&R[0]);
    int nsel = 0;
    if (!(sel = malloc(sizeof(int) * np))) {
        rc = cli_fail("loo", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    if (peb_select(&R[0], sels, nsel_args, sel, &nsel, &err)) {
        rc = cli_report("loo", &err);
        goto done;
    }
    for (int k = 0; k < nsel; k++) {
        char *name = io_pname_name(&S, sel[k]);
        json_array_append_new(params, json_string(name ? name : "?"));
        free(name);
    }
    if (!nsel) {
        rc = cli_fail("loo", DCM_ERR_INPUT, "the selected parameters are all fixed (prior variance 0) in %s",
                      R[0].path);
        goto done;
    }
    /* regression DCM: the selected parameters only, their posterior
       variances as a diagonal covariance (as dcm peb) */
    if (peb_stack_subjects(R, N, sel, nsel, &st)) {
        rc = cli_fail("loo", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    dcm_peb_input in = {.nsub = N, .np = st.np, .Ep = st.Ep, .Cp = st.Cp, .pE = st.pE, .pV = st.pV, .F = F,
                        .sel = st.ksel, .nsel = nsel, .X = D.X, .nx = D.nx, .q = q, .maxit = (int)maxit};
    if ((rc = dcm_loo(&in, col, &L, &err))) {
        rc = cli_report("loo", &err);
        goto done;
    }
    int nconv = 0;
    for (int i = 0; i < N; i++)
        nconv += L.converged[i];
    if (nconv < N)
        fprintf(stderr, "dcm loo: note: %d of %d training PEBs stopped at --maxit %ld before SPM's "
                "stopping rule (as SPM's spm_dcm_ppd, which uses 64; --maxit raises it)\n", N - nconv, N, maxit);
    if (!isfinite(L.r))
        fprintf(stderr, "dcm loo: warning: the predictions (or %s) do not vary: no correlation\n", covariate);
    o = loo_json(&L, &D, model, covariate, params, q, (int)maxit);
    if (!as_json)
        loo_print(&L, &D, covariate, params);
    rc = cli_emit_json("loo", o, as_json, out_path);
done:
    for (int i = 0; i < nR; i++)
        io_result_summary_free(&R[i]);
    free(R);
    peb_stack_free(&st);
    free(F);
    free(sel);
    dcm_loo_result_free(&L);
    json_decref(o);
    json_decref(params);
    design_free(&D);
    io_batchdir_free(&B);
    free(sels);
    free(subj_args);
    return rc;
}
