"""``varlen predict MODEL_DIR DATA``: predict new series of any lengths with a trained model.

The data are read like ``varlen train`` reads them, checked to have the model's features
(same count and names), standardized with the model's fitted normalizer and scored in
length-bucketed batches (or batched as trained, for the inexact ``pad-*`` techniques). The
output has one row per sequence: its id, the prediction (the original label, or the value)
and, for a classifier, one probability column per class (``prob_<label>``). A per-step model
writes one row per step instead, with the order column when given (:mod:`varlen.cli._steps`).
It goes to ``--out`` (``.csv`` or ``.parquet``) or, without it, to stdout as CSV.
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

from varlen.cli._common import (
    CommandError,
    LoadedData,
    add_table_options,
    build_config,
    load_data,
    say,
    table_options,
)
from varlen.cli._targets import normalize_inputs
from varlen.training.artifacts import LoadedModel, load_model
from varlen.training.loop import predict_scores
from varlen.training.techniques import get_technique

__all__ = ["PredictOptions", "add_arguments", "predictions_table", "run"]

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
    parser.add_argument("data", type=Path, metavar="DATA", help=".ts, .csv or .parquet file")
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


def _check_features(loaded: LoadedModel, data: LoadedData) -> None:
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


def _load(options: PredictOptions, loaded: LoadedModel) -> LoadedData:
    """Read DATA; a table's features default to the model's feature columns, in order."""
    table = table_options(options)
    if options.features is not None or options.data.suffix.lower() == ".ts":
        return load_data(options.data, **table)
    table["features"] = loaded.features
    try:
        return load_data(options.data, **table)
    except ValueError as error:
        if "features[" not in str(error):
            raise
        raise CommandError(
            f"DATA must have the model's feature columns {list(loaded.features)}: {error}"
        ) from None


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
        with out.open("w", newline="", encoding="utf-8") as file:
            _write_csv(columns, file)
    else:
        import pandas as pd

        pd.DataFrame(columns).to_parquet(out, index=False)


def run(args: argparse.Namespace) -> int:
    """Run ``varlen predict``.

    Args:
        args: The parsed arguments.

    Returns:
        The exit code, 0.
    """
    options = build_config(PredictOptions, args, command="predict")
    loaded = load_model(options.model)
    if loaded.model.config.per_step:  # one row per step
        from varlen.cli._steps import predict_per_step

        columns, rows = predict_per_step(options, loaded)
        _write(columns, options.out)
        if options.out is not None:
            say(args, f"wrote {rows} per-step predictions to {os.fspath(options.out)}")
        return 0
    data = _load(options, loaded)
    _check_features(loaded, data)
    x = normalize_inputs(data.x, loaded.normalizer)
    technique = loaded.technique
    exact = get_technique(technique).exact
    how = "bucket" if exact else technique
    size = options.batch_size if exact else int(_option(loaded, "batch_size") or 32)
    scores = predict_scores(loaded.model, x, technique=how, batch_size=size).numpy()
    _write(predictions_table(loaded, data.ids, scores), options.out)
    if options.out is not None:
        say(args, f"wrote {len(data.ids)} predictions to {os.fspath(options.out)}")
    return 0
