"""Small generated datasets and a subprocess runner for the CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from varlen.data.io.ts import write_ts
from varlen.data.ragged import Ragged

ROOT = Path(__file__).resolve().parents[2]


def sequences(n: int, *, seed: int, features: int = 2) -> tuple[Ragged, np.ndarray, np.ndarray]:
    """Return ``n`` sequences of lengths 2..12, their labels ("up"/"down") and float targets.

    The label is the sign of the mean of feature 0, so a small model learns it fast.
    """
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 13, size=n)
    shift = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)  # balanced classes
    values = rng.normal(size=(int(lengths.sum()), features))
    values[:, 0] += np.repeat(shift, lengths)
    x = Ragged(values, np.concatenate([[0], np.cumsum(lengths)]))
    labels = np.where(shift > 0, "up", "down")
    targets = np.array([seq[:, 0].sum() for seq in x])
    return x, labels, targets


def write_ts_file(path: Path, n: int = 40, *, seed: int = 0, regression: bool = False) -> Path:
    """Write a generated ``.ts`` file (classification, or regression with float targets)."""
    x, labels, targets = sequences(n, seed=seed)
    write_ts(path, x, targets if regression else labels)
    return path


def write_table_file(path: Path, n: int = 40, *, seed: int = 0, features: int = 2) -> Path:
    """Write a long-format CSV/Parquet table: sid, step, f0.., label, value; rows shuffled."""
    import pandas as pd

    x, labels, targets = sequences(n, seed=seed, features=features)
    owner = np.repeat(np.arange(n), x.lengths)
    columns = {
        "sid": [f"s{i:03d}" for i in owner],
        "step": np.concatenate([np.arange(T) for T in x.lengths]),
        **{f"f{k}": x.values[:, k] for k in range(features)},
        "label": labels[owner],
        "value": targets[owner],
    }
    frame = pd.DataFrame(columns).sample(frac=1.0, random_state=seed)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def cli_env() -> dict[str, str]:
    """The environment of CLI subprocesses: one thread, the repository on the path."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "GLOO_SOCKET_IFNAME": "lo",
    }


def run_cli(*args: object, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m varlen.cli ARGS`` as a user would, capturing its output."""
    command = [sys.executable, "-m", "varlen.cli", *map(str, args)]
    return subprocess.run(
        command,
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
