"""The ranges and types of every value that enters the queue (SPEC §14), in one place.

Values come in through many doors: the Python API, the CLI, the magic, the dashboard, a raw
message on the worker's socket, whitelist.yaml, and what a job prints, returns, raises or
reports as progress. Each door calls these functions once, so the worker, the store and the
clients cannot disagree about what is acceptable. Pure: no I/O, nothing imported beyond the
standard library and the package's records (the pool's children use it too).

``values``: single values (numbers, durations, times, text, JSON); ``records``: the records
that cross the worker's socket and each request's arguments.
"""

from __future__ import annotations

from .records import MAX_PAGE_SIZE, REQUEST_NAMES, job_batch, job_spec, outcome, request
from .values import (
                     EARLIEST_TIME,
                     ID_MAX,
                     INT32_MAX,
                     INT32_MIN,
                     LATEST_TIME,
                     MAX_ATTEMPTS,
                     MAX_BACKOFF,
                     MAX_DURATION_S,
                     MAX_JSON_DEPTH,
                     REPLACEMENT,
                     at_time,
                     backoff_factor,
                     integer,
                     job_id,
                     job_ids,
                     json_text,
                     json_value,
                     later,
                     optional_text,
                     plain_number,
                     priority,
                     progress_fraction,
                     retry_policy,
                     seconds,
                     short_repr,
                     strict_loads,
                     target_name,
                     text,
                     timestamp,
                     unique_key,
)

__all__ = [
    "EARLIEST_TIME", "ID_MAX", "INT32_MAX", "INT32_MIN", "LATEST_TIME", "MAX_ATTEMPTS",
    "MAX_BACKOFF", "MAX_DURATION_S", "MAX_JSON_DEPTH", "MAX_PAGE_SIZE", "REPLACEMENT",
    "REQUEST_NAMES", "at_time", "backoff_factor", "integer", "job_batch", "job_id", "job_ids",
    "job_spec",
    "json_text", "json_value", "later", "optional_text", "outcome", "plain_number", "priority",
    "progress_fraction", "request", "retry_policy", "seconds", "short_repr", "strict_loads",
    "target_name", "text", "timestamp", "unique_key",
]
