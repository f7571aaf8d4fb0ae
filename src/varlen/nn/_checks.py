"""Validators shared by the torch layer; messages follow varlen's standard shape."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from varlen._checks import placed
from varlen._types import Padding

_FEW = 256  # lengths up to this many are read as Python ints (cheaper than two reductions)


def check_lengths(
    where: str | None,
    lengths: Any,
    *,
    B: int | None = None,
    T: int | None = None,
    device: torch.device | None = None,
    values: bool = True,
) -> Tensor:
    """Return ``lengths`` as int64 ``(B,)`` (on ``device``) with ``0 <= lengths (<= T)``.

    The same checks and errors as :func:`read_lengths`, which also gives the values read.
    """
    checked, _ = read_lengths(where, lengths, B=B, T=T, device=device, values=values)
    return checked


def read_lengths(
    where: str | None,
    lengths: Any,
    *,
    B: int | None = None,
    T: int | None = None,
    device: torch.device | None = None,
    values: bool = True,
) -> tuple[Tensor, list[int] | None]:
    """Check ``lengths`` as :func:`check_lengths` does; also return them as Python ints if read.

    Args:
        where: The public function or class, first in the message (``None``: named by the
            enclosing :class:`~varlen._checks.error_context`).
        lengths: Integer lengths, a tensor or anything ``torch.as_tensor`` takes.
        B: The batch size ``lengths`` must match, if known.
        T: The largest length allowed, if known.
        device: Where the result should live; the input's device if ``None``.
        values: Whether to check the values too. That reads them on the host (one sync on an
            accelerator), so it is skipped while a graph is captured (compile, trace, export),
            where no value may decide anything on the host.

    Returns:
        ``(lengths, read)``: int64 lengths, and their values as Python ints when the check
        read them that way (a few rows on the host), else ``None``.

    Raises:
        TypeError: If ``lengths`` is a tuple (a misplaced state) or not integer.
        ValueError: If the shape is wrong or a value is out of range.
    """
    if isinstance(lengths, tuple):
        raise placed(
            where,
            TypeError(
                "lengths must be a (B,) int tensor, got a tuple. "
                "Pass an initial state by keyword: forward(x, lengths, hx=(h0, c0))."
            ),
        )
    given: Tensor = torch.as_tensor(lengths)
    if given.dtype.is_floating_point or given.dtype == torch.bool or given.is_complex():
        raise placed(
            where,
            TypeError(f"lengths must be integers, got dtype {given.dtype}. Cast with .long()."),
        )
    if given.ndim != 1 or (B is not None and given.shape[0] != B):
        expected = "(B,)" if B is None else f"(B,) = ({B},)"
        raise placed(
            where, ValueError(f"lengths must have shape {expected}, got {tuple(given.shape)}.")
        )
    result = given
    if given.dtype != torch.int64 or (device is not None and given.device != device):
        result = given.to(device=device or given.device, dtype=torch.int64, non_blocking=True)
    if not values:
        return result, None
    if not result.numel():
        return result, ([] if result.is_cpu else None)
    read: list[int] | None = None
    if result.is_cpu and result.numel() <= _FEW:  # one read, then Python ints
        read = result.tolist()
        low, high = min(read), max(read)
    else:  # validation only: one host sync on an accelerator
        low, high = torch.stack(torch.aminmax(result)).tolist()
    if low < 0 or (T is not None and high > T):
        bad_rows = result < 0 if T is None else (result < 0) | (result > T)
        bad = int(bad_rows.nonzero()[0, 0])
        expected = ">= 0" if T is None else f"in [0, T] = [0, {T}]"
        raise placed(
            where,
            ValueError(f"lengths must be {expected}, got lengths[{bad}] == {given[bad].tolist()}."),
        )
    return result, read


def check_mask(
    where: str | None, mask: Any, *, B: int | None = None, T: int | None = None
) -> Tensor:
    """Return ``mask`` if it is a bool ``(B, T)`` tensor, else raise.

    Args:
        where: The public function or class (``None``: see :func:`check_lengths`).
        mask: The mask received.
        B: Rows it must have, if known.
        T: Columns it must have, if known.

    Returns:
        ``mask`` unchanged.

    Raises:
        TypeError: If ``mask`` is not a bool tensor.
        ValueError: If its shape is wrong.
    """
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise placed(
            where,
            TypeError(
                f"mask must be a bool tensor (True = real step), got {got}. "
                "Convert with mask != 0 if 1 marks real steps."
            ),
        )
    wrong = mask.ndim != 2 or (B is not None and mask.shape[0] != B)
    if wrong or (T is not None and mask.shape[1] != T):
        expected = "(B, T)" if B is None or T is None else f"(B, T) = ({B}, {T})"
        raise placed(
            where, ValueError(f"mask must have shape {expected}, got {tuple(mask.shape)}.")
        )
    return mask


def check_agreement(
    where: str | None, lengths: Tensor, mask: Tensor, *, padding: Padding, expected: Tensor
) -> None:
    """Raise unless ``mask`` equals ``expected``, the mask built from ``lengths``.

    Args:
        where: The public function or class (``None``: see :func:`check_lengths`).
        lengths: The lengths received (for the message only).
        mask: The mask received.
        padding: The side of the padding.
        expected: ``(B, T)`` the mask that ``lengths`` describes.

    Raises:
        ValueError: If they differ.
    """
    if not bool((expected == mask).all()):
        row = int((expected != mask).any(dim=1).nonzero()[0, 0])
        raise placed(
            where,
            ValueError(
                f"mask and lengths must agree (padding={padding!r}), got row {row} of the "
                f"mask differing from lengths[{row}] == {int(lengths[row])}. Pass only one of them."
            ),
        )
