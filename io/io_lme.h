/* io_lme.h — log-evidence tables: `subject` then one column per model,
 * one row per subject (what `dcm batch` writes as summary.tsv).
 *
 * Contract
 * - io_lme_read parses the table (tab- or comma-separated, header
 *   required, first column named "subject"); every cell must be a finite
 *   number, rows must not be ragged, subjects and models must be unique.
 *   Errors name the file, line and column.
 * - lme is nsub x nmod, row-major.
 */
#ifndef IO_LME_H
#define IO_LME_H

#include "models/model_problem.h"

typedef struct {
    int nsub, nmod;
    char **subjects;   /* nsub */
    char **models;     /* nmod */
    double *lme;       /* nsub x nmod, row-major */
} io_lme_table;

int io_lme_read(const char *path, io_lme_table *t, dcm_error *err);
void io_lme_free(io_lme_table *t);

#endif
