"""Streaming conversion of .ts files and long tables into a store; malformed rows are named."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from varlen.data.io.convert import convert
from varlen.data.io.store import open_store
from varlen.data.io.table import read_table
from varlen.data.io.ts import iter_ts, read_ts, write_ts
from varlen.data.ragged import Ragged

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

SMALL: dict[str, Any] = {"block_bytes": 512, "chunk_bytes": 256}  # many blocks and record batches


def _long_table(n=40, seed=0, *, shuffle_steps=True):
    """A long table grouped by id (ids not sorted), steps shuffled within each id."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in rng.permutation(n):
        T = int(rng.integers(1, 12))
        steps = rng.permutation(T) if shuffle_steps else np.arange(T)
        label = "ab"[int(i) % 2]
        rows += [(f"s{i:03d}", int(t), rng.normal(), rng.normal(), label) for t in steps]
    return pd.DataFrame(rows, columns=["id", "t", "a", "b", "label"])


def _by_id(store):
    """The store's sequences, ids and targets in id order (read_table's order)."""
    order = np.argsort(store.ids, kind="stable")
    return store.x[order], store.ids[order], store.y[order]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize(
    ("shuffle_steps", "dtype"), [(True, "float64"), (False, "float64"), (True, "float32")]
)
def test_convert_table_matches_read_table(tmp_path, suffix, shuffle_steps, dtype):
    """A long table converts, block by block, to the sequences read_table builds in memory.

    Steps in order take the no-sort route; float32 steps equal read_table's cast to float32.
    """
    frame = _long_table(shuffle_steps=shuffle_steps)
    source = tmp_path / f"long{suffix}"
    frame.to_csv(source, index=False) if suffix == ".csv" else frame.to_parquet(source)
    out = tmp_path / "s.arrow"
    summary = convert(source, out, id="id", order="t", target="label", dtype=dtype, **SMALL)
    assert summary.num_batches > 1
    store = open_store(out)
    expected = read_table(source, id="id", order="t", target="label")
    x, ids, y = _by_id(store)
    assert x.dtype == np.dtype(dtype)
    assert x == Ragged.view(expected.x.values.astype(dtype), expected.x.offsets)
    np.testing.assert_array_equal(ids, expected.ids)
    np.testing.assert_array_equal(y, expected.y)
    assert store.features == ("a", "b")
    assert store.columns["order"] == "t"
    first_id = frame["id"].iloc[0]
    assert store.ids[0] == first_id  # the file's order of ids is kept


_POOL_PEAK = """
import sys
import pyarrow as pa
from varlen.data.io.convert import convert
convert(sys.argv[1], sys.argv[2], id="id", order="t", target="y",
        block_bytes=1 << 20, chunk_bytes=1 << 20)
print(pa.default_memory_pool().max_memory())
"""


@pytest.mark.parametrize("row_group", [20_000, 960_000])
def test_convert_parquet_holds_pages_not_the_file(tmp_path, row_group):
    """Arrow's peak allocation converting a Parquet file stays far below the file's size.

    Before, pyarrow pre-buffered the column chunks of every row group iterated (many row
    groups: peak 41 MiB for a 37 MiB file) and, unbuffered, read a row group's column chunks
    whole (one row group: 39 MiB for 31 MiB); now about 4 and 10 MiB: a few pages per column.
    A fresh process, so that the pool's peak is this conversion's; Arrow's own count, so no
    noise from the rest of the process.
    """
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    rng = np.random.default_rng(0)
    n = 960_000
    columns: dict[str, np.ndarray[Any, Any]] = {
        "id": np.repeat(np.arange(n // 120), 120),
        "t": np.tile(np.arange(120), n // 120),
    }
    columns |= {f"f{j}": rng.standard_normal(n) for j in range(4)}
    columns["y"] = rng.integers(0, 3, n)
    source = tmp_path / "long.parquet"
    pq.write_table(pa.table(columns), source, row_group_size=row_group, compression="none")
    size = source.stat().st_size
    assert size > 30 << 20  # random doubles: the file is about its values
    run = subprocess.run(
        [sys.executable, "-c", _POOL_PEAK, str(source), str(tmp_path / "s.arrow")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(run.stdout.split()[-1]) < size / 2


def test_convert_ts_matches_read_ts(tmp_path):
    """A .ts file converts chunk by chunk to what read_ts reads; the labels are recorded."""
    rng = np.random.default_rng(1)
    x = Ragged.from_sequences([rng.normal(size=(int(T), 2)) for T in rng.integers(1, 9, 30)])
    labels = np.array(["up", "down"])[rng.integers(0, 2, 30)]
    source = tmp_path / "d.ts"
    write_ts(source, x, labels)
    convert(source, tmp_path / "s.arrow", dtype="float64", block_bytes=4096 * 7)
    store = open_store(tmp_path / "s.arrow")
    expected = read_ts(source)
    assert store.x.to_ragged() == expected.x
    np.testing.assert_array_equal(store.y, expected.y)
    np.testing.assert_array_equal(store.ids, np.arange(30))
    assert store.columns["class_labels"] == list(expected.class_labels)


def test_iter_ts_chunks_join_to_read_ts(tmp_path):
    """iter_ts's chunks, joined, are read_ts's result, and errors keep their line numbers."""
    rng = np.random.default_rng(2)
    x = Ragged.from_sequences([rng.normal(size=(int(T), 3)) for T in rng.integers(0, 6, 11)])
    source = tmp_path / "d.ts"
    write_ts(source, x, np.array(["a"] * 11))
    chunks = list(iter_ts(source, chunk_cases=3))
    assert [len(chunk.x) for chunk in chunks] == [3, 3, 3, 2]
    assert Ragged.concatenate([chunk.x for chunk in chunks]) == read_ts(source).x
    text = source.read_text().splitlines()
    text[-1] = text[-1].replace(":", ";", 1)
    source.write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match=rf"{source}:{len(text)}: case must have 3 channels"):
        list(iter_ts(source, chunk_cases=3))


BAD_TABLES = {
    "short row": ("id,t,v\n1,0,1.5\n1,1\n2,0,3\n", "row 2 (line 3): must have 3 fields"),
    "bad value": (
        "id,t,v\n1,0,1.5\n2,0,abc\n",
        "row 2 (line 3): column 'v' must hold double values (as in its first rows; features "
        "are numbers), got 'abc'.",
    ),
    "ids apart": (
        "id,t,v\n1,0,1\n2,0,1\n1,1,2\n",
        "row 3 (line 4): the rows of id 1 must be together",
    ),
    "order repeated": (
        "id,t,v\n1,0,1\n1,0,2\n",
        "row 2 (line 3): order column 't' must be unique within each id, got 0 twice for id 1",
    ),
    "step target text": (
        "id,t,v,y\n1,0,1,1\n1,1,2,2\n2,0,1,1\n2,1,2,walk\n",
        "row 4 (line 5): target column 'y' varies within ids, so its targets are stored per "
        "step and must be numbers (class ids as integers, NaN for no target), got 'walk'.",
    ),
    "step target infinite": (
        "id,t,v,y\n1,0,1,1.5\n1,1,2,0.5\n2,0,1,inf\n",
        "row 3 (line 4): target column 'y' must hold finite numbers, got inf.",
    ),
    "id missing": ("id,t,v\n1,0,1\n,1,2\n", "row 2 (line 3): id column 'id' must have no missing"),
}


@pytest.mark.parametrize("case", BAD_TABLES, ids=list(BAD_TABLES))
def test_convert_names_the_file_and_row_and_leaves_nothing(tmp_path, case):
    """A malformed row is one ValueError naming the file and the row; no file is left."""
    text, message = BAD_TABLES[case]
    source = tmp_path / "bad.csv"
    source.write_text(text)
    target = "y" if "y" in text.splitlines()[0].split(",") else None
    with pytest.raises(ValueError, match=r"^convert: ") as caught:
        convert(source, tmp_path / "s.arrow", id="id", order="t", target=target)
    assert f"convert: {source}: {message}" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_convert_finds_a_bad_row_far_into_a_large_file(tmp_path):
    """A bad value thousands of rows in, past many blocks, is named by its row."""
    rows = "".join(f"{i // 3},{i % 3},1.5\n" for i in range(20_000))
    source = tmp_path / "big.csv"
    source.write_text("id,t,v\n" + rows + "99999,0,abc\n")
    with pytest.raises(
        ValueError, match=r"row 20001 \(line 20002\): column 'v' must hold .* got 'abc'"
    ):
        convert(source, tmp_path / "s.arrow", id="id", order="t", block_bytes=1 << 14)
    assert not (tmp_path / "s.arrow").exists()


def test_convert_checks_its_options(tmp_path):
    """Unknown suffixes, table options for .ts and missing columns are refused."""
    with pytest.raises(ValueError, match=r"source must be a .ts, .csv, .parquet or .pq file"):
        convert(tmp_path / "x.txt", tmp_path / "s.arrow")
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        convert(tmp_path / "x.csv", tmp_path / "s.arrow", id="id")
    source = tmp_path / "t.csv"
    source.write_text("id,t,v,name\n1,0,1,x\n")
    with pytest.raises(ValueError, match=r"a table needs id"):
        convert(source, tmp_path / "s.arrow")
    with pytest.raises(ValueError, match=r"order must name a column, got 'time'"):
        convert(source, tmp_path / "s.arrow", id="id", order="time")
    with pytest.raises(ValueError, match=r"row 1 \(line 2\): column 'name' must hold double"):
        convert(source, tmp_path / "s.arrow", id="id", order="t")
    with pytest.raises(ValueError, match=r"features must name columns, got 'c'"):
        convert(source, tmp_path / "s.arrow", id="id", features=["v", "c"])
    ts = tmp_path / "d.ts"
    write_ts(ts, Ragged.from_sequences([np.ones((2, 1))]), np.array(["a"]))
    with pytest.raises(ValueError, match=r"a .ts file takes no table options"):
        convert(ts, tmp_path / "s.arrow", id="id")


def test_convert_sort_groups_an_unsorted_table_with_duckdb(tmp_path):
    """sort=True lets DuckDB group a table whose rows are shuffled; the result is read_table's."""
    pytest.importorskip("duckdb")
    frame = _long_table(seed=3).sample(frac=1.0, random_state=0)  # rows of ids interleaved
    source = tmp_path / "shuffled.parquet"
    frame.to_parquet(source)
    options: dict[str, Any] = {"id": "id", "order": "t", "target": "label", "features": ["a", "b"]}
    with pytest.raises(ValueError, match=r"must be together"):
        convert(source, tmp_path / "s.arrow", **options)
    convert(source, tmp_path / "s.arrow", sort=True, **options)
    expected = read_table(source, id="id", order="t", target="label")
    x, ids, y = _by_id(open_store(tmp_path / "s.arrow"))
    np.testing.assert_array_equal(ids, expected.ids)
    np.testing.assert_array_equal(y, expected.y)
    np.testing.assert_allclose(x.values, expected.x.values.astype(np.float32))
    with pytest.raises(ValueError, match=r"sorting needs an order column"):
        convert(source, tmp_path / "t.arrow", id="id", features=["a", "b"], sort=True)
