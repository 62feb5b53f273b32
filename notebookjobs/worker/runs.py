"""The jobs run in the foreground (``notebookjobs run``) while this worker owns the queue.

Such a job lives in the queue file only, not in the worker's memory: its own process runs it
and records its states through the worker's socket (``run_started`` ... ``run_finished``). The
worker keeps each one's owner, checks every few seconds (the loop's health tick, MAX_SLEEP_S)
that the owner still holds its lock (``owners.alive``), and settles the job of an owner that is
gone, killed or crashed, as the crashed attempt it is (``Loop.recover``, as at a start: the
retry policy applies, and a job that goes back to pending is run by this worker). A forged
owner (pid 1, which never dies) holds no lock: its job is settled the same way.

A cancel of such a job whose owner is gone settles it as cancelled at once; one whose owner
still runs it is refused, saying which process to stop: nothing here may kill a process the
worker did not start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from ..access import owners
from ..errors import JobNotFoundError, JobStateError, StorageError
from ..model import transitions
from ..model.records import Job, JobStatus
from .core import Core
from .loop import Loop

logger = logging.getLogger(__name__)


class ForegroundRuns:
    """The foreground jobs of the ``core``'s queue (data folder ``data``), owner by job id."""

    def __init__(self, *, core: Core, loop: Loop, data: Path) -> None:
        self.core = core
        self.loop = loop
        self.data = data
        self._owners: dict[int, str] = {}
        self._lock = threading.Lock()  #: one check or cancel at a time; before the core's locks

    def adopt(self, jobs: Iterable[Job]) -> None:
        """Watch these running foreground jobs (a job's ``worker`` is its owner)."""
        with self._lock:
            for job in jobs:
                if job.worker is not None:
                    self._owners[job.id] = job.worker

    def ended(self, job_id: int) -> None:
        """The job's own process settled it (``run_finished``)."""
        with self._lock:
            self._owners.pop(job_id, None)

    def holds(self, job_id: int) -> bool:
        """Whether ``job_id`` is a foreground job this worker watches."""
        with self._lock:
            return job_id in self._owners

    def check(self, now: datetime) -> None:
        """Settle the jobs whose owners are gone (the loop's health tick)."""
        with self._lock:
            gone = [i for i, owner in self._owners.items() if not owners.alive(owner, self.data)]
            if not gone:
                return
            try:
                self._settle(gone, now, cancel=False)
            except StorageError as exc:  # the next tick tries again
                logger.warning("could not settle the foreground jobs %s (%s)", gone, exc)

    def cancel(self, job_id: int, now: datetime) -> str:
        """Cancel a watched job: settled as cancelled when its owner is gone; a
        ``JobStateError`` naming the process that runs it otherwise. The status it had."""
        with self._lock:
            owner = self._owners.get(job_id)
            if owner is not None and owners.alive(owner, self.data):
                raise JobStateError(owners.still_running(job_id, owner))
            before = self._settle([job_id], now, cancel=True)
        if job_id not in before:
            raise JobNotFoundError(f"no job has id {job_id}; `notebookjobs list` shows the queue")
        return before[job_id]

    def _settle(self, ids: list[int], now: datetime, *, cancel: bool) -> dict[int, str]:
        """Recover the jobs among ``ids`` still running in the file; id -> the status each had
        (those not running any more, settled by their own process meanwhile, are forgotten)."""
        with self.core.transaction() as job_store:
            jobs = job_store.get_many(ids)
        before = {job.id: job.status for job in jobs}
        running = [job for job in jobs if job.status == JobStatus.RUNNING.value]
        if cancel:
            running = [transitions.cancel(job, now) for job in running]
        for job in running:
            logger.warning("job %d: its foreground run (%s) is gone", job.id,
                           owners.describe(job.worker or ""))
        self.loop.recover(running, now, alive=lambda owner: False)
        for job_id in ids:
            self._owners.pop(job_id, None)
        return before
