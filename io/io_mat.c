/* io_mat.c — SPM's VOI and DCM .mat files through matio (see io_mat.h). */
#include "io/io_mat.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

#include "io/io_atomic.h"
#include "io/io_matio.h"
#include "models/model_rdcm.h"
#include "models/model_rdcm_sim.h"

/* matio is loaded on first use (io_matio.h): every Mat_* call below goes
   through the loaded table; each entry point calls io_matio_need first. */
#define Mat_Close (io_matio()->Close)
#define Mat_CreateVer (io_matio()->CreateVer)
#define Mat_Open (io_matio()->Open)
#define Mat_Rewind (io_matio()->Rewind)
#define Mat_VarCreate (io_matio()->VarCreate)
#define Mat_VarCreateStruct2 (io_matio()->VarCreateStruct2)
#define Mat_VarFree (io_matio()->VarFree)
#define Mat_VarGetCell (io_matio()->VarGetCell)
#define Mat_VarGetNumberOfFields (io_matio()->VarGetNumberOfFields)
#define Mat_VarGetStructFieldByName (io_matio()->VarGetStructFieldByName)
#define Mat_VarGetStructFieldnames (io_matio()->VarGetStructFieldnames)
#define Mat_VarRead (io_matio()->VarRead)
#define Mat_VarReadNextInfo (io_matio()->VarReadNextInfo)
#define Mat_VarSetStructFieldByName (io_matio()->VarSetStructFieldByName)
#define Mat_VarWrite (io_matio()->VarWrite)

/* ------------------------------------------------------------------ */
/* reading                                                             */

typedef struct {
    const char *file;
    dcm_error *err;
} mctx;

static int mfail(const mctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int mfail(const mctx *c, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dcm_error_set(c->err, DCM_ERR_INPUT, "%s: %s", c->file, msg);
}

static int nomem(const mctx *c)
{
    return dcm_error_set(c->err, DCM_ERR_SYSTEM, "%s: out of memory", c->file);
}

/* A numeric array as doubles, column-major. */
typedef struct {
    int rank;
    size_t dims[4];
    size_t numel;
    double *x;     /* NULL when numel == 0 */
} numarr;

static void numarr_free(numarr *a)
{
    free(a->x);
    memset(a, 0, sizeof *a);
}

static size_t var_numel(const matvar_t *v)
{
    if (!v || v->rank < 1 || !v->dims)
        return 0;
    size_t n = 1;
    for (int i = 0; i < v->rank; i++) {
        if (v->dims[i] && n > SIZE_MAX / v->dims[i])
            return SIZE_MAX;
        n *= v->dims[i];
    }
    return n;
}

static const char *class_name(const matvar_t *v)
{
    switch (v->class_type) {
    case MAT_C_CELL: return "a cell array";
    case MAT_C_STRUCT: return "a struct";
    case MAT_C_CHAR: return "a string";
    case MAT_C_OBJECT: return "an object";
    case MAT_C_FUNCTION: return "a function handle";
    case MAT_C_SPARSE: return "a sparse matrix";
    case MAT_C_EMPTY: return "empty";
    default: return "a numeric array";
    }
}

/* Element k of data of the given matio type as a double (0 on unknown). */
static int elem_size(enum matio_types t)
{
    switch (t) {
    case MAT_T_DOUBLE: case MAT_T_INT64: case MAT_T_UINT64: return 8;
    case MAT_T_SINGLE: case MAT_T_INT32: case MAT_T_UINT32: return 4;
    case MAT_T_INT16: case MAT_T_UINT16: return 2;
    case MAT_T_INT8: case MAT_T_UINT8: return 1;
    default: return 0;
    }
}

static double elem(const void *data, enum matio_types t, size_t k)
{
    switch (t) {
    case MAT_T_DOUBLE: return ((const double *)data)[k];
    case MAT_T_SINGLE: return ((const float *)data)[k];
    case MAT_T_INT8: return ((const int8_t *)data)[k];
    case MAT_T_UINT8: return ((const uint8_t *)data)[k];
    case MAT_T_INT16: return ((const int16_t *)data)[k];
    case MAT_T_UINT16: return ((const uint16_t *)data)[k];
    case MAT_T_INT32: return ((const int32_t *)data)[k];
    case MAT_T_UINT32: return ((const uint32_t *)data)[k];
    case MAT_T_INT64: return (double)((const int64_t *)data)[k];
    case MAT_T_UINT64: return (double)((const uint64_t *)data)[k];
    default: return 0.0;
    }
}

/* Any real numeric, logical or sparse array -> doubles. */
static int to_numarr(const mctx *c, const char *what, const matvar_t *v, numarr *out)
{
    memset(out, 0, sizeof *out);
    if (v->rank < 1 || v->rank > 4 || !v->dims)
        return mfail(c, v->rank < 1 ? "%s could not be read (%d dimensions): the file is truncated "
                     "or damaged" : "%s has %d dimensions; expected a matrix", what, v->rank);
    out->rank = v->rank;
    for (int i = 0; i < v->rank; i++)
        out->dims[i] = v->dims[i];
    size_t n = var_numel(v);
    if (n == SIZE_MAX || n > (size_t)1 << 31)
        return mfail(c, "%s is too large", what);
    out->numel = n;
    if (v->class_type == MAT_C_EMPTY || n == 0)
        return DCM_OK;
    if (v->isComplex)
        return mfail(c, "%s is complex; expected real numbers", what);
    if (v->class_type == MAT_C_SPARSE) {
        const mat_sparse_t *s = v->data;
        if (v->rank != 2)
            return mfail(c, "%s is a sparse array with %d dimensions", what, v->rank);
        int es = elem_size(v->data_type);
        size_t rows = v->dims[0], cols = v->dims[1];
        if (!s || !s->jc || s->njc < cols + 1 || (s->nzmax && (!s->ir || !s->data)) || !es)
            return mfail(c, "%s: malformed sparse matrix", what);
        out->x = calloc(n, sizeof(double));
        if (!out->x)
            return nomem(c);
        for (size_t j = 0; j < cols; j++) {
            size_t k0 = s->jc[j], k1 = s->jc[j + 1];
            if (k0 > k1 || k1 > s->nir || k1 > s->ndata) {
                numarr_free(out);
                return mfail(c, "%s: malformed sparse matrix (column %zu)", what, j + 1);
            }
            for (size_t k = k0; k < k1; k++) {
                if (s->ir[k] >= rows) {
                    numarr_free(out);
                    return mfail(c, "%s: malformed sparse matrix (row index %u)", what,
                                 (unsigned)s->ir[k]);
                }
                out->x[s->ir[k] + j * rows] = elem(s->data, v->data_type, k);
            }
        }
        return DCM_OK;
    }
    switch (v->class_type) {
    case MAT_C_DOUBLE: case MAT_C_SINGLE: case MAT_C_INT8: case MAT_C_UINT8:
    case MAT_C_INT16: case MAT_C_UINT16: case MAT_C_INT32: case MAT_C_UINT32:
    case MAT_C_INT64: case MAT_C_UINT64:
        break;
    default:
        return mfail(c, "%s is %s; expected numbers", what, class_name(v));
    }
    int es = elem_size(v->data_type);
    if (!v->data || !es || v->nbytes < n * (size_t)es)
        return mfail(c, "%s: unreadable numeric data", what);
    out->x = malloc(n * sizeof(double));
    if (!out->x)
        return nomem(c);
    for (size_t k = 0; k < n; k++)
        out->x[k] = elem(v->data, v->data_type, k);
    return DCM_OK;
}

/* Field `name` of element 0 of struct s, or NULL. */
static matvar_t *field(matvar_t *s, const char *name)
{
    if (!s || s->class_type != MAT_C_STRUCT || var_numel(s) == 0)
        return NULL;
    char *const *names = Mat_VarGetStructFieldnames(s);
    unsigned nf = Mat_VarGetNumberOfFields(s);
    int found = 0;
    for (unsigned i = 0; i < nf && names; i++)
        if (names[i] && strcmp(names[i], name) == 0)
            found = 1;
    if (!found)
        return NULL;
    return Mat_VarGetStructFieldByName(s, name, 0);
}

/* A string (char array, first row) into a malloc'ed C string; NULL when
 * unreadable or, with *oom set, when out of memory. */
static char *to_string(const matvar_t *v, int *oom)
{
    *oom = 0;
    if (!v || v->class_type != MAT_C_CHAR)
        return NULL;
    size_t n = var_numel(v);
    if (n == SIZE_MAX)
        return NULL;
    size_t rows = v->rank >= 1 ? v->dims[0] : 0;
    size_t len = rows ? n / rows : 0;  /* first row of a char matrix */
    int es;
    switch (v->data_type) {
    case MAT_T_UINT8: case MAT_T_UTF8: case MAT_T_INT8: es = 1; break;
    case MAT_T_UINT16: case MAT_T_UTF16: case MAT_T_INT16: es = 2; break;
    case MAT_T_UINT32: case MAT_T_UTF32: case MAT_T_INT32: es = 4; break;
    default: es = 0;
    }
    if (n && (!v->data || !es || v->nbytes < n * (size_t)es))
        return NULL;
    char *s = malloc(len + 1);
    if (!s) {
        *oom = 1;
        return NULL;
    }
    for (size_t j = 0; j < len; j++) {
        size_t k = j * rows;   /* column-major: row 0, column j */
        uint32_t ch = es == 1 ? ((const uint8_t *)v->data)[k]
                    : es == 2 ? ((const uint16_t *)v->data)[k]
                              : ((const uint32_t *)v->data)[k];
        s[j] = (ch >= 32 && ch < 127) ? (char)ch : '_';
    }
    s[len] = '\0';
    while (len && s[len - 1] == ' ')   /* char matrices pad with blanks */
        s[--len] = '\0';
    return s;
}

/* A cell array of `count` strings (any shape with count elements). */
static int to_cellstr(const mctx *c, const char *what, matvar_t *v, int count, char **out)
{
    if (v->class_type == MAT_C_CHAR && count == 1) {
        int oom;
        out[0] = to_string(v, &oom);
        if (!out[0])
            return oom ? nomem(c) : mfail(c, "%s: unreadable string", what);
        return DCM_OK;
    }
    if (v->class_type != MAT_C_CELL)
        return mfail(c, "%s is %s; expected a cell array of %d names", what, class_name(v), count);
    size_t n = var_numel(v);
    if (n != (size_t)count)
        return mfail(c, "%s has %zu names; expected %d", what, n == SIZE_MAX ? 0 : n, count);
    for (int i = 0; i < count; i++) {
        matvar_t *e = Mat_VarGetCell(v, i);
        if (!e || e->class_type != MAT_C_CHAR)
            return mfail(c, "%s{%d} is %s; expected a name", what, i + 1,
                         e ? class_name(e) : "missing");
        int oom;
        out[i] = to_string(e, &oom);
        if (!out[i])
            return oom ? nomem(c) : mfail(c, "%s{%d}: unreadable string", what, i + 1);
        if (!out[i][0])
            return mfail(c, "%s{%d} is an empty name", what, i + 1);
    }
    return DCM_OK;
}

static void shape_str(const numarr *a, char *buf, size_t len)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < a->rank && k + 24 < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%zu", i ? "x" : "", a->dims[i]);
}

/* rows x cols x slices with MATLAB's dropped trailing singletons; slices
 * may be 0 (any empty array passes then). */
static int check_shape(const mctx *c, const char *what, const numarr *a, size_t rows, size_t cols,
                       size_t slices, const char *why)
{
    if (slices == 0 && a->numel == 0)
        return DCM_OK;
    int ok = a->dims[0] == rows && a->rank >= 2 && a->dims[1] == cols;
    if (ok && a->rank >= 3)
        ok = a->dims[2] == slices && (a->rank == 3 || a->dims[3] == 1);
    else if (ok)
        ok = slices == 1;
    if (!ok) {
        char got[64];
        shape_str(a, got, sizeof got);
        if (slices == 1)
            return mfail(c, "%s is %s; expected %zux%zu (%s)", what, got, rows, cols, why);
        return mfail(c, "%s is %s; expected %zux%zux%zu (%s)", what, got, rows, cols, slices, why);
    }
    return DCM_OK;
}

/* Get numeric field `name` of struct s (path `spath` for messages). */
static int get_num(const mctx *c, matvar_t *s, const char *spath, const char *name, int required,
                   numarr *out, int *present)
{
    char what[256];
    snprintf(what, sizeof what, "%s.%s", spath, name);
    memset(out, 0, sizeof *out);
    matvar_t *f = field(s, name);
    if (present)
        *present = f != NULL;
    if (!f) {
        if (required)
            return mfail(c, "missing field %s", what);
        return DCM_OK;
    }
    return to_numarr(c, what, f, out);
}

static int get_scalar(const mctx *c, matvar_t *s, const char *spath, const char *name,
                      double *x, int *present)
{
    numarr a;
    int have = 0;
    int rc = get_num(c, s, spath, name, 0, &a, &have);
    if (present)
        *present = 0;
    if (rc || !have)
        return rc;
    if (a.numel != 1 || !isfinite(a.x[0])) {
        rc = mfail(c, "%s.%s must be one finite number (it has %zu values)", spath, name, a.numel);
        numarr_free(&a);
        return rc;
    }
    *x = a.x[0];
    if (present)
        *present = 1;
    numarr_free(&a);
    return DCM_OK;
}

/* MAT v5 layout check before matio reads anything: matio allocates (and
 * clears) what an array's dimensions declare, so a 600-byte file can ask
 * for gigabytes. Every array but a sparse one needs at least one byte per
 * element in the file (MATLAB stores numbers in 1 to 8 bytes; a cell or
 * struct element is a sub-array of at least 8), so an array with more
 * elements than its own bytes, whose dimensions run past its end, that
 * runs past its container, or a compressed stream that does not end
 * cleanly, is refused. Compressed variables are
 * inflated (up to MAT5_INFLATE_MAX) and checked the same way. */
#define MAT5_INFLATE_MAX ((size_t)256 << 20)
#define MAT5_DEPTH_MAX 32

/* A 32-bit field of a v5 file written big-endian ("MI") or little-endian
 * ("IM"), decoded whatever this machine's byte order. */
static uint32_t mat5_u32(const uint8_t *p, int big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* 0: plausible; 1: an array declares more elements than it holds bytes;
 * -1: out of memory. */
static int mat5_check(const uint8_t *p, size_t len, int big, int depth, int top);

static int mat5_inflate_check(const uint8_t *p, size_t len, int big, int depth)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK)
        return 0; /* matio reports a broken stream */
    size_t cap = len * 4 + 4096, used = 0;
    uint8_t *buf = NULL;
    int zr = Z_OK, rc = 0;
    z.next_in = (Bytef *)p;
    z.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
    while (zr == Z_OK) {
        if (!buf || used == cap) {
            if (buf)
                cap *= 2;
            if (cap > MAT5_INFLATE_MAX) {
                /* large but honest data: leave it to matio */
                free(buf);
                inflateEnd(&z);
                return 0;
            }
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                inflateEnd(&z);
                return -1;
            }
            buf = nb;
        }
        z.next_out = buf + used;
        z.avail_out = (uInt)(cap - used);
        zr = inflate(&z, Z_NO_FLUSH);
        used = cap - z.avail_out;
    }
    inflateEnd(&z);
    /* a stream that does not end cleanly is what matio would read garbage from */
    rc = zr == Z_STREAM_END ? mat5_check(buf, used, big, depth + 1, 0) : 1;
    free(buf);
    return rc;
}

static int mat5_check(const uint8_t *p, size_t len, int big, int depth, int top)
{
    if (depth > MAT5_DEPTH_MAX)
        return 1;
    size_t off = 0;
    while (off + 8 <= len) {
        uint32_t type = mat5_u32(p + off, big), nbytes;
        if (type >> 16) { /* small data element: tag and data in 8 bytes */
            off += 8;
            continue;
        }
        nbytes = mat5_u32(p + off + 4, big);
        if (nbytes > len - off - 8)
            return 1; /* runs past its container: truncated or damaged */
        size_t n = nbytes;
        const uint8_t *body = p + off + 8;
        int rc = 0;
        if (type == 15 && top) {
            rc = mat5_inflate_check(body, n, big, depth);
        } else if (type == 14 && n >= 16) {
            /* array flags (8-byte tag + 8 bytes), then the dimensions */
            uint32_t cls = mat5_u32(body + 8, big) & 0xff;
            const uint8_t *d = body + 16;
            size_t rest = n - 16;
            double numel = 1.0;
            if (rest >= 8) {
                uint32_t dt = mat5_u32(d, big);
                size_t dlen = dt >> 16 ? dt >> 16 : mat5_u32(d + 4, big);
                const uint8_t *dv = dt >> 16 ? d + 4 : d + 8;
                size_t avail = dt >> 16 ? 4 : rest - 8;
                if (dlen > avail)
                    return 1; /* dimensions longer than the array */
                for (size_t k = 0; k + 4 <= dlen; k += 4)
                    numel *= (double)mat5_u32(dv + k, big);
            }
            /* sparse arrays (5) store only their non-zeros; function handles
               and opaque objects (16..18) have their own layout */
            if ((cls < 5 || (cls > 5 && cls < 16)) && numel > (double)n)
                return 1;
            rc = mat5_check(d, rest, big, depth + 1, 0);
        }
        if (rc)
            return rc;
        off += 8 + (top && type == 15 ? n : (n + 7) / 8 * 8);
    }
    return 0;
}

/* One read of the file before matio sees it. A MATLAB v5 file is a
 * 128-byte header and data elements, each a tag (type, byte count) and its
 * bytes; matio reads a truncated one as a struct with empty fields, so a
 * file whose elements run past its end is refused as truncated, naming
 * where. Then the arrays are checked for declaring more than they hold
 * (mat5_check above). Other formats (v4, v7.3/HDF5) are left to matio. */
static int mat5_layout_check(const mctx *c)
{
    FILE *f = io_input_open(c->file, "MATLAB file", c->err);
    if (!f)
        return c->err && c->err->code ? c->err->code : DCM_ERR_INPUT;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return dcm_error_set(c->err, DCM_ERR_INPUT, "cannot read %s: %s", c->file, strerror(e));
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        fclose(f);
        return nomem(c);
    }
    size_t got = fread(buf, 1, size, f);
    fclose(f);
    int rc = DCM_OK;
    /* endian indicator "IM" (little-endian) or "MI" (big-endian) at 126,
       version 0x0100 at 124 */
    int v5 = got >= 128 && (buf[126] == 'I' || buf[126] == 'M'), big = v5 && buf[126] == 'M';
    unsigned version = !v5 ? 0 : big ? (unsigned)buf[124] << 8 | buf[125]
                                     : (unsigned)buf[125] << 8 | buf[124];
    if (got < 128 && got >= 6 && !memcmp(buf, "MATLAB", 6))
        rc = mfail(c, "the file is truncated (%zu bytes, shorter than the 128-byte MATLAB header); it "
                   "cannot be read", got);
    if (version == 0x0100) {
        size_t off = 128;
        int elements = 0;
        while (!rc && off < got) {
            if (got - off < 8) {
                rc = mfail(c, "the file is truncated (it ends inside a data element header after "
                           "%d complete variable%s); it cannot be read", elements, elements == 1 ? "" : "s");
                break;
            }
            uint32_t type = mat5_u32(buf + off, big), nbytes = mat5_u32(buf + off + 4, big);
            if (nbytes > got - off - 8) {
                rc = mfail(c, "the file is truncated (%lld of %lld bytes of variable %d are "
                           "present); it cannot be read", (long long)(got - off - 8),
                           (long long)nbytes, elements + 1);
                break;
            }
            elements++;
            size_t next = off + 8 + (size_t)nbytes;
            if (type == 14 && (next & 7))   /* miMATRIX is padded to 8 bytes */
                next += 8 - (next & 7);
            off = next;
        }
        int r = rc ? 0 : mat5_check(buf + 128, got - 128, big, 0, 1);
        if (r < 0)
            rc = nomem(c);
        else if (r > 0)
            rc = mfail(c, "an array or compressed variable declares more data than the file holds "
                          "(a damaged or truncated .mat file)");
    }
    free(buf);
    return rc;
}

static int open_mat(const mctx *c, mat_t **mat)
{
    int rc = mat5_layout_check(c);
    if (rc)
        return rc;
    *mat = Mat_Open(c->file, MAT_ACC_RDONLY);
    if (!*mat)
        return mfail(c, "not a MATLAB .mat file (or a version this matio cannot read)");
    return DCM_OK;
}

/* Read variable `name`; on failure list what the file holds. */
static int read_var(const mctx *c, mat_t *mat, const char *name, const char *expect,
                    matvar_t **out)
{
    *out = Mat_VarRead(mat, name);
    if (*out)
        return DCM_OK;
    char list[400] = "";
    size_t k = 0;
    int count = 0;
    Mat_Rewind(mat);
    matvar_t *v;
    while ((v = Mat_VarReadNextInfo(mat)) != NULL && count < 50) {
        if (v->name && k + 40 < sizeof list)
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", count ? ", " : "", v->name);
        count++;
        Mat_VarFree(v);
    }
    return mfail(c, "no variable \"%s\" (%s); the file holds: %s", name, expect,
                 count ? list : "nothing readable");
}

void io_voi_free(io_voi *v)
{
    if (!v)
        return;
    free(v->name);
    free(v->u);
    free(v->y);
    free(v->X0);
    memset(v, 0, sizeof *v);
}

int io_mat_load_voi(const char *path, io_voi *out, dcm_error *err)
{
    memset(out, 0, sizeof *out);
    if (io_matio_need(path, err))
        return DCM_ERR_SYSTEM;
    out->xyz[0] = out->xyz[1] = out->xyz[2] = NAN;
    mctx c = {path, err};
    mat_t *mat = NULL;
    int rc = open_mat(&c, &mat);
    if (rc)
        return rc;
    matvar_t *xY = NULL;
    numarr u = {0}, y = {0}, X0 = {0}, xyz = {0};
    if ((rc = read_var(&c, mat, "xY", "an SPM VOI file saves the struct xY", &xY)))
        goto done;
    if (xY->class_type != MAT_C_STRUCT) {
        rc = mfail(&c, "xY is %s; expected the struct SPM's spm_regions saves", class_name(xY));
        goto done;
    }
    if ((rc = get_num(&c, xY, "xY", "u", 1, &u, NULL)))
        goto done;
    if (u.rank != 2 || u.dims[1] != 1 || u.dims[0] < 1) {
        char got[64];
        shape_str(&u, got, sizeof got);
        rc = mfail(&c, "xY.u is %s; expected a column (scans x 1)", got);
        goto done;
    }
    out->v = (int)u.dims[0];
    for (int t = 0; t < out->v; t++)
        if (!isfinite(u.x[t])) {
            rc = mfail(&c, "xY.u(%d) is not a finite number", t + 1);
            goto done;
        }
    out->u = u.x;
    u.x = NULL;
    int have;
    if ((rc = get_num(&c, xY, "xY", "y", 0, &y, &have)))
        goto done;
    if (have && y.numel) {
        if (y.rank != 2 || y.dims[0] != (size_t)out->v) {
            char got[64];
            shape_str(&y, got, sizeof got);
            rc = mfail(&c, "xY.y is %s; expected %d scans x voxels (as xY.u)", got, out->v);
            goto done;
        }
        out->nvox = (int)y.dims[1];
        out->y = y.x;
        y.x = NULL;
    }
    if ((rc = get_num(&c, xY, "xY", "X0", 0, &X0, &have)))
        goto done;
    if (have && X0.numel) {
        if (X0.rank != 2 || X0.dims[0] != (size_t)out->v) {
            char got[64];
            shape_str(&X0, got, sizeof got);
            rc = mfail(&c, "xY.X0 is %s; expected %d scans x confounds (as xY.u)", got, out->v);
            goto done;
        }
        for (size_t k = 0; k < X0.numel; k++)
            if (!isfinite(X0.x[k])) {
                rc = mfail(&c, "xY.X0 holds a value that is not finite (row %zu, column %zu)",
                           k % X0.dims[0] + 1, k / X0.dims[0] + 1);
                goto done;
            }
        out->nx0 = (int)X0.dims[1];
        out->X0 = X0.x;
        X0.x = NULL;
    }
    if ((rc = get_num(&c, xY, "xY", "xyz", 0, &xyz, &have)))
        goto done;
    if (have && xyz.numel == 3)
        for (int i = 0; i < 3; i++)
            out->xyz[i] = xyz.x[i];
    matvar_t *nm = field(xY, "name");
    if (nm && nm->class_type == MAT_C_CHAR) {
        int oom;
        out->name = to_string(nm, &oom);
        if (!out->name) {
            rc = oom ? nomem(&c) : mfail(&c, "xY.name: unreadable string");
            goto done;
        }
    }
done:
    numarr_free(&u);
    numarr_free(&y);
    numarr_free(&X0);
    numarr_free(&xyz);
    Mat_VarFree(xY);
    Mat_Close(mat);
    if (rc)
        io_voi_free(out);
    return rc;
}

int io_mat_read_array(const char *path, const char *fieldpath, int *rank, size_t dims[4],
                      double **data, dcm_error *err)
{
    if (io_matio_need(path, err))
        return DCM_ERR_SYSTEM;
    *data = NULL;
    *rank = 0;
    mctx c = {path, err};
    char buf[256];
    snprintf(buf, sizeof buf, "%s", fieldpath);
    char *dot = strchr(buf, '.');
    if (dot)
        *dot = '\0';
    mat_t *mat = NULL;
    int rc = open_mat(&c, &mat);
    if (rc)
        return rc;
    matvar_t *root = NULL;
    numarr a = {0};
    if ((rc = read_var(&c, mat, buf, "asked for", &root)))
        goto done;
    matvar_t *v = root;
    char *p = dot ? dot + 1 : NULL;
    while (p) {
        char *next = strchr(p, '.');
        if (next)
            *next = '\0';
        matvar_t *f = field(v, p);
        if (!f) {
            rc = mfail(&c, "missing field %s", fieldpath);
            goto done;
        }
        v = f;
        p = next ? next + 1 : NULL;
    }
    if ((rc = to_numarr(&c, fieldpath, v, &a)))
        goto done;
    *rank = a.rank;
    for (int i = 0; i < 4; i++)
        dims[i] = i < a.rank ? a.dims[i] : 1;
    *data = a.x;
    a.x = NULL;
done:
    numarr_free(&a);
    Mat_VarFree(root);
    Mat_Close(mat);
    return rc;
}

/* ------------------------------------------------------------------ */
/* DCM_*.mat -> dcm_problem                                            */

static int read_names(const mctx *c, matvar_t *s, const char *spath, const char *name, int count,
                      char **out, int *present)
{
    *present = 0;
    matvar_t *f = field(s, name);
    if (!f)
        return DCM_OK;
    char what[256];
    snprintf(what, sizeof what, "%s.%s", spath, name);
    *present = 1;
    return to_cellstr(c, what, f, count, out);
}

/* the start of io_mat_load_dcm's TE warning, found again by io_mat_use_spm12_te */
#define TE_NOTE "DCM.TE is "

int io_mat_use_spm12_te(dcm_problem *P)
{
    double was = P->M->TE;
    P->M->TE = IO_SPM12_TE;
    for (int i = 0; i < P->warnings.count; i++) {
        if (strncmp(P->warnings.items[i], TE_NOTE, strlen(TE_NOTE)))
            continue;
        char buf[160];
        snprintf(buf, sizeof buf, TE_NOTE "%g s; fitted with TE = %g s as SPM12 r7771 does "
                 "(--spm12-te)", was, IO_SPM12_TE);
        char *note = strdup(buf);
        if (!note)
            return DCM_ERR_SYSTEM;
        free(P->warnings.items[i]);
        P->warnings.items[i] = note;
    }
    return DCM_OK;
}

int io_mat_load_dcm(const char *path, dcm_problem **out, dcm_error *err)
{
    *out = NULL;
    if (io_matio_need(path, err))
        return DCM_ERR_SYSTEM;
    mctx c = {path, err};
    mat_t *mat = NULL;
    int rc = open_mat(&c, &mat);
    if (rc)
        return rc;
    matvar_t *D = NULL;
    numarr y = {0}, X0 = {0}, uu = {0}, a = {0}, b = {0}, cc = {0}, d = {0}, dl = {0}, hEa = {0},
           hCa = {0};
    char **rnames = NULL, **inames = NULL;
    int n = 0, m = 0, v = 0;
    dcm_problem *P = NULL;
    if ((rc = read_var(&c, mat, "DCM", "a DCM file saves the struct DCM", &D)))
        goto done;
    if (D->class_type != MAT_C_STRUCT) {
        rc = mfail(&c, "DCM is %s; expected the struct SPM's spm_dcm_specify saves", class_name(D));
        goto done;
    }
    matvar_t *Y = field(D, "Y"), *U = field(D, "U");
    if (!Y || Y->class_type != MAT_C_STRUCT) {
        rc = mfail(&c, "%s DCM.Y (the data: a struct with y, dt, X0, name)",
                   Y ? "malformed" : "missing field");
        goto done;
    }
    if (!U || U->class_type != MAT_C_STRUCT) {
        rc = mfail(&c, "%s DCM.U (the inputs: a struct with u, name, dt)",
                   U ? "malformed" : "missing field");
        goto done;
    }
    /* a spectral DCM (SPM's options.analysis = 'CSD', as io_mat_write_dcm
       writes it for one): not read from a .mat yet; say so before its dummy
       input is taken for a task design */
    {
        matvar_t *o = field(D, "options"), *an = o && o->class_type == MAT_C_STRUCT ? field(o, "analysis") : NULL;
        int oom = 0;
        char *kind = an ? to_string(an, &oom) : NULL;
        int csd = kind && !strcasecmp(kind, "CSD");
        free(kind);
        if (oom) {
            rc = nomem(&c);
            goto done;
        }
        if (csd) {
            rc = mfail(&c, "DCM.options.analysis is 'CSD' (spectral DCM): spectral DCMs are not read "
                       "from .mat files; write a JSON spec with \"analysis\": \"csd\" (MANUAL 16)");
            goto done;
        }
    }
    /* data */
    if ((rc = get_num(&c, Y, "DCM.Y", "y", 1, &y, NULL)))
        goto done;
    if (y.rank != 2 || y.numel == 0) {
        char got[64];
        shape_str(&y, got, sizeof got);
        rc = mfail(&c, "DCM.Y.y is %s; expected scans x regions", y.numel ? got : "empty");
        goto done;
    }
    v = (int)y.dims[0];
    n = (int)y.dims[1];
    for (size_t k = 0; k < y.numel; k++)
        if (!isfinite(y.x[k])) {
            rc = mfail(&c, "DCM.Y.y(%zu,%zu) is not a finite number", k % y.dims[0] + 1,
                       k / y.dims[0] + 1);
            goto done;
        }
    double xv, TR;
    int have;
    if ((rc = get_scalar(&c, D, "DCM", "n", &xv, &have)))
        goto done;
    if (have && xv != n) {
        rc = mfail(&c, "DCM.n is %g but DCM.Y.y has %d columns (regions)", xv, n);
        goto done;
    }
    if ((rc = get_scalar(&c, D, "DCM", "v", &xv, &have)))
        goto done;
    if (have && xv != v) {
        rc = mfail(&c, "DCM.v is %g but DCM.Y.y has %d rows (scans)", xv, v);
        goto done;
    }
    if ((rc = get_scalar(&c, Y, "DCM.Y", "dt", &TR, &have)))
        goto done;
    if (!have) {
        rc = mfail(&c, "missing field DCM.Y.dt (the repetition time in seconds)");
        goto done;
    }
    if (!(TR > 0)) {
        rc = mfail(&c, "DCM.Y.dt is %g; the repetition time must be positive", TR);
        goto done;
    }
    /* inputs */
    if ((rc = get_num(&c, U, "DCM.U", "u", 1, &uu, NULL)))
        goto done;
    if (uu.rank != 2 || uu.numel == 0) {
        rc = mfail(&c, "DCM.U.u is empty or not a matrix; expected micro-time bins x inputs");
        goto done;
    }
    m = (int)uu.dims[1];
    if (uu.dims[0] != (size_t)v * MODEL_DCM_MICROTIME) {
        rc = mfail(&c, "DCM.U.u has %zu rows; expected %d (%d micro-time bins for each of the %d "
                   "scans of DCM.Y.y)", uu.dims[0], v * MODEL_DCM_MICROTIME, MODEL_DCM_MICROTIME, v);
        goto done;
    }
    for (size_t k = 0; k < uu.numel; k++)
        if (!isfinite(uu.x[k])) {
            rc = mfail(&c, "DCM.U.u(%zu,%zu) is not a finite number", k % uu.dims[0] + 1,
                       k / uu.dims[0] + 1);
            goto done;
        }
    double udt;
    if ((rc = get_scalar(&c, U, "DCM.U", "dt", &udt, &have)))
        goto done;
    if (have && fabs(udt - TR / MODEL_DCM_MICROTIME) > 1e-6 * TR) {
        rc = mfail(&c, "DCM.U.dt is %g s but the inputs must be sampled at TR/%d = %g s (DCM.Y.dt "
                   "= %g)", udt, MODEL_DCM_MICROTIME, TR / MODEL_DCM_MICROTIME, TR);
        goto done;
    }
    /* connectivity */
    if ((rc = get_num(&c, D, "DCM", "a", 1, &a, NULL)) ||
        (rc = check_shape(&c, "DCM.a", &a, (size_t)n, (size_t)n, 1, "regions x regions")))
        goto done;
    if ((rc = get_num(&c, D, "DCM", "b", 0, &b, &have)))
        goto done;
    if (have && b.numel && (rc = check_shape(&c, "DCM.b", &b, (size_t)n, (size_t)n, (size_t)m,
                                             "regions x regions x inputs")))
        goto done;
    if ((rc = get_num(&c, D, "DCM", "c", 1, &cc, NULL)) ||
        (rc = check_shape(&c, "DCM.c", &cc, (size_t)n, (size_t)m, 1, "regions x inputs")))
        goto done;
    if ((rc = get_num(&c, D, "DCM", "d", 0, &d, &have)))
        goto done;
    if (have && d.numel && (rc = check_shape(&c, "DCM.d", &d, (size_t)n, (size_t)n, (size_t)n,
                                             "regions x regions x regions, or n x n x 0")))
        goto done;
    int any_d = 0;
    for (size_t k = 0; k < d.numel; k++)
        any_d |= d.x[k] != 0.0;
    /* options */
    matvar_t *opt = field(D, "options");
    double two_state = 0, centre = 0, nonlinear = 0, maxit = 128, stoch = 0, induced = 0;
    int have_maxit = 0;
    if (opt && opt->class_type != MAT_C_STRUCT) {
        rc = mfail(&c, "DCM.options is %s; expected a struct", class_name(opt));
        goto done;
    }
    if (opt && ((rc = get_scalar(&c, opt, "DCM.options", "two_state", &two_state, NULL)) ||
                (rc = get_scalar(&c, opt, "DCM.options", "centre", &centre, NULL)) ||
                (rc = get_scalar(&c, opt, "DCM.options", "nonlinear", &nonlinear, NULL)) ||
                (rc = get_scalar(&c, opt, "DCM.options", "maxit", &maxit, &have_maxit)) ||
                (rc = get_scalar(&c, opt, "DCM.options", "stochastic", &stoch, NULL)) ||
                (rc = get_scalar(&c, opt, "DCM.options", "induced", &induced, NULL))))
        goto done;
    if (stoch != 0) {
        rc = mfail(&c, "DCM.options.stochastic is on: stochastic DCM is not supported (set it to 0)");
        goto done;
    }
    if (induced != 0) {
        rc = mfail(&c, "DCM.options.induced is on: DCM for induced (cross-spectral) responses is "
                   "not supported (set it to 0)");
        goto done;
    }
    matvar_t *Mv = field(D, "M");
    if (!have_maxit && Mv) {
        double nmax;
        if ((rc = get_scalar(&c, Mv, "DCM.M", "Nmax", &nmax, &have_maxit)))
            goto done;
        if (have_maxit)
            maxit = nmax;
    }
    if (!(maxit >= 1 && maxit <= 1e6) || maxit != floor(maxit)) {
        rc = mfail(&c, "DCM.options.maxit is %g; expected a whole number of iterations >= 1", maxit);
        goto done;
    }
    double hE = 6.0, hC = 1.0 / 128.0;
    if (Mv && Mv->class_type == MAT_C_STRUCT) {
        numarr *hs[2] = {&hEa, &hCa};
        const char *hn[2] = {"hE", "hC"};
        double *hv[2] = {&hE, &hC};
        for (int q = 0; q < 2; q++) {
            if ((rc = get_num(&c, Mv, "DCM.M", hn[q], 0, hs[q], &have)))
                goto done;
            if (!have || hs[q]->numel == 0)
                continue;
            for (size_t k = 0; k < hs[q]->numel; k++)
                if (!isfinite(hs[q]->x[k]) || hs[q]->x[k] != hs[q]->x[0]) {
                    rc = mfail(&c, "DCM.M.%s must be one finite number (a value per region is "
                               "supported only when all are equal)", hn[q]);
                    goto done;
                }
            *hv[q] = hs[q]->x[0];
        }
        if (!(hC > 0)) {
            rc = mfail(&c, "DCM.M.hC is %g; the prior variance must be positive", hC);
            goto done;
        }
    }
    double TE = 0.04;
    if ((rc = get_scalar(&c, D, "DCM", "TE", &TE, NULL)))
        goto done;
    if (!(TE > 0)) {
        rc = mfail(&c, "DCM.TE is %g; the echo time must be a positive number of seconds", TE);
        goto done;
    }
    if ((rc = get_num(&c, D, "DCM", "delays", 0, &dl, &have)))
        goto done;
    if (have && dl.numel != 1 && dl.numel != (size_t)n) {
        rc = mfail(&c, "DCM.delays has %zu values; expected %d (seconds, one per region)", dl.numel, n);
        goto done;
    }
    /* confounds */
    if ((rc = get_num(&c, Y, "DCM.Y", "X0", 0, &X0, &have)))
        goto done;
    if (have && X0.numel) {
        if (X0.rank != 2 || X0.dims[0] != (size_t)v) {
            char got[64];
            shape_str(&X0, got, sizeof got);
            rc = mfail(&c, "DCM.Y.X0 is %s; expected %d scans x confounds (the rows of DCM.Y.y)",
                       got, v);
            goto done;
        }
        for (size_t k = 0; k < X0.numel; k++)
            if (!isfinite(X0.x[k])) {
                rc = mfail(&c, "DCM.Y.X0(%zu,%zu) is not a finite number", k % X0.dims[0] + 1,
                           k / X0.dims[0] + 1);
                goto done;
            }
    }
    /* names */
    rnames = calloc((size_t)n, sizeof(char *));
    inames = calloc((size_t)m, sizeof(char *));
    if (!rnames || !inames) {
        rc = nomem(&c);
        goto done;
    }
    if ((rc = read_names(&c, Y, "DCM.Y", "name", n, rnames, &have)))
        goto done;
    if (!have) {
        matvar_t *xY = field(D, "xY");
        for (int i = 0; i < n && xY && xY->class_type == MAT_C_STRUCT && var_numel(xY) == (size_t)n;
             i++) {
            matvar_t *nm = Mat_VarGetStructFieldByName(xY, "name", (size_t)i);
            int oom = 0;
            rnames[i] = nm ? to_string(nm, &oom) : NULL;
            if (oom) {
                rc = nomem(&c);
                goto done;
            }
        }
    }
    if ((rc = read_names(&c, U, "DCM.U", "name", m, inames, &have)))
        goto done;

    int nl = nonlinear != 0 || any_d;
    P = dcm_problem_alloc(n, m, v, nl);
    if (!P || !(P->source = strdup(path))) {
        rc = nomem(&c);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        char def[32];
        snprintf(def, sizeof def, "R%d", i + 1);
        P->region_names[i] = rnames[i] && rnames[i][0] ? rnames[i] : strdup(def);
        if (P->region_names[i] == rnames[i])
            rnames[i] = NULL;
        if (!P->region_names[i]) {
            rc = nomem(&c);
            goto done;
        }
    }
    for (int j = 0; j < m; j++) {
        char def[32];
        snprintf(def, sizeof def, "u%d", j + 1);
        P->input_names[j] = inames[j] && inames[j][0] ? inames[j] : strdup(def);
        if (P->input_names[j] == inames[j])
            inames[j] = NULL;
        if (!P->input_names[j]) {
            rc = nomem(&c);
            goto done;
        }
    }
    model_dcm *M = P->M;
    memcpy(P->Y, y.x, sizeof(double) * (size_t)v * n);
    M->TR = TR;
    M->TE = TE;
    if (TE != IO_SPM12_TE &&
        dcm_warnings_add(&P->warnings, TE_NOTE "%g s, used here; SPM12 r7771 would have used "
                         "TE = %g s (its spm_gx_fmri ignores DCM.TE): --spm12-te reproduces SPM12",
                         TE, IO_SPM12_TE)) {
        rc = nomem(&c);
        goto done;
    }
    M->two_state = two_state != 0;
    P->centre = centre != 0;
    P->maxit = (int)maxit;
    P->hE = hE;
    P->hC = hC;
    memcpy(M->a, a.x, sizeof(double) * (size_t)n * n);
    if (b.numel)
        memcpy(M->b, b.x, sizeof(double) * (size_t)n * n * m);
    memcpy(M->c, cc.x, sizeof(double) * (size_t)n * m);
    if (d.numel)
        memcpy(M->d, d.x, sizeof(double) * (size_t)n * n * n);
    for (int i = 0; i < n; i++)
        M->delays[i] = !dl.numel ? TR / 2.0 : dl.x[dl.numel == 1 ? 0 : i];
    const int nu = M->nu;
    for (int t = 0; t < nu; t++)
        for (int j = 0; j < m; j++)
            M->u[(size_t)t * m + j] = uu.x[t + (size_t)j * nu];
    if (X0.numel) {
        P->nx0 = (int)X0.dims[1];
        P->X0 = X0.x;
        X0.x = NULL;
    }
    rc = dcm_problem_validate(P, err);
done:
    if (rnames)
        for (int i = 0; i < n; i++)
            free(rnames[i]);
    if (inames)
        for (int j = 0; j < m; j++)
            free(inames[j]);
    free(rnames);
    free(inames);
    numarr *all[] = {&y, &X0, &uu, &a, &b, &cc, &d, &dl, &hEa, &hCa};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++)
        numarr_free(all[k]);
    Mat_VarFree(D);
    Mat_Close(mat);
    if (rc) {
        dcm_problem_free(P);
        P = NULL;
    }
    *out = P;
    return rc;
}

/* ------------------------------------------------------------------ */
/* writing                                                             */

/* A double array (copied). rank 2..3; dims as MATLAB shows them. */
static matvar_t *mk_num(const char *name, int rank, size_t d0, size_t d1, size_t d2,
                        const double *x)
{
    size_t dims[3] = {d0, d1, d2};
    size_t n = d0 * d1 * (rank == 3 ? d2 : 1);
    static const double zero = 0.0;
    /* matio copies the data; an empty array still needs a valid pointer */
    return Mat_VarCreate(name, MAT_C_DOUBLE, MAT_T_DOUBLE, rank, dims,
                         (void *)(n ? x : &zero), 0);
}

static matvar_t *mk_scalar(const char *name, double x)
{
    return mk_num(name, 2, 1, 1, 0, &x);
}

static matvar_t *mk_str(const char *name, const char *s)
{
    size_t len = strlen(s);
    size_t dims[2] = {len ? 1 : 0, len};
    return Mat_VarCreate(name, MAT_C_CHAR, MAT_T_UTF8, 2, dims, (void *)(len ? s : ""), 0);
}

/* 1 x k cell array of strings. */
static matvar_t *mk_cellstr(const char *name, char *const *names, int k)
{
    size_t dims[2] = {1, (size_t)k};
    matvar_t **cells = calloc((size_t)(k ? k : 1), sizeof(matvar_t *));
    if (!cells)
        return NULL;
    for (int i = 0; i < k; i++)
        if (!(cells[i] = mk_str(NULL, names[i]))) {
            for (int q = 0; q < i; q++)
                Mat_VarFree(cells[q]);
            free(cells);
            return NULL;
        }
    matvar_t *c = Mat_VarCreate(name, MAT_C_CELL, MAT_T_CELL, 2, dims, cells, 0);
    if (!c)
        for (int i = 0; i < k; i++)
            Mat_VarFree(cells[i]);
    free(cells);
    return c;
}

/* A 1x1 struct with the given fields (set later with set_field). */
static matvar_t *mk_struct(const char *name, const char *const *fields)
{
    size_t dims[2] = {1, 1};
    return Mat_VarCreateStruct2(name, 2, dims, fields);
}

/* Put f into field `fname` of s; on failure (f NULL) mark *ok = 0. */
static void set_field(matvar_t *s, const char *fname, matvar_t *f, int *ok)
{
    if (!s || !f) {
        *ok = 0;
        Mat_VarFree(f);
        return;
    }
    matvar_t *old = Mat_VarSetStructFieldByName(s, fname, 0, f);
    Mat_VarFree(old);
}

/* SPM's parameter struct (Ep, Pp, Vp, pE) from a flat vector in SPM's
 * order: one field per block of the table (model_layout.h), shaped as
 * SPM keeps it: A n x n, B n x n x m, C n x m, D n x n x nd, transit
 * n x 1, decay 1 x 1, epsilon 1 x 1 (per-slice blocks are 3-D). */
static matvar_t *mk_params(const char *name, const model_layout *T, const double *p, int *ok)
{
    const char *fields[MODEL_BLOCK_MAX + 1];
    for (int k = 0; k < T->nblocks; k++)
        fields[k] = T->block[k].name;
    fields[T->nblocks] = NULL;
    matvar_t *s = mk_struct(name, fields);
    for (int k = 0; k < T->nblocks; k++) {
        const model_layout_block *B = &T->block[k];
        /* spectral DCM: spm_dcm_fmri_priors keeps c as 1 x n (a, b as 2 x 1) */
        const int row = k == MODEL_BLOCK_CSD_C;
        set_field(s, B->name,
                  mk_num(NULL, B->slice_axis ? 3 : 2, row ? 1 : (size_t)B->rows,
                         row ? (size_t)B->rows : (size_t)B->cols, B->slice_axis ? (size_t)B->slices : 0,
                         p + B->offset),
                  ok);
    }
    if (!s)
        *ok = 0;
    return s;
}

/* DCM.Ep, Cp, Pp, Vp of a fit (task and spectral structs alike); buf
 * holds np x np doubles. */
static void set_posterior(matvar_t *D, const model_layout *T, const dcm_result *R, double *buf, int *ok)
{
    const int np = T->np;
    set_field(D, "Ep", mk_params(NULL, T, R->Ep, ok), ok);
    /* Cp is row-major in dcm_result; it is symmetric, but transpose anyway */
    for (int i = 0; i < np; i++)
        for (int j = 0; j < np; j++)
            buf[i + (size_t)j * np] = R->Cp[(size_t)i * np + j];
    set_field(D, "Cp", mk_num(NULL, 2, (size_t)np, (size_t)np, 0, buf), ok);
    set_field(D, "Pp", mk_params(NULL, T, R->Pp, ok), ok);
    for (int i = 0; i < np; i++)
        buf[i] = R->Cp[(size_t)i * np + i];
    set_field(D, "Vp", mk_params(NULL, T, buf, ok), ok);
}

/* DCM.xY (one element per region: its name and unscaled series), v, n,
 * TE and delays: the same in task and spectral DCM structs. */
static void set_regions(matvar_t *D, const dcm_problem *P, int *ok)
{
    const int n = P->n, v = P->v;
    const model_dcm *M = P->M;
    size_t dims[2] = {1, (size_t)n};
    static const char *const xfields[] = {"name", "u", NULL};
    matvar_t *xY = Mat_VarCreateStruct2(NULL, 2, dims, xfields);
    if (!xY)
        *ok = 0;
    for (int i = 0; xY && i < n; i++) {
        Mat_VarFree(Mat_VarSetStructFieldByName(xY, "name", (size_t)i, mk_str(NULL, P->region_names[i])));
        Mat_VarFree(Mat_VarSetStructFieldByName(xY, "u", (size_t)i,
                                                mk_num(NULL, 2, (size_t)v, 1, 0, P->Y + (size_t)i * v)));
    }
    set_field(D, "xY", xY, ok);
    set_field(D, "v", mk_scalar(NULL, v), ok);
    set_field(D, "n", mk_scalar(NULL, n), ok);
    set_field(D, "TE", mk_scalar(NULL, M->TE), ok);
    set_field(D, "delays", mk_num(NULL, 2, (size_t)n, 1, 0, M->delays), ok);
}

static matvar_t *build_dcm(const dcm_problem *P, const dcm_result *R, int *ok)
{
    const model_dcm *M = P->M;
    model_layout T;
    model_dcm_table(M, &T);
    const int n = P->n, m = P->m, v = P->v, np = T.np, nu = M->nu;
    const size_t ny = (size_t)n * v;
    static const char *const top[] = {
        "a", "b", "c", "d", "U", "Y", "xY", "v", "n", "TE", "delays", "options", "M", "Ep", "Cp",
        "Pp", "Vp", "Ce", "F", "y", "R", "T", "version", NULL};
    matvar_t *D = mk_struct("DCM", top);
    if (!D) {
        *ok = 0;
        return NULL;
    }
    /* the switches a..d, shaped like the blocks they switch on */
    for (int k = 0; k < MODEL_BLOCK_COUNT; k++) {
        const model_layout_block *B = &T.block[k];
        if (B->spec)
            set_field(D, B->spec,
                      mk_num(NULL, B->slice_axis ? 3 : 2, (size_t)B->rows, (size_t)B->cols,
                             B->slice_axis ? (size_t)B->slices : 0, model_dcm_switches(M, k)),
                      ok);
    }

    /* inputs at micro-time, nu x m column-major; centred when SPM would */
    double *u = malloc(sizeof(double) * (size_t)nu * (m ? m : 1));
    double *buf = malloc(sizeof(double) * (ny > (size_t)np * np ? ny : (size_t)np * np));
    if (!u || !buf) {
        free(u);
        free(buf);
        *ok = 0;
        return D;
    }
    for (int j = 0; j < m; j++) {
        double mu = 0.0;
        for (int t = 0; t < nu; t++)
            mu += M->u[(size_t)t * m + j];
        mu = P->centre ? mu / nu : 0.0;
        for (int t = 0; t < nu; t++)
            u[t + (size_t)j * nu] = M->u[(size_t)t * m + j] - mu;
    }
    static const char *const ufields[] = {"name", "u", "dt", NULL};
    matvar_t *U = mk_struct(NULL, ufields);
    set_field(U, "name", mk_cellstr(NULL, P->input_names, m), ok);
    set_field(U, "u", mk_num(NULL, 2, (size_t)nu, (size_t)m, 0, u), ok);
    set_field(U, "dt", mk_scalar(NULL, M->TR / MODEL_DCM_MICROTIME), ok);
    set_field(D, "U", U, ok);
    free(u);

    /* data as SPM keeps them after estimation: detrended and scaled */
    static const char *const yfields[] = {"y", "X0", "dt", "name", "scale", NULL};
    matvar_t *Y = mk_struct(NULL, yfields);
    set_field(Y, "y", mk_num(NULL, 2, (size_t)v, (size_t)n, 0, R->y_obs), ok);
    if (P->nx0 > 0 && P->X0) {
        set_field(Y, "X0", mk_num(NULL, 2, (size_t)v, (size_t)P->nx0, 0, P->X0), ok);
    } else {
        for (int s = 0; s < v; s++)
            buf[s] = 1.0;
        set_field(Y, "X0", mk_num(NULL, 2, (size_t)v, 1, 0, buf), ok);
    }
    set_field(Y, "dt", mk_scalar(NULL, M->TR), ok);
    set_field(Y, "name", mk_cellstr(NULL, P->region_names, n), ok);
    set_field(Y, "scale", mk_scalar(NULL, R->scale), ok);
    set_field(D, "Y", Y, ok);

    set_regions(D, P, ok);

    static const char *const ofields[] = {"nonlinear", "two_state", "stochastic", "centre",
                                          "induced", "maxit", "hidden", "nograph", NULL};
    matvar_t *O = mk_struct(NULL, ofields);
    set_field(O, "nonlinear", mk_scalar(NULL, M->nonlinear), ok);
    set_field(O, "two_state", mk_scalar(NULL, M->two_state), ok);
    set_field(O, "stochastic", mk_scalar(NULL, 0), ok);
    set_field(O, "centre", mk_scalar(NULL, P->centre), ok);
    set_field(O, "induced", mk_scalar(NULL, 0), ok);
    set_field(O, "maxit", mk_scalar(NULL, P->maxit), ok);
    set_field(O, "hidden", mk_num(NULL, 2, 0, 0, 0, NULL), ok);
    set_field(O, "nograph", mk_scalar(NULL, 1), ok);
    set_field(D, "options", O, ok);

    /* model: priors and the functions SPM uses */
    static const char *const mfields[] = {"IS", "f", "g", "x", "pE", "pC", "hE", "hC", "m", "n",
                                          "l", "N", "dt", "ns", "TE", "delays", "Nmax", NULL};
    matvar_t *Mm = mk_struct(NULL, mfields);
    set_field(Mm, "IS", mk_str(NULL, M->nonlinear ? "spm_int_D" : "spm_int"), ok);
    set_field(Mm, "f", mk_str(NULL, "spm_fx_fmri"), ok);
    set_field(Mm, "g", mk_str(NULL, "spm_gx_fmri"), ok);
    const int nxs = M->two_state ? 6 : 5;
    memset(buf, 0, sizeof(double) * (size_t)n * nxs);
    set_field(Mm, "x", mk_num(NULL, 2, (size_t)n, (size_t)nxs, 0, buf), ok);
    set_field(Mm, "pE", mk_params(NULL, &T, R->pE, ok), ok);
    memset(buf, 0, sizeof(double) * (size_t)np * np);
    for (int i = 0; i < np; i++)
        buf[i + (size_t)i * np] = R->pV[i];
    set_field(Mm, "pC", mk_num(NULL, 2, (size_t)np, (size_t)np, 0, buf), ok);
    set_field(Mm, "hE", mk_scalar(NULL, P->hE), ok);
    set_field(Mm, "hC", mk_scalar(NULL, P->hC), ok);
    set_field(Mm, "m", mk_scalar(NULL, m), ok);
    set_field(Mm, "n", mk_scalar(NULL, (double)n * nxs), ok);
    set_field(Mm, "l", mk_scalar(NULL, n), ok);
    set_field(Mm, "N", mk_scalar(NULL, 64), ok);
    set_field(Mm, "dt", mk_scalar(NULL, M->TR / MODEL_DCM_MICROTIME), ok);
    set_field(Mm, "ns", mk_scalar(NULL, v), ok);
    set_field(Mm, "TE", mk_scalar(NULL, M->TE), ok);
    set_field(Mm, "delays", mk_num(NULL, 2, (size_t)n, 1, 0, M->delays), ok);
    set_field(Mm, "Nmax", mk_scalar(NULL, P->maxit), ok);
    set_field(D, "M", Mm, ok);

    set_posterior(D, &T, R, buf, ok);
    for (int i = 0; i < n; i++)
        buf[i] = exp(-R->Eh[i]);
    set_field(D, "Ce", mk_num(NULL, 2, (size_t)n, 1, 0, buf), ok);
    set_field(D, "F", mk_scalar(NULL, R->F), ok);
    set_field(D, "y", mk_num(NULL, 2, (size_t)v, (size_t)n, 0, R->y_pred), ok);
    /* residuals as spm_dcm_estimate: R = Y.y - y with X0 projected out,
       i.e. Y.y - y - (fitted confounds) */
    for (size_t k = 0; k < ny; k++)
        buf[k] = R->y_obs[k] - R->y_pred[k] - (R->y_conf ? R->y_conf[k] : 0.0);
    set_field(D, "R", mk_num(NULL, 2, (size_t)v, (size_t)n, 0, buf), ok);
    set_field(D, "T", mk_scalar(NULL, 0), ok);
    static const char *const vfields[] = {"SPM", "dcm", NULL};
    matvar_t *ver = mk_struct(NULL, vfields);
    set_field(ver, "SPM", mk_str(NULL, "SPM12 (r7771)"), ok);
    set_field(ver, "dcm", mk_str(NULL, "dcm (C)"), ok);
    set_field(D, "version", ver, ok);
    free(buf);
    return D;
}

/* A complex array (re, im pairs, interleaved) of rank 2..3 as MATLAB's
 * complex double. */
static matvar_t *mk_complex(const char *name, int rank, size_t d0, size_t d1, size_t d2,
                            const double *z)
{
    size_t dims[3] = {d0, d1, d2};
    size_t n = d0 * d1 * (rank == 3 ? d2 : 1);
    double *re = malloc(sizeof(double) * (n ? n : 1)), *im = malloc(sizeof(double) * (n ? n : 1));
    matvar_t *v = NULL;
    if (re && im) {
        for (size_t k = 0; k < n; k++) {
            re[k] = z[2 * k];
            im[k] = z[2 * k + 1];
        }
        mat_complex_split_t split = {re, im};
        v = Mat_VarCreate(name, MAT_C_DOUBLE, MAT_T_DOUBLE, rank, dims, &split, MAT_F_COMPLEX);
    }
    free(re);
    free(im);
    return v;
}

/* The DCM struct of a spectral fit, as SPM12's spm_dcm_fmri_csd leaves it
 * (the fields a reader of its results uses): a b c d U Y (y detrended and
 * scaled, csd, Hz, p) xY v n TE delays options (analysis 'CSD', induced 1,
 * order, maxnodes) M (IS spm_csd_fmri_mtf, FS, pE, pC, hE, hC, Hz, ...),
 * Ep Cp Pp Vp Hc Rc Ce F Hz. Not written: the neuronal quantities SPM adds
 * after the fit (Hs, dtf, ccf, coh, fsd, pst, H1, K1). */
static matvar_t *build_dcm_csd(const dcm_problem *P, const dcm_result *R, int *ok)
{
    const model_dcm *M = P->M;
    model_layout T;
    model_layout_init_csd(&T, P->n);
    const int n = P->n, v = P->v, np = T.np, nw = R->nw;
    const size_t ncsd = (size_t)nw * n * n;
    static const char *const top[] = {
        "a", "b", "c", "d", "U", "Y", "xY", "v", "n", "TE", "delays", "options", "M", "Ep", "Cp",
        "Pp", "Vp", "Hc", "Rc", "Ce", "F", "Hz", "version", NULL};
    matvar_t *D = mk_struct("DCM", top);
    size_t nbuf = (size_t)np * np;
    if (nbuf < (size_t)v * n)
        nbuf = (size_t)v * n;
    if (nbuf < 2 * ncsd)
        nbuf = 2 * ncsd;
    double *buf = malloc(sizeof(double) * (nbuf ? nbuf : 1));
    if (!D || !buf || !R->csd_obs || !R->csd_pred || !R->Hz || !R->Eh || R->nh != n * n) {
        free(buf);
        *ok = 0;
        return D;
    }
    /* switches: a as given; no b or d (n x n x 0); c on the dummy input, off */
    set_field(D, "a", mk_num(NULL, 2, (size_t)n, (size_t)n, 0, M->a), ok);
    set_field(D, "b", mk_num(NULL, 3, (size_t)n, (size_t)n, 0, NULL), ok);
    memset(buf, 0, sizeof(double) * (size_t)(v > n ? v : n));
    set_field(D, "c", mk_num(NULL, 2, (size_t)n, 1, 0, buf), ok);
    set_field(D, "d", mk_num(NULL, 3, (size_t)n, (size_t)n, 0, NULL), ok);
    /* the dummy input of SPM's resting-state DCM: zeros, one column */
    static const char *const ufields[] = {"name", "u", "dt", NULL};
    matvar_t *U = mk_struct(NULL, ufields);
    char *null_name[] = {"null"};
    set_field(U, "name", mk_cellstr(NULL, null_name, 1), ok);
    set_field(U, "u", mk_num(NULL, 2, (size_t)v, 1, 0, buf), ok);
    set_field(U, "dt", mk_scalar(NULL, M->TR), ok);
    set_field(D, "U", U, ok);

    /* data: the scaled series and the data feature, the empirical CSD */
    for (int w = 0; w < nw; w++)
        buf[w] = R->Hz[w];
    static const char *const yfields[] = {"y", "dt", "name", "scale", "X0", "csd", "Hz", "p", NULL};
    matvar_t *Y = mk_struct(NULL, yfields);
    set_field(Y, "y", mk_num(NULL, 2, (size_t)v, (size_t)n, 0, R->y_obs), ok);
    set_field(Y, "dt", mk_scalar(NULL, M->TR), ok);
    set_field(Y, "name", mk_cellstr(NULL, P->region_names, n), ok);
    set_field(Y, "scale", mk_scalar(NULL, R->scale), ok);
    if (P->nx0 > 0 && P->X0)
        set_field(Y, "X0", mk_num(NULL, 2, (size_t)v, (size_t)P->nx0, 0, P->X0), ok);
    else
        set_field(Y, "X0", mk_num(NULL, 2, (size_t)v, 0, 0, NULL), ok);
    set_field(Y, "csd", mk_complex(NULL, 3, (size_t)nw, (size_t)n, (size_t)n, R->csd_obs), ok);
    set_field(Y, "Hz", mk_num(NULL, 2, 1, (size_t)nw, 0, R->Hz), ok);
    set_field(Y, "p", mk_scalar(NULL, P->csd_order), ok);
    set_field(D, "Y", Y, ok);
    set_regions(D, P, ok);

    static const char *const ofields[] = {"analysis", "nonlinear", "two_state", "stochastic", "centre",
                                          "induced", "order", "maxit", "maxnodes", "nograph", NULL};
    matvar_t *O = mk_struct(NULL, ofields);
    set_field(O, "analysis", mk_str(NULL, "CSD"), ok);
    set_field(O, "nonlinear", mk_scalar(NULL, 0), ok);
    set_field(O, "two_state", mk_scalar(NULL, 0), ok);
    set_field(O, "stochastic", mk_scalar(NULL, 0), ok);
    set_field(O, "centre", mk_scalar(NULL, 0), ok);
    set_field(O, "induced", mk_scalar(NULL, 1), ok);
    set_field(O, "order", mk_scalar(NULL, P->csd_order), ok);
    set_field(O, "maxit", mk_scalar(NULL, P->maxit), ok);
    set_field(O, "maxnodes", mk_scalar(NULL, P->maxnodes), ok);
    set_field(O, "nograph", mk_scalar(NULL, 1), ok);
    set_field(D, "options", O, ok);

    /* model: spm_dcm_fmri_csd's M */
    static const char *const mfields[] = {"IS", "FS", "f", "g", "x", "pE", "pC", "hE", "hC", "n", "m",
                                          "l", "u", "Hz", "dt", "N", "ns", "TE", "Nmax", NULL};
    matvar_t *Mm = mk_struct(NULL, mfields);
    set_field(Mm, "IS", mk_str(NULL, "spm_csd_fmri_mtf"), ok);
    set_field(Mm, "FS", mk_str(NULL, "spm_fs_fmri_csd"), ok);
    set_field(Mm, "f", mk_str(NULL, "spm_fx_fmri"), ok);
    set_field(Mm, "g", mk_str(NULL, "spm_gx_fmri"), ok);
    memset(buf, 0, sizeof(double) * (size_t)n * 5);
    set_field(Mm, "x", mk_num(NULL, 2, (size_t)n, 5, 0, buf), ok);
    set_field(Mm, "pE", mk_params(NULL, &T, R->pE, ok), ok);
    /* the prior covariance: diag(pV), as the result holds it */
    memset(buf, 0, sizeof(double) * (size_t)np * np);
    for (int i = 0; i < np; i++)
        buf[i + (size_t)i * np] = R->pV[i];
    set_field(Mm, "pC", mk_num(NULL, 2, (size_t)np, (size_t)np, 0, buf), ok);
    set_field(Mm, "hE", mk_scalar(NULL, 8.0), ok);
    set_field(Mm, "hC", mk_scalar(NULL, 1.0 / 128.0), ok);
    set_field(Mm, "n", mk_scalar(NULL, 5.0 * n), ok);
    set_field(Mm, "m", mk_scalar(NULL, 1), ok);
    set_field(Mm, "l", mk_scalar(NULL, n), ok);
    memset(buf, 0, sizeof(double) * (size_t)n);
    set_field(Mm, "u", mk_num(NULL, 2, (size_t)n, 1, 0, buf), ok);
    set_field(Mm, "Hz", mk_num(NULL, 2, 1, (size_t)nw, 0, R->Hz), ok);
    set_field(Mm, "dt", mk_scalar(NULL, 0.5), ok);
    set_field(Mm, "N", mk_scalar(NULL, 32), ok);
    set_field(Mm, "ns", mk_scalar(NULL, 1.0 / M->TR), ok);
    set_field(Mm, "TE", mk_scalar(NULL, M->TE), ok);
    set_field(Mm, "Nmax", mk_scalar(NULL, P->maxit), ok);
    set_field(D, "M", Mm, ok);

    set_posterior(D, &T, R, buf, ok);
    /* predicted CSD and its residual, nw x n x n as SPM's Hc, Rc */
    set_field(D, "Hc", mk_complex(NULL, 3, (size_t)nw, (size_t)n, (size_t)n, R->csd_pred), ok);
    for (size_t k = 0; k < 2 * ncsd; k++)
        buf[k] = R->csd_obs[k] - R->csd_pred[k];
    set_field(D, "Rc", mk_complex(NULL, 3, (size_t)nw, (size_t)n, (size_t)n, buf), ok);
    /* Ce = exp(-Eh): one per channel (i, j), k = i + n j as SPM's */
    for (int k = 0; k < n * n; k++)
        buf[k] = exp(-R->Eh[k]);
    set_field(D, "Ce", mk_num(NULL, 2, (size_t)n * n, 1, 0, buf), ok);
    set_field(D, "F", mk_scalar(NULL, R->F), ok);
    set_field(D, "Hz", mk_num(NULL, 2, 1, (size_t)nw, 0, R->Hz), ok);
    static const char *const vfields[] = {"SPM", "dcm", NULL};
    matvar_t *ver = mk_struct(NULL, vfields);
    set_field(ver, "SPM", mk_str(NULL, "SPM12 (r7771)"), ok);
    set_field(ver, "dcm", mk_str(NULL, "dcm (C), spectral DCM"), ok);
    set_field(D, "version", ver, ok);
    free(buf);
    return D;
}

/* ------------------------------------------------------------ rDCM */

/* n x k column-major copy of x scaled by s (NULL x: zeros). */
static matvar_t *mk_scaled(const char *name, int rows, int cols, const double *x, double s,
                           double *buf)
{
    for (size_t k = 0; k < (size_t)rows * cols; k++)
        buf[k] = x ? x[k] * s : 0.0;
    return mk_num(name, 2, (size_t)rows, (size_t)cols, 0, buf);
}

/* TAPAS's parameter struct (tapas_rdcm_empty_par): A n x n, B n x n x m
 * (zeros: rDCM has no modulation), C n x m, D n x n x 0, and baseline
 * n x nb when asked (nb = 0 or 1). */
static matvar_t *mk_rdcm_par(const dcm_rdcm_result *X, const double *A, const double *C,
                             double c_scale, const double *base, int with_base, double *buf,
                             int *ok)
{
    static const char *const pf[] = {"A", "B", "C", "D", "baseline", NULL};
    static const char *const pf_nobase[] = {"A", "B", "C", "D", NULL};
    const int n = X->n, m = X->m, nb = X->has_baseline && base ? 1 : 0;
    matvar_t *s = mk_struct(NULL, with_base ? pf : pf_nobase);
    set_field(s, "A", mk_scaled(NULL, n, n, A, 1.0, buf), ok);
    memset(buf, 0, sizeof(double) * (size_t)n * n * (m ? m : 1));
    set_field(s, "B", mk_num(NULL, 3, (size_t)n, (size_t)n, (size_t)m, buf), ok);
    set_field(s, "C", mk_scaled(NULL, n, m, C, c_scale, buf), ok);
    set_field(s, "D", mk_num(NULL, 3, (size_t)n, (size_t)n, 0, NULL), ok);
    if (with_base)
        set_field(s, "baseline", mk_scaled(NULL, n, nb, base, 1.0, buf), ok);
    if (!s)
        *ok = 0;
    return s;
}

/* TAPAS's output.signal and output.residuals: the response of each
 * region's regression, yd_source_fft (N x n complex, Y(:)): the DFT of the
 * forward difference of the filtered series at every bin (0 at bins the
 * filter removed), and its prediction yd_pred_rdcm_fft = X mu (mu the
 * posterior means; sparse: weighted by the inclusion probabilities, as
 * TAPAS's mN of sparse rDCM are), both over all N bins; y_pred_rdcm (the
 * inputs through the posterior model, no noise, plus the baseline:
 * tapas_rdcm_compute_signals) and the residuals y_source - y_pred_rdcm. */
static void rdcm_signals(const dcm_problem *P, const dcm_rdcm_result *X, matvar_t *S, matvar_t *O,
                         double *ubuf, int *ok)
{
    const int n = P->n, m = P->m, N = P->v, r = MODEL_DCM_MICROTIME, sparse = X->method == 1;
    const int empirical = P->rdcm.data != 0;
    const double input_scale = empirical ? 1.0 : 1.0 / r, c_scale = empirical ? 16.0 : 1.0;
    const size_t NN = (size_t)N * n;
    double *re = malloc(sizeof(double) * NN * 4), *A = malloc(sizeof(double) * (size_t)n * n);
    double *C = malloc(sizeof(double) * (size_t)n * (m ? m : 1));
    model_rdcm_spectra sp;
    memset(&sp, 0, sizeof sp);
    dcm_error err = {0, ""};
    if (!re || !A || !C ||
        model_rdcm_spectra_build_strided(&sp, P->Y, N, n, P->M->TR, m > 0 ? P->M->u : NULL,
                                         (size_t)m, 1, m, r, P->rdcm.filter, 1, &err)) {
        *ok = 0;
        goto done;
    }
    double *im = re + NN, *pre = re + 2 * NN, *pim = re + 3 * NN;
    for (int k = 0; k < n; k++)
        for (int f = 0; f < N; f++) {
            double complex yd = model_rdcm_response(&sp, k, f);
            double complex x = X->has_baseline ? X->Ep_baseline[k] * (sparse ? X->Ip_baseline[k] : 1.0) *
                                                     input_scale * sp.U[(size_t)m * N + f]
                                               : 0.0;
            for (int j = 0; j < n; j++) {
                size_t at = k + (size_t)n * j;
                x += X->Ep_A[at] * (sparse ? X->Ip_A[at] : 1.0) * sp.Yf[(size_t)j * N + f];
            }
            for (int i = 0; i < m; i++) {
                size_t at = k + (size_t)n * i;
                x += X->Ep_C[at] / c_scale * (sparse ? X->Ip_C[at] : 1.0) * input_scale *
                     sp.U[(size_t)i * N + f];
            }
            size_t q = f + (size_t)N * k;
            re[q] = creal(yd), im[q] = cimag(yd), pre[q] = creal(x), pim[q] = cimag(x);
        }
    size_t dims[2] = {NN, 1};
    mat_complex_split_t zs = {re, im}, zp = {pre, pim};
    set_field(S, "yd_source_fft", Mat_VarCreate(NULL, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, &zs,
                                                MAT_F_COMPLEX), ok);
    set_field(S, "yd_pred_rdcm_fft", Mat_VarCreate(NULL, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, &zp,
                                                   MAT_F_COMPLEX), ok);
    /* the time domain: A, C weighted by the inclusion probabilities */
    for (size_t q = 0; q < (size_t)n * n; q++)
        A[q] = X->Ep_A[q] * (sparse ? X->Ip_A[q] : 1.0);
    for (size_t q = 0; q < (size_t)n * m; q++)
        C[q] = X->Ep_C[q] * (sparse ? X->Ip_C[q] : 1.0);   /* reported units: the generator takes them */
    double *y = re;   /* N x n, reusing the spectra's buffer */
    if (m > 0) {
        for (int t = 0; t < P->M->nu; t++)
            for (int j = 0; j < m; j++)
                ubuf[t + (size_t)P->M->nu * j] = P->M->u[(size_t)t * m + j];
        if (model_rdcm_generate(A, C, n, ubuf, m, N, r, P->M->TR, INFINITY, 0, P->region_names,
                                NULL, y, &err)) {
            *ok = 0;
            goto done;
        }
    } else {
        memset(y, 0, sizeof(double) * NN);
    }
    double mse = 0;
    for (int k = 0; k < n; k++)
        for (int t = 0; t < N; t++) {
            size_t q = t + (size_t)N * k;
            if (X->has_baseline)
                y[q] += X->Ep_baseline[k] * (sparse ? X->Ip_baseline[k] : 1.0);
            pre[q] = P->Y[q] - y[q];
            mse += pre[q] * pre[q] / (double)NN;
        }
    set_field(S, "y_pred_rdcm", mk_num(NULL, 2, NN, 1, 0, y), ok);
    static const char *const rf[] = {"y_mse_rdcm", "R_rdcm", NULL};
    matvar_t *Rs = mk_struct(NULL, rf);
    set_field(Rs, "y_mse_rdcm", mk_scalar(NULL, mse), ok);
    set_field(Rs, "R_rdcm", mk_num(NULL, 2, NN, 1, 0, pre), ok);
    set_field(O, "residuals", Rs, ok);
done:
    model_rdcm_spectra_free(&sp);
    free(re);
    free(A);
    free(C);
}

/* TAPAS's sN: n x 1 cell, region k's posterior covariance in the units of
 * the regression, over the columns of priors.m0 (A row k, C row k, the
 * baseline when it is a regressor), zeros where region k has no
 * regressor. Empty ([]) when the result kept no covariances. */
static matvar_t *mk_rdcm_sN(const dcm_rdcm_result *X, int *ok)
{
    const int n = X->n, m = X->m, D = n + m + (X->has_baseline ? 1 : 0);
    if (!X->Sigma)
        return mk_num(NULL, 2, 0, 0, 0, NULL);
    size_t dims[2] = {(size_t)n, 1};
    matvar_t **cells = calloc((size_t)n, sizeof(matvar_t *));
    double *full = malloc(sizeof(double) * (size_t)D * D);
    int good = cells && full;
    for (int k = 0; good && k < n; k++) {
        memset(full, 0, sizeof(double) * (size_t)D * D);
        const int Dk = X->Sigma_D[k], *cols = X->Sigma_cols[k];
        for (int j = 0; X->Sigma[k] && j < Dk; j++)
            for (int i = 0; i < Dk; i++)
                if (cols[i] < D && cols[j] < D)
                    full[cols[i] + (size_t)D * cols[j]] = X->Sigma[k][i + (size_t)Dk * j];
        good = (cells[k] = mk_num(NULL, 2, (size_t)D, (size_t)D, 0, full)) != NULL;
    }
    matvar_t *c = good ? Mat_VarCreate(NULL, MAT_C_CELL, MAT_T_CELL, 2, dims, cells, 0) : NULL;
    if (!c) {
        *ok = 0;
        for (int k = 0; cells && k < n; k++)
            Mat_VarFree(cells[k]);
    }
    free(cells);
    free(full);
    return c;
}

/* TAPAS's `output` of tapas_rdcm_estimate (rDCM 2022_v1.4): Ep (A B C D
 * baseline), Ip (sparse: inclusion probabilities; rDCM: the pattern
 * a, c with ones on the diagonal, as tapas_rdcm_store_parameters), t, aN,
 * bN (n x 1), logF, logF_r (1 x n), logF_term (sums over regions),
 * priors (m0, l0 as region x [A | C | baseline] in the units of the
 * regression, a0, b0), inversion, signal (y_source = Y(:), name), inputs
 * (u, name, dt), time, ver. Added (not TAPAS's): Vp (posterior
 * variances, the diagonals of sN, C in reported units), iterations and
 * bins per region, sparse: p0, p0_all, logF_all; source. signal and
 * residuals: rdcm_signals. sN: mk_rdcm_sN. Left out: Cp (TAPAS's
 * block-diagonal of the sN), signal.y_clean (needs the true parameters),
 * allParam, statistics, rngSeed. */
static matvar_t *build_rdcm_output(const dcm_problem *P, const dcm_result *R, int *ok)
{
    const dcm_rdcm_result *X = R->rdcm;
    const model_dcm *M = P->M;
    const int n = P->n, m = P->m, v = P->v, sparse = X->method == 1, nb = X->has_baseline ? 1 : 0;
    const double c_scale = P->rdcm.data ? 16.0 : 1.0;   /* Var_C is in regression units */
    static const char *const top[] = {"Ep", "Vp", "Ip", "t", "aN", "bN", "logF", "logF_r",
                                      "logF_term", "priors", "inversion", "signal", "inputs",
                                      "time", "iterations", "bins", "p0", "p0_all", "logF_all",
                                      "residuals", "sN", "ver", "source", NULL};
    matvar_t *O = mk_struct("output", top);
    size_t nbuf = (size_t)n * n * (m > 1 ? m : 1);
    if (nbuf < (size_t)n * (n + m + 1))
        nbuf = (size_t)n * (n + m + 1);
    if (nbuf < (size_t)M->nu * (m ? m : 1))
        nbuf = (size_t)M->nu * (m ? m : 1);
    if (X->np0 > 0 && nbuf < (size_t)X->np0)
        nbuf = (size_t)X->np0;
    double *buf = malloc(sizeof(double) * (nbuf ? nbuf : 1));
    if (!O || !buf || X->n != n || X->m != m) {
        free(buf);
        *ok = 0;
        return O;
    }
    set_field(O, "Ep", mk_rdcm_par(X, X->Ep_A, X->Ep_C, 1.0, X->Ep_baseline, 1, buf, ok), ok);
    set_field(O, "Vp", mk_rdcm_par(X, X->Var_A, X->Var_C, c_scale * c_scale, X->Var_baseline, 1, buf, ok),
              ok);
    if (sparse) {
        set_field(O, "Ip", mk_rdcm_par(X, X->Ip_A, X->Ip_C, 1.0, NULL, 0, buf, ok), ok);
    } else {
        /* TAPAS's a has ones on the diagonal: self-connections are estimated */
        double *a = malloc(sizeof(double) * (size_t)n * n);
        if (!a)
            *ok = 0;
        for (int k = 0; a && k < n * n; k++)
            a[k] = k % (n + 1) == 0 ? 1.0 : M->a[k] != 0;
        double *c = malloc(sizeof(double) * (size_t)(n * m > 0 ? n * m : 1));
        if (!c)
            *ok = 0;
        for (int k = 0; c && k < n * m; k++)
            c[k] = M->c[k] != 0;
        if (a && c)
            set_field(O, "Ip", mk_rdcm_par(X, a, c, 1.0, NULL, 0, buf, ok), ok);
        free(a);
        free(c);
    }
    for (int k = 0; k < n; k++)
        buf[k] = X->aN[k] / X->bN[k];
    set_field(O, "t", mk_num(NULL, 2, (size_t)n, 1, 0, buf), ok);
    set_field(O, "aN", mk_num(NULL, 2, (size_t)n, 1, 0, X->aN), ok);
    set_field(O, "bN", mk_num(NULL, 2, (size_t)n, 1, 0, X->bN), ok);
    set_field(O, "logF", mk_scalar(NULL, X->F), ok);
    set_field(O, "logF_r", mk_num(NULL, 2, 1, (size_t)n, 0, X->F_regions), ok);
    static const char *const tf[] = {"log_lik", "log_p_weight", "log_p_prec", "log_q_weight",
                                     "log_q_prec", "log_p_z", "log_q_z", NULL};
    static const char *const tf_ridge[] = {"log_lik", "log_p_weight", "log_p_prec", "log_q_weight",
                                           "log_q_prec", NULL};
    matvar_t *T = mk_struct(NULL, sparse ? tf : tf_ridge);
    for (int t = 0; t < (sparse ? 7 : 5); t++) {
        double s = 0.0;
        for (int k = 0; k < n; k++)
            s += X->F_terms[(size_t)k * 7 + t];
        set_field(T, tf[t], mk_scalar(NULL, s), ok);
    }
    set_field(O, "logF_term", T, ok);

    /* priors as the regression uses them (model_rdcm_priors): A self
       -0.5 / 8n, others 0 / n/8; C 0 / 1; the constant 0 / (sparse 1,
       rDCM 1e-8) */
    static const char *const prf[] = {"m0", "l0", "a0", "b0", NULL};
    matvar_t *Pr = mk_struct(NULL, prf);
    const int D = n + m + nb;
    for (int pass = 0; pass < 2; pass++) {
        for (int j = 0; j < D; j++)
            for (int i = 0; i < n; i++) {
                double mu = j == i ? -0.5 : 0.0;
                double l0 = j < n ? (j == i ? 8.0 * n : n / 8.0) : j < n + m ? 1.0 : sparse ? 1.0 : 1e-8;
                buf[i + (size_t)n * j] = pass ? l0 : mu;
            }
        set_field(Pr, pass ? "l0" : "m0", mk_num(NULL, 2, (size_t)n, (size_t)D, 0, buf), ok);
    }
    set_field(Pr, "a0", mk_scalar(NULL, MODEL_RDCM_A0), ok);
    set_field(Pr, "b0", mk_scalar(NULL, MODEL_RDCM_B0), ok);
    set_field(O, "priors", Pr, ok);
    set_field(O, "inversion", mk_str(NULL, sparse ? "tapas_rdcm_sparse" : "tapas_rdcm_ridge"), ok);

    static const char *const sf[] = {"y_source", "yd_source_fft", "yd_pred_rdcm_fft", "y_pred_rdcm",
                                     "name", NULL};
    matvar_t *S = mk_struct(NULL, sf);
    set_field(S, "y_source", mk_num(NULL, 2, (size_t)v * n, 1, 0, P->Y), ok);
    set_field(S, "name", mk_cellstr(NULL, P->region_names, n), ok);
    rdcm_signals(P, X, S, O, buf, ok);
    set_field(O, "signal", S, ok);
    /* inputs at micro-time, nu x m (model_dcm keeps them row-major) */
    static const char *const uf[] = {"u", "name", "dt", NULL};
    matvar_t *U = mk_struct(NULL, uf);
    for (int t = 0; t < M->nu; t++)
        for (int j = 0; j < m; j++)
            buf[t + (size_t)M->nu * j] = M->u[(size_t)t * m + j];
    set_field(U, "u", mk_num(NULL, 2, (size_t)M->nu, (size_t)m, 0, buf), ok);
    set_field(U, "name", mk_cellstr(NULL, P->input_names, m), ok);
    set_field(U, "dt", mk_scalar(NULL, M->TR / MODEL_DCM_MICROTIME), ok);
    set_field(O, "inputs", U, ok);
    static const char *const tmf[] = {"time_rDCM_VBinv", NULL};
    matvar_t *Tm = mk_struct(NULL, tmf);
    set_field(Tm, "time_rDCM_VBinv", mk_scalar(NULL, R->seconds), ok);
    set_field(O, "time", Tm, ok);
    for (int k = 0; k < n; k++)
        buf[k] = X->iterations[k];
    set_field(O, "iterations", mk_num(NULL, 2, (size_t)n, 1, 0, buf), ok);
    for (int k = 0; k < n; k++)
        buf[k] = X->bins[k];
    set_field(O, "bins", mk_num(NULL, 2, (size_t)n, 1, 0, buf), ok);
    if (sparse) {
        set_field(O, "p0", mk_scalar(NULL, X->p0), ok);
        set_field(O, "p0_all", mk_num(NULL, 2, 1, (size_t)X->np0, 0, X->p0_grid), ok);
        set_field(O, "logF_all", mk_num(NULL, 2, 1, (size_t)X->np0, 0, X->F_per_p0), ok);
    } else {
        /* empty fields stay in the struct (as MATLAB's []) */
        set_field(O, "p0", mk_num(NULL, 2, 0, 0, 0, NULL), ok);
        set_field(O, "p0_all", mk_num(NULL, 2, 0, 0, 0, NULL), ok);
        set_field(O, "logF_all", mk_num(NULL, 2, 0, 0, 0, NULL), ok);
    }
    set_field(O, "sN", mk_rdcm_sN(X, ok), ok);
    set_field(O, "ver", mk_str(NULL, "2022_v1.4"), ok);
    set_field(O, "source", mk_str(NULL, "dcm (C11 reimplementation of TAPAS rDCM)"), ok);
    free(buf);
    return O;
}

int io_mat_write_dcm_to(void *atomic, const dcm_problem *P, const dcm_result *R, dcm_error *err)
{
    if (io_matio_need("the --mat output", err))
        return DCM_ERR_SYSTEM;
    io_atomic *a = atomic;
    const char *path = a->path;
    int ok = 1;
    const int rdcm = P->analysis == DCM_ANALYSIS_RDCM;
    if (rdcm && !R->rdcm)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: the result is not a regression DCM", path);
    matvar_t *D = rdcm ? build_rdcm_output(P, R, &ok)
                       : P->analysis == DCM_ANALYSIS_CSD ? build_dcm_csd(P, R, &ok) : build_dcm(P, R, &ok);
    if (!D || !ok) {
        Mat_VarFree(D);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory building the %s struct", path,
                             rdcm ? "output" : "DCM");
    }
    /* matio writes by name: it truncates and fills the temporary file that
       io_atomic created (same inode, reached through its reopen path),
       which the commit then syncs and puts in place. */
    const char *tmp = io_atomic_reopen_path(a);
    mat_t *mat = Mat_CreateVer(tmp, rdcm ? "MATLAB 5.0 MAT-file, written by dcm (TAPAS rDCM output struct)"
                                         : "MATLAB 5.0 MAT-file, written by dcm (SPM12 DCM struct)",
                               MAT_FT_MAT5);
    int wrc = mat ? Mat_VarWrite(mat, D, MAT_COMPRESSION_ZLIB) : -1;
    if (mat && Mat_Close(mat) != 0)
        wrc = -1;
    Mat_VarFree(D);
    /* matio does not report every failed write (a full disk can leave a
       truncated variable behind a success): read it all back */
    if (wrc == 0) {
        dcm_error e2 = {0, ""};
        mctx c = {tmp, &e2};
        mat_t *rm = NULL;
        if (mat5_layout_check(&c) != DCM_OK || !(rm = Mat_Open(tmp, MAT_ACC_RDONLY))) {
            wrc = -1;
        } else {
            matvar_t *back = Mat_VarRead(rm, rdcm ? "output" : "DCM");
            if (!back)
                wrc = -1;
            Mat_VarFree(back);
        }
        if (rm)
            Mat_Close(rm);
    }
    if (wrc != 0)
        return dcm_error_set(err, DCM_ERR_SYSTEM,
                             "cannot write %s: matio could not write the whole file (disk full or "
                             "file size limit?)", path);
    return DCM_OK;
}

int io_mat_write_dcm(const char *path, const dcm_problem *P, const dcm_result *R, dcm_error *err)
{
    if (io_matio_need(path, err))
        return DCM_ERR_SYSTEM;
    io_atomic a;
    int rc = io_atomic_open(&a, path, err);
    if (rc)
        return rc;
    if ((rc = io_mat_write_dcm_to(&a, P, R, err))) {
        io_atomic_abort(&a);
        return rc;
    }
    return io_atomic_commit(&a, err);
}

/* ------------------------------------------------------------ PEB */

/* k x 1 cell array of strings (SPM's Snames and Pnames are columns) */
static matvar_t *mk_cellstr_column(const char *name, char *const *names, int k)
{
    matvar_t *c = mk_cellstr(name, names, k);
    if (c) {
        c->dims[0] = (size_t)k;
        c->dims[1] = 1;
    }
    return c;
}

/* rows x cols column-major from a row-major matrix */
static matvar_t *mk_rowmajor(const char *name, int rows, int cols, const double *x, int *ok)
{
    double *t = malloc(sizeof(double) * (size_t)(rows * cols > 0 ? rows * cols : 1));
    if (!t) {
        *ok = 0;
        return NULL;
    }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            t[(size_t)j * rows + i] = x[(size_t)i * cols + j];
    matvar_t *v = mk_num(name, 2, (size_t)rows, (size_t)cols, 0, t);
    free(t);
    return v;
}

static matvar_t *build_peb(const io_mat_peb *P, int *ok)
{
    static const char *const top[] = {"Snames", "Pnames", "Pind", "Pind0", "Xnames", "M", "Ep", "Eh",
                                      "Cp", "Ch", "Ce", "F", NULL};
    static const char *const mf[] = {"X", "Q", "pE", "pC", "hE", "hC", "alpha", "beta", "maxit",
                                     "Xnames", NULL};
    const int np = P->np, nx = P->nx, ng = P->ng, nb = np * nx;
    matvar_t *S = mk_struct("PEB", top), *M = mk_struct(NULL, mf);
    double *ind = malloc(sizeof(double) * (size_t)(np ? np : 1));
    double *hE = malloc(sizeof(double) * (size_t)(ng ? ng : 1));
    double *hC = calloc((size_t)(ng ? ng * ng : 1), sizeof(double));
    if (!S || !M || !ind || !hE || !hC) {
        *ok = 0;
        Mat_VarFree(S);
        Mat_VarFree(M);
        free(ind);
        free(hE);
        free(hC);
        return NULL;
    }
    for (int k = 0; k < np; k++)
        ind[k] = P->Pind[k] + 1;
    for (int g = 0; g < ng; g++) {
        hE[g] = P->hE;
        hC[g * ng + g] = P->hC;
    }
    set_field(S, "Snames", mk_cellstr_column(NULL, P->Snames, P->nsub), ok);
    set_field(S, "Pnames", mk_cellstr_column(NULL, P->Pnames, np), ok);
    set_field(S, "Pind", mk_num(NULL, 2, (size_t)np, 1, 0, ind), ok);
    set_field(S, "Pind0", mk_num(NULL, 2, (size_t)np, 1, 0, ind), ok);
    set_field(S, "Xnames", mk_cellstr(NULL, P->Xnames, nx), ok);
    set_field(M, "X", mk_rowmajor(NULL, P->nsub, nx, P->X, ok), ok);
    set_field(M, "Q", mk_str(NULL, P->Q ? P->Q : "single"), ok);
    if (P->pE)
        set_field(M, "pE", mk_num(NULL, 2, (size_t)nb, 1, 0, P->pE), ok);
    if (P->pC)
        set_field(M, "pC", mk_num(NULL, 2, (size_t)nb, (size_t)nb, 0, P->pC), ok);
    set_field(M, "hE", mk_num(NULL, 2, (size_t)ng, 1, 0, hE), ok);
    set_field(M, "hC", mk_num(NULL, 2, (size_t)ng, (size_t)ng, 0, hC), ok);
    set_field(M, "alpha", mk_scalar(NULL, P->alpha), ok);
    set_field(M, "beta", mk_scalar(NULL, P->beta), ok);
    set_field(M, "maxit", mk_scalar(NULL, P->maxit), ok);
    set_field(M, "Xnames", mk_cellstr(NULL, P->Xnames, nx), ok);
    set_field(S, "M", M, ok);
    set_field(S, "Ep", mk_rowmajor(NULL, np, nx, P->Ep, ok), ok);
    set_field(S, "Eh", mk_num(NULL, 2, (size_t)ng, 1, 0, P->Eh), ok);
    set_field(S, "Cp", mk_num(NULL, 2, (size_t)nb, (size_t)nb, 0, P->Cp), ok);
    set_field(S, "Ch", mk_num(NULL, 2, (size_t)ng, (size_t)ng, 0, P->Ch), ok);
    set_field(S, "Ce", mk_num(NULL, 2, (size_t)np, (size_t)np, 0, P->Ce), ok);
    set_field(S, "F", mk_scalar(NULL, P->F), ok);
    free(ind);
    free(hE);
    free(hC);
    return S;
}

int io_mat_write_peb(const char *path, const io_mat_peb *peb, dcm_error *err)
{
    if (io_matio_need(path, err))
        return DCM_ERR_SYSTEM;
    int ok = 1;
    matvar_t *S = build_peb(peb, &ok);
    if (!S || !ok) {
        Mat_VarFree(S);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory building the PEB struct", path);
    }
    io_atomic a;
    int rc = io_atomic_open(&a, path, err);
    if (rc) {
        Mat_VarFree(S);
        return rc;
    }
    const char *tmp = io_atomic_reopen_path(&a);
    mat_t *mat = Mat_CreateVer(tmp, "MATLAB 5.0 MAT-file, written by dcm (SPM12 PEB struct)", MAT_FT_MAT5);
    int wrc = mat ? Mat_VarWrite(mat, S, MAT_COMPRESSION_ZLIB) : -1;
    if (mat && Mat_Close(mat) != 0)
        wrc = -1;
    Mat_VarFree(S);
    if (wrc == 0) { /* read it back: matio does not report every failed write */
        dcm_error e2 = {0, ""};
        mctx c = {tmp, &e2};
        mat_t *rm = NULL;
        if (mat5_layout_check(&c) != DCM_OK || !(rm = Mat_Open(tmp, MAT_ACC_RDONLY))) {
            wrc = -1;
        } else {
            matvar_t *back = Mat_VarRead(rm, "PEB");
            if (!back)
                wrc = -1;
            Mat_VarFree(back);
        }
        if (rm)
            Mat_Close(rm);
    }
    if (wrc != 0) {
        io_atomic_abort(&a);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "cannot write %s: matio could not write the whole file "
                             "(disk full or file size limit?)", path);
    }
    return io_atomic_commit(&a, err);
}
