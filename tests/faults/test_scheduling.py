"""A delayed job must not hold up due ones, and an idle worker stays idle (issue case 8;
SPEC §5, §12)."""

from __future__ import annotations

import time

import notebookjobs as nj

from .harness import cpu_seconds

IDLE_WINDOW_S = 3.0  #: how long the worker's CPU time is measured while it waits
IDLE_CPU_S = 0.3  #: CPU seconds the worker may use in that window (10 %)


def test_a_delayed_high_priority_job_does_not_stall_due_ones(project, start_worker):
    # Given a worker with two children, a job of priority 7 due in 5 minutes ...
    start_worker("--concurrency", "2")
    delayed = nj.dispatch("jobs.testing.ok", 0, priority=7, delay=300)
    # ... and four due jobs of priority 0
    due = [nj.dispatch("jobs.testing.ok", i, priority=0) for i in range(1, 5)]
    # Then the four complete while the delayed one waits
    assert [nj.wait(i, timeout=30)["result"] for i in due] == [1, 2, 3, 4]
    assert nj.status(delayed)["status"] == "pending"


def test_the_worker_idles_while_it_waits_for_a_delayed_job(project, start_worker):
    # Given a worker whose only work is a delayed job of high priority, and a due one
    worker = start_worker("--concurrency", "2")
    nj.dispatch("jobs.testing.ok", 0, priority=7, delay=300)
    nj.dispatch("jobs.testing.ok", 1, priority=0)
    # When it waits (the window is a measurement: its CPU time from /proc, not a timing)
    before = cpu_seconds(worker.pid)
    time.sleep(IDLE_WINDOW_S)
    used = cpu_seconds(worker.pid) - before
    # Then it used almost no CPU
    assert used < IDLE_CPU_S, (
        f"the worker used {used:.2f} s of CPU in {IDLE_WINDOW_S:g} s of waiting"
    )
