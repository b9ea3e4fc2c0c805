/* POST /predict's common body read in C: one JSON object of numbers keyed by feature
 * name, or an array of them, straight into float64 rows without a Python object per
 * value. Python's fastest parser here (msgspec, into typed rows) spends most of a
 * 1,000-row request making and unpacking 30,000 floats (docs/benchmarks.md).
 *
 * It reads only what every check of the Python path passes on its way to the range
 * check: rows holding exactly the given keys once each, as plain JSON numbers (no
 * nulls, strings or nesting). For anything else, invalid JSON included, it answers
 * None and the caller goes on to the Python path, whose checks name every problem. So
 * it never refuses a body; it only declines to read one.
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
    if (keys->count == 0) {
        PyErr_SetString(PyExc_ValueError, "RowReader was not given its keys");
        return NULL;
    }
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "read(body, max_rows) takes 2 arguments");
        return NULL;
    }
    body = args[0];
    if (!PyBytes_Check(body)) {
        PyErr_SetString(PyExc_TypeError, "body must be bytes");
        return NULL;
    }
    max_rows = PyLong_AsSsize_t(args[1]);
    if (max_rows == -1 && PyErr_Occurred()) return NULL;
    if (max_rows < 1) {
        PyErr_SetString(PyExc_ValueError, "max_rows must be at least 1");
        return NULL;
    }
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

static int module_exec(PyObject *module) {
    PyObject *type = PyType_FromModuleAndSpec(module, &reader_spec, NULL);
    if (type == NULL) return -1;
    if (PyModule_AddObject(module, "RowReader", type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
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
    "POST /predict's plain numeric rows, read in C.",
    0,
    NULL,
    module_slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__body_readers(void) { return PyModuleDef_Init(&definition); }
