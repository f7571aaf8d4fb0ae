"""The one rule for lossy casts, NumPy and torch alike: which values a cast changes beyond rounding.

A cast into a floating dtype may round (float64 -> float32 does, and that is what the dtype
means), but a finite value must stay finite; a cast into an integer dtype must keep every
value (no wrap-around). Float -> integer casts are not covered here: the strict functions
refuse them outright and ``pad_sequences`` warns about them on its own.

How each function applies the rule is its contract, stated in its docstring:

- :func:`varlen.pad` (on arrays and on tensors), :meth:`varlen.Ragged.to_padded` and
  :meth:`varlen.Ragged.from_sequences` are strict: a cast across kinds (float to int, int to
  bool) raises ``TypeError`` and a cast that changes a value raises ``ValueError``, both
  naming the sequence (:func:`check_strict_cast`, one message for all of them).
- :func:`varlen.pad_sequences` is Keras-compatible: it returns what Keras returns and warns
  (``UserWarning``) naming a value.

Both check with two fast reductions (min and max) and look for the offending value only when
those say there is one, so the rule costs little on the hot path.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from varlen._checks import unplaced
from varlen._types import AnyArray

__all__ = [
    "Changed",
    "check_same_kind",
    "check_strict_cast",
    "check_values",
    "first_changed",
    "kind_error",
    "value_error",
]


class Changed(NamedTuple):
    """Where a cast changes values: the first step (index along axis 0), one value, how many."""

    step: int
    example: Any
    number: int


def _may_change(values: AnyArray, out: np.dtype[Any]) -> bool:
    """Whether a cast of ``values`` into ``out`` may change one beyond rounding (cheap test)."""
    src = values.dtype
    if values.size == 0 or src == out or np.can_cast(src, out, casting="safe"):
        return False
    if src.kind in "biu" and out.kind in "iu":
        info = np.iinfo(out)
        return not (int(values.min()) >= info.min and int(values.max()) <= info.max)
    if src.kind in "biuf" and out.kind == "f":
        top = float(np.finfo(out).max)
        low, high = values.min(), values.max()  # NaN compares false: the exact check decides
        return not (-top <= low and high <= top)
    return src.kind in "biufc" and out.kind in "fc"


def first_changed(values: AnyArray, dtype: Any) -> Changed | None:
    """Return where casting ``values`` to ``dtype`` changes a value beyond rounding, or None.

    Integer (and bool) data into an integer dtype must fit its range; numeric data into a
    floating or complex dtype must not turn a finite value into infinity. Other casts
    (float -> integer, strings, objects) are not judged here and give ``None``.

    Args:
        values: ``(N, *F)`` data.
        dtype: The dtype it is cast to.

    Returns:
        The first changed step, one changed value and how many values change; ``None`` if
        the cast keeps every value.
    """
    out = np.dtype(dtype)
    if not _may_change(values, out):
        return None
    if out.kind in "iu":
        info = np.iinfo(out)
        bad = (values < info.min) | (values > info.max)
    else:
        with np.errstate(all="ignore"):
            cast = values.astype(out)
        bad = np.isinf(cast) & np.isfinite(values)
    if not bad.any():
        return None
    per_step = bad.reshape(bad.shape[0], -1).any(axis=1) if bad.ndim > 1 else bad
    step = int(np.argmax(per_step))
    row = values[step].reshape(-1)
    example = row[int(np.argmax(bad[step].reshape(-1)))]
    return Changed(step, example.item(), int(bad.sum()))


def check_strict_cast(index: int, values: AnyArray, dtype: Any, *, first_step: int = 0) -> None:
    """Raise if ``sequences[index]`` (``values``) does not cast to ``dtype`` by the strict rule.

    The errors are :func:`~varlen._checks.unplaced`: the public function names itself.

    Args:
        index: The sequence's index in the caller's ``sequences``.
        values: ``(T_i, *F)`` its steps (the kept ones), in their own dtype.
        dtype: The dtype they are cast to.
        first_step: Index of the first of ``values`` in the sequence (steps cut before it).

    Raises:
        TypeError: If ``values``' dtype does not cast to ``dtype`` within its kind.
        ValueError: If the cast changes a value beyond rounding (:func:`first_changed`).
    """
    out = np.dtype(dtype)
    check_same_kind(index, values.dtype, out)
    check_values(index, values, out, first_step=first_step)


def check_same_kind(index: int, source: np.dtype[Any], dtype: np.dtype[Any]) -> None:
    """Raise ``TypeError`` if ``sequences[index]``'s dtype does not cast within its kind.

    Args:
        index: The sequence's index in the caller's ``sequences``.
        source: Its dtype.
        dtype: The dtype it is cast to.
    """
    if not np.can_cast(source, dtype, casting="same_kind"):
        raise kind_error(index, source, dtype)


def check_values(index: int, values: AnyArray, dtype: Any, *, first_step: int = 0) -> None:
    """Raise ``ValueError`` if casting ``sequences[index]`` changes a value beyond rounding.

    Args:
        index: The sequence's index in the caller's ``sequences``.
        values: ``(T_i, *F)`` its kept steps.
        dtype: The dtype they are cast to.
        first_step: Index of the first of ``values`` in the sequence (steps cut before it).
    """
    changed = first_changed(values, dtype)
    if changed is not None:
        raise value_error(index, np.dtype(dtype), changed, first_step=first_step)


def kind_error(index: int, source: object, dtype: object) -> TypeError:
    """The strict rule's error for a cast across kinds (NumPy or torch dtypes), unplaced.

    Args:
        index: The sequence's index in the caller's ``sequences``.
        source: Its dtype.
        dtype: The dtype it was to be cast to.

    Returns:
        The ``TypeError`` to raise.
    """
    return unplaced(
        TypeError(
            f"sequences[{index}] has dtype {source}, which does not cast to "
            f"dtype {dtype} within its kind. Pass a dtype of its kind, or cast it first."
        )
    )


def value_error(index: int, dtype: object, changed: Changed, *, first_step: int = 0) -> ValueError:
    """The strict rule's error for a cast that changes values (NumPy or torch dtypes), unplaced.

    Args:
        index: The sequence's index in the caller's ``sequences``.
        dtype: The dtype it was to be cast to.
        changed: Where and how the cast changes values.
        first_step: Index of the first checked step in the sequence (steps cut before it).

    Returns:
        The ``ValueError`` to raise.
    """
    return unplaced(
        ValueError(
            f"sequences[{index}] must hold only values that dtype {dtype} can hold, got "
            f"{changed.example!r} at step {changed.step + first_step} ({changed.number} "
            "such values). Pass a wider dtype."
        )
    )
