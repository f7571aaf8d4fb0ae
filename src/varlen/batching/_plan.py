"""Batch plans: which sequences go together, computed from lengths with NumPy only.

A plan over ``n`` sequences is a pair ``(order, bounds)``: ``order (n_kept,)`` int64 holds
sequence indices and ``bounds (M + 1,)`` int64 cuts it into ``M`` batches, batch ``j`` being
``order[bounds[j]:bounds[j + 1]]`` (the same layout as a ``Ragged``'s offsets). Batches are
never empty. The padded cost of a batch is ``B * T_max``.

These helpers are private and trust their inputs; the sampler and the padding report
validate first. They import no torch, so the report can run without it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]


def length_order(
    lengths: IntArray, *, rng: np.random.Generator | None, jitter: float = 0.0
) -> IntArray:
    """Return the indices of ``lengths`` sorted by length, shortest first.

    Args:
        lengths: ``(n,)`` int64 lengths, or ``(n, K)`` several lengths per sequence: sorted
            by the first, ties broken by the next ones.
        rng: Breaks ties between equal lengths at random; ``None`` keeps index order.
        jitter: The first key is ``T_i * (1 + jitter * u)`` with ``u`` uniform in ``[0, 1)``,
            so lengths within a fraction ``jitter`` of each other may swap. Needs ``rng``.

    Returns:
        ``(n,)`` int64 permutation.
    """
    n = int(lengths.shape[0])
    table = lengths.reshape(n, 1) if lengths.ndim == 1 else lengths  # (n, K)
    rest = [table[:, k] for k in range(table.shape[1] - 1, 0, -1)]  # least significant first
    if rng is None:
        if not rest:
            return np.argsort(table[:, 0], kind="stable").astype(np.int64)
        return np.lexsort((*rest, table[:, 0])).astype(np.int64)
    # A random permutation, then a stable sort (whose result is unique, the same with every
    # algorithm on every rank): ties end up in random order.
    perm = rng.permutation(n)
    first = (lengths if lengths.ndim == 1 else table[:, 0])[perm]
    if jitter > 0:
        key = first * (1.0 + jitter * rng.random(n))
        return perm[np.lexsort((*(column[perm] for column in rest), key))]
    return perm[np.argsort(_one_key(first, [column[perm] for column in rest]), kind="stable")]


def _one_key(first: IntArray, rest: list[IntArray]) -> NDArray[np.integer]:
    """Fold lengths (``first`` most significant, ``rest`` least first) into one sort key.

    The narrowest unsigned type that holds it: NumPy radix-sorts 16-bit keys (~4x a
    timsort at 10^7) and a single key sorts ~2x faster than a lexsort. Keys too wide for
    64 bits fall back to a lexsort order, turned into ranks.
    """
    columns = [first, *reversed(rest)]  # most significant first
    if not first.size:
        return first
    spans = [int(c.max()) + 1 for c in columns]
    if len(columns) == 1:  # no fold: only a narrower copy when it fits 16 bits
        return first.astype(np.uint16) if spans[0] <= 2**16 else first
    if float(np.prod([float(s) for s in spans])) >= 2.0**63:
        order = np.lexsort((*rest, first))
        ranks = np.empty_like(order)
        ranks[order] = np.arange(order.shape[0])
        return ranks
    key = first.astype(np.int64)  # a new array, folded in place
    for column, span in zip(columns[1:], spans[1:], strict=True):
        key *= span
        key += column
    total = int(np.prod(spans, dtype=np.float64))
    for kind in (np.uint16, np.uint32):
        if total <= np.iinfo(kind).max:
            return key.astype(kind)
    return key


def cut_fixed(n: int, batch_size: int) -> IntArray:
    """Return the bounds that cut ``n`` ordered sequences into batches of ``batch_size``.

    The last batch holds the remainder ``n % batch_size`` when it is not 0.

    Args:
        n: Number of sequences.
        batch_size: Sequences per batch, ``>= 1``.

    Returns:
        ``(M + 1,)`` int64 bounds with ``M = ceil(n / batch_size)``.
    """
    return np.append(np.arange(0, n, batch_size, dtype=np.int64), np.int64(n))


def cut_budget(ordered_lengths: IntArray, max_tokens: int | IntArray) -> IntArray:
    """Cut ordered sequences greedily into batches whose padded cost fits ``max_tokens``.

    A batch grows while ``B * max(T_max, 1) <= max_tokens`` for every length column (an
    empty sequence costs as much as a length-1 one, which bounds ``B`` by ``max_tokens``).
    A sequence that alone exceeds the budget forms a batch of its own. The loop runs once
    per batch, each step vectorized over a window that doubles until the batch closes.

    Args:
        ordered_lengths: ``(n,)`` or ``(n, K)`` int64 lengths in batching order.
        max_tokens: Budget of padded steps per batch, ``>= 1``: one int, or ``(K,)`` one
            per length column.

    Returns:
        ``(M + 1,)`` int64 bounds.
    """
    n = ordered_lengths.shape[0]
    table = ordered_lengths.reshape(n, 1) if ordered_lengths.ndim == 1 else ordered_lengths
    limits = np.broadcast_to(np.asarray(max_tokens, dtype=np.int64), (table.shape[1],)).tolist()
    columns = [np.maximum(table[:, k], 1) for k in range(table.shape[1])]  # contiguous (n,)
    # A sorted column's running maximum over a batch is its last cost: skip the scan.
    ascending = [bool(n < 2 or (c[1:] >= c[:-1]).all()) for c in columns]
    counts = np.arange(1, 17, dtype=np.int64)
    bounds = [0]
    start, window = 0, 16
    while start < n:
        while True:
            w = min(window, n - start)
            if counts.shape[0] < w:
                counts = np.arange(1, 2 * w + 1, dtype=np.int64)
            over = np.zeros(w, dtype=bool)
            for column, limit, sorted_ in zip(columns, limits, ascending, strict=True):
                segment = column[start : start + w]  # (w,)
                running = segment if sorted_ else np.maximum.accumulate(segment)
                over |= running * counts[:w] > limit
            first = int(over.argmax())
            if over[first] or start + window >= n:
                size = max(first, 1) if over[first] else w
                break
            window *= 2
        start += size
        bounds.append(start)
        window = max(2 * size, 16)
    return np.asarray(bounds, dtype=np.int64)


def batch_costs(ordered_lengths: IntArray, bounds: IntArray) -> tuple[IntArray, IntArray]:
    """Return ``(sizes, maxima)`` per batch: ``B`` and ``T_max``; the cost is their product.

    Args:
        ordered_lengths: ``(n,)`` int64 lengths in batching order.
        bounds: ``(M + 1,)`` int64 bounds of non-empty batches.

    Returns:
        Two ``(M,)`` int64 arrays.
    """
    sizes = np.diff(bounds)
    if sizes.shape[0] == 0:
        return sizes, np.zeros(0, dtype=np.int64)
    maxima = np.maximum.reduceat(ordered_lengths, bounds[:-1]).astype(np.int64)
    return sizes, maxima


def split_largest(bounds: IntArray, count: int) -> tuple[IntArray, int]:
    """Split the batch with the most sequences in two, ``count`` times.

    Halves of a batch never cost more than the batch, so budgets still hold. Splits stop
    early when every batch holds one sequence.

    Args:
        bounds: ``(M + 1,)`` int64 bounds.
        count: Number of splits wanted, ``>= 0``.

    Returns:
        ``(new_bounds, shortfall)``: bounds of ``M + count - shortfall`` batches, and the
        number of splits that could not be made.
    """
    points = bounds.tolist()
    for done in range(count):
        sizes = np.diff(points)
        j = int(np.argmax(sizes))
        if sizes[j] < 2:
            return np.asarray(points, dtype=np.int64), count - done
        points.insert(j + 1, points[j] + int(sizes[j]) // 2)
    return np.asarray(points, dtype=np.int64), 0
