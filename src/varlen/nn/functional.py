"""Torch functions over padded batches: masks, layout changes and gathers by length.

Every function takes a padded batch ``x (B, T, *F)`` with its ``lengths (B,)`` and the side
its padding is on (``padding="post"``: real steps first; ``"pre"``: real steps last). None of
them reads tensor values on the host (no device sync), except where a docstring says so.
"""

from __future__ import annotations

import torch
from torch import Tensor

from varlen._checks import check_maxlen, check_side
from varlen._types import Padding
from varlen.nn._checks import check_lengths, check_mask

__all__ = [
    "is_contiguous",
    "last_valid",
    "lengths_to_mask",
    "mask_to_lengths",
    "repad",
    "reverse_padded",
]


def _steps(T: int, device: torch.device) -> Tensor:
    return torch.arange(T, device=device)


def _first_real(lengths: Tensor, T: int, padding: Padding) -> Tensor:
    """Return ``(B,)`` int64: the index of each row's first real step (``T - len`` when pre)."""
    return T - lengths if padding == "pre" else torch.zeros_like(lengths)


def lengths_to_mask(
    lengths: Tensor, maxlen: int | None = None, *, padding: Padding = "post"
) -> Tensor:
    """Build a bool mask, True at real steps, from sequence lengths.

    The torch twin of :func:`varlen.data.masks.lengths_to_mask`, with the same checks and
    exception types. Checking the values reads ``min``/``max`` on the host (one sync).

    Args:
        lengths: ``(B,)`` integer lengths, ``0 <= lengths <= T``.
        maxlen: ``T``; defaults to ``max(lengths)``.
        padding: Side of the padding: ``"post"`` (real steps first) or ``"pre"``.

    Returns:
        ``(B, T)`` bool, on the device of ``lengths``.

    Raises:
        TypeError: If ``lengths`` is not integer or ``maxlen`` not an int.
        ValueError: If ``lengths`` is not 1-D, has a value below 0 or above ``maxlen``,
            ``maxlen < 0``, or ``padding`` is not pre/post.

    Example:
        >>> lengths_to_mask(torch.tensor([2, 0, 3]), padding="pre").int()  # (B, T) = (3, 3)
        tensor([[0, 1, 1],
                [0, 0, 0],
                [1, 1, 1]], dtype=torch.int32)
    """
    where = "lengths_to_mask"
    padding = check_side(where, "padding", padding)
    T = check_maxlen(where, maxlen)
    check_lengths(where, lengths, T=T)
    if T is None:
        T = int(lengths.max()) if lengths.numel() else 0
    return _mask(lengths.to(torch.int64), T, padding)


def _mask(lengths: Tensor, T: int, padding: Padding) -> Tensor:
    """Unchecked :func:`lengths_to_mask` with an explicit ``T``: ``(B, T)`` bool."""
    steps = _steps(T, lengths.device)  # (T,)
    if padding == "post":
        return steps[None, :] < lengths[:, None]
    return steps[None, :] >= (T - lengths)[:, None]


def is_contiguous(mask: Tensor, *, padding: Padding = "post") -> Tensor:
    """Tell, per row, whether the real steps of ``mask`` form one run at the unpadded side.

    Args:
        mask: ``(B, T)`` bool, True at real steps.
        padding: Side where the padding must be.

    Returns:
        ``(B,)`` bool (NumPy's twin returns one bool for the batch: ``.all()`` of this).

    Raises:
        TypeError: If ``mask`` is not bool.
        ValueError: If ``mask`` is not 2-D or ``padding`` is not pre/post.
    """
    where = "is_contiguous"
    padding = check_side(where, "padding", padding)
    check_mask(where, mask)
    return _contiguous_rows(mask, padding)


def _contiguous_rows(mask: Tensor, padding: Padding) -> Tensor:
    lengths = mask.sum(dim=1)
    return (_mask(lengths, mask.shape[1], padding) == mask).all(dim=1)


def mask_to_lengths(mask: Tensor, *, padding: Padding = "post") -> Tensor:
    """Count the real steps of each row of a contiguous mask.

    The torch twin of :func:`varlen.data.masks.mask_to_lengths`. Checking contiguity reads
    one bool on the host.

    Args:
        mask: ``(B, T)`` bool, True at real steps, one run per row at the unpadded side.
        padding: Side of the padding.

    Returns:
        ``(B,)`` int64 lengths.

    Raises:
        TypeError: If ``mask`` is not bool.
        ValueError: If ``mask`` is not 2-D, or a row is not one contiguous run.
    """
    padding = check_side("mask_to_lengths", "padding", padding)
    check_mask("mask_to_lengths", mask)
    ok = _contiguous_rows(mask, padding)
    if not bool(ok.all()):
        row = int((~ok).nonzero()[0, 0])
        side = "start" if padding == "post" else "end"
        raise ValueError(
            f"mask_to_lengths: mask rows must be one run of True at the {side} "
            f"(padding={padding!r}), got a hole or misplaced run in row {row}."
        )
    return mask.sum(dim=1, dtype=torch.int64)


def _gather_steps(x: Tensor, index: Tensor) -> Tensor:
    """Return ``x[b, index[b, t]]`` as ``(B, T', *F)`` for ``index (B, T')``."""
    rows = torch.arange(x.shape[0], device=x.device)[:, None]  # (B, 1)
    return x[rows, index]


def repad(x: Tensor, lengths: Tensor, *, padding: Padding, to: Padding) -> Tensor:
    """Move each row's real steps from one padded side to the other.

    Padded steps move with the rows (their content is NOT zeroed).

    Args:
        x: ``(B, T, *F)`` padded batch.
        lengths: ``(B,)`` int64 lengths on the device of ``x``.
        padding: Side the padding is on now.
        to: Side it should be on.

    Returns:
        ``(B, T, *F)``; ``x`` itself when ``padding == to``.

    Example:
        >>> x = torch.tensor([[1, 2, 0], [3, 0, 0]])  # (B, T) = (2, 3), post-padded
        >>> repad(x, torch.tensor([2, 1]), padding="post", to="pre")
        tensor([[0, 1, 2],
                [0, 0, 3]])
    """
    padding = check_side("repad", "padding", padding)
    to = check_side("repad", "to", to)
    if padding == to:
        return x
    T = x.shape[1]
    steps = _steps(T, x.device)[None, :]  # (1, T)
    # A per-row rotation: post -> pre rolls right by T - len, pre -> post rolls left by it.
    shift = lengths[:, None] if padding == "post" else (T - lengths)[:, None]
    return _gather_steps(x, (steps + shift) % max(T, 1))


def reverse_padded(x: Tensor, lengths: Tensor, *, padding: Padding = "post") -> Tensor:
    """Reverse each row's real steps in place of themselves; padded steps stay where they are.

    Applying it twice gives ``x`` back.

    Args:
        x: ``(B, T, *F)`` padded batch.
        lengths: ``(B,)`` int64 lengths on the device of ``x``.
        padding: Side of the padding.

    Returns:
        ``(B, T, *F)``.

    Example:
        >>> reverse_padded(torch.tensor([[1, 2, 3], [4, 5, 0]]), torch.tensor([3, 2]))
        tensor([[3, 2, 1],
                [5, 4, 0]])
    """
    padding = check_side("reverse_padded", "padding", padding)
    T = x.shape[1]
    steps = _steps(T, x.device)[None, :]  # (1, T)
    first = _first_real(lengths, T, padding)[:, None]  # (B, 1)
    last = first + lengths[:, None] - 1
    real = (steps >= first) & (steps <= last)
    index = torch.where(real, first + last - steps, steps)  # (B, T)
    return _gather_steps(x, index)


def last_valid(x: Tensor, lengths: Tensor, *, padding: Padding = "post") -> Tensor:
    """Gather each row's last real step; rows of length 0 give zeros.

    Args:
        x: ``(B, T, *F)`` padded batch.
        lengths: ``(B,)`` int64 lengths on the device of ``x``.
        padding: Side of the padding.

    Returns:
        ``(B, *F)``.

    Example:
        >>> last_valid(torch.tensor([[1, 2, 3], [0, 4, 5], [0, 0, 0]]), torch.tensor([2, 2, 0]),
        ...            padding="pre")
        tensor([3, 5, 0])
    """
    padding = check_side("last_valid", "padding", padding)
    T = x.shape[1]
    if T == 0:
        return x.new_zeros((x.shape[0], *x.shape[2:]))
    index = T - 1 if padding == "pre" else (lengths - 1).clamp(min=0)
    rows = torch.arange(x.shape[0], device=x.device)
    picked = x[rows, index]  # (B, *F)
    keep = (lengths > 0).reshape(-1, *([1] * (x.ndim - 2)))
    return torch.where(keep, picked, torch.zeros((), dtype=x.dtype, device=x.device))
