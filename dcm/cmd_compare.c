/* cmd_compare.c — `dcm compare R1.json R2.json ...`: fixed-effects
 * comparison of models fitted to the same data. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/dcm_cli.h"
#include "io/io_result.h"

static const char *help =
    "usage: dcm compare RESULT1.json RESULT2.json ... [--json]\n"
    "\n"
    "Fixed-effects Bayesian model comparison of models fitted to the same\n"
    "data: each model's free energy F, its log Bayes factor against the best\n"
    "model (F - F_best) and its posterior probability under equal priors.\n"
    "A log Bayes factor above 3 (probability above 0.95) is strong evidence.\n"
    "\n"
    "options:\n"
    "  --json      print a JSON object instead of a table\n"
    "  -h, --help  this help\n"
    "\n"
    "example:\n"
    "  dcm compare fwd.json bwd.json\n";

/* A model's name: the file name without directory and .json */
static char *model_name(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    char *s = strdup(b);
    if (!s)
        return NULL;
    size_t l = strlen(s);
    if (l > 5 && !strcmp(s + l - 5, ".json"))
        s[l - 5] = 0;
    return s;
}

int cmd_compare(int argc, char **argv)
{
    int as_json = 0, k = 0;
    const char **files = calloc((size_t)argc, sizeof *files);
    if (!files)
        return cli_fail("compare", DCM_ERR_SYSTEM, "out of memory");
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            free(files);
            fputs(help, stdout);
            return DCM_OK;
        } else if (!strcmp(argv[i], "--json")) {
            as_json = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            free(files);
            return cli_fail("compare", DCM_ERR_USAGE, "unknown option '%s' (see dcm compare --help)", argv[i]);
        } else {
            files[k++] = argv[i];
        }
    }
    if (k < 2) {
        free(files);
        return cli_fail("compare", DCM_ERR_USAGE, "give at least two result files (see dcm compare --help)");
    }
    double *F = malloc(sizeof(double) * k), *lbf = malloc(sizeof(double) * k),
           *post = malloc(sizeof(double) * k);
    char **names = calloc((size_t)k, sizeof *names);
    int rc = DCM_OK;
    dcm_error err = {0, ""};
    if (!F || !lbf || !post || !names) {
        rc = cli_fail("compare", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    int ny_first = -1;
    for (int i = 0; i < k; i++) {
        io_result_summary s;
        memset(&s, 0, sizeof s);
        if (io_result_load(files[i], &s, &err)) {
            rc = cli_report("compare", &err);
            goto done;
        }
        F[i] = s.F;
        names[i] = model_name(files[i]);
        /* F of different data sets are not comparable */
        if (ny_first < 0)
            ny_first = s.n;
        else if (s.n != ny_first) {
            io_result_summary_free(&s);
            rc = cli_fail("compare", DCM_ERR_INPUT,
                          "%s models %d regions but %s models %d: models compared by their "
                          "free energy must be fitted to the same data", files[i], s.n,
                          files[0], ny_first);
            goto done;
        }
        io_result_summary_free(&s);
    }
    dcm_compare_ffx(F, k, lbf, post);
    if (as_json) {
        json_t *o = json_object(), *arr = json_array();
        for (int i = 0; i < k; i++) {
            json_t *m = json_object();
            json_object_set_new(m, "model", json_string(names[i]));
            json_object_set_new(m, "file", json_string(files[i]));
            json_object_set_new(m, "free_energy", json_real(F[i]));
            json_object_set_new(m, "log_bayes_factor", json_real(lbf[i]));
            json_object_set_new(m, "posterior_probability", json_real(post[i]));
            json_array_append_new(arr, m);
        }
        json_object_set_new(o, "method", json_string("fixed effects"));
        json_object_set_new(o, "models", arr);
        char *txt = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
        if (txt)
            puts(txt);
        free(txt);
        json_decref(o);
    } else {
        printf("%-24s %14s %14s %12s\n", "model", "F", "log BF", "P(model)");
        for (int i = 0; i < k; i++)
            printf("%-24s %14.4f %14.4f %12.4f\n", names[i], F[i], lbf[i], post[i]);
        if (k == 2)
            printf("\nlog Bayes factor %s vs %s: %.4f\n", names[0], names[1], F[0] - F[1]);
    }
done:
    if (names)
        for (int i = 0; i < k; i++)
            free(names[i]);
    free(names);
    free(F);
    free(lbf);
    free(post);
    free(files);
    return rc;
}
