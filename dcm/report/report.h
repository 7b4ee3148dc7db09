/* report.h — what `dcm report` and `dcm review` read from a result
 * file, and the report they write.
 *
 * Contract
 * - report_load() reads one result JSON (as written by dcm estimate,
 *   io_result.h): the summary of io_result_load() plus the time series
 *   ("observed_bold_scaled", "predicted_bold_scaled" and, when present,
 *   "fitted_confounds_scaled", each v rows of n), "model"."TR" and
 *   "free_energy_trajectory". A file without time series still loads
 *   (v = 0: the fit is then not shown); malformed ones are DCM_ERR_INPUT
 *   naming the file and the field. The file is parsed once, by the one
 *   loader of result files (io_result_load_doc), with its strictness.
 * - Derived on load: the posterior probability Pp of every free parameter
 *   (prior variance > 0) as dcm estimate computes it (probability that the
 *   effect exceeds its prior mean in size; NaN for fixed parameters), and
 *   the variance explained per region, 1 - var(residual) / var(observed)
 *   with residual = observed - predicted - fitted confounds.
 * - A spectral DCM result ("analysis": "csd") loads its "spectra"
 *   (frequencies, empirical and predicted CSD; required, checked in shape)
 *   and its observed series (no predicted one: the fit figure is the
 *   spectra's); Pp is then spm_dcm_fmri_csd's, Phi(|Ep - pE| / sd), the
 *   probability that a parameter differs from its prior mean, and the
 *   variance explained per region is that of its auto-spectrum,
 *   |pred|^2 / (|pred|^2 + |obs - pred|^2) summed over frequencies (as dcm
 *   review). Its section draws the cross-spectra (report_fig_spectra), the
 *   connectivity, the parameters and the free energy.
 * - Also read when present (older results lack them; malformed ones are
 *   DCM_ERR_INPUT): what was fitted ("model": TE, delays, options), the
 *   input design ("design", io_result_inputs.h), and the checks of dcm
 *   estimate ("warnings": strings, "diagnostics": numbers).
 * - Regions are matched by name when models meet (report_comparable);
 *   parameter names are never cut (report_name_cap).
 * - Parameters are named with the syntax of every other command
 *   (io_pnames.h): "A:V1->V5", "B:Attention:V1->V5", "transit:V1",
 *   "decay"; both styles (review, figure) use it.
 * - Each model's section opens with its warnings (or "no warnings"),
 *   then tables of what was fitted (TR, TE, delays, confounds, data scale,
 *   options, priors) and the diagnostics, then the figures: the fit and
 *   the inputs share one scan axis; the forest plot fills a dot exactly
 *   when Pp > threshold, i.e. when its drawn interval lies beyond the prior
 *   mean (report_interval_z); units as MANUAL 5.4.
 * - report_write() draws the figures with cairo (plot.h) and writes
 *   one self-contained HTML file (figures embedded as base64 PNG data
 *   URIs, no scripts, no external references) and, when png_dir is given,
 *   every figure as a PNG file there (the directory is created if
 *   missing). Every file is written atomically (io_atomic.h); nothing is
 *   written unless every figure could be drawn. With several models it
 *   adds a fixed-effects comparison (dcm_bms_ffx) when they were
 *   fitted to the same data, and says why not otherwise.
 * - A group comparison (report_group: a log-evidence table's models and
 *   the results of dcm_bms_rfx over it, as `dcm report --lme` computes
 *   them) adds a random-effects section before everything else: a figure
 *   of exp_r, xp and pxp per model, a table and a caption. With a group,
 *   models may be empty (k = 0): the report then holds only that section.
 * - Sampled log evidence (report_evidence, written by dcm evidence -o and
 *   matched to the models by the hash of the result file): a section after
 *   the model comparison with a table, F against the sampled evidence and
 *   the gap (report_fig_evidence, evidence.png) and per model its sampled
 *   marginals over the Laplace Gaussians (report_fig_marginals,
 *   MODEL_marginals.png); report_evidence.c.
 * - No global state; errors through dcm_error (DCM_ERR_INPUT for bad
 *   files, DCM_ERR_SYSTEM for memory and writing).
 */
#ifndef REPORT_H
#define REPORT_H

#include <stddef.h>

#include "dcm/dcm_api.h"
#include "dcm/report/plot.h"
#include "io/io_result.h"
#include "models/model_layout.h"
#include "io/io_result_inputs.h"

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
    /* what was fitted ("model" of the result; NaN / -1 / NULL when absent) */
    double TE;             /* seconds */
    double *delays;        /* n, seconds */
    int nonlinear, centre, maxit, maxnodes;
    char *integrator;
    double hE, hC;         /* noise log-precision prior */
    io_result_design design; /* inputs over micro-time (design.nu = 0: not in the file) */
    /* checks of dcm estimate: "warnings" and "diagnostics" */
    int nwarn;             /* -1: the file predates warnings */
    char **warnings;       /* nwarn strings */
    double diag_ve;        /* percent variance explained, all regions */
    double diag_max_a;     /* largest off-diagonal |A| (Hz) */
    double diag_neff;      /* effective number of parameters */
    int diag_accepted;     /* accepted steps (-1: absent) */
    /* spectral DCM (s.csd): the "spectra" of the result */
    int nw;                /* frequencies (0: not in the file) */
    double *Hz;            /* nw */
    double *csd_obs;       /* empirical CSD: 2 nw n n doubles, (re, im) at w + nw (i + n j) */
    double *csd_pred;      /* predicted CSD at the posterior mean, the same layout */
} report_model;

int report_load(const char *path, report_model *m, dcm_error *err);
void report_model_free(report_model *m);
/* Make the k names distinct: models whose files share a name (sub-01/fwd.json,
 * sub-02/fwd.json) are named by the shortest path suffix that tells them
 * apart ("sub-01/fwd", "sub-02/fwd"); the same file twice gets " (2)".
 * Returns 0, or -1 when out of memory (names then unchanged). */
int report_unique_names(report_model *models, int k);

/* Parameter blocks, in SPM's flat order (the table of models/model_layout.h;
 * transit, decay and epsilon form one group). */
enum { REPORT_GROUP_A, REPORT_GROUP_B, REPORT_GROUP_C, REPORT_GROUP_D,
       REPORT_GROUP_HAEMO, REPORT_GROUP_SPECTRA /* spectral DCM's a, b, c */ };
/* The block table of a loaded result: the task one, or model_layout_init_csd
 * for a spectral DCM. */
void report_layout(const report_model *m, model_layout *T);
/* Block of parameter k; *sub receives the input (B), region (D) or 0. */
int report_param_group(const report_model *m, int k, int *sub);
/* Source and target of parameter k: regions for A/B/D, (input, region)
 * for C; -1 for haemodynamic parameters (transit: *to is the region). */
void report_param_ends(const report_model *m, int k, int *from, int *to);

enum { REPORT_NAME_REVIEW = 0, REPORT_NAME_FIGURE = 1 };
void report_param_name(const report_model *m, int k, int style, char *buf, size_t len);
/* A buffer length that holds every parameter name of m whole. */
size_t report_name_cap(const report_model *m);
/* True for free parameters (prior variance > 0). */
int report_param_free(const report_model *m, int k);
double report_param_sd(const report_model *m, int k);

/* z for a two-sided 90 % credible interval: mean +- 1.645 sd */
#define REPORT_CI90_Z 1.6448536269514722
/* The interval the report draws for a marking threshold P (Pp > P):
 * mean +- z sd with z = Phi^-1(P), a (2P - 1) credible interval (90 % for
 * P = 0.95). Pp > P exactly when that interval lies wholly beyond the
 * prior mean in size (beyond +-pE): for pE = 0, when it excludes zero. */
double report_interval_z(double threshold);
/* 1 when the interval mean +- z sd of parameter k lies beyond +-pE (the
 * forest plot's filled dot); equals Pp > P for z = report_interval_z(P). */
int report_param_beyond_prior(const report_model *m, int k, double z);

/* A random-effects comparison over a group of subjects (Stephan et al.
 * 2009, Rigoux et al. 2014): the models of a log-evidence table and what
 * dcm_bms_rfx returns for it. Everything is borrowed from the caller. */
typedef struct {
    const char *source;          /* the table's file, shown in the report */
    int nsub, nmod;              /* subjects (>= 2) and models (>= 2) */
    char *const *models;         /* nmod names */
    const double *alpha;         /* nmod: posterior Dirichlet counts */
    const double *exp_r;         /* nmod: expected frequencies */
    const double *xp;            /* nmod: exceedance probabilities */
    const double *pxp;           /* nmod: protected exceedance probabilities */
    double bor;                  /* Bayesian omnibus risk */
    int converged;               /* 0: the VB iterations hit their limit */
} report_group;

/* A second-level result read from JSON: a PEB (dcm peb -o; effects per
 * parameter x covariate, with Pp after --search) or a leave-one-out
 * cross-validation (dcm loo -o). Owns its arrays (report_second_free). */
enum { REPORT_SECOND_PEB = 1, REPORT_SECOND_LOO = 2 };
typedef struct {
    int kind;
    char *path;
    /* PEB */
    int np, nx, search, iterations, converged;
    char **pnames, **xnames;          /* np, nx (LOO: pnames = the predictors) */
    double *mean, *sd, *prob;         /* np x nx, parameter fastest (prob NaN: none) */
    double F;
    /* LOO */
    int nsub;
    char **subjects;
    char *covariate;
    double *truth, *pred, *pred_sd;   /* nsub */
    double r, p, p_two_sided;
} report_second;

int report_second_load(const char *path, report_second *s, dcm_error *err);
void report_second_free(report_second *s);
/* The effects on covariate j (bars with 90% intervals, Pp) / the LOO
 * scatter (predicted vs true with 90% intervals, r, p). 0 or -1. */
int report_fig_peb(const report_second *s, int j, plot_figure *f);
int report_fig_loo(const report_second *s, plot_figure *f);

/* The sampled log evidence of one result (dcm evidence -o, issue 16):
 * what the report draws of it. report_evidence_load() reads the file
 * (DCM_ERR_INPUT naming the file and field when it is not one);
 * report_evidence_match() ties each to the one of the k results whose
 * bytes hash to its "result_hash" (dcm_evidence_file_hash) and refuses,
 * with DCM_ERR_INPUT, an evidence file that matches none (naming the
 * result it was computed for, e.g. re-estimated since) or a result given
 * two. Owns its arrays (report_evidence_free). */
typedef struct {
    char *path;                   /* the evidence file */
    char *result;                 /* "result": the result file as given to dcm evidence */
    char *hash;                   /* "result_hash" */
    char *method;                 /* "ti" or "ais" */
    int model;                    /* index of the matched result (-1 before matching) */
    double log_evidence, se, free_energy;
    int samples_used, chains, temperatures;
    int np;                       /* free parameters */
    char **names;                 /* np */
    double *laplace_mean, *laplace_sd, *sample_mean, *sample_sd; /* np */
    int nbins;                    /* histogram bins (0: no histograms in the file) */
    double *hist_lo, *hist_hi;    /* np */
    double *counts;               /* np x nbins, parameter-major */
} report_evidence;

int report_evidence_load(const char *path, report_evidence *e, dcm_error *err);
void report_evidence_free(report_evidence *e);
int report_evidence_match(report_evidence *ev, int ne, const report_model *models, int k, dcm_error *err);
/* F and the sampled log evidence (+-2 SE) per model, and their gap
 * (+-2 SE) against 0; -1 also when ne < 1. */
int report_fig_evidence(const report_model *models, const report_evidence *ev, int ne, plot_figure *f);
/* One model's free parameters in a grid: the histogram of the samples at
 * b = 1 as a density, the Laplace Gaussian N(Ep, Cp_ii) over it, both
 * means marked; -1 also without histograms. */
int report_fig_marginals(const report_evidence *e, plot_figure *f);

typedef struct {
    const char *html_path;   /* output file */
    const char *png_dir;     /* NULL: no PNG files */
    double png_scale;        /* resolution factor of the PNGs (2: sharp on high-DPI screens) */
    double threshold;        /* Pp above which a parameter is marked (0.95) */
    const char *generator;   /* e.g. the command line, shown in the report (may be NULL) */
    const report_group *group; /* random-effects group comparison (NULL: none) */
    const report_second *second; /* second-level results (PEB, LOO) to show */
    int nsecond;
    const report_evidence *evidence; /* sampled evidence, matched to models (NULL: none) */
    int nevidence;
} report_options;

/* 1 when the k models were fitted to the same data (same regions and,
 * where both files carry them, the same observed time series), so that
 * their free energies can be compared; else 0 and the reason in why.
 * Files without time series (e.g. SPM's reference results) are compared
 * only with other such files. */
int report_comparable(const report_model *models, int k, char *why, size_t len);

/* models[k]: loaded results (k >= 1, or k >= 0 with opt->group). Returns
 * DCM_OK or an error code. */
int report_write(const report_model *models, int k, const report_options *opt,
                    dcm_error *err);

/* Figures (exposed for tests and tools): each draws into f, returns 0 or
 * -1 when out of memory. */
int report_fig_fit(const report_model *m, plot_figure *f);
/* The inputs over time, one row per input, on the fit figure's x axis
 * (scans, same range, same plot width); -1 also when m->design.nu = 0. */
int report_fig_inputs(const report_model *m, plot_figure *f);
/* Input k of m->design: how many times it switches on (from zero; abutting
 * events count once) and its total time on (s). -1 without a design. */
int report_input_on(const report_model *m, int k, int *times, double *seconds);
/* "drives V1; modulates V1->V5" from the free C and B parameters of input k */
void report_input_role(const report_model *m, int k, char *buf, size_t len);
int report_fig_params(const report_model *m, double threshold, plot_figure *f);
/* Spectral DCM: |CSD| observed (solid) and predicted (dashed) against
 * frequency, one small panel per region pair (i, j) in an n x n grid (row
 * i, column j; the diagonal holds the auto-spectra); -1 also without
 * spectra. The panel rectangles (figure coordinates, row-major, n^2 of
 * 4 doubles x, y, w, h) go to rects when not NULL (for tests). */
int report_fig_spectra(const report_model *m, plot_figure *f, double *rects);
int report_fig_network(const report_model *m, double threshold, plot_figure *f);
int report_fig_free_energy(const report_model *m, plot_figure *f);
int report_fig_compare(const report_model *models, int k, const double *lbf,
                          const double *post, plot_figure *f);
/* Random effects over a group: expected frequency, exceedance and
 * protected exceedance probability per model (three panels, side by side
 * for up to 6 models, stacked beyond), with the omnibus risk. */
int report_fig_group(const report_group *g, plot_figure *f);

/* The report of one regression DCM result ("analysis": "rdcm",
 * report_rdcm.c): a heatmap of A with the regions in the spec's order,
 * the inclusion probabilities of sparse rDCM, F and p0, and a table per
 * region (F, VB iterations, noise precision); out written atomically, and
 * png_dir/connectivity.png (inclusion.png) when png_dir is given. */
int report_rdcm_write(const char *result, const char *out, const char *png_dir, double scale,
                      dcm_error *err);

#endif
