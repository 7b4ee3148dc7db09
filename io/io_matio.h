/* io_matio.h — libmatio, loaded when the first .mat file is read or written.
 *
 * Why: matio brings HDF5 and, through it, curl, TLS, Kerberos and LDAP —
 * 35 of the 64 shared libraries a `dcm` process would otherwise map at
 * start-up, about 27 ms of CPU per process (measured with a program that
 * only links them). Most commands never touch a .mat file; a batch of
 * thousands of small processes, or a 0.2 s rDCM estimate, pays it for
 * nothing. So io_mat.c calls matio through this table, filled by dlopen on
 * first use.
 *
 * Contract
 * - io_matio_need(path, err) loads the library once per process
 *   (pthread_once; afterwards the table is only read, so threads may share
 *   it). DCM_OK, or DCM_ERR_SYSTEM with a message naming `path`, the
 *   library and dlerror()'s reason. Every io_mat entry point calls it
 *   before any Mat_* function.
 * - io_matio() is the loaded table; only valid after io_matio_need
 *   returned DCM_OK.
 * - The library is $DCM_MATIO_LIBRARY when set (a path or soname), else
 *   the soname the build saw (IO_MATIO_SONAME, from the Makefile), so the
 *   table matches the matio.h it was compiled against.
 */
#ifndef IO_MATIO_H
#define IO_MATIO_H

#include <matio.h>

#include "dcm/core/dcm_core.h"

typedef struct {
    __typeof__(Mat_Close) *Close;
    __typeof__(Mat_CreateVer) *CreateVer;
    __typeof__(Mat_Open) *Open;
    __typeof__(Mat_Rewind) *Rewind;
    __typeof__(Mat_VarCreate) *VarCreate;
    __typeof__(Mat_VarCreateStruct2) *VarCreateStruct2;
    __typeof__(Mat_VarFree) *VarFree;
    __typeof__(Mat_VarGetCell) *VarGetCell;
    __typeof__(Mat_VarGetNumberOfFields) *VarGetNumberOfFields;
    __typeof__(Mat_VarGetStructFieldByName) *VarGetStructFieldByName;
    __typeof__(Mat_VarGetStructFieldnames) *VarGetStructFieldnames;
    __typeof__(Mat_VarRead) *VarRead;
    __typeof__(Mat_VarReadNextInfo) *VarReadNextInfo;
    __typeof__(Mat_VarSetStructFieldByName) *VarSetStructFieldByName;
    __typeof__(Mat_VarWrite) *VarWrite;
} io_matio_api;

int io_matio_need(const char *path, dcm_error *err);
const io_matio_api *io_matio(void);

#endif
