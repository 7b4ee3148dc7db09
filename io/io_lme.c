/* io_lme.c — log-evidence tables (see io_lme.h). */
#include "io/io_lme.h"

#include <stdlib.h>
#include <string.h>

#include "io/io_tsv.h"

void io_lme_free(io_lme_table *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->nsub && t->subjects; i++)
        free(t->subjects[i]);
    for (int k = 0; k < t->nmod && t->models; k++)
        free(t->models[k]);
    free(t->subjects);
    free(t->models);
    free(t->lme);
    memset(t, 0, sizeof *t);
}

int io_lme_read(const char *path, io_lme_table *t, dcm_error *err)
{
    memset(t, 0, sizeof *t);
    io_text_table tt;
    int rc = io_text_read(path, &tt, err);
    if (rc)
        return rc;
    if (tt.rows < 2 || tt.cols < 2 || strcmp(tt.cells[0], "subject") != 0) {
        rc = dcm_error_set(err, DCM_ERR_INPUT,
                           "%s: a log-evidence table needs a header 'subject<TAB>MODEL1<TAB>MODEL2...' "
                           "and one row per subject", path);
        goto done;
    }
    t->nsub = tt.rows - 1;
    t->nmod = tt.cols - 1;
    t->subjects = calloc((size_t)t->nsub, sizeof(char *));
    t->models = calloc((size_t)t->nmod, sizeof(char *));
    t->lme = malloc(sizeof(double) * (size_t)t->nsub * t->nmod);
    if (!t->subjects || !t->models || !t->lme) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < t->nmod; k++) {
        const char *name = tt.cells[1 + k];
        for (int j = 0; j < k; j++)
            if (!strcmp(name, t->models[j])) {
                rc = dcm_error_set(err, DCM_ERR_INPUT, "%s, line %d: model '%s' appears twice in the header",
                                   path, tt.line[0], name);
                goto done;
            }
        if (!(t->models[k] = strdup(name))) {
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
    }
    for (int i = 0; i < t->nsub; i++) {
        const char *const *row = (const char *const *)tt.cells + (size_t)(i + 1) * tt.cols;
        for (int j = 0; j < i; j++)
            if (!strcmp(row[0], t->subjects[j])) {
                rc = dcm_error_set(err, DCM_ERR_INPUT, "%s, line %d: subject '%s' appears twice",
                                   path, tt.line[i + 1], row[0]);
                goto done;
            }
        if (!(t->subjects[i] = strdup(row[0]))) {
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
        for (int k = 0; k < t->nmod; k++) {
            double x;
            int pr = io_parse_number(row[1 + k], &x);
            if (pr) {
                rc = dcm_error_set(err, DCM_ERR_INPUT,
                                   "%s, line %d, column %d (\"%s\"): '%s' is %s; every log-evidence must "
                                   "be a finite number", path, tt.line[i + 1], k + 2, t->models[k],
                                   row[1 + k], pr == 2 ? "not finite" : "not a number");
                goto done;
            }
            t->lme[(size_t)i * t->nmod + k] = x;
        }
    }
done:
    io_text_free(&tt);
    if (rc)
        io_lme_free(t);
    return rc;
}
