"""Tests for varlen.data.ragged.Ragged."""

from __future__ import annotations

import numpy as np

from varlen.data.ragged import Ragged


def test_ragged_constructor_stores_read_only_copies():
    """The constructor copies its inputs and marks the stored arrays read-only."""
    values = np.arange(6.0).reshape(3, 2)
    offsets = np.array([0, 2, 2, 3])
    r = Ragged(values, offsets)
    values[0, 0] = 99.0
    assert r.values[0, 0] == 0.0
    assert not r.values.flags.writeable
    assert not r.offsets.flags.writeable
    assert r.offsets.dtype == np.int64
    np.testing.assert_array_equal(r.lengths, [2, 0, 1])
    assert r.trailing_shape == (2,)
    assert r.num_features == 2
    assert r.dtype == np.float64
    assert len(r) == 3


def test_ragged_getitem_int_returns_sequence():
    """Integer indexing (also negative) returns sequence i of shape (T_i, *F)."""
    r = Ragged.from_sequences([[1, 2, 3], [], [4]])
    np.testing.assert_array_equal(r[0], [1, 2, 3])
    assert r[1].shape == (0,)
    np.testing.assert_array_equal(r[-1], [4])
    assert r.dtype == np.int64
