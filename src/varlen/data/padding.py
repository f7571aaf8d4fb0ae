"""Pad variable-length sequences into one dense array, and take them out again.

Two front doors share one vectorized kernel:

- :func:`pad_sequences` is a drop-in for ``keras.utils.pad_sequences`` (Keras 3): same positional
  signature, defaults (``"pre"`` padding and truncation, ``int32``) and outputs, with Keras's
  crashes fixed and its silent data loss turned into a ``UserWarning``.
- :func:`pad` / :func:`unpad` are the native pair: ``"post"`` by default (ready for packing),
  the common dtype of the inputs, strict validation, and the kept lengths returned.

Lossy casts follow one rule (:mod:`varlen.data._casts`): into a floating dtype a value may
round but a finite one must stay finite; into an integer dtype every value must fit (no
wrap-around); float into integer loses the fraction. :func:`pad_sequences` (Keras is the
contract) returns what Keras returns and warns about every such loss; :func:`pad` (and
:meth:`varlen.Ragged.to_padded`) is strict and raises instead.

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
2. Short rows of scalar steps (``T <= 256``): one boolean-mask assignment puts the flat
   steps into the output. Otherwise (long rows, where such a mask would be mostly padding,
   or steps with features, which a mask copies one by one): the output is one
   ``np.concatenate`` of, row by row, a view of one padded row and the row's steps (the
   arrays themselves, or views into the flat array), so each output byte is written once,
   in order, and no index array is built.
"""

from __future__ import annotations

import array
import math
import warnings
from collections.abc import Collection, Iterable, Sequence
from itertools import chain
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from varlen._checks import check_lengths_array, check_maxlen, check_side
from varlen._types import AnyArray, IntArray, Padding
from varlen.data._casts import Changed, first_changed

try:
    from varlen.data import _native as _native  # re-exported for the tests
except ImportError:  # installed without a C compiler: the NumPy implementation does it all
    _native = None  # type: ignore[assignment]

__all__ = ["NATIVE", "pad", "pad_sequences", "unpad"]

NATIVE: bool = _native is not None
"""Whether the compiled padding kernel was built and is used by :func:`pad_sequences` and
:func:`pad`."""

_KERAS = "pad_sequences"

_DENSE_RATIO = 4
"""``unpad`` gathers through a ``(B * T,)`` boolean mask when ``B * T <= _DENSE_RATIO * N``,
else through ``N`` flat indices: a mask element costs about a fifth of an index element."""

_MASK_MAX_T = 256
"""Scalar steps (``*F = ()``) go into the output through a ``(B, T)`` mask up to this ``T``, and
by one ``np.concatenate`` of padding and row views beyond (a row costs about as much as ~300
mask cells). Steps with features always take the concatenation: a mask copies them cell by
cell, 2-3x slower (measured for ``F = 2`` and ``F = 32``)."""

_NUMERIC = "biufc"

_SLICE_COST = 256
"""Slicing an array costs about as much as copying this many steps: when arrays are
concatenated into flat steps and at most this many steps per truncated array are dropped,
whole arrays are concatenated and the dropped steps removed by one mask (25% faster on the
benchmark, which drops ~110 steps per truncated array)."""


class _Parts(NamedTuple):
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

    def truncated(self, where: str) -> list[Any]:
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
                raise TypeError(
                    f"{where}: sequences[{int(self.rows[j])}] is longer than maxlen, so it must "
                    f"support slicing, got {type(self.items[j]).__name__}."
                ) from error
        return out

    def concat(self, where: str, trailing: tuple[int, ...], dtype: Any) -> AnyArray:
        """Concatenate the kept steps of the array items into ``(N, *F)``, cast within its kind.

        Raises:
            ValueError: If an item's trailing shape is not ``trailing`` (naming it).
            TypeError: If an item does not cast to ``dtype`` within its kind.
        """
        dropped = self.lengths - self.kept  # (n,)
        long = np.count_nonzero(dropped)
        # Whole arrays only when nothing is cast: a cast of a dropped step may warn.
        uncast = dtype is None or all(item.dtype == dtype for item in self.items)
        whole = uncast and 0 < int(dropped.sum()) <= _SLICE_COST * long
        try:
            items = self.items if whole else self.truncated(where)
            values = np.concatenate(items, dtype=dtype, casting="same_kind")
        except ValueError:
            self.check_trailing(where, trailing)
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

    def check_trailing(self, where: str, trailing: tuple[int, ...]) -> None:
        """Raise ``ValueError`` naming the first item whose shape is not ``(T_i, *trailing)``."""
        for j, item in enumerate(self.items):
            shape = np.shape(item)
            if shape[1:] != trailing:
                raise _shape_mismatch(where, int(self.rows[j]), shape, trailing=trailing)

    def row_pieces(self, where: str, B: int, empty: AnyArray) -> list[Any]:
        """Return ``B`` row contents: the truncated items at their rows, ``empty`` elsewhere."""
        items = self.truncated(where)
        if len(items) == B:
            return items
        rows = [empty] * B
        for row, item in zip(self.rows.tolist(), items, strict=True):
            rows[row] = item
        return rows


def _nonempty_parts(
    seqs: list[Any], lengths: IntArray, T: int, *, truncating: Padding
) -> _Parts | None:
    """Return the sequences that keep a step, or ``None`` if none does (or ``T == 0``)."""
    index = np.flatnonzero(lengths) if T > 0 else np.zeros(0, dtype=np.int64)
    if index.size == 0:
        return None
    items = seqs if index.size == len(seqs) else [seqs[i] for i in index.tolist()]
    return _Parts(items, lengths[index], index, T, truncating)


# ----------------------------------------------------------------------------- pad_sequences


def pad_sequences(
    sequences: Collection[Any],
    maxlen: int | None = None,
    dtype: DTypeLike | None = "int32",
    padding: Padding = "pre",
    truncating: Padding = "pre",
    value: Any = 0.0,
) -> AnyArray:
    """Pad sequences to one length, as ``keras.utils.pad_sequences`` does, but vectorized.

    A drop-in for Keras 3's ``pad_sequences``: the same positional signature and defaults, and
    the same output (values, shape and dtype) for every input Keras accepts: lists of ids,
    multi-feature sequences ``(T_i, *F)``, NumPy arrays, lists and tuples, numeric dtypes,
    ``dtype=object`` (e.g. strings), NumPy string dtypes (which, as in Keras, keep only as many
    characters as ``np.full`` gives them: one for ``dtype=str``), ``dtype=None`` (the dtype of
    ``value``), and any ``value`` that ``np.full`` accepts. Each kept part of a sequence is
    converted exactly as Keras converts it (``np.asarray(part, dtype=dtype)``), so lists raise
    where Keras raises (a Python int too large for ``dtype``: ``OverflowError``; NaN into an
    integer dtype: ``ValueError``), with the sequence's index in the message.

    Where Keras fails or is wrong, this function does the right thing instead:

    - ``maxlen=0`` gives shape ``(B, 0, *F)`` (with ``truncating="pre"``, Keras's
      ``s[-maxlen:]`` keeps whole sequences and fails). Nothing is kept, so no step is
      converted or checked.
    - No sequences give shape ``(0, maxlen)``, or ``(0, 0)`` when ``maxlen`` is ``None``
      (Keras crashes on the maximum of no lengths).
    - ``padding`` and ``truncating`` are checked first, also when every sequence is empty.
    - A string ``value`` is accepted with every spelling of the object dtype (``"object"``,
      ``"O"``, ``np.object_``; Keras only accepts the builtin ``object``).
    - ``maxlen`` must be an ``int`` (not a ``bool``) or ``None``.
    - ``value`` must broadcast to one padded row ``(T, *F)`` (Keras broadcasts it to the
      whole ``(B, T, *F)`` output; a per-row value was never documented there).
    - A string item (e.g. ``"abc"`` among lists) raises ``TypeError`` naming it, for every
      dtype (Keras fails on it in several ways).

    Where Keras silently loses data, the output is the same but a ``UserWarning`` says what to
    pass instead: float (or complex) values, NaN or infinity cast into an integer or bool dtype
    (the default ``int32``!), integers that do not fit an integer dtype (they wrap around as
    in Keras and NumPy's ``astype``), finite values that overflow to infinity in a smaller
    float dtype (``1e6`` in float16), a ``value`` that the dtype cannot hold (the same rule),
    and strings cut to fit a fixed-width string dtype.

    Args:
        sequences: ``B`` sequences, each of shape ``(T_i, *F)`` (anything with ``len()``,
            slicing and a NumPy conversion: lists, tuples, arrays). ``sequences`` itself must
            have ``len()``; its ``*F`` is taken from the first non-empty sequence.
        maxlen: Output length ``T``; ``None`` means ``max(T_i)``. May be 0.
        dtype: Output dtype; ``None`` takes the dtype of ``value``.
        padding: ``"pre"`` puts the padding before each sequence, ``"post"`` after it.
        truncating: ``"pre"`` drops the first steps of a sequence longer than ``T``,
            ``"post"`` the last ones.
        value: Value written at padded steps: a scalar, or an array broadcast to ``(T, *F)``.

    Returns:
        ``(B, T, *F)`` array of ``dtype``; row ``i`` holds the kept ``min(T_i, T)`` steps of
        sequence ``i`` and ``value`` everywhere else.

    Raises:
        ValueError: If ``padding`` or ``truncating`` is not ``"pre"`` or ``"post"``,
            ``maxlen < 0``, ``value`` is a string and ``dtype`` is neither object nor a string
            dtype, ``sequences`` or one of its items has no ``len()``, or a sequence has other
            trailing dims than the first non-empty one (or cannot be converted, as in Keras).
        TypeError: If ``maxlen`` is not an int or ``None``, ``dtype`` is not a dtype, an item
            converts to a scalar (a string) or must be truncated but cannot be sliced, or (as
            in Keras) a step or ``value`` cannot be converted to ``dtype``.
        OverflowError: As in Keras, if a Python int (in a list, or ``value``) does not fit.

    Example:
        >>> pad_sequences([[1], [2, 3], [4, 5, 6]])  # (B, T) = (3, 3)
        array([[0, 0, 1],
               [0, 2, 3],
               [4, 5, 6]], dtype=int32)
        >>> pad_sequences([[1], [2, 3], [4, 5, 6]], maxlen=2, padding="post", value=-1)
        array([[ 1, -1],
               [ 2,  3],
               [ 5,  6]], dtype=int32)
    """
    check_side(_KERAS, "padding", padding)
    check_side(_KERAS, "truncating", truncating)
    T_arg = check_maxlen(_KERAS, maxlen)
    _check_keras_dtype(dtype, value)
    seqs = _as_list(sequences)
    out = _pad_native(seqs, T_arg, dtype, value, padding=padding, truncating=truncating)
    if out is not None:
        _warn_if_value_changed(value, out.dtype)
        return out
    lengths = _lengths(_KERAS, seqs)
    T = int(lengths.max(initial=0)) if T_arg is None else T_arg
    block = _fill_block((T, *_sample_shape(seqs, lengths)), value, dtype)  # one padded row
    _warn_if_value_changed(value, block.dtype)
    parts = _nonempty_parts(seqs, lengths, T, truncating=truncating)
    if parts is None or block.size == 0:
        return _repeat(block, len(seqs))
    kept = np.minimum(lengths, T)
    zero = block.dtype.kind in _NUMERIC and _is_positive_zero(value)
    out = _keras_from_arrays(parts, kept, block, padding=padding, zero=zero)
    if out is None:
        values = _keras_values(parts, block.shape[1:], dtype=dtype, out_dtype=block.dtype)
        values = _as_output_dtype(values, block.dtype, parts)
        _warn_if_strings_cut(values, value, block.dtype)
        out = _from_flat(values, kept, block, padding=padding, zero=zero)
    _warn_if_overflowed(parts, out)
    return out


def _pad_native(
    seqs: list[Any],
    T: int | None,
    dtype: DTypeLike | None,
    value: Any,
    *,
    padding: Padding,
    truncating: Padding,
) -> AnyArray | None:
    """Pad with the compiled kernel, or return ``None`` where it declines or is not built.

    The kernel declines (without side effects) every input it cannot pad exactly as Keras
    does with no warning; the pad value is checked here the same way: a ``value`` that does
    not convert exactly (e.g. NaN into an integer dtype) is left to the NumPy path, which warns.
    """
    if _native is None or np.ndim(value) != 0:
        return None
    try:
        with np.errstate(all="raise"):
            fill = np.full((), value, dtype=dtype)
    except (TypeError, ValueError, OverflowError, FloatingPointError):
        return None
    maxlen = -1 if T is None else T
    try:
        return _native.pad_sequences(seqs, maxlen, fill, padding == "pre", truncating == "pre")
    except (ValueError, MemoryError) as error:  # the only errors it raises: the allocation
        raise _too_large((maxlen,), error) from error


def _check_keras_dtype(dtype: DTypeLike | None, value: Any) -> None:
    """Check that ``dtype`` is a dtype (or ``None``) and Keras's string-``value`` rule."""
    if dtype is None:
        resolved = np.asarray(value).dtype
    else:
        try:
            resolved = np.dtype(dtype)
        except TypeError as error:
            raise TypeError(f"{_KERAS}: dtype must be a NumPy dtype, got {dtype!r}.") from error
    if isinstance(value, str) and (dtype is None or resolved.kind not in "OUS"):
        raise ValueError(
            f"{_KERAS}: dtype must be object or a string dtype when value is a string, "
            f"got dtype {dtype!r} with value {value!r}. "
            "Pass dtype=object for variable-length strings."
        )


def _as_list(sequences: Any) -> list[Any]:
    """Return ``sequences`` as a list (no copy for a list), requiring ``len()`` as Keras does."""
    if not hasattr(sequences, "__len__"):
        raise ValueError(
            f"{_KERAS}: sequences must be a collection with len(), "
            f"got {type(sequences).__name__}. Pass list(sequences)."
        )
    return sequences if isinstance(sequences, list) else list(sequences)


def _sample_shape(seqs: list[Any], lengths: IntArray) -> tuple[int, ...]:
    """Return ``*F`` as Keras does: the trailing shape of the first non-empty sequence."""
    nonempty = np.flatnonzero(lengths)
    if nonempty.size == 0:
        return ()
    first = int(nonempty[0])
    try:
        return tuple(np.shape(seqs[first])[1:])
    except ValueError as error:
        raise ValueError(
            f"{_KERAS}: sequences[{first}] must convert to an array of shape (T_i, *F): {error}"
        ) from error


def _fill_block(shape: tuple[int, ...], value: Any, dtype: DTypeLike | None) -> AnyArray:
    """Return ``np.full(shape, value, dtype)`` (one padded row), naming ``value`` on failure."""
    try:
        with np.errstate(invalid="ignore", over="ignore"):  # NaN into int, 1e6 into float16:
            return np.full(shape, value, dtype=dtype)  # warned about after
    except (TypeError, ValueError, OverflowError, MemoryError) as error:
        if _fits_shape(value, dtype, shape):  # the value is fine: the row is too large
            raise _too_large(shape, error) from error
        resolved = np.asarray(value).dtype if dtype is None else np.dtype(dtype)
        raise type(error)(
            f"{_KERAS}: value must be storable in dtype {resolved}, got {value!r} ({error})."
        ) from error


def _fits_shape(value: Any, dtype: DTypeLike | None, shape: tuple[int, ...]) -> bool:
    """Whether ``value`` converts to ``dtype`` and broadcasts to ``shape`` (not beyond it)."""
    try:
        with np.errstate(invalid="ignore"):
            stored = np.asarray(value, dtype=dtype)
        return np.broadcast_shapes(stored.shape, shape) == shape
    except (TypeError, ValueError, OverflowError):
        return False


def _too_large(shape: tuple[int, ...], error: Exception) -> MemoryError:
    """Return the error for a padded output that cannot be allocated."""
    return MemoryError(
        f"{_KERAS}: the padded output, rows of shape {shape}, is too large to allocate "
        f"({error}). Pass a smaller maxlen."
    )


def _is_positive_zero(value: Any) -> bool:
    """Whether ``value`` is a real scalar ``0`` (not ``-0.0``): then ``np.zeros`` is ``np.full``."""
    if not isinstance(value, bool | int | float | np.bool_ | np.integer | np.floating):
        return False
    return bool(value == 0) and math.copysign(1.0, float(value)) > 0


def _keras_from_arrays(
    parts: _Parts, kept: IntArray, block: AnyArray, *, padding: Padding, zero: bool
) -> AnyArray | None:
    """Pad NumPy arrays that cast within their kind into a numeric output, else ``None``.

    ``None`` sends float data bound for an integer dtype (and every other input) to the
    conversion path, which casts with a loss check.
    """
    if block.dtype.kind not in _NUMERIC or set(map(type, parts.items)) != {np.ndarray}:
        return None
    try:
        with np.errstate(over="ignore"):  # a finite value overflowing: warned about after
            return _pad_arrays(parts, kept, block, where=_KERAS, padding=padding, zero=zero)
    except TypeError:  # not a same-kind cast, e.g. float data into the default int32
        return None


def _keras_values(
    parts: _Parts, trailing: tuple[int, ...], *, dtype: DTypeLike | None, out_dtype: np.dtype[Any]
) -> AnyArray:
    """Convert the kept steps into one ``(N, *F)`` array, as Keras would.

    Fast paths for the common inputs, each falling back to the exact per-sequence conversion
    (which raises Keras's exception, with the sequence index) when its input is unusual.
    """
    kinds = set(map(type, parts.items))
    numeric = out_dtype.kind in _NUMERIC
    values = None
    if numeric and kinds == {np.ndarray}:
        values = _concat_keras(parts, trailing)
    elif numeric and dtype is not None and trailing == () and kinds <= {list, tuple}:
        values = _flatten_scalar_lists(parts, out_dtype)
    if values is None:
        values = _convert_each(parts, trailing, dtype=dtype, out_dtype=out_dtype)
    return values


def _concat_keras(parts: _Parts, trailing: tuple[int, ...]) -> AnyArray | None:
    """Concatenate arrays in their common dtype, to be cast with a loss check by the caller.

    Returns ``None`` when the arrays have no common numeric dtype, for the exact path.
    """
    if len({item.dtype.kind for item in parts.items}) > 1:
        return None  # e.g. int and float arrays: their common float64 would round the ints
    try:
        values = parts.concat(_KERAS, trailing, None)
    except TypeError:  # no common dtype, e.g. str and int arrays
        return None
    return values if values.dtype.kind in _NUMERIC else None


def _shape_mismatch(
    where: str, i: int, shape: tuple[int, ...], *, trailing: tuple[int, ...] = ()
) -> ValueError:
    """Return the standard error for a sequence whose shape is not ``(T_i, *F)``."""
    if len(shape) == 0:
        return ValueError(
            f"{where}: sequences[{i}] must have shape (T_i, *F), got a scalar (shape ()). "
            "Wrap a single item in a list."
        )
    return ValueError(
        f"{where}: sequences[{i}] has trailing shape {shape[1:]}, expected {trailing} "
        "like the first non-empty sequence."
    )


def _flatten_scalar_lists(parts: _Parts, out_dtype: np.dtype[Any]) -> AnyArray | None:
    """Convert lists of Python numbers in one pass over all items, or return ``None``.

    Integer and bool outputs go through ``array.array("q")``, which refuses floats, strings and
    ``None`` (so nothing is truncated silently) and is as fast as any NumPy conversion; lists
    that hold floats then take the per-sequence path, which checks each float sequence for
    loss. Float outputs go through ``np.fromiter``, item by item as ``np.asarray`` converts
    them in Keras. ``None`` means: use the exact per-sequence path.
    """
    if out_dtype.kind in "iub":
        values = _int64_from_lists(parts)
        if values is None or (out_dtype.kind != "b" and not _fits(values, out_dtype)):
            return None  # floats (checked for loss sequence by sequence), or an error to raise
        return values
    items, total = parts.truncated(_KERAS), int(parts.kept.sum())
    try:
        with np.errstate(invalid="ignore", over="ignore"):
            return np.fromiter(chain.from_iterable(items), dtype=out_dtype, count=total)
    except (TypeError, ValueError, OverflowError):
        return None


def _int64_from_lists(parts: _Parts) -> IntArray | None:
    """Return all kept items as int64, or ``None`` if one is not an integer or does not fit.

    Each long list is sliced right before its conversion, while its items are in cache:
    slicing them all first, then converting, reads every item twice from memory.
    """
    buffer = array.array("q")
    fromlist, extend = buffer.fromlist, buffer.extend  # bound once: called once per sequence
    T, pre = parts.T, parts.truncating == "pre"
    try:
        for item, n in zip(parts.items, parts.lengths.tolist(), strict=True):
            part = item if n <= T else item[n - T :] if pre else item[:T]
            if type(part) is list:
                fromlist(part)
            else:
                extend(part)
    except (TypeError, OverflowError):
        return None
    return np.frombuffer(buffer, dtype=np.int64)


def _fits(values: IntArray, dtype: np.dtype[Any]) -> bool:
    """Whether int64 ``values`` all fit in integer ``dtype`` (Keras raises when they do not)."""
    if dtype.itemsize == 8 and dtype.kind == "i":
        return True
    info = np.iinfo(dtype)
    return int(values.min()) >= info.min and int(values.max()) <= info.max


def _part_lengths(parts: Sequence[Any]) -> IntArray:
    """Return the ``(len(parts),)`` int64 lengths of ``parts``."""
    return np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))


def _convert_each(
    parts: _Parts, trailing: tuple[int, ...], *, dtype: DTypeLike | None, out_dtype: np.dtype[Any]
) -> AnyArray:
    """Convert each part with ``np.asarray(part, dtype)`` as Keras does, then concatenate.

    The exact path: one NumPy conversion per sequence (the copy into the output stays one
    vectorized scatter). Errors name the sequence; float data cast into an integer or bool
    dtype is compared with its natural conversion and warned about.
    """
    converted = []
    items = parts.truncated(_KERAS)
    for j, part in enumerate(items):
        i = int(parts.rows[j])
        try:
            with np.errstate(invalid="ignore", over="ignore"):  # warned about below
                item = np.asarray(part, dtype=dtype)
        except (TypeError, ValueError, OverflowError) as error:
            raise type(error)(
                f"{_KERAS}: sequences[{i}] must convert to dtype {out_dtype}: {error}"
            ) from error
        if item.ndim == 0:
            raise TypeError(
                f"{_KERAS}: sequences[{i}] must be a sequence of steps, got "
                f"{type(part).__name__} {part!r}, which converts to a scalar. Wrap it in a list."
            )
        if item.shape[1:] != trailing:
            raise _shape_mismatch(_KERAS, i, item.shape, trailing=trailing)
        converted.append(item)
    if out_dtype.kind not in _NUMERIC:
        return np.concatenate(converted)
    # Each part goes into the output dtype on its own, as Keras assigns it: concatenating the
    # parts first would promote them (uint64 beside int64, ints beside floats: float64) and
    # round. Float losses into integer or bool dtypes are warned about below.
    quiet = {"invalid": "ignore", "over": "ignore"} if out_dtype.kind in "iub" else {}
    with np.errstate(**quiet):  # type: ignore[arg-type]
        values = np.concatenate(converted, dtype=out_dtype, casting="unsafe")
    if out_dtype.kind in "iub":
        ends = np.cumsum([len(c) for c in converted])[:-1]
        _warn_if_lossy(_natural(items, np.split(values, ends)), values, parts)
    return values


def _natural(parts: list[Any], converted: list[AnyArray]) -> AnyArray | None:
    """Return what the loss check compares the converted steps with, or ``None`` for nothing.

    The float (and complex) parts as they are, the others as ``converted`` (each part in the
    output dtype): integers into an integer or bool dtype change as NumPy documents, without
    a warning. Concatenating the parts' own arrays instead would promote, e.g., uint64 and
    int64 parts to float64 and report integers as floats that changed. ``None`` when no part
    is float, or one fails.
    """
    try:
        natural = [np.asarray(part) for part in parts]
    except (TypeError, ValueError):
        return None
    if not any(array.dtype.kind in "fc" for array in natural):
        return None
    return np.concatenate(
        [n if n.dtype.kind in "fc" else c for n, c in zip(natural, converted, strict=True)]
    )


def _as_output_dtype(values: AnyArray, out_dtype: np.dtype[Any], parts: _Parts) -> AnyArray:
    """Cast float or complex ``values`` to an integer or bool output dtype, warning on loss."""
    if values.dtype.kind not in "fc" or out_dtype.kind not in "iub":
        return values
    with np.errstate(invalid="ignore", over="ignore"):  # NaN, inf, too large: warned about
        cast = values.astype(out_dtype)
    _warn_if_lossy(values, cast, parts)
    return cast


def _warn_if_lossy(natural: AnyArray | None, converted: AnyArray, parts: _Parts) -> None:
    """Warn if float ``natural`` values changed when converted to an integer or bool dtype."""
    if natural is None or natural.dtype.kind not in "fc" or natural.shape != converted.shape:
        return
    changed = natural != converted  # (N, *F); NaN differs from everything
    if not changed.any():
        return
    changed_steps = changed.reshape(changed.shape[0], -1).any(axis=1)  # (N,)
    first = int(np.argmax(changed_steps))
    row = int(np.searchsorted(np.cumsum(parts.kept), first, side="right"))
    example = natural[first].flat[int(np.argmax(changed[first].reshape(-1)))]
    warnings.warn(
        f"{_KERAS}: dtype {converted.dtype} cannot hold {int(changed.sum())} of the values, "
        f"e.g. {example.item()!r} in sequences[{int(parts.rows[row])}], which were changed as "
        "in Keras (truncated, or garbage for NaN and infinity). "
        "Pass dtype='float32' to keep them.",
        UserWarning,
        stacklevel=3,
    )


def _overflow_in(parts: _Parts, out: AnyArray) -> tuple[Changed, int] | None:
    """The first kept step (and its row) that the cast into ``out``'s dtype changed, if any."""
    numeric = out.dtype.kind in "iufc"
    if not numeric or (out.dtype.kind in "fc" and not np.isinf(out).any()):
        return None  # an overflow into a float dtype leaves an infinity in the output
    for j, part in enumerate(parts.truncated(_KERAS)):
        if out.dtype.kind in "iu" and type(part) is not np.ndarray:
            continue  # Python ints that do not fit raise, as in Keras
        try:
            natural = np.asarray(part)
        except (TypeError, ValueError):
            continue
        if natural.dtype.kind in "biufc" and natural.ndim >= 1:
            changed = first_changed(natural, out.dtype)
            if changed is not None:
                return changed, int(parts.rows[j])
    return None


def _warn_if_overflowed(parts: _Parts | None, out: AnyArray) -> None:
    """Warn if integers wrapped around, or finite values became infinite, in ``out``."""
    found = None if parts is None else _overflow_in(parts, out)
    if found is None:
        return
    changed, row = found
    what = "infinity" if out.dtype.kind in "fc" else "wrapped-around integers"
    warnings.warn(
        f"{_KERAS}: dtype {out.dtype} cannot hold values such as {changed.example!r} in "
        f"sequences[{row}], which became {what} as in Keras. Pass a wider dtype "
        "(e.g. dtype='float32' or 'int64') to keep them.",
        UserWarning,
        stacklevel=3,
    )


def _value_changed(value: Any, out_dtype: np.dtype[Any]) -> tuple[bool, AnyArray]:
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


def _warn_if_value_changed(value: Any, out_dtype: np.dtype[Any]) -> None:
    """Warn if a numeric ``value`` changed (beyond rounding) when stored in the output dtype."""
    if out_dtype.kind not in _NUMERIC or isinstance(value, str) or _is_positive_zero(value):
        return
    natural = np.asarray(value)
    if natural.dtype.kind not in _NUMERIC:
        return
    changed, stored = _value_changed(natural, out_dtype)
    if changed:
        warnings.warn(
            f"{_KERAS}: dtype {out_dtype} cannot hold value {value!r}, which was stored as "
            f"{stored.reshape(-1)[0].item()!r} as in Keras. Pass dtype='float32' "
            "(or a value that the dtype can hold).",
            UserWarning,
            stacklevel=3,
        )


def _warn_if_strings_cut(values: AnyArray, value: Any, out_dtype: np.dtype[Any]) -> None:
    """Warn if strings are longer than a fixed-width string output dtype can hold."""
    if out_dtype.kind not in "US":
        return
    width = out_dtype.itemsize // (4 if out_dtype.kind == "U" else 1)
    longest = int(np.char.str_len(values).max()) if values.dtype.kind in "US" else 0
    if isinstance(value, str | bytes):
        longest = max(longest, len(value))
    if longest > width:
        warnings.warn(
            f"{_KERAS}: dtype {out_dtype} holds {width} character(s), so strings of up to "
            f"{longest} were cut as in Keras. Pass dtype=object for variable-length strings.",
            UserWarning,
            stacklevel=3,
        )


# ------------------------------------------------------------------------------ pad / unpad


def pad(
    sequences: Iterable[ArrayLike],
    *,
    maxlen: int | None = None,
    value: Any = 0,
    padding: Padding = "post",
    truncating: Padding = "post",
    dtype: DTypeLike | None = None,
) -> tuple[AnyArray, IntArray]:
    """Pad variable-length sequences into one dense batch, and return the kept lengths.

    Sequences longer than ``maxlen`` are truncated first. Zero-length sequences are allowed
    and become all-padding rows; they do not take part in choosing the default dtype (so an
    empty ``[]``, float64 to NumPy, does not turn int data into floats). Every argument is
    checked before any work. The output is always a new array.

    Args:
        sequences: ``B >= 1`` array-likes of shape ``(T_i, *F)`` with equal ``*F`` (an empty
            ``[]`` of shape ``(0,)`` matches any ``*F``).
        maxlen: Output length ``T``; defaults to ``max(T_i)``. May be 0.
        value: Scalar written at padded steps; ``dtype`` must hold it (exactly for integer
            and bool dtypes; a float dtype may round it but must keep it finite).
        padding: End that receives padding: ``"pre"`` (before) or ``"post"`` (after).
        truncating: End from which steps are dropped when ``T_i > T``.
        dtype: Output dtype; defaults to the common dtype (``np.result_type``) of the
            non-empty sequences. Each sequence must cast to it within its kind (no float to
            int: cast such data yourself), and strictly: every integer must fit an integer
            dtype, and no finite value may overflow to infinity in a float dtype.

    Returns:
        ``(padded, lengths)``: ``padded`` is ``(B, T, *F)``; ``lengths`` is int64 ``(B,)``
        holding the kept lengths ``min(T_i, T)``.

    Raises:
        ValueError: If ``sequences`` is empty, a sequence is a scalar, trailing shapes differ,
            ``maxlen < 0``, ``padding`` or ``truncating`` is not ``"pre"`` or ``"post"``,
            ``value`` is not a scalar that ``dtype`` holds, or a sequence holds a value that
            ``dtype`` does not (an integer out of range, a finite value that would overflow).
        TypeError: If ``maxlen`` is not an int or ``None``, ``dtype`` is not a dtype, the
            sequences have no common dtype (text and numbers mixed, say), or one cannot be
            cast to ``dtype`` within its kind.

    Example:
        >>> padded, lengths = pad([np.array([1, 2, 3]), np.array([4])])
        >>> padded  # (B, T) = (2, 3)
        array([[1, 2, 3],
               [4, 0, 0]])
        >>> lengths
        array([3, 1])
    """
    check_side("pad", "padding", padding)
    check_side("pad", "truncating", truncating)
    T_arg = check_maxlen("pad", maxlen)
    arrays = _as_arrays(sequences)
    lengths = _part_lengths(arrays)
    trailing = _common_trailing(arrays)
    out_dtype = _common_dtype(arrays, lengths, dtype)
    fill = _exact_value(value, out_dtype)
    T = int(lengths.max()) if T_arg is None else T_arg
    kept = np.minimum(lengths, T)
    block = np.full((T, *trailing), fill, dtype=out_dtype)  # one padded row
    parts = _nonempty_parts(arrays, lengths, T, truncating=truncating)
    if parts is None or block.size == 0:
        return _repeat(block, len(arrays)), kept
    if _native is not None:  # kinds were checked above; the kernel declines a changed value
        fill_0d = block.reshape(-1)[:1].reshape(())
        out = _native.pad_sequences(arrays, T, fill_0d, padding == "pre", truncating == "pre")
        if out is not None:
            return out, kept
    # The kernel declined (or is not built): the strict value rule is checked here, before the
    # NumPy path casts (it would wrap integers and overflow floats silently).
    _check_kept_values(arrays, lengths, T, out_dtype, truncating=truncating)
    zero = out_dtype.kind in _NUMERIC and _is_positive_zero(fill)
    return _pad_arrays(parts, kept, block, where="pad", padding=padding, zero=zero), kept


def _refuse_torch(where: str, name: str, value: object) -> None:
    """Raise if ``value`` is a torch tensor: this layer is NumPy only (no silent host copy)."""
    if type(value).__module__.split(".")[0] == "torch":
        raise TypeError(
            f"varlen.data.{where}: {name} must be a NumPy array or list (this layer is NumPy "
            f"only), got a {type(value).__name__}. For tensors use varlen.{where} (it returns "
            f"tensors on their device and dtype) or varlen.nn.functional.{where}."
        )


def _as_arrays(sequences: Iterable[ArrayLike]) -> list[AnyArray]:
    """Return the sequences as a non-empty list of arrays with at least one dimension."""
    given = list(sequences)
    for i, s in enumerate(given):
        _refuse_torch("pad", f"sequences[{i}]", s)
    arrays = [s if type(s) is np.ndarray else np.asarray(s) for s in given]
    if not arrays:
        raise ValueError(
            "pad: sequences must hold at least one sequence, got none. "
            "The output's dtype and trailing shape come from the sequences."
        )
    for i, a in enumerate(arrays):
        if a.ndim == 0:
            raise _shape_mismatch("pad", i, a.shape)
    return arrays


def _common_trailing(arrays: list[AnyArray]) -> tuple[int, ...]:
    """Return the ``*F`` shared by all arrays, else raise naming the first odd one.

    A plain empty sequence (shape ``(0,)``, e.g. ``[]``) matches every ``*F``.
    """
    if len({a.shape[1:] for a in arrays}) == 1:
        return arrays[0].shape[1:]
    first = next((i for i, a in enumerate(arrays) if a.shape != (0,)), 0)
    trailing: tuple[int, ...] = arrays[first].shape[1:]
    for i, a in enumerate(arrays):
        if a.shape[1:] != trailing and a.shape != (0,):
            raise ValueError(
                f"pad: sequences[{i}] has trailing shape {a.shape[1:]}, "
                f"expected {trailing} like sequences[{first}]."
            )
    return trailing


def _common_dtype(
    arrays: list[AnyArray], lengths: IntArray, dtype: DTypeLike | None
) -> np.dtype[Any]:
    """Return ``dtype``, or the common dtype of the non-empty arrays, checking every cast."""
    voters = np.flatnonzero(lengths).tolist()
    dtypes = {arrays[i].dtype for i in voters or range(len(arrays))}
    _check_one_family(arrays, voters)
    if dtype is None:
        try:
            return np.result_type(*dtypes)
        except TypeError as error:
            raise TypeError(
                f"pad: sequences must share a common dtype, got {sorted(map(str, dtypes))}. "
                "Pass dtype, or convert the sequences first."
            ) from error
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"pad: dtype must be a NumPy dtype or None, got {dtype!r}.") from error
    dtypes = {arrays[i].dtype for i in voters}  # empty sequences hold nothing to cast
    bad = {d for d in dtypes if not np.can_cast(d, resolved, casting="same_kind")}
    if bad:
        i = next(i for i in voters if arrays[i].dtype in bad)
        raise TypeError(
            f"pad: sequences[{i}] has dtype {arrays[i].dtype}, which does not cast to "
            f"dtype {resolved} within its kind. Pass a dtype of its kind, or cast it first."
        )
    return resolved


def _check_kept_values(
    arrays: list[AnyArray], lengths: IntArray, T: int, dtype: np.dtype[Any], *, truncating: Padding
) -> None:
    """Raise if ``dtype`` cannot hold a kept step's value (steps cut by ``T`` are not cast)."""
    voters = np.flatnonzero(lengths).tolist()
    kinds = {array.dtype for array in arrays}
    unsafe = {d for d in kinds if not np.can_cast(d, dtype, casting="safe")}
    if not unsafe:
        return  # the common case: every cast is safe, nothing to look at
    for i in voters:
        if arrays[i].dtype not in unsafe:
            continue
        n = int(lengths[i])
        part = arrays[i] if n <= T else arrays[i][n - T :] if truncating == "pre" else arrays[i][:T]
        changed = first_changed(part, dtype)
        if changed is not None:
            step = changed.step + (n - T if truncating == "pre" and n > T else 0)
            raise ValueError(
                f"pad: sequences[{i}] must hold only values that dtype {dtype} can hold, got "
                f"{changed.example!r} at step {step} ({changed.number} such values). "
                "Pass a wider dtype."
            )


def _check_one_family(arrays: list[AnyArray], voters: list[int]) -> None:
    """Raise ``TypeError`` if numeric and text sequences are mixed (NumPy would make text)."""
    numeric = [i for i in voters if arrays[i].dtype.kind in _NUMERIC]
    other = [i for i in voters if arrays[i].dtype.kind in "US"]
    if numeric and other:
        i, j = numeric[0], other[0]
        raise TypeError(
            f"pad: sequences must all be numeric or all be text, got sequences[{i}] of dtype "
            f"{arrays[i].dtype} and sequences[{j}] of dtype {arrays[j].dtype}. "
            "Convert them to one dtype first."
        )


def _exact_value(value: Any, dtype: np.dtype[Any]) -> Any:
    """Return ``value`` if it is a scalar that ``dtype`` holds exactly, else raise."""
    if np.ndim(value) != 0:
        raise ValueError(f"pad: value must be a scalar, got shape {np.shape(value)}.")
    try:
        with np.errstate(all="ignore"):  # an overflow is judged below
            np.asarray(value, dtype=dtype)  # raises for what dtype cannot take at all
        natural = np.asarray(value)
        if dtype.kind == "O":
            same = True
        elif natural.dtype.kind in _NUMERIC and dtype.kind in _NUMERIC:
            same = not _value_changed(natural, dtype)[0]
        else:
            same = natural.dtype.kind not in _NUMERIC and dtype.kind not in _NUMERIC
            same = same and bool(np.asarray(value, dtype=dtype) == value)
    except (TypeError, ValueError, OverflowError):
        same = False
    if not same:
        raise ValueError(
            f"pad: value must be representable in dtype {dtype}, got {value!r}. "
            "Pass a dtype that holds it, or another value."
        )
    return value


def unpad(padded: ArrayLike, lengths: ArrayLike, *, padding: Padding = "post") -> list[AnyArray]:
    """Take the real steps out of a padded batch: the inverse of :func:`pad`.

    ``unpad(*pad(x))`` gives back ``x`` (as arrays of the padded dtype). The returned arrays
    never share memory with ``padded``: they are consecutive slices of one new array holding
    all ``N`` real steps, so writing to one never changes ``padded`` or another sequence.

    Args:
        padded: ``(B, T, *F)`` padded batch.
        lengths: ``(B,)`` integer number of real steps per row, ``0 <= lengths[i] <= T``.
        padding: End that holds the padding: ``"pre"`` (before) or ``"post"`` (after).

    Returns:
        ``B`` arrays; array ``i`` has shape ``(lengths[i], *F)`` and ``padded``'s dtype.

    Raises:
        ValueError: If ``padded`` has fewer than 2 dims, ``lengths`` is not ``(B,)``, a length
            is negative or above ``T``, or ``padding`` is not ``"pre"`` or ``"post"``.
        TypeError: If ``lengths`` is not of an integer dtype.

    Example:
        >>> unpad(np.array([[1, 2, 3], [4, 0, 0]]), [3, 1])  # (B, T) = (2, 3)
        [array([1, 2, 3]), array([4])]
    """
    check_side("unpad", "padding", padding)
    _refuse_torch("unpad", "padded", padded)
    dense = np.asarray(padded)
    if dense.ndim < 2:
        raise ValueError(f"unpad: padded must have shape (B, T, *F), got {dense.shape}.")
    B, T = dense.shape[:2]
    kept = check_lengths_array("unpad", lengths, maxlen=T)
    if kept.shape != (B,):
        raise ValueError(f"unpad: lengths must have shape (B,) = ({B},), got {kept.shape}.")
    values = dense.reshape(B * T, *dense.shape[2:])[_selector(kept, T, padding)]  # (N, *F) copy
    ends = np.cumsum(kept).tolist()
    return [values[end - n : end] for end, n in zip(ends, kept.tolist(), strict=True)]


# ------------------------------------------------------------------------------------ kernel


def _lengths(where: str, seqs: list[Any]) -> IntArray:
    """Return the ``(B,)`` int64 ``len()`` of every sequence, naming one that has none."""
    try:
        return np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    except TypeError:
        pass
    for i, s in enumerate(seqs):
        try:
            len(s)
        except TypeError as error:
            raise ValueError(
                f"{where}: sequences[{i}] must be a sequence with len(), "
                f"got {type(s).__name__} {s!r}."
            ) from error
    return _part_lengths(seqs)


def _selector(kept: IntArray, T: int, padding: Padding) -> NDArray[np.bool_] | IntArray:
    """Return where the ``N`` kept steps go in the ``(B * T, ...)`` flat view of the output.

    A ``(B * T,)`` boolean mask when the output is dense enough, else ``(N,)`` flat indices;
    either selects the steps in row-major order, which is the order of the flat values.
    """
    B = kept.shape[0]
    N = int(kept.sum())
    if B * T <= _DENSE_RATIO * N:
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


def _repeat(block: AnyArray, B: int) -> AnyArray:
    """Return ``(B, T, *F)``: ``B`` copies of the padded row ``block``, as ``np.full`` would."""
    out = np.empty((B, *block.shape), dtype=block.dtype)
    out[...] = block
    return out


def _pad_arrays(
    parts: _Parts, kept: IntArray, block: AnyArray, *, where: str, padding: Padding, zero: bool
) -> AnyArray:
    """Return ``(B, T, *F)`` from arrays that cast to the block's dtype within their kind.

    Short rows of scalars: one concatenation of the kept steps, then one mask assignment.
    Otherwise: one concatenation of padding views and rows, straight into the output.

    Raises:
        ValueError: If an array's trailing shape is not the block's (naming it).
        TypeError: If an array does not cast to the block's dtype within its kind.
    """
    if _use_mask(block):
        values = parts.concat(where, block.shape[1:], block.dtype)
        return _from_flat(values, kept, block, padding=padding, zero=zero)
    rows = parts.row_pieces(where, len(kept), block[:0])
    try:
        return _assemble(rows, kept, block, padding=padding, casting="same_kind")
    except ValueError:
        parts.check_trailing(where, block.shape[1:])
        raise


def _use_mask(block: AnyArray) -> bool:
    """Whether to fill rows like ``block`` (one padded row) through a mask: see ``_MASK_MAX_T``."""
    return block.ndim == 1 and block.shape[0] <= _MASK_MAX_T


def _assemble(
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


def _from_flat(
    values: AnyArray, kept: IntArray, block: AnyArray, *, padding: Padding, zero: bool
) -> AnyArray:
    """Return ``(B, T, *F)`` from the ``(N, *F)`` kept steps of all rows, end to end.

    Short rows of scalars go through one ``(B, T)`` boolean mask assignment (into
    ``np.zeros`` when the pad value is zero); others through row views and :func:`_assemble`.
    """
    B, T = len(kept), block.shape[0]
    if _use_mask(block):
        out = np.zeros((B, *block.shape), dtype=block.dtype) if zero else _repeat(block, B)
        columns = np.arange(T)
        mask = columns >= (T - kept)[:, None] if padding == "pre" else columns < kept[:, None]
        out[mask] = values  # row-major order of the mask is the order of values
        return out
    ends = np.cumsum(kept).tolist()
    rows = [values[end - n : end] for end, n in zip(ends, kept.tolist(), strict=True)]
    return _assemble(rows, kept, block, padding=padding, casting="unsafe")
