"""The queue table's columns, in one list: names, SQL types, and how values cross to DuckDB.

Rows are read and written by column name through this list only, so adding a column to the job
is a field of ``models.Job`` and one ``Column`` here (with the schema version that adds it:
the migration follows from ``since``). ``models.Job`` knows nothing of SQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import lru_cache
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
    tz = ts.tzinfo
    if tz is UTC:  # the package's own times: no conversion to make (~0.6 µs less a value)
        return ts.replace(tzinfo=None)
    if tz is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts


#: the texts most JSON cells hold (no arguments, no errors): each a new value, made without
#: the parser
_EMPTY: dict[str, Callable[[], Any]] = {"[]": list, "{}": dict}


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


@lru_cache(maxsize=16)
def _layout(names: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Where the JSON and the time cells are in rows of these column names; a ``ValueError``
    unless they are the job's fields, each once (a statement that selects other columns)."""
    if sorted(names) != sorted(NAMES):
        raise ValueError(f"rows of columns {names} are not jobs: select {{columns}}")
    return (tuple(i for i, name in enumerate(names) if name in _JSON),
            tuple(i for i, name in enumerate(names) if name in _TIME))


def jobs_from_rows(description: Sequence[Sequence[Any]],
                   rows: Iterable[tuple[Any, ...]]) -> list[Job]:
    """The ``Job`` of each row, by the column names of the cursor's ``description`` (as
    procrastinate's ``Job.from_row``), in whatever order the statement selects them.

    The names are looked at once a statement (``_layout``), not once a row, and the common JSON
    texts are made without the parser: a worker starting on 10,000 pending jobs spends
    ~15 µs a row here."""
    names = tuple(column[0] for column in description)
    json_at, time_at = _layout(names)
    trusted = Job.trusted  # the values are the store's own, each field given
    jobs = []
    for row in rows:
        values = list(row)
        for i in json_at:
            values[i] = _load_json(values[i])
        for i in time_at:
            if values[i] is not None:
                values[i] = values[i].replace(tzinfo=UTC)
        jobs.append(trusted(zip(names, values, strict=True)))
    return jobs


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
    """One list per column of the jobs' values (for ``unnest`` of array parameters). A plain
    column's values go as they are, and the empty list a JSON cell mostly holds is its text
    without the encoder: the worker's group commit does this for every job it settles (py-spy
    of a drain of no-op jobs: ~7 % of the worker's samples; 7.7 -> 3 µs a job)."""
    return [[getattr(job, c.name) for job in jobs] if c.kind == "plain"
            else [None if value is None else "[]" if value == [] and type(value) is list
                  else sql_value(c, value) for value in (getattr(job, c.name) for job in jobs)]
            for c in columns]

