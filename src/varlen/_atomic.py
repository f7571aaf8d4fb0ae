"""Atomic file writes: every file varlen writes is either the old one or a complete new one.

One mechanism for predictions, model directories, checkpoints, demo outputs, plots and
``.ts`` files. :func:`atomic_open` (and its shortcuts :func:`write_bytes` and
:func:`write_text`) writes to a temporary file in the destination's folder, flushes and
calls ``fsync`` on it, renames it over the destination (``os.replace``, atomic on POSIX and
Windows) and ``fsync`` on the folder so the rename itself survives a power cut. If anything
fails on the way, the temporary file is removed, the destination is untouched, and the error
is an :class:`AtomicWriteError`: an ``OSError`` whose message is one line naming the file and
saying ``disk full`` when the cause is ``ENOSPC`` or ``EDQUOT``.

A rewrite keeps what it replaces: the new file gets the old one's permission bits (a
``0600`` file stays ``0600``; a new file gets what :func:`open` would give it, the umask's),
and a destination that is a symbolic link is written *through*: the file it points to is
replaced and the link stays a link, as ``open(path, "w")`` would do (refusing it would break
the common set-up of a link to a shared results folder; replacing the link by a regular file
would leave its target silently stale).

The temporary file is ``.<name>.<pid>.<random>.tmp`` beside the destination (beside the
link's target for a link). A process killed
with ``SIGKILL`` cannot remove its own; the next write of the same destination removes those
left by processes that no longer run (on this host).

Faults are injected portably, without mounts: :func:`inject` installs a hook that every write
calls before it writes a chunk, which may raise (``OSError(errno.ENOSPC, ...)``, say). The hook
sees the destination, the offset and the size of the chunk; :func:`disk_full` builds the
usual one. This module is standard library only, so every layer (``data`` included) uses it.

Example:
    >>> with atomic_open("predictions.csv", "w", newline="") as file:  # doctest: +SKIP
    ...     file.write("id,label")
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, cast, overload

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = [
    "AtomicWriteError",
    "WriteHook",
    "atomic_open",
    "disk_full",
    "inject",
    "remove_stale_temporaries",
    "write_bytes",
    "write_error",
    "write_files",
    "write_text",
]

WriteHook = Callable[[Path, int, int], None]
"""``hook(destination, offset, size)``, called before each chunk is written; may raise."""

_DISK_FULL = frozenset(
    code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None
)
_hook: WriteHook | None = None


class AtomicWriteError(OSError):
    """A file could not be written; the destination is untouched and no temporary is left.

    ``errno`` is the cause's (``ENOSPC`` for a full disk); ``str()`` is one line that names
    the file and says ``disk full`` where that is the cause; ``path`` is the destination.
    """

    def __init__(self, path: Path, code: int | None, message: str) -> None:
        super().__init__(code, message)
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return self.message


def write_error(path: str | os.PathLike[str], error: BaseException) -> AtomicWriteError:
    """Return the one-line :class:`AtomicWriteError` for ``error`` met while writing ``path``.

    Args:
        path: The destination that could not be written.
        error: The cause (an ``OSError`` usually; any exception is described).

    Returns:
        The error to raise (``from error``).
    """
    destination = Path(path)
    code = error.errno if isinstance(error, OSError) else None
    if isinstance(error, AtomicWriteError):
        return error
    if code in _DISK_FULL:
        cause = f"disk full ({os.strerror(code)})" if code is not None else "disk full"
        advice = "; free some space and run again"
    elif isinstance(error, OSError) and error.strerror:
        cause, advice = error.strerror, ""
    else:
        cause, advice = f"{type(error).__name__}: {error}", ""
    text = " ".join(f"cannot write {os.fspath(destination)!r}: {cause}{advice}".split())
    return AtomicWriteError(destination, code, text + ("" if text.endswith(".") else "."))


@contextlib.contextmanager
def inject(hook: WriteHook | None) -> Iterator[None]:
    """Call ``hook`` before every chunk written by :func:`atomic_open`, inside the block.

    Args:
        hook: ``hook(destination, offset, size)``; it may raise to simulate a fault. ``None``
            removes any hook inside the block.

    Yields:
        Nothing; the previous hook is restored on exit.
    """
    global _hook
    previous, _hook = _hook, hook
    try:
        yield
    finally:
        _hook = previous


def disk_full(*, after: int = 0, name: str | None = None, skip: int = 0) -> WriteHook:
    """Return a hook that fails like a full disk once ``after`` bytes of a file are written.

    Args:
        after: Bytes each matching file may receive before ``ENOSPC``.
        name: Only destinations with this file name fail; ``None`` fails every file.
        skip: How many matching files are written whole first (fail the third checkpoint
            with ``name="checkpoint.pt", skip=2``).

    Returns:
        A :data:`WriteHook` for :func:`inject`.
    """
    started = [0]  # matching files begun (a file begins with its chunk at offset 0)

    def hook(destination: Path, offset: int, size: int) -> None:
        if name is not None and destination.name != name:
            return
        if offset == 0:
            started[0] += 1
        if started[0] > skip and offset + size > after:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return hook


class _HookedFile(io.FileIO):
    """A raw file that calls the installed hook before each write (the one place faults enter)."""

    def __init__(self, descriptor: int, destination: Path) -> None:
        super().__init__(descriptor, "wb", closefd=True)
        self._destination = destination
        self._offset = 0
        self.failure: OSError | None = None  # the first write error, whatever wraps it later

    def write(self, data: ReadableBuffer, /) -> int:
        size = memoryview(data).nbytes
        try:
            if _hook is not None:
                _hook(self._destination, self._offset, size)
            written = super().write(data)
        except OSError as error:
            self.failure = self.failure or error
            raise
        self._offset += written or 0
        return written or 0


def _resolve(path: str | os.PathLike[str]) -> Path:
    """Return ``path``, or the file it points to when it is a symbolic link (written through)."""
    destination = Path(path)
    if destination.is_symlink():
        return Path(os.path.realpath(destination))
    return destination


def _keep_mode(descriptor: int, destination: Path) -> None:
    """Give the temporary ``descriptor`` the permission bits of the file it will replace."""
    try:
        mode = stat.S_IMODE(os.stat(destination).st_mode)
    except OSError:  # a new file: open()'s mode (0666 less the umask) stays
        return
    with contextlib.suppress(OSError):  # file systems without permission bits
        os.fchmod(descriptor, mode)


def _temporary_name(destination: Path) -> Path:
    return destination.with_name(f".{destination.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _remove_stale(destination: Path) -> None:
    """Remove temporaries of ``destination`` left by processes that no longer run."""
    _remove_matching(destination.parent, f".{destination.name}.*.tmp")


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> None:
    """Remove the temporaries that writers killed mid-write left in ``folder`` (any file).

    Only files named like this module's temporaries (``.<name>.<pid>.<hex>.tmp``) whose
    process no longer runs are removed. ``varlen train`` calls it once it owns its folder.

    Args:
        folder: The folder to tidy.
    """
    _remove_matching(Path(folder), ".*.tmp")


def _remove_matching(folder: Path, pattern: str) -> None:
    with contextlib.suppress(OSError):
        for stale in folder.glob(pattern):
            parts = stale.name[: -len(".tmp")].rsplit(".", 2)
            if len(parts) != 3 or not parts[1].isdigit() or len(parts[2]) != 8:
                continue
            pid = int(parts[1])
            if pid == os.getpid() or _running(pid):
                continue
            stale.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but is not ours, or the platform cannot tell: keep its file
        return True
    return True


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on a folder
            os.fsync(descriptor)
    finally:
        os.close(descriptor)


@overload
def atomic_open(
    path: str | os.PathLike[str],
    mode: Literal["w"],
    *,
    encoding: str = ...,
    newline: str | None = ...,
) -> contextlib.AbstractContextManager[IO[str]]: ...
@overload
def atomic_open(
    path: str | os.PathLike[str],
    mode: Literal["wb"],
    *,
    encoding: str = ...,
    newline: str | None = ...,
) -> contextlib.AbstractContextManager[IO[bytes]]: ...
def atomic_open(
    path: str | os.PathLike[str],
    mode: Literal["w", "wb"] = "wb",
    *,
    encoding: str = "utf-8",
    newline: str | None = None,
) -> contextlib.AbstractContextManager[IO[str]] | contextlib.AbstractContextManager[IO[bytes]]:
    """Open ``path`` for writing so that it appears whole or not at all.

    The block writes to a temporary file beside ``path``. When the block ends normally the
    file is flushed, synced (``fsync``) and renamed over ``path``, and the folder is synced.
    When the block raises, or any of those steps fails, the temporary is removed and ``path``
    is left as it was. The folder must exist. An existing file's permission bits are kept;
    a symbolic link is written through (its target is replaced, the link stays).

    Args:
        path: The destination.
        mode: ``"w"`` (text) or ``"wb"`` (binary).
        encoding: Text encoding (text mode).
        newline: As for :func:`open` (text mode); ``""`` for :mod:`csv`.

    Returns:
        A context manager yielding the open file.

    Raises:
        AtomicWriteError: If the file cannot be written (one line naming it, ``disk full``
            for ``ENOSPC``/``EDQUOT``). Exceptions raised by the block itself pass unchanged.
        ValueError: If ``mode`` is not ``"w"`` or ``"wb"``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}.")
    manager = _atomic_open(_resolve(path), text=mode == "w", encoding=encoding, newline=newline)
    if mode == "w":
        return cast("contextlib.AbstractContextManager[IO[str]]", manager)
    return cast("contextlib.AbstractContextManager[IO[bytes]]", manager)


@contextlib.contextmanager
def _atomic_open(
    destination: Path, *, text: bool, encoding: str, newline: str | None
) -> Iterator[IO[str] | IO[bytes]]:
    staged: list[Path] = []
    with _stage(destination, staged, text=text, encoding=encoding, newline=newline) as file:
        yield file
    _commit([(staged[0], destination)])


@contextlib.contextmanager
def _stage(
    destination: Path, staged: list[Path], *, text: bool, encoding: str, newline: str | None
) -> Iterator[IO[str] | IO[bytes]]:
    """Write a synced temporary file for ``destination``; append its path to ``staged``.

    On any failure the temporary is removed and the error raised (see :func:`atomic_open`).
    """
    _remove_stale(destination)
    temporary = _temporary_name(destination)
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:
        raise write_error(destination, error) from error
    _keep_mode(descriptor, destination)
    raw = _HookedFile(descriptor, destination)
    buffered = io.BufferedWriter(raw)
    file: IO[str] | IO[bytes] = (
        io.TextIOWrapper(buffered, encoding=encoding, newline=newline) if text else buffered
    )
    writing = True  # False once the block has returned: errors from here on are ours
    try:
        try:
            yield file
            writing = False
            file.flush()
            os.fsync(raw.fileno())
        finally:
            with contextlib.suppress(OSError, ValueError):  # a failed flush fails close too
                file.close()
            raw.close()  # closes the descriptor even when the buffer could not be flushed
    except BaseException as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if isinstance(error, OSError) and not isinstance(error, AtomicWriteError):
            raise write_error(destination, error) from error
        if raw.failure is not None and isinstance(error, Exception):  # torch, pyarrow and
            raise write_error(destination, raw.failure) from error  # matplotlib wrap it
        if not writing and isinstance(error, Exception):
            raise write_error(destination, error) from error
        raise
    staged.append(temporary)


def _commit(moves: list[tuple[Path, Path]]) -> None:
    """Rename each staged temporary over its destination, in order; sync their folders."""
    for index, (temporary, destination) in enumerate(moves):
        try:
            os.replace(temporary, destination)
        except OSError as error:
            for left, _ in moves[index:]:
                with contextlib.suppress(OSError):
                    left.unlink()
            raise write_error(destination, error) from error
    for folder in dict.fromkeys(destination.parent for _, destination in moves):
        _fsync_folder(folder)


def write_files(files: Mapping[str | os.PathLike[str], bytes]) -> list[Path]:
    """Write several files so that a failure while writing them changes none of them.

    Every file is first written whole to its own synced temporary (the step that meets a
    full disk); only when all are written are they renamed into place, in the given order.
    A failure before the renames removes every temporary and leaves all destinations as
    they were. (A crash between two renames, a window of microseconds, can leave the first
    files new and the last old: order them so that a reader detects that, e.g. data before
    the index that records its hash.)

    Args:
        files: Destination -> whole content, in the order they are to be renamed.

    Returns:
        The destinations, in order.

    Raises:
        AtomicWriteError: If a file cannot be written (one line naming it).
    """
    staged: list[Path] = []
    destinations = [_resolve(path) for path in files]
    try:
        for destination, data in zip(destinations, files.values(), strict=True):
            with _stage(destination, staged, text=False, encoding="utf-8", newline=None) as file:
                file.write(data)  # type: ignore[arg-type]
    except BaseException:
        for temporary in staged:
            with contextlib.suppress(OSError):
                temporary.unlink()
        raise
    _commit(list(zip(staged, destinations, strict=True)))
    return [Path(path) for path in files]


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`).

    Args:
        path: The destination.
        data: The whole content.

    Returns:
        The destination as a :class:`~pathlib.Path`.

    Raises:
        AtomicWriteError: If the file cannot be written.
    """
    with atomic_open(path, "wb") as file:
        file.write(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_open`).

    Args:
        path: The destination.
        text: The whole content (newlines written as given).
        encoding: The text encoding.

    Returns:
        The destination as a :class:`~pathlib.Path`.

    Raises:
        AtomicWriteError: If the file cannot be written.
    """
    with atomic_open(path, "w", encoding=encoding, newline="") as file:
        file.write(text)
    return Path(path)
