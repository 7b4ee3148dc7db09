/* dcm_evidence.h — the sampled log evidence of an estimated task DCM
 * (issue 16): the glue between a result file, its spec and the generic
 * sampler vl_evidence (vl/vl_evidence.h).
 *
 * Contract
 * - dcm_evidence_run() reads RESULT (io_result_load_doc), re-builds the model
 *   from the spec the result names (its "spec", as written, else relative to
 *   the result's folder; or spec_override) with dcm_fmri_model_build — the
 *   very vl_model dcm_estimate inverted: the same detrended and scaled data,
 *   priors, noise components, confounds and BOLD prediction — checks that it
 *   is the same model and data (parameter count, fingerprint of the scaled
 *   data) and runs vl_evidence with the result's posterior (Ep, Cp,
 *   noise_log_precision) as the Laplace approximation that shapes the
 *   proposals. One model state per thread.
 * - Task (time-series) DCMs only: spectral and regression results are
 *   refused with DCM_ERR_INPUT saying so.
 * - Errors: DCM_ERR_INPUT naming the file and what does not match,
 *   DCM_ERR_NUMERIC when the model cannot be evaluated, DCM_ERR_SYSTEM
 *   without memory. Never prints.
 */
#ifndef DCM_EVIDENCE_H
#define DCM_EVIDENCE_H

#include "dcm/dcm_api.h"
#include "vl/vl_evidence.h"

typedef struct {
    vl_evidence_result *ev;   /* the sampler's result */
    double F;                 /* the result's free energy */
    double seconds, cpu_seconds;
    int np;
    char **names;             /* np parameter names (io_pname_name) */
    double *laplace_mean, *laplace_sd; /* np: the result's Ep, sqrt(diag Cp) */
    double *prior_var;        /* np: 0 for fixed parameters */
    int nh;
    double *laplace_h;        /* nh: the result's noise_log_precision */
    char *spec;               /* the spec that was used */
} dcm_evidence_out;

int dcm_evidence_run(const char *result_path, const char *spec_override,
                     const vl_evidence_options *o, dcm_evidence_out *out, dcm_error *err);
void dcm_evidence_out_free(dcm_evidence_out *out);

/* The identity of a result file for the evidence file written from it
 * (dcm evidence -o) and matched to it by dcm report --evidence: FNV-1a
 * 64 of the file's bytes as 16 lower-case hex digits in hex[17]. A
 * result re-estimated since no longer matches. DCM_ERR_INPUT when the
 * file cannot be read. */
int dcm_evidence_file_hash(const char *path, char hex[17], dcm_error *err);

#endif
