/* test_group.c — group-level inference against SPM12: Bayesian model
 * selection (spm_BMS), Bayesian model reduction (spm_log_evidence_reduce)
 * and Parametric Empirical Bayes (spm_dcm_peb). */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "tests/test_util.h"
#include "vl/vl_bmr.h"
#include "vl/vl_bms.h"
#include "vl/vl_peb.h"

static double max_abs_diff(const double *a, const double *b, int n)
{
    double d = 0.0;
    for (int i = 0; i < n; i++)
        d = fmax(d, fabs(a[i] - b[i]));
    return d;
}

static double sum(const double *a, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += a[i];
    return s;
}

/* ------------------------------------------------------------------ BMS */

static void test_bms_rfx_spm(void)
{
    char path[512];
    if (!test_shared_path("reference/attention/spm_bms_2models.json", path, sizeof path))
        return;
    json_t *root = test_load_json(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    json_t *lj = json_object_get(root, "lme");
    int nsub = (int)json_array_size(lj), nmod = 2;
    double lme[64];
    CU_ASSERT_FATAL(nsub > 0 && nsub * nmod <= 64);
    for (int i = 0; i < nsub; i++)
        CU_ASSERT_EQUAL(test_json_vec(json_array_get(lj, (size_t)i), lme + i * nmod, nmod), nmod);
    double alpha[2], exp_r[2], xp[2], pxp[2];
    test_json_vec(json_object_get(root, "alpha"), alpha, 2);
    test_json_vec(json_object_get(root, "exp_r"), exp_r, 2);
    test_json_vec(json_object_get(root, "xp"), xp, 2);
    test_json_vec(json_object_get(root, "pxp"), pxp, 2);
    double bor = json_number_value(json_object_get(root, "bor"));

    vl_bms_rfx_result r;
    CU_ASSERT_EQUAL_FATAL(vl_bms_rfx(lme, nsub, nmod, NULL, &r), VL_OK);
    double ea = max_abs_diff(r.alpha, alpha, 2), ee = max_abs_diff(r.exp_r, exp_r, 2);
    double ex = max_abs_diff(r.xp, xp, 2), ep = max_abs_diff(r.pxp, pxp, 2);
    double eb = fabs(r.bor - bor);
    printf("\n  |diff| vs spm_BMS: alpha %.1e exp_r %.1e xp %.1e pxp %.1e bor %.1e (%d VB "
           "iterations)\n", ea, ee, ex, ep, eb, r.iterations);
    CU_ASSERT(ea < 1e-4);
    CU_ASSERT(ee < 1e-4);
    CU_ASSERT(ex < 1e-4);
    CU_ASSERT(ep < 1e-4);
    CU_ASSERT(eb < 1e-4);
    vl_bms_rfx_result_free(&r);
    json_decref(root);
}

/* 10 subjects, 3 models: quadrature exceedance vs a fixed-seed Monte Carlo */
static const double lme3[30] = {
    -100.0, -101.5, -99.0,  -200.0, -197.0, -199.5, -150.0, -150.3, -152.0, -80.0, -83.0, -79.2,
    -300.0, -299.1, -301.0, -120.0, -121.0, -119.8, -90.0,  -88.0,  -90.5,  -60.0, -62.0, -61.0,
    -75.0,  -74.2,  -76.0,  -110.0, -113.0, -110.4};

static void mc_exceedance(const double *alpha, int K, long ns, double *xp)
{
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 20240611UL);
    double r[16];
    long cnt[16] = {0};
    for (long s = 0; s < ns; s++) {
        gsl_ran_dirichlet(rng, (size_t)K, alpha, r);
        int best = 0;
        for (int k = 1; k < K; k++)
            if (r[k] > r[best])
                best = k;
        cnt[best]++;
    }
    for (int k = 0; k < K; k++)
        xp[k] = (double)cnt[k] / (double)ns;
    gsl_rng_free(rng);
}

static void test_bms_rfx_3models(void)
{
    vl_bms_rfx_result r;
    CU_ASSERT_EQUAL_FATAL(vl_bms_rfx(lme3, 10, 3, NULL, &r), VL_OK);
    double mc[3];
    mc_exceedance(r.alpha, 3, 1000000, mc);
    double e = max_abs_diff(r.xp, mc, 3);
    printf("\n  alpha (%.4f %.4f %.4f) xp (%.5f %.5f %.5f) MC (%.5f %.5f %.5f) |diff| %.1e "
           "bor %.4f\n", r.alpha[0], r.alpha[1], r.alpha[2], r.xp[0], r.xp[1], r.xp[2], mc[0],
           mc[1], mc[2], e, r.bor);
    CU_ASSERT(e < 3e-3);
    CU_ASSERT(fabs(sum(r.xp, 3) - 1.0) < 1e-8);
    CU_ASSERT(fabs(sum(r.pxp, 3) - 1.0) < 1e-8);
    CU_ASSERT(fabs(sum(r.exp_r, 3) - 1.0) < 1e-12);
    CU_ASSERT(fabs(sum(r.alpha, 3) - 13.0) < 1e-9); /* nsub + sum(alpha0) */
    CU_ASSERT(r.bor > 0.0 && r.bor < 1.0);
    /* the posterior assignments sum to one per subject */
    for (int i = 0; i < 10; i++)
        CU_ASSERT(fabs(sum(r.g + 3 * i, 3) - 1.0) < 1e-12);
    vl_bms_rfx_result_free(&r);
}

/* Exceedance probabilities in awkward regimes: tiny and large counts, many
 * models; always compared with Monte Carlo and normalised. */
static void test_dirichlet_exceedance(void)
{
    static const double cases[][5] = {
        {0.2, 0.5, 1.0, 0, 0}, {200.0, 190.0, 205.0, 0, 0}, {3.0, 3.0, 3.0, 3.0, 0},
        {1.0, 0.05, 12.0, 2.5, 7.0}};
    static const int Ks[] = {3, 3, 4, 5};
    double worst = 0.0;
    for (size_t c = 0; c < sizeof Ks / sizeof Ks[0]; c++) {
        double xp[5], mc[5];
        CU_ASSERT_EQUAL(vl_dirichlet_exceedance(cases[c], Ks[c], xp), VL_OK);
        mc_exceedance(cases[c], Ks[c], 200000, mc);
        double e = max_abs_diff(xp, mc, Ks[c]);
        worst = fmax(worst, e);
        CU_ASSERT(e < 5e-3);
        CU_ASSERT(fabs(sum(xp, Ks[c]) - 1.0) < 1e-8);
    }
    /* symmetric case is exactly uniform */
    double xp[4];
    vl_dirichlet_exceedance(cases[2], 4, xp);
    for (int k = 0; k < 4; k++)
        CU_ASSERT(fabs(xp[k] - 0.25) < 1e-9);
    /* two models: Beta CDF; equal counts give 1/2 each */
    double a2[2] = {4.0, 4.0}, x2[2];
    CU_ASSERT_EQUAL(vl_dirichlet_exceedance(a2, 2, x2), VL_OK);
    CU_ASSERT(fabs(x2[0] - 0.5) < 1e-12 && fabs(x2[1] - 0.5) < 1e-12);
    double a1[1] = {2.0}, x1[1];
    CU_ASSERT_EQUAL(vl_dirichlet_exceedance(a1, 1, x1), VL_OK);
    CU_ASSERT_EQUAL(x1[0], 1.0);
    double bad[3] = {1.0, -1.0, 2.0};
    CU_ASSERT_EQUAL(vl_dirichlet_exceedance(bad, 3, xp), VL_ERR_INPUT);
    printf("\n  worst |quadrature - MC(2e5)| %.1e\n", worst);
}

static void test_bms_ffx(void)
{
    /* 2 subjects x 3 models; summed log-evidences -30, -31, -34 */
    const double lme[6] = {-10.0, -12.0, -11.0, -20.0, -19.0, -23.0};
    double slme[3], post[3], lbf[3];
    CU_ASSERT_EQUAL_FATAL(vl_bms_ffx(lme, 2, 3, NULL, slme, post, lbf), VL_OK);
    CU_ASSERT_DOUBLE_EQUAL(slme[0], -30.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(slme[1], -31.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(slme[2], -34.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(lbf[0], 0.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(lbf[1], -1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(lbf[2], -4.0, 1e-12);
    /* 1 : e^-1 : e^-4, normalised: 0.721399, 0.265388, 0.013213 */
    CU_ASSERT_DOUBLE_EQUAL(post[0], 0.7213991, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(post[1], 0.2653879, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(post[2], 0.0132130, 1e-6);
    /* with a prior 1:1:2 -> 1 : e^-1 : 2 e^-4 */
    const double prior[3] = {1.0, 1.0, 2.0};
    CU_ASSERT_EQUAL(vl_bms_ffx(lme, 2, 3, prior, NULL, post, NULL), VL_OK);
    double z = 1.0 + exp(-1.0) + 2.0 * exp(-4.0);
    CU_ASSERT_DOUBLE_EQUAL(post[0], 1.0 / z, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(post[2], 2.0 * exp(-4.0) / z, 1e-12);
    /* huge evidences do not overflow */
    const double big[2] = {-1e6, -1e6 - 3.0};
    CU_ASSERT_EQUAL(vl_bms_ffx(big, 1, 2, NULL, NULL, post, NULL), VL_OK);
    CU_ASSERT_DOUBLE_EQUAL(post[0], 1.0 / (1.0 + exp(-3.0)), 1e-12);
}

static void test_bms_families(void)
{
    /* FFX: families {0,1} and {2}; model priors 1/4, 1/4, 1/2 */
    const double lme[6] = {-10.0, -12.0, -11.0, -20.0, -19.0, -23.0};
    const int fam[3] = {0, 0, 1};
    vl_bms_family_result f;
    CU_ASSERT_EQUAL_FATAL(vl_bms_family(lme, 2, 3, fam, 2, 0, NULL, &f), VL_OK);
    double w0 = 0.25, w1 = 0.25 * exp(-1.0), w2 = 0.5 * exp(-4.0), z = w0 + w1 + w2;
    CU_ASSERT_DOUBLE_EQUAL(f.exp_r[0], (w0 + w1) / z, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(f.exp_r[1], w2 / z, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(f.model_post[1], w1 / z, 1e-12);
    vl_bms_family_result_free(&f);

    /* RFX with one model per family is model-level RFX (alpha0 = 1) */
    const int single[3] = {0, 1, 2};
    vl_bms_rfx_result r;
    CU_ASSERT_EQUAL_FATAL(vl_bms_rfx(lme3, 10, 3, NULL, &r), VL_OK);
    CU_ASSERT_EQUAL_FATAL(vl_bms_family(lme3, 10, 3, single, 3, 1, NULL, &f), VL_OK);
    CU_ASSERT(max_abs_diff(f.alpha, r.alpha, 3) < 1e-12);
    CU_ASSERT(max_abs_diff(f.xp, r.xp, 3) < 1e-12);
    CU_ASSERT(max_abs_diff(f.pxp, r.pxp, 3) < 1e-12);
    CU_ASSERT(fabs(f.bor - r.bor) < 1e-12);
    vl_bms_family_result_free(&f);
    vl_bms_rfx_result_free(&r);

    /* two families {0,2} {1}: one prior count per family, spread evenly */
    const int two[3] = {0, 1, 0};
    CU_ASSERT_EQUAL_FATAL(vl_bms_family(lme3, 10, 3, two, 2, 1, NULL, &f), VL_OK);
    CU_ASSERT_DOUBLE_EQUAL(f.model_alpha0[0], 0.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(f.model_alpha0[1], 1.0, 0);
    CU_ASSERT(fabs(f.alpha[0] + f.alpha[1] - 12.0) < 1e-9); /* 10 subjects + 2 */
    CU_ASSERT_DOUBLE_EQUAL(f.alpha[0], f.model_alpha[0] + f.model_alpha[2], 1e-12);
    CU_ASSERT(fabs(sum(f.exp_r, 2) - 1.0) < 1e-12);
    CU_ASSERT(fabs(sum(f.xp, 2) - 1.0) < 1e-12);
    CU_ASSERT(fabs(sum(f.pxp, 2) - 1.0) < 1e-12);
    CU_ASSERT(f.bor > 0.0 && f.bor < 1.0);
    printf("\n  families {1,3} vs {2}: alpha (%.3f %.3f) xp (%.4f %.4f) bor %.4f\n", f.alpha[0],
           f.alpha[1], f.xp[0], f.xp[1], f.bor);
    vl_bms_family_result_free(&f);
    const int badfam[3] = {0, 2, 0}; /* family 1 empty */
    CU_ASSERT_EQUAL(vl_bms_family(lme3, 10, 3, badfam, 3, 1, NULL, &f), VL_ERR_INPUT);
    vl_bms_family_result_free(&f);
}

static void test_bms_nonfinite(void)
{
    double lme[6] = {-10.0, -12.0, NAN, -20.0, -19.0, -23.0};
    vl_bms_rfx_result r;
    double post[3];
    CU_ASSERT_EQUAL(vl_bms_rfx(lme, 2, 3, NULL, &r), VL_ERR_NONFINITE);
    CU_ASSERT_PTR_NULL(r.alpha);
    vl_bms_rfx_result_free(&r);
    CU_ASSERT_EQUAL(vl_bms_ffx(lme, 2, 3, NULL, NULL, post, NULL), VL_ERR_NONFINITE);
    lme[2] = -INFINITY;
    CU_ASSERT_EQUAL(vl_bms_rfx(lme, 2, 3, NULL, &r), VL_ERR_NONFINITE);
    vl_bms_family_result f;
    const int fam[3] = {0, 0, 1};
    CU_ASSERT_EQUAL(vl_bms_family(lme, 2, 3, fam, 2, 1, NULL, &f), VL_ERR_NONFINITE);
    vl_bms_family_result_free(&f);
    CU_ASSERT_EQUAL(vl_bms_rfx(lme, 0, 3, NULL, &r), VL_ERR_INPUT);
}

/* ------------------------------------------------------------------ BMR */

typedef struct {
    int n;
    double pE[64], pV[64], qE[64];
    double *pC, *qC;
} fwd_posterior;

static int load_fwd(fwd_posterior *d)
{
    char path[512];
    if (!test_shared_path("reference/attention/spm_attention_fwd.json", path, sizeof path))
        return 0;
    json_t *root = test_load_json(path);
    if (!root)
        return 0;
    json_t *v = json_object_get(root, "vector");
    int n = (int)json_array_size(json_object_get(v, "prior_mean"));
    if (n < 1 || n > 64) {
        json_decref(root);
        return 0;
    }
    d->n = n;
    test_json_vec(json_object_get(v, "prior_mean"), d->pE, n);
    test_json_vec(json_object_get(v, "prior_var"), d->pV, n);
    test_json_vec(json_object_get(v, "posterior_mean"), d->qE, n);
    d->qC = malloc(sizeof(double) * (size_t)n * n);
    d->pC = calloc((size_t)n * n, sizeof(double));
    test_json_mat_colmajor(json_object_get(v, "posterior_cov"), d->qC, n, n);
    for (int i = 0; i < n; i++)
        d->pC[i * n + i] = d->pV[i];
    json_decref(root);
    return 1;
}

static void test_bmr_spm(void)
{
    char path[512];
    fwd_posterior d;
    if (!test_shared_path("reference/attention/spm_bmr_fwd_no_attention.json", path, sizeof path) ||
        !load_fwd(&d))
        return;
    json_t *root = test_load_json(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    const int n = d.n;
    int k = (int)json_integer_value(json_object_get(root, "removed_param_index_1based")) - 1;
    CU_ASSERT_FATAL(k >= 0 && k < n);
    double rsE[64], rsC[64];
    CU_ASSERT_EQUAL(test_json_vec(json_object_get(root, "sE"), rsE, n), n);
    CU_ASSERT_EQUAL(test_json_vec(json_object_get(root, "sC_diag"), rsC, n), n);
    double rdF = json_number_value(json_object_get(root, "dF"));

    double *rC = malloc(sizeof(double) * (size_t)n * n), *sC = malloc(sizeof(double) * (size_t)n * n);
    double sE[64], sCd[64], dF = 0.0;
    memcpy(rC, d.pC, sizeof(double) * (size_t)n * n);
    rC[k * n + k] = 0.0; /* switch the parameter off */
    CU_ASSERT_EQUAL_FATAL(vl_bmr_reduce(n, d.qE, d.qC, d.pE, d.pC, d.pE, rC, &dF, sE, sC),
                          VL_OK);
    for (int i = 0; i < n; i++)
        sCd[i] = sC[i * n + i];
    double eE = max_abs_diff(sE, rsE, n), eC = max_abs_diff(sCd, rsC, n);
    printf("\n  dF %.9f (SPM %.9f, |diff| %.1e); |diff| sE %.1e sC_diag %.1e\n", dF, rdF,
           fabs(dF - rdF), eE, eC);
    CU_ASSERT(fabs(dF - rdF) < 1e-6);
    CU_ASSERT(eE < 1e-6);
    CU_ASSERT(eC < 1e-6);

    /* the reduced prior equal to the full prior changes nothing (up to
       the 1e-8 regularisation of the inverses) */
    CU_ASSERT_EQUAL(vl_bmr_reduce(n, d.qE, d.qC, d.pE, d.pC, d.pE, d.pC, &dF, sE, sC), VL_OK);
    double eq = max_abs_diff(sE, d.qE, n), eqC = max_abs_diff(sC, d.qC, n * n);
    printf("  identical priors: dF %.1e, |sE - qE| %.1e, |sC - qC| %.1e\n", dF, eq, eqC);
    CU_ASSERT(fabs(dF) < 1e-6);
    CU_ASSERT(eq < 1e-6);
    CU_ASSERT(eqC < 1e-7);

    /* NaN anywhere is an error */
    double keep = d.qC[3];
    d.qC[3] = NAN;
    CU_ASSERT_EQUAL(vl_bmr_reduce(n, d.qE, d.qC, d.pE, d.pC, d.pE, rC, &dF, sE, sC),
                    VL_ERR_NONFINITE);
    d.qC[3] = keep;

    /* automatic search: monotone evidence, consistent posterior */
    vl_bmr_search_result s;
    CU_ASSERT_EQUAL_FATAL(vl_bmr_search(n, d.qE, d.qC, d.pE, d.pC, NULL, &s), VL_OK);
    CU_ASSERT(s.dF >= 0.0);
    int removed = 0;
    for (int i = 0; i < n; i++) {
        CU_ASSERT(s.Pp[i] >= 0.0 && s.Pp[i] <= 1.0 + 1e-12);
        if (d.pV[i] > 0 && !s.keep[i])
            removed++;
        if (d.pV[i] == 0)
            CU_ASSERT(!s.keep[i] && s.Cp_bma[i * n + i] == 0.0);
    }
    CU_ASSERT_EQUAL(removed, s.nremoved);
    /* the modulation of interest (parameter 29) survives */
    CU_ASSERT(s.keep[k]);
    printf("  search: %d models scored, %d parameters switched off, dF %.3f\n", s.nmodels,
           s.nremoved, s.dF);
    vl_bmr_search_result_free(&s);
    free(rC);
    free(sC);
    free(d.qC);
    free(d.pC);
    json_decref(root);
}

/* Linear-Gaussian check where the evidence is known in closed form: one
 * observation y ~ N(theta, s2) per parameter, prior theta ~ N(m, v). */
static void test_bmr_linear_gaussian(void)
{
    enum { n = 3 };
    const double y[n] = {0.8, -0.1, 0.05}, s2[n] = {0.04, 0.09, 0.01};
    const double m[n] = {0.0, 0.0, 0.0}, v[n] = {1.0, 0.5, 0.25};
    const double rm[n] = {0.1, 0.0, 0.0}, rv[n] = {0.2, 0.0, 0.25}; /* second switched off */
    double qE[n], qC[n * n] = {0}, pC[n * n] = {0}, rC[n * n] = {0}, sE[n], sC[n * n];
    double exact = 0.0;
    for (int i = 0; i < n; i++) {
        double prec = 1.0 / v[i] + 1.0 / s2[i];
        qC[i * n + i] = 1.0 / prec;
        qE[i] = (m[i] / v[i] + y[i] / s2[i]) / prec;
        pC[i * n + i] = v[i];
        rC[i * n + i] = rv[i];
        /* log N(y; rm, rv + s2) - log N(y; m, v + s2) */
        double a = rv[i] + s2[i], b = v[i] + s2[i];
        exact += -0.5 * log(a) - 0.5 * (y[i] - rm[i]) * (y[i] - rm[i]) / a + 0.5 * log(b) +
                 0.5 * (y[i] - m[i]) * (y[i] - m[i]) / b;
    }
    double dF = 0.0;
    CU_ASSERT_EQUAL_FATAL(vl_bmr_reduce(n, qE, qC, m, pC, rm, rC, &dF, sE, sC), VL_OK);
    printf("\n  closed form %.9f BMR %.9f\n", exact, dF);
    CU_ASSERT(fabs(dF - exact) < 1e-6);
    /* reduced posterior: conjugate update under the reduced prior */
    double e0 = (rm[0] / rv[0] + y[0] / s2[0]) / (1.0 / rv[0] + 1.0 / s2[0]);
    CU_ASSERT(fabs(sE[0] - e0) < 1e-6);
    CU_ASSERT(fabs(sE[1]) < 1e-6 && sC[1 * n + 1] < 2e-8);
    CU_ASSERT(fabs(sC[0] - 1.0 / (1.0 / rv[0] + 1.0 / s2[0])) < 1e-8);
    /* the search switches off the parameter with no evidence (y ~ 0, tight)
       and keeps the one far from zero */
    vl_bmr_search_result s;
    CU_ASSERT_EQUAL_FATAL(vl_bmr_search(n, qE, qC, m, pC, NULL, &s), VL_OK);
    CU_ASSERT(s.keep[0]);
    CU_ASSERT(!s.keep[2]);
    CU_ASSERT(s.dF > 0.0);
    CU_ASSERT(s.Pp[0] > 0.99);
    vl_bmr_search_result_free(&s);
}

/* ------------------------------------------------------------------ PEB */

static void test_peb_spm(void)
{
    char path[512];
    if (!test_shared_path("reference/group/spm_peb_group.json", path, sizeof path))
        return;
    json_t *root = test_load_json(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    json_t *subs = json_object_get(root, "subjects");
    const int Ns = (int)json_array_size(subs);
    const int n = (int)json_array_size(json_object_get(root, "prior_mean"));
    CU_ASSERT_FATAL(Ns > 1 && n > 0);
    const size_t nn = (size_t)n * n;
    double *qE = malloc(sizeof(double) * Ns * n), *qC = malloc(sizeof(double) * Ns * nn);
    double *pE = malloc(sizeof(double) * Ns * n), *pV = malloc(sizeof(double) * Ns * n);
    double *F = malloc(sizeof(double) * Ns), *X = malloc(sizeof(double) * Ns * 2);
    for (int s = 0; s < Ns; s++) {
        json_t *S = json_array_get(subs, (size_t)s);
        CU_ASSERT_EQUAL(test_json_vec(json_object_get(S, "posterior_mean"), qE + s * n, n), n);
        CU_ASSERT_EQUAL(test_json_mat_colmajor(json_object_get(S, "posterior_cov"), qC + s * nn,
                                               n, n), 0);
        test_json_vec(json_object_get(root, "prior_mean"), pE + s * n, n);
        test_json_vec(json_object_get(root, "prior_var"), pV + s * n, n);
        F[s] = json_number_value(json_object_get(S, "F"));
    }
    CU_ASSERT_EQUAL(test_json_mat_colmajor(json_object_get(root, "design"), X, Ns, 2), 0);
    double *Xr = malloc(sizeof(double) * Ns * 2); /* row-major for vl_peb */
    for (int s = 0; s < Ns; s++)
        for (int j = 0; j < 2; j++)
            Xr[s * 2 + j] = X[s + j * Ns];
    json_t *peb = json_object_get(root, "peb");
    /* field B: the B block of SPM's flat order with non-zero prior variance */
    int sel[8], nsel = 0;
    json_t *pind = json_object_get(peb, "Pind_1based");
    for (int i = 9; i < 36; i++)
        if (pV[i] != 0.0 && nsel < 8)
            sel[nsel++] = i;
    CU_ASSERT_EQUAL_FATAL(nsel, (int)json_array_size(pind));
    for (int i = 0; i < nsel; i++)
        CU_ASSERT_EQUAL(sel[i] + 1, (int)json_integer_value(json_array_get(pind, (size_t)i)));
    double rEp[16], rCp[16], rEh[8], rCh[16];
    CU_ASSERT_EQUAL(test_json_mat_colmajor(json_object_get(peb, "Ep"), rEp, nsel, 2), 0);
    CU_ASSERT_EQUAL(test_json_vec(json_object_get(peb, "Cp_diag"), rCp, 16), 2 * nsel);
    CU_ASSERT_EQUAL(test_json_vec(json_object_get(peb, "Eh"), rEh, 8), nsel);
    CU_ASSERT_EQUAL(test_json_mat_colmajor(json_object_get(peb, "Ch"), rCh, nsel, nsel), 0);
    const double rF = json_number_value(json_object_get(peb, "F"));

    vl_peb_input in = {Ns, n, qE, qC, pE, NULL, pV, F, sel, nsel, Xr, 2};
    vl_peb_opts o = {0};
    o.Q = VL_PEB_Q_ALL;
    vl_peb_result r;
    CU_ASSERT_EQUAL_FATAL(vl_peb(&in, &o, &r), VL_OK);
    CU_ASSERT_EQUAL_FATAL(r.np, nsel);
    CU_ASSERT_EQUAL_FATAL(r.nx, 2);
    CU_ASSERT_EQUAL_FATAL(r.ng, nsel);
    double eEp = 0.0, eCp = 0.0, eEh = 0.0, eCh = 0.0;
    for (int i = 0; i < nsel; i++)
        for (int j = 0; j < 2; j++)
            eEp = fmax(eEp, fabs(r.Ep[i * 2 + j] - rEp[i + j * nsel]));
    const int NP = 2 * nsel;
    for (int k = 0; k < NP; k++)
        eCp = fmax(eCp, fabs(r.Cp[k * NP + k] - rCp[k]) / rCp[k]);
    for (int j = 0; j < nsel; j++) {
        eEh = fmax(eEh, fabs(r.Eh[j] - rEh[j]));
        for (int k = 0; k < nsel; k++)
            eCh = fmax(eCh, fabs(r.Ch[j * nsel + k] - rCh[j + k * nsel]));
    }
    printf("\n  F %.6f (SPM %.6f, |diff| %.1e) after %d iterations\n"
           "  |diff| Ep %.1e, Eh %.1e, Ch %.1e; rel. diff Cp_diag %.1e\n"
           "  group effect on B(Attention, V1->V5) %.4f (SPM %.4f)\n",
           r.F, rF, fabs(r.F - rF), r.iterations, eEp, eEh, eCh, eCp, r.Ep[1 * 2 + 1],
           rEp[1 + 1 * nsel]);
    CU_ASSERT(eEp < 1e-3);
    CU_ASSERT(fabs(r.F - rF) < 0.1);
    CU_ASSERT(eCp < 1e-3);
    CU_ASSERT(eEh < 1e-3);
    CU_ASSERT(eCh < 1e-4);
    vl_peb_result_free(&r);

    /* non-finite input is an error */
    qE[5 * n + sel[0]] = NAN;
    CU_ASSERT_EQUAL(vl_peb(&in, &o, &r), VL_ERR_NONFINITE);
    CU_ASSERT_PTR_NULL(r.Ep);
    vl_peb_result_free(&r);
    /* a design column of zeros cannot be scaled */
    qE[5 * n + sel[0]] = 0.5;
    for (int s = 0; s < Ns; s++)
        Xr[s * 2 + 1] = 0.0;
    CU_ASSERT_EQUAL(vl_peb(&in, &o, &r), VL_ERR_INPUT);
    vl_peb_result_free(&r);

    free(qE);
    free(qC);
    free(pE);
    free(pV);
    free(F);
    free(X);
    free(Xr);
    json_decref(root);
}


/* The shared-node quadrature gives the values the per-model adaptive
 * quadrature gave before it (printed by the previous code, commit 41106a8,
 * to 15 digits): the change of method changed no answer. */
static void test_exceedance_unchanged(void)
{
    static const double c1[] = {3.5, 1.2, 7.3}, c3[] = {12.4, 11.9, 2.2, 1.01, 5.5, 1.0, 30.2},
                        c4[] = {0.3, 0.7, 2.5, 0.05},
                        c5[] = {150.5, 149.0, 3.0, 1.0, 1.2, 80.0, 1.0, 1.0, 2.0, 1.5};
    static const double x1[] = {0.110356992897207, 0.00663373157747115, 0.883009275525318},
                        x3[] = {0.00251201838567279, 0.00181675646883907, 1.51989949176885e-08,
                                5.74700849397417e-10, 4.50065519334016e-06, 5.55531296528558e-10,
                                0.995666708161067},
                        x4[] = {0.0339195123721802, 0.107743924574339, 0.853917729697885,
                                0.00441883335559378},
                        x5[] = {0.534583035602687, 0.465416948597178, 1.17569122811115e-50,
                                1.27108967050516e-58, 7.22945548093894e-57, 1.58002490344087e-08,
                                1.27108967050516e-58, 1.27108967050516e-58, 6.93283533378373e-53,
                                6.03389167999387e-55};
    const double *as[] = {c1, c3, c4, c5}, *xs[] = {x1, x3, x4, x5};
    const int Ks[] = {3, 7, 4, 10};
    double worst = 0.0;
    for (int c = 0; c < 4; c++) {
        double xp[10];
        CU_ASSERT_EQUAL(vl_dirichlet_exceedance(as[c], Ks[c], xp), VL_OK);
        worst = fmax(worst, max_abs_diff(xp, xs[c], Ks[c]));
    }
    printf("\n  max |new - previous| %.1e\n", worst);
    CU_ASSERT(worst < 1e-11);
}

/* Hundreds of models: normalised, equal counts give equal xp, and the
 * order of the models does not matter. */
static void test_exceedance_many(void)
{
    enum { K = 300 };
    double a[K], b[K], xa[K], xb[K];
    for (int k = 0; k < K; k++)
        a[k] = k % 7 == 0 ? 1.0 : 1.0 + 0.01 * (k % 13);
    a[17] = 9.0;
    a[211] = 8.5;
    for (int k = 0; k < K; k++)
        b[k] = a[K - 1 - k];
    CU_ASSERT_EQUAL_FATAL(vl_dirichlet_exceedance(a, K, xa), VL_OK);
    CU_ASSERT_EQUAL_FATAL(vl_dirichlet_exceedance(b, K, xb), VL_OK);
    double d = 0.0, eq = 0.0;
    for (int k = 0; k < K; k++) {
        d = fmax(d, fabs(xa[k] - xb[K - 1 - k]));
        if (a[k] == 1.0)
            eq = fmax(eq, fabs(xa[k] - xa[0]));
    }
    printf("\n  K = %d: sum xp %.12f, xp of the two large counts %.4f %.4f\n", K, sum(xa, K), xa[17],
           xa[211]);
    CU_ASSERT(fabs(sum(xa, K) - 1.0) < 1e-9);
    CU_ASSERT(d < 1e-14);
    CU_ASSERT(eq == 0.0);
    CU_ASSERT(xa[17] > xa[211] && xa[211] > xa[1]);
    /* huge counts (rounding noise in the incomplete gamma functions must
       not make the quadrature bisect forever) and tiny ones: r_2 - r_1 is
       close to normal with mean 50 / 20050 and sd sqrt(2e4) / 20050 */
    double big[4] = {1e4, 1e4 + 50, 0.05, 1.0}, xb4[4];
    CU_ASSERT_EQUAL(vl_dirichlet_exceedance(big, 4, xb4), VL_OK);
    printf("  alpha (1e4, 1e4+50, 0.05, 1): xp %.6f %.6f (normal approximation %.6f)\n", xb4[0], xb4[1],
           0.5 * erfc(-50.0 / sqrt(2e4) / sqrt(2.0)));
    CU_ASSERT(fabs(xb4[1] - 0.5 * erfc(-50.0 / sqrt(2e4) / sqrt(2.0))) < 2e-3);
    CU_ASSERT(fabs(sum(xb4, 4) - 1.0) < 1e-9);
    double tiny[3] = {0.01, 0.02, 0.015}, xt[3];
    CU_ASSERT_EQUAL(vl_dirichlet_exceedance(tiny, 3, xt), VL_OK);
    CU_ASSERT(fabs(sum(xt, 3) - 1.0) < 1e-9);
    CU_ASSERT(xt[1] > xt[2] && xt[2] > xt[0]);
}

/* Freeing twice is harmless (the free functions reset what they free). */
static void test_free_twice(void)
{
    vl_bms_rfx_result r;
    CU_ASSERT_EQUAL_FATAL(vl_bms_rfx(lme3, 10, 3, NULL, &r), VL_OK);
    vl_bms_rfx_result_free(&r);
    CU_ASSERT_PTR_NULL(r.alpha);
    CU_ASSERT_EQUAL(r.nmod, 0);
    vl_bms_rfx_result_free(&r);
    vl_bms_family_result f;
    const int fam[3] = {0, 0, 1};
    CU_ASSERT_EQUAL_FATAL(vl_bms_family(lme3, 10, 3, fam, 2, 1, NULL, &f), VL_OK);
    vl_bms_family_result_free(&f);
    vl_bms_family_result_free(&f);
    vl_bmr_search_result B;
    memset(&B, 0, sizeof B);
    double qE[2] = {0.5, 0.01}, qC[4] = {0.01, 0, 0, 0.01}, pE[2] = {0, 0}, pC[4] = {1, 0, 0, 1};
    CU_ASSERT_EQUAL_FATAL(vl_bmr_search(2, qE, qC, pE, pC, NULL, &B), VL_OK);
    vl_bmr_search_result_free(&B);
    CU_ASSERT_PTR_NULL(B.keep);
    vl_bmr_search_result_free(&B);
    vl_peb_result P;
    memset(&P, 0, sizeof P);
    vl_peb_result_free(&P);
    vl_peb_result_free(&P);
}

/* An overflowing sum of log-evidences is an error, not an infinity. */
static void test_ffx_overflow(void)
{
    const double lme[4] = {1e308, -10.0, 1e308, -12.0};
    double slme[2], post[2], lbf[2];
    CU_ASSERT_EQUAL(vl_bms_ffx(lme, 2, 2, NULL, slme, post, lbf), VL_ERR_NONFINITE);
}

/* vl_peb_bmr_all (spm_dcm_bmr_all): one effect the data support among
 * nulls, with and without the greedy shortlist (n > 8) */
static void test_bmr_all(void)
{
    for (int n = 3; n <= 12; n += 9) {
        double *qE = calloc((size_t)n, sizeof(double)), *qC = calloc((size_t)n * n, sizeof(double));
        double *pE = calloc((size_t)n, sizeof(double)), *pC = calloc((size_t)n * n, sizeof(double));
        double *Ep = malloc(sizeof(double) * n), *Vp = malloc(sizeof(double) * n), *Pp = malloc(sizeof(double) * n);
        CU_ASSERT_PTR_NOT_NULL_FATAL(Pp);
        for (int i = 0; i < n; i++) {
            pC[(size_t)i * n + i] = 1.0;
            qC[(size_t)i * n + i] = 0.01;
            qE[i] = i == 0 ? 2.0 : 0.01 * (i % 3 - 1);
        }
        /* a parameter the data do not inform (posterior = prior): the
           models with and without it tie, so Pp = 1/2 */
        qC[(size_t)(n - 1) * n + n - 1] = 1.0;
        qE[n - 1] = 0.0;
        int nm = 0;
        CU_ASSERT_EQUAL_FATAL(vl_peb_bmr_all(n, qE, qC, pE, pC, Ep, Vp, Pp, &nm), VL_OK);
        printf("\n  n = %d: %d models; Pp %.4f (present) %.4f (null) %.4f (uninformed); BMA %.4f\n", n, nm,
               Pp[0], Pp[1], Pp[n - 1], Ep[0]);
        CU_ASSERT(Pp[0] > 0.999);
        CU_ASSERT(fabs(Ep[0] - 2.0) < 1e-6); /* kept in every model: its posterior unchanged */
        CU_ASSERT(Vp[0] > 0.0099 && Vp[0] < 0.0101);
        for (int i = 1; i < n - 1; i++) {
            CU_ASSERT(Pp[i] < 0.1);
            CU_ASSERT(fabs(Ep[i]) < 0.02);
        }
        CU_ASSERT(fabs(Pp[n - 1] - 0.5) < 1e-4); /* to the exp(-16) regularisation */
        CU_ASSERT(fabs(Ep[n - 1]) < 1e-9);
        CU_ASSERT_EQUAL(nm, n <= 8 ? 1 << n : nm); /* one pass over 2^n models when n <= 8 */
        CU_ASSERT(n <= 8 || nm > 256);
        /* bad input */
        CU_ASSERT_EQUAL(vl_peb_bmr_all(0, qE, qC, pE, pC, Ep, Vp, Pp, NULL), VL_ERR_INPUT);
        free(qE), free(qC), free(pE), free(pC), free(Ep), free(Vp), free(Pp);
    }
}

int main(void)
{
    static const test_case cases[] = {
        {"spm_dcm_bmr_all over group effects (vl_peb_bmr_all)", test_bmr_all},
        {"RFX BMS equals spm_BMS (2 models)", test_bms_rfx_spm},
        {"RFX BMS, 3 models: exceedance vs Monte Carlo", test_bms_rfx_3models},
        {"Dirichlet exceedance in awkward regimes", test_dirichlet_exceedance},
        {"FFX BMS by hand", test_bms_ffx},
        {"family inference", test_bms_families},
        {"BMS rejects NaN/Inf", test_bms_nonfinite},
        {"BMR equals spm_log_evidence_reduce (fwd, no attention)", test_bmr_spm},
        {"BMR is exact for linear-Gaussian models", test_bmr_linear_gaussian},
        {"PEB equals spm_dcm_peb (12 subjects, field B)", test_peb_spm},
        {"exceedance probabilities unchanged by the O(K) method", test_exceedance_unchanged},
        {"exceedance probabilities for 300 models", test_exceedance_many},
        {"results freed twice are harmless", test_free_twice},
        {"FFX refuses an overflowing summed log-evidence", test_ffx_overflow},
        {NULL, NULL}};
    return test_run("group", cases);
}
