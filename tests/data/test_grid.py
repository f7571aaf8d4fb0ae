"""LengthGrid: batch lengths rounded up to a coarse grid (few shapes, bounded padding)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from varlen.batching import BucketBatchSampler
from varlen.data.grid import DEFAULT_GRID, LengthGrid

STEPS = st.sampled_from([1 / 16, 1 / 8, 1 / 4, 0.3, 1.0])


@settings(max_examples=200)
@given(step=STEPS, T=st.integers(0, 5000), longest=st.none() | st.integers(0, 5000))
@example(step=1 / 16, T=17, longest=None)
@example(step=1 / 16, T=16, longest=16)
def test_round_up_bounds(step, T, longest):
    """T <= round_up(T) < T (1 + step); every length up to 1/step is kept; never past longest."""
    grid = LengthGrid(step=step, longest=longest)
    rounded = grid.round_up(T)
    assert rounded >= T
    assert rounded < T * (1 + step) or rounded == T
    if 1 / step >= T:
        assert rounded == T
    if longest is not None and longest >= T:
        assert rounded <= longest
        assert rounded in set(grid.lengths().tolist())
    assert grid.round_up(rounded) == rounded  # grid lengths are fixed points
    assert grid.round_up(T + 1) >= rounded  # monotone


@settings(max_examples=60, deadline=None)
@given(
    step=STEPS,
    lengths=st.lists(st.integers(0, 3000), min_size=1, max_size=400),
    batch_size=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_distinct_batch_lengths_bounded_by_the_grid(step, lengths, batch_size, seed):
    """Over many epochs of bucketed batches, the padded lengths stay within grid.lengths()."""
    array = np.array(lengths, dtype=np.int64)
    grid = LengthGrid(step=step).fitted(array)
    allowed = set(grid.lengths().tolist())
    seen: set[int] = set()
    sampler = BucketBatchSampler(array, batch_size, seed=seed)
    for epoch in range(5):
        sampler.set_epoch(epoch)
        seen.update(grid.round_up(int(array[rows].max())) for rows in sampler)
    assert seen <= allowed
    assert len(seen) <= grid.size()
    assert max(seen) == int(array.max())  # the longest batch is not padded past the data


@pytest.mark.parametrize(
    ("step", "longest", "most"),
    [(1 / 16, 1000, 82), (1 / 16, 10**6, 200), (1 / 8, 1000, 50), (1, 10**6, 23)],
)
def test_grid_size_grows_with_the_logarithm_of_the_longest(step, longest, most):
    """About 1/step + ln(longest * step) / ln(1 + step) lengths, whatever the data."""
    size = LengthGrid(step=step).size(longest)
    estimate = 1 / step + math.log(longest * step) / math.log1p(step)
    assert size <= most
    assert size <= estimate + 2


def test_equal_lengths_are_never_padded():
    """Data of one length (its own top) pads nothing, even off the ladder."""
    grid = DEFAULT_GRID.fitted(np.full(10, 37))
    assert grid.round_up(37) == 37
    assert grid.lengths().tolist()[-1] == 37
    assert LengthGrid().round_up(37) == 39  # without a top, the ladder's next length


def test_lengths_above_the_top_round_up_the_ladder():
    """Augmented sequences longer than the data's longest still land on grid lengths."""
    grid = LengthGrid(step=1 / 4, longest=30)
    assert grid.round_up(31) == 38
    assert grid.round_up(38) == 38


@pytest.mark.parametrize("step", [0, -0.1, 1.5, math.nan, True, "1/16"])
def test_rejects_a_bad_step(step):
    """A step outside (0, 1] (or not a number) is refused in one line."""
    with pytest.raises(ValueError, match=r"LengthGrid: step must be a number in \(0, 1\]"):
        LengthGrid(step=step)


def test_rejects_a_bad_longest():
    """A negative or non-integer top is refused; lengths() needs a top."""
    with pytest.raises(ValueError, match="LengthGrid: longest must be >= 0, got -1"):
        LengthGrid(longest=-1)
    with pytest.raises(TypeError, match="LengthGrid: longest must be an int or None"):
        LengthGrid(longest=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="longest must be given"):
        LengthGrid().lengths()
