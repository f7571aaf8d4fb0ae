"""Shared builders for the Keras tests: weight-copied layer pairs, masks, numpy views."""

from __future__ import annotations

from typing import Any

import numpy as np

import keras
import varlen.keras as vk

KINDS: dict[str, tuple[Any, Any]] = {
    "LSTM": (keras.layers.LSTM, vk.LSTM),
    "GRU": (keras.layers.GRU, vk.GRU),
}


def as_numpy(value: Any) -> Any:
    """Keras outputs (a tensor or a list of them) as NumPy."""
    if isinstance(value, list | tuple):
        return [keras.ops.convert_to_numpy(v) for v in value]
    return keras.ops.convert_to_numpy(value)


def masks(kind: str, B: int, T: int, rng: np.random.Generator) -> np.ndarray | None:
    """``(B, T)`` bool masks: post/pre padding (lengths 0, 1, T and random) or holes."""
    if kind == "none":
        return None
    lengths = np.concatenate([[0, 1, T], rng.integers(0, T + 1, size=B - 3)])
    steps = np.arange(T)[None, :]
    if kind == "post":
        return steps < lengths[:, None]
    if kind == "pre":
        return steps >= T - lengths[:, None]
    mask = rng.random((B, T)) < 0.6
    mask[0] = False
    return mask


def pair(
    kind: str, rng: np.random.Generator, F: int, dtype: str = "float32", **options: Any
) -> tuple[Any, Any]:
    """A Keras layer and varlen's, built, holding the same random weights (non-zero bias)."""
    keras_class, varlen_class = KINDS[kind]
    theirs = keras_class(5, dtype=dtype, **options)
    ours = varlen_class(5, dtype=dtype, **options)
    theirs.build((None, None, F))
    ours.build((None, None, F))
    weights = [rng.normal(scale=0.5, size=w.shape).astype(dtype) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return theirs, ours
