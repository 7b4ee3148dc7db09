/* cmd_peb_space.c — the model space and families of `dcm peb` (see
 * cmd_peb_space.h): reading SPACE.json and FAMILIES.json, and the tables. */
#define _XOPEN_SOURCE 700 /* fnmatch */
#include "dcm/cli/cmd_peb_space.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dcm/cli/cli.h"
#include "dcm/dcm_peb_space.h"
#include "io/io_atomic.h"
#include "io/io_result.h"

/* A model space as read: names and rows of K (nm x np over the PEB's
 * parameters), before duplicates are dropped. */
typedef struct {
    int nm, np;
    char **names;
    unsigned char *K;
} space_def;

static void space_def_free(space_def *d)
{
    for (int m = 0; m < d->nm && d->names; m++)
        free(d->names[m]);
    free(d->names);
    free(d->K);
    memset(d, 0, sizeof *d);
}

/* Parameters of the first level matched by sel (a name, a pattern with *,
 * or a bare block as SPM's fields: "B" = "B:*"); *pattern = 1 when sel
 * may match several. */
static int match_params(const io_pname_space *S, const char *sel, unsigned char *mask, int *pattern,
                        dcm_error *err)
{
    *pattern = strchr(sel, '*') != NULL;
    if (!io_pname_select(S, sel, mask, err))
        return DCM_OK;
    if (strchr(sel, ':') || strchr(sel, '*') || strlen(sel) > 32)
        return DCM_ERR_INPUT;
    char block[40];
    snprintf(block, sizeof block, "%s:*", sel);
    dcm_error e2 = {0, ""};
    if (io_pname_select(S, block, mask, &e2))
        return DCM_ERR_INPUT; /* the first message says what is valid */
    *pattern = 1;
    return DCM_OK;
}

/* "B:Pictures:lvF->lvF, B:Words:lvF->lvF, ..." (malloc'd) */
static char *peb_names(const peb_space_input *in)
{
    size_t cap = 1, len = 0;
    char *s = calloc(1, 1);
    for (int q = 0; q < in->P->np && s; q++) {
        char *name = io_pname_name(in->S, in->P->sel[q]);
        if (!name)
            break;
        cap = len + strlen(name) + 3;
        char *t = realloc(s, cap);
        if (!t) {
            free(name);
            break;
        }
        s = t;
        len += (size_t)sprintf(s + len, "%s%s", q ? ", " : "", name);
        free(name);
    }
    return s;
}

/* One model's "on" or "off" list into row (np over the PEB's parameters). */
static int model_row(const peb_space_input *in, const char *path, const char *model, json_t *list,
                     const char *key, unsigned char *row, unsigned char *mask, int nall)
{
    const int np = in->P->np, on = !strcmp(key, "on");
    memset(row, on ? 0 : 1, (size_t)np);
    if (json_is_string(list)) { /* one name alone */
        json_t *a = json_array();
        json_array_append(a, list);
        int rc = model_row(in, path, model, a, key, row, mask, nall);
        json_decref(a);
        return rc;
    }
    if (!json_is_array(list))
        return cli_fail("peb", DCM_ERR_INPUT, "%s, model '%s': \"%s\" must be a list of parameter names "
                        "(e.g. [\"B:Words:rdF->rdF\", \"B:*:lvF->lvF\"])", path, model, key);
    size_t k;
    json_t *v;
    json_array_foreach(list, k, v) {
        const char *sel = json_string_value(v);
        if (!sel)
            return cli_fail("peb", DCM_ERR_INPUT, "%s, model '%s': entry %zu of \"%s\" is not a string",
                            path, model, k + 1, key);
        memset(mask, 0, (size_t)nall);
        int pattern = 0;
        dcm_error err = {0, ""};
        if (match_params(in->S, sel, mask, &pattern, &err))
            return cli_fail("peb", DCM_ERR_INPUT, "%s, model '%s', \"%s\": %s", path, model, key, err.msg);
        int hits = 0;
        for (int q = 0; q < np; q++)
            if (mask[in->P->sel[q]]) {
                row[q] = (unsigned char)on;
                mask[in->P->sel[q]] = 0;
                hits++;
            }
        int outside = 0;
        for (int p = 0; p < nall; p++)
            outside |= mask[p];
        if ((!pattern && outside) || !hits) {
            char *names = peb_names(in);
            int rc = cli_fail("peb", DCM_ERR_INPUT,
                              "%s, model '%s': \"%s\" names '%s', %s; the PEB's parameters (--params) "
                              "are: %s", path, model, key, sel,
                              pattern ? "which matches no parameter of the PEB" : "which is not a "
                              "parameter of the PEB", names ? names : "(out of memory)");
            free(names);
            return rc;
        }
    }
    return DCM_OK;
}

/* SPACE.json: {"models": [{"name": ..., "on"|"off": [...]}, ...]} or the
 * list alone */
static int read_space(const peb_space_input *in, space_def *d)
{
    const char *path = in->models_path;
    memset(d, 0, sizeof *d);
    dcm_error err = {0, ""};
    json_t *root = io_json_load(path, "model space", 0, &err);
    if (!root)
        return cli_report("peb", &err);
    json_t *models = json_is_array(root) ? root : json_object_get(root, "models");
    int rc = DCM_OK;
    const int nall = io_pname_count(in->S);
    unsigned char *mask = malloc((size_t)nall);
    if (!json_is_array(models)) {
        rc = cli_fail("peb", DCM_ERR_INPUT, "%s: a model space is {\"models\": [{\"name\": ..., \"on\": "
                      "[parameters]} or {\"name\": ..., \"off\": [parameters]}, ...]}", path);
        goto done;
    }
    d->np = in->P->np;
    size_t nm = json_array_size(models);
    if (!nm) {
        rc = cli_fail("peb", DCM_ERR_INPUT, "%s: the model space is empty (\"models\" lists no model)", path);
        goto done;
    }
    d->names = calloc(nm, sizeof(char *));
    d->K = malloc(nm * (size_t)d->np);
    if (!mask || !d->names || !d->K) {
        rc = cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    for (size_t m = 0; m < nm && !rc; m++) {
        json_t *e = json_array_get(models, m);
        const char *name = json_string_value(json_object_get(e, "name"));
        if (!json_is_object(e) || !name || !*name) {
            rc = cli_fail("peb", DCM_ERR_INPUT, "%s: model %zu needs a \"name\" (a non-empty string)", path, m + 1);
            break;
        }
        const char *key;
        json_t *v;
        json_object_foreach(e, key, v) {
            if (strcmp(key, "name") && strcmp(key, "on") && strcmp(key, "off") && strcmp(key, "description")) {
                rc = cli_fail("peb", DCM_ERR_INPUT, "%s, model '%s': unknown key \"%s\" (a model has "
                              "\"name\", \"on\" or \"off\", and optionally \"description\")", path, name, key);
                break;
            }
        }
        for (size_t e2 = 0; e2 < m && !rc; e2++)
            if (!strcmp(d->names[e2], name))
                rc = cli_fail("peb", DCM_ERR_INPUT, "%s: models %zu and %zu are both named '%s': names must "
                              "be unique", path, e2 + 1, m + 1, name);
        if (rc)
            break;
        json_t *on = json_object_get(e, "on"), *off = json_object_get(e, "off");
        if (!on == !off) {
            rc = cli_fail("peb", DCM_ERR_INPUT, "%s, model '%s': give either \"on\" (the parameters it "
                          "keeps; the others are off) or \"off\" (the parameters it switches off), not %s",
                          path, name, on ? "both" : "neither");
            break;
        }
        if (!(d->names[m] = strdup(name))) {
            rc = cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
            break;
        }
        d->nm = (int)m + 1;
        rc = model_row(in, path, name, on ? on : off, on ? "on" : "off", d->K + m * (size_t)d->np, mask, nall);
    }
done:
    free(mask);
    json_decref(root);
    if (rc)
        space_def_free(d);
    return rc;
}

static json_t *json_matrix(const double *A, int rows, int cols)
{
    json_t *a = json_array();
    for (int i = 0; i < rows; i++)
        json_array_append_new(a, cli_json_vec(A + (size_t)i * cols, cols));
    return a;
}

/* "effects" of a BMA: the shape of dcm peb's effects (Pp NULL: left out) */
static json_t *bma_effects(const peb_space_input *in, const double *Ep, const double *Vp,
                           const double *Pp, int print)
{
    const dcm_peb_result *P = in->P;
    json_t *eff = json_array();
    if (print)
        printf("%-28s %-12s %10s %10s%s\n", "parameter", "covariate", "BMA mean", "sd", Pp ? "         Pp" : "");
    for (int j = 0; j < P->nx; j++)
        for (int q = 0; q < P->np; q++) {
            int k = q + j * P->np;
            char *name = io_pname_name(in->S, P->sel[q]);
            json_t *e = json_object();
            json_object_set_new(e, "parameter", json_string(name ? name : "?"));
            json_object_set_new(e, "covariate", json_string(in->covariates[j]));
            json_object_set_new(e, "mean", json_real(Ep[k]));
            json_object_set_new(e, "sd", json_real(sqrt(Vp[k])));
            if (Pp)
                json_object_set_new(e, "probability", json_real(Pp[k]));
            json_array_append_new(eff, e);
            if (print && Pp)
                printf("%-28s %-12s %10.4f %10.4f %10.4f%s\n", name ? name : "?", in->covariates[j], Ep[k],
                       sqrt(Vp[k]), Pp[k], Pp[k] > 0.95 ? " *" : "");
            else if (print)
                printf("%-28s %-12s %10.4f %10.4f\n", name ? name : "?", in->covariates[j], Ep[k], sqrt(Vp[k]));
            free(name);
        }
    return eff;
}

/* Per parameter: SPM's Pw (commonalities) and Px (differences) */
static json_t *parameter_probs(const peb_space_input *in, const double *Pw, const double *Px, int print)
{
    json_t *a = json_array();
    if (print)
        printf("%-28s %14s%s%s\n", "parameter", "P(on) common", Px ? "  P(on) diff. " : "", "");
    for (int q = 0; q < in->P->np; q++) {
        char *name = io_pname_name(in->S, in->P->sel[q]);
        json_t *e = json_object();
        json_object_set_new(e, "parameter", json_string(name ? name : "?"));
        json_object_set_new(e, "Pw", json_real(Pw[q]));
        if (Px)
            json_object_set_new(e, "Px", json_real(Px[q]));
        json_array_append_new(a, e);
        if (print && Px)
            printf("%-28s %14.4f %13.4f\n", name ? name : "?", Pw[q], Px[q]);
        else if (print)
            printf("%-28s %14.4f\n", name ? name : "?", Pw[q]);
        free(name);
    }
    return a;
}

/* ---------------------------------------------------------------- families */

/* every family of a factor has a model (after repeated models are
 * dropped) */
static int families_nonempty(const char *path, const char *factor, const int *fam, int nkept,
                             char *const *fam_names, int nfam)
{
    for (int f = 0; f < nfam; f++) {
        int n = 0;
        for (int m = 0; m < nkept; m++)
            n += fam[m] == f;
        if (!n)
            return cli_fail("peb", DCM_ERR_INPUT, "%s, factor '%s': family '%s' has no model", path, factor,
                            fam_names[f]);
    }
    return DCM_OK;
}

/* fam[m] for each kept model from one factor's "families": a list of
 * {"name", "models": [names or patterns]} or an object name -> models, or
 * "membership": SPM's vector (1-based, one per model listed in SPACE). */
static int factor_membership(const char *path, const char *factor, json_t *fams, json_t *membership,
                             const space_def *d, const unsigned char *keep, const int *kept_index,
                             int nkept, int *fam, char ***fam_names, int *nfam)
{
    *nfam = 0;
    *fam_names = NULL;
    for (int m = 0; m < nkept; m++)
        fam[m] = -1;
    if (membership) {
        if (!json_is_array(membership) || json_array_size(membership) != (size_t)d->nm)
            return cli_fail("peb", DCM_ERR_INPUT, "%s, factor '%s': \"membership\" must list one family "
                            "number (1, 2, ...) per model of the space (%d)", path, factor, d->nm);
        int maxf = 0;
        for (int m = 0; m < d->nm; m++) {
            json_t *v = json_array_get(membership, (size_t)m);
            json_int_t f = json_is_integer(v) ? json_integer_value(v) : 0;
            if (f < 1 || f > d->nm)
                return cli_fail("peb", DCM_ERR_INPUT, "%s, factor '%s': \"membership\" entry %d (model '%s') "
                                "must be a family number from 1", path, factor, m + 1, d->names[m]);
            maxf = f > maxf ? (int)f : maxf;
            if (keep[m])
                fam[kept_index[m]] = (int)f - 1;
        }
        *nfam = maxf;
        *fam_names = calloc((size_t)maxf, sizeof(char *));
        if (!*fam_names)
            return cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
        for (int f = 0; f < maxf; f++) {
            char buf[32];
            snprintf(buf, sizeof buf, "%d", f + 1);
            if (!((*fam_names)[f] = strdup(buf)))
                return cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
        }
        return families_nonempty(path, factor, fam, nkept, *fam_names, *nfam);
    }
    int obj = json_is_object(fams);
    size_t n = obj ? json_object_size(fams) : json_array_size(fams);
    if ((!obj && !json_is_array(fams)) || n < 1)
        return cli_fail("peb", DCM_ERR_INPUT, "%s, factor '%s': \"families\" must list the families, e.g. "
                        "[{\"name\": \"Words\", \"models\": [\"words *\"]}, ...]", path, factor);
    *fam_names = calloc(n, sizeof(char *));
    if (!*fam_names)
        return cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
    void *it = obj ? json_object_iter(fams) : NULL;
    for (size_t f = 0; f < n; f++) {
        const char *fname;
        json_t *list;
        if (obj) {
            fname = json_object_iter_key(it);
            list = json_object_iter_value(it);
            it = json_object_iter_next(fams, it);
        } else {
            json_t *e = json_array_get(fams, f);
            fname = json_string_value(json_object_get(e, "name"));
            list = json_object_get(e, "models");
            if (!fname || !*fname)
                return cli_fail("peb", DCM_ERR_INPUT, "%s, factor '%s': family %zu needs a \"name\"", path,
                                factor, f + 1);
        }
        for (size_t g = 0; g < f; g++)
            if (!strcmp((*fam_names)[g], fname))
                return cli_fail("peb", DCM_ERR_INPUT, "%s, factor '%s': two families are named '%s'", path,
                                factor, fname);
        if (!((*fam_names)[f] = strdup(fname)))
            return cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
        *nfam = (int)f + 1;
        if (json_is_string(list)) {
            json_t *a = json_array();
            json_array_append(a, list);
            list = a;
        } else
            json_incref(list);
        if (!json_is_array(list) || !json_array_size(list)) {
            json_decref(list);
            return cli_fail("peb", DCM_ERR_INPUT, "%s, factor '%s', family '%s': \"models\" must list model "
                            "names of the space (patterns with * allowed)", path, factor, fname);
        }
        size_t k;
        json_t *v;
        json_array_foreach(list, k, v) {
            const char *pat = json_string_value(v);
            int hits = 0;
            for (int m = 0; pat && m < d->nm; m++) {
                if (fnmatch(pat, d->names[m], 0))
                    continue;
                hits++;
                if (!keep[m]) /* a duplicate: compared as the model it repeats */
                    continue;
                int km = kept_index[m];
                if (fam[km] >= 0 && fam[km] != (int)f) {
                    int rc = cli_fail("peb", DCM_ERR_INPUT, "%s, factor '%s': model '%s' is in two families "
                                      "('%s' and '%s'); each model belongs to one", path, factor, d->names[m],
                                      (*fam_names)[fam[km]], fname);
                    json_decref(list);
                    return rc;
                }
                fam[km] = (int)f;
            }
            if (!hits) {
                int rc = cli_fail("peb", DCM_ERR_INPUT, "%s, factor '%s', family '%s': '%s' %s", path, factor,
                                  fname, pat ? pat : "(not a string)",
                                  pat ? "names no model of the space" : "must be a model name");
                json_decref(list);
                return rc;
            }
        }
        json_decref(list);
    }
    for (int m = 0; m < d->nm; m++)
        if (keep[m] && fam[kept_index[m]] < 0)
            return cli_fail("peb", DCM_ERR_INPUT, "%s, factor '%s': model '%s' is in no family; every model "
                            "of the space belongs to one", path, factor, d->names[m]);
    return families_nonempty(path, factor, fam, nkept, *fam_names, *nfam);
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n && names; i++)
        free(names[i]);
    free(names);
}

static int parse_bma_option(const char *path, const char *factor, json_t *v, int *bma)
{
    const char *s = v ? json_string_value(v) : "ALL";
    static const char *const names[] = {"ALL", "WINNING", "NONE"};
    for (int k = 0; s && k < 3; k++)
        if (!strcasecmp(s, names[k])) {
            *bma = k; /* DCM_PEB_FAM_BMA_* in that order */
            return DCM_OK;
        }
    return cli_fail("peb", DCM_ERR_INPUT, "%s, factor '%s': \"bma\" is \"ALL\" (average every model, SPM's "
                    "default), \"WINNING\" (the winning family's) or \"NONE\"", path, factor);
}

/* One factor of FAMILIES.json: compute and report. */
static int family_factor(const peb_space_input *in, json_t *fj, int index, const space_def *d,
                         const unsigned char *keep, const int *kept_index, int nkept,
                         const dcm_peb_space_result *R, const char *const *kept_names, int as_json,
                         json_t *out)
{
    const char *path = in->families_path;
    char defname[32];
    snprintf(defname, sizeof defname, "factor %d", index + 1);
    const char *factor = json_string_value(json_object_get(fj, "name"));
    if (!json_is_object(fj))
        return cli_fail("peb", DCM_ERR_INPUT, "%s: factor %d must be an object {\"name\", \"families\", "
                        "\"bma\"}", path, index + 1);
    if (!factor)
        factor = defname;
    const char *key;
    json_t *v;
    json_object_foreach(fj, key, v) {
        if (strcmp(key, "name") && strcmp(key, "families") && strcmp(key, "membership") && strcmp(key, "bma"))
            return cli_fail("peb", DCM_ERR_INPUT, "%s, factor '%s': unknown key \"%s\" (a factor has "
                            "\"name\", \"families\" or \"membership\", and \"bma\")", path, factor, key);
    }
    int bma = 0;
    if (parse_bma_option(path, factor, json_object_get(fj, "bma"), &bma))
        return DCM_ERR_INPUT;
    int *fam = malloc(sizeof(int) * nkept), nfam = 0;
    char **fnames = NULL;
    if (!fam)
        return cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
    int rc = factor_membership(path, factor, json_object_get(fj, "families"), json_object_get(fj, "membership"),
                               d, keep, kept_index, nkept, fam, &fnames, &nfam);
    dcm_peb_family_result F;
    memset(&F, 0, sizeof F);
    dcm_error err = {0, ""};
    if (!rc && R && dcm_peb_families(R, fam, nfam, bma, &F, &err))
        rc = cli_report("peb", &err);
    if (rc || !R) { /* !R: only checked */
        free(fam);
        free_names(fnames, nfam);
        dcm_peb_family_result_free(&F);
        return rc;
    }
    static const char *const bma_names[] = {"ALL", "WINNING", "NONE"};
    const int nd = R->nd, print = !as_json;
    json_t *o = json_object(), *fl = json_array();
    json_object_set_new(o, "name", json_string(factor));
    json_object_set_new(o, "bma", json_string(bma_names[bma]));
    if (print) {
        printf("\nfamilies '%s' (spm_dcm_peb_bmc_fam, BMA %s): each family has prior 1/%d\n", factor,
               bma_names[bma], nfam);
        printf("%-28s %7s %18s", "family", "models", "P(commonalities)");
        if (nd > 1)
            printf(" %16s", "P(differences)");
        printf("\n");
    }
    for (int f = 0; f < nfam; f++) {
        json_t *e = json_object(), *ml = json_array();
        int n = 0;
        for (int m = 0; m < R->nm; m++)
            if (fam[m] == f) {
                json_array_append_new(ml, json_string(kept_names[m]));
                n++;
            }
        json_object_set_new(e, "name", json_string(fnames[f]));
        json_object_set_new(e, "models", ml);
        json_object_set_new(e, "prior", json_real(F.family_prior[f]));
        json_object_set_new(e, "posterior_commonalities", json_real(F.Pfc[f]));
        if (nd > 1)
            json_object_set_new(e, "posterior_differences", json_real(F.Pfd[f]));
        json_array_append_new(fl, e);
        if (print) {
            printf("%-28s %7d %18.4f", fnames[f], n, F.Pfc[f]);
            if (nd > 1)
                printf(" %16.4f", F.Pfd[f]);
            printf("\n");
        }
    }
    json_object_set_new(o, "families", fl);
    json_object_set_new(o, "joint_posterior", json_matrix(F.Pf, nfam, F.nfd));
    json_t *w = json_object();
    json_object_set_new(w, "commonalities", json_string(fnames[F.win_c]));
    if (nd > 1)
        json_object_set_new(w, "differences", json_string(fnames[F.win_d]));
    json_object_set_new(w, "posterior", json_real(F.Pf[F.win_c * F.nfd + F.win_d]));
    json_object_set_new(o, "winning", w);
    if (print && nd > 1)
        printf("most probable pair: commonalities '%s' x differences '%s' (P = %.4f)\n", fnames[F.win_c],
               fnames[F.win_d], F.Pf[F.win_c * F.nfd + F.win_d]);
    json_object_set_new(o, "model_posterior", json_matrix(F.model_post, R->nc, nd));
    json_object_set_new(o, "model_prior", json_matrix(F.model_prior, R->nc, nd));
    json_object_set_new(o, "parameters", parameter_probs(in, F.Pw, F.Px, 0));
    json_object_set_new(o, "models_averaged", json_integer(F.nbma));
    if (F.Ep) {
        if (print && bma == DCM_PEB_FAM_BMA_ALL)
            printf("BMA (ALL): the model space's, over its %d joint models within 8 of the best\n", F.nbma);
        else if (print)
            printf("BMA (WINNING) over the %d joint models of that pair within 8 of the best:\n", F.nbma);
        json_object_set_new(o, "effects", bma_effects(in, F.Ep, F.Vp, NULL, print && bma != DCM_PEB_FAM_BMA_ALL));
    } else if (bma != DCM_PEB_FAM_BMA_NONE) {
        fprintf(stderr, "dcm peb: warning: families '%s': no model of the winning families is within 8 of "
                "the best joint model; no BMA\n", factor);
        json_object_set_new(o, "effects", json_null());
    }
    json_array_append_new(out, o);
    free(fam);
    free_names(fnames, nfam);
    dcm_peb_family_result_free(&F);
    return DCM_OK;
}

static int report_families(const peb_space_input *in, const space_def *d, const unsigned char *keep,
                           const int *kept_index, int nkept, const dcm_peb_space_result *R,
                           const char *const *kept_names, int as_json, json_t *o)
{
    const char *path = in->families_path;
    dcm_error err = {0, ""};
    json_t *root = io_json_load(path, "families", 0, &err);
    if (!root)
        return cli_report("peb", &err);
    /* {"factors": [...]}, the list alone, or one factor */
    json_t *factors = json_is_array(root) ? root : json_object_get(root, "factors");
    json_t *one = NULL;
    if (!factors && (json_object_get(root, "families") || json_object_get(root, "membership"))) {
        one = json_array();
        json_array_append(one, root);
        factors = one;
    }
    int rc = DCM_OK;
    if (!json_is_array(factors) || !json_array_size(factors))
        rc = cli_fail("peb", DCM_ERR_INPUT, "%s: families are {\"factors\": [{\"name\": ..., \"bma\": \"ALL\", "
                      "\"families\": [{\"name\": ..., \"models\": [...]}, ...]}, ...]}", path);
    json_t *out = json_array();
    for (size_t f = 0; f < json_array_size(factors) && !rc; f++)
        rc = family_factor(in, json_array_get(factors, f), (int)f, d, keep, kept_index, nkept, R, kept_names,
                           as_json, out);
    if (!rc && o)
        json_object_set_new(o, "families", out);
    else
        json_decref(out);
    json_decref(one);
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------- the space */

static void print_space(const peb_space_input *in, const dcm_peb_space_result *R,
                        const char *const *names, int ndropped)
{
    const int nd = R->nd;
    printf("\nmodel space (spm_dcm_peb_bmc): %d models from %s", R->nm, in->models_path);
    if (ndropped)
        printf(" (%d repeated another's pattern and were dropped)", ndropped);
    if (nd > 1)
        printf("; %d joint models: commonalities (%s) x differences (%s)\n", R->nc * nd, in->covariates[0],
               in->covariates[1]);
    else
        printf("; one covariate (%s)\n", in->covariates[0]);
    int b = R->best_c * nd + R->best_d;
    if (nd > 1)
        printf("most probable: commonalities '%s' x differences '%s' (P = %.4f, F - F(full) = %.4f)\n",
               names[R->best_c], names[R->best_d], R->P[b], R->F[b]);
    else
        printf("most probable: '%s' (P = %.4f, F - F(full) = %.4f)\n", names[R->best_c], R->P[b], R->F[b]);
    printf("%-36s %18s", "model", "P(commonalities)");
    if (nd > 1)
        printf(" %16s", "P(differences)");
    printf("\n");
    for (int m = 0; m < R->nm; m++) {
        printf("%-36s %18.4f", names[m], R->Pc[m]);
        if (nd > 1)
            printf(" %16.4f", R->Pd[m]);
        printf("\n");
    }
    printf("\nper parameter: probability that it is on, over the models (SPM's BMA.Pw, BMA.Px)\n");
}

/* check_only: read and check both files against the PEB's parameters
 * (in->P holds np and sel only), print nothing */
static int space_run(const peb_space_input *in, int as_json, json_t *o, int check_only)
{
    space_def d;
    int rc = read_space(in, &d);
    if (rc)
        return rc;
    const int np = d.np, print = !as_json;
    unsigned char *keep = malloc((size_t)d.nm), *K = malloc((size_t)d.nm * np);
    int *dup_of = malloc(sizeof(int) * d.nm), *kept_index = malloc(sizeof(int) * d.nm);
    const char **names = malloc(sizeof(char *) * d.nm);
    dcm_peb_space_result R;
    memset(&R, 0, sizeof R);
    json_t *ms = NULL, *warn = json_array();
    if (!keep || !K || !dup_of || !kept_index || !names) {
        rc = cli_fail("peb", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    int nm = dcm_peb_space_unique(d.K, d.nm, np, keep, dup_of);
    for (int m = 0, k = 0; m < d.nm; m++) {
        kept_index[m] = keep[m] ? k : kept_index[dup_of[m]];
        if (!keep[m]) {
            char msg[1024];
            snprintf(msg, sizeof msg, "model '%s' switches the same parameters as '%s': compared once, as "
                     "'%s' (SPM's unique rows)", d.names[m], d.names[dup_of[m]], d.names[dup_of[m]]);
            if (!check_only)
                fprintf(stderr, "dcm peb: warning: %s: %s\n", in->models_path, msg);
            json_array_append_new(warn, json_string(msg));
            continue;
        }
        memcpy(K + (size_t)k * np, d.K + (size_t)m * np, (size_t)np);
        names[k++] = d.names[m];
    }
    int any_off = 0;
    for (size_t i = 0; i < (size_t)nm * np; i++)
        any_off |= !K[i];
    if (!any_off) {
        rc = cli_fail("peb", DCM_ERR_INPUT, "%s: the model space is empty: no model switches off any of the "
                      "PEB's parameters (SPM: 'your model space is empty')", in->models_path);
        goto done;
    }
    if (check_only) {
        if (in->families_path)
            rc = report_families(in, &d, keep, kept_index, nm, NULL, names, 1, NULL);
        goto done;
    }
    dcm_error err = {0, ""};
    if ((rc = dcm_peb_space(in->P, in->X, in->nsub, in->pE, in->pV, in->alpha, K, nm, &R, &err))) {
        rc = cli_report("peb", &err);
        goto done;
    }
    const int nd = R.nd;
    ms = json_object();
    json_object_set_new(ms, "file", json_string(in->models_path));
    json_t *ml = json_array();
    for (int m = 0; m < nm; m++) {
        json_t *e = json_object(), *on = json_array();
        json_object_set_new(e, "name", json_string(names[m]));
        for (int q = 0; q < np; q++)
            if (K[(size_t)m * np + q]) {
                char *pn = io_pname_name(in->S, in->P->sel[q]);
                json_array_append_new(on, json_string(pn ? pn : "?"));
                free(pn);
            }
        json_object_set_new(e, "on", on);
        json_object_set_new(e, "posterior_commonalities", json_real(R.Pc[m]));
        if (nd > 1)
            json_object_set_new(e, "posterior_differences", json_real(R.Pd[m]));
        json_array_append_new(ml, e);
    }
    json_object_set_new(ms, "models", ml);
    json_object_set_new(ms, "commonalities", json_string(in->covariates[0]));
    if (nd > 1)
        json_object_set_new(ms, "differences", json_string(in->covariates[1]));
    json_object_set_new(ms, "F", json_matrix(R.F, R.nc, nd));
    json_object_set_new(ms, "posterior", json_matrix(R.P, R.nc, nd));
    json_t *best = json_object();
    int b = R.best_c * nd + R.best_d;
    json_object_set_new(best, "commonalities", json_string(names[R.best_c]));
    if (nd > 1)
        json_object_set_new(best, "differences", json_string(names[R.best_d]));
    json_object_set_new(best, "posterior", json_real(R.P[b]));
    json_object_set_new(best, "F", json_real(R.F[b]));
    json_object_set_new(ms, "best", best);
    if (print)
        print_space(in, &R, names, d.nm - nm);
    json_object_set_new(ms, "parameters", parameter_probs(in, R.Pw, R.Px, print));
    json_object_set_new(ms, "models_averaged", json_integer(R.nbma));
    if (print)
        printf("\nBayesian model average over the %d joint models within 8 of the best; Pp = posterior "
               "probability that the effect is on\n", R.nbma);
    json_object_set_new(ms, "effects", bma_effects(in, R.Ep, R.Vp, R.Pp, print));
    json_object_set_new(ms, "warnings", warn);
    warn = NULL;
    if (in->families_path &&
        (rc = report_families(in, &d, keep, kept_index, nm, &R, names, as_json, o)))
        goto done;
    json_object_set_new(o, "model_space", ms);
    ms = NULL;
done:
    json_decref(ms);
    json_decref(warn);
    dcm_peb_space_result_free(&R);
    free(keep);
    free(K);
    free(dup_of);
    free(kept_index);
    free(names);
    space_def_free(&d);
    return rc;
}

int peb_space_report(const peb_space_input *in, int as_json, json_t *o)
{
    return space_run(in, as_json, o, 0);
}

int peb_space_check(const char *models_path, const char *families_path, const io_pname_space *S,
                    const int *sel, int nsel)
{
    dcm_peb_result P;
    memset(&P, 0, sizeof P);
    P.np = nsel;
    P.sel = (int *)sel; /* read only */
    peb_space_input in = {.models_path = models_path, .families_path = families_path, .P = &P, .S = S};
    return space_run(&in, 1, NULL, 1);
}
