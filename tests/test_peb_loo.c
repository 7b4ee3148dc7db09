/* test_peb_loo.c — leave-one-out cross-validation (spm_dcm_loo), PEB of
 * PEBs and PEB outputs (review, report, --mat):
 * - the library's LOO on SPM12's own first-level estimates of the PEB
 *   tutorial subset (../shared/reference/peb_tutorial) against SPM's
 *   spm_dcm_loo(GCM, M, {'B(4,4,3)'}): every subject's predicted LI (qE,
 *   qC) and r;
 * - one fold recomputed by hand: PEB on the others, then the prediction;
 * - `dcm loo` on result files carrying SPM's first levels: SPM's numbers
 *   through the command, the names B(4,4,3) and B:Words:rdF->rdF alike,
 *   review and report of the result, bad input (covariate not in the
 *   design, too few subjects, a B(i,j,k) out of range);
 * - `dcm peb --mat`: SPM's PEB struct read back (Pind as SPM's);
 *   review of a PEB result;
 * - PEB of PEBs: two groups (subjects 1-10, 11-20) against the library's
 *   PEB recomputed from the two group results; a design over groups.
 * Skips with a message when ../shared is absent. */
#define _XOPEN_SOURCE 700
#include <math.h>
#include <stdlib.h>

#include "tests/test_util.h"

#include <sys/stat.h>

#include "dcm/dcm_loo.h"
#include "io/io_mat.h"
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

/* one fold by hand: PEB on the other 19, then the prediction in closed
 * form. For one parameter the left-out subject's likelihood is Gaussian
 * (precision L = 1/qC - 1/pC, mean y with L y = qE/qC - pE/pC), so
 * y ~ N(W b, 1/L + Ce) and b | y is Gaussian: each of spm_dcm_ppd's four
 * passes is a conjugate update, which the Fisher scoring must reach. */
static void test_loo_fold_by_hand(void)
{
    spm_subset S;
    json_t *loo = NULL;
    if (!load_subset(&S, &loo))
        return;
    json_decref(loo);
    const int out_s = 3, nx = 5, col = 1; /* sub-04: SPM's largest prediction */
    double Ep[NSUB], Cp[NSUB], pE[NSUB], pV[NSUB], F[NSUB], X[NSUB * 5];
    int k = 0;
    for (int s = 0; s < NSUB; s++) {
        if (s == out_s)
            continue;
        Ep[k] = S.Ep[s], Cp[k] = S.Cp[s], pE[k] = S.pE[s], pV[k] = S.pV[s], F[k] = S.F[s];
        memcpy(X + k * nx, S.X + s * nx, sizeof(double) * nx);
        k++;
    }
    int sel = 0;
    dcm_peb_input tr = {.nsub = NSUB - 1, .np = 1, .Ep = Ep, .Cp = Cp, .pE = pE, .pV = pV, .F = F,
                        .sel = &sel, .nsel = 1, .X = X, .nx = nx, .q = DCM_PEB_Q_SINGLE};
    dcm_peb_result P;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(dcm_peb(&tr, &P, &err), 0);
    /* closed form over four passes */
    double m = 0.0, v = 0.0;
    for (int i = 0; i < NSUB - 1; i++)
        m += X[i * nx + col] / (NSUB - 1);
    for (int i = 0; i < NSUB - 1; i++)
        v += (X[i * nx + col] - m) * (X[i * nx + col] - m) / (NSUB - 2);
    const double L = 1.0 / S.Cp[out_s] - 1.0 / S.pV[out_s];
    const double y = (S.Ep[out_s] / S.Cp[out_s] - S.pE[out_s] / S.pV[out_s]) / L;
    const double Sy = 1.0 / L + P.Ce[0];
    double bE[5];
    for (int j = 0; j < nx; j++)
        bE[j] = j == col ? 0.0 : S.X[out_s * nx + j];
    double qE = 0.0, qC = 0.0;
    for (int pass = 0; pass < 4; pass++) {
        /* posterior precision A = bP + W' W / Sy (W a row of nx), mean A^-1 (bP bE + W' y / Sy) */
        double A[25], rhs[5];
        for (int a = 0; a < nx; a++) {
            double bc = (a == col ? 4.0 * v : 0.0) + exp(-(double)pass);
            for (int c = 0; c < nx; c++)
                A[a * nx + c] = (a == c ? 1.0 / bc : 0.0) + P.Ep[a] * P.Ep[c] / Sy;
            rhs[a] = bE[a] / bc + P.Ep[a] * y / Sy;
        }
        /* solve by Gauss-Jordan (small, positive definite); keep A^-1 */
        double Ai[25];
        for (int a = 0; a < 25; a++)
            Ai[a] = (a % 6 == 0);
        for (int c = 0; c < nx; c++) {
            double piv = A[c * nx + c];
            for (int j = 0; j < nx; j++) {
                A[c * nx + j] /= piv;
                Ai[c * nx + j] /= piv;
            }
            for (int r = 0; r < nx; r++)
                if (r != c) {
                    double f = A[r * nx + c];
                    for (int j = 0; j < nx; j++) {
                        A[r * nx + j] -= f * A[c * nx + j];
                        Ai[r * nx + j] -= f * Ai[c * nx + j];
                    }
                }
        }
        double b[5];
        for (int a = 0; a < nx; a++) {
            b[a] = 0.0;
            for (int c = 0; c < nx; c++)
                b[a] += Ai[a * nx + c] * rhs[c];
        }
        bE[col] = b[col];
        qE = b[col];
        qC = Ai[col * nx + col];
    }
    /* the same four passes through the engine's within-subject PEB */
    double hbE[5], hbC[25], hEp[5], hCp[25], hF;
    for (int j = 0; j < nx; j++)
        hbE[j] = j == col ? 0.0 : S.X[out_s * nx + j];
    double pC1 = S.pV[out_s];
    for (int pass = 0; pass < 4; pass++) {
        memset(hbC, 0, sizeof hbC);
        for (int j = 0; j < nx; j++)
            hbC[j * nx + j] = (j == col ? 4.0 * v : 0.0) + exp(-(double)pass);
        vl_peb_single_input si = {.np = 1, .nw = nx, .qE = &S.Ep[out_s], .qC = &S.Cp[out_s], .pE = &S.pE[out_s],
                                  .pC = &pC1, .F = S.F[out_s], .W = P.Ep, .Ce = P.Ce, .bE = hbE, .bC = hbC};
        CU_ASSERT_EQUAL_FATAL(vl_peb_single(&si, hEp, hCp, &hF, NULL), 0);
        hbE[col] = hEp[col];
    }
    int one = 0;
    dcm_peb_input all = {.nsub = NSUB, .np = 1, .Ep = S.Ep, .Cp = S.Cp, .pE = S.pE, .pV = S.pV, .F = S.F,
                         .sel = &one, .nsel = 1, .X = S.X, .nx = nx, .q = DCM_PEB_Q_SINGLE};
    dcm_loo_result R;
    CU_ASSERT_EQUAL_FATAL(dcm_loo(&all, col, &R, &err), 0);
    printf("\n  sub-04: dcm_loo qE %.8f qC %.8f; by hand through vl_peb_single %.8f %.8f; conjugate "
           "closed form %.8f %.8f\n", R.qE[out_s], R.qC[out_s], hEp[col], hCp[col * nx + col], qE, qC);
    CU_ASSERT(fabs(R.qE[out_s] - hEp[col]) < 1e-12);
    CU_ASSERT(fabs(R.qC[out_s] - hCp[col * nx + col]) < 1e-12);
    /* the covariance is the conjugate one exactly; the mean is not: SPM's
       stopping rule compares free energies with the uncentred complexity
       b' bP b / 2 while the steps follow the centred gradient, so the
       iterations stop short of the conjugate mean when the prior mean of b
       is not 0 (here the known covariates) — and SPM's own qE (2.8508 for
       sub-04, test above) is where they stop */
    CU_ASSERT(fabs(R.qC[out_s] - qC) < 1e-6);
    CU_ASSERT(fabs(R.qE[out_s] - qE) > 0.1);
    dcm_loo_result_free(&R);
    /* too few subjects, the constant column: clear errors */
    all.nsub = 2;
    CU_ASSERT_EQUAL(dcm_loo(&all, col, &R, &err), DCM_ERR_INPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "at least 3 subjects"));
    all.nsub = NSUB;
    CU_ASSERT_EQUAL(dcm_loo(&all, 0, &R, &err), DCM_ERR_INPUT);
    dcm_loo_result_free(&R);
    dcm_peb_result_free(&P);
}

/* ------------------------------------------------------------ the command */

static int fits_ok; /* tmpdir/out holds SPM's first levels as result files */
static char design_path[4096];

static int run(const char *args)
{
    return test_dcm(args, out, sizeof out);
}

static json_t *run_json(const char *args)
{
    return test_dcm_json(args, out, sizeof out);
}

/* One real result file (sub-01, 2 iterations) with SPM's first-level
 * posterior of each subject put in (Ep, a diagonal Cp: all a one-parameter
 * LOO uses of it) and F: the command then sees SPM's inputs. */
static int make_fits(void)
{
    if (fits_ok)
        return 1;
    char p[4096], args[8192];
    if (!test_shared_path("datasets/peb_tutorial/sub-01_DCM_full.mat", p, sizeof p) ||
        !test_shared_path("datasets/peb_tutorial/design.tsv", design_path, sizeof design_path)) {
        test_skip("../shared/datasets/peb_tutorial is absent");
        return 0;
    }
    snprintf(args, sizeof args, "estimate %s --spm12-te --maxit 2 -q -o %s/base.json", p, tmpdir);
    if (run(args)) {
        printf("\n  %.1000s\n", out);
        return 0;
    }
    snprintf(p, sizeof p, "%s/base.json", tmpdir);
    json_t *base = test_load_json(p);
    if (!base)
        return 0;
    for (int s = 1; s <= NSUB; s++) {
        char rel[256];
        snprintf(rel, sizeof rel, "reference/peb_tutorial/spm_first_level/sub-%02d.json", s);
        json_t *f = test_load_json(test_shared_path(rel, p, sizeof p));
        if (!f)
            return 0;
        json_t *ep = json_object_get(f, "Ep"), *cd = json_object_get(f, "Cp_diag");
        const size_t np = json_array_size(ep);
        json_t *cov = json_array();
        for (size_t i = 0; i < np; i++) {
            json_t *row = json_array();
            for (size_t j = 0; j < np; j++)
                json_array_append_new(row, json_real(i == j ? json_number_value(json_array_get(cd, i)) : 0.0));
            json_array_append_new(cov, row);
        }
        json_t *vec = json_object_get(base, "vector");
        json_object_set(vec, "posterior_mean", ep);
        json_object_set_new(vec, "posterior_cov", cov);
        json_object_set_new(base, "free_energy", json_real(num(f, "F")));
        snprintf(args, sizeof args, "mkdir -p %s/out/sub-%02d", tmpdir, s);
        if (test_shell(args, out, sizeof out))
            return 0;
        snprintf(p, sizeof p, "%s/out/sub-%02d/full.json", tmpdir, s);
        if (json_dump_file(base, p, JSON_COMPACT))
            return 0;
        json_decref(f);
    }
    json_decref(base);
    fits_ok = 1;
    return 1;
}

static void test_cli_loo(void)
{
    spm_subset S;
    json_t *loo = NULL;
    if (!load_subset(&S, &loo) || !make_fits()) {
        json_decref(loo);
        return;
    }
    char args[8192];
    snprintf(args, sizeof args, "loo %s/out --model full --design %s --param 'B(4,4,3)' --covariate LI --json "
             "-o %s/loo.json", tmpdir, design_path, tmpdir);
    json_t *o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    json_t *qE = arr(loo, "qE"), *qC = arr(loo, "qC"), *subs = json_object_get(o, "subjects");
    CU_ASSERT_EQUAL_FATAL(json_array_size(subs), NSUB);
    double dE = 0.0, dC = 0.0;
    for (int s = 0; s < NSUB; s++) {
        json_t *e = json_array_get(subs, (size_t)s);
        dE = fmax(dE, fabs(num(e, "predicted") - json_number_value(json_array_get(qE, (size_t)s))));
        dC = fmax(dC, fabs(pow(num(e, "sd"), 2) - json_number_value(json_array_get(qC, (size_t)s))));
        CU_ASSERT(fabs(num(e, "true") - S.X[s * 5 + 1]) < 1e-12);
    }
    printf("\n  dcm loo on SPM's first levels: max |dqE| %.3g, max |dqC| %.3g, r %.6f (SPM %.6f), p %.6f "
           "one-tailed\n", dE, dC, num(o, "r"), num(loo, "r"), num(o, "p"));
    CU_ASSERT(dE < 1e-6);
    CU_ASSERT(dC < 1e-6);
    CU_ASSERT(fabs(num(o, "r") - num(loo, "r")) < 1e-6);
    CU_ASSERT(fabs(num(o, "p_two_sided") - num(loo, "p_two_sided")) < 1e-6);
    CU_ASSERT(fabs(num(o, "p") - num(loo, "p_two_sided") / 2) < 1e-6);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(o, "parameters"), 0)), "B:Words:rdF->rdF");
    /* our name for the same parameter: the same numbers */
    snprintf(args, sizeof args, "loo %s/out --model full --design %s --param 'B:Words:rdF->rdF' --covariate LI "
             "--json", tmpdir, design_path);
    json_t *o2 = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o2);
    CU_ASSERT_EQUAL(num(o2, "r"), num(o, "r"));
    json_decref(o2);
    json_decref(o);
    json_decref(qE);
    json_decref(qC);
    json_decref(loo);
    /* review and report of the result */
    snprintf(args, sizeof args, "review %s/loo.json", tmpdir);
    CU_ASSERT_EQUAL(run(args), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "one-tailed (as SPM)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "sub-04"));
    snprintf(args, sizeof args, "report %s/loo.json -o %s/loo.html --png %s/figs", tmpdir, tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 0);
    char p[4096];
    snprintf(p, sizeof p, "%s/figs/loo_loo.png", tmpdir);
    struct stat st;
    CU_ASSERT(stat(p, &st) == 0 && st.st_size > 1000);
    snprintf(args, sizeof args, "grep -c 'Leave-one-out' %s/loo.html", tmpdir);
    CU_ASSERT_EQUAL(test_shell(args, out, sizeof out), 0);
}

static void test_cli_loo_errors(void)
{
    if (!make_fits())
        return;
    char args[8192];
    snprintf(args, sizeof args, "loo %s/out --model full --design %s --param 'B(4,4,3)' --covariate IQ", tmpdir,
             design_path);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--covariate IQ is not a column of"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "its columns are: Mean, LI, Handedness, Gender, Age"));
    snprintf(args, sizeof args, "loo %s/out --model full --design %s --param 'B(4,4,3)' --covariate Mean", tmpdir,
             design_path);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "the constant"));
    snprintf(args, sizeof args, "loo %s/out --model full --design %s --param 'B(4,4,3)' --covariate LI "
             "--subjects sub-01,sub-02", tmpdir, design_path);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "at least 3 subjects (2 given)"));
    snprintf(args, sizeof args, "loo %s/out --model full --design %s --param 'B(4,5,3)' --covariate LI", tmpdir,
             design_path);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "parameter 'B(4,5,3)': index 2 is 5"));
    snprintf(args, sizeof args, "loo %s/out --model full --design %s --param 'B(4,4,3)'", tmpdir, design_path);
    CU_ASSERT_EQUAL(run(args), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--covariate NAME"));
    snprintf(args, sizeof args, "loo %s/out --model full --design %s --param 'B(4,4,3)' --covariate LI -o %s",
             tmpdir, design_path, design_path);
    CU_ASSERT_NOT_EQUAL(run(args), 0); /* never overwrite an input */
    snprintf(args, sizeof args, "loo --help");
    CU_ASSERT_EQUAL(run(args), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "spm_dcm_loo"));

    /* design rows that do not match the subjects: one missing, one extra;
       a design without the subject column */
    char line[1024], missing[16384], extra[16384], noname[16384];
    char *m = missing, *e = extra, *n = noname;
    FILE *f = fopen(design_path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; fgets(line, sizeof line, f); i++) {
        if (i != 5)   /* drops sub-05 */
            m += sprintf(m, "%s", line);
        e += sprintf(e, "%s", line);
        n += sprintf(n, "%s", strchr(line, '\t') + 1);
    }
    fclose(f);
    sprintf(e, "sub-77\t1\t0.1\t0\t0\t0\n");
    struct {
        const char *name, *body, *msg;
    } bad[] = {
        {"design_missing.tsv", missing, "has no row for subject 'sub-05', who has results for full in"},
        {"design_extra.tsv", extra, "lists subject 'sub-77' but"},
        {"design_noname.tsv", noname, "a design needs a header 'subject<TAB>COVARIATE...' and one row per subject"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        test_write_file(tmpdir, bad[k].name, bad[k].body);
        snprintf(args, sizeof args, "loo %s/out --model full --design %s/%s --param 'B(4,4,3)' --covariate LI "
                 "-o %s/loo_bad.json", tmpdir, tmpdir, bad[k].name, tmpdir);
        int rc = run(args);
        if (rc != 2 || !strstr(out, bad[k].msg))
            printf("\n  %s: exit %d: %.500s\n", bad[k].name, rc, out);
        CU_ASSERT_EQUAL(rc, 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, bad[k].msg));
        snprintf(args, sizeof args, "%s/loo_bad.json", tmpdir);
        CU_ASSERT(access(args, F_OK) != 0);   /* nothing half-written */
    }
}

/* dcm peb --mat: SPM's PEB struct; SPM's names in --params; review */
static void test_peb_mat_review(void)
{
    if (!make_fits())
        return;
    char args[8192], p[4096];
    snprintf(args, sizeof args, "peb %s/out --model full --design %s --params B --q all --maxit 256 --json "
             "-o %s/peb.json --mat %s/peb.mat", tmpdir, design_path, tmpdir, tmpdir);
    json_t *o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    json_t *g = json_object_get(o, "group");
    int rank;
    size_t dims[4];
    double *x = NULL;
    dcm_error err = {0, ""};
    snprintf(p, sizeof p, "%s/peb.mat", tmpdir);
    CU_ASSERT_EQUAL_FATAL(io_mat_read_array(p, "PEB.Pind", &rank, dims, &x, &err), 0);
    static const double spm_pind[8] = {33, 38, 43, 48, 49, 54, 59, 64}; /* SPM's PEB.Pind */
    CU_ASSERT_EQUAL(dims[0], 8);
    for (int k = 0; k < 8; k++)
        CU_ASSERT_EQUAL(x[k], spm_pind[k]);
    free(x);
    CU_ASSERT_EQUAL_FATAL(io_mat_read_array(p, "PEB.Ep", &rank, dims, &x, &err), 0);
    CU_ASSERT(dims[0] == 8 && dims[1] == 5);
    double d = 0.0;
    for (int q = 0; q < 8; q++)
        for (int j = 0; j < 5; j++)
            d = fmax(d, fabs(x[q + 8 * j] - json_number_value(json_array_get(json_array_get(json_object_get(g, "Ep"), q), j))));
    CU_ASSERT(d == 0.0);
    free(x);
    CU_ASSERT_EQUAL_FATAL(io_mat_read_array(p, "PEB.F", &rank, dims, &x, &err), 0);
    CU_ASSERT_EQUAL(x[0], num(g, "F"));
    free(x);
    CU_ASSERT_EQUAL_FATAL(io_mat_read_array(p, "PEB.M.X", &rank, dims, &x, &err), 0);
    CU_ASSERT(dims[0] == NSUB && dims[1] == 5);
    free(x);
    CU_ASSERT_EQUAL_FATAL(io_mat_read_array(p, "PEB.Cp", &rank, dims, &x, &err), 0);
    CU_ASSERT(dims[0] == 40 && dims[1] == 40);
    free(x);
    /* SPM's names select as ours do */
    snprintf(args, sizeof args, "peb %s/out --model full --design %s --params 'B(4,4,3)' --params 'B(1,1,2)' --json",
             tmpdir, design_path);
    json_t *a = run_json(args);
    snprintf(args, sizeof args, "peb %s/out --model full --design %s --params 'B:Words:rdF->rdF' "
             "--params 'B:Pictures:lvF->lvF' --json", tmpdir, design_path);
    json_t *b = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(num(json_object_get(a, "group"), "F"), num(json_object_get(b, "group"), "F"));
    CU_ASSERT_EQUAL(json_array_size(json_object_get(json_object_get(a, "group"), "Pnames")), 2);
    json_decref(a);
    json_decref(b);
    /* review: the parameter x covariate table with F, iterations, converged */
    snprintf(args, sizeof args, "review %s/peb.json", tmpdir);
    CU_ASSERT_EQUAL(run(args), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "converged: yes"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "B:Words:rdF->rdF"));
    char line[256];
    snprintf(line, sizeof line, "free energy  %.4f", num(g, "F"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, line));
    json_decref(o);
}

/* the group results of PEB of PEBs recomputed with the library */
static void recompute_pebs(json_t *g1, json_t *g2, const double *X, int nx, double *F, double *Ep)
{
    json_t *gs[2] = {json_object_get(g1, "group"), json_object_get(g2, "group")};
    const int np = (int)json_array_size(json_object_get(gs[0], "Pnames"));
    const int cx = (int)json_array_size(json_object_get(gs[0], "Xnames")), nb = np * cx;
    double *qE = malloc(sizeof(double) * 2 * nb), *qC = malloc(sizeof(double) * 2 * nb * nb);
    double *pE = malloc(sizeof(double) * 2 * nb), *pV = malloc(sizeof(double) * 2 * nb), Fi[2];
    int *sel = malloc(sizeof(int) * nb), nsel = 0;
    for (int i = 0; i < 2; i++) {
        json_t *M = json_object_get(gs[i], "M");
        Fi[i] = num(gs[i], "F");
        for (int j = 0; j < cx; j++)
            for (int q = 0; q < np; q++)
                qE[i * nb + q + j * np] = json_number_value(json_array_get(json_array_get(json_object_get(gs[i], "Ep"), q), j));
        for (int k = 0; k < nb; k++) {
            pE[i * nb + k] = json_number_value(json_array_get(json_object_get(M, "pE"), k));
            pV[i * nb + k] = json_number_value(json_array_get(json_array_get(json_object_get(M, "pC"), k), k));
            for (int l = 0; l < nb; l++)
                qC[(size_t)i * nb * nb + (size_t)k * nb + l] =
                    json_number_value(json_array_get(json_array_get(json_object_get(gs[i], "Cp"), k), l));
        }
    }
    for (int k = 0; k < nb; k++)
        if (pV[k] > 0)
            sel[nsel++] = k;
    dcm_peb_input in = {.nsub = 2, .np = nb, .Ep = qE, .Cp = qC, .pE = pE, .pV = pV, .F = Fi, .sel = sel,
                        .nsel = nsel, .X = X, .nx = nx, .q = DCM_PEB_Q_SINGLE};
    dcm_peb_result R;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(dcm_peb(&in, &R, &err), 0);
    *F = R.F;
    memcpy(Ep, R.Ep, sizeof(double) * R.np * R.nx);
    dcm_peb_result_free(&R);
    free(qE);
    free(qC);
    free(pE);
    free(pV);
    free(sel);
}

static void test_peb_of_pebs(void)
{
    if (!make_fits())
        return;
    char args[8192], list[2][256] = {"", ""};
    for (int s = 1; s <= NSUB; s++) {
        char *l = list[s > 10];
        sprintf(l + strlen(l), "%ssub-%02d", (s == 1 || s == 11) ? "" : ",", s);
    }
    for (int g = 0; g < 2; g++) {
        snprintf(args, sizeof args, "peb %s/out --model full --design %s --params B --subjects %s -o %s/g%d.json",
                 tmpdir, design_path, list[g], tmpdir, g + 1);
        CU_ASSERT_EQUAL_FATAL(run(args), 0);
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/g1.json", tmpdir);
    json_t *g1 = test_load_json(p);
    snprintf(p, sizeof p, "%s/g2.json", tmpdir);
    json_t *g2 = test_load_json(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g2);
    /* a constant: the mean over the two groups */
    snprintf(args, sizeof args, "peb %s/g1.json %s/g2.json --json -o %s/pp.json", tmpdir, tmpdir, tmpdir);
    json_t *o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    json_t *g = json_object_get(o, "group");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(g, "Pnames")), 40);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(g, "Pnames"), 15)),
                           "LI: B:Words:rdF->rdF");
    double X1[2] = {1, 1}, F, Ep[80];
    recompute_pebs(g1, g2, X1, 1, &F, Ep);
    double d = fabs(F - num(g, "F"));
    for (int k = 0; k < 40; k++)
        d = fmax(d, fabs(Ep[k] - json_number_value(json_array_get(json_array_get(json_object_get(g, "Ep"), k), 0))));
    printf("\n  PEB of two PEBs vs recomputed: max difference %.3g (F %.4f)\n", d, num(g, "F"));
    CU_ASSERT(d < 1e-9);
    /* a design over the groups (mean, difference), rows named by file */
    test_write_file(tmpdir, "groups.tsv", "subject\tMean\tGroup\ng1\t1\t1\ng2\t1\t-1\n");
    snprintf(args, sizeof args, "peb %s/g1.json %s/g2.json --design %s/groups.tsv --params 'Mean: *' --json", tmpdir,
             tmpdir, tmpdir);
    json_t *o2 = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o2);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(json_object_get(o2, "group"), "Pnames")), 8);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(o2, "effects")), 16);
    /* review of a PEB of PEBs; a result that is not a PEB: a clear error */
    snprintf(args, sizeof args, "review %s/pp.json", tmpdir);
    CU_ASSERT_EQUAL(run(args), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "PEB of PEBs"));
    snprintf(args, sizeof args, "peb %s/g1.json %s/base.json", tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "is not a PEB result"));
    snprintf(args, sizeof args, "peb %s/g1.json", tmpdir);
    CU_ASSERT_EQUAL(run(args), 1);
    json_decref(o2);
    json_decref(o);
    json_decref(g1);
    json_decref(g2);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dcm-peb-loo-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    static const test_case cases[] = {
        {"LOO (spm_dcm_loo) on SPM's first levels of the tutorial subset vs SPM", test_loo_vs_spm},
        {"LOO: one fold recomputed (PEB on the others, conjugate prediction)", test_loo_fold_by_hand},
        {"dcm loo on SPM's first levels vs spm_dcm_loo; review and report of it", test_cli_loo},
        {"dcm loo: bad input", test_cli_loo_errors},
        {"dcm peb --mat (SPM's PEB struct), SPM's names in --params, review", test_peb_mat_review},
        {"PEB of PEBs vs a recomputation; a design over groups", test_peb_of_pebs},
        {NULL, NULL}};
    int rc = test_run("PEB LOO and outputs", cases);
    if (test_remove_dir(tmpdir))
        rc = 1;
    return rc;
}
