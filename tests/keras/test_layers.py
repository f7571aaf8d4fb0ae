"""varlen.keras.LSTM/GRU against keras.layers with copied weights and each sequence alone.

They run on the backend of this process: torch by default, JAX in scripts/check's second run.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np
import pytest

import keras
import varlen.keras as vk
from tests.keras._helpers import as_numpy, masks, pair

# Layer options, and whether the call gets an initial state.
OPTIONS = [
    ({"return_sequences": True}, False),
    ({"return_state": True}, True),
    ({"return_sequences": True, "go_backwards": True, "return_state": True}, True),
    ({"return_sequences": True, "zero_output_for_mask": True}, False),
]


@pytest.mark.torch_backend  # on other backends the layers run Keras's own loop
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("side", ["post", "pre", "holes", "none"])
@pytest.mark.parametrize("case", OPTIONS, ids=lambda c: "-".join(sorted(c[0])) + f"-hx{c[1]:d}")
def test_layer_matches_keras_with_copied_weights(kind, side, case):
    """Outputs (incl. at masked steps) and states equal Keras's own layer's."""
    options, given = case
    rng = np.random.default_rng(0)
    B, T, F = 6, 7, 3
    theirs, ours = pair(kind, rng, F, **options)
    x = rng.normal(size=(B, T, F)).astype("float32")
    mask = masks(side, B, T, rng)
    initial = None
    if given:
        initial = [rng.normal(size=(B, 5)).astype("float32") for _ in range(1 + (kind == "LSTM"))]
    expected = as_numpy(theirs(x, mask=mask, initial_state=initial))
    got = as_numpy(ours(x, mask=mask, initial_state=initial))
    for e, g in zip(
        expected if isinstance(expected, list) else [expected],
        got if isinstance(got, list) else [got],
        strict=True,
    ):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("side", ["post", "pre", "holes"])
def test_each_sequence_equals_the_sequence_alone(kind, side):
    """Real-step outputs and the final state of every row equal that row run alone (float64)."""
    rng = np.random.default_rng(1)
    B, T, F = 6, 9, 2
    _, ours = pair(kind, rng, F, dtype="float64", return_sequences=True, return_state=True)
    x = rng.normal(size=(B, T, F))
    mask = masks(side, B, T, rng)
    assert mask is not None
    x[~mask] = 1e6  # garbage at masked steps must not leak
    out, h, *_ = as_numpy(ours(x, mask=mask))
    for row in range(B):
        real = x[row][mask[row]][None]
        if real.shape[1] == 0:
            np.testing.assert_array_equal(h[row], 0.0)
            continue
        alone_out, alone_h, *_ = as_numpy(ours(real))
        np.testing.assert_allclose(out[row][mask[row]], alone_out[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(h[row], alone_h[0], rtol=0, atol=1e-12)


def _stack(module: Any, masking_value: float) -> keras.Model:
    """Masking -> Bidirectional(LSTM, sequences) -> GRU(backwards) -> Dense: a small model."""
    return keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Masking(mask_value=masking_value),
            keras.layers.Bidirectional(module.LSTM(4, return_sequences=True)),
            module.GRU(4, go_backwards=True),
            keras.layers.Dense(2),
        ]
    )


def test_stacked_bidirectional_model_matches_keras_and_trains_alike():
    """A stacked bidirectional model: same predictions and same weights after one SGD step."""
    rng = np.random.default_rng(2)
    theirs, ours = _stack(keras.layers, 0.0), _stack(vk, 0.0)
    ours.set_weights(theirs.get_weights())
    lengths = np.array([8, 1, 5, 3])
    x = rng.normal(size=(4, 8, 3)).astype("float32")
    x[np.arange(8)[None, :] >= lengths[:, None]] = 0.0  # post padding, as Masking reads it
    y = rng.normal(size=(4, 2)).astype("float32")
    np.testing.assert_allclose(as_numpy(ours(x)), as_numpy(theirs(x)), rtol=1e-5, atol=1e-5)
    for model in (theirs, ours):
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
        model.train_on_batch(x, y)
    for got, expected in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_stateful_chunks_give_the_whole_sequence(kind):
    """Chunks of any sizes through a stateful layer equal the whole sequence at once.

    Rows end at different chunks (masked afterwards) and restart after reset_state(rows=...).
    """
    rng = np.random.default_rng(3)
    B, T, F = 3, 12, 2
    _, whole = pair(kind, rng, F, return_sequences=True)
    stream = type(whole)(5, return_sequences=True, stateful=True)
    stream.build((B, None, F))
    stream.set_weights(whole.get_weights())
    x = rng.normal(size=(B, T, F)).astype("float32")
    mask = np.arange(T)[None, :] < np.array([[12], [4], [9]])  # rows end in different chunks
    expected = as_numpy(whole(x, mask=mask))
    cuts = [0, 3, 4, 9, 12]
    got = np.concatenate(
        [as_numpy(stream(x[:, a:b], mask=mask[:, a:b])) for a, b in itertools.pairwise(cuts)],
        axis=1,
    )
    real = mask
    np.testing.assert_allclose(got[real], expected[real], rtol=1e-5, atol=1e-5)
    # Row 1 finished: restart it alone with a new sequence; rows 0 and 2 keep their state.
    before = [as_numpy(v.value) for v in stream.states]
    stream.reset_state(rows=[1])
    after = [as_numpy(v.value) for v in stream.states]
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(a[[0, 2]], b[[0, 2]])
        np.testing.assert_array_equal(a[1], 0.0)
    fresh = rng.normal(size=(1, 5, F)).astype("float32")
    feed = np.zeros((B, 5, F), "float32")
    feed[1] = fresh[0]
    chunk_mask = np.zeros((B, 5), bool)
    chunk_mask[1] = True
    out = as_numpy(stream(feed, mask=chunk_mask))
    np.testing.assert_allclose(out[1], as_numpy(whole(fresh))[0], rtol=1e-5, atol=1e-5)


def test_stateful_model_trains_like_keras():
    """A stateful model trains on consecutive chunks (state carried) to Keras's weights."""
    rng = np.random.default_rng(7)
    models = []
    for module in (keras.layers, vk):
        body = [keras.layers.Masking(), module.LSTM(4, stateful=True), keras.layers.Dense(1)]
        models.append(keras.Sequential([keras.Input((None, 3), batch_size=2), *body]))
    models[1].set_weights(models[0].get_weights())
    chunks = [rng.normal(size=(2, 4, 3)).astype("float32") for _ in range(3)]
    y = rng.normal(size=(2, 1)).astype("float32")
    for model in models:
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        for chunk in chunks:
            model.train_on_batch(chunk, y)
    for got, expected in zip(models[1].get_weights(), models[0].get_weights(), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_sequences_end_to_end_through_one_stream_are_exact():
    """A stream of sequences laid end to end, state reset between them, equals each alone."""
    rng = np.random.default_rng(4)
    _, whole = pair("LSTM", rng, 2, return_sequences=True)
    stream = vk.LSTM(5, return_sequences=True, stateful=True)
    stream.build((1, None, 2))
    stream.set_weights(whole.get_weights())
    for length in (3, 1, 6):
        sequence = rng.normal(size=(1, length, 2)).astype("float32")
        stream.reset_state()
        got = np.concatenate(
            [as_numpy(stream(sequence[:, i : i + 2])) for i in range(0, length, 2)], 1
        )
        np.testing.assert_allclose(got, as_numpy(whole(sequence)), rtol=1e-5, atol=1e-5)


def test_reset_state_rejects_bad_rows():
    """Rows out of range, of the wrong kind or shape are refused with the expected form."""
    layer = vk.LSTM(2, stateful=True)
    layer.build((3, None, 2))
    with pytest.raises(ValueError, match=r"rows must be in \[0, B\) = \[0, 3\), got 3"):
        layer.reset_state(rows=[3])
    with pytest.raises(ValueError, match=r"must have shape \(B,\) = \(3,\), got \(2,\)"):
        layer.reset_state(rows=np.array([True, False]))
    with pytest.raises(ValueError, match=r"rows must be int indices"):
        layer.reset_state(rows=[0.5])


@pytest.mark.torch_backend
@pytest.mark.parametrize(
    ("kind", "options", "named"),
    [
        ("LSTM", {"activation": "relu"}, "activation='relu'"),
        ("LSTM", {"recurrent_activation": "hard_sigmoid"}, "recurrent_activation='hard_sigmoid'"),
        ("GRU", {"reset_after": False}, "reset_after=False"),
    ],
)
def test_arguments_off_the_fused_math_take_keras_loop_with_one_warning(kind, options, named):
    """A non-default activation or reset_after=False warns once, naming it, and stays exact."""
    rng = np.random.default_rng(5)
    with pytest.warns(UserWarning, match=f"{named}.*Keras's own exact per-step loop") as caught:
        theirs, ours = pair(kind, rng, 3, return_sequences=True, **options)
    assert len([w for w in caught if "varlen.keras" in str(w.message)]) == 1
    x = rng.normal(size=(4, 6, 3)).astype("float32")
    mask = masks("holes", 4, 6, rng)
    with warnings.catch_warnings(record=True) as calls:
        warnings.simplefilter("always")
        got = as_numpy(ours(x, mask=mask))
    assert not [w for w in calls if "varlen.keras" in str(w.message)]  # said once, at build
    np.testing.assert_allclose(got, as_numpy(theirs(x, mask=mask)), rtol=1e-6, atol=1e-6)


@pytest.mark.torch_backend
def test_recurrent_dropout_warns_and_dropout_trains():
    """recurrent_dropout takes Keras's loop (warned); input dropout stays on the fast route."""
    with pytest.warns(UserWarning, match=r"recurrent_dropout=0.3"):
        vk.GRU(3, recurrent_dropout=0.3)
    layer = vk.LSTM(3, dropout=0.5, seed=0, return_sequences=True)
    x = np.ones((2, 4, 3), "float32")
    trained, inferred = as_numpy(layer(x, training=True)), as_numpy(layer(x, training=False))
    assert trained.shape == inferred.shape == (2, 4, 3)
    assert not np.allclose(trained, inferred)


def test_weights_and_config_are_keras_layers():
    """Same weight names, shapes and order as Keras's; get_config round-trips."""
    rng = np.random.default_rng(6)
    for kind in ("LSTM", "GRU"):
        theirs, ours = pair(kind, rng, 3, return_sequences=True)
        assert [w.shape for w in ours.weights] == [w.shape for w in theirs.weights]
        assert [w.path.split("/")[-1] for w in ours.weights] == [
            "kernel",
            "recurrent_kernel",
            "bias",
        ]
        again = type(ours).from_config(ours.get_config())
        assert again.get_config() == ours.get_config()
