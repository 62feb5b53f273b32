"""The queue in DuckDB: the only package that imports duckdb or holds SQL (SPEC §11).

- ``queries.sql`` + ``sql``: every statement, named, in one file.
- ``columns``: the queue table's columns; rows <-> ``Job`` by column name.
- ``schema``: versions, migrations (an inbox of versions 2 to 4 drained, then dropped),
  opening a file.
- ``jobs``: ``JobStore``, the operations over one connection; ``tables``: history, stats and
  SQL frames, and the ``Reader`` that runs them apart from the commits, within a time limit.

Who opens the file, and when, is decided above (``access.queue_client``): a worker keeps one
connection for its life (``Database``); without a worker, a client takes the file's lock and
runs one ``transaction``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ..errors import StorageError
from .failures import storage_error
from .jobs import JobStore
from .schema import SCHEMA_VERSION, connect, migrate, opened
from .sql import QUERIES, literal
from .tables import STATS_GROUPS, Reader, lock_down

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["SCHEMA_VERSION", "STATS_GROUPS", "Database", "JobStore", "Reader", "connect", "empty",
           "read_table", "transaction"]


@contextmanager
def _atomic(conn: duckdb.DuckDBPyConnection, path: Path, *,
            sandboxed: bool = False) -> Iterator[JobStore]:
    """One transaction: committed at the end, rolled back on error; duckdb's errors become
    ``StorageError`` (the original kept as ``__cause__``). ``sandboxed``: ``JobStore``'s."""
    try:
        conn.execute("BEGIN TRANSACTION")
        try:
            yield JobStore(conn, sandboxed=sandboxed)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except duckdb.Error as exc:
        raise storage_error(f"queue database {path}", exc) from exc


class Database:
    """A connection kept open for a process's lifetime (the worker); one transaction at a time
    (the caller serialises them), and readers beside it (``reader``). Once open, the instance
    reads and writes no file but its own and those in ``frames`` (``tables.lock_down``): a
    user's SQL reads the queue only (SPEC §14)."""

    def __init__(self, path: Path, frames: Path | None = None) -> None:
        self.path = path
        self.conn = connect(path)
        # DuckDB's allocator (jemalloc) gives freed pages back to the system only as it goes on
        # allocating, unless threads of its own do it meanwhile: without them an idle worker
        # keeps what its last commits used, 10-20 MB after a few hundred jobs (SPEC §13).
        try:
            lock_down(self.conn, frames)
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
    def reader(self) -> Iterator[Reader]:
        """A reader on a cursor of its own: it reads a snapshot of the queue while commits go
        on, under no lock of the caller's (DuckDB's MVCC)."""
        cursor = self.conn.cursor()
        try:
            yield Reader(cursor, sandboxed=True)
        finally:
            cursor.close()

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

    The caller must hold the file's lock (see ``access.queue_client``): DuckDB lets one process
    at a time open a database file. Run under umask 077: the WAL is created by the first write.
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
        lock_down(conn)  # a user's SQL may run on it (``nj.sql`` of a queue not made yet)
        with _atomic(conn, path, sandboxed=True) as job_store:
            yield job_store
    finally:
        conn.close()


def read_table(path: Path, name: str, args: tuple[Any, ...], limit: float) -> pa.Table:
    """A named table of the file at ``path``, within ``limit`` seconds, for a client without a
    worker (the caller holds the file's lock). A user's SQL (``sql``) runs in an instance of
    its own that has the file attached read-only and cannot read any other (``lock_down``):
    ~50 ms more than the store's own tables, which run on the file's usual connection."""
    if name != "sql":
        with transaction(path) as job_store:
            return job_store.table(name, args, limit)
    with opened(path):  # brings the file up to date: the journal's dispatches in
        pass
    # DuckDB lets one instance of a process attach a file at a time: after the one above.
    try:
        # its spill files where the file's own instance puts them (``hosts``), not in the cwd
        sandbox = duckdb.connect(":memory:", config={"temp_directory": f"{path}.tmp"})
    except duckdb.Error as exc:
        raise StorageError(f"queue database {path}: {exc}") from exc
    try:
        try:
            sandbox.execute(f"ATTACH {literal(os.fspath(path))} AS nj_queue (READ_ONLY)")
            sandbox.execute("USE nj_queue")
            lock_down(sandbox)
        except duckdb.Error as exc:
            raise StorageError(f"cannot open the queue database {path}: {exc}") from exc
        return Reader(sandbox, sandboxed=True).table(name, args, limit)
    finally:
        sandbox.close()
