"""The retry decision, pure: the worker and ``run`` only carry it out. (Named ``retries``, not
``retry``: ``nj.retry`` is a function of the public API, and a submodule of that name would be
bound over it on import.)

Like procrastinate's ``RetryStrategy.get_retry_decision``: from the policy, the attempts made
and how the last one ended, the job's next status, and when it runs again if it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from . import validate
from .records import JobStatus, OutcomeKind


@dataclass(frozen=True)
class Decision:
    """What becomes of a job whose attempt ended."""

    status: JobStatus  #: COMPLETED, CANCELLED, FAILED, or PENDING to run again
    run_at: datetime | None = None  #: when it runs again (PENDING only)

    @property
    def final(self) -> bool:
        return self.status is not JobStatus.PENDING


class Policy(Protocol):
    """What the decision reads of a retry policy: a ``RetryPolicy``, or a ``Job`` itself, whose
    fields are its policy's (the worker decides for every attempt; ``Job.policy`` builds a
    ``RetryPolicy`` each time)."""

    @property
    def max_attempts(self) -> int: ...
    @property
    def retry_delay(self) -> float: ...
    @property
    def retry_backoff(self) -> float: ...


#: the decisions that do not depend on the policy, made once
_COMPLETED, _CANCELLED, _FAILED = (Decision(JobStatus.COMPLETED), Decision(JobStatus.CANCELLED),
                                   Decision(JobStatus.FAILED))


def delay_s(policy: Policy, attempts: int) -> float:
    """Seconds before retry number ``attempts`` (1 for the first retry): delay * backoff**(k-1),
    at most ``validate.MAX_DURATION_S`` (a large backoff overflows a float within a few dozen
    retries; the longest delay is the cap instead of an OverflowError in the worker)."""
    if policy.retry_delay == 0:
        return 0.0
    try:
        delay = policy.retry_delay * policy.retry_backoff ** max(attempts - 1, 0)
    except OverflowError:
        return validate.MAX_DURATION_S
    return min(delay, validate.MAX_DURATION_S)


def decide(policy: Policy, attempts: int, kind: OutcomeKind, now: datetime) -> Decision:
    """The job's next status after attempt number ``attempts`` ended as ``kind``.

    Success completes it and a cancel cancels it; any other end (raised, timed out, crashed)
    runs it again after ``delay_s`` while attempts are left, else fails it.
    """
    if kind is OutcomeKind.SUCCEEDED:
        return _COMPLETED
    if kind is OutcomeKind.CANCELLED:
        return _CANCELLED
    if attempts >= policy.max_attempts:
        return _FAILED
    return Decision(JobStatus.PENDING, validate.later(now, delay_s(policy, attempts)))
