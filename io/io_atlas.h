/* io_atlas.h — an integer atlas (label image) on another image's grid, and
 * the BIDS-style table that names its labels (for `dcm extract
 * --all-labels`, io_extract.h).
 *
 * Contract
 * - Labels are the atlas's whole-number values other than 0 (0, NaN and
 *   Inf are background). A value more than 1e-3 from a whole number, or
 *   beyond +-2^31, is an error naming the voxel: --all-labels needs a
 *   label image, not a probabilistic or resliced-with-interpolation one.
 * - io_atlas_sample puts the atlas on a target grid: the same values when
 *   both share dimensions and affine (io_nifti_same_grid), else, for each
 *   target voxel, the atlas voxel nearest to its centre through the two
 *   affines (sform preferred, then qform: io_nifti's `affine`),
 *   target ijk -> mm -> atlas ijk, rounded half up (a centre exactly
 *   between two atlas voxels takes the higher index; a 1e-6 voxel
 *   tolerance keeps rounding noise of the affines from deciding). Target
 *   voxels whose centre falls outside the atlas are background.
 * - The labels table (BIDS dseg.tsv): tab-separated with a header holding
 *   "index" and "name" (other columns ignored); indices whole numbers,
 *   unique, not 0; names unique, usable as region names
 *   (dcm_name_problem) and without commas. Errors name the file and line.
 * - No global state.
 */
#ifndef IO_ATLAS_H
#define IO_ATLAS_H

#include "io/io_nifti.h"

typedef struct {
    int count;
    long *index;     /* ascending */
    char **name;     /* count */
    int *line;       /* the table's line of each label */
} io_atlas_names;

int io_atlas_names_read(const char *path, io_atlas_names *t, dcm_error *err);
void io_atlas_names_free(io_atlas_names *t);
/* The table's name of label, or NULL. */
const char *io_atlas_names_find(const io_atlas_names *t, long label);

/* The distinct labels of the atlas on its own grid, ascending (*labels
 * allocated; *count may be 0). Checks every value (see above). */
int io_atlas_labels(const io_nifti *atlas, long **labels, int *count, dcm_error *err);

/* lab (grid->nvox3): the atlas's label at each voxel of grid (0: none);
 * *resampled = 1 when the grids differ. */
int io_atlas_sample(const io_nifti *atlas, const io_nifti *grid, long *lab, int *resampled,
                    dcm_error *err);

#endif
