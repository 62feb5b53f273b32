"""The job log files of SPEC §8: one greppable line per event, one ``write`` per record.

Several processes append to the same files; each record is written with a single ``write`` on
a file opened with O_APPEND, so lines from different processes do not interleave. A ``JobLog``
keeps its files open (the worker logs thousands of jobs a second, and opening the file for each
line would cost more than the line) and reopens them every REOPEN_AFTER_S, so a log file moved
or deleted by the user is recreated. Writing raises ``OSError``; the caller decides what a log
that cannot be written means (for the worker: a reported problem, never a stop).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..model.records import Job
from ..system import files

COMPLETED_LOG = "background_jobs.log"
ERRORS_LOG = "background_jobs_errors.log"
REOPEN_AFTER_S = 1.0  #: a log file moved or deleted by the user is recreated within this


class JobLogError(OSError):
    """The lines held by ``JobLog.held`` could not be written."""


class JobLog:
    """The two job logs of one project's ``logs/`` folder."""

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = logs_dir
        #: file name -> (descriptor, opened when); by name: building a path per record
        #: showed in the profile of a no-op drain (13,904 path joins for 10,000 jobs)
        self._open: dict[str, tuple[int, float]] = {}
        self._held: dict[str, list[str]] | None = None  #: lines kept by ``held``, per file
        self.wrote = False  #: whether the last ``held`` block had records (all written)

    def completed(self, job: Job, duration_s: float) -> None:
        """A line in background_jobs.log for a job that completed."""
        self._append(COMPLETED_LOG,
                     f"{_stamp()} COMPLETED job={job.id} target={job.target} "
                     f"attempts={job.attempts}/{job.max_attempts} duration={duration_s:.3f}s\n")

    def attempt_failed(self, job: Job, error: str, final: bool) -> None:
        """A record in background_jobs_errors.log: the event line, then the traceback.

        Traceback lines carry the job id too, so ``grep job=12`` finds the whole record.
        """
        what = "FAILED" if final else "RETRYING"
        lines = (error or "").rstrip().splitlines() or ["(no traceback)"]
        head = (f"{_stamp()} {what} job={job.id} target={job.target} "
                f"attempt={job.attempts}/{job.max_attempts} error={lines[-1]}\n")
        self._append(ERRORS_LOG, head + "".join(f"    job={job.id} | {line}\n" for line in lines))

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Keep the records of the block and write them as it ends, one ``write`` per file:
        the worker settles many jobs per turn of its loop, and each write of its main thread
        lets another thread take the GIL (cProfile of a 10,000 no-op drain: 15,050 writes, of
        them 10,000 log records, 1.9 s of the loop thread's 7.8 s). Each record is still
        whole in one write, so records of different processes do not interleave.
        ``JobLogError`` from the end of the block."""
        if self._held is not None:  # within another block: that one writes them
            yield
            return
        self._held = {}
        try:
            yield
        finally:
            held, self._held = self._held, None
        self.wrote = False
        for name, records in held.items():
            try:
                self._append(name, "".join(records))
            except OSError as exc:
                raise JobLogError(exc.errno, exc.strerror, exc.filename) from exc
        self.wrote = bool(held)

    def close(self) -> None:
        """Close the open files (a later write opens them again)."""
        for fd, _ in self._open.values():
            os.close(fd)
        self._open.clear()

    def _append(self, name: str, text: str) -> None:
        if self._held is not None:
            self._held.setdefault(name, []).append(text)
            return
        fd, opened = self._open.get(name, (-1, 0.0))
        now = time.monotonic()
        if fd < 0 or now - opened > REOPEN_AFTER_S:
            if fd >= 0:
                del self._open[name]
                os.close(fd)
            files.private_dir(self.logs_dir)  # logs/ may have been deleted meanwhile
            fd = files.open_private(self.logs_dir / name, os.O_WRONLY | os.O_APPEND)
            self._open[name] = (fd, now)
        os.write(fd, text.encode("utf-8", "replace"))


def _stamp() -> str:
    """The time now as the records show it, made once per millisecond: the worker writes a
    record for each of the many jobs it settles at once (py-spy of a drain of no-op jobs: ~5 %
    of the worker's samples formatted the same time again)."""
    ms = time.time_ns() // 1_000_000
    if ms != _last[0]:
        when = datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)
        _last[:] = [ms, when.isoformat(timespec="milliseconds").replace("+00:00", "Z")]
    return _last[1]


#: the millisecond _stamp formatted last, and its text
_last: list[Any] = [None, ""]
