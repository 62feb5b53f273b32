"""The running worker's side of the dispatch journal (``notebookjobs.journal``): new records
into the in-memory queue, and the journal reset once they are all in the queue file.

Records are read without the journal's lock (an appender holds it only for its own write, and
``journal.read`` stops before a record still being written); their jobs join ``QueueState`` as
new, and the writer's next group commit inserts them. When every record read is committed and
nothing was appended since, the writer resets the journal to its head (``compact``), so it
stays small and a restart replays nothing twice.

A journal cut (or removed) under the worker is noticed: it is shorter than what was read, or
the last record read is no longer where it was. It is read again from its head; the records
the worker had read are known (their ids are not above the last one read: ``Ledger.read``),
and appenders have gone on above every id handed out (the head keeps it). Nothing is skipped
in silence: the cut, damaged bytes, and a record whose ids were handed out before are
reported (``Problems``, so ``worker_status()`` and worker.log say it).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from datetime import UTC, datetime

from .. import journal
from ..journal.ledger import Ledger
from .core import Core
from .problems import Problems

logger = logging.getLogger(__name__)

#: the journal is reset when it is at least this long and all of it is in the queue file
COMPACT_BYTES = 1024 * 1024
#: the kind of problem (``Problems``) the journal's faults are reported under
PROBLEM = "journal"


class Intake:
    """What of the journal this worker has read, and its bookkeeping for the writer."""

    def __init__(self, ledger: Ledger, core: Core, problems: Problems | None = None) -> None:
        self.ledger = ledger  #: the ids: the last read in is ``ledger.read``
        self.journal = ledger.journal
        self.core = core  #: whose memory the jobs read in join
        self.problems = problems or Problems()
        #: where the next unread record starts (the worker's start reset the journal to its head)
        self.offset = journal.HEAD_SIZE
        self._footer = b""  #: the last bytes read (just before ``offset``), to see a cut by
        #: read anew after a cut: records up to ``ledger.read`` are known
        self._rereading = False
        self._held = False  #: no reset: the queue file was cut, the journal is what is left
        self._lock = threading.Lock()  # the loop and the service's threads both read
        self._name = os.fspath(self.journal.path)
        #: the journal's descriptor, kept between polls, and which file it is (device, inode)
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None
        #: closes ``_fd`` when the intake is dropped (the worker's intake lives as long as it)
        self._closer: weakref.finalize | None = None

    def poll(self) -> int:
        """Read the records appended since the last call into the in-memory queue; how many
        jobs they held. Cheap when nothing was appended (one ``stat``)."""
        with self._lock:
            try:
                info = os.stat(self._name)
            except FileNotFoundError:
                return 0
            if info.st_size == self.offset and (info.st_dev, info.st_ino) == self._identity:
                return 0  # (a journal removed and made anew may have the same length)
            opened = self._descriptor(info)
            if opened is None:
                return 0
            fd, size = opened
            if size < self.offset or not self._still_there(fd):
                self._cut()
            return self._read_on(fd, size)

    def _descriptor(self, info: os.stat_result) -> tuple[int, int] | None:
        """A read-only descriptor of the journal ``info`` describes, and its length (read up to
        there: a record appended since is told by its own datagram); None when it is gone. Kept
        from one poll to the next while the file is the same one (a reset cuts it in place),
        so that a dispatch's reading costs no ``open`` and ``close`` (traced: the intake's
        reading was ~0.3 ms of dispatch -> start after an idle spell); opened again when the
        journal was removed and made anew."""
        identity = (info.st_dev, info.st_ino)
        if self._fd is not None and identity == self._identity:
            return self._fd, info.st_size
        self.close()
        try:
            fd = os.open(self._name, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        opened = os.fstat(fd)  # replaced between the stat and the open: this one is read
        self._fd, self._identity = fd, (opened.st_dev, opened.st_ino)
        self._closer = weakref.finalize(self, os.close, fd)
        return fd, opened.st_size

    def close(self) -> None:
        """Let go of the journal's descriptor (the next poll opens it again)."""
        if self._closer is not None:
            self._closer()
        self._fd, self._identity, self._closer = None, None, None

    def _still_there(self, fd: int) -> bool:
        """Whether the last record read still ends where it did."""
        if not self._footer:
            return True
        at = self.offset - len(self._footer)
        return os.pread(fd, len(self._footer), at) == self._footer

    def _cut(self) -> None:
        self.problems.report(PROBLEM, (
            f"the dispatch journal {self.journal.path} was cut (or removed) under the worker: "
            "the dispatches it held past the cut that the worker had not read yet are lost "
            "(those it had read are kept, and no id is handed out twice)"))
        self.offset, self._footer, self._rereading = journal.HEAD_SIZE, b"", True

    def _read_on(self, fd: int, size: int) -> int:
        added = 0
        for item in journal.scan(fd, self.offset, size):
            if isinstance(item, journal.Damage):
                self.problems.report(PROBLEM, item.describe(self.journal.path))
                continue
            self.offset, self._footer = item.end, journal.footer_of(item)
            if item.kind == journal.BASE:
                continue
            if item.first_id <= self.ledger.read:
                if not self._rereading or item.last_id > self.ledger.read:
                    self.problems.report(PROBLEM, (
                        f"a record of ids {item.first_id}..{item.last_id} in the dispatch "
                        f"journal {self.journal.path} reuses ids handed out before (written by "
                        "other means, or by an older notebookjobs after a cut): not applied, "
                        "its dispatches are lost"))
                continue  # (read again after a cut: known)
            self._rereading = False
            jobs = journal.readable_jobs(item, datetime.now(UTC))
            with self.core.memory() as state:
                for job in jobs:
                    state.add(job, new=True)
                self.ledger.read_up_to(item.last_id)
            added += len(jobs)
        return added

    def hold(self) -> None:
        """Reset the journal no more: the queue file was found cut, and the journal's records
        are what a rebuild of it has (``store.recovery``)."""
        self._held = True

    def compact(self, applied: int) -> bool:
        """Reset the journal to its head when it is long, every record read is in the queue
        file (``applied``: the highest id committed) and nothing was appended since; whether
        it was reset. Called by the writer after a commit."""
        with self._lock:
            last = self.ledger.read
            if self._held or self.offset < COMPACT_BYTES or applied < last:
                return False
            with self.journal.locked() as fd:
                if os.fstat(fd).st_size != self.offset:
                    return False  # appended meanwhile: next time
                self.journal.reset(fd, last)
                self.offset, self._footer = journal.HEAD_SIZE, b""
        return True
