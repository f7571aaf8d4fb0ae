"""Regenerate the README's table of `varlen train` defaults, with a 1-NN baseline beside each row.

Each row runs the command a new user runs, ``varlen train TRAIN --test TEST --out DIR`` with no
other option, in a subprocess, and reads its report: test accuracy, technique, planned steps,
epochs. Wall time and the child's CPU time are measured here (the machine may be shared:
both are printed). The baseline is 1-NN with z-normalized Euclidean distance, no DTW: each
series (each channel) standardized by its own mean and std, resampled linearly to the longest
training length when lengths differ (identity for equal lengths), channels laid end to end.

Usage::

    python benchmarks/defaults_table.py [--data ../shared/data] [--synthetic DIR]
        [--rows ACSF1,SynthGestures,...] [--baseline-only] [--out DIR]

The synthetic sets are written by ``benchmarks/make_synthetic.py`` (seed 0) into
``--synthetic`` (default: a temporary folder) when they are not there yet.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from varlen import read_ts
from varlen.data.ragged import Ragged

REAL = ("JapaneseVowels", "SpokenDigitsMFCC", "ShoulderExerciseWatch", "ACSF1")
SYNTHETIC = ("SynthGestures", "SynthAppliance")


def _znorm_resampled(x: Ragged, length: int) -> np.ndarray:
    """``(B, length * C)``: each series z-normalized per channel, resampled, flattened."""
    rows = []
    for i in range(len(x)):
        series = np.asarray(x[i], dtype=np.float64)  # (T_i, C)
        series = np.nan_to_num(series, nan=0.0)
        std = series.std(axis=0)
        series = (series - series.mean(axis=0)) / np.where(std > 0, std, 1.0)
        T = series.shape[0]
        if length != T:
            grid = np.linspace(0, max(T - 1, 0), length)
            series = np.stack(
                [np.interp(grid, np.arange(T), series[:, c]) for c in range(series.shape[1])],
                axis=1,
            )
        rows.append(series.T.reshape(-1))
    return np.stack(rows)


def one_nn_accuracy(train: Path, test: Path) -> float:
    """Test accuracy of 1-NN with z-normalized Euclidean distance (see the module docstring).

    Args:
        train: The training ``.ts`` file.
        test: The test ``.ts`` file.

    Returns:
        The share of test series whose nearest training series has their label.
    """
    a, b = read_ts(train), read_ts(test)
    length = int(a.x.lengths.max())
    xa, xb = _znorm_resampled(a.x, length), _znorm_resampled(b.x, length)
    ya, yb = np.asarray(a.y), np.asarray(b.y)
    distances = (xb**2).sum(1)[:, None] - 2 * xb @ xa.T + (xa**2).sum(1)[None, :]
    return float((ya[distances.argmin(axis=1)] == yb).mean())


def _files(name: str, data: Path, synthetic: Path) -> tuple[Path, Path]:
    folder = data / name if name in REAL else synthetic
    return folder / f"{name}_TRAIN.ts", folder / f"{name}_TEST.ts"


def run_defaults(train: Path, test: Path, out: Path) -> dict[str, str | float]:
    """Run ``varlen train TRAIN --test TEST --out OUT`` (defaults) and read its report."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    command = [sys.executable, "-m", "varlen.cli", "train", str(train), "--test", str(test)]
    done = subprocess.run(
        [*command, "--out", str(out), "--quiet"], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"varlen train failed on {train}: {done.stderr.strip()[-500:]}")
    report = done.stdout + done.stderr

    def find(pattern: str) -> str:
        match = re.search(pattern, report)
        return match.group(1) if match else "?"

    planned = json.loads((out / "run.json").read_text(encoding="utf-8"))["planned_steps"]
    return {
        "accuracy": float(find(r"test: loss [0-9.]+, accuracy ([0-9.]+)")),
        "technique": find(r"technique: (\w[\w-]*)"),
        "augment": find(r"augment: (on|off)"),
        "steps": f"{planned:,}",
        "epochs": find(r"epochs: \d+ of (\d+) run"),
        "wall": wall,
        "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    }


def _shape(train: Path) -> str:
    data = read_ts(train)
    lengths = data.x.lengths
    channels = data.x.values.shape[1]
    low, high = int(lengths.min()), int(lengths.max())
    span = f"{low:,}" if low == high else f"{low:,}-{high:,}"
    return f"{len(lengths)}, {channels} ch, {span}"


def main() -> None:
    """Print the table (markdown), one row per data set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--synthetic", type=Path, default=None)
    parser.add_argument("--rows", default=",".join(REAL + SYNTHETIC))
    parser.add_argument("--baseline-only", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="model directories (default: temp)")
    args = parser.parse_args()
    temporary = tempfile.TemporaryDirectory()
    synthetic = args.synthetic or Path(temporary.name) / "synthetic"
    if not (synthetic / "SynthGestures_TRAIN.ts").is_file():
        maker = Path(__file__).with_name("make_synthetic.py")
        subprocess.run([sys.executable, os.fspath(maker), str(synthetic)], check=True)
    out = args.out or Path(temporary.name) / "models"
    print(
        "| data (train series, channels, lengths) | test accuracy | 1-NN (z-norm. Euclidean) "
        "| wall time (CPU) | technique, budget |"
    )
    print("|---|---|---|---|---|")
    for name in args.rows.split(","):
        train, test = _files(name, args.data, synthetic)
        baseline = one_nn_accuracy(train, test)
        if args.baseline_only:
            print(f"| {name} ({_shape(train)}) | | {baseline:.3f} | | |", flush=True)
            continue
        row = run_defaults(train, test, out / name)
        print(
            f"| {name} ({_shape(train)}) | **{row['accuracy']:.3f}** | {baseline:.3f} | "
            f"{row['wall']:.0f} s ({row['cpu']:.0f} s CPU) | {row['technique']}, "
            f"{row['steps']} steps = {row['epochs']} epochs, augment {row['augment']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
