/* dcm_peb_space.h — hypothesis-based comparison of reduced group (PEB)
 * models, as SPM12's spm_dcm_peb_bmc(PEB, models) and families of them,
 * as spm_dcm_peb_bmc_fam.
 *
 * Contract
 * - A model space is K (nm x np, row-major, 1 = on): each row switches the
 *   PEB's np parameters on or off. The joint space is commonalities (the
 *   first covariate) x differences (the second): joint model (i, j) has
 *   row i of K on the first covariate's effects, row j on the second's,
 *   every other covariate's effects on (SPM: k = [K(i,:) K(j,:) 1 ...]).
 *   With one covariate there is one factor (nd = 1).
 * - Each joint model is a Bayesian model reduction of the PEB posterior
 *   (vl_bmr_reduce) under SPM's group prior PEB.M: mean pE for the first
 *   covariate, 0 for the others; variance pV / alpha scaled by
 *   nsub / sum(X(:,j)^2). A switched-off effect gets reduced prior mean 0
 *   and variance 0 (SPM: rE = R pE, rC = R pC R).
 * - Rows of K that repeat an earlier row are not compared again (SPM's
 *   unique(K,'rows') in order of first appearance): dcm_peb_space_unique
 *   gives the rows kept; callers pass the kept rows.
 * - Posterior over joint models: softmax of F (uniform prior). Marginals:
 *   Pc (commonalities, row sums), Pd (differences, column sums). Per
 *   parameter, SPM's Pw / Px: the mean posterior of the models with it on
 *   over (that + the mean with it off), for each factor. The Bayesian
 *   model average is over the joint models within 8 of the best F
 *   (SPM's Occam's window, spm_dcm_bma): the mixture's exact mean and
 *   variance (SPM averages 1000 samples of it). Pp of an effect: the
 *   posterior probability of the joint models with it on.
 * - Families (spm_dcm_peb_bmc_fam): fam[m] in 0..nfam-1 for each model;
 *   every family has the same prior (1/nfam), shared equally by its models,
 *   in both factors; the joint family posterior Pf(a, b) sums the model
 *   posteriors under those priors; BMA option ALL (the space's BMA: SPM
 *   weighs the window's models by F alone), WINNING (the models of the
 *   most probable family pair within 8 of the best F), NONE.
 * - Errors through dcm_error: DCM_ERR_INPUT (sizes, an empty space, a
 *   family with no model), DCM_ERR_NUMERIC (a non-finite F or average),
 *   DCM_ERR_SYSTEM (memory). Results own their arrays: free with the
 *   matching *_free (also after an error). No global state.
 */
#ifndef DCM_PEB_SPACE_H
#define DCM_PEB_SPACE_H

#include "dcm/dcm_api.h"

typedef struct {
    int nm, np, nx;   /* models, PEB parameters, covariates */
    int nc, nd;       /* models per factor: commonalities nm, differences nm (nx > 1) or 1 */
    int n;            /* group effects np * nx (k = q + j * np) */
    unsigned char *K; /* nm x np: copy of the model space */
    double *F;        /* nc x nd: log-evidence of each joint model minus the full PEB's */
    double *P;        /* nc x nd: posterior probability */
    double *Pc, *Pd;  /* nc, nd: marginals (commonalities, differences) */
    double *Pw, *Px;  /* np: SPM's per-parameter posteriors (commonalities, differences);
                         Px is NULL when nd = 1 */
    double *sE, *sV;  /* (nc nd) x n: each joint model's posterior means and variances */
    double *Ep, *Vp, *Pp; /* n: Bayesian model average (window of 8) and presence */
    unsigned char *in_bma; /* nc x nd: 1 for the models averaged */
    int nbma;
    int best_c, best_d;   /* the most probable joint model */
} dcm_peb_space_result;

/* keep[m] = 1 for the first appearance of each distinct row of K (nm x
 * np), dup_of[m] = the earlier row it repeats (-1 when kept). Returns the
 * rows kept. */
int dcm_peb_space_unique(const unsigned char *K, int nm, int np, unsigned char *keep, int *dup_of);

/* The joint space over a PEB (dcm_peb's result P on design X, nsub rows;
 * pE, pV the first-level prior means and variances over all parameters,
 * indexed by P->sel; alpha: M.alpha, <= 0 means 1). */
int dcm_peb_space(const dcm_peb_result *P, const double *X, int nsub, const double *pE,
                  const double *pV, double alpha, const unsigned char *K, int nm,
                  dcm_peb_space_result *out, dcm_error *err);
void dcm_peb_space_result_free(dcm_peb_space_result *r);

enum { DCM_PEB_FAM_BMA_ALL = 0, DCM_PEB_FAM_BMA_WINNING = 1, DCM_PEB_FAM_BMA_NONE = 2 };

typedef struct {
    int nfam, nc, nd;      /* families; the space's nc, nd */
    int nfd;               /* families of the differences factor: nfam (nd > 1) or 1 */
    double *family_prior;  /* nfam: 1 / nfam */
    double *model_prior;   /* nc x nd */
    double *model_post;    /* nc x nd */
    double *Pf;            /* nfam x nfd: joint family posterior */
    double *Pfc, *Pfd;     /* nfam, nfd: family posterior of each factor */
    double *Pw, *Px;       /* np: as the space's, under the family priors (Px NULL if nd = 1) */
    int bma;               /* DCM_PEB_FAM_BMA_* */
    int win_c, win_d;      /* the most probable family pair */
    double *Ep, *Vp;       /* n: the BMA (NULL for NONE or when no model qualifies) */
    unsigned char *in_bma; /* nc x nd (NULL for NONE) */
    int nbma;
} dcm_peb_family_result;

int dcm_peb_families(const dcm_peb_space_result *S, const int *fam, int nfam, int bma,
                     dcm_peb_family_result *out, dcm_error *err);
void dcm_peb_family_result_free(dcm_peb_family_result *r);

#endif
