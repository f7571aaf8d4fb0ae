"""varlen._atomic: a written file is the old one or a complete new one, never a partial one."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from varlen import _atomic
from varlen._atomic import (
    AtomicWriteError,
    atomic_open,
    disk_full,
    inject,
    remove_stale_temporaries,
    write_bytes,
    write_files,
    write_text,
)


def _write_rows(target: Path, rows: str) -> None:
    with atomic_open(target, "w") as file:
        for line in rows.splitlines(keepends=True):
            file.write(line)


def _fail_midway(target: Path) -> None:
    with atomic_open(target, "w") as file:
        file.write("partial")
        raise KeyError("boom")


def _listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def test_write_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    """A rewrite replaces the file whole; no temporary stays."""
    target = tmp_path / "out.txt"
    write_text(target, "old\n")
    write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert _listing(tmp_path) == ["out.txt"]


def test_new_file_respects_the_umask_like_open(tmp_path):
    """The file gets the permissions open() would give (the umask), not mkstemp's 0600."""
    target = tmp_path / "out.bin"
    write_bytes(target, b"x")
    (tmp_path / "plain.bin").write_bytes(b"x")
    assert target.stat().st_mode == (tmp_path / "plain.bin").stat().st_mode


@pytest.mark.parametrize("after", [0, 1, 5, 4096, 10_000])
def test_disk_full_keeps_old_file_and_says_disk_full_in_one_line(tmp_path, after):
    """ENOSPC at any offset keeps the old file; the error is one line naming it."""
    target = tmp_path / "out.csv"
    write_text(target, "old\n")
    rows = "".join(f"{row},{row * 0.5}\n" for row in range(2000))
    with inject(disk_full(after=after)), pytest.raises(AtomicWriteError) as caught:
        _write_rows(target, rows)
    message = str(caught.value)
    assert "\n" not in message
    assert repr(str(target)) in message
    assert "disk full" in message
    assert caught.value.errno == errno.ENOSPC
    assert target.read_text() == "old\n"
    assert _listing(tmp_path) == ["out.csv"]


def test_disk_full_on_a_fresh_file_leaves_nothing(tmp_path):
    """A fresh file that cannot be written leaves no partial file behind."""
    with inject(disk_full(name="fresh.bin")), pytest.raises(AtomicWriteError, match="disk full"):
        write_bytes(tmp_path / "fresh.bin", b"x" * 100)
    assert _listing(tmp_path) == []
    write_bytes(tmp_path / "other.bin", b"x")  # the hook only matches fresh.bin
    assert _listing(tmp_path) == ["other.bin"]


def test_quota_exceeded_is_disk_full_too(tmp_path):
    """EDQUOT (quota) reads 'disk full' as ENOSPC does."""
    if not hasattr(errno, "EDQUOT"):
        pytest.skip("no EDQUOT on this platform")

    def quota(destination, offset, size):
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    with inject(quota), pytest.raises(AtomicWriteError, match="disk full"):
        write_bytes(tmp_path / "q.bin", b"x")


def test_other_os_errors_name_the_file_without_claiming_disk_full(tmp_path):
    """An I/O error names the file and its cause, not a full disk."""

    def broken(destination, offset, size):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    with inject(broken), pytest.raises(AtomicWriteError) as caught:
        write_bytes(tmp_path / "io.bin", b"x")
    assert "disk full" not in str(caught.value)
    assert "io.bin" in str(caught.value)
    assert _listing(tmp_path) == []


def test_missing_folder_is_one_line_naming_the_file(tmp_path):
    """A missing folder is an AtomicWriteError naming the file."""
    with pytest.raises(AtomicWriteError, match=r"cannot write .*nowhere.*x\.txt"):
        write_text(tmp_path / "nowhere" / "x.txt", "x")


def test_an_exception_in_the_block_passes_unchanged_and_keeps_the_old_file(tmp_path):
    """The block's own exception passes unchanged; the old file stays."""
    target = tmp_path / "out.txt"
    write_text(target, "old")
    with pytest.raises(KeyError):
        _fail_midway(target)
    assert target.read_text() == "old"
    assert _listing(tmp_path) == ["out.txt"]


def test_inject_restores_the_previous_hook(tmp_path):
    """inject() nests and restores the previous hook."""
    with inject(disk_full()):
        with inject(None):
            write_bytes(tmp_path / "a", b"x")
        with pytest.raises(AtomicWriteError):
            write_bytes(tmp_path / "b", b"x")
    write_bytes(tmp_path / "b", b"x")
    assert _atomic._hook is None


def test_temporaries_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    """A SIGKILLed writer leaves its temporary; the next write of that file removes it."""
    target = tmp_path / "out.txt"
    code = (
        "import os, signal, sys\n"
        "from varlen._atomic import atomic_open\n"
        "with atomic_open(sys.argv[1], 'w') as f:\n"
        "    f.write('partial'); f.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(target)], check=False)
    assert not target.exists()
    assert len(_listing(tmp_path)) == 1  # the orphan temporary
    write_text(target, "whole")
    assert _listing(tmp_path) == ["out.txt"]
    assert target.read_text() == "whole"


def test_bad_mode_is_refused(tmp_path):
    """Only 'w' and 'wb' are write modes."""
    with pytest.raises(ValueError, match="mode must be"):
        atomic_open(tmp_path / "x", "a")  # type: ignore[call-overload]


def test_disk_full_skip_fails_a_later_file(tmp_path):
    """skip=N lets N matching files through whole, then fails the next."""
    with inject(disk_full(name="c.pt", skip=2)):
        write_bytes(tmp_path / "c.pt", b"1")
        write_bytes(tmp_path / "c.pt", b"22")
        with pytest.raises(AtomicWriteError, match="disk full"):
            write_bytes(tmp_path / "c.pt", b"333")
    assert (tmp_path / "c.pt").read_bytes() == b"22"


@pytest.mark.parametrize("failing", ["a.bin", "b.bin"])
def test_write_files_changes_none_when_one_cannot_be_written(tmp_path, failing):
    """All files are written to temporaries before any rename: a failure changes none."""
    write_files({tmp_path / "a.bin": b"old a", tmp_path / "b.bin": b"old b"})
    with inject(disk_full(name=failing)), pytest.raises(AtomicWriteError, match=failing):
        write_files({tmp_path / "a.bin": b"new a", tmp_path / "b.bin": b"new b"})
    assert (tmp_path / "a.bin").read_bytes() == b"old a"
    assert (tmp_path / "b.bin").read_bytes() == b"old b"
    assert _listing(tmp_path) == ["a.bin", "b.bin"]
    write_files({tmp_path / "a.bin": b"new a", tmp_path / "b.bin": b"new b"})
    assert (tmp_path / "b.bin").read_bytes() == b"new b"


def test_remove_stale_temporaries_keeps_live_writers_and_other_files(tmp_path):
    """Only temporaries of dead processes go; a live writer's and other dot files stay."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    names = [
        f".run.json.{pid}.0a1b2c3d.tmp",
        f".a.b.pt.{os.getpid()}.0a1b2c3d.tmp",
        ".hidden.tmp",
        ".varlen.lock",
        "model.pt",
    ]
    for name in names:
        (tmp_path / name).write_text("x")
    remove_stale_temporaries(tmp_path)
    assert _listing(tmp_path) == sorted(names[1:])


def test_a_rewrite_keeps_the_replaced_files_mode(tmp_path):
    """An overwritten 0600 file stays 0600 (it became 0644 before), by every write path."""
    for index, write in enumerate(
        (
            lambda path: write_text(path, "new\n"),
            lambda path: write_bytes(path, b"new\n"),
            lambda path: write_files({path: b"new\n"}),
        )
    ):
        target = tmp_path / f"secret{index}.csv"
        target.write_text("old\n")
        target.chmod(0o600)
        write(target)
        assert target.read_text() == "new\n"
        assert oct(target.stat().st_mode & 0o777) == oct(0o600)


def test_a_symlink_destination_is_written_through(tmp_path):
    """A link stays a link and its target gets the new content (it was replaced before)."""
    folder = tmp_path / "shared"
    folder.mkdir()
    target = folder / "predictions.csv"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "out.csv"
    link.symlink_to(target)
    write_text(link, "new\n")
    assert link.is_symlink()
    assert target.read_text() == "new\n"
    assert oct(target.stat().st_mode & 0o777) == oct(0o640)
    assert _listing(tmp_path) == ["out.csv", "shared"]
    assert _listing(folder) == ["predictions.csv"]
    write_files({link: b"newer\n"})
    assert link.is_symlink()
    assert target.read_text() == "newer\n"


def test_a_dangling_symlink_is_written_through_like_open(tmp_path):
    """A link to a file not yet there creates that file, as open(link, 'w') would."""
    link = tmp_path / "out.csv"
    link.symlink_to(tmp_path / "real.csv")
    write_text(link, "x\n")
    assert link.is_symlink()
    assert (tmp_path / "real.csv").read_text() == "x\n"
