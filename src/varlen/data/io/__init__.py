"""Readers for variable-length data files. NumPy only; pandas/pyarrow load lazily.

- :mod:`~varlen.data.io.ts`: the UEA/UCR ``.ts`` format (:func:`read_ts`, :func:`write_ts`).
- :mod:`~varlen.data.io.table`: long-format CSV/Parquet tables and DataFrames
  (:func:`read_table`, :func:`group_table`, :func:`table_to_ragged`).
- :mod:`~varlen.data.io.store`: the on-disk ragged store, one memory-mapped Arrow IPC file
  (:func:`open_store`, :func:`write_store`, :func:`fit_standardizer`), filled from files by
  :func:`~varlen.data.io.convert.convert` (streaming, in bounded memory).
"""

from __future__ import annotations

from varlen.data.io.convert import convert
from varlen.data.io.store import (
    Store,
    StoreChunk,
    StoredRagged,
    StoreSummary,
    fit_standardizer,
    open_store,
    write_store,
)
from varlen.data.io.table import TableData, group_table, read_table, table_to_ragged
from varlen.data.io.ts import TSData, iter_ts, read_ts, write_ts

__all__ = [
    "Store",
    "StoreChunk",
    "StoreSummary",
    "StoredRagged",
    "TSData",
    "TableData",
    "convert",
    "fit_standardizer",
    "group_table",
    "iter_ts",
    "open_store",
    "read_table",
    "read_ts",
    "table_to_ragged",
    "write_store",
    "write_ts",
]
