/* test_layout.c — the one owner of the parameter layout (models/model_layout.h),
 * what reads it (names, maps, selectors), model_dcm_copy, and the one result
 * loader (io_result_json_load) behind io_result_load, io_params_load and
 * report_load. Needs no ../shared. */
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dcm/dcm_api.h"
#include "dcm/report/report.h"
#include "io/io_params.h"
#include "io/io_pnames.h"
#include "io/io_result.h"
#include "models/model_layout.h"
#include "tests/test_util.h"

#define ASSERT_ERR(rc, e, want, ...)                                                   \
    do {                                                                               \
        CU_ASSERT_EQUAL((rc), (want));                                                 \
        CU_ASSERT_EQUAL((e).code, (want));                                             \
        const char *subs_[] = {__VA_ARGS__, NULL};                                     \
        for (int q_ = 0; subs_[q_]; q_++)                                              \
            if (!strstr((e).msg, subs_[q_])) {                                         \
                printf("\n  message \"%s\" lacks \"%s\"\n", (e).msg, subs_[q_]);       \
                CU_FAIL("error message lacks an expected substring");                  \
            }                                                                          \
    } while (0)

static char *const REGIONS[] = {"V1", "V5", "SPC", "IFG", "FEF"};
static char *const INPUTS[] = {"Photic", "Motion", "Attention"};

/* ------------------------------------------------------------------ */
/* the table                                                            */

/* Every model size: blocks contiguous, counts = products of the shapes,
 * the shapes SPM's (A n x n, B n x n x m, C n x m, D n x n x nd, transit
 * n, decay, epsilon), the same offsets as model_dcm_layout, np as
 * io_pname_count, and locate/index inverse to each other. */
static void test_table_properties(void)
{
    for (int n = 1; n <= 5; n++)
        for (int m = 0; m <= 3; m++)
            for (int nl = 0; nl <= 1; nl++)
                for (int ts = 0; ts <= 1; ts++) {
                    model_layout T;
                    CU_ASSERT_EQUAL_FATAL(model_layout_init(&T, n, m, nl, ts), 0);
                    const int want[MODEL_BLOCK_COUNT][3] = {{n, n, 1}, {n, n, m}, {n, m, 1},
                                                            {n, n, nl ? n : 0}, {n, 1, 1},
                                                            {1, 1, 1}, {1, 1, 1}};
                    int off = 0;
                    for (int b = 0; b < MODEL_BLOCK_COUNT; b++) {
                        const model_layout_block *B = &T.block[b];
                        CU_ASSERT_EQUAL(B->offset, off);
                        CU_ASSERT_EQUAL(B->rows, want[b][0]);
                        CU_ASSERT_EQUAL(B->cols, want[b][1]);
                        CU_ASSERT_EQUAL(B->slices, want[b][2]);
                        CU_ASSERT_EQUAL(B->count, B->rows * B->cols * B->slices);
                        CU_ASSERT_PTR_EQUAL(model_layout_find(&T, B->name), B);
                        off += B->count;
                    }
                    CU_ASSERT_EQUAL(T.np, off);
                    CU_ASSERT_EQUAL(T.np, n * n + n * n * m + n * m + n * n * (nl ? n : 0) + n + 2);
                    CU_ASSERT_EQUAL(model_layout_count(n, m, nl), T.np);
                    model_dcm_layout L;
                    model_dcm_layout_init(&L, n, m, nl);
                    CU_ASSERT_EQUAL(L.np, T.np);
                    CU_ASSERT_EQUAL(L.off_B, T.block[MODEL_BLOCK_B].offset);
                    CU_ASSERT_EQUAL(L.off_C, T.block[MODEL_BLOCK_C].offset);
                    CU_ASSERT_EQUAL(L.off_D, T.block[MODEL_BLOCK_D].offset);
                    CU_ASSERT_EQUAL(L.off_transit, T.block[MODEL_BLOCK_TRANSIT].offset);
                    CU_ASSERT_EQUAL(L.off_decay, T.block[MODEL_BLOCK_DECAY].offset);
                    CU_ASSERT_EQUAL(L.off_epsilon, T.block[MODEL_BLOCK_EPSILON].offset);
                    io_pname_space S = {n, m, nl ? n : 0, REGIONS, INPUTS, 0};
                    CU_ASSERT_EQUAL(io_pname_count(&S), T.np);
                    for (int p = 0; p < T.np; p++) {
                        int i, j, k, b = model_layout_locate(&T, p, &i, &j, &k);
                        CU_ASSERT_FATAL(b >= 0);
                        CU_ASSERT_EQUAL(model_layout_index(&T.block[b], i, j, k), p);
                    }
                    CU_ASSERT_EQUAL(model_layout_locate(&T, T.np, NULL, NULL, NULL), -1);
                    CU_ASSERT_EQUAL(model_layout_locate(&T, -1, NULL, NULL, NULL), -1);
                    /* the model's index helpers agree with the table */
                    if (m > 0) {
                        CU_ASSERT_EQUAL(model_dcm_idx_B(&L, m - 1, n - 1, 0),
                                        model_layout_index(&T.block[MODEL_BLOCK_B], n - 1, 0, m - 1));
                        CU_ASSERT_EQUAL(model_dcm_idx_C(&L, n - 1, m - 1),
                                        model_layout_index(&T.block[MODEL_BLOCK_C], n - 1, m - 1, 0));
                    }
                    if (nl)
                        CU_ASSERT_EQUAL(model_dcm_idx_D(&L, n - 1, 0, n - 1),
                                        model_layout_index(&T.block[MODEL_BLOCK_D], 0, n - 1, n - 1));
                    /* two-state: the same blocks, every coupling log-scale */
                    CU_ASSERT_EQUAL(strcmp(T.block[MODEL_BLOCK_A].unit, "log-scale") == 0, ts);
                }
    CU_ASSERT_PTR_NULL(model_layout_find(&(model_layout){0}, "A"));
}

static void test_table_limits(void)
{
    model_layout T;
    CU_ASSERT_EQUAL(model_layout_init(&T, -1, 2, 0, 0), -1);
    CU_ASSERT_EQUAL(T.np, -1);
    CU_ASSERT_EQUAL(model_layout_count(-1, 0, 0), -1);
    /* 2000 regions, nonlinear: 8e9 parameters, more than an int holds */
    CU_ASSERT_EQUAL(model_layout_count(2000, 1, 1), 2000LL * 2000 * 2000 + 2000LL * 2000 * 2 + 2000 + 2000 + 2);
    CU_ASSERT_EQUAL(model_layout_init(&T, 2000, 1, 1, 0), -1);
    /* past 64 bits: refused, not wrapped */
    CU_ASSERT_EQUAL(model_layout_count(2147483647, 2147483647, 1), -1);
    CU_ASSERT_EQUAL(model_layout_init(&T, 2000, 1, 0, 0), 0);
    CU_ASSERT_EQUAL(T.np, 2000 * 2000 * 2 + 2000 + 2000 + 2);
    model_layout E;
    CU_ASSERT_EQUAL(model_layout_init(&E, 0, 0, 0, 0), 0);   /* empty, not a crash */
    CU_ASSERT_EQUAL(E.np, 2);
}

/* ------------------------------------------------------------------ */
/* names                                                                */

/* The names in SPM's spm_vec order, written out from SPM's definition
 * (as io_pnames produced them on main a2389d8): A(:), B(:,:,k)(:), C(:),
 * D(:,:,k)(:), transit, decay, epsilon; column-major, row = target. */
static char **oracle_names(int n, int m, int nl, int *count)
{
    char **out = malloc(sizeof(char *) * 4096), buf[256];
    int c = 0;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++) {
            snprintf(buf, sizeof buf, "A:%s->%s", REGIONS[j], REGIONS[i]);
            out[c++] = strdup(buf);
        }
    for (int k = 0; k < m; k++)
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++) {
                snprintf(buf, sizeof buf, "B:%s:%s->%s", INPUTS[k], REGIONS[j], REGIONS[i]);
                out[c++] = strdup(buf);
            }
    for (int j = 0; j < m; j++)
        for (int i = 0; i < n; i++) {
            snprintf(buf, sizeof buf, "C:%s->%s", INPUTS[j], REGIONS[i]);
            out[c++] = strdup(buf);
        }
    for (int k = 0; nl && k < n; k++)
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++) {
                snprintf(buf, sizeof buf, "D:%s:%s->%s", REGIONS[k], REGIONS[j], REGIONS[i]);
                out[c++] = strdup(buf);
            }
    for (int i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "transit:%s", REGIONS[i]);
        out[c++] = strdup(buf);
    }
    out[c++] = strdup("decay");
    out[c++] = strdup("epsilon");
    *count = c;
    return out;
}

/* Every name as SPM's order gives it, and each name, given to the
 * selector parser, selects exactly its own parameter. */
static void test_names_order_and_roundtrip(void)
{
    for (int n = 1; n <= 5; n++)
        for (int m = 0; m <= 3; m++)
            for (int nl = 0; nl <= 1; nl++) {
                io_pname_space S = {n, m, nl ? n : 0, REGIONS, INPUTS, 0};
                int count;
                char **want = oracle_names(n, m, nl, &count);
                CU_ASSERT_EQUAL_FATAL(io_pname_count(&S), count);
                unsigned char *mask = malloc((size_t)count);
                size_t longest = 0;
                for (int p = 0; p < count; p++) {
                    char *name = io_pname_name(&S, p);
                    CU_ASSERT_PTR_NOT_NULL_FATAL(name);
                    longest = strlen(name) > longest ? strlen(name) : longest;
                    if (strcmp(name, want[p]))
                        printf("\n  n=%d m=%d nl=%d p=%d: '%s', expected '%s'\n", n, m, nl, p, name, want[p]);
                    CU_ASSERT_STRING_EQUAL(name, want[p]);
                    memset(mask, 0, (size_t)count);
                    dcm_error e = {0};
                    CU_ASSERT_EQUAL(io_pname_select(&S, name, mask, &e), DCM_OK);
                    int hits = 0;
                    for (int q = 0; q < count; q++)
                        hits += mask[q];
                    CU_ASSERT_EQUAL(hits, 1);
                    CU_ASSERT_EQUAL(mask[p], 1);
                    free(name);
                    free(want[p]);
                }
                CU_ASSERT_PTR_NULL(io_pname_name(&S, count));
                /* the buffer length that holds every name whole, and no more */
                CU_ASSERT_EQUAL(io_pname_cap(&S), longest + 1);
                /* a block wildcard selects exactly the block */
                model_layout T;
                model_layout_init(&T, n, m, nl, 0);
                for (int b = 0; b < MODEL_BLOCK_COUNT; b++) {
                    const model_layout_block *B = &T.block[b];
                    char sel[32];
                    snprintf(sel, sizeof sel, "%s%s", B->name, B->slice_axis ? ":*" : B->col_axis ? ":*" : "");
                    memset(mask, 0, (size_t)count);
                    dcm_error e = {0};
                    int rc = io_pname_select(&S, sel, mask, &e);
                    if (B->count == 0) {
                        CU_ASSERT_EQUAL(rc, DCM_ERR_INPUT);
                        continue;
                    }
                    CU_ASSERT_EQUAL(rc, DCM_OK);
                    for (int q = 0; q < count; q++)
                        CU_ASSERT_EQUAL(mask[q], q >= B->offset && q < B->offset + B->count);
                }
                free(mask);
                free(want);
            }
}

/* io_pname_map on the same model with regions and inputs listed in
 * another order: every parameter lands on the one with its name. */
static void test_map_by_name(void)
{
    char *const r2[] = {"SPC", "IFG", "V1", "V5"};
    char *const i2[] = {"Attention", "Photic", "Motion"};
    for (int nl = 0; nl <= 1; nl++) {
        io_pname_space from = {4, 3, nl ? 4 : 0, REGIONS, INPUTS, 0}, to = {4, 3, nl ? 4 : 0, r2, i2, 0};
        const int np = io_pname_count(&from);
        int *map = malloc(sizeof(int) * np), *seen = calloc(np, sizeof(int));
        dcm_error e = {0};
        CU_ASSERT_EQUAL_FATAL(io_pname_map(&from, "a", &to, "b", map, &e), DCM_OK);
        for (int p = 0; p < np; p++) {
            char *x = io_pname_name(&from, p), *y = io_pname_name(&to, map[p]);
            CU_ASSERT_STRING_EQUAL(x, y);
            seen[map[p]]++;
            free(x);
            free(y);
        }
        for (int p = 0; p < np; p++)
            CU_ASSERT_EQUAL(seen[p], 1);
        free(map);
        free(seen);
    }
    /* different kinds do not meet */
    io_pname_space a = {3, 2, 0, REGIONS, INPUTS, 0}, b = {3, 2, 3, REGIONS, INPUTS, 0};
    int map[64];
    dcm_error e = {0};
    int rc = io_pname_map(&a, "x.json", &b, "y.json", map, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "x.json is bilinear but y.json is nonlinear");
}

/* The selector's messages come from the table (block list, the D block a
 * bilinear model lacks). */
static void test_selector_messages(void)
{
    io_pname_space S = {3, 2, 0, REGIONS, INPUTS, 0};
    unsigned char mask[64] = {0};
    dcm_error e = {0};
    int rc = io_pname_select(&S, "Q:x", mask, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "unknown block 'Q'; use A, B, C, D, transit, decay or epsilon");
    rc = io_pname_select(&S, "D:*", mask, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "'D:*' matches nothing in this model (it has no D block)");
    rc = io_pname_select(&S, "B:Photic", mask, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "write B:INPUT:FROM->TO (or B:*)");
    rc = io_pname_select(&S, "C:V1->V5", mask, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "unknown input 'V1'; the inputs are: Photic, Motion");
    rc = io_pname_select(&S, "transit:V1:x", mask, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "write transit:REGION");
    rc = io_pname_select(&S, "decay:x", mask, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "decay has no parts");
    rc = io_pname_select(&S, "A:*->Foo", mask, &e);
    ASSERT_ERR(rc, e, DCM_ERR_INPUT, "unknown region 'Foo'; the regions are: V1, V5, SPC");
    for (int i = 0; i < 64; i++)
        CU_ASSERT_EQUAL(mask[i], 0);   /* nothing selected by a refused selector */
}

/* ------------------------------------------------------------------ */
/* model_dcm_copy                                                       */

static void fill(double *x, size_t k, double base)
{
    for (size_t i = 0; i < k; i++)
        x[i] = base + 0.5 * (double)i;
}

/* Every field is copied: the owned arrays by value into new memory, the
 * rest as they are (compared byte for byte once the pointers are put
 * back), so a field added later cannot be forgotten silently. */
static void test_model_copy(void)
{
    for (int m = 0; m <= 2; m++) {
        model_dcm *S = model_dcm_alloc(3, m, 7, 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(S);
        S->two_state = 1;
        S->TR = 2.1;
        S->TE = 0.035;
        S->integrator = MODEL_INT_ODE;
        const size_t m1 = m ? (size_t)m : 1;
        fill(S->a, 9, 1);
        fill(S->b, 9 * m1, 2);
        fill(S->c, 3 * m1, 3);
        fill(S->d, 27, 4);
        fill(S->delays, 3, 5);
        fill(S->u, (size_t)S->nu * m1, 6);
        model_dcm *M = model_dcm_copy(S);
        CU_ASSERT_PTR_NOT_NULL_FATAL(M);
        double *own_s[] = {S->a, S->b, S->c, S->d, S->delays, S->u};
        double *own_m[] = {M->a, M->b, M->c, M->d, M->delays, M->u};
        const size_t len[] = {9, 9 * m1, 3 * m1, 27, 3, (size_t)S->nu * m1};
        for (int i = 0; i < 6; i++) {
            CU_ASSERT_PTR_NOT_EQUAL(own_m[i], own_s[i]);
            CU_ASSERT_EQUAL(memcmp(own_m[i], own_s[i], sizeof(double) * len[i]), 0);
        }
        /* the copy is independent */
        M->u[0] = -99;
        CU_ASSERT_EQUAL(S->u[0], 6.0);
        M->u[0] = S->u[0];
        model_dcm tmp = *M;
        tmp.a = S->a, tmp.b = S->b, tmp.c = S->c, tmp.d = S->d, tmp.delays = S->delays, tmp.u = S->u;
        CU_ASSERT_EQUAL(memcmp(&tmp, S, sizeof tmp), 0);
        CU_ASSERT_EQUAL(M->L.np, S->L.np);
        CU_ASSERT_EQUAL(M->two_state, 1);
        CU_ASSERT_EQUAL(M->integrator, MODEL_INT_ODE);
        model_dcm_free(M);
        model_dcm_free(S);
    }
}

/* ------------------------------------------------------------------ */
/* the one result loader                                                */

static char tmpdir[256];

static int make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dcm_test_layout_XXXXXX");
    return mkdtemp(tmpdir) != NULL;
}

static void path_in(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

static void put(const char *name, const char *text, size_t len)
{
    char p[512];
    path_in(p, sizeof p, name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fwrite(text, 1, len, f);
        fclose(f);
    }
}

static char *slurp(const char *name, size_t *len)
{
    char p[512];
    path_in(p, sizeof p, name);
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long l = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)l + 1);
    *len = fread(s, 1, (size_t)l, f);
    s[*len] = 0;
    fclose(f);
    return s;
}

/* A small two-state nonlinear problem and a fitted-looking result for it,
 * written as good.json. */
static dcm_problem *write_good(void)
{
    dcm_problem *P = dcm_problem_alloc(2, 1, 4, 1);
    P->region_names[0] = strdup("left");
    P->region_names[1] = strdup("right");
    P->input_names[0] = strdup("stim");
    P->M->TR = 2;
    P->M->two_state = 1;
    for (int k = 0; k < 4; k++)
        P->M->a[k] = 1;
    P->M->c[0] = 1;
    P->M->d[4 + 1] = 1;   /* right gates left -> right */
    const int np = P->M->L.np, n = 2, v = 4;
    dcm_result *R = calloc(1, sizeof *R);
    R->np = np;
    R->n = n;
    R->v = v;
    R->pE = malloc(sizeof(double) * np);
    R->pV = malloc(sizeof(double) * np);
    R->Ep = malloc(sizeof(double) * np);
    R->Pp = malloc(sizeof(double) * np);
    R->Cp = calloc((size_t)np * np, sizeof(double));
    model_dcm_priors(P->M, R->pE, R->pV);
    for (int i = 0; i < np; i++) {
        R->Ep[i] = R->pE[i] + (R->pV[i] ? 0.1 * (i + 1) : 0);
        R->Pp[i] = R->pV[i] ? 0.9 : NAN;
        R->Cp[(size_t)i * np + i] = R->pV[i] / 4;
    }
    R->Eh = calloc(n, sizeof(double));
    R->F = -123.25;
    R->y_obs = malloc(sizeof(double) * v * n);
    R->y_pred = malloc(sizeof(double) * v * n);
    for (int k = 0; k < v * n; k++) {
        R->y_obs[k] = sin(k);
        R->y_pred[k] = 0.8 * sin(k);
    }
    char p[512];
    path_in(p, sizeof p, "good.json");
    dcm_error e = {0};
    int rc = io_result_write_json(p, P, R, &e);
    if (rc)
        printf("\n  %s\n", e.msg);
    CU_ASSERT_EQUAL(rc, DCM_OK);
    dcm_result_free(R);
    return P;
}

/* What each of the three readers does with a file: DCM_OK or the code,
 * and the message in e[0..2] (io_result_load, io_params_load, report_load). */
static void load3(const dcm_problem *P, const char *name, int rc[3], dcm_error e[3])
{
    char p[512];
    path_in(p, sizeof p, name);
    memset(e, 0, 3 * sizeof *e);
    io_result_summary s;
    rc[0] = io_result_load(p, &s, &e[0]);
    io_result_summary_free(&s);
    double theta[64];
    model_dcm_priors(P->M, theta, theta + 32);
    rc[1] = io_params_load(p, P, theta, &e[1]);
    report_model m;
    rc[2] = report_load(p, &m, &e[2]);
    if (!rc[2])
        report_model_free(&m);
}

static void test_one_loader(void)
{
    CU_ASSERT_FATAL(make_tmpdir());
    dcm_problem *P = write_good();
    CU_ASSERT_FATAL(P->M->L.np <= 32);
    int rc[3];
    dcm_error e[3];
    load3(P, "good.json", rc, e);
    for (int r = 0; r < 3; r++) {
        if (rc[r])
            printf("\n  reader %d: %s\n", r, e[r].msg);
        CU_ASSERT_EQUAL(rc[r], DCM_OK);
    }
    /* what the strict reader refused, all three now refuse with its message */
    static const struct {
        const char *name, *text, *msg;
    } bad[] = {
        {"broken.json", "{\"free_energy\": 1,\n \"x\": }", "broken.json:2:"},
        {"dup.json", "{\"free_energy\": 1, \"free_energy\": 2}", "duplicate object key"},
        {"array.json", "[1, 2]", "expected a JSON object at the top level"},
        {"empty.json", "", "invalid JSON"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        put(bad[k].name, bad[k].text, strlen(bad[k].text));
        load3(P, bad[k].name, rc, e);
        for (int r = 0; r < 3; r++)
            ASSERT_ERR(rc[r], e[r], DCM_ERR_INPUT, bad[k].name, bad[k].msg);
    }
    /* a FIFO is refused by all three, never waited on */
    char fifo[512];
    path_in(fifo, sizeof fifo, "pipe.json");
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
    load3(P, "pipe.json", rc, e);
    for (int r = 0; r < 3; r++)
        ASSERT_ERR(rc[r], e[r], DCM_ERR_INPUT, "pipe.json", "FIFO");
    /* a UTF-8 byte-order mark is skipped by all three (report_load's own
       second parse used to refuse it) */
    size_t len;
    char *good = slurp("good.json", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(good);
    char *bom = malloc(len + 3);
    memcpy(bom, "\xEF\xBB\xBF", 3);
    memcpy(bom + 3, good, len);
    put("bom.json", bom, len + 3);
    load3(P, "bom.json", rc, e);
    for (int r = 0; r < 3; r++)
        CU_ASSERT_EQUAL(rc[r], DCM_OK);
    free(good);
    free(bom);
    dcm_problem_free(P);
    test_remove_dir(tmpdir);
}

/* The checks each reader adds on top of the shared parse stay its own:
 * a negative variance (summary), a ragged time series (report), an
 * unknown block (parameters). */
static void test_loader_fields(void)
{
    CU_ASSERT_FATAL(make_tmpdir());
    dcm_problem *P = write_good();
    char p[512];
    path_in(p, sizeof p, "good.json");
    json_t *root = test_load_json(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    int rc[3];
    dcm_error e[3];

    json_t *neg = json_deep_copy(root);
    json_array_set_new(json_object_get(json_object_get(neg, "vector"), "prior_var"), 0, json_real(-1));
    path_in(p, sizeof p, "neg.json");
    json_dump_file(neg, p, 0);
    load3(P, "neg.json", rc, e);
    ASSERT_ERR(rc[0], e[0], DCM_ERR_INPUT, "\"vector\".\"prior_var\"[0] is -1", "cannot be negative");
    ASSERT_ERR(rc[2], e[2], DCM_ERR_INPUT, "\"vector\".\"prior_var\"[0] is -1", "cannot be negative");
    CU_ASSERT_EQUAL(rc[1], DCM_OK);
    json_decref(neg);

    json_t *rag = json_deep_copy(root);
    json_array_set_new(json_object_get(rag, "predicted_bold_scaled"), 1, json_pack("[f]", 1.0));
    path_in(p, sizeof p, "rag.json");
    json_dump_file(rag, p, 0);
    load3(P, "rag.json", rc, e);
    CU_ASSERT_EQUAL(rc[0], DCM_OK);
    ASSERT_ERR(rc[2], e[2], DCM_ERR_INPUT, "rag.json", "\"predicted_bold_scaled\" row 2 must hold 2 numbers");
    json_decref(rag);

    json_t *blk = json_deep_copy(root);
    json_object_set_new(json_object_get(blk, "posterior_mean"), "E", json_real(1));
    path_in(p, sizeof p, "blk.json");
    json_dump_file(blk, p, 0);
    load3(P, "blk.json", rc, e);
    CU_ASSERT_EQUAL(rc[0], DCM_OK);
    CU_ASSERT_EQUAL(rc[2], DCM_OK);
    ASSERT_ERR(rc[1], e[1], DCM_ERR_INPUT, "unknown key \"posterior_mean\".\"E\"",
               "parameter blocks are A, B, C, D, transit, decay, epsilon");
    json_decref(blk);

    /* the parameter reader takes every block the writer wrote, D and
       two-state A included: theta equals the posterior mean */
    io_result_summary s;
    path_in(p, sizeof p, "good.json");
    CU_ASSERT_EQUAL_FATAL(io_result_load(p, &s, &e[0]), DCM_OK);
    CU_ASSERT_EQUAL(s.nd, 2);
    CU_ASSERT_EQUAL(s.two_state, 1);
    double theta[64] = {0};
    CU_ASSERT_EQUAL(io_params_load(p, P, theta, &e[1]), DCM_OK);
    CU_ASSERT_EQUAL(memcmp(theta, s.Ep, sizeof(double) * s.np), 0);
    /* and the result's "vector"."order" is written from the table */
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(root, "vector"), "order")),
                           "A, B (per input), C, D (per region), transit, decay, epsilon; each matrix "
                           "column-major");
    io_result_summary_free(&s);
    json_decref(root);
    dcm_problem_free(P);
    test_remove_dir(tmpdir);
}

/* Every command that reads a result file reads it through the one loader:
 * a FIFO is refused at once (dcm check used to wait on it), a BOM is
 * skipped (dcm check, review and report used to refuse it), a key given
 * twice is refused, each with the loader's message and exit 2. */
static void test_commands_share_loader(void)
{
    CU_ASSERT_FATAL(make_tmpdir());
    dcm_problem *P = write_good();
    dcm_problem_free(P);
    size_t len;
    char *good = slurp("good.json", &len), *bom = malloc(len + 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(good);
    memcpy(bom, "\xEF\xBB\xBF", 3);
    memcpy(bom + 3, good, len);
    put("bom.json", bom, len + 3);
    put("dup.json", "{\"free_energy\": 1, \"free_energy\": 2}", 36);
    char fifo[512];
    path_in(fifo, sizeof fifo, "pipe.json");
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
    static const char *const cmds[] = {"check %s/%s", "review %s/%s", "report %s/%s -o %s/out.html",
                                       "compare %s/%s %s/good.json", "reduce %s/%s --off decay"};
    char args[2048], out[65536];
    for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
        snprintf(args, sizeof args, cmds[c], tmpdir, "bom.json", tmpdir);
        int rc = test_dcm(args, out, sizeof out);
        if (rc)
            printf("\n  dcm %s: %d %s\n", args, rc, out);
        CU_ASSERT_EQUAL(rc, 0);
        snprintf(args, sizeof args, cmds[c], tmpdir, "dup.json", tmpdir);
        CU_ASSERT_EQUAL(test_dcm(args, out, sizeof out), 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "dup.json:1:"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "duplicate object key"));
        /* a FIFO nobody writes to: refused, not waited on (timeout: 124) */
        char cmd[4096];
        snprintf(args, sizeof args, cmds[c], tmpdir, "pipe.json", tmpdir);
        snprintf(cmd, sizeof cmd, "timeout 20 %s %s", test_dcm_bin(), args);
        CU_ASSERT_EQUAL(test_shell(cmd, out, sizeof out), 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "FIFO"));
    }
    free(good);
    free(bom);
    test_remove_dir(tmpdir);
}

int main(void)
{
    static const test_case cases[] = {
        {"layout: blocks, shapes, offsets for every model kind and size", test_table_properties},
        {"layout: counts past an int refused, not wrapped", test_table_limits},
        {"names: SPM's order; each name selects exactly itself", test_names_order_and_roundtrip},
        {"names: maps between orders go by name", test_map_by_name},
        {"names: selector messages from the table", test_selector_messages},
        {"model_dcm_copy: every field, owned arrays deep", test_model_copy},
        {"loader: one parse, one strictness for the three readers", test_one_loader},
        {"loader: each reader's own checks on top", test_loader_fields},
        {"loader: every command reads results through it", test_commands_share_loader},
        {NULL, NULL}};
    return test_run("layout", cases);
}
