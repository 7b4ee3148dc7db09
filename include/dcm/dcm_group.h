/* dcm/dcm_group.h — group analysis in the public C API of libdcm: Bayesian
 * model selection (BMS), Bayesian model reduction (BMR) and its search,
 * Bayesian model averaging (BMA), posterior probabilities of parameters,
 * and Parametric Empirical Bayes (PEB), as SPM12 computes them.
 *
 * Contract
 * - Included by dcm/dcm.h (include that). C11 and C++-safe; every symbol
 *   starts with dcm_ / DCM_.
 * - Inputs are plain arrays in memory (log-evidences, posterior and prior
 *   moments of estimated models, a design matrix); matrices are row-major
 *   (covariances are symmetric, so column-major callers need not
 *   transpose). The functions read no file and print nothing.
 * - Every function that can fail returns DCM_OK or a DCM_ERR_* code and fills
 *   the caller's dcm_error: DCM_ERR_INPUT (bad sizes, partition or design),
 *   DCM_ERR_NUMERIC (non-finite values, or numbers too large to combine),
 *   DCM_ERR_SYSTEM (out of memory). Result structs own their arrays; free
 *   them with the matching *_free (also after an error, NULL accepted).
 * - Thread-safe: no global state.
 */
#ifndef DCM_GROUP_H
#define DCM_GROUP_H

#include "dcm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ BMS */

/* Fixed effects, the one fixed-effects comparison of the library. lme is
 * nsub x nmod (lme[i*nmod + k]: subject i, model k); a model's group
 * log-evidence is the sum over subjects. prior (nmod, NULL = uniform) is
 * normalised here. Outputs (nmod each, any may be NULL): slme the summed
 * log-evidences, post the posterior model probabilities, logbf the log
 * Bayes factors against the best model (<= 0). For one subject (nsub = 1)
 * this compares models fitted to the same data by their free energies. */
int dcm_bms_ffx(const double *lme, int nsub, int nmod, const double *prior, double *slme,
                double *post, double *logbf, dcm_error *err);

/* Random effects (Stephan et al. 2009; Rigoux et al. 2014), as spm_BMS. */
typedef struct {
    int nsub, nmod;
    double *alpha;  /* nmod: posterior Dirichlet counts */
    double *exp_r;  /* nmod: expected model frequencies */
    double *xp;     /* nmod: exceedance probabilities */
    double *pxp;    /* nmod: protected exceedance probabilities */
    double *g;      /* nsub x nmod: subject-to-model assignment */
    double bor;     /* Bayesian omnibus risk */
    double F0, F1;  /* free energies of the null and of the posterior */
    int iterations;
    int converged;  /* 0: the iterations stopped at their limit (results set) */
} dcm_bms_rfx_result;

int dcm_bms_rfx(const double *lme, int nsub, int nmod, dcm_bms_rfx_result *out, dcm_error *err);
void dcm_bms_rfx_result_free(dcm_bms_rfx_result *r);

/* Families: fam[k] in 0..nfam-1 is model k's family. rfx = 0: fixed
 * effects (spm_compare_families 'FFX', exp_r = family posteriors); rfx = 1:
 * random effects with SPM's 'F-unity' prior (alpha, exp_r, xp, pxp, bor). */
typedef struct {
    int nfam, nmod;
    double *alpha, *exp_r, *xp, *pxp; /* nfam (alpha, xp, pxp NaN for FFX) */
    double bor;                       /* NaN for FFX */
    double *model_post;               /* nmod: model posterior (FFX) or exp_r (RFX) */
    int converged;
} dcm_bms_family_result;

int dcm_bms_family(const double *lme, int nsub, int nmod, const int *fam, int nfam, int rfx,
                   dcm_bms_family_result *out, dcm_error *err);
void dcm_bms_family_result_free(dcm_bms_family_result *r);

/* ------------------------------------------------------------ Pp */

/* The posterior probability that each parameter exceeds its prior mean in
 * size, as SPM: Pp = 1 - Phi((pE - |Ep|) / sd) with sd = sqrt(Cp(i,i));
 * NaN for parameters fixed a priori (pV = 0) or with no posterior
 * variance. Cp is np x np. */
void dcm_posterior_probability(int np, const double *Ep, const double *Cp, const double *pE,
                               const double *pV, double *Pp);

/* ------------------------------------------------------------ BMR */

/* Bayesian model reduction (spm_log_evidence_reduce): the full model has
 * prior N(pE, pC) and posterior N(qE, qC); the reduced one prior N(rE, rC)
 * (all n x n). *dF = ln p(y|reduced) - ln p(y|full); sE (n) and sC (n x n)
 * receive the reduced posterior when not NULL. */
int dcm_bmr_reduce(int n, const double *qE, const double *qC, const double *pE, const double *pC,
                   const double *rE, const double *rC, double *dF, double *sE, double *sC,
                   dcm_error *err);

/* The same for the common case: a diagonal prior (variances pV) and the
 * parameters with off[i] != 0 switched off (prior variance 0, mean kept). */
int dcm_bmr_switch_off(int n, const double *Ep, const double *Cp, const double *pE,
                       const double *pV, const unsigned char *off, double *dF, double *sE,
                       double *sC, dcm_error *err);

/* Greedy search over reduced models (in the spirit of spm_dcm_bmr_all),
 * with the models scored averaged (BMA, weights exp(dF)). candidates (n,
 * NULL = all with prior variance > 0) may be switched off. */
typedef struct {
    int n;
    unsigned char *keep;  /* n: free in the selected model */
    double dF;            /* F(selected) - F(full), >= 0 */
    double *Ep, *Cp;      /* the selected model's posterior (n, n x n) */
    double *Ep_bma;       /* n: BMA of the posterior mean */
    double *Cp_bma;       /* n x n: BMA covariance */
    double *Pp;           /* n: posterior probability that each parameter is present */
    int nmodels;          /* models scored */
    int nremoved;         /* parameters switched off in the selected model */
} dcm_bmr_search_result;

int dcm_bmr_search(int n, const double *qE, const double *qC, const double *pE, const double *pC,
                   const unsigned char *candidates, dcm_bmr_search_result *out, dcm_error *err);
void dcm_bmr_search_result_free(dcm_bmr_search_result *r);

/* ------------------------------------------------------------ BMA */

/* Bayesian model averaging of k models of the same data (the one BMA of
 * the library; dcm_bmr_search uses the same). Model i has free energy F[i],
 * posterior mean Ep[i] (np) and covariance Cp[i] (np x np, only its
 * diagonal is used). Weights w_i = exp(F_i) / sum exp(F); with occam > 0
 * only models within occam of the best are averaged (Occam's window).
 * Outputs: weights (k), mean (np) and var (np): the mixture's mean and
 * variance sum_i w_i (Vp_i + Ep_i^2) - mean^2. On DCM_ERR_NUMERIC,
 * *bad_model (a non-finite F) or *bad_param (an average not finite) says
 * which, else they are -1; either pointer may be NULL. */
int dcm_bma(int k, int np, const double *F, const double *const *Ep, const double *const *Cp,
            double occam, double *weights, double *mean, double *var, int *bad_model,
            int *bad_param, dcm_error *err);

/* The mean over nsub subjects of rows of X (nsub x np) and the squared
 * standard error of that mean (0 for one subject): the group average of
 * subjects' BMAs. *bad_param as for dcm_bma. */
int dcm_group_mean(int nsub, int np, const double *X, double *mean, double *se2, int *bad_param,
                   dcm_error *err);

/* ------------------------------------------------------------ PEB */

typedef struct {
    int nsub;          /* subjects (> 1) */
    int np;            /* parameters per subject */
    const double *Ep;  /* nsub x np: first-level posterior means */
    const double *Cp;  /* nsub x np x np: posterior covariances */
    const double *pE;  /* nsub x np: prior means */
    const double *pV;  /* nsub x np: prior variances */
    const double *F;   /* nsub: free energies (NULL: zeros) */
    const int *sel;    /* nsel parameter indices (0-based) treated as random effects */
    int nsel;
    const double *X;   /* nsub x nx design (row-major); NULL: a constant */
    int nx;
    int single;        /* 1: one between-subject precision (SPM's default);
                          0: one per parameter (SPM's M.Q = 'all');
                          used when q is DCM_PEB_Q_FROM_SINGLE (0) */
    /* SPM's other M fields; 0 (as zero-initialised) means SPM's default */
    int q;             /* DCM_PEB_Q_*: precision components (SPM's M.Q) */
    const int *field;  /* q = DCM_PEB_Q_FIELDS: field[k] in 0..nfield-1 is the
                          component of selected parameter k (nsel values) */
    int nfield;
    int maxit;         /* <= 0: 64 (SPM's M.maxit; the PEB tutorial uses 256) */
    double alpha;      /* <= 0: 1 (group-mean prior covariance pC / alpha) */
    double beta;       /* <= 0: 16 (random-effect prior covariance pC / beta) */
    double hE;         /* prior mean of the log-precisions (SPM: 0) */
    double hC;         /* <= 0: 1/16, their prior variance */
} dcm_peb_input;

/* dcm_peb_input.q */
enum {
    DCM_PEB_Q_FROM_SINGLE = 0, /* as the `single` field says */
    DCM_PEB_Q_SINGLE = 1,      /* one component for all (SPM's default 'single') */
    DCM_PEB_Q_FIELDS = 2,      /* one per field ('fields'; see field, nfield) */
    DCM_PEB_Q_ALL = 3          /* one per parameter ('all') */
};

typedef struct {
    int np, nx, ng;    /* selected parameters, covariates, precision components */
    int *sel;          /* np: their indices */
    double *Ep;        /* np x nx: group effects */
    double *Cp;        /* (np nx)^2: covariance of vec(Ep), parameters fastest */
    double *Eh, *Ch;   /* ng, ng x ng: between-subject log-precisions */
    double *Ce;        /* np x np: expected between-subject covariance */
    double F;          /* free energy of the group model */
    int iterations;
    int converged;     /* 0: stopped at maxit before SPM's stopping rule */
} dcm_peb_result;

/* Parametric Empirical Bayes as spm_dcm_peb (no subject is refitted). */
int dcm_peb(const dcm_peb_input *in, dcm_peb_result *out, dcm_error *err);
void dcm_peb_result_free(dcm_peb_result *r);

/* Per group effect k = q + j*np (parameter q, covariate j): mean, variance,
 * and the probability that it is present from reducing it alone
 * (Savage-Dickey against its prior variance pV[sel[q]] scaled as the
 * covariate's prior): dF[k] = F(without) - F(with), prob = 1/(1+exp(dF)).
 * X is the design given to dcm_peb (NULL: a constant), pV np prior
 * variances. Arrays of np*nx; any may be NULL. */
void dcm_peb_effects(const dcm_peb_result *P, const double *X, int nsub, const double *pV,
                     double *mean, double *var, double *dF, double *prob);

/* Bayesian model reduction over the group effects (greedy search with
 * BMA), under the group prior PEB uses: mean pE for the intercept (0 for
 * the other covariates), variance pV scaled by nsub / sum(X(:,j)^2). */
int dcm_peb_reduce(const dcm_peb_result *P, const double *X, int nsub, const double *pE,
                   const double *pV, dcm_bmr_search_result *out, dcm_error *err);

/* The search spm_dcm_peb_bmc runs on a PEB with no model space
 * (spm_dcm_bmr_all over every group effect; see vl_peb_bmr_all): the
 * group prior is SPM's PEB.M (mean pE for the first covariate, 0 for the
 * others; variance pV / alpha scaled by nsub / sum(X(:,j)^2); alpha <= 0:
 * 1). Per group effect k = q + j*np: the Bayesian model average's mean
 * (Ep), variance (Vp) and the posterior probability that it is present
 * (Pp; 0 for an effect switched off, whose mean is then 0). */
typedef struct {
    int n;                 /* np * nx */
    double *Ep, *Vp, *Pp;  /* n each */
    int nmodels;           /* reduced models scored */
} dcm_peb_search_result;

int dcm_peb_search(const dcm_peb_result *P, const double *X, int nsub, const double *pE,
                   const double *pV, double alpha, dcm_peb_search_result *out, dcm_error *err);
void dcm_peb_search_result_free(dcm_peb_search_result *r);

/* Subject i's posterior (sE, np) and its evidence change (*dF) under the
 * empirical prior of the group: mean X(i,:) Ep, covariance Ce on the
 * selected parameters, its own prior elsewhere. Ep, Cp, pE, pV: that
 * subject's first-level moments (np, np x np, np, np). */
int dcm_peb_subject_posterior(const dcm_peb_result *P, const double *Xi, int np, const double *Ep,
                              const double *Cp, const double *pE, const double *pV, double *sE,
                              double *dF, dcm_error *err);

#ifdef __cplusplus
}
#endif

#endif
