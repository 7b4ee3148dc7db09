/* cmd_extract.c — `dcm extract BOLD.nii ... -o PREFIX`: a region's time
 * series from 4D images, as SPM's VOI extraction (io/io_extract.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/cli/cli.h"
#include "io/io_atomic.h"
#include "io/io_extract.h"

static const char *help =
    "usage: dcm extract BOLD.nii[.gz] REGION --name NAME -o PREFIX [options]\n"
    "\n"
    "Extract one region's time series from a 4D BOLD image (NIfTI-1, NIfTI-2,\n"
    ".nii.gz or ANALYZE .hdr/.img) as SPM does for a VOI: regress the confounds\n"
    "(constant, DCT high-pass, chosen columns) out of every voxel, then take the\n"
    "principal eigenvariate (or the mean). Writes, atomically:\n"
    "  PREFIX.tsv            the region's time series, one column named NAME\n"
    "  PREFIX_confounds.tsv  the confound matrix X0 used (for the spec's \"confounds\")\n"
    "  PREFIX.json           voxels, centre (mm), variance explained, TR, delay\n"
    "\n"
    "region (one of, or a mask/atlas combined with a sphere = their intersection):\n"
    "  --mask MASK.nii       the non-zero voxels of a mask on the BOLD grid\n"
    "  --atlas ATLAS.nii --label K   the voxels of an atlas equal to label K\n"
    "  --sphere X,Y,Z,R      voxels within R mm of (X, Y, Z) mm (world coordinates\n"
    "                        through the sform, else the qform)\n"
    "\n"
    "options:\n"
    "  --name NAME           region name (required)\n"
    "  -o, --output PREFIX   output prefix (required)\n"
    "  --confounds FILE.tsv  a table with a header (e.g. fMRIPrep's *_desc-confounds_timeseries.tsv)\n"
    "  --columns a,b,...     its columns to regress out (required with --confounds)\n"
    "  --hpf SECONDS         high-pass cutoff (default 128, as SPM)\n"
    "  --no-hpf              no high-pass basis (constant and chosen columns only)\n"
    "  --summary eigen|mean  principal eigenvariate (default, as SPM) or mean\n"
    "  --tr SECONDS          repetition time (default: the BIDS sidecar BOLD.json's\n"
    "                        RepetitionTime, else the header's pixdim[4])\n"
    "  --slice-timing        delay = the sidecar's SliceTiming of the region's centre slice\n"
    "  -h, --help            this help\n"
    "\n"
    "example:\n"
    "  dcm extract sub-01_task-att_bold.nii.gz --sphere 44,-72,0,8 --name V5 \\\n"
    "      --confounds sub-01_task-att_desc-confounds_timeseries.tsv \\\n"
    "      --columns trans_x,trans_y,trans_z,rot_x,rot_y,rot_z -o V5\n";

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

int cmd_extract(int argc, char **argv)
{
    io_extract_opts o;
    memset(&o, 0, sizeof o);
    o.hpf = 128.0;
    o.summary = IO_SUMMARY_EIGEN;
    const char *prefix = NULL;
    char *columns = NULL;
    int no_hpf = 0, have_hpf = 0, have_label = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int more = i + 1 < argc;
#define NEED_ARG(what)                                                                   \
    do {                                                                                 \
        if (!more)                                                                       \
            return cli_fail("extract", DCM_ERR_USAGE, "%s needs %s", a, what);           \
        i++;                                                                             \
    } while (0)
        if (cli_is_help(a)) {
            fputs(help, stdout);
            return DCM_OK;
        } else if (!strcmp(a, "--mask")) {
            NEED_ARG("a mask image");
            o.mask = argv[i];
        } else if (!strcmp(a, "--atlas")) {
            NEED_ARG("an atlas image");
            o.atlas = argv[i];
        } else if (!strcmp(a, "--label")) {
            NEED_ARG("a whole number");
            long k;
            if (cli_parse_int(argv[i], -2147483647L, 2147483647L, &k))
                return cli_fail("extract", DCM_ERR_USAGE, "--label needs a whole number, not '%s'",
                                argv[i]);
            o.label = k;
            have_label = 1;
        } else if (!strcmp(a, "--sphere")) {
            NEED_ARG("X,Y,Z,R in mm");
            double c[4];
            if (parse_sphere(argv[i], c) || !(c[3] > 0))
                return cli_fail("extract", DCM_ERR_USAGE, "--sphere needs X,Y,Z,R in mm with R > 0 "
                                "(e.g. 44,-72,0,8), not '%s'", argv[i]);
            o.sphere = 1;
            memcpy(o.centre, c, sizeof o.centre);
            o.radius = c[3];
        } else if (!strcmp(a, "--name")) {
            NEED_ARG("a region name");
            o.name = argv[i];
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            NEED_ARG("an output prefix");
            prefix = argv[i];
        } else if (!strcmp(a, "--confounds")) {
            NEED_ARG("a TSV file");
            o.confounds = argv[i];
        } else if (!strcmp(a, "--columns")) {
            NEED_ARG("a comma-separated list of column names");
            columns = argv[i];
        } else if (!strcmp(a, "--hpf")) {
            NEED_ARG("a cutoff in seconds");
            if (cli_parse_double(argv[i], &o.hpf) || !(o.hpf > 0))
                return cli_fail("extract", DCM_ERR_USAGE, "--hpf needs a positive number of seconds");
            have_hpf = 1;
        } else if (!strcmp(a, "--no-hpf")) {
            no_hpf = 1;
        } else if (!strcmp(a, "--summary")) {
            NEED_ARG("eigen or mean");
            if (!strcmp(argv[i], "eigen") || !strcmp(argv[i], "eigenvariate"))
                o.summary = IO_SUMMARY_EIGEN;
            else if (!strcmp(argv[i], "mean"))
                o.summary = IO_SUMMARY_MEAN;
            else
                return cli_fail("extract", DCM_ERR_USAGE, "--summary takes 'eigen' or 'mean'");
        } else if (!strcmp(a, "--tr")) {
            NEED_ARG("seconds");
            if (cli_parse_double(argv[i], &o.tr) || !(o.tr > 0))
                return cli_fail("extract", DCM_ERR_USAGE, "--tr needs a positive number of seconds");
        } else if (!strcmp(a, "--slice-timing")) {
            o.slice_timing = 1;
        } else if (a[0] == '-' && a[1]) {
            return cli_fail("extract", DCM_ERR_USAGE, "unknown option '%s' (see dcm extract --help)", a);
        } else if (!o.bold) {
            o.bold = a;
        } else {
            return cli_fail("extract", DCM_ERR_USAGE, "one BOLD image at a time ('%s' is extra)", a);
        }
#undef NEED_ARG
    }
    if (!o.bold)
        return cli_fail("extract", DCM_ERR_USAGE, "no BOLD image given (see dcm extract --help)");
    if (!o.mask && !o.atlas && !o.sphere)
        return cli_fail("extract", DCM_ERR_USAGE, "no region: give --mask, --atlas with --label, "
                        "or --sphere X,Y,Z,R");
    if (o.mask && o.atlas)
        return cli_fail("extract", DCM_ERR_USAGE, "give --mask or --atlas, not both");
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
