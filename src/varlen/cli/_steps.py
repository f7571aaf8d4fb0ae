"""Per-step tasks in ``varlen train`` and ``varlen predict``: targets that vary within sequences.

``varlen train TABLE --id ID --order T --target Y`` reads the table once here. When ``Y`` takes
more than one value within some sequence, the task is per step (said in one line): labelling
(labels: one class per step) or per-step regression (floating numbers), and with ``--horizon H``
a causal forecaster of ``Y`` ``H`` steps ahead (``Y``'s own past becomes an input feature). Loss and
metrics count real steps only; the model directory records ``per_step`` in its config, and
``varlen predict`` on it writes one row per step: the id, the order column when given, the
prediction (and ``prob_<label>`` per class). For a forecaster the prediction at step ``t`` is
the forecast of step ``t + H``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from varlen._atomic import write_text
from varlen._types import AnyArray
from varlen.cli._common import (
    TABLE_SUFFIXES,
    CommandError,
    LoadedData,
    _check_loaded,
    count,
    progress_enabled,
    say,
)
from varlen.cli._targets import Targets, encode_targets, normalize_inputs
from varlen.data.normalize import Standardizer
from varlen.data.ragged import Ragged
from varlen.training.artifacts import LoadedModel, save_model
from varlen.training.loop import FitResult, TrainConfig, split_validation
from varlen.training.models import ModelConfig, SequenceModel
from varlen.training.per_step import (
    STEP_TECHNIQUES,
    evaluate_steps,
    fit_steps,
    predict_step_scores,
)

__all__ = ["StepTable", "predict_per_step", "read_step_table", "train_per_step"]

PER_STEP_EPOCHS = 60
"""Epochs of a per-step run without ``--epochs`` (``varlen train``'s step budget and schedule
are for per-sequence models)."""
PER_STEP_PATIENCE = 15
"""Early-stopping patience of a per-step run, in epochs, without ``--patience``."""

_ROW = "__varlen_row__"
CHECKPOINT_FILE = "checkpoint.pt"
RUN_FILE = "run.json"


class StepTable(NamedTuple):
    """A long table grouped into sequences, with per-step targets and order values.

    Attributes:
        x: ``B`` sequences, float64 values ``(N, F)`` (NaN: missing).
        ids: ``(B,)`` sequence ids, sorted.
        y: ``(N,)`` the target of every step as read, or ``None``.
        order: ``(N,)`` the order column's value at every step, or ``None``.
        features: The ``F`` feature names.
    """

    x: Ragged
    ids: AnyArray
    y: AnyArray | None
    order: AnyArray | None
    features: tuple[str, ...]


def _read_frame(path: Path) -> Any:
    import pandas as pd

    try:
        return pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        message = " ".join(str(error).split())
        raise ValueError(
            f"read_table: {os.fspath(path)!r} must be a CSV table with a header row, got: "
            f"{message}."
        ) from None


def read_step_table(
    path: Path,
    *,
    id: str,
    order: str | None,
    features: tuple[str, ...] | None,
    target: str | None,
    target_as_feature: bool = False,
) -> StepTable:
    """Read a long table into sequences, keeping the target and order of every step.

    Args:
        path: A ``.csv`` or ``.parquet`` file.
        id: Column naming the sequence of each row.
        order: Column ordering the steps, or ``None`` (file order).
        features: Feature columns; ``None``: every column but id, order and target.
        target: The target column, or ``None``.
        target_as_feature: Append the target column to the features (a forecaster reads
            the target's past).

    Returns:
        The :class:`StepTable`.
    """
    from varlen._checks import error_context
    from varlen.data.io.table import _check_column, _feature_columns, group_table

    frame = _read_frame(path)
    with error_context("read_table"):  # the helpers' errors name no function: this one
        for role, name in (("id", id), ("order", order), ("target", target)):
            if name is not None:
                _check_column(frame, role, name)
        used = {name for name in (id, order, target) if name is not None}
        names = _feature_columns(frame, features, used)
    if target_as_feature and target is not None and target not in names:
        names = (*names, target)
    if target_as_feature and target in frame.columns and frame[target].dtype.kind not in "biuf":
        raise CommandError(
            f"--horizon forecasts the target from its own past, so target {target!r} must be a "
            f"numeric column, got dtype {frame[target].dtype}. Encode it as numbers."
        )
    frame = frame.assign(**{_ROW: np.arange(len(frame), dtype=np.float64)})
    data = group_table(frame, id=id, order=order, features=(*names, _ROW))
    rows = data.x.values[:, -1].astype(np.int64)  # (N,) the table row of every step
    x = data.x.with_values(data.x.values[:, :-1])
    y = None if target is None else np.asarray(frame[target].to_numpy()[rows])
    steps = None if order is None else np.asarray(frame[order].to_numpy()[rows])
    return StepTable(x, data.ids, y, steps, names)


def varies_within(x: Ragged, y: AnyArray) -> bool:
    """Return whether ``y (N,)`` takes more than one value within some sequence of ``x``."""
    import pandas as pd

    codes = np.asarray(pd.factorize(y)[0], dtype=np.int64)  # NaN: -1 everywhere
    if not len(codes):
        return False
    lengths = x.lengths
    nonempty = lengths > 0
    first = codes[x.offsets[:-1][nonempty]]
    return bool((codes != np.repeat(first, lengths[nonempty])).any())


def per_step_table(options: Any) -> StepTable | None:
    """Return the table when ``varlen train`` should train a per-step model, else ``None``.

    Per step when ``--horizon`` is given, or when the target varies within a sequence.

    Args:
        options: The :class:`~varlen.cli.train.TrainOptions`.

    Returns:
        The table (read once), or ``None`` for a per-sequence task.
    """
    horizon = int(getattr(options, "horizon", 0))
    table = options.data.suffix.lower() in TABLE_SUFFIXES
    if options.target is None or options.id is None or not table:
        if horizon:
            raise CommandError(
                f"--horizon {horizon} forecasts a per-step target: it needs a table with --id "
                f"and --target, got {options.data.name!r} without them."
            )
        return None
    if horizon and options.bidirectional:
        raise CommandError(
            f"--bidirectional cannot be used with --horizon {horizon}: a forecaster must be "
            "causal, and the backward direction reads the very steps it forecasts. Drop "
            "--bidirectional (labelling without --horizon may be bidirectional)."
        )
    if not Path(options.data).is_file():
        return None  # load_data says so
    if options.target in (options.id, options.order):
        return None  # the per-sequence reader refuses it
    try:
        steps = read_step_table(
            Path(options.data),
            id=options.id,
            order=options.order,
            features=options.features,
            target=options.target,
            target_as_feature=horizon > 0,
        )
    except (ValueError, TypeError):
        if horizon:
            raise
        return None  # bad input: the per-sequence reader reports it in its own words
    longest = int(steps.x.lengths.max(initial=0))
    if horizon and longest <= horizon:
        advice = f"Give --horizon < {longest}." if longest > 1 else "Give longer sequences."
        raise CommandError(
            f"--horizon {horizon} leaves nothing to forecast: step t forecasts step t + "
            f"{horizon} of its own sequence, and the longest sequence of "
            f"{options.data.name!r} has {longest} step{'s' if longest != 1 else ''}. {advice}"
        )
    if horizon or (steps.y is not None and varies_within(steps.x, steps.y)):
        return steps
    return None


# ----------------------------------------------------------------------------- train


class _Split(NamedTuple):
    x: Ragged
    y: Ragged


class _Prepared(NamedTuple):
    train: _Split
    validation: _Split | None
    test: _Split | None
    targets: Targets
    features: tuple[str, ...]
    normalizer: Standardizer
    target_normalizer: Standardizer | None


def _step_ids(steps: StepTable) -> AnyArray:
    """``(N,)`` the id of every step, for messages naming a sequence."""
    return np.repeat(np.asarray(steps.ids, dtype=object), steps.x.lengths)


def _encode(steps: StepTable, options: Any, labels: tuple[str, ...] | None = None) -> Targets:
    task = options.task
    if getattr(options, "horizon", 0) and task == "auto":
        task = "regression"
    if steps.y is None:
        raise CommandError("DATA must hold the target column to train on, got none.")
    return encode_targets(steps.y, task=task, ids=_step_ids(steps), labels=labels)


def _check(steps: StepTable, path: Path) -> None:
    _check_loaded(LoadedData(steps.x, None, steps.features, steps.ids, ()), os.fspath(path))


def _prepare(options: Any, steps: StepTable) -> _Prepared:
    """Encode, split by sequence, and standardize on the training split's real steps only."""
    _check(steps, options.data)
    targets = _encode(steps, options)
    if targets.labels is not None and len(targets.labels) < 2:
        raise CommandError(
            f"target must have at least 2 classes for labelling, got {list(targets.labels)}."
        )
    y_all = steps.x.with_values(targets.y)
    train_idx, val_idx = split_validation(
        np.zeros(len(steps.x)), options.val_fraction, seed=options.seed, stratify=False
    )
    normalizer = Standardizer.fit(steps.x[train_idx])
    target_normalizer = None
    if targets.task == "regression":
        target_normalizer = Standardizer.fit(
            y_all[train_idx].with_values(y_all[train_idx].values.reshape(-1, 1))
        )

    def split(x: Ragged, y: Ragged) -> _Split:
        values = y.values
        if target_normalizer is not None:
            scaled = target_normalizer.transform(y.with_values(values.reshape(-1, 1)))
            values = scaled.values[:, 0].astype(np.float32)
        return _Split(normalize_inputs(x, normalizer), y.with_values(values))

    test = None
    if options.test is not None:
        test_steps = _read_test(options, steps)
        test_y = test_steps.x.with_values(_encode(test_steps, options, targets.labels).y)
        test = split(test_steps.x, test_y)
    return _Prepared(
        train=split(steps.x[train_idx], y_all[train_idx]),
        validation=split(steps.x[val_idx], y_all[val_idx]) if len(val_idx) else None,
        test=test,
        targets=targets,
        features=steps.features,
        normalizer=normalizer,
        target_normalizer=target_normalizer,
    )


def _read_test(options: Any, steps: StepTable) -> StepTable:
    test = Path(options.test)
    if test.suffix.lower() not in TABLE_SUFFIXES:
        raise CommandError(
            f"--test must be a table like DATA for a per-step task, got {os.fspath(test)!r}."
        )
    if not test.is_file():
        raise FileNotFoundError(f"--test file {os.fspath(test)!r} does not exist.")
    read = read_step_table(
        test, id=options.id, order=options.order, features=steps.features, target=options.target
    )
    _check(read, test)
    return read


def _technique(options: Any) -> tuple[str, str]:
    if options.technique == "auto":
        return "bucket", "auto: per-step models train on length-bucketed padded batches"
    if options.technique not in STEP_TECHNIQUES:
        raise CommandError(
            f"--technique must be one of {list(STEP_TECHNIQUES)} (or auto) for a per-step "
            f"task, got {options.technique!r}: the others pool per sequence or are inexact."
        )
    return options.technique, "chosen with --technique"


def _model(options: Any, prepared: _Prepared) -> SequenceModel:
    horizon = int(getattr(options, "horizon", 0))
    labels = prepared.targets.labels
    config = ModelConfig(
        input_size=len(prepared.features),
        output_size=len(labels) if labels is not None else 1,
        task=prepared.targets.task,
        cell=options.cell,
        hidden_size=options.hidden_size,
        num_layers=options.num_layers,
        bidirectional=bool(options.bidirectional),
        dropout=options.dropout,
        per_step=True,
        horizon=horizon,
    )
    torch.manual_seed(options.seed)
    return SequenceModel(config)


def _fingerprint(options: Any, prepared: _Prepared, technique: str) -> dict[str, Any]:
    kept = {
        key: os.fspath(value) if isinstance(value, Path) else value
        for key, value in asdict(options).items()
        if key not in ("data", "test", "out", "resume", "epochs", "patience")
    }
    kept["features"] = list(prepared.features)
    kept["technique"] = technique
    digest = hashlib.sha256(np.ascontiguousarray(prepared.train.x.values).tobytes())
    digest.update(np.ascontiguousarray(prepared.train.y.values).tobytes())
    digest.update(prepared.train.x.offsets.tobytes())
    kept["train_data_sha256"] = digest.hexdigest()
    same: dict[str, Any] = json.loads(json.dumps(kept))  # tuples become lists, as read back
    return same


def _resume(options: Any, fingerprint: dict[str, Any], args: Any) -> bool:
    """Return whether to resume; write or check ``run.json``."""
    out = Path(options.out)
    checkpoint, run_file = out / CHECKPOINT_FILE, out / RUN_FILE
    if options.resume and checkpoint.is_file() and run_file.is_file():
        saved = json.loads(run_file.read_text(encoding="utf-8"))
        changed = sorted(
            k for k in fingerprint.keys() | saved.keys() if saved.get(k) != fingerprint.get(k)
        )
        if changed:
            key = changed[0]
            raise CommandError(
                f"--resume must use the options and data of the interrupted run, got {key} = "
                f"{fingerprint.get(key)!r} instead of {saved.get(key)!r}. Rerun without "
                "--resume to start over."
            )
        say(args, f"resuming from {os.fspath(checkpoint)}")
        return True
    out.mkdir(parents=True, exist_ok=True)
    write_text(run_file, json.dumps(fingerprint, indent=2) + "\n")
    return False


class _Score(NamedTuple):
    loss: float
    metric: float


def _score(model: SequenceModel, split: _Split, prepared: _Prepared) -> _Score:
    loss, metric = evaluate_steps(model, split.x, split.y)
    if prepared.target_normalizer is not None:
        metric *= float(prepared.target_normalizer.scale[0])  # MAE in the target's units
    return _Score(loss, metric)


def _task_line(options: Any, prepared: _Prepared) -> str:
    horizon = int(getattr(options, "horizon", 0))
    if horizon:
        return (
            f"task: per-step forecasting: each step forecasts {options.target!r} {horizon} "
            f"step{'s' if horizon > 1 else ''} ahead (causal; its past is an input)"
        )
    kind = "labelling (one class per step)" if prepared.targets.labels else "regression"
    return f"task: per-step {kind}: target {options.target!r} varies within sequences"


def _report(
    options: Any,
    prepared: _Prepared,
    result: FitResult,
    scores: dict[str, _Score],
    technique: tuple[str, str],
) -> list[str]:
    classes = prepared.targets.labels
    metric = "per-step accuracy" if classes else "per-step MAE"
    unit = "" if classes else " (MSE of standardized targets)"
    val = 0 if prepared.validation is None else len(prepared.validation.x)
    kind = f"{len(classes)} classes" if classes else "values"
    kind = ("forecast " if options.horizon else "per-step ") + kind
    lines = [
        f"data: {Path(options.data).name}: {len(prepared.train.x)} train / {val} validation "
        f"sequences ({prepared.train.x.num_steps} train steps), "
        f"{count(len(prepared.features), 'feature')}, {kind}",
        f"technique: {technique[0]} ({technique[1]})",
        f"epochs: {len(result.history)} run, best {result.best_epoch + 1}"
        + (" (stopped early)" if result.stopped_early else ""),
    ]
    for name, value in scores.items():
        lines.append(f"{name}: loss {value.loss:.4f}{unit}, {metric} {value.metric:.4f}")
    lines.append(f"model: {os.fspath(options.out)}")
    return lines


def train_per_step(options: Any, steps: StepTable, args: argparse.Namespace) -> int:
    """Run ``varlen train`` for a per-step task: prepare, fit, score, save, report.

    Args:
        options: The :class:`~varlen.cli.train.TrainOptions`.
        steps: The table read by :func:`per_step_table`.
        args: The parsed arguments.

    Returns:
        The exit code, 0.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise CommandError("a per-step task trains in one process, got WORLD_SIZE > 1 (torchrun).")
    technique = _technique(options)
    prepared = _prepare(options, steps)
    say(args, _task_line(options, prepared))
    model = _model(options, prepared)
    resume = _resume(options, _fingerprint(options, prepared, technique[0]), args)
    config = TrainConfig(
        technique=technique[0],
        epochs=options.epochs if options.epochs is not None else PER_STEP_EPOCHS,
        batch_size=options.batch_size,
        lr=options.lr,
        patience=(PER_STEP_PATIENCE if options.patience is None else options.patience) or None,
        seed=options.seed,
    )
    result = fit_steps(
        model,
        prepared.train.x,
        prepared.train.y,
        config=config,
        validation=None if prepared.validation is None else tuple(prepared.validation),  # type: ignore[arg-type]
        checkpoint=Path(options.out) / CHECKPOINT_FILE,
        resume=resume,
        progress=progress_enabled(args),
    )
    splits = {"validation": prepared.validation, "test": prepared.test}
    scores = {name: _score(model, s, prepared) for name, s in splits.items() if s is not None}
    _save(options, model, prepared, result, scores, technique)
    print("\n".join(_report(options, prepared, result, scores, technique)))
    return 0


def _save(
    options: Any,
    model: SequenceModel,
    prepared: _Prepared,
    result: FitResult,
    scores: dict[str, _Score],
    technique: tuple[str, str],
) -> None:
    save_model(
        options.out,
        model,
        features=prepared.features,
        labels=prepared.targets.labels,
        normalizer=prepared.normalizer,
        target_normalizer=prepared.target_normalizer,
        technique=technique[0],
        metadata={
            "options": {
                key: os.fspath(value) if isinstance(value, Path) else value
                for key, value in asdict(options).items()
            },
            "task": "per-step",
            "technique_reason": technique[1],
            "history": [asdict(stats) for stats in result.history],
            "best_epoch": result.best_epoch,
            "scores": {name: value._asdict() for name, value in scores.items()},
        },
    )


# ----------------------------------------------------------------------------- predict


def _recorded(loaded: LoadedModel, name: str) -> Any:
    options = loaded.metadata.get("options")
    return options.get(name) if isinstance(options, dict) else None


def predict_per_step(options: Any, loaded: LoadedModel) -> tuple[dict[str, Any], int]:
    """Predict every step of DATA with a per-step model: the output columns and row count.

    Args:
        options: The :class:`~varlen.cli.predict.PredictOptions`.
        loaded: The loaded per-step model.

    Returns:
        ``(columns, steps)``: ``id``, the order column (when given), ``prediction`` and, for a
        classifier, ``prob_<label>`` per class, one row per step.
    """
    path = Path(options.data)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise CommandError(
            f"DATA must be a .csv or .parquet table for a per-step model, got {os.fspath(path)!r}."
        )
    if not path.is_file():
        raise FileNotFoundError(f"DATA file {os.fspath(path)!r} does not exist.")
    id_column = options.id or _recorded(loaded, "id")
    if id_column is None:
        raise CommandError("a table needs --id COLUMN to group its rows into sequences, got none.")
    order = options.order if options.order is not None else _recorded(loaded, "order")
    features = options.features if options.features is not None else loaded.features
    steps = read_step_table(path, id=id_column, order=order, features=features, target=None)
    _check(steps, path)
    if steps.features != loaded.features:
        raise CommandError(
            f"DATA features must match the model's {list(loaded.features)}, got "
            f"{list(steps.features)}."
        )
    x = normalize_inputs(steps.x, loaded.normalizer)
    scores = predict_step_scores(loaded.model, x, batch_size=options.batch_size).values
    columns: dict[str, Any] = {"id": np.repeat(np.asarray(steps.ids, dtype=object), x.lengths)}
    if steps.order is not None and order is not None:
        columns[str(order)] = steps.order
    columns.update(_prediction_columns(loaded, scores))
    return columns, x.num_steps


def _prediction_columns(loaded: LoadedModel, scores: np.ndarray) -> dict[str, Any]:
    from varlen.cli.predict import predictions_table

    table = predictions_table(loaded, np.zeros(len(scores)), scores)
    del table["id"]
    return table
