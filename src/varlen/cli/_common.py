"""Pieces shared by the commands: error policy, configs, progress, output and data loading.

- **Errors.** :func:`run_guarded` turns bad input (``ValueError``, ``TypeError``,
  ``OSError``, ``KeyError``, :class:`CommandError`) into one line
  ``varlen <command>: error: <message>`` on stderr and exit code 2; any other exception is
  exit code 1, also in one line. Python warnings are one line each too
  (``varlen <command>: warning: <Category>: <message>``, no source line). ``--debug``
  re-raises instead, for a traceback, and shows warnings as Python does.
- **Stopping.** ``SIGTERM`` (how schedulers and ``kill`` stop a job) is handled as Ctrl-C is:
  it raises :class:`Terminated`, a ``KeyboardInterrupt``, so locks are released, partial
  files removed and an interrupted ``varlen train`` prints how to resume; the exit code is
  143 (128 + 15) instead of Ctrl-C's 130.
- **Configs.** Each command has a typed frozen dataclass config. :func:`build_config` fills it
  from the dataclass defaults, then an optional ``--config file.toml`` (top-level keys and the
  ``[<command>]`` table), then the flags given on the command line (which win). Options that
  feed a config are declared with ``default=argparse.SUPPRESS`` so that only given flags
  override.
- **Output.** Results go to stdout; diagnostics (:func:`say`) and progress bars
  (:func:`progress_enabled`) to stderr, silenced by ``--quiet``; bars also vanish when
  stderr is not a terminal.
- **Data.** :func:`load_data` reads ``.ts``, ``.csv`` and ``.parquet`` files into one
  :class:`LoadedData`; :func:`load_store` opens a store written by ``varlen convert``
  (:func:`is_store`) as a :class:`StoredData`, its steps left on disk.

This module does not import torch, so ``varlen --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import threading
import tomllib
import types
import typing
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np

from varlen._types import AnyArray
from varlen.data.ragged import Ragged

if typing.TYPE_CHECKING:
    from varlen.data.io.store import StoredRagged

__all__ = [
    "STORE_SUFFIXES",
    "TABLE_SUFFIXES",
    "TS_SUFFIXES",
    "CommandError",
    "LoadedData",
    "StoredData",
    "Terminated",
    "add_common_options",
    "add_table_options",
    "build_config",
    "count",
    "is_store",
    "load_data",
    "load_store",
    "progress_enabled",
    "run_guarded",
    "say",
    "table_options",
]

TS_SUFFIXES = (".ts",)
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
STORE_SUFFIXES = (".arrow", ".feather", ".ipc")
_ARROW_MAGIC = b"ARROW1"
_USER_ERRORS = (ValueError, TypeError, OSError, KeyError)
_C = TypeVar("_C")


class CommandError(Exception):
    """Bad input found by a command itself: reported in one line, exit code 2."""


class Terminated(KeyboardInterrupt):
    """``SIGTERM`` received: unwinds like Ctrl-C (locks released, resume hint printed)."""


# ----------------------------------------------------------------------------- errors


def _message(error: BaseException) -> str:
    """Return the one-line text of an exception."""
    if isinstance(error, KeyError) and error.args:
        text = f"missing key {error.args[0]!r}"
    elif isinstance(error, OSError) and error.strerror and error.filename is not None:
        text = f"{error.strerror}: {os.fsdecode(error.filename)!r}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())  # one line, whatever the message holds


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that flushing it at exit raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (captured output)
        pass


def run_guarded(command: str, run: Callable[[argparse.Namespace], int], args: Any) -> int:
    """Run a command's ``run(args)`` under the error policy.

    Args:
        command: The command's name, for the message prefix.
        run: The command's ``run`` function.
        args: The parsed arguments; ``args.debug`` re-raises errors for a traceback.

    Returns:
        ``run``'s exit code; 2 for bad input, 1 for another failure, 130 on Ctrl-C,
        143 on ``SIGTERM``.
    """
    debug = bool(getattr(args, "debug", False))
    with warnings.catch_warnings(), _sigterm_as_interrupt():
        if not debug:
            warnings.showwarning = _warning_line(command)
        return _run_guarded(command, run, args, debug=debug)


# Set by a command whose process joined (and left) a ``torchrun`` process group.
_PROCESS_GROUP_LEFT: list[bool] = []


def note_process_group_left() -> None:
    """Record that this process joined a ``torchrun`` process group and has left it.

    :func:`varlen.cli.entry` then ends the process without the interpreter's teardown: with
    torch 2.13, gloo's threads abort a process in that teardown now and then ("terminate
    called without an active exception", SIGABRT), after ``destroy_process_group`` too, and
    the launcher then reports a run whose files were all written as failed.
    """
    _PROCESS_GROUP_LEFT.append(True)


def process_group_left() -> bool:
    """Whether a command of this process joined and left a ``torchrun`` process group."""
    return bool(_PROCESS_GROUP_LEFT)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, ``SIGTERM`` raises :class:`Terminated` (a ``KeyboardInterrupt``).

    Only from the main thread and only where ``SIGTERM`` still has its default action: a
    program that embeds ``main()`` and handles ``SIGTERM`` itself keeps its handler.
    """
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def terminate(signum: int, frame: types.FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM stops at once
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _warning_line(command: str) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints one line, without the source line under it."""

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        text = " ".join(str(message).split())
        print(f"varlen {command}: warning: {category.__name__}: {text}", file=sys.stderr)

    return show


def _run_guarded(
    command: str, run: Callable[[argparse.Namespace], int], args: Any, *, debug: bool
) -> int:
    try:
        return run(args)
    except BrokenPipeError:  # the reader of stdout went away (`varlen ... | head`)
        _silence_stdout()
        return 1
    except KeyboardInterrupt as error:
        if debug:
            raise
        if isinstance(error, Terminated):
            print(f"varlen {command}: terminated (SIGTERM)", file=sys.stderr)
            return 143
        print(f"varlen {command}: interrupted", file=sys.stderr)
        return 130
    except (CommandError, *_USER_ERRORS) as error:
        if debug:
            raise
        print(f"varlen {command}: error: {_message(error)}", file=sys.stderr)
        return 2
    except Exception as error:
        if debug:
            raise
        print(
            f"varlen {command}: error: {type(error).__name__}: {_message(error)} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


# ----------------------------------------------------------------------------- options


def add_common_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """Add ``--debug`` and ``--quiet`` (and ``--config`` on a command's parser).

    On a command's parser the flags default to ``SUPPRESS``, so ``varlen --quiet train``
    and ``varlen train --quiet`` both work.

    Args:
        parser: The top-level parser or a command's parser.
        top_level: Whether ``parser`` is the top-level one.
    """
    default: Any = False if top_level else argparse.SUPPRESS
    parser.add_argument(
        "--debug", action="store_true", default=default, help="show tracebacks on errors"
    )
    parser.add_argument(
        "--quiet", action="store_true", default=default, help="no progress bars or diagnostics"
    )
    if not top_level:
        parser.add_argument(
            "--config",
            type=Path,
            metavar="FILE.toml",
            default=None,
            help="read options from a TOML file (flags given here override it)",
        )


def add_table_options(parser: argparse.ArgumentParser, *, target: bool) -> None:
    """Add the long-format table options ``--id --order --features [--target]``.

    Args:
        parser: A command's parser.
        target: Whether to add ``--target``.
    """
    group = parser.add_argument_group("tables (CSV/Parquet long format, one row per step)")
    group.add_argument(
        "--id", default=argparse.SUPPRESS, metavar="COLUMN", help="column naming the sequence"
    )
    group.add_argument(
        "--order",
        default=argparse.SUPPRESS,
        metavar="COLUMN",
        help="column ordering the steps within a sequence (default: file order)",
    )
    group.add_argument(
        "--features",
        default=argparse.SUPPRESS,
        metavar="A,B,...",
        type=_comma_list,
        help="feature columns, comma separated (default: every other column)",
    )
    if target:
        group.add_argument(
            "--target",
            default=argparse.SUPPRESS,
            metavar="COLUMN",
            help="column holding the label or value (per sequence, or per step)",
        )


def _comma_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated column names, got {text!r}")
    return names


def count(n: int, noun: str) -> str:
    """Return ``"1 feature"`` or ``"3 features"``: ``n`` and ``noun``, plural unless 1."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def say(args: Any, message: str) -> None:
    """Print a diagnostic line to stderr unless ``--quiet``.

    Args:
        args: The parsed arguments.
        message: The line.
    """
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr)


def progress_enabled(args: Any) -> bool:
    """Return whether to show progress bars: not ``--quiet`` and stderr is a terminal.

    Args:
        args: The parsed arguments.

    Returns:
        Whether bars are shown.
    """
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


# ----------------------------------------------------------------------------- configs


def _read_toml(path: Path, command: str) -> dict[str, Any]:
    """Return the top-level keys of a TOML file updated by its ``[command]`` table."""
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except tomllib.TOMLDecodeError as error:
        raise CommandError(f"--config {os.fspath(path)!r}: invalid TOML: {error}.") from None
    values = {key: value for key, value in document.items() if not isinstance(value, dict)}
    section = document.get(command, {})
    if not isinstance(section, dict):
        raise CommandError(f"--config {os.fspath(path)!r}: [{command}] must be a table.")
    values.update(section)
    return {key.replace("-", "_"): value for key, value in values.items()}


_NO = object()  # "this value does not fit the type"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_PLAIN: dict[Any, Callable[[Any], Any]] = {
    float: lambda value: float(value) if _is_number(value) else _NO,
    int: lambda value: value if isinstance(value, int) and not isinstance(value, bool) else _NO,
    bool: lambda value: value if isinstance(value, bool) else _NO,
    str: lambda value: value if isinstance(value, str) else _NO,
    Path: lambda value: Path(value) if isinstance(value, str) else _NO,
    type(None): lambda value: _NO,  # TOML has no null: a None field keeps its default
}


def _convert(value: Any, hint: Any) -> Any:
    """Return a TOML ``value`` converted to the type ``hint``, or ``_NO``."""
    origin, options = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for option in options:
            converted = _convert(value, option)
            if converted is not _NO:
                return converted
        return _NO
    if origin is typing.Literal:
        return value if value in options else _NO
    if origin is tuple:
        strings = isinstance(value, list) and all(isinstance(item, str) for item in value)
        return tuple(value) if strings else _NO
    plain = _PLAIN.get(hint)
    return _NO if plain is None else plain(value)


def _type_name(hint: Any) -> str:
    origin, options = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(option) for option in options if option is not type(None))
    if origin is typing.Literal:
        return " or ".join(repr(choice) for choice in options)
    if origin is tuple:
        return "a list of strings"
    return {float: "a number", int: "an integer", bool: "true or false"}.get(hint, "a string")


def _check_value(where: str, name: str, value: Any, hint: Any) -> Any:
    """Return a TOML ``value`` converted to the field type ``hint``, else raise."""
    converted = _convert(value, hint)
    if converted is _NO:
        raise CommandError(f"{where}: {name} must be {_type_name(hint)}, got {value!r}.")
    return converted


def build_config(cls: type[_C], args: Any, *, command: str) -> _C:
    """Build a command's config: dataclass defaults < ``--config`` TOML < given flags.

    Args:
        cls: A frozen dataclass; its field names are the flags' ``dest`` names.
        args: The parsed arguments; every attribute named like a field overrides.
        command: The command's name (its TOML table).

    Returns:
        The config.

    Raises:
        CommandError: If the TOML file is invalid, has an unknown key or a value of the
            wrong type.
        OSError: If the TOML file cannot be read.
    """
    hints = typing.get_type_hints(cls)
    names = [field.name for field in dataclasses.fields(cls)]  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    path = getattr(args, "config", None)
    if path is not None:
        where = f"--config {os.fspath(path)!r}"
        for key, value in _read_toml(Path(path), command).items():
            if key not in names:
                raise CommandError(f"{where}: key {key!r} must be one of {sorted(names)}.")
            values[key] = _check_value(where, key, value, hints[key])
    for name in names:
        if hasattr(args, name):
            values[name] = getattr(args, name)
    return cls(**values)


# ----------------------------------------------------------------------------- data


class LoadedData(NamedTuple):
    """Sequences read from a ``.ts``, CSV or Parquet file.

    Attributes:
        x: ``B`` sequences with float64 values ``(N, F)``; NaN marks missing values.
        y: ``(B,)`` targets (strings or numbers as stored), or ``None`` without targets.
        features: The ``F`` feature names (``.ts``: ``dim_0``, ``dim_1``, ...).
        ids: ``(B,)`` sequence ids (``.ts``: the case numbers ``0..B-1``).
        class_labels: Labels declared by a ``.ts`` header (``@classLabel true``), else ``()``.
    """

    x: Ragged
    y: AnyArray | None
    features: tuple[str, ...]
    ids: AnyArray
    class_labels: tuple[str, ...]


def load_data(
    path: str | os.PathLike[str],
    *,
    id: str | None = None,
    order: str | None = None,
    features: Sequence[str] | None = None,
    target: str | None = None,
) -> LoadedData:
    """Read sequences from a file, dispatching on its suffix.

    ``.ts`` files are read by :func:`varlen.data.io.read_ts` and take no table options;
    ``.csv`` and ``.parquet`` (``.pq``) files are long-format tables read by
    :func:`varlen.data.io.read_table` and need ``id``.

    Args:
        path: The file.
        id: Table column naming the sequence of each row.
        order: Table column ordering the steps within a sequence.
        features: Table feature columns; ``None`` means every other column.
        target: Table column holding the per-sequence target.

    Returns:
        The :class:`LoadedData`.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CommandError: If the suffix is unknown, table options are given for a ``.ts`` file,
            ``id`` is missing for a table, or the file holds no sequence or an infinite
            value.
        ValueError: If the file is malformed (the reader names the file, line or column).
        TypeError: If a table feature column is not numeric.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in TS_SUFFIXES + TABLE_SUFFIXES:
        raise CommandError(
            f"DATA must be a .ts, .csv or .parquet file, got {os.fspath(path)!r}. "
            "Convert other formats to a long-format CSV (one row per step)."
        )
    if not file.is_file():
        raise FileNotFoundError(f"DATA file {os.fspath(path)!r} does not exist.")
    if suffix in TS_SUFFIXES:
        data = _load_ts(file, id=id, order=order, features=features, target=target)
    elif id is None:
        raise CommandError(
            f"a table needs --id COLUMN to group its rows into sequences, got none for "
            f"{os.fspath(path)!r}."
        )
    else:
        from varlen.data.io.table import read_table

        table = read_table(file, id=id, order=order, features=features, target=target)
        data = LoadedData(table.x, table.y, table.features, table.ids, ())
    _check_loaded(data, os.fspath(path))
    return data


def _check_loaded(data: LoadedData, path: str) -> None:
    """Reject data without sequences, and infinite values (NaN marks a missing value)."""
    if len(data.x) == 0:
        raise CommandError(f"DATA must hold at least one sequence, got none in {path!r}.")
    rows, columns = np.nonzero(np.isinf(data.x.values))
    if rows.size:
        row, column = int(rows[0]), int(columns[0])
        case = int(np.searchsorted(data.x.offsets, row, side="right")) - 1
        step = row - int(data.x.offsets[case])
        ident = data.ids[case]
        ident = ident.item() if isinstance(ident, np.generic) else ident
        raise CommandError(
            f"DATA values must be finite or missing (NaN), got {data.x.values[row, column]} "
            f"at sequence {ident!r}, step {step}, feature {data.features[column]!r} in "
            f"{path!r}. Replace it by NaN (a missing value)."
        )


def _load_ts(file: Path, **options: Any) -> LoadedData:
    given = sorted(f"--{name}" for name, value in options.items() if value is not None)
    if given:
        raise CommandError(
            f"table options ({', '.join(given)}) apply to .csv and .parquet files only, "
            f"got them for {file.name!r}."
        )
    from varlen.data.io.ts import read_ts

    data = read_ts(file)
    features = tuple(f"dim_{index}" for index in range(data.x.values.shape[1]))
    ids = np.arange(len(data.x), dtype=np.int64)
    return LoadedData(data.x, data.y, features, ids, data.class_labels)


class StoredData(NamedTuple):
    """Sequences in a store (``varlen convert``): their steps stay on disk, read when used.

    Attributes:
        x: ``B`` sequences ``(T_i, F)`` served from the store's memory map.
        y: ``(B,)`` targets as stored, or ``None`` in a store without (or with per-step ones).
        features: The ``F`` feature names.
        ids: ``(B,)`` sequence ids.
        class_labels: Labels declared by the ``.ts`` file it was converted from, else ``()``.
        step_y: Per-step targets ``(T_i,)`` as stored (int64, or float64 with NaN for none),
            served from the map like ``x``; ``None`` unless the store holds per-step targets.
        target: The source's target column, as recorded by ``varlen convert`` (or ``None``).
    """

    x: StoredRagged
    y: AnyArray | None
    features: tuple[str, ...]
    ids: AnyArray
    class_labels: tuple[str, ...]
    step_y: StoredRagged | None = None
    target: str | None = None


def is_store(path: str | os.PathLike[str]) -> bool:
    """Return whether ``path`` names a store: a store suffix, or an Arrow IPC file's magic.

    Args:
        path: A DATA path.

    Returns:
        ``True`` for ``.arrow``, ``.feather`` and ``.ipc`` files, and for any existing file
        that starts with Arrow's ``ARROW1``.
    """
    file = Path(path)
    if file.suffix.lower() in STORE_SUFFIXES:
        return True
    if file.suffix.lower() in TS_SUFFIXES + TABLE_SUFFIXES or not file.is_file():
        return False
    try:
        with file.open("rb") as handle:
            return handle.read(len(_ARROW_MAGIC)) == _ARROW_MAGIC
    except OSError:
        return False


def load_store(
    path: str | os.PathLike[str],
    *,
    id: str | None = None,
    order: str | None = None,
    features: Sequence[str] | None = None,
    target: str | None = None,
) -> StoredData:
    """Open a store written by ``varlen convert`` (its schema and offsets only).

    A store was grouped, ordered and given its features and target when it was converted,
    so the table options do not apply to it.

    Args:
        path: The store file.
        id: Must be ``None`` (a table option).
        order: Must be ``None``.
        features: Must be ``None``.
        target: Must be ``None``.

    Returns:
        The :class:`StoredData`.

    Raises:
        CommandError: If a table option is given, or the store holds no sequence.
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not a varlen store (or one of a later version).
        ImportError: If pyarrow is not installed.
    """
    options = {"id": id, "order": order, "features": features, "target": target}
    given = sorted(f"--{name}" for name, value in options.items() if value is not None)
    if given:
        raise CommandError(
            f"table options ({', '.join(given)}) apply to .csv and .parquet files only, got "
            f"them for the store {Path(path).name!r}: its sequences, features and target were "
            "chosen by varlen convert. Drop them (or convert again)."
        )
    from varlen.data.io.store import open_store

    if not Path(path).is_file():
        raise FileNotFoundError(f"DATA store {os.fspath(path)!r} does not exist.")
    store = open_store(path)
    if len(store) == 0:
        raise CommandError(
            f"DATA must hold at least one sequence, got none in {os.fspath(path)!r}."
        )
    labels = store.columns.get("class_labels") or ()
    y = store.y if store.targets == "sequence" else None
    target = store.columns.get("target")
    return StoredData(
        store.x,
        y,
        store.features,
        store.ids,
        tuple(str(label) for label in labels),
        store.step_targets,
        None if target is None else str(target),
    )


def table_options(config: Any) -> dict[str, Any]:
    """Return the table options of a config as keyword arguments of :func:`load_data`.

    Args:
        config: A config with ``id``, ``order``, ``features`` and optionally ``target``.

    Returns:
        ``{"id": ..., "order": ..., "features": ..., "target": ...}``.
    """
    names = ("id", "order", "features", "target")
    return {name: getattr(config, name, None) for name in names}
