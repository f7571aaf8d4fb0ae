"""Input adaptation for :class:`varlen.nn.LSTM` and :class:`varlen.nn.GRU`: the torch forms.

The recurrent core (:func:`varlen.nn.recurrent._forward`) takes a batch-first padded batch
with lengths or a mask. This module brings every other form to it and gives results back in
the form received:

- a nested jagged tensor (``torch.nested``, ``layout=torch.jagged``) ``(B, j, F)``: a nested
  jagged tensor of outputs ``(B, j, D * H_out)``, on the same offsets;
- values and offsets (``cu_seqlens``, int32 or int64, on any device): ``x (N, F)`` with
  ``offsets=(B + 1,)``, outputs ``(N, D * H_out)`` on the same offsets;
- a :class:`torch.nn.utils.rnn.PackedSequence`: a ``PackedSequence`` with the same batch sizes
  and sort indices, and the final state in the original batch order, as torch gives;
- a time-major ``(T, B, F)`` tensor when the module was built with ``batch_first=False``;
- one unbatched sequence ``(T, F)``, as torch takes it: outputs ``(T, D * H_out)`` and states
  ``(L * D, H)``;
- torch's call form ``module(x, hx)`` (the second positional argument is a state: a tuple
  for an LSTM, a float tensor of 2 or 3 dims for a GRU) besides varlen's ``module(x, lengths)``.

Ragged inputs (jagged, values + offsets, packed) run on varlen's exact padded path: the fused
CPU kernel needs a ``(B, T, F)`` tensor, so the real steps are scattered into one (a copy of
the values, no per-sequence tensors) and gathered back out, as one scatter and one gather that
autograd follows. Initial states are per sequence, ``(L * D, B, H)`` in the input's batch
order; final states come in the same layout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from varlen._checks import error_context, unplaced
from varlen._types import Padding
from varlen.nn._gates import Cell, State, dynamo_skips_rnn, eagerly, input_weight
from varlen.nn._plans import Method
from varlen.nn.functional import _real_positions

Forward = Callable[..., tuple[Tensor, State]]
"""The core: ``forward(module, cell, x, lengths, *, mask, padding, hx, method)``."""


def forward_any(
    module: nn.RNNBase,
    cell: Cell,
    core: Forward,
    x: Any,
    lengths: Any,
    *,
    offsets: Any,
    mask: Any,
    padding: Padding,
    hx: Any,
    method: Method,
) -> tuple[Any, State]:
    """Run ``core`` on any input form; return outputs in that form and the final state.

    Args:
        module: The LSTM or GRU (its ``batch_first`` tells the layout of a plain tensor).
        cell: Its cell description.
        core: The batch-first forward that does the work.
        x: A tensor, a nested jagged tensor, a ``PackedSequence``, values ``(N, F)`` (with
            ``offsets``), a ``Ragged`` or a batch object.
        lengths: ``(B,)`` lengths, or torch's positional ``hx`` (see :func:`_is_state`).
        offsets: ``(B + 1,)`` int32/int64 offsets of ``x``'s values, or ``None``.
        mask: ``(B, T)`` bool mask or ``None``.
        padding: The side of the padding of a padded ``x``.
        hx: Initial state in torch's layout ``(L * D, B, H)``, or ``None``.
        method: The method of this call.

    Returns:
        ``(output, state)``: ``output`` in the form of ``x``; ``state`` ``(L * D, B, H)``.
    """
    # Under torch.compile the whole forward runs eagerly, as dynamo runs torch.nn.LSTM (see
    # varlen.nn.recurrent._forward): dynamo must not trace this dispatch either.
    run = eagerly(_forward_any_now) if dynamo_skips_rnn() else _forward_any_now
    with error_context(cell.public_name):
        result: tuple[Any, State] = run(
            module,
            cell,
            core,
            x,
            lengths,
            offsets=offsets,
            mask=mask,
            padding=padding,
            hx=hx,
            method=method,
        )
    return result


def _forward_any_now(
    module: nn.RNNBase,
    cell: Cell,
    core: Forward,
    x: Any,
    lengths: Any,
    *,
    offsets: Any,
    mask: Any,
    padding: Padding,
    hx: Any,
    method: Method,
) -> tuple[Any, State]:
    """:func:`forward_any`'s work."""
    if hx is None and _is_state(cell, lengths):
        hx, lengths = lengths, None  # torch's form: module(x, hx)
    ragged = offsets is not None or isinstance(x, PackedSequence) or _is_nested(x)
    if ragged:
        extra = [n for n, v in (("lengths", lengths), ("mask", mask)) if v is not None]
        if extra:
            raise unplaced(
                ValueError(
                    f"{extra[0]} must be None when x is a nested tensor, a "
                    "PackedSequence or values with offsets (they carry their lengths), got a value."
                )
            )
        result: tuple[Any, State] = _run_ragged(module, cell, core, x, offsets, hx, method)
        return result
    if isinstance(x, Tensor) and x.ndim == 2 and lengths is None and mask is None:
        return _run_unbatched(module, cell, core, x, padding=padding, hx=hx, method=method)
    if isinstance(x, Tensor) and not module.batch_first:
        if x.ndim != 3:
            raise unplaced(
                ValueError(
                    "x must have shape (T, B, F) (the module has batch_first=False), "
                    f"got {tuple(x.shape)}."
                )
            )
        out, state = core(
            module,
            cell,
            x.transpose(0, 1),
            lengths,
            mask=mask,
            padding=padding,
            hx=hx,
            method=method,
        )
        return out.transpose(0, 1), state
    return core(module, cell, x, lengths, mask=mask, padding=padding, hx=hx, method=method)


def _is_state(cell: Cell, value: Any) -> bool:
    """Whether a second positional argument is torch's ``hx``, not lengths.

    An LSTM's state is a tuple ``(h0, c0)``; a GRU's a float tensor of 2 or 3 dims. Lengths
    are a 1-D integer tensor (anything else there is reported as bad lengths).
    """
    if cell.num_states == 2:
        return isinstance(value, tuple)
    return isinstance(value, Tensor) and value.is_floating_point() and value.ndim >= 2


def _run_unbatched(
    module: nn.RNNBase,
    cell: Cell,
    core: Forward,
    x: Tensor,
    *,
    padding: Padding,
    hx: Any,
    method: Method,
) -> tuple[Tensor, State]:
    """Run one sequence ``(T, F)`` as a batch of one; states ``(L * D, H)`` in and out."""
    if x.shape[1] != module.input_size:
        raise unplaced(
            ValueError(
                "x must have shape (B, T, F), or (T, F) for one unbatched sequence, with "
                f"F = input_size = {module.input_size}, got {tuple(x.shape)}."
            )
        )
    if hx is not None:
        parts = hx if isinstance(hx, tuple) else (hx,)
        if not all(isinstance(p, Tensor) and p.ndim == 2 for p in parts):
            raise unplaced(
                ValueError(
                    "with an unbatched x (T, F), hx must hold 2-D states (L*D, H), as with torch."
                )
            )
        batched = tuple(p[:, None] for p in parts)
        hx = batched if isinstance(hx, tuple) else batched[0]
    out, state = core(module, cell, x[None], None, mask=None, padding=padding, hx=hx, method=method)
    return out[0], tuple(s[:, 0] for s in state)


def _run_ragged(
    module: nn.RNNBase,
    cell: Cell,
    core: Forward,
    x: Any,
    offsets: Any,
    hx: Any,
    method: Method,
) -> tuple[Any, State]:
    """Run a nested tensor, a ``PackedSequence`` or values with offsets, eagerly.

    Under ``torch.compile`` this runs eagerly (a graph break), as dynamo runs
    ``torch.nn.LSTM``: it reads the offsets on the host to size the batch. The rest of a
    compiled model (embeddings, heads, losses on the jagged outputs) is still compiled.
    """
    result: tuple[Any, State] = eagerly(_run_ragged_now)(module, cell, core, x, offsets, hx, method)
    return result


def _run_ragged_now(
    module: nn.RNNBase,
    cell: Cell,
    core: Forward,
    x: Any,
    offsets: Any,
    hx: Any,
    method: Method,
) -> tuple[Any, State]:
    """Run a nested tensor, a ``PackedSequence`` or values with offsets."""
    if offsets is not None:
        values, lengths = _check_values(module, x, offsets)
        return _run_values(module, cell, core, values, lengths, hx, method)
    if isinstance(x, PackedSequence):
        return _run_packed(module, cell, core, x, hx, method)
    return _run_nested(module, cell, core, x, hx, method)


def _is_nested(x: Any) -> bool:
    return isinstance(x, Tensor) and x.is_nested


def _check_values(module: nn.RNNBase, x: Any, offsets: Any) -> tuple[Tensor, Tensor]:
    """Check ``x (N, F)`` and ``offsets (B + 1,)``; return ``(values, lengths (B,) int64)``.

    Checking the offsets reads them on the host (one sync); padding needs ``T`` anyway.
    """
    if not isinstance(x, Tensor) or x.is_nested or x.ndim != 2:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise unplaced(ValueError(f"with offsets, x must be values of shape (N, F), got {got}."))
    if not isinstance(offsets, Tensor) or offsets.dtype not in (torch.int32, torch.int64):
        kind = str(offsets.dtype) if isinstance(offsets, Tensor) else type(offsets).__name__
        raise unplaced(
            TypeError(
                f"offsets (cu_seqlens) must be an int32 or int64 tensor (B + 1,), got {kind}."
            )
        )
    if offsets.ndim != 1 or offsets.shape[0] < 1:
        raise unplaced(
            ValueError(f"offsets must have shape (B + 1,) with B >= 0, got {tuple(offsets.shape)}.")
        )
    host = offsets.to(device="cpu", dtype=torch.int64)  # one sync: validation and T
    N = x.shape[0]
    lengths = host.diff()
    first, last = int(host[0]), int(host[-1])
    falls = []
    if lengths.numel() and int(lengths.min()) < 0:  # the rows, only for the message
        falls = (lengths < 0).nonzero()[:, 0].tolist()
    if first != 0 or last != N or falls:
        where_falls = f", decreasing after offsets[{falls[0]}]" if falls else ""
        raise unplaced(
            ValueError(
                f"offsets must start at 0, never decrease and end at N = {N} (the rows "
                f"of x), got first {first}, last {last}{where_falls}."
            )
        )
    _check_features(module, x)
    return x, lengths


def _check_view(values: Tensor, offsets: Tensor, lengths: Tensor) -> None:
    """Check a jagged view's ``offsets (B + 1,)`` and ``lengths (B,)`` against ``values (N, F)``.

    A view (``torch.nested.narrow``, ``nested_tensor_from_jagged(..., lengths=...)``) takes row
    ``i`` as ``values[offsets[i] : offsets[i] + lengths[i]]``; its offsets need not start at 0.
    Unchecked, float offsets or lengths were truncated, and a negative length corrupted memory.
    """
    for name, tensor in (("offsets", offsets), ("lengths", lengths)):
        if tensor.dtype not in (torch.int32, torch.int64):
            raise unplaced(
                TypeError(
                    f"a jagged view's {name} must be int32 or int64, got {tensor.dtype}. "
                    "Build it with integer offsets and lengths."
                )
            )
    host_offsets = offsets.to(device="cpu", dtype=torch.int64)  # one sync, as for offsets
    host_lengths = lengths.to(device="cpu", dtype=torch.int64)
    N, B = values.shape[0], host_lengths.shape[0]
    if host_offsets.shape != (B + 1,) or host_lengths.ndim != 1:
        raise unplaced(
            ValueError(
                "a jagged view needs offsets (B + 1,) and lengths (B,), got "
                f"{tuple(host_offsets.shape)} and {tuple(host_lengths.shape)}."
            )
        )
    ends = host_offsets[:-1] + host_lengths
    problems = [
        (host_offsets[:1] < 0, "offsets must be >= 0"),
        (host_offsets.diff() < 0, "offsets must never decrease"),
        (host_lengths < 0, "lengths must be >= 0"),
        (ends > host_offsets[1:], "row i must end by offsets[i + 1]"),
        (ends > N, f"every row must end within the N = {N} values"),
    ]
    for bad, rule in problems:
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            shown = ", ".join(
                f"{name}[{j}] = {int(tensor[j])}"
                for name, tensor in (("offsets", host_offsets), ("lengths", host_lengths))
                for j in (i, i + 1)
                if j < len(tensor)
            )
            raise unplaced(ValueError(f"bad jagged view: {rule}, got {shown} (row {i})."))


def _check_features(module: nn.RNNBase, values: Tensor) -> None:
    weight = input_weight(module)
    if values.shape[-1] != module.input_size:
        raise unplaced(
            ValueError(
                f"x must have F = input_size = {module.input_size} features, "
                f"got {values.shape[-1]}."
            )
        )
    if values.device != weight.device or values.dtype != weight.dtype:
        raise unplaced(
            TypeError(
                f"x must have the dtype and device of the weights ({weight.dtype} on "
                f"{weight.device}), got {values.dtype} on {values.device}."
            )
        )


def _run_values(
    module: nn.RNNBase,
    cell: Cell,
    core: Forward,
    values: Tensor,
    lengths: Tensor,
    hx: Any,
    method: Method,
) -> tuple[Tensor, State]:
    """Run sequences given as ``values (N, F)`` with host ``lengths (B,)``; outputs ``(N, D*H)``.

    The real steps are scattered into a post-padded ``(B, T, F)`` batch (pads zero), run by
    the core, and the outputs at real steps gathered back in values order. ``T = 0`` (every
    sequence empty) still runs one all-pad step, so the states stay connected to the weights.
    """
    B, N = lengths.shape[0], values.shape[0]
    T = max(int(lengths.max()) if B else 0, 1)
    device = values.device
    lengths_dev = lengths.to(device)
    rows, steps = _real_positions(lengths_dev, N, T, "post")
    padded = values.new_zeros(B, T, values.shape[1]).index_put((rows, steps), values)
    # host lengths: the plan reads them without a device sync
    out, state = core(
        module, cell, padded, lengths, mask=None, padding="post", hx=hx, method=method
    )
    return out[rows, steps], state


def _run_nested(
    module: nn.RNNBase,
    cell: Cell,
    core: Forward,
    x: Tensor,
    hx: Any,
    method: Method,
) -> tuple[Tensor, State]:
    """Run a nested jagged tensor ``(B, j, F)``; return outputs ``(B, j, D * H_out)`` (jagged)."""
    if x.layout != torch.jagged or x.dim() != 3 or x._ragged_idx != 1:  # type: ignore[attr-defined]
        raise unplaced(
            ValueError(
                "a nested tensor x must have layout torch.jagged and shape (B, j, F) "
                f"(ragged in dim 1), got layout {x.layout} with {x.dim()} dims. Build it with "
                "torch.nested.nested_tensor(sequences, layout=torch.jagged)."
            )
        )
    offsets: Tensor = x.offsets()  # type: ignore[attr-defined]
    given_lengths: Tensor | None = x.lengths()  # type: ignore[attr-defined]  # None unless x is a non-contiguous view (holes between rows)
    if given_lengths is None:
        values, lengths = _check_values(module, x.values(), offsets)
        out, state = _run_values(module, cell, core, values, lengths, hx, method)
        return _jagged(out, offsets), state
    # A view with holes: take each row's steps out of the shared values, new offsets out.
    _check_view(x.values(), offsets, given_lengths)
    starts = offsets[:-1].to(torch.int64)
    lengths_dev = given_lengths.to(torch.int64)
    N = int(lengths_dev.sum())
    rows, steps = _real_positions(lengths_dev, N, 1, "post")
    values = x.values()[starts[rows] + steps]
    new_offsets = torch.cat([lengths_dev.new_zeros(1), torch.cumsum(lengths_dev, 0)])
    _check_features(module, values)
    out, state = _run_values(module, cell, core, values, lengths_dev.cpu(), hx, method)
    return _jagged(out, new_offsets), state


# torch.nested.nested_tensor_from_jagged calls torch.fx's deprecated is_fx_tracing, which logs
# "is_fx_tracing will return true for both fx.symbolic_trace and torch.export ..." once per
# process on this logger: torch's own internals, nothing the caller can act on.
_FX_LOGGER = "torch.fx._symbolic_trace"
_QUIET: dict[str, bool] = {}  # "done" once torch's one-time line was consumed quietly


def _jagged(values: Tensor, offsets: Tensor) -> Tensor:
    """``torch.nested.nested_tensor_from_jagged(values, offsets)``, without torch's log line.

    The line is printed once per process (torch caches it), so only the first call here
    raises that logger's level around torch's call; later calls are torch's call alone.
    """
    if _QUIET:
        return torch.nested.nested_tensor_from_jagged(values, offsets)
    logger = logging.getLogger(_FX_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return torch.nested.nested_tensor_from_jagged(values, offsets)
    finally:
        logger.setLevel(level)
        _QUIET["done"] = True


def _run_packed(
    module: nn.RNNBase,
    cell: Cell,
    core: Forward,
    x: PackedSequence,
    hx: Any,
    method: Method,
) -> tuple[PackedSequence, State]:
    """Run a ``PackedSequence``; return one with the same batch sizes and sort indices.

    ``hx`` and the final state are in the original batch order, as with torch.
    """
    batch_sizes = x.batch_sizes  # (T,) int64 on the host
    T, B = int(batch_sizes.shape[0]), int(batch_sizes[0]) if batch_sizes.numel() else 0
    # Sequence i of the pack order has the steps t with i < batch_sizes[t].
    present = torch.arange(B)[None, :] < batch_sizes[:, None]  # (T, B) in pack order
    sorted_lengths = present.sum(dim=0)  # (B,)
    steps, ranks = present.nonzero(as_tuple=True)  # data order: time-major, then pack order
    order = x.sorted_indices
    device = x.data.device
    rows = ranks.to(device) if order is None else order[ranks.to(order.device)].to(device)
    steps = steps.to(device)
    lengths = sorted_lengths  # host, in the original batch order:
    if order is not None:
        lengths = torch.empty_like(sorted_lengths).index_copy_(0, order.cpu(), sorted_lengths)
    # Scatter the pack into a post-padded batch in the original order and gather the outputs
    # back in pack order: one index_put and one gather, whose backward are one each too.
    padded = x.data.new_zeros(B, T, x.data.shape[1]).index_put((rows, steps), x.data)
    out, state = core(
        module, cell, padded, lengths, mask=None, padding="post", hx=hx, method=method
    )
    data = out[rows, steps]
    return (
        PackedSequence(data, x.batch_sizes, x.sorted_indices, x.unsorted_indices),
        state,
    )
