/* vl_status.h — the one error convention of the engine layer (vl/).
 *
 * Contract
 * - Every vl_ function that can fail returns a vl_status: VL_OK (0) or a
 *   positive VL_ERR_* code. Messages, where a function takes an errbuf, say
 *   what went wrong in the engine's own terms (sizes, non-finite values,
 *   no convergence); nothing here knows about brains. The library maps a
 *   status to its dcm_error in one place (dcm_error_from_vl, dcm/dcm_api.h),
 *   which adds what the user should check.
 * - VL_WARN_NOCONV is not a failure: the results are set, but an iteration
 *   or a quadrature stopped at its limit; callers report it as a warning.
 */
#ifndef VL_STATUS_H
#define VL_STATUS_H

typedef enum {
    VL_OK = 0,
    VL_ERR_INPUT = 1,      /* bad sizes, arguments, options or priors */
    VL_ERR_DIVERGED = 2,   /* the ascent could not find a finite F */
    VL_ERR_NOMEM = 3,      /* out of memory */
    VL_ERR_NONFINITE = 4,  /* NaN/Inf in the inputs, or a factorisation failed */
    VL_ERR_STOPPED = 5,    /* the caller's callback asked to stop, for loops that
                              have no result to give; vl_nlsi instead returns
                              VL_OK with result->stopped = 1 */
    VL_WARN_NOCONV = 6,    /* results set, but an iteration hit its limit */
    VL_ERR_MODEL = 7       /* the model's predict/jacobian callback failed or gave
                              non-finite values (or a sensitivity above exp(32)),
                              even after backing off */
} vl_status;

/* A short English phrase for a status ("out of memory"); never NULL. */
static inline const char *vl_status_str(int status)
{
    switch (status) {
    case VL_OK: return "success";
    case VL_ERR_INPUT: return "invalid input";
    case VL_ERR_DIVERGED: return "the inversion diverged";
    case VL_ERR_NOMEM: return "out of memory";
    case VL_ERR_NONFINITE: return "non-finite values or a failed factorisation";
    case VL_ERR_STOPPED: return "stopped by the caller";
    case VL_WARN_NOCONV: return "did not converge within its iteration limit";
    case VL_ERR_MODEL: return "the model could not be evaluated";
    default: return "unknown engine status";
    }
}

#endif
