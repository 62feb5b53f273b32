"""The queue in DuckDB: the only package that imports duckdb or holds SQL (SPEC §11).

- ``queries.sql`` + ``sql``: every statement, named, in one file.
- ``columns``: the queue table's columns; rows <-> ``Job`` by column name.
- ``schema``: versions, migrations, opening a file.
- ``jobs``: ``JobStore``, the operations over one connection; ``inbox``: acknowledged
  dispatches not yet in the queue; ``tables``: history, stats and SQL frames.

Who opens the file, and when, is decided above (``queue``): a worker keeps one connection for
its life (``Database``); without a worker, a client takes the file's lock and runs one
``transaction``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import duckdb

from ..errors import StorageError
from .failures import storage_error
from .jobs import JobStore
from .schema import SCHEMA_VERSION, connect, migrate, opened
from .sql import QUERIES
from .tables import STATS_GROUPS

__all__ = ["SCHEMA_VERSION", "STATS_GROUPS", "Database", "JobStore", "connect", "empty",
           "transaction"]


@contextmanager
def _atomic(conn: duckdb.DuckDBPyConnection, path: Path) -> Iterator[JobStore]:
    """One transaction: committed at the end, rolled back on error; duckdb's errors become
    ``StorageError`` (the original kept as ``__cause__``)."""
    try:
        conn.execute("BEGIN TRANSACTION")
        try:
            yield JobStore(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except duckdb.Error as exc:
        raise storage_error(f"queue database {path}", exc) from exc


class Database:
    """A connection kept open for a process's lifetime (the worker); one transaction at a time
    (the caller serialises them)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)
        # DuckDB's allocator (jemalloc) gives freed pages back to the system only as it goes on
        # allocating, unless threads of its own do it meanwhile: without them an idle worker
        # keeps what its last commits used, 10-20 MB after a few hundred jobs (SPEC §13).
        try:
            self.conn.execute(QUERIES["purge_in_background"])
            #: the memory limit a shed sets back (read once: it reads back rounded, '18.8 GiB'
            #: for 18.83, and a limit read back after each shed would shrink with every one)
            self.memory_limit = JobStore(self.conn).memory_limit()
        except duckdb.Error as exc:
            self.conn.close()
            raise StorageError(f"queue database {path}: {exc}") from exc

    def transaction(self) -> AbstractContextManager[JobStore]:
        """Run the block as one transaction (atomic)."""
        return _atomic(self.conn, self.path)

    @contextmanager
    def autocommit(self) -> Iterator[JobStore]:
        """For an operation of one statement: DuckDB's autocommit makes it atomic, and an
        explicit BEGIN/COMMIT would add about 0.4 ms to the dispatch path."""
        try:
            yield JobStore(self.conn)
        except duckdb.Error as exc:
            raise storage_error(f"queue database {self.path}", exc) from exc

    def shed_memory(self) -> None:
        """Give back the memory a large read left cached (``JobStore.shed_memory``)."""
        try:
            JobStore(self.conn).shed_memory(self.memory_limit)
        except duckdb.Error as exc:
            raise StorageError(f"queue database {self.path}: {exc}") from exc

    def close(self) -> None:
        self.conn.close()


@contextmanager
def transaction(path: Path) -> Iterator[JobStore]:
    """Open the file, run one transaction, commit (or roll back on error) and close it.

    The caller must hold the file's lock (see ``queue``): DuckDB lets one process at a time
    open a database file. Run under umask 077: the WAL is created by the first write.
    """
    with opened(path) as conn, _atomic(conn, path) as job_store:
        yield job_store


@contextmanager
def empty() -> Iterator[JobStore]:
    """An empty queue in memory, with the schema and no file, journal or folder: what a read of
    a queue that does not exist is answered from, so that it creates nothing."""
    path = Path(":memory:")
    conn = duckdb.connect(str(path))
    try:
        migrate(conn, path)
        with _atomic(conn, path) as job_store:
            yield job_store
    finally:
        conn.close()
