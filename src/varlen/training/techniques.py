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

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from varlen._checks import check_choice
from varlen._types import Padding
from varlen.batching.collate import Collate
from varlen.batching.dataset import RaggedDataset
from varlen.batching.sampler import BucketBatchSampler
from varlen.data.grid import LengthGrid
from varlen.data.ragged import Ragged
from varlen.nn.lanes import run_lanes
from varlen.nn.recurrent import Method
from varlen.training.models import SequenceModel

__all__ = [
    "TECHNIQUES",
    "Technique",
    "Timing",
    "choose_by_timing",
    "get_technique",
    "time_techniques",
]


@dataclass(frozen=True)
class Step:
    """One batch's outputs and how much work it took."""

    scores: Tensor  # (B, output_size)
    real_steps: int
    computed_steps: int


class Run(Protocol):
    """A technique's batch step: ``(model, data, indices, *, grid) -> Step``.

    ``grid`` pads each batch's ``T`` up to a length of a
    :class:`~varlen.data.grid.LengthGrid` (``None``: to ``max(T_i)``); exact techniques give
    the same results either way, with fewer distinct batch shapes.
    """

    def __call__(
        self,
        model: SequenceModel,
        data: RaggedDataset,
        indices: np.ndarray,
        /,
        *,
        grid: LengthGrid | None = None,
    ) -> Step: ...


@dataclass(frozen=True)
class Technique:
    """A way to batch sequences and run the model on them.

    Args:
        name: Short name (CLI ``--technique``).
        description: One line for tables and ``--help``.
        bucketed: Whether batches group similar lengths.
        exact: Whether each sequence's result equals it run alone.
        run: ``(model, data, indices, *, grid=None) -> Step`` (see :class:`Run`).
    """

    name: str
    description: str
    bucketed: bool
    exact: bool
    run: Run


def _padded(
    model: SequenceModel,
    data: RaggedDataset,
    indices: np.ndarray,
    *,
    padding: Padding,
    mask: bool,
    method: Method | None = None,
    grid: LengthGrid | None = None,
) -> Step:
    collate = Collate(padding=padding, dtype=torch.float32, grid=grid)
    batch = collate(data.__getitems__(list(indices)))
    x = batch.x.to(model.device)
    lengths = batch.lengths.to(x.device) if mask else None
    scores = model.head(model.features(x, lengths, padding=padding, method=method))
    B, T = batch.x.shape[:2]
    return Step(scores, int(batch.lengths.sum()), B * T)


def _packed(
    model: SequenceModel,
    data: RaggedDataset,
    indices: np.ndarray,
    /,
    *,
    grid: LengthGrid | None = None,
) -> Step:
    step = _padded(model, data, indices, padding="post", mask=True, method="packed", grid=grid)
    return Step(step.scores, step.real_steps, step.real_steps)  # no compute on pads


def _lanes(
    model: SequenceModel,
    data: RaggedDataset,
    indices: np.ndarray,
    /,
    *,
    grid: LengthGrid | None = None,
) -> Step:
    subset: Ragged = data.sequences[indices]
    device = model.device
    values = torch.tensor(subset.values, dtype=torch.float32, device=device)
    lengths = torch.from_numpy(subset.lengths)
    conv = None
    if model.front is not None or model.config.series_norm:
        # per-sequence views and the front-end run on the padded batch, then back to rows
        collate = Collate(padding="post", dtype=torch.float32, grid=grid)
        batch = collate(data.__getitems__(list(indices)))
        padded_lengths = batch.lengths.to(device)
        inputs = model.inputs(batch.x.to(device), padded_lengths)
        if model.front is not None:
            inputs = conv = model.front(inputs, padded_lengths)  # (B, ceil(T / factor), C)
            padded_lengths = model.front.out_lengths(padded_lengths)
            lengths = padded_lengths.cpu()
        real = torch.arange(inputs.shape[1], device=device)[None, :] < padded_lengths[:, None]
        values = inputs[real]  # (N', C), sequences in order
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
    if conv is not None:
        pooled = model.combine(pooled, conv, padded_lengths)
    plan = out.plan
    factor = 1 if model.front is None else model.front.factor  # lanes hold pooled steps
    computed = plan.num_lanes * plan.total_length * factor
    return Step(model.head(pooled), int(subset.lengths.sum()), computed)


def _one_at_a_time(
    model: SequenceModel,
    data: RaggedDataset,
    indices: np.ndarray,
    /,
    *,
    grid: LengthGrid | None = None,  # no padding to round
) -> Step:
    device = model.device
    scores = []
    for index in indices:
        x = torch.tensor(data.sequences[int(index)], dtype=torch.float32, device=device)[None]
        scores.append(model.head(model.features(x)))
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
            run=lambda m, d, i, /, *, grid=None: _padded(
                m, d, i, padding="pre", mask=False, grid=grid
            ),
        ),
        Technique(
            "pad-post",
            "post-padding, no mask (final state taken after the pads)",
            bucketed=False,
            exact=False,
            run=lambda m, d, i, /, *, grid=None: _padded(
                m, d, i, padding="post", mask=False, grid=grid
            ),
        ),
        Technique(
            "mask",
            "padding + masking (varlen exact, fused kernel)",
            bucketed=False,
            exact=True,
            run=lambda m, d, i, /, *, grid=None: _padded(
                m, d, i, padding="post", mask=True, grid=grid
            ),
        ),
        Technique(
            "bucket",
            "masking + length bucketing (varlen exact, fused kernel)",
            bucketed=True,
            exact=True,
            run=lambda m, d, i, /, *, grid=None: _padded(
                m, d, i, padding="post", mask=True, grid=grid
            ),
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


@dataclass(frozen=True)
class Timing:
    """Real steps trained and seconds spent by one technique on sample batches."""

    real_steps: int
    seconds: float
    batches: int = 0

    @property
    def speed(self) -> float:
        """Real steps per second."""
        return self.real_steps / self.seconds if self.seconds > 0 else 0.0


def choose_by_timing(
    timings: dict[str, Timing], *, preferred: str = "mask", margin: float = 0.2
) -> tuple[str, str]:
    """Pick the fastest technique from measured timings; return ``(name, reason)``.

    A pure planning function: ``preferred`` (random batches, the least biased) is kept unless
    another technique trains more than ``margin`` faster.

    Args:
        timings: Technique name -> its :class:`Timing` on the same sample of the data.
        preferred: Kept when no other is more than ``margin`` faster.
        margin: Relative speed-up needed to leave ``preferred``.

    Returns:
        The technique name and a one-line reason quoting the measured speeds.

    Raises:
        ValueError: If ``timings`` is empty.
    """
    if not timings:
        raise ValueError("choose_by_timing: timings must name at least one technique, got none.")
    fastest = max(timings, key=lambda name: timings[name].speed)
    chosen = fastest
    if preferred in timings and timings[fastest].speed <= (1 + margin) * timings[preferred].speed:
        chosen = preferred
    shown = ", ".join(f"{name} {timings[name].speed:,.0f}" for name in timings)
    return chosen, f"timed on the data: {shown} real steps/s, {chosen} chosen"


def time_techniques(
    model: SequenceModel,
    data: RaggedDataset,
    y: np.ndarray,
    candidates: tuple[str, ...] = ("mask", "bucket"),
    *,
    batch_size: int,
    batches: int = 3,
    rounds: int = 2,
    seed: int = 0,
    clock: Callable[[], float] = time.process_time,
) -> dict[str, Timing]:
    """Time forward and backward passes of each candidate on batches of the actual data.

    Candidates run interleaved (``rounds`` times ``batches`` batches each, after one warm-up
    batch); the weights do not change (no optimizer step; gradients are cleared).

    Args:
        model: The model to train.
        data: The training sequences.
        y: ``(B,)`` class ids or ``(B, K)`` targets.
        candidates: Technique names.
        batch_size: Sequences per batch.
        batches: Batches per candidate and round.
        rounds: Interleaved rounds.
        seed: Seed of the sampled batches.
        clock: Seconds; the default, the process's CPU time, makes the measurement (and
            what is planned from it) independent of other processes sharing the machine;
            ``time.perf_counter`` measures wall time instead.

    Returns:
        Name -> :class:`Timing`.
    """
    rng = np.random.default_rng(seed)
    n = len(data)
    plans: dict[str, list[np.ndarray]] = {}
    for name in candidates:
        if get_technique(name).bucketed:
            sampler = BucketBatchSampler(data.lengths, batch_size, shuffle=True, seed=seed)
            chosen = [np.asarray(b, dtype=np.int64) for b in sampler]
            picks = rng.permutation(len(chosen))[: batches + 1]
            plans[name] = [chosen[i] for i in picks]
        else:
            plans[name] = [
                rng.permutation(n)[:batch_size].astype(np.int64) for _ in range(batches + 1)
            ]
    totals = {name: [0, 0.0, 0] for name in candidates}
    was_training = model.training
    model.train()
    task = model.config.task
    for repeat in range(rounds):
        for name in candidates:
            technique = get_technique(name)
            for number, indices in enumerate(plans[name]):
                start = clock()
                step = technique.run(model, data, indices)
                if task == "classification":
                    target = torch.as_tensor(y[indices], dtype=torch.int64, device=model.device)
                    loss = torch.nn.functional.cross_entropy(step.scores, target)
                else:
                    target = torch.as_tensor(y[indices], dtype=torch.float32, device=model.device)
                    loss = torch.nn.functional.mse_loss(
                        step.scores, target.reshape(step.scores.shape)
                    )
                loss.backward()  # type: ignore[no-untyped-call]
                model.zero_grad(set_to_none=True)
                if repeat == 0 and number == 0:
                    continue  # the warm-up batch
                totals[name][0] += step.real_steps
                totals[name][1] += clock() - start
                totals[name][2] += 1
    model.train(was_training)
    return {
        name: Timing(int(real), float(seconds), int(count))
        for name, (real, seconds, count) in totals.items()
    }
