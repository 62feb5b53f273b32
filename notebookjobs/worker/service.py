"""The queue as the running worker serves it over its socket: every operation of the table
(``access.operations``), dispatched from there.

``handle`` is what the socket server calls: the operation is found in the table and its
arguments checked there before anything is stored (SPEC §14), a new job's target against
whitelist.yaml as the API checks it; then ``perform`` carries it out:

- a dispatch the journal takes is appended by the worker as a client appends it (a client that
  found no journal sends it here), then read in (``Intake``);
- one the journal cannot take (``after``, ``unique``) is decided on the queue's state by the
  one admission function (``access.admission``) over this worker's view: its memory for the
  pending and running jobs, the file for the rest;
- the operations this service serves itself, each a method of the operation's name: a cancel
  changes the in-memory job; a foreground run is watched; a frame (history, stats, SQL) runs
  on a connection of its own, off the lock the commits need (``queries.Queries``); and the
  worker's own operations;
- every other one first reads the journal and commits what the loop changed
  (``Writer.flush``), then runs its meaning on the worker's connection as the locked-file path
  would (``StoreQueue``), so both paths give the same answers (SPEC §11) and every read sees
  every acknowledged dispatch.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from ..access import operations
from ..access.admission import admit
from ..access.meaning import StoreQueue
from ..access.operations import ELSEWHERE, Entry, Operation
from ..config import load_settings
from ..data import datafiles
from ..errors import NotAllowedError
from ..journal.ledger import Ledger
from ..model import transitions
from ..model.records import Job, JobSpec, JobStatus, Outcome
from ..store import JobStore
from .changes import Changes
from .core import Core
from .intake import Intake
from .loop import Loop
from .queries import Queries
from .runs import ForegroundRuns
from .writer import Writer

T = TypeVar("T")


class WorkerService:
    """The worker's answers to its clients: every operation of the table (module docstring)."""

    def __init__(self, *, core: Core, writer: Writer, loop: Loop, intake: Intake,
                 queries: Queries, runs: ForegroundRuns, frames_dir: Path,
                 status: Callable[[], dict[str, Any]], changes: Changes | None = None) -> None:
        self.core = core
        self.writer, self.loop, self.intake = writer, loop, intake
        self.queries = queries
        self.runs = runs  #: the jobs run in the foreground, by processes of their own
        self.ledger = intake.ledger  #: where new ids come from
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
        op = operations.find(operation)  # refuses unknown operations
        checked = op.check(args)
        if op.new_jobs:
            self._allowed(checked[0].target)
        return self.perform(op, *checked)

    def perform(self, op: Operation[..., Any], *args: Any) -> Any:
        """``op`` with checked arguments (module docstring)."""
        answer = op.through_journal(args, self._append)
        if answer is not ELSEWHERE:
            self._taken_in()
            return answer
        served = _SERVED.get(op.name)
        if served is not None:
            return served(self, *args)
        meaning = op.meaning
        assert meaning is not None  # the worker's own operations are all served
        if op.writes:
            return self._written(lambda q: meaning(q, *args))
        return self._on_file(lambda q: meaning(q, *args))

    def _allowed(self, target: str) -> None:
        """``NotAllowedError`` unless whitelist.yaml (as it is now) allows ``target``; a broken
        whitelist refuses with its error (SPEC §12). The loop checks again before it runs the
        job, the child once more."""
        settings = load_settings(self.loop.settings.root)
        if not settings.allows(target):
            raise NotAllowedError(settings.refusal(target))

    def _append(self, entry: Entry) -> tuple[int, int]:
        """A journal record, appended as a client appends it; a journal removed under the
        running worker gets its base back first (``Ledger.take``)."""
        return self.ledger.take(entry.kind, entry.count, entry.payload)

    def _taken_in(self) -> None:
        """Read what was appended into memory, and set the loop and the writer going."""
        if self.intake.poll():
            self.loop.wake()
            self.writer.wake()

    # --- the worker's own operations --------------------------------------------------------------

    def worker_status(self) -> dict[str, Any]:
        return {**self._status(), "requests": self.requests, "watching": self.changes.waiting}

    def stop(self) -> bool:
        self.loop.request_stop()
        return True

    def watch(self, seen: int, hold: float) -> int:
        return self.changes.wait(seen, hold)

    # --- what changes the jobs in memory ----------------------------------------------------------

    def enqueue(self, spec: JobSpec, now: datetime) -> int:
        """A dispatch the journal cannot take (``after``, ``unique``): admitted on the queue's
        state as it is now, stored in the queue file before it returns (its id from the
        ledger), then held in memory."""
        self._taken_in()  # dispatches journalled before this one: ``after`` may name them
        # The database lock is held to the end: it orders these dispatches, so two with one
        # unique key cannot both find none, and the writer cannot commit (and so forget) a job
        # that ended between the look at the memory and the look at the file.
        with self.core.file() as db:
            with db.transaction() as job_store:
                view = _WorkerView(self.core, self.ledger, job_store)
                job_id = admit(view, spec, now)
            if view.stored is not None and view.stored.status == JobStatus.PENDING.value:
                with self.core.memory() as state:
                    state.add(view.stored, known=view.known, now=now)
        self.loop.wake()
        self.writer.wake()
        return job_id

    def cancel(self, job_id: int, now: datetime) -> str:
        with self.core.memory() as state:
            job = state.get(job_id)
            if job is not None:
                state.update(transitions.cancel(job, now))
        if job is None and self.runs.holds(job_id):  # run by a foreground `notebookjobs run`
            return self.runs.cancel(job_id, now)
        if job is None:  # finished, or unknown
            return self._on_file(lambda q: q.cancel(job_id, now))
        if job_id in self.loop.handed:  # running, or waiting in a child: stop it there
            self.loop.cancel(job_id)
        self.writer.flush()
        return job.status

    # --- on the file, after a commit --------------------------------------------------------------

    def _on_file(self, call: Callable[[StoreQueue], T]) -> T:
        self._taken_in()
        self.writer.flush()
        with self.core.transaction() as job_store:
            return call(StoreQueue(job_store, self.ledger, datafiles.data_dir(self.core.db.path)))

    def _written(self, call: Callable[[StoreQueue], T]) -> T:
        """``_on_file`` for a call that writes the file itself: its watchers are told."""
        try:
            return self._on_file(call)
        finally:
            self.changes.bump()

    def run_started(self, spec: JobSpec, owner: str, now: datetime) -> Job:
        job = self._written(lambda q: q.run_started(spec, owner, now))
        self.runs.adopt([job])  # its owner is watched from now on
        return job

    def run_finished(self, job_id: int, outcome: Outcome, now: datetime) -> Job:
        # The jobs that wait for it are pending, so in memory: released or cancelled there.
        job = self._written(lambda q: q.settle_foreground(job_id, outcome, now))
        self.runs.ended(job_id)
        with self.core.memory() as state:
            state.dependency_ended(job)
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


#: the operations this service serves itself, by name; every other one runs its meaning on the
#: file (derived once, at import)
_SERVED: dict[str, Callable[..., Any]] = {
    name: method for name, method in vars(WorkerService).items() if name in operations.OPERATIONS}
assert all(op.name in _SERVED for op in operations.OPERATIONS.values() if op.meaning is None)


class _WorkerView:
    """Admission's view of the running worker (``access.admission.View``): its memory for the
    pending and running jobs it holds, the file (``job_store``, a transaction under the
    database lock) for the rest. The job admitted is kept (``stored``, with the statuses of
    what it waits for, ``known``), to be held in memory once its transaction is committed."""

    def __init__(self, core: Core, ledger: Ledger, job_store: JobStore) -> None:
        self.core, self.ledger, self.job_store = core, ledger, job_store
        self.stored: Job | None = None
        self.known: Mapping[int, str] = {}

    def unique_job(self, key: str) -> int | None:
        with self.core.memory() as state:
            found = state.unique_job(key)
        if found is not None:
            return found
        # A foreground run is in the file only. A row whose job ended in memory since the last
        # commit is no longer pending or running: memory knows better.
        found = self.job_store.unique_job(key)
        with self.core.memory() as state:
            return found if found is not None and state.status_of(found) is None else None

    def statuses(self, ids: Sequence[int]) -> dict[int, str]:
        with self.core.memory() as state:
            held = {i: s for i in ids if (s := state.status_of(i)) is not None}
        # finished jobs (or none): their statuses are in the file
        return {**self.job_store.statuses([i for i in ids if i not in held]), **held}

    def new_ids(self, count: int) -> list[int]:
        return self.ledger.reserve(count)

    def store(self, job: Job, known: Mapping[int, str]) -> None:
        self.job_store.insert([job])
        self.stored, self.known = job, known
