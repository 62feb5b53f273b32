"""The running worker's side of the dispatch journal (``notebookjobs.journal``): new records
into the in-memory queue, and the journal reset once they are all in the queue file.

Records are read without the journal's lock (an appender holds it only for its own write, and
``journal.read`` stops before a record still being written); their jobs join ``QueueState`` as
new, and the writer's next group commit inserts them. When every record read is committed and
nothing was appended since, the writer resets the journal to its base record (``compact``), so
it stays small and a restart replays nothing twice.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from .. import journal
from ..store.replay import BASE_ONLY
from .state import QueueState

logger = logging.getLogger(__name__)

#: the journal is reset when it is at least this long and all of it is in the queue file
COMPACT_BYTES = 1024 * 1024


class Intake:
    """What of the journal this worker has read, and its bookkeeping for the writer."""

    def __init__(
        self, log: journal.Journal, state: QueueState, state_lock: threading.RLock
    ) -> None:
        self.journal = log
        self.state, self.state_lock = state, state_lock
        #: where the next unread record starts (the worker's start reset it)
        self.offset = BASE_ONLY
        self.last_id = 0  #: the last id of the records read
        self._lock = threading.Lock()  # the loop and the service's threads both read

    def poll(self) -> int:
        """Read the records appended since the last call into the in-memory queue; how many
        jobs they held. Cheap when nothing was appended (one ``stat``)."""
        with self._lock:
            size = self.journal.size()
            if size == self.offset:
                return 0
            if size < self.offset:  # the file was removed or cut under us: read it anew
                self.offset = 0
            try:
                fd = os.open(self.journal.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return 0
            added = 0
            try:
                for record in journal.read(fd, self.offset):
                    self.offset = record.end
                    if record.last_id <= self.last_id:
                        continue  # read before the file was cut (or a base)
                    jobs = journal.readable_jobs(record, datetime.now(UTC))
                    with self.state_lock:
                        for job in jobs:
                            self.state.add(job, new=True)
                        self.state.ingested(record.last_id)
                    self.last_id = record.last_id
                    added += len(jobs)
            finally:
                os.close(fd)
            return added

    def append(self, kind: int, count: int, payload: bytes,
               stored_last: Callable[[], int]) -> tuple[int, int]:
        """Append a record of ``count`` new ids for the worker (``journal.Journal.append``). A
        journal removed under the running worker gets its base back first: the highest id the
        queue file (``stored_last()``; the caller makes it safe to read) or this worker saw."""
        try:
            return self.journal.append(kind, count, payload)
        except journal.NoBase:
            last = max(stored_last(), self.last_id)
            with self.journal.locked() as fd:
                try:
                    return self.journal.append_locked(fd, kind, count, payload)
                except journal.NoBase:
                    self.journal.reset(fd, last)
                    return self.journal.append_locked(fd, kind, count, payload)

    def reserve(self, count: int, stored_last: Callable[[], int]) -> list[int]:
        """``count`` new ids for jobs the worker writes into the queue file itself, in one
        transaction with what decides them (a dispatch decided on the queue's state, a
        schedule's ticks): a RESERVE record, so that ids stay unique across every process that
        hands them out (``journal``). Its jobs are not read back from the journal."""
        first, last = self.append(journal.RESERVE, count, b"", stored_last)
        return list(range(first, last + 1))

    def compact(self, applied: int) -> bool:
        """Reset the journal to its base when it is long, every record read is in the queue
        file (``applied``: the highest id committed) and nothing was appended since; whether
        it was reset. Called by the writer after a commit."""
        with self._lock:
            if self.offset < COMPACT_BYTES or applied < self.last_id:
                return False
            with self.journal.locked() as fd:
                if os.fstat(fd).st_size != self.offset:
                    return False  # appended meanwhile: next time
                self.journal.reset(fd, self.last_id)
                self.offset = BASE_ONLY
        return True
