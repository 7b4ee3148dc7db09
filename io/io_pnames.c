/* io_pnames.c — parameter names and selectors (see io_pnames.h). */
#include "io/io_pnames.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/model_dcm.h"

int io_pname_count(const io_pname_space *S)
{
    model_dcm_layout L;
    model_dcm_layout_init(&L, S->n, S->m, S->nd > 0);
    return L.np;
}

/* Writes parameter `index`'s name with snprintf semantics (returns the
 * full length, or -1 when out of range), so callers can size a buffer. */
static int pname_print(const io_pname_space *S, int index, char *buf, size_t len)
{
    model_dcm_layout L;
    model_dcm_layout_init(&L, S->n, S->m, S->nd > 0);
    const int n = S->n, nn = n * n;
    if (index < 0 || index >= L.np)
        return -1;
    if (index < L.off_B) {
        int k = index - L.off_A;
        return snprintf(buf, len, "A:%s->%s", S->regions[k / n], S->regions[k % n]);
    } else if (index < L.off_C) {
        int k = index - L.off_B, j = k / nn, r = k % nn;
        return snprintf(buf, len, "B:%s:%s->%s", S->inputs[j], S->regions[r / n], S->regions[r % n]);
    } else if (index < L.off_D) {
        int k = index - L.off_C;
        return snprintf(buf, len, "C:%s->%s", S->inputs[k / n], S->regions[k % n]);
    } else if (index < L.off_transit) {
        int k = index - L.off_D, j = k / nn, r = k % nn;
        return snprintf(buf, len, "D:%s:%s->%s", S->regions[j], S->regions[r / n], S->regions[r % n]);
    } else if (index < L.off_decay) {
        return snprintf(buf, len, "transit:%s", S->regions[index - L.off_transit]);
    } else if (index == L.off_decay) {
        return snprintf(buf, len, "decay");
    }
    return snprintf(buf, len, "epsilon");
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
    model_dcm_layout L;
    model_dcm_layout_init(&L, n, m, from->nd > 0);
    const int nn = n * n;
    /* every block is column-major in (target, source): index = target + n*source */
    for (int p = 0; p < L.np; p++) {
        int q;
        if (p < L.off_B) {
            int k = p - L.off_A;
            q = L.off_A + rp[k % n] + n * rp[k / n];
        } else if (p < L.off_C) {
            int k = p - L.off_B, r = k % nn;
            q = L.off_B + ip[k / nn] * nn + rp[r % n] + n * rp[r / n];
        } else if (p < L.off_D) {
            int k = p - L.off_C;
            q = L.off_C + rp[k % n] + n * ip[k / n];
        } else if (p < L.off_transit) {
            int k = p - L.off_D, r = k % nn;
            q = L.off_D + rp[k / nn] * nn + rp[r % n] + n * rp[r / n];
        } else if (p < L.off_decay) {
            q = L.off_transit + rp[p - L.off_transit];
        } else {
            q = p;
        }
        map[p] = q;
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

int io_pname_select(const io_pname_space *S, const char *selector,
                    unsigned char *mask, dcm_error *err)
{
    char *sel = squeeze(selector);
    if (!sel)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
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
    /* which source/target pattern and which modulator */
    const char *mod = NULL, *edge = NULL;
    if (!strcmp(block, "*") && np_ == 1) {
        edge = NULL;
    } else if (!strcmp(block, "A") || !strcmp(block, "C")) {
        if (np_ != 2) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': write %s:FROM->TO", selector, block);
            goto done;
        }
        edge = parts[1];
    } else if (!strcmp(block, "B") || !strcmp(block, "D")) {
        if (np_ == 2 && !strcmp(parts[1], "*")) {
            mod = "*";
            edge = "*";
        } else if (np_ == 3) {
            mod = parts[1];
            edge = parts[2];
        } else {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': write %s:%s:FROM->TO (or %s:*)",
                               selector, block, block[0] == 'B' ? "INPUT" : "REGION", block);
            goto done;
        }
        if (block[0] == 'B' && !known(mod, S->inputs, S->m)) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': unknown input '%s'; the inputs are: %s",
                               selector, mod, valid_i);
            goto done;
        }
        if (block[0] == 'D' && !known(mod, S->regions, S->n)) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': unknown region '%s'; the regions are: %s",
                               selector, mod, valid_r);
            goto done;
        }
    } else if (!strcmp(block, "transit")) {
        if (np_ == 1) {
            edge = "*";
        } else if (np_ == 2) {
            edge = parts[1];
            if (!known(edge, S->regions, S->n)) {
                rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': unknown region '%s'; the regions are: %s",
                                   selector, edge, valid_r);
                goto done;
            }
        } else {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': write transit:REGION", selector);
            goto done;
        }
    } else if (!strcmp(block, "decay") || !strcmp(block, "epsilon")) {
        if (np_ != 1) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': %s has no parts", selector, block);
            goto done;
        }
    } else {
        rc = dcm_error_set(err, DCM_ERR_INPUT,
                           "parameter '%s': unknown block '%s'; use A, B, C, D, transit, decay or epsilon "
                           "(e.g. 'B:Attention:V1->V5', 'A:*->V5', 'C:Photic->V1')", selector, block);
        goto done;
    }
    /* FROM->TO */
    char *from = NULL, *to = NULL;
    if (edge && strcmp(block, "transit")) {
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
        int from_is_input = !strcmp(block, "C");
        if (!(from_is_input ? known(from, S->inputs, S->m) : known(from, S->regions, S->n))) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': unknown %s '%s'; the %ss are: %s",
                               selector, from_is_input ? "input" : "region", from,
                               from_is_input ? "input" : "region", from_is_input ? valid_i : valid_r);
            goto done;
        }
        if (!known(to, S->regions, S->n)) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s': unknown region '%s'; the regions are: %s",
                               selector, to, valid_r);
            goto done;
        }
    }
    /* match every parameter by its name's parts */
    int np = io_pname_count(S), hits = 0;
    model_dcm_layout L;
    model_dcm_layout_init(&L, S->n, S->m, S->nd > 0);
    const int n = S->n, nn = n * n;
    for (int i = 0; i < np; i++) {
        int hit = 0;
        if (!strcmp(block, "*")) {
            hit = 1;
        } else if (!strcmp(block, "A") && i < L.off_B) {
            int k = i - L.off_A;
            hit = part_match(from, S->regions[k / n]) && part_match(to, S->regions[k % n]);
        } else if (!strcmp(block, "B") && i >= L.off_B && i < L.off_C) {
            int k = i - L.off_B, r = k % nn;
            hit = part_match(mod, S->inputs[k / nn]) && part_match(from, S->regions[r / n]) &&
                  part_match(to, S->regions[r % n]);
        } else if (!strcmp(block, "C") && i >= L.off_C && i < L.off_D) {
            int k = i - L.off_C;
            hit = part_match(from, S->inputs[k / n]) && part_match(to, S->regions[k % n]);
        } else if (!strcmp(block, "D") && i >= L.off_D && i < L.off_transit) {
            int k = i - L.off_D, r = k % nn;
            hit = part_match(mod, S->regions[k / nn]) && part_match(from, S->regions[r / n]) &&
                  part_match(to, S->regions[r % n]);
        } else if (!strcmp(block, "transit") && i >= L.off_transit && i < L.off_decay) {
            hit = part_match(edge, S->regions[i - L.off_transit]);
        } else if (!strcmp(block, "decay")) {
            hit = i == L.off_decay;
        } else if (!strcmp(block, "epsilon")) {
            hit = i == L.off_epsilon;
        }
        if (hit) {
            mask[i] = 1;
            hits++;
        }
    }
    if (!hits)
        rc = dcm_error_set(err, DCM_ERR_INPUT, "parameter '%s' matches nothing in this model%s", selector,
                           !strcmp(block, "D") ? " (it has no D block)" : "");
done:
    free(sel);
    free(valid_r);
    free(valid_i);
    return rc;
}
