"""Job handles (SPEC §15): what ``nj.dispatch`` returns, and ``nj.result`` / ``nj.job``.

``JobHandle`` (public name ``nj.Job``) is an ``int`` equal to the job's id, so every call that
takes an id takes it, and code that stored, compared or printed ids keeps working (``str(job)``
is ``"7"``); its methods ask the queue each time (``job.status()``, ``wait``, ``result``,
``cancel``, ``retry``). Shown as a cell's value in a notebook it is a live line that follows the
job until it ends (``live``); elsewhere its ``repr`` reads the job once.

The calls that make jobs (``nj.dispatch``, ``dispatch_many``, ``retry``) are the client's,
which returns ids, made to return handles here: the handle is the kernel's front end, above the
client. Handles made by a dispatch from a notebook are followed for its notifications
(``toasts``).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, ParamSpec

from .. import client
from ..data import datafiles, results
from ..errors import JobCancelledError, JobFailedError, NotebookJobsError


class JobHandle(int):
    """The handle of a job: an ``int`` equal to its id, with the calls of SPEC §15."""

    __slots__ = ()

    @property
    def id(self) -> int:
        """The job's id as a plain int."""
        return int(self)

    def status(self) -> dict[str, Any]:
        """The job's fields, as ``nj.status(id)``."""
        return client.status(self)

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Block until the job ends; its fields (``TimeoutError`` after ``timeout`` s)."""
        return client.wait(self, timeout)

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the job and return its value with its type (``nj.result``)."""
        return result(self, timeout)

    def cancel(self) -> bool:
        """Cancel the job (``nj.cancel``): False when it had already finished."""
        return client.cancel(self)

    def retry(self) -> JobHandle:
        """Dispatch a failed or cancelled job again; the new job's handle."""
        return retry(self)

    # int's str, not our repr: f"job {job}", print(job) and %s show the id.
    __str__ = int.__repr__

    def __repr__(self) -> str:
        """``<Job 7 jobs.sample.slow: running · attempt 1/4 · 40% step 4/10 · 3.2 s>``: one read
        of the job; ``<Job 7>`` when it cannot be read."""
        from . import live

        try:
            return f"<{live.line_text(self.status())}>"
        except NotebookJobsError:
            return f"<Job {int(self)}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """In a notebook: the live line (a widget that follows the job until it ends)."""
        from . import live

        return live.mimebundle(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (JobHandle, (int(self),))


def dispatched(ids: list[int]) -> list[JobHandle]:
    """Handles for jobs this process just dispatched; in a notebook they are followed, so that
    a notification says when each one ends (``nj.notify``)."""
    jobs = [JobHandle(job_id) for job_id in ids]
    if "ipykernel" in sys.modules:  # cheap check first: a script never pays for the import
        from . import toasts

        toasts.follow(jobs)
    return jobs


P = ParamSpec("P")


def _one(call: Callable[P, int]) -> Callable[P, JobHandle]:
    """``call`` (the client's, which returns the id of the job it stored) returning its handle:
    the client's signature and docstring kept, for ``help``."""

    @functools.wraps(call)
    def made(*args: P.args, **kwargs: P.kwargs) -> JobHandle:
        return dispatched([call(*args, **kwargs)])[0]

    return made


def _many(call: Callable[P, list[int]]) -> Callable[P, list[JobHandle]]:
    """``call`` returning the handles of the jobs it stored, in order."""

    @functools.wraps(call)
    def made(*args: P.args, **kwargs: P.kwargs) -> list[JobHandle]:
        return dispatched(call(*args, **kwargs))

    return made


dispatch = _one(client.dispatch)
dispatch_many = _many(client.dispatch_many)
retry = _one(client.retry)


def job(job_id: int) -> JobHandle:
    """The handle of an existing job; ``JobNotFoundError`` when there is none."""
    return JobHandle(client.status(job_id)["id"])


def result(job_id: int, timeout: float | None = None) -> Any:
    """Wait for the job, then return its value with its type: a JSON value, a DataFrame or
    Series (from Parquet), a numpy array (``.npy``, no pickle), bytes, or the ``repr`` text of
    anything else (``status()["result_type"]`` says which).

    Raises ``JobFailedError`` (its ``traceback`` the job's) when the job failed,
    ``JobCancelledError`` when it was cancelled, ``TimeoutError`` after ``timeout`` seconds.
    """
    info = client.wait(job_id, timeout)
    if info["status"] == "failed":
        error = info["error"] or ""
        last = next((line for line in reversed(error.splitlines()) if line.strip()), "")
        raise JobFailedError(f"job {info['id']} ({info['target']}) failed after "
                             f"{info['attempts']} attempt{'s' if info['attempts'] != 1 else ''}"
                             f": {last.strip() or 'no error text'}", job_id=info["id"],
                             traceback=error)
    if info["status"] == "cancelled":
        raise JobCancelledError(f"job {info['id']} ({info['target']}) was cancelled, so it has "
                                "no result; nj.retry(id) runs it again", job_id=info["id"])
    return results.read(info, datafiles.results_dir(client.data_folder()))


def preview(info: dict[str, Any], rows: int = 10) -> Any:
    """The first ``rows`` rows of a completed job's frame result (``info``: its status), read
    without the rest of the file; other results whole."""
    results.check_completed(info)
    return results.read(info, datafiles.results_dir(client.data_folder()), rows=rows)
