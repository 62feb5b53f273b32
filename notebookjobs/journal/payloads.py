"""What a dispatch journal record holds (``notebookjobs.journal``): a dispatch written as JSON,
and the jobs read back from it, every field checked again (the journal is a file: anything may
have been written into it)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from ..errors import InvalidArgumentsError
from ..model import transitions, validate, wire
from ..model.records import Job, JobBatch, JobSpec, RetryPolicy
from .records import BATCH, JOB, Record

logger = logging.getLogger(__name__)


#: a payload's JSON text, compact: one encoder made once (``json.dumps`` with separators makes
#: a new one per call: ~2 of a dispatch's ~6 µs of JSON)
_compact = json.JSONEncoder(separators=(",", ":")).encode


def _common(spec_or_batch: Any, now: datetime) -> dict[str, Any]:
    policy = spec_or_batch.policy
    return {"target": spec_or_batch.target, "priority": spec_or_batch.priority,
            "run_at": spec_or_batch.run_at.isoformat(), "created_at": now.isoformat(),
            "max_attempts": policy.max_attempts, "retry_delay": policy.retry_delay,
            "retry_backoff": policy.retry_backoff, "timeout": policy.timeout}


def journalled(spec: JobSpec) -> bool:
    """Whether a dispatch may go through the journal: not one with ``after`` or ``unique``
    (SPEC §16). Those need the queue's state to be decided when they are made, and their caller
    must learn the outcome at once: ``unique`` returns the id of the pending or running job with
    the same key (which only the queue knows), and ``after`` refuses ids with no job at dispatch
    (a journal record is acknowledged before anything reads it, so a replay could only fail the
    job later). They take the worker's socket or the locked file (``queue_client.QueueClient``). A
    job's ``schedule`` is only set by the worker's scheduler, which writes its jobs into the
    queue file itself. So a record carries none of the three (``job_payload``, ``jobs_of``)."""
    return not spec.after and spec.unique_key is None and spec.schedule is None


#: fields of a JobSpec a record never carries (``journalled``)
_NOT_JOURNALLED = ("after", "unique_key", "schedule")


def job_payload(spec: JobSpec, now: datetime) -> bytes:
    """The payload of a JOB record: the validated dispatch and when it was made."""
    if not journalled(spec):  # a record would drop them: ``journalled``
        raise ValueError("a dispatch with after, unique or schedule cannot be journalled")
    return _limited(_compact({**_common(spec, now), "args": spec.args,
                              "kwargs": spec.kwargs}).encode())


def batch_payload(batch: JobBatch, now: datetime) -> bytes:
    """The payload of a BATCH record (each job's arguments as the JSON text the batch holds)."""
    return _limited(_compact({**_common(batch, now), "args": batch.args,
                              "kwargs": batch.kwargs}).encode())


def _limited(payload: bytes) -> bytes:
    """A dispatch is held to the size of one message on the worker's socket (SPEC §14), by
    whichever way it is stored."""
    if len(payload) > wire.MAX_REQUEST_BYTES:
        raise InvalidArgumentsError(wire.too_large(len(payload)))
    return payload


def jobs_of(record: Record) -> list[Job]:
    """The pending jobs a JOB or BATCH record holds, every field checked again (the journal is
    a file: anything may have been written into it); none for BASE and RESERVE records.
    ``InvalidArgumentsError`` (or ``ValueError``) for a record that does not hold jobs."""
    if record.kind not in (JOB, BATCH):
        return []
    data = record.data()
    if not isinstance(data, dict):
        raise InvalidArgumentsError("a journal record's payload must be an object")
    carried = [name for name in _NOT_JOURNALLED if data.get(name) not in (None, [])]
    if carried:  # not written here (``journalled``): a job without them would not be the one
        raise InvalidArgumentsError(f"a journal record cannot carry {', '.join(carried)}")
    policy = RetryPolicy(
        retry_attempts=data["max_attempts"] - 1 if isinstance(data["max_attempts"], int) else -1,
        retry_delay=data["retry_delay"], retry_backoff=data["retry_backoff"],
        timeout=data["timeout"])
    # run_at is checked with the rest of the spec (``validate.job_spec``, ``job_batch``)
    common = {"target": data["target"], "priority": data["priority"], "policy": policy,
              "run_at": datetime.fromisoformat(data["run_at"])}
    created = validate.timestamp("created_at", datetime.fromisoformat(data["created_at"]))
    if record.kind == JOB:
        spec = validate.job_spec(JobSpec(args=data["args"], kwargs=data["kwargs"], **common))
        return [transitions.pending(record.first_id, spec, created)]
    batch = validate.job_batch(JobBatch(args=data["args"], kwargs=data["kwargs"], **common))
    if len(batch.args) != record.last_id - record.first_id + 1:
        raise InvalidArgumentsError(f"a batch record of ids {record.first_id}..{record.last_id} "
                                    f"holds {len(batch.args)} jobs")
    return transitions.pending_batch(list(range(record.first_id, record.last_id + 1)), batch,
                                     created)


def unreadable(record: Record, reason: str, now: datetime) -> list[Job]:
    """Failed jobs standing for the ids of a record that cannot be read back, saying why: a
    bad record fails alone (SPEC §14)."""
    error = validate.text(f"the dispatch of this job could not be read back from the journal "
                          f"({reason}); nothing ran; dispatch it again")[:2000]
    return [Job(id=job_id, target="(unreadable)", args=[], kwargs={}, status="failed", priority=0,
                attempts=0, max_attempts=1, created_at=now, run_at=now, finished_at=now,
                error=error)
            for job_id in range(record.first_id, record.last_id + 1)]


def readable_jobs(record: Record, now: datetime) -> list[Job]:
    """``jobs_of(record)``; for a record that cannot be read, the failed jobs of ``unreadable``
    (a bad record fails alone: SPEC §14). The one reading of a record, for the worker's intake
    and for the replay of a process that opens the queue file."""
    try:
        return jobs_of(record)
    except (InvalidArgumentsError, ValueError, KeyError, TypeError, RecursionError) as exc:
        logger.warning("journal record of ids %d..%d cannot be read: %s", record.first_id,
                       record.last_id, exc)
        return unreadable(record, f"{type(exc).__name__}: {exc}", now)
