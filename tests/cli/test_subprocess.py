"""The commands as a user runs them: `python -m varlen.cli ...` in a subprocess."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tests.cli._data import run_cli, sequences
from varlen.data.io.ts import write_ts
from varlen.data.ragged import Ragged


def test_train_then_predict_as_a_user(data_dir, tmp_path):
    """Train on a .ts file with a test split, then predict it: exit 0, learned, CSV written."""
    model = tmp_path / "model"
    train = run_cli(
        "train", data_dir / "train.ts", "--test", data_dir / "test.ts", "--out", model,
        "--epochs", "6", "--hidden-size", "16", "--batch-size", "8", "--lr", "0.01",
        cwd=tmp_path,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    found = re.search(r"^test: loss [\d.]+, accuracy ([\d.]+)$", train.stdout, re.M)
    assert found is not None, train.stdout
    accuracy = float(found[1])
    assert accuracy >= 0.8  # the label is the sign of a feature's mean: easy to learn
    assert "Traceback" not in train.stderr
    predict = run_cli("predict", model, data_dir / "test.ts", "--out", "p.csv", cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr
    frame = pd.read_csv(tmp_path / "p.csv")
    assert list(frame.columns) == ["id", "prediction", "prob_down", "prob_up"]
    assert len(frame) == 20


def bad_input_cases(data_dir, tmp_path, ts_model):
    """The bad input of the issue, as (argv, expected start of the message)."""
    bad_ts = tmp_path / "bad.ts"
    bad_ts.write_text("@problemName x\n@classLabel true a b\n@data\n1,2:a\n1,2:c\n")
    x, labels, _ = sequences(3, seed=0, features=3)
    write_ts(tmp_path / "three.ts", x, labels)
    table = ("--id", "sid", "--order", "step", "--target")
    return {
        "missing file": (
            ("train", "nowhere.ts"),
            "varlen train: error: DATA file 'nowhere.ts' does not exist.",
        ),
        "malformed ts": (
            ("train", bad_ts),
            f"varlen train: error: read_ts: {bad_ts}:5: label must be one of the @classLabel "
            "labels ['a', 'b'], got 'c'.",
        ),
        "missing column": (
            ("train", data_dir / "train.csv", *table, "species"),
            "varlen train: error: read_table: target must name a column of the table, got "
            "'species'. Available columns: ['sid', 'step', 'f0', 'f1', 'label', 'value'].",
        ),
        "target not fitting": (
            ("train", data_dir / "train.csv", *table, "label", "--task", "regression"),
            "varlen train: error: target must be numbers for regression, got 'up' for sequence "
            "'s000'. Use --task classification to predict labels.",
        ),
        "features differ": (
            ("predict", ts_model, tmp_path / "three.ts"),
            "varlen predict: error: DATA features must match the model's 2 features",
        ),
    }


@pytest.mark.parametrize(
    "case",
    ["missing file", "malformed ts", "missing column", "target not fitting", "features differ"],
)
def test_bad_input_is_one_line_exit_2_no_traceback(data_dir, tmp_path, ts_model, case):
    """Each kind of bad input: exit code 2, one line on stderr, no traceback, empty stdout."""
    argv, expected = bad_input_cases(data_dir, tmp_path, ts_model)[case]
    result = run_cli(*argv, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(expected)


def test_debug_flag_shows_the_traceback(tmp_path):
    """--debug lets the exception through: a traceback and Python's exit code 1."""
    result = run_cli("--debug", "inspect", "nowhere.ts", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "FileNotFoundError: DATA file 'nowhere.ts' does not exist." in result.stderr


def test_train_one_channel_few_series_reads_them_standardized_as_a_user(tmp_path):
    """One channel, 6 series a class of 10-87 steps: the plan says the levels are dropped.

    The saved model predicts a file whose series are shifted and rescaled as it predicts the
    file itself (the same classes and, up to the standardization's eps, probabilities).
    """
    rng = np.random.default_rng(2)
    lengths = np.arange(12) * 7 + 10
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    x = Ragged(rng.normal(size=(int(offsets[-1]), 1)), offsets)
    labels = np.where(np.arange(12) % 2 == 0, "a", "b")
    write_ts(tmp_path / "few.ts", x, labels)
    moved = np.concatenate([x[i] * (1.0 + i) - 2.0 * i for i in range(12)])
    write_ts(tmp_path / "moved.ts", Ragged(moved, offsets), labels)
    train = run_cli(
        "train", "few.ts", "--out", "m", "--epochs", "3", "--hidden-size", "8",
        "--conv-channels", "8", "--batch-size", "4", cwd=tmp_path,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    assert "levels: dropped: each series standardized only (one channel" in train.stderr
    for name in ("few", "moved"):
        predict = run_cli("predict", "m", f"{name}.ts", "--out", f"{name}.csv", cwd=tmp_path)
        assert predict.returncode == 0, predict.stderr
    few, shifted = pd.read_csv(tmp_path / "few.csv"), pd.read_csv(tmp_path / "moved.csv")
    assert list(few["prediction"]) == list(shifted["prediction"])
    np.testing.assert_allclose(few["prob_a"], shifted["prob_a"], atol=1e-3)
