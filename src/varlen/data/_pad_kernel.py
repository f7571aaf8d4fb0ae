"""The shared padding kernel of :mod:`varlen.data`: one vectorized path, its plan, its tuning.

Both front doors use it: :func:`varlen.data.pad` / :func:`varlen.data.unpad` (the strict native
pair, :mod:`varlen.data.padding`) and the Keras drop-in :func:`varlen.data.pad_sequences`
(:mod:`varlen.data.keras_padding`). It assumes its inputs were validated by them.

Decisions that only save time are taken from a :class:`PadTuning`, a parameter of the private
entry points, so callers and tests choose them without patching module state (as
``varlen.nn._plans.Tuning`` does for the recurrent layers). Every setting gives the same
result; a setting only picks the faster route.

How it is fast: the common inputs (NumPy arrays of bool, integer or float dtypes; lists and
tuples of Python numbers) into bool, integer or float outputs go through a compiled kernel
(``_native.c``) that writes each output row once, in order, straight from each sequence's
memory. It only handles what it can do exactly as Keras does with no warning; everything else
(and every install without a C compiler: see :data:`NATIVE`) takes the NumPy implementation,
with only ``O(1)`` Python steps per sequence (``len()``, and a slice for the sequences that are
too long), and every step copied by NumPy in C:

1. All kept steps go into one flat ``(N, *F)`` array: one ``np.concatenate`` for arrays, one
   pass over all items for lists of Python numbers (``array.array``, which also tells floats
   from ints, so float data bound for an int dtype is caught and warned about).
2. Short rows of scalar steps (``T <= mask_max_t``): one boolean-mask assignment puts the flat
   steps into the output. Otherwise (long rows, where such a mask would be mostly padding,
   or steps with features, which a mask copies one by one): the output is one
   ``np.concatenate`` of, row by row, a view of one padded row and the row's steps (the
   arrays themselves, or views into the flat array), so each output byte is written once,
   in order, and no index array is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeAlias

import numpy as np
from numpy.typing import NDArray

from varlen._checks import unplaced
from varlen._types import AnyArray, IntArray, Padding

try:
    from varlen.data import _native as _compiled
except ImportError:  # installed without a C compiler: the NumPy implementation does it all
    _compiled = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_TUNING",
    "NATIVE",
    "NUMERIC",
    "Kernel",
    "PadTuning",
    "Parts",
    "assemble",
    "from_flat",
    "is_positive_zero",
    "native",
    "nonempty_parts",
    "pad_arrays",
    "part_lengths",
    "repeat",
    "selector",
    "shape_mismatch",
    "value_changed",
]

NATIVE: bool = _compiled is not None
"""Whether the compiled padding kernel was built (and so is used with the default tuning)."""

NUMERIC = "biufc"


@dataclass(frozen=True)
class PadTuning:
    """The constants of the time-saving choices of ``pad``, ``unpad`` and ``pad_sequences``.

    Args:
        native: Offer the input to the compiled kernel first (when it was built). ``False``
            runs the NumPy implementation alone (the kernel gives the same bytes or declines).
        mask_max_t: Scalar steps (``*F = ()``) go into the output through a ``(B, T)`` mask up
            to this ``T``, and by one ``np.concatenate`` of padding and row views beyond (a row
            costs about as much as ~300 mask cells). Steps with features always take the
            concatenation: a mask copies them cell by cell, 2-3x slower (measured for
            ``F = 2`` and ``F = 32``).
        slice_cost: Slicing an array costs about as much as copying this many steps: when
            arrays are concatenated into flat steps and at most this many steps per truncated
            array are dropped, whole arrays are concatenated and the dropped steps removed by
            one mask (25% faster on the benchmark, which drops ~110 steps per truncated array).
        dense_ratio: ``unpad`` gathers through a ``(B * T,)`` boolean mask when
            ``B * T <= dense_ratio * N``, else through ``N`` flat indices: a mask element costs
            about a fifth of an index element.
    """

    native: bool = True
    mask_max_t: int = 256
    slice_cost: int = 256
    dense_ratio: int = 4


DEFAULT_TUNING = PadTuning()


Kernel: TypeAlias = Callable[[list[Any], int, NDArray[Any], bool, bool], NDArray[Any] | None]
"""``_native.pad_sequences(sequences, maxlen, fill, pre_padding, pre_truncating)``."""


def native(tuning: PadTuning) -> Kernel | None:
    """Return the compiled kernel if ``tuning`` uses it and it was built, else ``None``."""
    if _compiled is None or not tuning.native:
        return None
    return _compiled.pad_sequences


class Parts(NamedTuple):
    """The sequences of a batch that keep at least one step, before truncation to ``T``."""

    items: list[Any]  # the sequences, in batch order
    lengths: IntArray  # (n,) their full lengths, all >= 1
    rows: IntArray  # (n,) their rows in the batch
    T: int  # output length, >= 1
    truncating: Padding

    @property
    def kept(self) -> IntArray:
        """``(n,)`` int64 steps kept per sequence: ``min(lengths, T)``."""
        return np.minimum(self.lengths, self.T)

    def truncated(self) -> list[Any]:
        """Return the items with the ones longer than ``T`` sliced (views for arrays).

        Only the long items are touched. The front bound is ``len - T``, never ``-T``:
        ``s[-0:]`` would keep everything (the Keras ``maxlen=0`` bug).
        """
        T, pre = self.T, self.truncating == "pre"
        long = np.flatnonzero(self.lengths > T)
        out = list(self.items)
        for j, n in zip(long.tolist(), self.lengths[long].tolist(), strict=True):
            try:
                out[j] = self.items[j][n - T :] if pre else self.items[j][:T]
            except (TypeError, KeyError) as error:
                raise unplaced(
                    TypeError(
                        f"sequences[{int(self.rows[j])}] is longer than maxlen, so it must "
                        f"support slicing, got {type(self.items[j]).__name__}."
                    )
                ) from error
        return out

    def concat(self, trailing: tuple[int, ...], dtype: Any, *, slice_cost: int) -> AnyArray:
        """Concatenate the kept steps of the array items into ``(N, *F)``, cast within its kind.

        Raises:
            ValueError: If an item's trailing shape is not ``trailing`` (naming it).
            TypeError: If an item does not cast to ``dtype`` within its kind.
        """
        dropped = self.lengths - self.kept  # (n,)
        long = np.count_nonzero(dropped)
        # Whole arrays only when nothing is cast: a cast of a dropped step may warn.
        uncast = dtype is None or all(item.dtype == dtype for item in self.items)
        whole = uncast and 0 < int(dropped.sum()) <= slice_cost * long
        try:
            items = self.items if whole else self.truncated()
            values = np.concatenate(items, dtype=dtype, casting="same_kind")
        except ValueError:
            self.check_trailing(trailing)
            raise
        if not whole:
            return values
        if self.truncating == "pre":
            pattern, counts = (False, True), (dropped, self.kept)
        else:
            pattern, counts = (True, False), (self.kept, dropped)
        runs = np.stack(counts, axis=1).reshape(-1)  # (2n,) lengths of alternating runs
        kept_steps: AnyArray = values[np.repeat(np.tile(pattern, len(self.items)), runs)]
        return kept_steps

    def check_trailing(self, trailing: tuple[int, ...]) -> None:
        """Raise ``ValueError`` naming the first item whose shape is not ``(T_i, *trailing)``."""
        for j, item in enumerate(self.items):
            shape = np.shape(item)
            if shape[1:] != trailing:
                raise shape_mismatch(int(self.rows[j]), shape, trailing=trailing)

    def row_pieces(self, B: int, empty: AnyArray) -> list[Any]:
        """Return ``B`` row contents: the truncated items at their rows, ``empty`` elsewhere."""
        items = self.truncated()
        if len(items) == B:
            return items
        rows = [empty] * B
        for row, item in zip(self.rows.tolist(), items, strict=True):
            rows[row] = item
        return rows


def nonempty_parts(
    seqs: list[Any], lengths: IntArray, T: int, *, truncating: Padding
) -> Parts | None:
    """Return the sequences that keep a step, or ``None`` if none does (or ``T == 0``)."""
    index = np.flatnonzero(lengths) if T > 0 else np.zeros(0, dtype=np.int64)
    if index.size == 0:
        return None
    items = seqs if index.size == len(seqs) else [seqs[i] for i in index.tolist()]
    return Parts(items, lengths[index], index, T, truncating)


def shape_mismatch(i: int, shape: tuple[int, ...], *, trailing: tuple[int, ...] = ()) -> ValueError:
    """Return the standard error for a sequence whose shape is not ``(T_i, *F)``."""
    if len(shape) == 0:
        return unplaced(
            ValueError(
                f"sequences[{i}] must have shape (T_i, *F), got a scalar (shape ()). "
                "Wrap a single item in a list."
            )
        )
    return unplaced(
        ValueError(
            f"sequences[{i}] has trailing shape {shape[1:]}, expected {trailing} "
            "like the first non-empty sequence."
        )
    )


def part_lengths(parts: Sequence[Any]) -> IntArray:
    """Return the ``(len(parts),)`` int64 lengths of ``parts``."""
    return np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))


def is_positive_zero(value: Any) -> bool:
    """Whether ``value`` is a real scalar ``0`` (not ``-0.0``): then ``np.zeros`` is ``np.full``."""
    if not isinstance(value, bool | int | float | np.bool_ | np.integer | np.floating):
        return False
    return bool(value == 0) and math.copysign(1.0, float(value)) > 0


def value_changed(value: Any, out_dtype: np.dtype[Any]) -> tuple[bool, AnyArray]:
    """Whether storing ``value`` in ``out_dtype`` changes it beyond rounding, and what is stored.

    Into an integer or bool dtype the value must be kept exactly; into a floating one it may
    round but a finite value must stay finite. Compared in the value's own dtype (a Python
    float is not weakly cast to float16 first, which made ``1e6 == inf`` look exact).
    """
    natural = np.asarray(value)
    with np.errstate(all="ignore"):
        stored = natural.astype(out_dtype)
    if out_dtype.kind in "fc":
        return bool(np.any(np.isfinite(natural) & ~np.isfinite(stored))), stored
    return not np.array_equal(stored, natural), stored


def selector(
    kept: IntArray, T: int, padding: Padding, *, dense_ratio: int
) -> NDArray[np.bool_] | IntArray:
    """Return where the ``N`` kept steps go in the ``(B * T, ...)`` flat view of the output.

    A ``(B * T,)`` boolean mask when the output is dense enough, else ``(N,)`` flat indices;
    either selects the steps in row-major order, which is the order of the flat values.
    """
    B = kept.shape[0]
    N = int(kept.sum())
    if dense_ratio * N >= B * T:
        columns = np.arange(T)
        if padding == "pre":
            return (columns >= (T - kept)[:, None]).reshape(B * T)
        return (columns < kept[:, None]).reshape(B * T)
    starts = np.cumsum(kept) - kept  # (B,) flat index of each row's first kept step
    first = T - kept if padding == "pre" else 0  # (B,) column of each row's first kept step
    shift = np.arange(B, dtype=np.int64) * T + first - starts  # (B,) target minus source
    target = np.repeat(shift, kept)  # (N,)
    target += np.arange(N, dtype=np.int64)
    return target


def repeat(block: AnyArray, B: int) -> AnyArray:
    """Return ``(B, T, *F)``: ``B`` copies of the padded row ``block``, as ``np.full`` would."""
    out = np.empty((B, *block.shape), dtype=block.dtype)
    out[...] = block
    return out


def pad_arrays(
    parts: Parts,
    kept: IntArray,
    block: AnyArray,
    *,
    padding: Padding,
    zero: bool,
    tuning: PadTuning,
) -> AnyArray:
    """Return ``(B, T, *F)`` from arrays that cast to the block's dtype within their kind.

    Short rows of scalars: one concatenation of the kept steps, then one mask assignment.
    Otherwise: one concatenation of padding views and rows, straight into the output.

    Raises:
        ValueError: If an array's trailing shape is not the block's (naming it).
        TypeError: If an array does not cast to the block's dtype within its kind.
    """
    if use_mask(block, tuning.mask_max_t):
        values = parts.concat(block.shape[1:], block.dtype, slice_cost=tuning.slice_cost)
        return from_flat(values, kept, block, padding=padding, zero=zero, tuning=tuning)
    rows = parts.row_pieces(len(kept), block[:0])
    try:
        return assemble(rows, kept, block, padding=padding, casting="same_kind")
    except ValueError:
        parts.check_trailing(block.shape[1:])
        raise


def use_mask(block: AnyArray, mask_max_t: int) -> bool:
    """Whether to fill rows like ``block`` (one padded row) through a mask: see ``PadTuning``."""
    return block.ndim == 1 and block.shape[0] <= mask_max_t


def assemble(
    rows: list[AnyArray], kept: IntArray, block: AnyArray, *, padding: Padding, casting: Any
) -> AnyArray:
    """Return ``(B, T, *F)``: each row's padding and kept steps, from one ``np.concatenate``.

    Args:
        rows: ``B`` arrays, row ``i`` of shape ``(kept[i], *F)``.
        kept: ``(B,)`` int64 steps per row, ``<= T``.
        block: ``(T, *F)`` padded row; its views give the padding, its dtype the output's.
        padding: Side of the padding.
        casting: NumPy casting rule from the rows' dtypes to the block's.

    Returns:
        A new ``(B, T, *F)`` array of the block's dtype.
    """
    B, T = len(rows), block.shape[0]
    counts = (T - kept).tolist()  # (B,) padded steps per row
    fills = {count: block[:count] for count in set(counts)}  # one view per distinct count
    pads = list(map(fills.__getitem__, counts))
    pieces = [block] * (2 * B)
    pieces[0::2], pieces[1::2] = (pads, rows) if padding == "pre" else (rows, pads)
    flat = np.concatenate(pieces, dtype=block.dtype, casting=casting)  # (B * T, *F)
    return flat.reshape(B, *block.shape)


def from_flat(
    values: AnyArray,
    kept: IntArray,
    block: AnyArray,
    *,
    padding: Padding,
    zero: bool,
    tuning: PadTuning,
) -> AnyArray:
    """Return ``(B, T, *F)`` from the ``(N, *F)`` kept steps of all rows, end to end.

    Short rows of scalars go through one ``(B, T)`` boolean mask assignment (into
    ``np.zeros`` when the pad value is zero); others through row views and :func:`assemble`.
    """
    B, T = len(kept), block.shape[0]
    if use_mask(block, tuning.mask_max_t):
        out = np.zeros((B, *block.shape), dtype=block.dtype) if zero else repeat(block, B)
        columns = np.arange(T)
        mask = columns >= (T - kept)[:, None] if padding == "pre" else columns < kept[:, None]
        out[mask] = values  # row-major order of the mask is the order of values
        return out
    ends = np.cumsum(kept).tolist()
    rows = [values[end - n : end] for end, n in zip(ends, kept.tolist(), strict=True)]
    return assemble(rows, kept, block, padding=padding, casting="unsafe")
