"""``varlen train DATA``: train a classifier or regressor on your own variable-length data.

Steps: read the data (``.ts``, or a long-format CSV/Parquet table with ``--id --order
--features --target``), check the targets fit the task (inferred: labels -> classification,
floating numbers -> regression), split a validation set (stratified by class; none, with a
warning, when it would be too small to select on), fit the standardizer on the training split's
real steps only, plan the run (``auto`` times mask and bucket on the data and says why; the step
budget shrinks to fit ``--time-budget`` at the timed speed), train with warm-up and cosine decay,
early stopping counted in steps and an atomic checkpoint at most every 10 s (``--resume``
continues an interrupted run exactly, with the options recorded in ``run.json``), report, and
save the model directory (see :mod:`varlen.training.artifacts`).

Under ``torchrun --nproc-per-node N -m varlen.cli train ...`` every process runs this command;
the process group is initialised from the environment (gloo on CPU), each rank trains on its
shard of every epoch's batches with gradients averaged, and only rank 0 writes files and prints.

One run owns ``--out`` at a time: rank 0 holds the folder's lock (:mod:`varlen._lock`) for the
whole run, and a second run on the same folder stops at once with exit code 2 and one line
naming the folder and the owner's pid. The lock dies with its process (``kill -9`` included),
so a killed run never blocks the next one or its ``--resume``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.distributed as dist

from varlen._atomic import remove_stale_temporaries, write_text
from varlen._checks import check_choice
from varlen._lock import FolderBusyError, folder_lock
from varlen.batching.dataset import RaggedDataset
from varlen.cli._common import (
    CommandError,
    _read_toml,
    add_table_options,
    build_config,
    count,
    load_data,
    progress_enabled,
    say,
    table_options,
)
from varlen.cli._targets import Targets, TaskChoice, encode_targets, normalize_inputs
from varlen.data.normalize import Standardizer
from varlen.data.ragged import Ragged
from varlen.training.artifacts import save_model
from varlen.training.budget import estimate_step_seconds, front_end_pools, spread_pools
from varlen.training.loop import (
    FitResult,
    Schedule,
    Selection,
    TrainConfig,
    choose_technique,
    evaluate,
    fit,
    predict_scores,
    split_validation,
)
from varlen.training.models import Cell, ModelConfig, Pooling, SequenceModel
from varlen.training.techniques import (
    TECHNIQUES,
    choose_by_timing,
    get_technique,
    time_techniques,
)

__all__ = ["TrainOptions", "add_arguments", "run"]

CHECKPOINT_FILE = "checkpoint.pt"
RUN_FILE = "run.json"
_TASKS: tuple[TaskChoice, ...] = ("auto", "classification", "regression")
Planner = Literal["cost", "timed"]
_PLANNERS: tuple[Planner, ...] = ("cost", "timed")
_MINIMA = {
    "steps": 1,
    "epochs": 1,
    "warmup": 0,
    "conv_layers": 0,
    "conv_channels": 1,
    "threads": 1,
    "batch_size": 1,
    "hidden_size": 1,
    "num_layers": 1,
    "patience": 0,
    "seed": 0,
    "horizon": 0,
    "pool": 1,
}


@dataclass(frozen=True)
class TrainOptions:
    """Everything ``varlen train`` takes (flags, or keys of ``--config file.toml``).

    The defaults are meant to learn on data never seen before, short multichannel series and
    long single-channel ones alike: a budget in optimizer steps (not epochs, so 40 series get
    as many updates as 4,000), linear warm-up then cosine decay of the learning rate, an
    LSTM-FCN style model (masked convolutions in front of a bidirectional LSTM, mean pooling
    over real steps) and early stopping counted in steps.

    Args:
        data: The training file.
        test: A test file, scored at the end (never used for training or selection).
        out: The model directory (also holds ``checkpoint.pt`` and ``run.json``).
        task: ``"auto"``, ``"classification"`` or ``"regression"``.
        technique: ``"auto"`` or a name of :data:`varlen.training.techniques.TECHNIQUES`.
        steps: Training budget in optimizer steps (rounded up to whole epochs).
        epochs: Train this many epochs instead of ``steps`` (``None``: from ``steps``).
        time_budget: Plan fewer than ``steps`` steps when they would take longer than this
            many CPU seconds (``None``: no time budget), at the speed ``planner`` gives.
        planner: How ``auto`` and the time budget are decided: ``"cost"`` (default) from the
            data alone (lengths, sizes, the model: a deterministic cost model, so the same
            command plans the same run on any machine load), or ``"timed"``: mask and bucket
            timed on the data in CPU time (closer to this machine, but two runs may differ).
        time_limit: Stop after the epoch that ends past this many seconds (``None``: none).
        batch_size: Sequences per batch.
        lr: Peak Adam learning rate.
        weight_decay: Adam weight decay.
        schedule: ``"cosine"`` decay of the learning rate to zero over the run, or
            ``"constant"``.
        warmup: Optimizer steps of linear warm-up (``None``: 5% of the run's steps).
        hidden_size: ``H``.
        num_layers: ``L``.
        bidirectional: ``D = 2`` (``None``: on for per-sequence models, off for per-step ones).
        cell: ``"lstm"`` or ``"gru"``.
        pooling: ``"last"``, ``"mean"`` or ``"max"``.
        dropout: Dropout between layers and before the head.
        conv_layers: Masked convolutions in front of the recurrent layer (0: none); kernel
            sizes 7, 5, 3, 3, ...
        conv_channels: Channels of each convolution.
        pool: Total factor by which the front-end's exact max pooling shortens each series
            before the recurrent layer (``None``: from the data, so that a median-length
            series reaches it as about 128 steps; 1: no pooling).
        series_norm: Also feed each series standardized by its own mean and std (series
            from disparate sources differ in gain and offset).
        val_fraction: Share of the training data held out for validation, in ``[0, 1)``.
        patience: Optimizer steps without a better validation epoch (see ``select``) before
            stopping; 0 never stops; ``None``: half the run's steps.
        select: The best epoch (kept) is the one of best validation ``"metric"`` (accuracy,
            or MAE; ties to the lower loss), or of lowest validation ``"loss"``.
        seed: Seed of the split, the weights, the batches and dropout.
        threads: Torch CPU threads (1 is fastest for these small recurrent layers on CPU).
        flush_denormal: Flush denormal floats to zero in this process (see :func:`run`).
        resume: Continue from ``out/checkpoint.pt``, with the options recorded in
            ``out/run.json`` (a flag given again must not change them).
        id: Table column naming the sequence of each row.
        order: Table column ordering the steps.
        features: Table feature columns (default: every other column).
        target: Table column holding the target (per sequence, or varying within sequences:
            a per-step task, see :mod:`varlen.cli._steps`).
        horizon: Per-step only: forecast the target this many steps ahead with a causal
            model (0: label or regress each step).
    """

    data: Path
    test: Path | None = None
    out: Path = Path("model")
    task: TaskChoice = "auto"
    technique: str = "auto"
    steps: int = 2000
    epochs: int | None = None
    time_budget: float | None = 300.0
    planner: Planner = "cost"
    time_limit: float | None = None
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.0
    schedule: Schedule = "cosine"
    warmup: int | None = None
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool | None = None
    cell: Cell = "lstm"
    pooling: Pooling = "mean"
    dropout: float = 0.1
    conv_layers: int = 3
    conv_channels: int = 64
    pool: int | None = None
    series_norm: bool = True
    val_fraction: float = 0.2
    patience: int | None = None
    select: Selection = "metric"
    seed: int = 0
    threads: int = 1
    flush_denormal: bool = True
    resume: bool = False
    id: str | None = None
    order: str | None = None
    features: tuple[str, ...] | None = None
    target: str | None = None
    horizon: int = 0

    def __post_init__(self) -> None:
        where = "train"
        check_choice(where, "task", self.task, _TASKS)
        check_choice(where, "technique", self.technique, ("auto", *TECHNIQUES))
        check_choice(where, "planner", self.planner, _PLANNERS)
        check_choice(where, "select", self.select, ("metric", "loss"))
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"{where}: val_fraction must be in [0, 1), got {self.val_fraction!r}.")
        for name, low in _MINIMA.items():
            value = getattr(self, name)
            if value is not None and value < low:
                raise ValueError(f"{where}: {name} must be >= {low}, got {value!r}.")
        if not 0 < self.lr < float("inf"):
            raise ValueError(f"{where}: lr must be finite and > 0, got {self.lr!r}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{where}: dropout must be in [0, 1), got {self.dropout!r}.")
        check_choice(where, "schedule", self.schedule, ("cosine", "constant"))
        if not 0.0 <= self.weight_decay < float("inf"):
            raise ValueError(
                f"{where}: weight_decay must be finite and >= 0, got {self.weight_decay!r}."
            )
        for name in ("time_limit", "time_budget"):
            value = getattr(self, name)
            if value is not None and not 0 < value < float("inf"):
                raise ValueError(f"{where}: {name} must be finite and > 0 seconds, got {value!r}.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``varlen train``'s arguments.

    Args:
        parser: The command's parser.
    """
    d = TrainOptions.__dataclass_fields__
    parser.add_argument("data", type=Path, metavar="DATA", help=".ts, .csv or .parquet file")
    _flag = _adder(parser)
    _flag("--test", type=Path, metavar="DATA", help="test file, scored at the end")
    _flag("--out", type=Path, metavar="DIR", help="model directory (default: model)")
    _flag(
        "--task",
        choices=_TASKS,
        help="default auto: labels -> classification, floats -> regression",
    )
    _flag(
        "--technique",
        choices=("auto", *TECHNIQUES),
        help="how batches are formed and fed (default auto: from the lengths, see --planner)",
    )
    _flag("--steps", type=int, help=f"budget in optimizer steps (default {d['steps'].default})")
    _flag("--epochs", type=int, help="train this many epochs instead of --steps")
    _flag(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="plan fewer steps if --steps would take longer (CPU seconds, estimated from the "
        "data; default 300)",
    )
    _flag(
        "--planner",
        choices=_PLANNERS,
        help="how auto and --time-budget decide: cost (default: from the data alone, the same "
        "plan on any machine load) or timed (mask and bucket timed on this machine)",
    )
    _flag("--time-limit", type=float, metavar="SECONDS", help="stop after this long (default none)")
    _flag("--batch-size", type=int, help=f"sequences per batch (default {d['batch_size'].default})")
    _flag("--lr", type=float, help=f"peak Adam learning rate (default {d['lr'].default})")
    _flag("--weight-decay", type=float, help="Adam weight decay (default 0)")
    _flag(
        "--schedule",
        choices=("cosine", "constant"),
        help="learning rate after the warm-up (default cosine: decays to 0 over the run)",
    )
    _flag("--warmup", type=int, metavar="STEPS", help="linear warm-up (default 5%% of the steps)")
    _flag("--hidden-size", type=int, help=f"hidden size H (default {d['hidden_size'].default})")
    _flag("--num-layers", type=int, help=f"recurrent layers L (default {d['num_layers'].default})")
    _flag(
        "--bidirectional",
        action=argparse.BooleanOptionalAction,
        help="run both directions (default on; off for per-step tables)",
    )
    _flag("--cell", choices=("lstm", "gru"), help="recurrent cell (default lstm)")
    _flag("--pooling", choices=("last", "mean", "max"), help="over real steps (default mean)")
    _flag("--dropout", type=float, help=f"dropout (default {d['dropout'].default})")
    _flag(
        "--conv-layers",
        type=int,
        help=f"masked convolutions before the LSTM, 0 = none (default {d['conv_layers'].default})",
    )
    _flag(
        "--conv-channels", type=int, help=f"their channels (default {d['conv_channels'].default})"
    )
    _flag(
        "--pool",
        type=int,
        metavar="FACTOR",
        help="shorten series by this factor (exact max pooling in the front-end) before the "
        "LSTM (default: from the lengths, to about 128 steps; 1 = none)",
    )
    _flag(
        "--series-norm",
        action=argparse.BooleanOptionalAction,
        help="also feed each series standardized by its own mean and std (default on)",
    )
    _flag("--val-fraction", type=float, help="validation share (default 0.2)")
    _flag(
        "--patience",
        type=int,
        metavar="STEPS",
        help="early stopping after this many optimizer steps without progress, 0 = off "
        "(default: half the steps)",
    )
    _flag(
        "--select",
        choices=("metric", "loss"),
        help="keep the epoch of best validation metric (default; ties to the lower loss) or loss",
    )
    _flag("--seed", type=int, help="seed of everything random (default 0)")
    _flag("--threads", type=int, help="torch CPU threads (default 1: fastest here)")
    _flag(
        "--flush-denormal",
        action=argparse.BooleanOptionalAction,
        help="flush denormal floats to zero in this process (default on)",
    )
    _flag(
        "--resume",
        action="store_true",
        help="continue the run in --out DIR with its recorded options",
    )
    _flag(
        "--horizon",
        type=int,
        help="per-step tables: forecast the target this many steps ahead (causal model)",
    )
    add_table_options(parser, target=True)


def _adder(parser: argparse.ArgumentParser) -> Any:
    """``parser.add_argument`` with ``default=SUPPRESS``, so only given flags override."""

    def add(*names: str, **options: Any) -> None:
        parser.add_argument(*names, default=argparse.SUPPRESS, **options)

    return add


# ----------------------------------------------------------------------------- data


class Split(NamedTuple):
    """Inputs (normalized, float32) and encoded targets of one split."""

    x: Ragged
    y: np.ndarray


class Prepared(NamedTuple):
    """The data, ready to train on."""

    train: Split
    validation: Split | None
    test: Split | None
    task: Literal["classification", "regression"]
    labels: tuple[str, ...] | None
    features: tuple[str, ...]
    normalizer: Standardizer
    target_normalizer: Standardizer | None
    raw_lengths: np.ndarray


def _column(values: np.ndarray) -> Ragged:
    """``(B,)`` values as one sequence of ``B`` steps with one feature (for a Standardizer)."""
    return Ragged(values.reshape(-1, 1), np.array([0, len(values)], dtype=np.int64))


def _load_test(options: TrainOptions, targets: Targets, features: tuple[str, ...]) -> Any:
    if options.test is None:
        return None
    data = load_data(options.test, **table_options(options))
    if data.features != features:
        raise CommandError(
            f"--test features must equal the training features {list(features)}, got "
            f"{list(data.features)}."
        )
    encoded = encode_targets(data.y, task=targets.task, ids=data.ids, labels=targets.labels)
    return data.x, encoded.y


def _check_classes(targets: Targets) -> None:
    if targets.labels is not None and len(targets.labels) < 2:
        raise CommandError(
            f"target must have at least 2 classes for classification, got {list(targets.labels)}."
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


def warn(message: str) -> None:
    """Print ``varlen train: warning: message`` on stderr (shown even with ``--quiet``)."""
    print(f"varlen train: warning: {message}", file=sys.stderr)


def prepare(options: TrainOptions) -> Prepared:
    """Load, encode, split and normalize the data (the standardizers see training steps only).

    Warns (stderr) and trains on everything when the validation split would be too small.

    Args:
        options: The options.

    Returns:
        The :class:`Prepared` data.
    """
    data = load_data(options.data, **table_options(options))
    targets = encode_targets(data.y, task=options.task, ids=data.ids, declared=data.class_labels)
    _check_classes(targets)
    test = _load_test(options, targets, data.features)
    classification = targets.task == "classification"
    fraction, warning = plan_validation(
        targets.y, options.val_fraction, classification=classification
    )
    if warning:
        warn(warning)
    train_idx, val_idx = split_validation(
        targets.y, fraction, seed=options.seed, stratify=classification
    )
    x_train = data.x[train_idx]
    normalizer = Standardizer.fit(x_train)
    target_normalizer = None if classification else Standardizer.fit(_column(targets.y[train_idx]))

    def split(x: Ragged, y: np.ndarray) -> Split:
        if target_normalizer is not None:
            y = target_normalizer.transform(_column(y)).values[:, 0].astype(np.float32)
        return Split(normalize_inputs(x, normalizer), y)

    return Prepared(
        train=split(x_train, targets.y[train_idx]),
        validation=split(data.x[val_idx], targets.y[val_idx]) if len(val_idx) else None,
        test=None if test is None else split(*test),
        task=targets.task,
        labels=targets.labels,
        features=data.features,
        normalizer=normalizer,
        target_normalizer=target_normalizer,
        raw_lengths=x_train.lengths,
    )


# ----------------------------------------------------------------------------- training


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


def _recorded_plan(options: TrainOptions) -> Plan | None:
    """The plan of the interrupted run, when resuming from its checkpoint."""
    run_file = options.out / RUN_FILE
    if not (options.resume and (options.out / CHECKPOINT_FILE).is_file() and run_file.is_file()):
        return None
    with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
        saved = json.loads(run_file.read_text(encoding="utf-8"))
        technique, steps = saved["fingerprint"]["technique"], saved["planned_steps"]
        if technique in TECHNIQUES and isinstance(steps, int) and steps >= 1:
            why = (
                "chosen with --technique"
                if options.technique != "auto"
                else "auto, as timed by the interrupted run"
            )
            budget = f"{steps} optimizer steps, as planned by the interrupted run"
            return Plan(str(technique), why, steps, budget)
    return None


def plan_run(options: TrainOptions, prepared: Prepared) -> Plan:
    """Choose the technique and the step budget of a run.

    With ``--planner cost`` (the default) both come from the data alone: ``auto`` follows the
    padding of random batches (:func:`varlen.training.choose_technique`), and the budget is
    ``--steps``, or fewer to fit ``--time-budget`` at the speed the cost model estimates
    (:func:`varlen.training.budget.estimate_step_seconds`), so a run plans the same on any
    machine load. With ``--planner timed``, ``auto`` picks the faster of mask and bucket,
    timed on the data, and the budget follows the timed speed (under ``torchrun`` nothing is
    timed: every rank must plan the same).

    Args:
        options: The options.
        prepared: The data.

    Returns:
        The :class:`Plan`.
    """
    recorded = _recorded_plan(options)
    if recorded is not None:
        return recorded
    n = len(prepared.train.x)
    several = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    if options.planner == "cost" or several or n == 0:
        return _plan_from_data(options, prepared, timed=options.planner == "timed")
    candidates = ("mask", "bucket") if options.technique == "auto" else (options.technique,)
    timings = time_techniques(
        build_model(options, prepared),
        RaggedDataset(prepared.train.x),
        prepared.train.y,
        candidates,
        batch_size=options.batch_size,
        seed=options.seed,
    )
    if options.technique == "auto":
        name, reason = choose_by_timing(timings)
        reason = f"auto: {reason}"
    else:
        name, reason = options.technique, "chosen with --technique"
    timing = timings[name]
    per_step = timing.seconds / timing.batches if timing.batches else None
    budget = _epoch_budget(options, n)
    if budget is None:
        budget = plan_steps(options.steps, options.time_budget, per_step)
    return Plan(name, reason, *budget)


def _epoch_budget(options: TrainOptions, n: int) -> tuple[int, str] | None:
    """The budget of ``--epochs N`` (``None`` without it)."""
    if options.epochs is None:
        return None
    steps = _planned_steps(options, n)
    return steps, f"{options.epochs} epochs of {steps // options.epochs} steps"


def _plan_from_data(options: TrainOptions, prepared: Prepared, *, timed: bool) -> Plan:
    """The plan made from the data alone (``timed``: a timed planner that may not time)."""
    lengths = prepared.train.x.lengths
    if options.technique != "auto":
        name, reason = options.technique, "chosen with --technique"
    else:
        name, why = choose_technique(lengths, batch_size=options.batch_size)
        reason = f"auto: {why}" + (" (not timed under torchrun)" if timed else "")
    budget = _epoch_budget(options, len(prepared.train.x))
    if budget is None and timed:  # several ranks: no timing, no time budget
        budget = (options.steps, f"{options.steps} optimizer steps")
    if budget is None:
        config = build_model(options, prepared).config
        per_step = estimate_step_seconds(
            config, lengths, batch_size=options.batch_size, technique=name
        )
        budget = plan_steps(options.steps, options.time_budget, per_step, how="estimated")
    return Plan(name, reason, *budget)


def conv_kernels(layers: int) -> tuple[int, ...]:
    """Kernel sizes of ``layers`` convolutions: 7, 5, 3, 3, ... (LSTM-FCN uses 8, 5, 3).

    Args:
        layers: Number of convolutions.

    Returns:
        Odd kernel sizes.
    """
    return tuple(max(7 - 2 * i, 3) for i in range(layers))


def conv_pools(options: TrainOptions, lengths: np.ndarray) -> tuple[int, ...]:
    """Pooling factors of the front-end's blocks: ``--pool`` spread, or chosen from the lengths.

    Args:
        options: The options (``pool``, ``conv_layers``).
        lengths: ``(n,)`` training lengths.

    Returns:
        One factor per convolution (see :func:`varlen.training.budget.front_end_pools`).

    Raises:
        CommandError: If ``--pool`` is more than 1 without convolutions.
    """
    if options.pool is None:
        return front_end_pools(lengths, options.conv_layers)
    try:
        return spread_pools(options.pool, options.conv_layers)
    except ValueError:
        raise CommandError(
            f"--pool {options.pool} needs the convolutional front-end, got --conv-layers 0. "
            "Pass --conv-layers 1 or more, or --pool 1."
        ) from None


def build_model(options: TrainOptions, prepared: Prepared) -> SequenceModel:
    """Build the model, its initial weights a function of the seed.

    Args:
        options: The options.
        prepared: The data (for the feature and class counts).

    Returns:
        The untrained model.
    """
    config = ModelConfig(
        input_size=len(prepared.features),
        output_size=len(prepared.labels) if prepared.labels is not None else 1,
        task=prepared.task,
        cell=options.cell,
        hidden_size=options.hidden_size,
        num_layers=options.num_layers,
        bidirectional=options.bidirectional is not False,
        dropout=options.dropout,
        pooling=options.pooling,
        conv_channels=(options.conv_channels,) * options.conv_layers,
        conv_kernels=conv_kernels(options.conv_layers),
        conv_pools=conv_pools(options, prepared.train.x.lengths),
        series_norm=options.series_norm,
    )
    torch.manual_seed(options.seed)
    return SequenceModel(config)


_NOT_RECORDED = ("data", "test", "out", "resume", "threads", "time_limit", "time_budget")
"""Options a ``--resume`` may change: where things are, and how this invocation runs."""


def _fingerprint(options: TrainOptions, prepared: Prepared, technique: str) -> dict[str, Any]:
    """What must not change between an interrupted run and its ``--resume``."""
    kept = asdict(options)
    for name in _NOT_RECORDED:
        kept.pop(name)
    kept["features"] = list(prepared.features)
    kept["technique"] = technique
    digest = hashlib.sha256(np.ascontiguousarray(prepared.train.x.values).tobytes())
    digest.update(prepared.train.x.offsets.tobytes())
    digest.update(np.ascontiguousarray(prepared.train.y).tobytes())
    kept["train_data_sha256"] = digest.hexdigest()
    return kept


def _plain(options: TrainOptions) -> dict[str, Any]:
    """The options as JSON values (paths as strings, tuples as lists)."""
    return {
        key: os.fspath(value)
        if isinstance(value, Path)
        else list(value)
        if isinstance(value, tuple)
        else value
        for key, value in asdict(options).items()
    }


def _given(args: argparse.Namespace) -> set[str]:
    """Names of the options given on the command line or in ``--config``."""
    names = {field.name for field in fields(TrainOptions)}
    given = {name for name in names if hasattr(args, name)}
    path = getattr(args, "config", None)
    if path is not None:
        given |= set(_read_toml(Path(path), "train")) & names
    return given


def recorded_options(options: TrainOptions, args: argparse.Namespace) -> TrainOptions:
    """For ``--resume``: the options recorded in ``out/run.json``, with this run's locations.

    A flag given again with the recorded value is fine; one with another value is refused
    (except those of :data:`_NOT_RECORDED`: data, test, out, threads, time limit).

    Args:
        options: The options built from the flags.
        args: The parsed arguments (to tell given flags from defaults).

    Returns:
        The recorded options (``options`` itself when nothing is recorded).

    Raises:
        CommandError: If a given flag conflicts with the recorded run.
    """
    run_file = options.out / RUN_FILE
    if not run_file.is_file():
        return options
    try:
        saved = json.loads(run_file.read_text(encoding="utf-8"))
        if isinstance(saved, dict) and "options" not in saved:
            return options  # a per-step run's record: varlen.cli._steps checks it itself
        recorded = dict(saved["options"])
    except (ValueError, KeyError, TypeError):
        raise CommandError(
            f"--resume must find the run's options in {os.fspath(run_file)!r}, got an "
            "unreadable file (written by another version?). Rerun without --resume to start over."
        ) from None
    mine = _plain(options)
    for name in sorted(_given(args) - set(_NOT_RECORDED)):
        if name in recorded and recorded[name] != mine[name]:
            flag = "--" + name.replace("_", "-")
            raise CommandError(
                f"--resume continues the run recorded in {os.fspath(run_file)!r}: {flag} must "
                f"be {recorded[name]!r} as recorded (or left out), got {mine[name]!r}. "
                "Rerun without --resume to start over with new options."
            )
    known = {field.name for field in fields(TrainOptions)}
    values = {key: value for key, value in recorded.items() if key in known}
    if values.get("features") is not None:
        values["features"] = tuple(values["features"])
    values.update({name: getattr(options, name) for name in _NOT_RECORDED})
    return TrainOptions(**values)


def _check_resume(
    options: TrainOptions, fingerprint: dict[str, Any], args: Any, *, planned_steps: int
) -> bool:
    """Return whether to resume; write or check ``run.json`` (rank 0 writes)."""
    checkpoint = options.out / CHECKPOINT_FILE
    run_file = options.out / RUN_FILE
    if options.resume and checkpoint.is_file():
        if not run_file.is_file():
            raise CommandError(
                f"--resume needs {os.fspath(run_file)!r}, written when the run started, got "
                "none. Rerun without --resume to start over."
            )
        saved = json.loads(run_file.read_text(encoding="utf-8")).get("fingerprint", {})
        changed = sorted(
            key
            for key in fingerprint.keys() | saved.keys()
            if saved.get(key) != fingerprint.get(key)
        )
        if changed:
            key = changed[0]
            raise CommandError(
                f"--resume must use the options and data of the interrupted run, got "
                f"{key} = {fingerprint.get(key)!r} instead of {saved.get(key)!r}. "
                "Rerun without --resume to start over."
            )
        say(args, f"resuming from {os.fspath(checkpoint)}")
        return True
    if options.resume:
        say(args, f"no checkpoint in {os.fspath(options.out)}: starting from scratch")
    elif checkpoint.is_file():
        say(args, f"starting over (pass --resume to continue from {os.fspath(checkpoint)})")
    if _rank() == 0:
        options.out.mkdir(parents=True, exist_ok=True)
        record = {
            "fingerprint": fingerprint,
            "options": _plain(options),
            "planned_steps": planned_steps,
        }
        write_text(run_file, json.dumps(record, indent=2) + "\n")
    return False


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _init_distributed() -> bool:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE > 1``); return if joined."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if dist.is_initialized():
        return False
    dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return True


# ----------------------------------------------------------------------------- report


class Score(NamedTuple):
    """Loss and metric on one split (accuracy, or MAE in the target's units)."""

    loss: float
    metric: float


def score(
    model: SequenceModel, split: Split, prepared: Prepared, *, technique: str, batch_size: int
) -> Score:
    """Score a split as it would be predicted: batched like the technique if inexact.

    Args:
        model: The trained model.
        split: The split.
        prepared: The data (for the target standardizer).
        technique: The training technique.
        batch_size: The training batch size.

    Returns:
        The loss (standardized units for regression) and accuracy or MAE (target units).
    """
    exact = get_technique(technique).exact
    how, size = ("bucket", 256) if exact else (technique, batch_size)
    loss, metric = evaluate(model, split.x, split.y, technique=how, batch_size=size)
    if prepared.target_normalizer is not None:
        scores = predict_scores(model, split.x, technique=how, batch_size=size).numpy()[:, 0]
        scale = float(prepared.target_normalizer.scale[0])
        metric = float(np.mean(np.abs(scores - split.y))) * scale
    return Score(loss, metric)


def _report_lines(
    options: TrainOptions,
    prepared: Prepared,
    result: FitResult,
    scores: dict[str, Score],
    technique: tuple[str, str],
) -> list[str]:
    metric = "accuracy" if prepared.task == "classification" else "MAE"
    unit = "" if prepared.task == "classification" else " (MSE of standardized targets)"
    kind = f"{len(prepared.labels)} classes" if prepared.labels is not None else "regression"
    val = 0 if prepared.validation is None else len(prepared.validation.x)
    history = result.history
    stop = ""
    if result.stopped_early:
        stop = " (stopped early)"
    elif result.stopped_by_time:
        stop = f" (stopped by --time-limit {options.time_limit:g} s)"
    lines = [
        f"data: {options.data.name}: {len(prepared.train.x)} train / {val} validation "
        f"sequences, {count(len(prepared.features), 'feature')}, {kind}",
        f"technique: {technique[0]} ({technique[1]})",
        f"epochs: {len(history)} of {result.planned_epochs} run ({result.steps} optimizer steps), "
        f"best {result.best_epoch + 1}{stop}",
    ]
    for name, value in scores.items():
        lines.append(f"{name}: loss {value.loss:.4f}{unit}, {metric} {value.metric:.4f}")
    if history:
        real = sum(stats.real_steps for stats in history)
        computed = sum(
            stats.real_steps / stats.padding_efficiency
            for stats in history
            if stats.padding_efficiency
        )
        lines.append(
            f"speed: {result.real_steps_per_second:,.0f} real steps/s in training "
            f"({real / max(result.seconds, 1e-9):,.0f} over the run's {result.seconds:.1f} s "
            f"with validation), padding efficiency {real / max(computed, 1):.3f}, "
            f"{options.threads} thread{'s' if options.threads > 1 else ''}"
        )
    lines.append(f"model: {os.fspath(options.out)}")
    return lines


# ----------------------------------------------------------------------------- command


def run(args: argparse.Namespace) -> int:
    """Run ``varlen train``.

    The command owns its process: it sets torch's CPU threads (``--threads``, default 1) and
    flushes denormal floats to zero (``torch.set_flush_denormal``, ``--no-flush-denormal`` to
    keep them): gradients through saturated gates can underflow into denormals, which slow CPU
    arithmetic. 1.75x faster padded LSTM training was reported for this machine;
    ``benchmarks/bench_denormal.py`` saw no gain on its setting (0.94-0.97x, within the noise of
    a shared machine). Flushing changes nothing above ``1e-38``.

    Args:
        args: The parsed arguments.

    Returns:
        The exit code, 0.
    """
    options = build_config(TrainOptions, args, command="train")
    if options.resume:
        options = recorded_options(options, args)
    threads = torch.get_num_threads()
    torch.set_num_threads(options.threads)
    torch.set_flush_denormal(options.flush_denormal)
    from varlen.cli._steps import per_step_table, train_per_step

    try:
        with _own(options.out):
            steps = per_step_table(options)  # a target varying within sequences: one per step
            if steps is not None:
                return train_per_step(options, steps, args)
            joined = _init_distributed()
            try:
                return _train(options, args)
            finally:
                if joined:
                    dist.destroy_process_group()
    finally:
        torch.set_num_threads(threads)  # as they were, for callers of main() in-process
        torch.set_flush_denormal(False)


def _planned_steps(options: TrainOptions, train_size: int) -> int:
    """Optimizer steps the run plans (its budget, or its epochs' batches)."""
    if options.epochs is None:
        return options.steps
    return options.epochs * max(-(-train_size // options.batch_size), 1)


def train_config(options: TrainOptions, technique: str, steps: int) -> TrainConfig:
    """The loop's :class:`TrainConfig` for these options.

    Args:
        options: The options.
        technique: The chosen technique.
        steps: The planned optimizer steps (see :func:`plan_run`).

    Returns:
        Budget in steps (or epochs), warm-up then cosine decay, patience in steps.
    """
    patience = steps // 2 if options.patience is None else options.patience
    return TrainConfig(
        technique=technique,
        epochs=options.epochs if options.epochs is not None else 10**9,
        max_steps=None if options.epochs is not None else steps,
        batch_size=options.batch_size,
        lr=options.lr,
        patience=patience or None,
        patience_unit="steps",
        schedule=options.schedule,
        weight_decay=options.weight_decay,
        warmup_steps=max(steps // 20, 1) if options.warmup is None else options.warmup,
        time_limit=options.time_limit,
        seed=options.seed,
        select=options.select,
    )


@contextlib.contextmanager
def _own(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock (rank 0, which writes there): a second run on it is refused."""
    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    try:
        with folder_lock(out, what="varlen train run"):
            remove_stale_temporaries(out)  # left by a run killed mid-write
            yield
    except FolderBusyError as error:
        raise CommandError(f"--out {error}") from None


def _fit(
    options: TrainOptions,
    prepared: Prepared,
    technique: str,
    *,
    steps: int,
    resume: bool,
    progress: bool,
    log: Callable[[str], None] | None,
) -> tuple[SequenceModel, FitResult]:
    """Build the model and train it, checkpointing to ``out/checkpoint.pt`` now and then."""
    model = build_model(options, prepared)
    config = train_config(options, technique, steps)
    validation = None if prepared.validation is None else tuple(prepared.validation)
    checkpoint = options.out / CHECKPOINT_FILE
    try:
        result = fit(
            model,
            prepared.train.x,
            prepared.train.y,
            config=config,
            validation=validation,  # type: ignore[arg-type]
            checkpoint=checkpoint,
            resume=resume,
            progress=progress,
            log=log,
            log_every=1.0,
            checkpoint_every=10.0,
        )
    except KeyboardInterrupt:  # errors stay one line; an interrupted run says how to go on
        if checkpoint.is_file() and _rank() == 0:
            print(
                f"varlen train: the run stopped before it finished; a checkpoint is in "
                f"{os.fspath(checkpoint)}. Resume it with: varlen train "
                f"{shlex.quote(os.fspath(options.data))} --out "
                f"{shlex.quote(os.fspath(options.out))} --resume",
                file=sys.stderr,
            )
        raise
    return model, result


def _save(
    options: TrainOptions,
    model: SequenceModel,
    prepared: Prepared,
    result: FitResult,
    technique: tuple[str, str],
) -> dict[str, Score]:
    """Score the validation and test splits, save the model directory; return the scores.

    Epochs are counted from 1 in ``config.json`` as in the printed summary.
    """
    splits = {"validation": prepared.validation, "test": prepared.test}
    scores = {
        name: score(model, split, prepared, technique=technique[0], batch_size=options.batch_size)
        for name, split in splits.items()
        if split is not None
    }
    save_model(
        options.out,
        model,
        features=prepared.features,
        labels=prepared.labels,
        normalizer=prepared.normalizer,
        target_normalizer=prepared.target_normalizer,
        technique=technique[0],
        metadata={
            "options": _plain(options),
            "technique_reason": technique[1],
            "history": [{**asdict(stats), "epoch": stats.epoch + 1} for stats in result.history],
            "best_epoch": result.best_epoch + 1,
            "epochs_run": len(result.history),
            "optimizer_steps": result.steps,
            "real_steps_per_second": result.real_steps_per_second,
            "scores": {name: value._asdict() for name, value in scores.items()},
        },
    )
    return scores


def _log(args: argparse.Namespace, *, progress: bool) -> Callable[[str], None] | None:
    """Per-epoch lines on stderr where bars do not render (not a terminal), unless quiet."""
    if progress or getattr(args, "quiet", False):
        return None
    return lambda line: print(line, file=sys.stderr, flush=True)


def _train(options: TrainOptions, args: argparse.Namespace) -> int:
    """The command's steps: prepare, choose, (resume,) fit, then on rank 0 save and report."""
    rank = _rank()
    if rank != 0:  # other ranks train silently
        args = argparse.Namespace(**{**vars(args), "quiet": True})
    prepared = prepare(options)
    plan = plan_run(options, prepared)
    technique = (plan.technique, plan.reason)
    say(args, f"technique: {technique[0]} ({technique[1]})")
    say(args, f"budget: {plan.budget_reason}")
    fingerprint = _fingerprint(options, prepared, technique[0])
    resume = _check_resume(options, fingerprint, args, planned_steps=plan.steps)
    progress = progress_enabled(args)
    model, result = _fit(
        options,
        prepared,
        technique[0],
        steps=plan.steps,
        resume=resume,
        progress=progress,
        log=_log(args, progress=progress),
    )
    if rank != 0:
        return 0
    scores = _save(options, model, prepared, result, technique)
    print("\n".join(_report_lines(options, prepared, result, scores, technique)))
    return 0
