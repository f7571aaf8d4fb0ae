"""A small model family: linear input -> varlen LSTM/GRU -> pooling over real steps -> head.

:class:`SequenceClassifier` and :class:`SequenceRegressor` are plain ``nn.Module``s that users
can train in their own loop; :func:`varlen.training.fit` and the CLI train them too. Their
whole configuration is a :class:`ModelConfig`, a frozen dataclass that round-trips through
JSON, so a saved model directory holds no pickled code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, TypeAlias

import torch
from torch import Tensor, nn

from varlen._checks import check_choice
from varlen._types import Padding
from varlen.nn.recurrent import GRU, LSTM, LSTMState, Method

__all__ = [
    "Cell",
    "ModelConfig",
    "Pooling",
    "SequenceClassifier",
    "SequenceModel",
    "SequenceRegressor",
    "Task",
]

Task: TypeAlias = Literal["classification", "regression"]
Cell: TypeAlias = Literal["lstm", "gru"]
Pooling: TypeAlias = Literal["last", "mean", "max"]
_TASKS: tuple[Task, ...] = ("classification", "regression")
_CELLS: tuple[Cell, ...] = ("lstm", "gru")
_POOLINGS: tuple[Pooling, ...] = ("last", "mean", "max")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a :class:`SequenceModel`.

    Args:
        input_size: ``F``, features per step.
        output_size: Classes (classification) or targets per sequence (regression).
        task: ``"classification"`` (logits) or ``"regression"`` (values).
        cell: ``"lstm"`` or ``"gru"``.
        hidden_size: ``H``.
        num_layers: ``L``.
        bidirectional: ``D = 2`` if True.
        dropout: Dropout between recurrent layers and before the head.
        pooling: ``"last"`` (the final state: last real step, and first for the backward
            direction), ``"mean"`` or ``"max"`` over real steps.
        method: The recurrent layers' method (see :class:`varlen.nn.LSTM`).
        per_step: One output per step ``(B, T, output_size)`` instead of per sequence
            (``pooling`` is then unused); see :mod:`varlen.training.per_step`.
        horizon: Per-step models only: the step ``t`` output predicts the target of step
            ``t + horizon`` (0: labels each step; 1: a next-step forecaster). A forecaster
            (``horizon >= 1``) must be causal, so it cannot be bidirectional.
    """

    input_size: int
    output_size: int
    task: Task = "classification"
    cell: Cell = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    pooling: Pooling = "last"
    method: Method = "auto"
    per_step: bool = False
    horizon: int = 0

    def __post_init__(self) -> None:
        where = "ModelConfig"
        check_choice(where, "task", self.task, _TASKS)
        check_choice(where, "cell", self.cell, _CELLS)
        check_choice(where, "pooling", self.pooling, _POOLINGS)
        for name in ("input_size", "output_size", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{where}: {name} must be an int >= 1, got {value!r}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{where}: dropout must be in [0, 1), got {self.dropout!r}.")
        self._check_per_step()

    def _check_per_step(self) -> None:
        where = "ModelConfig"
        horizon = self.horizon
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 0:
            raise ValueError(f"{where}: horizon must be an int >= 0, got {horizon!r}.")
        channels: tuple[int, ...] = tuple(getattr(self, "conv_channels", ()))
        if self.per_step and channels:
            raise ValueError(
                f"{where}: a per-step model takes no convolutional front-end, got "
                f"conv_channels={channels!r}: 'same' convolutions read later steps. Leave "
                "conv_channels empty."
            )
        if horizon and not self.per_step:
            raise ValueError(f"{where}: horizon applies to per-step models, got per_step=False.")
        if horizon and self.bidirectional:
            raise ValueError(
                f"{where}: a forecaster (horizon={horizon}) must be causal, got "
                "bidirectional=True: the backward direction would read the very steps it "
                "forecasts. Use bidirectional=False (labelling, horizon=0, may be bidirectional)."
            )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are an error.

        Args:
            data: The dict.

        Returns:
            The config.

        Raises:
            ValueError: If a key is unknown.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"ModelConfig: keys must be among {sorted(known)}, got {unknown}.")
        return cls(**data)


class SequenceModel(nn.Module):
    """Linear input -> varlen LSTM/GRU -> pooling over real steps -> dropout -> linear head.

    Args:
        config: The model's configuration.

    Example:
        >>> model = SequenceModel(ModelConfig(input_size=3, output_size=4))
        >>> model(torch.randn(2, 5, 3), torch.tensor([5, 2])).shape  # (B, output_size)
        torch.Size([2, 4])
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        rnn_class = LSTM if config.cell == "lstm" else GRU
        self.rnn = rnn_class(
            config.input_size,
            config.hidden_size,
            config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            bidirectional=config.bidirectional,
            method=config.method,
        )
        directions = 2 if config.bidirectional else 1
        self.head = nn.Sequential(
            nn.Dropout(config.dropout),
            nn.Linear(directions * config.hidden_size, config.output_size),
        )

    @property
    def device(self) -> torch.device:
        """The device of the parameters."""
        device: torch.device = self.rnn.all_weights[0][0].device
        return device

    @property
    def num_directions(self) -> int:
        """``D``: 2 for a bidirectional model, else 1."""
        return 2 if self.config.bidirectional else 1

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, *, padding: Padding = "post"
    ) -> Tensor:
        """Score each sequence from its real steps only.

        Args:
            x: ``(B, T, F)`` padded batch (or a batch object, see :class:`varlen.nn.LSTM`).
            lengths: ``(B,)`` real lengths; ``None`` treats every step as real.
            padding: Side of the padding.

        Returns:
            ``(B, output_size)`` logits or values; ``(B, T, output_size)`` for a per-step
            model (arbitrary at padded steps).
        """
        out, state = self.rnn(x, lengths, padding=padding)
        if self.config.per_step:
            steps: Tensor = self.head(out)
            return steps
        scores: Tensor = self.head(self.pool(out, state, lengths, padding=padding))
        return scores

    def final_hidden(self, state: Tensor | LSTMState) -> Tensor:
        """Return the last layer's final ``h`` of every direction, ``(B, D * H)``."""
        h = state.h if isinstance(state, LSTMState) else state
        last = h[-self.num_directions :]  # (D, B, H)
        return last.permute(1, 0, 2).reshape(h.shape[1], -1)

    def pool(
        self,
        out: Tensor,
        state: Tensor | LSTMState,
        lengths: Tensor | None,
        *,
        padding: Padding = "post",
    ) -> Tensor:
        """Pool recurrent outputs ``(B, T, D * H)`` over real steps into ``(B, D * H)``.

        Args:
            out: ``(B, T, D * H)`` outputs, zero at padded steps.
            state: The final state the layer returned.
            lengths: ``(B,)`` real lengths, or ``None`` when every step is real.
            padding: Side of the padding.

        Returns:
            ``(B, D * H)``; zeros for length-0 sequences with mean/max pooling.
        """
        if self.config.pooling == "last":
            return self.final_hidden(state)
        B, T, _ = out.shape
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.int64, device=out.device)
        steps = torch.arange(T, device=out.device)[None, :]
        first = (T - lengths)[:, None] if padding == "pre" else torch.zeros_like(lengths)[:, None]
        real = ((steps >= first) & (steps < first + lengths[:, None]))[:, :, None]
        if self.config.pooling == "mean":
            total = out.sum(dim=1)  # pads are exactly zero
            return total / lengths.clamp(min=1)[:, None].to(out.dtype)
        lowest = torch.finfo(out.dtype).min
        peak = torch.where(real, out, torch.full((), lowest, dtype=out.dtype, device=out.device))
        return torch.where((lengths > 0)[:, None], peak.amax(dim=1), torch.zeros_like(peak[:, 0]))


class SequenceClassifier(SequenceModel):
    """A :class:`SequenceModel` that returns class logits.

    Args:
        input_size: ``F``, features per step.
        num_classes: Number of classes.
        **options: Other :class:`ModelConfig` fields (``hidden_size``, ``cell``, ...).
    """

    def __init__(self, input_size: int, num_classes: int, **options: Any) -> None:
        super().__init__(ModelConfig(input_size, num_classes, task="classification", **options))


class SequenceRegressor(SequenceModel):
    """A :class:`SequenceModel` that returns ``output_size`` values per sequence.

    Args:
        input_size: ``F``, features per step.
        output_size: Targets per sequence.
        **options: Other :class:`ModelConfig` fields.
    """

    def __init__(self, input_size: int, output_size: int = 1, **options: Any) -> None:
        super().__init__(ModelConfig(input_size, output_size, task="regression", **options))
