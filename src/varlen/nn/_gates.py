"""The gate-control trick, in one place: control columns that make chosen steps exact no-ops.

Every fused layer call in :mod:`varlen.nn.recurrent` and :mod:`varlen.nn.lanes` runs the same
way: the layer input gets indicator columns (1 at a controlled step, 0 at a real one) and the
layer's ``W_ih`` gets matching columns that drive chosen gates to exact saturation there::

    pad    LSTM: i -> 0, f -> 1, o -> 0   (c' = c, h' = 0)    GRU: z -> 1   (h' = h)
    reset  LSTM: i -> 0, f -> 0           (c' = 0, h' = 0)    GRU: r = z -> 0, n's input bias
                                                                   cancelled (h' = 0)

The saturating pre-activation follows the dtype the kernel computes in (the weights' dtype, or
the autocast dtype when autocast is on), so a column is never ``inf`` and ``0 * column`` at real
steps is exactly 0. This module holds the cells, the columns, the per-layer parameters and the
raw ``torch.lstm`` / ``torch.gru`` calls; it knows nothing about lengths, masks or plans.
"""

from __future__ import annotations

import functools
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

import torch
from torch import Tensor, nn

State: TypeAlias = tuple[Tensor, ...]  # LSTM: (h, c); GRU: (h,); each (L * D, B, H_k)
BATCH_FIRST = True

# sigmoid(+-x) is exactly 1 or 0 in these dtypes (exp(-x) underflows) and x is finite in them.
SATURATION: dict[torch.dtype, float] = {torch.float16: 1e4}
DEFAULT_SATURATION = 1e30  # float32, float64, bfloat16 (float32's exponent range)


@dataclass(frozen=True)
class Cell:
    """What differs between LSTM and GRU for the drivers."""

    name: str
    torch_class: type[nn.RNNBase]
    # Per gate block, in torch's gate order: -1 drives the gate to 0 at padded steps, +1 to 1.
    pad_gate_signs: tuple[float, ...]
    # The same at reset steps, which set the state to exactly zero (lanes, see varlen.nn.lanes).
    reset_gate_signs: tuple[float, ...]
    # A gate whose input bias the reset column cancels (GRU: n, so that n = tanh(0) = 0).
    reset_cancels_bias_of: int | None
    num_states: int
    # Whether outputs at pads come out of the kernel exactly zero (LSTM: o = 0 there).
    zero_at_pads: bool

    @functools.cached_property
    def public_name(self) -> str:
        """The layer's public name, first in its error messages (``"varlen.nn.LSTM"``).

        Made once (read on every call of the layer).
        """
        return f"varlen.nn.{self.name}"

    def kernel(
        self,
        x: Tensor,
        state: State,
        params: list[Tensor],
        *,
        has_biases: bool,
        bidirectional: bool,
        train: bool,
        num_layers: int = 1,
        dropout: float = 0.0,
        batch_first: bool = BATCH_FIRST,
    ) -> tuple[Tensor, State]:
        """Run fused layers on ``x (B, T, F)``; return ``(output, final states)``.

        ``state`` holds ``(L * D, B, H_k)`` tensors; ``params`` the parameters per layer and
        direction, flattened (``W_ih`` with its control columns first, where it has them).
        ``num_layers`` and ``dropout`` (between layers, in training) as for torch's module.
        With ``batch_first`` False, ``x`` is time-major ``(T, B, F)`` and so is the output
        (the layout the kernel computes in: no transposition on either side).
        """
        return run_kernel(
            self.name,
            x,
            state,
            params,
            has_biases=has_biases,
            bidirectional=bidirectional,
            train=train,
            num_layers=num_layers,
            dropout=dropout,
            batch_first=batch_first,
        )


def run_kernel(
    name: str,
    x: Tensor,
    state: State,
    params: list[Tensor],
    *,
    has_biases: bool,
    bidirectional: bool,
    train: bool,
    num_layers: int = 1,
    dropout: float = 0.0,
    batch_first: bool = BATCH_FIRST,
) -> tuple[Tensor, State]:
    """The raw ``torch.lstm`` / ``torch.gru`` call (see :meth:`Cell.kernel`)."""
    # torch.lstm/gru positional tail: has_biases, num_layers, dropout, train, bidirectional,
    # batch_first.
    tail = (has_biases, num_layers, dropout, train, bidirectional, batch_first)
    if name == "LSTM":
        out, h, c = torch.lstm(x, state, params, *tail)
        return out, (h, c)
    out, h = torch.gru(x, state[0], params, *tail)
    return out, (h,)


def dynamo_skips_rnn() -> bool:
    """Whether dynamo is loaded and leaves RNN modules to eager (``allow_rnn`` not set).

    Reads ``torch._dynamo.config.allow_rnn`` only when dynamo was imported (by
    ``torch.compile`` or the user): importing it takes seconds.
    """
    dynamo = sys.modules.get("torch._dynamo")
    return dynamo is not None and not dynamo.config.allow_rnn


_Function = TypeVar("_Function", bound=Callable[..., Any])
_EAGER: dict[str, Any] = {}


def eagerly(function: _Function) -> _Function:
    """``function`` with dynamo disabled inside it, so it runs eagerly under ``torch.compile``.

    Made on first use and kept: ``torch.compiler.disable`` imports ``torch._dynamo``, which
    ``import varlen.nn`` must not pay (seconds). Kept in a plain dict keyed by the function's
    name, not a ``functools.cache``: with ``allow_rnn`` dynamo traces this lookup and warns on
    caches.
    """
    key = f"{function.__module__}.{function.__qualname__}"
    run = _EAGER.get(key)
    if run is None:
        run = _EAGER[key] = torch.compiler.disable(function, recursive=True)  # type: ignore[no-untyped-call]
    result: _Function = run
    return result


_RNN_OPS = ("lstm.input", "lstm.data", "gru.input", "gru.data", "rnn_tanh.input", "rnn_relu.input")


def forget_rnn_decompositions() -> None:
    """Empty the dispatch caches of torch's RNN ops, before a graph of them is exported.

    ``torch.export`` (and so ``torch.onnx.export(..., dynamo=True)``) caches, in these ops'
    dispatch caches, the decomposition it ran them through; the next export in the same
    process then finds it there and unrolls the layer over the example's ``T`` instead of
    keeping the op whole (for ``torch.nn.LSTM`` as much as for varlen): its graph has a fixed
    time axis. Emptying the caches costs one re-dispatch per op; results do not change.
    """
    for name in _RNN_OPS:
        packet, overload = name.split(".")
        op = getattr(getattr(torch.ops.aten, packet), overload)
        op._dispatch_cache.clear()


# LSTM gates i, f, g, o. Pad: i = 0, f = 1 (c' = c) and o = 0 (h' = 0, so outputs at pads are
# already exactly zero). Reset: i = 0, f = 0 (c' = 0, h' = 0).
LSTM_CELL = Cell(
    "LSTM",
    nn.LSTM,
    pad_gate_signs=(-1.0, 1.0, 0.0, -1.0),
    reset_gate_signs=(-1.0, -1.0, 0.0, 0.0),
    reset_cancels_bias_of=None,
    num_states=2,
    zero_at_pads=True,
)
# GRU gates r, z, n. Pad: z = 1 (h' = h). Reset: r = 0, z = 0 and n's input bias cancelled, so
# n = tanh(0) = 0 and h' = 0.
GRU_CELL = Cell(
    "GRU",
    nn.GRU,
    pad_gate_signs=(0.0, 1.0, 0.0),
    reset_gate_signs=(-1.0, -1.0, 0.0),
    reset_cancels_bias_of=2,
    num_states=1,
    zero_at_pads=False,
)


def cell_of(module: nn.RNNBase) -> Cell:
    """Return the cell of an LSTM or GRU module."""
    if isinstance(module, nn.LSTM):
        return LSTM_CELL
    if isinstance(module, nn.GRU):
        return GRU_CELL
    raise TypeError(f"varlen: expected an LSTM or GRU module, got {type(module).__name__}.")


def saturation(dtype: torch.dtype) -> float:
    """Return a finite pre-activation large enough that sigmoid is exactly 0 or 1 in ``dtype``."""
    return SATURATION.get(dtype, DEFAULT_SATURATION)


def compute_dtype(dtype: torch.dtype, device_type: str) -> torch.dtype:
    """The dtype a kernel fed ``dtype`` tensors computes in on ``device_type``.

    Under autocast a floating-point dtype is lowered to the autocast dtype; otherwise it is
    ``dtype`` itself.
    """
    if dtype.is_floating_point and torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return dtype


def control_saturation(weight: Tensor) -> float:
    """The saturation for ``weight``'s columns: safe in its dtype and in the autocast dtype."""
    lowered = compute_dtype(weight.dtype, weight.device.type)
    return min(saturation(weight.dtype), saturation(lowered))


_COLUMNS: dict[tuple[Any, ...], Tensor] = {}


def control_column(signs: tuple[float, ...], H: int, w_ih: Tensor, value: float) -> Tensor:
    """Return ``(G * H, 1)``: each gate block's sign times the saturating ``value``.

    The column is a constant (no parameter enters it), so eagerly it is made once per sign
    pattern, size, dtype, device and value and kept (read-only: callers only concatenate it).
    While a graph is captured it is made afresh, so that no stored tensor enters the graph.
    """
    # The cheap half of capturing_graph(): compile and export set is_compiling, legacy
    # tracing (and the TorchScript ONNX exporter, which traces) is_tracing.
    if torch.compiler.is_compiling() or torch.jit.is_tracing():  # type: ignore[attr-defined, no-untyped-call]
        return _make_column(signs, H, w_ih, value)
    key = (signs, H, w_ih.dtype, w_ih.device, value)
    column = _COLUMNS.get(key)
    if column is None:
        with torch.inference_mode(mode=False):  # a normal tensor even if made under inference_mode
            column = _COLUMNS[key] = _make_column(signs, H, w_ih, value)
    return column


def _make_column(signs: tuple[float, ...], H: int, w_ih: Tensor, value: float) -> Tensor:
    values = torch.tensor(signs, dtype=w_ih.dtype, device=w_ih.device) * value
    return values.repeat_interleave(H)[:, None]


def num_directions(module: nn.RNNBase) -> int:
    """``D``: 2 for a bidirectional module, else 1."""
    return 2 if module.bidirectional else 1


def output_size(module: nn.RNNBase) -> int:
    """Features of one output step: ``D * H_out``."""
    return num_directions(module) * (module.proj_size or module.hidden_size)


def param(module: nn.Module, name: str) -> Tensor:
    """The parameter ``name`` of ``module``: what ``getattr(module, name)`` returns.

    A registered parameter is read from the module's parameter dict (a dict lookup instead of
    ``Module.__getattr__``, ~1 us each, 5-6 us a call for an LSTM layer); ``functional_call``
    swaps tensors in that same dict. Anything else (a parametrization's property, a plain
    attribute) is read by ``getattr``, as torch's own forward would.
    """
    found = module._parameters.get(name)
    if found is not None:
        return found
    value = getattr(module, name)
    if not isinstance(value, Tensor):
        raise RuntimeError(f"varlen bug: {name} is not a tensor.")
    return value


def input_weight(module: nn.RNNBase) -> Tensor:
    """``W_ih`` of the first layer (its dtype and device are the module's)."""
    return param(module, "weight_ih_l0")


# Per (L * D, B, sizes, dtype, device): a zero state kept for the kernels to read.
_ZERO_STATES: dict[tuple[Any, ...], State] = {}


def zero_state(module: nn.RNNBase, cell: Cell, B: int, x: Tensor, *, kept: bool = False) -> State:
    """The zero initial state ``(L * D, B, H_k)`` per state tensor, on ``x``'s dtype/device.

    With ``kept`` (eagerly, for a kernel that only reads it and never hands it out), one
    made earlier for the same sizes is returned (at most 64 are kept): no allocation.
    """
    D = num_directions(module)
    sizes = (module.proj_size or module.hidden_size, module.hidden_size)[: cell.num_states]
    L = module.num_layers * D
    if not kept:
        return tuple(x.new_zeros(L, B, size) for size in sizes)
    key = (L, B, sizes, x.dtype, x.device)
    state = _ZERO_STATES.get(key)
    if state is None:
        if len(_ZERO_STATES) >= 64:
            _ZERO_STATES.clear()
        with torch.inference_mode(mode=False):  # normal tensors even under inference_mode
            state = _ZERO_STATES[key] = tuple(x.new_zeros(L, B, size) for size in sizes)
    return state


def module_params(module: nn.RNNBase) -> list[Tensor]:
    """All parameters of ``module`` in the fused kernel's order (per layer and direction).

    Read by name on each call, as torch's own forward checks them, so that a replaced
    parameter (``functional_call``, a parametrization) is the one used.
    """
    return [param(module, name) for names in module._all_weights for name in names]


def layer_params(
    module: nn.RNNBase,
    cell: Cell,
    layer: int,
    direction: int,
    *,
    reset: bool = False,
    plain: bool = False,
) -> list[Tensor]:
    """Return one layer-direction's parameters with control columns appended to ``W_ih``.

    The first column matches the pad indicator; with ``reset``, a second one matches the
    reset indicator of lanes. The result feeds the fused kernel on ``(B, T, F_l + 1 [+ 1])``.
    The columns are built from the module's own weights on each call, so gradients and
    state dicts are exactly those of the torch module. ``plain``: the caller has checked that
    no graph is being captured and autocast is off (two checks fewer per call).
    """
    D = 2 if module.bidirectional else 1
    names = module._all_weights[layer * D + direction]
    params: list[Tensor] = [param(module, name) for name in names]
    w_ih = params[0]  # (G * H, F_l)
    value = saturation(w_ih.dtype) if plain else control_saturation(w_ih)
    if _may_reuse(params, reset=reset, graph=not plain):
        params[0] = _reused_weight(module, cell, layer, direction, params, value, reset=reset)
        return params
    params[0] = _augmented_weight(module, cell, params, value, reset=reset)
    return params


def _may_reuse(params: list[Tensor], *, reset: bool, graph: bool = True) -> bool:
    """Whether an augmented ``W_ih`` made earlier may serve: no graph records it.

    That is when autograd records nothing (no grad mode, inference mode, or frozen weights)
    and no graph is being captured (``graph`` False: known not to be).
    """
    if graph and (torch.compiler.is_compiling() or torch.jit.is_tracing()):  # type: ignore[attr-defined, no-untyped-call]
        return False
    if not torch.is_grad_enabled():
        return True
    used = params[:1] + (params[2:3] if reset else [])
    return not any(p.requires_grad for p in used)


# Per module (weakly: the entry goes with the module), per (layer, direction, reset): the
# augmented W_ih and what it was made from.
_REUSED: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, int, bool], tuple[Any, ...]]] = (
    weakref.WeakKeyDictionary()
)


def _reused_weight(
    module: nn.RNNBase,
    cell: Cell,
    layer: int,
    direction: int,
    params: list[Tensor],
    value: float,
    *,
    reset: bool,
) -> Tensor:
    """The augmented ``W_ih``, made once per version of the weights it is made from.

    An entry is valid while the very same parameter tensors hold the same storage at the same
    version (any in-place change, an optimizer step or ``load_state_dict`` included, bumps
    the version; ``module.to`` gives new storage) and the saturation value is the same.
    """
    # W_ih, and with reset the input bias when there is one (the reset column cancels it).
    used = (params[0], params[2]) if reset and module.bias else (params[0],)
    # Straight-line (no generator): this runs on every call of a small model in inference.
    w = used[0]
    stamp: tuple[Any, ...] = (w.data_ptr(), w._version, w.dtype, w.device, value)
    if len(used) == 2:
        b = used[1]
        stamp += (b.data_ptr(), b._version, b.dtype, b.device)
    entries = _REUSED.get(module)  # get first: setdefault makes a weak reference every call
    if entries is None:
        entries = _REUSED[module] = {}
    key = (layer, direction, reset)
    entry = entries.get(key)
    if entry is not None and entry[1] == stamp:
        refs = entry[0]
        if refs[0]() is used[0] and (len(used) == 1 or refs[1]() is used[1]):
            weight: Tensor = entry[2]
            return weight
    with torch.inference_mode(mode=False), torch.no_grad():  # a plain tensor, no graph
        weight = _augmented_weight(module, cell, params, value, reset=reset)
    entries[key] = (tuple(weakref.ref(p) for p in used), stamp, weight)
    return weight


def _augmented_weight(
    module: nn.RNNBase, cell: Cell, params: list[Tensor], value: float, *, reset: bool
) -> Tensor:
    """``W_ih`` with its control columns appended: ``(G * H, F_l + 1 [+ 1])``."""
    w_ih = params[0]
    columns = [control_column(cell.pad_gate_signs, module.hidden_size, w_ih, value)]
    if reset:
        column = control_column(cell.reset_gate_signs, module.hidden_size, w_ih, value)
        gate = cell.reset_cancels_bias_of
        if gate is not None and module.bias:
            # Put -b_ih of that gate in the column (with its gradient, so both cancel exactly).
            H = module.hidden_size
            block = slice(gate * H, (gate + 1) * H)
            cancelled = column[block] - params[2][block, None]
            column = torch.cat([column[: block.start], cancelled, column[block.stop :]])
        columns.append(column)
    return torch.cat([w_ih, *columns], dim=1)
