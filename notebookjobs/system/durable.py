"""Durable writes: the one call that waits until a file's data is on the disk.

Linux: ``fdatasync`` (the data and the size, not the times: ~half the cost of ``fsync`` on the
journal's appends). macOS: ``fsync`` only reaches the drive's cache, and ``fcntl(F_FULLFSYNC)``
is what asks the drive to write it (macOS has no ``fdatasync``; SQLite and DuckDB do the same).
Elsewhere, and in the forced portable mode on Linux (which has no F_FULLFSYNC): ``fsync``.
"""

from __future__ import annotations

import os

from . import portable

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

_FULLFSYNC: int | None = getattr(fcntl, "F_FULLFSYNC", None)  # macOS only


def sync(fd: int) -> None:
    """Wait until what was written through ``fd`` is on the disk; OSError as ``fsync`` raises
    (a full disk or an I/O error: the caller decides)."""
    if not portable():
        os.fdatasync(fd)
        return
    if _FULLFSYNC is not None:
        try:
            fcntl.fcntl(fd, _FULLFSYNC)
            return
        except OSError:  # some file systems (network, FUSE) refuse it: fsync is what is left
            pass
    os.fsync(fd)
