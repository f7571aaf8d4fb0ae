"""Processes killed (SIGKILL) at random points of training and of predict: nothing is lost.

After each kill every file varlen wrote is whole (the old one or a complete new one), the
lock dies with the process, and `--resume` finishes with the uninterrupted run's weights.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.cli._data import cli_env, run_cli

OPTIONS = ("--epochs", "5", "--hidden-size", "4", "--batch-size", "8", "--seed", "2", "--quiet")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def _start(*args, cwd):
    command = [sys.executable, "-m", "varlen.cli", *map(str, args)]
    return subprocess.Popen(
        command, cwd=cwd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _kill_after(process, seconds):
    """SIGKILL ``process`` after ``seconds`` (if it still runs); return its exit code."""
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
    process.communicate()
    return process.returncode


def _check_whole(folder):
    """Every file varlen wrote in ``folder`` is complete; return their names."""
    names = sorted(path.name for path in folder.iterdir()) if folder.exists() else []
    for name in names:
        path = folder / name
        if name.endswith(".json"):
            json.loads(path.read_text())
        elif name.endswith(".pt"):
            torch.load(path, weights_only=True)
        else:  # a killed writer's hidden temporary, or its lock file: never a real name
            assert name.startswith("."), name
    return names


def test_train_killed_at_a_random_point_then_resumed(fault_data, tmp_path):
    """A kill at a random time, then --resume: files whole, weights equal a clean run's.

    The resumed run would be refused if the lock outlived the killed process.
    """
    data = fault_data / "train.ts"
    began = time.monotonic()
    reference = run_cli("train", data, "--out", tmp_path / "reference", *OPTIONS, cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    duration = time.monotonic() - began
    rng = random.Random(12)
    out = tmp_path / "killed"
    process = _start("train", data, "--out", out, *OPTIONS, cwd=tmp_path)
    code = _kill_after(process, rng.uniform(0.3, 1.0) * duration)
    assert code in (0, -signal.SIGKILL)
    _check_whole(out)
    final = run_cli("train", data, "--out", out, *OPTIONS, "--resume", cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    assert not any(name.startswith(".") for name in _check_whole(out))  # temporaries cleaned
    expected = torch.load(tmp_path / "reference" / "weights.pt", weights_only=True)
    got = torch.load(out / "weights.pt", weights_only=True)
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=0)


def test_predict_killed_at_random_points_keeps_old_or_whole_new(fault_data, trained, tmp_path):
    """`varlen predict --out` killed anywhere: the file is the old one or the complete new one."""
    new = fault_data / "new.ts"
    began = time.monotonic()
    done = run_cli("predict", trained, new, "--out", tmp_path / "whole.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    duration = time.monotonic() - began
    whole = (tmp_path / "whole.csv").read_bytes()
    old = b"id,prediction\nold,up\n"
    rng = random.Random(7)
    out = tmp_path / "predictions.csv"
    for _ in range(2):
        out.write_bytes(old)
        process = _start("predict", trained, new, "--out", out, "--quiet", cwd=tmp_path)
        _kill_after(process, rng.uniform(0.3, 1.1) * duration)
        assert out.read_bytes() in (old, whole)
