"""The worker dispatches the schedules' ticks itself (SPEC §16): there is no second process to
forget, as Celery beat or RQ's scheduler are.

Each tick runs exactly once, also across restarts and crashes: its job and the schedule's new
last tick are written in one transaction, straight into the queue table (not through the
dispatch journal and the group commit: a journal record could not carry the tick, and the tick
must not be stored without its job nor the job without its tick), so after a crash either both
are in the file or neither is, and the next worker carries on from the last tick stored. The
jobs' ids come from the journal all the same (a RESERVE record, ``Ledger.reserve``), as every
id does. The loop calls ``Scheduler.run`` with its clock, and sleeps until the next tick it
returns.

- At the worker's first run, the ticks that fell while no worker ran become one job (the
  latest tick's), not one per tick. While it runs, every tick gets its job, unless more than
  CATCH_UP_TICKS fell at once (the machine slept): those are downtime too, and run once.
- A schedule seen for the first time, or edited (``Schedule.definition``), starts afresh from
  now: no catching up on ticks of a definition that was not in force.
- whitelist.yaml is read again when it changes (hot reload: a schedule added or edited applies
  at the next turn of the loop, not at the next tick of the old ones); while it is invalid no
  tick is dispatched, and the ticks missed meanwhile run once when it is fixed.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

from ..config import WHITELIST_NAME, Settings, load_settings
from ..errors import ConfigError, StorageError
from ..model import transitions, validate
from ..model.records import Job, JobSpec
from ..model.schedule import Schedule
from .core import Core
from .defaults import CATCH_UP_TICKS, COMMIT_RETRY_S, CONFIG_RETRY_S
from .intake import Intake
from .problems import Problems

logger = logging.getLogger(__name__)


class Scheduler:
    """The schedules of one worker: their stored last ticks, and the dispatch of due ones."""

    def __init__(self, *, root: Path, core: Core, intake: Intake, problems: Problems) -> None:
        self.root = root
        self.core = core
        self.intake = intake  #: where the ticks' job ids come from (the journal)
        self.problems = problems
        #: name -> (definition, last tick) as stored in the file
        self.ticks: dict[str, tuple[str, datetime]] = {}
        self._first = True  #: the next run is this worker's first
        #: until when the last run's answer holds, while whitelist.yaml is as it was then
        self._next: datetime | None = None
        self._stamp: object = object()  #: whitelist.yaml's (mtime, size) at the last run
        #: stat at every turn of the loop: a str made once (a Path joined per turn cost more)
        self._whitelist = os.fspath(root / WHITELIST_NAME)

    def load(self) -> None:
        """Read the stored last ticks (at the worker's start)."""
        with self.core.transaction() as job_store:
            self.ticks = job_store.schedule_ticks()

    def run(self, now: datetime) -> datetime | None:
        """Dispatch the ticks due at ``now``; when the next one falls (None: no schedule).
        Called at every turn of the loop: nothing but a stat until then, or an edit."""
        stamp = _stamp(self._whitelist)
        if stamp == self._stamp and (self._next is None or now < self._next):
            return self._next
        self._stamp = stamp
        self._next = self._run(now)
        return self._next

    def _run(self, now: datetime) -> datetime | None:
        try:
            settings = load_settings(self.root)
        except ConfigError:  # the loop reports it; ticks missed meanwhile run once when fixed
            return validate.later(now, CONFIG_RETRY_S)
        catch_up = 1 if self._first else CATCH_UP_TICKS
        starts: list[Schedule] = []  # new or edited: recorded from now, nothing dispatched
        due: list[tuple[Schedule, list[datetime]]] = []
        for schedule in settings.schedules.values():
            stored = self.ticks.get(schedule.name)
            if stored is None or stored[0] != schedule.definition:
                starts.append(schedule)
            elif schedule.enabled:
                ticks = schedule.due(stored[1], now, catch_up)
                if ticks:
                    due.append((schedule, ticks))
        if starts or due:
            try:
                self._write(starts, due, now, settings)
            except StorageError as exc:
                self.problems.report("schedules", f"could not record the schedules' ticks "
                                     f"({exc}); trying again")
                return validate.later(now, COMMIT_RETRY_S)
        self._first = False
        self.problems.clear("schedules")
        upcoming = [tick for s in settings.schedules.values() if s.enabled
                    for tick in (s.next_after(now),) if tick is not None]
        return min(upcoming, default=None)

    def _write(self, starts: list[Schedule], due: list[tuple[Schedule, list[datetime]]],
               now: datetime, settings: Settings) -> None:
        """One transaction: the due ticks' jobs, and every schedule's new last tick."""
        with self.core.file() as db:
            jobs: list[Job] = []
            with db.transaction() as job_store:
                count = sum(len(ticks) for _, ticks in due)
                # Ids taken but not used (the transaction fails) are a gap, never a duplicate.
                taken = iter(self.intake.ledger.reserve(count) if count else ())
                for schedule in starts:
                    job_store.set_schedule_tick(schedule.name, schedule.definition, now, None)
                for schedule, ticks in due:
                    for tick in ticks:
                        spec = JobSpec(target=schedule.target, args=schedule.args,
                                       kwargs=schedule.kwargs, priority=schedule.priority,
                                       run_at=tick, policy=settings.policy_for(schedule.target),
                                       schedule=schedule.name)
                        jobs.append(transitions.pending(next(taken), spec, now))
                    job_store.set_schedule_tick(schedule.name, schedule.definition,
                                                ticks[-1], jobs[-1].id)
                job_store.insert(jobs)
            with self.core.memory() as state:
                for job in jobs:
                    state.add(job)
        for schedule in starts:
            self.ticks[schedule.name] = (schedule.definition, now)
        for schedule, ticks in due:
            self.ticks[schedule.name] = (schedule.definition, ticks[-1])
            logger.info("schedule %s: %d tick(s) dispatched, the last at %s", schedule.name,
                        len(ticks), ticks[-1].isoformat())


def _stamp(path: str) -> tuple[int, int] | None:
    """(mtime, size) of a file, as ``config`` decides whether to read it again."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size
