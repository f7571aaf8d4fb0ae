"""Training speed of a model holding a varlen LSTM: ``torch.compile`` (default settings) vs eager.

Setting: a linear input layer, ``varlen.nn.LSTM`` (input 32, hidden 128, one layer), mean
pooling over real steps and a linear head; batches of 64 drawn from lengths log-normal (median
100) clipped to [5, 1000] (``_setting.py``), post-padded; one training step = forward +
backward + Adam. The compiled model is ``torch.compile(model, dynamic=True)``. Under compile the
varlen layer runs eagerly, as dynamo runs ``torch.nn.LSTM``; what compiles is the rest of the
model up to the recurrent layer (dynamo resumes no graph after an RNN module). Rows are
interleaved round by round on the same batches after a warm-up round (which includes the
compilation, timed separately); threads pinned. Prints steps/s and the compiled/eager ratio.
Run: ``python benchmarks/bench_compile.py [--rounds N] [--threads N]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from _setting import sample_lengths  # benchmarks/ is on sys.path when run as a script
from varlen.nn import LSTM

INPUT, HIDDEN, BATCH, CLASSES = 32, 128, 64, 8


class Model(nn.Module):
    """Linear input, varlen LSTM, mean over real steps, linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(INPUT, INPUT)
        self.rnn = LSTM(INPUT, HIDDEN)
        self.head = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``(B, T, F)``, ``(B,)`` -> ``(B, CLASSES)`` scores."""
        z = torch.relu(self.embed(x))
        out, _ = self.rnn(z, lengths)
        pooled = out.sum(dim=1) / lengths.clamp(min=1)[:, None].to(out.dtype)
        scores: Tensor = self.head(pooled)
        return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=8, help="batches per round")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(args.batches):
        lengths = torch.from_numpy(sample_lengths(BATCH, rng))
        x = torch.randn(BATCH, int(lengths.max()), INPUT)
        batches.append((x, lengths, torch.randint(0, CLASSES, (BATCH,))))
    real = sum(int(lengths.sum()) for _, lengths, _ in batches)
    eager = Model()
    twin = copy.deepcopy(eager)
    compiled = torch.compile(twin, dynamic=True)
    models: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], nn.Module]] = {
        "eager": (eager, eager),
        "compiled": (compiled, twin),
    }
    optimizers = {name: torch.optim.Adam(m[1].parameters()) for name, m in models.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    for round_index in range(args.rounds + 1):  # round 0 warms up (and compiles)
        for name, (run, _) in models.items():
            start = time.perf_counter()
            for x, lengths, y in batches:
                loss = nn.functional.cross_entropy(run(x, lengths), y)
                optimizers[name].zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimizers[name].step()
            elapsed = time.perf_counter() - start
            if round_index:
                times[name].append(elapsed)
            else:
                print(f"warm-up round {name}: {elapsed:.1f} s (compilation included)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), shared machine")
    print(f"{args.batches} batches of {BATCH}, {real} real steps per round, {args.rounds} rounds")
    base = statistics.median(times["eager"])
    for name, values in times.items():
        median = statistics.median(values)
        rate = args.batches / median
        print(f"  train {name:<9} {rate:8.2f} steps/s  time x{median / base:5.2f} of eager")


if __name__ == "__main__":
    main()
