/* io_atomic.h — write files atomically (all or nothing, alone or as a
 * group) and open input files that must be regular files.
 *
 * Contract
 * - io_atomic_open(&a, path) refuses a PATH that exists and is not a
 *   regular file (a FIFO, a device such as /dev/null, a folder): such a
 *   target is never replaced. Otherwise it opens an unnamed file in PATH's
 *   directory (O_TMPFILE: nothing is visible, so a process killed while
 *   writing leaves nothing behind), or, where the file system has no
 *   O_TMPFILE, PATH.tmp.XXXXXX (random suffix, O_EXCL). Mode 0666 less
 *   the umask. Write through a.fp.
 * - io_atomic_commit() flushes and fsyncs, then puts the file in place:
 *   a new PATH is linked in directly; an existing PATH is replaced by a
 *   rename of PATH.tmp.XXXXXX. SIGINT, SIGTERM, SIGHUP and SIGQUIT are
 *   blocked in the calling thread across link and rename, so a signal
 *   cannot leave that name behind. On any failure PATH is left as it was
 *   and no temporary file remains.
 * - io_atomic_commit_all(a, n) does the same for n files forming one
 *   result: all are written and synced first; then all are put in place;
 *   if one fails, those already replaced are restored from hard-link
 *   backups (new ones are removed), so either all n are replaced or none.
 *   Nothing already in place is deleted on failure.
 * - io_atomic_abort() closes and removes the temporary file. Both are
 *   no-ops on an unopened (zeroed) io_atomic.
 * - io_atomic_reopen_path(&a): a path by which a writer that needs a
 *   file name (matio) can open the same temporary file.
 * - io_input_open(path, what): the input opened for reading, only when it
 *   is a regular file; opened with O_NONBLOCK first so that a FIFO cannot
 *   block, then checked with fstat (no race). DCM_ERR_INPUT otherwise,
 *   with a message naming what the file is. io_input_check: the same
 *   check for readers that open by name.
 * - No global state: any number of writers may run in parallel threads.
 */
#ifndef IO_ATOMIC_H
#define IO_ATOMIC_H

#include <stdio.h>

#include "models/model_problem.h"

typedef struct {
    FILE *fp;      /* write here between open and commit/abort */
    char *path;    /* final path */
    char *tmp;     /* named temporary path, or NULL while unnamed */
    int unnamed;   /* 1: an O_TMPFILE file, reachable as reopen */
    char reopen[40];
} io_atomic;

/* DCM_OK, or DCM_ERR_SYSTEM when PATH is not a regular file or the
 * temporary file cannot be created (e.g. the directory does not exist). */
int io_atomic_open(io_atomic *a, const char *path, dcm_error *err);
/* DCM_OK, or DCM_ERR_SYSTEM when writing, syncing or renaming failed. */
int io_atomic_commit(io_atomic *a, dcm_error *err);
/* All n or none (see above); every a[i] is closed afterwards. */
int io_atomic_commit_all(io_atomic *a, int n, dcm_error *err);
void io_atomic_abort(io_atomic *a);
const char *io_atomic_reopen_path(const io_atomic *a);

/* "a FIFO", "a folder", "a character device", ... for st_mode. */
const char *io_file_kind(unsigned mode);

/* The input file opened for reading, or NULL with err set. `what` names
 * it in messages ("spec", "table"); may be NULL. */
FILE *io_input_open(const char *path, const char *what, dcm_error *err);
int io_input_check(const char *path, const char *what, dcm_error *err);
/* Move f past a UTF-8 byte order mark (EF BB BF) at its start, if any
 * (editors on Windows write one; JSON readers would stop at it). */
void io_skip_bom(FILE *f);
/* 1 when paths a and b name the same file: the same inode when both
 * exist, else the same name in the same folder (a file about to be
 * created); 0 otherwise. */
int io_same_target(const char *a, const char *b);

#endif
