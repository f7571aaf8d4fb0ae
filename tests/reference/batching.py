"""Slow, obviously correct references for ``varlen.batching``.

Each function loops in Python over sequences or steps so that it can serve as an oracle
for the vectorized code.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def collate_reference(
    sequences: list[np.ndarray],
    *,
    padding: str,
    value: Any,
    pad_to_multiple_of: int | None,
    dtype: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pad each sequence alone, step by step; return ``(x, lengths, mask)``."""
    T = max((len(sequence) for sequence in sequences), default=0)
    if pad_to_multiple_of is not None:
        T = math.ceil(T / pad_to_multiple_of) * pad_to_multiple_of
    trailing = sequences[0].shape[1:]
    x = np.empty((len(sequences), T, *trailing), dtype=dtype)
    mask = np.zeros((len(sequences), T), dtype=bool)
    for row, sequence in enumerate(sequences):
        pads = T - len(sequence)
        for t in range(T):
            real = t >= pads if padding == "pre" else t < len(sequence)
            mask[row, t] = real
            if real:
                x[row, t] = sequence[t - pads if padding == "pre" else t]
            else:
                x[row, t] = value
    lengths = np.array([len(sequence) for sequence in sequences], dtype=np.int64)
    return x, lengths, mask


def budget_cut_reference(ordered_lengths: list[int], max_tokens: int) -> list[int]:
    """Greedily cut a list of lengths into batches of padded cost ``<= max_tokens``.

    Returns the batch sizes. A batch takes the next sequence while
    ``(B + 1) * max(T_max, T_next, 1) <= max_tokens``; a first sequence always fits.
    """
    sizes: list[int] = []
    size, longest = 0, 0
    for length in ordered_lengths:
        cost = max(longest, length, 1) * (size + 1)
        if size and cost > max_tokens:
            sizes.append(size)
            size, longest = 0, 0
        size += 1
        longest = max(longest, length)
    if size:
        sizes.append(size)
    return sizes


def padded_cost(lengths: np.ndarray, batch: list[int], *, floor: int = 0) -> int:
    """Return ``B * max(T_max, floor)`` of one batch of indices."""
    longest = max([floor, *(int(lengths[i]) for i in batch)])
    return len(batch) * longest
