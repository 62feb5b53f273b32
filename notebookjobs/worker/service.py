"""The queue as the running worker serves it (``queue.Queue``), over its socket.

Dispatches are durable before they are acknowledged: one goes to the inbox (one narrow row, the
cheapest durable write), a batch straight into the queue; both then join the in-memory
``QueueState`` and wake the loop. A cancel changes the in-memory job. Every other call first
commits what the loop changed (``Writer.flush``), then runs on the worker's connection as the
locked-file path would (``queue.StoreQueue``), so both paths give the same answers (SPEC §11).

``handle`` is what the socket server calls: each request's arguments are checked by
``validate.request`` before anything is stored (SPEC §14), and only the operations of
``queue.OPERATIONS`` (plus ``worker_status`` and ``stop``) exist.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from .. import dependencies, transitions, validate
from ..models import Job, JobBatch, JobSpec, JobStatus, Outcome
from ..queue import OPERATIONS, Page, StoreQueue
from ..store import Database
from .loop import Loop
from .state import QueueState
from .writer import Writer

T = TypeVar("T")


class Ids:
    """Job ids handed out by the worker: consecutive, with no gap across restarts (the next
    worker starts after the highest id stored); an id whose job could not be stored is taken
    back. Callers hold the database lock."""

    def __init__(self, last: int) -> None:
        self.last = last  #: the highest id handed out

    def take(self, count: int) -> list[int]:
        first = self.last + 1
        self.last += count
        return list(range(first, self.last + 1))

    def give_back(self, ids: list[int]) -> None:
        if ids and ids[-1] == self.last:
            self.last = ids[0] - 1


class WorkerService:
    """The worker's answers to its clients (``queue.Queue``, ``worker_status``, ``stop``)."""

    def __init__(self, *, db: Database, db_lock: threading.Lock, state: QueueState,
                 state_lock: threading.RLock, writer: Writer, loop: Loop, ids: Ids,
                 frames_dir: Path, status: Callable[[], dict[str, Any]]) -> None:
        self.db, self.db_lock = db, db_lock
        self.state, self.state_lock = state, state_lock
        self.writer, self.loop, self.ids = writer, loop, ids
        self.frames_dir = frames_dir
        self._status = status

    def handle(self, operation: Any, args: Any) -> Any:
        """One request from the socket: checked, then answered."""
        checked = validate.request(operation, args)  # refuses unknown operations too
        if operation == "worker_status":
            return self._status()
        if operation == "stop":
            self.loop.request_stop()
            return True
        assert operation in OPERATIONS  # validate.request knows no other name
        return getattr(self, operation)(*checked)

    # --- what changes the jobs in memory ------------------------------------------------------

    def enqueue(self, spec: JobSpec, now: datetime) -> int:
        # The database lock is held to the end: it orders dispatches, so two with one unique key
        # cannot both find none, and the writer cannot commit (and so forget) a job that ended
        # between the look at the memory and the look at the file.
        with self.db_lock:
            with self.state_lock:
                if spec.unique_key is not None:
                    existing = self.state.unique_job(spec.unique_key)
                    if existing is not None:
                        return existing
                elsewhere = [i for i in spec.after if self.state.status_of(i) is None]
            known: dict[int, str] = {}
            if elsewhere:  # finished jobs (or none): their statuses are in the file
                with self.db.autocommit() as job_store:
                    known = job_store.statuses(elsewhere)
                dependencies.refuse_unknown(elsewhere, known)
            [job_id] = self.ids.take(1)
            job = transitions.pending(job_id, spec, now)
            try:
                with self.db.autocommit() as job_store:
                    job_store.inbox.put(job)
            except BaseException:
                self.ids.give_back([job_id])
                raise
            with self.state_lock:
                self.state.add(job, new=True, known=known, now=now)
        self.loop.wake()
        self.writer.wake()
        return job_id

    def enqueue_batch(self, batch: JobBatch, now: datetime) -> list[int]:
        with self.db_lock:
            ids = self.ids.take(len(batch.args))
            jobs = transitions.pending_batch(ids, batch, now)
            try:
                with self.db.transaction() as job_store:
                    job_store.insert_uniform(jobs, varying=("id", "args", "kwargs"))
                    job_store.set_last_id(self.ids.last)
            except BaseException:
                self.ids.give_back(ids)
                raise
        with self.state_lock:
            for job in jobs:
                self.state.add(job)
        self.loop.wake()
        return ids

    def cancel(self, job_id: int, now: datetime) -> str:
        with self.state_lock:
            job = self.state.get(job_id)
            if job is not None:
                self.state.update(transitions.cancel(job, now))
        if job is None:  # finished, unknown, or run by a foreground `notebookjobs run`
            return self._on_file(lambda q: q.cancel(job_id, now))
        if job.status == JobStatus.RUNNING:
            self.loop.cancel(job_id)
        self.writer.flush()
        return job.status

    # --- everything else: on the file, after a commit ------------------------------------------

    def _on_file(self, call: Callable[[StoreQueue], T]) -> T:
        self.writer.flush()
        with self.db_lock, self.db.transaction() as job_store:
            return call(StoreQueue(job_store))

    def get(self, job_id: int) -> Job:
        return self._on_file(lambda q: q.get(job_id))

    def page(self, page: int, per_page: int, status: str | None) -> Page:
        return self._on_file(lambda q: q.page(page, per_page, status))

    def counts(self) -> dict[str, int]:
        return self._on_file(lambda q: q.counts())

    def prune(self, before: datetime) -> int:
        return self._on_file(lambda q: q.prune(before))

    def record_progress(self, job_id: int, fraction: float, message: str | None) -> None:
        self._on_file(lambda q: q.record_progress(job_id, fraction, message))

    def run_started(self, spec: JobSpec, owner: str, now: datetime) -> Job:
        self.writer.flush()
        with self.db_lock:
            [job_id] = self.ids.take(1)
            job = transitions.started_now(job_id, spec, owner, now)
            try:
                with self.db.transaction() as job_store:
                    job_store.insert([job])
                    job_store.set_last_id(self.ids.last)
            except BaseException:
                self.ids.give_back([job_id])
                raise
        return job

    def run_restarted(self, job_id: int, outcome: Outcome, now: datetime) -> Job:
        return self._on_file(lambda q: q.run_restarted(job_id, outcome, now))

    def run_finished(self, job_id: int, outcome: Outcome, now: datetime) -> Job:
        # The jobs that wait for it are pending, so in memory: released or cancelled there.
        job = self._on_file(lambda q: q.settle_foreground(job_id, outcome, now))
        with self.state_lock:
            self.state.dependency_ended(job)
        self.loop.wake()
        self.writer.wake()
        return job

    def table(self, name: str, *args: Any) -> str:
        """The frame as an Arrow IPC file in the worker's private frames folder; its path."""
        table = self._on_file(lambda q: q.table(name, *args))
        import pyarrow as pa  # only when a client asks for a frame: keeps an idle worker small

        fd, path = tempfile.mkstemp(suffix=".arrow", dir=self.frames_dir)
        with os.fdopen(fd, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        return path
