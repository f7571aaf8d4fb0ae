"""Exact and as fast as the fast wrong way: varlen.nn.LSTM/GRU against torch's usual paths.

Setting (issue 3): LSTM, input 32, hidden 128, batches of 64 drawn from 4,096 sequences with
lengths log-normal (median 100) clipped to [5, 1000]; training = forward + backward + Adam on a
linear head over the final hidden state. Rows, all in one run, interleaved round by round on the
same batches, after a warm-up round (oneDNN builds a primitive per new shape):

- ``torch padded, no mask``: ``torch.nn.LSTM`` on the padded batch, pads and all (fast; the
  final state is wrong for every sequence shorter than the batch).
- ``varlen``: ``varlen.nn.LSTM`` on the same padded batch with its lengths (exact).
- ``varlen, whole batch`` (random batches): the same with the split of uneven batches into
  groups of rows turned off, so every row runs to the batch's longest length (the ablation).
- ``torch packed``: hand-written ``pack_padded_sequence`` + ``torch.nn.LSTM`` +
  ``pad_packed_sequence`` (exact, falls off the fused kernel on CPU).
- ``one at a time``: each sequence alone, no padding (exact), one optimizer step per batch.

Each row reports real (unpadded) steps per second, the median over rounds, and its ratio to
``varlen`` on the same batching. Run: ``python benchmarks/bench_recurrent.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from _setting import sample_lengths  # benchmarks/ is on sys.path when run as a script
from varlen.nn import GRU, LSTM, recurrent
from varlen.nn._gates import cell_of
from varlen.nn._plans import Tuning

INPUT, HIDDEN, BATCH, NUM_SEQUENCES, CLASSES = 32, 128, 64, 4096, 8


@dataclass(frozen=True)
class Row:
    """One measured row of the table."""

    batching: str
    mode: str
    kind: str
    path: str
    steps_per_second: float
    ratio_to_varlen: float


def make_batches(
    lengths: np.ndarray, *, bucketed: bool, rng: np.random.Generator
) -> list[np.ndarray]:
    """Index batches of BATCH: random, or sorted by length and cut (bucketed); shuffled order."""
    order = np.argsort(lengths, kind="stable") if bucketed else rng.permutation(len(lengths))
    batches = [order[i : i + BATCH] for i in range(0, len(order) - BATCH + 1, BATCH)]
    return [batches[i] for i in rng.permutation(len(batches))]


@dataclass
class Work:
    """A padded batch (post), its lengths and targets."""

    x: Tensor
    lengths: Tensor
    y: Tensor

    @property
    def real_steps(self) -> int:
        """Number of unpadded steps in the batch."""
        return int(self.lengths.sum())


def build_work(
    batches: list[np.ndarray], lengths: np.ndarray, rng: np.random.Generator
) -> list[Work]:
    """Random data for each batch, padded to the batch's longest sequence."""
    works = []
    for index in batches:
        lens = torch.from_numpy(lengths[index])
        x = torch.from_numpy(
            rng.normal(size=(len(index), int(lens.max()), INPUT)).astype(np.float32)
        )
        x = x.masked_fill(~(torch.arange(x.shape[1])[None] < lens[:, None])[:, :, None], 0.0)
        y = torch.from_numpy(rng.integers(0, CLASSES, size=len(index)))
        works.append(Work(x, lens, y))
    return works


class Model(nn.Module):
    """A recurrent layer and a linear head on the last layer's final hidden state."""

    rnn: nn.RNNBase
    head: nn.Linear

    def __init__(self, rnn: nn.RNNBase) -> None:
        super().__init__()
        self.rnn = rnn
        self.head = nn.Linear(HIDDEN, CLASSES)


def _final_h(state: Tensor | tuple[Tensor, ...]) -> Tensor:
    h = state[0] if isinstance(state, tuple) else state
    return h[-1]


def step_torch_padded(model: Model, work: Work) -> Tensor:
    _, state = model.rnn(work.x)
    return model.head(_final_h(state))  # type: ignore[no-any-return]


def step_varlen(model: Model, work: Work) -> Tensor:
    _, state = model.rnn(work.x, work.lengths)
    return model.head(_final_h(state))  # type: ignore[no-any-return]


NO_GROUPS = Tuning(min_saving=1.0)  # a split would have to save every cell: never taken


def step_varlen_whole_batch(model: Model, work: Work) -> Tensor:
    """Run varlen with uneven batches not split into groups of rows (the ablation)."""
    _, state = recurrent._forward(
        model.rnn,
        cell_of(model.rnn),
        work.x,
        work.lengths,
        mask=None,
        padding="post",
        hx=None,
        method=model.rnn.method,  # type: ignore[arg-type]  # a varlen layer's
        tuning=NO_GROUPS,
    )
    return model.head(_final_h(state))  # type: ignore[no-any-return]


def step_torch_packed(model: Model, work: Work) -> Tensor:
    packed = nn.utils.rnn.pack_padded_sequence(
        work.x, work.lengths, batch_first=True, enforce_sorted=False
    )
    out, state = model.rnn(packed)
    nn.utils.rnn.pad_packed_sequence(out, batch_first=True)  # users unpack; count its cost
    return model.head(_final_h(state))  # type: ignore[no-any-return]


def step_one_at_a_time(model: Model, work: Work) -> Tensor:
    logits = []
    for b, n in enumerate(work.lengths.tolist()):
        _, state = model.rnn(work.x[b : b + 1, :n])
        logits.append(model.head(_final_h(state)))
    return torch.cat(logits)


STEPS: dict[str, Callable[[Model, Work], Tensor]] = {
    "torch padded, no mask": step_torch_padded,
    "varlen": step_varlen,
    "varlen, whole batch": step_varlen_whole_batch,
    "torch packed": step_torch_packed,
    "one at a time": step_one_at_a_time,
}


def make_model(kind: str, path: str) -> Model:
    torch.manual_seed(0)
    if path.startswith("varlen"):
        rnn: nn.RNNBase = (LSTM if kind == "LSTM" else GRU)(INPUT, HIDDEN, method="padded")
    else:
        rnn = (nn.LSTM if kind == "LSTM" else nn.GRU)(INPUT, HIDDEN, batch_first=True)
    return Model(rnn)


def time_round(
    model: Model, step: Callable[[Model, Work], Tensor], works: list[Work], *, train: bool
) -> float:
    """Process every batch once; return real steps per second."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3) if train else None
    model.train(train)
    start = time.perf_counter()
    for work in works:
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(step(model, work), work.y)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        else:
            with torch.inference_mode():
                step(model, work)
    elapsed = time.perf_counter() - start
    return sum(work.real_steps for work in works) / elapsed


def measure(
    works: list[Work], paths: list[str], *, kind: str, train: bool, rounds: int
) -> dict[str, float]:
    """Median real steps/s per path, rows interleaved within each round, after a warm-up."""
    models = {path: make_model(kind, path) for path in paths}
    for path in paths:  # warm-up: one pass over every shape
        time_round(models[path], STEPS[path], works, train=train)
    samples: dict[str, list[float]] = {path: [] for path in paths}
    for _ in range(rounds):
        for path in paths:
            samples[path].append(time_round(models[path], STEPS[path], works, train=train))
    return {path: statistics.median(values) for path, values in samples.items()}


def run(*, quick: bool = False, seed: int = 0) -> list[Row]:
    """Measure every row; ``quick`` uses fewer batches and rounds (for smoke tests)."""
    torch.set_num_threads(torch.get_num_threads())
    rng = np.random.default_rng(seed)
    lengths = sample_lengths(NUM_SEQUENCES, rng)
    num_batches, rounds = (2, 1) if quick else (8, 3)
    plan = [
        # (batching, mode, kind, paths)
        ("bucketed", "train", "LSTM", ["torch padded, no mask", "varlen", "torch packed"]),
        ("bucketed", "infer", "LSTM", ["torch padded, no mask", "varlen", "torch packed"]),
        ("bucketed", "train", "GRU", ["torch padded, no mask", "varlen", "torch packed"]),
        ("random", "train", "LSTM", ["torch padded, no mask", "varlen", "torch packed"]),
        ("random", "train", "LSTM", ["varlen", "varlen, whole batch"]),
        ("random", "infer", "LSTM", ["torch padded, no mask", "varlen", "varlen, whole batch"]),
        ("random", "train", "LSTM", ["varlen", "one at a time"]),
    ]
    rows = []
    for batching, mode, kind, paths in plan:
        batches = make_batches(
            lengths, bucketed=batching == "bucketed", rng=np.random.default_rng(seed)
        )
        works = build_work(batches[:num_batches], lengths, np.random.default_rng(seed))
        result = measure(works, paths, kind=kind, train=mode == "train", rounds=rounds)
        for path in paths:
            rows.append(
                Row(batching, mode, kind, path, result[path], result[path] / result["varlen"])
            )
    return rows


def format_table(rows: list[Row]) -> str:
    """Render rows as a fixed-width table."""
    header = (
        f"{'batching':<9} {'mode':<6} {'cell':<5} {'path':<22} {'real steps/s':>13} {'x varlen':>9}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.batching:<9} {row.mode:<6} {row.kind:<5} {row.path:<22} "
            f"{row.steps_per_second:>13,.0f} {row.ratio_to_varlen:>9.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few batches, one round")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; LSTM/GRU I={INPUT} "
        f"H={HIDDEN}, batch {BATCH}, lengths log-normal median 100 clipped to [5, 1000]"
    )
    print(format_table(run(quick=args.quick, seed=args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
