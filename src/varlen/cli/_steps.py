"""Per-step tables: a long table whose target varies within sequences, read once.

``varlen train TABLE --id ID --order T --target Y`` trains a per-step model when ``Y`` takes
more than one value within some sequence (or with ``--horizon H``, a forecaster of ``Y``), see
:mod:`varlen.cli._train_tasks`; ``varlen predict`` reads the same tables for a per-step model.
This module reads them: the steps of every sequence with their target and order values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from varlen._types import AnyArray
from varlen.cli._common import TABLE_SUFFIXES, CommandError, is_store
from varlen.data.ragged import Ragged

__all__ = ["StepTable", "per_step_table", "read_step_table", "varies_within"]

_ROW = "__varlen_row__"


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
    from varlen.data.io.table import group_table

    frame = _read_frame(path)
    for role, name in (("id", id), ("order", order), ("target", target)):
        if name is not None and name not in frame.columns:
            raise ValueError(
                f"read_table: {role} must name a column of the table, got {name!r}. "
                f"Available columns: {[str(column) for column in frame.columns]}."
            )
    used = {name for name in (id, order, target) if name is not None}
    names = (
        tuple(features)
        if features is not None
        else tuple(str(column) for column in frame.columns if column not in used)
    )
    if not names:
        raise ValueError(
            "read_table: features must name at least one column, got none. "
            f"Every column is the id, order or target: {sorted(used)}."
        )
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


def _check_causal(options: Any, horizon: int) -> None:
    """Refuse the options that would let a forecaster read the steps it forecasts."""
    if options.bidirectional:
        raise CommandError(
            f"--bidirectional cannot be used with --horizon {horizon}: a forecaster must be "
            "causal, and the backward direction reads the very steps it forecasts. Drop "
            "--bidirectional (labelling without --horizon may be bidirectional)."
        )
    if options.conv_layers:
        raise CommandError(
            f"--conv-layers {options.conv_layers} cannot be used with --horizon {horizon}: a "
            "forecaster must be causal, and the convolutions read the very steps it forecasts. "
            "Use --conv-layers 0."
        )


def _check_forecastable(steps: StepTable, horizon: int, name: str) -> None:
    """Refuse a horizon that reaches past the end of every sequence."""
    longest = int(steps.x.lengths.max(initial=0))
    if longest <= horizon:
        advice = f"Give --horizon < {longest}." if longest > 1 else "Give longer sequences."
        raise CommandError(
            f"--horizon {horizon} leaves nothing to forecast: step t forecasts step t + "
            f"{horizon} of its own sequence, and the longest sequence of "
            f"{name!r} has {longest} step{'s' if longest != 1 else ''}. {advice}"
        )


def _refuse_store(data: Path, horizon: int) -> None:
    """A forecaster from a store of per-sequence targets is refused (per-step ones: earlier)."""
    if horizon and is_store(data):
        raise CommandError(
            f"--horizon {horizon} forecasts a per-step target, and this store holds one target "
            f"per sequence, got {data.name!r}. Train on the CSV/Parquet table itself."
        )


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
    _refuse_store(options.data, horizon)
    if options.target is None or options.id is None or not table:
        if horizon:
            raise CommandError(
                f"--horizon {horizon} forecasts a per-step target: it needs a table with --id "
                f"and --target, got {options.data.name!r} without them."
            )
        return None
    if horizon:
        _check_causal(options, horizon)
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
    if horizon:
        _check_forecastable(steps, horizon, options.data.name)
    if horizon or (steps.y is not None and varies_within(steps.x, steps.y)):
        return steps
    return None
