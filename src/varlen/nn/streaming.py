"""Streaming with explicit state: chunks of any size, many concurrent streams, exact results.

A unidirectional recurrent layer can read a sequence piece by piece: run a chunk, keep the
final state, start the next chunk from it. varlen makes the carried state an explicit value,
:class:`StreamState`, that goes into :meth:`StreamingRNN.forward` and comes out of it, so
nothing is hidden in the module (no ``stateful=True``). Because ``varlen.nn.LSTM``/``GRU``
give every row exactly the result it gives alone, and a row of length 0 keeps its state,
feeding a sequence in chunks of any sizes (0 included) gives the same outputs and final state
as feeding it whole, whatever the chunk sizes of the other streams in the batch.

- :class:`StreamState`: ``h`` (and ``c`` for an LSTM) of ``B`` streams; select, assign,
  reset, detach, move and save rows without touching the original.
- :class:`StreamingRNN`: ``forward(chunk, lengths, state) -> (output, state)``.
- :class:`StreamPool`: streams named by arbitrary ids that join and finish at any time; each
  :meth:`StreamPool.step` batches the chunks of all given streams into one padded call.
- :func:`run_one_at_a_time`: the slow, obviously correct reference (each sequence alone,
  fresh zero state), and why state must never be carried across independent sequences.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import torch
from torch import Tensor, nn

from varlen._checks import error_context, unplaced
from varlen._types import Padding
from varlen.data._flat import pad_flat
from varlen.nn._gates import input_weight
from varlen.nn._plans import capturing_graph
from varlen.nn.recurrent import GRU, LSTM, LSTMState

__all__ = ["StreamPool", "StreamState", "StreamingRNN", "reset_state", "run_one_at_a_time"]


def _check_state_tensors(h: Any, c: Any) -> None:
    """Check that ``h (L, B, H_out)`` and the optional ``c (L, B, H)`` form one state."""
    if not isinstance(h, Tensor):
        raise unplaced(TypeError(f"h must be a Tensor (L, B, H_out), got {type(h).__name__}."))
    if h.ndim != 3:
        raise unplaced(ValueError(f"h must have shape (L, B, H_out), got {tuple(h.shape)}."))
    if c is None:
        return
    if not isinstance(c, Tensor):
        raise unplaced(TypeError(f"c must be a Tensor (L, B, H) or None, got {type(c).__name__}."))
    if c.ndim != 3 or c.shape[:2] != h.shape[:2]:
        raise unplaced(
            ValueError(
                f"c must have shape (L, B, H) with (L, B) = {tuple(h.shape[:2])} like h, "
                f"got {tuple(c.shape)}."
            )
        )
    if c.dtype != h.dtype or c.device != h.device:
        raise unplaced(
            TypeError(
                f"c must have the dtype and device of h, {h.dtype} on {h.device}, "
                f"got {c.dtype} on {c.device}."
            )
        )


def _row_index(indices: Any, B: int, device: torch.device) -> Tensor:
    """Turn row indices (ints, a bool mask or an int tensor) into an int64 tensor on ``device``."""
    index = torch.as_tensor(indices, device=device)
    if index.dtype == torch.bool:
        if index.shape != (B,):
            raise unplaced(
                ValueError(
                    f"a bool indices mask must have shape (B,) = ({B},), got {tuple(index.shape)}."
                )
            )
        return index.nonzero()[:, 0]
    if index.numel() == 0:
        return index.reshape(0).to(torch.int64)
    if index.dtype.is_floating_point or index.is_complex() or index.ndim != 1:
        raise unplaced(
            TypeError(
                "indices must be a 1-D sequence of ints or a (B,) bool mask, "
                f"got dtype {index.dtype} with shape {tuple(index.shape)}."
            )
        )
    return index.to(torch.int64)


@dataclass(frozen=True, eq=False)
class StreamState:
    """The carried state of ``B`` streams of a unidirectional recurrent layer, as a value.

    Row ``b`` of every tensor is stream ``b``. The layout is torch's with one direction:
    ``h (L, B, H_out)`` and, for an LSTM, ``c (L, B, H)`` (``c`` is ``None`` for a GRU).
    Every method returns a new state; the tensors of ``self`` are never modified.

    Args:
        h: ``(L, B, H_out)`` hidden state (``H_out = proj_size`` for a projected LSTM).
        c: ``(L, B, H)`` cell state of an LSTM, same dtype and device as ``h``; ``None``
            for a GRU.

    Raises:
        TypeError: If ``h`` or ``c`` is not a tensor, or ``c`` differs from ``h`` in dtype
            or device.
        ValueError: If ``h`` is not 3-D or ``c`` does not have ``h``'s ``(L, B)``.

    Example:
        >>> state = StreamState(torch.ones(2, 3, 4), torch.ones(2, 3, 5))  # L = 2, B = 3
        >>> len(state), state.select([2, 0]).h.shape  # (L, B, H_out) = (2, 2, 4)
        (3, torch.Size([2, 2, 4]))
        >>> state.reset(torch.tensor([True, False, False])).h[0, :, 0]  # stream 0 zeroed
        tensor([0., 1., 1.])
    """

    h: Tensor
    c: Tensor | None = None

    def __post_init__(self) -> None:
        with error_context("StreamState"):
            _check_state_tensors(self.h, self.c)

    @property
    def batch_size(self) -> int:
        """``B``, the number of streams."""
        return int(self.h.shape[1])

    @property
    def num_layers(self) -> int:
        """``L``, the number of layers."""
        return int(self.h.shape[0])

    def __len__(self) -> int:
        return self.batch_size

    def __repr__(self) -> str:
        c = "None" if self.c is None else str(tuple(self.c.shape))
        return (
            f"StreamState(h={tuple(self.h.shape)}, c={c}, dtype={self.h.dtype}, "
            f"device={self.h.device})"
        )

    def __getitem__(self, index: int | slice | Sequence[int] | Tensor) -> StreamState:
        """Return the streams at ``index``; an int gives a one-stream state (``B = 1``)."""
        if isinstance(index, slice):
            return self._map(lambda tensor: tensor[:, index])
        if isinstance(index, int | np.integer):
            position = int(index)
            if not -self.batch_size <= position < self.batch_size:
                raise IndexError(
                    f"StreamState: index must be in [{-self.batch_size}, {self.batch_size}), "
                    f"got {position}."
                )
            return self.select([position % self.batch_size])
        return self.select(index)

    def _map(self, function: Any) -> StreamState:
        return StreamState(function(self.h), None if self.c is None else function(self.c))

    def select(self, indices: Sequence[int] | Tensor) -> StreamState:
        """Gather streams by position.

        Args:
            indices: ``(K,)`` stream positions (any order, repeats allowed), or a ``(B,)``
                bool mask, True for the streams to keep.

        Returns:
            A state of ``K`` streams (``K`` may be 0).

        Raises:
            TypeError: If ``indices`` is not integer or bool.
            ValueError: If a bool mask is not ``(B,)``.
            IndexError: If an index is out of range.
        """
        with error_context("StreamState.select"):
            index = _row_index(indices, self.batch_size, self.h.device)
        return self._map(lambda tensor: tensor.index_select(1, index))

    def assign(self, indices: Sequence[int] | Tensor, other: StreamState) -> StreamState:
        """Return a copy whose streams at ``indices`` hold the streams of ``other``.

        The inverse of :meth:`select`: ``state.assign(i, state.select(i))`` equals ``state``.
        Gradients flow to both ``self`` (other rows) and ``other``.

        Args:
            indices: ``(K,)`` distinct stream positions, or a ``(B,)`` bool mask.
            other: A state of ``K`` streams with the layers and sizes of ``self``.

        Returns:
            A state of ``B`` streams.

        Raises:
            TypeError: If ``other`` is not a :class:`StreamState` or is of another cell kind.
            TypeError: If ``other`` has another dtype or device.
            ValueError: If ``other`` has other layers or sizes, or not ``K`` streams.
        """
        with error_context("StreamState.assign"):
            index = _row_index(indices, self.batch_size, self.h.device)
            if not isinstance(other, StreamState):
                raise unplaced(
                    TypeError(f"other must be a StreamState, got {type(other).__name__}.")
                )
            _check_compatible(self, other)
            if other.batch_size != index.shape[0]:
                raise unplaced(
                    ValueError(
                        f"other must hold K = {index.shape[0]} streams, one per index, "
                        f"got {other.batch_size}."
                    )
                )
            h = self.h.index_copy(1, index, other.h)
            c = None if self.c is None or other.c is None else self.c.index_copy(1, index, other.c)
            return StreamState(h, c)

    def reset(self, done: Tensor | Sequence[bool]) -> StreamState:
        """Zero the state of finished streams so that they start a new sequence.

        Args:
            done: ``(B,)`` bool, True for the streams to reset.

        Returns:
            A new state: rows with ``done`` zero, the others unchanged.

        Raises:
            TypeError: If ``done`` is not bool.
            ValueError: If ``done`` is not ``(B,)``.
        """
        with error_context("StreamState.reset"):
            mask = torch.as_tensor(done, device=self.h.device)
            if mask.dtype != torch.bool:
                raise unplaced(TypeError(f"done must be bool (True = reset), got {mask.dtype}."))
            if mask.shape != (self.batch_size,):
                raise unplaced(
                    ValueError(
                        f"done must have shape (B,) = ({self.batch_size},), "
                        f"got {tuple(mask.shape)}."
                    )
                )
            zero = torch.zeros((), dtype=self.h.dtype, device=self.h.device)
            return self._map(lambda tensor: torch.where(mask[None, :, None], zero, tensor))

    def detach(self) -> StreamState:
        """Return the same values cut from the autograd graph (for truncated BPTT)."""
        return self._map(Tensor.detach)

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> StreamState:
        """Return the state moved to ``device`` and/or cast to ``dtype``.

        Args:
            device: Target device; ``None`` keeps the current one.
            dtype: Target floating dtype; ``None`` keeps the current one.

        Returns:
            A new state (tensors already there are reused, as by :meth:`torch.Tensor.to`).
        """
        return self._map(lambda tensor: tensor.to(device=device, dtype=dtype))

    def state_dict(self) -> dict[str, Tensor]:
        """Return detached copies of the tensors, ``{"h": ..., "c": ...}``, for ``torch.save``.

        ``c`` is absent for a GRU. Restore with :meth:`from_state_dict`.
        """
        saved = {"h": self.h.detach().clone()}
        if self.c is not None:
            saved["c"] = self.c.detach().clone()
        return saved

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, Tensor]) -> StreamState:
        """Rebuild a state saved by :meth:`state_dict`.

        Args:
            state_dict: ``{"h": (L, B, H_out)}`` plus ``"c": (L, B, H)`` for an LSTM.

        Returns:
            The state.

        Raises:
            ValueError: If keys other than ``"h"`` and ``"c"`` are present or ``"h"`` is missing.
        """
        keys = set(state_dict)
        if "h" not in keys or not keys <= {"h", "c"}:
            raise ValueError(
                "StreamState.from_state_dict: state_dict must have key 'h' and optionally 'c', "
                f"got keys {sorted(keys)!r}."
            )
        return cls(state_dict["h"], state_dict.get("c"))

    def to_hx(self) -> LSTMState | Tensor:
        """Return the state as ``hx`` for ``varlen.nn.LSTM`` (``LSTMState``) or ``GRU`` (``h``)."""
        return self.h if self.c is None else LSTMState(self.h, self.c)

    @classmethod
    def from_hx(cls, hx: LSTMState | tuple[Tensor, Tensor] | Tensor) -> StreamState:
        """Build a state from a recurrent layer's state: ``(h, c)`` for an LSTM, ``h`` for a GRU.

        Args:
            hx: ``(h (L, B, H_out), c (L, B, H))`` or ``h (L, B, H)``.

        Returns:
            The state (the tensors are shared, not copied).
        """
        if isinstance(hx, Tensor):
            return cls(hx)
        h, c = hx
        return cls(h, c)

    @classmethod
    def _of_module(cls, hx: LSTMState | Tensor) -> StreamState:
        """:meth:`from_hx` for a state the wrapped module just returned, without the checks.

        A module's final state is valid by construction (run once per streamed step: the
        checks cost a tenth of a small layer's step).
        """
        state = object.__new__(cls)
        h, c = (hx, None) if isinstance(hx, Tensor) else hx
        object.__setattr__(state, "h", h)
        object.__setattr__(state, "c", c)
        return state

    @classmethod
    def concatenate(cls, states: Sequence[StreamState]) -> StreamState:
        """Join the streams of several states, in order.

        Args:
            states: ``>= 1`` states of the same cell kind, layers and sizes.

        Returns:
            A state of ``sum(len(s) for s in states)`` streams.

        Raises:
            ValueError: If ``states`` is empty or the states differ in layers or sizes.
            TypeError: If the states mix LSTM and GRU states, dtypes or devices.
        """
        with error_context("StreamState.concatenate"):
            if not states:
                raise unplaced(ValueError("states must hold at least one state, got none."))
            first = states[0]
            for state in states[1:]:
                _check_compatible(first, state)
            h = torch.cat([state.h for state in states], dim=1)
            cs = [state.c for state in states if state.c is not None]
            return cls(h, torch.cat(cs, dim=1) if cs else None)


def _check_compatible(ours: StreamState, theirs: StreamState) -> None:
    """Check that two states have one cell kind, dtype, device and ``(L, H_out, H)``."""
    if (ours.c is None) != (theirs.c is None):
        kinds = {True: "a GRU state (no c)", False: "an LSTM state (h, c)"}
        raise unplaced(
            TypeError(
                f"states must be of one cell kind, got {kinds[ours.c is None]} and "
                f"{kinds[theirs.c is None]}."
            )
        )
    if (ours.h.dtype, ours.h.device) != (theirs.h.dtype, theirs.h.device):
        raise unplaced(
            TypeError(
                f"states must share dtype and device, got {ours.h.dtype} on "
                f"{ours.h.device} and {theirs.h.dtype} on {theirs.h.device}."
            )
        )
    if _sizes(ours) != _sizes(theirs):
        raise unplaced(
            ValueError(
                f"states must have the same (L, H_out, H), got {_sizes(ours)} and {_sizes(theirs)}."
            )
        )


def _sizes(state: StreamState) -> tuple[int, ...]:
    """``(L, H_out)``, plus ``H`` for an LSTM state."""
    L, _, H_out = state.h.shape
    return (L, H_out) if state.c is None else (L, H_out, state.c.shape[2])


def reset_state(state: StreamState, done: Tensor | Sequence[bool]) -> StreamState:
    """Zero the rows of finished streams; the functional form of :meth:`StreamState.reset`.

    Args:
        state: The current state of ``B`` streams.
        done: ``(B,)`` bool, True for the streams that start a new sequence.

    Returns:
        A new state; ``state`` is unchanged.

    Example:
        >>> state = StreamState(torch.ones(1, 2, 3))  # GRU state, L = 1, B = 2
        >>> reset_state(state, torch.tensor([False, True])).h[0, :, 0]
        tensor([1., 0.])
    """
    return state.reset(done)


def _check_module(module: Any, *, streaming: bool) -> LSTM | GRU:
    if not isinstance(module, LSTM | GRU):
        raise unplaced(
            TypeError(
                "module must be a varlen.nn.LSTM or varlen.nn.GRU, "
                f"got {type(module).__name__}. Build it with varlen.nn.LSTM(...); a torch.nn.LSTM "
                "state dict loads unchanged."
            )
        )
    if not module.batch_first:
        raise unplaced(
            ValueError(
                "module must be batch-first, got batch_first=False. Build it with "
                "batch_first=True (the default); the weights are the same."
            )
        )
    if streaming and module.bidirectional:
        raise unplaced(
            ValueError(
                "module must be unidirectional, got bidirectional=True. The backward "
                "direction reads a sequence from its end, so it cannot run before the stream is "
                "complete; run whole sequences through the module instead."
            )
        )
    return module


def _weight(module: nn.RNNBase) -> Tensor:
    """``W_ih`` of the first layer (its dtype and device are the module's)."""
    return input_weight(module)  # (a dict lookup, not Module.__getattr__: read every step)


# Per (B, T, device): lengths (B,) all T, for chunks given without lengths (a constant).
_FULL_LENGTHS: dict[tuple[int, int, torch.device], Tensor] = {}


def _full_lengths(B: int, T: int, device: torch.device) -> Tensor:
    """``(B,)`` int64 lengths all ``T``, for a chunk given without lengths.

    Kept eagerly (a generation loop asks for the same ones every step; at most 64 are kept),
    made afresh while a graph is captured. Only read, never returned.
    """
    if capturing_graph():
        return torch.full((B,), T, dtype=torch.int64, device=device)
    key = (B, T, device)
    lengths = _FULL_LENGTHS.get(key)
    if lengths is None:
        if len(_FULL_LENGTHS) >= 64:
            _FULL_LENGTHS.clear()
        with torch.inference_mode(mode=False):  # a normal tensor even under inference_mode
            lengths = _FULL_LENGTHS[key] = torch.full((B,), T, dtype=torch.int64, device=device)
    return lengths


class StreamingRNN(nn.Module):
    """Run a unidirectional ``varlen.nn.LSTM``/``GRU`` chunk by chunk with explicit state.

    ``forward(chunk, lengths, state) -> (output, state)``: row ``b`` of ``chunk`` continues
    stream ``b`` from row ``b`` of ``state``. Chunks of any sizes give exactly the outputs and
    final state of one pass over the whole sequence; a row of length 0 keeps its state. The
    wrapped module is a submodule, so its parameters are this module's parameters.

    Args:
        module: A unidirectional :class:`varlen.nn.LSTM` or :class:`varlen.nn.GRU`, any
            number of layers, with or without ``proj_size``.

    Raises:
        TypeError: If ``module`` is not a varlen LSTM or GRU.
        ValueError: If ``module`` is bidirectional (a backward direction cannot stream).

    Example:
        >>> rnn = StreamingRNN(LSTM(3, 4, num_layers=2))
        >>> x = torch.randn(2, 5, 3)  # (B, T, F)
        >>> whole, final = rnn(x, torch.tensor([5, 3]))
        >>> first, state = rnn(x[:, :2], torch.tensor([2, 2]))  # the first 2 steps of each
        >>> rest, state = rnn(x[:, 2:], torch.tensor([3, 1]), state)
        >>> torch.allclose(torch.cat([first, rest], 1)[0], whole[0]), state.h.shape
        (True, torch.Size([2, 2, 4]))
    """

    def __init__(self, module: LSTM | GRU) -> None:
        super().__init__()
        with error_context("StreamingRNN"):
            self.module = _check_module(module, streaming=True)

    @property
    def is_lstm(self) -> bool:
        """Whether the wrapped module is an LSTM (its state has ``c``)."""
        return isinstance(self.module, LSTM)

    @property
    def output_size(self) -> int:
        """``H_out``: ``proj_size`` if set, else ``hidden_size``."""
        return int(self.module.proj_size or self.module.hidden_size)

    def initial_state(self, batch_size: int) -> StreamState:
        """Return the zero state of ``batch_size`` streams, on the device and dtype of the weights.

        Args:
            batch_size: ``B >= 0``.

        Returns:
            ``h (L, B, H_out)`` and, for an LSTM, ``c (L, B, H)``, all zeros.

        Raises:
            TypeError: If ``batch_size`` is not an int.
            ValueError: If ``batch_size < 0``.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise TypeError(
                f"StreamingRNN.initial_state: batch_size must be an int, got {batch_size!r}."
            )
        if batch_size < 0:
            raise ValueError(
                f"StreamingRNN.initial_state: batch_size must be >= 0, got {batch_size}."
            )
        weight = _weight(self.module)
        L, B = self.module.num_layers, int(batch_size)
        h = weight.new_zeros(L, B, self.output_size)
        c = weight.new_zeros(L, B, self.module.hidden_size) if self.is_lstm else None
        return StreamState(h, c)

    def check_state(self, state: Any, batch_size: int, *, where: str = "StreamingRNN") -> None:
        """Raise unless ``state`` is a state of ``batch_size`` streams for this module.

        Args:
            state: The state to check.
            batch_size: ``B``, the number of streams it must hold.
            where: Name to start error messages with.

        Raises:
            TypeError: If ``state`` is not a :class:`StreamState`, is of the other cell kind,
                or has another dtype or device than the weights.
            ValueError: If its layers, sizes or number of streams differ.
        """
        if isinstance(state, StreamState) and self._fits(state, batch_size):
            return  # the common case, in a few comparisons, outside the error context
        with error_context(where):
            if not isinstance(state, StreamState):
                raise unplaced(
                    TypeError(
                        f"state must be a StreamState or None, got {type(state).__name__}. "
                        "Wrap a (h, c) tuple with StreamState.from_hx."
                    )
                )
            if (state.c is not None) != self.is_lstm:
                got = "a GRU state (c is None)" if state.c is None else "an LSTM state (with c)"
                want = "an LSTM state (h, c)" if self.is_lstm else "a GRU state (c is None)"
                raise unplaced(TypeError(f"state must be {want} for this module, got {got}."))
            self._check_sizes(state, batch_size)
            weight = _weight(self.module)
            if state.h.dtype != weight.dtype or state.h.device != weight.device:
                raise unplaced(
                    TypeError(
                        f"state must have the dtype and device of the weights, {weight.dtype} "
                        f"on {weight.device}, got {state.h.dtype} on {state.h.device}. "
                        "Move it with state.to(device, dtype)."
                    )
                )

    def _fits(self, state: StreamState, batch_size: int) -> bool:
        """Whether ``state`` passes every check of :meth:`check_state` (which then says why not)."""
        module = self.module
        L, H = module.num_layers, module.hidden_size
        h, c = state.h, state.c
        weight = _weight(module)
        return (
            h.shape == (L, batch_size, module.proj_size or H)
            and (c is None) != isinstance(module, LSTM)
            and (c is None or c.shape == (L, batch_size, H))
            and h.dtype == weight.dtype
            and h.device == weight.device
        )

    def _check_sizes(self, state: StreamState, batch_size: int) -> None:
        L, H = self.module.num_layers, self.module.hidden_size
        got = [tuple(state.h.shape)] + ([] if state.c is None else [tuple(state.c.shape)])
        want = [(L, state.batch_size, self.output_size), (L, state.batch_size, H)][: len(got)]
        if got != want:
            shown = " and ".join(str(shape) for shape in got)
            raise unplaced(
                ValueError(
                    f"state must come from a model with L = {L} layers, H_out = "
                    f"{self.output_size} and H = {H} (h (L, B, H_out), c (L, B, H)), got {shown}. "
                    "Use initial_state(B) or a state this model returned."
                )
            )
        if state.batch_size != batch_size:
            raise unplaced(
                ValueError(
                    f"state must hold B = {batch_size} streams, one per chunk row, got "
                    f"{state.batch_size}. Pick the rows with state.select(indices)."
                )
            )

    def forward(
        self,
        chunk: Tensor,
        lengths: Tensor | None = None,
        state: StreamState | None = None,
        *,
        padding: Padding = "post",
    ) -> tuple[Tensor, StreamState]:
        """Continue every stream over its real steps in ``chunk``.

        Args:
            chunk: ``(B, T_c, F)`` next steps of ``B`` streams, dtype of the weights. Padded
                steps are ignored (NaN allowed).
            lengths: ``(B,)`` int, ``0 <= lengths <= T_c``: real steps per row; all ``T_c``
                when ``None``. A row of length 0 keeps its state and outputs zeros.
            state: State of the ``B`` streams before ``chunk``; zeros when ``None`` (every
                stream starts here).
            padding: Where the pads of ``chunk`` are, ``"post"`` or ``"pre"``.

        Returns:
            ``(output, state)``: ``output (B, T_c, H_out)`` in the layout of ``chunk``,
            exactly zero at padded steps; ``state`` after each stream's last real step.

        Raises:
            TypeError: If ``chunk`` is not a tensor, or ``state`` is not a matching state.
            ValueError: If ``chunk`` is not 3-D, or ``state`` has other layers, sizes or
                streams; and the errors of ``varlen.nn.LSTM.forward`` for ``chunk`` and
                ``lengths``.
        """
        if not isinstance(chunk, Tensor):
            raise TypeError(
                f"StreamingRNN: chunk must be a Tensor (B, T_c, F), got {type(chunk).__name__}."
            )
        if chunk.ndim != 3:
            raise ValueError(
                f"StreamingRNN: chunk must have shape (B, T_c, F), got {tuple(chunk.shape)}."
            )
        B = chunk.shape[0]
        if state is None:
            state = self.initial_state(B)
        else:
            self.check_state(state, B)
        if lengths is None:  # every step real; stated, so no layout question arises
            lengths = _full_lengths(B, chunk.shape[1], chunk.device)
        out, final = self.module(chunk, lengths, padding=padding, hx=state.to_hx())
        return out, StreamState._of_module(final)


_Chunks = Mapping[Any, Any] | Iterable[tuple[Any, Any]]  # ids: any hashable


class StreamPool:
    """Concurrent streams named by arbitrary ids, advanced together in one batched call.

    Streams join with a zero state (or a given one) and finish when their sequence ends.
    :meth:`step` takes the next chunk of any subset of the active streams, pads them into one
    ``(K, T_max, F)`` batch and runs the model once; each stream's outputs and final state
    are exactly those of its own sequence fed whole. The pool is the mutable shell around the
    functional :class:`StreamingRNN`; its states are stored detached (no autograd graph is
    kept between steps; train across chunks with :func:`varlen.training.train_tbptt`). For
    serving, call :meth:`step` under ``torch.inference_mode()``.

    Args:
        model: A :class:`StreamingRNN`, or a unidirectional ``varlen.nn.LSTM``/``GRU`` to wrap.

    Raises:
        TypeError: If ``model`` is neither.
        ValueError: If the module is bidirectional.

    Example:
        >>> pool = StreamPool(GRU(2, 3))
        >>> pool.join(["left", "right"])
        >>> out = pool.step({"left": np.ones((4, 2)), "right": np.ones((1, 2))})
        >>> out["left"].shape, out["right"].shape  # (T_c, H_out) per stream
        (torch.Size([4, 3]), torch.Size([1, 3]))
        >>> final = pool.finish(["right"])  # its state, (L, 1, H)
        >>> pool.ids, final.h.shape
        (('left',), torch.Size([1, 1, 3]))
    """

    def __init__(self, model: StreamingRNN | LSTM | GRU) -> None:
        self.model = model if isinstance(model, StreamingRNN) else StreamingRNN(model)
        self._ids: list[Hashable] = []
        self._rows: dict[Hashable, int] = {}
        self._finished: set[Hashable] = set()
        self._state = self.model.initial_state(0)

    @property
    def ids(self) -> tuple[Hashable, ...]:
        """Active stream ids, in row order of :attr:`state`."""
        return tuple(self._ids)

    @property
    def state(self) -> StreamState:
        """The state of the active streams, row ``b`` for ``ids[b]``."""
        return self._state

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._rows

    def _set(self, ids: list[Hashable], state: StreamState) -> None:
        self._ids = ids
        self._rows = {stream_id: row for row, stream_id in enumerate(ids)}
        self._state = state.detach()

    def _row_of(self, stream_id: Hashable) -> int:
        row = self._rows.get(stream_id)
        if row is not None:
            return row
        if stream_id in self._finished:
            raise unplaced(
                ValueError(
                    f"stream {stream_id!r} must be active, got a finished stream. "
                    f"Join it again with join([{stream_id!r}]) to start a new sequence."
                )
            )
        raise unplaced(
            ValueError(
                f"stream {stream_id!r} must be active, got an unknown id "
                f"({len(self._ids)} streams active). Call join([{stream_id!r}]) first."
            )
        )

    def state_of(self, stream_id: Hashable) -> StreamState:
        """Return the state of one active stream, ``B = 1``.

        Raises:
            ValueError: If the stream is unknown or finished (the message names it).
        """
        with error_context("StreamPool.state_of"):
            return self._state[self._row_of(stream_id)]

    def join(self, stream_ids: Iterable[Hashable], *, state: StreamState | None = None) -> None:
        """Add streams, each starting a new sequence.

        Args:
            stream_ids: ``K`` new ids (hashable, not active), e.g. ``["car7"]``; a plain
                ``str`` or ``bytes`` is refused (it would join one stream per character).
                A finished id may join again.
            state: Their initial state, ``K`` streams (e.g. one saved earlier); zeros if None.

        Raises:
            ValueError: If an id is already active or repeated, or ``state`` does not hold
                ``K`` streams of this model.
            TypeError: If ``stream_ids`` is a string or not iterable, an id is not
                hashable, or ``state`` does not match the model's cell, dtype or device.
        """
        with error_context("StreamPool.join"):
            new = _id_list(stream_ids)
            seen: set[Hashable] = set()
            for stream_id in new:
                if stream_id in self._rows or stream_id in seen:
                    raise unplaced(
                        ValueError(
                            f"stream ids must be new, got {stream_id!r} twice or already "
                            "active. Finish it first or use another id."
                        )
                    )
                seen.add(stream_id)
            if state is None:
                state = self.model.initial_state(len(new))
            else:
                self.model.check_state(state, len(new), where="StreamPool.join")
            self._finished -= seen
            self._set(self._ids + new, StreamState.concatenate([self._state, state]))

    def finish(self, stream_ids: Iterable[Hashable]) -> StreamState:
        """Remove streams whose sequences have ended; later chunks for them are errors.

        Args:
            stream_ids: ``K`` active ids, e.g. ``["car7"]`` (a plain ``str`` is refused).

        Returns:
            Their final states, ``K`` streams in the given order.

        Raises:
            ValueError: If an id is unknown, already finished (the message names it) or
                repeated.
            TypeError: If ``stream_ids`` is a string or not iterable.
        """
        with error_context("StreamPool.finish"):
            gone = _id_list(stream_ids)
            rows = [self._row_of(stream_id) for stream_id in gone]
            if len(set(rows)) != len(rows):
                raise unplaced(ValueError(f"stream_ids must be distinct, got {gone!r}."))
            final = self._state.select(rows)
            dropped = set(rows)
            keep = [row for row in range(len(self._ids)) if row not in dropped]
            self._finished |= set(gone)
            self._set([self._ids[row] for row in keep], self._state.select(keep))
            return final

    def step(self, chunks: _Chunks) -> dict[Hashable, Tensor]:
        """Feed the next chunk of some active streams through the model in one batched call.

        Args:
            chunks: ``{id: chunk}`` or ``[(id, chunk), ...]`` with each ``chunk`` a ``(T_c, F)``
                NumPy array or tensor (``T_c`` may differ per stream and be 0), cast to the
                dtype and device of the weights. Streams left out keep their state.

        Returns:
            ``{id: output}`` in the order given, each ``output (T_c, H_out)``.

        Raises:
            ValueError: If an id is unknown or finished (the message names it) or repeated,
                or a chunk is not ``(T_c, F)``.
            TypeError: If a chunk is not an array or tensor.
        """
        with error_context("StreamPool.step"):
            if isinstance(chunks, str | bytes):
                raise unplaced(
                    TypeError(
                        f"chunks must be {{id: chunk}} or [(id, chunk), ...], got the "
                        f"{type(chunks).__name__} {chunks!r}."
                    )
                )
            items = list(chunks.items()) if isinstance(chunks, Mapping) else list(chunks)
            found = [self._rows.get(stream_id) for stream_id, _ in items]
            rows = [
                row if row is not None else self._row_of(items[i][0]) for i, row in enumerate(found)
            ]
            if len(set(rows)) != len(rows):
                ids = [stream_id for stream_id, _ in items]
                twice = next(stream_id for stream_id in ids if ids.count(stream_id) > 1)
                raise unplaced(ValueError(f"stream ids must be distinct, got {twice!r} twice."))
            if not items:
                return {}
            x, lengths = _pad_chunks(self.model, items)
            sizes = [int(chunk.shape[0]) for _, chunk in items]
            everyone = rows == list(range(len(self._ids)))
            state = self._state if everyone else self._state.select(rows)
            out, final = self.model(x, lengths, state)
            self._state = (final if everyone else self._state.assign(rows, final)).detach()
            rows_out = out.unbind(0)  # (T_max, H_out) views, one per stream
            return {
                stream_id: row[:n]
                for (stream_id, _), row, n in zip(items, rows_out, sizes, strict=True)
            }

    def state_dict(self) -> dict[str, Any]:
        """Return ``{"ids", "finished", "state"}`` to save the pool (ids must be picklable)."""
        return {
            "ids": list(self._ids),
            "finished": list(self._finished),
            "state": self._state.state_dict(),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the streams saved by :meth:`state_dict`, replacing the current ones.

        Args:
            state_dict: As returned by :meth:`state_dict`.

        Raises:
            ValueError: If keys are missing, the ids are not distinct or do not match the
                state's streams, or the state does not fit the model.
            TypeError: If the state does not match the model's cell, dtype or device.
        """
        with error_context("StreamPool.load_state_dict"):
            if set(state_dict) != {"ids", "finished", "state"}:
                raise unplaced(
                    ValueError(
                        "state_dict must have keys ['finished', 'ids', 'state'], "
                        f"got {sorted(state_dict)!r}."
                    )
                )
            ids = list(state_dict["ids"])
            if len(set(ids)) != len(ids):
                raise unplaced(ValueError(f"ids must be distinct, got {ids!r}."))
            state = StreamState.from_state_dict(state_dict["state"])
            self.model.check_state(state, len(ids), where="StreamPool.load_state_dict")
            self._finished = set(state_dict["finished"])
            self._set(ids, state)


def _id_list(stream_ids: Any) -> list[Hashable]:
    """Return ``stream_ids`` as a list; a plain string is an error, never its characters."""
    if isinstance(stream_ids, str | bytes):
        raise unplaced(
            TypeError(
                f"stream_ids must be a list of ids, got the {type(stream_ids).__name__} "
                f"{stream_ids!r}. Pass [{stream_ids!r}] for one stream."
            )
        )
    try:
        ids = list(stream_ids)
    except TypeError:
        raise unplaced(
            TypeError(
                f"stream_ids must be a list of ids, got {type(stream_ids).__name__} "
                f"{stream_ids!r}. Pass [{stream_ids!r}] for one stream."
            )
        ) from None
    for stream_id in ids:
        if not isinstance(stream_id, Hashable):
            raise unplaced(
                TypeError(
                    f"stream ids must be hashable, got {type(stream_id).__name__} {stream_id!r}."
                )
            )
    return ids


def _check_chunk(F: int, stream_id: Hashable, chunk: Any) -> None:
    if not isinstance(chunk, np.ndarray | Tensor):
        raise unplaced(
            TypeError(
                f"the chunk of stream {stream_id!r} must be a NumPy array or tensor "
                f"(T_c, F), got {type(chunk).__name__}."
            )
        )
    if chunk.ndim != 2 or chunk.shape[1] != F:
        raise unplaced(
            ValueError(
                f"the chunk of stream {stream_id!r} must have shape (T_c, F) = "
                f"(T_c, {F}), got {tuple(chunk.shape)}."
            )
        )


def _pad_chunks(model: StreamingRNN, items: list[tuple[Hashable, Any]]) -> tuple[Tensor, Tensor]:
    """Pad the chunks (post) into ``x (K, T_max, F)`` on the weights' device, with lengths."""
    F = int(model.module.input_size)
    for stream_id, chunk in items:
        _check_chunk(F, stream_id, chunk)
    chunks = [chunk for _, chunk in items]
    weight = _weight(model.module)
    sizes = np.fromiter((chunk.shape[0] for chunk in chunks), dtype=np.int64, count=len(chunks))
    if all(isinstance(chunk, np.ndarray) for chunk in chunks):
        values = np.concatenate(chunks)  # (N, F), one copy for all streams
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        padded, _ = pad_flat(
            values,
            offsets,
            maxlen=None,
            value=0,
            padding="post",
            truncating="post",
            dtype=values.dtype,
        )
        x = torch.from_numpy(padded)
    else:
        tensors = [torch.as_tensor(chunk, device=weight.device) for chunk in chunks]
        x = nn.utils.rnn.pad_sequence(tensors, batch_first=True)
    lengths = torch.from_numpy(sizes).to(weight.device)
    return x.to(device=weight.device, dtype=weight.dtype), lengths


@overload
def run_one_at_a_time(
    module: LSTM, sequences: Sequence[Tensor]
) -> tuple[list[Tensor], LSTMState]: ...


@overload
def run_one_at_a_time(module: GRU, sequences: Sequence[Tensor]) -> tuple[list[Tensor], Tensor]: ...


def run_one_at_a_time(
    module: LSTM | GRU, sequences: Sequence[Tensor]
) -> tuple[list[Tensor], LSTMState | Tensor]:
    """Run each sequence alone through ``module``, from a fresh zero state: the slow reference.

    One module call per sequence, no padding and no state carried from one sequence to the
    next: obviously correct, and slow (``B`` small calls instead of one batched call). Use it
    as a baseline and as a test oracle for batched, streamed or windowed runs.

    Why no state is carried between sequences: a recurrent layer's state summarizes the
    sequence read so far. Starting sequence ``i + 1`` from the final state of sequence ``i``
    (what Keras' ``stateful=True`` does when batches hold independent sequences) makes its
    outputs depend on whichever sequence happened to come before it: results change with the
    shuffling and batching order, training learns a spurious dependence, and evaluation no
    longer matches inference on one sequence. State should be carried only *within* one
    sequence that arrives in pieces. Instead: reset the state at each sequence start (a new
    batch of independent sequences starts from zeros; :func:`reset_state` zeros finished rows),
    or give each sequence an id and let :class:`StreamPool` carry state per id; for long
    sequences in training, use :func:`varlen.training.train_tbptt`, which carries state across
    windows of one sequence and resets it between sequences.

    Args:
        module: A ``varlen.nn.LSTM`` or ``GRU`` (bidirectional allowed: sequences are whole).
        sequences: ``B`` tensors ``(T_i, F)`` (``T_i`` may be 0) with the weights' dtype
            and device. ``B`` may be 0.

    Returns:
        ``(outputs, state)``: ``outputs[i]`` is ``(T_i, D * H_out)``; ``state`` is in the
        module's layout (``LSTMState`` of ``(L * D, B, H_k)`` tensors, or ``h`` for a GRU),
        row ``i`` the final state of sequence ``i`` (zeros when ``T_i == 0``).

    Raises:
        TypeError: If ``module`` is not a varlen LSTM or GRU, or a sequence is not a tensor.
        ValueError: If a sequence is not ``(T_i, F)``.

    Example:
        >>> gru = GRU(3, 4)
        >>> outputs, h = run_one_at_a_time(gru, [torch.randn(5, 3), torch.randn(0, 3)])
        >>> [tuple(out.shape) for out in outputs], h.shape  # (T_i, H), (L, B, H)
        ([(5, 4), (0, 4)], torch.Size([1, 2, 4]))
    """
    with error_context("run_one_at_a_time"):
        module = _check_module(module, streaming=False)
        F = module.input_size
        for i, sequence in enumerate(sequences):
            if not isinstance(sequence, Tensor):
                raise unplaced(
                    TypeError(
                        f"sequences[{i}] must be a Tensor (T_i, F), got {type(sequence).__name__}."
                    )
                )
            if sequence.ndim != 2 or sequence.shape[1] != F:
                raise unplaced(
                    ValueError(
                        f"sequences[{i}] must have shape (T_i, F) = (T_i, {F}), "
                        f"got {tuple(sequence.shape)}."
                    )
                )
        outputs: list[Tensor] = []
        states: list[tuple[Tensor, ...]] = []
        for sequence in sequences:
            # (1, T_i, F) with its length given, fresh zero state every time
            out, state = module(sequence[None], torch.tensor([sequence.shape[0]]))
            outputs.append(out[0])
            states.append(tuple(state) if isinstance(state, LSTMState) else (state,))
        if not states:  # B = 0: the module returns the (L * D, 0, H_k) zero state
            _, empty = module(_weight(module).new_zeros(0, 0, F), torch.zeros(0, dtype=torch.int64))
            states.append(tuple(empty) if isinstance(empty, LSTMState) else (empty,))
        merged = [torch.cat(parts, dim=1) for parts in zip(*states, strict=True)]
        return outputs, (LSTMState(merged[0], merged[1]) if len(merged) == 2 else merged[0])
