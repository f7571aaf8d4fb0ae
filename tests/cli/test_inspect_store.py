"""`varlen inspect STORE` as a user runs it: what the store holds, from its metadata only."""

from __future__ import annotations

import numpy as np
import pytest

from tests.cli._data import run_cli
from varlen.cli.inspect import length_summary
from varlen.data.io.store import StoreChunk, write_store
from varlen.data.normalize import Standardizer
from varlen.data.ragged import Ragged

pd = pytest.importorskip("pandas")


def test_inspect_a_converted_store(tmp_path):
    """A store from `varlen convert`: format, sizes, features, classes, source, lengths."""
    rows = [
        (f"u{i}", t, float(i + t), 2.0 * t, "ab"[i % 2]) for i in range(5) for t in range(i + 1)
    ]
    frame = pd.DataFrame(rows, columns=["user", "t", "v", "w", "label"])
    frame.to_csv(tmp_path / "d.csv", index=False)
    run = run_cli(
        "convert", "d.csv", "--out", "d.arrow", "--id", "user", "--order", "t",
        "--target", "label", cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    run = run_cli("inspect", "d.arrow", "--batch-size", "2", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    size = (tmp_path / "d.arrow").stat().st_size
    assert run.stdout.splitlines()[:7] == [
        "d.arrow: 2 features",
        f"store: format version 1, {size / 1e3:.1f} kB on disk in 1 record batch, steps "
        "float32 (0.1 kB)",
        "features: v, w",
        "targets: 2 classes: a 3, b 2",
        "standardizer: none saved (varlen train fits one on its training split)",
        "source: d.csv (id 'user', order 't', target 'label')",
        length_summary(np.arange(1, 6)),
    ]
    assert "padding at batch size 2:" in run.stdout
    assert "technique auto would pick:" in run.stdout


def test_inspect_a_written_store_with_values_and_a_standardizer(tmp_path):
    """Regression targets (with a missing one) and a saved standardizer are described."""
    x = Ragged.from_sequences([np.ones((3, 1)), np.zeros((2, 1)), np.full((1, 1), 4.0)])
    scaler = Standardizer(mean=np.array([1.5]), std=np.array([2.0]), count=np.array([6.0]))
    y = np.array([0.5, np.nan, 2.5])
    chunks = [StoreChunk(x[i : i + 1], np.array([i]), y[i : i + 1]) for i in range(3)]
    write_store(tmp_path / "s.arrow", chunks, standardizer=scaler, chunk_bytes=8)
    run = run_cli("inspect", "s.arrow", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "in 3 record batches, steps float64 (0.0 kB)" in lines[1]
    assert lines[2:6] == [
        "features: f0",
        "targets: values min 0.5, mean 1.5, max 2.5 (1 missing)",
        "standardizer: saved, mean [1.5], scale [2]",
        "source: unknown",
    ]


def test_inspect_store_refuses_table_options_and_a_foreign_arrow_file(tmp_path):
    """Table options with a store, and an Arrow file without varlen's metadata: exit 2."""
    write_store(tmp_path / "s.arrow", Ragged.from_sequences([np.ones((2, 1))]))
    run = run_cli("inspect", "s.arrow", "--id", "user", cwd=tmp_path)
    assert run.returncode == 2
    assert "table options (--id) apply to .csv and .parquet files only" in run.stderr
    pd.DataFrame({"a": [1, 2]}).to_feather(tmp_path / "other.arrow")
    run = run_cli("inspect", "other.arrow", cwd=tmp_path)
    assert run.returncode == 2
    assert "must be a varlen store, got an Arrow file without varlen's metadata" in run.stderr
