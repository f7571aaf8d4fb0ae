"""Keras 3 layers and batching on varlen's exact core (the optional extra ``varlen[keras]``).

- :class:`LSTM`, :class:`GRU`: drop-ins for ``keras.layers.LSTM`` / ``GRU`` (same arguments,
  weights, masks and states), exact under any mask: varlen's fused core on the torch backend,
  Keras's own exact loop elsewhere (on JAX it was the fastest formulation measured).
- :class:`BucketedDataset`: a ``keras.utils.PyDataset`` that batches similar lengths together
  (varlen's ``BucketBatchSampler``) and pads each batch only to its own longest sequence.
- :func:`convert`: the same model with varlen's layers in place of Keras's, same weights.

Keras chooses its backend once per process (``KERAS_BACKEND``); this package works with
whichever it chose.
"""

from __future__ import annotations

from varlen.keras.convert import convert
from varlen.keras.dataset import BucketedDataset
from varlen.keras.layers import GRU, LSTM

__all__ = ["GRU", "LSTM", "BucketedDataset", "convert"]
