"""Pad variable-length sequences into one dense array, and take them out again: ``pad``/``unpad``.

The native pair: ``"post"`` by default (ready for packing), the common dtype of the inputs,
strict validation, and the kept lengths returned. The Keras drop-in
:func:`varlen.data.pad_sequences` is in :mod:`varlen.data.keras_padding`; both share the
vectorized kernel of :mod:`varlen.data._pad_kernel` (how it is fast is told there).

Lossy casts follow one rule (:mod:`varlen._casts`): into a floating dtype a value may round
but a finite one must stay finite; into an integer dtype every value must fit (no
wrap-around); float into integer is refused. :func:`pad` (and
:meth:`varlen.Ragged.to_padded`, and the torch twin :func:`varlen.nn.functional.pad`) is
strict and raises where a value would change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from varlen._casts import check_same_kind, check_values
from varlen._checks import check_lengths_array, check_maxlen, check_side, error_context, unplaced
from varlen._types import AnyArray, IntArray, Padding
from varlen.data._pad_kernel import (
    DEFAULT_TUNING,
    NATIVE,
    NUMERIC,
    PadTuning,
    is_positive_zero,
    native,
    nonempty_parts,
    pad_arrays,
    part_lengths,
    repeat,
    selector,
    shape_mismatch,
    value_changed,
)

__all__ = ["NATIVE", "pad", "unpad"]


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
    return _pad(
        sequences,
        maxlen=maxlen,
        value=value,
        padding=padding,
        truncating=truncating,
        dtype=dtype,
        tuning=DEFAULT_TUNING,
    )


def _pad(
    sequences: Iterable[ArrayLike],
    *,
    maxlen: int | None,
    value: Any,
    padding: Padding,
    truncating: Padding,
    dtype: DTypeLike | None,
    tuning: PadTuning,
) -> tuple[AnyArray, IntArray]:
    """:func:`pad` with the given tuning (every tuning gives the same result)."""
    with error_context("pad"):
        check_side("pad", "padding", padding)
        check_side("pad", "truncating", truncating)
        T_arg = check_maxlen("pad", maxlen)
        arrays = _as_arrays(sequences)
        lengths = part_lengths(arrays)
        trailing = _common_trailing(arrays)
        out_dtype = _common_dtype(arrays, lengths, dtype)
        fill = _exact_value(value, out_dtype)
        T = int(lengths.max()) if T_arg is None else T_arg
        kept = np.minimum(lengths, T)
        block = np.full((T, *trailing), fill, dtype=out_dtype)  # one padded row
        parts = nonempty_parts(arrays, lengths, T, truncating=truncating)
        if parts is None or block.size == 0:
            return repeat(block, len(arrays)), kept
        kernel = native(tuning)
        if kernel is not None:  # kinds were checked above; the kernel declines a changed value
            fill_0d = block.reshape(-1)[:1].reshape(())
            out = kernel(arrays, T, fill_0d, padding == "pre", truncating == "pre")
            if out is not None:
                return out, kept
        # The kernel declined (or is not built): the strict value rule is checked here, before
        # the NumPy path casts (it would wrap integers and overflow floats silently).
        _check_kept_values(arrays, lengths, T, out_dtype, truncating=truncating)
        zero = out_dtype.kind in NUMERIC and is_positive_zero(fill)
        return pad_arrays(parts, kept, block, padding=padding, zero=zero, tuning=tuning), kept


def _refuse_torch(op: str, name: str, value: object) -> None:
    """Raise if ``value`` is a torch tensor: this layer is NumPy only (no silent host copy)."""
    if type(value).__module__.split(".")[0] == "torch":
        raise TypeError(
            f"varlen.data.{op}: {name} must be a NumPy array or list (this layer is NumPy "
            f"only), got a {type(value).__name__}. For tensors use varlen.{op} (it returns "
            f"tensors on their device and dtype) or varlen.nn.functional.{op}."
        )


def _as_arrays(sequences: Iterable[ArrayLike]) -> list[AnyArray]:
    """Return the sequences as a non-empty list of arrays with at least one dimension."""
    given = list(sequences)
    for i, s in enumerate(given):
        _refuse_torch("pad", f"sequences[{i}]", s)
    arrays = [s if type(s) is np.ndarray else np.asarray(s) for s in given]
    if not arrays:
        raise unplaced(
            ValueError(
                "sequences must hold at least one sequence, got none. "
                "The output's dtype and trailing shape come from the sequences."
            )
        )
    for i, a in enumerate(arrays):
        if a.ndim == 0:
            raise shape_mismatch(i, a.shape)
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
            raise unplaced(
                ValueError(
                    f"sequences[{i}] has trailing shape {a.shape[1:]}, "
                    f"expected {trailing} like sequences[{first}]."
                )
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
            raise unplaced(
                TypeError(
                    f"sequences must share a common dtype, got {sorted(map(str, dtypes))}. "
                    "Pass dtype, or convert the sequences first."
                )
            ) from error
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise unplaced(TypeError(f"dtype must be a NumPy dtype or None, got {dtype!r}.")) from error
    dtypes = {arrays[i].dtype for i in voters}  # empty sequences hold nothing to cast
    bad = {d for d in dtypes if not np.can_cast(d, resolved, casting="same_kind")}
    if bad:
        i = next(i for i in voters if arrays[i].dtype in bad)
        check_same_kind(i, arrays[i].dtype, resolved)
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
        check_values(i, part, dtype, first_step=n - T if truncating == "pre" and n > T else 0)


def _check_one_family(arrays: list[AnyArray], voters: list[int]) -> None:
    """Raise ``TypeError`` if numeric and text sequences are mixed (NumPy would make text)."""
    numeric = [i for i in voters if arrays[i].dtype.kind in NUMERIC]
    other = [i for i in voters if arrays[i].dtype.kind in "US"]
    if numeric and other:
        i, j = numeric[0], other[0]
        raise unplaced(
            TypeError(
                f"sequences must all be numeric or all be text, got sequences[{i}] of dtype "
                f"{arrays[i].dtype} and sequences[{j}] of dtype {arrays[j].dtype}. "
                "Convert them to one dtype first."
            )
        )


def _exact_value(value: Any, dtype: np.dtype[Any]) -> Any:
    """Return ``value`` if it is a scalar that ``dtype`` holds exactly, else raise."""
    if np.ndim(value) != 0:
        raise unplaced(ValueError(f"value must be a scalar, got shape {np.shape(value)}."))
    try:
        with np.errstate(all="ignore"):  # an overflow is judged below
            np.asarray(value, dtype=dtype)  # raises for what dtype cannot take at all
        natural = np.asarray(value)
        if dtype.kind == "O":
            same = True
        elif natural.dtype.kind in NUMERIC and dtype.kind in NUMERIC:
            same = not value_changed(natural, dtype)[0]
        else:
            same = natural.dtype.kind not in NUMERIC and dtype.kind not in NUMERIC
            same = same and bool(np.asarray(value, dtype=dtype) == value)
    except (TypeError, ValueError, OverflowError):
        same = False
    if not same:
        raise unplaced(
            ValueError(
                f"value must be representable in dtype {dtype}, got {value!r}. "
                "Pass a dtype that holds it, or another value."
            )
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
    return _unpad(padded, lengths, padding=padding, tuning=DEFAULT_TUNING)


def _unpad(
    padded: ArrayLike, lengths: ArrayLike, *, padding: Padding, tuning: PadTuning
) -> list[AnyArray]:
    """:func:`unpad` with the given tuning (every tuning gives the same result)."""
    check_side("unpad", "padding", padding)
    _refuse_torch("unpad", "padded", padded)
    dense = np.asarray(padded)
    if dense.ndim < 2:
        raise ValueError(f"unpad: padded must have shape (B, T, *F), got {dense.shape}.")
    B, T = dense.shape[:2]
    kept = check_lengths_array("unpad", lengths, maxlen=T)
    if kept.shape != (B,):
        raise ValueError(f"unpad: lengths must have shape (B,) = ({B},), got {kept.shape}.")
    rows = selector(kept, T, padding, dense_ratio=tuning.dense_ratio)
    values = dense.reshape(B * T, *dense.shape[2:])[rows]  # (N, *F) copy
    ends = np.cumsum(kept).tolist()
    return [values[end - n : end] for end, n in zip(ends, kept.tolist(), strict=True)]
