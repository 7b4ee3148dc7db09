/* io_atlas.c — label images on another grid, and their names (io_atlas.h). */
#include "io/io_atlas.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_tsv.h"

/* further than this from a whole number: not a label */
#define IO_ATLAS_INTEGER_TOL 1e-3
/* voxels: keeps rounding noise of the affines from deciding a tie */
#define IO_ATLAS_TIE_TOL 1e-6

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* The label of one stored value (0 for background); -1 when not a label. */
static int label_of(double x, long *out)
{
    if (!isfinite(x) || x == 0.0) {
        *out = 0;
        return 0;
    }
    double r = nearbyint(x);
    if (fabs(x - r) > IO_ATLAS_INTEGER_TOL || fabs(r) > 2147483647.0)
        return -1;
    *out = (long)r;
    return 0;
}

static int not_a_label(const io_nifti *a, size_t vox, double x, dcm_error *err)
{
    size_t nx = (size_t)a->nx, ny = (size_t)a->ny;
    return dcm_error_set(err, DCM_ERR_INPUT, "%s: voxel (%zu, %zu, %zu) holds %g, not a whole-number "
                         "label; --all-labels needs an integer label image (threshold a "
                         "probabilistic atlas, reslice with nearest neighbour)", a->path, vox % nx,
                         (vox / nx) % ny, vox / (nx * ny), x);
}

int io_atlas_labels(const io_nifti *atlas, long **labels, int *count, dcm_error *err)
{
    *labels = NULL;
    *count = 0;
    size_t n = 0;
    long *all = malloc(sizeof(long) * (atlas->nvox3 ? atlas->nvox3 : 1));
    if (!all)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    for (size_t vox = 0; vox < atlas->nvox3; vox++) {
        double x = io_nifti_value(atlas, vox, 0);
        long l;
        if (label_of(x, &l)) {
            free(all);
            return not_a_label(atlas, vox, x, err);
        }
        if (l)
            all[n++] = l;
    }
    qsort(all, n, sizeof(long), cmp_long);
    size_t u = 0;
    for (size_t k = 0; k < n; k++)
        if (u == 0 || all[k] != all[u - 1])
            all[u++] = all[k];
    *labels = all;
    *count = (int)u;
    return DCM_OK;
}

int io_atlas_sample(const io_nifti *atlas, const io_nifti *grid, long *lab, int *resampled,
                    dcm_error *err)
{
    char why[512];
    *resampled = !io_nifti_same_grid(grid, atlas, why, sizeof why);
    if (!*resampled) {
        for (size_t vox = 0; vox < grid->nvox3; vox++) {
            double x = io_nifti_value(atlas, vox, 0);
            if (label_of(x, &lab[vox]))
                return not_a_label(atlas, vox, x, err);
        }
        return DCM_OK;
    }
    /* grid ijk -> atlas ijk is affine: its origin and the steps along the
       three grid axes, each mapped once */
    double o[3], step[3][3], mm[3];
    io_nifti_vox2mm(grid, 0, 0, 0, mm);
    if (io_nifti_mm2vox(atlas, mm, o))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: the atlas's %s is singular", atlas->path,
                             atlas->affine_source);
    for (int a = 0; a < 3; a++) {
        double e[3] = {a == 0, a == 1, a == 2}, p[3];
        io_nifti_vox2mm(grid, e[0], e[1], e[2], mm);
        io_nifti_mm2vox(atlas, mm, p);
        for (int b = 0; b < 3; b++)
            step[a][b] = p[b] - o[b];
    }
    const int dim[3] = {atlas->nx, atlas->ny, atlas->nz};
    size_t vox = 0;
    for (int k = 0; k < grid->nz; k++)
        for (int j = 0; j < grid->ny; j++)
            for (int i = 0; i < grid->nx; i++, vox++) {
                long idx[3];
                int inside = 1;
                for (int b = 0; b < 3 && inside; b++) {
                    double c = o[b] + i * step[0][b] + j * step[1][b] + k * step[2][b];
                    idx[b] = (long)floor(c + 0.5 + IO_ATLAS_TIE_TOL);
                    inside = idx[b] >= 0 && idx[b] < dim[b];
                }
                lab[vox] = 0;
                if (!inside)
                    continue;
                size_t av = (size_t)idx[0] + (size_t)dim[0] * ((size_t)idx[1] + (size_t)dim[1] * (size_t)idx[2]);
                double x = io_nifti_value(atlas, av, 0);
                if (label_of(x, &lab[vox]))
                    return not_a_label(atlas, av, x, err);
            }
    return DCM_OK;
}

void io_atlas_names_free(io_atlas_names *t)
{
    if (!t)
        return;
    for (int k = 0; k < t->count; k++)
        free(t->name[k]);
    free(t->name);
    free(t->index);
    free(t->line);
    memset(t, 0, sizeof *t);
}

const char *io_atlas_names_find(const io_atlas_names *t, long label)
{
    int lo = 0, hi = t->count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (t->index[mid] == label)
            return t->name[mid];
        if (t->index[mid] < label)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

typedef struct {
    long index;
    int row;
} names_row;

static int cmp_row(const void *a, const void *b)
{
    const names_row *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

int io_atlas_names_read(const char *path, io_atlas_names *t, dcm_error *err)
{
    memset(t, 0, sizeof *t);
    io_text_table tab;
    int rc = io_text_read(path, &tab, err);
    if (rc)
        return rc;
    names_row *rows = NULL;
    int ci = -1, cn = -1;
    for (int c = 0; c < tab.cols && tab.rows > 0; c++) {
        if (!strcmp(tab.cells[c], "index"))
            ci = c;
        else if (!strcmp(tab.cells[c], "name"))
            cn = c;
    }
    if (ci < 0 || cn < 0) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: the labels table needs a header with the columns "
                           "\"index\" and \"name\" (a BIDS dseg.tsv), e.g. \"index<TAB>name\"", path);
        goto done;
    }
    int n = tab.rows - 1;
    if (n < 1) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: the labels table lists no label", path);
        goto done;
    }
    rows = malloc(sizeof(names_row) * (size_t)n);
    t->index = malloc(sizeof(long) * (size_t)n);
    t->name = calloc((size_t)n, sizeof(char *));
    t->line = malloc(sizeof(int) * (size_t)n);
    if (!rows || !t->index || !t->name || !t->line) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    for (int r = 1; r <= n; r++) {
        const char *cell = tab.cells[(size_t)r * tab.cols + ci];
        double x;
        if (io_parse_number(cell, &x) || x != nearbyint(x) || fabs(x) > 2147483647.0 || x == 0) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s, line %d: index \"%s\" must be a whole "
                               "number other than 0 (0 is the background)", path, tab.line[r], cell);
            goto done;
        }
        const char *name = tab.cells[(size_t)r * tab.cols + cn];
        const char *why = strchr(name, ',') ? "names here may not hold commas" : dcm_name_problem(name);
        if (!name[0])
            why = "the name is empty";
        if (why) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s, line %d: name \"%s\" cannot be a region "
                               "name: %s", path, tab.line[r], name, why);
            goto done;
        }
        rows[r - 1].index = (long)x;
        rows[r - 1].row = r;
    }
    qsort(rows, (size_t)n, sizeof(names_row), cmp_row);
    for (int k = 0; k < n; k++) {
        int r = rows[k].row;
        if (k && rows[k].index == rows[k - 1].index) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s, lines %d and %d: index %ld is listed twice",
                               path, tab.line[rows[k - 1].row], tab.line[r], rows[k].index);
            goto done;
        }
        t->index[k] = rows[k].index;
        t->line[k] = tab.line[r];
        t->name[k] = strdup(tab.cells[(size_t)r * tab.cols + cn]);
        t->count = k + 1;
        if (!t->name[k]) {
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
    }
    /* names become column headers and region names: no two alike */
    for (int a = 0; a < n && !rc; a++)
        for (int b = a + 1; b < n; b++)
            if (!strcmp(t->name[a], t->name[b])) {
                rc = dcm_error_set(err, DCM_ERR_INPUT, "%s, lines %d and %d: the name \"%s\" is "
                                   "given to two labels (%ld and %ld)", path, t->line[a], t->line[b],
                                   t->name[a], t->index[a], t->index[b]);
                break;
            }
done:
    free(rows);
    io_text_free(&tab);
    if (rc)
        io_atlas_names_free(t);
    return rc;
}
