"""Plain records shared by every layer: job states, retry policy, jobs and attempt outcomes. No I/O.

``Job`` is the one job model: the worker's in-memory queue, the store's rows, the socket and
``nj.status()`` all carry it. Its state changes only through the functions of ``transitions``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from typing import Any

# The job's states, kept apart for the CLI's parser; every layer imports them from here too
from .statuses import FINAL_STATUSES as FINAL_STATUSES
from .statuses import STATUS_NAMES as STATUS_NAMES
from .statuses import JobStatus as JobStatus

#: The failed attempts' errors a job keeps (``Job.errors``): the last ones, so a job retried
#: thousands of times keeps a row of bounded size.
MAX_ERRORS_KEPT = 25


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
    #: ids of the jobs that must complete before this one may start (SPEC §16); none: ()
    after: tuple[int, ...] = ()
    #: while a pending or running job has this key, dispatching it again returns that job
    unique_key: str | None = None
    #: the schedule of whitelist.yaml that made it (set by the worker's scheduler only)
    schedule: str | None = None


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
    """One job: a row of the queue, and the worker's record of it while it runs.

    Frozen: a change is a new ``Job`` made by a function of ``transitions``. The fields after
    ``progress_message`` are internal, except ``result_type`` and ``errors``: ``nj.status()``
    shows the ones in STATUS_KEYS.
    """

    id: int
    target: str
    args: list[Any]
    kwargs: dict[str, Any]
    status: str  #: a JobStatus value
    priority: int
    attempts: int  #: attempts started
    max_attempts: int
    created_at: datetime
    run_at: datetime  #: when it may start (next)
    started_at: datetime | None = None  #: of the current or last attempt
    finished_at: datetime | None = None  #: of the last attempt
    error: str | None = None  #: the last failed attempt's traceback or reason
    #: the JSON value the job returned, or a summary of a result kept in a file (``results``)
    result: Any = None
    output: str | None = None  #: the last attempt's stdout and stderr, bounded
    progress: float | None = None  #: 0..1 while running
    progress_message: str | None = None
    retry_delay: float = 5.0  #: the policy the job was dispatched with: delay, backoff, timeout
    retry_backoff: float = 1.0
    timeout: float | None = None
    worker: str | None = None  #: who runs it, while it is running
    cancel_requested: bool = False  #: a cancel of a running job, for its worker to carry out
    #: how the result is kept (``validate.RESULT_TYPES``): json, repr, or a file's kind
    #: (DataFrame, Series, ndarray, bytes); None until the job completes
    result_type: str | None = None
    #: every failed attempt's error, oldest first (Oban's ``errors``): ``{"attempt": n,
    #: "at": ISO time, "error": text}``; the last MAX_ERRORS_KEPT
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: where each counted attempt ran, in order: LOCAL, or the address of the Dask worker
    #: (SPEC §18); None before the first attempt
    ran_on: list[str] | None = None
    #: ids of the jobs it waits for (``dispatch(after=...)``), all earlier; None for none
    after: list[int] | None = None
    unique_key: str | None = None  #: the key of ``dispatch(unique=...)``; None for none
    schedule: str | None = None  #: the name of the schedule that dispatched it

    #: The keys of ``nj.status()``, in order (SPEC §6, §16, §18).
    STATUS_KEYS = (
        "id", "target", "args", "kwargs", "status", "priority", "attempts", "max_attempts",
        "created_at", "run_at", "started_at", "finished_at", "error", "result", "output",
        "progress", "progress_message", "result_type", "errors", "ran_on", "after", "unique_key",
        "schedule",
    )

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            retry_attempts=self.max_attempts - 1, retry_delay=self.retry_delay,
            retry_backoff=self.retry_backoff, timeout=self.timeout,
        )

    def to_status(self) -> dict[str, Any]:
        """The public dict of ``nj.status()``."""
        return {key: getattr(self, key) for key in self.STATUS_KEYS}

    @classmethod
    def trusted(cls, fields: Mapping[str, Any] | Iterable[tuple[str, Any]],
                more: Mapping[str, Any] | None = None) -> Job:
        """A job of every field (``fields``, then ``more`` over them), from values that need
        no check: the store's own rows, a job's fields with changes, a batch the API
        validated. The one way around ``__init__``, which for 28 fields costs more than the
        worker's whole bookkeeping of a no-op job (or 10,000 rows read at a worker's start);
        the caller gives every field. (Two updates, not ``**more``: ~25 % faster.)"""
        job = object.__new__(cls)
        values = job.__dict__
        values.update(fields)
        if more:
            values.update(more)
        return job

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The fields that have a default, with it (a new list for ``errors``): what a job
        that has not run yet holds."""
        return {f.name: f.default if f.default_factory is MISSING else f.default_factory()
                for f in dataclass_fields(cls)
                if f.default is not MISSING or f.default_factory is not MISSING}

    def evolve(self, **changes: Any) -> Job:
        """A copy with ``changes``: ``dataclasses.replace`` without re-running ``__init__``."""
        return Job.trusted(self.__dict__, changes)


#: ``Job.ran_on`` of an attempt that ran on the queue's own machine (the worker's pool, or a
#: foreground ``notebookjobs run``)
LOCAL = "local"


@dataclass(frozen=True, kw_only=True)
class AttemptRequest:
    """What crosses to a Dask cluster for one attempt (SPEC §18): plain data, sent as JSON to
    one fixed function of ours (``worker.dask_task.run_attempt``), never a user object."""

    key: str  #: the attempt's Dask key (names it for stop requests)
    job_id: int
    target: str  #: checked against the whitelist on the Dask worker before anything is imported
    args: list[Any]
    kwargs: dict[str, Any]
    timeout: float | None  #: seconds; the Dask worker stops the attempt past it
    root: str  #: the project root on the queue's machine (the same path on a shared filesystem)
    upload: bool  #: the project root was uploaded to the Dask workers (UploadDirectory)
    #: the queue's data folder (argument and result files, SPEC §15) on the queue's machine,
    #: used where it is the same path (a shared filesystem); None with ``upload``
    data: str | None
    token: str  #: the queue's token: marks the attempt's processes, names its stop requests
    topic: str  #: the Dask event topic that progress reports go to


class OutcomeKind(enum.StrEnum):
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
    result: Any = None  #: the JSON value the job returned, or the summary of its result file
    result_type: str | None = None  #: how the result is kept (``Job.result_type``)
    error: str | None = None  #: traceback or reason, for anything but success
    output: str = ""  #: captured stdout and stderr, bounded
    duration_s: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.kind is OutcomeKind.SUCCEEDED

    def to_wire(self) -> dict[str, Any]:
        """The outcome as plain JSON data: what a child sends back over its pipe (pool), its
        JSON lines (Dask), read back by ``from_wire``. (On the worker's socket, a foreground
        run's outcome is one of ``wire``'s records, as every record there is.)"""
        return {"kind": self.kind.value, "result": self.result, "result_type": self.result_type,
                "error": self.error, "output": self.output, "duration_s": self.duration_s}

    @classmethod
    def from_wire(cls, data: Any) -> Outcome:
        """An outcome from ``to_wire``'s data, its shape checked (what crosses comes from
        another process): ``ValueError`` or ``TypeError`` (``KeyError``, one of them, for a
        field missing) naming what is wrong. Other keys are ignored (a sender of another
        version). The values are checked where they enter the queue (``validate.outcome``)."""
        if not isinstance(data, dict):  # what JSON and pickle give (a Mapping ABC: ~0.3 µs)
            raise TypeError(f"an outcome is an object, not {type(data).__name__}")
        kind, output, duration = data["kind"], data["output"], data["duration_s"]
        error, result_type = data.get("error"), data.get("result_type")
        if not isinstance(output, str):
            raise TypeError(f"an outcome's output is text, not {type(output).__name__}")
        if isinstance(duration, bool) or not isinstance(duration, (int, float)):
            raise TypeError(f"an outcome's duration_s is a number, not {type(duration).__name__}")
        for name, value in (("error", error), ("result_type", result_type)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"an outcome's {name} is text or null, not {type(value).__name__}")
        known = _OUTCOME_KINDS.get(kind)
        if known is None:
            raise ValueError(f"{kind!r} is not a kind of outcome")
        # Without __init__ (its frozen fields cost ~2 µs, the worker reads one per attempt):
        # every field is given, and checked above.
        outcome = object.__new__(cls)
        outcome.__dict__.update(kind=known, result=data.get("result"), result_type=result_type,
                                error=error, output=output, duration_s=float(duration))
        return outcome


#: OutcomeKind by value: a dict lookup is ~4x cheaper than ``OutcomeKind(value)``
_OUTCOME_KINDS = {kind.value: kind for kind in OutcomeKind}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the clock the package reads by default)."""
    return datetime.now(UTC)
