"""Per-step models: a label per step, a value per step, or the next step's value.

The model family of :mod:`varlen.training.models` with ``ModelConfig(per_step=True)``: linear
input -> varlen LSTM/GRU -> linear head at *every* step, ``(B, T, output_size)``. Three faces:

- :class:`SequenceLabeller`: one class per step (activity per sample, tag per token); may be
  bidirectional (a step's label may depend on what follows it).
- :class:`StepRegressor`: ``output_size`` values per step; may be bidirectional.
- :class:`NextStepForecaster`: the output at step ``t`` predicts the target of step
  ``t + horizon`` from steps ``<= t`` only. It must be causal: a bidirectional forecaster is
  refused (its backward direction would read the very values it forecasts).

Targets are a :class:`~varlen.data.ragged.Ragged` aligned with the inputs (same lengths): int
class ids ``(N,)`` for classification, floats ``(N,)`` or ``(N, K)`` for regression. Inputs
and targets may also be a store's (:class:`~varlen.data.io.store.StoredRagged`, ``store.x``
and ``store.step_targets`` read through their transforms): each batch is then read from the
file as it is used, so memory holds the batches, not the data. A step
without a label (class id -1, or a NaN value) enters neither the loss nor the metrics. For a
forecaster the last ``horizon`` steps of each sequence have no target inside the sequence, so
they do not enter the loss. Losses and metrics count real steps only
(:mod:`varlen.nn.losses`); :func:`fit_steps` / :func:`evaluate_steps` / :func:`predict_steps`
mirror :func:`~varlen.training.fit` / :func:`~varlen.training.evaluate` /
:func:`~varlen.training.predict`; :func:`fit_steps` is the one training loop
(:func:`varlen.training.loop.train`) with the per-step task, so every
:class:`~varlen.training.TrainConfig` field means the same for both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

from varlen._checks import check_choice, error_context, unplaced
from varlen.data.grid import DEFAULT_GRID, LengthGrid
from varlen.data.io.store import StoredRagged
from varlen.data.ragged import Ragged
from varlen.nn.losses import masked_cross_entropy, masked_mae, masked_mse
from varlen.nn.recurrent import Method
from varlen.training.loop import (
    BatchLoss,
    FitResult,
    TrainConfig,
    TrainTask,
    fitted_grid,
    train,
)
from varlen.training.models import ModelConfig, SequenceModel

__all__ = [
    "STEP_TECHNIQUES",
    "NextStepForecaster",
    "SequenceLabeller",
    "StepRegressor",
    "evaluate_steps",
    "fit_steps",
    "predict_step_scores",
    "predict_steps",
    "step_task",
]

STEP_TECHNIQUES = ("bucket", "mask", "pack")
"""The techniques per-step models train with (the exact ones that keep every step's output)."""

StepReduction = Literal["step", "sequence"]
Steps = Ragged | StoredRagged
"""Sequences in memory or in a store: what the per-step functions take as ``x`` and ``y``."""


class SequenceLabeller(SequenceModel):
    """A per-step classifier: ``(B, T, num_classes)`` logits, one class per step.

    Args:
        input_size: ``F``, features per step.
        num_classes: Number of classes.
        **options: Other :class:`ModelConfig` fields (``hidden_size``, ``bidirectional``, ...).

    Example:
        >>> model = SequenceLabeller(3, 4, hidden_size=8, bidirectional=True)
        >>> model(torch.randn(2, 5, 3), torch.tensor([5, 2])).shape  # (B, T, C)
        torch.Size([2, 5, 4])
    """

    def __init__(self, input_size: int, num_classes: int, **options: Any) -> None:
        config = ModelConfig(
            input_size, num_classes, task="classification", per_step=True, **options
        )
        super().__init__(config)


class StepRegressor(SequenceModel):
    """A per-step regressor: ``(B, T, output_size)`` values.

    Args:
        input_size: ``F``, features per step.
        output_size: Targets per step.
        **options: Other :class:`ModelConfig` fields.
    """

    def __init__(self, input_size: int, output_size: int = 1, **options: Any) -> None:
        config = ModelConfig(input_size, output_size, task="regression", per_step=True, **options)
        super().__init__(config)


class NextStepForecaster(SequenceModel):
    """A causal per-step model whose step ``t`` output predicts the target of ``t + horizon``.

    Args:
        input_size: ``F``, features per step (usually including the past of the target).
        output_size: Values (regression) or classes (classification) per step.
        horizon: How many steps ahead, ``>= 1``.
        task: ``"regression"`` (default) or ``"classification"`` (the next step's class).
        **options: Other :class:`ModelConfig` fields; ``bidirectional=True`` is refused.

    Raises:
        ValueError: If ``horizon < 1`` or ``bidirectional=True`` (a forecaster must be causal).

    Example:
        >>> model = NextStepForecaster(2, hidden_size=8)
        >>> model(torch.randn(3, 6, 2), torch.tensor([6, 4, 1])).shape  # (B, T, 1)
        torch.Size([3, 6, 1])
    """

    def __init__(
        self,
        input_size: int,
        output_size: int = 1,
        *,
        horizon: int = 1,
        task: Literal["classification", "regression"] = "regression",
        **options: Any,
    ) -> None:
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"NextStepForecaster: horizon must be an int >= 1, got {horizon!r}.")
        config = ModelConfig(
            input_size, output_size, task=task, per_step=True, horizon=horizon, **options
        )
        super().__init__(config)


# ----------------------------------------------------------------------------- checks


def _check_model(model: object) -> SequenceModel:
    if not isinstance(model, SequenceModel):
        raise unplaced(TypeError(f"model must be a SequenceModel, got {type(model).__name__}."))
    if not model.config.per_step:
        raise unplaced(
            ValueError(
                "model must be a per-step model (ModelConfig.per_step=True), got a "
                "per-sequence one. Use varlen.training.fit/evaluate/predict for it."
            )
        )
    return model


def _check_x(model: SequenceModel, x: object) -> Steps:
    if isinstance(x, StoredRagged):
        if x.num_features != model.config.input_size:
            raise unplaced(
                ValueError(
                    f"x steps must have F = {model.config.input_size} features, got a store "
                    f"with {x.num_features}."
                )
            )
        return x
    if not isinstance(x, Ragged):
        raise unplaced(
            TypeError(
                f"x must be a Ragged (or a store's StoredRagged) of (T_i, F) steps, got "
                f"{type(x).__name__}."
            )
        )
    if x.trailing_shape != (model.config.input_size,):
        raise unplaced(
            ValueError(
                f"x steps must have shape (F,) = ({model.config.input_size},), got "
                f"{x.trailing_shape}."
            )
        )
    return x


def _check_targets(model: SequenceModel, x: Steps, y: object) -> Steps:
    """Check per-step targets against the inputs and the task.

    A store's targets are checked block by block, as read (one pass over them).
    """
    if not isinstance(y, Ragged | StoredRagged):
        raise unplaced(
            TypeError(
                "y must be a Ragged of per-step targets aligned with x, got "
                f"{type(y).__name__}. Build it with Ragged.from_sequences or x.with_values(...)."
            )
        )
    if len(y) != len(x):
        raise unplaced(
            ValueError(
                f"y must have one sequence of targets per sequence of x ({len(x)}), got {len(y)}."
            )
        )
    differ = np.flatnonzero(y.lengths != x.lengths)
    if differ.size:
        row = int(differ[0])
        raise unplaced(
            ValueError(
                f"y must have one target per step of x, got {int(y.lengths[row])} targets "
                f"for the {int(x.lengths[row])} steps of sequence {row}."
            )
        )
    if isinstance(y, StoredRagged):
        for _, block in y.blocks():
            _check_values(model, block)
        return y
    return _check_values(model, y)


def _check_values(model: SequenceModel, y: Ragged) -> Ragged:
    if y.dtype.kind not in "biuf":
        raise unplaced(TypeError(f"y must hold numbers, got dtype {y.dtype}."))
    config = model.config
    if config.task == "classification":
        _check_classes(y, config.output_size)
    elif y.trailing_shape != (config.output_size,) and (
        y.trailing_shape != () or config.output_size != 1
    ):
        raise unplaced(
            ValueError(
                f"y steps must have shape () or (output_size,) = ({config.output_size},), "
                f"got {y.trailing_shape}."
            )
        )
    return y


def _check_classes(y: Ragged, C: int) -> None:
    if y.trailing_shape != () or not np.issubdtype(y.dtype, np.integer):
        raise unplaced(
            ValueError(
                f"y must hold one integer class id per step, got dtype {y.dtype} and step "
                f"shape {y.trailing_shape}."
            )
        )
    bad = np.flatnonzero((y.values < -1) | (y.values >= C))
    if bad.size:
        raise unplaced(
            ValueError(
                f"class ids must be in [0, {C}) (or -1: no label), got "
                f"{int(y.values[bad[0]])} at step {int(bad[0])} of the concatenated targets."
            )
        )


def _check_technique(technique: str) -> str:
    if technique not in STEP_TECHNIQUES:
        raise unplaced(
            ValueError(
                f"technique must be one of {list(STEP_TECHNIQUES)} for a per-step model, "
                f"got {technique!r}: the others pool per sequence or are inexact."
            )
        )
    return technique


# ----------------------------------------------------------------------------- batches


class _Batch(NamedTuple):
    x: Tensor  # (B, T, F) float32, post-padded
    lengths: Tensor  # (B,) int64
    y: Tensor | None  # (B, T) int64 or (B, T, K) float32


def _batch(
    model: SequenceModel,
    x: Steps,
    y: Steps | None,
    indices: np.ndarray,
    grid: LengthGrid | None = None,
) -> _Batch:
    """The padded batch of ``indices``, ``T`` rounded up to ``grid`` (exact pads: same losses)."""
    device = model.device
    T = int(x.lengths[indices].max(initial=0))
    T = T if grid is None else grid.round_up(T)
    values, lengths = x[indices].to_padded(maxlen=T, dtype=np.float32)
    targets = None
    if y is not None:
        classification = model.config.task == "classification"
        kind = np.int64 if classification else np.float32
        padded, _ = y[indices].to_padded(maxlen=T, dtype=kind)
        targets = torch.from_numpy(padded).to(device)
        if not classification:
            targets = targets.reshape(*targets.shape[:2], model.config.output_size)
    return _Batch(
        torch.from_numpy(values).to(device), torch.from_numpy(lengths).to(device), targets
    )


def _scores(model: SequenceModel, batch: _Batch, technique: str) -> Tensor:
    """``(B, T, output_size)``; the packed technique runs the layers packed."""
    method: Method | None = "packed" if technique == "pack" else None
    return model.steps(batch.x, batch.lengths, method=method)


def _aligned(
    model: SequenceModel, scores: Tensor, targets: Tensor, lengths: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Pair step ``t``'s output with step ``t + horizon``'s target; lengths shrink by it."""
    h, T = model.config.horizon, scores.shape[1]
    if h == 0:
        return scores, targets, lengths
    kept = max(T - h, 0)
    return scores[:, :kept], targets[:, min(h, T) :], (lengths - h).clamp(min=0)


def _scored(
    model: SequenceModel, scores: Tensor, targets: Tensor, lengths: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Aligned ``(scores, targets, mask)``: the mask is True at real steps with a target.

    A step without a label (class id -1, or a NaN value) is left out; its target is set to 0
    so that nothing undefined enters the graph.
    """
    scores, targets, lengths = _aligned(model, scores, targets, lengths)
    steps = torch.arange(scores.shape[1], device=scores.device)[None, :]
    if model.config.task == "classification":
        labelled = targets >= 0
        targets = targets.clamp(min=0)
    else:
        labelled = ~torch.isnan(targets).any(dim=2)
        targets = torch.nan_to_num(targets, nan=0.0)
    return scores, targets, (steps < lengths[:, None]) & labelled


def _loss(
    model: SequenceModel,
    scores: Tensor,
    batch: _Batch,
    reduction: Literal["step", "sequence", "none"],
) -> Tensor:
    if batch.y is None:
        raise RuntimeError("varlen bug: a loss needs targets")
    scores, targets, mask = _scored(model, scores, batch.y, batch.lengths)
    if model.config.task == "classification":
        return masked_cross_entropy(scores, targets, mask=mask, reduction=reduction)
    return masked_mse(scores, targets, mask=mask, reduction=reduction)


# ----------------------------------------------------------------------------- evaluate / predict


def _sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def evaluate_steps(
    model: SequenceModel,
    x: Steps,
    y: Steps,
    *,
    batch_size: int = 256,
    reduction: StepReduction = "step",
    length_grid: LengthGrid | None = DEFAULT_GRID,
) -> tuple[float, float]:
    """Return ``(loss, metric)`` over the real steps: accuracy (classification) or MAE.

    Args:
        model: A per-step model.
        x: ``B`` sequences ``(T_i, F)``, in memory or in a store.
        y: Per-step targets aligned with ``x`` (see the module), in memory or in a store.
        batch_size: Sequences per batch.
        reduction: ``"step"`` (mean over all real steps) or ``"sequence"`` (mean of each
            sequence's mean, over sequences with a scored step).
        length_grid: Pad each batch's ``T`` up to a length of this grid, fitted to the
            longest of ``x`` (:class:`~varlen.data.grid.LengthGrid`): the same results with
            few distinct batch shapes. ``None``: pad to ``max(T_i)``.

    Returns:
        The mean loss (cross-entropy or MSE) and the metric, both NaN without any scored step.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If ``y`` does not align with ``x`` or does not fit the task.
    """
    with error_context("evaluate_steps"):
        model = _check_model(model)
        x = _check_x(model, x)
        y = _check_targets(model, x, y)
        check_choice(None, "reduction", reduction, ("step", "sequence"))
        grid = fitted_grid(length_grid, x.lengths)
        sums = np.zeros((2, len(x)))  # per sequence: loss sum, metric sum
        counts = np.zeros(len(x))
        model.eval()
        with torch.inference_mode():
            for indices in _sorted_batches(x.lengths, batch_size):
                batch = _batch(model, x, y, indices, grid)
                per_step = _per_step_values(model, model(batch.x, batch.lengths), batch)
                sums[:, indices] = np.stack(
                    [v.sum(dim=1).double().cpu().numpy() for v in per_step[:2]]
                )
                counts[indices] = per_step[2].sum(dim=1).cpu().numpy()
        return _reduce_sums(sums, counts, reduction)


def _per_step_values(
    model: SequenceModel, scores: Tensor, batch: _Batch
) -> tuple[Tensor, Tensor, Tensor]:
    """``(B, T')`` losses, metric values and bool real steps of the aligned targets."""
    if batch.y is None:
        raise RuntimeError("varlen bug: evaluation needs targets")
    scores, targets, real = _scored(model, scores, batch.y, batch.lengths)
    if model.config.task == "classification":
        losses = masked_cross_entropy(scores, targets, mask=real, reduction="none")
        metric = (scores.argmax(dim=2) == targets).to(losses.dtype)
    else:
        losses = masked_mse(scores, targets, mask=real, reduction="none")
        metric = masked_mae(scores, targets, mask=real, reduction="none")
    return losses, torch.where(real, metric, 0.0), real


def _reduce_sums(sums: np.ndarray, counts: np.ndarray, reduction: str) -> tuple[float, float]:
    if reduction == "step":
        total = counts.sum()
        return tuple(float(s.sum() / total) if total else math.nan for s in sums)  # type: ignore[return-value]
    scored = counts > 0
    if not scored.any():
        return math.nan, math.nan
    means = sums[:, scored] / counts[scored]
    return float(means[0].mean()), float(means[1].mean())


def predict_step_scores(
    model: SequenceModel,
    x: Steps,
    *,
    batch_size: int = 256,
    length_grid: LengthGrid | None = DEFAULT_GRID,
) -> Ragged:
    """Return the model's outputs at every real step, in input order, on the CPU.

    Args:
        model: A per-step model.
        x: ``B`` sequences ``(T_i, F)``, in memory or in a store (the outputs are held in
            memory: predict a large store a block of rows at a time, ``x.blocks()``).
        batch_size: Sequences per batch (batched by sorted length: little padding).
        length_grid: Pad each batch's ``T`` up to a length of this grid, fitted to the
            longest of ``x`` (:class:`~varlen.data.grid.LengthGrid`): the same results with
            few distinct batch shapes. ``None``: pad to ``max(T_i)``.

    Returns:
        A ``Ragged`` with the lengths of ``x`` and float32 values ``(N, output_size)``:
        logits (classification) or values (regression). For a forecaster, step ``t`` holds
        the forecast of step ``t + horizon``.

    Raises:
        TypeError: If ``model`` or ``x`` has the wrong type.
        ValueError: If ``model`` is not per-step or ``x`` has the wrong number of features.
    """
    with error_context("predict_step_scores"):
        model = _check_model(model)
        x = _check_x(model, x)
        lengths = x.lengths
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        out = np.zeros((x.num_steps, model.config.output_size), dtype=np.float32)
        grid = fitted_grid(length_grid, x.lengths)
        model.eval()
        with torch.inference_mode():
            for indices in _sorted_batches(lengths, batch_size):
                batch = _batch(model, x, None, indices, grid)
                scores = model(batch.x, batch.lengths).float().cpu().numpy()  # (B, T, C)
                for row, index in enumerate(indices):
                    start, stop = int(offsets[index]), int(offsets[index + 1])
                    out[start:stop] = scores[row, : stop - start]
        return Ragged(out, offsets)


def predict_steps(model: SequenceModel, x: Steps, *, batch_size: int = 256) -> Ragged:
    """Predict a class id (classification) or values (regression) at every real step.

    Args:
        model: A per-step model.
        x: ``B`` sequences ``(T_i, F)``.
        batch_size: Sequences per batch.

    Returns:
        A ``Ragged`` with the offsets of ``x``: int64 class ids ``(N,)``, or float32 values
        ``(N, output_size)``.
    """
    scores = predict_step_scores(model, x, batch_size=batch_size)
    if model.config.task == "classification":
        return scores.with_values(scores.values.argmax(axis=1).astype(np.int64))
    return scores


# ----------------------------------------------------------------------------- fit


class _StepTask:
    """Per-step models in the one training loop: masked losses over the real steps."""

    name = "fit_steps"

    def __init__(
        self,
        x: Steps,
        y: Steps,
        config: TrainConfig,
        validation: tuple[Steps, Steps] | None,
        reduction: StepReduction,
    ) -> None:
        self.x, self.y = x, y
        self.lengths = x.lengths
        self.technique = config.technique
        self.grid = fitted_grid(config.length_grid, x.lengths)
        self.length_grid = config.length_grid
        self.validation = validation
        self.has_validation = validation is not None
        self.reduction = reduction

    def batch_loss(self, model: SequenceModel, indices: np.ndarray) -> BatchLoss:
        batch = _batch(model, self.x, self.y, indices, self.grid)
        loss = _loss(model, _scores(model, batch, self.technique), batch, self.reduction)
        real = int(self.x.lengths[indices].sum())
        computed = real if self.technique == "pack" else batch.x.shape[0] * batch.x.shape[1]
        return BatchLoss(loss, real, computed)

    def validate(self, model: SequenceModel) -> tuple[float, float]:
        if self.validation is None:
            raise RuntimeError("varlen bug: validate needs validation data")
        return evaluate_steps(
            model, *self.validation, reduction=self.reduction, length_grid=self.length_grid
        )


def step_task(
    x: Steps,
    y: Steps,
    config: TrainConfig,
    *,
    validation: tuple[Steps, Steps] | None = None,
    reduction: StepReduction = "step",
) -> TrainTask:
    """The per-step task of the training loop (:func:`varlen.training.loop.train`).

    Args:
        x: ``B`` training sequences ``(T_i, F)``, already checked and normalized (in
            memory or in a store).
        y: Per-step targets aligned with ``x`` (in memory or in a store).
        config: How to train.
        validation: ``(x_val, y_val)``, or ``None``.
        reduction: ``"step"`` or ``"sequence"`` (see :func:`fit_steps`).

    Returns:
        The task (its batch loss and validation).
    """
    return _StepTask(x, y, config, validation, reduction)


def _check_fit(
    model: object, x: object, y: object, config: TrainConfig, validation: Any
) -> tuple[SequenceModel, Steps, Steps]:
    with error_context("fit_steps"):
        checked = _check_model(model)
        xs = _check_x(checked, x)
        ys = _check_targets(checked, xs, y)
        _check_technique(config.technique)
        if config.augment is not None:
            raise unplaced(
                ValueError(
                    "TrainConfig.augment crops and warps whole sequences, which would move "
                    "each step away from its per-step target; got augment="
                    f"{config.augment!r}. Pass augment=None for per-step models."
                )
            )
        if validation is not None:
            _check_targets(checked, _check_x(checked, validation[0]), validation[1])
        return checked, xs, ys


def fit_steps(
    model: SequenceModel,
    x: Steps,
    y: Steps,
    *,
    config: TrainConfig,
    validation: tuple[Steps, Steps] | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    reduction: StepReduction = "step",
    log: Callable[[str], None] | None = None,
    log_every: float = 0.0,
    checkpoint_every: float = 0.0,
) -> FitResult:
    """Train a per-step model on ``(x, y)``; keep the weights of the best validation epoch.

    The loop of :func:`varlen.training.fit` (:func:`varlen.training.loop.train`) with the
    per-step task: every :class:`~varlen.training.TrainConfig` field means the same (step
    budget, schedule and warm-up, patience in epochs or steps, time limit), each epoch's
    batches and dropout are a function of ``(seed, epoch)`` so resuming from the checkpoint of
    epoch ``k`` gives the result of an uninterrupted run, and under ``torchrun`` each rank
    trains on its share of the batches. Without validation data the training loss selects
    the epoch.

    Args:
        model: A per-step model (trained in place).
        x: ``B`` training sequences ``(T_i, F)``, float and already normalized; a ``Ragged``,
            or a store's ``StoredRagged`` (read a batch at a time, through its transform).
        y: Per-step targets aligned with ``x``: int class ids ``(N,)`` or floats ``(N,)`` /
            ``(N, K)``; a step without a label (class id -1, or NaN) is left out of the loss
            and the metrics. A ``Ragged``, or a store's ``step_targets``.
        config: How to train; ``technique`` must be ``bucket``, ``mask`` or ``pack``.
        validation: ``(x_val, y_val)`` for early stopping and model selection.
        checkpoint: File written atomically after each epoch (``None``: no checkpoints).
        resume: Continue from ``checkpoint`` if it exists.
        progress: Show progress bars.
        reduction: How the loss weighs steps: ``"step"`` (every real step the same) or
            ``"sequence"`` (every sequence the same, whatever its length).
        log: Called with one line per epoch (on rank 0).
        log_every: Seconds between two logged lines at least; 0 logs every epoch.
        checkpoint_every: Seconds between two checkpoints at least; 0 saves every epoch.

    Returns:
        The :class:`~varlen.training.FitResult`.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If the targets do not align with ``x`` or fit the task, or the technique
            does not suit per-step models.
        FloatingPointError: If the training loss stops being finite, or no epoch has a finite
            validation loss.
    """
    model, x, y = _check_fit(model, x, y, config, validation)
    check_choice("fit_steps", "reduction", reduction, ("step", "sequence"))
    return train(
        model,
        _StepTask(x, y, config, validation, reduction),
        config=config,
        checkpoint=checkpoint,
        resume=resume,
        progress=progress,
        log=log,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
    )
