"""The compiled padding kernel: it is built where required, and exact or silent.

``pad_sequences`` first offers its input to ``varlen.data._native``; the kernel either pads
it exactly as the NumPy path would (same dtype, shape, bytes, and no warning) or declines
(returns ``None``) and the NumPy path runs. The differential test below checks that contract
on adversarial inputs: every dtype pair, strided and Fortran-ordered arrays, tuples, Python
ints beyond int64, NaN, infinities, negative zero, values that overflow the output dtype.
"""

from __future__ import annotations

import gc
import math
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from varlen._types import SIDES
from varlen.data import keras_padding
from varlen.data._pad_kernel import NATIVE, PadTuning

try:
    from varlen.data import _native as kernel_module
except ImportError:  # installed without a C compiler
    kernel_module = None  # type: ignore[assignment]

needs_kernel = pytest.mark.skipif(not NATIVE, reason="compiled kernel not built")

NUMERIC = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
NUMERIC += ["float16", "float32", "float64"]
OUT_DTYPES: list[Any] = [*NUMERIC, "complex64", object, None]
FORMS = ["array", "strided", "reversed", "fortran", "list", "tuple", "numpy-scalars"]
RAW_VALUES: list[Any] = [
    0,
    1,
    -1,
    7,
    127,
    128,
    255,
    256,
    -129,
    2**31,
    -(2**31) - 1,
    2**53,
    2**53 + 1,
]
RAW_VALUES += [2**63 - 1, 2**63, 2**64, 0.0, -0.0, 0.5, 2.0, -3.0, 1e300, -1e300]
RAW_VALUES += [math.nan, math.inf, -math.inf, 3.4e38, 1e-320, True, False]
PAD_VALUES: list[Any] = [0, 0.0, -0.0, -1, 1.5, 255, 256, math.nan, math.inf, 1e300, 2**31]


def padder(sequences: Any, **kwargs: Any) -> Callable[[PadTuning], np.ndarray]:
    """``pad_sequences(sequences, **kwargs)`` under a tuning given later."""
    kw: dict[str, Any] = {
        "maxlen": None, "dtype": "int32", "padding": "pre", "truncating": "pre", "value": 0.0
    }  # fmt: skip
    kw.update(kwargs)
    return lambda tuning: keras_padding._pad_sequences(sequences, tuning=tuning, **kw)


def on_kernel(use_native: bool, function: Callable[[PadTuning], np.ndarray]) -> Any:
    """Run ``function`` with or without the kernel; return what happened, warnings included."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = function(PadTuning(native=use_native))
        except (ValueError, TypeError, OverflowError) as error:
            return ("error", type(error), str(error))
    said = [(w.category, str(w.message)) for w in caught]
    if out.dtype == object:
        body: Any = [x if x == x else "nan" for x in out.ravel().tolist()]
    else:
        body = out.tobytes()
    return ("ok", out.dtype, out.shape, body, said)


def as_form(array: np.ndarray, form: str) -> Any:
    """The same steps as ``array``, given in one of the forms the kernel may see."""
    if form == "array":
        return array
    if form == "strided":  # a view with twice the step stride
        return np.repeat(array, 2, axis=0)[::2]
    if form == "reversed":  # a view with a negative stride, of the reversed steps
        return np.ascontiguousarray(array[::-1])[::-1]
    if form == "fortran":
        return np.asfortranarray(array)
    if form == "numpy-scalars":  # a list of NumPy scalars (or of arrays, for features)
        return list(array)
    items = array.tolist()
    return tuple(items) if form == "tuple" else items


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[Any], dict[str, Any]]:
    """A batch with adversarial values, dtypes and forms, and pad_sequences arguments."""
    trailing = draw(st.sampled_from([(), (), (2,), (1, 3)]))
    lengths = draw(st.lists(st.integers(0, 6), min_size=1, max_size=5))
    batch_dtype = draw(st.sampled_from(NUMERIC))
    mixed_dtypes = draw(st.booleans())  # one dtype per sequence, e.g. int64 beside float64
    python_items = draw(st.booleans())  # lists of Python numbers rather than array items
    sequences: list[Any] = []
    for n in lengths:
        in_dtype = draw(st.sampled_from(NUMERIC)) if mixed_dtypes else batch_dtype
        size = n * math.prod(trailing)
        raw = draw(st.lists(st.sampled_from(RAW_VALUES), min_size=size, max_size=size))
        form = draw(st.sampled_from(FORMS))
        if python_items and form in ("list", "tuple"):
            array = np.array(raw, dtype=object).reshape(n, *trailing)
            sequences.append(as_form(array, form))
            continue
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                array = np.array(raw, dtype=object).astype(in_dtype).reshape(n, *trailing)
            except (OverflowError, ValueError):  # NaN or a huge int into an int dtype
                array = np.arange(size).astype(in_dtype).reshape(n, *trailing)
        sequences.append(as_form(array, form))
    kwargs = {
        "maxlen": draw(st.none() | st.integers(0, 7)),
        "dtype": draw(st.sampled_from(OUT_DTYPES)),
        "padding": draw(st.sampled_from(SIDES)),
        "truncating": draw(st.sampled_from(SIDES)),
        "value": draw(st.sampled_from(PAD_VALUES)),
    }
    return sequences, kwargs


@needs_kernel
@given(case=batches())
@settings(max_examples=400)
@example(case=([[2**63]], {"maxlen": None, "dtype": "uint64", "padding": "pre",
                           "truncating": "pre", "value": 0}))  # fmt: skip
@example(case=([np.array([1e300])], {"maxlen": None, "dtype": "float32", "padding": "pre",
                                     "truncating": "pre", "value": 0}))  # fmt: skip
def test_kernel_agrees_with_the_numpy_path(case):
    """Output bytes, dtype, shape, warnings and errors are the same with and without the kernel."""
    sequences, kwargs = case
    event(f"kernel {'accepted' if kernel_accepts(sequences, kwargs) else 'declined'}")
    call = padder(sequences, **kwargs)
    assert on_kernel(True, call) == on_kernel(False, call)


def kernel_accepts(sequences: list[Any], kwargs: dict[str, Any]) -> bool:
    """Whether the kernel pads ``sequences`` itself, called as ``pad_sequences`` calls it."""
    assert kernel_module is not None
    try:
        with np.errstate(all="raise"):
            fill = np.full((), kwargs["value"], dtype=kwargs["dtype"])
        maxlen = -1 if kwargs["maxlen"] is None else kwargs["maxlen"]
        sides = (kwargs["padding"] == "pre", kwargs["truncating"] == "pre")
        return kernel_module.pad_sequences(list(sequences), maxlen, fill, *sides) is not None
    except (TypeError, ValueError, OverflowError, FloatingPointError, MemoryError):
        return False


COMMON: list[tuple[str, list[Any], dict[str, Any]]] = [
    ("int64 arrays into int32", [np.arange(5), np.arange(2)], {}),
    ("int ids as lists", [[1, 2, 3], [4]], {"maxlen": 2}),
    ("int ids as tuples", [(1, 2, 3), (4,)], {"padding": "post"}),
    ("bools into int32", [[True, False], [1]], {}),
    ("float64 arrays into float32", [np.linspace(0, 1, 4), np.ones(1)], {"dtype": "float32"}),
    ("whole floats into int32", [[1.0, 2.0], np.array([3.0])], {}),
    ("Python floats, NaN pad", [[0.5, 1.5], []], {"dtype": "float64", "value": math.nan}),
    ("features (T_i, 3)", [np.ones((4, 3)), np.zeros((1, 3))], {"dtype": "float32"}),
    ("strided rows of a matrix", list(np.arange(12).reshape(3, 4)[:, ::2]), {"maxlen": 3}),
    ("columns of a matrix", list(np.arange(12).reshape(3, 4).T), {"dtype": "int64"}),
    ("uint8 into bool", [np.array([0, 3], dtype=np.uint8)], {"dtype": bool}),
    ("int64 that fits into uint8", [np.array([255, 0])], {"dtype": "uint8"}),
    ("int8 into int64", [np.array([-128, 127], dtype=np.int8)], {"dtype": "int64"}),
    ("negative zero pad", [[1.0]], {"dtype": "float32", "value": -0.0, "maxlen": 3}),
]


@needs_kernel
@pytest.mark.parametrize(
    ("sequences", "kwargs"), [c[1:] for c in COMMON], ids=[c[0] for c in COMMON]
)
def test_kernel_takes_the_common_inputs(sequences, kwargs):
    """The kernel pads these itself (it does not decline), with the NumPy path's result."""
    kernel = kernel_module
    assert kernel is not None
    fill = np.full((), kwargs.get("value", 0.0), dtype=kwargs.get("dtype", "int32"))
    maxlen = kwargs.get("maxlen")
    sides = [kwargs.get("padding", "pre") == "pre", kwargs.get("truncating", "pre") == "pre"]
    raw = kernel.pad_sequences(sequences, -1 if maxlen is None else maxlen, fill, *sides)
    assert raw is not None
    call = padder(sequences, **kwargs)
    assert on_kernel(True, call) == on_kernel(False, call)


DECLINED: list[tuple[str, list[Any], Any]] = [
    ("fractional floats into int", [[1.5]], np.int32),
    ("NaN into int", [np.array([np.nan])], np.int32),
    ("infinity into bool", [[math.inf]], np.bool_),
    ("2.0 into bool", [np.array([2.0])], np.bool_),
    ("Python int beyond int32", [[2**31]], np.int32),
    ("negative Python int into uint8", [[-1]], np.uint8),
    ("Python int beyond int64", [[2**64]], np.uint64),
    ("Python int not exact as a float", [[2**53 + 1]], np.float64),
    ("finite float overflowing float32", [np.array([1e300])], np.float32),
    ("int64 that would wrap into uint8", [np.array([300, -1])], np.uint8),
    ("uint64 beyond int64", [np.array([2**64 - 1], dtype=np.uint64)], np.int64),
    ("negative int8 into uint64", [np.array([-1], dtype=np.int8)], np.uint64),
    ("NumPy scalars in a list", [[np.int64(1)]], np.int32),
    ("None in a list", [[1, None]], np.int32),
    ("a string item", [[1], "ab"], np.int32),
    ("a list of lists", [[[1, 2]]], np.int32),
    ("float16 data", [np.ones(2, dtype=np.float16)], np.float32),
    ("float16 output", [[1]], np.float16),
    ("object output", [[1]], object),
    ("complex data", [np.ones(2, dtype=np.complex64)], np.complex64),
    ("a 0-d array", [np.array(1)], np.int32),
    ("a non-contiguous (T, F) array", [np.ones((3, 4))[:, ::2]], np.float64),
    ("byte-swapped data", [np.arange(3, dtype=">i8")], np.int64),
    ("a list subclass", [type("L", (list,), {})([1, 2])], np.int32),
    ("trailing shapes differ", [np.ones((1, 2)), np.ones((1, 3))], np.float64),
]


@needs_kernel
@pytest.mark.parametrize(
    ("sequences", "dtype"), [c[1:] for c in DECLINED], ids=[c[0] for c in DECLINED]
)
def test_kernel_declines_what_it_cannot_pad_exactly(sequences, dtype):
    """For these the kernel returns None without raising, leaving them to the NumPy path."""
    kernel = kernel_module
    assert kernel is not None
    assert kernel.pad_sequences(sequences, -1, np.zeros((), dtype=dtype), True, True) is None


@needs_kernel
def test_kernel_rejects_a_bad_call():
    """The private entry point checks its own signature."""
    kernel = kernel_module
    assert kernel is not None
    with pytest.raises(TypeError, match=r"takes 5 arguments"):
        kernel.pad_sequences([[1]], -1, np.zeros(()), True)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"takes 5 arguments"):
        kernel.pad_sequences(([1],), -1, np.zeros(()), True, True)  # type: ignore[arg-type]


@needs_kernel
def test_kernel_handles_a_large_batch_with_every_side():
    """10,000 random id arrays: every side and maxlen give the NumPy path's bytes."""
    rng = np.random.default_rng(0)
    lengths = np.clip(rng.lognormal(np.log(20), 1.0, 10_000).round(), 1, 400).astype(int)
    arrays = [rng.integers(1, 20_000, n) for n in lengths]
    for maxlen in (None, 50):
        for padding in SIDES:
            for truncating in SIDES:
                kw: dict[str, Any] = {
                    "maxlen": maxlen,
                    "padding": padding,
                    "truncating": truncating,
                }
                call = padder(arrays, **kw)
                assert on_kernel(True, call) == on_kernel(False, call)


@pytest.mark.skipif(os.environ.get("VARLEN_REQUIRE_NATIVE") != "1", reason="kernel optional")
def test_kernel_is_built_where_required():
    """CI sets VARLEN_REQUIRE_NATIVE=1: the kernel must then be built and in use."""
    assert NATIVE
    assert kernel_module is not None


@needs_kernel
@pytest.mark.parametrize("target", ["outer", "inner"])
def test_kernel_survives_finalizers_that_change_its_input(target):
    """Finalizers run by a collection during the call cannot make the kernel read freed items.

    The kernel's allocations may start a collection; a finalizer that empties the list (or the
    lists in it) then leaves the kernel with its snapshot: it pads it or declines.
    """
    assert kernel_module is not None
    fill = np.zeros((), dtype=np.int32)

    class Saboteur:
        """Garbage in a cycle, so only a collection finalizes it; it then empties the input."""

        def __init__(self, sequences: list[list[int]]) -> None:
            self.sequences, self.cycle = sequences, self

        def __del__(self) -> None:
            if target == "outer":
                self.sequences.clear()
            else:
                for sequence in self.sequences:
                    sequence.clear()

    threshold = gc.get_threshold()
    gc.collect()
    try:
        gc.set_threshold(1)  # every allocation of a tracked object may start a collection
        results = []
        for _ in range(20):
            sequences = [[1, 2, 3] for _ in range(40)]  # 40 > the tuple free list's sizes
            Saboteur(sequences)
            results.append(
                (kernel_module.pad_sequences(sequences, -1, fill, True, True), sequences)
            )
    finally:
        gc.set_threshold(*threshold)
    for out, sequences in results:  # padded as the input was left, or declined
        if out is not None:
            expected = padder(sequences)(PadTuning(native=False))
            assert out.shape == expected.shape
            np.testing.assert_array_equal(out, expected)
    if sys.version_info < (3, 12):  # collections run inside allocations (later: between bytecodes)
        declined = sum(out is None for out, _ in results)
        assert declined == (len(results) if target == "outer" else 0)
