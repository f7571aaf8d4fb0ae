"""``varlen.keras.LSTM`` and ``varlen.keras.GRU``: Keras's layers on an exact fast route.

Each class subclasses Keras's own layer, so the constructor, the weights (``kernel``,
``recurrent_kernel``, ``bias``: same shapes and order), ``get_config``, ``compute_mask``,
``stateful`` state variables and :class:`keras.layers.Bidirectional` all behave as Keras's.
Only the inner loop is replaced:

- **torch backend:** :mod:`varlen.nn`'s core on torch's fused kernel (pads and holes made
  exact no-ops by its control column), gradients through Keras's training loop.
- **JAX backend:** Keras's own masked ``lax.scan``, which is already exact and was the fastest
  formulation measured on the CPU (hoisting the input projection out of the scan, unrolling
  or one fused matmul per step were all slower under XLA; ``benchmarks/bench_keras.py``).
- **TensorFlow backend** (tested like the others, in its own process) and arguments the
  fused math cannot express (a non-default ``activation`` /
  ``recurrent_activation``, ``recurrent_dropout``, GRU ``reset_after=False``): Keras's own
  exact loop, with one warning at construction for such an argument.

Results follow Keras's mask semantics: a masked step keeps the state; its output is the
previous output (zeros before the first real step, as Keras's torch loop gives; Keras's JAX
loop gives the initial ``h`` there, and the JAX route is that loop), or zeros with
``zero_output_for_mask`` (which :class:`keras.layers.Bidirectional` sets when returning
sequences).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

import keras
from keras import ops

__all__ = ["GRU", "LSTM"]

_FAST_BACKENDS = ("torch",)


def _name_of(activation: Any) -> str:
    """The serialized name of a Keras activation (a string for the built-in ones)."""
    name = keras.activations.serialize(activation)
    return name if isinstance(name, str) else repr(name)


def _generic_arguments(cell: Any, *, reset_after: bool | None) -> list[str]:
    """The constructor arguments that keep a layer off the fast route, as ``name=value``."""
    found = []
    if _name_of(cell.activation) != "tanh":
        found.append(f"activation={_name_of(cell.activation)!r}")
    if _name_of(cell.recurrent_activation) != "sigmoid":
        found.append(f"recurrent_activation={_name_of(cell.recurrent_activation)!r}")
    if cell.recurrent_dropout:
        found.append(f"recurrent_dropout={cell.recurrent_dropout!r}")
    if reset_after is False:
        found.append("reset_after=False")
    return found


def _warn_generic(where: str, arguments: list[str]) -> None:
    warnings.warn(
        f"{where}: {', '.join(arguments)} is not what the fused kernel computes (tanh, "
        "sigmoid, no recurrent dropout, GRU reset_after=True), so this layer takes Keras's "
        "own exact per-step loop, which is slower. Use the defaults for the fast route.",
        UserWarning,
        stacklevel=3,
    )


def _first(value: Any) -> Any:
    """Keras may pass a mask or a state as a one-element list."""
    return value[0] if isinstance(value, list | tuple) else value


class _VarlenRNN:
    """The shared fast inner loop of :class:`LSTM` and :class:`GRU` (a mixin)."""

    _cell_name: str
    _generic: list[str]
    _zero_start: bool

    def _on_fast_route(self) -> bool:
        """Whether this call runs on varlen's core (else on Keras's own loop)."""
        return keras.backend.backend() in _FAST_BACKENDS and not self._generic

    def _dropped(self, sequences: Any, training: Any) -> Any:
        """Apply the cell's input dropout, one mask per sequence for all steps (as Keras)."""
        cell = self.cell  # type: ignore[attr-defined]
        if not (training and cell.dropout):
            return sequences
        keep = ops.expand_dims(cell.get_dropout_mask(sequences[:, 0, :]), axis=1)
        return sequences * keep

    def _varlen_loop(
        self, sequences: Any, initial_state: Any, mask: Any, training: Any
    ) -> tuple[Any, Any, list[Any]]:
        """Keras's ``(last_output, outputs, states)`` from :mod:`varlen.nn`'s core (torch)."""
        cell = self.cell  # type: ignore[attr-defined]
        x = self._dropped(sequences, training)
        states = list(initial_state) if isinstance(initial_state, list | tuple) else [initial_state]
        if self.stateful:  # type: ignore[attr-defined]
            # Keras assigns the final states into these variables in place after the call;
            # backward still needs the initial ones, so the kernel gets copies (as Keras's loop).
            states = [ops.copy(s) for s in states]
        mask = _first(mask)
        options = {
            "go_backwards": self.go_backwards,  # type: ignore[attr-defined]
            "zero_output_for_mask": self.zero_output_for_mask,  # type: ignore[attr-defined]
        }
        from varlen.keras import _torch

        # Torch tensors here (this route runs on the torch backend only): the weights in x's
        # dtype and a bool mask without Keras's op dispatch (~10 us an op, 4 ops a call).
        kernel, recurrent, bias = _torch.cell_weights(cell, x.dtype)
        mask = None if mask is None else _torch.bool_mask(mask)
        params = _torch.torch_params(self._cell_name, kernel, recurrent, bias)  # type: ignore[arg-type]
        return _torch.run(
            self._cell_name,  # type: ignore[arg-type]
            x,
            None if self._zero_start else states,
            mask,
            params,
            training=bool(training),
            return_sequences=self.return_sequences,  # type: ignore[attr-defined]
            **options,
        )

    def inner_loop(
        self,
        sequences: Any,
        initial_state: Any,
        mask: Any,
        training: Any = False,  # noqa: FBT002  (Keras's signature)
    ) -> Any:
        """Run the recurrence: varlen's route where it applies, else Keras's own loop."""
        if not self._on_fast_route():
            return super().inner_loop(  # type: ignore[misc]
                sequences, initial_state, mask=mask, training=training
            )
        return self._varlen_loop(sequences, initial_state, mask, training)

    def call(
        self,
        sequences: Any,
        initial_state: Any = None,
        mask: Any = None,
        training: Any = False,  # noqa: FBT002  (Keras's signature)
    ) -> Any:
        """Run the layer (as Keras's: ``inputs, initial_state, mask, training``)."""
        # A zero start lets the torch route skip the initial state (one fused call, any side).
        self._zero_start = initial_state is None and not self.stateful  # type: ignore[attr-defined]
        return super().call(  # type: ignore[misc]
            sequences, initial_state=initial_state, mask=mask, training=training
        )

    def reset_state(self, rows: Any = None) -> None:
        """Zero the carried state of a ``stateful`` layer: all rows, or only ``rows``.

        Args:
            rows: ``None`` (every row), or the batch rows whose sequences end here: int
                indices in ``[0, B)`` or a ``(B,)`` bool array.

        Raises:
            ValueError: If a row is out of range or a bool array has the wrong shape.
        """
        states = self.states  # type: ignore[attr-defined]
        if states is None:
            return
        if rows is None:
            super().reset_state()  # type: ignore[misc]
            return
        B = int(ops.shape(states[0])[0])
        keep = ops.convert_to_tensor(~_rows_mask(type(self).__name__, rows, B)[:, None])
        for variable in states:
            variable.assign(ops.where(keep, variable.value, ops.zeros_like(variable.value)))


def _rows_mask(where: str, rows: Any, B: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """``(B,)`` bool, True at the given rows (indices or a bool array)."""
    array = np.asarray(rows)
    if array.dtype == np.bool_:
        if array.shape != (B,):
            raise ValueError(
                f"{where}.reset_state: rows as a bool array must have shape (B,) = ({B},), "
                f"got {array.shape}."
            )
        return array
    if not np.issubdtype(array.dtype, np.integer) or array.ndim > 1:
        raise ValueError(
            f"{where}.reset_state: rows must be int indices or a (B,) bool array, got {rows!r}."
        )
    indices = array.reshape(-1)
    bad = indices[(indices < 0) | (indices >= B)]
    if bad.size:
        raise ValueError(
            f"{where}.reset_state: rows must be in [0, B) = [0, {B}), got {int(bad[0])}."
        )
    chosen = np.zeros(B, dtype=bool)
    chosen[indices] = True
    return chosen


@keras.saving.register_keras_serializable(package="varlen")
class LSTM(_VarlenRNN, keras.layers.LSTM):  # type: ignore[misc]
    """A drop-in for :class:`keras.layers.LSTM`, exact under masks, fast on the torch backend.

    Takes Keras's constructor arguments, weights and call (``inputs, mask=None,
    training=None, initial_state=None``); ``layer.set_weights(keras_layer.get_weights())``
    and back work. With a ``stateful`` layer, :meth:`reset_state` takes ``rows`` to restart
    only some rows' sequences.

    Example:
        >>> import keras
        >>> from varlen.keras import LSTM
        >>> model = keras.Sequential([keras.Input((None, 3)), keras.layers.Masking(), LSTM(4)])
        >>> tuple(model(np.zeros((2, 5, 3), "float32")).shape)  # (B, H)
        (2, 4)
    """

    _cell_name = "LSTM"

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(units, **kwargs)
        self._generic = _generic_arguments(self.cell, reset_after=None)
        self._zero_start = False
        if self._generic and keras.backend.backend() in _FAST_BACKENDS:
            _warn_generic("varlen.keras.LSTM", self._generic)


@keras.saving.register_keras_serializable(package="varlen")
class GRU(_VarlenRNN, keras.layers.GRU):  # type: ignore[misc]
    """A drop-in for :class:`keras.layers.GRU`, exact under masks, fast on the torch backend.

    As :class:`LSTM`. The fast route computes Keras's default ``reset_after=True``, which is
    torch's GRU; ``reset_after=False`` takes Keras's own loop (with a warning).

    Example:
        >>> import keras
        >>> from varlen.keras import GRU
        >>> layer = GRU(4, return_sequences=True)
        >>> mask = np.array([[True, True, False, False, False]] * 2)  # (B, T)
        >>> tuple(layer(np.zeros((2, 5, 3), "float32"), mask=mask).shape)  # (B, T, H)
        (2, 5, 4)
    """

    _cell_name = "GRU"

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(units, **kwargs)
        self._generic = _generic_arguments(self.cell, reset_after=self.cell.reset_after)
        self._zero_start = False
        if self._generic and keras.backend.backend() in _FAST_BACKENDS:
            _warn_generic("varlen.keras.GRU", self._generic)
