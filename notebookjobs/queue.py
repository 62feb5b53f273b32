"""How a process reaches the queue (SPEC §11): one typed protocol, ``Queue``, and the one
place that chooses the path, ``QueueClient``.

- While a worker runs, it alone opens the DuckDB file; every other process sends its calls
  over the worker's Unix socket (``remote.RemoteQueue``).
- Without a worker, a client takes the file's lock (``lock``), opens the file for one
  transaction (``StoreQueue`` over a ``JobStore``) and closes it. The worker holds that lock for
  its whole life, so a client waiting for the lock also keeps trying the socket: a worker that
  has just started answers there.
- A read of a queue that does not exist (no file, no journal: nothing was ever stored in it)
  creates nothing, not even its folder: it is answered by an empty queue in memory.
  ``store`` (DuckDB) is imported only on the file's path: a client the worker serves does
  without it (SPEC §7, the CLI's figures of §13).

Every way in implements ``Queue``: ``StoreQueue`` here; ``remote.RemoteQueue``; and the worker's
own service (``worker.service``), which keeps pending and running jobs in memory. The same call
gives the same answer on every path. ``OPERATIONS`` names the calls the worker serves on its
socket; ``validate.request`` checks their arguments there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from . import (
    argfiles,
    datafiles,
    dependencies,
    journal,
    lock,
    owners,
    results,
    socketdir,
    transitions,
    validate,
    wake,
)
from .config import Settings
from .errors import JobStateError
from .models import Job, JobBatch, JobSpec, JobStatus, Outcome
from .remote import NotServed, RemoteQueue

if TYPE_CHECKING:
    import pyarrow as pa

    from .store import JobStore

T = TypeVar("T")

#: jobs of one page, and how many jobs match in all
Page = tuple[list[Job], int]


class Queue(Protocol):
    """What a client can ask of the queue, whichever way it reaches it."""

    def enqueue(self, spec: JobSpec, now: datetime) -> int:
        """Store a pending job; its id (durable when this returns)."""

    def enqueue_batch(self, batch: JobBatch, now: datetime) -> list[int]:
        """Store the batch's jobs, in one transaction; their ids, in order."""

    def get(self, job_id: int) -> Job:
        """The job; ``JobNotFoundError`` when there is none."""

    def get_many(self, job_ids: list[int]) -> list[Job]:
        """The jobs with these ids, in id order (ids without a job left out): one request for
        the jobs a notebook follows."""

    def page(self, page: int, per_page: int, status: str | None, order: str = "newest",
             search: str | None = None) -> Page:
        """Jobs in ``order`` (``store.PAGE_ORDERS``: newest, oldest, running, priority), and the
        number matching ``status`` and ``search`` (text in the target or the arguments)."""

    def counts(self) -> dict[str, int]:
        """Jobs per status, all five keys."""

    def cancel(self, job_id: int, now: datetime) -> str:
        """Cancel a pending job, or have a running one stopped; the status it had before
        (a final status: nothing changed)."""

    def prune(self, before: datetime) -> int:
        """Delete the jobs that finished before ``before`` with their result files, and the
        argument files no job refers to any more; how many jobs."""

    def table(self, name: str, limit: float, *args: Any) -> pa.Table | str:
        """A named frame (history, stats, sql, schedules) read within ``limit`` seconds
        (``QueryTimeoutError`` after): the Arrow table, or the path of a Parquet file holding
        it (from the worker; the caller reads and deletes it)."""

    def record_progress(self, job_id: int, fraction: float, message: str | None) -> None:
        """A running foreground job's progress (ignored once it is no longer running)."""

    def run_started(self, spec: JobSpec, owner: str, now: datetime) -> Job:
        """A new job running its first attempt in the foreground process ``owner``."""

    def run_restarted(self, job_id: int, outcome: Outcome, now: datetime) -> Job:
        """A foreground job's failed attempt recorded and its next one begun."""

    def run_finished(self, job_id: int, outcome: Outcome, now: datetime) -> Job:
        """A foreground job's last attempt settled (completed, failed or cancelled)."""


#: the calls a client may send the worker; ``worker_status`` and ``stop`` concern the worker
#: itself and are not queue operations
OPERATIONS = frozenset(name for name in Queue.__dict__ if not name.startswith("_"))


class StoreQueue:
    """``Queue`` over a ``JobStore`` inside the caller's transaction: the meaning of each
    operation, written once for the locked-file path and for the worker's reads. ``data``:
    the queue's data folder (``datafiles.data_dir``), whose files ``prune`` deletes."""

    def __init__(self, store: JobStore, log: journal.Journal, data: Path | None = None) -> None:
        self.store = store
        self.journal = log  #: where new ids come from (the queue file was opened: it has a base)
        self.data = data

    def _ids(self, count: int) -> list[int]:
        first, last = self.journal.append(journal.RESERVE, count)
        return list(range(first, last + 1))

    def enqueue(self, spec: JobSpec, now: datetime) -> int:
        if spec.unique_key is not None:
            existing = self.store.unique_job(spec.unique_key)
            if existing is not None:
                return existing
        known = self.store.statuses(spec.after)
        dependencies.refuse_unknown(spec.after, known)
        [job_id] = self._ids(1)
        job = transitions.pending(job_id, spec, now)
        _, ended = dependencies.blocking(job_id, spec.after, known.get)
        if ended is not None:  # one it waits for has failed or was cancelled already
            job = transitions.dependency_ended(job, *ended, now)
        self.store.insert([job])
        return job_id

    def enqueue_batch(self, batch: JobBatch, now: datetime) -> list[int]:
        if not batch.args:
            return []
        ids = self._ids(len(batch.args))
        self.store.insert_uniform(transitions.pending_batch(ids, batch, now),
                                  varying=("id", "args", "kwargs"))
        return ids

    def get(self, job_id: int) -> Job:
        return self.store.get(job_id)

    def get_many(self, job_ids: list[int]) -> list[Job]:
        return self.store.get_many(job_ids)

    def page(self, page: int, per_page: int, status: str | None, order: str = "newest",
             search: str | None = None) -> Page:
        return self.store.page(page, per_page, status, order, search)

    def counts(self) -> dict[str, int]:
        return self.store.counts()

    def cancel(self, job_id: int, now: datetime) -> str:
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
        pruned = self.store.prune(before)
        if self.data is not None:
            # Inside the transaction: should its commit fail, the jobs stay and their data
            # files are gone; reading such a result then says so (StorageError).
            results.remove(datafiles.results_dir(self.data), pruned)
            argfiles.collect(datafiles.arguments_dir(self.data),
                             argfiles.references(self.store.argument_texts()))
        return len(pruned)

    def table(self, name: str, limit: float, *args: Any) -> pa.Table:
        return self.store.table(name, args, limit)

    def record_progress(self, job_id: int, fraction: float, message: str | None) -> None:
        job = self.store.get(job_id)
        changed = transitions.progress(job, fraction, message)
        if changed is not job:
            try:
                self.store.save(changed, JobStatus.RUNNING.value)
            except JobStateError:
                pass  # it ended meanwhile: the report is too late to matter

    def run_started(self, spec: JobSpec, owner: str, now: datetime) -> Job:
        [job_id] = self._ids(1)
        job = transitions.started_now(job_id, spec, owner, now)
        self.store.insert([job])
        return job

    def run_restarted(self, job_id: int, outcome: Outcome, now: datetime) -> Job:
        job = transitions.restart(self.store.get(job_id), outcome, now)
        self.store.save(job, JobStatus.RUNNING.value)
        return job

    def run_finished(self, job_id: int, outcome: Outcome, now: datetime) -> Job:
        job = self.settle_foreground(job_id, outcome, now)
        self.cancel_waiters(job, now)
        return job

    def settle_foreground(self, job_id: int, outcome: Outcome, now: datetime) -> Job:
        """``run_finished`` without cancelling the jobs that wait for it (the worker does that
        in its memory)."""
        job = transitions.settle(self.store.get(job_id), outcome, now)
        self.store.save(job, JobStatus.RUNNING.value)
        return job


class QueueClient:
    """``Queue`` for a client process: each call through the running worker if one answers,
    else on the file under its lock (SPEC §11). ``used_worker`` says which path the last call
    took (a dispatch that found no worker starts one, with autostart)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.used_worker = False
        self._remote = RemoteQueue(settings)
        self._journal = journal.Journal(settings.db_path)

    def exists(self) -> bool:
        """Whether anything was ever stored in this queue: its file or its journal is there."""
        return self.settings.db_path.exists() or self._journal.path.exists()

    def _route(self, call: Callable[[Any], T], on_file: Callable[[], T] | None = None, *,
               writes: bool = False) -> T:
        """``call(queue)`` on the worker's path, or on the file's when no worker takes it (once
        a stopping worker has let go); ``on_file`` instead of ``call`` there, if given. A call
        that only reads a queue that does not exist gets an empty queue's answer."""
        def ask_worker() -> Any:
            try:
                return call(self._remote)
            except NotServed:
                return lock.NOTHING

        result = ask_worker()
        if result is not lock.NOTHING:
            self.used_worker = True
            return result
        from . import store  # DuckDB: only on the file's path

        if not writes and not self.exists():
            # Opening it would create the file and its folder (a mistyped $NOTEBOOKJOBS_DB
            # would become a new queue): an empty one in memory answers the same.
            self.used_worker = False
            with store.empty() as empty:
                return call(StoreQueue(empty, self._journal))
        fd = lock.open_lock(self.settings.lock_path)
        try:
            result = lock.wait(fd, self.settings.lock_timeout,
                               lambda: lock.busy(self.settings), ask_worker)
            if result is lock.LOCKED:
                self.used_worker = False
                if on_file is not None:
                    return on_file()
                with store.transaction(self.settings.db_path) as job_store:
                    return call(StoreQueue(job_store, self._journal,
                                           datafiles.data_dir(self.settings.db_path)))
        finally:
            os.close(fd)  # closing the descriptor releases the lock
        self.used_worker = True
        return result

    def enqueue(self, spec: JobSpec, now: datetime) -> int:
        """Durable in the journal when this returns, with or without a worker, without opening
        the queue file (SPEC §13); the running worker is told with one datagram, sent as the
        record is written, so that it reads the record while the append syncs it. A dispatch
        with ``after`` or ``unique`` is decided on the queue's state instead, by the worker or
        on the locked file (``journal.journalled`` says why)."""
        if not journal.journalled(spec):
            return self._route(lambda q: q.enqueue(spec, now), writes=True)
        appended = self._append(journal.JOB, 1, journal.job_payload(spec, now))
        if appended is None:
            return self._route(lambda q: q.enqueue(spec, now), writes=True)
        return appended[0]

    def enqueue_batch(self, batch: JobBatch, now: datetime) -> list[int]:
        """As ``enqueue``: one journal record for the whole batch."""
        if not batch.args:
            return []
        # Checked here by the function that reads the record back (``journal.jobs_of``): a
        # batch the reader would refuse must be refused now, not acknowledged and then failed
        # as unreadable (a call's value may pass on its own and be one level too deep in its
        # job's argument list). Found by `make soak`'s dispatch_many property.
        batch = validate.job_batch(batch)
        appended = self._append(journal.BATCH, len(batch.args),
                                journal.batch_payload(batch, now))
        if appended is None:
            return self._route(lambda q: q.enqueue_batch(batch, now), writes=True)
        first, last = appended
        return list(range(first, last + 1))

    def _poke(self) -> None:
        """Tell the running worker that the journal grew (whether one runs: ``used_worker``),
        as soon as the record is written: it reads the record while the append syncs it."""
        self.used_worker = wake.poke(socketdir.wake_path(self.settings))

    def _append(self, kind: int, count: int, payload: bytes) -> tuple[int, int] | None:
        """A journal record of ``count`` new ids; (first, last) id. None when the journal
        has no base record and the queue file exists: opening the file writes the base
        (the caller then goes through the worker or the file)."""
        try:
            return self._journal.append(kind, count, payload, written=self._poke)
        except journal.NoBase:
            pass
        # A queue whose file does not exist yet starts at id 1: its journal gets a base of 0
        # and the record, and the file is created later by whoever opens it first, which
        # replays the journal as it does any record (creating it costs ~1 s: a first
        # dispatch must not). Decided under the queue's lock, so that no worker runs and no
        # process creates the file meanwhile; a lock held by someone means: not new.
        fd = lock.open_lock(self.settings.lock_path)
        try:
            if not lock.try_lock(fd) or self.settings.db_path.exists():
                return None
            with self._journal.locked() as journal_fd:
                try:
                    return self._journal.append_locked(journal_fd, kind, count, payload,
                                                       written=self._poke)
                except journal.NoBase:
                    self._journal.reset(journal_fd, 0)
                    return self._journal.append_locked(journal_fd, kind, count, payload,
                                                       written=self._poke)
        finally:
            os.close(fd)  # releases the lock

    def get(self, job_id: int) -> Job:
        return self._route(lambda q: q.get(job_id))

    def get_many(self, job_ids: list[int]) -> list[Job]:
        return self._route(lambda q: q.get_many(job_ids))

    def page(self, page: int, per_page: int, status: str | None, order: str = "newest",
             search: str | None = None) -> Page:
        return self._route(lambda q: q.page(page, per_page, status, order, search))

    def counts(self) -> dict[str, int]:
        return self._route(lambda q: q.counts())

    def cancel(self, job_id: int, now: datetime) -> str:
        return self._route(lambda q: q.cancel(job_id, now))

    def prune(self, before: datetime) -> int:
        return self._route(lambda q: q.prune(before))

    def table(self, name: str, limit: float, *args: Any) -> pa.Table:
        """The Arrow table of a named frame. Through the worker it comes as a Parquet file
        in the worker's private frames folder (JSON would cost seconds for a million rows);
        it is read and deleted here. On the file, ``store.read_table`` (a user's SQL in an
        instance that cannot read files)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from . import store  # DuckDB: only on the file's path

        result = self._route(
            lambda q: q.table(name, limit, *args),
            on_file=lambda: store.read_table(self.settings.db_path, name, args, limit))
        if isinstance(result, pa.Table):
            return result
        path = Path(result)
        try:
            return pq.read_table(path)
        finally:
            path.unlink(missing_ok=True)

    def record_progress(self, job_id: int, fraction: float, message: str | None) -> None:
        self._route(lambda q: q.record_progress(job_id, fraction, message), writes=True)

    def run_started(self, spec: JobSpec, owner: str, now: datetime) -> Job:
        return self._route(lambda q: q.run_started(spec, owner, now), writes=True)

    def run_restarted(self, job_id: int, outcome: Outcome, now: datetime) -> Job:
        return self._route(lambda q: q.run_restarted(job_id, outcome, now), writes=True)

    def run_finished(self, job_id: int, outcome: Outcome, now: datetime) -> Job:
        return self._route(lambda q: q.run_finished(job_id, outcome, now), writes=True)
