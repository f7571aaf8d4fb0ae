"""Variable feature width: align sources with different channel sets to one union schema.

Real collections mix sources that record different channels: one sensor logs
``["hr", "spo2"]``, another ``["hr", "temp", "spo2"]``. A recurrent network needs one input
width, so :func:`align_features` places every source's columns in a shared
:class:`FeatureSchema` (the union of the channels, or a schema you give), fills the
absent channels, and returns presence masks saying which entries were observed.

The usual recipe for one LSTM over all sources:

1. ``aligned = align_features(sources, names, fill_value=np.nan, nan_as_missing=True)``
2. ``scaler = Standardizer.fit(aligned.values)`` (absent entries are NaN, so ignored)
3. ``x = concat_presence(scaler.transform(aligned.values), aligned.step_presence,
   fill_value=0.0)``: values with absent entries set to 0, then the ``F`` presence flags,
   ``2F`` features in all, ready to pad and feed to the network.

Example:
    >>> a = [np.array([[1.0, 2.0]]), np.array([[3.0, 4.0], [5.0, 6.0]])]  # names x, y
    >>> b = [np.array([[7.0, 8.0]])]  # names z, x
    >>> aligned = align_features([a, b], [["x", "y"], ["z", "x"]], fill_value=-1.0)
    >>> aligned.schema.names
    ('x', 'y', 'z')
    >>> aligned.values.values  # (N, F) = (4, 3)
    array([[ 1.,  2., -1.],
           [ 3.,  4., -1.],
           [ 5.,  6., -1.],
           [ 8., -1.,  7.]])
    >>> aligned.presence, aligned.source  # (B, F) and (B,)
    (array([[ True,  True, False],
           [ True,  True, False],
           [ True, False,  True]]), array([0, 0, 1]))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar, cast

import numpy as np
from numpy.typing import DTypeLike

from varlen._checks import error_context, unplaced
from varlen._types import AnyArray, BoolArray, IntArray
from varlen.data.ragged import Ragged

__all__ = ["AlignedFeatures", "FeatureSchema", "align_features", "concat_presence"]

_X = TypeVar("_X", bound=Ragged | AnyArray)


def _check_names(label: str, names: Any) -> tuple[str, ...]:
    """Return ``names`` as a tuple of unique strings, else raise naming ``label``."""
    if isinstance(names, str) or not isinstance(names, Sequence | np.ndarray):
        raise unplaced(
            TypeError(
                f"{label} must be a sequence of str, got {type(names).__name__}. "
                "Wrap a single name in a list."
            )
        )
    out = tuple(names)
    seen: dict[str, int] = {}
    for index, name in enumerate(out):
        if not isinstance(name, str):
            raise unplaced(TypeError(f"{label}[{index}] must be a str, got {name!r}."))
        if name in seen:
            raise unplaced(
                ValueError(
                    f"{label} must have unique names, got {name!r} at "
                    f"{label}[{seen[name]}] and {label}[{index}]."
                )
            )
        seen[name] = index
    return out


@dataclass(frozen=True)
class FeatureSchema:
    """An ordered set of unique channel names: the feature axis after alignment.

    Column ``j`` of aligned values holds channel ``names[j]``. A schema is a hashable
    value; save it as ``list(schema.names)`` and rebuild it with ``FeatureSchema(names)``.

    Args:
        names: Unique channel names, in column order. May be empty.

    Raises:
        TypeError: If ``names`` is not a sequence of str.
        ValueError: If a name repeats.

    Example:
        >>> schema = FeatureSchema.union([["hr", "spo2"], ["temp", "hr"]])
        >>> schema.names, len(schema), schema.index("temp")
        (('hr', 'spo2', 'temp'), 3, 2)
    """

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        with error_context("FeatureSchema"):
            object.__setattr__(self, "names", _check_names("names", self.names))

    @classmethod
    def union(cls, names_per_source: Sequence[Sequence[str]]) -> FeatureSchema:
        """Return the union of the sources' channels, in order of first appearance.

        Args:
            names_per_source: One sequence of unique channel names per source.

        Returns:
            A new :class:`FeatureSchema`.

        Raises:
            TypeError: If an element is not a sequence of str.
            ValueError: If a source repeats a name.
        """
        where = "FeatureSchema.union"
        with error_context(where):
            return _union(_check_sources_names(names_per_source))

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def index(self, name: str) -> int:
        """Return the column of channel ``name``.

        Args:
            name: A channel name.

        Returns:
            Its column index in ``[0, len(schema))``.

        Raises:
            KeyError: If ``name`` is not in the schema.
        """
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(
                f"FeatureSchema.index: name must be one of the {len(self)} schema names, "
                f"got {name!r}."
            ) from None

    def columns(self, names: Sequence[str]) -> IntArray:
        """Return the columns of ``names``, as int64 ``(len(names),)``.

        Args:
            names: Unique channel names, all in the schema.

        Returns:
            ``(F_s,)`` int64 column indices, in the order of ``names``.

        Raises:
            TypeError: If ``names`` is not a sequence of str.
            ValueError: If a name repeats or is not in the schema.
        """
        with error_context("FeatureSchema.columns"):
            return self._columns("names", names)

    def _columns(self, label: str, names: Any) -> IntArray:
        checked = _check_names(label, names)
        lookup = {name: column for column, name in enumerate(self.names)}
        for index, name in enumerate(checked):
            if name not in lookup:
                raise unplaced(
                    ValueError(
                        f"{label}[{index}] must be a schema channel, got {name!r}, "
                        "which is not in the schema. Add it to the schema or drop that column."
                    )
                )
        return np.array([lookup[name] for name in checked], dtype=np.int64)


class AlignedFeatures(NamedTuple):
    """The result of :func:`align_features`.

    Attributes:
        values: Ragged with values ``(N, F)``, ``F = len(schema)``: all sequences of all
            sources in order; absent entries hold ``fill_value``.
        presence: ``(B, F)`` bool, True where the sequence's source has the channel.
        step_presence: Ragged with values ``(N, F)`` bool and the same offsets as
            ``values``, True where an entry holds an observed value: the channel is
            present and, with ``nan_as_missing``, the value is not NaN.
        source: ``(B,)`` int64 index of each sequence's source.
        schema: The :class:`FeatureSchema` of the columns.
    """

    values: Ragged
    presence: BoolArray
    step_presence: Ragged
    source: IntArray
    schema: FeatureSchema


def _check_sources_names(names_per_source: Any) -> list[tuple[str, ...]]:
    """Return each source's names as a tuple of unique str, else raise."""
    if isinstance(names_per_source, str) or not isinstance(names_per_source, Sequence):
        raise unplaced(
            TypeError(
                f"names_per_source must be a sequence of name lists, got "
                f"{type(names_per_source).__name__}."
            )
        )
    return [
        _check_names(f"names_per_source[{index}]", names)
        for index, names in enumerate(names_per_source)
    ]


def _union(names: list[tuple[str, ...]]) -> FeatureSchema:
    """The union of checked name tuples, in order of first appearance."""
    union: dict[str, None] = {}
    for source_names in names:
        union.update(dict.fromkeys(source_names))
    return FeatureSchema(tuple(union))


def _check_dtype(label: str, array: AnyArray) -> None:
    """Raise ``TypeError`` unless ``array`` is bool, integer or floating."""
    if not (array.dtype == np.bool_ or np.issubdtype(array.dtype, np.number)) or np.issubdtype(
        array.dtype, np.complexfloating
    ):
        raise unplaced(
            TypeError(
                f"{label} must have a bool, integer or floating dtype, got dtype {array.dtype}."
            )
        )


def _source_steps(index: int, source: Any, F_s: int) -> tuple[AnyArray, IntArray]:
    """Return ``(values (N_s, F_s), lengths (B_s,))`` of ``sources[index]``, else raise."""
    label = f"sources[{index}]"
    if isinstance(source, Ragged):
        values = source.values
        if values.ndim == 1 and values.shape[0] == 0:
            values = values.reshape(0, F_s)  # no steps: any width
        if values.ndim != 2 or values.shape[1] != F_s:
            raise unplaced(
                ValueError(
                    f"{label}.values must have shape (N_s, {F_s}) for the {F_s} names "
                    f"in names_per_source[{index}], got {values.shape}."
                )
            )
        _check_dtype(label, values)
        return values, source.lengths
    if isinstance(source, str) or not isinstance(source, Sequence | np.ndarray):
        raise unplaced(
            TypeError(
                f"{label} must be a Ragged or a sequence of (T_i, F_s) arrays, "
                f"got {type(source).__name__}."
            )
        )
    arrays = [_sequence_array(f"{label}[{row}]", seq, F_s) for row, seq in enumerate(source)]
    lengths = np.array([array.shape[0] for array in arrays], dtype=np.int64)
    if not arrays:
        return np.empty((0, F_s)), lengths
    return np.concatenate(arrays, axis=0), lengths


def _sequence_array(label: str, sequence: Any, F_s: int) -> AnyArray:
    """Return one sequence as ``(T_i, F_s)``; an empty list is ``(0, F_s)``."""
    array = np.asarray(sequence)
    if array.ndim == 1 and array.shape[0] == 0:
        array = array.reshape(0, F_s)
    if array.ndim != 2 or array.shape[1] != F_s:
        raise unplaced(
            ValueError(
                f"{label} must have shape (T_i, {F_s}) to match its {F_s} names, got {array.shape}."
            )
        )
    _check_dtype(label, array)
    return array


def _check_fill_value(fill_value: object) -> float:
    """Return ``fill_value`` if it is a real scalar (NaN allowed), else raise ``TypeError``."""
    if isinstance(fill_value, np.generic):
        fill_value = fill_value.item()
    if not isinstance(fill_value, bool | int | float):
        raise unplaced(TypeError(f"fill_value must be a real number, got {fill_value!r}."))
    return fill_value


def align_features(
    sources: Sequence[Ragged | Sequence[Any]],
    names_per_source: Sequence[Sequence[str]],
    *,
    schema: FeatureSchema | Sequence[str] | None = None,
    fill_value: float = 0.0,
    nan_as_missing: bool = False,
    dtype: DTypeLike | None = None,
) -> AlignedFeatures:
    """Place the channels of every source into the columns of one union schema.

    Source ``s`` holds ``B_s`` sequences whose ``F_s`` columns are named by
    ``names_per_source[s]``. The output stacks all sequences of all sources, in source
    order (``B = sum(B_s)``), with ``F = len(schema)`` columns: column ``j`` holds the
    channel ``schema.names[j]`` where the source has it and ``fill_value`` elsewhere.
    Steps are never reordered, padded or dropped; ``B_s = 0``, ``T_i = 0`` and no
    sources at all are allowed.

    With ``nan_as_missing``, NaN entries of present channels also count as missing:
    they become ``fill_value`` and False in ``step_presence`` (``presence``, per
    sequence, still says which channels the source records).

    Args:
        sources: ``S`` sources, each a Ragged with values ``(N_s, F_s)`` or a sequence of
            ``B_s`` array-likes ``(T_i, F_s)`` (an empty list is an empty sequence).
        names_per_source: ``S`` sequences of ``F_s`` unique channel names.
        schema: Column order of the output; every source name must be in it (extra
            schema channels become all-absent columns). Defaults to
            :meth:`FeatureSchema.union` of ``names_per_source``: order of first appearance.
        fill_value: Value of absent entries (for example ``np.nan`` before fitting a
            :class:`~varlen.data.normalize.Standardizer`, which then ignores them).
        nan_as_missing: Treat NaN in present channels as missing (see above).
        dtype: Output dtype; defaults to NumPy's promotion of the sources' dtypes and
            ``fill_value`` (so integer sources with a NaN fill give float64).

    Returns:
        :class:`AlignedFeatures` ``(values, presence, step_presence, source, schema)``.

    Raises:
        TypeError: If an argument has the wrong type, a source has a non-numeric dtype,
            or a name is not a str.
        ValueError: If ``sources`` and ``names_per_source`` differ in length, a source
            repeats a channel name, a source's width differs from its names, or a name
            is not in the given ``schema`` (the message names it).
    """
    where = "align_features"
    with error_context(where):
        names = _check_sources_names(names_per_source)
        if isinstance(sources, str | Ragged) or not isinstance(sources, Sequence):
            raise TypeError(
                f"{where}: sources must be a sequence of sources (Ragged or lists of arrays), "
                f"got {type(sources).__name__}. Wrap a single source in a list."
            )
        if len(sources) != len(names):
            raise ValueError(
                f"{where}: sources must have one entry per names_per_source entry "
                f"({len(names)}), got {len(sources)}."
            )
        fill = _check_fill_value(fill_value)
        target = _resolve_schema(schema, names)
        columns = [target._columns(f"names_per_source[{s}]", n) for s, n in enumerate(names)]
        steps = [_source_steps(s, source, len(names[s])) for s, source in enumerate(sources)]
        out_dtype = np.dtype(dtype) if dtype is not None else _promote(steps, fill)
        return _assemble(
            steps, columns, schema=target, dtype=out_dtype, fill=fill, nan_as_missing=nan_as_missing
        )


def _resolve_schema(
    schema: FeatureSchema | Sequence[str] | None, names: list[tuple[str, ...]]
) -> FeatureSchema:
    """Return the given schema (as a FeatureSchema) or the union of ``names``."""
    if schema is None:
        return _union(names)
    if isinstance(schema, FeatureSchema):
        return schema
    return FeatureSchema(_check_names("schema", schema))


def _promote(steps: list[tuple[AnyArray, IntArray]], fill: float) -> np.dtype[Any]:
    """NumPy's promotion of the sources' dtypes with the (weakly typed) fill value."""
    return np.result_type(*(values.dtype for values, _ in steps), fill)


def _assemble(
    steps: list[tuple[AnyArray, IntArray]],
    columns: list[IntArray],
    *,
    schema: FeatureSchema,
    dtype: np.dtype[Any],
    fill: float,
    nan_as_missing: bool,
) -> AlignedFeatures:
    """Scatter each source's block into the union columns, one vectorized copy per source."""
    lengths = np.concatenate([np.zeros(0, np.int64), *(lengths for _, lengths in steps)])
    offsets = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    N, F = int(offsets[-1]), len(schema)
    values = np.full((N, F), fill, dtype=dtype)  # (N, F)
    present = np.zeros((N, F), dtype=np.bool_)  # (N, F)
    source_presence = np.zeros((len(steps), F), dtype=np.bool_)  # (S, F)
    start = 0
    for s, ((block, _), cols) in enumerate(zip(steps, columns, strict=True)):
        stop = start + block.shape[0]
        values[start:stop, cols] = block
        present[start:stop, cols] = True
        source_presence[s, cols] = True
        start = stop
    if nan_as_missing and np.issubdtype(dtype, np.inexact):
        missing = np.isnan(values) & present  # (N, F) observed-as-NaN entries
        present &= ~missing
        values[missing] = fill
    source = np.repeat(np.arange(len(steps), dtype=np.int64), [len(n) for _, n in steps])
    aligned = Ragged(values, offsets)
    return AlignedFeatures(
        values=aligned,
        presence=source_presence[source],
        step_presence=aligned.with_values(present),
        source=source,
        schema=schema,
    )


def _step_presence(x: Ragged | AnyArray, presence: Any) -> BoolArray:
    """Return ``presence`` as a bool mask with the shape of ``x``'s values, else raise.

    For a Ragged ``x``, an array ``presence`` is per sequence ``(B, F)`` and a Ragged one
    is per step; for a padded ``x (B, T, F)``, ``presence`` is ``(B, F)`` or ``(B, T, F)``.
    """
    if isinstance(x, Ragged):
        if isinstance(presence, Ragged):
            if not np.array_equal(presence.offsets, x.offsets):
                raise unplaced(
                    ValueError(
                        "presence must have the same offsets as values, got "
                        "different lengths. Use the step_presence returned with these values."
                    )
                )
            mask, expected = np.asarray(presence.values), x.values.shape
        else:
            mask, expected = np.asarray(presence), (len(x), x.values.shape[1])
        hint = " Pass per-step presence as a Ragged with the offsets of values."
    else:
        if isinstance(presence, Ragged):
            raise unplaced(
                TypeError(
                    "presence must be an array (B, F) or (B, T, F) for padded values, "
                    "got Ragged. Pad it like the values."
                )
            )
        B, T, F = x.shape
        mask = np.asarray(presence)
        expected, hint = ((B, F) if mask.ndim == 2 else (B, T, F)), ""
    if mask.dtype != np.bool_:
        raise unplaced(TypeError(f"presence must have dtype bool, got dtype {mask.dtype}."))
    if mask.shape != expected:
        raise unplaced(ValueError(f"presence must have shape {expected}, got {mask.shape}.{hint}"))
    if isinstance(x, Ragged) and not isinstance(presence, Ragged):
        return np.repeat(mask, x.lengths, axis=0)  # (N, F)
    if mask.ndim == 2 and not isinstance(x, Ragged):
        return np.broadcast_to(mask[:, None, :], x.shape)  # (B, T, F)
    return mask


def concat_presence(values: _X, presence: Any, *, fill_value: float | None = None) -> _X:
    """Append the presence flags to the features: ``F`` features become ``2F``.

    The output's first ``F`` features are ``values`` (with absent entries replaced by
    ``fill_value`` unless it is None), the last ``F`` are the presence flags as 0/1 in
    the output dtype. One recurrent network can then take series whose feature sets
    differ, and tell a true 0 from a missing channel. Padded steps of a padded ``values``
    are filled like any other entry; pad the result (or mask it) as usual.

    Args:
        values: A Ragged with values ``(N, F)``, or a padded array ``(B, T, F)``.
        presence: Bool, True = observed. Per sequence: an array ``(B, F)``. Per step: a
            Ragged with the offsets of ``values`` (such as ``step_presence`` from
            :func:`align_features`) for Ragged values, or an array ``(B, T, F)`` for
            padded values.
        fill_value: If not None, the value written where ``presence`` is False.

    Returns:
        An object like ``values`` with ``2F`` features. Its dtype is ``values``'s, promoted
        with ``fill_value`` when given (float64 for integer values with a NaN fill).

    Raises:
        TypeError: If ``values`` is not numeric, ``presence`` is not bool (or is a
            Ragged for padded values), or ``fill_value`` is not a real number.
        ValueError: If ``values`` is not ``(N, F)`` / ``(B, T, F)`` or ``presence`` does
            not match it.

    Example:
        >>> x = Ragged(np.array([[1.0, 9.0], [2.0, 9.0], [3.0, 4.0]]), np.array([0, 2, 3]))
        >>> presence = np.array([[True, False], [True, True]])  # (B, F)
        >>> concat_presence(x, presence, fill_value=0.0).values  # (N, 2F)
        array([[1., 0., 1., 0.],
               [2., 0., 1., 0.],
               [3., 4., 1., 1.]])
    """
    where = "concat_presence"
    with error_context(where):
        array = values.values if isinstance(values, Ragged) else np.asarray(values)
        _check_dtype("values", array)
        expected = 2 if isinstance(values, Ragged) else 3
        if array.ndim != expected:
            layout = "(N, F)" if expected == 2 else "(B, T, F)"
            raise ValueError(
                f"{where}: values must have shape {layout}, got {array.shape}. "
                "Add a feature axis with x[..., None]."
            )
        mask = _step_presence(values if isinstance(values, Ragged) else array, presence)
        dtype = array.dtype
        if fill_value is not None:
            fill = _check_fill_value(fill_value)
            dtype = np.result_type(dtype, fill)
            array = np.where(mask, array, np.asarray(fill, dtype=dtype))
        out = np.concatenate([array.astype(dtype, copy=False), mask.astype(dtype)], axis=-1)
        if isinstance(values, Ragged):
            return cast(_X, values.with_values(out))
        return cast(_X, out)
