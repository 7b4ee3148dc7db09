/* vl_bms.h — Bayesian model selection over a table of log-evidences.
 *
 * Contract
 * - lme is an nsub x nmod table, row-major (lme[i*nmod + k] is subject i's
 *   log-evidence for model k), as SPM's spm_BMS takes it.
 * - Fixed effects (vl_bms_ffx): the group log-evidence of a model is the
 *   sum of its subjects' log-evidences; with model priors it gives posterior
 *   model probabilities and log Bayes factors against the best model.
 * - Random effects (vl_bms_rfx): the hierarchical model of Stephan et al.
 *   (2009): model frequencies r ~ Dir(alpha0), each subject's model drawn
 *   from r. A mean-field variational posterior q(r) = Dir(alpha) times
 *   per-subject assignment probabilities g is iterated as SPM12's spm_BMS
 *   does (stop when |alpha - alpha_prev|_2 <= tol; SPM uses 1e-3). It
 *   returns alpha, the expected frequencies exp_r, the exceedance
 *   probabilities xp (P(r_k is the largest)), the Bayesian omnibus risk bor
 *   (Rigoux et al. 2014: the posterior probability of the null hypothesis
 *   that all frequencies are equal, from the free energies of the null and
 *   of the variational posterior, as spm_BMS_bor) and the protected
 *   exceedance probabilities pxp = (1 - bor) xp + bor / nmod.
 * - Exceedance probabilities are deterministic: exact (Beta CDF) for two
 *   models, and for more by quadrature of
 *       xp_k = int p_Gamma(x; alpha_k) prod_{j != k} P_Gamma(x; alpha_j) dx
 *   (a Dirichlet vector is a normalised vector of independent Gamma
 *   variates) in s = log x. All K integrals share one set of nodes: the
 *   product over all models, L(s) = sum_j log P_j(s), is computed once per
 *   node and each model's integrand divides its own factor out, so the
 *   cost is O(K) per node, not O(K^2) (800 models: 0.1 s).
 *   Panels start no wider than 2 sd of the narrowest log-Gamma density and
 *   are bisected until a 20- and a 10-point Gauss rule agree (to 1e-12
 *   absolute or 1e-10 of the panel's value; at most 1e5 panels);
 *   accurate to ~1e-12 and exactly reproducible. SPM samples 1e6
 *   Dirichlet vectors instead (spm_dirichlet_exceedance), so its xp for
 *   > 2 models carry Monte Carlo noise of ~5e-4.
 * - Families (vl_bms_family): models are partitioned into families; see
 *   the function for the priors used.
 * - Status: every function returns a vl_status (vl/vl_status.h): VL_OK,
 *   VL_ERR_INPUT (bad sizes, partition, options or priors), VL_ERR_NONFINITE
 *   (NaN or Inf in the log-evidences, or a sum that overflows),
 *   VL_ERR_NOMEM, or VL_WARN_NOCONV (the VB iteration or the quadrature
 *   stopped at its limit: results are filled in, but flagged). Never
 *   raised; no global state: every call is thread-safe.
 */
#ifndef VL_BMS_H
#define VL_BMS_H

#include "vl/vl_status.h"

/* Fixed effects. slme (nmod, optional): summed log-evidence per model;
 * post (nmod, optional): posterior model probabilities under the model
 * prior `prior` (nmod, non-negative, NULL = uniform; normalised here);
 * logbf (nmod, optional): slme[k] - max slme, i.e. the log Bayes factor of
 * each model against the best (<= 0). Returns VL_OK or an error. */
int vl_bms_ffx(const double *lme, int nsub, int nmod, const double *prior,
               double *slme, double *post, double *logbf);

/* Random-effects options; a NULL pointer means all defaults. */
typedef struct {
    const double *alpha0; /* prior counts (nmod); NULL = all ones (SPM) */
    double tol;           /* <= 0: SPM's 1e-3 on the 2-norm of the change
                             in alpha between iterations */
    int max_iter;         /* <= 0: 10000 */
} vl_bms_opts;

typedef struct {
    int nsub, nmod;
    double *alpha;  /* nmod: posterior Dirichlet counts */
    double *exp_r;  /* nmod: expected model frequencies alpha / sum(alpha) */
    double *xp;     /* nmod: exceedance probabilities */
    double *pxp;    /* nmod: protected exceedance probabilities */
    double *g;      /* nsub x nmod row-major: posterior probability that
                       subject i's data came from model k (the assignment
                       of the last iteration, as spm_BMS keeps it) */
    double bor;     /* Bayesian omnibus risk */
    double F0, F1;  /* free energies of the null and of the RFX posterior */
    int iterations;
} vl_bms_rfx_result;

/* Random-effects BMS. `out` is filled with freshly allocated arrays (free
 * them with vl_bms_rfx_result_free, also after an error, which leaves them
 * NULL). Returns VL_OK, VL_WARN_NOCONV (max_iter reached; results are
 * those of the last iteration) or an error. */
int vl_bms_rfx(const double *lme, int nsub, int nmod, const vl_bms_opts *opts,
               vl_bms_rfx_result *out);
void vl_bms_rfx_result_free(vl_bms_rfx_result *r);

/* Exceedance probabilities of a Dirichlet(alpha) vector of length K:
 * xp[k] = P(r_k > r_j for all j != k). K = 1 gives 1; K = 2 uses the Beta
 * CDF; K > 2 shared-node quadrature (see above). Returns VL_OK,
 * VL_ERR_INPUT (K < 1 or alpha not positive and finite) or
 * VL_WARN_NOCONV if the quadrature missed its tolerance (xp still set). */
int vl_dirichlet_exceedance(const double *alpha, int K, double *xp);

/* Bayesian omnibus risk and the two free energies for a given variational
 * posterior (alpha, g as in vl_bms_rfx_result) and prior counts alpha0,
 * over models (fam == NULL) or, if fam (nmod entries, family index
 * 0..nfam-1) is given, under the family null hypothesis that every family
 * is equally frequent with its share spread evenly over its members
 * (spm_BMS_bor with its C argument). Any of bor, F0, F1 may be NULL. */
int vl_bms_bor(const double *lme, int nsub, int nmod, const double *alpha,
               const double *g, const double *alpha0, const int *fam,
               int nfam, double *bor, double *F0, double *F1);

/* Family-level inference. fam[k] in 0..nfam-1 is model k's family; every
 * family must have at least one member.
 *
 * Fixed effects (rfx = 0), as spm_compare_families 'FFX': families are
 * equally likely a priori and a family's prior is spread evenly over its
 * members (model prior 1/(nfam * size)); model posteriors from the summed
 * log-evidences; a family's posterior is the sum over its members.
 * exp_r holds the family posterior probabilities, model_post the model
 * posteriors; alpha, xp, pxp, bor are left NaN.
 *
 * Random effects (rfx = 1): SPM's default 'F-unity' prior: each family has
 * one prior count, spread evenly over its members (model alpha0 = 1/size).
 * The model-level posterior q(r) = Dir(alpha) is computed by the same VB
 * scheme as vl_bms_rfx (SPM samples it with spm_BMS_gibbs instead). Because
 * sums of Dirichlet components over a partition are again Dirichlet, the
 * family frequencies are exactly Dir(alpha_f) with alpha_f = sum of the
 * members' alpha: hence family exp_r, and exact exceedance probabilities
 * (no sampling). bor uses the family null (spm_BMS_bor with C) and
 * pxp = (1 - bor) xp + bor / nfam. model_post holds the model-level exp_r.
 */
typedef struct {
    int nfam, nmod;
    double *alpha;      /* nfam: family Dirichlet counts (RFX) */
    double *exp_r;      /* nfam: expected family frequencies (RFX) or
                           family posterior probabilities (FFX) */
    double *xp, *pxp;   /* nfam (RFX) */
    double bor;         /* RFX */
    double *model_alpha0; /* nmod: model prior counts used (RFX) */
    double *model_alpha;  /* nmod: model posterior counts (RFX) */
    double *model_post;   /* nmod: model exp_r (RFX) or posterior (FFX) */
} vl_bms_family_result;

int vl_bms_family(const double *lme, int nsub, int nmod, const int *fam,
                  int nfam, int rfx, const vl_bms_opts *opts,
                  vl_bms_family_result *out);
void vl_bms_family_result_free(vl_bms_family_result *r);

#endif
