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

int io_pname_format(const io_pname_space *S, int index, char *buf, size_t len)
{
    model_dcm_layout L;
    model_dcm_layout_init(&L, S->n, S->m, S->nd > 0);
    const int n = S->n, nn = n * n;
    if (index < 0 || index >= L.np)
        return -1;
    if (index < L.off_B) {
        int k = index - L.off_A;
        snprintf(buf, len, "A:%s->%s", S->regions[k / n], S->regions[k % n]);
    } else if (index < L.off_C) {
        int k = index - L.off_B, j = k / nn, r = k % nn;
        snprintf(buf, len, "B:%s:%s->%s", S->inputs[j], S->regions[r / n], S->regions[r % n]);
    } else if (index < L.off_D) {
        int k = index - L.off_C;
        snprintf(buf, len, "C:%s->%s", S->inputs[k / n], S->regions[k % n]);
    } else if (index < L.off_transit) {
        int k = index - L.off_D, j = k / nn, r = k % nn;
        snprintf(buf, len, "D:%s:%s->%s", S->regions[j], S->regions[r / n], S->regions[r % n]);
    } else if (index < L.off_decay) {
        snprintf(buf, len, "transit:%s", S->regions[index - L.off_transit]);
    } else if (index == L.off_decay) {
        snprintf(buf, len, "decay");
    } else {
        snprintf(buf, len, "epsilon");
    }
    return 0;
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

static void list_names(char *buf, size_t len, char *const *names, int k)
{
    buf[0] = 0;
    for (int i = 0; i < k; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, len - l, "%s%s", i ? ", " : "", names[i]);
    }
}

int io_pname_select(const io_pname_space *S, const char *selector,
                    unsigned char *mask, dcm_error *err)
{
    char *sel = squeeze(selector);
    if (!sel)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    char valid_r[1024], valid_i[1024];
    list_names(valid_r, sizeof valid_r, S->regions, S->n);
    list_names(valid_i, sizeof valid_i, S->inputs, S->m);
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
    return rc;
}
