"""Data pipeline for variable-length batches: collate, length bucketing, padding reports.

- :class:`RaggedDataset` serves ``(index, sequence, target)`` items from a ``Ragged``;
  :class:`Collate` pads them into a :class:`Batch` (``x``, ``lengths``, ``mask``,
  ``targets``, ``indices``) that ``varlen.nn`` layers take directly.
- :class:`BucketBatchSampler` groups similar lengths into batches of a fixed size or a
  token budget, reshuffles per epoch, resumes mid-epoch and shards across
  ``torch.distributed`` ranks (see :mod:`varlen.batching.sampler` for ``torchrun``).
- :func:`padding_report` and :func:`compare_policies` measure padding waste from the
  lengths alone (NumPy only).

Only the report is NumPy-only: importing :mod:`varlen.batching` (or
``varlen.batching.report``) does not load torch; the other names load it on first use.

Example:
    >>> import numpy as np
    >>> from torch.utils.data import DataLoader
    >>> from varlen.batching import BucketBatchSampler, Collate, RaggedDataset
    >>> from varlen.data.ragged import Ragged
    >>> x = Ragged.from_sequences([np.ones((T, 2)) for T in (5, 1, 4, 2)])
    >>> data = RaggedDataset(x, targets=[0, 1, 0, 1])
    >>> sampler = BucketBatchSampler(x.lengths, batch_size=2, seed=0)
    >>> loader = DataLoader(data, batch_sampler=sampler, collate_fn=Collate())
    >>> sorted(tuple(batch.lengths.tolist()) for batch in loader)  # (B, T, F) = (2, T, 2)
    [(1, 2), (4, 5)]
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from varlen.batching.report import (
    PaddingReport,
    choose_technique,
    compare_policies,
    format_reports,
    padding_report,
)

if _TYPE_CHECKING:
    from varlen.batching.batch import Batch
    from varlen.batching.collate import Collate
    from varlen.batching.dataset import RaggedDataset, RaggedItems
    from varlen.batching.sampler import BucketBatchSampler

_LAZY = {
    "Batch": "varlen.batching.batch",
    "BucketBatchSampler": "varlen.batching.sampler",
    "Collate": "varlen.batching.collate",
    "RaggedDataset": "varlen.batching.dataset",
    "RaggedItems": "varlen.batching.dataset",
}

__all__ = [
    "Batch",
    "BucketBatchSampler",
    "Collate",
    "PaddingReport",
    "RaggedDataset",
    "RaggedItems",
    "choose_technique",
    "compare_policies",
    "format_reports",
    "padding_report",
]


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'varlen.batching' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
