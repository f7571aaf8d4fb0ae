"""The torch-backend route: Keras's weights through :mod:`varlen.nn`'s exact fused core.

Keras keeps an LSTM's weights as ``kernel (F, 4H)``, ``recurrent_kernel (H, 4H)`` and
``bias (4H,)`` with gates ``i, f, c, o`` — torch's ``i, f, g, o`` transposed, with one bias
(torch's ``b_hh`` is then zero). A GRU with ``reset_after=True`` is torch's GRU: gates
``z, r, h`` reorder to torch's ``r, z, n`` and ``bias (2, 3H)`` splits into ``b_ih`` and
``b_hh``. The Keras variables on the torch backend are ``torch.nn.Parameter`` objects, so the
rearranged tensors carry gradients straight back to them.

The call runs a template :class:`varlen.nn.LSTM` / :class:`varlen.nn.GRU` (built once per
shape on the ``meta`` device: it holds no memory) with those tensors in place of its
parameters (as :func:`torch.func.functional_call` would, in a fraction of its time), so every
exactness guarantee of ``varlen.nn`` applies: a masked step keeps the state, whatever the mask
(post, pre, holes). Keras's output convention is applied on top: at a masked step the output
is the previous output (zeros before the first real step), or
zeros with ``zero_output_for_mask``.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

import torch
from torch import Tensor

from varlen.nn import GRU, LSTM

CellName = Literal["LSTM", "GRU"]


@cache
def _template(name: CellName, F: int, H: int, *, bias: bool) -> torch.nn.RNNBase:
    """A parameter-less varlen module of the right shape (its weights live on ``meta``)."""
    if name == "LSTM":
        return LSTM(F, H, bias=bias, batch_first=True, method="padded", device="meta")
    return GRU(F, H, bias=bias, batch_first=True, method="padded", device="meta")


def _gru_order(w: Tensor, H: int) -> Tensor:
    """Reorder the last axis of a Keras GRU weight from ``z, r, h`` to torch's ``r, z, n``."""
    return torch.cat([w[..., H : 2 * H], w[..., :H], w[..., 2 * H :]], dim=-1)


def cell_weights(cell: Any, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor | None]:
    """A Keras cell's ``kernel``, ``recurrent_kernel`` and ``bias`` as tensors of ``dtype``.

    What ``ops.cast(ops.convert_to_tensor(variable), dtype)`` gives on the torch backend (the
    variable's value, autocast applied, cast only if its dtype differs), without Keras's op
    dispatch. The values are the variables' own parameters, so gradients reach them.
    """

    def value(variable: Any) -> Tensor:
        tensor: Tensor = variable.value
        return tensor if tensor.dtype == dtype else tensor.to(dtype)

    bias = None if cell.bias is None else value(cell.bias)
    return value(cell.kernel), value(cell.recurrent_kernel), bias


def bool_mask(mask: Any) -> Tensor:
    """``mask`` as a bool tensor.

    Keras hands the torch backend tensors; anything else is converted by ``torch.as_tensor``.
    """
    if isinstance(mask, Tensor):
        return mask if mask.dtype == torch.bool else mask.to(torch.bool)
    return torch.as_tensor(mask).to(torch.bool)


def torch_params(
    name: CellName, kernel: Tensor, recurrent_kernel: Tensor, bias: Tensor | None
) -> dict[str, Tensor]:
    """Map Keras weights to the parameters of a one-layer torch module.

    Args:
        name: ``"LSTM"`` or ``"GRU"`` (``reset_after=True``).
        kernel: ``(F, G * H)`` Keras input kernel.
        recurrent_kernel: ``(H, G * H)`` Keras recurrent kernel.
        bias: LSTM ``(4H,)``, GRU ``(2, 3H)``, or ``None`` without bias.

    Returns:
        ``weight_ih_l0 (G * H, F)``, ``weight_hh_l0 (G * H, H)`` and, with a bias,
        ``bias_ih_l0`` and ``bias_hh_l0 (G * H,)``.
    """
    H = recurrent_kernel.shape[0]
    if name == "GRU":
        kernel, recurrent_kernel = _gru_order(kernel, H), _gru_order(recurrent_kernel, H)
    params = {"weight_ih_l0": kernel.t(), "weight_hh_l0": recurrent_kernel.t()}
    if bias is None:
        return params
    if name == "GRU":
        return {
            **params,
            "bias_ih_l0": _gru_order(bias[0], H),
            "bias_hh_l0": _gru_order(bias[1], H),
        }
    return {**params, "bias_ih_l0": bias, "bias_hh_l0": torch.zeros_like(bias)}


def keras_outputs(out: Tensor, mask: Tensor | None, *, zero_output_for_mask: bool) -> Tensor:
    """Apply Keras's output at masked steps to ``out (B, T, H)`` (exactly zero there).

    Keras repeats the previous output at a masked step (zeros before the first real step);
    with ``zero_output_for_mask`` it leaves zeros, which ``out`` already holds.
    """
    if mask is None or zero_output_for_mask:
        return out
    B, T, H = out.shape
    steps = torch.arange(T, device=out.device).expand(B, T)
    # Position of the latest real step at or before each step: (B, T), -1 before the first.
    latest = torch.where(mask, steps, torch.full_like(steps, -1)).cummax(dim=1).values
    filled = out.gather(1, latest.clamp(min=0)[:, :, None].expand(B, T, H))
    return torch.where((latest >= 0)[:, :, None], filled, torch.zeros((), dtype=out.dtype))


def run(
    name: CellName,
    x: Tensor,
    state: list[Tensor] | None,
    mask: Tensor | None,
    params: dict[str, Tensor],
    *,
    go_backwards: bool,
    zero_output_for_mask: bool,
    training: bool,
    return_sequences: bool = True,
) -> tuple[Tensor, Tensor, list[Tensor]]:
    """Run one Keras recurrent layer on varlen's exact core.

    Args:
        name: ``"LSTM"`` or ``"GRU"``.
        x: ``(B, T, F)`` inputs (dropout already applied).
        state: Initial states ``[(B, H), ...]`` (LSTM ``[h, c]``, GRU ``[h]``), or ``None``
            for zeros.
        mask: ``(B, T)`` bool, True at real steps, or ``None`` (every step real).
        params: From :func:`torch_params`, in ``x``'s dtype.
        go_backwards: Process the steps in reverse; outputs stay reversed (Keras's order).
        zero_output_for_mask: Zeros at masked steps instead of the previous output.
        training: Whether autograd will run backward (the kernel keeps its workspace).
        return_sequences: Whether the caller reads ``outputs``; if not, only
            ``last_output`` is computed exactly (``outputs`` is then ``(B, 1, H)``).

    Returns:
        ``(last_output (B, H), outputs (B, T, H), states)`` as Keras's ``backend.rnn``.
    """
    B, T, F = x.shape
    H = params["weight_hh_l0"].shape[1]
    if go_backwards:
        x = x.flip(1)
        mask = None if mask is None else mask.flip(1)
    module = _template(name, F, H, bias="bias_ih_l0" in params)
    module.train(training)
    hx: Tensor | tuple[Tensor, ...] | None = None
    if state is not None:  # torch's layout (L * D, B, H); a GRU takes one tensor
        hx = state[0][None] if name == "GRU" else tuple(s[None] for s in state)
    out, final = _call_with(module, params, x, mask=mask, hx=hx)
    states = [s[0] for s in ([final] if name == "GRU" else list(final))]
    if T == 0:
        return out.new_zeros(B, H), out, states
    if not return_sequences:
        last = _last_output(out, mask, states[0], zero_output_for_mask=zero_output_for_mask)
        return last, last[:, None], states
    outputs = keras_outputs(out, mask, zero_output_for_mask=zero_output_for_mask)
    return outputs[:, -1], outputs, states


def _call_with(
    module: torch.nn.RNNBase,
    params: dict[str, Tensor],
    x: Tensor,
    *,
    mask: Tensor | None,
    hx: Tensor | tuple[Tensor, ...] | None,
) -> tuple[Tensor, Any]:
    """Call the template ``module`` with ``params`` in place of its parameters.

    What :func:`torch.func.functional_call` does for a module whose tensors are all
    parameters named in ``params`` (the template's, by construction), without its general
    machinery (buffers, tied weights, pytrees): ~1 us instead of ~15 us, on every call of a
    Keras layer. The template's own (``meta``) parameters are put back afterwards, also
    when the call raises.
    """
    slots = module._parameters
    saved = dict(slots)
    if saved.keys() != params.keys():  # (a bug: torch_params names every parameter)
        raise RuntimeError(f"varlen bug: parameters {sorted(params)}, template {sorted(saved)}.")
    slots.update(params)  # type: ignore[arg-type]  # plain tensors, as functional_call swaps in
    try:
        return module(x, mask=mask, hx=hx)  # type: ignore[no-any-return]
    finally:
        slots.update(saved)


def _last_output(
    out: Tensor, mask: Tensor | None, h: Tensor, *, zero_output_for_mask: bool
) -> Tensor:
    """Keras's output at the last step, ``(B, H)``, without filling every masked step.

    It is the final ``h`` (the state kept through trailing masked steps) when the row had a
    real step — at the very last step with ``zero_output_for_mask`` — and zeros otherwise.
    """
    if mask is None:
        return out[:, -1]
    real = mask[:, -1] if zero_output_for_mask else mask.any(dim=1)
    return torch.where(real[:, None], h, torch.zeros((), dtype=h.dtype))
