"""Per-call overhead of varlen.nn.LSTM/GRU on small models (issue 23), and where it goes.

torch's padded call (lengths ignored: fast, and wrong for every row shorter than the batch)
against varlen's exact call on the same padded batch with its lengths, on the four shapes of
issue 23 (batch, T, F, H): one layer, post-padding, lengths uniform in [1, T] with one row at
T, a new batch of lengths each call (cycled through 16). Modes: inference (``torch.no_grad``)
and forward + backward (loss: sum of the outputs and of the final h).

Rows are interleaved round by round after a warm-up, 1 thread, medians. The clock is the
thread's CPU time (``time.thread_time``): on a shared machine the wall clock also counts the
other jobs' time slices; the wall-clock ratios are printed beside it.

Then, per shape, the breakdown of one inference call: each stage of varlen's padded route
timed on its own on the same batch (validation, planning, control columns/augmented weights,
pad mask and augmented input, the kernel, the final-state pick), and what is left: the
Python glue between them. Where the compiled step kernels are built
(``varlen.data.step_kernels.STEP_KERNELS``), the augmented input and the final-state pick
are theirs, as in the fast call. ``autograd nodes``: nodes in the backward graph of each call.

Then stacked layers (2 layers, uni and bidirectional, at 32 x 29 x 12 -> 64: torch runs them
in one fused call, varlen layer by layer), and the other entry points: ``StreamingRNN``
called once per time step (steps/s, against a bare ``torch.nn.LSTM`` step loop carrying
``(h, c)``) and ``LSTM(x)`` called torch's way, without lengths or mask (calls/s, against
``torch.nn.LSTM(x)``); other forms of the same batch against varlen on the padded batch with lengths
(a bool mask padded after, one padded before, values + offsets, nested jagged); and the Keras
layer on Keras's torch backend (in a subprocess: Keras picks its backend once per process)
with a mask, against ``varlen.nn.LSTM`` with that mask, torch's padded call and
``keras.layers.LSTM``. Then row groups on wider and longer batches (skipped with
``--quick``): the planner's constants for the cell (``lstm_tuning``: scaled to the layer's
size; ``gru_tuning``: a cost per step, since torch's CPU GRU runs step by step and row
groups multiply its steps) against ``Tuning()``, the fused kernel's previous constants,
inference and training.
Run: ``python benchmarks/bench_overhead.py [--quick] [--rounds N] [--cell GRU]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from varlen.data.step_kernels import STEP_KERNELS
from varlen.nn import GRU, LSTM, StreamingRNN, recurrent
from varlen.nn._gates import cell_of, layer_params, zero_state
from varlen.nn._plans import Tuning, capturing_graph, plan_call, row_groups

SHAPES = (  # B, T, F, H, bidirectional
    (64, 100, 32, 128, False),
    (32, 29, 12, 64, True),
    (32, 29, 12, 64, False),
    (8, 10, 4, 16, False),
)
NO_PADS = (32, 29, 12, 64, False)  # a bucketed batch of equal lengths: the no-pad route
STACKED = ((32, 29, 12, 64, False), (32, 29, 12, 64, True))  # run with 2 layers
BATCHES, SEED = 16, 0


def batches(
    B: int, T: int, F: int, rng: torch.Generator, *, full: bool = False
) -> list[tuple[Tensor, Tensor]]:
    """BATCHES padded batches (post) with lengths uniform in [1, T], row 0 at T (all T: full)."""
    out = []
    for _ in range(BATCHES):
        lengths = torch.randint(1, T + 1, (B,), generator=rng)
        lengths[0] = T
        if full:
            lengths[:] = T
        out.append((torch.randn(B, T, F, generator=rng), lengths))
    return out


def _backward(call: Callable[[], tuple[Tensor, Any]]) -> Callable[[], None]:
    """A call that runs ``call``, then the backward pass of its :func:`loss`."""

    def run() -> None:
        loss(call()).backward()  # type: ignore[no-untyped-call]

    return run


def loss(result: tuple[Tensor, Any]) -> Tensor:
    """Sum of the outputs and of the final h."""
    out, state = result
    h = state[0] if isinstance(state, tuple) else state
    total: Tensor = out.sum() + h.sum()
    return total


def timed(calls: dict[str, Callable[[], object]], rounds: int, reps: int) -> dict[str, Any]:
    """Interleave ``calls`` round by round; medians of (CPU, wall) seconds per call."""
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    wall: dict[str, list[float]] = {name: [] for name in calls}
    for r in range(rounds + 1):  # round 0 warms up
        for name, call in calls.items():
            start_cpu, start_wall = time.thread_time(), time.perf_counter()
            for _ in range(reps):
                call()
            if r:
                cpu[name].append((time.thread_time() - start_cpu) / reps)
                wall[name].append((time.perf_counter() - start_wall) / reps)
    return {n: (statistics.median(cpu[n]), statistics.median(wall[n])) for n in calls}


def cycling(work: list[tuple[Tensor, Tensor]]) -> Callable[[], tuple[Tensor, Tensor]]:
    """A function returning the next batch of ``work`` each call."""
    state = {"i": 0}

    def next_batch() -> tuple[Tensor, Tensor]:
        state["i"] = (state["i"] + 1) % len(work)
        return work[state["i"]]

    return next_batch


def graph_nodes(tensor: Tensor) -> int:
    """Number of autograd nodes reachable from ``tensor``."""
    seen, stack = set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return len(seen)


def compare(
    shape: tuple[int, int, int, int, bool],
    rounds: int,
    reps: int,
    cell: str,
    *,
    parts: bool,
    full: bool = False,
    layers: int = 1,
) -> None:
    """Print one shape's ratios (both modes) and its breakdown (``full``: no pads at all)."""
    B, T, F, H, bidirectional = shape
    rng = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    ours: nn.RNNBase = (LSTM if cell == "LSTM" else GRU)(F, H, layers, bidirectional=bidirectional)
    theirs = (nn.LSTM if cell == "LSTM" else nn.GRU)(
        F, H, layers, batch_first=True, bidirectional=bidirectional
    )
    theirs.load_state_dict(ours.state_dict())
    work = batches(B, T, F, rng, full=full)
    nxt = cycling(work)

    def infer(*, exact: bool) -> Callable[[], object]:
        def call() -> object:
            x, lengths = nxt()
            with torch.no_grad():
                return ours(x, lengths) if exact else theirs(x)

        return call

    def train(*, exact: bool) -> Callable[[], object]:
        def call() -> object:
            x, lengths = nxt()
            loss(ours(x, lengths) if exact else theirs(x)).backward()  # type: ignore[no-untyped-call]
            return None

        return call

    calls = {
        "infer torch": infer(exact=False),
        "infer varlen": infer(exact=True),
        "train torch": train(exact=False),
        "train varlen": train(exact=True),
    }
    result = timed(calls, rounds, reps)
    name = f"{B}, {T}, {F}, {H}, {'bi' if bidirectional else 'uni'}"
    name += f"{', no pads' if full else ''}{f', {layers} layers' if layers > 1 else ''}"
    for mode, label in (("infer", "inference"), ("train", "forward + backward")):
        (t_cpu, t_wall), (v_cpu, v_wall) = result[f"{mode} torch"], result[f"{mode} varlen"]
        print(
            f"| {name} | {cell} | {label} | {t_cpu * 1e3:.3f} ms | {v_cpu * 1e3:.3f} ms | "
            f"{t_cpu / v_cpu:.2f} | {t_wall / v_wall:.2f} |"
        )
    if parts:
        breakdown(ours, theirs, work[0], rounds, reps)


def breakdown(
    ours: nn.RNNBase, theirs: nn.RNNBase, batch: tuple[Tensor, Tensor], rounds: int, reps: int
) -> None:
    """Time each stage of one inference call on its own; print them and the glue left."""
    x, lengths = batch
    cell = cell_of(ours)
    D = 2 if ours.bidirectional else 1
    inputs = recurrent._resolve(ours, x, lengths, None, "post", graph=False)
    B, T, F = x.shape
    plan = plan_call(
        B=B, T=T, host_lengths=inputs.host_lengths, unmasked=False, method="auto",
        device_type="cpu", graph=False, F=F, total=inputs.total,
    )  # fmt: skip

    def first_input() -> Tensor:  # as the fast call builds it (else as _drive_padded does)
        if plan.select:
            return recurrent._first_input(x, inputs.lengths, "post", STEP_KERNELS)[0]
        pads = recurrent._pad_steps(inputs.lengths, T, "post", graph=False)  # (T, B, 1)
        indicator = pads.to(x.dtype)
        zeroed = recurrent._zero_pads(x.transpose(0, 1), pads, indicator, graph=False)
        return torch.cat([zeroed, indicator], dim=2)

    augmented = first_input()  # time-major (T, B, F + 1), as the kernel is called
    params = [p for d in range(D) for p in layer_params(ours, cell, 0, d)]
    init = zero_state(ours, cell, x.shape[0], x, kept=True)
    picks = recurrent._final_picks(inputs.lengths, T, "post", D)
    out, _ = cell.kernel(
        augmented,
        init,
        params,
        has_biases=ours.bias,
        bidirectional=D == 2,
        train=ours.training,
        batch_first=False,
    )

    def gather() -> object:  # in inference, as the fast call picks them
        H_out = init[0].shape[2]
        return [
            recurrent._pick_final(out, inputs.lengths, "post", d, H_out, None, STEP_KERNELS)
            if STEP_KERNELS is not None
            else out[..., d * H_out : (d + 1) * H_out].gather(0, pick.expand(1, -1, H_out))
            for d, pick in enumerate(picks)
            if pick is not None
        ]

    first_route = "multiply" if not plan.select else "compiled" if STEP_KERNELS else "select"
    stages: dict[str, Callable[[], object]] = {
        "validation (lengths, x, state, dtype/device)": lambda: (
            recurrent._resolve(ours, x, lengths, None, "post", graph=capturing_graph()),
            recurrent._check_state(ours, cell, None, x.shape[0], x),
        ),
        "planning": lambda: plan_call(
            B=B,
            T=T,
            host_lengths=inputs.host_lengths,
            unmasked=False,
            method="auto",
            device_type="cpu",
            graph=False,
            F=F,
            total=inputs.total,
        ),
        "control columns / augmented weights": lambda: [
            layer_params(ours, cell, 0, d) for d in range(D)
        ],
        f"pad mask, zeroed pads, augmented input ({first_route})": first_input,
        "initial state (zeros, kept)": lambda: zero_state(ours, cell, x.shape[0], x, kept=True),
        f"final-state {'copies (compiled)' if STEP_KERNELS else 'gathers'}": lambda: (
            None
            if STEP_KERNELS
            else recurrent._final_picks(inputs.lengths, T, "post", D),  # (index)
            gather(),
        ),
        "kernel (torch.lstm / torch.gru)": lambda: cell.kernel(
            augmented,
            init,
            params,
            has_biases=ours.bias,
            bidirectional=D == 2,
            train=True,
            batch_first=False,
        ),
        "whole varlen call": lambda: ours(x, lengths),
        "whole torch call": lambda: theirs(x),
    }
    with torch.no_grad():
        result = timed(stages, rounds, reps)
    parts = sum(cpu for name, (cpu, _) in result.items() if not name.startswith("whole"))
    for name, (cpu, _) in result.items():
        print(f"|   | | {name} | {cpu * 1e6:.1f} us | | | |")
    glue = result["whole varlen call"][0] - parts
    print(f"|   | | Python glue (whole call minus the stages) | {glue * 1e6:.1f} us | | | |")
    nodes = (graph_nodes(loss(ours(x, lengths))), graph_nodes(loss(theirs(x))))
    print(f"|   | | autograd nodes, varlen / torch | {nodes[0]} / {nodes[1]} | | | |")


def streaming(rounds: int, reps: int) -> None:
    """StreamingRNN one step at a time against a bare torch.nn.LSTM step loop."""
    F, H, steps = 12, 64, 50
    torch.manual_seed(SEED)
    lstm = LSTM(F, H)
    model = StreamingRNN(lstm).eval()
    bare = nn.LSTM(F, H, batch_first=True).eval()
    bare.load_state_dict(lstm.state_dict())
    for B in (1, 32):
        xs = torch.randn(steps, B, 1, F)

        def ours_loop(xs: Tensor = xs) -> None:
            state = None
            for x in xs:
                _, state = model(x, state=state)

        def torch_loop(xs: Tensor = xs) -> None:
            hx = None
            for x in xs:
                _, hx = bare(x, hx)

        with torch.inference_mode():
            result = timed({"torch": torch_loop, "varlen": ours_loop}, rounds, max(reps // 10, 1))
        t_rate, v_rate = steps / result["torch"][0], steps / result["varlen"][0]
        print(
            f"| StreamingRNN, B = {B}, F = {F}, H = {H} | {t_rate:,.0f} steps/s | "
            f"{v_rate:,.0f} steps/s | {v_rate / t_rate:.2f} |"
        )


def torch_form(rounds: int, reps: int) -> None:
    """``LSTM(x)`` with no lengths and no mask (every step real) against ``torch.nn.LSTM(x)``."""
    for B, T, F, H in ((8, 10, 4, 16), (32, 29, 12, 64)):
        torch.manual_seed(SEED)
        ours = LSTM(F, H, batch_first=True)
        theirs = nn.LSTM(F, H, batch_first=True)
        theirs.load_state_dict(ours.state_dict())
        xs = [batch[0] for batch in batches(B, T, F, torch.Generator().manual_seed(SEED))]
        nxt = cycling([(x, x) for x in xs])

        def call_of(
            module: nn.Module, nxt: Callable[[], tuple[Tensor, Tensor]] = nxt
        ) -> Callable[[], tuple[Tensor, Any]]:
            return lambda: module(nxt()[0])

        calls = {"torch": call_of(theirs), "varlen": call_of(ours)}
        for mode in ("inference", "forward + backward"):
            if mode == "inference":
                with torch.no_grad():
                    result = timed(dict(calls), rounds, reps)
            else:
                result = timed({name: _backward(c) for name, c in calls.items()}, rounds, reps)
            t_rate, v_rate = 1 / result["torch"][0], 1 / result["varlen"][0]
            print(
                f"| LSTM(x), no lengths (torch's call), {B} x {T} x {F} -> {H}, {mode} | "
                f"{t_rate:,.0f} calls/s | {v_rate:,.0f} calls/s | {v_rate / t_rate:.2f} |"
            )


def ragged(rounds: int, reps: int) -> None:
    """Values + offsets and nested jagged inputs against varlen on the padded batch."""
    B, T, F, H = 32, 29, 12, 64
    rng = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    lstm = LSTM(F, H)
    x, lengths = batches(B, T, F, rng)[0]
    sequences = [x[i, : int(n)] for i, n in enumerate(lengths)]
    values = torch.cat(sequences)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
    nested = torch.nested.nested_tensor(sequences, layout=torch.jagged)
    mask = torch.arange(T)[None, :] < lengths[:, None]  # (B, T), real steps first
    x_pre = torch.stack([torch.roll(row, T - int(n), 0) for row, n in zip(x, lengths, strict=True)])
    mask_pre = mask.flip(1)  # real steps last, as Keras's pad_sequences pads by default
    calls = {
        "padded + lengths": lambda: lstm(x, lengths),
        "padded + mask": lambda: lstm(x, mask=mask),
        "padded before + mask (padding='post' left as is)": lambda: lstm(x_pre, mask=mask_pre),
        "values + offsets": lambda: lstm(values, offsets=offsets),
        "nested jagged": lambda: lstm(nested),
    }
    for mode in ("inference", "forward + backward"):
        if mode == "inference":
            with torch.no_grad():
                result = timed(calls, rounds, reps)
        else:
            result = timed(
                {name: _backward(call) for name, call in calls.items()},
                rounds,
                reps,
            )
        base = result["padded + lengths"][0]
        for name, (cpu, _) in result.items():
            print(
                f"| {B}, {T}, {F}, {H} | {mode} | {name} | {cpu * 1e3:.3f} ms | {base / cpu:.2f} |"
            )


GROUP_SHAPES = (  # B, T, F, H
    (16, 300, 4, 32),
    (128, 50, 4, 16),
    (64, 200, 8, 32),
    (64, 400, 4, 16),
    (32, 200, 12, 64),
    (128, 100, 12, 64),
    (128, 300, 8, 64),
    (64, 100, 32, 128),
    (32, 100, 64, 256),
)


def group_plans(cell_name: str, rounds: int) -> None:
    """Row groups: the planner's constants for the cell against ``Tuning()`` (before).

    ``lstm_tuning`` counts a group's and a step's fixed costs in the layer's own cells (a
    narrow layer's cells are cheap) and, in training, the values a call keeps for its
    backward; ``gru_tuning`` counts the fixed cost of each step torch's step-by-step CPU GRU
    runs (see ``varlen.nn._plans``). 8 batches a round, lengths uniform in [1, T].
    """
    for B, T, F, H in GROUP_SHAPES:
        for training in (False, True):
            _group_plans_row(cell_name, (B, T, F, H), rounds, training=training)


def _group_plans_row(
    cell_name: str, shape: tuple[int, int, int, int], rounds: int, *, training: bool
) -> None:
    B, T, F, H = shape
    rng = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    ours: nn.RNNBase = (LSTM if cell_name == "LSTM" else GRU)(F, H)
    theirs = (nn.LSTM if cell_name == "LSTM" else nn.GRU)(F, H, batch_first=True)
    theirs.load_state_dict(ours.state_dict())
    work = batches(B, T, F, rng)[:8]
    cell = cell_of(ours)

    def run(tuning: Tuning | None, *, exact: bool = True) -> Callable[[], object]:
        def call() -> None:
            with torch.set_grad_enabled(training):
                for x, lengths in work:
                    if exact:
                        result = recurrent._forward(
                            ours, cell, x, lengths, mask=None, padding="post", hx=None,
                            method="auto", tuning=tuning,
                        )  # fmt: skip
                    else:
                        result = theirs(x)
                    if training:
                        loss(result).backward()  # type: ignore[no-untyped-call]

        return call

    with torch.set_grad_enabled(training):
        own = recurrent.cell_tuning(ours, cell)
    splits = [row_groups(lengths, T, tuning) for tuning in (Tuning(), own) for _, lengths in work]
    counts = ["1" if split is None else str(len(split[0])) for split in splits]
    calls = {"torch": run(None, exact=False), "before": run(Tuning()), "now": run(None)}
    result = timed(calls, max(rounds // 3, 3), 1)
    t, before, now = (result[name][0] / len(work) for name in calls)
    print(
        f"| {B}, {T}, {F}, {H} | {'forward + backward' if training else 'inference'} "
        f"| {t * 1e3:.2f} ms | {''.join(counts[:8])}: {before * 1e3:.2f} ms ({t / before:.2f}) "
        f"| {''.join(counts[8:])}: {now * 1e3:.2f} ms ({t / now:.2f}) | {before / now:.2f} |"
    )


def keras_layers(rounds: int, reps: int) -> None:
    """``varlen.keras.LSTM`` on Keras's torch backend, in a subprocess (see the module doc)."""
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, __file__, "--keras-child", "--rounds", str(rounds)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        print(f"| (Keras rows not measured: {done.stderr.strip().splitlines()[-1:]}) | | | |")
        return
    print(done.stdout, end="")
    del reps  # (the child picks its repetitions per row)


def _keras_child(rounds: int) -> None:
    """The Keras rows (this process has ``KERAS_BACKEND=torch``)."""
    try:
        import keras  # (optional: the "keras" extra)
        from varlen.keras import LSTM as KerasLSTM
    except ImportError:
        print("| (Keras rows not measured: keras is not installed) | | | |")
        return
    B, T, F, H = 32, 29, 12, 64
    rng = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    x, lengths = batches(B, T, F, rng)[0]
    mask = torch.arange(T)[None, :] < lengths[:, None]
    ours = KerasLSTM(H)
    theirs = keras.layers.LSTM(H)
    for layer in (ours, theirs):
        layer.build((B, T, F))
    theirs.set_weights(ours.get_weights())
    core = LSTM(F, H)
    bare = nn.LSTM(F, H, batch_first=True)
    calls: dict[str, Callable[[], object]] = {
        "torch.nn.LSTM, padded (wrong)": lambda: bare(x),
        "varlen.nn.LSTM, mask": lambda: core(x, mask=mask),
        "varlen.keras.LSTM, mask": lambda: ours(x, mask=mask),
        "keras.layers.LSTM, mask": lambda: theirs(x, mask=mask),
    }
    with torch.no_grad():
        result = timed(calls, max(rounds // 3, 2), 2)
    base = result["torch.nn.LSTM, padded (wrong)"][0]
    for name, (cpu, _) in result.items():
        print(f"| {B}, {T}, {F}, {H} | {name} | {cpu * 1e3:.3f} ms | {base / cpu:.3f} |")


def main() -> None:
    """Measure and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds, the small shapes")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--cell", choices=("LSTM", "GRU"), default="LSTM")
    parser.add_argument("--no-breakdown", action="store_true", help="only the ratios")
    parser.add_argument("--keras-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rounds = args.rounds or (2 if args.quick else 15)
    reps = 5 if args.quick else 20
    if args.keras_child:
        _keras_child(rounds)
        return
    print(f"torch {torch.__version__}, 1 thread, {rounds} rounds, medians of thread CPU time")
    print(
        "| B, T, F, H | cell | mode | torch padded (wrong) | varlen (exact) | wrong / varlen "
        "| same, wall clock |"
    )
    print("|---|---|---|---|---|---|---|")
    for shape in SHAPES[1:] if args.quick else SHAPES:
        big = shape[0] * shape[1] * shape[3] > 100_000
        compare(
            shape,
            rounds,
            max(reps // 10, 1) if big else reps,
            args.cell,
            parts=not args.no_breakdown,
        )
    compare(NO_PADS, rounds, reps, args.cell, parts=False, full=True)
    for shape in STACKED:
        compare(shape, rounds, max(reps // 4, 1), args.cell, parts=False, layers=2)
    print("\n| entry point | torch (step loop, or its call) | varlen | varlen / torch |")
    print("|---|---|---|---|")
    streaming(rounds, reps)
    torch_form(rounds, reps)
    print("\n| B, T, F, H | mode | input | ms | padded / this |")
    print("|---|---|---|---|---|")
    ragged(rounds, reps)
    if not args.quick:
        print(
            f"\n| B, T, F, H ({args.cell}) | mode | torch padded | groups per batch: varlen "
            "before (torch / this) | groups per batch: varlen now (torch / this) "
            "| now vs before |"
        )
        print("|---|---|---|---|---|---|")
        group_plans(args.cell, rounds)
    print("\n| B, T, F, H | Keras torch backend, inference | ms | torch padded / this |")
    print("|---|---|---|---|")
    keras_layers(rounds, reps)


if __name__ == "__main__":
    main()
