"""``Ragged``: a batch of variable-length sequences stored without padding.

A batch of ``B`` sequences of shapes ``(T_i, *F)`` is stored as ``values (N, *F)``, all
steps end to end with ``N = sum(T_i)``, and ``offsets (B + 1,)`` int64, so that sequence
``i`` is ``values[offsets[i]:offsets[i + 1]]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

__all__ = ["Ragged"]


def _read_only(array: NDArray[Any]) -> NDArray[Any]:
    """Return ``array`` with its ``writeable`` flag cleared (in place; for owned arrays)."""
    array.flags.writeable = False
    return array


def _check_values(where: str, values: Any) -> NDArray[Any]:
    """Return ``values`` as an array of shape ``(N, *F)`` with a non-object dtype, else raise."""
    array = np.asarray(values)
    if array.dtype == np.object_:
        raise TypeError(
            f"{where}: values must have a numeric, bool or string dtype, got dtype object. "
            "Check that every step has the same trailing shape."
        )
    if array.ndim == 0:
        raise ValueError(f"{where}: values must have shape (N, *F), got a scalar.")
    return array


def _check_offsets(where: str, offsets: Any, num_steps: int) -> NDArray[np.int64]:
    """Return ``offsets`` as int64 ``(B + 1,)``: starts at 0, non-decreasing, ends at ``N``."""
    array = np.asarray(offsets)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"{where}: offsets must be integers, got dtype {array.dtype}. "
            "Cast with .astype(np.int64)."
        )
    if array.ndim != 1 or array.shape[0] == 0:
        raise ValueError(
            f"{where}: offsets must have shape (B + 1,) with B >= 0, got {array.shape}."
        )
    out = array.astype(np.int64, copy=True)
    if out[0] != 0:
        raise ValueError(f"{where}: offsets[0] must be 0, got {out[0]!r}.")
    steps = np.diff(out)
    if steps.size and steps.min() < 0:
        index = int(np.argmin(steps))
        raise ValueError(
            f"{where}: offsets must be non-decreasing, got offsets[{index + 1}] == "
            f"{out[index + 1]!r} < offsets[{index}] == {out[index]!r}."
        )
    if out[-1] != num_steps:
        raise ValueError(
            f"{where}: offsets[-1] must equal len(values) = {num_steps}, got {out[-1]!r}."
        )
    return out


@dataclass(frozen=True, eq=False, repr=False)
class Ragged:
    """A batch of ``B`` variable-length sequences, stored flat without padding.

    Sequence ``i`` has shape ``(T_i, *F)`` and is ``values[offsets[i]:offsets[i + 1]]``.
    Every sequence shares the trailing shape ``*F`` and the dtype. ``B = 0`` and
    ``T_i = 0`` are allowed.

    ``Ragged`` is an immutable value: the constructor copies ``values`` and ``offsets``
    and marks both copies read-only, so neither the caller's arrays nor later writes
    can break the invariants. Arrays handed out (``values``, ``offsets``, ``r[i]``) are
    read-only views; copy them (``np.array(r[i])``) to get a writable array.

    Args:
        values: ``(N, *F)`` all steps end to end, ``N = sum(T_i)``; any non-object dtype.
        offsets: ``(B + 1,)`` integer row boundaries: ``offsets[0] == 0``,
            non-decreasing, ``offsets[-1] == N``. Stored as int64.

    Raises:
        TypeError: If ``values`` has object dtype or ``offsets`` is not integer.
        ValueError: If ``values`` is a scalar or ``offsets`` breaks the rules above.

    Example:
        >>> r = Ragged(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 3, 3, 4]))
        >>> len(r), r.lengths  # B = 3, T_i = (3, 0, 1)
        (3, array([3, 0, 1]))
        >>> r[2]
        array([4.])
    """

    values: NDArray[Any]
    offsets: NDArray[np.int64]

    def __post_init__(self) -> None:
        values = _check_values("Ragged", self.values)
        offsets = _check_offsets("Ragged", self.offsets, values.shape[0])
        object.__setattr__(self, "values", _read_only(np.array(values, copy=True)))
        object.__setattr__(self, "offsets", _read_only(offsets))

    @classmethod
    def _trusted(cls, values: NDArray[Any], offsets: NDArray[np.int64]) -> Ragged:
        """Build without validation or copies from arrays this module just allocated."""
        ragged = object.__new__(cls)
        object.__setattr__(ragged, "values", _read_only(values))
        object.__setattr__(ragged, "offsets", _read_only(offsets))
        return ragged

    # ------------------------------------------------------------------ properties

    @property
    def lengths(self) -> NDArray[np.int64]:
        """``(B,)`` int64 sequence lengths ``T_i`` (a new, writable array)."""
        return np.diff(self.offsets)

    @property
    def trailing_shape(self) -> tuple[int, ...]:
        """The per-step shape ``*F`` (``()`` for scalar steps)."""
        return tuple(int(size) for size in self.values.shape[1:])

    @property
    def num_features(self) -> int:
        """Number of scalars per step, ``prod(*F)`` (1 for scalar steps)."""
        return int(np.prod(self.trailing_shape, dtype=np.int64))

    @property
    def num_steps(self) -> int:
        """Total number of steps ``N = sum(T_i)``."""
        return int(self.values.shape[0])

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of ``values``."""
        return self.values.dtype

    def __len__(self) -> int:
        return int(self.offsets.shape[0]) - 1

    def __getitem__(self, index: int) -> NDArray[Any]:
        B = len(self)
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise TypeError(f"Ragged: index must be an int, got {index!r}.")
        if not -B <= index < B:
            raise IndexError(f"Ragged: index must be in [-B, B) = [{-B}, {B}), got {index}.")
        row = int(index) % B
        return self.values[self.offsets[row] : self.offsets[row + 1]]

    # ---------------------------------------------------------------- constructors

    @classmethod
    def from_sequences(cls, sequences: Sequence[Any], *, dtype: DTypeLike | None = None) -> Ragged:
        """Build a ``Ragged`` from ``B`` sequences, concatenating them once.

        Args:
            sequences: ``B >= 0`` array-likes of shape ``(T_i, *F)`` (arrays or nested
                lists) with equal ``*F``. An empty Python list is an empty sequence of
                any ``*F``.
            dtype: Dtype of ``values``; defaults to NumPy's promotion of the inputs
                (float64 when there are no steps).

        Returns:
            A new ``Ragged`` holding copies of the steps.

        Raises:
            ValueError: If a sequence is a scalar or ragged inside, or trailing shapes differ.

        Example:
            >>> r = Ragged.from_sequences([[1, 2, 3], [], [4]])
            >>> r.values, r.offsets
            (array([1, 2, 3, 4]), array([0, 3, 3, 4]))
        """
        where = "Ragged.from_sequences"
        lengths = np.zeros(len(sequences), dtype=np.int64)
        arrays: list[NDArray[Any]] = []
        first: int | None = None
        for index, sequence in enumerate(sequences):
            if not isinstance(sequence, np.ndarray) and _is_empty_list(sequence):
                continue  # contributes no steps, nor a dtype or trailing shape
            array = _as_sequence_array(where, index, sequence, dtype)
            if first is None:
                first = index
            elif array.shape[1:] != arrays[0].shape[1:]:
                raise ValueError(
                    f"{where}: sequences[{index}] has trailing shape {array.shape[1:]}, "
                    f"expected {arrays[0].shape[1:]} like sequences[{first}]."
                )
            lengths[index] = array.shape[0]
            arrays.append(array)
        if arrays:
            values = np.concatenate(arrays, axis=0, dtype=dtype)
        else:
            values = np.empty((0,), dtype=np.float64 if dtype is None else dtype)
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls._trusted(_check_values(where, values), offsets)

    def __repr__(self) -> str:
        lengths = self.lengths
        if lengths.size:
            stats = f"lengths min/mean/max={lengths.min()}/{lengths.mean():.1f}/{lengths.max()}"
        else:
            stats = "lengths=[]"
        return (
            f"Ragged(B={len(self)}, N={self.num_steps}, F={self.trailing_shape}, "
            f"dtype={self.dtype}, {stats})"
        )


def _is_empty_list(sequence: Any) -> bool:
    """Return True for an empty Python list or tuple."""
    return isinstance(sequence, list | tuple) and len(sequence) == 0


def _as_sequence_array(
    where: str, index: int, sequence: Any, dtype: DTypeLike | None
) -> NDArray[Any]:
    """Return ``sequences[index]`` as an array of shape ``(T_i, *F)``, else raise."""
    try:
        array = np.asarray(sequence, dtype=dtype)
    except ValueError as error:
        raise ValueError(
            f"{where}: sequences[{index}] must be an array-like of shape (T_i, *F) with "
            f"equal-sized steps, got a ragged nested list ({error})."
        ) from None
    if array.ndim == 0:
        raise ValueError(
            f"{where}: sequences[{index}] must have shape (T_i, *F), got a scalar "
            f"{sequence!r}. Wrap it in a list."
        )
    return array
