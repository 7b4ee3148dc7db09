/* io_extract.h — a region's time series from 4D images, as SPM's
 * spm_regions computes a VOI.
 *
 * Contract
 * - The region is a set of voxels of the BOLD grid: non-zero voxels of a
 *   binary mask, voxels of an atlas equal to a label, voxels whose centre
 *   lies within a sphere (centre in mm world coordinates through the
 *   sform, else the qform; radius in mm), or the intersection of a
 *   mask/atlas with a sphere. Mask and atlas must be on the BOLD grid
 *   (same dimensions and voxel-to-mm transform). Voxels whose time series
 *   holds a value that is not finite are left out (and counted).
 * - Adjustment: the voxel time series are regressed on the confound
 *   matrix X0 = [constant, DCT high-pass basis, chosen confound columns]
 *   and replaced by the residuals, as spm_regions does with SPM's filter
 *   and nuisance effects. The high-pass basis is SPM's spm_dctmtx(v, K)
 *   without its constant, K = fix(2 v TR / cutoff + 1) (cutoff 128 s by
 *   default), computed with FFTW's DCT-III (REDFT01).
 * - Refused (DCM_ERR_INPUT): more than 100000 volumes, or a confound
 *   matrix whose SVD would cost more than 2e9 (v x columns^2); a region whose
 *   voxels are all constant after the adjustment (residuals below 1e-10
 *   of the values: rounding noise); tied top eigenvalues (the
 *   eigenvariate is then not defined). Warned in `warning`: voxels left
 *   out for NaN/Inf, constant voxels among others.
 * - Summary: SPM's principal eigenvariate (spm_regions: the first
 *   eigenvector of the smaller Gram matrix, sign so that the voxel weights
 *   sum positive, scaled by sqrt(s1 / voxels)), or the mean over voxels.
 * - TR: the --tr value, else the BIDS sidecar (the BOLD path with .json
 *   for .nii/.nii.gz/.hdr/.img) "RepetitionTime", else the header.
 *   With slice timing, the region's delay is the sidecar's SliceTiming
 *   entry of the slice holding the region's centre.
 * - Outputs (io_extract_write): PREFIX.tsv (one column named after the
 *   region), PREFIX_confounds.tsv (X0 with a header) and PREFIX.json
 *   (voxels, centre, variance explained, TR, delay, ...), each written
 *   atomically and only after everything was computed.
 * - Errors: DCM_ERR_INPUT naming the file and what is wrong;
 *   DCM_ERR_SYSTEM for memory and writing. FFTW's planner (not
 *   thread-safe) is serialised by a lock, so these may run in threads.
 */
#ifndef IO_EXTRACT_H
#define IO_EXTRACT_H

#include <stddef.h>

#include "models/model_problem.h"

enum { IO_SUMMARY_EIGEN = 0, IO_SUMMARY_MEAN = 1 };

/* SPM's number of DCT columns, constant included: fix(2 v TR / cutoff + 1). */
int io_dct_ncols(int v, double TR, double cutoff);

/* SPM's spm_dctmtx(v, K): v x K column-major, column 0 the constant
 * 1/sqrt(v), column k sqrt(2/v) cos(pi (2t+1) k / (2v)). */
int io_dct_basis(int v, int K, double *C, dcm_error *err);

/* Y (v x nvox, column-major) <- residuals of Y regressed on X0 (v x k),
 * through the SVD of X0 (rank-deficient X0 allowed). *rank (if not NULL)
 * receives the rank of X0. */
int io_regress_out(double *Y, int v, int nvox, const double *X0, int k, int *rank,
                   dcm_error *err);

/* SPM's principal eigenvariate of y (v x nvox, column-major) into u (v);
 * *explained = s1 / sum(s) (may be NULL); weights (nvox, may be NULL)
 * receives SPM's xY.v. */
int io_eigenvariate(const double *y, int v, int nvox, double *u, double *weights,
                    double *explained, dcm_error *err);

/* Mean over voxels; *explained = share of the voxels' variance that the
 * mean time series accounts for. */
void io_mean_series(const double *y, int v, int nvox, double *u, double *explained);

typedef struct {
    const char *bold;          /* 4D image */
    const char *mask;          /* binary mask, or NULL */
    const char *atlas;         /* label image, or NULL */
    long label;                /* with atlas */
    int sphere;                /* 1: use centre/radius */
    double centre[3], radius;  /* mm */
    const char *name;          /* region name (column of PREFIX.tsv) */
    const char *confounds;     /* TSV with a header, or NULL */
    char **columns;            /* names of the confound columns to use */
    int ncolumns;
    double hpf;                /* high-pass cutoff (s); <= 0: no high-pass */
    int summary;               /* IO_SUMMARY_* */
    double tr;                 /* > 0: overrides the sidecar and header */
    int slice_timing;          /* compute the delay from SliceTiming */
    int all_labels;            /* every label of the atlas (io_extract_atlas_run) */
    const char *labels;        /* with all_labels: BIDS labels table (index, name), or NULL */
} io_extract_opts;

typedef struct {
    int v;                     /* scans */
    int nvox;                  /* voxels used */
    int excluded;              /* voxels dropped for non-finite values */
    double *y;                 /* v: the region's summary */
    int nx0;                   /* confound columns */
    double *X0;                /* v x nx0 column-major */
    char **x0_names;           /* nx0 */
    int x0_rank;
    int ndct;                  /* high-pass columns in X0 */
    double centre_mm[3];       /* sphere centre, else the voxels' centroid */
    int centre_vox[3];         /* nearest voxel to the centroid */
    double explained;          /* variance explained by the summary */
    double tr;
    char tr_source[64];        /* "--tr", "sidecar FILE", "header" ... */
    char warning[512];         /* sentences joined by "; " ("" if none): TR disagreement,
                                  voxels left out, constant voxels */
    int have_delay;
    double delay;              /* seconds, with slice timing */
    int slice;                 /* 0-based slice index of the centre */
    char *sidecar;             /* path of the sidecar used (NULL if none) */
} io_extract_result;

int io_extract_run(const io_extract_opts *o, io_extract_result *r, dcm_error *err);
void io_extract_result_free(io_extract_result *r);

/* Write PREFIX.tsv, PREFIX_confounds.tsv and PREFIX.json. */
int io_extract_write(const char *prefix, const io_extract_opts *o, const io_extract_result *r,
                     dcm_error *err);

/* Every label of an atlas in one pass (`dcm extract --all-labels`).
 * - The atlas is put on the BOLD grid (io_atlas_sample: nearest neighbour
 *   through the affines when the grids differ), intersected with the mask
 *   when there is one; the voxels are sorted into labels in one pass, then
 *   each label's series is summarised as io_extract_run does a region's
 *   (same confounds, same summary, same TR rules).
 * - Regions: the labels of the atlas and of the table (when given), in
 *   ascending label order, named from the table, else "label_N". A label
 *   without a usable voxel (in the table but not the atlas, lost in the
 *   resampling, outside the mask, only NaN/Inf voxels, constant series)
 *   gets no column and is listed in `missing` with the reason, and in the
 *   warning. Atlas labels the table does not name are warned about.
 * - Errors (DCM_ERR_INPUT): an atlas that is not a label image, or no
 *   label with a usable voxel (saying why), a label name clash. */
typedef struct {
    io_extract_result common;  /* v, TR, X0 and its names, sidecar, TR warnings */
    int nregions;
    long *label;               /* nregions */
    char **name;               /* nregions */
    int *nvox, *excluded;      /* voxels used / left out for NaN or Inf */
    double *explained;         /* nregions */
    double *centre_mm;         /* 3 x nregions: the voxels' centroid */
    double *Y;                 /* v x nregions, column-major */
    int resampled;             /* the atlas was not on the BOLD grid */
    int atlas_labels;          /* distinct labels in the atlas (own grid) */
    int nmissing;
    long *missing;             /* labels without a column */
    char **missing_name, **missing_why;
    int unnamed;               /* atlas labels the table does not name */
    char *warning;             /* every warning, "; " between them ("" if none) */
} io_extract_atlas_result;

int io_extract_atlas_run(const io_extract_opts *o, io_extract_atlas_result *r, dcm_error *err);
void io_extract_atlas_result_free(io_extract_atlas_result *r);
/* PREFIX.tsv (a column per region), PREFIX_confounds.tsv, PREFIX.json. */
int io_extract_atlas_write(const char *prefix, const io_extract_opts *o,
                           const io_extract_atlas_result *r, dcm_error *err);

#endif
