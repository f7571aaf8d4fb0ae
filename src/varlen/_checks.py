"""Shared validators that raise varlen's standard messages, and the error context.

Every message has the shape ``"<where>: <name> must <expectation>, got <actual>.[ <fix>]"``.
Private helpers trust their inputs; public functions call these first, before any work.

The ``<where>`` (the public operation's name) is attached once, at the public boundary: a
private helper raises its error without it, marked by :func:`unplaced`, and the public
function runs its body inside :class:`error_context`, which prefixes its name to the marked
errors that leave it (einops names the operation once, where it parses). No ``where``
argument is threaded through private helpers.
"""

from __future__ import annotations

from collections.abc import Collection
from types import TracebackType
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from varlen._types import SIDES, Padding

_T = TypeVar("_T")
_E = TypeVar("_E", bound=BaseException)

_UNPLACED = "_varlen_unplaced"


def unplaced(error: _E) -> _E:
    """Mark ``error`` (raised by a private helper) for its public boundary to name.

    Args:
        error: An exception whose message is ``"<name> must ..., got ..."``, without ``where``.

    Returns:
        ``error``, marked: the innermost :class:`error_context` it leaves prefixes its name.
    """
    setattr(error, _UNPLACED, True)
    return error


def placed(where: str | None, error: _E) -> _E:
    """Prefix ``"<where>: "`` to ``error``'s message, or mark it :func:`unplaced` (``None``).

    For shared validators that public functions call with their name and private helpers
    call with ``None`` (inside the public function's :class:`error_context`).

    Args:
        where: Name of the public function or class, or ``None``.
        error: An exception whose message is ``"<name> must ..., got ..."``.

    Returns:
        ``error``, named or marked.
    """
    if where is None:
        return unplaced(error)
    _prefix(error, where)
    return error


def _prefix(error: BaseException, where: str) -> None:
    """Put ``"<where>: "`` before ``error``'s message (``ImportError`` keeps it in ``msg`` too)."""
    first = error.args[0] if error.args else ""
    error.args = (f"{where}: {first}", *error.args[1:])
    if isinstance(error, ImportError) and error.msg is not None:
        error.msg = f"{where}: {error.msg}"


class error_context:
    """Prefix ``"<where>: "`` to the :func:`unplaced` errors leaving the ``with`` block.

    Errors that already name their operation (unmarked) pass unchanged, so an inner public
    function's name is kept when one public function calls another.

    Args:
        where: Name of the public function or class, first in the message.
    """

    __slots__ = ("where",)

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is not None and getattr(error, _UNPLACED, False):
            setattr(error, _UNPLACED, False)
            _prefix(error, self.where)


def check_choice(where: str | None, name: str, value: _T, choices: Collection[_T]) -> _T:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError``.

    Args:
        where: Name of the public function or class, first in the message; ``None`` leaves
            the error :func:`unplaced`, for the enclosing :class:`error_context` to name.
        name: Name of the argument.
        value: The value received.
        choices: The allowed values.

    Returns:
        ``value`` unchanged.

    Raises:
        ValueError: If ``value`` is not in ``choices``.
    """
    if value not in choices:
        allowed = " or ".join(repr(choice) for choice in choices)
        raise placed(where, ValueError(f"{name} must be {allowed}, got {value!r}."))
    return value


def check_side(where: str | None, name: str, value: object) -> Padding:
    """Return ``value`` as a :data:`~varlen._types.Padding` side, else raise ``ValueError``.

    Args:
        where: Name of the public function or class (``None``: see :func:`check_choice`).
        name: Name of the argument (``padding`` or ``truncating``).
        value: The value received.

    Returns:
        ``"pre"`` or ``"post"``.

    Raises:
        ValueError: If ``value`` is not ``"pre"`` or ``"post"``.
    """
    if not isinstance(value, str) or value not in SIDES:
        raise placed(where, ValueError(f"{name} must be 'pre' or 'post', got {value!r}."))
    return value


def check_maxlen(where: str | None, maxlen: object) -> int | None:
    """Return ``maxlen`` as an ``int >= 0`` or ``None``, else raise.

    Args:
        where: Name of the public function or class (``None``: see :func:`check_choice`).
        maxlen: The value received.

    Returns:
        ``maxlen`` as a Python ``int``, or ``None``.

    Raises:
        TypeError: If ``maxlen`` is not an integer or ``None``.
        ValueError: If ``maxlen < 0``.
    """
    if maxlen is None:
        return None
    if isinstance(maxlen, bool) or not isinstance(maxlen, int | np.integer):
        raise placed(where, TypeError(f"maxlen must be an int or None, got {maxlen!r}."))
    if maxlen < 0:
        raise placed(where, ValueError(f"maxlen must be >= 0, got {maxlen!r}."))
    return int(maxlen)


_INT64_MAX = int(np.iinfo(np.int64).max)


def check_lengths_array(
    where: str | None, lengths: Any, *, maxlen: int | None = None
) -> NDArray[np.int64]:
    """Return ``lengths`` as an int64 ``(B,)`` array with ``0 <= lengths[i] (<= maxlen)``.

    Args:
        where: Name of the public function or class (``None``: see :func:`check_choice`).
        lengths: Array-like of shape ``(B,)`` with integer values.
        maxlen: If given, the largest length allowed (the padded time length ``T``).

    Returns:
        An int64 array of shape ``(B,)``; a new array, never a view of the input.

    Raises:
        TypeError: If ``lengths`` is not of an integer dtype.
        ValueError: If ``lengths`` is not 1-D, has a negative entry, or one above ``maxlen``.
    """
    array = np.asarray(lengths)
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        raise placed(
            where,
            TypeError(
                f"lengths must be integers, got dtype {array.dtype}. Cast with .astype(np.int64)."
            ),
        )
    if array.ndim != 1:
        raise placed(where, ValueError(f"lengths must have shape (B,), got {array.shape}."))
    if array.size:  # checked before the int64 cast, which would wrap a huge uint64 to -1
        if int(array.min()) < 0:
            index = int(np.argmin(array))
            raise placed(
                where,
                ValueError(f"lengths must be >= 0, got lengths[{index}] == {int(array[index])}."),
            )
        limit = _INT64_MAX if maxlen is None else maxlen
        if int(array.max()) > limit:
            index = int(np.argmax(array))
            bound = f"T = {maxlen}" if maxlen is not None else f"{_INT64_MAX} (int64)"
            raise placed(
                where,
                ValueError(
                    f"lengths must be <= {bound}, got lengths[{index}] == {int(array[index])}."
                ),
            )
    return array.astype(np.int64, copy=True)
