/* cmd_batch.c — `dcm batch MANIFEST.tsv -o OUTDIR [-j N] [--force] [-q]`:
 * every subject x model of a manifest, estimated in parallel threads (and
 * over MPI ranks when built with -DDCM_WITH_MPI and started by mpirun).
 * The work itself is dcm/dcm_batch.c; this file is the command line,
 * the progress display and the MPI distribution. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dcm/dcm_batch.h"
#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"

#ifdef DCM_WITH_MPI
#include <mpi.h>
#endif

static const char *const usage[] = {"MANIFEST.tsv -o OUTDIR [-j N] [--shard K/N|slurm] [--force] [-q]",
                                    NULL};

static const char *description =
    "Estimate every subject x model listed in MANIFEST.tsv, in parallel, into\n"
    "OUTDIR/<subject>/<model>.json, and write OUTDIR/summary.tsv: the free\n"
    "energy of each model (columns, manifest order) for each subject (rows),\n"
    "ready for 'dcm compare --rfx --lme OUTDIR/summary.tsv'.\n"
    "\n"
    "MANIFEST.tsv has a header naming the columns subject, model and spec\n"
    "(spec paths relative to the manifest's folder), one row per estimate;\n"
    "a spec may be a DCM_NAME.mat that SPM specified, as for dcm estimate.\n"
    "It is checked before anything runs: missing spec files, repeated\n"
    "subject x model rows and names that are not safe file names stop the\n"
    "batch (exit 2) before OUTDIR is created.\n"
    "\n"
    "Results are written atomically. A result already in OUTDIR is kept and\n"
    "not estimated again (rerun an interrupted batch to finish it); one that\n"
    "cannot be read is redone. A failing estimate is reported on stderr and\n"
    "in OUTDIR/failures.tsv, the others go on, its subject is left out of\n"
    "summary.tsv, and the exit status is that of the worst failure.\n";

static const char *footer =
    "MPI: a binary built with 'make MPI=1' (or bin/dcm-mpi) and started by\n"
    "mpirun spreads the estimates over the ranks, each using -j threads\n"
    "(default: its share of the node's cores); OUTDIR and the specs must be\n"
    "on a filesystem every rank sees. Results are the same as without MPI.\n"
    "\n"
    "Job arrays: --shard K/N runs only the K-th of N disjoint shares of the\n"
    "manifest's rows (row i, counted from 0, is shard i % N + 1), so N jobs\n"
    "of a cluster's array can share one OUTDIR. --shard slurm takes K and N\n"
    "from SLURM_ARRAY_TASK_ID, _MIN, _COUNT (or _MAX) and _STEP. A shard\n"
    "writes results only, not summary.tsv: run a plain dcm batch on the same\n"
    "OUTDIR after the array; it estimates nothing already done and writes the\n"
    "tables. A plain batch cannot start while shards of OUTDIR run.\n"
    "\n"
    "example:\n"
    "  printf 'subject\\tmodel\\tspec\\n' > manifest.tsv\n"
    "  printf 'sub-01\\tfwd\\tsub-01/fwd.json\\nsub-01\\tbwd\\tsub-01/bwd.json\\n' >> manifest.tsv\n"
    "  dcm batch manifest.tsv -o results -j 4\n"
    "  dcm compare --rfx --lme results/summary.tsv\n"
    "  sbatch --array=1-20 --wrap 'dcm batch manifest.tsv -o results -j 1 --shard slurm'\n"
    "  dcm batch manifest.tsv -o results          # after the array: summary.tsv\n";

/* ---- ranks: one process without MPI ---- */

typedef struct {
    int rank, size;   /* this process, all processes */
    int local;        /* processes on this node */
    int mpi;          /* MPI_Init was called */
} ranks;

#ifdef DCM_WITH_MPI
/* Started by an MPI launcher? (Without one the command runs threaded only,
 * so the MPI binary behaves like the plain one.) */
static int launched_by_mpi(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                                 "MPI_LOCALNRANKS", NULL};
    for (int i = 0; vars[i]; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}
#endif

static int ranks_start(ranks *r)
{
    r->rank = 0;
    r->size = 1;
    r->local = 1;
    r->mpi = 0;
#ifdef DCM_WITH_MPI
    if (launched_by_mpi()) {
        int provided = 0;
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return cli_fail("batch", DCM_ERR_SYSTEM, "MPI_Init failed");
        r->mpi = 1;
        MPI_Comm_rank(MPI_COMM_WORLD, &r->rank);
        MPI_Comm_size(MPI_COMM_WORLD, &r->size);
        MPI_Comm node;
        if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
            MPI_SUCCESS) {
            MPI_Comm_size(node, &r->local);
            MPI_Comm_free(&node);
        }
    }
#endif
    return DCM_OK;
}

static void ranks_finish(ranks *r)
{
#ifdef DCM_WITH_MPI
    if (r->mpi)
        MPI_Finalize();
#endif
    r->mpi = 0;
}

/* Rank 0's value, on every rank. */
static int share_int(const ranks *r, int v)
{
#ifdef DCM_WITH_MPI
    if (r->mpi)
        MPI_Bcast(&v, 1, MPI_INT, 0, MPI_COMM_WORLD);
#else
    (void)r;
#endif
    return v;
}

/* The largest v over the ranks. */
static int max_int(const ranks *r, int v)
{
#ifdef DCM_WITH_MPI
    if (r->mpi)
        MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
#else
    (void)r;
#endif
    return v;
}

static void share_ints(const ranks *r, int *v, int n)
{
#ifdef DCM_WITH_MPI
    if (r->mpi && n > 0)
        MPI_Bcast(v, n, MPI_INT, 0, MPI_COMM_WORLD);
#else
    (void)r;
    (void)v;
    (void)n;
#endif
}

#ifdef DCM_WITH_MPI
/* A barrier that sleeps instead of spinning, so that a rank that is done
 * leaves its core to the threads of ranks still estimating. */
static void wait_for_all(void)
{
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    int flag = 0;
    struct timespec ts = {0, 20 * 1000 * 1000};
    for (;;) {
        MPI_Test(&req, &flag, MPI_STATUS_IGNORE);
        if (flag)
            break;
        nanosleep(&ts, NULL);
    }
}
#endif

/* Collect every rank's outcomes on rank 0. A job's outcome is set by
 * exactly one rank and left zero by the others (rank 0 also holds the
 * skipped ones), so a sum (bitwise or for the messages) assembles them. */
static int gather_outcomes(const ranks *r, dcm_batch_outcome *out, int njobs)
{
#ifdef DCM_WITH_MPI
    if (!r->mpi || r->size == 1)
        return DCM_OK;
    wait_for_all();
    int *iv = calloc((size_t)njobs * 5, sizeof *iv);
    double *dv = calloc((size_t)njobs * 2, sizeof *dv);
    size_t ml = sizeof out->msg;
    unsigned char *mv = calloc((size_t)njobs, ml);
    int ok = iv && dv && mv;
    ok = max_int(r, !ok) == 0;
    if (ok) {
        for (int j = 0; j < njobs; j++) {
            iv[5 * j] = out[j].state;
            iv[5 * j + 1] = out[j].code;
            iv[5 * j + 2] = out[j].redo;
            iv[5 * j + 3] = out[j].converged;
            iv[5 * j + 4] = out[j].iterations;
            dv[2 * j] = out[j].F;
            dv[2 * j + 1] = out[j].seconds;
            memcpy(mv + ml * (size_t)j, out[j].msg, ml);
        }
        int root = r->rank == 0;
        MPI_Reduce(root ? MPI_IN_PLACE : iv, iv, 5 * njobs, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
        MPI_Reduce(root ? MPI_IN_PLACE : dv, dv, 2 * njobs, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
        MPI_Reduce(root ? MPI_IN_PLACE : mv, mv, (int)(ml * (size_t)njobs), MPI_BYTE, MPI_BOR, 0,
                   MPI_COMM_WORLD);
        if (root)
            for (int j = 0; j < njobs; j++) {
                out[j].state = iv[5 * j];
                out[j].code = iv[5 * j + 1];
                out[j].redo = iv[5 * j + 2];
                out[j].converged = iv[5 * j + 3];
                out[j].iterations = iv[5 * j + 4];
                out[j].F = dv[2 * j];
                out[j].seconds = dv[2 * j + 1];
                memcpy(out[j].msg, mv + ml * (size_t)j, ml);
                out[j].msg[ml - 1] = 0;
            }
    }
    free(iv);
    free(dv);
    free(mv);
    return ok ? DCM_OK : DCM_ERR_SYSTEM;
#else
    (void)r;
    (void)out;
    (void)njobs;
    return DCM_OK;
#endif
}

/* Messages: on rank 0 only (the others say the same). */
static int fail0(const ranks *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail0(const ranks *r, int code, const char *fmt, ...)
{
    if (r->rank != 0)
        return code;
    va_list ap;
    va_start(ap, fmt);
    fputs("dcm batch: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

/* ---- progress ---- */

typedef struct {
    const dcm_batch_manifest *m;
    const dcm_batch_outcome *out;
    int quiet, tty;
    int total, done, failed;
    double last_line;   /* when the last plain progress line was printed */
    int bar_drawn;      /* the terminal line holds a progress bar */
    char tag[48];       /* "" or " (rank 1 of 4)" */
} progress;

static void format_eta(char *buf, size_t len, const progress *p, double elapsed)
{
    if (p->done == 0) {
        snprintf(buf, len, "ETA -");
        return;
    }
    double eta = elapsed / p->done * (p->total - p->done);
    long s = lround(eta);
    if (s < 60)
        snprintf(buf, len, "ETA %ld s", s);
    else if (s < 3600)
        snprintf(buf, len, "ETA %ldm%02lds", s / 60, s % 60);
    else
        snprintf(buf, len, "ETA %ldh%02ldm", s / 3600, (s % 3600) / 60);
}

static void clear_bar(progress *p)
{
    if (p->bar_drawn) {
        fputs("\r\033[K", stderr);
        p->bar_drawn = 0;
    }
}

static void draw_bar(progress *p, double elapsed)
{
    enum { W = 30 };
    char bar[W + 1], eta[32];
    int fill = p->total ? (int)((long)W * p->done / p->total) : W;
    for (int i = 0; i < W; i++)
        bar[i] = i < fill ? '#' : '-';
    bar[W] = 0;
    if (p->done == p->total)
        snprintf(eta, sizeof eta, "in %.1f s", elapsed);
    else
        format_eta(eta, sizeof eta, p, elapsed);
    fprintf(stderr, "\r\033[Kbatch [%s] %d/%d done, %d failed, %s", bar, p->done, p->total, p->failed,
            eta);
    fflush(stderr);
    p->bar_drawn = 1;
}

static void on_event(void *ctx, int job, double elapsed)
{
    progress *p = ctx;
    if (job >= 0) {
        p->done++;
        const dcm_batch_outcome *o = &p->out[job];
        if (o->state == DCM_BATCH_FAILED) {
            p->failed++;
            clear_bar(p);
            const dcm_batch_job *J = &p->m->jobs[job];
            fprintf(stderr, "dcm batch: subject %s, model %s failed (exit %d): %s\n", J->subject,
                    J->model, o->code, o->msg);
        }
    }
    if (p->quiet)
        return;
    if (p->tty) {
        draw_bar(p, elapsed);
    } else if (job >= 0 && (p->done == p->total || elapsed - p->last_line >= 1.0)) {
        char eta[32];
        format_eta(eta, sizeof eta, p, elapsed);
        fprintf(stderr, "batch%s: %d/%d done, %d failed, %s\n", p->tag, p->done, p->total,
                p->failed, eta);
        p->last_line = elapsed;
    }
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the command ---- */

typedef struct {
    const char *manifest, *outdir;
    const char *shard;   /* NULL, "K/N" or "slurm" */
    int shard_k, shard_n;   /* 1 and 1 without --shard */
    long jobs;     /* 0: default */
    int force, quiet, spm12_te;
    char outdir_buf[4096];
} options;

/* A whole number from an environment variable of a Slurm array task:
 * DCM_OK with *v, or a usage error naming the variable. */
static int slurm_var(const ranks *r, const char *name, int required, long *v)
{
    const char *s = getenv(name);
    if (!s || !*s) {
        *v = -1;
        if (!required)
            return DCM_OK;
        return fail0(r, DCM_ERR_USAGE, "--shard slurm: %s is not set; run it as a task of a Slurm "
                     "job array (sbatch --array=1-N ...), or give --shard K/N", name);
    }
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < 0 || x > 100000000)
        return fail0(r, DCM_ERR_USAGE, "--shard slurm: %s is '%s', not a whole number", name, s);
    *v = x;
    return DCM_OK;
}

/* --shard K/N or slurm into o->shard_k, o->shard_n. */
static int parse_shard(const ranks *r, options *o)
{
    o->shard_k = o->shard_n = 1;
    if (!o->shard)
        return DCM_OK;
    if (!strcmp(o->shard, "slurm")) {
        long id, lo, count, hi, step;
        int rc = slurm_var(r, "SLURM_ARRAY_TASK_ID", 1, &id);
        if (!rc)
            rc = slurm_var(r, "SLURM_ARRAY_TASK_MIN", 1, &lo);
        if (!rc)
            rc = slurm_var(r, "SLURM_ARRAY_TASK_COUNT", 0, &count);
        if (!rc)
            rc = slurm_var(r, "SLURM_ARRAY_TASK_MAX", count < 0, &hi);
        if (!rc)
            rc = slurm_var(r, "SLURM_ARRAY_TASK_STEP", 0, &step);
        if (rc)
            return rc;
        if (step <= 0)
            step = 1;
        if (count <= 0)
            count = hi >= lo ? (hi - lo) / step + 1 : 0;
        if (id < lo || (id - lo) % step)
            return fail0(r, DCM_ERR_USAGE, "--shard slurm: SLURM_ARRAY_TASK_ID %ld is not MIN %ld plus a "
                         "multiple of STEP %ld", id, lo, step);
        long k = (id - lo) / step + 1;
        if (count < 1 || k > count)
            return fail0(r, DCM_ERR_USAGE, "--shard slurm: task %ld of an array of %ld (from "
                         "SLURM_ARRAY_TASK_ID/_MIN/_STEP/_COUNT): the array must be a range such as "
                         "--array=1-N or 0-N:STEP", k, count);
        o->shard_k = (int)k;
        o->shard_n = (int)count;
        return DCM_OK;
    }
    char *end;
    errno = 0;
    long k = strtol(o->shard, &end, 10);
    long n = -1;
    if (!errno && end != o->shard && *end == '/') {
        char *e2;
        n = strtol(end + 1, &e2, 10);
        if (errno || e2 == end + 1 || *e2)
            n = -1;
    }
    if (n < 1 || n > 1000000 || k < 1 || k > n)
        return fail0(r, DCM_ERR_USAGE, "--shard '%s': give K/N with 1 <= K <= N (e.g. 3/10), or slurm",
                     o->shard);
    o->shard_k = (int)k;
    o->shard_n = (int)n;
    return DCM_OK;
}

/* DCM_OK, or an exit status (help printed: -1). */
static int parse_args(const ranks *r, int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    const cli_opt table[] = {
        CLI_STRING('o', "output", &o->outdir, "DIR", "output folder (required; created if needed)",
                   .flags = CLI_OPT_NONEMPTY, .missing = "%o needs a folder name"),
        CLI_INT('j', "jobs", &o->jobs, "N", 1, 4096, "estimates at once (default: the cores available)",
                .missing = "%o needs a whole number from 1 to 4096"),
        CLI_STRING(0, "shard", &o->shard, "K/N|slurm",
                   "run only the K-th of N disjoint shares of the rows (a job array's task; "
                   "'slurm': K and N from SLURM_ARRAY_TASK_*); no summary.tsv",
                   .flags = CLI_OPT_NONEMPTY, .missing = "%o needs K/N (e.g. 2/10) or slurm"),
        CLI_FLAG(0, "force", &o->force, "estimate again even what is already done"),
        CLI_FLAG(0, "spm12-te", &o->spm12_te,
                 "compute BOLD with TE = 0.04 s as SPM12 r7771 does whatever a spec or DCM.TE says "
                 "(default: each spec's TE)"),
        CLI_FLAG('q', "quiet", &o->quiet, "no progress, only failures"),
        CLI_END};
    const cli_command cmd = {"batch", usage, description, footer, table, r->rank != 0};
    int npos;
    int rc = cli_options_parse(&cmd, argc, argv, &npos);
    if (rc)
        return rc;
    if (npos > 1)
        return fail0(r, DCM_ERR_USAGE, "one MANIFEST.tsv at a time ('%s' is extra)", argv[2]);
    if (npos)
        o->manifest = argv[1];
    if (!o->manifest)
        return fail0(r, DCM_ERR_USAGE, "no MANIFEST.tsv given (see dcm batch --help)");
    if (!o->outdir)
        return fail0(r, DCM_ERR_USAGE, "no output folder: add -o OUTDIR");
    /* "out/" and "out" are the same folder; keep messages and paths tidy */
    size_t l = strlen(o->outdir);
    while (l > 1 && o->outdir[l - 1] == '/')
        l--;
    if (l >= sizeof o->outdir_buf)
        return fail0(r, DCM_ERR_USAGE, "the output folder name is too long");
    memcpy(o->outdir_buf, o->outdir, l);
    o->outdir_buf[l] = 0;
    o->outdir = o->outdir_buf;
    return parse_shard(r, o);
}

/* Threads for this rank. */
static int default_threads(const ranks *r)
{
    int restricted = 0;
    int n = dcm_batch_cpus(&restricted);
    /* bound by the launcher: the mask is this rank's share already */
    if (!restricted && r->local > 1)
        n /= r->local;
    return n > 0 ? n : 1;
}

static int batch_main(const ranks *r, int argc, char **argv)
{
    options o;
    int rc = parse_args(r, argc, argv, &o);
    if (rc)
        return rc < 0 ? DCM_OK : rc;

    /* 1. the manifest, checked before anything is created */
    dcm_batch_manifest m;
    dcm_error err = {0, ""};
    int lrc = dcm_batch_manifest_load(o.manifest, &m, &err);
    if (!lrc)
        m.spm12_te = o.spm12_te;
    rc = share_int(r, lrc);
    if (rc) {
        if (r->rank == 0)
            cli_report("batch", &err);
        if (!lrc)
            dcm_batch_manifest_free(&m);
        return rc;
    }
    rc = max_int(r, lrc);
    if (rc == DCM_OK) {
        int most = max_int(r, m.njobs), least = -max_int(r, -m.njobs);
        if (most != least)
            rc = DCM_ERR_INPUT;
    }
    if (rc) {
        if (lrc)
            fprintf(stderr, "dcm batch (rank %d): %s\n", r->rank, err.msg);
        else
            dcm_batch_manifest_free(&m);
        return fail0(r, rc, "the MPI ranks read different manifests; the manifest, its specs and "
                     "OUTDIR must be on a filesystem every rank sees");
    }

    /* 1b. OUTDIR must be a folder of its own: not one holding the
       manifest, a spec or a file a spec names (results would land among
       them), writable; checked before anything is created */
    int prc = DCM_OK;
    if (r->rank == 0) {
        cli_plan plan;
        cli_plan_init(&plan, "batch");
        cli_plan_input(&plan, o.manifest, "the manifest");
        for (int j = 0; j < m.njobs; j++)
            cli_plan_spec(&plan, m.jobs[j].spec_path);
        cli_plan_output_dir_own(&plan, o.outdir, "-o");
        prc = cli_plan_check(&plan);
        cli_plan_free(&plan);
    }
    if ((rc = share_int(r, prc))) {
        dcm_batch_manifest_free(&m);
        return rc;
    }

    dcm_batch_outcome *out = calloc((size_t)m.njobs, sizeof *out);
    int *todo = malloc(sizeof(int) * (size_t)m.njobs);
    int *mine = malloc(sizeof(int) * (size_t)m.njobs);
    int lock = -1, shard_lock[2] = {-1, -1};
    const int sharded = o.shard_n > 1;
    double t0 = wall_seconds();
    rc = max_int(r, (!out || !todo || !mine) ? DCM_ERR_SYSTEM : DCM_OK);
    if (rc) {
        rc = fail0(r, rc, "out of memory");
        goto done;
    }

    /* 2. rank 0: OUTDIR, its lock, leftovers of a killed run, what is done */
    int ntodo = 0, nskip = 0, nshard = 0;
    if (r->rank == 0) {
        rc = sharded ? dcm_batch_lock_shard(o.outdir, o.shard_k, o.shard_n, shard_lock, &err)
                     : dcm_batch_lock(o.outdir, &lock, &err);
        if (!rc)
            rc = dcm_batch_prepare_shard(&m, o.outdir, o.force, o.shard_k, o.shard_n, out, &err);
        if (rc)
            cli_report("batch", &err);
        for (int j = 0; j < m.njobs && !rc; j++) {
            if (!dcm_batch_in_shard(j, o.shard_k, o.shard_n))
                continue;
            nshard++;
            if (out[j].state == DCM_BATCH_SKIPPED) {
                nskip++;
                continue;
            }
            if (out[j].redo && !o.quiet)
                fprintf(stderr, "dcm batch: %s/%s/%s.json is incomplete or unreadable; estimating "
                        "it again (%s)\n", o.outdir, m.jobs[j].subject, m.jobs[j].model, out[j].msg);
            out[j].msg[0] = 0;
            todo[ntodo++] = j;
        }
    }
    rc = share_int(r, rc);
    if (rc)
        goto done;
    ntodo = share_int(r, ntodo);
    share_ints(r, todo, ntodo);

    /* 3. this rank's share, on its threads */
    int nmine = 0;
    for (int k = r->rank; k < ntodo; k += r->size)
        mine[nmine++] = todo[k];
    int threads = o.jobs > 0 ? (int)o.jobs : default_threads(r);
    if (r->rank == 0 && !o.quiet) {
        if (sharded)
            fprintf(stderr, "dcm batch: shard %d of %d: %d of the %d estimates (%d subjects x %d "
                    "models): %d already done, %d to run", o.shard_k, o.shard_n, nshard, m.njobs,
                    m.nsub, m.nmod, nskip, ntodo);
        else
            fprintf(stderr, "dcm batch: %d estimates (%d subjects x %d models): %d already done, %d to "
                    "run", m.njobs, m.nsub, m.nmod, nskip, ntodo);
        int used = threads < nmine ? threads : nmine;
        if (ntodo == 0)
            fputc('\n', stderr);
        else if (r->size > 1)
            fprintf(stderr, " over %d MPI ranks (%d thread%s on rank 0)\n", r->size, used,
                    used == 1 ? "" : "s");
        else
            fprintf(stderr, " on %d thread%s\n", used, used == 1 ? "" : "s");
    }
    progress pg;
    memset(&pg, 0, sizeof pg);
    pg.m = &m;
    pg.out = out;
    pg.quiet = o.quiet;
    pg.tty = r->size == 1 && isatty(STDERR_FILENO);
    pg.total = nmine;
    if (r->size > 1)
        snprintf(pg.tag, sizeof pg.tag, " (rank %d of %d)", r->rank, r->size);
    int run_rc = dcm_batch_run(&m, o.outdir, mine, nmine, threads, pg.tty ? 0.5 : 0.0, on_event, &pg,
                               out, &err);
    clear_bar(&pg);
    if (pg.tty && !o.quiet && nmine) {
        draw_bar(&pg, wall_seconds() - t0);
        fputc('\n', stderr);
    }
    if (run_rc) {
        /* no thread could start: every job of this rank failed */
        for (int k = 0; k < nmine; k++) {
            dcm_batch_outcome *oc = &out[mine[k]];
            if (oc->state == DCM_BATCH_TODO) {
                oc->state = DCM_BATCH_FAILED;
                oc->code = run_rc;
                snprintf(oc->msg, sizeof oc->msg, "%s", err.msg);
            }
        }
        fprintf(stderr, "dcm batch: %s\n", err.msg);
    }

    /* 4. rank 0: everything gathered, failures.tsv and summary.tsv */
    rc = gather_outcomes(r, out, m.njobs);
    if (rc) {
        rc = fail0(r, rc, "out of memory gathering the results of the MPI ranks");
        goto done;
    }
    if (r->rank == 0 && sharded) {
        /* the tables are the whole batch's: a plain run writes them */
        int worst = DCM_OK, nfail = 0, ndone = 0;
        for (int j = 0; j < m.njobs; j++) {
            if (out[j].state == DCM_BATCH_FAILED && out[j].code > worst)
                worst = out[j].code;
            nfail += out[j].state == DCM_BATCH_FAILED;
            ndone += out[j].state == DCM_BATCH_DONE;
        }
        if (!o.quiet)
            fprintf(stderr, "dcm batch: shard %d of %d: %d estimated, %d already done, %d failed in "
                    "%.1f s; summary.tsv is written by a dcm batch without --shard once every shard "
                    "is done\n", o.shard_k, o.shard_n, ndone, nskip, nfail, wall_seconds() - t0);
        rc = worst;
    } else if (r->rank == 0) {
        int worst = DCM_OK, nfail = 0, rows = 0, ndone = 0, nonconv = 0;
        for (int j = 0; j < m.njobs; j++) {
            if (out[j].state == DCM_BATCH_FAILED && out[j].code > worst)
                worst = out[j].code;
            ndone += out[j].state == DCM_BATCH_DONE;
            nonconv += out[j].state == DCM_BATCH_DONE && !out[j].converged;
        }
        /* summary.tsv and failures.tsv: one result, both or neither */
        int wrc = dcm_batch_write_tables(&m, o.outdir, out, &rows, &nfail, &err);
        if (wrc)
            fprintf(stderr, "dcm batch: %s; the tables of the last run (if any) are unchanged\n",
                    err.msg);
        int nwarn = 0, wwrc = dcm_batch_write_warnings(&m, o.outdir, out, &nwarn, &err);
        if (wwrc)
            cli_report("batch", &err);
        else if (nwarn)   /* said even with -q: some results may be wrong */
            fprintf(stderr, "dcm batch: %d warning%s about the designs or fits: see %s/warnings.tsv "
                    "(and dcm check)\n", nwarn, nwarn == 1 ? "" : "s", o.outdir);
        for (int s = 0; s < m.nsub; s++) {
            int job, k = dcm_batch_subject_gap(&m, out, s, &job);
            if (k < 0)
                continue;
            if (job < 0)
                fprintf(stderr, "dcm batch: subject %s left out of summary.tsv: the manifest has no "
                        "row for model %s\n", m.subjects[s], m.models[k]);
            else if (!wrc)
                fprintf(stderr, "dcm batch: subject %s left out of summary.tsv: model %s failed "
                        "(see %s/failures.tsv)\n", m.subjects[s], m.models[k], o.outdir);
            else   /* failures.tsv could not be written: the reason is here */
                fprintf(stderr, "dcm batch: subject %s: model %s failed: %s\n", m.subjects[s],
                        m.models[k], out[job].msg);
        }
        if (!o.quiet) {
            fprintf(stderr, "dcm batch: %d estimated, %d already done, %d failed in %.1f s", ndone,
                    nskip, nfail, wall_seconds() - t0);
            if (nonconv)
                fprintf(stderr, " (%d did not converge within maxit)", nonconv);
            if (wrc)
                fprintf(stderr, "; %s/summary.tsv was not written\n", o.outdir);
            else
                fprintf(stderr, "; %s/summary.tsv: %d subject%s x %d model%s\n", o.outdir, rows,
                        rows == 1 ? "" : "s", m.nmod, m.nmod == 1 ? "" : "s");
        }
        rc = worst;
        if (wrc || (!rc && wwrc))   /* the tables not written: the worst failure of all */
            rc = DCM_ERR_SYSTEM;
    }
    rc = share_int(r, rc);

done:
    dcm_batch_unlock(lock);
    dcm_batch_unlock(shard_lock[1]);
    dcm_batch_unlock(shard_lock[0]);
    free(out);
    free(todo);
    free(mine);
    dcm_batch_manifest_free(&m);
    return rc;
}

int cmd_batch(int argc, char **argv)
{
    ranks r;
    int rc = ranks_start(&r);
    if (rc)
        return rc;
    rc = batch_main(&r, argc, argv);
    ranks_finish(&r);
    return rc;
}
