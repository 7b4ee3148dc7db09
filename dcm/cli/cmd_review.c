/* cmd_review.c — `dcm review RESULT.json [--threshold P]`: a terminal
 * summary of one fitted model, as SPM's review: every free parameter with
 * its posterior mean, sd and posterior probability, the fit per region,
 * free energy, iterations and convergence, noise precision. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"
#include "dcm/cli/cli_peb.h"
#include "dcm/report/report.h"

static const char *const usage[] = {"RESULT.json [--threshold P]", NULL};

static const char *description =
    "Summarise one fitted model (a result of dcm estimate) in the terminal:\n"
    "  - every free parameter (prior variance > 0) with its posterior mean, sd\n"
    "    and posterior probability Pp (the probability that the effect exceeds\n"
    "    its prior mean in size); parameters with Pp > P are marked '*'.\n"
    "    Names (as in every command): \"A:V1->V5\" endogenous connection,\n"
    "    \"B:Attention:V1->V5\" its modulation by an input, \"C:Photic->V1\"\n"
    "    driving input, \"D:SPC:V1->V5\" nonlinear modulation, \"transit:V1\",\n"
    "    \"decay\", \"epsilon\" haemodynamics. A, B, D are in Hz (B per unit\n"
    "    input) and C enters divided by 16 (C/16 Hz per unit input), except the\n"
    "    self-connections \"A:V1->V1\", which (like the haemodynamic parameters)\n"
    "    are log scaling factors (self-inhibition -0.5*exp(A) Hz).\n"
    "  - fit: variance explained per region, 1 - var(residual)/var(observed),\n"
    "    the residual taking off the prediction and the fitted confounds;\n"
    "  - free energy, iterations, convergence, noise log-precision per region.\n"
    "The result's warnings (design and fit checks, see dcm check) come first.\n"
    "A spectral DCM (\"analysis\": \"csd\") is reviewed in its own terms: the\n"
    "parameters with a(1), a(2) (neuronal fluctuations), b(1), b(2) (global\n"
    "noise) and c:R (regional noise); Pp is SPM's for spectral DCM, the\n"
    "probability that the parameter differs from its prior mean; the fit is the\n"
    "variance of the cross-spectra explained, over all region pairs and per\n"
    "region (its auto-spectrum), with each region's noise log-precision.\n"
    "A regression DCM (\"method\": \"rdcm\" or \"sparse_rdcm\") is reviewed as\n"
    "TAPAS reports it: F (and per region), the chosen p0 of sparse rDCM, and\n"
    "the strongest connections with their posterior sd (Pp from the per-region\n"
    "posterior variance) and, for sparse rDCM, inclusion probability.\n";

static const char *footer =
    "exit status: 0 success, 1 usage error, 2 unreadable or invalid result file\n"
    "\n"
    "example:\n"
    "  dcm estimate fwd_spec.json -o fwd.json\n"
    "  dcm review fwd.json --threshold 0.99\n";

static const char *yes_no(int x)
{
    return x < 0 ? "unknown" : x ? "yes" : "no";
}

static void print_names(char *const *names, int k)
{
    for (int i = 0; i < k; i++)
        printf("%s%s", i ? ", " : "", names[i]);
}

/* The cross-spectra of a spectral result as 2 nw n n doubles, (re, im)
 * pairs at w + nw (i + n j) (models/model_csd.h); NULL when absent or
 * misshapen. */
static double *read_csd(json_t *c, int nw, int n)
{
    json_t *re = json_object_get(c, "real"), *im = json_object_get(c, "imag");
    if (!json_is_array(re) || !json_is_array(im) || (int)json_array_size(re) != nw ||
        (int)json_array_size(im) != nw)
        return NULL;
    double *z = malloc(sizeof(double) * 2 * (size_t)nw * n * n);
    for (int w = 0; z && w < nw; w++)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                for (int part = 0; part < 2; part++) {
                    json_t *x = json_array_get(json_array_get(json_array_get(part ? im : re, (size_t)w),
                                                              (size_t)i), (size_t)j);
                    if (!json_is_number(x)) {
                        free(z);
                        return NULL;
                    }
                    z[2 * ((size_t)w + (size_t)nw * (i + (size_t)n * j)) + part] = json_number_value(x);
                }
    return z;
}

/* dcm review of a regression DCM result: F, per-region summaries, and the
 * largest connections (at most 40, by |Ep|; all free ones with Pp above
 * the threshold are counted). */
static int review_rdcm(const char *file, const io_result_summary *s, json_t *doc, double threshold)
{
    const int n = s->n;
    json_t *w = json_object_get(doc, "warnings");
    if (json_is_array(w) && json_array_size(w) > 0) {
        printf("WARNINGS     %zu (see dcm check %s)\n", json_array_size(w), file);
        size_t i;
        json_t *x;
        json_array_foreach(w, i, x)
            printf("  ! %s\n", json_is_string(x) ? json_string_value(x) : "?");
        printf("\n");
    }
    printf("result       %s\n", file);
    printf("model        %s, %d regions, %d input%s\n",
           s->rdcm == 2 ? "sparse regression DCM (sparse rDCM)" : "regression DCM (rDCM)", n, s->m,
           s->m == 1 ? "" : "s");
    printf("free energy  %.4f (sum over regions)\n", s->F);
    if (s->rdcm == 2)
        printf("p0           %g (the grid value with the largest F)\n",
               json_number_value(json_object_get(doc, "p0")));
    json_t *Fr = json_object_get(doc, "free_energy_regions"), *it = json_object_get(doc, "iterations_regions");
    double lo = INFINITY, hi = -INFINITY;
    for (size_t k = 0; k < json_array_size(Fr); k++) {
        lo = fmin(lo, json_number_value(json_array_get(Fr, k)));
        hi = fmax(hi, json_number_value(json_array_get(Fr, k)));
    }
    long itmax = 0;
    for (size_t k = 0; k < json_array_size(it); k++)
        itmax = json_integer_value(json_array_get(it, k)) > itmax ? json_integer_value(json_array_get(it, k)) : itmax;
    printf("per region   F from %.4f to %.4f; at most %ld VB iterations\n", lo, hi, itmax);
    json_t *ip = json_object_get(json_object_get(doc, "inclusion_probability"), "A");
    /* free connections (prior variance > 0, off the diagonal) by |Ep| */
    int *idx = malloc(sizeof(int) * (size_t)n * n);
    if (!idx)
        return cli_fail("review", DCM_ERR_SYSTEM, "out of memory");
    int k = 0, above = 0;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++) {
            int p = i + n * j;
            if (i == j || !(s->pV[p] > 0))
                continue;
            double sd = sqrt(s->Vp[p]), z = sd > 0 ? fabs(s->Ep[p] - s->pE[p]) / sd : INFINITY;
            above += 0.5 * erfc(-z / sqrt(2.0)) > threshold;
            idx[k++] = p;
        }
    for (int a = 1; a < k; a++)   /* insertion sort by |Ep|, largest first */
        for (int b = a; b > 0 && fabs(s->Ep[idx[b]]) > fabs(s->Ep[idx[b - 1]]); b--) {
            int t = idx[b];
            idx[b] = idx[b - 1];
            idx[b - 1] = t;
        }
    printf("connections  %d free between regions; %d with Pp > %g\n\n", k, above, threshold);
    printf("%-28s %12s %10s %8s%s\n", "strongest connections", "mean (Hz)", "sd", "Pp",
           ip ? "  inclusion" : "");
    for (int q = 0; q < k && q < 40; q++) {
        int p = idx[q], i = p % n, j = p / n;
        char name[256];
        snprintf(name, sizeof name, "%s -> %s", s->regions[j], s->regions[i]);
        double sd = sqrt(s->Vp[p]), z = sd > 0 ? fabs(s->Ep[p] - s->pE[p]) / sd : INFINITY;
        printf("%-28s %12.5f %10.5f %8.3f", name, s->Ep[p], sd, 0.5 * erfc(-z / sqrt(2.0)));
        if (ip)
            printf("  %9.3f", json_number_value(json_array_get(json_array_get(ip, (size_t)i), (size_t)j)));
        printf("\n");
    }
    free(idx);
    return DCM_OK;
}

/* dcm review of a spectral DCM result (s, doc: io_result_load_doc's). */
static int review_csd(const char *file, const io_result_summary *s, json_t *doc, double threshold)
{
    const int n = s->n, np = s->np;
    json_t *w = json_object_get(doc, "warnings");
    if (json_is_array(w) && json_array_size(w) > 0) {
        printf("WARNINGS     %zu (see dcm check %s)\n", json_array_size(w), file);
        size_t i;
        json_t *x;
        json_array_foreach(w, i, x)
            printf("  ! %s\n", json_is_string(x) ? json_string_value(x) : "?");
        printf("\n");
    }
    json_t *model = json_object_get(doc, "model"), *sp = json_object_get(doc, "spectra");
    json_t *Hz = json_object_get(sp, "frequencies"), *obs = json_object_get(doc, "observed_bold_scaled");
    const int nw = json_is_array(Hz) ? (int)json_array_size(Hz) : 0;
    printf("result       %s\n", file);
    printf("model        spectral DCM (resting state), %d region%s (", n, n == 1 ? "" : "s");
    print_names(s->regions, n);
    printf(")");
    if (json_is_array(obs))
        printf(", %zu scans", json_array_size(obs));
    if (json_is_number(json_object_get(model, "TR")))
        printf(", TR %g s", json_number_value(json_object_get(model, "TR")));
    printf("\n");
    if (nw > 0)
        printf("spectra      %d frequencies, %.4g to %.4g Hz; MAR(%d) of the data\n", nw,
               json_number_value(json_array_get(Hz, 0)), json_number_value(json_array_get(Hz, (size_t)nw - 1)),
               (int)json_integer_value(json_object_get(sp, "mar_order")));
    printf("free energy  F = %.4f\n", s->F);
    if (s->iterations >= 0)
        printf("iterations   %d\n", s->iterations);
    printf("converged    %s\n", yes_no(s->converged));

    io_pname_space S = io_result_space(s);
    int width = 9, nfree = 0, nmarked = 0;
    for (int k = 0; k < np; k++)
        if (s->pV[k] > 0) {
            char *nm = io_pname_name(&S, k);
            if (nm && (int)strlen(nm) > width)
                width = (int)strlen(nm);
            free(nm);
        }
    printf("\n%-*s %10s %10s %8s\n", width, "parameter", "mean", "sd", "Pp");
    for (int k = 0; k < np; k++) {
        if (!(s->pV[k] > 0))
            continue;
        char *nm = io_pname_name(&S, k);
        double sd = sqrt(fmax(s->Cp[(size_t)k * np + k], 0.0));
        /* spm_dcm_fmri_csd: the probability of a difference from the prior mean */
        double Pp = sd > 0 ? 0.5 * erfc(-fabs(s->Ep[k] - s->pE[k]) / sd / sqrt(2.0)) : NAN;
        int mark = isfinite(Pp) && Pp > threshold;
        nfree++;
        nmarked += mark;
        printf("%-*s %10.4f %10.4f %8.4f%s\n", width, nm ? nm : "?", s->Ep[k], sd, Pp, mark ? " *" : "");
        free(nm);
    }
    printf("* posterior probability > %g: %d of %d free parameters\n", threshold, nmarked, nfree);
    printf("  units: A between regions in Hz; self-connections A:Ri->Ri are log scaling factors\n"
           "  (self-inhibition -exp(A)/2 Hz); transit, decay, epsilon log scaling factors;\n"
           "  a(1), a(2) log amplitude and log exponent of the neuronal fluctuations' spectrum,\n"
           "  b(1), b(2) the same of the observation noise common to all regions, c:Ri the log\n"
           "  amplitude of region Ri's own noise (0 = prior)\n");

    double *zo = nw ? read_csd(json_object_get(sp, "empirical"), nw, n) : NULL;
    double *zp = nw ? read_csd(json_object_get(sp, "predicted"), nw, n) : NULL;
    json_t *dg = json_object_get(json_object_get(doc, "diagnostics"), "variance_explained");
    printf("\nfit          variance of the cross-spectra explained = 100 |pred|^2 / (|pred|^2 +\n"
           "             |empirical - pred|^2), summed over frequencies%s\n",
           json_is_number(dg) ? "" : " (not in the file)");
    if (json_is_number(dg))
        printf("  all region pairs %.3f\n", json_number_value(dg));
    int rw = 6;
    for (int j = 0; j < n; j++)
        if ((int)strlen(s->regions[j]) > rw)
            rw = (int)strlen(s->regions[j]);
    printf("  %-*s %18s %20s\n", rw, "region", "auto-spectrum %", "noise log-precision");
    for (int i = 0; i < n; i++) {
        double ps = 0.0, rs = 0.0;
        for (int f = 0; zo && zp && f < nw; f++)
            for (int part = 0; part < 2; part++) {
                size_t q = 2 * ((size_t)f + (size_t)nw * (i + (size_t)n * i)) + part;
                ps += zp[q] * zp[q];
                rs += (zo[q] - zp[q]) * (zo[q] - zp[q]);
            }
        printf("  %-*s", rw, s->regions[i]);
        if (zo && zp && ps + rs > 0)
            printf(" %18.3f", 100.0 * ps / (ps + rs));
        else
            printf(" %18s", "n/a");
        if (s->Eh)   /* channel (i, i) */
            printf(" %20.3f\n", s->Eh[i + (size_t)n * i]);
        else
            printf(" %20s\n", "n/a");
    }
    free(zo);
    free(zp);
    return DCM_OK;
}

int cmd_review(int argc, char **argv)
{
    const char *file = NULL;
    double threshold = 0.95;
    const cli_opt options[] = {
        CLI_DOUBLE(0, "threshold", &threshold, "P",
                   "mark parameters whose posterior probability exceeds P (0 < P < 1; default 0.95)",
                   .min = 0.0, .max = 1.0, .bounds = CLI_BOUNDS_OPEN,
                   .missing = "--threshold needs a probability, e.g. --threshold 0.95",
                   .invalid = "--threshold must be a probability between 0 and 1 (exclusive), not '%v'"),
        CLI_END};
    const cli_command cmd = {"review", usage, description, footer, options, 0};
    int npos;
    int prc = cli_options_parse(&cmd, argc, argv, &npos);
    if (prc)
        return prc == CLI_OPTIONS_HELP ? DCM_OK : prc;
    if (npos > 1)
        return cli_fail("review", DCM_ERR_USAGE,
                        "review takes one result file ('%s' and '%s' given); "
                        "use dcm report or dcm compare for several", argv[1], argv[2]);
    file = npos ? argv[1] : NULL;
    if (!file)
        return cli_fail("review", DCM_ERR_USAGE, "give a result file (see dcm review --help)");

    if (peb_json_kind(file) != PEB_KIND_NONE)   /* a second-level result: its own table */
        return review_peb(file, threshold);
    dcm_error err = {0, ""};
    {   /* a spectral DCM has no time series to review: its own summary */
        io_result_summary cs;
        json_t *doc = NULL;
        if (io_result_load_doc(file, &cs, &doc, &err))
            return cli_report("review", &err);
        int csd = cs.csd || cs.rdcm;
        int rc = cs.rdcm ? review_rdcm(file, &cs, doc, threshold)
                 : csd ? review_csd(file, &cs, doc, threshold) : DCM_OK;
        json_decref(doc);
        io_result_summary_free(&cs);
        if (csd)
            return rc;
    }
    report_model m;
    if (report_load(file, &m, &err))
        return cli_report("review", &err);
    const io_result_summary *s = &m.s;
    const int n = s->n;

    /* warnings first: they say whether the rest can be trusted */
    if (m.nwarn > 0) {   /* as report_load read them: no second parse of the file */
        printf("WARNINGS     %d (see dcm check %s)\n", m.nwarn, file);
        for (int i = 0; i < m.nwarn; i++)
            printf("  ! %s\n", m.warnings[i]);
        printf("\n");
    }

    printf("result       %s\n", file);
    printf("model        %d region%s (", n, n == 1 ? "" : "s");
    print_names(s->regions, n);
    printf("), %d input%s (", s->m, s->m == 1 ? "" : "s");
    print_names(s->inputs, s->m);
    printf(")");
    if (m.v)
        printf(", %d scans", m.v);
    if (isfinite(m.TR))
        printf(", TR %g s", m.TR);
    printf("%s%s\n", s->nd ? ", nonlinear" : "", s->two_state ? ", two-state" : "");
    printf("free energy  F = %.4f\n", s->F);
    if (s->iterations >= 0)
        printf("iterations   %d\n", s->iterations);
    printf("converged    %s\n", yes_no(s->converged));

    /* parameters */
    int width = 9, nfree = 0, nmarked = 0;
    /* a parameter name holds at most three region/input names: size the
       buffer from the longest so no name is cut */
    size_t longest = 0;
    for (int j = 0; j < n; j++)
        longest = strlen(s->regions[j]) > longest ? strlen(s->regions[j]) : longest;
    for (int j = 0; j < s->m; j++)
        longest = strlen(s->inputs[j]) > longest ? strlen(s->inputs[j]) : longest;
    size_t namelen = 3 * longest + 64;
    char *name = malloc(namelen);
    if (!name) {
        report_model_free(&m);
        return cli_fail("review", DCM_ERR_SYSTEM, "out of memory");
    }
    for (int k = 0; k < s->np; k++)
        if (report_param_free(&m, k)) {
            report_param_name(&m, k, REPORT_NAME_REVIEW, name, namelen);
            if ((int)strlen(name) > width)
                width = (int)strlen(name);
        }
    printf("\n%-*s %10s %10s %8s\n", width, "parameter", "mean", "sd", "Pp");
    for (int k = 0; k < s->np; k++) {
        if (!report_param_free(&m, k))
            continue;
        nfree++;
        report_param_name(&m, k, REPORT_NAME_REVIEW, name, namelen);
        int mark = isfinite(m.Pp[k]) && m.Pp[k] > threshold;
        nmarked += mark;
        printf("%-*s %10.4f %10.4f %8.4f%s\n", width, name, s->Ep[k], report_param_sd(&m, k), m.Pp[k],
               mark ? " *" : "");
    }
    printf("* posterior probability > %g: %d of %d free parameters\n", threshold, nmarked, nfree);
    printf("  units: A (between regions), B, D in Hz; C enters as C/16 Hz; self-connections\n"
           "  A:Vi->Vi and the haemodynamic parameters are log scaling factors (0 = prior)\n");

    /* fit */
    printf("\nfit          variance explained = 1 - var(residual) / var(observed),\n"
           "             residual = observed - predicted%s (scaled units)\n",
           m.y_conf ? " - fitted confounds" : "");
    if (!m.v)
        printf("  (the file holds no time series)\n");
    int rw = 6;
    for (int j = 0; j < n; j++)
        if ((int)strlen(s->regions[j]) > rw)
            rw = (int)strlen(s->regions[j]);
    if (m.v || s->Eh)
        printf("  %-*s %18s %20s\n", rw, "region", "variance explained", "noise log-precision");
    for (int j = 0; j < n && (m.v || s->Eh); j++) {
        printf("  %-*s", rw, s->regions[j]);
        if (isfinite(m.r2[j]))
            printf(" %18.3f", m.r2[j]);
        else
            printf(" %18s", "n/a");
        if (s->Eh)
            printf(" %20.3f", s->Eh[j]);
        else
            printf(" %20s", "n/a");
        printf("\n");
    }
    if (m.v) {
        double mean = 0.0;
        int k = 0;
        for (int j = 0; j < n; j++)
            if (isfinite(m.r2[j])) {
                mean += m.r2[j];
                k++;
            }
        if (k)
            printf("  mean variance explained %.3f\n", mean / k);
    }
    free(name);
    report_model_free(&m);
    return DCM_OK;
}
