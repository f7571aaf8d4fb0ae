"""Shared pieces of the fault suite: tiny data, one trained model, and message checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cli._data import write_table_file, write_ts_file
from varlen.cli import main

TINY = ("--epochs", "2", "--hidden-size", "4", "--batch-size", "8", "--quiet")
"""Training options that keep a fault test fast."""


def one_line(stderr: str, command: str, *fragments: str) -> str:
    """Check ``stderr`` is one error line of ``command`` holding every fragment; return it."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"varlen {command}: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in stderr
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of ``folder`` (not recursive) by name, with its bytes."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


@pytest.fixture(scope="session")
def fault_data(tmp_path_factory):
    """A folder with a small .ts training file and a CSV table."""
    folder = tmp_path_factory.mktemp("fault-data")
    write_ts_file(folder / "train.ts", 40, seed=11)
    write_ts_file(folder / "new.ts", 12, seed=12)
    write_table_file(folder / "table.csv", 24, seed=13)
    return folder


@pytest.fixture(scope="session")
def trained(fault_data, tmp_path_factory):
    """A model directory trained in-process (with its checkpoint and run.json)."""
    out = tmp_path_factory.mktemp("fault-models") / "model"
    code = main(["train", str(fault_data / "train.ts"), "--out", str(out), *TINY])
    if code != 0:
        raise RuntimeError(f"training the fault suite's model failed with exit code {code}")
    return out


@pytest.fixture
def model_copy(trained, tmp_path):
    """A private copy of the trained model directory, free to damage."""
    return Path(shutil.copytree(trained, tmp_path / "model"))
