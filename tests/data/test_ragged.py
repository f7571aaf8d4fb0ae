"""Tests for varlen.data.ragged.Ragged."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.reference.ragged import pad_reference, truncate_reference, unpad_reference
from varlen._types import SIDES
from varlen.data.masks import lengths_to_mask, mask_to_lengths
from varlen.data.padding import pad
from varlen.data.ragged import Ragged

TRAILING = [(), (1,), (3,), (2, 2)]
sides = st.sampled_from(SIDES)
specs = st.tuples(
    st.lists(st.integers(0, 7), max_size=6),
    st.sampled_from(TRAILING),
    st.integers(0, 2**32 - 1),
)


def make_sequences(spec: tuple[list[int], tuple[int, ...], int]) -> list[np.ndarray]:
    """Random float64 sequences ``(T_i, *F)`` for a ``(lengths, trailing, seed)`` spec."""
    lengths, trailing, seed = spec
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((length, *trailing)) for length in lengths]


def make_ragged(spec: tuple[list[int], tuple[int, ...], int]) -> Ragged:
    """The ``Ragged`` of :func:`make_sequences`, with the spec's ``*F`` even when ``B = 0``."""
    sequences = make_sequences(spec)
    if not sequences:
        return Ragged(np.zeros((0, *spec[1])), np.zeros(1, dtype=np.int64))
    return Ragged.from_sequences(sequences)


def assert_valid(r: Ragged) -> None:
    """The stored arrays satisfy every ``Ragged`` invariant and are read-only."""
    assert r.offsets.dtype == np.int64
    assert r.offsets.ndim == 1
    assert r.offsets[0] == 0
    assert (np.diff(r.offsets) >= 0).all()
    assert r.offsets[-1] == r.values.shape[0]
    assert not r.values.flags.writeable
    assert not r.offsets.flags.writeable


def assert_sequences_equal(actual: list[np.ndarray], expected: list[np.ndarray]) -> None:
    """Two lists of arrays have equal length, shapes, dtypes and values."""
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a.shape == e.shape
        assert a.dtype == e.dtype
        np.testing.assert_array_equal(a, e)


# -------------------------------------------------------------------- constructor


def test_ragged_constructor_stores_read_only_copies():
    """The constructor copies its inputs and marks the stored arrays read-only."""
    values = np.arange(6.0).reshape(3, 2)
    offsets = np.array([0, 2, 2, 3], dtype=np.int32)
    r = Ragged(values, offsets)
    values[0, 0] = 99.0
    offsets[1] = 1
    assert r.values[0, 0] == 0.0
    np.testing.assert_array_equal(r.offsets, [0, 2, 2, 3])
    assert r.offsets.dtype == np.int64
    np.testing.assert_array_equal(r.lengths, [2, 0, 1])
    assert r.lengths.dtype == np.int64
    assert (r.trailing_shape, r.num_features, r.num_steps) == ((2,), 2, 3)
    assert r.dtype == np.float64
    assert len(r) == 3


def test_ragged_arrays_cannot_be_made_writable():
    """Stored arrays and handed-out sequences are read-only and cannot be flipped back."""
    r = Ragged(np.arange(4.0), np.array([0, 1, 4]))
    for array in (r.values, r.offsets, r[1]):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 7
        with pytest.raises(ValueError, match="WRITEABLE"):
            array.flags.writeable = True
    with pytest.raises(AttributeError):
        r.values = np.zeros(4)  # type: ignore[misc]


def test_ragged_empty_batch_is_allowed():
    """B = 0 (offsets == [0]) and scalar steps give num_features 1."""
    r = Ragged(np.zeros((0, 3)), np.array([0]))
    assert len(r) == 0
    assert r.lengths.shape == (0,)
    assert r.to_sequences() == []
    assert list(r) == []
    assert Ragged(np.zeros(2), np.array([0, 2])).num_features == 1


@pytest.mark.parametrize(
    ("values", "offsets", "error", "match"),
    [
        (
            np.zeros(3),
            np.array([0.0, 3.0]),
            TypeError,
            r"Ragged: offsets must be integers, got dtype float64",
        ),
        (
            np.zeros(3),
            np.array([True, False]),
            TypeError,
            r"offsets must be integers, got dtype bool",
        ),
        (
            np.zeros(3),
            np.array([[0, 3]]),
            ValueError,
            r"offsets must have shape \(B \+ 1,\), got \(1, 2\)",
        ),
        (
            np.zeros(3),
            np.array([], dtype=int),
            ValueError,
            r"offsets must have shape \(B \+ 1,\), got \(0,\)",
        ),
        (np.zeros(3), np.array([1, 3]), ValueError, r"offsets\[0\] must be 0, got 1"),
        (
            np.zeros(3),
            np.array([0, 2, 1, 3]),
            ValueError,
            r"non-decreasing, got offsets\[2\] == 1 < offsets\[1\] == 2",
        ),
        (
            np.zeros(3),
            np.array([0, 2]),
            ValueError,
            r"offsets\[-1\] must equal len\(values\) = 3, got 2",
        ),
        (
            np.array(1.0),
            np.array([0]),
            ValueError,
            r"Ragged: values must have shape \(N, \*F\), got \(\)",
        ),
        (
            np.array([None]),
            np.array([0, 1]),
            TypeError,
            r"values must have a numeric, bool or string dtype, got dtype object",
        ),
    ],
)
def test_ragged_constructor_rejects_broken_invariants(values, offsets, error, match):
    """Every offsets/values invariant is checked with a message naming it."""
    with pytest.raises(error, match=match):
        Ragged(values, offsets)


# ----------------------------------------------------------------- from_sequences


@given(spec=specs)
@example(spec=([], (), 0))
@example(spec=([0, 0], (3,), 0))
def test_ragged_from_sequences_round_trips(spec):
    """from_sequences stores the concatenation, and to_sequences/iteration give the input back."""
    sequences = make_sequences(spec)
    r = Ragged.from_sequences(sequences)
    assert_valid(r)
    assert len(r) == len(sequences)
    np.testing.assert_array_equal(r.lengths, [len(s) for s in sequences])
    if sequences:
        np.testing.assert_array_equal(r.values, np.concatenate(sequences))
    assert_sequences_equal(r.to_sequences(), sequences)
    assert_sequences_equal(list(r), sequences)
    assert_sequences_equal([r[i] for i in range(len(r))], sequences)


def test_ragged_from_sequences_accepts_nested_lists():
    """Lists of lists work; empty lists take any trailing shape and do not promote the dtype."""
    r = Ragged.from_sequences([[[1, 2], [3, 4]], [], [[5, 6]]])
    assert r.dtype == np.int64
    assert r.trailing_shape == (2,)
    np.testing.assert_array_equal(r.lengths, [2, 0, 1])
    np.testing.assert_array_equal(r[2], [[5, 6]])
    empty = Ragged.from_sequences([[], []])
    assert empty.dtype == np.float64
    assert empty.values.shape == (0,)
    assert Ragged.from_sequences([], dtype=np.int32).dtype == np.int32


def test_ragged_from_sequences_casts_and_promotes_dtypes():
    """dtype= casts every sequence; without it NumPy promotion applies."""
    assert Ragged.from_sequences([[1, 2], [0.5]]).dtype == np.float64
    r = Ragged.from_sequences([[1, 2], np.array([3], dtype=np.int64)], dtype=np.int8)
    assert r.dtype == np.int8
    np.testing.assert_array_equal(r.values, [1, 2, 3])
    assert Ragged.from_sequences([[0.5, 1e30]], dtype=np.float32).dtype == np.float32
    assert Ragged.from_sequences(np.zeros((2, 3), dtype=np.float32)).dtype == np.float32


@pytest.mark.parametrize(
    ("sequences", "dtype", "error", "match"),
    [
        ([[1], [300]], "int8", ValueError, r"sequences\[1\] must hold only values that dtype "
         r"int8 can hold, got 300 at step 0 \(1 such values\)\. Pass a wider dtype\."),
        ([np.array([1e6, 2.0])], "float16", ValueError, r"sequences\[0\] .* got 1000000\.0 "),
        ([[1], [-1, 70000]], "int16", ValueError, r"sequences\[1\] .* got 70000 at step 1"),
        ([[1.7, 2.0]], "int32", TypeError, r"sequences\[0\] has dtype float64, which does not "
         r"cast to dtype int32 within its kind"),
        ([[1.0], [np.nan]], "int32", TypeError, r"sequences\[0\] has dtype float64"),
    ],
)  # fmt: skip
def test_ragged_from_sequences_refuses_lossy_casts_like_pad(sequences, dtype, error, match):
    """Lossy casts are refused with pad's message, never wrapped around or truncated.

    300 into int8, 1e6 into float16, 70000 into int16 change a value; float to int crosses kinds.
    """
    with pytest.raises(error, match=r"^Ragged\.from_sequences: " + match):
        Ragged.from_sequences(sequences, dtype=dtype)
    arrays = [np.asarray(s) for s in sequences]
    with pytest.raises(error, match=r"^pad: " + match):
        pad(arrays, dtype=dtype)


def test_ragged_from_sequences_copies_and_does_not_mutate():
    """Inputs are copied and left unchanged."""
    first = np.array([1.0, 2.0])
    r = Ragged.from_sequences([first])
    first[0] = 5.0
    assert r[0][0] == 1.0
    assert first.flags.writeable


@pytest.mark.parametrize(
    ("sequences", "error", "match"),
    [
        (
            [np.zeros((2, 3)), [], np.zeros((1, 4))],
            ValueError,
            r"Ragged.from_sequences: sequences\[2\] has trailing shape \(4,\), "
            r"expected \(3,\) like sequences\[0\]\.",
        ),
        (
            [[], np.zeros(2), np.zeros((1, 4))],
            ValueError,
            r"sequences\[2\] has trailing shape \(4,\), expected \(\) like sequences\[1\]\.",
        ),
        (
            [[1, 2], 3],
            ValueError,
            r"sequences\[1\] must have shape \(T_i, \*F\), got the scalar 3\. Wrap it",
        ),
        (
            [[1], [[1, 2], [3]]],
            ValueError,
            r"sequences\[1\] must be an array-like of shape \(T_i, \*F\) with equal-sized steps",
        ),
        (
            [[None]],
            TypeError,
            r"sequences must have a numeric, bool or string dtype, got dtype object",
        ),
    ],
)
def test_ragged_from_sequences_rejects_bad_sequences(sequences, error, match):
    """Errors name the offending sequence by index."""
    with pytest.raises(error, match=match):
        Ragged.from_sequences(sequences)


# -------------------------------------------------------------------- indexing

selections = st.one_of(
    st.lists(st.integers(-8, 7), max_size=8).map(lambda rows: ("ints", rows)),
    st.lists(st.booleans(), min_size=6, max_size=6).map(lambda flags: ("bools", flags)),
    st.tuples(
        st.none() | st.integers(-8, 8),
        st.none() | st.integers(-8, 8),
        st.sampled_from([None, 1, 2, -1, -3]),
    ).map(lambda parts: ("slice", parts)),
)


@given(spec=specs, selection=selections)
@example(spec=([3, 0, 2], (2,), 0), selection=("ints", [2, 2, -3]))
@example(spec=([3, 0, 2], (), 0), selection=("slice", (1, None, None)))
@example(spec=([3, 0, 2], (2,), 0), selection=("slice", (0, 1, None)))
@example(spec=([], (), 0), selection=("slice", (None, None, -1)))
def test_ragged_getitem_selection_matches_reference(spec, selection):
    """Slices, integer lists (any order, repeats, negatives) and bool masks pick those sequences."""
    sequences = make_sequences(spec)
    r = make_ragged(spec)
    B = len(sequences)
    kind, payload = selection
    if kind == "ints":
        rows = [row for row in payload if -B <= row < B]
        index: Any = np.array(rows, dtype=np.int64)
    elif kind == "bools":
        flags = (payload * B)[:B]
        rows = [row for row in range(B) if flags[row]]
        index = np.array(flags, dtype=bool)
    else:
        index = slice(*payload)
        rows = list(range(B))[index]
    picked = r[index]
    assert isinstance(picked, Ragged)
    assert_valid(picked)
    assert_sequences_equal(picked.to_sequences(), [sequences[row] for row in rows])
    assert picked.dtype == r.dtype
    assert picked.trailing_shape == r.trailing_shape


def test_ragged_getitem_accepts_python_lists():
    """Plain lists of ints or bools (and the empty list) are index arrays."""
    r = Ragged.from_sequences([[1], [2, 3], []])
    np.testing.assert_array_equal(r[[1, 0]].values, [2, 3, 1])
    np.testing.assert_array_equal(r[[False, True, True]].lengths, [2, 0])
    assert len(r[[]]) == 0
    assert r[np.int64(-2)].tolist() == [2, 3]


def test_ragged_contiguous_slice_shares_memory_safely():
    """A step-1 slice is a read-only view with rebased offsets."""
    r = Ragged.from_sequences([[1, 2], [3], [4, 5, 6]])
    tail = r[1:]
    assert np.shares_memory(tail.values, r.values)
    np.testing.assert_array_equal(tail.offsets, [0, 1, 4])
    assert not tail.values.flags.writeable


@pytest.mark.parametrize(
    ("index", "error", "match"),
    [
        (3, IndexError, r"Ragged: index must be in \[-B, B\) = \[-3, 3\), got 3\."),
        (-4, IndexError, r"index must be in \[-B, B\) = \[-3, 3\), got -4\."),
        ([0, 5], IndexError, r"Ragged: index\[1\] must be in \[-B, B\) = \[-3, 3\), got 5\."),
        ([True, False], IndexError, r"a bool index must have shape \(B,\) = \(3,\), got \(2,\)\."),
        (True, IndexError, r"a bool index must have shape \(B,\) = \(3,\), got \(\)\."),
        (
            1.0,
            TypeError,
            r"index must be an int, a slice, or a 1-D integer or bool array, got 1\.0\.",
        ),
        ((0, 1), TypeError, r"got the tuple \(0, 1\)\. Use r\[i\]\[j\] for a step"),
        ([[0]], TypeError, r"1-D integer or bool array, got \[\[0\]\]\."),
    ],
)
def test_ragged_getitem_rejects_bad_indices(index, error, match):
    """Out-of-range, misshapen and wrongly typed indices raise."""
    r = Ragged.from_sequences([[1], [2], [3]])
    with pytest.raises(error, match=match):
        r[index]


# ------------------------------------------------------------------- to_padded


@given(
    spec=specs,
    maxlen=st.none() | st.integers(0, 9),
    padding=sides,
    truncating=sides,
)
@example(spec=([], (), 0), maxlen=None, padding="post", truncating="post")
@example(spec=([3, 0], (2,), 0), maxlen=0, padding="pre", truncating="pre")
@example(spec=([3, 1], (), 0), maxlen=3, padding="pre", truncating="post")
@example(spec=([5, 1], (), 0), maxlen=3, padding="post", truncating="pre")
def test_ragged_to_padded_matches_reference(spec, maxlen, padding, truncating):
    """to_padded agrees with the per-sequence oracle for every side and length, including 0."""
    sequences = make_sequences(spec)
    trailing = spec[1]
    r = make_ragged(spec)
    kw = {"maxlen": maxlen, "padding": padding, "truncating": truncating, "value": -1.5}
    padded, lengths = r.to_padded(**kw)
    expected = pad_reference(sequences, trailing=trailing, dtype=np.float64, **kw)
    np.testing.assert_array_equal(padded, expected)
    assert padded.dtype == np.float64
    T = padded.shape[1]
    np.testing.assert_array_equal(lengths, np.minimum([len(s) for s in sequences], T).astype(int))
    assert lengths.dtype == np.int64
    assert padded.flags.writeable


@settings(max_examples=200)
@given(spec=specs, maxlen=st.none() | st.integers(0, 9), padding=sides, truncating=sides)
@example(spec=([4, 0, 2], (2,), 0), maxlen=2, padding="pre", truncating="pre")
def test_ragged_padded_mask_round_trip_keeps_truncated_sequences(spec, maxlen, padding, truncating):
    """Ragged -> padded -> mask -> Ragged gives each sequence cut to T on the truncating side."""
    sequences = make_sequences(spec)
    r = make_ragged(spec)
    padded, lengths = r.to_padded(
        maxlen=maxlen, padding=padding, truncating=truncating, value=np.nan
    )
    T = padded.shape[1]
    mask = lengths_to_mask(lengths, T, padding=padding)
    np.testing.assert_array_equal(mask_to_lengths(mask, padding=padding), lengths)
    expected = [truncate_reference(s, T, truncating) for s in sequences]
    from_mask = Ragged.from_padded(padded, mask=mask, padding=padding)
    from_lengths = Ragged.from_padded(padded, lengths, padding=padding)
    assert_valid(from_mask)
    assert_sequences_equal(from_mask.to_sequences(), expected)
    assert from_mask == from_lengths
    if maxlen is None:
        assert from_mask == r


def test_ragged_to_padded_casts_to_dtype():
    """dtype= sets the output dtype and the pad value is cast to it."""
    r = Ragged.from_sequences([[1, 2], [3]])
    padded, _ = r.to_padded(dtype=np.float32, value=0.1)
    assert padded.dtype == np.float32
    np.testing.assert_array_equal(padded, np.array([[1, 2], [3, 0.1]], dtype=np.float32))
    padded, _ = Ragged.from_sequences([["a", "b"], ["c"]]).to_padded(value="")
    assert padded.tolist() == [["a", "b"], ["c", ""]]


def test_ragged_to_padded_does_not_mutate():
    """The Ragged is unchanged and shares no memory with the padded output."""
    r = Ragged.from_sequences([[1.0, 2.0], [3.0]])
    before = r.values.copy()
    padded, _ = r.to_padded()
    padded[0, 0] = 9.0
    np.testing.assert_array_equal(r.values, before)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"maxlen": -1}, ValueError, r"Ragged.to_padded: maxlen must be >= 0, got -1"),
        ({"maxlen": 1.5}, TypeError, r"maxlen must be an int or None, got 1\.5"),
        ({"padding": "left"}, ValueError, r"padding must be 'pre' or 'post', got 'left'"),
        ({"truncating": "end"}, ValueError, r"truncating must be 'pre' or 'post', got 'end'"),
        (
            {"dtype": object},
            TypeError,
            r"dtype must be a numeric, bool or string dtype, got <class 'object'>",
        ),
        (
            {"dtype": "no-such-type"},
            TypeError,
            r"dtype must be a numeric, bool or string dtype, got 'no-such-type'",
        ),
        (
            {"value": np.nan},
            ValueError,
            r"value must be representable in dtype int64, got nan\. Pass a value",
        ),
        ({"value": 1.5}, ValueError, r"value must be representable in dtype int64, got 1\.5"),
        (
            {"value": 300, "dtype": np.uint8},
            ValueError,
            r"value must be representable in dtype uint8, got 300",
        ),
        (
            {"value": 1e300, "dtype": np.float32},
            ValueError,
            r"value must be representable in dtype float32",
        ),
        (
            {"value": 1j, "dtype": np.float64},
            ValueError,
            r"value must be representable in dtype float64, got 1j",
        ),
        ({"value": "x"}, ValueError, r"value must be a scalar of dtype int64, got 'x'"),
        ({"value": [0, 1]}, ValueError, r"value must be a scalar of dtype int64, got \[0, 1\]"),
    ],
)
def test_ragged_to_padded_rejects_bad_arguments(kwargs, error, match):
    """Bad maxlen, sides, dtype or pad value raise before any work."""
    with pytest.raises(error, match=match):
        Ragged.from_sequences([[1, 2], [3]]).to_padded(**kwargs)


# ------------------------------------------------------------------ from_padded


@given(spec=specs, extra=st.integers(0, 3), padding=sides)
@example(spec=([], (2,), 0), extra=0, padding="post")
@example(spec=([0, 0], (), 0), extra=0, padding="pre")
def test_ragged_from_padded_matches_reference(spec, extra, padding):
    """from_padded reads exactly the real steps and never looks at the padding."""
    lengths, trailing, seed = spec
    rng = np.random.default_rng(seed)
    T = max(lengths, default=0) + extra
    garbage = rng.standard_normal((len(lengths), T, *trailing))
    mask = lengths_to_mask(np.array(lengths, dtype=np.int64), T, padding=padding)
    garbage[~mask] = np.nan
    r = Ragged.from_padded(garbage, lengths, padding=padding)
    assert_sequences_equal(r.to_sequences(), unpad_reference(garbage, lengths, padding))
    assert r.trailing_shape == trailing
    assert not np.isnan(r.values).any()


def test_ragged_from_padded_does_not_mutate_or_alias():
    """Inputs are unchanged, and the Ragged owns a copy of the steps."""
    x = np.array([[1, 2, 0], [3, 0, 0]])
    mask = np.array([[True, True, False], [True, False, False]])
    before = (x.copy(), mask.copy())
    r = Ragged.from_padded(x, mask=mask)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(mask, before[1])
    assert not np.shares_memory(r.values, x)
    np.testing.assert_array_equal(r.values, [1, 2, 3])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {},
            ValueError,
            r"Ragged.from_padded: exactly one of lengths and mask must be given, got neither\.",
        ),
        (
            {"lengths": [1, 1], "mask": np.ones((2, 3), bool)},
            ValueError,
            r"exactly one of lengths and mask must be given, got both\.",
        ),
        (
            {"lengths": [1, 1, 1]},
            ValueError,
            r"lengths must have shape \(B,\) = \(2,\) like array, got \(3,\)\.",
        ),
        (
            {"lengths": [1, 4]},
            ValueError,
            r"Ragged.from_padded: lengths must be <= T = 3, got lengths\[1\] == 4\.",
        ),
        ({"lengths": [1.0, 2.0]}, TypeError, r"lengths must be integers"),
        (
            {"mask": np.ones((2, 2), bool)},
            ValueError,
            r"mask must have shape \(B, T\) = \(2, 3\) like array, got \(2, 2\)\.",
        ),
        ({"mask": np.ones((2, 3), int)}, TypeError, r"Ragged.from_padded: mask must be bool"),
        (
            {"mask": np.array([[True, True, True], [True, False, True]])},
            ValueError,
            r"Ragged.from_padded: mask\[1\] must be one run of True followed only by False",
        ),
        (
            {"lengths": [1, 1], "padding": "mid"},
            ValueError,
            r"padding must be 'pre' or 'post', got 'mid'",
        ),
    ],
)
def test_ragged_from_padded_rejects_bad_arguments(kwargs, error, match):
    """Inconsistent lengths or masks raise with the standard message."""
    with pytest.raises(error, match=match):
        Ragged.from_padded(np.zeros((2, 3, 1)), **kwargs)


@pytest.mark.parametrize(
    ("array", "error", "match"),
    [
        (
            np.zeros(3),
            ValueError,
            r"Ragged.from_padded: array must have shape \(B, T, \*F\), got \(3,\)\.",
        ),
        (
            np.array([[None]]),
            TypeError,
            r"array must have a numeric, bool or string dtype, got dtype object",
        ),
    ],
)
def test_ragged_from_padded_rejects_bad_arrays(array, error, match):
    """The padded array needs a supported dtype and at least (B, T)."""
    with pytest.raises(error, match=match):
        Ragged.from_padded(array, [0])


# ----------------------------------------------------------- with_values, concat


def test_ragged_with_values_keeps_offsets_and_copies():
    """with_values swaps the steps (any trailing shape, dtype) and keeps the offsets."""
    r = Ragged.from_sequences([[1.0, 2.0], [], [3.0]])
    new = np.stack([r.values, -r.values], axis=1)  # (N, 2)
    s = r.with_values(new)
    new[0, 0] = 100.0
    np.testing.assert_array_equal(s.offsets, r.offsets)
    np.testing.assert_array_equal(s[0], [[1.0, -1.0], [2.0, -2.0]])
    assert s.trailing_shape == (2,)
    np.testing.assert_array_equal(r.values, [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    ("values", "error", "match"),
    [
        (
            np.zeros(2),
            ValueError,
            r"Ragged.with_values: values must have N = 3 steps \(len\(values\)\), "
            r"got shape \(2,\)\.",
        ),
        (np.array(0.0), ValueError, r"values must have shape \(N, \*F\), got \(\)\."),
        (
            np.array([None, None, None]),
            TypeError,
            r"values must have a numeric, bool or string dtype",
        ),
    ],
)
def test_ragged_with_values_rejects_bad_values(values, error, match):
    """New values must have N steps and a supported dtype."""
    with pytest.raises(error, match=match):
        Ragged.from_sequences([[1.0, 2.0], [3.0]]).with_values(values)


@given(parts=st.lists(specs.map(lambda spec: (spec[0], (2,), spec[2])), min_size=1, max_size=4))
def test_ragged_concatenate_matches_from_sequences(parts):
    """Concatenating batches equals building one batch from all their sequences."""
    sequence_lists = [make_sequences(part) for part in parts]
    empty = Ragged(np.zeros((0, 2)), np.array([0]))  # from_sequences([]) would have F = ()
    raggeds = [Ragged.from_sequences(seqs) if seqs else empty for seqs in sequence_lists]
    joined = Ragged.concatenate(raggeds)
    assert_valid(joined)
    everything = [s for seqs in sequence_lists for s in seqs]
    assert_sequences_equal(joined.to_sequences(), everything)
    assert len(joined) == sum(len(r) for r in raggeds)


def test_ragged_concatenate_promotes_dtypes():
    """The joined dtype is NumPy's promotion of the parts."""
    joined = Ragged.concatenate([Ragged.from_sequences([[1]]), Ragged.from_sequences([[0.5]])])
    assert joined.dtype == np.float64
    np.testing.assert_array_equal(joined.values, [1.0, 0.5])


@pytest.mark.parametrize(
    ("raggeds", "error", "match"),
    [
        ([], ValueError, r"Ragged.concatenate: raggeds must hold at least one Ragged, got none\."),
        (
            [Ragged.from_sequences([[1]]), [[2]]],
            TypeError,
            r"raggeds\[1\] must be a Ragged, got list\.",
        ),
        (
            [Ragged.from_sequences([[1]]), Ragged.from_sequences([[[1, 2]]])],
            ValueError,
            r"raggeds\[1\] has trailing shape \(2,\), expected \(\) like raggeds\[0\]\.",
        ),
    ],
)
def test_ragged_concatenate_rejects_bad_parts(raggeds, error, match):
    """Empty input, non-Ragged parts and trailing-shape mismatches raise."""
    with pytest.raises(error, match=match):
        Ragged.concatenate(raggeds)


# ------------------------------------------------------- nbytes, equality, repr


def test_ragged_nbytes_counts_values_and_offsets_only():
    """Memory is raw steps plus offsets, far below the padded size for skewed lengths."""
    r = Ragged.from_sequences(
        [np.zeros((1000, 4), np.float32)] + [np.zeros((1, 4), np.float32)] * 99
    )
    assert r.nbytes == r.values.nbytes + r.offsets.nbytes
    assert r.nbytes == (1000 + 99) * 4 * 4 + 101 * 8
    padded, _ = r.to_padded()
    assert padded.nbytes == 100 * 1000 * 4 * 4
    assert r.nbytes * 50 < padded.nbytes


def test_ragged_equality_is_structural():
    """Equal dtype, offsets and values (NaN == NaN) compare equal; anything else does not."""
    a = Ragged.from_sequences([[1.0, np.nan], [2.0]])
    assert a == Ragged.from_sequences([[1.0, np.nan], [2.0]])
    assert a != Ragged.from_sequences([[1.0, np.nan, 2.0]])
    assert a != Ragged.from_sequences([[1.0, 0.0], [2.0]])
    assert a != Ragged.from_sequences([[1.0, np.nan], [2.0]], dtype=np.float32)
    assert a != a.with_values(a.values[:, None])
    assert a != [[1.0, np.nan], [2.0]]
    ints = Ragged.from_sequences([[1, 2]])
    assert ints == Ragged.from_sequences([[1, 2]])
    with pytest.raises(TypeError, match="unhashable"):
        hash(a)


@pytest.mark.parametrize(
    "clone", [copy.copy, copy.deepcopy, lambda r: pickle.loads(pickle.dumps(r))]
)
def test_ragged_copies_and_pickles_stay_valid_and_read_only(clone):
    """Copies and unpickled values equal the original and are read-only again."""
    r = Ragged.from_sequences([[1.0, np.nan], [], [2.0]])
    other = clone(r)
    assert other == r
    assert_valid(other)


def test_ragged_repr_is_concise():
    """The repr shows B, N, F, dtype and length statistics, not the data."""
    r = Ragged.from_sequences([np.zeros((3, 2)), np.zeros((0, 2)), np.zeros((1, 2))])
    assert repr(r) == "Ragged(B=3, N=4, F=(2,), dtype=float64, lengths min/mean/max=0/1.3/3)"
    assert repr(Ragged.from_sequences([])) == "Ragged(B=0, N=0, F=(), dtype=float64, lengths=[])"


@pytest.mark.parametrize(
    ("values", "dtype", "error", "match"),
    [
        ([1.7, np.nan], "int32", TypeError, r"float64 must cast to dtype int32 within their kind"),
        ([1.0, 1e300], "float32", ValueError, r"float32 must hold every value, got 1e\+300"),
        ([1, 300], "int8", ValueError, r"int8 must hold every value, got 300 in sequence 1"),
    ],
)
def test_to_padded_casts_strictly_like_pad(values, dtype, error, match):
    """The same rule as pad: no float -> int, no wrap-around, no overflow to infinity."""
    ragged = Ragged(np.array(values), np.array([0, 1, 2]))
    with pytest.raises(error, match=match):
        ragged.to_padded(dtype=dtype)
    with pytest.raises(error):
        pad(list(ragged), dtype=dtype)


def test_to_padded_narrowing_that_keeps_values_passes():
    """Values that fit (and rounding into a float dtype) pass."""
    padded, _ = Ragged(np.array([1, 127]), np.array([0, 2])).to_padded(dtype="int8")
    assert padded.tolist() == [[1, 127]]
    padded, _ = Ragged(np.array([0.1]), np.array([0, 1])).to_padded(dtype="float32")
    assert padded.dtype == np.float32


@pytest.mark.parametrize(("source", "dtype"), [("float64", "float32"), ("int16", "int64")])
@pytest.mark.parametrize("padding", ["pre", "post"])
def test_to_padded_into_another_dtype_keeps_multi_feature_steps(source, dtype, padding):
    """Padding (N, F) steps into a dtype of another width casts each value (regression).

    The block copy of whole steps once moved F * 8 bytes into F * 4-byte slots.
    """
    rng = np.random.default_rng(0)
    steps = [(rng.normal(size=(T, 3)) * 100).astype(source) for T in (1, 40, 3, 0, 17)]
    ragged = Ragged.from_sequences(steps)
    padded, _ = ragged.to_padded(dtype=dtype, padding=padding, value=-1)
    expected, _ = ragged.to_padded(padding=padding, value=-1)
    np.testing.assert_array_equal(padded, expected.astype(dtype))


def test_a_huge_uint64_offset_is_reported_as_itself():
    """An offset of 2**64 - 1 is named as such, not as -1 after an int64 cast."""
    with pytest.raises(ValueError, match=r"offsets\[1\] == 18446744073709551615"):
        Ragged(np.zeros((3, 1)), np.array([0, 2**64 - 1], dtype=np.uint64))
