"""Tests for varlen.data.io.table: long-format CSV/Parquet tables and DataFrames."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference.io import group_table_reference
from varlen.data.io.table import group_table, read_table, table_to_ragged


@st.composite
def long_tables(draw: st.DrawFn) -> tuple[pd.DataFrame, int]:
    """A shuffled long-format table with columns id, t, y, f0.. and the number F of features."""
    B = draw(st.integers(0, 5))
    F = draw(st.integers(1, 3))
    if draw(st.booleans()):
        ids: list[Any] = draw(st.lists(st.integers(-50, 50), min_size=B, max_size=B, unique=True))
    else:
        ids = draw(st.lists(st.text("abcxyz", max_size=3), min_size=B, max_size=B, unique=True))
    columns: dict[str, list[Any]] = {"id": [], "t": [], "y": []}
    for key in ids:
        T = draw(st.integers(1, 5))
        columns["id"] += [key] * T
        columns["t"] += draw(st.lists(st.integers(0, 99), min_size=T, max_size=T, unique=True))
        columns["y"] += [draw(st.floats(allow_nan=True, allow_infinity=False))] * T
    rows = len(columns["id"])
    values = draw(st.lists(st.floats(width=64), min_size=rows * F, max_size=rows * F))
    frame = pd.DataFrame(
        {
            "id": np.array(
                columns["id"], dtype=np.int64 if ids and isinstance(ids[0], int) else object
            ),
            "t": np.array(columns["t"], dtype=np.int64),
            "y": np.array(columns["y"], dtype=np.float64),
            **{f"f{j}": np.array(values[j::F], dtype=np.float64) for j in range(F)},
        }
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shuffled = frame.iloc[rng.permutation(rows)].reset_index(drop=True)
    return shuffled, F


def assert_matches_reference(data: Any, frame: pd.DataFrame, order: str | None, F: int) -> None:
    """``data`` holds the reference sequences of ``frame``, in sorted-id order."""
    names = [f"f{j}" for j in range(F)]
    rows = frame.to_dict("records")
    reference = group_table_reference(rows, id="id", order=order, features=names)
    assert data.ids.tolist() == sorted(reference)
    assert data.features == tuple(names)
    assert data.x.values.dtype == np.float64
    assert len(data.x) == len(reference)
    for actual, key in zip(data.x.to_sequences(), sorted(reference), strict=True):
        np.testing.assert_array_equal(actual, reference[key])


@settings(max_examples=150)  # each example builds DataFrames (~6 ms)
@given(table=long_tables())
def test_group_table_matches_reference_for_shuffled_rows(table):
    """Sequences equal the per-id reference sorted by order, NaN kept, ids sorted, B = 0 ok."""
    frame, F = table
    before = frame.copy(deep=True)
    data = group_table(frame, id="id", order="t", target="y")
    assert_matches_reference(data, frame, "t", F)
    expected_y = [frame.loc[frame["id"] == key, "y"].iloc[0] for key in data.ids.tolist()]
    np.testing.assert_array_equal(data.y, np.array(expected_y, dtype=np.float64))
    pd.testing.assert_frame_equal(frame, before)  # the input is not modified


@settings(max_examples=150)  # each example builds DataFrames (~6 ms)
@given(table=long_tables())
def test_table_to_ragged_keeps_row_order_without_order_column(table):
    """Without an order column, steps keep their table order within each id."""
    frame, F = table
    ragged = table_to_ragged(frame, id="id", features=[f"f{j}" for j in range(F)])
    data = group_table(frame.drop(columns=["t", "y"]), id="id")
    assert_matches_reference(data, frame, None, F)
    assert ragged == data.x


def test_group_table_accepts_pyarrow_tables_and_table_to_ragged_agrees():
    """A pyarrow Table gives the same result as its DataFrame; table_to_ragged gives its x."""
    frame = pd.DataFrame({"id": ["b", "a", "b"], "t": [1, 0, 0], "v": [1.0, 2.0, np.nan]})
    expected = group_table(frame, id="id", order="t")
    from_arrow = group_table(pa.Table.from_pandas(frame), id="id", order="t")
    assert from_arrow.x == expected.x
    assert from_arrow.ids.tolist() == expected.ids.tolist() == ["a", "b"]
    np.testing.assert_array_equal(expected.x.values, [[2.0], [np.nan], [1.0]])
    assert table_to_ragged(frame, id="id", order="t") == expected.x


def test_group_table_takes_integer_and_bool_features_as_float64():
    """Integer, nullable-integer and bool features are cast to float64; pd.NA becomes NaN."""
    frame = pd.DataFrame(
        {
            "id": [1, 1],
            "i": [1, 2],
            "n": pd.array([3, None], dtype="Int64"),
            "b": [True, False],
        }
    )
    data = group_table(frame, id="id")
    np.testing.assert_array_equal(data.x.values, [[1.0, 3.0, 1.0], [2.0, np.nan, 0.0]])
    assert data.y is None


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".pq"])
def test_read_table_round_trips_csv_and_parquet_with_shuffled_rows(tmp_path, suffix):
    """A shuffled long table written to disk reads back as the unshuffled grouping."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 8, size=12)
    frame = pd.DataFrame(
        {
            "sid": np.repeat(np.arange(12) * 10, lengths),
            "step": np.concatenate([np.arange(T) for T in lengths]),
            "label": np.repeat(rng.choice(["u", "v"], size=12), lengths),
            "a": rng.standard_normal(lengths.sum()),
            "b": rng.standard_normal(lengths.sum()),
        }
    )
    frame.loc[3, "a"] = np.nan
    shuffled = frame.iloc[rng.permutation(len(frame))]
    path = tmp_path / f"table{suffix}"
    if suffix == ".csv":
        shuffled.to_csv(path, index=False)
    else:
        shuffled.to_parquet(path, index=False)
    data = read_table(path, id="sid", order="step", target="label")
    expected = group_table(frame, id="sid", order="step", target="label")
    assert data.x == expected.x
    assert data.features == ("a", "b")
    np.testing.assert_array_equal(data.ids, np.arange(12) * 10)
    assert data.y is not None
    assert expected.y is not None
    assert data.y.tolist() == expected.y.tolist()
    np.testing.assert_array_equal(data.x.lengths, lengths)
    assert np.isnan(data.x.values).sum() == 1


def base_frame() -> pd.DataFrame:
    """A small valid table with a string column ``s`` that cannot be a feature."""
    return pd.DataFrame(
        {
            "id": [1, 1, 2],
            "t": [0, 1, 0],
            "a": [1.0, 2.0, 3.0],
            "y": ["p", "p", "q"],
            "s": ["u", "v", "w"],
        }
    )


AVAILABLE = r"Available columns: \['id', 't', 'a', 'y', 's'\]\."
GROUP_ERRORS = [
    (
        "missing-id",
        {"id": "sid"},
        ValueError,
        r"id must name a column of the table, got 'sid'\. " + AVAILABLE,
    ),
    (
        "missing-order",
        {"order": "time"},
        ValueError,
        r"order must name a column .*'time'\. " + AVAILABLE,
    ),
    (
        "missing-target",
        {"target": "z"},
        ValueError,
        r"target must name a column .*'z'\. " + AVAILABLE,
    ),
    (
        "missing-feature",
        {"features": ["a", "c"]},
        ValueError,
        r"features\[1\] must name a column of the table, got 'c'\. " + AVAILABLE,
    ),
    ("id-not-str", {"id": 0}, TypeError, r"id must be a column name \(str\), got 0\."),
    ("features-str", {"features": "a"}, TypeError, r"features must be a sequence of column names"),
    (
        "text-feature",
        {"features": ["a", "s"]},
        TypeError,
        r"features\[1\] 's' must be a real numeric column, got dtype",
    ),
    (
        "text-default",
        {"features": None, "target": "y"},
        TypeError,
        r"features\[1\] 's' must be a real numeric column",
    ),
    (
        "repeated-feature",
        {"features": ["a", "a"]},
        ValueError,
        r"features must be distinct, got \['a'\]",
    ),
    (
        "duplicate-order",
        {"order": "a", "frame": {"a": [1.0, 1.0, 3.0]}},
        ValueError,
        r"order column 'a' must be unique within each id, got 1\.0 twice for id 1\.",
    ),
    (
        "missing-order-value",
        {"order": "a", "frame": {"a": [1.0, np.nan, 3.0]}},
        ValueError,
        r"order column 'a' must have no missing values, got one at row 1\.",
    ),
    (
        "missing-id-value",
        {"frame": {"id": [1.0, 1.0, np.nan]}},
        ValueError,
        r"id column 'id' must have no missing values, got one at row 2\.",
    ),
    (
        "varying-target",
        {"target": "y", "features": ["a"], "frame": {"y": ["p", "q", "q"]}},
        ValueError,
        r"target column 'y' must be constant within each id, got 'p' and 'q' for id 1\.",
    ),
    (
        "complex-feature",
        {"features": ["a"], "frame": {"a": [1j, 2j, 3j]}},
        TypeError,
        r"features\[0\] 'a' must be a real numeric column, got dtype complex128",
    ),
]


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [case[1:] for case in GROUP_ERRORS],
    ids=[case[0] for case in GROUP_ERRORS],
)
def test_group_table_rejects_bad_columns_with_clear_messages(arguments, error, match):
    """Each bad column raises with a message naming the column (and the id where relevant)."""
    arguments = dict(arguments)
    frame = base_frame().assign(**arguments.pop("frame", {}))
    kwargs = {"id": "id", "order": "t", "features": ["a"]} | arguments
    with pytest.raises(error, match=r"^group_table: " + match):
        group_table(frame, **kwargs)


def test_group_table_needs_at_least_one_feature_column():
    """A table with only id and order columns has no features to read."""
    frame = base_frame()[["id", "t"]]
    with pytest.raises(ValueError, match=r"features must name at least one column, got none"):
        group_table(frame, id="id", order="t")


def test_group_table_rejects_non_tables():
    """Anything but a DataFrame or an object with to_pandas() is a TypeError."""
    with pytest.raises(
        TypeError, match=r"table must be a pandas DataFrame or a pyarrow Table, got dict"
    ):
        group_table({"id": [1]}, id="id")


def test_group_table_allows_nan_targets_that_are_constant():
    """A target that is NaN on every row of an id is constant, and gives NaN."""
    frame = pd.DataFrame({"id": [1, 1, 2], "a": [1.0, 2.0, 3.0], "y": [np.nan, np.nan, 1.0]})
    data = group_table(frame, id="id", target="y")
    np.testing.assert_array_equal(data.y, [np.nan, 1.0])


def test_read_table_rejects_unknown_suffixes(tmp_path):
    """Only .csv, .parquet and .pq files are read; the message suggests group_table."""
    with pytest.raises(
        ValueError, match=r"read_table: path must end in one of .*x\.json'.*group_table"
    ):
        read_table(tmp_path / "x.json", id="id")


def test_read_table_reads_a_csv_with_only_a_header_as_no_sequences(tmp_path):
    """A header-only CSV (object columns) gives B = 0, not a feature dtype error."""
    path = tmp_path / "t.csv"
    path.write_text("id,t,a,b,y\n", encoding="utf-8")
    data = read_table(path, id="id", order="t", target="y")
    assert len(data.x) == 0
    assert data.x.values.shape == (0, 2)
    assert data.features == ("a", "b")


@pytest.mark.parametrize(
    ("text", "detail"),
    [("", r"No columns to parse"), ('a,b\n1,2,3\n"open\n', r"Error tokenizing data")],
    ids=["zero-bytes", "unterminated-quote"],
)
def test_read_table_names_the_file_it_cannot_parse(tmp_path, text, detail):
    """A CSV that pandas cannot parse is a ValueError naming read_table and the file."""
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(
        ValueError,
        match=r"^read_table: '.*bad\.csv' must be a CSV table with a header row, got: " + detail,
    ):
        read_table(path, id="a")


def test_read_table_names_itself_in_column_errors(tmp_path):
    """Errors raised while grouping a file name read_table, not the helper."""
    path = tmp_path / "t.csv"
    base_frame().to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"^read_table: id must name a column"):
        read_table(path, id="nope")


def test_readers_explain_how_to_install_pandas(monkeypatch, tmp_path):
    """Without pandas, the table functions raise ImportError with the install command."""
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"table_to_ragged: needs pandas.*varlen\[table\]"):
        table_to_ragged(object(), id="id")
    with pytest.raises(ImportError, match=r"read_table: needs pandas"):
        read_table(tmp_path / "t.csv", id="id")


@pytest.mark.parametrize("content", [b"PAR1garbagegarbagePAR1", b"not parquet at all", b""])
def test_read_table_wraps_a_damaged_parquet_file(tmp_path, content):
    """The ArrowInvalid of pyarrow is wrapped: a ValueError naming read_table and the file."""
    path = tmp_path / "bad.parquet"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"read_table: '.*bad.parquet' must be a readable Parquet"):
        read_table(path, id="a")
