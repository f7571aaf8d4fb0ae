"""The training loop around the layer: `fit`'s real steps/s against the bare model's, same batches.

Issue 13 asks that :func:`varlen.training.fit` reach at least 0.8x the real (unpadded) steps per
second of the bare model on the same batches. Rows, interleaved round by round, after a warm-up
round, on the epoch's own batches (the technique's sampler, seed and epoch as ``fit`` uses them):

- ``bare model``: the batches collated once beforehand; each step is forward, cross-entropy,
  backward and an Adam step, and nothing else (no collate, no bookkeeping, no checks).
- ``fit``: one epoch of :func:`varlen.training.fit` (collate, the finiteness check, gradient
  clipping, the learning-rate schedule, statistics), its ``real_steps_per_second`` as reported
  (training time only, as the CLI's ``speed:`` line).

Data: short multichannel series (13 features, lengths 6-92, 2,000 sequences, like spoken-digit
MFCCs) and long single-channel ones (1 feature, lengths 100-1,300, 200 sequences), generated.
Models: the ``varlen train`` default (masked convolutions + bidirectional LSTM) and a plain
LSTM (``--plain``). Run: ``python benchmarks/bench_loop.py [--quick] [--plain]``. One thread,
pinned; the machine may be shared, so only the ratio within a setting means much.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import torch

from varlen.batching.collate import Collate
from varlen.batching.dataset import RaggedDataset
from varlen.data.ragged import Ragged
from varlen.training.loop import TrainConfig, _batches, fit
from varlen.training.models import ModelConfig, SequenceModel
from varlen.training.techniques import get_technique


def _data(kind: str, rng: np.random.Generator, scale: float) -> tuple[Ragged, np.ndarray]:
    if kind == "short":
        n, features, low, high = int(2000 * scale), 13, 6, 93
    else:
        n, features, low, high = int(200 * scale), 1, 100, 1301
    lengths = rng.integers(low, high, n)
    values = rng.normal(size=(int(lengths.sum()), features)).astype(np.float32)
    return Ragged(values, np.concatenate([[0], np.cumsum(lengths)])), rng.integers(0, 10, n)


def _model(features: int, *, plain: bool) -> SequenceModel:
    torch.manual_seed(0)
    if plain:
        return SequenceModel(ModelConfig(features, 10, hidden_size=64))
    config = ModelConfig(
        features, 10, hidden_size=64, bidirectional=True, pooling="mean", dropout=0.1,
        conv_channels=(64, 64, 64), conv_kernels=(7, 5, 3), series_norm=True,
    )  # fmt: skip
    return SequenceModel(config)


def _bare(model: SequenceModel, batches: list[Any], y: np.ndarray) -> float:
    """Real steps/s of forward + loss + backward + Adam on pre-collated batches."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)
    real, busy = 0, 0.0
    model.train()
    for (x, lengths), indices in batches:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        scores = model(x, lengths)
        loss = torch.nn.functional.cross_entropy(scores, torch.as_tensor(y[indices]))
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        busy += time.perf_counter() - start
        real += int(lengths.sum())
    return real / busy


def main() -> None:
    """Print, per setting, the median real steps/s of each row and the ratio fit / bare."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer rounds")
    parser.add_argument("--plain", action="store_true", help="a plain LSTM, no front-end")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # as the CLI does
    scale, rounds = (0.25, 3) if args.quick else (1.0, args.rounds)
    print(f"1 thread, {'plain LSTM' if args.plain else 'varlen train default model'}; "
          "machine possibly shared: compare ratios, not absolute numbers")  # fmt: skip
    print(f"{'setting':28} {'bare model':>12} {'fit':>12} {'fit / bare':>10}")
    for kind in ("short", "long"):
        x, y = _data(kind, np.random.default_rng(0), scale)
        for technique in ("mask", "bucket"):
            config = TrainConfig(technique=technique, epochs=1, batch_size=32, patience=None)
            data = RaggedDataset(x)
            indices = _batches(get_technique(technique), data.lengths, config, 0, shuffle=True)
            collate = Collate(padding="post", dtype=torch.float32)
            batches = []
            for batch_indices in indices:
                batch = collate(data.__getitems__(list(batch_indices)))
                batches.append(((batch.x, batch.lengths), batch_indices))
            bare, looped = [], []
            for round_ in range(rounds + 1):
                b = _bare(_model(x.values.shape[1], plain=args.plain), batches, y)
                model = _model(x.values.shape[1], plain=args.plain)
                result = fit(model, x, y, config=config, progress=False)
                f = result.real_steps_per_second
                if round_:  # the first round warms up oneDNN's primitives
                    bare.append(b)
                    looped.append(f)
            b, f = statistics.median(bare), statistics.median(looped)
            name = f"{kind}, {technique}"
            print(f"{name:28} {b:12,.0f} {f:12,.0f} {f / b:10.2f}")


if __name__ == "__main__":
    main()
