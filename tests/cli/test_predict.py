"""`varlen predict` in-process: output tables, any lengths, and features that must match."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pandas as pd
import pytest

from tests.cli._data import sequences
from tests.cli.test_train import one_error_line
from varlen.cli import main
from varlen.cli._targets import normalize_inputs
from varlen.data.io.ts import read_ts, write_ts
from varlen.data.ragged import Ragged
from varlen.training.artifacts import load_model
from varlen.training.loop import predict_scores


def read_csv_text(text):
    """Rows of a CSV text as dicts."""
    return list(csv.DictReader(io.StringIO(text)))


def test_predict_ts_to_stdout_matches_the_python_api(ts_model, data_dir, capsys):
    """CSV on stdout: id, the original label, probabilities that match predict_scores."""
    assert main(["predict", str(ts_model), str(data_dir / "test.ts")]) == 0
    captured = capsys.readouterr()
    rows = read_csv_text(captured.out)
    assert list(rows[0]) == ["id", "prediction", "prob_down", "prob_up"]
    assert [row["id"] for row in rows] == [str(i) for i in range(20)]
    loaded = load_model(ts_model)
    x = normalize_inputs(read_ts(data_dir / "test.ts").x, loaded.normalizer)
    probabilities = predict_scores(loaded.model, x).softmax(dim=1).numpy()
    got = np.array([[float(row["prob_down"]), float(row["prob_up"])] for row in rows])
    np.testing.assert_allclose(got, probabilities, atol=1e-6)
    labels = np.array(["down", "up"])[probabilities.argmax(axis=1)]
    assert [row["prediction"] for row in rows] == labels.tolist()
    truth = read_ts(data_dir / "test.ts").y
    accuracy = float(np.mean(labels == np.asarray(truth)))
    assert captured.err == f"accuracy {accuracy:.4f} on 20 labelled sequences\n"  # DATA has labels


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_predict_writes_csv_or_parquet(ts_model, data_dir, tmp_path, capsys, suffix):
    """--out FILE writes the table in the suffix's format; stdout stays empty."""
    out = tmp_path / f"predictions{suffix}"
    assert main(["predict", str(ts_model), str(data_dir / "test.ts"), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"wrote 20 predictions to {out}" in captured.err
    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert list(frame.columns) == ["id", "prediction", "prob_down", "prob_up"]
    assert len(frame) == 20
    np.testing.assert_allclose(frame[["prob_down", "prob_up"]].sum(axis=1), 1.0, atol=1e-5)


def test_predict_series_of_any_length(ts_model, tmp_path, capsys):
    """Series much longer or shorter than in training, even empty, are all predicted."""
    rng = np.random.default_rng(0)
    lengths = [0, 1, 200, 3]
    x = Ragged(rng.normal(size=(sum(lengths), 2)), np.concatenate([[0], np.cumsum(lengths)]))
    write_ts(tmp_path / "new.ts", x, np.array(["up", "down", "up", "down"]))
    assert main(["predict", str(ts_model), str(tmp_path / "new.ts")]) == 0
    rows = read_csv_text(capsys.readouterr().out)
    assert len(rows) == 4
    assert all(row["prediction"] in ("down", "up") for row in rows)


def test_predict_bucketed_equals_one_at_a_time(ts_model, data_dir):
    """Bucketed batches give each sequence the same scores as running it alone."""
    loaded = load_model(ts_model)
    x = normalize_inputs(read_ts(data_dir / "test.ts").x, loaded.normalizer)
    bucketed = predict_scores(loaded.model, x, batch_size=7)
    alone = predict_scores(loaded.model, x, technique="one-at-a-time")
    np.testing.assert_allclose(bucketed.numpy(), alone.numpy(), atol=1e-5)


def test_predict_table_defaults_to_the_model_features(table_model, data_dir, capsys):
    """A table's features default to the model's columns, so extra columns are ignored."""
    argv = ["predict", str(table_model), str(data_dir / "test.csv"), "--id", "sid"]
    assert main([*argv, "--order", "step"]) == 0
    rows = read_csv_text(capsys.readouterr().out)
    assert [row["id"] for row in rows] == sorted(f"s{i:03d}" for i in range(12))


def test_predict_regression_values_in_target_units(data_dir, tmp_path, capsys):
    """Regression predictions are de-standardized into the target's units."""
    out = tmp_path / "m"
    argv = ["train", str(data_dir / "reg_train.ts"), "--out", str(out), "--epochs", "1"]
    assert main([*argv, "--hidden-size", "4", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["predict", str(out), str(data_dir / "reg_train.ts")]) == 0
    rows = read_csv_text(capsys.readouterr().out)
    assert list(rows[0]) == ["id", "prediction"]
    values = np.array([float(row["prediction"]) for row in rows])
    loaded = load_model(out)
    x = normalize_inputs(read_ts(data_dir / "reg_train.ts").x, loaded.normalizer)
    scaled = predict_scores(loaded.model, x).numpy()[:, 0]
    scaler = loaded.target_normalizer
    assert scaler is not None
    np.testing.assert_allclose(values, scaled * scaler.scale[0] + scaler.mean[0], rtol=1e-5)


def test_predict_feature_count_differs(ts_model, data_dir, tmp_path, capsys):
    """Series with another number of channels than in training: one line, exit code 2."""
    x, labels, _ = sequences(3, seed=0, features=3)
    write_ts(tmp_path / "three.ts", x, labels)
    assert main(["predict", str(ts_model), str(tmp_path / "three.ts")]) == 2
    assert one_error_line(capsys, "predict") == (
        "DATA features must match the model's 2 features ['dim_0', 'dim_1'], got 3: "
        "['dim_0', 'dim_1', 'dim_2']. Select them with --features in the training order."
    )


def test_predict_feature_names_differ(table_model, data_dir, capsys):
    """Explicit --features other than the model's: one line, exit code 2."""
    argv = ["predict", str(table_model), str(data_dir / "three.csv"), "--id", "sid"]
    assert main([*argv, "--features", "f0,f2"]) == 2
    assert "must match the model's 2 features ['f0', 'f1'], got 2: ['f0', 'f2']" in (
        one_error_line(capsys, "predict")
    )


def test_predict_missing_feature_column(table_model, tmp_path, capsys):
    """A table lacking one of the model's feature columns: one line naming it, exit 2."""
    frame = pd.DataFrame({"sid": [1, 1], "step": [0, 1], "f0": [0.5, 1.0]})
    frame.to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", str(table_model), str(tmp_path / "new.csv"), "--id", "sid"]) == 2
    message = one_error_line(capsys, "predict")
    assert message.startswith("DATA must have the model's feature columns ['f0', 'f1']: ")
    assert "'f1'" in message


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        ("none", "model directory '{model}' does not exist."),
        ("empty", "'{model}' must be a model directory holding config.json, got none."),
    ],
)
def test_predict_bad_model_directory(data_dir, tmp_path, capsys, setup, match):
    """A missing or empty model directory: one line, exit code 2."""
    model = tmp_path / "model"
    if setup == "empty":
        model.mkdir()
    assert main(["predict", str(model), str(data_dir / "test.ts")]) == 2
    assert match.format(model=model) in one_error_line(capsys, "predict")


def test_predict_bad_out_suffix(ts_model, data_dir, capsys):
    """--out must be .csv or .parquet."""
    argv = ["predict", str(ts_model), str(data_dir / "test.ts"), "--out", "p.json"]
    assert main(argv) == 2
    assert "--out must end in .csv or .parquet, got 'p.json'." in one_error_line(capsys, "predict")


def test_predict_defaults_to_the_recorded_table_options(table_model, data_dir, capsys):
    """Trained with --id sid --order step: predict on a shuffled table needs neither flag.

    It gives the predictions of the explicit flags (it used to read the rows in file order),
    and scores them with the recorded --target when the table has that column.
    """
    data = str(data_dir / "test.csv")
    assert main(["predict", str(table_model), data]) == 0
    recorded = capsys.readouterr()
    assert re.fullmatch(r"accuracy [\d.]+ on 12 labelled sequences\n", recorded.err)
    assert main(["predict", str(table_model), data, "--id", "sid", "--order", "step"]) == 0
    assert capsys.readouterr().out == recorded.out


def test_predict_says_when_a_flag_overrides_the_record(table_model, data_dir, capsys):
    """A flag that differs from the recorded choice wins, and one stderr line says so."""
    data = str(data_dir / "test.csv")
    assert main(["predict", str(table_model), data, "--order", "f0"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        "varlen predict: note: --order 'f0' overrides the model's recorded --order 'step'"
    )
    assert len(err) == 2  # and the score on the labelled table


def test_predict_names_a_recorded_column_that_is_missing(table_model, tmp_path, capsys):
    """A table without the recorded --order column: the error says where it came from."""
    frame = pd.DataFrame({"sid": [1, 1], "f0": [0.5, 1.0], "f1": [0.0, 1.0]})
    frame.to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", str(table_model), str(tmp_path / "new.csv")]) == 2
    message = one_error_line(capsys, "predict")
    assert "'step'" in message
    assert "--order 'step' recorded in the model directory" in message


def test_a_table_model_predicts_a_ts_file(table_model, tmp_path, capsys):
    """The recorded table options apply to tables only: a .ts file of the same features reads."""
    x, labels, _ = sequences(4, seed=3)
    write_ts(tmp_path / "new.ts", x, labels)
    assert main(["predict", str(table_model), str(tmp_path / "new.ts")]) == 2  # names differ
    assert "DATA features must match" in one_error_line(capsys, "predict")
