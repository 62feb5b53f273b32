"""The schema's versions and migrations, and opening a queue file (which brings it up to date).

A file records its version in ``meta``; a newer package migrates an older file step by step
(SPEC §11) and refuses a file newer than itself. Columns added after version 1 come from
``columns.COLUMNS`` (their ``since``), so a new column needs no migration script of its own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from .. import journal
from ..errors import StorageError
from ..journal.payloads import readable_jobs
from ..journal.records import JOB, Record
from ..model.records import Job
from ..system import files
from . import failures, hosts, recovery
from .columns import COLUMNS
from .replay import replay
from .sql import QUERIES

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 5
#: the version whose migration moves what an inbox holds into the queue (``drain_inbox``) and
#: drops the table: written by versions 2 and 3 before the dispatch journal, and left with rows
#: in a version 4 file whose migration by an older notebookjobs died between its two steps
INBOX_DRAINED = 5

# Version 1, as it was first written: later versions change it only by migration.
_V1 = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE SEQUENCE IF NOT EXISTS job_ids START 1;
CREATE TABLE IF NOT EXISTS queue (
    id BIGINT PRIMARY KEY, target VARCHAR NOT NULL, args VARCHAR NOT NULL,
    kwargs VARCHAR NOT NULL, status VARCHAR NOT NULL, priority INTEGER NOT NULL,
    attempts INTEGER NOT NULL, max_attempts INTEGER NOT NULL, retry_delay DOUBLE NOT NULL,
    retry_backoff DOUBLE NOT NULL, timeout DOUBLE, created_at TIMESTAMP NOT NULL,
    run_at TIMESTAMP NOT NULL, started_at TIMESTAMP, finished_at TIMESTAMP, error VARCHAR,
    result VARCHAR, output VARCHAR, progress DOUBLE, progress_message VARCHAR, worker VARCHAR,
    cancel_requested BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS pending (id BIGINT PRIMARY KEY, priority INTEGER NOT NULL,
                                    run_at TIMESTAMP NOT NULL);
"""

#: version -> the script that brings a file from the version before to it (besides the columns
#: whose ``since`` is that version, which are added first)
MIGRATIONS: dict[int, str] = {
    1: _V1,
    # Dispatches a running worker has acknowledged and not yet moved into the queue, one narrow
    # row each with no index: the cheapest durable write DuckDB has.
    2: "CREATE TABLE IF NOT EXISTS inbox (id BIGINT NOT NULL, job VARCHAR NOT NULL);",
    # Claims happen in the worker's memory only, so the pending index goes; ids are the highest
    # stored plus one (consecutive across worker restarts), so the sequence goes too. The
    # highest id ever handed out is kept in meta, so pruning the newest jobs reuses no id.
    3: """
INSERT OR REPLACE INTO meta
    SELECT 'last_id', (SELECT coalesce(max(id), 0) FROM queue)::VARCHAR;
DROP TABLE IF EXISTS pending;
DROP SEQUENCE IF EXISTS job_ids;
""",
    # Version 4: how a job's result is kept (result_type), every failed attempt's error
    # (errors), where each attempt ran (ran_on, SPEC §18); what a job waits for (after), its
    # unique key and the schedule that made it: columns only, added from columns.COLUMNS
    # (since=4); old rows get '[]' for errors. And the
    # schedules (SPEC §16): the last tick the worker dispatched per schedule, written in the
    # same transaction as that tick's job, so a tick runs once across restarts. ``definition``
    # is what the tick was computed from (cron or every, timezone, enabled): an edit of the
    # schedule in whitelist.yaml starts it afresh instead of catching up on the old one.
    4: """
CREATE TABLE IF NOT EXISTS schedule_ticks (name VARCHAR PRIMARY KEY, definition VARCHAR NOT NULL,
                                           last_tick TIMESTAMP NOT NULL, last_job BIGINT);
""",
    # Version 5: the inbox goes, once ``drain_inbox`` has moved its rows into the queue.
    5: "DROP TABLE IF EXISTS inbox;",
}


def _jobs_view() -> str:
    # Rebuilt at every migration: the columns of nj.status() may grow with the version.
    return f"CREATE OR REPLACE VIEW jobs AS SELECT {', '.join(Job.STATUS_KEYS)} FROM queue;"


def migrate(conn: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Bring the file at ``path`` (open on ``conn``) to SCHEMA_VERSION, in one transaction;
    how many dispatches it moved from an inbox into the queue (``drain_inbox``)."""
    version = 0
    if conn.execute(QUERIES["table_exists"], ["meta"]).fetchone()[0]:  # type: ignore[index]
        row = conn.execute(QUERIES["get_meta"], ["schema_version"]).fetchone()
        version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"{path} has schema version {version}, newer than this notebookjobs understands "
            f"({SCHEMA_VERSION}); upgrade notebookjobs")
    if version == SCHEMA_VERSION:
        return 0
    moved = 0
    conn.execute("BEGIN")
    for step in range(version + 1, SCHEMA_VERSION + 1):
        for column in (c for c in COLUMNS if c.since == step and step > 1):
            conn.execute(f"ALTER TABLE queue ADD COLUMN IF NOT EXISTS {column.name} {column.sql}")
        if step == INBOX_DRAINED:  # every column is there: the jobs are stored as new
            moved = drain_inbox(conn, path)
        conn.execute(MIGRATIONS[step])
        logger.info("migrated %s to schema version %d", path, step)
    conn.execute(_jobs_view())
    conn.execute(QUERIES["set_meta"], ["schema_version", str(SCHEMA_VERSION)])
    conn.execute("COMMIT")
    return moved


def drain_inbox(conn: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Move the dispatches an inbox holds into the queue as pending jobs (a worker of schema
    version 2 or 3 acknowledged them and stopped or died before its group commit moved them;
    or an older notebookjobs died between its migration to version 4 and its drain),
    in the migration's transaction: once, and none lost. Each row is read as a journal record
    of one job (``journal.payloads``: the one check of a stored dispatch); a row that cannot
    be read becomes a failed job saying why, so it fails alone (SPEC §14). How many rows it
    moved."""
    from .jobs import JobStore  # the store's operations need the schema; not the other way

    if not conn.execute(QUERIES["table_exists"], ["inbox"]).fetchone()[0]:  # type: ignore[index]
        return 0  # a version 1 file, or a new one
    rows = conn.execute(QUERIES["inbox_rows"]).fetchall()
    if not rows:
        return 0
    now = datetime.now(UTC)
    jobs = [job for job_id, text in rows
            for job in readable_jobs(Record(JOB, job_id, job_id, _payload(text), 0), now)]
    JobStore(conn).insert(jobs)
    logger.warning("moved %d dispatch(es) from the inbox of %s into the queue", len(rows), path)
    return len(rows)


def _payload(text: str) -> bytes:
    """An inbox row's JSON as a journal record's payload: the dispatch's fields (a row of
    version 3 holds the whole job, the others are left out), its times from naive UTC to
    aware. Text that is not such an object is passed on as it is, for the check to refuse."""
    try:
        row = json.loads(text)
        fields = {key: row[key] for key in _DISPATCH_FIELDS if key in row}
        for key in ("created_at", "run_at"):
            fields[key] = datetime.fromisoformat(fields[key]).replace(tzinfo=UTC).isoformat()
    except (ValueError, TypeError, KeyError, RecursionError):
        return text.encode()
    return json.dumps(fields).encode()


#: what an inbox row and a journal record of one job both hold (``journal.payloads``)
_DISPATCH_FIELDS = ("target", "args", "kwargs", "priority", "run_at", "created_at",
                    "max_attempts", "retry_delay", "retry_backoff", "timeout")


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the database file in an instance of its own, for a process
    that keeps it (the worker), and bring it up to date (``prepare``). A file emptied or cut
    is rebuilt from the journal, or refused saying what to do (``recovery.check``); a file
    this call created and could not finish (a full disk) is removed, not left unopenable."""
    try:
        files.private_dir(path.parent)
        new = recovery.check(path)
    except OSError as exc:
        raise _open_error(path, exc) from exc
    try:
        with files.private_umask():
            conn = duckdb.connect(str(path))
    except (duckdb.Error, OSError) as exc:
        if new:
            _remove_unfinished(path)
        raise _open_error(path, exc) from exc
    try:
        prepare(conn, path, new=new)
    except BaseException:
        conn.close()
        if new:
            _remove_unfinished(path)
        raise
    return conn


@contextmanager
def opened(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The file, up to date (``prepare``), for one short use: attached to an instance this
    process keeps (``hosts``), which costs ~1 ms where an instance of its own costs ~50.
    Damaged and unfinished files are handled as by ``connect``."""
    try:
        files.private_dir(path.parent)
        new = recovery.check(path)
    except OSError as exc:
        raise _open_error(path, exc) from exc
    with files.private_umask(), ExitStack() as stack:
        try:
            conn = stack.enter_context(hosts.attached(path))
            prepare(conn, path, new=new)
        except BaseException as exc:
            stack.close()  # detached: the file is let go
            if new:
                _remove_unfinished(path)
            if recovery.cut_error(exc) is not None:
                raise _open_error(path, exc) from exc
            raise
        yield conn


def _remove_unfinished(path: Path) -> None:
    """Remove the queue file (and WAL) that this open created and could not finish: left, it
    would be a file no command can open (an empty one, after a full disk). It holds nothing
    the journal does not: the journal drops records only once a commit holds them, and a
    failed reset leaves them (``Journal.reset`` writes its head before it cuts the file)."""
    for leftover in (path, path.with_name(path.name + ".wal")):
        try:
            leftover.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("could not remove the unfinished queue file %s: %s", leftover,
                           exc.strerror)


def _open_error(path: Path, exc: BaseException) -> StorageError:
    """The error of an open that failed: what to do for a full disk, a cut file, a folder we
    cannot write."""
    cut = recovery.cut_error(exc)
    if cut is not None:
        return recovery.refusal(path, cut, recovery.surveyed(journal.Journal(path)))
    if isinstance(exc, OSError) and not failures.no_room(exc):
        return StorageError(f"cannot open the queue database {path}: {exc.strerror}; set "
                            "NOTEBOOKJOBS_DB to a file in a folder you can write")
    if isinstance(exc, (duckdb.Error, OSError)):
        return failures.storage_error(f"cannot open the queue database {path}", exc)
    return StorageError(f"cannot open the queue database {path}: {exc}")


def prepare(conn: duckdb.DuckDBPyConnection, path: Path, *, new: bool = False) -> None:
    """Bring the file just opened on ``conn`` up to date: its mode, its schema, and the
    dispatches the journal holds (made while no worker ran, or left by a worker that died),
    moved into the queue first, so every read sees every acknowledged dispatch. A ``new``
    file takes its last id from the journal's head even when the journal holds nothing else
    (a queue rebuilt, or made again: no id is handed out twice).

    The file is created 0600 in a 0700 folder (SPEC §14), whatever the process's umask.
    """
    files.narrow(path, files.FILE_MODE)  # a file an older version created with wider rights
    try:
        moved = migrate(conn, path)
        # The ids of jobs an inbox held may be above the journal's head: a full replay raises
        # it to the file's last id, so no dispatch is numbered as one of them.
        replay(conn, journal.Journal(path), full=new or moved > 0)
    except duckdb.Error as exc:
        raise failures.storage_error(f"cannot open the queue database {path}", exc) from exc
