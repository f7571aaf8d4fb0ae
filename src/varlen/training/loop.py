"""fit / evaluate / predict for :class:`~varlen.training.models.SequenceModel`, with checkpoints.

The loop is a sequence of named steps: each epoch seeds torch from ``(seed, epoch)`` and asks a
:class:`~varlen.batching.BucketBatchSampler` (or a random permutation) for batches that are a
function of ``(seed, epoch)`` alone, so resuming from the checkpoint of epoch ``k`` gives the same
result as an uninterrupted run. Checkpoints are written atomically by :mod:`varlen._atomic` (a
temporary file, synced, then renamed) after every epoch and hold only tensors and plain values,
so they load with ``torch.load(..., weights_only=True)``; a damaged one is one clear error.

Under ``torchrun`` (a ``torch.distributed`` process group initialised), each rank takes its shard
of every epoch's batches and gradients are averaged across ranks after each backward pass, so any
technique works; only rank 0 writes checkpoints and shows progress.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol, TypeAlias

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm.auto import tqdm

from varlen._checks import error_context, unplaced
from varlen.batching.dataset import RaggedDataset
from varlen.batching.report import choose_technique  # re-exported: its home is NumPy-only
from varlen.batching.sampler import BucketBatchSampler
from varlen.data.augment import Augmentation, augment
from varlen.data.grid import DEFAULT_GRID, LengthGrid
from varlen.data.io.store import StoredRagged
from varlen.data.ragged import Ragged
from varlen.training.checkpoints import Checkpoint, load_checkpoint, save_checkpoint, unfit
from varlen.training.models import SequenceModel
from varlen.training.techniques import Technique, Timing, get_technique

__all__ = [
    "BatchLoss",
    "EpochStats",
    "FitResult",
    "PatienceUnit",
    "Schedule",
    "Selection",
    "TrainConfig",
    "TrainTask",
    "choose_technique",
    "evaluate",
    "fit",
    "predict",
    "sequence_task",
    "split_validation",
    "time_task",
    "train",
]


Schedule: TypeAlias = Literal["constant", "cosine"]
PatienceUnit: TypeAlias = Literal["epochs", "steps"]
Selection: TypeAlias = Literal["loss", "metric"]


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Args:
        technique: A name from :data:`varlen.training.TECHNIQUES`.
        epochs: Maximum number of epochs.
        batch_size: Sequences per batch.
        lr: Adam learning rate (the peak, with a schedule).
        weight_decay: Adam weight decay.
        patience: Stop after this many epochs (or optimizer steps, see ``patience_unit``)
            without a better validation loss (``None``: never stop early). Without validation
            data, nothing stops early.
        grad_clip: Clip the gradient norm to this (``None``: no clipping).
        seed: Seed of everything random: initial weights, batches, dropout.
        max_steps: A training budget in optimizer steps: the run stops after
            ``min(max_steps, epochs * batches per epoch)`` steps, inside its last epoch if
            need be (that epoch takes the first batches of its plan, so a resumed run ends
            where an uninterrupted one does); ``None``: ``epochs`` whole epochs.
        schedule: ``"constant"`` learning rate, or ``"cosine"`` decay to zero over the run's
            optimizer steps.
        warmup_steps: Optimizer steps of linear warm-up from ``lr / warmup_steps`` to ``lr``.
        patience_unit: Whether ``patience`` counts ``"epochs"`` or optimizer ``"steps"``
            (checked at the end of each epoch).
        time_limit: Stop after the first epoch that ends past this many seconds of this call
            to :func:`fit` (``None``: no limit); the best weights so far are kept.
        select: What makes an epoch the best one (kept, and counted from by ``patience``):
            the lowest validation ``"loss"``, or the best validation ``"metric"`` (highest
            accuracy, lowest MAE), ties going to the lower loss. A small validation set's
            loss can rise while its accuracy still climbs (confident mistakes weigh more
            than right answers). Without validation data: the lowest training loss.
        augment: Perturb each training sequence's real steps anew in every batch (random
            crop, time warp and gain, :class:`~varlen.data.augment.Augmentation`), from a key
            drawn from the epoch's seeded generator, so runs stay reproducible and resumable
            (``None``: train on the sequences as they are). Validation and prediction never
            augment. Per-sequence models only.
    """

    technique: str = "bucket"
    epochs: int = 40
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.0
    patience: int | None = 10
    grad_clip: float | None = 1.0
    seed: int = 0
    max_steps: int | None = None
    schedule: Schedule = "constant"
    warmup_steps: int = 0
    patience_unit: PatienceUnit = "epochs"
    time_limit: float | None = None
    select: Selection = "loss"
    augment: Augmentation | None = None
    length_grid: LengthGrid | None = DEFAULT_GRID

    def __post_init__(self) -> None:
        get_technique(self.technique)
        if self.length_grid is not None and not isinstance(self.length_grid, LengthGrid):
            raise TypeError(
                "TrainConfig: length_grid must be a varlen.data.grid.LengthGrid or None, got "
                f"{type(self.length_grid).__name__}."
            )
        if self.augment is not None and not isinstance(self.augment, Augmentation):
            raise TypeError(
                "TrainConfig: augment must be a varlen.data.augment.Augmentation or None, got "
                f"{type(self.augment).__name__}."
            )
        if self.select not in ("loss", "metric"):
            raise ValueError(
                f"TrainConfig: select must be 'loss' or 'metric', got {self.select!r}."
            )
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig: {name} must be an int >= 1, got {value!r}.")
        self._check_budget()

    def _check_budget(self) -> None:
        if self.max_steps is not None and (
            isinstance(self.max_steps, bool)
            or not isinstance(self.max_steps, int)
            or self.max_steps < 1
        ):
            raise ValueError(
                f"TrainConfig: max_steps must be an int >= 1 or None, got {self.max_steps!r}."
            )
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int):
            raise ValueError(
                f"TrainConfig: warmup_steps must be an int, got {self.warmup_steps!r}."
            )
        if self.warmup_steps < 0:
            raise ValueError(f"TrainConfig: warmup_steps must be >= 0, got {self.warmup_steps}.")
        if self.max_steps is not None and self.warmup_steps > self.max_steps:
            raise ValueError(
                f"TrainConfig: warmup_steps = {self.warmup_steps} is longer than the run "
                f"(max_steps = {self.max_steps}): the learning rate would never reach lr. Give "
                "warmup_steps <= max_steps."
            )
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(
                f"TrainConfig: schedule must be 'constant' or 'cosine', got {self.schedule!r}."
            )
        if self.patience_unit not in ("epochs", "steps"):
            raise ValueError(
                "TrainConfig: patience_unit must be 'epochs' or 'steps', got "
                f"{self.patience_unit!r}."
            )
        if self.time_limit is not None and not 0 < self.time_limit < math.inf:
            raise ValueError(
                f"TrainConfig: time_limit must be finite and > 0 or None, got {self.time_limit!r}."
            )
        if self.patience is not None and (
            isinstance(self.patience, bool)
            or not isinstance(self.patience, int)
            or self.patience < 1
        ):
            raise ValueError(
                f"TrainConfig: patience must be an int >= 1 or None (never stop early), "
                f"got {self.patience!r}."
            )
        if not 0 < self.lr < math.inf:
            raise ValueError(f"TrainConfig: lr must be finite and > 0, got {self.lr!r}.")


@dataclass(frozen=True)
class EpochStats:
    """What one epoch measured."""

    epoch: int
    train_loss: float
    val_loss: float | None
    val_metric: float | None
    real_steps_per_second: float
    padding_efficiency: float
    seconds: float
    steps: int = 0
    real_steps: int = 0
    train_seconds: float = 0.0


@dataclass
class FitResult:
    """What :func:`fit` returns: the history and the best epoch (whose weights the model holds)."""

    history: list[EpochStats] = field(default_factory=list)
    best_epoch: int = -1
    best_val_loss: float = math.inf
    stopped_early: bool = False
    stopped_by_time: bool = False
    planned_epochs: int = 0
    seconds: float = 0.0

    @property
    def steps(self) -> int:
        """Optimizer steps taken over the whole run."""
        return sum(stats.steps for stats in self.history)

    @property
    def real_steps_per_second(self) -> float:
        """Real (unpadded) steps trained per second of training, over the whole run."""
        busy = sum(stats.train_seconds for stats in self.history)
        return sum(stats.real_steps for stats in self.history) / busy if busy > 0 else 0.0


def split_validation(
    y: np.ndarray, fraction: float, *, seed: int, stratify: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices ``0..n-1`` into ``(train, validation)``, stratified by class if asked.

    Args:
        y: ``(n,)`` targets.
        fraction: Share of each class (or of all) that goes to validation, in ``[0, 1)``.
        seed: Seed of the shuffle.
        stratify: Split every class separately (classification).

    Returns:
        Two sorted int64 index arrays.

    Raises:
        ValueError: If ``fraction`` is not in ``[0, 1)``.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"split_validation: fraction must be in [0, 1), got {fraction!r}.")
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    val = []
    for group in groups:
        shuffled = rng.permutation(group)
        val.append(shuffled[: round(fraction * len(group))])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(len(y)), val_idx)
    return train_idx.astype(np.int64), val_idx.astype(np.int64)


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _batches(
    technique: Technique, lengths: np.ndarray, config: TrainConfig, epoch: int, *, shuffle: bool
) -> list[np.ndarray]:
    """This rank's batches of an epoch: bucketed or random, a function of (seed, epoch)."""
    rank, world = _rank_and_world()
    if technique.bucketed:
        sampler = BucketBatchSampler(
            lengths,
            config.batch_size,
            shuffle=shuffle,
            seed=config.seed,
            num_replicas=world,
            rank=rank,
        )
        sampler.set_epoch(epoch)
        return [np.asarray(batch, dtype=np.int64) for batch in sampler]
    order = np.arange(len(lengths))
    if shuffle:
        order = np.random.default_rng([config.seed, epoch]).permutation(len(lengths))
    batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    if world > 1:  # equal counts on every rank: repeat the first batches if needed
        count = max(-(-len(batches) // world), 1) * world
        batches = [batches[i % len(batches)] for i in range(count)] if batches else []
        batches = batches[rank::world]
    return batches


def _loss(model: SequenceModel, scores: Tensor, targets: Tensor) -> Tensor:
    if model.config.task == "classification":
        return nn.functional.cross_entropy(scores, targets)
    return nn.functional.mse_loss(scores, targets.reshape(scores.shape))


def _targets(model: SequenceModel, y: np.ndarray, indices: np.ndarray) -> Tensor:
    dtype = torch.int64 if model.config.task == "classification" else torch.float32
    return torch.as_tensor(y[indices], dtype=dtype, device=model.device)


def _average_gradients(model: nn.Module, world: int) -> None:
    if world == 1:
        return
    for parameter in model.parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= world


def _check_finite(
    value: float,
    config: TrainConfig,
    *,
    device: torch.device,
    epoch: int,
    batch: int,
    world: int,
) -> None:
    """Raise before a step on a NaN or infinite loss ``value``, on every rank at once.

    Raises:
        FloatingPointError: If the loss of this batch is not finite on some rank.
    """
    finite = math.isfinite(value)
    if world > 1:  # all ranks must stop together, or the others would wait in all_reduce
        flag = torch.tensor([float(finite)], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        finite = bool(flag.item())
    if not finite:
        ranks = " on some rank" if world > 1 else ""
        raise unplaced(
            FloatingPointError(
                f"the training loss must stay finite, got {value}{ranks} at "
                f"epoch {epoch + 1}, batch {batch + 1}: training diverged. Lower the learning rate "
                f"(lr={config.lr}), clip gradients (TrainConfig.grad_clip), or check the data for "
                "extreme values; a checkpoint keeps the last finished epoch."
            )
        )


def _seed_dropout(model: SequenceModel, seed: int) -> None:
    """Seed dropout; on the CPU, the default generator alone.

    ``torch.manual_seed`` also queues a CUDA seeding with a captured stack: 5 ms an epoch.
    """
    if model.device.type == "cpu":
        torch.default_generator.manual_seed(seed)
    else:
        torch.manual_seed(seed)


class BatchLoss(NamedTuple):
    """A training batch's loss and its work, as a task computes it.

    Attributes:
        loss: The scalar loss to minimize.
        real_steps: Real (unpadded) steps in the batch.
        computed_steps: Steps computed, pads included.
    """

    loss: Tensor
    real_steps: int
    computed_steps: int


class TrainTask(Protocol):
    """What a kind of model gives the training loop (:func:`train`): a strategy.

    The loop owns everything else: batches (a function of the seed and epoch, sharded under
    ``torchrun``), the optimizer, the step budget and learning-rate schedule, patience, the
    best snapshot, checkpoints and exact resume, progress and time limits.

    Attributes:
        name: The public function's name, for errors (``"fit"``).
        lengths: ``(B,)`` the training sequences' lengths (batches are formed from them).
        has_validation: Whether :meth:`validate` scores validation data.
    """

    name: str
    lengths: np.ndarray
    has_validation: bool

    def batch_loss(self, model: SequenceModel, indices: np.ndarray) -> BatchLoss:
        """Run the model on the training sequences ``indices`` and return their loss."""
        ...

    def validate(self, model: SequenceModel) -> tuple[float, float]:
        """Return ``(loss, metric)`` on the validation data."""
        ...


class _SequenceTask:
    """Per-sequence models: one output per sequence, cross-entropy or MSE."""

    name = "fit"

    def __init__(
        self,
        x: Ragged | StoredRagged,
        y: np.ndarray,
        config: TrainConfig,
        validation: tuple[Ragged | StoredRagged, np.ndarray] | None,
    ) -> None:
        self.data = RaggedDataset(x)
        self.lengths = self.data.lengths
        self.y = y
        self.config = config
        self.technique = get_technique(config.technique)
        self.grid = fitted_grid(config.length_grid, self.lengths)
        self.validation = validation
        self.has_validation = validation is not None

    def batch_loss(self, model: SequenceModel, indices: np.ndarray) -> BatchLoss:
        data, rows = self.data, indices
        augmentation = self.config.augment
        if augmentation is not None and not augmentation.is_identity:
            # the key comes from the generator the loop seeds from (seed, epoch)
            key = int(torch.randint(0, 2**62, (1,), generator=torch.default_generator))
            batch = [self.data.sequences[int(i)] for i in indices]
            data = RaggedDataset(augment(batch, augmentation, key=key, ids=indices))
            rows = np.arange(len(indices), dtype=np.int64)
        step = self.technique.run(model, data, rows, grid=self.grid)
        loss = _loss(model, step.scores, _targets(model, self.y, indices))
        return BatchLoss(loss, step.real_steps, step.computed_steps)

    def validate(self, model: SequenceModel) -> tuple[float, float]:
        if self.validation is None:
            raise RuntimeError("varlen bug: validate needs validation data")
        return _validate(model, self.validation, self.config)


def fitted_grid(grid: LengthGrid | None, lengths: np.ndarray) -> LengthGrid | None:
    """Return ``grid`` with its top set to the longest of ``lengths``, unless it has one.

    Args:
        grid: A grid, or ``None`` (no rounding).
        lengths: ``(n,)`` the lengths the batches are drawn from.

    Returns:
        The grid to pad batches to, or ``None``.

    Raises:
        TypeError: If ``grid`` is not a ``LengthGrid`` or ``None``.
    """
    if grid is not None and not isinstance(grid, LengthGrid):
        raise unplaced(
            TypeError(f"length_grid must be a varlen.data.grid.LengthGrid or None, got {grid!r}.")
        )
    if grid is None or grid.longest is not None:
        return grid
    return grid.fitted(lengths)


def sequence_task(
    x: Ragged,
    y: np.ndarray,
    config: TrainConfig,
    *,
    validation: tuple[Ragged, np.ndarray] | None = None,
) -> TrainTask:
    """The per-sequence task of the training loop (:func:`train`), as :func:`fit` uses it.

    Args:
        x: ``B`` training sequences ``(T_i, F)``, float32 and already normalized.
        y: ``(B,)`` class ids or ``(B, K)`` targets.
        config: How to train (the technique batches and runs the model).
        validation: ``(x_val, y_val)``, or ``None``.

    Returns:
        The task (its batch loss and validation).
    """
    return _SequenceTask(x, y, config, validation)


class _EpochWork:
    """What one training epoch did (its loss and its work)."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.real = 0
        self.computed = 0
        self.busy = 0.0

    def stats(
        self, epoch: int, validation: tuple[float | None, float | None], seconds: float
    ) -> EpochStats:
        loss = float(np.mean(self.losses)) if self.losses else math.nan
        return EpochStats(
            epoch,
            loss,
            validation[0],
            validation[1],
            self.real / max(self.busy, 1e-9),
            self.real / self.computed if self.computed else 1.0,
            seconds,
            steps=len(self.losses),
            real_steps=self.real,
            train_seconds=self.busy,
        )


class _Optimization(NamedTuple):
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler


def _train_epoch(
    model: SequenceModel,
    task: TrainTask,
    steps: _Optimization,
    config: TrainConfig,
    epoch: int,
    *,
    total_epochs: int,
    progress: bool,
    limit: int,
) -> _EpochWork:
    """Train the first ``limit`` batches of an epoch; return its losses and work."""
    technique = get_technique(config.technique)
    _seed_dropout(model, config.seed * 100_003 + epoch)
    batches = _batches(technique, task.lengths, config, epoch, shuffle=True)[:limit]
    _, world = _rank_and_world()
    model.train()
    work = _EpochWork()
    bar = tqdm(batches, desc=f"epoch {epoch + 1}/{total_epochs}", leave=False, disable=not progress)
    for number, indices in enumerate(bar):
        start = time.perf_counter()
        steps.optimizer.zero_grad(set_to_none=True)
        batch = task.batch_loss(model, indices)
        value = float(batch.loss.detach())  # the one host read of the loss per step
        _check_finite(
            value, config, device=batch.loss.device, epoch=epoch, batch=number, world=world
        )
        batch.loss.backward()  # type: ignore[no-untyped-call]
        _average_gradients(model, world)
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        steps.optimizer.step()
        steps.scheduler.step()
        work.busy += time.perf_counter() - start
        work.losses.append(value)
        work.real += batch.real_steps
        work.computed += batch.computed_steps
        if progress:
            bar.set_postfix(loss=f"{np.mean(work.losses):.4f}")
    return work


def evaluate(
    model: SequenceModel,
    x: Ragged | StoredRagged,
    y: np.ndarray,
    *,
    technique: str = "bucket",
    batch_size: int = 256,
    length_grid: LengthGrid | None = DEFAULT_GRID,
) -> tuple[float, float]:
    """Return ``(loss, metric)`` on ``(x, y)``: accuracy for classification, MAE for regression.

    Args:
        model: The model.
        x: ``B`` sequences ``(T_i, F)``, in memory or in a store.
        y: ``(B,)`` class ids or ``(B, K)`` targets.
        technique: How to batch (any exact technique gives the same numbers).
        batch_size: Sequences per batch.
        length_grid: Pad batches up to this grid's lengths (see :func:`predict_scores`).

    Returns:
        The mean loss and the metric.
    """
    scores = predict_scores(
        model, x, technique=technique, batch_size=batch_size, length_grid=length_grid
    )
    targets = torch.as_tensor(
        y, dtype=torch.int64 if model.config.task == "classification" else torch.float32
    )
    loss = float(_loss(model, scores, targets))
    if model.config.task == "classification":
        return loss, float((scores.argmax(dim=1) == targets).double().mean()) if len(
            y
        ) else math.nan
    return loss, float((scores - targets.reshape(scores.shape)).abs().mean())


def predict_scores(
    model: SequenceModel,
    x: Ragged | StoredRagged,
    *,
    technique: str = "bucket",
    batch_size: int = 256,
    length_grid: LengthGrid | None = DEFAULT_GRID,
) -> Tensor:
    """Return ``(B, output_size)`` scores for every sequence, in input order, on the CPU.

    Args:
        model: The model.
        x: ``B`` sequences ``(T_i, F)`` of any lengths, in memory or in a store (read a
            batch at a time: only the scores are held for every sequence).
        technique: How to batch; ``bucket`` sorts by length so little is padded.
        batch_size: Sequences per batch.
        length_grid: Pad each batch's ``T`` up to a length of this grid, fitted to the
            longest of ``x`` (:class:`~varlen.data.grid.LengthGrid`): the same scores with
            few distinct batch shapes. ``None``: pad to ``max(T_i)``.

    Returns:
        Logits (classification) or values (regression).
    """
    chosen = get_technique(technique)
    data = RaggedDataset(x)
    with error_context("predict_scores"):
        grid = fitted_grid(length_grid, x.lengths)
    order = np.argsort(x.lengths, kind="stable") if chosen.bucketed else np.arange(len(x))
    out = torch.zeros(len(x), model.config.output_size)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            indices = order[start : start + batch_size]
            step = chosen.run(model, data, indices, grid=grid)
            out[torch.from_numpy(indices)] = step.scores.float().cpu()
    return out


def predict(model: SequenceModel, x: Ragged | StoredRagged, *, batch_size: int = 256) -> np.ndarray:
    """Predict class ids (classification) or values (regression) for every sequence.

    Args:
        model: The model.
        x: ``B`` sequences ``(T_i, F)``, in memory or in a store.
        batch_size: Sequences per batch (batches are bucketed by length).

    Returns:
        ``(B,)`` int64 class ids, or ``(B, K)`` float values.
    """
    scores = predict_scores(model, x, batch_size=batch_size)
    if model.config.task == "classification":
        return scores.argmax(dim=1).numpy().astype(np.int64)
    return scores.numpy()


def _validate(
    model: SequenceModel, validation: tuple[Ragged | StoredRagged, np.ndarray], config: TrainConfig
) -> tuple[float, float]:
    """Return ``(loss, metric)`` on the validation data, batched like the technique trains.

    Every exact technique gives the same numbers, so they use ``bucket``; an inexact one must
    see batches (and pads) like those it was trained on.
    """
    grid = config.length_grid
    if get_technique(config.technique).exact:
        return evaluate(model, *validation, length_grid=grid)
    return evaluate(
        model,
        *validation,
        technique=config.technique,
        batch_size=config.batch_size,
        length_grid=grid,
    )


def _epochs(start: int, total: int, *, progress: bool) -> Any:
    """The epoch progress bar: a tqdm iterator over the remaining epoch numbers."""
    return tqdm(
        range(start, total), desc="training", initial=start, total=total, disable=not progress
    )


def _metric_name(model: SequenceModel) -> str:
    return "accuracy" if model.config.task == "classification" else "MAE"


def _postfix(stats: EpochStats, metric: str) -> dict[str, str]:
    """The epoch bar's summary of the last epoch: its losses and validation metric."""
    shown = {"loss": f"{stats.train_loss:.4f}"}
    if stats.val_loss is not None:
        shown["val_loss"] = f"{stats.val_loss:.4f}"
    if stats.val_metric is not None:
        shown[f"val_{metric}"] = f"{stats.val_metric:.4f}"
    return shown


def format_duration(seconds: float) -> str:
    """``75.2`` -> ``'1:15'``, ``4000`` -> ``'1:06:40'``.

    Args:
        seconds: A duration.

    Returns:
        ``[h:]mm:ss`` (minutes unpadded below an hour).
    """
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def epoch_line(stats: EpochStats, *, total: int, metric: str, elapsed: float) -> str:
    """One progress line for an epoch (for logs, where progress bars do not render).

    Args:
        stats: The epoch's statistics.
        total: The run's planned epochs.
        metric: Name of the validation metric (``"accuracy"`` or ``"MAE"``).
        elapsed: Seconds since the run started.

    Returns:
        e.g. ``epoch 3/40: loss 0.4120, validation loss 0.3900, validation accuracy 0.9000,
        elapsed 0:12, ETA 2:28``.
    """
    parts = [f"epoch {stats.epoch + 1}/{total}: loss {stats.train_loss:.4f}"]
    if stats.val_loss is not None:
        parts.append(f"validation loss {stats.val_loss:.4f}")
    if stats.val_metric is not None:
        parts.append(f"validation {metric} {stats.val_metric:.4f}")
    done = stats.epoch + 1
    eta = elapsed / max(done, 1) * max(total - done, 0)
    parts.append(f"elapsed {format_duration(elapsed)}, ETA {format_duration(eta)}")
    return ", ".join(parts)


def _lr_factor(config: TrainConfig, total_steps: int) -> Callable[[int], float]:
    """The learning rate's factor after ``step`` optimizer steps: warm-up, then the schedule."""
    warmup = config.warmup_steps

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.schedule == "constant":
            return 1.0
        done = (step - warmup) / max(total_steps - warmup, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))

    return factor


def planned_epochs(config: TrainConfig, batches_per_epoch: int) -> int:
    """The run's epochs: ``epochs``, or fewer to spend ``max_steps`` optimizer steps.

    The last one runs only the steps the budget has left (:func:`epoch_steps`).

    Args:
        config: How to train.
        batches_per_epoch: Optimizer steps per epoch.

    Returns:
        ``min(epochs, ceil(max_steps / batches_per_epoch))``, at least 1.
    """
    if config.max_steps is None:
        return config.epochs
    return max(1, min(config.epochs, -(-config.max_steps // max(batches_per_epoch, 1))))


def planned_steps(config: TrainConfig, batches_per_epoch: int) -> int:
    """The run's optimizer steps: ``epochs`` epochs' batches, at most ``max_steps``.

    Args:
        config: How to train.
        batches_per_epoch: Optimizer steps per epoch.

    Returns:
        ``min(max_steps, epochs * batches_per_epoch)`` (``max_steps`` ``None``: no bound).
    """
    whole = config.epochs * batches_per_epoch
    return whole if config.max_steps is None else min(config.max_steps, whole)


def epoch_steps(config: TrainConfig, batches_per_epoch: int, epoch: int) -> int:
    """The optimizer steps of epoch ``epoch``: all its batches, or what the budget has left.

    Every epoch before it ran whole, so this is a function of the epoch's number alone (a
    resumed run stops where an uninterrupted one does).

    Args:
        config: How to train.
        batches_per_epoch: Optimizer steps per whole epoch.
        epoch: The epoch, from 0.

    Returns:
        ``min(batches_per_epoch, max_steps - epoch * batches_per_epoch)``, at least 0.
    """
    left = planned_steps(config, batches_per_epoch) - epoch * batches_per_epoch
    return max(0, min(batches_per_epoch, left))


def _selection_key(
    stats: EpochStats, config: TrainConfig, *, higher: bool = True
) -> tuple[float, ...]:
    """What :func:`train` minimizes over epochs, every task: ``(loss,)`` or ``(metric, loss)``."""
    loss = stats.val_loss if stats.val_loss is not None else stats.train_loss
    if config.select == "loss" or stats.val_metric is None:
        return (loss,)
    return (-stats.val_metric if higher else stats.val_metric, loss)


def _is_better(stats: EpochStats, result: FitResult, config: TrainConfig, *, higher: bool) -> bool:
    """Whether the epoch of ``stats`` beats the best one so far (a NaN never does)."""
    key = _selection_key(stats, config, higher=higher)
    if not all(math.isfinite(value) for value in key):
        return False
    best = [s for s in result.history if s.epoch == result.best_epoch]
    return not best or key < _selection_key(best[0], config, higher=higher)


def _stale(result: FitResult, config: TrainConfig) -> int:
    """Epochs, or optimizer steps, since the best epoch."""
    after = [s for s in result.history if s.epoch > result.best_epoch]
    return len(after) if config.patience_unit == "epochs" else sum(s.steps for s in after)


def _should_stop(
    result: FitResult,
    config: TrainConfig,
    *,
    validation: bool,
    began: float | None,
    record: bool = True,
) -> bool:
    """Whether to stop before the next epoch (patience, or time); say why in ``result``.

    ``began`` is ``None`` before this call's first epoch: the time limit stops the run after
    an epoch, never before the first one.
    """
    early = config.patience is not None and validation and _stale(result, config) >= config.patience
    late = (
        config.time_limit is not None
        and began is not None
        and time.perf_counter() - began >= config.time_limit
    )
    if record:
        result.stopped_early = bool(early)
        result.stopped_by_time = bool(late and not early)
    return bool(early or late)


def _snapshot(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _restore(
    path: Path, model: SequenceModel, steps: _Optimization, result: FitResult
) -> tuple[int, dict[str, Tensor]]:
    """Load a checkpoint into the run; return the next epoch and the best weights so far."""
    saved = load_checkpoint(
        path, model=model, optimizer=steps.optimizer, scheduler=steps.scheduler, where=None
    )
    try:
        history = [EpochStats(**stats) for stats in saved.history]
    except TypeError as error:
        raise unfit(path, error, where=None) from None
    result.history, result.best_epoch = history, saved.best_epoch
    result.best_val_loss = saved.best_val_loss
    return saved.epoch + 1, saved.best_state


def fit(
    model: SequenceModel,
    x: Ragged | StoredRagged,
    y: np.ndarray,
    *,
    config: TrainConfig,
    validation: tuple[Ragged | StoredRagged, np.ndarray] | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    log_every: float = 0.0,
    checkpoint_every: float = 0.0,
) -> FitResult:
    """Train ``model`` on ``(x, y)``; keep the weights of the best validation epoch.

    Args:
        model: The model (trained in place).
        x: ``B`` training sequences ``(T_i, F)``, float32 and already normalized: a
            ``Ragged``, or a store's :class:`~varlen.data.io.store.StoredRagged` (normalized
            by its ``transform``), read a batch at a time so that memory does not grow with
            the data.
        y: ``(B,)`` class ids or ``(B, K)`` targets.
        config: How to train.
        validation: ``(x_val, y_val)`` for early stopping and model selection.
        checkpoint: File written atomically after each epoch (``None``: no checkpoints).
        resume: Continue from ``checkpoint`` if it exists.
        progress: Show progress bars (on rank 0).
        log: Called with one line per epoch (on rank 0), e.g. ``print`` to stderr where
            progress bars do not render.
        log_every: Seconds between two logged lines at least (the first and last epoch are
            always logged); 0 logs every epoch.
        checkpoint_every: Seconds between two checkpoints at least (the first and last epoch,
            and one that stops the run, are always saved); 0 saves every epoch. Many short
            epochs (few series) would otherwise spend most of their time writing checkpoints.

    Returns:
        The :class:`FitResult`.
    """
    return train(
        model,
        _SequenceTask(x, y, config, validation),
        config=config,
        checkpoint=checkpoint,
        resume=resume,
        progress=progress,
        log=log,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
    )


def train(
    model: SequenceModel,
    task: TrainTask,
    *,
    config: TrainConfig,
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    log_every: float = 0.0,
    checkpoint_every: float = 0.0,
) -> FitResult:
    """The training loop of every task: train ``model`` as ``task`` says; keep the best epoch.

    Each epoch seeds dropout from ``(seed, epoch)`` and takes batches that are a function of
    ``(seed, epoch)`` alone (this rank's share of them under ``torchrun``), so resuming from
    the checkpoint of epoch ``k`` gives the result of an uninterrupted run. Every
    :class:`TrainConfig` field means the same for every task. :func:`fit` and
    :func:`varlen.training.fit_steps` call it with their task.

    Args:
        model: The model (trained in place).
        task: The task's strategy (its batch loss and validation).
        config: How to train.
        checkpoint: File written atomically after each epoch (``None``: no checkpoints).
        resume: Continue from ``checkpoint`` if it exists.
        progress: Show progress bars (on rank 0).
        log: Called with one line per epoch (on rank 0).
        log_every: Seconds between two logged lines at least; 0 logs every epoch.
        checkpoint_every: Seconds between two checkpoints at least; 0 saves every epoch.

    Returns:
        The :class:`FitResult`.

    Raises:
        FloatingPointError: If the training loss stops being finite, or no epoch has a finite
            validation loss.
        ValueError: If ``checkpoint`` is damaged or does not fit the run.
    """
    with error_context(task.name):  # the task's public name (fit, fit_steps) starts its errors
        return _train(
            model,
            task,
            config=config,
            checkpoint=checkpoint,
            resume=resume,
            progress=progress,
            log=log,
            log_every=log_every,
            checkpoint_every=checkpoint_every,
        )


def _train(
    model: SequenceModel,
    task: TrainTask,
    *,
    config: TrainConfig,
    checkpoint: Path | None,
    resume: bool,
    progress: bool,
    log: Callable[[str], None] | None,
    log_every: float,
    checkpoint_every: float,
) -> FitResult:
    """:func:`train`'s work (its errors named by :func:`train`)."""
    rank, _ = _rank_and_world()
    progress = progress and rank == 0
    technique = get_technique(config.technique)
    per_epoch = len(_batches(technique, task.lengths, config, 0, shuffle=True))
    total = planned_epochs(config, per_epoch)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, foreach=True
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_factor(config, planned_steps(config, per_epoch))
    )
    steps = _Optimization(optimizer, scheduler)
    result = FitResult(planned_epochs=total)
    best_state = _snapshot(model)
    start = 0
    if resume and checkpoint is not None and checkpoint.exists():
        start, best_state = _restore(checkpoint, model, steps, result)
    metric = _metric_name(model)
    began = time.perf_counter() - sum(s.seconds for s in result.history)
    logged = saved = -math.inf
    started = time.perf_counter()  # the time limit counts this call only
    bar = _epochs(start, total, progress=progress)
    for epoch in bar:
        began_here = started if epoch > start else None
        if _should_stop(result, config, validation=task.has_validation, began=began_here):
            break
        epoch_start = time.perf_counter()
        work = _train_epoch(
            model,
            task,
            steps,
            config,
            epoch,
            total_epochs=total,
            progress=progress,
            limit=epoch_steps(config, per_epoch, epoch),
        )
        val = task.validate(model) if task.has_validation else (None, None)
        stats = work.stats(epoch, val, time.perf_counter() - epoch_start)
        if _is_better(stats, result, config, higher=model.config.task == "classification"):
            result.best_val_loss, result.best_epoch = _selection_key(stats, config)[-1], epoch
            best_state = _snapshot(model)
        result.history.append(stats)
        if progress:
            bar.set_postfix(_postfix(stats, metric))
        now = time.perf_counter()
        if (
            log is not None
            and rank == 0
            and (now - logged >= log_every or epoch in (start, total - 1))
        ):
            log(epoch_line(stats, total=total, metric=metric, elapsed=now - began))
            logged = now
        last = epoch == total - 1 or _should_stop(
            result, config, validation=task.has_validation, began=started, record=False
        )
        if (
            checkpoint is not None
            and rank == 0
            and (now - saved >= checkpoint_every or epoch == start or last)
        ):
            state = Checkpoint(
                epoch,
                best_state,
                [asdict(stats) for stats in result.history],
                result.best_epoch,
                result.best_val_loss,
            )
            save_checkpoint(
                checkpoint, state, model=model, optimizer=optimizer, scheduler=scheduler
            )
            saved = time.perf_counter()
    result.seconds = time.perf_counter() - began
    if result.history and result.best_epoch < 0:
        raise FloatingPointError(
            f"{task.name}: the validation loss must be finite in at least one epoch, got "
            f"{[s.val_loss for s in result.history]}: the model gives NaN or infinite outputs "
            "on the validation data. Check it for extreme values."
        )
    model.load_state_dict(best_state)
    return result


def time_task(
    model: SequenceModel,
    task: TrainTask,
    config: TrainConfig,
    *,
    batches: int = 3,
    clock: Callable[[], float] = time.process_time,
) -> Timing:
    """Time forward and backward passes of a task's first training batches.

    One warm-up batch runs first; the weights do not change (no optimizer step; gradients are
    cleared). The clock is CPU time by default, so what is planned from it does not depend on
    other processes sharing the machine.

    Args:
        model: The model to train.
        task: The task (its batch loss).
        config: How it will train (technique, batch size, seed).
        batches: Timed batches.
        clock: Seconds.

    Returns:
        The :class:`~varlen.training.techniques.Timing` of the timed batches.
    """
    chosen = _batches(get_technique(config.technique), task.lengths, config, 0, shuffle=True)
    chosen = chosen[: batches + 1]
    was_training = model.training
    model.train()
    real, seconds, count = 0, 0.0, 0
    for number, indices in enumerate(chosen):
        start = clock()
        batch = task.batch_loss(model, indices)
        batch.loss.backward()  # type: ignore[no-untyped-call]
        model.zero_grad(set_to_none=True)
        if number == 0:
            continue  # the warm-up batch
        real += batch.real_steps
        seconds += clock() - start
        count += 1
    model.train(was_training)
    return Timing(real, seconds, count)
