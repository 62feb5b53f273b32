"""Moving the dispatch journal's records into the queue (``notebookjobs.journal``).

Whoever opens the queue file (a client without a worker, or a worker starting) replays the
journal first, under its lock, so every read sees every acknowledged dispatch; the running
worker moves records itself, with its group commit. ``meta.journal_applied`` is the highest
id whose record reached the queue: a record at or below it is never inserted again (a crash
between the commit and the journal's reset replays nothing twice), and a job pruned since is
not brought back.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import duckdb

from .. import journal
from .sql import QUERIES

logger = logging.getLogger(__name__)

#: meta key: the highest job id whose journal record is in the queue table
APPLIED = "journal_applied"
#: the length of a journal that holds its base record alone: nothing to replay
BASE_ONLY = len(journal.encode(journal.BASE, 0, 0))


def meta_int(conn: duckdb.DuckDBPyConnection, key: str) -> int:
    row = conn.execute(QUERIES["get_meta"], [key]).fetchone()
    return int(row[0]) if row else 0


def replay(conn: duckdb.DuckDBPyConnection, log: journal.Journal) -> int:
    """Insert the jobs of the journal's records not yet in the queue, commit, and reset the
    journal to its base record (writing one if it has none); how many jobs were inserted.
    The caller holds the queue file's lock; this takes the journal's."""
    if 0 < log.size() <= BASE_ONLY:
        return 0  # the common case: nothing was appended since the last reset
    from .jobs import JobStore  # the store's operations need the schema; not the other way

    with log.locked() as fd:
        records = list(journal.read(fd, 0))
        conn.execute("BEGIN TRANSACTION")
        try:
            store = JobStore(conn)
            applied = meta_int(conn, APPLIED)
            jobs = [job for record in records if record.last_id > applied
                    for job in journal.readable_jobs(record, datetime.now(UTC)) if job.id > applied]
            present = {row[0] for row in conn.execute(
                QUERIES["ids_from"], [min((j.id for j in jobs), default=0)]).fetchall()}
            fresh = [job for job in jobs if job.id not in present]
            store.insert(fresh)
            last = max([store.last_id(), *(r.last_id for r in records)])
            conn.execute(QUERIES["set_meta"], [APPLIED, str(last)])
            store.set_last_id(last)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.reset(fd, last)
    if fresh:
        logger.info("moved %d dispatch(es) from the journal into the queue", len(fresh))
    return len(fresh)
