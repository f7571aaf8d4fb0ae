"""Shared CLI pieces: TOML configs under flags, the data loader, target encoding."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from tests.cli._data import sequences, write_table_file, write_ts_file
from tests.cli._fake_command import FakeOptions
from varlen.cli._common import CommandError, build_config, load_data, progress_enabled
from varlen.cli._targets import encode_targets, infer_task, normalize_inputs
from varlen.data.normalize import Standardizer
from varlen.data.ragged import Ragged


def namespace(**values):
    """Parsed arguments holding ``values``."""
    return argparse.Namespace(**values)


# ----------------------------------------------------------------------------- configs


def test_build_config_defaults_without_file_or_flags():
    """No --config and no flags: the dataclass defaults."""
    assert build_config(FakeOptions, namespace(config=None), command="fake") == FakeOptions()


def test_build_config_flags_override_toml(tmp_path):
    """TOML top-level keys, then the [command] table, then the given flags."""
    path = tmp_path / "run.toml"
    path.write_text('count = 3\nrate = 2\nmode = "b"\n[fake]\nmode = "c"\n[other]\nmode = "d"\n')
    config = build_config(FakeOptions, namespace(config=path, count=7), command="fake")
    assert config == FakeOptions(count=7, rate=2.0, mode="c")


def test_build_config_accepts_dashed_keys(tmp_path):
    """TOML keys may be spelled like the flags (raise-) or like the fields (raise_)."""
    path = tmp_path / "run.toml"
    path.write_text('raise- = "value"\n')
    assert build_config(FakeOptions, namespace(config=path), command="fake").raise_ == "value"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "epochs = 3\n",
            r"key 'epochs' must be one of \['count', 'mode', 'name', 'raise_', 'rate'\]",
        ),
        ('count = "3"\n', r"count must be an integer, got '3'\."),
        ("count = true\n", r"count must be an integer, got True\."),
        ("rate = 'fast'\n", r"rate must be a number, got 'fast'\."),
        ("name = 3\n", r"name must be a string, got 3\."),
        ("count = \n", r"invalid TOML"),
        ("fake = 3\n", r"\[fake\] must be a table"),
    ],
)
def test_build_config_rejects_bad_toml(tmp_path, text, match):
    """Unknown keys, wrong types and invalid TOML are CommandErrors naming the file."""
    path = tmp_path / "run.toml"
    path.write_text(text)
    with pytest.raises(CommandError, match=match):
        build_config(FakeOptions, namespace(config=path), command="fake")


def test_build_config_missing_file_is_oserror(tmp_path):
    """A --config file that does not exist raises FileNotFoundError (exit code 2)."""
    with pytest.raises(FileNotFoundError):
        build_config(FakeOptions, namespace(config=tmp_path / "nope.toml"), command="fake")


def test_build_config_literal_and_tuple_fields(tmp_path):
    """Literal fields accept only their choices; tuple fields take lists of strings."""
    from varlen.cli.train import TrainOptions

    path = tmp_path / "run.toml"
    path.write_text('task = "regression"\nfeatures = ["a", "b"]\npatience = 0\n')
    config = build_config(TrainOptions, namespace(config=path, data=Path("x.ts")), command="train")
    assert (config.task, config.features, config.patience) == ("regression", ("a", "b"), 0)
    path.write_text('task = "clustering"\n')
    with pytest.raises(CommandError, match=r"task must be 'auto' or 'classification'"):
        build_config(TrainOptions, namespace(config=path, data=Path("x.ts")), command="train")
    path.write_text("features = [1]\n")
    with pytest.raises(CommandError, match=r"features must be a list of strings"):
        build_config(TrainOptions, namespace(config=path, data=Path("x.ts")), command="train")


# ----------------------------------------------------------------------------- data


def test_load_data_ts(tmp_path):
    """A .ts file: its cases, string labels, dim_k feature names and case numbers as ids."""
    path = write_ts_file(tmp_path / "d.ts", 10)
    x, labels, _ = sequences(10, seed=0)
    data = load_data(path)
    assert data.x == x
    np.testing.assert_array_equal(data.y, labels)
    assert data.features == ("dim_0", "dim_1")
    np.testing.assert_array_equal(data.ids, np.arange(10))
    assert data.class_labels == ("down", "up")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_load_data_table(tmp_path, suffix):
    """CSV and Parquet long tables give the same sequences, sorted by id."""
    path = write_table_file(tmp_path / f"d{suffix}", 10)
    x, labels, _ = sequences(10, seed=0)
    data = load_data(path, id="sid", order="step", features=["f0", "f1"], target="label")
    np.testing.assert_allclose(data.x.values, x.values)
    np.testing.assert_array_equal(data.x.offsets, x.offsets)
    np.testing.assert_array_equal(data.y, labels)
    assert data.features == ("f0", "f1")
    assert data.ids[0] == "s000"


def test_load_data_missing_file(tmp_path):
    """A missing file names the path."""
    with pytest.raises(FileNotFoundError, match=r"DATA file '.*gone.ts' does not exist"):
        load_data(tmp_path / "gone.ts")


def test_load_data_unknown_suffix(tmp_path):
    """Only .ts, .csv and .parquet are read."""
    with pytest.raises(CommandError, match=r"must be a .ts, .csv or .parquet file"):
        load_data(tmp_path / "data.xlsx")


def test_load_data_table_needs_id(tmp_path):
    """A table without --id cannot be grouped into sequences."""
    path = write_table_file(tmp_path / "d.csv", 4)
    with pytest.raises(CommandError, match=r"needs --id COLUMN"):
        load_data(path)


def test_load_data_ts_rejects_table_options(tmp_path):
    """Table options given for a .ts file are an error, not silently ignored."""
    path = write_ts_file(tmp_path / "d.ts", 4)
    with pytest.raises(CommandError, match=r"table options \(--id, --target\) apply to"):
        load_data(path, id="sid", target="label")


def test_load_data_rejects_a_file_without_sequences(tmp_path):
    """A .ts file whose data section is empty is one clear error, not a model-size error."""
    path = tmp_path / "empty.ts"
    path.write_text("@problemName e\n@classLabel true a b\n@data\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r"DATA must hold at least one sequence, got none in"):
        load_data(path)


def test_load_data_rejects_infinite_values(tmp_path):
    """An infinity names its sequence, step and feature (it used to reach predictions)."""
    path = tmp_path / "d.csv"
    path.write_text("sid,v\na,1\nb,2\nb,inf\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r"DATA values must be finite or missing \(NaN\), "):
        load_data(path, id="sid")
    with pytest.raises(CommandError, match=r"got inf at sequence 'b', step 1, feature 'v' in "):
        load_data(path, id="sid")


def test_load_data_rejects_infinite_values_in_ts_files(tmp_path):
    """In a .ts file read_ts itself refuses an infinity, naming the line, channel and step."""
    path = tmp_path / "d.ts"
    text = "@problemName d\n@classLabel true a b\n@data\n1,2:a\n3,-inf,4:b\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"d.ts:5: values must be finite .* '-inf' at channel 0"):
        load_data(path)


# ----------------------------------------------------------------------------- targets


def test_infer_task():
    """Text, bool and integer targets are classification; floats are regression."""
    assert infer_task(np.array(["a"]), "auto") == "classification"
    assert infer_task(np.array([1, 2]), "auto") == "classification"
    assert infer_task(np.array([True]), "auto") == "classification"
    assert infer_task(np.array([0.5]), "auto") == "regression"
    assert infer_task(np.array([0.5]), "classification") == "classification"


def test_encode_targets_integer_labels_sort_numerically():
    """Integer labels are sorted as numbers (2 before 10) and kept as their text."""
    ids = np.arange(4)
    targets = encode_targets(np.array([10, 2, 10, 1]), task="auto", ids=ids)
    assert targets.labels == ("1", "2", "10")
    np.testing.assert_array_equal(targets.y, [2, 1, 2, 0])


def test_encode_targets_integral_floats_can_be_classes():
    """Floats like 1.0 are accepted as class labels "1" with --task classification."""
    targets = encode_targets(np.array([1.0, 0.0, 1.0]), task="classification", ids=np.arange(3))
    assert targets.labels == ("0", "1")
    np.testing.assert_array_equal(targets.y, [1, 0, 1])


def test_encode_targets_declared_labels_keep_their_order():
    """Labels declared by a .ts header keep the header's order, even unused ones."""
    targets = encode_targets(
        np.array(["b", "a"]), task="auto", ids=np.arange(2), declared=("b", "c", "a")
    )
    assert targets.labels == ("b", "c", "a")
    np.testing.assert_array_equal(targets.y, [0, 2])


def test_encode_targets_regression_values():
    """Regression targets become float64; numeric strings are accepted."""
    targets = encode_targets(
        np.array(["1.5", "2"], dtype=object), task="regression", ids=np.arange(2)
    )
    assert targets.labels is None
    np.testing.assert_array_equal(targets.y, [1.5, 2.0])


@pytest.mark.parametrize(
    ("y", "task", "match"),
    [
        (None, "auto", r"DATA must hold targets to train on"),
        (np.array([0.5, 1.0]), "classification", r"got the fractional number 0.5 for sequence 0\."),
        (
            np.array(["a", "b"]),
            "regression",
            r"must be numbers for regression, got 'a' for sequence 0",
        ),
        (np.array([1.0, np.nan]), "auto", r"must not be missing, got none for sequence 1"),
        (
            np.array(["a", None], dtype=object),
            "auto",
            r"must not be missing, got none for sequence 1",
        ),
    ],
)
def test_encode_targets_rejects_targets_that_do_not_fit(y, task, match):
    """Targets that do not fit the task raise one CommandError naming the sequence."""
    with pytest.raises(CommandError, match=match):
        encode_targets(y, task=task, ids=np.arange(2))


def test_encode_targets_unknown_test_label():
    """Test labels must be among the training labels."""
    with pytest.raises(
        CommandError, match=r"among the training labels \['a', 'b'\], got 'c' for sequence 's2'"
    ):
        encode_targets(
            np.array(["a", "c"]),
            task="classification",
            ids=np.array(["s1", "s2"]),
            labels=("a", "b"),
        )


def test_normalize_inputs_standardizes_and_fills_missing_values():
    """Real steps are standardized, NaN becomes 0 (the mean), values are float32."""
    x = Ragged(np.array([[1.0], [3.0], [np.nan]]), np.array([0, 2, 3]))
    scaler = Standardizer.fit(x)
    out = normalize_inputs(x, scaler)
    assert out.values.dtype == np.float32
    np.testing.assert_allclose(out.values[:, 0], [-1.0, 1.0, 0.0])
    np.testing.assert_array_equal(out.offsets, x.offsets)
    assert np.isnan(x.values[2, 0])  # the input is not modified


def test_normalize_inputs_rejects_values_beyond_float32():
    """A finite value that overflows float32 once standardized is an error, not an inf input."""
    x = Ragged(np.array([[0.0], [1.0], [2.0]]), np.array([0, 3]))
    scaler = Standardizer.fit(x)
    big = Ragged(np.array([[1.0], [1e300]]), np.array([0, 2]))
    with pytest.raises(
        CommandError, match=r"fit float32 \(\|v\| < 3.4e38\), got 1e\+300 in feature 0"
    ):
        normalize_inputs(big, scaler)


class Terminal:
    """A stand-in stderr that says whether it is a terminal."""

    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        """Whether this is a terminal."""
        return self.tty


@pytest.mark.parametrize(
    ("tty", "quiet", "expected"), [(True, False, True), (True, True, False), (False, False, False)]
)
def test_progress_enabled_only_on_a_terminal_without_quiet(monkeypatch, tty, quiet, expected):
    """Progress bars show on a terminal unless --quiet; never when stderr is redirected."""
    monkeypatch.setattr("sys.stderr", Terminal(tty))
    assert progress_enabled(namespace(quiet=quiet)) is expected
