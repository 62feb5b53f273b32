"""The worker's memory of workflows (SPEC §16), in process with the clock passed in: no job is
handed out while what it waits for has not completed; an ending releases or cancels its waiters
in cascade; unique keys find the pending or running job."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta

from notebookjobs.model import dependencies, transitions
from notebookjobs.model.records import Job, JobSpec, Outcome, OutcomeKind, RetryPolicy
from notebookjobs.targets.arguments import unique_key
from notebookjobs.targets.registry import Target
from notebookjobs.worker.state import QueueState

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(seconds=5)
POLICY = RetryPolicy(retry_attempts=0)


def add(state: QueueState, job_id: int, after: tuple[int, ...] = (), key: str | None = None,
        known: dict[int, str] | None = None) -> Job:
    spec = JobSpec(target="jobs.testing.ok", args=[], kwargs={}, priority=0, run_at=T0,
                   policy=POLICY, after=after, unique_key=key)
    job = transitions.pending(job_id, spec, T0)
    state.add(job, known=known, now=T0)
    return job


def take(state: QueueState) -> Job:
    """What the loop does with a free child: the next due job, started (one must be due)."""
    job = state.pop_due(T0)
    assert job is not None, "no job is handed out"
    started = transitions.start(job, "w", T0)
    state.update(started)
    return started


def idle(state: QueueState) -> bool:
    """Whether no job is handed out now."""
    return state.pop_due(T0) is None


def end(state: QueueState, job: Job, kind: OutcomeKind) -> None:
    state.update(transitions.settle(job, Outcome(kind=kind, error="x"), LATER))


def test_a_waiting_job_is_handed_out_only_once_all_it_waits_for_completed():
    state = QueueState()
    add(state, 1)
    add(state, 2)
    add(state, 3, after=(1, 2))
    first, second = take(state), take(state)
    assert (first.id, second.id) == (1, 2)
    # Job 3 is due but waits: nothing is handed out, and the loop need not wake for it
    assert idle(state) and state.next_run_at() is None
    end(state, first, OutcomeKind.SUCCEEDED)
    assert idle(state)
    end(state, second, OutcomeKind.SUCCEEDED)
    assert take(state).id == 3


def test_a_failure_cancels_the_waiters_in_cascade_at_the_time_it_ended():
    state = QueueState()
    add(state, 1)
    add(state, 2, after=(1,))
    add(state, 3, after=(2,))
    add(state, 4, after=(1,))
    add(state, 5)
    end(state, take(state), OutcomeKind.FAILED)
    changed = {job.id: job for job in state.take_changes()[0]}
    assert {i: (changed[i].status, changed[i].error) for i in (2, 3, 4)} == {
        2: ("cancelled", "dependency 1 failed"), 3: ("cancelled", "dependency 2 cancelled"),
        4: ("cancelled", "dependency 1 failed")}
    assert changed[3].finished_at == LATER
    assert take(state).id == 5 and idle(state)


def test_a_cancelled_waiter_is_forgotten_and_a_cancelled_dependency_cancels():
    state = QueueState()
    add(state, 1)
    waiter = add(state, 2, after=(1,))
    add(state, 3, after=(1,))
    state.update(transitions.cancel(waiter, T0))  # the user cancels a waiting job
    assert 2 not in state.waits and state.waits.waiters[1] == {3}
    first = state.get(1)
    assert first is not None
    state.update(transitions.cancel(first, T0))
    assert state.status_of(3) == "cancelled" and state.waits.blocked == {}


def test_dependencies_the_state_does_not_hold_come_from_the_file():
    state = QueueState()
    # Job 2 waits for job 1, completed long ago (the file says so): it runs
    add(state, 2, after=(1,), known={1: "completed"})
    # Job 4 waits for job 3, failed long ago: it is cancelled when it is added
    add(state, 4, after=(3,), known={3: "failed"})
    # Job 6 waits for job 5, which nothing knows of, and job 7 for a later one: cancelled
    add(state, 6, after=(5,), known={})
    add(state, 7, after=(8,), known={8: "pending"})
    assert take(state).id == 2 and idle(state)
    errors = {job.id: job.error for job in state.take_changes()[0]}
    assert errors[4] == "dependency 3 failed"
    assert errors[6] == f"dependency 5 {dependencies.MISSING}"
    assert errors[7] == f"dependency 8 {dependencies.NOT_EARLIER}"


def test_a_foreground_run_that_ends_releases_its_waiters():
    state = QueueState()
    add(state, 2, after=(1,), known={1: "running"})
    assert idle(state)
    foreground = Job(id=1, target="jobs.testing.ok", args=[], kwargs={}, status="completed",
                     priority=0, attempts=1, max_attempts=1, created_at=T0, run_at=T0,
                     finished_at=LATER)
    state.dependency_ended(foreground)
    assert take(state).id == 2


def test_a_unique_key_names_the_pending_or_running_job_until_it_ends():
    state = QueueState()
    add(state, 1, key="k")
    assert state.unique_job("k") == 1 and state.unique_job("other") is None
    job = take(state)
    assert state.unique_job("k") == 1
    end(state, job, OutcomeKind.SUCCEEDED)
    assert state.unique_job("k") is None


def test_unique_true_keys_on_target_and_arguments():
    def f(a: int, b: int = 2) -> None: ...

    target = Target(name="jobs.a.f", owner=None, member="f", kind="function",
                    signature=inspect.signature(f), doc="")
    key = unique_key(target, [1], {"b": 2}, True)
    assert key == unique_key(target, [1], {"b": 2}, True)
    assert key != unique_key(target, [2], {"b": 2}, True)
    assert key is not None and key.startswith("jobs.a.f:")
    assert unique_key(target, [], {}, False) is None
    assert unique_key(target, [], {}, "mine") == "mine"
