/* cmd_reduce.c — `dcm reduce`: Bayesian model reduction of an estimated
 * DCM (switch parameters off without refitting), and a greedy search over
 * reduced models with Bayesian model averaging. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"
#include "io/io_pnames.h"
#include "io/io_result.h"
#include "models/model_dcm.h"

static const char *const usage[] = {"RESULT.json --off PARAM [--off PARAM ...] [--json] [-o OUT.json]",
                                    "RESULT.json --search [--params PARAM ...] [--json] [-o OUT.json]", NULL};

static const char *description =
    "Bayesian model reduction (SPM's spm_log_evidence_reduce): the free energy\n"
    "and posterior of the model with some parameters switched off (prior\n"
    "variance 0), computed from the full model's prior and posterior without\n"
    "refitting. dF = F(reduced) - F(full); dF > 3 favours the reduced model.\n"
    "\n"
    "--search prunes greedily: every candidate parameter whose removal raises\n"
    "the evidence is switched off, repeatedly, and the parameters are averaged\n"
    "over the models visited (Bayesian model averaging).\n"
    "\n"
    "Parameters are named A:V1->V5, B:Attention:V1->V5, C:Photic->V1,\n"
    "D:SPC:V1->V5, transit:V5, decay, epsilon; '*' selects a block: 'B:*',\n"
    "'A:*->V5'.\n";

static const char *footer =
    "examples:\n"
    "  dcm reduce fwd.json --off 'B:Attention:V1->V5'\n"
    "  dcm reduce fwd.json --search --json\n";

/* exit code and reason for a failed reduction (dcm_group.h) */
static int bmr_fail(int code, const char *what, const char *input)
{
    if (code == DCM_ERR_SYSTEM)
        return cli_fail("reduce", DCM_ERR_SYSTEM, "%s failed for %s: out of memory", what, input);
    if (code == DCM_ERR_NUMERIC)
        return cli_fail("reduce", DCM_ERR_NUMERIC,
                        "%s failed for %s: the reduced free energy or posterior is not finite "
                        "(posterior means or covariances in the result too large to combine)",
                        what, input);
    return cli_fail("reduce", DCM_ERR_NUMERIC, "%s failed for %s: invalid sizes or arguments", what,
                    input);
}

static json_t *named_params(const io_pname_space *S, const io_result_summary *R,
                            const double *Ep_red, const double *var_red,
                            const unsigned char *off, const double *Pp)
{
    json_t *arr = json_array();
    for (int i = 0; i < R->np; i++) {
        if (R->pV[i] <= 0)
            continue;
        char *name = io_pname_name(S, i);
        if (!name) {
            json_decref(arr);
            return NULL;
        }
        json_t *e = json_object();
        json_object_set_new(e, "name", json_string(name));
        json_object_set_new(e, "full_mean", json_real(R->Ep[i]));
        json_object_set_new(e, "full_sd", json_real(sqrt(fmax(R->Cp[i * R->np + i], 0))));
        json_object_set_new(e, "reduced_mean", json_real(Ep_red[i]));
        json_object_set_new(e, "reduced_sd", json_real(sqrt(fmax(var_red[i], 0))));
        json_object_set_new(e, "switched_off", json_boolean(off[i]));
        if (Pp)
            json_object_set_new(e, "probability_present", json_real(Pp[i]));
        json_array_append_new(arr, e);
        free(name);
    }
    return arr;
}

/* what reduce_off and reduce_search share: the loaded result and the
 * buffers cmd_reduce owns */
typedef struct {
    const io_result_summary *R;
    const io_pname_space *S;
    const char *input;
    int as_json;
    unsigned char *mask; /* np: switched off */
    double *pC, *sE, *sC, *var;
    char **name;         /* one parameter's name at a time, whole */
    json_t *o;
} reduce_ctx;

static const char *param_name(reduce_ctx *c, int i)
{
    free(*c->name);
    *c->name = io_pname_name(c->S, i);
    return *c->name ? *c->name : "?";
}
#define NAME(i) param_name(c, (i))

/* BMR of R with the parameters in mask switched off. A spectral DCM's
 * reduced model has its own prior: an absent connection has prior mean 0
 * where a present one has 1/128 (spm_dcm_fmri_priors, used so by
 * spm_dcm_bmr), so its switched-off parameters go to 0, not to the full
 * model's prior mean. A task DCM's reduced prior mean is the full one's. */
static int switch_off(const io_result_summary *R, const unsigned char *mask, double *dF, double *sE,
                      double *sC, dcm_error *err)
{
    const int np = R->np;
    if (!R->csd)
        return dcm_bmr_switch_off(np, R->Ep, R->Cp, R->pE, R->pV, mask, dF, sE, sC, err);
    double *rE = malloc(sizeof(double) * (size_t)np);
    double *pC = calloc((size_t)np * np, sizeof(double)), *rC = calloc((size_t)np * np, sizeof(double));
    int rc = DCM_ERR_SYSTEM;
    if (rE && pC && rC) {
        for (int i = 0; i < np; i++) {
            rE[i] = mask[i] ? 0.0 : R->pE[i];
            pC[(size_t)i * np + i] = R->pV[i];
            rC[(size_t)i * np + i] = mask[i] ? 0.0 : R->pV[i];
        }
        rc = dcm_bmr_reduce(np, R->Ep, R->Cp, R->pE, pC, rE, rC, dF, sE, sC, err);
    } else {
        dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    free(rE);
    free(pC);
    free(rC);
    return rc;
}

/* --off: the model with the named parameters switched off */
static int reduce_off(reduce_ctx *c, const char **offs, int noff)
{
    const io_result_summary *R = c->R;
    const io_pname_space *S = c->S;
    const char *input = c->input;
    const int np = R->np, as_json = c->as_json;
    unsigned char *mask = c->mask;
    double *var = c->var;
    dcm_error err = {0, ""};
    double *sE = c->sE, *sC = c->sC;
    /* a named parameter must be free; a wildcard takes the free ones */
    unsigned char *one = calloc((size_t)np, 1);
    if (!one)
        return cli_fail("reduce", DCM_ERR_SYSTEM, "out of memory");
    for (int k = 0; k < noff; k++) {
        memset(one, 0, (size_t)np);
        if (io_pname_select(S, offs[k], one, &err)) {
            free(one);
            return cli_report("reduce", &err);
        }
        int wildcard = strchr(offs[k], '*') != NULL, nfree = 0;
        for (int i = 0; i < np; i++) {
            if (!one[i])
                continue;
            if (R->pV[i] > 0) {
                mask[i] = 1;
                nfree++;
            } else if (!wildcard) {
                free(one);
                return cli_fail("reduce", DCM_ERR_INPUT,
                                "%s is already switched off in %s (prior variance 0)", NAME(i), input);
            }
        }
        if (!nfree) {
            free(one);
            return cli_fail("reduce", DCM_ERR_INPUT, "'%s' selects no free parameter of %s", offs[k], input);
        }
    }
    free(one);
    json_t *names = json_array();
    for (int i = 0; i < np; i++)
        if (mask[i])
            json_array_append_new(names, json_string(NAME(i)));
    double dF = 0.0;
    int br = switch_off(R, mask, &dF, sE, sC, &err);
    if (br) {
        json_decref(names);
        return bmr_fail(br, "model reduction", input);
    }
    for (int i = 0; i < np; i++)
        var[i] = sC[i * np + i];
    json_object_set_new(c->o, "switched_off", names);
    json_object_set_new(c->o, "dF", json_real(dF));
    json_object_set_new(c->o, "free_energy_reduced", json_real(R->F + dF));
    json_object_set_new(c->o, "parameters", named_params(S, R, sE, var, mask, NULL));
    json_t *v = json_object();
    json_object_set_new(v, "posterior_mean", cli_json_vec(sE, np));
    json_object_set_new(v, "posterior_var", cli_json_vec(var, np));
    json_object_set_new(c->o, "vector", v);
    if (!as_json) {
        printf("%s: switching off", input);
        for (int i = 0; i < np; i++)
            if (mask[i])
                printf(" %s", NAME(i));
        printf("\ndF = F(reduced) - F(full) = %.4f  (%s)\n\n", dF,
               dF > 3 ? "strong evidence for the reduced model"
               : dF < -3 ? "strong evidence that the parameters matter"
                         : "no strong evidence either way");
        printf("%-28s %10s %10s %10s %10s\n", "parameter", "full", "sd", "reduced", "sd");
        for (int i = 0; i < np; i++)
            if (R->pV[i] > 0) {
                printf("%-28s %10.4f %10.4f %10.4f %10.4f%s\n", NAME(i), R->Ep[i],
                       sqrt(fmax(R->Cp[i * np + i], 0)), sE[i], sqrt(fmax(var[i], 0)),
                       mask[i] ? "  (off)" : "");
            }
    }
    return DCM_OK;
}

/* --search: the greedy search over reduced models, averaged */
static int reduce_search(reduce_ctx *c, const char **cands, int ncand)
{
    const io_result_summary *R = c->R;
    const io_pname_space *S = c->S;
    const char *input = c->input;
    const int np = R->np, as_json = c->as_json;
    unsigned char *mask = c->mask;
    double *var = c->var;
    dcm_error err = {0, ""};
    double *pC = c->pC;
    unsigned char *cand = calloc((size_t)np, 1);
    if (!cand)
        return cli_fail("reduce", DCM_ERR_SYSTEM, "out of memory");
    if (ncand) {
        for (int k = 0; k < ncand; k++)
            if (io_pname_select(S, cands[k], cand, &err)) {
                free(cand);
                return cli_report("reduce", &err);
            }
    } else {
        /* connectivity between regions, modulations, inputs, gating */
        const char *def[] = {"B:*", "C:*->*", "D:*"};
        model_dcm_layout L;
        model_dcm_layout_init(&L, R->n, R->m, R->nd > 0);
        for (int i = L.off_A; i < L.off_B; i++) /* A between regions: not the diagonal */
            cand[i] = (i - L.off_A) % (R->n + 1) != 0;
        for (int k = 0; k < 3; k++) {
            dcm_error ignore;
            io_pname_select(S, def[k], cand, &ignore); /* D may be absent */
        }
    }
    for (int i = 0; i < np; i++)
        if (R->pV[i] <= 0)
            cand[i] = 0;
    dcm_bmr_search_result B;
    int br = dcm_bmr_search(np, R->Ep, R->Cp, R->pE, pC, cand, &B, &err);
    free(cand);
    if (br) {
        dcm_bmr_search_result_free(&B);
        return bmr_fail(br, "model search", input);
    }
    json_t *names = json_array();
    for (int i = 0; i < np; i++) {
        mask[i] = R->pV[i] > 0 && !B.keep[i];
        var[i] = B.Cp_bma[i * np + i];
        if (mask[i])
            json_array_append_new(names, json_string(NAME(i)));
    }
    json_object_set_new(c->o, "switched_off", names);
    json_object_set_new(c->o, "dF", json_real(B.dF));
    json_object_set_new(c->o, "free_energy_reduced", json_real(R->F + B.dF));
    json_object_set_new(c->o, "models_scored", json_integer(B.nmodels));
    json_object_set_new(c->o, "parameters", named_params(S, R, B.Ep_bma, var, mask, B.Pp));
    json_t *v = json_object();
    json_object_set_new(v, "bma_mean", cli_json_vec(B.Ep_bma, np));
    json_object_set_new(v, "bma_var", cli_json_vec(var, np));
    json_object_set_new(v, "selected_mean", cli_json_vec(B.Ep, np));
    json_object_set_new(c->o, "vector", v);
    if (!as_json) {
        printf("%s: searched %d reduced models; the best switches off %d parameter%s, "
               "dF = %.4f\n\n", input, B.nmodels, B.nremoved, B.nremoved == 1 ? "" : "s",
               fabs(B.dF) < 5e-5 ? 0.0 : B.dF); /* no "-0.0000" */
        printf("%-28s %10s %10s %10s %12s\n", "parameter", "full", "BMA", "sd", "P(present)");
        for (int i = 0; i < np; i++)
            if (R->pV[i] > 0) {
                printf("%-28s %10.4f %10.4f %10.4f %12.4f%s\n", NAME(i), R->Ep[i], B.Ep_bma[i],
                       sqrt(fmax(var[i], 0)), B.Pp[i], mask[i] ? "  (off)" : "");
            }
    }
    dcm_bmr_search_result_free(&B);
    return DCM_OK;
}
#undef NAME

int cmd_reduce(int argc, char **argv)
{
    const char *input = NULL, *out_path = NULL;
    int as_json = 0, search = 0, noff = 0, ncand = 0;
    const char **offs = calloc((size_t)argc, sizeof *offs);
    const char **cands = calloc((size_t)argc, sizeof *cands);
    int rc = DCM_OK;
    io_result_summary R;
    memset(&R, 0, sizeof R);
    unsigned char *mask = NULL;
    double *pC = NULL, *sE = NULL, *sC = NULL, *var = NULL;
    json_t *o = NULL;
    char *name = NULL; /* one parameter's name at a time, whole */
    if (!offs || !cands) {
        rc = cli_fail("reduce", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    const cli_opt options[] = {
        CLI_LIST(0, "off", offs, &noff, "PARAM", "switch PARAM off (repeat)",
                 .missing = "%o needs a parameter name"),
        CLI_FLAG(0, "search", &search, "automatic search over reduced models"),
        CLI_LIST(0, "params", cands, &ncand, "PARAM",
                 "candidates for --search (repeat; default: A between regions, B, C and D)",
                 .missing = "%o needs a parameter name"),
        CLI_FLAG(0, "json", &as_json, "print JSON instead of a table"),
        CLI_STRING('o', "output", &out_path, "FILE", "also write the JSON to FILE (atomically)",
                   .missing = "-o needs a file name"),
        CLI_END};
    const cli_command cmd = {"reduce", usage, description, footer, options, 0};
    int npos;
    rc = cli_options_parse(&cmd, argc, argv, &npos);
    if (rc) {
        rc = rc == CLI_OPTIONS_HELP ? DCM_OK : rc;
        goto done;
    }
    if (npos > 1) {
        rc = cli_fail("reduce", DCM_ERR_USAGE, "one RESULT.json at a time ('%s' is extra)", argv[2]);
        goto done;
    }
    if (npos)
        input = argv[1];
    if (!input || (!search && !noff) || (search && noff)) {
        rc = cli_fail("reduce", DCM_ERR_USAGE,
                      "give RESULT.json and either --off PARAM (repeatable) or --search (see dcm reduce --help)");
        goto done;
    }
    {
        cli_plan plan;
        cli_plan_init(&plan, "reduce");
        cli_plan_input(&plan, input, "the result file");
        cli_plan_output(&plan, out_path, "-o");
        rc = cli_plan_check(&plan);
        cli_plan_free(&plan);
        if (rc)
            goto done;
    }
    dcm_error err = {0, ""};
    if (io_result_load(input, &R, &err)) {
        rc = cli_report("reduce", &err);
        goto done;
    }
    if (R.rdcm) {   /* BMR needs the joint posterior covariance; rDCM keeps diagonals */
        rc = cli_fail("reduce", DCM_ERR_INPUT,
                      "%s is a regression DCM: it keeps only each region's posterior variances, not "
                      "the covariance Bayesian model reduction needs. Estimate the reduced pattern "
                      "directly (rDCM is fast) and compare the two with dcm compare, or let "
                      "\"method\": \"sparse_rdcm\" prune connections", input);
        goto done;
    }
    const int np = R.np;
    io_pname_space S = io_result_space(&R);
    mask = calloc((size_t)np, 1);
    pC = calloc((size_t)np * np, sizeof(double));
    sE = calloc((size_t)np, sizeof(double));
    sC = malloc(sizeof(double) * np * np);
    var = calloc((size_t)np, sizeof(double));
    if (!mask || !pC || !sE || !sC || !var) {
        rc = cli_fail("reduce", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < np; i++)
        pC[i * np + i] = R.pV[i];
    o = json_object();
    json_object_set_new(o, "input", json_string(input));
    json_object_set_new(o, "free_energy_full", json_real(R.F));
    reduce_ctx c = {&R, &S, input, as_json, mask, pC, sE, sC, var, &name, o};
    if ((rc = search ? reduce_search(&c, cands, ncand) : reduce_off(&c, offs, noff)))
        goto done;
    rc = cli_emit_json("reduce", o, as_json, out_path);
done:
    free(name);
    json_decref(o);
    io_result_summary_free(&R);
    free(offs);
    free(cands);
    free(mask);
    free(pC);
    free(sE);
    free(sC);
    free(var);
    return rc;
}
