"""The compiled time-major step kernels: exact copies, or an error (never out-of-range memory).

``time_major_steps`` writes a recurrent layer's first input ``(T, B, F + 1)`` and
``last_steps`` copies each row's final output; ``varlen.nn`` checks them bit for bit against
its torch ops (``tests/nn/test_gates.py``). Here: against a NumPy reference written step by
step, and every argument they refuse.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from varlen.data.step_kernels import STEP_KERNELS

needs_kernel = pytest.mark.skipif(STEP_KERNELS is None, reason="compiled kernel not built")


@pytest.mark.skipif(os.environ.get("VARLEN_REQUIRE_NATIVE") != "1", reason="kernel optional")
def test_built_where_required():
    """CI builds the kernels (VARLEN_REQUIRE_NATIVE=1): they must be there."""
    assert STEP_KERNELS is not None


def _reference(x: np.ndarray, lengths: np.ndarray, pre: bool) -> np.ndarray:
    B, T, F = x.shape
    out = np.zeros((T, B, F + 1), dtype=x.dtype)
    for b in range(B):
        for t in range(T):
            real = t >= T - lengths[b] if pre else t < lengths[b]
            if real:
                out[t, b, :F] = x[b, t]
            else:
                out[t, b, F] = 1
    return out


@needs_kernel
@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 7), min_size=1, max_size=9),
    T_extra=st.integers(0, 2),
    F=st.integers(0, 4),
    pre=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_time_major_steps_is_the_reference(lengths, T_extra, F, pre, dtype, seed):
    """Real steps copied with a 0, padded steps (0, ..., 0, 1) whatever x holds there."""
    rng = np.random.default_rng(seed)
    n = np.array(lengths, dtype=np.int64)
    B, T = len(lengths), max(lengths) + T_extra
    x = rng.normal(size=(B, T, F)).astype(dtype)
    x[rng.random(size=(B, T)) < 0.3] = np.nan  # anywhere: pads must not leak
    out = np.full((T, B, F + 1), 7.0, dtype=dtype)  # (anything: every value is written)
    assert STEP_KERNELS.time_major_steps(x, n, out, pre) is None
    expected = _reference(x, n, pre)
    np.testing.assert_array_equal(out, expected)  # (NaN equal to NaN: the real ones)


@needs_kernel
@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 6), min_size=1, max_size=9),
    H=st.integers(1, 4),
    directions=st.sampled_from([1, 2]),
    pre=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_last_steps_copies_the_direction_that_ends_on_the_pads(
    lengths, H, directions, pre, dtype, seed
):
    """Row b's output at lengths[b] - 1 (or T - lengths[b] with pre), clamped into [0, T)."""
    rng = np.random.default_rng(seed)
    n = np.array(lengths, dtype=np.int64)
    B, T = len(lengths), max(max(lengths), 1)
    out = rng.normal(size=(T, B, directions * H)).astype(dtype)
    column = (directions - 1) * H if pre else 0
    dest = np.empty((B, H), dtype=dtype)
    assert STEP_KERNELS.last_steps(out, n, pre, column, dest) is None
    for b in range(B):
        t = min(max(T - n[b] if pre else n[b] - 1, 0), T - 1)
        np.testing.assert_array_equal(dest[b], out[t, b, column : column + H])


@needs_kernel
def test_arguments_they_refuse():
    """Wrong dtypes, layouts, shapes or lengths raise before any memory is touched."""
    x = np.zeros((2, 3, 4), dtype=np.float32)
    n = np.array([3, 1], dtype=np.int64)
    out = np.zeros((3, 2, 5), dtype=np.float32)
    STEP_KERNELS.time_major_steps(x, n, out, False)
    bad_calls: list[tuple[type[Exception], tuple[Any, ...]]] = [
        (TypeError, (x.astype(np.float64), n, out, False)),  # dtypes differ
        (TypeError, (x.astype(np.float16), n, out.astype(np.float16), False)),
        (TypeError, (x[:, ::-1], n, out, False)),  # not C-contiguous
        (TypeError, (x, n.astype(np.int32), out, False)),
        (TypeError, (x, n[:1], out, False)),  # one length for two rows
        (TypeError, (x.tolist(), n, out, False)),
        (ValueError, (x, np.array([4, 1]), out, False)),  # longer than T
        (ValueError, (x, np.array([-1, 1]), out, False)),
        (ValueError, (x, n, np.zeros((3, 2, 4), dtype=np.float32), False)),  # F, not F + 1
        (ValueError, (x, n, np.zeros((2, 3, 5), dtype=np.float32), False)),  # batch-first
    ]
    for error, args in bad_calls:
        with pytest.raises(error):
            STEP_KERNELS.time_major_steps(*args)
    frozen = out.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        STEP_KERNELS.time_major_steps(x, n, frozen, False)
    with pytest.raises(TypeError):
        STEP_KERNELS.time_major_steps(x, n, out)  # three arguments
    dest = np.zeros((2, 5), dtype=np.float32)
    STEP_KERNELS.last_steps(out, n, False, 0, dest)
    bad_picks: list[tuple[type[Exception], tuple[Any, ...]]] = [
        (ValueError, (out, n, False, 1, dest)),  # column + H > W
        (ValueError, (out, n, False, -1, dest)),
        (ValueError, (out, np.array([3, 4]), False, 0, dest)),
        (ValueError, (out, n, False, 0, np.zeros((3, 5), dtype=np.float32))),  # B differs
        (ValueError, (out[:0], n[:0], False, 0, dest[:0])),  # T = 0: no step to read
        (TypeError, (out, n, False, 0, dest.astype(np.float64))),
    ]
    for error, args in bad_picks:
        with pytest.raises(error):
            STEP_KERNELS.last_steps(*args)
