"""Read long-format tables (one row per time step) into ragged batches.

A long-format table has an id column naming the sequence each row belongs to, an optional
order column (time, step index) that orders the rows within a sequence, feature columns,
and optionally a per-sequence target repeated on every row of the sequence.

pandas (and pyarrow, for Parquet) are imported inside the functions, never at module
import, so ``varlen.data`` loads without them: ``pip install "varlen[table]"``.

Choices: sequences come out **sorted by id** (so shuffling the rows changes nothing; the
ids are returned alongside). Without an order column, rows keep their table order within
a sequence; with one, they are sorted by it (stably) and repeated order values within an
id are an error. Features are cast to float64 and NaN is kept.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from varlen._checks import error_context, unplaced
from varlen._types import AnyArray, IntArray
from varlen.data.ragged import Ragged

if TYPE_CHECKING:
    import pandas as pd

_SUFFIXES = (".csv", ".parquet", ".pq")


class TableData(NamedTuple):
    """A long-format table grouped into one sequence per id.

    Attributes:
        x: ``B`` sequences with float64 values ``(N, F)``, one per id, in ``ids`` order.
        ids: ``(B,)`` the distinct ids, sorted.
        y: ``(B,)`` the target of each sequence (dtype as read), or ``None`` without a
            target column.
        features: The ``F`` feature column names, in the order of ``x``'s last axis.
    """

    x: Ragged
    ids: AnyArray
    y: AnyArray | None
    features: tuple[str, ...]


class _Groups(NamedTuple):
    """Rows grouped by id: ``permutation (rows,)`` sorts them, ``offsets (B + 1,)`` splits."""

    permutation: IntArray
    offsets: IntArray
    ids: AnyArray


def _plain(value: object) -> object:
    """Return NumPy scalars as Python scalars, for readable messages (``1`` not ``np.int64(1)``)."""
    return value.item() if isinstance(value, np.generic) else value


def _require_pandas() -> None:
    """Import pandas once up front, to fail with an install hint when it is missing."""
    try:
        importlib.import_module("pandas")
    except ImportError:
        raise unplaced(
            ImportError(
                "needs pandas (and pyarrow for Parquet). "
                'Install them with: pip install "varlen[table]".'
            )
        ) from None


def _as_frame(table: Any) -> pd.DataFrame:
    """Return ``table`` as a pandas DataFrame (pyarrow and polars tables are converted)."""
    import pandas as pd

    if isinstance(table, pd.DataFrame):
        return table
    if hasattr(table, "to_pandas"):
        frame = table.to_pandas()
        if isinstance(frame, pd.DataFrame):
            return frame
    raise unplaced(
        TypeError(
            f"table must be a pandas DataFrame or a pyarrow Table, got {type(table).__name__}."
        )
    )


def _check_column(frame: pd.DataFrame, role: str, name: object) -> str:
    if not isinstance(name, str):
        raise unplaced(TypeError(f"{role} must be a column name (str), got {name!r}."))
    if name not in frame.columns:
        raise unplaced(
            ValueError(
                f"{role} must name a column of the table, got {name!r}. "
                f"Available columns: {[str(column) for column in frame.columns]}."
            )
        )
    return name


def _feature_columns(
    frame: pd.DataFrame, features: Sequence[str] | None, used: set[str]
) -> tuple[str, ...]:
    """Return the checked feature names; ``None`` means every column not in ``used``."""
    if features is None:
        names = tuple(str(column) for column in frame.columns if column not in used)
    elif isinstance(features, str):
        raise unplaced(TypeError(f"features must be a sequence of column names, got {features!r}."))
    else:
        names = tuple(
            _check_column(frame, f"features[{index}]", name) for index, name in enumerate(features)
        )
    if not names:
        raise unplaced(
            ValueError(
                f"features must name at least one column, got none. "
                f"Every column is the id, order or target: {sorted(used)}."
            )
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise unplaced(ValueError(f"features must be distinct, got {repeated} more than once."))
    return names


def _feature_values(frame: pd.DataFrame, names: tuple[str, ...]) -> AnyArray:
    """Return ``(rows, F)`` float64 feature values; missing values become NaN."""
    import pandas as pd

    for index, name in enumerate(names):
        column = frame[name]
        numeric = pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
        numeric = numeric or len(column) == 0  # a CSV with only a header reads as object
        if not numeric or pd.api.types.is_complex_dtype(column):
            raise unplaced(
                TypeError(
                    f"features[{index}] {name!r} must be a real numeric column, got "
                    f"dtype {column.dtype}. Encode it as numbers or leave it out of features."
                )
            )
    values = frame[list(names)].to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)


def _codes(frame: pd.DataFrame, role: str, name: str) -> tuple[IntArray, AnyArray]:
    """Return ``(codes, sorted distinct values)`` of a column, rejecting missing values."""
    import pandas as pd

    codes, uniques = pd.factorize(frame[name], sort=True)  # mixed types: pandas' safe sort
    missing = np.flatnonzero(codes < 0)
    if missing.size:
        raise unplaced(
            ValueError(
                f"{role} column {name!r} must have no missing values, "
                f"got one at row {int(missing[0])}."
            )
        )
    return np.asarray(codes, dtype=np.int64), np.asarray(uniques)


def _step_order(
    frame: pd.DataFrame, order: str | None, *, codes: IntArray, ids: AnyArray
) -> IntArray:
    """Return the row permutation that groups rows by id and sorts each group by order."""
    if order is None:
        return np.argsort(codes, kind="stable").astype(np.int64)
    ranks, values = _codes(frame, "order", order)
    permutation = np.lexsort((ranks, codes)).astype(np.int64)  # stable: by id, then order
    id_sorted, rank_sorted = codes[permutation], ranks[permutation]
    repeats = np.flatnonzero(
        (id_sorted[1:] == id_sorted[:-1]) & (rank_sorted[1:] == rank_sorted[:-1])
    )
    if repeats.size:
        first = int(repeats[0])
        value, key = _plain(values[rank_sorted[first]]), _plain(ids[id_sorted[first]])
        raise unplaced(
            ValueError(
                f"order column {order!r} must be unique within each id, got "
                f"{value!r} twice for id {key!r}."
            )
        )
    return permutation


def _targets(frame: pd.DataFrame, name: str, *, groups: _Groups) -> AnyArray:
    """Return the ``(B,)`` per-id target, checking that it is constant within each id."""
    import pandas as pd

    codes, _ = pd.factorize(frame[name])  # NaN gets code -1 everywhere, so NaN == NaN here
    permutation, offsets = groups.permutation, groups.offsets
    codes = np.asarray(codes, dtype=np.int64)[permutation]
    first = codes[offsets[:-1]]  # (B,) code of each id's first row
    changes = np.flatnonzero(codes != np.repeat(first, np.diff(offsets)))
    column = frame[name].to_numpy()[permutation]
    if changes.size:
        row = int(changes[0])
        case = int(np.searchsorted(offsets, row, side="right")) - 1
        raise unplaced(
            ValueError(
                f"target column {name!r} must be constant within each id, got "
                f"{_plain(column[offsets[case]])!r} and {_plain(column[row])!r} "
                f"for id {_plain(groups.ids[case])!r}."
            )
        )
    return np.asarray(column[offsets[:-1]])


def _group(
    table: Any,
    *,
    id: str,
    order: str | None,
    features: Sequence[str] | None,
    target: str | None,
) -> TableData:
    """Validate the columns, then group and sort the rows (shared by the public functions)."""
    _require_pandas()
    frame = _as_frame(table)
    id_name = _check_column(frame, "id", id)
    order_name = None if order is None else _check_column(frame, "order", order)
    target_name = None if target is None else _check_column(frame, "target", target)
    used = {name for name in (id_name, order_name, target_name) if name is not None}
    names = _feature_columns(frame, features, used)
    values = _feature_values(frame, names)  # (rows, F)
    codes, ids = _codes(frame, "id", id_name)
    permutation = _step_order(frame, order_name, codes=codes, ids=ids)
    offsets = np.zeros(ids.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(codes, minlength=ids.shape[0]), out=offsets[1:])
    groups = _Groups(permutation=permutation, offsets=offsets, ids=ids)
    y = None
    if target_name is not None:
        y = _targets(frame, target_name, groups=groups)
    return TableData(x=Ragged(values[permutation], offsets), ids=ids, y=y, features=names)


def group_table(
    table: Any,
    *,
    id: str,
    order: str | None = None,
    features: Sequence[str] | None = None,
    target: str | None = None,
) -> TableData:
    """Group an in-memory long-format table into one sequence per id, with ids and targets.

    Sequences come out sorted by id. Within an id, rows keep their table order, or are
    sorted by ``order`` (stably). Every id has at least one row, so ``T_i >= 1``; an empty
    table gives ``B = 0``.

    Args:
        table: pandas ``DataFrame`` or pyarrow ``Table`` (anything with ``to_pandas()``),
            one row per time step. Not modified.
        id: Column naming the sequence each row belongs to; no missing values.
        order: Column that orders the steps within an id (time, step index); its values
            must be unique within each id. ``None`` keeps the table order.
        features: Real numeric (or bool) columns that become the ``F`` features, in this
            order; ``None`` means every column except ``id``, ``order`` and ``target``.
        target: Column holding a per-sequence target, constant within each id.

    Returns:
        A :class:`TableData`: ``x`` with float64 values ``(N, F)`` (NaN kept), the sorted
        ``ids (B,)``, the per-id target ``y (B,)`` or ``None``, and the feature names.

    Raises:
        ImportError: If pandas is not installed.
        TypeError: If ``table`` is not a table, a column name is not a str, or a feature
            column is not numeric.
        ValueError: If a column is missing (the message lists the available ones), no
            feature column is left, an id or order value is missing, an order value repeats
            within an id, or the target varies within an id (the message names the id).

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame(
        ...     {"id": ["b", "a", "b", "a", "a"], "t": [1, 2, 0, 0, 1], "v": [4.0, 3, 5, 1, 2]}
        ... )
        >>> data = group_table(df, id="id", order="t")
        >>> data.ids, data.x.lengths
        (array(['a', 'b'], dtype=object), array([3, 2]))
        >>> data.x.values[:, 0]  # (N,) = (5,): id "a" at t = 0, 1, 2, then id "b"
        array([1., 2., 3., 5., 4.])
    """
    where = "group_table"
    with error_context(where):
        return _group(table, id=id, order=order, features=features, target=target)


def table_to_ragged(
    table: Any,
    *,
    id: str,
    order: str | None = None,
    features: Sequence[str] | None = None,
) -> Ragged:
    """Group an in-memory long-format table into a ``Ragged``, one sequence per id.

    The same as :func:`group_table` without the ids and targets: sequence ``i`` belongs
    to the ``i``-th smallest id.

    Args:
        table: pandas ``DataFrame`` or pyarrow ``Table``, one row per time step.
        id: Column naming the sequence each row belongs to.
        order: Column that orders the steps within an id; ``None`` keeps the table order.
        features: Numeric columns that become the features ``F``; ``None`` means every
            column except ``id`` and ``order``.

    Returns:
        ``B`` sequences with float64 values ``(N, F)``, sorted by id.

    Raises:
        ImportError: If pandas is not installed.
        TypeError: If ``table`` is not a table or a feature column is not numeric.
        ValueError: If a column is missing or an order value repeats within an id.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"id": [7, 7, 3], "v": [1.0, 2.0, 3.0]})
        >>> table_to_ragged(df, id="id").to_sequences()  # id 3, then id 7
        [array([[3.]]), array([[1.],
               [2.]])]
    """
    where = "table_to_ragged"
    with error_context(where):
        return _group(table, id=id, order=order, features=features, target=None).x


def read_table(
    path: str | os.PathLike[str],
    *,
    id: str,
    order: str | None = None,
    features: Sequence[str] | None = None,
    target: str | None = None,
) -> TableData:
    """Read a long-format CSV or Parquet file into one sequence per id.

    The format follows the suffix: ``.csv`` (read by ``pandas.read_csv``, which infers
    column types) or ``.parquet`` / ``.pq`` (needs pyarrow). Then the rows are grouped as
    by :func:`group_table`.

    Args:
        path: The file.
        id: Column naming the sequence each row belongs to.
        order: Column that orders the steps within an id; ``None`` keeps the file order.
        features: Numeric columns that become the features ``F``; ``None`` means every
            column except ``id``, ``order`` and ``target``.
        target: Column holding a per-sequence target, constant within each id.

    Returns:
        A :class:`TableData` (see :func:`group_table`).

    Raises:
        ImportError: If pandas (or pyarrow, for Parquet) is not installed.
        TypeError: As :func:`group_table`.
        ValueError: If the suffix is not supported, a Parquet file is damaged or not Parquet
            (pyarrow's error, wrapped and naming the file), a CSV file cannot be parsed (the message
            names the file), or as :func:`group_table`.
    """
    where = "read_table"
    with error_context(where):
        suffix = Path(path).suffix.lower()
        if suffix not in _SUFFIXES:
            raise ValueError(
                f"{where}: path must end in one of {list(_SUFFIXES)}, got {os.fspath(path)!r}. "
                "Load other formats with pandas and call group_table."
            )
        _require_pandas()
        import pandas as pd

        try:
            frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:  # CSV syntax
            message = " ".join(str(error).split())
            raise ValueError(
                f"{where}: {os.fspath(path)!r} must be a CSV table with a header row, "
                f"got: {message}."
            ) from None
        except OSError:
            raise  # a file that cannot be read: FileNotFoundError and the like name it already
        except Exception as error:  # pyarrow's ArrowInvalid & co.: a damaged or foreign file
            if suffix == ".csv":
                raise
            message = " ".join(str(error).split())[:300]
            raise ValueError(
                f"{where}: {os.fspath(path)!r} must be a readable Parquet file, got "
                f"{type(error).__name__}: {message}"
            ) from None
        return _group(frame, id=id, order=order, features=features, target=target)
