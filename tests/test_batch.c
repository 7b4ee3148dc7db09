/* test_batch.c — `dcm batch` end to end: a small manifest (3 subjects x 2
 * models, 3 regions, 120 scans) estimated in parallel; summary.tsv against
 * every result's free energy; reruns that skip, --force that redoes, a
 * corrupt result that is redone; a batch killed with SIGKILL and resumed;
 * a bad spec among good ones; manifest errors that stop everything before
 * OUTDIR exists; the lock against a second batch on one OUTDIR; -j 1 and
 * -j 2 (and MPI ranks) giving the same summary.
 * Runs the binary named by $DCM_BIN (the sanitized build under make test)
 * and, for the MPI check, $DCM_MPI_BIN under mpirun. */
#include "tests/test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/io_result.h"

#define NSUB 3
static const char *subjects[NSUB] = {"sub-01", "sub-02", "sub-03"};
static const char *models[2] = {"m1", "m2"};

static char tmpdir[128];
static char out[65536];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int run_cmd(const char *cmd)
{
    return test_shell(cmd, out, sizeof out);
}

/* `dcm ARGS`, run in tmpdir */
static int run(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && %s %s", tmpdir, test_dcm_bin(), args);
    return run_cmd(cmd);
}

static void write_file(const char *name, const char *text)
{
    test_write_file(tmpdir, name, text);
}

static char *path_of(char *buf, size_t len, const char *rel)
{
    snprintf(buf, len, "%s/%s", tmpdir, rel);
    return buf;
}

static int exists(const char *rel)
{
    char p[512];
    return access(path_of(p, sizeof p, rel), F_OK) == 0;
}

static char *read_all(const char *rel)
{
    char p[512];
    FILE *f = fopen(path_of(p, sizeof p, rel), "rb");
    if (!f)
        return NULL;
    static char buf[1 << 16];
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    buf[k] = 0;
    fclose(f);
    char *s = malloc(k + 1);
    if (s)
        memcpy(s, buf, k + 1);
    return s;
}

/* No io_atomic temporary file anywhere under tmpdir/rel. */
static int no_temp_files(const char *rel)
{
    char p[512];
    return test_no_temp_files(path_of(p, sizeof p, rel));
}

/* ---- the data: 3 subjects, each with its own connection strengths ---- */

static const char *spec_fmt =
    "{\"TR\": 2.0, \"TE\": 0.04, \"scans\": 120,\n"
    " \"timeseries\": \"ts.tsv\", \"regions\": [\"R1\", \"R2\", \"R3\"],\n"
    " \"events\": \"../events.tsv\", \"inputs\": [\"Stim\", \"Attn\"],\n"
    " \"a\": [\"R1 -> R2\", \"R2 -> R3\"%s],\n"
    " \"b\": {\"Attn\": [\"R1 -> R2\"]},\n"
    " \"c\": {\"Stim\": [\"R1\"]}}\n";

static int setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dcm-batch-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    char text[4096], *p = text;
    p += sprintf(p, "onset\tduration\ttrial_type\n");
    for (int b = 0; b < 6; b++)
        p += sprintf(p, "%.1f\t20\tStim\n%.1f\t10\tAttn\n", 40.0 * b + 20.0, 40.0 * b + 30.0);
    write_file("events.tsv", text);
    char man[4096], *q = man;
    q += sprintf(q, "subject\tmodel\tspec\n");
    for (int s = 0; s < NSUB; s++) {
        char name[512], args[2048];
        snprintf(name, sizeof name, "%s/%s", tmpdir, subjects[s]);
        mkdir(name, 0777);
        snprintf(name, sizeof name, "%s/truth.json", subjects[s]);
        snprintf(text, sizeof text,
                 "{\"A\": [[0, 0, 0], [%.2f, 0, 0], [0, %.2f, 0]],\n"
                 " \"B\": {\"Attn\": [[0, 0, 0], [%.2f, 0, 0], [0, 0, 0]]},\n"
                 " \"C\": [[0.8, 0], [0, 0], [0, 0]]}\n",
                 0.35 + 0.05 * s, 0.3 - 0.04 * s, 0.25 + 0.05 * s);
        write_file(name, text);
        for (int m = 0; m < 2; m++) {
            snprintf(name, sizeof name, "%s/%s.json", subjects[s], models[m]);
            snprintf(text, sizeof text, spec_fmt, m ? ", \"R1 -> R3\"" : "");
            write_file(name, text);
            q += sprintf(q, "%s\t%s\t%s/%s.json\n", subjects[s], models[m], subjects[s], models[m]);
        }
        snprintf(args, sizeof args, "simulate %s/m1.json --params %s/truth.json --snr 3 --seed %d -o %s/ts.tsv",
                 subjects[s], subjects[s], 11 + s, subjects[s]);
        if (run(args) != 0)
            return -1;
    }
    write_file("manifest.tsv", man);
    return 0;
}

static int teardown(void)
{
    return test_remove_dir(tmpdir);
}

/* ---- summary.tsv ---- */

typedef struct {
    int rows, cols;           /* subjects, models */
    char names[16][64];       /* models */
    char subj[16][64];
    double F[16][16];
} summary;

static int read_summary(const char *rel, summary *s)
{
    char *text = read_all(rel);
    if (!text)
        return -1;
    memset(s, 0, sizeof *s);
    int line = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save), line++) {
        int c = 0;
        for (char *s2 = NULL, *cell = strtok_r(l, "\t", &s2); cell; cell = strtok_r(NULL, "\t", &s2), c++) {
            if (line == 0) {
                if (c > 0 && c <= 16)
                    snprintf(s->names[c - 1], 64, "%s", cell);
                else if (c == 0 && strcmp(cell, "subject"))
                    return free(text), -1;
            } else if (line <= 16 && c <= 16) {
                if (c == 0)
                    snprintf(s->subj[line - 1], 64, "%s", cell);
                else
                    s->F[line - 1][c - 1] = strtod(cell, NULL);
            }
        }
        if (line == 0)
            s->cols = c - 1;
        else if (c - 1 != s->cols)
            return free(text), -1;
    }
    s->rows = line - 1;
    free(text);
    return 0;
}

static double result_F(const char *outdir, const char *sub, const char *mod)
{
    char rel[512], p[512];
    snprintf(rel, sizeof rel, "%s/%s/%s.json", outdir, sub, mod);
    json_t *j = test_load_json(path_of(p, sizeof p, rel));
    if (!j)
        return NAN;
    double F = json_number_value(json_object_get(j, "free_energy"));
    json_decref(j);
    return F;
}

/* every result exists and summary.tsv holds exactly their free energies */
static void check_outdir(const char *outdir)
{
    char rel[512];
    for (int s = 0; s < NSUB; s++)
        for (int m = 0; m < 2; m++) {
            snprintf(rel, sizeof rel, "%s/%s/%s.json", outdir, subjects[s], models[m]);
            CU_ASSERT(exists(rel));
        }
    summary S;
    snprintf(rel, sizeof rel, "%s/summary.tsv", outdir);
    CU_ASSERT_EQUAL_FATAL(read_summary(rel, &S), 0);
    CU_ASSERT_EQUAL(S.rows, NSUB);
    CU_ASSERT_EQUAL(S.cols, 2);
    CU_ASSERT_STRING_EQUAL(S.names[0], "m1");
    CU_ASSERT_STRING_EQUAL(S.names[1], "m2");
    for (int s = 0; s < NSUB && s < S.rows; s++) {
        CU_ASSERT_STRING_EQUAL(S.subj[s], subjects[s]);
        for (int m = 0; m < 2; m++) {
            double F = result_F(outdir, subjects[s], models[m]);
            CU_ASSERT(isfinite(F));
            CU_ASSERT_EQUAL(S.F[s][m], F);   /* %.17g both ways: exact */
        }
    }
    snprintf(rel, sizeof rel, "%s/failures.tsv", outdir);
    CU_ASSERT_FALSE(exists(rel));
    CU_ASSERT(no_temp_files(outdir));
}

/* ---- file identities: was a result rewritten? ---- */

typedef struct {
    int present;
    ino_t ino;
    struct timespec mtime;
    off_t size;
} ident;

static ident identify(const char *rel)
{
    ident id;
    memset(&id, 0, sizeof id);
    char p[512];
    struct stat st;
    if (stat(path_of(p, sizeof p, rel), &st) == 0) {
        id.present = 1;
        id.ino = st.st_ino;
        id.mtime = st.st_mtim;
        id.size = st.st_size;
    }
    return id;
}

static int same_file(ident a, ident b)
{
    return a.present && b.present && a.ino == b.ino && a.size == b.size &&
           a.mtime.tv_sec == b.mtime.tv_sec && a.mtime.tv_nsec == b.mtime.tv_nsec;
}

/* ---- tests ---- */

static void test_usage(void)
{
    CU_ASSERT_EQUAL(run("batch --help"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "example"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "summary.tsv"));
    CU_ASSERT_EQUAL(run("batch"), 1);
    CU_ASSERT_EQUAL(run("batch manifest.tsv"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "-o OUTDIR"));
    CU_ASSERT_EQUAL(run("batch manifest.tsv -o x -j 0"), 1);
    CU_ASSERT_EQUAL(run("batch manifest.tsv -o x --frobnicate"), 1);
    CU_ASSERT_FALSE(exists("x"));
}

static void test_batch_j2(void)
{
    double t = now();
    int rc = run("batch manifest.tsv -o out_j2 -j 2");
    t = now() - t;
    printf("\n  6 estimates on 2 threads: %.2f s, exit %d\n%s", t, rc, out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    /* progress is plain lines when stderr is not a terminal */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "batch: 6/6 done, 0 failed, ETA"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "6 estimated"));
    CU_ASSERT_PTR_NULL(strstr(out, "\r"));
    check_outdir("out_j2");
}

static void test_rerun_skips_force_redoes(void)
{
    ident before[NSUB][2], after[NSUB][2];
    char rel[512];
    for (int s = 0; s < NSUB; s++)
        for (int m = 0; m < 2; m++) {
            snprintf(rel, sizeof rel, "out_j2/%s/%s.json", subjects[s], models[m]);
            before[s][m] = identify(rel);
        }
    char *sum0 = read_all("out_j2/summary.tsv");
    double t = now();
    int rc = run("batch manifest.tsv -o out_j2 -j 2");
    t = now() - t;
    printf("\n  rerun: %.3f s: %s", t, out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "6 already done, 0 to run"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "0 estimated"));
    CU_ASSERT(t < 5.0);
    for (int s = 0; s < NSUB; s++)
        for (int m = 0; m < 2; m++) {
            snprintf(rel, sizeof rel, "out_j2/%s/%s.json", subjects[s], models[m]);
            CU_ASSERT(same_file(before[s][m], identify(rel)));
        }
    char *sum1 = read_all("out_j2/summary.tsv");
    CU_ASSERT(sum0 && sum1 && !strcmp(sum0, sum1));
    free(sum1);

    /* --force: every result is written again (a new file each: rename) */
    rc = run("batch -q --force manifest.tsv -o out_j2 -j 2");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(out[0], 0);   /* -q: nothing to say */
    for (int s = 0; s < NSUB; s++)
        for (int m = 0; m < 2; m++) {
            snprintf(rel, sizeof rel, "out_j2/%s/%s.json", subjects[s], models[m]);
            after[s][m] = identify(rel);
            CU_ASSERT(after[s][m].present && after[s][m].ino != before[s][m].ino);
        }
    sum1 = read_all("out_j2/summary.tsv");
    CU_ASSERT(sum0 && sum1 && !strcmp(sum0, sum1));   /* estimates are deterministic */
    free(sum1);
    check_outdir("out_j2");

    /* a partial (corrupt) result is redone, the others are not */
    char p[512];
    FILE *f = fopen(path_of(p, sizeof p, "out_j2/sub-02/m1.json"), "w");
    fputs("{\"model\": {\"regions\": [\"R1\", \"R2\"", f);
    fclose(f);
    ident cut = identify("out_j2/sub-02/m1.json");
    rc = run("batch manifest.tsv -o out_j2");
    printf("  after truncating sub-02/m1.json: %s", out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "incomplete or unreadable"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "1 estimated, 5 already done"));
    CU_ASSERT_FALSE(same_file(cut, identify("out_j2/sub-02/m1.json")));
    for (int s = 0; s < NSUB; s++)
        for (int m = 0; m < 2; m++) {
            if (s == 1 && m == 0)
                continue;
            snprintf(rel, sizeof rel, "out_j2/%s/%s.json", subjects[s], models[m]);
            CU_ASSERT(same_file(after[s][m], identify(rel)));
        }
    sum1 = read_all("out_j2/summary.tsv");
    CU_ASSERT(sum0 && sum1 && !strcmp(sum0, sum1));
    free(sum1);
    free(sum0);
    check_outdir("out_j2");
}

static void test_j1_equals_j2(void)
{
    int rc = run("batch -q manifest.tsv -o out_j1 -j 1");
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    check_outdir("out_j1");
    char *a = read_all("out_j1/summary.tsv"), *b = read_all("out_j2/summary.tsv");
    CU_ASSERT(a && b && !strcmp(a, b));
    free(a);
    free(b);
}

/* Kill a running batch with SIGKILL once its first result is written;
 * the rerun keeps what was finished and completes the rest. */
static void test_killed_batch_resumes(void)
{
    /* 18 estimates, one at a time, so that the kill lands mid-batch */
    const char *names[6] = {"a", "b", "c", "d", "e", "f"};
    char man[4096], *q = man;
    q += sprintf(q, "subject\tmodel\tspec\n");
    for (int s = 0; s < NSUB; s++)
        for (int m = 0; m < 6; m++)
            q += sprintf(q, "%s\t%s\t%s/%s.json\n", subjects[s], names[m], subjects[s], models[m % 2]);
    write_file("manifest_kill.tsv", man);
    char mpath[512], opath[512];
    path_of(mpath, sizeof mpath, "manifest_kill.tsv");
    path_of(opath, sizeof opath, "out_kill");
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        dup2(nul, 2);
        execl(test_dcm_bin(), "dcm", "batch", "-q", "-j", "1", mpath, "-o", opath, (char *)NULL);
        _exit(127);
    }
    char rel[512];
    int first = 0;
    double t0 = now();
    while (!first && now() - t0 < 120) {
        for (int s = 0; s < NSUB && !first; s++)
            for (int m = 0; m < 6 && !first; m++) {
                snprintf(rel, sizeof rel, "out_kill/%s/%s.json", subjects[s], names[m]);
                first = exists(rel);
            }
        if (!first) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    CU_ASSERT_FATAL(first);
    CU_ASSERT(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 0));
    ident id[NSUB][6];
    int had = 0;
    for (int s = 0; s < NSUB; s++)
        for (int m = 0; m < 6; m++) {
            snprintf(rel, sizeof rel, "out_kill/%s/%s.json", subjects[s], names[m]);
            id[s][m] = identify(rel);
            had += id[s][m].present;
        }
    printf("\n  killed after %d of 18 results%s\n", had,
           had == 18 ? " (the batch had already finished: the resume check is trivial)" : "");
    CU_ASSERT_FALSE(exists("out_kill/summary.tsv") && had < 18);
    /* what a kill during a write leaves behind: a temporary file */
    write_file("out_kill/sub-03/f.json.tmp.Ab12Cd", "{\"free_ener");
    char args[1024];
    snprintf(args, sizeof args, "batch manifest_kill.tsv -o out_kill -j 2");
    int rc = run(args);
    printf("  rerun: %s", out);
    CU_ASSERT_EQUAL(rc, 0);
    char expect[64];
    snprintf(expect, sizeof expect, "%d estimated, %d already done", 18 - had, had);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, expect));
    for (int s = 0; s < NSUB; s++)
        for (int m = 0; m < 6; m++) {
            snprintf(rel, sizeof rel, "out_kill/%s/%s.json", subjects[s], names[m]);
            ident now_id = identify(rel);
            CU_ASSERT(now_id.present);
            if (id[s][m].present)
                CU_ASSERT(same_file(id[s][m], now_id));   /* not redone */
        }
    CU_ASSERT(no_temp_files("out_kill"));
    summary S;
    CU_ASSERT_EQUAL_FATAL(read_summary("out_kill/summary.tsv", &S), 0);
    CU_ASSERT_EQUAL(S.rows, NSUB);
    CU_ASSERT_EQUAL(S.cols, 6);
    for (int s = 0; s < NSUB && s < S.rows; s++)
        for (int m = 0; m < 6; m++)
            CU_ASSERT_EQUAL(S.F[s][m], result_F("out_kill", subjects[s], names[m]));
}

/* One bad spec among good ones: the others finish, the exit status says
 * something failed, failures.tsv names it, its subject leaves the summary. */
static void test_bad_spec(void)
{
    mkdir(path_of((char[512]){0}, 512, "sub-04"), 0777);
    write_file("sub-04/m1.json", "{\"TR\": 2.0,\n \"TE\": 0.04\n \"regions\": []}\n");
    char man[4096], *q = man;
    q += sprintf(q, "subject\tmodel\tspec\n");
    for (int s = 0; s < NSUB; s++)
        for (int m = 0; m < 2; m++)
            q += sprintf(q, "%s\t%s\t%s/%s.json\n", subjects[s], models[m], subjects[s], models[m]);
    q += sprintf(q, "sub-04\tm1\tsub-04/m1.json\nsub-04\tm2\tsub-01/m2.json\n");
    write_file("manifest_bad.tsv", man);
    int rc = run("batch -q manifest_bad.tsv -o out_bad -j 2");
    printf("\n  exit %d: %s", rc, out);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "subject sub-04, model m1 failed (exit 2)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "m1.json:3:"));   /* the spec's own message */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "sub-04 left out of summary.tsv"));
    CU_ASSERT_FALSE(exists("out_bad/sub-04/m1.json"));
    CU_ASSERT(exists("out_bad/sub-04/m2.json"));
    char *fail = read_all("out_bad/failures.tsv");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fail);
    printf("  failures.tsv:\n%s", fail);
    CU_ASSERT_PTR_NOT_NULL(strstr(fail, "subject\tmodel\tspec\texit_code\tmessage\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(fail, "sub-04\tm1\tsub-04/m1.json\t2\t"));
    int lines = 0;
    for (char *c = fail; *c; c++)
        lines += *c == '\n';
    CU_ASSERT_EQUAL(lines, 2);
    free(fail);
    /* the good subjects are all there, with the same numbers as before */
    summary S, G;
    CU_ASSERT_EQUAL_FATAL(read_summary("out_bad/summary.tsv", &S), 0);
    CU_ASSERT_EQUAL_FATAL(read_summary("out_j2/summary.tsv", &G), 0);
    CU_ASSERT_EQUAL(S.rows, NSUB);
    for (int s = 0; s < NSUB && s < S.rows; s++) {
        CU_ASSERT_STRING_EQUAL(S.subj[s], subjects[s]);
        CU_ASSERT_EQUAL(S.F[s][0], G.F[s][0]);
        CU_ASSERT_EQUAL(S.F[s][1], G.F[s][1]);
    }
    CU_ASSERT(no_temp_files("out_bad"));
    /* fixed: the rerun does only the failed job, and failures.tsv goes */
    write_file("sub-04/m1.json", "{\"TR\": 2.0, \"TE\": 0.04, \"scans\": 120,\n"
               " \"timeseries\": \"../sub-01/ts.tsv\", \"regions\": [\"R1\", \"R2\", \"R3\"],\n"
               " \"events\": \"../events.tsv\", \"inputs\": [\"Stim\", \"Attn\"],\n"
               " \"a\": [\"R1 -> R2\", \"R2 -> R3\"], \"b\": {\"Attn\": [\"R1 -> R2\"]},\n"
               " \"c\": {\"Stim\": [\"R1\"]}}\n");
    rc = run("batch manifest_bad.tsv -o out_bad");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "1 estimated, 7 already done, 0 failed"));
    CU_ASSERT_FALSE(exists("out_bad/failures.tsv"));
    CU_ASSERT_EQUAL_FATAL(read_summary("out_bad/summary.tsv", &S), 0);
    CU_ASSERT_EQUAL(S.rows, NSUB + 1);
    CU_ASSERT_EQUAL(S.F[NSUB][0], G.F[0][0]);   /* sub-04 m1 is sub-01's data and model */
}

/* a manifest problem: exit 2, the message names the file and line, and
 * nothing is created */
static void expect_manifest_error(const char *name, const char *text, const char *needle,
                                  const char *needle2)
{
    write_file(name, text);
    char args[1024];
    snprintf(args, sizeof args, "batch %s -o out_never", name);
    int rc = run(args);
    printf("\n  [%s] exit %d: %s", name, rc, out);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, name));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, needle));
    if (needle2)
        CU_ASSERT_PTR_NOT_NULL(strstr(out, needle2));
    CU_ASSERT_FALSE(exists("out_never"));
}

static void test_manifest_errors(void)
{
    expect_manifest_error("man_missing.tsv",
                          "subject\tmodel\tspec\nsub-01\tm1\tsub-01/m1.json\nsub-01\tm2\tsub-01/nope.json\n",
                          "line 3", "nope.json");
    expect_manifest_error("man_dup.tsv",
                          "subject\tmodel\tspec\nsub-01\tm1\tsub-01/m1.json\nsub-02\tm1\tsub-02/m1.json\n"
                          "sub-01\tm1\tsub-01/m2.json\n",
                          "line 4", "listed twice (also line 2)");
    expect_manifest_error("man_nocol.tsv", "subject\tspec\nsub-01\tsub-01/m1.json\n", "line 1",
                          "no 'model' column");
    expect_manifest_error("man_badname.tsv",
                          "subject\tmodel\tspec\n../evil\tm1\tsub-01/m1.json\nsub-01\tm 1\tsub-01/m1.json\n",
                          "line 2", "line 3");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "2 problems"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "safe file name"));
    expect_manifest_error("man_empty.tsv", "subject\tmodel\tspec\n", "no estimates", NULL);
    expect_manifest_error("man_ragged.tsv", "subject\tmodel\tspec\nsub-01\tm1\n", "line 2", NULL);
    /* spaces for tabs: say so (issue 8, messages) */
    expect_manifest_error("man_spaces.tsv", "subject model spec\nsub-01 m1 sub-01/m1.json\n",
                          "line 1", "columns must be separated by tabs");
    expect_manifest_error("man_spaces2.tsv", "subject\tmodel\tspec\nsub-01 m1 sub-01/m1.json\n",
                          "line 2", "columns must be separated by tabs");
    CU_ASSERT_EQUAL(run("batch no_such_manifest.tsv -o out_never"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no_such_manifest.tsv"));
    CU_ASSERT_FALSE(exists("out_never"));
    /* comma-separated manifests work too, spec paths relative to the manifest */
    char args[1024];
    write_file("sub-01/man.csv", "subject,model,spec\nsub-01,m1,m1.json\n");
    snprintf(args, sizeof args, "batch -q sub-01/man.csv -o out_csv");
    CU_ASSERT_EQUAL(run(args), 0);
    CU_ASSERT_EQUAL(result_F("out_csv", "sub-01", "m1"), result_F("out_j2", "sub-01", "m1"));
}

/* summary.tsv and failures.tsv are one result: when failures.tsv cannot be
 * written, neither table is replaced, the exit status is 4 and the message
 * gives the failure itself instead of "see failures.tsv". */
static void test_tables_unwritable(void)
{
    mkdir(path_of((char[512]){0}, 512, "sub-05"), 0777);
    write_file("sub-05/bad.json", "{\"TR\": 2.0}\n");
    write_file("man_tbl.tsv", "subject\tmodel\tspec\nsub-01\tm1\tsub-01/m1.json\n"
                              "sub-05\tm1\tsub-05/bad.json\n");
    write_file("man_tbl_ok.tsv", "subject\tmodel\tspec\nsub-01\tm1\tsub-01/m1.json\n");
    CU_ASSERT_EQUAL_FATAL(run("batch -q man_tbl_ok.tsv -o out_tbl"), 0);
    char *before = read_all("out_tbl/summary.tsv");
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    mkdir(path_of((char[512]){0}, 512, "out_tbl/failures.tsv"), 0777);   /* cannot be replaced */
    int rc = run("batch -q man_tbl.tsv -o out_tbl");
    printf("\n  exit %d: %s", rc, out);
    CU_ASSERT_EQUAL(rc, 4);
    CU_ASSERT_PTR_NULL(strstr(out, "see out_tbl/failures.tsv"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "subject sub-05: model m1 failed:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "the tables of the last run (if any) are unchanged"));
    char *after = read_all("out_tbl/summary.tsv");
    CU_ASSERT(after && !strcmp(before, after));   /* the last run's table stays */
    free(before);
    free(after);
    CU_ASSERT(no_temp_files("out_tbl"));
}

/* SIGINT / SIGTERM while a --force batch replaces results: no temporary
 * file is left and every result is whole (the old or the new one). */
static void test_signal_during_batch(void)
{
    CU_ASSERT_EQUAL_FATAL(run("batch -q manifest.tsv -o out_sig -j 2"), 0);
    char mpath[512], opath[512];
    path_of(mpath, sizeof mpath, "manifest.tsv");
    path_of(opath, sizeof opath, "out_sig");
    int sigs[2] = {SIGINT, SIGTERM};
    for (int k = 0; k < 2; k++)
        for (int delay = 50; delay <= 650; delay += 300) {
            pid_t pid = fork();
            CU_ASSERT_FATAL(pid >= 0);
            if (pid == 0) {
                int nul = open("/dev/null", O_WRONLY);
                dup2(nul, 1);
                dup2(nul, 2);
                execl(test_dcm_bin(), "dcm", "batch", "-q", "--force", "-j", "2", mpath, "-o", opath,
                      (char *)NULL);
                _exit(127);
            }
            struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            double t_kill = now();
            kill(pid, sigs[k]);
            int st;
            waitpid(pid, &st, 0);
            /* ended by the signal, promptly (or it had already finished) */
            CU_ASSERT((WIFSIGNALED(st) && WTERMSIG(st) == sigs[k]) ||
                      (WIFEXITED(st) && WEXITSTATUS(st) == 0));
            CU_ASSERT(now() - t_kill < 2.0);
            CU_ASSERT(no_temp_files("out_sig"));
            for (int s = 0; s < NSUB; s++)
                for (int m = 0; m < 2; m++) {
                    char rel[512], p[512];
                    snprintf(rel, sizeof rel, "out_sig/%s/%s.json", subjects[s], models[m]);
                    io_result_summary R;
                    memset(&R, 0, sizeof R);
                    dcm_error e = {0, ""};
                    CU_ASSERT_EQUAL(io_result_load(path_of(p, sizeof p, rel), &R, &e), DCM_OK);
                    io_result_summary_free(&R);
                }
        }
}

/* Two batches never write one folder at once: the second stops (exit 4). */
static void test_lock(void)
{
    char p[512];
    mkdir(path_of(p, sizeof p, "out_locked"), 0777);
    int fd = open(path_of(p, sizeof p, "out_locked/.dcm-batch.lock"), O_RDWR | O_CREAT, 0666);
    CU_ASSERT_FATAL(fd >= 0);
    struct flock l;
    memset(&l, 0, sizeof l);
    l.l_type = F_WRLCK;
    l.l_whence = SEEK_SET;
    CU_ASSERT_FATAL(fcntl(fd, F_SETLK, &l) == 0);   /* as a running batch holds it */
    int rc = run("batch -q manifest.tsv -o out_locked");
    printf("\n  exit %d: %s", rc, out);
    CU_ASSERT_EQUAL(rc, 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "another dcm batch"));
    CU_ASSERT_FALSE(exists("out_locked/sub-01"));
    close(fd);   /* released: now it runs */
    CU_ASSERT_EQUAL(run("batch -q manifest.tsv -o out_locked"), 0);
    char *a = read_all("out_locked/summary.tsv"), *b = read_all("out_j2/summary.tsv");
    CU_ASSERT(a && b && !strcmp(a, b));
    free(a);
    free(b);
}

/* A job array: --shard 1/2 and --shard slurm (task 2 of 2) share the
 * manifest's rows disjointly, write no summary.tsv, and a plain run then
 * estimates nothing and writes the summary a plain run writes. */
static void test_shards(void)
{
    /* bad shard requests: usage errors, nothing created */
    const char *bad[] = {"--shard 3/2", "--shard 0/2", "--shard 1/0", "--shard 2", "--shard 1/2x",
                         "--shard x", "--shard ''", "--shard slurm", NULL};
    for (int i = 0; bad[i]; i++) {
        char args[256];
        snprintf(args, sizeof args, "env -u SLURM_ARRAY_TASK_ID %s batch manifest.tsv -o out_shbad %s",
                 test_dcm_bin(), bad[i]);
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "cd '%s' && %s", tmpdir, args);
        int rc = run_cmd(cmd);
        CU_ASSERT_EQUAL(rc, 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "--shard"));
        if (i == 7)
            printf("\n  --shard slurm outside an array: exit %d: %s", rc, out);
    }
    CU_ASSERT_FALSE(exists("out_shbad"));
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && env SLURM_ARRAY_TASK_ID=4 SLURM_ARRAY_TASK_MIN=1 "
             "SLURM_ARRAY_TASK_MAX=7 SLURM_ARRAY_TASK_STEP=2 %s batch manifest.tsv -o out_shbad "
             "--shard slurm", tmpdir, test_dcm_bin());
    CU_ASSERT_EQUAL(run_cmd(cmd), 1);   /* 4 is not 1 + a multiple of 2 */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "STEP"));
    CU_ASSERT_FALSE(exists("out_shbad"));

    int rc = run("batch manifest.tsv -o out_sh --shard 1/2 -j 2");
    printf("  shard 1/2: exit %d: %s", rc, out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "shard 1 of 2: 3 of the 6 estimates"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "3 estimated, 0 already done, 0 failed"));
    CU_ASSERT_FALSE(exists("out_sh/summary.tsv"));
    /* rows 0, 2, 4 of the manifest: every subject's m1 */
    char rel[512];
    for (int s = 0; s < NSUB; s++)
        for (int m = 0; m < 2; m++) {
            snprintf(rel, sizeof rel, "out_sh/%s/%s.json", subjects[s], models[m]);
            CU_ASSERT_EQUAL(exists(rel), m == 0);
        }
    ident first[NSUB];
    for (int s = 0; s < NSUB; s++) {
        snprintf(rel, sizeof rel, "out_sh/%s/m1.json", subjects[s]);
        first[s] = identify(rel);
    }

    /* the same shard again: nothing to do */
    rc = run("batch manifest.tsv -o out_sh --shard 1/2");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "3 already done, 0 to run"));

    /* task 2 of an array --array=1-2 */
    snprintf(cmd, sizeof cmd, "cd '%s' && env SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_MIN=1 "
             "SLURM_ARRAY_TASK_COUNT=2 %s batch manifest.tsv -o out_sh --shard slurm", tmpdir,
             test_dcm_bin());
    rc = run_cmd(cmd);
    printf("  --shard slurm (task 2 of 2): exit %d: %s", rc, out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "shard 2 of 2: 3 of the 6 estimates"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "3 estimated, 0 already done"));
    CU_ASSERT_FALSE(exists("out_sh/summary.tsv"));
    ident second[NSUB];
    for (int s = 0; s < NSUB; s++) {
        snprintf(rel, sizeof rel, "out_sh/%s/m2.json", subjects[s]);
        CU_ASSERT(exists(rel));
        second[s] = identify(rel);
        snprintf(rel, sizeof rel, "out_sh/%s/m1.json", subjects[s]);
        CU_ASSERT(same_file(first[s], identify(rel)));   /* shard 1's, untouched */
    }

    /* while a shard runs (it holds the batch lock shared), a plain batch
       waits its turn; while a plain batch runs, a shard does */
    char p[512];
    int fd = open(path_of(p, sizeof p, "out_sh/.dcm-batch.lock"), O_RDWR | O_CREAT, 0666);
    CU_ASSERT_FATAL(fd >= 0);
    struct flock l;
    memset(&l, 0, sizeof l);
    l.l_type = F_RDLCK;
    l.l_whence = SEEK_SET;
    CU_ASSERT_FATAL(fcntl(fd, F_SETLK, &l) == 0);
    rc = run("batch -q manifest.tsv -o out_sh");
    CU_ASSERT_EQUAL(rc, 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "a shard of one"));
    CU_ASSERT_EQUAL(run("batch -q manifest.tsv -o out_sh --shard 2/2"), 0);   /* shards share it */
    l.l_type = F_WRLCK;
    CU_ASSERT_FATAL(fcntl(fd, F_SETLK, &l) == 0);
    rc = run("batch -q manifest.tsv -o out_sh --shard 1/2");
    CU_ASSERT_EQUAL(rc, 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "a dcm batch without --shard"));
    close(fd);

    /* the collecting run: nothing estimated, the plain run's summary */
    rc = run("batch manifest.tsv -o out_sh");
    printf("  collecting run: exit %d: %s", rc, out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "6 already done, 0 to run"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "0 estimated"));
    for (int s = 0; s < NSUB; s++) {
        snprintf(rel, sizeof rel, "out_sh/%s/m1.json", subjects[s]);
        CU_ASSERT(same_file(first[s], identify(rel)));
        snprintf(rel, sizeof rel, "out_sh/%s/m2.json", subjects[s]);
        CU_ASSERT(same_file(second[s], identify(rel)));
    }
    char *a = read_all("out_sh/summary.tsv"), *b = read_all("out_j2/summary.tsv");
    CU_ASSERT(a && b && !strcmp(a, b));
    free(a);
    free(b);
    check_outdir("out_sh");
}

/* The MPI build under mpirun: the same summary as the threaded run, and
 * failures gathered from every rank. */
static void test_mpi(void)
{
    const char *bin = getenv("DCM_MPI_BIN");
    if (!bin || !*bin || access(bin, X_OK)) {
        test_skip("no MPI build ($DCM_MPI_BIN=%s is absent): 'make bin/dcm-mpi' needs mpicc "
               "(scripts/setup.sh installs libopenmpi-dev openmpi-bin)", bin ? bin : "unset");
        return;
    }
    if (run_cmd("mpirun --version") != 0) {
        test_skip("mpirun not found (scripts/setup.sh installs openmpi-bin)");
        return;
    }
    /* containers often forbid the cross-process memory copy (CMA) of
     * OpenMPI's shared-memory transport: use plain copies */
    setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 1);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mpirun --allow-run-as-root --oversubscribe -np 2 %s batch manifest.tsv -o out_mpi",
             tmpdir, bin);
    int rc = run_cmd(cmd);
    printf("\n  mpirun -np 2: exit %d\n%s", rc, out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "over 2 MPI ranks"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "(rank 1 of 2)"));
    check_outdir("out_mpi");
    char *a = read_all("out_mpi/summary.tsv"), *b = read_all("out_j2/summary.tsv");
    CU_ASSERT(a && b && !strcmp(a, b));
    free(a);
    free(b);
    /* a bad spec: reported by whichever rank ran it, listed by rank 0 */
    write_file("sub-04/m1.json", "{\"TR\": 2.0,\n \"TE\": 0.04\n \"regions\": []}\n");
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mpirun --allow-run-as-root --oversubscribe -np 2 %s batch -q manifest_bad.tsv "
             "-o out_mpi_bad",
             tmpdir, bin);
    rc = run_cmd(cmd);
    printf("  mpirun -np 2 with a bad spec: exit %d\n%s", rc, out);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "subject sub-04, model m1 failed (exit 2)"));
    char *fail = read_all("out_mpi_bad/failures.tsv");
    CU_ASSERT(fail && strstr(fail, "sub-04\tm1\tsub-04/m1.json\t2\t"));
    free(fail);
    summary S, G;
    CU_ASSERT_EQUAL_FATAL(read_summary("out_mpi_bad/summary.tsv", &S), 0);
    CU_ASSERT_EQUAL_FATAL(read_summary("out_j2/summary.tsv", &G), 0);
    CU_ASSERT_EQUAL(S.rows, NSUB);
    for (int s = 0; s < NSUB && s < S.rows; s++)
        CU_ASSERT(S.F[s][0] == G.F[s][0] && S.F[s][1] == G.F[s][1]);
    /* without mpirun the MPI binary is the threaded command */
    snprintf(cmd, sizeof cmd, "cd '%s' && %s batch -q manifest.tsv -o out_mpi_plain -j 2", tmpdir, bin);
    CU_ASSERT_EQUAL(run_cmd(cmd), 0);
    a = read_all("out_mpi_plain/summary.tsv");
    b = read_all("out_j2/summary.tsv");
    CU_ASSERT(a && b && !strcmp(a, b));
    free(a);
    free(b);
}

int main(void)
{
    if (setup()) {
        printf("cannot prepare the test directory or simulate its data: %s\n", out);
        return 1;
    }
    static const test_case cases[] = {
        {"usage errors: exit 1, nothing created", test_usage},
        {"3 subjects x 2 models on 2 threads: results and summary.tsv", test_batch_j2},
        {"rerun skips, --force redoes, a corrupt result is redone", test_rerun_skips_force_redoes},
        {"-j 1 and -j 2 give the same summary", test_j1_equals_j2},
        {"a batch killed with SIGKILL resumes without redoing work", test_killed_batch_resumes},
        {"a bad spec among good ones: the rest finish, failures.tsv, exit 2", test_bad_spec},
        {"manifest errors: exit 2 before anything is created", test_manifest_errors},
        {"a second batch on a locked OUTDIR: exit 4", test_lock},
        {"--shard 1/2 and --shard slurm, then a collecting run: the plain summary", test_shards},
        {"failures.tsv unwritable: neither table replaced, exit 4", test_tables_unwritable},
        {"SIGINT/SIGTERM during a batch: no temporary file, whole results", test_signal_during_batch},
        {"MPI: mpirun -np 2 gives the threaded run's summary", test_mpi},
        {NULL, NULL}};
    int rc = test_run("batch", cases);
    teardown();
    return rc;
}
