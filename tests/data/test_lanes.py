"""plan_lanes: every sequence placed once, no overlaps, resets between neighbours, balanced."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from varlen.data.lanes import plan_lanes


@given(
    lengths=st.lists(st.integers(0, 30), max_size=40),
    num_lanes=st.integers(1, 6),
    window=st.one_of(st.none(), st.integers(1, 12)),
)
@example(lengths=[], num_lanes=1, window=None)
@example(lengths=[0, 0], num_lanes=3, window=4)
def test_plan_lanes_places_each_sequence_once_without_overlap(lengths, num_lanes, window):
    """Steps of different sequences never share a lane slot, and resets sit between them."""
    plan = plan_lanes(lengths, num_lanes=num_lanes, window=window)
    sizes = np.array(lengths, dtype=np.int64)
    assert np.array_equal(plan.lane == -1, sizes == 0)
    assert plan.total_length % plan.window == 0
    if window is not None:
        assert plan.window == window
    grid = np.zeros((num_lanes, plan.total_length), dtype=np.int64)  # 0 free, 1 real, 2 reset
    for lane, step in zip(*plan.step_positions(), strict=True):
        assert grid[lane, step] == 0
        grid[lane, step] = 1
    for lane, step in zip(*plan.reset_positions(), strict=True):
        assert grid[lane, step] == 0
        grid[lane, step] = 2
    assert (grid == 1).sum() == sizes.sum()
    # Within a lane, sequences are back to back with exactly one reset between two of them.
    for lane in range(num_lanes):
        placed = np.flatnonzero(plan.lane == lane)
        order = placed[np.argsort(plan.start[placed])]
        expected = 0
        for i in order:
            assert plan.start[i] == expected
            expected = plan.start[i] + sizes[i] + 1


@given(lengths=st.lists(st.integers(1, 50), min_size=1, max_size=60), num_lanes=st.integers(1, 8))
def test_plan_lanes_balances_lanes_within_the_longest_sequence(lengths, num_lanes):
    """The longest lane exceeds the ideal balanced load by at most the longest sequence (LPT)."""
    plan = plan_lanes(lengths, num_lanes=num_lanes)
    costs = np.array(lengths) + 1
    ideal = costs.sum() / num_lanes
    assert plan.total_length <= ideal + max(lengths)


def test_plan_lanes_efficiency_counts_real_over_computed_steps():
    """Efficiency is real steps over lanes times lane length."""
    plan = plan_lanes([4, 4], num_lanes=1)
    assert plan.total_length == 9
    assert plan.efficiency == pytest.approx(8 / 9)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_lanes": 0}, "num_lanes must be an int >= 1, got 0"),
        ({"num_lanes": 2, "window": 0}, r"window \(lane length per call\) must be an int >= 1"),
        ({"num_lanes": True}, "num_lanes must be an int >= 1, got True"),
    ],
)
def test_plan_lanes_rejects_bad_sizes(kwargs, match):
    """Lane counts and windows below 1 get a clear error."""
    with pytest.raises(ValueError, match=match):
        plan_lanes([3, 2], **kwargs)


def test_plan_lanes_rejects_negative_lengths():
    """Lengths are validated like everywhere else."""
    with pytest.raises(ValueError, match=r"lengths must be >= 0, got lengths\[1\] == -2"):
        plan_lanes([3, -2], num_lanes=1)
