"""Losses and metrics over the real steps of padded per-step outputs.

A model that predicts one thing per *step* (a tag per token, an activity per sample, the next
value) returns ``(B, T, ...)`` outputs whose padded steps hold garbage. These functions score only
the real steps, given ``lengths`` (or a ``mask``) and the side of the padding:

- ``reduction="step"``: the mean over all real steps of the batch (a long sequence weighs more);
- ``reduction="sequence"``: the mean over each sequence's real steps, then over the sequences
  that have at least one (every sequence weighs the same);
- ``reduction="sum"``: the sum over real steps; ``"none"``: ``(B, T)`` values, zero at pads.

Length-0 rows contribute nothing. A batch without any real step gives a loss of exactly 0 (with
a zero gradient), and a metric (accuracy) of NaN: there is nothing to measure. Padded steps of the
inputs and targets are never read into the result: their values (NaN, out-of-range class ids)
do not matter, and the gradient at every padded step is exactly zero.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, TypeAlias

import torch
from torch import Tensor, nn

from varlen._checks import check_choice, check_side, error_context, unplaced
from varlen._types import Padding
from varlen.nn._checks import check_agreement, check_lengths, check_mask
from varlen.nn.functional import _mask

__all__ = [
    "MaskedAccuracy",
    "MaskedCrossEntropyLoss",
    "MaskedL1Loss",
    "MaskedMSELoss",
    "Reduction",
    "masked_accuracy",
    "masked_cross_entropy",
    "masked_mae",
    "masked_mse",
]

Reduction: TypeAlias = Literal["step", "sequence", "sum", "none"]
_REDUCTIONS: tuple[Reduction, ...] = ("step", "sequence", "sum", "none")
_AVERAGES: tuple[Literal["step", "sequence"], ...] = ("step", "sequence")


class _Totals(NamedTuple):
    """What a reduction needs: the numerator and the count of what it averages over."""

    total: Tensor  # () sum of per-step values, or of per-sequence means
    denominator: Tensor  # () real steps, or non-empty sequences (float)


def _real_steps(
    shape: tuple[int, int],
    lengths: Tensor | None,
    mask: Tensor | None,
    padding: Padding,
    device: torch.device,
) -> Tensor:
    """Return the ``(B, T)`` bool mask of real steps from ``lengths`` and/or ``mask``."""
    B, T = shape
    if mask is not None:
        check_mask(None, mask, B=B, T=T)
        mask = mask.to(device)
    if lengths is None:
        return mask if mask is not None else torch.ones(B, T, dtype=torch.bool, device=device)
    lengths = check_lengths(None, lengths, B=B, T=T, device=device)
    expected = _mask(lengths, T, padding)
    if mask is not None:
        check_agreement(None, lengths, mask, padding=padding, expected=expected)
    return expected


def _check_pair(prediction: Tensor, target: Tensor) -> None:
    if not isinstance(prediction, Tensor) or not isinstance(target, Tensor):
        raise unplaced(
            TypeError(
                f"input and target must be tensors, got {type(prediction).__name__} and "
                f"{type(target).__name__}."
            )
        )
    if prediction.ndim < 2:
        raise unplaced(
            ValueError(f"input must have shape (B, T, ...), got {tuple(prediction.shape)}.")
        )


def _totals(values: Tensor, real: Tensor, reduction: Reduction) -> _Totals:
    """Sum ``(B, T)`` per-step ``values`` (zero at pads) for a step or sequence reduction."""
    if reduction == "sequence":
        steps = real.sum(dim=1)  # (B,)
        per_sequence = values.sum(dim=1) / steps.clamp(min=1).to(values.dtype)
        return _Totals(per_sequence.sum(), (steps > 0).sum().to(values.dtype))
    return _Totals(values.sum(), real.sum().to(values.dtype))


def _reduce(values: Tensor, real: Tensor, reduction: Reduction, *, empty: float) -> Tensor:
    """Reduce ``(B, T)`` per-step ``values``, zero at pads; ``empty`` when nothing is real."""
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    total, denominator = _totals(values, real, reduction)
    average = total / denominator.clamp(min=1)
    if empty == 0.0:  # a loss: 0 (still connected to the graph) when nothing is real
        return average
    return torch.where(denominator > 0, average, torch.full_like(total, empty))


def _per_step_errors(
    prediction: Tensor,
    target: Tensor,
    lengths: Tensor | None,
    mask: Tensor | None,
    padding: Padding,
    power: int,
) -> tuple[Tensor, Tensor]:
    """Return ``((B, T) mean |error|**power over the features, zero at pads, (B, T) real)``."""
    _check_pair(prediction, target)
    if target.shape != prediction.shape:
        raise unplaced(
            ValueError(
                f"target must have the input's shape {tuple(prediction.shape)}, got "
                f"{tuple(target.shape)}."
            )
        )
    B, T = prediction.shape[:2]
    real = _real_steps((B, T), lengths, mask, padding, prediction.device)
    keep = real.reshape(B, T, *([1] * (prediction.ndim - 2)))
    zero = torch.zeros((), dtype=prediction.dtype, device=prediction.device)
    # Replace pads before any arithmetic, so NaN or inf there cannot reach a value or gradient.
    difference = torch.where(keep, prediction, zero) - torch.where(keep, target.to(zero), zero)
    error = difference.abs() if power == 1 else difference.square()
    per_step = error.flatten(2).mean(dim=2) if prediction.ndim > 2 else error
    return per_step, real


def _check_reduction(reduction: Reduction) -> Reduction:
    return check_choice(None, "reduction", reduction, _REDUCTIONS)


def masked_mse(
    input: Tensor,
    target: Tensor,
    lengths: Tensor | None = None,
    *,
    mask: Tensor | None = None,
    padding: Padding = "post",
    reduction: Reduction = "step",
) -> Tensor:
    """Mean squared error over real steps only.

    Each step's value is the mean over its features of ``(input - target) ** 2``.

    Args:
        input: ``(B, T, *F)`` predictions.
        target: ``(B, T, *F)`` targets; their padded steps are never read.
        lengths: ``(B,)`` integer lengths, ``0 <= lengths <= T``.
        mask: ``(B, T)`` bool, True at real steps (instead of, or agreeing with, ``lengths``).
            Neither: every step is real.
        padding: Side of the padding: ``"post"`` or ``"pre"``.
        reduction: ``"step"``, ``"sequence"``, ``"sum"`` or ``"none"`` (see the module).

    Returns:
        A scalar, or ``(B, T)`` for ``"none"`` (zero at pads). 0 when no step is real.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If shapes disagree, ``lengths`` are out of range, ``mask`` and ``lengths``
            disagree, or ``padding``/``reduction`` is unknown.

    Example:
        >>> x = torch.tensor([[1.0, 2.0, 9.0], [3.0, 9.0, 9.0]])  # (B, T) = (2, 3)
        >>> # per sequence: (1 + 4) / 2 and 9; their mean:
        >>> masked_mse(x, torch.zeros(2, 3), torch.tensor([2, 1]), reduction="sequence")
        tensor(5.7500)
    """
    with error_context("masked_mse"):
        padding = check_side(None, "padding", padding)
        reduction = _check_reduction(reduction)
        values, real = _per_step_errors(input, target, lengths, mask, padding, 2)
        return _reduce(values, real, reduction, empty=0.0)


def masked_mae(
    input: Tensor,
    target: Tensor,
    lengths: Tensor | None = None,
    *,
    mask: Tensor | None = None,
    padding: Padding = "post",
    reduction: Reduction = "step",
) -> Tensor:
    """Mean absolute error over real steps only (each step: the mean over its features).

    Args:
        input: ``(B, T, *F)`` predictions.
        target: ``(B, T, *F)`` targets; their padded steps are never read.
        lengths: ``(B,)`` integer lengths, ``0 <= lengths <= T``.
        mask: ``(B, T)`` bool, True at real steps (instead of, or agreeing with, ``lengths``).
        padding: Side of the padding.
        reduction: ``"step"``, ``"sequence"``, ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or ``(B, T)`` for ``"none"``. 0 when no step is real.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: As for :func:`masked_mse`.

    Example:
        >>> x = torch.tensor([[1.0, 2.0, 9.0], [3.0, 9.0, 9.0]])  # (B, T) = (2, 3)
        >>> masked_mae(x, torch.zeros(2, 3), torch.tensor([2, 1]))  # (1 + 2 + 3) / 3
        tensor(2.)
    """
    with error_context("masked_mae"):
        padding = check_side(None, "padding", padding)
        reduction = _check_reduction(reduction)
        values, real = _per_step_errors(input, target, lengths, mask, padding, 1)
        return _reduce(values, real, reduction, empty=0.0)


def _class_inputs(
    logits: Tensor,
    target: Tensor,
    lengths: Tensor | None,
    mask: Tensor | None,
    padding: Padding,
) -> tuple[Tensor, Tensor, Tensor]:
    """Check ``(B, T, C)`` logits and ``(B, T)`` class ids; return them safe at pads + real."""
    _check_pair(logits, target)
    if logits.ndim != 3:
        raise unplaced(ValueError(f"input must have shape (B, T, C), got {tuple(logits.shape)}."))
    B, T, C = logits.shape
    if target.shape != (B, T):
        raise unplaced(
            ValueError(f"target must have shape (B, T) = ({B}, {T}), got {tuple(target.shape)}.")
        )
    if target.dtype.is_floating_point or target.dtype == torch.bool or target.is_complex():
        raise unplaced(TypeError(f"target must hold integer class ids, got dtype {target.dtype}."))
    real = _real_steps((B, T), lengths, mask, padding, logits.device)
    target = torch.where(real, target.to(device=logits.device, dtype=torch.int64), 0)
    bad = real & ((target < 0) | (target >= C))
    if bool(bad.any()):  # one host sync, validation only
        b, t = (int(i) for i in bad.nonzero()[0])
        raise unplaced(
            ValueError(
                f"target must hold class ids in [0, C) = [0, {C}) at real steps, got "
                f"target[{b}, {t}] == {int(target[b, t])}."
            )
        )
    zero = torch.zeros((), dtype=logits.dtype, device=logits.device)
    return torch.where(real[:, :, None], logits, zero), target, real


def masked_cross_entropy(
    input: Tensor,
    target: Tensor,
    lengths: Tensor | None = None,
    *,
    mask: Tensor | None = None,
    padding: Padding = "post",
    reduction: Reduction = "step",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy of per-step class logits over real steps only.

    Args:
        input: ``(B, T, C)`` logits.
        target: ``(B, T)`` integer class ids in ``[0, C)`` at real steps (pads: anything).
        lengths: ``(B,)`` integer lengths, ``0 <= lengths <= T``.
        mask: ``(B, T)`` bool, True at real steps (instead of, or agreeing with, ``lengths``).
        padding: Side of the padding.
        reduction: ``"step"``, ``"sequence"``, ``"sum"`` or ``"none"``.
        label_smoothing: As in :func:`torch.nn.functional.cross_entropy`, in ``[0, 1]``.

    Returns:
        A scalar, or ``(B, T)`` for ``"none"``. 0 when no step is real.

    Raises:
        TypeError: If ``target`` is not integer.
        ValueError: If shapes disagree, a real step's class id is out of range, or an option
            is unknown.

    Example:
        >>> logits = torch.zeros(2, 3, 4)  # (B, T, C): uniform over 4 classes
        >>> target = torch.tensor([[1, 2, -100], [0, -100, -100]])  # pads hold anything
        >>> masked_cross_entropy(logits, target, torch.tensor([2, 1]))  # log(4)
        tensor(1.3863)
    """
    with error_context("masked_cross_entropy"):
        padding = check_side(None, "padding", padding)
        reduction = _check_reduction(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise unplaced(
                ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}.")
            )
        logits, target, real = _class_inputs(input, target, lengths, mask, padding)
    B, T, C = logits.shape
    per_step = nn.functional.cross_entropy(
        logits.reshape(B * T, C),
        target.reshape(B * T),
        reduction="none",
        label_smoothing=label_smoothing,
    ).reshape(B, T)
    values = torch.where(real, per_step, per_step.new_zeros(()))
    return _reduce(values, real, reduction, empty=0.0)


def masked_accuracy(
    input: Tensor,
    target: Tensor,
    lengths: Tensor | None = None,
    *,
    mask: Tensor | None = None,
    padding: Padding = "post",
    reduction: Reduction = "step",
) -> Tensor:
    """Share of real steps whose arg-max class equals the target.

    Args:
        input: ``(B, T, C)`` logits or probabilities.
        target: ``(B, T)`` integer class ids in ``[0, C)`` at real steps.
        lengths: ``(B,)`` integer lengths, ``0 <= lengths <= T``.
        mask: ``(B, T)`` bool, True at real steps (instead of, or agreeing with, ``lengths``).
        padding: Side of the padding.
        reduction: ``"step"`` (share of all real steps), ``"sequence"`` (mean of each
            sequence's share), ``"sum"`` (count of correct steps) or ``"none"`` (``(B, T)``
            1.0 where correct, 0.0 elsewhere and at pads).

    Returns:
        A float scalar (NaN when no step is real), or ``(B, T)`` for ``"none"``.

    Raises:
        TypeError: If ``target`` is not integer.
        ValueError: As for :func:`masked_cross_entropy`.

    Example:
        >>> logits = torch.tensor([[[0.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]]])
        >>> masked_accuracy(logits, torch.tensor([[1, 1], [0, 5]]), torch.tensor([2, 1]))
        tensor(0.6667)
    """
    with error_context("masked_accuracy"):
        padding = check_side(None, "padding", padding)
        reduction = _check_reduction(reduction)
        logits, target, real = _class_inputs(input, target, lengths, mask, padding)
    dtype = logits.dtype if logits.dtype.is_floating_point else torch.float32
    values = ((logits.argmax(dim=2) == target) & real).to(dtype)
    return _reduce(values, real, reduction, empty=float("nan"))


class _MaskedLoss(nn.Module):
    """A loss module around a masked functional loss (constructor options are keyword-only)."""

    def __init__(self, *, padding: Padding = "post", reduction: Reduction = "step") -> None:
        super().__init__()
        with error_context(type(self).__name__):
            self.padding: Padding = check_side(None, "padding", padding)
            self.reduction: Reduction = _check_reduction(reduction)

    def extra_repr(self) -> str:
        """Describe the options."""
        return f"padding={self.padding!r}, reduction={self.reduction!r}"

    def forward(
        self,
        input: Tensor,
        target: Tensor,
        lengths: Tensor | None = None,
        *,
        mask: Tensor | None = None,
    ) -> Tensor:
        """Score a batch over its real steps.

        Args:
            input: ``(B, T, *F)`` predictions (``(B, T, C)`` logits for cross-entropy).
            target: ``(B, T, *F)`` targets (``(B, T)`` class ids for cross-entropy).
            lengths: ``(B,)`` lengths.
            mask: ``(B, T)`` bool, True at real steps.

        Returns:
            As the module's functional form, with the module's ``padding`` and ``reduction``.
        """
        return self._loss(input, target, lengths, mask)

    def _loss(
        self, input: Tensor, target: Tensor, lengths: Tensor | None, mask: Tensor | None
    ) -> Tensor:
        raise NotImplementedError


class MaskedMSELoss(_MaskedLoss):
    """Module form of :func:`masked_mse`.

    Args:
        padding: Side of the padding of the batches it will see.
        reduction: ``"step"``, ``"sequence"``, ``"sum"`` or ``"none"``.
    """

    def _loss(
        self, input: Tensor, target: Tensor, lengths: Tensor | None, mask: Tensor | None
    ) -> Tensor:
        return masked_mse(
            input, target, lengths, mask=mask, padding=self.padding, reduction=self.reduction
        )


class MaskedL1Loss(_MaskedLoss):
    """Module form of :func:`masked_mae`.

    Args:
        padding: Side of the padding of the batches it will see.
        reduction: ``"step"``, ``"sequence"``, ``"sum"`` or ``"none"``.
    """

    def _loss(
        self, input: Tensor, target: Tensor, lengths: Tensor | None, mask: Tensor | None
    ) -> Tensor:
        return masked_mae(
            input, target, lengths, mask=mask, padding=self.padding, reduction=self.reduction
        )


class MaskedCrossEntropyLoss(_MaskedLoss):
    """Module form of :func:`masked_cross_entropy`.

    Args:
        padding: Side of the padding of the batches it will see.
        reduction: ``"step"``, ``"sequence"``, ``"sum"`` or ``"none"``.
        label_smoothing: In ``[0, 1]``.

    Example:
        >>> loss = MaskedCrossEntropyLoss(reduction="sequence")
        >>> loss(torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), torch.tensor([3, 0]))
        tensor(1.3863)
    """

    def __init__(
        self,
        *,
        padding: Padding = "post",
        reduction: Reduction = "step",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(padding=padding, reduction=reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(
                f"MaskedCrossEntropyLoss: label_smoothing must be in [0, 1], got "
                f"{label_smoothing!r}."
            )
        self.label_smoothing = label_smoothing

    def _loss(
        self, input: Tensor, target: Tensor, lengths: Tensor | None, mask: Tensor | None
    ) -> Tensor:
        return masked_cross_entropy(
            input,
            target,
            lengths,
            mask=mask,
            padding=self.padding,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class MaskedAccuracy(nn.Module):
    """Per-step accuracy accumulated over batches (the stateful shell of :func:`masked_accuracy`).

    ``update`` adds a batch, ``compute`` gives the accuracy over everything seen so far (exactly
    what :func:`masked_accuracy` gives on all the batches at once), ``reset`` starts over.
    Calling the module scores one batch and adds it.

    Args:
        padding: Side of the padding of the batches it will see.
        reduction: ``"step"`` (share of all real steps) or ``"sequence"`` (mean of each
            sequence's share, over sequences with at least one step).

    Example:
        >>> metric = MaskedAccuracy()
        >>> metric.update(torch.tensor([[[0.0, 1.0], [1.0, 0.0]]]), torch.tensor([[1, 1]]))
        >>> metric.update(torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]), torch.tensor([[0, 5]]),
        ...               torch.tensor([1]))
        >>> metric.compute()
        tensor(0.6667, dtype=torch.float64)
    """

    total: Tensor
    count: Tensor

    def __init__(
        self, *, padding: Padding = "post", reduction: Literal["step", "sequence"] = "step"
    ) -> None:
        super().__init__()
        self.padding: Padding = check_side("MaskedAccuracy", "padding", padding)
        self.reduction = check_choice("MaskedAccuracy", "reduction", reduction, _AVERAGES)
        self.register_buffer("total", torch.zeros((), dtype=torch.float64), persistent=False)
        self.register_buffer("count", torch.zeros((), dtype=torch.float64), persistent=False)

    def reset(self) -> None:
        """Forget every batch seen so far."""
        self.total.zero_()
        self.count.zero_()

    def update(
        self,
        input: Tensor,
        target: Tensor,
        lengths: Tensor | None = None,
        *,
        mask: Tensor | None = None,
    ) -> None:
        """Add a batch.

        Args:
            input: ``(B, T, C)`` logits or probabilities.
            target: ``(B, T)`` class ids.
            lengths: ``(B,)`` lengths.
            mask: ``(B, T)`` bool, True at real steps.
        """
        self._add(input, target, lengths, mask)

    def _add(
        self, input: Tensor, target: Tensor, lengths: Tensor | None, mask: Tensor | None
    ) -> Tensor:
        with torch.no_grad(), error_context("MaskedAccuracy"):
            logits, target, real = _class_inputs(input, target, lengths, mask, self.padding)
            values = ((logits.argmax(dim=2) == target) & real).to(torch.float64)
            total, count = _totals(values, real, self.reduction)
        self.total += total.to(self.total.device)
        self.count += count.to(self.count.device)
        return torch.where(count > 0, total / count.clamp(min=1), torch.nan)

    def compute(self) -> Tensor:
        """Return the accuracy over every batch added since the last reset (NaN if none)."""
        return torch.where(self.count > 0, self.total / self.count.clamp(min=1), torch.nan)

    def forward(
        self,
        input: Tensor,
        target: Tensor,
        lengths: Tensor | None = None,
        *,
        mask: Tensor | None = None,
    ) -> Tensor:
        """Score one batch (and add it to the running totals).

        Args:
            input: ``(B, T, C)`` logits or probabilities.
            target: ``(B, T)`` class ids.
            lengths: ``(B,)`` lengths.
            mask: ``(B, T)`` bool, True at real steps.

        Returns:
            The batch's accuracy, float64 (NaN when it has no real step).
        """
        return self._add(input, target, lengths, mask)
