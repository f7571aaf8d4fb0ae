"""Readers for variable-length data files. NumPy only; pandas/pyarrow load lazily."""

from __future__ import annotations

__all__: list[str] = []
