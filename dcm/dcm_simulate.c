/* dcm_simulate.c — resting-state data for a spectral problem: the library
 * entry of `dcm simulate` on spectral specs (models/model_csd_sim.h holds
 * the generator), with its failures as dcm_errors. */
#include <math.h>

#include "dcm/dcm_api.h"
#include "models/model_csd_sim.h"

int dcm_simulate_csd(const dcm_problem *P, const double *theta, unsigned long seed, double snr,
                     double *y, dcm_error *err)
{
    const char *src = P && P->source ? P->source : "problem";
    if (!P || P->analysis != DCM_ANALYSIS_CSD)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: not a spectral DCM (\"analysis\": \"csd\"): "
                             "resting-state data are simulated from spectral problems only", src);
    int rc = dcm_problem_validate(P, err);
    if (rc)
        return rc;
    model_csd_sim_opts o;
    model_csd_sim_defaults(&o, P->M->TR, P->M->TE, P->v);
    o.seed = seed;
    if (snr > 0.0 && isfinite(snr))
        o.snr = snr;
    double max_re;
    switch (model_csd_simulate(P->n, theta, &o, y, NULL, &max_re)) {
    case MODEL_CSD_SIM_OK:
        return DCM_OK;
    case MODEL_CSD_SIM_UNSTABLE:
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "the network is unstable with these parameters: the Jacobian at rest has an "
                             "eigenvalue with real part %.4g >= 0 (1/s), so its activity would grow "
                             "without bound; weaken the connections (or make the self-connections more "
                             "negative)", max_re);
    case MODEL_CSD_SIM_DIVERGED:
        return dcm_error_set(err, DCM_ERR_NUMERIC,
                             "the simulation diverged (hidden states beyond 1e6 or not finite); check "
                             "the haemodynamic parameters and the connections");
    case MODEL_CSD_SIM_FLAT:
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "a region has no signal with these parameters, so an SNR cannot be set");
    case MODEL_CSD_SIM_NOMEM:
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    default:
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: the design or the parameters cannot be simulated (TR %g s, TE %g s, "
                             "%d scans; parameters must be finite)", src, P->M->TR, P->M->TE, P->v);
    }
}
