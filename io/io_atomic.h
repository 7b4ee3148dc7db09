/* io_atomic.h — write a file atomically: all or nothing.
 *
 * Contract
 * - io_atomic_open(&a, path) creates PATH.tmp.XXXXXX (random suffix,
 *   O_EXCL, mode 0666 less the umask) in the same directory as PATH and
 *   opens it for writing as a.fp.
 * - io_atomic_commit() flushes, fsyncs and closes the temporary file and
 *   renames it over PATH; on any failure it removes the temporary file and
 *   PATH is left as it was.
 * - io_atomic_abort() closes and removes the temporary file (use it when
 *   the writer fails half-way). Both are no-ops on an unopened io_atomic.
 * - No global state: any number of writers may run in parallel.
 */
#ifndef IO_ATOMIC_H
#define IO_ATOMIC_H

#include <stdio.h>

#include "dcm/dcm_api.h"

typedef struct {
    FILE *fp;      /* write here between open and commit/abort */
    char *path;    /* final path */
    char *tmp;     /* temporary path */
} io_atomic;

/* DCM_OK, or DCM_ERR_SYSTEM when the temporary file cannot be created
 * (e.g. the directory does not exist). */
int io_atomic_open(io_atomic *a, const char *path, dcm_error *err);
/* DCM_OK, or DCM_ERR_SYSTEM when writing, syncing or renaming failed. */
int io_atomic_commit(io_atomic *a, dcm_error *err);
void io_atomic_abort(io_atomic *a);

#endif
