"""Plans of a training run made from the data alone: front-end pooling and a cost model.

Everything here is a pure function of the training lengths, the model's configuration and
tuning constants passed as parameters, so the same command on the same data plans the same
run on any machine, idle or busy (a plan made from timings taken during the run would not):

- :func:`front_end_pools`: how much the convolutional front-end shortens the series before
  the recurrent layer (a long series is pooled until its median length is about
  ``target_steps``);
- :func:`estimate_step_seconds`: the CPU seconds one optimizer step should take, from the
  work it does (multiply-adds of the convolutions and the recurrent layer, the recurrent
  layer's sequential time steps, a fixed cost per step) with constants measured once on a
  2-core x86 machine (:class:`CostModel`).

Timing the data on the machine instead stays available (``varlen train --planner timed``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from varlen.batching.report import padding_report
from varlen.training.models import ModelConfig
from varlen.training.techniques import get_technique

__all__ = ["CostModel", "estimate_step_seconds", "front_end_pools", "spread_pools"]


def front_end_pools(
    lengths: np.ndarray, layers: int, *, target_steps: int = 128, largest: int = 16
) -> tuple[int, ...]:
    """Pooling factor of each convolution block, chosen from the training lengths.

    The total factor is the smallest power of two (at most ``largest``) that brings the
    median length to ``target_steps`` or fewer; it is spread as factors of 2 over the blocks
    from the first on, the remainder on the last (16 over 3 blocks: ``(2, 2, 4)``). Short
    series are not pooled (all ones).

    Args:
        lengths: ``(n,)`` training sequence lengths.
        layers: Convolution blocks (0: returns ``()``).
        target_steps: Steps the recurrent layer should see of a median-length series.
        largest: Largest total factor.

    Returns:
        ``layers`` factors whose product is the total factor.

    Example:
        >>> front_end_pools(np.array([1460] * 4), 3)  # ACSF1: 1,460 steps -> 92
        (2, 2, 4)
        >>> front_end_pools(np.array([7, 29, 15]), 3)  # short series: no pooling
        (1, 1, 1)
    """
    if layers < 1:
        return ()
    median = float(np.median(lengths)) if len(lengths) else 0.0
    total = 1
    while total < largest and median / total > target_steps:
        total *= 2
    return spread_pools(total, layers)


def spread_pools(total: int, layers: int) -> tuple[int, ...]:
    """Spread a total pooling factor over ``layers`` blocks: factors of 2 from the first on.

    What is left when the factors of 2 run out (an odd part, or more than ``2 ** layers``)
    goes to the last block.

    Args:
        total: The product of the factors, ``>= 1``.
        layers: Blocks (0: returns ``()``; ``total`` must then be 1).

    Returns:
        ``layers`` factors whose product is ``total``.

    Raises:
        ValueError: If ``total < 1``, or ``total > 1`` with no block.

    Example:
        >>> spread_pools(16, 3), spread_pools(6, 3), spread_pools(4, 1)
        ((2, 2, 4), (2, 1, 3), (4,))
    """
    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        raise ValueError(f"spread_pools: total must be an int >= 1, got {total!r}.")
    if layers < 1:
        if total > 1:
            raise ValueError(
                f"spread_pools: a pooling factor ({total}) needs convolution blocks, got 0. "
                "Use at least one convolution, or no pooling."
            )
        return ()
    pools = [1] * layers
    for block in range(layers - 1):
        if total % 2:
            break
        pools[block], total = 2, total // 2
    pools[-1] *= total
    return tuple(pools)


class CostModel(NamedTuple):
    """Constants of :func:`estimate_step_seconds` (CPU seconds, one thread).

    Measured on this project's 2-core x86 machine with torch 2.13 (forward, backward and Adam
    of the LSTM-FCN models of :mod:`varlen.training.models`, lengths 20-2,000, batches of 32):
    what matters for a plan is that the same data gives the same plan, and that the estimate
    is near the truth on the machines the defaults are meant for.

    Attributes:
        per_step: Fixed seconds per optimizer step (collate, optimizer, Python).
        per_time_step: Seconds per sequential recurrent time step, per layer and direction.
        per_gmac: Seconds per 10^9 multiply-adds of forward work (backward included).
    """

    per_step: float = 1.5e-3
    per_time_step: float = 1e-5
    per_gmac: float = 0.19


def _forward_macs_per_step(config: ModelConfig) -> tuple[float, float]:
    """Forward multiply-adds per input step of one sequence: front-end and recurrent layer."""
    features = config.input_width
    sizes = [features, *config.conv_channels]
    pools = config.conv_pools or (1,) * len(config.conv_channels)
    front, stride = 0.0, 1
    for i, kernel in enumerate(config.conv_kernels):
        front += sizes[i] * sizes[i + 1] * kernel / stride
        stride *= pools[i]
    directions = 2 if config.bidirectional else 1
    hidden = config.hidden_size
    rnn, width = 0.0, sizes[-1]
    for _ in range(config.num_layers):
        rnn += directions * 4 * hidden * (width + hidden) / stride
        width = directions * hidden
    return front, rnn


def estimate_step_seconds(
    config: ModelConfig,
    lengths: np.ndarray,
    *,
    batch_size: int,
    technique: str,
    cost: CostModel | None = None,
) -> float:
    """CPU seconds one optimizer step should take on batches of these lengths.

    A pure function: the padded work per batch comes from the plan of
    :func:`varlen.batching.padding_report` (bucketed or random, as ``technique`` batches).

    Args:
        config: The model.
        lengths: ``(n,)`` training sequence lengths.
        batch_size: Sequences per batch.
        technique: The training technique (its batching decides the padding).
        cost: The constants (``None``: :class:`CostModel`'s defaults).

    Returns:
        Estimated seconds per optimizer step (``cost.per_step`` for empty data).
    """
    cost = CostModel() if cost is None else cost
    if len(lengths) == 0 or int(np.max(lengths)) == 0:
        return cost.per_step
    bucketed = get_technique(technique).bucketed
    report = padding_report(
        lengths, batch_size=batch_size, policy="bucket" if bucketed else "random"
    )
    padded_per_batch = report.computed_steps / max(report.num_batches, 1)  # B * T_max
    rows_per_batch = report.num_sequences / max(report.num_batches, 1)
    sequential = padded_per_batch / max(rows_per_batch, 1.0)  # T_max of a mean batch
    front, rnn = _forward_macs_per_step(config)
    factor = math.prod(config.conv_pools) if config.conv_pools else 1
    directions = 2 if config.bidirectional else 1
    recurrent_steps = config.num_layers * directions * math.ceil(sequential / factor)
    gmacs = (front + rnn) * padded_per_batch / 1e9
    return cost.per_step + cost.per_time_step * recurrent_steps + cost.per_gmac * gmacs
