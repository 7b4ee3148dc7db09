/* dcm_library.c — the public entry points that are not the estimator:
 * version, loading a problem from a file, result accessors, and the one
 * process-wide set-up a library caller should not have to know about
 * (see include/dcm/dcm.h). */
#include "dcm/dcm_api.h"

#include <pthread.h>
#include <string.h>

#include "io/io_mat.h"
#include "io/io_spec.h"
#include "vl/vl_linalg.h"
#include "vl/vl_status.h"

/* OpenBLAS's own threads only add overhead on the small matrices of one
 * DCM; parallelism belongs to the caller (one estimate per thread). */
extern void openblas_set_num_threads(int);

static pthread_once_t library_once = PTHREAD_ONCE_INIT;

static void library_setup(void)
{
    vl_init();                    /* GSL: return codes, not abort() */
    openblas_set_num_threads(1);
}

void dcm_library_init(void)
{
    pthread_once(&library_once, library_setup);
}

const char *dcm_version(void)
{
    return DCM_VERSION_STRING;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls > lx && !strcmp(s + ls - lx, suffix);
}

int dcm_problem_load(const char *spec_path, dcm_problem **P, dcm_error *err)
{
    dcm_library_init();
    if (!P)
        return dcm_error_set(err, DCM_ERR_USAGE, "dcm_problem_load: no place for the problem (P is NULL)");
    *P = NULL;
    if (!spec_path)
        return dcm_error_set(err, DCM_ERR_USAGE, "dcm_problem_load: no spec file named");
    return has_suffix(spec_path, ".mat") ? io_mat_load_dcm(spec_path, P, err)
                                         : io_spec_load(spec_path, P, err);
}

double dcm_result_free_energy(const dcm_result *R)
{
    return R ? R->F : 0.0 / 0.0;
}

int dcm_error_from_vl(int vl_status, const char *context, const char *detail, dcm_error *err)
{
    int code;
    switch (vl_status) {
    case VL_OK:
    case VL_WARN_NOCONV:
        return DCM_OK;
    case VL_ERR_INPUT: code = DCM_ERR_INPUT; break;
    case VL_ERR_NOMEM: code = DCM_ERR_SYSTEM; break;
    default: code = DCM_ERR_NUMERIC; break;
    }
    const char *what = detail && detail[0] ? detail : vl_status_str(vl_status);
    if (context && context[0])
        return dcm_error_set(err, code, "%s: %s", context, what);
    return dcm_error_set(err, code, "%s", what);
}
