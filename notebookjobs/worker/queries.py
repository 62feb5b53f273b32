"""The long reads the worker serves (``history``, ``stats``, ``nj.sql``, the schedules' state):
never under the database lock that the commits, ``status`` and ``counts`` need (SPEC §14).

Each runs on a cursor of its own (``Database.reader``), a snapshot of the queue as the last
commit left it, while the writer goes on committing on the main connection; each is stopped
at its time limit (``tables.Reader``), and all of them by the worker's stop (``stop``), so a
query can neither wedge the queue nor keep a stopping worker alive.

A large read (or a commit of large results: ``Writer``) leaves DuckDB's memory full of cached
blocks; ``shed_soon`` gives it back once no query runs (``Database.shed_memory``, with the
commits held for its ~100 ms: a memory limit lowered under a running query or commit would fail
it), after the reply, in a thread of its own.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from ..errors import StorageError, WorkerError
from ..store import Reader
from .core import Core

logger = logging.getLogger(__name__)

STOPPED = "the worker is stopping: the query was interrupted; run it again"
STOP_TRIES = 50  #: interrupts sent to each query at a stop, STOP_PAUSE_S apart, at most
STOP_PAUSE_S = 0.1


class Queries:
    """The queries running on the ``core``'s file; its lock (the commits') is held only to
    shed."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._lock = threading.Lock()  #: guards the set; taken after core.file(), never before
        self._running: set[Reader] = set()
        self._ended = threading.Condition(self._lock)
        self._stopping = False
        self._shed = False  #: a shed is due (a query ended, or large results were committed)
        self._shedder: threading.Thread | None = None

    def __len__(self) -> int:
        """How many queries run now."""
        with self._lock:
            return len(self._running)

    def shed_soon(self) -> None:
        """Give DuckDB's cached memory back, in a thread of its own, once no query runs (the
        last query to end does it then); nothing once the worker stops."""
        with self._lock:
            if self._stopping:
                return
            self._shed = True
            self._shedder = threading.Thread(target=self._shed_memory, name="notebookjobs-shed",
                                             daemon=True)
            self._shedder.start()

    def write(self, name: str, args: tuple[Any, ...], limit: float, path: Path) -> None:
        """Write the named table to ``path`` (Parquet) within ``limit`` seconds;
        ``QueryTimeoutError`` after it, ``WorkerError`` when a stop interrupted it."""
        with self.core.db.reader() as reader:
            with self._lock:
                if self._stopping:
                    raise WorkerError(STOPPED)
                self._running.add(reader)
            try:
                reader.write_table(name, args, limit, path)
            finally:
                with self._lock:
                    self._running.discard(reader)
                    last = not self._running
                    self._ended.notify_all()
        if last:
            self.shed_soon()

    def stop(self) -> None:
        """Refuse new queries and interrupt the running ones (from any thread; returns at once).
        DuckDB forgets an interrupt that comes before its query begins: the interrupts are
        sent again until every query has ended."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        threading.Thread(target=self._interrupt_all, name="notebookjobs-query-stop",
                         daemon=True).start()

    def close(self) -> None:
        """Stop (``stop``), and wait for a shed under way: the database closes next."""
        self.stop()
        with self._lock:
            shedder = self._shedder
        if shedder is not None:
            shedder.join()

    def _interrupt_all(self) -> None:
        for _ in range(STOP_TRIES):
            with self._lock:
                if not self._running:
                    return
                for reader in self._running:
                    reader.interrupt(STOPPED)
                self._ended.wait(STOP_PAUSE_S)

    def _shed_memory(self) -> None:
        with self.core.file() as db, self._lock:  # no commit, and no query, while it is low
            if self._running or not self._shed:
                return  # a query runs (the last to end sheds), or another shed did it
            self._shed = False
            try:
                db.shed_memory()
            except StorageError as exc:  # the memory stays cached: nothing else is affected
                logger.warning("could not give back the memory of a large read (%s)", exc)
