"""The queue in DuckDB: schema, migrations and every SQL statement of the package.

This is the only module that imports duckdb. A ``JobStore`` wraps one open connection inside one
transaction (``access`` decides who opens the file and when); its methods are named after the
state transitions of SPEC §5, take and return models, and guard each transition in SQL.

Layout: ``queue`` holds every job, one row each, keyed by id. ``pending`` holds only the ids,
priorities and run times of pending jobs, so claiming the next job reads a table as small as
the backlog, however long the history grows (SPEC §13).
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import duckdb

if TYPE_CHECKING:
    import pyarrow as pa

from . import files, validate
from .errors import InvalidArgumentsError, JobNotFoundError, JobStateError, StorageError
from .models import Job, JobBatch, JobSpec, JobStatus, Outcome, OutcomeKind, RetryPolicy

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2

_COLUMNS = (
    "id, target, args, kwargs, status, priority, attempts, max_attempts, created_at, run_at, "
    "started_at, finished_at, error, result, output, progress, progress_message, "
    "retry_delay, retry_backoff, timeout"
)

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE SEQUENCE IF NOT EXISTS job_ids START 1;
CREATE TABLE IF NOT EXISTS queue (
    id               BIGINT PRIMARY KEY,
    target           VARCHAR NOT NULL,
    args             VARCHAR NOT NULL,      -- JSON list
    kwargs           VARCHAR NOT NULL,      -- JSON object
    status           VARCHAR NOT NULL,
    priority         INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    max_attempts     INTEGER NOT NULL,
    retry_delay      DOUBLE NOT NULL,
    retry_backoff    DOUBLE NOT NULL,
    timeout          DOUBLE,
    created_at       TIMESTAMP NOT NULL,    -- all timestamps are UTC
    run_at           TIMESTAMP NOT NULL,
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP,
    error            VARCHAR,
    result           VARCHAR,               -- JSON
    output           VARCHAR,
    progress         DOUBLE,
    progress_message VARCHAR,
    worker           VARCHAR,               -- who runs it while running
    cancel_requested BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS pending (
    id       BIGINT PRIMARY KEY,
    priority INTEGER NOT NULL,
    run_at   TIMESTAMP NOT NULL
);
CREATE OR REPLACE VIEW jobs AS
    SELECT id, target, args, kwargs, status, priority, attempts, max_attempts, created_at,
           run_at, started_at, finished_at, error, result, output, progress, progress_message
    FROM queue;
"""

_STATUS_ENUM = "ENUM('pending', 'running', 'completed', 'failed', 'cancelled')"

# One row per job, the columns of nj.status() plus wait_s and duration_s (SPEC §10). Timestamps
# are UTC; status is an ENUM so pandas gets an ordered categorical without a Python pass.
_HISTORY = f"""
SELECT id, target, args, kwargs, status::{_STATUS_ENUM} AS status, priority, attempts,
       max_attempts, created_at, run_at, started_at, finished_at, error, result, output,
       progress, progress_message,
       epoch(started_at) - epoch(run_at) AS wait_s,
       epoch(finished_at) - epoch(started_at) AS duration_s
FROM queue
"""

_STATS = """
WITH h AS (
    SELECT {group} AS grp, status, attempts,
           epoch(started_at) - epoch(run_at) AS wait_s,
           CASE WHEN status IN ('completed', 'failed')
                THEN epoch(finished_at) - epoch(started_at) END AS duration_s
    FROM queue
)
SELECT grp AS {name},
       count(*) AS jobs,
       count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE status = 'running') AS running,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE status = 'completed')
           / nullif(count(*) FILTER (WHERE status IN ('completed', 'failed')), 0) AS success_rate,
       avg(duration_s) AS duration_mean,
       quantile_cont(duration_s, 0.5) AS duration_p50,
       quantile_cont(duration_s, 0.95) AS duration_p95,
       max(duration_s) AS duration_max,
       quantile_cont(wait_s, 0.5) AS wait_p50,
       quantile_cont(wait_s, 0.95) AS wait_p95,
       avg(attempts) FILTER (WHERE attempts > 0) AS attempts_mean,
       sum(greatest(attempts - 1, 0))::BIGINT AS retries
FROM h GROUP BY grp ORDER BY grp
"""

#: stats(by=...) -> the SQL expression that groups
STATS_GROUPS = {
    "target": "target",
    "status": f"status::{_STATUS_ENUM}",
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
            params.append(_naive(value) if isinstance(value, datetime) else value)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"{_HISTORY} {where} ORDER BY id", params


def stats_query(by: str) -> tuple[str, list[Any]]:
    """SQL for ``nj.stats(by)``; ``by`` must be a key of STATS_GROUPS (checked by the caller)."""
    return _STATS.format(group=STATS_GROUPS[by], name=by), []


def select_query(query: str) -> tuple[str, list[Any]]:
    """A user's query for ``nj.sql``, accepted only when it is one SELECT statement."""
    try:
        statements = duckdb.connect(":memory:").extract_statements(query)
    except duckdb.Error as exc:
        raise InvalidArgumentsError(f"nj.sql: the query does not parse: {exc}") from exc
    if len(statements) != 1:
        raise InvalidArgumentsError(
            f"nj.sql takes one statement, got {len(statements)}; run them one by one")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise InvalidArgumentsError(
            f"nj.sql is read-only: {kind.name} statements are refused; use SELECT over the "
            "jobs view (to delete old jobs, use nj.prune)")
    return query, []


#: the named queries a caller may ask for a table of (through the worker too)
QUERIES = {"history": history_query, "stats": stats_query, "sql": select_query}

# Version 2: dispatches a running worker has acknowledged and not yet moved into the queue, one
# narrow row each with no index: the cheapest durable write DuckDB has.
_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS inbox (id BIGINT NOT NULL, job VARCHAR NOT NULL);
"""

#: version -> script that brings a database from version-1 to version
_MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1, 2: _SCHEMA_V2}


def _naive(ts: datetime) -> datetime:
    """UTC without tzinfo, as stored."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc).replace(tzinfo=None)
    return ts


def _aware(ts: datetime | None) -> datetime | None:
    return None if ts is None else ts.replace(tzinfo=timezone.utc)


def _loads(text: str | None) -> Any:
    """JSON text as its value; text that is not JSON (a row written by other means) as itself,
    so one bad row never makes a read fail (the worker refuses to run it: see ``active_jobs``)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def _job_from_row(row: tuple) -> Job:
    (id_, target, args, kwargs, status, priority, attempts, max_attempts, created_at, run_at,
     started_at, finished_at, error, result, output, progress, progress_message,
     retry_delay, retry_backoff, timeout) = row
    return Job(
        id=id_, target=target, args=_loads(args), kwargs=_loads(kwargs), status=status,
        priority=priority, attempts=attempts, max_attempts=max_attempts,
        created_at=_aware(created_at), run_at=_aware(run_at), started_at=_aware(started_at),
        finished_at=_aware(finished_at), error=error, result=_loads(result), output=output,
        progress=progress, progress_message=progress_message, retry_delay=retry_delay,
        retry_backoff=retry_backoff, timeout=timeout,
    )


#: an inbox row's fields, in the order ``_inbox_job`` returns them, with their SQL types
_INBOX_FIELDS = (("id", "BIGINT"), ("target", "VARCHAR"), ("args", "VARCHAR"),
                 ("kwargs", "VARCHAR"), ("priority", "INTEGER"), ("max_attempts", "INTEGER"),
                 ("retry_delay", "DOUBLE"), ("retry_backoff", "DOUBLE"), ("timeout", "DOUBLE"),
                 ("created_at", "TIMESTAMP"), ("run_at", "TIMESTAMP"))


def _inbox_job(job_id: int, text: str) -> tuple[Any, ...]:
    """An inbox row's values, checked as a dispatch is (``_INBOX_FIELDS`` order)."""
    job = validate.strict_loads(text)
    policy = validate.retry_policy("policy", RetryPolicy(
        retry_attempts=job["max_attempts"] - 1 if isinstance(job["max_attempts"], int) else None,
        retry_delay=job["retry_delay"], retry_backoff=job["retry_backoff"],
        timeout=job["timeout"]))
    if not isinstance(job["args"], list) or not isinstance(job["kwargs"], dict):
        raise InvalidArgumentsError("args must be a list and kwargs an object")
    return (job_id, validate.target_name("target", job["target"]),
            json.dumps(validate.json_value("args", job["args"])),
            json.dumps(validate.json_value("kwargs", job["kwargs"])),
            validate.priority(job["priority"]), policy.max_attempts, policy.retry_delay,
            policy.retry_backoff, policy.timeout,
            _naive(validate.timestamp("created_at", _utc(job["created_at"]))),
            _naive(validate.timestamp("run_at", _utc(job["run_at"]))))


def _utc(text: Any) -> datetime:
    """A stored naive-UTC ISO time as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the database file and bring its schema up to date.

    The file is created 0600 in a 0700 folder (SPEC §14), whatever the process's umask.
    """
    try:
        files.private_dir(path.parent)
        with files.private_umask():
            conn = duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise StorageError(f"cannot open the queue database {path}: {exc}") from exc
    except OSError as exc:
        raise StorageError(f"cannot open the queue database {path}: {exc.strerror}; set "
                           "NOTEBOOKJOBS_DB to a file in a folder you can write") from exc
    files.narrow(path, files.FILE_MODE)  # a file an older version created with wider rights
    try:
        _migrate(conn, path)
        if conn.execute("SELECT count(*) FROM inbox").fetchone()[0]:
            with _atomic(conn):
                JobStore(conn).drain_inbox()  # left by a worker that died: make them visible
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    has_meta = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
    ).fetchone()[0]
    version = 0
    if has_meta:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"{path} has schema version {version}, newer than this notebookjobs understands "
            f"({SCHEMA_VERSION}); upgrade notebookjobs"
        )
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN")
    for step in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute(_MIGRATIONS[step])
        logger.info("migrated %s to schema version %d", path, step)
    conn.execute(
        "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
    )
    conn.execute("COMMIT")


class JobStore:
    """The queue's operations over one connection, inside the caller's transaction."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn

    # --- writes ------------------------------------------------------------------------------

    def enqueue(self, spec: JobSpec, now: datetime) -> int:
        """Store a pending job; returns its new id."""
        job_id = self.conn.execute(
            "INSERT INTO queue (id, target, args, kwargs, status, priority, attempts, "
            "max_attempts, retry_delay, retry_backoff, timeout, created_at, run_at) "
            "VALUES (nextval('job_ids'), ?, ?, ?, 'pending', ?, 0, ?, ?, ?, ?, ?, ?) RETURNING id",
            [spec.target, json.dumps(spec.args), json.dumps(spec.kwargs), spec.priority,
             spec.policy.max_attempts, spec.policy.retry_delay, spec.policy.retry_backoff,
             spec.policy.timeout, _naive(now), _naive(spec.run_at)]).fetchone()[0]
        self.conn.execute("INSERT INTO pending VALUES (?, ?, ?)",
                          [job_id, spec.priority, _naive(spec.run_at)])
        return job_id

    def enqueue_batch(self, batch: JobBatch, now: datetime, *, index: bool = True) -> list[int]:
        """Store the batch's jobs as pending, in order, with one columnar insert; their ids.

        ``index=False`` leaves the ``pending`` table alone (for a caller that brings it up to
        date later).
        """
        count = len(batch.args)
        if not count:
            return []
        import pyarrow as pa

        ids = [row[0] for row in self.conn.execute(
            "SELECT nextval('job_ids') FROM range(?)", [count]).fetchall()]
        table = pa.table({"id": pa.array(ids, pa.int64()),
                          "args": pa.array(batch.args, pa.string()),
                          "kwargs": pa.array(batch.kwargs, pa.string())})
        p = batch.policy
        self.conn.register("nj_batch", table)
        try:
            self.conn.execute(
                "INSERT INTO queue (id, target, args, kwargs, status, priority, attempts, "
                "max_attempts, retry_delay, retry_backoff, timeout, created_at, run_at) "
                "SELECT id, ?, args, kwargs, 'pending', ?, 0, ?, ?, ?, ?, ?, ? FROM nj_batch",
                [batch.target, batch.priority, p.max_attempts, p.retry_delay, p.retry_backoff,
                 p.timeout, _naive(now), _naive(batch.run_at)])
            if index:
                self.conn.execute("INSERT INTO pending SELECT id, ?, ? FROM nj_batch",
                                  [batch.priority, _naive(batch.run_at)])
        finally:
            self.conn.unregister("nj_batch")
        return ids

    def claim_next(self, worker: str, now: datetime) -> Job | None:
        """Mark the next due pending job running and return it; None when none is due.

        Order: highest priority, then earliest run_at, then lowest id (SPEC §5).
        """
        row = self.conn.execute(
            "SELECT id FROM pending WHERE run_at <= ? ORDER BY priority DESC, run_at, id LIMIT 1",
            [_naive(now)]).fetchone()
        if row is None:
            return None
        return self.claim(row[0], worker, now)

    def claim(self, job_id: int, worker: str, now: datetime) -> Job:
        """Mark one pending job running (attempts + 1); ``JobStateError`` if it is not pending."""
        self.conn.execute("DELETE FROM pending WHERE id = ?", [job_id])
        self._transition(
            job_id, "status = 'running', attempts = attempts + 1, started_at = ?, "
            "finished_at = NULL, worker = ?, progress = NULL, progress_message = NULL, "
            "cancel_requested = false",
            [_naive(now), worker], JobStatus.PENDING)
        return self.get(job_id)

    def enqueue_running(self, spec: JobSpec, worker: str, now: datetime) -> Job:
        """Store a job already running its first attempt (a foreground ``run``)."""
        job_id = self.conn.execute("SELECT nextval('job_ids')").fetchone()[0]
        self.conn.execute(
            "INSERT INTO queue (id, target, args, kwargs, status, priority, attempts, "
            "max_attempts, retry_delay, retry_backoff, timeout, created_at, run_at, started_at, "
            "worker) VALUES (?, ?, ?, ?, 'running', ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)",
            [job_id, spec.target, json.dumps(spec.args), json.dumps(spec.kwargs), spec.priority,
             spec.policy.max_attempts, spec.policy.retry_delay, spec.policy.retry_backoff,
             spec.policy.timeout, _naive(now), _naive(spec.run_at), _naive(now), worker])
        return self.get(job_id)

    def restart(self, job_id: int, outcome: Outcome, now: datetime) -> Job:
        """Record a failed attempt of a running foreground job and count the next one."""
        self._transition(
            job_id, "attempts = attempts + 1, started_at = ?, error = ?, output = ?",
            [_naive(now), outcome.error, outcome.output], JobStatus.RUNNING)
        return self.get(job_id)

    def finish(self, job_id: int, outcome: Outcome, now: datetime) -> str:
        """Record the last attempt of a running job as final; returns the new status."""
        if outcome.succeeded:
            status = JobStatus.COMPLETED
        elif outcome.kind is OutcomeKind.CANCELLED:
            status = JobStatus.CANCELLED
        else:
            status = JobStatus.FAILED
        self._transition(
            job_id, "status = ?, finished_at = ?, error = ?, result = ?, output = ?, worker = NULL",
            [status.value, _naive(now), outcome.error,
             json.dumps(outcome.result) if outcome.succeeded else None, outcome.output],
            JobStatus.RUNNING)
        return status.value

    def schedule_retry(self, job_id: int, run_at: datetime, outcome: Outcome, now: datetime) -> None:
        """Put a running job whose attempt failed back to pending, to run again at ``run_at``."""
        self._transition(
            job_id, "status = 'pending', run_at = ?, finished_at = ?, error = ?, output = ?, "
            "worker = NULL", [_naive(run_at), _naive(now), outcome.error, outcome.output],
            JobStatus.RUNNING)
        priority = self.conn.execute("SELECT priority FROM queue WHERE id = ?", [job_id]).fetchone()[0]
        self.conn.execute("INSERT INTO pending VALUES (?, ?, ?)", [job_id, priority, _naive(run_at)])

    def cancel(self, job_id: int, now: datetime) -> str:
        """Cancel a pending job at once, or flag a running one for its worker to stop.

        Returns the status the job had before: ``pending`` (now cancelled), ``running`` (now
        flagged) or a final status (nothing changed).
        """
        status = self.get(job_id).status
        if status == JobStatus.PENDING:
            self.conn.execute("DELETE FROM pending WHERE id = ?", [job_id])
            self._transition(job_id, "status = 'cancelled', finished_at = ?", [_naive(now)],
                             JobStatus.PENDING)
        elif status == JobStatus.RUNNING:
            self.conn.execute("UPDATE queue SET cancel_requested = true WHERE id = ?", [job_id])
        return status

    def reindex_pending(self) -> None:
        """Rebuild the ``pending`` table from the jobs (a worker starting up)."""
        self.conn.execute("DELETE FROM pending")
        self.conn.execute("INSERT INTO pending SELECT id, priority, run_at FROM queue "
                          "WHERE status = 'pending'")

    def active_jobs(self) -> list[tuple[Job, str | None, bool]]:
        """Every pending and running job, with the worker that claimed it and whether a cancel
        was asked; the worker keeps these in memory while it runs. A row whose arguments are
        not a JSON list and object (written by other means) is failed here instead, with the
        reason, and left out: it fails alone (SPEC §14)."""
        rows = self.conn.execute(
            f"SELECT {_COLUMNS}, worker, cancel_requested FROM queue "
            "WHERE status IN ('pending', 'running') ORDER BY id").fetchall()
        loaded = []
        for row in rows:
            job = _job_from_row(row[:-2])
            if isinstance(job.args, list) and isinstance(job.kwargs, dict):
                loaded.append((job, row[-2], row[-1]))
                continue
            logger.warning("job %d cannot be loaded: its arguments are not JSON", job.id)
            self.conn.execute("DELETE FROM pending WHERE id = ?", [job.id])
            self.conn.execute(
                "UPDATE queue SET status = 'failed', finished_at = ?, worker = NULL, error = ? "
                "WHERE id = ?", [_naive(datetime.now(timezone.utc)),
                                 "the job's stored arguments are not a JSON list and object; "
                                 "nothing ran; dispatch it again", job.id])
        return loaded

    #: the columns ``write_states`` sets, in the order of its tuples
    STATE_COLUMNS = ("id", "status", "attempts", "run_at", "started_at", "finished_at", "error",
                     "result", "output", "progress", "progress_message", "worker", "priority")
    #: what ``write_states`` inserts for a job that came through the inbox, before its state
    NEW_COLUMNS = ("id", "target", "args", "kwargs", "max_attempts", "retry_delay",
                   "retry_backoff", "timeout", "created_at")

    def write_states(self, rows: list[tuple], new: list[tuple] = ()) -> None:
        """Set the state of many jobs at once (the worker's group commit).

        ``rows`` are tuples in the order of STATE_COLUMNS: a job's whole state after any
        number of transitions, so a batch costs a few statements however it was reached.
        ``new`` (NEW_COLUMNS) are jobs still in the inbox: they are moved into the queue with
        the state their row in ``rows`` gives. ``result`` is JSON text. The pending table
        follows the new statuses.
        """
        if not rows:
            return
        # Python lists as array parameters, zipped back into rows by unnest: as fast as an
        # Arrow table here, and the worker does not have to load pyarrow (~100 MB) for it.
        columns = [list(c) for c in zip(*rows)]
        for i in (3, 4, 5):
            columns[i] = [t and _naive(t) for t in columns[i]]
        types = ("BIGINT", "VARCHAR", "INTEGER", "TIMESTAMP", "TIMESTAMP", "TIMESTAMP", "VARCHAR",
                 "VARCHAR", "VARCHAR", "DOUBLE", "VARCHAR", "VARCHAR", "INTEGER")
        states = "(SELECT " + ", ".join(
            f"unnest(?::{t}[]) AS {name}" for t, name in zip(types, self.STATE_COLUMNS)) + ")"
        if new:
            self._move_from_inbox(new, states, columns)
        self.conn.execute(
            "UPDATE queue SET status = b.status, attempts = b.attempts, run_at = b.run_at, "
            "started_at = b.started_at, finished_at = b.finished_at, error = b.error, "
            "result = b.result, output = b.output, progress = b.progress, "
            "progress_message = b.progress_message, worker = b.worker "
            f"FROM {states} AS b WHERE queue.id = b.id", columns)
        self.conn.execute("DELETE FROM pending WHERE id IN (SELECT unnest(?::BIGINT[]))", [columns[0]])
        if JobStatus.PENDING.value in columns[1]:
            self.conn.execute(f"INSERT INTO pending SELECT id, priority, run_at FROM {states} "
                              "WHERE status = 'pending'", columns)

    def _move_from_inbox(self, new: list[tuple], states: str, state_columns: list[list]) -> None:
        """Insert inbox jobs into the queue (priority and run_at from the batch's states)."""
        columns = [list(c) for c in zip(*new)]
        columns[8] = [_naive(t) for t in columns[8]]
        types = ("BIGINT", "VARCHAR", "VARCHAR", "VARCHAR", "INTEGER", "DOUBLE", "DOUBLE",
                 "DOUBLE", "TIMESTAMP")
        fresh = "SELECT " + ", ".join(
            f"unnest(?::{t}[]) AS {name}" for t, name in zip(types, self.NEW_COLUMNS))
        self.conn.execute(
            "INSERT INTO queue (id, target, args, kwargs, status, priority, attempts, "
            "max_attempts, retry_delay, retry_backoff, timeout, created_at, run_at) "
            f"SELECT n.id, n.target, n.args, n.kwargs, 'pending', b.priority, 0, n.max_attempts, "
            f"n.retry_delay, n.retry_backoff, n.timeout, n.created_at, b.run_at "
            f"FROM ({fresh}) AS n JOIN {states} AS b USING (id)", columns + state_columns)
        self.conn.execute("DELETE FROM inbox WHERE id IN (SELECT unnest(?::BIGINT[]))", [columns[0]])

    def reserve_ids(self, count: int) -> list[int]:
        """``count`` new job ids from the sequence, for the worker to hand out itself."""
        return [row[0] for row in self.conn.execute(
            "SELECT nextval('job_ids') FROM range(?)", [count]).fetchall()]

    def put_in_inbox(self, job_id: int, spec: JobSpec, now: datetime) -> None:
        """Durably accept one dispatch for the running worker: one narrow row, one statement."""
        job = {"target": spec.target, "args": spec.args, "kwargs": spec.kwargs,
               "priority": spec.priority, "run_at": _naive(spec.run_at).isoformat(),
               "created_at": _naive(now).isoformat(), "max_attempts": spec.policy.max_attempts,
               "retry_delay": spec.policy.retry_delay, "retry_backoff": spec.policy.retry_backoff,
               "timeout": spec.policy.timeout}
        self.conn.execute("INSERT INTO inbox VALUES (?, ?)", [job_id, json.dumps(job)])

    def drain_inbox(self) -> int:
        """Move every inbox row into the queue as a pending job (after a worker stopped or
        died before its group commit did); returns how many.

        Each row is checked as a client's dispatch would be: a row that cannot be read (written
        by other means, or by a version with a bug) becomes a failed job with the reason, so it
        fails alone and the queue still opens (SPEC §14).
        """
        rows = self.conn.execute("SELECT id, job FROM inbox ORDER BY id").fetchall()
        good: list[tuple[Any, ...]] = []
        for job_id, text in rows:
            try:
                good.append(_inbox_job(job_id, text))
            except (InvalidArgumentsError, ValueError, TypeError, KeyError, RecursionError) as exc:
                logger.warning("inbox row of job %s cannot be read: %s", job_id, exc)
                self._insert_unreadable(job_id, text, f"{type(exc).__name__}: {exc}")
        if good:
            columns = [list(c) for c in zip(*good, strict=True)]
            fields = ", ".join(f"unnest(?::{t}[]) AS {name}" for name, t in _INBOX_FIELDS)
            self.conn.execute(
                "INSERT INTO queue (id, target, args, kwargs, status, priority, attempts, "
                "max_attempts, retry_delay, retry_backoff, timeout, created_at, run_at) "
                "SELECT id, target, args, kwargs, 'pending', priority, 0, max_attempts, "
                f"retry_delay, retry_backoff, timeout, created_at, run_at FROM (SELECT {fields})",
                columns)
            self.conn.execute("INSERT INTO pending SELECT unnest(?::BIGINT[]), "
                              "unnest(?::INTEGER[]), unnest(?::TIMESTAMP[])",
                              [columns[0], columns[4], columns[-1]])
        self.conn.execute("DELETE FROM inbox")
        return len(rows)

    def _insert_unreadable(self, job_id: int, text: Any, reason: str) -> None:
        """A failed job standing for an inbox row that could not be read, with the reason."""
        now = _naive(datetime.now(timezone.utc))
        target = "(unreadable)"
        try:
            found = json.loads(text).get("target")
            if isinstance(found, str) and found:
                target = validate.text(found)[:1000]
        except (ValueError, TypeError, AttributeError, RecursionError):
            pass
        self.conn.execute(
            "INSERT OR REPLACE INTO queue (id, target, args, kwargs, status, priority, attempts, "
            "max_attempts, retry_delay, retry_backoff, timeout, created_at, run_at, finished_at, "
            "error) VALUES (?, ?, '[]', '{}', 'failed', 0, 0, 1, 0, 1, NULL, ?, ?, ?, ?)",
            [job_id, target, now, now, now,
             validate.text(f"the stored dispatch of this job could not be read ({reason}); "
                           "nothing ran; dispatch it again")])

    def prune(self, before: datetime) -> int:
        """Delete completed, failed and cancelled jobs that finished before ``before``; the count."""
        return self.conn.execute(
            "DELETE FROM queue WHERE status IN ('completed', 'failed', 'cancelled') "
            "AND finished_at < ?", [_naive(before)]).fetchone()[0]

    def query(self, name: str, *args: Any) -> "pa.Table":
        """The Arrow table of one of the named QUERIES (history, stats, sql)."""
        sql, params = QUERIES[name](*args)
        try:
            return self.conn.sql(sql, params=params or None).to_arrow_table()
        except duckdb.Error as exc:
            if name == "sql":
                raise InvalidArgumentsError(f"nj.sql: {exc}") from exc
            raise

    def record_progress(self, job_id: int, fraction: float, message: str | None) -> None:
        """Store the progress a running job reported; ignored once it is no longer running."""
        self.conn.execute(
            "UPDATE queue SET progress = ?, progress_message = ? WHERE id = ? AND status = 'running'",
            [fraction, message, job_id])

    def _transition(self, job_id: int, assignments: str, params: list[Any],
                    expected: JobStatus) -> None:
        count = self.conn.execute(
            f"UPDATE queue SET {assignments} WHERE id = ? AND status = ?",
            [*params, job_id, expected.value]).fetchone()[0]
        if count == 0:
            status = self.get(job_id).status  # raises JobNotFoundError for unknown ids
            raise JobStateError(f"job {job_id} is {status}, not {expected.value}")

    # --- reads -------------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        """The job with this id; ``JobNotFoundError`` when there is none."""
        row = self.conn.execute(f"SELECT {_COLUMNS} FROM queue WHERE id = ?", [job_id]).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job has id {job_id}; `notebookjobs list` shows the queue")
        return _job_from_row(row)

    def page(self, page: int, per_page: int, status: str | None) -> tuple[list[Job], int]:
        """One page of jobs, newest first, and the number of jobs matching ``status``."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        total = self.conn.execute(f"SELECT count(*) FROM queue {where}", params).fetchone()[0]
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM queue {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, per_page, (page - 1) * per_page]).fetchall()
        return [_job_from_row(r) for r in rows], total

    def all_jobs(self) -> list[Job]:
        """Every job, oldest first."""
        rows = self.conn.execute(f"SELECT {_COLUMNS} FROM queue ORDER BY id").fetchall()
        return [_job_from_row(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Number of jobs in each status (all five keys present)."""
        counts = {s.value: 0 for s in JobStatus}
        for status, n in self.conn.execute("SELECT status, count(*) FROM queue GROUP BY status").fetchall():
            counts[status] = n
        return counts


class Database:
    """A connection kept open for a process's lifetime (the worker); one transaction at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)

    @contextmanager
    def transaction(self) -> Iterator[JobStore]:
        """Run the block as one transaction: committed at the end, rolled back on error."""
        try:
            with _atomic(self.conn):
                yield JobStore(self.conn)
        except duckdb.Error as exc:
            raise StorageError(f"queue database {self.path}: {exc}") from exc

    @contextmanager
    def single_statement(self) -> Iterator[JobStore]:
        """For an operation of one statement: DuckDB's autocommit makes it atomic, and an
        explicit BEGIN/COMMIT would add about 0.4 ms to the dispatch path."""
        try:
            yield JobStore(self.conn)
        except duckdb.Error as exc:
            raise StorageError(f"queue database {self.path}: {exc}") from exc

    def close(self) -> None:
        self.conn.close()


@contextmanager
def _atomic(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def transaction(path: Path) -> Iterator[JobStore]:
    """Open the file, run one transaction, commit (or roll back on error) and close it.

    The caller must hold the file lock (see ``access``): DuckDB lets one process at a time
    open a database file.
    """
    with files.private_umask():  # the WAL is created by the first write, with the umask's mode
        conn = connect(path)
        try:
            with _atomic(conn):
                yield JobStore(conn)
        except duckdb.Error as exc:
            raise StorageError(f"queue database {path}: {exc}") from exc
        finally:
            conn.close()
