"""The retry decision, pure: the worker and ``run`` only carry it out."""

from __future__ import annotations

from datetime import datetime

from . import validate
from .models import RetryPolicy


def retry_delay_s(policy: RetryPolicy, attempts: int) -> float:
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


def next_run_at(policy: RetryPolicy, attempts: int, now: datetime) -> datetime | None:
    """When a job that has failed ``attempts`` times runs again, or None when none are left."""
    if attempts >= policy.max_attempts:
        return None
    return validate.later(now, retry_delay_s(policy, attempts))
