/* vl_peb.h — Parametric Empirical Bayes over first-level (DCM) posteriors,
 * as SPM12's spm_dcm_peb.
 *
 * Model
 *   subject i's parameters (the selected ones, theta_i) have the empirical
 *   prior   theta_i = (X(i,:) kron I) beta + e_i,   e_i ~ N(0, Pi(h)^-1),
 *   group effects beta ~ N(bE, bC), log-precisions h ~ N(hE, hC I), with
 *       Pi(h) = pQ exp(-8) + sum_j exp(h_j) Q_j
 *   where pQ is the precision of the first-level prior divided by beta
 *   (M.beta = 16: random effects are a priori 4 times tighter in sd than
 *   the first-level prior) and Q_j its components ('all': one per
 *   parameter, 'single': one in all). The group-mean prior is the
 *   first-level prior (bE = first-level prior mean for the intercept, 0 for
 *   the other covariates; bC = kron(Xc, pC / alpha), alpha = 1, with
 *   Xc = diag(nsub / sum_i X(i,j)^2), SPM's rescaling for the norm of each
 *   covariate).
 * Inversion
 *   No first-level model is refitted: each subject's evidence and posterior
 *   under the empirical prior come from Bayesian model reduction of its
 *   full posterior (vl_bmr_reduce). The free energy
 *       F = sum_i [F_i + dF_i(beta, h)] - complexity(beta, h)
 *   (complexity: beta'bP beta/2 + h'hP h/2 - ln|blkdiag(bP,hP) Cov|/2,
 *   with SPM's uncentred quadratic forms: exact when bE = 0 and hE = 0,
 *   as for B and C parameters and the default hE)
 *   is maximised over (beta, h) by regularised Fisher scoring (a
 *   Levenberg-Marquardt-like local-linearisation step, SPM's spm_dx, with
 *   the same schedule and stopping rule as spm_dcm_peb: at most maxit
 *   iterations, stop when the improvement falls below 1e-4 after 4
 *   iterations). Before this, subject posteriors are shrunk as SPM does,
 *   qC <- (qC^-1 + pC^-1/16)^-1, to allow for inefficient first-level
 *   inversions, and everything is done in the principal subspace of the
 *   (mean) first-level prior covariance of the selected parameters.
 * Outputs follow spm_dcm_peb: Ep (parameters x covariates) and Eh are the
 *   estimates after the final Fisher step; F, Cp (covariance of vec(Ep)
 *   given h, parameters varying fastest), Ch (given beta) and Ce (the
 *   expected between-subject covariance Pi(h)^-1) come from the last
 *   evaluation.
 *
 * Matrices are row-major; covariances symmetric. Status: vl_status
 * (vl/vl_status.h): VL_OK, VL_ERR_INPUT (bad sizes, indices, design or
 * options), VL_ERR_NONFINITE (NaN/Inf in the inputs or a numerical failure
 * in the update), VL_ERR_NOMEM. No global state: thread-safe.
 */
#ifndef VL_PEB_H
#define VL_PEB_H

#include "vl/vl_status.h"

typedef enum {
    VL_PEB_Q_SINGLE = 0, /* one precision component for all (SPM default) */
    VL_PEB_Q_ALL,        /* one per selected parameter */
    VL_PEB_Q_CUSTOM,     /* comp[i] = component of selected parameter i,
                            0..ncomp-1 (-1: none), e.g. SPM's 'fields' */
    VL_PEB_Q_NONE        /* no random-effect precision to estimate */
} vl_peb_qmode;

typedef struct {
    int nsub;          /* subjects (> 1) */
    int np;            /* length of every subject's parameter vector */
    const double *qE;  /* nsub x np: first-level posterior means */
    const double *qC;  /* nsub x np x np: posterior covariances */
    const double *pE;  /* nsub x np: first-level prior means */
    const double *pC;  /* nsub x np x np: prior covariances, or NULL ... */
    const double *pV;  /* ... nsub x np prior variances (diagonal pC) */
    const double *F;   /* nsub: first-level free energies (NULL: zeros) */
    const int *sel;    /* nsel 0-based indices of the parameters treated as
                          random effects; NULL: every parameter with a
                          non-zero prior variance (spm_find_pC) */
    int nsel;
    const double *X;   /* nsub x nx between-subject design (row-major);
                          NULL: a constant (nx = 1) */
    int nx;
} vl_peb_input;

typedef struct {
    vl_peb_qmode Q;    /* default (0): single, as SPM; SPM's 'all' = ALL */
    const int *comp;   /* VL_PEB_Q_CUSTOM only */
    int ncomp;
    double alpha;      /* <= 0: 1  (bC = pC / alpha) */
    double beta;       /* <= 0: 16 (random-effect prior cov = pC / beta) */
    double hE;         /* prior mean of the log-precisions (0) */
    double hC;         /* <= 0: 1/16, their prior variance */
    int maxit;         /* <= 0: 64 */
} vl_peb_opts;

typedef struct {
    int np, nx, ng;    /* selected parameters, covariates, components */
    int *sel;          /* np: flat indices (0-based) of the parameters */
    double *Ep;        /* np x nx: group effects (row = parameter) */
    double *Cp;        /* (np nx) x (np nx): covariance of vec(Ep), index
                          i + j*np for parameter i, covariate j (from the
                          curvature in b alone, as SPM) */
    double *Eh;        /* ng: log-precisions of the random effects */
    double *Ch;        /* ng x ng */
    double *Ce;        /* np x np: expected between-subject covariance */
    double F;          /* free energy of the hierarchical model at the last
                          evaluation (as SPM reports it: when the final
                          iteration's step was rejected this is slightly
                          below the best value reached) */
    int iterations;
    int converged;     /* 1: SPM's stopping rule ended the iterations; 0:
                          they stopped at maxit */
} vl_peb_result;

/* spm_dcm_bmr_all over n parameters of a full model with prior N(pE, pC)
 * and posterior N(qE, qC) (n x n row-major), as spm_dcm_peb_bmc runs it
 * on a PEB with no model space (every parameter a candidate, reduced
 * priors: mean and variance 0):
 * - candidates start as the parameters whose prior variance exceeds
 *   mean(prior variances below 1024) / 1024 (the others are off from the
 *   start, Pp 0);
 * - with more than 8 candidates, the 8 whose removal alone costs least
 *   are taken; all 2^k combinations of switching them off are scored
 *   (vl_bmr_reduce) and the best model's are switched off; repeated while
 *   that removes something; with 8 or fewer, one pass;
 * - Pp of a candidate of the last pass: mean posterior of the models with
 *   it on / (that + the mean with it off); others: 1 when on, 0 when off;
 * - BMA over the last pass's models within 8 of the best log-evidence
 *   (each reduced from the final switched-off set plus its own), weighted
 *   by exp(F): mean (Ep) and variance (Vp) of the mixture. SPM averages
 *   1000 samples of that mixture; this is its expectation.
 * out: Ep, Vp, Pp (n each, caller's); *nmodels (may be NULL): models
 * scored in all. VL_OK, VL_ERR_INPUT, VL_ERR_NONFINITE or VL_ERR_NOMEM. */
int vl_peb_bmr_all(int n, const double *qE, const double *qC, const double *pE, const double *pC,
                   double *Ep, double *Vp, double *Pp, int *nmodels);

/* Opts may be NULL (SPM defaults). `out` gets freshly allocated arrays:
 * free with vl_peb_result_free (also safe after an error). */
int vl_peb(const vl_peb_input *in, const vl_peb_opts *opts, vl_peb_result *out);
void vl_peb_result_free(vl_peb_result *r);

/* spm_dcm_peb's within-subject branch (called with one DCM, M.X = 1), as
 * spm_dcm_ppd uses it to predict a left-out subject: the subject's
 * selected parameters theta (np) have the prior theta = W b + e,
 * e ~ N(0, Ce), with b ~ N(bE, bC) (nw), no precision components to
 * estimate and no shrinkage of the posterior. Its evidence and posterior
 * under that prior come from Bayesian model reduction of its full
 * posterior N(qE, qC) under N(pE, pC); b is found by the same regularised
 * Fisher scoring, schedule, uncentred complexity (b' bP b / 2) and stopping
 * rule as vl_peb. The moments are used as given (SPM rotates them into
 * the principal axes of pC but not W; for a diagonal pC with equal
 * variances, or one parameter, the two agree).
 * All matrices row-major: W np x nw, Ce/qC/pC np x np, bC nw x nw.
 * out: Ep (nw) after the final step, Cp (nw x nw) and *F from the last
 * evaluation, *iterations (may be NULL). maxit <= 0: 64. */
typedef struct {
    int np, nw;
    const double *qE, *qC, *pE, *pC; /* the subject's first-level moments */
    double F;                        /* its first-level free energy */
    const double *W;                 /* np x nw: the group effects (PEB.Ep) */
    const double *Ce;                /* np x np: between-subject covariance (PEB.Ce) */
    const double *bE, *bC;           /* prior of b */
    int maxit;
} vl_peb_single_input;

int vl_peb_single(const vl_peb_single_input *in, double *Ep, double *Cp, double *F, int *iterations);

#endif
