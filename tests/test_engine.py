"""The worker's in-memory queue, in process: run order among due jobs, with the clock passed in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from notebookjobs.engine import Active, QueueState
from notebookjobs.models import JobSpec, RetryPolicy

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def _job(state: QueueState, job_id: int, priority: int = 0, delay_s: float = 0.0) -> Active:
    spec = JobSpec(target="jobs.testing.ok", args=[], kwargs={}, priority=priority,
                   run_at=T0 + timedelta(seconds=delay_s), policy=RetryPolicy())
    record = Active.enqueued(job_id, spec, T0)
    state.add(record)
    return record


def test_a_delayed_high_priority_job_does_not_hide_due_ones():
    # Given a delayed priority-7 job and four due priority-0 jobs
    state = QueueState()
    _job(state, 1, priority=7, delay_s=300)
    for job_id in range(2, 6):
        _job(state, job_id)
    # When the worker takes due jobs now, it gets the four due ones, in id order
    taken = []
    while (record := state.pop_due(T0)) is not None:
        state.start(record, "w", T0)
        taken.append(record.id)
    assert taken == [2, 3, 4, 5]
    # Then it sleeps until the delayed one is due, which then comes first
    assert state.next_run_at() == T0 + timedelta(seconds=300)
    assert state.pop_due(T0 + timedelta(seconds=299)) is None
    assert state.pop_due(T0 + timedelta(seconds=300)).id == 1


def test_among_due_jobs_priority_then_run_at_then_id():
    state = QueueState()
    _job(state, 1, priority=1, delay_s=2)
    _job(state, 2, priority=5, delay_s=3)
    _job(state, 3, priority=5, delay_s=1)
    _job(state, 4, priority=1, delay_s=2)
    now = T0 + timedelta(seconds=10)
    order = []
    while (record := state.pop_due(now)) is not None:
        state.start(record, "w", now)
        order.append(record.id)
    assert order == [3, 2, 1, 4]


def test_a_rescheduled_or_cancelled_job_leaves_no_stale_entry():
    state = QueueState()
    first = _job(state, 1, priority=9)
    _job(state, 2)
    # Job 1 runs, fails and is retried later; job 2 stays due
    record = state.pop_due(T0)
    assert record is first
    state.start(first, "w", T0)
    state.retry(first, T0 + timedelta(seconds=30), T0, error="boom", output="")
    assert state.pop_due(T0).id == 2
    assert state.pop_due(T0) is None
    assert state.next_run_at() == T0 + timedelta(seconds=30)
    assert state.pop_due(T0 + timedelta(seconds=30)) is first


def test_requeue_does_not_count_the_attempt_and_waits_until_run_at():
    state = QueueState()
    record = _job(state, 1)
    state.start(state.pop_due(T0), "w", T0)
    assert record.attempts == 1
    state.requeue(record, T0 + timedelta(seconds=1))
    assert record.attempts == 0 and record.status == "pending"
    assert state.pop_due(T0) is None
    assert state.pop_due(T0 + timedelta(seconds=1)) is record
