"""`varlen train` in-process: reports, model directories, tasks, techniques and bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from tests.cli.conftest import TINY
from varlen.cli import main
from varlen.data.io.ts import write_ts
from varlen.data.ragged import Ragged
from varlen.training.artifacts import load_model

TABLE = ("--id", "sid", "--order", "step", "--features", "f0,f1")


def test_train_ts_reports_and_saves_a_model(data_dir, tmp_path, capsys):
    """A .ts classification run prints the report on stdout and writes the model directory."""
    out = tmp_path / "model"
    argv = ["train", str(data_dir / "train.ts"), "--test", str(data_dir / "test.ts")]
    assert main([*argv, "--out", str(out), *TINY]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "data: train.ts: 38 train / 10 validation sequences, 2 features, 2 classes"
    assert re.match(r"technique: (mask|bucket) \(auto: .*estimated", lines[1])
    assert lines[2] == (
        "augment: on (19 training series a class on average, fewer than 20; lengths vary)"
    )
    assert re.fullmatch(r"epochs: 2 of 2 run \(10 optimizer steps\), best [12]", lines[3])
    assert lines[4].startswith("validation: loss ")
    assert lines[5].startswith("test: loss ")
    assert ", accuracy " in lines[5]
    assert lines[6].startswith("speed: ")
    assert "padding efficiency" in lines[6]
    assert lines[7] == f"model: {out}"
    assert captured.err == ""  # --quiet
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.pt",
        "config.json",
        "run.json",
        "weights.pt",
    ]
    loaded = load_model(out)
    assert loaded.labels == ("down", "up")
    assert loaded.features == ("dim_0", "dim_1")
    assert loaded.technique in ("mask", "bucket")
    assert len(loaded.metadata["history"]) == 2
    assert loaded.metadata["best_epoch"] in (1, 2)  # counted from 1, as in the summary
    assert [h["epoch"] for h in loaded.metadata["history"]] == [1, 2]


def test_train_prints_why_auto_picked_the_technique(data_dir, tmp_path, capsys):
    """Without --quiet, the auto choice and its reason also go to stderr before training.

    With ``--planner timed``, auto times mask and bucket on the data and quotes the speeds.
    """
    argv = ["train", str(data_dir / "train.ts"), "--out", str(tmp_path / "m")]
    assert main([*argv, "--epochs", "1", "--hidden-size", "4", "--planner", "timed"]) == 0
    err = capsys.readouterr().err
    assert re.search(
        r"technique: (mask|bucket) \(auto: timed on the data: mask [\d,]+, bucket [\d,]+ "
        r"real steps/s, (mask|bucket) chosen\)",
        err,
    )


@pytest.mark.parametrize("technique", ["pad-pre", "pack", "lanes"])
def test_train_explicit_technique(data_dir, tmp_path, capsys, technique):
    """Techniques of each kind (inexact, packed, lanes) train through the CLI and are saved."""
    out = tmp_path / "m"
    argv = ["train", str(data_dir / "train.ts"), "--out", str(out), "--technique", technique]
    assert main([*argv, *TINY, "--epochs", "1"]) == 0
    assert f"technique: {technique} (chosen with --technique)" in capsys.readouterr().out
    assert load_model(out).technique == technique


def test_train_regression_ts(data_dir, tmp_path, capsys):
    """Float targets infer regression: MAE in the report and a target standardizer saved."""
    out = tmp_path / "m"
    assert main(["train", str(data_dir / "reg_train.ts"), "--out", str(out), *TINY]) == 0
    report = capsys.readouterr().out
    assert ", regression" in report
    assert "MAE" in report
    loaded = load_model(out)
    assert loaded.labels is None
    assert loaded.model.config.task == "regression"
    assert loaded.target_normalizer is not None


def test_train_table_with_options_and_config_file(data_dir, tmp_path, capsys):
    """Table columns and options come from --config TOML; flags override it."""
    config = tmp_path / "run.toml"
    config.write_text(
        'id = "sid"\norder = "step"\nfeatures = ["f0", "f1"]\ntarget = "label"\n'
        "[train]\nepochs = 1\nhidden_size = 6\ncell = 'gru'\npooling = 'mean'\n"
    )
    out = tmp_path / "m"
    argv = ["train", str(data_dir / "train.csv"), "--config", str(config), "--out", str(out)]
    assert main([*argv, "--hidden-size", "5", "--quiet"]) == 0
    loaded = load_model(out)
    assert (loaded.model.config.cell, loaded.model.config.pooling) == ("gru", "mean")
    assert loaded.model.config.hidden_size == 5  # the flag wins over the file
    assert loaded.features == ("f0", "f1")
    assert loaded.metadata["options"]["epochs"] == 1


def test_train_without_validation(data_dir, tmp_path, capsys):
    """--val-fraction 0 trains on everything; the report has no validation scores."""
    argv = ["train", str(data_dir / "train.ts"), "--out", str(tmp_path / "m")]
    assert main([*argv, "--val-fraction", "0", *TINY]) == 0
    out = capsys.readouterr().out
    assert "48 train / 0 validation" in out
    assert "validation: loss" not in out


def test_train_model_options_reach_the_model(data_dir, tmp_path):
    """--cell, --num-layers, --bidirectional, --pooling and --dropout shape the saved model."""
    out = tmp_path / "m"
    options = ["--cell", "gru", "--num-layers", "2", "--bidirectional", "--pooling", "max"]
    argv = ["train", str(data_dir / "train.ts"), "--out", str(out), *options, "--dropout", "0.1"]
    assert main([*argv, *TINY, "--epochs", "1"]) == 0
    config = load_model(out).model.config
    assert (config.cell, config.num_layers, config.bidirectional) == ("gru", 2, True)
    assert (config.pooling, config.dropout, config.hidden_size) == ("max", 0.1, 8)


def test_train_same_seed_same_weights(data_dir, tmp_path):
    """Two runs with the same seed write identical weights; another seed differs.

    ``auto`` and the budget are planned from the data, not timed, so nothing else is needed.
    """
    weights = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        out = tmp_path / name
        argv = ["train", str(data_dir / "train.ts"), "--out", str(out), "--seed", str(seed)]
        assert main([*argv, *TINY]) == 0
        weights.append((out / "weights.pt").read_bytes())
    assert weights[0] == weights[1]
    assert weights[0] != weights[2]


def one_error_line(capsys, command="train"):
    """Return the error message after checking it is one line on stderr and stdout is empty."""
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    prefix = f"varlen {command}: error: "
    assert captured.err.startswith(prefix)
    return captured.err[len(prefix) :].strip()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (
            ("--task", "regression"),
            "target must be numbers for regression, got 'up' for sequence 's000'",
        ),
        (("--target", "nope"), "target must name a column of the table, got 'nope'"),
        (("--target", "step"), "must be constant within each id"),
        (("--val-fraction", "1.5"), "val_fraction must be in [0, 1), got 1.5."),
        (("--epochs", "0"), "train: epochs must be >= 1, got 0."),
        (("--lr", "-1"), "train: lr must be finite and > 0, got -1.0."),
        (("--lr", "inf"), "train: lr must be finite and > 0, got inf."),
        (("--dropout", "1"), "train: dropout must be in [0, 1), got 1.0."),
        (("--test", "missing.csv"), "DATA file 'missing.csv' does not exist."),
    ],
)
def test_train_bad_table_input_is_one_line(data_dir, tmp_path, capsys, monkeypatch, extra, match):
    """Targets that do not fit, missing columns and bad values: one line, exit code 2."""
    monkeypatch.chdir(tmp_path)
    argv = ["train", str(data_dir / "train.csv"), *TABLE, "--out", str(tmp_path / "m")]
    if "--target" not in extra:
        argv += ["--target", "label"]
    assert main([*argv, *TINY, *extra]) == 2
    assert match in one_error_line(capsys)


def test_train_regression_target_for_classification(data_dir, tmp_path, capsys):
    """Fractional targets with --task classification: one line naming the value, exit 2."""
    argv = ["train", str(data_dir / "train.csv"), *TABLE, "--target", "value"]
    assert main([*argv, "--task", "classification", "--out", str(tmp_path / "m")]) == 2
    message = one_error_line(capsys)
    assert "target must hold class labels for classification, got the fractional number" in message
    assert "Use --task regression" in message


def test_train_single_class_is_an_error(tmp_path, capsys):
    """Classification needs two classes."""
    from varlen.data.io.ts import write_ts
    from varlen.data.ragged import Ragged

    path = tmp_path / "one.ts"
    write_ts(path, Ragged(np.ones((4, 1)), np.array([0, 2, 4])), np.array(["a", "a"]))
    assert main(["train", str(path), "--out", str(tmp_path / "m")]) == 2
    assert "at least 2 classes" in one_error_line(capsys)


def test_train_test_features_must_match(data_dir, tmp_path, capsys):
    """A --test table with other feature columns than the training table: one line, exit 2."""
    import pandas as pd

    for name in ("train", "three"):
        frame = pd.read_csv(data_dir / f"{name}.csv").drop(columns=["value"])
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    argv = ["train", str(tmp_path / "train.csv"), "--id", "sid", "--order", "step"]
    argv += ["--target", "label", "--test", str(tmp_path / "three.csv")]
    assert main([*argv, "--out", str(tmp_path / "m")]) == 2
    message = one_error_line(capsys)
    assert message == (
        "--test features must equal the training features ['f0', 'f1'], got ['f0', 'f1', 'f2']."
    )


def test_train_test_labels_must_be_known(tmp_path, capsys):
    """A --test label never seen in training: one line naming it, exit 2."""
    from varlen.data.io.ts import write_ts
    from varlen.data.ragged import Ragged

    x = Ragged(np.arange(8.0).reshape(-1, 1), np.array([0, 2, 4, 6, 8]))
    write_ts(tmp_path / "tr.ts", x, np.array(["a", "b", "a", "b"]))
    write_ts(tmp_path / "te.ts", x, np.array(["a", "b", "c", "b"]))
    argv = ["train", str(tmp_path / "tr.ts"), "--test", str(tmp_path / "te.ts")]
    assert main([*argv, "--out", str(tmp_path / "m")]) == 2
    assert "got 'c' for sequence 2" in one_error_line(capsys)


def test_train_resume_refuses_changed_options(data_dir, tmp_path, capsys):
    """--resume with other options than the interrupted run: one line naming the option."""
    out = tmp_path / "m"
    argv = ["train", str(data_dir / "train.ts"), "--out", str(out), *TINY]
    assert main(argv) == 0
    capsys.readouterr()
    assert main([*argv, "--resume", "--lr", "0.1"]) == 2
    message = one_error_line(capsys)
    assert "--lr must be 0.003 as recorded (or left out), got 0.1" in message
    saved = json.loads((out / "run.json").read_text())
    assert saved["options"]["lr"] == 0.003


def test_train_resume_after_completion_changes_nothing(data_dir, tmp_path, capsys):
    """--resume of a finished run trains no more epochs and saves the same weights."""
    out = tmp_path / "m"
    argv = ["train", str(data_dir / "train.ts"), "--out", str(out), *TINY]
    assert main(argv) == 0
    before = (out / "weights.pt").read_bytes()
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0
    assert (out / "weights.pt").read_bytes() == before
    assert "epochs: 2 of 2 run" in capsys.readouterr().out


def test_plan_steps_fits_the_time_budget_and_keeps_a_floor():
    """The step plan shrinks to the time budget, never below min_steps, and says why."""
    from varlen.cli._train_plan import plan_steps

    assert plan_steps(2000, 300.0, 0.1, min_steps=50)[0] == 2000
    steps, why = plan_steps(2000, 300.0, 1.0, min_steps=50)
    assert steps == 300
    assert "over the --time-budget of 300 s" in why
    assert plan_steps(2000, 300.0, 60.0, min_steps=50)[0] == 50
    assert plan_steps(2000, None, 60.0)[0] == 2000


def test_plan_validation_skips_a_split_too_small_to_select_on():
    """Fewer than min_per_class validation series of some class: no split, and a warning."""
    from varlen.cli._train_plan import plan_validation

    five_each = np.repeat(np.arange(10), 5)
    fraction, warning = plan_validation(five_each, 0.2, classification=True)
    assert fraction == 0.0
    assert "holds only 1 series of some class (fewer than 3)" in warning
    assert plan_validation(five_each, 0.2, classification=True, min_per_class=1) == (0.2, "")
    assert plan_validation(np.repeat(np.arange(3), 30), 0.2, classification=True) == (0.2, "")
    assert plan_validation(np.zeros(30), 0.2, classification=False)[0] == 0.0
    assert plan_validation(np.zeros(50), 0.2, classification=False) == (0.2, "")


def test_choose_by_timing_keeps_the_preferred_within_the_margin():
    """Mask stays unless another technique is more than `margin` faster."""
    from varlen.training.techniques import Timing, choose_by_timing

    timings = {"mask": Timing(1000, 1.0, 3), "bucket": Timing(1150, 1.0, 3)}
    assert choose_by_timing(timings, margin=0.2)[0] == "mask"
    name, why = choose_by_timing(timings, margin=0.1)
    assert name == "bucket"
    assert why == "timed on the data: mask 1,000, bucket 1,150 real steps/s, bucket chosen"
    with pytest.raises(ValueError, match="at least one technique"):
        choose_by_timing({})


def test_default_plan_is_made_from_the_data(data_dir, tmp_path, capsys):
    """By default the technique and the budget come from the data, not from timings.

    ``--pool``, ``--select`` and ``--augment`` reach the model and the run record.
    """
    out = tmp_path / "m"
    argv = ["train", str(data_dir / "train.ts"), "--out", str(out), *TINY, "--pool", "4"]
    assert main([*argv, "--select", "loss", "--conv-layers", "2", "--augment"]) == 0
    report = capsys.readouterr().out
    assert re.search(r"technique: (mask|bucket) \(auto: .*estimated", report)
    assert "augment: on (--augment)" in report
    assert "timed" not in report
    loaded = load_model(out)
    assert loaded.model.config.conv_pools == (2, 2)
    assert loaded.metadata["options"]["select"] == "loss"
    assert loaded.metadata["options"]["augment"] is True
    assert loaded.metadata["options"]["planner"] == "cost"


def test_readout_is_chosen_from_the_lengths(tmp_path, capsys):
    """Left out, --pooling is max over long windows of one length (recorded as None).

    The reason is printed; ``--pooling`` given decides; short series keep the mean (the other
    tests' data).
    """
    rng = np.random.default_rng(0)
    lengths = np.full(12, 200)
    x = Ragged(rng.normal(size=(int(lengths.sum()), 1)), np.arange(13) * 200)
    write_ts(tmp_path / "long.ts", x, np.where(np.arange(12) % 2 == 0, "a", "b"))
    tiny = [option for option in TINY if option != "--quiet"]  # the plan's lines on stderr
    argv = ["train", str(tmp_path / "long.ts"), *tiny, "--conv-layers", "1", "--val-fraction", "0"]
    assert main([*argv, "--out", str(tmp_path / "m")]) == 0
    err = capsys.readouterr().err
    assert "readout: max over real steps (long windows of about one length, 200-200" in err
    loaded = load_model(tmp_path / "m")
    assert loaded.model.config.pooling == "max"
    assert loaded.metadata["options"]["pooling"] is None
    assert main([*argv, "--out", str(tmp_path / "g"), "--pooling", "mean"]) == 0
    assert load_model(tmp_path / "g").model.config.pooling == "mean"


def test_levels_are_chosen_from_the_data(tmp_path, capsys):
    """Left out, --levels is off for one channel of few series a class whose lengths vary.

    The model then reads each series standardized only (recorded: the model's levels False,
    the option None) and scores a series as it scores it shifted and rescaled; the reason is
    printed; ``--levels`` given decides; several channels keep them.
    """
    rng = np.random.default_rng(1)
    lengths = np.arange(12) * 7 + 10  # 10-87 steps
    x = Ragged(rng.normal(size=(int(lengths.sum()), 1)), np.concatenate([[0], np.cumsum(lengths)]))
    labels = np.where(np.arange(12) % 2 == 0, "a", "b")
    write_ts(tmp_path / "few.ts", x, labels)
    tiny = [option for option in TINY if option != "--quiet"]  # the plan's lines on stderr
    argv = ["train", str(tmp_path / "few.ts"), *tiny, "--val-fraction", "0"]
    assert main([*argv, "--out", str(tmp_path / "m")]) == 0
    err = capsys.readouterr().err
    assert "levels: dropped: each series standardized only (one channel, 6 training series" in err
    loaded = load_model(tmp_path / "m")
    assert loaded.model.config.levels is False
    assert loaded.metadata["options"]["levels"] is None
    one = torch.tensor(x[0], dtype=torch.float32)[None]
    with torch.no_grad():
        scores = loaded.model(one), loaded.model(4.0 * one + 3.0)
    torch.testing.assert_close(scores[0], scores[1], rtol=1e-4, atol=1e-4)
    assert main([*argv, "--out", str(tmp_path / "k"), "--levels"]) == 0
    assert "levels: kept (--levels)" in capsys.readouterr().err
    assert load_model(tmp_path / "k").model.config.levels is True
    two = Ragged(np.repeat(x.values, 2, axis=1), x.offsets)
    write_ts(tmp_path / "two.ts", two, labels)
    argv[1] = str(tmp_path / "two.ts")
    assert main([*argv, "--out", str(tmp_path / "t")]) == 0
    assert "levels: kept (2 channels" in capsys.readouterr().err
    assert load_model(tmp_path / "t").model.config.levels is True


def test_pool_without_convolutions_is_refused(data_dir, tmp_path, capsys):
    """--pool needs the front-end: one error line that says how to fix it."""
    argv = ["train", str(data_dir / "train.ts"), "--out", str(tmp_path / "m"), *TINY]
    assert main([*argv, "--conv-layers", "0", "--pool", "2"]) == 2
    assert "--pool 2 needs the convolutional front-end" in one_error_line(capsys)
