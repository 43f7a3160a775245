"""Disk full and other storage errors (issue 12, finding 5): one clear message, no crash, nothing lost.

A full disk while a journal entry was written made HDF5 fail inside its own writes: tracebacks
from ``__dealloc__`` and then a segfault (exit 139). A full disk during a commit gave HDF5's
"Disable slist on flush dest failure failed". Now an entry is built in memory and written with
plain file I/O, a commit checks for room first, and either failure is one StorageError that says
how many episodes are safe where; rerunning the same command after freeing space finishes the run.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest

from training_ground.data import dataset as dataset_module
from training_ground.data.collect import CollectOptions, collect
from training_ground.data.dataset import StorageError, inspect_dataset, journal_seeds, stored_seeds, storage_errno

OPTIONS = dict(task="bread", episodes=6, robots=2, overrides=["max_steps=5"], progress=False)


def test_a_full_disk_while_writing_a_journal_entry_is_one_clear_error_and_a_rerun_finishes(tmp_path, monkeypatch):
    path = tmp_path / "run.hdf5"
    real_open, written = open, []

    def open_on_a_filling_disk(file, mode="r", *args, **kwargs):
        if str(file).endswith(".hdf5.tmp"):
            if len(written) == 3:
                raise OSError(errno.ENOSPC, "No space left on device", str(file))
            written.append(file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(dataset_module, "open", open_on_a_filling_disk, raising=False)
    with pytest.raises(StorageError, match=r"no space left on the device of .* while writing journal entry "
                                           r".*seed_3\.hdf5: 0 episodes are safe in .*run\.hdf5 and 3 more in "
                                           r".*journal .*; free space and rerun the same command") as caught:
        collect(CollectOptions(out=str(path), **OPTIONS))
    assert caught.value.errno == errno.ENOSPC
    assert stored_seeds(path) == {0, 1, 2} and not list(path.parent.glob("**/*.tmp"))
    monkeypatch.undo()  # space freed
    result = collect(CollectOptions(out=str(path), **OPTIONS))
    assert result.resumed == 3 and stored_seeds(path) == set(range(6)) and inspect_dataset(path).problems == []


def test_a_full_disk_at_a_commit_keeps_the_journal_for_the_next_run(tmp_path, monkeypatch):
    path = tmp_path / "run.hdf5"
    collect(CollectOptions(out=str(path), **{**OPTIONS, "episodes": 2}))
    before = path.read_bytes()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(dataset_module.shutil, "disk_usage", lambda folder: usage(2**30, 2**30 - 4096, 4096))
    with pytest.raises(StorageError, match=r"while writing the merged copy of .*: 2 episodes are safe in "
                                           r".*run\.hdf5 and \d+ more in .*run\.hdf5\.journal"):
        collect(CollectOptions(out=str(path), **OPTIONS))
    assert path.read_bytes() == before  # the file as it was
    waiting = journal_seeds(path)
    assert waiting and waiting <= {2, 3, 4, 5}
    monkeypatch.undo()
    collect(CollectOptions(out=str(path), **OPTIONS))
    assert stored_seeds(path) == set(range(6)) and not journal_seeds(path)


def test_hdf5_s_own_write_errors_are_read_for_their_errno():
    message = ("Can't decrement id ref count (file write failed: time = Wed Dec  2 00:34:20 2026\n, filename = "
               "'x.tmp', file descriptor = 4, errno = 28, error message = 'No space left on device', ...)")
    assert storage_errno(RuntimeError(message)) == errno.ENOSPC
    assert storage_errno(OSError(errno.EIO, "Input/output error")) == errno.EIO
    assert storage_errno(RuntimeError("something else")) is None


@pytest.fixture
def small_disk(tmp_path):
    """A 700 KiB tmpfs (room for about three short bread episodes), where this machine allows mounting one."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: the injected-error tests above cover this")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=700k", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.strip()}); the injected-error tests cover this")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


@pytest.mark.parametrize("commit_every", ["1000", "0"], ids=["full at a journal entry", "full at a commit"])
def test_collect_on_a_really_full_disk_exits_cleanly_and_the_rerun_after_freeing_space_completes(small_disk,
                                                                                                 commit_every):
    out = small_disk / "run.hdf5"
    command = [sys.executable, "-m", "training_ground.cli", "collect", "--task", "bread", "--episodes", "12",
               "--robots", "4", "--out", str(out), "--set", "max_steps=40", "--commit-every", commit_every]
    run = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).parent.parent, timeout=600)
    assert run.returncode == 2, run.stderr[-2000:]  # not 139: no segfault
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr, run.stderr[-2000:]
    error = [line for line in run.stderr.splitlines() if "error:" in line]
    assert len(error) == 1 and "no space left on the device of" in error[0], run.stderr[-2000:]
    assert "free space and rerun the same command" in error[0]
    safe = (stored_seeds(out) if out.exists() else set()) | journal_seeds(out)
    assert safe and safe == set(range(len(safe)))  # every finished episode is there, in seed order
    subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], check=True)
    again = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).parent.parent, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert stored_seeds(out) == set(range(12)) and inspect_dataset(out).problems == []
