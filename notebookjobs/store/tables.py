"""The store's frames: history, stats, a user's read-only SQL and what a prune would delete,
as Arrow tables (SPEC §10).

Each named table is a function from its (checked) arguments to SQL and parameters; every
aggregate is computed by DuckDB, so pandas only fixes dtypes afterwards (``history.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import duckdb

from ..errors import InvalidArgumentsError
from .columns import naive
from .sql import QUERIES, STATUS_ENUM

#: stats(by=...) -> the SQL expression that groups
STATS_GROUPS = {
    "target": "target",
    "status": f"status::{STATUS_ENUM}",
    "hour": "date_trunc('hour', created_at)",
}


def history_query(since: datetime | None, until: datetime | None, target: str | None,
                  status: str | None) -> tuple[str, list[Any]]:
    """SQL and parameters for ``nj.history`` with its filters (on created_at, target, status)."""
    conditions, params = [], []
    for column_test, value in (("created_at >= ?", since), ("created_at < ?", until),
                               ("target = ?", target), ("status = ?", status)):
        if value is not None:
            conditions.append(column_test)
            params.append(naive(value) if isinstance(value, datetime) else value)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    return QUERIES["history"].replace("{where}", where), params


def stats_query(by: str) -> tuple[str, list[Any]]:
    """SQL for ``nj.stats(by)``; ``InvalidArgumentsError`` unless ``by`` is a STATS_GROUPS key."""
    if by not in STATS_GROUPS:
        raise InvalidArgumentsError(
            f"by={by!r} is not allowed; use one of {', '.join(STATS_GROUPS)}"
        )
    return QUERIES["stats"].replace("{group}", STATS_GROUPS[by]).replace("{name}", by), []


def select_query(query: str, conn: duckdb.DuckDBPyConnection) -> tuple[str, list[Any]]:
    """A user's query for ``nj.sql``, accepted only when it is one SELECT statement (parsed
    by ``conn``: an instance made for it cost ~35 ms a call)."""
    try:
        statements = conn.extract_statements(query)
    except duckdb.Error as exc:
        raise sql_error(exc, "the query does not parse: ") from exc
    if len(statements) != 1:
        raise InvalidArgumentsError(
            f"nj.sql takes one statement, got {len(statements)}; run them one by one")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise InvalidArgumentsError(
            f"nj.sql is read-only: {kind.name} statements are refused; use SELECT over the "
            "jobs view (to delete old jobs, use nj.prune)")
    return query, []


def prunable_query(before: datetime) -> tuple[str, list[Any]]:
    """SQL for what ``prune(before)`` would delete, per status: its dry run."""
    return (QUERIES["prunable_counts"].replace("{prunable}", QUERIES["prunable"]),
            [naive(before)])


def sql_error(exc: duckdb.Error, lead: str = "") -> InvalidArgumentsError:
    """DuckDB's refusal of a user's query as one line, after ``lead``: its message without the
    lines that repeat the query and point into it (``LINE 1: ...`` and the carets under it)."""
    lines = [line.strip() for line in str(exc).splitlines()
             if line.strip() and not line.startswith("LINE ") and set(line.strip()) != {"^"}]
    return InvalidArgumentsError(f"nj.sql: {lead}{' '.join(lines)}")


def schedules_query() -> tuple[str, list[Any]]:
    """SQL for the stored state of the schedules (SPEC §16): each one's last tick and job."""
    return QUERIES["schedules"], []


#: the named tables a client may ask for (through the worker too), and how each is built
TABLES: dict[str, Callable[..., tuple[str, list[Any]]]] = {
    "history": history_query, "stats": stats_query, "sql": select_query,
    "schedules": schedules_query, "prunable": prunable_query,
}


def table_query(conn: duckdb.DuckDBPyConnection, name: str,
                args: tuple[Any, ...]) -> tuple[str, list[Any]]:
    """SQL and parameters of the named table ``name`` with ``args`` (``TABLES``)."""
    if name == "sql":
        return select_query(args[0], conn)
    return TABLES[name](*args)
