"""Kill `varlen train` mid-run, `--resume` it, and get the uninterrupted run's exact result."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import torch

from tests.cli._data import cli_env, run_cli, write_ts_file

OPTIONS = (
    "--epochs", "4", "--hidden-size", "8", "--batch-size", "4", "--technique", "mask",
    "--dropout", "0.2", "--seed", "3", "--quiet",
)  # fmt: skip


def start_train(data, out, cwd, *, options=OPTIONS):
    """Start `varlen train` in the background."""
    command = [sys.executable, "-m", "varlen.cli", "train", str(data), "--out", str(out)]
    return subprocess.Popen(
        [*command, *options],
        cwd=cwd,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_after_first_checkpoint(process, checkpoint, *, timeout=120.0):
    """SIGKILL ``process`` as soon as ``checkpoint`` exists; return its exit code."""
    deadline = time.monotonic() + timeout
    while not checkpoint.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"no checkpoint appeared: {process.communicate()}")
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    return process.returncode


def history(model_dir):
    """The per-epoch losses and metrics saved with the model (timings left out)."""
    epochs = json.loads((model_dir / "config.json").read_text())["metadata"]["history"]
    return [(e["epoch"], e["train_loss"], e["val_loss"], e["val_metric"]) for e in epochs]


def test_train_killed_then_resumed_equals_uninterrupted(tmp_path):
    """SIGKILL after the first epoch's checkpoint, --resume: same weights and history."""
    data = write_ts_file(tmp_path / "train.ts", 160, seed=7)
    reference = run_cli("train", data, "--out", tmp_path / "a", *OPTIONS, cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr

    interrupted = start_train(data, tmp_path / "b", tmp_path)
    code = kill_after_first_checkpoint(interrupted, tmp_path / "b" / "checkpoint.pt")
    assert code == -signal.SIGKILL
    assert not (tmp_path / "b" / "config.json").exists()  # it did not finish
    state = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] < 3  # at most the current epoch was lost

    resumed = run_cli(
        "train", data, "--out", tmp_path / "b", *OPTIONS[:-1], "--resume", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {tmp_path / 'b' / 'checkpoint.pt'}" in resumed.stderr

    expected = torch.load(tmp_path / "a" / "weights.pt", weights_only=True)
    got = torch.load(tmp_path / "b" / "weights.pt", weights_only=True)
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0)
    assert history(tmp_path / "b") == history(tmp_path / "a")
    assert len(history(tmp_path / "a")) == 4
    report = reference.stdout.splitlines()
    again = resumed.stdout.splitlines()
    assert again[:-2] == report[:-2]  # all but the speed and the model directory
    assert len(report) == 7


def test_resume_keeps_test_and_threads(tmp_path):
    """--resume without --test and --threads takes the recorded ones: the test score stays."""
    from varlen.cli import main

    train = write_ts_file(tmp_path / "train.ts", 24, seed=1)
    test = write_ts_file(tmp_path / "test.ts", 8, seed=2)
    base = ["train", str(train), "--out", str(tmp_path / "m"), "--quiet"]
    tiny = ["--epochs", "1", "--hidden-size", "4", "--conv-layers", "0"]
    assert main([*base, *tiny, "--test", str(test), "--threads", "2"]) == 0
    first = json.loads((tmp_path / "m" / "config.json").read_text())["metadata"]
    assert main([*base, "--resume"]) == 0  # a finished run: nothing to train, saved again
    again = json.loads((tmp_path / "m" / "config.json").read_text())["metadata"]
    assert again["scores"]["test"] == first["scores"]["test"]
    assert again["options"]["threads"] == 2
    assert again["options"]["test"] == str(test)


def test_the_printed_resume_command_keeps_test_and_threads():
    """The command printed on Ctrl-C names --test and --threads (for a bit-exact resume)."""
    from pathlib import Path

    from varlen.cli._run_record import resume_command
    from varlen.cli.train import TrainOptions

    options = TrainOptions(Path("my data.ts"), test=Path("t.ts"), out=Path("m"), threads=2)
    assert resume_command(options) == (
        "varlen train 'my data.ts' --out m --test t.ts --threads 2 --resume"
    )
