"""The queue table's columns, in one list: names, SQL types, and how values cross to DuckDB.

Rows are read and written by column name through this list only, so adding a column to the job
is a field of ``models.Job`` and one ``Column`` here (with the schema version that adds it:
the migration follows from ``since``). ``models.Job`` knows nothing of SQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from ..model.records import Job


@dataclass(frozen=True)
class Column:
    """One column of the ``queue`` table and the ``Job`` field of the same name."""

    name: str
    sql: str  #: its SQL type (with NOT NULL / DEFAULT where it has them)
    kind: str = "plain"  #: plain, json (a JSON value stored as text) or time (UTC timestamp)
    mutable: bool = True  #: changes after the job is stored (the group commit writes these)
    since: int = 1  #: the schema version that added it

    @property
    def type(self) -> str:
        """The bare SQL type, for casts (``BIGINT`` of ``BIGINT PRIMARY KEY``)."""
        return self.sql.split()[0]


COLUMNS: tuple[Column, ...] = (
    Column("id", "BIGINT PRIMARY KEY", mutable=False),
    Column("target", "VARCHAR NOT NULL", mutable=False),
    Column("args", "VARCHAR NOT NULL", "json", mutable=False),
    Column("kwargs", "VARCHAR NOT NULL", "json", mutable=False),
    Column("status", "VARCHAR NOT NULL"),
    Column("priority", "INTEGER NOT NULL", mutable=False),
    Column("attempts", "INTEGER NOT NULL"),
    Column("max_attempts", "INTEGER NOT NULL", mutable=False),
    Column("created_at", "TIMESTAMP NOT NULL", "time", mutable=False),
    Column("run_at", "TIMESTAMP NOT NULL", "time"),
    Column("started_at", "TIMESTAMP", "time"),
    Column("finished_at", "TIMESTAMP", "time"),
    Column("error", "VARCHAR"),
    Column("result", "VARCHAR", "json"),
    Column("output", "VARCHAR"),
    Column("progress", "DOUBLE"),
    Column("progress_message", "VARCHAR"),
    Column("retry_delay", "DOUBLE NOT NULL", mutable=False),
    Column("retry_backoff", "DOUBLE NOT NULL", mutable=False),
    Column("timeout", "DOUBLE", mutable=False),
    Column("worker", "VARCHAR"),
    Column("cancel_requested", "BOOLEAN NOT NULL DEFAULT false"),
    Column("result_type", "VARCHAR", since=4),
    Column("errors", "VARCHAR DEFAULT '[]'", "json", since=4),
    Column("ran_on", "VARCHAR", "json", since=4),
    # SPEC §16: a list column, not JSON text, so that a row written by other means cannot hold
    # anything but ids, and prune can keep the jobs a pending job waits for in plain SQL.
    Column("after", "BIGINT[]", mutable=False, since=4),
    Column("unique_key", "VARCHAR", mutable=False, since=4),
    Column("schedule", "VARCHAR", mutable=False, since=4),
)
NAMES = tuple(c.name for c in COLUMNS)
MUTABLE = tuple(c for c in COLUMNS if c.mutable)
_JSON = frozenset(c.name for c in COLUMNS if c.kind == "json")
_TIME = frozenset(c.name for c in COLUMNS if c.kind == "time")

assert set(NAMES) == {f.name for f in fields(Job)}, (
    "models.Job and COLUMNS must name the same fields"
)


def naive(ts: datetime) -> datetime:
    """UTC without tzinfo, as stored."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts


#: the texts most JSON cells hold (no arguments, no errors): each a new value, made without
#: the parser
_EMPTY: dict[str, Callable[[], Any]] = {"[]": list, "{}": dict}
_JSON_AT = tuple(i for i, name in enumerate(NAMES) if name in _JSON)
_TIME_AT = tuple(i for i, name in enumerate(NAMES) if name in _TIME)


def _load_json(text: str | None) -> Any:
    """JSON text as its value; text that is not JSON (a row written by other means) as itself,
    so one bad row never makes a read fail (the worker refuses to run it)."""
    if text is None:
        return None
    empty = _EMPTY.get(text)
    if empty is not None:
        return empty()
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def job_from_row(row: tuple[Any, ...]) -> Job:
    """A ``Job`` from a row selected as ``{columns}`` (all of NAMES, in order).

    By position, with the common JSON texts made without the parser: a worker starting on
    10,000 pending jobs spent 0.3 s here (27 µs a row), now 0.14-0.19 s."""
    values = list(row)
    for i in _JSON_AT:
        values[i] = _load_json(values[i])
    for i in _TIME_AT:
        if values[i] is not None:
            values[i] = values[i].replace(tzinfo=UTC)
    job = object.__new__(Job)  # Job.evolve's shortcut: the values are the store's own
    job.__dict__.update(zip(NAMES, values, strict=True))
    return job


def sql_value(column: Column, value: Any) -> Any:
    """A field's value as DuckDB takes it for ``column``."""
    if value is None:
        return None
    if column.kind == "json":
        return json.dumps(value)
    if column.kind == "time":
        return naive(value)
    return value


def column_values(jobs: list[Job], columns: tuple[Column, ...]) -> list[list[Any]]:
    """One list per column of the jobs' values (for ``unnest`` of array parameters)."""
    return [[sql_value(c, getattr(job, c.name)) for job in jobs] for c in columns]


def job_to_json(job: Job) -> str:
    """The whole job as one JSON object (an inbox row): times as ISO text, naive UTC."""
    return json.dumps({c.name: (naive(v).isoformat() if c.kind == "time" and v is not None else v)
                       for c in COLUMNS for v in (getattr(job, c.name),)})


def job_from_json(text: str) -> dict[str, Any]:
    """The fields of ``job_to_json`` text, times as aware datetimes (unchecked: see inbox)."""
    values = json.loads(text)
    for name in _TIME:
        if values.get(name) is not None:
            values[name] = datetime.fromisoformat(values[name]).replace(tzinfo=UTC)
    return values
