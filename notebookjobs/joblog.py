"""The job log files of SPEC §8: one greppable line per event, one ``write`` per record.

Several processes append to the same files; each record is written with a single ``write`` on
a file opened with O_APPEND, so lines from different processes do not interleave.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from . import files
from .models import Job, utcnow

COMPLETED_LOG = "background_jobs.log"
ERRORS_LOG = "background_jobs_errors.log"


REOPEN_AFTER_S = 1.0  # a log file moved or deleted by the user is recreated within this

# path -> (descriptor, when it was opened): the worker logs thousands of jobs a second, and
# opening the file for each line would cost more than the line.
_open: dict[Path, tuple[int, float]] = {}


def _append(path: Path, text: str) -> None:
    fd, opened = _open.get(path, (-1, 0.0))
    now = time.monotonic()
    if fd < 0 or now - opened > REOPEN_AFTER_S:
        if fd >= 0:
            _open.pop(path, None)
            os.close(fd)
        files.private_dir(path.parent)  # logs/ may have been deleted meanwhile
        fd = files.open_private(path, os.O_WRONLY | os.O_APPEND)
        _open[path] = (fd, now)
    os.write(fd, text.encode("utf-8", "replace"))


def _stamp() -> str:
    return utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_completed(logs_dir: Path, job: Job, duration_s: float, *, attempts: int | None = None) -> None:
    """A line in background_jobs.log for a job that completed (``attempts`` overrides the
    job's own count, for a caller whose Job record is older than its state)."""
    _append(logs_dir / COMPLETED_LOG,
            f"{_stamp()} COMPLETED job={job.id} target={job.target} "
            f"attempts={job.attempts if attempts is None else attempts}/{job.max_attempts} "
            f"duration={duration_s:.3f}s\n")


def attempt_failed(logs_dir: Path, job: Job, error: str, final: bool) -> None:
    """A record in background_jobs_errors.log: the event line, then the traceback.

    Traceback lines carry the job id too, so ``grep job=12`` finds the whole record.
    """
    what = "FAILED" if final else "RETRYING"
    lines = (error or "").rstrip().splitlines() or ["(no traceback)"]
    reason = lines[-1]
    head = (f"{_stamp()} {what} job={job.id} target={job.target} "
            f"attempt={job.attempts}/{job.max_attempts} error={reason}\n")
    body = "".join(f"    job={job.id} | {line}\n" for line in lines)
    _append(logs_dir / ERRORS_LOG, head + body)
