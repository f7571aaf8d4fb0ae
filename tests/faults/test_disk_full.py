"""Disk full at each file varlen writes: the previous file stays whole, one line names it.

Faults are injected by wrapping the write call (varlen._atomic.inject), so no mount or quota
is needed; one test runs a real process to show the exit code and the single line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import torch

from tests.cli._data import ROOT, cli_env
from tests.faults.conftest import TINY, one_line, snapshot
from varlen._atomic import AtomicWriteError, disk_full, inject
from varlen.cli import main
from varlen.data.io.ts import write_ts
from varlen.data.ragged import Ragged
from varlen.training.artifacts import load_model


def _complete(path):
    """Whether a file varlen wrote is whole: JSON parses, torch files load safely."""
    if path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".pt":
        torch.load(path, weights_only=True)
    return True


@pytest.mark.parametrize(
    ("name", "skip"),
    [("run.json", 0), ("checkpoint.pt", 0), ("checkpoint.pt", 1), ("weights.pt", 0),
     ("config.json", 0)],
)  # fmt: skip
def test_train_disk_full_at_each_write(fault_data, model_copy, capsys, name, skip):
    """A second run (another seed) meets a full disk: exit 2, one line, the old file kept."""
    before = snapshot(model_copy)
    argv = ["train", str(fault_data / "train.ts"), "--out", str(model_copy), *TINY]
    with inject(disk_full(name=name, skip=skip)):
        assert main([*argv, "--seed", "5"]) == 2
    captured = capsys.readouterr()
    one_line(captured.err, "train", repr(str(model_copy / name)), "disk full")
    after = snapshot(model_copy)
    assert sorted(after) == sorted(before)  # no temporary, no lock file left
    if skip == 0:
        assert after[name] == before[name]  # the file that could not be written is the old one
    for file in after:  # every other file is the old one or a complete new one
        assert after[file] == before[file] or _complete(model_copy / file)
    assert after["config.json"] == before["config.json"]  # the model directory is the old one
    assert after["weights.pt"] == before["weights.pt"]
    load_model(model_copy)


def test_model_directory_is_the_old_model_after_a_failed_save(fault_data, trained, model_copy):
    """Disk full on config.json after training: weights.pt is not replaced either."""
    argv = ["train", str(fault_data / "train.ts"), "--out", str(model_copy), *TINY, "--seed", "9"]
    with inject(disk_full(name="config.json")):
        assert main(argv) == 2
    expected = load_model(trained).model.state_dict()
    got = load_model(model_copy).model.state_dict()
    for key, tensor in expected.items():
        torch.testing.assert_close(got[key], tensor, rtol=0, atol=0)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("existing", [True, False], ids=["existing", "fresh"])
def test_predict_disk_full_keeps_previous_predictions(
    fault_data, trained, tmp_path, capsys, suffix, existing
):
    """The previous --out stays whole (or none appears): never a truncated file that looks valid."""
    out = tmp_path / f"predictions{suffix}"
    if existing:
        out.write_bytes(b"id,prediction\nold,1\n")
    argv = ["predict", str(trained), str(fault_data / "new.ts"), "--out", str(out)]
    with inject(disk_full(name=out.name, after=30)):
        assert main(argv) == 2
    one_line(capsys.readouterr().err, "predict", repr(str(out)), "disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ([out.name] if existing else [])
    if existing:
        assert out.read_bytes() == b"id,prediction\nold,1\n"


def test_inspect_plot_disk_full(fault_data, tmp_path, capsys):
    """`varlen inspect --plot` on a full disk: one line naming the PNG, no partial image."""
    pytest.importorskip("matplotlib")
    plot = tmp_path / "lengths.png"
    with inject(disk_full(name=plot.name, after=100)):
        code = main(["inspect", str(fault_data / "train.ts"), "--plot", str(plot)])
    assert code == 2
    err = capsys.readouterr().err
    one_line(err, "inspect", repr(str(plot)), "disk full")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".csv", ".json", ".png"])
def test_demo_outputs_disk_full(tmp_path, suffix):
    """The demo's table (CSV/JSON) and chart keep their previous content on a full disk."""
    from varlen.cli._demo_report import plot_demo, write_rows
    from varlen.training.demo import DemoRow

    if suffix == ".png":
        pytest.importorskip("matplotlib")
    values: dict[str, Any] = dict.fromkeys(DemoRow.__dataclass_fields__, 1.0)
    row = DemoRow(**values | {"technique": "bucket", "exact": True})
    path = tmp_path / f"demo{suffix}"
    path.write_bytes(b"previous")
    write = plot_demo if suffix == ".png" else write_rows
    with inject(disk_full(name=path.name, after=10)), pytest.raises(AtomicWriteError):
        write([row], path)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_write_ts_disk_full(tmp_path):
    """write_ts (the data layer) goes through the same atomic writer."""
    path = tmp_path / "x.ts"
    x = Ragged(np.ones((4, 1)), np.array([0, 2, 4]))
    write_ts(path, x, np.array(["a", "b"]))
    before = path.read_bytes()
    with inject(disk_full(name="x.ts", after=20)), pytest.raises(OSError, match="disk full"):
        write_ts(path, Ragged(np.zeros((4, 1)), np.array([0, 1, 4])), np.array(["a", "b"]))
    assert path.read_bytes() == before


def test_disk_full_in_a_real_run_is_exit_2_and_one_line(fault_data, tmp_path):
    """A real `varlen train` process meeting a full disk at its checkpoint."""
    out = tmp_path / "model"
    command = [sys.executable, "-m", "tests.faults._faulty_cli", "--disk-full", "checkpoint.pt"]
    args = ["--", "train", str(fault_data / "train.ts"), "--out", str(out), *TINY]
    done = subprocess.run(
        [*command, *args], cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    one_line(done.stderr, "train", repr(str(out / "checkpoint.pt")), "disk full")
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]  # no checkpoint.pt.tmp
