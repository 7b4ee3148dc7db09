/* io_pnames.h — readable names for DCM parameters.
 *
 * Contract
 * - Every parameter of a model (SPM's flat order, models/model_dcm.h) has
 *   one name:
 *       A:V1->V5            endogenous connection from V1 to V5
 *       B:Attention:V1->V5  modulation of V1 -> V5 by the input Attention
 *       C:Photic->V1        driving input Photic into V1
 *       D:SPC:V1->V5        gating of V1 -> V5 by activity in SPC
 *       transit:V5, decay, epsilon   haemodynamic parameters
 *   A self-connection is written A:V1->V1. Spectral DCM (space csd = 1)
 *   adds a(1), a(2) (neuronal fluctuations), b(1), b(2) (global noise)
 *   and c:V1 (regional noise); its C:V1 are fixed at 0. Selectors: a(1),
 *   a (both), c:V1, c:*.
 * - A selector names one parameter or, with `*` in place of any part, a
 *   block: `B:*` (every B), `A:*->V5` (all connections into V5),
 *   `B:Attention:*`, `B:*:V1->V5`, `transit:*`, `*` (everything).
 *   Whitespace around "->" and ":" is ignored; names are case-sensitive.
 * - SPM's own names (spm_fieldindices) select too: B(4,4,3) is B's row
 *   (target) 4, column (source) 4, input 3; A(2,1), C(1,2), transit(3)
 *   (a single index only for a vector block).
 * - io_pname_select ORs the matches into mask[np]; a selector that names
 *   an unknown region, input or block, or matches nothing, is an error
 *   whose message lists what is valid.
 * - Results meet by name, never by position: io_pname_map aligns two
 *   spaces whose regions or inputs are listed in another order.
 */
#ifndef IO_PNAMES_H
#define IO_PNAMES_H

#include <stddef.h>

#include "models/model_problem.h"

#define IO_PNAME_RDCM 2   /* io_pname_space.csd of a regression DCM */

typedef struct {
    int n, m, nd;                 /* regions, inputs, D slices (0 or n) */
    char *const *regions;         /* n */
    char *const *inputs;          /* m */
    int csd;                      /* the kind of table: 0 task DCM, 1 spectral DCM
                                     (model_layout_init_csd; m = 0), IO_PNAME_RDCM
                                     regression DCM (model_layout_init_rdcm: A, C) */
} io_pname_space;

/* Number of parameters of the space (as model_dcm_layout). */
int io_pname_count(const io_pname_space *S);

/* A buffer length (NUL included) that holds every name of S whole: the
 * longest block name with the longest region and input names its parts
 * can carry (model_layout.h). */
size_t io_pname_cap(const io_pname_space *S);

/* Name of parameter `index` into buf, cut to fit (for labels in figures
 * only: anything that matches or stores names uses io_pname_name);
 * returns 0, or -1 if out of range. */
int io_pname_format(const io_pname_space *S, int index, char *buf, size_t len);

/* Name of parameter `index`, whole (malloc'd, caller frees); NULL when
 * out of range or out of memory. */
char *io_pname_name(const io_pname_space *S, int index);

/* SPM's name of parameter `index` ("B(4,4,3)", "C(1,2)", "transit(2)",
 * "decay"), as spm_fieldindices writes PEB.Pnames; malloc'd, NULL when
 * out of range or out of memory. */
char *io_pname_spm_name(const io_pname_space *S, int index);

/* Match the parameters of `from` to those of `to` by name: map[p] (np of
 * `from`) is the index in `to` of the parameter named like `from`'s p.
 * The two must have the same regions and inputs (in any order) and both
 * or neither a D block; otherwise DCM_ERR_INPUT with a message naming the
 * labels (e.g. file names) and the names only one of them has. */
int io_pname_map(const io_pname_space *from, const char *from_label, const io_pname_space *to,
                 const char *to_label, int *map, dcm_error *err);

/* Add the parameters matched by `selector` to mask (np entries, 0/1).
 * Returns DCM_OK or DCM_ERR_INPUT with a message. */
int io_pname_select(const io_pname_space *S, const char *selector,
                    unsigned char *mask, dcm_error *err);

#endif
