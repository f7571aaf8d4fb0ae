"""Boolean step masks for padded batches, and conversions to and from lengths.

A mask is a bool array of shape ``(B, T)`` with **True = real (valid) step**, Keras's
polarity. With ``padding="post"`` the real steps of row ``i`` are ``[0, T_i)``; with
``padding="pre"`` they are ``[T - T_i, T)``. For torch attention, convert at the call
site: ``key_padding_mask = ~mask``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from varlen._checks import (
    check_lengths_array,
    check_maxlen,
    check_side,
    error_context,
    unplaced,
)
from varlen._types import Padding

__all__ = [
    "is_contiguous",
    "lengths_to_mask",
    "mask_from_ids",
    "mask_from_predicate",
    "mask_from_value",
    "mask_to_lengths",
]


def lengths_to_mask(
    lengths: Any, maxlen: int | None = None, *, padding: Padding = "post"
) -> NDArray[np.bool_]:
    """Build the ``(B, T)`` step mask of a padded batch from its lengths.

    Args:
        lengths: ``(B,)`` integer lengths, ``0 <= T_i <= T``. ``B = 0`` is allowed.
        maxlen: ``T``; defaults to ``max(T_i)`` (0 when ``B == 0``). May be 0.
        padding: Side that holds the padding: ``"post"`` (real steps first) or ``"pre"``.

    Returns:
        ``(B, T)`` bool mask, True at the ``T_i`` real steps of row ``i``.

    Raises:
        TypeError: If ``lengths`` is not integer or ``maxlen`` not an int.
        ValueError: If ``lengths`` is not 1-D, negative or above ``maxlen``, or ``padding``
            is not ``"pre"``/``"post"``.

    Example:
        >>> lengths_to_mask(np.array([2, 0, 3]), padding="pre")  # (B, T) = (3, 3)
        array([[False,  True,  True],
               [False, False, False],
               [ True,  True,  True]])
    """
    where = "lengths_to_mask"
    side = check_side(where, "padding", padding)
    T = check_maxlen(where, maxlen)
    kept = check_lengths_array(where, lengths, maxlen=T)
    return _lengths_to_mask(kept, int(kept.max(initial=0)) if T is None else T, side)


def _lengths_to_mask(lengths: NDArray[np.int64], T: int, padding: Padding) -> NDArray[np.bool_]:
    """Unchecked :func:`lengths_to_mask` with an explicit ``T``."""
    steps = np.arange(T, dtype=np.int64)  # (T,)
    if padding == "post":
        return steps < lengths[:, None]
    return steps >= (T - lengths)[:, None]


def mask_to_lengths(mask: Any, *, padding: Padding = "post") -> NDArray[np.int64]:
    """Return the lengths of a mask whose rows are one run of True at the unpadded side.

    Args:
        mask: ``(B, T)`` bool, True = real step. Each row must be ``T_i`` True then
            False (``padding="post"``) or False then ``T_i`` True (``"pre"``). A row of
            all False (``T_i = 0``), ``B = 0`` and ``T = 0`` are allowed.
        padding: Side that holds the padding.

    Returns:
        ``(B,)`` int64 lengths ``mask.sum(1)``.

    Raises:
        TypeError: If ``mask`` is not bool.
        ValueError: If ``mask`` is not 2-D, a row has a gap or True on the padded side
            (the message names the row), or ``padding`` is not ``"pre"``/``"post"``.

    Example:
        >>> mask_to_lengths(np.array([[True, True, False], [False, False, False]]))
        array([2, 0])
    """
    where = "mask_to_lengths"
    with error_context(where):
        side = check_side(where, "padding", padding)
        return _mask_to_lengths(_check_mask(mask), side)


def _mask_to_lengths(mask: NDArray[np.bool_], padding: Padding) -> NDArray[np.int64]:
    """:func:`mask_to_lengths` for a checked mask (its error names no caller: see _checks)."""
    lengths: NDArray[np.int64] = mask.sum(axis=1, dtype=np.int64)
    bad = np.flatnonzero((mask != _lengths_to_mask(lengths, mask.shape[1], padding)).any(axis=1))
    if bad.size:
        raise unplaced(ValueError(_contiguity_message(mask, int(bad[0]), padding)))
    return lengths


def is_contiguous(mask: Any, *, padding: Padding = "post") -> bool:
    """Return True if every row of ``mask`` is one run of True at the unpadded side.

    Such a mask is exactly ``lengths_to_mask(mask_to_lengths(mask), T, padding=padding)``;
    all-False rows, ``B = 0`` and ``T = 0`` count as contiguous.

    Args:
        mask: ``(B, T)`` bool, True = real step.
        padding: Side that holds the padding.

    Returns:
        Whether :func:`mask_to_lengths` would accept ``mask``.

    Raises:
        TypeError: If ``mask`` is not bool.
        ValueError: If ``mask`` is not 2-D or ``padding`` is not ``"pre"``/``"post"``.

    Example:
        >>> mask = np.array([[False, True, True]])
        >>> is_contiguous(mask), is_contiguous(mask, padding="pre")
        (False, True)
    """
    where = "is_contiguous"
    with error_context(where):
        side = check_side(where, "padding", padding)
        array = _check_mask(mask)
        lengths = array.sum(axis=1, dtype=np.int64)
        return bool(np.array_equal(array, _lengths_to_mask(lengths, array.shape[1], side)))


def mask_from_value(x: Any, *, value: Any = 0.0) -> NDArray[np.bool_]:
    """Mask the steps of a padded batch whose features all equal ``value`` (Keras ``Masking``).

    A step is padding iff **all** its features equal ``value``; one differing feature
    makes it real. ``value=np.nan`` matches NaN. The resulting mask need not be
    contiguous: a real all-``value`` step inside a sequence is masked too (check with
    :func:`is_contiguous`). Steps with zero features (``prod(*F) == 0``) are padding.

    Args:
        x: ``(B, T, *F)`` padded batch; for ``(B, T)`` each element is one step.
        value: Scalar that marks padding.

    Returns:
        ``(B, T)`` bool mask, True = real step.

    Raises:
        TypeError: If ``x`` is not numeric or bool.
        ValueError: If ``x`` has fewer than 2 dimensions or ``value`` is not a scalar.

    Example:
        >>> x = np.array([[[1.0, 0.0], [0.0, 0.0]], [[np.nan, np.nan], [2.0, np.nan]]])
        >>> mask_from_value(x)  # (B, T, F) = (2, 2, 2)
        array([[ True, False],
               [ True,  True]])
        >>> mask_from_value(x, value=np.nan)
        array([[ True,  True],
               [False,  True]])
    """
    where = "mask_from_value"
    with error_context(where):
        array = _check_batch(x)
        fill = np.asarray(value)
        if fill.ndim != 0 or fill.dtype == np.object_:
            raise ValueError(f"{where}: value must be a scalar, got {value!r}.")
        if fill.dtype.kind in "fc" and np.isnan(fill):
            matches = np.isnan(array) if array.dtype.kind in "fc" else np.zeros(array.shape, bool)
        else:
            matches = array == fill
        real: NDArray[np.bool_] = ~np.all(matches, axis=tuple(range(2, array.ndim)))  # (B, T)
        return real


def mask_from_ids(ids: Any, *, pad_id: int = 0) -> NDArray[np.bool_]:
    """Mask the padding tokens of a batch of token ids (Keras ``Embedding(mask_zero=True)``).

    Args:
        ids: ``(B, T)`` integer token ids.
        pad_id: The id that marks padding.

    Returns:
        ``(B, T)`` bool mask, True where ``ids != pad_id``.

    Raises:
        TypeError: If ``ids`` is not an integer array or ``pad_id`` not an int.
        ValueError: If ``ids`` is not 2-D.

    Example:
        >>> mask_from_ids(np.array([[5, 3, 0], [7, 0, 0]]))
        array([[ True,  True, False],
               [ True, False, False]])
    """
    where = "mask_from_ids"
    array = np.asarray(ids)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"{where}: ids must be integers, got dtype {array.dtype}. "
            "Use mask_from_value for float features."
        )
    if array.ndim != 2:
        raise ValueError(f"{where}: ids must have shape (B, T), got {array.shape}.")
    if isinstance(pad_id, bool) or not isinstance(pad_id, int | np.integer):
        raise TypeError(f"{where}: pad_id must be an int, got {pad_id!r}.")
    return np.asarray(array != pad_id)


def mask_from_predicate(x: Any, predicate: Callable[[NDArray[Any]], Any]) -> NDArray[np.bool_]:
    """Mask the steps of a padded batch with a user function that marks real steps.

    ``predicate`` is called once with the whole batch, as a read-only array, and must
    return a bool array of shape ``(B, T)``: True for real steps. Reduce over the
    feature axes yourself, e.g. ``lambda x: ~np.isnan(x).all(axis=-1)``.

    Args:
        x: ``(B, T, *F)`` padded batch.
        predicate: Function of the ``(B, T, *F)`` batch returning ``(B, T)`` bool.

    Returns:
        ``(B, T)`` bool mask, True = real step (a new array).

    Raises:
        TypeError: If ``x`` is not numeric or bool, or ``predicate`` does not return bool.
        ValueError: If ``x`` has fewer than 2 dimensions or the result's shape is not
            ``(B, T)``.

    Example:
        >>> x = np.array([[[1.0, -1.0], [-1.0, -1.0]]])  # (B, T, F) = (1, 2, 2)
        >>> mask_from_predicate(x, lambda x: x[..., 0] != -1)
        array([[ True, False]])
    """
    where = "mask_from_predicate"
    with error_context(where):
        array = _check_batch(x)
        view = array.view()
        view.flags.writeable = False
        result = np.asarray(predicate(view))
        B, T = array.shape[:2]
        if result.dtype != np.bool_:
            raise TypeError(
                f"{where}: predicate must return a bool array of shape (B, T) = {(B, T)}, "
                f"got dtype {result.dtype}. Return a comparison, e.g. x[..., 0] != 0."
            )
        if result.shape != (B, T):
            raise ValueError(
                f"{where}: predicate must return a bool array of shape (B, T) = {(B, T)}, "
                f"got shape {result.shape}. Reduce over the feature axes, e.g. .any(axis=-1)."
            )
        return np.array(result, copy=True)


def _check_mask(mask: Any) -> NDArray[np.bool_]:
    """Return ``mask`` as a bool ``(B, T)`` array, else raise."""
    array = np.asarray(mask)
    if array.dtype != np.bool_:
        raise unplaced(
            TypeError(
                f"mask must be bool (True = real step), got dtype {array.dtype}. "
                "Convert with mask != 0 if 1 marks real steps."
            )
        )
    if array.ndim != 2:
        raise unplaced(ValueError(f"mask must have shape (B, T), got {array.shape}."))
    return array


def _check_batch(x: Any) -> NDArray[Any]:
    """Return ``x`` as a non-object array of shape ``(B, T, *F)``, else raise."""
    array = np.asarray(x)
    if array.dtype.kind not in "biufc":
        raise unplaced(TypeError(f"x must have a numeric or bool dtype, got dtype {array.dtype}."))
    if array.ndim < 2:
        raise unplaced(ValueError(f"x must have shape (B, T, *F), got {array.shape}."))
    return array


def _contiguity_message(mask: NDArray[np.bool_], row: int, padding: Padding) -> str:
    """Describe why row ``row`` of ``mask`` is not one run at the unpadded side."""
    values = mask[row]
    if padding == "post":
        gap = int(np.argmin(values))  # first padded step
        stray = gap + int(np.argmax(values[gap:]))  # first real step after it
        found = f"False at step {gap} then True at step {stray}"
        expected = "one run of True followed only by False"
    else:
        gap = int(np.argmax(values))  # first real step
        stray = gap + int(np.argmin(values[gap:]))  # first padded step after it
        found = f"True at step {gap} then False at step {stray}"
        expected = "only False followed by one run of True"
    other = "pre" if padding == "post" else "post"
    return (
        f"mask[{row}] must be {expected} (padding={padding!r}), got {found}. "
        f"If the padding is at the other end, pass padding={other!r}."
    )
