"""How a process reaches the queue (SPEC §11): the one place that chooses the path.

Without a worker, a client takes an exclusive ``fcntl.flock`` on a sidecar lock file, opens the
DuckDB file for one transaction and closes it; other processes wait their turn, so concurrent
notebooks and CLIs lose nothing. (The worker issue adds the other path here: while a worker
runs, requests go to it over its Unix socket.)
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from . import store
from .config import Settings
from .errors import StoreBusyError

logger = logging.getLogger(__name__)

_FIRST_BACKOFF_S = 0.001  # lock polling starts fast: most transactions last a few ms
_MAX_BACKOFF_S = 0.02


@contextmanager
def file_lock(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive flock on ``path``, waiting up to ``timeout`` seconds for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        pause = _FIRST_BACKOFF_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"the queue {path.with_suffix('')} stayed locked by another process for "
                        f"{timeout:g} s; wait for it to finish, or raise NOTEBOOKJOBS_LOCK_TIMEOUT"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, _MAX_BACKOFF_S)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def transaction(settings: Settings) -> Iterator[store.JobStore]:
    """One transaction on the queue, with exclusive access to its file."""
    with file_lock(settings.lock_path, settings.lock_timeout):
        with store.transaction(settings.db_path) as job_store:
            yield job_store


def call(settings: Settings, operation: str, *args: Any) -> Any:
    """Run one ``JobStore`` operation in its own transaction and return its result."""
    with transaction(settings) as job_store:
        return getattr(job_store, operation)(*args)
