/* dcm_loo.h — leave-one-out cross-validation of a group (PEB) model, as
 * SPM12's spm_dcm_loo: for each subject, PEB over the others, then the
 * posterior predictive density of that subject's value of one design
 * column given its own parameters and the group model (spm_dcm_ppd).
 *
 * Contract
 * - In-memory inputs (a dcm_peb_input over all subjects, with the design);
 *   no files, no printing, no global state (thread-safe).
 * - Errors through dcm_error (DCM_ERR_INPUT, DCM_ERR_NUMERIC,
 *   DCM_ERR_SYSTEM); results own their arrays: dcm_loo_result_free (also
 *   after an error).
 */
#ifndef DCM_LOO_H
#define DCM_LOO_H

#include "dcm/dcm_api.h"

typedef struct {
    int nsub;
    int col;            /* the design column predicted */
    double *qE, *qC;    /* nsub: posterior predictive mean and variance of the
                           left-out subject's value (SPM's qE, qC) */
    double *truth;      /* nsub: the design's value, X(i, col) */
    int *iterations;    /* nsub: iterations of each training PEB */
    int *converged;     /* nsub: whether it met SPM's stopping rule */
    double r;           /* Pearson correlation of qE with truth */
    double t;           /* its t statistic (slope of qE on [1, truth]) */
    int df;             /* nsub - 2 */
    double p;           /* one-tailed p of t, as spm_dcm_loo: 1 - T_df(t) */
    double p_two_sided; /* 2 (1 - T_df(|t|)) */
} dcm_loo_result;

/* in: every subject (in->nsub >= 3), the selected parameters and the
 * design (in->X, nx >= 2); col (1..nx-1) the column to predict. Each
 * training PEB uses in's options (SPM's spm_dcm_ppd passes none: M.Q
 * 'single', maxit 64). The prediction follows spm_dcm_ppd: the subject's
 * other covariates are known (prior variance 1, then e^-1..e^-3 over four
 * passes), the predicted one starts at 0 with variance 4 var(X(train, col))
 * + 1, each pass starting where the last ended. */
int dcm_loo(const dcm_peb_input *in, int col, dcm_loo_result *out, dcm_error *err);
void dcm_loo_result_free(dcm_loo_result *r);

/* The correlation statistics of qE against truth (n >= 3): r, t, df, p,
 * p_two_sided of R (its other fields untouched). */
int dcm_loo_correlation(const double *qE, const double *truth, int n, dcm_loo_result *R,
                        dcm_error *err);

#endif
