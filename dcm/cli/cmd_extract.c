/* cmd_extract.c — `dcm extract BOLD.nii ... -o PREFIX`: a region's time
 * series from 4D images, as SPM's VOI extraction (io/io_extract.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"
#include "io/io_atomic.h"
#include "io/io_extract.h"

static const char *const usage[] = {"BOLD.nii[.gz] REGION --name NAME -o PREFIX [options]",
                                    "BOLD.nii[.gz] --atlas ATLAS.nii --all-labels [--labels LABELS.tsv] -o PREFIX [options]",
                                    NULL};

static const char *description =
    "Extract one region's time series from a 4D BOLD image (NIfTI-1, NIfTI-2,\n"
    ".nii.gz or ANALYZE .hdr/.img) as SPM does for a VOI: regress the confounds\n"
    "(constant, DCT high-pass, chosen columns) out of every voxel, then take the\n"
    "principal eigenvariate (or the mean). Writes, atomically:\n"
    "  PREFIX.tsv            the region's time series, one column named NAME\n"
    "  PREFIX_confounds.tsv  the confound matrix X0 used (for the spec's \"confounds\")\n"
    "  PREFIX.json           voxels, centre (mm), variance explained, TR, delay\n"
    "With --all-labels, every label of the atlas in one pass: PREFIX.tsv has a\n"
    "column per label (names from --labels, else label_N), the atlas is\n"
    "resampled to the BOLD grid (nearest neighbour through the affines) when\n"
    "the grids differ, and labels without a usable voxel are listed (warning\n"
    "and PREFIX.json's missing_labels).\n";

static const char *footer =
    "example:\n"
    "  dcm extract sub-01_task-att_bold.nii.gz --sphere 44,-72,0,8 --name V5 \\\n"
    "      --confounds sub-01_task-att_desc-confounds_timeseries.tsv \\\n"
    "      --columns trans_x,trans_y,trans_z,rot_x,rot_y,rot_z -o V5\n"
    "  dcm extract sub-01_task-rest_bold.nii.gz --atlas Schaefer2018_200Parcels_2mm.nii.gz \\\n"
    "      --all-labels --labels Schaefer2018_200Parcels_dseg.tsv -o sub-01_schaefer200\n";

/* "a,b,c" -> array of strings (the copy holds them) */
static int split_columns(char *s, char ***out, int *count)
{
    int k = 1;
    for (char *p = s; *p; p++)
        k += *p == ',';
    char **c = calloc((size_t)k, sizeof(char *));
    if (!c)
        return -1;
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t l = strlen(tok);
        while (l && tok[l - 1] == ' ')
            tok[--l] = '\0';
        if (l)
            c[n++] = tok;
    }
    *out = c;
    *count = n;
    return 0;
}

/* X,Y,Z,R (a copy of the whole argument: a fixed buffer would cut a long
 * one and parse what is left) */
static int parse_sphere(const char *s, double c[4])
{
    char *buf = strdup(s);
    if (!buf)
        return -1;
    char *save = NULL, *tok = strtok_r(buf, ",", &save);
    int k = 0, rc = 0;
    for (; tok && k < 4 && !rc; tok = strtok_r(NULL, ",", &save))
        if (cli_parse_double(tok, &c[k++]) || !isfinite(c[k - 1]))
            rc = -1;
    if (!rc && (k != 4 || tok))
        rc = -1;
    free(buf);
    return rc;
}

/* The outputs PREFIX.tsv, PREFIX_confounds.tsv, PREFIX.json checked
 * against every input, the BOLD's BIDS sidecar and ANALYZE pair included
 * (-o PREFIX equal to the BOLD's name would replace its sidecar). */
/* --sphere X,Y,Z,R into the options (value: io_extract_opts) */
static int take_sphere(const cli_opt *opt, char *arg)
{
    io_extract_opts *o = opt->value;
    double c[4];
    if (parse_sphere(arg, c) || !(c[3] > 0))
        return -1;
    o->sphere = 1;
    memcpy(o->centre, c, sizeof o->centre);
    o->radius = c[3];
    return 0;
}

/* --summary eigen|mean (value: int, IO_SUMMARY_*) */
static int take_summary(const cli_opt *opt, char *arg)
{
    int *summary = opt->value;
    if (!strcmp(arg, "eigen") || !strcmp(arg, "eigenvariate"))
        *summary = IO_SUMMARY_EIGEN;
    else if (!strcmp(arg, "mean"))
        *summary = IO_SUMMARY_MEAN;
    else
        return -1;
    return 0;
}

static int plan_outputs(const io_extract_opts *o, const char *prefix)
{
    static const char *const ext[] = {".nii.gz", ".hdr.gz", ".img.gz", ".nii", ".hdr", ".img", NULL};
    static const char *const pair[] = {"", ".img.gz", ".hdr.gz", "", ".img", ".hdr", NULL};
    size_t lb = strlen(o->bold), lp = strlen(prefix);
    char *buf = malloc(lb + lp + 32);
    if (!buf)
        return cli_fail("extract", DCM_ERR_SYSTEM, "out of memory");
    cli_plan plan;
    cli_plan_init(&plan, "extract");
    cli_plan_input(&plan, o->bold, "the BOLD image");
    size_t stem = lb;
    int e = 0;
    for (; ext[e]; e++)
        if (lb > strlen(ext[e]) && !strcmp(o->bold + lb - strlen(ext[e]), ext[e])) {
            stem = lb - strlen(ext[e]);
            break;
        }
    sprintf(buf, "%.*s.json", (int)stem, o->bold);
    cli_plan_input(&plan, buf, "the BOLD's BIDS sidecar");
    if (ext[e] && pair[e][0]) {
        sprintf(buf, "%.*s%s", (int)stem, o->bold, pair[e]);
        cli_plan_input(&plan, buf, "the BOLD's ANALYZE pair");
    }
    cli_plan_input(&plan, o->mask, "--mask");
    cli_plan_input(&plan, o->atlas, "--atlas");
    cli_plan_input(&plan, o->confounds, "--confounds");
    cli_plan_input(&plan, o->labels, "--labels");
    static const char *const out[] = {".tsv", "_confounds.tsv", ".json"};
    for (int k = 0; k < 3; k++) {
        sprintf(buf, "%s%s", prefix, out[k]);
        cli_plan_output(&plan, buf, "the output");
    }
    /* a sidecar not there yet: PREFIX.json would become it, and the next
       extract of this BOLD would read our output as its BIDS metadata */
    int rc = DCM_OK;
    char *side = malloc(lb + 8);
    if (!side)
        rc = cli_fail("extract", DCM_ERR_SYSTEM, "out of memory");
    else {
        sprintf(side, "%.*s.json", (int)stem, o->bold);
        sprintf(buf, "%s.json", prefix);
        if (io_same_target(buf, side))
            rc = cli_fail("extract", DCM_ERR_INPUT, "the output %s would be the BIDS sidecar of %s (read "
                          "for its TR and slice timing): choose another -o PREFIX", buf, o->bold);
        free(side);
    }
    if (!rc)
        rc = cli_plan_check(&plan);
    cli_plan_free(&plan);
    free(buf);
    return rc;
}

/* --all-labels: every label of the atlas into PREFIX.tsv */
static int run_all_labels(const io_extract_opts *o, const char *prefix, dcm_error *err)
{
    io_extract_atlas_result r;
    int rc = io_extract_atlas_run(o, &r, err);
    if (rc)
        return rc;
    if (r.warning[0])
        fprintf(stderr, "dcm extract: warning: %s\n", r.warning);
    if (!(rc = io_extract_atlas_write(prefix, o, &r, err))) {
        long vox = 0;
        for (int k = 0; k < r.nregions; k++)
            vox += r.nvox[k];
        printf("%s: %d region%s from %s (%d label%s in the atlas%s, %d without a column), %ld voxels, "
               "%s, TR %g s, %d confound column%s -> %s.tsv\n",
               o->bold, r.nregions, r.nregions == 1 ? "" : "s", o->atlas, r.atlas_labels,
               r.atlas_labels == 1 ? "" : "s", r.resampled ? ", resampled to the BOLD grid" : "",
               r.nmissing, vox, o->summary == IO_SUMMARY_MEAN ? "means" : "eigenvariates",
               r.common.tr, r.common.nx0, r.common.nx0 == 1 ? "" : "s", prefix);
    }
    io_extract_atlas_result_free(&r);
    return rc;
}

int cmd_extract(int argc, char **argv)
{
    io_extract_opts o;
    memset(&o, 0, sizeof o);
    o.hpf = 128.0;
    o.summary = IO_SUMMARY_EIGEN;
    const char *prefix = NULL;
    const char *columns = NULL;
    int no_hpf = 0, have_hpf = 0, have_label = 0;
    const cli_opt options[] = {
        CLI_GROUP("region (one of, or a mask/atlas combined with a sphere = their intersection):"),
        CLI_STRING(0, "mask", &o.mask, "MASK.nii", "the non-zero voxels of a mask on the BOLD grid",
                   .missing = "%o needs a mask image"),
        CLI_STRING(0, "atlas", &o.atlas, "ATLAS.nii", "the voxels of an atlas equal to --label K",
                   .missing = "%o needs an atlas image"),
        CLI_INT(0, "label", &o.label, "K", -2147483647.0, 2147483647.0, "the atlas label (a whole number)",
                .seen = &have_label, .missing = "%o needs a whole number",
                .invalid = "--label needs a whole number, not '%v'"),
        CLI_FLAG(0, "all-labels", &o.all_labels,
                 "every label of --atlas, a column each (resampled to the BOLD grid when needed)"),
        CLI_STRING(0, "labels", &o.labels, "LABELS.tsv",
                   "with --all-labels: names of the labels (BIDS dseg.tsv: columns index, name)",
                   .missing = "%o needs a labels table"),
        CLI_CALLBACK(0, "sphere", &o, "X,Y,Z,R", take_sphere,
                     "voxels within R mm of (X, Y, Z) mm (world coordinates through the sform, else the "
                     "qform)",
                     .missing = "%o needs X,Y,Z,R in mm",
                     .invalid = "--sphere needs X,Y,Z,R in mm with R > 0 (e.g. 44,-72,0,8), not '%v'"),
        CLI_GROUP("options:"),
        CLI_STRING(0, "name", &o.name, "NAME", "region name (required, except with --all-labels)", .missing = "%o needs a region name"),
        CLI_STRING('o', "output", &prefix, "PREFIX", "output prefix (required)",
                   .missing = "%o needs an output prefix"),
        CLI_STRING(0, "confounds", &o.confounds, "FILE.tsv",
                   "a table with a header (e.g. fMRIPrep's *_desc-confounds_timeseries.tsv)",
                   .missing = "%o needs a TSV file"),
        CLI_STRING(0, "columns", &columns, "a,b,...", "its columns to regress out (required with --confounds)",
                   .missing = "%o needs a comma-separated list of column names"),
        CLI_DOUBLE(0, "hpf", &o.hpf, "SECONDS", "high-pass cutoff (default 128, as SPM)", .min = 0.0,
                   .max = INFINITY, .bounds = CLI_BOUNDS_OPEN, .seen = &have_hpf,
                   .missing = "%o needs a cutoff in seconds",
                   .invalid = "--hpf needs a positive number of seconds"),
        CLI_FLAG(0, "no-hpf", &no_hpf, "no high-pass basis (constant and chosen columns only)"),
        CLI_CALLBACK(0, "summary", &o.summary, "eigen|mean", take_summary,
                     "principal eigenvariate (default, as SPM) or mean", .missing = "%o needs eigen or mean",
                     .invalid = "--summary takes 'eigen' or 'mean'"),
        CLI_DOUBLE(0, "tr", &o.tr, "SECONDS",
                   "repetition time (default: the BIDS sidecar BOLD.json's RepetitionTime, else the "
                   "header's pixdim[4])",
                   .min = 0.0, .max = INFINITY, .bounds = CLI_BOUNDS_OPEN, .missing = "%o needs seconds",
                   .invalid = "--tr needs a positive number of seconds"),
        CLI_FLAG(0, "slice-timing", &o.slice_timing,
                 "delay = the sidecar's SliceTiming of the region's centre slice"),
        CLI_END};
    const cli_command cmd = {"extract", usage, description, footer, options, 0};
    int npos;
    int prc0 = cli_options_parse(&cmd, argc, argv, &npos);
    if (prc0)
        return prc0 == CLI_OPTIONS_HELP ? DCM_OK : prc0;
    if (npos > 1)
        return cli_fail("extract", DCM_ERR_USAGE, "one BOLD image at a time ('%s' is extra)", argv[2]);
    if (npos)
        o.bold = argv[1];
    if (!o.bold)
        return cli_fail("extract", DCM_ERR_USAGE, "no BOLD image given (see dcm extract --help)");
    if (o.all_labels && !o.atlas)
        return cli_fail("extract", DCM_ERR_USAGE, "--all-labels needs --atlas ATLAS.nii");
    if (!o.mask && !o.atlas && !o.sphere)
        return cli_fail("extract", DCM_ERR_USAGE, "no region: give --mask, --atlas with --label, "
                        "or --sphere X,Y,Z,R");
    if (o.mask && o.atlas && !o.all_labels)
        return cli_fail("extract", DCM_ERR_USAGE, "give --mask or --atlas, not both");
    if (o.labels && !o.all_labels)
        return cli_fail("extract", DCM_ERR_USAGE, "--labels needs --all-labels");
    if (o.all_labels) {
        const char *bad = have_label ? "--label" : o.sphere ? "--sphere"
                        : o.name ? "--name" : o.slice_timing ? "--slice-timing" : NULL;
        if (bad)
            return cli_fail("extract", DCM_ERR_USAGE, "--all-labels takes no %s (%s)", bad,
                            !strcmp(bad, "--name") ? "the columns are named from --labels, else label_N"
                            : !strcmp(bad, "--slice-timing") ? "one delay per region: run extract per "
                              "region for slice timing" : "every label of the atlas is extracted");
    } else {
        if (o.atlas && !have_label)
            return cli_fail("extract", DCM_ERR_USAGE, "--atlas needs --label K");
        if (have_label && !o.atlas)
            return cli_fail("extract", DCM_ERR_USAGE, "--label needs --atlas ATLAS.nii");
        if (!o.name || !o.name[0])
            return cli_fail("extract", DCM_ERR_USAGE, "no region name: add --name NAME");
        /* the name becomes a spec's region: the same rule as at load (':',
           '->', white space at the ends, control characters), and no comma */
        const char *why = strchr(o.name, ',') ? "names here may not hold commas" : dcm_name_problem(o.name);
        if (why)
            return cli_fail("extract", DCM_ERR_USAGE, "--name '%s': %s", o.name, why);
    }
    if (!prefix)
        return cli_fail("extract", DCM_ERR_USAGE, "no output prefix: add -o PREFIX");
    if (no_hpf && have_hpf)
        return cli_fail("extract", DCM_ERR_USAGE, "give --hpf or --no-hpf, not both");
    if (no_hpf)
        o.hpf = 0.0;
    if (!!o.confounds != !!columns)
        return cli_fail("extract", DCM_ERR_USAGE, o.confounds
                        ? "--confounds needs --columns a,b,... (the columns to regress out)"
                        : "--columns needs --confounds FILE.tsv");
    int prc = plan_outputs(&o, prefix);
    if (prc)
        return prc;
    char *colbuf = NULL;
    if (columns) {
        colbuf = strdup(columns);
        if (!colbuf || split_columns(colbuf, &o.columns, &o.ncolumns)) {
            free(colbuf);
            return cli_fail("extract", DCM_ERR_SYSTEM, "out of memory");
        }
        if (o.ncolumns == 0) {
            free(o.columns);
            free(colbuf);
            return cli_fail("extract", DCM_ERR_USAGE, "--columns lists no column name");
        }
    }
    dcm_error err = {0, ""};
    if (o.all_labels) {
        int arc = run_all_labels(&o, prefix, &err);
        free(o.columns);
        free(colbuf);
        return arc ? cli_report("extract", &err) : DCM_OK;
    }
    io_extract_result r;
    int rc = io_extract_run(&o, &r, &err);
    if (rc == DCM_OK) {
        if (r.warning[0])
            fprintf(stderr, "dcm extract: warning: %s\n", r.warning);
        rc = io_extract_write(prefix, &o, &r, &err);
    }
    if (rc == DCM_OK) {
        printf("%s: %s, %d voxels (%d left out), centre (%.1f, %.1f, %.1f) mm, %s explains %.1f%% "
               "of the variance, TR %g s, %d confound column%s -> %s.tsv\n",
               o.bold, o.name, r.nvox, r.excluded, r.centre_mm[0], r.centre_mm[1], r.centre_mm[2],
               o.summary == IO_SUMMARY_MEAN ? "the mean" : "the eigenvariate", 100.0 * r.explained,
               r.tr, r.nx0, r.nx0 == 1 ? "" : "s", prefix);
        if (r.have_delay)
            printf("  slice %d acquired at %.4g s: use \"delays\" %.4g for %s\n", r.slice, r.delay,
                   r.delay, o.name);
    }
    io_extract_result_free(&r);
    free(o.columns);
    free(colbuf);
    return rc ? cli_report("extract", &err) : DCM_OK;
}
