"""The worker's in-memory queue: its pending and running jobs, the order they run in, and what
has changed since the last group commit. No I/O and no locking: the worker does both.

While a worker runs it owns the database, so it can keep the queue's hot part in memory: the
next job comes off a heap instead of a query, and state changes reach the file in batches
(``take_changes`` -> the writer), a few statements for any number of jobs. A crash loses at most
the last batch: those jobs are pending or running in the file and run again, which is the
at-least-once promise of SPEC §12. Every change is a function of ``transitions`` applied by the
caller and stored here with ``update``, but one: when a job ends failed or cancelled, the jobs
that wait for it (``after``, SPEC §16) are cancelled here (``transitions.dependency_ended``), so
that no way of ending a job (a settle, a cancel, a refusal, a failed commit) can forget them.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from datetime import datetime

from ..model import dependencies, transitions
from ..model.records import Job, JobStatus
from .waits import Waits

PENDING, RUNNING = JobStatus.PENDING.value, JobStatus.RUNNING.value
COMPLETED = JobStatus.COMPLETED.value


class QueueState:
    """Pending and running jobs by id, the pending ones in run order, and the changed ones.

    Two heaps find the next job without a scan (SPEC §5: the highest priority *among the jobs
    whose run_at has come*): ``_waiting`` holds pending jobs by run_at; ``pop_due`` moves those
    that have come due into ``_ready``, ordered by priority, then run_at, then id. A delayed
    high-priority job therefore waits in ``_waiting`` and never hides due jobs behind it. A job
    that waits for others (``waits``) is in neither heap until the last of them completes.
    """

    def __init__(self) -> None:
        self.jobs: dict[int, Job] = {}  #: pending and running jobs
        self._waiting: list[tuple[datetime, int]] = []  #: (run_at, id): not due yet
        self._ready: list[tuple[int, datetime, int]] = []  #: (-priority, run_at, id): due
        self._changed: dict[int, Job] = {}  #: jobs to commit (final ones too), by id
        self._new: set[int] = set()  #: ids not in the queue file yet: the commit inserts them
        self.waits = Waits()  #: pending jobs that wait for others to complete
        self._unique: dict[str, int] = {}  #: unique key -> the pending or running job with it

    def __len__(self) -> int:
        return len(self.jobs)

    def get(self, job_id: int) -> Job | None:
        """The pending or running job with this id; None for any other."""
        return self.jobs.get(job_id)

    def add(self, job: Job, *, changed: bool = False, new: bool = False,
            known: Mapping[int, str] | None = None, now: datetime | None = None) -> None:
        """Track a job that is pending or running in the file (loaded, or just stored);
        ``changed`` marks it for the next commit, ``new`` as not in the queue file yet (read
        from the journal). A pending job that waits for others (``after``) is blocked until they
        complete, or cancelled at ``now`` when one of them never will; ``known`` has the
        statuses (from the file) of those of them this state does not hold."""
        self.jobs[job.id] = job
        if job.unique_key is not None and job.status in (PENDING, RUNNING):
            self._unique[job.unique_key] = job.id
        if new:
            self._new.add(job.id)
            changed = True
        if changed:
            self._changed[job.id] = job
        if job.status != PENDING:
            return
        if job.after:
            lookup = known or {}
            waiting, ended = dependencies.blocking(
                job.id, job.after, lambda i: self.status_of(i) or lookup.get(i))
            if ended is not None:
                self.update(transitions.dependency_ended(job, *ended, now or job.created_at))
                return
            self.waits.wait(job.id, waiting)
        if job.id not in self.waits:
            heapq.heappush(self._waiting, (job.run_at, job.id))

    def status_of(self, job_id: int) -> str | None:
        """The status this state knows of ``job_id``: it is pending or running, or it ended
        since the last commit; None otherwise (final and committed, or unknown)."""
        job = self.jobs.get(job_id) or self._changed.get(job_id)
        return None if job is None else job.status

    def unique_job(self, key: str) -> int | None:
        """The pending or running job with unique key ``key``; None for none."""
        return self._unique.get(key)

    def update(self, job: Job) -> None:
        """Store the job's new state (made by a function of ``transitions``), to be committed:
        a pending job goes (back) into the run order, a final one is forgotten after its
        commit, and the jobs that wait for it are released or cancelled."""
        todo = [job]
        while todo:
            job = todo.pop()
            if job.status in (PENDING, RUNNING):
                previous = self.jobs.get(job.id)
                self.jobs[job.id] = job
                if job.status == PENDING and (previous is None or previous.status != PENDING
                                              or previous.run_at != job.run_at):
                    heapq.heappush(self._waiting, (job.run_at, job.id))
            else:
                self.jobs.pop(job.id, None)
                if job.unique_key is not None and self._unique.get(job.unique_key) == job.id:
                    del self._unique[job.unique_key]
                todo.extend(self._ended(job))
            self._changed[job.id] = job

    def dependency_ended(self, job: Job) -> None:
        """A job this state does not hold ended (a foreground ``notebookjobs run``): release or
        cancel the jobs that wait for it."""
        for cancelled in self._ended(job):
            self.update(cancelled)

    def _ended(self, job: Job) -> list[Job]:
        """``job`` ended: its waiters released into the run order, or (when it did not
        complete) returned cancelled, for the caller to store."""
        self.waits.forget(job.id)
        released, doomed = self.waits.ended(job.id, job.status == COMPLETED)
        for job_id in released:
            waiter = self.jobs[job_id]
            heapq.heappush(self._waiting, (waiter.run_at, job_id))
        # The time its dependency ended, as recorded on it (a clock-free state stays exact).
        when = job.finished_at or job.started_at or job.created_at
        return [transitions.dependency_ended(self.jobs[job_id], job.id, job.status, when)
                for job_id in doomed
                if job_id in self.jobs and self.jobs[job_id].status == PENDING]

    def retake(self, job: Job) -> None:
        """Put a pending job that was taken by ``pop_due`` back in the run order (it came back
        from a child without having begun)."""
        if self.jobs.get(job.id) is job and job.status == PENDING:
            heapq.heappush(self._waiting, (job.run_at, job.id))

    def _is_current(self, job_id: int, run_at: datetime) -> bool:
        # Entries of jobs that were claimed, cancelled or rescheduled stay until they surface.
        job = self.jobs.get(job_id)
        return (job is not None and job.status == PENDING and job.run_at == run_at
                and job_id not in self.waits)

    def pop_due(self, now: datetime) -> Job | None:
        """The pending job to run next among those whose run_at has come (the caller starts
        it); None if none is due."""
        waiting, ready = self._waiting, self._ready
        while waiting and waiting[0][0] <= now:
            run_at, job_id = heapq.heappop(waiting)
            if self._is_current(job_id, run_at):
                heapq.heappush(ready, (-self.jobs[job_id].priority, run_at, job_id))
        while ready:
            _, run_at, job_id = heapq.heappop(ready)
            if self._is_current(job_id, run_at):
                return self.jobs[job_id]
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

    def take_changes(self) -> tuple[list[Job], set[int]]:
        """The jobs changed since the last call, and which of them are not in the queue file
        yet (read from the journal: the ledger knows how far, ``Ledger.read``)."""
        jobs, new = list(self._changed.values()), self._new
        self._changed, self._new = {}, set()
        return jobs, new

    def keep_changes(self, jobs: list[Job], new: set[int]) -> None:
        """Changes whose commit failed: they go with the next one (newer states win)."""
        for job in jobs:
            self._changed.setdefault(job.id, job)
        self._new |= new
