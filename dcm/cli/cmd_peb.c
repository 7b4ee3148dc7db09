/* cmd_peb.c — `dcm peb`: second-level Parametric Empirical Bayes over the
 * subjects' estimates of one model (SPM's spm_dcm_peb). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"
#include "dcm/cli/cmd_peb_space.h"
#include "dcm/cli/cli_peb.h"
#include "io/io_batchdir.h"
#include "models/model_layout.h"
#include "io/io_pnames.h"
#include "io/io_result.h"
#include "io/io_tsv.h"

static const char *const usage[] = {
    "OUTDIR --model NAME --design DESIGN.tsv --params SEL [--params SEL ...]\n"
    "               [--q single|fields|all] [--maxit N] [--subjects S1,S2,...]\n"
    "               [--alpha A] [--beta B] [--hE H] [--hC V] [--search]\n"
    "               [--models SPACE.json [--families FAMILIES.json]] [--json] [-o PEB.json]",
    NULL};

static const char *description =
    "Parametric Empirical Bayes (SPM's spm_dcm_peb): the selected parameters of\n"
    "every subject's estimate of model NAME (OUTDIR/<subject>/NAME.json, the\n"
    "layout dcm batch writes) are explained by a between-subject design:\n"
    "    theta_subject = X(subject, :) beta + random effect.\n"
    "No subject is refitted: Bayesian model reduction carries each subject's\n"
    "posterior to the group level.\n"
    "\n"
    "DESIGN.tsv: a 'subject' column, then one column per covariate with a\n"
    "header (e.g. intercept, group, age) naming it; one row per subject with\n"
    "results (with --subjects: a row for each subject listed, others ignored).\n"
    "\n"
    "SPM's M fields: --q (M.Q; default single, as spm_dcm_peb; the PEB tutorial\n"
    "uses all), --maxit (M.maxit, 64; the tutorial uses 256), --alpha, --beta,\n"
    "--hE, --hC. A fit stopped at --maxit before SPM's stopping rule is\n"
    "reported as not converged (a warning on stderr, \"converged\": false).\n"
    "\n"
    "Reported per parameter x covariate: the group effect's mean, sd and the\n"
    "probability that it is present (Bayesian model reduction of that effect\n"
    "alone: P = 1 / (1 + exp(F_without - F_with))); the group free energy;\n"
    "the between-subject precisions; each subject's posterior under the group\n"
    "(empirical) prior; and a search over reduced group models (Bayesian model\n"
    "reduction) with the effects averaged over the models visited.\n";

static const char *footer =
    "example:\n"
    "  dcm peb out --model fwd --design design.tsv --params 'B:*' -o peb.json\n"
    "  dcm peb out --model full --design design.tsv --params B --q all --maxit 256\n"
    "  dcm peb out --model full --design design.tsv --params B --q all --maxit 256 \\\n"
    "      --models space.json --families families.json\n";
void design_free(design *d)
{
    for (int i = 0; i < d->nsub && d->subjects; i++)
        free(d->subjects[i]);
    for (int j = 0; j < d->nx && d->covariates; j++)
        free(d->covariates[j]);
    free(d->subjects);
    free(d->covariates);
    free(d->X);
    memset(d, 0, sizeof *d); /* freed twice is then harmless */
}

int read_design(const char *path, design *d, dcm_error *err)
{
    memset(d, 0, sizeof *d);
    io_text_table t;
    int rc = io_text_read(path, &t, err);
    if (rc)
        return rc;
    if (t.rows < 2 || t.cols < 2 || strcmp(t.cells[0], "subject")) {
        io_text_free(&t);
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: a design needs a header 'subject<TAB>COVARIATE...' and one row per subject",
                             path);
    }
    d->nsub = t.rows - 1;
    d->nx = t.cols - 1;
    d->subjects = calloc((size_t)d->nsub, sizeof(char *));
    d->covariates = calloc((size_t)d->nx, sizeof(char *));
    d->X = malloc(sizeof(double) * d->nsub * d->nx);
    if (!d->subjects || !d->covariates || !d->X) {
        io_text_free(&t);
        design_free(d);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    for (int j = 0; j < d->nx; j++)
        if (!(d->covariates[j] = strdup(t.cells[1 + j]))) {
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            goto fail;
        }
    for (int i = 0; i < d->nsub; i++) {
        char **row = t.cells + (size_t)(i + 1) * t.cols;
        for (int k = 0; k < i; k++)
            if (!strcmp(d->subjects[k], row[0])) {
                rc = dcm_error_set(err, DCM_ERR_INPUT, "%s, line %d: subject '%s' appears twice", path,
                                   t.line[i + 1], row[0]);
                goto fail;
            }
        if (!(d->subjects[i] = strdup(row[0]))) {
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            goto fail;
        }
        for (int j = 0; j < d->nx; j++) {
            int pr = io_parse_number(row[1 + j], &d->X[i * d->nx + j]);
            if (pr) {
                rc = dcm_error_set(err, DCM_ERR_INPUT, "%s, line %d, column %d (\"%s\"): '%s' is not a finite number",
                                   path, t.line[i + 1], j + 2, d->covariates[j], row[1 + j]);
                goto fail;
            }
        }
    }
    io_text_free(&t);
    return DCM_OK;
fail:
    io_text_free(&t);
    design_free(d);
    return rc;
}

/* Bayesian model reduction over the group-level parameters (SPM's
 * spm_dcm_peb_bmc idea), dcm_peb_reduce: a greedy search that switches off
 * group effects whose absence raises the evidence, with the effects
 * averaged over the models visited. */
static int group_reduction(const dcm_peb_result *P, const design *D, const double *pE,
                           const double *pV, const io_pname_space *S, int as_json, json_t *o)
{
    const int nx = P->nx;
    dcm_bmr_search_result B;
    dcm_error err = {0, ""};
    if (dcm_peb_reduce(P, D->X, D->nsub, pE, pV, &B, &err))
        return cli_report("peb", &err);
    json_t *red = json_object(), *eff = json_array(), *off = json_array();
    if (!as_json)
        printf("\nreduction over the group effects: %d models searched, %d effect%s switched off "
               "(dF = %.4f)\n%-40s %10s %12s\n", B.nmodels, B.nremoved, B.nremoved == 1 ? "" : "s",
               fabs(B.dF) < 5e-5 ? 0.0 : B.dF, "effect", "BMA mean", "P(present)");
    for (int j = 0; j < nx; j++)
        for (int q = 0; q < P->np; q++) {
            int k = q + j * P->np;
            char *name = io_pname_name(S, P->sel[q]);
            size_t ll = (name ? strlen(name) : 0) + strlen(D->covariates[j]) + 4;
            char *label = malloc(ll);
            if (!name || !label) {
                free(name);
                free(label);
                json_decref(red);
                json_decref(eff);
                json_decref(off);
                dcm_bmr_search_result_free(&B);
                return cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
            }
            snprintf(label, ll, "%s x %s", name, D->covariates[j]);
            json_t *e = json_object();
            json_object_set_new(e, "parameter", json_string(name));
            json_object_set_new(e, "covariate", json_string(D->covariates[j]));
            json_object_set_new(e, "bma_mean", json_real(B.Ep_bma[k]));
            json_object_set_new(e, "probability_present", json_real(B.Pp[k]));
            json_object_set_new(e, "kept", json_boolean(B.keep[k]));
            json_array_append_new(eff, e);
            if (!B.keep[k])
                json_array_append_new(off, json_string(label));
            if (!as_json)
                printf("%-40s %10.4f %12.4f%s\n", label, B.Ep_bma[k], B.Pp[k], B.keep[k] ? "" : "  (off)");
            free(name);
            free(label);
        }
    json_object_set_new(red, "dF", json_real(B.dF));
    json_object_set_new(red, "switched_off", off);
    json_object_set_new(red, "effects", eff);
    json_object_set_new(o, "reduction", red);
    dcm_bmr_search_result_free(&B);
    return DCM_OK;
}

static int keep_subjects(const char *cmd, design *D, const char *design_path, const char **lists,
                         int nlists);

int peb_load_subjects(const char *cmd, int min_subjects, const char *outdir, const char *model,
                      const char *design_path, const char **subjects, int nsubjects, io_batchdir *B,
                      design *D, io_result_summary **Rp, int *nR, double **F)
{
    dcm_error err = {0, ""};
    if (io_batchdir_scan(outdir, B, &err) || read_design(design_path, D, &err))
        return cli_report(cmd, &err);
    int krc = keep_subjects(cmd, D, design_path, subjects, nsubjects);
    if (krc)
        return krc;
    int mi = io_batchdir_model(B, model);
    if (mi < 0) {
        char *list = io_batchdir_model_list(B);
        int rc = cli_fail(cmd, DCM_ERR_INPUT, "%s: no results for model '%s'; the models there are: %s",
                          outdir, model, list ? list : "(out of memory)");
        free(list);
        return rc;
    }
    /* the design's subjects and the subjects with results must agree
       (unless --subjects chose some) */
    for (int s = 0; s < B->nsub && !nsubjects; s++)
        if (B->has[s * B->nmod + mi]) {
            int found = 0;
            for (int i = 0; i < D->nsub; i++)
                found |= !strcmp(D->subjects[i], B->subjects[s]);
            if (!found)
                return cli_fail(cmd, DCM_ERR_INPUT,
                                "%s has no row for subject '%s', who has results for %s in %s; the design "
                                "needs one row per subject", design_path, B->subjects[s], model, outdir);
        }
    const int nsub = D->nsub;
    if (nsub < min_subjects)
        return cli_fail(cmd, DCM_ERR_INPUT, "%s: %s needs at least %d subjects (%d given)", design_path,
                        strcmp(cmd, "loo") ? "PEB" : "leave-one-out", min_subjects, nsub);
    io_result_summary *R = *Rp = calloc((size_t)nsub, sizeof *R);
    *F = malloc(sizeof(double) * nsub);
    if (!R || !*F)
        return cli_fail(cmd, DCM_ERR_SYSTEM, "out of memory");
    for (int i = 0; i < nsub; i++) {
        *nR = i + 1; /* R[i] is freed by the caller, loaded or not */
        int s = io_batchdir_subject(B, D->subjects[i]);
        if (s < 0 || !B->has[s * B->nmod + mi])
            return cli_fail(cmd, DCM_ERR_INPUT, "%s lists subject '%s' but %s/%s/%s.json does not exist",
                            design_path, D->subjects[i], outdir, D->subjects[i], model);
        char *p = io_batchdir_path(B, s, mi);
        int lr = io_result_load(p, &R[i], &err);
        free(p);
        if (lr)
            return cli_report(cmd, &err);
        if (i && !io_result_same_kind(&R[i], &R[0]))
            return cli_fail(cmd, DCM_ERR_INPUT, "%s is a %s model but %s is %s: the same model is needed "
                            "for every subject", R[i].path, io_result_kind(&R[i]), R[0].path,
                            io_result_kind(&R[0]));
        /* parameters meet by name: a subject whose regions are listed in
           another order is reordered, one with other regions refused */
        if (i && io_result_align(&R[i], &R[0], &err))
            return cli_report(cmd, &err);
        (*F)[i] = R[i].F;
    }
    return DCM_OK;
}

/* The group-level inversion failed: say which subject's numbers are to
 * blame when one is. */
static int peb_failed(int rc, const dcm_error *err, const io_result_summary *R, int nsub,
                      const int *sel, int nsel, int np)
{
    if (rc == DCM_ERR_SYSTEM)
        return cli_report("peb", err);
    int bad_i = -1;
    for (int i = 0; i < nsub && bad_i < 0; i++)
        for (int q = 0; q < nsel && bad_i < 0; q++) {
            double e = R[i].Ep[sel[q]];
            double c = R[i].Cp ? R[i].Cp[(size_t)sel[q] * np + sel[q]] : R[i].Vp[sel[q]];
            if (!isfinite(e) || !isfinite(c) || fabs(e) > 1e100 || fabs(c) > 1e200)
                bad_i = i;
        }
    if (bad_i >= 0)
        return cli_fail("peb", DCM_ERR_NUMERIC,
                        "the group-level inversion failed: %s has posterior means or variances of the "
                        "selected parameters too large to combine (e.g. |mean| > 1e100)", R[bad_i].path);
    return cli_fail("peb", DCM_ERR_NUMERIC, "the group-level inversion failed (%s)",
                    rc == DCM_ERR_NUMERIC ? "a non-finite value arose in the group-level update"
                                          : "invalid design or sizes");
}

/* Each group effect with its probability from reducing it alone
 * (Savage-Dickey: the marginal posterior vs the prior at zero). */
static int report_effects(const dcm_peb_result *P, const design *D, const io_result_summary *R0,
                          const io_pname_space *S, const char *model, const dcm_peb_search_result *bma,
                          int as_json, json_t *o)
{
    const int nsub = D->nsub, nx = D->nx;
    json_t *effects = json_array();
    if (!as_json && bma)
        printf("PEB over %d subjects, model %s: F = %.4f (%d iterations%s)\n"
               "search over reduced group models (spm_dcm_peb_bmc): %d models scored; Bayesian model "
               "average\n\n%-28s %-12s %10s %10s %12s\n", nsub, model, P->F, P->iterations,
               P->converged ? "" : ", NOT converged", bma->nmodels, "parameter", "covariate", "BMA mean",
               "sd", "Pp");
    else if (!as_json)
        printf("PEB over %d subjects, model %s: F = %.4f (%d iterations)\n\n%-28s %-12s %10s %10s %12s\n",
               nsub, model, P->F, P->iterations, "parameter", "covariate", "mean", "sd", "probability");
    const int ne = P->np * nx;
    double *eff = malloc(sizeof(double) * 4 * (size_t)ne); /* mean, var, dF, prob */
    char *name = NULL;
    if (!eff) {
        json_decref(effects);
        return cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
    }
    dcm_peb_effects(P, D->X, nsub, R0->pV, eff, eff + ne, eff + 2 * ne, eff + 3 * ne);
    for (int j = 0; j < nx; j++) {
        for (int q = 0; q < P->np; q++) {
            int idx = q + j * P->np;
            double m = eff[idx], v = eff[ne + idx], dF = eff[2 * ne + idx], prob = eff[3 * ne + idx];
            if (bma) {   /* the BMA of the search, and Pp */
                m = bma->Ep[idx];
                v = bma->Vp[idx];
                prob = bma->Pp[idx];
            }
            if (!isfinite(m) || !isfinite(v) || !isfinite(prob)) {
                json_decref(effects);
                free(eff);
                free(name);
                return cli_fail("peb", DCM_ERR_NUMERIC,
                              "the group-level inversion gave a non-finite %s for parameter %d x %s "
                              "(F = %g): check the subjects' results for extreme values", !isfinite(m) ? "mean" : "variance",
                              P->sel[q], D->covariates[j], P->F);
            }
            free(name);
            if (!(name = io_pname_name(S, P->sel[q]))) {
                json_decref(effects);
                free(eff);
                return cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
            }
            json_t *e = json_object();
            json_object_set_new(e, "parameter", json_string(name));
            json_object_set_new(e, "covariate", json_string(D->covariates[j]));
            json_object_set_new(e, "mean", json_real(m));
            json_object_set_new(e, "sd", json_real(sqrt(v)));
            json_object_set_new(e, "probability", json_real(prob));
            if (!bma)
                json_object_set_new(e, "dF_without", json_real(dF));
            json_array_append_new(effects, e);
            if (!as_json)
                printf("%-28s %-12s %10.4f %10.4f %12.4f%s\n", name, D->covariates[j], m, sqrt(v), prob,
                       prob > 0.95 ? " *" : "");
        }
    }
    json_object_set_new(o, "effects", effects);
    free(eff);
    free(name);
    return DCM_OK;
}

/* Each subject's posterior under the empirical (group) prior. */
static int report_subjects(const dcm_peb_result *P, const design *D, const io_result_summary *R,
                           const io_pname_space *S, json_t *o)
{
    const int np = R[0].np, nx = D->nx;
    if (R[0].rdcm) {   /* no joint covariance to condition on (per-region diagonals only) */
        json_object_set_new(o, "subjects", json_null());
        return DCM_OK;
    }
    double *sE = malloc(sizeof(double) * np);
    char *name = NULL;
    dcm_error err = {0, ""};
    json_t *subs = json_array();
    if (!sE) {
        json_decref(subs);
        return cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
    }
    for (int i = 0; i < D->nsub; i++) {
        double dF = 0.0;
        json_t *e = json_object();
        json_object_set_new(e, "subject", json_string(D->subjects[i]));
        int br = dcm_peb_subject_posterior(P, D->X + (size_t)i * nx, np, R[i].Ep, R[i].Cp, R[i].pE,
                                           R[i].pV, sE, &dF, &err);
        if (br != DCM_OK)
            fprintf(stderr, "dcm peb: warning: %s's posterior under the group prior could not be "
                    "computed; it is left out of \"subjects\"\n", D->subjects[i]);
        if (br == DCM_OK) {
            json_t *mv = json_object();
            for (int q = 0; q < P->np; q++) {
                free(name);
                name = io_pname_name(S, P->sel[q]);
                if (name)
                    json_object_set_new(mv, name, json_real(sE[P->sel[q]]));
            }
            json_object_set_new(e, "posterior_mean", mv);
            json_object_set_new(e, "dF", json_real(dF));
        }
        json_array_append_new(subs, e);
    }
    free(sE);
    free(name);
    json_object_set_new(o, "subjects", subs);
    return DCM_OK;
}

/* --q single|fields|all (and its older name --components): DCM_PEB_Q_* */
static int take_components(const cli_opt *opt, char *arg)
{
    static const char *const names[] = {"single", "fields", "all"};
    static const int codes[] = {DCM_PEB_Q_SINGLE, DCM_PEB_Q_FIELDS, DCM_PEB_Q_ALL};
    for (int k = 0; k < 3; k++)
        if (!strcmp(arg, names[k])) {
            *(int *)opt->value = codes[k];
            return 0;
        }
    return -1;
}

static const char *q_name(int q)
{
    return q == DCM_PEB_Q_ALL ? "all" : q == DCM_PEB_Q_FIELDS ? "fields" : "single";
}

/* A bare block name ("A", "B", "C", "D", "transit") selects the whole
 * block, as SPM's field names do: tried as given first, then as NAME:*. */
int select_params(const io_pname_space *S, const char *sel, unsigned char *mask, dcm_error *err)
{
    if (!io_pname_select(S, sel, mask, err))
        return DCM_OK;
    if (strchr(sel, ':') || strchr(sel, '*') || strlen(sel) > 32)
        return DCM_ERR_INPUT;
    char block[40];
    snprintf(block, sizeof block, "%s:*", sel);
    dcm_error e2 = {0, ""};
    if (io_pname_select(S, block, mask, &e2))
        return DCM_ERR_INPUT;   /* the first message says what is valid */
    return DCM_OK;
}

int peb_select(const io_result_summary *R0, const char *const *sels, int nsels, int *sel, int *nsel,
               dcm_error *err)
{
    const int np = R0->np;
    const io_pname_space S = io_result_space(R0);
    unsigned char *mask = calloc((size_t)(np > 0 ? np : 1), 1);
    if (!mask)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    int rc = DCM_OK;
    for (int k = 0; k < nsels && !rc; k++)
        rc = select_params(&S, sels[k], mask, err);
    *nsel = 0;
    for (int p = 0; p < np && !rc; p++)
        if (mask[p] && R0->pV[p] > 0)
            sel[(*nsel)++] = p;
    free(mask);
    return rc;
}

int peb_stack_subjects(const io_result_summary *R, int nsub, const int *sel, int nsel, peb_stack *s)
{
    memset(s, 0, sizeof *s);
    const int rd = R[0].rdcm != 0, np = rd ? nsel : R[0].np;
    s->np = np;
    s->rdcm = rd;
    const size_t n = (size_t)nsub * np;
    s->Ep = malloc(sizeof(double) * (n ? n : 1));
    s->Cp = calloc(n > 0 ? n * np : 1, sizeof(double));
    s->pE = malloc(sizeof(double) * (n ? n : 1));
    s->pV = malloc(sizeof(double) * (n ? n : 1));
    s->ksel = malloc(sizeof(int) * (nsel > 0 ? nsel : 1));
    if (!s->Ep || !s->Cp || !s->pE || !s->pV || !s->ksel)
        return DCM_ERR_SYSTEM;
    for (int q = 0; q < nsel; q++)
        s->ksel[q] = rd ? q : sel[q];
    for (int i = 0; i < nsub; i++) {
        if (!rd) {
            memcpy(s->Ep + (size_t)i * np, R[i].Ep, sizeof(double) * np);
            memcpy(s->Cp + (size_t)i * np * np, R[i].Cp, sizeof(double) * np * np);
            memcpy(s->pE + (size_t)i * np, R[i].pE, sizeof(double) * np);
            memcpy(s->pV + (size_t)i * np, R[i].pV, sizeof(double) * np);
            continue;
        }
        for (int q = 0; q < nsel; q++) {
            const size_t at = (size_t)i * nsel + q;
            s->Ep[at] = R[i].Ep[sel[q]];
            s->pE[at] = R[i].pE[sel[q]];
            s->pV[at] = R[i].pV[sel[q]];
            s->Cp[(size_t)i * nsel * nsel + (size_t)q * nsel + q] = R[i].Vp[sel[q]];
        }
    }
    return DCM_OK;
}

void peb_stack_unmap(const peb_stack *s, const int *sel, dcm_peb_result *P)
{
    for (int q = 0; s->rdcm && q < P->np; q++)
        P->sel[q] = sel[P->sel[q]];
}

void peb_stack_free(peb_stack *s)
{
    free(s->Ep);
    free(s->Cp);
    free(s->pE);
    free(s->pV);
    free(s->ksel);
    memset(s, 0, sizeof *s);
}

/* SPM's 'fields': one component per parameter block among the selected */
static int field_components(const io_result_summary *R0, const int *sel, int nsel, int *field,
                            int *nfield)
{
    model_layout T;
    if (R0->rdcm ? model_layout_init_rdcm(&T, R0->n, R0->m)
                 : model_layout_init(&T, R0->n, R0->m, R0->nd > 0, R0->two_state))
        return DCM_ERR_INPUT;
    int seen[MODEL_BLOCK_COUNT];
    for (int b = 0; b < MODEL_BLOCK_COUNT; b++)
        seen[b] = -1;
    *nfield = 0;
    for (int k = 0; k < nsel; k++) {
        int b = model_layout_locate(&T, sel[k], NULL, NULL, NULL);
        if (b < 0)
            return DCM_ERR_INPUT;
        if (seen[b] < 0)
            seen[b] = (*nfield)++;
        field[k] = seen[b];
    }
    return DCM_OK;
}

/* --subjects: comma-separated names, the option repeatable; keep only the
 * design rows listed (each must be in the design). */
static int keep_subjects(const char *cmd, design *D, const char *design_path, const char **lists,
                         int nlists)
{
    if (!nlists)
        return DCM_OK;
    int *keep = calloc((size_t)D->nsub, sizeof(int));
    if (!keep)
        return cli_fail(cmd, DCM_ERR_SYSTEM, "out of memory");
    int rc = DCM_OK;
    for (int l = 0; l < nlists && !rc; l++) {
        const char *p = lists[l];
        while (*p && !rc) {
            size_t len = strcspn(p, ",");
            int found = 0;
            for (int i = 0; i < D->nsub; i++)
                if (strlen(D->subjects[i]) == len && !strncmp(D->subjects[i], p, len))
                    keep[i] = found = 1;
            if (len && !found)
                rc = cli_fail(cmd, DCM_ERR_INPUT, "--subjects names '%.*s', who has no row in %s",
                              (int)len, p, design_path);
            p += len + (p[len] == ',');
        }
    }
    int n = 0;
    for (int i = 0; i < D->nsub && !rc; i++) {
        if (!keep[i]) {
            free(D->subjects[i]);
            continue;
        }
        D->subjects[n] = D->subjects[i];
        memmove(D->X + (size_t)n * D->nx, D->X + (size_t)i * D->nx, sizeof(double) * D->nx);
        n++;
    }
    if (!rc)
        D->nsub = n;
    free(keep);
    return rc;
}

/* "group": the second level as spm_dcm_peb returns it (PEB.F, Ep
 * parameters x covariates, Cp of vec(Ep) parameters fastest, Eh, Pnames,
 * Xnames, M) */
static int group_json(const dcm_peb_result *P, const design *D, const io_pname_space *S, int q,
                      int maxit, double alpha, double beta, double hE, double hC, json_t *o)
{
    json_t *g = json_object(), *names = json_array(), *xn = json_array(), *Ep = json_array(),
           *Cp = json_array();
    for (int k = 0; k < P->np; k++) {
        char *name = io_pname_name(S, P->sel[k]);
        if (!name) {
            json_decref(g);
            json_decref(names);
            json_decref(xn);
            json_decref(Ep);
            json_decref(Cp);
            return cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
        }
        json_array_append_new(names, json_string(name));
        free(name);
        json_array_append_new(Ep, cli_json_vec(P->Ep + (size_t)k * P->nx, P->nx));
    }
    for (int j = 0; j < P->nx; j++)
        json_array_append_new(xn, json_string(D->covariates[j]));
    const int nb = P->np * P->nx;
    for (int k = 0; k < nb; k++)
        json_array_append_new(Cp, cli_json_vec(P->Cp + (size_t)k * nb, nb));
    json_object_set_new(g, "F", json_real(P->F));
    json_object_set_new(g, "Pnames", names);
    json_object_set_new(g, "Xnames", xn);
    json_object_set_new(g, "Ep", Ep);
    json_object_set_new(g, "Cp", Cp);
    json_object_set_new(g, "Eh", cli_json_vec(P->Eh, P->ng));
    json_object_set_new(g, "Ch", cli_json_vec(P->Ch, P->ng * P->ng));
    json_object_set_new(g, "iterations", json_integer(P->iterations));
    json_object_set_new(g, "converged", json_boolean(P->converged));
    json_t *M = json_object();
    json_object_set_new(M, "Q", json_string(q_name(q)));
    json_object_set_new(M, "maxit", json_integer(maxit));
    json_object_set_new(M, "alpha", json_real(alpha));
    json_object_set_new(M, "beta", json_real(beta));
    json_object_set_new(M, "hE", json_real(hE));
    json_object_set_new(M, "hC", json_real(hC));
    json_object_set_new(g, "M", M);
    json_object_set_new(o, "group", g);
    return DCM_OK;
}

int cmd_peb(int argc, char **argv)
{
    if (peb_inputs_are_results(argc, argv))
        return cmd_peb_pebs(argc, argv);
    const char *outdir = NULL, *model = NULL, *design_path = NULL, *out_path = NULL, *mat_path = NULL;
    int as_json = 0, nsel_args = 0, q = DCM_PEB_Q_SINGLE, nsubj_args = 0;
    long maxit = 64;
    double alpha = 1.0, beta = 16.0, hE = 0.0, hC = 1.0 / 16.0;
    const char **sels = calloc((size_t)argc, sizeof *sels);
    const char **subj_args = calloc((size_t)argc, sizeof *subj_args);
    int *field = NULL, nfield = 0, search = 0;
    const char *models_path = NULL, *families_path = NULL;
    dcm_peb_search_result bma;
    memset(&bma, 0, sizeof bma);
    int rc = DCM_OK;
    io_batchdir B;
    memset(&B, 0, sizeof B);
    design D;
    memset(&D, 0, sizeof D);
    io_result_summary *R = NULL;
    int nR = 0;
    double *F = NULL;
    int *sel = NULL;
    peb_stack st = {0};
    dcm_peb_result P;
    memset(&P, 0, sizeof P);
    json_t *o = NULL;
    if (!sels || !subj_args) {
        free(sels);
        free(subj_args);
        return cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
    }
    const cli_opt options[] = {
        CLI_STRING(0, "model", &model, "NAME", "which model's results"),
        CLI_STRING(0, "design", &design_path, "FILE", "between-subject design matrix"),
        CLI_LIST(0, "params", sels, &nsel_args, "SEL",
                 "parameters treated as random effects: a name ('B:Words:rdF->rdF'), a pattern with * "
                 "('B:*', 'A:*->V5') or a block as SPM's field names ('A', 'B', 'C'); repeat to add"),
        CLI_LIST(0, "subjects", subj_args, &nsubj_args, "S1,S2,...",
                 "only these subjects (names as in the design; repeatable): a subset without copying "
                 "folders", .flags = CLI_OPT_NONEMPTY),
        CLI_GROUP("SPM's M fields (spm_dcm_peb):"),
        CLI_CALLBACK(0, "q", &q, "single|fields|all", take_components,
                     "between-subject precision components (M.Q): one for all (single, SPM's default), "
                     "one per parameter block (fields) or one per parameter (all, as the PEB tutorial)",
                     .invalid = "--q takes 'single', 'fields' or 'all'"),
        CLI_CALLBACK(0, "components", &q, "single|fields|all", take_components, "the same as --q",
                     .invalid = "--components takes 'single', 'fields' or 'all'"),
        CLI_INT(0, "maxit", &maxit, "N", 1, 100000,
                "most iterations (M.maxit; default 64 as SPM; the tutorial uses 256)"),
        CLI_DOUBLE(0, "alpha", &alpha, "A", "group-mean prior covariance = first-level prior / A (M.alpha, 1)",
                   .min = 0, .max = INFINITY, .bounds = CLI_BOUNDS_OPEN),
        CLI_DOUBLE(0, "beta", &beta, "B", "random-effect prior covariance = first-level prior / B (M.beta, 16)",
                   .min = 0, .max = INFINITY, .bounds = CLI_BOUNDS_OPEN),
        CLI_DOUBLE(0, "hE", &hE, "H", "prior mean of the between-subject log-precisions (M.hE, 0)"),
        CLI_DOUBLE(0, "hC", &hC, "V", "their prior variance (M.hC, 1/16)",
                   .min = 0, .max = INFINITY, .bounds = CLI_BOUNDS_OPEN),
        CLI_FLAG(0, "search", &search,
                 "search over reduced group models as spm_dcm_peb_bmc (spm_dcm_bmr_all over every group "
                 "effect): the effects become Bayesian model averages with Pp, the probability that each "
                 "is present (0 for one switched off)"),
        CLI_GROUP("hypotheses (spm_dcm_peb_bmc with a model space, spm_dcm_peb_bmc_fam):"),
        CLI_STRING(0, "models", &models_path, "SPACE.json",
                   "compare a space of reduced group models: each model switches the PEB's parameters on "
                   "or off ({\"models\": [{\"name\": ..., \"on\": [...]} or {..., \"off\": [...]}]}); "
                   "scored jointly on the first covariate (commonalities) x the second (differences), with "
                   "the posterior over models and each factor and the BMA (MANUAL 12.6)"),
        CLI_STRING(0, "families", &families_path, "FAMILIES.json",
                   "families of the --models space, one or more factors ({\"factors\": [{\"name\": ..., "
                   "\"bma\": \"ALL\"|\"WINNING\"|\"NONE\", \"families\": [{\"name\": ..., \"models\": "
                   "[names or patterns]}]}]}): family posteriors per factor under equal family priors"),
        CLI_GROUP("output:"),
        CLI_FLAG(0, "json", &as_json, "print JSON instead of a table"),
        CLI_STRING('o', "output", &out_path, "FILE", "also write the JSON to FILE (atomically)"),
        CLI_STRING(0, "mat", &mat_path, "FILE", "also write the PEB as SPM's struct (PEB.Snames, Pnames, Pind, "
                   "Xnames, M, Ep, Cp, Eh, Ch, Ce, F) to a .mat FILE"),
        CLI_END};
    const cli_command cmd = {"peb", usage, description, footer, options, 0};
    int npos;
    rc = cli_options_parse(&cmd, argc, argv, &npos);
    if (rc) {
        rc = rc == CLI_OPTIONS_HELP ? DCM_OK : rc;
        goto done;
    }
    if (npos > 1) {
        rc = cli_fail("peb", DCM_ERR_USAGE, "one OUTDIR at a time ('%s' is extra)", argv[2]);
        goto done;
    }
    if (npos)
        outdir = argv[1];
    if (families_path && !models_path) {
        rc = cli_fail("peb", DCM_ERR_USAGE, "--families needs --models SPACE.json (the models the families "
                      "group)");
        goto done;
    }
    if (!outdir || !model || !design_path || !nsel_args) {
        rc = cli_fail("peb", DCM_ERR_USAGE,
                      "give OUTDIR, --model NAME, --design DESIGN.tsv and --params SEL (see dcm peb --help)");
        goto done;
    }
    {
        cli_plan plan;
        cli_plan_init(&plan, "peb");
        cli_plan_batchdir(&plan, outdir);
        cli_plan_input(&plan, design_path, "--design");
        if (models_path)
            cli_plan_input(&plan, models_path, "--models");
        if (families_path)
            cli_plan_input(&plan, families_path, "--families");
        cli_plan_output(&plan, out_path, "-o");
        cli_plan_output(&plan, mat_path, "--mat");
        rc = cli_plan_check(&plan);
        cli_plan_free(&plan);
        if (rc)
            goto done;
    }
    dcm_error err = {0, ""};
    if ((rc = peb_load_subjects("peb", 2, outdir, model, design_path, subj_args, nsubj_args, &B, &D, &R, &nR, &F)))
        goto done;
    const int nsub = D.nsub, nx = D.nx;
    const int np = R[0].np;
    io_pname_space S = io_result_space(&R[0]);
    int nsel = 0;
    if (!(sel = malloc(sizeof(int) * np))) {
        rc = cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    if (peb_select(&R[0], (const char *const *)sels, nsel_args, sel, &nsel, &err)) {
        rc = cli_report("peb", &err);
        goto done;
    }
    if (!nsel) {
        rc = cli_fail("peb", DCM_ERR_INPUT, "the selected parameters are all fixed (prior variance 0) in %s",
                      R[0].path);
        goto done;
    }
    /* regression DCM: the first level is the selected parameters only,
       with the per-region posterior variances as a diagonal covariance
       (rDCM keeps no covariances between parameters) */
    if (peb_stack_subjects(R, nsub, sel, nsel, &st)) {
        rc = cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    const int rd = st.rdcm;
    if (models_path && (rc = peb_space_check(models_path, families_path, &S, sel, nsel)))
        goto done;
    if (q == DCM_PEB_Q_FIELDS &&
        (!(field = malloc(sizeof(int) * nsel)) || field_components(&R[0], sel, nsel, field, &nfield))) {
        rc = cli_fail("peb", field ? DCM_ERR_INPUT : DCM_ERR_SYSTEM,
                      field ? "cannot tell the fields of the parameters of %s" : "out of memory", R[0].path);
        goto done;
    }
    dcm_peb_input in = {.nsub = nsub, .np = st.np, .Ep = st.Ep, .Cp = st.Cp, .pE = st.pE, .pV = st.pV,
                        .F = F, .sel = st.ksel, .nsel = nsel, .X = D.X, .nx = nx, .q = q, .field = field,
                        .nfield = nfield, .maxit = (int)maxit, .alpha = alpha, .beta = beta,
                        .hE = hE, .hC = hC};
    if ((rc = dcm_peb(&in, &P, &err))) {
        rc = peb_failed(rc, &err, R, nsub, sel, nsel, np);
        goto done;
    }
    peb_stack_unmap(&st, sel, &P);
    if (rd && !as_json)
        printf("regression DCM: the first level uses each parameter's posterior variance (rDCM keeps "
               "per-region diagonals, no covariances)\n");
    int finite = isfinite(P.F);
    for (int g = 0; g < P.ng; g++)
        finite &= isfinite(P.Eh[g]);
    if (!finite) {
        rc = cli_fail("peb", DCM_ERR_NUMERIC,
                      "the group-level inversion gave a non-finite %s: check the subjects' results "
                      "and the design for extreme values", isfinite(P.F) ? "between-subject precision"
                                                                          : "free energy");
        goto done;
    }

    /* report: effects with their probability from reducing each alone
       (Savage-Dickey: the marginal posterior vs the prior at zero) */
    o = json_object();
    json_object_set_new(o, "model", json_string(model));
    json_object_set_new(o, "free_energy", json_real(P.F));
    json_object_set_new(o, "iterations", json_integer(P.iterations));
    json_object_set_new(o, "converged", json_boolean(P.converged));
    if (!P.converged)
        fprintf(stderr, "dcm peb: warning: stopped at --maxit %ld before converging (SPM's stopping "
                "rule not met); the PEB tutorial uses --maxit 256\n", maxit);
    if ((rc = group_json(&P, &D, &S, q, (int)maxit, alpha, beta, hE, hC, o)) ||
        (rc = peb_group_extras(o, &P, &D, R[0].pE, R[0].pV, alpha)))
        goto done;
    if (mat_path) {
        peb_mat_opts mo = {q_name(q), (int)maxit, alpha, beta, hE, hC};
        if ((rc = peb_write_mat(mat_path, &P, &D, &S, R[0].pE, R[0].pV, &mo)))
            goto done;
    }
    if (search && dcm_peb_search(&P, D.X, nsub, R[0].pE, R[0].pV, alpha, &bma, &err)) {
        rc = cli_report("peb", &err);
        goto done;
    }
    if ((rc = report_effects(&P, &D, &R[0], &S, model, search ? &bma : NULL, as_json, o)))
        goto done;
    json_object_set_new(o, "between_subject_log_precision", cli_json_vec(P.Eh, P.ng));
    if (search) {
        json_t *so = json_object();
        json_object_set_new(so, "method", json_string("spm_dcm_bmr_all over the group effects (spm_dcm_peb_bmc)"));
        json_object_set_new(so, "models_scored", json_integer(bma.nmodels));
        json_object_set_new(o, "search", so);
    } else if ((rc = group_reduction(&P, &D, R[0].pE, R[0].pV, &S, as_json, o)))
        goto done;
    if (models_path) {
        peb_space_input sp = {.models_path = models_path, .families_path = families_path, .P = &P,
                              .X = D.X, .nsub = nsub, .covariates = D.covariates, .pE = R[0].pE,
                              .pV = R[0].pV, .alpha = alpha, .S = &S};
        if ((rc = peb_space_report(&sp, as_json, o)))
            goto done;
    }
    if ((rc = report_subjects(&P, &D, R, &S, o)))
        goto done;
    json_t *cov = json_array();
    for (int j = 0; j < nx; j++)
        json_array_append_new(cov, json_string(D.covariates[j]));
    json_object_set_new(o, "covariates", cov);
    rc = cli_emit_json("peb", o, as_json, out_path);
done:
    for (int i = 0; i < nR; i++)
        io_result_summary_free(&R[i]);
    free(R);
    free(F);
    peb_stack_free(&st);
    free(sel);
    dcm_peb_result_free(&P);
    dcm_peb_search_result_free(&bma);
    json_decref(o);
    design_free(&D);
    io_batchdir_free(&B);
    free(sels);
    free(subj_args);
    free(field);
    return rc;
}
