"""The demo: one small LSTM classifier trained once per technique, on real data, side by side.

:func:`run_demo` trains the same model (same seed, same initial weights, same hyperparameters) on
the bundled JapaneseVowels training split once per technique of
:data:`~varlen.training.techniques.TECHNIQUES`, selects the best epoch on a stratified validation
split carved from the training split, and measures accuracy on the test split. Features are
standardized with a :class:`~varlen.data.normalize.Standardizer` fitted on the real steps of the
training part only. ``varlen demo`` (:mod:`varlen.cli.demo`) runs it and presents the rows
(:mod:`varlen.cli._demo_report`).

The hyperparameters in :class:`DemoConfig` were chosen on the validation split, with the exact
techniques in mind, and are shared by every technique: the inexact rows (``pad-pre``,
``pad-post``) are worse because of what they feed the model, not because of their settings.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from varlen.batching.dataset import RaggedDataset
from varlen.data.normalize import Standardizer
from varlen.data.ragged import Ragged
from varlen.datasets import load
from varlen.datasets import path as dataset_path
from varlen.training.loop import TrainConfig, evaluate, fit, split_validation
from varlen.training.models import ModelConfig, Pooling, SequenceClassifier, SequenceModel
from varlen.training.techniques import TECHNIQUES, get_technique

__all__ = ["DATASET", "DemoConfig", "DemoRow", "run_demo"]

DATASET = "japanese_vowels"


@dataclass(frozen=True)
class DemoConfig:
    """The demo's hyperparameters, shared by every technique.

    Args:
        hidden_size: ``H`` of the LSTM.
        bidirectional: Run the LSTM in both directions (``D = 2``).
        pooling: How the recurrent outputs become one vector per sequence (see
            :class:`~varlen.training.models.ModelConfig`).
        dropout: Dropout before the linear head.
        epochs: Maximum training epochs.
        patience: Stop after this many epochs without a better validation loss.
        batch_size: Sequences per training batch.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        validation_fraction: Share of each class of the training split held out for
            validation (early stopping and the choice of the best epoch).
        seed: Seed of the initial weights, the validation split, the batches and dropout.
    """

    hidden_size: int = 64
    bidirectional: bool = True
    pooling: Pooling = "mean"
    dropout: float = 0.3
    epochs: int = 60
    patience: int = 15
    batch_size: int = 32
    lr: float = 1e-2
    weight_decay: float = 1e-3
    validation_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                "DemoConfig: validation_fraction must be in (0, 1), "
                f"got {self.validation_fraction!r}."
            )
        for name, low in (("patience", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"DemoConfig: {name} must be an int >= {low}, got {value!r}.")
        self.model_config(input_size=1, num_classes=1)  # validates the model fields
        self.train_config("mask")  # validates the training fields

    def model_config(self, *, input_size: int, num_classes: int) -> ModelConfig:
        """Return the classifier's :class:`~varlen.training.models.ModelConfig`."""
        return ModelConfig(
            input_size,
            num_classes,
            task="classification",
            hidden_size=self.hidden_size,
            bidirectional=self.bidirectional,
            pooling=self.pooling,
            dropout=self.dropout,
        )

    def train_command(self, technique: str, *, batches_per_epoch: int) -> list[str]:
        """The ``varlen train`` arguments that train one technique's row as the demo does.

        The same split, standardization, initial weights, model and optimizer: a constant
        learning rate without warm-up, no convolutional front-end or series standardization,
        and the demo's patience in epochs as optimizer steps.

        Args:
            technique: The row's technique.
            batches_per_epoch: Optimizer steps of one epoch (to state the patience in steps).

        Returns:
            The arguments after ``varlen``.
        """
        train = dataset_path(DATASET, split="train")
        test = dataset_path(DATASET, split="test")
        return [
            "train", str(train), "--test", str(test), "--technique", technique,
            "--epochs", str(self.epochs), "--patience", str(self.patience * batches_per_epoch),
            "--batch-size", str(self.batch_size), "--lr", f"{self.lr:g}",
            "--weight-decay", f"{self.weight_decay:g}", "--schedule", "constant",
            "--warmup", "0", "--hidden-size", str(self.hidden_size),
            "--bidirectional" if self.bidirectional else "--no-bidirectional",
            "--pooling", self.pooling, "--dropout", f"{self.dropout:g}", "--conv-layers", "0",
            "--no-series-norm", "--val-fraction", f"{self.validation_fraction:g}",
            "--seed", str(self.seed),
        ]  # fmt: skip

    def train_config(self, technique: str) -> TrainConfig:
        """Return the :class:`~varlen.training.loop.TrainConfig` of one technique's run."""
        return TrainConfig(
            technique=technique,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            patience=self.patience,
            seed=self.seed,
        )


@dataclass(frozen=True)
class DemoRow:
    """What one technique's run measured.

    Attributes:
        technique: The technique's name.
        description: Its one-line description.
        exact: Whether each sequence's result equals the sequence run alone.
        test_accuracy: Accuracy on the test split (370 utterances), of the best epoch's weights.
        val_accuracy: Accuracy on the validation split at the best epoch.
        real_steps_per_second: Training throughput in real (unpadded) steps per second of
            forward + backward + optimizer work, the median over epochs.
        padding_efficiency: Real steps over computed steps while training (1 = no waste),
            the mean over epochs.
        seconds: Wall time of the run: training, validation and the test evaluation.
        epochs: Epochs run (fewer than the maximum when stopped early).
        best_epoch: The epoch whose weights were kept, counted from 1 (as ``varlen train``
            counts epochs everywhere).
        steps_per_epoch: Optimizer steps of one epoch.
    """

    technique: str
    description: str
    exact: bool
    test_accuracy: float
    val_accuracy: float
    real_steps_per_second: float
    padding_efficiency: float
    seconds: float
    epochs: int
    best_epoch: int
    steps_per_epoch: int = 0


@dataclass(frozen=True)
class _Data:
    """The demo's splits, standardized, with class ids."""

    x_train: Ragged
    y_train: np.ndarray
    x_val: Ragged
    y_val: np.ndarray
    x_test: Ragged
    y_test: np.ndarray
    num_classes: int


def _check_techniques(techniques: Sequence[str] | None) -> tuple[str, ...]:
    where = "run_demo"
    if techniques is None:
        return tuple(TECHNIQUES)
    if isinstance(techniques, str) or len(techniques) == 0:
        raise ValueError(
            f"{where}: techniques must be a non-empty sequence of names, got {techniques!r}."
        )
    for i, name in enumerate(techniques):
        if name not in TECHNIQUES:
            raise ValueError(
                f"{where}: techniques[{i}] must be one of {', '.join(TECHNIQUES)}, got {name!r}."
            )
    duplicated = sorted({name for name in techniques if list(techniques).count(name) > 1})
    if duplicated:
        raise ValueError(f"{where}: techniques must be distinct, got {duplicated} twice or more.")
    return tuple(techniques)


def _class_ids(labels: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(classes)}
    return np.array([index[str(label)] for label in labels], dtype=np.int64)


def _load_data(config: DemoConfig) -> _Data:
    """Load both splits, hold out a stratified validation part, standardize on train only."""
    train, test = load(DATASET, split="train"), load(DATASET, split="test")
    if train.y is None or test.y is None:
        raise RuntimeError(f"varlen bug: the bundled {DATASET} has no class labels.")
    classes = train.class_labels
    y_all, y_test = _class_ids(train.y, classes), _class_ids(test.y, classes)
    fit_idx, val_idx = split_validation(
        y_all, config.validation_fraction, seed=config.seed, stratify=True
    )
    scaler = Standardizer.fit(train.x[fit_idx])

    def prepare(x: Ragged) -> Ragged:
        return x.with_values(scaler.transform(x).values.astype(np.float32))

    return _Data(
        prepare(train.x[fit_idx]),
        y_all[fit_idx],
        prepare(train.x[val_idx]),
        y_all[val_idx],
        prepare(test.x),
        y_test,
        len(classes),
    )


def _initial_weights(config: DemoConfig, data: _Data) -> dict[str, torch.Tensor]:
    """Return the initial weights every technique starts from, without touching global RNG."""
    F = data.x_train.values.shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = SequenceClassifier(
            F, data.num_classes, **_model_options(config.model_config(input_size=F, num_classes=1))
        )
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _model_options(model_config: ModelConfig) -> dict[str, Any]:
    skip = {"input_size", "output_size", "task"}
    return {
        f.name: getattr(model_config, f.name) for f in fields(model_config) if f.name not in skip
    }


def _test_accuracy(
    model: SequenceClassifier, data: _Data, technique: str, config: DemoConfig
) -> float:
    """Accuracy on the test split, batched the way the technique trains.

    The test file is sorted by speaker; a seeded shuffle makes its batches mix lengths like the
    training batches do, which matters only for the inexact techniques (their results depend on
    the other sequences of the batch).
    """
    order = np.random.default_rng([config.seed, 1]).permutation(len(data.y_test))
    _, accuracy = evaluate(
        model,
        data.x_test[order],
        data.y_test[order],
        technique=technique,
        batch_size=config.batch_size,
    )
    return accuracy


def _warm_up(model_config: ModelConfig, technique: str, data: _Data, config: DemoConfig) -> None:
    """Run one batch forward and backward through a throwaway model, off the clock.

    One-time costs (the optimizer's lazy imports take seconds, kernels set themselves up)
    would otherwise land on whichever technique happens to run first.
    """
    model = SequenceModel(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    indices = np.arange(min(config.batch_size, len(data.y_train)))
    step = get_technique(technique).run(model, RaggedDataset(data.x_train), indices)
    step.scores.sum().backward()  # type: ignore[no-untyped-call]
    optimizer.step()


def _run_one(
    technique: str,
    data: _Data,
    initial: dict[str, torch.Tensor],
    config: DemoConfig,
    *,
    progress: bool,
) -> DemoRow:
    """Train from ``initial`` with one technique and measure it."""
    F = data.x_train.values.shape[1]
    model_config = config.model_config(input_size=F, num_classes=data.num_classes)
    model = SequenceClassifier(F, data.num_classes, **_model_options(model_config))
    model.load_state_dict(initial)
    _warm_up(model_config, technique, data, config)
    began = time.perf_counter()
    result = fit(
        model,
        data.x_train,
        data.y_train,
        config=config.train_config(technique),
        validation=(data.x_val, data.y_val),
        progress=progress,
    )
    accuracy = _test_accuracy(model, data, technique, config)
    history = result.history
    best = next(stats for stats in history if stats.epoch == result.best_epoch)
    chosen = get_technique(technique)
    return DemoRow(
        technique=technique,
        description=chosen.description,
        exact=chosen.exact,
        test_accuracy=accuracy,
        val_accuracy=math.nan if best.val_metric is None else best.val_metric,
        real_steps_per_second=float(np.median([s.real_steps_per_second for s in history])),
        padding_efficiency=float(np.mean([s.padding_efficiency for s in history])),
        seconds=time.perf_counter() - began,
        epochs=len(history),
        best_epoch=result.best_epoch + 1,
        steps_per_epoch=history[0].steps if history else 0,
    )


def run_demo(
    *,
    techniques: Sequence[str] | None = None,
    config: DemoConfig | None = None,
    progress: bool = True,
    num_threads: int | None = 1,
    log: Callable[[str], None] | None = None,
) -> list[DemoRow]:
    """Train the same LSTM classifier once per technique on JapaneseVowels; measure each.

    Every run starts from the same initial weights and uses the same hyperparameters, seed,
    validation split and standardization. Torch's global random state and thread count are
    restored afterwards.

    The models are tiny (batches of 32 sequences of at most 29 steps), so torch's intra-op
    threads only add synchronization: one thread is faster, and far faster on a busy machine
    where spinning threads wait for each other.

    Args:
        techniques: Names from :data:`~varlen.training.techniques.TECHNIQUES`, in the order
            to run them; ``None`` runs all seven.
        config: Hyperparameters; ``None`` uses :class:`DemoConfig`'s defaults.
        progress: Show progress bars on stderr: one over techniques, one over epochs.
        num_threads: Torch intra-op threads while training; ``None`` keeps the current setting.
        log: Called with one line per finished technique when ``progress`` is off (stderr
            not a terminal: a log file or a pipe), so a long run is not silent.

    Returns:
        One :class:`DemoRow` per technique, in the order given.

    Raises:
        ValueError: If ``techniques`` is empty, names an unknown technique or repeats one,
            or ``num_threads < 1``.
    """
    names = _check_techniques(techniques)
    if num_threads is not None and (isinstance(num_threads, bool) or num_threads < 1):
        raise ValueError(f"run_demo: num_threads must be >= 1 or None, got {num_threads!r}.")
    config = DemoConfig() if config is None else config
    data = _load_data(config)
    with _threads(num_threads), torch.random.fork_rng(devices=[]):
        return _run_all(names, data, config, progress=progress, log=log)


@contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """Set torch's intra-op thread count for the block, then restore it."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _run_all(
    names: tuple[str, ...],
    data: _Data,
    config: DemoConfig,
    *,
    progress: bool,
    log: Callable[[str], None] | None,
) -> list[DemoRow]:
    """Train every technique from the same initial weights, with the bars."""
    rows: list[DemoRow] = []
    initial = _initial_weights(config, data)
    bar = tqdm(names, desc="demo", unit="technique", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        row = _run_one(name, data, initial, config, progress=progress)
        rows.append(row)
        line = (
            f"{name}: test accuracy {row.test_accuracy:.3f}, "
            f"{row.real_steps_per_second:,.0f} real steps/s, {row.seconds:.1f} s"
        )
        if progress:
            bar.write(line, file=sys.stderr)
        elif log is not None:
            log(f"{line} ({len(rows)}/{len(names)} techniques)")
    return rows
