/* io_batchdir.h — the layout `dcm batch` writes: OUTDIR/<subject>/<model>.json.
 *
 * Contract
 * - io_batchdir_scan lists the subject folders of OUTDIR (sorted by name)
 *   and, for each, which model results exist. Models are listed in the
 *   order of OUTDIR/summary.tsv's header when it exists, otherwise sorted.
 * - io_batchdir_path gives the path of one result (caller frees).
 * - Nothing is read but directory entries; results are loaded by the
 *   caller (io_result_load).
 */
#ifndef IO_BATCHDIR_H
#define IO_BATCHDIR_H

#include "models/model_problem.h"

typedef struct {
    char *dir;
    int nsub, nmod;
    char **subjects;        /* nsub */
    char **models;          /* nmod */
    unsigned char *has;     /* nsub x nmod, row-major: result file present */
} io_batchdir;

int io_batchdir_scan(const char *outdir, io_batchdir *b, dcm_error *err);
void io_batchdir_free(io_batchdir *b);
char *io_batchdir_path(const io_batchdir *b, int subject, int model);
/* Index of a model / subject by name, or -1. */
int io_batchdir_model(const io_batchdir *b, const char *name);
/* "m1, m2, ..." for messages (caller frees; NULL when out of memory). */
char *io_batchdir_model_list(const io_batchdir *b);
int io_batchdir_subject(const io_batchdir *b, const char *name);

#endif
