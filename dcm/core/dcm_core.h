/* dcm_core.h — the bottom layer of the library: errors, warnings, the name
 * and TR checks, and the definitions of dcm_problem and dcm_result.
 *
 * Contract
 * - Includes only the public header (include/dcm/dcm.h) and the C library:
 *   every other layer (vl/ excepted, which needs nothing of ours) builds on
 *   it. The model a problem holds is known here only by name (struct
 *   model_dcm, defined in models/model_dcm.h).
 * - Errors are reported through dcm_error: a code (DCM_ERR_*, which is
 *   also the command's exit status) and a message that says what to fix.
 * - Warnings are data, never printed by the library: suspicious-but-valid
 *   designs (found while loading, kept in dcm_problem.warnings) and fits
 *   that SPM's spm_dcm_fmri_check would flag end up in
 *   dcm_result.warnings, one sentence each; the numbers behind the fit
 *   checks are in dcm_result.diag. Design slips that make a fit
 *   meaningless (TR outside (0, 30] s, a constant region, repeated names)
 *   are errors before any fitting.
 */
#ifndef DCM_CORE_H
#define DCM_CORE_H

#include <stddef.h>

#include "dcm/dcm.h"

/* printf-style: set err (if not NULL) and return code. */
int dcm_error_set(dcm_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* printf into a new string (caller frees); NULL when out of memory. */
char *dcm_strprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A list of warnings (owned strings); zero-initialised = empty. */
typedef struct {
    int count;
    char **items;
} dcm_warnings;

/* printf-style append; returns DCM_OK or DCM_ERR_SYSTEM (out of memory). */
int dcm_warnings_add(dcm_warnings *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append copies of every warning of src. */
int dcm_warnings_copy(dcm_warnings *dst, const dcm_warnings *src);
void dcm_warnings_free(dcm_warnings *w);

/* Largest repetition time accepted, in seconds: above it a TR is almost
 * certainly in milliseconds. */
#define DCM_TR_MAX 30.0
/* NULL when TR is a plausible repetition time in seconds, else a sentence
 * saying what is wrong (naming the likely unit slip), written into buf. */
const char *dcm_check_tr(double TR, char *buf, size_t len);
/* NULL when name can be used as a region or input name, else the reason:
 * names may not contain "->" or ':' (the parameter syntax "A:V1->V5"),
 * control characters, or start/end with white space. */
const char *dcm_name_problem(const char *name);

/* What a problem fits (dcm_problem.analysis). */
typedef enum {
    DCM_ANALYSIS_TASK = 0,  /* the BOLD time series, driven by inputs (spm_dcm_estimate) */
    DCM_ANALYSIS_CSD = 1,   /* their cross-spectra, resting state (spm_dcm_fmri_csd):
                               no inputs (m = 0), only the "a" switches of M */
    DCM_ANALYSIS_RDCM = 2   /* regression DCM (TAPAS rDCM / sparse rDCM, dcm/dcm_rdcm.h):
                               the a and c switches of M, inputs at micro-time in M->u
                               (m may be 0: resting state), no b, no d */
} dcm_analysis;

/* The options of a regression DCM (spec "rdcm": {...}); values as the
 * enums of dcm/dcm_rdcm.h (method 0 rdcm, 1 sparse_rdcm; data 0
 * simulated, 1 empirical; order 0 random, 1 fixed). */
typedef struct {
    int method, data, order;
    double filter;          /* TAPAS filter_str (5) */
    int np0;                /* p0 values (0: TAPAS's 19-value grid) */
    double *p0;             /* np0, owned */
    int restarts;           /* sparse: restarts per region and p0 (100) */
    unsigned long long seed;
    int threads;            /* not from the spec: worker threads (dcm estimate -j; 0 = 1) */
    int keep_covariance;    /* not from the spec: keep each region's full posterior
                               covariance in the result (dcm estimate --mat: TAPAS's sN) */
} dcm_rdcm_spec;

/* A regression DCM's result (filled by dcm/dcm_rdcm.c; column-major,
 * row = target region; see dcm/dcm_rdcm.h). */
typedef struct dcm_rdcm_result {
    int n, m, method, has_baseline;
    double *Ep_A, *Ep_C, *Ep_baseline;     /* n x n, n x m, n */
    double *Var_A, *Var_C, *Var_baseline;  /* diag of each region's Sigma; 0 where no parameter */
    double F;                              /* negative free energy, sum over regions */
    double *F_regions;                     /* n */
    double *F_terms;                       /* n x 7 F terms (row-major per region) */
    double *aN, *bN;                       /* n: Gamma posterior of the noise precision */
    int *iterations;                       /* n: VB iterations (of the kept restart) */
    int *bins;                             /* n: frequency bins in each regression */
    /* sparse rDCM */
    double *Ip_A, *Ip_C, *Ip_baseline;     /* inclusion probabilities */
    int np0, p0_index;
    double *p0_grid, *F_per_p0, p0;
    double seconds;
    /* when asked (keep_covariance): region k's posterior covariance over its
       Sigma_D[k] regressors Sigma_cols[k] (numbering of models/model_rdcm.h:
       0..n-1 A row, n..n+m-1 C row, n+m the constant); else NULL */
    int *Sigma_D, **Sigma_cols;
    double **Sigma;
} dcm_rdcm_result;
void dcm_rdcm_result_free(dcm_rdcm_result *R);

struct dcm_problem {
    dcm_analysis analysis;  /* DCM_ANALYSIS_TASK unless the spec says "csd" */
    int csd_order;          /* spectral DCM: MAR order of the data feature (SPM: 8) */
    int n, m;               /* regions, inputs */
    char **region_names;    /* n */
    char **input_names;     /* m */
    struct model_dcm *M;          /* structure, inputs at micro-time, TR/TE/delays */
    int v;                  /* scans */
    double *Y;              /* v x n, column-major, as read (unscaled) */
    int nx0;                /* confound columns (0: a constant, as SPM) */
    double *X0;             /* v x nx0, column-major */
    /* options */
    int centre;             /* mean-centre the inputs */
    int maxit;              /* maximum VL iterations (SPM: 128) */
    int maxnodes;           /* above this many regions, the prior on A is
                               confined to the data's principal modes (SPM: 8) */
    int threads;            /* not from the spec: threads that share the Jacobian of
                               one fMRI estimate (dcm estimate -j); 0 or 1: the caller's */
    double hE, hC;          /* noise log-precision prior mean/variance (6, 1/128) */
    char *source;           /* where the problem came from (for messages) */
    dcm_warnings warnings;  /* design warnings found by the loader; copied
                               into the result by dcm_estimate */
    dcm_rdcm_spec rdcm;     /* analysis DCM_ANALYSIS_RDCM only */
};

/* SPM's spm_dcm_fmri_check diagnostics of one fit (NaN when unknown). */
typedef struct {
    double variance_explained;   /* percent, 100 PSS / (PSS + RSS) */
    double max_abs_connection;   /* Hz, largest off-diagonal |A| */
    double effective_parameters; /* KL(posterior || prior) / log(scans) */
    int accepted_steps;          /* iterations after the first that raised F
                                    (-1 when unknown) */
} dcm_diagnostics;

/* Thresholds below which a fit is flagged (SPM's). */
#define DCM_CHECK_MIN_VARIANCE 10.0      /* percent */
#define DCM_CHECK_MIN_CONNECTION 0.125   /* Hz */
#define DCM_CHECK_MIN_EFFECTIVE 1.0      /* parameters */

/* 100 sum(pred^2) / (sum(pred^2) + sum(res^2)), res = obs - pred - conf
 * (conf may be NULL); NaN when both sums are 0. */
double dcm_variance_explained(const double *obs, const double *pred, const double *conf,
                              size_t count);
/* KL divergence of N(Ep, Cp) from the prior N(pE, C) in the prior's
 * support, C = diag(pV) when pC is NULL else pC (np x np row-major).
 * Cp is np x np row-major. NaN when it cannot be computed. */
double dcm_kl_normal(int np, const double *Ep, const double *Cp, const double *pE,
                     const double *pV, const double *pC);
/* Steps after the first that raised F along a trajectory (F_trace); -1
 * when there is no step after the first (fewer than 2 iterations). */
int dcm_accepted_steps(const double *F_trace, int ntrace);
/* Append one warning per failed fit check. */
int dcm_diagnostics_warn(const dcm_diagnostics *d, dcm_warnings *w);

struct dcm_result {
    dcm_analysis analysis;  /* what was fitted (the problem's) */
    int np;                 /* parameters, SPM's flat order (model_dcm.h; spectral
                               DCM: model_layout_init_csd) */
    double *pE, *pV;        /* prior mean, prior variance */
    double *Ep;             /* posterior mean */
    double *Cp;             /* posterior covariance, np x np row-major */
    double *Pp;             /* posterior probability (NaN where pV = 0) */
    int n, v;
    double *Eh;             /* noise log-precision per region (spectral DCM: nh) */
    double F;               /* negative free energy (log-evidence bound) */
    double L[3];            /* accuracy, parameter and precision terms of F */
    int iterations;
    int converged;
    int stopped;            /* the progress callback stopped the fit */
    int ntrace;
    double *F_trace;        /* accepted F at every iteration */
    double scale;           /* factor applied to the detrended data */
    double *y_obs;          /* v x n column-major, detrended and scaled */
    double *y_pred;         /* v x n column-major, predicted BOLD (scaled units) */
    double *y_conf;         /* v x n, fitted confounds */
    double seconds;
    dcm_diagnostics diag;   /* fit checks (spm_dcm_fmri_check) */
    dcm_warnings warnings;  /* design and fit warnings, empty when none */
    /* spectral DCM only (NULL / 0 for a task fit): y_pred and y_conf are
       NULL there, y_obs the detrended series scaled to 1/(4 std) */
    int nh;                 /* noise components: n^2, channel (i, j) at i + n j */
    int nw;                 /* frequencies */
    double *Hz;             /* nw */
    double *csd_obs;        /* empirical CSD: 2 nw n n doubles, (re, im) pairs
                               at w + nw (i + n j) (models/model_csd.h) */
    double *csd_pred;       /* predicted CSD at Ep, the same layout */
    int mar_iterations;     /* variational iterations of the MAR(order) fit */
    /* regression DCM only (NULL otherwise): the per-region posteriors;
       Ep, pE, pV hold A then C (np = n^2 + n m), Cp is NULL (no dense
       covariance: the per-region diagonals are in rdcm->Var_*) */
    dcm_rdcm_result *rdcm;
};

void dcm_result_free(dcm_result *R);

#endif
