"""What a user sees when things go wrong: one line per message, nothing else."""

from __future__ import annotations

from tests.cli._data import run_cli


def test_warnings_are_one_line_without_a_source_line(tmp_path):
    """A Python warning in a CLI run is one `varlen <command>: warning:` line, no source line."""
    rows = ["sid,f0,f1,label", "1,0.5,,a", "1,0.7,,a", "2,0.1,,b", "2,0.2,,b", "3,0.4,,a"]
    (tmp_path / "w.csv").write_text("\n".join([*rows, "4,0.3,,b"]) + "\n")
    done = run_cli(
        "train", "w.csv", "--id", "sid", "--target", "label", "--epochs", "1",
        "--hidden-size", "2", "--out", "m", "--quiet", "--val-fraction", "0", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    python = [line for line in lines if "RuntimeWarning" in line]
    assert len(python) == 1, lines  # the all-empty column f1 is warned about, in one line
    assert python[0].startswith("varlen train: warning: RuntimeWarning: fit_standardizer: ")
    assert not any(".py:" in line or "warnings.warn" in line for line in lines), lines
