"""What each queue operation means (``access.operations`` declares them): ``StoreQueue``, each
operation over an open store inside the caller's transaction. It runs on the locked file when
no worker runs (``queue_client.QueueClient``) and in the worker for every operation whose answer is
on the file (``worker.service``), so both paths give the same answers (SPEC §11).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data import argfiles, datafiles, results
from ..errors import JobStateError
from ..journal.ledger import Ledger
from ..model import dependencies, transitions
from ..model.records import Job, JobBatch, JobSpec, JobStatus, Outcome
from . import owners
from .admission import FileView, admit

if TYPE_CHECKING:
    import pyarrow as pa

    from ..store import JobStore

#: jobs of one page, and how many jobs match in all
Page = tuple[list[Job], int]


class StoreQueue:
    """The queue's operations over a ``JobStore`` inside the caller's transaction; new ids from
    ``ledger``. ``data``: the queue's data folder (``datafiles.data_dir``), whose files
    ``prune`` deletes."""

    def __init__(self, store: JobStore, ledger: Ledger, data: Path | None = None) -> None:
        self.store = store
        self.ledger = ledger
        self.data = data

    def enqueue(self, spec: JobSpec, now: datetime) -> int:
        """Store a pending job; its id (durable when this returns). One with ``unique`` or
        ``after`` is decided on the queue's state (``admission``)."""
        return admit(FileView(self.store, self.ledger), spec, now)

    def enqueue_batch(self, batch: JobBatch, now: datetime) -> list[int]:
        """Store the batch's jobs, in one transaction; their ids, in order."""
        if not batch.args:
            return []
        ids = self.ledger.reserve(len(batch.args))
        self.store.insert_uniform(transitions.pending_batch(ids, batch, now),
                                  varying=("id", "args", "kwargs"))
        return ids

    def get(self, job_id: int) -> Job:
        """The job; ``JobNotFoundError`` when there is none."""
        return self.store.get(job_id)

    def get_many(self, job_ids: list[int]) -> list[Job]:
        """The jobs with these ids, in id order (ids without a job left out): one request for
        the jobs a notebook follows."""
        return self.store.get_many(job_ids)

    def page(self, page: int, per_page: int, status: str | None, order: str = "newest",
             search: str | None = None) -> Page:
        """Jobs in ``order`` (``store.PAGE_ORDERS``: newest, oldest, running, priority), and the
        number matching ``status`` and ``search`` (text in the target or the arguments)."""
        return self.store.page(page, per_page, status, order, search)

    def counts(self) -> dict[str, int]:
        """Jobs per status, all five keys."""
        return self.store.counts()

    def cancel(self, job_id: int, now: datetime) -> str:
        """Cancel a pending job, or have a running one stopped; the status it had before
        (a final status: nothing changed)."""
        job = self.store.get(job_id)
        changed = transitions.cancel(job, now)
        if (job.status == JobStatus.RUNNING and owners.is_foreground(job.worker)
                and self.data is not None):
            # No worker stops a foreground run: its own process must, or be gone (``owners``)
            if owners.alive(job.worker or "", self.data):
                raise JobStateError(owners.still_running(job_id, job.worker or ""))
            changed = transitions.recover(changed, now)
        if changed is not job:
            self.store.save(changed, job.status)
            self.cancel_waiters(changed, now)
        return job.status

    def cancel_waiters(self, ended: Job, now: datetime) -> None:
        """Cancel the pending jobs that wait for ``ended`` when it did not complete, and theirs
        in turn (SPEC §16). Only without a worker: a worker holds pending jobs in memory and
        does this there (``worker.state``)."""
        todo = [ended]
        while todo:
            done = todo.pop()
            if done.status not in dependencies.ENDED_BADLY:
                continue
            for waiter in self.store.waiting_on(done.id):
                cancelled = transitions.dependency_ended(waiter, done.id, done.status, now)
                self.store.save(cancelled, JobStatus.PENDING.value)
                todo.append(cancelled)

    def prune(self, before: datetime) -> int:
        """Delete the jobs that finished before ``before`` with their result files, and the
        argument files no job refers to any more; how many jobs."""
        pruned = self.store.prune(before)
        if self.data is not None:
            # Inside the transaction: should its commit fail, the jobs stay and their data
            # files are gone; reading such a result then says so (StorageError).
            results.remove(datafiles.results_dir(self.data), pruned)
            argfiles.collect(datafiles.arguments_dir(self.data),
                             argfiles.references(self.store.argument_texts()))
        return len(pruned)

    def table(self, name: str, limit: float, *args: Any) -> pa.Table:
        """A named frame (history, stats, sql, schedules, prunable) read within ``limit``
        seconds (``QueryTimeoutError`` after), as an Arrow table."""
        return self.store.table(name, args, limit)

    def record_progress(self, job_id: int, fraction: float, message: str | None) -> None:
        """A running foreground job's progress (ignored once it is no longer running)."""
        job = self.store.get(job_id)
        changed = transitions.progress(job, fraction, message)
        if changed is not job:
            try:
                self.store.save(changed, JobStatus.RUNNING.value)
            except JobStateError:
                pass  # it ended meanwhile: the report is too late to matter

    def run_started(self, spec: JobSpec, owner: str, now: datetime) -> Job:
        """A new job running its first attempt in the foreground process ``owner``."""
        [job_id] = self.ledger.reserve(1)
        job = transitions.started_now(job_id, spec, owner, now)
        self.store.insert([job])
        return job

    def run_restarted(self, job_id: int, outcome: Outcome, now: datetime) -> Job:
        """A foreground job's failed attempt recorded and its next one begun."""
        job = transitions.restart(self.store.get(job_id), outcome, now)
        self.store.save(job, JobStatus.RUNNING.value)
        return job

    def run_finished(self, job_id: int, outcome: Outcome, now: datetime) -> Job:
        """A foreground job's last attempt settled (completed, failed or cancelled)."""
        job = self.settle_foreground(job_id, outcome, now)
        self.cancel_waiters(job, now)
        return job

    def settle_foreground(self, job_id: int, outcome: Outcome, now: datetime) -> Job:
        """``run_finished`` without cancelling the jobs that wait for it (the worker does that
        in its memory)."""
        job = transitions.settle(self.store.get(job_id), outcome, now)
        self.store.save(job, JobStatus.RUNNING.value)
        return job
