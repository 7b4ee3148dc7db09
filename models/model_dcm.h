/* model_dcm.h — the generative model of DCM for fMRI, as SPM12 defines it.
 *
 * Contract
 * - A model_dcm describes one network: n regions, m inputs, which
 *   connections exist (the a/b/c/d switches), one- or two-state neurons,
 *   the scanner (TR, TE, per-region sampling delays) and the inputs at
 *   micro-time resolution (dt = TR/16).
 * - Parameters live in one flat vector in SPM's order (spm_vec):
 *   A(:), B(:,:,1..m)(:), C(:), D(:,:,1..nd)(:), transit(n), decay, epsilon,
 *   every matrix column-major with row = target, column = source. The
 *   blocks are owned by models/model_layout.h; model_dcm_layout caches
 *   their offsets for the equations; model_dcm_idx_* give indices.
 * - Hidden states per region: neural x, vasodilatory signal s, log flow f,
 *   log volume v, log deoxyhaemoglobin q (and, two-state, inhibitory xI).
 *   The state vector is column-major over an n x 5 (n x 6) array: all x,
 *   then all s, f, v, q (then xI) — the order SPM's Jacobians use.
 * - Nothing here allocates behind the caller's back or keeps global state:
 *   every function works on caller-owned memory, so models can be
 *   evaluated from many threads at once.
 */
#ifndef MODEL_DCM_H
#define MODEL_DCM_H

#include <stddef.h>

#include "models/model_layout.h"

/* micro-time bins per scan, as SPM's fMRI_T */
#define MODEL_DCM_MICROTIME 16

typedef struct {
    int n;           /* regions */
    int m;           /* inputs */
    int nd;          /* D slices: 0 (bilinear) or n (nonlinear) */
    int np;          /* total parameters */
    int off_A, off_B, off_C, off_D, off_transit, off_decay, off_epsilon;
} model_dcm_layout;

typedef struct model_dcm {
    /* structure */
    int n, m;
    int two_state;   /* 0: one neural state per region, 1: excitatory+inhibitory */
    int nonlinear;   /* 1 when any d switch is on: D slices present, spm_int_D scheme */
    /* switches, column-major as the parameters: a[i + j*n], b[k*n*n + i + j*n],
       c[i + j*n] (j = input), d[k*n*n + i + j*n] (k = modulating region) */
    double *a, *b, *c, *d;
    /* scanner */
    double TR, TE;
    double *delays;  /* n, seconds */
    /* inputs at micro-time: nu = v*16 rows, u[t*m + j] */
    int v;           /* scans */
    int nu;          /* micro-time bins */
    double *u;
    int integrator;  /* MODEL_INT_BILINEAR (SPM's) or MODEL_INT_ODE */
    model_dcm_layout L;
} model_dcm;

enum { MODEL_INT_BILINEAR = 0, MODEL_INT_ODE = 1 };

/* Allocate a model with zeroed switches for n regions, m inputs, v scans.
 * Returns NULL on allocation failure. */
model_dcm *model_dcm_alloc(int n, int m, int v, int nonlinear);
void model_dcm_free(model_dcm *M);
/* Recompute the layout after changing n, m or nonlinear (the offsets of
 * model_layout_init's table). */
void model_dcm_layout_init(model_dcm_layout *L, int n, int m, int nonlinear);
/* The block table of M (model_layout.h). */
void model_dcm_table(const model_dcm *M, model_layout *T);
/* The switches of block `block` (MODEL_BLOCK_*), stored like the
 * block's parameters (a for A, ..., d for D, whose slices are filled only
 * when nonlinear); NULL for blocks no switch turns on (haemodynamics). */
const double *model_dcm_switches(const model_dcm *M, int block);
/* A deep copy of S (every field; the arrays it owns copied), NULL when
 * out of memory. The owned arrays are listed once in model_dcm.c, shared
 * by alloc, copy and free; a field added to model_dcm trips a size check
 * there until it is accounted for. */
model_dcm *model_dcm_copy(const model_dcm *S);

static inline int model_dcm_idx_A(const model_dcm_layout *L, int to, int from) { return L->off_A + to + from * L->n; }
static inline int model_dcm_idx_B(const model_dcm_layout *L, int input, int to, int from) { return L->off_B + input * L->n * L->n + to + from * L->n; }
static inline int model_dcm_idx_C(const model_dcm_layout *L, int to, int input) { return L->off_C + to + input * L->n; }
static inline int model_dcm_idx_D(const model_dcm_layout *L, int region, int to, int from) { return L->off_D + region * L->n * L->n + to + from * L->n; }

/* Number of hidden states (5n or 6n). */
static inline int model_dcm_nstates(const model_dcm *M) { return M->n * (M->two_state ? 6 : 5); }

/* Priors as SPM12's spm_dcm_fmri_priors: prior mean pE (np) and prior
 * variances pV (np, the diagonal of a diagonal covariance). */
void model_dcm_priors(const model_dcm *M, double *pE, double *pV);

/* Equations of motion f = dx/dt at state x, input u (m), parameters P.
 * When dfdx is not NULL it receives the analytic Jacobian (nx*nx,
 * column-major: dfdx[i + j*nx] = df_i/dx_j). When dfdu is not NULL it
 * receives df/du (nx*m, column-major). `work` needs model_dcm_fx_work(M)
 * doubles. */
size_t model_dcm_fx_work(const model_dcm *M);
void model_dcm_fx(const model_dcm *M, const double *P, const double *x,
                  const double *u, double *f, double *dfdx, double *dfdu,
                  double *work);

/* The rows of f that depend on state `state` (0-based, < nx), written
 * over f (which holds f at another x; the other rows are left alone):
 * the neural rows for a neural state (x_r and xI_r), and region r's
 * haemodynamic rows s_r f_r v_r q_r for x_r and for r's own haemodynamic
 * states — the same arithmetic as model_dcm_fx's, so a finite difference
 * in that state is model_dcm_fx's, with exact zeros elsewhere. */
void model_dcm_fx_rows(const model_dcm *M, const double *P, const double *x, const double *u,
                       int state, double *f, double *work);

/* Observation: BOLD g (n) from the state x with echo time M->TE; dgdx
 * (n*nx, column-major) when not NULL. */
void model_dcm_gx(const model_dcm *M, const double *P, const double *x,
                  double *g, double *dgdx);

/* 1 when parameter k enters the observation g only, never the equations
 * of motion f (the BOLD ratio epsilon): moving it leaves the states as
 * they were (model_int_observe). */
/* The BOLD signal of one region (g[i] of model_dcm_gx, the same
 * arithmetic) from its log volume and log dHb, with the coefficients that
 * model_dcm_bold_coeffs takes from P (epsilon) and M (TE) once. */
void model_dcm_bold_coeffs(const model_dcm *M, const double *P, double k[3]);
double model_dcm_bold(const double k[3], double log_v, double log_q);

/* Region i (0..n-1) when parameter k enters region i's haemodynamic
 * equations alone (transit_i: then no neural state and no other region's
 * states depend on it), from the layout; -1 otherwise (decay enters every
 * region's, the neural parameters move every state, epsilon the
 * observation only). */
int model_dcm_haemo_region(const model_dcm *M, int k);

static inline int model_dcm_observation_only(const model_dcm *M, int k) { return k == M->L.off_epsilon; }

#endif
