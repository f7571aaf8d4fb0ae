"""Tests for varlen.data.padding (pad, unpad) and varlen.data.keras_padding (pad_sequences).

Every test runs with the compiled kernel and with the NumPy path alone: the module's
``kernel`` fixture picks a :class:`PadTuning`, which the wrappers below pass to the library's
tuned entry points (a parameter, no patched module state).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

from tests.reference.padding import kept_lengths_reference, pad_reference, unpad_reference
from varlen._types import SIDES
from varlen.data import keras_padding
from varlen.data import padding as padding_module
from varlen.data._pad_kernel import NATIVE, PadTuning

TRAILING = [(), (1,), (3,), (2, 2)]
KINDS = ["arrays", "lists", "tuples", "mixed"]
DTYPES: list[Any] = ["int32", "int64", "float32", "float64", object]
sides = st.sampled_from(SIDES)
maxlens = st.none() | st.integers(0, 9)
specs = st.tuples(
    st.lists(st.integers(0, 7), max_size=6),
    st.sampled_from(TRAILING),
    st.integers(0, 2**32 - 1),
)
Spec = tuple[list[int], tuple[int, ...], int]


def make_arrays(spec: Spec, dtype: Any = np.int64) -> list[np.ndarray]:
    """Random sequences ``(T_i, *F)`` of small ints (exact in every tested dtype) for a spec."""
    lengths, trailing, seed = spec
    rng = np.random.default_rng(seed)
    return [rng.integers(-50, 50, size=(n, *trailing)).astype(dtype) for n in lengths]


def as_kind(arrays: list[np.ndarray], kind: str) -> list[Any]:
    """Give the same sequences as arrays, nested lists, tuples of steps, or alternating both."""
    if kind == "arrays":
        return arrays
    if kind == "lists":
        return [a.tolist() for a in arrays]
    if kind == "tuples":
        return [tuple(a.tolist()) for a in arrays]
    return [a if i % 2 else a.tolist() for i, a in enumerate(arrays)]


def keras_trailing(arrays: list[np.ndarray]) -> tuple[int, ...]:
    """The ``*F`` that Keras uses: that of the first non-empty sequence, else ``()``."""
    return next((a.shape[1:] for a in arrays if len(a)), ())


@pytest.fixture(scope="module", params=["native", "numpy"], autouse=True)
def kernel(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run every test of this module with the compiled kernel and with the NumPy path alone."""
    if request.param == "native" and not NATIVE:
        pytest.skip("the compiled kernel is not built (no C compiler at install)")
    TUNING["active"] = PadTuning(native=request.param == "native")
    yield request.param
    TUNING["active"] = PadTuning()


TUNING = {"active": PadTuning()}
"""The tuning of the running ``kernel`` parameter; ``tuned`` sets other constants on it."""


def tuned(**constants: Any) -> PadTuning:
    """The running tuning with other constants (every tuning must give the same result)."""
    return dataclasses.replace(TUNING["active"], **constants)


def pad_sequences(
    sequences: Any,
    maxlen: int | None = None,
    dtype: Any = "int32",
    padding: Any = "pre",
    truncating: Any = "pre",
    value: Any = 0.0,
    *,
    tuning: PadTuning | None = None,
) -> np.ndarray:
    """``varlen.data.pad_sequences`` under the running tuning (or ``tuning``)."""
    return keras_padding._pad_sequences(
        sequences, maxlen=maxlen, dtype=dtype, padding=padding, truncating=truncating,
        value=value, tuning=tuning or TUNING["active"],
    )  # fmt: skip


def pad(
    sequences: Any,
    *,
    maxlen: int | None = None,
    value: Any = 0,
    padding: Any = "post",
    truncating: Any = "post",
    dtype: Any = None,
    tuning: PadTuning | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``varlen.data.pad`` under the running tuning (or ``tuning``)."""
    return padding_module._pad(
        sequences, maxlen=maxlen, value=value, padding=padding, truncating=truncating,
        dtype=dtype, tuning=tuning or TUNING["active"],
    )  # fmt: skip


def unpad(
    padded: Any, lengths: Any, *, padding: Any = "post", tuning: PadTuning | None = None
) -> list[np.ndarray]:
    """``varlen.data.unpad`` under the running tuning (or ``tuning``)."""
    return padding_module._unpad(
        padded, lengths, padding=padding, tuning=tuning or TUNING["active"]
    )


SCATTERS = pytest.mark.parametrize("dense_ratio", [10**9, 0], ids=["mask", "indices"])
"""Force the dense (boolean mask) or the sparse (flat indices) gather in unpad."""


# ------------------------------------------------------------------------ pad_sequences


@given(
    spec=specs,
    kind=st.sampled_from(KINDS),
    maxlen=maxlens,
    padding=sides,
    truncating=sides,
    dtype=st.sampled_from(DTYPES),
    value=st.sampled_from([0, 0.0, -1, 7]),
)
@example(spec=([], (), 0), kind="lists", maxlen=None, padding="pre", truncating="pre",
         dtype="int32", value=0.0)  # fmt: skip
@example(spec=([0, 0], (), 0), kind="lists", maxlen=None, padding="pre", truncating="pre",
         dtype="int32", value=0.0)  # fmt: skip
@example(spec=([3, 1], (2,), 0), kind="arrays", maxlen=0, padding="pre", truncating="pre",
         dtype="int32", value=0.0)  # fmt: skip
@example(spec=([3, 5], (), 1), kind="lists", maxlen=3, padding="post", truncating="pre",
         dtype="float32", value=-1)  # fmt: skip
@example(spec=([7, 0, 2], (3,), 2), kind="mixed", maxlen=4, padding="pre", truncating="post",
         dtype=object, value=7)  # fmt: skip
def test_pad_sequences_matches_reference(spec, kind, maxlen, padding, truncating, dtype, value):
    """pad_sequences agrees with the per-sequence oracle for every input kind, side and length."""
    arrays = make_arrays(spec)
    sequences = as_kind(arrays, kind)
    kw = {"maxlen": maxlen, "padding": padding, "truncating": truncating, "value": value}
    out = pad_sequences(sequences, dtype=dtype, **kw)
    expected = pad_reference(
        [a.tolist() for a in arrays], dtype=dtype, trailing=keras_trailing(arrays), **kw
    )
    assert out.dtype == expected.dtype
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("mask_max_t", [10**9, 0], ids=["mask", "row-views"])
@pytest.mark.parametrize("slice_cost", [10**9, 0], ids=["concat-whole", "slice-first"])
@given(spec=specs, maxlen=maxlens, padding=sides, truncating=sides)
@settings(max_examples=100)
def test_pad_sequences_every_internal_path_agrees(
    mask_max_t, slice_cost, spec, maxlen, padding, truncating
):
    """Arrays and lists, through the mask or one concatenation of pads and rows, agree."""
    arrays = make_arrays(spec)
    kw = {"maxlen": maxlen, "padding": padding, "truncating": truncating, "value": -1}
    tuning = tuned(mask_max_t=mask_max_t, slice_cost=slice_cost)
    for dtype in ("int32", object):
        expected = pad_reference(arrays, dtype=dtype, trailing=keras_trailing(arrays), **kw)
        for sequences in (arrays, as_kind(arrays, "lists")):
            out = pad_sequences(sequences, dtype=dtype, tuning=tuning, **kw)
            np.testing.assert_array_equal(out, expected)


def test_pad_sequences_keras_docstring_examples():
    """The examples of Keras's docstring give Keras's outputs."""
    sequence = [[1], [2, 3], [4, 5, 6]]
    np.testing.assert_array_equal(pad_sequences(sequence), [[0, 0, 1], [0, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(
        pad_sequences(sequence, value=-1), [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]]
    )
    np.testing.assert_array_equal(
        pad_sequences(sequence, padding="post"), [[1, 0, 0], [2, 3, 0], [4, 5, 6]]
    )
    np.testing.assert_array_equal(pad_sequences(sequence, maxlen=2), [[0, 1], [2, 3], [5, 6]])
    assert pad_sequences(sequence).dtype == np.int32


def test_pad_sequences_maxlen_zero_gives_no_columns():
    """maxlen=0 gives (B, 0, *F) for both truncating sides (Keras keeps everything and fails)."""
    for truncating in SIDES:
        out = pad_sequences([[1, 2], [], [3]], maxlen=0, truncating=truncating)
        assert out.shape == (3, 0)
    assert pad_sequences([np.ones((2, 4))], maxlen=0).shape == (1, 0, 4)


def test_pad_sequences_empty_batch():
    """No sequences give (0, 0), or (0, maxlen) (Keras fails on the maximum of no lengths)."""
    assert pad_sequences([]).shape == (0, 0)
    assert pad_sequences([], maxlen=4).shape == (0, 4)
    assert pad_sequences([], dtype="float32").dtype == np.float32


def test_pad_sequences_strings_with_object_dtype():
    """Strings of any length pad with dtype=object, with every spelling of the object dtype."""
    sequences = [["the", "cat"], ["sat"], []]
    for dtype in (object, "object", "O", np.object_):
        out = pad_sequences(sequences, dtype=dtype, value="<pad>", padding="post")
        assert out.dtype == object
        assert out.tolist() == [["the", "cat"], ["sat", "<pad>"], ["<pad>", "<pad>"]]


def test_pad_sequences_str_dtype_cuts_strings_as_keras_and_warns():
    """dtype=str keeps one character per cell, as np.full (and Keras) does, with a warning."""
    with pytest.warns(UserWarning, match=r"holds 1 character.*Pass dtype=object"):
        out = pad_sequences([["ab", "c"], ["d"]], dtype=str, value="xy")
    assert out.dtype == np.dtype("<U1")
    assert out.tolist() == [["a", "c"], ["x", "d"]]


def test_pad_sequences_wide_str_dtype_keeps_strings():
    """A string dtype wide enough for the data keeps it, without a warning."""
    out = pad_sequences([["ab", "c"], ["d"]], dtype="U3", value="-")
    assert out.tolist() == [["ab", "c"], ["-", "d"]]


def test_pad_sequences_dtype_none_takes_the_dtype_of_value():
    """dtype=None gives value's dtype, as np.full does: float64 for the default 0.0."""
    assert pad_sequences([[1, 2], [3]], dtype=None).dtype == np.float64
    assert pad_sequences([[1, 2], [3]], dtype=None, value=0).dtype == np.int64


@pytest.mark.parametrize("kind", ["arrays", "lists"])
def test_pad_sequences_floats_into_int_warn_and_truncate_as_keras(kind):
    """Float data cast into the default int32 is truncated as in Keras, with a warning."""
    data = [np.array([1.5, -2.7]), np.array([3.0])]
    sequences = as_kind(data, kind)
    with pytest.warns(UserWarning, match=r"int32 cannot hold 2 .*sequences\[0\].*'float32'"):
        out = pad_sequences(sequences)
    np.testing.assert_array_equal(out, [[1, -2], [0, 3]])
    np.testing.assert_array_equal(pad_sequences(sequences, dtype="float64"), [[1.5, -2.7], [0, 3]])


@pytest.mark.parametrize("kind", ["arrays", "lists"])
def test_pad_sequences_whole_floats_into_int_do_not_warn(kind):
    """Whole-number floats convert exactly, so nothing warns (warnings are errors here)."""
    out = pad_sequences(as_kind([np.array([1.0, 2.0]), np.array([3.0])], kind))
    np.testing.assert_array_equal(out, [[1, 2], [0, 3]])


def test_pad_sequences_nan_array_into_int_warns_with_keras_output():
    """NaN in an array cast into int32 gives NumPy's (and Keras's) value, with a warning."""
    with np.errstate(invalid="ignore"):
        expected = np.array([np.nan, 2.0]).astype(np.int32)
    with pytest.warns(UserWarning, match=r"cannot hold 1 .*nan.*sequences\[1\]"):
        out = pad_sequences([np.array([4.0]), np.array([np.nan, 2.0])])
    np.testing.assert_array_equal(out, [[0, 4], expected])


def test_pad_sequences_multi_feature_float_loss_names_the_sequence():
    """The loss warning names the sequence of the first changed step for (T_i, F) data too."""
    data = [np.ones((2, 3)), np.full((1, 3), 0.5)]
    with pytest.warns(UserWarning, match=r"cannot hold 3 .*0\.5 in sequences\[1\]"):
        out = pad_sequences(data, padding="post")
    np.testing.assert_array_equal(out, [np.ones((2, 3)), [[0, 0, 0], [0, 0, 0]]])


def test_pad_sequences_float_value_into_int_warns():
    """A pad value that int32 cannot hold is stored truncated, as in Keras, with a warning."""
    with pytest.warns(UserWarning, match=r"cannot hold value 1\.5, which was stored as 1"):
        out = pad_sequences([[1, 2], [3]], value=1.5)
    np.testing.assert_array_equal(out, [[1, 2], [1, 3]])


def test_pad_sequences_ints_into_bool_follow_numpy():
    """Integer lists and arrays into dtype=bool give NumPy's truthiness, without a warning."""
    for sequences in ([[2, 0], [1]], [np.array([2, 0]), np.array([1])]):
        out = pad_sequences(sequences, dtype=bool)
        np.testing.assert_array_equal(out, [[True, False], [False, True]])


def test_pad_sequences_converts_each_sequence_in_its_own_dtype():
    """Int and float arrays in one batch convert one by one, as in Keras: no float64 detour.

    (A common float64 dtype would round 2**53 + 1, and call the uint64 2 a float into bool.)
    """
    big = [np.array([2**53 + 1]), np.array([1.0])]
    np.testing.assert_array_equal(pad_sequences(big, dtype="int64"), [[2**53 + 1], [1]])
    mixed = [np.array([2], dtype=np.uint64), np.array([-1]), np.array([0.0, 1.0])]
    np.testing.assert_array_equal(
        pad_sequences(mixed, dtype=bool), [[False, True], [False, True], [False, True]]
    )


def test_pad_sequences_dtype_none_converts_each_sequence_on_its_own():
    """With dtype=None (value's dtype) parts are not promoted together first, as in Keras."""
    out = pad_sequences([np.array([2**64 - 3], np.uint64), [1]], 2, None, value=2**64 - 1)
    assert out.tolist() == [[2**64 - 1, 2**64 - 3], [2**64 - 1, 1]]  # no float64 detour
    out = pad_sequences([np.array([253], np.uint8), [1.0]], 1, None, value=False)
    assert out.tolist() == [[True], [True]]  # an int array into bool is no float loss


def test_pad_sequences_too_large_an_output_says_so():
    """A maxlen no memory can hold is a MemoryError about the output, not about value."""
    with pytest.raises(MemoryError, match=r"padded output, rows of shape .* too large"):
        pad_sequences([[1]], 2**62)


def test_pad_sequences_negative_zero_value_is_kept():
    """value=-0.0 fills with negative zeros (np.zeros is only used for a positive zero)."""
    out = pad_sequences([[1.0]], maxlen=2, dtype="float64", value=-0.0)
    assert np.signbit(out[0, 0])


def test_pad_sequences_broadcasts_a_per_feature_value():
    """A value of shape (F,) fills each padded step, as np.full broadcasts it."""
    out = pad_sequences([[[1, 2]], []], value=[7, 8], maxlen=2, padding="post")
    np.testing.assert_array_equal(out, [[[1, 2], [7, 8]], [[7, 8], [7, 8]]])


def test_pad_sequences_accepts_ranges_and_a_2d_array():
    """Any sized, sliceable sequences work, and a (B, T) array is a batch of rows."""
    np.testing.assert_array_equal(pad_sequences([range(3), range(5)], maxlen=2), [[1, 2], [3, 4]])
    matrix = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(pad_sequences(matrix, maxlen=2, truncating="post"), matrix[:, :2])


def test_pad_sequences_does_not_mutate_inputs():
    """Input sequences, lists and arrays alike, are unchanged after the call."""
    arrays = [np.array([1.5, 2.5, 3.5]), np.array([4.5])]
    sequences: list[Any] = [arrays[0], arrays[1].tolist(), [[1.0]]]
    before = copy.deepcopy(sequences)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for maxlen in (None, 0, 1, 2):
            pad_sequences(sequences[:2], maxlen=maxlen)
            pad_sequences(arrays, maxlen=maxlen, dtype="float64")
    assert sequences[1] == before[1]
    for a, b in zip(arrays, [*before[:1], np.array([4.5])], strict=True):
        np.testing.assert_array_equal(a, b)


def test_pad_sequences_output_is_a_new_array():
    """The output never shares memory with an input array."""
    data = [np.arange(3, dtype=np.int32), np.arange(3, dtype=np.int32)]
    out = pad_sequences(data)
    assert not any(np.shares_memory(out, a) for a in data)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"padding": "left"}, ValueError, r"padding must be 'pre' or 'post', got 'left'"),
        ({"truncating": "mid"}, ValueError, r"truncating must be 'pre' or 'post', got 'mid'"),
        ({"maxlen": -1}, ValueError, r"maxlen must be >= 0, got -1"),
        ({"maxlen": 2.0}, TypeError, r"maxlen must be an int or None, got 2\.0"),
        ({"maxlen": True}, TypeError, r"maxlen must be an int or None, got True"),
        ({"dtype": "no-such-dtype"}, TypeError, r"dtype must be a NumPy dtype"),
        ({"value": "<pad>"}, ValueError, r"dtype must be object or a string dtype when value"),
        ({"value": "<pad>", "dtype": None}, ValueError, r"dtype must be object or a string"),
        ({"value": None}, TypeError, r"value must be storable in dtype int32, got None"),
        ({"value": 2**40}, OverflowError, r"value must be storable in dtype int32"),
        ({"value": [[0], [0]]}, ValueError, r"value must be storable in dtype int32"),
    ],
)
def test_pad_sequences_rejects_bad_arguments(kwargs, error, match):
    """Each bad argument raises Keras's exception type with a message naming it."""
    with pytest.raises(error, match=match):
        pad_sequences([[1, 2], [3]], **kwargs)


def test_pad_sequences_checks_sides_even_when_every_sequence_is_empty():
    """A bad side is rejected up front, also when no sequence has a step (Keras lets it pass)."""
    side: Any = "left"
    with pytest.raises(ValueError, match=r"padding must be 'pre' or 'post'"):
        pad_sequences([[], []], padding=side)
    with pytest.raises(ValueError, match=r"truncating must be 'pre' or 'post'"):
        pad_sequences([], truncating=side)


@pytest.mark.parametrize(
    ("sequences", "kwargs", "error", "match"),
    [
        ((s for s in [[1]]), {}, ValueError, r"sequences must be a collection with len\(\)"),
        ([[1], 5], {}, ValueError, r"sequences\[1\] must be a sequence with len\(\), got int 5"),
        ([[1], np.int64(5)], {}, ValueError, r"sequences\[1\] must be a sequence with len"),
        ([[[1, 2], [3]]], {}, ValueError, r"sequences\[0\] must convert to an array of shape"),
        ([[1, 2], [[3]]], {}, ValueError, r"sequences\[1\] has trailing shape \(1,\), expected"),
        ([[[1, 2]], [[3]]], {}, ValueError, r"sequences\[1\] has trailing shape \(1,\)"),
        ([np.ones((2, 3)), np.ones((1, 4))], {}, ValueError, r"sequences\[1\] has trailing"),
        ([np.ones(2), np.ones((1, 4))], {}, ValueError, r"sequences\[1\] has trailing shape"),
        ([[1], "abc"], {"dtype": object}, TypeError, r"sequences\[1\] must be a sequence of"),
        ([[1], [2, None]], {}, TypeError, r"sequences\[1\] must convert to dtype int32"),
        ([[1], [2, "x"]], {}, ValueError, r"sequences\[1\] must convert to dtype int32"),
        ([[1], [float("nan")]], {}, ValueError, r"sequences\[1\] must convert to dtype int32"),
        ([[1], [2**40]], {}, OverflowError, r"sequences\[1\] must convert to dtype int32"),
        ([[1], [-1]], {"dtype": "uint8"}, OverflowError, r"sequences\[1\] must convert"),
        ([[1], [2**70]], {"dtype": "int64"}, OverflowError, r"sequences\[1\] must convert"),
        ([[1], {1, 2, 3}], {"maxlen": 2}, TypeError, r"sequences\[1\] is longer than maxlen"),
    ],
)
def test_pad_sequences_rejects_bad_sequences(sequences, kwargs, error, match):
    """Bad sequences raise Keras's exception type, naming the offending sequence."""
    with pytest.raises(error, match=match):
        pad_sequences(sequences, **kwargs)


# ----------------------------------------------------------------------------- pad / unpad


@pytest.mark.parametrize("mask_max_t", [10**9, 0], ids=["mask", "pieces"])
@given(
    spec=specs,
    kind=st.sampled_from(KINDS),
    maxlen=maxlens,
    padding=sides,
    truncating=sides,
    dtype=st.sampled_from([None, *DTYPES]),
)
@example(spec=([0], (), 0), kind="arrays", maxlen=None, padding="post", truncating="post",
         dtype=None)  # fmt: skip
@example(spec=([3, 1], (2,), 0), kind="arrays", maxlen=0, padding="pre", truncating="pre",
         dtype=None)  # fmt: skip
@example(spec=([3, 3], (), 0), kind="lists", maxlen=3, padding="pre", truncating="pre",
         dtype="float32")  # fmt: skip
@example(spec=([5, 2], (3,), 1), kind="mixed", maxlen=3, padding="post", truncating="pre",
         dtype=object)  # fmt: skip
def test_pad_matches_reference(mask_max_t, spec, kind, maxlen, padding, truncating, dtype):
    """Native pad agrees with the per-sequence oracle, and returns the kept lengths."""
    assume(spec[0])
    arrays = make_arrays(spec)
    kw = {"maxlen": maxlen, "value": -1, "padding": padding, "truncating": truncating}
    sequences = as_kind(arrays, kind)
    tuning = tuned(mask_max_t=mask_max_t, slice_cost=10**9 if mask_max_t else 0)
    padded, lengths = pad(sequences, dtype=dtype, tuning=tuning, **kw)
    if dtype is None:  # int64 data, or NumPy's dtype of empty inputs when nothing has a step
        voters = [s for s in sequences if len(s)] or sequences
        dtype = np.result_type(*[np.asarray(s).dtype for s in voters])
    plain_empty = all(np.shape(s) == (0,) for s in sequences)  # only [] give no *F
    trailing = () if plain_empty else spec[1]
    expected = pad_reference([a.tolist() for a in arrays], dtype=dtype, trailing=trailing, **kw)
    assert padded.dtype == expected.dtype
    np.testing.assert_array_equal(padded, expected)
    assert lengths.dtype == np.int64
    np.testing.assert_array_equal(lengths, kept_lengths_reference(arrays, maxlen))


@SCATTERS
@given(spec=specs, padding=sides, dtype=st.sampled_from([np.int8, np.float64, np.bool_]))
@example(spec=([0, 0], (3,), 0), padding="pre", dtype=np.float64)
def test_unpad_inverts_pad(dense_ratio, spec, padding, dtype):
    """Unpadding a padded batch gives it back: same steps, shapes and dtype, on both gathers."""
    assume(spec[0])
    arrays = make_arrays(spec, dtype)
    back = unpad(
        *pad(arrays, padding=padding), padding=padding, tuning=tuned(dense_ratio=dense_ratio)
    )
    assert len(back) == len(arrays)
    for a, b in zip(back, arrays, strict=True):
        assert a.dtype == b.dtype
        assert a.shape == b.shape
        np.testing.assert_array_equal(a, b)


@given(spec=specs, T=st.integers(0, 9), padding=sides, seed=st.integers(0, 2**32 - 1))
@example(spec=([], (), 0), T=0, padding="post", seed=0)
def test_unpad_matches_reference(spec, T, padding, seed):
    """Unpadding agrees with the per-row oracle for lengths in [0, T], garbage in the pads."""
    B, trailing = len(spec[0]), spec[1]
    rng = np.random.default_rng(seed)
    padded = rng.standard_normal((B, T, *trailing))
    lengths = rng.integers(0, T + 1, size=B)
    out = unpad(padded, lengths, padding=padding)
    expected = unpad_reference(padded, lengths.tolist(), padding=padding)
    assert len(out) == B
    for a, b in zip(out, expected, strict=True):
        assert a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_pad_default_dtype_ignores_empty_sequences():
    """An empty [] (float64 to NumPy) neither changes int data's dtype nor its trailing shape."""
    padded, lengths = pad([np.array([[1, 2]]), []])
    assert padded.dtype == np.int64
    assert padded.shape == (2, 1, 2)
    np.testing.assert_array_equal(lengths, [1, 0])


def test_pad_all_empty_sequences():
    """Sequences without steps give all-padding rows of their common dtype."""
    padded, lengths = pad([np.zeros(0, np.int8), np.zeros(0, np.int8)], maxlen=2, value=3)
    assert padded.dtype == np.int8
    np.testing.assert_array_equal(padded, [[3, 3], [3, 3]])
    np.testing.assert_array_equal(lengths, [0, 0])


def test_pad_does_not_warn_about_steps_it_drops():
    """A step cut by maxlen is never cast, so its overflow into float32 cannot warn."""
    padded, lengths = pad([np.array([1.0, 1e300])], maxlen=1, dtype="float32")
    assert padded.tolist() == [[1.0]]
    assert lengths.tolist() == [1]


def test_pad_nan_value_in_float_dtype():
    """NaN is a valid pad value for float data."""
    padded, _ = pad([np.array([1.0]), np.array([1.0, 2.0])], value=np.nan)
    assert np.isnan(padded[0, 1])


def test_pad_and_unpad_do_not_mutate_or_alias_inputs():
    """Padding and unpadding leave inputs unchanged and return arrays sharing no memory."""
    arrays = [np.arange(4.0), np.arange(2.0)]
    before = [a.copy() for a in arrays]
    padded, lengths = pad(arrays, maxlen=3, truncating="pre")
    padded_before, lengths_before = padded.copy(), lengths.copy()
    out = unpad(padded, lengths)
    out[0][:] = -1
    for a, b in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(padded, padded_before)
    np.testing.assert_array_equal(lengths, lengths_before)
    assert not any(np.shares_memory(padded, a) for a in arrays)
    assert not any(np.shares_memory(padded, a) for a in out)


@pytest.mark.parametrize(
    ("sequences", "kwargs", "error", "match"),
    [
        ([], {}, ValueError, r"pad: sequences must hold at least one sequence, got none"),
        ([[1], 5], {}, ValueError, r"pad: sequences\[1\] must have shape \(T_i, \*F\)"),
        ([np.ones((1, 2)), np.ones((1, 3))], {}, ValueError, r"sequences\[1\] has trailing shape"),
        ([np.ones(1), np.array(["2020-01-01"], "M8[D]")], {}, TypeError, r"must share a common"),
        ([[1], [2]], {"dtype": "nope"}, TypeError, r"pad: dtype must be a NumPy dtype or None"),
        ([[1], [2.5]], {"dtype": "int32"}, TypeError, r"sequences\[1\] has dtype float64, which"),
        ([[1]], {"value": [0, 0]}, ValueError, r"pad: value must be a scalar, got shape \(2,\)"),
        (
            [[1]],
            {"value": 0.5},
            ValueError,
            r"value must be representable in dtype int64, got 0\.5",
        ),
        ([[1]], {"value": np.nan}, ValueError, r"value must be representable in dtype int64"),
        ([[1.0]], {"value": "x"}, ValueError, r"value must be representable in dtype float64"),
        ([[1]], {"value": 2**40, "dtype": "int32"}, ValueError, r"value must be representable"),
        ([[1]], {"padding": "left"}, ValueError, r"pad: padding must be 'pre' or 'post'"),
        ([[1]], {"truncating": "x"}, ValueError, r"pad: truncating must be 'pre' or 'post'"),
        ([[1]], {"maxlen": -2}, ValueError, r"pad: maxlen must be >= 0, got -2"),
        ([[1]], {"maxlen": 1.5}, TypeError, r"pad: maxlen must be an int or None"),
    ],
)
def test_pad_rejects_bad_input(sequences, kwargs, error, match):
    """Every bad argument is rejected before any work, with a message naming it."""
    with pytest.raises(error, match=match):
        pad(sequences, **kwargs)


@pytest.mark.parametrize(
    ("padded", "lengths", "kwargs", "error", "match"),
    [
        (np.zeros(3), [1, 1, 1], {}, ValueError, r"unpad: padded must have shape \(B, T, \*F\)"),
        (np.zeros((2, 3)), [1, 1, 1], {}, ValueError, r"lengths must have shape \(B,\) = \(2,\)"),
        (np.zeros((2, 3)), [[1, 1]], {}, ValueError, r"lengths must have shape \(B,\), got"),
        (np.zeros((2, 3)), [1, 4], {}, ValueError, r"lengths must be <= T = 3, got lengths\[1\]"),
        (np.zeros((2, 3)), [-1, 0], {}, ValueError, r"lengths must be >= 0, got lengths\[0\]"),
        (np.zeros((2, 3)), [1.0, 2.0], {}, TypeError, r"unpad: lengths must be integers"),
        (np.zeros((2, 3)), [1, 2], {"padding": "x"}, ValueError, r"unpad: padding must be"),
    ],
)
def test_unpad_rejects_bad_input(padded, lengths, kwargs, error, match):
    """Every bad argument is rejected with a message naming it."""
    with pytest.raises(error, match=match):
        unpad(padded, lengths, **kwargs)


# ----------------------------------------------------------------------- Keras compatibility


def _load_keras_pad_sequences() -> Callable[..., np.ndarray] | None:
    """Return keras.utils.pad_sequences (torch backend), or None if Keras does not import."""
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "torch"  # pad_sequences is NumPy; torch is installed
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import keras
    except ImportError:
        return None
    function: Callable[..., np.ndarray] = keras.utils.pad_sequences
    return function


@pytest.fixture(scope="module")
def keras_pad_sequences() -> Callable[..., np.ndarray]:
    """keras.utils.pad_sequences; the test is skipped when Keras is not installed."""
    function = _load_keras_pad_sequences()
    if function is None:
        pytest.skip("keras is not installed (pip install -e '.[dev]')")
    return function


def _outcome(function: Callable[..., np.ndarray], *args: Any, **kwargs: Any) -> Any:
    """Return ``("ok", output)`` or ``("error", exception type)``, with warnings silenced."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return "ok", function(*args, **kwargs)
        except (ValueError, TypeError, OverflowError) as error:
            return "error", type(error)


steps = {
    "ints": st.integers(-300, 300),
    "floats": st.sampled_from([0.0, 1.0, -2.5, 0.5, 3.75, 1e10, np.nan, np.inf]),
    "strings": st.sampled_from(["a", "bc", "def", "7", ""]),
}


@st.composite
def keras_cases(draw: st.DrawFn) -> tuple[list[Any], dict[str, Any]]:
    """A batch that Keras accepts or rejects, with arguments, away from documented divergences."""
    kind = draw(st.sampled_from(sorted(steps)))
    trailing = draw(st.sampled_from([(), (2,)])) if kind != "strings" else ()
    lengths = draw(st.lists(st.integers(0, 6), min_size=1, max_size=5))
    sequences: list[Any] = []
    for n in lengths:
        size = n * math.prod(trailing)
        items = draw(st.lists(steps[kind], min_size=size, max_size=size))
        array = np.array(items, dtype=object).reshape(n, *trailing)
        sequences.append(array.tolist())
    form = draw(st.sampled_from(["lists", "arrays", "mixed"]))
    if form != "lists" and kind != "strings":
        dtype = np.float64 if kind == "floats" else np.int64
        sequences = [
            np.array(s, dtype=dtype).reshape(-1, *trailing) if form == "arrays" or i % 2 else s
            for i, s in enumerate(sequences)
        ]
    kwargs = {
        "maxlen": draw(st.none() | st.integers(1, 7)),
        "dtype": draw(st.sampled_from(["int32", "int64", "uint8", "float32", object, bool, None])),
        "padding": draw(st.sampled_from(SIDES)),
        "truncating": draw(st.sampled_from(SIDES)),
        "value": draw(st.sampled_from([0.0, -1, 1.5, "<pad>"])),
    }
    return sequences, kwargs


@given(case=keras_cases())
@settings(max_examples=200)
def test_pad_sequences_agrees_with_keras(keras_pad_sequences, case):
    """Outputs (dtype, shape, values) and exception types equal Keras's on random batches."""
    sequences, kwargs = case
    expected = _outcome(keras_pad_sequences, sequences, **kwargs)
    actual = _outcome(pad_sequences, sequences, **kwargs)
    event(f"Keras: {expected[0]}")
    assert actual[0] == expected[0], (actual, expected)
    if expected[0] == "error":
        assert actual[1] is expected[1]
        return
    assert actual[1].dtype == expected[1].dtype
    assert actual[1].shape == expected[1].shape
    for a, b in zip(actual[1].ravel().tolist(), expected[1].ravel().tolist(), strict=True):
        assert a == b or (a != a and b != b), (a, b)  # NaN matches NaN, in object arrays too


# ----------------------------------------------------------------------------- lossy casts
# One rule (varlen._casts): into a float dtype values may round but must stay finite;
# into an integer dtype they must fit. pad_sequences (Keras) warns, pad (strict) raises.


@pytest.mark.parametrize(
    ("sequences", "kwargs", "match"),
    [
        ([np.array([300, 1]), np.array([2])], {"dtype": "int8"}, r"sequences\[0\] .* got 300"),
        ([np.array([2**64 - 1], dtype=np.uint64)], {"dtype": "int64"}, r"18446744073709551615"),
        ([np.array([200], dtype=np.uint16)], {"dtype": "int8"}, r"got 200 at step 0"),
        ([np.array([1.0, 1e6])], {"dtype": "float16"}, r"float16 .* got 1000000.0 at step 1"),
        ([np.array([1e300])], {"dtype": "float32"}, r"float32 can hold, got 1e\+300"),
        ([np.array([70000])], {"dtype": "float16"}, r"got 70000"),
        ([np.array([1.0])], {"value": 1e6, "dtype": "float16"}, r"value must be representable"),
        ([np.array([1.0], dtype=np.float16)], {"value": 1e6}, r"value must be representable"),
        ([np.array([1])], {"value": 300, "dtype": "int8"}, r"value must be representable"),
    ],
)
def test_pad_is_strict_about_lossy_casts(sequences, kwargs, match):
    """`pad` raises where a cast would wrap an integer or overflow a finite value to inf."""
    with pytest.raises(ValueError, match=match):
        pad(sequences, **kwargs)


def test_pad_strict_rule_keeps_rounding_and_fitting_values():
    """Rounding into a float dtype is what the dtype means; fitting integers pass."""
    padded, _ = pad([np.array([0.1, 65504.0])], dtype="float16", value=0.1)
    assert padded.dtype == np.float16
    padded, _ = pad([np.array([-128, 127])], dtype="int8")
    assert padded.tolist() == [[-128, 127]]
    padded, _ = pad([np.array([np.inf, np.nan])], dtype="float16")  # inf stays inf
    assert np.isinf(padded[0, 0])
    assert np.isnan(padded[0, 1])


def test_pad_names_the_mixed_dtypes_not_the_value():
    """Text and float arrays mixed: the sequences are wrong, not `value`."""
    with pytest.raises(TypeError, match=r"all be numeric or all be text.*float64.*<U1"):
        pad([np.array(["a"]), np.array([1.0])])


@pytest.mark.parametrize(
    ("sequences", "kwargs", "expected", "match"),
    [
        ([[1.0]], {"maxlen": 3, "dtype": "float16", "value": 1e6}, [[np.inf, np.inf, 1.0]],
         r"cannot hold value 1000000.0"),
        ([[1e6, 1.0]], {"dtype": "float16"}, [[np.inf, 1.0]], r"1000000.0 in sequences\[0\]"),
        ([np.array([1e6, 1.0])], {"dtype": "float16"}, [[np.inf, 1.0]], r"became infinity"),
        ([np.array([1e300, 1.0])], {"dtype": "float32"}, [[np.inf, 1.0]], r"1e\+300"),
        ([np.array([300, 1])], {"dtype": "int8"}, [[44, 1]], r"300 .* wrapped-around"),
        ([np.array([1]), np.array([2**40 + 5])], {}, [[1], [5]], r"sequences\[1\]"),
    ],
)  # fmt: skip
def test_pad_sequences_warns_about_every_lossy_cast(sequences, kwargs, expected, match):
    """Keras's output, and a UserWarning (never NumPy's RuntimeWarning) naming a value."""
    with pytest.warns(UserWarning, match=match):
        out = pad_sequences(sequences, **kwargs)
    with np.errstate(over="ignore"):
        wanted = np.array(expected, dtype=np.float64).astype(out.dtype)
    np.testing.assert_array_equal(out, wanted)


def test_pad_sequences_is_silent_when_nothing_is_lost():
    """Rounding and fitting values, and infinities already in the data, do not warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pad_sequences([np.array([0.1, np.inf])], dtype="float16")
        pad_sequences([np.array([255, 0])], dtype="uint8")
        pad_sequences([[1.0]], maxlen=2, dtype="float16", value=np.inf)
