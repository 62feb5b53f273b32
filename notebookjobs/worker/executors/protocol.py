"""The executor boundary (SPEC §18): what the worker's loop asks of whatever runs its attempts,
``pool.Pool`` (the local children) or ``dask_executor.DaskExecutor`` (a Dask cluster). The loop,
the state, retries and commits only ever see these two protocols."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from ...model.records import Outcome, OutcomeKind


class Events(Protocol):
    """What one ``Executor.wait`` saw."""

    @property
    def finished(self) -> list[tuple[int, Outcome]]:
        """(job_id, outcome) of the attempts that ended."""

    @property
    def progress(self) -> list[tuple[int, float | None, str | None]]:
        """(job_id, fraction, message) reported by running attempts, oldest first (fraction
        None: the message is the last line the attempt printed)."""

    @property
    def ready(self) -> list[Any]:
        """The ``extra`` objects that became readable."""

    @property
    def started(self) -> list[tuple[int, datetime]]:
        """(job_id, when) of the attempts that began (an attempt that ends without having been
        reported begun counts as begun then)."""

    @property
    def returned(self) -> list[int]:
        """Attempts handed back without having begun: their jobs are still pending."""


class Executor(Protocol):
    """Runs attempts somewhere: ``pool.Pool`` (the local children) or
    ``dask_executor.DaskExecutor`` (a Dask cluster, SPEC §18)."""

    def free_slots(self) -> int:
        """How many attempts could start now."""

    def submit(
        self,
        job_id: int,
        target: str,
        args: list[Any],
        kwargs: dict[str, Any],
        timeout: float | None,
    ) -> str:
        """Hand an attempt over (only while ``free_slots() > 0``); ``wait`` says when it
        begins, ends, or comes back unstarted. Returns where it will run (``Job.ran_on``):
        ``LOCAL``, or a Dask worker's address."""

    def flush(self) -> None:
        """Send what was submitted now (``wait`` does it too); a no-op for an executor that
        sends in ``submit``."""

    def wait(self, timeout: float | None, extra: Sequence[Any] = ()) -> Events:
        """Block until something happens, one of ``extra`` is readable, or ``timeout`` s pass."""

    def stop_job(self, job_id: int, kind: OutcomeKind, reason: str) -> bool:
        """Stop an attempt: a running one ends as ``Outcome(kind, error=reason)``, one that has
        not begun comes back unstarted (both through ``wait``), or, from an executor that
        cannot take it back, ends as that outcome too."""
