/* dcm_evidence.c — the sampled log evidence of a task DCM result: the
 * model re-built from its spec and handed to vl_evidence (dcm_evidence.h). */
#include "dcm/dcm_evidence.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/io_pnames.h"
#include "io/io_result.h"

static double now(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* the spec: the override, the result's "spec" as written, or that path
 * relative to the result's folder; a new string or NULL */
static char *spec_path(const char *result_path, json_t *doc, const char *override)
{
    if (override)
        return strdup(override);
    json_t *sp = json_object_get(doc, "spec");
    if (!json_is_string(sp))
        return NULL;
    const char *s = json_string_value(sp);
    if (s[0] == '/' || access(s, R_OK) == 0)
        return strdup(s);
    const char *slash = strrchr(result_path, '/');
    if (!slash)
        return strdup(s);
    size_t n = (size_t)(slash - result_path) + 1 + strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%.*s/%s", (int)(slash - result_path), result_path, s);
    if (p && access(p, R_OK) != 0) {   /* neither exists: name the one written */
        free(p);
        return strdup(s);
    }
    return p;
}

/* 1 when the re-built data are those of the result (its fingerprint) */
static int same_data(const io_result_summary *s, const double *y, int ny)
{
    if (!s->have_fingerprint)
        return 1;
    double sum = 0.0, ss = 0.0;
    for (int i = 0; i < ny; i++) {
        sum += y[i];
        ss += y[i] * y[i];
    }
    double scale = sqrt(fmax(ny * ss, 0.0)) + fabs(sum);
    return s->fingerprint[0] == ny && fabs(s->fingerprint[1] - sum) <= 1e-9 * scale &&
           fabs(s->fingerprint[2] - ss) <= 1e-9 * fabs(ss);
}

static int fill_names(dcm_evidence_out *out, const io_result_summary *s)
{
    const int np = s->np;
    out->np = np;
    out->names = calloc(np, sizeof(char *));
    out->laplace_mean = malloc(sizeof(double) * np);
    out->laplace_sd = malloc(sizeof(double) * np);
    out->prior_var = malloc(sizeof(double) * np);
    if (!out->names || !out->laplace_mean || !out->laplace_sd || !out->prior_var)
        return -1;
    out->nh = s->nh;
    if (!(out->laplace_h = malloc(sizeof(double) * s->nh)))
        return -1;
    memcpy(out->laplace_h, s->Eh, sizeof(double) * s->nh);
    io_pname_space sp = io_result_space(s);
    for (int i = 0; i < np; i++) {
        out->names[i] = io_pname_name(&sp, i);
        if (!out->names[i]) {
            char buf[32];
            snprintf(buf, sizeof buf, "p%d", i + 1);
            if (!(out->names[i] = strdup(buf)))
                return -1;
        }
        out->laplace_mean[i] = s->Ep[i];
        out->laplace_sd[i] = sqrt(fmax(s->Cp[(size_t)i * np + i], 0.0));
        out->prior_var[i] = s->pV[i];
    }
    return 0;
}

int dcm_evidence_run(const char *result_path, const char *spec_override,
                     const vl_evidence_options *o, dcm_evidence_out *out, dcm_error *err)
{
    double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    dcm_library_init();
    memset(out, 0, sizeof *out);
    io_result_summary s;
    memset(&s, 0, sizeof s);
    json_t *doc = NULL;
    dcm_problem *P = NULL;
    dcm_fmri_model FM;
    memset(&FM, 0, sizeof FM);
    void **users = NULL;
    int nthreads = o->threads < o->chains ? o->threads : o->chains;
    if (nthreads < 1)
        nthreads = 1;
    int rc = io_result_load_doc(result_path, &s, &doc, err);
    if (rc)
        goto done;
    if (s.csd || s.rdcm) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: a %s result; the sampled evidence is for task "
                           "(time-series) DCMs only", result_path, s.csd ? "spectral DCM" : "regression DCM");
        goto done;
    }
    if (!s.Cp || !s.Eh || s.nh != s.n) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: no posterior covariance (vector.posterior_cov) or "
                           "noise_log_precision to start from; estimate the model with dcm estimate",
                           result_path);
        goto done;
    }
    out->F = s.F;
    if (!(out->spec = spec_path(result_path, doc, spec_override))) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s names no spec (\"spec\" is null): give it with --spec",
                           result_path);
        goto done;
    }
    if ((rc = dcm_problem_load(out->spec, &P, err)))
        goto done;
    if (P->analysis != DCM_ANALYSIS_TASK || P->M->L.np != s.np || P->n != s.n) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: its spec %s no longer describes the model of the "
                           "result (%d parameters, %d regions there; %d and %d in the result)",
                           result_path, out->spec, P->M->L.np, P->n, s.np, s.n);
        goto done;
    }
    if (dcm_fmri_model_build(P, &FM)) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    if (!same_data(&s, FM.y, FM.vm.ny)) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: the data of its spec %s differ from those the "
                           "result was fitted to (observed_bold_scaled); re-estimate, or name the "
                           "spec with --spec", result_path, out->spec);
        goto done;
    }
    if (fill_names(out, &s) || !(users = calloc(nthreads, sizeof *users))) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
        goto done;
    }
    for (int t = 0; t < nthreads; t++)
        if (!(users[t] = dcm_fmri_user_alloc(&FM))) {
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "out of memory");
            goto done;
        }
    vl_evidence_options oo = *o;
    oo.threads = nthreads;
    char msg[512] = "";
    int vrc = vl_evidence(&FM.vm, users, FM.y, s.Ep, s.Cp, s.Eh, &oo, &out->ev, msg, sizeof msg);
    if (vrc) {
        char ctx[600];
        snprintf(ctx, sizeof ctx, "%s: sampling the evidence", result_path);
        rc = dcm_error_from_vl(vrc, ctx, msg, err);
        goto done;
    }
    out->seconds = now(CLOCK_MONOTONIC) - t0;
    out->cpu_seconds = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    rc = DCM_OK;
done:
    for (int t = 0; users && t < nthreads; t++)
        dcm_fmri_user_free(users[t]);
    free(users);
    dcm_fmri_model_free(&FM);
    dcm_problem_free(P);
    json_decref(doc);
    io_result_summary_free(&s);
    if (rc)
        dcm_evidence_out_free(out);
    return rc;
}

void dcm_evidence_out_free(dcm_evidence_out *out)
{
    if (!out)
        return;
    vl_evidence_result_free(out->ev);
    for (int i = 0; out->names && i < out->np; i++)
        free(out->names[i]);
    free(out->names);
    free(out->laplace_mean);
    free(out->laplace_sd);
    free(out->prior_var);
    free(out->laplace_h);
    free(out->spec);
    memset(out, 0, sizeof *out);
}

int dcm_evidence_file_hash(const char *path, char hex[17], dcm_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: cannot read it (%s)", path, strerror(errno));
    uint64_t h = 14695981039346656037ULL;   /* FNV-1a 64 offset basis */
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < n; i++)
            h = (h ^ buf[i]) * 1099511628211ULL;
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: read error", path);
    snprintf(hex, 17, "%016llx", (unsigned long long)h);
    return DCM_OK;
}
