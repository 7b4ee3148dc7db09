/* io_events.c — BIDS events to micro-time inputs (see io_events.h). */
#include "io/io_events.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_tsv.h"

static int find_col(const io_text_table *t, const char *name)
{
    for (int c = 0; c < t->cols; c++)
        if (strcmp(t->cells[c], name) == 0)
            return c;
    return -1;
}

static int event_number(const char *path, const io_text_table *t, int r, int c,
                        const char *what, double *x, dcm_error *err)
{
    const char *cell = t->cells[(size_t)r * t->cols + c];
    int k = io_parse_number(cell, x);
    if (k == 1)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s, line %d, column %d (\"%s\"): \"%s\" is not a number of seconds",
                             path, t->line[r], c + 1, what, cell);
    if (k == 2)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s, line %d, column %d (\"%s\"): \"%s\" is not finite",
                             path, t->line[r], c + 1, what, cell);
    if (*x < 0.0)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s, line %d, column %d (\"%s\"): %s is negative; %ss must be >= 0 seconds",
                             path, t->line[r], c + 1, what, cell, what);
    return DCM_OK;
}

/* Warnings about the timing of the events of the model's inputs. */
static int timing_warnings(const char *path, double TR, int v, int m, char *const *input_names,
                           const int *late, const int *over, double last_onset, double last_end,
                           int nevents, dcm_warnings *w)
{
    const double T = v * TR;
    int rc = DCM_OK;
    for (int j = 0; j < m; j++) {
        if (late[j])
            rc |= dcm_warnings_add(w, "%s: %d \"%s\" event%s start%s after the last scan (%d scans "
                                   "x TR %g s = %g s) and %s left out; is the TR right?",
                                   path, late[j], input_names[j], late[j] == 1 ? "" : "s",
                                   late[j] == 1 ? "s" : "", v, TR, T,
                                   late[j] == 1 ? "is" : "are");
        if (over[j])
            rc |= dcm_warnings_add(w, "%s: %d \"%s\" event%s end%s more than one TR after the last "
                                   "scan (%g s) and %s cut there; are the TR and the durations (in seconds) "
                                   "right?",
                                   path, over[j], input_names[j], over[j] == 1 ? "" : "s",
                                   over[j] == 1 ? "s" : "", T, over[j] == 1 ? "is" : "are");
    }
    /* onsets written in scans: every event ends within the first v
       seconds (the run read as scans) while, multiplied by the TR, they
       would reach the second half of the run. Only meaningful when TR is
       well above 1 s (otherwise seconds and scans hardly differ). */
    if (nevents >= 2 && TR >= 1.5 && last_end <= v + 1.0 && last_onset * TR >= T / 2.0)
        rc |= dcm_warnings_add(w, "%s: all events lie in the first %.0f s of the %.0f s run (%.0f %%), "
                               "but read as scan numbers they would spread over the whole run: are "
                               "the onsets in scans? BIDS onsets and durations are in seconds "
                               "(multiply scan numbers by the TR, %g s)",
                               path, last_end, T, 100.0 * last_end / T, TR);
    return rc ? DCM_ERR_SYSTEM : DCM_OK;
}

int io_events_to_microtime(const char *path, double TR, int v, int m,
                           char *const *input_names, double *u, dcm_warnings *warnings,
                           dcm_error *err)
{
    return io_events_to_microtime_rule(path, TR, v, m, input_names, u, warnings,
                                       IO_EVENTS_SPM, err);
}

int io_events_to_microtime_rule(const char *path, double TR, int v, int m,
                                char *const *input_names, double *u, dcm_warnings *warnings,
                                int rule, dcm_error *err)
{
    if (!isfinite(TR) || TR <= 0.0)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: TR must be positive to place events (TR = %g)",
                             path, TR);
    if (v < 1 || m < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: need at least one scan and one input", path);
    io_text_table t;
    int rc = io_text_read(path, &t, err);
    if (rc)
        return rc;
    rc = io_events_table_to_microtime(path, &t, TR, v, m, input_names, u, warnings, rule, err);
    io_text_free(&t);
    return rc;
}

int io_events_table_to_microtime(const char *path, const io_text_table *tp, double TR, int v,
                                 int m, char *const *input_names, double *u,
                                 dcm_warnings *warnings, int rule, dcm_error *err)
{
    if (!isfinite(TR) || TR <= 0.0)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: TR must be positive to place events (TR = %g)",
                             path, TR);
    if (v < 1 || m < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: need at least one scan and one input", path);
    if (tp->rows < 1)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: no header naming the columns \"onset\", "
                             "\"duration\" and \"trial_type\"", path);
    const io_text_table t = *tp;
    int rc = DCM_OK;
    int c_on = find_col(&t, "onset"), c_dur = find_col(&t, "duration"),
        c_tt = find_col(&t, "trial_type");
    if (c_on < 0 || c_dur < 0 || c_tt < 0) {
        rc = dcm_error_set(err, DCM_ERR_INPUT,
                           "%s, line %d: the header must name the columns \"onset\", \"duration\" and "
                           "\"trial_type\" (missing \"%s\"; tab-separated BIDS events)",
                           path, t.line[0],
                           c_on < 0 ? "onset" : c_dur < 0 ? "duration" : "trial_type");
        return rc;
    }
    const int nu = v * MODEL_DCM_MICROTIME;
    const double dt = TR / MODEL_DCM_MICROTIME;
    memset(u, 0, sizeof(double) * (size_t)nu * (size_t)m);
    int *count = calloc((size_t)m, sizeof(int));
    int *late = calloc((size_t)m, sizeof(int)), *over = calloc((size_t)m, sizeof(int));
    double last_onset = 0.0, last_end = 0.0;
    int nevents = 0;
    if (!count || !late || !over) {
        free(count);
        free(late);
        free(over);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory", path);
    }
    for (int r = 1; r < t.rows && rc == DCM_OK; r++) {
        const char *type = t.cells[(size_t)r * t.cols + c_tt];
        int j;
        for (j = 0; j < m; j++)
            if (strcmp(type, input_names[j]) == 0)
                break;
        if (j == m)
            continue;   /* a trial type the model does not use */
        double onset, dur;
        if ((rc = event_number(path, &t, r, c_on, "onset", &onset, err)) != DCM_OK)
            break;
        if ((rc = event_number(path, &t, r, c_dur, "duration", &dur, err)) != DCM_OK)
            break;
        double k0 = round(onset / dt), k1 = round((onset + dur) / dt);
        nevents++;
        last_onset = fmax(last_onset, onset);
        last_end = fmax(last_end, onset + dur);
        if (k0 > nu - 1) {
            late[j]++;
            continue;   /* after the last scan */
        }
        if (onset + dur > v * TR + TR)
            over[j]++;
        if (rule == IO_EVENTS_TAPAS) {   /* [k0, k1), set to 1 (tapas_rdcm's DCM.U.u) */
            for (int k = (int)k0; k < (int)k1 && k < nu; k++)
                u[(size_t)k * m + j] = 1.0;
            count[j]++;
            continue;
        }
        if (k1 > nu - 1)
            k1 = nu - 1;
        for (int k = (int)k0; k <= (int)k1; k++)
            u[(size_t)k * m + j] += 1.0;
        count[j]++;
    }
    if (rc == DCM_OK)
        for (int j = 0; j < m; j++)
            if (count[j] == 0) {
                char types[512];
                size_t len = 0;
                types[0] = '\0';
                for (int r = 1; r < t.rows && len < sizeof types - 64; r++) {
                    const char *type = t.cells[(size_t)r * t.cols + c_tt];
                    int seen = 0;
                    for (int q = 1; q < r && !seen; q++)
                        seen = strcmp(type, t.cells[(size_t)q * t.cols + c_tt]) == 0;
                    if (!seen)
                        len += (size_t)snprintf(types + len, sizeof types - len, "%s\"%s\"",
                                                len ? ", " : "", type);
                }
                rc = dcm_error_set(err, DCM_ERR_INPUT,
                                   "%s: input \"%s\" has no events within the %d scans (%g s); "
                                   "trial types in the file: %s",
                                   path, input_names[j], v, v * TR, len ? types : "none");
                break;
            }
    if (rc == DCM_OK && warnings &&
        timing_warnings(path, TR, v, m, input_names, late, over, last_onset, last_end, nevents,
                        warnings))
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory", path);
    free(count);
    free(late);
    free(over);
    return rc;
}
