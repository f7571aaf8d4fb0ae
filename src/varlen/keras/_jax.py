"""The JAX-backend route: one ``lax.scan`` with the input projection hoisted out of it.

Keras's own masked loop on JAX calls the cell at every step, input matmul included. Here the
inputs of all steps are projected by one matmul before the scan, and each step does only the
recurrent matmul and the gates, with the mask semantics of Keras's JAX loop: a masked step
keeps the state, and its output is the carried ``h`` (the initial ``h`` before the first real
step; Keras's unrolled loop, ``unroll=True``, gives zeros there instead), or zeros with
``zero_output_for_mask``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

Array = Any  # jax.Array; Keras hands over its own tensor types too


def _lstm_step(z: Array, states: tuple[Array, ...], recurrent_kernel: Array) -> tuple[Array, ...]:
    """One LSTM step from the projected input ``z (B, 4H)``; return ``(h, c)``."""
    h, c = states
    z = z + h @ recurrent_kernel
    i, f, g, o = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c), c


def _gru_step(
    z: Array, states: tuple[Array, ...], recurrent_kernel: Array, recurrent_bias: Array | None
) -> tuple[Array, ...]:
    """One GRU step (``reset_after=True``) from the projected input ``z (B, 3H)``."""
    (h,) = states
    inner = h @ recurrent_kernel
    if recurrent_bias is not None:
        inner = inner + recurrent_bias
    x_z, x_r, x_h = jnp.split(z, 3, axis=-1)
    r_z, r_r, r_h = jnp.split(inner, 3, axis=-1)
    update = jax.nn.sigmoid(x_z + r_z)
    reset = jax.nn.sigmoid(x_r + r_r)
    candidate = jnp.tanh(x_h + reset * r_h)
    return (update * h + (1 - update) * candidate,)


def run(
    name: str,
    x: Array,
    state: list[Array],
    mask: Array | None,
    weights: tuple[Array, Array, Array | None],
    *,
    go_backwards: bool,
    zero_output_for_mask: bool,
    return_sequences: bool,
    unroll: bool,
) -> tuple[Array, Array, list[Array]]:
    """Run one Keras recurrent layer as a scan; see :func:`varlen.keras._torch.run`.

    Args:
        name: ``"LSTM"`` or ``"GRU"`` (``reset_after=True``).
        x: ``(B, T, F)`` inputs (dropout already applied).
        state: Initial states ``[(B, H), ...]``.
        mask: ``(B, T)`` bool, True at real steps, or ``None``.
        weights: Keras's ``(kernel, recurrent_kernel, bias)``.
        go_backwards: Process the steps in reverse; outputs stay reversed (Keras's order).
        zero_output_for_mask: Zeros at masked steps instead of the previous output.
        return_sequences: Whether ``outputs`` holds every step (else only the last).
        unroll: Keras's ``unroll``: the output before the first real step is zeros, not the
            initial ``h``.

    Returns:
        ``(last_output (B, H), outputs (B, T or 1, H), states)``.
    """
    kernel, recurrent_kernel, bias = weights
    if go_backwards:
        x = jnp.flip(x, axis=1)
        mask = None if mask is None else jnp.flip(mask, axis=1)
    projected = x @ kernel  # (B, T, G * H): every step's input matmul at once
    recurrent_bias = None
    if bias is not None:
        input_bias = bias if name == "LSTM" else bias[0]
        recurrent_bias = None if name == "LSTM" else bias[1]
        projected = projected + input_bias
    if name == "LSTM":

        def cell(z: Array, states: tuple[Array, ...]) -> tuple[Array, ...]:
            return _lstm_step(z, states, recurrent_kernel)

    else:

        def cell(z: Array, states: tuple[Array, ...]) -> tuple[Array, ...]:
            return _gru_step(z, states, recurrent_kernel, recurrent_bias)

    steps = jnp.swapaxes(projected, 0, 1)  # (T, B, G * H)
    real = None if mask is None else jnp.swapaxes(mask, 0, 1)[:, :, None]  # (T, B, 1)
    zero = jnp.zeros_like(state[0])
    first = zero if unroll or zero_output_for_mask else state[0]

    def step(carry: Any, inputs: Any) -> tuple[Any, Any]:
        states, previous = carry
        z, m = inputs
        new = cell(z, states)
        if m is None:
            out = new[0]
        else:
            new = tuple(jnp.where(m, n, s) for n, s in zip(new, states, strict=True))
            out = jnp.where(m, new[0], zero if zero_output_for_mask else previous)
        return (new, out), (out if return_sequences else None)

    (final, last), outs = lax.scan(step, (tuple(state), first), (steps, real))
    outputs = jnp.swapaxes(outs, 0, 1) if return_sequences else last[:, None]
    return last, outputs, list(final)
