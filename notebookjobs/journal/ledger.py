"""The id ledger: the one owner of "the last id handed out" and "the last id applied" (SPEC §14:
ids never go back or repeat, even after a cut journal or a truncated queue file).

- **Handed out.** Every new id is a record appended to the dispatch journal under its lock
  (``take``: a dispatch's JOB or BATCH record, or a RESERVE for jobs stored another way); the
  journal's head keeps the highest one, also after its records are cut or reset. The queue
  file keeps a copy, written by whoever opens it (``store.replay``), so a journal lost later
  numbers no job again.
- **Applied.** How far the queue file holds the journal's records: recorded in the file by
  the commit that brings them (``JobStore.set_ids``), so a replay inserts nothing twice; and
  told to the journal's head after it (``Journal.note_applied``), so a rebuild knows the file
  held them (``store.recovery``).

A ``Ledger`` is one process's side of it. A client's takes ids and knows nothing more. The
running worker's also knows the highest id it has seen (the file's at its start, what it took,
what it read), so a journal removed under it gets its base back from there; and it counts
what it has read of the journal into memory (``read``) and what its commits applied
(``applied``): the writer asks it what a commit records (``unrecorded``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..errors import StorageError
from . import Journal, NoBase
from .records import RESERVE

logger = logging.getLogger(__name__)


class Ledger:
    """The ids of the queue whose journal is ``log``. ``known``: the highest id this process
    knows was handed out (the worker's start: the queue file's); None for a process that knows
    none (a client), which never lays a base for a journal that lost its own."""

    def __init__(self, log: Journal, known: int | None = None) -> None:
        self.journal = log
        self.known = known
        #: the last id of the journal's records read into memory (the worker's intake; read and
        #: written under the worker's state lock, with the jobs of those records)
        self.read = 0
        #: the highest id whose record the queue file holds, as this process's commits recorded
        self.applied = 0
        self._noted = 0  #: the highest ``applied`` the journal's head was told

    # --- handed out -----------------------------------------------------------------------------

    def take(self, kind: int, count: int, payload: bytes = b"", *,
             written: Callable[[], object] | None = None) -> tuple[int, int]:
        """A record of ``count`` new ids, durable when this returns; (first, last) id
        (``Journal.append``, ``written`` as there). A journal without a base gets one from
        what this process knows first; ``NoBase`` for one that knows nothing."""
        try:
            first, last = self.journal.append(kind, count, payload, written=written)
        except NoBase:
            if self.known is None:
                raise
            with self.journal.locked() as fd:
                first, last = self.take_locked(fd, kind, count, payload, written=written,
                                               base=max(self.known, self.read))
        return first, self._saw(last)

    def take_locked(self, fd: int, kind: int, count: int, payload: bytes = b"", *,
                    written: Callable[[], object] | None = None,
                    base: int | None = None) -> tuple[int, int]:
        """``take`` for a caller that holds the journal's lock (``fd``); a journal without a
        base gets one of ``base`` first (None: ``NoBase``)."""
        try:
            return self.journal.append_locked(fd, kind, count, payload, written=written)
        except NoBase:
            if base is None:
                raise
            logger.info("the dispatch journal %s had no base: ids go on after %d",
                        self.journal.path, base)
            self.journal.reset(fd, base)
            return self.journal.append_locked(fd, kind, count, payload, written=written)

    def know(self, last_id: int) -> None:
        """``last_id`` was handed out (the queue file's record of it, read by the worker at
        its start): a base laid for a journal lost from now on starts above it."""
        self.known = max(self.known or 0, last_id)

    def reserve(self, count: int) -> list[int]:
        """``count`` new ids for jobs stored straight into the queue file (a foreground run, a
        dispatch decided on the queue's state, a schedule's ticks): a RESERVE record, whose
        jobs are not read back from the journal."""
        first, last = self.take(RESERVE, count)
        return list(range(first, last + 1))

    def _saw(self, last_id: int) -> int:
        if self.known is not None:
            self.known = max(self.known, last_id)
        return last_id

    # --- read and applied (the running worker) ---------------------------------------------------

    def read_up_to(self, last_id: int) -> None:
        """The journal's records up to ``last_id`` are in memory (under the state lock, with
        their jobs)."""
        self.read = last_id
        self._saw(last_id)

    def unrecorded(self, applied: int) -> int | None:
        """What a commit of the changes taken with ``applied`` (``read`` then) records as
        applied: ``applied``, or None when the file has it already (a drain with no new
        dispatches spent 9 % of the worker's py-spy samples rewriting the same value)."""
        return None if applied == self.applied else applied

    def committed(self, applied: int) -> None:
        """A commit made the file hold every record up to ``applied``: told to the journal's
        head too (a hint for a rebuild; not synced, the next append takes it along)."""
        self.applied = applied
        if applied <= self._noted:
            return
        try:
            self.journal.note_applied(applied)
        except (NoBase, StorageError) as exc:  # a hint: the next commit tells again
            logger.warning("could not note the committed records in the journal: %s", exc)
        else:
            self._noted = applied
