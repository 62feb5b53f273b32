"""The worker's loop: start due jobs on free children, settle the attempts that end, carry out
cancels and the graceful stop. The clock is passed in (``clock``), so the loop's decisions have
in-process tests; where attempts run is behind ``Executor`` (``pool.Pool``, the local children,
or ``dask_executor.DaskExecutor``, a Dask cluster): nothing here knows which.

It never waits for the database: every change goes through a function of ``transitions`` into
the in-memory ``QueueState``, and the writer commits it (``on_change``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..config import Settings, load_settings
from ..data.joblog import JobLog, JobLogError
from ..errors import ConfigError
from ..model import transitions, validate
from ..model.records import Job, JobStatus, Outcome, OutcomeKind, utcnow
from .core import Core
from .defaults import CONFIG_RETRY_S, INTERRUPTED, MAX_SLEEP_S
from .executors.protocol import Events, Executor
from .problems import Problems
from .state import PENDING, RUNNING

logger = logging.getLogger(__name__)


def _nothing() -> None:
    pass


@dataclass(frozen=True)
class LoopSetup:
    """What a ``Loop`` runs with; the worker's assembly (``main.Worker._run``) fills it in."""

    #: whitelist.yaml as read at the start; read again before each claim (hot reload)
    settings: Settings
    #: the jobs in memory (``Core.memory()``: the loop never opens the file, the writer does)
    core: Core
    #: where attempts run: the local pool (``pool.Pool``) or a Dask cluster
    executor: Executor
    #: the two job logs, written as attempts end
    joblog: JobLog
    #: what the user must fix (whitelist, job logs, schedules), for ``worker_status()``
    problems: Problems
    #: there are changes for the writer to commit (``Writer.wake``)
    on_change: Callable[[], None]
    #: the periodic checks (the queue file still there, foreground runs' owners), every
    #: MAX_SLEEP_S
    health: Callable[[], None] = _nothing
    #: reads new dispatches in from the journal (``Intake.poll``); how many jobs
    ingest: Callable[[], int] = lambda: 0
    #: sockets whose readiness means "the journal grew" (``drain()`` empties each)
    wakers: Sequence[Any] = ()
    #: the time now, passed in so that the loop's decisions have in-process tests
    clock: Callable[[], datetime] = utcnow
    #: end once nothing is pending or running (``--burst``)
    burst: bool = False
    #: dispatches the due ticks of whitelist.yaml's schedules; when the next one is due
    schedules: Callable[[datetime], datetime | None] | None = None
    #: called once, as the stop begins (from any thread): the queries are interrupted
    on_stop: Callable[[], None] = _nothing


class Loop:
    """The worker's main loop over the jobs in memory (``setup``: ``LoopSetup``)."""

    def __init__(self, setup: LoopSetup) -> None:
        self.settings = setup.settings
        self.core, self.state = setup.core, setup.core.state  #: state: within core.memory()
        self.executor, self.joblog, self.problems = setup.executor, setup.joblog, setup.problems
        self.on_change, self.health, self.ingest = setup.on_change, setup.health, setup.ingest
        self.wakers = list(setup.wakers)
        self.clock, self.burst, self.schedules = setup.clock, setup.burst, setup.schedules
        self.on_stop = setup.on_stop
        self._next_tick: datetime | None = None
        self.name = f"worker:{socket.gethostname()}:{os.getpid()}"
        #: job ids handed to the executor (running, or waiting there to begin: then pending),
        #: each with where its attempt runs (``Job.ran_on``), which the loop only records
        self.handed: dict[int, str] = {}
        self.stopping = False
        self._stop_deadline: float | None = None
        self._cancels: set[int] = set()
        self._interrupted: set[int] = set()
        self._config_problem = False
        self._signalled = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # --- from other threads, and signal handlers -------------------------------------------

    def wake(self) -> None:
        """End the loop's sleep (a dispatch, a cancel, a stop)."""
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # the pipe is full: the loop is already due to wake

    def request_stop(self) -> None:
        """Stop taking jobs; running ones get ``worker.grace_period`` seconds to finish."""
        if not self.stopping:
            logger.info("stopping: no new jobs; running ones have %gs to finish",
                        self.settings.worker.grace_period)
            self.stopping = True
            self._stop_deadline = time.monotonic() + self.settings.worker.grace_period
            self.on_stop()
        self.wake()

    def on_signal(self, signum: int, frame: Any) -> None:
        """SIGTERM and SIGINT. Only flag and wake: logging or locking here can deadlock."""
        self._signalled = True
        self.wake()

    def cancel(self, job_id: int) -> None:
        """Stop the running attempt of ``job_id`` (its job was flagged by the caller)."""
        self._cancels.add(job_id)
        self.wake()

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        """Until stopped (and, in burst mode, until nothing is pending or running)."""
        next_check = time.monotonic() + MAX_SLEEP_S
        while True:
            if self._signalled:
                self.request_stop()
            self.ingest()
            if not self.stopping:
                self.tick(self.clock())
                self.claim(self.clock())
            if self.stopping and not self.handed:
                return
            if self.burst and not self.handed:
                with self.core.memory():
                    if len(self.state) == 0:
                        return
            events = self.executor.wait(self._sleep_s(), extra=[self._wake_r, *self.wakers])
            if self._wake_r in events.ready:
                self._drain_wake()
            for waker in self.wakers:
                if waker in events.ready:
                    waker.drain()
            if time.monotonic() >= next_check:
                self.health()
                next_check = time.monotonic() + MAX_SLEEP_S
            self.record(events, self.clock())
            self._apply_cancels()
            self._interrupt_after_grace()

    @property
    def running(self) -> list[int]:
        """The ids of the jobs whose attempts run now."""
        with self.core.memory():
            return sorted(
                i
                for i in self.handed
                if (job := self.state.get(i)) is not None and job.status == RUNNING
            )

    def claim(self, now: datetime) -> None:
        """Hand due jobs to the executor, best first (SPEC §5), while it has room. They stay
        pending until it says they began (so one waiting behind another is not "running")."""
        if self.executor.free_slots() == 0 or not self._reload_settings():
            return
        with self.core.memory(), self._logs():
            while self.executor.free_slots() > 0:
                job = self.state.pop_due(now)
                if job is None:
                    break
                try:
                    self._hand(job, now)
                # The loop's top level: a job that cannot start fails alone.
                except Exception as exc:
                    logger.exception("job %d could not be started", job.id)
                    self.handed.pop(job.id, None)
                    reason = f"the worker could not start this job: {type(exc).__name__}: {exc}"
                    self._fail(transitions.start(job, self.name, now), validate.text(reason), now)
        # The attempts go out before the writer is woken: on 2 cores its thread would take
        # the GIL and a core from the start (traced: ~0.3-1 ms of dispatch -> start).
        self.executor.flush()
        self.on_change()

    def tick(self, now: datetime) -> None:
        """Dispatch the schedules' due ticks (the worker is their scheduler: SPEC §16)."""
        if self.schedules is None:
            return
        try:
            self._next_tick = self.schedules(now)
        except Exception as exc:  # the loop's top level: a schedule must not stop the worker
            logger.exception("the schedules could not be run")
            self.problems.report("schedules", f"schedules not run: {type(exc).__name__}: {exc}")
            self._next_tick = validate.later(now, CONFIG_RETRY_S)

    def _hand(self, job: Job, now: datetime) -> None:
        if not self.settings.allows(job.target):
            if self.settings.settling():
                # Maybe a whitelist caught half-written: ask again once it has settled.
                self.state.update(job.evolve(run_at=validate.later(now, CONFIG_RETRY_S)))
                return
            # Defence in depth: a row naming anything the whitelist does not allow (written
            # into the file by other means) fails at once and runs nothing.
            reason = f"refused: {job.target!r} is not allowed by {self.settings.whitelist_path}"
            logger.warning("job %d %s", job.id, reason)
            self._fail(transitions.start(job, self.name, now), reason, now)
            return
        self.handed[job.id] = self.executor.submit(job.id, job.target, job.args, job.kwargs,
                                                   job.timeout)
        logger.debug("job %d started: %s, attempt %d", job.id, job.target, job.attempts)

    def record(self, events: Events, now: datetime) -> None:
        """Attempts that began, progress reports, the attempts that ended (settled under the
        retry policy) and those handed back unstarted."""
        if not (events.started or events.progress or events.finished or events.returned):
            return
        with self.core.memory(), self._logs():
            for job_id, began in events.started:
                self._began(job_id, began)
            for job_id, fraction, message in events.progress:
                job = self.state.get(job_id)
                if job is not None and job.status == RUNNING:
                    self.state.update(
                        transitions.progress(job, fraction, validate.optional_text(message))
                    )
            for job_id, outcome in events.finished:
                self._finished(job_id, outcome, now)
            for job_id in events.returned:
                self.handed.pop(job_id, None)
                self._interrupted.discard(job_id)
                job = self.state.get(job_id)
                if job is not None and job.status == PENDING:
                    self.state.retake(job)  # back in the run order, as it was
        self.on_change()

    def _began(self, job_id: int, now: datetime) -> None:
        """An attempt began: pending -> running, the attempt counted, where it runs recorded."""
        job = self.state.get(job_id)
        if job is not None and job.status == PENDING and job_id in self.handed:
            self.state.update(transitions.start(job, self.name, now, self.handed[job_id]))

    def _finished(self, job_id: int, outcome: Outcome, now: datetime) -> None:
        self._began(job_id, now)  # an executor that does not say when attempts begin
        self.handed.pop(job_id, None)
        job = self.state.get(job_id)
        if job is None or job.status != RUNNING:
            return  # not ours (any more)
        interrupted = job_id in self._interrupted
        self._interrupted.discard(job_id)
        if interrupted and outcome.kind is OutcomeKind.CANCELLED:
            self.state.update(transitions.requeue(job, now))
            logger.info("job %d interrupted by the stop: back to pending", job_id)
        elif outcome.kind is OutcomeKind.DEFERRED:
            self.state.update(transitions.requeue(job, validate.later(now, CONFIG_RETRY_S)))
            logger.info("job %d not started (%s): back to pending", job_id, outcome.error)
        else:
            # What a job prints, returns and raises enters the queue here: text made valid
            # UTF-8, the result a JSON value (SPEC §14).
            self._settle(job, validate.outcome(outcome), now)

    def _settle(self, job: Job, outcome: Outcome, now: datetime) -> None:
        """The retry decision for an attempt that ended, and its log line."""
        settled = transitions.settle(job, outcome, now)
        self.state.update(settled)
        logger.debug("job %d attempt %d %s: now %s", job.id, job.attempts, outcome.kind.value,
                     settled.status)
        self._log(settled, outcome)

    def _fail(self, job: Job, reason: str, now: datetime) -> None:
        """Fail a job that may not or cannot start, without a retry, and log it."""
        failed = transitions.fail(job, reason, now)
        self.state.update(failed)
        self._log(failed, Outcome(kind=OutcomeKind.FAILED, error=reason))

    def _log(self, settled: Job, outcome: Outcome) -> None:
        """A job log line for an attempt that ended; an unwritable log is a reported problem."""
        try:
            if settled.status == JobStatus.COMPLETED:
                self.joblog.completed(settled, outcome.duration_s)
            elif settled.status != JobStatus.CANCELLED:
                self.joblog.attempt_failed(settled, outcome.error or "",
                                           final=settled.status == JobStatus.FAILED)
        except OSError as exc:
            self._log_problem(exc)

    @contextlib.contextmanager
    def _logs(self) -> Iterator[None]:
        """The job log records of the block, written as it ends (``JobLog.held``)."""
        try:
            with self.joblog.held():
                yield
        except JobLogError as exc:
            self._log_problem(exc)
        else:
            if self.joblog.wrote:
                self.problems.clear("logs")

    def _log_problem(self, exc: OSError) -> None:
        """A job log that cannot be written is a reported problem, never a stop."""
        self.problems.report("logs", f"cannot write the job logs in {self.joblog.logs_dir}: "
                             f"{exc}; jobs go on, their records are in the queue")

    def recover(self, jobs: list[Job], now: datetime, *, alive: Callable[[str], bool],
                known: Mapping[int, str] | None = None) -> None:
        """Take over the file's pending jobs, and settle the ones a dead worker left running as
        a failed attempt (``transitions.recover``): never lost, never run twice at once.
        ``alive(owner)``: whether a foreground ``notebookjobs run`` still works on its job;
        ``known``: the file's statuses of the jobs they wait for (``after``)."""
        with self.core.memory(), self._logs():
            for job in jobs:  # in id order: what a job waits for is taken over before it
                if job.status == JobStatus.PENDING:
                    self.state.add(job, known=known, now=now)
                elif not (job.worker and job.worker.startswith("run:") and alive(job.worker)):
                    logger.warning("recovering job %d left running by %s", job.id, job.worker)
                    self.state.add(job)
                    settled = transitions.recover(job, now)
                    self.state.update(settled)
                    self._log(settled, Outcome(kind=OutcomeKind.CRASHED, error=settled.error))
        self.on_change()

    # --- internals -----------------------------------------------------------------------------

    def _reload_settings(self) -> bool:
        """Pick up whitelist edits (hot reload); False while the file is invalid or allows
        nothing (maybe caught half-written): pending jobs then wait, none fails for it."""
        try:
            settings = load_settings(self.settings.root)
            if not settings.allows_anything:
                raise ConfigError(f"{settings.whitelist_path} allows no jobs (allowed_jobs and "
                                  "allowed_notebooks are empty)")
        except ConfigError as exc:
            self._config_problem = True
            self.problems.report("whitelist", f"not starting jobs until whitelist.yaml is "
                                 f"fixed: {exc}")
            return False
        self.settings = settings
        self._config_problem = False
        self.problems.clear("whitelist")
        return True

    def _sleep_s(self) -> float | None:
        if self.stopping:
            if self._stop_deadline is None:
                return 0.05
            return max(0.0, min(0.5, self._stop_deadline - time.monotonic()))
        if self._config_problem:
            return CONFIG_RETRY_S
        next_at = None  # no free child: an attempt ending wakes us; due jobs wait for room
        if self.executor.free_slots() > 0:
            with self.core.memory():
                next_at = self.state.next_run_at()
        if self._next_tick is not None and (next_at is None or self._next_tick < next_at):
            next_at = self._next_tick
        if next_at is None:
            return MAX_SLEEP_S
        return max(0.0, min(MAX_SLEEP_S, (next_at - self.clock()).total_seconds()))

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _apply_cancels(self) -> None:
        while self._cancels:
            job_id = self._cancels.pop()
            if job_id in self.handed:
                self.executor.stop_job(job_id, OutcomeKind.CANCELLED, "cancelled while running")

    def _interrupt_after_grace(self) -> None:
        if not self.stopping:
            return
        over = self._stop_deadline is not None and time.monotonic() >= self._stop_deadline
        for job_id in list(self.handed):
            if job_id in self._interrupted:
                continue
            job = self.state.get(job_id)
            if over or (job is not None and job.status == PENDING):
                # One that has not begun goes back at once; a running one after the grace
                self._interrupted.add(job_id)
                self.executor.stop_job(job_id, OutcomeKind.CANCELLED, INTERRUPTED)

    def close(self) -> None:
        os.close(self._wake_r)
        os.close(self._wake_w)
