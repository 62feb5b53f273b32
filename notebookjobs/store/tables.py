"""The store's frames: history, stats, a user's read-only SQL and what a prune would delete,
as Arrow tables (SPEC §10).

Each named table is a function from its (checked) arguments to SQL and parameters; every
aggregate is computed by DuckDB, so pandas only fixes dtypes afterwards (``history.py``).

A ``Reader`` runs one of them on a connection of its own, never the one the commits use (SPEC
§14: no query holds the queue): a cursor of the worker's instance (DuckDB's MVCC lets it read
a snapshot while the writer commits on the instance's main connection), or, with no worker, the
file's connection of the moment. It stops the query at its time limit, or when another thread
calls ``interrupt`` (DuckDB's ``interrupt()``: the worker's stop). A user's SQL runs only on a
``sandboxed`` connection, one whose instance has file access switched off (``lock_down``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ..errors import InvalidArgumentsError, QueryTimeoutError, StorageError, WorkerError
from .columns import naive
from .sql import QUERIES, STATUS_ENUM, literal

if TYPE_CHECKING:
    import pyarrow as pa

#: Parquet compression of served frames: none. The file lives for one read, in the page cache;
#: for a 1,000,000-job history (42 MB; 28 with lz4_raw) it writes in 0.77 s and reads in
#: 0.23, against 0.98 and 0.29 with lz4_raw, the fastest codec (median of 5, this machine).
FRAME_COMPRESSION = "uncompressed"

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
        raise InvalidArgumentsError(f"nj.sql: the query does not parse: {one_line(exc)}") from exc
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


def one_line(exc: BaseException) -> str:
    """DuckDB's message on one line: its first lines joined, without the ``LINE 1: ...`` and
    caret it adds below (the query the user wrote, which they have)."""
    lines = []
    for line in str(exc).splitlines():
        if line.startswith("LINE "):
            break
        if line.strip():
            lines.append(line.strip())
    return " ".join(lines)


def lock_down(conn: duckdb.DuckDBPyConnection, writable: Path | None = None) -> None:
    """Switch file access off for the whole instance of ``conn``, for good (DuckDB allows no
    way back): no query on it reads or writes a file, but in ``writable`` (where the worker's
    frames go). The queue's own file, already open, is not affected, nor are DuckDB's own
    spill files."""
    if writable is not None:
        conn.execute(f"SET allowed_directories = [{literal(os.fspath(writable) + os.sep)}]")
    conn.execute("SET enable_external_access = false")


class Reader:
    """One read of a named table (``TABLES``) on ``conn``, a connection of its own. ``sandboxed``:
    its instance is locked down (``lock_down``); a user's SQL is refused on any other."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, *, sandboxed: bool) -> None:
        self.conn = conn
        self.sandboxed = sandboxed
        self._why: str | None = None  #: set by ``interrupt``: why the query was stopped
        self._lock = threading.Lock()

    def interrupt(self, why: str) -> None:
        """Stop the query now, from any thread; the reader then raises ``WorkerError(why)``.
        A query not begun yet is refused when it begins."""
        with self._lock:
            self._why = self._why or why
            self.conn.interrupt()

    def table(self, name: str, args: tuple[Any, ...], limit: float) -> pa.Table:
        """The Arrow table of a named table, within ``limit`` seconds."""
        return self._run(name, args, limit, lambda rel: rel.to_arrow_table())

    def write_table(self, name: str, args: tuple[Any, ...], limit: float, path: Path) -> None:
        """Write a named table to ``path`` as Parquet, by DuckDB itself, within ``limit``
        seconds: the worker serves frames this way so that it never loads pyarrow (~50 MB it
        would keep for its life)."""
        self._run(name, args, limit, lambda rel: rel.write_parquet(
            os.fspath(path), compression=FRAME_COMPRESSION))

    def _run(self, name: str, args: tuple[Any, ...], limit: float,
             fetch: Callable[[duckdb.DuckDBPyRelation], Any]) -> Any:
        if name == "sql" and not self.sandboxed:
            raise StorageError("a user's SQL runs only where files cannot be read; "
                               "this is a bug of notebookjobs")
        sql, params = table_query(self.conn, name, args)
        timer = threading.Timer(limit, self._time_up, args=(name, limit))
        timer.daemon = True
        timer.start()
        try:
            if self._why is not None:  # interrupted before it began: DuckDB forgets that
                raise WorkerError(self._why)
            return fetch(self.conn.sql(sql, params=params or None))
        except duckdb.InterruptException as exc:
            why = self._why or "the query was interrupted"
            if why.startswith(_TIME_UP):
                raise QueryTimeoutError(why) from exc
            raise WorkerError(why) from exc
        except duckdb.PermissionException as exc:
            raise InvalidArgumentsError(
                "nj.sql reads the queue only, through the jobs view: files cannot be read "
                f"({one_line(exc)})") from exc
        except duckdb.Error as exc:
            if name == "sql":
                raise InvalidArgumentsError(f"nj.sql: {one_line(exc)}") from exc
            raise StorageError(f"{name}: {one_line(exc)}") from exc
        finally:
            timer.cancel()

    def _time_up(self, name: str, limit: float) -> None:
        call = "nj.sql" if name == "sql" else f"nj.{name}"
        self.interrupt(f"{_TIME_UP} ({limit:g} s) and was stopped; narrow it, or pass "
                       f"{call}(..., timeout=SECONDS) to allow it more")


_TIME_UP = "the query ran longer than its time limit"
