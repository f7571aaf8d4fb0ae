"""`varlen train` / `predict` run as a user runs them (subprocesses, stderr not a terminal)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.cli._data import cli_env, run_cli, write_ts_file
from varlen.data.io.ts import write_ts
from varlen.data.ragged import Ragged

SLOW = 300  # seconds: a shared, loaded machine can take minutes to import torch and train

SMALL = ("--hidden-size", "4", "--conv-channels", "4", "--conv-layers", "1", "--batch-size", "8")


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    """Each epoch logs loss, validation loss, validation accuracy, elapsed and ETA."""
    data = write_ts_file(tmp_path / "train.ts", 40, seed=1)
    done = run_cli(
        "train", data, "--out", tmp_path / "m", "--epochs", "3", *SMALL, cwd=tmp_path, timeout=SLOW
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("epoch ")]
    assert lines[0].startswith("epoch 1/3: ")
    assert lines[-1].startswith("epoch 3/3: loss ")
    pattern = (
        r"epoch \d/3: loss [\d.]+, validation loss [\d.]+, validation accuracy [\d.]+, "
        r"elapsed \d+:\d\d, ETA \d+:\d\d"
    )
    assert all(re.fullmatch(pattern, line) for line in lines), lines
    assert "\r" not in done.stderr  # no progress bar off a terminal
    assert "epochs: 3 of 3 run (" in done.stdout


def test_small_validation_split_warns_and_trains_on_everything(tmp_path: Path) -> None:
    """Six series per class put one per class in validation: warn, and train on all 18."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 30, 18)
    x = Ragged(rng.normal(size=(int(lengths.sum()), 1)), np.concatenate([[0], np.cumsum(lengths)]))
    write_ts(tmp_path / "few.ts", x, np.array(["a", "b", "c"] * 6))
    done = run_cli(
        "train",
        tmp_path / "few.ts",
        "--out",
        tmp_path / "m",
        "--steps",
        "4",
        *SMALL,
        cwd=tmp_path,
        timeout=SLOW,
    )
    assert done.returncode == 0, done.stderr
    assert (
        "varlen train: warning: a validation split of 0.2 holds only 1 series of some class"
        in done.stderr
    )
    assert "Training on all the data" in done.stderr
    assert done.stdout.startswith("data: few.ts: 18 train / 0 validation sequences")
    silent = run_cli(
        "train", tmp_path / "few.ts", "--out", tmp_path / "m2", "--steps", "2",
        "--val-fraction", "0", *SMALL, cwd=tmp_path, timeout=SLOW,
    )  # fmt: skip
    assert silent.returncode == 0, silent.stderr
    assert "warning" not in silent.stderr


def _interrupted_run(data: Path, out: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Start a long run, press Ctrl-C once its first checkpoint exists."""
    command = [sys.executable, "-m", "varlen.cli", "train", str(data), "--out", str(out)]
    command += ["--steps", "2000", "--val-fraction", "0", "--seed", "3", *SMALL]
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a background job (`cmd &` in a script) inherits SIGINT ignored, and Python then
        # installs no KeyboardInterrupt handler: give the child the default, as a terminal does
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + SLOW
    while not (out / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)  # at once: 2,000 one-step epochs take seconds at least
    stdout, stderr = process.communicate(timeout=SLOW)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def test_resume_reads_the_options_from_the_model_directory(tmp_path: Path) -> None:
    """An interrupted run says how to resume; `train DATA --out DIR --resume` finishes it."""
    data = write_ts_file(tmp_path / "train.ts", 8, seed=2)
    out = tmp_path / "m"
    stopped = _interrupted_run(data, out, tmp_path)
    assert stopped.returncode == 130, stopped.stderr
    assert f"a checkpoint is in {out / 'checkpoint.pt'}" in stopped.stderr
    assert f"varlen train {data} --out {out} --threads 1 --resume" in stopped.stderr

    conflict = run_cli(
        "train", data, "--out", out, "--resume", "--hidden-size", "5", cwd=tmp_path, timeout=SLOW
    )
    assert conflict.returncode == 2
    assert "--hidden-size must be 4 as recorded (or left out), got 5" in conflict.stderr

    # the README form, one recorded flag repeated: the recorded budget and model, not defaults
    resumed = run_cli(
        "train", data, "--out", out, "--resume", "--hidden-size", "4", cwd=tmp_path, timeout=SLOW
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr
    assert "epochs: 2000 of 2000 run (2000 optimizer steps)" in resumed.stdout
    predicted = run_cli("predict", out, data, cwd=tmp_path, timeout=SLOW)
    assert predicted.returncode == 0, predicted.stderr
    assert re.search(r"accuracy [\d.]+ on 8 labelled sequences", predicted.stderr)


def test_demo_keeps_the_cwd_clean_and_prints_the_train_command(tmp_path: Path) -> None:
    """The demo writes into ./varlen-demo only; its printed command retrains the best row."""
    done = run_cli("demo", "--quick", "--techniques", "mask", cwd=tmp_path, timeout=SLOW)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["varlen-demo"]
    command = done.stdout.strip().splitlines()[-1]
    assert command.startswith("varlen train ")
    row = next(line for line in done.stdout.splitlines() if line.startswith("mask "))
    accuracy = row.split()[1]
    args = [*command.split()[1:], "--out", str(tmp_path / "m"), "--quiet"]
    again = run_cli(*args, cwd=tmp_path, timeout=SLOW)
    assert again.returncode == 0, again.stderr
    test = re.search(r"^test: loss [\d.]+, accuracy ([\d.]+)$", again.stdout, re.MULTILINE)
    assert test is not None, again.stdout
    assert abs(float(test.group(1)) - float(accuracy)) < 5.1e-4  # the table shows 3 decimals


def test_default_run_is_reproducible_under_cpu_load(tmp_path: Path) -> None:
    """The same default command gives the same weights, bit for bit, idle or under load.

    A busy process runs beside the second run; the plan (technique, pooling, budget) comes
    from the data, so it does not change. Only ``--steps`` is lowered, to keep the test
    short; every planning option is default.
    """
    data = write_ts_file(tmp_path / "train.ts", 40, seed=3)
    weights, plans = [], []
    for name in ("idle", "busy"):
        busy = None
        if name == "busy":
            burn = "import time\nend = time.time() + 120\nwhile time.time() < end: pass"
            busy = subprocess.Popen([sys.executable, "-c", burn])
        try:
            done = run_cli(
                "train", data, "--out", tmp_path / name, "--steps", "30", cwd=tmp_path, timeout=SLOW
            )
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        assert done.returncode == 0, done.stderr
        weights.append((tmp_path / name / "weights.pt").read_bytes())
        plans.append([line for line in done.stdout.splitlines() if line.startswith("technique")])
    assert plans[0] == plans[1]
    assert weights[0] == weights[1]
