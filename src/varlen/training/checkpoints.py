"""Training checkpoints: what the training loop writes after an epoch and reads back on resume.

A checkpoint holds only tensors and plain values (so it loads with
``torch.load(..., weights_only=True)``): the epoch it ends, the model's, optimizer's and
schedule's states, the best weights so far, the history of epochs as plain dicts, and the
best epoch and its loss. It is written atomically by :mod:`varlen._atomic` (a temporary file,
synced, then renamed), so a run killed while writing leaves the previous checkpoint whole; a
damaged or foreign file is one clear error naming it, never a suggestion to load it unsafely.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from varlen._atomic import atomic_open
from varlen._checks import placed
from varlen.training.artifacts import load_tensors

__all__ = ["CHECKPOINT_KEYS", "Checkpoint", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_KEYS = (
    "epoch",
    "model",
    "optimizer",
    "scheduler",
    "best_state",
    "history",
    "best_epoch",
    "best_val_loss",
)
"""The keys of a checkpoint file, all required."""


@dataclass(frozen=True)
class Checkpoint:
    """A run's state at the end of an epoch, besides the states loaded into its objects.

    Args:
        epoch: The epoch the checkpoint ends (counted from 0).
        best_state: The best weights so far (a ``state_dict``).
        history: One plain dict per finished epoch.
        best_epoch: The best epoch so far (-1: none).
        best_val_loss: Its loss.
    """

    epoch: int
    best_state: dict[str, Tensor]
    history: list[dict[str, Any]]
    best_epoch: int
    best_val_loss: float


def save_checkpoint(
    path: Path,
    checkpoint: Checkpoint,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> None:
    """Write ``checkpoint`` and the states of the model, optimizer and schedule atomically.

    Args:
        path: The checkpoint file (its folder is made if needed).
        checkpoint: The run's state.
        model: The model.
        optimizer: The optimizer.
        scheduler: The learning-rate schedule.
    """
    payload = {
        "epoch": checkpoint.epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "best_state": checkpoint.best_state,
        "history": checkpoint.history,
        "best_epoch": checkpoint.best_epoch,
        "best_val_loss": checkpoint.best_val_loss,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as file:
        torch.save(payload, file)


def load_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    where: str | None = "fit",
) -> Checkpoint:
    """Load a checkpoint into the model, optimizer and schedule; return the rest.

    Args:
        path: The checkpoint file.
        model: The model (its weights are replaced).
        optimizer: The optimizer (its state is replaced).
        scheduler: The schedule (its state is replaced).
        where: The operation's name, for errors (``None``: named by the enclosing
            :class:`~varlen._checks.error_context`, as the training loop does).

    Returns:
        The :class:`Checkpoint`.

    Raises:
        ValueError: One line naming the file if it is truncated, damaged, holds a pickle
            payload, or does not fit the model and optimizer.
    """
    state = load_tensors(path, where=where)
    if not isinstance(state, dict) or set(state) != set(CHECKPOINT_KEYS):
        got = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise placed(
            where,
            ValueError(
                f"checkpoint {os.fspath(path)!r} must hold the keys "
                f"{list(CHECKPOINT_KEYS)}, got {got}; delete it or rerun without --resume."
            ),
        )
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = [dict(stats) for stats in state["history"]]
        best_state = dict(state["best_state"])
        if set(best_state) != set(model.state_dict()):
            raise KeyError("best_state must hold the model's tensors")
        epoch, best_epoch = int(state["epoch"]), int(state["best_epoch"])
        best_val_loss = float(state["best_val_loss"])
    except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise unfit(path, error, where=where) from None
    return Checkpoint(epoch, best_state, history, best_epoch, best_val_loss)


def unfit(path: Path, error: BaseException, *, where: str | None = "fit") -> ValueError:
    """The error for a checkpoint that does not fit the run resuming it.

    Args:
        path: The checkpoint file.
        error: What failed.
        where: The operation's name (``None``: see :func:`load_checkpoint`).

    Returns:
        A one-line ``ValueError`` naming the file.
    """
    message = " ".join(str(error).split())[:200]
    return placed(
        where,
        ValueError(
            f"checkpoint {os.fspath(path)!r} must fit this model and optimizer, got "
            f"{message}; delete it or rerun without --resume."
        ),
    )
