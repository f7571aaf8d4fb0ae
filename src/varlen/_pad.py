"""``varlen.pad`` / ``varlen.unpad``: NumPy in, NumPy out; torch tensors in, tensors out.

The NumPy functions live in :mod:`varlen.data` (which never imports torch) and the torch
ones in :mod:`varlen.nn.functional`. These two entry points pick one by the input's type,
without importing torch: a tensor can only exist once torch is loaded.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from varlen.data import padding as _numpy


def _is_tensor(value: object) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def pad(sequences: Iterable[Any], **options: Any) -> tuple[Any, Any]:
    """Pad sequences into one dense batch; return ``(padded, lengths)`` of the input's kind.

    Tensors go to :func:`varlen.nn.functional.pad`: the batch and the int64 lengths come back
    as tensors on the sequences' device, in their dtype and autograd graph. Anything else
    goes to :func:`varlen.data.pad` (NumPy arrays). Both take the same keyword arguments
    (``maxlen``, ``value``, ``padding``, ``truncating``, ``dtype``), default to
    ``padding="post"`` and give the same values. Keras's ``pad_sequences`` is separate.

    Args:
        sequences: ``B >= 1`` sequences of shape ``(T_i, *F)``: all tensors, or array-likes.
        **options: Keyword arguments of the chosen function.

    Returns:
        ``(padded (B, T, *F), lengths (B,) int64)``, tensors or NumPy arrays like the input.

    Raises:
        TypeError: If tensors and other sequences are mixed, or as the chosen function does.
        ValueError: As the chosen function does.
    """
    seqs: list[Any] = list(sequences)  # a (B, T, *F) tensor iterates over its rows
    tensors = [_is_tensor(s) for s in seqs]
    if any(tensors):
        if not all(tensors):
            i = tensors.index(False)
            raise TypeError(
                f"varlen.pad: sequences must be all tensors or all arrays, got a tensor and "
                f"a {type(seqs[i]).__name__} at sequences[{i}]."
            )
        from varlen.nn import functional

        return functional.pad(seqs, **options)
    return _numpy.pad(seqs, **options)


def unpad(padded: Any, lengths: Any, **options: Any) -> list[Any]:
    """Take the real steps out of a padded batch: the inverse of :func:`pad`.

    A tensor ``padded`` goes to :func:`varlen.nn.functional.unpad` (tensors back, on its
    device), anything else to :func:`varlen.data.unpad` (NumPy arrays).

    Args:
        padded: ``(B, T, *F)`` padded batch.
        lengths: ``(B,)`` integer lengths.
        **options: ``padding="pre"`` or ``"post"``.

    Returns:
        ``B`` sequences ``(lengths[i], *F)`` of ``padded``'s kind.
    """
    if _is_tensor(padded):
        from varlen.nn import functional

        return functional.unpad(padded, lengths, **options)
    return _numpy.unpad(padded, lengths, **options)
