"""The retry decision, pure: the worker and ``run`` only carry it out. (Named ``retries``, not
``retry``: ``nj.retry`` is a function of the public API, and a submodule of that name would be
bound over it on import.)

Like procrastinate's ``RetryStrategy.get_retry_decision``: from the policy, the attempts made
and how the last one ended, the job's next status, and when it runs again if it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from . import validate
from .records import JobStatus, OutcomeKind, RetryPolicy


@dataclass(frozen=True)
class Decision:
    """What becomes of a job whose attempt ended."""

    status: JobStatus  #: COMPLETED, CANCELLED, FAILED, or PENDING to run again
    run_at: datetime | None = None  #: when it runs again (PENDING only)

    @property
    def final(self) -> bool:
        return self.status is not JobStatus.PENDING


def delay_s(policy: RetryPolicy, attempts: int) -> float:
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


def decide(policy: RetryPolicy, attempts: int, kind: OutcomeKind, now: datetime) -> Decision:
    """The job's next status after attempt number ``attempts`` ended as ``kind``.

    Success completes it and a cancel cancels it; any other end (raised, timed out, crashed)
    runs it again after ``delay_s`` while attempts are left, else fails it.
    """
    if kind is OutcomeKind.SUCCEEDED:
        return Decision(JobStatus.COMPLETED)
    if kind is OutcomeKind.CANCELLED:
        return Decision(JobStatus.CANCELLED)
    if attempts >= policy.max_attempts:
        return Decision(JobStatus.FAILED)
    return Decision(JobStatus.PENDING, validate.later(now, delay_s(policy, attempts)))
