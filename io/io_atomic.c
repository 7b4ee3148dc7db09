/* io_atomic.c — atomic file writes (O_TMPFILE, else a named temporary
 * file, then link/rename), groups of them, and regular-file inputs (see
 * io_atomic.h). */
#define _GNU_SOURCE /* O_TMPFILE */
#include "io/io_atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *io_file_kind(unsigned mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a folder";
    case S_IFIFO: return "a FIFO (named pipe)";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    default: return "not a regular file";
    }
}

static void atomic_reset(io_atomic *a)
{
    free(a->path);
    free(a->tmp);
    a->path = NULL;
    a->tmp = NULL;
    a->fp = NULL;
    a->unnamed = 0;
    a->reopen[0] = '\0';
}

/* A cheap per-attempt random suffix; O_EXCL (or link's EEXIST) makes
 * collisions harmless. */
static void random_suffix(char *out, int len, uint64_t seed)
{
    static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uint64_t x = seed ? seed : 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < len; i++) {
        /* splitmix64 */
        x += 0x9E3779B97F4A7C15ULL;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        out[i] = set[z % (sizeof set - 1)];
    }
    out[len] = '\0';
}

/* buf (len(path) + 16 bytes) <- "PATH.tmp.XXXXXX" for this attempt */
static void temp_name(char *buf, size_t cap, const char *path, const void *salt, int attempt)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 16) ^
                    (uint64_t)(uintptr_t)salt ^ ((uint64_t)attempt * 0x2545F4914F6CDD1DULL);
    char suffix[8];
    random_suffix(suffix, 6, seed);
    snprintf(buf, cap, "%s.tmp.%s", path, suffix);
}

/* The directory part of path ("." when there is none); caller frees. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    if (slash && n == 0)
        n = 1;
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, slash ? path : ".", n);
    d[n] = '\0';
    return d;
}

int io_atomic_open(io_atomic *a, const char *path, dcm_error *err)
{
    memset(a, 0, sizeof *a);
    if (!path || !*path)
        return dcm_error_set(err, DCM_ERR_USAGE, "no output path given");
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return dcm_error_set(err, DCM_ERR_SYSTEM,
                             "cannot write %s: it is %s, not a regular file; refusing to replace it",
                             path, io_file_kind(st.st_mode));
    size_t len = strlen(path);
    a->path = malloc(len + 1);
    char *dir = dir_of(path);
    if (!a->path || !dir) {
        free(dir);
        atomic_reset(a);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory", path);
    }
    memcpy(a->path, path, len + 1);
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0666);
    int e = errno;
    free(dir);
    if (fd >= 0) {
        snprintf(a->reopen, sizeof a->reopen, "/proc/self/fd/%d", fd);
        a->unnamed = access(a->reopen, F_OK) == 0;
        if (!a->unnamed) {
            /* no /proc to link it by (a bare container): a named file */
            close(fd);
            fd = -1;
            e = EOPNOTSUPP;
            a->reopen[0] = '\0';
        }
    }
    if (fd < 0 && e != EOPNOTSUPP && e != EISDIR && e != EINVAL) {
        atomic_reset(a);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "cannot write %s: %s", path, strerror(e));
    } else if (fd < 0) {
        /* no O_TMPFILE here: a named temporary file */
        a->tmp = malloc(len + 16);
        if (!a->tmp) {
            atomic_reset(a);
            return dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory", path);
        }
        for (int attempt = 0; attempt < 64 && fd < 0; attempt++) {
            temp_name(a->tmp, len + 16, path, a, attempt);
            fd = open(a->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd < 0 && errno != EEXIST) {
                e = errno;
                atomic_reset(a);
                return dcm_error_set(err, DCM_ERR_SYSTEM, "cannot write %s: %s", path, strerror(e));
            }
        }
        if (fd < 0) {
            atomic_reset(a);
            return dcm_error_set(err, DCM_ERR_SYSTEM,
                                 "cannot write %s: could not create a unique temporary file", path);
        }
    }
    a->fp = fdopen(fd, "w");
    if (!a->fp) {
        e = errno;
        close(fd);
        if (a->tmp)
            unlink(a->tmp);
        atomic_reset(a);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "cannot write %s: %s", path, strerror(e));
    }
    return DCM_OK;
}

const char *io_atomic_reopen_path(const io_atomic *a)
{
    return a->unnamed ? a->reopen : a->tmp;
}

/* fsync the directory holding path so the rename itself is durable
 * (best effort: some file systems refuse it). */
static void sync_dir(const char *path)
{
    char *dir = dir_of(path);
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

/* Give an unnamed file the name a->tmp (PATH.tmp.XXXXXX); errno on failure. */
static int name_unnamed(io_atomic *a)
{
    size_t len = strlen(a->path);
    a->tmp = malloc(len + 16);
    if (!a->tmp)
        return ENOMEM;
    for (int attempt = 0; attempt < 64; attempt++) {
        temp_name(a->tmp, len + 16, a->path, a, attempt);
        if (linkat(AT_FDCWD, a->reopen, AT_FDCWD, a->tmp, AT_SYMLINK_FOLLOW) == 0)
            return 0;
        if (errno != EEXIST) {
            int e = errno;
            free(a->tmp);
            a->tmp = NULL;
            return e;
        }
    }
    free(a->tmp);
    a->tmp = NULL;
    return EEXIST;
}

/* Put one synced file in place; errno on failure (PATH unchanged, the
 * temporary file still there when named). */
static int install(io_atomic *a)
{
    if (a->unnamed) {
        /* a new file: linked in under its final name at once */
        if (linkat(AT_FDCWD, a->reopen, AT_FDCWD, a->path, AT_SYMLINK_FOLLOW) == 0)
            return 0;
        if (errno != EEXIST)
            return errno;
        int e = name_unnamed(a);
        if (e)
            return e;
    }
    return rename(a->tmp, a->path) == 0 ? 0 : errno;
}

/* A hard link to the file now at path, for restoring it; NULL when path
 * does not exist (or cannot be linked: then it cannot be restored). */
static char *backup_of(const char *path, const void *salt)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return NULL;
    size_t len = strlen(path);
    char *b = malloc(len + 16);
    if (!b)
        return NULL;
    for (int attempt = 0; attempt < 64; attempt++) {
        temp_name(b, len + 16, path, salt, attempt + 1000);
        if (link(path, b) == 0)
            return b;
        if (errno != EEXIST)
            break;
    }
    free(b);
    return NULL;
}

static void close_quietly(io_atomic *a)
{
    if (a->fp)
        fclose(a->fp);
    a->fp = NULL;
}

int io_atomic_commit_all(io_atomic *a, int n, dcm_error *err)
{
    int e = 0, bad = -1;
    for (int i = 0; i < n; i++)
        if (!a[i].fp) {
            for (int k = 0; k < n; k++)
                io_atomic_abort(&a[k]);
            return dcm_error_set(err, DCM_ERR_SYSTEM, "output %d was not opened for writing", i + 1);
        }
    /* 1. everything written and on disk before anything is replaced */
    for (int i = 0; i < n && !e; i++) {
        errno = 0;
        if (fflush(a[i].fp) != 0 || ferror(a[i].fp))
            e = errno ? errno : EIO;
        if (!e && fsync(fileno(a[i].fp)) != 0)
            e = errno;
        if (!e && !a[i].unnamed) {
            FILE *fp = a[i].fp;
            a[i].fp = NULL;
            if (fclose(fp) != 0)
                e = errno ? errno : EIO;
        }
        if (e)
            bad = i;
    }
    if (e) {
        int rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot write %s: %s", a[bad].path, strerror(e));
        for (int k = 0; k < n; k++)
            io_atomic_abort(&a[k]);
        return rc;
    }
    /* 2. in place, with the signals that end a process held back */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    char **backup = n > 1 ? calloc((size_t)n, sizeof *backup) : NULL;
    int *existed = n > 1 ? calloc((size_t)n, sizeof *existed) : NULL;
    int done = 0;
    if (n > 1 && (!backup || !existed))
        e = ENOMEM;
    for (; done < n && !e; done++) {
        if (n > 1) {
            struct stat st;
            existed[done] = stat(a[done].path, &st) == 0;
            backup[done] = existed[done] ? backup_of(a[done].path, &a[done]) : NULL;
        }
        if ((e = install(&a[done])) != 0)
            bad = done;
    }
    if (e && existed) {
        /* undo the ones already in place: all or nothing. A file that
           existed but could not be backed up (no hard links) keeps its new
           content rather than being deleted. */
        for (int k = 0; k < bad; k++) {
            if (backup[k])
                rename(backup[k], a[k].path);
            else if (!existed[k])
                unlink(a[k].path);
        }
    }
    for (int k = 0; backup && k < n; k++)
        if (backup[k]) {
            unlink(backup[k]);   /* after a restore it is gone already */
            free(backup[k]);
        }
    free(backup);
    free(existed);
    int rc = DCM_OK;
    if (e)
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot write %s: %s", a[bad >= 0 ? bad : 0].path,
                           strerror(e));
    for (int k = 0; k < n; k++) {
        if (e && a[k].tmp && k >= bad)
            unlink(a[k].tmp);   /* the named temporary of an unfinished install */
        close_quietly(&a[k]);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!e)
        for (int k = 0; k < n; k++)
            sync_dir(a[k].path);
    for (int k = 0; k < n; k++)
        atomic_reset(&a[k]);
    return rc;
}

int io_atomic_commit(io_atomic *a, dcm_error *err)
{
    if (!a->fp) {
        int rc = dcm_error_set(err, DCM_ERR_SYSTEM, "%s: file was not opened for writing",
                               a->path ? a->path : "output");
        atomic_reset(a);
        return rc;
    }
    return io_atomic_commit_all(a, 1, err);
}

void io_atomic_abort(io_atomic *a)
{
    close_quietly(a);
    if (a->tmp)
        unlink(a->tmp);
    atomic_reset(a);
}

int io_input_check(const char *path, const char *what, dcm_error *err)
{
    FILE *f = io_input_open(path, what, err);
    if (!f)
        return err && err->code ? err->code : DCM_ERR_INPUT;
    fclose(f);
    return DCM_OK;
}

FILE *io_input_open(const char *path, const char *what, dcm_error *err)
{
    const char *w = what ? what : "file";
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        dcm_error_set(err, DCM_ERR_INPUT, "cannot open %s %s: %s", w, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        dcm_error_set(err, DCM_ERR_INPUT, "cannot read %s %s: %s", w, path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        dcm_error_set(err, DCM_ERR_INPUT, "%s %s is %s; it must be a regular file", w, path,
                      io_file_kind(st.st_mode));
        return NULL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "r");
    if (!f) {
        dcm_error_set(err, DCM_ERR_SYSTEM, "cannot read %s %s: %s", w, path, strerror(errno));
        close(fd);
    }
    return f;
}

void io_skip_bom(FILE *f)
{
    unsigned char b[3];
    size_t k = fread(b, 1, 3, f);
    if (!(k == 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF))
        rewind(f);
}

/* 1 when paths a and b name the same file: the same inode when both
 * exist, else the same name in the same folder */
int io_same_target(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    const char *ba = strrchr(a, '/'), *bb = strrchr(b, '/');
    const char *na = ba ? ba + 1 : a, *nb = bb ? bb + 1 : b;
    if (strcmp(na, nb))
        return 0;
    char da[4096], db[4096];
    snprintf(da, sizeof da, "%.*s", ba ? (int)(ba - a) + 1 : 1, ba ? a : ".");
    snprintf(db, sizeof db, "%.*s", bb ? (int)(bb - b) + 1 : 1, bb ? b : ".");
    return stat(da, &sa) == 0 && stat(db, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}
