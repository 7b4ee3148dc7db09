/* model_integrate.h — from parameters to predicted BOLD.
 *
 * Contract
 * - model_int_alloc(M) inspects the model's inputs, delays and scan count
 *   once (the event schedule does not depend on parameters) and returns a
 *   workspace; model_int_predict() may then be called any number of times
 *   with different parameter vectors. One workspace per thread.
 * - Schemes:
 *   * bilinear (SPM's spm_int): the system is reduced to a bilinear form
 *     about rest, dz/dt = (M0 + sum_j u_j M1_j) z with z = [1; x], and
 *     propagated with matrix exponentials between input changes and
 *     samples. Used for one- and two-state models without D.
 *   * nonlinear D models follow SPM's spm_int_D: a second-order reduction
 *     whose Jacobian also moves with the neural states, re-evaluated at
 *     every event and at intermediate times about every second.
 *   * MODEL_INT_ODE: the full nonlinear equations integrated by an
 *     adaptive Runge-Kutta-Prince-Dormand (8,9) scheme (GSL odeiv2) with
 *     tight tolerances; inputs are piecewise constant over micro-time bins.
 * - Region j is observed at micro-time bin (1-based) 16k + max(round(
 *   delay_j/dt), 1) for scan k = 0..v-1, as SPM samples.
 * - y is v x n, column-major (y[s + j*v]): the layout of SPM's spm_vec(y).
 */
#ifndef MODEL_INTEGRATE_H
#define MODEL_INTEGRATE_H

#include "models/model_dcm.h"

typedef struct model_int_work model_int_work;

/* SPM stops integrating once |z|_1 of z = [1; x] exceeds this */
#define MODEL_INT_DIVERGENCE_NORM 1e6

/* Return codes of model_int_predict */
enum {
    MODEL_INT_OK = 0,
    MODEL_INT_DIVERGED = 1,  /* states exceeded 1e6 (SPM stops there and
                                leaves the rest of y at 0) */
    MODEL_INT_FAILED = -1,   /* NaN/Inf or an integrator failure */
    MODEL_INT_UNSURE = 2     /* model_int_predict_region: cannot stand in
                                for the full prediction; predict instead */
};

model_int_work *model_int_alloc(const model_dcm *M);

/* How the bilinear schemes propagate the states between events: AUTO (the
 * default) takes, per step, the cheaper of the Taylor action of exp(J tau)
 * on the sparse operator and the Pade propagator formed once per (input,
 * step length) pair; DENSE always forms the propagator (the scheme before
 * the kernels, for tests); ACTION never does. The three agree to rounding
 * (relative 1e-13). */
enum { MODEL_INT_KERNEL_AUTO = 0, MODEL_INT_KERNEL_DENSE = 1, MODEL_INT_KERNEL_ACTION = 2 };
void model_int_set_kernel(model_int_work *W, int kernel);
void model_int_free(model_int_work *W);

int model_int_predict(const model_dcm *M, const double *P, double *y,
                      model_int_work *W);

/* The prediction at P from the states of W's last prediction, without
 * integrating: exactly model_int_predict(M, P) when P differs from that
 * prediction's parameters only where model_dcm_observation_only() says so
 * (the states do not depend on those). Returns 0, or -1 when the last
 * prediction did not run to the end (failed or diverged): then predict. */
int model_int_observe(const model_dcm *M, const double *P, double *y, model_int_work *W);

/* The 1-norm bound on the states of W's last prediction (its largest
 * |z|_1 over the run, z = [1; x]), +Inf when it did not run to the end. */
double model_int_max_norm(const model_int_work *W);

/* Region `region`'s column of the prediction (y[s + region*v], s < v; the
 * rest of y untouched) by integrating only the closed subsystem of the
 * neural states and that region's haemodynamic states: no other state
 * enters their equations, so this is the full prediction's column (same
 * mathematics; a subsystem's operators are principal submatrices of the
 * full ones, and the expm scaling and Taylor cut-offs see smaller norms,
 * so the numbers agree to rounding). Where the other regions' states are
 * not moved by P (model_dcm_haemo_region) the full prediction's other
 * columns are the caller's. other_norm bounds the 1-norm of the states
 * left out over the run (model_int_max_norm of the prediction they come
 * from): SPM's divergence test is on the whole state, so when the
 * subsystem's norm plus that bound passes it, MODEL_INT_UNSURE says to
 * predict in full. Bilinear and nonlinear (D) schemes, one- and
 * two-state; MODEL_INT_UNSURE for the ODE integrator. Returns
 * MODEL_INT_OK, MODEL_INT_FAILED or MODEL_INT_UNSURE. */
int model_int_predict_region(const model_dcm *M, const double *P, int region, double other_norm,
                             double *y, model_int_work *W);

/* The bilinear operators about rest (spm_bireduce with SPM's one-sided
 * finite differences of step exp(-8)): M0 is N x N, M1 is m blocks of
 * N x N, N = nstates + 1, all column-major. */
void model_int_bireduce(const model_dcm *M, const double *P, double *M0,
                        double *M1, model_int_work *W);

#endif
