"""Files venus-ems creates (logs, state): readable by the owner only; config file checks.

State and log files are created ``0600`` and directories ``0700`` whatever the umask: a
log may hold host names and device replies, state files the energy history of a household.
Directories that already exist are left as they are (they may be shared, e.g. ``/data/log``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO, Any

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "make_private_dir",
    "open_private",
    "readable_by_others",
]

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents, each ``0700``; OSError on failure."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # created meanwhile by someone else: theirs to keep
        os.chmod(directory, DIR_MODE)  # mkdir's mode is filtered by the umask


def open_private(
    path: Path, mode: str = "wb", *, encoding: str | None = None, errors: str | None = None
) -> IO[Any]:
    """Open ``path`` for writing (``"wb"``, ``"ab"``, ``"a"``, ``"w"``), created ``0600``.

    An existing file of ours that others can read is tightened to ``0600`` first.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, FILE_MODE)
        return open(fd, mode, encoding=encoding, errors=errors)
    except BaseException:
        os.close(fd)
        raise


def readable_by_others(path: Path) -> int | None:
    """The permission bits of ``path`` if its group or others may read it, else None."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return mode if mode & 0o044 else None
