/* model_layout.h — the one owner of SPM's flat parameter layout.
 *
 * Contract
 * - A model_layout lists the parameter blocks of a DCM for fMRI in SPM's
 *   order (spm_vec of spm_dcm_fmri_priors' pE):
 *       A  n x n         endogenous coupling (row = target, column = source)
 *       B  n x n x m     modulation, one slice per input
 *       C  n x m         driving inputs (row = region, column = input)
 *       D  n x n x nd    gating, one slice per region (nd = n when
 *                        nonlinear, 0 when bilinear: present but empty)
 *       transit n, decay, epsilon   haemodynamics
 *   Every block is column-major: element (i, j, k) is at
 *   offset + i + j*rows + k*rows*cols; blocks are contiguous and their
 *   counts add up to np.
 * - Every block is always in the table (an empty one has count 0), so
 *   T->block[MODEL_BLOCK_D] is D whatever the model. Iterate with
 *   for (b = 0; b < MODEL_BLOCK_COUNT; b++).
 * - Each dimension says what indexes it (a region, an input, or nothing),
 *   which is all a name (io_pnames.h), a JSON block (io_result.h), a .mat
 *   field (io_mat.h) or a figure needs: adding a block means adding it to
 *   the enum here and to the table in model_layout.c.
 * - Two-state models have the same blocks and shapes as one-state ones
 *   (SPM12 spm_dcm_fmri_priors); they differ in units (every coupling a
 *   log scale factor) and priors (model_dcm_priors).
 * - Spectral DCM (SPM12 spm_dcm_fmri_csd, models/model_csd.h) has its own
 *   table, model_layout_init_csd: A n x n, B n x n x 0 (empty), C n (the
 *   dummy input's weights, fixed at 0), D n x n x 0, transit n, decay,
 *   epsilon, then "a" (2: log amplitude and exponent of the neuronal
 *   fluctuations), "b" (2: the same for the global observation noise) and
 *   "c" (n: regional noise log amplitude); np = n^2 + 3n + 6. Iterate
 *   every table with for (b = 0; b < T->nblocks; b++): a task table has
 *   nblocks = MODEL_BLOCK_COUNT, so what task results hold is unchanged.
 * - Pure functions of (n, m, nonlinear, two_state) on caller memory: no
 *   allocation, no global state.
 */
#ifndef MODEL_LAYOUT_H
#define MODEL_LAYOUT_H

enum {
    MODEL_BLOCK_A,
    MODEL_BLOCK_B,
    MODEL_BLOCK_C,
    MODEL_BLOCK_D,
    MODEL_BLOCK_TRANSIT,
    MODEL_BLOCK_DECAY,
    MODEL_BLOCK_EPSILON,
    MODEL_BLOCK_COUNT,                 /* the blocks of every model (task DCM) */
    /* spectral DCM (model_layout_init_csd) adds the fluctuation and noise
       spectra after them: */
    MODEL_BLOCK_CSD_A = MODEL_BLOCK_COUNT, /* "a": neuronal fluctuations, 2 */
    MODEL_BLOCK_CSD_B,                 /* "b": global observation noise, 2 */
    MODEL_BLOCK_CSD_C,                 /* "c": regional observation noise, n */
    MODEL_BLOCK_MAX
};

/* What indexes a dimension of a block: a region, an input, or a plain
 * 1-based position (named "a(1)", "a(2)": the spectral "a" and "b"). */
typedef enum {
    MODEL_AXIS_NONE = 0,
    MODEL_AXIS_REGION,
    MODEL_AXIS_INPUT,
    MODEL_AXIS_INDEX
} model_layout_axis;

typedef struct {
    const char *name;        /* "A", "B", "C", "D", "transit", "decay", "epsilon" */
    const char *unit;        /* "Hz", "log-scale", ... (MANUAL 5.4) */
    const char *spec;        /* the spec's switch field ("a".."d"), NULL when always on */
    int optional;            /* 1 when only some models have it (D: nonlinear ones) */
    int rows, cols, slices;  /* shape; 1 for a dimension the block lacks */
    model_layout_axis row_axis, col_axis, slice_axis;
    int offset, count;       /* in the flat vector; count = rows*cols*slices */
} model_layout_block;

typedef struct {
    int n, m, nd, two_state; /* regions, inputs, D slices (0 or n), two-state neurons */
    int csd;                 /* 1: spectral DCM (model_layout_init_csd) */
    int rdcm;                /* 1: regression DCM (model_layout_init_rdcm) */
    int nblocks;             /* blocks in the table: MODEL_BLOCK_COUNT, or
                                MODEL_BLOCK_MAX for spectral DCM */
    int np;                  /* parameters in all */
    model_layout_block block[MODEL_BLOCK_MAX];
} model_layout;

/* Fill T for n regions (>= 0), m inputs (>= 0). Returns 0, or -1 (T->np
 * then -1) when a size is negative or the count exceeds INT_MAX. */
int model_layout_init(model_layout *T, int n, int m, int nonlinear, int two_state);

/* The table of spectral DCM for n regions (>= 1); -1 as above. */
int model_layout_init_csd(model_layout *T, int n);
/* Its parameter count, n^2 + 3n + 6 (-1 when n < 1 or it overflows). */
long long model_layout_count_csd(int n);

/* The table of regression DCM (TAPAS rDCM) for n regions (>= 1), m inputs
 * (>= 0): A n x n, then C n x m; every other block empty (count 0), so
 * np = n^2 + n m and names are those of a task DCM (A:V1->V2, C:V1:u). */
int model_layout_init_rdcm(model_layout *T, int n, int m);

/* The exact parameter count in 64 bits (for loaders checking a file's
 * claims before allocating); -1 when a size is negative or it overflows. */
long long model_layout_count(int n, int m, int nonlinear);

/* The block called name, NULL when none. */
const model_layout_block *model_layout_find(const model_layout *T, const char *name);

/* Flat index of element (i, j, k) of block b (no range check). */
static inline int model_layout_index(const model_layout_block *b, int i, int j, int k)
{
    return b->offset + i + b->rows * (j + b->cols * k);
}

/* Block (MODEL_BLOCK_*) holding flat index p, with its element (i, j, k)
 * in *i, *j, *k (each may be NULL); -1 when p is out of range. */
int model_layout_locate(const model_layout *T, int p, int *i, int *j, int *k);

/* The number of things an axis runs over in T (n, m or 1; an index axis
 * has no fixed size: 1 here, the block's rows say how many). */
int model_layout_axis_size(const model_layout *T, model_layout_axis a);

#endif
