"""The worker's in-memory queue and the transitions, in process, with the clock passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notebookjobs.errors import JobStateError
from notebookjobs.model import transitions
from notebookjobs.model.records import Job, JobSpec, Outcome, OutcomeKind, RetryPolicy
from notebookjobs.worker.state import QueueState

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(retry_attempts=2, retry_delay=30, retry_backoff=2.0)


def _job(state: QueueState, job_id: int, priority: int = 0, delay_s: float = 0.0) -> Job:
    spec = JobSpec(target="jobs.testing.ok", args=[], kwargs={}, priority=priority,
                   run_at=T0 + timedelta(seconds=delay_s), policy=POLICY)
    job = transitions.pending(job_id, spec, T0)
    state.add(job)
    return job


def _take(state: QueueState, now: datetime) -> Job | None:
    """What the loop does with a free child: the next due job, started."""
    job = state.pop_due(now)
    if job is None:
        return None
    started = transitions.start(job, "w", now)
    state.update(started)
    return started


def _take_one(state: QueueState, now: datetime) -> Job:
    """``_take`` where a job must be due."""
    job = _take(state, now)
    assert job is not None, f"no job due at {now}"
    return job


def test_a_delayed_high_priority_job_does_not_hide_due_ones():
    # Given a delayed priority-7 job and four due priority-0 jobs
    state = QueueState()
    _job(state, 1, priority=7, delay_s=300)
    for job_id in range(2, 6):
        _job(state, job_id)
    # When the worker takes due jobs now, it gets the four due ones, in id order
    taken = []
    while (job := _take(state, T0)) is not None:
        taken.append(job.id)
    assert taken == [2, 3, 4, 5]
    # Then it sleeps until the delayed one is due, which then comes first
    assert state.next_run_at() == T0 + timedelta(seconds=300)
    assert _take(state, T0 + timedelta(seconds=299)) is None
    assert _take_one(state, T0 + timedelta(seconds=300)).id == 1


def test_among_due_jobs_priority_then_run_at_then_id():
    state = QueueState()
    _job(state, 1, priority=1, delay_s=2)
    _job(state, 2, priority=5, delay_s=3)
    _job(state, 3, priority=5, delay_s=1)
    _job(state, 4, priority=1, delay_s=2)
    now = T0 + timedelta(seconds=10)
    order = []
    while (job := _take(state, now)) is not None:
        order.append(job.id)
    assert order == [3, 2, 1, 4]


def test_a_failed_attempt_is_retried_with_backoff_then_fails():
    state = QueueState()
    _job(state, 1)
    boom = Outcome(kind=OutcomeKind.FAILED, error="boom")
    # First attempt fails: back to pending, 30 s later (retry_delay)
    job = transitions.settle(_take_one(state, T0), boom, T0)
    state.update(job)
    assert (job.status, job.attempts, job.run_at) == ("pending", 1, T0 + timedelta(seconds=30))
    assert _take(state, T0 + timedelta(seconds=29)) is None
    # Second fails at t=40: 60 s later (backoff 2)
    job = transitions.settle(_take_one(state, T0 + timedelta(seconds=30)), boom,
                             T0 + timedelta(seconds=40))
    state.update(job)
    assert job.run_at == T0 + timedelta(seconds=100)
    # Third (the last of 1 + 2 retries) fails for good, and leaves the in-memory queue
    job = transitions.settle(_take_one(state, T0 + timedelta(seconds=100)), boom,
                             T0 + timedelta(seconds=101))
    state.update(job)
    assert (job.status, job.attempts, job.error) == ("failed", 3, "boom")
    assert len(state) == 0 and state.next_run_at() is None
    changed, new = state.take_changes()
    assert [j.status for j in changed] == ["failed"] and new == set()


def test_requeue_does_not_count_the_attempt_and_waits_until_run_at():
    state = QueueState()
    _job(state, 1)
    job = _take_one(state, T0)
    assert job.attempts == 1
    job = transitions.requeue(job, T0 + timedelta(seconds=1))
    state.update(job)
    assert job.attempts == 0 and job.status == "pending"
    assert _take(state, T0) is None
    assert _take_one(state, T0 + timedelta(seconds=1)).id == 1


def test_cancel_pending_at_once_running_by_flag_and_a_flagged_failure_is_not_retried():
    state = QueueState()
    pending = _job(state, 1, delay_s=60)
    cancelled = transitions.cancel(pending, T0)
    assert (cancelled.status, cancelled.finished_at) == ("cancelled", T0)
    state.update(cancelled)
    assert state.next_run_at() is None  # its heap entry is stale, not run
    _job(state, 2)
    running = _take_one(state, T0)
    flagged = transitions.cancel(running, T0)
    assert flagged.status == "running" and flagged.cancel_requested
    # The attempt fails as it is being stopped: cancelled, not retried
    settled = transitions.settle(flagged, Outcome(kind=OutcomeKind.FAILED, error="x"), T0)
    assert settled.status == "cancelled"
    # A finished job is left as it is
    assert transitions.cancel(settled, T0) is settled


def test_transitions_refuse_a_job_in_the_wrong_state():
    state = QueueState()
    job = _job(state, 1)
    with pytest.raises(JobStateError, match="job 1 is pending, not running"):
        transitions.settle(job, Outcome(kind=OutcomeKind.SUCCEEDED), T0)
    started = transitions.start(job, "w", T0)
    with pytest.raises(JobStateError, match="job 1 is running, not pending"):
        transitions.start(started, "w", T0)


def test_recover_counts_a_crash_as_a_failed_attempt_or_cancels_a_flagged_job():
    state = QueueState()
    _job(state, 1)
    running = _take_one(state, T0)
    recovered = transitions.recover(running, T0)
    assert recovered.status == "pending"
    assert "stopped before the attempt finished" in (recovered.error or "")
    flagged = transitions.cancel(running, T0)
    assert transitions.recover(flagged, T0).status == "cancelled"


def test_changes_are_kept_when_a_commit_fails_and_newer_states_win():
    state = QueueState()
    _job(state, 1)
    state.add(transitions.pending(2, JobSpec(target="t.x", args=[], kwargs={}, priority=0,
                                             run_at=T0, policy=POLICY), T0), new=True)
    jobs, new = state.take_changes()
    assert [j.id for j in jobs] == [2] and new == {2}
    started = _take_one(state, T0)  # job 1 changes after the failed commit took the batch
    state.keep_changes(jobs, new)
    again, new = state.take_changes()
    assert {j.id: j.status for j in again} == {2: "pending", started.id: "running"} and new == {2}
