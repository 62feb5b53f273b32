"""The inbox: dispatches the running worker has acknowledged but not yet moved into the queue.

One narrow row per dispatch, with no index, is the cheapest durable write DuckDB has, so the
worker answers a dispatch after that one statement; its group commit then moves the job into
the queue. Whoever opens the file next after a worker died moves what is left (``drain``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentsError
from ..model import validate
from ..model.records import Job, RetryPolicy
from .columns import job_from_json, job_to_json
from .sql import QUERIES

if TYPE_CHECKING:
    from .jobs import JobStore

logger = logging.getLogger(__name__)


class Inbox:
    """The inbox table of one store."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def put(self, job: Job) -> None:
        """Durably accept one new job: one row, one statement (autocommit is enough)."""
        self.store.conn.execute(QUERIES["inbox_insert"], [job.id, job_to_json(job)])

    def remove(self, ids: list[int]) -> None:
        """Forget the rows of jobs now stored in the queue."""
        self.store.conn.execute(QUERIES["inbox_delete_ids"], [ids])

    def drain(self) -> int:
        """Move every inbox row into the queue as a pending job (after a worker stopped or
        died before its group commit did); how many rows there were.

        Each row is checked as a client's dispatch is: a row that cannot be read (written by
        other means, or by a version with a bug) becomes a failed job with the reason, so it
        fails alone and the queue still opens (SPEC §14).
        """
        conn = self.store.conn
        rows = conn.execute(QUERIES["inbox_rows"]).fetchall()
        good: list[Job] = []
        for job_id, text in rows:
            try:
                good.append(_checked(job_id, text))
            except (InvalidArgumentsError, ValueError, TypeError, KeyError, RecursionError) as exc:
                logger.warning("inbox row of job %s cannot be read: %s", job_id, exc)
                good.append(_unreadable(job_id, text, f"{type(exc).__name__}: {exc}"))
        self.store.insert(good)
        conn.execute(QUERIES["inbox_clear"])
        return len(rows)


def _checked(job_id: int, text: str) -> Job:
    """The job of an inbox row, every field checked as a dispatch's is."""
    fields = job_from_json(text)
    if fields.get("id") != job_id:
        raise InvalidArgumentsError(f"the row's job has id {fields.get('id')!r}, not {job_id}")
    attempts = fields["max_attempts"]
    policy = validate.retry_policy("policy", RetryPolicy(
        retry_attempts=attempts - 1 if isinstance(attempts, int) else attempts,
        retry_delay=fields["retry_delay"], retry_backoff=fields["retry_backoff"],
        timeout=fields["timeout"]))
    if not isinstance(fields["args"], list) or not isinstance(fields["kwargs"], dict):
        raise InvalidArgumentsError("args must be a list and kwargs an object")
    return Job(id=job_id, target=validate.target_name("target", fields["target"]),
               args=validate.json_value("args", fields["args"]),
               kwargs=validate.json_value("kwargs", fields["kwargs"]), status="pending",
               priority=validate.priority(fields["priority"]), attempts=0,
               max_attempts=policy.max_attempts,
               created_at=validate.timestamp("created_at", fields["created_at"]),
               run_at=validate.timestamp("run_at", fields["run_at"]),
               retry_delay=policy.retry_delay, retry_backoff=policy.retry_backoff,
               timeout=policy.timeout,
               after=list(validate.job_ids("after", fields.get("after") or ())) or None,
               unique_key=_optional(validate.unique_key, "unique_key", fields.get("unique_key")),
               schedule=_optional(validate.target_name, "schedule", fields.get("schedule")))


def _optional(check: Any, name: str, value: Any) -> Any:
    return None if value is None else check(name, value)


def _unreadable(job_id: int, text: Any, reason: str) -> Job:
    """A failed job standing for an inbox row that could not be read, with the reason."""
    now = datetime.now(UTC)
    target = "(unreadable)"
    try:
        found = job_from_json(text).get("target")
        if isinstance(found, str) and found:
            target = validate.text(found)[:1000]
    except (ValueError, TypeError, AttributeError, RecursionError):
        pass
    return Job(id=job_id, target=target, args=[], kwargs={}, status="failed", priority=0,
               attempts=0, max_attempts=1, created_at=now, run_at=now, finished_at=now,
               error=validate.text(f"the stored dispatch of this job could not be read "
                                   f"({reason}); nothing ran; dispatch it again"))

