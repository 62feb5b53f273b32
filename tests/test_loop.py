"""The worker's loop in process, with the clock passed in and the attempts run inline.

``Inline`` is an ``Executor`` that runs each attempt at once in this process with the real
runner (``worker.runner.execute``), as ``notebookjobs run`` does: the loop's decisions (order,
retries, refusals, deferrals, cancels) are checked without spawning a pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notebookjobs import config
from notebookjobs.attempt.runner import execute
from notebookjobs.data.joblog import JobLog
from notebookjobs.model import transitions
from notebookjobs.model.records import LOCAL, JobSpec, Outcome, OutcomeKind, RetryPolicy
from notebookjobs.store import Database
from notebookjobs.worker.core import Core
from notebookjobs.worker.loop import Loop, LoopSetup
from notebookjobs.worker.problems import Problems
from notebookjobs.worker.state import QueueState

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@dataclass
class Events:
    finished: list[tuple[int, Outcome]] = field(default_factory=list)
    progress: list[tuple[int, float | None, str | None]] = field(default_factory=list)
    ready: list[Any] = field(default_factory=list)
    started: list[tuple[int, datetime]] = field(default_factory=list)
    returned: list[int] = field(default_factory=list)


class Inline:
    """An executor of ``slots`` attempts that runs each one when it is submitted."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.started: list[int] = []  #: job ids, in the order they were submitted
        self.held: set[int] = set()  #: jobs to keep "running" until stopped
        self.where = LOCAL  #: where submit() says each attempt runs
        self.says_started = True  #: whether wait() reports attempts that began
        self._running: set[int] = set()
        self._events = Events()

    def free_slots(self) -> int:
        return self.slots - len(self._running)

    def submit(self, job_id: int, target: str, args: list[Any], kwargs: dict[str, Any],
               timeout: float | None) -> str:
        self.started.append(job_id)
        self._running.add(job_id)
        if self.says_started:
            self._events.started.append((job_id, T0))
        if job_id not in self.held:
            outcome = execute(config.load_settings(), target, args, kwargs)
            self._end(job_id, outcome)
        return self.where

    def flush(self) -> None:
        pass  # submit() runs each attempt at once

    def wait(self, timeout: float | None, extra: Any = ()) -> Events:
        events, self._events = self._events, Events()
        return events

    def stop_job(self, job_id: int, kind: OutcomeKind, reason: str) -> bool:
        if job_id not in self._running:
            return False
        self._end(job_id, Outcome(kind=kind, error=reason))
        return True

    def _end(self, job_id: int, outcome: Outcome) -> None:
        self._running.discard(job_id)
        self._events.finished.append((job_id, outcome))


@pytest.fixture
def make_loop(project):
    made: list[Database] = []

    def make(slots: int = 2) -> tuple[Loop, QueueState, Inline]:
        settings, executor = config.load_settings(), Inline(slots)
        made.append(Database(settings.db_path))
        core = Core(made[-1])
        loop = Loop(LoopSetup(settings=settings, core=core, executor=executor,
                              joblog=JobLog(project.root / "logs"), problems=Problems(),
                              on_change=lambda: None, clock=lambda: T0))
        return loop, core.state, executor

    yield make
    for db in made:
        db.close()


def add(state: QueueState, job_id: int, target: str = "jobs.testing.ok", args: list | None = None,
        priority: int = 0, delay_s: float = 0, attempts: int = 2) -> None:
    spec = JobSpec(target=target, args=args if args is not None else [1], kwargs={},
                   priority=priority, run_at=T0 + timedelta(seconds=delay_s),
                   policy=RetryPolicy(retry_attempts=attempts, retry_delay=30))
    state.add(transitions.pending(job_id, spec, T0))


def step(loop: Loop, at: datetime = T0) -> None:
    """One turn of the loop at ``at``: start what is due, then settle what ended."""
    loop.claim(at)
    loop.record(loop.executor.wait(0), at)


def test_due_jobs_start_best_first_on_free_slots_and_settle(make_loop):
    loop, state, executor = make_loop(slots=2)
    add(state, 1, priority=1)
    add(state, 2, priority=5)
    add(state, 3, priority=9, delay_s=60)  # not due yet
    add(state, 4, priority=3)
    executor.held.add(2)  # job 2 keeps one slot busy
    step(loop)
    # The due jobs started best first (the delayed one did not), on the slot left free
    assert executor.started == [2, 4, 1]
    changed, _ = state.take_changes()
    assert {j.id: j.status for j in changed} == {2: "running", 4: "completed", 1: "completed"}
    # The next turn is due when job 3 is
    assert state.next_run_at() == T0 + timedelta(seconds=60)
    step(loop, T0 + timedelta(seconds=59))
    assert executor.started == [2, 4, 1]
    step(loop, T0 + timedelta(seconds=60))
    assert executor.started == [2, 4, 1, 3]


def test_a_failed_attempt_comes_back_after_the_retry_delay(make_loop):
    loop, state, executor = make_loop(slots=1)
    add(state, 1, target="jobs.testing.fail", args=["boom"], attempts=1)
    step(loop)
    job = state.get(1)
    assert job is not None and (job.status, job.attempts) == ("pending", 1)
    assert job.run_at == T0 + timedelta(seconds=30) and "ValueError: boom" in (job.error or "")
    step(loop, T0 + timedelta(seconds=29))
    assert executor.started == [1]
    step(loop, T0 + timedelta(seconds=30))
    changed, _ = state.take_changes()
    assert [(j.status, j.attempts) for j in changed] == [("failed", 2)]


def test_a_target_the_whitelist_no_longer_allows_fails_without_running(make_loop, project):
    loop, state, executor = make_loop()
    add(state, 1, target="jobs.testing.not_listed")  # not in the whitelist: a forged row
    project.write_whitelist(project.root.joinpath("whitelist.yaml").read_text(), age=60)
    step(loop)
    assert executor.started == []
    changed, _ = state.take_changes()
    assert [(j.status, j.attempts) for j in changed] == [("failed", 1)]
    assert "refused" in (changed[0].error or "")


def test_while_the_whitelist_settles_a_refused_job_waits_instead(make_loop, project):
    loop, state, executor = make_loop()
    add(state, 1, target="jobs.testing.not_listed")
    project.write_whitelist(project.root.joinpath("whitelist.yaml").read_text())  # just now
    step(loop)
    job = state.get(1)
    assert job is not None and (job.status, job.attempts) == ("pending", 0)
    assert job.run_at == T0 + timedelta(seconds=1) and executor.started == []


def test_cancel_of_a_running_job_stops_it_and_cancels_it(make_loop):
    loop, state, executor = make_loop()
    executor.held.add(1)
    add(state, 1)
    loop.claim(T0)
    handed = state.get(1)
    assert handed is not None and handed.status == "pending"  # handed out, not begun yet
    loop.record(executor.wait(0), T0)  # the executor says it began
    running = state.get(1)
    assert running is not None and running.status == "running"
    state.update(transitions.cancel(running, T0))
    loop.cancel(1)
    loop._apply_cancels()
    loop.record(executor.wait(0), T0)
    changed, _ = state.take_changes()
    assert changed[-1].status == "cancelled" and changed[-1].error == "cancelled while running"


@pytest.mark.parametrize("says_started", [True, False])
def test_where_each_attempt_ran_is_recorded_as_it_begins(make_loop, says_started):
    # Given an executor that places attempts on named hosts (as a Dask cluster's workers)
    loop, state, executor = make_loop(slots=1)
    executor.where, executor.says_started = "tcp://w:1", says_started
    executor.held.add(1)
    add(state, 1)
    loop.claim(T0)
    handed = state.get(1)
    assert handed is not None and handed.ran_on is None  # handed out, not begun
    # When its first attempt fails and the next one runs elsewhere
    loop.record(executor.wait(0), T0)
    executor.stop_job(1, OutcomeKind.CRASHED, "its host was lost")
    loop.record(executor.wait(0), T0)
    executor.held.clear()
    executor.where = "tcp://w:2"
    step(loop, T0 + timedelta(seconds=30))
    # Then each counted attempt says where it ran, whether or not the executor said when it
    # began (the loop then counts it begun when it ends)
    changed, _ = state.take_changes()
    assert (changed[-1].status, changed[-1].attempts) == ("completed", 2)
    assert changed[-1].ran_on == ["tcp://w:1", "tcp://w:2"]
