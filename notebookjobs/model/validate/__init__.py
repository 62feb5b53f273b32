"""The ranges and types of every value that enters the queue (SPEC §14), in one place.

Values come in through many doors: the Python API, the CLI, the magic, the dashboard, a raw
message on the worker's socket, whitelist.yaml, and what a job prints, returns, raises or
reports as progress. Each door calls these functions once, so the worker, the store and the
clients cannot disagree about what is acceptable. Pure: no I/O, nothing imported beyond the
standard library and the package's records (the pool's children use it too).

``values``: single values (numbers, durations, times, text, JSON); ``records``: the records
that cross the worker's socket and the fields of a request (which operation takes which:
``access.operations``); ``data``: result types and the
references to argument files (frames and arrays passed to a job); ``cluster``: what crosses to
and from a Dask cluster (SPEC §18).
"""

from __future__ import annotations

from .cluster import (
                      attempt_request,
                      cluster_outcome,
                      cluster_progress,
                      cluster_started,
                      outcome_json,
                      request_json,
                      scheduler_address,
)
from .data import (
                   ARGUMENT_SUFFIXES,
                   RESULT_SUFFIXES,
                   RESULT_TYPES,
                   TAG,
                   DataRef,
                   directly_in,
                   is_reference,
                   reference,
                   result_type,
)
from .records import (
                      FOREGROUND_OWNER,
                      MAX_GET_MANY,
                      MAX_PAGE_SIZE,
                      MAX_QUERY_TIME_LIMIT_S,
                      MAX_SEARCH_CHARS,
                      MAX_WATCH_S,
                      PAGE_ORDER_NAMES,
                      QUERY_TIME_LIMIT_S,
                      Check,
                      checked,
                      job_batch,
                      job_spec,
                      many_ids,
                      optional,
                      outcome,
                      page_order,
                      query_time_limit,
                      runner_name,
                      search_text,
                      status_name,
                      string,
                      watch_hold,
)
from .values import (
                     DURATION_HINT,
                     EARLIEST_TIME,
                     ID_MAX,
                     INT32_MAX,
                     INT32_MIN,
                     LATEST_TIME,
                     MAX_ATTEMPTS,
                     MAX_BACKOFF,
                     MAX_CONCURRENCY,
                     MAX_DURATION_S,
                     MAX_JSON_DEPTH,
                     REPLACEMENT,
                     at_time,
                     backoff_factor,
                     concurrency,
                     integer,
                     job_id,
                     job_ids,
                     json_text,
                     json_value,
                     later,
                     optional_text,
                     parse_duration,
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
    "ARGUMENT_SUFFIXES", "RESULT_SUFFIXES", "RESULT_TYPES", "TAG", "DataRef", "directly_in",
    "is_reference",
    "reference", "result_type",
    "DURATION_HINT", "EARLIEST_TIME", "ID_MAX", "INT32_MAX", "INT32_MIN", "LATEST_TIME",
    "MAX_ATTEMPTS", "MAX_BACKOFF", "MAX_CONCURRENCY", "MAX_DURATION_S", "MAX_JSON_DEPTH",
    "MAX_PAGE_SIZE", "MAX_QUERY_TIME_LIMIT_S", "QUERY_TIME_LIMIT_S", "query_time_limit",
    "FOREGROUND_OWNER",
    "MAX_GET_MANY", "PAGE_ORDER_NAMES", "page_order", "MAX_SEARCH_CHARS", "search_text",
    "MAX_WATCH_S", "Check", "checked", "many_ids", "optional", "runner_name", "status_name",
    "string", "watch_hold",
    "REPLACEMENT", "backoff_factor", "concurrency", "integer", "job_batch",
    "job_id", "job_spec",
    "json_text", "json_value", "later", "optional_text", "outcome", "parse_duration",
    "plain_number", "priority", "progress_fraction", "retry_policy", "seconds",
    "short_repr", "strict_loads", "target_name", "text", "timestamp",
    "attempt_request", "cluster_outcome", "cluster_progress", "cluster_started", "outcome_json",
    "request_json", "scheduler_address",
    "at_time", "job_ids", "unique_key",
]
