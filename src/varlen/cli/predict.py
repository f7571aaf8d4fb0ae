"""``varlen predict MODEL_DIR DATA``: predict new series of any lengths with a trained model.

The data are read like ``varlen train`` reads them (a table's ``--id``, ``--order`` and
``--features`` default to the ones the model directory recorded at training; a flag that
overrides a recorded choice is said in one line on stderr), checked to have the model's features
(same count and names), standardized with the model's fitted normalizer and scored in
length-bucketed batches (or batched as trained, for the inexact ``pad-*`` techniques). The
output has one row per sequence: its id, the prediction (the original label, or the value)
and, for a classifier, one probability column per class (``prob_<label>``). A per-step model
writes one row per step instead, with the order column when given.
It goes to ``--out`` (``.csv`` or ``.parquet``) or, without it, to stdout as CSV. When DATA holds
targets (labels or values), the accuracy (or MAE) of a per-sequence model is reported on stderr.
DATA may be a store written by ``varlen convert``: its steps stay on disk and are read, a
batch at a time, as they are scored (memory holds the batch in use and one row of output per
sequence). A per-step model predicts a store of steps a block of rows at a time and writes each
block's rows as they come (memory holds one block), with a ``step`` column (the step's position
in its sequence: a store keeps the steps' order, not the order column's values); per-step
targets in the store are scored.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from varlen._atomic import atomic_open
from varlen.cli._common import (
    TABLE_SUFFIXES,
    CommandError,
    LoadedData,
    StoredData,
    _check_loaded,
    add_table_options,
    build_config,
    is_store,
    load_data,
    load_store,
    say,
    table_options,
)
from varlen.cli._run_record import upgrade_options
from varlen.cli._steps import read_step_table
from varlen.cli._targets import label_text, normalize_inputs, normalized
from varlen.cli._train_plan import plan_block_steps
from varlen.data.io.store import plan_blocks
from varlen.data.ragged import Ragged
from varlen.training.artifacts import CONFIG_FILE, LoadedModel, load_model
from varlen.training.loop import predict_scores
from varlen.training.per_step import predict_step_scores
from varlen.training.techniques import get_technique

__all__ = ["PredictOptions", "add_arguments", "predictions_table", "recorded_options", "run"]

_OUT_SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class PredictOptions:
    """Everything ``varlen predict`` takes.

    Args:
        model: The model directory written by ``varlen train``.
        data: The file of sequences to predict.
        out: ``.csv`` or ``.parquet`` output file; ``None`` writes CSV to stdout.
        batch_size: Sequences per batch.
        id: Table column naming the sequence of each row.
        order: Table column ordering the steps.
        features: Table feature columns (default: every other column).
        target: Table column to leave out of the features (default: the one named at training).
    """

    model: Path
    data: Path
    out: Path | None = None
    batch_size: int = 256
    id: str | None = None
    order: str | None = None
    features: tuple[str, ...] | None = None
    target: str | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"predict: batch_size must be >= 1, got {self.batch_size!r}.")
        if self.out is not None and self.out.suffix.lower() not in _OUT_SUFFIXES:
            raise ValueError(
                f"predict: --out must end in .csv or .parquet, got {os.fspath(self.out)!r}."
            )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``varlen predict``'s arguments.

    Args:
        parser: The command's parser.
    """
    parser.add_argument("model", type=Path, metavar="MODEL_DIR", help="from `varlen train`")
    parser.add_argument(
        "data", type=Path, metavar="DATA", help=".ts, .csv or .parquet file, or a store"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="predictions.csv or .parquet (default: CSV on stdout)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=argparse.SUPPRESS,
        help="sequences per batch (default 256)",
    )
    add_table_options(parser, target=True)


def _check_features(loaded: LoadedModel, data: LoadedData | StoredData) -> None:
    if data.features == loaded.features:
        return
    raise CommandError(
        f"DATA features must match the model's {len(loaded.features)} features "
        f"{list(loaded.features)}, got {len(data.features)}: {list(data.features)}. "
        "Select them with --features in the training order."
    )


def _option(loaded: LoadedModel, name: str) -> Any:
    """A training option saved in the model's metadata, or ``None``."""
    options = loaded.metadata.get("options")
    return options.get(name) if isinstance(options, dict) else None


def recorded_options(loaded: LoadedModel, model: Path) -> dict[str, Any] | None:
    """The ``varlen train`` options recorded in the model directory, checked; ``None`` if none.

    A model saved by :func:`varlen.training.save_model` outside the CLI records none. The
    record is read as :func:`~varlen.cli._run_record.upgrade_options` says: an option missing
    from a directory written by an earlier varlen takes the default it had then, and every
    field is checked against its type, so that a tampered record is an error, never a
    silently different reading.

    Args:
        loaded: The loaded model.
        model: The model directory (for the message).

    Returns:
        The recorded options (every field of this version), or ``None``.

    Raises:
        CommandError: If the record is of an unknown version, has an unknown option, or a
            value of the wrong type.
    """
    if "options" not in loaded.metadata:
        return None
    return upgrade_options(
        loaded.metadata["options"],
        version=loaded.record_version,
        written_by=loaded.varlen_version,
        per_step=loaded.model.config.per_step,
        source=repr(os.fspath(model / CONFIG_FILE)),
    )


def _table_defaults(
    options: PredictOptions, recorded: dict[str, Any] | None
) -> tuple[dict[str, Any], list[str]]:
    """Return the table options to read DATA with, and the names taken from the record.

    Each of ``--id`` and ``--order`` not given defaults to the recorded one; one given that
    differs from the record is said in one line on stderr.
    """
    table = table_options(options)
    tables = (Path(str(recorded["data"])) if recorded else Path(), options.data)
    if recorded is None or any(path.suffix.lower() not in TABLE_SUFFIXES for path in tables):
        return table, []  # a .ts file on either side: no table options to carry over
    used: list[str] = []
    target = recorded.get("target")
    if table["target"] is None and target is not None and target in _columns(options.data):
        table["target"] = target  # labelled DATA: scored with the recorded target
    for name in ("id", "order"):
        given, saved = table[name], recorded[name]
        if given is None and saved is not None:
            table[name], used = saved, [*used, name]
        elif given is not None and given != saved:
            was = "file order (no --order)" if saved is None else f"--{name} {saved!r}"
            print(
                f"varlen predict: note: --{name} {given!r} overrides the model's recorded {was}",
                file=sys.stderr,
            )
    return table, used


def _columns(path: Path) -> list[str]:
    """The column names of a CSV or Parquet table (``[]`` when it cannot be read)."""
    try:
        if path.suffix.lower() == ".csv":
            import pandas as pd

            return [str(name) for name in pd.read_csv(path, nrows=0).columns]
        import pyarrow.parquet as pq

        return [str(name) for name in pq.read_schema(path).names]
    except (OSError, ValueError, ImportError):
        return []  # reading DATA says what is wrong


def _load(options: PredictOptions, loaded: LoadedModel) -> LoadedData | StoredData:
    """Read DATA; a table's options default to the recorded ones, its features to the model's.

    A store is opened (its steps stay on disk); it takes no table options.
    """
    if is_store(options.data):
        return load_store(options.data, **table_options(options))
    table, used = _table_defaults(options, recorded_options(loaded, options.model))
    if options.data.suffix.lower() in TABLE_SUFFIXES and options.features is None:
        table["features"] = loaded.features
    note = ""
    if options.target is None and table.get("target") is not None:
        try:  # the recorded target, to score labelled DATA
            return load_data(options.data, **table)
        except (ValueError, KeyError, CommandError) as error:
            text = " ".join(str(error).split())
            note = (
                f"varlen predict: note: no score: the recorded target {table['target']!r} cannot "
                f"be read as targets ({text})"
            )
            table["target"] = None
    try:
        data = load_data(options.data, **table)
    except (ValueError, KeyError) as error:
        text = str(error) if isinstance(error, ValueError) else f"missing column {error}"
        if options.features is None and "features[" in text:
            raise CommandError(
                f"DATA must have the model's feature columns {list(loaded.features)}: {text}"
            ) from None
        if not used:
            raise
        recorded = ", ".join(f"--{name} {table[name]!r}" for name in used)
        raise CommandError(
            f"{text.rstrip('.')} ({recorded} recorded in the model directory; pass the flag "
            "to choose another column)."
        ) from None
    if note:
        print(note, file=sys.stderr)
    return data


def predictions_table(loaded: LoadedModel, ids: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """Build the output columns from the model's ``(B, output_size)`` scores.

    Args:
        loaded: The loaded model (labels and target standardizer).
        ids: ``(B,)`` sequence ids.
        scores: ``(B, output_size)`` logits or standardized values.

    Returns:
        Columns in order: ``id``, ``prediction`` (or ``prediction_k`` for several values),
        then ``prob_<label>`` per class for a classifier.
    """
    columns: dict[str, Any] = {"id": ids}
    if loaded.labels is not None:
        logits = scores.astype(np.float64)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        columns["prediction"] = np.array(loaded.labels, dtype=object)[scores.argmax(axis=1)]
        for index, label in enumerate(loaded.labels):
            columns[f"prob_{label}"] = probabilities[:, index].round(6)
        return columns
    values = scores.astype(np.float64)
    if loaded.target_normalizer is not None:
        values = values * loaded.target_normalizer.scale + loaded.target_normalizer.mean
    if values.shape[1] == 1:
        columns["prediction"] = values[:, 0]
    else:
        for index in range(values.shape[1]):
            columns[f"prediction_{index}"] = values[:, index]
    return columns


def _write_csv(columns: dict[str, Any], file: IO[str]) -> None:
    writer = csv.writer(file)
    writer.writerow(list(columns))
    writer.writerows(
        zip(*(np.asarray(column).tolist() for column in columns.values()), strict=True)
    )


def _write(columns: dict[str, Any], out: Path | None) -> None:
    """Write CSV to stdout (``out`` None) or ``out``, or Parquet (needs pandas and pyarrow)."""
    if out is None:
        _write_csv(columns, sys.stdout)
    elif out.suffix.lower() == ".csv":
        with atomic_open(out, "w", newline="") as file:
            _write_csv(columns, file)
    else:
        import pandas as pd

        with atomic_open(out, "wb") as binary:
            pd.DataFrame(columns).to_parquet(binary, index=False)


def run(args: argparse.Namespace) -> int:
    """Run ``varlen predict``.

    Args:
        args: The parsed arguments.

    Returns:
        The exit code, 0.
    """
    options = build_config(PredictOptions, args, command="predict")
    loaded = load_model(options.model)
    if loaded.model.config.per_step and is_store(options.data):  # one row per step, streamed
        rows, score = predict_store_steps(options, loaded)
        if options.out is not None:
            say(args, f"wrote {rows} per-step predictions to {os.fspath(options.out)}")
        if score:
            say(args, score)
        return 0
    if loaded.model.config.per_step:  # one row per step
        _table_defaults(options, recorded_options(loaded, options.model))  # the notes
        columns, rows, score = predict_per_step(options, loaded)
        _write(columns, options.out)
        if options.out is not None:
            say(args, f"wrote {rows} per-step predictions to {os.fspath(options.out)}")
        if score:
            say(args, score)
        return 0
    data = _load(options, loaded)
    _check_features(loaded, data)
    x = normalized(data.x, loaded.normalizer)  # a store: batch by batch, as scored
    technique = loaded.technique
    exact = get_technique(technique).exact
    how = "bucket" if exact else technique
    size = options.batch_size if exact else int(_option(loaded, "batch_size") or 32)
    scores = predict_scores(loaded.model, x, technique=how, batch_size=size).numpy()
    columns = predictions_table(loaded, data.ids, scores)
    _write(columns, options.out)
    if options.out is not None:
        say(args, f"wrote {len(data.ids)} predictions to {os.fspath(options.out)}")
    if data.y is not None:
        say(args, metric_line(loaded, data.y, columns))
    return 0


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def metric_line(loaded: LoadedModel, y: np.ndarray, columns: dict[str, Any]) -> str:
    """The score of the predictions on DATA that has targets: accuracy, or MAE.

    Args:
        loaded: The model (classifier or regressor).
        y: ``(B,)`` targets as read from DATA.
        columns: The predictions table (:func:`predictions_table`).

    Returns:
        e.g. ``accuracy 0.9123 on 300 labelled sequences``; sequences whose target is missing
        (empty, NaN) are left out.
    """
    present = np.array([not _is_missing(value) for value in np.asarray(y).tolist()], dtype=bool)
    y = np.asarray(y)[present]
    columns = {key: np.asarray(value)[present] for key, value in columns.items()}
    n = len(y)
    if loaded.labels is not None:
        truth = np.array([str(label) for label in np.asarray(y).tolist()], dtype=object)
        predicted = np.asarray(columns["prediction"], dtype=object)
        accuracy = float(np.mean(truth == predicted)) if n else float("nan")
        unknown = int(np.sum(~np.isin(truth, np.array(loaded.labels, dtype=object))))
        extra = f" ({unknown} with labels the model never saw)" if unknown else ""
        return f"accuracy {accuracy:.4f} on {n} labelled sequences{extra}"
    try:
        values = np.asarray(y, dtype=np.float64).reshape(n, -1)
    except ValueError:
        return f"no MAE: the targets of DATA must be numbers for a regressor, got {y[:1]!r}"
    keys = [key for key in columns if key.startswith("prediction")]
    predicted_values = np.stack([np.asarray(columns[key], dtype=np.float64) for key in keys], 1)
    mae = float(np.mean(np.abs(predicted_values - values))) if n else float("nan")
    return f"MAE {mae:.4f} on {n} sequences with targets"


# ----------------------------------------------------------------------------- per step


def predict_per_step(
    options: PredictOptions, loaded: LoadedModel
) -> tuple[dict[str, Any], int, str]:
    """Predict every step of DATA with a per-step model: the columns, row count and score.

    Args:
        options: The options.
        loaded: The loaded per-step model.

    Returns:
        ``(columns, steps, score)``: ``id``, the order column (when given), ``prediction`` and,
        for a classifier, ``prob_<label>`` per class, one row per step; the score line when
        DATA holds the recorded target (else ``''``).
    """
    path = Path(options.data)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise CommandError(
            f"DATA must be a .csv or .parquet table for a per-step model, got {os.fspath(path)!r}."
        )
    if not path.is_file():
        raise FileNotFoundError(f"DATA file {os.fspath(path)!r} does not exist.")
    recorded = recorded_options(loaded, options.model) or {}
    id_column = options.id or recorded.get("id")
    if id_column is None:
        raise CommandError("a table needs --id COLUMN to group its rows into sequences, got none.")
    order = options.order if options.order is not None else recorded.get("order")
    if options.order is not None and options.order != recorded.get("order"):
        saved = recorded.get("order")
        was = "file order (no --order)" if saved is None else f"--order {saved!r}"
        print(
            f"varlen predict: note: --order {options.order!r} overrides the model's recorded {was}",
            file=sys.stderr,
        )
    target = options.target or recorded.get("target")
    features = options.features if options.features is not None else loaded.features
    if target is not None and target not in _columns(path):
        target = None  # unlabelled DATA: predictions only
    steps = read_step_table(path, id=id_column, order=order, features=features, target=target)
    _check_loaded(LoadedData(steps.x, None, steps.features, steps.ids, ()), os.fspath(path))
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
    table = predictions_table(loaded, np.zeros(len(scores)), scores)
    del table["id"]
    columns.update(table)
    score = "" if steps.y is None else step_metric_line(loaded, steps.x, steps.y, table)
    return columns, x.num_steps, score


class _BlockWriter:
    """Write a predictions table a block of rows at a time: CSV (stdout or a file) or Parquet.

    The file is written atomically: it appears, whole, when :meth:`close` is called.
    """

    def __init__(self, out: Path | None) -> None:
        self.out = out
        self.parquet: Any = None
        self.opened: Any = None
        self.csv: Any = None
        self.header = True
        if out is None:
            self.csv = csv.writer(sys.stdout)
        elif out.suffix.lower() == ".csv":
            self.opened = atomic_open(out, "w", newline="")
            self.csv = csv.writer(self.opened.__enter__())
        else:
            self.opened = atomic_open(out, "wb")
            self.file = self.opened.__enter__()

    def write(self, columns: dict[str, Any]) -> None:
        """Append the rows of one block."""
        if self.csv is not None:
            if self.header:
                self.csv.writerow(list(columns))
            self.csv.writerows(
                zip(*(np.asarray(column).tolist() for column in columns.values()), strict=True)
            )
        else:
            import pandas as pd
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(pd.DataFrame(columns), preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.file, table.schema)
            self.parquet.write_table(table.cast(self.parquet.schema))
        self.header = False

    def close(self, error: BaseException | None = None) -> None:
        """Finish the file (or, after ``error``, leave nothing)."""
        if self.parquet is not None and error is None:
            self.parquet.close()
        if self.opened is not None:
            kind = None if error is None else type(error)
            self.opened.__exit__(kind, error, None if error is None else error.__traceback__)


class _StepScore:
    """The per-step score of a store's predictions, summed block by block."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.labels = loaded.labels
        self.total = 0.0
        self.count = 0

    def add(self, y: np.ndarray, columns: dict[str, Any]) -> None:
        """Add one block: ``y (N_b,)`` the targets as stored, ``columns`` its predictions."""
        values = np.asarray(y)
        labelled = ~np.isnan(values) if values.dtype.kind == "f" else np.ones(len(values), bool)
        keys = [key for key in columns if key.startswith("prediction")]
        predicted = np.asarray(columns[keys[0]], dtype=object)[labelled]
        values = values[labelled]
        self.count += len(values)
        if self.labels is not None:
            text = np.array([label_text(value) for value in values.tolist()], dtype=object)
            self.total += float(np.sum(text == predicted))
        else:
            self.total += float(np.sum(np.abs(predicted.astype(np.float64) - values)))

    def line(self) -> str:
        """``per-step accuracy A on N labelled steps`` or ``per-step MAE M on N steps ...``."""
        mean = self.total / self.count if self.count else float("nan")
        if self.labels is not None:
            return f"per-step accuracy {mean:.4f} on {self.count} labelled steps"
        return f"per-step MAE {mean:.4f} on {self.count} steps with targets"


def predict_store_steps(options: PredictOptions, loaded: LoadedModel) -> tuple[int, str]:
    """Predict every step of a store with a per-step model, a block of rows at a time.

    Each block's predictions are written as soon as they are made: ``id``, ``step`` (the
    step's position in its sequence), ``prediction`` and, for a classifier, ``prob_<label>``
    per class. Memory holds one block of steps and its predictions.

    Args:
        options: The options (DATA is a store; table options are refused).
        loaded: The loaded per-step model.

    Returns:
        ``(steps, score)``: the rows written, and the score line when the store holds
        per-step targets (else ``''``).

    Raises:
        CommandError: If a table option is given, the features differ from the model's, or the
            model is a forecaster (it reads its target as an input feature).
    """
    data = load_store(options.data, **table_options(options))
    _check_features(loaded, data)
    if loaded.model.config.horizon:
        raise CommandError(
            "a forecaster (--horizon) reads its target's past as an input feature, and a store "
            "keeps its per-step targets apart from its features. Predict on the table itself."
        )
    x = normalized(data.x, loaded.normalizer)
    lengths = data.x.lengths
    ids = np.asarray(data.ids, dtype=object)
    score = _StepScore(loaded) if data.step_y is not None else None
    writer = _BlockWriter(options.out)
    rows = 0
    try:
        for start, stop in plan_blocks(lengths, plan_block_steps(len(data.features))):
            block = x[start:stop]
            scores = predict_step_scores(loaded.model, block, batch_size=options.batch_size)
            part = lengths[start:stop]
            columns: dict[str, Any] = {
                "id": np.repeat(ids[start:stop], part),
                "step": np.concatenate([np.arange(T) for T in part.tolist()] or [np.zeros(0)]),
            }
            table = predictions_table(loaded, np.zeros(scores.num_steps), scores.values)
            del table["id"]
            columns.update(table)
            writer.write(columns)
            if score is not None and data.step_y is not None:
                score.add(data.step_y[start:stop].values, table)
            rows += scores.num_steps
    except BaseException as error:
        writer.close(error)
        raise
    writer.close()
    return rows, "" if score is None else score.line()


def step_metric_line(loaded: LoadedModel, x: Ragged, y: np.ndarray, columns: dict[str, Any]) -> str:
    """The per-step score of the predictions on labelled DATA: accuracy, or MAE.

    Steps without a target are left out; for a forecaster, step ``t``'s prediction is scored
    against the target of step ``t + horizon`` of the same sequence.

    Args:
        loaded: The per-step model.
        x: The sequences of DATA (their lengths).
        y: ``(N,)`` the target of every step as read.
        columns: The predictions table, one row per step.

    Returns:
        e.g. ``per-step accuracy 0.9123 on 300 labelled steps``.
    """
    import pandas as pd

    horizon = loaded.model.config.horizon
    keys = [key for key in columns if key.startswith("prediction")]
    predicted = np.asarray(columns[keys[0]], dtype=object)
    truth = np.asarray(y, dtype=object)
    if horizon:  # step t's forecast against step t + horizon's target, within a sequence
        ends = np.repeat(x.offsets[1:], x.lengths)
        rows = np.arange(len(truth)) + horizon
        inside = rows < ends
        predicted, truth = predicted[inside], truth[rows[inside]]
    labelled = ~np.asarray(pd.isna(truth), dtype=bool)
    predicted, truth = predicted[labelled], truth[labelled]
    n = len(truth)
    if loaded.labels is not None:
        text = np.array([str(label) for label in truth.tolist()], dtype=object)
        accuracy = float(np.mean(text == predicted)) if n else float("nan")
        return f"per-step accuracy {accuracy:.4f} on {n} labelled steps"
    try:
        values = truth.astype(np.float64)
    except (TypeError, ValueError):
        return "no MAE: the targets of DATA must be numbers for a regressor"
    mae = float(np.mean(np.abs(predicted.astype(np.float64) - values))) if n else float("nan")
    return f"per-step MAE {mae:.4f} on {n} steps with targets"
