/* cmd_bids.c — `dcm bids BIDS_DIR OUTPUT_DIR participant|group`: a BIDS
 * App over fMRIPrep's derivatives (MANUAL ch. 19, "BIDS datasets"). The participant level
 * extracts the regions of every run (io_bids.c) and fits every model with
 * dcm_batch (threads, resumable); the group level compares the models by
 * random-effects BMS and runs PEB with participants.tsv covariates. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"
#include "dcm/cli/cli_peb.h"
#include "dcm/dcm_batch.h"
#include "io/io_atomic.h"
#include "io/io_bids.h"
#include "io/io_pnames.h"
#include "io/io_result.h"
#include "io/io_spec.h"
#include "io/io_tsv.h"

static const char *const usage[] = {
    "BIDS_DIR OUTPUT_DIR participant|group --models MODELS.json\n"
    "               [--participant-label L ...] [--task T] [--space S] [--fmriprep DIR]\n"
    "               [-j N] [--force] [--no-mask] [--exclude-missing] [-q]",
    NULL};

static const char *description =
    "A BIDS App: DCMs of every participant of a BIDS dataset preprocessed by\n"
    "fMRIPrep, then their group analysis.\n"
    "\n"
    "participant: for each run (sub-*/[ses-*/]func/*_desc-preproc_bold.nii.gz\n"
    "of the fMRIPrep folder), check the TR (sidecar against header), select the\n"
    "confounds (presets of fMRIPrep's columns; n/a -> 0), extract the regions of\n"
    "MODELS.json (spheres in mm or atlas labels; eigenvariates), write a spec per\n"
    "model and fit them all in threads (as dcm batch: results already there are\n"
    "kept, so an interrupted run resumes). Everything goes to\n"
    "OUTPUT_DIR/sub-*/[ses-*/]func/ with BIDS names.\n"
    "\n"
    "group: random-effects model comparison (spm_BMS) over the models, and PEB\n"
    "(spm_dcm_peb) of one model's parameters with covariates from\n"
    "BIDS_DIR/participants.tsv (mean-centred), into OUTPUT_DIR/group/.\n";

static const char *footer =
    "example:\n"
    "  dcm bids /data/ds /data/ds/derivatives/dcm participant --models models.json \\\n"
    "      --participant-label 01 --participant-label 02 --task attention -j 2\n"
    "  dcm bids /data/ds /data/ds/derivatives/dcm group --models models.json\n"
    "The models file is described in MANUAL, chapter \"BIDS datasets: dcm bids\".\n";

typedef struct {
    const char *bids, *outdir, *level, *models, *task, *space, *fmriprep;
    const char **labels;
    int nlabels, force, no_mask, exclude, quiet;
    long threads;
    char **label_words;   /* labels without "sub-", commas split */
    int nwords;
    char *deriv;
} bids_opts;

/* ------------------------------------------------------------ helpers */

static int split_labels(bids_opts *o)
{
    o->label_words = calloc(1024, sizeof *o->label_words);
    if (!o->label_words)
        return -1;
    for (int i = 0; i < o->nlabels; i++) {
        char *copy = strdup(o->labels[i]), *save = NULL;
        if (!copy)
            return -1;
        for (char *w = strtok_r(copy, ", ", &save); w && o->nwords < 1023; w = strtok_r(NULL, ", ", &save))
            if (!(o->label_words[o->nwords++] = strdup(strncmp(w, "sub-", 4) ? w : w + 4)))
                return -1;
        free(copy);
    }
    return 0;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int find(bids_opts *o, const io_bids_models *M, io_bids_run **runs, int *nruns)
{
    io_bids_query q = {.bids = o->bids, .deriv = o->deriv, .labels = o->label_words,
                       .nlabels = o->nwords, .task = o->task, .space = o->space ? o->space : M->space,
                       .use_mask = !o->no_mask};
    dcm_error err = {0, ""};
    if (io_bids_runs_find(&q, runs, nruns, &err))
        return cli_report("bids", &err);
    return DCM_OK;
}

/* ------------------------------------------------------------ participant */

typedef struct {
    const dcm_batch_manifest *m;
    const dcm_batch_outcome *out;
    int quiet, done, total;
} progress;

static void on_event(void *ctx, int job, double elapsed)
{
    progress *p = ctx;
    (void)elapsed;
    if (job < 0)
        return;
    p->done++;
    const dcm_batch_outcome *o = &p->out[job];
    const dcm_batch_job *J = &p->m->jobs[job];
    if (o->state == DCM_BATCH_FAILED)
        fprintf(stderr, "dcm bids: %s/%s failed (exit %d): %s\n", J->subject, J->model, o->code, o->msg);
    else if (!p->quiet)
        fprintf(stderr, "dcm bids: [%d/%d] %s: F = %.2f, %d iterations, %.1f s\n", p->done, p->total,
                J->model, o->F, o->iterations, o->seconds);
}

/* The manifest dcm_batch runs: "subjects" are the func folders
 * (sub-01/func, sub-01/ses-1/func) and "models" the result stems, so the
 * results land at OUTPUT_DIR/<folder>/<stem>.json with BIDS names. */
static int build_manifest(const io_bids_models *M, const io_bids_run *runs, int nruns, char **specs,
                          dcm_batch_manifest *m)
{
    memset(m, 0, sizeof *m);
    if (nruns < 1 || M->nmodels < 1)
        return -1;
    const size_t njobs = (size_t)nruns * (size_t)M->nmodels;
    m->path = strdup("(dcm bids)");
    m->jobs = calloc(njobs, sizeof *m->jobs);
    m->subjects = calloc(njobs, sizeof *m->subjects);
    m->models = calloc(njobs, sizeof *m->models);
    if (!m->path || !m->jobs || !m->subjects || !m->models)
        return -1;
    for (int r = 0; r < nruns; r++) {
        char folder[2048];
        snprintf(folder, sizeof folder, "%s/func", runs[r].subdir);
        int s = -1;
        for (int k = 0; k < m->nsub && s < 0; k++)
            if (!strcmp(m->subjects[k], folder))
                s = k;
        if (s < 0) {
            if (!(m->subjects[m->nsub] = strdup(folder)))
                return -1;
            s = m->nsub++;
        }
        for (int k = 0; k < M->nmodels; k++) {
            int j = r * M->nmodels + k;
            if (!(m->models[j] = io_bids_result_stem(&runs[r], M->models[k].name)))
                return -1;
            m->nmod = j + 1;
            dcm_batch_job *J = &m->jobs[j];
            J->spec = strdup(specs[j]);
            J->spec_path = strdup(specs[j]);
            m->njobs = j + 1;
            if (!J->spec || !J->spec_path)
                return -1;
            J->subject = m->subjects[s];
            J->model = m->models[j];
            J->line = j + 1;
            J->sub = s;
            J->mod = j;
        }
    }
    if (!(m->cell = malloc(sizeof(int) * (size_t)m->nsub * (size_t)m->nmod)))
        return -1;
    for (int i = 0; i < m->nsub * m->nmod; i++)
        m->cell[i] = -1;
    for (int j = 0; j < m->njobs; j++)
        m->cell[m->jobs[j].sub * m->nmod + m->jobs[j].mod] = j;
    return 0;
}

/* every spec once through io_spec (the one parser): a hypothesis naming a
 * region or input that does not exist, or a trial type absent from the
 * events, is reported before anything is fitted */
static int check_specs(const io_bids_models *M, const io_bids_run *r, char **specs)
{
    for (int k = 0; k < M->nmodels; k++) {
        dcm_problem *P = NULL;
        dcm_error err = {0, ""};
        int rc = io_spec_load(specs[k], &P, &err);
        dcm_problem_free(P);
        if (rc)
            return cli_fail("bids", rc, "model \"%s\" of %s on %s: %s", M->models[k].name, M->path,
                            r->bold, err.msg);
    }
    return DCM_OK;
}

static int participant(bids_opts *o, const io_bids_models *M)
{
    io_bids_run *runs = NULL;
    int nruns = 0, rc = find(o, M, &runs, &nruns), lock = -1;
    if (rc)
        return rc;
    dcm_error err = {0, ""};
    char **specs = calloc((size_t)nruns * M->nmodels + 1, sizeof *specs);
    dcm_batch_manifest m;
    memset(&m, 0, sizeof m);
    dcm_batch_outcome *out = NULL;
    int *todo = NULL;
    if (!specs) {
        rc = cli_fail("bids", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    if ((rc = dcm_batch_lock(o->outdir, &lock, &err)) ||
        (rc = io_bids_write_description(o->outdir, o->bids, dcm_version(), &err))) {
        rc = cli_report("bids", &err);
        goto done;
    }
    for (int r = 0; r < nruns; r++) {
        char note[4096] = "";
        if ((rc = io_bids_run_prepare(M, &runs[r], o->outdir, specs + (size_t)r * M->nmodels, note,
                                      sizeof note, &err))) {
            rc = cli_report("bids", &err);
            goto done;
        }
        if ((rc = check_specs(M, &runs[r], specs + (size_t)r * M->nmodels)))
            goto done;
        if (!o->quiet)
            fprintf(stderr, "dcm bids: %s: %d regions extracted%s%s\n", runs[r].stem, M->nregions,
                    note[0] ? "; " : "", note);
    }
    if (build_manifest(M, runs, nruns, specs, &m)) {
        rc = cli_fail("bids", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    out = calloc((size_t)m.njobs, sizeof *out);
    todo = malloc(sizeof(int) * (size_t)m.njobs);
    if (!out || !todo) {
        rc = cli_fail("bids", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    if ((rc = dcm_batch_prepare(&m, o->outdir, o->force, out, &err))) {
        rc = cli_report("bids", &err);
        goto done;
    }
    int ntodo = 0, skipped = 0;
    for (int j = 0; j < m.njobs; j++) {
        if (out[j].state == DCM_BATCH_TODO)
            todo[ntodo++] = j;
        else
            skipped++;
    }
    progress pg = {&m, out, o->quiet, 0, ntodo};
    int threads = o->threads > 0 ? (int)o->threads : dcm_batch_cpus(NULL);
    if (ntodo && (rc = dcm_batch_run(&m, o->outdir, todo, ntodo, threads, 0.0, on_event, &pg, out, &err))) {
        rc = cli_report("bids", &err);
        goto done;
    }
    int failed = 0, first_code = 0;
    for (int j = 0; j < m.njobs; j++)
        if (out[j].state == DCM_BATCH_FAILED) {
            failed++;
            first_code = first_code ? first_code : out[j].code;
        }
    printf("dcm bids participant: %d runs x %d models: %d fitted, %d already there, %d failed -> %s\n",
           nruns, M->nmodels, ntodo - failed, skipped, failed, o->outdir);
    rc = failed ? first_code : DCM_OK;
done:
    for (int i = 0; specs && i < nruns * M->nmodels; i++)
        free(specs[i]);
    free(specs);
    free(out);
    free(todo);
    dcm_batch_manifest_free(&m);
    io_bids_runs_free(runs, nruns);
    dcm_batch_unlock(lock);
    return rc;
}

/* ------------------------------------------------------------ group */

typedef struct {
    int nsub, nmod;
    char **subjects;     /* labels without "sub-" */
    int *first_run;      /* nsub: index of the subject's first run */
    int *nruns;          /* nsub */
    double *lme;         /* nsub x nmod: free energies summed over runs */
} group_table;

static void group_table_free(group_table *g)
{
    free(g->subjects);
    free(g->first_run);
    free(g->nruns);
    free(g->lme);
}

static char *result_path(const bids_opts *o, const io_bids_run *r, const char *model)
{
    char *stem = io_bids_result_stem(r, model);
    if (!stem)
        return NULL;
    size_t n = strlen(o->outdir) + strlen(r->subdir) + strlen(stem) + 16;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s/func/%s.json", o->outdir, r->subdir, stem);
    free(stem);
    return p;
}

static int collect(const bids_opts *o, const io_bids_models *M, const io_bids_run *runs, int nruns,
                   group_table *g)
{
    memset(g, 0, sizeof *g);
    g->nmod = M->nmodels;
    g->subjects = calloc((size_t)nruns, sizeof *g->subjects);
    g->first_run = calloc((size_t)nruns, sizeof *g->first_run);
    g->nruns = calloc((size_t)nruns, sizeof *g->nruns);
    g->lme = calloc((size_t)nruns * M->nmodels, sizeof *g->lme);
    if (!g->subjects || !g->first_run || !g->nruns || !g->lme)
        return cli_fail("bids", DCM_ERR_SYSTEM, "out of memory");
    for (int r = 0; r < nruns; r++) {
        int s = -1;
        for (int k = 0; k < g->nsub && s < 0; k++)
            if (!strcmp(g->subjects[k], runs[r].sub))
                s = k;
        if (s < 0) {
            s = g->nsub++;
            g->subjects[s] = runs[r].sub;
            g->first_run[s] = r;
        }
        g->nruns[s]++;
        for (int k = 0; k < M->nmodels; k++) {
            char *p = result_path(o, &runs[r], M->models[k].name);
            io_result_summary R;
            memset(&R, 0, sizeof R);
            dcm_error err = {0, ""};
            int rc = p ? io_result_load(p, &R, &err) : dcm_error_set(&err, DCM_ERR_SYSTEM, "out of memory");
            if (rc && access(p, F_OK) != 0)
                rc = cli_fail("bids", DCM_ERR_INPUT, "%s: missing; run the participant level for "
                              "sub-%s first", p, runs[r].sub);
            else if (rc)
                rc = cli_report("bids", &err);
            else
                g->lme[(size_t)s * M->nmodels + k] += R.F;
            io_result_summary_free(&R);
            free(p);
            if (rc)
                return rc;
        }
    }
    return DCM_OK;
}

static int write_lme(const bids_opts *o, const io_bids_models *M, const group_table *g, const char *gdir)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/dcm_lme.tsv", gdir);
    io_atomic a;
    memset(&a, 0, sizeof a);
    dcm_error err = {0, ""};
    if (io_atomic_open(&a, path, &err))
        return cli_report("bids", &err);
    fputs("participant_id", a.fp);
    for (int k = 0; k < M->nmodels; k++)
        fprintf(a.fp, "\t%s", M->models[k].name);
    fputc('\n', a.fp);
    for (int s = 0; s < g->nsub; s++) {
        fprintf(a.fp, "sub-%s", g->subjects[s]);
        for (int k = 0; k < M->nmodels; k++)
            fprintf(a.fp, "\t%.17g", g->lme[(size_t)s * M->nmodels + k]);
        fputc('\n', a.fp);
    }
    (void)o;
    if (io_atomic_commit(&a, &err))
        return cli_report("bids", &err);
    return DCM_OK;
}

static int write_json_file(const char *path, json_t *j)
{
    io_atomic a;
    memset(&a, 0, sizeof a);
    dcm_error err = {0, ""};
    if (io_atomic_open(&a, path, &err))
        return cli_report("bids", &err);
    if (json_dumpf(j, a.fp, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))) {
        io_atomic_abort(&a);
        return cli_fail("bids", DCM_ERR_SYSTEM, "cannot write %s", path);
    }
    fputc('\n', a.fp);
    if (io_atomic_commit(&a, &err))
        return cli_report("bids", &err);
    return DCM_OK;
}

static json_t *real_array(const double *x, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_real(x[i]));
    return a;
}

/* random-effects BMS; *winner: the model with the highest xp */
static int rfx(const io_bids_models *M, const group_table *g, const char *gdir, int *winner)
{
    *winner = 0;
    if (M->nmodels < 2) {
        printf("one model: no model comparison\n");
        return DCM_OK;
    }
    dcm_bms_rfx_result R;
    memset(&R, 0, sizeof R);
    dcm_error err = {0, ""};
    if (dcm_bms_rfx(g->lme, g->nsub, M->nmodels, &R, &err)) {
        dcm_bms_rfx_result_free(&R);
        return cli_report("bids", &err);
    }
    printf("random-effects model comparison over %d participants (spm_BMS):\n%-20s %10s %10s %10s\n",
           g->nsub, "model", "exp_r", "xp", "pxp");
    json_t *names = json_array();
    for (int k = 0; k < M->nmodels; k++) {
        printf("%-20s %10.4f %10.4f %10.4f\n", M->models[k].name, R.exp_r[k], R.xp[k], R.pxp[k]);
        json_array_append_new(names, json_string(M->models[k].name));
        if (R.xp[k] > R.xp[*winner])
            *winner = k;
    }
    printf("Bayesian omnibus risk %.4g\n", R.bor);
    json_t *j = json_pack("{s:o, s:i, s:o, s:o, s:o, s:o, s:f, s:b}", "models", names, "participants",
                          g->nsub, "alpha", real_array(R.alpha, M->nmodels), "exp_r",
                          real_array(R.exp_r, M->nmodels), "xp", real_array(R.xp, M->nmodels), "pxp",
                          real_array(R.pxp, M->nmodels), "bor", R.bor, "converged", R.converged);
    char path[4400];
    snprintf(path, sizeof path, "%s/dcm_rfx.json", gdir);
    int rc = write_json_file(path, j);
    json_decref(j);
    dcm_bms_rfx_result_free(&R);
    return rc;
}

typedef struct {
    int nkeep;
    int *idx;            /* subjects kept */
    double *X;           /* nkeep x (1 + ncov): intercept, covariates (centred) */
    json_t *excluded;
} peb_design;

static int make_design(const bids_opts *o, const io_bids_models *M, const group_table *g, peb_design *d)
{
    const int nc = M->ncovariates, nx = 1 + nc;
    double *C = calloc((size_t)g->nsub * (nc + 1), sizeof *C);
    int *keep = calloc((size_t)g->nsub, sizeof *keep);
    char **why = calloc((size_t)g->nsub, sizeof *why);
    d->idx = malloc(sizeof(int) * (size_t)g->nsub);
    d->X = malloc(sizeof(double) * (size_t)g->nsub * nx);
    d->excluded = json_array();
    if (!C || !keep || !why || !d->idx || !d->X) {
        free(C);
        free(keep);
        free(why);
        return cli_fail("bids", DCM_ERR_SYSTEM, "out of memory");
    }
    int rc = DCM_OK;
    for (int i = 0; i < g->nsub; i++)
        keep[i] = 1;
    if (nc) {
        char path[4096];
        snprintf(path, sizeof path, "%s/participants.tsv", o->bids);
        dcm_error err = {0, ""};
        if (io_bids_covariates(path, g->subjects, g->nsub, M->covariates, nc, o->exclude, C, keep, why,
                               &err))
            rc = cli_report("bids", &err);
    }
    for (int i = 0; i < g->nsub && !rc; i++) {
        if (!keep[i]) {
            fprintf(stderr, "dcm bids: sub-%s left out of PEB: %s\n", g->subjects[i], why[i]);
            json_array_append_new(d->excluded, json_pack("{s:s, s:s}", "participant", g->subjects[i],
                                                         "reason", why[i]));
            continue;
        }
        d->idx[d->nkeep] = i;
        d->X[(size_t)d->nkeep * nx] = 1.0;
        for (int c = 0; c < nc; c++)
            d->X[(size_t)d->nkeep * nx + 1 + c] = C[(size_t)i * nc + c];
        d->nkeep++;
    }
    for (int i = 0; i < g->nsub; i++)
        free(why[i]);
    free(why);
    free(keep);
    free(C);
    return rc;
}

static int peb(const bids_opts *o, const io_bids_models *M, const io_bids_run *runs,
               const group_table *g, int model, const char *gdir)
{
    peb_design d;
    memset(&d, 0, sizeof d);
    io_result_summary *R = calloc((size_t)g->nsub, sizeof *R);
    int nR = 0, rc = R ? DCM_OK : cli_fail("bids", DCM_ERR_SYSTEM, "out of memory");
    double *F = NULL, *eff = NULL;
    int *sel = NULL;
    peb_stack st = {0};
    dcm_peb_result P;
    memset(&P, 0, sizeof P);
    json_t *j = NULL;
    dcm_error err = {0, ""};
    const char *mname = M->models[model].name;
    for (int s = 0; s < g->nsub && !rc; s++)
        if (g->nruns[s] != 1)
            rc = cli_fail("bids", DCM_ERR_INPUT, "PEB needs one run per participant but sub-%s has %d; "
                          "choose one with --task (or analyse sessions separately)", g->subjects[s],
                          g->nruns[s]);
    if (!rc)
        rc = make_design(o, M, g, &d);
    if (!rc && d.nkeep < 2)
        rc = cli_fail("bids", DCM_ERR_INPUT, "PEB needs at least 2 participants (%d left)", d.nkeep);
    for (int i = 0; i < d.nkeep && !rc; i++) {
        char *p = result_path(o, &runs[g->first_run[d.idx[i]]], mname);
        nR = i + 1;
        if (!p || io_result_load(p, &R[i], &err) || (i && io_result_align(&R[i], &R[0], &err)))
            rc = p ? cli_report("bids", &err) : cli_fail("bids", DCM_ERR_SYSTEM, "out of memory");
        free(p);
    }
    if (rc)
        goto done;
    const int n = d.nkeep, np = R[0].np, nx = 1 + M->ncovariates;
    io_pname_space S = io_result_space(&R[0]);
    static const char *const all_A[] = {"A"};   /* no "parameters": the A block */
    int nsel = 0;
    if (!(sel = malloc(sizeof(int) * np))) {
        rc = cli_fail("bids", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    if (peb_select(&R[0], M->nparams ? (const char *const *)M->params : all_A, M->nparams ? M->nparams : 1,
                   sel, &nsel, &err)) {
        rc = cli_fail("bids", err.code, "%s: \"group\".\"parameters\": %s", M->path, err.msg);
        goto done;
    }
    if (!nsel) {
        rc = cli_fail("bids", DCM_ERR_INPUT, "%s: the PEB parameters are all fixed in model %s", M->path,
                      mname);
        goto done;
    }
    if (peb_stack_subjects(R, n, sel, nsel, &st)) {
        rc = cli_fail("bids", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    if (!(F = malloc(sizeof(double) * n))) {
        rc = cli_fail("bids", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++)
        F[i] = R[i].F;
    dcm_peb_input in = {.nsub = n, .np = st.np, .Ep = st.Ep, .Cp = st.Cp, .pE = st.pE, .pV = st.pV,
                        .F = F, .sel = st.ksel, .nsel = nsel, .X = d.X, .nx = nx, .q = M->peb_q,
                        .maxit = M->peb_maxit};
    if (dcm_peb(&in, &P, &err)) {
        rc = cli_report("bids", &err);
        goto done;
    }
    peb_stack_unmap(&st, sel, &P);
    const int ne = P.np * nx;
    if (!(eff = malloc(sizeof(double) * 4 * (size_t)ne))) {
        rc = cli_fail("bids", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    dcm_peb_effects(&P, d.X, n, R[0].pV, eff, eff + ne, eff + 2 * ne, eff + 3 * ne);
    printf("\nPEB of model %s over %d participants (spm_dcm_peb): F = %.4f (%d iterations%s)\n"
           "%-28s %-14s %10s %10s %12s\n", mname, n, P.F, P.iterations, P.converged ? "" : ", NOT converged",
           "parameter", "covariate", "mean", "sd", "probability");
    json_t *effects = json_array(), *cov = json_array(), *subs = json_array();
    json_array_append_new(cov, json_string("intercept"));
    for (int c = 0; c < M->ncovariates; c++)
        json_array_append_new(cov, json_string(M->covariates[c]));
    for (int i = 0; i < n; i++)
        json_array_append_new(subs, json_string(g->subjects[d.idx[i]]));
    for (int c = 0; c < nx; c++)
        for (int q = 0; q < P.np; q++) {
            int k = q + c * P.np;
            char *name = io_pname_name(&S, P.sel[q]);
            const char *cname = c ? M->covariates[c - 1] : "intercept";
            printf("%-28s %-14s %10.4f %10.4f %12.4f%s\n", name ? name : "?", cname, eff[k],
                   sqrt(eff[ne + k]), eff[3 * ne + k], eff[3 * ne + k] > 0.95 ? " *" : "");
            json_array_append_new(effects, json_pack("{s:s, s:s, s:f, s:f, s:f}", "parameter",
                                                     name ? name : "?", "covariate", cname, "mean",
                                                     eff[k], "sd", sqrt(eff[ne + k]), "probability",
                                                     eff[3 * ne + k]));
            free(name);
        }
    j = json_pack("{s:s, s:o, s:o, s:o, s:f, s:i, s:b, s:o}", "model", mname, "participants", subs,
                  "covariates", cov, "effects", effects, "F", P.F, "iterations", P.iterations,
                  "converged", P.converged, "excluded", d.excluded);
    d.excluded = NULL;
    char path[4400];
    snprintf(path, sizeof path, "%s/dcm_desc-%.40s_peb.json", gdir, mname);
    rc = write_json_file(path, j);
done:
    json_decref(j);
    json_decref(d.excluded);
    free(d.idx);
    free(d.X);
    for (int i = 0; i < nR; i++)
        io_result_summary_free(&R[i]);
    free(R);
    peb_stack_free(&st);
    free(F);
    free(eff);
    free(sel);
    dcm_peb_result_free(&P);
    return rc;
}

static int group(bids_opts *o, const io_bids_models *M)
{
    io_bids_run *runs = NULL;
    int nruns = 0, rc = find(o, M, &runs, &nruns);
    if (rc)
        return rc;
    group_table g;
    memset(&g, 0, sizeof g);
    char gdir[4096];
    snprintf(gdir, sizeof gdir, "%s/group", o->outdir);
    dcm_error err = {0, ""};
    int winner = 0;
    if ((rc = collect(o, M, runs, nruns, &g)))
        goto done;
    if (io_bids_write_description(o->outdir, o->bids, dcm_version(), &err)) {
        rc = cli_report("bids", &err);
        goto done;
    }
    if (mkdir(gdir, 0777) != 0 && errno != EEXIST) {
        rc = cli_fail("bids", DCM_ERR_SYSTEM, "cannot create the folder %s: %s", gdir, strerror(errno));
        goto done;
    }
    if ((rc = write_lme(o, M, &g, gdir)) || (rc = rfx(M, &g, gdir, &winner)))
        goto done;
    int model = winner;
    for (int k = 0; k < M->nmodels && M->peb_model; k++)
        if (!strcmp(M->models[k].name, M->peb_model))
            model = k;
    if (g.nsub < 2) {
        printf("one participant: no PEB\n");
        goto done;
    }
    rc = peb(o, M, runs, &g, model, gdir);
    if (!rc)
        printf("-> %s\n", gdir);
done:
    group_table_free(&g);
    io_bids_runs_free(runs, nruns);
    return rc;
}

/* ------------------------------------------------------------ the command */

int cmd_bids(int argc, char **argv)
{
    bids_opts o;
    memset(&o, 0, sizeof o);
    o.labels = calloc((size_t)argc + 1, sizeof *o.labels);
    if (!o.labels)
        return cli_fail("bids", DCM_ERR_SYSTEM, "out of memory");
    const cli_opt options[] = {
        CLI_STRING(0, "models", &o.models, "MODELS.json",
                   "regions, inputs, confounds, hypotheses and the group analysis (MANUAL, chapter \"BIDS datasets\"; required)"),
        CLI_LIST(0, "participant-label", o.labels, &o.nlabels, "L",
                 "only these participants (with or without \"sub-\"; repeat or separate by commas); "
                 "default all; words after the analysis level are more labels (BIDS-Apps' "
                 "--participant_label 01 02)", .flags = CLI_OPT_NONEMPTY),
        CLI_LIST(0, "participant_label", o.labels, &o.nlabels, "L",
                 "the same (the BIDS-Apps spelling)", .flags = CLI_OPT_NONEMPTY),
        CLI_STRING(0, "task", &o.task, "T", "only runs of this task (the task- entity)"),
        CLI_STRING(0, "space", &o.space, "S",
                   "the space of the preprocessed BOLD (space- entity; default the models file's, "
                   "else the only one)"),
        CLI_STRING(0, "fmriprep", &o.fmriprep, "DIR",
                   "fMRIPrep's output (default BIDS_DIR/derivatives/fmriprep, else BIDS_DIR)"),
        CLI_INT('j', "jobs", &o.threads, "N", 1, 1024, "threads for the fits (default: the cores)"),
        CLI_FLAG(0, "force", &o.force, "refit models whose results exist"),
        CLI_FLAG(0, "no-mask", &o.no_mask, "do not use fMRIPrep's brain mask"),
        CLI_FLAG(0, "exclude-missing", &o.exclude,
                 "group: leave participants whose covariates are n/a (or absent) out of PEB, saying so "
                 "(default: an error)"),
        CLI_FLAG('q', "quiet", &o.quiet, "print only the summary"),
        CLI_END};
    const cli_command cmd = {"bids", usage, description, footer, options, 0};
    int npos, rc = cli_options_parse(&cmd, argc, argv, &npos);
    io_bids_models M;
    memset(&M, 0, sizeof M);
    if (rc) {
        rc = rc == CLI_OPTIONS_HELP ? DCM_OK : rc;
        goto done;
    }
    /* BIDS-Apps take several labels after one --participant_label */
    for (int k = 4; k <= npos && o.nlabels; k++)
        o.labels[o.nlabels++] = argv[k];
    if (npos < 3 || (npos > 3 && !o.nlabels)) {
        rc = cli_fail("bids", DCM_ERR_USAGE, "give BIDS_DIR OUTPUT_DIR participant|group (see dcm bids --help)");
        goto done;
    }
    o.bids = argv[1];
    o.outdir = argv[2];
    o.level = argv[3];
    if (strcmp(o.level, "participant") && strcmp(o.level, "group")) {
        rc = cli_fail("bids", DCM_ERR_USAGE, "the analysis level is 'participant' or 'group', not '%s'",
                      o.level);
        goto done;
    }
    if (!o.models) {
        rc = cli_fail("bids", DCM_ERR_USAGE, "--models MODELS.json is required (MANUAL, chapter \"BIDS datasets\")");
        goto done;
    }
    if (!is_dir(o.bids)) {
        rc = cli_fail("bids", DCM_ERR_INPUT, "%s: not a folder (the BIDS dataset)", o.bids);
        goto done;
    }
    if (split_labels(&o)) {
        rc = cli_fail("bids", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    size_t dl = strlen(o.bids) + 32;
    if (!(o.deriv = malloc(dl))) {
        rc = cli_fail("bids", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    snprintf(o.deriv, dl, "%s/derivatives/fmriprep", o.bids);
    if (o.fmriprep) {
        free(o.deriv);
        o.deriv = strdup(o.fmriprep);
    } else if (!is_dir(o.deriv)) {
        snprintf(o.deriv, dl, "%s", o.bids);
    }
    if (!o.deriv) {
        rc = cli_fail("bids", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    if (io_same_target(o.outdir, o.bids) || io_same_target(o.outdir, o.deriv)) {
        rc = cli_fail("bids", DCM_ERR_USAGE, "OUTPUT_DIR %s is the input dataset; give a folder of its "
                      "own (e.g. BIDS_DIR/derivatives/dcm)", o.outdir);
        goto done;
    }
    dcm_error err = {0, ""};
    if (io_bids_models_load(o.models, &M, &err)) {
        rc = cli_report("bids", &err);
        goto done;
    }
    rc = strcmp(o.level, "participant") ? group(&o, &M) : participant(&o, &M);
done:
    io_bids_models_free(&M);
    for (int i = 0; i < o.nwords; i++)
        free(o.label_words[i]);
    free(o.label_words);
    free(o.labels);
    free(o.deriv);
    return rc;
}
