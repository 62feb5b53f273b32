"""One attempt of a job, run in the current process: resolve, call, capture, time, report.

Used by the foreground ``run`` command, and by the worker's children, which never open the
database: they get (target, args, kwargs) and hand back an ``Outcome``.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from .. import argfiles, datafiles, results
from ..config import Settings
from ..errors import ConfigError, NotebookJobsError
from ..models import Outcome, OutcomeKind
from ..registry import Target, resolve
from .notebook import NotebookFailed

OUTPUT_LIMIT_CHARS = 64 * 1024  #: captured output kept per attempt (the end is kept)
LAST_LINE_CHARS = 200  #: the last printed line shown for a running job is cut to this
#: frames in these files are ours (this runner, the registry's call, the argument loading):
#: a job's traceback starts at its own code
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class AttemptTimeout(BaseException):
    """Raised into a job that ran past its timeout.

    A BaseException, so job code's ``except Exception`` cannot swallow it.
    """


class BoundedOutput(io.TextIOBase):
    """A text stream that keeps the last OUTPUT_LIMIT_CHARS written, optionally echoing them."""

    def __init__(self, echo: TextIO | None = None, limit: int = OUTPUT_LIMIT_CHARS,
                 on_text: Callable[[], object] | None = None) -> None:
        """``on_text``: called (outside the stream's lock) when the first text with something
        on it is written."""
        self._on_text = on_text
        self._parts: list[str] = []
        self._size = 0
        self._dropped = 0
        self._echo = echo
        self._limit = limit
        self._lock = threading.Lock()
        self._last = ""  # the last write with something on it, for last_line()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        first = False
        with self._lock:
            if text.strip():
                first = not self._last
                self._last = text
            self._parts.append(text)
            self._size += len(text)
            if self._size > 2 * self._limit:
                self._trim()
        if first and self._on_text is not None:
            self._on_text()
        if self._echo is not None:
            self._echo.write(text)
        return len(text)

    def flush(self) -> None:
        if self._echo is not None:
            self._echo.flush()

    def _trim(self) -> None:
        joined = "".join(self._parts)
        keep = joined[-self._limit:]
        self._dropped += len(joined) - len(keep)
        self._parts, self._size = [keep], len(keep)

    def last_line(self) -> str:
        """The last line printed that has something on it ('' before any): what a running job
        that reports no progress shows instead of a bar."""
        with self._lock:
            last = self._last
        lines = [line for line in last.splitlines() if line.strip()]
        return lines[-1].strip()[:LAST_LINE_CHARS] if lines else ""

    def getvalue(self) -> str:
        with self._lock:
            if self._size > self._limit:
                self._trim()
            text = "".join(self._parts)
        return f"[... {self._dropped} characters dropped ...]\n{text}" if self._dropped else text


def job_traceback(exc: BaseException) -> str:
    """The traceback of a job's exception, starting at the job's own code: the frames of the
    runner that called it are left out (and an error raised in our own code is its message)."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_OWN_DIR):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


@contextlib.contextmanager
def _alarm(timeout: float | None) -> Iterator[None]:
    """Raise AttemptTimeout into the main thread after ``timeout`` seconds (foreground only)."""
    if not timeout or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise AttemptTimeout(f"timed out after {timeout:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def execute(settings: Settings, target_name: str, args: list[Any], kwargs: dict[str, Any], *,
            timeout: float | None = None, echo: bool = False, job_id: int | None = None,
            data_dir: Path | None = None, output: BoundedOutput | None = None) -> Outcome:
    """Run one attempt and describe how it ended; never raises for the job's own errors.

    The target is resolved against the current whitelist here, again, so a row that names
    anything else runs nothing. ``data_dir`` (the queue's ``<db>.data``) holds the frames and
    arrays of the arguments and receives a result kept in a file (named by ``job_id``);
    without it, such a result is kept as its repr. ``output``: the buffer that captures what
    the job prints (the pool's child reads its last line while it runs). ``job_id`` also names
    a notebook job's executed notebook.
    """
    buffer = output or BoundedOutput(echo=sys.stdout if echo else None)
    started = time.perf_counter()
    try:
        if not settings.allows_anything:
            raise ConfigError(f"{settings.whitelist_path} allows no jobs right now")
        target = resolve(target_name, settings)
    except NotebookJobsError as exc:
        if settings.settling() or not settings.allows_anything:
            # Maybe a whitelist caught half-written (an editor saving it in place): the worker
            # puts the job back and asks again once the file has settled.
            return Outcome(kind=OutcomeKind.DEFERRED, error=f"not started: {exc}")
        return Outcome(kind=OutcomeKind.FAILED, error=f"refused: {exc}", duration_s=0.0)
    kind, result, result_type, error = OutcomeKind.SUCCEEDED, None, None, None
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            with _alarm(timeout):
                if data_dir is not None:
                    args, kwargs = argfiles.load(args, kwargs, datafiles.arguments_dir(data_dir))
                value = _run(settings, target, args, kwargs, job_id)
                result_type, result = results.keep(
                    value, folder=None if data_dir is None else datafiles.results_dir(data_dir),
                    job_id=job_id, limit=settings.max_result_bytes)
        except AttemptTimeout as exc:
            kind, error = OutcomeKind.TIMED_OUT, str(exc)
        except NotebookFailed as exc:  # the failing cell's error, not our frames
            kind, error = OutcomeKind.FAILED, str(exc)
        except (Exception, SystemExit) as exc:  # the job's failure is data, not ours to raise
            kind, error = OutcomeKind.FAILED, job_traceback(exc)
    return Outcome(kind=kind, result=result, result_type=result_type, error=error,
                   output=buffer.getvalue(), duration_s=time.perf_counter() - started)


def _run(settings: Settings, target: Target, args: list[Any], kwargs: dict[str, Any],
         job_id: int | None) -> Any:
    """Call the target; a notebook is run by papermill (its result: the executed notebook)."""
    if target.kind != "notebook":
        return target.call(args, kwargs)
    from .notebook import run_notebook  # papermill only when a notebook runs

    return run_notebook(settings, target, args, kwargs, job_id)
