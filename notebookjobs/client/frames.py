"""History analysis (SPEC §10): ``nj.history``, ``nj.stats``, ``nj.sql`` and ``nj.prune``. The
store computes, this module turns its Arrow tables into pandas. (Named ``frames``, not
``history``: a submodule would be bound over ``nj.history`` on import.) Apart from ``client``
so that the commands that show no frame never import pandas.

Every aggregate is computed in DuckDB (see ``store.STATS_GROUPS``); here we only fix dtypes:
timestamps become tz-aware UTC, status and target become categoricals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..access.queue_client import QueueClient
from ..config import load_settings
from ..errors import InvalidArgumentsError
from ..model import validate
from ..model.records import STATUS_NAMES, utcnow

if TYPE_CHECKING:
    import pyarrow as pa

def to_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table from the store as a DataFrame with UTC timestamps and categoricals.

    The types are changed in Arrow before ``to_pandas``, where each is a cast or a C++
    encoding: done in pandas after, they cost ~250 ms of a 1,000,000-job history (decoding
    ``status`` to Python strings to encode it again, ``astype("category")``, ``tz_localize``),
    done here ~20 ms."""
    import pyarrow as pa

    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_timestamp(field.type):
            # Naive times from the store are UTC; an aware one is an instant either way.
            column = column.cast(pa.timestamp(field.type.unit, tz="UTC"))
        elif field.name in ("status", "target"):
            column = _categorical(column)
        columns.append(column)
    frame = pa.Table.from_arrays(columns, names=table.column_names).to_pandas()
    if "status" in frame.columns and isinstance(frame["status"].dtype, pd.CategoricalDtype):
        # by value: the statuses in their order, also those no row has
        frame["status"] = frame["status"].cat.set_categories(list(STATUS_NAMES), ordered=True)
    elif "status" in frame.columns:  # not text (a user's SQL): no status is among its values
        frame["status"] = pd.Categorical(
            frame["status"].astype(object), categories=list(STATUS_NAMES), ordered=True
        )
    return frame


def _categorical(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A text column dictionary-encoded, which ``to_pandas`` makes a categorical. DuckDB gives
    an ENUM (``status``) unsigned indices, which pyarrow before 23 cannot convert ("Converting
    unsigned dictionary indices to pandas not yet supported"): they become int32."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_dictionary(kind):
        return column.cast(pa.dictionary(pa.int32(), kind.value_type))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pc.dictionary_encode(column)
    return column


def parse_time(name: str, value: Any) -> datetime | None:
    """A ``since``/``until`` bound: a datetime (naive means UTC), a string pandas parses, or
    None."""
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentsError(
            f"{name}={value!r} is not a time; pass a datetime or a string like '2026-11-28 13:00'"
        ) from exc
    if stamp is pd.NaT:
        raise InvalidArgumentsError(f"{name}={value!r} is not a time")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime().astimezone(UTC)


def _queue() -> QueueClient:
    # Reads work while whitelist.yaml is broken (SPEC §12): its locations are all they need.
    return QueueClient(load_settings(strict=False))


def history(since: Any = None, until: Any = None, target: str | None = None,
            status: str | None = None, timeout: Any = None) -> pd.DataFrame:
    """Every job, oldest first: the columns of ``status()`` plus ``wait_s`` and ``duration_s``.

    ``since``/``until`` filter on created_at (datetimes or strings; naive means UTC), ``target``
    and ``status`` on equality. Timestamps are tz-aware UTC; status and target are categoricals;
    args, kwargs and result stay JSON text (parse with ``json.loads`` or query them in
    ``nj.sql`` with DuckDB's JSON functions), which keeps a million rows within seconds.
    ``wait_s`` is how long the last attempt waited once due (started_at - run_at: a retry
    moves run_at to when it became due) and ``duration_s`` how long it ran (finished_at -
    started_at). ``wait_s`` is empty (NaN) while the job has not started since it became due:
    pending, waiting for a retry, or cancelled before that; never negative.
    ``timeout``: seconds the query may run (``QueryTimeoutError`` after; None: the default
    of ``validate.QUERY_TIME_LIMIT_S``).
    """
    if status is not None and status not in STATUS_NAMES:
        raise InvalidArgumentsError(
            f"status={status!r} is not a job status; use one of {', '.join(STATUS_NAMES)}")
    limit = validate.query_time_limit("timeout", timeout)
    query = (parse_time("since", since), parse_time("until", until), target, status)
    return to_frame(_queue().table("history", limit, *query))


def stats(by: str = "target", timeout: Any = None) -> pd.DataFrame:
    """Per group (``by``: target, status or hour): jobs by status, success rate, duration
    mean/p50/p95/max and wait p50/p95 in seconds, mean attempts and retries; computed in DuckDB.

    success_rate is completed / (completed + failed): cancelled and unfinished jobs don't count.
    Durations are of completed and failed jobs' last attempts; waits, of every job whose last
    attempt started once due (``history``'s ``wait_s``). ``timeout``: as ``history``.
    """
    from ..store import STATS_GROUPS

    if by not in STATS_GROUPS:
        raise InvalidArgumentsError(
            f"by={by!r} is not allowed; use one of {', '.join(STATS_GROUPS)}"
        )
    limit = validate.query_time_limit("timeout", timeout)
    return to_frame(_queue().table("stats", limit, by))


def sql(query: str, timeout: Any = None) -> pd.DataFrame:
    """A read-only SQL query; the view ``jobs`` has one row per job with the columns of status().

    Works with or without a running worker, which goes on committing and answering meanwhile.
    Statements other than one SELECT are refused, and so is reading files: the query sees the
    queue only. ``timeout``: as ``history``.
    """
    if not isinstance(query, str) or not query.strip():
        raise InvalidArgumentsError("nj.sql takes a SELECT statement as a string, e.g. "
                                    "\"SELECT status, count(*) FROM jobs GROUP BY status\"")
    limit = validate.query_time_limit("timeout", timeout)
    return to_frame(_queue().table("sql", limit, query))


def prune(older_than: Any = "30d", *, now: datetime | None = None) -> int:
    """Delete completed, failed and cancelled jobs that finished more than ``older_than`` ago
    (before ``now``, default the current time).

    ``older_than``: '30d', '12h', '90m', '45s', '2w', seconds, or a timedelta. Pending and
    running jobs are never deleted, nor a job that one of them waits for. Returns how many jobs
    were deleted.
    """
    return _queue().prune(_prune_before(older_than, now))


def prunable(older_than: Any = "30d", *, now: datetime | None = None) -> dict[str, int]:
    """What ``prune(older_than, now=now)`` would delete, per status (only those with jobs):
    its dry run. Given the same ``now``, a prune deletes no job this did not count."""
    table = _queue().table("prunable", validate.QUERY_TIME_LIMIT_S, _prune_before(older_than, now))
    return dict(zip(table.column("status").to_pylist(), table.column("jobs").to_pylist(),
                    strict=True))


def _prune_before(older_than: Any, now: datetime | None) -> datetime:
    return (now or utcnow()) - timedelta(seconds=validate.seconds("older_than", older_than))
