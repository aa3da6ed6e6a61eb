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

static PyObject *classify(PyObject *module, PyObject *args) {
    PyObject *offsets_obj, *data_obj, *values_obj, *kinds_obj;
    if (!PyArg_ParseTuple(args, "OOOO", &offsets_obj, &data_obj, &values_obj, &kinds_obj)) return NULL;
    Py_buffer offsets = {0}, data = {0}, values = {0}, kinds = {0};
    PyObject *result = NULL;
    if (PyObject_GetBuffer(offsets_obj, &offsets, PyBUF_SIMPLE) < 0) goto done;
    if (PyObject_GetBuffer(data_obj, &data, PyBUF_SIMPLE) < 0) goto done;
    if (PyObject_GetBuffer(values_obj, &values, PyBUF_WRITABLE) < 0) goto done;
    if (PyObject_GetBuffer(kinds_obj, &kinds, PyBUF_WRITABLE) < 0) goto done;
    Py_ssize_t n = kinds.len;
    if (offsets.len != (n + 1) * (Py_ssize_t)sizeof(int32_t) || values.len != n * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "classify: offsets must hold n + 1 int32, values n float64, kinds n bytes");
        goto done;
    }
    const int32_t *off = offsets.buf;
    const unsigned char *text = data.buf;
    double *out = values.buf;
    unsigned char *kind = kinds.buf;
    Py_ssize_t others = 0;
    for (Py_ssize_t r = 0; r < n; r++) {
        Py_ssize_t a = off[r], b = off[r + 1];
        if (a < 0 || b < a || b > data.len) {
            PyErr_SetString(PyExc_ValueError, "classify: offsets outside the data buffer");
            goto done;
        }
        while (a < b && is_blank(text[a])) a++;
        while (b > a && is_blank(text[b - 1])) b--;
        out[r] = 0.0;
        int k = read_cell(text + a, b - a, &out[r]);
        if (k < 0) goto done;
        kind[r] = (unsigned char)k;
        others += k == OTHER;
    }
    result = PyLong_FromSsize_t(others);
done:
    if (offsets.obj) PyBuffer_Release(&offsets);
    if (data.obj) PyBuffer_Release(&data);
    if (values.obj) PyBuffer_Release(&values);
    if (kinds.obj) PyBuffer_Release(&kinds);
    return result;
}

static PyMethodDef methods[] = {
    {"classify", classify, METH_VARARGS,
     "classify(offsets, data, values, kinds) -> others: fill values (float64) and kinds (uint8: 0 number, "
     "1 no value, 2 other) for each cell of an Arrow string array; return the count of 'other' cells."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_number_cells_c", "Compiled fast path of _values.to_numbers (see _values.py).", 0, methods,
};

PyMODINIT_FUNC PyInit__number_cells_c(void) { return PyModule_Create(&module_def); }
