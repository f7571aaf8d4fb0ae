"""The NumPy data layer: padding, ragged storage, masks, readers. Imports no torch."""

from __future__ import annotations

__all__: list[str] = []
