/* io_bids.h — what `dcm bids` reads and writes: the models file, the runs
 * of a BIDS dataset preprocessed by fMRIPrep, the extraction of one run's
 * regions into DCM specs, and participants.tsv covariates (MANUAL ch. 19, "BIDS datasets").
 *
 * Contract
 * - The models file (JSON) names the regions (spheres in mm or labels of
 *   an atlas), the inputs (trial_type values of *_events.tsv), the
 *   confounds (presets or fMRIPrep column names), the hypotheses ("models":
 *   each a name and the a/b/c/d switches of the spec format, io_spec.h,
 *   copied verbatim into the specs so io_spec is the one parser) and the
 *   group analysis. Unknown keys are errors naming the file and the key.
 * - Runs: every preproc BOLD <deriv>/sub-X[/ses-Y]/func/..._desc-preproc_bold.nii[.gz]
 *   whose subject, task and space are chosen; each has its confounds
 *   (..._desc-confounds_timeseries.tsv, or the older _regressors.tsv) and
 *   its raw events (<bids>/sub-X[/ses-Y]/func/<entities>_events.tsv);
 *   a brain mask (..._desc-brain_mask.nii[.gz] of the same space) is used
 *   when present. A missing file is an error naming the path expected.
 * - TR: the sidecar's RepetitionTime (the preprocessed BOLD's .json, else
 *   the raw BOLD's, else the top-level task-<T>_bold.json) checked
 *   against the NIfTI header (pixdim[4]): a difference beyond 1e-3
 *   relative is an error naming both files. Slice timing: with
 *   "slice_timing" (default true) a sidecar with SliceTiming and no
 *   "SliceTimingCorrected": true gives each region the time of the slice
 *   holding its centre as its delay; a corrected run with "StartTime"
 *   gives that time to every region; otherwise DCM's default (TR/2).
 * - Confound presets (fMRIPrep names): motion6 = trans_x/y/z, rot_x/y/z;
 *   motion12 = motion6 + their _derivative1; motion24 = motion12 + the
 *   _power2 of both; wm_csf = white_matter, csf; global_signal;
 *   acompcor = a_comp_cor_00..05; tcompcor = t_comp_cor_00..05;
 *   fd = framewise_displacement. Other words are column names. "n/a"
 *   cells (fMRIPrep's derivatives and FD at the first scan) become 0;
 *   the count is reported.
 * - No global state; every output written atomically.
 */
#ifndef IO_BIDS_H
#define IO_BIDS_H

#include <jansson.h>

#include "models/model_problem.h"

typedef struct {
    char *name;
    int sphere;             /* 1: centre/radius (mm); 0: an atlas label */
    double centre[3], radius;
    long label;             /* atlas label (0 when given by name) */
    char *label_name;       /* label named in the labels table, or NULL */
} io_bids_region;

typedef struct {
    char *name;             /* letters and digits (a BIDS desc label) */
    json_t *switches;       /* {"a": ..., "b": ..., "c": ..., "d": ...} */
} io_bids_model;

typedef struct {
    char *path;             /* the models file */
    char *space;            /* "space" or NULL */
    char *atlas, *labels;   /* resolved against the file's folder, or NULL */
    int nregions;
    io_bids_region *regions;
    int ninputs;
    char **inputs;
    int nconfounds;
    char **confounds;       /* presets or column names, as written */
    double hpf;             /* high-pass cutoff (s), 128; 0: none */
    int summary;            /* IO_SUMMARY_* */
    int slice_timing;       /* 1 (default): delays from the sidecar */
    double TE;              /* 0.04 */
    json_t *options;        /* the spec's "options", or NULL */
    int nmodels;
    io_bids_model *models;
    /* "group" */
    char *peb_model;        /* NULL: the model with the highest exceedance probability */
    int nparams;
    char **params;          /* PEB parameters ("A" when none) */
    int ncovariates;
    char **covariates;      /* participants.tsv columns */
    int peb_q;              /* DCM_PEB_Q_SINGLE (1, default) or DCM_PEB_Q_ALL (3) */
    int peb_maxit;          /* 64 (SPM's M.maxit) */
} io_bids_models;

int io_bids_models_load(const char *path, io_bids_models *M, dcm_error *err);
void io_bids_models_free(io_bids_models *M);

typedef struct {
    char *sub, *ses, *task;  /* labels without "sub-" etc.; ses may be NULL */
    char *rawstem;           /* "sub-01_task-x_run-1" (raw entities) */
    char *stem;              /* rawstem + "_space-S[_res-R]" */
    char *subdir;            /* "sub-01" or "sub-01/ses-1" */
    char *bold, *mask, *confounds, *events;  /* mask NULL when absent */
    char *raw_sidecar, *task_sidecar;        /* the raw BOLD's .json, task-<T>_bold.json */
} io_bids_run;

typedef struct {
    const char *bids;        /* raw dataset */
    const char *deriv;       /* fMRIPrep output */
    char *const *labels;     /* participant labels without "sub-" (nlabels; 0: all) */
    int nlabels;
    const char *task, *space;  /* NULL: any task / the only space */
    int use_mask;
} io_bids_query;

/* The runs, sorted by subdir then stem. Errors: no run at all, a chosen
 * participant without runs, several spaces without a choice, a run
 * without confounds or events (naming the file expected). */
int io_bids_runs_find(const io_bids_query *q, io_bids_run **runs, int *nruns, dcm_error *err);
void io_bids_runs_free(io_bids_run *runs, int nruns);

/* One run: check TR and slice timing, select the confounds, extract the
 * regions, and write into OUTDIR/<subdir>/func/:
 *   <stem>_desc-dcmnuisance_timeseries.tsv   the chosen fMRIPrep columns (n/a -> 0)
 *   <stem>_desc-dcmregions_timeseries.tsv    one column per region
 *   <stem>_desc-dcmregions_timeseries.json   voxels, centres, TR, delays, notes
 *   <stem>_desc-dcmconfounds_timeseries.tsv  X0 of the DCMs (constant, DCT, confounds)
 *   <stem>_desc-<model>_dcmspec.json         one spec per model
 * specs[k] (malloc'd, the caller frees) is model k's spec path; note
 * (may be NULL) receives what the user should know ("n/a replaced ..."). */
int io_bids_run_prepare(const io_bids_models *M, const io_bids_run *r, const char *outdir,
                        char **specs, char *note, size_t notelen, dcm_error *err);

/* <outdir>/<subdir>/func/<stem>_desc-<model>_dcm (the stem of a result). */
char *io_bids_result_stem(const io_bids_run *r, const char *model);

/* dataset_description.json of the derivatives (atomically). */
int io_bids_write_description(const char *outdir, const char *bids_dir, const char *version,
                              dcm_error *err);

/* Covariates of participants.tsv for the subjects given (labels without
 * "sub-"): X (nsub x ncov, row-major) mean-centred over the subjects kept.
 * A subject without a row, a column missing, or a cell "n/a" is an error
 * naming the file and line, unless exclude: then keep[i] = 0 and why[i]
 * (malloc'd) says why. keep may be NULL when !exclude. */
int io_bids_covariates(const char *path, char *const *subjects, int nsub, char *const *covariates,
                       int ncov, int exclude, double *X, int *keep, char **why, dcm_error *err);

#endif
