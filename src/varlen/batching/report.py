"""Padding report: how much compute a batching policy spends on padding, from lengths alone.

A padded batch of ``B`` sequences costs ``B * T_max`` steps of compute, of which only
``sum(T_i)`` are real. This module measures that waste for random batching and for the
length bucketing of :class:`~varlen.batching.BucketBatchSampler` (same plan, epoch 0),
without touching any data: it needs only the lengths and runs on NumPy alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from varlen._checks import check_choice, check_lengths_array
from varlen.batching._plan import IntArray, batch_costs, cut_budget, cut_fixed, length_order
from varlen.batching._validate import check_int, check_sizing

__all__ = [
    "PaddingReport",
    "choose_technique",
    "compare_policies",
    "format_reports",
    "padding_report",
]

Policy = Literal["random", "bucket"]
_POLICIES: tuple[Policy, Policy] = ("random", "bucket")


class PaddingReport(NamedTuple):
    """Padding cost of one batching policy over one length distribution.

    ``efficiency`` and ``speedup`` are 1.0 when nothing is computed (no steps at all).
    ``speedup`` assumes run time proportional to computed steps, which holds for padded
    recurrent layers with wide batches; per-batch overheads make it an upper bound.

    Attributes:
        policy: ``"random"`` (shuffle, then cut) or ``"bucket"`` (sort by length, then cut).
        batch_size: Sequences per batch, or ``None`` with a token budget.
        max_tokens: Budget of padded steps ``B * T_max`` per batch, or ``None``.
        num_sequences: ``n``, the number of lengths.
        num_batches: ``M``, the number of batches of the plan.
        real_steps: ``sum(T_i)``.
        computed_steps: ``sum over batches of B * T_max``.
        efficiency: ``real_steps / computed_steps``, in ``(0, 1]``.
        speedup: Computed steps of the baseline divided by ``computed_steps``: the baseline
            is random batching with the same sizing (:func:`padding_report`) or the first
            row (:func:`compare_policies`).
    """

    policy: str
    batch_size: int | None
    max_tokens: int | None
    num_sequences: int
    num_batches: int
    real_steps: int
    computed_steps: int
    efficiency: float
    speedup: float


def padding_report(
    lengths: Any,
    *,
    batch_size: int | None = None,
    max_tokens: int | None = None,
    policy: Policy = "bucket",
    seed: int = 0,
) -> PaddingReport:
    """Report the padding efficiency of a batching policy and its speed-up over random.

    The ``"bucket"`` plan is the one :class:`~varlen.batching.BucketBatchSampler` yields
    on one rank in epoch 0 (``drop_last=False``, no jitter); ``"random"`` shuffles the
    sequences and cuts them the same way (greedily under ``max_tokens``). ``n = 0`` and
    zero lengths are allowed.

    Args:
        lengths: ``(n,)`` integer sequence lengths ``T_i >= 0``.
        batch_size: Sequences per batch. Exactly one of ``batch_size`` and ``max_tokens``.
        max_tokens: Budget of padded steps ``B * T_max`` per batch.
        policy: ``"random"`` or ``"bucket"``.
        seed: Non-negative seed of the shuffle and of the tie-breaks.

    Returns:
        A :class:`PaddingReport`; ``speedup`` compares with random batching of the same
        ``batch_size`` or ``max_tokens`` (1.0 for ``policy="random"``).

    Raises:
        TypeError: If ``lengths`` is not integer or a size or ``seed`` is not an int.
        ValueError: If ``lengths`` is not 1-D or negative, both or neither of
            ``batch_size`` and ``max_tokens`` are given, a size is ``< 1``, ``seed < 0``,
            or ``policy`` is unknown.

    Example:
        >>> lengths = [1, 9, 2, 8]
        >>> padding_report(lengths, batch_size=2, policy="bucket").efficiency  # 20 / 22
        0.9090909090909091
    """
    where = "padding_report"
    checked = check_lengths_array(where, lengths)
    sizes = check_sizing(where, batch_size, max_tokens)
    check_choice(where, "policy", policy, _POLICIES)
    check_int(where, "seed", seed, minimum=0)
    computed = _computed_steps(checked, sizes, policy, seed)
    baseline = computed if policy == "random" else _computed_steps(checked, sizes, "random", seed)
    return _report(checked, sizes, policy, computed, baseline)


def compare_policies(
    lengths: Any, *, batch_size: int, max_tokens: int | None = None, seed: int = 0
) -> list[PaddingReport]:
    """Compare random batching, bucketed batching and bucketed token-budget batching.

    Args:
        lengths: ``(n,)`` integer sequence lengths ``T_i >= 0``.
        batch_size: Sequences per batch of the first two rows.
        max_tokens: Budget of the third row; defaults to ``batch_size * ceil(mean(T_i))``
            (at least 1), which holds about as many real steps per batch as ``batch_size``.
        seed: Non-negative seed of the shuffle and of the tie-breaks.

    Returns:
        Three reports, ``random``/``batch_size``, ``bucket``/``batch_size`` and
        ``bucket``/``max_tokens``, each with ``speedup`` relative to the first row.

    Raises:
        TypeError: If ``lengths`` is not integer or a size or ``seed`` is not an int.
        ValueError: As :func:`padding_report`.

    Example:
        >>> rows = compare_policies([1, 9, 2, 8, 3, 7], batch_size=2)
        >>> [(row.policy, row.max_tokens, round(row.efficiency, 2)) for row in rows]
        [('random', None, 0.62), ('bucket', None, 0.83), ('bucket', 10, 0.91)]
    """
    where = "compare_policies"
    checked = check_lengths_array(where, lengths)
    check_int(where, "batch_size", batch_size, minimum=1)
    if max_tokens is None:
        mean = float(checked.mean()) if checked.size else 0.0
        max_tokens = max(batch_size * math.ceil(mean), 1)
    check_int(where, "max_tokens", max_tokens, minimum=1)
    check_int(where, "seed", seed, minimum=0)
    plans: list[tuple[tuple[int | None, int | None], Policy]] = [
        ((batch_size, None), "random"),
        ((batch_size, None), "bucket"),
        ((None, max_tokens), "bucket"),
    ]
    computed = [_computed_steps(checked, sizes, policy, seed) for sizes, policy in plans]
    return [
        _report(checked, sizes, policy, steps, computed[0])
        for (sizes, policy), steps in zip(plans, computed, strict=True)
    ]


def format_reports(reports: Sequence[PaddingReport]) -> str:
    """Format reports as a plain-text table, one row per report.

    Args:
        reports: Reports from :func:`padding_report` or :func:`compare_policies`.

    Returns:
        The table, with a header line and no trailing newline.

    Example:
        >>> print(format_reports(compare_policies([1, 9, 2, 8, 3, 7], batch_size=2)))
        policy  batch_size  max_tokens  batches  real_steps  computed_steps  efficiency  speedup
        random           2           -        3          30              48       0.625     1.00
        bucket           2           -        3          30              36       0.833     1.33
        bucket           -          10        4          30              33       0.909     1.45
    """
    header = (
        "policy  batch_size  max_tokens  batches  real_steps  computed_steps  efficiency  speedup"
    )
    lines = [header]
    for row in reports:
        lines.append(
            f"{row.policy:<6}  {_dash(row.batch_size):>10}  {_dash(row.max_tokens):>10}  "
            f"{row.num_batches:>7}  {row.real_steps:>10}  {row.computed_steps:>14}  "
            f"{row.efficiency:>10.3f}  {row.speedup:>7.2f}"
        )
    return "\n".join(lines)


def _dash(value: int | None) -> str:
    """Return ``value`` as text, or ``-`` for ``None``."""
    return "-" if value is None else str(value)


def _plan_bounds(
    lengths: IntArray, sizes: tuple[int | None, int | None], policy: Policy, seed: int
) -> tuple[IntArray, IntArray]:
    """Return the plan ``(order, bounds)`` of one policy, as the sampler builds it."""
    rng = np.random.default_rng([seed, 0])
    if policy == "bucket":
        order = length_order(lengths, rng=rng)
    else:
        order = rng.permutation(lengths.shape[0]).astype(np.int64)
    batch_size, max_tokens = sizes
    if batch_size is not None:
        return order, cut_fixed(order.shape[0], batch_size)
    return order, cut_budget(lengths[order], int(max_tokens or 0))


def _computed_steps(
    lengths: IntArray, sizes: tuple[int | None, int | None], policy: Policy, seed: int
) -> tuple[int, int]:
    """Return ``(num_batches, computed_steps)`` of a policy's plan."""
    order, bounds = _plan_bounds(lengths, sizes, policy, seed)
    counts, maxima = batch_costs(lengths[order], bounds)
    return int(counts.shape[0]), int((counts * maxima).sum())


def _report(
    lengths: IntArray,
    sizes: tuple[int | None, int | None],
    policy: str,
    computed: tuple[int, int],
    baseline: tuple[int, int],
) -> PaddingReport:
    """Assemble a :class:`PaddingReport` from a plan's and its baseline's computed steps."""
    real = int(lengths.sum())
    num_batches, steps = computed
    return PaddingReport(
        policy=policy,
        batch_size=sizes[0],
        max_tokens=sizes[1],
        num_sequences=int(lengths.shape[0]),
        num_batches=num_batches,
        real_steps=real,
        computed_steps=steps,
        efficiency=real / steps if steps else 1.0,
        speedup=baseline[1] / steps if steps else 1.0,
    )


def choose_technique(lengths: np.ndarray, *, batch_size: int) -> tuple[str, str]:
    """Pick a technique from the length distribution; return ``(name, reason)``.

    Random batches waste ``1 - efficiency`` of the compute on pads. When that is small
    (efficiency >= 0.9), or bucketing would not raise it by 5 points (e.g. all data in one
    batch), ``mask`` keeps batches fully random; otherwise ``bucket`` groups similar lengths.

    Args:
        lengths: ``(n,)`` sequence lengths.
        batch_size: Sequences per batch.

    Returns:
        The technique name and a one-line reason with the measured efficiencies.
    """
    random = padding_report(lengths, batch_size=batch_size, policy="random")
    bucket = padding_report(lengths, batch_size=batch_size, policy="bucket")
    if random.efficiency >= 0.9:
        return "mask", (
            f"random batches of {batch_size} are already {random.efficiency:.0%} real steps: "
            "padding + masking, no bucketing needed"
        )
    if bucket.efficiency - random.efficiency < 0.05:
        return "mask", (
            f"bucketing would not help: random batches of {batch_size} are "
            f"{random.efficiency:.0%} real steps, bucketed {bucket.efficiency:.0%}: "
            "padding + masking"
        )
    return "bucket", (
        f"random batches of {batch_size} are only {random.efficiency:.0%} real steps, "
        f"bucketed {bucket.efficiency:.0%}: masking + length bucketing"
    )
