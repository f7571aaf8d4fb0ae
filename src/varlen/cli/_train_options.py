"""``varlen train``'s options: the flags, the keys of ``--config file.toml``, and their checks.

:class:`TrainOptions` is what the user asked for. A value of ``None`` for ``steps``,
``schedule``, ``time_budget``, ``conv_layers``, ``series_norm``, ``bidirectional``, ``warmup`` or
``patience`` means the task's default (:mod:`varlen.cli._train_plan` resolves it: a per-sequence
model and a per-step one differ there). How the options are recorded with a run and a model
directory, and read back by later versions, is :mod:`varlen.cli._run_record`'s business.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from varlen._checks import check_choice
from varlen.cli._common import _read_toml, add_table_options
from varlen.cli._targets import TaskChoice
from varlen.training.loop import Schedule, Selection
from varlen.training.models import Cell, Pooling
from varlen.training.techniques import TECHNIQUES

__all__ = ["PLANNERS", "Planner", "TrainOptions", "add_arguments", "given_options", "plain"]

_TASKS: tuple[TaskChoice, ...] = ("auto", "classification", "regression")
Planner = Literal["cost", "timed"]
PLANNERS: tuple[Planner, ...] = ("cost", "timed")
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
    LSTM-FCN style model (masked convolutions in front of a bidirectional LSTM, mean or max
    pooling over real steps) and early stopping counted in steps.

    Args:
        data: The training file.
        test: A test file, scored at the end (never used for training or selection).
        out: The model directory (also holds ``checkpoint.pt`` and ``run.json``).
        task: ``"auto"``, ``"classification"`` or ``"regression"``.
        technique: ``"auto"`` or a name of :data:`varlen.training.techniques.TECHNIQUES`.
        steps: Training budget in optimizer steps (rounded up to whole epochs); ``None``:
            2,000 for a per-sequence model, none for a per-step one (it trains 60 epochs).
        epochs: Train this many epochs instead of ``steps`` (``None``: from ``steps``).
        time_budget: Plan fewer than ``steps`` steps when they would take longer than this
            many CPU seconds at the speed ``planner`` gives (``None``: no time budget; it
            applies to a step budget, not to ``epochs``).
        planner: How ``auto`` and the time budget are decided: ``"cost"`` (default) from the
            data alone (lengths, sizes, the model: a deterministic cost model, so the same
            command plans the same run on any machine load), or ``"timed"``: the candidates
            timed on the data in CPU time (closer to this machine, but two runs may differ).
        time_limit: Stop after the epoch that ends past this many seconds (``None``: none).
        batch_size: Sequences per batch.
        lr: Peak Adam learning rate.
        weight_decay: Adam weight decay.
        schedule: ``"cosine"`` decay of the learning rate to zero over the run, or
            ``"constant"`` (``None``: cosine per sequence, constant per step).
        warmup: Optimizer steps of linear warm-up (``None``: 5% of the run's steps per
            sequence, none per step).
        hidden_size: ``H``.
        num_layers: ``L``.
        bidirectional: ``D = 2`` (``None``: on for per-sequence models, off for per-step ones).
        cell: ``"lstm"`` or ``"gru"``.
        pooling: ``"last"``, ``"mean"`` or ``"max"`` over the real steps (per-sequence models
            only; ``None``: from the data, the max for long series, the mean for short ones,
            see :func:`~varlen.cli._train_plan.plan_pooling`).
        dropout: Dropout between layers and before the head.
        conv_layers: Masked convolutions in front of the recurrent layer (0: none); kernel
            sizes 7, 5, 3, 3, ... (``None``: 3 per sequence, 0 per step; a forecaster takes
            none: they read later steps).
        conv_channels: Channels of each convolution.
        pool: Total factor by which the front-end's exact max pooling shortens each series
            before the recurrent layer (``None``: from the data, so that a median-length
            series reaches it as about 128 steps; 1: no pooling). Per-sequence models only.
        series_norm: Also feed each series standardized by its own mean and std (series
            from disparate sources differ in gain and offset; ``None``: on per sequence, off
            per step).
        levels: With ``series_norm``, also feed each series' values themselves (their offset
            and gain); ``False``: only their per-series standardized view. ``None``: from the
            data, off for one channel of few series a class whose lengths vary (see
            :func:`~varlen.cli._train_plan.plan_levels`), on otherwise.
        augment: Perturb each training sequence anew in every batch, on its real steps only
            (a random crop of at least 80% of it, a time warp of up to 20%, a gain; see
            :class:`~varlen.data.augment.Augmentation`). ``None``: from the data, on for a
            classifier with few training series a class (see
            :func:`~varlen.cli._train_plan.plan_augment`); never per step.
        val_fraction: Share of the training data held out for validation, in ``[0, 1)``.
        patience: Optimizer steps without a better validation epoch (see ``select``) before
            stopping; 0 never stops; ``None``: half the run's steps per sequence, 15 epochs per
            step.
        select: The best epoch (kept) is the one of best validation ``"metric"`` (accuracy,
            or MAE; ties to the lower loss), or of lowest validation ``"loss"``; the same for
            both tasks.
        seed: Seed of the split, the weights, the batches and dropout.
        threads: Torch CPU threads (1 is fastest for these small recurrent layers on CPU).
        flush_denormal: Flush denormal floats to zero in this process (see :func:`run`).
        resume: Continue from ``out/checkpoint.pt``, with the options recorded in
            ``out/run.json`` (a flag given again must not change them; ``test``, ``threads``
            and the time limits may).
        id: Table column naming the sequence of each row.
        order: Table column ordering the steps.
        features: Table feature columns (default: every other column).
        target: Table column holding the target (per sequence, or varying within sequences:
            a per-step task, see :mod:`varlen.cli._train_tasks`).
        horizon: Per-step only: forecast the target this many steps ahead with a causal
            model (0: label or regress each step).
    """

    data: Path
    test: Path | None = None
    out: Path = Path("model")
    task: TaskChoice = "auto"
    technique: str = "auto"
    steps: int | None = None
    epochs: int | None = None
    time_budget: float | None = 300.0
    planner: Planner = "cost"
    time_limit: float | None = None
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.0
    schedule: Schedule | None = None
    warmup: int | None = None
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool | None = None
    cell: Cell = "lstm"
    pooling: Pooling | None = None
    dropout: float = 0.1
    conv_layers: int | None = None
    conv_channels: int = 64
    pool: int | None = None
    series_norm: bool | None = None
    levels: bool | None = None
    augment: bool | None = None
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
        check_choice(where, "planner", self.planner, PLANNERS)
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
        if self.schedule is not None:
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
        help="how batches are formed and fed (default auto: from the data, see --planner)",
    )
    _flag("--steps", type=int, help="budget in optimizer steps (default 2000; per step: 60 epochs)")
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
        choices=PLANNERS,
        help="how auto and --time-budget decide: cost (default: from the data alone, the same "
        "plan on any machine load) or timed (the candidates timed on this machine)",
    )
    _flag("--time-limit", type=float, metavar="SECONDS", help="stop after this long (default none)")
    _flag("--batch-size", type=int, help=f"sequences per batch (default {d['batch_size'].default})")
    _flag("--lr", type=float, help=f"peak Adam learning rate (default {d['lr'].default})")
    _flag("--weight-decay", type=float, help="Adam weight decay (default 0)")
    _flag(
        "--schedule",
        choices=("cosine", "constant"),
        help="learning rate after the warm-up (default cosine: decays to 0 over the run; "
        "constant per step)",
    )
    _flag(
        "--warmup",
        type=int,
        metavar="STEPS",
        help="linear warm-up (default 5%% of the steps; none per step)",
    )
    _flag("--hidden-size", type=int, help=f"hidden size H (default {d['hidden_size'].default})")
    _flag("--num-layers", type=int, help=f"recurrent layers L (default {d['num_layers'].default})")
    _flag(
        "--bidirectional",
        action=argparse.BooleanOptionalAction,
        help="run both directions (default on; off for per-step tables)",
    )
    _flag("--cell", choices=("lstm", "gru"), help="recurrent cell (default lstm)")
    _flag(
        "--pooling",
        choices=("last", "mean", "max"),
        help="readout over real steps (default: from the lengths, max for series over 128 "
        "steps at the median, mean for shorter ones; per-sequence models only)",
    )
    _flag("--dropout", type=float, help=f"dropout (default {d['dropout'].default})")
    _flag(
        "--conv-layers",
        type=int,
        help="masked convolutions before the LSTM, 0 = none (default 3; 0 per step)",
    )
    _flag(
        "--conv-channels", type=int, help=f"their channels (default {d['conv_channels'].default})"
    )
    _flag(
        "--pool",
        type=int,
        metavar="FACTOR",
        help="shorten series by this factor (exact max pooling in the front-end) before the "
        "LSTM (default: from the lengths, to about 128 steps; 1 = none; per-sequence only)",
    )
    _flag(
        "--series-norm",
        action=argparse.BooleanOptionalAction,
        help="also feed each series standardized by its own mean and std (default on; off "
        "per step)",
    )
    _flag(
        "--levels",
        action=argparse.BooleanOptionalAction,
        help="with --series-norm, also feed each series' values, not only their standardized "
        "view (default: off for one channel with fewer than 20 training series a class whose "
        "lengths vary; on otherwise)",
    )
    _flag(
        "--augment",
        action=argparse.BooleanOptionalAction,
        help="crop, warp and scale each training series anew in every batch, real steps only "
        "(default: on for a classifier with fewer than 20 training series a class; off per "
        "step)",
    )
    _flag("--val-fraction", type=float, help="validation share (default 0.2)")
    _flag(
        "--patience",
        type=int,
        metavar="STEPS",
        help="early stopping after this many optimizer steps without progress, 0 = off "
        "(default: half the steps; 15 epochs per step)",
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


def given_options(args: argparse.Namespace) -> set[str]:
    """Names of the options given on the command line or in ``--config``.

    Args:
        args: The parsed arguments.

    Returns:
        The given options' field names.
    """
    names = {field.name for field in fields(TrainOptions)}
    given = {name for name in names if hasattr(args, name)}
    path = getattr(args, "config", None)
    if path is not None:
        given |= set(_read_toml(Path(path), "train")) & names
    return given


def plain(options: TrainOptions) -> dict[str, Any]:
    """The options as JSON values (paths as strings, tuples as lists).

    Args:
        options: The options.

    Returns:
        A JSON-ready dict of every field.
    """
    return {
        key: os.fspath(value)
        if isinstance(value, Path)
        else list(value)
        if isinstance(value, tuple)
        else value
        for key, value in asdict(options).items()
    }
