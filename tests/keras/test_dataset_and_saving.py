"""BucketedDataset with fit/evaluate/predict, the .keras round trip and convert(model)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import keras
import varlen
import varlen.keras as vk
from tests.keras._helpers import as_numpy


def _sequences(rng: np.random.Generator, n: int = 13) -> list[np.ndarray]:
    return [rng.normal(size=(int(T), 3)).astype("float32") + 2.0 for T in rng.integers(1, 9, n)]


def _model(module: Any, mask_value: float = 0.0) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Masking(mask_value),
            module.LSTM(4),
            keras.layers.Dense(1),
        ]
    )


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_fit_evaluate_predict_with_bucketed_batches(padding):
    """Fit runs on bucketed batches; predict gives each row in input order, as if run alone."""
    rng = np.random.default_rng(0)
    x = _sequences(rng)
    y = rng.normal(size=(len(x), 1)).astype("float32")
    model = _model(vk, mask_value=-9.0)
    model.compile(optimizer="adam", loss="mse")
    # pad_to=8: one batch length, so JAX compiles the step once.
    train = vk.BucketedDataset(x, y, batch_size=4, padding=padding, value=-9.0, pad_to=8, seed=1)
    history = model.fit(train, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert np.isfinite(model.evaluate(train, verbose=0))
    queries = vk.BucketedDataset(x, batch_size=5, padding=padding, value=-9.0, pad_to=8)
    predicted = model.predict(queries, verbose=0)
    alone = np.concatenate([as_numpy(model(s[None])) for s in x])
    np.testing.assert_allclose(predicted, alone, rtol=1e-5, atol=1e-5)


def test_bucketed_order_reshuffles_per_epoch_and_restores():
    """Bucketed batches hold similar lengths, change per epoch (seeded) and can be unsorted."""
    rng = np.random.default_rng(1)
    x = varlen.Ragged.from_sequences(_sequences(rng, 40))
    data = vk.BucketedDataset(x, np.arange(40), batch_size=8, seed=3)
    twin = vk.BucketedDataset(x, np.arange(40), batch_size=8, seed=3)
    first = data.order.copy()
    assert sorted(first.tolist()) == list(range(40))
    np.testing.assert_array_equal(first, twin.order)
    batch, targets = data[0]
    assert batch.shape[1] == max(len(x[int(i)]) for i in targets)  # padded to its own longest
    data.on_epoch_end()
    assert not np.array_equal(first, data.order)
    served = np.concatenate([data[i][1] for i in range(len(data))])
    np.testing.assert_array_equal(data.restore_order(served), np.arange(40))


def test_token_ids_pad_with_mask_zero_and_keep_order():
    """Integer ids stay integers, padded with 0 for Embedding(mask_zero=True); max_tokens."""
    data = vk.BucketedDataset([[1, 2, 3], [4], [5, 6], [7, 8, 9, 9]], max_tokens=6, padding="pre")
    assert [b[0].dtype.kind for b in data] == ["i"] * len(data)
    np.testing.assert_array_equal(data.order, np.arange(4))
    assert all(b[0].size <= 6 for b in data)
    np.testing.assert_array_equal(data[0][0], [[1, 2, 3], [0, 0, 4]])
    rounded = vk.BucketedDataset([[1, 2, 3], [4]], batch_size=2, pad_to=4)
    np.testing.assert_array_equal(rounded[0][0], [[1, 2, 3, 0], [4, 0, 0, 0]])


def test_dataset_rejects_bad_arguments():
    """A padded array, mismatched targets, both sizes or a bad side are refused."""
    with pytest.raises(TypeError, match=r"padded float64 array of shape \(2, 3, 1\)"):
        vk.BucketedDataset(np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match=r"one target per sequence, 2, got 3"):
        vk.BucketedDataset([[1], [2]], y=[0, 1, 2])
    with pytest.raises(ValueError, match=r"batch_size or max_tokens, got both"):
        vk.BucketedDataset([[1], [2]], batch_size=1, max_tokens=4)
    with pytest.raises(ValueError, match=r"pad_to must be an int >= 1, got 0"):
        vk.BucketedDataset([[1], [2]], pad_to=0)
    with pytest.raises(ValueError, match=r"padding must be"):
        vk.BucketedDataset([[1], [2]], padding="left")


def test_keras_file_round_trip(tmp_path):
    """A model with varlen's layers saves to .keras and loads with the same layers and results."""
    rng = np.random.default_rng(2)
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Masking(),
            keras.layers.Bidirectional(vk.GRU(4, return_sequences=True)),
            vk.LSTM(3),
        ]
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.layers[-1]) is vk.LSTM
    assert type(loaded.layers[-2].forward_layer) is vk.GRU
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    x[1, 3:] = 0.0
    np.testing.assert_allclose(as_numpy(loaded(x)), as_numpy(model(x)), rtol=1e-6, atol=1e-6)


def test_convert_swaps_layers_and_keeps_results():
    """convert() puts varlen's layers in place of Keras's (nested, bidirectional), same weights."""
    rng = np.random.default_rng(3)
    inputs = keras.Input((None, 3))
    inner = keras.Sequential([keras.layers.Masking(), keras.layers.GRU(4, return_sequences=True)])
    masked = keras.layers.Masking()(inner(inputs))
    hidden = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True))(masked)
    model = keras.Model(inputs, keras.layers.LSTM(2)(hidden))
    converted = vk.convert(model)
    recurrent = [layer for layer in _all_layers(converted) if isinstance(layer, keras.layers.RNN)]
    assert len(recurrent) == 4
    assert {type(layer).__module__ for layer in recurrent} == {"varlen.keras.layers"}
    x = rng.normal(size=(3, 6, 3)).astype("float32")
    x[0, 2:] = 0.0
    np.testing.assert_allclose(as_numpy(converted(x)), as_numpy(model(x)), rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match=r"must be a keras.Model, got int"):
        vk.convert(3)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        if isinstance(layer, keras.layers.Bidirectional):
            yield layer.forward_layer
            yield layer.backward_layer
