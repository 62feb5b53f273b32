"""Moving the dispatch journal's records into the queue (``notebookjobs.journal``).

Whoever opens the queue file (a client without a worker, or a worker starting) replays the
journal first, under its lock, so every read sees every acknowledged dispatch; the running
worker moves records itself, with its group commit. The file's record of the id ledger
(``journal.ledger``; ``JobStore.applied``) says the highest id whose record reached the queue:
a record at or below it is never inserted again (a crash between the commit and the journal's
reset replays nothing twice), and a job pruned since is not brought back.

The queue file's last id (``JobStore.last_id``) becomes the highest id the journal ever handed
out (its head says, also after its records were cut), so a queue file rebuilt from the journal,
or a journal lost later, never numbers a job again. What cannot be applied is said in the log:
damaged bytes skipped, ids handed out whose records are gone, and records that are not jobs
(those become failed jobs that say why, ``journal.readable_jobs``).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime

import duckdb

from .. import journal
from .sql import QUERIES

logger = logging.getLogger(__name__)

def replay(conn: duckdb.DuckDBPyConnection, log: journal.Journal, *, full: bool = False) -> int:
    """Insert the jobs of the journal's records not yet in the queue, commit, and reset the
    journal to its head (writing one if it has none); how many jobs were inserted. ``full``:
    also when the journal holds its head alone (a rebuilt queue file takes its last id from
    it). The caller holds the queue file's lock; this takes the journal's."""
    if log.size() == journal.HEAD_SIZE and not full:
        return 0  # the common case: nothing was appended since the last reset
    from .jobs import JobStore  # the store's operations need the schema; not the other way

    with log.locked() as fd:
        survey = log.survey(fd)
        for damage in survey.damage:
            logger.warning("%s", damage.describe(log.path))
        conn.execute("BEGIN TRANSACTION")
        try:
            store = JobStore(conn)
            applied = store.applied()
            stored = store.last_id()
            jobs = [job for record in survey.records if record.last_id > applied
                    for job in journal.readable_jobs(record, datetime.now(UTC)) if job.id > applied]
            present = {row[0] for row in conn.execute(
                QUERIES["ids_from"], [min((j.id for j in jobs), default=0)]).fetchall()}
            fresh = [job for job in jobs if job.id not in present]
            store.insert(fresh)
            last = max(stored, survey.last_id)
            store.set_ids(last_id=last, applied=last)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # a COMMIT that failed has rolled back
                conn.execute("ROLLBACK")
            raise
        _report_gone(log, survey, stored)
        log.reset(fd, last)
    if fresh:
        logger.info("moved %d dispatch(es) from the journal into the queue", len(fresh))
    return len(fresh)


def _report_gone(log: journal.Journal, survey: journal.Survey, stored: int) -> None:
    """Ids the journal's head says were handed out, that neither a record nor the queue file
    holds or held (``Head.applied``: a job pruned since is not missing): the journal was cut
    below them (or their appends never returned, in a crash)."""
    if survey.head is None:
        return
    held = max([stored, survey.head.applied, *(r.last_id for r in survey.records)])
    if survey.head.last_id > held:
        logger.warning("ids %d..%d were handed out by the dispatch journal %s, but neither it "
                       "nor the queue file holds them: the journal was cut (or those dispatches "
                       "never returned, in a crash); they are lost and no job gets them again",
                       held + 1, survey.head.last_id, log.path)
