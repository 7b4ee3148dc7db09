/* cmd_peb_pebs.c — `dcm peb` over PEB results (PEB of PEBs, as
 * spm_dcm_peb accepts PEB structs as its inputs: each group's Ep, Cp,
 * M.pE, M.pC and F take the place of a subject's posterior, prior and
 * free energy; parameters are named "COVARIATE: PARAMETER"), and the
 * outputs `dcm peb` adds for SPM (--mat, the group prior in the JSON). */
#include <fnmatch.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"
#include "dcm/cli/cli_peb.h"
#include "io/io_mat.h"

int peb_inputs_are_results(int argc, char **argv)
{
    struct stat st;
    return argc > 1 && argv[1][0] != '-' && !cli_is_help(argv[1]) && stat(argv[1], &st) == 0 &&
           S_ISREG(st.st_mode);
}

/* one input PEB: its group effects as a "subject" of the level above */
typedef struct {
    char *path, *stem;
    int np, nx, nb;
    char **names;        /* nb: "COVARIATE: PARAMETER" */
    double *Ep, *Cp, *pE, *pV, F;
} peb_in;

static void peb_in_free(peb_in *p)
{
    for (int k = 0; k < p->nb && p->names; k++)
        free(p->names[k]);
    free(p->names);
    free(p->path);
    free(p->stem);
    free(p->Ep);
    free(p->Cp);
    free(p->pE);
    free(p->pV);
    memset(p, 0, sizeof *p);
}

static int num_array(json_t *a, double *x, int n)
{
    if (!json_is_array(a) || (int)json_array_size(a) != n)
        return -1;
    for (int i = 0; i < n; i++) {
        json_t *v = json_array_get(a, (size_t)i);
        if (!json_is_number(v) || !isfinite(json_number_value(v)))
            return -1;
        x[i] = json_number_value(v);
    }
    return 0;
}

/* read PATH's "group" (a dcm peb -o result): Ep, Cp, F, M.pE, M.pC */
static int peb_in_load(const char *path, peb_in *p)
{
    memset(p, 0, sizeof *p);
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return cli_fail("peb", DCM_ERR_INPUT, "%s, line %d: not JSON (%s)", path, je.line, je.text);
    json_t *g = json_object_get(root, "group"), *M = json_object_get(g, "M");
    json_t *Ep = json_object_get(g, "Ep"), *Cp = json_object_get(g, "Cp"), *Pn = json_object_get(g, "Pnames"),
           *Xn = json_object_get(g, "Xnames");
    int rc = DCM_OK;
    if (!json_is_object(g) || !json_is_array(Ep) || !json_is_array(Pn) || !json_is_array(Xn) ||
        !json_is_number(json_object_get(g, "F"))) {
        rc = cli_fail("peb", DCM_ERR_INPUT, "%s is not a PEB result: it needs \"group\" with F, Ep, Cp, Pnames, "
                      "Xnames and M.pE, M.pC (as dcm peb -o writes)", path);
        goto done;
    }
    if (!json_is_array(json_object_get(M, "pE")) || !json_is_array(json_object_get(M, "pC"))) {
        rc = cli_fail("peb", DCM_ERR_INPUT, "%s has no group prior (\"group\".\"M\".\"pE\", \"pC\"): write it "
                      "again with this version of dcm peb", path);
        goto done;
    }
    p->np = (int)json_array_size(Pn);
    p->nx = (int)json_array_size(Xn);
    p->nb = p->np * p->nx;
    const int nb = p->nb;
    p->path = strdup(path);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    p->stem = strdup(base);
    char *dot = p->stem ? strrchr(p->stem, '.') : NULL;
    if (dot && !strcmp(dot, ".json"))
        *dot = 0;
    p->names = calloc((size_t)(nb ? nb : 1), sizeof(char *));
    p->Ep = malloc(sizeof(double) * (size_t)(nb ? nb : 1));
    p->Cp = malloc(sizeof(double) * (size_t)(nb ? nb * nb : 1));
    p->pE = malloc(sizeof(double) * (size_t)(nb ? nb : 1));
    p->pV = malloc(sizeof(double) * (size_t)(nb ? nb : 1));
    double *pC = malloc(sizeof(double) * (size_t)(nb ? nb * nb : 1));
    if (!p->path || !p->stem || !p->names || !p->Ep || !p->Cp || !p->pE || !p->pV || !pC) {
        free(pC);
        rc = cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    p->F = json_number_value(json_object_get(g, "F"));
    /* vec(Ep): parameters fastest within each covariate, as spm_vec */
    int bad = nb < 1;
    for (int j = 0; j < p->nx && !bad; j++)
        for (int q = 0; q < p->np && !bad; q++) {
            json_t *v = json_array_get(json_array_get(Ep, (size_t)q), (size_t)j);
            const char *pn = json_string_value(json_array_get(Pn, (size_t)q));
            const char *xn = json_string_value(json_array_get(Xn, (size_t)j));
            bad = !json_is_number(v) || !pn || !xn;
            if (!bad) {
                p->Ep[q + j * p->np] = json_number_value(v);
                size_t len = strlen(pn) + strlen(xn) + 3;
                if ((p->names[q + j * p->np] = malloc(len)))
                    snprintf(p->names[q + j * p->np], len, "%s: %s", xn, pn);
            }
        }
    for (int k = 0; k < nb && !bad; k++)
        bad = num_array(json_array_get(Cp, (size_t)k), p->Cp + (size_t)k * nb, nb) ||
              num_array(json_array_get(json_object_get(M, "pC"), (size_t)k), pC + (size_t)k * nb, nb);
    if (!bad)
        bad = num_array(json_object_get(M, "pE"), p->pE, nb);
    for (int k = 0; k < nb && !bad; k++) {
        p->pV[k] = pC[(size_t)k * nb + k];
        for (int l = 0; l < nb && !bad; l++)
            if (l != k && pC[(size_t)k * nb + l] != 0.0)
                bad = 2;
    }
    free(pC);
    if (bad)
        rc = cli_fail("peb", DCM_ERR_INPUT, "%s: \"group\" %s", path,
                      bad == 2 ? "has a group prior M.pC that is not diagonal (not supported)"
                               : "has Ep, Cp, M.pE or M.pC of the wrong size or with non-numbers");
    for (int k = 0; k < nb && !rc; k++)
        if (!p->names[k])
            rc = cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
done:
    json_decref(root);
    return rc;
}

/* the design over the inputs: rows named by file (path or stem) */
static int pebs_design(const char *dpath, const peb_in *P, int n, design *D, double **X, char ***xn, int *nx)
{
    if (!dpath) {
        *nx = 1;
        *X = malloc(sizeof(double) * n);
        *xn = calloc(1, sizeof(char *));
        if (!*X || !*xn || !((*xn)[0] = strdup("Mean")))
            return cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
        for (int i = 0; i < n; i++)
            (*X)[i] = 1.0;
        return DCM_OK;
    }
    dcm_error err = {0, ""};
    if (read_design(dpath, D, &err))
        return cli_report("peb", &err);
    *nx = D->nx;
    *X = malloc(sizeof(double) * n * D->nx);
    if (!*X)
        return cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
    *xn = D->covariates;
    for (int i = 0; i < n; i++) {
        int row = -1;
        for (int r = 0; r < D->nsub && row < 0; r++)
            if (!strcmp(D->subjects[r], P[i].path) || !strcmp(D->subjects[r], P[i].stem))
                row = r;
        if (row < 0)
            return cli_fail("peb", DCM_ERR_INPUT, "%s has no row for %s (name a row '%s' or '%s')", dpath,
                            P[i].path, P[i].stem, P[i].path);
        memcpy(*X + (size_t)i * D->nx, D->X + (size_t)row * D->nx, sizeof(double) * D->nx);
    }
    if (D->nsub != n)
        return cli_fail("peb", DCM_ERR_INPUT, "%s has %d rows but %d PEB results are given: one row per input",
                        dpath, D->nsub, n);
    return DCM_OK;
}

static int take_q(const cli_opt *opt, char *arg)
{
    if (!strcmp(arg, "single") || !strcmp(arg, "all")) {
        *(int *)opt->value = !strcmp(arg, "all") ? DCM_PEB_Q_ALL : DCM_PEB_Q_SINGLE;
        return 0;
    }
    return -1;
}

static json_t *pebs_json(const dcm_peb_result *R, char *const *names, char *const *xn, const peb_in *P, int n,
                         const double *pE, const double *pV, int q, int maxit)
{
    json_t *o = json_object(), *g = json_object(), *pn = json_array(), *xa = json_array(), *Ep = json_array(),
           *Cp = json_array(), *sn = json_array(), *eff = json_array();
    const int np = R->np, nx = R->nx, nb = np * nx;
    for (int k = 0; k < np; k++) {
        json_array_append_new(pn, json_string(names[R->sel[k]]));
        json_array_append_new(Ep, cli_json_vec(R->Ep + (size_t)k * nx, nx));
    }
    for (int j = 0; j < nx; j++)
        json_array_append_new(xa, json_string(xn[j]));
    for (int k = 0; k < nb; k++)
        json_array_append_new(Cp, cli_json_vec(R->Cp + (size_t)k * nb, nb));
    for (int i = 0; i < n; i++)
        json_array_append_new(sn, json_string(P[i].path));
    json_object_set_new(g, "F", json_real(R->F));
    json_object_set_new(g, "Snames", sn);
    json_object_set_new(g, "Pnames", pn);
    json_object_set_new(g, "Xnames", xa);
    json_object_set_new(g, "Ep", Ep);
    json_object_set_new(g, "Cp", Cp);
    json_object_set_new(g, "Eh", cli_json_vec(R->Eh, R->ng));
    json_object_set_new(g, "Ch", cli_json_vec(R->Ch, R->ng * R->ng));
    json_object_set_new(g, "iterations", json_integer(R->iterations));
    json_object_set_new(g, "converged", json_boolean(R->converged));
    json_t *M = json_object();
    json_object_set_new(M, "Q", json_string(q == DCM_PEB_Q_ALL ? "all" : "single"));
    json_object_set_new(M, "maxit", json_integer(maxit));
    /* the group prior of this level, so that it can be an input again */
    double *mp = malloc(sizeof(double) * (size_t)nb), *mc = calloc((size_t)nb * nb, sizeof(double));
    if (mp && mc) {
        for (int j = 0; j < nx; j++)
            for (int k = 0; k < np; k++)
                mp[k + j * np] = j == 0 ? pE[R->sel[k]] : 0.0;
        json_object_set_new(M, "pE", cli_json_vec(mp, nb));
        json_t *pc = json_array();
        for (int k = 0; k < nb; k++) {
            mc[(size_t)k * nb + k] = pV[k];
            json_array_append_new(pc, cli_json_vec(mc + (size_t)k * nb, nb));
        }
        json_object_set_new(M, "pC", pc);
    }
    free(mp);
    free(mc);
    json_object_set_new(g, "M", M);
    for (int j = 0; j < nx; j++)
        for (int k = 0; k < np; k++) {
            int idx = k + j * np;
            json_t *e = json_object();
            json_object_set_new(e, "parameter", json_string(names[R->sel[k]]));
            json_object_set_new(e, "covariate", json_string(xn[j]));
            json_object_set_new(e, "mean", json_real(R->Ep[k * nx + j]));
            json_object_set_new(e, "sd", json_real(sqrt(R->Cp[(size_t)idx * nb + idx])));
            json_array_append_new(eff, e);
        }
    json_object_set_new(o, "kind", json_string("peb_of_pebs"));
    json_object_set_new(o, "free_energy", json_real(R->F));
    json_object_set_new(o, "iterations", json_integer(R->iterations));
    json_object_set_new(o, "converged", json_boolean(R->converged));
    json_object_set_new(o, "group", g);
    json_object_set_new(o, "effects", eff);
    return o;
}

int cmd_peb_pebs(int argc, char **argv)
{
    const char *dpath = NULL, *out_path = NULL;
    int as_json = 0, nsel_args = 0, q = DCM_PEB_Q_SINGLE;
    long maxit = 64;
    double alpha = 1.0, beta = 16.0, hE = 0.0, hC = 1.0 / 16.0;
    const char **sels = calloc((size_t)argc + 1, sizeof *sels);
    peb_in *P = calloc((size_t)argc + 1, sizeof *P);
    design D;
    memset(&D, 0, sizeof D);
    double *X = NULL, *Ep = NULL, *Cp = NULL, *pE = NULL, *pV = NULL, *F = NULL, *gV = NULL;
    char **xn = NULL;
    int nx = 0, n = 0, *sel = NULL;
    dcm_peb_result R;
    memset(&R, 0, sizeof R);
    json_t *o = NULL;
    int rc = DCM_OK;
    if (!sels || !P) {
        rc = cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    static const char *const usage[] = {
        "PEB1.json PEB2.json [...] [--design DESIGN.tsv] [--params PATTERN ...] [--q single|all]\n"
        "               [--maxit N] [--alpha A] [--beta B] [--hE H] [--hC V] [--json] [-o PEB.json]",
        NULL};
    const cli_opt options[] = {
        CLI_STRING(0, "design", &dpath, "FILE",
                   "design over the inputs: a 'subject' column naming each input (its path, or its file "
                   "name without .json), then the covariates (default: a constant, Mean)"),
        CLI_LIST(0, "params", sels, &nsel_args, "PATTERN",
                 "group effects treated as random effects, by name 'COVARIATE: PARAMETER' with * allowed "
                 "('Mean: B:*'); default all"),
        CLI_CALLBACK(0, "q", &q, "single|all", take_q, "precision components (M.Q; default single)",
                     .invalid = "--q takes 'single' or 'all' for PEB results"),
        CLI_INT(0, "maxit", &maxit, "N", 1, 100000, "most iterations (M.maxit, 64)"),
        CLI_DOUBLE(0, "alpha", &alpha, "A", "M.alpha (1)", .min = 0, .max = INFINITY, .bounds = CLI_BOUNDS_OPEN),
        CLI_DOUBLE(0, "beta", &beta, "B", "M.beta (16)", .min = 0, .max = INFINITY, .bounds = CLI_BOUNDS_OPEN),
        CLI_DOUBLE(0, "hE", &hE, "H", "M.hE (0)"),
        CLI_DOUBLE(0, "hC", &hC, "V", "M.hC (1/16)", .min = 0, .max = INFINITY, .bounds = CLI_BOUNDS_OPEN),
        CLI_FLAG(0, "json", &as_json, "print JSON instead of a table"),
        CLI_STRING('o', "output", &out_path, "FILE", "also write the JSON to FILE (atomically)"),
        CLI_END};
    const cli_command cmd = {"peb", usage,
                             "PEB of PEBs (spm_dcm_peb with PEB structs as inputs): each input's group "
                             "effects (Ep, Cp) with its group prior (M.pE, M.pC) and F are one 'subject' "
                             "of a third level.\n",
                             "example:\n  dcm peb young.json old.json --design groups.tsv -o both.json\n",
                             options, 0};
    int npos;
    rc = cli_options_parse(&cmd, argc, argv, &npos);
    if (rc) {
        rc = rc == CLI_OPTIONS_HELP ? DCM_OK : rc;
        goto done;
    }
    n = npos;
    if (n < 2) {
        rc = cli_fail("peb", DCM_ERR_USAGE, "PEB of PEBs needs at least two PEB results (%d given)", n);
        goto done;
    }
    {
        cli_plan plan;
        cli_plan_init(&plan, "peb");
        for (int i = 0; i < n; i++)
            cli_plan_input(&plan, argv[1 + i], "the PEB result");
        cli_plan_input(&plan, dpath, "--design");
        cli_plan_output(&plan, out_path, "-o");
        rc = cli_plan_check(&plan);
        cli_plan_free(&plan);
        if (rc)
            goto done;
    }
    for (int i = 0; i < n; i++) {
        if ((rc = peb_in_load(argv[1 + i], &P[i])))
            goto done;
        if (P[i].nb != P[0].nb) {
            rc = cli_fail("peb", DCM_ERR_INPUT, "%s has %d group effects but %s has %d: the inputs must be "
                          "PEBs of the same parameters and covariates", P[i].path, P[i].nb, P[0].path, P[0].nb);
            goto done;
        }
        for (int k = 0; k < P[0].nb; k++)
            if (strcmp(P[i].names[k], P[0].names[k])) {
                rc = cli_fail("peb", DCM_ERR_INPUT, "%s's group effect %d is '%s' but %s's is '%s'", P[i].path,
                              k + 1, P[i].names[k], P[0].path, P[0].names[k]);
                goto done;
            }
    }
    if ((rc = pebs_design(dpath, P, n, &D, &X, &xn, &nx)))
        goto done;
    const int nb = P[0].nb;
    Ep = malloc(sizeof(double) * n * nb);
    Cp = malloc(sizeof(double) * n * nb * nb);
    pE = malloc(sizeof(double) * n * nb);
    pV = malloc(sizeof(double) * n * nb);
    F = malloc(sizeof(double) * n);
    sel = malloc(sizeof(int) * nb);
    gV = calloc((size_t)nb * nx, sizeof(double));
    if (!Ep || !Cp || !pE || !pV || !F || !sel || !gV) {
        rc = cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        memcpy(Ep + (size_t)i * nb, P[i].Ep, sizeof(double) * nb);
        memcpy(Cp + (size_t)i * nb * nb, P[i].Cp, sizeof(double) * nb * nb);
        memcpy(pE + (size_t)i * nb, P[i].pE, sizeof(double) * nb);
        memcpy(pV + (size_t)i * nb, P[i].pV, sizeof(double) * nb);
        F[i] = P[i].F;
    }
    int nsel = 0;
    for (int k = 0; k < nb; k++) {
        int want = nsel_args == 0;
        for (int a = 0; a < nsel_args && !want; a++)
            want = !fnmatch(sels[a], P[0].names[k], 0);
        if (want && P[0].pV[k] > 0)
            sel[nsel++] = k;
    }
    if (!nsel) {
        rc = cli_fail("peb", DCM_ERR_INPUT, "no group effect with a prior variance matches --params; the "
                      "effects are named like '%s'", P[0].names[0]);
        goto done;
    }
    dcm_peb_input in = {.nsub = n, .np = nb, .Ep = Ep, .Cp = Cp, .pE = pE, .pV = pV, .F = F, .sel = sel,
                        .nsel = nsel, .X = X, .nx = nx, .q = q, .maxit = (int)maxit, .alpha = alpha,
                        .beta = beta, .hE = hE, .hC = hC};
    dcm_error err = {0, ""};
    if (dcm_peb(&in, &R, &err)) {
        rc = cli_report("peb", &err);
        goto done;
    }
    /* this level's group prior, as spm_dcm_peb's PEB.M: mean of the
       inputs' priors, / alpha, scaled by n / sum(X(:,j)^2) */
    for (int j = 0; j < nx; j++) {
        double sx = 0.0;
        for (int i = 0; i < n; i++)
            sx += X[(size_t)i * nx + j] * X[(size_t)i * nx + j];
        for (int k = 0; k < nsel; k++) {
            double m = 0.0;
            for (int i = 0; i < n; i++)
                m += pV[(size_t)i * nb + sel[k]] / n;
            gV[k + j * nsel] = m / alpha * n / sx;
        }
    }
    if (!R.converged)
        fprintf(stderr, "dcm peb: warning: stopped at --maxit %ld before converging\n", maxit);
    o = pebs_json(&R, P[0].names, xn, P, n, P[0].pE, gV, q, (int)maxit);
    if (!as_json) {
        printf("PEB of %d PEBs: F = %.4f (%d iterations%s)\n\n%-40s %-12s %10s %10s\n", n, R.F, R.iterations,
               R.converged ? "" : ", NOT converged", "group effect", "covariate", "mean", "sd");
        for (int j = 0; j < nx; j++)
            for (int k = 0; k < R.np; k++) {
                int idx = k + j * R.np;
                printf("%-40s %-12s %10.4f %10.4f\n", P[0].names[R.sel[k]], xn[j], R.Ep[k * nx + j],
                       sqrt(R.Cp[(size_t)idx * R.np * nx + idx]));
            }
    }
    rc = cli_emit_json("peb", o, as_json, out_path);
done:
    for (int i = 0; i < n && P; i++)
        peb_in_free(&P[i]);
    if (!dpath && xn) {
        free(xn[0]);
        free(xn);
    }
    free(P);
    free(sels);
    free(X);
    free(Ep);
    free(Cp);
    free(pE);
    free(pV);
    free(F);
    free(gV);
    free(sel);
    dcm_peb_result_free(&R);
    json_decref(o);
    design_free(&D);
    return rc;
}

/* ------------------------------------------------ outputs of dcm peb */

/* spm_dcm_peb's PEB.M.pE and the diagonal of PEB.M.pC: the first-level
 * prior of the selected parameters for the first covariate (0 for the
 * others), variance pV / alpha scaled by nsub / sum(X(:,j)^2) */
static int group_prior(const dcm_peb_result *P, const double *X, int nsub, const double *pE0, const double *pV,
                       double alpha, double **gE, double **gC)
{
    const int np = P->np, nx = P->nx, nb = np * nx;
    *gE = calloc((size_t)nb, sizeof(double));
    *gC = calloc((size_t)nb * nb, sizeof(double));
    if (!*gE || !*gC)
        return -1;
    for (int j = 0; j < nx; j++) {
        double sx = 0.0;
        for (int i = 0; i < nsub; i++)
            sx += X[(size_t)i * nx + j] * X[(size_t)i * nx + j];
        for (int k = 0; k < np; k++) {
            int idx = k + j * np;
            (*gE)[idx] = j == 0 ? pE0[P->sel[k]] : 0.0;
            (*gC)[(size_t)idx * nb + idx] = pV[P->sel[k]] / (alpha > 0 ? alpha : 1.0) * nsub / sx;
        }
    }
    return 0;
}

int peb_group_extras(json_t *o, const dcm_peb_result *P, const design *D, const double *pE0, const double *pV,
                     double alpha)
{
    json_t *g = json_object_get(o, "group"), *M = json_object_get(g, "M");
    double *gE = NULL, *gC = NULL;
    if (!g || !M || group_prior(P, D->X, D->nsub, pE0, pV, alpha, &gE, &gC)) {
        free(gE);
        free(gC);
        return cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
    }
    const int nb = P->np * P->nx;
    json_t *sn = json_array(), *pind = json_array(), *pc = json_array();
    for (int i = 0; i < D->nsub; i++)
        json_array_append_new(sn, json_string(D->subjects[i]));
    for (int k = 0; k < P->np; k++)
        json_array_append_new(pind, json_integer(P->sel[k] + 1));
    for (int k = 0; k < nb; k++)
        json_array_append_new(pc, cli_json_vec(gC + (size_t)k * nb, nb));
    json_object_set_new(g, "Snames", sn);
    json_object_set_new(g, "Pind", pind);
    json_object_set_new(M, "pE", cli_json_vec(gE, nb));
    json_object_set_new(M, "pC", pc);
    free(gE);
    free(gC);
    return DCM_OK;
}

int peb_write_mat(const char *path, const dcm_peb_result *P, const design *D, const io_pname_space *S,
                  const double *pE0, const double *pV, const peb_mat_opts *mo)
{
    double *gE = NULL, *gC = NULL;
    char **pn = calloc((size_t)P->np + 1, sizeof(char *));
    int rc = DCM_OK;
    if (!pn || group_prior(P, D->X, D->nsub, pE0, pV, mo->alpha, &gE, &gC))
        rc = cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
    for (int k = 0; k < P->np && !rc; k++)
        if (!(pn[k] = io_pname_spm_name(S, P->sel[k])))
            rc = cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
    if (!rc) {
        io_mat_peb m = {.nsub = D->nsub, .np = P->np, .nx = P->nx, .ng = P->ng, .Snames = D->subjects,
                        .Pnames = pn, .Pind = P->sel, .Xnames = D->covariates, .X = D->X, .Ep = P->Ep,
                        .Cp = P->Cp, .Eh = P->Eh, .Ch = P->Ch, .Ce = P->Ce, .pE = gE, .pC = gC, .hE = mo->hE,
                        .hC = mo->hC, .Q = mo->Q, .alpha = mo->alpha, .beta = mo->beta, .maxit = mo->maxit,
                        .F = P->F};
        dcm_error err = {0, ""};
        if (io_mat_write_peb(path, &m, &err))
            rc = cli_report("peb", &err);
    }
    for (int k = 0; pn && k < P->np; k++)
        free(pn[k]);
    free(pn);
    free(gE);
    free(gC);
    return rc;
}
