"""SIGTERM (how schedulers stop jobs) is handled as Ctrl-C is: resume hint, lock released."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cli._data import cli_env, write_ts_file
from varlen._lock import LOCK_FILE
from varlen.cli._common import run_guarded

SLOW = 300  # seconds: a loaded machine can take minutes to import torch and train
SMALL = ("--hidden-size", "4", "--conv-channels", "4", "--conv-layers", "1", "--batch-size", "8")


def test_sigterm_in_process_is_exit_143_with_a_note(capsys):
    """The handler turns SIGTERM into a KeyboardInterrupt: exit 143, one line, handler restored."""
    before = signal.getsignal(signal.SIGTERM)

    def run(args: object) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the signal arrives before this ends
        return 0

    assert run_guarded("fake", run, object()) == 143
    assert capsys.readouterr().err == "varlen fake: terminated (SIGTERM)\n"
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_prints_the_resume_hint_and_removes_the_lock(tmp_path: Path) -> None:
    """`kill PID` mid-run: exit 143, the resume command printed, no lock file left."""
    data = write_ts_file(tmp_path / "train.ts", 8, seed=2)
    out = tmp_path / "m"
    command = [sys.executable, "-m", "varlen.cli", "train", str(data), "--out", str(out)]
    command += ["--steps", "2000", "--val-fraction", "0", "--seed", "3", *SMALL]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + SLOW
    while not (out / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=SLOW)
    assert process.returncode == 143, stderr
    assert f"a checkpoint is in {out / 'checkpoint.pt'}" in stderr
    assert f"varlen train {data} --out {out} --threads 1 --resume" in stderr
    assert stderr.rstrip().endswith("varlen train: terminated (SIGTERM)")
    assert not (out / LOCK_FILE).exists()
