"""Slow, obviously correct per-sequence references for ``Ragged`` and the mask helpers.

Every function loops in Python over sequences (and steps where that is clearer), so
that it can serve as an oracle for the vectorized code in ``varlen.data``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def truncate_reference(sequence: np.ndarray, T: int, truncating: str) -> np.ndarray:
    """Keep at most ``T`` steps of ``sequence``, dropping from the ``truncating`` end."""
    if len(sequence) <= T:
        return sequence
    return sequence[:T] if truncating == "post" else sequence[len(sequence) - T :]


def pad_reference(
    sequences: list[np.ndarray],
    *,
    trailing: tuple[int, ...],
    maxlen: int | None,
    padding: str,
    truncating: str,
    value: Any,
    dtype: Any,
) -> np.ndarray:
    """Pad sequence by sequence into a ``(B, T, *F)`` array."""
    T = max((len(s) for s in sequences), default=0) if maxlen is None else maxlen
    out = np.full((len(sequences), T, *trailing), value, dtype=dtype)
    for row, sequence in enumerate(sequences):
        kept = truncate_reference(sequence, T, truncating)
        for step in range(len(kept)):
            column = step if padding == "post" else T - len(kept) + step
            out[row, column] = kept[step]
    return out


def unpad_reference(array: np.ndarray, lengths: list[int], padding: str) -> list[np.ndarray]:
    """Cut the real steps out of each row of a padded batch."""
    T = array.shape[1]
    sequences = []
    for row, length in enumerate(lengths):
        start = 0 if padding == "post" else T - length
        steps = [array[row, start + step] for step in range(length)]
        sequences.append(np.array(steps, dtype=array.dtype).reshape(length, *array.shape[2:]))
    return sequences


def mask_reference(lengths: list[int], T: int, padding: str) -> np.ndarray:
    """Build a ``(B, T)`` bool mask step by step."""
    mask = np.zeros((len(lengths), T), dtype=bool)
    for row, length in enumerate(lengths):
        for step in range(T):
            mask[row, step] = step < length if padding == "post" else step >= T - length
    return mask


def contiguous_row_reference(row: list[bool], padding: str) -> bool:
    """Whether ``row`` is True* then False* (post) or False* then True* (pre)."""
    ordered = row if padding == "post" else row[::-1]
    seen_false = False
    for item in ordered:
        if item and seen_false:
            return False
        seen_false = seen_false or not item
    return True


def mask_from_value_reference(x: np.ndarray, value: float) -> np.ndarray:
    """Mark a step real unless every one of its features equals ``value`` (NaN matches NaN)."""

    def same(item: Any) -> bool:
        if isinstance(value, float) and math.isnan(value):
            return isinstance(item, float) and math.isnan(item)
        return bool(item == value)

    B, T = x.shape[:2]
    mask = np.zeros((B, T), dtype=bool)
    for row in range(B):
        for step in range(T):
            features = np.asarray(x[row, step]).reshape(-1).tolist()
            mask[row, step] = not all(same(item) for item in features)
    return mask
