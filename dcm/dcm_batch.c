/* dcm_batch.c — manifest, resume scan, thread pool and summary of
 * `dcm batch` (see dcm_batch.h). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "dcm/dcm_batch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/io_atomic.h"
#include "io/io_result.h"
#include "io/io_mat.h"
#include "io/io_spec.h"
#include "io/io_tsv.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *str_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int dcm_batch_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DCM_BATCH_NAME_MAX || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* ---- names -> indices: a small open-addressing hash table ---- */

typedef struct {
    int cap;            /* power of two */
    int *slot;          /* index into names, or -1 */
    char ***names;      /* the growing array the indices refer to */
} name_index;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int index_init(name_index *x, int n, char ***names)
{
    x->cap = 16;
    while (x->cap < 2 * n + 2)
        x->cap *= 2;
    x->slot = malloc(sizeof(int) * (size_t)x->cap);
    x->names = names;
    if (!x->slot)
        return -1;
    for (int i = 0; i < x->cap; i++)
        x->slot[i] = -1;
    return 0;
}

/* Index of name, adding it as names[*count] when new (-1: out of memory).
 * The table holds at most n names (index_init's n). */
static int index_get(name_index *x, const char *name, int *count)
{
    unsigned mask = (unsigned)x->cap - 1;
    for (unsigned h = (unsigned)fnv1a(name) & mask;; h = (h + 1) & mask) {
        if (x->slot[h] < 0) {
            char *d = str_dup(name);
            if (!d)
                return -1;
            (*x->names)[*count] = d;
            x->slot[h] = (*count)++;
            return x->slot[h];
        }
        if (!strcmp((*x->names)[x->slot[h]], name))
            return x->slot[h];
    }
}

/* ---- the manifest ---- */

typedef struct {
    char text[sizeof(((dcm_error *)0)->msg)];
    size_t len;
    int count, shown;
    const char *path;
} problems;

static void problem(problems *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(problems *p, int line, const char *fmt, ...)
{
    char one[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(one, sizeof one, fmt, ap);
    va_end(ap);
    p->count++;
    char entry[800];
    if (line > 0)
        snprintf(entry, sizeof entry, "\n  %s, line %d: %s", p->path, line, one);
    else
        snprintf(entry, sizeof entry, "\n  %s: %s", p->path, one);
    size_t el = strlen(entry);
    /* keep room for the closing "(and N more)" */
    if (p->len + el + 40 < sizeof p->text) {
        memcpy(p->text + p->len, entry, el + 1);
        p->len += el;
        p->shown++;
    }
}

static int problems_report(const problems *p, dcm_error *err)
{
    if (p->count == 1)   /* the entry without its leading "\n  " */
        return dcm_error_set(err, DCM_ERR_INPUT, "%s; nothing was estimated", p->text + 3);
    char more[64] = "";
    if (p->shown < p->count)
        snprintf(more, sizeof more, "\n  (and %d more)", p->count - p->shown);
    return dcm_error_set(err, DCM_ERR_INPUT, "%d problems in the manifest; nothing was estimated:%s%s",
                         p->count, p->text, more);
}

void dcm_batch_manifest_free(dcm_batch_manifest *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->njobs; i++) {
        free(m->jobs[i].spec);
        free(m->jobs[i].spec_path);
    }
    if (m->subjects)
        for (int i = 0; i < m->nsub; i++)
            free(m->subjects[i]);
    if (m->models)
        for (int i = 0; i < m->nmod; i++)
            free(m->models[i]);
    free(m->subjects);
    free(m->models);
    free(m->jobs);
    free(m->cell);
    free(m->path);
    memset(m, 0, sizeof *m);
}

static char *resolve_spec(const char *manifest, const char *spec)
{
    const char *slash = strrchr(manifest, '/');
    if (spec[0] == '/' || !slash)
        return str_dup(spec);
    return dcm_strprintf("%.*s/%s", (int)(slash - manifest), manifest, spec);
}

static void check_spec_file(problems *p, int line, const char *spec, const char *path)
{
    struct stat st;
    const char *where = strcmp(spec, path) ? path : NULL;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            problem(p, line, "spec file '%s' not found%s%s%s", spec, where ? " (looked for " : "",
                    where ? where : "", where ? ")" : "");
        else
            problem(p, line, "spec file '%s': %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        problem(p, line, "spec '%s' is not a regular file", path);
    } else if (access(path, R_OK) != 0) {
        problem(p, line, "spec file '%s' cannot be read: %s", path, strerror(errno));
    }
}

int dcm_batch_manifest_load(const char *path, dcm_batch_manifest *m, dcm_error *err)
{
    memset(m, 0, sizeof *m);
    io_text_table t;
    int rc = io_text_read(path, &t, err);
    if (rc)
        return rc;
    problems p;
    memset(&p, 0, sizeof p);
    p.path = path;
    name_index si = {0, NULL, NULL}, mi = {0, NULL, NULL};
    if (t.rows == 0) {
        rc = dcm_error_set(err, DCM_ERR_INPUT,
                           "%s is empty: a manifest needs a header 'subject<TAB>model<TAB>spec' "
                           "and one row per estimate", path);
        goto out;
    }
    const char *want[3] = {"subject", "model", "spec"};
    int col[3] = {-1, -1, -1};
    for (int c = 0; c < t.cols; c++)
        for (int k = 0; k < 3; k++)
            if (!strcmp(t.cells[c], want[k])) {
                if (col[k] >= 0)
                    problem(&p, t.line[0], "the header names column '%s' twice", want[k]);
                col[k] = c;
            }
    for (int k = 0; k < 3; k++)
        if (col[k] < 0) {
            char found[400] = "";
            size_t fl = 0;
            for (int c = 0; c < t.cols && fl + 8 < sizeof found; c++)
                fl += (size_t)snprintf(found + fl, sizeof found - fl, "%s'%s'", c ? ", " : "",
                                       t.cells[c]);
            problem(&p, t.line[0],
                    "the header has no '%s' column (it has %s); a manifest's header must name "
                    "the columns subject, model and spec", want[k], found);
        }
    if (p.count) {
        rc = problems_report(&p, err);
        goto out;
    }
    int n = t.rows - 1;
    if (n == 0) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s lists no estimates: add rows 'subject<TAB>model<TAB>spec' "
                           "below the header", path);
        goto out;
    }
    m->path = str_dup(path);
    m->jobs = calloc((size_t)n, sizeof *m->jobs);
    m->subjects = calloc((size_t)n, sizeof *m->subjects);
    m->models = calloc((size_t)n, sizeof *m->models);
    if (!m->path || !m->jobs || !m->subjects || !m->models || index_init(&si, n, &m->subjects) ||
        index_init(&mi, n, &m->models)) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory", path);
        goto out;
    }
    for (int r = 1; r <= n; r++) {
        const char *sub = t.cells[r * t.cols + col[0]], *mod = t.cells[r * t.cols + col[1]],
                   *spec = t.cells[r * t.cols + col[2]];
        int line = t.line[r], bad = 0;
        for (int k = 0; k < 3; k++)
            if (!t.cells[r * t.cols + col[k]][0]) {
                problem(&p, line, "empty '%s' cell", want[k]);
                bad = 1;
            }
        if (bad)
            continue;
        if (!dcm_batch_name_ok(sub)) {
            problem(&p, line, "subject '%s' is not a safe file name (use up to %d letters, digits, "
                    "'.', '_' or '-', not starting with '.' or '-')", sub, DCM_BATCH_NAME_MAX);
            bad = 1;
        } else if (!strcmp(sub, "summary.tsv") || !strcmp(sub, "failures.tsv") ||
                   !strcmp(sub, "warnings.tsv")) {
            problem(&p, line, "subject '%s' would clash with the batch's own %s", sub, sub);
            bad = 1;
        }
        if (!dcm_batch_name_ok(mod)) {
            problem(&p, line, "model '%s' is not a safe file name (use up to %d letters, digits, "
                    "'.', '_' or '-', not starting with '.' or '-')", mod, DCM_BATCH_NAME_MAX);
            bad = 1;
        }
        char *resolved = resolve_spec(path, spec);
        if (!resolved) {
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory", path);
            goto out;
        }
        check_spec_file(&p, line, spec, resolved);
        if (bad) {
            free(resolved);
            continue;
        }
        dcm_batch_job *J = &m->jobs[m->njobs];
        J->sub = index_get(&si, sub, &m->nsub);
        J->mod = index_get(&mi, mod, &m->nmod);
        J->spec = str_dup(spec);
        J->spec_path = resolved;
        J->line = line;
        m->njobs++;
        if (J->sub < 0 || J->mod < 0 || !J->spec) {
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory", path);
            goto out;
        }
        J->subject = m->subjects[J->sub];
        J->model = m->models[J->mod];
    }
    m->cell = malloc(sizeof(int) * (size_t)(m->nsub ? m->nsub : 1) * (size_t)(m->nmod ? m->nmod : 1));
    if (!m->cell) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory", path);
        goto out;
    }
    for (int i = 0; i < m->nsub * m->nmod; i++)
        m->cell[i] = -1;
    for (int j = 0; j < m->njobs; j++) {
        const dcm_batch_job *J = &m->jobs[j];
        int *c = &m->cell[J->sub * m->nmod + J->mod];
        if (*c >= 0)
            problem(&p, J->line, "subject '%s' x model '%s' is listed twice (also line %d)",
                    J->subject, J->model, m->jobs[*c].line);
        else
            *c = j;
    }
    if (p.count)
        rc = problems_report(&p, err);
out:
    free(si.slot);
    free(mi.slot);
    io_text_free(&t);
    if (rc)
        dcm_batch_manifest_free(m);
    return rc;
}

/* ---- the output folder ---- */

char *dcm_batch_result_path(const char *outdir, const dcm_batch_job *j)
{
    return dcm_strprintf("%s/%s/%s.json", outdir, j->subject, j->model);
}

static int make_dir(const char *path, dcm_error *err)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "cannot create the folder %s: %s", path,
                             strerror(errno));
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return dcm_error_set(err, DCM_ERR_SYSTEM, "%s exists and is not a folder", path);
    return DCM_OK;
}

/* mkdir -p */
static int make_dirs(const char *path, dcm_error *err)
{
    char *p = str_dup(path);
    if (!p)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    int rc = DCM_OK;
    for (char *s = p + 1; *s && !rc; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST)
                rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot create the folder %s: %s", p,
                                   strerror(errno));
            *s = '/';
        }
    if (!rc)
        rc = make_dir(p, err);
    free(p);
    return rc;
}

/* name is "<base>.tmp.XXXXXX" (io_atomic's temporary files) */
static int is_temp_of(const char *name, const char *base)
{
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) || strncmp(name + bl, ".tmp.", 5))
        return 0;
    const char *s = name + bl + 5;
    size_t k = strlen(s);
    if (k != 6)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

/* Remove the temporary files a killed writer left in dir: those of any
 * of the k bases (each with suffix appended, e.g. ".json"). */
static int remove_temps(const char *dir, char *const *bases, int k, const char *suffix,
                        dcm_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "cannot list %s: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = DCM_OK;
    char base[DCM_BATCH_NAME_MAX + 32];
    while (!rc && (e = readdir(d))) {
        if (!strstr(e->d_name, ".tmp."))
            continue;
        for (int i = 0; i < k; i++) {
            snprintf(base, sizeof base, "%s%s", bases[i], suffix);
            if (!is_temp_of(e->d_name, base))
                continue;
            char *full = dcm_strprintf("%s/%s", dir, e->d_name);
            if (!full)
                rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            else if (unlink(full) != 0 && errno != ENOENT)
                rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot remove the leftover %s: %s", full,
                                   strerror(errno));
            free(full);
            break;
        }
    }
    closedir(d);
    return rc;
}

/* Open OUTDIR/NAME and take an fcntl lock of type `type` on it without
 * waiting. On EACCES/EAGAIN the message is `busy` (about the holder). */
static int lock_file(const char *outdir, const char *name, short type, const char *busy, int *fd,
                     dcm_error *err)
{
    *fd = -1;
    char *path = dcm_strprintf("%s/%s", outdir, name);
    if (!path)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    int rc = DCM_OK;
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (f < 0) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot create %s: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    struct flock l;
    memset(&l, 0, sizeof l);
    l.l_type = type;
    l.l_whence = SEEK_SET;
    if (fcntl(f, F_SETLK, &l) != 0) {
        if (errno == EACCES || errno == EAGAIN)
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "%s is writing to %s (it holds %s); wait for it "
                               "to finish or choose another -o", busy, outdir, path);
        else
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot lock %s: %s", path, strerror(errno));
        close(f);
    } else {
        *fd = f;
    }
    free(path);
    return rc;
}

int dcm_batch_lock(const char *outdir, int *fd, dcm_error *err)
{
    *fd = -1;
    int rc = make_dirs(outdir, err);
    if (rc)
        return rc;
    return lock_file(outdir, ".dcm-batch.lock", F_WRLCK, "another dcm batch (or a shard of one)",
                     fd, err);
}

int dcm_batch_lock_shard(const char *outdir, int k, int n, int fd[2], dcm_error *err)
{
    fd[0] = fd[1] = -1;
    int rc = make_dirs(outdir, err);
    if (rc)
        return rc;
    /* shared with the other shards, exclusive against a whole batch */
    rc = lock_file(outdir, ".dcm-batch.lock", F_RDLCK, "a dcm batch without --shard", &fd[0], err);
    if (rc)
        return rc;
    char name[64], busy[96];
    snprintf(name, sizeof name, ".dcm-batch-shard-%d-of-%d.lock", k, n);
    snprintf(busy, sizeof busy, "another dcm batch --shard %d/%d", k, n);
    rc = lock_file(outdir, name, F_WRLCK, busy, &fd[1], err);
    if (rc) {
        close(fd[0]);
        fd[0] = -1;
    }
    return rc;
}

void dcm_batch_unlock(int fd)
{
    if (fd >= 0)
        close(fd);   /* releases the fcntl lock */
}

int dcm_batch_in_shard(int job, int k, int n)
{
    return n <= 1 || job % n == k - 1;
}

int dcm_batch_prepare(const dcm_batch_manifest *m, const char *outdir, int force,
                      dcm_batch_outcome *out, dcm_error *err)
{
    return dcm_batch_prepare_shard(m, outdir, force, 1, 1, out, err);
}

int dcm_batch_prepare_shard(const dcm_batch_manifest *m, const char *outdir, int force, int k,
                            int n, dcm_batch_outcome *out, dcm_error *err)
{
    memset(out, 0, sizeof *out * (size_t)m->njobs);
    int rc = make_dirs(outdir, err);
    if (rc)
        return rc;
    if (n <= 1) {
        char *own[3] = {"summary", "failures", "warnings"};
        if ((rc = remove_temps(outdir, own, 3, ".tsv", err)))
            return rc;
    }
    for (int s = 0; s < m->nsub && !rc; s++) {
        char *dir = dcm_strprintf("%s/%s", outdir, m->subjects[s]);
        if (!dir)
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        rc = make_dir(dir, err);
        /* a shard clears only its own jobs' leftovers: the other shards
           may be writing theirs right now */
        for (int md = 0; md < m->nmod && !rc; md++) {
            int j = m->cell[s * m->nmod + md];
            if (j >= 0 && dcm_batch_in_shard(j, k, n))
                rc = remove_temps(dir, &m->models[md], 1, ".json", err);
        }
        free(dir);
    }
    for (int j = 0; j < m->njobs && !rc; j++) {
        if (!dcm_batch_in_shard(j, k, n))
            continue;
        char *path = dcm_batch_result_path(outdir, &m->jobs[j]);
        if (!path)
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        struct stat st;
        if (!force && stat(path, &st) == 0) {
            io_result_summary s;
            memset(&s, 0, sizeof s);
            dcm_error e = {0, ""};
            if (io_result_load(path, &s, &e) == DCM_OK) {
                out[j].state = DCM_BATCH_SKIPPED;
                out[j].F = s.F;
                out[j].converged = s.converged != 0;
                out[j].iterations = s.iterations;
            } else {
                out[j].redo = 1;
                snprintf(out[j].msg, sizeof out[j].msg, "%s", e.msg);
            }
            io_result_summary_free(&s);
        }
        free(path);
    }
    return rc;
}

/* ---- the thread pool ---- */

typedef struct {
    const dcm_batch_manifest *m;
    const char *outdir;
    const int *todo;
    int ntodo;
    dcm_batch_outcome *out;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int next;          /* next entry of todo to hand out */
    int *finished;     /* jobs in order of completion */
    int nfinished;
    /* workers hold it (shared) while they put a result in place; the
       calling thread takes it (exclusive) before it lets a pending
       SIGINT/SIGTERM end the process, so no result is caught half-renamed */
    pthread_rwlock_t gate;
} pool;

/* a spec naming an SPM DCM file (*.mat) is read as `dcm estimate` reads it */
static int load_spec(const char *path, dcm_problem **P, dcm_error *err)
{
    size_t len = strlen(path);
    if (len > 4 && !strcmp(path + len - 4, ".mat"))
        return io_mat_load_dcm(path, P, err);
    return io_spec_load(path, P, err);
}

static void run_job(pool *p, int j)
{
    const dcm_batch_job *J = &p->m->jobs[j];
    dcm_batch_outcome *o = &p->out[j];
    double t0 = now_seconds();
    dcm_error err = {0, ""};
    dcm_problem *P = NULL;
    dcm_result *R = NULL;
    char *path = dcm_batch_result_path(p->outdir, J);
    int rc = path ? load_spec(J->spec_path, &P, &err)
                  : dcm_error_set(&err, DCM_ERR_SYSTEM, "out of memory");
    if (!rc && p->m->spm12_te && io_mat_use_spm12_te(P))
        rc = dcm_error_set(&err, DCM_ERR_SYSTEM, "out of memory");
    if (!rc)
        rc = dcm_estimate(P, NULL, NULL, &R, &err);
    io_atomic a;
    memset(&a, 0, sizeof a);
    if (!rc)
        rc = io_result_write_json_to(&a, path, P, R, &err);
    if (!rc) {
        pthread_rwlock_rdlock(&p->gate);
        rc = io_atomic_commit(&a, &err);
        pthread_rwlock_unlock(&p->gate);
    }
    o->seconds = now_seconds() - t0;
    if (rc) {
        o->state = DCM_BATCH_FAILED;
        o->code = (rc >= DCM_ERR_USAGE && rc <= DCM_ERR_SYSTEM) ? rc : DCM_ERR_SYSTEM;
        o->F = 0.0;
        snprintf(o->msg, sizeof o->msg, "%s", err.msg[0] ? err.msg : "failed");
    } else {
        o->state = DCM_BATCH_DONE;
        o->code = DCM_OK;
        o->F = R->F;
        o->converged = R->converged != 0;
        o->iterations = R->iterations;
        o->msg[0] = 0;
    }
    dcm_result_free(R);
    dcm_problem_free(P);
    free(path);
}

static void *worker(void *arg)
{
    pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int k = p->next < p->ntodo ? p->next++ : -1;
        pthread_mutex_unlock(&p->mu);
        if (k < 0)
            break;
        int j = p->todo[k];
        run_job(p, j);
        pthread_mutex_lock(&p->mu);
        p->finished[p->nfinished++] = j;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

static void deadline_after(struct timespec *ts, double seconds)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    double whole = floor(seconds);
    ts->tv_sec += (time_t)whole;
    ts->tv_nsec += (long)((seconds - whole) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* A SIGINT/SIGTERM/... that arrived while the pool holds them back:
 * wait until no worker is putting a result in place, then let it act
 * (by default it ends the process; with a handler the run goes on). */
static void deliver_pending(pthread_rwlock_t *gate, const sigset_t *block, const sigset_t *old_mask)
{
    sigset_t pending;
    if (sigpending(&pending) != 0)
        return;
    int any = 0;
    for (int s = 1; s < 32; s++)
        if (sigismember(block, s) == 1 && sigismember(&pending, s) == 1 &&
            sigismember(old_mask, s) != 1)
            any = 1;
    if (!any)
        return;
    pthread_rwlock_wrlock(gate);
    pthread_sigmask(SIG_SETMASK, old_mask, NULL);
    pthread_sigmask(SIG_BLOCK, block, NULL);
    pthread_rwlock_unlock(gate);
}

int dcm_batch_run(const dcm_batch_manifest *m, const char *outdir, const int *todo,
                  int ntodo, int threads, double tick_seconds, dcm_batch_event_fn fn,
                  void *ctx, dcm_batch_outcome *out, dcm_error *err)
{
    if (ntodo <= 0)
        return DCM_OK;
    if (threads < 1)
        threads = 1;
    if (threads > ntodo)
        threads = ntodo;
    pool p;
    memset(&p, 0, sizeof p);
    p.m = m;
    p.outdir = outdir;
    p.todo = todo;
    p.ntodo = ntodo;
    p.out = out;
    p.finished = malloc(sizeof(int) * (size_t)ntodo);
    pthread_t *tid = malloc(sizeof(pthread_t) * (size_t)threads);
    if (!p.finished || !tid) {
        free(p.finished);
        free(tid);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    /* SIGINT, SIGTERM, SIGHUP, SIGQUIT: held back on every thread of the
       pool (they inherit this thread's mask) and let through by this
       thread only between two commits (see deliver_pending) */
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &block, &old_mask);
    pthread_rwlock_init(&p.gate, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, &ca);
    pthread_condattr_destroy(&ca);
    /* an estimate is no heavier on the stack than on the main thread's */
    pthread_attr_t ta;
    pthread_attr_init(&ta);
    size_t stack = 0;
    if (pthread_attr_getstacksize(&ta, &stack) == 0 && stack < ((size_t)16 << 20))
        pthread_attr_setstacksize(&ta, (size_t)16 << 20);
    int started = 0, rc = DCM_OK, start_error = 0;
    for (int i = 0; i < threads; i++) {
        int e = pthread_create(&tid[started], &ta, worker, &p);
        if (e) {
            start_error = e;
            break;
        }
        started++;
    }
    pthread_attr_destroy(&ta);
    if (started == 0) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot start a thread: %s", strerror(start_error));
        pthread_mutex_lock(&p.mu);   /* nothing runs: mark the jobs as not done */
        p.next = ntodo;
        pthread_mutex_unlock(&p.mu);
    } else {
        double t0 = now_seconds(), last_tick = t0;
        int reported = 0;
        while (reported < ntodo) {
            pthread_mutex_lock(&p.mu);
            if (reported == p.nfinished) {
                /* wake at least every 0.1 s to let a pending signal through */
                struct timespec ts;
                deadline_after(&ts, tick_seconds > 0 && tick_seconds < 0.1 ? tick_seconds : 0.1);
                pthread_cond_timedwait(&p.cv, &p.mu, &ts);
            }
            int upto = p.nfinished;
            pthread_mutex_unlock(&p.mu);
            deliver_pending(&p.gate, &block, &old_mask);
            for (; reported < upto; reported++)
                if (fn)
                    fn(ctx, p.finished[reported], now_seconds() - t0);
            if (tick_seconds > 0 && fn && reported < ntodo && now_seconds() - last_tick >= tick_seconds) {
                fn(ctx, -1, now_seconds() - t0);
                last_tick = now_seconds();
            }
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    pthread_rwlock_destroy(&p.gate);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);   /* a signal still pending acts now */
    free(p.finished);
    free(tid);
    return rc;
}

/* ---- summary and failures ---- */

int dcm_batch_subject_gap(const dcm_batch_manifest *m, const dcm_batch_outcome *out,
                          int s, int *job)
{
    for (int k = 0; k < m->nmod; k++) {
        int j = m->cell[s * m->nmod + k];
        if (j < 0 || (out[j].state != DCM_BATCH_DONE && out[j].state != DCM_BATCH_SKIPPED)) {
            if (job)
                *job = j;
            return k;
        }
    }
    if (job)
        *job = -1;
    return -1;
}

static void fill_summary(const dcm_batch_manifest *m, const dcm_batch_outcome *out, FILE *f,
                         int *rows)
{
    int nrow = 0;
    fputs("subject", f);
    for (int k = 0; k < m->nmod; k++)
        fprintf(f, "\t%s", m->models[k]);
    fputc('\n', f);
    for (int s = 0; s < m->nsub; s++) {
        if (dcm_batch_subject_gap(m, out, s, NULL) >= 0)
            continue;
        fputs(m->subjects[s], f);
        for (int k = 0; k < m->nmod; k++)
            fprintf(f, "\t%.17g", out[m->cell[s * m->nmod + k]].F);
        fputc('\n', f);
        nrow++;
    }
    if (rows)
        *rows = nrow;
}

/* a cell of failures.tsv: no tabs or line breaks */
static void put_cell(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

static void fill_failures(const dcm_batch_manifest *m, const dcm_batch_outcome *out, FILE *f)
{
    fputs("subject\tmodel\tspec\texit_code\tmessage\n", f);
    for (int j = 0; j < m->njobs; j++) {
        if (out[j].state != DCM_BATCH_FAILED)
            continue;
        const dcm_batch_job *J = &m->jobs[j];
        fprintf(f, "%s\t%s\t", J->subject, J->model);
        put_cell(f, J->spec);
        fprintf(f, "\t%d\t", out[j].code);
        put_cell(f, out[j].msg);
        fputc('\n', f);
    }
}

static int count_failed(const dcm_batch_manifest *m, const dcm_batch_outcome *out)
{
    int k = 0;
    for (int j = 0; j < m->njobs; j++)
        k += out[j].state == DCM_BATCH_FAILED;
    return k;
}

int dcm_batch_write_summary(const dcm_batch_manifest *m, const char *outdir,
                            const dcm_batch_outcome *out, int *rows, dcm_error *err)
{
    char *path = dcm_strprintf("%s/summary.tsv", outdir);
    if (!path)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    io_atomic a;
    int rc = io_atomic_open(&a, path, err), nrow = 0;
    if (!rc) {
        fill_summary(m, out, a.fp, &nrow);
        rc = io_atomic_commit(&a, err);
    }
    if (rows)
        *rows = rc ? 0 : nrow;
    free(path);
    return rc;
}

int dcm_batch_write_failures(const dcm_batch_manifest *m, const char *outdir,
                             const dcm_batch_outcome *out, int *nfailed, dcm_error *err)
{
    int k = count_failed(m, out);
    if (nfailed)
        *nfailed = k;
    char *path = dcm_strprintf("%s/failures.tsv", outdir);
    if (!path)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    int rc = DCM_OK;
    if (k == 0) {
        if (unlink(path) != 0 && errno != ENOENT)
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot remove the stale %s: %s", path,
                               strerror(errno));
        free(path);
        return rc;
    }
    io_atomic a;
    rc = io_atomic_open(&a, path, err);
    if (!rc) {
        fill_failures(m, out, a.fp);
        rc = io_atomic_commit(&a, err);
    }
    free(path);
    return rc;
}

int dcm_batch_write_warnings(const dcm_batch_manifest *m, const char *outdir,
                             const dcm_batch_outcome *out, int *nwarnings, dcm_error *err)
{
    if (nwarnings)
        *nwarnings = 0;
    char *path = dcm_strprintf("%s/warnings.tsv", outdir);
    if (!path)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    io_atomic a;
    int rc = io_atomic_open(&a, path, err), k = 0;
    if (!rc) {
        fputs("subject\tmodel\twarning\n", a.fp);
        /* read back from the result files, so that results kept from an
           earlier run (SKIPPED) and those of other MPI ranks count too */
        for (int j = 0; j < m->njobs; j++) {
            if (out[j].state != DCM_BATCH_DONE && out[j].state != DCM_BATCH_SKIPPED)
                continue;
            char *rpath = dcm_batch_result_path(outdir, &m->jobs[j]);
            dcm_error ignored = {0, ""};   /* an unreadable result has no warnings to list */
            json_t *root = rpath ? io_result_json_load(rpath, &ignored) : NULL;
            json_t *w = json_object_get(root, "warnings");
            size_t i;
            json_t *x;
            json_array_foreach(w, i, x) {
                if (!json_is_string(x))
                    continue;
                fprintf(a.fp, "%s\t%s\t", m->jobs[j].subject, m->jobs[j].model);
                put_cell(a.fp, json_string_value(x));
                fputc('\n', a.fp);
                k++;
            }
            json_decref(root);
            free(rpath);
        }
        rc = io_atomic_commit(&a, err);
    }
    if (nwarnings)
        *nwarnings = rc ? 0 : k;
    free(path);
    return rc;
}

int dcm_batch_write_tables(const dcm_batch_manifest *m, const char *outdir,
                           const dcm_batch_outcome *out, int *rows, int *nfailed, dcm_error *err)
{
    enum { SUMMARY, FAILURES, NTABLES };
    int k = count_failed(m, out), nrow = 0;
    if (rows)
        *rows = 0;
    if (nfailed)
        *nfailed = k;
    char *path[NTABLES] = {dcm_strprintf("%s/summary.tsv", outdir), dcm_strprintf("%s/failures.tsv", outdir)};
    io_atomic a[NTABLES];
    memset(a, 0, sizeof a);
    int n = 0, rc = DCM_OK;
    if (!path[SUMMARY] || !path[FAILURES])
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    if (!rc && !(rc = io_atomic_open(&a[n], path[SUMMARY], err)))
        fill_summary(m, out, a[n++].fp, &nrow);
    if (!rc && k && !(rc = io_atomic_open(&a[n], path[FAILURES], err)))
        fill_failures(m, out, a[n++].fp);
    if (!rc)
        rc = io_atomic_commit_all(a, n, err);
    else
        for (int i = 0; i < n; i++)
            io_atomic_abort(&a[i]);
    /* a failures.tsv of an earlier run no longer applies once the new
       tables are in place */
    if (!rc && !k && unlink(path[FAILURES]) != 0 && errno != ENOENT)
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot remove the stale %s: %s", path[FAILURES],
                           strerror(errno));
    if (!rc && rows)
        *rows = nrow;
    free(path[SUMMARY]);
    free(path[FAILURES]);
    return rc;
}

int dcm_batch_cpus(int *restricted)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int n = online > 0 ? (int)online : 1;
    if (restricted)
        *restricted = 0;
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int k = CPU_COUNT(&set);
        if (k > 0 && k < n) {
            n = k;
            if (restricted)
                *restricted = 1;
        }
    }
#endif
    return n;
}
