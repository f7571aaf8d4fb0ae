"""Pooling over the real steps of padded batches: last (and first) step, mean, max, attention.

Every function takes a padded batch ``x (B, T, *F)`` and says which steps are real in one of
three ways, as :class:`varlen.nn.LSTM` does:

- ``lengths (B,)``: the first (``padding="post"``) or last (``"pre"``) ``T_i`` steps are real;
- ``mask (B, T)`` bool, True = real step; masks with holes (missing steps inside a sequence)
  are allowed, and ``padding`` then does not change the result;
- neither: every step is real.

Padded steps never reach the result or its gradient: they are selected away with
``torch.where`` (never multiplied by 0), so NaN or garbage at pads cannot leak, and the
gradient at every padded step is exactly 0. Rows with no real step pool to zeros.

Validation reads ``lengths`` (or compares ``mask`` with ``lengths``) on the host once: one
device sync per call, as in :class:`varlen.nn.LSTM`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from varlen._checks import check_choice, check_side, error_context, unplaced
from varlen._types import Padding
from varlen.nn._checks import check_agreement, check_lengths, check_mask
from varlen.nn.functional import _mask

__all__ = [
    "AttentionPooling",
    "LastStepPooling",
    "MaxPooling",
    "MeanPooling",
    "attention_pool",
    "first_step",
    "last_and_first",
    "last_step",
    "masked_max",
    "masked_mean",
    "masked_softmax",
]


# ------------------------------------------------------------------ validation


def _check_x(x: Any, *, ndim: int | None, floating: bool) -> Tensor:
    """Return ``x`` if it is a tensor of the expected rank (and floating), else raise."""
    shape = "(B, T, *F)" if ndim is None else {2: "(B, T)", 3: "(B, T, F)"}[ndim]
    if not isinstance(x, Tensor):
        raise unplaced(TypeError(f"x must be a Tensor {shape}, got {type(x).__name__}."))
    if (ndim is None and x.ndim < 2) or (ndim is not None and x.ndim != ndim):
        raise unplaced(ValueError(f"x must have shape {shape}, got {tuple(x.shape)}."))
    if floating and not x.is_floating_point():
        raise unplaced(
            TypeError(f"x must be floating point, got {x.dtype}. Cast with x.to(torch.float32).")
        )
    return x


def _real_steps(
    x: Any,
    lengths: Any,
    mask: Any,
    padding: Any,
    *,
    ndim: int | None = None,
    floating: bool = False,
) -> tuple[Tensor, Tensor]:
    """Validate one pooling call; return ``(x, real)`` with ``real (B, T)`` bool on x's device.

    The one validator shared by every public function and module of this file.
    """
    side = check_side(None, "padding", padding)
    x = _check_x(x, ndim=ndim, floating=floating)
    B, T = x.shape[:2]
    if lengths is not None:
        lengths = check_lengths(None, lengths, B=B, T=T, device=x.device)
    if mask is None:
        if lengths is None:
            return x, torch.ones(B, T, dtype=torch.bool, device=x.device)
        return x, _mask(lengths, T, side)
    real = check_mask(None, mask, B=B, T=T).to(x.device)
    if lengths is not None:
        check_agreement(None, lengths, real, padding=side, expected=_mask(lengths, T, side))
    return x, real


# ------------------------------------------------------------------ kernels (trusted inputs)


def _per_row(real: Tensor, x: Tensor) -> Tensor:
    """Reshape a ``(B,)`` or ``(B, T)`` tensor to broadcast against ``x (B, [T,] *F)``."""
    return real.reshape(*real.shape, *([1] * (x.ndim - real.ndim)))


def _last_index(real: Tensor) -> Tensor:
    """``(B,)`` index of each row's last True step; -1 for empty rows. Needs ``T >= 1``."""
    steps = torch.arange(real.shape[1], device=real.device)
    return torch.where(real, steps, -1).amax(dim=1)


def _first_index(real: Tensor) -> Tensor:
    """``(B,)`` index of each row's first True step; ``T`` for empty rows. Needs ``T >= 1``."""
    T = real.shape[1]
    steps = torch.arange(T, device=real.device)
    return torch.where(real, steps, T).amin(dim=1)


def _take_step(x: Tensor, real: Tensor, *, last: bool) -> Tensor:
    """Gather ``x[b, index[b]]`` at each row's last (or first) real step; zeros for empty rows."""
    B, T = real.shape
    if T == 0:
        return x.new_zeros((B, *x.shape[2:]))
    index = (_last_index(real) if last else _first_index(real)).clamp(0, T - 1)  # (B,)
    picked = x[torch.arange(B, device=x.device), index]  # (B, *F)
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    return torch.where(_per_row(real.any(dim=1), picked), picked, zero)


def _mean(x: Tensor, real: Tensor) -> Tensor:
    real_x = _per_row(real, x)  # (B, T, 1, ...)
    total = torch.where(real_x, x, torch.zeros((), dtype=x.dtype, device=x.device)).sum(dim=1)
    count = real.sum(dim=1).clamp(min=1).to(x.dtype)  # (B,), 1 for empty rows: 0 / 1 = 0
    return total / _per_row(count, total)


def _max(x: Tensor, real: Tensor) -> Tensor:
    B, T = real.shape
    if T == 0:
        return x.new_zeros((B, *x.shape[2:]))
    real_x = _per_row(real, x).expand_as(x)  # (B, T, *F)
    low = torch.full((), float("-inf"), dtype=x.dtype, device=x.device)
    index = torch.where(real_x, x, low).argmax(dim=1, keepdim=True)  # (B, 1, *F)
    # A pad wins only in a tie with -inf real values (or in an empty row): take the first real
    # step instead, so the result and its gradient come from a real step.
    first = _per_row(_first_index(real).clamp(max=T - 1), index).expand_as(index)
    index = torch.where(torch.gather(real_x, 1, index), index, first)
    values = torch.gather(x, 1, index).squeeze(1)  # (B, *F); the gradient goes to index only
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    return torch.where(_per_row(real.any(dim=1), values), values, zero)


def _softmax(scores: Tensor, real: Tensor) -> Tensor:
    has_real = real.any(dim=1, keepdim=True)  # (B, 1)
    low = torch.full((), float("-inf"), dtype=scores.dtype, device=scores.device)
    zero = torch.zeros((), dtype=scores.dtype, device=scores.device)
    # -inf at pads; an empty row gets finite scores (no 0 / 0 in softmax), then zero weights.
    filled = torch.where(has_real, torch.where(real, scores, low), zero)
    return torch.where(real, torch.softmax(filled, dim=1), zero)


def _attend(x: Tensor, scores: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
    """Return ``(pooled (B, F), weights (B, T))`` for clean ``x`` (zero at pads)."""
    weights = _softmax(scores, real)
    return torch.einsum("bt,btf->bf", weights, x), weights


def _zero_pads(x: Tensor, real: Tensor) -> Tensor:
    return torch.where(_per_row(real, x), x, torch.zeros((), dtype=x.dtype, device=x.device))


# ------------------------------------------------------------------ functions


def last_step(
    x: Tensor,
    lengths: Tensor | None = None,
    *,
    mask: Tensor | None = None,
    padding: Padding = "post",
) -> Tensor:
    """Take each row's last real step; rows with no real step give zeros.

    With ``lengths`` this is :func:`varlen.nn.functional.last_valid`; with a mask it is the
    row's last True step, holes allowed. For a unidirectional recurrent layer this is the
    final ``h`` of the last layer.

    Args:
        x: ``(B, T, *F)`` padded batch, any dtype.
        lengths: ``(B,)`` integer lengths, ``0 <= lengths <= T``, on any device.
        mask: ``(B, T)`` bool, True at real steps. Give ``lengths`` or ``mask`` or neither
            (every step real); if both are given they must agree.
        padding: Where the pads are: ``"post"`` (after the real steps) or ``"pre"``.

    Returns:
        ``(B, *F)``, zero for rows of length 0 (and when ``T = 0``).

    Raises:
        TypeError: If ``x`` is not a tensor, or ``lengths``/``mask`` have a wrong dtype.
        ValueError: For wrong shapes, lengths outside ``[0, T]``, a mask that disagrees with
            ``lengths``, or ``padding`` not ``"pre"``/``"post"``.

    Example:
        >>> x = torch.tensor([[1, 2, 3], [4, 5, 0], [0, 0, 0]])  # (B, T) = (3, 3)
        >>> last_step(x, torch.tensor([3, 2, 0]))
        tensor([3, 5, 0])
    """
    with error_context("last_step"):
        x, real = _real_steps(x, lengths, mask, padding)
    return _take_step(x, real, last=True)


def first_step(
    x: Tensor,
    lengths: Tensor | None = None,
    *,
    mask: Tensor | None = None,
    padding: Padding = "post",
) -> Tensor:
    """Take each row's first real step; rows with no real step give zeros.

    Args:
        x: ``(B, T, *F)`` padded batch, any dtype.
        lengths: ``(B,)`` integer lengths, ``0 <= lengths <= T``, on any device.
        mask: ``(B, T)`` bool, True at real steps (holes allowed).
        padding: Where the pads are: ``"post"`` or ``"pre"``.

    Returns:
        ``(B, *F)``, zero for rows of length 0.

    Raises:
        TypeError: If ``x`` is not a tensor, or ``lengths``/``mask`` have a wrong dtype.
        ValueError: For wrong shapes, lengths outside ``[0, T]``, a mask that disagrees with
            ``lengths``, or ``padding`` not ``"pre"``/``"post"``.

    Example:
        >>> first_step(torch.tensor([[0, 1, 2], [0, 0, 3]]), torch.tensor([2, 1]), padding="pre")
        tensor([1, 3])
    """
    with error_context("first_step"):
        x, real = _real_steps(x, lengths, mask, padding)
    return _take_step(x, real, last=False)


def last_and_first(
    x: Tensor,
    lengths: Tensor | None = None,
    *,
    mask: Tensor | None = None,
    padding: Padding = "post",
    num_directions: int = 2,
) -> Tensor:
    """Summarize a (bidirectional) recurrent output: forward half at the last real step.

    A bidirectional layer's output ``(B, T, 2 * H)`` holds the forward direction in its first
    ``H`` features and the backward direction in the last ``H``. Each direction ends on a
    different step: the forward one on the last real step, the backward one on the **first**
    real step. Taking both halves at the last step (a common bug) gives a backward state that
    has seen a single step. For ``varlen.nn.LSTM``/``GRU`` outputs the result equals
    ``torch.cat([h[-2], h[-1]], dim=-1)`` of the final state, holes in the mask included.

    Args:
        x: ``(B, T, D * H)`` recurrent output, forward direction first.
        lengths: ``(B,)`` integer lengths, ``0 <= lengths <= T``, on any device.
        mask: ``(B, T)`` bool, True at real steps (holes allowed).
        padding: Where the pads are: ``"post"`` or ``"pre"``.
        num_directions: ``D``: 2 for a bidirectional output, 1 to take the last step only.

    Returns:
        ``(B, D * H)``: the forward half at the last real step, then the backward half at the
        first real step; zeros for rows of length 0.

    Raises:
        TypeError: If ``x`` is not a tensor, or ``lengths``/``mask`` have a wrong dtype.
        ValueError: For wrong shapes (including ``D * H`` not divisible by ``D``), lengths
            outside ``[0, T]``, a mask that disagrees with ``lengths``, ``num_directions``
            not 1 or 2, or ``padding`` not ``"pre"``/``"post"``.

    Example:
        >>> out = torch.tensor([[[1, 10], [2, 20], [0, 0]]])  # (B, T, 2 * H) = (1, 3, 2)
        >>> last_and_first(out, torch.tensor([2]))  # forward at t = 1, backward at t = 0
        tensor([[ 2, 10]])
    """
    with error_context("last_and_first"):
        check_choice(None, "num_directions", num_directions, (1, 2))
        x, real = _real_steps(x, lengths, mask, padding, ndim=3)
        if x.shape[2] % num_directions:
            raise unplaced(
                ValueError(
                    "x must have a feature size divisible by num_directions = "
                    f"{num_directions}, got shape {tuple(x.shape)}."
                )
            )
    if num_directions == 1:
        return _take_step(x, real, last=True)
    H = x.shape[2] // 2
    forward = _take_step(x[..., :H], real, last=True)  # (B, H)
    backward = _take_step(x[..., H:], real, last=False)  # (B, H)
    return torch.cat([forward, backward], dim=-1)


def masked_mean(
    x: Tensor,
    lengths: Tensor | None = None,
    *,
    mask: Tensor | None = None,
    padding: Padding = "post",
) -> Tensor:
    """Average each row over its real steps; rows with no real step give zeros (never NaN).

    Args:
        x: ``(B, T, *F)`` floating padded batch; pads may hold anything, NaN included.
        lengths: ``(B,)`` integer lengths, ``0 <= lengths <= T``, on any device.
        mask: ``(B, T)`` bool, True at real steps (holes allowed).
        padding: Where the pads are: ``"post"`` or ``"pre"``.

    Returns:
        ``(B, *F)``. The gradient is ``1 / T_i`` at real steps and exactly 0 at pads.

    Raises:
        TypeError: If ``x`` is not a floating tensor, or ``lengths``/``mask`` have a wrong
            dtype.
        ValueError: For wrong shapes, lengths outside ``[0, T]``, a mask that disagrees with
            ``lengths``, or ``padding`` not ``"pre"``/``"post"``.

    Example:
        >>> x = torch.tensor([[1.0, 3.0, float("nan")], [5.0, 0.0, 0.0]])  # (B, T) = (2, 3)
        >>> masked_mean(x, torch.tensor([2, 0]))
        tensor([2., 0.])
    """
    with error_context("masked_mean"):
        x, real = _real_steps(x, lengths, mask, padding, floating=True)
    return _mean(x, real)


def masked_max(
    x: Tensor,
    lengths: Tensor | None = None,
    *,
    mask: Tensor | None = None,
    padding: Padding = "post",
) -> Tensor:
    """Take each feature's maximum over each row's real steps; rows with no real step give zeros.

    A pad never wins, even when every real value is ``-inf``. As in :func:`torch.max`, the
    gradient goes to one step per feature: the first real step holding the maximum. A NaN at
    a real step gives NaN.

    Args:
        x: ``(B, T, *F)`` floating padded batch; pads may hold anything, NaN included.
        lengths: ``(B,)`` integer lengths, ``0 <= lengths <= T``, on any device.
        mask: ``(B, T)`` bool, True at real steps (holes allowed).
        padding: Where the pads are: ``"post"`` or ``"pre"``.

    Returns:
        ``(B, *F)``.

    Raises:
        TypeError: If ``x`` is not a floating tensor, or ``lengths``/``mask`` have a wrong
            dtype.
        ValueError: For wrong shapes, lengths outside ``[0, T]``, a mask that disagrees with
            ``lengths``, or ``padding`` not ``"pre"``/``"post"``.

    Example:
        >>> x = torch.tensor([[-7.0, -9.0, 5.0], [1.0, 2.0, 3.0]])  # (B, T) = (2, 3)
        >>> masked_max(x, torch.tensor([2, 0]))
        tensor([-7.,  0.])
    """
    with error_context("masked_max"):
        x, real = _real_steps(x, lengths, mask, padding, floating=True)
    return _max(x, real)


def masked_softmax(
    scores: Tensor,
    lengths: Tensor | None = None,
    *,
    mask: Tensor | None = None,
    padding: Padding = "post",
) -> Tensor:
    """Softmax each row of scores over its real steps; pads and empty rows get weight 0.

    Args:
        scores: ``(B, T)`` floating scores; pads may hold anything, NaN included.
        lengths: ``(B,)`` integer lengths, ``0 <= lengths <= T``, on any device.
        mask: ``(B, T)`` bool, True at real steps (holes allowed).
        padding: Where the pads are: ``"post"`` or ``"pre"``.

    Returns:
        ``(B, T)`` weights: exactly 0 at pads, summing to 1 over each row with a real step
        and to 0 over rows without one (no NaN).

    Raises:
        TypeError: If ``scores`` is not a floating tensor, or ``lengths``/``mask`` have a
            wrong dtype.
        ValueError: For wrong shapes, lengths outside ``[0, T]``, a mask that disagrees with
            ``lengths``, or ``padding`` not ``"pre"``/``"post"``.

    Example:
        >>> masked_softmax(torch.tensor([[0.0, 0.0, 9.0], [1.0, 2.0, 3.0]]), torch.tensor([2, 0]))
        tensor([[0.5000, 0.5000, 0.0000],
                [0.0000, 0.0000, 0.0000]])
    """
    with error_context("masked_softmax"):
        scores, real = _real_steps(scores, lengths, mask, padding, ndim=2, floating=True)
    return _softmax(scores, real)


def attention_pool(
    x: Tensor,
    scores: Tensor,
    lengths: Tensor | None = None,
    *,
    mask: Tensor | None = None,
    padding: Padding = "post",
) -> tuple[Tensor, Tensor]:
    """Pool each row as a softmax-weighted sum of its real steps, given one score per step.

    Args:
        x: ``(B, T, F)`` floating padded batch; pads may hold anything, NaN included.
        scores: ``(B, T)`` scores with the dtype of ``x``; pads may hold anything.
        lengths: ``(B,)`` integer lengths, ``0 <= lengths <= T``, on any device.
        mask: ``(B, T)`` bool, True at real steps (holes allowed).
        padding: Where the pads are: ``"post"`` or ``"pre"``.

    Returns:
        ``(pooled, weights)``: ``pooled (B, F)``, zeros for rows without a real step, and
        ``weights (B, T)`` as from :func:`masked_softmax`. Gradients at pads are exactly 0.

    Raises:
        TypeError: If ``x`` or ``scores`` is not a floating tensor, their dtypes differ, or
            ``lengths``/``mask`` have a wrong dtype.
        ValueError: For wrong shapes, lengths outside ``[0, T]``, a mask that disagrees with
            ``lengths``, or ``padding`` not ``"pre"``/``"post"``.

    Example:
        >>> x = torch.tensor([[[2.0], [4.0], [float("nan")]]])  # (B, T, F) = (1, 3, 1)
        >>> pooled, weights = attention_pool(x, torch.zeros(1, 3), torch.tensor([2]))
        >>> pooled
        tensor([[3.]])
    """
    with error_context("attention_pool"):
        x, real = _real_steps(x, lengths, mask, padding, ndim=3, floating=True)
        _check_scores(scores, x)
    return _attend(_zero_pads(x, real), scores, real)


def _check_scores(scores: Any, x: Tensor) -> None:
    B, T = x.shape[:2]
    if not isinstance(scores, Tensor):
        raise unplaced(TypeError(f"scores must be a Tensor (B, T), got {type(scores).__name__}."))
    if scores.shape != (B, T):
        raise unplaced(
            ValueError(f"scores must have shape (B, T) = ({B}, {T}), got {tuple(scores.shape)}.")
        )
    if scores.dtype != x.dtype:
        raise unplaced(
            TypeError(f"scores must have the dtype of x, {x.dtype}, got {scores.dtype}.")
        )


# ------------------------------------------------------------------ modules

_MODULE_FORWARD_DOC = """
        Args:
            x: ``(B, T, F)`` padded batch (``(B, T, *F)`` except for attention); pads may
                hold anything, NaN included.
            lengths: ``(B,)`` integer lengths, ``0 <= lengths <= T``, on any device.
            mask: ``(B, T)`` bool, True at real steps. Give ``lengths`` or ``mask`` or neither
                (every step real); if both are given they must agree.
            padding: Where the pads are: ``"post"`` (after the real steps) or ``"pre"``.

        Returns:
            ``(B, F)`` (or ``(B, *F)``), zeros for rows with no real step.
"""


class LastStepPooling(nn.Module):
    """Pool a recurrent output at each sequence's last real step (see :func:`last_and_first`).

    Args:
        num_directions: 1: the last real step; 2 (bidirectional output): the forward half at
            the last real step and the backward half at the first.

    Example:
        >>> pool = LastStepPooling(num_directions=2)
        >>> pool(torch.tensor([[[1, 10], [2, 20], [0, 0]]]), torch.tensor([2]))
        tensor([[ 2, 10]])
    """

    def __init__(self, *, num_directions: int = 1) -> None:
        super().__init__()
        self.num_directions = check_choice(
            "LastStepPooling", "num_directions", num_directions, (1, 2)
        )

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        padding: Padding = "post",
    ) -> Tensor:
        """Take the last real step (and the first, for the backward half)."""
        return last_and_first(
            x, lengths, mask=mask, padding=padding, num_directions=self.num_directions
        )

    def extra_repr(self) -> str:
        """Describe the module."""
        return f"num_directions={self.num_directions}"


class MeanPooling(nn.Module):
    """Average over the real steps of each sequence (see :func:`masked_mean`).

    Example:
        >>> MeanPooling()(torch.tensor([[[1.0], [3.0], [9.0]]]), torch.tensor([2]))
        tensor([[2.]])
    """

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        padding: Padding = "post",
    ) -> Tensor:
        """Average over the real steps."""
        return masked_mean(x, lengths, mask=mask, padding=padding)


class MaxPooling(nn.Module):
    """Take each feature's maximum over the real steps of each sequence (see :func:`masked_max`).

    Example:
        >>> MaxPooling()(torch.tensor([[[1.0], [3.0], [9.0]]]), torch.tensor([2]))
        tensor([[3.]])
    """

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        padding: Padding = "post",
    ) -> Tensor:
        """Take the maximum over the real steps."""
        return masked_max(x, lengths, mask=mask, padding=padding)


class AttentionPooling(nn.Module):
    """Pool each sequence as an attention-weighted sum of its real steps.

    Each real step ``x_t`` gets a learned score, ``s_t = w . x_t`` (``hidden_size=None``) or
    ``s_t = v . tanh(W x_t + b)`` (additive attention); the weights are the softmax of the
    scores over the real steps only (pads get exactly 0), and the output is
    ``sum_t weight_t * x_t``. A sequence with no real step pools to zeros. The scores of a
    sequence do not depend on its pads or its batch-mates.

    Args:
        input_size: ``F``, features per step.
        hidden_size: Width of the additive-attention layer; ``None`` scores each step with
            one linear map.
        bias: Whether the additive-attention layer has a bias ``b``.
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Example:
        >>> pool = AttentionPooling(4, hidden_size=8)
        >>> x = torch.randn(2, 5, 4)  # (B, T, F)
        >>> pooled, weights = pool.attend(x, torch.tensor([5, 0]))
        >>> pooled.shape, weights.shape  # (B, F), (B, T)
        (torch.Size([2, 4]), torch.Size([2, 5]))
        >>> pooled[1].tolist(), weights[1].tolist()  # the empty row: zeros, weight 0
        ([0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0])
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int | None = None,
        *,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        with error_context("AttentionPooling"):
            _check_size("input_size", input_size)
            if hidden_size is not None:
                _check_size("hidden_size", hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.project = (
            None
            if hidden_size is None
            else nn.Linear(input_size, hidden_size, bias=bias, **factory)
        )
        # A bias on the scores shifts every score of a row equally: softmax ignores it.
        self.score = nn.Linear(hidden_size or input_size, 1, bias=False, **factory)

    def scores(self, x: Tensor) -> Tensor:
        """Score every step of ``x (B, T, F)``, pads included; return ``(B, T)``."""
        hidden = x if self.project is None else torch.tanh(self.project(x))
        scores: Tensor = self.score(hidden)  # (B, T, 1)
        return scores.squeeze(-1)

    def attend(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        padding: Padding = "post",
    ) -> tuple[Tensor, Tensor]:
        """Pool ``x`` and also return the attention weights.

        Args:
            x: ``(B, T, F)`` padded batch with the dtype of the weights; pads may hold
                anything, NaN included.
            lengths: ``(B,)`` integer lengths, ``0 <= lengths <= T``, on any device.
            mask: ``(B, T)`` bool, True at real steps (holes allowed).
            padding: Where the pads are: ``"post"`` or ``"pre"``.

        Returns:
            ``(pooled, weights)``: ``pooled (B, F)`` and ``weights (B, T)``, exactly 0 at pads.

        Raises:
            TypeError: For a wrong type or dtype of ``x``, ``lengths`` or ``mask``.
            ValueError: For wrong shapes, lengths outside ``[0, T]``, a mask that disagrees
                with ``lengths``, or ``padding`` not ``"pre"``/``"post"``.
        """
        with error_context("AttentionPooling"):
            x, real = _real_steps(x, lengths, mask, padding, ndim=3, floating=True)
            if x.shape[2] != self.input_size:
                raise unplaced(
                    ValueError(
                        f"x must have F = input_size = {self.input_size} features, "
                        f"got shape {tuple(x.shape)}."
                    )
                )
            if x.dtype != self.score.weight.dtype:
                raise unplaced(
                    TypeError(
                        f"x must have the dtype of the weights, {self.score.weight.dtype}, "
                        f"got {x.dtype}. Cast x with .to({self.score.weight.dtype})."
                    )
                )
        clean = _zero_pads(x, real)  # so NaN pads reach neither the scores nor the gradients
        return _attend(clean, self.scores(clean), real)

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        padding: Padding = "post",
    ) -> Tensor:
        """Pool ``x``; :meth:`attend` also returns the weights."""
        return self.attend(x, lengths, mask=mask, padding=padding)[0]

    def extra_repr(self) -> str:
        """Describe the module."""
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}"


def _check_size(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise unplaced(TypeError(f"{name} must be an int, got {value!r}."))
    if value < 1:
        raise unplaced(ValueError(f"{name} must be >= 1, got {value!r}."))


for _module in (LastStepPooling, MeanPooling, MaxPooling, AttentionPooling):
    _module.forward.__doc__ = (_module.forward.__doc__ or "") + _MODULE_FORWARD_DOC
