"""Fixtures of the CLI tests: small generated data and one model trained once per session."""

from __future__ import annotations

import pytest

from tests.cli._data import write_table_file, write_ts_file
from varlen.cli import main

TINY = (
    "--epochs", "2", "--hidden-size", "8", "--conv-channels", "8", "--batch-size", "8", "--quiet",
)  # fmt: skip
"""Training options that keep a CLI test fast."""


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """A folder with train/test .ts files (classification and regression) and a CSV table."""
    folder = tmp_path_factory.mktemp("data")
    write_ts_file(folder / "train.ts", 48, seed=1)
    write_ts_file(folder / "test.ts", 20, seed=2)
    write_ts_file(folder / "reg_train.ts", 48, seed=3, regression=True)
    write_table_file(folder / "train.csv", 40, seed=4)
    write_table_file(folder / "test.csv", 12, seed=5)
    write_table_file(folder / "three.csv", 12, seed=6, features=3)
    return folder


@pytest.fixture(scope="session")
def ts_model(data_dir, tmp_path_factory):
    """A classifier trained in-process on train.ts (2 epochs, tiny)."""
    out = tmp_path_factory.mktemp("models") / "ts"
    code = main(["train", str(data_dir / "train.ts"), "--out", str(out), *TINY])
    if code != 0:
        raise RuntimeError(f"training the shared model failed with exit code {code}")
    return out


@pytest.fixture(scope="session")
def table_model(data_dir, tmp_path_factory):
    """A classifier trained in-process on train.csv with the features f0, f1."""
    out = tmp_path_factory.mktemp("models") / "table"
    table = ("--id", "sid", "--order", "step", "--features", "f0,f1", "--target", "label")
    code = main(["train", str(data_dir / "train.csv"), *table, "--out", str(out), *TINY])
    if code != 0:
        raise RuntimeError(f"training the shared model failed with exit code {code}")
    return out
