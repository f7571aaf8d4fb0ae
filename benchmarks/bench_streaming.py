"""Batched streaming vs one stream at a time; and the memory of truncated BPTT on long sequences.

Streaming (issue 5, target: batched >= 20x one-at-a-time on 256 concurrent streams). Setting of
the recurrent-layers benchmark: LSTM/GRU, input 32, hidden 128, float32, inference
(``torch.inference_mode``). 256 streams each send a chunk per round; two arrival patterns:

- ``live``: one step per chunk, every stream every round (sensor samples as they arrive);
- ``bursty``: 1 to 16 steps per chunk (uniform), each stream idle in 10% of the rounds.

Paths, each carrying every stream's state across rounds, from zero state:

- ``pool``: :class:`varlen.nn.StreamPool` -- ``step({id: array})`` once per round (pads the
  NumPy chunks, one model call, scatters the states back by id);
- ``batched tensors``: :class:`varlen.nn.StreamingRNN` on chunks padded before timing (what a
  pipeline that already batches would run);
- ``one at a time, varlen``: ``StreamingRNN`` called once per stream and chunk, ``B = 1``;
- ``one at a time, torch``: ``torch.nn.LSTM``/``GRU`` (same weights) called once per stream and
  chunk with its own ``(h, c)``: the fastest naive loop.

Each row reports real steps per second (the sum of the chunk lengths over the time of a pass
over all rounds), the median over interleaved passes after a warm-up pass, and the ratios to both
one-at-a-time paths: ``x varlen 1-by-1`` (varlen's one-at-a-time mode, the issue's baseline) and
``x torch 1-by-1`` (the fastest naive loop). Every path's final states are checked against the
pool's.

Memory of truncated BPTT: ``varlen.training.train_tbptt`` (windows of ``k`` steps, detached
state) against one autograd graph over the whole sequence, each run in a fresh subprocess that
reports its peak resident memory above its baseline (``resource.getrusage``) and the peak bytes
held by autograd graphs (saved-tensor hooks). Run:
``python benchmarks/bench_streaming.py [--quick] [--no-memory] [--threads N]``. On a machine
shared with other jobs, ``--threads 1`` avoids torch's spinning worker threads fighting for cores
(which slows small calls by 10x or more and makes the table meaningless).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from varlen.nn.recurrent import GRU, LSTM
from varlen.nn.streaming import StreamingRNN, StreamPool, StreamState
from varlen.training.tbptt import train_tbptt

INPUT, HIDDEN, STREAMS = 32, 128, 256


@dataclass(frozen=True)
class Scenario:
    """How chunks arrive: sizes uniform in ``[1, max_chunk]``; a stream idles with ``idle``."""

    name: str
    max_chunk: int
    idle: float


SCENARIOS = (Scenario("live", 1, 0.0), Scenario("bursty", 16, 0.1))


@dataclass(frozen=True)
class Row:
    """One measured row of the streaming table."""

    scenario: str
    cell: str
    path: str
    steps_per_second: float
    x_varlen_one: float  # ratio to "one at a time, varlen" (the run_one_at_a_time mode)
    x_torch_one: float  # ratio to "one at a time, torch" (the fastest naive loop)


Rounds = list[dict[int, np.ndarray]]  # per round, {stream id: chunk (T_c, F) float32}


def make_rounds(scenario: Scenario, num_rounds: int, rng: np.random.Generator) -> Rounds:
    """Random chunks for every round; idle streams are absent from a round."""
    rounds = []
    for _ in range(num_rounds):
        sizes = rng.integers(1, scenario.max_chunk + 1, size=STREAMS)
        active = rng.random(STREAMS) >= scenario.idle
        rounds.append(
            {
                stream: rng.normal(size=(int(sizes[stream]), INPUT)).astype(np.float32)
                for stream in range(STREAMS)
                if active[stream]
            }
        )
    return rounds


def real_steps(rounds: Rounds) -> int:
    """Total real steps over all rounds."""
    return sum(chunk.shape[0] for chunks in rounds for chunk in chunks.values())


def pad_rounds(rounds: Rounds) -> list[tuple[Tensor, Tensor]]:
    """Each round as one post-padded ``(STREAMS, T_max, F)`` tensor and its lengths."""
    padded = []
    for chunks in rounds:
        lengths = torch.tensor([chunks[s].shape[0] if s in chunks else 0 for s in range(STREAMS)])
        x = torch.zeros(STREAMS, int(lengths.max()), INPUT)
        for stream, chunk in chunks.items():
            x[stream, : chunk.shape[0]] = torch.from_numpy(chunk)
        padded.append((x, lengths))
    return padded


def last_h(state: StreamState) -> Tensor:
    """The top layer's h of every stream, ``(STREAMS, H)``."""
    return state.h[-1]


def run_pool(rnn: StreamingRNN, rounds: Rounds, _: Any) -> Tensor:
    """StreamPool: one ``step`` per round."""
    pool = StreamPool(rnn)
    pool.join(range(STREAMS))
    for chunks in rounds:
        pool.step(chunks)
    return last_h(pool.state)


def run_batched(rnn: StreamingRNN, _: Rounds, padded: list[tuple[Tensor, Tensor]]) -> Tensor:
    """StreamingRNN on pre-padded rounds: one call per round."""
    state = rnn.initial_state(STREAMS)
    for x, lengths in padded:
        _, state = rnn(x, lengths, state)
    return last_h(state)


def run_varlen_one(rnn: StreamingRNN, rounds: Rounds, _: Any) -> Tensor:
    """StreamingRNN called per stream and chunk."""
    states = [rnn.initial_state(1) for _ in range(STREAMS)]
    for chunks in rounds:
        for stream, chunk in chunks.items():
            _, states[stream] = rnn(torch.from_numpy(chunk)[None], None, states[stream])
    return last_h(StreamState.concatenate(states))


def make_torch_one(module: LSTM | GRU) -> Callable[[StreamingRNN, Rounds, Any], Tensor]:
    """Torch's own module, same weights, called per stream and chunk with its own state."""
    cls = nn.LSTM if isinstance(module, LSTM) else nn.GRU
    twin = cls(INPUT, HIDDEN, batch_first=True)
    twin.load_state_dict(module.state_dict())

    def run(_: StreamingRNN, rounds: Rounds, __: Any) -> Tensor:
        zeros = torch.zeros(1, 1, HIDDEN)
        states: list[Any] = [(zeros, zeros) if cls is nn.LSTM else zeros] * STREAMS
        for chunks in rounds:
            for stream, chunk in chunks.items():
                _, states[stream] = twin(torch.from_numpy(chunk)[None], states[stream])
        hs = [s[0] if isinstance(s, tuple) else s for s in states]
        return torch.cat(hs, dim=1)[-1]

    return run


def measure(
    cell: str, scenario: Scenario, *, num_rounds: int, repeats: int, seed: int
) -> list[Row]:
    """Median steps/s per path, passes interleaved (order rotated), after a warm-up pass."""
    torch.manual_seed(seed)
    module = (LSTM if cell == "LSTM" else GRU)(INPUT, HIDDEN, method="padded")
    rnn = StreamingRNN(module).eval()
    rounds = make_rounds(scenario, num_rounds, np.random.default_rng(seed))
    padded = pad_rounds(rounds)
    paths: dict[str, Callable[[StreamingRNN, Rounds, Any], Tensor]] = {
        "pool": run_pool,
        "batched tensors": run_batched,
        "one at a time, varlen": run_varlen_one,
        "one at a time, torch": make_torch_one(module),
    }
    samples: dict[str, list[float]] = {name: [] for name in paths}
    with torch.inference_mode():
        reference = run_pool(rnn, rounds, padded)
        for name, run in paths.items():  # warm-up, and every path must agree
            diff = float((run(rnn, rounds, padded) - reference).abs().max())
            if diff > 1e-4:
                raise RuntimeError(f"{name} disagrees with the pool: max |diff| = {diff:.2e}")
        names = list(paths)
        for repeat in range(repeats):
            for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
                start = time.perf_counter()
                paths[name](rnn, rounds, padded)
                samples[name].append(time.perf_counter() - start)
    steps = real_steps(rounds)
    speed = {name: steps / statistics.median(times) for name, times in samples.items()}
    varlen_one, torch_one = speed["one at a time, varlen"], speed["one at a time, torch"]
    return [
        Row(
            scenario.name,
            cell,
            name,
            speed[name],
            speed[name] / varlen_one,
            speed[name] / torch_one,
        )
        for name in paths
    ]


def run(quick: bool) -> list[Row]:  # noqa: FBT001  # the benchmark entry point's contract
    """Measure every scenario and cell; ``quick`` uses few rounds and one timed pass."""
    num_rounds, repeats = (3, 1) if quick else (20, 5)
    rows = []
    for scenario in SCENARIOS:
        for cell in ("LSTM", "GRU"):
            rows += measure(cell, scenario, num_rounds=num_rounds, repeats=repeats, seed=0)
    return rows


def format_table(rows: list[Row]) -> str:
    """Render the streaming rows as a fixed-width table."""
    header = (
        f"{'chunks':<7} {'cell':<5} {'path':<22} {'real steps/s':>13} "
        f"{'x varlen 1-by-1':>16} {'x torch 1-by-1':>15}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.scenario:<7} {row.cell:<5} {row.path:<22} {row.steps_per_second:>13,.0f} "
            f"{row.x_varlen_one:>16.1f} {row.x_torch_one:>15.1f}"
        )
    return "\n".join(lines)


# ---- memory of truncated BPTT -------------------------------------------------------------


@dataclass(frozen=True)
class MemoryRow:
    """Peak memory of one training pass over one batch of long sequences."""

    mode: str  # "tbptt" or "one graph"
    T: int
    k: int
    peak_rss_mb: float
    graph_mb: float
    seconds: float


MEMORY_BATCH = 4


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def memory_child(T: int, k: int) -> MemoryRow:
    """In this process: one training pass (``k = 0``: one graph); report peak memory."""
    torch.manual_seed(0)
    lstm = LSTM(INPUT, HIDDEN, method="padded")
    x = torch.randn(MEMORY_BATCH, T, INPUT, generator=torch.Generator().manual_seed(0))
    lengths = torch.full((MEMORY_BATCH,), T)
    optimizer = torch.optim.SGD(lstm.parameters(), lr=1e-3)
    live, peak = [0], [0]

    def pack(tensor: Tensor) -> tuple[Tensor, Any]:
        nbytes = tensor.numel() * tensor.element_size()
        live[0] += nbytes
        peak[0] = max(peak[0], live[0])
        return tensor, _Release(live, nbytes)

    warm, _ = lstm(x[:, :16], lengths.clamp(max=16))  # load the kernels before the baseline
    warm.sum().backward()
    baseline = _rss_mb()
    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda saved: saved[0]):
        if k == 0:
            out, _ = lstm(x, lengths)
            out.pow(2).mean().backward()
            optimizer.step()
        else:
            train_tbptt(
                lstm, x, lengths, k=k, loss_fn=lambda o, _: o.pow(2).mean(), optimizer=optimizer
            )
    seconds = time.perf_counter() - start
    mode = "one graph" if k == 0 else "tbptt"
    return MemoryRow(mode, T, k, _rss_mb() - baseline, peak[0] / 2**20, seconds)


class _Release:
    """Lowers the live byte count when autograd drops a saved tensor."""

    def __init__(self, live: list[int], nbytes: int) -> None:
        self.live, self.nbytes = live, nbytes

    def __del__(self) -> None:
        self.live[0] -= self.nbytes


def memory_rows(quick: bool, threads: int) -> list[MemoryRow]:  # noqa: FBT001  # like run()
    """Each configuration in a fresh subprocess, so peak RSS belongs to it alone."""
    if quick:
        configs = [(10_000, 1000), (2_000, 0), (4_000, 0)]
    else:
        configs = [(10_000, 1000), (100_000, 1000), (5_000, 0), (10_000, 0), (20_000, 0)]
    rows = []
    for T, k in configs:
        command = [sys.executable, __file__, "--threads", str(threads)]
        command += ["--memory-child", str(T), str(k)]
        result = subprocess.run(command, check=True, capture_output=True, text=True)
        rows.append(MemoryRow(**json.loads(result.stdout.strip().splitlines()[-1])))
    return rows


def format_memory(rows: list[MemoryRow]) -> str:
    """Render the memory rows, with the one-graph cost per step extrapolated to 100k steps."""
    header = f"{'mode':<10} {'T':>8} {'k':>6} {'peak RSS MB':>12} {'graph MB':>10} {'s':>7}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.mode:<10} {row.T:>8,} {row.k or '-':>6} {row.peak_rss_mb:>12.1f} "
            f"{row.graph_mb:>10.1f} {row.seconds:>7.1f}"
        )
    graphs = [row for row in rows if row.mode == "one graph"]
    if graphs:
        per_step = max(row.graph_mb / row.T for row in graphs)
        lines.append(
            f"one graph over 100,000 steps would hold ~{per_step * 100_000:,.0f} MB of saved "
            f"tensors (B = {MEMORY_BATCH}, H = {HIDDEN})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds, one timed pass")
    parser.add_argument("--no-memory", action="store_true", help="skip the TBPTT memory table")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--memory-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        print(json.dumps(asdict(memory_child(*args.memory_child))))
        return 0
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {STREAMS} streams, "
        f"I={INPUT} H={HIDDEN}, float32, inference"
    )
    print(format_table(run(args.quick)))
    if not args.no_memory:
        print(f"\nTruncated BPTT vs one graph: B = {MEMORY_BATCH}, LSTM I={INPUT} H={HIDDEN}")
        print(format_memory(memory_rows(args.quick, torch.get_num_threads())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
