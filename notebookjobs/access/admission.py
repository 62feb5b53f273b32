"""Admission: what a dispatch decided on the queue's state stores (SPEC §16), in one function for
both places that hold the queue, the locked file and the running worker's memory.

A dispatch with ``unique`` returns the pending or running job with its key instead of storing
a new one; one with ``after`` is refused when an id names no job, and stored cancelled when
one it waits for has failed or was cancelled already; a new job's id comes from the ledger
(``journal.ledger``), so ids only grow. ``admit`` decides all of it over a ``View``: what the
queue holds and how a new job is stored, which the file (``FileView``, a transaction) and the
worker (``worker.service``: its memory, the file for the rest) each implement. The unique key
itself is made where the call is bound (``arguments.unique_key``), once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from ..model import dependencies, transitions
from ..model.records import Job, JobSpec

if TYPE_CHECKING:
    from ..journal.ledger import Ledger
    from ..store import JobStore


class View(Protocol):
    """What admission asks of the place that holds the queue."""

    def unique_job(self, key: str) -> int | None:
        """The id of the pending or running job with unique key ``key``; None for none."""

    def statuses(self, ids: Sequence[int]) -> dict[int, str]:
        """id -> status of the jobs among ``ids``; an id with no job is absent."""

    def new_ids(self, count: int) -> list[int]:
        """``count`` new ids, each higher than every id handed out before."""

    def store(self, job: Job, known: Mapping[int, str]) -> None:
        """Store the new job (pending, or cancelled by a dependency); ``known``: the statuses
        of what it waits for, as ``statuses`` gave them."""


def admit(view: View, spec: JobSpec, now: datetime) -> int:
    """The id of the job ``spec`` names: the pending or running one with its unique key, or a
    new one stored over ``view``. ``InvalidArgumentsError`` for an ``after`` id with no job."""
    if spec.unique_key is not None:
        existing = view.unique_job(spec.unique_key)
        if existing is not None:
            return existing
    known = view.statuses(spec.after)
    dependencies.refuse_unknown(spec.after, known)
    [job_id] = view.new_ids(1)
    job = transitions.pending(job_id, spec, now)
    _, ended = dependencies.blocking(job_id, spec.after, known.get)
    if ended is not None:  # one it waits for has failed or was cancelled already
        job = transitions.dependency_ended(job, *ended, now)
    view.store(job, known)
    return job_id


class FileView:
    """The queue file, in the caller's transaction; new ids from ``ledger``."""

    def __init__(self, store: JobStore, ledger: Ledger) -> None:
        self.job_store = store
        self.ledger = ledger

    def unique_job(self, key: str) -> int | None:
        return self.job_store.unique_job(key)

    def statuses(self, ids: Sequence[int]) -> dict[int, str]:
        return self.job_store.statuses(list(ids))

    def new_ids(self, count: int) -> list[int]:
        return self.ledger.reserve(count)

    def store(self, job: Job, known: Mapping[int, str]) -> None:
        self.job_store.insert([job])
