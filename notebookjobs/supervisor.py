"""The worker: owns the queue file, serves clients over its socket, runs jobs in a pool of children.

``python -m notebookjobs.worker [--concurrency N] [--burst]`` runs it in the foreground.

Three kinds of threads share one ``QueueState`` (under ``_state_lock``) and one DuckDB
connection (under ``_db_lock``; always taken before the state lock, never inside it):

- the main loop: claims due jobs off the in-memory heap while children are free, sleeps until
  something happens (an attempt ends, a client dispatches or cancels, the next run_at comes, a
  signal), settles outcomes under the retry policy. It never waits for the database.
- the writer: commits the changed jobs in batches (group commit), as fast as the file allows.
- the server's threads: one per client request. Dispatches are committed before they are
  acknowledged; reads first flush the pending changes, so clients see what the loop knows.

SIGTERM/SIGINT stop it gracefully.
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
from collections import deque
from multiprocessing import resource_tracker
from datetime import datetime
from typing import Any, Sequence

from . import access, backoff, files, joblog, procgroup, validate
from .config import Settings, load_settings
from .engine import Active, QueueState
from .errors import ConfigError, NotebookJobsError, WorkerError
from .models import JobStatus, Outcome, OutcomeKind, utcnow
from .pool import Pool
from .server import SocketServer
from .store import Database

logger = logging.getLogger("notebookjobs.worker")

# The loop wakes at least this often, idle or not: to notice a clock jump, and to check that the
# queue file is still the one it opened (SPEC §14: a deleted or replaced file is reported
# within seconds). One wake-up every few seconds costs nothing measurable.
MAX_SLEEP_S = 2.0
CONFIG_RETRY_S = 1.0  # how soon an invalid whitelist.yaml is read again, and a deferred job
#: the umask the worker was started with, for its children to give back to job code
JOB_UMASK_ENV = "NOTEBOOKJOBS_JOB_UMASK"
SHUTDOWN_COMMIT_TRIES = 5  # commits tried at a stop before the last changes are given up
# The writer commits at most this often: a commit costs about the same for 1 job as for 100,
# so waiting a little makes batches larger. Clients never see the lag: reads flush first.
GROUP_COMMIT_INTERVAL_S = 0.05
ID_BLOCK = 50  # job ids reserved at a time (unused ones are skipped when the worker stops)
INTERRUPTED = "the worker stopped before the attempt finished; it will run again"
#: operations that change what the worker keeps in memory; every other one is a plain read
#: or concerns a job the worker does not run (a foreground ``notebookjobs run``)
_ENQUEUES = ("enqueue", "enqueue_batch")


class Worker:
    """One worker process: the queue's owner while it runs."""

    def __init__(self, settings: Settings, *, concurrency: int | None = None, burst: bool = False) -> None:
        self.settings = settings
        self.concurrency = concurrency or settings.worker.concurrency
        self.burst = burst
        self.name = f"worker:{socket.gethostname()}:{os.getpid()}"
        self.queue_token = procgroup.queue_token(settings.db_path)  #: marks what its jobs start
        self.started_at = utcnow()
        self.state = QueueState()
        self._state_lock = threading.RLock()
        self._db_lock = threading.Lock()
        self._changes = threading.Event()  # set when the state has changes to commit
        self._writer_done = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._running: dict[int, Active] = {}  # handed to a child
        self._ids: deque[int] = deque()  # ids reserved from the sequence for dispatches
        self._cancels: set[int] = set()
        self._interrupted: set[int] = set()
        self._stopping = False
        self._stop_deadline: float | None = None
        self._signalled = False
        self._config_problem: str | None = None
        #: what is wrong and the worker cannot fix, by kind (logs, database, whitelist): shown
        #: by worker_status() and logged once (SPEC §14: faults are reported, jobs go on)
        self.problems: dict[str, str] = {}
        self._db_identity: tuple[int, int] | None = None
        # Frames for clients go through files in a 0700 folder beside the queue (SPEC §14);
        # the folder is emptied at each start, so a killed worker leaves nothing for long.
        self._frames_dir = settings.db_path.with_name(settings.db_path.name + ".frames")

    # --- requests from clients (server threads) --------------------------------------------

    def handle(self, operation: str, args: list[Any]) -> Any:
        # Every field is checked before anything is stored or run: nothing a client sends can
        # wedge the commits or the next start (SPEC §14).
        args = validate.request(operation, args)
        if operation == "worker_status":
            return self.status()
        if operation == "stop":
            self.request_stop()
            return True
        if operation not in access.REMOTE_OPERATIONS:
            raise WorkerError(f"unknown operation {operation!r}")
        if operation in _ENQUEUES:
            return self._enqueue(operation, args)
        if operation == "cancel":
            return self._cancel(*args)
        self.flush()
        result = self._store(operation, *args)
        if operation == "query":
            return {"arrow_file": self._write_arrow(result)}
        return result

    def _enqueue(self, operation: str, args: list[Any]) -> Any:
        # Durable before we answer. One dispatch goes to the narrow inbox table (the fastest
        # durable write); the group commit moves it into the queue. A batch goes straight in.
        records: list[Active]
        if operation == "enqueue":
            spec, now = args
            with self._db_lock:
                if not self._ids:
                    with self.db.transaction() as job_store:
                        self._ids.extend(job_store.reserve_ids(ID_BLOCK))
                job_id = self._ids.popleft()
                with self.db.single_statement() as job_store:
                    job_store.put_in_inbox(job_id, spec, now)
            records = [Active.enqueued(job_id, spec, now, new=True)]
            result: Any = job_id
        else:
            batch, now = args
            with self._db_lock, self.db.transaction() as job_store:
                result = job_store.enqueue_batch(batch, now)  # indexed too: nothing left to commit
            records = [Active.from_batch(job_id, batch, i, now) for i, job_id in enumerate(result)]
        with self._state_lock:
            for record in records:
                self.state.add(record, changed=record.new)
        self.wake()
        return result

    def _cancel(self, job_id: int, now: datetime) -> str:
        with self._state_lock:
            record = self.state.active.get(job_id)
            before = None if record is None else record.status
            if before == JobStatus.PENDING:
                self.state.finish(record, JobStatus.CANCELLED, now)
            elif before is not None:
                self._cancels.add(job_id)
                self.wake()
        if before is None:  # finished, unknown, or run by a foreground `notebookjobs run`
            return self._store("cancel", job_id, now)
        self.flush()
        return before

    def _write_arrow(self, table: Any) -> str:
        import pyarrow as pa  # only when a client asks for a frame: keeps an idle worker small

        fd, path = tempfile.mkstemp(suffix=".arrow", dir=self._frames_dir)
        with os.fdopen(fd, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        return path

    def status(self) -> dict[str, Any]:
        return {"running": True, "pid": os.getpid(), "concurrency": self.concurrency,
                "started_at": self.started_at, "jobs": sorted(list(self._running)),
                "stopping": self._stopping, "db": str(self.settings.db_path),
                "problems": [self.problems[k] for k in sorted(self.problems)]}

    def _problem(self, kind: str, message: str | None) -> None:
        """Report (or with None, clear) a problem of one kind; each new one is logged once."""
        if message is None:
            if self.problems.pop(kind, None) is not None:
                logger.info("resolved: %s", kind)
            return
        if self.problems.get(kind) != message:
            logger.error("%s", message)
        self.problems[kind] = message

    def _log_job(self, write: Any, *args: Any) -> None:
        """Write a job log line; an unwritable log is a reported problem, never a stop."""
        try:
            write(self._logs_dir, *args)
        except OSError as exc:
            self._problem("logs", f"cannot write the job logs in {self._logs_dir}: {exc}; "
                          "jobs go on, their records are in the queue")
        else:
            if "logs" in self.problems:
                self._problem("logs", None)

    def _check_database(self) -> None:
        """Notice a queue file deleted or replaced under the running worker (SPEC §14)."""
        try:
            info = os.stat(self.settings.db_path)
            identity: tuple[int, int] | None = (info.st_dev, info.st_ino)
        except OSError:
            identity = None
        if identity == self._db_identity:
            if "database" in self.problems:
                self._problem("database", None)
            return
        what = "deleted" if identity is None else "replaced by another file"
        self._problem("database", f"the queue file {self.settings.db_path} was {what} while the "
                      "worker runs: what it holds now is lost when the worker stops; stop the "
                      "worker and restore the file")

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

    # --- the database ------------------------------------------------------------------------

    def _store(self, operation: str, *args: Any) -> Any:
        with self._db_lock, self.db.transaction() as job_store:
            return getattr(job_store, operation)(*args)

    def flush(self) -> None:
        """Commit every change the loop made so far (one transaction, a few statements)."""
        with self._db_lock:
            with self._state_lock:
                records, rows, new = self.state.take_dirty()
            if not rows:
                return
            try:
                with self.db.transaction() as job_store:
                    job_store.write_states(rows, new)
            except NotebookJobsError:
                if len(rows) > 1 and self._write_one_by_one(records, rows, new):
                    return
                with self._state_lock:
                    self.state.mark_dirty(records, {row[0] for row in new})
                raise
            except BaseException:
                with self._state_lock:
                    self.state.mark_dirty(records, {row[0] for row in new})
                raise

    def _write_one_by_one(self, records: list[Active], rows: list[tuple],
                          new: list[tuple]) -> bool:
        """After a batch failed: write each job alone, so one job whose state cannot be stored
        fails alone (its state is replaced by a failure that can be) instead of wedging every
        commit after it. False when no job could be written (the disk, not a job): then the
        whole batch is tried again later."""
        fresh = {row[0]: row for row in new}
        failed: list[Active] = []
        for record, row in zip(records, rows, strict=True):
            try:
                with self.db.transaction() as job_store:
                    job_store.write_states([row], [fresh[row[0]]] if row[0] in fresh else [])
            except NotebookJobsError as exc:
                failed.append(record)
                last = exc
        if len(failed) == len(records):
            return False
        for record in failed:
            logger.error("job %d: its state cannot be stored (%s); failing it", record.id, last)
            record.status, record.worker = JobStatus.FAILED.value, None
            record.result = record.output = record.progress_message = None
            record.error = f"the worker could not store this job's state ({last})"[:2000]
            with self._state_lock:
                self.state.active.pop(record.id, None)
                self.state.mark_dirty([record], {record.id} if record.id in fresh else set())
        return True

    def _writer(self) -> None:
        """Group commit: whatever changed while the last batch was being written goes next.

        A change after a quiet spell is written at once (a lone job's start and end reach the
        file within a few ms); under load, batches are at least GROUP_COMMIT_INTERVAL_S apart.
        """
        last = 0.0
        failures = 0
        while True:
            self._changes.wait()
            pause = GROUP_COMMIT_INTERVAL_S - (time.monotonic() - last)
            if pause > 0 and not self._writer_done:
                time.sleep(pause)
            last = time.monotonic()
            self._changes.clear()
            try:
                self.flush()
            except Exception as exc:  # the worker's top level: log, keep the changes, try again
                failures += 1
                self._problem("commits", f"could not write job states to {self.settings.db_path} "
                              f"({exc}); retrying")
                if self._writer_done and failures >= SHUTDOWN_COMMIT_TRIES:
                    logger.error("stopping without the last job states: those jobs are still "
                                 "pending or running in the file and run again at the next start")
                    return
                time.sleep(0.5)
                self._changes.set()
            else:
                failures = 0
                if "commits" in self.problems:
                    self._problem("commits", None)
            if self._writer_done and not self._changes.is_set():
                return

    # --- the loop ----------------------------------------------------------------------------

    def run(self) -> int:
        # First, so that an unsafe socket folder (SPEC §14) stops us before anything starts.
        self._socket_path = access.socket_path(self.settings)
        lock_fd = access.acquire_for_worker(self.settings)
        try:
            # We hold the queue's lock: whatever a killed worker left (processes, frames) is
            # nobody's now.
            self._take_over_processes()
            shutil.rmtree(self._frames_dir, ignore_errors=True)
            files.private_dir(self._frames_dir)
            self.db = Database(self.settings.db_path)
            info = os.stat(self.settings.db_path)
            self._db_identity = (info.st_dev, info.st_ino)
            try:
                return self._run_with_db()
            finally:
                self.db.close()
        finally:
            os.close(lock_fd)
            shutil.rmtree(self._frames_dir, ignore_errors=True)

    def _take_over_processes(self) -> None:
        """Kill what a dead worker of this queue left running, then mark this worker's own.

        Children kill their process groups when their worker dies, but a job that left its
        group, or a child that could not run its signal handler, outlives it. Each carries this
        queue's marker in its environment; we hold the queue's lock, so every process with a
        marker that names another worker is a leftover, which must not run on while the jobs it
        ran are recovered and run again. Called before any thread starts: setenv is not safe
        while another thread may read the environment.
        """
        killed = procgroup.kill_leftovers(self.queue_token, except_worker_pid=os.getpid(),
                                          quiet=True)  # says it better below
        if killed:
            logger.warning("killed %d process(es) left running by a previous worker of this "
                           "queue: pids %s", len(killed), killed)
        # multiprocessing's resource tracker is started with the first child otherwise: it must
        # not inherit the marker, as it outlives the children on purpose, to clean up what they
        # leaked (shared memory, semaphores), and a sweep would kill it.
        resource_tracker.ensure_running()
        # Inherited by the children at exec, so a sweep finds them too, and anything they fork.
        procgroup.mark_environment(self.queue_token, os.getpid())

    def _run_with_db(self) -> int:
        self._logs_dir = self.settings.logs_dir  # created once; joblog recreates it if deleted
        # Children take a while to spawn: load the queue meanwhile. The pool is started from this
        # thread because its children die with the thread that spawned them (PDEATHSIG).
        loader = _Thread(self._load)
        pool = Pool(self.settings.root, self.concurrency, queue_token=self.queue_token)
        try:
            pool.start()
        finally:
            loader.result()
        writer = threading.Thread(target=self._writer, name="notebookjobs-writer", daemon=True)
        writer.start()
        server = SocketServer(self._socket_path, self)
        server.start()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        logger.info("worker %s started: concurrency %d, queue %s, socket %s", os.getpid(),
                    self.concurrency, self.settings.db_path, server.path)
        try:
            self._loop(pool)
        finally:
            server.close()
            pool.close()
            self._writer_done = True
            self._changes.set()
            writer.join()
            try:
                self.flush()
            except NotebookJobsError as exc:
                logger.error("could not write the last job states (%s); those jobs run again "
                             "at the next start", exc)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        logger.info("worker %s stopped", os.getpid())
        return 0

    def _loop(self, pool: Pool) -> None:
        next_check = time.monotonic() + MAX_SLEEP_S
        while True:
            if self._signalled:
                self.request_stop()
            if not self._stopping:
                self._claim(pool)
                self._changes.set()
            if self._stopping and not self._running:
                return
            if self.burst and not self._running:
                with self._state_lock:
                    if len(self.state) == 0:
                        return
            events = pool.wait(self._sleep_s(pool), extra=[self._wake_r])
            if self._wake_r in events.ready:
                self._drain_wake()
            if time.monotonic() >= next_check:
                self._check_database()
                next_check = time.monotonic() + MAX_SLEEP_S
            with self._state_lock:
                for job_id, fraction, message in events.progress:
                    self.state.progress(job_id, fraction, validate.optional_text(message))
                for job_id, outcome in events.finished:
                    self._record(job_id, outcome)
            self._changes.set()
            self._apply_cancels(pool)
            if self._stopping and self._stop_deadline is not None and time.monotonic() >= self._stop_deadline:
                for job_id in list(self._running):
                    if job_id not in self._interrupted:
                        self._interrupted.add(job_id)
                        pool.stop_job(job_id, OutcomeKind.CANCELLED, INTERRUPTED)

    def _reload_settings(self) -> bool:
        """Pick up whitelist edits (hot reload); False while the file is invalid or allows
        nothing (maybe caught half-written): pending jobs then wait, none fails for it."""
        try:
            settings = load_settings(self.settings.root)
            if not settings.allowed:
                raise ConfigError(f"{settings.whitelist_path} allows no jobs (allowed_jobs is "
                                  "empty)")
        except ConfigError as exc:
            self._config_problem = str(exc)
            self._problem("whitelist", f"not starting jobs until whitelist.yaml is fixed: {exc}")
            return False
        self.settings = settings
        self._config_problem = None
        self._problem("whitelist", None)
        return True

    def _claim(self, pool: Pool) -> None:
        if pool.free_slots() == 0 or not self._reload_settings():
            return
        now = utcnow()
        with self._state_lock:
            while pool.free_slots() > 0:
                record = self.state.pop_due(now)
                if record is None:
                    return
                self.state.start(record, self.name, now)
                try:
                    self._submit(pool, record, now)
                except Exception as exc:  # the loop's top level: a job that cannot start fails alone
                    logger.exception("job %d could not be started", record.id)
                    self._running.pop(record.id, None)
                    reason = f"the worker could not start this job: {type(exc).__name__}: {exc}"
                    self.state.finish(record, JobStatus.FAILED, now, error=validate.text(reason))

    def _submit(self, pool: Pool, record: Active, now: datetime) -> None:
        job = record.job
        if self.settings.split_target(job.target) is None:
            if self.settings.settling():
                # Maybe a whitelist caught half-written: ask again once it has settled.
                self.state.requeue(record, validate.later(now, CONFIG_RETRY_S))
                return
            # Defence in depth: a row naming anything the whitelist does not allow (written
            # into the file by other means) fails at once and runs nothing.
            reason = f"refused: {job.target!r} is not allowed by {self.settings.whitelist_path}"
            logger.warning("job %d %s", job.id, reason)
            self._log_job(joblog.attempt_failed, record.snapshot(), reason, True)
            self.state.finish(record, JobStatus.FAILED, now, error=reason)
            return
        self._running[job.id] = record
        pool.submit(job.id, job.target, job.args, job.kwargs, job.timeout)

    def _sleep_s(self, pool: Pool) -> float | None:
        if self._stopping:
            return 0.05 if self._stop_deadline is None else max(0.0, min(0.5, self._stop_deadline - time.monotonic()))
        if self._config_problem is not None:
            return CONFIG_RETRY_S
        if pool.free_slots() == 0:
            return MAX_SLEEP_S  # an attempt ending wakes us; due jobs wait for a free child
        with self._state_lock:
            next_at = self.state.next_run_at()
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

    # --- outcomes (called with the state lock held) -----------------------------------------

    def _record(self, job_id: int, outcome: Outcome) -> None:
        record = self._running.pop(job_id)
        interrupted = job_id in self._interrupted
        self._interrupted.discard(job_id)
        now = utcnow()
        if interrupted and outcome.kind is OutcomeKind.CANCELLED:
            self.state.requeue(record, now)
            logger.info("job %d interrupted by the stop: back to pending", job_id)
            return
        if outcome.kind is OutcomeKind.DEFERRED:
            self.state.requeue(record, validate.later(now, CONFIG_RETRY_S))
            logger.info("job %d not started (%s): back to pending", job_id, outcome.error)
            return
        # What a job prints, returns and raises enters the queue here: text made valid UTF-8,
        # the result a JSON value (SPEC §14).
        self._settle(record, validate.outcome(outcome), now)

    def _settle(self, record: Active, outcome: Outcome, now: datetime) -> None:
        """Carry out the retry decision for an attempt that ended (also for recovered jobs)."""
        if outcome.succeeded:
            self.state.finish(record, JobStatus.COMPLETED, now, result=outcome.result, output=outcome.output)
            self._log_job(joblog.job_completed, record.snapshot(), outcome.duration_s)
            return
        if outcome.kind is OutcomeKind.CANCELLED:
            self.state.finish(record, JobStatus.CANCELLED, now, error=outcome.error, output=outcome.output)
            return
        run_at = backoff.next_run_at(record.job.policy, record.attempts, now)
        self._log_job(joblog.attempt_failed, record.snapshot(), outcome.error or "", run_at is None)
        if run_at is None:
            self.state.finish(record, JobStatus.FAILED, now, error=outcome.error, output=outcome.output)
        else:
            self.state.retry(record, run_at, now, error=outcome.error, output=outcome.output)

    def _load(self) -> None:
        """Take over the file's pending jobs, and settle the ones a dead worker left running as
        a failed attempt: never lost, never run twice at once."""
        now = utcnow()
        self._store("reindex_pending")  # dispatches the last worker had not indexed yet
        rows = self._store("active_jobs")
        with self._state_lock:
            for job, owner, cancel_requested in rows:
                if job.status == JobStatus.PENDING:
                    self.state.add(Active.from_job(job))
                    continue
                if owner and owner.startswith("run:") and _foreground_alive(owner):
                    continue  # a `notebookjobs run` in the foreground still works on it
                record = Active.from_job(job, owner)
                self.state.active[job.id] = record
                if cancel_requested:
                    outcome = Outcome(kind=OutcomeKind.CANCELLED, error="cancelled while its worker was down")
                else:
                    outcome = Outcome(kind=OutcomeKind.CRASHED,
                                      error=f"the process running this job ({owner}) stopped before "
                                            "the attempt finished (killed or crashed)")
                logger.warning("recovering job %d left running by %s", job.id, owner)
                self._settle(record, outcome, now)
        self.flush()


class _Thread(threading.Thread):
    """Run ``target`` in a thread now; ``result()`` joins it and re-raises its exception."""

    def __init__(self, target: Any) -> None:
        super().__init__(name="notebookjobs-loader", daemon=True)
        self._target_fn, self._error = target, None
        self.start()

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:  # handed to the thread that waits for it
            self._error = exc

    def result(self) -> None:
        self.join()
        if self._error is not None:
            raise self._error


def _foreground_alive(owner: str) -> bool:
    """Whether the foreground ``notebookjobs run`` named ``run:host:pid`` still runs (a name of
    any other shape is no live process: its job is recovered)."""
    parts = owner.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        return False
    _, host, pid = parts
    if host != socket.gethostname():
        return True  # another machine: not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
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
    # Everything the worker creates (the DB and its WAL, logs, frames, the socket) is private
    # to its owner (SPEC §14); the jobs get the umask we were started with back (see pool).
    job_umask = os.umask(files.PRIVATE_UMASK)
    os.environ[JOB_UMASK_ENV] = str(job_umask)
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

