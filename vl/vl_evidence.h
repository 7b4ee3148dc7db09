/* vl_evidence.h — the log evidence of a vl_model by sampling: thermodynamic
 * integration over power posteriors with parallel tempering (issue 16).
 *
 * Contract
 * - The model is the engine's (vl_nlsi.h): the same Gaussian prior on theta
 *   (diagonal pV or full pC: sampled in the prior's eigen-subspace, as the
 *   engine works), the same likelihood y = g(theta) + X0 beta + e,
 *   e ~ N(0, Sigma(h)), the same log-normal hyperprior on h and the same
 *   near-flat prior N(0, 1e8) on the confound coefficients beta. What is
 *   estimated is log p(y|m) = log ∫ p(y|theta,beta,h) p(theta) p(beta) p(h):
 *   beta is integrated out in closed form (the model is linear in beta),
 *   theta and h by Monte Carlo. With sample_h = 0, h is fixed at the given
 *   Eh and the value is log p(y|m, h = Eh) instead (stated in the result).
 *   Real or complex data, as the engine counts them (complex: quadratic forms
 *   over real and imaginary parts, log|W| and 2 pi once per value).
 * - Method (VL_EV_TI): temperatures beta_k = (k/(K-1))^power, k = 0..K-1;
 *   one Metropolis chain per temperature on p(y|.)^beta_k p(.) with
 *   Gaussian proposals whose covariance is the Laplace approximation of
 *   that power posterior, (beta_k (Pi - Pi0) + Pi0)^-1 (Pi the Laplace
 *   posterior precision, Pi0 the prior's), scaled by a factor adapted
 *   during burn-in only (Robbins-Monro towards acceptance 0.25); beta_0 = 0
 *   is sampled exactly (independent prior draws). After each sweep,
 *   neighbouring temperatures propose to swap states (even pairs, then odd
 *   pairs). log p(y|m) = ∫_0^1 E_beta[log p(y|.)] dbeta, each segment
 *   evaluated by the stepping-stone identity (Xie et al. 2011)
 *   log Z_{k+1}/Z_k = log E_k[exp((beta_{k+1} - beta_k) log p(y|.))], which
 *   has no discretisation error for any schedule (the trapezoid rule has:
 *   near beta = 0 the mean log likelihood falls by orders of magnitude);
 *   the trapezoid with the variance correction of Friel, Hurn & Wyse
 *   (2014), - sum dbeta^2 / 12 (Var_{k+1} - Var_k), is reported beside it.
 *   VL_EV_AIS: annealed importance sampling along the same schedule, one
 *   Metropolis move per temperature per particle, samples particles per
 *   replica; its estimate is log mean of the importance weights.
 * - Paths. VL_EV_PATH_PRIOR is the classical one above: the ladder runs
 *   from the prior (beta 0) to the posterior, tilting by U = log p(y|.).
 *   VL_EV_PATH_LAPLACE (default) runs from a reference q = N(Laplace mean,
 *   ref_inflate x Laplace covariance) instead: targets
 *   [p(y|.) p(.)]^beta q(.)^(1-beta), tilting by U = log p(y|.) p(.)/q(.),
 *   and the same identities give log p(y|m) (Z_0 = 1 as q is normalised;
 *   "referenced TI", Lefebvre et al. 2010; the generalised stepping stone
 *   of Fan et al. 2011). Where the prior is far broader than the
 *   posterior (DCM: a KL of tens to hundreds of nats) the prior path needs
 *   hundreds of temperatures for a standard error below 1 nat; the
 *   Laplace path measures only what the Gaussian misses, which is the gap.
 *   Both are exact: they differ in variance, not in what they estimate.
 * - Uncertainty: `chains` independent replicas (each a whole ladder, or a
 *   set of AIS particles), each with its own random stream (splitmix64 of
 *   (seed, replica) seeding xoshiro256**); the estimate is their mean and
 *   the standard error their sd / sqrt(chains). Replicas run in `threads`
 *   threads, each with its own model user pointer (users[t]); results do
 *   not depend on the number of threads, only on the seed.
 * - Predictions that fail (predict < 0 or non-finite; with reject_flagged
 *   also predict > 0, e.g. a diverging system) have likelihood 0 (where a
 *   model diverges its likelihood is negligible anyway, exp(-1e6) or less):
 *   the prior restricted to the models that can be evaluated is used at
 *   beta = 0 and its mass (counted among the prior draws) is added in log.
 * - No global state; errors are vl_status codes with a message.
 */
#ifndef VL_EVIDENCE_H
#define VL_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "vl/vl_nlsi.h"

enum { VL_EV_TI = 0, VL_EV_AIS = 1 };
enum { VL_EV_PATH_LAPLACE = 0, VL_EV_PATH_PRIOR = 1 };

typedef struct {
    int method;        /* VL_EV_TI or VL_EV_AIS */
    int temperatures;  /* K >= 2 */
    double power;      /* schedule exponent (5) */
    int samples;       /* TI: kept sweeps per replica; AIS: particles per replica */
    int burnin;        /* TI: sweeps of adaptation before (not kept) */
    int chains;        /* independent replicas (>= 2 for an SE) */
    int threads;       /* >= 1; at most chains are used */
    uint64_t seed;
    int sample_h;      /* 1: h sampled; 0: fixed at Eh */
    int keep_samples;  /* 1: keep the beta = 1 samples of theta (result->samples) */
    int reject_flagged; /* 1: a flagged prediction (predict > 0) has likelihood 0 */
    int path;          /* VL_EV_PATH_LAPLACE (default) or VL_EV_PATH_PRIOR, see the contract */
    double ref_inflate; /* Laplace path: q's covariance = ref_inflate x the Laplace one (1.44) */
} vl_evidence_options;

typedef struct {
    int np, nh, K, chains, nkept;
    int sample_h;
    double log_evidence, se;     /* stepping-stone sum over the ladder (TI), or AIS */
    double log_evidence_trapezoid, se_trapezoid; /* TI: corrected trapezoid (NaN for AIS) */
    double *chain_log_evidence;  /* chains */
    double *beta;                /* K temperatures */
    double *mean_loglik;         /* K: E_beta[U] over replicas (U: the energy, see the contract) */
    double *var_loglik;          /* K: Var_beta[U] */
    double accept_rate;          /* Metropolis acceptance, all temperatures > 0 */
    double accept_rate_top;      /* at beta = 1 */
    double swap_rate;            /* neighbour swaps accepted */
    double rhat;                 /* split R-hat of log p(y|.) at beta = 1 over replicas */
    double rhat_max;             /* the largest over the temperatures > 0 */
    double invalid_prior_mass;   /* prior draws whose prediction failed */
    long evaluations;            /* likelihood evaluations (model predictions) */
    double *post_mean, *post_sd; /* np: theta at beta = 1, pooled (TI; AIS: weighted) */
    double *post_mean_h;         /* nh (h at beta = 1; Eh when fixed) */
    double *mcse_mean;           /* np: Monte-Carlo SE of post_mean (between replicas) */
    double *samples;             /* keep_samples: nkept x np theta at beta = 1, row-major */
} vl_evidence_result;

/* Defaults: TI, K 16, power 5, 1000 samples, 300 burn-in, 4 chains, 1
 * thread, seed 1, h sampled, no samples kept. */
void vl_evidence_defaults(vl_evidence_options *o);

/* model: as for the engine (model->user is unused: users[t] serves thread t,
 * each a state the model's predict can use concurrently with the others).
 * y: the data; Ep (np), Cp (np x np row-major), Eh (nh): the Laplace
 * posterior (e.g. vl_result's), used for the proposals and the starting
 * points, and Eh for h when it is fixed. */
int vl_evidence(const vl_model *model, void *const *users, const double *y,
                const double *Ep, const double *Cp, const double *Eh,
                const vl_evidence_options *o, vl_evidence_result **out,
                char *errbuf, size_t errlen);
void vl_evidence_result_free(vl_evidence_result *R);

/* log p(y | theta, h) with beta integrated out (the sampler's likelihood),
 * for tests and callers; -INFINITY when the prediction fails. */
double vl_evidence_loglik(const vl_model *model, void *user, const double *y,
                          const double *theta, const double *h);

#endif
