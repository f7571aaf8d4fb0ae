"""Per-step tasks through the CLI as a user runs it: a long table whose target varies by step."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.cli._data import run_cli
from varlen.cli import main
from varlen.cli._steps import read_step_table, varies_within
from varlen.data.ragged import Ragged
from varlen.training import load_model

REGIMES = np.array(["sit", "walk", "run"])
MEANS = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, -1.0]])
TABLE = ("--id", "user", "--order", "t")
FAST = ("--epochs", "6", "--hidden-size", "16", "--batch-size", "8", "--lr", "0.02")


def activity_table(path: Path, n: int, seed: int) -> pd.DataFrame:
    """Write a long table: per user 20..200 steps; the activity switches now and then.

    Columns: user, t, acc_x, acc_y (noisy, activity-dependent), activity (the per-step label)
    and speed (a per-step value); rows shuffled.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        regime = int(rng.integers(0, 3))
        for t in range(int(rng.integers(20, 201))):
            if rng.random() < 0.05:
                regime = int(rng.integers(0, 3))
            f = MEANS[regime] + rng.normal(0, 0.7, 2)
            speed = 1.5 * regime + rng.normal(0, 0.1)
            rows.append((f"u{i:03d}", t, f[0], f[1], REGIMES[regime], speed))
    columns = ["user", "t", "acc_x", "acc_y", "activity", "speed"]
    frame = pd.DataFrame(rows, columns=columns).sample(frac=1.0, random_state=seed)
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Train and test tables with per-step targets."""
    folder = tmp_path_factory.mktemp("steps")
    activity_table(folder / "train.csv", 40, seed=0)
    activity_table(folder / "test.csv", 10, seed=1)
    return {"train": folder / "train.csv", "test": folder / "test.csv"}


def _alone_predictions(model_dir: Path, table: Path) -> list[np.ndarray]:
    """Each sequence of the table scored alone by the saved model (the oracle)."""
    loaded = load_model(model_dir)
    steps = read_step_table(table, id="user", order="t", features=loaded.features, target=None)
    assert loaded.normalizer is not None
    x = loaded.normalizer.transform(steps.x)
    with torch.no_grad():
        return [loaded.model(torch.tensor(seq, dtype=torch.float32)[None])[0].numpy() for seq in x]


def test_train_and_predict_labelling_per_step(tables, tmp_path):
    """A varying target gives a per-step labeller (said in one line); predict writes each step."""
    train = run_cli(
        "train", tables["train"], *TABLE, "--target", "activity", "--features", "acc_x,acc_y",
        "--test", tables["test"], "--out", "model", "--bidirectional", *FAST, cwd=tmp_path,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    task_lines = [line for line in train.stderr.splitlines() if line.startswith("task:")]
    assert task_lines == [
        "task: per-step labelling (one class per step): target 'activity' varies within sequences"
    ]
    found = re.search(r"^test: loss [\d.]+, per-step accuracy ([\d.]+)$", train.stdout, re.M)
    assert found is not None, train.stdout
    assert float(found[1]) > 0.7  # chance is 1/3; the noise is resolved over a few steps
    predict = run_cli("predict", "model", tables["test"], "--out", "p.csv", cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr
    pattern = r"^per-step accuracy ([\d.]+) on (\d+) labelled steps$"
    scored = re.search(pattern, predict.stderr, re.M)
    assert scored is not None, predict.stderr  # the recorded target scores labelled DATA
    out = pd.read_csv(tmp_path / "p.csv")
    test = pd.read_csv(tables["test"]).sort_values(["user", "t"]).reset_index(drop=True)
    assert list(out.columns) == ["id", "t", "prediction", "prob_run", "prob_sit", "prob_walk"]
    assert len(out) == len(test)
    assert out["id"].tolist() == test["user"].tolist()
    assert out["t"].tolist() == test["t"].tolist()
    probabilities = out[["prob_run", "prob_sit", "prob_walk"]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    alone = np.concatenate(_alone_predictions(tmp_path / "model", tables["test"]))
    labels = np.array(["run", "sit", "walk"])
    assert out["prediction"].tolist() == labels[alone.argmax(axis=1)].tolist()
    assert (out["prediction"] == test["activity"]).mean() > 0.7
    assert float(scored[1]) == pytest.approx((out["prediction"] == test["activity"]).mean(), 1e-4)
    assert int(scored[2]) == len(test)


def test_train_and_predict_forecaster(tables, tmp_path):
    """--horizon 1 trains a causal forecaster of the target; predict gives one value per step."""
    train = run_cli(
        "train", tables["train"], *TABLE, "--target", "speed", "--features", "acc_x,acc_y",
        "--horizon", "1", "--test", tables["test"], "--out", "model", *FAST, cwd=tmp_path,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    assert "task: per-step forecasting: each step forecasts 'speed' 1 step ahead" in train.stderr
    found = re.search(r"^test: loss [\d.]+ \(MSE.*\), per-step MAE ([\d.]+)$", train.stdout, re.M)
    assert found is not None, train.stdout
    test = pd.read_csv(tables["test"]).sort_values(["user", "t"])
    naive = np.mean(np.abs(test["speed"] - test["speed"].mean()))  # predicting the mean
    assert float(found[1]) < 0.5 * naive
    assert load_model(tmp_path / "model").features == ("acc_x", "acc_y", "speed")
    predict = run_cli("predict", "model", tables["test"], cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr
    lines = predict.stdout.splitlines()
    assert lines[0] == "id,t,prediction"
    assert len(lines) == 1 + len(test)


def test_forecaster_refuses_bidirectional(tables, tmp_path, capsys):
    """--horizon with --bidirectional exits 2 and says why, before reading the data."""
    args = ["train", str(tables["train"]), *TABLE, "--target", "speed", "--horizon", "1"]
    assert main([*args, "--bidirectional", "--out", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err.strip() == (
        "varlen train: error: --bidirectional cannot be used with --horizon 1: a forecaster "
        "must be causal, and the backward direction reads the very steps it forecasts. Drop "
        "--bidirectional (labelling without --horizon may be bidirectional)."
    )


def test_per_step_regression_in_process(tables, tmp_path, capsys):
    """A float target varying by step trains a per-step regressor; stdout reports per-step MAE."""
    args = ["train", str(tables["train"]), *TABLE, "--target", "speed"]
    code = main([*args, "--features", "acc_x,acc_y", "--out", str(tmp_path / "m"), *FAST])
    assert code == 0
    captured = capsys.readouterr()
    assert "task: per-step regression: target 'speed' varies within sequences" in captured.err
    assert "per-step values" in captured.out
    assert re.search(r"^validation: .*per-step MAE [\d.]+$", captured.out, re.M)


def test_per_step_resume_equals_uninterrupted(tables, tmp_path):
    """--resume after a run stopped by its time limit (1 epoch) equals an uninterrupted run."""
    base = ["train", str(tables["train"]), *TABLE, "--target", "activity", "--quiet"]
    base += ["--features", "acc_x,acc_y", "--hidden-size", "8", "--batch-size", "16"]
    base += ["--epochs", "3", "--bidirectional"]
    assert main([*base, "--out", str(tmp_path / "whole")]) == 0
    assert main([*base, "--out", str(tmp_path / "cut"), "--time-limit", "1e-6"]) == 0
    cut = json.loads((tmp_path / "cut" / "config.json").read_text())["metadata"]
    assert len(cut["history"]) == 1
    # the record gives every option: --resume needs no --id, --target, ... (and takes
    # --bidirectional given again with its recorded value)
    again = ["train", str(tables["train"]), "--out", str(tmp_path / "cut"), "--resume"]
    assert main([*again, "--bidirectional", "--quiet"]) == 0
    whole = load_model(tmp_path / "whole").model.state_dict()
    resumed = load_model(tmp_path / "cut").model.state_dict()
    for name, tensor in whole.items():
        torch.testing.assert_close(resumed[name], tensor, msg=name)
    changed = main([*base, "--out", str(tmp_path / "cut"), "--resume", "--hidden-size", "9"])
    assert changed == 2


def test_per_step_resume_refuses_without_its_record(tables, tmp_path, capsys):
    """A checkpoint without run.json: --resume stops with one line, the checkpoint kept."""
    base = ["train", str(tables["train"]), *TABLE, "--target", "activity", "--quiet"]
    base += ["--features", "acc_x,acc_y", "--hidden-size", "4", "--epochs", "1"]
    assert main([*base, "--out", str(tmp_path / "m")]) == 0
    (tmp_path / "m" / "run.json").unlink()
    before = (tmp_path / "m" / "checkpoint.pt").read_bytes()
    assert main([*base, "--out", str(tmp_path / "m"), "--resume"]) == 2
    assert "--resume needs" in capsys.readouterr().err
    assert (tmp_path / "m" / "checkpoint.pt").read_bytes() == before


def test_per_step_options_apply(tables, tmp_path, capsys):
    """--steps, --schedule, --warmup, --conv-layers and --series-norm reach a per-step run."""
    args = ["train", str(tables["train"]), *TABLE, "--target", "activity", "--quiet"]
    args += ["--features", "acc_x,acc_y", "--hidden-size", "4", "--batch-size", "16"]
    args += ["--steps", "4", "--schedule", "cosine", "--warmup", "1", "--time-budget", "60"]
    args += ["--conv-layers", "1", "--conv-channels", "3", "--series-norm"]
    assert main([*args, "--weight-decay", "0.1", "--out", str(tmp_path / "m")]) == 0
    assert "epochs: 2 of 2 run (4 optimizer steps)" in capsys.readouterr().out
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model"]["conv_channels"] == [3]
    assert config["model"]["series_norm"] is True
    assert config["metadata"]["optimizer_steps"] == 4


def test_per_step_missing_labels_train_on_the_labelled_steps(tables, tmp_path):
    """Steps whose label is missing are left out of the loss: the run trains and scores."""
    frame = pd.read_csv(tables["train"])
    frame.loc[frame.index[::3], "activity"] = np.nan
    frame.loc[frame.index[::5], "speed"] = np.nan
    frame.to_csv(tmp_path / "holes.csv", index=False)
    for target in ("activity", "speed"):
        args = ["train", str(tmp_path / "holes.csv"), *TABLE, "--target", target, "--quiet"]
        args += ["--features", "acc_x,acc_y", "--hidden-size", "4", "--epochs", "1"]
        assert main([*args, "--out", str(tmp_path / target)]) == 0
        metadata = json.loads((tmp_path / target / "config.json").read_text())["metadata"]
        assert math.isfinite(metadata["scores"]["validation"]["metric"])


def test_constant_target_stays_per_sequence(tmp_path, capsys):
    """A target constant within each id keeps the per-sequence task (no per-step line)."""
    frame = pd.DataFrame(
        {
            "user": np.repeat(["a", "b", "c", "d"], 5),
            "t": np.tile(np.arange(5), 4),
            "v": np.arange(20.0),
            "y": np.repeat(["p", "q", "p", "q"], 5),
        }
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    args = ["train", str(tmp_path / "t.csv"), *TABLE, "--target", "y", "--epochs", "1"]
    assert main([*args, "--out", str(tmp_path / "m"), "--val-fraction", "0"]) == 0
    captured = capsys.readouterr()
    assert "per-step" not in captured.err + captured.out
    assert not load_model(tmp_path / "m").model.config.per_step


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ("--target", "activity", "--technique", "lanes"),
            "--technique must be one of ['bucket', 'mask', 'pack'] (or auto) for a per-step "
            "task, got 'lanes'",
        ),
        (("--target", "nothing"), "target must name a column of the table, got 'nothing'"),
        (("--target", "activity", "--pooling", "max"), "--pooling max pools each sequence"),
        (("--target", "activity", "--pool", "2"), "--pool 2 shortens each sequence"),
        (("--target", "activity", "--augment"), "--augment crops and warps whole sequences"),
        (("--target", "activity", "--conv-channels", "8"), "--conv-channels 8 sets the channels"),
        (("--target", "activity", "--time-budget", "9"), "--time-budget 9 plans a budget of"),
        (
            ("--target", "speed", "--horizon", "1", "--conv-layers", "2"),
            "--conv-layers 2 cannot be used with --horizon 1",
        ),
    ],
    ids=[
        "technique",
        "missing-target",
        "pooling",
        "pool",
        "augment",
        "channels",
        "budget",
        "forecaster-conv",
    ],
)
def test_per_step_bad_options(tables, tmp_path, capsys, extra, message):
    """Bad per-step options exit 2 with one line naming them."""
    code = main(["train", str(tables["train"]), *TABLE, *extra, "--out", str(tmp_path / "m")])
    assert code == 2
    assert message in capsys.readouterr().err


def test_horizon_needs_a_table(tmp_path, capsys):
    """--horizon on a .ts file is refused with the reason."""
    (tmp_path / "x.ts").write_text("@problemName x\n@classLabel true a b\n@data\n1,2:a\n")
    assert main(["train", str(tmp_path / "x.ts"), "--horizon", "1"]) == 2
    assert "--horizon 1 forecasts a per-step target: it needs a table" in capsys.readouterr().err


def test_predict_per_step_model_needs_a_table(tables, tmp_path, capsys):
    """A per-step model predicts tables only."""
    base = ["train", str(tables["train"]), *TABLE, "--target", "activity", "--quiet"]
    assert (
        main([*base, "--features", "acc_x,acc_y", "--epochs", "1", "--out", str(tmp_path / "m")])
        == 0
    )
    (tmp_path / "x.ts").write_text("@problemName x\n@classLabel true a b\n@data\n1,2:a\n")
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "x.ts")]) == 2
    assert "must be a .csv or .parquet table for a per-step model" in capsys.readouterr().err


def test_varies_within_reads_each_sequence():
    """varies_within is True only when some sequence holds two different values."""
    x = Ragged.from_sequences([np.zeros((2, 1)), np.zeros((0, 1)), np.zeros((3, 1))])
    assert not varies_within(x, np.array(["a", "a", "b", "b", "b"], dtype=object))
    assert varies_within(x, np.array([1.0, 1.0, 2.0, 2.0, 3.0]))


def test_per_step_cli_errors_name_the_problem(tables, tmp_path, capsys):
    """A .ts test file, a single class and mismatched predict features each exit 2, one line."""
    base = ["train", str(tables["train"]), *TABLE, "--features", "acc_x,acc_y", "--quiet"]
    (tmp_path / "x.ts").write_text("@problemName x\n@classLabel true a b\n@data\n1,2:a\n")
    args = [*base, "--target", "activity", "--test", str(tmp_path / "x.ts")]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    assert "--test must be a table like DATA for a per-step task" in capsys.readouterr().err
    frame = pd.read_csv(tables["train"]).assign(kind="x")
    frame.loc[frame.index[0], "kind"] = "y"  # varies, but only in one sequence
    frame = frame[frame["kind"] == "x"].assign(phase=lambda f: np.where(f["t"] % 2, "x", "x"))
    frame.loc[frame.index[:3], "phase"] = "z"
    frame.to_csv(tmp_path / "one.csv", index=False)
    args = ["train", str(tmp_path / "one.csv"), *TABLE, "--features", "acc_x,acc_y"]
    assert (
        main([*args, "--target", "phase", "--task", "regression", "--out", str(tmp_path / "b")])
        == 2
    )
    assert "target must be numbers for regression, got 'x' for sequence" in capsys.readouterr().err
    assert main([*base, "--target", "activity", "--epochs", "1", "--out", str(tmp_path / "m")]) == 0
    code = main(["predict", str(tmp_path / "m"), str(tables["test"]), "--features", "acc_x"])
    assert code == 2
    assert "DATA features must match the model's ['acc_x', 'acc_y']" in capsys.readouterr().err


def test_single_class_per_step_target_is_refused(tmp_path, capsys):
    """Labelling needs two classes; a forecast target must be numeric (it is also an input)."""
    frame = pd.DataFrame({"user": ["a"] * 3 + ["b"] * 2, "t": [0, 1, 2, 0, 1], "v": np.arange(5.0)})
    frame["y"] = 1
    frame.to_csv(tmp_path / "t.csv", index=False)
    args = ["train", str(tmp_path / "t.csv"), *TABLE, "--target", "y", "--horizon", "1"]
    assert main([*args, "--task", "classification", "--out", str(tmp_path / "m")]) == 2
    assert "target must have at least 2 classes for labelling" in capsys.readouterr().err
    frame["y"] = "p"
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert main([*args, "--out", str(tmp_path / "m")]) == 2
    assert "so target 'y' must be a numeric column, got dtype" in capsys.readouterr().err
