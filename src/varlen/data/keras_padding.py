"""``pad_sequences``: the drop-in for ``keras.utils.pad_sequences`` (Keras 3), and its rules.

Same positional signature, defaults (``"pre"`` padding and truncation, ``int32``) and outputs
as Keras, with Keras's crashes fixed and its silent data loss turned into a ``UserWarning``
(Keras is the contract: the output stays Keras's). The strict native pair
:func:`varlen.data.pad` / :func:`varlen.data.unpad` lives in :mod:`varlen.data.padding`; both
share the vectorized kernel of :mod:`varlen.data._pad_kernel` (how it is fast is told there).

Lossy casts follow one rule (:mod:`varlen._casts`): into a floating dtype a value may round
but a finite one must stay finite; into an integer dtype every value must fit (no
wrap-around); float into integer loses the fraction. Here every such loss is warned about.
"""

from __future__ import annotations

import array
import warnings
from collections.abc import Collection
from itertools import chain
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from varlen._casts import Changed, first_changed
from varlen._checks import check_maxlen, check_side, error_context, unplaced
from varlen._types import AnyArray, IntArray, Padding
from varlen.data._pad_kernel import (
    DEFAULT_TUNING,
    NUMERIC,
    PadTuning,
    Parts,
    from_flat,
    is_positive_zero,
    native,
    nonempty_parts,
    pad_arrays,
    part_lengths,
    repeat,
    shape_mismatch,
    value_changed,
)

__all__ = ["pad_sequences"]

_KERAS = "pad_sequences"  # the name its warnings start with


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
    return _pad_sequences(
        sequences,
        maxlen=maxlen,
        dtype=dtype,
        padding=padding,
        truncating=truncating,
        value=value,
        tuning=DEFAULT_TUNING,
    )


def _pad_sequences(
    sequences: Collection[Any],
    *,
    maxlen: int | None,
    dtype: DTypeLike | None,
    padding: Padding,
    truncating: Padding,
    value: Any,
    tuning: PadTuning,
) -> AnyArray:
    """:func:`pad_sequences` with the given tuning (every tuning gives the same result)."""
    with error_context(_KERAS):
        check_side(_KERAS, "padding", padding)
        check_side(_KERAS, "truncating", truncating)
        T_arg = check_maxlen(_KERAS, maxlen)
        _check_keras_dtype(dtype, value)
        seqs = _as_list(sequences)
        out = _pad_native(seqs, T_arg, dtype, value, padding=padding, truncating=truncating,
                          tuning=tuning)  # fmt: skip
        if out is not None:
            _warn_if_value_changed(value, out.dtype)
            return out
        return _pad_numpy(seqs, T_arg, dtype, value, padding=padding, truncating=truncating,
                          tuning=tuning)  # fmt: skip


def _pad_numpy(
    seqs: list[Any],
    T_arg: int | None,
    dtype: DTypeLike | None,
    value: Any,
    *,
    padding: Padding,
    truncating: Padding,
    tuning: PadTuning,
) -> AnyArray:
    """Pad as Keras does with NumPy alone, warning about every value that changes."""
    lengths = _lengths(seqs)
    T = int(lengths.max(initial=0)) if T_arg is None else T_arg
    block = _fill_block((T, *_sample_shape(seqs, lengths)), value, dtype)  # one padded row
    _warn_if_value_changed(value, block.dtype)
    parts = nonempty_parts(seqs, lengths, T, truncating=truncating)
    if parts is None or block.size == 0:
        return repeat(block, len(seqs))
    kept = np.minimum(lengths, T)
    zero = block.dtype.kind in NUMERIC and is_positive_zero(value)
    out = _keras_from_arrays(parts, kept, block, padding=padding, zero=zero, tuning=tuning)
    if out is None:
        values = _keras_values(
            parts, block.shape[1:], dtype=dtype, out_dtype=block.dtype, tuning=tuning
        )
        values = _as_output_dtype(values, block.dtype, parts)
        _warn_if_strings_cut(values, value, block.dtype)
        out = from_flat(values, kept, block, padding=padding, zero=zero, tuning=tuning)
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
    tuning: PadTuning,
) -> AnyArray | None:
    """Pad with the compiled kernel, or return ``None`` where it declines or is not built.

    The kernel declines (without side effects) every input it cannot pad exactly as Keras
    does with no warning; the pad value is checked here the same way: a ``value`` that does
    not convert exactly (e.g. NaN into an integer dtype) is left to the NumPy path, which warns.
    """
    kernel = native(tuning)
    if kernel is None or np.ndim(value) != 0:
        return None
    try:
        with np.errstate(all="raise"):
            fill = np.full((), value, dtype=dtype)
    except (TypeError, ValueError, OverflowError, FloatingPointError):
        return None
    maxlen = -1 if T is None else T
    try:
        return kernel(seqs, maxlen, fill, padding == "pre", truncating == "pre")
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
            raise unplaced(TypeError(f"dtype must be a NumPy dtype, got {dtype!r}.")) from error
    if isinstance(value, str) and (dtype is None or resolved.kind not in "OUS"):
        raise unplaced(
            ValueError(
                "dtype must be object or a string dtype when value is a string, "
                f"got dtype {dtype!r} with value {value!r}. "
                "Pass dtype=object for variable-length strings."
            )
        )


def _as_list(sequences: Any) -> list[Any]:
    """Return ``sequences`` as a list (no copy for a list), requiring ``len()`` as Keras does."""
    if not hasattr(sequences, "__len__"):
        raise unplaced(
            ValueError(
                "sequences must be a collection with len(), "
                f"got {type(sequences).__name__}. Pass list(sequences)."
            )
        )
    return sequences if isinstance(sequences, list) else list(sequences)


def _lengths(seqs: list[Any]) -> IntArray:
    """Return the ``(B,)`` int64 ``len()`` of every sequence, naming one that has none."""
    try:
        return np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    except TypeError:
        pass
    for i, s in enumerate(seqs):
        try:
            len(s)
        except TypeError as error:
            raise unplaced(
                ValueError(
                    f"sequences[{i}] must be a sequence with len(), got {type(s).__name__} {s!r}."
                )
            ) from error
    return part_lengths(seqs)


def _sample_shape(seqs: list[Any], lengths: IntArray) -> tuple[int, ...]:
    """Return ``*F`` as Keras does: the trailing shape of the first non-empty sequence."""
    nonempty = np.flatnonzero(lengths)
    if nonempty.size == 0:
        return ()
    first = int(nonempty[0])
    try:
        return tuple(np.shape(seqs[first])[1:])
    except ValueError as error:
        raise unplaced(
            ValueError(f"sequences[{first}] must convert to an array of shape (T_i, *F): {error}")
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
        raise unplaced(
            type(error)(f"value must be storable in dtype {resolved}, got {value!r} ({error}).")
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
    return unplaced(
        MemoryError(
            f"the padded output, rows of shape {shape}, is too large to allocate "
            f"({error}). Pass a smaller maxlen."
        )
    )


def _keras_from_arrays(
    parts: Parts,
    kept: IntArray,
    block: AnyArray,
    *,
    padding: Padding,
    zero: bool,
    tuning: PadTuning,
) -> AnyArray | None:
    """Pad NumPy arrays that cast within their kind into a numeric output, else ``None``.

    ``None`` sends float data bound for an integer dtype (and every other input) to the
    conversion path, which casts with a loss check.
    """
    if block.dtype.kind not in NUMERIC or set(map(type, parts.items)) != {np.ndarray}:
        return None
    try:
        with np.errstate(over="ignore"):  # a finite value overflowing: warned about after
            return pad_arrays(parts, kept, block, padding=padding, zero=zero, tuning=tuning)
    except TypeError:  # not a same-kind cast, e.g. float data into the default int32
        return None


def _keras_values(
    parts: Parts,
    trailing: tuple[int, ...],
    *,
    dtype: DTypeLike | None,
    out_dtype: np.dtype[Any],
    tuning: PadTuning,
) -> AnyArray:
    """Convert the kept steps into one ``(N, *F)`` array, as Keras would.

    Fast paths for the common inputs, each falling back to the exact per-sequence conversion
    (which raises Keras's exception, with the sequence index) when its input is unusual.
    """
    kinds = set(map(type, parts.items))
    numeric = out_dtype.kind in NUMERIC
    values = None
    if numeric and kinds == {np.ndarray}:
        values = _concat_keras(parts, trailing, tuning)
    elif numeric and dtype is not None and trailing == () and kinds <= {list, tuple}:
        values = _flatten_scalar_lists(parts, out_dtype)
    if values is None:
        values = _convert_each(parts, trailing, dtype=dtype, out_dtype=out_dtype)
    return values


def _concat_keras(parts: Parts, trailing: tuple[int, ...], tuning: PadTuning) -> AnyArray | None:
    """Concatenate arrays in their common dtype, to be cast with a loss check by the caller.

    Returns ``None`` when the arrays have no common numeric dtype, for the exact path.
    """
    if len({item.dtype.kind for item in parts.items}) > 1:
        return None  # e.g. int and float arrays: their common float64 would round the ints
    try:
        values = parts.concat(trailing, None, slice_cost=tuning.slice_cost)
    except TypeError:  # no common dtype, e.g. str and int arrays
        return None
    return values if values.dtype.kind in NUMERIC else None


def _flatten_scalar_lists(parts: Parts, out_dtype: np.dtype[Any]) -> AnyArray | None:
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
    items, total = parts.truncated(), int(parts.kept.sum())
    try:
        with np.errstate(invalid="ignore", over="ignore"):
            return np.fromiter(chain.from_iterable(items), dtype=out_dtype, count=total)
    except (TypeError, ValueError, OverflowError):
        return None


def _int64_from_lists(parts: Parts) -> IntArray | None:
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


def _convert_each(
    parts: Parts, trailing: tuple[int, ...], *, dtype: DTypeLike | None, out_dtype: np.dtype[Any]
) -> AnyArray:
    """Convert each part with ``np.asarray(part, dtype)`` as Keras does, then concatenate.

    The exact path: one NumPy conversion per sequence (the copy into the output stays one
    vectorized scatter). Errors name the sequence; float data cast into an integer or bool
    dtype is compared with its natural conversion and warned about.
    """
    converted = []
    items = parts.truncated()
    for j, part in enumerate(items):
        i = int(parts.rows[j])
        try:
            with np.errstate(invalid="ignore", over="ignore"):  # warned about below
                item = np.asarray(part, dtype=dtype)
        except (TypeError, ValueError, OverflowError) as error:
            raise unplaced(
                type(error)(f"sequences[{i}] must convert to dtype {out_dtype}: {error}")
            ) from error
        if item.ndim == 0:
            raise unplaced(
                TypeError(
                    f"sequences[{i}] must be a sequence of steps, got {type(part).__name__} "
                    f"{part!r}, which converts to a scalar. Wrap it in a list."
                )
            )
        if item.shape[1:] != trailing:
            raise shape_mismatch(i, item.shape, trailing=trailing)
        converted.append(item)
    if out_dtype.kind not in NUMERIC:
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


def _as_output_dtype(values: AnyArray, out_dtype: np.dtype[Any], parts: Parts) -> AnyArray:
    """Cast float or complex ``values`` to an integer or bool output dtype, warning on loss."""
    if values.dtype.kind not in "fc" or out_dtype.kind not in "iub":
        return values
    with np.errstate(invalid="ignore", over="ignore"):  # NaN, inf, too large: warned about
        cast = values.astype(out_dtype)
    _warn_if_lossy(values, cast, parts)
    return cast


def _warn_if_lossy(natural: AnyArray | None, converted: AnyArray, parts: Parts) -> None:
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
        stacklevel=4,
    )


def _overflow_in(parts: Parts, out: AnyArray) -> tuple[Changed, int] | None:
    """The first kept step (and its row) that the cast into ``out``'s dtype changed, if any."""
    numeric = out.dtype.kind in "iufc"
    if not numeric or (out.dtype.kind in "fc" and not np.isinf(out).any()):
        return None  # an overflow into a float dtype leaves an infinity in the output
    for j, part in enumerate(parts.truncated()):
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


def _warn_if_overflowed(parts: Parts | None, out: AnyArray) -> None:
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
        stacklevel=4,
    )


def _warn_if_value_changed(value: Any, out_dtype: np.dtype[Any]) -> None:
    """Warn if a numeric ``value`` changed (beyond rounding) when stored in the output dtype."""
    if out_dtype.kind not in NUMERIC or isinstance(value, str) or is_positive_zero(value):
        return
    natural = np.asarray(value)
    if natural.dtype.kind not in NUMERIC:
        return
    changed, stored = value_changed(natural, out_dtype)
    if changed:
        warnings.warn(
            f"{_KERAS}: dtype {out_dtype} cannot hold value {value!r}, which was stored as "
            f"{stored.reshape(-1)[0].item()!r} as in Keras. Pass dtype='float32' "
            "(or a value that the dtype can hold).",
            UserWarning,
            stacklevel=4,
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
            stacklevel=4,
        )
