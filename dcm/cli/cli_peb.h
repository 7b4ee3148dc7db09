/* cli_peb.h — what `dcm peb` shares with `dcm loo` and the PEB-of-PEBs
 * path (cmd_peb.c, cmd_loo.c, cmd_peb_pebs.c): the design table and the
 * parameter selection.
 *
 * Contract: as cli.h (messages "dcm NAME: ...", exit codes DCM_ERR_*).
 */
#ifndef DCM_CLI_PEB_H
#define DCM_CLI_PEB_H

#include "dcm/dcm_api.h"
#include "io/io_batchdir.h"
#include "io/io_pnames.h"
#include "io/io_result.h"

/* a between-subject design: header "subject<TAB>COVARIATE...", one row
 * per subject */
typedef struct {
    int nsub, nx;
    char **subjects;
    char **covariates;
    double *X; /* nsub x nx row-major */
} design;

int read_design(const char *path, design *d, dcm_error *err);
void design_free(design *d);

/* The design (rows kept to --subjects' lists when nsubjects > 0) and every
 * design subject's result for `model` in the batch folder, aligned by
 * parameter name to the first; *F their free energies. The design and the
 * folder must name the same subjects (unless --subjects chose some); fewer
 * than min_subjects is an input error. Messages say "dcm CMD: ...". The
 * caller frees B, D, the first *nR of *Rp, *Rp and *F, also on error. */
int peb_load_subjects(const char *cmd, int min_subjects, const char *outdir, const char *model,
                      const char *design_path, const char **subjects, int nsubjects, io_batchdir *B,
                      design *D, io_result_summary **Rp, int *nR, double **F);

/* Add the parameters `sel` names to mask: a name or pattern
 * (io_pname_select, SPM's B(4,4,3) included) or a bare block name as
 * SPM's fields ("A", "B"). */
int select_params(const io_pname_space *S, const char *sel, unsigned char *mask, dcm_error *err);

/* The parameters the patterns sels[0..nsels) name (select_params) that
 * R0 does not fix (prior variance > 0), in order, into sel (R0->np ints,
 * the caller's); their count in *nsel (0 is the caller's to refuse).
 * DCM_OK, or select_params's error in err. */
int peb_select(const io_result_summary *R0, const char *const *sels, int nsels, int *sel, int *nsel,
               dcm_error *err);

/* The first levels as the PEB takes them (dcm_peb_input): each subject's
 * Ep, Cp, pE and pV stacked, np per subject. A regression DCM keeps no
 * covariances between parameters (Cp NULL): then only the nsel selected
 * parameters are stacked, with their posterior variances (Vp) as a
 * diagonal Cp, and ksel is 0..nsel-1 (else ksel is sel). Fill with
 * peb_stack_subjects (DCM_OK, or DCM_ERR_SYSTEM out of memory); release
 * with peb_stack_free, also after a failure. */
typedef struct {
    int np;          /* values per subject: R[0].np, or nsel for regression DCM */
    int rdcm;        /* the stacked values are the selected parameters only */
    double *Ep, *Cp, *pE, *pV;
    int *ksel;       /* the selection as indices into the stacked values */
} peb_stack;
int peb_stack_subjects(const io_result_summary *R, int nsub, const int *sel, int nsel, peb_stack *s);
void peb_stack_free(peb_stack *s);
/* A PEB fitted on the stack: its selection (P->sel) back to the results'
 * parameter indices, sel as given to peb_stack_subjects */
void peb_stack_unmap(const peb_stack *s, const int *sel, dcm_peb_result *P);

/* `dcm peb` over PEB results (PEB of PEBs): argv as cmd_peb's. */
int cmd_peb_pebs(int argc, char **argv);
/* Whether `dcm peb`'s first argument names PEB results rather than a
 * batch folder (a regular file). */
int peb_inputs_are_results(int argc, char **argv);

/* Add to o's "group" what PEB of PEBs and SPM need: Snames, Pind
 * (1-based) and the group prior M.pE, M.pC (spm_dcm_peb's PEB.M). pE0,
 * pV: the first-level prior of every parameter. */
struct json_t;
int peb_group_extras(struct json_t *o, const dcm_peb_result *P, const design *D, const double *pE0,
                     const double *pV, double alpha);

typedef struct {
    const char *Q;
    int maxit;
    double alpha, beta, hE, hC;
} peb_mat_opts;

/* --mat: the PEB as SPM's struct (io_mat_write_peb), atomically. */
int peb_write_mat(const char *path, const dcm_peb_result *P, const design *D, const io_pname_space *S,
                  const double *pE0, const double *pV, const peb_mat_opts *mo);

/* What a JSON file holds: PEB_KIND_PEB (a dcm peb result: "group" and
 * "effects"), PEB_KIND_LOO (dcm loo: "kind": "loo") or PEB_KIND_NONE
 * (anything else, unreadable included). */
enum { PEB_KIND_NONE = 0, PEB_KIND_PEB = 1, PEB_KIND_LOO = 2 };
int peb_json_kind(const char *path);

/* `dcm review` of a PEB or LOO result: the table on stdout. */
int review_peb(const char *path, double threshold);

#endif
