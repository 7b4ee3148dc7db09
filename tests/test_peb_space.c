/* test_peb_space.c — hypothesis spaces of reduced group models over a PEB
 * (`dcm peb --models`, SPM's spm_dcm_peb_bmc with a model space) and
 * families of them (`--families`, spm_dcm_peb_bmc_fam). No SPM reference
 * numbers exist for a model space on the public subset, so the numbers are
 * checked against independent recomputations:
 * - a synthetic group (known group effects, no first-level fitting): the
 *   generating model wins in both factors; every joint model's F equals a
 *   Bayesian model reduction of the PEB posterior (dcm_bmr_switch_off, the
 *   public BMR) with that pattern; posteriors and marginals sum to 1;
 *   family posteriors equal the sums of model posteriors under SPM's
 *   family priors; the WINNING BMA is the mixture of that pair's models;
 * - the tutorial's public subset (../shared; skipped without it): the 28
 *   templates of datasets/peb_tutorial/models.json and its three family
 *   factors through the command, joint F recomputed from the JSON's PEB,
 *   a {full, empty} space against single reductions;
 * - bad input: a parameter not in the PEB, an empty space, duplicate names,
 *   a design whose rows do not match the subjects, families that do not
 *   partition the models;
 * - a simulated DCM group (dcm simulate + batch + peb, fixed seeds): the
 *   generating pattern of modulations wins in both factors. */
#define _XOPEN_SOURCE 700
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "tests/test_util.h"

#include <gsl/gsl_linalg.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <unistd.h>

#include "dcm/dcm_peb_space.h"

static char tmpdir[256];
static char out[1 << 21];
static char data[4096]; /* ../shared/datasets/peb_tutorial ("" when absent) */
static char repo[PATH_MAX];

static int run(const char *args)
{
    return test_dcm(args, out, sizeof out);
}

static json_t *run_json(const char *args)
{
    return test_dcm_json(args, out, sizeof out);
}

static double num(json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static double mat(json_t *a, size_t i, size_t j)
{
    return json_number_value(json_array_get(json_array_get(a, i), j));
}

/* ------------------------------------------------ a synthetic group */

#define SN 30 /* subjects */
#define SP 4  /* parameters */
#define SX 2  /* covariates: mean, group */

/* Subject posteriors around known group effects: commonalities on
 * parameters 0 and 1, a group difference on parameter 0 only. */
static void synthetic_peb(dcm_peb_result *P, double *X, double *pV)
{
    static const double beta_c[SP] = {0.6, -0.5, 0.0, 0.0}, beta_d[SP] = {0.8, 0.0, 0.0, 0.0};
    static double Ep[SN * SP], Cp[SN * SP * SP], pE[SN * SP], pVs[SN * SP];
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 12);
    memset(Cp, 0, sizeof Cp);
    for (int i = 0; i < SN; i++) {
        X[i * SX] = 1.0;
        X[i * SX + 1] = i < SN / 2 ? -0.5 : 0.5;
        for (int q = 0; q < SP; q++) {
            double theta = beta_c[q] + X[i * SX + 1] * beta_d[q] + gsl_ran_gaussian(rng, 0.1);
            Ep[i * SP + q] = theta + gsl_ran_gaussian(rng, 0.05);
            Cp[(size_t)i * SP * SP + q * SP + q] = 0.05 * 0.05;
            pE[i * SP + q] = 0.0;
            pVs[i * SP + q] = 1.0;
        }
    }
    for (int q = 0; q < SP; q++)
        pV[q] = 1.0;
    gsl_rng_free(rng);
    static const int sel[SP] = {0, 1, 2, 3};
    dcm_peb_input in = {.nsub = SN, .np = SP, .Ep = Ep, .Cp = Cp, .pE = pE, .pV = pVs, .sel = sel,
                        .nsel = SP, .X = X, .nx = SX, .q = DCM_PEB_Q_ALL, .maxit = 256};
    dcm_error err = {0, ""};
    int rc = dcm_peb(&in, P, &err);
    if (rc)
        printf("\n  dcm_peb: %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, DCM_OK);
}

/* the reduced model's F computed by the public BMR: the group prior of
 * vec(Ep) (variance pV scaled by nsub / sum X(:,j)^2, mean 0) with the
 * effects off that the pattern switches off */
static double independent_F(const dcm_peb_result *P, const double *X, const double *pV,
                            const unsigned char *Ki, const unsigned char *Kj)
{
    const int np = P->np, nx = P->nx, nb = np * nx;
    double qE[64], bE[64], bV[64];
    unsigned char off[64];
    for (int j = 0; j < nx; j++) {
        double sx = 0.0;
        for (int i = 0; i < SN; i++)
            sx += X[i * nx + j] * X[i * nx + j];
        for (int q = 0; q < np; q++) {
            int k = q + j * np;
            qE[k] = P->Ep[q * nx + j];
            bE[k] = 0.0;
            bV[k] = SN / sx * pV[q];
            off[k] = j == 0 ? !Ki[q] : j == 1 ? !Kj[q] : 0;
        }
    }
    double dF = NAN;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL(dcm_bmr_switch_off(nb, qE, P->Cp, bE, bV, off, &dF, NULL, NULL, &err), DCM_OK);
    return dF;
}

static void test_synthetic_space(void)
{
    dcm_peb_result P;
    double X[SN * SX], pV[SP];
    synthetic_peb(&P, X, pV);
    /* every combination of the 4 parameters: 16 models, row m = bits of m */
    const int nm = 16;
    unsigned char K[16 * SP];
    for (int m = 0; m < nm; m++)
        for (int q = 0; q < SP; q++)
            K[m * SP + q] = (m >> q) & 1;
    dcm_peb_space_result R;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL_FATAL(dcm_peb_space(&P, X, SN, (double[SP]){0}, pV, 1.0, K, nm, &R, &err), DCM_OK);
    CU_ASSERT_EQUAL(R.nc, 16);
    CU_ASSERT_EQUAL(R.nd, 16);
    /* the generating model: commonalities {0, 1} = 3, differences {0} = 1 */
    printf("\n  synthetic group: best commonalities %d (true 3), differences %d (true 1), P = %.4f; "
           "P(commonalities = 3) %.4f, P(differences = 1) %.4f\n", R.best_c, R.best_d,
           R.P[R.best_c * 16 + R.best_d], R.Pc[3], R.Pd[1]);
    CU_ASSERT_EQUAL(R.best_c, 3);
    CU_ASSERT_EQUAL(R.best_d, 1);
    CU_ASSERT(R.Pc[3] > 0.5);
    CU_ASSERT(R.Pd[1] > 0.5);
    /* posteriors sum to 1; marginals are the row and column sums */
    double s = 0.0, sc = 0.0, sd = 0.0, dmax = 0.0;
    for (int m = 0; m < 256; m++)
        s += R.P[m];
    for (int i = 0; i < 16; i++) {
        double row = 0.0, col = 0.0;
        for (int j = 0; j < 16; j++) {
            row += R.P[i * 16 + j];
            col += R.P[j * 16 + i];
        }
        dmax = fmax(dmax, fmax(fabs(row - R.Pc[i]), fabs(col - R.Pd[i])));
        sc += R.Pc[i];
        sd += R.Pd[i];
    }
    CU_ASSERT(fabs(s - 1.0) < 1e-12 && fabs(sc - 1.0) < 1e-12 && fabs(sd - 1.0) < 1e-12);
    CU_ASSERT(dmax < 1e-12);
    /* each joint model's F = the public BMR with that pattern; F(full,
       full) = 0 */
    double dF = 0.0;
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++)
            dF = fmax(dF, fabs(R.F[i * 16 + j] - independent_F(&P, X, pV, K + i * SP, K + j * SP)));
    printf("  max |F - F(dcm_bmr_switch_off)| over 256 joint models: %.3g; F(full, full) = %g\n", dF, R.F[255]);
    CU_ASSERT(dF < 1e-6);
    CU_ASSERT(fabs(R.F[255]) < 1e-8);
    /* Pp of an effect = the mass of the models with it on; the true ones
       are present, the null difference on parameter 1 is not */
    double pp0 = 0.0;
    for (int m = 0; m < 256; m++)
        pp0 += (m / 16) & 1 ? R.P[m] : 0.0;
    CU_ASSERT(fabs(R.Pp[0] - pp0) < 1e-12);
    CU_ASSERT(R.Pp[0] > 0.95 && R.Pp[1] > 0.95 && R.Pp[SP + 0] > 0.95);
    CU_ASSERT(R.Pp[SP + 1] < 0.5);
    printf("  BMA: group difference on parameter 0: %.3f (true 0.8), Pp %.4f; on parameter 1: %.3f, Pp %.4f\n",
           R.Ep[SP], R.Pp[SP], R.Ep[SP + 1], R.Pp[SP + 1]);
    CU_ASSERT(fabs(R.Ep[SP] - 0.8) < 0.15);

    /* families: "parameter 0 on" vs "off" (equal sizes: the family
       posterior is the sum of the model posteriors), and "null" vs the
       rest (unequal: SPM's family priors) */
    int fam[16];
    dcm_peb_family_result Fm;
    for (int m = 0; m < 16; m++)
        fam[m] = (m & 1) ? 0 : 1;
    CU_ASSERT_EQUAL_FATAL(dcm_peb_families(&R, fam, 2, DCM_PEB_FAM_BMA_NONE, &Fm, &err), DCM_OK);
    double f0 = 0.0;
    for (int m = 0; m < 16; m++)
        f0 += (m & 1) ? R.Pc[m] : 0.0;
    CU_ASSERT(fabs(Fm.Pfc[0] - f0) < 1e-12);
    CU_ASSERT(Fm.Pfc[0] > 0.95 && Fm.Pfd[0] > 0.95);
    CU_ASSERT_PTR_NULL(Fm.Ep);
    dcm_peb_family_result_free(&Fm);
    for (int m = 0; m < 16; m++)
        fam[m] = m == 0 ? 1 : 0;
    CU_ASSERT_EQUAL_FATAL(dcm_peb_families(&R, fam, 2, DCM_PEB_FAM_BMA_WINNING, &Fm, &err), DCM_OK);
    /* by hand: prior of a model = 1 / (size of its family x 2) per factor */
    double post[256], z = 0.0, Fmax = -INFINITY, pf[4] = {0};
    for (int m = 0; m < 256; m++)
        Fmax = fmax(Fmax, R.F[m]);
    for (int m = 0; m < 256; m++) {
        int i = m / 16, j = m % 16;
        double pri = 1.0 / ((fam[i] ? 1 : 15) * 2.0) / ((fam[j] ? 1 : 15) * 2.0);
        z += post[m] = exp(R.F[m] - Fmax) * pri;
    }
    double dpf = 0.0, spf = 0.0;
    for (int m = 0; m < 256; m++)
        pf[fam[m / 16] * 2 + fam[m % 16]] += post[m] / z;
    for (int k = 0; k < 4; k++) {
        dpf = fmax(dpf, fabs(pf[k] - Fm.Pf[k]));
        spf += Fm.Pf[k];
    }
    printf("  families (null vs the rest): P(rest, rest) = %.6f, max |Pf - by hand| %.3g\n", Fm.Pf[0], dpf);
    CU_ASSERT(dpf < 1e-12);
    CU_ASSERT(fabs(spf - 1.0) < 1e-12);
    CU_ASSERT_EQUAL(Fm.win_c, 0);
    CU_ASSERT_EQUAL(Fm.win_d, 0);
    /* WINNING: the mixture of the (rest, rest) models within 8 of the best */
    CU_ASSERT_PTR_NOT_NULL_FATAL(Fm.Ep);
    double wz = 0.0, e0 = 0.0;
    int nin = 0;
    for (int m = 0; m < 256; m++)
        if (m / 16 && m % 16 && R.F[m] > Fmax - 8) {
            double w = exp(R.F[m] - Fmax);
            wz += w;
            e0 += w * R.sE[(size_t)m * R.n + SP];
            nin++;
        }
    CU_ASSERT_EQUAL(Fm.nbma, nin);
    CU_ASSERT(fabs(Fm.Ep[SP] - e0 / wz) < 1e-12);
    dcm_peb_family_result_free(&Fm);
    /* a family with no model is refused */
    for (int m = 0; m < 16; m++)
        fam[m] = 0;
    CU_ASSERT_EQUAL(dcm_peb_families(&R, fam, 2, DCM_PEB_FAM_BMA_ALL, &Fm, &err), DCM_ERR_INPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "family 2 has no model"));
    dcm_peb_space_result_free(&R);

    /* {full, empty}: the empty commonalities model against the full one is
       one reduction of all the mean effects */
    unsigned char K2[2 * SP] = {1, 1, 1, 1, 0, 0, 0, 0}, keep[3];
    CU_ASSERT_EQUAL_FATAL(dcm_peb_space(&P, X, SN, (double[SP]){0}, pV, 1.0, K2, 2, &R, &err), DCM_OK);
    CU_ASSERT(fabs(R.F[0]) < 1e-8);
    CU_ASSERT(fabs(R.F[2] - independent_F(&P, X, pV, K2 + SP, K2)) < 1e-6);
    CU_ASSERT(fabs(R.P[0] - 1.0 / (1.0 + exp(R.F[1]) + exp(R.F[2]) + exp(R.F[3]))) < 1e-12);
    dcm_peb_space_result_free(&R);
    /* repeated rows are compared once */
    unsigned char K3[3 * SP] = {1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0};
    int dup[3];
    CU_ASSERT_EQUAL(dcm_peb_space_unique(K3, 3, SP, keep, dup), 2);
    CU_ASSERT(keep[0] && keep[1] && !keep[2] && dup[2] == 0);
    dcm_peb_result_free(&P);
}

/* ------------------------------------------------ the tutorial's subset */

static int have_shared(void)
{
    char buf[4096];
    if (!test_shared_path("datasets/peb_tutorial/design.tsv", buf, sizeof buf))
        return 0;
    snprintf(data, sizeof data, "%s/datasets/peb_tutorial", test_shared_dir());
    return 1;
}

static int batch_done;

/* the 20 first levels (the release build when the test runner names it:
   the batch is not what is tested here) */
static int tutorial_batch(void)
{
    if (batch_done)
        return batch_done > 0;
    char manifest[8192], *m = manifest, cmd[8192];
    m += sprintf(m, "subject\tmodel\tspec\n");
    for (int s = 1; s <= 20; s++)
        m += sprintf(m, "sub-%02d\tfull\t%s/sub-%02d_DCM_full.mat\n", s, data, s);
    test_write_file(tmpdir, "manifest.tsv", manifest);
    const char *rel = getenv("DCM_RELEASE_BIN");
    snprintf(cmd, sizeof cmd, "%s batch %s/manifest.tsv -o %s/out -j 2 -q --spm12-te",
             rel && *rel && !access(rel, X_OK) ? rel : test_dcm_bin(), tmpdir, tmpdir);
    int rc = test_shell(cmd, out, sizeof out);
    if (rc)
        printf("\n  batch: %.1000s\n", out);
    batch_done = rc ? -1 : 1;
    return !rc;
}

/* the B prior variances of the PEB's parameters (self-connections) from
 * sub-01's result */
static int b_prior_var(json_t *pnames, double *pV)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/out/sub-01/full.json", tmpdir);
    json_t *r = test_load_json(p);
    if (!r)
        return -1;
    json_t *regions = json_object_get(r, "regions"), *B = json_object_get(json_object_get(r, "prior_var"), "B");
    size_t q;
    json_t *v;
    int ok = 0;
    json_array_foreach(pnames, q, v) {
        char input[64], region[64];
        if (sscanf(json_string_value(v), "B:%63[^:]:%63[^-]", input, region) != 2)
            continue;
        for (size_t i = 0; i < json_array_size(regions); i++)
            if (!strcmp(json_string_value(json_array_get(regions, i)), region)) {
                pV[q] = mat(json_object_get(B, input), i, i);
                ok++;
            }
    }
    json_decref(r);
    return ok == (int)json_array_size(pnames) ? 0 : -1;
}

/* ln N(0; m, C) - ln N(0; 0, diag(v)) over n effects: the Savage-Dickey
 * ratio, the exact log-evidence of switching them off under a diagonal
 * prior (LU of C, GSL) */
static double savage_dickey(int n, const double *m, const double *C, const double *v)
{
    if (!n)
        return 0.0;
    gsl_matrix *A = gsl_matrix_alloc((size_t)n, (size_t)n);
    gsl_vector *b = gsl_vector_alloc((size_t)n), *x = gsl_vector_alloc((size_t)n);
    gsl_permutation *perm = gsl_permutation_alloc((size_t)n);
    for (int i = 0; i < n; i++) {
        gsl_vector_set(b, (size_t)i, m[i]);
        for (int j = 0; j < n; j++)
            gsl_matrix_set(A, (size_t)i, (size_t)j, C[i * n + j]);
    }
    int sgn;
    gsl_linalg_LU_decomp(A, perm, &sgn);
    gsl_linalg_LU_solve(A, perm, b, x);
    double F = -0.5 * gsl_linalg_LU_lndet(A);
    for (int i = 0; i < n; i++)
        F += -0.5 * m[i] * gsl_vector_get(x, (size_t)i) + 0.5 * log(v[i]);
    gsl_matrix_free(A);
    gsl_vector_free(b);
    gsl_vector_free(x);
    gsl_permutation_free(perm);
    return F;
}

/* F of joint model (i, j) from the JSON's PEB (group Ep, Cp): by the
 * Savage-Dickey ratio (returned) and by the public BMR (*bmr: SPM's
 * formula, whose rounding on this PEB reaches 0.1) */
static double json_joint_F(json_t *o, const double *pV, json_t *Ki, json_t *Kj, const double *xc, double *bmr)
{
    json_t *g = json_object_get(o, "group");
    json_t *pn = json_object_get(g, "Pnames"), *Ep = json_object_get(g, "Ep"), *Cpj = json_object_get(g, "Cp");
    const int np = (int)json_array_size(pn), nx = (int)json_array_size(json_object_get(g, "Xnames")), nb = np * nx;
    double *qE = malloc(sizeof(double) * nb), *bE = calloc((size_t)nb, sizeof(double));
    double *bV = malloc(sizeof(double) * nb), *Cp = malloc(sizeof(double) * nb * nb);
    unsigned char *off = calloc((size_t)nb, 1);
    for (int k = 0; k < nb * nb; k++)
        Cp[k] = mat(Cpj, (size_t)(k / nb), (size_t)(k % nb));
    for (int j = 0; j < nx; j++)
        for (int q = 0; q < np; q++) {
            int k = q + j * np;
            qE[k] = mat(Ep, (size_t)q, (size_t)j);
            bV[k] = xc[j] * pV[q];
        }
    /* a model's "on" list names the parameters it keeps */
    for (int q = 0; q < np; q++) {
        const char *name = json_string_value(json_array_get(pn, (size_t)q));
        int on_i = 0, on_j = 0;
        size_t a;
        json_t *v;
        json_array_foreach(Ki, a, v) on_i |= !strcmp(json_string_value(v), name);
        json_array_foreach(Kj, a, v) on_j |= !strcmp(json_string_value(v), name);
        off[q] = !on_i;
        off[q + np] = !on_j;
    }
    double dF = NAN;
    dcm_error err = {0, ""};
    CU_ASSERT_EQUAL(dcm_bmr_switch_off(nb, qE, Cp, bE, bV, off, &dF, NULL, NULL, &err), DCM_OK);
    if (bmr)
        *bmr = dF;
    /* the effects switched off, among those in the prior's principal
       subspace (Handedness and Age, tiny prior variances, are not) */
    int S[64], ns = 0;
    double ss = 0.0, m[64], C[64 * 64], v[64];
    for (int k = 0; k < nb; k++)
        ss += bV[k] * bV[k];
    for (int k = 0; k < nb; k++)
        if (off[k] && bV[k] * bV[k] * nb / ss > 1e-6)
            S[ns++] = k;
    for (int a = 0; a < ns; a++) {
        m[a] = qE[S[a]];
        v[a] = bV[S[a]];
        for (int b = 0; b < ns; b++)
            C[a * ns + b] = Cp[S[a] * nb + S[b]];
    }
    free(qE);
    free(bE);
    free(bV);
    free(Cp);
    free(off);
    return savage_dickey(ns, m, C, v);
}

static void test_tutorial_space(void)
{
    if (!have_shared())
        return;
    if (!tutorial_batch()) {
        CU_FAIL("the batch of the tutorial's first levels failed");
        return;
    }
    char args[8192];
    snprintf(args, sizeof args, "peb %s/out --model full --design %s/design.tsv --params B --q all --maxit 256 "
             "--models %s/datasets/peb_tutorial/models.json --families %s/datasets/peb_tutorial/families.json --json",
             tmpdir, data, repo, repo);
    json_t *o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    json_t *ms = json_object_get(o, "model_space");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ms);
    json_t *models = json_object_get(ms, "models"), *F = json_object_get(ms, "F"), *P = json_object_get(ms, "posterior");
    CU_ASSERT_EQUAL_FATAL(json_array_size(models), 28);
    CU_ASSERT_EQUAL_FATAL(json_array_size(F), 28);
    CU_ASSERT_EQUAL_FATAL(json_array_size(json_array_get(F, 0)), 28);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(ms, "commonalities")), "Mean");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(ms, "differences")), "LI");
    /* posteriors sum to 1; F(full, full) = 0 */
    double s = 0.0;
    for (size_t i = 0; i < 28; i++)
        for (size_t j = 0; j < 28; j++)
            s += mat(P, i, j);
    CU_ASSERT(fabs(s - 1.0) < 1e-9);
    CU_ASSERT(fabs(mat(F, 0, 0)) < 1e-8);
    /* joint F recomputed from the PEB in the JSON */
    json_t *g = json_object_get(o, "group");
    double pV[8], xc[5];
    CU_ASSERT_EQUAL_FATAL(b_prior_var(json_object_get(g, "Pnames"), pV), 0);
    {
        char p[4096];
        snprintf(p, sizeof p, "%s/design.tsv", data);
        FILE *f = fopen(p, "r");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        char line[1024];
        double sx[5] = {0};
        int n = 0;
        CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof line, f)); /* header */
        while (fgets(line, sizeof line, f)) {
            char *c = strchr(line, '\t');
            for (int j = 0; j < 5 && c; j++) {
                double x = strtod(c + 1, &c);
                sx[j] += x * x;
            }
            n++;
        }
        fclose(f);
        for (int j = 0; j < 5; j++)
            xc[j] = n / sx[j];
    }
    double dF = 0.0, dbmr = 0.0, bmr = 0.0;
    const int pairs[][2] = {{0, 0}, {3, 14}, {27, 0}, {0, 27}, {27, 27}, {5, 2}, {14, 3}, {20, 9}};
    for (size_t k = 0; k < sizeof pairs / sizeof *pairs; k++) {
        int i = pairs[k][0], j = pairs[k][1];
        double ind = json_joint_F(o, pV, json_object_get(json_array_get(models, (size_t)i), "on"),
                                  json_object_get(json_array_get(models, (size_t)j), "on"), xc, &bmr);
        dF = fmax(dF, fabs(mat(F, (size_t)i, (size_t)j) - ind));
        dbmr = fmax(dbmr, fabs(bmr - ind));
    }
    printf("\n  tutorial subset, 28 x 28 joint models: best commonalities '%s', differences '%s' (P %.3f); "
           "max |F - Savage-Dickey from the JSON| %.3g (SPM's BMR formula: %.3g)\n",
           json_string_value(json_object_get(json_object_get(ms, "best"), "commonalities")),
           json_string_value(json_object_get(json_object_get(ms, "best"), "differences")),
           num(json_object_get(ms, "best"), "posterior"), dF, dbmr);
    /* SPM's 1e-8 prior variance for an effect switched off moves F from
       the exact limit by ~1e-5 here */
    CU_ASSERT(dF < 1e-4);
    CU_ASSERT(dbmr < 0.5);
    /* the tutorial's finding on this subset too: LI modulates Words at rdF */
    json_t *e;
    size_t k;
    int found = 0;
    json_array_foreach(json_object_get(ms, "effects"), k, e) {
        if (!strcmp(json_string_value(json_object_get(e, "parameter")), "B:Words:rdF->rdF") &&
            !strcmp(json_string_value(json_object_get(e, "covariate")), "LI")) {
            printf("  BMA B:Words:rdF->rdF x LI: %.3f (sd %.3f), Pp %.4f\n", num(e, "mean"), num(e, "sd"),
                   num(e, "probability"));
            CU_ASSERT(num(e, "probability") > 0.95);
            CU_ASSERT(num(e, "mean") > 1.0);
            found = 1;
        }
    }
    CU_ASSERT(found);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(ms, "effects")), 40);
    /* families: the task factor's family posterior = sums of model
       posteriors under its family priors (sizes 9, 9, 9, 1) */
    json_t *fams = json_object_get(o, "families");
    CU_ASSERT_EQUAL_FATAL(json_array_size(fams), 3);
    json_t *task = json_array_get(fams, 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(task, "bma")), "ALL");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(fams, 1), "bma")), "NONE");
    CU_ASSERT_PTR_NULL(json_object_get(json_array_get(fams, 1), "effects"));
    int famof[28];
    double size[4] = {9, 9, 9, 1}, Fmax = -INFINITY, z = 0.0, pfc[4] = {0}, pfd[4] = {0};
    for (int m = 0; m < 28; m++)
        famof[m] = m < 27 ? m / 9 : 3;
    for (size_t i = 0; i < 28; i++)
        for (size_t j = 0; j < 28; j++)
            Fmax = fmax(Fmax, mat(F, i, j));
    for (int i = 0; i < 28; i++)
        for (int j = 0; j < 28; j++) {
            double p = exp(mat(F, (size_t)i, (size_t)j) - Fmax) / (size[famof[i]] * 4) / (size[famof[j]] * 4);
            z += p;
            pfc[famof[i]] += p;
            pfd[famof[j]] += p;
        }
    double dpf = 0.0, sfc = 0.0;
    for (int f = 0; f < 4; f++) {
        json_t *fe = json_array_get(json_object_get(task, "families"), (size_t)f);
        dpf = fmax(dpf, fabs(num(fe, "posterior_commonalities") - pfc[f] / z));
        dpf = fmax(dpf, fabs(num(fe, "posterior_differences") - pfd[f] / z));
        sfc += num(fe, "posterior_commonalities");
        CU_ASSERT_EQUAL(json_array_size(json_object_get(fe, "models")), (size_t)size[f]);
    }
    printf("  task families: P(commonalities) both %.4f words %.4f pictures %.4f none %.4f; max |P - by hand| %.3g\n",
           num(json_array_get(json_object_get(task, "families"), 0), "posterior_commonalities"),
           num(json_array_get(json_object_get(task, "families"), 1), "posterior_commonalities"),
           num(json_array_get(json_object_get(task, "families"), 2), "posterior_commonalities"),
           num(json_array_get(json_object_get(task, "families"), 3), "posterior_commonalities"), dpf);
    CU_ASSERT(dpf < 1e-9);
    CU_ASSERT(fabs(sfc - 1.0) < 1e-9);
    /* ALL: the BMA is the model space's */
    json_t *fe0 = json_array_get(json_object_get(task, "effects"), 15), *me0 = json_array_get(json_object_get(ms, "effects"), 15);
    CU_ASSERT_EQUAL(num(fe0, "mean"), num(me0, "mean"));
    json_decref(o);

    /* the text table names the winners */
    snprintf(args, sizeof args, "peb %s/out --model full --design %s/design.tsv --params B --q all --maxit 256 "
             "--models %s/datasets/peb_tutorial/models.json --families %s/datasets/peb_tutorial/families.json",
             tmpdir, data, repo, repo);
    CU_ASSERT_EQUAL(run(args), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "model space (spm_dcm_peb_bmc): 28 models"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "families 'dorsoventral' (spm_dcm_peb_bmc_fam, BMA NONE)"));

    /* {full, empty} written by hand against single reductions: the same
       numbers as those joint models of the 28 */
    test_write_file(tmpdir, "fe.json", "{\"models\": [{\"name\": \"full\", \"off\": []}, {\"name\": \"empty\", \"on\": []}]}");
    snprintf(args, sizeof args, "peb %s/out --model full --design %s/design.tsv --params B --q all --maxit 256 "
             "--models %s/fe.json --json", tmpdir, data, tmpdir);
    o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    json_t *F2 = json_object_get(json_object_get(o, "model_space"), "F");
    json_t *on_all = json_object_get(json_array_get(json_object_get(json_object_get(o, "model_space"), "models"), 0), "on");
    json_t *none = json_array();
    CU_ASSERT_EQUAL(json_array_size(on_all), 8);
    double f10 = json_joint_F(o, pV, none, on_all, xc, NULL), f01 = json_joint_F(o, pV, on_all, none, xc, NULL);
    printf("  {full, empty}: F(empty, full) %.4f (single reduction %.4f), F(full, empty) %.4f (%.4f)\n",
           mat(F2, 1, 0), f10, mat(F2, 0, 1), f01);
    CU_ASSERT(fabs(mat(F2, 1, 0) - f10) < 1e-4);
    CU_ASSERT(fabs(mat(F2, 0, 1) - f01) < 1e-4);
    json_decref(none);
    json_decref(o);
}

static void test_bad_input(void)
{
    if (!have_shared())
        return;
    if (!tutorial_batch()) {
        CU_FAIL("the batch of the tutorial's first levels failed");
        return;
    }
    char base[4096], args[8192];
    snprintf(base, sizeof base, "peb %s/out --model full --design %s/design.tsv --params B --q all --maxit 256",
             tmpdir, data);
    struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"models\": [{\"name\": \"m\", \"off\": [\"B:Task:lvF->lvF\"]}]}",
         "model 'm': \"off\" names 'B:Task:lvF->lvF', which is not a parameter of the PEB; the PEB's "
         "parameters (--params) are: B:Pictures:lvF->lvF"},
        {"{\"models\": [{\"name\": \"m\", \"on\": [\"A:*\"]}]}", "names 'A:*', which matches no parameter of the PEB"},
        {"{\"models\": []}", "the model space is empty"},
        {"{\"models\": [{\"name\": \"m\", \"on\": [\"B\"]}]}", "no model switches off any of the PEB's parameters"},
        {"{\"models\": [{\"name\": \"m\", \"on\": [\"B\"]}, {\"name\": \"m\", \"on\": []}]}",
         "models 1 and 2 are both named 'm'"},
        {"{\"models\": [{\"name\": \"m\", \"of\": [\"B\"]}]}", "model 'm': unknown key \"of\""},
        {"{\"models\": [{\"on\": [\"B\"]}]}", "model 1 needs a \"name\""},
        {"[{\"name\": \"m\", \"on\": \"B:Words:zz->zz\"}]", "unknown region 'zz'"},
        {"{\"models\": [", "invalid JSON"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        test_write_file(tmpdir, "bad.json", bad[k].json);
        snprintf(args, sizeof args, "%s --models %s/bad.json", base, tmpdir);
        int rc = run(args);
        if (rc != 2 || !strstr(out, bad[k].msg))
            printf("\n  %s: exit %d: %.500s\n", bad[k].json, rc, out);
        CU_ASSERT_EQUAL(rc, 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, bad[k].msg));
    }
    /* families that do not partition the models */
    test_write_file(tmpdir, "ab.json", "{\"models\": [{\"name\": \"a\", \"on\": [\"B:Words:*\"]}, "
                                       "{\"name\": \"b\", \"on\": [\"B:Pictures:*\"]}, {\"name\": \"c\", \"on\": []}]}");
    struct {
        const char *json, *msg;
    } badf[] = {
        {"{\"factors\": [{\"name\": \"f\", \"families\": [{\"name\": \"x\", \"models\": [\"a\", \"b\"]}, "
         "{\"name\": \"y\", \"models\": [\"b\", \"c\"]}]}]}",
         "factor 'f': model 'b' is in two families ('x' and 'y')"},
        {"{\"factors\": [{\"name\": \"f\", \"families\": [{\"name\": \"x\", \"models\": [\"a\", \"b\"]}]}]}",
         "factor 'f': model 'c' is in no family"},
        {"{\"factors\": [{\"name\": \"f\", \"families\": [{\"name\": \"x\", \"models\": [\"a*\", \"q\"]}]}]}",
         "family 'x': 'q' names no model of the space"},
        {"{\"factors\": [{\"name\": \"f\", \"bma\": \"best\", \"families\": {\"x\": [\"*\"]}}]}", "\"bma\" is \"ALL\""},
        {"{\"name\": \"f\", \"membership\": [1, 2]}", "\"membership\" must list one family number (1, 2, ...) per "
                                                     "model of the space (3)"},
        {"{\"name\": \"f\", \"membership\": [1, 3, 3]}", "family '2' has no model"},
    };
    for (size_t k = 0; k < sizeof badf / sizeof *badf; k++) {
        test_write_file(tmpdir, "badf.json", badf[k].json);
        snprintf(args, sizeof args, "%s --models %s/ab.json --families %s/badf.json", base, tmpdir, tmpdir);
        int rc = run(args);
        if (rc != 2 || !strstr(out, badf[k].msg))
            printf("\n  %s: exit %d: %.500s\n", badf[k].json, rc, out);
        CU_ASSERT_EQUAL(rc, 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, badf[k].msg));
    }
    /* an object of families and SPM's membership vector give the same */
    test_write_file(tmpdir, "f1.json", "{\"name\": \"f\", \"families\": {\"words\": \"a\", \"other\": [\"b\", \"c\"]}}");
    test_write_file(tmpdir, "f2.json", "{\"factors\": [{\"name\": \"f\", \"membership\": [1, 2, 2]}]}");
    double pw[2];
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "%s --models %s/ab.json --families %s/f%d.json --json", base, tmpdir, tmpdir, k + 1);
        json_t *o = run_json(args);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        pw[k] = num(json_array_get(json_object_get(json_array_get(json_object_get(o, "families"), 0), "families"), 0),
                    "posterior_commonalities");
        json_decref(o);
    }
    CU_ASSERT_EQUAL(pw[0], pw[1]);
    /* --families alone is a usage error */
    snprintf(args, sizeof args, "%s --families %s/f1.json", base, tmpdir);
    CU_ASSERT_EQUAL(run(args), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--families needs --models"));
    /* a repeated pattern is compared once, with a warning */
    test_write_file(tmpdir, "rep.json", "{\"models\": [{\"name\": \"a\", \"on\": [\"B:Words:*\"]}, "
                                        "{\"name\": \"a2\", \"off\": [\"B:Pictures:*\"]}, {\"name\": \"c\", \"on\": []}]}");
    snprintf(args, sizeof args, "%s --models %s/rep.json --json", base, tmpdir);
    json_t *o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(json_object_get(o, "model_space"), "models")), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "model 'a2' switches the same parameters as 'a': compared once"));
    json_decref(o);

    /* design rows that do not match the subjects: one missing, one extra */
    char p[4096], line[1024], design[8192], *d = design, extra[8192];
    snprintf(p, sizeof p, "%s/design.tsv", data);
    FILE *f = fopen(p, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; fgets(line, sizeof line, f); i++)
        if (i != 5) /* drops sub-05 */
            d += sprintf(d, "%s", line);
    fclose(f);
    test_write_file(tmpdir, "design_missing.tsv", design);
    snprintf(args, sizeof args, "peb %s/out --model full --design %s/design_missing.tsv --params B "
             "--models %s/ab.json", tmpdir, tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "has no row for subject 'sub-05'"));
    f = fopen(p, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    d = extra;
    while (fgets(line, sizeof line, f))
        d += sprintf(d, "%s", line);
    fclose(f);
    sprintf(d, "sub-77\t1\t0.1\t0\t0\t0\n");
    test_write_file(tmpdir, "design_extra.tsv", extra);
    snprintf(args, sizeof args, "peb %s/out --model full --design %s/design_extra.tsv --params B "
             "--models %s/ab.json", tmpdir, tmpdir, tmpdir);
    CU_ASSERT_EQUAL(run(args), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "lists subject 'sub-77' but"));
    CU_ASSERT(test_no_temp_files(tmpdir));
}

/* ------------------------------------------------ a simulated DCM group */

/* 16 subjects simulated (dcm simulate) from a network where Motion and
 * Attention modulate V1 -> V5 in everyone, the second half has a stronger
 * attentional modulation (+0.4) and Attention does not modulate SPC -> V5;
 * each fitted with all three modulations (dcm batch). The space of all 8
 * on/off patterns of the three B parameters: the generating pattern wins
 * in both factors. */
static void test_simulated_group(void)
{
    if (access("datasets/attention_design/events.tsv", R_OK)) {
        test_skip("datasets/attention_design/events.tsv not found (run the tests from the repository)");
        return;
    }
    enum { NS = 16 };
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 4242);
    char manifest[8192], *m = manifest, design[4096], *d = design, args[8192];
    m += sprintf(m, "subject\tmodel\tspec\n");
    d += sprintf(d, "subject\tmean\tgroup\n");
    for (int s = 0; s < NS; s++) {
        int grp = s >= NS / 2;
        char truth[2048], name[64], spec[4096];
        snprintf(truth, sizeof truth,
                 "{\"A\": [[0, %.4f, 0], [%.4f, 0, %.4f], [0, %.4f, 0]],\n"
                 " \"B\": {\"Motion\": [[0,0,0],[%.4f,0,0],[0,0,0]], \"Attention\": [[0,0,0],[%.4f,0,0],[0,0,0]]},\n"
                 " \"C\": [[%.4f,0,0],[0,0,0],[0,0,0]]}\n",
                 -0.1 + gsl_ran_gaussian(rng, 0.05), 0.4 + gsl_ran_gaussian(rng, 0.05),
                 -0.1 + gsl_ran_gaussian(rng, 0.05), 0.3 + gsl_ran_gaussian(rng, 0.05),
                 0.3 + gsl_ran_gaussian(rng, 0.05), 0.2 + 0.4 * grp + gsl_ran_gaussian(rng, 0.05),
                 0.8 + gsl_ran_gaussian(rng, 0.05));
        snprintf(name, sizeof name, "truth_%02d.json", s);
        test_write_file(tmpdir, name, truth);
        snprintf(spec, sizeof spec,
                 "{\"TR\": 3.22, \"TE\": 0.04, \"scans\": 360, \"timeseries\": \"ts_%02d.tsv\",\n"
                 " \"regions\": [\"V1\", \"V5\", \"SPC\"],\n"
                 " \"events\": \"%s/datasets/attention_design/events.tsv\",\n"
                 " \"inputs\": [\"Photic\", \"Motion\", \"Attention\"],\n"
                 " \"a\": [\"V1 -> V5\", \"V5 -> V1\", \"V5 -> SPC\", \"SPC -> V5\"],\n"
                 " \"b\": {\"Motion\": [\"V1 -> V5\"], \"Attention\": [\"V1 -> V5\", \"SPC -> V5\"]},\n"
                 " \"c\": {\"Photic\": [\"V1\"]}}\n", s, repo);
        snprintf(name, sizeof name, "full_%02d.json", s);
        test_write_file(tmpdir, name, spec);
        snprintf(args, sizeof args, "simulate %s/%s --params %s/truth_%02d.json --snr 5 --seed %d -o %s/ts_%02d.tsv",
                 tmpdir, name, tmpdir, s, 500 + s, tmpdir, s);
        CU_ASSERT_EQUAL_FATAL(run(args), 0);
        m += sprintf(m, "s%02d\tfull\t%s\n", s, name);
        d += sprintf(d, "s%02d\t1\t%s\n", s, grp ? "0.5" : "-0.5");
    }
    gsl_rng_free(rng);
    test_write_file(tmpdir, "sim_manifest.tsv", manifest);
    test_write_file(tmpdir, "sim_design.tsv", design);
    const char *rel = getenv("DCM_RELEASE_BIN");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s batch %s/sim_manifest.tsv -o %s/sim_out -j 2 -q",
             rel && *rel && !access(rel, X_OK) ? rel : test_dcm_bin(), tmpdir, tmpdir);
    CU_ASSERT_EQUAL_FATAL(test_shell(cmd, out, sizeof out), 0);
    /* all 8 patterns over B:Motion:V1->V5, B:Attention:V1->V5, B:Attention:SPC->V5 */
    static const char *const pn[3] = {"B:Motion:V1->V5", "B:Attention:V1->V5", "B:Attention:SPC->V5"};
    char space[4096], *sp = space;
    sp += sprintf(sp, "{\"models\": [");
    for (int k = 0; k < 8; k++) {
        sp += sprintf(sp, "%s{\"name\": \"m%d\", \"on\": [", k ? ", " : "", k);
        int first = 1;
        for (int q = 0; q < 3; q++)
            if ((k >> q) & 1) {
                sp += sprintf(sp, "%s\"%s\"", first ? "" : ", ", pn[q]);
                first = 0;
            }
        sp += sprintf(sp, "]}");
    }
    sprintf(sp, "]}");
    test_write_file(tmpdir, "sim_space.json", space);
    test_write_file(tmpdir, "sim_fam.json", "{\"name\": \"attention on SPC->V5\", \"bma\": \"WINNING\", \"families\": "
                                            "{\"with\": [\"m4\", \"m5\", \"m6\", \"m7\"], \"without\": [\"m0\", \"m1\", \"m2\", \"m3\"]}}");
    snprintf(args, sizeof args, "peb %s/sim_out --model full --design %s/sim_design.tsv --params B --q all "
             "--maxit 256 --models %s/sim_space.json --families %s/sim_fam.json --json", tmpdir, tmpdir, tmpdir, tmpdir);
    json_t *o = run_json(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    json_t *ms = json_object_get(o, "model_space"), *best = json_object_get(ms, "best");
    const char *bc = json_string_value(json_object_get(best, "commonalities"));
    const char *bd = json_string_value(json_object_get(best, "differences"));
    /* truth: commonalities Motion + Attention on V1->V5 (m3), difference on
       Attention V1->V5 only (m2) */
    double pc = num(json_array_get(json_object_get(ms, "models"), 3), "posterior_commonalities");
    double pd = num(json_array_get(json_object_get(ms, "models"), 2), "posterior_differences");
    json_t *fam = json_array_get(json_object_get(o, "families"), 0);
    double pwithout = num(json_array_get(json_object_get(fam, "families"), 1), "posterior_commonalities");
    printf("\n  simulated group of %d: best commonalities %s (true m3, P %.3f), differences %s (true m2, P %.3f); "
           "P(no attention on SPC->V5 in common) %.3f\n", NS, bc, pc, bd, pd, pwithout);
    CU_ASSERT_STRING_EQUAL(bc, "m3");
    CU_ASSERT_STRING_EQUAL(bd, "m2");
    CU_ASSERT(pc > 0.5);
    CU_ASSERT(pd > 0.5);
    CU_ASSERT(pwithout > 0.5);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(fam, "winning"), "commonalities")), "without");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(fam, "effects")), 6);
    json_decref(o);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dcm-peb-space-XXXXXX");
    if (!mkdtemp(tmpdir) || !getcwd(repo, sizeof repo))
        return 1;
    static const test_case cases[] = {
        {"model space and families on a synthetic group: the true model wins, F = BMR, sums", test_synthetic_space},
        {"the tutorial's 28 templates and 3 family factors on the public subset", test_tutorial_space},
        {"bad model spaces, families and designs: clear errors", test_bad_input},
        {"a simulated DCM group (simulate, batch, peb): the generating pattern wins", test_simulated_group},
        {NULL, NULL}};
    int rc = test_run("PEB model space", cases);
    if (test_remove_dir(tmpdir))
        rc = 1;
    return rc;
}
