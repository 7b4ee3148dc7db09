/* io_batchdir.c — scan OUTDIR/<subject>/<model>.json (see io_batchdir.h). */
#include "io/io_batchdir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/io_tsv.h"

void io_batchdir_free(io_batchdir *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->nsub && b->subjects; i++)
        free(b->subjects[i]);
    for (int k = 0; k < b->nmod && b->models; k++)
        free(b->models[k]);
    free(b->subjects);
    free(b->models);
    free(b->has);
    free(b->dir);
    memset(b, 0, sizeof *b);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *join(const char *a, const char *b, const char *c)
{
    size_t l = strlen(a) + strlen(b) + strlen(c) + 2;
    char *p = malloc(l);
    if (p)
        snprintf(p, l, "%s/%s%s", a, b, c);
    return p;
}

/* append s to a growing list unless present; returns its index */
static int add_unique(char ***list, int *n, int *cap, const char *s)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp((*list)[i], s))
            return i;
    if (*n == *cap) {
        int nc = *cap ? 2 * *cap : 16;
        char **l = realloc(*list, sizeof(char *) * (size_t)nc);
        if (!l)
            return -1;
        *list = l;
        *cap = nc;
    }
    (*list)[*n] = strdup(s);
    if (!(*list)[*n])
        return -1;
    return (*n)++;
}

int io_batchdir_scan(const char *outdir, io_batchdir *b, dcm_error *err)
{
    memset(b, 0, sizeof *b);
    DIR *d = opendir(outdir);
    if (!d)
        return dcm_error_set(err, DCM_ERR_INPUT, "cannot open results folder %s: %s", outdir, strerror(errno));
    int capS = 0, capM = 0;
    struct dirent *e;
    char *path = NULL;
    if (!(b->dir = strdup(outdir)))
        goto nomem;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        free(path);
        if (!(path = join(outdir, e->d_name, "")))
            goto nomem;
        if (!is_dir(path))
            continue;
        if (add_unique(&b->subjects, &b->nsub, &capS, e->d_name) < 0)
            goto nomem;
    }
    closedir(d);
    d = NULL;
    if (b->nsub)
        qsort(b->subjects, (size_t)b->nsub, sizeof(char *), cmp_str);
    /* models: the summary's order when there is one */
    free(path);
    if (!(path = join(outdir, "summary.tsv", "")))
        goto nomem;
    io_text_table t;
    dcm_error ignore;
    if (io_text_read(path, &t, &ignore) == 0) {
        for (int c = 1; c < t.cols && t.rows > 0; c++)
            if (add_unique(&b->models, &b->nmod, &capM, t.cells[c]) < 0) {
                io_text_free(&t);
                goto nomem;
            }
        io_text_free(&t);
    }
    int first_extra = b->nmod;
    for (int i = 0; i < b->nsub; i++) {
        free(path);
        if (!(path = join(outdir, b->subjects[i], "")))
            goto nomem;
        DIR *sd = opendir(path);
        if (!sd)
            continue;
        while ((e = readdir(sd))) {
            size_t l = strlen(e->d_name);
            if (e->d_name[0] == '.' || l <= 5 || strcmp(e->d_name + l - 5, ".json"))
                continue;
            char *name = strndup(e->d_name, l - 5);
            if (!name || add_unique(&b->models, &b->nmod, &capM, name) < 0) {
                free(name);
                closedir(sd);
                goto nomem;
            }
            free(name);
        }
        closedir(sd);
    }
    free(path);
    path = NULL;
    if (b->nmod > first_extra)
        qsort(b->models + first_extra, (size_t)(b->nmod - first_extra), sizeof(char *), cmp_str);
    b->has = calloc((size_t)(b->nsub ? b->nsub : 1) * (b->nmod ? b->nmod : 1), 1);
    if (!b->has)
        goto nomem;
    for (int i = 0; i < b->nsub; i++)
        for (int k = 0; k < b->nmod; k++) {
            char *p = io_batchdir_path(b, i, k);
            if (!p)
                goto nomem;
            struct stat st;
            b->has[i * b->nmod + k] = stat(p, &st) == 0 && S_ISREG(st.st_mode);
            free(p);
        }
    if (!b->nsub) {
        io_batchdir_free(b);
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s holds no subject folders (expected OUTDIR/<subject>/<model>.json, "
                             "as dcm batch writes)", outdir);
    }
    return DCM_OK;
nomem:
    free(path);
    if (d)
        closedir(d);
    io_batchdir_free(b);
    return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
}

char *io_batchdir_path(const io_batchdir *b, int subject, int model)
{
    size_t l = strlen(b->dir) + strlen(b->subjects[subject]) + strlen(b->models[model]) + 8;
    char *p = malloc(l);
    if (p)
        snprintf(p, l, "%s/%s/%s.json", b->dir, b->subjects[subject], b->models[model]);
    return p;
}

int io_batchdir_model(const io_batchdir *b, const char *name)
{
    for (int k = 0; k < b->nmod; k++)
        if (!strcmp(b->models[k], name))
            return k;
    return -1;
}

char *io_batchdir_model_list(const io_batchdir *b)
{
    size_t len = 8;
    for (int k = 0; k < b->nmod; k++)
        len += strlen(b->models[k]) + 2;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    *p = 0;
    for (int k = 0; k < b->nmod; k++)
        p += sprintf(p, "%s%s", k ? ", " : "", b->models[k]);
    if (!b->nmod)
        strcpy(s, "(none)");
    return s;
}

int io_batchdir_subject(const io_batchdir *b, const char *name)
{
    for (int i = 0; i < b->nsub; i++)
        if (!strcmp(b->subjects[i], name))
            return i;
    return -1;
}
