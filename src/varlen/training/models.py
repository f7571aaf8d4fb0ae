"""A small model family: [masked conv front-end ->] varlen LSTM/GRU -> pooling -> head.

With a convolutional front-end (``conv_channels``), the model is LSTM-FCN style: the recurrent
layer reads the convolutions' outputs, and the head reads the recurrent layer's pooled output
beside the convolutions' mean over real steps. Every part is exact under padding.

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
from varlen.nn.conv import ConvFrontEnd, series_standardize
from varlen.nn.recurrent import GRU, LSTM, LSTMState, Method

__all__ = [
    "Cell",
    "ModelConfig",
    "Pooling",
    "SequenceClassifier",
    "SequenceModel",
    "SequenceRegressor",
    "Task",
    "real_steps",
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
        conv_channels: Output channels of each masked convolution of a front-end
            (:class:`varlen.nn.ConvFrontEnd`); ``()`` for none.
        conv_kernels: Odd kernel size of each convolution (as many as ``conv_channels``).
        conv_pools: Factor of the exact max pooling ending each convolution's block
            (:func:`varlen.nn.masked_max_pool`; 1: none), as many as ``conv_channels``, or
            ``()`` for none: the recurrent layer then reads ``ceil(T_i / prod)`` steps, which
            makes long series cheaper and widens what each recurrent step sees.
        series_norm: Append each feature standardized by its own sequence's mean and std
            (:func:`varlen.nn.series_standardize`), so ``F`` inputs become ``2 F``: series
            from disparate sources differ in gain and offset.
        levels: With ``series_norm``, feed the values themselves too (their level: offset and
            gain); ``False`` feeds only their per-sequence standardized view, so ``F`` inputs
            stay ``F`` and nothing the model sees depends on a sequence's offset or gain.
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
    conv_channels: tuple[int, ...] = ()
    conv_kernels: tuple[int, ...] = ()
    conv_pools: tuple[int, ...] = ()
    series_norm: bool = False
    levels: bool = True
    per_step: bool = False
    horizon: int = 0

    def __post_init__(self) -> None:
        where = "ModelConfig"
        object.__setattr__(self, "conv_channels", tuple(self.conv_channels))
        object.__setattr__(self, "conv_kernels", tuple(self.conv_kernels))
        object.__setattr__(self, "conv_pools", tuple(self.conv_pools))
        if len(self.conv_channels) != len(self.conv_kernels):
            raise ValueError(
                f"{where}: conv_kernels must give one kernel size per conv_channels entry, got "
                f"{list(self.conv_kernels)} for {list(self.conv_channels)}."
            )
        self._check_pools()
        for c in self.conv_channels:
            if isinstance(c, bool) or not isinstance(c, int) or c < 1:
                raise ValueError(f"{where}: conv_channels must be ints >= 1, got {c!r}.")
        for k in self.conv_kernels:
            if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
                raise ValueError(f"{where}: conv_kernels must be odd ints >= 1, got {k!r}.")
        check_choice(where, "task", self.task, _TASKS)
        check_choice(where, "cell", self.cell, _CELLS)
        check_choice(where, "pooling", self.pooling, _POOLINGS)
        for name in ("input_size", "output_size", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{where}: {name} must be an int >= 1, got {value!r}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{where}: dropout must be in [0, 1), got {self.dropout!r}.")
        if not self.levels and not self.series_norm:
            raise ValueError(
                f"{where}: levels=False feeds only the per-sequence standardized view, which "
                "needs series_norm=True, got series_norm=False. Set series_norm=True, or "
                "levels=True."
            )
        self._check_per_step()

    @property
    def input_width(self) -> int:
        """Features the first layer reads: ``2 F`` (levels and standardized view), else ``F``."""
        return self.input_size * (2 if self.series_norm and self.levels else 1)

    def _check_pools(self) -> None:
        where = "ModelConfig"
        if self.conv_pools and len(self.conv_pools) != len(self.conv_channels):
            raise ValueError(
                f"{where}: conv_pools must give one factor per conv_channels entry (or none), "
                f"got {list(self.conv_pools)} for {list(self.conv_channels)}."
            )
        for p in self.conv_pools:
            if isinstance(p, bool) or not isinstance(p, int) or p < 1:
                raise ValueError(f"{where}: conv_pools must be ints >= 1, got {p!r}.")

    def _check_per_step(self) -> None:
        where = "ModelConfig"
        horizon = self.horizon
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 0:
            raise ValueError(f"{where}: horizon must be an int >= 0, got {horizon!r}.")
        channels: tuple[int, ...] = tuple(getattr(self, "conv_channels", ()))
        if horizon and channels:
            raise ValueError(
                f"{where}: a forecaster (horizon={horizon}) takes no convolutional front-end, "
                f"got conv_channels={channels!r}: 'same' convolutions read the later steps it "
                "forecasts. Leave conv_channels empty."
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
        data = dict(data)
        for key in ("conv_channels", "conv_kernels", "conv_pools"):
            if key in data and isinstance(data[key], list):
                data[key] = tuple(data[key])
        return cls(**data)


def real_steps(lengths: Tensor, T: int, *, padding: Padding) -> Tensor:
    """``(B, T)`` bool, True at each row's real steps; no host read, so exports stay dynamic.

    Args:
        lengths: ``(B,)`` real lengths, ``0 <= lengths <= T`` (not checked: the caller's
            layer has checked them).
        T: The padded length.
        padding: Side of the padding.

    Returns:
        The mask, on the device of ``lengths``.
    """
    steps = torch.arange(T, device=lengths.device)[None, :]
    first = (T - lengths)[:, None] if padding == "pre" else torch.zeros_like(lengths)[:, None]
    return (steps >= first) & (steps < first + lengths[:, None])


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
        self.front: ConvFrontEnd | None = None
        rnn_input = config.input_width
        if config.conv_channels:
            self.front = ConvFrontEnd(
                rnn_input,
                config.conv_channels,
                config.conv_kernels,
                pools=config.conv_pools or None,
            )
            rnn_input = self.front.out_features
        self.rnn = rnn_class(
            rnn_input,
            config.hidden_size,
            config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            bidirectional=config.bidirectional,
            method=config.method,
        )
        directions = 2 if config.bidirectional else 1
        self.head = nn.Sequential(
            nn.Dropout(config.dropout),
            nn.Linear(
                directions * config.hidden_size
                + (0 if config.per_step else (config.conv_channels or (0,))[-1]),
                config.output_size,
            ),
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
            model (zero at padded steps).
        """
        if self.config.per_step:
            return self.steps(x, lengths, padding=padding)
        scores: Tensor = self.head(self.features(x, lengths, padding=padding))
        return scores

    def steps(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        *,
        padding: Padding = "post",
        method: Method | None = None,
    ) -> Tensor:
        """A per-step model's outputs at every step.

        Args:
            x: ``(B, T, F)`` padded batch.
            lengths: ``(B,)`` real lengths; ``None`` treats every step as real.
            padding: Side of the padding.
            method: The recurrent layers' method for this call (``None``: the layer's own).

        Returns:
            ``(B, T, output_size)``, zero at padded steps.
        """
        if lengths is not None and (self.config.series_norm or self.front is not None):
            lengths = lengths.to(x.device)
        x = self.inputs(x, lengths, padding=padding)
        if self.front is not None:
            x = self.front(x, lengths, padding=padding)
        out, _ = self.rnn(x, lengths, padding=padding, method=method)
        steps: Tensor = self.head(out)
        if lengths is None:
            return steps
        # the head writes its bias at pads: zero them, so outputs never depend on padding
        real = real_steps(lengths.to(steps.device), steps.shape[1], padding=padding)
        return steps.masked_fill(~real[:, :, None], 0.0)

    def features(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        *,
        padding: Padding = "post",
        method: Method | None = None,
    ) -> Tensor:
        """The head's input: pooled recurrent outputs (and pooled convolutions, if any).

        Args:
            x: ``(B, T, F)`` padded batch.
            lengths: ``(B,)`` real lengths; ``None`` treats every step as real.
            padding: Side of the padding.
            method: The recurrent layers' method for this call (``None``: the layer's own).

        Returns:
            ``(B, D * H [+ C_k])``.
        """
        if self.config.series_norm:
            x = self.inputs(x, lengths, padding=padding)
        if self.front is None:
            out, state = self.rnn(x, lengths, padding=padding, method=method)
            return self.pool(out, state, lengths, padding=padding)
        if lengths is not None:
            lengths = lengths.to(x.device)
        conv = self.front(x, lengths, padding=padding)  # (B, ceil(T / factor), C_k)
        if lengths is not None:
            lengths = self.front.out_lengths(lengths)
        out, state = self.rnn(conv, lengths, padding=padding, method=method)
        return self.combine(self.pool(out, state, lengths, padding=padding), conv, lengths)

    def inputs(
        self, x: Tensor, lengths: Tensor | None = None, *, padding: Padding = "post"
    ) -> Tensor:
        """The recurrent (or convolutional) input: ``x``, beside its per-sequence standardized view.

        Args:
            x: ``(B, T, F)`` padded batch.
            lengths: ``(B,)`` real lengths; ``None`` treats every step as real.
            padding: Side of the padding.

        Returns:
            ``(B, T, 2 F)`` with ``series_norm``, ``(B, T, F)`` standardized without
            ``levels``, else ``x``.
        """
        if not self.config.series_norm:
            return x
        if lengths is not None:
            lengths = lengths.to(x.device)
        standardized = series_standardize(x, lengths, padding=padding)
        if not self.config.levels:
            return standardized
        return torch.cat([x, standardized], dim=2)

    def combine(self, pooled: Tensor, conv: Tensor, lengths: Tensor | None) -> Tensor:
        """Append the convolutions' mean over real steps to the pooled recurrent output.

        Args:
            pooled: ``(B, D * H)``.
            conv: ``(B, T', C_k)`` front-end outputs, zero at padded steps.
            lengths: ``(B,)`` their real lengths, or ``None`` (all real).

        Returns:
            ``(B, D * H + C_k)``.
        """
        T = conv.shape[1]
        if lengths is None:
            mean = conv.mean(dim=1) if T else conv.sum(dim=1)
        else:
            mean = conv.sum(dim=1) / lengths.clamp(min=1)[:, None].to(conv.dtype)
        return torch.cat([pooled, mean], dim=1)

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
        real = real_steps(lengths, T, padding=padding)[:, :, None]
        if self.config.pooling == "mean":
            total = out.sum(dim=1)  # pads are exactly zero
            return total / lengths.clamp(min=1)[:, None].to(out.dtype)
        if T == 0:  # every sequence empty (a batch of length-0 ones): amax has nothing to reduce
            return out.new_zeros(B, out.shape[2])
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
