"""The group commit: what changed in the worker's memory reaches the file in batches.

A thread waits for changes and commits them all in one transaction (a few statements however
many jobs: ``JobStore.insert`` for jobs read from the journal, ``save_all`` for the rest), at most
every GROUP_COMMIT_INTERVAL_S under load. Reads commit first (``flush``), so a client never
sees an older state than the loop knows.

A commit that wrote large results (``SHED_AFTER_CHARS``) is followed by a shed of DuckDB's
cached memory (``shed``), or the worker would keep a 900 MB result's blocks for its life.

A batch that fails is written job by job, so one job whose state cannot be stored fails alone
instead of wedging every commit after it (SPEC §14); a job the disk has no room for, and the
whole batch when no job can be written, is kept and tried again, and the problem is reported:
a full disk never fails a job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..errors import DiskFullError, NotebookJobsError, StorageError
from ..model.records import Job, JobStatus
from ..store import JobStore
from .core import Core
from .defaults import (
    COMMIT_RETRY_S,
    GROUP_COMMIT_INTERVAL_S,
    QUIET_COMMIT_DELAY_S,
    SHED_AFTER_CHARS,
    SHUTDOWN_COMMIT_TRIES,
)
from .intake import Intake
from .problems import Problems

logger = logging.getLogger(__name__)


class Writer:
    """Commits the changes of the ``core``'s jobs in memory to its file."""

    def __init__(self, core: Core, problems: Problems, intake: Intake,
                 shed: Callable[[], None] = lambda: None,
                 on_commit: Callable[[], None] = lambda: None) -> None:
        self.core = core
        self.problems = problems
        self.intake = intake  #: whose journal is reset once all of it is committed
        #: has DuckDB's cached memory given back soon, after this thread lets go of the file
        self.shed = shed
        self._written = 0  #: characters of results committed since the last shed
        self.on_commit = on_commit  #: changed jobs are in the file now (``changes.Changes``)
        self._changes = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name="notebookjobs-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """There are changes to commit."""
        self._changes.set()

    def stop(self) -> None:
        """Commit what is left (trying SHUTDOWN_COMMIT_TRIES times at most) and end the thread."""
        self._done = True
        self._changes.set()
        self._thread.join()
        try:
            self.flush()
        except NotebookJobsError as exc:
            logger.error("could not write the last job states (%s); those jobs run again at "
                         "the next start", exc)

    def flush(self) -> None:
        """Commit every change so far, now; ``StorageError`` when the file cannot be written
        (the changes are kept for the next try)."""
        with self.core.file() as db:
            with self.core.memory() as state:  # the ledger's ``read`` goes with the jobs read in
                jobs, new = state.take_changes()
                applied = self.intake.ledger.read
            if not jobs:
                return
            record = self.intake.ledger.unrecorded(applied)
            try:
                if new:  # read from records maybe not yet on the disk (``Journal.append``)
                    self.intake.journal.sync()
            except StorageError:  # (not job by job: none of them may be written unsynced)
                with self.core.memory() as state:
                    state.keep_changes(jobs, new)
                raise
            try:
                with db.transaction() as job_store:
                    self._written += _commit(job_store, jobs, new, record)
            except StorageError:
                left = self._one_by_one(jobs, new) if len(jobs) > 1 else jobs
                if len(left) < len(jobs):
                    self.on_commit()  # some were written, one by one
                if not left:
                    return
                with self.core.memory() as state:  # the disk's fault, not theirs: kept, reported
                    state.keep_changes(left, new & {job.id for job in left})
                raise
            self.intake.ledger.committed(applied)
            self.intake.compact(applied)
            shed = self._written >= SHED_AFTER_CHARS
            if shed:
                self._written = 0
        self.on_commit()
        if shed:  # in a thread of its own, once we let go of the lock
            self.shed()

    def _one_by_one(self, jobs: list[Job], new: set[int]) -> list[Job]:
        """After a batch failed: commit each job alone; one that cannot be stored is replaced
        by a failure that can be. The jobs not written for the disk's sake, to keep and try
        again: those the disk had no room for (``DiskFullError``: on a nearly full disk a
        large state fails where small ones fit, and that is no fault of the job's), or all of
        them when none could be written. (Called holding ``core.file()``.)"""
        failed: list[tuple[Job, Exception]] = []
        for job in jobs:
            try:
                with self.core.db.transaction() as job_store:
                    _commit(job_store, [job], new & {job.id}, None)
            except StorageError as exc:
                failed.append((job, exc))
        if len(failed) == len(jobs):
            return jobs
        kept = [job for job, error in failed if isinstance(error, DiskFullError)]
        failed = [(job, error) for job, error in failed if not isinstance(error, DiskFullError)]
        with self.core.memory() as state:
            for job, error in failed:
                logger.error("job %d: its state cannot be stored (%s); failing it", job.id, error)
                state.update(job.evolve(
                    status=JobStatus.FAILED.value, worker=None, result=None, output=None,
                    progress_message=None,
                    error=f"the worker could not store this job's state ({error})"[:2000]))
                state.keep_changes([], new & {job.id})
        self._changes.set()
        return kept

    def _run(self) -> None:
        # A change after a quiet spell is written within QUIET_COMMIT_DELAY_S (a lone job's
        # start and end reach the file within a few ms); under load, batches are at least
        # GROUP_COMMIT_INTERVAL_S apart.
        last = 0.0
        failures = 0
        while True:
            self._changes.wait()
            pause = max(QUIET_COMMIT_DELAY_S,
                        GROUP_COMMIT_INTERVAL_S - (time.monotonic() - last))
            if not self._done:
                time.sleep(pause)
            last = time.monotonic()
            self._changes.clear()
            try:
                self.flush()
            except Exception as exc:  # the thread's top level: report, keep the changes, retry
                failures += 1
                self.problems.report("commits", f"could not write job states to "
                                     f"{self.core.db.path} ({exc}); retrying")
                if self._done and failures >= SHUTDOWN_COMMIT_TRIES:
                    return  # stop() logs what is lost
                time.sleep(COMMIT_RETRY_S)
                self._changes.set()
            else:
                failures = 0
                self.problems.clear("commits")
            if self._done and not self._changes.is_set():
                return


def _commit(job_store: JobStore, jobs: list[Job], new: set[int], applied: int | None) -> int:
    """Write the jobs' states: those read from the journal are inserted as they are now.
    ``applied``: the journal records up to it are all in the file with this commit (None when
    only some of a batch are: then nothing is recorded, and a restart replays what it must).
    The characters of the results written."""
    written = job_store.insert([job for job in jobs if job.id in new])
    written += job_store.save_all([job for job in jobs if job.id not in new])
    if applied is not None:
        job_store.set_ids(applied=applied)
    return written
