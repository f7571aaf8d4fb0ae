"""Padded lengths on a coarse grid: few distinct batch shapes, at a bounded padding cost.

A CPU LSTM call runs a oneDNN kernel compiled for its batch's shape ``(B, T)``, and oneDNN
keeps one compiled kernel per distinct shape (up to 1024 by default). Length-bucketed batches
over many sequences meet a new ``T`` nearly every batch, so a training process's memory grew
with the number of distinct lengths in the data. varlen's pads are exact (a sequence's outputs
and final state do not depend on how far its batch is padded), so padding each batch's ``T``
up to a grid length changes no result; it bounds the distinct ``T`` by the grid's size, which
grows with the logarithm of the longest length, for at most ``step`` more padded steps per
batch. A decision that only saves memory and time: a pure function, tuned by its parameter.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

__all__ = ["DEFAULT_GRID", "DEFAULT_STEP", "LengthGrid"]

DEFAULT_STEP = 1 / 16
"""The grid's default relative spacing: at most 6.25% more padded steps, ~3% on average."""


@functools.lru_cache(maxsize=64)
def _ladder(step: float, top: int) -> tuple[int, ...]:
    """Return the grid lengths ``0, 1, 2, ...`` up to the first one ``>= top``, ascending.

    Each length is the previous one times ``1 + step``, rounded up, and at least one more:
    every length up to ``1 / step``, then a geometric ladder. Integer steps, so the result
    does not depend on where a caller starts.
    """
    points, length = [0], 0
    while length < top:
        length = max(length + 1, math.ceil(length * (1.0 + step)))
        points.append(length)
    return tuple(points)


@dataclass(frozen=True)
class LengthGrid:
    """The lengths ``T`` a padded batch may take, and the rounding of ``max(T_i)`` up to them.

    The grid holds every length up to ``1 / step``, then each next length is the previous one
    times ``1 + step`` rounded up: a batch padded to ``round_up(max(T_i))`` has fewer than
    ``step * max(T_i)`` extra steps per row, and over lengths up to ``longest`` at most
    :meth:`size` distinct ``T`` occur, whatever the data: about
    ``1 / step + ln(longest * step) / ln(1 + step)``, 79 for ``step = 1/16`` and
    ``longest = 1000``.

    ``longest``, the longest length of the data, is the grid's top: a ``T <= longest`` never
    rounds past it, so data whose sequences all have one length is never padded at all.
    Lengths above it (e.g. sequences lengthened by augmentation) round up the ladder.

    Args:
        step: Relative spacing of the ladder, in ``(0, 1]``: the most extra padding per
            batch, as a fraction of ``max(T_i)``.
        longest: The data's longest length (``>= 0``), or ``None`` for no top.

    Raises:
        ValueError: If ``step`` is not in ``(0, 1]`` or ``longest`` is negative.
        TypeError: If ``longest`` is not an int.

    Example:
        >>> grid = LengthGrid(step=1 / 4, longest=30)
        >>> [grid.round_up(T) for T in (3, 4, 5, 6, 7, 9, 29, 30)]
        [3, 4, 5, 7, 7, 9, 30, 30]
        >>> grid.lengths().tolist()  # every T that round_up gives for T <= 30
        [0, 1, 2, 3, 4, 5, 7, 9, 12, 15, 19, 24, 30]
    """

    step: float = DEFAULT_STEP
    longest: int | None = None

    def __post_init__(self) -> None:
        step = self.step
        if isinstance(step, bool) or not isinstance(step, int | float) or not 0 < step <= 1:
            raise ValueError(
                f"LengthGrid: step must be a number in (0, 1], got {step!r}. Use e.g. 1/16 "
                "(at most 6.25% more padded steps)."
            )
        longest = self.longest
        if longest is not None:
            if isinstance(longest, bool) or not isinstance(longest, int | np.integer):
                raise TypeError(f"LengthGrid: longest must be an int or None, got {longest!r}.")
            if longest < 0:
                raise ValueError(f"LengthGrid: longest must be >= 0, got {longest}.")
            object.__setattr__(self, "longest", int(longest))
        object.__setattr__(self, "step", float(step))

    def fitted(self, lengths: NDArray[np.integer]) -> LengthGrid:
        """Return this grid with ``longest`` set to the longest of ``lengths`` (0 if none).

        Args:
            lengths: ``(n,)`` the data's lengths.

        Returns:
            A new :class:`LengthGrid`.
        """
        return replace(self, longest=int(np.max(lengths, initial=0)))

    def round_up(self, T: int) -> int:
        """Return the smallest grid length ``>= T`` (at most ``longest`` when ``T <= longest``).

        Args:
            T: A batch's longest length, ``>= 0``.

        Returns:
            The padded length: ``T <= round_up(T) < T * (1 + step)`` (``T`` itself up to
            ``1 / step``).
        """
        T = int(T)
        if T <= 1:
            return T
        points = _ladder(self.step, 1 << (T - 1).bit_length())  # cached per power of two
        rounded = points[bisect.bisect_left(points, T)]
        if self.longest is not None and self.longest >= T:
            return min(rounded, self.longest)
        return rounded

    def lengths(self, longest: int | None = None) -> NDArray[np.int64]:
        """Return every length :meth:`round_up` gives for ``T`` in ``[0, longest]``, ascending.

        Args:
            longest: The largest ``T`` (default: the grid's ``longest``).

        Returns:
            ``(size,)`` int64: the grid lengths below ``longest``, then ``longest``'s own
            rounding.

        Raises:
            ValueError: If neither ``longest`` nor the grid's ``longest`` is given.
        """
        top = self.longest if longest is None else int(longest)
        if top is None:
            raise ValueError(
                "LengthGrid.lengths: longest must be given when the grid has none, got None."
            )
        below = [length for length in _ladder(self.step, max(top, 1)) if length < top]
        return np.array([*below, self.round_up(top)], dtype=np.int64)

    def size(self, longest: int | None = None) -> int:
        """Return the number of distinct lengths :meth:`round_up` gives for ``T <= longest``.

        Args:
            longest: The largest ``T`` (default: the grid's ``longest``).

        Returns:
            ``len(self.lengths(longest))``: the bound on distinct padded lengths.
        """
        return len(self.lengths(longest))


DEFAULT_GRID = LengthGrid()
"""The grid training and prediction pad batches to by default (``step = 1/16``, no top)."""
