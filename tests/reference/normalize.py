"""Slow, obviously correct references for ``varlen.data.normalize``.

Each function walks the real steps one by one (sequence, then step, then feature) and
uses ``np.nanmean`` / ``np.nanstd`` per feature, so it can serve as an oracle for the
vectorized, masked code.
"""

from __future__ import annotations

import numpy as np


def real_steps_reference(x: np.ndarray, lengths: np.ndarray, padding: str) -> list[np.ndarray]:
    """Return the real steps of a padded ``(B, T, F)`` batch as ``B`` arrays ``(T_i, F)``."""
    T = x.shape[1]
    sequences = []
    for row, length in enumerate(lengths):
        start = 0 if padding == "post" else T - int(length)
        sequences.append(np.array([x[row, start + step] for step in range(int(length))]))
    return sequences


def mean_std_reference(
    sequences: list[np.ndarray], F: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-feature ``(mean, std, count)`` over all steps of ``sequences``, NaN ignored.

    Features without a finite step get NaN mean and std and count 0.
    """
    mean, std, count = np.full(F, np.nan), np.full(F, np.nan), np.zeros(F)
    for feature in range(F):
        observed = [
            float(step[feature])
            for sequence in sequences
            for step in sequence
            if not np.isnan(step[feature])
        ]
        count[feature] = len(observed)
        if observed:
            mean[feature] = np.nanmean(np.array(observed, dtype=np.float64))
            std[feature] = np.nanstd(np.array(observed, dtype=np.float64))
    return mean, std, count


def transform_reference(
    x: np.ndarray,
    lengths: np.ndarray,
    padding: str,
    *,
    mean: np.ndarray,
    scale: np.ndarray,
) -> np.ndarray:
    """Standardize the real steps of ``x (B, T, F)`` one entry at a time; pads copied."""
    out = x.copy()
    T = x.shape[1]
    for row, length in enumerate(lengths):
        start = 0 if padding == "post" else T - int(length)
        for step in range(start, start + int(length)):
            for feature in range(x.shape[2]):
                value = float(x[row, step, feature])
                out[row, step, feature] = (value - mean[feature]) / scale[feature]
    return out
