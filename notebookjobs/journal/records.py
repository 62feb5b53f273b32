"""The dispatch journal's records (``notebookjobs.journal``): how they are laid out, the head,
and how they are read back and checked.

A record, written with a single ``write``::

    header  magic "NJR1", kind (1 byte), first id, last id (8 bytes each), payload length,
            CRC-32 of the payload (4 bytes each)
    payload UTF-8 JSON (jobs), or nothing (reserve)
    footer  last id (8 bytes), magic "NJRE"

The first record is the journal's *head*, a ``base`` record rewritten in place by every
append: its ids are the highest id handed out, its payload says where the last record starts
and the highest id whose record the queue file holds (``Head``). A head written by an older
version has no payload.

A record is intact when its magic, kind, ids, length, CRC and footer all agree
(``record_at``): a torn write's last bytes may look like a footer (a job's arguments may end
with any bytes), but it has no header, length and CRC to match them. Reading stops before a
torn tail (an appender may be writing it right now: it is read next time); bytes that hold no
record *followed by* intact records (a file damaged by other means, or by an older version
that appended past a torn record) are skipped and said (``Damage``), and what follows is read.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model import wire

_HEADER = struct.Struct("<4sBQQII")
_FOOTER = struct.Struct("<Q4s")
_MAGIC, _END = b"NJR1", b"NJRE"
#: the head's payload: where the last record starts (0: the head is the only record), and the
#: highest id whose record the queue file holds (0: it holds none of the journal's)
_HEAD = struct.Struct("<QQ")
#: the length of the head, and of a journal that holds nothing else
HEAD_SIZE = _HEADER.size + _HEAD.size + _FOOTER.size
#: no payload of ours is longer (``payloads._limited``); a "record" that says so is none
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


def head_bytes(last_id: int, tail: int, applied: int) -> bytes:
    return encode(BASE, last_id, last_id, _HEAD.pack(tail, applied))


def read_head(fd: int, size: int) -> Head | None:
    """The journal's head, checked; None when the file does not start with one."""
    record = record_at(fd, 0, size)
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
        record = record_at(fd, offset, size)
        if record is None:
            after = _next_record(fd, offset + 1, size)
            if after is None:
                return
            yield Damage(offset, after.start)
            record = after
        yield record
        offset = record.end


def record_at(fd: int, offset: int, size: int) -> Record | None:
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
            record = record_at(fd, start + at, size)
            if record is not None:
                return record
            at = chunk.find(_MAGIC, at + 1)
        if len(chunk) < _SEEK_CHUNK:
            return None
        start += len(chunk) - len(_MAGIC) + 1  # a magic across the chunks' border is seen
    return None
