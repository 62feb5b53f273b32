"""The worker's core: the jobs it holds in memory (``QueueState``), the queue file's one
connection (``Database``), and the two locks that guard them, with the order they are taken in
kept here, once, instead of by every part that uses them.

Every thread of the worker (the loop, the writer, the server's, the schedules' ticks) reaches
the two through these scopes:

- ``memory()``: the jobs in memory, under the state lock (re-entrant; held briefly, never
  across a wait for the disk);
- ``file()``: the connection, under the database lock (DuckDB's connection serves one thread at
  a time); when a thread needs both, it takes this one first and ``memory()`` inside it. Taken
  inside ``memory()`` it raises ``RuntimeError``: two threads taking them in both orders would
  deadlock, so the wrong order fails at once, in the thread that took it;
- ``transaction()``: ``file()`` with a transaction on it (the ``JobStore``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .state import QueueState

if TYPE_CHECKING:  # the loop imports this module; it never loads DuckDB (``main.Worker.run``)
    from ..store import Database, JobStore


class Core:
    """The worker's ``state`` and ``db`` with their locks (module docstring)."""

    def __init__(self, db: Database, state: QueueState | None = None) -> None:
        self.db = db
        self.state = state if state is not None else QueueState()
        self._db_lock = threading.Lock()
        self._state_lock = threading.RLock()
        self._held = threading.local()  #: ``depth``: this thread's open ``memory()`` scopes

    @contextmanager
    def memory(self) -> Iterator[QueueState]:
        """The jobs in memory, under the state lock."""
        with self._state_lock:
            held = self._held
            held.depth = getattr(held, "depth", 0) + 1
            try:
                yield self.state
            finally:
                held.depth -= 1

    @contextmanager
    def file(self) -> Iterator[Database]:
        """The connection, under the database lock; never inside ``memory()``."""
        if getattr(self._held, "depth", 0):
            raise RuntimeError("the database lock is taken before the state lock, never "
                               "inside it (Core.file() within Core.memory())")
        with self._db_lock:
            yield self.db

    @contextmanager
    def transaction(self) -> Iterator[JobStore]:
        """A transaction on the connection, under the database lock (``file()``)."""
        with self.file() as db, db.transaction() as job_store:
            yield job_store
