"""Planning a ``varlen train`` run.

The task's defaults, the validation share, the technique, the step budget and the loop's
:class:`~varlen.training.TrainConfig`.

Pure planning functions whose tuning is a parameter. What ``auto`` picks is one function,
:func:`choose_auto`, with its candidates in :func:`auto_candidates`: swap them to change the
rule without touching the rest of the plan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from varlen.batching.report import choose_technique
from varlen.cli._common import CommandError
from varlen.cli._train_options import TrainOptions
from varlen.data.augment import Augmentation
from varlen.training.budget import front_end_pools, spread_pools
from varlen.training.loop import PatienceUnit, Schedule, TrainConfig
from varlen.training.models import Pooling
from varlen.training.techniques import Timing, choose_by_timing

__all__ = [
    "BLOCK_BYTES",
    "PER_SEQUENCE",
    "PER_STEP",
    "Plan",
    "TaskDefaults",
    "auto_candidates",
    "choose_auto",
    "conv_kernels",
    "conv_pools",
    "estimated_choice",
    "plan_augment",
    "plan_block_steps",
    "plan_budget",
    "plan_levels",
    "plan_pooling",
    "plan_steps",
    "plan_validation",
    "resolve",
    "train_config",
]

TaskKind = Literal["sequence", "step"]

BLOCK_BYTES = 8 << 20
"""Bytes of float64 values per block of a streaming pass over the data (a tuning knob)."""


def plan_block_steps(num_features: int, *, block_bytes: int = BLOCK_BYTES) -> int:
    """Steps per block of a streaming pass (standardizer, digest): ``block_bytes`` of float64.

    The passes hold one block at a time (read, standardized, cast), so this bounds their
    memory whatever the data's size; the statistics depend on it only through rounding, the
    same in memory and from a store.

    Args:
        num_features: ``F``.
        block_bytes: Bytes of float64 values per block.

    Returns:
        ``max(1, block_bytes // (8 F))``.

    Example:
        >>> plan_block_steps(8)
        131072
    """
    return max(1, block_bytes // (8 * max(num_features, 1)))


@dataclass(frozen=True)
class TaskDefaults:
    """What an option left out (``None``) means for a kind of task.

    Args:
        steps: The budget in optimizer steps, or ``None``: ``epochs`` epochs.
        epochs: Epochs without a step budget (``None`` with a step budget).
        schedule: The learning rate after the warm-up.
        warmup_divisor: Warm-up of the run's steps divided by this, at least 1 (``None``: none).
        conv_layers: Masked convolutions in front of the recurrent layer.
        series_norm: Feed each series standardized by its own statistics too.
        bidirectional: Run both directions.
        patience_epochs: Patience in epochs, or ``None``: half the run's steps.
    """

    steps: int | None
    epochs: int | None
    schedule: Schedule
    warmup_divisor: int | None
    conv_layers: int
    series_norm: bool
    bidirectional: bool
    patience_epochs: int | None


PER_SEQUENCE = TaskDefaults(
    steps=2000,
    epochs=None,
    schedule="cosine",
    warmup_divisor=20,
    conv_layers=3,
    series_norm=True,
    bidirectional=True,
    patience_epochs=None,
)
"""The defaults of a per-sequence task: a step budget, warm-up then cosine decay, LSTM-FCN."""

PER_STEP = TaskDefaults(
    steps=None,
    epochs=60,
    schedule="constant",
    warmup_divisor=None,
    conv_layers=0,
    series_norm=False,
    bidirectional=False,
    patience_epochs=15,
)
"""The defaults of a per-step task: 60 epochs at a constant rate, patience 15 epochs."""


def resolve(options: TrainOptions, defaults: TaskDefaults) -> TrainOptions:
    """Fill the options left to the task (``None``) with its defaults.

    Args:
        options: The options as given (or recorded).
        defaults: The task's defaults.

    Returns:
        The options with ``steps`` (or ``epochs``), ``schedule``, ``conv_layers``,
        ``series_norm`` and ``bidirectional`` set.
    """
    epochs, steps = options.epochs, options.steps
    if epochs is None and steps is None:
        steps, epochs = defaults.steps, defaults.epochs
    return dataclasses.replace(
        options,
        steps=steps,
        epochs=epochs,
        schedule=options.schedule if options.schedule is not None else defaults.schedule,
        conv_layers=(
            options.conv_layers if options.conv_layers is not None else defaults.conv_layers
        ),
        series_norm=(
            options.series_norm if options.series_norm is not None else defaults.series_norm
        ),
        bidirectional=(
            options.bidirectional if options.bidirectional is not None else defaults.bidirectional
        ),
    )


def plan_validation(
    y: np.ndarray,
    fraction: float,
    *,
    classification: bool,
    min_per_class: int = 3,
    min_total: int = 10,
) -> tuple[float, str]:
    """Decide the validation share: ``fraction``, or 0 when the split is too small to select on.

    A pure planning function. A stratified split puts ``round(fraction * n_c)`` series of
    class ``c`` in validation; with fewer than ``min_per_class`` for some class (or fewer than
    ``min_total`` series for regression) the validation loss is too noisy to stop early or to
    pick an epoch on, and those series are worth more for training. Then the whole data is
    trained on for the full budget.

    Args:
        y: ``(n,)`` encoded targets.
        fraction: The asked validation share.
        classification: Whether ``y`` holds class ids.
        min_per_class: Fewest validation series per class to select on.
        min_total: Fewest validation series to select on (regression).

    Returns:
        The share to use and a warning ('' when ``fraction`` is kept).
    """
    if fraction == 0:
        return 0.0, ""
    if classification:
        _, counts = np.unique(y, return_counts=True)
        smallest = min(round(fraction * int(c)) for c in counts) if len(counts) else 0
        if smallest >= min_per_class:
            return fraction, ""
        why = f"{smallest} series of some class (fewer than {min_per_class})"
    else:
        size = round(fraction * len(y))
        if size >= min_total:
            return fraction, ""
        why = f"{size} series (fewer than {min_total})"
    return 0.0, (
        f"a validation split of {fraction:g} holds only {why}: too few to select on. "
        "Training on all the data for the whole step budget instead, keeping the epoch of "
        "lowest training loss (pass --val-fraction 0 to silence this)."
    )


def plan_augment(
    y: np.ndarray,
    lengths: np.ndarray,
    *,
    augment: bool | None,
    classification: bool,
    kind: TaskKind,
    per_class: int = 20,
    spread: float = 1.25,
) -> tuple[bool, str]:
    """Whether to augment the training sequences (``--augment``), and why.

    A pure planning function. Few series a class are learned by heart long before a step
    budget is spent (the training loss reaches ~0 while test accuracy stalls); crops, warps
    and gains of the real steps give the model new series of the same class in every batch.
    A class must not change under them. The data says whether durations may vary: when the
    training series already differ in length (the 90th percentile at least ``spread`` times
    the 10th), a class spans several durations and windows; when they all have about one
    length (a fixed window at a fixed rate, e.g. a day of readings), where and how long
    things happen may be what tells the classes apart, and a warp or a crop would erase it
    (measured: ACSF1, 1,460 steps each, 0.85 without, 0.49 with). Regression is left alone (a
    warp changes a frequency, a gain an amplitude). So, left out, augmentation is on for
    classifiers with fewer than ``per_class`` training series a class on average whose
    lengths vary; off otherwise. Per-step tasks never augment.

    Args:
        y: ``(n,)`` encoded training targets.
        lengths: ``(n,)`` training lengths.
        augment: ``--augment`` as given (``None``: from the data).
        classification: Whether ``y`` holds class ids.
        kind: ``"sequence"`` or ``"step"``.
        per_class: Average training series a class below which augmentation is on.
        spread: Ratio of the 90th to the 10th percentile of the lengths from which they vary.

    Returns:
        ``(on, reason)``.

    Example:
        >>> y, lengths = np.repeat(np.arange(10), 5), np.arange(30, 80)
        >>> plan_augment(y, lengths, augment=None, classification=True, kind="sequence")
        (True, 'on (5 training series a class on average, fewer than 20; lengths vary)')
    """
    if kind == "step":
        return False, "off (per-step targets would move with the steps)"
    if augment is not None:
        return augment, f"{'on' if augment else 'off'} (--{'' if augment else 'no-'}augment)"
    if not classification:
        return False, "off (regression: a warp or a gain may change the target)"
    classes = len(np.unique(y))
    average = len(y) / max(classes, 1)
    if average >= per_class:
        return False, (
            f"off ({average:.3g} training series a class on average, {per_class} or more)"
        )
    low, high = np.percentile(lengths, [10, 90]) if len(lengths) else (0.0, 0.0)
    if high < spread * max(low, 1.0):
        return False, (
            f"off (lengths about equal, {low:.0f}-{high:.0f} steps from the 10th to the 90th "
            "percentile: durations may tell the classes apart)"
        )
    return True, (
        f"on ({average:.3g} training series a class on average, fewer than {per_class}; "
        "lengths vary)"
    )


def plan_levels(
    y: np.ndarray,
    lengths: np.ndarray,
    *,
    levels: bool | None,
    num_features: int,
    series_norm: bool,
    classification: bool,
    kind: TaskKind,
    per_class: int = 20,
    spread: float = 1.25,
) -> tuple[bool, str]:
    """Whether the model reads each series' values beside their standardized view (``--levels``).

    A pure planning function. A series' level, its offset and gain, tells where it was
    recorded (the sensor, its placement, the person) as much as what it records. With many
    series a class a model learns which levels go with a class; with few it can tell the
    training series apart by their levels alone, which says nothing of new ones (measured:
    the gesture-like set, 5 series a class, one channel: 0.767 / 0.677 / 0.767 on seeds 0 /
    1 / 2 with the levels, 0.840 / 0.857 / 0.877 without; its 1-NN 0.770). So, left out, the
    levels are dropped (the model reads each series standardized by its own mean and std,
    what 1-NN with z-normalized distance compares) for a one-channel classifier whose
    training series would be augmented by :func:`plan_augment`'s rule: fewer than
    ``per_class`` a class on average, lengths that vary (series cut around an event, from
    disparate sources). They are kept otherwise: with several channels their levels
    relative to each other (the axis gravity falls on) may tell the classes apart, and
    standardizing each channel alone would lose that; a regressor's target may be a level;
    without ``series_norm`` there is no standardized view; a per-step model keeps them.

    Args:
        y: ``(n,)`` encoded training targets.
        lengths: ``(n,)`` training lengths.
        levels: ``--levels`` as given (``None``: from the data).
        num_features: ``F``, channels per step.
        series_norm: Whether the model reads each series standardized (``--series-norm``).
        classification: Whether ``y`` holds class ids.
        kind: ``"sequence"`` or ``"step"``.
        per_class: As in :func:`plan_augment`.
        spread: As in :func:`plan_augment`.

    Returns:
        ``(levels, reason)``.

    Raises:
        CommandError: If ``--no-levels`` is given without the standardized view.

    Example:
        >>> y, lengths = np.repeat(np.arange(10), 5), np.arange(30, 80)
        >>> plan_levels(y, lengths, levels=None, num_features=1, series_norm=True,
        ...             classification=True, kind="sequence")[0]
        False
    """
    if levels is False and not series_norm:
        raise CommandError(
            "--no-levels feeds each series standardized only, which needs the standardized "
            "view: got --no-series-norm (the default per step). Add --series-norm, or drop "
            "--no-levels."
        )
    if levels is not None:
        return levels, f"{'kept' if levels else 'dropped'} (--{'' if levels else 'no-'}levels)"
    if kind == "step":
        return True, "kept (per-step)"
    if not series_norm:
        return True, "kept (no standardized view: --no-series-norm)"
    if not classification:
        return True, "kept (a regressor's target may be a level)"
    if num_features != 1:
        return True, (
            f"kept ({num_features} channels: their levels relative to each other may tell the "
            "classes apart)"
        )
    few, why = plan_augment(
        y,
        lengths,
        augment=None,
        classification=classification,
        kind=kind,
        per_class=per_class,
        spread=spread,
    )
    if not few:
        return True, f"kept (not few series a class of varying lengths; augment: {why})"
    return False, (
        f"dropped: each series standardized only (one channel, {why.removeprefix('on (')}"
    )


def plan_pooling(
    lengths: np.ndarray,
    *,
    pooling: Pooling | None,
    kind: TaskKind,
    classification: bool = True,
    long_steps: int = 128,
    spread: float = 1.25,
) -> tuple[Pooling, str]:
    """The readout over the recurrent layer's outputs (``--pooling``), and why.

    A pure planning function. Series of varying lengths were usually cut around what they
    record (a gesture, an utterance, a cycle): the whole series is the event, and its mean
    output sums it up. Long series of one length are fixed windows (a day of readings, a
    recording of a set duration): what tells the class apart may fill a short stretch of
    the window (an appliance switching on), which a mean over hundreds of steps dilutes and
    a max over the real steps keeps (measured: ACSF1, 1,460 steps each, 0.890 / 0.940 /
    0.900 on seeds 0 / 1 / 2 with max against 0.850 / 0.890 / 0.870 with mean; while the
    max on gesture-like series of 34-360 steps lowered them from 0.773 to 0.690). So, left
    out, the readout is the max for series about one length (the 90th percentile under
    ``spread`` times the 10th, as in :func:`plan_augment`) longer than ``long_steps`` at the
    median (the length above which the front-end pools,
    :func:`~varlen.training.budget.front_end_pools`), the mean otherwise. A per-step model
    has no readout (``"mean"``, unused, as it always recorded).

    Args:
        lengths: ``(n,)`` training lengths.
        pooling: ``--pooling`` as given (``None``: from the data).
        kind: ``"sequence"`` or ``"step"``.
        classification: Whether the model classifies (a regressor keeps the mean: the max
            was measured on classifiers only).
        long_steps: Median length above which the series are long.
        spread: Ratio of the 90th to the 10th percentile of the lengths from which they vary.

    Returns:
        ``(pooling, reason)``.

    Example:
        >>> plan_pooling(np.full(4, 1460), pooling=None, kind="sequence")[0]
        'max'
        >>> plan_pooling(np.arange(100, 1300), pooling=None, kind="sequence")[0]  # lengths vary
        'mean'
        >>> plan_pooling(np.array([7, 29, 15]), pooling=None, kind="sequence")[0]  # short
        'mean'
    """
    if kind == "step":
        return "mean", "none (an output at every step)"
    if pooling is not None:
        return pooling, f"{pooling} over real steps (--pooling)"
    if not classification:  # a regressor's target may be a total or a level, not a peak
        return "mean", "mean over real steps (a regressor; the max readout is for classifiers)"
    median = float(np.median(lengths)) if len(lengths) else 0.0
    if median <= long_steps:
        return "mean", (
            f"mean over real steps (median length {median:.0f} steps, {long_steps} or fewer)"
        )
    low, high = np.percentile(lengths, [10, 90])
    if high >= spread * max(low, 1.0):
        return "mean", (
            f"mean over real steps (lengths vary, {low:.0f}-{high:.0f} steps from the 10th to "
            "the 90th percentile)"
        )
    return "max", (
        f"max over real steps (long windows of about one length, {low:.0f}-{high:.0f} steps "
        f"from the 10th to the 90th percentile, median over {long_steps})"
    )


class Plan(NamedTuple):
    """The technique and the step budget of a run, and why."""

    technique: str
    reason: str
    steps: int
    budget_reason: str


def plan_steps(
    steps: int,
    time_budget: float | None,
    seconds_per_step: float | None,
    *,
    min_steps: int = 50,
    how: str = "measured",
) -> tuple[int, str]:
    """The run's optimizer steps: ``steps``, or fewer to fit ``time_budget``; and why.

    A pure planning function: long series make each step slow, so a budget in steps alone
    could run for hours; planning the steps (rather than cutting the run when time is up)
    keeps the learning-rate schedule whole.

    Args:
        steps: The budget in optimizer steps.
        time_budget: Seconds the training should take, or ``None`` (no time budget).
        seconds_per_step: Seconds of one step, or ``None`` (not known).
        min_steps: Fewest steps planned, whatever the time budget.
        how: How ``seconds_per_step`` was found (``"measured"``, ``"estimated"``), for the
            reason.

    Returns:
        The planned steps and a one-line reason.
    """
    if time_budget is None or seconds_per_step is None or seconds_per_step <= 0:
        return steps, f"{steps} optimizer steps"
    fits = int(time_budget / seconds_per_step)
    if fits >= steps:
        return steps, (
            f"{steps} optimizer steps (about {steps * seconds_per_step:.0f} CPU s at the {how} "
            f"{seconds_per_step * 1000:.0f} ms a step)"
        )
    planned = max(fits, min(min_steps, steps))
    return planned, (
        f"{planned} optimizer steps: {steps} would take about {steps * seconds_per_step:.0f} CPU "
        f"s at the {how} {seconds_per_step * 1000:.0f} ms a step, over the --time-budget of "
        f"{time_budget:g} s"
    )


def auto_candidates(kind: TaskKind) -> tuple[str, ...]:
    """The techniques ``auto`` times for a kind of task (the first is the fallback).

    Args:
        kind: ``"sequence"`` or ``"step"``.

    Returns:
        Technique names.
    """
    return ("mask", "bucket") if kind == "sequence" else ("bucket",)


def estimated_choice(
    estimates: Mapping[str, float],
    *,
    steps: int | None = None,
    time_budget: float | None = None,
    preferred: str = "mask",
    margin: float = 0.2,
) -> tuple[str, str]:
    """What ``auto`` picks from estimates: ``preferred`` unless another is faster where it counts.

    ``preferred`` is left only for a candidate clearly faster, and only when the speed
    changes the plan.

    Speed only buys something when the time budget binds: if ``steps`` steps of ``preferred``
    fit ``time_budget`` at its estimated speed, a faster technique would train the same steps,
    so ``preferred`` (mask: random batches that mix lengths) is kept. Otherwise (the budget
    binds, or there is none) the timed rule
    (:func:`varlen.training.techniques.choose_by_timing`) is applied to the estimates:
    another candidate only when it is estimated more than ``margin`` faster.

    Args:
        estimates: Candidate -> estimated CPU seconds per optimizer step.
        steps: The step budget (``None``: a budget in epochs; no time budget applies).
        time_budget: The time budget in CPU seconds (``None``: none).
        preferred: Kept unless another is more than ``margin`` faster and the budget binds.
        margin: Relative speed-up needed to leave ``preferred``.

    Returns:
        ``(technique, reason)``.

    Example:
        >>> estimated_choice({"mask": 0.012, "bucket": 0.009})[0]  # 33% faster, no budget
        'bucket'
        >>> estimated_choice({"mask": 0.012, "bucket": 0.009}, steps=2000, time_budget=300)[0]
        'mask'
        >>> estimated_choice({"mask": 0.012, "bucket": 0.011})[0]  # within the margin
        'mask'
    """
    fastest = min(estimates, key=lambda name: estimates[name])
    shown = ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in estimates.items())
    if (
        preferred in estimates
        and steps is not None
        and time_budget is not None
        and steps * estimates[preferred] <= time_budget
    ):
        return preferred, (
            f"{preferred}'s {steps} steps fit the --time-budget of {time_budget:g} s at the "
            f"estimated speed ({shown} a step): {preferred} kept"
        )
    if preferred in estimates and estimates[preferred] <= (1 + margin) * estimates[fastest]:
        if fastest == preferred:
            return preferred, f"estimated fastest ({shown} a step)"
        return preferred, (
            f"{fastest} is estimated at most {margin:.0%} faster ({shown} a step): {preferred} kept"
        )
    return fastest, f"estimated fastest ({shown} a step)"


def choose_auto(
    kind: TaskKind,
    *,
    timings: Mapping[str, Timing] | None,
    lengths: np.ndarray,
    batch_size: int,
    estimates: Mapping[str, float] | None = None,
    steps: int | None = None,
    time_budget: float | None = None,
) -> tuple[str, str]:
    """What ``--technique auto`` picks, and why: the one rule, in one place.

    Per sequence: the faster of the timed candidates (mask kept unless another is more than
    20% faster), or else from the cost model's estimates (``--planner cost``, see
    :func:`estimated_choice`: mask kept when its steps fit the time budget); with neither
    (under ``torchrun`` with ``--planner timed``, or without data) the padding of random
    batches decides. Per step: ``bucket``.

    Args:
        kind: ``"sequence"`` or ``"step"``.
        timings: The candidates' timings on the data, or ``None`` (not timed).
        lengths: ``(B,)`` training lengths.
        batch_size: Sequences per batch.
        estimates: The candidates' estimated seconds per step
            (:func:`varlen.training.budget.estimate_step_seconds`), or ``None``.
        steps: The step budget (``None``: a budget in epochs).
        time_budget: The time budget in CPU seconds (``None``: none).

    Returns:
        ``(technique, reason)``, the reason starting with ``auto:``.
    """
    if kind == "step":
        return "bucket", "auto: per-step models train on length-bucketed padded batches"
    if timings is not None:
        name, reason = choose_by_timing(dict(timings))
    elif estimates:
        name, reason = estimated_choice(estimates, steps=steps, time_budget=time_budget)
    else:
        name, reason = choose_technique(lengths, batch_size=batch_size)
    return name, f"auto: {reason}"


def plan_budget(
    options: TrainOptions,
    *,
    train_size: int,
    technique: str,
    timings: Mapping[str, Timing] | None,
    estimate: float | None = None,
) -> tuple[int, str]:
    """The run's optimizer steps and why: its epochs' batches, or its step budget.

    Args:
        options: The resolved options (:func:`resolve`).
        train_size: Training sequences.
        technique: The chosen technique.
        timings: Timings on the data (``None``: not timed).
        estimate: Without timings, the cost model's seconds per step of ``technique``
            (``None``: not estimated, no time budget applies).

    Returns:
        The planned steps and a one-line reason.
    """
    if options.epochs is not None:
        per_epoch = max(-(-train_size // options.batch_size), 1)
        return options.epochs * per_epoch, f"{options.epochs} epochs of {per_epoch} steps"
    if options.steps is None:
        raise ValueError("varlen bug: plan_budget needs resolved options")
    if timings is None and estimate is not None:
        return plan_steps(options.steps, options.time_budget, estimate, how="estimated")
    timing = None if timings is None else timings.get(technique)
    per_step = timing.seconds / timing.batches if timing is not None and timing.batches else None
    return plan_steps(options.steps, options.time_budget, per_step)


def conv_kernels(layers: int) -> tuple[int, ...]:
    """Kernel sizes of ``layers`` convolutions: 7, 5, 3, 3, ... (LSTM-FCN uses 8, 5, 3).

    Args:
        layers: Number of convolutions.

    Returns:
        Odd kernel sizes.
    """
    return tuple(max(7 - 2 * i, 3) for i in range(layers))


def conv_pools(pool: int | None, layers: int, lengths: np.ndarray) -> tuple[int, ...]:
    """Pooling factors of the front-end's blocks: ``--pool`` spread, or chosen from the lengths.

    Args:
        pool: The total factor (``--pool``), or ``None``: from the lengths.
        layers: Convolution blocks.
        lengths: ``(n,)`` training lengths.

    Returns:
        One factor per block (see :func:`varlen.training.budget.front_end_pools`), or ``()``
        when nothing is pooled (a total factor of 1).

    Raises:
        CommandError: If ``--pool`` is more than 1 without convolutions.
    """
    if pool is None:
        pools = front_end_pools(lengths, layers)
    else:
        try:
            pools = spread_pools(pool, layers)
        except ValueError:
            raise CommandError(
                f"--pool {pool} needs the convolutional front-end, got --conv-layers 0. "
                "Pass --conv-layers 1 or more, or --pool 1."
            ) from None
    return pools if any(factor > 1 for factor in pools) else ()


def _patience(
    options: TrainOptions, steps: int, defaults: TaskDefaults
) -> tuple[int | None, PatienceUnit]:
    if options.patience is not None:
        return options.patience or None, "steps"
    if defaults.patience_epochs is not None:
        return defaults.patience_epochs, "epochs"
    return steps // 2 or None, "steps"


def train_config(
    options: TrainOptions,
    technique: str,
    steps: int,
    defaults: TaskDefaults,
    *,
    augment: bool = False,
) -> TrainConfig:
    """The loop's :class:`TrainConfig` for resolved options; the same for every task.

    Args:
        options: The resolved options (:func:`resolve`).
        technique: The chosen technique.
        steps: The planned optimizer steps.
        defaults: The task's defaults (warm-up, default patience).
        augment: Whether to augment (:func:`plan_augment`): the default
            :class:`~varlen.data.augment.Augmentation`.

    Returns:
        A budget in steps (or epochs), warm-up then the schedule, patience in steps (or the
        task's default in epochs).
    """
    patience, unit = _patience(options, steps, defaults)
    if options.warmup is not None and options.warmup > steps:
        raise CommandError(
            f"--warmup {options.warmup} is longer than the run's {steps} optimizer steps: the "
            "learning rate would never reach --lr. Give --warmup <= "
            f"{steps}, or leave it out (the task's default)."
        )
    warmup = options.warmup
    if warmup is None:
        divisor = defaults.warmup_divisor
        warmup = 0 if divisor is None else max(steps // divisor, 1)
    schedule: Schedule = options.schedule or defaults.schedule
    return TrainConfig(
        technique=technique,
        epochs=options.epochs if options.epochs is not None else 10**9,
        max_steps=None if options.epochs is not None else steps,
        batch_size=options.batch_size,
        lr=options.lr,
        patience=patience,
        patience_unit=unit,
        schedule=schedule,
        weight_decay=options.weight_decay,
        warmup_steps=warmup,
        time_limit=options.time_limit,
        seed=options.seed,
        select=options.select,
        augment=Augmentation() if augment else None,
    )
