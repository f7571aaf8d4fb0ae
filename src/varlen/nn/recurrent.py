"""Mask-aware LSTM and GRU that keep the central promise on torch's fused kernels.

Each sequence's outputs and final state equal what that sequence gives when run alone through
the same weights, whatever its padding side, pad values, batch-mates or direction.

How (the ``"padded"`` method, the default on CPU)
-------------------------------------------------
Packed input falls off torch's fused (oneDNN) CPU kernel into per-step ops. varlen keeps the
padded tensor on the fused kernel and makes every padded step a no-op instead: each layer's input
gets one extra column, a pad indicator (1 at padded steps, 0 at real ones), and the layer's input
weights get one matching column that pushes the gates to exact saturation at padded steps::

    LSTM: input gate -> 0, forget gate -> 1, output gate -> 0     (c' = c, h' = 0 exactly)
    GRU:  update gate -> 1                                         (h' = h up to rounding)

``sigmoid(+-1e30)`` is exactly 1 or 0 in floating point (1e4 in float16: the constant follows
the dtype the kernel computes in, autocast included), so at a padded step the cell state is
carried unchanged, all gate derivatives vanish exactly, and no gradient reaches the weights or
the inputs through a padded step. A state that is still zero (before a sequence starts, with the
default zero initial state) stays exactly zero, so padding *before* the real steps is harmless;
padding *after* them carries ``c`` to the end, and ``h`` is gathered at the last real step.
An LSTM's outputs at pads come out of the kernel exactly zero (``o = 0``); a GRU's are zeroed.
With a non-zero initial state ``hx``, every direction must meet its real steps first, so the
batch is moved to post-padding and the backward direction runs on sequences reversed in place.
The real input values at padded steps are replaced by zeros first, so NaN or garbage pads
cannot leak. The added column is built from the module's own weights on each call: the
parameters, their names and the state dict are exactly those of :class:`torch.nn.LSTM`.

Which path a mask takes
-----------------------
- ``lengths``, a contiguous ``mask`` or nothing: the padded method above, in the given layout.
- A ``mask`` with holes (missing steps inside a sequence): Keras semantics, a masked step leaves
  the state unchanged and outputs zeros. That equals running the sequence with its masked steps
  removed, which is what happens: real steps are gathered to the front (post-padding), run as
  above, and the outputs scattered back to their places.
- ``method="packed"`` (the default on CUDA, not yet measured: ``benchmarks/bench_gpu.py``): the
  batch is packed internally (any order, lengths on any device; lengths on an accelerator are
  moved to the CPU, one sync), with length-0 rows left out of the pack and given the initial
  state.

Structure: a call is validated (:func:`_resolve`), planned (:func:`varlen.nn._plans.plan_call`,
pure, its constants in a :class:`~varlen.nn._plans.Tuning`) and run along the plan's route; the
control columns and the raw kernel calls live in :mod:`varlen.nn._gates`. While a graph is
captured (``torch.compile`` with ``allow_rnn``, ``torch.export``, the dynamo ONNX exporter) the
value checks are skipped and the plan is always the general padded route, so no example batch
shapes the graph; legacy TorchScript tracing is refused.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from varlen._checks import check_choice, check_side, error_context, unplaced
from varlen._types import Padding
from varlen.data.ragged import Ragged
from varlen.data.step_kernels import STEP_KERNELS
from varlen.nn._checks import check_agreement, check_mask, read_lengths
from varlen.nn._gates import (
    GRU_CELL,
    LSTM_CELL,
    Cell,
    State,
    dynamo_skips_rnn,
    eagerly,
    forget_rnn_decompositions,
    input_weight,
    layer_params,
    module_params,
    num_directions,
    output_size,
    param,
    zero_state,
)
from varlen.nn._inputs import forward_any
from varlen.nn._plans import (
    _FULL,
    _PADDED_SELECT,
    Method,
    Plan,
    Tuning,
    capturing_graph,
    gru_tuning,
    has_no_pads,
    lstm_tuning,
    plan_call,
)
from varlen.nn.functional import _mask, repad, reverse_padded

__all__ = ["GRU", "LSTM", "LSTMState", "Method"]

_METHODS: tuple[Method, ...] = ("auto", "padded", "packed")


class LSTMState(NamedTuple):
    """Final (or initial) LSTM state in torch's layout.

    ``h`` is ``(L * D, B, H_out)`` and ``c`` is ``(L * D, B, H)``, layer-major and, within a
    layer, forward direction first — the layout of :class:`torch.nn.LSTM`, so ``h, c = state``
    and ``lstm(x, hx=(h, c))`` work as with torch. ``H_out`` is ``proj_size`` if set, else ``H``.
    """

    h: Tensor
    c: Tensor


class _Inputs(NamedTuple):  # a NamedTuple: made on every call, cheaper than a frozen dataclass
    """A validated call: ``x`` in ``layout`` (pads NOT zeroed) and how to restore the layout."""

    x: Tensor  # (B, T, F)
    lengths: Tensor  # (B,) int64 on x.device
    layout: Padding
    padding: Padding  # the caller's layout
    gather: Tensor | None  # (B, T) positions of the real steps when the mask had holes
    unmasked: bool = False  # no lengths and no mask were given: every step is real
    host_lengths: Tensor | None = None  # the lengths if they are on the host (read: no sync)
    graph: bool = False  # a graph is being captured (compile, export): shape-generic ops only
    total: int | None = None  # N, the sum of the lengths, if read on the host as Python ints


def _unpack_input(
    module: nn.RNNBase, x: Any, lengths: Any, mask: Any, padding: Any
) -> tuple[Tensor, Any, Any, Any]:
    """Turn a Ragged or a batch object into ``(x, lengths, mask, padding)``."""
    if isinstance(x, Tensor):
        return x, lengths, mask, padding
    given = [name for name, value in (("lengths", lengths), ("mask", mask)) if value is not None]
    if isinstance(x, Ragged):
        if given:
            raise unplaced(ValueError(f"{given[0]} must be None when x is a Ragged, got a value."))
        padded, kept = x.to_padded(padding="post")
        weight = input_weight(module)
        tensor = torch.from_numpy(padded).to(device=weight.device, dtype=weight.dtype)
        return tensor, torch.from_numpy(kept), None, "post"
    if hasattr(x, "x") and hasattr(x, "lengths"):
        if given:
            raise unplaced(ValueError(f"{given[0]} must be None when x is a batch, got a value."))
        return x.x, x.lengths, None, getattr(x, "padding", padding)
    raise unplaced(
        TypeError(
            "x must be a Tensor (B, T, F), a varlen.Ragged or a batch with .x and "
            f".lengths, got {type(x).__name__}."
        )
    )


def _check_x(module: nn.RNNBase, x: Tensor) -> None:
    if x.ndim != 3:
        raise unplaced(ValueError(f"x must have shape (B, T, F), got {tuple(x.shape)}."))
    if x.shape[2] != module.input_size:
        raise unplaced(
            ValueError(
                f"x must have F = input_size = {module.input_size} features, "
                f"got shape {tuple(x.shape)}."
            )
        )
    weight = input_weight(module)
    if x.device != weight.device:
        raise unplaced(
            ValueError(f"x must be on the device of the weights, {weight.device}, got {x.device}.")
        )
    if x.dtype != weight.dtype:
        raise unplaced(
            TypeError(
                f"x must have the dtype of the weights, {weight.dtype}, got {x.dtype}. "
                f"Cast x with .to({weight.dtype}) or the module with .to({x.dtype})."
            )
        )


def _compress(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Gather each row's real steps to the front; return ``(x_post, lengths, positions)``."""
    # A stable sort of "is padding" lists real steps first, in their order: (B, T) positions.
    positions = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
    rows = torch.arange(x.shape[0], device=x.device)[:, None]
    return x[rows, positions], mask.sum(dim=1, dtype=torch.int64), positions


def _resolve(
    module: nn.RNNBase,
    x: Any,
    lengths: Any,
    mask: Any,
    padding: Any,
    *,
    graph: bool | None = None,
) -> _Inputs:
    """Validate one call and bring it to a padded batch with lengths and a known layout.

    ``graph``: whether a graph is being captured (:func:`capturing_graph`), if known.
    """
    x, lengths, mask, padding = _unpack_input(module, x, lengths, mask, padding)
    padding = check_side(None, "padding", padding)
    if not isinstance(x, Tensor):
        raise unplaced(TypeError(f"x must be a Tensor, got {type(x).__name__}."))
    _check_x(module, x)
    B, T, _ = x.shape
    if graph is None:
        graph = capturing_graph()
    host: Tensor | None = None
    total: int | None = None
    if lengths is not None:
        # Values are checked eagerly only (never while a graph is captured); lengths on the
        # host are checked and planned with no device sync.
        checked, read = read_lengths(None, lengths, B=B, T=T, values=not graph)
        host = checked if checked.is_cpu and not graph else None
        total = None if read is None or graph else sum(read)
        lengths = checked if checked.device == x.device else checked.to(x.device, non_blocking=True)
    if mask is None:
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.int64, device=x.device)
            return _Inputs(x, lengths, padding, padding, None, unmasked=True)
        return _Inputs(x, lengths, padding, padding, None, host_lengths=host, total=total)
    mask = check_mask(None, mask, B=B, T=T).to(x.device, non_blocking=True)
    if lengths is not None and not graph:  # reads both on the host: eager only
        expected = _mask(lengths, T, padding)
        check_agreement(None, lengths, mask, padding=padding, expected=expected)
    counts = mask.sum(dim=1, dtype=torch.int64)
    if graph or x.device.type != "cpu":
        # Whether the mask has holes would be read on the host: take the general route, which
        # gathers the real steps of any mask (contiguous or not) to the front.
        x, lengths, positions = _compress(x, mask)
        return _Inputs(x, lengths, "post", padding, positions)
    if _contiguous_side(mask, counts, (padding,)) is not None:
        return _Inputs(x, counts, padding, padding, None, host_lengths=counts)
    x, lengths, positions = _compress(x, mask)
    return _Inputs(x, lengths, "post", padding, positions, host_lengths=counts)


def _restore(inputs: _Inputs, out: Tensor) -> Tensor:
    """Put outputs computed in ``inputs.layout`` back in the caller's layout."""
    if inputs.gather is None and inputs.layout == inputs.padding:
        return out
    if inputs.gather is not None:
        # Real step k of row b came from position gather[b, k]: send it back there.
        inverse = torch.argsort(inputs.gather, dim=1)
        rows = torch.arange(out.shape[0], device=out.device)[:, None]
        return out[rows, inverse]  # pads receive zeros from the compressed pads
    return repad(out, inputs.lengths, padding=inputs.layout, to=inputs.padding)


def _check_state(module: nn.RNNBase, cell: Cell, hx: Any, B: int, x: Tensor) -> State | None:
    if hx is None:
        return None
    D = num_directions(module)
    H_out = module.proj_size or module.hidden_size
    shapes = [(module.num_layers * D, B, H_out), (module.num_layers * D, B, module.hidden_size)]
    if cell.num_states == 1:
        if not isinstance(hx, Tensor):
            raise unplaced(TypeError(f"hx must be a Tensor (L*D, B, H), got {type(hx).__name__}."))
        state: State = (hx,)
    else:
        if not (
            isinstance(hx, tuple)
            and len(hx) == 2
            and isinstance(hx[0], Tensor)
            and isinstance(hx[1], Tensor)
        ):
            raise unplaced(
                TypeError(f"hx must be a tuple (h0, c0) of two tensors, got {type(hx).__name__}.")
            )
        state = hx
    dtype, device = x.dtype, x.device
    for name, tensor, shape in zip(("h0", "c0"), state, shapes, strict=False):
        if tensor.shape == shape and tensor.dtype == dtype and tensor.device == device:
            continue  # (the common case: one comparison each)
        if tuple(tensor.shape) != shape:
            raise unplaced(
                ValueError(
                    f"{name} must have shape (L*D, B, H) = {shape}, got {tuple(tensor.shape)}."
                )
            )
        if tensor.dtype != x.dtype or tensor.device != x.device:
            raise unplaced(
                TypeError(
                    f"{name} must have dtype {x.dtype} on {x.device}, "
                    f"got {tensor.dtype} on {tensor.device}."
                )
            )
    return state


def _last_processed(
    lengths: Tensor, T: int, layout: Padding, *, reverse: bool, empty_rows: bool = True
) -> Tensor:
    """Index of the last real step a direction processes: (B,) int64, clamped for length 0.

    ``empty_rows=False``: the caller knows every length is at least 1, so no index is out of
    range and the clamp is skipped (one op fewer).
    """
    # Method forms: a Python operator on a tensor costs more dispatch.
    if reverse:  # the backward direction ends on the first real step
        index = torch.rsub(lengths, T) if layout == "pre" else torch.zeros_like(lengths)
    else:
        index = torch.full_like(lengths, T - 1) if layout == "pre" else lengths.sub(1)
    return index.clamp(0, max(T - 1, 0)) if empty_rows else index


def _final_h(out: Tensor, lengths: Tensor, layout: Padding, h0: Tensor, *, reverse: bool) -> Tensor:
    """Gather h at the last real step a direction processes; length-0 rows keep ``h0 (B, H)``."""
    B, T, _ = out.shape
    if T == 0:
        return h0
    index = _last_processed(lengths, T, layout, reverse=reverse)
    # gather reads the kernel's time-major output in place (a reshape would copy all of it).
    picked = out.gather(1, index[:, None, None].expand(B, 1, out.shape[2]))[:, 0]  # (B, H)
    return torch.where((lengths > 0)[:, None], picked, h0)


def _run_direction(
    module: nn.RNNBase, cell: Cell, layer: int, direction: int, x: Tensor, init: State
) -> tuple[Tensor, State]:
    """Run one direction of one layer forward in time on ``x``; init states ``(1, B, H_k)``."""
    params = layer_params(module, cell, layer, direction)
    return cell.kernel(
        x, init, params, has_biases=module.bias, bidirectional=False, train=module.training
    )


def _run_layer(
    module: nn.RNNBase,
    cell: Cell,
    layer: int,
    x: Tensor,
    lengths: Tensor,
    layout: Padding,
    init: State,
    *,
    zero_init: bool,
    picks: tuple[Tensor | None, ...] = (),
    graph: bool = False,
) -> tuple[Tensor, State]:
    """Run one layer on time-major ``x (T, B, F_l + 1)`` whose pads are no-ops.

    ``init`` holds ``(D, B, H_k)`` states. With ``zero_init``, ``picks`` holds per direction
    the ``(1, B, 1)`` step at which its final ``h`` is read, or ``None`` where the kernel's own
    final ``h`` is it (see :func:`_final_picks`). Returns time-major ``out (T, B, D * H_out)``
    (NOT zeroed at pads) and final states ``(D, B, H_k)``. While a graph is captured
    (``graph``) the kernel is called batch-first and ``out`` is its batch-first output
    ``(B, T, D * H_out)`` as it is (see :func:`_drive_padded`).
    """
    D = num_directions(module)
    H_out = init[0].shape[2]
    if zero_init:
        # One fused call for both directions: leading pads keep the zero state at zero and
        # trailing pads carry c, so any layout works. Time-major in and out: the layout the
        # kernel computes in, so neither side is transposed.
        params = layer_params(module, cell, layer, 0)
        if D == 2:
            params += layer_params(module, cell, layer, 1)
        out, finals = cell.kernel(
            x.transpose(0, 1) if graph else x,
            init,
            params,
            has_biases=module.bias,
            bidirectional=D == 2,
            train=module.training,
            batch_first=graph,
        )
        # Identity tests, no generator: this runs on every call, and tuple.count(None) would
        # compare each tensor with None through Tensor.__eq__ (~25 us each).
        for pick in picks:
            if pick is not None:
                break
        else:
            return out, finals
        # Gathered along time in the kernel's layout (while a graph is captured, the
        # exporter keeps the example's T in a gather from a transposed kernel output).
        time = 1 if graph else 0
        B = out.shape[1 - time]
        if D == 1:
            index = picks[0].expand(1, B, H_out)  # type: ignore[union-attr]
            if graph:  # out (B, T, H_out)
                h = out.gather(1, index.transpose(0, 1)).transpose(0, 1)
            else:  # out (T, B, H_out)
                h = out.gather(0, index)  # (1, B, H_out)
        else:
            h = torch.stack(
                [
                    finals[0][d]
                    if pick is None
                    else out[..., d * H_out : (d + 1) * H_out]
                    .gather(time, pick.expand(1, B, H_out).transpose(0, time))
                    .select(time, 0)
                    for d, pick in enumerate(picks)
                ]
            )
        return out, (h, *finals[1:])
    # A given initial state must meet the real steps first: post layout, and the backward
    # direction runs forward in time over the sequences reversed in place (batch-first here).
    x = x.transpose(0, 1)
    outs, hs, rests = [], [], []
    for d in range(D):
        x_d = reverse_padded(x, lengths, padding="post") if d == 1 else x
        out_d, finals = _run_direction(
            module, cell, layer, d, x_d, tuple(s[d : d + 1] for s in init)
        )
        hs.append(_final_h(out_d, lengths, "post", init[0][d], reverse=False))
        rests.append(finals[1:])
        outs.append(reverse_padded(out_d, lengths, padding="post") if d == 1 else out_d)
    rest = tuple(torch.cat(parts) for parts in zip(*rests, strict=True))
    joined = torch.cat(outs, dim=-1)  # (B, T, D * H_out)
    return (joined if graph else joined.transpose(0, 1)), (torch.stack(hs), *rest)


def _pad_steps(lengths: Tensor, T: int, layout: Padding, *, graph: bool = True) -> Tensor:
    """``(T, B, 1)`` bool, True at padded steps, time-major as the kernel reads its input.

    Eagerly (``graph`` False) one comparison with a kept step index (see
    :func:`_step_index`); while a graph is captured, from a fresh ``arange`` of ``T``.
    """
    if not graph:
        return torch.ge(_step_index(T, lengths.device, layout), lengths).unsqueeze(2)
    steps = torch.arange(T, device=lengths.device).unsqueeze(1)  # (T, 1), broadcast to (T, B)
    if layout == "post":
        return (steps >= lengths).unsqueeze(2)
    return (steps < torch.rsub(lengths, T)).unsqueeze(2)


# Per (T, device, layout): the step index of T steps (at most _MAX_STEP_INDEXES kept).
_STEPS: dict[tuple[int, torch.device, Padding], Tensor] = {}
_MAX_STEP_INDEXES = 256


def _step_index(T: int, device: torch.device, layout: Padding) -> Tensor:
    """``(T, 1)`` int64 that is ``>= lengths[b]`` exactly at row ``b``'s padded steps.

    Post-padding: ``t``; pre-padding: ``T - 1 - t`` (step ``t`` is a pad when
    ``t < T - lengths[b]``). A constant: made once per ``T``, device and layout and kept (a
    dictionary lookup costs less than slicing a longer index).
    """
    key = (T, device, layout)
    steps = _STEPS.get(key)
    if steps is None:
        if len(_STEPS) >= _MAX_STEP_INDEXES:
            _STEPS.clear()
        with torch.inference_mode(mode=False):  # a normal tensor even under inference_mode
            made = torch.arange(T, device=device)
            steps = _STEPS[key] = (made if layout == "post" else made.flip(0)).unsqueeze(1)
    return steps


def _final_picks(lengths: Tensor, T: int, layout: Padding, D: int) -> tuple[Tensor | None, ...]:
    """Per direction, the ``(1, B, 1)`` step holding its final ``h`` (zero initial state).

    ``None`` where the kernel's own final ``h`` is already it: a direction that ends on the
    padded side ends on pads, where an LSTM's ``h`` is exactly 0 and a GRU carries ``h``
    (approximately), so it is read at the direction's last real step; a direction that ends on
    the real side ends on it. A length-0 row reads a pad step, where a zero state is still
    exactly zero: the initial state.
    """
    picks: list[Tensor | None] = []
    for d in range(D):
        ends_on_pads = (layout == "post") == (d == 0)
        if not ends_on_pads:
            picks.append(None)
            continue
        index = _last_processed(lengths, T, layout, reverse=d == 1)
        picks.append(index.view(1, -1, 1))
    return tuple(picks)


def _zero_pads(x: Tensor, pads: Tensor, indicator: Tensor, *, graph: bool = True) -> Tensor:
    """``x (T, B, F)`` with exact zeros at padded steps, whatever the caller left there.

    ``pads (T, B, 1)`` is True at padded steps and ``indicator`` is it as 1.0/0.0. Eagerly
    (``graph`` False) on the CPU, one multiplication by ``1 - indicator`` does it (a real step
    times 1 is itself, a finite pad times 0 is 0) and the sum of the result, read on the host
    for free, shows whether every value was finite; if not (NaN or inf anywhere, even at real
    steps), or while a graph is captured, or on an accelerator, a masked fill (several times
    slower on the CPU) does it instead. Both give the same values and the same gradient (zero
    at pads). Small batches take :func:`_select_input` instead.
    """
    if not graph and x.device.type == "cpu":
        kept = x * torch.rsub(indicator, 1)
        total = kept.sum()
        if math.isfinite((total.detach() if total.requires_grad else total).item()):
            return kept
    return x.masked_fill(pads, 0)


# Per (F, dtype, device): the (F + 1,) input row of a padded step, zeros then the indicator 1.
_PAD_ROWS: dict[tuple[int, torch.dtype, torch.device], Tensor] = {}


def _select_input(x: Tensor, pads: Tensor) -> Tensor:
    """The first layer's input in one select: ``(T, B, F + 1)``, time-major.

    ``x (B, T, F)``, ``pads (T, B, 1)`` True at padded steps. A real step is ``(x, 0)`` (``x``
    padded with a zero indicator column); a padded step is the constant row ``(0, ..., 0,
    1)``, whatever the caller left there (NaN, inf). The gradient reaches ``x`` at real steps
    only. The same values as :func:`_zero_pads` then a concatenation with the indicator, in
    2 ops instead of 6 (the indicator, ``1 -`` it, the product, its sum read on the host, the
    concatenation); eagerly only, the row is kept per ``F``, dtype and device.
    """
    F = x.shape[2]
    key = (F, x.dtype, x.device)
    row = _PAD_ROWS.get(key)
    if row is None:
        with torch.inference_mode(mode=False):  # a normal tensor even under inference_mode
            row = _PAD_ROWS[key] = torch.zeros(F + 1, dtype=x.dtype, device=x.device)
            row[F] = 1
    # constant_pad_nd is the op nn.functional.pad ends in for a constant pad, without its
    # Python dispatch (~2 us in a call that costs ~100).
    return torch.where(pads, row, torch.constant_pad_nd(x.transpose(0, 1), (0, 1)))


def _drive_padded(
    module: nn.RNNBase, cell: Cell, inputs: _Inputs, hx: State | None, *, select: bool = False
) -> tuple[Tensor, State]:
    """The padded method: layer by layer on the fused kernel, pads made no-ops.

    ``select``: zero the pads by one select (the plan's choice, see :func:`_zero_pads`).
    Every layer runs time-major ``(T, B, F_l + 1)``, the layout the kernel computes in; the
    outputs are handed back batch-first (a view).
    """
    x, lengths, layout, graph = inputs.x, inputs.lengths, inputs.layout, inputs.graph
    if hx is not None and layout == "pre":
        x, layout = repad(x, lengths, padding="pre", to="post"), "post"
        inputs = _Inputs(x, lengths, "post", inputs.padding, inputs.gather)
    B, T, _ = x.shape
    D = num_directions(module)
    pads = _pad_steps(lengths, T, layout, graph=graph)  # (T, B, 1)
    select = select and not graph
    # A zero state is only read (the kernel's final states are new tensors): kept eagerly.
    state = hx if hx is not None else zero_state(module, cell, B, x, kept=not graph)
    picks = _final_picks(lengths, T, layout, D) if hx is None else ()
    finals: list[State] = []
    # Time-major (T, B, F_l): the kernel reads its input so, and a concatenation along the
    # features of time-major views comes out in that layout (no copy inside torch.lstm).
    # Whatever the caller left at padded steps (NaN, garbage) is replaced by zeros first.
    # The indicator column as 1.0/0.0 (T, B, 1): for every layer but a selected first one.
    indicator: Tensor | None = None
    if select:
        layer_input = x  # the first layer's input is made in one select below
    else:
        indicator = pads.to(x.dtype)
        layer_input = _zero_pads(x.transpose(0, 1), pads, indicator, graph=graph)
    layers = module.num_layers
    out_bf = x  # (set by every layer while a graph is captured)
    for layer in range(layers):
        if layer > 0 and module.training and module.dropout > 0:
            layer_input = nn.functional.dropout(layer_input, module.dropout, training=True)
        init = state if layers == 1 else tuple(s[layer * D : (layer + 1) * D] for s in state)
        if select and layer == 0:
            augmented = _select_input(x, pads)  # (T, B, F + 1)
        else:
            if indicator is None:
                indicator = pads.to(x.dtype)
            augmented = torch.cat([layer_input, indicator], dim=2)  # (T, B, F_l + 1)
        out, final = _run_layer(
            module,
            cell,
            layer,
            augmented,
            lengths,
            layout,
            init,
            zero_init=hx is None,
            picks=picks,
            graph=graph,
        )  # (T, B, D * H_out) (graph: (B, T, ...)); finite at pads, an LSTM's exactly zero
        finals.append(final)
        if graph:
            # The fake kernel's output has the example's T as a constant (torch decomposes
            # aten.lstm/gru step by step to infer its shape), and a concatenation with the
            # indicator or the graph's output would carry it on: the ONNX exporter then folds
            # it into a Reshape that takes only that T. Copied into a buffer of x's own
            # (symbolic) T, as the pre-issue-23 code did, the graph stays shape-generic.
            # (Copied batch-first, the kernel's layout while a graph is captured; the
            # batch-first copy is what the graph returns.)
            out_bf = x.new_empty(T, B, out.shape[2]).transpose(0, 1).copy_(out)
            out = out_bf.transpose(0, 1)
        layer_input = out
    merged = (
        finals[0]
        if len(finals) == 1
        else tuple(torch.cat(parts) for parts in zip(*finals, strict=True))
    )
    if not cell.zero_at_pads:  # a GRU carries h through pads: zero its outputs there
        if graph:
            return _restore(inputs, out_bf.masked_fill(pads.transpose(0, 1), 0)), merged
        out = torch.where(pads, 0.0, out) if select else out.masked_fill(pads, 0)
    return _restore(inputs, out_bf if graph else out.transpose(0, 1)), merged


def _drive_packed(
    module: nn.RNNBase, cell: Cell, inputs: _Inputs, hx: State | None
) -> tuple[Tensor, State]:
    """The packed method: torch's own packed path, length-0 rows left out of the pack.

    A batch without a real step has nothing to pack: it takes the padded method, whose
    outputs (zeros) and states stay connected to the weights, so ``backward`` works alike.
    """
    lengths_cpu = inputs.host_lengths
    if lengths_cpu is None:
        lengths_cpu = inputs.lengths.cpu()  # packing needs host lengths: one sync
    keep = (lengths_cpu > 0).nonzero()[:, 0]  # rows that enter the pack
    if keep.numel() == 0:
        return _drive_padded(module, cell, inputs, hx)
    x = repad(inputs.x, inputs.lengths, padding=inputs.layout, to="post")
    B, T, _ = x.shape
    state = hx if hx is not None else zero_state(module, cell, B, x)
    packed = pack_padded_sequence(
        x[keep.to(x.device)], lengths_cpu[keep], batch_first=True, enforce_sorted=False
    )
    keep = keep.to(x.device)
    sub_state = tuple(s[:, keep] for s in state)
    torch_hx = sub_state if cell.num_states == 2 else sub_state[0]
    packed_out, sub_final = cell.torch_class.forward(module, packed, torch_hx)
    padded_out, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=T)
    out = x.new_zeros(B, T, output_size(module)).index_copy(0, keep, padded_out)
    sub_finals = sub_final if isinstance(sub_final, tuple) else (sub_final,)
    finals = tuple(f.index_copy(1, keep, s) for f, s in zip(state, sub_finals, strict=True))
    post = _Inputs(x, inputs.lengths, "post", inputs.padding, inputs.gather)
    return _restore(post, out), finals


def _forward(
    module: nn.RNNBase,
    cell: Cell,
    x: Any,
    lengths: Any,
    *,
    mask: Any,
    padding: Any,
    hx: Any,
    method: Method,
    tuning: Tuning | None = None,
) -> tuple[Tensor, State]:
    """The whole forward of :class:`LSTM` and :class:`GRU`: validate, plan, run.

    Under ``torch.compile`` it runs eagerly, as dynamo runs ``torch.nn.LSTM``: dynamo does not
    trace RNN modules unless ``torch._dynamo.config.allow_rnn`` is set (then it is traced, as
    torch's own LSTM is, along the general route). The choice cannot rest on
    ``torch.compiler.is_compiling()``: a frame dynamo gives up on runs as plain Python, whose
    callees dynamo would still try to compile piece by piece.
    """
    run = eagerly(_plan_and_run) if dynamo_skips_rnn() else _plan_and_run
    return run(
        module, cell, x, lengths, mask=mask, padding=padding, hx=hx, method=method, tuning=tuning
    )


def _plan_and_run(
    module: nn.RNNBase,
    cell: Cell,
    x: Any,
    lengths: Any,
    *,
    mask: Any,
    padding: Any,
    hx: Any,
    method: Method,
    tuning: Tuning | None = None,
) -> tuple[Tensor, State]:
    """Validate, plan, run (``tuning``: the module's own, :func:`cell_tuning`, if ``None``)."""
    with error_context(cell.public_name):
        graph = capturing_graph()
        if graph and torch.jit.is_tracing():  # type: ignore[attr-defined, no-untyped-call]
            raise unplaced(
                RuntimeError(
                    "legacy TorchScript tracing (torch.jit.trace, torch.onnx.export with "
                    "dynamo=False) records the example batch's sizes and values as constants, so "
                    "the graph would be silently wrong for other batches. Use "
                    "torch.onnx.export(..., dynamo=True), varlen.nn.export_onnx or "
                    "torch.export.export instead."
                )
            )
        method = check_choice(None, "method", method, _METHODS)
        inputs = _resolve(module, x, lengths, mask, padding, graph=graph)
        if graph:
            inputs = inputs._replace(graph=True)
        state = _check_state(module, cell, hx, inputs.x.shape[0], inputs.x)
    B, T, _ = inputs.x.shape
    plan = plan_call(
        B=B,
        T=T,
        host_lengths=inputs.host_lengths,
        unmasked=inputs.unmasked,
        method=method,
        device_type=inputs.x.device.type,
        graph=graph,
        tuning=cell_tuning(module, cell) if tuning is None else tuning,
        F=inputs.x.shape[2],
        total=inputs.total,
    )
    return _run(module, cell, inputs, state, plan)


def cell_tuning(module: nn.RNNBase, cell: Cell) -> Tuning:
    """The planner's constants for ``module``, with or without autograd recording.

    A step-by-step GRU pays per step run (:func:`~varlen.nn._plans.gru_tuning`); the fused
    LSTM kernel's costs are scaled to the layer's size
    (:func:`~varlen.nn._plans.lstm_tuning`).
    """
    if cell is GRU_CELL:
        return gru_tuning(module.hidden_size, module.input_size)
    stacks = module.num_layers * (2 if module.bidirectional else 1)
    training = torch.is_grad_enabled()
    return lstm_tuning(module.hidden_size, module.input_size, training=training, stacks=stacks)


def _run(
    module: nn.RNNBase, cell: Cell, inputs: _Inputs, state: State | None, plan: Plan
) -> tuple[Tensor, State]:
    """Run a validated call along its plan's route."""
    if plan.route == "empty":  # nothing to run: the kernels reject empty input
        B, T, _ = inputs.x.shape
        if B > 0:
            # T = 0: run one all-pad step (an exact no-op), so the zero outputs and the
            # initial state come out connected to the weights (backward and DDP see them).
            x = inputs.x.new_zeros(B, 1, inputs.x.shape[2])
            none = torch.zeros(B, dtype=torch.int64, device=x.device)
            out, final = _drive_padded(
                module, cell, _Inputs(x, none, "post", "post", None, graph=inputs.graph), state
            )
            return out[:, :0], final
        initial = state if state is not None else zero_state(module, cell, B, inputs.x)
        return inputs.x.new_zeros(B, T, output_size(module)), tuple(s.clone() for s in initial)
    if plan.route == "full":
        return _drive_full(module, cell, inputs.x, state, graph=inputs.graph)
    if plan.route == "packed":
        return _drive_packed(module, cell, inputs, state)
    if plan.route == "groups":
        return _drive_groups(
            module, cell, inputs, state, plan.groups, plan.group_steps, select=plan.select
        )
    return _drive_padded(module, cell, inputs, state, select=plan.select)


def _drive_groups(
    module: nn.RNNBase,
    cell: Cell,
    inputs: _Inputs,
    hx: State | None,
    groups: tuple[Tensor, ...],
    group_steps: tuple[int, ...],
    *,
    select: bool = False,
) -> tuple[Tensor, State]:
    """Run each group of rows to its planned steps, then put the rows back in order.

    ``group_steps``: per group, its longest length rounded up to the plan's grid (at most
    ``T``: few distinct kernel shapes; see :func:`varlen.nn._plans.row_groups`). Each group
    takes the padded method (or torch's own forward when it has no pads); its outputs are
    padded back to ``T`` with zeros, on the side of the layout.
    """
    x, lengths, layout = inputs.x, inputs.lengths, inputs.layout
    T = x.shape[1]
    outs, finals = [], []
    for rows, T_g in zip(groups, group_steps, strict=True):
        rows_lengths = lengths[rows]  # on the host: groups are planned on the CPU only
        steps = slice(0, T_g) if layout == "post" else slice(T - T_g, T)
        group = _Inputs(x[rows, steps], rows_lengths, layout, layout, None)
        group_hx = None if hx is None else tuple(s[:, rows] for s in hx)
        if T_g == 0:  # every row empty: zero outputs, the initial state
            initial = group_hx or zero_state(module, cell, len(rows), x)
            out, final = x.new_zeros(len(rows), 0, output_size(module)), initial
        elif has_no_pads(rows_lengths, T_g):
            out, final = _drive_full(module, cell, group.x, group_hx, graph=False)
        else:
            out, final = _drive_padded(module, cell, group, group_hx, select=select)
        # (B_g, T, H_total): zeros at the added steps, on the padded side.
        outs.append(
            nn.functional.pad(out, (0, 0, 0, T - T_g) if layout == "post" else (0, 0, T - T_g, 0))
        )
        finals.append(final)
    inverse = torch.argsort(torch.cat(groups))
    out = torch.cat(outs)[inverse]
    state = tuple(torch.cat(parts, dim=1)[:, inverse] for parts in zip(*finals, strict=True))
    return _restore(inputs, out), state


def _drive_full(
    module: nn.RNNBase, cell: Cell, x: Tensor, hx: State | None, *, graph: bool = True
) -> tuple[Tensor, State]:
    """Run a batch in which no row has a pad: the fused kernel over all layers, one call.

    Nothing needs to be made a no-op, so the control column, the per-layer calls and the
    gathers of the padded method are skipped (they cost ~100 us per call at ``B = 1``). It
    is the call torch's own forward ends in (``torch.lstm`` with the module's parameters,
    layers, dropout and training flag), without its Python checks: the call is validated.
    ``graph``: whether a graph is being captured (then the zero state is made afresh).
    """
    state = hx if hx is not None else zero_state(module, cell, x.shape[0], x, kept=not graph)
    return cell.kernel(
        x,
        state,
        module_params(module),
        has_biases=module.bias,
        bidirectional=module.bidirectional,
        train=module.training,
        num_layers=module.num_layers,
        dropout=module.dropout,
    )


def _fast_call(
    module: nn.RNNBase,
    cell: Cell,
    x: Any,
    lengths: Any,
    padding: Any,
    method: Method | None,
    *,
    hx: Any = None,
    mask: Any = None,
    batch_first: bool = False,
    native: Any = STEP_KERNELS,
) -> tuple[Tensor, State] | None:
    """The commonest calls, run with the least Python; ``None`` where they do not apply.

    It applies to an eager CPU call with ``x`` a plain batch-first ``(B, T, F)`` tensor of
    the weights' dtype, ``lengths`` an int64 ``(B,)`` CPU tensor (up to 256 rows) or instead
    a bool ``(B, T)`` CPU ``mask`` whose real steps are contiguous on either side (Keras's
    masks; see :func:`_mask_lengths`) or neither (every step real: torch's call, run as
    torch runs it), no autocast, with or without an initial state ``hx`` of the module's
    sizes. Every check of
    the general path is made once, in straight-line code (on a small model, 8 x 10 x 4 -> 16,
    the Python around the kernel costs more than the kernel), then the one planner
    (:func:`plan_call`) chooses the route. A batch without pads goes to the fused kernel over
    all layers (:func:`_drive_full`, the route of streaming and generation steps, which carry
    a state); the padded route with pads zeroed by one select and a zero initial state, the
    commonest, runs here, layer by layer: the same ops on the same values as
    :func:`_drive_padded`, so the same results and gradients. Any other route runs in the
    general path's driver (:func:`_run`). Anything this does not handle, and every error, goes
    to the general path. ``batch_first``: ``x`` is batch-first whatever the module's layout
    (:func:`forward_any` hands it so, see :func:`_core`). ``native``: the compiled step kernels
    the padded route may use (see :func:`_fast_padded`); ``None``: torch ops only.

    The padded route is written out here rather than calling :func:`_run_layer` and
    :func:`_final_picks`: measured side by side (``bench_overhead.py``, 8 x 10 x 4 -> 16
    inference), going through them gave 0.65-0.69 of torch's call against 0.72 inline, and
    at 32 x 29 x 12 -> 64 0.85-0.88 against 0.88-0.92. The bit-for-bit test against the
    general path (``tests/nn/test_gates.py``) keeps the two in step.
    """
    if (
        torch.compiler.is_compiling()  # first: dynamo traces nothing else here
        or x.__class__ is not Tensor
        or not (batch_first or module.batch_first)
        or padding not in _SIDES
        or (method if method is not None else module.method) not in _FAST_METHODS
        or x.ndim != 3
        or x.is_nested
        or not x.is_cpu
        or capturing_graph()  # (before any op on the mask: nothing is recorded)
    ):
        return None
    weight = param(module, "weight_ih_l0")
    B, T, F = x.shape
    if (
        x.dtype != weight.dtype
        or module.input_size != F
        or not weight.is_cpu
        or torch.is_autocast_enabled("cpu")
    ):
        return None
    state: State | None = None
    if hx is not None:
        state = _fast_state(module, cell, hx, B, x.dtype)
        if state is None:  # (errors: the general path raises them)
            return None
    if lengths is None and mask is None:
        return _fast_unpadded(module, cell, x, state, batch_first=batch_first)
    found = _fast_lengths(x, lengths, mask, padding)
    if found is None:
        return None
    lengths, padding = found
    read: list[int] = lengths.tolist() if B <= _FEW_LENGTHS else []
    shortest = min(read) if read else -1  # (none read: declined below)
    if shortest < 0 or max(read) > T:  # (errors: the general path raises them)
        return None
    total = sum(read)
    plan = plan_call(
        B=B, T=T, host_lengths=lengths, unmasked=False, method="auto", device_type="cpu",
        graph=False, tuning=cell_tuning(module, cell), F=F, total=total,
    )  # fmt: skip
    if plan is _FULL:
        return _drive_full(module, cell, x, state, graph=False)
    if plan is not _PADDED_SELECT or state is not None:
        # Row groups, the multiply route, a given state with pads: the general driver, on
        # the call validated above.
        inputs = _Inputs(x, lengths, padding, padding, None, host_lengths=lengths, total=total)
        with error_context(cell.public_name):
            return _run(module, cell, inputs, state, plan)
    return _fast_padded(module, cell, x, lengths, padding, empty_rows=shortest == 0, native=native)


def _fast_unpadded(
    module: nn.RNNBase, cell: Cell, x: Tensor, state: State | None, *, batch_first: bool
) -> tuple[Tensor, State] | None:
    """The fast call without lengths or mask: every step is real, so nothing is planned.

    Torch's own call, on the fused kernel over all layers (:func:`_drive_full`): 8 x 10 x 4 ->
    16 inference went from 100 us (the general path) to 79 us, against 97 us for
    ``torch.nn.LSTM``'s. ``None`` for an empty batch, and for a module built without
    ``batch_first`` and called so (ambiguous: the general path says so, see
    :func:`_check_call`) unless the caller has ``x`` batch-first already (``batch_first``).
    """
    B, T, _ = x.shape
    if B == 0 or T == 0 or not (batch_first or getattr(module, "_batch_first_given", True)):
        return None
    return _drive_full(module, cell, x, state, graph=False)


def _fast_padded(
    module: nn.RNNBase,
    cell: Cell,
    x: Tensor,
    lengths: Tensor,
    padding: Padding,
    *,
    empty_rows: bool,
    native: Any = STEP_KERNELS,
) -> tuple[Tensor, State]:
    """The fast call's padded route: a zero initial state, pads zeroed by one select.

    Layer by layer, the ops of :func:`_drive_padded` and :func:`_run_layer` on the same values
    (see :func:`_fast_call`): ``x (B, T, F)`` becomes the time-major ``(T, B, F + 1)`` first
    input, each later layer reads the previous output ``(T, B, D * H_out)`` (after dropout in
    training) with the indicator column, and the direction that ends on pads reads its final
    ``h`` at its last real step. ``empty_rows``: whether some length is 0. ``native``: the
    compiled step kernels (:data:`varlen.data.step_kernels.STEP_KERNELS`), which write the
    first input and, without autograd, copy the final ``h`` in one pass each (the same
    values); ``None``: torch ops only.
    """
    B, T, F = x.shape
    D = 2 if module.bidirectional else 1
    L = module.num_layers
    first, pads = _first_input(x, lengths, padding, native)  # (T, B, F + 1), (T, B, 1) | None
    zero = zero_state(module, cell, B, x, kept=True)  # (L * D, B, H_k)
    H_out = zero[0].shape[2]
    # The one direction that ends on pads reads its final h at its last real step: copied by
    # the kernel without autograd, else gathered at an index made once for all layers.
    d = 0 if padding == "post" else 1
    native_pick = native is not None and not torch.is_grad_enabled() and x.dtype in _STEP_DTYPES
    index = None
    if d < D and not native_pick:
        index = _final_index(lengths, T, padding, d, H_out, empty_rows=empty_rows)
    dropout = module.dropout if module.training else 0.0
    layer_finals: list[State] = []
    out = augmented = first  # (each layer's output, read by the next)
    for layer in range(L):
        if layer:
            layer_input = nn.functional.dropout(out, dropout, training=True) if dropout else out
            indicator = first[:, :, F:] if pads is None else pads.to(x.dtype)  # (T, B, 1)
            augmented = torch.cat([layer_input, indicator], dim=2)  # (T, B, D * H_out + 1)
        params = layer_params(module, cell, layer, 0, plain=True)  # (checked above: plain)
        if D == 2:
            params += layer_params(module, cell, layer, 1, plain=True)
        init = zero if L == 1 else tuple(s[layer * D : (layer + 1) * D] for s in zero)
        out, finals = cell.kernel(
            augmented,
            init,
            params,
            has_biases=module.bias,
            bidirectional=D == 2,
            train=module.training,
            batch_first=False,
        )  # (T, B, D * H_out)
        if d < D:
            h = _pick_final(out, lengths, padding, d, H_out, index, native)  # (1, B, H_out)
            if D == 2:  # beside the other direction's own final h
                h = torch.cat((h, finals[0][1:]) if d == 0 else (finals[0][:1], h))
            finals = (h, *finals[1:])
        layer_finals.append(finals)
    merged = (
        layer_finals[0]
        if L == 1
        else tuple(torch.cat(parts) for parts in zip(*layer_finals, strict=True))
    )
    if not cell.zero_at_pads:  # a GRU carries h through pads: zero its outputs there
        if pads is None:
            pads = _pad_steps(lengths, T, padding, graph=False)
        out = torch.where(pads, 0.0, out)
    return out.transpose(0, 1), merged


_STEP_DTYPES = (torch.float32, torch.float64)  # what the compiled step kernels take


def _first_input(
    x: Tensor, lengths: Tensor, padding: Padding, native: Any
) -> tuple[Tensor, Tensor | None]:
    """The first layer's input ``(T, B, F + 1)`` and the pad mask ``(T, B, 1)`` if it was made.

    The compiled kernel (``native``) writes it in one pass from the lengths, for an ``x`` that
    needs no gradient (data; a gradient to ``x`` takes the torch ops, whose select carries it);
    otherwise the pad mask and one select (:func:`_select_input`). The same values either way.
    """
    if (
        native is not None
        and not x.requires_grad
        and x.dtype in _STEP_DTYPES
        and x.is_contiguous()
        and lengths.is_contiguous()
    ):
        B, T, F = x.shape
        first = torch.empty(T, B, F + 1, dtype=x.dtype)
        arrays = _arrays(x, lengths, first)
        if arrays is not None:
            native.time_major_steps(*arrays, padding == "pre")
            return first, None
    pads = _pad_steps(lengths, x.shape[1], padding, graph=False)  # (T, B, 1)
    return _select_input(x, pads), pads


def _arrays(a: Tensor, b: Tensor, c: Tensor) -> tuple[Any, Any, Any] | None:
    """NumPy views of three CPU tensors for the compiled kernels, or ``None``.

    ``None`` where one of them has no memory NumPy can see: the tensors ``torch.func``
    transforms wrap (``torch.func.grad`` over a model) have no storage; the torch ops then
    run, as they do for any input the kernels do not take.
    """
    try:
        return a.numpy(), b.numpy(), c.numpy()
    except RuntimeError:
        return None


def _pick_final(
    out: Tensor,
    lengths: Tensor,
    padding: Padding,
    d: int,
    H_out: int,
    index: Tensor | None,
    native: Any,
) -> Tensor:
    """``(1, B, H_out)``: direction ``d``'s output at its last real step, from ``out (T, B, W)``.

    Gathered at ``index`` (``(1, B, H_out)``, made by the caller when autograd may record);
    else copied by the compiled kernel, or gathered at an index made here.
    """
    T, B, W = out.shape
    if index is None and not out.requires_grad and out.is_contiguous() and lengths.is_contiguous():
        h = torch.empty(1, B, H_out, dtype=out.dtype)
        arrays = _arrays(out, lengths, h[0])
        if arrays is not None:
            native.last_steps(arrays[0], arrays[1], padding == "pre", d * H_out, arrays[2])
            return h
    if index is None:
        index = _final_index(lengths, T, padding, d, H_out)
    return (out if H_out == W else out[..., d * H_out : (d + 1) * H_out]).gather(0, index)


def _final_index(
    lengths: Tensor, T: int, padding: Padding, d: int, H_out: int, *, empty_rows: bool = True
) -> Tensor:
    """``(1, B, H_out)`` int64: direction ``d``'s last processed step per row, for a gather."""
    index = _last_processed(lengths, T, padding, reverse=d == 1, empty_rows=empty_rows)
    return index.view(1, -1, 1).expand(1, lengths.shape[0], H_out)


def _fast_lengths(
    x: Tensor, lengths: Any, mask: Any, padding: Padding
) -> tuple[Tensor, Padding] | None:
    """The fast call's int64 CPU ``lengths (B,)`` and side, from ``lengths`` or ``mask``.

    ``None`` where neither gives them in the form the fast call takes (see
    :func:`_mask_lengths`); the general path then checks and converts what was given.
    """
    if mask is not None:
        found = _mask_lengths(x, lengths, mask, padding)
        if found is None:
            return None
        lengths, padding = found
    if (
        lengths.__class__ is not Tensor
        or lengths.dtype != torch.int64
        or lengths.ndim != 1
        or not lengths.is_cpu
        or lengths.shape[0] != x.shape[0]
    ):
        return None
    return lengths, padding


def _mask_lengths(
    x: Tensor, lengths: Any, mask: Any, padding: Padding
) -> tuple[Tensor, Padding] | None:
    """The lengths and side of a mask whose real steps are contiguous; ``None`` otherwise.

    For the fast call (which has checked ``x (B, T, F)`` and ``padding``): a bool ``(B, T)``
    CPU ``mask`` given without ``lengths``, real steps
    first (``"post"``) or last (``"pre"``) in every row, the side ``padding`` names tried
    first. A mask with holes, or anything else, is left to the general path (which gathers
    the real steps of any mask). The result is the call the mask describes, so the outputs
    are those of the other routes within float rounding (bit for bit where ``padding``
    names the mask's side). 4 ops: the counts, one comparison per side tried, no host read
    beyond :func:`torch.equal`'s answer.
    """
    if (
        lengths is not None
        or mask.__class__ is not Tensor
        or mask.dtype != torch.bool
        or mask.ndim != 2
        or mask.shape[0] != x.shape[0]
        or mask.shape[1] != x.shape[1]
        or not mask.is_cpu
    ):
        return None
    counts = mask.sum(dim=1, dtype=torch.int64)
    side = _contiguous_side(mask, counts, (padding, "pre" if padding == "post" else "post"))
    return None if side is None else (counts, side)


def _contiguous_side(mask: Tensor, counts: Tensor, sides: tuple[Padding, ...]) -> Padding | None:
    """The first of ``sides`` on which ``mask (B, T)``'s real steps are contiguous, or ``None``.

    ``counts (B,)`` are the mask's real steps per row. Eagerly, one comparison per side
    tried: the mask ``counts`` describes on that side, built from the kept step index, and
    :func:`torch.equal` against ``mask``.
    """
    T = mask.shape[1]
    column = counts.view(-1, 1)  # (B, 1) against a (1, T) step index
    for side in sides:
        if torch.equal(torch.lt(_step_index(T, mask.device, side).view(1, T), column), mask):
            return side
    return None


def _fast_state(
    module: nn.RNNBase, cell: Cell, hx: Any, B: int, dtype: torch.dtype
) -> State | None:
    """``hx`` as the state a fast call runs from; ``None`` unless it is exactly right.

    The checks of :func:`_check_state` in straight-line code: an LSTM's ``(h0, c0)`` tuple or
    a GRU's ``h0``, plain CPU tensors of ``dtype`` shaped ``(L * D, B, H_out)`` (``c0``:
    ``(L * D, B, H)``). Anything else is left to the general path, which says what is wrong.
    """
    LD = module.num_layers * (2 if module.bidirectional else 1)
    H = module.hidden_size
    if cell.num_states == 1:
        if hx.__class__ is not Tensor or hx.shape != (LD, B, H):
            return None
        state: State = (hx,)
    else:
        if not isinstance(hx, tuple) or len(hx) != 2:
            return None
        h, c = hx
        if (
            h.__class__ is not Tensor
            or c.__class__ is not Tensor
            or h.shape != (LD, B, module.proj_size or H)
            or c.shape != (LD, B, H)
            or c.dtype != dtype
            or not c.is_cpu
        ):
            return None
        state = (h, c)
    first = state[0]
    if first.dtype != dtype or not first.is_cpu:
        return None
    return state


def _core(
    module: nn.RNNBase,
    cell: Cell,
    x: Any,
    lengths: Any,
    *,
    mask: Any,
    padding: Any,
    hx: Any,
    method: Method,
) -> tuple[Tensor, State]:
    """The core :func:`forward_any` runs on a batch-first padded batch.

    The fast call where it applies (ragged inputs and ``batch_first=False`` modules reach it
    here, as a padded batch with int64 lengths), else the general path. A plain batch-first
    call was already offered to the fast call by ``forward`` (which skips this dispatch when
    it applies), so one it declined is declined again here, by the same early checks.
    """
    fast = _fast_call(module, cell, x, lengths, padding, method, hx=hx, mask=mask, batch_first=True)
    if fast is not None:
        return fast
    return _plan_and_run(module, cell, x, lengths, mask=mask, padding=padding, hx=hx, method=method)


_SIDES = ("post", "pre")
_FAST_METHODS = ("auto", "padded")  # (the padded route on the CPU; others: the general path)
_FEW_LENGTHS = 256


def _check_call(
    module: nn.RNNBase,
    x: Any,
    input_: Any,
    lengths: Any,
    *,
    mask: Any,
    hx: Any,
    offsets: Any,
) -> Any:
    """Return the input (``x``, or torch's ``input=``); refuse a call whose time axis is unclear.

    A module built without ``batch_first`` (``LSTM(F, H)``, as torch code builds it) reads a
    plain tensor batch-first, as varlen does, while ``torch.nn.LSTM(F, H)`` reads it
    time-major. A call that only torch code makes -- a 3-D tensor with neither lengths nor a
    mask, alone or with an initial state -- is therefore refused on such a module instead of
    running over the wrong axis: state the layout once, when building it.
    """
    name = f"varlen.nn.{type(module).__name__}"
    if input_ is not None:
        if x is not None:
            raise TypeError(f"{name}: give the input once, as x or as input=, got both.")
        x = input_
    if x is None:
        raise TypeError(f"{name}: forward() needs the input x (or input=, as with torch).")
    if torch.compiler.is_exporting() and not torch.compiler.is_dynamo_compiling():
        forget_rnn_decompositions()  # a dynamic T even after an earlier export (see there)
    torch_form = (
        lengths is None
        or isinstance(lengths, tuple)
        or (isinstance(lengths, Tensor) and lengths.is_floating_point() and lengths.ndim >= 2)
    )  # no lengths, or torch's positional hx where varlen's lengths go (bad lengths: their error)
    if (
        not getattr(module, "_batch_first_given", True)
        and isinstance(x, Tensor)
        and not x.is_nested
        and x.ndim == 3
        and torch_form
        and mask is None
        and offsets is None
    ):
        B, T = (x.shape[0], x.shape[1])
        state = "" if lengths is None and hx is None else " and an initial state"
        raise ValueError(
            f"{name}: this module was built without batch_first and called torch's way, on a "
            f"plain {tuple(x.shape)} tensor with no lengths or mask{state}: torch.nn."
            f"{type(module).__name__} reads it time-major (T={B}, B={T}), varlen batch-first "
            f"(B={B}, T={T}). Build it with batch_first=False (torch's layout) or "
            "batch_first=True (varlen's), or pass lengths."
        )
    return x


_FORWARD_DOC = """
        Args:
            x: ``(B, T, F)`` padded batch with the dtype of the weights (``(T, B, F)`` if the
                module was built with ``batch_first=False``); or one unbatched sequence
                ``(T, F)`` (states then ``(L * D, H)``, as with torch); or a nested jagged tensor
                ``(B, j, F)`` (``torch.nested``, ``layout=torch.jagged``); or values
                ``(N, F)`` of sequences end to end, with ``offsets``; or a
                :class:`torch.nn.utils.rnn.PackedSequence`; or a :class:`varlen.Ragged`
                (padded here, ``post``); or a batch object with ``.x``, ``.lengths`` and
                ``.padding`` (e.g. :class:`varlen.batching.Batch`).
            lengths: ``(B,)`` integer lengths, ``0 <= lengths <= T``, on any device. As with
                torch, an initial state passed here (``module(x, hx)``: a tuple for an LSTM,
                a 2-D or 3-D float tensor for a GRU) is taken as ``hx``.
            mask: ``(B, T)`` bool, True at real steps. Contiguous masks run like ``lengths``; a
                mask with holes follows Keras semantics (a masked step leaves the state
                unchanged and outputs zeros). Give ``lengths`` or ``mask`` or neither (every
                step real); if both are given they must agree.
            padding: Where the pads are: ``"post"`` (after the real steps) or ``"pre"``.
            hx: Initial state in torch's layout (see below); zeros when ``None``.
            method: The method for this call only (``"auto"``, ``"padded"``, ``"packed"``);
                ``None`` uses the module's ``method``. All give the same results.
            offsets: ``(B + 1,)`` int32 or int64 offsets (``cu_seqlens``) of the sequences
                in values ``x (N, F)``: sequence ``i`` is ``x[offsets[i]:offsets[i + 1]]``.
            input: ``x`` under torch's name (``module(input=x)``); give one of the two.

        Returns:
            ``(output, state)``: ``output`` in the form of ``x``: ``(B, T, D * H_out)`` in
            the layout of ``x``, exactly zero at padded steps; a nested jagged tensor
            ``(B, j, D * H_out)`` on the offsets of ``x``; values ``(N, D * H_out)`` for
            values with offsets; a ``PackedSequence`` with the batch sizes and sort indices of
            ``x``. ``state`` is the final state taken at each sequence's last real step (for
            the backward direction, its first real step), in the batch order of the input;
            length-0 sequences keep the initial state.

        Raises:
            TypeError: For a wrong type or dtype of ``x``, ``lengths``, ``mask`` or ``hx``.
            ValueError: For wrong shapes, lengths outside ``[0, T]``, a mask that disagrees
                with ``lengths``, ``padding`` not ``"pre"``/``"post"``, offsets that do not
                cut ``x``, ``lengths``/``mask`` given with a ragged ``x``, or a plain 3-D ``x``
                with neither ``lengths`` nor ``mask`` on a module built without
                ``batch_first`` (its time axis is unclear: see the class).
"""


class LSTM(nn.LSTM):
    """A batch-first LSTM whose results never depend on padding or batching.

    Takes the constructor arguments of :class:`torch.nn.LSTM` and has the same parameters, so a
    trained ``torch.nn.LSTM`` state dict loads unchanged, and takes torch's inputs too
    (``PackedSequence``, ``module(x, (h0, c0))``, time-major with ``batch_first=False``), so
    torch code runs on varlen's exact path by changing its import.

    Args:
        input_size: ``F``, features per step.
        hidden_size: ``H``.
        num_layers: ``L``.
        bias: Whether the layers have bias terms.
        batch_first: ``True`` (varlen's layout): a plain tensor ``x`` is ``(B, T, F)``;
            ``False``: it is time-major ``(T, B, F)``, and so are the outputs (as with torch).
            Lengths, masks and states keep their layouts. Not given (``None``): batch-first,
            but a call that only torch code makes -- a plain 3-D ``x`` with neither
            ``lengths`` nor ``mask`` (alone or with ``hx``) -- raises ``ValueError`` instead of
            running over the wrong axis, since ``torch.nn.LSTM(F, H)`` is time-major.
        dropout: Dropout on the outputs of each layer but the last, in training.
        bidirectional: ``D = 2`` if True.
        proj_size: ``H_out``, the size of the projected ``h`` (0: no projection, ``H_out = H``).
        method: ``"padded"`` (fused kernel on the padded batch, pads made exact no-ops),
            ``"packed"`` (pack internally: no compute on pads), or ``"auto"``: packed on CUDA,
            padded elsewhere. All give the same results.
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Example:
        >>> lstm = LSTM(3, 5, bidirectional=True, batch_first=True)
        >>> x = torch.randn(2, 4, 3)  # (B, T, F)
        >>> out, (h, c) = lstm(x, torch.tensor([4, 2]), padding="pre")
        >>> out.shape, h.shape  # (B, T, D * H), (L * D, B, H)
        (torch.Size([2, 4, 10]), torch.Size([2, 2, 5]))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,  # noqa: FBT001, FBT002  # positional as torch allows (a drop-in)
        batch_first: bool | None = None,  # noqa: FBT001  # None: not stated (see forward)
        dropout: float = 0.0,
        bidirectional: bool = False,  # noqa: FBT001, FBT002
        proj_size: int = 0,
        *,
        method: Method = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.method: Method = check_choice("LSTM", "method", method, _METHODS)
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias=bias,
            batch_first=True if batch_first is None else bool(batch_first),
            dropout=dropout,
            bidirectional=bidirectional,
            proj_size=proj_size,
            device=device,
            dtype=dtype,
        )
        self._batch_first_given = batch_first is not None

    def forward(  # type: ignore[override]  # takes lengths/mask/padding; see the class docstring
        self,
        x: Tensor | Ragged | Any = None,
        lengths: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        padding: Padding = "post",
        hx: tuple[Tensor, Tensor] | None = None,
        method: Method | None = None,
        offsets: Tensor | None = None,
        input: Tensor | Any = None,  # torch's name: forward(input=x)
    ) -> tuple[Any, LSTMState]:
        """Run the LSTM over the real steps of each sequence.

        ``hx`` is ``(h0, c0)`` with ``h0 (L * D, B, H_out)`` and ``c0 (L * D, B, H)``; the
        returned state is an :class:`LSTMState` in the same layout.
        """
        if offsets is None and input is None:
            fast = _fast_call(self, LSTM_CELL, x, lengths, padding, method, hx=hx, mask=mask)
            if fast is not None:
                return fast[0], LSTMState(*fast[1])
        x = _check_call(self, x, input, lengths, mask=mask, hx=hx, offsets=offsets)
        out, (h, c) = forward_any(
            self,
            LSTM_CELL,
            _core,  # forward_any runs it eagerly under torch.compile (see _forward)
            x,
            lengths,
            offsets=offsets,
            mask=mask,
            padding=padding,
            hx=hx,
            method=self.method if method is None else method,
        )
        return out, LSTMState(h, c)

    def extra_repr(self) -> str:
        """Describe the module as torch does, plus the method."""
        return f"{super().extra_repr()}, method={self.method!r}"

    def __prepare_scriptable__(self) -> nn.Module:
        """Refuse ``torch.jit.script`` with a clear error (scripting is legacy)."""
        raise RuntimeError(
            f"varlen.nn.{type(self).__name__} cannot be scripted with torch.jit.script: its "
            "forward takes keyword-only arguments and Python inputs (Ragged, batches). Use "
            "torch.compile, torch.export.export or torch.onnx.export(..., dynamo=True)."
        )


class GRU(nn.GRU):
    """A batch-first GRU whose results never depend on padding or batching.

    Takes the constructor arguments of :class:`torch.nn.GRU` and has the same parameters, so a
    trained ``torch.nn.GRU`` state dict loads unchanged, and takes torch's inputs too (see
    :class:`LSTM`).

    Args:
        input_size: ``F``, features per step.
        hidden_size: ``H``.
        num_layers: ``L``.
        bias: Whether the layers have bias terms.
        batch_first: As for :class:`LSTM`.
        dropout: Dropout on the outputs of each layer but the last, in training.
        bidirectional: ``D = 2`` if True.
        method: As for :class:`LSTM`.
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Example:
        >>> gru = GRU(3, 5, num_layers=2)
        >>> out, h = gru(torch.randn(2, 4, 3), torch.tensor([1, 4]))  # x: (B, T, F)
        >>> out.shape, h.shape  # (B, T, H), (L, B, H)
        (torch.Size([2, 4, 5]), torch.Size([2, 2, 5]))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,  # noqa: FBT001, FBT002  # positional as torch allows (a drop-in)
        batch_first: bool | None = None,  # noqa: FBT001  # None: not stated (see forward)
        dropout: float = 0.0,
        bidirectional: bool = False,  # noqa: FBT001, FBT002
        *,
        method: Method = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.method: Method = check_choice("GRU", "method", method, _METHODS)
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias=bias,
            batch_first=True if batch_first is None else bool(batch_first),
            dropout=dropout,
            bidirectional=bidirectional,
            device=device,
            dtype=dtype,
        )
        self._batch_first_given = batch_first is not None

    def forward(  # type: ignore[override]  # takes lengths/mask/padding; see the class docstring
        self,
        x: Tensor | Ragged | Any = None,
        lengths: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        padding: Padding = "post",
        hx: Tensor | None = None,
        method: Method | None = None,
        offsets: Tensor | None = None,
        input: Tensor | Any = None,  # torch's name: forward(input=x)
    ) -> tuple[Any, Tensor]:
        """Run the GRU over the real steps of each sequence.

        ``hx`` is ``h0 (L * D, B, H)``; the returned state has the same layout.
        """
        if offsets is None and input is None:
            fast = _fast_call(self, GRU_CELL, x, lengths, padding, method, hx=hx, mask=mask)
            if fast is not None:
                return fast[0], fast[1][0]
        x = _check_call(self, x, input, lengths, mask=mask, hx=hx, offsets=offsets)
        out, (h,) = forward_any(
            self,
            GRU_CELL,
            _core,  # forward_any runs it eagerly under torch.compile (see _forward)
            x,
            lengths,
            offsets=offsets,
            mask=mask,
            padding=padding,
            hx=hx,
            method=self.method if method is None else method,
        )
        return out, h

    def extra_repr(self) -> str:
        """Describe the module as torch does, plus the method."""
        return f"{super().extra_repr()}, method={self.method!r}"

    def __prepare_scriptable__(self) -> nn.Module:
        """Refuse ``torch.jit.script`` with a clear error (scripting is legacy)."""
        raise RuntimeError(
            f"varlen.nn.{type(self).__name__} cannot be scripted with torch.jit.script: its "
            "forward takes keyword-only arguments and Python inputs (Ragged, batches). Use "
            "torch.compile, torch.export.export or torch.onnx.export(..., dynamo=True)."
        )


LSTM.forward.__doc__ = (LSTM.forward.__doc__ or "") + _FORWARD_DOC
GRU.forward.__doc__ = (GRU.forward.__doc__ or "") + _FORWARD_DOC
