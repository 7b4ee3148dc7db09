/* test_bids.c — `dcm bids` end to end on a synthetic BIDS + fMRIPrep-like
 * dataset written here (NIfTI through nifticlib): 10 participants, three
 * spherical regions whose voxels carry a network simulated by `dcm
 * simulate` (V1 -> V2 -> V3 driven at V1), a participants.tsv covariate
 * that strengthens V1 -> V2. Checks: RFX picks the generating model
 * (xp > 0.9), PEB finds the covariate on A:V1->V2, the BIDS layout, a
 * second participant run fits nothing, and bad datasets (missing events,
 * TR mismatch, unknown atlas label, missing confounds column) fail with
 * the file named. */
#include <nifti2_io.h>

#include "tests/test_util.h"

#define NSUB 10
#define NV 100
#define NX 10
#define NY 10
#define NZ 6

static char tmp[256], out[1 << 18];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char args[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return test_dcm(args, out, sizeof out);
}

static void put(const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    for (char *s = path + strlen(tmp) + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(path, 0777);
            *s = '/';
        }
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static unsigned rng = 12345;
static double urand(void)
{
    rng = rng * 1103515245u + 12345u;
    return ((rng >> 8) & 0xffff) / 65536.0;
}
static double nrand(void)
{
    double u = urand() + 1e-9, v = urand();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* 4 mm voxels, origin so that voxel (i,j,k) is at (4i-20, 4j-20, 4k-12) mm */
static void write_grid(const char *rel, int nx, int ny, int nz, double vox, int nt, const float *x,
                       double tr)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    int64_t dims[8] = {nt > 1 ? 4 : 3, nx, ny, nz, nt, 1, 1, 1};
    nifti_image *nim = nifti_make_new_nim(dims, DT_FLOAT32, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(nim);
    nim->data = (void *)x;
    nim->dx = nim->dy = nim->dz = (float)vox;
    nim->pixdim[1] = nim->pixdim[2] = nim->pixdim[3] = (float)vox;
    nim->dt = nim->pixdim[4] = tr;
    nim->xyz_units = NIFTI_UNITS_MM;
    nim->time_units = NIFTI_UNITS_SEC;
    nim->sform_code = NIFTI_XFORM_MNI_152;
    memset(&nim->sto_xyz, 0, sizeof nim->sto_xyz);
    nim->sto_xyz.m[0][0] = nim->sto_xyz.m[1][1] = nim->sto_xyz.m[2][2] = (float)vox;
    nim->sto_xyz.m[0][3] = -20;
    nim->sto_xyz.m[1][3] = -20;
    nim->sto_xyz.m[2][3] = -12;
    nim->sto_xyz.m[3][3] = 1;
    nim->qform_code = 0;
    CU_ASSERT_EQUAL_FATAL(nifti_set_filenames(nim, path, 0, 1), 0);
    nifti_image_write(nim);
    nim->data = NULL;
    nifti_image_free(nim);
}

static void write_nii(const char *rel, int nt, const float *x, double tr)
{
    write_grid(rel, NX, NY, NZ, 4, nt, x, tr);
}

static const double centre_vox[3][3] = {{2, 2, 2}, {7, 3, 3}, {4, 7, 3}};

static double *read_ts(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    double *y = malloc(sizeof(double) * NV * 3);
    char line[4096];
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof line, f)); /* header */
    for (int t = 0; t < NV; t++)
        CU_ASSERT_EQUAL(fscanf(f, "%lf %lf %lf", &y[t], &y[NV + t], &y[2 * NV + t]), 3);
    fclose(f);
    return y;
}

static const char *space = "MNI152NLin2009cAsym";

static void write_subject(int s, double cov)
{
    char rel[512], text[8192];
    /* events: 16 s blocks of "stim" every 32 s; "other" never drives */
    char *p = text;
    p += sprintf(p, "onset\tduration\ttrial_type\n");
    for (int b = 0; b * 32 < NV * 2; b++)
        p += sprintf(p, "%d\t16\tstim\n%d\t2\tother\n", b * 32 + 4, b * 32 + 24);
    snprintf(rel, sizeof rel, "bids/sub-%02d/func/sub-%02d_task-vis_events.tsv", s, s);
    put(rel, text);
    snprintf(rel, sizeof rel, "bids/sub-%02d/func/sub-%02d_task-vis_bold.json", s, s);
    put(rel, "{\"RepetitionTime\": 2.0, \"TaskName\": \"vis\"}\n");
    /* the network */
    snprintf(text, sizeof text,
             "{\"TR\": 2, \"TE\": 0.04, \"scans\": %d, \"timeseries\": \"none.tsv\",\n"
             " \"regions\": [\"V1\", \"V2\", \"V3\"], \"events\": \"%s/bids/sub-%02d/func/sub-%02d_task-vis_events.tsv\",\n"
             " \"inputs\": [\"stim\"], \"a\": [\"V1 -> V2\", \"V2 -> V3\"], \"c\": {\"stim\": [\"V1\"]}}\n",
             NV, tmp, s, s);
    snprintf(rel, sizeof rel, "sim/gen_%02d.json", s);
    put(rel, text);
    snprintf(text, sizeof text, "{\"A\": [[0, 0, 0], [%.4f, 0, 0], [0, %.4f, 0]], \"C\": [[%.4f], [0], [0]]}\n",
             0.4 + 0.4 * cov + 0.03 * nrand(), 0.4 + 0.03 * nrand(), 0.8 + 0.03 * nrand());
    snprintf(rel, sizeof rel, "sim/truth_%02d.json", s);
    put(rel, text);
    CU_ASSERT_EQUAL_FATAL(run("simulate %s/sim/gen_%02d.json --params %s/sim/truth_%02d.json --snr 4 --seed %d "
                              "-o %s/sim/ts_%02d.tsv", tmp, s, tmp, s, 100 + s, tmp, s), 0);
    snprintf(rel, sizeof rel, "sim/ts_%02d.tsv", s);
    double *y = read_ts(rel);
    /* voxels: 100 + weight x region signal + small noise */
    float *img = malloc(sizeof(float) * NX * NY * NZ * NV), *mask = malloc(sizeof(float) * NX * NY * NZ);
    for (int k = 0; k < NZ; k++)
        for (int j = 0; j < NY; j++)
            for (int i = 0; i < NX; i++) {
                size_t v = i + NX * (j + NY * (size_t)k);
                mask[v] = 1;
                int region = -1;
                for (int r = 0; r < 3; r++) {
                    double d2 = 16 * (pow(i - centre_vox[r][0], 2) + pow(j - centre_vox[r][1], 2) +
                                      pow(k - centre_vox[r][2], 2));
                    if (d2 <= 36)
                        region = r;
                }
                double w = 1.0 + 0.1 * ((i + j + k) % 3);
                for (int t = 0; t < NV; t++)
                    img[v + (size_t)NX * NY * NZ * t] =
                        (float)(100 + (region >= 0 ? w * y[region * NV + t] : 0) + 0.05 * nrand());
            }
    free(y);
    snprintf(rel, sizeof rel, "bids/derivatives/fmriprep/sub-%02d/func/sub-%02d_task-vis_space-%s_desc-preproc_bold.nii.gz",
             s, s, space);
    put(rel, "");
    write_nii(rel, NV, img, 2.0);
    snprintf(rel, sizeof rel, "bids/derivatives/fmriprep/sub-%02d/func/sub-%02d_task-vis_space-%s_desc-preproc_bold.json",
             s, s, space);
    put(rel, "{\"RepetitionTime\": 2.0, \"SkullStripped\": false}\n");
    snprintf(rel, sizeof rel, "bids/derivatives/fmriprep/sub-%02d/func/sub-%02d_task-vis_space-%s_desc-brain_mask.nii.gz",
             s, s, space);
    put(rel, "");
    write_nii(rel, 1, mask, 0);
    free(img);
    free(mask);
    /* confounds as fMRIPrep writes them: n/a in the first row of derivatives */
    static char conf[1 << 16];
    p = conf;
    p += sprintf(p, "global_signal\tcsf\twhite_matter\tframewise_displacement\ttrans_x\ttrans_y\ttrans_z\trot_x\trot_y\trot_z\ttrans_x_derivative1\n");
    for (int t = 0; t < NV; t++) {
        p += sprintf(p, "%.5f\t%.5f\t%.5f\t", 100 + nrand(), 50 + nrand(), 80 + nrand());
        p += t ? sprintf(p, "%.5f", 0.1 * urand()) : sprintf(p, "n/a");
        for (int c = 0; c < 6; c++)
            p += sprintf(p, "\t%.6f", 0.01 * nrand());
        p += t ? sprintf(p, "\t%.5f\n", 0.01 * nrand()) : sprintf(p, "\tn/a\n");
    }
    snprintf(rel, sizeof rel, "bids/derivatives/fmriprep/sub-%02d/func/sub-%02d_task-vis_desc-confounds_timeseries.tsv",
             s, s);
    put(rel, conf);
}

static const char *models_json =
    "{\"space\": \"MNI152NLin2009cAsym\",\n"
    " \"regions\": [{\"name\": \"V1\", \"sphere\": [-12, -12, -4], \"radius\": 6},\n"
    "             {\"name\": \"V2\", \"sphere\": [8, -8, 0], \"radius\": 6},\n"
    "             {\"name\": \"V3\", \"sphere\": [-4, 8, 0], \"radius\": 6}],\n"
    " \"inputs\": [\"stim\"], \"confounds\": [\"motion6\", \"fd\"],\n"
    " \"models\": [{\"name\": \"forward\", \"a\": [\"V1 -> V2\", \"V2 -> V3\"], \"c\": {\"stim\": [\"V1\"]}},\n"
    "            {\"name\": \"backward\", \"a\": [\"V3 -> V2\", \"V2 -> V1\"], \"c\": {\"stim\": [\"V3\"]}}],\n"
    " \"group\": {\"model\": \"forward\", \"parameters\": [\"A\"], \"covariates\": [\"age\"], \"maxit\": 256}}\n";

static void make_dataset(void)
{
    static int made = 0;
    if (made)
        return;
    made = 1;
    put("bids/dataset_description.json", "{\"Name\": \"synthetic\", \"BIDSVersion\": \"1.8.0\"}\n");
    char parts[4096], *p = parts;
    p += sprintf(p, "participant_id\tage\tsex\n");
    for (int s = 1; s <= NSUB; s++) {
        double cov = (s % 2) ? 0.5 : -0.5;   /* the "age" group, centred */
        p += sprintf(p, "sub-%02d\t%g\t%s\n", s, 40 + 20 * cov, s % 3 ? "F" : "M");
        write_subject(s, cov);
    }
    put("bids/participants.tsv", parts);
    put("models.json", models_json);
}

static void test_end_to_end(void)
{
    make_dataset();
    int rc = run("bids %s/bids %s/out participant --models %s/models.json -j 2 -q", tmp, tmp, tmp);
    printf("\n%.3000s", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT(strstr(out, "10 runs x 2 models: 20 fitted, 0 already there, 0 failed") != NULL);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/out", tmp);
    json_t *d = test_load_in(dir, "dataset_description.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(d, "DatasetType")), "derivative");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(json_object_get(d, "GeneratedBy"), 0),
                                                             "Name")), "dcm");
    json_decref(d);
    snprintf(dir, sizeof dir, "%s/out/sub-03/func", tmp);
    char name[512];
    snprintf(name, sizeof name, "sub-03_task-vis_space-%s_desc-forward_dcm.json", space);
    CU_ASSERT(test_exists_in(dir, name));
    snprintf(name, sizeof name, "sub-03_task-vis_space-%s_desc-backward_dcmspec.json", space);
    CU_ASSERT(test_exists_in(dir, name));
    snprintf(name, sizeof name, "sub-03_task-vis_space-%s_desc-dcmregions_timeseries.json", space);
    json_t *side = test_load_in(dir, name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(side);
    /* FD and trans_x... : one n/a (FD's first row) replaced by 0 */
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(side, "ConfoundNAReplacedByZero")), 1);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(side, "ConfoundColumns")), 7);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_array_get(json_object_get(side, "Regions"), 0),
                                                       "voxels")), 19);
    json_decref(side);

    /* resumable: a second run fits nothing */
    CU_ASSERT_EQUAL(run("bids %s/bids %s/out participant --models %s/models.json -q --participant-label sub-01,02",
                        tmp, tmp, tmp), 0);
    CU_ASSERT(strstr(out, "2 runs x 2 models: 0 fitted, 4 already there") != NULL);
    /* BIDS-Apps' spelling: several labels after one --participant_label */
    CU_ASSERT_EQUAL(run("bids %s/bids %s/out participant --models %s/models.json -q --participant_label 03 sub-04 05",
                        tmp, tmp, tmp), 0);
    CU_ASSERT(strstr(out, "3 runs x 2 models: 0 fitted, 6 already there") != NULL);
    CU_ASSERT_EQUAL(run("bids %s/bids %s/out participant --models %s/models.json -q --participant-label 42",
                        tmp, tmp, tmp), 2);
    CU_ASSERT(strstr(out, "no preprocessed BOLD for participant sub-42") != NULL);

    rc = run("bids %s/bids %s/out group --models %s/models.json", tmp, tmp, tmp);
    printf("%.3000s", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    snprintf(dir, sizeof dir, "%s/out/group", tmp);
    json_t *r = test_load_in(dir, "dcm_rfx.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    double xp = json_number_value(json_array_get(json_object_get(r, "xp"), 0));
    printf("  RFX: xp(forward, the generating model) = %.4f\n", xp);
    CU_ASSERT(xp > 0.9);
    json_decref(r);
    json_t *peb = test_load_in(dir, "dcm_desc-forward_peb.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(peb);
    size_t i;
    json_t *e;
    int found = 0;
    json_array_foreach(json_object_get(peb, "effects"), i, e) {
        const char *par = json_string_value(json_object_get(e, "parameter"));
        const char *cov = json_string_value(json_object_get(e, "covariate"));
        double m = json_number_value(json_object_get(e, "mean"));
        double prob = json_number_value(json_object_get(e, "probability"));
        if (strcmp(cov, "age"))
            continue;
        if (!strcmp(par, "A:V1->V2")) {
            found = 1;
            printf("  PEB: age on %s: %.4f per year (true 0.02), P = %.4f\n", par, m, prob);
            CU_ASSERT(prob > 0.95);
            CU_ASSERT(m > 0.005 && m < 0.05);
        } else if (strstr(par, "->") && strcmp(par, "A:V2->V3") == 0) {
            printf("  PEB: age on %s: %.4f, P = %.4f\n", par, m, prob);
            CU_ASSERT(prob < 0.95);
        }
    }
    CU_ASSERT(found);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(peb, "participants")), NSUB);
    CU_ASSERT(json_is_true(json_object_get(peb, "converged")));
    json_decref(peb);
    CU_ASSERT(test_exists_in(dir, "dcm_lme.tsv"));
}

/* a copy of the dataset's sub-01 with one thing broken */
static void broken_copy(const char *name)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf %s/%s && mkdir -p %s/%s/derivatives/fmriprep && cp -r %s/bids/sub-01 "
             "%s/bids/participants.tsv %s/bids/dataset_description.json %s/%s/ && cp -r "
             "%s/bids/derivatives/fmriprep/sub-01 %s/%s/derivatives/fmriprep/", tmp, name, tmp, name, tmp, tmp,
             tmp, tmp, name, tmp, tmp, name);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
}

static void test_bad_datasets(void)
{
    make_dataset();
    char path[1024];
    /* missing events */
    broken_copy("noevents");
    snprintf(path, sizeof path, "%s/noevents/sub-01/func/sub-01_task-vis_events.tsv", tmp);
    unlink(path);
    CU_ASSERT_EQUAL(run("bids %s/noevents %s/o1 participant --models %s/models.json -q", tmp, tmp, tmp), 2);
    printf("\n  %s", out);
    CU_ASSERT(strstr(out, "sub-01_task-vis_events.tsv: missing") != NULL);
    /* TR mismatch: the sidecar says 2.5 s, the header 2 s */
    broken_copy("badtr");
    snprintf(path, sizeof path, "badtr/derivatives/fmriprep/sub-01/func/sub-01_task-vis_space-%s_desc-preproc_bold.json",
             space);
    put(path, "{\"RepetitionTime\": 2.5}\n");
    CU_ASSERT_EQUAL(run("bids %s/badtr %s/o2 participant --models %s/models.json -q", tmp, tmp, tmp), 2);
    printf("  %s", out);
    CU_ASSERT(strstr(out, "TR mismatch") && strstr(out, "desc-preproc_bold.json says RepetitionTime = 2.5 s") &&
              strstr(out, "desc-preproc_bold.nii.gz says 2 s"));
    /* missing confounds column */
    broken_copy("noconf");
    put("models_acc.json", "{\"regions\": [{\"name\": \"V1\", \"sphere\": [-12, -12, -4], \"radius\": 6}],\n"
                           " \"inputs\": [\"stim\"], \"confounds\": [\"acompcor\"],\n"
                           " \"models\": [{\"name\": \"one\", \"a\": [], \"c\": {\"stim\": [\"V1\"]}}]}\n");
    CU_ASSERT_EQUAL(run("bids %s/noconf %s/o3 participant --models %s/models_acc.json -q", tmp, tmp, tmp), 2);
    printf("  %s", out);
    CU_ASSERT(strstr(out, "desc-confounds_timeseries.tsv: no column \"a_comp_cor_00\" (part of the preset "
                          "\"acompcor\")") != NULL);
    /* unknown atlas label: an atlas with labels 1..3 on its own (2 mm) grid */
    {
        float atlas[NX * NY * NZ];
        for (int v = 0; v < NX * NY * NZ; v++)
            atlas[v] = (float)(1 + v % 3);
        write_nii("atlas.nii.gz", 1, atlas, 0);
        put("atlas_dseg.tsv", "index\tname\n1\tV1\n2\tV2\n3\tV3\n");
        put("models_atlas.json", "{\"atlas\": \"atlas.nii.gz\", \"labels\": \"atlas_dseg.tsv\",\n"
                                 " \"regions\": [{\"name\": \"V1\", \"label\": \"V1\"}, {\"name\": \"V9\", \"label\": \"V9\"}],\n"
                                 " \"inputs\": [\"stim\"], \"models\": [{\"name\": \"one\", \"a\": [], \"c\": {\"stim\": [\"V1\"]}}]}\n");
        CU_ASSERT_EQUAL(run("bids %s/noconf %s/o4 participant --models %s/models_atlas.json -q", tmp, tmp, tmp), 2);
        printf("  %s", out);
        CU_ASSERT(strstr(out, "atlas_dseg.tsv: unknown atlas label \"V9\"") != NULL);
        put("models_atlas2.json", "{\"atlas\": \"atlas.nii.gz\",\n"
                                  " \"regions\": [{\"name\": \"V1\", \"label\": 1}, {\"name\": \"V9\", \"label\": 9}],\n"
                                  " \"inputs\": [\"stim\"], \"models\": [{\"name\": \"one\", \"a\": [], \"c\": {\"stim\": [\"V1\"]}}]}\n");
        CU_ASSERT_EQUAL(run("bids %s/noconf %s/o5 participant --models %s/models_atlas2.json -q", tmp, tmp, tmp), 2);
        printf("  %s", out);
        CU_ASSERT(strstr(out, "atlas.nii.gz: unknown atlas label 9") != NULL);
    }
    /* a hypothesis naming a region the models file does not have: io_spec's message, with the model */
    put("models_badedge.json", "{\"regions\": [{\"name\": \"V1\", \"sphere\": [-12, -12, -4], \"radius\": 6}],\n"
                               " \"inputs\": [\"stim\"],\n"
                               " \"models\": [{\"name\": \"bad\", \"a\": [\"V1 -> V7\"], \"c\": {\"stim\": [\"V1\"]}}]}\n");
    CU_ASSERT_EQUAL(run("bids %s/noconf %s/o7 participant --models %s/models_badedge.json -q", tmp, tmp, tmp), 2);
    printf("  %s", out);
    CU_ASSERT(strstr(out, "model \"bad\" of") && strstr(out, "V7"));
    /* usage */
    CU_ASSERT_EQUAL(run("bids %s/bids %s/o6 subject --models %s/models.json", tmp, tmp, tmp), 1);
    CU_ASSERT(strstr(out, "'participant' or 'group'") != NULL);
}


/* sessions, an atlas on another grid (2 mm) for V1, slice timing from the
 * preprocessed BOLD's sidecar */
static void test_sessions_atlas_slice_timing(void)
{
    make_dataset();
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "set -e; rm -rf %s/sesds; mkdir -p %s/sesds/derivatives/fmriprep; cd %s/sesds; "
             "cp -r ../bids/sub-01 ../bids/participants.tsv .; cp -r ../bids/derivatives/fmriprep/sub-01 derivatives/fmriprep/; "
             "for d in sub-01 derivatives/fmriprep/sub-01; do mkdir -p $d/ses-a; mv $d/func $d/ses-a/func; "
             "for f in $d/ses-a/func/*; do mv \"$f\" \"$(echo $f | sed 's|/sub-01_|/sub-01_ses-a_|')\"; done; done",
             tmp, tmp, tmp);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    char rel[512];
    snprintf(rel, sizeof rel, "sesds/derivatives/fmriprep/sub-01/ses-a/func/sub-01_ses-a_task-vis_space-%s_desc-preproc_bold.json",
             space);
    put(rel, "{\"RepetitionTime\": 2.0, \"SliceTiming\": [0, 0.33, 0.67, 1.0, 1.33, 1.67]}\n");
    /* V1's voxels on a 2 mm grid with the same origin: nearest neighbours of the BOLD voxels */
    enum { AX = 2 * NX, AY = 2 * NY, AZ = 2 * NZ };
    static float atlas[AX * AY * AZ];
    for (int k = 0; k < AZ; k++)
        for (int j = 0; j < AY; j++)
            for (int i = 0; i < AX; i++) {
                double d2 = 4 * (pow(i - 2 * centre_vox[0][0], 2) + pow(j - 2 * centre_vox[0][1], 2) +
                                 pow(k - 2 * centre_vox[0][2], 2));
                atlas[i + AX * (j + AY * k)] = d2 <= 36 ? 7 : (i > 30 ? 3 : 0);
            }
    write_grid("atlas2mm.nii.gz", AX, AY, AZ, 2, 1, atlas, 0);
    put("atlas2mm_dseg.tsv", "index\tname\n3\tother\n7\tcalcarine\n");
    put("models_ses.json",
        "{\"atlas\": \"atlas2mm.nii.gz\", \"labels\": \"atlas2mm_dseg.tsv\",\n"
        " \"regions\": [{\"name\": \"V1\", \"label\": \"calcarine\"},\n"
        "             {\"name\": \"V2\", \"sphere\": [8, -8, 0], \"radius\": 6},\n"
        "             {\"name\": \"V3\", \"sphere\": [-4, 8, 0], \"radius\": 6}],\n"
        " \"inputs\": [\"stim\"], \"confounds\": [\"motion6\"],\n"
        " \"models\": [{\"name\": \"forward\", \"a\": [\"V1 -> V2\", \"V2 -> V3\"], \"c\": {\"stim\": [\"V1\"]}}]}\n");
    int rc = run("bids %s/sesds %s/sesout participant --models %s/models_ses.json --task vis -q", tmp, tmp, tmp);
    printf("\n  %s", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char dir[512], name[512];
    snprintf(dir, sizeof dir, "%s/sesout/sub-01/ses-a/func", tmp);
    snprintf(name, sizeof name, "sub-01_ses-a_task-vis_space-%s_desc-forward_dcm.json", space);
    CU_ASSERT(test_exists_in(dir, name));
    snprintf(name, sizeof name, "sub-01_ses-a_task-vis_space-%s_desc-forward_dcmspec.json", space);
    json_t *spec = test_load_in(dir, name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(spec);
    json_t *delays = json_object_get(spec, "delays");
    CU_ASSERT_EQUAL(json_array_size(delays), 3);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_array_get(delays, 0)), 0.67, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_array_get(delays, 1)), 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_array_get(delays, 2)), 1.0, 1e-12);
    json_decref(spec);
    snprintf(name, sizeof name, "sub-01_ses-a_task-vis_space-%s_desc-dcmregions_timeseries.json", space);
    json_t *side = test_load_in(dir, name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(side);
    json_t *v1 = json_array_get(json_object_get(side, "Regions"), 0);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(v1, "voxels")), 19);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(v1, "atlas"), "label")), 7);
    json_decref(side);
    /* a task without runs */
    rc = run("bids %s/sesds %s/sesout participant --models %s/models_ses.json --task other -q", tmp, tmp, tmp);
    printf("  %s", out);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT(strstr(out, "no preprocessed BOLD") != NULL);
}

/* group covariates with n/a: an error naming participants.tsv, or the participant left out */
static void test_group_missing_covariate(void)
{
    make_dataset();
    char dir[512];
    snprintf(dir, sizeof dir, "%s/out/group", tmp);
    if (!test_exists_in(dir, "dcm_rfx.json")) {
        test_skip("needs the end-to-end test's results");
        return;
    }
    char parts[4096], *p = parts;
    p += sprintf(p, "participant_id\tage\tscore\n");
    for (int s = 1; s <= NSUB; s++)
        p += s == 4 ? sprintf(p, "sub-%02d\t%d\tn/a\n", s, 30 + s) : sprintf(p, "sub-%02d\t%d\t%d\n", s, 30 + s, s % 4);
    put("bids/participants.tsv", parts);
    put("models_score.json",
        "{\"space\": \"MNI152NLin2009cAsym\",\n"
        " \"regions\": [{\"name\": \"V1\", \"sphere\": [-12, -12, -4], \"radius\": 6},\n"
        "             {\"name\": \"V2\", \"sphere\": [8, -8, 0], \"radius\": 6},\n"
        "             {\"name\": \"V3\", \"sphere\": [-4, 8, 0], \"radius\": 6}],\n"
        " \"inputs\": [\"stim\"], \"confounds\": [\"motion6\", \"fd\"],\n"
        " \"models\": [{\"name\": \"forward\", \"a\": [\"V1 -> V2\", \"V2 -> V3\"], \"c\": {\"stim\": [\"V1\"]}},\n"
        "            {\"name\": \"backward\", \"a\": [\"V3 -> V2\", \"V2 -> V1\"], \"c\": {\"stim\": [\"V3\"]}}],\n"
        " \"group\": {\"parameters\": [\"A:V1->V2\"], \"covariates\": [\"score\"]}}\n");
    CU_ASSERT_EQUAL(run("bids %s/bids %s/out group --models %s/models_score.json", tmp, tmp, tmp), 2);
    printf("\n  %s", out);
    CU_ASSERT(strstr(out, "participants.tsv, line 5: sub-04's \"score\" is \"n/a\"") != NULL);
    CU_ASSERT_EQUAL(run("bids %s/bids %s/out group --models %s/models_score.json --exclude-missing", tmp, tmp, tmp), 0);
    CU_ASSERT(strstr(out, "sub-04 left out of PEB") != NULL);
    json_t *peb = test_load_in(dir, "dcm_desc-forward_peb.json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(peb);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(peb, "participants")), NSUB - 1);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(peb, "excluded")), 1);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(peb, "effects")), 2);   /* intercept, score */
    json_decref(peb);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/dcm-bids-XXXXXX");
    if (!mkdtemp(tmp))
        return 1;
    static const test_case cases[] = {
        {"participant + group levels recover the network and the covariate", test_end_to_end},
        {"bad datasets give errors naming the file", test_bad_datasets},
        {"sessions, an atlas on another grid, slice timing", test_sessions_atlas_slice_timing},
        {"covariates with n/a: an error, or left out when asked", test_group_missing_covariate},
        {NULL, NULL}};
    int rc = test_run("bids", cases);
    test_remove_dir(tmp);
    return rc;
}
