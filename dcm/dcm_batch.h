/* dcm_batch.h — many DCMs at once: a manifest of subject x model specs,
 * estimated in parallel threads into OUTDIR/<subject>/<model>.json.
 *
 * Contract
 * - The manifest is a tab- (or comma-) separated table with a header that
 *   names the columns `subject`, `model` and `spec` (any order; other
 *   columns are ignored). Spec paths are relative to the manifest's
 *   directory unless absolute. dcm_batch_manifest_load checks everything
 *   that can be checked without estimating: the three columns exist, no
 *   cell is empty, subject and model are safe file names
 *   (dcm_batch_name_ok), no subject x model pair is listed twice, every
 *   spec file exists and is a readable regular file. Every problem found
 *   is reported (as many as fit in err->msg) as "FILE, line L: ...";
 *   the code is DCM_ERR_INPUT. Nothing is created on disk.
 * - Subjects and models are numbered in the order of their first
 *   appearance in the manifest; cell[s * nmod + m] is the job of subject s
 *   and model m, or -1 when the manifest has no such row.
 * - dcm_batch_prepare (before any estimate) creates OUTDIR and the subject
 *   folders, removes the temporary files a killed run can leave
 *   (<model>.json.tmp.*, summary.tsv.tmp.*, failures.tsv.tmp.*), and marks
 *   every job whose result file io_result_load reads as SKIPPED (with its
 *   free energy), unless force. A result that exists but cannot be read
 *   (a partial or corrupt file) stays TODO with `redo` set.
 * - dcm_batch_run estimates the TODO jobs listed in `todo` on `threads`
 *   POSIX threads: io_spec_load (io_mat_load_dcm for a spec ending in
 *   .mat: a DCM that SPM specified; then io_mat_use_spm12_te when
 *   m->spm12_te) -> dcm_estimate -> io_result_write_json
 *   (atomic: a temporary file renamed into place). A failing job is
 *   recorded in its outcome (FAILED, code, message) and the others go on.
 *   The event callback runs on the calling thread only, once per finished
 *   job (job >= 0) and every tick_seconds while waiting (job = -1).
 *   Distinct outcomes are written by distinct threads; nothing is global.
 *   SIGINT, SIGTERM, SIGHUP and SIGQUIT are blocked on the pool's threads
 *   and on the calling thread while it runs; the calling thread lets a
 *   pending one act only while no worker is putting a result in place (a
 *   read-write lock of the pool), so a run ended by a signal leaves whole
 *   results and no temporary names. The caller's signal mask is restored
 *   on return.
 * - dcm_batch_write_summary writes OUTDIR/summary.tsv atomically: a header
 *   `subject<TAB>model1<TAB>...` (models in manifest order) and one row of
 *   free energies ("%.17g") per subject that has a result for every model;
 *   other subjects are left out (see dcm_batch_subject_gap).
 * - dcm_batch_write_failures writes OUTDIR/failures.tsv atomically
 *   (subject, model, spec, exit_code, message) when a job failed, and
 *   removes a stale one otherwise. dcm_batch_write_tables writes both as
 *   one result (all replaced or none); the command uses it.
 */
#ifndef DCM_BATCH_H
#define DCM_BATCH_H

#include "dcm/dcm_api.h"

#define DCM_BATCH_NAME_MAX 100

typedef struct {
    char *subject, *model;
    char *spec;        /* as written in the manifest */
    char *spec_path;   /* resolved against the manifest's directory */
    int line;          /* 1-based line in the manifest */
    int sub, mod;      /* indices into subjects / models */
} dcm_batch_job;

typedef struct {
    char *path;              /* the manifest */
    int njobs, nsub, nmod;
    dcm_batch_job *jobs;     /* manifest order */
    char **subjects;         /* nsub, order of first appearance */
    char **models;           /* nmod, order of first appearance */
    int *cell;               /* nsub x nmod: job index or -1 */
    int spm12_te;            /* set by the caller: fit with SPM12's TE (io_mat.h);
                                0 after dcm_batch_manifest_load */
} dcm_batch_manifest;

int dcm_batch_manifest_load(const char *path, dcm_batch_manifest *m, dcm_error *err);
void dcm_batch_manifest_free(dcm_batch_manifest *m);

/* 1 when s is a safe file name: 1 to DCM_BATCH_NAME_MAX characters from
 * [A-Za-z0-9._-], not starting with '.' or '-'. */
int dcm_batch_name_ok(const char *s);

enum {
    DCM_BATCH_TODO = 0,
    DCM_BATCH_SKIPPED = 1,   /* a finished result was already there */
    DCM_BATCH_DONE = 2,      /* estimated in this run */
    DCM_BATCH_FAILED = 3
};

typedef struct {
    int state;          /* DCM_BATCH_* */
    int code;           /* DCM_OK, or the error code of a failed job */
    int redo;           /* the result existed but was unreadable */
    int converged;      /* of the estimate (1 for skipped results that say so) */
    int iterations;
    double F;           /* free energy (DONE or SKIPPED), else 0 */
    double seconds;     /* wall time of this job */
    char msg[1024];     /* the error of a failed job, or why it is redone */
} dcm_batch_outcome;

/* OUTDIR/<subject>/<model>.json (caller frees), NULL when out of memory. */
char *dcm_batch_result_path(const char *outdir, const dcm_batch_job *j);

/* Create OUTDIR (mkdir -p) and take an exclusive lock (fcntl) on
 * OUTDIR/.dcm-batch.lock, held until dcm_batch_unlock or the end of the
 * process: two batches never write one folder at once. DCM_ERR_SYSTEM
 * when OUTDIR cannot be created or another batch holds the lock. */
int dcm_batch_lock(const char *outdir, int *fd, dcm_error *err);
void dcm_batch_unlock(int fd);

/* Shards (job arrays): shard k of n (1 <= k <= n) owns the jobs j (manifest
 * order, 0-based) with j % n == k - 1, so shards are disjoint, cover the
 * manifest and do not depend on what is already done. dcm_batch_in_shard
 * says whether job j is shard k's (always 1 when n <= 1). */
int dcm_batch_in_shard(int job, int k, int n);

/* A shard's locks: OUTDIR/.dcm-batch.lock shared (so shards run together
 * while a whole batch, which takes it exclusively, cannot run beside them)
 * and OUTDIR/.dcm-batch-shard-K-of-N.lock exclusive (one run per shard).
 * Release both with dcm_batch_unlock(fd[0]), dcm_batch_unlock(fd[1]). */
int dcm_batch_lock_shard(const char *outdir, int k, int n, int fd[2], dcm_error *err);

/* out: njobs outcomes, zeroed here. */
int dcm_batch_prepare(const dcm_batch_manifest *m, const char *outdir, int force,
                      dcm_batch_outcome *out, dcm_error *err);

/* The same for shard k of n: only the shard's jobs are looked at (the
 * others stay TODO and are not the caller's to run) and only their
 * leftover temporary files are removed; the tables' leftovers are a whole
 * batch's to clear. dcm_batch_prepare is shard 1 of 1. */
int dcm_batch_prepare_shard(const dcm_batch_manifest *m, const char *outdir, int force, int k,
                            int n, dcm_batch_outcome *out, dcm_error *err);

typedef void (*dcm_batch_event_fn)(void *ctx, int job, double elapsed);

int dcm_batch_run(const dcm_batch_manifest *m, const char *outdir, const int *todo,
                  int ntodo, int threads, double tick_seconds, dcm_batch_event_fn fn,
                  void *ctx, dcm_batch_outcome *out, dcm_error *err);

/* Why subject s is not in the summary: -1 when it is complete; otherwise
 * the model index of the first gap, with *job the job (or -1 when the
 * manifest has no row for that model). */
int dcm_batch_subject_gap(const dcm_batch_manifest *m, const dcm_batch_outcome *out,
                          int s, int *job);

/* *rows (may be NULL): subjects written. */
int dcm_batch_write_summary(const dcm_batch_manifest *m, const char *outdir,
                            const dcm_batch_outcome *out, int *rows, dcm_error *err);

/* *nfailed (may be NULL): failures listed. */
int dcm_batch_write_failures(const dcm_batch_manifest *m, const char *outdir,
                             const dcm_batch_outcome *out, int *nfailed, dcm_error *err);

/* OUTDIR/warnings.tsv (atomically): a header `subject<TAB>model<TAB>warning`
 * and one row per warning of every finished result (read from the result
 * files); *nwarnings (may be NULL): rows written. */
int dcm_batch_write_warnings(const dcm_batch_manifest *m, const char *outdir,
                             const dcm_batch_outcome *out, int *nwarnings, dcm_error *err);

/* summary.tsv and failures.tsv (only when a job failed; a stale one is
 * removed) as one result: both are replaced or neither
 * (io_atomic_commit_all); on failure the tables of the last run stay. */
int dcm_batch_write_tables(const dcm_batch_manifest *m, const char *outdir,
                           const dcm_batch_outcome *out, int *rows, int *nfailed, dcm_error *err);

/* Cores this process may run on (at least 1): the online cores, or fewer
 * when its CPU affinity is restricted (taskset, cpusets, MPI binding), in
 * which case *restricted (may be NULL) is set to 1. */
int dcm_batch_cpus(int *restricted);

#endif
