"""``BucketedDataset``: a Keras ``PyDataset`` of length-bucketed, per-batch padded batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

import keras
from varlen._checks import check_side
from varlen.batching import BucketBatchSampler
from varlen.data import Ragged

__all__ = ["BucketedDataset"]


def _as_ragged(where: str, x: Any) -> Ragged:
    """Take a ``Ragged`` as it is; build one from a sequence of ``(T_i, *F)`` array-likes."""
    if isinstance(x, Ragged):
        return x
    if isinstance(x, np.ndarray) and x.dtype != object:
        raise TypeError(
            f"{where}: x must be a varlen.Ragged or a sequence of (T_i, *F) arrays, got a "
            f"padded {x.dtype} array of shape {x.shape}. Pass its sequences, e.g. "
            "varlen.Ragged.from_padded(x, lengths)."
        )
    return Ragged.from_sequences(list(x))


def _ordered_batches(
    lengths: NDArray[np.int64], batch_size: int | None, max_tokens: int | None
) -> list[list[int]]:
    """Consecutive rows in input order, ``batch_size`` at a time or within ``B * T_max``."""
    if batch_size is not None:
        return [
            list(range(i, min(i + batch_size, len(lengths))))
            for i in range(0, len(lengths), batch_size)
        ]
    budget = max_tokens if max_tokens is not None else 1
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for row, T_i in enumerate(lengths.tolist()):
        widest = max(longest, T_i, 1)
        if current and widest * (len(current) + 1) > budget:
            batches.append(current)
            current, widest = [], max(T_i, 1)
        current.append(row)
        longest = widest
    return [*batches, current] if current else batches


class BucketedDataset(keras.utils.PyDataset):  # type: ignore[misc]
    """Batches of similar lengths, each padded only to its own longest sequence, for ``fit``.

    Rows are grouped by :class:`varlen.batching.BucketBatchSampler` (``batch_size`` rows, or
    as many as fit ``max_tokens`` padded steps ``B * T_max``), reshuffled every epoch from
    ``seed``, and padded on ``padding`` with ``value`` — give the value your ``Masking``
    layer's ``mask_value`` or ``Embedding(mask_zero=True)`` expects (0), and make sure no
    real step equals it. Works with ``fit``, ``evaluate`` and ``predict`` (tested on torch and JAX).

    ``predict`` concatenates batch outputs in the order served, so a dataset without
    targets keeps the input order by default (``keep_order=None``): batches are consecutive
    rows, still padded per batch. With ``keep_order=False``, :meth:`restore_order` puts
    predictions back in the input order.

    Args:
        x: The sequences: a :class:`varlen.Ragged`, or a sequence of ``(T_i, *F)``
            array-likes (lists, arrays, e.g. token ids ``(T_i,)`` for an ``Embedding``).
        y: Optional targets ``(n, ...)``, one per sequence.
        batch_size: Sequences per batch (default 32 when ``max_tokens`` is not given).
        max_tokens: Budget of padded steps per batch, instead of ``batch_size``.
        padding: ``"post"`` (pads after the real steps) or ``"pre"``.
        value: The pad value.
        pad_to: Round each batch's ``T`` up to a multiple of this. On JAX each new batch
            shape compiles once; a multiple such as 16 or 32 keeps the shapes few.
        dtype: dtype of the batches; default: Keras's ``floatx`` for float data, the
            data's own dtype otherwise (integer ids stay integers).
        shuffle: Reshuffle batches every epoch; default ``True`` when bucketing.
        keep_order: Serve rows in input order; default ``True`` when ``y`` is ``None``.
        seed: Seed of the shuffles (an epoch's plan depends only on ``(seed, epoch)``).
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of
            :class:`keras.utils.PyDataset`.

    Raises:
        TypeError: If ``x`` is a padded numeric array or cannot be read as sequences.
        ValueError: If ``y`` does not hold one target per sequence, both ``batch_size`` and
            ``max_tokens`` are given, or ``padding`` is not ``"pre"``/``"post"``.

    Example:
        >>> data = BucketedDataset([[1, 2, 3], [4], [5, 6]], y=[0, 1, 0], batch_size=2)
        >>> len(data), data[0][0].shape[0] <= 2  # batches; rows in the first batch
        (2, True)
    """

    def __init__(
        self,
        x: Any,
        y: Any = None,
        *,
        batch_size: int | None = None,
        max_tokens: int | None = None,
        padding: str = "post",
        value: float = 0.0,
        pad_to: int = 1,
        dtype: Any = None,
        shuffle: bool = True,
        keep_order: bool | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        where = "BucketedDataset"
        self.sequences = _as_ragged(where, x)
        self.targets = None if y is None else np.asarray(y)
        if self.targets is not None and len(self.targets) != len(self.sequences):
            raise ValueError(
                f"{where}: y must hold one target per sequence, {len(self.sequences)}, got "
                f"{len(self.targets)}."
            )
        if batch_size is not None and max_tokens is not None:
            raise ValueError(
                f"{where}: give batch_size or max_tokens, got both ({batch_size}, {max_tokens})."
            )
        if batch_size is None and max_tokens is None:
            batch_size = 32
        self.padding = check_side(where, "padding", padding)
        self.value = value
        if not isinstance(pad_to, int) or isinstance(pad_to, bool) or pad_to < 1:
            raise ValueError(f"{where}: pad_to must be an int >= 1, got {pad_to!r}.")
        self.pad_to = pad_to
        floating = np.issubdtype(self.sequences.dtype, np.floating)
        self.dtype = np.dtype(
            keras.config.floatx() if dtype is None and floating else dtype or self.sequences.dtype
        )
        self.keep_order = y is None if keep_order is None else bool(keep_order)
        lengths = self.sequences.lengths
        self.sampler = BucketBatchSampler(
            lengths,
            batch_size=batch_size,
            max_tokens=max_tokens,
            shuffle=shuffle,
            seed=seed,
            num_replicas=1,
            rank=0,
        )
        self._ordered = (
            _ordered_batches(lengths, batch_size, max_tokens) if self.keep_order else None
        )
        self._plan = self._ordered if self._ordered is not None else list(self.sampler)

    @property
    def num_batches(self) -> int:
        """Batches per epoch."""
        return len(self._plan)

    @property
    def order(self) -> NDArray[np.int64]:
        """``(n,)`` the input rows in the order this epoch serves them."""
        return np.fromiter((row for batch in self._plan for row in batch), dtype=np.int64)

    def __len__(self) -> int:
        return len(self._plan)

    def __iter__(self) -> Iterator[Any]:
        for index in range(len(self)):
            yield self[index]

    def __getitem__(self, index: int) -> Any:
        rows = np.asarray(self._plan[index], dtype=np.int64)
        chosen = self.sequences[rows]
        longest = int(chosen.lengths.max(initial=0))
        padded, _ = chosen.to_padded(
            maxlen=-(-longest // self.pad_to) * self.pad_to,
            padding=self.padding,
            value=self.value,
            dtype=self.dtype,
        )
        if self.targets is None:
            return (padded,)
        return padded, self.targets[rows]

    def on_epoch_end(self) -> None:
        """Plan the next epoch (a new shuffle unless ``keep_order``)."""
        if self._ordered is None:
            self.sampler.set_epoch(self.sampler.epoch + 1)
            self._plan = list(self.sampler)

    def restore_order(self, outputs: Any) -> Any:
        """Put ``outputs (n, ...)``, row ``k`` for the ``k``-th row served, in input order.

        Args:
            outputs: What ``model.predict(dataset)`` returned (this epoch's plan).

        Returns:
            ``outputs`` reordered so that row ``i`` belongs to input sequence ``i``.
        """
        restored = np.empty_like(np.asarray(outputs))
        restored[self.order] = outputs
        return restored
