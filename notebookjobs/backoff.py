"""The retry decision, pure: the worker and ``run`` only carry it out."""

from __future__ import annotations

from datetime import datetime, timedelta

from .models import RetryPolicy


def retry_delay_s(policy: RetryPolicy, attempts: int) -> float:
    """Seconds before retry number ``attempts`` (1 for the first retry): delay * backoff**(k-1)."""
    return policy.retry_delay * policy.retry_backoff ** max(attempts - 1, 0)


def next_run_at(policy: RetryPolicy, attempts: int, now: datetime) -> datetime | None:
    """When a job that has failed ``attempts`` times runs again, or None when none are left."""
    if attempts >= policy.max_attempts:
        return None
    return now + timedelta(seconds=retry_delay_s(policy, attempts))
