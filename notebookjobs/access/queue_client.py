"""How a process reaches the queue (SPEC §11): the one place that chooses the path,
``QueueClient``, for every operation of the table (``access.operations``).

- While a worker runs, it alone opens the DuckDB file; every other process sends its calls
  over the worker's Unix socket (``remote.RemoteQueue``).
- Without a worker, a client takes the file's lock (``lock``), opens the file for one
  transaction (``StoreQueue`` over a ``JobStore``) and closes it. The worker holds that lock for
  its whole life, so a client waiting for the lock also keeps trying the socket: a worker that
  has just started answers there.
- A read of a queue that does not exist (no file, no journal: nothing was ever stored in it)
  creates nothing, not even its folder: it is answered by an empty queue in memory.
  ``store`` (DuckDB) is imported only on the file's path: a client the worker serves does
  without it (SPEC §7, the CLI's figures of §13).

Every way in carries out the operations of the table: ``access.meaning.StoreQueue`` on an open
store; ``remote.RemoteQueue`` over the socket; the worker's own service (``worker.service``),
which keeps pending and running jobs in memory. The same call gives the same answer on every
path.
"""

from __future__ import annotations

import os
from typing import Any

from ..config import Settings
from ..data import datafiles
from ..journal import Journal, NoBase
from ..journal.ledger import Ledger
from . import lock, socketdir, wake
from .meaning import StoreQueue
from .operations import ELSEWHERE, Entry, Operation, Operations
from .remote import NotServed, RemoteQueue


class QueueClient(Operations):
    """Every operation of the table for a client process: through the running worker if one
    answers, else on the file under its lock (SPEC §11); a dispatch into the journal first,
    with or without a worker. ``used_worker`` says which path the last call took (a dispatch
    that found no worker starts one, with autostart)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.used_worker = False
        self._remote = RemoteQueue(settings)
        self._ledger = Ledger(Journal(settings.db_path))

    def exists(self) -> bool:
        """Whether anything was ever stored in this queue: its file or its journal is there."""
        return self.settings.db_path.exists() or self._ledger.journal.path.exists()

    def perform(self, op: Operation[..., Any], *args: Any) -> Any:
        """``op`` with these arguments: into the journal when it goes there (durable when this
        returns, without opening the queue file: SPEC §13), else by ``_route``."""
        answer = op.through_journal(args, self._append)
        return self._route(op, args) if answer is ELSEWHERE else answer

    def _route(self, op: Operation[..., Any], args: tuple[Any, ...]) -> Any:
        """``op`` through the worker, or on the file when no worker takes it (once a stopping
        worker has let go). An operation that stores no new job, on a queue that does not
        exist, gets an empty queue's answer."""
        def ask_worker() -> Any:
            try:
                return self._remote.perform(op, *args)
            except NotServed:
                return lock.NOTHING

        result = ask_worker()
        if result is not lock.NOTHING:
            self.used_worker = True
            return result
        from .. import store  # DuckDB: only on the file's path

        assert op.meaning is not None  # the worker's own operations are not routed
        if not op.new_jobs and not self.exists():
            # Opening it would create the file and its folder (a mistyped $NOTEBOOKJOBS_DB
            # would become a new queue): an empty one in memory answers the same.
            self.used_worker = False
            with store.empty() as empty:
                return op.meaning(StoreQueue(empty, self._ledger), *args)
        fd = lock.open_lock(self.settings.lock_path)
        try:
            result = lock.wait(fd, self.settings.lock_timeout,
                               lambda: lock.busy(self.settings), ask_worker)
            if result is lock.LOCKED:
                self.used_worker = False
                if op.alone is not None:
                    return op.alone(self.settings.db_path, *args)
                with store.transaction(self.settings.db_path) as job_store:
                    return op.meaning(StoreQueue(job_store, self._ledger,
                                                 datafiles.data_dir(self.settings.db_path)),
                                      *args)
        finally:
            os.close(fd)  # closing the descriptor releases the lock
        self.used_worker = True
        return result

    def _poke(self) -> None:
        """Tell the running worker that the journal grew (whether one runs: ``used_worker``),
        as soon as the record is written: it reads the record while the append syncs it."""
        self.used_worker = wake.poke(socketdir.wake_path(self.settings))

    def _append(self, entry: Entry) -> tuple[int, int] | None:
        """The journal record ``entry``; (first, last) id. None when the journal has no base
        record and the queue file exists: opening the file writes the base (the caller then
        goes through the worker or the file)."""
        kind, count, payload = entry.kind, entry.count, entry.payload
        try:
            return self._ledger.take(kind, count, payload, written=self._poke)
        except NoBase:
            pass
        # A queue whose file does not exist yet starts at id 1: its journal gets a base of 0
        # and the record, and the file is created later by whoever opens it first, which
        # replays the journal as it does any record (creating it costs ~1 s: a first
        # dispatch must not). Decided under the queue's lock, so that no worker runs and no
        # process creates the file meanwhile; a lock held by someone means: not new.
        fd = lock.open_lock(self.settings.lock_path)
        try:
            if not lock.try_lock(fd) or self.settings.db_path.exists():
                return None
            with self._ledger.journal.locked() as journal_fd:
                return self._ledger.take_locked(journal_fd, kind, count, payload,
                                                written=self._poke, base=0)
        finally:
            os.close(fd)  # releases the lock
