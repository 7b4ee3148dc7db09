/* io_tsv.c — reading and writing TSV/CSV tables (see io_tsv.h). */
#include "io/io_tsv.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "io/io_atomic.h"

/* Largest decompressed .gz table accepted (a guard against gzip bombs). */
#define IO_GZ_MAX ((size_t)1 << 31)

static int is_gz_path(const char *path)
{
    size_t n = strlen(path);
    return n > 3 && strcmp(path + n - 3, ".gz") == 0;
}

/* A gzip-compressed table, decompressed into memory (*mem, len bytes, one
 * more holding a NUL; freed by the caller). Closes f. */
static int gz_slurp(const char *path, FILE *f, char **mem, size_t *len_out, dcm_error *err)
{
    *mem = NULL;
    *len_out = 0;
    int fd = dup(fileno(f));
    fclose(f);
    gzFile g = fd >= 0 ? gzdopen(fd, "rb") : NULL;
    if (!g) {
        if (fd >= 0)
            close(fd);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "cannot read %s: %s", path, strerror(errno));
    }
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap + 1);
    int got = 0;
    while (buf) {
        if (len == cap) {
            char *nb = cap < IO_GZ_MAX ? realloc(buf, 2 * cap + 1) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb, cap *= 2;
        }
        got = gzread(g, buf + len, (unsigned)(cap - len > (1u << 30) ? (1u << 30) : cap - len));
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    /* a stream cut short ends with Z_BUF_ERROR, not a read error */
    int zerr = Z_OK;
    const char *zmsg = gzerror(g, &zerr);
    if (got >= 0 && zerr == Z_OK)
        zmsg = NULL;
    else if (zerr == Z_BUF_ERROR)
        zmsg = "the compressed data end early: the file is truncated";
    gzclose(g);
    if (!buf)
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: decompressed table too large (more than %zu "
                             "bytes) or out of memory", path, IO_GZ_MAX);
    if (zmsg) {
        free(buf);
        return dcm_error_set(err, DCM_ERR_INPUT, "%s: not a valid gzip file (%s); decompress it "
                             "or write it again with gzip", path, zmsg);
    }
    buf[len] = '\0';
    *mem = buf;
    *len_out = len;
    return DCM_OK;
}

/* The same, opened as a stream. */
static FILE *open_gz(const char *path, FILE *f, char **mem, dcm_error *err)
{
    size_t len;
    if (gz_slurp(path, f, mem, &len, err))
        return NULL;
    FILE *m = len ? fmemopen(*mem, len, "r") : NULL;
    if (!m) {
        free(*mem);
        *mem = NULL;
        if (len)
            dcm_error_set(err, DCM_ERR_SYSTEM, "%s: cannot open the decompressed table", path);
        else
            dcm_error_set(err, DCM_ERR_INPUT, "%s: file is empty (no rows)", path);
        return NULL;
    }
    return m;
}

void io_text_free(io_text_table *t)
{
    if (!t)
        return;
    if (t->cells)
        for (long k = 0; k < (long)t->rows * t->cols; k++)
            free(t->cells[k]);
    free(t->cells);
    free(t->line);
    t->cells = NULL;
    t->line = NULL;
    t->rows = t->cols = 0;
}

void io_table_free(io_table *t)
{
    if (!t)
        return;
    if (t->names)
        for (int c = 0; c < t->cols; c++)
            free(t->names[c]);
    free(t->names);
    free(t->data);
    free(t->line);
    t->names = NULL;
    t->data = NULL;
    t->line = NULL;
    t->rows = t->cols = 0;
}

int io_table_find(const io_table *t, const char *name)
{
    if (!t->names)
        return -1;
    for (int c = 0; c < t->cols; c++)
        if (strcmp(t->names[c], name) == 0)
            return c;
    return -1;
}

static int is_blank_line(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return 0;
    return 1;
}

/* Copy s[0..len) trimmed of blanks and one pair of double quotes. */
static char *cell_dup(const char *s, size_t len)
{
    while (len && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        s++;
        len -= 2;
    }
    char *out = malloc(len + 1);
    if (out) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    return out;
}

static int count_fields(const char *s, char delim)
{
    int k = 1;
    for (; *s; s++)
        if (*s == delim)
            k++;
    return k;
}

/* fields of s separated by runs of blanks (spaces, tabs) */
static int count_blank_fields(const char *s)
{
    int k = 0, in = 0;
    for (; *s; s++) {
        int blank = isspace((unsigned char)*s) != 0;
        if (!blank && !in)
            k++;
        in = !blank;
    }
    return k;
}

int io_text_read(const char *path, io_text_table *t, dcm_error *err)
{
    memset(t, 0, sizeof *t);
    /* only regular files: a FIFO would hang and /dev/zero never end */
    FILE *f = io_input_open(path, "table", err);
    char *gz_mem = NULL;   /* a .gz table is read from memory */
    if (f && is_gz_path(path))
        f = open_gz(path, f, &gz_mem, err);
    if (!f)
        return err && err->code ? err->code : DCM_ERR_INPUT;
    int ws_first = 0, ws_same = 1;   /* blank-separated fields: first row, all rows alike */
    char *buf = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0, rows_cap = 0, rc = DCM_OK;
    while ((got = getline(&buf, &cap, f)) >= 0) {
        lineno++;
        if ((size_t)got != strlen(buf)) {
            rc = dcm_error_set(err, DCM_ERR_INPUT,
                               "%s, line %d: contains a NUL byte; is this a text table?", path, lineno);
            break;
        }
        if (lineno == 1 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB &&
            (unsigned char)buf[2] == 0xBF)
            memmove(buf, buf + 3, strlen(buf + 3) + 1);   /* UTF-8 byte-order mark */
        if (is_blank_line(buf))
            continue;
        if (t->rows == 0) {
            t->delim = strchr(buf, '\t') ? '\t' : strchr(buf, ',') ? ',' : '\t';
            t->cols = count_fields(buf, t->delim);
        }
        int k = count_fields(buf, t->delim), ws = count_blank_fields(buf);
        if (t->rows == 0)
            ws_first = ws;
        else if (ws != ws_first)
            ws_same = 0;
        if (k != t->cols) {
            int spaced = t->delim == '\t' && k == 1 && ws == t->cols;
            rc = dcm_error_set(err, DCM_ERR_INPUT,
                               "%s, line %d: row has %d columns but the first row (line %d) has %d; "
                               "every row needs the same number of %s-separated cells%s",
                               path, lineno, k, t->line[0], t->cols,
                               t->delim == '\t' ? "tab" : "comma",
                               spaced ? " (columns must be separated by tabs; this line separates "
                                        "them with spaces)" : "");
            break;
        }
        if (t->rows == rows_cap) {
            int nc = rows_cap ? 2 * rows_cap : 256;
            char **cells = realloc(t->cells, sizeof(char *) * (size_t)nc * (size_t)t->cols);
            if (cells)
                t->cells = cells;
            int *ln = realloc(t->line, sizeof(int) * (size_t)nc);
            if (ln)
                t->line = ln;
            if (!cells || !ln) {
                rc = dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory", path);
                break;
            }
            rows_cap = nc;
        }
        char **row = t->cells + (size_t)t->rows * t->cols;
        const char *s = buf;
        int c;
        for (c = 0; c < t->cols; c++) {
            const char *e = strchr(s, t->delim);
            size_t len = e ? (size_t)(e - s) : strlen(s);
            row[c] = cell_dup(s, len);
            if (!row[c])
                break;
            s = e ? e + 1 : s + len;
        }
        t->line[t->rows] = lineno;
        t->rows++;
        if (c < t->cols) {
            for (; c < t->cols; c++)
                row[c] = NULL;
            rc = dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory", path);
            break;
        }
    }
    if (rc == DCM_OK && ferror(f))
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: read error: %s", path, strerror(errno));
    free(buf);
    fclose(f);
    free(gz_mem);
    if (rc == DCM_OK && t->rows == 0)
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: file is empty (no rows)", path);
    /* one column whose every row splits alike at blanks: a table written
       with spaces for tabs (a header "subject model spec") */
    if (rc == DCM_OK && t->cols == 1 && ws_first >= 2 && ws_same)
        rc = dcm_error_set(err, DCM_ERR_INPUT,
                           "%s, line %d: columns must be separated by tabs; this file separates "
                           "them with spaces (\"%.60s\" is read as one cell)",
                           path, t->line[0], t->cells[0]);
    if (rc != DCM_OK)
        io_text_free(t);
    return rc;
}

/* 16 to 19 significant digits (what "%.17g" and shortest round-trip
 * writers give): the digits and the power of ten (up to 1e27) are exact in
 * x87's 64-bit-mantissa long double, so one multiply or divide there is
 * correctly rounded; rounding that again to double is the correctly
 * rounded double unless the long double lies within one of its units of
 * a halfway point between doubles (its 11 extra bits 0x3FF..0x401), left
 * to strtod. Returns 0 and sets *x, or -1. */
static int extended_decimal(uint64_t mant, int e, double *x)
{
#if defined(__x86_64__) && LDBL_MANT_DIG == 64
    static const long double pow10l[28] = {
        1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
        1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
        1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};
    if (e < -27 || e > 27)
        return -1;
    long double q = (long double)mant;
    q = e >= 0 ? q * pow10l[e] : q / pow10l[-e];
    int ex;
    long double fr = frexpl(q, &ex);   /* q = fr 2^ex, fr in [0.5, 1) */
    if (ex < -1000 || ex > 1000)
        return -1;
    uint64_t bits = (uint64_t)ldexpl(fr, 64), low = bits & 0x7FF;
    if (low >= 0x3FF && low <= 0x401)
        return -1;
    *x = (double)q;
    return 0;
#else
    (void)mant, (void)e, (void)x;
    return -1;
#endif
}

/* Plain decimals ([+-]digits[.digits][e[+-]digits]) with at most 15
 * significant digits and a decimal exponent within +-22: the digits are an
 * exact double and so is the power of ten, so one multiply or divide gives
 * the correctly rounded value, the double strtod returns (Clinger's fast
 * path); 16 to 19 digits by extended_decimal; without strtod's locale and
 * multi-precision work. Returns 0 and sets *x, or -1 for anything else
 * (left to strtod). */
static int parse_plain_decimal(const char *s, double *x)
{
    static const double pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char *p = s;
    int neg = *p == '-';
    if (*p == '+' || *p == '-')
        p++;
    uint64_t mant = 0;
    int sig = 0, frac = 0, digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++)
        if (mant || *p != '0') {
            mant = mant * 10 + (uint64_t)(*p - '0');
            sig++;
        }
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++, digits++, frac++)
            if (mant || *p != '0') {
                mant = mant * 10 + (uint64_t)(*p - '0');
                sig++;
            }
    if (!digits || sig > 19)
        return -1;
    int e = 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        int eneg = *p == '-';
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return -1;
        for (; *p >= '0' && *p <= '9'; p++)
            if (e < 1000)
                e = e * 10 + (*p - '0');
        e = eneg ? -e : e;
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p)
        return -1;
    e -= frac;
    double v = (double)mant;
    if (mant == 0)
        v = 0.0;
    else if (sig > 15) {
        if (extended_decimal(mant, e, &v))
            return -1;
    } else if (e >= 0 && e <= 22)
        v *= pow10[e];
    else if (e < 0 && e >= -22)
        v /= pow10[-e];
    else
        return -1;
    *x = neg ? -v : v;
    return 0;
}

int io_parse_number(const char *s, double *x)
{
    while (isspace((unsigned char)*s))
        s++;
    if (!*s)
        return 1;
    if (parse_plain_decimal(s, x) == 0)
        return 0;
    /* reject the words strtod would accept for non-finite values */
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (tolower((unsigned char)*p) == 'n' || tolower((unsigned char)*p) == 'i') {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        while (isspace((unsigned char)*end))
            end++;
        return (end != s && !*end && !isfinite(v)) ? 2 : 1;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s)
        return 1;
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return 1;
    if (!isfinite(v))
        return 2;
    *x = v;
    return 0;
}

/* The whole file (decompressed when .gz) in memory, NUL-terminated. */
static char *slurp(const char *path, size_t *len, dcm_error *err)
{
    FILE *f = io_input_open(path, "table", err);
    if (!f)
        return NULL;
    char *buf = NULL;
    if (is_gz_path(path)) {
        if (gz_slurp(path, f, &buf, len, err))
            return NULL;
        return buf;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size >= 0 && (uint64_t)st.st_size < IO_GZ_MAX)
        buf = malloc((size_t)st.st_size + 1);
    *len = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    if (buf && (ferror(f) || *len != (size_t)st.st_size)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        buf[*len] = '\0';
    return buf;
}

/* Trim cell [s, e) of blanks and one pair of double quotes (as cell_dup),
 * end it with a NUL in place and return its start. */
static char *cell_in_place(char *s, char *e)
{
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    if (e - s >= 2 && s[0] == '"' && e[-1] == '"') {
        s++;
        e--;
    }
    *e = '\0';
    return s;
}

static int names_nonempty(char *const *names, int cols)
{
    for (int c = 0; c < cols; c++)
        if (!names[c][0])
            return 0;
    return 1;
}

/* io_tsv_read for well-formed tables, parsing in place without a string
 * per cell (a whole-brain series has 10^5-10^6 cells). Returns 0 with *t
 * filled exactly as the general path would, or -1 for anything unusual
 * (a read error, a NUL byte, ragged rows, one column, a cell that is not a
 * number, ...): the caller then takes the general path, which says what is
 * wrong. */
static int tsv_read_fast(const char *path, io_table *t)
{
    memset(t, 0, sizeof *t);
    size_t len = 0;
    dcm_error quiet = {0};
    char *buf = slurp(path, &len, &quiet);
    if (!buf)
        return -1;
    char *p = buf, *end = buf + len;
    if (memchr(buf, '\0', len)) {
        free(buf);
        return -1;
    }
    if (len >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
        (unsigned char)p[2] == 0xBF)
        p += 3;
    int lineno = 0, header = -1, cols = 0, rows = 0, cap = 0, ok = 1;
    char delim = '\t';
    double *vals = NULL;   /* row-major while reading */
    int *lines = NULL;
    while (ok && p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
        lineno++;
        char *q = p;
        while (q < le && isspace((unsigned char)*q))
            q++;
        if (q == le) {          /* a blank line */
            p = next;
            continue;
        }
        if (header < 0) {
            delim = memchr(p, '\t', (size_t)(le - p)) ? '\t' : memchr(p, ',', (size_t)(le - p)) ? ',' : '\t';
            cols = 1;
            for (q = p; q < le; q++)
                cols += *q == delim;
            if (cols < 2)
                break;          /* one column: the general path checks for spaces */
            /* the first row: names (a header) or numbers; never both. Read
             * without changing buf: a row of numbers is data, parsed below */
            int nname = 0, nnum = 0;
            char *s = p, tmp[256];
            t->names = calloc((size_t)cols, sizeof(char *));
            for (int c = 0; c < cols && t->names && ok; c++) {
                char *e = memchr(s, delim, (size_t)(le - s));
                e = e ? e : le;
                size_t n = (size_t)(e - s);
                if (n >= sizeof tmp) {
                    ok = 0;
                    break;
                }
                memcpy(tmp, s, n);
                char *cell = cell_in_place(tmp, tmp + n);
                double x;
                if (cell[0]) {
                    if (io_parse_number(cell, &x) == 1)
                        nname++;
                    else
                        nnum++;
                }
                ok = (t->names[c] = strdup(cell)) != NULL;
                s = e + 1;
            }
            if (!t->names || !ok || (nname && nnum) || (nname && !names_nonempty(t->names, cols))) {
                ok = 0;
                break;
            }
            header = nname > 0;
            if (header) {
                p = next;
                continue;
            }
            for (int c = 0; c < cols; c++)
                free(t->names[c]);
            free(t->names);
            t->names = NULL;
        }
        int k = 1;
        for (q = p; q < le; q++)
            k += *q == delim;
        if (k != cols) {
            ok = 0;
            break;
        }
        if (rows == cap) {
            int nc = cap ? 2 * cap : 1024;
            double *nv = realloc(vals, sizeof(double) * (size_t)nc * (size_t)cols);
            if (nv)
                vals = nv;
            int *nlines = realloc(lines, sizeof(int) * (size_t)nc);
            if (nlines)
                lines = nlines;
            if (!nv || !nlines) {
                ok = 0;
                break;
            }
            cap = nc;
        }
        char *s = p;
        for (int c = 0; c < cols && ok; c++) {
            char *e = memchr(s, delim, (size_t)(le - s));
            e = e ? e : le;
            char *cell = cell_in_place(s, e);
            ok = io_parse_number(cell, &vals[(size_t)rows * cols + c]) == 0;
            s = e + 1;
        }
        lines[rows++] = lineno;
        p = next;
    }
    free(buf);
    ok = ok && header >= 0 && rows > 0 && cols >= 2;
    if (ok) {
        t->rows = rows, t->cols = cols;
        t->data = malloc(sizeof(double) * (size_t)rows * (size_t)cols);
        t->line = lines;
        lines = NULL;
        ok = t->data != NULL;
        for (int r = 0; ok && r < rows; r++)
            for (int c = 0; c < cols; c++)
                t->data[r + (size_t)c * rows] = vals[(size_t)r * cols + c];
    }
    free(vals);
    free(lines);
    if (!ok) {
        t->cols = cols;   /* io_table_free frees cols names */
        io_table_free(t);
        return -1;
    }
    return 0;
}

int io_tsv_read(const char *path, io_table *t, dcm_error *err)
{
    if (tsv_read_fast(path, t) == 0)
        return DCM_OK;
    memset(t, 0, sizeof *t);
    io_text_table tt;
    int rc = io_text_read(path, &tt, err);
    if (rc)
        return rc;
    /* header detection on the first row */
    int nnum = 0, nname = 0, first_name = -1, first_num = -1;
    for (int c = 0; c < tt.cols; c++) {
        double x;
        if (!tt.cells[c][0])
            continue;   /* empty: neither a name nor a number */
        if (io_parse_number(tt.cells[c], &x) == 1) {
            nname++;
            if (first_name < 0)
                first_name = c;
        } else {
            nnum++;
            if (first_num < 0)
                first_num = c;
        }
    }
    int header = nname > 0;
    if (nname > 0 && nnum > 0) {
        rc = dcm_error_set(err, DCM_ERR_INPUT,
                           "%s, line %d: the first row mixes names (column %d: \"%s\") and numbers "
                           "(column %d: \"%s\"); a header row must hold only column names",
                           path, tt.line[0], first_name + 1, tt.cells[first_name], first_num + 1,
                           tt.cells[first_num]);
        io_text_free(&tt);
        return rc;
    }
    t->cols = tt.cols;
    t->rows = tt.rows - header;
    if (t->rows == 0) {
        rc = dcm_error_set(err, DCM_ERR_INPUT, "%s: has a header (line %d) but no data rows",
                           path, tt.line[0]);
        io_text_free(&tt);
        return rc;
    }
    t->data = malloc(sizeof(double) * (size_t)t->rows * (size_t)t->cols);
    t->line = malloc(sizeof(int) * (size_t)t->rows);
    if (header)
        t->names = calloc((size_t)t->cols, sizeof(char *));
    if (!t->data || !t->line || (header && !t->names)) {
        io_text_free(&tt);
        io_table_free(t);
        return dcm_error_set(err, DCM_ERR_SYSTEM, "%s: out of memory", path);
    }
    if (header)
        for (int c = 0; c < t->cols; c++) {
            if (!tt.cells[c][0]) {
                rc = dcm_error_set(err, DCM_ERR_INPUT, "%s, line %d, column %d: empty column name",
                                   path, tt.line[0], c + 1);
                io_text_free(&tt);
                io_table_free(t);
                return rc;
            }
            t->names[c] = tt.cells[c];   /* take ownership */
            tt.cells[c] = NULL;
        }
    for (int r = 0; r < t->rows; r++) {
        int tr = r + header;
        t->line[r] = tt.line[tr];
        for (int c = 0; c < t->cols; c++) {
            const char *cell = tt.cells[(size_t)tr * tt.cols + c];
            double x = 0.0;
            int k = io_parse_number(cell, &x);
            if (k != 0) {
                char col[300];
                if (header)
                    snprintf(col, sizeof col, "column %d (\"%s\")", c + 1, t->names[c]);
                else
                    snprintf(col, sizeof col, "column %d", c + 1);
                if (!cell[0])
                    rc = dcm_error_set(err, DCM_ERR_INPUT, "%s, line %d, %s: empty cell; every value "
                                       "must be a number", path, tt.line[tr], col);
                else if (k == 2)
                    rc = dcm_error_set(err, DCM_ERR_INPUT,
                                       "%s, line %d, %s: \"%s\" is not finite; NaN/Inf values are not "
                                       "allowed (remove or interpolate them)", path, tt.line[tr], col, cell);
                else
                    rc = dcm_error_set(err, DCM_ERR_INPUT,
                                       "%s, line %d, %s: \"%s\" is not a number%s", path, tt.line[tr],
                                       col, cell,
                                       t->cols == 1 ? " (columns must be separated by tabs or commas)" : "");
                io_text_free(&tt);
                io_table_free(t);
                return rc;
            }
            t->data[r + (size_t)c * t->rows] = x;
        }
    }
    io_text_free(&tt);
    return DCM_OK;
}

int io_tsv_write(const char *path, int rows, int cols, const double *data,
                 const char *const *names, dcm_error *err)
{
    io_atomic a;
    int rc = io_atomic_open(&a, path, err);
    if (rc)
        return rc;
    if (names) {
        for (int c = 0; c < cols; c++)
            fprintf(a.fp, "%s%s", c ? "\t" : "", names[c]);
        fputc('\n', a.fp);
    }
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++)
            fprintf(a.fp, "%s%.17g", c ? "\t" : "", data[r + (size_t)c * rows]);
        fputc('\n', a.fp);
    }
    return io_atomic_commit(&a, err);   /* checks the stream's write errors */
}
