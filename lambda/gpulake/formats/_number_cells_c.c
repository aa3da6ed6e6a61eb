/* Compiled fast path of gpulake/formats/_values.py (to_numbers): one pass over a column of
 * table cells (an Arrow string array's offsets and data) that sorts each cell into a plain
 * number (parsed), a "no value" cell ("" or "-" once trimmed) or anything else, which the
 * Python reference (to_numbers_python) then reads. Python stays the rule; this code only
 * takes the cells whose reading is beyond doubt, so both paths agree by construction:
 *
 * - trimming removes ASCII blanks (space, \t, \n, \v, \f, \r), which Arrow's
 *   utf8_trim_whitespace also removes; a cell with any other control or non-ASCII byte is
 *   "other" (Unicode spaces, text);
 * - a number is exactly _values._NUMBER's numeric part with no unit:
 *   [-+]?(digits[.digits?]|.digits)([eE][-+]?digits)?
 *   read with the exact fast path (at most 15 significant digits and a power of ten up to
 *   22: one correctly rounded IEEE operation) or else PyOS_string_to_double, Python's own
 *   correctly rounded conversion; Arrow's cast is correctly rounded too, so the doubles
 *   match. A result that is not finite (1e309) is "other": the reference decides.
 *
 * The same module splits table sections in place for gpulake/formats/_cells.py (split,
 * classify_rows, read_times, gather; see the comment above split): Arrow's CSV reader stays the
 * reference and reads whatever split declines.
 *
 * CPython limited API (stable ABI, 3.11+), like _expo_scan_c.c; see
 * docs/adr/0006-compiled-exposition-scanner.md.
 */
#define Py_LIMITED_API 0x030B0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

enum { NUMBER = 0, ABSENT = 1, OTHER = 2 };

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int is_blank(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* The cell p[0..n) (trimmed): its kind, and its value when it is a number. Returns -1 on a
 * Python error (only PyOS_string_to_double can raise). */
static int read_cell(const unsigned char *p, Py_ssize_t n, double *out) {
    if (n == 0 || (n == 1 && p[0] == '-')) return ABSENT;
    Py_ssize_t i = 0;
    int neg = 0;
    if (p[i] == '+' || p[i] == '-') neg = p[i++] == '-';
    uint64_t m = 0;
    int sig = 0, seen = 0, exp10 = 0, exact = 1;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++, seen++) {
        if (m || p[i] != '0') sig++;
        if (sig > 15) exact = 0; /* too many digits for the exact path: PyOS_string_to_double */
        else m = m * 10 + (uint64_t)(p[i] - '0');
    }
    if (i < n && p[i] == '.') {
        for (i++; i < n && p[i] >= '0' && p[i] <= '9'; i++, seen++) {
            if (m || p[i] != '0') sig++;
            if (sig > 15) exact = 0;
            else {
                m = m * 10 + (uint64_t)(p[i] - '0');
                exp10--;
            }
        }
    }
    if (!seen) return OTHER;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        Py_ssize_t e = i + 1;
        int eneg = 0, edigits = 0;
        long ev = 0;
        if (e < n && (p[e] == '+' || p[e] == '-')) eneg = p[e++] == '-';
        for (; e < n && p[e] >= '0' && p[e] <= '9'; e++, edigits++) {
            if (ev < 100000) ev = ev * 10 + (p[e] - '0');
        }
        if (!edigits) return OTHER;
        exp10 += (int)(eneg ? -ev : ev);
        i = e;
    }
    if (i != n) return OTHER;
    if (exact && exp10 >= -22 && exp10 <= 22) {
        double v = exp10 < 0 ? (double)m / POW10[-exp10] : (double)m * POW10[exp10];
        *out = neg ? -v : v;
        return NUMBER;
    }
    char buf[64];
    if (n >= (Py_ssize_t)sizeof(buf)) return OTHER;
    memcpy(buf, p, (size_t)n);
    buf[n] = 0;
    char *end = NULL;
    double v = PyOS_string_to_double(buf, &end, NULL);
    if (v == -1.0 && PyErr_Occurred()) return -1;
    if (end != buf + n || !isfinite(v)) return OTHER;
    *out = v;
    return NUMBER;
}

/* Trim ASCII blanks from [*a, *b) and read the cell: NUMBER, ABSENT, OTHER or -1 on a Python error. */
static int trimmed_cell(const unsigned char *text, Py_ssize_t a, Py_ssize_t b, double *out) {
    while (a < b && is_blank(text[a])) a++;
    while (b > a && is_blank(text[b - 1])) b--;
    *out = 0.0;
    return read_cell(text + a, b - a, out);
}

static void release(Py_buffer *views, int count) {
    for (int i = 0; i < count; i++)
        if (views[i].obj) PyBuffer_Release(&views[i]);
}

static PyObject *classify(PyObject *module, PyObject *args) {
    PyObject *objs[4];
    if (!PyArg_ParseTuple(args, "OOOO", &objs[0], &objs[1], &objs[2], &objs[3])) return NULL;
    Py_buffer v[4] = {{0}}; /* offsets, data, values, kinds */
    PyObject *result = NULL;
    if (PyObject_GetBuffer(objs[0], &v[0], PyBUF_SIMPLE) < 0 || PyObject_GetBuffer(objs[1], &v[1], PyBUF_SIMPLE) < 0 ||
        PyObject_GetBuffer(objs[2], &v[2], PyBUF_WRITABLE) < 0 || PyObject_GetBuffer(objs[3], &v[3], PyBUF_WRITABLE) < 0)
        goto done;
    Py_ssize_t n = v[3].len;
    if (v[0].len != (n + 1) * (Py_ssize_t)sizeof(int32_t) || v[2].len != n * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "classify: offsets must hold n + 1 int32, values n float64, kinds n bytes");
        goto done;
    }
    const int32_t *off = v[0].buf;
    Py_ssize_t others = 0;
    for (Py_ssize_t r = 0; r < n; r++) {
        Py_ssize_t a = off[r], b = off[r + 1];
        if (a < 0 || b < a || b > v[1].len) {
            PyErr_SetString(PyExc_ValueError, "classify: offsets outside the data buffer");
            goto done;
        }
        int k = trimmed_cell(v[1].buf, a, b, &((double *)v[2].buf)[r]);
        if (k < 0) goto done;
        ((unsigned char *)v[3].buf)[r] = (unsigned char)k;
        others += k == OTHER;
    }
    result = PyLong_FromSsize_t(others);
done:
    release(v, 4);
    return result;
}

/* ---- Sections split here instead of by Arrow's CSV reader ----
 * split() fills a rows x (ncols + 1) int32 matrix of cell bounds relative to the section's
 * text: bounds[r][j] is where cell j of row r starts and bounds[r][j + 1] - 1 where it ends (a
 * comma, or the line end for the last cell), so no cell is copied. It reads what Arrow's reader
 * reads (ignore_empty_lines, no quoting needed) and declines (returns None) text where the two
 * could differ: a double quote, a byte >= 0x80 (UTF-8: Unicode blanks, validation), a carriage
 * return that does not end a line before its "\n". Rows whose cell count is not ncols are
 * reported as rejected (start, end) pairs, as Arrow's invalid-row handler would see them. */

enum { SPECIAL_NONE = 0, SPECIAL_COMMA, SPECIAL_NEWLINE, SPECIAL_CR, SPECIAL_DECLINE };

static unsigned char SPECIAL[256];

static void init_special(void) {
    for (int c = 0x80; c < 256; c++) SPECIAL[c] = SPECIAL_DECLINE;
    SPECIAL['"'] = SPECIAL_DECLINE;
    SPECIAL[','] = SPECIAL_COMMA;
    SPECIAL['\n'] = SPECIAL_NEWLINE;
    SPECIAL['\r'] = SPECIAL_CR;
}

/* Whether the first cell [a, b) trimmed of ASCII blanks is exactly drop[0..n); -1 when Arrow's
 * Unicode trim could see it otherwise (a separator byte 0x1C-0x1F in the cell). */
static int is_dropped(const unsigned char *text, Py_ssize_t a, Py_ssize_t b, const unsigned char *drop, Py_ssize_t n) {
    for (Py_ssize_t i = a; i < b; i++)
        if (text[i] >= 0x1C && text[i] <= 0x1F) return -1;
    while (a < b && is_blank(text[a])) a++;
    while (b > a && is_blank(text[b - 1])) b--;
    return b - a == n && memcmp(text + a, drop, (size_t)n) == 0;
}

/* lines(text) -> the count of "\n" + 1: split()'s row capacity (memchr: faster than bytes.count). */
static PyObject *lines(PyObject *module, PyObject *arg) {
    Py_buffer v = {0};
    if (PyObject_GetBuffer(arg, &v, PyBUF_SIMPLE) < 0) return NULL;
    const char *p = v.buf, *end = p + v.len;
    Py_ssize_t count = 1;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        count++;
        p++;
    }
    PyBuffer_Release(&v);
    return PyLong_FromSsize_t(count);
}

static PyObject *split(PyObject *module, PyObject *args) {
    PyObject *objs[4];
    Py_ssize_t ncols;
    if (!PyArg_ParseTuple(args, "OnOOO", &objs[0], &ncols, &objs[1], &objs[2], &objs[3])) return NULL;
    Py_buffer v[4] = {{0}}; /* text, drop (b"" for none), bounds, rejected */
    PyObject *result = NULL;
    if (PyObject_GetBuffer(objs[0], &v[0], PyBUF_SIMPLE) < 0 || PyObject_GetBuffer(objs[1], &v[1], PyBUF_SIMPLE) < 0 ||
        PyObject_GetBuffer(objs[2], &v[2], PyBUF_WRITABLE) < 0 || PyObject_GetBuffer(objs[3], &v[3], PyBUF_WRITABLE) < 0)
        goto done;
    const unsigned char *text = v[0].buf, *drop = v[1].buf;
    Py_ssize_t len = v[0].len, width = ncols + 1;
    if (ncols < 1 || len > INT32_MAX - 1) {
        PyErr_SetString(PyExc_ValueError, "split: ncols must be >= 1 and the text shorter than 2 GiB");
        goto done;
    }
    Py_ssize_t capacity = v[2].len / (Py_ssize_t)sizeof(int32_t) / width;
    Py_ssize_t reject_capacity = v[3].len / (Py_ssize_t)(2 * sizeof(int32_t));
    int32_t *bounds = v[2].buf, *rejected = v[3].buf;
    Py_ssize_t rows = 0, nrejected = 0, p = 0;
    while (p < len) {
        Py_ssize_t start = p, commas = 0, end;
        if (rows >= capacity) {
            PyErr_SetString(PyExc_ValueError, "split: bounds must hold a row per line");
            goto done;
        }
        int32_t *row = bounds + rows * width;
        row[0] = (int32_t)start;
        for (;;) {
            while (p < len && !SPECIAL[text[p]]) p++;
            if (p == len) {
                end = p;
                break;
            }
            unsigned char kind = SPECIAL[text[p]];
            if (kind == SPECIAL_COMMA) {
                if (++commas < ncols) row[commas] = (int32_t)(p + 1);
                p++;
            } else if (kind == SPECIAL_NEWLINE) {
                end = p++;
                break;
            } else if (kind == SPECIAL_CR && p + 1 < len && text[p + 1] == '\n') {
                end = p;
                p += 2;
                break;
            } else {
                goto declined;
            }
        }
        if (end == start) continue; /* an empty line: Arrow skips it */
        if (commas != ncols - 1) {
            if (nrejected >= reject_capacity) {
                PyErr_SetString(PyExc_ValueError, "split: rejected must hold two int32 per line");
                goto done;
            }
            rejected[2 * nrejected] = (int32_t)start;
            rejected[2 * nrejected + 1] = (int32_t)end;
            nrejected++;
            continue;
        }
        row[ncols] = (int32_t)(end + 1);
        if (v[1].len) {
            int dropped = is_dropped(text, start, row[1] - 1, drop, v[1].len);
            if (dropped < 0) goto declined;
            if (dropped) continue;
        }
        rows++;
    }
    result = Py_BuildValue("nn", rows, nrejected);
    goto done;
declined:
    Py_INCREF(Py_None);
    result = Py_None;
done:
    release(v, 4);
    return result;
}

/* The buffers of a call on one column of split()'s bounds: bounds, text, then the outputs. */
typedef struct {
    Py_buffer v[4];
    const int32_t *bounds;
    const unsigned char *text;
    Py_ssize_t width, column, rows;
} Cells;

/* Parse (bounds, ncols, column, text, out, kinds): out holds rows items of out_size bytes; with
 * out_size < 0 (gather) out is free-sized and the last buffer holds rows + 1 int32 offsets. */
static int open_cells(PyObject *args, Cells *c, Py_ssize_t out_size, const char *name) {
    PyObject *objs[4];
    Py_ssize_t ncols;
    memset(c, 0, sizeof(*c));
    if (!PyArg_ParseTuple(args, "OnnOOO", &objs[0], &ncols, &c->column, &objs[1], &objs[2], &objs[3])) return -1;
    if (PyObject_GetBuffer(objs[0], &c->v[0], PyBUF_SIMPLE) < 0 || PyObject_GetBuffer(objs[1], &c->v[1], PyBUF_SIMPLE) < 0 ||
        PyObject_GetBuffer(objs[2], &c->v[2], PyBUF_WRITABLE) < 0 || PyObject_GetBuffer(objs[3], &c->v[3], PyBUF_WRITABLE) < 0)
        return -1;
    c->width = ncols + 1;
    c->rows = out_size < 0 ? c->v[3].len / (Py_ssize_t)sizeof(int32_t) - 1 : c->v[3].len;
    c->bounds = c->v[0].buf;
    c->text = c->v[1].buf;
    if (ncols < 1 || c->column < 0 || c->column >= ncols || c->rows < 0 ||
        c->v[0].len < c->rows * c->width * (Py_ssize_t)sizeof(int32_t) || (out_size >= 0 && c->v[2].len != c->rows * out_size)) {
        PyErr_Format(PyExc_ValueError, "%s: bounds must hold rows x (ncols + 1) int32, a column below ncols, "
                     "an output item per kind", name);
        return -1;
    }
    return 0;
}

/* Cell r of the column: [*a, *b) in the text, or -1 (ValueError set) for bounds outside it. */
static int cell_at(Cells *c, Py_ssize_t r, Py_ssize_t *a, Py_ssize_t *b) {
    const int32_t *row = c->bounds + r * c->width + c->column;
    *a = row[0];
    *b = (Py_ssize_t)row[1] - 1;
    if (*a < 0 || *b < *a || *b > c->v[1].len) {
        PyErr_SetString(PyExc_ValueError, "cell bounds outside the text");
        return -1;
    }
    return 0;
}

/* classify_rows(bounds, ncols, text, values, kinds, others) -> all others: classify() on every
 * cell of split()'s rows, row by row (the text is read once, in order: a column at a time would
 * jump a line ahead for every cell). values and kinds are ncols x rows (column-major), others gets
 * each column's count of 'other' cells (int64). */
static PyObject *classify_rows(PyObject *module, PyObject *args) {
    PyObject *objs[5];
    Py_ssize_t ncols;
    if (!PyArg_ParseTuple(args, "OnOOOO", &objs[0], &ncols, &objs[1], &objs[2], &objs[3], &objs[4])) return NULL;
    Py_buffer v[5] = {{0}}; /* bounds, text, values, kinds, others */
    PyObject *result = NULL;
    if (PyObject_GetBuffer(objs[0], &v[0], PyBUF_SIMPLE) < 0 || PyObject_GetBuffer(objs[1], &v[1], PyBUF_SIMPLE) < 0 ||
        PyObject_GetBuffer(objs[2], &v[2], PyBUF_WRITABLE) < 0 || PyObject_GetBuffer(objs[3], &v[3], PyBUF_WRITABLE) < 0 ||
        PyObject_GetBuffer(objs[4], &v[4], PyBUF_WRITABLE) < 0)
        goto done;
    Py_ssize_t width = ncols + 1, rows = ncols > 0 ? v[3].len / ncols : 0;
    if (ncols < 1 || v[3].len != rows * ncols || v[2].len != v[3].len * (Py_ssize_t)sizeof(double) ||
        v[0].len < rows * width * (Py_ssize_t)sizeof(int32_t) || v[4].len != ncols * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "classify_rows: bounds must hold rows x (ncols + 1) int32, values ncols x "
                                          "rows float64, kinds ncols x rows bytes, others ncols int64");
        goto done;
    }
    const int32_t *bounds = v[0].buf;
    const unsigned char *text = v[1].buf;
    double *values = v[2].buf;
    unsigned char *kinds = v[3].buf;
    int64_t *others = v[4].buf, total = 0;
    memset(others, 0, (size_t)v[4].len);
    for (Py_ssize_t r = 0; r < rows; r++) {
        const int32_t *row = bounds + r * width;
        for (Py_ssize_t j = 0; j < ncols; j++) {
            Py_ssize_t a = row[j], b = (Py_ssize_t)row[j + 1] - 1;
            if (a < 0 || b < a || b > v[1].len) {
                PyErr_SetString(PyExc_ValueError, "classify_rows: cell bounds outside the text");
                goto done;
            }
            int k = trimmed_cell(text, a, b, &values[j * rows + r]);
            if (k < 0) goto done;
            kinds[j * rows + r] = (unsigned char)k;
            if (k == OTHER) {
                others[j]++;
                total++;
            }
        }
    }
    result = PyLong_FromLongLong(total);
done:
    release(v, 5);
    return result;
}

/* Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const unsigned char *p, int n) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* A trimmed cell "YYYY-MM-DD HH:MM:SS" ("/" for "-", "T" for " "; a real date, year >= 1) to
 * naive epoch ms; 0 when the cell is anything else (timeutil's Python rule reads those). */
static int read_time(const unsigned char *p, Py_ssize_t n, int64_t *out) {
    static const int DAYS[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (n != 19 || (p[4] != '-' && p[4] != '/') || (p[7] != '-' && p[7] != '/') || (p[10] != ' ' && p[10] != 'T') ||
        p[13] != ':' || p[16] != ':')
        return 0;
    int y = digits(p, 4), m = digits(p + 5, 2), d = digits(p + 8, 2);
    int hh = digits(p + 11, 2), mm = digits(p + 14, 2), ss = digits(p + 17, 2);
    if (y < 1 || m < 1 || m > 12 || d < 1 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 59) return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > DAYS[m - 1] + (m == 2 && leap)) return 0;
    *out = ((days_from_civil(y, m, d) * 24 + hh) * 60 + mm) * 60000 + (int64_t)ss * 1000;
    return 1;
}

static PyObject *read_times(PyObject *module, PyObject *args) {
    Cells c;
    PyObject *result = NULL;
    if (open_cells(args, &c, sizeof(int64_t), "read_times") < 0) goto done;
    Py_ssize_t others = 0;
    for (Py_ssize_t r = 0; r < c.rows; r++) {
        Py_ssize_t a, b;
        if (cell_at(&c, r, &a, &b) < 0) goto done;
        while (a < b && is_blank(c.text[a])) a++;
        while (b > a && is_blank(c.text[b - 1])) b--;
        int64_t *out = &((int64_t *)c.v[2].buf)[r];
        *out = 0;
        int ok = read_time(c.text + a, b - a, out);
        ((unsigned char *)c.v[3].buf)[r] = ok ? NUMBER : OTHER;
        others += !ok;
    }
    result = PyLong_FromSsize_t(others);
done:
    release(c.v, 4);
    return result;
}

/* gather(bounds, ncols, column, text, offsets, data): a column's cells as an Arrow string
 * array's offsets (rows + 1 int32; kinds' place holds them) and data (their total length). */
static PyObject *gather(PyObject *module, PyObject *args) {
    Cells c;
    PyObject *result = NULL;
    if (open_cells(args, &c, -1, "gather") < 0) goto done;
    int32_t *offsets = c.v[3].buf;
    unsigned char *data = c.v[2].buf;
    Py_ssize_t total = 0;
    offsets[0] = 0;
    for (Py_ssize_t r = 0; r < c.rows; r++) {
        Py_ssize_t a, b;
        if (cell_at(&c, r, &a, &b) < 0) goto done;
        if (total + (b - a) > c.v[2].len) {
            PyErr_SetString(PyExc_ValueError, "gather: data is shorter than the cells");
            goto done;
        }
        memcpy(data + total, c.text + a, (size_t)(b - a));
        total += b - a;
        offsets[r + 1] = (int32_t)total;
    }
    result = PyLong_FromSsize_t(total);
done:
    release(c.v, 4);
    return result;
}
static PyMethodDef methods[] = {
    {"classify", classify, METH_VARARGS,
     "classify(offsets, data, values, kinds) -> others: fill values (float64) and kinds (uint8: 0 number, "
     "1 no value, 2 other) for each cell of an Arrow string array; return the count of 'other' cells."},
    {"lines", lines, METH_O, "lines(text) -> the count of newlines + 1 (split()'s row capacity)."},
    {"split", split, METH_VARARGS,
     "split(text, ncols, drop, bounds, rejected) -> (rows, rejected rows) or None: cell bounds (int32, rows x "
     "(ncols + 1)) of a CSV section, rows of another cell count as (start, end) pairs, rows whose first cell is "
     "drop (b'': none) left out; None where Arrow's CSV reader must read the text instead."},
    {"classify_rows", classify_rows, METH_VARARGS,
     "classify_rows(bounds, ncols, text, values, kinds, others) -> all others: classify() on every cell of "
     "split()'s rows; values (float64), kinds (uint8) ncols x rows, others (int64) per column."},
    {"read_times", read_times, METH_VARARGS,
     "read_times(bounds, ncols, column, text, ms, kinds) -> others: 'YYYY-MM-DD HH:MM:SS' cells of a column of "
     "split() to naive epoch ms (int64), kind 0; every other cell kind 2, left to the Python rule."},
    {"gather", gather, METH_VARARGS,
     "gather(bounds, ncols, column, text, data, offsets) -> length: a column of split() as an Arrow string "
     "array's data and offsets (rows + 1 int32)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_number_cells_c", "Compiled table-cell reader: CSV sections split, numbers and times read (see _cells.py, _values.py).", 0, methods,
};

PyMODINIT_FUNC PyInit__number_cells_c(void) {
    init_special();
    return PyModule_Create(&module_def);
}
