/* test_models.c — the generative model against SPM12: priors, equations of
 * motion, Jacobians, BOLD, bilinear operators and the integrator. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <gsl/gsl_cblas.h>

#include "models/model_dcm.h"
#include "models/model_integrate.h"
#include "tests/test_util.h"

/* Build the attention model from a reference file's "model" block, with
 * inputs read from the dataset's micro-time table. */
static model_dcm *model_from_reference(const char *ref_rel)
{
    char path[512], upath[512];
    if (!test_shared_path(ref_rel, path, sizeof path))
        return NULL;
    if (!test_shared_path("datasets/attention/inputs_microtime.tsv", upath, sizeof upath))
        return NULL;
    json_t *root = test_load_json(path);
    if (!root)
        return NULL;
    json_t *mod = json_object_get(root, "model");
    int n = (int)json_array_size(json_object_get(mod, "regions"));
    json_t *inputs = json_object_get(mod, "inputs");
    int m = (int)json_array_size(inputs);
    model_dcm *M = model_dcm_alloc(n, m, 360, 0);
    M->TR = json_number_value(json_object_get(mod, "TR"));
    M->TE = json_number_value(json_object_get(mod, "TE"));
    test_json_vec(json_object_get(mod, "delays"), M->delays, n);
    test_json_mat_colmajor(json_object_get(mod, "a"), M->a, n, n);
    test_json_mat_colmajor(json_object_get(mod, "c"), M->c, n, m);
    for (int k = 0; k < m; k++) {
        const char *name = json_string_value(json_array_get(inputs, (size_t)k));
        json_t *bk = json_object_get(json_object_get(mod, "b"), name);
        if (bk)
            test_json_mat_colmajor(bk, M->b + k * n * n, n, n);
    }
    json_decref(root);
    FILE *f = fopen(upath, "r");
    for (int t = 0; t < M->nu; t++)
        for (int j = 0; j < m; j++)
            if (fscanf(f, "%lf", &M->u[t * m + j]) != 1) {
                fclose(f);
                model_dcm_free(M);
                return NULL;
            }
    fclose(f);
    return M;
}

static void check_priors(const char *ref_rel)
{
    model_dcm *M = model_from_reference(ref_rel);
    if (!M)
        return;
    char path[512];
    test_shared_path(ref_rel, path, sizeof path);
    json_t *root = test_load_json(path);
    json_t *vec = json_object_get(root, "vector");
    int np = M->L.np;
    CU_ASSERT_EQUAL(np, (int)json_array_size(json_object_get(vec, "prior_mean")));
    double *pE = calloc(np, sizeof(double)), *pV = calloc(np, sizeof(double));
    double *rE = calloc(np, sizeof(double)), *rV = calloc(np, sizeof(double));
    model_dcm_priors(M, pE, pV);
    test_json_vec(json_object_get(vec, "prior_mean"), rE, np);
    test_json_vec(json_object_get(vec, "prior_var"), rV, np);
    int exact = 1;
    for (int i = 0; i < np; i++)
        if (pE[i] != rE[i] || pV[i] != rV[i]) {
            printf("prior %d: ours (%g, %g) SPM (%g, %g)\n", i, pE[i], pV[i], rE[i], rV[i]);
            exact = 0;
        }
    CU_ASSERT_TRUE(exact);
    free(pE); free(pV); free(rE); free(rV);
    json_decref(root);
    model_dcm_free(M);
}

static void test_priors_fwd(void) { check_priors("reference/attention/spm_attention_fwd.json"); }
static void test_priors_bwd(void) { check_priors("reference/attention/spm_attention_bwd.json"); }

static void test_fx_gx_cases(void)
{
    model_dcm *M = model_from_reference("reference/attention/spm_attention_fwd.json");
    if (!M)
        return;
    char path[512];
    test_shared_path("reference/attention/spm_fx_gx_cases.json", path, sizeof path);
    json_t *root = test_load_json(path);
    M->TE = json_number_value(json_object_get(root, "TE"));
    const int n = M->n, m = M->m, nx = model_dcm_nstates(M), np = M->L.np;
    double P[64], x[15], u[3], f[15], fr[15], J[225], Jr[225], Ju[45], Jur[45];
    double g[3], gr[3], G[45], Gr[45];
    double *work = malloc(sizeof(double) * model_dcm_fx_work(M));
    double worst_f = 0, worst_J = 0, worst_u = 0, worst_g = 0, worst_G = 0;
    size_t ci;
    json_t *c;
    json_array_foreach(json_object_get(root, "cases"), ci, c) {
        CU_ASSERT_EQUAL(test_json_vec(json_object_get(c, "P"), P, 64), np);
        test_json_mat_colmajor(json_object_get(c, "x"), x, n, 5);
        test_json_vec(json_object_get(c, "u"), u, m);
        test_json_vec(json_object_get(c, "f"), fr, nx);
        test_json_mat_colmajor(json_object_get(c, "dfdx"), Jr, nx, nx);
        test_json_mat_colmajor(json_object_get(c, "dfdu"), Jur, nx, m);
        test_json_vec(json_object_get(c, "g"), gr, n);
        test_json_mat_colmajor(json_object_get(c, "dgdx"), Gr, n, nx);
        model_dcm_fx(M, P, x, u, f, J, Ju, work);
        model_dcm_gx(M, P, x, g, G);
        worst_f = fmax(worst_f, test_rel_err(f, fr, nx));
        worst_J = fmax(worst_J, test_rel_err(J, Jr, nx * nx));
        worst_u = fmax(worst_u, test_rel_err(Ju, Jur, nx * m));
        worst_g = fmax(worst_g, test_rel_err(g, gr, n));
        worst_G = fmax(worst_G, test_rel_err(G, Gr, n * nx));
    }
    printf("\n  rel. error vs SPM: f %.2e dfdx %.2e dfdu %.2e g %.2e dgdx %.2e\n",
           worst_f, worst_J, worst_u, worst_g, worst_G);
    CU_ASSERT(worst_f < 1e-8);
    CU_ASSERT(worst_J < 1e-8);
    CU_ASSERT(worst_u < 1e-8);
    CU_ASSERT(worst_g < 1e-8);
    CU_ASSERT(worst_G < 1e-8);
    free(work);
    json_decref(root);
    model_dcm_free(M);
}

static void test_integrator_cases(void)
{
    model_dcm *M = model_from_reference("reference/attention/spm_attention_fwd.json");
    if (!M)
        return;
    char path[512];
    test_shared_path("reference/attention/spm_int_cases.json", path, sizeof path);
    json_t *root = test_load_json(path);
    const int n = M->n, v = M->v, np = M->L.np, N = model_dcm_nstates(M) + 1;
    model_int_work *W = model_int_alloc(M);
    CU_ASSERT_PTR_NOT_NULL_FATAL(W);
    double P[64];
    double *y = malloc(sizeof(double) * v * n), *yr = malloc(sizeof(double) * v * n);
    double *M0 = malloc(sizeof(double) * N * N), *M1 = malloc(sizeof(double) * N * N * M->m);
    double *R = malloc(sizeof(double) * N * N);
    size_t ci;
    json_t *c;
    json_array_foreach(json_object_get(root, "cases"), ci, c) {
        CU_ASSERT_EQUAL(test_json_vec(json_object_get(c, "P"), P, 64), np);
        test_json_mat_colmajor(json_object_get(c, "y"), yr, v, n);
        CU_ASSERT_EQUAL(model_int_predict(M, P, y, W), MODEL_INT_OK);
        double ey = test_rel_err(y, yr, v * n);
        model_int_bireduce(M, P, M0, M1, W);
        test_json_mat_colmajor(json_object_get(c, "M0"), R, N, N);
        double e0 = test_rel_err(M0, R, N * N);
        test_json_mat_colmajor(json_object_get(c, "M1_attention"), R, N, N);
        double e1 = test_rel_err(M1 + 2 * N * N, R, N * N);
        printf("\n  case %zu: rel. error y %.2e M0 %.2e M1(Attention) %.2e", ci, ey, e0, e1);
        CU_ASSERT(ey < 1e-6);
        CU_ASSERT(e0 < 1e-6);
        CU_ASSERT(e1 < 1e-6);
    }
    printf("\n");
    free(y); free(yr); free(M0); free(M1); free(R);
    model_int_free(W);
    json_decref(root);
    model_dcm_free(M);
}

/* The accurate ODE integrator must agree with the bilinear scheme at the
 * prior mean, where the system stays close to rest. */
static void test_ode_close_to_bilinear(void)
{
    model_dcm *M = model_from_reference("reference/attention/spm_attention_fwd.json");
    if (!M)
        return;
    const int n = M->n, v = M->v, np = M->L.np;
    double *pE = calloc(np, sizeof(double)), *pV = calloc(np, sizeof(double));
    model_dcm_priors(M, pE, pV);
    pE[model_dcm_idx_C(&M->L, 0, 0)] = 0.1; /* near-linear regime */
    double *y1 = malloc(sizeof(double) * v * n), *y2 = malloc(sizeof(double) * v * n);
    model_int_work *W = model_int_alloc(M);
    CU_ASSERT_EQUAL(model_int_predict(M, pE, y1, W), MODEL_INT_OK);
    M->integrator = MODEL_INT_ODE;
    model_int_work *W2 = model_int_alloc(M);
    CU_ASSERT_EQUAL(model_int_predict(M, pE, y2, W2), MODEL_INT_OK);
    double e = test_rel_err(y2, y1, v * n);
    printf("\n  ODE vs bilinear rel. difference %.2e (max |y| %.3f)\n", e, test_max_abs(y1, v * n));
    CU_ASSERT(test_max_abs(y1, v * n) > 0.01);
    CU_ASSERT(e < 0.02);
    free(pE); free(pV); free(y1); free(y2);
    model_int_free(W);
    model_int_free(W2);
    model_dcm_free(M);
}

/* GSL's matrix code must reach OpenBLAS's CBLAS, not GSL's reference one:
 * both define cblas_dgemm; the link order decides. */
static void test_cblas_is_openblas(void)
{
    Dl_info info;
    CU_ASSERT_FATAL(dladdr((void *)cblas_dgemm, &info) != 0);
    printf("\n  cblas_dgemm comes from %s\n", info.dli_fname);
    CU_ASSERT_PTR_NOT_NULL(strstr(info.dli_fname, "openblas"));
}

int main(void)
{
    static const test_case cases[] = {
        {"priors equal SPM's (fwd)", test_priors_fwd},
        {"priors equal SPM's (bwd)", test_priors_bwd},
        {"f, df/dx, df/du, g, dg/dx equal SPM's", test_fx_gx_cases},
        {"bilinear operators and integrator equal SPM's", test_integrator_cases},
        {"ODE integrator agrees with the bilinear scheme", test_ode_close_to_bilinear},
        {"CBLAS is OpenBLAS's", test_cblas_is_openblas},
        {NULL, NULL}};
    return test_run("models", cases);
}
