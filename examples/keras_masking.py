"""The classic Keras masking examples, with `keras.layers` and with `varlen.keras`.

(a) padded input (post, then pre) into ``LSTM(64)`` behind ``Masking``;
(b) integer sequences through ``Embedding(20, 64, mask_zero=True)`` into ``LSTM(64)``;
(c) sequences of different lengths fed one after another, in chunks, through one stateful
    ``LSTM(64)`` that carries its state (reset between sequences).

Each prints the largest difference between the two layers (same weights) and against each
sequence run alone, and the time of each. Run: ``python examples/keras_masking.py`` (Keras's
backend: ``KERAS_BACKEND``, torch when unset).
"""

from __future__ import annotations

import os
import time
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")

# The backend is chosen above, before Keras loads.
import numpy as np

import keras
import varlen
import varlen.keras as vk

RNG = np.random.default_rng(0)
LENGTHS = [40, 7, 25, 1, 33, 12]


def _timed(model: Any, x: Any) -> tuple[np.ndarray, float]:
    model(x)  # warm up
    start = time.perf_counter()
    out = keras.ops.convert_to_numpy(model(x))
    return out, time.perf_counter() - start


def _report(
    title: str,
    keras_out: np.ndarray,
    ours: np.ndarray,
    alone: np.ndarray,
    times: tuple[float, float],
) -> None:
    print(f"{title}")
    print(f"  max |keras.layers - varlen.keras|   = {np.abs(keras_out - ours).max():.2e}")
    print(f"  max |varlen.keras - each alone|     = {np.abs(ours - alone).max():.2e}")
    print(f"  time: keras.layers {times[0] * 1e3:7.1f} ms, varlen.keras {times[1] * 1e3:7.1f} ms")


def padded_input(padding: str) -> None:
    """(a) Masking + LSTM(64) on float sequences padded with zeros."""
    sequences = [RNG.normal(size=(T, 8)).astype("float32") for T in LENGTHS]
    x = varlen.pad_sequences(sequences, padding=padding, dtype="float32")  # (B, T, 8)
    models = []
    for module in (keras.layers, vk):
        models.append(
            keras.Sequential([keras.Input((None, 8)), keras.layers.Masking(), module.LSTM(64)])
        )
    models[1].set_weights(models[0].get_weights())
    (theirs, t0), (ours, t1) = _timed(models[0], x), _timed(models[1], x)
    alone = np.concatenate([keras.ops.convert_to_numpy(models[1](s[None])) for s in sequences])
    _report(
        f"(a) padded input, padding={padding!r}: Masking -> LSTM(64)", theirs, ours, alone, (t0, t1)
    )


def token_ids() -> None:
    """(b) Embedding(20, 64, mask_zero=True) + LSTM(64) on integer ids, 0 = padding."""
    sequences = [RNG.integers(1, 20, T) for T in LENGTHS]
    x = varlen.pad_sequences(sequences)  # pre-padding with 0, Keras's default
    models = []
    for module in (keras.layers, vk):
        layers = [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(20, 64, mask_zero=True),
        ]
        models.append(keras.Sequential([*layers, module.LSTM(64)]))
    models[1].set_weights(models[0].get_weights())
    (theirs, t0), (ours, t1) = _timed(models[0], x), _timed(models[1], x)
    alone = np.concatenate([keras.ops.convert_to_numpy(models[1](s[None])) for s in sequences])
    _report(
        "(b) token ids: Embedding(20, 64, mask_zero=True) -> LSTM(64)",
        theirs,
        ours,
        alone,
        (t0, t1),
    )


def carried_state(chunk: int = 4) -> None:
    """(c) sequences one after another through one stateful LSTM(64), in chunks of ``chunk``."""
    sequences = [RNG.normal(size=(T, 8)).astype("float32") for T in LENGTHS]
    layers = [keras.layers.LSTM(64, return_sequences=True, stateful=True)]
    layers.append(vk.LSTM(64, return_sequences=True, stateful=True))
    for layer in layers:
        layer.build((1, None, 8))
    layers[1].set_weights(layers[0].get_weights())
    outputs, times = [], []
    for layer in layers:
        start, parts = time.perf_counter(), []
        for sequence in sequences:
            layer.reset_state()  # a new sequence starts from zeros
            for i in range(0, len(sequence), chunk):
                parts.append(keras.ops.convert_to_numpy(layer(sequence[None, i : i + chunk]))[0])
        outputs.append(np.concatenate(parts))
        times.append(time.perf_counter() - start)
    whole = vk.LSTM(64, return_sequences=True)
    whole.build((None, None, 8))
    whole.set_weights(layers[1].get_weights())
    alone = np.concatenate([keras.ops.convert_to_numpy(whole(s[None]))[0] for s in sequences])
    _report(
        f"(c) carried state: {len(sequences)} sequences in chunks of {chunk}",
        outputs[0],
        outputs[1],
        alone,
        (times[0], times[1]),
    )


def main() -> None:
    """Run the three examples and print their agreement and times."""
    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}")
    padded_input("post")
    padded_input("pre")
    token_ids()
    carried_state()


if __name__ == "__main__":
    main()
