"""Batch lengths on a grid (``TrainConfig.length_grid``): distinct shapes, padding, speed.

Issue #22: oneDNN keeps one compiled kernel per distinct batch shape, so a training process's
memory grew with the number of distinct batch lengths ``T`` in the data. ``fit`` pads each
batch's ``T`` up to a :class:`~varlen.data.grid.LengthGrid` length (exact pads: the same
results). Rows, for each grid step (``none`` = pad to ``max(T_i)``), on the shared length
setting (log-normal, median 100, clipped to [5, 1000], ``F = 8``, a one-layer LSTM, hidden 64,
batches of 64):

- distinct batch lengths over the run's epochs (from the sampler's batches alone), and the
  grid's bound (:meth:`LengthGrid.size`);
- padding efficiency (real / computed steps) of ``fit``;
- ``fit``'s real steps per second (training time), median over interleaved rounds of one epoch
  each after a warm-up epoch per row, and its ratio to ``none``.

Run: ``python benchmarks/bench_grid.py [--quick] [--technique bucket|mask]``. One thread,
pinned; the machine may be shared, so only the ratios within one run mean much.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

from varlen.data.grid import LengthGrid
from varlen.data.ragged import Ragged
from varlen.training.loop import TrainConfig, _batches, fit
from varlen.training.models import ModelConfig, SequenceModel
from varlen.training.techniques import get_technique

sys.path.insert(0, os.fspath(Path(__file__).resolve().parent))
from _setting import sample_lengths  # the shared length distribution

F, BATCH, HIDDEN = 8, 64, 64


def _data(n: int) -> tuple[Ragged, np.ndarray]:
    rng = np.random.default_rng(0)
    lengths = sample_lengths(n, rng)
    values = rng.standard_normal((int(lengths.sum()), F), dtype=np.float32)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return Ragged(values, offsets), (values[offsets[:-1], 0] > 0).astype(np.int64)


def _epoch(
    model: SequenceModel, x: Ragged, y: np.ndarray, grid: LengthGrid | None, technique: str
) -> tuple[float, float]:
    """One epoch of ``fit``: its real steps per second and padding efficiency."""
    config = TrainConfig(
        technique=technique, epochs=1, batch_size=BATCH, patience=None, length_grid=grid
    )
    stats = fit(model, x, y, config=config, progress=False).history[-1]
    return stats.real_steps_per_second, stats.padding_efficiency


def _distinct(x: Ragged, grid: LengthGrid | None, technique: str, epochs: int) -> int:
    """Distinct padded batch lengths over ``epochs`` epochs of the technique's batches."""
    fitted = None if grid is None else grid.fitted(x.lengths)
    config = TrainConfig(technique=technique, batch_size=BATCH)
    seen = set()
    for epoch in range(epochs):
        for rows in _batches(get_technique(technique), x.lengths, config, epoch, shuffle=True):
            T = int(x.lengths[rows].max())
            seen.add(T if fitted is None else fitted.round_up(T))
    return len(seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sequences and rounds")
    parser.add_argument("--technique", default="bucket", choices=("bucket", "mask"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    n, rounds = (1024, 3) if args.quick else (4096, 5)
    x, y = _data(n)
    rows: dict[str, LengthGrid | None] = {
        "none": None,
        "1/16": LengthGrid(step=1 / 16),
        "1/8": LengthGrid(step=1 / 8),
    }
    models = {}
    for name in rows:
        torch.manual_seed(0)
        models[name] = SequenceModel(ModelConfig(F, 2, hidden_size=HIDDEN))
        _epoch(models[name], x, y, rows[name], args.technique)  # warm-up: kernels built
    speeds: dict[str, list[float]] = {name: [] for name in rows}
    padding: dict[str, float] = {}
    for r in range(rounds):
        for name in rows if r % 2 == 0 else reversed(rows):
            speed, efficiency = _epoch(models[name], x, y, rows[name], args.technique)
            speeds[name].append(speed)
            padding[name] = efficiency
    base = statistics.median(speeds["none"])
    longest = int(x.lengths.max())
    print(
        f"{n} sequences, lengths {int(x.lengths.min())}-{longest}, technique "
        f"{args.technique}, batches of {BATCH}, LSTM {F}->{HIDDEN}, 1 thread, "
        f"{rounds} interleaved rounds"
    )
    print(
        f"{'grid step':<10} {'distinct T (10 ep)':>18} {'grid bound':>11} {'padding eff':>12} "
        f"{'real steps/s':>13} {'ratio':>7}"
    )
    for name, grid in rows.items():
        speed = statistics.median(speeds[name])
        bound = "-" if grid is None else str(grid.size(longest))
        print(
            f"{name:<10} {_distinct(x, grid, args.technique, 10):>18} {bound:>11} "
            f"{padding[name]:>12.4f} {speed:>13,.0f} {speed / base:>7.3f}"
        )


if __name__ == "__main__":
    main()
