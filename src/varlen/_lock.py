"""One writer per folder: a lock file that the operating system releases when its owner dies.

``varlen train`` holds ``DIR/.varlen.lock`` for the whole run on ``--out DIR``, so a second
run on the same folder is refused at once (one line naming the folder, the owner's pid and
the lock file) instead of two runs interleaving checkpoints and model files.

On POSIX the lock is ``fcntl.flock`` on the file: the kernel drops it when the owner exits
in any way, ``SIGKILL`` included, so a lock is never stale; the file records the owner's pid
for the message and is removed by its owner on release. Where ``fcntl`` is missing
(Windows), the file is created exclusively and a file whose recorded pid no longer runs is
taken over as stale. Standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "FolderBusyError", "folder_lock"]

LOCK_FILE = ".varlen.lock"


class FolderBusyError(RuntimeError):
    """Another process holds the folder's lock; the message is one line naming both."""


def _owner(path: Path) -> tuple[str, str]:
    """``(what holds the lock, "pid N on HOST")`` from the lock file, as far as it tells."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return str(record["what"]), f"pid {int(record['pid'])} on {record['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "process", "owner unknown"


def _busy(folder: Path, path: Path, what: str) -> FolderBusyError:
    holder, owner = _owner(path)
    return FolderBusyError(
        f"{os.fspath(folder)!r} is in use by another {holder} ({owner}; lock file "
        f"{os.fspath(path)!r}): wait for it to finish or choose another folder."
    )


def _record(what: str) -> bytes:
    record = {"pid": os.getpid(), "host": socket.gethostname(), "what": what}
    return json.dumps(record).encode("utf-8")


def _acquire_flock(folder: Path, path: Path, what: str) -> int:
    assert fcntl is not None  # noqa: S101 (only called where fcntl exists)
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(descriptor)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise _busy(folder, path, what) from None
            raise
        try:  # the owner may have removed the file between our open and our lock: retry
            same = os.fstat(descriptor).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(descriptor, 0)
            os.write(descriptor, _record(what))
            return descriptor
        os.close(descriptor)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _acquire_exclusive(folder: Path, path: Path, what: str) -> int:  # pragma: no cover
    for _ in range(2):
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                stale = record["host"] == socket.gethostname() and not _running(record["pid"])
            except (OSError, ValueError, KeyError, TypeError):
                stale = False
            if not stale:
                raise _busy(folder, path, what) from None
            path.unlink(missing_ok=True)
            continue
        os.write(descriptor, _record(what))
        return descriptor
    raise _busy(folder, path, what)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], *, what: str = "varlen run") -> Iterator[Path]:
    """Hold ``folder``'s lock inside the block; the folder is created if needed.

    A folder this call created is removed again on exit if it is still empty, so a run that
    fails before writing anything leaves nothing behind.

    Args:
        folder: The folder to own.
        what: What holds it, recorded in the lock file for the message another process
            gets (``"varlen train run"``).

    Yields:
        The lock file's path.

    Raises:
        FolderBusyError: If another process holds the lock.
        OSError: If the folder or the lock file cannot be created.
    """
    directory = Path(folder)
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    acquire = _acquire_flock if fcntl is not None else _acquire_exclusive
    descriptor = acquire(directory, path, what)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still holding the lock: nobody else can be between
        os.close(descriptor)
        if created:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only if empty
