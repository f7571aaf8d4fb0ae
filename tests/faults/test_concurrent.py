"""Two `varlen train` runs on one --out: the second is refused at once, the first is unharmed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cli._data import cli_env, run_cli
from tests.faults.conftest import one_line
from varlen._lock import LOCK_FILE
from varlen.training.artifacts import load_model

SLOW = ("--epochs", "8", "--hidden-size", "4", "--batch-size", "4", "--patience", "0")


def _holds_lock(path: Path, pid: int) -> bool:
    """Whether the lock file at `path` records `pid` (written only once the lock is held)."""
    try:
        return bool(json.loads(path.read_text(encoding="utf-8"))["pid"] == pid)
    except (OSError, ValueError, KeyError):
        return False


def test_second_run_on_the_same_out_is_refused(fault_data, tmp_path):
    """Run B meets run A's lock: exit 2, one line naming the folder and A's pid.

    Run A is frozen (SIGSTOP) while B runs, so a fast machine cannot let A finish first.
    """
    out = tmp_path / "model"
    data = fault_data / "train.ts"
    command = [sys.executable, "-m", "varlen.cli", "train", str(data), "--out", str(out)]
    first = subprocess.Popen(
        [*command, *SLOW, "--quiet"],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _holds_lock(out / LOCK_FILE, first.pid):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(first.pid, signal.SIGSTOP)
        try:
            second = run_cli("train", data, "--out", out, "--epochs", "1", "--quiet", cwd=tmp_path)
        finally:
            os.kill(first.pid, signal.SIGCONT)
        assert second.returncode == 2
        one_line(second.stderr, "train", repr(str(out)), "in use", f"pid {first.pid}", LOCK_FILE)
    finally:
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert "model:" in stdout
    load_model(out)
    assert not (out / LOCK_FILE).exists()  # released on exit
