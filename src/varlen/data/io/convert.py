"""Convert ``.ts``, CSV and Parquet files into a store, streaming, in bounded memory.

:func:`convert` reads its source a block at a time and hands whole sequences to
:func:`~varlen.data.io.store.write_store`, so memory holds about one block of input and one
record batch of output, however large the source. The store is written atomically: on any
error (a malformed row, a full disk) nothing is left at the destination.

- **``.ts``** files are parsed by :func:`~varlen.data.io.ts.iter_ts` (the rules and messages
  of :func:`~varlen.data.io.ts.read_ts`). Ids are the case numbers ``0..B-1``.
- **Long tables** (CSV, Parquet: one row per step, an id column, an optional order column,
  feature columns, an optional target) must have the rows of each id together
  (in any order of ids). Within an id, the rows are sorted by the order column if given
  (its values unique within the id), else kept in file order. Sequences keep the file's
  order of ids (unlike :func:`~varlen.data.io.table.read_table`, which sorts them).
- **The target** is per sequence when it is constant within every id, and per step when it
  varies within some id: the rule by which ``varlen train TABLE`` trains a per-step model.
  Per-step targets must be numbers (integer class ids, or floats with NaN for a step without
  a target); the store holds them beside the steps (see :mod:`varlen.data.io.store`). The
  kind is not known before the first id whose target varies: the conversion then starts
  again writing per-step targets (reading the source at most twice).
- **Tables whose rows are not grouped by id** need an out-of-core sort: ``sort=True`` lets
  DuckDB (an optional extra, ``pip install "varlen[sort]"``) sort the table by id and order,
  spilling to disk beyond its memory limit; sequences then come in id order.

A malformed row stops the conversion with one ``ValueError`` naming the file and the row
(``row`` counts data rows from 1; in a CSV, ``line`` counts the header too).
"""

from __future__ import annotations

import csv
import importlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from varlen._types import AnyArray, IntArray
from varlen.data.io.store import StoreChunk, StoreSummary, write_store
from varlen.data.io.ts import iter_ts
from varlen.data.ragged import Ragged

__all__ = ["convert"]

_WHERE = "convert"
_TABLES = (".csv", ".parquet", ".pq")
_BLOCK_BYTES = 4 << 20


@dataclass(frozen=True)
class _Columns:
    """The roles of a long table's columns, checked against its schema."""

    id: str
    order: str | None
    target: str | None
    features: tuple[str, ...]

    @property
    def read(self) -> list[str]:
        roles = [self.id, self.order, self.target, *self.features]
        return [name for name in roles if name is not None]


class _Error(ValueError):
    """A malformed input, located: ``convert: FILE: row R: message``."""


class _VariesWithin(Exception):
    """The target varies within an id: convert again with per-step targets."""


def _fail(path: Path, message: str, row: int | None = None, *, csv_line: bool = False) -> _Error:
    where = ""
    if row is not None:
        where = f"row {row} (line {row + 1}): " if csv_line else f"row {row}: "
    return _Error(f"{_WHERE}: {os.fspath(path)}: {where}{message}")


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


# ------------------------------------------------------------------------- table columns


def _columns(
    path: Path,
    schema: Any,
    *,
    id: str,
    order: str | None,
    target: str | None,
    features: Sequence[str] | None,
) -> _Columns:
    pa = importlib.import_module("pyarrow")
    names = list(schema.names)
    for role, name in (("id", id), ("order", order), ("target", target)):
        if name is not None and name not in names:
            raise _fail(path, f"{role} must name a column, got {name!r}. Columns: {names}.")
    used = {name for name in (id, order, target) if name is not None}
    chosen = tuple(n for n in names if n not in used) if features is None else tuple(features)
    for name in chosen:
        if name not in names:
            raise _fail(path, f"features must name columns, got {name!r}. Columns: {names}.")
        kind = schema.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)):
            raise _fail(
                path,
                f"feature column {name!r} must be numeric, got {kind}. Encode it as numbers "
                "or leave it out of features.",
            )
    if not chosen:
        raise _fail(
            path, f"features must name at least one column, got none besides {sorted(used)}."
        )
    return _Columns(id, order, target, chosen)


def _column(batch: Any, name: str) -> AnyArray:
    return np.asarray(batch.column(name).to_numpy(zero_copy_only=False))


def _missing(column: Any) -> IntArray:
    """Positions of null values in an Arrow column."""
    return np.flatnonzero(np.asarray(column.is_null().to_numpy(zero_copy_only=False)))


# ------------------------------------------------------------------------- grouping


@dataclass
class _Rows:
    """Rows of a long table, as NumPy columns, with their row numbers (from 1)."""

    number: IntArray
    ids: AnyArray
    order: AnyArray | None
    target: AnyArray | None
    values: AnyArray  # (rows, F) in the store's dtype

    def take(self, picked: Any) -> _Rows:
        return _Rows(
            self.number[picked],
            self.ids[picked],
            None if self.order is None else self.order[picked],
            None if self.target is None else self.target[picked],
            self.values[picked],
        )

    @staticmethod
    def join(first: _Rows | None, second: _Rows) -> _Rows:
        if first is None:
            return second

        def cat(a: AnyArray | None, b: AnyArray | None) -> AnyArray | None:
            return None if a is None or b is None else np.concatenate([a, b])

        return _Rows(
            np.concatenate([first.number, second.number]),
            np.concatenate([first.ids, second.ids]),
            cat(first.order, second.order),
            cat(first.target, second.target),
            np.concatenate([first.values, second.values]),
        )


def _batch_rows(
    path: Path,
    batch: Any,
    columns: _Columns,
    first_row: int,
    *,
    csv_line: bool,
    dtype: np.dtype[Any],
) -> _Rows:
    """Read one record batch into NumPy columns, rejecting missing ids and orders.

    The steps go straight into the store's ``dtype`` (through float64, as a cast at writing
    would: the same values), so no wider copy of the block is kept.
    """
    for role, name in (("id", columns.id), ("order", columns.order)):
        if name is None:
            continue
        missing = _missing(batch.column(name))
        if missing.size:
            row = first_row + int(missing[0])
            raise _fail(
                path,
                f"{role} column {name!r} must have no missing value, got one.",
                row,
                csv_line=csv_line,
            )
    values = np.empty((batch.num_rows, len(columns.features)), dtype=dtype)  # (rows, F)
    for j, name in enumerate(columns.features):
        values[:, j] = _column(batch, name).astype(np.float64, copy=False)
    return _Rows(
        np.arange(first_row, first_row + batch.num_rows, dtype=np.int64),
        _column(batch, columns.id),
        None if columns.order is None else _column(batch, columns.order),
        None if columns.target is None else _column(batch, columns.target),
        values,
    )


def _increasing(order: AnyArray, group: IntArray) -> bool:
    """Whether ``order`` strictly increases within each run of equal ``group``."""
    if order.dtype.kind not in "iuf":
        return False
    same = group[1:] == group[:-1]
    return bool(((order[1:] > order[:-1]) | ~same).all())


class _Grouper:
    """Cut a stream of rows into whole sequences; check each as it completes."""

    def __init__(self, path: Path, columns: _Columns, *, csv_line: bool, per_step: bool) -> None:
        self.path, self.columns, self.csv_line = path, columns, csv_line
        self.per_step = per_step
        self.step_kind: str | None = None  # "i" or "f": the per-step targets' kind, fixed first
        self.pending: _Rows | None = None
        self.seen: set[object] = set()

    def fail(self, message: str, row: int) -> _Error:
        return _fail(self.path, message, row, csv_line=self.csv_line)

    def feed(self, rows: _Rows) -> StoreChunk | None:
        """Add rows; return the sequences completed (all but the last id's), if any."""
        rows = _Rows.join(self.pending, rows)
        n = rows.ids.shape[0]
        if n == 0:
            self.pending = rows
            return None
        starts = np.concatenate([[0], np.flatnonzero(rows.ids[1:] != rows.ids[:-1]) + 1])
        last = int(starts[-1])
        self.pending = rows.take(slice(last, n))
        if last == 0:
            return None
        return self.sequences(rows.take(slice(0, last)), starts[:-1])

    def finish(self) -> StoreChunk | None:
        rows, self.pending = self.pending, None
        if rows is None or rows.ids.shape[0] == 0:
            return None
        return self.sequences(rows, np.zeros(1, dtype=np.int64))

    def sequences(self, rows: _Rows, starts: IntArray) -> StoreChunk:
        """Turn rows holding whole ids (runs starting at ``starts``) into sequences."""
        n = rows.ids.shape[0]
        lengths = np.diff(np.append(starts, n))
        ids = rows.ids[starts]
        self.check_new(ids, rows.number[starts])
        group = np.repeat(np.arange(starts.shape[0]), lengths)
        if rows.order is not None and not _increasing(rows.order, group):
            permutation = np.lexsort((rows.order, group))  # only when some id is out of order
            rows = rows.take(permutation)
            self.check_order(rows, group)
        offsets = np.append(starts, n).astype(np.int64)
        x = Ragged.view(rows.values, offsets)
        y: AnyArray | Ragged | None = None
        if rows.target is not None and self.per_step:
            y = x.with_values(self.step_targets(rows))
        elif rows.target is not None:
            y = self.targets(rows, starts, lengths)
        return StoreChunk(x, ids, y)

    def check_new(self, ids: AnyArray, numbers: IntArray) -> None:
        for key, row in zip(ids.tolist(), numbers.tolist(), strict=True):
            if key in self.seen:
                raise self.fail(
                    f"the rows of id {key!r} must be together, got more of them after other "
                    "ids. Sort the table by id first, or pass sort=True (--sort; needs "
                    'DuckDB: pip install "varlen[sort]").',
                    row,
                )
            self.seen.add(key)

    def check_order(self, rows: _Rows, group: IntArray) -> None:
        order = rows.order
        if order is None:
            return
        same = (group[1:] == group[:-1]) & (order[1:] == order[:-1])
        if same.any():
            at = int(np.flatnonzero(same)[0]) + 1
            raise self.fail(
                f"order column {self.columns.order!r} must be unique within each id, got "
                f"{_plain(order[at])!r} twice for id {_plain(rows.ids[at])!r}.",
                int(rows.number[at]),
            )

    def targets(self, rows: _Rows, starts: IntArray, lengths: IntArray) -> AnyArray:
        target = rows.target
        if target is None:
            raise RuntimeError("varlen bug: convert checked targets without a target column.")
        first = np.repeat(target[starts], lengths)
        differ = target != first
        if target.dtype.kind == "f":
            differ &= ~(np.isnan(target) & np.isnan(first))
        if differ.any():
            raise _VariesWithin
        return np.asarray(target[starts])

    def check_numbers(self, rows: _Rows) -> None:
        """Refuse per-step targets that are not numbers, naming the first row of text."""
        target = rows.target
        if target is None or target.dtype.kind in "iuf":
            return
        at = next((i for i, v in enumerate(target.tolist()) if not _is_number(v)), 0)
        raise self.fail(
            f"target column {self.columns.target!r} varies within ids, so its targets are "
            "stored per step and must be numbers (class ids as integers, NaN for no target), "
            f"got {_plain(target[at])!r}. Encode the labels as integers.",
            int(rows.number[at]),
        )

    def step_targets(self, rows: _Rows) -> AnyArray:
        """``(rows,)`` the per-step targets: int64, or float64 with NaN for none."""
        target = rows.target
        if target is None:
            raise RuntimeError("varlen bug: convert read per-step targets without a column.")
        name = self.columns.target
        self.check_numbers(rows)
        kind = "i" if target.dtype.kind in "iu" else "f"
        if self.step_kind is None:
            self.step_kind = kind
        if kind == "f":
            infinite = np.flatnonzero(np.isinf(target))
            if infinite.size:
                at = int(infinite[0])
                raise self.fail(
                    f"target column {name!r} must hold finite numbers, got {float(target[at])!r}.",
                    int(rows.number[at]),
                )
        if self.step_kind == "i" and kind == "f":
            fractional = np.flatnonzero(np.isnan(target) | (target != np.round(target)))
            if fractional.size:
                at = int(fractional[0])
                raise self.fail(
                    f"target column {name!r} must hold integers like its first rows (per-step "
                    f"targets keep the type of the first ones), got {_plain(target[at])!r}. "
                    "Give it a float type for missing targets (NaN).",
                    int(rows.number[at]),
                )
        dtype = np.int64 if self.step_kind == "i" else np.float64
        return np.asarray(target, dtype=dtype)


def _is_number(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool)


# ------------------------------------------------------------------------- sources


def _csv_batches(path: Path, block_bytes: int, columns: _Columns) -> Iterator[Any]:
    """The table's columns in record batches; features read as float64 in every block."""
    csv_mod = importlib.import_module("pyarrow.csv")
    pa = importlib.import_module("pyarrow")
    convert_options = csv_mod.ConvertOptions(
        include_columns=columns.read,
        column_types={name: pa.float64() for name in columns.features},
    )
    try:
        reader = csv_mod.open_csv(
            path,
            read_options=csv_mod.ReadOptions(block_size=block_bytes),
            convert_options=convert_options,
        )
        yield from reader
    except pa.ArrowInvalid as error:
        raise _locate_csv_error(path, str(error)) from None


def _csv_schema(path: Path, block_bytes: int) -> Any:
    """The header's columns, features counted as numbers (they are read as float64)."""
    csv_mod = importlib.import_module("pyarrow.csv")
    pa = importlib.import_module("pyarrow")
    try:
        reader = csv_mod.open_csv(
            path,
            read_options=csv_mod.ReadOptions(block_size=block_bytes),
            convert_options=csv_mod.ConvertOptions(column_types={}),
        )
    except pa.ArrowInvalid as error:
        raise _locate_csv_error(path, str(error)) from None
    return pa.schema([pa.field(name, pa.float64()) for name in reader.schema.names])


_WIDTH = re.compile(r"Expected (\d+) columns, got (\d+)")
_VALUE = re.compile(r"In CSV column #(\d+): .*conversion error to (\w+): invalid value '(.*)'")


def _locate_csv_error(path: Path, message: str) -> _Error:
    """Find the row pyarrow stumbled on (it does not say), streaming through the file."""
    text = " ".join(message.split())
    width, value = _WIDTH.search(text), _VALUE.search(text)
    with open(path, newline="", encoding="utf-8", errors="replace") as file:
        reader = csv.reader(file)
        header = next(reader, [])
        for row, fields in enumerate(reader, start=1):
            if width is not None and len(fields) != int(width.group(1)):
                return _fail(
                    path,
                    f"must have {width.group(1)} fields like the header, got {len(fields)}.",
                    row,
                    csv_line=True,
                )
            if value is None:
                continue
            column = int(value.group(1))
            if column < len(fields) and fields[column] == value.group(3):
                name = header[column] if column < len(header) else column
                return _fail(
                    path,
                    f"column {name!r} must hold {value.group(2)} values (as in its first "
                    f"rows; features are numbers), got {value.group(3)!r}.",
                    row,
                    csv_line=True,
                )
    return _fail(path, f"must be a CSV table with a header row, got: {text}")


# Bytes a Parquet column reader fetches at a time. Buffered, the reader holds about one
# data page per column (writers cut pages at ~1 MB), not the column chunk of a whole row group.
_PARQUET_BUFFER = 256 * 1024


def _parquet_batches(path: Path, block_rows: int, columns: Sequence[str]) -> Iterator[Any]:
    """The table's rows in record batches, holding a few pages per column, not the file.

    ``pre_buffer=False``: pyarrow's default pre-buffering reads ahead the column chunks of all
    the row groups iterated, so memory grew with the file (about 1.2 GB to convert 0.8 GB of
    Parquet). ``buffer_size``: read each column page by page rather than a row group's whole
    column chunk at once, so a file written as one huge row group streams too.
    """
    pq = importlib.import_module("pyarrow.parquet")
    file = pq.ParquetFile(path, pre_buffer=False, buffer_size=_PARQUET_BUFFER)
    yield from file.iter_batches(batch_size=block_rows, columns=list(columns))


def _parquet_schema(path: Path) -> Any:
    pq = importlib.import_module("pyarrow.parquet")
    pa = importlib.import_module("pyarrow")
    try:
        return pq.ParquetFile(path).schema_arrow
    except (pa.ArrowInvalid, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        message = " ".join(str(error).split())[:200]
        raise _fail(path, f"must be a readable Parquet file, got: {message}") from None


def _sorted_batches(
    path: Path, columns: _Columns, block_rows: int, memory_limit: str
) -> Iterator[Any]:
    """The table sorted by id and order by DuckDB (out of core), in record batches."""
    try:
        duckdb = importlib.import_module("duckdb")
    except ImportError:
        raise ImportError(
            f"{_WHERE}: sort=True needs DuckDB to sort tables larger than memory. Install it "
            'with: pip install "varlen[sort]".'
        ) from None
    if columns.order is None:
        raise _fail(
            path,
            "sorting needs an order column (--order) to keep each id's steps in order: a sort "
            "does not keep the file order of rows.",
        )
    connection = duckdb.connect()
    connection.execute(f"SET memory_limit = '{memory_limit}'")
    connection.execute("SET preserve_insertion_order = false")
    source = (
        connection.read_csv(os.fspath(path))
        if path.suffix.lower() == ".csv"
        else connection.read_parquet(os.fspath(path))
    )
    quoted = ", ".join('"' + name.replace('"', '""') + '"' for name in columns.read)
    keys = ", ".join('"' + name.replace('"', '""') + '"' for name in (columns.id, columns.order))
    relation = source.project(quoted).order(keys)
    fetch = getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch
    reader = fetch(block_rows)
    yield from reader


# ------------------------------------------------------------------------- chunks


def _table_chunks(
    path: Path,
    *,
    id: str,
    order: str | None,
    target: str | None,
    features: Sequence[str] | None,
    sort: bool,
    block_bytes: int,
    memory_limit: str,
    dtype: np.dtype[Any],
    per_step: bool,
) -> tuple[_Columns, Iterator[StoreChunk]]:
    is_csv = path.suffix.lower() == ".csv"
    schema = _csv_schema(path, block_bytes) if is_csv else _parquet_schema(path)
    columns = _columns(path, schema, id=id, order=order, target=target, features=features)
    block_rows = max(block_bytes // (8 * (len(columns.features) + 3)), 1)
    if sort:
        batches = _sorted_batches(path, columns, block_rows, memory_limit)
    elif is_csv:
        batches = _csv_batches(path, block_bytes, columns)
    else:
        batches = _parquet_batches(path, block_rows, columns.read)
    chunks = _group_batches(
        path, columns, batches, csv_line=is_csv and not sort, dtype=dtype, per_step=per_step
    )
    return columns, chunks


def _group_batches(
    path: Path,
    columns: _Columns,
    batches: Iterator[Any],
    *,
    csv_line: bool,
    dtype: np.dtype[Any],
    per_step: bool,
) -> Iterator[StoreChunk]:
    grouper = _Grouper(path, columns, csv_line=csv_line, per_step=per_step)
    row = 1
    for batch in batches:
        rows = _batch_rows(path, batch, columns, row, csv_line=csv_line, dtype=dtype)
        if per_step:
            grouper.check_numbers(rows)  # the whole block: the row of text, not its id's first
        chunk = grouper.feed(rows)
        row += batch.num_rows
        if chunk is not None:
            yield chunk
    chunk = grouper.finish()
    if chunk is None and row == 1:
        raise _fail(path, "must hold at least one row, got none.")
    if chunk is not None:
        yield chunk


def _ts_chunks(path: Path, chunk_cases: int) -> tuple[tuple[str, ...], Iterator[StoreChunk]]:
    chunks = iter_ts(path, chunk_cases=chunk_cases)
    first = next(chunks)
    if len(first.x) == 0:
        raise _fail(path, "must hold at least one case, got none.")

    def rest() -> Iterator[StoreChunk]:
        start = 0
        for data in _prepend(first, chunks):
            ids = np.arange(start, start + len(data.x), dtype=np.int64)
            start += len(data.x)
            yield StoreChunk(data.x, ids, data.y)

    return first.class_labels, rest()


def _prepend(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _store_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    """The steps' dtype, float32 or float64 (anything else is refused by write_store)."""
    chosen = np.dtype(dtype)
    return chosen if chosen.name in ("float32", "float64") else np.dtype(np.float64)


def convert(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    id: str | None = None,  # shadows the builtin on purpose: the name read_table uses
    order: str | None = None,
    features: Sequence[str] | None = None,
    target: str | None = None,
    dtype: DTypeLike = np.float32,
    sort: bool = False,
    block_bytes: int = _BLOCK_BYTES,
    chunk_bytes: int = 64 << 20,
    memory_limit: str = "1GB",
) -> StoreSummary:
    """Convert a ``.ts`` file or a long CSV/Parquet table into a store, streaming.

    Memory holds about ``block_bytes`` of input and ``chunk_bytes`` of output at a time
    (plus the distinct ids, to check that each id's rows come together), whatever the size
    of the source. The store is written atomically: on an error nothing is left at ``out``.

    Args:
        source: A ``.ts``, ``.csv``, ``.parquet`` or ``.pq`` file.
        out: The store file to write (conventionally ``.arrow``); its folder must exist.
        id: Table column naming the sequence of each row (tables only; required).
        order: Table column ordering the steps within an id (unique within each id).
        features: Table feature columns (numeric); ``None`` means every other column.
        target: Table column holding the target: per sequence if constant within each id,
            else per step (numbers; see the module).
        dtype: ``float32`` (default: half the disk of float64) or ``float64`` for the steps.
        sort: Sort a table whose rows are not grouped by id, out of core, with DuckDB
            (needs ``order``, and the ``sort`` extra).
        block_bytes: Bytes of input read at a time (a tuning knob).
        chunk_bytes: Bytes of steps per record batch of the store (a tuning knob).
        memory_limit: DuckDB's memory limit when sorting (it spills to disk beyond it).

    Returns:
        The :class:`~varlen.data.io.store.StoreSummary`.

    Raises:
        ImportError: If pyarrow (or DuckDB, for ``sort``) is not installed.
        FileNotFoundError: If ``source`` does not exist.
        ValueError: If the suffix is not supported, table options do not fit the source,
            or a row or line is malformed (one line naming the file and the row).
        TypeError: If a feature column is not numeric.
    """
    path, destination = Path(source), Path(out)
    suffix = path.suffix.lower()
    if suffix not in (".ts", *_TABLES):
        raise ValueError(
            f"{_WHERE}: source must be a .ts, .csv, .parquet or .pq file, "
            f"got {os.fspath(source)!r}."
        )
    if not path.is_file():
        raise FileNotFoundError(f"{_WHERE}: source file {os.fspath(source)!r} does not exist.")
    if suffix == ".ts":
        if any(option is not None for option in (id, order, features, target)) or sort:
            raise ValueError(
                f"{_WHERE}: a .ts file takes no table options (id, order, features, target, sort)."
            )
        labels, chunks = _ts_chunks(path, max(block_bytes // 4096, 1))
        return write_store(
            destination,
            chunks,
            dtype=dtype,
            chunk_bytes=chunk_bytes,
            columns={"source": path.name, "class_labels": list(labels)},
        )
    if id is None:
        raise ValueError(
            f"{_WHERE}: a table needs id, the column naming each row's sequence (--id)."
        )
    for per_step in (False, True):
        columns, table_chunks = _table_chunks(
            path,
            id=id,
            order=order,
            target=target,
            features=features,
            sort=sort,
            block_bytes=block_bytes,
            memory_limit=memory_limit,
            dtype=_store_dtype(dtype),
            per_step=per_step,
        )
        try:
            return write_store(
                destination,
                table_chunks,
                features=columns.features,
                dtype=dtype,
                chunk_bytes=chunk_bytes,
                columns={"source": path.name, "id": id, "order": order, "target": target},
            )
        except _VariesWithin:
            continue  # nothing was left at destination; again, with per-step targets
    raise RuntimeError("varlen bug: convert found per-step targets varying twice.")
