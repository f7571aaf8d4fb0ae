"""``Batch``: a padded batch of variable-length sequences with its lengths, mask and indices."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from varlen._types import Padding

__all__ = ["Batch"]


class Batch(NamedTuple):
    """A padded batch, as :class:`~varlen.batching.Collate` builds it.

    A ``Batch`` feeds ``varlen.nn.LSTM``/``GRU`` directly (they read ``x``, ``lengths``
    and ``padding``), moves to a device in one call with :meth:`to`, and is pinned by
    ``DataLoader(pin_memory=True)`` through :meth:`pin_memory`. Padded steps of ``x``
    hold the collate ``value``; ``mask`` marks the real steps.

    Attributes:
        x: ``(B, T, *F)`` padded sequences.
        lengths: ``(B,)`` int64 real lengths ``0 <= T_i <= T``.
        mask: ``(B, T)`` bool, True at real steps (the last ``T_i`` steps when
            ``padding="pre"``, the first ``T_i`` when ``"post"``).
        targets: ``(B, *K)`` per-sequence targets, or ``None``.
        indices: ``(B,)`` int64 dataset indices of the rows.
        padding: Side that holds the padding, ``"pre"`` or ``"post"``.

    Example:
        >>> import numpy as np
        >>> from varlen.batching import Collate
        >>> batch = Collate()([(0, np.array([1.0, 2.0]), 1), (3, np.array([3.0]), 0)])
        >>> batch.x, batch.lengths, batch.indices  # (B, T) = (2, 2)
        (tensor([[1., 2.],
                [3., 0.]], dtype=torch.float64), tensor([2, 1]), tensor([0, 3]))
        >>> batch.to("cpu").mask
        tensor([[ True,  True],
                [ True, False]])
    """

    x: Tensor
    lengths: Tensor
    mask: Tensor
    targets: Tensor | None
    indices: Tensor
    padding: Padding

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> Batch:
        """Return a copy with every tensor on ``device`` (tensors already there are reused).

        Args:
            device: Target device, e.g. ``"cuda"`` or ``torch.device("cuda", 1)``.
            non_blocking: Copy asynchronously from pinned memory (see
                :meth:`torch.Tensor.to`).

        Returns:
            A new ``Batch``; ``self`` is unchanged.
        """
        targets = self.targets
        return Batch(
            x=self.x.to(device, non_blocking=non_blocking),
            lengths=self.lengths.to(device, non_blocking=non_blocking),
            mask=self.mask.to(device, non_blocking=non_blocking),
            targets=None if targets is None else targets.to(device, non_blocking=non_blocking),
            indices=self.indices.to(device, non_blocking=non_blocking),
            padding=self.padding,
        )

    def pin_memory(self) -> Batch:
        """Return a copy with every tensor in page-locked memory (needs an accelerator).

        ``DataLoader(pin_memory=True)`` calls this in its pinning thread.

        Returns:
            A new ``Batch``; ``self`` is unchanged.
        """
        targets = self.targets
        return Batch(
            x=self.x.pin_memory(),
            lengths=self.lengths.pin_memory(),
            mask=self.mask.pin_memory(),
            targets=None if targets is None else targets.pin_memory(),
            indices=self.indices.pin_memory(),
            padding=self.padding,
        )
