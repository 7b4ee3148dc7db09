/* io_matio.c — libmatio through dlopen on first use (see io_matio.h). */
#include "io/io_matio.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef IO_MATIO_SONAME
#define IO_MATIO_SONAME "libmatio.so.11"
#endif

/* Written once under pthread_once, read-only afterwards: like the GSL
   handler set-up, process state that never changes once made. */
static pthread_once_t matio_once = PTHREAD_ONCE_INIT;
static io_matio_api matio_api;
static int matio_ok;
static char matio_why[512];
static char matio_name[256];

#define MATIO_SYM(field, name)                                                                     \
    do {                                                                                           \
        void *p_ = dlsym(h, name);                                                                 \
        if (!p_) {                                                                                 \
            snprintf(matio_why, sizeof matio_why, "%s has no %s", matio_name, name);          \
            return;                                                                                \
        }                                                                                          \
        memcpy(&api.field, &p_, sizeof p_); /* object to function pointer, as POSIX allows */      \
    } while (0)

static void matio_load(void)
{
    /* DCM_MATIO_LIBRARY: a matio of the same ABI elsewhere (a prefix, conda) */
    const char *lib = getenv("DCM_MATIO_LIBRARY");
    if (!lib || !*lib)
        lib = IO_MATIO_SONAME;
    snprintf(matio_name, sizeof matio_name, "%s", lib);
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(matio_why, sizeof matio_why, "%s", e ? e : "dlopen failed");
        return;
    }
    io_matio_api api;
    MATIO_SYM(Close, "Mat_Close");
    MATIO_SYM(CreateVer, "Mat_CreateVer");
    MATIO_SYM(Open, "Mat_Open");
    MATIO_SYM(Rewind, "Mat_Rewind");
    MATIO_SYM(VarCreate, "Mat_VarCreate");
    MATIO_SYM(VarCreateStruct2, "Mat_VarCreateStruct2");
    MATIO_SYM(VarFree, "Mat_VarFree");
    MATIO_SYM(VarGetCell, "Mat_VarGetCell");
    MATIO_SYM(VarGetNumberOfFields, "Mat_VarGetNumberOfFields");
    MATIO_SYM(VarGetStructFieldByName, "Mat_VarGetStructFieldByName");
    MATIO_SYM(VarGetStructFieldnames, "Mat_VarGetStructFieldnames");
    MATIO_SYM(VarRead, "Mat_VarRead");
    MATIO_SYM(VarReadNextInfo, "Mat_VarReadNextInfo");
    MATIO_SYM(VarSetStructFieldByName, "Mat_VarSetStructFieldByName");
    MATIO_SYM(VarWrite, "Mat_VarWrite");
    matio_api = api;
    matio_ok = 1;   /* the handle stays open for the life of the process */
}

int io_matio_need(const char *path, dcm_error *err)
{
    pthread_once(&matio_once, matio_load);
    if (matio_ok)
        return DCM_OK;
    return dcm_error_set(err, DCM_ERR_SYSTEM,
                         "%s: reading or writing SPM/MATLAB .mat files needs the matio library (%s), "
                         "which could not be loaded: %s (install Debian's libmatio package, or set "
                         "DCM_MATIO_LIBRARY to a libmatio of the version dcm was built with, %s)",
                         path, matio_name, matio_why, IO_MATIO_SONAME);
}

const io_matio_api *io_matio(void)
{
    return &matio_api;
}
