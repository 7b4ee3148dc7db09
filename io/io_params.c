/* io_params.c — parameter values by name (see io_params.h). */
#include "io/io_params.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_atomic.h"
#include "io/io_pnames.h"
#include "models/model_csd.h"

static io_pname_space space_of(const dcm_problem *P)
{
    io_pname_space S = {P->n, P->m, P->M->L.nd, P->region_names, P->input_names,
                        P->analysis == DCM_ANALYSIS_RDCM ? IO_PNAME_RDCM : P->analysis == DCM_ANALYSIS_CSD};
    return S;
}

/* P's parameter count and priors: the task model's, or spectral DCM's
 * (model_layout_init_csd, model_csd_priors). */
static int param_count(const dcm_problem *P)
{
    model_layout T;
    dcm_problem_table(P, &T);
    return T.np;
}

static void problem_priors(const dcm_problem *P, double *pE, double *pV)
{
    if (P->analysis == DCM_ANALYSIS_CSD)
        model_csd_priors(P->n, P->M->a, pE, pV);
    else
        model_dcm_priors(P->M, pE, pV);
}

/* A buffer length for any name of P, whole (io_pname_cap). */
static size_t name_cap(const dcm_problem *P)
{
    io_pname_space S = space_of(P);
    return io_pname_cap(&S);
}

/* Copy of s without blanks, with "C:IN:REGION" turned into "C:IN->REGION"
 * (the spelling of C by analogy with B). */
static char *normalise(const char *s)
{
    char *o = malloc(strlen(s) + 3), *p = o;
    if (!o)
        return NULL;
    for (; *s; s++)
        if (*s != ' ' && *s != '\t')
            *p++ = *s;
    *p = 0;
    if (o[0] == 'C' && o[1] == ':' && !strstr(o, "->")) {
        char *last = strrchr(o, ':');
        if (last > o + 1) {
            memmove(last + 2, last + 1, strlen(last + 1) + 1);
            last[0] = '-';
            last[1] = '>';
        }
    }
    return o;
}

int io_params_index(const dcm_problem *P, const char *name)
{
    io_pname_space S = space_of(P);
    size_t cap = name_cap(P);
    char *key = normalise(name), *buf = malloc(cap), *canon = NULL;
    int found = -1;
    const int np = param_count(P);
    for (int i = 0; key && buf && i < np && found < 0; i++) {
        io_pname_format(&S, i, buf, cap);
        canon = normalise(buf);
        if (canon && strcmp(canon, key) == 0)
            found = i;
        free(canon);
    }
    free(key);
    free(buf);
    return found;
}

int io_params_is_names(json_t *obj)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        (void)val;
        if (strchr(key, ':'))
            return 1;
    }
    return 0;
}

/* Edit distance of a and b, ignoring case (two rows of the table). */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *prev = malloc(sizeof(size_t) * (lb + 1)), *cur = malloc(sizeof(size_t) * (lb + 1));
    if (!prev || !cur) {
        free(prev);
        free(cur);
        return (size_t)-1;
    }
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (tolower((unsigned char)a[i - 1]) !=
                                        tolower((unsigned char)b[j - 1]));
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        size_t *t = prev;
        prev = cur;
        cur = t;
    }
    size_t d = prev[lb];
    free(prev);
    free(cur);
    return d;
}

/* Message for an unknown name: the names within a few edits of it, else
 * the parameters the spec switches on. */
static int unknown_name(const char *path, const char *key, const dcm_problem *P, dcm_error *err)
{
    const int np = param_count(P);
    if (key[0] == 'D' && key[1] == ':' && P->M->L.nd == 0)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: \"%s\": the model is bilinear (no \"d\" in the spec), so it has no "
                             "D parameters", path, key);
    io_pname_space S = space_of(P);
    size_t cap = name_cap(P);
    char *buf = malloc(cap), *k = normalise(key);
    double *pE = malloc(sizeof(double) * np), *pV = malloc(sizeof(double) * np);
    if (!buf || !k || !pE || !pV) {
        free(buf);
        free(k);
        free(pE);
        free(pV);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    problem_priors(P, pE, pV);
    /* the closest names, if within about one slip in five characters
       (at least two) */
    size_t limit = strlen(k) / 5 > 2 ? strlen(k) / 5 : 2, best = (size_t)-1;
    for (int i = 0; i < np; i++) {
        io_pname_format(&S, i, buf, cap);
        size_t d = distance(k, buf);
        best = d < best ? d : best;
    }
    limit = best < limit ? best : limit;
    char list[640];
    size_t len = 0;
    int shown = 0, more = 0;
    list[0] = 0;
    for (int pass = 0; pass < 2 && !shown; pass++) {
        for (int i = 0; i < np; i++) {
            io_pname_format(&S, i, buf, cap);
            int pick = pass == 0 ? distance(k, buf) <= limit : pV[i] > 0;
            if (!pick)
                continue;
            if (len + strlen(buf) + 8 < sizeof list && shown < 24) {
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", shown ? ", " : "", buf);
                shown++;
            } else {
                more++;
            }
        }
        if (shown) {
            if (more)
                snprintf(list + len, sizeof list - len, " and %d more", more);
            dcm_error_set(err, DCM_ERR_INPUT,
                          pass == 0 ? "%s: unknown parameter \"%s\"; did you mean: %s?"
                                    : "%s: unknown parameter \"%s\"; the parameters this spec "
                                      "switches on are: %s",
                          path, key, list);
        }
    }
    free(buf);
    free(k);
    free(pE);
    free(pV);
    return DCM_ERR_INPUT;
}

int io_params_apply_names(const char *path, json_t *obj, const dcm_problem *P, double *theta,
                          dcm_error *err)
{
    const int np = param_count(P);
    /* which key set each parameter, to refuse one given twice */
    const char **by = calloc((size_t)np, sizeof *by);
    if (!by)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    int rc = DCM_OK;
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        static const char *const blocks[] = {"A", "B", "C", "D", "transit", "regions", "inputs",
                                             "posterior_mean"};
        for (size_t b = 0; b < sizeof blocks / sizeof *blocks; b++)
            if (strcmp(key, blocks[b]) == 0) {
                rc = dcm_error_set(err, DCM_ERR_INPUT,
                                   "%s: \"%s\" is a block, but the other keys are parameter names; "
                                   "give either blocks (\"A\": [[...]]) or names (\"A:V1->V5\": 0.4), "
                                   "not both", path, key);
                goto done;
            }
        int i = io_params_index(P, key);
        if (i < 0) {
            rc = unknown_name(path, key, P, err);
            goto done;
        }
        if (by[i]) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"%s\" and \"%s\" name the same parameter; "
                               "give it once", path, by[i], key);
            goto done;
        }
        if (!json_is_number(val)) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"%s\" must be a number", path, key);
            goto done;
        }
        by[i] = key;
        theta[i] = json_number_value(val);
    }
done:
    free(by);
    return rc;
}

int io_params_check_off(const char *path, const dcm_problem *P, const double *theta,
                        dcm_error *err)
{
    const int np = param_count(P);
    double *pE = malloc(sizeof(double) * np), *pV = malloc(sizeof(double) * np);
    size_t cap = name_cap(P);
    char *buf = malloc(cap);
    if (!pE || !pV || !buf) {
        free(pE);
        free(pV);
        free(buf);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    problem_priors(P, pE, pV);
    io_pname_space S = space_of(P);
    char list[600];
    size_t len = 0;
    int bad = 0, first = -1;
    list[0] = 0;
    for (int i = 0; i < np; i++) {
        if (pV[i] != 0.0 || theta[i] == pE[i])
            continue;
        if (first < 0)
            first = i;
        io_pname_format(&S, i, buf, cap);
        if (len + strlen(buf) + 40 < sizeof list)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s = %g", bad ? ", " : "", buf,
                                    theta[i]);
        else if (len + 8 < sizeof list && !strstr(list, ", ..."))
            len += (size_t)snprintf(list + len, sizeof list - len, ", ...");
        bad++;
    }
    int rc = DCM_OK;
    if (bad) {
        /* the spec's switch of first's block; haemodynamic parameters are always on */
        model_layout T;
        dcm_problem_table(P, &T);
        int b = model_layout_locate(&T, first, NULL, NULL, NULL);
        const char *field = T.block[b].spec ? T.block[b].spec : "d";
        rc = dcm_error_set(err, DCM_ERR_INPUT,
                           "%s: %d value%s on parameter%s the spec switches off: %s. Switched-off "
                           "parameters stay at %g (their prior mean) in every block; switch %s on in "
                           "the spec (\"%s\") or remove the value%s",
                           path, bad, bad > 1 ? "s" : "", bad > 1 ? "s" : "", list, pE[first],
                           bad > 1 ? "them" : "it", field, bad > 1 ? "s" : "");
    }
    free(pE);
    free(pV);
    free(buf);
    return rc;
}

/* The shortest of %.15g, %.16g, %.17g that reads back as x exactly. */
static void shortest(char *buf, size_t len, double x)
{
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, len, "%.*g", digits, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

int io_params_write_names(const char *path, const dcm_problem *P, const double *theta,
                          const unsigned char *only, io_atomic *hold, dcm_error *err)
{
    const int np = param_count(P);
    double *pE = malloc(sizeof(double) * np), *pV = malloc(sizeof(double) * np);
    size_t cap = name_cap(P);
    char *buf = malloc(cap);
    if (!pE || !pV || !buf) {
        free(pE);
        free(pV);
        free(buf);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    problem_priors(P, pE, pV);
    io_pname_space S = space_of(P);
    io_atomic a;
    int rc = io_atomic_open(&a, path, err);
    int ok = rc == DCM_OK && fputs("{", a.fp) != EOF;
    for (int i = 0, k = 0; ok && i < np; i++) {
        if (pV[i] == 0.0 || (only && !only[i]))
            continue;
        io_pname_format(&S, i, buf, cap);
        /* jansson quotes the name (JSON escapes included) */
        json_t *js = json_string(buf);
        char *quoted = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
        char num[40];
        shortest(num, sizeof num, theta[i]);
        ok = quoted && fprintf(a.fp, "%s\n %s: %s", k++ ? "," : "", quoted, num) > 0;
        free(quoted);
        json_decref(js);
    }
    ok = ok && fputs("\n}\n", a.fp) != EOF;
    free(pE);
    free(pV);
    free(buf);
    if (rc)
        return rc;
    if (!ok) {
        io_atomic_abort(&a);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "cannot write %s", path);
    }
    if (hold) {
        *hold = a;
        return DCM_OK;
    }
    return io_atomic_commit(&a, err);
}
