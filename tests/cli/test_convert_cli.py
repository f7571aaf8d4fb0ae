"""`varlen convert` as a user runs it: a store out, or one line naming the file and row."""

from __future__ import annotations

import numpy as np
import pytest

from tests.cli._data import run_cli
from varlen.data.io.store import open_store

pd = pytest.importorskip("pandas")


def test_convert_writes_a_store_a_user_can_open(tmp_path):
    """A long CSV converts (exit 0, a summary line on stdout) to a store read back whole."""
    rows = [(f"u{i}", t, float(i + t), "ab"[i % 2]) for i in range(5) for t in range(i + 1)]
    pd.DataFrame(rows, columns=["user", "t", "v", "label"]).to_csv(tmp_path / "d.csv", index=False)
    run = run_cli(
        "convert", "d.csv", "--out", "d.arrow", "--id", "user", "--order", "t",
        "--target", "label", "--dtype", "float64", cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("wrote d.arrow: 5 sequences, 15 steps")
    store = open_store(tmp_path / "d.arrow")
    np.testing.assert_array_equal(store.x.lengths, [1, 2, 3, 4, 5])
    y = store.y
    assert y is not None
    assert y.tolist() == ["a", "b", "a", "b", "a"]
    assert store.features == ("v",)


def test_convert_malformed_row_is_one_line_exit_2_and_no_file(tmp_path):
    """A short row: exit 2, one stderr line naming the file and row, nothing written."""
    (tmp_path / "bad.csv").write_text("user,t,v\na,0,1\na,1\n")
    run = run_cli("convert", "bad.csv", "--out", "d.arrow", "--id", "user", cwd=tmp_path)
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() if "error" in line]
    assert errors == [
        "varlen convert: error: convert: bad.csv: row 2 (line 3): must have 3 fields like the "
        "header, got 2."
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]
