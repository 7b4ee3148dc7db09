/* io_atomic.c — atomic file writes via a temporary file and rename(2)
 * (see io_atomic.h). */
#include "io/io_atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void atomic_reset(io_atomic *a)
{
    free(a->path);
    free(a->tmp);
    a->path = NULL;
    a->tmp = NULL;
    a->fp = NULL;
}

/* A cheap per-attempt random suffix; O_EXCL makes collisions harmless. */
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

int io_atomic_open(io_atomic *a, const char *path, dcm_error *err)
{
    a->fp = NULL;
    a->path = NULL;
    a->tmp = NULL;
    if (!path || !*path)
        return dcm_error_set(err, DCM_ERR_USAGE, "no output path given");
    size_t len = strlen(path);
    a->path = malloc(len + 1);
    a->tmp = malloc(len + 16);
    if (!a->path || !a->tmp) {
        atomic_reset(a);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory", path);
    }
    memcpy(a->path, path, len + 1);
    int fd = -1;
    for (int attempt = 0; attempt < 64 && fd < 0; attempt++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                        ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)a ^
                        ((uint64_t)attempt * 0x2545F4914F6CDD1DULL);
        char suffix[8];
        random_suffix(suffix, 6, seed);
        snprintf(a->tmp, len + 16, "%s.tmp.%s", path, suffix);
        fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) {
            int e = errno;
            atomic_reset(a);
            return dcm_error_set(err, DCM_ERR_SYSTEM, "cannot write %s: %s", path, strerror(e));
        }
    }
    if (fd < 0) {
        atomic_reset(a);
        return dcm_error_set(err, DCM_ERR_SYSTEM,
                             "cannot write %s: could not create a unique temporary file", path);
    }
    a->fp = fdopen(fd, "w");
    if (!a->fp) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        atomic_reset(a);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "cannot write %s: %s", path, strerror(e));
    }
    return DCM_OK;
}

/* fsync the directory holding path so the rename itself is durable
 * (best effort: some file systems refuse it). */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) {
        dir[0] = '.';
        dir[1] = '\0';
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0)
            n = 1;
        if (n >= sizeof dir)
            return;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int io_atomic_commit(io_atomic *a, dcm_error *err)
{
    if (!a->fp)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "%s: file was not opened for writing",
                             a->path ? a->path : "output");
    int e = 0;
    errno = 0;
    if (fflush(a->fp) != 0 || ferror(a->fp))
        e = errno ? errno : EIO;
    if (!e && fsync(fileno(a->fp)) != 0)
        e = errno;
    if (fclose(a->fp) != 0 && !e)
        e = errno ? errno : EIO;
    a->fp = NULL;
    if (!e && rename(a->tmp, a->path) != 0)
        e = errno;
    if (e) {
        unlink(a->tmp);
        int rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot write %s: %s", a->path, strerror(e));
        atomic_reset(a);
        return rc;
    }
    sync_dir(a->path);
    atomic_reset(a);
    return DCM_OK;
}

void io_atomic_abort(io_atomic *a)
{
    if (a->fp)
        fclose(a->fp);
    a->fp = NULL;
    if (a->tmp)
        unlink(a->tmp);
    atomic_reset(a);
}
