"""Plans for one LSTM/GRU call: decisions that only save time, as pure functions.

Every route gives the same results (within float rounding); a plan only picks the cheapest.
Tuning constants are parameters (:class:`Tuning`), so callers and tests choose them without
patching module state. Plans read lengths on the host only (never a device sync), and when a
graph is being captured (``torch.compile``, ``torch.jit.trace``, ONNX or ``torch.export``) the
plan is always the general one, so that no example batch's values shape the graph.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import sys
from dataclasses import dataclass
from typing import Literal, TypeAlias

import torch
from torch import Tensor

from varlen.data.grid import DEFAULT_GRID, LengthGrid

Method: TypeAlias = Literal["auto", "padded", "packed"]
Route: TypeAlias = Literal["empty", "full", "padded", "groups", "packed"]


@dataclass(frozen=True)
class Tuning:
    """The constants of the time-saving plans.

    Args:
        call_cost: What one more kernel call costs, in padded cells (row-steps) of work:
            ~100-200 us of fixed cost per call against ~1 us per cell in inference
            (B = 64, H = 128, CPU), and about the same ratio in training.
        min_rows: Batches with fewer rows are never split into row groups.
        min_saving: A split is taken only if it saves this fraction of the ``B * T`` cells.
        group_counts: The numbers of groups tried, increasing.
        min_group_rows: Rows each group must have at least.
        select_limit: Batches of at most this many input values ``B * T * F`` have their
            pads zeroed by one select (``torch.where``), which also appends the indicator
            column: 2 ops. Larger ones take a multiplication whose sum shows that every
            value is finite, then a concatenation: 6 ops, but a select with the broadcast
            ``(T, B, 1)`` pad mask costs ~4x a multiplication at ``64 x 100 x 32`` on the
            CPU (150 us against 40), and as much at ``32 x 29 x 12`` (12 us). Both give the
            same values and gradients.
        group_grid: Each group of rows runs to its longest length rounded up to this grid
            (at most the batch's ``T``): the CPU backend compiles and keeps one kernel per
            call shape, so group lengths on a grid keep them few, for less than ``step``
            more cells per group. ``None``: each group runs to its own longest length.
        step_cost: What each step of a call costs on top of its cells, in cells: a fused
            kernel's fixed cost per step (small next to the cells of a wide layer, several
            rows' worth for a narrow one, see :func:`lstm_tuning`); for a kernel that runs
            step by step, a row group pays it per step it runs (torch's CPU GRU, with or
            without autograd, see :func:`gru_tuning`).
        cell_floats: Values a training call keeps per cell for its backward pass (the
            gates: ``G * H`` per layer and direction); 0: not counted.
        spill_floats: A call keeping more values than this (``rows * steps *
            cell_floats``) no longer works in cache: each of its cells costs ``spill_cost``
            cells. 0: never.
        spill_cost: See ``spill_floats``.
    """

    call_cost: int = 128
    min_rows: int = 8
    min_saving: float = 0.25
    group_counts: tuple[int, ...] = (2, 4, 8, 16)
    min_group_rows: int = 4
    select_limit: int = 16384
    group_grid: LengthGrid | None = DEFAULT_GRID
    step_cost: int = 0
    cell_floats: int = 0
    spill_floats: int = 0
    spill_cost: float = 1.0

    def run_cost(self, rows: int, steps: int) -> float:
        """One call's cost in cells, without ``call_cost``: its cells and its steps' cost."""
        cells = rows * steps
        if self.spill_floats and cells * self.cell_floats > self.spill_floats:
            return cells * self.spill_cost + steps * self.step_cost
        return cells + steps * self.step_cost


DEFAULT_TUNING = Tuning()

GRU_STEP_WORK = 55_000
"""A GRU step's fixed cost in units of one row-step's work ``H * (F + H)``.

torch has no fused CPU kernel for the GRU: it runs step by step, each step a few ops (and as
many autograd nodes in training), so splitting a batch into row groups multiplies the steps
run. Fitted (1 thread, lengths uniform in [1, T]): 128 x 300 x 8 -> 64 trained 2.4x faster as
one batch than in the 8 groups a fused kernel would take (step cost ~12 cells there), while
256 x 100 x 32 -> 128 still trains faster in groups (step cost under 4 cells there: larger
cells amortize a step's fixed cost). Inference pays about as much a step (~14 us at 8 -> 32:
16 x 300 x 4 -> 32 and 64 x 200 x 8 -> 32 ran 1.6x and 2.2x slower in the fused kernel's
groups than as one batch).
"""


LSTM_CALL_WORK = (1_500_000, 1_000_000)
"""A row group's fixed cost (inference, training) in units of one row-step's work ``H * (F + H)``.

A group call costs ~150 us (inference) and ~400 us (training, forward and backward) of its own
(selecting its rows, the kernel call, placing its outputs; 1 thread), against a row-step of
the fused CPU LSTM that costs ~1e-4 us (inference) and ~4e-4 us (training) per unit of work.
Checked on 11 shapes (4 -> 16 to 64 -> 256, 16-256 rows, 50-400 steps), see
:func:`lstm_tuning`.
"""

LSTM_STEP_WORK = 12_000
"""The fused CPU LSTM's fixed cost per step, in units of one row-step's work ``H * (F + H)``.

Fitted on the kernel's time per step against rows (4-128 rows, T = 50, 1 thread): ~1.5 us
(inference) to ~4-6 us (training) a step whatever the rows, 15-25 rows' worth at 4 -> 16,
about 2 at 12 -> 64 and 1 at 32 -> 128: a narrow layer's small groups mostly pay steps.
"""

LSTM_SPILL_FLOATS = 2_000_000
"""The gate values a CPU LSTM training call keeps (rows x steps x ``4 * H``) above which it
slows down: 128 x 100 x 12 -> 64 (3.3 M values, 13 MB) trained in two groups of 64 full-length
rows 1.4x faster than as one batch, with no pads to save; 1.6 M values showed no such loss.
Per-machine (cache sizes); measured on this project's 2-core CI machine (32 MB L3)."""


@functools.cache
def _with_step_cost(step_cost: int) -> Tuning:
    return Tuning(step_cost=step_cost)


@functools.cache
def lstm_tuning(hidden_size: int, input_size: int, *, training: bool, stacks: int = 1) -> Tuning:
    """The planner's constants for the fused CPU LSTM, scaled to the layer's size.

    A pure planning function. A cell's cost grows with its work ``W = H * (F + H)`` while a
    group's and a step's fixed costs do not, so both are counted in this layer's cells:
    ``call_cost = LSTM_CALL_WORK / (W * stacks)`` and ``step_cost = LSTM_STEP_WORK / W``
    (``stacks``: layers times directions, each doing a cell's work and paying a step's cost;
    see :data:`LSTM_CALL_WORK`, :data:`LSTM_STEP_WORK`). In training a call also keeps
    ``4 * H`` gate values per cell, and past :data:`LSTM_SPILL_FLOATS` of them its cells
    cost 1.5x. With :data:`DEFAULT_TUNING` for every size, narrow layers were split into
    groups that cost more than they saved (1 thread, lengths uniform in [1, T]: 128 x 50 x 4
    -> 16 1.7x slower in inference, 1.4x in training; 64 x 200 x 8 -> 32 1.4-1.5x slower in
    inference) while 32 x 100 x 64 -> 256, never split, trained 1.5x faster in 8 groups.

    Stacked layers or both directions in training keep :data:`DEFAULT_TUNING`: measured
    against it, this model lost there as often as it won (bidirectional 16 x 300 x 4 -> 32
    and 128 x 100 x 12 -> 64 trained 12-13% slower, bidirectional 64 x 100 x 32 -> 128 and
    two layers of 16 x 300 x 4 -> 32 13-32% faster).
    """
    if training and stacks > 1:
        return DEFAULT_TUNING
    work = max(hidden_size * (input_size + hidden_size), 1)
    call = LSTM_CALL_WORK[1 if training else 0]
    # A group's fixed cost is paid once per call, a cell's work once per layer and direction.
    tuning = Tuning(
        call_cost=max(1, round(call / (work * stacks))), step_cost=round(LSTM_STEP_WORK / work)
    )
    if not training:
        return tuning
    return dataclasses.replace(
        tuning, cell_floats=4 * hidden_size, spill_floats=LSTM_SPILL_FLOATS, spill_cost=1.5
    )


def gru_tuning(hidden_size: int, input_size: int) -> Tuning:
    """The planner's constants for a GRU layer: each step run costs extra.

    A pure planning function: ``step_cost = GRU_STEP_WORK / (H * (F + H))`` cells, with or
    without autograd (see :data:`GRU_STEP_WORK`).
    """
    work = hidden_size * (input_size + hidden_size)
    return _with_step_cost(max(1, round(GRU_STEP_WORK / max(work, 1))))


@dataclass(frozen=True)
class Plan:
    """How one call runs.

    Attributes:
        route: ``"empty"`` (no step at all: zeros and the initial state), ``"full"`` (no pads:
            torch's own forward), ``"padded"`` (the general route: fused kernel, pads made
            no-ops), ``"groups"`` (the padded route per group of rows of similar length) or
            ``"packed"`` (torch's packed path).
        groups: For ``"groups"``, the row indices of each group (host int64 tensors).
        select: For ``"padded"`` and ``"groups"``, zero the pads by one select rather than
            a multiplication and a finiteness check (see :attr:`Tuning.select_limit`).
        group_steps: For ``"groups"``, the steps each group runs to: its longest length,
            rounded up to :attr:`Tuning.group_grid` (at most ``T``).
    """

    route: Route
    groups: tuple[Tensor, ...] = ()
    select: bool = False
    group_steps: tuple[int, ...] = ()


def capturing_graph() -> bool:
    """Whether a graph is being captured: compiling, tracing or exporting.

    Then nothing may depend on tensor values on the host, and every call takes the general
    route. ``torch.export`` (and the dynamo ONNX exporter, which runs it) sets
    ``is_exporting``, legacy tracing (and the TorchScript ONNX exporter) ``is_tracing``. The
    ONNX exporters' own flag is read too, but only once an ONNX export has loaded the module
    that holds it: ``torch.onnx.is_in_onnx_export`` imports it on every call (~2 us, a
    tenth of a small layer's call) and loads ``torch.onnx`` on the first.
    """
    if (
        torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing()  # type: ignore[attr-defined, no-untyped-call]
    ):
        return True
    return _ONNX_FLAGS in sys.modules and torch.onnx.is_in_onnx_export()


# The module of the ONNX exporter's flag, loaded by an export (see capturing_graph).
_ONNX_FLAGS = "torch.onnx._internal.exporter._flags"


def choose_method(method: Method, device_type: str) -> Literal["padded", "packed"]:
    """Resolve ``"auto"``: packed on CUDA (cuDNN packs natively), padded elsewhere.

    The CUDA default is not measured yet (see ``benchmarks/bench_gpu.py``).
    """
    if method == "auto":
        return "packed" if device_type == "cuda" else "padded"
    return method


def has_no_pads(host_lengths: Tensor | None, T: int) -> bool:
    """Whether every row has length ``T``, read from lengths on the host (``None``: unknown)."""
    if host_lengths is None:
        return False
    return int(host_lengths.sum()) == host_lengths.shape[0] * T


def row_groups(
    host_lengths: Tensor, T: int, tuning: Tuning = DEFAULT_TUNING, *, total: int | None = None
) -> tuple[tuple[Tensor, ...], tuple[int, ...]] | None:
    """Split a batch of uneven lengths into groups of similar length, or ``None`` to keep it.

    The rows sorted by length are cut into ``tuning.group_counts`` groups of equal count (at
    least ``tuning.min_group_rows`` rows each); each group then runs to its own longest
    length, rounded up to ``tuning.group_grid`` (at most ``T``). The split with the fewest
    cells (each call's :meth:`Tuning.run_cost`: rows times steps, times ``spill_cost`` past
    ``spill_floats``, plus ``step_cost`` per step it runs; plus ``tuning.call_cost`` per
    call) is taken if it saves at least ``tuning.min_saving`` of what the whole batch costs
    (``run_cost(B, T)``). Rows are independent, so
    results do not change (within float rounding); only the work on pads does. Only for a
    batch with a real step (else every group would be empty, cut off from the graph).

    Args:
        host_lengths: ``(B,)`` int64 lengths on the host.
        T: The padded length.
        tuning: The constants.
        total: ``N``, the sum of ``host_lengths``, if the caller has it.

    Returns:
        The row indices of each group and the steps each group runs to, or ``None``.
    """
    B = host_lengths.shape[0]
    N = int(host_lengths.sum()) if total is None else total
    budget = (1 - tuning.min_saving) * tuning.run_cost(B, T)
    # Any split costs at least the real steps and two calls: skip the sort when that is over.
    lowest = N + tuning.call_cost * tuning.group_counts[0] if tuning.group_counts else budget
    if N == 0 or tuning.min_rows > B or budget <= lowest:
        return None
    ordered, order = torch.sort(host_lengths, stable=True)
    lengths = ordered.tolist()  # the costs below are a few Python ints per split
    grid = tuning.group_grid
    if grid is not None:  # the lengths the groups would run to
        lengths = [min(grid.round_up(length), T) for length in lengths]
    best_cost, best = budget, None
    for G in tuning.group_counts:
        if tuning.min_group_rows * G > B:
            break
        bounds = [B * g // G for g in range(G + 1)]
        # Each group of rows bounds[g]:bounds[g + 1] runs its longest (last) length's steps.
        cost = G * tuning.call_cost + sum(
            tuning.run_cost(b - a, lengths[b - 1]) for a, b in itertools.pairwise(bounds)
        )
        if cost < best_cost:
            best_cost, best = cost, bounds
    if best is None:
        return None
    pairs = list(itertools.pairwise(best))
    return tuple(order[a:b] for a, b in pairs), tuple(lengths[b - 1] for _, b in pairs)


def plan_call(
    *,
    B: int,
    T: int,
    host_lengths: Tensor | None,
    unmasked: bool,
    method: Method,
    device_type: str,
    graph: bool,
    tuning: Tuning = DEFAULT_TUNING,
    F: int = 1,
    total: int | None = None,
) -> Plan:
    """Choose the route of one call.

    Args:
        B: Rows.
        T: Steps.
        host_lengths: ``(B,)`` lengths if they are on the host (reading them costs no sync),
            else ``None``.
        unmasked: No lengths and no mask were given: every step is real.
        method: The method asked for.
        device_type: Where the batch lives (``"cpu"``, ``"cuda"``, ...).
        graph: Whether a graph is being captured (:func:`capturing_graph`): then the route
            depends on nothing but the arguments' kinds, never on values.
        tuning: The constants of the row groups and of the pad zeroing.
        F: Features per step (the pad zeroing's size is ``B * T * F``).
        total: ``N``, the sum of ``host_lengths``, if the caller has it (as Python ints).

    Returns:
        The :class:`Plan`.
    """
    if B == 0 or T == 0:
        return Plan("empty")
    if unmasked:
        return _FULL
    if graph:
        return _PADDED
    if choose_method(method, device_type) == "packed":
        return Plan("packed")
    select = device_type == "cpu" and tuning.select_limit >= B * T * F
    padded = _PADDED_SELECT if select else _PADDED  # kept: a frozen dataclass costs ~1 us
    if host_lengths is None:
        return padded
    N = int(host_lengths.sum()) if total is None else total
    if N == B * T:  # no pads
        return _FULL
    split = row_groups(host_lengths, T, tuning, total=N) if device_type == "cpu" else None
    return padded if split is None else Plan("groups", split[0], select, split[1])


_FULL, _PADDED, _PADDED_SELECT = Plan("full"), Plan("padded"), Plan("padded", select=True)
