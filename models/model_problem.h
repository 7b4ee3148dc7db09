/* model_problem.h — one fMRI DCM with its data: allocation, validation and
 * the design checks that need both the model and the data.
 *
 * Contract
 * - dcm_problem (dcm/core/dcm_core.h) holds a model_dcm (model_dcm.h), the
 *   regional time series and the confounds; these functions own it. The
 *   loaders in io/ build problems with them; C users may fill one directly.
 */
#ifndef MODEL_PROBLEM_H
#define MODEL_PROBLEM_H

#include "dcm/core/dcm_core.h"
#include "models/model_dcm.h"

dcm_problem *dcm_problem_alloc(int n, int m, int v, int nonlinear);
/* A spectral DCM problem (resting state): n regions, v scans, no inputs,
 * analysis DCM_ANALYSIS_CSD, SPM's options (order 8, maxit 128, maxnodes
 * 8); the caller fills names, Y, M->TR and the a switches of M. */
dcm_problem *dcm_problem_alloc_csd(int n, int v);
/* A regression DCM problem (dcm/dcm_rdcm.h): n regions, m inputs (0 for
 * resting state), v scans, analysis DCM_ANALYSIS_RDCM, TAPAS's options
 * (rdcm, empirical, filter 5, default p0 grid, 100 random restarts, seed
 * 2406), self-connections on; the caller fills names, Y, M->TR, the a
 * and c switches and the inputs M->u (model_dcm.h's layout). */
dcm_problem *dcm_problem_alloc_rdcm(int n, int m, int v);
/* The parameter table of P's model (model_layout.h): the task table of
 * P->M, or the spectral one. */
void dcm_problem_table(const dcm_problem *P, model_layout *T);
void dcm_problem_free(dcm_problem *P);
/* Check a filled problem (names, sizes, finite values, TR, delays,
 * connectivity). Returns DCM_OK or DCM_ERR_INPUT with a message. */
int dcm_problem_validate(const dcm_problem *P, dcm_error *err);
/* Checks that need the data and the inputs, run by dcm_estimate before
 * fitting: a region whose time series is constant is an error naming it;
 * an input on for less than one TR in total is a warning appended to w. */
int dcm_problem_check_design(const dcm_problem *P, dcm_warnings *w, dcm_error *err);

#endif
