"""Batched generation from prompts of different lengths vs one prompt at a time.

Setting: :class:`varlen.nn.RecurrentLM` (vocabulary 64, embedding 32, LSTM hidden 256, one
layer, random weights, float32, CPU), ``B`` prompts with lengths log-normal (median 20, sigma
0.8, clipped to [1, 200]), each row with its own limit uniform in [16, 128] new tokens and no end
token (random weights never learned one), sampled with temperature 1 and top-k 20 from one seed
per row. Paths:

- ``batched``: one :func:`varlen.nn.generate` call for all ``B`` prompts (prime once, then step
  the unfinished rows together);
- ``one at a time``: ``generate`` on each prompt alone, with that row's seed.

Both must give the same tokens for every row (checked before timing). Each row of the table
reports generated tokens per second, the median over interleaved passes (order alternated)
after a warm-up pass, and the ratio batched / one-at-a-time from the same run. Run:
``python benchmarks/bench_generation.py [--quick] [--threads N]`` (default 1 thread: on a machine
shared with other jobs, more threads spin and fight for cores).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from varlen.nn.generation import Generation, RecurrentLM, generate

VOCAB, EMBEDDING, HIDDEN = 64, 32, 256


def make_prompts(B: int, rng: np.random.Generator) -> tuple[list[list[int]], list[int]]:
    """``B`` random prompts (lengths log-normal, median 20) and per-row limits in [16, 128]."""
    lengths = np.clip(np.round(rng.lognormal(np.log(20), 0.8, size=B)), 1, 200).astype(int)
    prompts = [rng.integers(0, VOCAB, size=int(n)).tolist() for n in lengths]
    limits = rng.integers(16, 129, size=B).tolist()
    return prompts, limits


def batched(model: RecurrentLM, prompts: list[list[int]], limits: list[int]) -> list[list[int]]:
    """All prompts in one call."""
    out: Generation = generate(
        model,
        prompts,
        max_new_tokens=limits,
        strategy="sample",
        top_k=20,
        seeds=range(len(prompts)),
    )
    return out.to_lists()


def one_at_a_time(
    model: RecurrentLM, prompts: list[list[int]], limits: list[int]
) -> list[list[int]]:
    """Each prompt alone, with its row's seed."""
    return [
        generate(
            model, [prompt], max_new_tokens=limit, strategy="sample", top_k=20, seeds=[seed]
        ).to_lists()[0]
        for seed, (prompt, limit) in enumerate(zip(prompts, limits, strict=True))
    ]


def measure(B: int, repeats: int, seed: int) -> tuple[float, float, int]:
    """Return (batched tokens/s, one-at-a-time tokens/s, rows that differ)."""
    torch.manual_seed(seed)
    model = RecurrentLM(VOCAB, EMBEDDING, HIDDEN).eval()
    prompts, limits = make_prompts(B, np.random.default_rng(seed))
    paths = {"batched": batched, "one at a time": one_at_a_time}
    results = {name: run(model, prompts, limits) for name, run in paths.items()}  # warm-up
    differ = sum(a != b for a, b in zip(results["batched"], results["one at a time"], strict=True))
    tokens = sum(len(row) for row in results["batched"])
    samples: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            paths[name](model, prompts, limits)
            samples[name].append(time.perf_counter() - start)
    speed = {name: tokens / statistics.median(times) for name, times in samples.items()}
    return speed["batched"], speed["one at a time"], differ


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small batches, few passes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes, repeats = ((8, 32), 2) if args.quick else ((8, 32, 128), 5)
    print(
        f"RecurrentLM V={VOCAB} E={EMBEDDING} H={HIDDEN}, sampling top-k 20, "
        f"{torch.get_num_threads()} thread(s); medians of {repeats} interleaved passes "
        "(machine possibly shared: compare the ratios, not the absolute speeds)"
    )
    print(
        f"{'B':>5} {'batched tok/s':>14} {'1-by-1 tok/s':>13} {'ratio':>7} {'rows differing':>15}"
    )
    for B in sizes:
        fast, slow, differ = measure(B, repeats, seed=B)
        print(f"{B:>5} {fast:>14,.0f} {slow:>13,.0f} {fast / slow:>6.1f}x {differ:>15}")


if __name__ == "__main__":
    main()
