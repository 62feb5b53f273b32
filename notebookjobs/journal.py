"""The dispatch journal: an append-only file beside the queue where every new job is made
durable before ``dispatch()`` returns, without opening DuckDB (SPEC §13).

Opening the DuckDB file costs ~13 ms and its cheapest durable write ~1 ms; an ``fdatasync``ed
append of a few hundred bytes costs ~0.25 ms. So a dispatch appends one record here, under a
short ``flock`` of the journal, and returns; the running worker (told through its wake socket,
or noticing the file grow) moves the records into the queue with its group commit, and a
process that opens the queue file with no worker running moves them first (``store.schema``),
so every read sees every acknowledged dispatch.

The journal also hands out the job ids: the last record names the highest id handed out, so
ids stay unique and consecutive across processes appending at once. A file whose records have
all reached the queue is reset to one ``base`` record that carries that highest id.

A record, written with a single ``write``::

    header  magic "NJR1", kind (1 byte), first id, last id (8 bytes each), payload length,
            CRC-32 of the payload (4 bytes each)
    payload UTF-8 JSON (jobs), or nothing (base, reserve)
    footer  last id (8 bytes), magic "NJRE"

A crash in the middle of a write leaves a torn record at the end: its footer is missing or its
CRC wrong. Readers stop before it, and the next appender truncates it away: it is never
replayed half (its dispatch was never acknowledged).
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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from . import files, transitions, validate, wire
from .errors import InvalidArgumentsError, StorageError
from .models import Job, JobBatch, JobSpec, RetryPolicy

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("<4sBQQII")
_FOOTER = struct.Struct("<Q4s")
_MAGIC, _END = b"NJR1", b"NJRE"

BASE = ord("B")  #: the highest id handed out so far, and nothing else
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

    def data(self) -> Any:
        """The payload's JSON (``ValueError`` when it is not JSON)."""
        return json.loads(self.payload)


def encode(kind: int, first_id: int, last_id: int, payload: bytes = b"") -> bytes:
    """The bytes of one record."""
    return (_HEADER.pack(_MAGIC, kind, first_id, last_id, len(payload), zlib.crc32(payload))
            + payload + _FOOTER.pack(last_id, _END))


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
        last = self.last_id(fd)
        first, new_last = last + 1, last + count
        _write_all(fd, encode(kind, first, new_last, payload))
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
            raise StorageError(f"cannot sync the dispatch journal {self.path}: "
                               f"{exc.strerror}") from exc
        finally:
            os.close(fd)

    def last_id(self, fd: int) -> int:
        """The highest id handed out (under the lock). A torn last record (a crash in the
        middle of its write) is cut off first. ``NoBase`` when there is no record."""
        size = os.fstat(fd).st_size
        if size >= _FOOTER.size:
            last_id, end = _FOOTER.unpack(os.pread(fd, _FOOTER.size, size - _FOOTER.size))
            if end == _END:
                return int(last_id)
        records = list(read(fd, 0))  # rare: only after a crash mid-write
        valid_end = records[-1].end if records else 0
        if valid_end != size:
            os.ftruncate(fd, valid_end)
            os.fdatasync(fd)
        if not records:
            raise NoBase(f"{self.path} has no base record yet")
        return records[-1].last_id

    def reset(self, fd: int, last_id: int) -> None:
        """Replace every record by one base record of ``last_id`` (under the lock; every job
        of the old records must be in the queue file, committed, before)."""
        os.ftruncate(fd, 0)
        _write_all(fd, encode(BASE, last_id, last_id))
        os.fdatasync(fd)

    def size(self) -> int:
        """The journal's length in bytes (0 when there is none)."""
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0


def read(fd: int, offset: int) -> Iterator[Record]:
    """The complete, intact records from ``offset`` on; it stops at the first torn or foreign
    one (an appender may be writing it right now: it is read next time)."""
    size = os.fstat(fd).st_size
    while offset + _HEADER.size + _FOOTER.size <= size:
        header = os.pread(fd, _HEADER.size, offset)
        magic, kind, first, last, length, crc = _HEADER.unpack(header)
        end = offset + _HEADER.size + length + _FOOTER.size
        if magic != _MAGIC or kind not in _KINDS or end > size or last < first:
            return
        body = os.pread(fd, length + _FOOTER.size, offset + _HEADER.size)
        payload, footer = body[:length], body[length:]
        if zlib.crc32(payload) != crc or _FOOTER.unpack(footer) != (last, _END):
            return
        yield Record(kind, first, last, payload, end)
        offset = end


def _write_all(fd: int, data: bytes) -> None:
    """One ``write`` of the whole record (O_APPEND semantics are not needed: the lock is held),
    at the end of the file; a short write is finished, a failed one cut off."""
    start = os.lseek(fd, 0, os.SEEK_END)
    written = 0
    try:
        while written < len(data):
            written += os.write(fd, data[written:])
    except OSError as exc:
        os.ftruncate(fd, start)  # no torn record from a full disk
        if exc.errno == errno.ENOSPC:
            raise StorageError(f"the disk is full: no room for the dispatch in the journal "
                               f"({exc.strerror})") from exc
        raise StorageError(f"cannot write the dispatch journal: {exc.strerror}") from exc


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
