"""The queue as the running worker serves it (``queue.Queue``), over its socket.

Clients append their dispatches to the journal themselves (``queue.QueueClient``); a dispatch
that reaches the worker's socket (a client that found no journal) is appended by the worker the
same way, then read in (``Intake``), unless it needs the queue's state to be decided (``after``,
``unique``: ``journal.journalled``), which is decided here. A cancel changes the in-memory job.
Every other call first reads the journal and commits what the loop changed (``Writer.flush``),
then runs on the worker's connection as the locked-file path would (``queue.StoreQueue``), so
both paths give the same answers (SPEC §11) and every read sees every acknowledged dispatch;
a frame (history, stats, SQL) runs on a connection of its own instead, off the lock the
commits need (``queries.Queries``).

``handle`` is what the socket server calls: each request's arguments are checked by
``validate.request`` before anything is stored (SPEC §14), a new job's target against
whitelist.yaml as the API checks it, and only the operations of ``queue.OPERATIONS`` (plus
``worker_status`` and ``stop``) exist.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from .. import datafiles, dependencies, journal, transitions, validate
from ..config import load_settings
from ..errors import NotAllowedError
from ..models import Job, JobBatch, JobSpec, Outcome
from ..queue import OPERATIONS, Page, StoreQueue
from ..store import Database
from .changes import Changes
from .intake import Intake
from .loop import Loop
from .queries import Queries
from .runs import ForegroundRuns
from .state import QueueState
from .writer import Writer

T = TypeVar("T")

#: the requests that store a new job (their first argument has its target)
_NEW_JOBS = frozenset({"enqueue", "enqueue_batch", "run_started"})


class WorkerService:
    """The worker's answers to its clients (``queue.Queue``, ``worker_status``, ``stop``)."""

    def __init__(self, *, db: Database, db_lock: threading.Lock, state: QueueState,
                 state_lock: threading.RLock, writer: Writer, loop: Loop, intake: Intake,
                 queries: Queries, runs: ForegroundRuns, frames_dir: Path,
                 status: Callable[[], dict[str, Any]], changes: Changes | None = None) -> None:
        self.db, self.db_lock = db, db_lock
        self.state, self.state_lock = state, state_lock
        self.writer, self.loop, self.intake = writer, loop, intake
        self.queries = queries
        self.runs = runs  #: the jobs run in the foreground, by processes of their own
        self.journal = intake.journal
        self.frames_dir = frames_dir
        self._status = status
        #: the queue's changes, which ``watch`` waits for (the dashboard's push)
        self.changes = changes or Changes()
        #: requests received, counted as they arrive (``worker_status()["requests"]``): how a
        #: test sees that an idle dashboard sends nothing
        self.requests = 0

    def handle(self, operation: Any, args: Any) -> Any:
        """One request from the socket: checked, then answered."""
        self.requests += 1  # (several threads: a lost increment is harmless, it is a gauge)
        checked = validate.request(operation, args)  # refuses unknown operations too
        if operation == "worker_status":
            return {**self._status(), "requests": self.requests,
                    "watching": self.changes.waiting}
        if operation == "stop":
            self.loop.request_stop()
            return True
        if operation == "watch":
            return self.changes.wait(*checked)
        assert operation in OPERATIONS  # validate.request knows no other name
        if operation in _NEW_JOBS:
            self._allowed(checked[0].target)
        return getattr(self, operation)(*checked)

    def _allowed(self, target: str) -> None:
        """``NotAllowedError`` unless whitelist.yaml (as it is now) allows ``target``; a broken
        whitelist refuses with its error (SPEC §12). The loop checks again before it runs the
        job, the child once more."""
        settings = load_settings(self.loop.settings.root)
        if not settings.allows(target):
            raise NotAllowedError(settings.refusal(target))

    # --- what changes the jobs in memory ------------------------------------------------------

    def _append(self, kind: int, count: int, payload: bytes = b"") -> tuple[int, int]:
        """Append to the journal; one removed under the running worker gets its base back."""
        return self.intake.append(kind, count, payload, self._stored_last)

    def _stored_last(self) -> int:
        with self.db_lock, self.db.transaction() as job_store:
            return job_store.last_id()

    def _taken_in(self) -> None:
        """Read what was appended into memory, and set the loop and the writer going."""
        if self.intake.poll():
            self.loop.wake()
            self.writer.wake()

    def enqueue(self, spec: JobSpec, now: datetime) -> int:
        if journal.journalled(spec):
            first, _ = self._append(journal.JOB, 1, journal.job_payload(spec, now))
            self._taken_in()
            return first
        return self._enqueue_decided(spec, now)

    def _enqueue_decided(self, spec: JobSpec, now: datetime) -> int:
        """A dispatch with ``after`` or ``unique``: decided on the queue's state as it is now
        (``journal.journalled`` says why not from the journal), stored in the queue file before
        it returns (its id from the journal, ``Intake.reserve``), then held in memory."""
        self._taken_in()  # dispatches journalled before this one: ``after`` may name them
        # The database lock is held to the end: it orders these dispatches, so two with one
        # unique key cannot both find none, and the writer cannot commit (and so forget) a job
        # that ended between the look at the memory and the look at the file.
        with self.db_lock:
            with self.state_lock:
                if spec.unique_key is not None:
                    existing = self.state.unique_job(spec.unique_key)
                    if existing is not None:
                        return existing
                elsewhere = [i for i in spec.after if self.state.status_of(i) is None]
            with self.db.transaction() as job_store:
                # finished jobs (or none): their statuses are in the file
                known = job_store.statuses(elsewhere)
                dependencies.refuse_unknown(elsewhere, known)
                [job_id] = self.intake.reserve(1, job_store.last_id)
                job = transitions.pending(job_id, spec, now)
                job_store.insert([job])
            with self.state_lock:
                self.state.add(job, known=known, now=now)
        self.loop.wake()
        self.writer.wake()
        return job_id

    def enqueue_batch(self, batch: JobBatch, now: datetime) -> list[int]:
        if not batch.args:
            return []
        first, last = self._append(journal.BATCH, len(batch.args),
                                   journal.batch_payload(batch, now))
        self._taken_in()
        return list(range(first, last + 1))

    def cancel(self, job_id: int, now: datetime) -> str:
        with self.state_lock:
            job = self.state.get(job_id)
            if job is not None:
                self.state.update(transitions.cancel(job, now))
        if job is None and self.runs.holds(job_id):  # run by a foreground `notebookjobs run`
            return self.runs.cancel(job_id, now)
        if job is None:  # finished, or unknown
            return self._on_file(lambda q: q.cancel(job_id, now))
        if job_id in self.loop.handed:  # running, or waiting in a child: stop it there
            self.loop.cancel(job_id)
        self.writer.flush()
        return job.status

    # --- everything else: on the file, after a commit ------------------------------------------

    def _on_file(self, call: Callable[[StoreQueue], T]) -> T:
        self._taken_in()
        self.writer.flush()
        with self.db_lock, self.db.transaction() as job_store:
            return call(StoreQueue(job_store, self.journal, datafiles.data_dir(self.db.path)))

    def get(self, job_id: int) -> Job:
        return self._on_file(lambda q: q.get(job_id))

    def get_many(self, job_ids: list[int]) -> list[Job]:
        return self._on_file(lambda q: q.get_many(job_ids))

    def page(self, page: int, per_page: int, status: str | None, order: str = "newest",
             search: str | None = None) -> Page:
        return self._on_file(lambda q: q.page(page, per_page, status, order, search))

    def counts(self) -> dict[str, int]:
        return self._on_file(lambda q: q.counts())

    def _written(self, call: Callable[[StoreQueue], T]) -> T:
        """``_on_file`` for a call that writes the file itself: its watchers are told."""
        try:
            return self._on_file(call)
        finally:
            self.changes.bump()

    def prune(self, before: datetime) -> int:
        return self._written(lambda q: q.prune(before))

    def record_progress(self, job_id: int, fraction: float, message: str | None) -> None:
        self._written(lambda q: q.record_progress(job_id, fraction, message))

    def run_started(self, spec: JobSpec, owner: str, now: datetime) -> Job:
        job = self._written(lambda q: q.run_started(spec, owner, now))
        self.runs.adopt([job])  # its owner is watched from now on
        return job

    def run_restarted(self, job_id: int, outcome: Outcome, now: datetime) -> Job:
        return self._written(lambda q: q.run_restarted(job_id, outcome, now))

    def run_finished(self, job_id: int, outcome: Outcome, now: datetime) -> Job:
        # The jobs that wait for it are pending, so in memory: released or cancelled there.
        job = self._written(lambda q: q.settle_foreground(job_id, outcome, now))
        self.runs.ended(job_id)
        with self.state_lock:
            self.state.dependency_ended(job)
        self.loop.wake()
        self.writer.wake()
        return job

    def table(self, name: str, limit: float, *args: Any) -> str:
        """The frame as a Parquet file in the worker's private frames folder; its path.
        DuckDB writes it, so the worker never loads pyarrow, from a snapshot taken after
        this client's last change was committed, within ``limit`` seconds, while commits and
        other calls go on (``Queries``)."""
        fd, path = tempfile.mkstemp(suffix=".parquet", dir=self.frames_dir)
        os.close(fd)
        try:
            self._taken_in()
            self.writer.flush()
            self.queries.write(name, args, limit, Path(path))
        except BaseException:
            Path(path).unlink(missing_ok=True)
            raise
        return path
