"""Batching at scale: padding efficiency, collate cost, and training throughput by batching.

Setting (issue 4): 4,096 sequences with lengths log-normal, median 100 (sigma 1), clipped to
[5, 1000]; batches of 64. Three parts, all in one run:

1. **Padding efficiency** (real steps / computed steps, ``varlen.batching.compare_policies``):
   random batches of 64 vs length-bucketed batches of 64 vs bucketed batches under a token
   budget of ``64 * ceil(mean length)`` padded steps. Target: >= 0.95 with bucketing (random
   sits near 0.18). Also the efficiency of what ``BucketBatchSampler`` yields over 2 ranks.
2. **Collate cost** of one bucketed epoch: ``Collate`` on a list of ``RaggedDataset`` items
   (generic path) vs on ``RaggedDataset.__getitems__`` (row views of the flat storage, no
   per-item work), vs ``Ragged`` gather + ``to_padded``; median over rounds. Two settings:
   the sequences above with F = 32 float32, and 100,000 short id sequences in batches of 1024.
3. **Training throughput** in real (unpadded) steps/s, LSTM input 32, hidden 128, forward +
   backward + Adam on a linear head over the final state, batches collated by ``Collate``:
   ``torch.nn.LSTM`` on random padded batches ignoring the mask (the fast wrong way: final
   states of short sequences are wrong), vs exact ``varlen.nn.LSTM`` on random, bucketed and
   token-budget batches. Target: bucketed ``varlen.nn.LSTM`` >= 4x the first row. Each row
   trains on the same number of batches drawn from its own epoch plan (``--batches``, 0 for
   whole epochs), interleaved round by round after a warm-up round (oneDNN builds a kernel
   per new shape); medians over rounds, ratios to the first row.

Run: ``python benchmarks/bench_batching.py [--quick] [--batches N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from _setting import sample_lengths  # benchmarks/ is on sys.path when run as a script
from varlen.batching import (
    Batch,
    BucketBatchSampler,
    Collate,
    RaggedDataset,
    compare_policies,
    format_reports,
)
from varlen.data.ragged import Ragged
from varlen.nn import LSTM

NUM_SEQUENCES, BATCH, INPUT, HIDDEN, CLASSES, SEED = 4096, 64, 32, 128, 8, 0


def make_dataset(lengths: np.ndarray, seed: int = SEED) -> RaggedDataset:
    """Random float32 sequences (T_i, INPUT) and class targets, stored flat."""
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    values = rng.standard_normal((int(offsets[-1]), INPUT), dtype=np.float32)
    targets = rng.integers(0, CLASSES, size=len(lengths))
    return RaggedDataset(Ragged(values, offsets), targets=targets)


def plans(lengths: np.ndarray, seed: int = SEED) -> dict[str, list[list[int]]]:
    """Epoch-0 index batches of each policy: random, bucketed, token budget."""
    order = np.random.default_rng(seed).permutation(len(lengths))
    max_tokens = BATCH * math.ceil(float(lengths.mean()))
    return {
        "random": [order[i : i + BATCH].tolist() for i in range(0, len(order), BATCH)],
        "bucketed": list(BucketBatchSampler(lengths, batch_size=BATCH, seed=seed)),
        f"tokens {max_tokens}": list(BucketBatchSampler(lengths, max_tokens=max_tokens, seed=seed)),
    }


# ------------------------------------------------------------------------ 1. efficiency


def efficiency_part(lengths: np.ndarray) -> str:
    """Return the padding-efficiency tables: the three policies, and the sampler on 2 ranks."""
    table = format_reports(compare_policies(lengths, batch_size=BATCH, seed=SEED))
    sharded = []
    for sizing in ({"batch_size": BATCH}, {"max_tokens": BATCH * math.ceil(lengths.mean())}):
        real = computed = batches = 0
        for rank in (0, 1):
            for batch in BucketBatchSampler(lengths, **sizing, num_replicas=2, rank=rank):
                real += int(lengths[batch].sum())
                computed += len(batch) * int(lengths[batch].max())
                batches += 1
        name = ", ".join(f"{key}={value}" for key, value in sizing.items())
        sharded.append(
            f"BucketBatchSampler({name}, num_replicas=2): {batches} batches, "
            f"efficiency {real / computed:.3f}"
        )
    return table + "\n" + "\n".join(sharded)


# ---------------------------------------------------------------------- 2. collate cost


def collate_paths(
    dataset: RaggedDataset, batches: list[list[int]]
) -> dict[str, Callable[[], None]]:
    """Return one callable per collate path, each collating every batch of the epoch once."""
    collate = Collate()
    ragged = dataset.sequences

    def generic() -> None:
        for batch in batches:
            collate([dataset[i] for i in batch])

    def fast() -> None:
        for batch in batches:
            collate(dataset.__getitems__(batch))

    def ragged_to_padded() -> None:
        for batch in batches:
            x, lengths = ragged[np.asarray(batch)].to_padded()
            torch.from_numpy(x), torch.from_numpy(lengths)

    return {
        "Collate(list of items)": generic,
        "Collate(__getitems__)": fast,
        "Ragged[idx].to_padded": ragged_to_padded,
    }


def id_dataset(seed: int = SEED) -> tuple[RaggedDataset, list[list[int]]]:
    """100,000 short id sequences (lengths 1..19) and a bucketed epoch of batches of 1024."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 20, size=100_000)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    ids = rng.integers(1, 20_000, size=int(offsets[-1]))
    batches = list(BucketBatchSampler(lengths, batch_size=1024, seed=seed))
    return RaggedDataset(Ragged(ids, offsets)), batches


def collate_part(
    dataset: RaggedDataset, batches: list[list[int]], rounds: int, *, title: str
) -> str:
    """Return the table of median milliseconds per epoch of each collate path."""
    paths = collate_paths(dataset, batches)
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(rounds + 1):
        for name, path in paths.items():
            start = time.perf_counter()
            path()
            if round_:  # round 0 warms up
                samples[name].append((time.perf_counter() - start) * 1e3)
    base = statistics.median(samples["Collate(__getitems__)"])
    lines = [f"{title:<36} {'ms/epoch':>9} {'x fast':>7}"]
    for name, values in samples.items():
        median = statistics.median(values)
        lines.append(f"{name:<36} {median:>9.1f} {median / base:>7.2f}")
    return "\n".join(lines)


# ---------------------------------------------------------------------- 3. throughput


class Classifier(nn.Module):
    """A recurrent layer and a linear head on the last layer's final hidden state."""

    def __init__(self, *, exact: bool) -> None:
        super().__init__()
        torch.manual_seed(SEED)
        self.exact = exact
        self.rnn: nn.Module = (
            LSTM(INPUT, HIDDEN) if exact else nn.LSTM(INPUT, HIDDEN, batch_first=True)
        )
        self.head = nn.Linear(HIDDEN, CLASSES)

    def forward(self, batch: Batch) -> Tensor:
        """Return ``(B, CLASSES)`` logits: exact with varlen, pads included with torch."""
        _, state = self.rnn(batch) if self.exact else self.rnn(batch.x)
        logits: Tensor = self.head(state[0][-1])
        return logits


@dataclass(frozen=True)
class Row:
    """One training row: which batching, which layer, real steps/s and ratio to row 1."""

    batching: str
    layer: str
    efficiency: float
    steps_per_second: float
    ratio: float


def train_pass(model: Classifier, batches: list[Batch]) -> float:
    """Train on every batch once; return real steps per second."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for batch in batches:
        optimizer.zero_grad(set_to_none=True)
        assert batch.targets is not None  # noqa: S101  # the dataset has targets
        nn.functional.cross_entropy(model(batch), batch.targets).backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    elapsed = time.perf_counter() - start
    return sum(int(batch.lengths.sum()) for batch in batches) / elapsed


def throughput_part(
    dataset: RaggedDataset, epoch_plans: dict[str, list[list[int]]], *, batches: int, rounds: int
) -> list[Row]:
    """Measure every training row, interleaved round by round after a warm-up round."""
    collate = Collate(dtype=torch.float32)
    random_name, bucketed_name, tokens_name = epoch_plans
    setups = [
        (random_name, "torch.nn.LSTM, mask ignored", False),
        (random_name, "varlen.nn.LSTM", True),
        (bucketed_name, "torch.nn.LSTM, mask ignored", False),
        (bucketed_name, "varlen.nn.LSTM", True),
        (tokens_name, "varlen.nn.LSTM", True),
    ]
    work: dict[str, list[Batch]] = {}
    for name, plan in epoch_plans.items():
        chosen = plan if batches == 0 else plan[:batches]  # plans are shuffled already
        work[name] = [collate(dataset.__getitems__(batch)) for batch in chosen]
    models = [Classifier(exact=exact) for _, _, exact in setups]
    samples: list[list[float]] = [[] for _ in setups]
    for round_ in range(rounds + 1):
        for k, (name, _, _) in enumerate(setups):
            rate = train_pass(models[k], work[name])
            if round_:  # round 0 warms up every shape
                samples[k].append(rate)
    medians = [statistics.median(values) for values in samples]
    rows = []
    for (name, layer, _), median in zip(setups, medians, strict=True):
        real = sum(int(b.lengths.sum()) for b in work[name])
        computed = sum(b.x.shape[0] * b.x.shape[1] for b in work[name])
        rows.append(Row(name, layer, real / computed, median, median / medians[0]))
    return rows


def format_rows(rows: list[Row]) -> str:
    """Render the training rows as a fixed-width table."""
    header = (
        f"{'batching':<13} {'layer':<28} {'efficiency':>10} {'real steps/s':>13} {'x row 1':>8}"
    )
    lines = [header]
    for row in rows:
        lines.append(
            f"{row.batching:<13} {row.layer:<28} {row.efficiency:>10.3f} "
            f"{row.steps_per_second:>13,.0f} {row.ratio:>8.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the three parts and print their tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 batches per row, 1 round")
    parser.add_argument("--batches", type=int, default=8, help="batches per row; 0 = epoch")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after warm-up")
    args = parser.parse_args(argv)
    batches, rounds = (2, 1) if args.quick else (args.batches, args.rounds)
    lengths = sample_lengths(NUM_SEQUENCES, np.random.default_rng(SEED))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {NUM_SEQUENCES} "
        f"sequences, lengths log-normal median 100 (sigma 1) clipped to [5, 1000], "
        f"mean {lengths.mean():.1f}; batch {BATCH}"
    )
    print("\n1. Padding efficiency (epoch 0)")
    print(efficiency_part(lengths))
    dataset = make_dataset(lengths)
    epoch_plans = plans(lengths)
    print("\n2. Collate cost of one bucketed epoch")
    title = f"{NUM_SEQUENCES} x (T_i, {INPUT}) float32, B={BATCH}"
    print(collate_part(dataset, epoch_plans["bucketed"], max(rounds, 3), title=title))
    ids, id_batches = id_dataset()
    title = "100000 x (T_i,) ids, T_i<20, B=1024"
    print(collate_part(ids, id_batches, max(rounds, 3), title=title))
    print(
        f"\n3. Training throughput: LSTM I={INPUT} H={HIDDEN}, forward + backward + Adam, "
        f"{'whole epochs' if batches == 0 else f'{batches} batches per row'}, "
        f"median of {rounds} rounds"
    )
    print(format_rows(throughput_part(dataset, epoch_plans, batches=batches, rounds=rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
