"""A torch Dataset/DataLoader over a store: the same batches as from memory, workers included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from varlen.batching import BucketBatchSampler, Collate, RaggedDataset
from varlen.data.io.store import open_store, write_store
from varlen.data.normalize import Standardizer
from varlen.data.ragged import Ragged

pytest.importorskip("pyarrow")


def _stored(tmp_path, lengths, F=3, seed=0):
    rng = np.random.default_rng(seed)
    x = Ragged.from_sequences([rng.normal(size=(int(T), F)) for T in lengths])
    path = tmp_path / "s.arrow"
    write_store(path, x, chunk_bytes=2048)  # several record batches
    return x, open_store(path, release_every=4096).x


def _assert_same_batches(a, b):
    assert len(a) == len(b)
    for left, right in zip(a, b, strict=True):
        torch.testing.assert_close(left.x, right.x, rtol=0, atol=0)
        assert torch.equal(left.lengths, right.lengths)
        assert torch.equal(left.mask, right.mask)
        assert torch.equal(left.indices, right.indices)
        assert torch.equal(left.targets, right.targets)


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("lengths", [[0, 1, 40, 3, 17, 0, 25, 8], [2, 1, 3, 0, 1, 2, 1]])
def test_collate_from_a_store_equals_collate_from_memory(tmp_path, padding, lengths):
    """Long rows (padded from views) and short rows (gathered) give the in-memory batch."""
    x, stored = _stored(tmp_path, lengths)
    collate = Collate(padding=padding, value=-1.0, dtype=torch.float32)
    targets = np.arange(len(x))
    memory, disk = RaggedDataset(x, targets), RaggedDataset(stored, targets)
    for rows in ([6, 0, 3], [1, 2, 3, 4], list(range(len(x)))[::-1], []):
        _assert_same_batches(
            [collate(memory.__getitems__(rows))], [collate(disk.__getitems__(rows))]
        )
    assert len(disk) == len(x)
    np.testing.assert_array_equal(disk.lengths, x.lengths)
    index, sequence, target = disk[2]
    assert index == 2
    assert target == 2
    np.testing.assert_array_equal(sequence, x[2])


@pytest.mark.parametrize(
    ("workers", "context"), [(0, None), (2, "fork"), (1, "spawn")], ids=["main", "fork", "spawn"]
)
def test_dataloader_over_a_store_matches_memory(tmp_path, workers, context):
    """A DataLoader with workers reads each batch from the store, standardized on the fly."""
    x, stored = _stored(tmp_path, np.random.default_rng(1).integers(0, 30, 60))
    scaler = Standardizer.fit(x)
    y = np.arange(len(x)) % 3

    def loader(data, num_workers, multiprocessing_context):
        sampler = BucketBatchSampler(x.lengths, 8, seed=0)
        return DataLoader(
            RaggedDataset(data, y),
            batch_sampler=sampler,
            collate_fn=Collate(dtype=torch.float32),
            num_workers=num_workers,
            multiprocessing_context=multiprocessing_context,
        )

    expected = list(loader(scaler.transform(x), 0, None))
    got = list(loader(stored.with_transform(scaler.transform), workers, context))
    _assert_same_batches(expected, got)
