"""The ways to feed variable-length sequences to a recurrent model, side by side.

Each :class:`Technique` says how a batch is formed (random or length-bucketed) and how the model
sees it. Only the first two are inexact; they are here because they are what people do first:

============== ========== =============================================================
name           batches    what the model sees
============== ========== =============================================================
pad-pre        random     pre-padded batch, no mask: the state runs through leading pads
pad-post       random     post-padded batch, no mask: the final state is taken after pads
mask           random     padded batch + lengths: varlen's exact fused path
bucket         bucketed   the same, on batches of similar lengths (little padding)
pack           bucketed   packed internally (no compute on pads; per-step kernel on CPU)
lanes          random     sequences end to end in a few lanes, state reset between them
one-at-a-time  random     each sequence alone, no padding (the oracle, slow)
============== ========== =============================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from varlen._checks import check_choice
from varlen._types import Padding
from varlen.batching.collate import Collate
from varlen.batching.dataset import RaggedDataset
from varlen.data.ragged import Ragged
from varlen.nn.lanes import run_lanes
from varlen.nn.recurrent import Method
from varlen.training.models import SequenceModel

__all__ = ["TECHNIQUES", "Technique", "get_technique"]


@dataclass(frozen=True)
class Step:
    """One batch's outputs and how much work it took."""

    scores: Tensor  # (B, output_size)
    real_steps: int
    computed_steps: int


@dataclass(frozen=True)
class Technique:
    """A way to batch sequences and run the model on them.

    Args:
        name: Short name (CLI ``--technique``).
        description: One line for tables and ``--help``.
        bucketed: Whether batches group similar lengths.
        exact: Whether each sequence's result equals it run alone.
        run: ``(model, data, indices) -> Step``.
    """

    name: str
    description: str
    bucketed: bool
    exact: bool
    run: Callable[[SequenceModel, RaggedDataset, np.ndarray], Step]


def _padded(
    model: SequenceModel,
    data: RaggedDataset,
    indices: np.ndarray,
    *,
    padding: Padding,
    mask: bool,
    method: Method | None = None,
) -> Step:
    batch = Collate(padding=padding, dtype=torch.float32)(data.__getitems__(list(indices)))
    x = batch.x.to(model.device)
    lengths = batch.lengths.to(x.device) if mask else None
    out, state = model.rnn(x, lengths, padding=padding, method=method)
    scores = model.head(model.pool(out, state, lengths, padding=padding))
    B, T = batch.x.shape[:2]
    return Step(scores, int(batch.lengths.sum()), B * T)


def _packed(model: SequenceModel, data: RaggedDataset, indices: np.ndarray) -> Step:
    step = _padded(model, data, indices, padding="post", mask=True, method="packed")
    return Step(step.scores, step.real_steps, step.real_steps)  # no compute on pads


def _lanes(model: SequenceModel, data: RaggedDataset, indices: np.ndarray) -> Step:
    subset: Ragged = data.sequences[indices]
    device = model.device
    values = torch.tensor(subset.values, dtype=torch.float32, device=device)
    lengths = torch.from_numpy(subset.lengths)
    num_lanes = max(1, -(-len(indices) // 4))  # about four sequences per lane
    pooling = model.config.pooling
    out = run_lanes(model.rnn, values, lengths, num_lanes=num_lanes, cell_state=False)
    if pooling == "last":
        pooled = model.final_hidden(out.h)
    else:
        owner = torch.repeat_interleave(
            torch.arange(len(indices), device=device), lengths.to(device)
        )
        reduce = "mean" if pooling == "mean" else "amax"
        pooled = values.new_zeros(len(indices), out.values.shape[1])
        rows = owner[:, None].expand(-1, out.values.shape[1])  # (N, D * H)
        pooled = pooled.scatter_reduce(0, rows, out.values, reduce, include_self=False)
    plan = out.plan
    return Step(model.head(pooled), int(lengths.sum()), plan.num_lanes * plan.total_length)


def _one_at_a_time(model: SequenceModel, data: RaggedDataset, indices: np.ndarray) -> Step:
    device = model.device
    scores = []
    for index in indices:
        x = torch.tensor(data.sequences[int(index)], dtype=torch.float32, device=device)[None]
        out, state = model.rnn(x)
        scores.append(model.head(model.pool(out, state, None)))
    real = int(data.lengths[indices].sum())
    return Step(torch.cat(scores), real, real)


TECHNIQUES: dict[str, Technique] = {
    technique.name: technique
    for technique in (
        Technique(
            "pad-pre",
            "pre-padding, no mask (pads run through the state)",
            bucketed=False,
            exact=False,
            run=lambda m, d, i: _padded(m, d, i, padding="pre", mask=False),
        ),
        Technique(
            "pad-post",
            "post-padding, no mask (final state taken after the pads)",
            bucketed=False,
            exact=False,
            run=lambda m, d, i: _padded(m, d, i, padding="post", mask=False),
        ),
        Technique(
            "mask",
            "padding + masking (varlen exact, fused kernel)",
            bucketed=False,
            exact=True,
            run=lambda m, d, i: _padded(m, d, i, padding="post", mask=True),
        ),
        Technique(
            "bucket",
            "masking + length bucketing (varlen exact, fused kernel)",
            bucketed=True,
            exact=True,
            run=lambda m, d, i: _padded(m, d, i, padding="post", mask=True),
        ),
        Technique("pack", "packing + length bucketing", bucketed=True, exact=True, run=_packed),
        Technique(
            "lanes",
            "sequences end to end in lanes, state reset between",
            bucketed=False,
            exact=True,
            run=_lanes,
        ),
        Technique(
            "one-at-a-time",
            "one sequence at a time, no padding",
            bucketed=False,
            exact=True,
            run=_one_at_a_time,
        ),
    )
}


def get_technique(name: str) -> Technique:
    """Return the technique called ``name``.

    Args:
        name: One of :data:`TECHNIQUES`.

    Returns:
        The technique.

    Raises:
        ValueError: If ``name`` is unknown.
    """
    check_choice("get_technique", "technique", name, tuple(TECHNIQUES))
    return TECHNIQUES[name]
