/* io_pnames.c — parameter names and selectors (see io_pnames.h). */
#include "io/io_pnames.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/model_layout.h"

/* The block table of a space (two-state does not change the blocks). */
static void table_of(const io_pname_space *S, model_layout *T)
{
    if (S->csd == IO_PNAME_RDCM)
        model_layout_init_rdcm(T, S->n, S->m);
    else if (S->csd)
        model_layout_init_csd(T, S->n);
    else
        model_layout_init(T, S->n, S->m, S->nd > 0, 0);
}

int io_pname_count(const io_pname_space *S)
{
    model_layout T;
    table_of(S, &T);
    return T.np;
}

/* The name of index q along axis a: a region or an input. */
static const char *axis_name(const io_pname_space *S, model_layout_axis a, int q)
{
    return a == MODEL_AXIS_INPUT ? S->inputs[q] : S->regions[q];
}

static size_t longest(char *const *names, int k)
{
    size_t l = 0;
    for (int i = 0; i < k; i++)
        l = strlen(names[i]) > l ? strlen(names[i]) : l;
    return l;
}

size_t io_pname_cap(const io_pname_space *S)
{
    model_layout T;
    table_of(S, &T);
    const size_t r = longest(S->regions, S->n), u = longest(S->inputs, S->m);
#define AXIS_LEN(a) ((a) == MODEL_AXIS_INPUT ? u : (a) == MODEL_AXIS_INDEX ? 12 : r)
    size_t cap = 0;
    for (int b = 0; b < T.nblocks; b++) {
        const model_layout_block *B = &T.block[b];
        if (!B->count)
            continue;   /* no names (D of a bilinear model, B and C without inputs) */
        /* BLOCK[:SLICE][:FROM->TO | :ROW] */
        size_t l = strlen(B->name) + (B->slice_axis ? 1 + AXIS_LEN(B->slice_axis) : 0) +
                   (B->col_axis ? 1 + AXIS_LEN(B->col_axis) + 2 + AXIS_LEN(B->row_axis)
                    : B->row_axis ? 1 + AXIS_LEN(B->row_axis) : 0);
        cap = l > cap ? l : cap;
    }
#undef AXIS_LEN
    return cap + 1;
}

/* Writes parameter `index`'s name with snprintf semantics (returns the
 * full length, or -1 when out of range), so callers can size a buffer:
 * BLOCK[:SLICE][:FROM->TO | :ROW], FROM being the column (the source). */
static int pname_print(const io_pname_space *S, int index, char *buf, size_t len)
{
    model_layout T;
    table_of(S, &T);
    int i, j, k, b = model_layout_locate(&T, index, &i, &j, &k);
    if (b < 0)
        return -1;
    const model_layout_block *B = &T.block[b];
    const char *slice = B->slice_axis ? axis_name(S, B->slice_axis, k) : NULL;
    if (B->col_axis)
        return snprintf(buf, len, "%s:%s%s%s->%s", B->name, slice ? slice : "", slice ? ":" : "",
                        axis_name(S, B->col_axis, j), axis_name(S, B->row_axis, i));
    if (B->row_axis == MODEL_AXIS_INDEX)   /* spectral a(1), b(2): SPM's own names */
        return snprintf(buf, len, "%s(%d)", B->name, i + 1);
    if (B->row_axis)
        return snprintf(buf, len, "%s:%s%s%s", B->name, slice ? slice : "", slice ? ":" : "",
                        axis_name(S, B->row_axis, i));
    return snprintf(buf, len, "%s", B->name);
}

int io_pname_format(const io_pname_space *S, int index, char *buf, size_t len)
{
    return pname_print(S, index, buf, len) < 0 ? -1 : 0;
}

char *io_pname_name(const io_pname_space *S, int index)
{
    int l = pname_print(S, index, NULL, 0);
    if (l < 0)
        return NULL;
    char *buf = malloc((size_t)l + 1);
    if (buf)
        pname_print(S, index, buf, (size_t)l + 1);
    return buf;
}

static int name_pos(char *const *names, int k, const char *name)
{
    for (int i = 0; i < k; i++)
        if (!strcmp(names[i], name))
            return i;
    return -1;
}

/* The names of `what` (regions or inputs) in `a` that `b` lacks, for a
 * message: "'X', 'Y'" (malloc'd; NULL when none or out of memory). */
static char *missing_names(char *const *a, int ka, char *const *b, int kb)
{
    size_t len = 1;
    for (int i = 0; i < ka; i++)
        if (name_pos(b, kb, a[i]) < 0)
            len += strlen(a[i]) + 4;
    if (len == 1)
        return NULL;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    *p = 0;
    for (int i = 0; i < ka; i++)
        if (name_pos(b, kb, a[i]) < 0)
            p += sprintf(p, "%s'%s'", p == s ? "" : ", ", a[i]);
    return s;
}

static int set_difference(const char *what, const char *la, char *const *a, int ka, const char *lb,
                          char *const *b, int kb, dcm_error *err)
{
    char *onlya = missing_names(a, ka, b, kb), *onlyb = missing_names(b, kb, a, ka);
    int rc = dcm_error_set(err, DCM_ERR_INPUT,
                           "%s and %s have different %ss (in the first only: %s; in the second only: "
                           "%s): their parameters cannot be matched by name", la, lb, what,
                           onlya ? onlya : "none", onlyb ? onlyb : "none");
    free(onlya);
    free(onlyb);
    return rc;
}

int io_pname_map(const io_pname_space *from, const char *from_label, const io_pname_space *to,
                 const char *to_label, int *map, dcm_error *err)
{
    const int n = from->n, m = from->m;
    if ((from->csd == IO_PNAME_RDCM) != (to->csd == IO_PNAME_RDCM))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s is a %s DCM but %s is a %s DCM: their parameters "
                             "cannot be matched by name", from_label,
                             from->csd == IO_PNAME_RDCM ? "regression" : "classical", to_label,
                             to->csd == IO_PNAME_RDCM ? "regression" : "classical");
    if (from->csd != to->csd)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s is a %s DCM but %s is a %s DCM: their parameters "
                             "cannot be matched by name", from_label, from->csd ? "spectral" : "task",
                             to_label, to->csd ? "spectral" : "task");
    int ok = n == to->n;
    for (int i = 0; ok && i < n; i++)
        ok = name_pos(to->regions, to->n, from->regions[i]) >= 0;
    if (!ok)
        return set_difference("region", from_label, from->regions, n, to_label, to->regions, to->n, err);
    ok = m == to->m;
    for (int j = 0; ok && j < m; j++)
        ok = name_pos(to->inputs, to->m, from->inputs[j]) >= 0;
    if (!ok)
        return set_difference("input", from_label, from->inputs, m, to_label, to->inputs, to->m, err);
    if ((from->nd > 0) != (to->nd > 0))
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s is %s but %s is %s: one has D (gating) parameters the other lacks, "
                             "so their parameters cannot be matched by name", from_label,
                             from->nd ? "nonlinear" : "bilinear", to_label, to->nd ? "nonlinear" : "bilinear");
    int *rp = malloc(sizeof(int) * (size_t)(n + m + 1)), *ip = rp + n;
    if (!rp)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    for (int i = 0; i < n; i++)
        rp[i] = name_pos(to->regions, n, from->regions[i]);
    for (int j = 0; j < m; j++)
        ip[j] = name_pos(to->inputs, m, from->inputs[j]);
    model_layout T;
    table_of(from, &T);
    /* element (i, j, k) of a block goes to (i, j, k) with each index moved
       along its axis: regions by rp, inputs by ip */
    for (int p = 0; p < T.np; p++) {
        int i, j, k, b = model_layout_locate(&T, p, &i, &j, &k);
        const model_layout_block *B = &T.block[b];
#define MOVE(axis, q) ((axis) == MODEL_AXIS_REGION ? rp[q] : (axis) == MODEL_AXIS_INPUT ? ip[q] : (q))
        map[p] = model_layout_index(B, MOVE(B->row_axis, i), MOVE(B->col_axis, j), MOVE(B->slice_axis, k));
#undef MOVE
    }
    free(rp);
    return DCM_OK;
}

/* Copy s without blanks. */
static char *squeeze(const char *s)
{
    char *o = malloc(strlen(s) + 1), *p = o;
    if (!o)
        return NULL;
    for (; *s; s++)
        if (*s != ' ' && *s != '\t')
            *p++ = *s;
    *p = 0;
    return o;
}

/* Does pattern part `pat` (may be "*") match `name`? */
static int part_match(const char *pat, const char *name)
{
    return strcmp(pat, "*") == 0 || strcmp(pat, name) == 0;
}

static int known(const char *pat, char *const *names, int k)
{
    if (!strcmp(pat, "*"))
        return 1;
    for (int i = 0; i < k; i++)
        if (!strcmp(pat, names[i]))
            return 1;
    return 0;
}

/* "a, b, c" (malloc'd; NULL when out of memory) */
static char *list_names(char *const *names, int k)
{
    size_t len = 1;
    for (int i = 0; i < k; i++)
        len += strlen(names[i]) + 2;
    char *buf = malloc(len), *p = buf;
    if (!buf)
        return NULL;
    *p = 0;
    for (int i = 0; i < k; i++)
        p += sprintf(p, "%s%s", i ? ", " : "", names[i]);
    return buf;
}

/* SPM's own names, spm_fieldindices': BLOCK(i,j[,k]) with 1-based indices
 * along the block's dimensions (B(4,4,3): row/target 4, column/source 4,
 * input 3), or BLOCK(k) for the k-th element of a block (column-major, as
 * MATLAB's linear index). Returns 1 when `sel` (squeezed) has that form
 * and names a parameter (set in mask), 0 when it is not of that form, or
 * a DCM_ERR_* code (negated) with a message when the indices are out of
 * range. BLOCK(k) only for a vector block (transit(3)): a matrix needs
 * every index (A(2,1)). Spectral a(1)/b(2) keep their own reading. */
static int spm_index_select(const model_layout *T, const char *sel, const char *selector,
                            unsigned char *mask, dcm_error *err)
{
    const char *paren = strchr(sel, '(');
    size_t len = strlen(sel);
    if (!paren || strchr(sel, ':') || len < 4 || sel[len - 1] != ')')
        return 0;
    char block[32];
    size_t bl = (size_t)(paren - sel);
    if (bl == 0 || bl >= sizeof block)
        return 0;
    memcpy(block, sel, bl);
    block[bl] = 0;
    const model_layout_block *B = model_layout_find(T, block);
    if (!B)
        return 0;
    long ix[3] = {0, 0, 0};
    int nix = 0;
    const char *p = paren + 1;
    while (nix < 3) {
        char *end = NULL;
        ix[nix] = strtol(p, &end, 10);
        if (end == p)
            return 0;
        nix++;
        if (*end == ',') {
            p = end + 1;
            continue;
        }
        if (*end == ')' && end[1] == 0)
            break;
        return 0;
    }
    if (nix == 1 && (B->row_axis == MODEL_AXIS_INDEX || B->cols != 1 || B->slices != 1))
        return 0; /* a(1): the caller's spectral form; A(1) of a matrix: give every index */
    int k;
    if (nix == 1) {
        if (ix[0] < 1 || ix[0] > B->count)
            return -dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': %s has %d elements (%s(1) to %s(%d))",
                                  selector, block, B->count, block, block, B->count);
        k = B->offset + (int)ix[0] - 1;
    } else {
        const int dims[3] = {B->rows, B->cols, B->slices};
        for (int d = 2; d >= nix; d--)
            if (dims[d] != 1) {
                /* fewer indices than dimensions: MATLAB folds the rest into the last */
                return -dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': %s is %d x %d x %d; give %d indices",
                                      selector, block, B->rows, B->cols, B->slices, B->slices > 1 ? 3 : 2);
            }
        for (int d = 0; d < nix; d++)
            if (ix[d] < 1 || ix[d] > dims[d])
                return -dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': index %d is %ld but %s is %d x %d%s",
                                      selector, d + 1, ix[d], block, B->rows, B->cols,
                                      B->slices > 1 ? " x ..." : "");
        k = model_layout_index(B, (int)ix[0] - 1, (int)ix[1] - 1, nix > 2 ? (int)ix[2] - 1 : 0);
    }
    if (B->count == 0)
        return -dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': the model has no %s parameters", selector, block);
    mask[k] = 1;
    return 1;
}

char *io_pname_spm_name(const io_pname_space *S, int index)
{
    model_layout T;
    table_of(S, &T);
    int i = 0, j = 0, k = 0;
    int b = model_layout_locate(&T, index, &i, &j, &k);
    if (b < 0)
        return NULL;
    const model_layout_block *B = &T.block[b];
    char buf[96];
    if (B->count == 1)
        snprintf(buf, sizeof buf, "%s", B->name);
    else if (B->slices > 1)
        snprintf(buf, sizeof buf, "%s(%d,%d,%d)", B->name, i + 1, j + 1, k + 1);
    else if (B->cols > 1)
        snprintf(buf, sizeof buf, "%s(%d,%d)", B->name, i + 1, j + 1);
    else
        snprintf(buf, sizeof buf, "%s(%d)", B->name, i + 1);
    return strdup(buf);
}

int io_pname_select(const io_pname_space *S, const char *selector,
                    unsigned char *mask, dcm_error *err)
{
    char *sel = squeeze(selector);
    if (!sel)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    {
        model_layout T0;
        table_of(S, &T0);
        int sr = spm_index_select(&T0, sel, selector, mask, err);
        if (sr) {
            free(sel);
            return sr > 0 ? DCM_OK : -sr;
        }
    }
    char *valid_r = list_names(S->regions, S->n), *valid_i = list_names(S->inputs, S->m);
    if (!valid_r || !valid_i) {
        free(sel);
        free(valid_r);
        free(valid_i);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    }
    /* split into block and up to two further parts at ':' */
    char *parts[4] = {sel, NULL, NULL, NULL};
    int np_ = 1;
    for (char *p = sel; *p && np_ < 4; p++)
        if (*p == ':') {
            *p = 0;
            parts[np_++] = p + 1;
        }
    const char *block = parts[0];
    int rc = DCM_OK;
    /* "a(2)": element 2 of a block indexed by position (spectral a, b) */
    int isel = -1;
    char *paren = strchr(parts[0], '(');
    if (paren) {
        char *end = NULL;
        long q = strtol(paren + 1, &end, 10);
        if (end == paren + 1 || strcmp(end, ")") || q < 1 || q > 1000000) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': write BLOCK(K) with K a whole number "
                               "from 1 (e.g. 'a(1)')", selector);
            goto done;
        }
        *paren = 0;
        isel = (int)q - 1;
    }
    model_layout T;
    table_of(S, &T);
    const model_layout_block *B = NULL;
#define AXIS_WORD(a) ((a) == MODEL_AXIS_INPUT ? "input" : "region")
#define AXIS_VALID(a) ((a) == MODEL_AXIS_INPUT ? valid_i : valid_r)
#define AXIS_KNOWN(a, pat) ((a) == MODEL_AXIS_INPUT ? known(pat, S->inputs, S->m) : known(pat, S->regions, S->n))
    /* the slice pattern (B's input, D's region) and the FROM->TO or ROW part */
    const char *mod = NULL, *edge = NULL;
    if (!strcmp(block, "*") && np_ == 1) {
        edge = NULL;
    } else if (!(B = model_layout_find(&T, block))) {
        char names[160];
        size_t o = 0;
        for (int b = 0; b < T.nblocks && o < sizeof names; b++)
            o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", b == 0 ? "" : b == T.nblocks - 1 ? " or " : ", ",
                                  T.block[b].name);
        rc = dcm_error_set(err, DCM_ERR_INPUT,
                           "parameter '%s': unknown block '%s'; use %s "
                           "(e.g. 'B:Attention:V1->V5', 'A:*->V5', 'C:Photic->V1')", selector, block, names);
        goto done;
    } else if ((isel >= 0) != (B->row_axis == MODEL_AXIS_INDEX && isel >= 0)) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': %s has no numbered elements (K) in "
                           "'%s(K)'", selector, block, block);
        goto done;
    } else if (B->row_axis == MODEL_AXIS_INDEX) {
        if (np_ != 1 || isel >= B->rows) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': write %s(1) to %s(%d), or %s for all",
                               selector, block, block, B->rows, block);
            goto done;
        }
    } else if (B->slice_axis) {
        if (np_ == 2 && !strcmp(parts[1], "*")) {
            mod = "*";
            edge = "*";
        } else if (np_ == 3) {
            mod = parts[1];
            edge = parts[2];
        } else {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': write %s:%s:FROM->TO (or %s:*)",
                               selector, block, B->slice_axis == MODEL_AXIS_INPUT ? "INPUT" : "REGION", block);
            goto done;
        }
        if (!AXIS_KNOWN(B->slice_axis, mod)) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': unknown %s '%s'; the %ss are: %s",
                               selector, AXIS_WORD(B->slice_axis), mod, AXIS_WORD(B->slice_axis),
                               AXIS_VALID(B->slice_axis));
            goto done;
        }
    } else if (B->col_axis) {
        if (np_ != 2) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': write %s:FROM->TO", selector, block);
            goto done;
        }
        edge = parts[1];
    } else if (B->row_axis) {
        if (np_ == 1) {
            edge = "*";
        } else if (np_ == 2) {
            edge = parts[1];
            if (!AXIS_KNOWN(B->row_axis, edge)) {
                rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': unknown %s '%s'; the %ss are: %s",
                                   selector, AXIS_WORD(B->row_axis), edge, AXIS_WORD(B->row_axis),
                                   AXIS_VALID(B->row_axis));
                goto done;
            }
        } else {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': write %s:%s", selector, block,
                               B->row_axis == MODEL_AXIS_INPUT ? "INPUT" : "REGION");
            goto done;
        }
    } else if (np_ != 1) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': %s has no parts", selector, block);
        goto done;
    }
    /* FROM->TO: FROM runs along the columns (sources), TO along the rows */
    char *from = NULL, *to = NULL;
    if (B && B->col_axis) {
        char *arrow = strstr(edge, "->");
        if (arrow) {
            *arrow = 0;
            from = (char *)edge;
            to = arrow + 2;
        } else if (!strcmp(edge, "*")) {
            from = to = "*";
        } else {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': '%s' is not FROM->TO", selector, edge);
            goto done;
        }
        if (!AXIS_KNOWN(B->col_axis, from)) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': unknown %s '%s'; the %ss are: %s",
                               selector, AXIS_WORD(B->col_axis), from, AXIS_WORD(B->col_axis),
                               AXIS_VALID(B->col_axis));
            goto done;
        }
        if (!AXIS_KNOWN(B->row_axis, to)) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': unknown %s '%s'; the %ss are: %s",
                               selector, AXIS_WORD(B->row_axis), to, AXIS_WORD(B->row_axis),
                               AXIS_VALID(B->row_axis));
            goto done;
        }
    }
#undef AXIS_WORD
#undef AXIS_VALID
#undef AXIS_KNOWN
    /* match every parameter of the block by its name's parts */
    int hits = 0;
    const int want = B ? (int)(B - T.block) : -1;
    for (int p = 0; p < T.np; p++) {
        int i, j, k, b = model_layout_locate(&T, p, &i, &j, &k);
        int hit = !B;
        if (b == want) {
            const char *row_pat = B->col_axis ? to : edge;
            hit = (!B->slice_axis || part_match(mod, axis_name(S, B->slice_axis, k))) &&
                  (!B->col_axis || part_match(from, axis_name(S, B->col_axis, j))) &&
                  (!B->row_axis ||
                   (B->row_axis == MODEL_AXIS_INDEX ? isel < 0 || i == isel
                                                    : part_match(row_pat, axis_name(S, B->row_axis, i))));
        }
        if (hit) {
            mask[p] = 1;
            hits++;
        }
    }
    if (!hits) {
        char why[64] = "";
        if (B && B->optional && B->count == 0)
            snprintf(why, sizeof why, " (it has no %s block)", B->name);
        rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s' matches nothing in this model%s", selector, why);
    }
done:
    free(sel);
    free(valid_r);
    free(valid_i);
    return rc;
}
