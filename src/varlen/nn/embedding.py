"""Token embeddings that also return the step mask (Keras ``Embedding(mask_zero=True)``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from varlen._checks import error_context, unplaced

__all__ = ["MaskedEmbedding"]

_INDEX_DTYPES = (torch.int64, torch.int32)


def _check_pad_id(pad_id: object, num_embeddings: int) -> int:
    if isinstance(pad_id, bool) or not isinstance(pad_id, int):
        raise unplaced(TypeError(f"pad_id must be an int, got {pad_id!r}."))
    if not 0 <= pad_id < num_embeddings:
        raise unplaced(
            ValueError(
                f"pad_id must be in [0, num_embeddings) = [0, {num_embeddings}), got {pad_id}."
            )
        )
    return pad_id


def _check_ids(ids: Any, num_embeddings: int) -> Tensor:
    if not isinstance(ids, Tensor):
        raise unplaced(TypeError(f"ids must be a Tensor (B, T), got {type(ids).__name__}."))
    if ids.dtype not in _INDEX_DTYPES:
        raise unplaced(
            TypeError(f"ids must be int64 or int32, got {ids.dtype}. Cast with ids.long().")
        )
    if ids.ndim != 2:
        raise unplaced(ValueError(f"ids must have shape (B, T), got {tuple(ids.shape)}."))
    bad = (ids < 0) | (ids >= num_embeddings)
    if bool(bad.any()):  # one host sync, validation only
        b, t = (int(i) for i in bad.nonzero()[0])
        raise unplaced(
            ValueError(
                f"ids must be in [0, num_embeddings) = [0, {num_embeddings}), "
                f"got ids[{b}, {t}] == {int(ids[b, t])}."
            )
        )
    return ids


class MaskedEmbedding(nn.Embedding):
    """Look up token embeddings and return the step mask, True where ``ids != pad_id``.

    The ``mask_zero=True`` case of Keras's ``Embedding``, for any pad id. The output feeds a
    varlen recurrent layer directly::

        emb, mask = embed(ids)            # (B, T, E), (B, T)
        out, state = lstm(emb, mask=mask)

    Pad ids may sit before the tokens (pre-padding), after them, or inside a sequence (holes):
    the LSTM/GRU and the pooling functions take the mask as it is. When the mask is one run
    per row, ``varlen.nn.functional.mask_to_lengths(mask, padding=...)`` gives the lengths.

    The parameters are those of :class:`torch.nn.Embedding` with ``padding_idx = pad_id``
    (one ``weight (num_embeddings, E)``), so a torch state dict loads unchanged. As in torch,
    the row ``weight[pad_id]`` starts at zero and never receives a gradient. The output is
    exactly zero at pad steps whatever that row holds.

    Args:
        num_embeddings: Vocabulary size ``V``; ids must be in ``[0, V)``.
        embedding_dim: ``E``, features per token.
        pad_id: The id that marks padding, in ``[0, V)``.
        max_norm: As in :class:`torch.nn.Embedding`: renormalize looked-up rows (in place in
            ``weight``) to at most this norm.
        norm_type: The p of the p-norm for ``max_norm``.
        scale_grad_by_freq: Scale gradients by the inverse frequency of the ids in the batch.
        sparse: Give ``weight`` a sparse gradient.
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Example:
        >>> embed = MaskedEmbedding(10, 3)
        >>> emb, mask = embed(torch.tensor([[4, 2, 0], [0, 0, 7]]))  # (B, T) = (2, 3)
        >>> emb.shape, mask  # (B, T, E)
        (torch.Size([2, 3, 3]), tensor([[ True,  True, False],
                [False, False,  True]]))
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        *,
        pad_id: int = 0,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        with error_context("MaskedEmbedding"):
            if isinstance(num_embeddings, bool) or not isinstance(num_embeddings, int):
                raise unplaced(TypeError(f"num_embeddings must be an int, got {num_embeddings!r}."))
            self.pad_id = _check_pad_id(pad_id, num_embeddings)
        super().__init__(
            num_embeddings,
            embedding_dim,
            padding_idx=pad_id,
            max_norm=max_norm,
            norm_type=norm_type,
            scale_grad_by_freq=scale_grad_by_freq,
            sparse=sparse,
            device=device,
            dtype=dtype,
        )

    def forward(self, ids: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]  # also returns the mask
        """Embed ``ids`` and mark the real steps.

        Checking that ids are in range reads one bool on the host (one device sync).

        Args:
            ids: ``(B, T)`` int64 or int32 token ids in ``[0, num_embeddings)``.

        Returns:
            ``(embeddings, mask)``: ``embeddings (B, T, E)``, exactly zero where
            ``ids == pad_id``; ``mask (B, T)`` bool, True where ``ids != pad_id``.

        Raises:
            TypeError: If ``ids`` is not an int64/int32 tensor.
            ValueError: If ``ids`` is not 2-D or holds an id outside ``[0, num_embeddings)``.
        """
        with error_context("MaskedEmbedding"):
            ids = _check_ids(ids, self.num_embeddings)
        mask = ids != self.pad_id  # (B, T)
        looked_up = super().forward(ids)  # (B, T, E)
        zero = torch.zeros((), dtype=looked_up.dtype, device=looked_up.device)
        return torch.where(mask[:, :, None], looked_up, zero), mask

    @classmethod
    def from_pretrained(  # type: ignore[override]  # pad_id and keyword-only flags
        cls,
        embeddings: Tensor,
        *,
        freeze: bool = True,
        pad_id: int = 0,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> MaskedEmbedding:
        """Build a module whose weight is a copy of ``embeddings``.

        Unlike :meth:`torch.nn.Embedding.from_pretrained`, the weight is a copy: training
        never changes ``embeddings``. The row ``weight[pad_id]`` keeps its given values (it is
        not zeroed) but gets no gradient, and the output is zero at pad steps anyway.

        Args:
            embeddings: ``(V, E)`` floating tensor; the module takes its device and dtype.
            freeze: If True, the weight does not require a gradient.
            pad_id: The id that marks padding, in ``[0, V)``.
            max_norm: As in the class docstring.
            norm_type: As in the class docstring.
            scale_grad_by_freq: As in the class docstring.
            sparse: As in the class docstring.

        Returns:
            The new module.

        Raises:
            TypeError: If ``embeddings`` is not a floating tensor.
            ValueError: If ``embeddings`` is not 2-D, or ``pad_id`` is out of range.
        """
        with error_context("MaskedEmbedding.from_pretrained"):
            if not isinstance(embeddings, Tensor) or not embeddings.is_floating_point():
                got = (
                    embeddings.dtype
                    if isinstance(embeddings, Tensor)
                    else type(embeddings).__name__
                )
                raise unplaced(
                    TypeError(f"embeddings must be a floating tensor (V, E), got {got}.")
                )
            if embeddings.ndim != 2:
                raise unplaced(
                    ValueError(f"embeddings must have shape (V, E), got {tuple(embeddings.shape)}.")
                )
            V, E = embeddings.shape
            _check_pad_id(pad_id, V)
        module = cls(
            V,
            E,
            pad_id=pad_id,
            max_norm=max_norm,
            norm_type=norm_type,
            scale_grad_by_freq=scale_grad_by_freq,
            sparse=sparse,
            device=embeddings.device,
            dtype=embeddings.dtype,
        )
        with torch.no_grad():
            module.weight.copy_(embeddings)
        module.weight.requires_grad_(not freeze)
        return module

    def extra_repr(self) -> str:
        """Describe the module as torch does, with ``pad_id``."""
        return super().extra_repr().replace("padding_idx=", "pad_id=")
