"""``RaggedDataset``: a map-style torch dataset over a ``Ragged`` and per-sequence targets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray
from torch.utils.data import Dataset

from varlen._checks import error_context, unplaced
from varlen.data.io.store import StoredRagged
from varlen.data.ragged import Ragged

__all__ = ["Item", "RaggedDataset", "RaggedItems"]

Item = tuple[int, NDArray[Any], Any]
"""One dataset item: ``(index, sequence (T_i, *F), target or None)``."""


def _check_targets(targets: Any, num_sequences: int) -> NDArray[Any] | None:
    """Return ``targets`` as a read-only numeric array of ``(B, *K)``, else raise."""
    if targets is None:
        return None
    array = np.array(targets, copy=True)
    if array.dtype.kind not in "biuf":
        raise unplaced(
            TypeError(
                f"targets must be numeric or bool, got dtype {array.dtype}. Encode "
                "class labels as integers first, e.g. with np.unique(labels, return_inverse=True)."
            )
        )
    if array.ndim == 0 or array.shape[0] != num_sequences:
        raise unplaced(
            ValueError(
                f"targets must have shape (B, *K) with B = len(x) = {num_sequences}, "
                f"got {array.shape}."
            )
        )
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class RaggedItems(Sequence[Item]):
    """Items of a :class:`RaggedDataset` selected by index, not yet copied.

    ``RaggedDataset.__getitems__`` returns this, so that :class:`~varlen.batching.Collate`
    pads the whole batch straight from the flat storage in one vectorized gather. It is
    also a plain sequence of ``(index, sequence, target)`` items, so any collate function
    that takes a list of items still works.

    Attributes:
        sequences: The dataset's ``Ragged`` (or ``StoredRagged``), all ``n`` sequences.
        targets: ``(n, *K)`` targets of the whole dataset, or ``None``.
        indices: ``(B,)`` int64 selected dataset indices, each in ``[0, n)``.
    """

    sequences: Ragged | StoredRagged
    targets: NDArray[Any] | None
    indices: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    @overload
    def __getitem__(self, position: int) -> Item: ...
    @overload
    def __getitem__(self, position: slice) -> RaggedItems: ...
    def __getitem__(self, position: int | slice) -> Item | RaggedItems:
        if isinstance(position, slice):
            return RaggedItems(self.sequences, self.targets, self.indices[position])
        index = int(self.indices[position])
        target = None if self.targets is None else self.targets[index]
        return index, self.sequences[index], target


class RaggedDataset(Dataset[Item]):
    """A map-style dataset of variable-length sequences, in one ``Ragged`` or a store.

    Item ``i`` is ``(i, sequence, target)``: the dataset index, the ``(T_i, *F)`` sequence
    (a read-only view) and its target (``None`` without targets). Use it with a
    :class:`~varlen.batching.BucketBatchSampler` as ``batch_sampler`` and a
    :class:`~varlen.batching.Collate`: ``DataLoader`` then fetches each batch with
    :meth:`__getitems__`, and the collate pads it in one vectorized copy.

    Over a store (``x`` a :class:`~varlen.data.io.store.StoredRagged`, from
    :func:`~varlen.data.io.store.open_store`), the collate gathers each batch's rows from
    the memory map, so memory holds the batches in use, not the data; ``DataLoader``
    workers map the file again (the dataset pickles the store's path, not its steps).

    Args:
        x: The sequences, ``B`` of them, in memory or in a store.
        targets: ``(B, *K)`` numeric per-sequence targets (class ids, values, vectors),
            or ``None``. Copied.

    Raises:
        TypeError: If ``x`` is not a ``Ragged`` or ``targets`` is not numeric.
        ValueError: If ``targets`` does not have one row per sequence.

    Example:
        >>> from varlen.data.ragged import Ragged
        >>> data = RaggedDataset(Ragged.from_sequences([[1, 2, 3], [4]]), targets=[0, 1])
        >>> len(data), data[1]
        (2, (1, array([4]), np.int64(1)))
    """

    def __init__(self, x: Ragged | StoredRagged, targets: Any = None) -> None:
        with error_context("RaggedDataset"):
            if not isinstance(x, Ragged | StoredRagged):
                raise unplaced(
                    TypeError(
                        f"x must be a varlen Ragged or StoredRagged, got {type(x).__name__}. "
                        "Build one with Ragged.from_sequences(list_of_arrays), or open a store."
                    )
                )
            self.sequences = x
            self.targets = _check_targets(targets, len(x))

    @property
    def lengths(self) -> NDArray[np.int64]:
        """``(B,)`` int64 sequence lengths, e.g. for a ``BucketBatchSampler``."""
        return self.sequences.lengths

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> Item:
        B = len(self)
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise TypeError(f"RaggedDataset: index must be an int, got {index!r}.")
        if not -B <= index < B:
            raise IndexError(f"RaggedDataset: index must be in [-B, B) = [{-B}, {B}), got {index}.")
        row = int(index) % B
        target = None if self.targets is None else self.targets[row]
        return row, self.sequences[row], target

    def __getitems__(self, indices: Sequence[int]) -> RaggedItems:
        """Select a batch of items by index without copying any step.

        Args:
            indices: ``B`` dataset indices in ``[-n, n)``, as a batch sampler yields them.

        Returns:
            A :class:`RaggedItems` that :class:`~varlen.batching.Collate` pads in one copy.

        Raises:
            TypeError: If ``indices`` are not integers.
            ValueError: If ``indices`` is not flat.
            IndexError: If an index is out of range.
        """
        with error_context("RaggedDataset.__getitems__"):
            array = np.asarray(indices)
            if array.size == 0:
                array = array.astype(np.int64)
            if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
                raise unplaced(TypeError(f"indices must be integers, got dtype {array.dtype}."))
            if array.ndim != 1:
                raise unplaced(ValueError(f"indices must have shape (B,), got {array.shape}."))
            B = len(self)
            bad = np.flatnonzero((array < -B) | (array >= B))
            if bad.size:
                raise unplaced(
                    IndexError(
                        f"indices must be in [-n, n) = [{-B}, {B}), got "
                        f"indices[{bad[0]}] == {array[bad[0]]}."
                    )
                )
            return RaggedItems(
                self.sequences, self.targets, np.mod(array, max(B, 1)).astype(np.int64)
            )
