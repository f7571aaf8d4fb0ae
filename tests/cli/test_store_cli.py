"""`varlen convert` a table, then `varlen train STORE` / `varlen predict MODEL STORE` from disk.

The store is trained on through the same engine as the table it came from: with the same
seed and options, the same model and the same predictions, bit for bit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.cli._data import cli_env, run_cli, sequences
from tests.cli.test_resume import history, kill_after_first_checkpoint, start_train

# --technique fixed: `auto` times mask and bucket on the machine, which may choose either.
OPTIONS = (
    "--epochs", "3", "--hidden-size", "8", "--batch-size", "8", "--technique", "bucket",
    "--conv-layers", "1", "--dropout", "0.2", "--seed", "5", "--quiet",
)  # fmt: skip


def write_grouped_table(path, n=64, *, seed=0):
    """A long Parquet table grouped by id in sorted id order (as `read_table` orders ids).

    `varlen convert` keeps the file's id order and `read_table` sorts the ids: with the ids
    already sorted both read the same rows in the same order, hence the same split. Parquet
    keeps float64 values exact on both readers (a CSV is parsed by two different parsers).
    """
    import pandas as pd

    x, labels, _ = sequences(n, seed=seed)
    owner = np.repeat(np.arange(n), x.lengths)
    frame = pd.DataFrame(
        {
            "sid": [f"s{i:03d}" for i in owner],
            "step": np.concatenate([np.arange(T) for T in x.lengths]),
            "f0": x.values[:, 0],
            "f1": x.values[:, 1],
            "label": labels[owner],
        }
    )
    frame.to_parquet(path, index=False)
    return path


@pytest.fixture
def table_and_store(tmp_path):
    """A grouped table and the float64 store `varlen convert` makes of it."""
    table = write_grouped_table(tmp_path / "table.parquet")
    store = tmp_path / "data.arrow"
    converted = run_cli(
        "convert", table, "--out", store, "--id", "sid", "--order", "step",
        "--features", "f0,f1", "--target", "label", "--dtype", "float64", cwd=tmp_path,
    )  # fmt: skip
    assert converted.returncode == 0, converted.stderr
    return table, store


def weights(model_dir):
    """The saved weights of a model directory."""
    return torch.load(model_dir / "weights.pt", weights_only=True)


def assert_same_weights(a, b):
    """Two model directories hold the same weights, bit for bit."""
    expected, got = weights(a), weights(b)
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0)


def test_store_trains_and_predicts_as_its_table(tmp_path, table_and_store):
    """Train on the table and on its store: same weights, history and predictions."""
    table, store = table_and_store
    columns = ("--id", "sid", "--order", "step", "--features", "f0,f1", "--target", "label")
    from_table = run_cli("train", table, "--out", tmp_path / "a", *columns, *OPTIONS, cwd=tmp_path)
    assert from_table.returncode == 0, from_table.stderr
    from_store = run_cli("train", store, "--out", tmp_path / "b", *OPTIONS, cwd=tmp_path)
    assert from_store.returncode == 0, from_store.stderr
    assert_same_weights(tmp_path / "a", tmp_path / "b")
    assert history(tmp_path / "b") == history(tmp_path / "a")
    assert "52 train / 12 validation sequences" in from_store.stdout

    on_table = run_cli("predict", tmp_path / "a", table, cwd=tmp_path)
    on_store = run_cli("predict", tmp_path / "b", store, cwd=tmp_path)
    assert on_store.returncode == 0, on_store.stderr
    assert on_store.stdout == on_table.stdout  # ids, labels, probabilities
    assert on_store.stdout.count("\n") == 65
    assert "accuracy" in on_store.stderr  # the store holds targets: scored
    assert on_store.stderr.split("accuracy")[1] == on_table.stderr.split("accuracy")[1]


def test_store_run_killed_then_resumed_equals_uninterrupted(tmp_path, table_and_store):
    """SIGKILL a store run after its first checkpoint; --resume gives the uninterrupted run."""
    _, store = table_and_store
    reference = run_cli("train", store, "--out", tmp_path / "a", *OPTIONS, cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    interrupted = start_train(store, tmp_path / "b", tmp_path, options=OPTIONS)
    code = kill_after_first_checkpoint(interrupted, tmp_path / "b" / "checkpoint.pt")
    assert code == -signal.SIGKILL
    resumed = run_cli(
        "train", store, "--out", tmp_path / "b", *OPTIONS[:-1], "--resume", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr
    assert_same_weights(tmp_path / "a", tmp_path / "b")
    assert history(tmp_path / "b") == history(tmp_path / "a")


def test_store_refuses_table_options_and_per_step_tasks(tmp_path, table_and_store):
    """Table options and --horizon do not apply to this store: one line each, with the reason."""
    _, store = table_and_store
    options = run_cli("train", store, "--out", tmp_path / "m", "--target", "label", cwd=tmp_path)
    assert options.returncode == 2
    assert "table options (--target) apply to .csv and .parquet files only" in options.stderr
    assert options.stderr.count("\n") == 1
    horizon = run_cli("train", store, "--out", tmp_path / "m", "--horizon", "1", cwd=tmp_path)
    assert horizon.returncode == 2
    assert "this store holds one target per sequence" in horizon.stderr


def peak_rss(*args, cwd):
    """Run `python -m varlen.cli ARGS`; return its peak RSS in bytes (it must succeed)."""
    env = {**cli_env(), "MALLOC_MMAP_THRESHOLD_": "65536"}  # freed batches go back to the OS
    command = [sys.executable, "-m", "varlen.cli", *map(str, args)]
    with (cwd / "stderr.txt").open("w+") as errors:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=errors
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        assert process.returncode == 0, errors.read()
    return usage.ru_maxrss * 1024  # KiB on Linux


def write_long_store(path, n, *, T=100, F=8, seed=0):
    """A float32 store of ``n`` sequences of ``T`` steps, two classes; its bytes of steps."""
    from varlen.data.io.store import StoreChunk, write_store
    from varlen.data.ragged import Ragged

    rng = np.random.default_rng(seed)

    def chunks():
        for start in range(0, n, 1000):
            B = min(1000, n - start)
            values = rng.normal(size=(B * T, F)).astype(np.float32)
            x = Ragged(values, np.arange(B + 1) * T)
            ids = np.arange(start, start + B, dtype=np.int64)
            yield StoreChunk(x, ids, np.where(ids % 2 == 0, "up", "down").astype(object))

    write_store(path, chunks(), features=[f"f{k}" for k in range(F)])
    return n * T * F * 4


@pytest.mark.slow
def test_train_and_predict_from_a_store_hold_a_fraction_of_it(tmp_path):
    """`varlen train` and `predict` on a 40 MB store peak < 25% of it above a 6 MB store's run.

    Both passes over every training row (standardizer, digest), the validation and the
    prediction of every row go through the store; loading it in memory as float64 and
    normalizing it would add about 3x its size.
    """
    small = write_long_store(tmp_path / "small.arrow", 2000)  # batches and blocks as full
    big = write_long_store(tmp_path / "big.arrow", 12800)
    options = (
        "--steps", "4", "--batch-size", "8", "--hidden-size", "4", "--conv-layers", "0",
        "--no-bidirectional", "--technique", "bucket", "--quiet",
    )  # fmt: skip
    peaks = {}
    for name in ("small", "big"):
        store = tmp_path / f"{name}.arrow"
        trained = peak_rss("train", store, "--out", tmp_path / name, *options, cwd=tmp_path)
        predicted = peak_rss("predict", tmp_path / name, store, "--out", tmp_path / f"{name}.csv",
                             cwd=tmp_path)  # fmt: skip
        peaks[name] = (trained, predicted)
    for stage in (0, 1):
        growth = peaks["big"][stage] - peaks["small"][stage]
        assert growth < 0.25 * (big - small), (stage, growth, big, peaks)
