/* test_outputs.c — the output discipline of every command: outputs that
 * name an input (by device and inode, so "./x", links and the files a spec
 * names count), special files (/dev/null, a FIFO, a folder), unwritable
 * folders and a batch folder holding the study are refused before any
 * work; a full disk (RLIMIT_FSIZE) is exit 4 with the old files intact;
 * results of several files are replaced all together or not at all; a
 * spec that is a FIFO does not hang; SIGINT/SIGTERM leave no temporary
 * file and the earlier outputs intact.
 * Runs the binary named by $DCM_BIN (the sanitized build under make test)
 * in a temporary folder holding a copy of datasets/attention_design. */
#include "tests/test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include <nifti2_io.h>

#include "io/io_atomic.h"

static char tmpdir[128];
static char bin[4096];
static char out[65536];
static int ready;

/* `dcm ARGS`, run in tmpdir */
static int run(const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && %s %s", tmpdir, bin, args);
    return test_shell(cmd, out, sizeof out);
}

static char *tp(const char *rel)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, rel);
    return buf[k];
}

/* the whole file (caller frees), *len its size; NULL when unreadable */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, k;
    char *b = malloc(cap);
    while (b && (k = fread(b + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
            }
            b = nb;
        }
    }
    fclose(f);
    *len = n;
    return b;
}

/* a snapshot of a file's bytes, to prove it unchanged later */
typedef struct {
    char *bytes;
    size_t len;
} snap;

static snap take(const char *rel)
{
    snap s = {NULL, 0};
    s.bytes = slurp(tp(rel), &s.len);
    return s;
}

static int same(const char *rel, snap s)
{
    size_t len;
    char *b = slurp(tp(rel), &len);
    int ok = b && s.bytes && len == s.len && !memcmp(b, s.bytes, len);
    if (!ok)
        printf("\n  %s changed", rel);
    free(b);
    return ok;
}

static int exists(const char *rel)
{
    struct stat st;
    return stat(tp(rel), &st) == 0;
}

static int has(const char *needle)
{
    if (strstr(out, needle))
        return 1;
    printf("\n  expected \"%s\" in:\n%s", needle, out);
    return 0;
}

static int setup(void)
{
    const char *b = test_dcm_bin();
    char cwd[2048];
    if (b[0] == '/' || !getcwd(cwd, sizeof cwd))
        snprintf(bin, sizeof bin, "%s", b);
    else
        snprintf(bin, sizeof bin, "%s/%s", cwd, b);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dcm_outputs_XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cp datasets/attention_design/fwd.json datasets/attention_design/"
             "events.tsv datasets/attention_design/truth.json '%s'/", tmpdir);
    if (system(cmd) != 0)
        return -1;
    if (run("simulate fwd.json --params truth.json --snr 4 --seed 3 -o timeseries.tsv") != 0)
        return -1;
    /* one estimate whose outputs later runs must leave alone */
    if (run("estimate fwd.json -o r.json --mat r.mat -q --maxit 2") != 0)
        return -1;
    return 0;
}

#define NEED_SETUP()                                                      \
    do {                                                                  \
        if (!ready) {                                                     \
            CU_FAIL("setup failed (datasets/attention_design, simulate)"); \
            return;                                                       \
        }                                                                 \
    } while (0)

/* -o (or --mat) naming the spec, a file the spec names, a link to it */
static void test_output_names_an_input(void)
{
    NEED_SETUP();
    snap spec = take("fwd.json"), ts = take("timeseries.tsv"), ev = take("events.tsv");
    static const char *const args[] = {
        "estimate fwd.json -o fwd.json",       "estimate fwd.json -o ./fwd.json",
        "estimate fwd.json -o timeseries.tsv", "estimate fwd.json -o r2.json --mat events.tsv",
        "estimate fwd.json -o link.json",      "simulate fwd.json --params truth.json -o events.tsv",
        NULL};
    CU_ASSERT_EQUAL(symlink("fwd.json", tp("link.json")), 0);
    for (int i = 0; args[i]; i++) {
        CU_ASSERT_EQUAL(run(args[i]), 2);
        CU_ASSERT(has("refusing to overwrite an input"));
        CU_ASSERT(strstr(out, "iteration") == NULL);   /* refused before the fit */
    }
    /* with --log-json the refusal is an error event like any other */
    CU_ASSERT_EQUAL(run("estimate fwd.json -o fwd.json --log-json"), 2);
    CU_ASSERT(has("{\"event\":\"error\",\"code\":2,\"message\":\"-o fwd.json is the spec"));
    CU_ASSERT(same("fwd.json", spec) && same("timeseries.tsv", ts) && same("events.tsv", ev));
    CU_ASSERT(!exists("r2.json"));
    unlink(tp("link.json"));
    /* a spec saved with a UTF-8 byte order mark: read, and its data files
       still known as inputs (the plan reads the spec as the loader does) */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd '%s' && { printf '\\357\\273\\277'; cat fwd.json; } > bom.json", tmpdir);
    CU_ASSERT_EQUAL(system(cmd), 0);
    CU_ASSERT_EQUAL(run("estimate bom.json -o timeseries.tsv"), 2);
    CU_ASSERT(has("-o timeseries.tsv is the spec's timeseries of this run"));
    CU_ASSERT(same("timeseries.tsv", ts));
    CU_ASSERT_EQUAL(run("estimate bom.json -o bom_r.json -q --maxit 2"), 0);
    CU_ASSERT(exists("bom_r.json"));
    /* -o and --mat the same file */
    CU_ASSERT_EQUAL(run("estimate fwd.json -o r2.json --mat ./r2.json"), 1);
    CU_ASSERT(has("are the same file"));
    /* simulate writes the spec's own time series: that is its job */
    CU_ASSERT_EQUAL(run("simulate fwd.json --params truth.json --snr 4 --seed 3 -o timeseries.tsv"), 0);
    CU_ASSERT(same("timeseries.tsv", ts));   /* same seed, same bytes */
    free(spec.bytes);
    free(ts.bytes);
    free(ev.bytes);
}

/* results used as inputs by reduce, average, report */
static void test_group_commands_refuse_their_input(void)
{
    NEED_SETUP();
    snap r = take("r.json");
    CU_ASSERT_EQUAL(run("reduce r.json --off 'B:Attention:V1->V5' -o r.json"), 2);
    CU_ASSERT(has("the result file of this run"));
    CU_ASSERT_EQUAL(run("average r.json ./r.json -o r.json"), 2);
    CU_ASSERT_EQUAL(run("report ./r.json -o r.json"), 2);
    snap ev = take("events.tsv");
    CU_ASSERT_EQUAL(run("peb nodir --model fwd --design events.tsv --params 'B:*' -o events.tsv"), 2);
    CU_ASSERT(has("--design"));
    CU_ASSERT(same("events.tsv", ev));
    free(ev.bytes);
    CU_ASSERT(same("r.json", r));
    CU_ASSERT_EQUAL(run("reduce r.json --off 'B:Attention:V1->V5' -o /dev/null"), 4);
    CU_ASSERT(has("character device"));
    free(r.bytes);
}

/* /dev/null, a FIFO, a folder: refused, never replaced */
static void test_special_files_refused(void)
{
    NEED_SETUP();
    CU_ASSERT_EQUAL(run("estimate fwd.json -o /dev/null"), 4);
    CU_ASSERT(has("/dev/null: it is a character device, not a regular file"));
    struct stat st;
    CU_ASSERT(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));
    CU_ASSERT_EQUAL(mkfifo(tp("fifo.json"), 0600), 0);
    CU_ASSERT_EQUAL(run("estimate fwd.json -o fifo.json"), 4);
    CU_ASSERT(has("FIFO"));
    CU_ASSERT(stat(tp("fifo.json"), &st) == 0 && S_ISFIFO(st.st_mode));
    CU_ASSERT_EQUAL(mkdir(tp("adir"), 0700), 0);
    CU_ASSERT_EQUAL(run("simulate fwd.json --params truth.json -o adir"), 4);
    CU_ASSERT(has("a folder"));
    /* a spec that is a FIFO: refused at once, not a hang */
    double t0 = (double)time(NULL);
    CU_ASSERT_EQUAL(run("estimate fifo.json -o x.json"), 2);
    CU_ASSERT(has("FIFO"));
    CU_ASSERT((double)time(NULL) - t0 < 10);
    /* the library's readers refuse it as well (no CLI plan there) */
    dcm_error e = {0, ""};
    CU_ASSERT_PTR_NULL(io_input_open(tp("fifo.json"), "spec", &e));
    CU_ASSERT(strstr(e.msg, "must be a regular file") != NULL);
    unlink(tp("fifo.json"));
    rmdir(tp("adir"));
    CU_ASSERT(test_no_temp_files(tmpdir));
}

/* an output that cannot be written fails before the fit (issue 8 item 4) */
static void test_unwritable_output_fails_first(void)
{
    NEED_SETUP();
    CU_ASSERT_EQUAL(run("estimate fwd.json -o /nonexistent_dcm/x.json"), 4);
    CU_ASSERT(has("the folder /nonexistent_dcm does not exist"));
    CU_ASSERT(strstr(out, "iteration") == NULL);
    snap r = take("r.json");
    CU_ASSERT_EQUAL(run("estimate fwd.json -o r.json --mat /nonexistent_dcm/x.mat"), 4);
    CU_ASSERT(strstr(out, "iteration") == NULL);
    CU_ASSERT(same("r.json", r));
    /* a path through a regular file */
    CU_ASSERT_EQUAL(run("estimate fwd.json -o r.json/x.json"), 4);
    CU_ASSERT_EQUAL(run("report r.json -o rep.html --png r.json/figs"), 4);
    CU_ASSERT(!exists("rep.html"));
    free(r.bytes);
}

/* a full disk (RLIMIT_FSIZE, SIGXFSZ ignored): exit 4, old outputs intact */
static void test_full_disk_keeps_old_files(void)
{
    NEED_SETUP();
    snap r = take("r.json"), m = take("r.mat");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && sh -c \"trap '' XFSZ; ulimit -f 40; exec '%s' estimate "
             "fwd.json -o r.json --mat r.mat -q --maxit 2\"", tmpdir, bin);
    CU_ASSERT_EQUAL(test_shell(cmd, out, sizeof out), 4);
    CU_ASSERT(has("cannot write r.json"));
    CU_ASSERT(same("r.json", r) && same("r.mat", m));
    CU_ASSERT(test_no_temp_files(tmpdir));
    free(r.bytes);
    free(m.bytes);
}

/* io_atomic_commit_all: the second file cannot be put in place (its
 * folder is gone) -> the first, already replaced, is restored */
static void test_commit_all_or_nothing(void)
{
    NEED_SETUP();
    mkdir(tp("g1"), 0700);
    mkdir(tp("g2"), 0700);
    test_write_file(tmpdir, "g1/a.txt", "old a\n");
    snap old = take("g1/a.txt");
    io_atomic a[2];
    dcm_error e = {0, ""};
    CU_ASSERT_EQUAL(io_atomic_open(&a[0], tp("g1/a.txt"), &e), DCM_OK);
    CU_ASSERT_EQUAL(io_atomic_open(&a[1], tp("g2/b.txt"), &e), DCM_OK);
    fputs("new a\n", a[0].fp);
    fputs("new b\n", a[1].fp);
    /* an unnamed temporary leaves g2 empty: it can be removed; a named
       one (no O_TMPFILE) keeps it */
    int gone = rmdir(tp("g2")) == 0;
    CU_ASSERT_EQUAL(io_atomic_commit_all(a, 2, &e), gone ? DCM_ERR_SYSTEM : DCM_OK);
    if (gone) {
        CU_ASSERT(same("g1/a.txt", old));
        CU_ASSERT(strstr(e.msg, "g2/b.txt") != NULL);
    } else {
        printf("\nSKIP: this file system has no O_TMPFILE; rollback not exercised\n");
    }
    CU_ASSERT(test_no_temp_files(tmpdir));
    /* and the good case: both in place */
    mkdir(tp("g2"), 0700);
    CU_ASSERT_EQUAL(io_atomic_open(&a[0], tp("g1/a.txt"), &e), DCM_OK);
    CU_ASSERT_EQUAL(io_atomic_open(&a[1], tp("g2/b.txt"), &e), DCM_OK);
    fputs("new a\n", a[0].fp);
    fputs("new b\n", a[1].fp);
    CU_ASSERT_EQUAL(io_atomic_commit_all(a, 2, &e), DCM_OK);
    size_t l1 = 0, l2 = 0;
    char *b1 = slurp(tp("g1/a.txt"), &l1), *b2 = slurp(tp("g2/b.txt"), &l2);
    CU_ASSERT(b1 && l1 == 6 && !memcmp(b1, "new a\n", 6));
    CU_ASSERT(b2 && l2 == 6 && !memcmp(b2, "new b\n", 6));
    free(b1);
    free(b2);
    /* a write error (here /dev/full-like: a closed stream) drops all */
    CU_ASSERT_EQUAL(io_atomic_open(&a[0], tp("g1/a.txt"), &e), DCM_OK);
    CU_ASSERT_EQUAL(io_atomic_open(&a[1], tp("g2/b.txt"), &e), DCM_OK);
    fputs("newer\n", a[0].fp);
    fputs("x", a[1].fp);
    fflush(a[1].fp);
    int fd = fileno(a[1].fp);
    int dup_full = open("/dev/full", O_WRONLY);
    if (dup_full >= 0) {
        dup2(dup_full, fd);   /* further writes to b fail with ENOSPC */
        close(dup_full);
        fputs("more", a[1].fp);
        CU_ASSERT_EQUAL(io_atomic_commit_all(a, 2, &e), DCM_ERR_SYSTEM);
        b1 = slurp(tp("g1/a.txt"), &l1);
        CU_ASSERT(b1 && l1 == 6 && !memcmp(b1, "new a\n", 6));
        free(b1);
    } else {
        io_atomic_abort(&a[0]);
        io_atomic_abort(&a[1]);
    }
    CU_ASSERT(test_no_temp_files(tmpdir));
    free(old.bytes);
}

/* batch -o pointed at the study folder that holds the specs */
static void test_batch_outdir_holding_inputs(void)
{
    NEED_SETUP();
    test_write_file(tmpdir, "manifest.tsv", "subject\tmodel\tspec\nsub-01\tfwd\tfwd.json\n");
    snap spec = take("fwd.json");
    CU_ASSERT_EQUAL(run("batch manifest.tsv -o ."), 2);
    CU_ASSERT(has("holds the manifest of this run"));
    CU_ASSERT_EQUAL(run("batch manifest.tsv -o ../$(basename $PWD)/"), 2);
    /* the spec's time series lives in a sub-folder: still refused */
    mkdir(tp("study"), 0700);
    mkdir(tp("study/data"), 0700);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp '%s/timeseries.tsv' '%s/study/data/' && sed "
             "'s#\"timeseries.tsv\"#\"data/timeseries.tsv\"#; s#\"events.tsv\"#\"../events.tsv\"#' "
             "'%s/fwd.json' > '%s/study/fwd.json'", tmpdir, tmpdir, tmpdir, tmpdir);
    CU_ASSERT_EQUAL(system(cmd), 0);
    test_write_file(tmpdir, "m2.tsv", "subject\tmodel\tspec\nsub-01\tfwd\tstudy/fwd.json\n");
    CU_ASSERT_EQUAL(run("batch m2.tsv -o study/data"), 2);
    CU_ASSERT(has("the spec's timeseries"));
    CU_ASSERT_EQUAL(run("batch m2.tsv -o /dev/null"), 4);
    CU_ASSERT(!exists("summary.tsv") && !exists("sub-01") && !exists("study/data/sub-01"));
    CU_ASSERT(same("fwd.json", spec));
    free(spec.bytes);
}

/* a small 4D NIfTI (4x4x4, 12 volumes) and its BIDS sidecar */
static int write_bold(const char *path)
{
    int64_t dims[8] = {4, 4, 4, 4, 12, 1, 1, 1};
    nifti_image *nim = nifti_make_new_nim(dims, DT_FLOAT32, 1);
    if (!nim)
        return -1;
    for (size_t q = 0; q < (size_t)nim->nvox; q++)
        ((float *)nim->data)[q] = (float)(100.0 + sin(0.7 * (double)q) + (double)(q % 64));
    nim->dx = nim->dy = nim->dz = nim->pixdim[1] = nim->pixdim[2] = nim->pixdim[3] = 3.0;
    nim->dt = nim->pixdim[4] = 2.0;
    nim->xyz_units = NIFTI_UNITS_MM;
    nim->time_units = NIFTI_UNITS_SEC;
    nim->qform_code = NIFTI_XFORM_SCANNER_ANAT;
    nim->qto_xyz = nifti_quatern_to_dmat44(0, 0, 0, 0, 0, 0, 3, 3, 3, 1);
    if (nifti_set_filenames(nim, path, 0, 1) != 0) {
        nifti_image_free(nim);
        return -1;
    }
    nifti_image_write(nim);
    nifti_image_free(nim);
    return 0;
}

/* extract -o PREFIX equal to the BOLD's name would replace its sidecar */
static void test_extract_sidecar_and_outputs(void)
{
    NEED_SETUP();
    CU_ASSERT_EQUAL_FATAL(write_bold(tp("sub_bold.nii")), 0);
    test_write_file(tmpdir, "sub_bold.json", "{\"RepetitionTime\": 2.0}\n");
    snap side = take("sub_bold.json"), img = take("sub_bold.nii");
    CU_ASSERT_EQUAL(run("extract sub_bold.nii --sphere 4,4,4,20 --name R -o sub_bold"), 2);
    CU_ASSERT(has("sidecar"));
    CU_ASSERT(same("sub_bold.json", side) && same("sub_bold.nii", img));
    CU_ASSERT(!exists("sub_bold.tsv"));
    /* no sidecar yet: PREFIX.json would become one (read by the next
       extract of this BOLD), so the same prefix is refused */
    CU_ASSERT_EQUAL_FATAL(write_bold(tp("nosc_bold.nii")), 0);
    CU_ASSERT_EQUAL(run("extract nosc_bold.nii --sphere 4,4,4,20 --name R --tr 2 -o ./nosc_bold"), 2);
    CU_ASSERT(has("would be the BIDS sidecar of nosc_bold.nii"));
    CU_ASSERT(!exists("nosc_bold.json") && !exists("nosc_bold.tsv"));
    /* a good run, then one whose third output is a folder: refused before
       work, the first run's three files intact */
    CU_ASSERT_EQUAL(run("extract sub_bold.nii --sphere 4,4,4,20 --name R -o roi"), 0);
    snap t = take("roi.tsv"), c = take("roi_confounds.tsv"), j = take("roi.json");
    mkdir(tp("roi2.json"), 0700);
    test_write_file(tmpdir, "roi2.tsv", "R\n1\n");
    snap t2 = take("roi2.tsv");
    CU_ASSERT_EQUAL(run("extract sub_bold.nii --sphere 4,4,4,20 --name R -o roi2"), 4);
    CU_ASSERT(same("roi2.tsv", t2) && !exists("roi2_confounds.tsv"));
    CU_ASSERT(same("roi.tsv", t) && same("roi_confounds.tsv", c) && same("roi.json", j));
    rmdir(tp("roi2.json"));
    CU_ASSERT(test_no_temp_files(tmpdir));
    free(side.bytes);
    free(img.bytes);
    free(t.bytes);
    free(c.bytes);
    free(j.bytes);
    free(t2.bytes);
}

/* SIGINT / SIGTERM during estimate: no temporary file, the earlier
 * result intact (byte-identical, or the complete new one) */
static void test_signal_leaves_no_temp(void)
{
    NEED_SETUP();
    snap r = take("r.json");
    int sigs[2] = {SIGINT, SIGTERM};
    for (int k = 0; k < 2; k++)
        for (int delay_ms = 20; delay_ms <= 420; delay_ms += 200) {
            pid_t pid = fork();
            if (pid == 0) {
                if (chdir(tmpdir) != 0)
                    _exit(127);
                int dn = open("/dev/null", O_WRONLY);
                dup2(dn, 1);
                dup2(dn, 2);
                execl(bin, bin, "estimate", "fwd.json", "-o", "r.json", "--mat", "r.mat", "-q",
                      "--maxit", "3", (char *)NULL);
                _exit(127);
            }
            struct timespec ts = {0, delay_ms * 1000000L};
            nanosleep(&ts, NULL);
            kill(pid, sigs[k]);
            int st;
            waitpid(pid, &st, 0);
            CU_ASSERT(test_no_temp_files(tmpdir));
            size_t len;
            char *b = slurp(tp("r.json"), &len);
            json_error_t je;
            json_t *j = b ? json_loadb(b, len, 0, &je) : NULL;
            CU_ASSERT_PTR_NOT_NULL(j);   /* whole: old or new, never half */
            json_decref(j);
            free(b);
        }
    free(r.bytes);
}

int main(void)
{
    ready = setup() == 0;
    if (!ready)
        printf("setup failed: %s\n", out);
    static const test_case cases[] = {
        {"output naming an input is refused", test_output_names_an_input},
        {"reduce/average/report refuse their input", test_group_commands_refuse_their_input},
        {"special files refused, FIFO spec no hang", test_special_files_refused},
        {"unwritable output fails before the fit", test_unwritable_output_fails_first},
        {"full disk: exit 4, old files intact", test_full_disk_keeps_old_files},
        {"io_atomic_commit_all: all or nothing", test_commit_all_or_nothing},
        {"batch -o holding the inputs is refused", test_batch_outdir_holding_inputs},
        {"extract: sidecar kept, outputs together", test_extract_sidecar_and_outputs},
        {"SIGINT/SIGTERM leave no temporary file", test_signal_leaves_no_temp},
        {NULL, NULL}};
    int rc = test_run("outputs", cases);
    if (tmpdir[0])
        test_remove_dir(tmpdir);
    return rc;
}
