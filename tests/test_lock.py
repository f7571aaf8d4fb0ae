"""varlen._lock: one owner per folder, released on exit, never stale after a kill."""

from __future__ import annotations

import subprocess
import sys

import pytest

from varlen._lock import LOCK_FILE, FolderBusyError, folder_lock


def _hold(folder):
    with folder_lock(folder):
        pass


def test_second_holder_is_refused_with_the_owner_named(tmp_path):
    """A second lock on a held folder fails at once, naming the folder, pid and lock file."""
    with folder_lock(tmp_path, what="test run"):
        with pytest.raises(FolderBusyError, match=r"in use by another test run \(pid \d+ on "):
            _hold(tmp_path)
        assert (tmp_path / LOCK_FILE).exists()
    assert not (tmp_path / LOCK_FILE).exists()
    with folder_lock(tmp_path):  # free again
        pass


def test_a_folder_it_created_is_removed_when_left_empty(tmp_path):
    """A run that fails before writing anything leaves no empty folder behind."""
    with pytest.raises(KeyError), folder_lock(tmp_path / "new" / "out"):
        raise KeyError("bad input")
    assert not (tmp_path / "new" / "out").exists()
    with folder_lock(tmp_path / "kept"):
        (tmp_path / "kept" / "file").write_text("x")
    assert (tmp_path / "kept" / "file").exists()


def test_the_lock_dies_with_a_killed_owner(tmp_path):
    """SIGKILL leaves the lock file, but the kernel released the lock: no stale lock."""
    code = (
        "import os, signal, sys\n"
        "from varlen._lock import folder_lock\n"
        "with folder_lock(sys.argv[1]):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
    assert (tmp_path / LOCK_FILE).exists()
    with folder_lock(tmp_path):
        pass
