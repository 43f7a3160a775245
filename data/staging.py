"""Folders written whole or not at all: an export is made in a hidden temporary folder beside its place and renamed
into place at the end, so a failure at any point (bad data, a full disk, Ctrl-C) leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError
from .dataset import StorageError, storage_errno


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the ones created, innermost first (the order to remove them in)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
    return missing


@contextmanager
def staged_folder(final: Path, what: str):
    """Yield a new temporary folder beside ``final``, which becomes ``final`` when the block ends without an error.

    ``final`` may be missing or an empty folder. On an error the temporary folder goes, and so do the parents made
    for it; an OSError of the storage becomes a StorageError saying that nothing was written (``what``: the thing
    written, for the message)."""
    final = Path(final).resolve()
    created = _make_parents(final.parent)
    temporary = None
    try:
        temporary = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        yield temporary
        if final.exists() and (not final.is_dir() or any(final.iterdir())):
            raise InputError(f"{final} appeared while exporting; it was left as it is")
        os.rename(temporary, final)  # over an empty folder too
    except BaseException as error:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        for folder in created:
            try:
                folder.rmdir()
            except OSError:
                break
        if isinstance(error, OSError):
            number = storage_errno(error)
            reason = os.strerror(number) if number is not None else str(error)
            raise StorageError(f"cannot write {what} {final}: {reason}; nothing was written", number) from None
        raise


__all__ = ["staged_folder"]
