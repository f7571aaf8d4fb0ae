"""Keras 3: `varlen.keras.LSTM` against `keras.layers.LSTM` + `Masking`, same batches, per backend.

Issue 18 asks for at least 3x Keras's masked layer in training on the torch backend, and not
slower than Keras on JAX. Setting (``benchmarks/_setting.py``): lengths log-normal, median 100,
sigma 1, clipped to [5, 1000]; a model ``Masking -> LSTM(32 -> 128) -> Dense(10)``, Adam,
sparse cross-entropy, batches of 64. Rows, interleaved round by round after a warm-up round
(which also compiles every batch shape on JAX), medians of the rounds:

- ``keras LSTM``: ``keras.layers.LSTM``; random batches, each padded (post, zeros) to its own
  longest sequence rounded up to a multiple of 32 (few shapes for JAX).
- ``varlen.keras LSTM``: the same model with ``varlen.keras.LSTM`` (weights copied), the same
  batches.
- ``varlen.keras + BucketedDataset``: the same model and sequences, batched by
  ``varlen.keras.BucketedDataset(batch_size=64, pad_to=32)``.

Training is ``train_on_batch`` over every batch (forward, backward, Adam); inference is
``predict_on_batch``. Figures are real (unpadded) steps per second. Keras picks its backend
once per process, so each backend runs in its own subprocess. One thread (torch and XLA),
pinned; the machine may be shared, so only the ratios within a backend mean much.

Run: ``python benchmarks/bench_keras.py [--quick] [--backends torch jax]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
F, H, CLASSES, BATCH, PAD_TO = 32, 128, 10, 64, 32


def _model(module: Any) -> Any:
    import keras

    return keras.Sequential(
        [
            keras.Input((None, F)),
            keras.layers.Masking(0.0),
            module.LSTM(H),
            keras.layers.Dense(CLASSES),
        ]
    )


def _random_batches(
    sequences: list[np.ndarray], y: np.ndarray, rng: np.random.Generator
) -> list[Any]:
    order = rng.permutation(len(sequences))
    batches = []
    for start in range(0, len(order), BATCH):
        rows = order[start : start + BATCH]
        T = -(-max(len(sequences[i]) for i in rows) // PAD_TO) * PAD_TO
        x = np.zeros((len(rows), T, F), np.float32)
        for k, i in enumerate(rows):
            x[k, : len(sequences[i])] = sequences[i]
        batches.append((x, y[rows]))
    return batches


def _time(model: Any, batches: list[Any], *, train: bool) -> float:
    start = time.perf_counter()
    for x, y in batches:
        if train:
            model.train_on_batch(x, y)
        else:
            model.predict_on_batch(x)
    return time.perf_counter() - start


def run_backend(*, quick: bool, rounds: int) -> None:
    """Measure every row on the backend of this process and print its table."""
    import keras
    import varlen.keras as vk

    if keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(1)
    sys.path.insert(0, HERE)
    from _setting import sample_lengths

    rng = np.random.default_rng(0)
    n = 256 if quick else 1024
    lengths = sample_lengths(n, rng)
    # Real steps never all zero, so Masking(0.0) keeps them (pads are exact zeros).
    sequences = [rng.normal(size=(int(T), F)).astype(np.float32) + 0.1 for T in lengths]
    y = rng.integers(0, CLASSES, n)
    random = _random_batches(sequences, y, rng)
    bucketed = list(vk.BucketedDataset(sequences, y, batch_size=BATCH, pad_to=PAD_TO, seed=0))
    keras.utils.set_random_seed(0)
    models = {"keras LSTM": _model(keras.layers), "varlen.keras LSTM": _model(vk)}
    models["varlen.keras + BucketedDataset"] = _model(vk)
    for model in models.values():
        model.set_weights(models["keras LSTM"].get_weights())
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    data = {
        "keras LSTM": random,
        "varlen.keras LSTM": random,
        "varlen.keras + BucketedDataset": bucketed,
    }
    real = int(lengths.sum())
    times: dict[tuple[str, bool], list[float]] = {
        (name, t): [] for name in models for t in (True, False)
    }
    for round_ in range(rounds + 1):  # round 0 warms up (and compiles every shape on JAX)
        for train in (True, False):
            for name, model in models.items():
                seconds = _time(model, data[name], train=train)
                if round_ > 0:
                    times[name, train].append(seconds)
    print(
        f"\nbackend {keras.backend.backend()}: {n} sequences, {real} real steps, "
        f"{rounds} rounds (medians), one thread"
    )
    print(f"{'row':34} {'train steps/s':>14} {'vs keras':>9} {'infer steps/s':>14} {'vs keras':>9}")
    for name in models:
        cells = []
        for train in (True, False):
            speed = real / statistics.median(times[name, train])
            base = real / statistics.median(times["keras LSTM", train])
            cells.append(f"{speed:14,.0f} {speed / base:8.2f}x")
        print(f"{name:34} {' '.join(cells)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 sequences, 2 rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["torch", "jax"])
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    if args.in_process:
        run_backend(quick=args.quick, rounds=rounds)
        return
    for backend in args.backends:
        env = {
            **os.environ,
            "KERAS_BACKEND": backend,
            "OMP_NUM_THREADS": "1",
            "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
        }
        command = [sys.executable, __file__, "--in-process", "--rounds", str(rounds)]
        if args.quick:
            command.append("--quick")
        subprocess.run(command, env=env, check=True)


if __name__ == "__main__":
    main()
