/* io_report.h — what `dcm report` and `dcm review` read from a result
 * file, and the report they write.
 *
 * Contract
 * - io_report_load() reads one result JSON (as written by dcm estimate,
 *   io_result.h): the summary of io_result_load() plus the time series
 *   ("observed_bold_scaled", "predicted_bold_scaled" and, when present,
 *   "fitted_confounds_scaled", each v rows of n), "model"."TR" and
 *   "free_energy_trajectory". A file without time series still loads
 *   (v = 0: the fit is then not shown); malformed ones are DCM_ERR_INPUT
 *   naming the file and the field.
 * - Derived on load: the posterior probability Pp of every free parameter
 *   (prior variance > 0) as dcm estimate computes it (probability that the
 *   effect exceeds its prior mean in size; NaN for fixed parameters), and
 *   the variance explained per region, 1 - var(residual) / var(observed)
 *   with residual = observed - predicted - fitted confounds.
 * - Parameters are named with the syntax of every other command
 *   (io_pnames.h): "A:V1->V5", "B:Attention:V1->V5", "transit:V1",
 *   "decay"; both styles (review, figure) use it.
 * - io_report_write() draws the figures with cairo (io_plot.h) and writes
 *   one self-contained HTML file (figures embedded as base64 PNG data
 *   URIs, no scripts, no external references) and, when png_dir is given,
 *   every figure as a PNG file there (the directory is created if
 *   missing). Every file is written atomically (io_atomic.h); nothing is
 *   written unless every figure could be drawn. With several models it
 *   adds a fixed-effects comparison (dcm_compare_ffx) when they were
 *   fitted to the same data, and says why not otherwise.
 * - No global state; errors through dcm_error (DCM_ERR_INPUT for bad
 *   files, DCM_ERR_SYSTEM for memory and writing).
 */
#ifndef IO_REPORT_H
#define IO_REPORT_H

#include <stddef.h>

#include "dcm/dcm_api.h"
#include "io/io_plot.h"
#include "io/io_result.h"

typedef struct {
    io_result_summary s;   /* names, priors, posteriors, F, Eh, iterations, converged */
    char *name;            /* model name: file name without directory and ".json" */
    double TR;             /* seconds; NaN when the file does not say */
    int v;                 /* scans of time series (0: none in the file) */
    double *y_obs;         /* v x n, column-major, scaled units */
    double *y_pred;        /* v x n */
    double *y_conf;        /* v x n, NULL when the file has no fitted confounds */
    int ntrace;            /* free-energy trajectory length */
    double *F_trace;       /* ntrace (NULL when 0) */
    double *Pp;            /* np: posterior probability, NaN where pV = 0 */
    double *r2;            /* n: variance explained, NaN without time series */
} io_report_model;

int io_report_load(const char *path, io_report_model *m, dcm_error *err);
void io_report_model_free(io_report_model *m);

/* Parameter blocks, in SPM's flat order. */
enum { IO_REPORT_GROUP_A, IO_REPORT_GROUP_B, IO_REPORT_GROUP_C, IO_REPORT_GROUP_D,
       IO_REPORT_GROUP_HAEMO };
/* Block of parameter k; *sub receives the input (B), region (D) or 0. */
int io_report_param_group(const io_report_model *m, int k, int *sub);
/* Source and target of parameter k: regions for A/B/D, (input, region)
 * for C; -1 for haemodynamic parameters (transit: *to is the region). */
void io_report_param_ends(const io_report_model *m, int k, int *from, int *to);

enum { IO_REPORT_NAME_REVIEW = 0, IO_REPORT_NAME_FIGURE = 1 };
void io_report_param_name(const io_report_model *m, int k, int style, char *buf, size_t len);
/* True for free parameters (prior variance > 0). */
int io_report_param_free(const io_report_model *m, int k);
double io_report_param_sd(const io_report_model *m, int k);

/* z for a two-sided 90 % credible interval: mean +- 1.645 sd */
#define IO_REPORT_CI90_Z 1.6448536269514722

typedef struct {
    const char *html_path;   /* output file */
    const char *png_dir;     /* NULL: no PNG files */
    double png_scale;        /* resolution factor of the PNGs (2: sharp on high-DPI screens) */
    double threshold;        /* Pp above which a parameter is marked (0.95) */
    const char *generator;   /* e.g. the command line, shown in the report (may be NULL) */
} io_report_options;

/* 1 when the k models were fitted to the same data (same regions and,
 * where both files carry them, the same observed time series), so that
 * their free energies can be compared; else 0 and the reason in why.
 * Files without time series (e.g. SPM's reference results) are compared
 * only with other such files. */
int io_report_comparable(const io_report_model *models, int k, char *why, size_t len);

/* models[k]: loaded results. Returns DCM_OK or an error code. */
int io_report_write(const io_report_model *models, int k, const io_report_options *opt,
                    dcm_error *err);

/* Figures (exposed for tests and tools): each draws into f, returns 0 or
 * -1 when out of memory. */
int io_report_fig_fit(const io_report_model *m, io_plot_figure *f);
int io_report_fig_params(const io_report_model *m, double threshold, io_plot_figure *f);
int io_report_fig_network(const io_report_model *m, double threshold, io_plot_figure *f);
int io_report_fig_free_energy(const io_report_model *m, io_plot_figure *f);
int io_report_fig_compare(const io_report_model *models, int k, const double *lbf,
                          const double *post, io_plot_figure *f);

#endif
