"""BucketBatchSampler at scale: plan time, memory, padding efficiency and restore on 10^7 lengths.

Setting (issue 14): 10,000,000 lengths log-normal, median 100 (sigma 1), clipped to [5, 1000]
(the shared setting of ``_setting.py``); a token budget of 16,384 padded steps per batch, 8
ranks. Rows, each measured in this one process, one after the other (``--quick``: 10^6):

1. **plan**: time of the first pass's plan of one epoch (sort, cut, equalize, shard), as a
   rank pays it at each ``set_epoch``; the peak of NumPy's traced memory during it
   (``tracemalloc``) beside the lengths' own size; the batches per rank (every rank the same).
2. **padding efficiency**: real steps / padded steps ``B * T_max`` over one rank's epoch, and
   over all ranks; random batches of the mean bucketed batch size for comparison.
3. **two lengths**: lengths ``(n, 2)`` (input and a target ~ half as long + noise) under
   budgets ``(16384, 12288)``: plan time and the efficiency of each column.
4. **restore**: the ``state_dict`` (its JSON size in bytes), ``load_state_dict`` time (O(1):
   nothing is planned or replayed), then the time to the first batch after it, against the
   first batch of a fresh epoch (both plan the epoch once), and a check that the resumed
   batches equal the uninterrupted ones.

Times are medians over ``--rounds`` (default 3), one thread; the machine may be shared.

Run: ``python benchmarks/bench_sampler.py [--quick] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch

from _setting import sample_lengths  # benchmarks/ is on sys.path when run as a script
from varlen.batching import BucketBatchSampler

T = TypeVar("T")
BUDGET, BUDGETS, RANKS, SEED = 16_384, (16_384, 12_288), 8, 0


def efficiency(lengths: np.ndarray, batches: list[list[int]]) -> float:
    """Real steps over padded steps ``sum B * T_max`` of ``batches``."""
    real = padded = 0
    for batch in batches:
        rows = lengths[batch]
        real += int(rows.sum())
        padded += len(batch) * int(rows.max())
    return real / padded


def column_efficiency(lengths: np.ndarray, batches: list[list[int]]) -> list[float]:
    """:func:`efficiency` of each column of ``(n, K)`` lengths."""
    return [efficiency(lengths[:, k], batches) for k in range(lengths.shape[1])]


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Run ``fn()``; return ``(seconds, result)``."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _first(sampler: BucketBatchSampler) -> list[int]:
    """The first batch of a pass over ``sampler``."""
    return next(iter(sampler))


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^6 lengths, 1 round")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    n = 1_000_000 if args.quick else 10_000_000
    rounds = args.rounds or (1 if args.quick else 3)
    rng = np.random.default_rng(SEED)
    lengths = sample_lengths(n, rng)
    print(f"bench_sampler: n = {n:,} lengths (median 100, sigma 1, [5, 1000]), budget {BUDGET},")
    print(f"{RANKS} ranks, 1 thread, medians of {rounds} round(s); the machine may be shared.\n")

    # 1. plan time and memory -------------------------------------------------------------
    plan_times, peaks, counts = [], [], []
    for r in range(rounds):
        sampler = BucketBatchSampler(
            lengths, max_tokens=BUDGET, seed=SEED, num_replicas=RANKS, rank=0
        )
        sampler.set_epoch(r)
        seconds, count = timed(functools.partial(len, sampler))
        plan_times.append(seconds)
        counts.append(count)
        traced = BucketBatchSampler(
            lengths, max_tokens=BUDGET, seed=SEED, num_replicas=RANKS, rank=0
        )
        traced.set_epoch(r)
        tracemalloc.start()  # a separate run: tracing slows the plan down
        len(traced)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    print("| measure | value |")
    print("|---|---|")
    print(
        f"| plan one epoch (sort, cut, equalize, shard) | {statistics.median(plan_times):.2f} s |"
    )
    print(
        f"| peak traced memory while planning | {statistics.median(peaks) / 2**20:.0f} MiB "
        f"(the int64 lengths: {lengths.nbytes / 2**20:.0f} MiB) |"
    )
    ranks_counts = {
        len(BucketBatchSampler(lengths, max_tokens=BUDGET, seed=SEED, num_replicas=RANKS, rank=k))
        for k in (0, RANKS - 1)
    }
    print(f"| batches per rank (rank 0 and rank {RANKS - 1}) | {sorted(ranks_counts)} |")

    # 2. padding efficiency ---------------------------------------------------------------
    sampler = BucketBatchSampler(lengths, max_tokens=BUDGET, seed=SEED, num_replicas=RANKS, rank=0)
    mine = list(sampler)
    all_ranks = mine + [
        b
        for k in range(1, RANKS)
        for b in BucketBatchSampler(
            lengths, max_tokens=BUDGET, seed=SEED, num_replicas=RANKS, rank=k
        )
    ]
    used = sum(len(b) for b in all_ranks)
    mean_size = max(1, round(used / len(all_ranks)))
    order = rng.permutation(n)
    random_batches = [order[i : i + mean_size].tolist() for i in range(0, n, mean_size)]
    print(f"| padding efficiency, bucketed, rank 0 | {efficiency(lengths, mine):.4f} |")
    print(f"| padding efficiency, bucketed, all ranks | {efficiency(lengths, all_ranks):.4f} |")
    print(
        f"| padding efficiency, random batches of {mean_size} | "
        f"{efficiency(lengths, random_batches):.4f} |"
    )
    once = used == n and len({i for b in all_ranks for i in b}) == n
    print(f"| every sequence once per epoch | {once} |")

    # 3. two lengths ------------------------------------------------------------------------
    targets = np.clip(lengths // 2 + rng.integers(0, 50, size=n), 1, None)
    pairs = np.stack([lengths, targets], axis=1)
    two_times = []
    for r in range(rounds):
        two = BucketBatchSampler(pairs, max_tokens=BUDGETS, seed=SEED, num_replicas=RANKS, rank=0)
        two.set_epoch(r)
        two_times.append(timed(functools.partial(len, two))[0])
    two = BucketBatchSampler(pairs, max_tokens=BUDGETS, seed=SEED, num_replicas=RANKS, rank=0)
    two_batches = list(two)
    over = sum(
        1
        for b in two_batches
        if len(b) * pairs[b, 0].max() > BUDGETS[0] or len(b) * pairs[b, 1].max() > BUDGETS[1]
    )
    per_column = ", ".join(f"{e:.4f}" for e in column_efficiency(pairs, two_batches))
    print(f"| two lengths (n, 2), budgets {BUDGETS}: plan | {statistics.median(two_times):.2f} s |")
    print(f"| two lengths: efficiency per column, rank 0 | {per_column} |")
    print(f"| two lengths: batches over a budget | {over} |")

    # 4. restore ----------------------------------------------------------------------------
    stop = len(mine) // 2
    loads, firsts, fresh = [], [], []
    for _ in range(rounds):
        running = BucketBatchSampler(
            lengths, max_tokens=BUDGET, seed=SEED, num_replicas=RANKS, rank=0
        )
        batches = iter(running)
        for _ in itertools.islice(batches, stop):
            pass
        state = json.loads(json.dumps(running.state_dict()))
        resumed = BucketBatchSampler(
            lengths, max_tokens=BUDGET, seed=SEED, num_replicas=RANKS, rank=0
        )
        loads.append(timed(functools.partial(resumed.load_state_dict, state))[0])
        seconds, first = timed(functools.partial(_first, resumed))
        firsts.append(seconds)
        if first != mine[stop]:
            raise RuntimeError("the resumed run must continue the uninterrupted one")
        other = BucketBatchSampler(
            lengths, max_tokens=BUDGET, seed=SEED, num_replicas=RANKS, rank=0
        )
        fresh.append(timed(functools.partial(_first, other))[0])
    print(f"| state_dict size (JSON) | {len(json.dumps(state))} bytes: {state} |")
    print(f"| load_state_dict | {statistics.median(loads) * 1e6:.0f} us |")
    print(
        f"| first batch after restore at batch {stop:,} | {statistics.median(firsts):.2f} s "
        f"(a fresh epoch's first batch: {statistics.median(fresh):.2f} s; ratio "
        f"{statistics.median(firsts) / statistics.median(fresh):.2f}) |"
    )


if __name__ == "__main__":
    main()
