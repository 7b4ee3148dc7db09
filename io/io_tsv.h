/* io_tsv.h — tab- or comma-separated tables.
 *
 * Contract
 * - The delimiter is found on the first non-blank line: a tab if it has
 *   one, else a comma if it has one, else the file has a single column.
 *   Blank lines are skipped; cells are trimmed of surrounding blanks (and
 *   one pair of double quotes); every row must have as many cells as the
 *   first.
 * - Numeric tables (io_tsv_read) have an optional header: a first row made
 *   only of names is the header, a first row made only of numbers is data,
 *   a mix is an error. Every data cell must be a finite number: "nan",
 *   "inf", empty cells and overflow are rejected.
 * - Every error is DCM_ERR_INPUT (DCM_ERR_SYSTEM for out of memory) with a
 *   message "FILE, line L, column C (\"name\"): what is wrong".
 * - A path ending in ".gz" is read through zlib (gzip-compressed TSV, as
 *   BIDS allows); decompressed size is limited to 2 GiB.
 * - io_tsv_write writes atomically (io_atomic.h) with full precision.
 */
#ifndef IO_TSV_H
#define IO_TSV_H

#include "models/model_problem.h"

/* Cells as text. */
typedef struct {
    int rows, cols;
    char **cells;   /* rows x cols, row-major: cells[r*cols + c] */
    int *line;      /* 1-based line in the file of each row */
    char delim;     /* '\t' or ',' */
} io_text_table;

int io_text_read(const char *path, io_text_table *t, dcm_error *err);
void io_text_free(io_text_table *t);

/* Numbers with optional column names. */
typedef struct {
    int rows, cols;  /* data rows (header excluded), columns */
    double *data;    /* rows x cols, column-major: data[r + c*rows] */
    char **names;    /* cols header names, or NULL when there is no header */
    int *line;       /* 1-based line in the file of each data row */
} io_table;

int io_tsv_read(const char *path, io_table *t, dcm_error *err);
void io_table_free(io_table *t);
/* Index of the column called name, or -1 (also when there is no header). */
int io_table_find(const io_table *t, const char *name);

/* Parse one cell: 0 = a finite number in *x, 1 = not a number,
 * 2 = a number that is not finite (nan, inf, overflow). */
int io_parse_number(const char *s, double *x);

/* Write rows x cols (column-major) with an optional header (names may be
 * NULL), tab-separated, "%.17g", atomically. */
int io_tsv_write(const char *path, int rows, int cols, const double *data,
                 const char *const *names, dcm_error *err);

#endif
