/* io_bids.c — the models file, BIDS/fMRIPrep runs, one run's extraction
 * into specs, participants.tsv (contract in io_bids.h). */
#include "io/io_bids.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_atlas.h"
#include "io/io_atomic.h"
#include "io/io_extract.h"
#include "io/io_nifti.h"
#include "io/io_tsv.h"

/* ------------------------------------------------------------ helpers */

static char *xdup(const char *s)
{
    return s ? dcm_strprintf("%s", s) : NULL;
}

static int is_file(const char *p)
{
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *p)
{
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int oom(dcm_error *err)
{
    return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
}

/* mkdir -p */
static int make_dirs(const char *path, dcm_error *err)
{
    char *p = xdup(path);
    if (!p)
        return oom(err);
    int rc = DCM_OK;
    for (char *s = p + 1; !rc; s++) {
        char c = *s;
        if (c != '/' && c)
            continue;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot create the folder %s: %s", p,
                               strerror(errno));
        else if (!is_dir(p))
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "%s exists and is not a folder", p);
        *s = c;
        if (!c)
            break;
    }
    free(p);
    return rc;
}

static int write_json(const char *path, json_t *j, dcm_error *err)
{
    io_atomic a;
    memset(&a, 0, sizeof a);
    int rc = io_atomic_open(&a, path, err);
    if (rc)
        return rc;
    if (json_dumpf(j, a.fp, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) ||
        fputc('\n', a.fp) == EOF) {
        io_atomic_abort(&a);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "cannot write %s", path);
    }
    return io_atomic_commit(&a, err);
}

/* ------------------------------------------------------------ models file */

static const char *const top_keys[] = {"space", "atlas", "labels", "regions", "inputs", "confounds",
                                       "hpf", "summary", "slice_timing", "TE", "options", "models",
                                       "group", NULL};
static const char *const region_keys[] = {"name", "sphere", "radius", "label", NULL};
static const char *const model_keys[] = {"name", "a", "b", "c", "d", NULL};
static const char *const group_keys[] = {"model", "parameters", "covariates", "q", "maxit", NULL};

static int check_keys(const char *path, json_t *o, const char *const *valid, const char *where,
                      dcm_error *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        int ok = 0;
        for (int i = 0; valid[i] && !ok; i++)
            ok = !strcmp(k, valid[i]);
        if (!ok) {
            char list[512] = "";
            size_t n = 0;
            for (int i = 0; valid[i] && n < sizeof list; i++)
                n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", valid[i]);
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: unknown key \"%s\" in %s (valid: %s)", path,
                                 k, where, list);
        }
    }
    (void)v;
    return DCM_OK;
}

static char *resolve_rel(const char *file, const char *rel)
{
    if (rel[0] == '/')
        return xdup(rel);
    const char *slash = strrchr(file, '/');
    if (!slash)
        return xdup(rel);
    return dcm_strprintf("%.*s/%s", (int)(slash - file), file, rel);
}

/* an array of strings (or one string) into names */
static int get_strings(const char *path, json_t *j, const char *key, char ***out, int *count,
                       dcm_error *err)
{
    *out = NULL;
    *count = 0;
    if (!j)
        return DCM_OK;
    size_t n = json_is_string(j) ? 1 : json_is_array(j) ? json_array_size(j) : 0;
    if (!json_is_string(j) && !json_is_array(j))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"%s\" must be a list of names", path, key);
    *out = calloc(n + 1, sizeof **out);
    if (!*out)
        return oom(err);
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_is_string(j) ? j : json_array_get(j, i);
        if (!json_is_string(x) || !json_string_value(x)[0])
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"%s\"[%zu] must be a non-empty name", path,
                                 key, i);
        if (!((*out)[i] = xdup(json_string_value(x))))
            return oom(err);
        *count = (int)i + 1;
    }
    return DCM_OK;
}

static int parse_region(const io_bids_models *M, json_t *x, int i, io_bids_region *r,
                        dcm_error *err)
{
    const char *path = M->path;
    if (!json_is_object(x))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"regions\"[%d] must be an object "
                             "{\"name\": ..., \"sphere\": [x, y, z], \"radius\": mm} or {\"name\": "
                             "..., \"label\": N or NAME}", path, i);
    char where[64];
    snprintf(where, sizeof where, "\"regions\"[%d]", i);
    int rc = check_keys(path, x, region_keys, where, err);
    if (rc)
        return rc;
    json_t *name = json_object_get(x, "name"), *sph = json_object_get(x, "sphere"),
           *rad = json_object_get(x, "radius"), *lab = json_object_get(x, "label");
    if (!json_is_string(name))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: %s needs a \"name\"", path, where);
    const char *why = dcm_name_problem(json_string_value(name));
    if (why)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: %s: region name \"%s\" %s", path, where,
                             json_string_value(name), why);
    if (!(r->name = xdup(json_string_value(name))))
        return oom(err);
    if (!!sph == !!lab)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: region %s needs either \"sphere\" [x, y, z] "
                             "(mm, with \"radius\") or \"label\" (of \"atlas\")", path, r->name);
    if (sph) {
        if (!json_is_array(sph) || json_array_size(sph) != 3)
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: region %s: \"sphere\" must be [x, y, z] in "
                                 "mm", path, r->name);
        for (int a = 0; a < 3; a++) {
            json_t *c = json_array_get(sph, (size_t)a);
            if (!json_is_number(c) || !isfinite(json_number_value(c)))
                return dcm_error_set(err, DCM_ERR_INPUT, "%s: region %s: \"sphere\"[%d] must be a "
                                     "number (mm)", path, r->name, a);
            r->centre[a] = json_number_value(c);
        }
        if (!json_is_number(rad) || !(json_number_value(rad) > 0) || !isfinite(json_number_value(rad)))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: region %s: \"radius\" must be a positive "
                                 "number of mm", path, r->name);
        r->radius = json_number_value(rad);
        r->sphere = 1;
        return DCM_OK;
    }
    if (rad)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: region %s: \"radius\" goes with \"sphere\", not "
                             "\"label\"", path, r->name);
    if (!M->atlas)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: region %s names a label but the file has no "
                             "\"atlas\"", path, r->name);
    if (json_is_integer(lab) && json_integer_value(lab) != 0) {
        r->label = (long)json_integer_value(lab);
    } else if (json_is_string(lab) && json_string_value(lab)[0]) {
        if (!M->labels)
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: region %s names label \"%s\" but the file "
                                 "has no \"labels\" table (give the label's number instead)", path,
                                 r->name, json_string_value(lab));
        if (!(r->label_name = xdup(json_string_value(lab))))
            return oom(err);
    } else {
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: region %s: \"label\" must be a non-zero whole "
                             "number or a name of the labels table", path, r->name);
    }
    return DCM_OK;
}

static int model_name_ok(const char *s)
{
    if (!*s || strlen(s) > 40)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s))
            return 0;
    return 1;
}

static int parse_models(io_bids_models *M, json_t *arr, dcm_error *err)
{
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"models\" must be a non-empty list of "
                             "{\"name\": ..., \"a\": ..., \"b\": ..., \"c\": ...}", M->path);
    size_t n = json_array_size(arr);
    if (!(M->models = calloc(n, sizeof *M->models)))
        return oom(err);
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(arr, i);
        char where[64];
        snprintf(where, sizeof where, "\"models\"[%zu]", i);
        if (!json_is_object(x))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: %s must be an object", M->path, where);
        int rc = check_keys(M->path, x, model_keys, where, err);
        if (rc)
            return rc;
        json_t *name = json_object_get(x, "name");
        if (!json_is_string(name) || !model_name_ok(json_string_value(name)))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: %s needs a \"name\" of 1 to 40 letters and "
                                 "digits (it becomes the BIDS desc- label of its files)", M->path,
                                 where);
        for (size_t k = 0; k < i; k++)
            if (!strcmp(M->models[k].name, json_string_value(name)))
                return dcm_error_set(err, DCM_ERR_INPUT, "%s: model \"%s\" is defined twice", M->path,
                                     json_string_value(name));
        if (!json_object_get(x, "a") || !json_object_get(x, "c"))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: model \"%s\" needs \"a\" and \"c\" (and "
                                 "optionally \"b\", \"d\"), as in a spec", M->path,
                                 json_string_value(name));
        io_bids_model *m = &M->models[i];
        M->nmodels = (int)i + 1;
        if (!(m->name = xdup(json_string_value(name))) || !(m->switches = json_deep_copy(x)))
            return oom(err);
        json_object_del(m->switches, "name");
    }
    return DCM_OK;
}

static int parse_group(io_bids_models *M, json_t *g, dcm_error *err)
{
    if (!g)
        return DCM_OK;
    if (!json_is_object(g))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"group\" must be an object {\"model\": ..., "
                             "\"parameters\": [...], \"covariates\": [...]}", M->path);
    int rc = check_keys(M->path, g, group_keys, "\"group\"", err);
    if (rc)
        return rc;
    json_t *m = json_object_get(g, "model");
    if (m) {
        if (!json_is_string(m))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"group\".\"model\" must be a model's name",
                                 M->path);
        int found = 0;
        for (int k = 0; k < M->nmodels; k++)
            found |= !strcmp(M->models[k].name, json_string_value(m));
        if (!found)
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"group\".\"model\" is \"%s\", which is not "
                                 "one of \"models\"", M->path, json_string_value(m));
        if (!(M->peb_model = xdup(json_string_value(m))))
            return oom(err);
    }
    json_t *q = json_object_get(g, "q"), *it = json_object_get(g, "maxit");
    M->peb_q = 1;
    if (q) {
        const char *w = json_is_string(q) ? json_string_value(q) : "";
        M->peb_q = !strcmp(w, "single") ? 1 : !strcmp(w, "all") ? 3 : 0;
        if (!M->peb_q)
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"group\".\"q\" must be \"single\" or "
                                 "\"all\" (SPM's M.Q; for \"fields\" run dcm peb on the results)",
                                 M->path);
    }
    if (it && (!json_is_integer(it) || json_integer_value(it) < 1 || json_integer_value(it) > 100000))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"group\".\"maxit\" must be a whole number "
                             "from 1 to 100000", M->path);
    M->peb_maxit = it ? (int)json_integer_value(it) : 64;
    if ((rc = get_strings(M->path, json_object_get(g, "parameters"), "parameters", &M->params,
                          &M->nparams, err)))
        return rc;
    return get_strings(M->path, json_object_get(g, "covariates"), "covariates", &M->covariates,
                       &M->ncovariates, err);
}

static int load_models(json_t *root, io_bids_models *M, dcm_error *err)
{
    const char *path = M->path;
    if (!json_is_object(root))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: the models file must be a JSON object", path);
    int rc = check_keys(path, root, top_keys, "the models file", err);
    if (rc)
        return rc;
    json_t *x;
    if ((x = json_object_get(root, "space"))) {
        if (!json_is_string(x) || !(M->space = xdup(json_string_value(x))))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"space\" must be a name (e.g. "
                                 "\"MNI152NLin2009cAsym\")", path);
    }
    const char *fkeys[2] = {"atlas", "labels"};
    char **fdst[2] = {&M->atlas, &M->labels};
    for (int k = 0; k < 2; k++)
        if ((x = json_object_get(root, fkeys[k]))) {
            if (!json_is_string(x) || !json_string_value(x)[0])
                return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"%s\" must be a file name", path,
                                     fkeys[k]);
            if (!(*fdst[k] = resolve_rel(path, json_string_value(x))))
                return oom(err);
            if (!is_file(*fdst[k]))
                return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"%s\": %s does not exist", path,
                                     fkeys[k], *fdst[k]);
        }
    x = json_object_get(root, "regions");
    if (!json_is_array(x) || json_array_size(x) < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"regions\" must be a non-empty list", path);
    size_t n = json_array_size(x);
    if (!(M->regions = calloc(n, sizeof *M->regions)))
        return oom(err);
    for (size_t i = 0; i < n; i++) {
        M->nregions = (int)i + 1;
        if ((rc = parse_region(M, json_array_get(x, i), (int)i, &M->regions[i], err)))
            return rc;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(M->regions[k].name, M->regions[i].name))
                return dcm_error_set(err, DCM_ERR_INPUT, "%s: region \"%s\" is named twice", path,
                                     M->regions[i].name);
    }
    if ((rc = get_strings(path, json_object_get(root, "inputs"), "inputs", &M->inputs, &M->ninputs,
                          err)))
        return rc;
    if (!M->ninputs)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"inputs\" must list the trial types (of the "
                             "events.tsv files) that drive the DCMs", path);
    if ((rc = get_strings(path, json_object_get(root, "confounds"), "confounds", &M->confounds,
                          &M->nconfounds, err)))
        return rc;
    M->hpf = 128;
    M->TE = 0.04;
    M->slice_timing = 1;
    M->summary = IO_SUMMARY_EIGEN;
    if ((x = json_object_get(root, "hpf"))) {
        if (!json_is_number(x) || json_number_value(x) < 0)
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"hpf\" must be a cutoff in seconds (0: no "
                                 "high-pass filter)", path);
        M->hpf = json_number_value(x);
    }
    if ((x = json_object_get(root, "TE"))) {
        if (!json_is_number(x) || !(json_number_value(x) > 0))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"TE\" must be the echo time in seconds",
                                 path);
        M->TE = json_number_value(x);
    }
    if ((x = json_object_get(root, "slice_timing"))) {
        if (!json_is_boolean(x))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"slice_timing\" must be true or false",
                                 path);
        M->slice_timing = json_is_true(x);
    }
    if ((x = json_object_get(root, "summary"))) {
        const char *s = json_is_string(x) ? json_string_value(x) : "";
        if (!strcmp(s, "mean"))
            M->summary = IO_SUMMARY_MEAN;
        else if (strcmp(s, "eigen"))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"summary\" must be \"eigen\" or \"mean\"",
                                 path);
    }
    if ((x = json_object_get(root, "options"))) {
        if (!json_is_object(x))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"options\" must be an object (the spec's "
                                 "options)", path);
        M->options = json_incref(x);
    }
    if ((rc = parse_models(M, json_object_get(root, "models"), err)))
        return rc;
    M->peb_q = 1;
    M->peb_maxit = 64;
    return parse_group(M, json_object_get(root, "group"), err);
}

int io_bids_models_load(const char *path, io_bids_models *M, dcm_error *err)
{
    memset(M, 0, sizeof *M);
    int rc = io_input_check(path, "the models file", err);
    if (rc)
        return rc;
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s, line %d, column %d: %s", path, je.line,
                             je.column, je.text);
    if (!(M->path = xdup(path)))
        rc = oom(err);
    else
        rc = load_models(root, M, err);
    json_decref(root);
    if (rc)
        io_bids_models_free(M);
    return rc;
}

static void free_strings(char **s, int n)
{
    for (int i = 0; s && i < n; i++)
        free(s[i]);
    free(s);
}

void io_bids_models_free(io_bids_models *M)
{
    if (!M)
        return;
    for (int i = 0; M->regions && i < M->nregions; i++) {
        free(M->regions[i].name);
        free(M->regions[i].label_name);
    }
    for (int i = 0; M->models && i < M->nmodels; i++) {
        free(M->models[i].name);
        json_decref(M->models[i].switches);
    }
    free(M->regions);
    free(M->models);
    free_strings(M->inputs, M->ninputs);
    free_strings(M->confounds, M->nconfounds);
    free_strings(M->params, M->nparams);
    free_strings(M->covariates, M->ncovariates);
    json_decref(M->options);
    free(M->path);
    free(M->space);
    free(M->atlas);
    free(M->labels);
    free(M->peb_model);
    memset(M, 0, sizeof *M);
}

/* ------------------------------------------------------------ runs */

/* the value of entity key in a BIDS file name ("sub-01_task-x_..."), or NULL */
static char *entity(const char *name, const char *key)
{
    size_t kl = strlen(key);
    const char *p = name;
    while (p && *p) {
        if (!strncmp(p, key, kl) && p[kl] == '-') {
            const char *v = p + kl + 1, *e = v;
            while (*e && *e != '_' && *e != '.')
                e++;
            return dcm_strprintf("%.*s", (int)(e - v), v);
        }
        p = strchr(p, '_');
        if (p)
            p++;
    }
    return NULL;
}

/* name without the entities in drop (and from the suffix on): "sub-01_task-x_run-1" */
static char *strip_entities(const char *name, const char *const *drop, int keep_drop)
{
    char *out = calloc(strlen(name) + 1, 1);
    if (!out)
        return NULL;
    const char *p = name;
    while (*p) {
        const char *e = p;
        while (*e && *e != '_' && *e != '.')
            e++;
        const char *dash = memchr(p, '-', (size_t)(e - p));
        if (!dash)
            break;   /* the suffix */
        int dropped = 0;
        for (int i = 0; drop[i] && !dropped; i++)
            dropped = (size_t)(dash - p) == strlen(drop[i]) && !strncmp(p, drop[i], (size_t)(dash - p));
        if (dropped == keep_drop) {
            if (*out)
                strcat(out, "_");
            strncat(out, p, (size_t)(e - p));
        }
        if (*e != '_')
            break;
        p = e + 1;
    }
    return out;
}

static int ends_with(const char *s, const char *t)
{
    size_t a = strlen(s), b = strlen(t);
    return a >= b && !strcmp(s + a - b, t);
}

static const char *const derived_entities[] = {"space", "res", "den", "desc", "cohort", NULL};
static const char *const space_entities[] = {"space", "res", "den", "cohort", NULL};

static int label_chosen(const io_bids_query *q, const char *sub)
{
    if (!q->nlabels)
        return 1;
    for (int i = 0; i < q->nlabels; i++)
        if (!strcmp(q->labels[i], sub))
            return 1;
    return 0;
}

typedef struct {
    io_bids_run *r;
    int n, cap;
} run_list;

static int add_run(const io_bids_query *q, run_list *L, const char *subdir, const char *funcdir,
                   const char *file, dcm_error *err)
{
    if (!(ends_with(file, "_desc-preproc_bold.nii.gz") || ends_with(file, "_desc-preproc_bold.nii")))
        return DCM_OK;
    char *task = entity(file, "task"), *space = entity(file, "space");
    int keep = task && (!q->task || !strcmp(q->task, task)) &&
               (!q->space || (space && !strcmp(q->space, space)));
    free(space);
    if (!keep) {
        free(task);
        return DCM_OK;
    }
    if (L->n == L->cap) {
        int cap = L->cap ? 2 * L->cap : 16;
        io_bids_run *r = realloc(L->r, sizeof *r * (size_t)cap);
        if (!r) {
            free(task);
            return oom(err);
        }
        L->r = r;
        L->cap = cap;
    }
    io_bids_run *r = &L->r[L->n++];
    memset(r, 0, sizeof *r);
    r->task = task;
    r->sub = entity(file, "sub");
    r->ses = entity(file, "ses");
    r->rawstem = strip_entities(file, derived_entities, 0);
    char *sp = strip_entities(file, space_entities, 1);
    r->stem = r->rawstem && sp ? dcm_strprintf("%s_%s", r->rawstem, sp) : NULL;
    r->subdir = xdup(subdir);
    r->bold = dcm_strprintf("%s/%s", funcdir, file);
    if (!r->sub || !r->rawstem || !sp || !r->stem || !r->subdir || !r->bold) {
        free(sp);
        return oom(err);
    }
    r->confounds = dcm_strprintf("%s/%s_desc-confounds_timeseries.tsv", funcdir, r->rawstem);
    if (r->confounds && !is_file(r->confounds)) {
        char *old = dcm_strprintf("%s/%s_desc-confounds_regressors.tsv", funcdir, r->rawstem);
        if (old && is_file(old)) {
            free(r->confounds);
            r->confounds = old;
        } else {
            free(old);
        }
    }
    r->events = dcm_strprintf("%s/%s/func/%s_events.tsv", q->bids, subdir, r->rawstem);
    r->raw_sidecar = dcm_strprintf("%s/%s/func/%s_bold.json", q->bids, subdir, r->rawstem);
    r->task_sidecar = dcm_strprintf("%s/task-%s_bold.json", q->bids, r->task);
    if (q->use_mask) {
        r->mask = dcm_strprintf("%s/%s_%s_desc-brain_mask.nii.gz", funcdir, r->rawstem, sp);
        if (r->mask && !is_file(r->mask)) {
            free(r->mask);
            r->mask = dcm_strprintf("%s/%s_%s_desc-brain_mask.nii", funcdir, r->rawstem, sp);
            if (r->mask && !is_file(r->mask)) {
                free(r->mask);
                r->mask = NULL;
            }
        }
    }
    free(sp);
    if (!r->confounds || !r->events || !r->raw_sidecar || !r->task_sidecar)
        return oom(err);
    return DCM_OK;
}

static int scan_func(const io_bids_query *q, run_list *L, const char *subdir, dcm_error *err)
{
    char *funcdir = dcm_strprintf("%s/%s/func", q->deriv, subdir);
    if (!funcdir)
        return oom(err);
    DIR *d = opendir(funcdir);
    int rc = DCM_OK;
    if (d) {
        struct dirent *e;
        while (!rc && (e = readdir(d)))
            rc = add_run(q, L, subdir, funcdir, e->d_name, err);
        closedir(d);
    }
    free(funcdir);
    return rc;
}

static int cmp_run(const void *a, const void *b)
{
    const io_bids_run *x = a, *y = b;
    int c = strcmp(x->subdir, y->subdir);
    return c ? c : strcmp(x->stem, y->stem);
}

static int check_runs(const io_bids_query *q, run_list *L, dcm_error *err)
{
    for (int i = 0; i < q->nlabels; i++) {
        int found = 0;
        for (int k = 0; k < L->n && !found; k++)
            found = !strcmp(L->r[k].sub, q->labels[i]);
        if (!found)
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: no preprocessed BOLD for participant sub-%s%s%s",
                                 q->deriv, q->labels[i], q->task ? " and task " : "", q->task ? q->task : "");
    }
    if (L->n == 0)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: no preprocessed BOLD "
                             "(sub-*/[ses-*/]func/*%s%s%s%s_desc-preproc_bold.nii[.gz]) found%s%s",
                             q->deriv, q->task ? "_task-" : "", q->task ? q->task : "",
                             q->space ? "_space-" : "", q->space ? q->space : "",
                             q->nlabels ? " for the chosen participants" : "",
                             " (is it fMRIPrep's output? give it with --fmriprep DIR)");
    /* one space per run, unless chosen */
    for (int k = 1; k < L->n; k++)
        for (int i = 0; i < k; i++)
            if (!strcmp(L->r[k].rawstem, L->r[i].rawstem) && !strcmp(L->r[k].subdir, L->r[i].subdir))
                return dcm_error_set(err, DCM_ERR_INPUT, "%s and %s: the run has preprocessed BOLD in "
                                     "several spaces or resolutions; choose one with --space (or "
                                     "\"space\" in the models file), or keep only one", L->r[i].bold,
                                     L->r[k].bold);
    for (int k = 0; k < L->n; k++) {
        io_bids_run *r = &L->r[k];
        if (!is_file(r->confounds))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: missing; fMRIPrep's confounds of %s are needed",
                                 r->confounds, r->bold);
        if (!is_file(r->events))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: missing; the events (onset, duration, "
                                 "trial_type) of %s are needed for the DCM's inputs", r->events,
                                 r->bold);
    }
    return DCM_OK;
}

int io_bids_runs_find(const io_bids_query *q, io_bids_run **runs, int *nruns, dcm_error *err)
{
    *runs = NULL;
    *nruns = 0;
    DIR *d = opendir(q->deriv);
    if (!d)
        return dcm_error_set(err, DCM_ERR_INPUT, "cannot open the fMRIPrep folder %s: %s", q->deriv,
                             strerror(errno));
    run_list L = {0};
    int rc = DCM_OK;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (strncmp(e->d_name, "sub-", 4) || !label_chosen(q, e->d_name + 4))
            continue;
        char *sdir = dcm_strprintf("%s/%s", q->deriv, e->d_name);
        if (!sdir) {
            rc = oom(err);
            break;
        }
        if (is_dir(sdir)) {
            rc = scan_func(q, &L, e->d_name, err);
            DIR *s = rc ? NULL : opendir(sdir);
            struct dirent *f;
            while (s && !rc && (f = readdir(s))) {
                if (strncmp(f->d_name, "ses-", 4))
                    continue;
                char *sub = dcm_strprintf("%s/%s", e->d_name, f->d_name);
                rc = sub ? scan_func(q, &L, sub, err) : oom(err);
                free(sub);
            }
            if (s)
                closedir(s);
        }
        free(sdir);
    }
    closedir(d);
    if (!rc) {
        if (L.n)
            qsort(L.r, (size_t)L.n, sizeof *L.r, cmp_run);
        rc = check_runs(q, &L, err);
    }
    if (rc) {
        io_bids_runs_free(L.r, L.n);
        return rc;
    }
    *runs = L.r;
    *nruns = L.n;
    return DCM_OK;
}

void io_bids_runs_free(io_bids_run *runs, int nruns)
{
    for (int i = 0; runs && i < nruns; i++) {
        io_bids_run *r = &runs[i];
        free(r->sub);
        free(r->ses);
        free(r->task);
        free(r->rawstem);
        free(r->stem);
        free(r->subdir);
        free(r->bold);
        free(r->mask);
        free(r->confounds);
        free(r->events);
        free(r->raw_sidecar);
        free(r->task_sidecar);
    }
    free(runs);
}

char *io_bids_result_stem(const io_bids_run *r, const char *model)
{
    return dcm_strprintf("%s_desc-%s_dcm", r->stem, model);
}

/* ------------------------------------------------------------ TR and slice timing */

typedef struct {
    char *path;         /* the sidecar that gave RepetitionTime, or NULL */
    json_t *root;
    double tr;
} sidecar;

static char *json_of(const char *nii)
{
    size_t l = strlen(nii);
    size_t k = ends_with(nii, ".nii.gz") ? 7 : ends_with(nii, ".nii") ? 4 : 0;
    return dcm_strprintf("%.*s.json", (int)(l - k), nii);
}

/* The first sidecar with RepetitionTime: the preprocessed BOLD's, the raw
 * BOLD's, the dataset's task-<T>_bold.json. */
static int find_sidecar(const io_bids_run *r, sidecar *s, dcm_error *err)
{
    memset(s, 0, sizeof *s);
    char *cand[3] = {json_of(r->bold), xdup(r->raw_sidecar), xdup(r->task_sidecar)};
    int rc = DCM_OK;
    for (int i = 0; i < 3 && !rc; i++) {
        if (!cand[i]) {
            rc = oom(err);
            break;
        }
        if (s->path || !is_file(cand[i]))
            continue;
        json_error_t je;
        json_t *j = json_load_file(cand[i], 0, &je);
        if (!j || !json_is_object(j)) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s, line %d: %s", cand[i], je.line,
                               j ? "a sidecar must be a JSON object" : je.text);
            json_decref(j);
            break;
        }
        json_t *t = json_object_get(j, "RepetitionTime");
        if (!t) {
            json_decref(j);
            continue;
        }
        if (!json_is_number(t) || !(json_number_value(t) > 0) || !isfinite(json_number_value(t))) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: \"RepetitionTime\" must be a positive number of "
                               "seconds", cand[i]);
            json_decref(j);
            break;
        }
        s->tr = json_number_value(t);
        s->root = j;
        s->path = cand[i];
        cand[i] = NULL;
    }
    for (int i = 0; i < 3; i++)
        free(cand[i]);
    return rc;
}

static int check_tr(const io_bids_run *r, const sidecar *s, const io_nifti *hdr, double *tr,
                    char *note, size_t notelen, dcm_error *err)
{
    if (!s->path && !(hdr->tr > 0))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: no TR: the header has none and no sidecar "
                             "(%s's .json, the raw BOLD's, task-%s_bold.json) gives "
                             "\"RepetitionTime\"", r->bold, r->bold, r->task);
    if (!s->path) {
        *tr = hdr->tr;
        if (note)
            snprintf(note + strlen(note), notelen - strlen(note),
                     "%s: TR %g s from the header (no sidecar gives RepetitionTime); ", r->stem, *tr);
        return DCM_OK;
    }
    *tr = s->tr;
    if (hdr->tr > 0 && fabs(hdr->tr - s->tr) > 1e-3 * s->tr)
        return dcm_error_set(err, DCM_ERR_INPUT, "TR mismatch: %s says RepetitionTime = %g s but the "
                             "header of %s says %g s; fix the one that is wrong", s->path, s->tr,
                             r->bold, hdr->tr);
    return DCM_OK;
}

/* delays (n): -1 when DCM's default is to be used for all */
static int slice_delays(const io_bids_models *M, const sidecar *s, const io_nifti *hdr,
                        const double *centres, int n, double tr, double *delays, char *how,
                        size_t howlen, dcm_error *err)
{
    delays[0] = -1;
    snprintf(how, howlen, "TR/2 (DCM's default)");
    if (!M->slice_timing || !s->root)
        return DCM_OK;
    json_t *corr = json_object_get(s->root, "SliceTimingCorrected");
    json_t *st = json_object_get(s->root, "SliceTiming"), *start = json_object_get(s->root, "StartTime");
    if (json_is_true(corr)) {
        if (json_is_number(start) && json_number_value(start) >= 0 && json_number_value(start) < tr) {
            for (int i = 0; i < n; i++)
                delays[i] = json_number_value(start);
            snprintf(how, howlen, "StartTime of %s (slice-timing corrected)", s->path);
        }
        return DCM_OK;
    }
    if (!st)
        return DCM_OK;
    int sd = hdr->slice_dim ? hdr->slice_dim : 3;
    int ns = sd == 1 ? hdr->nx : sd == 2 ? hdr->ny : hdr->nz;
    if (!json_is_array(st) || (int)json_array_size(st) != ns)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"SliceTiming\" must list %d times (one per "
                             "slice along dimension %d of %s)", s->path, ns, sd, hdr->path);
    for (int i = 0; i < n; i++) {
        double ijk[3];
        io_nifti_mm2vox(hdr, centres + 3 * i, ijk);
        long k = lround(ijk[sd - 1]);
        k = k < 0 ? 0 : k >= ns ? ns - 1 : k;
        json_t *x = json_array_get(st, (size_t)k);
        double d = json_is_number(x) ? json_number_value(x) : NAN;
        if (!(d >= 0) || !(d < tr + 1e-9))
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: \"SliceTiming\"[%ld] must be a time in [0, "
                                 "TR) seconds", s->path, k);
        delays[i] = d;
    }
    snprintf(how, howlen, "SliceTiming of %s (the slice of each region's centre)", s->path);
    return DCM_OK;
}

/* ------------------------------------------------------------ confounds */

static const char *const motion6[] = {"trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"};

/* the columns a preset or name stands for (names malloc'd into out) */
static int expand_confound(const char *w, char **out, int *n)
{
    *n = 0;
    if (!strcmp(w, "motion6") || !strcmp(w, "motion12") || !strcmp(w, "motion24")) {
        int level = !strcmp(w, "motion6") ? 1 : !strcmp(w, "motion12") ? 2 : 4;
        const char *suffix[4] = {"", "_derivative1", "_power2", "_derivative1_power2"};
        for (int s = 0; s < level; s++)
            for (int i = 0; i < 6; i++)
                if (!(out[(*n)++] = dcm_strprintf("%s%s", motion6[i], suffix[s])))
                    return -1;
        return 0;
    }
    if (!strcmp(w, "acompcor") || !strcmp(w, "tcompcor")) {
        for (int i = 0; i < 6; i++)
            if (!(out[(*n)++] = dcm_strprintf("%c_comp_cor_%02d", w[0], i)))
                return -1;
        return 0;
    }
    if (!strcmp(w, "wm_csf")) {
        out[(*n)++] = xdup("white_matter");
        out[(*n)++] = xdup("csf");
        return out[0] && out[1] ? 0 : -1;
    }
    out[(*n)++] = xdup(!strcmp(w, "fd") ? "framewise_displacement" : w);
    return out[0] ? 0 : -1;
}

typedef struct {
    int ncols, nna;
    char **names;
    double *X;      /* v x ncols column-major */
} confounds;

static void confounds_free(confounds *c)
{
    free_strings(c->names, c->ncols);
    free(c->X);
    memset(c, 0, sizeof *c);
}

static int select_confounds(const io_bids_models *M, const io_bids_run *r, int v, confounds *c,
                            dcm_error *err)
{
    memset(c, 0, sizeof *c);
    if (!M->nconfounds)
        return DCM_OK;
    io_text_table t;
    int rc = io_text_read(r->confounds, &t, err);
    if (rc)
        return rc;
    if (t.rows - 1 != v) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: %d rows after the header but %s has %d volumes; "
                           "the confounds need one row per scan", r->confounds, t.rows - 1, r->bold, v);
        goto done;
    }
    c->names = calloc((size_t)M->nconfounds * 24, sizeof *c->names);
    c->X = malloc(sizeof(double) * (size_t)v * (size_t)M->nconfounds * 24);
    if (!c->names || !c->X) {
        rc = oom(err);
        goto done;
    }
    for (int q = 0; q < M->nconfounds && !rc; q++) {
        char *cols[24];
        int n = 0;
        if (expand_confound(M->confounds[q], cols, &n)) {
            for (int i = 0; i < n; i++)
                free(cols[i]);
            rc = oom(err);
            break;
        }
        for (int i = 0; i < n; i++) {
            int col = -1, dup = 0;
            for (int j = 0; j < t.cols && col < 0; j++)
                if (!strcmp(t.cells[j], cols[i]))
                    col = j;
            for (int k = 0; k < c->ncols; k++)
                dup |= !strcmp(c->names[k], cols[i]);
            if (col < 0 && !rc) {
                int preset = strcmp(cols[i], M->confounds[q]);
                rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: no column \"%s\"%s%s%s (named in the "
                                   "\"confounds\" of %s)", r->confounds, cols[i],
                                   preset ? " (part of the preset \"" : "", preset ? M->confounds[q] : "",
                                   preset ? "\")" : "", M->path);
            }
            if (rc || dup) {
                free(cols[i]);
                continue;
            }
            double *x = c->X + (size_t)c->ncols * v;
            for (int row = 1; row <= v && !rc; row++) {
                const char *cell = t.cells[(size_t)row * t.cols + col];
                if (!strcmp(cell, "n/a") || !strcmp(cell, "N/A") || !strcmp(cell, "NaN") || !*cell) {
                    x[row - 1] = 0;
                    c->nna++;
                } else if (io_parse_number(cell, &x[row - 1])) {
                    rc = dcm_error_set(err, DCM_ERR_INPUT, "%s, line %d, column \"%s\": \"%s\" is not "
                                       "a finite number (or n/a)", r->confounds, t.line[row], cols[i], cell);
                }
            }
            c->names[c->ncols++] = cols[i];
        }
    }
done:
    io_text_free(&t);
    if (rc)
        confounds_free(c);
    return rc;
}

/* ------------------------------------------------------------ extraction */

typedef struct {
    int v, n;
    double *Y;          /* v x n */
    int *nvox;
    double *centre;     /* 3 x n */
    double *explained;
    long *label;        /* n: the atlas label of each region (0: a sphere) */
    int nx0;
    double *X0;
    char **x0_names;
    double tr;
    char warning[1024];
} extracted;

static void extracted_free(extracted *e)
{
    free(e->Y);
    free(e->nvox);
    free(e->centre);
    free(e->explained);
    free(e->label);
    free(e->X0);
    free_strings(e->x0_names, e->nx0);
    memset(e, 0, sizeof *e);
}

static void add_warning(extracted *e, const char *name, const char *w)
{
    if (!w || !*w)
        return;
    size_t k = strlen(e->warning);
    snprintf(e->warning + k, sizeof e->warning - k, "%s%s: %s", k ? "; " : "", name, w);
}

static int take_x0(extracted *e, const io_extract_result *c, dcm_error *err)
{
    if (e->X0)
        return DCM_OK;
    e->nx0 = c->nx0;
    e->X0 = malloc(sizeof(double) * (size_t)c->v * (size_t)c->nx0);
    e->x0_names = calloc((size_t)c->nx0 + 1, sizeof *e->x0_names);
    if (!e->X0 || !e->x0_names)
        return oom(err);
    memcpy(e->X0, c->X0, sizeof(double) * (size_t)c->v * (size_t)c->nx0);
    for (int i = 0; i < c->nx0; i++)
        if (!(e->x0_names[i] = xdup(c->x0_names[i])))
            return oom(err);
    return DCM_OK;
}

static int atlas_label_of(const io_bids_models *M, const io_bids_region *g, const io_atlas_names *T,
                          long *label, dcm_error *err)
{
    *label = g->label;
    if (!g->label_name)
        return DCM_OK;
    for (int i = 0; i < T->count; i++)
        if (!strcmp(T->name[i], g->label_name)) {
            *label = T->index[i];
            return DCM_OK;
        }
    return dcm_error_set(err, DCM_ERR_INPUT, "%s: unknown atlas label \"%s\" (region %s of %s); the "
                         "table names %d labels", M->labels, g->label_name, g->name, M->path, T->count);
}

static int extract_atlas(const io_bids_models *M, io_extract_opts *o, extracted *e, dcm_error *err)
{
    int any = 0;
    for (int i = 0; i < M->nregions; i++)
        any |= !M->regions[i].sphere;
    if (!any)
        return DCM_OK;
    io_atlas_names T;
    memset(&T, 0, sizeof T);
    int rc = M->labels ? io_atlas_names_read(M->labels, &T, err) : DCM_OK;
    io_extract_atlas_result a;
    memset(&a, 0, sizeof a);
    io_extract_opts oa = *o;
    oa.atlas = M->atlas;
    oa.labels = M->labels;
    oa.all_labels = 1;
    oa.name = NULL;
    if (!rc)
        rc = io_extract_atlas_run(&oa, &a, err);
    if (!rc)
        rc = take_x0(e, &a.common, err);
    for (int i = 0; i < M->nregions && !rc; i++) {
        const io_bids_region *g = &M->regions[i];
        if (g->sphere)
            continue;
        long label;
        if ((rc = atlas_label_of(M, g, &T, &label, err)))
            break;
        int col = -1;
        for (int k = 0; k < a.nregions && col < 0; k++)
            if (a.label[k] == label)
                col = k;
        if (col < 0) {
            const char *why = "not in the atlas";
            for (int k = 0; k < a.nmissing; k++)
                if (a.missing[k] == label)
                    why = a.missing_why[k];
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: unknown atlas label %ld (region %s of %s): %s",
                               M->atlas, label, g->name, M->path, why);
            break;
        }
        e->label[i] = label;
        memcpy(e->Y + (size_t)i * e->v, a.Y + (size_t)col * e->v, sizeof(double) * (size_t)e->v);
        e->nvox[i] = a.nvox[col];
        e->explained[i] = a.explained[col];
        memcpy(e->centre + 3 * i, a.centre_mm + 3 * col, sizeof(double) * 3);
    }
    if (!rc && a.common.warning[0])
        add_warning(e, "atlas", a.common.warning);
    io_extract_atlas_result_free(&a);
    io_atlas_names_free(&T);
    return rc;
}

static int extract_regions(const io_bids_models *M, const io_bids_run *r, const char *nuisance,
                           char **cnames, int ncols, double tr, int v, extracted *e, dcm_error *err)
{
    memset(e, 0, sizeof *e);
    const int n = M->nregions;
    e->v = v;
    e->n = n;
    e->tr = tr;
    e->Y = malloc(sizeof(double) * (size_t)v * (size_t)n);
    e->nvox = calloc((size_t)n, sizeof *e->nvox);
    e->centre = calloc(3 * (size_t)n, sizeof *e->centre);
    e->explained = calloc((size_t)n, sizeof *e->explained);
    e->label = calloc((size_t)n, sizeof *e->label);
    if (!e->Y || !e->nvox || !e->centre || !e->explained || !e->label)
        return oom(err);
    io_extract_opts o;
    memset(&o, 0, sizeof o);
    o.bold = r->bold;
    o.mask = r->mask;
    o.confounds = ncols ? nuisance : NULL;
    o.columns = cnames;
    o.ncolumns = ncols;
    o.hpf = M->hpf;
    o.summary = M->summary;
    o.tr = tr;
    int rc = extract_atlas(M, &o, e, err);
    for (int i = 0; i < n && !rc; i++) {
        const io_bids_region *g = &M->regions[i];
        if (!g->sphere)
            continue;
        io_extract_opts os = o;
        os.sphere = 1;
        memcpy(os.centre, g->centre, sizeof os.centre);
        os.radius = g->radius;
        os.name = g->name;
        io_extract_result x;
        memset(&x, 0, sizeof x);
        rc = io_extract_run(&os, &x, err);
        if (rc) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            rc = dcm_error_set(err, rc, "region %s (sphere of %g mm at %g, %g, %g in %s): %s", g->name,
                               g->radius, g->centre[0], g->centre[1], g->centre[2], M->path, msg);
        }
        if (!rc && x.v != v)
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: %d volumes, expected %d", r->bold, x.v, v);
        if (!rc)
            rc = take_x0(e, &x, err);
        if (!rc) {
            memcpy(e->Y + (size_t)i * v, x.y, sizeof(double) * (size_t)v);
            e->nvox[i] = x.nvox;
            e->explained[i] = x.explained;
            memcpy(e->centre + 3 * i, x.centre_mm, sizeof(double) * 3);
            add_warning(e, g->name, x.warning);
        }
        io_extract_result_free(&x);
    }
    return rc;
}

/* ------------------------------------------------------------ writing one run */

static json_t *string_array(char *const *s, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(s[i]));
    return a;
}

static int write_spec(const io_bids_models *M, const io_bids_run *r, const extracted *e,
                      const double *delays, const char *dir, const io_bids_model *m, char **spec,
                      dcm_error *err)
{
    json_t *j = json_object();
    json_object_set_new(j, "TR", json_real(e->tr));
    json_object_set_new(j, "TE", json_real(M->TE));
    char *ts = dcm_strprintf("%s_desc-dcmregions_timeseries.tsv", r->stem);
    char *cf = dcm_strprintf("%s_desc-dcmconfounds_timeseries.tsv", r->stem);
    json_object_set_new(j, "timeseries", json_string(ts ? ts : ""));
    json_object_set_new(j, "confounds", json_string(cf ? cf : ""));
    json_object_set_new(j, "scans", json_integer(e->v));
    json_t *regions = json_array();
    for (int i = 0; i < M->nregions; i++)
        json_array_append_new(regions, json_string(M->regions[i].name));
    json_object_set_new(j, "regions", regions);
    json_object_set_new(j, "events", json_string(r->events));
    json_object_set_new(j, "inputs", string_array(M->inputs, M->ninputs));
    if (delays[0] >= 0) {
        json_t *d = json_array();
        for (int i = 0; i < M->nregions; i++)
            json_array_append_new(d, json_real(delays[i]));
        json_object_set_new(j, "delays", d);
    }
    json_object_update(j, m->switches);
    if (M->options)
        json_object_set(j, "options", M->options);
    *spec = dcm_strprintf("%s/%s_desc-%s_dcmspec.json", dir, r->stem, m->name);
    int rc = ts && cf && *spec ? write_json(*spec, j, err) : oom(err);
    free(ts);
    free(cf);
    json_decref(j);
    return rc;
}

static int write_run(const io_bids_models *M, const io_bids_run *r, const extracted *e,
                     const confounds *c, const double *delays, const char *delay_how,
                     const char *tr_from, const char *dir, dcm_error *err)
{
    char *ts = dcm_strprintf("%s/%s_desc-dcmregions_timeseries.tsv", dir, r->stem);
    char *side = dcm_strprintf("%s/%s_desc-dcmregions_timeseries.json", dir, r->stem);
    char *cf = dcm_strprintf("%s/%s_desc-dcmconfounds_timeseries.tsv", dir, r->stem);
    char **names = calloc((size_t)M->nregions + 1, sizeof *names);
    int rc = ts && side && cf && names ? DCM_OK : oom(err);
    for (int i = 0; i < M->nregions && names; i++)
        names[i] = M->regions[i].name;
    if (!rc)
        rc = io_tsv_write(ts, e->v, e->n, e->Y, (const char *const *)names, err);
    if (!rc)
        rc = io_tsv_write(cf, e->v, e->nx0, e->X0, (const char *const *)e->x0_names, err);
    if (!rc) {
        json_t *j = json_object();
        json_object_set_new(j, "Sources", json_pack("[s, s, s]", r->bold, r->confounds, r->events));
        if (r->mask)
            json_object_set_new(j, "Mask", json_string(r->mask));
        json_object_set_new(j, "ModelsFile", json_string(M->path));
        json_object_set_new(j, "RepetitionTime", json_real(e->tr));
        json_object_set_new(j, "RepetitionTimeFrom", json_string(tr_from));
        json_object_set_new(j, "Delays", json_string(delay_how));
        json_object_set_new(j, "Summary", json_string(M->summary == IO_SUMMARY_MEAN ? "mean"
                                                                                   : "eigenvariate"));
        json_object_set_new(j, "HighPassCutoff", json_real(M->hpf));
        json_object_set_new(j, "ConfoundColumns", string_array(c->names, c->ncols));
        json_object_set_new(j, "ConfoundNAReplacedByZero", json_integer(c->nna));
        json_t *regs = json_array();
        for (int i = 0; i < M->nregions; i++) {
            const io_bids_region *g = &M->regions[i];
            json_t *x = json_object();
            json_object_set_new(x, "name", json_string(g->name));
            if (g->sphere)
                json_object_set_new(x, "sphere", json_pack("{s:[f,f,f], s:f}", "centre", g->centre[0],
                                                           g->centre[1], g->centre[2], "radius", g->radius));
            else
                json_object_set_new(x, "atlas", json_pack("{s:s, s:I}", "file", M->atlas, "label",
                                                          (json_int_t)e->label[i]));
            json_object_set_new(x, "voxels", json_integer(e->nvox[i]));
            json_object_set_new(x, "centroid_mm", json_pack("[f,f,f]", e->centre[3 * i],
                                                            e->centre[3 * i + 1], e->centre[3 * i + 2]));
            json_object_set_new(x, "variance_explained", json_real(e->explained[i]));
            json_object_set_new(x, "delay", json_real(delays[0] >= 0 ? delays[i] : e->tr / 2));
            json_array_append_new(regs, x);
        }
        json_object_set_new(j, "Regions", regs);
        json_object_set_new(j, "Warnings", json_string(e->warning));
        rc = write_json(side, j, err);
        json_decref(j);
    }
    free(ts);
    free(side);
    free(cf);
    free(names);
    return rc;
}

int io_bids_run_prepare(const io_bids_models *M, const io_bids_run *r, const char *outdir,
                        char **specs, char *note, size_t notelen, dcm_error *err)
{
    io_nifti hdr;
    sidecar s;
    confounds c;
    extracted e;
    memset(&c, 0, sizeof c);
    memset(&e, 0, sizeof e);
    char *dir = NULL, *nuis = NULL;
    double *delays = NULL;
    int rc = io_nifti_open(r->bold, IO_NIFTI_HEADER, &hdr, err);
    if (rc)
        return rc;
    if ((rc = find_sidecar(r, &s, err)))
        goto done;
    double tr = 0;
    if ((rc = check_tr(r, &s, &hdr, &tr, note, notelen, err)))
        goto done;
    if (hdr.nt < 2) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: a 4D time series is needed (it has %d volume)",
                           r->bold, hdr.nt);
        goto done;
    }
    if ((rc = select_confounds(M, r, hdr.nt, &c, err)))
        goto done;
    dir = dcm_strprintf("%s/%s/func", outdir, r->subdir);
    nuis = dir ? dcm_strprintf("%s/%s_desc-dcmnuisance_timeseries.tsv", dir, r->stem) : NULL;
    delays = malloc(sizeof(double) * (size_t)M->nregions);
    if (!dir || !nuis || !delays) {
        rc = oom(err);
        goto done;
    }
    if ((rc = make_dirs(dir, err)))
        goto done;
    if (c.ncols && (rc = io_tsv_write(nuis, hdr.nt, c.ncols, c.X, (const char *const *)c.names, err)))
        goto done;
    if ((rc = extract_regions(M, r, nuis, c.names, c.ncols, tr, hdr.nt, &e, err)))
        goto done;
    char how[600];
    if ((rc = slice_delays(M, &s, &hdr, e.centre, e.n, tr, delays, how, sizeof how, err)))
        goto done;
    char tr_from[600];
    snprintf(tr_from, sizeof tr_from, "%s", s.path ? s.path : "NIfTI header");
    if ((rc = write_run(M, r, &e, &c, delays, how, tr_from, dir, err)))
        goto done;
    for (int k = 0; k < M->nmodels && !rc; k++)
        rc = write_spec(M, r, &e, delays, dir, &M->models[k], &specs[k], err);
    if (!rc && note && c.nna)
        snprintf(note + strlen(note), notelen - strlen(note),
                 "%s: %d n/a cells of the confounds replaced by 0; ", r->stem, c.nna);
    if (!rc && note && e.warning[0])
        snprintf(note + strlen(note), notelen - strlen(note), "%s: %s; ", r->stem, e.warning);
done:
    io_nifti_close(&hdr);
    json_decref(s.root);
    free(s.path);
    confounds_free(&c);
    extracted_free(&e);
    free(dir);
    free(nuis);
    free(delays);
    return rc;
}

/* ------------------------------------------------------------ dataset description */

int io_bids_write_description(const char *outdir, const char *bids_dir, const char *version,
                              dcm_error *err)
{
    int rc = make_dirs(outdir, err);
    if (rc)
        return rc;
    char *path = dcm_strprintf("%s/dataset_description.json", outdir);
    if (!path)
        return oom(err);
    json_t *j = json_pack("{s:s, s:s, s:s, s:[{s:s, s:s, s:s}], s:[{s:s}]}", "Name",
                          "dcm: dynamic causal models", "BIDSVersion", "1.8.0", "DatasetType",
                          "derivative", "GeneratedBy", "Name", "dcm", "Version", version,
                          "Description", "DCM for fMRI (SPM12's model), dcm bids", "SourceDatasets",
                          "URL", bids_dir);
    rc = j ? write_json(path, j, err) : oom(err);
    json_decref(j);
    free(path);
    return rc;
}

/* ------------------------------------------------------------ participants.tsv */

int io_bids_covariates(const char *path, char *const *subjects, int nsub, char *const *covariates,
                       int ncov, int exclude, double *X, int *keep, char **why, dcm_error *err)
{
    io_text_table t;
    int rc = io_text_read(path, &t, err);
    if (rc)
        return rc;
    int pid = -1, *col = calloc((size_t)ncov + 1, sizeof *col);
    if (!col) {
        io_text_free(&t);
        return oom(err);
    }
    for (int j = 0; j < t.cols; j++)
        if (!strcmp(t.cells[j], "participant_id"))
            pid = j;
    if (pid < 0)
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: no column \"participant_id\"", path);
    for (int c = 0; c < ncov && !rc; c++) {
        col[c] = -1;
        for (int j = 0; j < t.cols; j++)
            if (!strcmp(t.cells[j], covariates[c]))
                col[c] = j;
        if (col[c] < 0)
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: no column \"%s\" (a covariate of the group "
                               "analysis)", path, covariates[c]);
    }
    for (int i = 0; i < nsub && !rc; i++) {
        if (keep)
            keep[i] = 1;
        int row = -1;
        for (int k = 1; k < t.rows && row < 0; k++) {
            const char *id = t.cells[(size_t)k * t.cols + pid];
            if (!strcmp(id, subjects[i]) || (!strncmp(id, "sub-", 4) && !strcmp(id + 4, subjects[i])))
                row = k;
        }
        char problem[300] = "";
        if (row < 0)
            snprintf(problem, sizeof problem, "no row for sub-%s", subjects[i]);
        for (int c = 0; c < ncov && row >= 0 && !problem[0]; c++) {
            const char *cell = t.cells[(size_t)row * t.cols + col[c]];
            if (io_parse_number(cell, &X[(size_t)i * ncov + c]))
                snprintf(problem, sizeof problem, "line %d: sub-%s's \"%s\" is \"%s\", not a number",
                         t.line[row], subjects[i], covariates[c], cell);
        }
        if (problem[0] && !exclude)
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s, %s (give a value, or pass --exclude-missing to "
                               "leave such participants out of the group analysis)", path, problem);
        else if (problem[0]) {
            keep[i] = 0;
            if (!(why[i] = dcm_strprintf("%s, %s", path, problem)))
                rc = oom(err);
        }
    }
    /* mean-centre over the subjects kept */
    for (int c = 0; c < ncov && !rc; c++) {
        double s = 0;
        int n = 0;
        for (int i = 0; i < nsub; i++)
            if (!keep || keep[i]) {
                s += X[(size_t)i * ncov + c];
                n++;
            }
        for (int i = 0; i < nsub && n; i++)
            X[(size_t)i * ncov + c] -= s / n;
    }
    free(col);
    io_text_free(&t);
    return rc;
}
