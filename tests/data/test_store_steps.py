"""Stores of per-step targets: written beside the steps, served like them; old stores open."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from varlen.data.io.convert import convert
from varlen.data.io.store import STORE_VERSION, StoreChunk, open_store, write_store
from varlen.data.ragged import Ragged

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "store_v1"


def _steps(lengths, seed=0):
    rng = np.random.default_rng(seed)
    x = Ragged.from_sequences([rng.normal(size=(int(T), 2)) for T in lengths])
    y = x.with_values(rng.integers(-1, 3, size=x.num_steps))
    return x, y


def _write(path, x, y, size=2):
    chunks = (
        StoreChunk(x[i : i + size], np.arange(i, min(i + size, len(x))), y[i : i + size])
        for i in range(0, len(x), size)
    )
    return write_store(path, chunks, chunk_bytes=64)  # several record batches


def test_per_step_targets_round_trip_as_views_and_gathers(tmp_path):
    """Per-step targets come back as written: views for runs of rows, one gather otherwise."""
    x, y = _steps([3, 0, 4, 1, 5, 2])
    summary = _write(tmp_path / "s.arrow", x, y)
    assert summary.num_batches > 1
    store = open_store(tmp_path / "s.arrow")
    assert (store.version, store.targets, store.y) == (STORE_VERSION, "step", None)
    assert store.version == 2
    targets = store.step_targets
    assert targets is not None
    assert targets.dtype == np.int64
    np.testing.assert_array_equal(targets.lengths, x.lengths)
    assert targets.to_ragged() == y
    run = targets[0:2]  # inside the first record batch
    assert not run.values.flags.writeable  # a view of the map
    assert targets[np.array([4, 0, 2])] == y[[4, 0, 2]]
    np.testing.assert_array_equal(targets[2], y[2])
    moved = pickle.loads(pickle.dumps(targets.select([5, 3])))  # reopened by path
    assert moved.to_ragged() == y[[5, 3]]
    assert store.x.to_ragged() == x


def test_pandas_reads_the_per_step_column(tmp_path):
    """In pandas the y column is one list of targets per sequence, beside x's steps."""
    x, y = _steps([2, 3])
    write_store(tmp_path / "s.arrow", x, y=y.with_values(y.values.astype(float)))
    frame = pd.read_feather(tmp_path / "s.arrow")
    assert list(frame.columns) == ["id", "x", "y"]
    assert [list(v) for v in frame["y"]] == [list(s.astype(float)) for s in y]
    assert [len(v) for v in frame["x"]] == [2, 3]


def test_per_step_targets_are_checked_when_written(tmp_path):
    """Targets of other lengths, text, or a kind that changes between chunks are refused."""
    x, y = _steps([2, 3])
    with pytest.raises(ValueError, match=r"one target per step of x"):
        write_store(tmp_path / "a.arrow", x, y=y[[1, 0]])
    with pytest.raises(ValueError, match=r"must hold one number per step"):
        write_store(tmp_path / "a.arrow", x, y=y.with_values(np.array(list("abcde"))))
    chunks = [
        StoreChunk(x[0:1], np.array([0]), y[0:1]),
        StoreChunk(x[1:2], np.array([1]), np.array([1])),
    ]
    with pytest.raises(ValueError, match=r"chunks\[1\].y must hold per-step"):
        write_store(tmp_path / "a.arrow", chunks)
    assert not (tmp_path / "a.arrow").exists()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_convert_stores_a_target_varying_within_ids_per_step(tmp_path, suffix):
    """A target varying within an id is stored per step (NaN kept), in the steps' order."""
    frame = pd.DataFrame(
        {
            "id": [1, 1, 1, 2, 2, 3],
            "t": [2, 0, 1, 0, 1, 0],
            "v": [0.5, 1.5, 2.5, 3.5, 4.5, 5.5],
            "speed": [3.0, 1.0, np.nan, 4.0, 4.0, 6.0],
        }
    )
    source = tmp_path / f"t{suffix}"
    frame.to_csv(source, index=False) if suffix == ".csv" else frame.to_parquet(source)
    convert(source, tmp_path / "s.arrow", id="id", order="t", target="speed", block_bytes=64)
    store = open_store(tmp_path / "s.arrow")
    assert store.targets == "step"
    assert store.step_targets is not None
    expected = [[1.0, np.nan, 3.0], [4.0, 4.0], [6.0]]
    for got, want in zip(store.step_targets.to_ragged().to_sequences(), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(store.x.to_ragged().values[:, 0], [1.5, 2.5, 0.5, 3.5, 4.5, 5.5])


def test_convert_refuses_integer_targets_turning_fractional(tmp_path):
    """Integer per-step targets keep their type: a later fractional one is named by its row."""
    rows = "".join(f"{i // 4},{i % 4},1.0,{i % 3}\n" for i in range(4000))
    source = tmp_path / "t.csv"
    source.write_text("id,t,v,y\n" + rows + "9999,0,1.0,0.5\n")
    with pytest.raises(ValueError, match=r"row 4001 \(line 4002\): column 'y' must hold int64"):
        convert(source, tmp_path / "s.arrow", id="id", order="t", target="y", block_bytes=1 << 12)
    assert not (tmp_path / "s.arrow").exists()


def test_stores_of_version_1_still_open():
    """Stores written by the code before per-step targets (version 1) open as they did."""
    store = open_store(FIXTURES / "labelled.arrow")
    assert (store.version, store.targets, store.step_targets) == (1, "sequence", None)
    assert store.y is not None
    assert store.y.tolist() == ["up", "down", "up"]
    assert store.ids.tolist() == ["a", "b", "c"]
    assert store.features == ("u", "v")
    assert store.standardizer is not None
    assert store.x[np.array([2, 0])].to_sequences()[1].tolist() == [[0, 1], [2, 3], [4, 5]]
    bare = open_store(FIXTURES / "unlabelled.arrow")
    assert (bare.version, bare.targets, bare.has_targets) == (1, None, False)
    assert bare.x.dtype == np.float32
    np.testing.assert_array_equal(bare.x.lengths, [3, 0, 2])
