"""``Ragged``: a batch of variable-length sequences stored without padding.

A batch of ``B`` sequences of shapes ``(T_i, *F)`` is stored as ``values (N, *F)``, all
steps end to end with ``N = sum(T_i)``, and ``offsets (B + 1,)`` int64, so that sequence
``i`` is ``values[offsets[i]:offsets[i + 1]]``. Conversions to and from padded batches,
indexing and concatenation are vectorized: no Python loop runs over the sequences.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from varlen._casts import check_strict_cast, first_changed
from varlen._checks import check_lengths_array, check_maxlen, check_side, error_context, unplaced
from varlen._types import Padding
from varlen.data._flat import pad_flat, row_positions
from varlen.data.masks import _check_mask, _mask_to_lengths

__all__ = ["Ragged"]

_KINDS = "biufcUS"  # bool, integers, floats, complex, str, bytes
_NUMERIC = "biufc"


@dataclass(frozen=True, init=False, eq=False, repr=False)
class Ragged:
    """A batch of ``B`` variable-length sequences, stored flat without padding.

    Sequence ``i`` has shape ``(T_i, *F)`` and is ``values[offsets[i]:offsets[i + 1]]``.
    Every sequence shares the trailing shape ``*F`` and the dtype. ``B = 0`` and
    ``T_i = 0`` are allowed.

    ``Ragged`` is an immutable value. The constructor copies ``values`` and ``offsets``
    and stores read-only views of the copies, so neither the caller's arrays nor writes
    through the attributes can break the invariants. Arrays handed out (``values``,
    ``offsets``, ``r[i]``, iteration) are read-only views; :meth:`to_sequences` and
    :meth:`to_padded` return new writable arrays. Results of slicing may share memory
    with the original, which is safe because neither can change. Copies and pickles
    (e.g. to ``DataLoader`` workers) go back through the constructor.

    Equality (``==``) is structural: same dtype, trailing shape, offsets and values,
    with NaN equal to NaN. A ``Ragged`` is unhashable, like an array.

    Args:
        values: ``(N, *F)`` all steps end to end, ``N = sum(T_i)``; a numeric, bool or
            string dtype.
        offsets: ``(B + 1,)`` integer row boundaries: ``offsets[0] == 0``,
            non-decreasing, ``offsets[-1] == N``. Stored as int64.

    Raises:
        TypeError: If ``values`` has another dtype (e.g. object) or ``offsets`` is not
            integer.
        ValueError: If ``values`` is a scalar or ``offsets`` breaks the rules above.

    Example:
        >>> r = Ragged(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 3, 3, 4]))
        >>> r  # B = 3 sequences, T_i = (3, 0, 1)
        Ragged(B=3, N=4, F=(), dtype=float64, lengths min/mean/max=0/1.3/3)
        >>> r[2]
        array([4.])
        >>> r[[2, 0]].to_sequences()
        [array([4.]), array([1., 2., 3.])]
    """

    values: NDArray[Any]
    offsets: NDArray[np.int64]

    def __init__(self, values: ArrayLike, offsets: ArrayLike) -> None:
        with error_context("Ragged"):
            values = _check_values("values", values)
            offsets = _check_offsets(offsets, values.shape[0])
        object.__setattr__(self, "values", _read_only(np.array(values, copy=True)))
        object.__setattr__(self, "offsets", _read_only(offsets))

    @classmethod
    def _trusted(cls, values: NDArray[Any], offsets: NDArray[np.int64]) -> Ragged:
        """Build without validation or copies, from arrays that nobody else can write."""
        ragged = object.__new__(cls)
        object.__setattr__(ragged, "values", _read_only(values))
        object.__setattr__(ragged, "offsets", _read_only(offsets))
        return ragged

    @classmethod
    def view(cls, values: NDArray[Any], offsets: ArrayLike) -> Ragged:
        """Wrap existing steps without copying them, e.g. a memory-mapped file's.

        The offsets are checked (and copied: ``B + 1`` integers); ``values`` is only
        looked at, never read or copied, so a view over a memory map costs nothing until
        a sequence is used. The caller promises that nobody writes ``values`` while the
        ``Ragged`` lives: it is exposed read-only, like every ``Ragged``'s.

        Args:
            values: ``(N, *F)`` all steps end to end; a numeric, bool or string dtype.
            offsets: ``(B + 1,)`` integer row boundaries, as for the constructor.

        Returns:
            A ``Ragged`` sharing ``values``' memory.

        Raises:
            TypeError: If ``values`` is not an array of a supported dtype, or
                ``offsets`` is not integer.
            ValueError: If ``values`` is a scalar or ``offsets`` breaks the constructor's
                rules.

        Example:
            >>> steps = np.arange(4.0)
            >>> r = Ragged.view(steps, [0, 3, 4])
            >>> np.shares_memory(r.values, steps), r.lengths
            (True, array([3, 1]))
        """
        where = "Ragged.view"
        if not isinstance(values, np.ndarray):
            raise TypeError(
                f"{where}: values must be a NumPy array, got {type(values).__name__}. "
                "Use the Ragged constructor to copy other array-likes."
            )
        with error_context(where):
            values = _check_values("values", values)
            checked = _check_offsets(offsets, values.shape[0])
        return cls._trusted(values.view(), checked)

    def __reduce__(self) -> tuple[type[Ragged], tuple[NDArray[Any], NDArray[np.int64]]]:
        # Unpickling goes through the constructor: checked, copied and read-only again.
        return (Ragged, (self.values, self.offsets))

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

    @property
    def nbytes(self) -> int:
        """Bytes of ``values`` plus ``offsets``; no padding is stored.

        For a contiguous slice this counts its own steps, though it shares them with
        its parent.
        """
        return int(self.values.nbytes + self.offsets.nbytes)

    # -------------------------------------------------------------------- sequence

    def __len__(self) -> int:
        return int(self.offsets.shape[0]) - 1

    def __iter__(self) -> Iterator[NDArray[Any]]:
        bounds = self.offsets.tolist()
        for start, stop in itertools.pairwise(bounds):
            yield self.values[start:stop]

    @overload
    def __getitem__(self, index: int | np.integer[Any]) -> NDArray[Any]: ...

    @overload
    def __getitem__(
        self, index: slice | Sequence[int] | Sequence[bool] | NDArray[Any]
    ) -> Ragged: ...

    def __getitem__(self, index: Any) -> NDArray[Any] | Ragged:
        """Return sequence ``index`` ``(T_i, *F)``, or a new ``Ragged`` for a selection.

        An int (negative counts from the end) gives a read-only view of one sequence.
        A slice, a 1-D integer array or list (any order, repeats allowed) or a ``(B,)``
        bool array gives a ``Ragged`` of the selected sequences, gathered in one copy
        (a contiguous slice is a view).
        """
        B = len(self)
        if isinstance(index, int | np.integer) and not isinstance(index, bool | np.bool_):
            if not -B <= index < B:
                raise IndexError(f"Ragged: index must be in [-B, B) = [{-B}, {B}), got {index}.")
            row = int(index) % B
            return self.values[self.offsets[row] : self.offsets[row + 1]]
        if isinstance(index, slice):
            start, stop, step = index.indices(B)
            if step == 1:
                return self._slice(start, max(start, stop))
            return self._gather(np.arange(start, stop, step, dtype=np.int64))
        with error_context("Ragged"):
            rows = _check_rows(index, B)
        return self._gather(rows)

    def _slice(self, start: int, stop: int) -> Ragged:
        """Rows ``start:stop`` as a view of ``values`` with rebased offsets."""
        offsets = self.offsets[start : stop + 1]
        values = self.values[offsets[0] : offsets[-1]]
        return Ragged._trusted(values, offsets - offsets[0])

    def _gather(self, rows: NDArray[np.int64]) -> Ragged:
        """Rows ``rows`` (in range, any order) in one vectorized copy."""
        lengths = self.lengths[rows]  # (B',)
        offsets = _offsets_from_lengths(lengths)
        shift = self.offsets[rows] - offsets[:-1]  # (B',) source start - target start
        source = np.arange(offsets[-1], dtype=np.int64) + np.repeat(shift, lengths)
        return Ragged._trusted(np.take(self.values, source, axis=0), offsets)

    # -------------------------------------------------------------------- equality

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ragged):
            return NotImplemented
        return bool(
            self.dtype == other.dtype
            and self.values.shape == other.values.shape
            and np.array_equal(self.offsets, other.offsets)
            and np.array_equal(self.values, other.values, equal_nan=self.dtype.kind in "fc")
        )

    __hash__ = None  # type: ignore[assignment]  # equal values, unhashable like arrays

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

    # ---------------------------------------------------------------- conversions

    def to_sequences(self) -> list[NDArray[Any]]:
        """Return the ``B`` sequences as new writable arrays ``(T_i, *F)``.

        Returns:
            A list of ``B`` arrays (views into one fresh copy of ``values``).

        Example:
            >>> Ragged.from_sequences([[1, 2], []]).to_sequences()
            [array([1, 2]), array([], dtype=int64)]
        """
        if len(self) == 0:
            return []
        return np.split(self.values.copy(), self.offsets[1:-1].tolist())

    def to_padded(
        self,
        *,
        maxlen: int | None = None,
        padding: Padding = "post",
        truncating: Padding = "post",
        value: Any = 0,
        dtype: DTypeLike | None = None,
    ) -> tuple[NDArray[Any], NDArray[np.int64]]:
        """Pad the sequences into one dense ``(B, T, *F)`` array, in one vectorized copy.

        Sequences longer than ``T`` lose steps on the ``truncating`` side. Zero-length
        sequences become all-padding rows; ``B = 0`` gives shape ``(0, T, *F)``.
        The cast to ``dtype`` is strict, like :func:`varlen.pad`'s: numbers stay within
        their kind (no float to int: cast such data yourself), every integer must fit an
        integer ``dtype`` and no finite value may overflow to infinity in a float one.

        Args:
            maxlen: Output length ``T``; defaults to ``max(T_i)`` (0 when ``B == 0``).
                May be 0.
            padding: End that receives padding: ``"pre"`` (before) or ``"post"`` (after).
            truncating: End from which steps are dropped when ``T_i > T``.
            value: Scalar written at padded steps; must be representable in ``dtype``.
            dtype: Output dtype; defaults to ``self.dtype``.

        Returns:
            ``(padded, lengths)``: ``padded`` is ``(B, T, *F)``; ``lengths`` is int64
            ``(B,)`` holding the kept lengths ``min(T_i, T)``.

        Raises:
            TypeError: If ``maxlen`` is not an int, ``dtype`` is not a numeric, bool or
                string dtype, or numbers would change kind (float to int, say).
            ValueError: If ``maxlen < 0``, a side is not ``"pre"``/``"post"``, ``value`` is
                not a scalar representable in ``dtype``, or a value is not (an integer out
                of range, a finite value that would overflow).

        Example:
            >>> r = Ragged.from_sequences([[1, 2, 3], [4]])
            >>> padded, lengths = r.to_padded(maxlen=2, padding="pre", value=-1)
            >>> padded  # (B, T) = (2, 2); [1, 2, 3] lost its last step
            array([[ 1,  2],
                   [-1,  4]])
            >>> lengths
            array([2, 1])
        """
        where = "Ragged.to_padded"
        with error_context(where):
            pad_side = check_side(where, "padding", padding)
            cut_side = check_side(where, "truncating", truncating)
            T = check_maxlen(where, maxlen)
            out_dtype = self.dtype if dtype is None else _check_dtype(dtype)
            fill = _check_fill(value, out_dtype)
            self._check_cast(out_dtype)
            return pad_flat(
                self.values,
                self.offsets,
                maxlen=T,
                value=fill,
                padding=pad_side,
                truncating=cut_side,
                dtype=out_dtype,
            )

    def _check_cast(self, dtype: np.dtype[Any]) -> None:
        """Raise if casting the values to ``dtype`` is not strict (see :meth:`to_padded`)."""
        source = self.values.dtype
        if source == dtype or source.kind not in _NUMERIC or dtype.kind not in _NUMERIC:
            return
        if not np.can_cast(source, dtype, casting="same_kind"):
            raise unplaced(
                TypeError(
                    f"values of dtype {source} must cast to dtype {dtype} within their "
                    "kind. Pass a dtype of their kind, or cast them first."
                )
            )
        changed = first_changed(self.values, dtype)
        if changed is not None:
            row = int(np.searchsorted(self.offsets, changed.step, side="right")) - 1
            raise unplaced(
                ValueError(
                    f"dtype {dtype} must hold every value, got {changed.example!r} in "
                    f"sequence {row} ({changed.number} such values). Pass a wider dtype."
                )
            )

    def with_values(self, values: Any) -> Ragged:
        """Return a ``Ragged`` with the same offsets and new per-step ``values``.

        Use it for step-wise transforms such as normalization:
        ``r.with_values((r.values - mean) / std)``.

        Args:
            values: ``(N, *F')`` new steps, ``N`` equal to ``self.num_steps``; the
                trailing shape and dtype may change. Copied.

        Returns:
            A new ``Ragged`` with ``self.offsets``.

        Raises:
            TypeError: If ``values`` has an unsupported dtype (e.g. object).
            ValueError: If ``values`` is a scalar or does not have ``N`` steps.

        Example:
            >>> r = Ragged.from_sequences([[1.0, 2.0], [3.0]])
            >>> r.with_values(r.values * 10).to_sequences()
            [array([10., 20.]), array([30.])]
        """
        where = "Ragged.with_values"
        with error_context(where):
            array = _check_values("values", values)
            if array.shape[0] != self.num_steps:
                raise ValueError(
                    f"{where}: values must have N = {self.num_steps} steps (len(values)), "
                    f"got shape {array.shape}."
                )
            return Ragged._trusted(np.array(array, copy=True), self.offsets)

    # --------------------------------------------------------------- constructors

    @classmethod
    def from_sequences(cls, sequences: Iterable[Any], *, dtype: DTypeLike | None = None) -> Ragged:
        """Build a ``Ragged`` from ``B`` sequences, concatenating them once.

        Args:
            sequences: ``B >= 0`` array-likes of shape ``(T_i, *F)`` (arrays or nested
                lists) with equal ``*F``. An empty Python list is an empty sequence of
                any ``*F`` and takes no part in dtype promotion.
            dtype: Dtype of ``values``; defaults to NumPy's promotion of the inputs
                (float64 when there are no steps). The cast is strict, as
                :func:`varlen.pad`'s: each sequence (as NumPy converts it) must cast to it
                within its kind (no float to int: cast such data yourself), every integer
                must fit, and no finite value may overflow to infinity.

        Returns:
            A new ``Ragged`` holding copies of the steps.

        Raises:
            TypeError: If the steps have an unsupported dtype (e.g. object), or a sequence
                does not cast to ``dtype`` within its kind.
            ValueError: If a sequence is a scalar or ragged inside, trailing shapes
                differ, or ``dtype`` cannot hold one of its values (the message names the
                sequence).

        Example:
            >>> r = Ragged.from_sequences([[1, 2, 3], [], [4]])
            >>> r.values, r.offsets
            (array([1, 2, 3, 4]), array([0, 3, 3, 4]))
        """
        where = "Ragged.from_sequences"
        with error_context(where):
            items = list(sequences)
            lengths = np.zeros(len(items), dtype=np.int64)
            arrays: list[NDArray[Any]] = []
            first = 0
            for index, sequence in enumerate(items):
                if isinstance(sequence, list | tuple) and len(sequence) == 0:
                    continue  # no steps, and no dtype or trailing shape to impose
                array = _as_sequence(index, sequence, dtype)
                if not arrays:
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
            values = _check_values("sequences", values)
            return cls._trusted(values, _offsets_from_lengths(lengths))

    @classmethod
    def from_padded(
        cls, array: Any, lengths: Any = None, *, mask: Any = None, padding: Padding = "post"
    ) -> Ragged:
        """Extract the real steps of a padded batch, given its lengths or its mask.

        Pass exactly one of ``lengths`` and ``mask``. The padded steps are never read, so
        they may hold anything (NaN, garbage). Inverse of :meth:`to_padded` with the same
        ``padding`` when nothing was truncated.

        Args:
            array: ``(B, T, *F)`` padded batch.
            lengths: ``(B,)`` integer lengths, ``0 <= T_i <= T``.
            mask: ``(B, T)`` bool, True = real step; each row must be one run of True at
                the unpadded side (see :func:`varlen.data.masks.mask_to_lengths`).
            padding: Side that holds the padding: ``"post"`` or ``"pre"``.

        Returns:
            A new ``Ragged`` of the ``B`` real-step sequences, in ``array``'s dtype.

        Raises:
            TypeError: If ``array`` has an unsupported dtype, ``lengths`` is not integer
                or ``mask`` not bool.
            ValueError: If both or neither of ``lengths`` and ``mask`` are given, shapes
                disagree with ``array``, a length is outside ``[0, T]``, a mask row is not
                contiguous (the message names the row), or ``padding`` is invalid.

        Example:
            >>> x = np.array([[0, 7, 8], [0, 0, 9]])  # (B, T) = (2, 3), pre-padded
            >>> Ragged.from_padded(x, [2, 1], padding="pre").to_sequences()
            [array([7, 8]), array([9])]
        """
        where = "Ragged.from_padded"
        with error_context(where):
            side = check_side(where, "padding", padding)
            batch = _check_values("array", array, shape="(B, T, *F)", min_ndim=2)
            kept = _padded_lengths(batch.shape[0], batch.shape[1], lengths, mask, side)
            B, T = batch.shape[:2]
            row, step = row_positions(kept)  # (N,) each
            column = step + (T - kept)[row] if side == "pre" else step
            flat = batch.reshape(B * T, *batch.shape[2:])  # (B * T, *F), a view when possible
            return cls._trusted(
                np.take(flat, row * T + column, axis=0), _offsets_from_lengths(kept)
            )

    @classmethod
    def concatenate(cls, raggeds: Sequence[Ragged]) -> Ragged:
        """Join several ragged batches into one, batch after batch (in one copy).

        Args:
            raggeds: One or more ``Ragged`` with equal trailing shapes; the dtype is
                NumPy's promotion of theirs.

        Returns:
            A ``Ragged`` with ``sum(len(r))`` sequences.

        Raises:
            TypeError: If an element is not a ``Ragged``.
            ValueError: If ``raggeds`` is empty or trailing shapes differ.

        Example:
            >>> a = Ragged.from_sequences([[1, 2]])
            >>> Ragged.concatenate([a, Ragged.from_sequences([[3], []])]).lengths
            array([2, 1, 0])
        """
        where = "Ragged.concatenate"
        items = list(raggeds)
        if not items:
            raise ValueError(f"{where}: raggeds must hold at least one Ragged, got none.")
        for index, item in enumerate(items):
            if not isinstance(item, Ragged):
                raise TypeError(
                    f"{where}: raggeds[{index}] must be a Ragged, got {type(item).__name__}."
                )
            if item.trailing_shape != items[0].trailing_shape:
                raise ValueError(
                    f"{where}: raggeds[{index}] has trailing shape {item.trailing_shape}, "
                    f"expected {items[0].trailing_shape} like raggeds[0]."
                )
        values = np.concatenate([item.values for item in items], axis=0)
        lengths = np.concatenate([item.lengths for item in items])
        return cls._trusted(values, _offsets_from_lengths(lengths))


# ---------------------------------------------------------------------- helpers


def _read_only(array: NDArray[Any]) -> NDArray[Any]:
    """Return a read-only view of ``array``, which must not be referenced elsewhere.

    The owner is frozen too, so the view's ``writeable`` flag cannot be set back.
    """
    array.flags.writeable = False
    return array.view()


def _offsets_from_lengths(lengths: NDArray[np.int64]) -> NDArray[np.int64]:
    """``(B + 1,)`` int64 offsets ``[0, cumsum(lengths)]``."""
    offsets = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _check_values(
    name: str, values: Any, *, shape: str = "(N, *F)", min_ndim: int = 1
) -> NDArray[Any]:
    """Return ``values`` as an array of ``min_ndim`` or more dimensions and a supported dtype."""
    array = np.asarray(values)
    if array.dtype.kind not in _KINDS:
        raise unplaced(
            TypeError(
                f"{name} must have a numeric, bool or string dtype, got dtype "
                f"{array.dtype}. Check that every step has the same trailing shape."
            )
        )
    if array.ndim < min_ndim:
        raise unplaced(ValueError(f"{name} must have shape {shape}, got {array.shape}."))
    return array


def _check_offsets(offsets: Any, num_steps: int) -> NDArray[np.int64]:
    """Return ``offsets`` as int64 ``(B + 1,)``: starts at 0, non-decreasing, ends at ``N``."""
    array = np.asarray(offsets)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise unplaced(
            TypeError(
                f"offsets must be integers, got dtype {array.dtype}. Cast with .astype(np.int64)."
            )
        )
    if array.ndim != 1 or array.shape[0] == 0:
        raise unplaced(ValueError(f"offsets must have shape (B + 1,), got {array.shape}."))
    if int(array.max()) > num_steps:  # before the int64 cast, which wraps a huge uint64 to -1
        index = int(np.argmax(array))
        raise unplaced(
            ValueError(
                f"offsets must be <= N = {num_steps} (the number of steps), got "
                f"offsets[{index}] == {int(array[index])}."
            )
        )
    out = array.astype(np.int64, copy=True)
    if out[0] != 0:
        raise unplaced(ValueError(f"offsets[0] must be 0, got {int(out[0])}."))
    drops = np.flatnonzero(np.diff(out) < 0)
    if drops.size:
        index = int(drops[0]) + 1
        raise unplaced(
            ValueError(
                f"offsets must be non-decreasing, got offsets[{index}] == "
                f"{int(out[index])} < offsets[{index - 1}] == {int(out[index - 1])}."
            )
        )
    if out[-1] != num_steps:
        raise unplaced(
            ValueError(f"offsets[-1] must equal len(values) = {num_steps}, got {int(out[-1])}.")
        )
    return out


def _check_rows(index: Any, B: int) -> NDArray[np.int64]:
    """Return an integer or bool index array as in-range int64 rows, else raise."""
    if isinstance(index, tuple):
        raise unplaced(
            TypeError(
                f"index must be an int, a slice, or a 1-D integer or bool array, "
                f"got the tuple {index!r}. Use r[i][j] for a step, or a list to select rows."
            )
        )
    array = np.asarray(index)
    if array.size == 0 and array.dtype.kind == "f" and isinstance(index, list):
        array = array.astype(np.int64)  # [] selects nothing
    return checked_rows(array, index, B)


def checked_rows(array: NDArray[Any], index: Any, B: int) -> NDArray[np.int64]:
    """Return the rows a bool ``(B,)`` mask or a 1-D integer array selects, in ``[0, B)``.

    The row-selection rule of :class:`Ragged` and of a store's rows
    (:class:`varlen.data.io.store.StoredRagged`); errors are left for the caller's
    :class:`~varlen._checks.error_context` to name.

    Args:
        array: ``np.asarray(index)``, after the caller's own conversions.
        index: The index as received (named in the message).
        B: The number of rows; negative rows count from the end.

    Returns:
        int64 row numbers in ``[0, B)``.

    Raises:
        TypeError: If ``array`` is neither bool nor a 1-D integer array.
        IndexError: If a bool mask is not ``(B,)`` or a row is outside ``[-B, B)``.
    """
    if array.dtype == np.bool_:
        if array.shape != (B,):
            raise unplaced(
                IndexError(f"a bool index must have shape (B,) = ({B},), got {array.shape}.")
            )
        return np.flatnonzero(array).astype(np.int64)
    if not np.issubdtype(array.dtype, np.integer) or array.ndim != 1:
        raise unplaced(
            TypeError(
                f"index must be an int, a slice, or a 1-D integer or bool array, got {index!r}."
            )
        )
    rows = array.astype(np.int64)
    outside = np.flatnonzero((rows < -B) | (rows >= B))
    if outside.size:
        position = int(outside[0])
        raise unplaced(
            IndexError(
                f"index[{position}] must be in [-B, B) = [{-B}, {B}), got {int(rows[position])}."
            )
        )
    return np.where(rows < 0, rows + B, rows)


def _check_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    """Return ``dtype`` as a numeric, bool or string NumPy dtype, else raise ``TypeError``."""
    try:
        out = np.dtype(dtype)
    except TypeError:
        out = np.dtype(object)
    if out.kind not in _KINDS:
        raise unplaced(TypeError(f"dtype must be a numeric, bool or string dtype, got {dtype!r}."))
    return out


def _check_fill(value: Any, dtype: np.dtype[Any]) -> Any:
    """Return ``value`` cast to ``dtype``, if it is a scalar that ``dtype`` can hold.

    Floating targets accept any real number that does not overflow (rounding is fine);
    other targets need the value exactly (``1.5`` or NaN cannot pad int64).
    """
    fill = np.asarray(value)
    same_family = (fill.dtype.kind in _NUMERIC) == (dtype.kind in _NUMERIC)
    if fill.ndim != 0 or fill.dtype.kind not in _KINDS or not same_family:
        raise unplaced(ValueError(f"value must be a scalar of dtype {dtype}, got {value!r}."))
    with np.errstate(all="ignore"):
        cast_fill = fill.astype(dtype) if fill.dtype.kind != "c" or dtype.kind == "c" else None
    if cast_fill is None:
        exact = False  # complex -> real would drop the imaginary part
    elif dtype.kind in "fc":
        exact = bool(np.isfinite(cast_fill) == np.isfinite(fill))  # rounding ok, overflow not
    else:
        exact = bool(cast_fill == fill)
    if cast_fill is None or not exact:
        raise unplaced(
            ValueError(
                f"value must be representable in dtype {dtype}, got {value!r}. "
                "Pass a value that fits, or a wider dtype."
            )
        )
    return cast_fill[()]


def _padded_lengths(B: int, T: int, lengths: Any, mask: Any, padding: Padding) -> NDArray[np.int64]:
    """Return the checked ``(B,)`` lengths of a padded batch from its lengths or its mask."""
    if (lengths is None) == (mask is None):
        given = "both" if lengths is not None else "neither"
        raise unplaced(ValueError(f"exactly one of lengths and mask must be given, got {given}."))
    if mask is not None:
        array = _check_mask(mask)
        if array.shape != (B, T):
            raise unplaced(
                ValueError(f"mask must have shape (B, T) = {(B, T)} like array, got {array.shape}.")
            )
        return _mask_to_lengths(array, padding)
    kept = check_lengths_array(None, lengths, maxlen=T)
    if kept.shape != (B,):
        raise unplaced(
            ValueError(f"lengths must have shape (B,) = ({B},) like array, got {kept.shape}.")
        )
    return kept


def _as_sequence(index: int, sequence: Any, dtype: DTypeLike | None) -> NDArray[Any]:
    """Return ``sequences[index]`` as an array ``(T_i, *F)`` cast strictly to ``dtype``.

    The sequence is converted as NumPy converts it on its own, then cast by the one strict
    rule (:func:`varlen._casts.check_strict_cast`), so ``300`` never becomes ``44`` in int8.
    """
    try:
        array = np.asarray(sequence)
    except ValueError as error:
        raise unplaced(
            ValueError(
                f"sequences[{index}] must be an array-like of shape (T_i, *F) with "
                f"equal-sized steps, got {error}"
            )
        ) from None
    if array.ndim == 0:
        raise unplaced(
            ValueError(
                f"sequences[{index}] must have shape (T_i, *F), got the scalar "
                f"{sequence!r}. Wrap it in a list."
            )
        )
    if dtype is not None:
        check_strict_cast(index, array, dtype)
    return array
