"""The worker: owns the queue file, serves clients over its socket, runs jobs in a pool of children.

``python -m notebookjobs.worker [--concurrency N] [--burst]`` runs it in the foreground. The loop:
recover jobs a dead worker left running, then claim due jobs while children are free, sleep
until something happens (an attempt ends, a client dispatches or cancels, the next run_at comes,
a signal), record outcomes under the retry policy, repeat. SIGTERM/SIGINT stop it gracefully.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from typing import Any, Sequence

from . import access, backoff, joblog
from .config import Settings, load_settings
from .errors import ConfigError, NotebookJobsError, WorkerError
from .models import Job, JobStatus, Outcome, OutcomeKind, utcnow
from .pool import Pool
from .server import SocketServer
from .store import Database

logger = logging.getLogger("notebookjobs.worker")

MAX_SLEEP_S = 30.0  # re-check the clock at least this often, in case it jumps
CONFIG_RETRY_S = 1.0  # how soon an invalid whitelist.yaml is read again
INTERRUPTED = "the worker stopped before the attempt finished; it will run again"


class Worker:
    """One worker process: the queue's owner while it runs."""

    def __init__(self, settings: Settings, *, concurrency: int | None = None, burst: bool = False) -> None:
        self.settings = settings
        self.concurrency = concurrency or settings.worker.concurrency
        self.burst = burst
        self.name = f"worker:{socket.gethostname()}:{os.getpid()}"
        self.started_at = utcnow()
        self._db_lock = threading.Lock()  # one connection, shared by the loop and server threads
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._cancels: set[int] = set()
        self._stopping = False
        self._stop_deadline: float | None = None
        self._interrupted: set[int] = set()
        self._running: dict[int, Job] = {}
        self._signalled = False
        self._config_problem: str | None = None
        self._has_free_slot = True
        # Frames for clients go through files only this user can read (mkdtemp makes it 0700).
        self._frames_dir = tempfile.mkdtemp(prefix="notebookjobs-frames-")

    # --- requests from clients (server threads) --------------------------------------------

    def handle(self, operation: str, args: list[Any]) -> Any:
        if operation == "worker_status":
            return self.status()
        if operation == "stop":
            self.request_stop()
            return True
        if operation not in access.REMOTE_OPERATIONS:
            raise WorkerError(f"unknown operation {operation!r}")
        result = self._store(operation, *args)
        if operation == "query":
            return {"arrow_file": self._write_arrow(result)}
        if operation == "cancel" and result == JobStatus.RUNNING:
            self._cancels.add(args[0])
        if operation in ("enqueue", "enqueue_many", "cancel"):
            self.wake()
        return result

    def _write_arrow(self, table: Any) -> str:
        import pyarrow as pa  # only when a client asks for a frame: keeps an idle worker small

        fd, path = tempfile.mkstemp(suffix=".arrow", dir=self._frames_dir)
        with os.fdopen(fd, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        return path

    def status(self) -> dict[str, Any]:
        return {"running": True, "pid": os.getpid(), "concurrency": self.concurrency,
                "started_at": self.started_at, "jobs": sorted(self._running),
                "stopping": self._stopping, "db": str(self.settings.db_path)}

    def wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # the pipe is full: the loop is already due to wake

    def request_stop(self) -> None:
        if not self._stopping:
            logger.info("stopping: no new jobs; running ones have %gs to finish",
                        self.settings.worker.grace_period)
            self._stopping = True
            self._stop_deadline = time.monotonic() + self.settings.worker.grace_period
        self.wake()

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Only flag and wake here: logging or locking inside a signal handler can deadlock.
        self._signalled = True
        self.wake()

    # --- the loop ----------------------------------------------------------------------------

    def _store(self, operation: str, *args: Any) -> Any:
        with self._db_lock, self.db.transaction() as job_store:
            return getattr(job_store, operation)(*args)

    def run(self) -> int:
        lock_fd = access.acquire_for_worker(self.settings)
        try:
            self.db = Database(self.settings.db_path)
            try:
                return self._run_with_db()
            finally:
                self.db.close()
        finally:
            os.close(lock_fd)
            shutil.rmtree(self._frames_dir, ignore_errors=True)

    def _run_with_db(self) -> int:
        self._recover()
        pool = Pool(self.settings.root, self.concurrency)
        pool.start()
        server = SocketServer(access.socket_path(self.settings), self)
        server.start()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        logger.info("worker %s started: concurrency %d, queue %s, socket %s", os.getpid(),
                    self.concurrency, self.settings.db_path, server.path)
        try:
            self._loop(pool)
        finally:
            server.close()
            pool.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        logger.info("worker %s stopped", os.getpid())
        return 0

    def _loop(self, pool: Pool) -> None:
        while True:
            if self._signalled:
                self.request_stop()
            if not self._stopping:
                self._claim(pool)
            if self._stopping and not self._running:
                return
            if self.burst and not self._running and self._store("active_count") == 0:
                return
            self._has_free_slot = pool.free_slots() > 0
            events = pool.wait(self._sleep_s(), extra=[self._wake_r])
            if self._wake_r in events.ready:
                self._drain_wake()
            for job_id, fraction, message in events.progress:
                self._store("record_progress", job_id, fraction, message)
            for job_id, outcome in events.finished:
                self._record(job_id, outcome)
            self._apply_cancels(pool)
            if self._stopping and self._stop_deadline is not None and time.monotonic() >= self._stop_deadline:
                for job_id in list(self._running):
                    if job_id not in self._interrupted:
                        self._interrupted.add(job_id)
                        pool.stop_job(job_id, OutcomeKind.CANCELLED, INTERRUPTED)

    def _reload_settings(self) -> bool:
        """Pick up whitelist edits (hot reload); False while the file is invalid."""
        try:
            self.settings = load_settings(self.settings.root)
        except ConfigError as exc:
            if str(exc) != self._config_problem:
                logger.error("not starting jobs until whitelist.yaml is fixed: %s", exc)
            self._config_problem = str(exc)
            return False
        self._config_problem = None
        return True

    def _claim(self, pool: Pool) -> None:
        if pool.free_slots() == 0 or not self._reload_settings():
            return
        while pool.free_slots() > 0:
            job = self._store("claim_next", self.name, utcnow())
            if job is None:
                return
            if self.settings.split_target(job.target) is None:
                # Defence in depth: a row naming anything the whitelist does not allow (written
                # into the file by other means) fails at once and runs nothing, not even a retry.
                reason = f"refused: {job.target!r} is not allowed by {self.settings.whitelist_path}"
                logger.warning("job %d %s", job.id, reason)
                joblog.attempt_failed(self.settings.logs_dir, job, reason, final=True)
                self._store("finish", job.id, Outcome(kind=OutcomeKind.FAILED, error=reason), utcnow())
                continue
            self._running[job.id] = job
            pool.submit(job.id, job.target, job.args, job.kwargs, job.timeout)

    def _sleep_s(self) -> float | None:
        if self._stopping:
            return 0.05 if self._stop_deadline is None else max(0.0, min(0.5, self._stop_deadline - time.monotonic()))
        if self._config_problem is not None:
            return CONFIG_RETRY_S
        if not self._has_free_slot:
            return MAX_SLEEP_S  # an attempt ending wakes us; due jobs wait for a free child
        next_at = self._store("next_run_at")
        if next_at is None:
            return MAX_SLEEP_S
        return max(0.0, min(MAX_SLEEP_S, (next_at - utcnow()).total_seconds()))

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _apply_cancels(self, pool: Pool) -> None:
        while self._cancels:
            job_id = self._cancels.pop()
            if job_id in self._running:
                pool.stop_job(job_id, OutcomeKind.CANCELLED, "cancelled while running")

    # --- outcomes ----------------------------------------------------------------------------

    def _record(self, job_id: int, outcome: Outcome) -> None:
        job = self._running.pop(job_id)
        now = utcnow()
        interrupted = job_id in self._interrupted
        self._interrupted.discard(job_id)
        if interrupted and outcome.kind is OutcomeKind.CANCELLED:
            self._store("requeue", job_id, now)
            logger.info("job %d interrupted by the stop: back to pending", job_id)
            return
        self._settle(job, outcome, now)

    def _settle(self, job: Job, outcome: Outcome, now: datetime) -> None:
        """Carry out the retry decision for an attempt that ended (also for recovered jobs)."""
        logs = self.settings.logs_dir
        if outcome.succeeded or outcome.kind is OutcomeKind.CANCELLED:
            self._store("finish", job.id, outcome, now)
            if outcome.succeeded:
                joblog.job_completed(logs, job, outcome.duration_s)
            return
        run_at = backoff.next_run_at(job.policy, job.attempts, now)
        joblog.attempt_failed(logs, job, outcome.error or "", final=run_at is None)
        if run_at is None:
            self._store("finish", job.id, outcome, now)
        else:
            self._store("schedule_retry", job.id, run_at, outcome, now)

    def _recover(self) -> None:
        """Jobs left running by a worker that died become a failed attempt (never lost, never twice)."""
        now = utcnow()
        for job, owner, cancel_requested in self._store("running_jobs"):
            if owner and owner.startswith("run:") and _foreground_alive(owner):
                continue  # a `notebookjobs run` in the foreground still works on it
            if cancel_requested:
                outcome = Outcome(kind=OutcomeKind.CANCELLED, error="cancelled while its worker was down")
            else:
                outcome = Outcome(kind=OutcomeKind.CRASHED,
                                  error=f"the process running this job ({owner}) stopped before "
                                        "the attempt finished (killed or crashed)")
            logger.warning("recovering job %d left running by %s", job.id, owner)
            self._settle(job, outcome, now)


def _foreground_alive(owner: str) -> bool:
    _, host, pid = owner.split(":", 2)
    if host != socket.gethostname():
        return True  # another machine: not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notebookjobs.worker",
                                     description="Run the notebookjobs worker in the foreground.")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="children in the pool (default: worker.concurrency of whitelist.yaml)")
    parser.add_argument("--burst", action="store_true",
                        help="exit when nothing is pending or running")
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if ns.concurrency is not None and ns.concurrency < 1:
        parser.exit(2, "python -m notebookjobs.worker: --concurrency must be >= 1\n")
    try:
        settings = load_settings()
        return Worker(settings, concurrency=ns.concurrency, burst=ns.burst).run()
    except NotebookJobsError as exc:
        print(f"notebookjobs worker: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1

