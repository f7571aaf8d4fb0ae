"""Type stub of the compiled padding kernel (source: ``_native.c``)."""

from typing import Any

from numpy.typing import NDArray

def pad_sequences(
    sequences: list[Any],
    maxlen: int,
    fill: NDArray[Any],
    pre_padding: bool,
    pre_truncating: bool,
    /,
) -> NDArray[Any] | None: ...
