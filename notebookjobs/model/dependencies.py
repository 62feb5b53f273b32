"""Jobs that wait for other jobs (``dispatch(after=[ids])``), SPEC §16: the decisions, pure,
shared by the admission of a dispatch (``access.admission``) and the running worker's memory
(``worker.state``), so that both places that hold the queue give the same answers. (The key of
a ``dispatch(unique=...)``, which both look up, is made where the call is bound:
``arguments.unique_key``.)

A dependency cycle is impossible by construction. A job may only wait for jobs that exist when it
is dispatched (unknown ids are refused), job ids only grow, and ``after`` never changes once the
job is stored: every id a job waits for is smaller than its own, so following ``after`` always
leads to smaller ids and never back. A row written into the file by other means that breaks this
(an id not smaller than its own) is cancelled instead of waited for (``blocking``), so the rule
holds for every job the worker holds, and nothing can wait forever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ..errors import InvalidArgumentsError
from .records import JobStatus

COMPLETED = JobStatus.COMPLETED.value
#: how a dependency that can never complete is described in its waiter's error
ENDED_BADLY = frozenset({JobStatus.FAILED.value, JobStatus.CANCELLED.value})
NOT_EARLIER = "is not an earlier job (a row written by other means); dispatch it again"
MISSING = "does not exist (a row written by other means, or deleted); dispatch it again"


def refuse_unknown(after: Iterable[int], known: Mapping[int, str]) -> None:
    """``InvalidArgumentsError`` unless every id in ``after`` is a job (``known``: their
    statuses): a job can only wait for jobs dispatched before it (module docstring)."""
    missing = [job_id for job_id in after if job_id not in known]
    if missing:
        ids = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        raise InvalidArgumentsError(
            f"after: no job has id {ids}; a job can only wait for jobs dispatched before it "
            "(`notebookjobs list` shows the queue)")


def blocking(job_id: int, after: Iterable[int], status_of: Callable[[int], str | None]
             ) -> tuple[set[int], tuple[int, str] | None]:
    """What job ``job_id`` still waits for: the ids of its dependencies not completed yet, or
    the first one that never will, as ``(id, why)`` for ``transitions.dependency_ended``
    ("failed", "cancelled", or why it cannot be waited for). ``status_of(id)``: a job's status,
    None when there is no such job."""
    waiting: set[int] = set()
    for dependency in after:
        if dependency >= job_id:
            return set(), (dependency, NOT_EARLIER)
        status = status_of(dependency)
        if status is None:
            return set(), (dependency, MISSING)
        if status in ENDED_BADLY:
            return set(), (dependency, status)
        if status != COMPLETED:
            waiting.add(dependency)
    return waiting, None
