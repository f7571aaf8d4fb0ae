"""Slow, obviously correct per-sequence references for ``varlen.data.padding``.

Plain Python loops over sequences and steps: no vectorization, no slicing with computed
negative bounds, one assignment per output step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from varlen._types import Padding


def pad_reference(
    sequences: Sequence[Any],
    *,
    maxlen: int | None,
    value: Any,
    padding: Padding,
    truncating: Padding,
    dtype: Any,
    trailing: tuple[int, ...] = (),
) -> np.ndarray:
    """Pad with loops: row ``i`` holds the kept steps of sequence ``i`` and ``value`` elsewhere.

    Args:
        sequences: ``B`` sequences of steps (each step a scalar or a nested list of shape ``F``).
        maxlen: Output length ``T``; ``None`` means the longest length (0 when ``B == 0``).
        value: Fill value for padded steps.
        padding: ``"pre"`` or ``"post"``: where the padding goes.
        truncating: ``"pre"`` or ``"post"``: which end loses steps beyond ``T``.
        dtype: Output dtype.
        trailing: ``*F``, the shape of one step.

    Returns:
        ``(B, T, *F)`` array of ``dtype``.
    """
    rows = [list(sequence) for sequence in sequences]
    T = max((len(row) for row in rows), default=0) if maxlen is None else maxlen
    out = np.empty((len(rows), T, *trailing), dtype=dtype)
    for i, row in enumerate(rows):
        kept: list[Any] = []
        for t, step in enumerate(row):
            dropped = t < len(row) - T if truncating == "pre" else t >= T
            if not dropped:
                kept.append(step)
        fill = [value] * (T - len(kept))
        full = fill + kept if padding == "pre" else kept + fill
        for t, step in enumerate(full):
            out[i, t] = step
    return out


def kept_lengths_reference(sequences: Sequence[Any], maxlen: int | None) -> list[int]:
    """Return ``min(T_i, T)`` for every sequence, one at a time."""
    T = max((len(s) for s in sequences), default=0) if maxlen is None else maxlen
    return [min(len(s), T) for s in sequences]


def unpad_reference(padded: np.ndarray, lengths: Sequence[int], *, padding: Padding) -> list[Any]:
    """Copy the real steps of each row out of a padded batch, one row at a time.

    Args:
        padded: ``(B, T, *F)`` padded batch.
        lengths: ``B`` numbers of real steps.
        padding: ``"pre"`` (real steps at the end of a row) or ``"post"`` (at the start).

    Returns:
        ``B`` arrays of shape ``(lengths[i], *F)``.
    """
    T = padded.shape[1]
    out = []
    for i, n in enumerate(lengths):
        first = T - n if padding == "pre" else 0
        out.append(np.array([padded[i, first + t] for t in range(n)], dtype=padded.dtype))
    return [row.reshape(len(row), *padded.shape[2:]) for row in out]
