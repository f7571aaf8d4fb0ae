"""The one rule for lossy casts in ``varlen.data``: which values a cast changes beyond rounding.

A cast into a floating dtype may round (float64 -> float32 does, and that is what the dtype
means), but a finite value must stay finite; a cast into an integer dtype must keep every
value (no wrap-around). Float -> integer casts are not covered here: the strict functions
refuse them outright and ``pad_sequences`` warns about them on its own.

How each function applies the rule is its contract, stated in its docstring:

- :func:`varlen.pad` and :meth:`varlen.Ragged.to_padded` are strict: such a cast raises
  ``ValueError`` naming the sequence and a value.
- :func:`varlen.pad_sequences` is Keras-compatible: it returns what Keras returns and warns
  (``UserWarning``) naming a value.

Both check with two fast reductions (min and max) and look for the offending value only when
those say there is one, so the rule costs little on the hot path.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from varlen._types import AnyArray

__all__ = ["Changed", "first_changed"]


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
