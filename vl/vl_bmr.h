/* vl_bmr.h — Bayesian model reduction for Gaussian posteriors.
 *
 * Contract
 * - A "full" model has a Gaussian prior N(pE, pC) and (Laplace) posterior
 *   N(qE, qC). A reduced model differs only in its prior, N(rE, rC). Under
 *   the Laplace assumption the reduced model's posterior N(sE, sC) and its
 *   log-evidence relative to the full model follow in closed form, with no
 *   refitting (Friston & Penny 2011; Friston et al. 2016) — SPM12's
 *   spm_log_evidence_reduce:
 *       sP = qP + rP - pP,   sC = sP^-1,   sE = sC (qP qE + rP rE - pP pE),
 *       dF = 1/2 ln|rP qP sC pC|
 *            - 1/2 (qE'qP qE + rE'rP rE - pE'pP pE - sE'sP sE)
 *   (P = C^-1; dF = ln p(y|reduced) - ln p(y|full)).
 * - Parameters fixed by the full prior (zero prior variance, or a fixed
 *   mixture) are removed first: everything is computed in the subspace
 *   spanned by the principal axes of pC, as SPM does with spm_svd(pC, 1e-6)
 *   (axes whose squared singular value, relative to the mean of the squared
 *   singular values, exceeds 1e-6). Reduced priors may set variances to
 *   zero: all inverses are regularised as spm_inv(A, 1e-8), i.e. computed
 *   as (A + 1e-8 I)^-1, so a switched-off parameter gets a reduced prior
 *   precision of 1e8 (posterior variance ~1e-8), exactly as SPM reports.
 *   Outside the subspace, the reduced posterior mean equals the reduced
 *   prior mean and its covariance is zero.
 * - Matrices are n x n, row-major (they are symmetric, so column-major
 *   callers need not transpose). No global state; thread-safe.
 * - Status: vl_status (vl/vl_status.h): VL_OK, VL_ERR_INPUT (bad sizes or
 *   arguments), VL_ERR_NONFINITE (NaN/Inf in the inputs or a failed
 *   factorisation), VL_ERR_NOMEM.
 */
#ifndef VL_BMR_H
#define VL_BMR_H

#include "vl/vl_status.h"

/* Log-evidence of the reduced model relative to the full one (*dF), and,
 * if sE (n) / sC (n x n) are not NULL, the reduced posterior. Returns
 * VL_OK or an error. */
int vl_bmr_reduce(int n, const double *qE, const double *qC, const double *pE,
                  const double *pC, const double *rE, const double *rC, double *dF,
                  double *sE, double *sC);

/* (Regularised inverses: vl_inv_reg in vl_linalg.h.) */

/* Orthonormal basis (n x r, row-major, r returned in *r) of the principal
 * subspace of a symmetric positive semi-definite matrix C, selected as
 * spm_svd(C, thr): rows/columns of C that are entirely zero are set aside;
 * a diagonal remainder gives unit vectors (in order of decreasing
 * variance), otherwise eigenvectors; axes with s^2 m / sum(s^2) > thr
 * are kept (s: singular values, m: rows kept). U must hold n*n doubles.
 * Returns VL_OK, VL_ERR_NONFINITE (NaN/Inf, failed eigen-
 * decomposition) or VL_ERR_NOMEM. */
int vl_bmr_subspace(const double *C, int n, double thr, double *U, int *r);

/* Bayesian model averaging, the one BMA of the library: an accumulator
 * that models enter one at a time with their log-evidence F (any offset),
 * so that a search need not keep them. Weights are exp(F - Fmax), kept
 * relative to the largest F so far (earlier sums are rescaled when a better
 * model arrives), hence no overflow. full = 1: covariances are n x n and
 * the average covariance is sum w (C + E E') / sum w - mean mean' (within
 * and between models); full = 0: variances (n) likewise. present (n,
 * optional) marks the parameters a model has free: their share of the
 * weight is the posterior probability that each is present. */
typedef struct {
    int n, full;
    double fmax, w;         /* largest F so far, sum of weights */
    double *m1, *m2, *pp;   /* weighted sums of E, C + E E' and presence */
    int normalised;         /* entered with vl_bma_add_weighted */
} vl_bma;

int vl_bma_init(vl_bma *a, int n, int full); /* VL_OK or VL_ERR_NOMEM */
void vl_bma_add(vl_bma *a, double F, const double *E, const double *C,
                const unsigned char *present);
/* The same with the model's weight given, already normalised (a caller
 * that has every evidence at hand computes the weights first, e.g. with
 * Occam's window); the sums are then used as they are, not divided by the
 * total weight. Do not mix with vl_bma_add in one average. */
void vl_bma_add_weighted(vl_bma *a, double weight, const double *E, const double *C,
                         const unsigned char *present);
/* mean (n), C (n x n or n), pp (n); any may be NULL. */
void vl_bma_finish(const vl_bma *a, double *mean, double *C, double *pp);
void vl_bma_free(vl_bma *a);

/* Greedy automatic reduction (in the spirit of spm_dcm_bmr_all): starting
 * from the full model, every candidate parameter still free is scored by
 * switching it off (its prior variance and covariances set to zero, its
 * prior mean kept); if any removal increases the evidence, all such
 * parameters are removed together when that is at least as good as the
 * best single removal, otherwise only the best one; repeat until no removal
 * increases the evidence. The model evidence therefore never decreases.
 * Every model scored is also entered in a Bayesian model average (vl_bma,
 * weights exp(dF), the full model included).
 *
 * candidates (n, optional): 1 = may be switched off; NULL = every parameter
 * with positive prior variance. */
typedef struct {
    int n;
    unsigned char *keep;  /* n: 1 if the parameter is free in the selected
                             model (0 if switched off or fixed a priori) */
    double dF;            /* log-evidence of the selected model minus the
                             full model's (>= 0) */
    double *Ep, *Cp;      /* posterior of the selected model (n, n x n) */
    double *Ep_bma;       /* n: Bayesian model average of the posterior mean */
    double *Cp_bma;       /* n x n: BMA covariance (within + between models) */
    double *Pp;           /* n: posterior probability that each parameter is
                             free (BMA over the models scored); 0 for
                             parameters fixed a priori */
    int nmodels;          /* models scored (the full one included) */
    int nremoved;         /* parameters switched off in the selected model */
} vl_bmr_search_result;

int vl_bmr_search(int n, const double *qE, const double *qC, const double *pE,
                  const double *pC, const unsigned char *candidates,
                  vl_bmr_search_result *out);
void vl_bmr_search_result_free(vl_bmr_search_result *r);

#endif
