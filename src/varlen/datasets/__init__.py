"""Real variable-length datasets that ship inside the package (no download at run time)."""

from __future__ import annotations

__all__: list[str] = []
