/* Compiled twin of gpulake/formats/_expo_scan.py (_PyScanner): Prometheus exposition text
 * to sample buffers in one pass over the bytes, no Python object per sample.
 *
 * CPython limited API (stable ABI, 3.11+): one build per platform serves every Python >= 3.11.
 * Every rule mirrors the Python reference line for line; whatever is unusual (a value like
 * "NaN" or "1_000", a timestamp with spaces or 19+ digits) goes to Python's own float()/int(),
 * so both scanners agree by construction. The value rule is handed over by Python at
 * construction (_expo_scan.VALUE_RULES): NaN is null; a value >= blank_min whose token is
 * exactly one of the DCGM blank sentinels is null (plain decimals are matched here against
 * the sentinels' digits, any other spelling is asked of Python's is_blank); otherwise the
 * scaled value outside the series' (low, high) from resolve() sends the line to quarantine
 * with Python's impossible() as the reason. See docs/adr/0006-compiled-exposition-scanner.md.
 */
#define Py_LIMITED_API 0x030B0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h> /* extra columns are mapped pages of their own: mmap, mremap (pyconfig.h: _GNU_SOURCE) */
#endif

#define MAX_BLANK 16
/* Py_XSETREF is not in the limited API: replace a reference, releasing the old one afterwards */
#define Py_XSETREF_COMPAT(dst, src)     \
    do {                                \
        PyObject *old_ = (PyObject *)(dst); \
        (dst) = (src);                  \
        Py_XDECREF(old_);               \
    } while (0)
#define MAX_BLANK_DIGITS 40

static const char MARKER[] = "# gpulake-scrape ";
#define MARKER_LEN (sizeof(MARKER) - 1)

static const char BAD_MARKER[] = "scrape marker without an integer epoch-ms time";
static const char BAD_NUMBER[] = "sample value (or timestamp) is not a number";
static const char BAD_TIME[] = "timestamp outside 2000-01-01..2100-01-01";

typedef struct {
    int32_t group, slot, key;
    double scale, low, high;
    PyObject *error; /* reason (str) when the series cannot be used, else NULL */
} Series;

typedef struct {
    char *text;
    Py_ssize_t len;
    uint64_t hash;
} Head;

typedef struct {
    PyObject_HEAD
    PyObject *resolve;
    PyObject *bad; /* list of (line, reason, raw) */
    PyObject *msg_marker, *msg_number, *msg_time;
    Py_ssize_t slots;
    int64_t now; /* INT64_MIN stands for a marker time beyond int64: outside any accepted range */
    long long line;
    int64_t min_time, max_time;
    /* the value rule (_expo_scan.VALUE_RULES): sentinels as decimal digits, the float pre-check,
     * Python's is_blank for unusual spellings and impossible() for the quarantine reason */
    char blank_digits[MAX_BLANK][MAX_BLANK_DIGITS];
    Py_ssize_t blank_len[MAX_BLANK];
    int blanks;
    double blank_min;
    PyObject *is_blank, *impossible;
    /* NAME{labels} text -> series: open addressing on heads, value = index + 1 (0 = empty) */
    Head *heads;
    Series *series;
    Py_ssize_t nseries, series_cap;
    int32_t *head_table;
    size_t head_mask;
    /* (time, group) -> row */
    int32_t *row_table;
    size_t row_mask;
    int64_t *row_time;
    int32_t *row_group;
    double *values; /* rows x slots, NaN = null */
    Py_ssize_t nrows, rows_cap;
    /* extra keys: one float64 column per key id (NaN = no value), created at the key's first value and
     * written up to x_len (rows after it not yet filled); capacity doubles, and a large block's spare
     * pages are never touched, so they cost no RSS (ADR 0007) */
    double **x_col;
    Py_ssize_t *x_len, *x_cap;
    Py_ssize_t nkeys, keys_cap;
} Scanner;

static uint64_t hash_bytes(const char *p, Py_ssize_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, (size_t)n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 29;
    return h;
}

static uint64_t hash_row(int64_t ts, int32_t group) {
    uint64_t h = ((uint64_t)ts * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)(uint32_t)group * 0xC2B2AE3D27D4EB4FULL);
    return h ^ (h >> 31);
}

static int grow(void **buf, Py_ssize_t *cap, Py_ssize_t need, size_t item) {
    if (need <= *cap) return 0;
    Py_ssize_t n = *cap ? *cap : 256;
    while (n < need) n *= 2;
    void *p = realloc(*buf, (size_t)n * item);
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    *buf = p;
    *cap = n;
    return 0;
}

static inline int is_space(char c) { /* bytes.split()/strip() and int()/float() whitespace */
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int add_bad(Scanner *s, long long line, PyObject *reason, const char *text, Py_ssize_t len) {
    PyObject *raw = PyUnicode_DecodeUTF8(text, len, "replace");
    if (!raw) return -1;
    PyObject *row = Py_BuildValue("(LON)", line, reason, raw);
    if (!row) return -1;
    int rc = PyList_Append(s->bad, row);
    Py_DECREF(row);
    return rc;
}

/* int(token) as Python does it. Returns 1 and sets *out (INT64_MIN if beyond int64), 0 when
 * Python raises ValueError, -1 on another error. */
static int parse_int(const char *p, Py_ssize_t n, int64_t *out) {
    Py_ssize_t i = 0;
    int neg = 0;
    if (n > 0 && (p[0] == '+' || p[0] == '-')) {
        neg = p[0] == '-';
        i = 1;
    }
    if (n - i >= 1 && n - i <= 18) {
        int64_t v = 0;
        Py_ssize_t j = i;
        for (; j < n && p[j] >= '0' && p[j] <= '9'; j++) v = v * 10 + (p[j] - '0');
        if (j == n) {
            *out = neg ? -v : v;
            return 1;
        }
    }
    PyObject *b = PyBytes_FromStringAndSize(p, n);
    if (!b) return -1;
    PyObject *v = PyObject_CallFunctionObjArgs((PyObject *)&PyLong_Type, b, NULL);
    Py_DECREF(b);
    if (!v) {
        if (PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
            return 0;
        }
        return -1;
    }
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    Py_DECREF(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    *out = overflow ? INT64_MIN : (int64_t)x;
    return 1;
}

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Clinger's fast path for what exporters print ("113.611000", "25", "0.000008"): at most 15
 * significant digits and no exponent, so the digits are an exact double m and the value is
 * m / 10^k with 10^k exact (k <= 22) -- one IEEE division, correctly rounded, hence the very
 * double float() returns. 0 when the token is not of that shape. */
static int fast_decimal(const char *p, Py_ssize_t n, double *out) {
    Py_ssize_t i = 0;
    int neg = 0, digits = 0, frac = 0, seen = 0;
    uint64_t m = 0;
    if (n > 0 && (p[0] == '+' || p[0] == '-')) {
        neg = p[0] == '-';
        i = 1;
    }
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++, seen++) {
        if (m || p[i] != '0') digits++;
        m = m * 10 + (uint64_t)(p[i] - '0');
        if (digits > 15) return 0;
    }
    if (i < n && p[i] == '.') {
        for (i++; i < n && p[i] >= '0' && p[i] <= '9'; i++, seen++, frac++) {
            if (m || p[i] != '0') digits++;
            m = m * 10 + (uint64_t)(p[i] - '0');
            if (digits > 15) return 0;
        }
    }
    if (i != n || !seen || frac > 22) return 0;
    double v = frac ? (double)m / POW10[frac] : (double)m;
    *out = neg ? -v : v;
    return 1;
}

/* float(token) as Python does it: plain decimals through the fast path or PyOS_string_to_double
 * (Python's own correctly rounded conversion), anything else through float() itself. */
static int parse_float(const char *p, Py_ssize_t n, double *out) {
    if (fast_decimal(p, n, out)) return 1;
    char buf[64];
    Py_ssize_t i = 0, digits = 0;
    if (n < (Py_ssize_t)sizeof(buf)) {
        if (i < n && (p[i] == '+' || p[i] == '-')) i++;
        for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) digits++;
        if (i < n && p[i] == '.') {
            i++;
            for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) digits++;
        }
        if (digits && i < n && (p[i] == 'e' || p[i] == 'E')) {
            Py_ssize_t e = i + 1, ed = 0;
            if (e < n && (p[e] == '+' || p[e] == '-')) e++;
            for (; e < n && p[e] >= '0' && p[e] <= '9'; e++) ed++;
            i = ed ? e : -1;
        }
        if (digits && i == n) {
            memcpy(buf, p, (size_t)n);
            buf[n] = 0;
            char *end = NULL;
            double v = PyOS_string_to_double(buf, &end, NULL);
            if (v == -1.0 && PyErr_Occurred()) return -1;
            if (end == buf + n) {
                *out = v;
                return 1;
            }
        }
    }
    PyObject *b = PyBytes_FromStringAndSize(p, n);
    if (!b) return -1;
    PyObject *v = PyObject_CallFunctionObjArgs((PyObject *)&PyFloat_Type, b, NULL);
    Py_DECREF(b);
    if (!v) {
        if (PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
            return 0;
        }
        return -1;
    }
    *out = PyFloat_AsDouble(v);
    Py_DECREF(v);
    return 1;
}

static int rehash_heads(Scanner *s, size_t size) {
    int32_t *table = calloc(size, sizeof(int32_t));
    if (!table) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = 0; k < s->nseries; k++) {
        size_t at = s->heads[k].hash & (size - 1);
        while (table[at]) at = (at + 1) & (size - 1);
        table[at] = (int32_t)(k + 1);
    }
    free(s->head_table);
    s->head_table = table;
    s->head_mask = size - 1;
    return 0;
}

/* The series of one NAME{labels} text; resolve() runs once per distinct text. NULL on error. */
static Series *lookup_series(Scanner *s, const char *text, Py_ssize_t len) {
    uint64_t h = hash_bytes(text, len);
    size_t at = h & s->head_mask;
    int32_t slot;
    while ((slot = s->head_table[at])) {
        Head *hd = &s->heads[slot - 1];
        if (hd->hash == h && hd->len == len && memcmp(hd->text, text, (size_t)len) == 0) return &s->series[slot - 1];
        at = (at + 1) & s->head_mask;
    }
    Py_ssize_t cap = s->series_cap;
    if (grow((void **)&s->series, &cap, s->nseries + 1, sizeof(Series)) < 0) return NULL;
    if (grow((void **)&s->heads, &s->series_cap, s->nseries + 1, sizeof(Head)) < 0) return NULL;
    Series *se = &s->series[s->nseries];
    Head *hd = &s->heads[s->nseries];
    memset(se, 0, sizeof(*se));
    PyObject *arg = PyBytes_FromStringAndSize(text, len);
    if (!arg) return NULL;
    PyObject *res = PyObject_CallFunctionObjArgs(s->resolve, arg, NULL);
    Py_DECREF(arg);
    if (!res) return NULL;
    if (PyUnicode_Check(res)) {
        se->error = res;
    } else {
        int ok = PyArg_ParseTuple(res, "iiiddd", &se->group, &se->slot, &se->key, &se->scale, &se->low, &se->high);
        Py_DECREF(res);
        if (!ok) return NULL;
        if (se->slot >= s->slots) {
            PyErr_SetString(PyExc_ValueError, "resolve() returned a slot beyond the scanner's slots");
            return NULL;
        }
        if (se->slot < 0 && se->key < 0) {
            PyErr_SetString(PyExc_ValueError, "resolve() returned a negative extra key");
            return NULL;
        }
    }
    hd->text = malloc(len ? (size_t)len : 1);
    if (!hd->text) {
        Py_XDECREF(se->error);
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(hd->text, text, (size_t)len);
    hd->len = len;
    hd->hash = h;
    s->nseries++;
    if ((size_t)s->nseries * 2 > s->head_mask + 1) {
        if (rehash_heads(s, (s->head_mask + 1) * 2) < 0) return NULL;
    } else {
        s->head_table[at] = (int32_t)s->nseries;
    }
    return se;
}

static int rehash_rows(Scanner *s, size_t size) {
    int32_t *table = calloc(size, sizeof(int32_t));
    if (!table) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t r = 0; r < s->nrows; r++) {
        size_t at = hash_row(s->row_time[r], s->row_group[r]) & (size - 1);
        while (table[at]) at = (at + 1) & (size - 1);
        table[at] = (int32_t)(r + 1);
    }
    free(s->row_table);
    s->row_table = table;
    s->row_mask = size - 1;
    return 0;
}

/* Row of (ts, group), created (all null) on first sight. -1 on error. */
static Py_ssize_t row_of(Scanner *s, int64_t ts, int32_t group) {
    size_t at = hash_row(ts, group) & s->row_mask;
    int32_t r;
    while ((r = s->row_table[at])) {
        if (s->row_time[r - 1] == ts && s->row_group[r - 1] == group) return r - 1;
        at = (at + 1) & s->row_mask;
    }
    if (s->nrows >= INT32_MAX - 1) {
        PyErr_SetString(PyExc_OverflowError, "too many rows in one object");
        return -1;
    }
    Py_ssize_t n = s->nrows, cap = s->rows_cap, cap2 = s->rows_cap;
    if (grow((void **)&s->row_time, &cap, n + 1, sizeof(int64_t)) < 0) return -1;
    cap = s->rows_cap;
    if (grow((void **)&s->row_group, &cap, n + 1, sizeof(int32_t)) < 0) return -1;
    if (n + 1 > s->rows_cap) {
        Py_ssize_t slots = s->slots ? s->slots : 1;
        if (grow((void **)&s->values, &cap2, (n + 1), sizeof(double) * (size_t)slots) < 0) return -1;
        s->rows_cap = cap2;
    }
    s->row_time[n] = ts;
    s->row_group[n] = group;
    for (Py_ssize_t k = 0; k < s->slots; k++) s->values[n * s->slots + k] = NAN;
    s->nrows = n + 1;
    if ((size_t)s->nrows * 2 > s->row_mask + 1) {
        if (rehash_rows(s, (s->row_mask + 1) * 2) < 0) return -1;
    } else {
        s->row_table[at] = (int32_t)s->nrows;
    }
    return n;
}

/* A column's pages are its own (Linux): mapped, grown by mremap (no copy, untouched pages cost no RSS) and
 * unmapped when freed. From the C heap they grew among the scanner's other allocations and left holes in
 * it: `process` of the 1 GB bench object peaked at 156 MB while parsing that way, 150 MB mapped (ADR 0007). */
static void free_column(double *col, Py_ssize_t cap) {
#ifdef __linux__
    if (col) munmap(col, (size_t)cap * sizeof(double));
#else
    (void)cap;
    free(col);
#endif
}

static int grow_column(double **col, Py_ssize_t *cap, Py_ssize_t need) {
    if (need <= *cap) return 0;
    Py_ssize_t n = *cap ? *cap : 512; /* a page of doubles */
    while (n < need) n *= 2;
#ifdef __linux__
    size_t old = (size_t)*cap * sizeof(double), size = (size_t)n * sizeof(double);
    void *p = *col ? mremap(*col, old, size, MREMAP_MAYMOVE)
                   : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) p = NULL;
#else
    void *p = realloc(*col, (size_t)n * sizeof(double));
#endif
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    *col = p;
    *cap = n;
    return 0;
}

/* Value of extra key `key` in row `row` (a later value of the key in the row replaces it). -1 on error. */
static int put_extra(Scanner *s, int32_t key, Py_ssize_t row, double value) {
    if (key >= s->nkeys) {
        Py_ssize_t cap = s->keys_cap, cap2 = s->keys_cap;
        if (grow((void **)&s->x_col, &cap, key + 1, sizeof(double *)) < 0) return -1;
        cap = s->keys_cap;
        if (grow((void **)&s->x_len, &cap, key + 1, sizeof(Py_ssize_t)) < 0) return -1;
        if (grow((void **)&s->x_cap, &cap2, key + 1, sizeof(Py_ssize_t)) < 0) return -1;
        s->keys_cap = cap2;
        for (Py_ssize_t k = s->nkeys; k <= key; k++) {
            s->x_col[k] = NULL;
            s->x_len[k] = s->x_cap[k] = 0;
        }
        s->nkeys = key + 1;
    }
    if (grow_column(&s->x_col[key], &s->x_cap[key], row + 1) < 0) return -1;
    double *col = s->x_col[key];
    for (Py_ssize_t r = s->x_len[key]; r < row; r++) col[r] = NAN; /* rows without the key so far */
    if (row >= s->x_len[key]) s->x_len[key] = row + 1;
    col[row] = value;
    return 0;
}

/* is_blank(token) of _expo_scan: 1 when the value text is exactly a DCGM blank sentinel.
 * Plain decimals (+digits[.digits]) are compared here; any other spelling (exponent, '_',
 * "inf", a sign '-') goes to Python's is_blank. -1 on error. */
static int blank_token(Scanner *s, const char *p, Py_ssize_t n) {
    Py_ssize_t i = 0;
    if (n > 0 && p[0] == '+') i = 1;
    Py_ssize_t a = i;
    while (i < n && p[i] >= '0' && p[i] <= '9') i++;
    Py_ssize_t b = i;
    int nonzero_fraction = 0;
    if (b > a && i < n && p[i] == '.') {
        for (i++; i < n && p[i] >= '0' && p[i] <= '9'; i++)
            if (p[i] != '0') nonzero_fraction = 1;
    }
    if (b > a && i == n) { /* plain: an integral value equal to a sentinel's digits */
        if (nonzero_fraction) return 0;
        while (a < b - 1 && p[a] == '0') a++;
        for (int k = 0; k < s->blanks; k++)
            if (s->blank_len[k] == b - a && memcmp(s->blank_digits[k], p + a, (size_t)(b - a)) == 0) return 1;
        return 0;
    }
    PyObject *token = PyBytes_FromStringAndSize(p, n);
    if (!token) return -1;
    PyObject *res = PyObject_CallFunctionObjArgs(s->is_blank, token, NULL);
    Py_DECREF(token);
    if (!res) return -1;
    int truth = PyObject_IsTrue(res);
    Py_DECREF(res);
    return truth;
}

/* One line (without its newline). 0 on success (including a quarantined line), -1 on error. */
static int scan_line(Scanner *s, const char *p, Py_ssize_t n) {
    long long number = s->line;
    if (n && p[n - 1] == '\r') n--;
    if (n == 0 || p[0] == '#') {
        if (n >= (Py_ssize_t)MARKER_LEN && memcmp(p, MARKER, MARKER_LEN) == 0) {
            int64_t now;
            int rc = parse_int(p + MARKER_LEN, n - (Py_ssize_t)MARKER_LEN, &now);
            if (rc < 0) return -1;
            if (rc == 0) return add_bad(s, number, s->msg_marker, p, n);
            s->now = now;
        }
        return 0;
    }
    const char *head = p, *rest, *end = p + n;
    Py_ssize_t head_len;
    const char *brace = NULL;
    for (const char *q = end; q > p;)
        if (*--q == '}') {
            brace = q;
            break;
        }
    if (brace) {
        head_len = brace + 1 - p;
        rest = brace + 1;
    } else { /* head, _, rest = line.strip().partition(b" ") */
        const char *a = p, *b = end;
        while (a < b && is_space(*a)) a++;
        while (b > a && is_space(b[-1])) b--;
        const char *sp = memchr(a, ' ', (size_t)(b - a));
        head = a;
        head_len = (sp ? sp : b) - a;
        rest = sp ? sp + 1 : b;
        end = b;
    }
    Series *se = lookup_series(s, head, head_len);
    if (!se) return -1;
    if (se->error) return add_bad(s, number, se->error, p, n);
    /* parts = rest.split(): the value and the optional timestamp */
    const char *t = rest;
    while (t < end && is_space(*t)) t++;
    const char *t_end = t;
    while (t_end < end && !is_space(*t_end)) t_end++;
    if (t == t_end) return add_bad(s, number, s->msg_number, p, n);
    const char *u = t_end;
    while (u < end && is_space(*u)) u++;
    const char *u_end = u;
    while (u_end < end && !is_space(*u_end)) u_end++;
    double value;
    int rc = parse_float(t, t_end - t, &value);
    if (rc <= 0) return rc < 0 ? -1 : add_bad(s, number, s->msg_number, p, n);
    int64_t ts = s->now;
    if (u != u_end) {
        rc = parse_int(u, u_end - u, &ts);
        if (rc <= 0) return rc < 0 ? -1 : add_bad(s, number, s->msg_number, p, n);
    }
    if (ts == INT64_MIN || ts < s->min_time || ts >= s->max_time) return add_bad(s, number, s->msg_time, p, n);
    int null = value != value; /* NaN or a DCGM blank: null */
    if (!null && value >= s->blank_min) {
        null = blank_token(s, t, t_end - t);
        if (null < 0) return -1;
    }
    if (!null) {
        if (se->scale != 1.0) value *= se->scale;
        if (!(se->low <= value && value <= se->high)) { /* an impossible reading: quarantine */
            PyObject *reason = PyObject_CallFunction(s->impossible, "ddd", value, se->low, se->high);
            if (!reason) return -1;
            int rc = add_bad(s, number, reason, p, n);
            Py_DECREF(reason);
            return rc;
        }
    }
    Py_ssize_t row = row_of(s, ts, se->group);
    if (row < 0) return -1;
    if (se->slot >= 0) {
        s->values[row * s->slots + se->slot] = null ? NAN : value;
    } else if (!null) {
        return put_extra(s, se->key, row, value);
    }
    return 0;
}

static PyObject *Scanner_feed(PyObject *self, PyObject *arg) {
    Scanner *s = (Scanner *)self;
    if (!s->head_table || !s->row_table) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner.__init__ was not called, or finish() was called already");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const char *p = view.buf, *end = p + view.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        s->line++;
        if (scan_line(s, p, line_end - p) < 0) {
            PyBuffer_Release(&view);
            return NULL;
        }
        p = nl ? nl + 1 : end;
    }
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

/* A buffer handed over: a read-only buffer object that owns the scanner's allocation and frees it
 * when the last view of it goes, so finish() copies nothing (ADR 0007). It is not shrunk to its size:
 * the doubling's spare capacity was never touched, so it is not resident, and a realloc measured
 * 2 MB more peak at 100 MB (heap holes). */
typedef struct {
    PyObject_HEAD
    void *data;
    Py_ssize_t len;
    Py_ssize_t column_cap; /* an extra column's capacity (free_column), or -1: from the C heap */
} Buffer;

static PyObject *BufferType; /* set by module_exec */

static int Buffer_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    Buffer *b = (Buffer *)self;
    return PyBuffer_FillInfo(view, self, b->data ? b->data : (void *)"", b->len, 1, flags);
}

static void Buffer_dealloc(PyObject *self) {
    PyTypeObject *type = Py_TYPE(self);
    Buffer *b = (Buffer *)self;
    if (b->column_cap >= 0)
        free_column(b->data, b->column_cap);
    else
        free(b->data);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type);
}

static PyObject *hand_over(void **p, Py_ssize_t n, Py_ssize_t column_cap) {
    allocfunc alloc = (allocfunc)PyType_GetSlot((PyTypeObject *)BufferType, Py_tp_alloc);
    Buffer *b = (Buffer *)alloc((PyTypeObject *)BufferType, 0);
    if (!b) return NULL;
    b->data = *p;
    b->len = n;
    b->column_cap = column_cap;
    *p = NULL;
    return (PyObject *)b;
}

/* {key: column} of the extra keys that have a value, each column filled to `rows` (NaN after its last value). */
static PyObject *hand_over_columns(Scanner *s, Py_ssize_t rows) {
    PyObject *columns = PyDict_New();
    if (!columns) return NULL;
    for (Py_ssize_t k = 0; k < s->nkeys; k++) {
        if (!s->x_col[k]) continue;
        if (grow_column(&s->x_col[k], &s->x_cap[k], rows) < 0) goto fail;
        for (Py_ssize_t r = s->x_len[k]; r < rows; r++) s->x_col[k][r] = NAN;
        PyObject *key = PyLong_FromSsize_t(k);
        PyObject *column = key ? hand_over((void **)&s->x_col[k], rows * 8, s->x_cap[k]) : NULL;
        int rc = column ? PyDict_SetItem(columns, key, column) : -1;
        Py_XDECREF(key);
        Py_XDECREF(column);
        if (rc < 0) goto fail;
    }
    return columns;
fail:
    Py_DECREF(columns);
    return NULL;
}

static PyObject *Scanner_finish(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    Scanner *s = (Scanner *)self;
    if (!s->bad || !s->row_table) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner.__init__ was not called, or finish() was called already");
        return NULL;
    }
    free(s->row_table); /* the scan is over: no row is looked up again */
    s->row_table = NULL;
    Py_ssize_t rows = s->nrows;
    s->nrows = s->rows_cap = 0;
    PyObject *parts[4] = {NULL};
    parts[0] = hand_over((void **)&s->row_time, rows * 8, -1);
    parts[1] = parts[0] ? hand_over((void **)&s->row_group, rows * 4, -1) : NULL;
    parts[2] = parts[1] ? hand_over((void **)&s->values, rows * s->slots * 8, -1) : NULL;
    parts[3] = parts[2] ? hand_over_columns(s, rows) : NULL;
    if (!parts[3]) {
        for (int k = 0; k < 4; k++) Py_XDECREF(parts[k]);
        return NULL;
    }
    return Py_BuildValue("(NNNNO)", parts[0], parts[1], parts[2], parts[3], s->bad);
}

static int Scanner_init(PyObject *self, PyObject *args, PyObject *Py_UNUSED(kwds)) {
    Scanner *s = (Scanner *)self;
    PyObject *resolve, *rules, *sentinels, *is_blank, *impossible;
    Py_ssize_t slots;
    long long now, min_time, max_time;
    double blank_min;
    if (!PyArg_ParseTuple(args, "OnLOLL", &resolve, &slots, &now, &rules, &min_time, &max_time)) return -1;
    if (slots < 0) {
        PyErr_SetString(PyExc_ValueError, "slots must be >= 0");
        return -1;
    }
    /* VALUE_RULES: (blank_sentinels, blank_min, is_blank, impossible) */
    if (!PyArg_ParseTuple(rules, "OdOO", &sentinels, &blank_min, &is_blank, &impossible)) return -1;
    if (!PyCallable_Check(is_blank) || !PyCallable_Check(impossible)) {
        PyErr_SetString(PyExc_TypeError, "value rules need callable is_blank and impossible");
        return -1;
    }
    PyObject *table = PySequence_Tuple(sentinels);
    if (!table) return -1;
    Py_ssize_t count = PyTuple_Size(table);
    if (count > MAX_BLANK) {
        Py_DECREF(table);
        PyErr_SetString(PyExc_ValueError, "too many blank sentinels");
        return -1;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *item = PyTuple_GetItem(table, k);
        if (!PyLong_Check(item)) {
            Py_DECREF(table);
            PyErr_SetString(PyExc_TypeError, "blank sentinels must be ints");
            return -1;
        }
        PyObject *text = PyObject_Str(item);
        if (!text) {
            Py_DECREF(table);
            return -1;
        }
        Py_ssize_t len;
        const char *digits = PyUnicode_AsUTF8AndSize(text, &len);
        if (!digits || len >= MAX_BLANK_DIGITS || digits[0] == '-') {
            Py_DECREF(text);
            Py_DECREF(table);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "blank sentinels must be non-negative and short");
            return -1;
        }
        memcpy(s->blank_digits[k], digits, (size_t)len);
        s->blank_len[k] = len;
        Py_DECREF(text);
    }
    Py_DECREF(table);
    s->blanks = (int)count;
    s->blank_min = blank_min;
    Py_INCREF(is_blank);
    Py_XSETREF_COMPAT(s->is_blank, is_blank);
    Py_INCREF(impossible);
    Py_XSETREF_COMPAT(s->impossible, impossible);
    Py_INCREF(resolve);
    Py_XSETREF_COMPAT(s->resolve, resolve);
    s->slots = slots;
    s->now = now;
    s->min_time = min_time;
    s->max_time = max_time;
    if (!s->bad && !(s->bad = PyList_New(0))) return -1;
    if (!s->msg_marker && !(s->msg_marker = PyUnicode_FromString(BAD_MARKER))) return -1;
    if (!s->msg_number && !(s->msg_number = PyUnicode_FromString(BAD_NUMBER))) return -1;
    if (!s->msg_time && !(s->msg_time = PyUnicode_FromString(BAD_TIME))) return -1;
    if (!s->head_table && rehash_heads(s, 1024) < 0) return -1;
    if (!s->row_table && rehash_rows(s, 4096) < 0) return -1;
    return 0;
}

static void Scanner_dealloc(PyObject *self) {
    Scanner *s = (Scanner *)self;
    PyTypeObject *type = Py_TYPE(self);
    Py_XDECREF(s->resolve);
    Py_XDECREF(s->is_blank);
    Py_XDECREF(s->impossible);
    Py_XDECREF(s->bad);
    Py_XDECREF(s->msg_marker);
    Py_XDECREF(s->msg_number);
    Py_XDECREF(s->msg_time);
    for (Py_ssize_t k = 0; k < s->nseries; k++) {
        free(s->heads[k].text);
        Py_XDECREF(s->series[k].error);
    }
    free(s->heads);
    free(s->series);
    free(s->head_table);
    free(s->row_table);
    free(s->row_time);
    free(s->row_group);
    free(s->values);
    for (Py_ssize_t k = 0; k < s->nkeys; k++) free_column(s->x_col[k], s->x_cap[k]);
    free(s->x_col);
    free(s->x_len);
    free(s->x_cap);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type);
}

static PyObject *Scanner_lines(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromLongLong(((Scanner *)self)->line);
}

static PyMethodDef Scanner_methods[] = {
    {"feed", Scanner_feed, METH_O, "feed(data): scan whole lines of exposition text (any bytes-like object)."},
    {"lines", Scanner_lines, METH_NOARGS, "lines() -> the number of lines fed so far."},
    {"finish", Scanner_finish, METH_NOARGS,
     "finish() -> (row_time, row_group, values, {extra key: column}, bad): the raw buffers "
     "(Buffer objects, no copies; the scanner cannot be fed afterwards)."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Scanner_slots[] = {
    {Py_tp_doc, "Scanner(resolve, slots, now, value_rules, min_time_ms, max_time_ms)"},
    {Py_tp_init, Scanner_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, Scanner_dealloc},
    {Py_tp_methods, Scanner_methods},
    {0, NULL},
};

static PyType_Spec Scanner_spec = {
    "gpulake.formats._expo_scan_c.Scanner",
    sizeof(Scanner),
    0,
    Py_TPFLAGS_DEFAULT,
    Scanner_slots,
};

static PyType_Slot Buffer_slots[] = {
    {Py_tp_doc, "A scanner buffer handed over by finish(): read-only bytes for memoryview() or numpy.frombuffer()."},
    {Py_tp_dealloc, Buffer_dealloc},
    {Py_bf_getbuffer, Buffer_getbuffer},
    {0, NULL},
};

static PyType_Spec Buffer_spec = {
    "gpulake.formats._expo_scan_c.Buffer",
    sizeof(Buffer),
    0,
    Py_TPFLAGS_DEFAULT,
    Buffer_slots,
};

static int module_exec(PyObject *module) {
    if (!BufferType) {
        BufferType = PyType_FromSpec(&Buffer_spec);
        if (!BufferType) return -1;
    }
    Py_INCREF(BufferType);
    if (PyModule_AddObject(module, "Buffer", BufferType) < 0) {
        Py_DECREF(BufferType);
        return -1;
    }
    PyObject *type = PyType_FromSpec(&Scanner_spec);
    if (!type) return -1;
    if (PyModule_AddObject(module, "Scanner", type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot module_slots[] = {{Py_mod_exec, module_exec}, {0, NULL}};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_expo_scan_c", "Compiled Prometheus exposition scanner (see _expo_scan.py).", 0, NULL,
    module_slots,          NULL,           NULL,                                                           NULL,
};

PyMODINIT_FUNC PyInit__expo_scan_c(void) { return PyModuleDef_Init(&module_def); }
