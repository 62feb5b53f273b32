"""Admission decided once (``access.admission``): the same dispatches with ``unique`` and
``after``, through the locked file (no worker) and through a running worker, get the same
answers: the same ids, the same refusals, the same states.

The running job is a foreground run (``notebookjobs run``'s way: ``run_started`` with an owner
that holds its lock), so that it is running on both paths without a child to time: the worker
holds it in the file only, not in its memory."""

from __future__ import annotations

from datetime import timedelta

import pytest

import notebookjobs as nj
from notebookjobs import config
from notebookjobs.access import owners
from notebookjobs.access.queue_client import QueueClient
from notebookjobs.data import datafiles
from notebookjobs.errors import InvalidArgumentsError
from notebookjobs.model.records import JobSpec, Outcome, OutcomeKind, RetryPolicy, utcnow

LATER = 3600  #: a delay that keeps a dispatched job pending while the test runs


@pytest.fixture(params=["file", "worker"])
def path(request, project, start_worker):
    """Which way the dispatches go: the locked file, or a running worker."""
    if request.param == "worker":
        start_worker()
    return request.param


def _run(queue: QueueClient, hold: owners.Hold, unique_key: str | None = None) -> int:
    """A foreground run of ``jobs.testing.ok`` started now (running); its id."""
    spec = JobSpec(target="jobs.testing.ok", args=[], kwargs={}, priority=0, run_at=utcnow(),
                   policy=RetryPolicy(retry_attempts=0), unique_key=unique_key)
    return queue.run_started(spec, hold.owner, utcnow()).id


def test_unique_after_and_ids_are_decided_alike_on_both_paths(path):
    # Given a queue reached through ``path``, and a foreground run's owner that holds its lock
    settings = config.load_settings()
    queue = QueueClient(settings)
    hold = owners.Hold(datafiles.data_dir(settings.db_path))
    answers: dict[str, object] = {}
    try:
        # unique: a miss stores a job, a hit on a pending one returns it
        answers["miss"] = int(nj.dispatch("jobs.testing.ok", 1, unique="k1", delay=LATER))
        answers["hit_pending"] = int(nj.dispatch("jobs.testing.ok", 1, unique="k1", delay=LATER))
        # ... a hit on a running one returns it (a foreground run, in the file only)
        running = _run(queue, hold, unique_key="k2")
        answers["running"] = running
        answers["hit_running"] = int(nj.dispatch("jobs.testing.ok", unique="k2"))
        # ... and once it has finished, the key is free again: a new job
        queue.run_finished(running, Outcome(kind=OutcomeKind.SUCCEEDED), utcnow())
        answers["after_finished"] = int(nj.dispatch("jobs.testing.ok",
                                                     unique="k2", delay=LATER))
        # after: an unknown id is refused, and takes no id
        with pytest.raises(InvalidArgumentsError) as refused:
            nj.dispatch("jobs.testing.ok", after=[999], delay=LATER)
        answers["unknown"] = str(refused.value).split(";")[0]
        # ... a failed dependency cancels the new job at once, a cancelled one too
        failed = _run(queue, hold)
        queue.run_finished(failed, Outcome(kind=OutcomeKind.FAILED, error="boom"), utcnow())
        on_failed = int(nj.dispatch("jobs.testing.ok", after=[failed], delay=LATER))
        pending = int(nj.dispatch("jobs.testing.ok", 2, delay=LATER))
        assert nj.cancel(pending) is True
        on_cancelled = int(nj.dispatch("jobs.testing.ok", after=[pending], delay=LATER))
        # ... and a pending one makes it wait
        on_pending = int(nj.dispatch("jobs.testing.ok", after=[answers["miss"]], delay=LATER))
        for name, job_id in (("on_failed", on_failed), ("on_cancelled", on_cancelled),
                             ("on_pending", on_pending)):
            status = nj.status(job_id)
            answers[name] = (job_id, status["status"], status["error"])
    finally:
        hold.release()

    # Then every answer is the same on both paths, ids handed out in order
    assert answers == {
        "miss": 1, "hit_pending": 1, "running": 2, "hit_running": 2, "after_finished": 3,
        "unknown": "after: no job has id 999",
        "on_failed": (5, "cancelled", "dependency 4 failed"),
        "on_cancelled": (7, "cancelled", "dependency 6 cancelled"),
        "on_pending": (8, "pending", None),
    }, path


def test_ids_keep_growing_across_the_paths(project, start_worker):
    # Given jobs stored on the file, then through a worker, then on the file again
    first = [int(nj.dispatch("jobs.testing.ok", unique=f"a{i}", delay=LATER)) for i in range(3)]
    worker = start_worker()
    second = [int(nj.dispatch("jobs.testing.ok", unique=f"b{i}", delay=LATER)) for i in range(3)]
    second += [int(j) for j in nj.dispatch_many("jobs.testing.ok", [[1], [2]],
                                                delay=timedelta(hours=1))]
    worker.stop()
    third = [int(nj.dispatch("jobs.testing.ok", after=[first[0]], delay=LATER))]
    # Then each id is above every id handed out before, whichever path handed it out
    ids = first + second + third
    assert ids == sorted(set(ids)) and ids[0] == 1, ids
