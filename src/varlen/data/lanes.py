"""Lane plans: many variable-length sequences laid end to end in a few rows ("lanes").

A lane is one long row of steps holding several sequences back to back, each followed by
one *reset* step (where a recurrent layer's state is set back to zero) unless it is the last
in its lane. Lanes are cut into windows of a fixed length, so every call a model makes has
the same shape ``(L, W)``; a sequence that crosses a window edge continues in the next
window with its state carried. Compared with padding to the longest sequence of a batch,
almost no step is wasted: the only padding is at the end of each lane.

This module only plans (NumPy); :func:`varlen.nn.run_lanes` runs a model over a plan.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from varlen._checks import check_lengths_array

__all__ = ["LanePlan", "plan_lanes"]


@dataclass(frozen=True)
class LanePlan:
    """Where each sequence of a batch sits in the lanes.

    Sequence ``i`` occupies steps ``start[i] : start[i] + lengths[i]`` of lane ``lane[i]``;
    length-0 sequences are not placed (``lane[i] == -1``). Lanes are ``total_length`` steps
    long, a multiple of ``window``.

    Args:
        lane: ``(B,)`` int64 lane of each sequence, ``-1`` for length 0.
        start: ``(B,)`` int64 first step of each sequence in its lane.
        lengths: ``(B,)`` int64 sequence lengths.
        num_lanes: ``L``.
        total_length: Steps per lane, ``S``.
        window: Steps per call, ``W`` (divides ``S``).
    """

    lane: NDArray[np.int64]
    start: NDArray[np.int64]
    lengths: NDArray[np.int64]
    num_lanes: int
    total_length: int
    window: int

    @property
    def num_windows(self) -> int:
        """Number of calls of shape ``(L, W)`` a run takes."""
        return self.total_length // self.window if self.window else 0

    @property
    def efficiency(self) -> float:
        """Real steps over computed steps, ``N / (L * S)`` (1.0 for an empty plan)."""
        computed = self.num_lanes * self.total_length
        return float(self.lengths.sum()) / computed if computed else 1.0

    def reset_positions(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Return ``(lane, step)`` of every reset step: the step before each non-first sequence."""
        placed = (self.lane >= 0) & (self.start > 0)
        return self.lane[placed], self.start[placed] - 1

    def step_positions(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Return ``(lane, step)`` of every real step, sequences in order: two ``(N,)`` arrays."""
        counts = self.lengths
        offsets = np.cumsum(counts) - counts
        within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(offsets, counts)
        return np.repeat(self.lane, counts), np.repeat(self.start, counts) + within


def plan_lanes(lengths: ArrayLike, *, num_lanes: int, window: int | None = None) -> LanePlan:
    """Lay sequences end to end in ``num_lanes`` lanes of nearly equal length.

    Longest first, each sequence goes to the lane that is shortest so far (the LPT rule, at
    most one sequence longer than the optimum); each costs its length plus one reset step
    unless it opens its lane. Lane lengths are rounded up to a multiple of ``window``.

    Args:
        lengths: ``(B,)`` integer sequence lengths, ``>= 0``.
        num_lanes: ``L >= 1``, the number of rows per call.
        window: ``W >= 1`` steps per call; defaults to the longest lane (one call).

    Returns:
        The :class:`LanePlan`.

    Raises:
        ValueError: If ``num_lanes < 1`` or ``window < 1``, or lengths are not ``(B,)``
            non-negative integers.

    Example:
        >>> plan = plan_lanes([5, 2, 2, 1], num_lanes=2)
        >>> # lane 0: 5 steps, reset, 1 step; lane 1: 2 steps, reset, 2 steps, 2 pads
        >>> plan.lane.tolist(), plan.start.tolist(), plan.total_length
        ([0, 1, 1, 0], [0, 0, 3, 6], 7)
    """
    sizes = check_lengths_array("plan_lanes", lengths)
    if isinstance(num_lanes, bool) or not isinstance(num_lanes, int) or num_lanes < 1:
        raise ValueError(f"plan_lanes: num_lanes must be an int >= 1, got {num_lanes!r}.")
    if window is not None and (
        isinstance(window, bool) or not isinstance(window, int) or window < 1
    ):
        raise ValueError(
            f"plan_lanes: window (lane length per call) must be an int >= 1, got {window!r}."
        )
    B = sizes.shape[0]
    lane = np.full(B, -1, dtype=np.int64)
    start = np.zeros(B, dtype=np.int64)
    loads = [(0, index) for index in range(num_lanes)]  # (steps used, lane), a min-heap
    # Longest first; ties keep the input order, so plans are deterministic.
    for i in np.argsort(-sizes, kind="stable"):
        if sizes[i] == 0:
            break
        used, chosen = heapq.heappop(loads)
        begin = used + 1 if used else 0  # one reset step after the lane's previous sequence
        lane[i], start[i] = chosen, begin
        heapq.heappush(loads, (begin + int(sizes[i]), chosen))
    longest = max(used for used, _ in loads)
    step = window or max(longest, 1)
    total = -(-longest // step) * step  # round up to a multiple of the window
    return LanePlan(lane, start, sizes, num_lanes, total, step)
