"""Run an LSTM or GRU over sequences laid end to end in lanes, with the state reset between them.

Sequences are placed by :func:`varlen.data.lanes.plan_lanes`: back to back in ``L`` rows, one
reset step between two sequences of a lane, padding only at each lane's end. Each layer then
runs on the fused kernel over ``(L, W)`` windows, the state carried from window to window, so a
sequence longer than a window simply continues in the next one.

Both control steps are exact, with the same mechanism as :mod:`varlen.nn.recurrent` (both use
:mod:`varlen.nn._gates`): each layer's input gets two indicator columns (pad, reset) and
``W_ih`` two matching columns that saturate gates. At a reset step an LSTM gets ``i = f = 0``
(so ``c' = 0`` and ``h' = 0``) and a GRU ``r = z = 0`` with the input bias of ``n``
cancelled (so ``n = tanh(0) = 0`` and ``h' = 0``); all gate derivatives vanish there, so no
gradient crosses from one sequence into the next.

The fused kernel returns ``h`` at every step but ``c`` only at the end of a call. An LSTM's
final ``c`` for each sequence is therefore recomputed from the exact ``h`` outputs: the gates at
every step follow from the layer input and the previous ``h``, and ``c_t = f_t * c_(t-1) + i_t *
g_t`` is a linear recurrence, run by a small autograd function (one pass each way, no graph per
step). Pass ``cell_state=False`` to skip it when only ``h`` is needed.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from varlen.data.lanes import LanePlan, plan_lanes
from varlen.data.ragged import Ragged
from varlen.nn._gates import GRU_CELL, LSTM_CELL, Cell, input_weight, layer_params
from varlen.nn.recurrent import GRU, LSTM

__all__ = ["LanesOutput", "run_lanes"]


class LanesOutput(NamedTuple):
    """What :func:`run_lanes` returns, every sequence in its input order.

    Attributes:
        values: ``(N, D * H_out)`` outputs at every real step, sequences end to end (the
            offsets of the input).
        h: ``(L * D, B, H_out)`` final hidden state of each sequence (torch's layout;
            zeros for length-0 sequences).
        c: ``(L * D, B, H)`` final cell state (LSTM with ``cell_state=True``), else ``None``.
        plan: The lane plan that was run.
    """

    values: Tensor
    h: Tensor
    c: Tensor | None
    plan: LanePlan


def run_lanes(
    module: LSTM | GRU,
    x: Tensor | Ragged,
    lengths: Any = None,
    *,
    num_lanes: int,
    window: int | None = None,
    cell_state: bool = True,
) -> LanesOutput:
    """Run ``module`` over variable-length sequences laid end to end in ``num_lanes`` lanes.

    Results equal each sequence run alone with a zero initial state (the per-sequence oracle).

    Args:
        module: A :class:`varlen.nn.LSTM` or :class:`varlen.nn.GRU`. A bidirectional module
            needs every lane in one window (``window=None`` or at least the longest lane).
        x: ``(N, F)`` steps of all sequences end to end (a tensor with the dtype and device
            of the weights), or a :class:`varlen.Ragged` with ``(N, F)`` values.
        lengths: ``(B,)`` integer lengths summing to ``N``; ``None`` for a Ragged.
        num_lanes: ``L``, the rows of every call.
        window: ``W``, steps per call; defaults to the longest lane (one call per layer).
        cell_state: For an LSTM, also return each sequence's final ``c`` (recomputed, see
            the module docstring).

    Returns:
        :class:`LanesOutput`.

    Raises:
        TypeError: If ``module`` is not a varlen LSTM/GRU, or ``x`` has a wrong type or dtype.
        ValueError: For shapes or lengths that do not fit, or a bidirectional module whose
            lanes need more than one window.

    Example:
        >>> lstm = LSTM(2, 3)
        >>> out = run_lanes(lstm, torch.randn(9, 2), torch.tensor([4, 1, 4]), num_lanes=2)
        >>> out.values.shape, out.h.shape, out.plan.total_length  # (N, H), (L * D, B, H)
        (torch.Size([9, 3]), torch.Size([1, 3, 3]), 6)
    """
    cell = _check_module(module)
    values, sizes = _check_inputs(module, x, lengths)
    plan = plan_lanes(sizes, num_lanes=num_lanes, window=window)
    if module.bidirectional and plan.num_windows > 1:
        raise ValueError(
            f"run_lanes: window must cover the longest lane ({plan.total_length} steps) for a "
            f"bidirectional module, got window={window}. "
            "Use window=None or a unidirectional module."
        )
    return _run(module, cell, values, plan, cell_state=cell_state and cell is LSTM_CELL)


def _check_module(module: Any) -> Cell:
    if isinstance(module, LSTM | GRU) and not module.batch_first:
        raise ValueError(
            "run_lanes: module must be batch-first, got batch_first=False. Build it with "
            "batch_first=True (the default); the weights are the same."
        )
    if isinstance(module, LSTM):
        return LSTM_CELL
    if isinstance(module, GRU):
        return GRU_CELL
    raise TypeError(
        f"run_lanes: module must be a varlen.nn.LSTM or GRU, got {type(module).__name__}."
    )


def _check_inputs(module: LSTM | GRU, x: Any, lengths: Any) -> tuple[Tensor, np.ndarray]:
    weight = input_weight(module)
    if isinstance(x, Ragged):
        if lengths is not None:
            raise ValueError("run_lanes: lengths must be None when x is a Ragged, got a value.")
        sizes = x.lengths
        x = torch.tensor(
            x.values, device=weight.device, dtype=weight.dtype
        )  # a copy: values are read-only
    elif isinstance(x, Tensor):
        if lengths is None:
            raise ValueError("run_lanes: lengths must be given with a tensor x, got None.")
        sizes = np.asarray(torch.as_tensor(lengths).cpu())
        if sizes.ndim != 1 or not np.issubdtype(sizes.dtype, np.integer):
            raise ValueError(
                f"run_lanes: lengths must be (B,) integers, got shape {sizes.shape} "
                f"of dtype {sizes.dtype}."
            )
    else:
        raise TypeError(
            f"run_lanes: x must be a Tensor (N, F) or a varlen.Ragged, got {type(x).__name__}."
        )
    if x.ndim != 2 or x.shape[1] != module.input_size:
        raise ValueError(
            f"run_lanes: x must have shape (N, F) with F = input_size = {module.input_size}, "
            f"got {tuple(x.shape)}."
        )
    if x.dtype != weight.dtype:
        raise TypeError(
            f"run_lanes: x must have the dtype of the weights, {weight.dtype}, got {x.dtype}."
        )
    if (sizes < 0).any() or int(sizes.sum()) != x.shape[0]:
        raise ValueError(
            f"run_lanes: lengths must be >= 0 and sum to N = {x.shape[0]}, "
            f"got sum {int(sizes.sum())} (min {int(sizes.min(initial=0))})."
        )
    return x, sizes.astype(np.int64)


def _run(
    module: LSTM | GRU, cell: Cell, values: Tensor, plan: LanePlan, *, cell_state: bool
) -> LanesOutput:
    device, dtype = values.device, values.dtype
    L, S, B = plan.num_lanes, plan.total_length, plan.lengths.shape[0]
    D = 2 if module.bidirectional else 1
    H_out = module.proj_size or module.hidden_size
    if S == 0:  # every sequence is empty: zero outputs, zero states, from the module itself
        # (one all-pad step per sequence, so the results stay connected to the weights and
        # backward works as for any batch)
        empty = torch.zeros(B, dtype=torch.int64, device=device)
        out, state = module(values.new_zeros(B, 1, values.shape[1]), empty)
        h, c = state if isinstance(module, LSTM) else (state, None)
        return LanesOutput(out[:0, 0], h, c if cell_state else None, plan)
    # Everything below is time-major, (S, L, ...), the layout the fused kernel works in, so no
    # layer input or output is ever transposed into a copy; rows are picked by flat index.
    step_lane, step_pos = (torch.from_numpy(a).to(device) for a in plan.step_positions())
    reset_lane, reset_pos = (torch.from_numpy(a).to(device) for a in plan.reset_positions())
    kind = torch.zeros(S, L, dtype=torch.int8, device=device)  # 0 pad, 1 real, 2 reset
    kind[step_pos, step_lane] = 1
    kind[reset_pos, reset_lane] = 2
    controls = torch.stack([kind == 0, kind == 2], dim=-1).to(dtype)  # (S, L, 2)
    step_rows = step_pos * L + step_lane  # (N,) flat (S * L) row of each real step
    layer_input = values.new_zeros(S, L, values.shape[1]).index_put((step_pos, step_lane), values)
    hs, cs = [], []
    for layer in range(module.num_layers):
        if layer > 0 and module.training and module.dropout > 0:
            layer_input = nn.functional.dropout(layer_input, module.dropout, training=True)
        augmented = torch.cat([layer_input, controls], dim=-1)  # (S, L, F_l + 2)
        params = [layer_params(module, cell, layer, d, reset=True) for d in range(D)]
        # (S, L, D * H_out). Not zeroed: an LSTM outputs exact zeros at pads and resets, and a
        # GRU's finite values there are no-ops for the next layer; only real steps are read.
        raw = _run_layer(module, cell, augmented, params, plan)
        for d in range(D):
            h_d = raw[..., d * H_out : (d + 1) * H_out]
            hs.append(_gather_final(h_d, plan, reverse=d == 1))
            if cell_state:
                c_all = _recompute_cell(
                    augmented, h_d, params[d], has_biases=module.bias, reverse=d == 1
                )
                cs.append(_gather_final(c_all, plan, reverse=d == 1))
        layer_input = raw
    out = layer_input.reshape(S * L, -1).index_select(0, step_rows)  # (N, D * H_out)
    h = torch.stack(hs) if hs else values.new_zeros(0, B, H_out)
    c = torch.stack(cs) if cell_state else None
    return LanesOutput(out, h, c, plan)


def _run_layer(
    module: LSTM | GRU, cell: Cell, x: Tensor, params: list[list[Tensor]], plan: LanePlan
) -> Tensor:
    """Run one layer over the windows of time-major ``x (S, L, F)``: ``(S, L, D * H_out)``."""
    L, S, W = plan.num_lanes, plan.total_length, plan.window
    D = len(params)
    H, H_out = module.hidden_size, module.proj_size or module.hidden_size
    sizes = [H_out, H][: cell.num_states]
    state = tuple(x.new_zeros(D, L, size) for size in sizes)
    flat = [p for direction in params for p in direction]
    outs = []
    for start in range(0, S, W):
        window = x[start : start + W].transpose(0, 1)  # (L, W, F) view of time-major memory
        out, state = cell.kernel(
            window,
            state,
            flat,
            has_biases=module.bias,
            bidirectional=D == 2,
            train=module.training,
        )
        outs.append(out.transpose(0, 1))  # (W, L, D * H_out)
    if not outs:
        return x.new_zeros(0, L, D * H_out)
    # One window: the kernel's output already is time-major memory; only join several.
    return outs[0].contiguous() if len(outs) == 1 else torch.cat(outs)


def _gather_final(per_step: Tensor, plan: LanePlan, *, reverse: bool) -> Tensor:
    """Pick each sequence's last processed step from ``(S, L, K)``: ``(B, K)``, 0 for length 0."""
    S, L, K = per_step.shape
    lengths = torch.from_numpy(plan.lengths).to(per_step.device)
    lane = torch.from_numpy(plan.lane).clamp(min=0).to(per_step.device)
    start = torch.from_numpy(plan.start).to(per_step.device)
    step = start if reverse else start + (lengths - 1).clamp(min=0)
    if S == 0:
        return per_step.new_zeros(lengths.shape[0], K)
    picked = per_step.reshape(S * L, K).index_select(0, step * L + lane)
    zero = torch.zeros((), dtype=picked.dtype, device=picked.device)
    return torch.where((lengths > 0)[:, None], picked, zero)


def _recompute_cell(
    x: Tensor, h: Tensor, params: list[Tensor], *, has_biases: bool, reverse: bool
) -> Tensor:
    """Rebuild an LSTM direction's ``c`` at every step from its input and exact ``h`` outputs.

    Only the gates that enter ``c`` (``i``, ``f``, ``g``) are computed: two matrix products
    with the biases and the previous ``h`` accumulated in place, activations in place when no
    gradient is needed, then the linear recurrence.

    Args:
        x: ``(S, L, F_l + 2)`` the layer input the kernel saw (controls included).
        h: ``(S, L, H_out)`` the kernel's output for this direction.
        params: This direction's parameters as given to the kernel (``W_ih`` with controls).
        has_biases: Whether ``params`` holds the two bias vectors.
        reverse: Whether the direction runs backward in time.

    Returns:
        ``(S, L, H)`` the cell state after each step (a strided view).
    """
    S, L, _ = h.shape
    w_ih, w_hh = params[0], params[1]
    H = w_hh.shape[0] // 4
    w_x, w_h = w_ih[: 3 * H].T, w_hh[: 3 * H].T  # gates i, f, g; o does not enter c
    x_rows, h_rows = x.reshape(S * L, -1), h.reshape(S * L, -1)
    if has_biases:
        gates = torch.addmm((params[2] + params[3])[: 3 * H], x_rows, w_x)  # (S * L, 3H)
    else:
        gates = x_rows @ w_x
    if S > 1:
        # Each step also sees the h of the step before it (after it, backward); the first, 0.
        seen, rows = (h_rows[L:], slice(0, -L)) if reverse else (h_rows[:-L], slice(L, None))
        gates[rows].addmm_(seen, w_h)
    gates = gates.view(S, L, 3 * H)
    if torch.is_grad_enabled() and gates.requires_grad:
        i, f, g = torch.split(gates, H, dim=-1)
        forget, update = torch.sigmoid(f), torch.sigmoid(i) * torch.tanh(g)
    else:  # one pass over the gates each, no new tensors
        gates[..., : 2 * H].sigmoid_()
        i, forget, g = torch.split(gates, H, dim=-1)
        update = i.mul_(g.tanh_())
    return _linear_scan(forget, update, reverse=reverse)


def _linear_scan(a: Tensor, b: Tensor, *, reverse: bool) -> Tensor:
    """Return ``c (S, L, H)``: ``c_t = a_t * c_(t-1) + b_t`` along time (``c_(t+1)``, reverse)."""
    result: Tensor = _LinearScan.apply(a, b, reverse)  # type: ignore[no-untyped-call]
    return result


class _LinearScan(torch.autograd.Function):
    """``c_t = a_t * c_(t-1) + b_t`` along dim 0 from zero (reverse: from the end); its adjoint."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, reverse: bool) -> Tensor:  # noqa: FBT001 (apply is positional)
        S = b.shape[0]
        c = torch.empty(b.shape, dtype=b.dtype, device=b.device)
        previous = torch.zeros_like(c[0])
        for t in range(S - 1, -1, -1) if reverse else range(S):
            previous = torch.addcmul(b[t], a[t], previous, out=c[t])
        ctx.reverse = reverse
        ctx.save_for_backward(a, c)
        return c

    @staticmethod
    def backward(ctx: Any, grad_c: Tensor) -> tuple[Tensor, Tensor, None]:
        a, c = ctx.saved_tensors
        S, reverse = grad_c.shape[0], ctx.reverse
        grad_b = torch.empty_like(grad_c)
        carried = torch.zeros_like(grad_c[0])
        for t in range(S) if reverse else range(S - 1, -1, -1):
            carried = torch.add(grad_c[t], carried, out=grad_b[t])
            carried = carried * a[t]
        grad_a = torch.zeros_like(a)
        if reverse:
            grad_a[:-1] = grad_b[:-1] * c[1:]
        else:
            grad_a[1:] = grad_b[1:] * c[:-1]
        return grad_a, grad_b, None
