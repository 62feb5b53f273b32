"""The queue file's lock: one ``flock`` (``system.locks``) on a sidecar file decides who may
open it.

DuckDB lets one process at a time open a database file (SPEC §11). A running worker holds the
lock for its whole life; a client without a worker takes it for one transaction. A client
waiting for it keeps asking the worker's socket meanwhile (``wait``'s ``meanwhile``): a worker
that has just started holds the lock and answers there instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import StorageError, StoreBusyError
from ..system import files, locks

FIRST_PAUSE_S = 0.001  #: the first pause between tries: most transactions last a few ms
MAX_PAUSE_S = 0.02  #: the pause doubles up to this

LOCKED = object()  #: ``wait``'s answer when it got the lock
NOTHING = object()  #: what a ``meanwhile`` returns when it found nothing that ends the wait


def open_lock(path: Path) -> int:
    """A descriptor of the lock file (created 0600 in a 0700 folder); nothing is locked yet."""
    try:
        files.private_dir(path.parent)
        return files.open_private(path, os.O_RDWR)
    except OSError as exc:
        raise StorageError(f"cannot use the queue's folder {path.parent}: {exc.strerror}; set "
                           "NOTEBOOKJOBS_DB to a file in a folder you can write") from exc


def try_lock(fd: int) -> bool:
    """Take the lock if nobody holds it; whether we got it (closing ``fd`` releases it)."""
    return locks.try_lock(fd)


def is_free(settings: Settings) -> bool:
    """Whether no process holds the queue's lock right now (a running worker always does)."""
    fd = open_lock(settings.lock_path)
    try:
        return try_lock(fd)
    finally:
        os.close(fd)  # releases the lock if we got it


def busy(settings: Settings) -> StoreBusyError:
    """The error of a wait that ran out."""
    return StoreBusyError(
        f"the queue {settings.db_path} stayed locked by another process for "
        f"{settings.lock_timeout:g} s; wait for it to finish, or raise NOTEBOOKJOBS_LOCK_TIMEOUT")


def wait(fd: int, timeout: float, on_timeout: Callable[[], Exception],
         meanwhile: Callable[[], Any] = lambda: NOTHING) -> Any:
    """Take the lock on ``fd``, trying again with a growing pause; ``on_timeout()`` is raised
    after ``timeout`` seconds. Between tries ``meanwhile()`` may end the wait with a result (or
    raise); it returns NOTHING to go on. Returns LOCKED once the lock is held."""
    deadline = time.monotonic() + timeout
    pause = FIRST_PAUSE_S
    while not try_lock(fd):
        if time.monotonic() >= deadline:
            raise on_timeout()
        time.sleep(pause)
        pause = min(pause * 2, MAX_PAUSE_S)
        outcome = meanwhile()
        if outcome is not NOTHING:
            return outcome
    return LOCKED
