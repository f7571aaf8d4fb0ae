"""``Collate``: turn dataset items into a padded :class:`~varlen.batching.Batch`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from varlen._checks import check_side
from varlen._types import Padding
from varlen.batching._validate import check_int
from varlen.batching.batch import Batch
from varlen.batching.dataset import Item, RaggedItems
from varlen.data.grid import LengthGrid
from varlen.data.masks import lengths_to_mask
from varlen.data.padding import pad
from varlen.data.ragged import Ragged

__all__ = ["Collate"]


def _numpy_dtype(dtype: torch.dtype | None) -> np.dtype[Any] | None:
    """Return the NumPy dtype matching a torch dtype, or ``None`` if NumPy has none."""
    if dtype is None:
        return None
    try:
        return torch.empty(0, dtype=dtype).numpy().dtype
    except TypeError:  # e.g. bfloat16: pad in the source dtype, convert in torch
        return None


def _fill_value(value: Any, dtype: np.dtype[Any]) -> Any:
    """Return ``value`` cast to ``dtype``, or raise if ``dtype`` cannot hold it exactly."""
    with np.errstate(all="ignore"):
        fill = np.asarray(value).astype(dtype)
    exact = bool(np.isfinite(fill) == np.isfinite(value)) if dtype.kind in "fc" else fill == value
    if not exact:
        raise ValueError(
            f"Collate: value must be representable in dtype {dtype}, got {value!r}. Pass a "
            "value that fits, or a wider dtype (e.g. dtype=torch.float32)."
        )
    return fill[()]


VIEW_MIN_ELEMENTS = 256
"""Mean scalars per row from which padding from row views beats a gather first (measured)."""


def _ragged_rows(sequences: Ragged, rows: NDArray[np.int64]) -> list[NDArray[Any]]:
    """Return views of the selected rows of the flat storage."""
    values, offsets = sequences.values, sequences.offsets
    starts, ends = offsets[rows], offsets[rows + 1]  # (B,) each
    return [values[start:end] for start, end in zip(starts.tolist(), ends.tolist(), strict=True)]


def _check_item(index: int, item: object) -> tuple[int, NDArray[Any], Any]:
    """Return one generic item as ``(index, sequence array, target)``, else raise."""
    if not isinstance(item, tuple | list) or len(item) != 3:
        raise TypeError(
            f"Collate: items[{index}] must be an (index, sequence, target) tuple, got "
            f"{type(item).__name__}. Use a RaggedDataset or return such tuples."
        )
    sequence = np.asarray(item[1])
    if sequence.ndim == 0:
        raise ValueError(f"Collate: items[{index}] sequence must have shape (T_i, *F), got ().")
    return int(item[0]), sequence, item[2]


class Collate:
    """Collate ``(index, sequence, target)`` items into a padded :class:`Batch`.

    The time length is ``T = max(T_i)``, rounded up to a length of ``grid`` if given
    (:meth:`LengthGrid.round_up <varlen.data.grid.LengthGrid.round_up>`: few distinct batch
    shapes, hence few compiled kernels, for a few percent more padded steps), then to a
    multiple of ``pad_to_multiple_of`` if given; every row is padded with ``value`` on the
    ``padding`` side by the data layer's vectorized padding (no loop over steps). Items
    fetched by :meth:`RaggedDataset.__getitems__ <varlen.batching.RaggedDataset.__getitems__>`
    are padded straight from the dataset's flat storage with no per-item work (long rows
    from views with :func:`~varlen.data.padding.pad`, short rows by a vectorized gather and
    ``Ragged.to_padded``); any other list of items is checked item by item first, then
    padded with :func:`~varlen.data.padding.pad`. Targets, if any, are stacked to
    ``(B, *K)`` with their dtype kept; they must be all ``None`` or all given. ``B = 0``
    works only for ``RaggedItems`` (a plain empty list has no feature shape).

    Args:
        padding: Side that receives the padding, ``"post"`` (default) or ``"pre"``.
        value: Value written at padded steps; must fit the output dtype.
        pad_to_multiple_of: Round ``T`` up to a multiple of this (``>= 1``), e.g. for
            kernels that like aligned lengths; ``None`` keeps ``max(T_i)``.
        grid: Pad ``T`` up to a length of this grid (``None``: no rounding).
        dtype: torch dtype of ``x``; ``None`` keeps the sequences' dtype (NumPy float64
            stays float64: pass ``torch.float32`` for the usual layers).
        view_min_elements: Tuning only (the batch is the same either way): mean scalars per
            row from which rows of a ``RaggedDataset`` are padded from views rather than
            gathered first (default :data:`VIEW_MIN_ELEMENTS`, measured on CPU).

    Raises:
        ValueError: If ``padding`` is not ``"pre"``/``"post"`` or ``pad_to_multiple_of < 1``.
        TypeError: If ``value`` is not a number, ``dtype`` not a ``torch.dtype`` or ``grid``
            not a ``LengthGrid``.

    Example:
        >>> collate = Collate(padding="pre", value=-1.0, pad_to_multiple_of=4)
        >>> batch = collate([(0, np.array([1.0, 2.0]), None), (1, np.array([3.0]), None)])
        >>> batch.x  # (B, T) = (2, 4)
        tensor([[-1., -1.,  1.,  2.],
                [-1., -1., -1.,  3.]], dtype=torch.float64)
    """

    def __init__(
        self,
        *,
        padding: Padding = "post",
        value: float = 0.0,
        pad_to_multiple_of: int | None = None,
        dtype: torch.dtype | None = None,
        view_min_elements: int = VIEW_MIN_ELEMENTS,
        grid: LengthGrid | None = None,
    ) -> None:
        where = "Collate"
        self.padding = check_side(where, "padding", padding)
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise TypeError(f"{where}: value must be a number, got {value!r}.")
        self.value = value
        self.pad_to_multiple_of = (
            None
            if pad_to_multiple_of is None
            else check_int(where, "pad_to_multiple_of", pad_to_multiple_of, minimum=1)
        )
        if dtype is not None and not isinstance(dtype, torch.dtype):
            raise TypeError(f"{where}: dtype must be a torch.dtype or None, got {dtype!r}.")
        self.dtype = dtype
        if grid is not None and not isinstance(grid, LengthGrid):
            raise TypeError(
                f"{where}: grid must be a varlen.data.grid.LengthGrid or None, got {grid!r}."
            )
        self.grid = grid
        self.view_min_elements = check_int(where, "view_min_elements", view_min_elements, minimum=0)

    def __repr__(self) -> str:
        return (
            f"Collate(padding={self.padding!r}, value={self.value!r}, "
            f"pad_to_multiple_of={self.pad_to_multiple_of!r}, dtype={self.dtype!r}, "
            f"grid={self.grid!r})"
        )

    def __call__(self, items: Sequence[Item]) -> Batch:
        """Pad a batch of items.

        Args:
            items: ``B`` items ``(index, sequence (T_i, *F), target)``, e.g. a
                ``RaggedItems`` or a list of ``RaggedDataset`` items.

        Returns:
            The padded :class:`Batch`.

        Raises:
            TypeError: If an item is not an ``(index, sequence, target)`` triple, or some
                targets are ``None`` and others not.
            ValueError: If a sequence is a scalar, trailing shapes differ, ``items`` is
                an empty list, or ``value`` does not fit the dtype of ``x`` (NaN or 0.5 into
                integers).
        """
        if isinstance(items, RaggedItems):
            return self._collate_ragged(items)
        return self._collate_list(items)

    def _pad_dtype(self, source: np.dtype[Any]) -> np.dtype[Any]:
        """Return the dtype to pad into: the requested one or, failing that, the source's.

        The requested dtype is used when NumPy has it and the source reaches it by a
        same-kind cast (float64 -> float32, int -> float); else ``_batch`` converts in torch.
        """
        requested = _numpy_dtype(self.dtype)
        if requested is None or not np.can_cast(source, requested, casting="same_kind"):
            return source
        return requested

    def _time_length(self, lengths: NDArray[np.int64]) -> int:
        """Return ``T``: the longest length, rounded up to the grid, then to the multiple."""
        T = int(lengths.max(initial=0))
        if self.grid is not None:
            T = self.grid.round_up(T)
        multiple = self.pad_to_multiple_of
        return T if multiple is None else -(-T // multiple) * multiple

    def _collate_ragged(self, items: RaggedItems) -> Batch:
        """Fast path: pad straight from the flat storage, with no per-item work.

        Long rows are padded from views of the storage (one copy); short rows are first
        gathered in one vectorized copy, which beats building a view per row. Rows of a
        store are first gathered from its memory map in one copy.
        """
        source = items.sequences
        gathered = not isinstance(source, Ragged)
        if isinstance(source, Ragged):
            sequences, rows = source, items.indices
        else:  # a store: the batch's rows, in one gather from its memory map
            sequences = source[items.indices]
            rows = np.arange(len(sequences), dtype=np.int64)
        offsets = sequences.offsets
        lengths = offsets[rows + 1] - offsets[rows]  # (B,)
        elements = int(lengths.sum()) * sequences.num_features
        if elements >= self.view_min_elements * max(len(lengths), 1):
            x = self._pad(_ragged_rows(sequences, rows), lengths, sequences.values)
        else:
            dtype = self._pad_dtype(sequences.dtype)
            x, _ = (sequences if gathered else sequences[rows]).to_padded(
                maxlen=self._time_length(lengths),
                padding=self.padding,
                value=_fill_value(self.value, dtype),
                dtype=dtype,
            )
        targets = None if items.targets is None else items.targets[items.indices]
        return self._batch(x, lengths, items.indices, targets)

    def _collate_list(self, items: Sequence[Item]) -> Batch:
        """Generic path: check the items, then pad their sequences in one copy."""
        if len(items) == 0:
            raise ValueError(
                "Collate: items must hold at least one item, got an empty list. Use "
                "RaggedDataset (whose empty batches keep their feature shape)."
            )
        checked = [_check_item(index, item) for index, item in enumerate(items)]
        sequences = [sequence for _, sequence, _ in checked]
        trailing = sequences[0].shape[1:]
        for index, sequence in enumerate(sequences):
            if sequence.shape[1:] != trailing:
                raise ValueError(
                    f"Collate: items[{index}] sequence has trailing shape "
                    f"{sequence.shape[1:]}, expected {trailing} like items[0]."
                )
        lengths = np.array([sequence.shape[0] for sequence in sequences], dtype=np.int64)
        nonempty = [sequence for sequence in sequences if sequence.shape[0]] or sequences
        x = self._pad(sequences, lengths, np.empty((0, *trailing), np.result_type(*nonempty)))
        indices = np.array([index for index, _, _ in checked], dtype=np.int64)
        return self._batch(x, lengths, indices, _stack_targets([t for _, _, t in checked]))

    def _pad(
        self, rows: list[NDArray[Any]], lengths: NDArray[np.int64], like: NDArray[Any]
    ) -> NDArray[Any]:
        """Pad ``rows`` with the data layer's ``pad`` into ``(B, T, *F)``.

        ``like`` carries the source dtype and ``*F`` (for ``B = 0``). The rows are padded
        straight into the requested dtype when it is of the same kind, else in their own
        dtype (``_batch`` converts in torch).
        """
        dtype = self._pad_dtype(like.dtype)
        fill = _fill_value(self.value, dtype)
        T = self._time_length(lengths)
        if not rows:
            return np.full((0, T, *like.shape[1:]), fill, dtype=dtype)
        padded, _ = pad(rows, maxlen=T, value=fill, padding=self.padding, dtype=dtype)
        return padded

    def _batch(
        self,
        x: NDArray[Any],
        lengths: NDArray[np.int64],
        indices: NDArray[np.int64],
        targets: NDArray[Any] | None,
    ) -> Batch:
        """Build the mask (in NumPy: tiny ops, no thread pool) and wrap everything as tensors."""
        x_tensor = torch.from_numpy(x)
        if self.dtype is not None and x_tensor.dtype != self.dtype:
            x_tensor = x_tensor.to(self.dtype)
        mask = lengths_to_mask(lengths, x.shape[1], padding=self.padding)  # (B, T)
        return Batch(
            x=x_tensor,
            lengths=torch.from_numpy(lengths),
            mask=torch.from_numpy(mask),
            targets=None if targets is None else torch.from_numpy(np.array(targets, copy=True)),
            indices=torch.from_numpy(np.array(indices, dtype=np.int64)),
            padding=self.padding,
        )


def _stack_targets(targets: list[Any]) -> NDArray[Any] | None:
    """Stack per-item targets to ``(B, *K)``, or return ``None`` if every one is ``None``."""
    missing = [target is None for target in targets]
    if all(missing):
        return None
    if any(missing):
        index = missing.index(not missing[0])
        raise TypeError(
            f"Collate: targets must be all None or all given, got items[0] target "
            f"{targets[0]!r} and items[{index}] target {targets[index]!r}."
        )
    return np.stack([np.asarray(target) for target in targets])
