"""The five states of a job (SPEC §5) and their groups; ``records`` re-exports them. A module of
their own, free of dataclasses and datetime, because the CLI's parser lists them (``--status``)
and ``notebookjobs --version`` builds that parser (SPEC §13: 60 ms for the whole process)."""

from __future__ import annotations

import enum


class JobStatus(enum.StrEnum):
    """The five states of a job (SPEC §5); ``transitions`` has the diagram."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: States a job never leaves (except by an explicit retry, which makes a new job).
FINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
#: The status strings, in lifecycle order.
STATUS_NAMES = tuple(s.value for s in JobStatus)
