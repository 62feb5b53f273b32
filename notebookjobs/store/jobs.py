"""``JobStore``: the queue's reads and writes over one open connection, inside the caller's
transaction (``store.transaction`` or the worker's ``Database`` decide who opens the file).

Methods take and return ``Job`` records; rows cross to and from DuckDB by column name
(``columns``). A client without a worker changes a job with a function of ``transitions`` and
``save``s it guarded by the status it read; the worker's batch writes are in ``batch``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb

from ..errors import JobNotFoundError, JobStateError
from ..model.records import Job, JobStatus
from .columns import COLUMNS, MUTABLE, column_values, jobs_from_rows, naive
from .sql import QUERIES, literal
from .tables import Reader

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

def _unnest(columns: tuple[Any, ...]) -> str:
    """``SELECT unnest(?::T[]) AS name, ...``: rows from one array parameter per column."""
    return "SELECT " + ", ".join(f"unnest(?::{c.type}[]) AS {c.name}" for c in columns)


_INSERT = (f"INSERT INTO queue ({', '.join(c.name for c in COLUMNS)}) "
           f"SELECT * FROM ({_unnest(COLUMNS)})")
_UPDATE = ("UPDATE queue SET " + ", ".join(f"{c.name} = b.{c.name}" for c in MUTABLE)
           + f" FROM ({_unnest((COLUMNS[0], *MUTABLE))}) AS b WHERE queue.id = b.id")
#: the orders of a page of jobs (``nj.jobs(order=...)``) -> the SQL that sorts them
PAGE_ORDERS = {
    "newest": "id DESC",
    "oldest": "id",
    # The jobs at work first, so that a long queue's first page shows what runs now; then the
    # pending ones in the order the worker takes them (SPEC §5: priority, run_at, id), then the
    # rest, newest first.
    "running": ("CASE status WHEN 'running' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END, "
                "CASE WHEN status = 'pending' THEN -priority END, "
                "CASE WHEN status = 'pending' THEN run_at END, "
                "CASE WHEN status = 'pending' THEN id ELSE -id END"),
    "priority": "priority DESC, id DESC",
}
#: the meta keys of the id ledger's copy in the file (``journal.ledger``): the highest id handed
#: out, and the highest whose journal record is in the queue table (a replay inserts no record
#: at or below it again)
_LAST_ID, _APPLIED = "last_id", "journal_applied"
_SAVE_GUARDED = ("UPDATE queue SET " + ", ".join(f"{c.name} = ?" for c in MUTABLE)
                 + " WHERE id = ? AND status = ?")


def _result_chars(values: list[list[Any]], columns: tuple[Any, ...]) -> int:
    """The characters of the ``result`` texts among a statement's ``column_values``."""
    [at] = [i for i, column in enumerate(columns) if column.name == "result"]
    return sum(len(text) for text in values[at] if text is not None)


class JobStore:
    """The queue's operations over one connection; each method documents what it returns
    when nothing matches. None commits: the caller's transaction makes them atomic."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, *, sandboxed: bool = False) -> None:
        self.conn = conn
        #: its instance reads no file but the queue's (``tables.lock_down``): a user's SQL may
        #: run on it
        self.sandboxed = sandboxed

    # --- reads ---------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        """The job with this id; ``JobNotFoundError`` when there is none."""
        found = self._jobs(QUERIES["get_job"], [job_id])
        if not found:
            raise JobNotFoundError(f"no job has id {job_id}; `notebookjobs list` shows the queue")
        return found[0]

    def get_many(self, job_ids: list[int]) -> list[Job]:
        """The jobs with these ids, in id order; an id without a job is left out."""
        return self._jobs(QUERIES["get_jobs"], [job_ids])

    def _jobs(self, statement: str, parameters: list[Any]) -> list[Job]:
        """The jobs of a statement that selects ``{columns}``, read by column name."""
        result = self.conn.execute(statement, parameters)
        return jobs_from_rows(result.description, result.fetchall())

    def page(self, page: int, per_page: int, status: str | None, order: str = "newest",
             search: str | None = None) -> tuple[list[Job], int]:
        """One page of jobs in ``order`` (a key of PAGE_ORDERS), and how many jobs have
        ``status`` (None: all) and contain ``search`` (None: all) in their target or
        arguments, without regard to case. A page past the end is an empty list."""
        text = None if search is None else search.lower()
        where = [status, status, text, text, text, text]
        skip = (page - 1) * per_page
        sql = QUERIES["page_jobs"].replace("{order}", PAGE_ORDERS[order])
        jobs = self._jobs(sql, [*where, per_page, skip])
        if 0 < len(jobs) < per_page or (not jobs and not skip):
            # The last page, or none at all: the total is known without a second scan of the
            # queue (a search found in one job of 1,000,000 scanned them twice: ~60 ms here).
            return jobs, skip + len(jobs)
        total = self.conn.execute(QUERIES["count_jobs"], where).fetchone()[0]  # type: ignore[index]
        return jobs, total

    def counts(self) -> dict[str, int]:
        """How many jobs are in each status; all five keys, 0 for none."""
        counts = {s.value: 0 for s in JobStatus}
        for status, n in self.conn.execute(QUERIES["counts_by_status"]).fetchall():
            counts[status] = n
        return counts

    def table(self, name: str, args: tuple[Any, ...], limit: float) -> pa.Table:
        """The Arrow table of a named table (history, stats, schedules) on this connection,
        within ``limit`` seconds (``tables.Reader``); a user's SQL runs only where the
        instance is ``sandboxed`` (``store.read_table``, ``store.empty``, the worker's
        ``Database.reader``)."""
        return Reader(self.conn, sandboxed=self.sandboxed).table(name, args, limit)

    def memory_limit(self) -> str:
        """DuckDB's memory limit, as text it takes back (``shed_memory``)."""
        row = self.conn.execute(QUERIES["memory_limit"]).fetchone()
        assert row is not None  # a setting always has a value
        return str(row[0])

    def shed_memory(self, limit: str) -> None:
        """Give back the memory a large read or write cached (DuckDB keeps table blocks it has
        read until its memory limit is reached): a checkpoint first, since what was committed
        since the last one stays in memory, unevictable (a 100 MB result: 128 MB); then a lower
        limit evicts the blocks, and ``limit`` (from ``memory_limit``) is set again, also when
        the eviction fails. Outside any transaction, with no other connection in one."""
        try:
            self.conn.execute(QUERIES["checkpoint"])
            self.conn.execute(QUERIES["shed_memory"])
        finally:
            # Set by value: RESET leaves DuckDB 1.2's buffer pool at the low limit (the setting
            # reads back the old one), and the next large read fails "Out of Memory".
            self.conn.execute(QUERIES["set_memory_limit"].replace("{limit}", literal(limit)))

    def statuses(self, ids: list[int] | tuple[int, ...]) -> dict[int, str]:
        """id -> status of the jobs among ``ids``; an id with no job is absent."""
        if not ids:
            return {}
        return dict(self.conn.execute(QUERIES["job_statuses"], [list(ids)]).fetchall())

    def waiting_on(self, job_id: int) -> list[Job]:
        """The pending jobs whose ``after`` names ``job_id``, oldest first; [] for none."""
        return self._jobs(QUERIES["waiting_on"], [job_id])

    def unique_job(self, key: str) -> int | None:
        """The id of the pending or running job with unique key ``key``; None for none."""
        row = self.conn.execute(QUERIES["unique_job"], [key]).fetchone()
        return None if row is None else int(row[0])

    def schedule_ticks(self) -> dict[str, tuple[str, datetime]]:
        """name -> (definition, last tick, UTC) of every schedule the worker has recorded."""
        return {name: (definition, tick.replace(tzinfo=UTC)) for name, definition, tick in
                self.conn.execute(QUERIES["schedule_ticks"]).fetchall()}

    def last_id(self) -> int:
        """The highest job id ever handed out, as the file knows it (0 for none): the
        ledger's copy in the file (``journal.ledger``)."""
        row = self.conn.execute(QUERIES["get_meta"], [_LAST_ID]).fetchone()
        stored = self.conn.execute(QUERIES["max_id"]).fetchone()[0]  # type: ignore[index]
        return max(int(row[0]) if row else 0, stored)

    def applied(self) -> int:
        """The highest id whose journal record is in the queue table (0 for none)."""
        row = self.conn.execute(QUERIES["get_meta"], [_APPLIED]).fetchone()
        return int(row[0]) if row else 0

    # --- writes ----------------------------------------------------------------------------

    def set_ids(self, *, last_id: int | None = None, applied: int | None = None) -> None:
        """Record the highest id handed out, and the highest whose journal record is in the
        queue table (``last_id``, ``applied``; None: unchanged)."""
        for key, value in ((_LAST_ID, last_id), (_APPLIED, applied)):
            if value is not None:
                self.conn.execute(QUERIES["set_meta"], [key, str(value)])

    def insert(self, jobs: list[Job]) -> int:
        """Store new jobs (every column), in one statement; the characters of their results
        (``save_all``)."""
        if not jobs:
            return 0
        values = column_values(jobs, COLUMNS)
        self.conn.execute(_INSERT, values)
        return _result_chars(values, COLUMNS)

    def insert_uniform(self, jobs: list[Job], varying: tuple[str, ...]) -> None:
        """Store new jobs that differ only in the ``varying`` columns (a batch): those go as
        arrays, the others once, from the first job. Faster than ``insert`` for 100,000."""
        if not jobs:
            return
        first = jobs[0]
        parts, params = [], []
        for column in COLUMNS:
            if column.name in varying:
                parts.append(f"unnest(?::{column.type}[]) AS {column.name}")
                params.append(column_values(jobs, (column,))[0])
            else:
                parts.append(f"?::{column.type} AS {column.name}")
                params.append(column_values([first], (column,))[0][0])
        self.conn.execute(f"INSERT INTO queue ({', '.join(c.name for c in COLUMNS)}) "
                          f"SELECT * FROM (SELECT {', '.join(parts)})", params)

    def save(self, job: Job, expected: str) -> None:
        """Write a job's changed state, guarded: ``JobStateError`` unless it is still in status
        ``expected`` (someone else moved it meanwhile); ``JobNotFoundError`` for no job."""
        count = self.conn.execute(
            _SAVE_GUARDED, [*(v[0] for v in column_values([job], MUTABLE)), job.id, expected]
        ).fetchone()[0]  # type: ignore[index]
        if count == 0:
            status = self.get(job.id).status
            raise JobStateError(f"job {job.id} is {status}, not {expected}")

    def save_all(self, jobs: list[Job]) -> int:
        """Write the state of many jobs by id (the worker's group commit: a few statements
        however many jobs, whatever transitions brought them there); the characters of their
        results, as JSON text: DuckDB keeps what it wrote cached, and a large result's worth is
        given back only by ``Database.shed_memory``."""
        if not jobs:
            return 0
        values = column_values(jobs, (COLUMNS[0], *MUTABLE))
        self.conn.execute(_UPDATE, values)
        return _result_chars(values, (COLUMNS[0], *MUTABLE))

    def set_schedule_tick(self, name: str, definition: str, tick: datetime,
                          job_id: int | None) -> None:
        """Record a schedule's last tick (and the job it dispatched; None keeps the last one)."""
        self.conn.execute(QUERIES["set_schedule_tick"], [name, definition, naive(tick), job_id])

    def prune(self, before: datetime) -> list[int]:
        """Delete completed, failed and cancelled jobs that finished before ``before``; their
        ids (their result files go with them: ``access.meaning.StoreQueue.prune``)."""
        sql = QUERIES["prune"].replace("{prunable}", QUERIES["prunable"])
        return [row[0] for row in self.conn.execute(sql, [naive(before)]).fetchall()]

    def argument_texts(self) -> list[str]:
        """The JSON texts of the args and kwargs of the jobs that refer to argument files (a
        text each); none when no job does."""
        rows = self.conn.execute(QUERIES["argument_texts"]).fetchall()
        return [text for row in rows for text in row]

    # --- the worker's start ----------------------------------------------------------------

    def active_jobs(self) -> list[Job]:
        """Every pending and running job, for a worker starting up. A row whose arguments
        are not a JSON list and object (written by other means) is failed here instead, with
        the reason, and left out: it fails alone (SPEC §14)."""
        loaded = []
        for job in self._jobs(QUERIES["active_jobs"], []):
            if isinstance(job.args, list) and isinstance(job.kwargs, dict):
                loaded.append(job)
                continue
            logger.warning("job %d cannot be loaded: its arguments are not JSON", job.id)
            self.conn.execute(QUERIES["fail_unloadable"], [
                naive(datetime.now(UTC)),
                "the job's stored arguments are not a JSON list and object; nothing ran; "
                "dispatch it again", job.id])
        return loaded
