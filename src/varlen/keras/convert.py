"""``convert(model)``: the same Keras model with varlen's recurrent layers, same weights."""

from __future__ import annotations

from typing import Any

import keras
from varlen.keras.layers import GRU, LSTM

__all__ = ["convert"]

_REPLACEMENTS: dict[type[Any], type[Any]] = {keras.layers.LSTM: LSTM, keras.layers.GRU: GRU}


def _replaced(layer: Any) -> Any:
    """A fresh copy of ``layer``, with Keras's LSTM/GRU (also inside Bidirectional) swapped."""
    if isinstance(layer, keras.layers.Bidirectional):
        return keras.layers.Bidirectional(
            _replaced(layer.forward_layer),
            merge_mode=layer.merge_mode,
            backward_layer=_replaced(layer.backward_layer),
            name=layer.name,
        )
    target = _REPLACEMENTS.get(type(layer), type(layer))
    return target.from_config(layer.get_config())


def convert(model: keras.Model) -> keras.Model:
    """Return ``model`` rebuilt with :class:`varlen.keras.LSTM` / ``GRU`` and the same weights.

    Every ``keras.layers.LSTM`` and ``keras.layers.GRU`` (on their own, inside
    ``Bidirectional``, or in nested functional/sequential models) becomes varlen's layer with
    the same configuration; every other layer is copied as :func:`keras.models.clone_model`
    copies it. The weights are then copied, so the new model computes what ``model`` computes
    (exactly, up to float rounding) and is faster under masks. ``model`` is not modified.

    Args:
        model: A built ``keras.Sequential`` or functional ``keras.Model``.

    Returns:
        A new model of the same kind, built, holding a copy of ``model``'s weights.

    Raises:
        TypeError: If ``model`` is not a Keras model, or is a subclassed model (which
            :func:`keras.models.clone_model` cannot rebuild; swap its layers in its code).
        ValueError: If ``model`` is not built (call it once, or give it an ``Input``).

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((None, 3)), keras.layers.LSTM(4)])
        >>> type(convert(model).layers[0]).__module__
        'varlen.keras.layers'
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"convert: model must be a keras.Model, got {type(model).__name__}.")
    if not model.built:
        raise ValueError(
            "convert: model must be built, got an unbuilt model. Call it on a batch once or "
            "start it with keras.Input(shape)."
        )
    if not isinstance(model, keras.Sequential) and not _is_functional(model):
        raise TypeError(
            f"convert: model must be a Sequential or functional model, got the subclassed "
            f"{type(model).__name__}. Use varlen.keras.LSTM / GRU in its code instead."
        )
    new = keras.models.clone_model(model, clone_function=_replaced, recursive=True)
    new.set_weights(model.get_weights())
    return new


def _is_functional(model: keras.Model) -> bool:
    """Whether ``model`` is a functional model (it has a graph of inputs and outputs)."""
    return any(cls.__name__ == "Functional" for cls in type(model).__mro__)
