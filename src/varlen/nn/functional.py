"""Torch functions over padded batches: padding, masks, layout changes and gathers by length.

Every function takes a padded batch ``x (B, T, *F)`` with its ``lengths (B,)`` and the side
its padding is on (``padding="post"``: real steps first; ``"pre"``: real steps last). None of
them reads tensor values on the host (no device sync), except where a docstring says so.
:func:`pad` and :func:`unpad` are the torch twins of :func:`varlen.data.pad` and
:func:`varlen.data.unpad`: tensors stay on their device and keep their dtype and autograd
graph (Keras's ``pad_sequences`` semantics stay in :mod:`varlen.data`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from varlen._casts import Changed, first_changed, kind_error, value_error
from varlen._checks import check_maxlen, check_side, error_context, unplaced
from varlen._types import Padding
from varlen.nn._checks import check_lengths, check_mask

__all__ = [
    "is_contiguous",
    "last_valid",
    "lengths_to_mask",
    "mask_to_lengths",
    "pad",
    "repad",
    "reverse_padded",
    "unpad",
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
    with error_context("lengths_to_mask"):
        padding = check_side(None, "padding", padding)
        T = check_maxlen(None, maxlen)
        check_lengths(None, lengths, T=T)
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
    with error_context("is_contiguous"):
        padding = check_side(None, "padding", padding)
        check_mask(None, mask)
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


# ------------------------------------------------------------------------------ pad / unpad


def pad(
    sequences: Sequence[Tensor],
    *,
    maxlen: int | None = None,
    value: float = 0,
    padding: Padding = "post",
    truncating: Padding = "post",
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor]:
    """Pad a list of tensors into one dense batch on their device, and return the lengths.

    The torch twin of :func:`varlen.data.pad` (same arguments, same results as NumPy's on
    the CPU): the batch stays on the sequences' device, in their dtype, and in the autograd
    graph (gradients flow back to each sequence). Longer sequences are truncated first;
    zero-length sequences become all-padding rows. Reads no tensor value on the host, except
    where a cast into the output dtype may change a value (see ``dtype``).

    Args:
        sequences: ``B >= 1`` tensors of shape ``(T_i, *F)`` on one device, with equal
            ``*F`` (a 1-D empty tensor of shape ``(0,)`` matches any ``*F``).
        maxlen: Output length ``T``; defaults to ``max(T_i)``. May be 0.
        value: Scalar written at padded steps.
        padding: End that receives padding: ``"pre"`` (before) or ``"post"`` (after).
        truncating: End from which steps are dropped when ``T_i > T``.
        dtype: Output dtype; defaults to the promoted dtype (``torch.promote_types``) of the
            non-empty sequences. The cast is strict, by the NumPy ``pad``'s rule and with its
            errors: each sequence must cast within its kind (no float to int), every integer
            must fit, and no finite value may overflow to infinity. The kept steps of a
            sequence whose cast may change a value (a narrower dtype, e.g. int64 into int8
            or float32 into float16) are checked on the host (one copy to the CPU).

    Returns:
        ``(padded, lengths)``: ``padded`` is ``(B, T, *F)`` on the sequences' device;
        ``lengths`` is int64 ``(B,)`` on that device, the kept lengths ``min(T_i, T)``.

    Raises:
        TypeError: If a sequence is not a tensor, ``maxlen`` not an int, or a sequence does
            not cast to ``dtype`` within its kind.
        ValueError: If ``sequences`` is empty, a sequence is 0-D, trailing shapes or devices
            differ, ``maxlen < 0``, a side is not pre/post, or ``dtype`` cannot hold a kept
            value (an integer out of range, a finite value that would overflow).

    Example:
        >>> padded, lengths = pad([torch.tensor([1, 2, 3]), torch.tensor([4])], padding="pre")
        >>> padded  # (B, T) = (2, 3)
        tensor([[1, 2, 3],
                [0, 0, 4]])
        >>> lengths
        tensor([3, 1])
    """
    where = "varlen.nn.functional.pad"
    with error_context(where):
        padding = check_side(None, "padding", padding)
        truncating = check_side(None, "truncating", truncating)
        T_arg = check_maxlen(None, maxlen)
        seqs = _check_sequences(sequences)
        trailing = _trailing(seqs)
    nonempty = [s for s in seqs if s.shape[0]] or seqs
    out_dtype = dtype if dtype is not None else _promoted(nonempty)
    device = seqs[0].device
    host_lengths = [int(s.shape[0]) for s in seqs]
    T = max(host_lengths) if T_arg is None else T_arg
    kept = [min(n, T) for n in host_lengths]
    parts = [
        _truncate(s, n, truncating).reshape(n, *trailing) for s, n in zip(seqs, kept, strict=True)
    ]
    with error_context(where):
        cut = [n - k if truncating == "pre" else 0 for n, k in zip(host_lengths, kept, strict=True)]
        _check_casts(seqs, parts, cut, out_dtype)
    lengths = torch.tensor(kept, dtype=torch.int64, device=device)
    out = torch.full((len(seqs), T, *trailing), value, dtype=out_dtype, device=device)
    N = sum(kept)
    if N == 0:
        return out, lengths
    values = torch.cat([p.to(out_dtype) for p in parts if p.shape[0]])  # (N, *F)
    rows, steps = _real_positions(lengths, N, T, padding)
    return out.index_put((rows, steps), values), lengths


def unpad(padded: Tensor, lengths: Tensor, *, padding: Padding = "post") -> list[Tensor]:
    """Take the real steps out of a padded batch: the inverse of :func:`pad`.

    The torch twin of :func:`varlen.data.unpad`. The sequences are consecutive slices of
    one new ``(N, *F)`` tensor (never views of ``padded``), on its device and in its graph.
    Splitting reads ``lengths`` on the host (one sync).

    Args:
        padded: ``(B, T, *F)`` padded batch.
        lengths: ``(B,)`` integer number of real steps per row, ``0 <= lengths[i] <= T``.
        padding: End that holds the padding: ``"pre"`` or ``"post"``.

    Returns:
        ``B`` tensors; tensor ``i`` has shape ``(lengths[i], *F)``.

    Raises:
        TypeError: If ``padded`` is not a tensor or ``lengths`` not integer.
        ValueError: If ``padded`` has fewer than 2 dims, ``lengths`` is not ``(B,)`` or a
            length is out of ``[0, T]``, or ``padding`` is not pre/post.

    Example:
        >>> unpad(torch.tensor([[1, 2, 3], [4, 0, 0]]), torch.tensor([3, 1]))
        [tensor([1, 2, 3]), tensor([4])]
    """
    with error_context("varlen.nn.functional.unpad"):
        padding = check_side(None, "padding", padding)
        if not isinstance(padded, Tensor):
            raise unplaced(
                TypeError(f"padded must be a tensor (B, T, *F), got {type(padded).__name__}.")
            )
        if padded.ndim < 2:
            raise unplaced(
                ValueError(f"padded must have shape (B, T, *F), got {tuple(padded.shape)}.")
            )
        B, T = padded.shape[:2]
        kept = check_lengths(None, lengths, B=B, T=T, device=padded.device)
    host = kept.tolist()
    N = sum(host)
    rows, steps = _real_positions(kept, N, T, padding)
    values = padded[rows, steps]  # (N, *F), a new tensor
    return list(torch.split(values, host))


def _check_sequences(sequences: object) -> list[Tensor]:
    """Return the sequences as a non-empty list of tensors of ndim >= 1 on one device."""
    if isinstance(sequences, Tensor):
        seqs = list(sequences.unbind(0)) if sequences.ndim >= 2 else []
    else:
        try:
            seqs = list(sequences)  # type: ignore[call-overload]
        except TypeError as error:
            raise unplaced(
                TypeError(
                    "sequences must be a list of tensors (T_i, *F), "
                    f"got {type(sequences).__name__}."
                )
            ) from error
    if not seqs:
        raise unplaced(ValueError("sequences must hold at least one tensor, got none."))
    for i, s in enumerate(seqs):
        if not isinstance(s, Tensor):
            raise unplaced(
                TypeError(
                    f"sequences[{i}] must be a torch.Tensor (T_i, *F), got "
                    f"{type(s).__name__}. NumPy arrays and lists go to varlen.data.pad."
                )
            )
        if s.ndim == 0:
            raise unplaced(
                ValueError(f"sequences[{i}] must have shape (T_i, *F), got a 0-D tensor.")
            )
        if s.device != seqs[0].device:
            raise unplaced(
                ValueError(
                    f"sequences must share one device, got sequences[{i}] on {s.device} "
                    f"and sequences[0] on {seqs[0].device}."
                )
            )
    return seqs


def _trailing(seqs: list[Tensor]) -> tuple[int, ...]:
    """Return the ``*F`` shared by the sequences (a 1-D empty one matches any)."""
    shaped = [s for s in seqs if tuple(s.shape) != (0,)] or seqs
    trailing = tuple(shaped[0].shape[1:])
    for i, s in enumerate(seqs):
        if tuple(s.shape[1:]) != trailing and tuple(s.shape) != (0,):
            raise unplaced(
                ValueError(
                    f"sequences[{i}] has trailing shape {tuple(s.shape[1:])}, "
                    f"expected {trailing} like the others."
                )
            )
    return trailing


def _check_casts(
    seqs: list[Tensor], parts: list[Tensor], cut: list[int], dtype: torch.dtype
) -> None:
    """Refuse what :func:`varlen.data.pad` refuses: a cast across kinds, or one changing a value.

    Args:
        seqs: The ``B`` sequences (non-empty ones must cast to ``dtype`` within their kind).
        parts: Their kept steps (only these are cast, so only these are checked).
        cut: ``B`` steps cut before each part (for the step index in the message).
        dtype: The output dtype.
    """
    target = _numpy_dtype(dtype)
    for i, (s, part, first) in enumerate(zip(seqs, parts, cut, strict=True)):
        if s.dtype == dtype or s.shape[0] == 0:
            continue
        source = _numpy_dtype(s.dtype)
        if source is not None and target is not None:
            if not np.can_cast(source, target, casting="same_kind"):
                raise kind_error(i, _name(s.dtype), _name(dtype))
            if np.can_cast(source, target, casting="safe"):
                continue  # the common case: nothing to read
        elif not torch.can_cast(s.dtype, dtype):
            raise kind_error(i, _name(s.dtype), _name(dtype))
        changed = _first_changed(part, dtype, target) if part.numel() else None
        if changed is not None:
            raise value_error(i, _name(dtype), changed, first_step=first)


def _name(dtype: torch.dtype) -> str:
    """``int8`` for ``torch.int8``: dtypes are named as the NumPy ``pad`` names them."""
    return str(dtype).removeprefix("torch.")


def _numpy_dtype(dtype: torch.dtype) -> np.dtype[Any] | None:
    """The NumPy dtype of a torch dtype, or ``None`` where NumPy has none (bfloat16, ...)."""
    try:
        return torch.empty(0, dtype=dtype).numpy().dtype
    except TypeError:
        return None


def _first_changed(
    part: Tensor, dtype: torch.dtype, target: np.dtype[Any] | None
) -> Changed | None:
    """Where casting ``part`` (``(n, *F)``) to ``dtype`` changes a value, read on the host."""
    values = part.detach().cpu().resolve_conj().resolve_neg()
    if _numpy_dtype(values.dtype) is None:  # bfloat16, float8, complex32: exact in a wider one
        values = values.to(torch.complex64 if values.is_complex() else torch.float32)
    if target is not None:
        return first_changed(values.numpy(), target)
    # A float dtype NumPy lacks: the same rule (a finite value must stay finite), in torch.
    bad = torch.isfinite(values) & ~torch.isfinite(values.to(dtype))  # (n, *F)
    if not bool(bad.any()):
        return None
    per_step = bad.reshape(bad.shape[0], -1).any(dim=1)  # (n,)
    step = int(per_step.nonzero()[0])
    row = values[step].reshape(-1)
    example = row[int(bad[step].reshape(-1).nonzero()[0])].item()
    return Changed(step, example, int(bad.sum()))


def _promoted(seqs: list[Tensor]) -> torch.dtype:
    out = seqs[0].dtype
    for s in seqs[1:]:
        out = torch.promote_types(out, s.dtype)
    return out


def _truncate(s: Tensor, n: int, truncating: Padding) -> Tensor:
    return s[s.shape[0] - n :] if truncating == "pre" else s[:n]


def _real_positions(lengths: Tensor, N: int, T: int, padding: Padding) -> tuple[Tensor, Tensor]:
    """Return ``(rows, steps)``, two ``(N,)`` int64: where each real step sits in the batch.

    Row-major: the steps of row 0 in time order, then row 1's, and so on.
    """
    B = lengths.shape[0]
    rows = torch.repeat_interleave(torch.arange(B, device=lengths.device), lengths, output_size=N)
    starts = torch.cumsum(lengths, 0) - lengths  # (B,) offset of each row's first value
    steps = torch.arange(N, device=lengths.device) - starts[rows]
    if padding == "pre":
        steps = steps + (T - lengths)[rows]
    return rows, steps
