/*
 * varlen.data._native: the compiled kernel behind varlen.pad_sequences.
 *
 * One call pads a list of sequences straight into a new (B, T, *F) array: each output row is
 * written once, in order (its padding stored from the fill value, its kept steps converted
 * from the sequence's own memory), with no intermediate flat array and no index array. The
 * Python-level cost per sequence is a type check and a length; per step of a list, a type
 * check and one integer or float read.
 *
 * The kernel is exact or it declines. It handles the common inputs (NumPy arrays of bool,
 * integer and float dtypes; lists and tuples of Python ints, bools and floats) into bool,
 * integer and float outputs, and only where its result is the one NumPy and Keras give with
 * no warning and no error. On anything else (another item type, a value the output dtype
 * cannot hold exactly, a shape mismatch, ...) it returns None without side effects, and the
 * NumPy implementation in padding.py, which warns and raises as documented, takes over.
 *
 * Conversions, matching `np.asarray(part, dtype=out)` as Keras calls it:
 * - arrays, integer or bool -> integer: C cast, declined if a value does not fit (it would wrap
 *   around, as NumPy's unsafe cast does; the NumPy path warns). The check compares the value
 *   as a double with the output's range, so values within 2**10 of 2**63 or 2**64 may be
 *   declined although they fit (the NumPy path then pads them exactly);
 * - arrays, integer or bool -> float: C cast; -> bool: v != 0;
 * - arrays, float -> float: C cast, declined if a finite value overflows (NumPy warns);
 * - arrays, float -> integer or bool: only integral values the output holds exactly;
 * - Python ints and bools -> integer: only values the output holds (NumPy raises otherwise);
 *   -> bool: v != 0; -> float: only |v| <= 2**53 (exact as a double);
 * - Python floats: as float arrays; and a list or tuple holding a float is float data (as
 *   np.asarray makes it), so into an integer or bool output its ints must be exact as
 *   floats too (|v| <= 2**53; 0 or 1 into bool), as the NumPy path checks them.
 *
 * The GIL invariant (what makes reading Python objects without locks safe here):
 * - The GIL is held for the whole call; the kernel never releases it.
 * - Python code can run only where the kernel asks CPython or NumPy for something that may
 *   call back: parsing the arguments (__index__, __bool__), and allocating (the snapshot
 *   tuple and the output array: an allocation may start a garbage collection, which runs
 *   finalizers and weakref callbacks, and those may change any list they reach).
 * - So the sequence is snapshotted into a tuple after the arguments are parsed and before
 *   the first pass (snapshot(): the list's size is read again after the tuple's allocation,
 *   and the kernel declines if it changed): the tuple holds a reference to every item, and
 *   its size and items cannot change, whatever runs later. The first pass reads the
 *   snapshot and allocates nothing.
 * - The output is allocated between the two passes, where Python code may run and change an
 *   item's contents (a list shrinks, grows or gets other elements; an array is reshaped).
 *   The second pass therefore trusts nothing the first pass saw about an item: it reads
 *   each item's length again, checks that it is still readable into the output's step
 *   shape, and the element conversions check every element's type; a change makes the
 *   kernel decline (return None). The second pass itself calls nothing that can run Python
 *   code: no allocation, only reads of exact ints, floats and array memory.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_1_22_API_VERSION
#include <numpy/arrayobject.h>

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------- element types */

enum { K_BOOL, K_INT, K_FLOAT };

/* X(name, C type, kind, lowest value, one past the highest value (as doubles, exact: powers
 * of two), lowest and highest value as long long for range checks of Python ints) */
#define VL_TYPES(X)                                                                           \
    X(b1, npy_bool, K_BOOL, 0.0, 2.0, 0LL, 1LL)                                                \
    X(i1, npy_int8, K_INT, -128.0, 128.0, -128LL, 127LL)                                       \
    X(i2, npy_int16, K_INT, -32768.0, 32768.0, -32768LL, 32767LL)                              \
    X(i4, npy_int32, K_INT, -2147483648.0, 2147483648.0, -2147483648LL, 2147483647LL)          \
    X(i8, npy_int64, K_INT, -9223372036854775808.0, 9223372036854775808.0, LLONG_MIN,         \
      LLONG_MAX)                                                                              \
    X(u1, npy_uint8, K_INT, 0.0, 256.0, 0LL, 255LL)                                            \
    X(u2, npy_uint16, K_INT, 0.0, 65536.0, 0LL, 65535LL)                                       \
    X(u4, npy_uint32, K_INT, 0.0, 4294967296.0, 0LL, 4294967295LL)                             \
    X(u8, npy_uint64, K_INT, 0.0, 18446744073709551616.0, 0LL, LLONG_MAX)                      \
    X(f4, npy_float, K_FLOAT, 0.0, 0.0, 0LL, 0LL)                                              \
    X(f8, npy_double, K_FLOAT, 0.0, 0.0, 0LL, 0LL)

enum {
#define VL_ENUM(name, ctype, kind, lo, hi, llo, lhi) T_##name,
    VL_TYPES(VL_ENUM)
#undef VL_ENUM
    T_COUNT
};

/* Index of a dtype in VL_TYPES, or -1 if the kernel does not handle it. */
static int type_index(PyArray_Descr *descr)
{
    if (PyDataType_ISBYTESWAPPED(descr) || PyDataType_HASFIELDS(descr) ||
        PyDataType_HASSUBARRAY(descr)) {
        return -1;
    }
    switch (descr->kind) {
    case 'b':
        return T_b1;
    case 'i':
        switch (PyDataType_ELSIZE(descr)) {
        case 1: return T_i1;
        case 2: return T_i2;
        case 4: return T_i4;
        case 8: return T_i8;
        }
        return -1;
    case 'u':
        switch (PyDataType_ELSIZE(descr)) {
        case 1: return T_u1;
        case 2: return T_u2;
        case 4: return T_u4;
        case 8: return T_u8;
        }
        return -1;
    case 'f':
        switch (PyDataType_ELSIZE(descr)) {
        case 4: return T_f4;
        case 8: return T_f8;
        }
        return -1;
    }
    return -1;
}

/* ------------------------------------------------------------------- array -> array kernels */

/* Convert one element `v` (of kind KIN) to `d` (C type TOUT, kind KOUT); set `bad` where the
 * result would not be exact (see the header). KIN and KOUT are constants: the compiler keeps
 * one branch. */
#define VL_CONVERT(KIN, ILO, IHI, TOUT, KOUT, LO, HI, v, d, bad)                              \
    do {                                                                                      \
        if ((KOUT) == K_BOOL) {                                                               \
            if ((KIN) == K_FLOAT) {                                                           \
                (bad) |= !((v) == 0 || (v) == 1);                                             \
            }                                                                                 \
            (d) = (TOUT)((v) != 0);                                                           \
        }                                                                                     \
        else if ((KIN) == K_FLOAT && (KOUT) == K_INT) {                                       \
            double x_ = (double)(v);                                                          \
            int in_ = x_ >= (LO) && x_ < (HI); /* false for NaN */                            \
            (d) = in_ ? (TOUT)x_ : (TOUT)0;                                                   \
            (bad) |= !in_ || (double)(d) != x_;                                               \
        }                                                                                     \
        else if ((KIN) == K_FLOAT && (KOUT) == K_FLOAT) {                                     \
            (d) = (TOUT)(v);                                                                  \
            (bad) |= isinf((double)(d)) && !isinf((double)(v));                               \
        }                                                                                     \
        else if ((KIN) == K_INT && (KOUT) == K_INT && ((ILO) < (LO) || (IHI) > (HI))) {       \
            double x_ = (double)(v); /* a narrowing cast: the value must fit */               \
            (d) = (TOUT)(v);                                                                  \
            (bad) |= !(x_ >= (LO) && x_ < (HI));                                              \
        }                                                                                     \
        else {                                                                                \
            (d) = (TOUT)(v);                                                                  \
        }                                                                                     \
    } while (0)

/* Convert `n` elements from `src` (`stride` bytes apart) to contiguous `dst`; -1 if inexact. */
typedef int (*convert_fn)(const char *src, npy_intp stride, char *dst, npy_intp n);

#define VL_KERNEL(IN, TIN, KIN, ILO, IHI, OUT, TOUT, KOUT, LO, HI)                            \
    static int convert_##IN##_##OUT(const char *src, npy_intp stride, char *dst_, npy_intp n) \
    {                                                                                         \
        TOUT *dst = (TOUT *)dst_;                                                             \
        int bad = 0;                                                                          \
        if (stride == (npy_intp)sizeof(TIN)) {                                                \
            const TIN *s = (const TIN *)src;                                                  \
            for (npy_intp j = 0; j < n; j++) {                                                \
                VL_CONVERT(KIN, ILO, IHI, TOUT, KOUT, LO, HI, s[j], dst[j], bad);             \
            }                                                                                 \
        }                                                                                     \
        else {                                                                                \
            for (npy_intp j = 0; j < n; j++) {                                                \
                TIN v = *(const TIN *)(src + j * stride);                                     \
                VL_CONVERT(KIN, ILO, IHI, TOUT, KOUT, LO, HI, v, dst[j], bad);                \
            }                                                                                 \
        }                                                                                     \
        return bad ? -1 : 0;                                                                  \
    }

/* One kernel per (input, output) pair: expand the inner list once per input type. */
#define VL_KERNELS_FROM(IN, TIN, KIN, lo_, hi_, llo_, lhi_)                                   \
    VL_KERNEL(IN, TIN, KIN, lo_, hi_, b1, npy_bool, K_BOOL, 0.0, 2.0)                         \
    VL_KERNEL(IN, TIN, KIN, lo_, hi_, i1, npy_int8, K_INT, -128.0, 128.0)                     \
    VL_KERNEL(IN, TIN, KIN, lo_, hi_, i2, npy_int16, K_INT, -32768.0, 32768.0)                \
    VL_KERNEL(IN, TIN, KIN, lo_, hi_, i4, npy_int32, K_INT, -2147483648.0, 2147483648.0)      \
    VL_KERNEL(IN, TIN, KIN, lo_, hi_, i8, npy_int64, K_INT, -9223372036854775808.0,           \
              9223372036854775808.0)                                                          \
    VL_KERNEL(IN, TIN, KIN, lo_, hi_, u1, npy_uint8, K_INT, 0.0, 256.0)                       \
    VL_KERNEL(IN, TIN, KIN, lo_, hi_, u2, npy_uint16, K_INT, 0.0, 65536.0)                    \
    VL_KERNEL(IN, TIN, KIN, lo_, hi_, u4, npy_uint32, K_INT, 0.0, 4294967296.0)               \
    VL_KERNEL(IN, TIN, KIN, lo_, hi_, u8, npy_uint64, K_INT, 0.0, 18446744073709551616.0)     \
    VL_KERNEL(IN, TIN, KIN, lo_, hi_, f4, npy_float, K_FLOAT, 0.0, 0.0)                       \
    VL_KERNEL(IN, TIN, KIN, lo_, hi_, f8, npy_double, K_FLOAT, 0.0, 0.0)                      \

VL_TYPES(VL_KERNELS_FROM)

#define VL_ROW(IN, TIN, KIN, lo_, hi_, llo_, lhi_)                                            \
    {convert_##IN##_b1, convert_##IN##_i1, convert_##IN##_i2, convert_##IN##_i4,              \
     convert_##IN##_i8, convert_##IN##_u1, convert_##IN##_u2, convert_##IN##_u4,              \
     convert_##IN##_u8, convert_##IN##_f4, convert_##IN##_f8},

static const convert_fn CONVERT[T_COUNT][T_COUNT] = {VL_TYPES(VL_ROW)};

/* --------------------------------------------------------------- Python objects -> array */

/* Convert `n` Python ints, bools and floats to contiguous `dst`; -1 on anything else or on
 * a value the output type does not hold exactly (no Python exception is set). */
typedef int (*objects_fn)(PyObject *const *items, npy_intp n, char *dst);

#define VL_OBJECTS(OUT, TOUT, KOUT, LO, HI, LLO, LHI)                                         \
    static int objects_to_##OUT(PyObject *const *items, npy_intp n, char *dst_)               \
    {                                                                                         \
        TOUT *dst = (TOUT *)dst_;                                                             \
        int bad = 0, floats = 0, inexact_ints = 0;                                            \
        for (npy_intp j = 0; j < n; j++) {                                                    \
            PyObject *item = items[j];                                                        \
            if (PyLong_CheckExact(item) || PyBool_Check(item)) {                              \
                int overflow;                                                                 \
                long long v = PyLong_AsLongLongAndOverflow(item, &overflow);                  \
                if (overflow) {                                                               \
                    return -1;                                                                \
                }                                                                             \
                if ((KOUT) != K_FLOAT) { /* see the note on floats below */                   \
                    inexact_ints |= v > (1LL << 53) || v < -(1LL << 53) ||                    \
                                    ((KOUT) == K_BOOL && v != 0 && v != 1);                   \
                }                                                                             \
                if ((KOUT) == K_BOOL) {                                                       \
                    dst[j] = (TOUT)(v != 0);                                                  \
                }                                                                             \
                else if ((KOUT) == K_FLOAT) {                                                 \
                    if (v > (1LL << 53) || v < -(1LL << 53)) {                                \
                        return -1;                                                            \
                    }                                                                         \
                    dst[j] = (TOUT)(double)v;                                                 \
                }                                                                             \
                else {                                                                        \
                    if (v < (LLO) || v > (LHI)) {                                             \
                        return -1;                                                            \
                    }                                                                         \
                    dst[j] = (TOUT)v;                                                         \
                }                                                                             \
            }                                                                                 \
            else if (PyFloat_CheckExact(item)) {                                              \
                double v = PyFloat_AS_DOUBLE(item);                                           \
                VL_CONVERT(K_FLOAT, 0.0, 0.0, TOUT, KOUT, LO, HI, v, dst[j], bad);            \
                if (bad) {                                                                    \
                    return -1;                                                                \
                }                                                                             \
                floats = 1;                                                                   \
            }                                                                                 \
            else {                                                                            \
                return -1;                                                                    \
            }                                                                                 \
        }                                                                                     \
        /* A sequence holding a float is float data, as np.asarray makes it: its ints are */  \
        /* then checked as floats too (exact as a double; 0 or 1 into bool).              */  \
        return floats && inexact_ints ? -1 : 0;                                               \
    }

VL_TYPES(VL_OBJECTS)

#define VL_OBJECTS_ENTRY(OUT, TOUT, KOUT, lo_, hi_, llo_, lhi_) objects_to_##OUT,
static const objects_fn FROM_OBJECTS[T_COUNT] = {VL_TYPES(VL_OBJECTS_ENTRY)};

/* ----------------------------------------------------------------------------- the kernel */

#define VL_MAX_DIMS 32

/* The input forms the kernel reads. */
static int is_array(PyObject *item) { return Py_TYPE(item) == &PyArray_Type; }
static int is_objects(PyObject *item) { return PyList_CheckExact(item) || PyTuple_CheckExact(item); }

/* Whether `item` is a Python int, bool or float (not a subclass, which may convert otherwise). */
static int is_number(PyObject *item)
{
    return PyLong_CheckExact(item) || PyBool_Check(item) || PyFloat_CheckExact(item);
}

/* Length of `item`, or -1 if the kernel does not read this kind of item. */
static npy_intp item_length(PyObject *item)
{
    if (is_array(item)) {
        PyArrayObject *a = (PyArrayObject *)item;
        return PyArray_NDIM(a) >= 1 ? PyArray_DIM(a, 0) : -1;
    }
    if (is_objects(item)) {
        return Py_SIZE(item);
    }
    return -1;
}

/* Whether the kernel can copy non-empty `item` into steps of shape `step_dims`
 * (`*step_ndim == -1`: not known yet, taken from this item as Keras takes it). */
static int item_readable(PyObject *item, int *step_ndim, npy_intp *step_dims)
{
    if (is_objects(item)) {
        if (*step_ndim == -1) {
            /* The step shape is taken from this item, as np.shape(item)[1:]: it is () when
             * every item is a number. Later items are checked as their kept steps are read. */
            PyObject *const *items = PySequence_Fast_ITEMS(item);
            for (Py_ssize_t j = 0; j < Py_SIZE(item); j++) {
                if (!is_number(items[j])) {
                    return 0;
                }
            }
            *step_ndim = 0;
        }
        return *step_ndim == 0;
    }
    PyArrayObject *a = (PyArrayObject *)item;
    int ndim = PyArray_NDIM(a);
    if (ndim - 1 > VL_MAX_DIMS || type_index(PyArray_DESCR(a)) < 0 || !PyArray_ISALIGNED(a)) {
        return 0;
    }
    if (ndim > 1 && !PyArray_IS_C_CONTIGUOUS(a)) {
        return 0; /* steps with features: one contiguous block per array */
    }
    if (*step_ndim == -1) {
        *step_ndim = ndim - 1;
        for (int d = 1; d < ndim; d++) {
            step_dims[d - 1] = PyArray_DIM(a, d);
        }
        return 1;
    }
    if (ndim - 1 != *step_ndim) {
        return 0;
    }
    for (int d = 1; d < ndim; d++) {
        if (PyArray_DIM(a, d) != step_dims[d - 1]) {
            return 0;
        }
    }
    return 1;
}

/* Write the `count` kept steps of `item`, starting at its step `first`, to `dst`. */
static int copy_steps(PyObject *item, npy_intp first, npy_intp count, npy_intp step_size,
                      int out_type, char *dst)
{
    if (count == 0) {
        return 0;
    }
    if (is_objects(item)) {
        PyObject *const *items = PySequence_Fast_ITEMS(item);
        return FROM_OBJECTS[out_type](items + first, count, dst);
    }
    PyArrayObject *a = (PyArrayObject *)item;
    int in_type = type_index(PyArray_DESCR(a));
    npy_intp itemsize = PyArray_ITEMSIZE(a);
    if (PyArray_NDIM(a) == 1) {
        npy_intp stride = PyArray_STRIDE(a, 0);
        return CONVERT[in_type][out_type](PyArray_BYTES(a) + first * stride, stride, dst, count);
    }
    const char *src = PyArray_BYTES(a) + first * step_size * itemsize; /* C-contiguous */
    return CONVERT[in_type][out_type](src, itemsize, dst, count * step_size);
}

/* Store `count` copies of the `itemsize` bytes at `fill` from `dst` (aligned for itemsize). */
static void fill_items(char *dst, const char *fill, npy_intp itemsize, npy_intp count)
{
#define VL_FILL(TYPE)                                                                         \
    do {                                                                                      \
        TYPE value_;                                                                          \
        memcpy(&value_, fill, sizeof(TYPE));                                                  \
        TYPE *out_ = (TYPE *)dst;                                                             \
        for (npy_intp j = 0; j < count; j++) {                                                \
            out_[j] = value_;                                                                 \
        }                                                                                     \
    } while (0)
    switch (itemsize) {
    case 1:
        memset(dst, fill[0], (size_t)count);
        return;
    case 2:
        VL_FILL(npy_uint16);
        return;
    case 4:
        VL_FILL(npy_uint32);
        return;
    case 8:
        VL_FILL(npy_uint64);
        return;
    }
#undef VL_FILL
    for (npy_intp j = 0; j < count; j++) {
        memcpy(dst + j * itemsize, fill, (size_t)itemsize);
    }
}

static PyObject *pad_snapshot(PyObject *seqs, Py_ssize_t maxlen, PyArrayObject *fill,
                              int out_type, int pre_padding, int pre_truncating);

/* A tuple holding the items of `list` (a new reference), Py_None (a new reference) if the
 * list changed size while the tuple was allocated, or NULL with an exception set. The size is
 * read again after the allocation (which may run a garbage collection, and so Python code),
 * and the items are copied with nothing in between that can run Python code. */
static PyObject *snapshot(PyObject *list)
{
    Py_ssize_t B = PyList_GET_SIZE(list);
    PyObject *tuple = PyTuple_New(B);
    if (tuple == NULL) {
        return NULL;
    }
    if (PyList_GET_SIZE(list) != B) {
        Py_DECREF(tuple); /* its slots are all NULL: freeing it runs no Python code */
        Py_RETURN_NONE;
    }
    for (Py_ssize_t i = 0; i < B; i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
        Py_INCREF(item);
        PyTuple_SET_ITEM(tuple, i, item);
    }
    return tuple;
}

PyDoc_STRVAR(pad_sequences_doc,
             "pad_sequences(sequences, maxlen, fill, pre_padding, pre_truncating, /)\n--\n\n"
             "Pad a list of sequences into a new (B, T, *F) array of fill.dtype, or None.\n\n"
             "sequences: list of NumPy arrays (T_i, *F) and lists or tuples of Python numbers.\n"
             "maxlen: T, or -1 for the longest length. fill: 0-d array, the pad value.\n"
             "None means the kernel declined (see the module source): nothing was changed, and\n"
             "the caller pads the NumPy way, which warns and raises as documented.");

static PyObject *pad_sequences(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5 || !PyList_CheckExact(args[0]) || !PyArray_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "pad_sequences(list, int, ndarray, bool, bool) takes 5 arguments");
        return NULL;
    }
    Py_ssize_t maxlen = PyLong_AsSsize_t(args[1]);
    if (maxlen == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyArrayObject *fill = (PyArrayObject *)args[2];
    int pre_padding = PyObject_IsTrue(args[3]);
    int pre_truncating = PyObject_IsTrue(args[4]);
    if (pre_padding < 0 || pre_truncating < 0) {
        return NULL;
    }
    int out_type = type_index(PyArray_DESCR(fill));
    if (out_type < 0 || PyArray_NDIM(fill) != 0 || maxlen < -1) {
        Py_RETURN_NONE;
    }
    /* The snapshot (see the GIL invariant at the top): from here on, the items are fixed. */
    PyObject *seqs = snapshot(args[0]);
    if (seqs == NULL) {
        return NULL;
    }
    if (seqs == Py_None) {
        return seqs; /* the list changed while the snapshot was allocated: decline */
    }
    PyObject *out = pad_snapshot(seqs, maxlen, fill, out_type, pre_padding, pre_truncating);
    Py_DECREF(seqs);
    return out;
}

/* Pad the items of the tuple `seqs` (see pad_sequences); a new reference, Py_None, or NULL. */
static PyObject *pad_snapshot(PyObject *seqs, Py_ssize_t maxlen, PyArrayObject *fill,
                              int out_type, int pre_padding, int pre_truncating)
{
    /* Pass 1: lengths, T, the step shape, and whether every item is readable. */
    Py_ssize_t B = PyTuple_GET_SIZE(seqs);
    npy_intp longest = 0;
    int step_ndim = -1;
    npy_intp step_dims[VL_MAX_DIMS];
    for (Py_ssize_t i = 0; i < B; i++) {
        PyObject *item = PyTuple_GET_ITEM(seqs, i);
        npy_intp n = item_length(item);
        if (n < 0 || (n > 0 && !item_readable(item, &step_ndim, step_dims))) {
            Py_RETURN_NONE;
        }
        longest = n > longest ? n : longest;
    }
    npy_intp T = maxlen == -1 ? longest : (npy_intp)maxlen;
    npy_intp step_size = 1; /* elements per step */
    npy_intp dims[VL_MAX_DIMS + 2] = {(npy_intp)B, T};
    step_ndim = step_ndim < 0 ? 0 : step_ndim;
    for (int d = 0; d < step_ndim; d++) {
        dims[2 + d] = step_dims[d];
        step_size *= step_dims[d];
    }

    /* The output: zeros from the allocator when the fill is all zero bytes (untouched pages
     * stay unmapped until read), else each row's padding is stored as it is reached. */
    npy_intp itemsize = PyArray_ITEMSIZE(fill);
    const char *fill_bytes = PyArray_BYTES(fill);
    int zero = 1;
    for (npy_intp b = 0; b < itemsize; b++) {
        zero &= fill_bytes[b] == 0;
    }
    PyArray_Descr *descr = PyArray_DESCR(fill);
    Py_INCREF(descr); /* stolen below */
    PyArrayObject *out = (PyArrayObject *)(zero ? PyArray_Zeros(2 + step_ndim, dims, descr, 0)
                                                : PyArray_Empty(2 + step_ndim, dims, descr, 0));
    if (out == NULL) {
        return NULL;
    }
    npy_intp row_bytes = T * step_size * itemsize;
    npy_intp step_bytes = step_size * itemsize;

    /* Pass 2: each row once, in order: its padding, then (or before) its kept steps. Each
     * item is read afresh (the allocation above may have run Python code). */
    char *row = PyArray_BYTES(out);
    int declined = 0;
    for (Py_ssize_t i = 0; i < B && !declined; i++, row += row_bytes) {
        PyObject *item = PyTuple_GET_ITEM(seqs, i);
        npy_intp n = item_length(item);
        if (n < 0 || (n > 0 && !item_readable(item, &step_ndim, step_dims))) {
            declined = 1;
            break;
        }
        npy_intp kept = n < T ? n : T;
        npy_intp first = pre_truncating ? n - kept : 0;    /* first kept step of the item */
        char *steps = row + (pre_padding ? T - kept : 0) * step_bytes;
        if (!zero) {
            fill_items(pre_padding ? row : row + kept * step_bytes, fill_bytes, itemsize,
                       (T - kept) * step_size);
        }
        declined = copy_steps(item, first, kept, step_size, out_type, steps) < 0;
    }
    if (declined) {
        Py_DECREF(out);
        Py_RETURN_NONE;
    }
    return (PyObject *)out;
}

/* ------------------------------------------------- time-major steps of a recurrent layer */

/* The float arrays the two step kernels below read and write: C-contiguous float32 or
 * float64 of `ndim` dimensions and the dtype of `like` (if given). 1 if so, else 0 with a
 * TypeError set. */
static int float_array(PyObject *obj, int ndim, PyArrayObject *like, const char *name)
{
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a NumPy array", name);
        return 0;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    int type = PyArray_TYPE(a);
    if (PyArray_NDIM(a) != ndim || !PyArray_IS_C_CONTIGUOUS(a) ||
        (type != NPY_FLOAT && type != NPY_DOUBLE) ||
        (like != NULL && type != PyArray_TYPE(like))) {
        PyErr_Format(PyExc_TypeError,
                     "%s must be a C-contiguous float32 or float64 array of %d dimensions "
                     "(of the input's dtype)",
                     name, ndim);
        return 0;
    }
    return 1;
}

/* `lengths`: a C-contiguous int64 array (B,) with every value in [0, T]. 1 if so, else 0
 * with an error set. The values are checked because they index memory below. */
static int lengths_array(PyObject *obj, npy_intp B, npy_intp T)
{
    if (!PyArray_Check(obj) || PyArray_TYPE((PyArrayObject *)obj) != NPY_INT64 ||
        PyArray_NDIM((PyArrayObject *)obj) != 1 ||
        !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)obj) ||
        PyArray_DIM((PyArrayObject *)obj, 0) != B) {
        PyErr_SetString(PyExc_TypeError, "lengths must be a C-contiguous int64 array (B,)");
        return 0;
    }
    const npy_int64 *n = (const npy_int64 *)PyArray_DATA((PyArrayObject *)obj);
    for (npy_intp b = 0; b < B; b++) {
        if (n[b] < 0 || n[b] > T) {
            PyErr_SetString(PyExc_ValueError, "lengths must lie in [0, T]");
            return 0;
        }
    }
    return 1;
}

PyDoc_STRVAR(time_major_steps_doc,
             "time_major_steps(x, lengths, out, pre, /)\n--\n\n"
             "Write a recurrent layer's first input: out (T, B, F + 1) from x (B, T, F).\n\n"
             "A real step of row b is (x[b, t], 0); a padded step is (0, ..., 0, 1), whatever\n"
             "x holds there (NaN, inf). Real steps are the first lengths[b] of the row, or the\n"
             "last ones with pre true. x and out: C-contiguous, one float dtype; lengths: int64\n"
             "(B,) in [0, T]. Exact: values are copied, never computed.");

static PyObject *time_major_steps(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "time_major_steps(x, lengths, out, pre) takes 4 arguments");
        return NULL;
    }
    if (!float_array(args[0], 3, NULL, "x") ||
        !float_array(args[2], 3, (PyArrayObject *)args[0], "out")) {
        return NULL;
    }
    PyArrayObject *x = (PyArrayObject *)args[0], *out = (PyArrayObject *)args[2];
    npy_intp B = PyArray_DIM(x, 0), T = PyArray_DIM(x, 1), F = PyArray_DIM(x, 2);
    if (PyArray_DIM(out, 0) != T || PyArray_DIM(out, 1) != B || PyArray_DIM(out, 2) != F + 1 ||
        !PyArray_ISWRITEABLE(out)) {
        PyErr_SetString(PyExc_ValueError, "out must be a writeable (T, B, F + 1) array");
        return NULL;
    }
    int pre = PyObject_IsTrue(args[3]);
    if (pre < 0 || !lengths_array(args[1], B, T)) {
        return NULL;
    }
    const npy_int64 *n = (const npy_int64 *)PyArray_DATA((PyArrayObject *)args[1]);
    const char *src = PyArray_BYTES(x);
    char *dst = PyArray_BYTES(out);
    int dbl = PyArray_TYPE(x) == NPY_DOUBLE;
    npy_intp item = dbl ? (npy_intp)sizeof(double) : (npy_intp)sizeof(float);
    npy_intp step = F * item; /* bytes of one step of x */
    for (npy_intp t = 0; t < T; t++) {
        for (npy_intp b = 0; b < B; b++, dst += step + item) {
            int real = pre ? t >= T - n[b] : t < n[b];
            if (real) {
                memcpy(dst, src + (b * T + t) * step, (size_t)step);
            } else {
                memset(dst, 0, (size_t)step);
            }
            if (dbl) {
                *(double *)(dst + step) = real ? 0.0 : 1.0;
            } else {
                *(float *)(dst + step) = real ? 0.0f : 1.0f;
            }
        }
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(last_steps_doc,
             "last_steps(out, lengths, pre, column, dest, /)\n--\n\n"
             "Copy each row's final output: dest[b] = out[t_b, b, column:column + H].\n\n"
             "t_b is the last step of the direction that ends on the pads: lengths[b] - 1 (pads\n"
             "after), or T - lengths[b] with pre true (the backward direction of pads before),\n"
             "clamped to [0, T - 1] (a length-0 row reads a padded step). out (T, B, W) and\n"
             "dest (B, H): C-contiguous, one float dtype; lengths: int64 (B,) in [0, T].");

static PyObject *last_steps(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "last_steps(out, lengths, pre, column, dest) takes 5 arguments");
        return NULL;
    }
    if (!float_array(args[0], 3, NULL, "out") ||
        !float_array(args[4], 2, (PyArrayObject *)args[0], "dest")) {
        return NULL;
    }
    PyArrayObject *out = (PyArrayObject *)args[0], *dest = (PyArrayObject *)args[4];
    npy_intp T = PyArray_DIM(out, 0), B = PyArray_DIM(out, 1), W = PyArray_DIM(out, 2);
    npy_intp H = PyArray_DIM(dest, 1);
    Py_ssize_t column = PyLong_AsSsize_t(args[3]);
    if (column == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int pre = PyObject_IsTrue(args[2]);
    if (pre < 0) {
        return NULL;
    }
    if (T < 1 || PyArray_DIM(dest, 0) != B || column < 0 || column + H > W ||
        !PyArray_ISWRITEABLE(dest)) {
        PyErr_SetString(PyExc_ValueError,
                        "last_steps: out (T >= 1, B, W), dest (B, H) writeable, column + H <= W");
        return NULL;
    }
    if (!lengths_array(args[1], B, T)) {
        return NULL;
    }
    const npy_int64 *n = (const npy_int64 *)PyArray_DATA((PyArrayObject *)args[1]);
    npy_intp item = PyArray_ITEMSIZE(out);
    const char *src = PyArray_BYTES(out);
    char *dst = PyArray_BYTES(dest);
    for (npy_intp b = 0; b < B; b++) {
        npy_intp t = pre ? T - n[b] : n[b] - 1;
        t = t < 0 ? 0 : (t > T - 1 ? T - 1 : t);
        memcpy(dst + b * H * item, src + ((t * B + b) * W + column) * item, (size_t)(H * item));
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"pad_sequences", (PyCFunction)(void (*)(void))pad_sequences, METH_FASTCALL,
     pad_sequences_doc},
    {"time_major_steps", (PyCFunction)(void (*)(void))time_major_steps, METH_FASTCALL,
     time_major_steps_doc},
    {"last_steps", (PyCFunction)(void (*)(void))last_steps, METH_FASTCALL, last_steps_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "varlen.data._native",
    .m_doc = "Compiled kernels of varlen.data: padding, and the time-major steps of a "
              "recurrent layer (optional: the Python paths work without them).",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__native(void)
{
    import_array();
    return PyModule_Create(&module_def);
}
