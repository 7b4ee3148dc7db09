/* io_nifti.h — NIfTI-1, NIfTI-2 and ANALYZE 7.5 images (nifticlib).
 *
 * Contract
 * - io_nifti_open() reads one image (.nii, .nii.gz, .hdr/.img pairs)
 *   with nifticlib's NIfTI-2 reader (which also reads NIfTI-1 and
 *   ANALYZE), after checking the header itself: dimensions 1..7 with at
 *   most 4 used (x, y, z, time), a supported real data type, and a data
 *   part as long as the header says (truncated files are refused before
 *   nifticlib pads them with zeros), a vox_offset that is a whole number
 *   of bytes past the header (a .nii's data start at byte 352, or 544 for
 *   NIfTI-2) with at most 16 MiB of header extensions, and a finite
 *   scl_slope/scl_inter. The image, its header and data files must be
 *   regular files we can read (a FIFO would block).
 * - The data are read here, not by nifticlib: exactly the bytes the
 *   header's dimensions announce (memory is bounded by them whatever a
 *   .nii.gz inflates to), and NaN/Inf stay as they are (nifticlib would
 *   turn them into zeros), so callers can see and leave them out.
 * - `want` says what the caller needs: IO_NIFTI_3D (a volume; a 4D file
 *   with a single volume is accepted) or IO_NIFTI_4D (a time series of at
 *   least 2 volumes). Anything else is an error naming the file and its
 *   dimensions.
 * - Voxel (i, j, k), 0-based, maps to millimetres through the sform when
 *   its code is set, else the qform when set, else the voxel sizes alone
 *   (ANALYZE): `affine` (row-major 4x4) and `affine_source` say which.
 * - Values are the stored ones times scl_slope plus scl_inter (when the
 *   slope is non-zero), as doubles.
 * - TR: pixdim[4] converted to seconds from the header's time units
 *   (seconds when the units are unknown); 0 when the header has none or
 *   a value that is not positive (tr_header keeps what was stored).
 * - Errors: DCM_ERR_INPUT "FILE: what is wrong"; DCM_ERR_SYSTEM for out of
 *   memory. nifticlib may also print its own diagnostics on stderr.
 * - No global state; images are independent.
 */
#ifndef IO_NIFTI_H
#define IO_NIFTI_H

#include <stddef.h>

#include "models/model_problem.h"

enum { IO_NIFTI_3D = 3, IO_NIFTI_4D = 4, IO_NIFTI_HEADER = 0 };

typedef struct {
    char *path;
    int nx, ny, nz, nt;          /* nt = 1 for a volume */
    size_t nvox3;                /* nx * ny * nz */
    double affine[4][4];         /* voxel (i,j,k,1) -> (x,y,z,1) mm */
    const char *affine_source;   /* "sform", "qform" or "voxel sizes" */
    double tr;                   /* seconds, 0 when unknown */
    double tr_header;            /* pixdim[4] in seconds as stored (0, negative, NaN...) */
    int tr_units_known;          /* the header said seconds/ms/us */
    int slice_dim;               /* 1..3 from the header, 0 when unset */
    int datatype;                /* NIfTI DT_* code */
    const char *format;          /* "NIfTI-1", "NIfTI-2", "ANALYZE 7.5" */
    void *nim;                   /* nifti_image (private) */
} io_nifti;

/* want: IO_NIFTI_3D, IO_NIFTI_4D, or IO_NIFTI_HEADER (header only, any
 * dimensions, no data read). On failure *img is zeroed. */
int io_nifti_open(const char *path, int want, io_nifti *img, dcm_error *err);
void io_nifti_close(io_nifti *img);

/* Value of voxel `vox` (i + nx*(j + ny*k)) at volume t. */
double io_nifti_value(const io_nifti *img, size_t vox, int t);

/* Voxel (i, j, k) -> mm, and mm -> fractional voxel coordinates. */
void io_nifti_vox2mm(const io_nifti *img, double i, double j, double k, double xyz[3]);
int io_nifti_mm2vox(const io_nifti *img, const double xyz[3], double ijk[3]);

/* 1 when both images share dimensions and affine (to 1e-3 mm / 1e-5
 * relative), else 0 with the difference described in why. */
int io_nifti_same_grid(const io_nifti *a, const io_nifti *b, char *why, size_t len);

#endif
