/* cmd_report.c — `dcm report [RESULT.json ...] [--lme LME.tsv] -o
 * report.html [--png DIR]`: one self-contained HTML report of fitted models
 * and, with --lme, of a random-effects comparison over a group, with
 * figures drawn by cairo (dcm/report/report.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"
#include "dcm/cli/cli_peb.h"
#include "io/io_lme.h"
#include "dcm/report/report.h"

static const char *const usage[] = {
    "RESULT.json [RESULT2.json ...] -o REPORT.html [--png DIR]\n"
    "                  [--lme LME.tsv] [--threshold P] [--scale S] [--evidence EV.json]...",
    "--lme LME.tsv -o REPORT.html [--png DIR]", NULL};

static const char *description =
    "Write one self-contained HTML file (figures embedded as PNG data URIs, no\n"
    "scripts, nothing fetched from the network) describing fitted models\n"
    "(results of dcm estimate). For each model:\n"
    "  - warnings of dcm estimate first (or \"no warnings\"), then what was\n"
    "    fitted: TR, TE, delays, confounds, data scale, options, priors and the\n"
    "    fit diagnostics;\n"
    "  - observed (dotted) and predicted BOLD per region over scans, with the\n"
    "    variance explained, and the inputs over the same scans;\n"
    "  - a connectivity diagram: regions in a circle, endogenous connections as\n"
    "    arrows labelled with their strength (Hz), modulations (B) and driving\n"
    "    inputs (C) coloured by input;\n"
    "  - every free parameter with its posterior mean and 90% credible interval\n"
    "    (mean +- 1.645 sd), grouped A / B (per input) / C / D / haemodynamic,\n"
    "    filled when Pp > 0.95 (the interval lies beyond the prior mean);\n"
    "  - the free energy over iterations;\n"
    "  - tables of the fit and of the parameters.\n"
    "A spectral DCM result (resting state) shows, instead of the BOLD and the\n"
    "inputs, its cross-spectra: an n x n grid of panels, |CSD| of each region\n"
    "pair against frequency, observed (solid) and predicted (dashed), the\n"
    "auto-spectra on the diagonal (MODEL_spectra.png; MANUAL 16.4).\n"
    "With several results fitted to the same data it adds a fixed-effects model\n"
    "comparison (log Bayes factors and posterior model probabilities, as dcm\n"
    "compare); results fitted to different data are reported without it.\n"
    "With --lme it adds, first, a random-effects comparison over a group of\n"
    "subjects (as dcm compare --rfx --lme): per model the expected frequency\n"
    "exp_r, exceedance probability xp and protected exceedance probability pxp\n"
    "(figure and table), and the Bayesian omnibus risk. Result files are then\n"
    "optional: a report of the group comparison alone is fine.\n"
    "With --evidence EV.json (repeat it, one per result; written by dcm evidence\n"
    "RESULT.json -o EV.json) it adds the sampled log evidence: a table and a\n"
    "figure of F against the sampled log evidence (+-2 SE) and their gap per\n"
    "model, and per model its sampled posterior marginals over the Laplace\n"
    "Gaussians (evidence.png, MODEL_marginals.png). Each evidence file is\n"
    "matched to a result by the hash of the result's bytes it records; one\n"
    "that matches none of the results given is an error (exit 2).\n";

static const char *footer =
    "exit status: 0 written, 1 usage error, 2 unreadable or invalid result file,\n"
    "log-evidence table or evidence file, or an evidence file of another result\n"
    "(nothing is written), 3 the group comparison failed,\n"
    "4 cannot write the report or the PNG files\n"
    "\n"
    "examples:\n"
    "  dcm estimate fwd_spec.json -o fwd.json\n"
    "  dcm estimate bwd_spec.json -o bwd.json\n"
    "  dcm report fwd.json bwd.json -o report.html --png figures\n"
    "  dcm batch manifest.tsv -o out          # writes out/summary.tsv\n"
    "  dcm report --lme out/summary.tsv -o group.html --png figures\n"
    "  dcm evidence fwd.json -o fwd.evidence.json\n"
    "  dcm report fwd.json bwd.json --evidence fwd.evidence.json -o report.html\n";

/* "dcm report ARGS" for the report's header */
/* The process ends after a report: let cairo and fontconfig drop their
 * caches so that leak checkers see only our own allocations (only when
 * they were loaded: a report that failed early never loaded them). */
static void release_font_caches(void)
{
    if (!report_cairo_loaded())
        return;
    report_cairo()->debug_reset_static_data();
    report_cairo()->FcFini();
}

static char *command_line(int argc, char **argv)
{
    size_t len = strlen("dcm ") + 1;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *s = malloc(len);
    if (!s)
        return NULL;
    strcpy(s, "dcm");
    for (int i = 0; i < argc; i++) {
        strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

/* Read the log-evidence table and run random-effects BMS over it, as dcm
 * compare --rfx --lme does; g points into T and R. */
static int group_rfx(const char *path, io_lme_table *T, dcm_bms_rfx_result *R, report_group *g,
                     dcm_error *err)
{
    int rc = io_lme_read(path, T, err);
    if (rc)
        return rc;
    if (T->nmod < 2)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: a group comparison needs at least two models", path);
    if (T->nsub < 2)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: random effects need at least two subjects", path);
    dcm_error e2 = {0, ""};
    if ((rc = dcm_bms_rfx(T->lme, T->nsub, T->nmod, R, &e2)))
        return dcm_error_set(err, rc, "%s: %s", path, e2.msg);
    if (!R->converged)
        fprintf(stderr, "dcm report: warning: %s: the variational iterations of the group comparison "
                        "did not converge\n", path);
    *g = (report_group){path, T->nsub, T->nmod, T->models, R->alpha, R->exp_r, R->xp, R->pxp, R->bor,
                           R->converged};
    return DCM_OK;
}

int cmd_report(int argc, char **argv)
{
    const char *out = NULL, *png_dir = NULL, *lme_path = NULL;
    double threshold = 0.95, scale = 2.0;
    int k = 0;
    const char **files = calloc((size_t)(argc > 0 ? argc : 1), sizeof *files);
    const char **ev_paths = calloc((size_t)(argc > 0 ? argc : 1), sizeof *ev_paths);
    int nev = 0;
    report_evidence *ev = NULL;
    if (!files || !ev_paths) {
        free(files);
        free(ev_paths);
        return cli_fail("report", DCM_ERR_SYSTEM, "out of memory");
    }
    int rc = DCM_OK;
    const char *needs = "%o needs a value (see dcm report --help)";
    const cli_opt options[] = {
        CLI_STRING('o', "output", &out, "FILE", "the HTML report to write (required)", .missing = needs),
        CLI_STRING(0, "lme", &lme_path, "FILE",
                   "log-evidence table of a group: header 'subject' then the model names, one row per "
                   "subject, at least 2 of each (dcm batch writes it as OUTDIR/summary.tsv)",
                   .missing = needs),
        CLI_LIST(0, "evidence", ev_paths, &nev, "EV.json",
                 "the sampled log evidence of a result (dcm evidence RESULT.json -o EV.json); repeat for "
                 "several results; matched to the results by the hash it records",
                 .flags = CLI_OPT_NONEMPTY, .missing = needs),
        CLI_STRING(0, "png", &png_dir, "DIR",
                   "also write every figure as a PNG file in DIR (created if missing): MODEL_fit.png, "
                   "MODEL_inputs.png, MODEL_network.png, MODEL_parameters.png, MODEL_free_energy.png, "
                   "MODEL_spectra.png (spectral DCM), MODEL_marginals.png and evidence.png (--evidence), "
                   "comparison.png, group_comparison.png",
                   .missing = needs),
        CLI_DOUBLE(0, "threshold", &threshold, "P",
                   "mark parameters whose posterior probability exceeds P (0 < P < 1; default 0.95); the "
                   "intervals drawn are then (2P-1) credible intervals, so that a filled dot is one whose "
                   "interval lies beyond the prior mean",
                   .min = 0.0, .max = 1.0, .bounds = CLI_BOUNDS_OPEN, .missing = needs,
                   .invalid = "--threshold must be a probability between 0 and 1 (exclusive), not '%v'"),
        CLI_DOUBLE(0, "scale", &scale, "S",
                   "resolution of the figures: pixels per CSS pixel (1 to 4; default 2, sharp on "
                   "high-resolution screens)",
                   .min = 1.0, .max = 4.0, .bounds = CLI_BOUNDS_CLOSED, .missing = needs,
                   .invalid = "--scale must be a number from 1 to 4, not '%v'"),
        CLI_END};
    const cli_command cmd = {"report", usage, description, footer, options, 0};
    /* the parser moves the positional words within the array it is given:
       it gets a copy, so that argv stays as typed for the report's header */
    for (int i = 0; i < argc; i++)
        files[i] = argv[i];
    rc = cli_options_parse(&cmd, argc, (char **)files, &k);
    if (rc) {
        rc = rc == CLI_OPTIONS_HELP ? DCM_OK : rc;
        goto done;
    }
    memmove(files, files + 1, sizeof *files * (size_t)k);
    if (!k && !lme_path) {
        rc = cli_fail("report", DCM_ERR_USAGE,
                      "give at least one result file or --lme TABLE (see dcm report --help)");
        goto done;
    }
    if (!out) {
        rc = cli_fail("report", DCM_ERR_USAGE, "give the report to write with -o REPORT.html");
        goto done;
    }
    for (int i = 0; i < k; i++)
        if (!strcmp(files[i], out)) {
            rc = cli_fail("report", DCM_ERR_USAGE, "-o %s would overwrite an input result file", out);
            goto done;
        }
    if (lme_path && !strcmp(lme_path, out)) {
        rc = cli_fail("report", DCM_ERR_USAGE, "-o %s would overwrite the log-evidence table", out);
        goto done;
    }

    {
        cli_plan plan;
        cli_plan_init(&plan, "report");
        cli_plan_input(&plan, lme_path, "--lme");
        for (int i = 0; i < nev; i++)
            cli_plan_input(&plan, ev_paths[i], "--evidence");
        for (int i = 0; i < k; i++)
            cli_plan_input(&plan, files[i], "the result file");
        cli_plan_output(&plan, out, "-o");
        if (png_dir)
            cli_plan_output_dir(&plan, png_dir, "--png");
        rc = cli_plan_check(&plan);
        cli_plan_free(&plan);
        if (rc)
            goto done;
    }

    {   /* a regression DCM has its own report (one result at a time) */
        int nr = 0;
        for (int i = 0; i < k; i++) {
            io_result_summary rs;
            dcm_error e0 = {0, ""};
            if (io_result_load(files[i], &rs, &e0) == DCM_OK && rs.rdcm)
                nr++;
            io_result_summary_free(&rs);
        }
        if (nr && (k > 1 || lme_path || nev)) {
            rc = cli_fail("report", DCM_ERR_USAGE, "a regression DCM result is reported on its own: "
                          "give one result file (compare rDCM models with dcm compare)");
            goto done;
        }
        if (nr) {
            dcm_error e1 = {0, ""};
            rc = report_rdcm_write(files[0], out, png_dir, scale, &e1) ? cli_report("report", &e1) : 0;
            if (!rc)
                fprintf(stderr, "dcm report: wrote %s%s%s\n", out, png_dir ? " and figures in " : "",
                        png_dir ? png_dir : "");
            release_font_caches();
            goto done;
        }
    }
    report_model *models = calloc((size_t)(k ? k : 1), sizeof *models);
    char *generator = command_line(argc, argv);
    if (!models || !generator) {
        free(models);
        free(generator);
        rc = cli_fail("report", DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    dcm_error err = {0, ""};
    /* the group comparison first: a bad table writes nothing */
    io_lme_table T;
    dcm_bms_rfx_result R;
    report_group group;
    memset(&T, 0, sizeof T);
    memset(&R, 0, sizeof R);
    memset(&group, 0, sizeof group);
    if (lme_path && (rc = group_rfx(lme_path, &T, &R, &group, &err)))
        rc = cli_report("report", &err);
    /* second-level results (PEB, LOO) apart from the models */
    report_second *second = calloc((size_t)(k ? k : 1), sizeof *second);
    int nsecond = 0;
    if (!second && !rc)
        rc = cli_fail("report", DCM_ERR_SYSTEM, "out of memory");
    for (int i = 0; !rc && i < k; i++)
        if (peb_json_kind(files[i]) != PEB_KIND_NONE) {
            if (report_second_load(files[i], &second[nsecond], &err))
                rc = cli_report("report", &err);
            else
                nsecond++;
            memmove(files + i, files + i + 1, sizeof *files * (size_t)(k - i - 1));
            k--;
            i--;
        }
    int loaded = 0;
    for (; !rc && loaded < k; loaded++)
        if (report_load(files[loaded], &models[loaded], &err)) {
            rc = cli_report("report", &err);
            break;
        }
    /* sub-01/fwd.json and sub-02/fwd.json: distinct titles, figures and PNG names */
    if (!rc && report_unique_names(models, k))
        rc = cli_fail("report", DCM_ERR_SYSTEM, "out of memory");
    /* the sampled evidence, each matched to its result before anything is written */
    if (!rc && nev && !(ev = calloc((size_t)nev, sizeof *ev)))
        rc = cli_fail("report", DCM_ERR_SYSTEM, "out of memory");
    int nev_loaded = 0;
    for (; !rc && nev_loaded < nev; nev_loaded++)
        if (report_evidence_load(ev_paths[nev_loaded], &ev[nev_loaded], &err)) {
            rc = cli_report("report", &err);
            break;
        }
    if (!rc && nev && report_evidence_match(ev, nev, models, k, &err))
        rc = cli_report("report", &err);
    if (!rc && k > 1) {
        char why[1024];
        if (!report_comparable(models, k, why, sizeof why))
            fprintf(stderr, "dcm report: note: no model comparison: %s (free energies compare only "
                            "models fitted to the same data)\n", why);
    }
    if (!rc) {
        report_options opt = {out, png_dir, scale, threshold, generator, lme_path ? &group : NULL, second,
                              nsecond, ev, nev};
        if (report_write(models, k, &opt, &err))
            rc = cli_report("report", &err);
        else
            fprintf(stderr, "dcm report: wrote %s%s%s\n", out, png_dir ? " and figures in " : "",
                    png_dir ? png_dir : "");
    }
    for (int i = 0; i < loaded; i++)
        report_model_free(&models[i]);
    for (int i = 0; i < nsecond; i++)
        report_second_free(&second[i]);
    for (int i = 0; i < nev_loaded; i++)
        report_evidence_free(&ev[i]);
    free(ev);
    free(second);
    dcm_bms_rfx_result_free(&R);
    io_lme_free(&T);
    free(models);
    free(generator);
    /* the process ends here: let cairo drop its font caches so that leak
       checkers see only our own allocations */
    release_font_caches();
done:
    free(files);
    free(ev_paths);
    return rc;
}
