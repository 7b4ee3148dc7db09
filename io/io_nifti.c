/* io_nifti.c — NIfTI/ANALYZE images through nifticlib (see io_nifti.h). */
#include "io/io_nifti.h"

#include <errno.h>
#include <math.h>
#include <nifti2_io.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* zlib cannot compress better than about 1032:1, so a .gz file smaller
 * than this fraction of the data it claims to hold is truncated. */
#define IO_NIFTI_GZ_MAX_RATIO 1100.0
/* refuse images whose data would exceed this many bytes */
#define IO_NIFTI_MAX_BYTES ((int64_t)1 << 36)
/* room for header extensions between the header and the data (a .nii's
 * vox_offset) or in a separate .hdr: DICOM-derived extensions are tens of
 * kilobytes, so 16 MiB is generous and bounds what nifticlib allocates */
#define IO_NIFTI_MAX_EXT_BYTES ((int64_t)1 << 24)

static const char *dt_name(int dt)
{
    switch (dt) {
    case DT_UINT8: return "uint8";
    case DT_INT8: return "int8";
    case DT_INT16: return "int16";
    case DT_UINT16: return "uint16";
    case DT_INT32: return "int32";
    case DT_UINT32: return "uint32";
    case DT_INT64: return "int64";
    case DT_UINT64: return "uint64";
    case DT_FLOAT32: return "float32";
    case DT_FLOAT64: return "float64";
    default: return NULL;
    }
}

static int dt_size(int dt)
{
    switch (dt) {
    case DT_UINT8: case DT_INT8: return 1;
    case DT_INT16: case DT_UINT16: return 2;
    case DT_INT32: case DT_UINT32: case DT_FLOAT32: return 4;
    case DT_INT64: case DT_UINT64: case DT_FLOAT64: return 8;
    default: return 0;
    }
}

static void dims_str(const nifti_image *nim, char *buf, size_t len)
{
    size_t k = 0;
    int nd = (int)nim->dim[0];
    if (nd < 1 || nd > 7)
        nd = 1;
    buf[0] = '\0';
    for (int i = 1; i <= nd && k + 24 < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%lld", i > 1 ? "x" : "", (long long)nim->dim[i]);
}

void io_nifti_close(io_nifti *img)
{
    if (!img)
        return;
    if (img->nim)
        nifti_image_free((nifti_image *)img->nim);
    free(img->path);
    memset(img, 0, sizeof *img);
}

static int is_gz(const char *path)
{
    size_t l = strlen(path);
    return l > 3 && (strcmp(path + l - 3, ".gz") == 0 || strcmp(path + l - 3, ".GZ") == 0);
}

static uint16_t swap16(uint16_t x) { return (uint16_t)((x >> 8) | (x << 8)); }
static uint32_t swap32(uint32_t x)
{
    return (x >> 24) | ((x >> 8) & 0xFF00u) | ((x << 8) & 0xFF0000u) | (x << 24);
}
static uint64_t swap64(uint64_t x) { return ((uint64_t)swap32((uint32_t)x) << 32) | swap32((uint32_t)(x >> 32)); }

/* Check the raw header before nifticlib parses it: nifticlib trusts
 * dim[0] and overruns its own stack arrays when it exceeds 7 (found by
 * fuzzing; fuzz/regressions/nifti-dim0-*). */
static int precheck_header(const char *path, dcm_error *err)
{
    char *hname = nifti_findhdrname(path);
    if (!hname)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: not a NIfTI-1, NIfTI-2 or ANALYZE image "
                             "(no header file found for it)", path);
    znzFile f = znzopen(hname, "rb", nifti_is_gzfile(hname));
    if (znz_isnull(f)) {
        int rc = dcm_error_set(err, DCM_ERR_INPUT, "cannot read %s: %s", hname, strerror(errno));
        free(hname);
        return rc;
    }
    unsigned char h[540];
    size_t n = znzread(h, 1, sizeof h, f);
    znzclose(f);
    int rc = DCM_OK;
    int32_t sz;
    memcpy(&sz, h, 4);
    if (n < 348) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: truncated header (%zu bytes; a NIfTI-1 or "
                           "ANALYZE header has 348)", hname, n);
    } else if (sz == 348 || (int32_t)swap32((uint32_t)sz) == 348) {
        int16_t d[8];
        memcpy(d, h + 40, sizeof d);
        int swapped = sz != 348;
        int nd = swapped ? (int16_t)swap16((uint16_t)d[0]) : d[0];
        if (nd < 1 || nd > 7)
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: corrupt header: dim[0] = %d (1 to 7 "
                               "dimensions)", hname, nd);
        for (int i = 1; rc == DCM_OK && i <= nd; i++) {
            int di = swapped ? (int16_t)swap16((uint16_t)d[i]) : d[i];
            if (di < 1)
                rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: corrupt header: dim[%d] = %d", hname,
                                   i, di);
        }
    } else if (sz == 540 || (int32_t)swap32((uint32_t)sz) == 540) {
        if (n < 540) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: truncated NIfTI-2 header (%zu of 540 "
                               "bytes)", hname, n);
        } else {
            int64_t d[8];
            memcpy(d, h + 16, sizeof d);
            int swapped = sz != 540;
            int64_t nd = swapped ? (int64_t)swap64((uint64_t)d[0]) : d[0];
            if (nd < 1 || nd > 7)
                rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: corrupt header: dim[0] = %lld (1 to 7 "
                                   "dimensions)", hname, (long long)nd);
            for (int i = 1; rc == DCM_OK && i <= nd; i++) {
                int64_t di = swapped ? (int64_t)swap64((uint64_t)d[i]) : d[i];
                if (di < 1 || di > ((int64_t)1 << 31))
                    rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: corrupt header: dim[%d] = %lld",
                                       hname, i, (long long)di);
            }
        }
    } else {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: not a readable NIfTI-1, NIfTI-2 or ANALYZE "
                           "image (its header size field is %d, not 348 or 540)", hname, (int)sz);
    }
    free(hname);
    return rc;
}

/* A path we are about to read must be a regular file we may read: a FIFO
 * or a device would block or never end, and nifticlib reports an
 * unreadable file as "not a NIfTI". */
static int check_readable(const char *path, const char *what, const char *image,
                          dcm_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return dcm_error_set(err, DCM_ERR_INPUT, "cannot open %s%s%s: %s", path,
                             what ? what : "", what ? image : "", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s%s%s is not a regular file (%s); images "
                             "must be regular files", path, what ? what : "", what ? image : "",
                             S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO"
                             : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                             : S_ISSOCK(st.st_mode) ? "a socket" : "a special file");
    FILE *f = fopen(path, "rb");
    if (!f)
        return dcm_error_set(err, DCM_ERR_INPUT, "cannot read %s%s%s: %s", path,
                             what ? what : "", what ? image : "", strerror(errno));
    fclose(f);
    return DCM_OK;
}

/* What the raw header says, checked before nifticlib acts on it:
 * nifticlib quietly reads data from byte 348 when a .nii's vox_offset
 * lies inside the header, reads header extensions as large as vox_offset
 * allows (a 1.8 MB .nii.gz claiming vox_offset 1.9e9 inflated to 1.9 GB),
 * and turns a NaN or infinite scl_slope into 0 ("unscaled"). */
typedef struct {
    int nver;          /* 1 (NIfTI-1 or ANALYZE) or 2 */
    int onefile;       /* header and data in one file (.nii) */
    int analyze;
    int64_t offset;    /* vox_offset, validated */
    double dt;         /* pixdim[4] as stored */
} raw_header;

static int check_raw_header(const char *path, const char *hname, raw_header *rh,
                            dcm_error *err)
{
    memset(rh, 0, sizeof *rh);
    void *raw = nifti_read_header(hname, &rh->nver, 0);
    if (!raw)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: not a readable NIfTI-1, NIfTI-2 or ANALYZE "
                             "image (nifticlib cannot parse its header)", hname);
    double off, slope, inter;
    int hsize;
    if (rh->nver == 2) {
        const nifti_2_header *h = raw;
        rh->onefile = h->magic[1] == '+';
        off = (double)h->vox_offset;
        slope = h->scl_slope;
        inter = h->scl_inter;
        rh->dt = h->pixdim[4];
        hsize = 540;
    } else {
        const nifti_1_header *h = raw;
        rh->analyze = !(h->magic[0] == 'n' && (h->magic[1] == '+' || h->magic[1] == 'i') &&
                        h->magic[2] == '1' && h->magic[3] == '\0');
        rh->onefile = !rh->analyze && h->magic[1] == '+';
        off = h->vox_offset;
        slope = h->scl_slope;
        inter = h->scl_inter;
        rh->dt = h->pixdim[4];
        hsize = 348;
    }
    free(raw);
    /* header + the 4-byte extension flag + extensions */
    const double lo = rh->onefile ? hsize + 4 : 0;
    const double hi = lo + (double)IO_NIFTI_MAX_EXT_BYTES;
    if (!isfinite(off) || off != floor(off))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: invalid header: vox_offset (where the data "
                             "start) is %g, not a whole number of bytes", hname, off);
    if (off < lo)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: invalid header: vox_offset is %.0f, %s; the "
                             "data would be read from the wrong place", hname, off, off < 0
                             ? "negative" : rh->nver == 2 ? "inside the 540-byte header (a .nii's "
                             "data start at byte 544 or later)" : "inside the 348-byte header (a "
                             ".nii's data start at byte 352 or later)");
    if (off > hi)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: invalid header: vox_offset is %.0f, which "
                             "leaves %.0f bytes for header extensions (at most %lld are accepted)",
                             hname, off, off - lo, (long long)IO_NIFTI_MAX_EXT_BYTES);
    rh->offset = (int64_t)off;
    if (!rh->analyze && (!isfinite(slope) || (slope != 0.0 && !isfinite(inter))))
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: invalid header: the scaling %s is %g; the "
                             "stored values cannot be converted (scl_slope 0 means unscaled)",
                             hname, !isfinite(slope) ? "scl_slope" : "scl_inter",
                             !isfinite(slope) ? slope : inter);
    /* a separate header file holds extensions up to its own size */
    if (!rh->onefile) {
        struct stat st;
        if (stat(hname, &st) == 0 && (double)st.st_size > hsize + 4.0 + IO_NIFTI_MAX_EXT_BYTES)
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: the header file has %lld bytes; a header "
                                 "with its extensions may have at most %lld", hname,
                                 (long long)st.st_size,
                                 (long long)(hsize + 4 + IO_NIFTI_MAX_EXT_BYTES));
    }
    (void)path;
    return DCM_OK;
}

/* Read the data part ourselves: exactly the bytes the header's
 * dimensions announce (so memory is bounded by them, whatever a .gz
 * would inflate to), from the validated offset, without nifticlib's
 * zero-filling of NaN and Inf (non-finite voxels must stay visible so
 * that they can be left out). */
static int load_data(nifti_image *nim, const char *path, int64_t offset, int64_t nbytes,
                     dcm_error *err)
{
    char *buf = malloc((size_t)nbytes);
    if (!buf)
        return dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory for %lld bytes of image data",
                             path, (long long)nbytes);
    znzFile f = znzopen(nim->iname, "rb", nifti_is_gzfile(nim->iname));
    if (znz_isnull(f)) {
        int rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: cannot open its data file %s: %s", path,
                               nim->iname, strerror(errno));
        free(buf);
        return rc;
    }
    int rc = DCM_OK;
    /* znzseek returns fseek's 0 or gzseek's new offset */
    if (offset > 0 && znzseek(f, (znz_off_t)offset, SEEK_SET) < 0) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: truncated: the data should start at byte %lld "
                           "of %s", path, (long long)offset, nim->iname);
        goto done;
    }
    int64_t got = 0;
    while (got < nbytes) {
        size_t want = (size_t)(nbytes - got > (1 << 26) ? (1 << 26) : nbytes - got);
        size_t n = znzread(buf + got, 1, want, f);
        /* znzread passes gzread's -1 (corrupt stream) on as a huge size_t */
        if (n > want) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: corrupt compressed data in %s (after %lld "
                               "bytes of image data)", path, nim->iname, (long long)got);
            goto done;
        }
        got += (int64_t)n;
        if (n < want)
            break;
    }
    if (got < nbytes) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: truncated: the header announces %lld bytes of "
                           "data from byte %lld of %s, but only %lld could be read", path,
                           (long long)nbytes, (long long)offset, nim->iname, (long long)got);
        goto done;
    }
    if (nim->nbyper > 1 && nim->byteorder != nifti_short_order())
        nifti_swap_Nbytes(nbytes / nim->nbyper, nim->nbyper, buf);
    nim->data = buf;
    buf = NULL;
done:
    znzclose(f);
    free(buf);
    return rc;
}

int io_nifti_open(const char *path, int want, io_nifti *img, dcm_error *err)
{
    memset(img, 0, sizeof *img);
    int prc = check_readable(path, NULL, NULL, err);
    if (prc)
        return prc;
    raw_header rh;
    {
        char *hname = nifti_findhdrname(path);
        if (!hname)
            return dcm_error_set(err, DCM_ERR_INPUT, "%s: not a NIfTI-1, NIfTI-2 or ANALYZE image "
                                 "(no header file found for it)", path);
        prc = strcmp(hname, path) ? check_readable(hname, ", the header of ", path, err) : DCM_OK;
        if (!prc)
            prc = precheck_header(path, err);
        if (!prc)
            prc = check_raw_header(path, hname, &rh, err);
        free(hname);
        if (prc)
            return prc;
    }
    nifti_image *nim = nifti_image_read(path, 0);
    if (!nim)
        return dcm_error_set(err, DCM_ERR_INPUT,
                             "%s: not a readable NIfTI-1, NIfTI-2 or ANALYZE image (bad or "
                             "truncated header, or the .img part is missing)", path);
    img->nim = nim;
    int rc = DCM_OK;
    char dims[128];
    dims_str(nim, dims, sizeof dims);
    if (!(img->path = strdup(path))) {
        rc = dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory", path);
        goto fail;
    }
    if (nim->dim[0] < 1 || nim->dim[0] > 7) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: the header has %lld dimensions (dim[0]); "
                           "expected 3 or 4", path, (long long)nim->dim[0]);
        goto fail;
    }
    for (int i = 1; i <= nim->dim[0]; i++)
        if (nim->dim[i] < 1 || nim->dim[i] > (1 << 24)) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: dimension %d is %lld (dims %s)", path, i,
                               (long long)nim->dim[i], dims);
            goto fail;
        }
    for (int i = 5; i <= nim->dim[0]; i++)
        if (nim->dim[i] != 1) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: the image is %s; only 3D volumes and 4D "
                               "time series (x, y, z, time) are supported", path, dims);
            goto fail;
        }
    img->nx = (int)nim->nx;
    img->ny = (int)(nim->dim[0] >= 2 ? nim->ny : 1);
    img->nz = (int)(nim->dim[0] >= 3 ? nim->nz : 1);
    img->nt = (int)(nim->dim[0] >= 4 ? nim->nt : 1);
    /* sizes in floating point first: the header's dimensions may be huge */
    if ((double)img->nx * img->ny * img->nz * img->nt * 8.0 > (double)IO_NIFTI_MAX_BYTES) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: the image (%s) is too large", path, dims);
        goto fail;
    }
    img->nvox3 = (size_t)img->nx * img->ny * img->nz;
    img->datatype = nim->datatype;
    img->format = nim->nifti_type == NIFTI_FTYPE_ANALYZE ? "ANALYZE 7.5"
                  : rh.nver == 2 || nim->nifti_type >= NIFTI_FTYPE_NIFTI2_1 ? "NIfTI-2" : "NIfTI-1";
    if (want == IO_NIFTI_4D && img->nt < 2) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: the image is %s, a single volume; a 4D time "
                           "series (x, y, z, time) with one volume per scan is needed", path, dims);
        goto fail;
    }
    if (want == IO_NIFTI_3D && img->nt != 1) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: the image is %s, a time series; a 3D volume is "
                           "needed here", path, dims);
        goto fail;
    }
    const int es = dt_size(nim->datatype);
    if (!es || !dt_name(nim->datatype)) {
        const char *dn = nifti_datatype_string(nim->datatype);
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: data type %d (%s) is not supported; use "
                           "integers or float32/float64", path, nim->datatype, dn ? dn : "unknown");
        goto fail;
    }
    if (nim->nbyper != es) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: inconsistent header (bitpix vs datatype)", path);
        goto fail;
    }
    int64_t nbytes = (int64_t)img->nvox3 * img->nt * es;
    if (img->nvox3 == 0 || nbytes / es / img->nt != (int64_t)img->nvox3 ||
        nbytes > IO_NIFTI_MAX_BYTES) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: the image (%s) is too large", path, dims);
        goto fail;
    }
    /* the data part must hold what the header announces */
    if (nim->iname && want != IO_NIFTI_HEADER) {
        if (strcmp(nim->iname, path) &&
            (rc = check_readable(nim->iname, ", the data file of ", path, err)))
            goto fail;
        if (nim->iname_offset != rh.offset) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: invalid header: vox_offset %lld, but "
                               "nifticlib would read the data from byte %lld", path,
                               (long long)rh.offset, (long long)nim->iname_offset);
            goto fail;
        }
        struct stat sd;
        if (stat(nim->iname, &sd) != 0) {
            rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: cannot open its data file %s: %s", path,
                               nim->iname, strerror(errno));
            goto fail;
        }
        if (!is_gz(nim->iname)) {
            if ((int64_t)sd.st_size < rh.offset + nbytes) {
                rc = dcm_error_set(err, DCM_ERR_INPUT,
                                   "%s: truncated: the header announces %s %s voxels (%lld bytes "
                                   "from offset %lld) but the file has %lld bytes",
                                   nim->iname, dims, dt_name(nim->datatype), (long long)nbytes,
                                   (long long)rh.offset, (long long)sd.st_size);
                goto fail;
            }
        } else if ((double)sd.st_size * IO_NIFTI_GZ_MAX_RATIO < (double)nbytes) {
            rc = dcm_error_set(err, DCM_ERR_INPUT,
                               "%s: truncated: %lld compressed bytes cannot hold the %lld bytes of "
                               "%s %s voxels the header announces", nim->iname,
                               (long long)sd.st_size, (long long)nbytes, dims,
                               dt_name(nim->datatype));
            goto fail;
        }
    }
    /* orientation */
    const nifti_dmat44 *A = nim->sform_code > 0 ? &nim->sto_xyz
                            : nim->qform_code > 0 ? &nim->qto_xyz : NULL;
    img->affine_source = nim->sform_code > 0 ? "sform" : nim->qform_code > 0 ? "qform"
                                                                             : "voxel sizes";
    memset(img->affine, 0, sizeof img->affine);
    if (A) {
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                img->affine[r][c] = A->m[r][c];
    } else {
        img->affine[0][0] = nim->dx > 0 ? nim->dx : 1.0;
        img->affine[1][1] = nim->dy > 0 ? nim->dy : 1.0;
        img->affine[2][2] = nim->dz > 0 ? nim->dz : 1.0;
        img->affine[3][3] = 1.0;
    }
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            if (!isfinite(img->affine[r][c])) {
                rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: the %s holds values that are not "
                                   "finite", path, img->affine_source);
                goto fail;
            }
    double ijk[3], zero[3] = {0, 0, 0};
    if (io_nifti_mm2vox(img, zero, ijk)) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: the %s is singular (voxel sizes of zero?)", path,
                           img->affine_source);
        goto fail;
    }
    /* TR: the raw pixdim[4] (nifticlib turns an unset value into 1) */
    double dt = nim->dim[0] >= 4 ? rh.dt : 0.0;
    img->tr_units_known = 1;
    switch (nim->time_units) {
    case NIFTI_UNITS_SEC: break;
    case NIFTI_UNITS_MSEC: dt /= 1e3; break;
    case NIFTI_UNITS_USEC: dt /= 1e6; break;
    default: img->tr_units_known = 0; break;
    }
    img->tr_header = dt;
    img->tr = isfinite(dt) && dt > 0 ? dt : 0.0;
    img->slice_dim = nim->slice_dim >= 1 && nim->slice_dim <= 3 ? nim->slice_dim : 0;
    if (want != IO_NIFTI_HEADER) {
        if (nim->data) {   /* not expected with read_data = 0 */
            free(nim->data);
            nim->data = NULL;
        }
        if ((rc = load_data(nim, path, rh.offset, nbytes, err)))
            goto fail;
    }
    return DCM_OK;
fail:
    io_nifti_close(img);
    return rc;
}

double io_nifti_value(const io_nifti *img, size_t vox, int t)
{
    const nifti_image *nim = img->nim;
    size_t k = vox + img->nvox3 * (size_t)t;
    double x;
    switch (nim->datatype) {
    case DT_UINT8: x = ((const uint8_t *)nim->data)[k]; break;
    case DT_INT8: x = ((const int8_t *)nim->data)[k]; break;
    case DT_INT16: x = ((const int16_t *)nim->data)[k]; break;
    case DT_UINT16: x = ((const uint16_t *)nim->data)[k]; break;
    case DT_INT32: x = ((const int32_t *)nim->data)[k]; break;
    case DT_UINT32: x = ((const uint32_t *)nim->data)[k]; break;
    case DT_INT64: x = (double)((const int64_t *)nim->data)[k]; break;
    case DT_UINT64: x = (double)((const uint64_t *)nim->data)[k]; break;
    case DT_FLOAT32: x = ((const float *)nim->data)[k]; break;
    case DT_FLOAT64: x = ((const double *)nim->data)[k]; break;
    default: return NAN;
    }
    if (nim->scl_slope != 0.0 && isfinite(nim->scl_slope))
        x = x * nim->scl_slope + (isfinite(nim->scl_inter) ? nim->scl_inter : 0.0);
    return x;
}

void io_nifti_vox2mm(const io_nifti *img, double i, double j, double k, double xyz[3])
{
    for (int r = 0; r < 3; r++)
        xyz[r] = img->affine[r][0] * i + img->affine[r][1] * j + img->affine[r][2] * k +
                 img->affine[r][3];
}

int io_nifti_mm2vox(const io_nifti *img, const double xyz[3], double ijk[3])
{
    const double(*a)[4] = img->affine;
    /* inverse of the 3x3 part by cofactors */
    double c00 = a[1][1] * a[2][2] - a[1][2] * a[2][1];
    double c01 = a[1][2] * a[2][0] - a[1][0] * a[2][2];
    double c02 = a[1][0] * a[2][1] - a[1][1] * a[2][0];
    double det = a[0][0] * c00 + a[0][1] * c01 + a[0][2] * c02;
    double scale = 0.0;
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            scale = fmax(scale, fabs(a[r][c]));
    if (!(fabs(det) > 1e-12 * scale * scale * scale) || !isfinite(det))
        return -1;
    double inv[3][3] = {
        {c00 / det, (a[0][2] * a[2][1] - a[0][1] * a[2][2]) / det,
         (a[0][1] * a[1][2] - a[0][2] * a[1][1]) / det},
        {c01 / det, (a[0][0] * a[2][2] - a[0][2] * a[2][0]) / det,
         (a[0][2] * a[1][0] - a[0][0] * a[1][2]) / det},
        {c02 / det, (a[0][1] * a[2][0] - a[0][0] * a[2][1]) / det,
         (a[0][0] * a[1][1] - a[0][1] * a[1][0]) / det}};
    double d[3] = {xyz[0] - a[0][3], xyz[1] - a[1][3], xyz[2] - a[2][3]};
    for (int r = 0; r < 3; r++)
        ijk[r] = inv[r][0] * d[0] + inv[r][1] * d[1] + inv[r][2] * d[2];
    return 0;
}

int io_nifti_same_grid(const io_nifti *a, const io_nifti *b, char *why, size_t len)
{
    if (a->nx != b->nx || a->ny != b->ny || a->nz != b->nz) {
        snprintf(why, len, "dimensions %dx%dx%d vs %dx%dx%d", a->nx, a->ny, a->nz, b->nx, b->ny,
                 b->nz);
        return 0;
    }
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++) {
            double x = a->affine[r][c], y = b->affine[r][c];
            if (fabs(x - y) > 1e-3 + 1e-5 * fmax(fabs(x), fabs(y))) {
                snprintf(why, len, "voxel-to-mm transforms differ (%s row %d: %g %g %g %g vs %s: "
                         "%g %g %g %g)", a->affine_source, r + 1, a->affine[r][0], a->affine[r][1],
                         a->affine[r][2], a->affine[r][3], b->affine_source, b->affine[r][0],
                         b->affine[r][1], b->affine[r][2], b->affine[r][3]);
                return 0;
            }
        }
    return 1;
}
