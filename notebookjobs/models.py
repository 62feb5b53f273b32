"""Plain records shared by every layer: job states, retry policy, jobs and attempt outcomes. No I/O."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any


class JobStatus(str, enum.Enum):
    """The five states of a job (SPEC §5).

    ``pending -> running -> completed | failed | cancelled``; a failed attempt with retries
    left goes back to ``pending`` with a later ``run_at``; ``pending -> cancelled`` by cancel.
    """

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


#: States a job never leaves (except by an explicit retry, which makes a new job).
FINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
#: The status strings, in lifecycle order.
STATUS_NAMES = tuple(s.value for s in JobStatus)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how soon a failed job runs again, and how long an attempt may take."""

    retry_attempts: int = 3  #: retries after the first failure
    retry_delay: float = 5.0  #: seconds before the first retry
    retry_backoff: float = 1.0  #: factor applied to the delay for each further retry
    timeout: float | None = None  #: seconds an attempt may run; None for no limit

    @property
    def max_attempts(self) -> int:
        """Runs at most: the first attempt plus the retries."""
        return self.retry_attempts + 1


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """A validated dispatch, ready to be stored."""

    target: str
    args: list[Any]
    kwargs: dict[str, Any]
    priority: int
    run_at: datetime
    policy: RetryPolicy


@dataclass(frozen=True, kw_only=True)
class JobBatch:
    """Validated dispatches of one target sharing priority, run time and policy.

    Arguments are kept as JSON text, one list entry per job: a hundred thousand of them
    cross the worker's socket and reach DuckDB without being walked value by value.
    """

    target: str
    args: list[str]  #: JSON list per job
    kwargs: list[str]  #: JSON object per job
    priority: int
    run_at: datetime
    policy: RetryPolicy


@dataclass(frozen=True, kw_only=True)
class Job:
    """One row of the queue, as ``nj.status()`` returns it."""

    id: int
    target: str
    args: list[Any]
    kwargs: dict[str, Any]
    status: str
    priority: int
    attempts: int
    max_attempts: int
    created_at: datetime
    run_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    result: Any = None
    output: str | None = None
    progress: float | None = None
    progress_message: str | None = None
    # Not part of status(): the policy the job was dispatched with.
    retry_delay: float = field(default=5.0, repr=False)
    retry_backoff: float = field(default=1.0, repr=False)
    timeout: float | None = field(default=None, repr=False)

    #: The keys of ``nj.status()``, in order (SPEC §6).
    STATUS_KEYS = (
        "id", "target", "args", "kwargs", "status", "priority", "attempts", "max_attempts",
        "created_at", "run_at", "started_at", "finished_at", "error", "result", "output",
        "progress", "progress_message",
    )

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            retry_attempts=self.max_attempts - 1, retry_delay=self.retry_delay,
            retry_backoff=self.retry_backoff, timeout=self.timeout,
        )

    def to_status(self) -> dict[str, Any]:
        """The public dict of ``nj.status()``."""
        full = asdict(self)
        return {key: full[key] for key in self.STATUS_KEYS}


class OutcomeKind(str, enum.Enum):
    """How an attempt ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  #: the job raised
    TIMED_OUT = "timed_out"
    CRASHED = "crashed"  #: the process running it died
    CANCELLED = "cancelled"
    #: the attempt did not start: whitelist.yaml was unreadable, empty or being rewritten when
    #: the child read it; the worker puts the job back without counting the attempt
    DEFERRED = "deferred"


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """The result of one attempt: what the worker (or ``run``) records."""

    kind: OutcomeKind
    result: Any = None  #: the JSON value the job returned
    error: str | None = None  #: traceback or reason, for anything but success
    output: str = ""  #: captured stdout and stderr, bounded
    duration_s: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.kind is OutcomeKind.SUCCEEDED


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the only clock the package reads)."""
    return datetime.now(timezone.utc)
