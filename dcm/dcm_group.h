/* dcm_group.h — group analysis in the library (BMS, BMR, BMA, Pp, PEB):
 * the public functions of include/dcm/dcm_group.h, implemented in
 * dcm_group.c over the engine's vl_bms / vl_bmr / vl_peb.
 *
 * Contract
 * - In-memory inputs, results through out-pointers, errors through
 *   dcm_error with the engine's status mapped by dcm_error_from_vl; no
 *   printing, no files, no global state.
 */
#ifndef DCM_GROUP_INTERNAL_H
#define DCM_GROUP_INTERNAL_H

#include "dcm/dcm_api.h" /* brings include/dcm/dcm.h and with it dcm_group.h */

#endif
