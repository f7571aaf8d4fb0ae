"""The on-disk ragged store: Arrow IPC round trips, views and gathers, metadata, atomicity."""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from varlen._atomic import AtomicWriteError, disk_full, inject
from varlen.data.io.store import (
    STORE_VERSION,
    StoreChunk,
    fit_standardizer,
    open_store,
    plan_blocks,
    write_store,
)
from varlen.data.normalize import Standardizer
from varlen.data.ragged import Ragged

pa = pytest.importorskip("pyarrow")


def _data(lengths, F=3, seed=0):
    rng = np.random.default_rng(seed)
    return Ragged.from_sequences([rng.normal(size=(int(T), F)) for T in lengths])


def _chunks(x, ids, y, size):
    for start in range(0, len(x), size):
        stop = min(start + size, len(x))
        yield StoreChunk(x[start:stop], ids[start:stop], y[start:stop])


@given(
    lengths=st.lists(st.integers(0, 9), min_size=1, max_size=30),
    chunk_bytes=st.integers(1, 400),
    rows=st.lists(st.integers(0, 29), max_size=12),
)
def test_store_round_trip_views_and_gathers(tmp_path_factory, lengths, chunk_bytes, rows):
    """Any lengths (0 included) in any number of record batches read back exactly, by any rows."""
    x = _data(lengths)
    ids = np.array([f"s{i}" for i in range(len(x))])
    y = np.arange(len(x), dtype=np.float64) / 2
    path = tmp_path_factory.mktemp("store") / "s.arrow"
    summary = write_store(path, _chunks(x, ids, y, 4), dtype="float64", chunk_bytes=chunk_bytes)
    assert (summary.num_sequences, summary.num_steps) == (len(x), x.num_steps)
    store = open_store(path)
    assert store.x.to_ragged() == x
    np.testing.assert_array_equal(store.x.lengths, x.lengths)
    np.testing.assert_array_equal(store.ids, ids)
    np.testing.assert_array_equal(store.y, y)
    picked = [r % len(x) for r in rows]
    assert store.x[np.array(picked, dtype=np.int64)] == x[picked]
    assert store.x[1:4] == x[1:4]
    for i in range(len(x)):
        np.testing.assert_array_equal(store.x[i], x[i])


def test_store_contiguous_rows_are_views_of_the_map(tmp_path):
    """Rows in one run inside a record batch share the map's memory; other rows are copies."""
    x = _data([3, 1, 4, 1, 5, 9, 2, 6])
    path = tmp_path / "s.arrow"
    write_store(path, x)
    store = open_store(path)
    first, second = store.x[0:4], store.x[2:6]
    assert np.shares_memory(first.values, second.values)
    assert not first.values.flags.writeable
    gathered = store.x[np.array([5, 0])]
    assert not np.shares_memory(gathered.values, first.values)
    assert gathered == x[[5, 0]]


def test_store_is_read_by_pandas_as_a_table(tmp_path):
    """The store reads in pandas as a Feather file: one row per sequence, its steps as lists."""
    pd = pytest.importorskip("pandas")
    x = _data([2, 0, 3], F=2)
    path = tmp_path / "s.arrow"
    write_store(path, x, ids=np.array([7, 8, 9]), y=np.array(["a", "b", "a"]), features=["u", "v"])
    frame = pd.read_feather(path)
    assert list(frame.columns) == ["id", "x", "y"]
    assert frame["id"].tolist() == [7, 8, 9]
    assert frame["y"].tolist() == ["a", "b", "a"]
    np.testing.assert_array_equal(np.stack(frame["x"][2]), x[2])
    assert len(frame["x"][1]) == 0
    metadata = json.loads(pa.ipc.open_file(path).schema.metadata[b"varlen"])
    assert metadata["version"] == 1  # sequence-level stores keep version 1
    assert metadata["features"] == ["u", "v"]


def test_store_keeps_features_standardizer_and_columns(tmp_path):
    """The metadata carries the feature names, a standardizer and the source's columns."""
    x = _data([4, 2])
    scaler = Standardizer.fit(x)
    path = tmp_path / "s.arrow"
    write_store(path, x, features=["a", "b", "c"], standardizer=scaler, columns={"id": "user"})
    store = open_store(path)
    assert store.features == ("a", "b", "c")
    assert store.columns == {"id": "user"}
    assert store.standardizer is not None
    np.testing.assert_array_equal(store.standardizer.mean, scaler.mean)
    assert store.version == 1  # no per-step targets: version 1
    assert store.y is None
    assert not store.has_targets


def test_store_dtype_float32_casts_the_steps(tmp_path):
    """dtype=float32 stores the steps as float32 (half the bytes), read back as float32."""
    x = _data([5, 3])
    path = tmp_path / "s.arrow"
    write_store(path, x, dtype=np.float32)
    stored = open_store(path).x
    assert stored.dtype == np.float32
    np.testing.assert_array_equal(stored.to_ragged().values, x.values.astype(np.float32))


def test_open_store_refuses_other_files(tmp_path):
    """A foreign Arrow file, a damaged file and a store of a later version are refused."""
    foreign = tmp_path / "plain.arrow"
    with pa.ipc.new_file(foreign, pa.schema([("a", pa.int64())])) as writer:
        writer.write_table(pa.table({"a": [1, 2]}))
    with pytest.raises(ValueError, match=r"must be a varlen store, got an Arrow file without"):
        open_store(foreign)
    damaged = tmp_path / "damaged.arrow"
    damaged.write_bytes(b"not arrow at all")
    with pytest.raises(ValueError, match=r"got a file Arrow cannot read"):
        open_store(damaged)
    empty = tmp_path / "empty.arrow"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"got an empty file"):
        open_store(empty)
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        open_store(tmp_path / "missing.arrow")
    later = tmp_path / "later.arrow"
    record = {"format": "varlen.store", "version": STORE_VERSION + 1, "features": ["a"]}
    schema = pa.schema([("a", pa.int64())], metadata={b"varlen": json.dumps(record).encode()})
    with pa.ipc.new_file(later, schema) as writer:
        writer.write_table(pa.table({"a": [1]}, schema=schema))
    with pytest.raises(ValueError, match=r"Upgrade varlen"):
        open_store(later)


def test_write_store_leaves_nothing_when_the_data_fails(tmp_path):
    """An error in the chunk stream leaves neither the store nor a temporary file."""
    x = _data([3, 2, 4, 1])
    path = tmp_path / "s.arrow"

    def chunks():
        yield StoreChunk(x[:2], np.array([0, 1]), None)
        raise ValueError("convert: bad row")

    with pytest.raises(ValueError, match="bad row"):
        write_store(path, chunks(), chunk_bytes=1)
    assert list(tmp_path.iterdir()) == []


def test_write_store_disk_full_keeps_the_old_store(tmp_path):
    """A full disk while writing keeps the previous store and says so in one line."""
    old, new = _data([2]), _data([5, 5], seed=1)
    path = tmp_path / "s.arrow"
    write_store(path, old)
    with inject(disk_full(after=100)), pytest.raises(AtomicWriteError, match="disk full"):
        write_store(path, new)
    assert open_store(path).x.to_ragged() == old
    assert [p.name for p in tmp_path.iterdir()] == ["s.arrow"]


def test_write_store_checks_its_input(tmp_path):
    """Chunks must agree with the first one; features and dtype are checked."""
    x = _data([2, 3])
    path = tmp_path / "s.arrow"
    with pytest.raises(ValueError, match=r"features must be F = 3 distinct names"):
        write_store(path, x, features=["a", "a", "b"])
    with pytest.raises(ValueError, match=r"dtype must be float32 or float64"):
        write_store(path, x, dtype=np.float16)
    with pytest.raises(ValueError, match=r"values \(N, F\)"):
        write_store(path, Ragged.from_sequences([[1.0, 2.0]]))
    other = StoreChunk(_data([1], F=2), np.array([5]), None)
    with pytest.raises(ValueError, match=r"chunks\[1\].x must have F = 3 features"):
        write_store(path, [StoreChunk(x, np.array([0, 1]), None), other])
    with pytest.raises(TypeError, match=r"must be a StoreChunk"):
        write_store(path, [x])
    with pytest.raises(ValueError, match=r"ids must have shape \(B,\) = \(2,\)"):
        write_store(path, x, ids=np.array([1]))
    assert list(tmp_path.iterdir()) == []


def test_stored_ragged_pickles_by_path_and_keeps_its_selection(tmp_path):
    """A pickled StoredRagged maps the file again; selection and transform survive."""
    x = _data([300, 100, 400, 100, 500])
    path = tmp_path / "s.arrow"
    write_store(path, x, chunk_bytes=5000)
    scaler = Standardizer.fit(x)
    stored = open_store(path).x.select([4, 0, 2]).with_transform(scaler.transform)
    payload = pickle.dumps(stored)
    assert len(payload) < x.values.nbytes  # the steps do not travel
    again = pickle.loads(payload)
    assert again.to_ragged() == scaler.transform(x[[4, 0, 2]])
    assert again[1].shape == (300, 3)


def test_release_drops_pages_and_reads_stay_exact(tmp_path):
    """Dropping the mapped pages every few bytes changes no value read afterwards."""
    x = _data(range(40), F=4)
    path = tmp_path / "s.arrow"
    write_store(path, x, chunk_bytes=2000)
    stored = open_store(path, release_every=64).x
    for _ in range(2):
        assert stored[np.arange(len(x))[::-1]] == x[np.arange(len(x))[::-1]]
    stored.release()
    assert stored.to_ragged() == x


@given(lengths=st.lists(st.integers(0, 20), max_size=40), block_steps=st.integers(1, 50))
def test_plan_blocks_covers_rows_in_order(lengths, block_steps):
    """Blocks cover the rows in order; each but the last holds at least block_steps steps."""
    blocks = plan_blocks(lengths, block_steps)
    assert [start for start, _ in blocks] == [0, *[stop for _, stop in blocks[:-1]]][: len(blocks)]
    assert (blocks[-1][1] if blocks else 0) == len(lengths)
    for start, stop in blocks:
        assert stop > start
        held = sum(lengths[start:stop])
        assert held - lengths[stop - 1] < block_steps  # closes as soon as the budget is met
    for start, stop in blocks[:-1]:
        assert sum(lengths[start:stop]) >= block_steps


def test_fit_standardizer_is_the_same_from_memory_and_from_a_store(tmp_path):
    """The streaming fit gives bit-identical statistics on a Ragged and on its store."""
    x = _data([30, 0, 7, 12, 50, 3], F=2)
    path = tmp_path / "s.arrow"
    write_store(path, x, chunk_bytes=300)
    stored = open_store(path).x
    rows = np.array([5, 0, 3])
    for subset in (None, rows):
        a = fit_standardizer(x, rows=subset, block_steps=16)
        b = fit_standardizer(stored, rows=subset, block_steps=16)
        np.testing.assert_array_equal(a.mean, b.mean)
        np.testing.assert_array_equal(a.std, b.std)
    whole = Standardizer.fit(x)
    np.testing.assert_allclose(fit_standardizer(stored, block_steps=16).std, whole.std, rtol=1e-12)


def test_fit_standardizer_warns_about_features_without_steps(tmp_path):
    """A feature that is NaN everywhere gets mean 0 and std 1, with a warning naming it."""
    x = Ragged.from_sequences([np.array([[1.0, np.nan], [2.0, np.nan]])])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scaler = fit_standardizer(x)
    assert "features [1]" in str(caught[0].message)
    assert scaler.std[1] == 1.0


def test_ragged_view_shares_memory_and_checks_offsets():
    """Ragged.view wraps an array without copying it; bad offsets are refused."""
    steps = np.arange(6.0).reshape(3, 2)
    r = Ragged.view(steps, [0, 1, 3])
    assert np.shares_memory(r.values, steps)
    assert not r.values.flags.writeable
    assert steps.flags.writeable  # the caller's array is left as it was
    with pytest.raises(ValueError, match=r"offsets\[-1\] must equal len\(values\) = 3"):
        Ragged.view(steps, [0, 1, 2])
    with pytest.raises(TypeError, match=r"values must be a NumPy array"):
        Ragged.view([[1.0]], [0, 1])  # type: ignore[arg-type]


def test_stored_ragged_index_errors(tmp_path):
    """Out-of-range rows and non-integer indices are refused with the standard messages."""
    path = tmp_path / "s.arrow"
    write_store(path, _data([1, 2]))
    stored = open_store(path).x
    with pytest.raises(IndexError, match=r"index must be in \[-B, B\) = \[-2, 2\), got 2"):
        stored[2]
    with pytest.raises(IndexError, match=r"index\[1\] must be in \[-B, B\)"):
        stored[np.array([0, 5])]
    with pytest.raises(TypeError, match=r"index must be an int, a slice"):
        stored[np.array([0.5])]
    with pytest.raises(IndexError, match=r"a bool index must have shape \(B,\) = \(2,\)"):
        stored.select(np.array([True]))
    assert stored[-1].shape == (2, 3)
    assert len(stored[np.array([True, False])]) == 1
