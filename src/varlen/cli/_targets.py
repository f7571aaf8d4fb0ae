"""Turn the targets read from a file into what a model trains on, and check they fit the task.

Classification targets become int64 class ids with a label list (id -> original label as a
string); regression targets become float64 values. A target that does not fit the task (text
for regression, fractional numbers for classification, a missing value) raises
:class:`~varlen.cli._common.CommandError` naming the sequence, so the user sees one line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal, NamedTuple, TypeAlias

import numpy as np

from varlen._types import AnyArray, IntArray
from varlen.cli._common import CommandError
from varlen.data.io.store import StoredRagged
from varlen.data.normalize import Standardizer
from varlen.data.ragged import Ragged

__all__ = [
    "StepTargets",
    "Targets",
    "TaskChoice",
    "encode_targets",
    "infer_task",
    "label_text",
    "normalize_inputs",
    "normalized",
    "step_classes",
    "step_targets_column",
    "take_rows",
]

TaskChoice: TypeAlias = Literal["auto", "classification", "regression"]


class Targets(NamedTuple):
    """Encoded targets.

    Attributes:
        task: ``"classification"`` or ``"regression"``.
        y: ``(B,)`` int64 class ids, or ``(B,)`` float64 values.
        labels: Class id -> original label (classification), else ``None``.
    """

    task: Literal["classification", "regression"]
    y: AnyArray
    labels: tuple[str, ...] | None


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))


def _first_missing(y: AnyArray) -> int | None:
    if y.dtype.kind == "f":
        bad = np.flatnonzero(np.isnan(y))
        return int(bad[0]) if bad.size else None
    if y.dtype.kind == "O":
        for index, value in enumerate(y.tolist()):
            if _is_missing(value):
                return index
    return None


def infer_task(y: AnyArray, requested: TaskChoice) -> Literal["classification", "regression"]:
    """Return the task: ``requested``, or inferred from the targets' type for ``"auto"``.

    Text, bool and integer targets are labels (classification); floating targets are values
    (regression).

    Args:
        y: ``(B,)`` targets as read.
        requested: ``"auto"``, ``"classification"`` or ``"regression"``.

    Returns:
        The task.
    """
    if requested != "auto":
        return requested
    return "regression" if y.dtype.kind == "f" else "classification"


def label_text(value: object) -> str:
    """A label as text; integral floats lose their ``.0`` (``2.0`` -> ``"2"``).

    Args:
        value: A label as read.

    Returns:
        Its text.
    """
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def _class_labels(y: AnyArray, ids: AnyArray, declared: Sequence[str]) -> tuple[str, ...]:
    """The sorted distinct labels (numerically for numbers) or the declared ones."""
    if y.dtype.kind == "f":
        fractional = np.flatnonzero(y != np.round(y))
        if fractional.size:
            index = int(fractional[0])
            raise CommandError(
                f"target must hold class labels for classification, got the fractional number "
                f"{y[index].item()!r} for sequence {_name(ids, index)}. "
                "Use --task regression to predict numbers."
            )
    if declared:
        return tuple(declared)
    distinct = np.unique(y) if y.dtype.kind in "biuf" else np.unique(y.astype(str))
    return tuple(label_text(value) for value in distinct.tolist())


def _name(ids: AnyArray, index: int) -> str:
    value = ids[index]
    return repr(value.item() if isinstance(value, np.generic) else value)


def encode_targets(
    y: AnyArray | None,
    *,
    task: TaskChoice,
    ids: AnyArray,
    declared: Sequence[str] = (),
    labels: Sequence[str] | None = None,
) -> Targets:
    """Check the targets against the task and encode them.

    Args:
        y: ``(B,)`` targets as read, or ``None`` (an error: training needs targets).
        task: The requested task (``"auto"`` infers it, see :func:`infer_task`).
        ids: ``(B,)`` sequence ids, for messages.
        declared: Class labels declared by the file (``.ts``), kept in that order.
        labels: Labels to encode with (those of the training data, for test data); a label
            outside them is an error.

    Returns:
        The :class:`Targets`.

    Raises:
        CommandError: If there are no targets, one is missing, or they do not fit the task.
    """
    if y is None:
        raise CommandError(
            "DATA must hold targets to train on, got none. For a table, name the target "
            "column with --target COLUMN; a .ts file needs @classLabel or @targetLabel."
        )
    missing = _first_missing(y)
    if missing is not None:
        raise CommandError(
            f"target must not be missing, got none for sequence {_name(ids, missing)}."
        )
    chosen = infer_task(y, task)
    if chosen == "regression":
        return Targets("regression", _values(y, ids), None)
    known = tuple(labels) if labels is not None else _class_labels(y, ids, declared)
    return Targets("classification", _class_ids(y, ids, known), known)


def _values(y: AnyArray, ids: AnyArray) -> AnyArray:
    if y.dtype.kind not in "iuf":
        for index, value in enumerate(y.tolist()):
            try:
                float(value)
            except (TypeError, ValueError):
                raise CommandError(
                    f"target must be numbers for regression, got {value!r} for sequence "
                    f"{_name(ids, index)}. Use --task classification to predict labels."
                ) from None
    values = y.astype(np.float64)
    infinite = np.flatnonzero(np.isinf(values))
    if infinite.size:
        index = int(infinite[0])
        raise CommandError(
            f"target must be finite for regression, got {float(values[index])!r} for sequence "
            f"{_name(ids, index)}."
        )
    return values


def _class_ids(y: AnyArray, ids: AnyArray, labels: tuple[str, ...]) -> IntArray:
    text = [label_text(value) for value in y.tolist()]
    position = {label: index for index, label in enumerate(labels)}
    unknown = [index for index, label in enumerate(text) if label not in position]
    if unknown:
        first = unknown[0]
        raise CommandError(
            f"target labels must be among the training labels {list(labels)}, got "
            f"{text[first]!r} for sequence {_name(ids, first)}."
        )
    return np.array([position[label] for label in text], dtype=np.int64)


def normalize_inputs(x: Ragged, normalizer: object) -> Ragged:
    """Standardize real steps and replace missing values (NaN) by the mean (0); float32.

    Args:
        x: ``B`` sequences, values ``(N, F)``.
        normalizer: A fitted :class:`~varlen.data.normalize.Standardizer`, or ``None``.

    Returns:
        A new ``Ragged`` with float32 values ``(N, F)`` and no NaN.

    Raises:
        CommandError: If a value is infinite or does not fit float32 once standardized.
    """
    scaled = (
        x.values if not isinstance(normalizer, Standardizer) else normalizer.transform(x).values
    )
    with np.errstate(over="ignore"):  # checked just below
        values = np.nan_to_num(scaled, nan=0.0, posinf=np.inf, neginf=-np.inf).astype(np.float32)
    rows, columns = np.nonzero(np.isinf(values))
    if rows.size:
        row, column = int(rows[0]), int(columns[0])
        raise CommandError(
            f"DATA values must be finite and, once standardized, fit float32 (|v| < 3.4e38), "
            f"got {float(x.values[row, column])!r} in feature {column} (standardized: "
            f"{float(scaled[row, column])!r})."
        )
    return x.with_values(values)


def normalized(x: Ragged | StoredRagged, normalizer: object) -> Ragged | StoredRagged:
    """:func:`normalize_inputs` now for a ``Ragged``; batch by batch as read for a store.

    Args:
        x: ``B`` sequences, values ``(N, F)``, in memory or in a store.
        normalizer: A fitted :class:`~varlen.data.normalize.Standardizer`, or ``None``.

    Returns:
        A normalized ``Ragged``, or the store's sequences read through
        :func:`normalize_inputs` (a picklable transform, for ``DataLoader`` workers).
    """
    if isinstance(x, StoredRagged):
        return x.with_transform(partial(normalize_inputs, normalizer=normalizer))
    return normalize_inputs(x, normalizer)


def take_rows(x: Ragged | StoredRagged, rows: IntArray) -> Ragged | StoredRagged:
    """The sequences ``rows`` of ``x``: a copy in memory, or still on disk for a store.

    Args:
        x: ``B`` sequences, in memory or in a store.
        rows: ``(B',)`` row indices.

    Returns:
        ``B'`` sequences of the same kind as ``x``.
    """
    return x.select(rows) if isinstance(x, StoredRagged) else x[rows]


@dataclass(frozen=True)
class StepTargets:
    """Per-step targets as stored -> as trained on: a transform of a store's ``step_targets``.

    Classification: each value's position among ``classes`` (the sorted distinct values the
    labels were made of), -1 for a step without a target (NaN). Regression: the values
    standardized by ``normalizer`` (NaN kept), float32. The same encoding as a table's
    targets in memory, one batch at a time; it pickles (``DataLoader`` workers).

    Attributes:
        classes: ``(C,)`` sorted distinct target values (classification), else ``None``.
        normalizer: The target standardizer (regression), else ``None``.
    """

    classes: AnyArray | None
    normalizer: Standardizer | None

    def __call__(self, y: Ragged) -> Ragged:
        """Encode ``y``, values ``(N,)`` as stored."""
        values = np.asarray(y.values)
        if self.classes is not None:
            missing = np.isnan(values) if values.dtype.kind == "f" else np.zeros(len(values), bool)
            codes = np.searchsorted(self.classes, values).clip(max=max(len(self.classes) - 1, 0))
            unknown = ~missing & (self.classes[codes] != values)
            if unknown.any():
                raise CommandError(
                    f"target labels must be among the training labels "
                    f"{[label_text(c) for c in self.classes.tolist()]}, got "
                    f"{label_text(values[unknown][0])!r}."
                )
            return y.with_values(np.where(missing, -1, codes).astype(np.int64))
        scaled = values.astype(np.float64)
        if self.normalizer is not None:
            column = Ragged(scaled.reshape(-1, 1), np.array([0, len(scaled)], dtype=np.int64))
            scaled = self.normalizer.transform(column).values[:, 0]
        return y.with_values(scaled.astype(np.float32))


def step_classes(y: StoredRagged, block_steps: int) -> AnyArray:
    """The sorted distinct values of a store's per-step targets (NaN left out), streaming.

    Args:
        y: Per-step targets as stored.
        block_steps: Steps read at a time.

    Returns:
        ``(C,)`` the distinct values, sorted.
    """
    found: AnyArray = np.zeros(0, dtype=y.dtype)
    for _, block in y.blocks(block_steps=block_steps):
        values = np.asarray(block.values)
        if values.dtype.kind == "f":
            values = values[~np.isnan(values)]
        found = np.union1d(found, values)
    return found


def step_targets_column(y: Ragged) -> Ragged:
    """Per-step targets ``(N,)`` as one float64 feature ``(N, 1)`` (to fit a Standardizer).

    Args:
        y: Per-step targets.

    Returns:
        The same sequences with values ``(N, 1)`` float64.
    """
    return y.with_values(np.asarray(y.values, dtype=np.float64).reshape(-1, 1))
