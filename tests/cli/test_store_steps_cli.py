"""Per-step targets through a store, as a user runs it: convert, train, predict, inspect.

`varlen convert` stores a target that varies within ids per step; `varlen train STORE` then
trains the per-step model the table itself trains (the one engine, `fit_steps`, reading each
batch of steps and targets from the store): the same weights, history and predictions, bit for
bit, under the conditions of the sequence-level test (tests/cli/test_store_cli.py): a float64
store of a Parquet table whose ids are in sorted order.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.cli._data import run_cli, sequences
from tests.cli.test_resume import history
from tests.cli.test_store_cli import assert_same_weights
from varlen.cli import main

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

OPTIONS = (
    "--epochs", "3", "--hidden-size", "8", "--batch-size", "8", "--technique", "bucket",
    "--dropout", "0.2", "--seed", "5", "--quiet",
)  # fmt: skip
COLUMNS = ("--id", "sid", "--order", "step", "--features", "f0,f1")


def write_step_table(path, n=48, *, seed=0):
    """A Parquet table grouped by id in sorted id order, with per-step targets.

    ``act``: an integer class per step (0, 1, 2); ``speed``: a float per step, some missing.
    """
    x, _, _ = sequences(n, seed=seed)
    owner = np.repeat(np.arange(n), x.lengths)
    rng = np.random.default_rng(seed + 1)
    speed = 2.0 * x.values[:, 0] + 0.1 * rng.normal(size=x.num_steps)
    speed[::7] = np.nan
    frame = pd.DataFrame(
        {
            "sid": [f"s{i:03d}" for i in owner],
            "step": np.concatenate([np.arange(T) for T in x.lengths]),
            "f0": x.values[:, 0],
            "f1": x.values[:, 1],
            "act": (x.values[:, 0] > 0).astype(np.int64) + (x.values[:, 1] > 1),
            "speed": speed,
        }
    )
    frame.to_parquet(path, index=False)
    return path


def convert_store(table, store, target, cwd):
    """`varlen convert` the table into a float64 store, its target TARGET."""
    run = run_cli(
        "convert", table, "--out", store, *COLUMNS, "--target", target, "--dtype", "float64",
        cwd=cwd,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.rstrip().endswith("(targets per step: the target varies within ids)")
    return store


def test_per_step_store_trains_and_predicts_as_its_table(tmp_path):
    """Per-step labels: the store trains and predicts as the table, bit for bit."""
    table = write_step_table(tmp_path / "t.parquet")
    store = convert_store(table, tmp_path / "s.arrow", "act", tmp_path)
    columns = (*COLUMNS, "--target", "act")
    from_table = run_cli("train", table, "--out", tmp_path / "a", *columns, *OPTIONS, cwd=tmp_path)
    assert from_table.returncode == 0, from_table.stderr
    from_store = run_cli("train", store, "--out", tmp_path / "b", *OPTIONS[:-1], cwd=tmp_path)
    assert from_store.returncode == 0, from_store.stderr
    assert "task: per-step labelling (one class per step): target 'act'" in from_store.stderr
    assert_same_weights(tmp_path / "a", tmp_path / "b")
    assert history(tmp_path / "b") == history(tmp_path / "a")
    assert "per-step 3 classes" in from_store.stdout

    on_table = run_cli("predict", tmp_path / "a", table, cwd=tmp_path)
    on_store = run_cli("predict", tmp_path / "b", store, cwd=tmp_path)
    assert on_store.returncode == 0, on_store.stderr
    assert on_store.stdout == on_table.stdout  # id, step, prediction, probabilities
    assert on_store.stdout.splitlines()[0] == "id,step,prediction,prob_0,prob_1,prob_2"
    assert on_store.stderr.strip() == on_table.stderr.strip()
    assert on_store.stderr.startswith("per-step accuracy ")


def test_per_step_store_regression_as_its_table_in_process(tmp_path, capsys):
    """Per-step values with missing ones: same weights, history, predictions and score."""
    table = write_step_table(tmp_path / "t.parquet", n=32, seed=2)
    store = convert_store(table, tmp_path / "s.arrow", "speed", tmp_path)
    args = [*COLUMNS, "--target", "speed", *OPTIONS]
    assert main(["train", str(table), "--out", str(tmp_path / "a"), *args]) == 0
    assert main(["train", str(store), "--out", str(tmp_path / "b"), *OPTIONS]) == 0
    assert_same_weights(tmp_path / "a", tmp_path / "b")
    assert history(tmp_path / "b") == history(tmp_path / "a")
    capsys.readouterr()
    outputs = []
    for model, data in (("a", table), ("b", store)):
        out = tmp_path / f"{model}.parquet"
        assert main(["predict", str(tmp_path / model), str(data), "--out", str(out)]) == 0
        outputs.append(pd.read_parquet(out))
        assert "per-step MAE" in capsys.readouterr().err
    pd.testing.assert_frame_equal(outputs[1], outputs[0])
    assert outputs[1]["prediction"].notna().all()


def test_per_step_store_inspect_and_refusals(tmp_path):
    """Inspect counts the per-step classes; --horizon is refused in one line; --test runs."""
    table = write_step_table(tmp_path / "t.parquet", n=16)
    store = convert_store(table, tmp_path / "s.arrow", "act", tmp_path)
    run = run_cli("inspect", store, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    labels = pd.read_parquet(table)["act"].value_counts().sort_index()
    counts = ", ".join(f"{label} {n}" for label, n in labels.items())
    assert run.stdout.splitlines()[1].startswith("store: format version 2, ")
    assert run.stdout.splitlines()[3] == (
        f"targets: per step, 3 classes: {counts} ({labels.sum()} steps)"
    )
    horizon = run_cli("train", store, "--out", tmp_path / "m", "--horizon", "1", cwd=tmp_path)
    assert horizon.returncode == 2
    assert horizon.stderr.count("\n") == 1
    assert "a store keeps its per-step targets apart from its features" in horizon.stderr
    tested = run_cli(
        "train", store, "--out", tmp_path / "m", "--test", store, "--epochs", "1",
        "--hidden-size", "4", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stderr
    assert "test: loss" in tested.stdout
    assert "per-step accuracy" in tested.stdout


def test_convert_refuses_a_malformed_per_step_target(tmp_path):
    """A per-step target that is not a number: one line naming file and row, exit 2, no file."""
    (tmp_path / "t.csv").write_text("id,t,v,y\n1,0,1,0\n1,1,2,1\n2,0,3,1\n2,1,4,walk\n")
    run = run_cli(
        "convert", "t.csv", "--out", "s.arrow", "--id", "id", "--order", "t", "--target", "y",
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() if "error" in line]
    assert len(errors) == 1
    assert errors[0] == run.stderr.splitlines()[-1]
    assert "t.csv: row 4 (line 5): target column 'y' varies within ids" in run.stderr
    assert "got 'walk'" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]
