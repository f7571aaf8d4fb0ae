"""``varlen train DATA``: train a classifier or regressor on your own variable-length data.

Steps: read the data (``.ts``, or a long-format CSV/Parquet table with ``--id --order
--features --target``), check the targets fit the task (inferred: labels -> classification,
floating numbers -> regression), split a validation set (stratified by class), fit the
standardizer on the training split's real steps only, pick a technique (``auto`` measures the
padding of random batches and says why), train with early stopping and an atomic checkpoint
each epoch (``--resume`` continues an interrupted run exactly), report, and save the model
directory (see :mod:`varlen.training.artifacts`).

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
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.distributed as dist

from varlen._atomic import remove_stale_temporaries, write_text
from varlen._checks import check_choice
from varlen._lock import FolderBusyError, folder_lock
from varlen.cli._common import (
    CommandError,
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
from varlen.training.loop import (
    FitResult,
    TrainConfig,
    choose_technique,
    evaluate,
    fit,
    predict_scores,
    split_validation,
)
from varlen.training.models import Cell, ModelConfig, Pooling, SequenceModel
from varlen.training.techniques import TECHNIQUES, get_technique

__all__ = ["TrainOptions", "add_arguments", "run"]

CHECKPOINT_FILE = "checkpoint.pt"
RUN_FILE = "run.json"
_TASKS: tuple[TaskChoice, ...] = ("auto", "classification", "regression")
_MINIMA = {
    "epochs": 1,
    "batch_size": 1,
    "hidden_size": 1,
    "num_layers": 1,
    "patience": 0,
    "seed": 0,
    "horizon": 0,
}


@dataclass(frozen=True)
class TrainOptions:
    """Everything ``varlen train`` takes (flags, or keys of ``--config file.toml``).

    Args:
        data: The training file.
        test: A test file, scored at the end (never used for training or selection).
        out: The model directory (also holds ``checkpoint.pt`` and ``run.json``).
        task: ``"auto"``, ``"classification"`` or ``"regression"``.
        technique: ``"auto"`` or a name of :data:`varlen.training.techniques.TECHNIQUES`.
        epochs: Maximum epochs.
        batch_size: Sequences per batch.
        lr: Adam learning rate.
        hidden_size: ``H``.
        num_layers: ``L``.
        bidirectional: ``D = 2``.
        cell: ``"lstm"`` or ``"gru"``.
        pooling: ``"last"``, ``"mean"`` or ``"max"``.
        dropout: Dropout between layers and before the head.
        val_fraction: Share of the training data held out for validation, in ``[0, 1)``.
        patience: Epochs without a better validation loss before stopping; 0 never stops.
        seed: Seed of the split, the weights, the batches and dropout.
        resume: Continue from ``out/checkpoint.pt`` if it exists.
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
    epochs: int = 60
    batch_size: int = 32
    lr: float = 3e-3
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    cell: Cell = "lstm"
    pooling: Pooling = "last"
    dropout: float = 0.0
    val_fraction: float = 0.2
    patience: int = 15
    seed: int = 0
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
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"{where}: val_fraction must be in [0, 1), got {self.val_fraction!r}.")
        for name, low in _MINIMA.items():
            if getattr(self, name) < low:
                raise ValueError(f"{where}: {name} must be >= {low}, got {getattr(self, name)!r}.")
        if not 0 < self.lr < float("inf"):
            raise ValueError(f"{where}: lr must be finite and > 0, got {self.lr!r}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{where}: dropout must be in [0, 1), got {self.dropout!r}.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``varlen train``'s arguments.

    Args:
        parser: The command's parser.
    """
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
        help="how batches are formed and fed (default auto: picked from the lengths)",
    )
    _flag("--epochs", type=int, help="maximum epochs (default 60)")
    _flag("--batch-size", type=int, help="sequences per batch (default 32)")
    _flag("--lr", type=float, help="Adam learning rate (default 3e-3)")
    _flag("--hidden-size", type=int, help="hidden size H (default 64)")
    _flag("--num-layers", type=int, help="recurrent layers L (default 1)")
    _flag("--bidirectional", action="store_true", help="run both directions")
    _flag("--cell", choices=("lstm", "gru"), help="recurrent cell (default lstm)")
    _flag("--pooling", choices=("last", "mean", "max"), help="over real steps (default last)")
    _flag("--dropout", type=float, help="dropout (default 0)")
    _flag("--val-fraction", type=float, help="validation share (default 0.2)")
    _flag("--patience", type=int, help="early-stopping patience in epochs, 0 = off (default 15)")
    _flag("--seed", type=int, help="seed of everything random (default 0)")
    _flag("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
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


def prepare(options: TrainOptions) -> Prepared:
    """Load, encode, split and normalize the data (the standardizers see training steps only).

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
    train_idx, val_idx = split_validation(
        targets.y, options.val_fraction, seed=options.seed, stratify=classification
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


def _technique(options: TrainOptions, lengths: np.ndarray) -> tuple[str, str]:
    if options.technique != "auto":
        return options.technique, "chosen with --technique"
    name, reason = choose_technique(lengths, batch_size=options.batch_size)
    return name, f"auto: {reason}"


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
        bidirectional=options.bidirectional,
        dropout=options.dropout,
        pooling=options.pooling,
    )
    torch.manual_seed(options.seed)
    return SequenceModel(config)


def _fingerprint(options: TrainOptions, prepared: Prepared, technique: str) -> dict[str, Any]:
    """What must not change between an interrupted run and its ``--resume``."""
    kept = asdict(options)
    for name in ("data", "test", "out", "resume", "epochs", "patience"):
        kept.pop(name)
    kept["features"] = list(prepared.features)
    kept["technique"] = technique
    digest = hashlib.sha256(np.ascontiguousarray(prepared.train.x.values).tobytes())
    digest.update(prepared.train.x.offsets.tobytes())
    digest.update(np.ascontiguousarray(prepared.train.y).tobytes())
    kept["train_data_sha256"] = digest.hexdigest()
    return kept


def _check_resume(options: TrainOptions, fingerprint: dict[str, Any], args: Any) -> bool:
    """Return whether to resume; write or check ``run.json`` (rank 0 writes)."""
    checkpoint = options.out / CHECKPOINT_FILE
    run_file = options.out / RUN_FILE
    if options.resume and checkpoint.is_file():
        if not run_file.is_file():
            raise CommandError(
                f"--resume needs {os.fspath(run_file)!r}, written when the run started, got "
                "none. Rerun without --resume to start over."
            )
        saved = json.loads(run_file.read_text(encoding="utf-8"))
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
        write_text(run_file, json.dumps(fingerprint, indent=2) + "\n")
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
    lines = [
        f"data: {options.data.name}: {len(prepared.train.x)} train / {val} validation "
        f"sequences, {count(len(prepared.features), 'feature')}, {kind}",
        f"technique: {technique[0]} ({technique[1]})",
        f"epochs: {len(history)} run, best {result.best_epoch + 1}"
        + (" (stopped early)" if result.stopped_early else ""),
    ]
    for name, value in scores.items():
        lines.append(f"{name}: loss {value.loss:.4f}{unit}, {metric} {value.metric:.4f}")
    if history:
        speed = np.mean([stats.real_steps_per_second for stats in history])
        efficiency = np.mean([stats.padding_efficiency for stats in history])
        lines.append(f"speed: {speed:,.0f} real steps/s, padding efficiency {efficiency:.3f}")
    lines.append(f"model: {os.fspath(options.out)}")
    return lines


# ----------------------------------------------------------------------------- command


def run(args: argparse.Namespace) -> int:
    """Run ``varlen train``.

    Args:
        args: The parsed arguments.

    Returns:
        The exit code, 0.
    """
    options = build_config(TrainOptions, args, command="train")
    from varlen.cli._steps import per_step_table, train_per_step

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
    options: TrainOptions, prepared: Prepared, technique: str, *, resume: bool, progress: bool
) -> tuple[SequenceModel, FitResult]:
    """Build the model and train it, checkpointing to ``out/checkpoint.pt`` each epoch."""
    model = build_model(options, prepared)
    config = TrainConfig(
        technique=technique,
        epochs=options.epochs,
        batch_size=options.batch_size,
        lr=options.lr,
        patience=options.patience or None,
        seed=options.seed,
    )
    validation = None if prepared.validation is None else tuple(prepared.validation)
    result = fit(
        model,
        prepared.train.x,
        prepared.train.y,
        config=config,
        validation=validation,  # type: ignore[arg-type]
        checkpoint=options.out / CHECKPOINT_FILE,
        resume=resume,
        progress=progress,
    )
    return model, result


def _save(
    options: TrainOptions,
    model: SequenceModel,
    prepared: Prepared,
    result: FitResult,
    technique: tuple[str, str],
) -> dict[str, Score]:
    """Score the validation and test splits, save the model directory; return the scores."""
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
            "options": {
                key: os.fspath(value) if isinstance(value, Path) else value
                for key, value in asdict(options).items()
            },
            "technique_reason": technique[1],
            "history": [asdict(stats) for stats in result.history],
            "best_epoch": result.best_epoch,
            "scores": {name: value._asdict() for name, value in scores.items()},
        },
    )
    return scores


def _train(options: TrainOptions, args: argparse.Namespace) -> int:
    """The command's steps: prepare, choose, (resume,) fit, then on rank 0 save and report."""
    rank = _rank()
    if rank != 0:  # other ranks train silently
        args = argparse.Namespace(**{**vars(args), "quiet": True})
    prepared = prepare(options)
    technique = _technique(options, prepared.raw_lengths)
    say(args, f"technique: {technique[0]} ({technique[1]})")
    resume = _check_resume(options, _fingerprint(options, prepared, technique[0]), args)
    progress = progress_enabled(args)
    model, result = _fit(options, prepared, technique[0], resume=resume, progress=progress)
    if rank != 0:
        return 0
    scores = _save(options, model, prepared, result, technique)
    print("\n".join(_report_lines(options, prepared, result, scores, technique)))
    return 0
