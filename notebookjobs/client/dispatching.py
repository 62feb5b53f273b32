"""What a dispatch stores, built from a call's arguments (SPEC §6, §15, §16): the checked
``JobSpec``, and the files its frames and arrays go to. Shared by ``client.dispatch``,
``retry`` and ``run_now``, so that each of them checks a call the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from ..config import Settings
from ..data import argfiles, datafiles
from ..errors import ConfigError, InvalidArgumentsError, NotAllowedError, NotebookJobsError
from ..model import validate
from ..model.records import JobSpec
from ..model.schedule import Schedule
from ..targets import registry
from ..targets.arguments import bind, unique_key

T = TypeVar("T")


def job_spec(cfg: Settings, target: str | registry.Target, args: Any, kwargs: dict[str, Any],
             priority: Any, delay: Any, now: datetime, stash: argfiles.Stash, *,
             at: Any = None, after: Any = None, unique: Any = None) -> JobSpec:
    """The dispatch of ``target`` with these arguments, checked against the whitelist and the
    target's signature; its frames and arrays become placeholders of ``stash``."""
    resolved = target if isinstance(target, registry.Target) else registry.resolve(target, cfg)
    target = resolved.name
    args, kwargs = stash.swap(args, kwargs)  # frames and arrays: placeholders until stored
    bound_args, bound_kwargs = bind(resolved, list(args), kwargs)
    # Checked whole by the function that reads a dispatch back (from the journal, the socket
    # or the inbox: ``validate.job_spec``), so that what the caller is told was stored is
    # what the reader takes: ``bind`` checks each value alone, and a value 100 levels deep
    # is 101 in the job's argument list, where it was acknowledged and then failed as
    # unreadable. Here rather than in ``QueueClient.enqueue``: dispatch, retry and run_now
    # all build their job here, whichever path then stores it (journal, worker or file).
    return validate.job_spec(JobSpec(
        target=target, args=bound_args, kwargs=bound_kwargs,
        priority=validate.priority(priority), run_at=_run_at(now, delay, at),
        policy=cfg.policy_for(target),
        after=() if after is None else validate.job_ids("after", after),
        unique_key=unique_key(resolved, bound_args, bound_kwargs, unique, stash.digests)))


def _run_at(now: datetime, delay: Any, at: Any) -> datetime:
    """When the job may start: ``delay`` after ``now``, or ``at`` (not both)."""
    delay_s = validate.seconds("delay", delay)
    if at is None:
        return validate.later(now, delay_s)
    if delay_s:
        raise InvalidArgumentsError("at= and delay= both say when the job may start; pass one")
    return validate.at_time("at", at)


def stash(cfg: Settings) -> argfiles.Stash:
    """Where a dispatch's frames and arrays are written: the queue's arguments folder."""
    return argfiles.Stash(datafiles.arguments_dir(datafiles.data_dir(cfg.db_path)))


def stored(files: argfiles.Stash, store: Callable[[], T]) -> T:
    """``store()`` with the stash's files written first; deleted again when the queue refused
    the dispatch (not after an error that leaves it unknown whether it was stored)."""
    files.write()
    try:
        return store()
    except (InvalidArgumentsError, NotAllowedError, ConfigError):
        files.discard()
        raise


def schedule_problem(cfg: Settings, schedule: Schedule) -> str:
    """Why the jobs of ``schedule`` will fail (its arguments do not fit its target); "" when
    they fit."""
    try:
        bind(registry.resolve(schedule.target, cfg), list(schedule.args), schedule.kwargs)
    except NotebookJobsError as exc:
        return str(exc)
    return ""
