"""`torchrun --nproc-per-node 2 -m varlen.cli train ...`: two gloo processes, one model written."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch.distributed as dist

from tests.cli._data import cli_env
from varlen.training.artifacts import load_model

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")


@pytest.mark.parametrize("technique", ["bucket"])
def test_train_under_torchrun_two_processes(data_dir, tmp_path, technique):
    """Both ranks train; only rank 0 prints the report and writes the model directory."""
    out = tmp_path / "model"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "varlen.cli", "train", str(data_dir / "train.ts"), "--out", str(out),
        "--epochs", "2", "--hidden-size", "8", "--batch-size", "8", "--technique", technique,
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("model: ") == 1  # one report, from rank 0
    assert f"technique: {technique} (chosen with --technique)" in result.stdout
    loaded = load_model(out)
    assert len(loaded.metadata["history"]) == 2
    assert loaded.labels == ("down", "up")


@pytest.mark.slow  # the loop's DDP path is the per-sequence test's; this adds the per-step task
def test_per_step_train_under_torchrun_two_processes(data_dir, tmp_path):
    """A per-step forecaster trains under torchrun like a per-sequence model (it was refused)."""
    out = tmp_path / "model"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "varlen.cli", "train", str(data_dir / "train.csv"), "--out", str(out),
        "--id", "sid", "--order", "step", "--features", "f0,f1", "--target", "value",
        "--horizon", "1", "--epochs", "2", "--hidden-size", "4", "--batch-size", "8",
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("model: ") == 1
    loaded = load_model(out)
    assert loaded.model.config.per_step
    assert len(loaded.metadata["history"]) == 2


def test_train_a_store_under_torchrun_two_processes(data_dir, tmp_path):
    """Two ranks train on one store (each maps it and reads its own shard of the batches)."""
    store = tmp_path / "train.arrow"
    converted = subprocess.run(
        [sys.executable, "-m", "varlen.cli", "convert", str(data_dir / "train.ts"),
         "--out", str(store)],
        cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert converted.returncode == 0, converted.stderr
    out = tmp_path / "model"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "varlen.cli", "train", str(store), "--out", str(out),
        "--epochs", "2", "--hidden-size", "8", "--batch-size", "8", "--technique", "bucket",
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("model: ") == 1
    assert "data: train.arrow:" in result.stdout
    loaded = load_model(out)
    assert len(loaded.metadata["history"]) == 2
    assert loaded.labels == ("down", "up")  # the .ts file's labels, kept by the store
