"""The detached worker: start it in its own session, find it, stop it.

A detached worker is ``python -m notebookjobs.worker`` spawned in a session of its own, stdin
closed and its output appended to ``logs/worker.log``, so it outlives the kernel or shell that
started it. There is at most one per queue: the queue lock decides, and a second start reports
the running one.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ..access import lock
from ..access.remote import RemoteQueue, worker_info
from ..config import ENV_ROOT, Settings
from ..errors import WorkerError
from ..system import files, processes, require_worker
from . import procgroup
from .defaults import log_level

logger = logging.getLogger(__name__)

__all__ = ["log_level", "restart", "spawn", "start", "status", "stop", "worker_log"]

START_TIMEOUT_S = 30.0  # spawning the pool's children can take a few seconds on a busy machine
STOP_MARGIN_S = 10.0  # beyond the grace period, for the worker to record and exit
_POLL_S = 0.02

#: queue (DB path) -> the pid of the worker this process spawned for it last: while that one
#: is still starting, a burst of dispatches from one notebook spawns no second one
_spawned: dict[str, int] = {}


def worker_log(settings: Settings) -> Path:
    return settings.logs_dir / "worker.log"


def status(settings: Settings) -> dict[str, Any]:
    """running, pid, concurrency, started_at and the running job ids of this queue's worker."""
    info = worker_info(settings)
    if info is None:
        return {"running": False, "pid": None, "concurrency": None, "started_at": None, "jobs": []}
    return info


def start(settings: Settings, concurrency: int | None = None, log_level: str | None = None, *,
          dask: str | None = None) -> int:
    """Start a detached worker unless one runs; returns the worker's pid once it answers.
    ``log_level``: its logging level (default ``$NOTEBOOKJOBS_LOG_LEVEL``, else INFO). ``dask``:
    the Dask scheduler's address (checked) to run the attempts on, instead of whitelist.yaml's
    choice."""
    require_worker()
    info = worker_info(settings)
    if info is not None:
        return info["pid"]
    pid = _launch(settings, concurrency, log_level, dask)
    return _wait_ready(settings, pid)


def spawn(settings: Settings) -> None:
    """Start a detached worker unless one runs, or one this process started is still starting,
    and return at once: a dispatch's autostart (SPEC §7), whose job is durable already, does
    not wait the second or so a worker takes to start. A worker that fails to start says why
    in its log (``worker_log``); the next dispatch tries again."""
    require_worker()
    if worker_info(settings) is not None:
        return
    key = str(settings.db_path)
    starting = _spawned.get(key)
    if starting is not None and _still_running(starting):
        return
    _spawned[key] = _launch(settings, None, None, None)


def _launch(settings: Settings, concurrency: int | None, log_level: str | None,
            dask: str | None) -> int:
    """Spawn ``python -m notebookjobs.worker`` in a session of its own; its pid."""
    log_path = worker_log(settings)
    command = [sys.executable, "-m", "notebookjobs.worker"]
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    if log_level is not None:
        command += ["--log-level", log_level]
    if dask is not None:
        command += ["--dask", dask]
    env = dict(os.environ, **{ENV_ROOT: str(settings.root)})
    # Started from a job, the worker would carry that job's marker: a cancel of the job would
    # then kill a worker that is meant to outlive whoever started it.
    env.pop(procgroup.MARKER_VAR, None)
    try:
        files.private_dir(log_path.parent)
        log_fd = files.open_private(log_path, os.O_WRONLY | os.O_APPEND)
    except OSError as exc:
        # A worker without its log still runs the queue (and reports the log problem in
        # worker_status); refusing to start would leave dispatched jobs waiting.
        logger.warning("cannot write %s (%s); the worker's output is dropped", log_path, exc)
        log_fd = os.open(os.devnull, os.O_WRONLY)
    try:
        pid = processes.spawn_detached(command, env, stdin=os.devnull, output_fd=log_fd)
    finally:
        os.close(log_fd)
    return pid


def _wait_ready(settings: Settings, pid: int) -> int:
    """Until a worker answers (ours, or one another process started at the same moment: both
    fine); its pid. ``WorkerError`` when ours exited or nobody answered in time."""
    log_path = worker_log(settings)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        info = worker_info(settings)
        if info is not None:
            return info["pid"]
        code = _exit_code(pid)
        if code is not None:
            info = worker_info(settings)
            if info is not None:
                return info["pid"]
            raise WorkerError(f"the worker exited at start (code {code}); see {log_path}")
        time.sleep(_POLL_S)
    raise WorkerError(f"the worker did not answer within {START_TIMEOUT_S:g} s; see {log_path}")


def restart(settings: Settings, concurrency: int | None = None,
            log_level: str | None = None) -> int:
    """Stop the running worker (gracefully, as ``stop``) and start a new one; its pid."""
    stop(settings)
    return start(settings, concurrency, log_level)


def stop(settings: Settings, timeout: float | None = None) -> bool:
    """Ask the worker to stop (as SIGTERM does) and wait until it has; False if none ran."""
    info = worker_info(settings)
    if info is None:
        return False
    pid = info["pid"]
    try:
        RemoteQueue(settings).stop()
    except Exception:  # it may be exiting already; the signal below is the fallback
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return True
    limit = timeout if timeout is not None else settings.worker.grace_period + STOP_MARGIN_S
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        # Gone means: it no longer answers, no longer holds the queue's lock, and has exited
        # (it lets the lock go a few ms before its process ends; a faster CLI saw it still
        # running). Exited, not "its pid is gone": a worker started by a process that does not
        # reap it stays a zombie, whose pid lives.
        if worker_info(settings) is None and lock.is_free(settings) and processes.exited(pid):
            _exit_code(pid)  # reap it if it is our child
            return True
        time.sleep(_POLL_S)
    raise WorkerError(f"the worker (pid {pid}) did not stop within {limit:g} s; "
                      f"see {worker_log(settings)}, or kill it")


def _exit_code(pid: int) -> int | None:
    """The exit code of a worker we spawned once it has exited (reaping it), else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status) if done else None


def _still_running(pid: int) -> bool:
    """Whether a worker we spawned has not exited yet (one that has is reaped)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False  # reaped already (by _exit_code or stop)
    return done == 0



