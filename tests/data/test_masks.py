"""Tests for varlen.data.masks: lengths <-> mask conversions and mask builders."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.reference.ragged import (
    contiguous_row_reference,
    mask_from_value_reference,
    mask_reference,
)
from varlen._types import SIDES
from varlen.data.masks import (
    is_contiguous,
    lengths_to_mask,
    mask_from_ids,
    mask_from_predicate,
    mask_from_value,
    mask_to_lengths,
)

lengths_lists = st.lists(st.integers(0, 8), max_size=6)
sides = st.sampled_from(SIDES)
bool_masks = st.integers(0, 5).flatmap(
    lambda B: st.integers(0, 6).flatmap(
        lambda T: st.lists(
            st.lists(st.booleans(), min_size=T, max_size=T), min_size=B, max_size=B
        ).map(lambda rows: np.array(rows, dtype=bool).reshape(B, T))
    )
)


# ------------------------------------------------------------------ lengths_to_mask


@given(lengths=lengths_lists, extra=st.none() | st.integers(0, 3), padding=sides)
@example(lengths=[], extra=None, padding="post")
@example(lengths=[0, 0], extra=0, padding="pre")
@example(lengths=[3], extra=0, padding="pre")
def test_lengths_to_mask_matches_reference(lengths, extra, padding):
    """lengths_to_mask agrees with the step-by-step oracle and mask.sum(1) == lengths."""
    T = None if extra is None else max(lengths, default=0) + extra
    mask = lengths_to_mask(np.array(lengths, dtype=np.int64), T, padding=padding)
    expected_T = max(lengths, default=0) if T is None else T
    assert mask.dtype == np.bool_
    np.testing.assert_array_equal(mask, mask_reference(lengths, expected_T, padding))
    np.testing.assert_array_equal(mask.sum(axis=1), lengths)


@given(lengths=lengths_lists, extra=st.integers(0, 3), padding=sides)
def test_lengths_to_mask_round_trips_through_mask_to_lengths(lengths, extra, padding):
    """Converting lengths -> mask -> lengths is the identity, and the mask is contiguous."""
    array = np.array(lengths, dtype=np.int64)
    mask = lengths_to_mask(array, max(lengths, default=0) + extra, padding=padding)
    assert is_contiguous(mask, padding=padding)
    result = mask_to_lengths(mask, padding=padding)
    assert result.dtype == np.int64
    np.testing.assert_array_equal(result, array)


def test_lengths_to_mask_accepts_lists_and_does_not_mutate():
    """Lists of ints are accepted and an input array is left unchanged."""
    lengths = np.array([2, 0, 1])
    mask = lengths_to_mask(lengths, 3)
    np.testing.assert_array_equal(lengths, [2, 0, 1])
    np.testing.assert_array_equal(mask, lengths_to_mask([2, 0, 1], 3))
    assert mask.shape == (3, 3)


@pytest.mark.parametrize(
    ("lengths", "maxlen", "padding", "error", "match"),
    [
        (
            [1, 4],
            3,
            "post",
            ValueError,
            r"lengths_to_mask: lengths must be <= T = 3, got lengths\[1\] == 4",
        ),
        ([1, -1], None, "post", ValueError, r"lengths must be >= 0, got lengths\[1\] == -1"),
        ([[1, 2]], None, "post", ValueError, r"lengths must have shape \(B,\)"),
        ([1.0, 2.0], None, "post", TypeError, r"lengths must be integers, got dtype float64"),
        ([1], -1, "post", ValueError, r"maxlen must be >= 0, got -1"),
        ([1], 2.0, "post", TypeError, r"maxlen must be an int or None"),
        ([1], None, "left", ValueError, r"padding must be 'pre' or 'post', got 'left'"),
    ],
)
def test_lengths_to_mask_rejects_bad_arguments(lengths, maxlen, padding, error, match):
    """Bad lengths, maxlen or padding raise with the standard message."""
    with pytest.raises(error, match=match):
        lengths_to_mask(lengths, maxlen, padding=padding)


# ---------------------------------------------------------------- mask_to_lengths


@given(mask=bool_masks, padding=sides)
@example(mask=np.array([[True, False, True]]), padding="post")
@example(mask=np.array([[False, True, False]]), padding="pre")
@example(mask=np.zeros((0, 3), dtype=bool), padding="post")
@example(mask=np.zeros((2, 0), dtype=bool), padding="pre")
def test_mask_to_lengths_matches_reference_or_names_first_bad_row(mask, padding):
    """Contiguous masks give mask.sum(1); others raise naming the first bad row."""
    verdicts = [contiguous_row_reference(row, padding) for row in mask.tolist()]
    assert is_contiguous(mask, padding=padding) == all(verdicts)
    if all(verdicts):
        lengths = mask_to_lengths(mask, padding=padding)
        np.testing.assert_array_equal(lengths, mask.sum(axis=1))
        np.testing.assert_array_equal(
            lengths_to_mask(lengths, mask.shape[1], padding=padding), mask
        )
    else:
        row = verdicts.index(False)
        with pytest.raises(ValueError, match=rf"mask_to_lengths: mask\[{row}\] must be"):
            mask_to_lengths(mask, padding=padding)


@pytest.mark.parametrize(
    ("mask", "padding", "match"),
    [
        (
            [[True, False, True]],
            "post",
            r"mask_to_lengths: mask\[0\] must be one run of True followed only by False "
            r"\(padding='post'\), got False at step 1 then True at step 2\. "
            r"If the padding is at the other end, pass padding='pre'\.",
        ),
        (
            [[False, True, False]],
            "pre",
            r"mask_to_lengths: mask\[0\] must be only False followed by one run of True "
            r"\(padding='pre'\), got True at step 1 then False at step 2\. "
            r"If the padding is at the other end, pass padding='post'\.",
        ),
    ],
)
def test_mask_to_lengths_message_locates_the_defect(mask, padding, match):
    """The contiguity error says which steps break the pattern and how to fix it."""
    with pytest.raises(ValueError, match=match):
        mask_to_lengths(np.array(mask), padding=padding)


@pytest.mark.parametrize("function", [mask_to_lengths, is_contiguous])
@pytest.mark.parametrize(
    ("mask", "padding", "error", "match"),
    [
        (
            np.array([[1, 0]]),
            "post",
            TypeError,
            r"mask must be bool \(True = real step\), got dtype int64",
        ),
        (np.array([True, False]), "post", ValueError, r"mask must have shape \(B, T\), got \(2,\)"),
        (np.array([[True]]), "both", ValueError, r"padding must be 'pre' or 'post', got 'both'"),
    ],
)
def test_mask_functions_reject_bad_masks(function, mask, padding, error, match):
    """Non-bool masks, wrong ranks and bad sides raise with the function's name."""
    with pytest.raises(error, match=re.escape(function.__name__) + ": " + match):
        function(mask, padding=padding)


def test_mask_to_lengths_does_not_mutate():
    """The mask is left unchanged."""
    mask = np.array([[True, True, False], [False, False, False]])
    before = mask.copy()
    mask_to_lengths(mask)
    is_contiguous(mask, padding="pre")
    np.testing.assert_array_equal(mask, before)


# ---------------------------------------------------------------- mask_from_value

value_batches = st.tuples(
    st.integers(0, 4),
    st.integers(0, 5),
    st.sampled_from([(), (1,), (3,), (2, 2), (0,)]),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0.0, -1.0, np.nan]),
)


@settings(max_examples=200)
@given(spec=value_batches)
def test_mask_from_value_matches_reference(spec):
    """A step is padding iff all its features equal value, NaN included (Keras Masking)."""
    B, T, trailing, seed, value = spec
    rng = np.random.default_rng(seed)
    # Draw features from a tiny set so that all-``value`` steps and partial matches occur.
    x = rng.choice(np.array([value, 1.0, np.nan, 0.0]), size=(B, T, *trailing))
    padded_steps = rng.random((B, T)) < 0.4
    x[padded_steps] = value
    mask = mask_from_value(x, value=value)
    assert mask.dtype == np.bool_
    assert mask.shape == (B, T)
    np.testing.assert_array_equal(mask, mask_from_value_reference(x, value))
    if np.prod(trailing, dtype=int) > 0:
        assert not mask[padded_steps].any()


def test_mask_from_value_needs_all_features_to_match():
    """One differing feature makes a step real; NaN only matches a NaN value."""
    x = np.array([[[0.0, 0.0], [0.0, 5.0], [np.nan, np.nan], [1e-12, 0.0]]])  # (1, 4, 2)
    np.testing.assert_array_equal(mask_from_value(x), [[False, True, True, True]])
    np.testing.assert_array_equal(mask_from_value(x, value=np.nan), [[True, True, False, True]])


def test_mask_from_value_treats_each_element_of_a_2d_batch_as_a_step():
    """For (B, T) input each element is compared with value."""
    x = np.array([[3, 0, 0], [0, 4, 0]])
    np.testing.assert_array_equal(
        mask_from_value(x, value=0), [[True, False, False], [False, True, False]]
    )


def test_mask_from_value_nan_never_matches_integers():
    """An integer batch has no NaN, so value=nan marks every step real."""
    x = np.zeros((2, 3, 1), dtype=np.int64)
    np.testing.assert_array_equal(mask_from_value(x, value=np.nan), np.ones((2, 3), dtype=bool))


def test_mask_from_value_zero_feature_steps_are_padding():
    """Steps with no features (F = 0) all count as padding, as in Keras."""
    np.testing.assert_array_equal(
        mask_from_value(np.zeros((2, 3, 0))), np.zeros((2, 3), dtype=bool)
    )


@pytest.mark.parametrize(
    ("x", "value", "error", "match"),
    [
        (
            np.zeros(3),
            0.0,
            ValueError,
            r"mask_from_value: x must have shape \(B, T, \*F\), got \(3,\)",
        ),
        (
            np.array([[None]]),
            0.0,
            TypeError,
            r"x must have a numeric or bool dtype, got dtype object",
        ),
        (np.zeros((1, 2)), [0.0, 1.0], ValueError, r"value must be a scalar, got \[0\.0, 1\.0\]"),
    ],
)
def test_mask_from_value_rejects_bad_arguments(x, value, error, match):
    """Rank, dtype and non-scalar value errors name the argument."""
    with pytest.raises(error, match=match):
        mask_from_value(x, value=value)


def test_mask_from_value_does_not_mutate():
    """The batch is left unchanged."""
    x = np.array([[[np.nan], [1.0]]])
    before = x.copy()
    mask_from_value(x, value=np.nan)
    np.testing.assert_array_equal(x, before)


# ----------------------------------------------------------------- mask_from_ids


def test_mask_from_ids_marks_non_pad_tokens():
    """True where ids != pad_id, for the default 0 and a custom id."""
    ids = np.array([[5, 3, 0], [-1, 0, -1]])
    np.testing.assert_array_equal(mask_from_ids(ids), [[True, True, False], [True, False, True]])
    np.testing.assert_array_equal(
        mask_from_ids(ids, pad_id=-1), [[True, True, True], [False, True, False]]
    )
    assert mask_from_ids(np.zeros((0, 4), dtype=np.int32)).shape == (0, 4)


@pytest.mark.parametrize(
    ("ids", "pad_id", "error", "match"),
    [
        (np.zeros((2, 2)), 0, TypeError, r"mask_from_ids: ids must be integers, got dtype float64"),
        (np.zeros((2, 2), dtype=bool), 0, TypeError, r"ids must be integers, got dtype bool"),
        (
            np.zeros((2, 2, 1), dtype=int),
            0,
            ValueError,
            r"ids must have shape \(B, T\), got \(2, 2, 1\)",
        ),
        (np.zeros((2, 2), dtype=int), 0.0, TypeError, r"pad_id must be an int, got 0\.0"),
        (np.zeros((2, 2), dtype=int), True, TypeError, r"pad_id must be an int, got True"),
    ],
)
def test_mask_from_ids_rejects_bad_arguments(ids, pad_id, error, match):
    """Non-integer ids, wrong rank and non-int pad_id raise."""
    with pytest.raises(error, match=match):
        mask_from_ids(ids, pad_id=pad_id)


# ------------------------------------------------------------ mask_from_predicate


def test_mask_from_predicate_applies_the_function_to_the_batch():
    """The predicate sees the whole (B, T, *F) batch and its (B, T) bool result is returned."""
    x = np.array([[[1.0, np.nan], [np.nan, np.nan]], [[np.nan, 2.0], [3.0, 4.0]]])
    mask = mask_from_predicate(x, lambda batch: ~np.isnan(batch).all(axis=-1))
    np.testing.assert_array_equal(mask, [[True, False], [True, True]])


def test_mask_from_predicate_returns_a_fresh_array_and_protects_the_input():
    """The predicate gets a read-only view, and the result is not the predicate's array."""
    x = np.zeros((1, 2, 1))
    seen = []

    def predicate(batch):
        seen.append(batch)
        with pytest.raises(ValueError, match="read-only"):
            batch[0, 0, 0] = 1.0
        return keep

    keep = np.array([[True, False]])
    mask = mask_from_predicate(x, predicate)
    assert seen
    assert not np.shares_memory(mask, keep)
    np.testing.assert_array_equal(mask, keep)
    np.testing.assert_array_equal(x, np.zeros((1, 2, 1)))
    assert x.flags.writeable


@pytest.mark.parametrize(
    ("predicate", "error", "match"),
    [
        (
            lambda batch: batch[..., 0],
            TypeError,
            r"mask_from_predicate: predicate must return a bool array of shape \(B, T\) = "
            r"\(2, 3\), got dtype float64\. Return a comparison",
        ),
        (
            lambda batch: batch != 0,
            ValueError,
            r"predicate must return a bool array of shape \(B, T\) = \(2, 3\), "
            r"got shape \(2, 3, 4\)\. Reduce over the feature axes",
        ),
    ],
)
def test_mask_from_predicate_validates_the_result(predicate, error, match):
    """A non-bool or wrongly shaped predicate result raises a clear error."""
    with pytest.raises(error, match=match):
        mask_from_predicate(np.zeros((2, 3, 4)), predicate)


def test_mask_from_predicate_rejects_bad_batches():
    """The batch must be numeric with at least 2 dimensions."""
    with pytest.raises(ValueError, match=r"mask_from_predicate: x must have shape \(B, T, \*F\)"):
        mask_from_predicate(np.zeros(3), lambda batch: batch != 0)
    with pytest.raises(
        TypeError, match=r"mask_from_predicate: x must have a numeric or bool dtype"
    ):
        mask_from_predicate(np.array([["a"]]), lambda batch: batch != "a")


def test_a_huge_uint64_length_is_reported_as_itself():
    """2**64 - 1 used to be cast to int64 first and reported as -1."""
    big = np.array([2**64 - 1], dtype=np.uint64)
    with pytest.raises(ValueError, match=r"lengths\[0\] == 18446744073709551615"):
        lengths_to_mask(big, maxlen=3)
    with pytest.raises(ValueError, match=r"<= 9223372036854775807 \(int64\), got .*551615"):
        lengths_to_mask(big)
