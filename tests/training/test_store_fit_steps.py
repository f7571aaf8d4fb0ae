"""Per-step training from a store: `fit_steps` over a store's steps and per-step targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.cli._data import sequences
from tests.training.test_store_fit import _standardize
from varlen.data.io.store import StoredRagged, fit_standardizer, open_store, write_store
from varlen.training.loop import TrainConfig
from varlen.training.per_step import (
    SequenceLabeller,
    Steps,
    evaluate_steps,
    fit_steps,
    predict_step_scores,
)

pytest.importorskip("pyarrow")


@pytest.mark.parametrize("technique", ["bucket", "pack"])
def test_fit_steps_from_a_store_equals_fit_steps_from_memory(tmp_path, technique):
    """Same data, seed and standardizer: identical weights, losses, scores and predictions."""
    x, _, _ = sequences(30, seed=4)
    y = x.with_values((x.values[:, 0] > 0).astype(np.int64))
    path = tmp_path / "s.arrow"
    write_store(path, x, y=y, chunk_bytes=512)  # several record batches: views and gathers
    store = open_store(path)
    assert store.step_targets is not None
    transform = _standardize(fit_standardizer(store.x, rows=np.arange(24)))
    config = TrainConfig(technique=technique, epochs=2, batch_size=8, lr=1e-2, patience=None)
    runs = []
    for data, targets in (
        (transform(x), y),
        (store.x.with_transform(transform), store.step_targets),
    ):
        torch.manual_seed(0)
        model = SequenceLabeller(2, 2, hidden_size=6)
        rows, held = np.arange(24), np.arange(24, 30)
        train: tuple[Steps, Steps]
        val: tuple[Steps, Steps]
        if isinstance(data, StoredRagged):  # rows of the store, still on disk
            assert isinstance(targets, StoredRagged)
            train = (data.select(rows), targets.select(rows))
            val = (data.select(held), targets.select(held))
        else:
            train, val = (data[rows], targets[rows]), (data[held], targets[held])
        result = fit_steps(model, *train, config=config, validation=val, progress=False)
        scores = predict_step_scores(model, data, batch_size=7)
        runs.append((model, result, scores, evaluate_steps(model, *val)))
    (memory, memory_fit, memory_scores, memory_eval), (disk, disk_fit, disk_scores, disk_eval) = (
        runs
    )
    for name, tensor in memory.state_dict().items():
        assert torch.equal(tensor, disk.state_dict()[name]), name
    assert [s.train_loss for s in memory_fit.history] == [s.train_loss for s in disk_fit.history]
    assert memory_scores == disk_scores
    assert memory_eval == disk_eval
