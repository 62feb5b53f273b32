"""A pool child's side: run the attempts the worker sends over the pipe, one at a time.

Started by ``pool.Pool`` with multiprocessing's ``spawn``, so this module and what it imports
are all a child loads before its first attempt: nothing of the store or the server (the
children never open the database), no pandas. The pipe carries plain data only:

* worker -> child: ``(job_id, target, args, kwargs)``
* child -> worker: ``("ready", pid)`` once; ``("progress", job_id, fraction, message)``;
  ``("done", job_id, outcome_as_dict)``
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..config import load_settings
from ..errors import NotebookJobsError
from ..models import Outcome, OutcomeKind
from ..progress import Reporter, set_reporter, throttled
from . import procgroup
from .defaults import JOB_UMASK_ENV
from .runner import execute


def child_main(conn: Connection, root: str, parent_pid: int, queue_token: str) -> None:
    """A child's life: run the attempts the parent sends until the pipe closes."""
    procgroup.enter_child(queue_token, parent_pid)  # before "ready": jobs start in its group
    # The worker runs with umask 077 so its own files are private; job code gets back the
    # umask the worker was started with, so the files a job writes are as the user expects.
    job_umask = os.environ.pop(JOB_UMASK_ENV, None)
    if job_umask is not None and job_umask.isdigit():
        os.umask(int(job_umask))
    # multiprocessing refuses to start processes from a daemonic one. Jobs may want to
    # (multiprocessing.Pool for data work), and the parent kills us anyway.
    multiprocessing.current_process().daemon = False
    lock = threading.Lock()  # job threads may report progress while we send "done"

    def send(message: tuple[Any, ...]) -> None:
        with lock:
            conn.send(message)

    send(("ready", os.getpid()))
    while True:
        try:
            job_id, target, args, kwargs = conn.recv()
        except EOFError:  # the worker died (close() kills us before it closes the pipe)
            procgroup.kill_own_group(queue_token, parent_pid)
        # At most one report per PROGRESS_INTERVAL_S, so a tight loop cannot flood the pipe.
        set_reporter(throttled(_progress_sender(send, job_id)))
        try:
            outcome = execute(load_settings(Path(root)), target, args, kwargs, job_id=job_id)
        except NotebookJobsError as exc:  # whitelist.yaml unreadable or invalid right now:
            # not the job's fault; the worker waits for a valid file and runs it then
            outcome = Outcome(kind=OutcomeKind.DEFERRED, error=f"not started: {exc}")
        finally:
            set_reporter(None)
        send(("done", job_id, {"kind": outcome.kind.value, "result": outcome.result,
                               "error": outcome.error, "output": outcome.output,
                               "duration_s": outcome.duration_s}))


def _progress_sender(send: Callable[[tuple[Any, ...]], None], job_id: int) -> Reporter:
    """The reporter of one attempt: ``job_id`` bound now, as a thread of the job may report
    after the attempt ended (the worker then ignores it)."""
    def report(fraction: float, message: str | None) -> None:
        send(("progress", job_id, fraction, message))
    return report
