/* cli_peb_show.c — second-level results in `dcm review`: a PEB result
 * (dcm peb -o, PEB of PEBs too) as SPM's review shows it, the parameter x
 * covariate table with the group free energy, iterations and convergence;
 * a leave-one-out result (dcm loo -o) as its predictions and r, p. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_peb.h"

int peb_json_kind(const char *path)
{
    /* only a regular file is looked into: a FIFO or a device is left to
       the result loader, which refuses it (it would wait here) */
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return PEB_KIND_NONE;
    json_error_t e;
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    int kind = PEB_KIND_NONE;
    if (o) {
        const char *k = json_string_value(json_object_get(o, "kind"));
        if (k && !strcmp(k, "loo"))
            kind = PEB_KIND_LOO;
        else if (json_is_object(json_object_get(o, "group")) && json_is_array(json_object_get(o, "effects")))
            kind = PEB_KIND_PEB;
    }
    json_decref(o);
    return kind;
}

static double jnum(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int review_loo(const char *path, json_t *o)
{
    json_t *subs = json_object_get(o, "subjects"), *params = json_object_get(o, "parameters");
    printf("result       %s (leave-one-out cross-validation, spm_dcm_loo)\n", path);
    printf("model        %s\n", json_string_value(json_object_get(o, "model")) ?: "?");
    printf("predicts     %s from", json_string_value(json_object_get(o, "covariate")) ?: "?");
    for (size_t k = 0; k < json_array_size(params); k++)
        printf("%s %s", k ? "," : "", json_string_value(json_array_get(params, k)) ?: "?");
    printf("\n\n%-16s %12s %12s %12s\n", "subject", "true", "predicted", "sd");
    for (size_t i = 0; i < json_array_size(subs); i++) {
        json_t *s = json_array_get(subs, i);
        printf("%-16s %12.4f %12.4f %12.4f\n", json_string_value(json_object_get(s, "subject")) ?: "?",
               jnum(s, "true"), jnum(s, "predicted"), jnum(s, "sd"));
    }
    printf("\nr            %.4f (df %d)\np            %.5f one-tailed (as SPM), %.5f two-sided\n", jnum(o, "r"),
           (int)json_integer_value(json_object_get(o, "df")), jnum(o, "p"), jnum(o, "p_two_sided"));
    return DCM_OK;
}

static int review_group(const char *path, json_t *o, double threshold)
{
    json_t *g = json_object_get(o, "group"), *eff = json_object_get(o, "effects");
    json_t *M = json_object_get(g, "M");
    const int search = json_object_get(o, "search") != NULL;
    printf("result       %s (%s)\n", path,
           json_object_get(o, "kind") ? "PEB of PEBs" : "second level: parametric empirical Bayes");
    if (json_string_value(json_object_get(o, "model")))
        printf("model        %s\n", json_string_value(json_object_get(o, "model")));
    printf("inputs       %zu (", json_array_size(json_object_get(g, "Snames")));
    for (size_t i = 0; i < json_array_size(json_object_get(g, "Snames")); i++)
        printf("%s%s", i ? ", " : "", json_string_value(json_array_get(json_object_get(g, "Snames"), i)) ?: "?");
    printf(")\ncovariates   ");
    for (size_t j = 0; j < json_array_size(json_object_get(g, "Xnames")); j++)
        printf("%s%s", j ? ", " : "", json_string_value(json_array_get(json_object_get(g, "Xnames"), j)) ?: "?");
    printf("\nfree energy  %.4f\n", jnum(g, "F"));
    printf("iterations   %d (M.maxit %d), converged: %s\n", (int)json_integer_value(json_object_get(g, "iterations")),
           (int)json_integer_value(json_object_get(M, "maxit")),
           json_is_true(json_object_get(g, "converged")) ? "yes" : "NO (stopped at M.maxit)");
    if (json_string_value(json_object_get(M, "Q")))
        printf("components   M.Q = %s, %zu between-subject log-precision%s\n", json_string_value(json_object_get(M, "Q")),
               json_array_size(json_object_get(g, "Eh")), json_array_size(json_object_get(g, "Eh")) == 1 ? "" : "s");
    printf("\n%-32s %-12s %10s %10s %8s\n", "parameter", "covariate", search ? "BMA mean" : "mean", "sd",
           search ? "Pp" : "P");
    int nmark = 0;
    for (size_t k = 0; k < json_array_size(eff); k++) {
        json_t *e = json_array_get(eff, k);
        double p = jnum(e, "probability");
        int mark = isfinite(p) && p > threshold;
        nmark += mark;
        printf("%-32s %-12s %10.4f %10.4f ", json_string_value(json_object_get(e, "parameter")) ?: "?",
               json_string_value(json_object_get(e, "covariate")) ?: "?", jnum(e, "mean"), jnum(e, "sd"));
        if (isfinite(p))
            printf("%8.3f%s\n", p, mark ? " *" : "");
        else
            printf("%8s\n", "-");
    }
    printf("\n%d effect%s with %s > %g (*)%s\n", nmark, nmark == 1 ? "" : "s", search ? "Pp" : "P", threshold,
           search ? "; Pp: posterior probability that the effect is present (spm_dcm_peb_bmc)" : "");
    return DCM_OK;
}

int review_peb(const char *path, double threshold)
{
    json_error_t e;
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (!o)
        return cli_fail("review", DCM_ERR_INPUT, "%s, line %d: not JSON (%s)", path, e.line, e.text);
    const char *k = json_string_value(json_object_get(o, "kind"));
    int rc = k && !strcmp(k, "loo") ? review_loo(path, o) : review_group(path, o, threshold);
    json_decref(o);
    return rc;
}
