"""Vectorized kernels over the flat ``(values, offsets)`` representation of a ragged batch.

A ragged batch of ``B`` sequences is stored as ``values (N, *F)`` (all steps, end to end)
and ``offsets (B + 1,)`` int64 with ``offsets[0] == 0`` and ``offsets[-1] == N``; sequence
``i`` is ``values[offsets[i]:offsets[i + 1]]``. These helpers are private: they trust
their inputs, which the public functions validate first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from varlen._types import Padding


def kept_spans(
    lengths: NDArray[np.int64], T: int, truncating: Padding
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return ``(kept, skip)``: steps kept per row when cut to ``T``, and steps skipped in front.

    Args:
        lengths: ``(B,)`` int64 sequence lengths.
        T: Padded length.
        truncating: ``"pre"`` drops steps from the front, ``"post"`` from the back.

    Returns:
        ``kept = min(lengths, T)`` and ``skip = lengths - kept`` (pre) or zeros (post),
        both ``(B,)``.
    """
    kept = np.minimum(lengths, T)
    skip = lengths - kept if truncating == "pre" else np.zeros_like(lengths)
    return kept, skip


def row_positions(kept: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return ``(row, step)`` for every kept step: its row and its index within the row.

    Args:
        kept: ``(B,)`` int64 number of steps per row.

    Returns:
        Two ``(sum(kept),)`` int64 arrays.
    """
    B = kept.shape[0]
    total = int(kept.sum())
    row = np.repeat(np.arange(B, dtype=np.int64), kept)
    starts = np.cumsum(kept) - kept  # (B,) first flat index of each row
    step = np.arange(total, dtype=np.int64) - np.repeat(starts, kept)
    return row, step


def pad_flat(
    values: NDArray[Any],
    offsets: NDArray[np.int64],
    *,
    maxlen: int | None,
    value: Any,
    padding: Padding,
    truncating: Padding,
    dtype: DTypeLike,
) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Scatter a flat ragged batch into a dense ``(B, T, *F)`` array in one vectorized copy.

    Args:
        values: ``(N, *F)`` all steps end to end.
        offsets: ``(B + 1,)`` int64 row boundaries into ``values``.
        maxlen: ``T``; ``None`` means the longest length (0 when ``B == 0``).
        value: Fill value for padded steps, already valid for ``dtype``.
        padding: Side that receives the padding.
        truncating: Side that loses steps when a row is longer than ``T``.
        dtype: Output dtype.

    Returns:
        ``(padded, kept)``: ``padded (B, T, *F)`` of ``dtype`` and ``kept (B,)`` int64.
    """
    lengths = np.diff(offsets)
    B = lengths.shape[0]
    T = int(lengths.max(initial=0)) if maxlen is None else maxlen
    trailing = values.shape[1:]
    out = np.full((B, T, *trailing), value, dtype=dtype)
    kept, skip = kept_spans(lengths, T, truncating)
    if out.size == 0 or not kept.any():
        return out, kept
    # Step k of the kept steps (all rows end to end) belongs to row r; it goes to column
    # first[r] + (k - starts[r]) and comes from values[offsets[r] + skip[r] + (k - starts[r])].
    # Both are "k plus a per-row constant": one repeat and one add each.
    starts = np.cumsum(kept) - kept  # (B,) first kept-step index of each row
    first = T - kept if padding == "pre" else np.zeros_like(kept)  # (B,) first real column
    steps = np.arange(int(kept.sum()), dtype=np.int64)
    target = steps + np.repeat(np.arange(B, dtype=np.int64) * T + first - starts, kept)
    flat_out, flat_values = out.reshape(B * T, *trailing), values
    if values.dtype == out.dtype:  # whole steps move as blocks only between equal dtypes
        flat_out, flat_values = _as_rows(flat_out), _as_rows(values)
    if steps.shape[0] == values.shape[0]:
        # Nothing truncated: every step is copied, and the source index is the identity.
        flat_out[target] = flat_values
    else:
        flat_out[target] = flat_values[steps + np.repeat(offsets[:-1] + skip - starts, kept)]
    return out, kept


def _as_rows(array: NDArray[Any]) -> NDArray[Any]:
    """View ``(N, *F)`` as ``(N,)`` items of ``prod(F)`` elements each, when that is possible.

    Fancy indexing then moves one block per step instead of ``prod(F)`` elements, which is
    several times faster for multi-feature data. Object arrays and non-contiguous arrays
    are returned unchanged (a view of writable memory either way).
    """
    if array.ndim < 2 or array.size == 0 or array.dtype.hasobject or not array.flags.c_contiguous:
        return array
    step = np.dtype((np.void, array.dtype.itemsize * int(np.prod(array.shape[1:]))))
    return array.reshape(array.shape[0], -1).view(step).reshape(array.shape[0])
