/* cmd_peb_space.h — `dcm peb --models SPACE.json [--families FAMILIES.json]`:
 * the hypothesis space of reduced group models over a PEB (SPM's
 * spm_dcm_peb_bmc with a model space) and families of them
 * (spm_dcm_peb_bmc_fam). cmd_peb.c fits the PEB and hands it here.
 *
 * Contract
 * - Reads the two JSON files (formats in MANUAL 12.6), matches every
 *   parameter named there against the PEB's parameters by name (wildcards
 *   as `--params`), scores the joint space with dcm_peb_space /
 *   dcm_peb_families, prints the tables (unless as_json) and adds
 *   "model_space" and "families" to o.
 * - Returns an exit status; every error message names the file, the model
 *   or family and what to fix (exit 2 for bad files, 3 numerical, 4 memory).
 */
#ifndef CMD_PEB_SPACE_H
#define CMD_PEB_SPACE_H

#include <jansson.h>

#include "dcm/dcm_api.h"
#include "io/io_pnames.h"

typedef struct {
    const char *models_path;   /* SPACE.json */
    const char *families_path; /* FAMILIES.json or NULL */
    const dcm_peb_result *P;   /* the fitted PEB */
    const double *X;           /* nsub x nx design, row-major */
    int nsub;
    char *const *covariates;   /* nx names (the design's header) */
    const double *pE, *pV;     /* first-level prior means and variances (all parameters) */
    double alpha;              /* M.alpha */
    const io_pname_space *S;   /* the names of the first level's parameters */
} peb_space_input;

int peb_space_report(const peb_space_input *in, int as_json, json_t *o);

/* The same files read and checked against the PEB's parameters (sel,
 * nsel: their indices in the first level) before the PEB is fitted, so
 * that a bad file fails at once; prints nothing but the error. */
int peb_space_check(const char *models_path, const char *families_path, const io_pname_space *S,
                    const int *sel, int nsel);

#endif
