"""The worker's in-memory queue: pending and running jobs, the order they run in, and what has
changed since the last group commit. No I/O and no locking: the worker does both.

While a worker runs it owns the database, so it can keep the queue's hot part in memory: the
next job comes off a heap (priority, then run_at, then id) instead of a query, and state changes
reach the file in batches (``take_dirty`` -> ``JobStore.write_states``), a few statements for
any number of jobs. A crash loses at most the last batch: those jobs are pending or running in
the file and run again, which is the at-least-once promise of SPEC §12.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import MISSING, dataclass, fields, replace
from datetime import datetime
from typing import Any

from .models import Job, JobBatch, JobSpec, JobStatus, RetryPolicy


#: the fields of a new pending Job that do not come from its dispatch
_JOB_DEFAULTS = {f.name: f.default for f in fields(Job) if f.default is not MISSING}
_JOB_DEFAULTS.update(status=JobStatus.PENDING.value, attempts=0)


@dataclass(eq=False)
class Active:
    """A pending or running job: its fixed parts, and its state as the worker last set it."""

    job: Job  #: as loaded or enqueued; its mutable fields are stale, use the attributes below
    status: str
    attempts: int
    run_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    result: str | None = None  #: JSON text
    output: str | None = None
    progress: float | None = None
    progress_message: str | None = None
    worker: str | None = None
    new: bool = False  #: still in the inbox table: the next group commit inserts it into the queue

    @classmethod
    def enqueued(cls, job_id: int, spec: JobSpec, now: datetime, *, new: bool = False) -> "Active":
        """A job the worker has just stored from a client's dispatch."""
        return cls._pending(job_id, spec.target, spec.args, spec.kwargs, spec.priority,
                            spec.run_at, spec.policy, now, new)

    @classmethod
    def from_batch(cls, job_id: int, batch: JobBatch, index: int, now: datetime) -> "Active":
        """Job ``index`` of a batch the worker has just stored."""
        return cls._pending(job_id, batch.target, json.loads(batch.args[index]),
                            json.loads(batch.kwargs[index]), batch.priority, batch.run_at,
                            batch.policy, now, False)

    @classmethod
    def _pending(cls, job_id: int, target: str, args: list, kwargs: dict, priority: int,
                 run_at: datetime, policy: RetryPolicy, now: datetime, new: bool) -> "Active":
        # Job.__init__ of a frozen dataclass sets its 20 fields one object.__setattr__ at a time;
        # filling __dict__ at once is 4x faster, which counts for a batch of 100,000 jobs.
        job = Job.__new__(Job)
        job.__dict__.update(_JOB_DEFAULTS, id=job_id, target=target, args=args, kwargs=kwargs,
                            priority=priority, max_attempts=policy.max_attempts, created_at=now,
                            run_at=run_at, retry_delay=policy.retry_delay,
                            retry_backoff=policy.retry_backoff, timeout=policy.timeout)
        return cls(job=job, status=JobStatus.PENDING.value, attempts=0, run_at=run_at, new=new)

    @classmethod
    def from_job(cls, job: Job, worker: str | None = None) -> "Active":
        return cls(job=job, status=job.status, attempts=job.attempts, run_at=job.run_at,
                   started_at=job.started_at, finished_at=job.finished_at, error=job.error,
                   result=None if job.result is None else json.dumps(job.result),
                   output=job.output, progress=job.progress,
                   progress_message=job.progress_message, worker=worker)

    @property
    def id(self) -> int:
        return self.job.id

    def row(self) -> tuple:
        """The state in the order of ``JobStore.STATE_COLUMNS``."""
        return (self.job.id, self.status, self.attempts, self.run_at, self.started_at,
                self.finished_at, self.error, self.result, self.output, self.progress,
                self.progress_message, self.worker, self.job.priority)

    def new_row(self) -> tuple:
        """The fixed columns, in the order of ``JobStore.NEW_COLUMNS``."""
        job = self.job
        return (job.id, job.target, json.dumps(job.args), json.dumps(job.kwargs),
                job.max_attempts, job.retry_delay, job.retry_backoff, job.timeout, job.created_at)

    def snapshot(self) -> Job:
        """The job as ``nj.status`` would show it now (for logs and the retry policy)."""
        return replace(self.job, status=self.status, attempts=self.attempts, run_at=self.run_at,
                       started_at=self.started_at, finished_at=self.finished_at, error=self.error,
                       output=self.output)


class QueueState:
    """Pending and running jobs by id, the pending ones in run order, and the changed ones.

    Two heaps find the next job without a scan (SPEC §5: the highest priority *among the jobs
    whose run_at has come*): ``_waiting`` holds pending jobs by run_at; ``pop_due`` moves those
    that have come due into ``_ready``, ordered by priority, then run_at, then id. A delayed
    high-priority job therefore waits in ``_waiting`` and never hides due jobs behind it.
    """

    def __init__(self) -> None:
        self.active: dict[int, Active] = {}
        self._waiting: list[tuple[datetime, int]] = []  #: (run_at, id): not due yet
        self._ready: list[tuple[int, datetime, int]] = []  #: (-priority, run_at, id): due
        self._dirty: dict[int, Active] = {}

    def __len__(self) -> int:
        return len(self.active)

    def add(self, record: Active, *, changed: bool = False) -> None:
        """Track a job that is pending or running in the file (loaded or just enqueued);
        ``changed`` marks it for the next group commit."""
        self.active[record.id] = record
        if record.status == JobStatus.PENDING:
            self._push(record)
        if changed:
            self._dirty[record.id] = record

    def _push(self, record: Active) -> None:
        heapq.heappush(self._waiting, (record.run_at, record.id))

    def _is_current(self, job_id: int, run_at: datetime) -> bool:
        # Entries of jobs that were claimed, cancelled or rescheduled stay until they surface.
        record = self.active.get(job_id)
        return record is not None and record.status == JobStatus.PENDING and record.run_at == run_at

    def pop_due(self, now: datetime) -> Active | None:
        """The pending job to run next among those whose run_at has come, removed from the
        heaps; None if none is due."""
        waiting, ready = self._waiting, self._ready
        while waiting and waiting[0][0] <= now:
            run_at, job_id = heapq.heappop(waiting)
            if self._is_current(job_id, run_at):
                heapq.heappush(ready, (-self.active[job_id].job.priority, run_at, job_id))
        while ready:
            _, run_at, job_id = heapq.heappop(ready)
            if self._is_current(job_id, run_at):
                return self.active[job_id]
        return None

    def next_run_at(self) -> datetime | None:
        """When the next pending job is due (it may already be), None when none is pending."""
        while self._ready and not self._is_current(self._ready[0][2], self._ready[0][1]):
            heapq.heappop(self._ready)
        if self._ready:
            return self._ready[0][1]
        while self._waiting and not self._is_current(self._waiting[0][1], self._waiting[0][0]):
            heapq.heappop(self._waiting)
        return self._waiting[0][0] if self._waiting else None

    # --- transitions (each marks the job changed) -------------------------------------------

    def start(self, record: Active, worker: str, now: datetime) -> None:
        record.status, record.attempts = JobStatus.RUNNING.value, record.attempts + 1
        record.started_at, record.finished_at, record.worker = now, None, worker
        record.progress = record.progress_message = None
        self._dirty[record.id] = record

    def finish(self, record: Active, status: JobStatus, now: datetime, *, error: str | None = None,
               result: Any = None, output: str | None = None) -> None:
        record.status, record.finished_at, record.worker = status.value, now, None
        record.error, record.output = error, output
        record.result = json.dumps(result) if status is JobStatus.COMPLETED else None
        self.active.pop(record.id, None)
        self._dirty[record.id] = record

    def retry(self, record: Active, run_at: datetime, now: datetime, *, error: str | None,
              output: str | None) -> None:
        record.status, record.run_at, record.finished_at, record.worker = JobStatus.PENDING.value, run_at, now, None
        record.error, record.output = error, output
        self._dirty[record.id] = record
        self._push(record)

    def requeue(self, record: Active, run_at: datetime) -> None:
        """Back to pending, to run at ``run_at``, without counting the attempt (a graceful stop
        interrupted it, or it could not start)."""
        record.status, record.attempts, record.run_at = JobStatus.PENDING.value, record.attempts - 1, run_at
        record.started_at = record.worker = record.progress = record.progress_message = None
        self._dirty[record.id] = record
        self._push(record)

    def progress(self, job_id: int, fraction: float, message: str | None) -> None:
        record = self.active.get(job_id)
        if record is not None and record.status == JobStatus.RUNNING:
            record.progress, record.progress_message = fraction, message
            self._dirty[job_id] = record

    def take_dirty(self) -> tuple[list[Active], list[tuple], list[tuple]]:
        """The jobs changed since the last call, their state rows and the fixed rows of those
        still in the inbox, for one group commit."""
        records = list(self._dirty.values())
        self._dirty.clear()
        new = [record.new_row() for record in records if record.new]
        for record in records:
            record.new = False
        return records, [record.row() for record in records], new

    def mark_dirty(self, records: list[Active], new_ids: set[int]) -> None:
        """Changes whose commit failed: write them with the next batch."""
        for record in records:
            record.new = record.new or record.id in new_ids
            self._dirty.setdefault(record.id, record)

    def running_ids(self) -> list[int]:
        return sorted(i for i, r in self.active.items() if r.status == JobStatus.RUNNING)
