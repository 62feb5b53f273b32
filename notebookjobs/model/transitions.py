"""The job's state machine (SPEC §5), defined once: pure functions from a ``Job`` to the next.

::

    pending ──start──> running ──settle──> completed | failed | cancelled
       │  ^               │ │ └──fail──> failed (refused where it was to run: no retry)
       │  └──settle(retry)┘ └──requeue (a stop interrupted it; the attempt is not counted)
       └──cancel──> cancelled          running ──cancel──> cancel_requested (its worker stops it)
    (start also records where the attempt runs: ran_on)

The worker applies them to its in-memory jobs and commits the results; a client without a
worker applies them to a job read from the file and saves it guarded by the status it read.
Either way the same function decides, with the clock passed in (``now``), so each transition
has fast unit tests.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..errors import JobStateError
from . import retries
from .records import LOCAL, MAX_ERRORS_KEPT, Job, JobBatch, JobSpec, JobStatus, Outcome, OutcomeKind

PENDING, RUNNING = JobStatus.PENDING.value, JobStatus.RUNNING.value


def _errors(job: Job, error: str | None, now: datetime) -> list[dict[str, Any]]:
    """The job's errors with this attempt's appended (a new list: jobs are frozen)."""
    entry = {"attempt": job.attempts, "at": now.isoformat(), "error": error or ""}
    return [*(job.errors or [])[-(MAX_ERRORS_KEPT - 1):], entry]


def _expect(job: Job, status: str, what: str) -> None:
    if job.status != status:
        raise JobStateError(f"job {job.id} is {job.status}, not {status}: only a {status} job "
                            f"can be {what}")


#: the fields a new job has from the dataclass's defaults (``errors``: a new list per job)
_NEW = {name: value for name, value in Job.defaults().items() if name != "errors"}


def pending(job_id: int, spec: JobSpec, now: datetime) -> Job:
    """A newly dispatched job. Built as ``pending_batch`` builds each of its jobs
    (``Job.trusted``): every value of ``spec`` was checked where the dispatch entered, and
    ``Job.__init__`` cost ~8 µs of the worker's ~25 µs reading of a dispatch (warm)."""
    policy = spec.policy
    return Job.trusted(_NEW, {
        "id": job_id, "target": spec.target, "args": spec.args, "kwargs": spec.kwargs,
        "status": PENDING, "priority": spec.priority, "attempts": 0,
        "max_attempts": policy.max_attempts, "created_at": now, "run_at": spec.run_at,
        "retry_delay": policy.retry_delay, "retry_backoff": policy.retry_backoff,
        "timeout": policy.timeout, "after": list(spec.after) or None,
        "unique_key": spec.unique_key, "schedule": spec.schedule, "errors": []})


def pending_batch(ids: list[int], batch: JobBatch, now: datetime) -> list[Job]:
    """The jobs of a batch (``ids`` in order), each as ``pending`` makes it. Built without
    ``Job.__init__`` (``Job.trusted``): for 100,000 jobs its per-field checks would cost more
    than storing them. The fields a dispatch does not set have the dataclass's defaults (one
    ``errors`` list shared by the batch: jobs are never mutated)."""
    policy = batch.policy
    common = dict(Job.defaults(), status=PENDING, attempts=0, target=batch.target,
                  priority=batch.priority, max_attempts=policy.max_attempts, created_at=now,
                  run_at=batch.run_at, retry_delay=policy.retry_delay,
                  retry_backoff=policy.retry_backoff, timeout=policy.timeout)
    loads, trusted = json.loads, Job.trusted
    return [trusted(common, {"id": job_id, "args": loads(args), "kwargs": loads(kwargs)})
            for job_id, args, kwargs in zip(ids, batch.args, batch.kwargs, strict=True)]


def start(job: Job, worker: str, now: datetime, where: str | None = None) -> Job:
    """pending -> running: a new attempt begins (counted). ``where``: where it was handed
    (``LOCAL``, or a Dask worker's address), one entry of ``ran_on`` per counted attempt (SPEC
    §18); None for an attempt refused before it was handed anywhere. One copy of the job, not
    one for the start and one for the place: a worker does this for every attempt."""
    _expect(job, PENDING, "started")
    ran_on = job.ran_on if where is None else [*(job.ran_on or ()), where]
    return job.evolve(status=RUNNING, attempts=job.attempts + 1, started_at=now,
                      finished_at=None, worker=worker, progress=None, progress_message=None,
                      cancel_requested=False, ran_on=ran_on)


def started_now(job_id: int, spec: JobSpec, worker: str, now: datetime) -> Job:
    """A new job already running its first attempt (a foreground ``notebookjobs run``)."""
    return start(pending(job_id, spec, now), worker, now, LOCAL)


def settle(job: Job, outcome: Outcome, now: datetime) -> Job:
    """running -> completed | failed | cancelled, or back to pending to run again: the retry
    decision (``retries.decide``) applied to the attempt that ended. An attempt that did not
    succeed after a cancel was asked is not retried: the job is cancelled."""
    _expect(job, RUNNING, "settled")
    kind = outcome.kind
    if job.cancel_requested and not outcome.succeeded:
        kind = OutcomeKind.CANCELLED
    decision = retries.decide(job, job.attempts, kind, now)
    common: dict[str, Any] = {"finished_at": now, "worker": None, "output": outcome.output}
    if outcome.succeeded:
        common["error"] = None
    else:
        common["error"], common["errors"] = outcome.error, _errors(job, outcome.error, now)
    if decision.status is JobStatus.PENDING:
        return job.evolve(status=PENDING, run_at=decision.run_at, **common)
    return job.evolve(status=decision.status.value,
                      result=outcome.result if outcome.succeeded else None,
                      result_type=outcome.result_type if outcome.succeeded else None, **common)


def fail(job: Job, reason: str, now: datetime) -> Job:
    """running -> failed at once, no retry: the job was refused where it was to run, or could
    not be started at all."""
    _expect(job, RUNNING, "failed")
    return job.evolve(status=JobStatus.FAILED.value, finished_at=now, worker=None, error=reason,
                      errors=_errors(job, reason, now))


def restart(job: Job, outcome: Outcome, now: datetime) -> Job:
    """A foreground run's failed attempt recorded, and its next attempt begun: it stays
    running (its process keeps it) and the attempt is counted."""
    _expect(job, RUNNING, "restarted")
    return job.evolve(attempts=job.attempts + 1, started_at=now, error=outcome.error,
                      errors=_errors(job, outcome.error, now), output=outcome.output,
                      progress=None, progress_message=None, ran_on=[*(job.ran_on or ()), LOCAL])


def requeue(job: Job, run_at: datetime) -> Job:
    """running -> pending without counting the attempt: a graceful stop interrupted it, or it
    could not start (``OutcomeKind.DEFERRED``)."""
    _expect(job, RUNNING, "put back")
    # ran_on keeps one entry per counted attempt: the uncounted one leaves none.
    ran_on = (job.ran_on or [])[: job.attempts - 1] or None
    return job.evolve(status=PENDING, attempts=job.attempts - 1, run_at=run_at,
                      started_at=None, worker=None, progress=None, progress_message=None,
                      ran_on=ran_on)


def cancel(job: Job, now: datetime) -> Job:
    """pending -> cancelled at once; a running job is flagged for its worker to stop (which
    settles it as cancelled). A finished job is returned unchanged."""
    if job.status == PENDING:
        return job.evolve(status=JobStatus.CANCELLED.value, finished_at=now)
    if job.status == RUNNING:
        return job.evolve(cancel_requested=True)
    return job


def dependency_ended(job: Job, dependency: int, why: str, now: datetime) -> Job:
    """pending -> cancelled with the error "dependency N <why>": a job it waits for
    (``after``) ended ``failed`` or ``cancelled``, or cannot be waited for (SPEC §16)."""
    _expect(job, PENDING, "cancelled for its dependency")
    return job.evolve(status=JobStatus.CANCELLED.value, finished_at=now,
                      error=f"dependency {dependency} {why}")


def progress(job: Job, fraction: float | None, message: str | None) -> Job:
    """A running job's progress report (ignored once it is no longer running); fraction None
    with the last line the job printed, while it reports no progress of its own."""
    if job.status != RUNNING:
        return job
    return job.evolve(progress=fraction, progress_message=message)


def recover(job: Job, now: datetime) -> Job:
    """A job a dead worker left running, settled as a crashed attempt (or as cancelled when a
    cancel was asked meanwhile): never lost, never run twice at once (SPEC §12)."""
    if job.cancel_requested:
        outcome = Outcome(kind=OutcomeKind.CANCELLED,
                          error=f"cancelled after the process running it ({job.worker}) stopped")
    else:
        outcome = Outcome(kind=OutcomeKind.CRASHED,
                          error=f"the process running this job ({job.worker}) stopped before "
                                "the attempt finished (killed or crashed)")
    return settle(job, outcome, now)
