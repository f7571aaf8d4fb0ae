"""Readers for variable-length data files. NumPy only; pandas/pyarrow load lazily.

- :mod:`~varlen.data.io.ts`: the UEA/UCR ``.ts`` format (:func:`read_ts`, :func:`write_ts`).
- :mod:`~varlen.data.io.table`: long-format CSV/Parquet tables and DataFrames
  (:func:`read_table`, :func:`group_table`, :func:`table_to_ragged`).
"""

from __future__ import annotations

from varlen.data.io.table import TableData, group_table, read_table, table_to_ragged
from varlen.data.io.ts import TSData, read_ts, write_ts

__all__ = [
    "TSData",
    "TableData",
    "group_table",
    "read_table",
    "read_ts",
    "table_to_ragged",
    "write_ts",
]
