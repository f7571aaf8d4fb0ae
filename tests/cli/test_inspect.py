"""`varlen inspect`: length statistics, padding of random vs bucketed batches, the auto pick."""

from __future__ import annotations

import numpy as np

from tests.cli.test_train import one_error_line
from varlen.batching.report import choose_technique, compare_policies
from varlen.cli import main
from varlen.cli.inspect import length_summary
from varlen.data.io.ts import read_ts


def test_inspect_ts_prints_statistics_padding_and_choice(data_dir, capsys):
    """The report: features, length statistics, the padding table and the auto technique."""
    assert main(["inspect", str(data_dir / "train.ts"), "--batch-size", "8"]) == 0
    out = capsys.readouterr().out
    lengths = read_ts(data_dir / "train.ts").x.lengths
    assert out.startswith("train.ts: 2 features\n" + length_summary(lengths) + "\n")
    rows = compare_policies(lengths, batch_size=8)
    assert f"{rows[0].efficiency:.3f}" in out
    assert f"{rows[1].efficiency:.3f}" in out
    name, reason = choose_technique(lengths, batch_size=8)
    assert f"technique auto would pick: {name} ({reason})" in out


def test_inspect_table_and_plot(data_dir, tmp_path, capsys):
    """A table is inspected with its columns; --plot writes a PNG histogram."""
    plot = tmp_path / "lengths.png"
    argv = ["inspect", str(data_dir / "train.csv"), "--id", "sid", "--order", "step"]
    assert main([*argv, "--target", "label", "--plot", str(plot)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("train.csv: 3 features\nsequences 40, length min ")
    assert f"wrote the length histogram to {plot}" in captured.err
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_length_summary_edges():
    """Statistics of one length, and of none."""
    assert length_summary(np.array([5])) == (
        "sequences 1, length min 5, median 5.0, mean 5.0, p90 5.0, max 5, steps 5"
    )
    assert length_summary(np.zeros(0, dtype=np.int64)) == "sequences 0"


def test_inspect_malformed_ts_names_file_and_line(tmp_path, capsys):
    """A malformed .ts: one line naming the file and the line, exit code 2."""
    path = tmp_path / "bad.ts"
    path.write_text("@problemName x\n@classLabel true a b\n@data\n1,2:a\n1,oops:b\n")
    assert main(["inspect", str(path)]) == 2
    message = one_error_line(capsys, "inspect")
    assert message.startswith(
        f"read_ts: {path}:5: values must be finite decimal numbers or '?', got 'oops'"
    )


def test_inspect_bad_batch_size(data_dir, capsys):
    """--batch-size must be >= 1."""
    assert main(["inspect", str(data_dir / "train.ts"), "--batch-size", "0"]) == 2
    assert one_error_line(capsys, "inspect") == "inspect: batch_size must be >= 1, got 0."


def test_inspect_checks_plot_before_printing(data_dir, tmp_path, capsys):
    """A --plot that cannot be written fails up front: nothing printed, one error line."""
    data = str(data_dir / "train.ts")
    assert main(["inspect", data, "--plot", str(tmp_path / "h.txt")]) == 2
    assert capsys.readouterr().out == ""
    assert main(["inspect", data, "--plot", str(tmp_path / "no" / "h.png")]) == 2
    message = one_error_line(capsys, "inspect")
    assert message.startswith("inspect: --plot must be in an existing folder, got ")


def test_inspect_counts_one_feature_in_the_singular(tmp_path, capsys):
    """One channel is '1 feature'."""
    path = tmp_path / "one.ts"
    path.write_text("@problemName one\n@classLabel true a b\n@data\n1,2,3:a\n4,5:b\n")
    assert main(["inspect", str(path)]) == 0
    assert capsys.readouterr().out.startswith("one.ts: 1 feature\n")
