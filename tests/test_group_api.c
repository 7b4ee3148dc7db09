/* test_group_api.c — group analysis through the public C API
 * (include/dcm/dcm_group.h), with no command and no ../shared: fixed
 * effects and Pp against hand computations, BMA of two posteriors with
 * known weights, a parameter switched off against the Gaussian closed
 * form (Savage-Dickey and conditioning), PEB on synthetic groups whose
 * answer is known, and the error convention (codes and messages). */
#include "dcm/dcm.h"
#include "tests/test_util.h"
#include "vl/vl_bmr.h"

#define NEAR(a, b, tol) CU_ASSERT(fabs((a) - (b)) <= (tol))

/* ------------------------------------------------------------ BMS */

static void test_ffx_by_hand(void)
{
    /* one subject, three models fitted to the same data */
    const double F[3] = {-100.0, -102.0, -99.0};
    double post[3], lbf[3], slme[3];
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(dcm_bms_ffx(F, 1, 3, NULL, slme, post, lbf, &err), DCM_OK);
    double z = exp(-1.0) + exp(-3.0) + 1.0;
    NEAR(post[0], exp(-1.0) / z, 1e-15);
    NEAR(post[1], exp(-3.0) / z, 1e-15);
    NEAR(post[2], 1.0 / z, 1e-15);
    NEAR(lbf[0], -1.0, 0.0);
    NEAR(lbf[1], -3.0, 0.0);
    NEAR(lbf[2], 0.0, 0.0);
    NEAR(slme[1], -102.0, 0.0);
    /* two subjects: the sums decide; a 2:1 prior on model 0 vs 1 */
    const double lme[4] = {-10.0, -11.0, -20.0, -18.0}; /* sums -30, -29 */
    const double prior[2] = {2.0, 1.0};
    CU_ASSERT_EQUAL_FATAL(dcm_bms_ffx(lme, 2, 2, prior, slme, post, lbf, &err), DCM_OK);
    NEAR(slme[0], -30.0, 0.0);
    NEAR(slme[1], -29.0, 0.0);
    double a = 2.0 / 3.0 * exp(-1.0), b = 1.0 / 3.0;
    NEAR(post[0], a / (a + b), 1e-15);
    NEAR(post[1], b / (a + b), 1e-15);
    NEAR(lbf[0], -1.0, 0.0);
}

static void test_families_by_hand(void)
{
    /* families {m0, m1} and {m2}: model priors 1/4, 1/4, 1/2 */
    const double F[3] = {-1.0, -2.0, -1.5};
    const int fam[3] = {0, 0, 1};
    dcm_bms_family_result r;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(dcm_bms_family(F, 1, 3, fam, 2, 0, &r, &err), DCM_OK);
    double w0 = 0.25 * exp(-1.0), w1 = 0.25 * exp(-2.0), w2 = 0.5 * exp(-1.5), z = w0 + w1 + w2;
    NEAR(r.exp_r[0], (w0 + w1) / z, 1e-15);
    NEAR(r.exp_r[1], w2 / z, 1e-15);
    NEAR(r.model_post[2], w2 / z, 1e-15);
    CU_ASSERT(isnan(r.bor));
    dcm_bms_family_result_free(&r);
    dcm_bms_family_result_free(&r); /* twice is harmless */
}

static void test_rfx_api(void)
{
    /* 10 subjects all clearly favouring model 1: its expected frequency
       is (alpha0 + count) / (K alpha0 + n) = 11 / 12 in the limit */
    double lme[20];
    for (int i = 0; i < 10; i++) {
        lme[i * 2] = -100.0;
        lme[i * 2 + 1] = -50.0;
    }
    dcm_bms_rfx_result r;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(dcm_bms_rfx(lme, 10, 2, &r, &err), DCM_OK);
    CU_ASSERT(r.converged);
    NEAR(r.alpha[0], 1.0, 1e-9);
    NEAR(r.alpha[1], 11.0, 1e-9);
    NEAR(r.exp_r[1], 11.0 / 12.0, 1e-9);
    /* P(r1 > r0) for Beta(11, 1): 1 - 0.5^11 */
    NEAR(r.xp[1], 1.0 - pow(0.5, 11), 1e-9);
    dcm_bms_rfx_result_free(&r);
}

static void test_errors(void)
{
    double lme[4] = {-1.0, NAN, -2.0, -3.0};
    dcm_error err = {0, ""};
    double post[2];
    CU_ASSERT_EQUAL(dcm_bms_ffx(lme, 2, 2, NULL, NULL, post, NULL, &err), DCM_ERR_NUMERIC);
    CU_ASSERT_EQUAL(err.code, DCM_ERR_NUMERIC);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "fixed-effects comparison: "));
    CU_ASSERT_PTR_NULL(strstr(err.msg, "code"));
    dcm_bms_rfx_result r;
    CU_ASSERT_EQUAL(dcm_bms_rfx(lme, 2, 2, &r, &err), DCM_ERR_NUMERIC);
    CU_ASSERT_STRING_EQUAL(err.msg, "random-effects BMS: a log-evidence is NaN or infinite");
    CU_ASSERT_PTR_NULL(r.alpha);
    CU_ASSERT_EQUAL(dcm_bms_rfx(lme, 0, 2, &r, &err), DCM_ERR_INPUT);
    CU_ASSERT_STRING_EQUAL(err.msg, "random-effects BMS: the table needs at least one subject and one model");
    const int bad[2] = {0, 5};
    dcm_bms_family_result f;
    CU_ASSERT_EQUAL(dcm_bms_family(lme + 2, 1, 2, bad, 2, 0, &f, &err), DCM_ERR_INPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "every model needs a family"));
    dcm_bms_family_result_free(&f);
}

/* ------------------------------------------------------------ Pp */

static void test_posterior_probability(void)
{
    /* Ep = 1, sd = 1, pE = 0: Pp = Phi(1); Ep = -2, sd = 0.5: Phi(4) */
    const double Ep[4] = {1.0, -2.0, 0.3, 0.3};
    double Cp[16] = {0};
    Cp[0] = 1.0;
    Cp[5] = 0.25;
    Cp[10] = 0.0; /* no posterior variance */
    Cp[15] = 0.1;
    const double pE[4] = {0, 0, 0, 0}, pV[4] = {1, 1, 1, 0};
    double Pp[4];
    dcm_posterior_probability(4, Ep, Cp, pE, pV, Pp);
    NEAR(Pp[0], 0.841344746068542948, 1e-15);
    NEAR(Pp[1], 0.999968328758166880, 1e-15);
    CU_ASSERT(isnan(Pp[2]));
    CU_ASSERT(isnan(Pp[3])); /* fixed a priori */
}

/* ------------------------------------------------------------ BMA */

static void test_bma_known_weights(void)
{
    /* F differ by log 3: weights 1/4 and 3/4 */
    const double F[2] = {10.0, 10.0 + log(3.0)};
    const double E0[2] = {1.0, 0.0}, E1[2] = {3.0, 2.0};
    const double C0[4] = {0.5, 0.1, 0.1, 1.0}, C1[4] = {0.25, 0.0, 0.0, 2.0};
    const double *Ep[2] = {E0, E1}, *Cp[2] = {C0, C1};
    double w[2], mean[2], var[2];
    int bm, bp;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(dcm_bma(2, 2, F, Ep, Cp, 0.0, w, mean, var, &bm, &bp, &err), DCM_OK);
    NEAR(w[0], 0.25, 1e-15);
    NEAR(w[1], 0.75, 1e-15);
    NEAR(mean[0], 0.25 * 1.0 + 0.75 * 3.0, 1e-14);
    NEAR(mean[1], 0.75 * 2.0, 1e-14);
    /* mixture variance: sum w (v + e^2) - mean^2 */
    NEAR(var[0], 0.25 * (0.5 + 1.0) + 0.75 * (0.25 + 9.0) - 2.5 * 2.5, 1e-14);
    NEAR(var[1], 0.25 * 1.0 + 0.75 * (2.0 + 4.0) - 1.5 * 1.5, 1e-14);
    /* Occam's window of 0.5 drops the first model (log 3 > 0.5 behind) */
    CU_ASSERT_EQUAL_FATAL(dcm_bma(2, 2, F, Ep, Cp, 0.5, w, mean, var, &bm, &bp, &err), DCM_OK);
    NEAR(w[0], 0.0, 0.0);
    NEAR(mean[0], 3.0, 1e-15);
    NEAR(var[1], 2.0, 1e-14);
    /* a non-finite free energy is named */
    const double Fbad[2] = {1.0, INFINITY};
    CU_ASSERT_EQUAL(dcm_bma(2, 2, Fbad, Ep, Cp, 0.0, w, mean, var, &bm, &bp, &err), DCM_ERR_NUMERIC);
    CU_ASSERT_EQUAL(bm, 1);
    CU_ASSERT_EQUAL(bp, -1);
    /* the streaming form of the same average (as a BMR search enters
       models) agrees, in either order */
    vl_bma a;
    CU_ASSERT_EQUAL_FATAL(vl_bma_init(&a, 2, 1), VL_OK);
    vl_bma_add(&a, F[1], E1, C1, NULL);
    vl_bma_add(&a, F[0], E0, C0, NULL);
    double m2[2], C[4];
    vl_bma_finish(&a, m2, C, NULL);
    NEAR(m2[0], 2.5, 1e-14);
    NEAR(C[0], 0.25 * (0.5 + 1.0) + 0.75 * (0.25 + 9.0) - 6.25, 1e-14);
    /* off-diagonal: sum w (C01 + E0 E1) - m0 m1 */
    NEAR(C[1], 0.25 * 0.1 + 0.75 * (0.0 + 6.0) - 2.5 * 1.5, 1e-14);
    vl_bma_free(&a);
}

static void test_group_mean(void)
{
    const double X[6] = {1.0, 10.0, 2.0, 20.0, 4.0, 30.0};
    double m[2], se2[2];
    int bp;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(dcm_group_mean(3, 2, X, m, se2, &bp, &err), DCM_OK);
    NEAR(m[0], 7.0 / 3.0, 1e-15);
    NEAR(m[1], 20.0, 1e-13);
    /* sample variance / n */
    double v0 = (pow(1 - 7.0 / 3, 2) + pow(2 - 7.0 / 3, 2) + pow(4 - 7.0 / 3, 2)) / 2.0;
    NEAR(se2[0], v0 / 3.0, 1e-14);
    NEAR(se2[1], 100.0 / 3.0, 1e-12);
}

/* ------------------------------------------------------------ BMR */

static void test_switch_off_closed_form(void)
{
    /* independent N(0, 1) priors; a correlated Gaussian posterior. With
       parameter 1 switched off, the evidence ratio is Savage-Dickey's
       q1(0) / p1(0) and the reduced posterior of parameter 0 is the
       conditional q(theta0 | theta1 = 0). */
    const double qE[2] = {0.5, 0.8}, qC[4] = {0.2, 0.05, 0.05, 0.3};
    const double pE[2] = {0.0, 0.0}, pV[2] = {1.0, 1.0};
    const unsigned char off[2] = {0, 1};
    double dF, sE[2], sC[4];
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(dcm_bmr_switch_off(2, qE, qC, pE, pV, off, &dF, sE, sC, &err), DCM_OK);
    double dF_exact = 0.5 * log(1.0 / 0.3) - 0.5 * 0.8 * 0.8 / 0.3;
    /* SPM's regularised inverse gives the switched-off parameter a prior
       variance of 1e-8: agreement to ~1e-7 */
    NEAR(dF, dF_exact, 1e-6);
    NEAR(sE[0], 0.5 - 0.05 / 0.3 * 0.8, 1e-6);
    NEAR(sC[0], 0.2 - 0.05 * 0.05 / 0.3, 1e-6);
    NEAR(sE[1], 0.0, 1e-6);
    /* switching nothing off changes nothing (up to the 1e-8 of SPM's
       regularised inverses) */
    const unsigned char none[2] = {0, 0};
    CU_ASSERT_EQUAL_FATAL(dcm_bmr_switch_off(2, qE, qC, pE, pV, none, &dF, sE, sC, &err), DCM_OK);
    NEAR(dF, 0.0, 1e-7);
    NEAR(sE[1], 0.8, 1e-7);
    /* the search removes the parameter whose posterior sits at zero and
       keeps the well-determined one */
    const double qE2[2] = {2.0, 0.01}, qC2[4] = {0.01, 0.0, 0.0, 0.5};
    const double pC[4] = {1.0, 0.0, 0.0, 1.0};
    dcm_bmr_search_result s;
    CU_ASSERT_EQUAL_FATAL(dcm_bmr_search(2, qE2, qC2, pE, pC, NULL, &s, &err), DCM_OK);
    CU_ASSERT(s.keep[0]);
    CU_ASSERT(!s.keep[1]);
    CU_ASSERT_EQUAL(s.nremoved, 1);
    NEAR(s.dF, 0.5 * log(1.0 / 0.5) - 0.5 * 0.01 * 0.01 / 0.5, 1e-6);
    CU_ASSERT(s.Pp[0] > 0.999 && s.Pp[1] < 0.5);
    dcm_bmr_search_result_free(&s);
    /* a non-finite posterior is an error with a message, not a code */
    const double qEbad[2] = {NAN, 0.0};
    CU_ASSERT_EQUAL(dcm_bmr_switch_off(2, qEbad, qC, pE, pV, off, &dF, sE, sC, &err), DCM_ERR_NUMERIC);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "model reduction: "));
}

/* ------------------------------------------------------------ PEB */

/* nsub subjects, 2 parameters, prior N(0, 1), posteriors N(mu_i, 0.01 I) */
typedef struct {
    double Ep[16 * 2], Cp[16 * 4], pE[16 * 2], pV[16 * 2], F[16];
} group;

static void make_group(group *g, int nsub, const double *mu, const double *shift)
{
    memset(g, 0, sizeof *g);
    for (int i = 0; i < nsub; i++) {
        for (int p = 0; p < 2; p++) {
            g->Ep[i * 2 + p] = mu[p] + (shift && i >= nsub / 2 ? shift[p] : 0.0);
            g->Cp[i * 4 + p * 3] = 0.01;
            g->pV[i * 2 + p] = 1.0;
        }
        g->F[i] = -100.0;
    }
}

static void test_peb_equal_subjects(void)
{
    /* every subject the same: the group mean is what their data say, up
       to the group prior's pull. The data say mu_L = mu qP / (qP - pP),
       the first-level prior N(0, 1) taken out of a posterior of precision
       qP = 100 + 1/16 (after SPM's shrinkage); the pull towards 0 is at
       most |mu_L| / 111 (8 subjects of variance <= 0.01 + 1/16 against a
       unit prior). */
    const double mu[2] = {0.3, -0.2};
    group g;
    make_group(&g, 8, mu, NULL);
    const int sel[2] = {0, 1};
    dcm_peb_input in = {8, 2, g.Ep, g.Cp, g.pE, g.pV, g.F, sel, 2, NULL, 1, 1, .q = DCM_PEB_Q_FROM_SINGLE};
    dcm_peb_result P;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(dcm_peb(&in, &P, &err), DCM_OK);
    CU_ASSERT_EQUAL(P.np, 2);
    CU_ASSERT_EQUAL(P.nx, 1);
    CU_ASSERT_EQUAL(P.ng, 1);
    CU_ASSERT(isfinite(P.F));
    const double qP = 100.0 + 1.0 / 16.0;
    for (int p = 0; p < 2; p++) {
        double muL = mu[p] * qP / (qP - 1.0);
        CU_ASSERT(fabs(P.Ep[p] - muL) <= fabs(muL) / 111.0);
        CU_ASSERT(fabs(P.Ep[p]) < fabs(muL)); /* pulled towards the prior mean */
    }
    /* no between-subject variability: the precision rises above its prior */
    CU_ASSERT(P.Eh[0] > 0.0);
    printf("\n  equal subjects: Ep %.6f %.6f (mu 0.3 -0.2), Eh %.4f, F %.4f, %d iterations",
           P.Ep[0], P.Ep[1], P.Eh[0], P.F, P.iterations);
    /* each subject's posterior under the group prior stays at mu */
    double sE[2], dF;
    CU_ASSERT_EQUAL_FATAL(dcm_peb_subject_posterior(&P, NULL, 2, g.Ep, g.Cp, g.pE, g.pV, sE, &dF, &err),
                          DCM_OK);
    NEAR(sE[0], mu[0], 0.01);
    NEAR(sE[1], mu[1], 0.01);
    dcm_peb_result_free(&P);
    dcm_peb_result_free(&P);
}

static void test_peb_two_groups(void)
{
    /* the second half of the group has +0.4 on parameter 0 only: with the
       design [1, -0.5 / +0.5] the group effect is (0.4, 0) */
    const double mu[2] = {0.3, -0.2}, shift[2] = {0.4, 0.0};
    group g;
    make_group(&g, 12, mu, shift);
    double X[24];
    for (int i = 0; i < 12; i++) {
        X[i * 2] = 1.0;
        X[i * 2 + 1] = i >= 6 ? 0.5 : -0.5;
    }
    const int sel[2] = {0, 1};
    dcm_peb_input in = {12, 2, g.Ep, g.Cp, g.pE, g.pV, g.F, sel, 2, X, 2, 0, .q = DCM_PEB_Q_FROM_SINGLE};
    dcm_peb_result P;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(dcm_peb(&in, &P, &err), DCM_OK);
    CU_ASSERT_EQUAL(P.ng, 2); /* one precision per parameter */
    /* Ep is parameters x covariates */
    NEAR(P.Ep[0 * 2 + 1], 0.4, 0.02);
    NEAR(P.Ep[1 * 2 + 1], 0.0, 0.02);
    NEAR(P.Ep[0 * 2 + 0], 0.5, 0.02);
    NEAR(P.Ep[1 * 2 + 0], -0.2, 0.02);
    double mean[4], var[4], dF[4], prob[4];
    dcm_peb_effects(&P, X, 12, g.pV, mean, var, dF, prob);
    /* effect k = parameter + covariate * 2 */
    NEAR(mean[2], P.Ep[0 * 2 + 1], 0.0);
    /* the real difference is more likely present than not, the absent one
       less; how sure is bounded by the hyperprior on the between-subject
       precision (hC = 1/16), as in SPM */
    CU_ASSERT(prob[2] > 0.5);
    CU_ASSERT(prob[3] < 0.5);
    for (int k = 0; k < 4; k++) {
        /* Savage-Dickey against the covariate's prior variance: 12 / sum
           x^2 = 1 (intercept) or 4 (the +-0.5 covariate), times pV = 1 */
        double pv = k < 2 ? 1.0 : 4.0, v = P.Cp[k * 4 + k], m = mean[k];
        NEAR(var[k], v, 0.0);
        NEAR(dF[k], 0.5 * log(pv / v) - 0.5 * m * m / v, 1e-12);
        NEAR(prob[k], 1.0 / (1.0 + exp(dF[k])), 1e-15);
    }
    dcm_bmr_search_result B;
    CU_ASSERT_EQUAL_FATAL(dcm_peb_reduce(&P, X, 12, g.pE, g.pV, &B, &err), DCM_OK);
    CU_ASSERT(B.keep[2]);
    CU_ASSERT(!B.keep[3]);
    CU_ASSERT(B.dF >= 0.0);
    printf("\n  two groups: group effects %.4f %.4f, P(present) %.4f %.4f",
           P.Ep[1], P.Ep[3], prob[2], prob[3]);
    dcm_bmr_search_result_free(&B);
    dcm_peb_result_free(&P);
    /* a design column of zeros is refused as input */
    for (int i = 0; i < 12; i++)
        X[i * 2 + 1] = 0.0;
    CU_ASSERT_EQUAL(dcm_peb(&in, &P, &err), DCM_ERR_INPUT);
    CU_ASSERT_STRING_EQUAL(err.msg, "the group-level inversion: invalid design or sizes");
    CU_ASSERT_PTR_NULL(P.Ep);
}

int main(void)
{
    static const test_case cases[] = {
        {"FFX posterior probabilities by hand", test_ffx_by_hand},
        {"family FFX by hand", test_families_by_hand},
        {"RFX with one model chosen by every subject", test_rfx_api},
        {"errors are dcm_error codes with messages", test_errors},
        {"Pp = Phi((|Ep| - pE) / sd)", test_posterior_probability},
        {"BMA of two posteriors with weights 1/4, 3/4", test_bma_known_weights},
        {"group mean and its standard error", test_group_mean},
        {"switching a parameter off: Gaussian closed form", test_switch_off_closed_form},
        {"PEB: all subjects equal", test_peb_equal_subjects},
        {"PEB: two groups differing in one parameter", test_peb_two_groups},
        {NULL, NULL}};
    return test_run("group_api", cases);
}
