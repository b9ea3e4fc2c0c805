/* The serving app's most common request bodies, read in C without a Python object per
 * value:
 * - RowReader, POST /predict: one JSON object of numbers keyed by feature name, or an
 *   array of them, straight into float64 rows. Python's fastest parser here (msgspec,
 *   into typed rows) spends most of a 1,000-row request making and unpacking 30,000
 *   floats (docs/benchmarks.md).
 * - V2RowReader, the Open Inference Protocol's rows: one tensor per feature, each holding
 *   a number per row, straight into the float32 [rows, features] the graph takes.
 *   msgspec spends most of a single row making a typed object per tensor, and most of a
 *   batch making a Python float per value.
 *
 * Each reads only what every check of the Python path passes: for RowReader, rows
 * holding exactly the given keys once each, as plain JSON numbers (no nulls, strings or
 * nesting), on their way to the range check; for V2RowReader, a request that passes
 * every check, ranges included. For anything else, invalid JSON included, they answer
 * None and the caller goes on to the Python path, whose checks name every problem. So
 * they never refuse a body; they only decline to read one.
 *
 * Keys are compared as written. The caller passes only names whose JSON needs no
 * escape (no quote, backslash or control character): a key that matches one is then
 * exactly that name, and a key written with escapes matches none and is declined.
 *
 * Numbers come out as Python reads them, correctly rounded to the nearest double:
 * - up to 19 significant digits times a power of ten within 10^±22 (every short
 *   decimal): one multiplication or division of exact operands, in double when the
 *   digits fit its 53 bits (Clinger's fast path), else in x87 extended precision,
 *   whose one rounding is then rounded to double; a result exactly halfway between
 *   two doubles could have been rounded either way and goes to the next case;
 * - anything else: PyOS_string_to_double, Python's own float(). A literal beyond the
 *   double range reads as infinity, which the caller's range check refuses.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* The fast paths need double arithmetic rounded once, to double (not carried out in
 * x87 registers, as on 32-bit x86 without SSE2); elsewhere every number goes to Python. */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define HAVE_EXACT_DOUBLE 1
#else
#define HAVE_EXACT_DOUBLE 0
#endif
/* Extended precision holds 19 digits exactly only with a 64-bit significand (x87). */
#if HAVE_EXACT_DOUBLE && LDBL_MANT_DIG >= 64
#define HAVE_WIDE_SIGNIFICAND 1
#else
#define HAVE_WIDE_SIGNIFICAND 0
#endif

static const double EXACT_POWERS[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static inline int is_digit(char ch) { return (unsigned char)(ch - '0') < 10; }

/* The cursor moves past JSON whitespace. The body is a bytes object, whose storage
 * ends in a NUL: scans stop there without a length check. */
static inline const char *skip_space(const char *p) {
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
    return p;
}

/* The literal [start, end) as Python's float() reads it; 0 on error (raised). */
static int python_float(const char *start, const char *end, double *out) {
    char buffer[64];
    size_t length = (size_t)(end - start);
    char *text = length < sizeof(buffer) ? buffer : PyMem_Malloc(length + 1);
    if (text == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    memcpy(text, start, length);
    text[length] = '\0';
    *out = PyOS_string_to_double(text, NULL, NULL);
    if (text != buffer) PyMem_Free(text);
    return !(*out == -1.0 && PyErr_Occurred());
}

/* mantissa * 10^exponent correctly rounded, where both are exact (|exponent| <= 22);
 * 0 when only a slower reading can tell. */
static inline int scaled(uint64_t mantissa, int exponent, double *out) {
    if (!HAVE_EXACT_DOUBLE) return 0;
    if (mantissa <= ((uint64_t)1 << 53)) {
        double value = (double)mantissa;
        *out = exponent < 0 ? value / EXACT_POWERS[-exponent] : value * EXACT_POWERS[exponent];
        return 1;
    }
#if HAVE_WIDE_SIGNIFICAND
    {
        long double wide = (long double)mantissa;
        long double power = (long double)EXACT_POWERS[exponent < 0 ? -exponent : exponent];
        double value;
        long double rest;
        wide = exponent < 0 ? wide / power : wide * power;
        value = (double)wide;
        rest = wide - (long double)value;
        if (rest != 0) {
            double toward = nextafter(value, rest > 0 ? HUGE_VAL : -HUGE_VAL);
            if (rest * 2 == (long double)toward - (long double)value) return 0;
        }
        *out = value;
        return 1;
    }
#else
    (void)exponent;
    (void)out;
    return 0;
#endif
}

/* One JSON number at p into *out: the position after it, p itself if there is no
 * number there, or NULL on error (raised). */
static inline const char *read_number(const char *p, double *out) {
    const char *start = p;
    const char *digits_start;
    uint64_t mantissa = 0;
    int exponent = 0;
    Py_ssize_t digits;
    int integer;
    int negative = *p == '-';
    p += negative;
    digits_start = p;
    if (*p == '0') {
        p++;
    } else if (is_digit(*p)) {
        do {
            mantissa = mantissa * 10 + (uint64_t)(*p - '0');
            p++;
        } while (is_digit(*p));
    } else {
        return start;
    }
    digits = p - digits_start;
    integer = *p != '.' && *p != 'e' && *p != 'E';
    if (*p == '.') {
        const char *fraction;
        p++;
        fraction = p;
        if (!is_digit(*p)) return start;
        do {
            mantissa = mantissa * 10 + (uint64_t)(*p - '0');
            p++;
        } while (is_digit(*p));
        exponent = -(int)(p - fraction);
        digits += p - fraction;
    }
    if (*p == 'e' || *p == 'E') {
        int exp_negative;
        int written = 0;
        p++;
        exp_negative = *p == '-';
        if (*p == '-' || *p == '+') p++;
        if (!is_digit(*p)) return start;
        do {
            if (written < 100000) written = written * 10 + (*p - '0');
            p++;
        } while (is_digit(*p));
        exponent += exp_negative ? -written : written;
    }
    /* Up to 19 digits (leading zeros among them) cannot overflow 64 bits. */
    if (digits <= 19 && exponent >= -22 && exponent <= 22 && scaled(mantissa, exponent, out)) {
        /* An integer literal is an int to Python, whose float has no sign at zero: "-0"
         * reads as 0.0, "-0.0" and "-0e0" as -0.0. */
        if (negative && (mantissa != 0 || !integer)) *out = -*out;
        return p;
    }
    return python_float(start, p, out) ? p : NULL;
}

typedef struct {
    Py_ssize_t count;
    const char **quoted; /* each key with its quotes, as a JSON string */
    Py_ssize_t *length;  /* with the quotes */
    Py_ssize_t *seen_in; /* the stamp of the row in which a key was last read */
    Py_ssize_t stamp;    /* rows started, over every read: a new row's stamp */
    Py_ssize_t *after;   /* which key followed this one in the last row read */
} Keys;

/* Which key the string at p is, or -1; `guess` is tried first. */
static inline Py_ssize_t match_key(const char *p, const char *end, const Keys *keys,
                                   Py_ssize_t guess) {
    Py_ssize_t room = end - p;
    if (keys->length[guess] <= room &&
        memcmp(p, keys->quoted[guess], (size_t)keys->length[guess]) == 0) {
        return guess;
    }
    for (Py_ssize_t index = 0; index < keys->count; index++) {
        if (keys->length[index] <= room &&
            memcmp(p, keys->quoted[index], (size_t)keys->length[index]) == 0) {
            return index;
        }
    }
    return -1;
}

/* The row at p into `values`: the position after it, p if it is not a plain row, NULL
 * on error (raised). */
static const char *read_row(const char *p, const char *end, Keys *keys, double *values) {
    const char *start = p;
    Py_ssize_t row = ++keys->stamp;
    Py_ssize_t previous = -1;
    Py_ssize_t guess = keys->after[keys->count]; /* the last row's first key */
    if (*p != '{') return start;
    p = skip_space(p + 1);
    for (Py_ssize_t field = 0; field < keys->count; field++) {
        Py_ssize_t index;
        const char *after_number;
        if (field > 0) {
            if (*p != ',') return start;
            p = skip_space(p + 1);
        }
        index = match_key(p, end, keys, guess);
        if (index < 0 || keys->seen_in[index] == row) return start;
        keys->seen_in[index] = row;
        keys->after[previous < 0 ? keys->count : previous] = index;
        previous = index;
        guess = keys->after[index];
        p = skip_space(p + keys->length[index]);
        if (*p != ':') return start;
        p = skip_space(p + 1);
        after_number = read_number(p, &values[index]);
        if (after_number == NULL) return NULL;
        if (after_number == p) return start;
        p = skip_space(after_number);
    }
    if (*p != '}') return start;
    return p + 1;
}

/* --- RowReader: the keys, prepared once per model ------------------------------- */

typedef struct {
    PyObject_HEAD
    Keys keys;
} RowReader;

static void free_keys(Keys *keys) {
    if (keys->quoted != NULL) {
        for (Py_ssize_t index = 0; index < keys->count; index++) {
            PyMem_Free((void *)keys->quoted[index]);
        }
    }
    PyMem_Free(keys->quoted);
    PyMem_Free(keys->length);
    PyMem_Free(keys->seen_in);
    PyMem_Free(keys->after);
    memset(keys, 0, sizeof(*keys));
}

/* The keys as quoted JSON strings; 0 on error (raised). */
static int make_keys(PyObject *names, Keys *keys) {
    Py_ssize_t count;
    if (!PyTuple_Check(names) || PyTuple_GET_SIZE(names) < 1) {
        PyErr_SetString(PyExc_TypeError, "keys must be a non-empty tuple of bytes");
        return 0;
    }
    count = PyTuple_GET_SIZE(names);
    keys->count = count;
    keys->quoted = PyMem_Calloc((size_t)count, sizeof(char *));
    keys->length = PyMem_Calloc((size_t)count, sizeof(Py_ssize_t));
    keys->seen_in = PyMem_Calloc((size_t)count, sizeof(Py_ssize_t));
    keys->after = PyMem_Calloc((size_t)count + 1, sizeof(Py_ssize_t));
    if (!keys->quoted || !keys->length || !keys->seen_in || !keys->after) {
        PyErr_NoMemory();
        return 0;
    }
    for (Py_ssize_t index = 0; index < count; index++) {
        PyObject *name = PyTuple_GET_ITEM(names, index);
        Py_ssize_t length;
        char *quoted;
        if (!PyBytes_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "keys must be a non-empty tuple of bytes");
            return 0;
        }
        length = PyBytes_GET_SIZE(name);
        quoted = PyMem_Malloc((size_t)length + 2);
        if (quoted == NULL) {
            PyErr_NoMemory();
            return 0;
        }
        quoted[0] = '"';
        memcpy(quoted + 1, PyBytes_AS_STRING(name), (size_t)length);
        quoted[length + 1] = '"';
        keys->quoted[index] = quoted;
        keys->length[index] = length + 2;
        keys->after[index] = index + 1 < count ? index + 1 : 0;
    }
    keys->after[count] = 0; /* a row is first guessed to start with the first key */
    return 1;
}

static int reader_init(PyObject *self, PyObject *args, PyObject *kwargs) {
    RowReader *reader = (RowReader *)self;
    PyObject *names;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "RowReader(keys) takes no keyword arguments");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "O:RowReader", &names)) return -1;
    free_keys(&reader->keys);
    if (!make_keys(names, &reader->keys)) {
        free_keys(&reader->keys);
        return -1;
    }
    return 0;
}

static void reader_dealloc(PyObject *self) {
    PyTypeObject *type = Py_TYPE(self);
    free_keys(&((RowReader *)self)->keys);
    type->tp_free(self);
    Py_DECREF(type);
}

/* The arguments of a reader's read(body, max_rows), checked, into *body and *max_rows;
 * 0 on error (raised). */
static int read_arguments(const Keys *keys, const char *reader, PyObject *const *args,
                          Py_ssize_t nargs, PyObject **body, Py_ssize_t *max_rows) {
    if (keys->count == 0) {
        PyErr_Format(PyExc_ValueError, "%s was not given its keys", reader);
        return 0;
    }
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "read(body, max_rows) takes 2 arguments");
        return 0;
    }
    *body = args[0];
    if (!PyBytes_Check(*body)) {
        PyErr_SetString(PyExc_TypeError, "body must be bytes");
        return 0;
    }
    *max_rows = PyLong_AsSsize_t(args[1]);
    if (*max_rows == -1 && PyErr_Occurred()) return 0;
    if (*max_rows < 1) {
        PyErr_SetString(PyExc_ValueError, "max_rows must be at least 1");
        return 0;
    }
    return 1;
}

static PyObject *reader_read(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Keys *keys = &((RowReader *)self)->keys;
    PyObject *body;
    PyObject *packed = NULL;
    PyObject *result = NULL;
    const char *p;
    const char *end;
    Py_ssize_t max_rows;
    Py_ssize_t capacity;
    Py_ssize_t rows = 0;
    int single;
    if (!read_arguments(keys, "RowReader", args, nargs, &body, &max_rows)) return NULL;
    p = skip_space(PyBytes_AS_STRING(body));
    end = PyBytes_AS_STRING(body) + PyBytes_GET_SIZE(body);
    if (*p != '[' && *p != '{') Py_RETURN_NONE;
    single = *p == '{';
    /* A row takes at least "{}" and, per key, a colon, a digit and its quoted name. */
    capacity = single ? 1 : PyBytes_GET_SIZE(body) / (2 + 4 * keys->count) + 1;
    if (capacity > max_rows) capacity = max_rows;
    packed = PyBytes_FromStringAndSize(NULL, capacity * keys->count * (Py_ssize_t)sizeof(double));
    if (packed == NULL) return NULL;
    {
        double *values = (double *)PyBytes_AS_STRING(packed);
        const char *next;
        if (single) {
            next = read_row(p, end, keys, values);
            if (next == NULL) goto done;
            if (next == p) goto declined;
            p = next;
            rows = 1;
        } else {
            p = skip_space(p + 1);
            if (*p == ']') goto declined; /* no rows: the Python path says so */
            for (;;) {
                if (rows == capacity) goto declined; /* more than max_rows */
                next = read_row(p, end, keys, values + rows * keys->count);
                if (next == NULL) goto done;
                if (next == p) goto declined;
                rows++;
                p = skip_space(next);
                if (*p == ',') {
                    p = skip_space(p + 1);
                    continue;
                }
                if (*p != ']') goto declined;
                p++;
                break;
            }
        }
    }
    if (skip_space(p) != end) goto declined;
    if (rows < capacity &&
        _PyBytes_Resize(&packed, rows * keys->count * (Py_ssize_t)sizeof(double)) < 0) {
        goto done;
    }
    result = Py_BuildValue("(NnO)", packed, rows, single ? Py_True : Py_False);
    packed = NULL;
    goto done;
declined:
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(packed);
    return result;
}

static PyMethodDef reader_methods[] = {
    {"read", (PyCFunction)(void (*)(void))reader_read, METH_FASTCALL,
     "read(body, max_rows) -> (float64 bytes, rows, single) | None\n\n"
     "The rows of a body holding one object of the keys or an array of 1 to\n"
     "`max_rows` of them, each value a plain number: float64 [rows, keys] bytes in\n"
     "the keys' order, the row count and whether the body was one object. None for\n"
     "any other body."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot reader_slots[] = {
    {Py_tp_doc, "RowReader(keys): reads rows of the numeric keys (a tuple of bytes, names\n"
                "whose JSON needs no escape) from request bodies."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, reader_init},
    {Py_tp_dealloc, reader_dealloc},
    {Py_tp_methods, reader_methods},
    {0, NULL},
};

static PyType_Spec reader_spec = {
    "tabml.serve._body_readers.RowReader",
    sizeof(RowReader),
    0,
    Py_TPFLAGS_DEFAULT,
    reader_slots,
};

/* --- V2RowReader: Open Inference Protocol rows, a tensor per feature --------------- */

typedef struct {
    PyObject_HEAD
    Keys keys;
    double *lower;  /* each feature's range, within float32's */
    double *upper;
    char *integral; /* whether a feature's values must be whole numbers */
    double *column; /* one tensor's values as read, before its shape is known */
    Py_ssize_t column_capacity;
} V2RowReader;

/* What one request has shown so far: its row count (0 before its first tensor) and
 * the float32 [rows, keys] values, made once the count is known. */
typedef struct {
    Py_ssize_t max_rows;
    Py_ssize_t rows;
    PyObject *packed;
} V2Rows;

/* Whole numbers a JSON parser keeps exact as a double (numbers.INT_LIMIT). */
#define INT_LIMIT 9007199254740992.0

/* Whether the JSON string at p is `quoted` (a literal with its quotes, as in "\"data\""). */
#define AT_STRING(p, end, quoted) \
    ((end) - (p) >= (Py_ssize_t)sizeof(quoted) - 1 && memcmp((p), (quoted), sizeof(quoted) - 1) == 0)

/* A column's shape, [rows] or [rows, 1] with 0 < rows <= max_rows written as a plain
 * integer, at p into *rows: the position after it, or NULL. */
static inline const char *read_column_shape(const char *p, Py_ssize_t max_rows,
                                            Py_ssize_t *rows) {
    Py_ssize_t count = 0;
    if (*p != '[') return NULL;
    p = skip_space(p + 1);
    if (*p < '1' || *p > '9') return NULL; /* no sign, no leading zero, not 0 */
    do {
        if (count > (PY_SSIZE_T_MAX - 9) / 10) return NULL;
        count = count * 10 + (*p - '0');
        p++;
    } while (is_digit(*p));
    if (count > max_rows) return NULL;
    p = skip_space(p);
    if (*p == ',') {
        p = skip_space(p + 1);
        if (*p != '1') return NULL;
        p = skip_space(p + 1);
    }
    if (*p != ']') return NULL;
    *rows = count;
    return p + 1;
}

/* A tensor's data, a flat array of at most max_rows numbers, at p into reader->column
 * and *count: the position after it, p if it is not one, NULL on error (raised). */
static const char *read_column(const char *p, V2RowReader *reader, Py_ssize_t max_rows,
                               Py_ssize_t *count) {
    const char *start = p;
    Py_ssize_t read = 0;
    if (*p != '[') return start;
    p = skip_space(p + 1);
    for (;;) {
        const char *after_number;
        if (read == reader->column_capacity) {
            Py_ssize_t capacity = read < 64 ? 64 : read * 2;
            double *grown;
            if (read == max_rows) return start; /* more values than a batch may hold */
            if (capacity > max_rows) capacity = max_rows;
            grown = PyMem_Realloc(reader->column, (size_t)capacity * sizeof(double));
            if (grown == NULL) {
                PyErr_NoMemory();
                return NULL;
            }
            reader->column = grown;
            reader->column_capacity = capacity;
        }
        after_number = read_number(p, &reader->column[read]);
        if (after_number == NULL) return NULL;
        if (after_number == p) return start; /* no values, or one that is not a number */
        read++;
        p = skip_space(after_number);
        if (*p == ']') break;
        if (*p != ',') return start;
        p = skip_space(p + 1);
    }
    *count = read;
    return p + 1;
}

/* A tensor's column of `rows` values into its feature's place in the request's rows,
 * which its first tensor makes: 1 if done, 0 if a value breaks the numeric rule or the
 * rows differ from the request's, -1 on error (raised). */
static int place_column(V2RowReader *reader, Py_ssize_t index, Py_ssize_t rows,
                        V2Rows *request) {
    Py_ssize_t width = reader->keys.count;
    double lower = reader->lower[index];
    double upper = reader->upper[index];
    const double *column = reader->column;
    float *values;
    if (request->packed == NULL) {
        request->packed =
            PyBytes_FromStringAndSize(NULL, rows * width * (Py_ssize_t)sizeof(float));
        if (request->packed == NULL) return -1;
        request->rows = rows;
    } else if (rows != request->rows) {
        return 0;
    }
    /* The numeric rule (numbers.py) under the "reject" policy's ranges: NaN fails both
     * comparisons. */
    for (Py_ssize_t row = 0; row < rows; row++) {
        if (!(lower <= column[row] && column[row] <= upper)) return 0;
    }
    if (reader->integral[index]) {
        for (Py_ssize_t row = 0; row < rows; row++) {
            if (column[row] != trunc(column[row]) || fabs(column[row]) > INT_LIMIT) return 0;
        }
    }
    values = (float *)PyBytes_AS_STRING(request->packed) + index;
    for (Py_ssize_t row = 0; row < rows; row++) values[row * width] = (float)column[row];
    return 1;
}

/* Which field of an input tensor the key at p is (its quotes and the colon after it
 * read): 0 name, 1 shape, 2 datatype, 3 data; -1 for any other. */
static inline int tensor_field(const char **at, const char *end) {
    static const char *const quoted[] = {"\"name\"", "\"shape\"", "\"datatype\"", "\"data\""};
    const char *p = *at;
    for (int field = 0; field < 4; field++) {
        size_t length = strlen(quoted[field]);
        if (end - p >= (Py_ssize_t)length && memcmp(p, quoted[field], length) == 0) {
            p = skip_space(p + length);
            if (*p != ':') return -1;
            *at = skip_space(p + 1);
            return field;
        }
    }
    return -1;
}

/* One input tensor at p, its values into the request's rows: the position after it, p
 * if it is not a well-formed column of a feature not seen in this request, with as
 * many rows as the request's other tensors, NULL on error (raised). */
static const char *read_tensor(const char *p, const char *end, V2RowReader *reader,
                               Py_ssize_t stamp, Py_ssize_t *guess, V2Rows *request) {
    Keys *keys = &reader->keys;
    const char *start = p;
    Py_ssize_t index = -1;
    Py_ssize_t shape_rows = 0;
    Py_ssize_t count = 0;
    int seen = 0;
    int placed;
    if (*p != '{') return start;
    p = skip_space(p + 1);
    for (int read = 0; read < 4; read++) {
        int field;
        if (read > 0) {
            if (*p != ',') return start;
            p = skip_space(p + 1);
        }
        field = tensor_field(&p, end);
        if (field < 0 || seen & (1 << field)) return start;
        seen |= 1 << field;
        if (field == 0) {
            index = match_key(p, end, keys, *guess);
            if (index < 0 || keys->seen_in[index] == stamp) return start;
            keys->seen_in[index] = stamp;
            *guess = keys->after[index];
            p += keys->length[index];
        } else if (field == 1) {
            p = read_column_shape(p, request->max_rows, &shape_rows);
            if (p == NULL) return start;
        } else if (field == 2) {
            if (!(AT_STRING(p, end, "\"FP32\"") || AT_STRING(p, end, "\"FP64\"") ||
                  AT_STRING(p, end, "\"FP16\""))) {
                return start;
            }
            p += 6;
        } else {
            const char *next = read_column(p, reader, request->max_rows, &count);
            if (next == NULL) return NULL;
            if (next == p) return start;
            p = next;
        }
        p = skip_space(p);
    }
    if (*p != '}' || count != shape_rows) return start;
    placed = place_column(reader, index, count, request);
    if (placed < 0) return NULL;
    return placed ? p + 1 : start;
}

/* The request's id at p, a JSON string without escapes, into *id: the position after
 * it, or NULL (with no error set) if it is not one. */
static const char *read_id(const char *p, const char *end, PyObject **id) {
    const char *text;
    if (*p != '"') return NULL;
    text = ++p;
    /* Escapes go to the Python path; a control character is not JSON. */
    while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) p++;
    if (p == end || *p != '"') return NULL;
    *id = PyUnicode_DecodeUTF8(text, p - text, NULL);
    if (*id == NULL) {
        PyErr_Clear(); /* not UTF-8: the Python path says so */
        return NULL;
    }
    return p + 1;
}

/* The request's inputs at p into its rows: the position after them, p if they are not
 * one well-formed tensor per feature, NULL on error (raised). */
static const char *read_inputs(const char *p, const char *end, V2RowReader *reader,
                               V2Rows *request) {
    Keys *keys = &reader->keys;
    const char *start = p;
    Py_ssize_t stamp = ++keys->stamp;
    Py_ssize_t guess = 0;
    if (*p != '[') return start;
    p = skip_space(p + 1);
    for (Py_ssize_t tensor = 0; tensor < keys->count; tensor++) {
        const char *next;
        if (tensor > 0) {
            if (*p != ',') return start;
            p = skip_space(p + 1);
        }
        next = read_tensor(p, end, reader, stamp, &guess, request);
        if (next == NULL) return NULL;
        if (next == p) return start;
        p = skip_space(next);
    }
    return *p == ']' ? p + 1 : start;
}

static PyObject *v2_reader_read(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    V2RowReader *reader = (V2RowReader *)self;
    Keys *keys = &reader->keys;
    V2Rows request = {0, 0, NULL};
    PyObject *body;
    PyObject *id = NULL;
    const char *p;
    const char *end;
    int has_inputs = 0;
    if (!read_arguments(keys, "V2RowReader", args, nargs, &body, &request.max_rows)) {
        return NULL;
    }
    p = skip_space(PyBytes_AS_STRING(body));
    end = PyBytes_AS_STRING(body) + PyBytes_GET_SIZE(body);
    if (*p != '{') Py_RETURN_NONE;
    p = skip_space(p + 1);
    /* The request's fields in any order, each once: inputs, and id if given. */
    for (int field = 0; field < 2; field++) {
        if (field > 0) {
            if (*p != ',') break;
            p = skip_space(p + 1);
        }
        if (AT_STRING(p, end, "\"inputs\"") && !has_inputs) {
            const char *next;
            p = skip_space(p + 8);
            if (*p != ':') goto declined;
            p = skip_space(p + 1);
            next = read_inputs(p, end, reader, &request);
            if (next == NULL) goto failed;
            if (next == p) goto declined;
            has_inputs = 1;
            p = skip_space(next);
        } else if (AT_STRING(p, end, "\"id\"") && id == NULL) {
            p = skip_space(p + 4);
            if (*p != ':') goto declined;
            p = read_id(skip_space(p + 1), end, &id);
            if (p == NULL) goto declined;
            p = skip_space(p);
        } else {
            goto declined;
        }
    }
    if (!has_inputs || *p != '}' || skip_space(p + 1) != end) goto declined;
    if (id == NULL) id = Py_NewRef(Py_None);
    return Py_BuildValue("(NnN)", request.packed, request.rows, id);
declined:
    Py_XDECREF(request.packed);
    Py_XDECREF(id);
    Py_RETURN_NONE;
failed:
    Py_XDECREF(request.packed);
    Py_XDECREF(id);
    return NULL;
}

static void free_v2_reader(V2RowReader *reader) {
    free_keys(&reader->keys);
    PyMem_Free(reader->lower);
    PyMem_Free(reader->upper);
    PyMem_Free(reader->integral);
    PyMem_Free(reader->column);
    reader->lower = reader->upper = NULL;
    reader->integral = NULL;
    reader->column = NULL;
    reader->column_capacity = 0;
}

/* A tuple of `count` floats into a new array; 0 on error (raised). */
static int float_array(PyObject *tuple, Py_ssize_t count, const char *what, double **out) {
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) != count) {
        PyErr_Format(PyExc_TypeError, "%s must be a tuple of a float per key", what);
        return 0;
    }
    *out = PyMem_Calloc((size_t)count, sizeof(double));
    if (*out == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    for (Py_ssize_t index = 0; index < count; index++) {
        double value = PyFloat_AsDouble(PyTuple_GET_ITEM(tuple, index));
        if (value == -1.0 && PyErr_Occurred()) return 0;
        (*out)[index] = value;
    }
    return 1;
}

static int v2_reader_init(PyObject *self, PyObject *args, PyObject *kwargs) {
    V2RowReader *reader = (V2RowReader *)self;
    PyObject *names, *lower, *upper, *integral;
    Py_ssize_t count;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "V2RowReader takes no keyword arguments");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "OOOO:V2RowReader", &names, &lower, &upper, &integral)) {
        return -1;
    }
    free_v2_reader(reader);
    if (!make_keys(names, &reader->keys)) goto failed;
    count = reader->keys.count;
    if (!float_array(lower, count, "lower", &reader->lower) ||
        !float_array(upper, count, "upper", &reader->upper)) {
        goto failed;
    }
    if (!PyTuple_Check(integral) || PyTuple_GET_SIZE(integral) != count) {
        PyErr_SetString(PyExc_TypeError, "integral must be a tuple of a bool per key");
        goto failed;
    }
    reader->integral = PyMem_Calloc((size_t)count, 1);
    if (reader->integral == NULL) {
        PyErr_NoMemory();
        goto failed;
    }
    for (Py_ssize_t index = 0; index < count; index++) {
        int truth = PyObject_IsTrue(PyTuple_GET_ITEM(integral, index));
        if (truth < 0) goto failed;
        reader->integral[index] = (char)truth;
    }
    return 0;
failed:
    free_v2_reader(reader);
    return -1;
}

static void v2_reader_dealloc(PyObject *self) {
    PyTypeObject *type = Py_TYPE(self);
    free_v2_reader((V2RowReader *)self);
    type->tp_free(self);
    Py_DECREF(type);
}

static PyMethodDef v2_reader_methods[] = {
    {"read", (PyCFunction)(void (*)(void))v2_reader_read, METH_FASTCALL,
     "read(body, max_rows) -> (float32 bytes, rows, id) | None\n\n"
     "The rows of an inference request holding `inputs`, one tensor per key in any\n"
     "order (each exactly name, shape [rows] or [rows, 1] with 0 < rows <= max_rows,\n"
     "datatype FP16, FP32 or FP64 and flat data of `rows` numbers within the key's\n"
     "bounds, whole where they must be; every tensor the same rows), and optionally a\n"
     "plain string `id`: float32 [rows, keys] bytes in the keys' order, the row count\n"
     "and the id or None. None for any other body."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot v2_reader_slots[] = {
    {Py_tp_doc, "V2RowReader(keys, lower, upper, integral): reads the rows of inference\n"
                "requests of the numeric keys (a tuple of bytes, names whose JSON needs no\n"
                "escape), each value held within [lower, upper] and, where integral,\n"
                "a whole number within 2^53."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, v2_reader_init},
    {Py_tp_dealloc, v2_reader_dealloc},
    {Py_tp_methods, v2_reader_methods},
    {0, NULL},
};

static PyType_Spec v2_reader_spec = {
    "tabml.serve._body_readers.V2RowReader",
    sizeof(V2RowReader),
    0,
    Py_TPFLAGS_DEFAULT,
    v2_reader_slots,
};

static int add_type(PyObject *module, PyType_Spec *spec, const char *name) {
    PyObject *type = PyType_FromModuleAndSpec(module, spec, NULL);
    if (type == NULL) return -1;
    if (PyModule_AddObject(module, name, type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

static int module_exec(PyObject *module) {
    if (add_type(module, &reader_spec, "RowReader") < 0) return -1;
    return add_type(module, &v2_reader_spec, "V2RowReader");
}

static struct PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef definition = {
    PyModuleDef_HEAD_INIT,
    "_body_readers",
    "The serving app's common request bodies, read in C.",
    0,
    NULL,
    module_slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__body_readers(void) { return PyModuleDef_Init(&definition); }
