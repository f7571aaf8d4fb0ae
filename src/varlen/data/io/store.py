"""An on-disk ragged store: one Arrow IPC file (Feather v2), memory-mapped.

Data larger than memory lives in a *store*: a standard Arrow IPC file that pandas
(``pd.read_feather``), polars (``pl.read_ipc``), pyarrow and DuckDB (through pyarrow) read
as a table with one row per sequence. Its columns:

- ``x``: ``large_list<fixed_size_list<float, F>>``, the steps of each sequence. Arrow's list
  arrays *are* values + offsets, so every record batch of the file is a
  :class:`~varlen.data.ragged.Ragged` as it lies on disk: ``values (N_c, F)`` and
  ``offsets (B_c + 1,)``.
- ``id``: the id of each sequence (integers or strings).
- ``y``: its target (numbers or class labels), when the source had one; or, in a store of
  *per-step* targets, ``large_list<int64 or double>`` holding one target per step beside the
  steps (the same offsets as ``x``; NaN: a step without a target).

The schema's metadata (key ``varlen``) holds a JSON object: ``format`` (``"varlen.store"``),
``version`` (:data:`STORE_VERSION`; later varlens read every earlier version), ``targets``
(``"sequence"``, ``"step"`` or ``null``), the feature names, the source's column names and, if
one was given when writing, a fitted :class:`~varlen.data.normalize.Standardizer`'s state.
A store with per-step targets is version 2; the others are written as version 1, the format
they had before per-step targets existed, so every varlen that reads stores reads them.

:func:`open_store` maps the file and reads only its schema, its record batch headers and the
offsets; steps are read when used. :class:`StoredRagged` serves sequences from the map: a
run of rows inside one record batch is a zero-copy view, any other selection is gathered in
one copy. Pages read from the map are dropped from the process (``madvise``) every
``release_every`` bytes, so reading the whole store keeps the resident memory bounded;
they stay in the operating system's page cache, so nothing is read twice from disk if memory
allows.

:func:`write_store` writes one from memory or from an iterator of :class:`StoreChunk`
(streaming, in bounded memory) atomically through :mod:`varlen._atomic`.
:func:`~varlen.data.io.convert.convert` fills one from ``.ts``, CSV and Parquet files.

NumPy only here; pyarrow is imported inside the functions (``pip install "varlen[table]"``).
"""

from __future__ import annotations

import importlib
import json
import mmap
import os
import sys
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, overload

import numpy as np
from numpy.typing import DTypeLike

from varlen._atomic import atomic_open
from varlen._checks import error_context, unplaced
from varlen._types import AnyArray, IntArray
from varlen.data.normalize import Standardizer
from varlen.data.ragged import Ragged, checked_rows

__all__ = [
    "STORE_FORMAT",
    "STORE_VERSION",
    "Store",
    "StoreChunk",
    "StoreSummary",
    "StoredRagged",
    "fit_standardizer",
    "open_store",
    "plan_blocks",
    "write_store",
]

STORE_FORMAT = "varlen.store"
"""The ``format`` value in a store's metadata."""
STORE_VERSION = 2
"""The newest store format version (2: per-step targets); this varlen reads every version."""

_KEY = b"varlen"
_DTYPES = ("float32", "float64")
_CHUNK_BYTES = 64 << 20
_RELEASE_EVERY = 256 << 20


def _require_pyarrow() -> Any:
    """Import pyarrow once up front, to fail with an install hint when it is missing."""
    try:
        return importlib.import_module("pyarrow")
    except ImportError:
        raise unplaced(
            ImportError('needs pyarrow. Install it with: pip install "varlen[table]".')
        ) from None


# ---------------------------------------------------------------------------- writing


class StoreChunk(NamedTuple):
    """Consecutive sequences to append to a store.

    Attributes:
        x: ``B_c`` sequences with values ``(N_c, F)``.
        ids: ``(B_c,)`` their ids (integers or strings).
        y: ``(B_c,)`` their targets (numbers or strings); or per-step targets, a ``Ragged``
            with the lengths of ``x`` and values ``(N_c,)`` (int or float numbers, NaN: no
            target); or ``None`` in a store without.
    """

    x: Ragged
    ids: AnyArray
    y: AnyArray | Ragged | None


@dataclass(frozen=True)
class _Layout:
    """What every chunk must agree on, fixed by the first one."""

    features: tuple[str, ...]
    dtype: np.dtype[Any]
    id_type: Any  # a pyarrow DataType
    y_type: Any  # a pyarrow DataType or None (of each step's target when per_step)
    metadata: bytes
    per_step: bool = False


def _arrow_type(pa: Any, array: AnyArray) -> Any:
    """The Arrow type that holds a NumPy column: int64, float64, bool or string."""
    kind = array.dtype.kind
    if kind in "iu":
        return pa.int64()
    if kind == "f":
        return pa.float64()
    if kind == "b":
        return pa.bool_()
    return pa.string()


def _metadata(
    features: tuple[str, ...],
    standardizer: Standardizer | None,
    columns: Mapping[str, Any],
    targets: str | None,
) -> bytes:
    record = {
        "format": STORE_FORMAT,
        "version": STORE_VERSION if targets == "step" else 1,
        "targets": targets,
        "features": list(features),
        "columns": dict(columns),
        "standardizer": None if standardizer is None else standardizer.state_dict(),
    }
    return json.dumps(record, allow_nan=False, sort_keys=True).encode()


def _check_chunk(index: int, chunk: object, layout: _Layout | None) -> StoreChunk:
    """Return ``chunk`` checked against the first chunk's layout, else raise."""
    if not isinstance(chunk, StoreChunk) or not isinstance(chunk.x, Ragged):
        raise unplaced(
            TypeError(
                f"chunks[{index}] must be a StoreChunk(x=Ragged, ids, y), "
                f"got {type(chunk).__name__}."
            )
        )
    B = len(chunk.x)
    if chunk.x.values.ndim != 2:
        raise unplaced(
            ValueError(
                f"chunks[{index}].x must have values (N, F), got shape "
                f"{chunk.x.values.shape}. Reshape scalar steps to (N, 1)."
            )
        )
    ids = np.asarray(chunk.ids)
    if ids.shape != (B,):
        raise unplaced(
            ValueError(f"chunks[{index}].ids must have shape (B,) = ({B},), got {ids.shape}.")
        )
    y: AnyArray | Ragged | None = None
    if isinstance(chunk.y, Ragged):
        y = _check_step_targets(index, chunk.x, chunk.y)
    elif chunk.y is not None:
        y = np.asarray(chunk.y)
        if y.shape != (B,):
            raise unplaced(
                ValueError(f"chunks[{index}].y must have shape (B,) = ({B},), got {y.shape}.")
            )
    if layout is not None:
        _check_like_first(index, chunk.x, y, layout)
    return StoreChunk(chunk.x, ids, y)


def _check_like_first(index: int, x: Ragged, y: AnyArray | Ragged | None, layout: _Layout) -> None:
    """Refuse a chunk whose features or targets differ in kind from the first chunk's."""
    F = len(layout.features)
    if x.values.shape[1] != F:
        raise unplaced(
            ValueError(
                f"chunks[{index}].x must have F = {F} features like chunks[0], "
                f"got {x.values.shape[1]}."
            )
        )
    if (y is None) != (layout.y_type is None):
        raise unplaced(
            ValueError(
                f"chunks[{index}].y must be given in every chunk or in none, like chunks[0]."
            )
        )
    if isinstance(y, Ragged) != layout.per_step:
        kind = "per-step (a Ragged)" if layout.per_step else "per-sequence (B,)"
        raise unplaced(ValueError(f"chunks[{index}].y must hold {kind} targets like chunks[0]."))


def _check_step_targets(index: int, x: Ragged, y: Ragged) -> Ragged:
    """Per-step targets: one number per step of ``x``, values ``(N_c,)`` int64 or float64."""
    differ = np.flatnonzero(y.lengths != x.lengths) if len(y) == len(x) else np.zeros(1)
    if differ.size:
        raise unplaced(
            ValueError(
                f"chunks[{index}].y must hold one target per step of x (the same lengths), "
                f"got {len(y)} sequences with lengths {y.lengths[:5].tolist()}... for x's "
                f"{x.lengths[:5].tolist()}..."
            )
        )
    if y.trailing_shape != () or y.dtype.kind not in "iuf":
        raise unplaced(
            ValueError(
                f"chunks[{index}].y must hold one number per step (values (N,) of ints or "
                f"floats), got dtype {y.dtype} and step shape {y.trailing_shape}. Encode "
                "class labels as integers."
            )
        )
    dtype = np.int64 if y.dtype.kind in "iu" else np.float64
    return y.with_values(np.asarray(y.values, dtype=dtype))


def _layout(
    first: StoreChunk,
    *,
    features: Sequence[str] | None,
    dtype: DTypeLike | None,
    standardizer: Standardizer | None,
    columns: Mapping[str, Any],
) -> _Layout:
    pa = _require_pyarrow()
    F = first.x.values.shape[1]
    names = tuple(f"f{i}" for i in range(F)) if features is None else tuple(features)
    if len(names) != F or len(set(names)) != F:
        raise unplaced(ValueError(f"features must be F = {F} distinct names, got {list(names)!r}."))
    chosen = np.dtype(np.float64 if first.x.dtype.kind != "f" else first.x.dtype)
    if dtype is not None:
        chosen = np.dtype(dtype)
    if chosen.name not in _DTYPES:
        raise unplaced(ValueError(f"dtype must be float32 or float64, got {chosen.name!r}."))
    if standardizer is not None and standardizer.num_features != F:
        raise unplaced(
            ValueError(f"standardizer must have F = {F} features, got {standardizer.num_features}.")
        )
    per_step = isinstance(first.y, Ragged)
    y_values = first.y.values if isinstance(first.y, Ragged) else first.y
    y_type = None if y_values is None else _arrow_type(pa, np.asarray(y_values))
    targets = None if first.y is None else "step" if per_step else "sequence"
    return _Layout(
        names,
        chosen,
        _arrow_type(pa, first.ids),
        y_type,
        _metadata(names, standardizer, columns, targets),
        per_step,
    )


def _schema(pa: Any, layout: _Layout) -> Any:
    F = len(layout.features)
    step = pa.list_(pa.field("feature", pa.from_numpy_dtype(layout.dtype)), F)
    fields = [pa.field("id", layout.id_type), pa.field("x", pa.large_list(step))]
    if layout.y_type is not None and layout.per_step:
        fields.append(pa.field("y", pa.large_list(pa.field("target", layout.y_type))))
    elif layout.y_type is not None:
        fields.append(pa.field("y", layout.y_type))
    return pa.schema(fields, metadata={_KEY: layout.metadata})


def _record_batch(pa: Any, schema: Any, parts: list[StoreChunk], layout: _Layout) -> Any:
    """Join buffered chunks into one record batch (one copy of their steps)."""
    x = parts[0].x if len(parts) == 1 else Ragged.concatenate([part.x for part in parts])
    values = np.ascontiguousarray(x.values, dtype=layout.dtype).reshape(-1)  # (N * F,)
    steps = pa.FixedSizeListArray.from_arrays(pa.array(values), len(layout.features))
    sequences = pa.LargeListArray.from_arrays(pa.array(x.offsets), steps)
    ids = np.concatenate([part.ids for part in parts])
    columns = [pa.array(ids, type=layout.id_type), sequences]
    if layout.y_type is not None and layout.per_step:
        targets = [part.y for part in parts if isinstance(part.y, Ragged)]
        y_steps = targets[0] if len(targets) == 1 else Ragged.concatenate(targets)
        y_values = pa.array(np.asarray(y_steps.values), type=layout.y_type)
        columns.append(pa.LargeListArray.from_arrays(pa.array(y_steps.offsets), y_values))
    elif layout.y_type is not None:
        y = np.concatenate([np.asarray(part.y) for part in parts])
        columns.append(pa.array(y, type=layout.y_type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


class StoreSummary(NamedTuple):
    """What :func:`write_store` wrote: ``B`` sequences, ``N`` steps, record batches, bytes."""

    path: Path
    num_sequences: int
    num_steps: int
    num_batches: int
    nbytes: int


def write_store(
    path: str | os.PathLike[str],
    data: Ragged | Iterable[StoreChunk],
    *,
    ids: Any = None,
    y: Any = None,
    features: Sequence[str] | None = None,
    dtype: DTypeLike | None = None,
    standardizer: Standardizer | None = None,
    columns: Mapping[str, Any] | None = None,
    chunk_bytes: int = _CHUNK_BYTES,
) -> StoreSummary:
    """Write sequences to a store file, atomically (the old file or a complete new one).

    ``data`` is either a whole ``Ragged`` (with ``ids`` and ``y`` beside it), or an
    iterable of :class:`StoreChunk` consumed one at a time: memory then holds about
    ``chunk_bytes`` of steps, however large the data. If the iterable raises, the error
    passes through and nothing is left on disk.

    Args:
        path: The store file (conventionally ``.arrow``); its folder must exist.
        data: ``B`` sequences with values ``(N, F)``, or an iterable of chunks.
        ids: ``(B,)`` ids for a ``Ragged`` (default ``0..B-1``); unused with chunks.
        y: ``(B,)`` targets for a ``Ragged``, or ``None``; unused with chunks.
        features: The ``F`` feature names (default ``f0, f1, ...``).
        dtype: ``float32`` or ``float64`` for the steps (default: the data's float dtype,
            float64 for others).
        standardizer: A fitted standardizer to keep in the metadata, or ``None``.
        columns: Names of the source's columns to record (``id``, ``order``, ``target``).
        chunk_bytes: Steps per record batch, in bytes (a tuning knob: larger batches make
            fewer, larger zero-copy views; memory holds about one while writing).

    Returns:
        A :class:`StoreSummary`.

    Raises:
        ImportError: If pyarrow is not installed.
        TypeError: If a chunk is not a :class:`StoreChunk`.
        ValueError: If shapes disagree, features are not ``F`` distinct names, or
            ``dtype`` is not float32/float64.
        varlen._atomic.AtomicWriteError: If the file cannot be written (disk full, say).

    Example:
        >>> import tempfile
        >>> x = Ragged.from_sequences([np.ones((3, 2)), np.zeros((1, 2))])
        >>> path = Path(tempfile.mkdtemp()) / "data.arrow"
        >>> write_store(path, x, y=np.array(["a", "b"])).num_steps
        4
        >>> open_store(path).x.lengths
        array([3, 1])
    """
    with error_context("write_store"):
        pa = _require_pyarrow()
        if chunk_bytes < 1:
            raise unplaced(ValueError(f"chunk_bytes must be >= 1, got {chunk_bytes}."))
        chunks: Iterable[StoreChunk]
        if isinstance(data, Ragged):
            default_ids = np.arange(len(data), dtype=np.int64)
            chunks = [StoreChunk(data, default_ids if ids is None else np.asarray(ids), y)]
        else:
            chunks = data
        options = {"features": features, "dtype": dtype, "standardizer": standardizer}
        return _write(pa, Path(path), iter(chunks), dict(columns or {}), options, chunk_bytes)


def _write(
    pa: Any,
    path: Path,
    chunks: Iterator[StoreChunk],
    columns: dict[str, Any],
    options: dict[str, Any],
    chunk_bytes: int,
) -> StoreSummary:
    first = next(chunks, None)
    if first is None:
        raise unplaced(ValueError("data must hold at least one chunk, got none."))
    first = _check_chunk(0, first, None)
    layout = _layout(first, columns=columns, **options)
    schema = _schema(pa, layout)
    B = N = batches = 0
    step_bytes = layout.dtype.itemsize * max(len(layout.features), 1)
    with atomic_open(path, "wb") as file:
        writer = pa.ipc.new_file(file, schema)
        parts: list[StoreChunk] = []
        held = 0
        for index, chunk in enumerate(_chained(first, chunks)):
            checked = first if index == 0 else _check_chunk(index, chunk, layout)
            parts.append(checked)
            held += checked.x.num_steps * step_bytes
            B, N = B + len(checked.x), N + checked.x.num_steps
            if held >= chunk_bytes:
                writer.write_batch(_record_batch(pa, schema, parts, layout))
                parts, held, batches = [], 0, batches + 1
        if parts:
            writer.write_batch(_record_batch(pa, schema, parts, layout))
            batches += 1
        writer.close()
    return StoreSummary(path, B, N, batches, path.stat().st_size)


def _chained(first: StoreChunk, rest: Iterator[StoreChunk]) -> Iterator[StoreChunk]:
    yield first
    yield from rest


# ---------------------------------------------------------------------------- reading


class _Mapped:
    """The memory map of one store file and the record batches' zero-copy views.

    Holds the mapping for as long as any view lives, and a descriptor of the file: gathers
    read their rows with ``pread`` (from the page cache, like the map, but without mapping
    the pages into the process: a fault maps a whole large folio, up to 2 MiB, which would
    let a pass of random batches make the whole file resident). Counts the bytes served as
    views and drops the mapped pages from the process every ``release_every`` bytes.
    """

    def __init__(self, path: Path, release_every: int | None) -> None:
        self.path = path
        self.release_every = release_every
        self.read = 0
        self.map, self.reader = _map_file(path)
        self.schema = self.reader.schema
        self.batches = [self.reader.get_batch(i) for i in range(self.reader.num_record_batches)]
        self.descriptor = os.open(path, os.O_RDONLY)  # for pread; closed with this object
        weakref.finalize(self, os.close, self.descriptor)
        self.address = np.frombuffer(self.map, dtype=np.uint8).ctypes.data
        # per column (x, and y when per step): byte offset of each record batch's values, or -1
        self.positions: dict[str, list[int]] = {}

    def locate(self, values: AnyArray) -> int:
        """The byte offset in the file of a view of the map, or -1 if it is not one."""
        position = values.ctypes.data - self.address
        return position if 0 <= position <= len(self.map) - values.nbytes else -1

    def count(self, nbytes: int) -> None:
        """Record ``nbytes`` served from the map; release its pages when due."""
        if self.release_every is None:
            return
        self.read += nbytes
        if self.read >= self.release_every:
            self.release()

    def release(self) -> None:
        """Drop the mapped pages from this process (they stay in the page cache)."""
        self.read = 0
        if hasattr(mmap, "MADV_DONTNEED") and sys.platform.startswith("linux"):
            self.map.madvise(mmap.MADV_DONTNEED)


def _map_file(path: Path) -> tuple[mmap.mmap, Any]:
    pa = _require_pyarrow()
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size == 0:
            raise unplaced(
                ValueError(f"{os.fspath(path)!r} must be a varlen store, got an empty file.")
            )
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        reader = pa.ipc.open_file(pa.py_buffer(mapped))
    except (pa.ArrowInvalid, pa.ArrowException) as error:
        message = " ".join(str(error).split())[:200]
        raise unplaced(
            ValueError(
                f"{os.fspath(path)!r} must be a varlen store (an Arrow IPC file written by "
                f"varlen convert or write_store), got a file Arrow cannot read: {message}"
            )
        ) from None
    return mapped, reader


def _read_metadata(path: Path, schema: Any) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(_KEY)
    try:
        record = json.loads(raw) if raw is not None else None
    except ValueError:
        record = None
    if not isinstance(record, dict) or record.get("format") != STORE_FORMAT:
        raise unplaced(
            ValueError(
                f"{os.fspath(path)!r} must be a varlen store, got an Arrow file without "
                "varlen's metadata. Write it with varlen convert or write_store."
            )
        )
    version = record.get("version")
    if not isinstance(version, int) or not 1 <= version <= STORE_VERSION:
        raise unplaced(
            ValueError(
                f"{os.fspath(path)!r} has store version {version!r}; this varlen reads "
                f"versions 1 to {STORE_VERSION}. Upgrade varlen to read it."
            )
        )
    return record


def _target_kind(path: Path, schema: Any, record: Mapping[str, Any]) -> str | None:
    """``"sequence"``, ``"step"`` or ``None``: what the ``y`` column holds (checked)."""
    pa = _require_pyarrow()
    has_y = "y" in schema.names
    kind = record.get("targets", "sequence" if has_y else None)
    if kind not in ("sequence", "step", None) or (kind is None) == has_y:
        raise ValueError(
            f"open_store: {os.fspath(path)!r} must say targets 'sequence', 'step' or null in its "
            f"metadata, matching its columns, got {kind!r} with columns {schema.names}."
        )
    if kind == "step":
        y_type = schema.field("y").type
        ok = pa.types.is_large_list(y_type) and (
            pa.types.is_int64(y_type.value_type) or pa.types.is_float64(y_type.value_type)
        )
        if not ok:
            raise ValueError(
                f"open_store: {os.fspath(path)!r} must hold per-step targets as "
                f"large_list<int64 or double>, got {y_type}."
            )
    return str(kind) if kind is not None else None


def _check_schema(path: Path, schema: Any, features: tuple[str, ...]) -> np.dtype[Any]:
    """Return the steps' dtype, checking the ``x`` column's type, else raise."""
    pa = _require_pyarrow()
    kind: Any = schema.field("x").type if "x" in schema.names else None
    step: Any = kind.value_type if kind is not None and pa.types.is_large_list(kind) else None
    ok = step is not None and pa.types.is_fixed_size_list(step)
    if not ok or step.list_size != len(features) or "id" not in schema.names:
        raise ValueError(
            f"open_store: {os.fspath(path)!r} must have columns id and x: "
            f"large_list<fixed_size_list<float, {len(features)}>>, got schema {schema}."
        )
    dtype: np.dtype[Any] = np.dtype(step.value_type.to_pandas_dtype())
    if dtype.name not in _DTYPES:
        raise ValueError(f"open_store: {os.fspath(path)!r} must hold float steps, got {dtype}.")
    return dtype


def _chunk_view(batch: Any, F: int, dtype: np.dtype[Any]) -> Ragged:
    """The ``x`` column of one record batch as a zero-copy ``Ragged`` ``(N_c, F)``.

    Read from the column's buffers: pyarrow's ``offsets`` accessor reads far more of the map
    than the offsets (tens of MB for a 64 MB record batch), which opening must not.
    """
    column = batch.column("x")
    steps = column.values  # the fixed-size lists, one per step
    buffers = column.buffers()  # list validity, offsets, step validity, value validity, values
    if any(buffer is not None for buffer in buffers[0:4:2]) or column.null_count:
        raise ValueError("open_store: the x column must have no null sequence or step.")
    B = len(column)
    offsets = np.frombuffer(buffers[1], dtype=np.int64, count=B + 1, offset=8 * column.offset)
    flat = np.frombuffer(buffers[4], dtype=dtype)
    start = steps.offset * F + steps.values.offset  # first value of step 0 of the column
    first, last = (int(offsets[0]), int(offsets[-1])) if B else (0, 0)
    values = flat[start + first * F : start + last * F].reshape(-1, F)  # (N_c, F)
    return Ragged.view(values, offsets - first)


def _targets_view(batch: Any, x: Ragged) -> Ragged:
    """The per-step ``y`` column of one record batch as a zero-copy ``Ragged`` ``(N_c,)``."""
    column = batch.column("y")
    targets = column.values  # one number per step
    buffers = column.buffers()  # list validity, offsets, value validity, values
    if buffers[0] is not None or buffers[2] is not None or column.null_count:
        raise ValueError("open_store: the y column must have no null sequence or target.")
    B = len(column)
    offsets = np.frombuffer(buffers[1], dtype=np.int64, count=B + 1, offset=8 * column.offset)
    first, last = (int(offsets[0]), int(offsets[-1])) if B else (0, 0)
    if not np.array_equal(offsets - first, x.offsets):
        raise ValueError("open_store: the y column must have the offsets of the x column.")
    dtype = np.dtype(np.int64 if targets.type.equals(_require_pyarrow().int64()) else np.float64)
    flat = np.frombuffer(buffers[3], dtype=dtype)
    start = targets.offset
    return Ragged.view(flat[start + first : start + last], offsets - first)


@dataclass(frozen=True, eq=False)
class StoredRagged:
    """``B`` sequences ``(T_i, F)`` served from a store's memory map.

    It answers like a :class:`~varlen.data.ragged.Ragged` (``len``, ``lengths``,
    ``x[i]``, ``x[rows]``), so :class:`~varlen.batching.RaggedDataset`, the samplers and
    ``varlen.training.fit`` take it as they take a ``Ragged``; memory then holds only the
    batches in use. ``x[i]`` and a run of rows inside one record batch are zero-copy views
    of the map; any other selection is gathered in one copy. A ``transform`` (applied to
    every ``Ragged`` read, e.g. standardization and a cast to float32) makes the views
    copies. Pickling (e.g. to ``spawn`` ``DataLoader`` workers) sends the path, not the
    data: the other process maps the file again.

    Build it with :func:`open_store` (``store.x``, or ``store.step_targets``: per-step
    targets ``(T_i,)`` served the same way), then :meth:`select` rows and
    :meth:`with_transform` as needed.
    """

    _source: _Mapped
    _chunks: tuple[Ragged, ...]
    _chunk_rows: IntArray  # (C + 1,) first row of each record batch, then B
    _num_features: int
    _dtype: np.dtype[Any]
    _rows: IntArray | None = None  # (B',) selected physical rows, or None for all
    transform: Callable[[Ragged], Ragged] | None = None
    _column: str = "x"  # "x": steps (T_i, F); "y": per-step targets (T_i,)
    _lengths: IntArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        full = (
            np.concatenate([chunk.lengths for chunk in self._chunks])
            if self._chunks
            else np.zeros(0, dtype=np.int64)
        )
        lengths = full if self._rows is None else full[self._rows]
        lengths.flags.writeable = False
        object.__setattr__(self, "_lengths", lengths)

    def __reduce__(self) -> tuple[Any, ...]:
        source = self._source
        reopen = (source.path, source.release_every, self._rows, self.transform, self._column)
        return (_reopen, reopen)

    # ------------------------------------------------------------------ properties

    @property
    def path(self) -> Path:
        """The store file."""
        return self._source.path

    @property
    def lengths(self) -> IntArray:
        """``(B,)`` int64 sequence lengths ``T_i`` (a new, writable array)."""
        return self._lengths.copy()

    @property
    def num_steps(self) -> int:
        """Total number of steps ``N = sum(T_i)``."""
        return int(self._lengths.sum())

    @property
    def num_features(self) -> int:
        """Number of features ``F`` (before any transform)."""
        return self._num_features

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of the stored steps (before any transform)."""
        return self._dtype

    @property
    def nbytes(self) -> int:
        """Bytes of the selected steps on disk."""
        return self.num_steps * self.num_features * self.dtype.itemsize

    def __len__(self) -> int:
        return int(self._lengths.shape[0])

    def __repr__(self) -> str:
        transform = "" if self.transform is None else ", transformed"
        return (
            f"StoredRagged(B={len(self)}, N={self.num_steps}, F={self.num_features}, "
            f"dtype={self.dtype}{transform}, path={os.fspath(self.path)!r})"
        )

    # -------------------------------------------------------------------- views

    def select(self, rows: Any) -> StoredRagged:
        """Return the sequences ``rows`` (any order, repeats allowed), still on disk.

        Args:
            rows: ``(B',)`` integer rows in ``[-B, B)`` or a ``(B,)`` bool array.

        Returns:
            A ``StoredRagged`` of ``B'`` sequences with the same transform.

        Raises:
            TypeError: If ``rows`` is not an integer or bool array.
            IndexError: If a row is out of range.
        """
        with error_context("StoredRagged.select"):
            chosen = _check_index(rows, len(self))
        physical = chosen if self._rows is None else self._rows[chosen]
        return replace(self, _rows=physical)

    def with_transform(self, transform: Callable[[Ragged], Ragged] | None) -> StoredRagged:
        """Return the same sequences, read through ``transform``.

        Args:
            transform: Maps every ``Ragged`` read to the one served, keeping its offsets
                (e.g. ``standardizer.transform``); ``None`` serves the steps as stored.
                For ``spawn`` workers it must pickle (a module-level function, a bound
                method, a ``functools.partial``).

        Returns:
            A new ``StoredRagged``.
        """
        return replace(self, transform=transform)

    @overload
    def __getitem__(self, index: int | np.integer[Any]) -> AnyArray: ...
    @overload
    def __getitem__(self, index: slice | Sequence[int] | AnyArray) -> Ragged: ...
    def __getitem__(self, index: Any) -> AnyArray | Ragged:
        """Return sequence ``index`` ``(T_i, F)``, or a ``Ragged`` of the selected rows.

        An int gives one sequence (a read-only view of the map without a transform). A
        slice, an integer array or a bool array gives a ``Ragged``: a view when the rows
        are one run inside one record batch, else one gathered copy.
        """
        B = len(self)
        if isinstance(index, int | np.integer) and not isinstance(index, bool | np.bool_):
            if not -B <= index < B:
                raise IndexError(
                    f"StoredRagged: index must be in [-B, B) = [{-B}, {B}), got {index}."
                )
            return self._read(np.array([int(index) % B], dtype=np.int64))[0]
        if isinstance(index, slice):
            rows = np.arange(*index.indices(B), dtype=np.int64)
        else:
            with error_context("StoredRagged"):
                rows = _check_index(index, B)
        return self._read(rows)

    def _read(self, rows: IntArray) -> Ragged:
        physical = rows if self._rows is None else self._rows[rows]
        out = _run_view(self._chunks, self._chunk_rows, physical)
        if out is None:
            out = _gather(
                self._chunks,
                self._chunk_rows,
                physical,
                like=self._empty(),
                source=self._source,
                positions=self._source.positions[self._column],
            )
        else:
            self._source.count(out.nbytes)
        return out if self.transform is None else self.transform(out)

    def _empty(self) -> AnyArray:
        shape = (0,) if self._column == "y" else (0, self._num_features)
        return np.empty(shape, dtype=self._dtype)

    def blocks(self, *, block_steps: int = 1 << 20) -> Iterator[tuple[IntArray, Ragged]]:
        """Yield ``(rows, sequences)`` over every row in order, about ``block_steps`` at a time.

        The blocks come from :func:`plan_blocks` on the lengths alone, so they are the
        same however the store is split into record batches.

        Args:
            block_steps: Steps per block (a tuning knob; a longer sequence is a block alone).

        Yields:
            ``rows (B_b,)`` int64 and their ``Ragged`` (transformed).
        """
        for start, stop in plan_blocks(self._lengths, block_steps):
            rows = np.arange(start, stop, dtype=np.int64)
            yield rows, self._read(rows)

    def to_ragged(self) -> Ragged:
        """Return every selected sequence in memory, as one ``Ragged`` (transformed)."""
        return self._read(np.arange(len(self), dtype=np.int64))

    def release(self) -> None:
        """Drop the pages read so far from this process's memory (see the module docstring)."""
        self._source.release()


def _reopen(
    path: Path,
    release_every: int | None,
    rows: IntArray | None,
    transform: Callable[[Ragged], Ragged] | None,
    column: str = "x",
) -> StoredRagged:
    store = open_store(path, release_every=release_every)
    x = store.x if column == "x" else store.step_targets
    if x is None:
        raise RuntimeError(f"varlen bug: {os.fspath(path)!r} lost its per-step targets.")
    x = x if rows is None else x.select(rows)
    return x.with_transform(transform)


def _check_index(index: Any, B: int) -> IntArray:
    array = np.asarray(index)
    if array.size == 0 and array.dtype.kind == "f":
        array = array.astype(np.int64)  # [] selects nothing
    return checked_rows(array, index, B)


def _run_view(chunks: tuple[Ragged, ...], chunk_rows: IntArray, rows: IntArray) -> Ragged | None:
    """Rows ``a, a + 1, ..., b - 1`` inside one record batch, as a view; else ``None``."""
    if rows.size == 0:
        return None
    first = int(rows[0])
    if rows.size > 1 and not (np.diff(rows) == 1).all():
        return None
    chunk = int(np.searchsorted(chunk_rows, first, side="right")) - 1
    stop = first + rows.size
    if stop > int(chunk_rows[chunk + 1]):
        return None
    start = first - int(chunk_rows[chunk])
    return chunks[chunk][start : start + rows.size]


def _gather(
    chunks: tuple[Ragged, ...],
    chunk_rows: IntArray,
    rows: IntArray,
    *,
    like: AnyArray,
    source: _Mapped,
    positions: list[int],
) -> Ragged:
    """Rows ``rows`` (in range, any order) copied out of the record batches in one pass.

    ``like`` is an empty ``(0, *F)`` array of the steps' dtype; ``positions`` the byte
    offset in the file of each record batch's values (-1: not in the map). Each row is one
    ``pread`` straight into the output where the platform has it, else a ``take`` from the map.
    """
    trailing, dtype = like.shape[1:], like.dtype
    which = np.searchsorted(chunk_rows, rows, side="right") - 1  # (B',) record batch of each
    local = rows - chunk_rows[which] if rows.size else rows
    starts = np.zeros(rows.shape[0], dtype=np.int64)
    lengths = np.zeros(rows.shape[0], dtype=np.int64)
    for chunk in np.unique(which).tolist():
        pick = which == chunk
        offsets = chunks[chunk].offsets
        starts[pick] = offsets[local[pick]]
        lengths[pick] = offsets[local[pick] + 1] - offsets[local[pick]]
    out_offsets = np.zeros(rows.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_offsets[1:])
    values = np.empty((int(out_offsets[-1]), *trailing), dtype=dtype)  # (N', *F)
    at = np.array(positions, dtype=np.int64)[which] if rows.size else starts
    if hasattr(os, "preadv") and (at >= 0).all():
        _pread_rows(source.descriptor, values, at, starts, lengths, out_offsets)
        return Ragged.view(values, out_offsets)
    step = np.arange(out_offsets[-1], dtype=np.int64) - np.repeat(out_offsets[:-1], lengths)
    owner = np.repeat(np.arange(rows.shape[0]), lengths)  # (N',) output row of each step
    step_chunk = which[owner]
    for chunk in np.unique(which).tolist():
        at = np.flatnonzero(step_chunk == chunk)
        values[at] = np.take(chunks[chunk].values, starts[owner[at]] + step[at], axis=0)
    source.count(values.nbytes)
    return Ragged.view(values, out_offsets)


def _pread_rows(
    descriptor: int,
    out: AnyArray,
    positions: IntArray,
    starts: IntArray,
    lengths: IntArray,
    out_offsets: IntArray,
) -> None:
    """Read each row straight into ``out``, one ``pread`` per row.

    Row ``i`` is ``lengths[i]`` steps from step ``starts[i]`` of a record batch whose steps
    begin at byte ``positions[i]`` of the file; it goes to ``out[out_offsets[i]:]``.
    """
    step_bytes = out.dtype.itemsize * int(np.prod(out.shape[1:], dtype=np.int64))
    view = memoryview(out.reshape(-1).view(np.uint8).data)
    plan = zip(
        (positions + starts * step_bytes).tolist(),
        (out_offsets[:-1] * step_bytes).tolist(),
        (lengths * step_bytes).tolist(),
        strict=True,
    )
    for source, target, size in plan:
        if size and os.preadv(descriptor, [view[target : target + size]], source) != size:
            raise RuntimeError("varlen bug: a store read came back short; was the file changed?")


def plan_blocks(lengths: Any, block_steps: int) -> list[tuple[int, int]]:
    """Split rows ``0..B-1`` into consecutive blocks of about ``block_steps`` steps.

    A pure planning function: a block closes once it holds ``block_steps`` steps or more,
    so a sequence longer than that is a block alone and no block is empty.

    Args:
        lengths: ``(B,)`` sequence lengths.
        block_steps: Steps per block, ``>= 1``.

    Returns:
        ``(start, stop)`` row ranges covering ``0..B-1`` in order.

    Raises:
        ValueError: If ``block_steps < 1``.

    Example:
        >>> plan_blocks([3, 1, 4, 1, 5], 4)
        [(0, 2), (2, 3), (3, 5)]
    """
    if block_steps < 1:
        raise ValueError(f"plan_blocks: block_steps must be >= 1, got {block_steps}.")
    ends = np.cumsum(np.asarray(lengths, dtype=np.int64))
    blocks: list[tuple[int, int]] = []
    start, base = 0, 0
    B = ends.shape[0]
    while start < B:
        stop = int(np.searchsorted(ends, base + block_steps, side="left")) + 1
        stop = min(max(stop, start + 1), B)
        blocks.append((start, stop))
        base, start = int(ends[stop - 1]), stop
    return blocks


def fit_standardizer(
    x: Ragged | StoredRagged, *, rows: Any = None, block_steps: int = 1 << 20
) -> Standardizer:
    """Fit a :class:`Standardizer` on the real steps of ``x`` in one streaming pass.

    The rows are read in blocks planned from the lengths alone (:func:`plan_blocks`), so
    a ``Ragged`` and a store holding the same sequences give the same statistics, bit for
    bit, and memory holds one block at a time.

    Args:
        x: ``B`` sequences with values ``(N, F)``, in memory or in a store.
        rows: The rows to fit on (e.g. the training split), or ``None`` for all.
        block_steps: Steps per block.

    Returns:
        The fitted standardizer (features without any real non-NaN step get mean 0 and
        std 1, with a ``RuntimeWarning`` as :meth:`Standardizer.fit`).

    Raises:
        ValueError: As :meth:`Standardizer.partial_fit` (an infinite step, say).

    Example:
        >>> x = Ragged.from_sequences([[[1.0], [3.0]], [[5.0]]])
        >>> fit_standardizer(x, block_steps=1).mean
        array([3.])
    """
    source: Ragged | StoredRagged = x
    if rows is not None:
        source = x.select(rows) if isinstance(x, StoredRagged) else x[rows]
    F = source.num_features
    scaler = Standardizer.empty(F)
    for start, stop in plan_blocks(source.lengths, block_steps):
        scaler = scaler.partial_fit(source[start:stop])
    empty = np.flatnonzero(scaler.count == 0)
    if empty.size:
        warnings.warn(
            f"fit_standardizer: features {empty.tolist()} have no real non-NaN step; they get "
            "mean 0 and std 1. Drop them or check the data.",
            RuntimeWarning,
            stacklevel=2,
        )
    return scaler


# ------------------------------------------------------------------------------ store


@dataclass(frozen=True, eq=False)
class Store:
    """An opened store: its sequences on disk, and what it says about them.

    Attributes:
        path: The file.
        x: The ``B`` sequences, served from the map (:class:`StoredRagged`).
        features: The ``F`` feature names.
        standardizer: The standardizer saved with the data, or ``None``.
        columns: The source's column names (``id``, ``order``, ``target``) as recorded.
        version: The store format version of the file.
        targets: What its ``y`` column holds: ``"sequence"`` (one target per sequence),
            ``"step"`` (one per step, :attr:`step_targets`) or ``None`` (no targets).
        step_targets: The per-step targets, ``B`` sequences ``(T_i,)`` int64 or float64
            (NaN: no target) served from the map like ``x``; ``None`` unless ``targets`` is
            ``"step"``.
    """

    path: Path
    x: StoredRagged
    features: tuple[str, ...]
    standardizer: Standardizer | None
    columns: Mapping[str, Any]
    version: int
    targets: str | None = None
    step_targets: StoredRagged | None = None

    def __len__(self) -> int:
        return len(self.x)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open_store, (self.path,))

    @property
    def ids(self) -> AnyArray:
        """``(B,)`` the id of every sequence (read from the file on each access)."""
        return self._column("id")

    @property
    def y(self) -> AnyArray | None:
        """``(B,)`` the target of every sequence, or ``None`` (read on each access).

        ``None`` too in a store of per-step targets: they are :attr:`step_targets`.
        """
        return self._column("y") if self.targets == "sequence" else None

    @property
    def has_targets(self) -> bool:
        """Whether the store has a target column (per sequence or per step)."""
        return self.targets is not None

    @property
    def num_record_batches(self) -> int:
        """The number of Arrow record batches the file holds."""
        return len(self.x._source.batches)

    @property
    def file_bytes(self) -> int:
        """The size of the file on disk, in bytes."""
        return self.path.stat().st_size

    def _column(self, name: str) -> AnyArray:
        parts = [
            batch.column(name).to_numpy(zero_copy_only=False) for batch in self.x._source.batches
        ]
        self.x.release()  # the column is copied; the pages its reading mapped can go
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(parts)


def open_store(
    path: str | os.PathLike[str], *, release_every: int | None = _RELEASE_EVERY
) -> Store:
    """Open a store: map the file and read its schema, metadata and offsets only.

    Args:
        path: A file written by :func:`write_store` or ``varlen convert``.
        release_every: Bytes copied out of the map after which its pages are dropped from
            this process (they stay in the page cache); ``None`` never drops them. Bounds
            the resident memory of a pass over a store larger than memory.

    Returns:
        The :class:`Store`.

    Raises:
        ImportError: If pyarrow is not installed.
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not a varlen store, or one of a later format version.
    """
    file = Path(path)
    if release_every is not None and release_every < 1:
        raise ValueError(f"open_store: release_every must be >= 1 or None, got {release_every}.")
    if not file.is_file():
        raise FileNotFoundError(f"open_store: store file {os.fspath(path)!r} does not exist.")
    with error_context("open_store"):
        source = _Mapped(file, release_every)
        record = _read_metadata(file, source.schema)
        features = tuple(str(name) for name in record.get("features", ()))
        dtype = _check_schema(file, source.schema, features)
        targets = _target_kind(file, source.schema, record)
    chunks = tuple(_chunk_view(batch, len(features), dtype) for batch in source.batches)
    source.positions["x"] = [source.locate(chunk.values) for chunk in chunks]
    chunk_rows = np.zeros(len(chunks) + 1, dtype=np.int64)
    np.cumsum([len(chunk) for chunk in chunks], out=chunk_rows[1:])
    step_targets = None
    if targets == "step":
        with error_context("open_store"):
            views = tuple(
                _targets_view(batch, chunk)
                for batch, chunk in zip(source.batches, chunks, strict=True)
            )
        source.positions["y"] = [source.locate(view.values) for view in views]
        y_dtype = views[0].dtype if views else np.dtype(np.float64)
        step_targets = StoredRagged(source, views, chunk_rows, 1, y_dtype, _column="y")
    source.release()  # the offsets are copied; the pages their reading mapped can go
    state = record.get("standardizer")
    return Store(
        path=file,
        x=StoredRagged(source, chunks, chunk_rows, len(features), dtype),
        features=features,
        standardizer=None if state is None else Standardizer.from_state_dict(state),
        columns=dict(record.get("columns") or {}),
        version=int(record["version"]),
        targets=targets,
        step_targets=step_targets,
    )
