/* report_html.c — the self-contained HTML report and its PNG figures
 * (see report.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "io/io_atomic.h"
#include "dcm/report/plot.h"
#include "dcm/report/report.h"
#include "models/model_dcm.h"

typedef struct {
    int model;            /* index, or -1 for the comparisons */
    const char *kind;     /* file suffix: fit, network, parameters, free_energy, comparison,
                             group_comparison */
    const char *title;
    char *file;           /* PNG file name (no directory) */
    unsigned char *png;
    size_t len;
    double w, h;          /* display size (CSS px) */
} figure;

/* ------------------------------------------------------------------ */
/* helpers                                                              */

static void html_esc(FILE *fp, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", fp); break;
        case '<': fputs("&lt;", fp); break;
        case '>': fputs("&gt;", fp); break;
        case '"': fputs("&quot;", fp); break;
        case '\'': fputs("&#39;", fp); break;
        default: fputc(*s, fp);
        }
    }
}

static void base64(FILE *fp, const unsigned char *d, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[4096 + 4];
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)d[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)d[i + 1] << 8;
        if (i + 2 < n)
            v |= d[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
        if (o >= 4096) {
            fwrite(out, 1, o, fp);
            o = 0;
        }
    }
    fwrite(out, 1, o, fp);
}

/* file-name-safe copy of a model name */
static void safe_name(char *buf, size_t len, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len; i++) {
        char c = s[i];
        buf[i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_' || c == '.')
                     ? c
                     : '_';
    }
    buf[i] = 0;
}

/* Open DIR/FILE for figure f, refusing a name that is an input result or
 * the report itself; the PNG is written, not yet committed. */
static int open_png(const char *dir, const figure *f, const report_model *models, int k,
                    const char *html, io_atomic *a, dcm_error *err)
{
    size_t l = strlen(dir) + strlen(f->file) + 2;
    char *path = malloc(l);
    if (!path)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    snprintf(path, l, "%s/%s", dir, f->file);
    int rc = DCM_OK;
    for (int i = 0; i < k && !rc; i++)
        if (models[i].s.path && io_same_target(path, models[i].s.path))
            rc = dcm_error_set(err, DCM_ERR_INPUT, "--png %s: the figure %s is the result file %s of "
                               "this run: refusing to overwrite an input; choose another folder",
                               dir, path, models[i].s.path);
    if (!rc && io_same_target(path, html))
        rc = dcm_error_set(err, DCM_ERR_INPUT, "--png %s: the figure %s is the report -o %s: choose "
                           "another folder or report name", dir, path, html);
    if (!rc && !(rc = io_atomic_open(a, path, err)) && fwrite(f->png, 1, f->len, a->fp) != f->len) {
        int e = errno;
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot write %s: %s", path, e ? strerror(e) : "write failed");
    }
    free(path);
    return rc;
}

static int make_dir(const char *dir, dcm_error *err)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return dcm_error_set(err, DCM_ERR_SYSTEM, "--png %s: exists and is not a directory", dir);
        return DCM_OK;
    }
    if (mkdir(dir, 0777) != 0)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "cannot create the directory %s: %s", dir, strerror(errno));
    return DCM_OK;
}

static int region_index(const report_model *m, const char *name)
{
    for (int j = 0; j < m->s.n; j++)
        if (!strcmp(m->s.regions[j], name))
            return j;
    return -1;
}

/* Were the models fitted to the same data? Regions are matched by name (the
 * same model may list them in another order); when both carry time series,
 * each region's observed data must agree. */
static int same_data(const report_model *a, const report_model *b, char *why, size_t len)
{
    for (int j = 0; j < a->s.n; j++)
        if (region_index(b, a->s.regions[j]) < 0) {
            snprintf(why, len, "%s has a region %s that %s lacks", a->name, a->s.regions[j], b->name);
            return 0;
        }
    for (int j = 0; j < b->s.n; j++)
        if (region_index(a, b->s.regions[j]) < 0) {
            snprintf(why, len, "%s has a region %s that %s lacks", b->name, b->s.regions[j], a->name);
            return 0;
        }
    if (a->s.n != b->s.n) { /* a region named twice */
        snprintf(why, len, "%s models %d regions but %s models %d", a->name, a->s.n, b->name, b->s.n);
        return 0;
    }
    if (!a->v != !b->v) {
        snprintf(why, len, "%s holds no time series, so it cannot be checked to be fitted to the same "
                 "data as %s", a->v ? b->name : a->name, a->v ? a->name : b->name);
        return 0;
    }
    if (a->v && b->v) {
        if (a->v != b->v) {
            snprintf(why, len, "%s has %d scans but %s has %d", a->name, a->v, b->name, b->v);
            return 0;
        }
        for (int j = 0; j < a->s.n; j++) {
            const double *ya = a->y_obs + (size_t)j * a->v;
            const double *yb = b->y_obs + (size_t)region_index(b, a->s.regions[j]) * b->v;
            for (int t = 0; t < a->v; t++) {
                double x = ya[t], y = yb[t];
                if ((isfinite(x) || isfinite(y)) && !(fabs(x - y) <= 1e-6 * fmax(1.0, fabs(x)))) {
                    snprintf(why, len, "%s and %s were fitted to different data (region %s, scan %d)", a->name,
                             b->name, a->s.regions[j], t + 1);
                    return 0;
                }
            }
        }
    }
    return 1;
}

int report_comparable(const report_model *models, int k, char *why, size_t len)
{
    for (int i = 1; i < k; i++)
        if (!same_data(&models[0], &models[i], why, len))
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* HTML                                                                 */

static const char *css =
    "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;max-width:1010px;margin:2em auto;"
    "padding:0 1em;color:#222;line-height:1.45;background:#fff}\n"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #0072b2;padding-bottom:.2em;"
    "margin-top:2.2em}h3{margin-top:1.6em}\n"
    "table{border-collapse:collapse;margin:.5em 0 1em;font-size:.93em}"
    "td,th{padding:.25em .8em;border-bottom:1px solid #e2e2e2;text-align:right}"
    "th{background:#f3f5f8}td:first-child,th:first-child{text-align:left}\n"
    "figure{margin:1.2em 0 2em}figure img{max-width:100%;height:auto;border:1px solid #ddd}"
    "figcaption{font-size:.92em;color:#333;margin-top:.5em;max-width:960px}\n"
    ".meta{color:#555;font-size:.92em}.mark{color:#b00000;font-weight:bold}"
    ".note{background:#fff6e0;border-left:4px solid #e69f00;padding:.4em .8em}\n"
    ".warn{background:#fde8e8;border-left:5px solid #b00000;padding:.5em 1em;margin:.8em 0}"
    ".warn ul{margin:.3em 0 .2em;padding-left:1.4em}"
    ".ok{color:#1a6b2a;font-weight:bold;margin:.6em 0}\n"
    "code{background:#f3f3f3;padding:0 .25em}nav ul{columns:2}\n"
    "table.summary td,table.settings td{text-align:left}table.settings th{text-align:left;white-space:nowrap}\n";

static void fig_html(FILE *fp, const figure *f, const char *caption)
{
    fprintf(fp, "<figure id=\"fig-%s\">\n<img alt=\"", f->file);
    html_esc(fp, f->title);
    fprintf(fp, "\" width=\"%d\" height=\"%d\" src=\"data:image/png;base64,", (int)f->w, (int)f->h);
    base64(fp, f->png, f->len);
    fputs("\">\n<figcaption><b>", fp);
    html_esc(fp, f->title);
    fputs(".</b> ", fp);
    fputs(caption, fp); /* captions are our own HTML */
    fputs("</figcaption>\n</figure>\n", fp);
}

/* 0.015625 as "1/64 (0.015625)"; other values with %g */
static void fmt_value(char *buf, size_t len, double x)
{
    double r = x > 0 ? 1.0 / x : 0.0;
    if (x > 0 && x < 1 && fabs(r - round(r)) < 1e-9 * r)
        snprintf(buf, len, "1/%.0f", r);
    else
        snprintf(buf, len, "%g", x);
}

/* The distinct values of prior variance (pE = 0) or mean (pE = 1) among the
 * free parameters k in [k0, k1) selected by `want` (A: 1 between regions,
 * 2 self-connections, 0 any), as "1/64" or "1/64, 1" ("" when none). */
static void distinct_values(const report_model *m, int k0, int k1, int want, int mean, char *buf,
                            size_t len)
{
    double seen[8];
    int ns = 0;
    size_t o = 0;
    buf[0] = 0;
    for (int k = k0; k < k1; k++) {
        if (!report_param_free(m, k))
            continue;
        if (want) {
            int from, to;
            report_param_ends(m, k, &from, &to);
            if ((want == 1) != (from != to))
                continue;
        }
        double x = mean ? m->s.pE[k] : m->s.pV[k];
        int dup = 0;
        for (int i = 0; i < ns; i++)
            dup |= seen[i] == x;
        if (dup)
            continue;
        if (ns == 8) {
            if (o < len)
                o += (size_t)snprintf(buf + o, len - o, ", ...");
            break;
        }
        seen[ns++] = x;
        char v[64];
        fmt_value(v, sizeof v, x);
        if (o < len)
            o += (size_t)snprintf(buf + o, len - o, "%s%s", ns > 1 ? ", " : "", v);
    }
}

/* The warnings of dcm estimate, first thing in a model's section. */
static void warnings_html(FILE *fp, const report_model *m)
{
    if (m->nwarn < 0) {
        fputs("<p class=\"meta\">This result file predates the checks of <code>dcm estimate</code>: it "
              "records no warnings.</p>\n", fp);
        return;
    }
    if (m->nwarn == 0) {
        fputs("<p class=\"ok\">no warnings</p>\n", fp);
        return;
    }
    fprintf(fp, "<div class=\"warn\"><b>%d warning%s from dcm estimate</b>: check the design and the fit "
                "before reading the numbers below (MANUAL: Checks and warnings).\n<ul>\n",
            m->nwarn, m->nwarn == 1 ? "" : "s");
    for (int i = 0; i < m->nwarn; i++) {
        fputs("<li>", fp);
        html_esc(fp, m->warnings[i]);
        fputs("</li>\n", fp);
    }
    fputs("</ul></div>\n", fp);
}

static void row_text(FILE *fp, const char *th, const char *td)
{
    fputs("<tr><th>", fp);
    fputs(th, fp);
    fputs("</th><td>", fp);
    html_esc(fp, td);
    fputs("</td></tr>\n", fp);
}

/* What was fitted: scanner, data, options, priors. */
static void settings_html(FILE *fp, const report_model *m)
{
    const io_result_summary *s = &m->s;
    char buf[1024], v1[64], v2[64];
    fputs("<h3>What was fitted</h3>\n<table class=\"settings\">\n", fp);
    if (isfinite(m->TR)) {
        snprintf(buf, sizeof buf, "%g s", m->TR);
        row_text(fp, "TR", buf);
    }
    if (isfinite(m->TE)) {
        snprintf(buf, sizeof buf, "%g s", m->TE);
        row_text(fp, "TE", buf);
    }
    if (m->delays) {
        int same = 1;
        for (int j = 1; j < s->n; j++)
            same &= m->delays[j] == m->delays[0];
        size_t o = 0;
        if (same)
            snprintf(buf, sizeof buf, "%g s for every region", m->delays[0]);
        else
            for (int j = 0; j < s->n && o < sizeof buf; j++)
                o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s %g s", j ? ", " : "", s->regions[j],
                                      m->delays[j]);
        row_text(fp, "slice-timing delays", buf);
    }
    const int v = m->v ? m->v : m->design.v;
    if (v) {
        snprintf(buf, sizeof buf, "%d", v);
        row_text(fp, "scans", buf);
    }
    if (m->design.nu) {
        snprintf(buf, sizeof buf, "%d micro-time bins per scan (dt = %g s)", m->design.nu / (v ? v : 1),
                 m->design.dt);
        row_text(fp, "input resolution", buf);
    }
    if (m->centre >= 0)
        row_text(fp, "inputs mean-centred (centre)", m->centre ? "yes" : "no");
    if (m->design.confound_columns == 0)
        row_text(fp, "confound columns", "1: a constant (SPM's default)");
    else if (m->design.confound_columns > 0) {
        snprintf(buf, sizeof buf, "%d from the spec's confounds file%s", m->design.confound_columns,
                 m->design.confound_constant == 1 ? ", including a constant"
                 : m->design.confound_constant == 0 ? ", no constant column" : "");
        row_text(fp, "confound columns", buf);
    }
    if (isfinite(s->data_scale)) {
        snprintf(buf, sizeof buf, "%.6g (each region's mean removed, then the data multiplied by this; the "
                 "BOLD figures are in these scaled units)", s->data_scale);
        row_text(fp, "data scale", buf);
    }
    if (s->csd)
        snprintf(buf, sizeof buf, "spectral DCM (resting state, SPM's spm_dcm_fmri_csd): fitted to the "
                 "cross-spectra of the regions at %d frequencies, %.4g to %.4g Hz", m->nw,
                 m->nw ? m->Hz[0] : NAN, m->nw ? m->Hz[m->nw - 1] : NAN);
    else
        snprintf(buf, sizeof buf, "%s, %s%s%s", m->nonlinear == 1 || s->nd ? "nonlinear (D)" : "bilinear",
                 s->two_state ? "two-state" : "one-state", m->integrator ? ", integrator " : "",
                 m->integrator ? m->integrator : "");
    row_text(fp, "model", buf);
    if (m->maxit >= 0) {
        snprintf(buf, sizeof buf, "%d", m->maxit);
        row_text(fp, "maxit", buf);
    }
    if (m->maxnodes >= 0) {
        snprintf(buf, sizeof buf, "%d%s", m->maxnodes,
                 s->n > m->maxnodes ? " (fewer than the regions: the prior on A was confined to the data's "
                                      "principal modes)" : "");
        row_text(fp, "maxnodes", buf);
    }
    if (isfinite(m->hE) && isfinite(m->hC)) {
        fmt_value(v1, sizeof v1, m->hC);
        snprintf(buf, sizeof buf, "mean hE = %g, variance hC = %s", m->hE, v1);
        row_text(fp, "noise log-precision prior", buf);
    }
    fputs("</table>\n", fp);
    /* prior means and variances, block by block, as the model used them */
    model_layout T;
    report_layout(m, &T);
    if (T.np != s->np)
        return;
    fputs("<table class=\"priors\">\n<tr><th>prior of the free parameters</th><th>mean</th><th>variance</th>"
          "</tr>\n", fp);
    for (int b = 0; b < T.nblocks; b++) {
        const model_layout_block *B = &T.block[b];
        /* A's two kinds of prior: between regions (1) and self-connections (2) */
        for (int part = b == MODEL_BLOCK_A ? 1 : 0; part <= (b == MODEL_BLOCK_A ? 2 : 0); part++) {
            const int k0 = B->offset, k1 = B->offset + B->count;
            distinct_values(m, k0, k1, part, 1, v1, sizeof v1);
            distinct_values(m, k0, k1, part, 0, v2, sizeof v2);
            if (!v2[0])
                continue; /* no free parameter in this block */
            fprintf(fp, "<tr><td>%s%s</td><td>%s</td><td>%s</td></tr>\n", B->name,
                    part == 1 ? " between regions" : part == 2 ? " self-connections" : "", v1, v2);
        }
    }
    fputs("</table>\n", fp);
}

/* dcm estimate's fit diagnostics (SPM's spm_dcm_fmri_check), when recorded */
static void diagnostics_html(FILE *fp, const report_model *m)
{
    if (!isfinite(m->diag_ve) && !isfinite(m->diag_max_a) && !isfinite(m->diag_neff) && m->diag_accepted < 0)
        return;
    fputs("<h3>Fit diagnostics</h3>\n<table class=\"diagnostics\">\n<tr><th>diagnostic</th><th>value</th>"
          "<th>warned below</th></tr>\n", fp);
    if (isfinite(m->diag_ve))
        fprintf(fp, "<tr><td>variance explained, all regions</td><td>%.1f %%</td><td>10 %%</td></tr>\n",
                m->diag_ve);
    if (isfinite(m->diag_max_a))
        fprintf(fp, "<tr><td>largest between-region |A|</td><td>%.4f Hz</td><td>1/8 Hz</td></tr>\n",
                m->diag_max_a);
    if (isfinite(m->diag_neff))
        fprintf(fp, "<tr><td>effective number of parameters</td><td>%.2f</td><td>1</td></tr>\n",
                m->diag_neff);
    if (m->diag_accepted >= 0)
        fprintf(fp, "<tr><td>accepted steps</td><td>%d</td><td>1 (no step after the first)</td></tr>\n",
                m->diag_accepted);
    fputs("</table>\n", fp);
}

static const figure *find_fig(const figure *figs, int nf, int model, const char *kind)
{
    for (int i = 0; i < nf; i++)
        if (figs[i].model == model && !strcmp(figs[i].kind, kind))
            return &figs[i];
    return NULL;
}

static void model_section(FILE *fp, const report_model *m, int idx, const figure *figs, int nf,
                          double thr)
{
    const io_result_summary *s = &m->s;
    char cap_scans[128];
    const size_t name_len = report_name_cap(m);
    char *name = malloc(name_len);
    fprintf(fp, "<h2 id=\"model-%d\">Model %d: ", idx + 1, idx + 1);
    html_esc(fp, m->name);
    fputs("</h2>\n", fp);
    warnings_html(fp, m);
    fputs("<table class=\"summary\">\n<tr><th>file</th><td>", fp);
    html_esc(fp, s->path);
    fputs("</td></tr>\n<tr><th>regions</th><td>", fp);
    for (int j = 0; j < s->n; j++) {
        fputs(j ? ", " : "", fp);
        html_esc(fp, s->regions[j]);
    }
    fputs("</td></tr>\n<tr><th>inputs</th><td>", fp);
    for (int j = 0; j < s->m; j++) {
        fputs(j ? ", " : "", fp);
        html_esc(fp, s->inputs[j]);
    }
    fputs("</td></tr>\n", fp);
    fprintf(fp, "<tr><th>free energy F</th><td>%.4f nats</td></tr>\n", s->F);
    if (s->iterations >= 0)
        fprintf(fp, "<tr><th>iterations</th><td>%d</td></tr>\n", s->iterations);
    fprintf(fp, "<tr><th>converged</th><td>%s</td></tr>\n",
            s->converged < 0 ? "unknown" : s->converged ? "yes" : "<span class=\"mark\">no</span>");
    fputs("</table>\n", fp);
    settings_html(fp, m);
    diagnostics_html(fp, m);

    /* fit table */
    if (s->csd && m->nw) {   /* the spectra's fit, region by region (channel (i, i)) */
        fputs("<table>\n<tr><th>region</th><th>auto-spectrum explained</th><th>noise log-precision of its "
              "auto-spectrum</th></tr>\n", fp);
        for (int j = 0; j < s->n; j++) {
            fputs("<tr><td>", fp);
            html_esc(fp, s->regions[j]);
            fprintf(fp, "</td><td>%.3f</td><td>", m->r2[j]);
            if (s->Eh)
                fprintf(fp, "%.3f</td></tr>\n", s->Eh[j + (size_t)s->n * j]);
            else
                fputs("n/a</td></tr>\n", fp);
        }
        fputs("</table>\n", fp);
    } else if (m->v || s->Eh) {
        fputs("<table>\n<tr><th>region</th><th>variance explained</th><th>noise log-precision</th></tr>\n", fp);
        for (int j = 0; j < s->n; j++) {
            fputs("<tr><td>", fp);
            html_esc(fp, s->regions[j]);
            if (isfinite(m->r2[j]))
                fprintf(fp, "</td><td>%.3f</td>", m->r2[j]);
            else
                fputs("</td><td>n/a</td>", fp);
            if (s->Eh)
                fprintf(fp, "<td>%.3f</td></tr>\n", s->Eh[j]);
            else
                fputs("<td>n/a</td></tr>\n", fp);
        }
        fputs("</table>\n", fp);
    }

    const figure *f;
    if ((f = find_fig(figs, nf, idx, "spectra"))) {
        fig_html(fp, f,
                 "Spectral DCM fits the cross-spectral densities (CSD) of the regions' BOLD signals, not "
                 "the signals themselves. Panel (row i, column j) shows, against frequency in Hz, the "
                 "magnitude |CSD| of regions i and j: the observed one (black line, from a Bayesian "
                 "MAR model of the detrended, scaled data, as SPM) and the model's prediction at the "
                 "posterior mean (blue dashed line). The diagonal (tinted) holds each region's "
                 "auto-spectrum, its power at each frequency; off the diagonal, a large |CSD| means the "
                 "two regions fluctuate together at that frequency. The matrix is Hermitian, so panel "
                 "(j, i) has the same magnitude as (i, j). Each panel has its own y scale. A good fit "
                 "follows the shape of every panel, above all the diagonal and the low frequencies where "
                 "BOLD power lies; a prediction far from the data in some pairs, or flat where the data "
                 "have a peak, says the model cannot explain how those regions covary. Legend: black "
                 "line = observed, blue dashed line = predicted.");
        if (m->v >= 2) {
            snprintf(cap_scans, sizeof cap_scans, "%d scans, TR %g s", m->v, m->TR);
            fprintf(fp, "<p class=\"meta\">The spectra were estimated from %s; the time series are in the "
                        "result file (observed_bold_scaled).</p>\n", cap_scans);
        }
    } else if ((f = find_fig(figs, nf, idx, "fit")))
        fig_html(fp, f,
                 "Each panel is one region: the observed BOLD signal (black dots, joined) and the model's "
                 "prediction (blue line) over time in scans (scan s is acquired at s &times; TR; the x axis is "
                 "the one of the inputs figure below, so events line up with the responses). Both are in the "
                 "scaled units the model was fitted in (each region's mean removed, the whole data set "
                 "scaled to a range of at most 4). The prediction includes the fitted confounds when the "
                 "model had any. A good fit follows the slow, stimulus-locked changes; what is left is "
                 "noise. The panel title gives the variance explained, 1 &minus; var(residual) / "
                 "var(observed). Legend: dotted black = observed, blue line = predicted.");
    else
        fputs("<p class=\"note\">This result file holds no time series: the fit cannot be shown.</p>\n", fp);
    if (s->csd) {
        /* no inputs: the neuronal fluctuations are endogenous */
    } else
    if ((f = find_fig(figs, nf, idx, "inputs"))) {
        fig_html(fp, f,
                 "The inputs (the experimental design) as the model integrated them: one row per input, at "
                 "micro-time resolution (16 bins per scan), on the same x axis as the fit above (scans, same "
                 "range and scale). A row's height is the input's value (1 while an event or block is on; "
                 "overlapping events add up). Inputs are shown as given, before any mean-centring. The row "
                 "title says how many times the input switches on (abutting events count once), its total time on, and what the input does in this "
                 "model: drives regions (C) and/or modulates connections (B). Legend: one colour per input, "
                 "as in the connectivity diagram.");
        /* the rows in words: what the figure shows, for readers and screen readers */
        fputs("<ol class=\"inputs\">\n", fp);
        for (int u = 0; u < s->m; u++) {
            int times;
            double on;
            char role[768];
            report_input_on(m, u, &times, &on);
            report_input_role(m, u, role, sizeof role);
            fputs("<li><b>", fp);
            html_esc(fp, s->inputs[u]);
            fprintf(fp, "</b>: on %d time%s, %.4g s in all; ", times, times == 1 ? "" : "s", on);
            html_esc(fp, role);
            fputs("</li>\n", fp);
        }
        fputs("</ol>\n", fp);
    }
    else
        fputs("<p class=\"meta\">This result file does not record the input design (it predates the "
              "\"design\" block): the inputs cannot be shown.</p>\n", fp);
    if ((f = find_fig(figs, nf, idx, "network")) && s->csd) {
        char cap[2048];
        snprintf(cap, sizeof cap,
                 "Regions are the circles. Each black arrow is an effective connection (A) from source to "
                 "target, with its posterior mean written on it in Hz (positive: excitatory, negative: "
                 "inhibitory; thicker arrows are stronger). There are no inputs: the regions are driven "
                 "by endogenous fluctuations (parameters a in the figure below). Inside each node is its "
                 "self-inhibition &minus;0.5&middot;exp(A) in Hz. A star marks a posterior probability "
                 "above %g that the connection differs from its prior mean (spectral DCM's Pp, as SPM's "
                 "spm_dcm_fmri_csd). Legend: black arrow = effective connection (A).", thr);
        fig_html(fp, f, cap);
    } else if (f) {
        char cap[2048];
        snprintf(cap, sizeof cap,
                 "Regions are the circles. Each black arrow is an endogenous connection (A) from source to "
                 "target, with its posterior mean written on it (%s; positive: excitatory, negative: "
                 "inhibitory; thicker arrows are stronger). A coloured dot on an arrow marks a connection "
                 "that an input modulates (B), the coloured number beside it is %s; coloured arrows from "
                 "outside are driving inputs (C), labelled with C, which enters the equations divided by 16 "
                 "(rate C/16 Hz per unit input). Colours are "
                 "inputs, as in the legend. Inside each node is its self-connection%s. A star marks a "
                 "posterior probability above %g. A dashed grey arrow is a connection that is fixed (not "
                 "estimated) but modulated. Legend: black arrow = endogenous connection (A); coloured dot "
                 "= modulation by an input (B); coloured arrow = driving input (C).",
                 s->two_state ? "log scale: the rate is exp(A)/8 Hz" : "Hz",
                 s->two_state ? "its log-scale change while that input is on"
                              : "the change in Hz per unit of that input",
                 s->two_state ? " (log scale)" : ", shown as the self-inhibition rate &minus;0.5&middot;exp(A) in Hz",
                 thr);
        fig_html(fp, f, cap);
    }
    const double z = report_interval_z(thr), level = 100.0 * (2.0 * thr - 1.0);
    if ((f = find_fig(figs, nf, idx, "parameters")) && s->csd) {
        char cap[4096];
        snprintf(cap, sizeof cap,
                 "Every free parameter (prior variance &gt; 0) of the spectral DCM, grouped by block: A "
                 "(effective connectivity: between regions in Hz, self-connections log scaling factors of "
                 "the self-inhibition 0.5 Hz), the haemodynamic parameters (transit, decay, epsilon: log "
                 "scaling factors) and the spectra: a(1), a(2) the log amplitude and log exponent of the "
                 "neuronal fluctuations' power law, b(1), b(2) the same for the observation noise common "
                 "to all regions, c the log amplitude of each region's own noise. The dot is the "
                 "posterior mean, the bar its %.4g %% credible interval (mean &plusmn; %.3f sd); the "
                 "numbers on the right are the mean, that interval and Pp. <b>A dot is filled exactly "
                 "when Pp &gt; %g</b>, where Pp is spm_dcm_fmri_csd's posterior probability that the "
                 "parameter differs from its prior mean, i.e. when the interval excludes the prior mean. "
                 "Legend: filled dot = Pp &gt; %g, hollow dot = Pp &le; %g, bar = %.4g %% credible "
                 "interval; colours are the blocks.",
                 level, z, thr, thr, thr, level);
        fig_html(fp, f, cap);
    } else if (f) {
        char cap[4096];
        snprintf(cap, sizeof cap,
                 "Every free parameter (prior variance &gt; 0), grouped by block: A (endogenous), B (one "
                 "group per modulating input), C (driving inputs), D (nonlinear, if any) and the "
                 "haemodynamic parameters. The dot is the posterior mean, the bar its %.4g %% credible "
                 "interval (mean &plusmn; %.3f sd); the numbers on the right are the mean, that interval and "
                 "the posterior probability Pp. <b>A dot is filled exactly when Pp &gt; %g</b>, the "
                 "probability that the effect exceeds its prior mean in size (MANUAL 9.1). That is the same "
                 "as the %.4g %% interval lying wholly beyond the prior mean: beyond zero for B, C, D, "
                 "self-connections and the haemodynamic parameters (prior mean 0), and beyond &plusmn;1/128 "
                 "Hz for the between-region A connections of a one-state model (prior mean 1/128 Hz, the "
                 "dashed grey ticks). So an A interval that ends between 0 and &plusmn;1/128 Hz excludes zero "
                 "but is hollow: its Pp is at most %g. Units (MANUAL 5.4), in each block's title: "
                 "between-region A, B and D are rates in Hz (B per unit input); C enters the equations "
                 "divided by 16 (rate C/16 Hz per unit input); self-connections (and, in two-state models, "
                 "all of A, B and D) and the haemodynamic parameters are log scaling factors (0 = the prior "
                 "value). Legend: filled dot = Pp &gt; %g, hollow dot = Pp &le; %g, bar = %.4g %% credible "
                 "interval, dashed grey ticks = &plusmn; prior mean; colours are the blocks (B: the input's "
                 "colour, as in the connectivity diagram).",
                 level, z, thr, level, thr, thr, thr, level);
        fig_html(fp, f, cap);
    }
    if ((f = find_fig(figs, nf, idx, "free_energy")))
        fig_html(fp, f,
                 "The variational free energy F (a lower bound on the log model evidence, in nats) after "
                 "each iteration of the variational Laplace scheme. It should rise and level off; the "
                 "dashed line is the final value, the one used to compare models. A trajectory still "
                 "climbing at the end means the fit stopped before converging. Legend: dots = F after each "
                 "iteration, dashed line = final F.");

    /* parameter table */
    fputs("<h3>Parameters of ", fp);
    html_esc(fp, m->name);
    fprintf(fp, "</h3>\n<table>\n<tr><th>parameter</th><th>mean</th><th>sd</th>"
                "<th>%.4g %% credible interval</th><th>prior mean</th><th>Pp</th></tr>\n", level);
    for (int k = 0; k < s->np; k++) {
        if (!report_param_free(m, k))
            continue;
        double e = s->Ep[k], sd = report_param_sd(m, k);
        int mark = isfinite(m->Pp[k]) && m->Pp[k] > thr;
        if (name)
            report_param_name(m, k, REPORT_NAME_FIGURE, name, name_len);
        fputs("<tr><td>", fp);
        html_esc(fp, name ? name : "(out of memory)");
        fprintf(fp, "</td><td>%.4f</td><td>%.4f</td><td>[%.4f, %.4f]</td><td>%.4g</td><td>%.4f%s</td></tr>\n",
                e, sd, e - z * sd, e + z * sd, s->pE[k], m->Pp[k], mark ? " <span class=\"mark\">*</span>" : "");
    }
    fprintf(fp, "</table>\n<p class=\"meta\"><span class=\"mark\">*</span> posterior probability above %g "
                "(filled dot in the figure): the %.4g %% interval lies wholly beyond the prior mean.</p>\n",
            thr, level);
    free(name);
}

/* The random-effects comparison over a group: table, figure, caption. */
static void group_section(FILE *fp, const report_group *g, const figure *figs, int nf)
{
    fputs("<h2 id=\"group-comparison\">Group model comparison (random effects)</h2>\n<p>", fp);
    fprintf(fp, "Random-effects Bayesian model selection over %d subjects and %d models, from the "
                "log-evidence table <code>", g->nsub, g->nmod);
    html_esc(fp, g->source ? g->source : "");
    fputs("</code> (the numbers of <code>dcm compare --rfx --lme</code>).</p>\n", fp);
    if (!g->converged)
        fputs("<p class=\"note\">The variational iterations did not converge: the numbers are those of "
              "the last iteration.</p>\n", fp);
    int best = 0;
    for (int i = 1; i < g->nmod; i++)
        if (g->pxp[i] > g->pxp[best])
            best = i;
    fputs("<table>\n<tr><th>model</th><th>alpha</th><th>exp_r</th><th>xp</th><th>pxp</th></tr>\n", fp);
    for (int i = 0; i < g->nmod; i++) {
        fputs("<tr><td>", fp);
        html_esc(fp, g->models[i]);
        fprintf(fp, "</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.4f</td></tr>\n", g->alpha[i],
                g->exp_r[i], g->xp[i], g->pxp[i]);
    }
    fputs("</table>\n<p>", fp);
    fprintf(fp, "Bayesian omnibus risk <b>BOR = %.3g</b>", g->bor);
    fputs(g->bor > 0.25 ? ": the group data do not tell the models apart well. " : ". ", fp);
    fputs("Highest protected exceedance probability: <b>", fp);
    html_esc(fp, g->models[best]);
    fprintf(fp, "</b> (pxp = %.4f%s).</p>\n", g->pxp[best],
            g->pxp[best] > 0.95 ? ", strong evidence that it is the most frequent model" : "");
    const figure *f = find_fig(figs, nf, -1, "group_comparison");
    if (f) {
        char cap[4096];
        snprintf(cap, sizeof cap,
                 "Random-effects Bayesian model selection (Stephan et al. 2009; Rigoux et al. 2014): "
                 "each subject's data may come from a different model, and the comparison estimates how "
                 "frequent each model is in the population, so that one outlying subject cannot decide "
                 "it (fixed effects, which sum the log-evidences, assume one model for everyone). Panels, "
                 "left to right (top to bottom with more than six models): the <b>expected frequency</b> "
                 "exp_r of each model, the expected share of subjects whose data it generated (the "
                 "frequencies sum to 1; the dotted line 1/%d is what equal frequencies would give); the "
                 "<b>exceedance probability</b> xp, the probability that the model is more frequent than "
                 "every other (they sum to 1); the <b>protected exceedance probability</b> pxp = "
                 "(1 &minus; BOR)&middot;xp + BOR/%d, which allows for the possibility that all models "
                 "are equally frequent: the one to report. The <b>Bayesian omnibus risk</b> BOR (in the "
                 "subtitle) is the posterior probability that all models are equally frequent; a large "
                 "BOR means the group data do not tell the models apart. An xp or pxp above 0.95 (dashed "
                 "line) is strong evidence that a model is the most frequent one. Like all model "
                 "probabilities these depend on the set of models compared. Legend: one colour per "
                 "model; dotted grey line = 1/%d (equal frequencies), dashed black line = 0.95.",
                 g->nmod, g->nmod, g->nmod);
        fig_html(fp, f, cap);
    }
}

/* a second-level result: its table and figures */
static void second_section(FILE *fp, const report_second *s, int i, const figure *figs, int nf)
{
    fprintf(fp, "<h2 id=\"second-%d\">%s: ", i + 1, s->kind == REPORT_SECOND_PEB ? "Group (PEB)" : "Leave-one-out");
    html_esc(fp, s->path);
    fputs("</h2>\n", fp);
    if (s->kind == REPORT_SECOND_LOO) {
        fputs("<p>Leave-one-out cross-validation (SPM's <code>spm_dcm_loo</code>): each subject's ", fp);
        html_esc(fp, s->covariate);
        fputs(" predicted from its own parameters (", fp);
        for (int k = 0; k < s->np; k++) {
            fputs(k ? ", " : "", fp);
            html_esc(fp, s->pnames[k]);
        }
        fprintf(fp, ") and the PEB of the other subjects. Out-of-sample correlation <b>r = %.3f</b>, "
                    "p = %.4g one-tailed (as SPM's figure), %.4g two-sided.</p>\n", s->r, s->p, s->p_two_sided);
        fputs("<table>\n<tr><th>subject</th><th>true</th><th>predicted</th><th>sd</th></tr>\n", fp);
        for (int k = 0; k < s->nsub; k++) {
            fputs("<tr><td>", fp);
            html_esc(fp, s->subjects[k]);
            fprintf(fp, "</td><td>%.4f</td><td>%.4f</td><td>%.4f</td></tr>\n", s->truth[k], s->pred[k], s->pred_sd[k]);
        }
        fputs("</table>\n", fp);
        for (int k = 0; k < nf; k++)
            if (figs[k].model == -2 - i)
                fig_html(fp, &figs[k], "Predicted against true value, one dot per left-out subject, with the 90 % "
                                        "interval of the posterior predictive density; dashed: least-squares line.");
        return;
    }
    fprintf(fp, "<p>Parametric empirical Bayes: free energy F = %.4f, %d iterations%s.%s</p>\n", s->F, s->iterations,
            s->converged ? ", converged" : ", <b>not converged</b> (stopped at M.maxit)",
            s->search ? " Effects are Bayesian model averages over the reduced group models (spm_dcm_peb_bmc); "
                        "Pp is the posterior probability that an effect is present." : "");
    fputs("<table>\n<tr><th>parameter</th>", fp);
    for (int j = 0; j < s->nx; j++) {
        fputs("<th>", fp);
        html_esc(fp, s->xnames[j]);
        fputs("</th>", fp);
    }
    fputs("</tr>\n", fp);
    for (int q = 0; q < s->np; q++) {
        fputs("<tr><td>", fp);
        html_esc(fp, s->pnames[q]);
        fputs("</td>", fp);
        for (int j = 0; j < s->nx; j++) {
            int idx = q + j * s->np;
            fprintf(fp, "<td>%.3f &plusmn; %.3f", s->mean[idx], s->sd[idx]);
            if (isfinite(s->prob[idx]))
                fprintf(fp, " (%s %.2f)%s", s->search ? "Pp" : "P", s->prob[idx],
                        s->prob[idx] > 0.95 ? " <span class=\"mark\">*</span>" : "");
            fputs("</td>", fp);
        }
        fputs("</tr>\n", fp);
    }
    fputs("</table>\n", fp);
    for (int k = 0; k < nf; k++)
        if (figs[k].model == -2 - i)
            fig_html(fp, &figs[k], "Group effect of each parameter on this covariate: mean (bar) and 90 % "
                                    "interval; dark bars: probability above 0.95.");
}

/* the sampled log evidence (report_evidence.c): a table, F against it,
 * and each model's marginals */
static void evidence_section(FILE *fp, const report_model *models, const report_evidence *ev, int ne,
                             const figure *figs, int nf)
{
    fputs("<h2 id=\"evidence\">Sampled log evidence</h2>\n<p>The log evidence ln p(y|m) of each model by "
          "sampling (<code>dcm evidence -o</code>; MANUAL chapter 20) beside its free energy F, the "
          "approximation that model comparison uses: ln p(y|m) = F + KL[q&#8214;p], so the gap "
          "ln p(y|m) &minus; F is what the Laplace approximation misses. SE: the Monte-Carlo standard "
          "error over independent chains.</p>\n<table>\n<tr><th>model</th><th>evidence file</th>"
          "<th>method</th><th>free energy F</th><th>sampled log evidence</th><th>SE</th>"
          "<th>gap (log evidence &minus; F)</th><th>samples</th></tr>\n", fp);
    for (int j = 0; j < ne; j++) {
        const report_evidence *e = &ev[j];
        fputs("<tr><td>", fp);
        html_esc(fp, models[e->model].name);
        fputs("</td><td>", fp);
        html_esc(fp, e->path);
        fputs("</td><td>", fp);
        html_esc(fp, e->method);
        fprintf(fp, "</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%d</td></tr>\n",
                e->free_energy, e->log_evidence, e->se, e->log_evidence - e->free_energy, e->samples_used);
    }
    fputs("</table>\n", fp);
    const figure *f = find_fig(figs, nf, -1, "evidence");
    if (f)
        fig_html(fp, f, "Left: each model's free energy F (dot) and its log evidence by sampling (dot with "
                        "&plusmn;2 SE bar). Right: the gap ln p(y|m) &minus; F with &plusmn;2 SE; a bar that "
                        "crosses the dashed zero line says F is as good as the evidence for that model. "
                        "Compare gaps across models: a log Bayes factor by F is trustworthy when the gaps of "
                        "the models compared agree to well within it.");
    for (int j = 0; j < ne; j++) {
        const report_evidence *e = &ev[j];
        if (!(f = find_fig(figs, nf, e->model, "marginals")))
            continue;
        char cap[1024];
        snprintf(cap, sizeof cap, "Log evidence %.4f &plusmn; %.4f, F %.4f. For each free parameter: the "
                 "histogram of the samples of the posterior (&beta; = 1, as a density), the Laplace Gaussian "
                 "N(Ep, Cp<sub>ii</sub>) of the fit (line) and the sampled mean (dashed). Where the histogram "
                 "follows the curve the Laplace posterior is right for that parameter; a shifted, skewed or "
                 "wider histogram shows where it is not.", e->log_evidence, e->se, e->free_energy);
        fputs("<h3>Posterior marginals: ", fp);
        html_esc(fp, models[e->model].name);
        fputs("</h3>\n", fp);
        fig_html(fp, f, cap);
    }
}

static int write_html(FILE *fp, const report_model *models, int k, const figure *figs, int nf,
                      const double *lbf, const double *post, const char *cmp_note,
                      const report_options *opt)
{
    const report_group *g = opt->group;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>DCM report: ",
          fp);
    if (g)
        fputs(k ? "group model comparison, " : "group model comparison", fp);
    for (int i = 0; i < k; i++) {
        fputs(i ? ", " : "", fp);
        html_esc(fp, models[i].name);
    }
    fprintf(fp, "</title>\n<style>\n%s</style>\n</head>\n<body>\n", css);
    fputs("<h1>Dynamic causal modelling report</h1>\n<p class=\"meta\">", fp);
    if (g)
        fprintf(fp, "group comparison of %d models over %d subjects%s", g->nmod, g->nsub, k ? " &middot; " : "");
    if (k || !g)
        fprintf(fp, "%d model%s", k, k == 1 ? "" : "s");
    if (opt->generator) {
        fputs(" &middot; made by <code>", fp);
        html_esc(fp, opt->generator);
        fputs("</code>", fp);
    }
    fputs(" &middot; DCM for fMRI as in SPM12; self-contained: all figures are embedded.</p>\n", fp);
    fputs("<nav><ul>\n", fp);
    if (g)
        fputs("<li><a href=\"#group-comparison\">Group model comparison (random effects)</a></li>\n", fp);
    if (k > 1)
        fputs("<li><a href=\"#comparison\">Model comparison</a></li>\n", fp);
    if (opt->nevidence > 0)
        fputs("<li><a href=\"#evidence\">Sampled log evidence</a></li>\n", fp);
    for (int i = 0; i < k; i++) {
        fprintf(fp, "<li><a href=\"#model-%d\">Model %d: ", i + 1, i + 1);
        html_esc(fp, models[i].name);
        fputs("</a>", fp);
        if (models[i].nwarn > 0)
            fprintf(fp, " <span class=\"mark\">(%d warning%s)</span>", models[i].nwarn,
                    models[i].nwarn == 1 ? "" : "s");
        fputs("</li>\n", fp);
    }
    fputs("</ul></nav>\n", fp);
    if (g)
        group_section(fp, g, figs, nf);
    for (int i = 0; i < opt->nsecond; i++)
        second_section(fp, &opt->second[i], i, figs, nf);
    if (k > 1) {
        fputs("<h2 id=\"comparison\">Model comparison</h2>\n", fp);
        if (cmp_note) {
            fputs("<p class=\"note\">No comparison: ", fp);
            html_esc(fp, cmp_note);
            fputs(". Free energies are comparable only between models fitted to the same data.</p>\n", fp);
        } else {
            fputs("<table>\n<tr><th>model</th><th>free energy F</th><th>log Bayes factor vs best</th>"
                  "<th>posterior probability</th></tr>\n", fp);
            for (int i = 0; i < k; i++) {
                fputs("<tr><td>", fp);
                html_esc(fp, models[i].name);
                fprintf(fp, "</td><td>%.4f</td><td>%.4f</td><td>%.4f</td></tr>\n", models[i].s.F, lbf[i],
                        post[i]);
            }
            fputs("</table>\n", fp);
            const figure *f = find_fig(figs, nf, -1, "comparison");
            if (f)
                fig_html(fp, f,
                         "Fixed-effects Bayesian model comparison (all models fitted to the same data, "
                         "equal prior probabilities). Left: each model's log Bayes factor against the best "
                         "model, F &minus; F<sub>best</sub> in nats (the best model is at 0); a model 3 or "
                         "more below the best (dashed line) is strongly worse: the best is at least "
                         "e<sup>3</sup> &asymp; 20 times more likely. Right: posterior model "
                         "probabilities, exp(F) normalised over the models compared; above 0.95 (dashed "
                         "line) is strong evidence for that model. Legend: one colour per model.");
        }
    }
    if (opt->nevidence > 0)
        evidence_section(fp, models, opt->evidence, opt->nevidence, figs, nf);
    for (int i = 0; i < k; i++)
        model_section(fp, &models[i], i, figs, nf, opt->threshold);
    fputs("<p class=\"meta\">Exit status of dcm report: 0 written, 1 usage error, 2 bad input file, "
          "3 group comparison failed, 4 cannot write.</p>\n</body>\n</html>\n", fp);
    return ferror(fp) ? -1 : 0;
}

/* ------------------------------------------------------------------ */

static int add_fig(figure *figs, int *nf, int model, const char *kind, const char *title,
                   const char *stem, plot_figure *pf, double scale, dcm_error *err)
{
    figure *f = &figs[*nf];
    memset(f, 0, sizeof *f);
    f->model = model;
    f->kind = kind;
    f->title = title;
    f->w = pf->w;
    f->h = pf->h;
    size_t l = strlen(stem) + strlen(kind) + 8;
    f->file = malloc(l);
    if (!f->file)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
    if (model >= 0 || *stem)
        snprintf(f->file, l, "%s_%s.png", stem, kind);
    else
        snprintf(f->file, l, "%s.png", kind);
    (*nf)++;
    if (plot_figure_png(pf, scale, &f->png, &f->len))
        return dcm_error_set(err, DCM_ERR_SYSTEM, "cannot draw the %s figure%s%s (out of memory?)", kind,
                             model >= 0 ? " of " : "", model >= 0 ? stem : "");
    return DCM_OK;
}

/* the figures of the second-level results: model index -2 - i, files
 * STEM_effects_COVARIATE.png / STEM_loo.png (STEM from the file name) */
static int second_figures(const report_options *opt, figure *figs, int *nf, char **kinds, int *nkinds,
                          char **sstems, double scale, dcm_error *err)
{
    for (int i = 0; i < opt->nsecond; i++) {
        const report_second *s = &opt->second[i];
        const char *base = strrchr(s->path, '/') ? strrchr(s->path, '/') + 1 : s->path;
        char stem[300], bare[256];
        snprintf(bare, sizeof bare, "%s", base);
        char *dot = strrchr(bare, '.');
        if (dot && !strcmp(dot, ".json"))
            *dot = 0;
        safe_name(stem, 256, bare);
        if (!(sstems[i] = strdup(stem)))
            return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        const int nfig = s->kind == REPORT_SECOND_PEB ? s->nx : 1;
        for (int j = 0; j < nfig; j++) {
            char kind[300];
            if (s->kind == REPORT_SECOND_PEB) {
                char cov[256];
                safe_name(cov, sizeof cov, s->xnames[j]);
                snprintf(kind, sizeof kind, "effects_%s", cov);
            } else {
                snprintf(kind, sizeof kind, "loo");
            }
            if (!(kinds[*nkinds] = strdup(kind)))
                return dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            plot_figure pf;
            memset(&pf, 0, sizeof pf);
            int bad = s->kind == REPORT_SECOND_PEB ? report_fig_peb(s, j, &pf) : report_fig_loo(s, &pf);
            int rc = bad ? dcm_error_set(err, DCM_ERR_SYSTEM, "cannot draw the %s figure of %s (out of memory?)",
                                         kind, s->path)
                         : add_fig(figs, nf, -2 - i, kinds[*nkinds], s->kind == REPORT_SECOND_PEB ? "Group effects"
                                                                                                 : "Leave-one-out",
                                   sstems[i], &pf, scale, err);
            (*nkinds)++;
            plot_figure_free(&pf);
            if (rc)
                return rc;
        }
    }
    return DCM_OK;
}

int report_write(const report_model *models, int k, const report_options *opt,
                    dcm_error *err)
{
    if (!opt || !opt->html_path || k < 0 || (k < 1 && !opt->group && opt->nsecond < 1))
        return dcm_error_set(err, DCM_ERR_USAGE, "nothing to report");
    const report_group *g = opt->group;
    if (g && (g->nmod < 1 || g->nsub < 1 || !g->models || !g->alpha || !g->exp_r || !g->xp || !g->pxp))
        return dcm_error_set(err, DCM_ERR_USAGE, "incomplete group comparison");
    if (report_cairo_need(err))
        return DCM_ERR_SYSTEM;
    const double scale = opt->png_scale > 0 ? opt->png_scale : 2.0;
    const size_t nk = (size_t)(k > 0 ? k : 1);
    size_t nsf = 0; /* figures of the second-level results */
    for (int i = 0; i < opt->nsecond; i++)
        nsf += opt->second[i].kind == REPORT_SECOND_PEB ? (size_t)opt->second[i].nx : 1;
    const int nev = opt->evidence ? opt->nevidence : 0;
    figure *figs = calloc(6 * nk + 3 + nsf + (size_t)nev, sizeof *figs);
    char **kinds = calloc(nsf + 1, sizeof *kinds), **sstems = calloc((size_t)opt->nsecond + 1, sizeof *sstems);
    int nkinds = 0;
    char **stems = calloc(nk, sizeof *stems);
    double *F = malloc(sizeof(double) * nk), *lbf = malloc(sizeof(double) * nk),
           *post = malloc(sizeof(double) * nk);
    int nf = 0, rc = DCM_OK, nout = 0;
    io_atomic *outs = NULL;
    char why[1024] = "";
    const char *cmp_note = NULL;
    if (!figs || !stems || !F || !lbf || !post || !kinds || !sstems) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    if ((rc = second_figures(opt, figs, &nf, kinds, &nkinds, sstems, scale, err)))
        goto done;
    /* file stems, unique */
    for (int i = 0; i < k; i++) {
        char buf[300];
        safe_name(buf, 256, models[i].name);
        for (int j = 0; j < i; j++)
            if (!strcmp(stems[j], buf)) {
                size_t l = strlen(buf);
                snprintf(buf + l, sizeof buf - l, "-%d", i + 1);
                break;
            }
        if (!(stems[i] = strdup(buf))) {
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
    }
    /* group comparison (random effects) */
    if (g) {
        plot_figure pf;
        memset(&pf, 0, sizeof pf);
        int bad = report_fig_group(g, &pf);
        if (!bad)
            rc = add_fig(figs, &nf, -1, "group_comparison", "Group model comparison (random effects)", "",
                         &pf, scale, err);
        plot_figure_free(&pf);
        if (bad && !rc)
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot draw the group comparison figure (out of memory?)");
        if (rc)
            goto done;
    }
    /* comparison */
    if (k > 1) {
        if (!report_comparable(models, k, why, sizeof why))
            cmp_note = why;
        if (!cmp_note) {
            for (int i = 0; i < k; i++)
                F[i] = models[i].s.F;
            /* one subject: free energies of the same data (the checks above) */
            dcm_error ferr = {0, ""};
            if (dcm_bms_ffx(F, 1, k, NULL, NULL, post, lbf, &ferr))
                cmp_note = "the free energies are not finite numbers";
        }
        if (!cmp_note) {
            plot_figure pf;
            memset(&pf, 0, sizeof pf);
            int bad = report_fig_compare(models, k, lbf, post, &pf);
            if (!bad)
                rc = add_fig(figs, &nf, -1, "comparison", "Model comparison", "", &pf, scale, err);
            plot_figure_free(&pf);
            if (bad && !rc)
                rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot draw the comparison figure (out of memory?)");
            if (rc)
                goto done;
        }
    }
    /* the sampled log evidence: F against it, each model's marginals */
    for (int j = -1; nev > 0 && j < nev && !rc; j++) {
        const report_evidence *e = j >= 0 ? &opt->evidence[j] : NULL;
        if (e && (e->model < 0 || e->model >= k))
            continue;
        plot_figure pf;
        memset(&pf, 0, sizeof pf);
        int bad = e ? report_fig_marginals(e, &pf) : report_fig_evidence(models, opt->evidence, nev, &pf);
        if (bad)
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot draw the %s figure (out of memory?)",
                               e ? "marginals" : "evidence");
        else if (e)
            rc = add_fig(figs, &nf, e->model, "marginals", "Posterior marginals: sampled and Laplace",
                         stems[e->model], &pf, scale, err);
        else
            rc = add_fig(figs, &nf, -1, "evidence", "Free energy and sampled log evidence", "", &pf, scale, err);
        plot_figure_free(&pf);
    }
    for (int i = 0; i < k && !rc; i++) {
        const report_model *m = &models[i];
        for (int kind = 0; kind < 6 && !rc; kind++) {
            plot_figure pf;
            memset(&pf, 0, sizeof pf);
            int bad = 0;
            const char *name = NULL, *title = NULL;
            switch (kind) {
            case 0:
                if (m->v < 2 || !m->y_pred)
                    continue;
                bad = report_fig_fit(m, &pf);
                name = "fit";
                title = "Observed and predicted BOLD";
                break;
            case 4:
                if (m->design.nu < 1 || m->s.m < 1)
                    continue;
                bad = report_fig_inputs(m, &pf);
                name = "inputs";
                title = "Inputs over time";
                break;
            case 1:
                bad = report_fig_network(m, opt->threshold, &pf);
                name = "network";
                title = "Connectivity";
                break;
            case 2:
                bad = report_fig_params(m, opt->threshold, &pf);
                name = "parameters";
                title = "Parameters: posterior means and 90 % credible intervals";
                break;
            case 3:
                if (m->ntrace < 1)
                    continue;
                bad = report_fig_free_energy(m, &pf);
                name = "free_energy";
                title = "Free energy over iterations";
                break;
            case 5:
                if (!m->s.csd)
                    continue;
                bad = report_fig_spectra(m, &pf, NULL);
                name = "spectra";
                title = "Cross-spectra: observed and predicted";
                break;
            }
            if (bad)
                rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot draw the %s figure of %s (out of memory?)",
                                   name, m->name);
            else
                rc = add_fig(figs, &nf, i, name, title, stems[i], &pf, scale, err);
            plot_figure_free(&pf);
        }
    }
    if (rc)
        goto done;
    /* files: the PNGs and the report form one result, all replaced or
       none; a PNG name is known only now, so it is checked here against
       the inputs and the report (MODEL_fit.png may name one of them) */
    if (opt->png_dir) {
        if ((rc = make_dir(opt->png_dir, err)))
            goto done;
        if (!(outs = calloc((size_t)nf + 1, sizeof *outs))) {
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
        for (int i = 0; i < nf && !rc; i++)
            rc = open_png(opt->png_dir, &figs[i], models, k, opt->html_path, &outs[nout++], err);
        if (rc)
            goto done;
    } else if (!(outs = calloc(1, sizeof *outs))) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    io_atomic *a = &outs[nout];
    if ((rc = io_atomic_open(a, opt->html_path, err)))
        goto done;
    nout++;
    if (write_html(a->fp, models, k, figs, nf, lbf, post, cmp_note, opt)) {
        int e = errno;
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "cannot write %s: %s", opt->html_path,
                           e ? strerror(e) : "write failed");
        goto done;
    }
    rc = io_atomic_commit_all(outs, nout, err);
    nout = 0; /* closed by commit_all */
done:
    for (int i = 0; i < nout; i++)
        io_atomic_abort(&outs[i]);
    free(outs);
    if (figs)
        for (int i = 0; i < nf; i++) {
            free(figs[i].file);
            free(figs[i].png);
        }
    if (stems)
        for (int i = 0; i < k; i++)
            free(stems[i]);
    free(stems);
    for (int i = 0; kinds && i < nkinds; i++)
        free(kinds[i]);
    free(kinds);
    for (int i = 0; sstems && i < opt->nsecond; i++)
        free(sstems[i]);
    free(sstems);
    free(figs);
    free(F);
    free(lbf);
    free(post);
    return rc;
}
