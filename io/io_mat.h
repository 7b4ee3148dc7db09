/* io_mat.h — SPM's MATLAB files (VOI_*.mat and DCM_*.mat) through matio.
 *
 * Contract
 * - io_mat_load_voi() reads the `xY` struct that SPM's spm_regions saves
 *   (VOI_NAME_SESS.mat): the region's summary time series xY.u (required),
 *   its confounds xY.X0 (optional), the voxel data xY.y (optional, needed
 *   to recompute the eigenvariate), the centre xY.xyz (mm) and xY.name.
 *   MATLAB v5/v7 files (compressed or not) are read; v7.3 (HDF5) when the
 *   installed matio was built with HDF5.
 * - io_mat_load_dcm() reads a DCM that SPM specified (spm_dcm_specify):
 *   the `DCM` struct's a, b, c, d, U (U.u at micro-time, sparse or full;
 *   U.name, U.dt), Y (Y.y, Y.X0, Y.dt, Y.name), delays, TE, options
 *   (two_state, centre, nonlinear, maxit, stochastic/induced must be off),
 *   v, n, and the noise prior M.hE/M.hC when present, as SPM's
 *   spm_dcm_estimate does. Missing optional fields take SPM's defaults
 *   (TE 0.04 s, delays TR/2, X0 a constant, names R1.. / u1..). The
 *   result is checked with dcm_problem_validate. Custom priors M.pE/M.pC
 *   are not used: the problem always has SPM12's standard priors.
 * - io_mat_write_dcm() writes the estimated model as a `DCM` struct with
 *   SPM12's field names and shapes (see docs/imaging.md): a b c d U Y
 *   (Y.y detrended and scaled, as SPM stores it after estimation, Y.scale)
 *   xY v n TE delays options Ep Cp Pp Vp Ce F y R M (pE pC hE hC ...).
 *   A spectral DCM (DCM_ANALYSIS_CSD) is written as spm_dcm_fmri_csd
 *   leaves it: a, b (n x n x 0), c (n x 1 zeros, the dummy input), d,
 *   U (u zeros, name {'null'}), Y (y, dt, name, scale, X0, csd: complex
 *   nw x n x n, Hz 1 x nw, p: MAR order), xY, v, n, TE, delays, options
 *   (analysis 'CSD', induced 1, order, maxit, maxnodes), M (IS
 *   'spm_csd_fmri_mtf', FS, pE, pC, hE 8, hC 1/128, Hz, dt, N, ns), Ep /
 *   Pp / Vp with the blocks A B C D transit decay epsilon a (2 x 1) b
 *   (2 x 1) c (1 x n), Cp, Hc (predicted CSD) and Rc (Y.csd - Hc), complex
 *   nw x n x n, Ce = exp(-Eh) (n^2 x 1, channel i + n j), F, Hz. SPM's
 *   neuronal-level extras (Hs, dtf, ccf, coh, H1, K1) are not written.
 *   io_mat_load_dcm refuses such a file (options.analysis 'CSD') with a
 *   message pointing to the JSON spec.
 *   A regression DCM (DCM_ANALYSIS_RDCM) is written as TAPAS's `output`
 *   struct of tapas_rdcm_estimate (not a DCM): Ep (A, B zeros, C, D,
 *   baseline), Ip, t, aN, bN, logF, logF_r, logF_term, priors (m0, l0,
 *   a0, b0), inversion, signal (y_source, name), inputs (u, name, dt),
 *   time, ver; plus Vp (posterior variances), iterations, bins, p0,
 *   p0_all, logF_all, source. sN/Cp and the fitted signals are not
 *   written (the result keeps neither; MANUAL section 17).
 *   Written atomically (io_atomic.h), MATLAB v5 with zlib compression;
 *   matio's write and close results are checked and the file is read
 *   back before it is put in place, so a full disk is DCM_ERR_SYSTEM and
 *   the old file stays. io_mat_write_dcm_to() fills an opened io_atomic
 *   without committing it (for results of several files, committed with
 *   io_atomic_commit_all).
 * - A MATLAB v5 file whose top-level data elements run past its end is
 *   refused as truncated before matio reads it.
 * - Every error is DCM_ERR_INPUT (DCM_ERR_SYSTEM when writing or out of
 *   memory) with a message that names the file and the field, e.g.
 *   "DCM_x.mat: DCM.Y.y is 360x2 but DCM.n is 3".
 * - No global state is kept; matio itself may print diagnostics.
 */
#ifndef IO_MAT_H
#define IO_MAT_H

#include "models/model_problem.h"

typedef struct {
    char *name;      /* xY.name (NULL when absent) */
    int v;           /* scans (rows of xY.u) */
    double *u;       /* v: xY.u, the region's summary time series */
    int nvox;        /* columns of xY.y (0 when absent) */
    double *y;       /* v x nvox column-major (NULL when absent) */
    int nx0;         /* columns of xY.X0 (0 when absent) */
    double *X0;      /* v x nx0 column-major (NULL when absent) */
    double xyz[3];   /* xY.xyz in mm (NaN when absent) */
} io_voi;

int io_mat_load_voi(const char *path, io_voi *out, dcm_error *err);
/* Frees the arrays and zeroes the struct. */
void io_voi_free(io_voi *v);

int io_mat_load_dcm(const char *path, dcm_problem **out, dcm_error *err);

/* SPM12 r7771's echo time: spm_gx_fmri sets TE = 0.04 s and never reads
 * M.TE, so SPM12 fits every DCM with it whatever DCM.TE says. When a DCM
 * file's TE differs, io_mat_load_dcm keeps the file's TE and adds a
 * warning saying what SPM12 would have used. */
#define IO_SPM12_TE 0.04
/* Fit P as SPM12 r7771 does: TE = IO_SPM12_TE; the TE warning of
 * io_mat_load_dcm (if any) is reworded to say so. DCM_OK or
 * DCM_ERR_SYSTEM (out of memory). */
int io_mat_use_spm12_te(dcm_problem *P);

int io_mat_write_dcm(const char *path, const dcm_problem *P, const dcm_result *R,
                     dcm_error *err);
/* a: opened with io_atomic_open(a, path); left open (commit or abort it). */
int io_mat_write_dcm_to(void *a, const dcm_problem *P, const dcm_result *R, dcm_error *err);

/* A second-level (PEB) result as spm_dcm_peb returns it, for
 * io_mat_write_peb. Matrices row-major; names borrowed. */
typedef struct {
    int nsub, np, nx, ng;
    char *const *Snames;   /* nsub: first-level model names (PEB.Snames) */
    char *const *Pnames;   /* np: parameter names (SPM's, e.g. "B(4,4,3)") */
    const int *Pind;       /* np: 0-based flat indices (written 1-based) */
    char *const *Xnames;   /* nx: covariate names */
    const double *X;       /* nsub x nx: the design (PEB.M.X) */
    const double *Ep;      /* np x nx: group effects */
    const double *Cp;      /* (np nx)^2: covariance of vec(Ep), parameters fastest */
    const double *Eh;      /* ng: log-precisions */
    const double *Ch;      /* ng x ng */
    const double *Ce;      /* np x np: expected between-subject covariance */
    const double *pE;      /* np nx: PEB.M.pE (may be NULL) */
    const double *pC;      /* (np nx)^2: PEB.M.pC (may be NULL) */
    double hE, hC;         /* PEB.M.hE, hC (per component) */
    const char *Q;         /* "single", "fields", "all" */
    double alpha, beta;
    int maxit;
    double F;
} io_mat_peb;

/* Write `PEB` as SPM12's spm_dcm_peb struct: Snames (nsub x 1 cell),
 * Pnames (np x 1 cell), Pind and Pind0 (np x 1, 1-based), Xnames
 * (1 x nx cell), M (X, Q, pE, pC, hE, hC, alpha, beta, maxit, Xnames),
 * Ep (np x nx), Eh, Cp, Ch, Ce, F. Atomically, as io_mat_write_dcm. */
int io_mat_write_peb(const char *path, const io_mat_peb *peb, dcm_error *err);

/* One numeric array of a .mat file, by a dotted path into structs
 * ("DCM.Ep.A", "xY.u"; struct arrays use element 1): its dimensions
 * (rank 2..4, trailing singletons as MATLAB keeps them) and its values as
 * doubles, column-major (sparse and logical arrays are expanded). *data
 * is malloc'ed (NULL for an empty array). For tests and tools. */
int io_mat_read_array(const char *path, const char *field, int *rank, size_t dims[4],
                      double **data, dcm_error *err);

#endif
