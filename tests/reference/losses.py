"""Per-sequence oracles for the masked losses: each sequence scored alone by torch."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def per_sequence_values(
    kind: str, inputs: Sequence[Tensor], targets: Sequence[Tensor]
) -> list[Tensor]:
    """Return, per sequence (unpadded ``(T_i, ...)``), its ``(T_i,)`` per-step values."""
    values = []
    for x, y in zip(inputs, targets, strict=True):
        if kind == "ce":
            values.append(nn.functional.cross_entropy(x, y, reduction="none"))
        elif kind == "accuracy":
            values.append((x.argmax(dim=1) == y).to(x.dtype))
        else:
            error = (x - y).abs() if kind == "mae" else (x - y).square()
            values.append(error.flatten(1).mean(dim=1) if error.ndim > 1 else error)
    return values


def reduce_reference(values: Sequence[Tensor], reduction: str, *, empty: float) -> Tensor:
    """Reduce per-sequence step values the obvious way: loops over sequences and steps."""
    if reduction == "sum":
        return sum((v.sum() for v in values), torch.zeros((), dtype=torch.float64))
    if reduction == "step":
        steps = sum(len(v) for v in values)
        total = sum((v.sum() for v in values), torch.zeros((), dtype=torch.float64))
        return total / steps if steps else torch.tensor(empty, dtype=torch.float64)
    means = [v.mean() for v in values if len(v)]
    if not means:
        return torch.tensor(empty, dtype=torch.float64)
    return sum(means, torch.zeros((), dtype=torch.float64)) / len(means)


NAN = math.nan
