"""One attempt of a job, run in the current process: resolve, call, capture, time, report.

Used by the foreground ``run`` command, and by the worker's children, which never open the
database: they get (target, args, kwargs) and hand back an ``Outcome``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from ..config import Settings
from ..data import argfiles, datafiles, results
from ..errors import ConfigError, NotebookJobsError
from ..model.records import Outcome, OutcomeKind
from ..targets.registry import Target, resolve
from .capture import BoundedOutput, Capture
from .notebook_runner import NotebookFailed

#: frames in these files are ours (this runner, the registry's call, the argument loading):
#: a job's traceback starts at its own code
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class AttemptTimeout(BaseException):
    """Raised into a job that ran past its timeout.

    A BaseException, so job code's ``except Exception`` cannot swallow it.
    """


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
            capture: Capture | None = None, timeout: float | None = None, job_id: int | None = None,
            data_dir: Path | None = None) -> Outcome:
    """Run one attempt and describe how it ended; never raises for the job's own errors.

    The target is resolved against the current whitelist here, again, so a row that names
    anything else runs nothing. ``data_dir`` (the queue's ``<db>.data``) holds the frames and
    arrays of the arguments and receives a result kept in a file (named by ``job_id``);
    without it, such a result is kept as its repr. ``capture``: this process's fds 1 and 2,
    started; what the attempt writes to them is its output (None: nothing is captured, what it
    writes goes where this process's output goes). ``job_id`` also names a notebook job's
    executed notebook.
    """
    started = time.perf_counter()
    output = BoundedOutput()
    if capture is not None:  # what the job's module prints as it is imported is the job's too
        capture.begin(output)
    try:
        target = _resolve(settings, target_name)
        if isinstance(target, Outcome):
            return target  # not started: what it printed is nobody's
        kind, result, result_type, error = OutcomeKind.SUCCEEDED, None, None, None
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
    finally:
        if capture is not None:
            capture.end()  # before output.getvalue(): what is still on its way is read first
    return Outcome(kind=kind, result=result, result_type=result_type, error=error,
                   output=output.getvalue(), duration_s=time.perf_counter() - started)


def _resolve(settings: Settings, target_name: str) -> Target | Outcome:
    """The target, resolved against the current whitelist; or the outcome of an attempt
    that cannot start (refused, or deferred while whitelist.yaml settles)."""
    try:
        if not settings.allows_anything:
            raise ConfigError(f"{settings.whitelist_path} allows no jobs right now")
        return resolve(target_name, settings)
    except NotebookJobsError as exc:
        if settings.settling() or not settings.allows_anything:
            # Maybe a whitelist caught half-written (an editor saving it in place): the worker
            # puts the job back and asks again once the file has settled.
            return Outcome(kind=OutcomeKind.DEFERRED, error=f"not started: {exc}")
        return Outcome(kind=OutcomeKind.FAILED, error=f"refused: {exc}", duration_s=0.0)


def _run(settings: Settings, target: Target, args: list[Any], kwargs: dict[str, Any],
         job_id: int | None) -> Any:
    """Call the target; a notebook is run by papermill (its result: the executed notebook)."""
    if target.kind != "notebook":
        return target.call(args, kwargs)
    from .notebook_runner import run_notebook  # papermill only when a notebook runs

    return run_notebook(settings, target, args, kwargs, job_id)
