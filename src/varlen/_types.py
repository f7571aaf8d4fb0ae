"""Type aliases shared across varlen."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import NDArray

Padding: TypeAlias = Literal["pre", "post"]
"""The end of a sequence that receives padding (or loses steps to truncation)."""

SIDES: tuple[Padding, Padding] = ("pre", "post")

IntArray: TypeAlias = NDArray[np.int64]
BoolArray: TypeAlias = NDArray[np.bool_]
AnyArray: TypeAlias = NDArray[Any]

__all__ = ["SIDES", "AnyArray", "BoolArray", "IntArray", "Padding"]
