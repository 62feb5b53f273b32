"""The dispatch journal: an append-only file beside the queue where every new job is made
durable before ``dispatch()`` returns, without opening DuckDB (SPEC §13).

Opening the DuckDB file costs ~13 ms and its cheapest durable write ~1 ms; an ``fdatasync``ed
append of a few hundred bytes costs ~0.25 ms. So a dispatch appends one record here, under a
short ``flock`` of the journal, and returns; the running worker (told through its wake socket,
or noticing the file grow) moves the records into the queue with its group commit, and a
process that opens the queue file with no worker running moves them first (``store.schema``),
so every read sees every acknowledged dispatch. A file whose records have all reached the queue
is reset to its head alone.

The journal also hands out the job ids. Its head (``records``: the first record, rewritten in
place by every append) holds the highest id handed out, so the next id never goes back, even
when the file is cut below records already handed out (a cut keeps the head); and it says
where the last record starts, so that record is found and checked (header, length, CRC,
footer) without reading the file from its start. A crash in the middle of a write leaves a
torn record at the end (a prefix of it, or zeros where the disk had not written it yet): the
next appender cuts it off under the lock before it writes, so it is never replayed half (its
dispatch was never acknowledged).

``records``: how records are laid out and read back; ``payloads``: what a record holds.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import DiskFullError, StorageError
from ..system import durable, files, locks
from .payloads import (
    batch_payload,
    job_payload,
    jobs_of,
    journalled,
    readable_jobs,
    unreadable,
)
from .records import (
    BASE,
    BATCH,
    HEAD_SIZE,
    JOB,
    RESERVE,
    Damage,
    Head,
    Record,
    Survey,
    encode,
    footer_of,
    head_bytes,
    read,
    read_head,
    record_at,
    scan,
)

__all__ = ["BASE", "BATCH", "HEAD_SIZE", "JOB", "RESERVE", "Damage", "Head", "Journal", "NoBase",
           "Record", "Survey", "batch_payload", "encode", "footer_of", "job_payload", "jobs_of",
           "journalled", "read", "read_head", "readable_jobs", "scan", "unreadable"]

logger = logging.getLogger(__name__)


class NoBase(Exception):
    """The journal does not exist yet (or lost its records): the queue file must be opened
    once to write its base record (``store.schema.connect`` does)."""


class Journal:
    """The journal of the queue at ``db_path`` (``<db>.journal``, 0600)."""

    def __init__(self, db_path: Path) -> None:
        self.path = _journal_path(db_path)

    @contextmanager
    def locked(self) -> Iterator[int]:
        """The journal's descriptor, under its exclusive lock (appends are short: a waiter
        waits microseconds to a few ms)."""
        try:
            fd = files.open_private(self.path, os.O_RDWR)
        except FileNotFoundError as exc:  # no queue folder yet: the queue was never opened
            raise NoBase(f"{self.path.parent} does not exist yet") from exc
        except OSError as exc:
            raise StorageError(f"cannot open the dispatch journal {self.path}: {exc.strerror}; "
                               "set NOTEBOOKJOBS_DB to a file in a folder you can write") from exc
        try:
            locks.lock(fd)
            yield fd
        finally:
            os.close(fd)  # releases the lock

    # --- writing (under the lock) ------------------------------------------------------------

    def append(self, kind: int, count: int, payload: bytes = b"", *,
               written: Callable[[], object] | None = None) -> tuple[int, int]:
        """Append a record of ``count`` new ids, durable when this returns; (first, last) id.
        ``NoBase`` when the journal has no base yet. ``written`` is called once the record is
        in the file, before the head says so and before either is synced: a reader told then
        (the worker, by a datagram) reads it while it goes to the disk (~0.3 ms here), and
        syncs the journal itself before it commits what it read (``sync``)."""
        with self.locked() as fd:
            return self.append_locked(fd, kind, count, payload, written=written)

    def append_locked(
        self, fd: int, kind: int, count: int, payload: bytes = b"", *,
        written: Callable[[], object] | None = None,
    ) -> tuple[int, int]:
        """``append`` for a caller that holds the lock (``fd`` from ``locked``)."""
        head, end, last = self._tail(fd)
        first, new_last = last + 1, last + count
        _write_at(fd, end, encode(kind, first, new_last, payload))
        try:
            # Told before the head is rewritten: a reader of the records needs no head (it
            # reads on from where it stopped), and one system call less stands between the
            # dispatch and its start (traced: ~0.03-0.09 ms after an idle spell).
            if written is not None:
                written()
        finally:
            if head is not None:
                # After the record: a crash between the two leaves the head behind, and the
                # record itself then says how far the ids went (``_tail`` takes the higher).
                self._write_head(fd, head, last_id=new_last, tail=end)
            durable.sync(fd)
        return first, new_last

    def sync(self) -> None:
        """Make every record in the file durable: the worker's writer calls it before it
        commits jobs it read, which may have been read before their appender's own sync
        (``append``'s ``written``). Without it, a power cut could leave a job in the queue file
        whose id the journal hands out again. ``StorageError`` if the disk refuses."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return  # reset and removed: everything it held was committed
        except OSError as exc:
            raise StorageError(f"cannot open the dispatch journal {self.path}: "
                               f"{exc.strerror}") from exc
        try:
            durable.sync(fd)
        except OSError as exc:
            raise _write_error(f"cannot sync the dispatch journal {self.path}", exc) from exc
        finally:
            os.close(fd)

    def last_id(self, fd: int) -> int:
        """The highest id handed out (under the lock). A torn last record (a crash in the
        middle of its write) is cut off first. ``NoBase`` when there is no record."""
        return self._tail(fd)[2]

    def _tail(self, fd: int) -> tuple[Head | None, int, int]:
        """(the head, where the next record goes, the highest id handed out), under the lock,
        every byte before that place checked: what follows the last intact record is a torn
        write (appends happen under this lock), cut off here. ``NoBase`` for no record."""
        size = os.fstat(fd).st_size
        head = read_head(fd, size)
        last = record_at(fd, head.tail, size) if head and head.tail is not None else None
        if last is None:  # no head, an older one, or it does not point at an intact record
            last = record_at(fd, 0, size) if head else None
        highest = head.last_id if head else 0
        for item in scan(fd, last.end if last else 0, size):
            if isinstance(item, Record):
                last, highest = item, max(highest, item.last_id)
        if last is None:
            raise NoBase(f"{self.path} has no base record yet")
        if last.end < size:
            # Not a loss: the dispatch that wrote it never returned (said at INFO, so that a
            # notebook's dispatch does not print it; a worker's log has it)
            logger.info("cut a torn record off the end of the dispatch journal %s (bytes "
                        "%d..%d): a dispatch killed in the middle of its write", self.path,
                        last.end, size)
            os.ftruncate(fd, last.end)
            durable.sync(fd)
        return head, last.end, max(highest, last.last_id)

    def _write_head(self, fd: int, head: Head, *, last_id: int, tail: int | None = None,
                    applied: int | None = None) -> None:
        """Rewrite the head in place (in its own format: an older head keeps its length). A
        failure leaves the old head, which only makes the next append read further back."""
        if head.tail is None:
            data = encode(BASE, last_id, last_id)
        else:
            data = head_bytes(last_id, head.tail if tail is None else tail,
                               head.applied if applied is None else applied)
        try:
            os.pwrite(fd, data, 0)
        except OSError as exc:
            logger.warning("could not update the head of the dispatch journal %s: %s",
                           self.path, exc.strerror)

    def note_applied(self, applied: int) -> None:
        """Record in the head that the queue file holds every record up to id ``applied`` (the
        worker's writer, after a commit), so that a queue file lost later is known to have held
        jobs (``store.recovery``). Not synced: the next append's sync takes it along."""
        with self.locked() as fd:
            head = read_head(fd, os.fstat(fd).st_size)
            if head is not None and head.tail is not None and applied > head.applied:
                self._write_head(fd, head, last_id=head.last_id, applied=applied)

    def reset(self, fd: int, last_id: int) -> None:
        """Replace every record by the head alone, of ``last_id`` or the highest id handed out
        if that is more (under the lock; every job of the old records must be in the queue
        file, committed, before). The head is written over the old one before the file is cut
        to it: a crash between leaves records that are all in the queue already."""
        size = os.fstat(fd).st_size
        head = read_head(fd, size)
        last = max(last_id, head.last_id if head else 0)
        data = head_bytes(last, 0, last)
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
            durable.sync(fd)
        except OSError as exc:
            raise _write_error(f"cannot reset the dispatch journal {self.path}", exc) from exc

    def survey(self, fd: int) -> Survey:
        """What the journal holds (under the lock): its head, intact records, damaged bytes."""
        size = os.fstat(fd).st_size
        head = read_head(fd, size)
        survey = Survey(head)
        for item in scan(fd, head.size if head else 0, size):
            if isinstance(item, Record):
                survey.records.append(item)
            else:
                survey.damage.append(item)
        return survey

    def size(self) -> int:
        """The journal's length in bytes (0 when there is none)."""
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0


@functools.lru_cache(maxsize=64)
def _journal_path(db_path: Path) -> Path:
    """``<queue file>.journal`` (cached: every dispatch makes a ``Journal``; pathlib is slow)."""
    return db_path.with_name(db_path.name + ".journal")


def _write_at(fd: int, start: int, data: bytes) -> None:
    """One ``pwrite`` of the whole record at ``start`` (the end of what ``_tail`` checked; the
    lock is held; no ``lseek`` before it: a system call less before the worker is told); a
    short write is finished, a failed one cut off."""
    written = 0
    try:
        while written < len(data):
            written += os.pwrite(fd, data[written:], start + written)
    except OSError as exc:
        os.ftruncate(fd, start)  # no torn record from a full disk
        raise _write_error("cannot write the dispatch journal", exc) from exc


def _write_error(what: str, exc: OSError) -> StorageError:
    """A failed write of the journal: ``DiskFullError`` when the disk had no room."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"the disk is full: {what} ({exc.strerror}); free some space")
    return StorageError(f"{what}: {exc.strerror}")
