/* cmd_check.c — `dcm check RESULT...`: SPM's spm_dcm_fmri_check
 * diagnostics of fitted models as a table (or JSON), with the result's
 * warnings. Results written before "diagnostics" existed (or by other
 * tools, e.g. SPM's reference files) get them computed from the fields
 * they hold; what cannot be computed is shown as n/a. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"
#include "io/io_result.h"

static const char *const usage[] = {"RESULT.json... [--json]", NULL};

static const char *description =
    "Print the fit diagnostics of each result (one row per result), with the\n"
    "thresholds of SPM's spm_dcm_fmri_check; a value past its threshold is\n"
    "marked '!' and the result's warnings (design and fit) are listed below\n"
    "the table:\n"
    "  variance    percent variance explained over all regions,\n"
    "              100 PSS / (PSS + RSS) (prediction and residual sums of\n"
    "              squares); flagged below 10 %\n"
    "  max|A|      largest connection between regions (Hz); below 1/8 Hz\n"
    "  eff.params  effective number of parameters the data informed:\n"
    "              KL(posterior || prior) / log(scans); below 1\n"
    "  steps       iterations after the first that raised F; 0 means the\n"
    "              inversion never left its starting point\n"
    "Spectral DCM results (\"analysis\": \"csd\") are checked as SPM checks them:\n"
    "variance is that of the cross-spectra (|predicted|^2 against |empirical -\n"
    "predicted|^2 over frequencies and region pairs), not of the time series;\n"
    "max|A|, eff.params and steps are the same checks on the spectral posterior.\n"
    "MANUAL \"Checks and warnings\" says what each one means and what to do.\n";

static const char *footer =
    "exit status: 0 (also when there are warnings: read the table or the\n"
    "JSON), 1 usage error, 2 unreadable or invalid result file\n"
    "\n"
    "example:\n"
    "  dcm estimate fwd_spec.json -o fwd.json\n"
    "  dcm check fwd.json bwd.json\n"
    "  dcm check sub-*/fwd.json --json\n";

typedef struct {
    dcm_diagnostics d;
    dcm_warnings w;
    int csd;   /* a spectral DCM result */
} checked;

/* Every number of a nested JSON array, in order, appended to x (cap
 * entries); returns the new count. */
static size_t flatten(json_t *j, double *x, size_t k, size_t cap)
{
    if (json_is_number(j)) {
        if (k < cap)
            x[k] = json_number_value(j);
        return k + 1;
    }
    size_t i;
    json_t *e;
    json_array_foreach(j, i, e)
        k = flatten(e, x, k, cap);
    return k;
}

/* SPM's variance explained of a spectral fit: of the cross-spectra, real
 * and imaginary parts alike (NaN when the file lacks them). */
static double csd_variance(json_t *root)
{
    json_t *sp = json_object_get(root, "spectra");
    json_t *parts[4] = {json_object_get(json_object_get(sp, "empirical"), "real"),
                        json_object_get(json_object_get(sp, "empirical"), "imag"),
                        json_object_get(json_object_get(sp, "predicted"), "real"),
                        json_object_get(json_object_get(sp, "predicted"), "imag")};
    size_t cnt[4];
    for (int q = 0; q < 4; q++)
        cnt[q] = flatten(parts[q], NULL, 0, 0);
    if (!cnt[0] || cnt[1] != cnt[0] || cnt[2] != cnt[0] || cnt[3] != cnt[0])
        return NAN;
    double *obs = malloc(sizeof(double) * 2 * cnt[0]), *pred = malloc(sizeof(double) * 2 * cnt[0]);
    double r = NAN;
    if (obs && pred) {
        flatten(parts[0], obs, 0, cnt[0]);
        flatten(parts[1], obs + cnt[0], 0, cnt[0]);
        flatten(parts[2], pred, 0, cnt[0]);
        flatten(parts[3], pred + cnt[0], 0, cnt[0]);
        r = dcm_variance_explained(obs, pred, NULL, 2 * cnt[0]);
    }
    free(obs);
    free(pred);
    return r;
}

/* rows x cols numbers of a JSON array of rows, column-major into a new
 * array; NULL when absent or malformed. */
static double *read_rows(json_t *j, int *rows, int *cols)
{
    if (!json_is_array(j) || json_array_size(j) == 0)
        return NULL;
    int r = (int)json_array_size(j);
    json_t *first = json_array_get(j, 0);
    if (!json_is_array(first) || json_array_size(first) == 0)
        return NULL;
    int c = (int)json_array_size(first);
    if (*cols > 0 && c != *cols)
        return NULL;
    double *x = malloc(sizeof(double) * (size_t)r * (size_t)c);
    if (!x)
        return NULL;
    for (int i = 0; i < r; i++) {
        json_t *row = json_array_get(j, (size_t)i);
        if (!json_is_array(row) || (int)json_array_size(row) != c) {
            free(x);
            return NULL;
        }
        for (int k = 0; k < c; k++) {
            json_t *e = json_array_get(row, (size_t)k);
            x[i + (size_t)k * r] = json_is_number(e) ? json_number_value(e) : NAN;
        }
    }
    *rows = r;
    *cols = c;
    return x;
}

static double *read_vec(json_t *j, int *k)
{
    if (!json_is_array(j) || json_array_size(j) == 0)
        return NULL;
    int n = (int)json_array_size(j);
    if (*k > 0 && n != *k)
        return NULL;
    double *x = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; x && i < n; i++) {
        json_t *e = json_array_get(j, (size_t)i);
        x[i] = json_is_number(e) ? json_number_value(e) : NAN;
    }
    *k = n;
    return x;
}

static double num_or_nan(json_t *j)
{
    return json_is_number(j) ? json_number_value(j) : NAN;
}

/* Diagnostics from the fields of a result that has no "diagnostics". */
static void compute(json_t *root, dcm_diagnostics *d)
{
    int v = 0, n = 0, vp = 0, np_ = 0, vc = 0;
    double *obs = read_rows(json_object_get(root, "observed_bold_scaled"), &v, &n);
    int n2 = n;
    double *pred = read_rows(json_object_get(root, "predicted_bold_scaled"), &vp, &n2);
    double *conf = read_rows(json_object_get(root, "fitted_confounds_scaled"), &vc, &n2);
    if (obs && pred && vp == v && (!conf || vc == v))
        d->variance_explained = dcm_variance_explained(obs, pred, conf, (size_t)v * n);
    int scans = v ? v : vp;
    /* largest off-diagonal |A| of the posterior mean */
    json_t *A = json_object_get(json_object_get(root, "posterior_mean"), "A");
    int ar = 0, ac = 0;
    double *a = read_rows(A, &ar, &ac);
    if (a && ar == ac && ar > 1) {
        double mx = 0.0;
        for (int j = 0; j < ac; j++)
            for (int i = 0; i < ar; i++)
                if (i != j && isfinite(a[i + j * ar]))
                    mx = fmax(mx, fabs(a[i + j * ar]));
        d->max_abs_connection = mx;
    }
    json_t *vec = json_object_get(root, "vector");
    double *pE = read_vec(json_object_get(vec, "prior_mean"), &np_);
    double *pV = pE ? read_vec(json_object_get(vec, "prior_var"), &np_) : NULL;
    double *Ep = pV ? read_vec(json_object_get(vec, "posterior_mean"), &np_) : NULL;
    int r = 0, c = np_;
    double *Cp = Ep ? read_rows(json_object_get(vec, "posterior_cov"), &r, &c) : NULL;
    if (Cp && r == np_ && scans > 1) {
        int ok = 1;
        for (int i = 0; i < np_; i++)
            ok &= isfinite(pE[i]) && isfinite(pV[i]) && isfinite(Ep[i]);
        if (ok)   /* Cp is symmetric: column-major reads as row-major */
            d->effective_parameters = dcm_kl_normal(np_, Ep, Cp, pE, pV, NULL) / log((double)scans);
    }
    int nt = 0;
    double *Ft = read_vec(json_object_get(root, "free_energy_trajectory"), &nt);
    if (Ft)
        d->accepted_steps = dcm_accepted_steps(Ft, nt);
    free(obs);
    free(pred);
    free(conf);
    free(a);
    free(pE);
    free(pV);
    free(Ep);
    free(Cp);
    free(Ft);
}

static int check_one(const char *path, checked *c, dcm_error *err)
{
    c->d = (dcm_diagnostics){NAN, NAN, NAN, -1};
    /* the one reader of result files: a FIFO is refused, not waited on */
    json_t *root = io_result_json_load(path, err);
    if (!root)
        return DCM_ERR_INPUT;
    if (!json_object_get(root, "posterior_mean")) {
        json_decref(root);
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: not a result of dcm estimate (no \"posterior_mean\")", path);
    }
    json_t *dg = json_object_get(root, "diagnostics");
    if (json_is_object(dg)) {
        c->d.variance_explained = num_or_nan(json_object_get(dg, "variance_explained"));
        c->d.max_abs_connection = num_or_nan(json_object_get(dg, "max_abs_connection"));
        c->d.effective_parameters = num_or_nan(json_object_get(dg, "effective_parameters"));
        json_t *s = json_object_get(dg, "accepted_steps");
        c->d.accepted_steps = json_is_integer(s) ? (int)json_integer_value(s) : -1;
    } else {
        compute(root, &c->d);
    }
    json_t *an = json_object_get(root, "analysis");
    c->csd = json_is_string(an) && !strcmp(json_string_value(an), "csd");
    if (c->csd && !json_is_object(dg))   /* not the time series: the spectra */
        c->d.variance_explained = csd_variance(root);
    int rc = DCM_OK;
    json_t *w = json_object_get(root, "warnings");
    if (json_is_array(w)) {
        size_t i;
        json_t *x;
        json_array_foreach(w, i, x)
            if (json_is_string(x) && dcm_warnings_add(&c->w, "%s", json_string_value(x)))
                rc = DCM_ERR_SYSTEM;
    } else if (dcm_diagnostics_warn(&c->d, &c->w)) {   /* an older result */
        rc = DCM_ERR_SYSTEM;
    }
    json_decref(root);
    if (rc)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    return DCM_OK;
}

static void cell(double x, const char *fmt, int width, int flagged)
{
    char buf[64];
    if (isfinite(x))
        snprintf(buf, sizeof buf, fmt, x);
    else
        snprintf(buf, sizeof buf, "n/a");
    printf(" %*s%s", width, buf, flagged ? "!" : " ");
}

static json_t *jnum(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

int cmd_check(int argc, char **argv)
{
    int as_json = 0, nfiles = 0;
    const cli_opt options[] = {
        CLI_FLAG(0, "json", &as_json,
                 "print {\"results\": [{\"result\", \"diagnostics\", \"warnings\"}], \"thresholds\": "
                 "{...}} instead of the table"),
        CLI_END};
    const cli_command cmd = {"check", usage, description, footer, options, 0};
    int prc = cli_options_parse(&cmd, argc, argv, &nfiles);
    if (prc)
        return prc == CLI_OPTIONS_HELP ? DCM_OK : prc;
    if (!nfiles)
        return cli_fail("check", DCM_ERR_USAGE, "give one or more result files (see dcm check --help)");
    checked *res = calloc((size_t)nfiles, sizeof *res);
    const char **files = calloc((size_t)nfiles, sizeof *files);
    if (!res || !files) {
        free(res);
        free(files);
        return cli_fail("check", DCM_ERR_SYSTEM, "out of memory");
    }
    int k = 0, rc = DCM_OK, width = 6;
    dcm_error err = {0, ""};
    for (int i = 1; i <= nfiles; i++)
        files[k++] = argv[i];
    for (k = 0; k < nfiles && rc == DCM_OK; k++) {
        rc = check_one(files[k], &res[k], &err);
        if ((int)strlen(files[k]) > width)
            width = (int)strlen(files[k]);
    }
    if (rc) {
        cli_report("check", &err);
    } else if (as_json) {
        json_t *arr = json_array();
        for (k = 0; k < nfiles; k++) {
            const dcm_diagnostics *d = &res[k].d;
            json_t *w = json_array();
            for (int i = 0; i < res[k].w.count; i++)
                json_array_append_new(w, json_string(res[k].w.items[i]));
            json_t *one = json_pack("{s:s, s:{s:o, s:o, s:o, s:o}, s:o}", "result", files[k], "diagnostics",
                               "variance_explained", jnum(d->variance_explained), "max_abs_connection",
                               jnum(d->max_abs_connection), "effective_parameters",
                               jnum(d->effective_parameters), "accepted_steps",
                               d->accepted_steps >= 0 ? json_integer(d->accepted_steps) : json_null(),
                               "warnings", w);
            if (one && res[k].csd)   /* task rows keep their keys */
                json_object_set_new(one, "analysis", json_string("csd"));
            json_array_append_new(arr, one);
        }
        json_t *o = json_pack("{s:o, s:{s:f, s:f, s:f}}", "results", arr, "thresholds",
                              "variance_explained", DCM_CHECK_MIN_VARIANCE, "max_abs_connection",
                              DCM_CHECK_MIN_CONNECTION, "effective_parameters", DCM_CHECK_MIN_EFFECTIVE);
        rc = o ? cli_emit_json("check", o, 1, NULL) : cli_fail("check", DCM_ERR_SYSTEM, "out of memory");
        json_decref(o);
    } else {
        printf("%-*s %10s  %10s  %10s  %6s  %s\n", width, "result", "variance%", "max|A| Hz",
               "eff.params", "steps", "warnings");
        for (k = 0; k < nfiles; k++) {
            const dcm_diagnostics *d = &res[k].d;
            printf("%-*s", width, files[k]);
            cell(d->variance_explained, "%.1f", 10, d->variance_explained < DCM_CHECK_MIN_VARIANCE);
            cell(d->max_abs_connection, "%.3f", 10, d->max_abs_connection < DCM_CHECK_MIN_CONNECTION);
            cell(d->effective_parameters, "%.2f", 10,
                 d->effective_parameters < DCM_CHECK_MIN_EFFECTIVE);
            if (d->accepted_steps >= 0)
                printf(" %6d%s", d->accepted_steps, d->accepted_steps == 0 ? "!" : " ");
            else
                printf(" %6s ", "n/a");
            printf(" %d\n", res[k].w.count);
        }
        printf("thresholds (SPM's spm_dcm_fmri_check): variance >= %g %%, max|A| >= 1/8 Hz, "
               "eff.params >= %g, steps >= 1; '!' marks a value past its threshold\n",
               DCM_CHECK_MIN_VARIANCE, DCM_CHECK_MIN_EFFECTIVE);
        for (k = 0; k < nfiles; k++)
            if (res[k].csd) {
                printf("spectral DCM (csd) results: variance is that of the cross-spectra, as SPM "
                       "checks them\n");
                break;
            }
        for (k = 0; k < nfiles; k++)
            for (int i = 0; i < res[k].w.count; i++)
                printf("warning: %s: %s\n", files[k], res[k].w.items[i]);
    }
    for (k = 0; k < nfiles; k++)
        dcm_warnings_free(&res[k].w);
    free(res);
    free(files);
    return rc;
}
