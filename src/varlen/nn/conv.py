"""Convolutions over variable-length batches that stay exact under padding.

A ``"same"`` 1-D convolution reads ``kernel_size // 2`` steps on each side of a step. On a padded
batch, a real step near the end of its sequence would read pads (or a batch-mate's values under
pre-padding with a non-zero pad value). :class:`MaskedConv1d` zeroes every padded step *before*
each convolution and again *after* it, so a real step's receptive field holds only real steps of
its own sequence and zeros: exactly what the sequence alone sees with zero ``"same"`` padding at
its boundaries. This holds for pre and post padding, any pad value and any batch-mates. The
oracle is the sequence run alone (``lengths=None``).

:class:`ConvFrontEnd` stacks such convolutions, each followed by a per-step layer norm and a
ReLU (per-step operations, so exact too): the fully convolutional front-end of LSTM-FCN style
models, placed in front of a recurrent layer. Each block may end with :func:`masked_max_pool`,
which shortens every sequence by a factor (windows of ``factor`` steps aligned to the
sequence's own first step, the last window holding only its real steps), so a long series
reaches the recurrent layer as ``ceil(T_i / factor)`` steps: again exactly what the sequence
alone gives, under pre and post padding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from varlen._checks import error_context, unplaced
from varlen._types import Padding
from varlen.nn._plans import capturing_graph
from varlen.nn.functional import _mask, repad

__all__ = [
    "ConvFrontEnd",
    "MaskedConv1d",
    "masked_max_pool",
    "pooled_lengths",
    "series_standardize",
]


def _check(x: Tensor, lengths: Tensor | None, padding: str) -> None:
    if x.dim() != 3:
        raise unplaced(ValueError(f"x must be (B, T, F), got shape {tuple(x.shape)}."))
    if padding not in ("pre", "post"):
        raise unplaced(ValueError(f"padding must be 'pre' or 'post', got {padding!r}."))
    if lengths is None:
        return
    if lengths.shape != (x.shape[0],):
        raise unplaced(
            ValueError(
                f"lengths must have shape (B,) = ({x.shape[0]},), got {tuple(lengths.shape)}."
            )
        )
    if capturing_graph():  # no host reads of tensor values while a graph is captured
        return
    if len(lengths) and (int(lengths.min()) < 0 or int(lengths.max()) > x.shape[1]):
        raise unplaced(
            ValueError(
                f"lengths must be in [0, T = {x.shape[1]}], got min {int(lengths.min())}, "
                f"max {int(lengths.max())}."
            )
        )


class MaskedConv1d(nn.Module):
    """A ``"same"`` 1-D convolution over ``(B, T, F)`` whose outputs ignore padded steps.

    Args:
        in_features: ``F``.
        out_features: Output channels ``C``.
        kernel_size: Odd kernel size (``"same"`` output length needs an odd kernel).
        bias: Add a learned bias.

    Example:
        >>> conv = MaskedConv1d(3, 8, 5)
        >>> conv(torch.randn(2, 7, 3), torch.tensor([7, 4])).shape
        torch.Size([2, 7, 8])
    """

    def __init__(
        self, in_features: int, out_features: int, kernel_size: int, *, bias: bool = True
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MaskedConv1d: {name} must be an int >= 1, got {value!r}.")
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
            raise ValueError(f"MaskedConv1d: kernel_size must be an int >= 1, got {kernel_size!r}.")
        if kernel_size % 2 == 0:
            raise ValueError(
                f"MaskedConv1d: kernel_size must be odd (a 'same' output), got {kernel_size}."
            )
        self.conv = nn.Conv1d(
            in_features, out_features, kernel_size, padding=kernel_size // 2, bias=bias
        )

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, *, padding: Padding = "post"
    ) -> Tensor:
        """Convolve each sequence's real steps; padded outputs are exactly zero.

        Args:
            x: ``(B, T, F)`` padded batch (any pad value).
            lengths: ``(B,)`` int64 real lengths; ``None`` treats every step as real.
            padding: Side of the padding.

        Returns:
            ``(B, T, C)``; rows of real steps equal the sequence convolved alone.
        """
        with error_context("MaskedConv1d"):
            _check(x, lengths, padding)
        if x.shape[1] == 0:  # no step at all: (B, 0, C), still connected to the weights
            empty = x.new_zeros(x.shape[0], 0, self.conv.out_channels)
            return empty + 0.0 * self.conv.weight.sum()
        if lengths is None:
            out: Tensor = self.conv(x.transpose(1, 2)).transpose(1, 2)
            return out
        real = _mask(lengths.to(x.device), x.shape[1], padding)[:, :, None]
        zeroed = torch.where(real, x, torch.zeros((), dtype=x.dtype, device=x.device))
        out = self.conv(zeroed.transpose(1, 2)).transpose(1, 2)
        return torch.where(real, out, torch.zeros((), dtype=out.dtype, device=out.device))


def _check_factor(factor: object) -> int:
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise unplaced(ValueError(f"factor must be an int >= 1, got {factor!r}."))
    return factor


def pooled_lengths(lengths: Tensor, factor: int) -> Tensor:
    """Lengths after :func:`masked_max_pool`: ``ceil(T_i / factor)``.

    Args:
        lengths: ``(B,)`` int64 real lengths.
        factor: The pooling factor, ``>= 1``.

    Returns:
        ``(B,)`` int64; 0 stays 0.

    Example:
        >>> pooled_lengths(torch.tensor([0, 1, 4, 5]), 4)
        tensor([0, 1, 1, 2])
    """
    with error_context("pooled_lengths"):
        factor = _check_factor(factor)
    return torch.div(lengths + (factor - 1), factor, rounding_mode="floor")


def _pool_post(x: Tensor, real: Tensor | None, factor: int) -> Tensor:
    """Max over windows of ``factor`` steps from step 0; pads never win (``real`` (B, T, 1))."""
    B, T, C = x.shape
    T_out = -(-T // factor)
    lowest = torch.full((), torch.finfo(x.dtype).min, dtype=x.dtype, device=x.device)
    if real is not None:
        x = torch.where(real, x, lowest)
    if T_out * factor > T:  # the last window is short: fill it with values that never win
        x = torch.cat([x, lowest.expand(B, T_out * factor - T, C)], dim=1)
    return x.reshape(B, T_out, factor, C).amax(dim=2)  # (B, T_out, C)


def masked_max_pool(
    x: Tensor, lengths: Tensor | None = None, *, factor: int, padding: Padding = "post"
) -> tuple[Tensor, Tensor | None]:
    """Shorten each sequence by ``factor``: the max over windows of its own real steps.

    Windows start at each sequence's first real step; the last one holds the remaining
    ``T_i - factor * (ceil(T_i / factor) - 1)`` real steps only (pads never win a max). So a
    row's output is the sequence pooled alone (``lengths=None``), for pre and post padding
    and any pad value; its gradient reaches only the real step that won each window.

    Args:
        x: ``(B, T, C)`` padded batch (any pad value).
        lengths: ``(B,)`` int64 real lengths; ``None`` treats every step as real.
        factor: Window and stride, ``>= 1`` (1 returns ``x`` with its pads zeroed).
        padding: Side of the padding, kept in the output.

    Returns:
        ``(y, out_lengths)``: ``y`` is ``(B, ceil(T / factor), C)``, exactly zero at padded
        steps; ``out_lengths`` ``(B,)`` is ``ceil(T_i / factor)`` (``None`` if ``lengths``
        is ``None``).

    Example:
        >>> x = torch.tensor([[[1.0], [5.0], [2.0], [0.0]], [[3.0], [9.0], [9.0], [9.0]]])
        >>> y, n = masked_max_pool(x, torch.tensor([3, 1]), factor=2)
        >>> y[..., 0], n  # (B, T') = (2, 2); row 1's pads (9) never win
        (tensor([[5., 2.],
                [3., 0.]]), tensor([2, 1]))
    """
    with error_context("masked_max_pool"):
        factor = _check_factor(factor)
        _check(x, lengths, padding)
    if lengths is None:
        if x.shape[1] == 0:
            return x, None
        return _pool_post(x, None, factor), None
    lengths = lengths.to(x.device)
    out_lengths = pooled_lengths(lengths, factor)
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    if x.shape[1] == 0:
        return x, out_lengths
    post = repad(x, lengths, padding=padding, to="post") if padding == "pre" else x
    real = _mask(lengths, x.shape[1], "post")[:, :, None]
    pooled = _pool_post(post, real, factor)
    kept = _mask(out_lengths, pooled.shape[1], "post")[:, :, None]
    pooled = torch.where(kept, pooled, zero)
    if padding == "pre":
        pooled = repad(pooled, out_lengths, padding="post", to="pre")
    return pooled, out_lengths


class ConvFrontEnd(nn.Module):
    """Masked convolutions, each followed by a per-step layer norm, a ReLU and optional pooling.

    Args:
        in_features: ``F``.
        channels: Output channels of each convolution (``C_1, ..., C_k``).
        kernel_sizes: Odd kernel size of each convolution (same length as ``channels``).
        pools: Factor of the :func:`masked_max_pool` ending each block (1: none); ``None``
            pools nowhere. The output has ``ceil(T_i / prod(pools))`` steps per sequence
            (see :meth:`out_lengths`).

    Example:
        >>> front = ConvFrontEnd(1, (16, 16), (7, 3))
        >>> front(torch.randn(2, 9, 1), torch.tensor([9, 3])).shape
        torch.Size([2, 9, 16])
        >>> front = ConvFrontEnd(1, (16, 16), (7, 3), pools=(2, 2))
        >>> front(torch.randn(2, 9, 1), torch.tensor([9, 3])).shape  # ceil(9 / 4) = 3 steps
        torch.Size([2, 3, 16])
    """

    def __init__(
        self,
        in_features: int,
        channels: Sequence[int],
        kernel_sizes: Sequence[int],
        *,
        pools: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if len(channels) != len(kernel_sizes) or not channels:
            raise ValueError(
                "ConvFrontEnd: channels and kernel_sizes must be non-empty and of equal length, "
                f"got {len(channels)} and {len(kernel_sizes)}."
            )
        pools = (1,) * len(channels) if pools is None else tuple(pools)
        if len(pools) != len(channels):
            raise ValueError(
                f"ConvFrontEnd: pools must give one factor per convolution ({len(channels)}), "
                f"got {list(pools)}."
            )
        with error_context("ConvFrontEnd"):
            self.pools = tuple(_check_factor(p) for p in pools)
        sizes = [in_features, *channels]
        self.convs = nn.ModuleList(
            MaskedConv1d(sizes[i], sizes[i + 1], kernel_sizes[i]) for i in range(len(channels))
        )
        self.norms = nn.ModuleList(nn.LayerNorm(c) for c in channels)
        self.out_features = int(sizes[-1])

    @property
    def factor(self) -> int:
        """How many times shorter the output is: the product of ``pools``."""
        return math.prod(self.pools)

    def out_lengths(self, lengths: Tensor) -> Tensor:
        """The output's lengths, ``ceil(T_i / factor)``, for input ``lengths`` ``(B,)``."""
        return pooled_lengths(lengths, self.factor)

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, *, padding: Padding = "post"
    ) -> Tensor:
        """Run every block; padded outputs are exactly zero.

        Args:
            x: ``(B, T, F)`` padded batch (any pad value).
            lengths: ``(B,)`` int64 real lengths; ``None`` treats every step as real.
            padding: Side of the padding.

        Returns:
            ``(B, ceil(T / factor), C_k)``, real steps ``ceil(T_i / factor)`` on the same side.
        """
        with error_context("ConvFrontEnd"):
            _check(x, lengths, padding)
        if lengths is not None:
            lengths = lengths.to(x.device)
        for conv, norm, pool in zip(self.convs, self.norms, self.pools, strict=True):
            x = torch.relu(norm(conv(x, lengths, padding=padding)))
            if lengths is not None:  # layer norm's bias made the pads non-zero
                real = _mask(lengths, x.shape[1], padding)[:, :, None]
                x = torch.where(real, x, torch.zeros((), dtype=x.dtype, device=x.device))
            if pool > 1:
                x, lengths = masked_max_pool(x, lengths, factor=pool, padding=padding)
        return x


def series_standardize(
    x: Tensor, lengths: Tensor | None = None, *, padding: Padding = "post", eps: float = 1e-5
) -> Tensor:
    """Standardize each sequence by its own mean and std over its real steps, per feature.

    Series from disparate sources differ in gain and offset; this view removes both (a
    sequence's result depends only on its own real steps, so it is exact under padding).

    Args:
        x: ``(B, T, F)`` padded batch (any pad value).
        lengths: ``(B,)`` real lengths; ``None`` treats every step as real.
        padding: Side of the padding.
        eps: Added to the variance.

    Returns:
        ``(B, T, F)``, zero at padded steps (and for constant or empty sequences).
    """
    with error_context("series_standardize"):
        _check(x, lengths, padding)
    B, T, _ = x.shape
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.int64, device=x.device)
    real = _mask(lengths.to(x.device), T, padding)[:, :, None]
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    kept = torch.where(real, x, zero)
    count = lengths.to(x.device).clamp(min=1)[:, None, None].to(x.dtype)
    mean = kept.sum(dim=1, keepdim=True) / count
    centred = torch.where(real, x - mean, zero)
    var = centred.pow(2).sum(dim=1, keepdim=True) / count
    return centred / torch.sqrt(var + eps)
