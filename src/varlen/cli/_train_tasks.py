"""The tasks of ``varlen train``: what differs between a per-sequence and a per-step model.

``varlen train`` has one path (:mod:`varlen.cli.train`); a task is the small strategy it asks
for what depends on the kind of model: which options it refuses (one line with the reason),
its defaults (:mod:`varlen.cli._train_plan`), how the data is prepared (targets per sequence,
or per step from a table whose target varies within sequences), the model, how techniques are
timed, which training function runs the one loop, and how a split is scored.

A per-step task (:func:`choose_task` finds it) labels each step (labels), regresses each step
(floating numbers), or with ``--horizon H`` forecasts the target ``H`` steps ahead with a causal
model (the target's own past becomes an input feature). A step whose target is missing is
left out of the loss and the metrics. Loss and metrics count real steps only. Its data is a
table read into memory, or a store of per-step targets (``varlen convert`` of such a table),
left on disk: the same splits, standardizers and encoding, computed in streaming passes, and
the same training function over the store's batches.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np
import torch

from varlen.batching.dataset import RaggedDataset
from varlen.cli._common import (
    TABLE_SUFFIXES,
    CommandError,
    LoadedData,
    StoredData,
    _check_loaded,
    is_store,
    load_data,
    load_store,
    table_options,
)
from varlen.cli._steps import StepTable, per_step_table, read_step_table
from varlen.cli._targets import (
    StepTargets,
    Targets,
    encode_targets,
    infer_task,
    label_text,
    normalized,
    step_classes,
    step_targets_column,
    take_rows,
)
from varlen.cli._train_options import TrainOptions
from varlen.cli._train_plan import (
    PER_SEQUENCE,
    PER_STEP,
    TaskDefaults,
    TaskKind,
    conv_kernels,
    conv_pools,
    plan_block_steps,
    plan_validation,
)
from varlen.data.io.store import StoredRagged, fit_standardizer
from varlen.data.normalize import Standardizer
from varlen.data.ragged import Ragged
from varlen.training.loop import (
    FitResult,
    TrainConfig,
    evaluate,
    fit,
    predict_scores,
    split_validation,
    time_task,
)
from varlen.training.models import ModelConfig, SequenceModel
from varlen.training.per_step import STEP_TECHNIQUES, evaluate_steps, fit_steps, step_task
from varlen.training.techniques import Timing, get_technique, time_techniques

__all__ = [
    "Prepared",
    "Score",
    "SequenceTask",
    "Split",
    "StepTask",
    "Task",
    "choose_task",
]


class Split(NamedTuple):
    """Inputs (normalized, float32) and encoded targets of one split.

    Attributes:
        x: ``B`` sequences, in memory or in a store (normalized as each batch is read).
        y: ``(B,)`` targets per sequence, or a ``Ragged`` of per-step targets aligned with ``x``.
    """

    x: Ragged | StoredRagged
    y: Any


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


class Score(NamedTuple):
    """Loss and metric on one split (accuracy, or MAE in the target's units)."""

    loss: float
    metric: float


class Fit(Protocol):
    """The training function a task runs (:func:`~varlen.training.fit` or ``fit_steps``)."""

    def __call__(
        self,
        model: SequenceModel,
        prepared: Prepared,
        config: TrainConfig,
        *,
        checkpoint: Path,
        resume: bool,
        progress: bool,
        log: Callable[[str], None] | None,
    ) -> FitResult:
        """Train ``model``."""
        ...


class Task(Protocol):
    """What ``varlen train`` asks of a kind of model."""

    kind: TaskKind
    defaults: TaskDefaults

    def check(self, options: TrainOptions, given: set[str]) -> None:
        """Refuse, in one line with the reason, an option that does not apply."""
        ...

    def prepare(self, options: TrainOptions, warn: Callable[[str], None]) -> Prepared:
        """Load, encode, split and standardize the data."""
        ...

    def build_model(self, options: TrainOptions, prepared: Prepared) -> SequenceModel:
        """The untrained model, its weights a function of the seed."""
        ...

    def time(
        self, options: TrainOptions, prepared: Prepared, candidates: tuple[str, ...]
    ) -> Mapping[str, Timing]:
        """Time the candidate techniques on the training data."""
        ...

    def fit(
        self,
        model: SequenceModel,
        prepared: Prepared,
        config: TrainConfig,
        *,
        checkpoint: Path,
        resume: bool,
        progress: bool,
        log: Callable[[str], None] | None,
    ) -> FitResult:
        """Train the model with the one loop."""
        ...

    def score(
        self, model: SequenceModel, split: Split, prepared: Prepared, technique: str, batch: int
    ) -> Score:
        """Score a split as it is predicted."""
        ...

    def targets(self, prepared: Prepared) -> np.ndarray | StoredRagged:
        """The training targets as one array, or a store's per-step ones (for the digest)."""
        ...

    def describe(self, options: TrainOptions, prepared: Prepared) -> tuple[str, str, str]:
        """``(task line or '', kind of targets, metric name)`` for the report."""
        ...


def load_source(path: Path, options: TrainOptions) -> LoadedData | StoredData:
    """Read DATA (or ``--test``): a ``.ts`` file or a table in memory, a store left on disk.

    Args:
        path: The file.
        options: The options (a table's ``--id --order --features --target``).

    Returns:
        The sequences, targets, feature names, ids and declared class labels.
    """
    if is_store(path):
        return load_store(path, **table_options(options))
    return load_data(path, **table_options(options))


def _column(values: np.ndarray) -> Ragged:
    """``(B,)`` values as one sequence of ``B`` steps with one feature (for a Standardizer)."""
    return Ragged(values.reshape(-1, 1), np.array([0, len(values)], dtype=np.int64))


def _check_classes(targets: Targets, what: str) -> None:
    if targets.labels is not None and len(targets.labels) < 2:
        raise CommandError(
            f"target must have at least 2 classes for {what}, got {list(targets.labels)}."
        )


def _model_config(
    options: TrainOptions, prepared: Prepared, *, per_step: bool, horizon: int = 0
) -> ModelConfig:
    layers = options.conv_layers or 0
    if options.pooling is None:
        raise ValueError("varlen bug: _model_config needs the planned pooling (plan_pooling)")
    if options.levels is None:
        raise ValueError("varlen bug: _model_config needs the planned levels (plan_levels)")
    return ModelConfig(
        input_size=len(prepared.features),
        output_size=len(prepared.labels) if prepared.labels is not None else 1,
        task=prepared.task,
        cell=options.cell,
        hidden_size=options.hidden_size,
        num_layers=options.num_layers,
        bidirectional=bool(options.bidirectional),
        dropout=options.dropout,
        pooling=options.pooling,
        conv_channels=(options.conv_channels,) * layers,
        conv_kernels=conv_kernels(layers),
        conv_pools=() if per_step else conv_pools(options.pool, layers, prepared.train.x.lengths),
        series_norm=bool(options.series_norm),
        levels=options.levels,
        per_step=per_step,
        horizon=horizon,
    )


class SequenceTask:
    """One target per sequence: a classifier or a regressor."""

    kind: TaskKind = "sequence"
    defaults = PER_SEQUENCE

    def check(self, options: TrainOptions, given: set[str]) -> None:
        """Nothing to refuse: every option applies (``--horizon`` is refused earlier)."""

    def prepare(self, options: TrainOptions, warn: Callable[[str], None]) -> Prepared:
        """Load, encode, split (stratified) and standardize on the training split only.

        Warns and trains on everything when the validation split would be too small. A
        store stays on disk: the splits are rows of it, the standardizer is fitted in one
        streaming pass over the training rows and applied to each batch as it is read.
        """
        data = load_source(options.data, options)
        targets = encode_targets(
            data.y, task=options.task, ids=data.ids, declared=data.class_labels
        )
        _check_classes(targets, "classification")
        test = self._load_test(options, targets, data.features)
        classification = targets.task == "classification"
        fraction, warning = plan_validation(
            targets.y, options.val_fraction, classification=classification
        )
        if warning:
            warn(warning)
        train_idx, val_idx = split_validation(
            targets.y, fraction, seed=options.seed, stratify=classification
        )
        block_steps = plan_block_steps(len(data.features))
        normalizer = fit_standardizer(data.x, rows=train_idx, block_steps=block_steps)
        target_normalizer = (
            None if classification else Standardizer.fit(_column(targets.y[train_idx]))
        )

        def split(x: Ragged | StoredRagged, y: np.ndarray) -> Split:
            if target_normalizer is not None:
                y = target_normalizer.transform(_column(y)).values[:, 0].astype(np.float32)
            return Split(normalized(x, normalizer), y)

        return Prepared(
            train=split(take_rows(data.x, train_idx), targets.y[train_idx]),
            validation=(
                split(take_rows(data.x, val_idx), targets.y[val_idx]) if len(val_idx) else None
            ),
            test=None if test is None else split(*test),
            task=targets.task,
            labels=targets.labels,
            features=data.features,
            normalizer=normalizer,
            target_normalizer=target_normalizer,
        )

    @staticmethod
    def _load_test(
        options: TrainOptions, targets: Targets, features: tuple[str, ...]
    ) -> tuple[Ragged | StoredRagged, np.ndarray] | None:
        if options.test is None:
            return None
        data = load_source(options.test, options)
        if data.features != features:
            raise CommandError(
                f"--test features must equal the training features {list(features)}, got "
                f"{list(data.features)}."
            )
        encoded = encode_targets(data.y, task=targets.task, ids=data.ids, labels=targets.labels)
        return data.x, encoded.y

    def build_model(self, options: TrainOptions, prepared: Prepared) -> SequenceModel:
        """The untrained model, its weights a function of the seed."""
        config = _model_config(options, prepared, per_step=False)
        torch.manual_seed(options.seed)
        return SequenceModel(config)

    def time(
        self, options: TrainOptions, prepared: Prepared, candidates: tuple[str, ...]
    ) -> Mapping[str, Timing]:
        """Time the candidates' forward and backward passes on the training data."""
        return time_techniques(
            self.build_model(options, prepared),
            RaggedDataset(prepared.train.x),
            prepared.train.y,
            candidates,
            batch_size=options.batch_size,
            seed=options.seed,
        )

    def fit(
        self,
        model: SequenceModel,
        prepared: Prepared,
        config: TrainConfig,
        *,
        checkpoint: Path,
        resume: bool,
        progress: bool,
        log: Callable[[str], None] | None,
    ) -> FitResult:
        """Train with :func:`varlen.training.fit`."""
        validation = None if prepared.validation is None else tuple(prepared.validation)
        return fit(
            model,
            prepared.train.x,
            prepared.train.y,
            config=config,
            validation=validation,
            checkpoint=checkpoint,
            resume=resume,
            progress=progress,
            log=log,
            log_every=1.0,
            checkpoint_every=10.0,
        )

    def score(
        self, model: SequenceModel, split: Split, prepared: Prepared, technique: str, batch: int
    ) -> Score:
        """Score a split as it would be predicted: batched like the technique if inexact.

        The loss is in standardized units for regression, the MAE in the target's units.
        """
        exact = get_technique(technique).exact
        how, size = ("bucket", 256) if exact else (technique, batch)
        loss, metric = evaluate(model, split.x, split.y, technique=how, batch_size=size)
        if prepared.target_normalizer is not None:
            scores = predict_scores(model, split.x, technique=how, batch_size=size).numpy()[:, 0]
            scale = float(prepared.target_normalizer.scale[0])
            metric = float(np.mean(np.abs(scores - split.y))) * scale
        return Score(loss, metric)

    def targets(self, prepared: Prepared) -> np.ndarray:
        """The encoded training targets."""
        y: np.ndarray = prepared.train.y
        return y

    def describe(self, options: TrainOptions, prepared: Prepared) -> tuple[str, str, str]:
        """No task line; the classes or regression; accuracy or MAE."""
        labels = prepared.labels
        kind = f"{len(labels)} classes" if labels is not None else "regression"
        return "", kind, "accuracy" if labels is not None else "MAE"


class StepTask:
    """A target per step, read from a table whose target varies within sequences."""

    kind: TaskKind = "step"
    defaults = PER_STEP

    def __init__(self, table: StepTable) -> None:
        self.table = table

    def check(self, options: TrainOptions, given: set[str]) -> None:
        """Refuse, with the reason, an option that does not apply to a per-step run.

        A technique that pools or is inexact, pooling, and convolution channels or a time
        budget without the convolutions or the step budget they apply to.
        """
        if options.technique != "auto" and options.technique not in STEP_TECHNIQUES:
            raise CommandError(
                f"--technique must be one of {list(STEP_TECHNIQUES)} (or auto) for a per-step "
                f"task, got {options.technique!r}: the others pool per sequence or are inexact."
            )
        if "pooling" in given:
            raise CommandError(
                f"--pooling {options.pooling} pools each sequence into one output; a per-step "
                "task has an output at every step. Drop --pooling."
            )
        if options.pool is not None and options.pool > 1:
            raise CommandError(
                f"--pool {options.pool} shortens each sequence; a per-step task has an output "
                "at every step of it. Drop --pool."
            )
        if options.augment:
            raise CommandError(
                "--augment crops and warps whole sequences, which would move each step away "
                "from its target in a per-step task. Drop --augment."
            )
        if "conv_channels" in given and not options.conv_layers:
            raise CommandError(
                f"--conv-channels {options.conv_channels} sets the channels of convolutions a "
                "per-step run has none of (--conv-layers is 0 per step). Add --conv-layers N "
                "or drop --conv-channels."
            )
        if "time_budget" in given and options.steps is None:
            raise CommandError(
                f"--time-budget {options.time_budget:g} plans a budget of --steps, and a "
                "per-step run trains 60 epochs without one. Add --steps N or drop --time-budget."
            )

    def _encode(
        self, steps: StepTable, options: TrainOptions, labels: tuple[str, ...] | None = None
    ) -> tuple[Targets, np.ndarray]:
        """Encode the labelled steps; the others get -1 (classes) or NaN (values)."""
        task = options.task
        if options.horizon and task == "auto":
            task = "regression"
        if steps.y is None:
            raise CommandError("DATA must hold the target column to train on, got none.")
        import pandas as pd

        labelled = ~np.asarray(pd.isna(steps.y), dtype=bool)
        if not labelled.any():
            raise CommandError(
                f"target {options.target!r} must have a value at some step, got none."
            )
        ids = np.repeat(np.asarray(steps.ids, dtype=object), steps.x.lengths)
        targets = encode_targets(steps.y[labelled], task=task, ids=ids[labelled], labels=labels)
        if targets.task == "classification":
            y = np.full(len(steps.y), -1, dtype=np.int64)
        else:
            y = np.full(len(steps.y), np.nan, dtype=np.float64)
        y[labelled] = targets.y
        return targets, y

    def prepare(self, options: TrainOptions, warn: Callable[[str], None]) -> Prepared:
        """Encode, split by sequence, and standardize on the training split's real steps only."""
        steps = self.table
        _check(steps, options.data)
        targets, y = self._encode(steps, options)
        _check_classes(targets, "labelling")
        y_all = steps.x.with_values(y)
        test = None
        if options.test is not None:
            test_steps = self._read_test(options)
            test_y = test_steps.x.with_values(self._encode(test_steps, options, targets.labels)[1])
            test = (test_steps.x, test_y)
        return _step_splits(
            options, steps.x, y_all, test, targets.task, targets.labels, steps.features
        )

    def _read_test(self, options: TrainOptions) -> StepTable:
        test = Path(options.test) if options.test is not None else Path()
        if test.suffix.lower() not in TABLE_SUFFIXES:
            raise CommandError(
                f"--test must be a table like DATA for a per-step task, got {os.fspath(test)!r}."
            )
        if not test.is_file():
            raise FileNotFoundError(f"--test file {os.fspath(test)!r} does not exist.")
        if options.id is None:
            raise CommandError("a per-step task needs --id, got none.")
        read = read_step_table(
            test,
            id=options.id,
            order=options.order,
            features=self.table.features,
            target=options.target,
        )
        _check(read, test)
        return read

    def build_model(self, options: TrainOptions, prepared: Prepared) -> SequenceModel:
        """The untrained per-step model, its weights a function of the seed."""
        config = _model_config(options, prepared, per_step=True, horizon=options.horizon)
        torch.manual_seed(options.seed)
        return SequenceModel(config)

    def time(
        self, options: TrainOptions, prepared: Prepared, candidates: tuple[str, ...]
    ) -> Mapping[str, Timing]:
        """Time each candidate's forward and backward passes on the training data."""
        model = self.build_model(options, prepared)
        timings = {}
        for name in candidates:
            config = TrainConfig(technique=name, batch_size=options.batch_size, seed=options.seed)
            task = step_task(prepared.train.x, prepared.train.y, config)
            timings[name] = time_task(model, task, config)
        return timings

    def fit(
        self,
        model: SequenceModel,
        prepared: Prepared,
        config: TrainConfig,
        *,
        checkpoint: Path,
        resume: bool,
        progress: bool,
        log: Callable[[str], None] | None,
    ) -> FitResult:
        """Train with :func:`varlen.training.fit_steps`."""
        validation = None if prepared.validation is None else tuple(prepared.validation)
        return fit_steps(
            model,
            prepared.train.x,
            prepared.train.y,
            config=config,
            validation=validation,
            checkpoint=checkpoint,
            resume=resume,
            progress=progress,
            log=log,
            log_every=1.0,
            checkpoint_every=10.0,
        )

    def score(
        self, model: SequenceModel, split: Split, prepared: Prepared, technique: str, batch: int
    ) -> Score:
        """Per-step loss and accuracy, or MAE in the target's units, over labelled steps."""
        loss, metric = evaluate_steps(model, split.x, split.y)
        if prepared.target_normalizer is not None:
            metric *= float(prepared.target_normalizer.scale[0])
        return Score(loss, metric)

    def targets(self, prepared: Prepared) -> np.ndarray | StoredRagged:
        """The encoded per-step training targets (a store's: read when hashed)."""
        y = prepared.train.y
        return y if isinstance(y, StoredRagged) else np.asarray(y.values)

    def target_name(self, options: TrainOptions) -> str | None:
        """The target column's name, for the report."""
        return options.target

    def describe(self, options: TrainOptions, prepared: Prepared) -> tuple[str, str, str]:
        """The task line; the per-step classes or values; per-step accuracy or MAE."""
        labels = prepared.labels
        horizon = options.horizon
        if horizon:
            line = (
                f"task: per-step forecasting: each step forecasts {self.target_name(options)!r} "
                f"{horizon} "
                f"step{'s' if horizon > 1 else ''} ahead (causal; its past is an input)"
            )
        else:
            what = "labelling (one class per step)" if labels else "regression"
            target = self.target_name(options)
            line = f"task: per-step {what}: target {target!r} varies within sequences"
        kind = f"{len(labels)} classes" if labels else "values"
        kind = ("forecast " if horizon else "per-step ") + kind
        return line, kind, "per-step accuracy" if labels else "per-step MAE"


class StoreStepTask(StepTask):
    """A target per step, from a store of per-step targets (``varlen convert`` of a table).

    The steps and targets stay on disk: the labels are found, the standardizers fitted and
    the data hashed in streaming passes, and the one training loop reads each batch of steps
    and targets from the store. Everything else is :class:`StepTask`'s.
    """

    def __init__(self, data: StoredData) -> None:
        self.data = data

    def check(self, options: TrainOptions, given: set[str]) -> None:
        """As :class:`StepTask`; ``--horizon`` was refused when the task was chosen."""
        super().check(options, given)

    def _encoding(
        self, y: StoredRagged, options: TrainOptions, classes: np.ndarray | None = None
    ) -> tuple[Targets, np.ndarray | None]:
        """The task, labels and sorted class values of a store's per-step targets."""
        task = infer_task(np.zeros(0, dtype=y.dtype), options.task)
        if task == "regression":
            return Targets("regression", np.zeros(0), None), None
        block_steps = plan_block_steps(1)
        found = step_classes(y, block_steps)
        if classes is None:
            if not found.size:
                raise CommandError(
                    f"target {self.data.target!r} must have a value at some step, got none."
                )
            fractional = found[found != np.round(found)]
            if fractional.size:
                raise CommandError(
                    f"target must hold class labels for classification, got the fractional "
                    f"number {fractional[0].item()!r}. Use --task regression to predict numbers."
                )
            classes = found
        else:
            unknown = np.setdiff1d(found, classes)
            if unknown.size:
                raise CommandError(
                    f"target labels must be among the training labels "
                    f"{[label_text(c) for c in classes.tolist()]}, got "
                    f"{label_text(unknown[0].item())!r} in --test."
                )
        labels = tuple(label_text(value) for value in classes.tolist())
        return Targets("classification", np.zeros(0, dtype=np.int64), labels), classes

    def prepare(self, options: TrainOptions, warn: Callable[[str], None]) -> Prepared:
        """Encode, split by sequence and standardize as :class:`StepTask`, streaming."""
        data = self.data
        if data.step_y is None:
            raise RuntimeError("varlen bug: a per-step store task without per-step targets")
        targets, classes = self._encoding(data.step_y, options)
        _check_classes(targets, "labelling")
        test = None
        if options.test is not None:
            test_data = load_source(options.test, options)
            if not isinstance(test_data, StoredData) or test_data.step_y is None:
                raise CommandError(
                    "--test must be a store of per-step targets like DATA, got "
                    f"{os.fspath(options.test)!r}."
                )
            self._encoding(test_data.step_y, options, classes)
            test = (test_data.x, test_data.step_y)
        return _step_splits(
            options,
            data.x,
            data.step_y,
            test,
            targets.task,
            targets.labels,
            data.features,
            classes=classes,
        )

    def target_name(self, options: TrainOptions) -> str | None:
        """The target column recorded in the store."""
        return self.data.target


def _step_splits(
    options: TrainOptions,
    x: Ragged | StoredRagged,
    y: Ragged | StoredRagged,
    test: tuple[Ragged | StoredRagged, Ragged | StoredRagged] | None,
    task: Literal["classification", "regression"],
    labels: tuple[str, ...] | None,
    features: tuple[str, ...],
    *,
    classes: np.ndarray | None = None,
) -> Prepared:
    """Split by sequence and standardize on the training split's real steps only.

    ``y`` is encoded already (in memory: class ids with -1, or values with NaN), or as stored
    (a store: encoded as read, by :class:`~varlen.cli._targets.StepTargets` with ``classes``).
    Both standardizers are fitted in streaming passes planned from the lengths alone, so a
    table and its store give the same statistics, bit for bit.
    """
    train_idx, val_idx = split_validation(
        np.zeros(len(x)), options.val_fraction, seed=options.seed, stratify=False
    )
    normalizer = fit_standardizer(x, rows=train_idx, block_steps=plan_block_steps(len(features)))
    target_normalizer = None
    if task == "regression":
        column: Ragged | StoredRagged = (
            y.with_transform(step_targets_column)
            if isinstance(y, StoredRagged)
            else step_targets_column(y)
        )
        target_normalizer = fit_standardizer(
            column, rows=train_idx, block_steps=plan_block_steps(1)
        )
    encode = StepTargets(classes if task == "classification" else None, target_normalizer)

    def split(x: Ragged | StoredRagged, y: Ragged | StoredRagged) -> Split:
        if isinstance(y, StoredRagged):
            return Split(normalized(x, normalizer), y.with_transform(encode))
        return Split(normalized(x, normalizer), y if task == "classification" else encode(y))

    return Prepared(
        train=split(take_rows(x, train_idx), take_rows(y, train_idx)),
        validation=(split(take_rows(x, val_idx), take_rows(y, val_idx)) if len(val_idx) else None),
        test=None if test is None else split(*test),
        task=task,
        labels=labels,
        features=features,
        normalizer=normalizer,
        target_normalizer=target_normalizer,
    )


def _check(steps: StepTable, path: Path) -> None:
    _check_loaded(LoadedData(steps.x, None, steps.features, steps.ids, ()), os.fspath(path))


def choose_task(options: TrainOptions) -> Task:
    """The task of a run: per step or per sequence.

    Per step when the table's target varies within a sequence (or ``--horizon`` is given),
    or when DATA is a store of per-step targets (``varlen convert`` found the same).

    Args:
        options: The options.

    Returns:
        The task (a per-step one holds the table, read once, or the opened store).
    """
    if is_store(options.data) and Path(options.data).is_file():
        data = load_source(options.data, options)
        if isinstance(data, StoredData) and data.step_y is not None:
            if options.horizon:
                raise CommandError(
                    f"--horizon {options.horizon} forecasts the target from its own past, an "
                    "input feature, and a store keeps its per-step targets apart from its "
                    f"features, got {options.data.name!r}. Train on the CSV/Parquet table itself."
                )
            return StoreStepTask(data)
    table = per_step_table(options)
    return SequenceTask() if table is None else StepTask(table)
