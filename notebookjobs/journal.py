"""The dispatch journal: an append-only file beside the queue where every new job is made
durable before ``dispatch()`` returns, without opening DuckDB (SPEC §13).

Opening the DuckDB file costs ~13 ms and its cheapest durable write ~1 ms; an ``fdatasync``ed
append of a few hundred bytes costs ~0.25 ms. So a dispatch appends one record here, under a
short ``flock`` of the journal, and returns; the running worker (told through its wake socket,
or noticing the file grow) moves the records into the queue with its group commit, and a
process that opens the queue file with no worker running moves them first (``store.schema``),
so every read sees every acknowledged dispatch.

The journal also hands out the job ids. A file whose records have all reached the queue is
reset to its head alone.

A record, written with a single ``write``::

    header  magic "NJR1", kind (1 byte), first id, last id (8 bytes each), payload length,
            CRC-32 of the payload (4 bytes each)
    payload UTF-8 JSON (jobs), or nothing (reserve)
    footer  last id (8 bytes), magic "NJRE"

The first record is the journal's *head*, a ``base`` record rewritten in place by every
append: its ids are the highest id handed out, its payload says where the last record starts
and the highest id whose record the queue file holds (``Head``). So the next id never goes
back, even when the file is cut below records already handed out (a cut keeps the head), and
the last record is found and checked (header, length, CRC, footer) without reading the file
from its start. A head written by an older version (no payload) still works: the last record
is then found by reading from the start, and the head's ids are still kept up to date.

A crash in the middle of a write leaves a torn record at the end: a prefix of it, or zeros
where the disk had not written it yet. Its footer may even look right (a job's arguments may
end with any bytes), so nothing is trusted that its header, length and CRC do not confirm.
Readers stop before a torn tail (an appender may be writing it right now: it is read next
time), and the next appender cuts it off under the lock before it writes: it is never replayed
half (its dispatch was never acknowledged). Bytes that do not hold a record *followed by*
intact records (a file damaged by other means, or by an older version that appended past a
torn record) are skipped and reported (``Damage``), and the records after them are read.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from . import files, transitions, validate, wire
from .errors import DiskFullError, InvalidArgumentsError, StorageError
from .models import Job, JobBatch, JobSpec, RetryPolicy

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("<4sBQQII")
_FOOTER = struct.Struct("<Q4s")
_MAGIC, _END = b"NJR1", b"NJRE"
#: the head's payload: where the last record starts (0: the head is the only record), and the
#: highest id whose record the queue file holds (0: it holds none of the journal's)
_HEAD = struct.Struct("<QQ")
#: the length of the head, and of a journal that holds nothing else
HEAD_SIZE = _HEADER.size + _HEAD.size + _FOOTER.size
#: no payload of ours is longer (``_limited``); a "record" that says so is none
_MAX_PAYLOAD = wire.MAX_REQUEST_BYTES
#: how much is read at a time while looking for the next intact record past damaged bytes
_SEEK_CHUNK = 1024 * 1024
#: a record is read with one ``pread`` of this much (a job's record is a few hundred bytes),
#: then the rest of a longer one
_FIRST_READ = 4096

BASE = ord("B")  #: the journal's head: the highest id handed out so far
JOB = ord("J")  #: one job (first id == last id)
BATCH = ord("M")  #: jobs of one target sharing their options (dispatch_many)
RESERVE = ord("R")  #: ids taken for jobs stored another way (a foreground `run`)
_KINDS = frozenset({BASE, JOB, BATCH, RESERVE})


class NoBase(Exception):
    """The journal does not exist yet (or lost its records): the queue file must be opened
    once to write its base record (``store.schema.connect`` does)."""


@dataclass(frozen=True)
class Record:
    """One record read back."""

    kind: int
    first_id: int
    last_id: int
    payload: bytes
    end: int  #: offset just past it

    @property
    def start(self) -> int:
        return self.end - _HEADER.size - len(self.payload) - _FOOTER.size

    def data(self) -> Any:
        """The payload's JSON (``ValueError`` when it is not JSON)."""
        return json.loads(self.payload)


@dataclass(frozen=True)
class Damage:
    """Bytes from ``start`` to ``end`` that hold no intact record, with one after them."""

    start: int
    end: int

    def describe(self, path: Path) -> str:
        return (f"bytes {self.start}..{self.end} of the dispatch journal {path} hold no intact "
                "record (damaged by other means, or by an older notebookjobs that appended past "
                "a torn record); skipped: a dispatch they held, if any, is lost")


@dataclass(frozen=True)
class Head:
    """The journal's first record, as read back."""

    last_id: int  #: the highest id handed out (as far as the head knows)
    tail: int | None  #: where the last record starts; None: not said (an older version's head)
    applied: int  #: the highest id whose record the queue file holds (an older head: its id)
    size: int  #: its length: the first record after it starts there


@dataclass
class Survey:
    """Everything the journal holds, read under its lock (``Journal.survey``)."""

    head: Head | None
    records: list[Record] = field(default_factory=list)
    damage: list[Damage] = field(default_factory=list)

    @property
    def last_id(self) -> int:
        """The highest id handed out: the head's, or a record's past it."""
        return max([self.head.last_id if self.head else 0, *(r.last_id for r in self.records)])

    @property
    def jobs(self) -> list[Record]:
        """The records that hold jobs (JOB and BATCH)."""
        return [r for r in self.records if r.kind in (JOB, BATCH)]


def encode(kind: int, first_id: int, last_id: int, payload: bytes = b"") -> bytes:
    """The bytes of one record."""
    return (_HEADER.pack(_MAGIC, kind, first_id, last_id, len(payload), zlib.crc32(payload))
            + payload + _FOOTER.pack(last_id, _END))


def footer_of(record: Record) -> bytes:
    """The record's last bytes: a reader that finds them again where it read them knows the
    file was not cut and rewritten under it."""
    return _FOOTER.pack(record.last_id, _END)


def _head_bytes(last_id: int, tail: int, applied: int) -> bytes:
    return encode(BASE, last_id, last_id, _HEAD.pack(tail, applied))


class Journal:
    """The journal of the queue at ``db_path`` (``<db>.journal``, 0600)."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".journal")

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
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # releases the lock

    # --- writing (under the lock) ------------------------------------------------------------

    def append(self, kind: int, count: int, payload: bytes = b"", *,
               written: Callable[[], object] | None = None) -> tuple[int, int]:
        """Append a record of ``count`` new ids, durable when this returns; (first, last) id.
        ``NoBase`` when the journal has no base yet. ``written`` is called once the record is
        in the file and before it is synced: a reader told then (the worker, by a datagram)
        reads it while it goes to the disk (~0.3 ms here), and syncs the journal itself
        before it commits what it read (``sync``)."""
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
        if head is not None:
            # After the record: a crash between the two leaves the head behind, and the record
            # itself then says how far the ids went (``_tail`` takes the higher).
            self._write_head(fd, head, last_id=new_last, tail=end)
        try:
            if written is not None:
                written()
        finally:
            os.fdatasync(fd)
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
            os.fdatasync(fd)
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
        last = _record_at(fd, head.tail, size) if head and head.tail is not None else None
        if last is None:  # no head, an older one, or it does not point at an intact record
            last = _record_at(fd, 0, size) if head else None
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
            os.fdatasync(fd)
        return head, last.end, max(highest, last.last_id)

    def _write_head(self, fd: int, head: Head, *, last_id: int, tail: int | None = None,
                    applied: int | None = None) -> None:
        """Rewrite the head in place (in its own format: an older head keeps its length). A
        failure leaves the old head, which only makes the next append read further back."""
        if head.tail is None:
            data = encode(BASE, last_id, last_id)
        else:
            data = _head_bytes(last_id, head.tail if tail is None else tail,
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
        data = _head_bytes(last, 0, last)
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
            os.fdatasync(fd)
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


def read_head(fd: int, size: int) -> Head | None:
    """The journal's head, checked; None when the file does not start with one."""
    record = _record_at(fd, 0, size)
    if record is None or record.kind != BASE:
        return None
    if len(record.payload) == _HEAD.size:
        tail, applied = _HEAD.unpack(record.payload)
        return Head(record.last_id, int(tail), int(applied), record.end)
    return Head(record.last_id, None, record.last_id, record.end)  # an older version's base


def read(fd: int, offset: int) -> Iterator[Record]:
    """The intact records from ``offset`` on; it stops before a torn one at the end (an
    appender may be writing it right now: it is read next time), and skips damaged bytes that
    intact records follow (``scan`` says where)."""
    return (item for item in scan(fd, offset) if isinstance(item, Record))


def scan(fd: int, offset: int, size: int | None = None) -> Iterator[Record | Damage]:
    """The intact records from ``offset`` on, and ``Damage`` for bytes between them that hold
    none; it stops at bytes that no intact record follows (a torn tail, or one being written)."""
    size = os.fstat(fd).st_size if size is None else size
    while offset < size:
        record = _record_at(fd, offset, size)
        if record is None:
            after = _next_record(fd, offset + 1, size)
            if after is None:
                return
            yield Damage(offset, after.start)
            record = after
        yield record
        offset = record.end


def _record_at(fd: int, offset: int, size: int) -> Record | None:
    """The record that starts at ``offset``, if an intact one does: magic, kind, ids, length,
    CRC and footer all agree. A torn write whose last bytes look like a footer (an argument may
    end with anything) has no header, length and CRC to match them."""
    if offset < 0 or offset + _HEADER.size + _FOOTER.size > size:
        return None
    data = os.pread(fd, min(size - offset, _FIRST_READ), offset)  # most records: all of it
    magic, kind, first, last, length, crc = _HEADER.unpack_from(data)
    end = offset + _HEADER.size + length + _FOOTER.size
    if magic != _MAGIC or kind not in _KINDS or last < first or length > _MAX_PAYLOAD \
            or end > size:
        return None
    if len(data) < end - offset:
        data += os.pread(fd, end - offset - len(data), offset + len(data))
    payload, footer = data[_HEADER.size:_HEADER.size + length], data[_HEADER.size + length:]
    if len(data) < end - offset or zlib.crc32(payload) != crc \
            or _FOOTER.unpack_from(footer) != (last, _END):
        return None
    return Record(kind, first, last, payload, end)


def _next_record(fd: int, start: int, size: int) -> Record | None:
    """The first intact record that starts at ``start`` or later (damaged bytes skipped)."""
    while start < size:
        chunk = os.pread(fd, min(_SEEK_CHUNK, size - start), start)
        at = chunk.find(_MAGIC)
        while at != -1:
            record = _record_at(fd, start + at, size)
            if record is not None:
                return record
            at = chunk.find(_MAGIC, at + 1)
        if len(chunk) < _SEEK_CHUNK:
            return None
        start += len(chunk) - len(_MAGIC) + 1  # a magic across the chunks' border is seen
    return None


def _write_at(fd: int, start: int, data: bytes) -> None:
    """One ``write`` of the whole record at ``start`` (the end of what ``_tail`` checked; the
    lock is held); a short write is finished, a failed one cut off."""
    os.lseek(fd, start, os.SEEK_SET)
    written = 0
    try:
        while written < len(data):
            written += os.write(fd, data[written:])
    except OSError as exc:
        os.ftruncate(fd, start)  # no torn record from a full disk
        raise _write_error("cannot write the dispatch journal", exc) from exc


def _write_error(what: str, exc: OSError) -> StorageError:
    """A failed write of the journal: ``DiskFullError`` when the disk had no room."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"the disk is full: {what} ({exc.strerror}); free some space")
    return StorageError(f"{what}: {exc.strerror}")


# --- what a record holds ---------------------------------------------------------------------

def _common(spec_or_batch: Any, now: datetime) -> dict[str, Any]:
    policy = spec_or_batch.policy
    return {"target": spec_or_batch.target, "priority": spec_or_batch.priority,
            "run_at": spec_or_batch.run_at.isoformat(), "created_at": now.isoformat(),
            "max_attempts": policy.max_attempts, "retry_delay": policy.retry_delay,
            "retry_backoff": policy.retry_backoff, "timeout": policy.timeout}


def journalled(spec: JobSpec) -> bool:
    """Whether a dispatch may go through the journal: not one with ``after`` or ``unique``
    (SPEC §16). Those need the queue's state to be decided when they are made, and their caller
    must learn the outcome at once: ``unique`` returns the id of the pending or running job with
    the same key (which only the queue knows), and ``after`` refuses ids with no job at dispatch
    (a journal record is acknowledged before anything reads it, so a replay could only fail the
    job later). They take the worker's socket or the locked file (``queue.QueueClient``). A
    job's ``schedule`` is only set by the worker's scheduler, which writes its jobs into the
    queue file itself. So a record carries none of the three (``job_payload``, ``jobs_of``)."""
    return not spec.after and spec.unique_key is None and spec.schedule is None


#: fields of a JobSpec a record never carries (``journalled``)
_NOT_JOURNALLED = ("after", "unique_key", "schedule")


def job_payload(spec: JobSpec, now: datetime) -> bytes:
    """The payload of a JOB record: the validated dispatch and when it was made."""
    if not journalled(spec):  # a record would drop them: ``journalled``
        raise ValueError("a dispatch with after, unique or schedule cannot be journalled")
    return _limited(json.dumps({**_common(spec, now), "args": spec.args, "kwargs": spec.kwargs},
                               separators=(",", ":")).encode())


def batch_payload(batch: JobBatch, now: datetime) -> bytes:
    """The payload of a BATCH record (each job's arguments as the JSON text the batch holds)."""
    return _limited(json.dumps({**_common(batch, now), "args": batch.args,
                                "kwargs": batch.kwargs}, separators=(",", ":")).encode())


def _limited(payload: bytes) -> bytes:
    """A dispatch is held to the size of one message on the worker's socket (SPEC §14), by
    whichever way it is stored."""
    if len(payload) > wire.MAX_REQUEST_BYTES:
        raise InvalidArgumentsError(wire.too_large(len(payload)))
    return payload


def jobs_of(record: Record) -> list[Job]:
    """The pending jobs a JOB or BATCH record holds, every field checked again (the journal is
    a file: anything may have been written into it); none for BASE and RESERVE records.
    ``InvalidArgumentsError`` (or ``ValueError``) for a record that does not hold jobs."""
    if record.kind not in (JOB, BATCH):
        return []
    data = record.data()
    if not isinstance(data, dict):
        raise InvalidArgumentsError("a journal record's payload must be an object")
    carried = [name for name in _NOT_JOURNALLED if data.get(name) not in (None, [])]
    if carried:  # not written here (``journalled``): a job without them would not be the one
        raise InvalidArgumentsError(f"a journal record cannot carry {', '.join(carried)}")
    policy = RetryPolicy(
        retry_attempts=data["max_attempts"] - 1 if isinstance(data["max_attempts"], int) else -1,
        retry_delay=data["retry_delay"], retry_backoff=data["retry_backoff"],
        timeout=data["timeout"])
    common = {"target": data["target"], "priority": data["priority"], "policy": policy,
              "run_at": validate.timestamp("run_at", datetime.fromisoformat(data["run_at"]))}
    created = validate.timestamp("created_at", datetime.fromisoformat(data["created_at"]))
    if record.kind == JOB:
        spec = validate.job_spec(JobSpec(args=data["args"], kwargs=data["kwargs"], **common))
        return [transitions.pending(record.first_id, spec, created)]
    batch = validate.job_batch(JobBatch(args=data["args"], kwargs=data["kwargs"], **common))
    if len(batch.args) != record.last_id - record.first_id + 1:
        raise InvalidArgumentsError(f"a batch record of ids {record.first_id}..{record.last_id} "
                                    f"holds {len(batch.args)} jobs")
    return transitions.pending_batch(list(range(record.first_id, record.last_id + 1)), batch,
                                     created)


def unreadable(record: Record, reason: str, now: datetime) -> list[Job]:
    """Failed jobs standing for the ids of a record that cannot be read back, saying why: a
    bad record fails alone (SPEC §14)."""
    error = validate.text(f"the dispatch of this job could not be read back from the journal "
                          f"({reason}); nothing ran; dispatch it again")[:2000]
    return [Job(id=job_id, target="(unreadable)", args=[], kwargs={}, status="failed", priority=0,
                attempts=0, max_attempts=1, created_at=now, run_at=now, finished_at=now,
                error=error)
            for job_id in range(record.first_id, record.last_id + 1)]


def readable_jobs(record: Record, now: datetime) -> list[Job]:
    """``jobs_of(record)``; for a record that cannot be read, the failed jobs of ``unreadable``
    (a bad record fails alone: SPEC §14). The one reading of a record, for the worker's intake
    and for the replay of a process that opens the queue file."""
    try:
        return jobs_of(record)
    except (InvalidArgumentsError, ValueError, KeyError, TypeError, RecursionError) as exc:
        logger.warning("journal record of ids %d..%d cannot be read: %s", record.first_id,
                       record.last_id, exc)
        return unreadable(record, f"{type(exc).__name__}: {exc}", now)
