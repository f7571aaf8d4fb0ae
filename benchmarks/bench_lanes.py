"""Sequences end to end ("lanes") against packed, bucketed and one-at-a-time, all exact.

Setting (issues 3 and 5): LSTM, input 32, hidden 128, 4,096 sequences with lengths log-normal
(median 100) clipped to [5, 1000]; a linear head on each sequence's final hidden state. Every
row is exact (each sequence's result equals it run alone); they differ in how the work is laid
out:

- ``lanes``: groups of 512 random sequences laid end to end in 64 lanes (one reset step between
  two sequences), one fused call per layer; ``lanes +c`` also recomputes each final cell state.
- ``bucketed``: ``varlen.nn.LSTM`` (padded method) on length-bucketed batches of 64.
- ``packed``: ``varlen.nn.LSTM(method="packed")`` on the same bucketed batches (no compute on
  pads; torch's per-step kernel on CPU).
- ``one at a time``: each sequence alone, in groups of 64 per optimizer step.

Rows are interleaved round by round after a warm-up; each reports real steps per second (median
over rounds) for training (forward + backward + Adam) and inference, and its ratio to the best
of the other rows. Run: ``python benchmarks/bench_lanes.py [--quick]``.
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
from varlen.nn import LSTM, run_lanes

INPUT, HIDDEN, CLASSES, NUM_SEQUENCES = 32, 128, 8, 4096
BATCH, LANE_GROUP, NUM_LANES = 64, 512, 64


@dataclass(frozen=True)
class Group:
    """A group of sequences for one optimizer step: flat values, lengths, targets."""

    values: Tensor  # (N, F)
    lengths: Tensor  # (B,)
    targets: Tensor  # (B,)

    @property
    def real_steps(self) -> int:
        """Unpadded steps in the group."""
        return int(self.lengths.sum())

    def padded(self) -> Tensor:
        """The group as a post-padded ``(B, T, F)`` batch."""
        pieces = torch.split(self.values, self.lengths.tolist())
        return nn.utils.rnn.pad_sequence(list(pieces), batch_first=True)


@dataclass(frozen=True)
class Row:
    """One measured row."""

    mode: str
    path: str
    steps_per_second: float
    ratio_to_best_other: float


def make_groups(lengths: np.ndarray, order: np.ndarray, size: int, seed: int) -> list[Group]:
    """Cut ``order`` into groups of ``size`` sequences with random values and targets."""
    rng = np.random.default_rng(seed)
    groups = []
    for start in range(0, len(order) - size + 1, size):
        index = order[start : start + size]
        lens = torch.from_numpy(lengths[index])
        values = torch.from_numpy(rng.normal(size=(int(lens.sum()), INPUT)).astype(np.float32))
        targets = torch.from_numpy(rng.integers(0, CLASSES, size=size))
        groups.append(Group(values, lens, targets))
    return groups


class Model(nn.Module):
    """A varlen LSTM and a linear head on the final hidden state."""

    def __init__(self, method: str = "padded") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn = LSTM(INPUT, HIDDEN, method=method)  # type: ignore[arg-type]
        self.head = nn.Linear(HIDDEN, CLASSES)


def scores_lanes(model: Model, group: Group, *, cell_state: bool) -> Tensor:
    out = run_lanes(
        model.rnn, group.values, group.lengths, num_lanes=NUM_LANES, cell_state=cell_state
    )
    return model.head(out.h[-1])  # type: ignore[no-any-return]


def scores_padded(model: Model, group: Group) -> Tensor:
    _, (h, _) = model.rnn(group.padded(), group.lengths)
    return model.head(h[-1])  # type: ignore[no-any-return]


def scores_one_at_a_time(model: Model, group: Group) -> Tensor:
    scores = []
    for piece in torch.split(group.values, group.lengths.tolist()):
        _, (h, _) = model.rnn(piece[None], torch.tensor([len(piece)]))
        scores.append(model.head(h[-1]))
    return torch.cat(scores)


def time_round(
    model: Model, score: Callable[[Model, Group], Tensor], groups: list[Group], *, train: bool
) -> float:
    """Process every group once; return real steps per second."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for group in groups:
        if train:
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(score(model, group), group.targets).backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        else:
            with torch.inference_mode():
                score(model, group)
    return sum(group.real_steps for group in groups) / (time.perf_counter() - start)


def run(*, quick: bool = False, seed: int = 0) -> list[Row]:
    """Measure every row for training and inference."""
    rng = np.random.default_rng(seed)
    lengths = sample_lengths(NUM_SEQUENCES, rng)
    budget = 512 if quick else 1024  # sequences timed per round and row
    rounds = 1 if quick else 3
    random_order = rng.permutation(NUM_SEQUENCES)[:budget]
    bucket_order = random_order[np.argsort(lengths[random_order], kind="stable")]
    lane_groups = make_groups(lengths, random_order, LANE_GROUP, seed)
    bucket_groups = make_groups(lengths, bucket_order, BATCH, seed)
    single_groups = make_groups(lengths, random_order[: budget // 8], BATCH, seed)
    paths: dict[str, tuple[Model, Callable[[Model, Group], Tensor], list[Group]]] = {
        "lanes": (Model(), lambda m, g: scores_lanes(m, g, cell_state=False), lane_groups),
        "lanes +c": (Model(), lambda m, g: scores_lanes(m, g, cell_state=True), lane_groups),
        "bucketed": (Model(), scores_padded, bucket_groups),
        "packed": (Model("packed"), scores_padded, bucket_groups),
        "one at a time": (Model(), scores_one_at_a_time, single_groups),
    }
    rows = []
    for mode in ("train", "infer"):
        train = mode == "train"
        for model, score, groups in paths.values():  # warm-up: every shape once
            time_round(model, score, groups, train=train)
        samples: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(rounds):
            for name, (model, score, groups) in paths.items():
                samples[name].append(time_round(model, score, groups, train=train))
        medians = {name: statistics.median(values) for name, values in samples.items()}
        for name, value in medians.items():
            others = [v for other, v in medians.items() if not other.startswith(name.split()[0])]
            rows.append(Row(mode, name, value, value / max(others)))
    return rows


def format_table(rows: list[Row]) -> str:
    """Render rows as a fixed-width table."""
    header = f"{'mode':<6} {'path':<14} {'real steps/s':>13} {'x best other':>13}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.mode:<6} {row.path:<14} {row.steps_per_second:>13,.0f} "
            f"{row.ratio_to_best_other:>13.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sequences, one round")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; LSTM I={INPUT} "
        f"H={HIDDEN}; lanes: {LANE_GROUP} sequences in {NUM_LANES} lanes; batches of {BATCH}"
    )
    print(format_table(run(quick=args.quick, seed=args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
