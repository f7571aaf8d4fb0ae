"""Training from a store: the in-memory run's weights and predictions, in bounded memory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from tests.cli._data import sequences
from varlen.data.io.store import fit_standardizer, open_store, write_store
from varlen.training.loop import TrainConfig, evaluate, fit, predict
from varlen.training.models import SequenceClassifier

pytest.importorskip("pyarrow")


def _standardize(scaler):
    """A picklable transform: standardize, then float32 (what training takes)."""
    return _Standardize(scaler)


class _Standardize:
    def __init__(self, scaler):
        self.scaler = scaler

    def __call__(self, x):
        scaled = self.scaler.transform(x)
        return scaled.with_values(scaled.values.astype(np.float32))


@pytest.mark.parametrize("technique", ["bucket", "lanes", "one-at-a-time"])
def test_fit_from_a_store_equals_fit_from_memory(tmp_path, technique):
    """Same data, seed and standardizer: identical weights, losses and predictions."""
    x, labels, _ = sequences(40, seed=3)
    y = (labels == "up").astype(np.int64)
    path = tmp_path / "s.arrow"
    write_store(path, x, y=y, chunk_bytes=1024)
    stored = open_store(path).x
    scaler = fit_standardizer(stored, rows=np.arange(30))
    transform = _standardize(scaler)
    config = TrainConfig(technique=technique, epochs=2, batch_size=8, lr=1e-2, patience=None)
    runs = []
    for data in (transform(x), stored.with_transform(transform)):
        torch.manual_seed(0)
        model = SequenceClassifier(2, 2, hidden_size=6)
        train, val = data[np.arange(30)], data[np.arange(30, 40)]
        if not isinstance(data, type(x)):
            train, val = data.select(np.arange(30)), data.select(np.arange(30, 40))
        result = fit(model, train, y[:30], config=config, validation=(val, y[30:]), progress=False)
        runs.append((model, result, predict(model, data), evaluate(model, val, y[30:])))
    (memory, memory_fit, memory_pred, memory_eval), (disk, disk_fit, disk_pred, disk_eval) = runs
    for name, tensor in memory.state_dict().items():
        assert torch.equal(tensor, disk.state_dict()[name]), name
    assert [s.train_loss for s in memory_fit.history] == [s.train_loss for s in disk_fit.history]
    np.testing.assert_array_equal(memory_pred, disk_pred)
    assert memory_eval == disk_eval


MEMORY_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, torch
    from varlen.batching import BucketBatchSampler, Collate, RaggedDataset
    from varlen.data.io.store import StoreChunk, open_store, write_store
    from varlen.data.ragged import Ragged
    from varlen.training.loop import TrainConfig, fit
    from varlen.training.models import SequenceClassifier

    torch.set_num_threads(1)
    path, B, T, F = sys.argv[1], 1200, 500, 8
    rng = np.random.default_rng(0)

    def chunks():  # the store is written in bounded memory too
        for start in range(0, B, 50):
            lengths = rng.integers(T // 2, 3 * T // 2, 50)
            x = Ragged(rng.normal(size=(int(lengths.sum()), F)).astype(np.float32),
                       np.concatenate([[0], np.cumsum(lengths)]))
            yield StoreChunk(x, np.arange(start, start + 50), np.arange(50) % 2)

    write_store(path, chunks(), chunk_bytes=1 << 20)

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    store = open_store(path, release_every=2 << 20)
    y = store.y
    loader = torch.utils.data.DataLoader(
        RaggedDataset(store.x, y), batch_sampler=BucketBatchSampler(store.x.lengths, 16, seed=0),
        collate_fn=Collate(dtype=torch.float32))
    for number, batch in enumerate(loader):
        if number == 0:  # after torch's own first-use memory
            peak = base = rss()
        peak = max(peak, rss())
    loader_growth = peak - base
    model = SequenceClassifier(F, 2, hidden_size=4)
    warm_up = TrainConfig(epochs=1, batch_size=32, patience=None, max_steps=2)
    fit(model, store.x, y, config=warm_up, progress=False)  # torch's own first-use memory
    base = rss()
    config = TrainConfig(epochs=1, batch_size=32, patience=None, max_steps=16)
    fit(model, store.x, y, config=config, progress=False)  # 16 x 32 rows: 43% of the store
    fit_growth = rss() - base
    base = rss()
    in_memory = store.x.to_ragged()
    memory_growth = rss() - base
    print(store.x.nbytes, loader_growth, fit_growth, memory_growth)
    """
)


def test_a_pass_over_a_store_holds_a_fraction_of_it(tmp_path):
    """Reading every batch of a 19 MB store grows RSS by < 25% of it; loading it grows it fully.

    Allocations from 64 KiB are mapped (glibc's ``MALLOC_MMAP_THRESHOLD_``), so a freed batch
    goes back to the system and RSS shows the memory that is live, not the allocator's cache.
    """
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    run = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(tmp_path / "s.arrow")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    size, loader_growth, fit_growth, memory_growth = map(int, run.stdout.split())
    assert size > 15e6
    assert loader_growth < 0.25 * size, (loader_growth, size)
    assert fit_growth < 0.25 * size, (fit_growth, size)
    assert memory_growth > 0.9 * size  # the measure sees data that is held
