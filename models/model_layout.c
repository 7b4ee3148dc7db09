/* model_layout.c — the table of parameter blocks (see model_layout.h). */
#include "models/model_layout.h"

#include <limits.h>
#include <string.h>

/* The one description of the blocks: name, spec switch, whether only some
 * models have it, and what indexes rows, columns and slices. Shapes follow
 * from the axes (a region axis runs over n, an input axis over m, the D
 * slices over nd). Units for one- and two-state neurons (MANUAL 5.4). */
static const struct {
    const char *name, *spec;
    int optional;
    model_layout_axis row, col, slice;
    const char *unit1, *unit2;
} BLOCKS[MODEL_BLOCK_COUNT] = {
    [MODEL_BLOCK_A] = {"A", "a", 0, MODEL_AXIS_REGION, MODEL_AXIS_REGION, MODEL_AXIS_NONE,
                       "Hz (self-connections: log-scale)", "log-scale"},
    [MODEL_BLOCK_B] = {"B", "b", 0, MODEL_AXIS_REGION, MODEL_AXIS_REGION, MODEL_AXIS_INPUT,
                       "Hz per unit input (diagonal: log-scale)", "log-scale"},
    [MODEL_BLOCK_C] = {"C", "c", 0, MODEL_AXIS_REGION, MODEL_AXIS_INPUT, MODEL_AXIS_NONE,
                       "Hz x 16 per unit input", "Hz x 16 per unit input"},
    [MODEL_BLOCK_D] = {"D", "d", 1, MODEL_AXIS_REGION, MODEL_AXIS_REGION, MODEL_AXIS_REGION,
                       "Hz per unit activity (diagonal: log-scale)", "log-scale"},
    [MODEL_BLOCK_TRANSIT] = {"transit", NULL, 0, MODEL_AXIS_REGION, MODEL_AXIS_NONE, MODEL_AXIS_NONE,
                             "log-scale", "log-scale"},
    [MODEL_BLOCK_DECAY] = {"decay", NULL, 0, MODEL_AXIS_NONE, MODEL_AXIS_NONE, MODEL_AXIS_NONE,
                           "log-scale", "log-scale"},
    [MODEL_BLOCK_EPSILON] = {"epsilon", NULL, 0, MODEL_AXIS_NONE, MODEL_AXIS_NONE, MODEL_AXIS_NONE,
                             "log-scale", "log-scale"},
};

static long long axis_len(model_layout_axis a, long long n, long long m)
{
    return a == MODEL_AXIS_REGION ? n : a == MODEL_AXIS_INPUT ? m : 1;
}

/* Shape of block b; the slices of an optional block are 0 when absent. */
static void shape(int b, long long n, long long m, int nonlinear, long long s[3])
{
    s[0] = axis_len(BLOCKS[b].row, n, m);
    s[1] = axis_len(BLOCKS[b].col, n, m);
    s[2] = axis_len(BLOCKS[b].slice, n, m);
    if (BLOCKS[b].optional && !nonlinear)
        s[2] = 0;
}

long long model_layout_count(int n, int m, int nonlinear)
{
    if (n < 0 || m < 0)
        return -1;
    long long total = 0;
    for (int b = 0; b < MODEL_BLOCK_COUNT; b++) {
        long long s[3];
        shape(b, n, m, nonlinear, s);
        /* n, m < 2^31: rows*cols < 2^62, then one more factor may overflow */
        long long rc = s[0] * s[1];
        if (s[2] && rc > LLONG_MAX / s[2])
            return -1;
        rc *= s[2];
        if (rc > LLONG_MAX - total)
            return -1;
        total += rc;
    }
    return total;
}

int model_layout_init(model_layout *T, int n, int m, int nonlinear, int two_state)
{
    memset(T, 0, sizeof *T);
    long long total = model_layout_count(n, m, nonlinear);
    T->n = n;
    T->m = m;
    T->nd = nonlinear ? n : 0;
    T->two_state = two_state ? 1 : 0;
    if (total < 0 || total > INT_MAX) {
        T->np = -1;
        return -1;
    }
    int off = 0;
    for (int b = 0; b < MODEL_BLOCK_COUNT; b++) {
        long long s[3];
        shape(b, n, m, nonlinear, s);
        model_layout_block *B = &T->block[b];
        B->name = BLOCKS[b].name;
        B->unit = two_state ? BLOCKS[b].unit2 : BLOCKS[b].unit1;
        B->spec = BLOCKS[b].spec;
        B->optional = BLOCKS[b].optional;
        B->rows = (int)s[0];
        B->cols = (int)s[1];
        B->slices = (int)s[2];
        B->row_axis = BLOCKS[b].row;
        B->col_axis = BLOCKS[b].col;
        B->slice_axis = BLOCKS[b].slice;
        B->offset = off;
        B->count = (int)(s[0] * s[1] * s[2]);
        off += B->count;
    }
    T->nblocks = MODEL_BLOCK_COUNT;
    T->np = off;
    return 0;
}

/* The spectral blocks after the task ones: name, unit, what indexes the
 * rows, and how many there are (0: one per region). */
static const struct {
    const char *name, *unit;
    model_layout_axis row;
    int rows;
} CSD_BLOCKS[MODEL_BLOCK_MAX - MODEL_BLOCK_COUNT] = {
    {"a", "log-scale (amplitude, exponent)", MODEL_AXIS_INDEX, 2},
    {"b", "log-scale (amplitude, exponent)", MODEL_AXIS_INDEX, 2},
    {"c", "log-scale (amplitude)", MODEL_AXIS_REGION, 0},
};

long long model_layout_count_csd(int n)
{
    if (n < 1 || n > 46000)   /* n^2 stays well inside an int */
        return -1;
    return (long long)n * n + 3LL * n + 6;
}

int model_layout_init_csd(model_layout *T, int n)
{
    /* SPM's spm_dcm_fmri_csd: one dummy input whose C column is fixed at
       0, no B (n x n x 0) and no D; C is kept as n values */
    if (model_layout_count_csd(n) < 0 || model_layout_init(T, n, 1, 0, 0)) {
        memset(T, 0, sizeof *T);
        T->np = -1;
        return -1;
    }
    T->m = 0;
    T->csd = 1;
    model_layout_block *B = &T->block[MODEL_BLOCK_B];
    B->slices = 0;
    B->count = 0;
    model_layout_block *C = &T->block[MODEL_BLOCK_C];
    C->col_axis = MODEL_AXIS_NONE;
    C->unit = "fixed at 0 (no inputs)";
    int off = 0;
    for (int b = 0; b < MODEL_BLOCK_COUNT; b++) {
        T->block[b].offset = off;
        off += T->block[b].count;
    }
    for (int b = MODEL_BLOCK_COUNT; b < MODEL_BLOCK_MAX; b++) {
        const int q = b - MODEL_BLOCK_COUNT;
        model_layout_block *X = &T->block[b];
        memset(X, 0, sizeof *X);
        X->name = CSD_BLOCKS[q].name;
        X->unit = CSD_BLOCKS[q].unit;
        X->row_axis = CSD_BLOCKS[q].row;
        X->rows = CSD_BLOCKS[q].rows ? CSD_BLOCKS[q].rows : n;
        X->cols = X->slices = 1;
        X->offset = off;
        X->count = X->rows;
        off += X->count;
    }
    T->nblocks = MODEL_BLOCK_MAX;
    T->np = off;
    return 0;
}

int model_layout_init_rdcm(model_layout *T, int n, int m)
{
    if (n < 1 || m < 0 || model_layout_init(T, n, m, 0, 0)) {
        memset(T, 0, sizeof *T);
        T->np = -1;
        return -1;
    }
    T->rdcm = 1;
    int off = 0;
    for (int b = 0; b < MODEL_BLOCK_COUNT; b++) {
        model_layout_block *B = &T->block[b];
        if (b != MODEL_BLOCK_A && b != MODEL_BLOCK_C)
            B->count = 0, B->slices = 0;   /* no B, D, haemodynamics: empty */
        B->offset = off;
        off += B->count;
    }
    T->block[MODEL_BLOCK_A].unit = "Hz";
    T->block[MODEL_BLOCK_C].unit = "TAPAS units (x 16 for empirical data)";
    T->np = off;
    return 0;
}

const model_layout_block *model_layout_find(const model_layout *T, const char *name)
{
    for (int b = 0; b < T->nblocks; b++)
        if (T->block[b].name && !strcmp(T->block[b].name, name))
            return &T->block[b];
    return NULL;
}

int model_layout_locate(const model_layout *T, int p, int *i, int *j, int *k)
{
    if (p < 0 || p >= T->np)
        return -1;
    for (int b = 0; b < T->nblocks; b++) {
        const model_layout_block *B = &T->block[b];
        if (p >= B->offset + B->count)
            continue;
        int r = p - B->offset;
        if (i)
            *i = r % B->rows;
        if (j)
            *j = (r / B->rows) % B->cols;
        if (k)
            *k = r / (B->rows * B->cols);
        return b;
    }
    return -1;
}

int model_layout_axis_size(const model_layout *T, model_layout_axis a)
{
    return a == MODEL_AXIS_REGION ? T->n : a == MODEL_AXIS_INPUT ? T->m : 1;
}
