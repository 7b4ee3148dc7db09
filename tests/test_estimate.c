/* test_estimate.c — SPM parity of the whole inversion on the attention
 * data: free energy, posterior means and SDs, noise precisions, the Bayes
 * factor between the fwd and bwd hypotheses. */
#include "dcm/dcm_api.h"
#include "tests/test_util.h"

static int read_table(const char *path, double *out, int rows, int cols, int header)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[8192];
    if (header && !fgets(line, sizeof line, f)) {
        fclose(f);
        return -1;
    }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            if (fscanf(f, "%lf", &out[i + j * rows]) != 1) {
                fclose(f);
                return -1;
            }
    fclose(f);
    return 0;
}

/* The attention problem of a reference file, built directly from the
 * dataset files (the spec route is tested in test_cli). */
static dcm_problem *problem_from_reference(const char *ref_rel, json_t **ref_out)
{
    char path[512], p2[512];
    if (!test_shared_path(ref_rel, path, sizeof path) ||
        !test_shared_path("datasets/attention/timeseries.tsv", p2, sizeof p2))
        return NULL;
    json_t *root = test_load_json(path);
    json_t *mod = json_object_get(root, "model");
    const int n = 3, m = 3, v = 360;
    dcm_problem *P = dcm_problem_alloc(n, m, v, 0);
    model_dcm *M = P->M;
    M->TR = json_number_value(json_object_get(mod, "TR"));
    M->TE = json_number_value(json_object_get(mod, "TE"));
    test_json_vec(json_object_get(mod, "delays"), M->delays, n);
    test_json_mat_colmajor(json_object_get(mod, "a"), M->a, n, n);
    test_json_mat_colmajor(json_object_get(mod, "c"), M->c, n, m);
    json_t *inputs = json_object_get(mod, "inputs");
    for (int k = 0; k < m; k++) {
        json_t *bk = json_object_get(json_object_get(mod, "b"),
                                     json_string_value(json_array_get(inputs, (size_t)k)));
        if (bk)
            test_json_mat_colmajor(bk, M->b + k * n * n, n, n);
        P->input_names[k] = strdup(json_string_value(json_array_get(inputs, (size_t)k)));
    }
    for (int j = 0; j < n; j++)
        P->region_names[j] = strdup(json_string_value(
            json_array_get(json_object_get(mod, "regions"), (size_t)j)));
    CU_ASSERT_EQUAL(read_table(p2, P->Y, v, n, 1), 0);
    test_shared_path("datasets/attention/confounds.tsv", p2, sizeof p2);
    P->nx0 = 19;
    P->X0 = malloc(sizeof(double) * v * 19);
    CU_ASSERT_EQUAL(read_table(p2, P->X0, v, 19, 0), 0);
    test_shared_path("datasets/attention/inputs_microtime.tsv", p2, sizeof p2);
    /* micro-time inputs are stored row by row */
    double *u = malloc(sizeof(double) * M->nu * m);
    CU_ASSERT_EQUAL(read_table(p2, u, M->nu, m, 0), 0);
    for (int t = 0; t < M->nu; t++)
        for (int j = 0; j < m; j++)
            M->u[t * m + j] = u[t + j * M->nu];
    free(u);
    *ref_out = root;
    return P;
}

typedef struct {
    double F, max_dEp, max_rel_sd, max_dEh, scale_err;
    int iterations;
} parity;

static int check_model(const char *ref_rel, parity *out)
{
    json_t *ref = NULL;
    dcm_problem *P = problem_from_reference(ref_rel, &ref);
    if (!P)
        return 0;
    dcm_result *R = NULL;
    dcm_error err = {0, ""};
    int rc = dcm_estimate(P, NULL, NULL, &R, &err);
    CU_ASSERT_EQUAL_FATAL(rc, DCM_OK);
    if (rc) {
        printf("%s\n", err.msg);
        return 0;
    }
    json_t *vec = json_object_get(ref, "vector");
    const int np = R->np;
    double *Ep = malloc(sizeof(double) * np), *Cp = malloc(sizeof(double) * np * np);
    CU_ASSERT_EQUAL(test_json_vec(json_object_get(vec, "posterior_mean"), Ep, np), np);
    test_json_mat_colmajor(json_object_get(vec, "posterior_cov"), Cp, np, np);
    double Eh[3];
    test_json_vec(json_object_get(ref, "noise_log_precision"), Eh, 3);
    out->F = R->F - json_number_value(json_object_get(ref, "free_energy"));
    out->max_dEp = out->max_rel_sd = out->max_dEh = 0.0;
    for (int i = 0; i < np; i++) {
        out->max_dEp = fmax(out->max_dEp, fabs(R->Ep[i] - Ep[i]));
        double sd_ref = sqrt(Cp[i + i * np]), sd = sqrt(R->Cp[i * np + i]);
        if (sd_ref > 0)
            out->max_rel_sd = fmax(out->max_rel_sd, fabs(sd - sd_ref) / sd_ref);
        else
            CU_ASSERT_EQUAL(sd, 0.0);
    }
    for (int j = 0; j < 3; j++)
        out->max_dEh = fmax(out->max_dEh, fabs(R->Eh[j] - Eh[j]));
    out->scale_err = fabs(R->scale - json_number_value(json_object_get(ref, "data_scale")));
    out->iterations = R->iterations;
    printf("\n  %s: F %.4f (minus SPM's: %+.2e), scale %.12f (SPM's %.12f), max|dEp| %.2e, max sd rel. %.2e, max|dEh| %.2e, "
           "iterations %d, %.3f s\n", ref_rel, R->F, out->F, R->scale,
           json_number_value(json_object_get(ref, "data_scale")), out->max_dEp, out->max_rel_sd,
           out->max_dEh, R->iterations, R->seconds);
    CU_ASSERT(fabs(out->F) <= 0.5);
    CU_ASSERT(out->max_dEp <= 0.01);
    CU_ASSERT(out->max_rel_sd <= 0.05);
    CU_ASSERT(out->max_dEh <= 0.05);
    CU_ASSERT(out->scale_err < 1e-9);
    CU_ASSERT(R->converged);
    out->F = R->F;
    free(Ep);
    free(Cp);
    dcm_result_free(R);
    dcm_problem_free(P);
    json_decref(ref);
    return 1;
}

static void test_fwd_bwd_parity(void)
{
    parity fwd, bwd;
    if (!check_model("reference/attention/spm_attention_fwd.json", &fwd))
        return;
    if (!check_model("reference/attention/spm_attention_bwd.json", &bwd))
        return;
    double lbf = fwd.F - bwd.F;
    printf("  log Bayes factor fwd - bwd: %.3f (SPM 24.71)\n", lbf);
    CU_ASSERT(fabs(lbf - 24.71) <= 0.5);
}

int main(void)
{
    static const test_case cases[] = {
        {"fwd and bwd estimates match SPM12", test_fwd_bwd_parity},
        {NULL, NULL}};
    return test_run("estimate", cases);
}
