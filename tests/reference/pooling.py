"""Slow per-sequence references for pooling and the torch functions over padded batches.

Each function loops in Python over rows, looks only at the row's real steps (the positions
where ``mask`` is True, listed step by step) and builds its result from slices of ``x`` with
plain torch ops, so that autograd through a reference gives the reference gradients: steps
that are not read get exactly zero gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def real_positions(mask_row: Tensor) -> list[int]:
    """List the steps where one ``(T,)`` mask row is True, in order."""
    return [t for t in range(len(mask_row)) if bool(mask_row[t])]


def _stack_rows(rows: list[Tensor], x: Tensor) -> Tensor:
    return torch.stack(rows) if rows else x.new_zeros((0, *x.shape[2:]))


def last_step_reference(x: Tensor, mask: Tensor) -> Tensor:
    """``(B, *F)``: each row's last real step, zeros for a row without one."""
    rows = []
    for b in range(x.shape[0]):
        positions = real_positions(mask[b])
        rows.append(x[b, positions[-1]] if positions else x.new_zeros(x.shape[2:]))
    return _stack_rows(rows, x)


def first_step_reference(x: Tensor, mask: Tensor) -> Tensor:
    """``(B, *F)``: each row's first real step, zeros for a row without one."""
    rows = []
    for b in range(x.shape[0]):
        positions = real_positions(mask[b])
        rows.append(x[b, positions[0]] if positions else x.new_zeros(x.shape[2:]))
    return _stack_rows(rows, x)


def mean_reference(x: Tensor, mask: Tensor) -> Tensor:
    """``(B, *F)``: the sum of the real steps divided by their count; zeros for none."""
    rows = []
    for b in range(x.shape[0]):
        positions = real_positions(mask[b])
        total = x.new_zeros(x.shape[2:])
        for t in positions:
            total = total + x[b, t]
        rows.append(total / len(positions) if positions else total)
    return _stack_rows(rows, x)


def max_reference(x: Tensor, mask: Tensor) -> Tensor:
    """``(B, F)`` for ``x (B, T, F)``: per feature, the first real step holding the maximum."""
    rows = []
    for b in range(x.shape[0]):
        positions = real_positions(mask[b])
        features = []
        for f in range(x.shape[2]):
            if not positions:
                features.append(x.new_zeros(()))
                continue
            best = positions[0]
            for t in positions[1:]:
                if x[b, t, f] > x[b, best, f]:
                    best = t
            features.append(x[b, best, f])
        rows.append(torch.stack(features) if features else x.new_zeros(0))
    return _stack_rows(rows, x)


def softmax_reference(scores: list[Tensor]) -> Tensor:
    """Softmax of a list of scalar scores, written out: ``exp(s - max) / sum``."""
    top = max(float(s.detach()) for s in scores)
    exps = [torch.exp(s - top) for s in scores]
    total = exps[0]
    for e in exps[1:]:
        total = total + e
    return torch.stack([e / total for e in exps])


def attention_reference(
    x: Tensor, mask: Tensor, score: Callable[[int, int], Tensor]
) -> tuple[Tensor, Tensor]:
    """``(pooled (B, F), weights (B, T))``, each sequence weighted over its real steps alone.

    ``score(b, t)`` is the scalar score of step ``t`` of row ``b``; it is called for real
    steps only.
    """
    B, T, F = x.shape
    pooled, weights = [], []
    for b in range(B):
        positions = real_positions(mask[b])
        row_weights = [x.new_zeros(()) for _ in range(T)]
        total = x.new_zeros(F)
        if positions:
            steps = [x[b, t] for t in positions]
            w = softmax_reference([score(b, t) for t in positions])
            for k, t in enumerate(positions):
                row_weights[t] = w[k]
                total = total + w[k] * steps[k]
        pooled.append(total)
        weights.append(torch.stack(row_weights) if T else x.new_zeros(0))
    if B == 0:
        return x.new_zeros(0, F), x.new_zeros(0, T)
    return torch.stack(pooled), torch.stack(weights)


def reverse_reference(x: Tensor, lengths: list[int], padding: str) -> Tensor:
    """Reverse each row's real steps where they stand; pads stay put."""
    out = x.clone()
    T = x.shape[1]
    for b, n in enumerate(lengths):
        start = 0 if padding == "post" else T - n
        for k in range(n):
            out[b, start + k] = x[b, start + n - 1 - k]
    return out


def unpad_reference(x: Tensor, lengths: list[int], padding: str) -> list[Tensor]:
    """Cut each row's real steps ``(T_i, *F)`` out of a padded batch, step by step."""
    T = x.shape[1]
    rows = []
    for b, n in enumerate(lengths):
        start = 0 if padding == "post" else T - n
        steps = [x[b, start + k] for k in range(n)]
        rows.append(torch.stack(steps) if steps else x.new_zeros((0, *x.shape[2:])))
    return rows


def contiguous_rows_reference(mask: Tensor, padding: str) -> list[bool]:
    """Per row: is the mask one run of True at the unpadded side (or all False)?"""
    result = []
    for row in mask.tolist():
        n = sum(row)
        T = len(row)
        expected = (
            [t < n for t in range(T)] if padding == "post" else [t >= T - n for t in range(T)]
        )
        result.append(row == expected)
    return result
