"""DuckDB's errors as ours: one place that knows how DuckDB says the disk is full.

DuckDB reports a failed write as an ``IOException`` whose text carries the system's message
(``Could not write file "...": No space left on device``); no errno comes with it. A full
disk is not a job's fault: the worker keeps what it could not write and tries again
(``worker.writer``), so it is told apart here, once, as ``DiskFullError``.
"""

from __future__ import annotations

import errno
import os

import duckdb

from ..errors import DiskFullError, StorageError

#: the system's messages for "no room": a full disk, a full quota, the file size limit
_NO_ROOM = tuple(os.strerror(code) for code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG))


def no_room(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or quota, or file size limit) had no room."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return True
    return any(text in str(exc) for text in _NO_ROOM)


def storage_error(what: str, exc: duckdb.Error | OSError) -> StorageError:
    """``what`` failed because of ``exc``: ``DiskFullError`` when there was no room."""
    if no_room(exc):
        return DiskFullError(f"{what}: the disk is full ({exc}); free some space")
    return StorageError(f"{what}: {exc}")
