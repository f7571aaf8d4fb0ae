"""varlen: variable-length sequences for recurrent networks, exact and fast.

The package is layered, and dependencies point one way:

- :mod:`varlen.data`: NumPy only (no torch): padding, ragged storage, masks, readers,
  normalization, feature alignment and lane plans.
- :mod:`varlen.nn` (mask-aware LSTM/GRU, lanes, streaming, pooling) and
  :mod:`varlen.batching` (collate, bucketing samplers): torch, built on ``data``.
- :mod:`varlen.training` and :mod:`varlen.cli`: the training loop and the command line.

Importing :mod:`varlen` loads only the NumPy data layer. The torch-layer names listed in
``__all__`` (``varlen.LSTM``, ``varlen.BucketBatchSampler``, ...) load torch on first use.
"""

from __future__ import annotations

import importlib as _importlib
from typing import Any as _Any

from varlen._pad import pad, unpad
from varlen.data import (
    Ragged,
    Standardizer,
    align_features,
    lengths_to_mask,
    mask_from_ids,
    mask_from_value,
    mask_to_lengths,
    pad_sequences,
    plan_lanes,
    read_table,
    read_ts,
)

__version__ = "0.1.0"

_LAZY = {
    "GRU": "varlen.nn",
    "LSTM": "varlen.nn",
    "Batch": "varlen.batching",
    "BucketBatchSampler": "varlen.batching",
    "Collate": "varlen.batching",
    "RaggedDataset": "varlen.batching",
    "run_lanes": "varlen.nn",
}

__all__ = [
    "GRU",
    "LSTM",
    "Batch",
    "BucketBatchSampler",
    "Collate",
    "Ragged",
    "RaggedDataset",
    "Standardizer",
    "__version__",
    "align_features",
    "lengths_to_mask",
    "mask_from_ids",
    "mask_from_value",
    "mask_to_lengths",
    "pad",
    "pad_sequences",
    "plan_lanes",
    "read_table",
    "read_ts",
    "run_lanes",
    "unpad",
]


def __getattr__(name: str) -> _Any:
    """Load torch-layer names on first use, so ``import varlen`` stays torch-free."""
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'varlen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
