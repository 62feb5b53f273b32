"""A queue file DuckDB cannot open because it was emptied or cut (a full disk when it was
created by an older version, a ``truncate``, a copy that stopped short): found when the file is
opened and by the running worker (``worker.main``), reported with what to do, and rebuilt from
the dispatch journal where the journal holds what it needs.

What the journal holds (``notebookjobs.journal``): the record of every dispatch made since it
was last reset, and in its head the highest id ever handed out. It is reset to its head alone
each time a process opens the queue file (a worker starting; a client while no worker runs)
and when a running worker has committed more than 1 MiB of records. So from the journal alone
a queue can get back:

- every dispatch whose record is still in it, as a pending job (one that had run runs again);
- its id counter: no id is ever handed out twice.

And it cannot get back what only the file held: jobs whose records were moved into it before
the journal's last reset; every job's state, attempts, error, result and output; jobs stored
without a journal record (a foreground ``notebookjobs run``, a dispatch with ``after`` or
``unique``, a schedule's tick); the schedules' last ticks (a missed tick then runs once).

So a damaged file is set aside (renamed, never deleted) and the queue rebuilt without asking
only when it is one whose creation never finished (shorter than DuckDB's headers: a full disk,
a kill while it was made) and the journal holds every job it ever had: the journal is the
queue's (it has a head: every open writes one), the file never took a record of it (the head's
``applied`` is 0) and no job was stored into it directly (no RESERVE record). Otherwise opening
it fails with one line that says what happened, what the journal still holds and what to do:
restore the file from a backup, or move it aside, after which the next open rebuilds what the
journal has. (A file that is not a queue at all, named by a mistaken NOTEBOOKJOBS_DB, is so
never touched.)
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from .. import journal
from ..errors import StorageError

logger = logging.getLogger(__name__)

#: DuckDB writes three 4 KiB headers when it creates a file (its size is 12,288 bytes before
#: the first table): a shorter file is not one it can open
MIN_FILE_BYTES = 3 * 4096
#: DuckDB's main header: an 8-byte checksum, then these magic bytes. It is written once, when
#: the file is created (checkpoints write the two headers after it), so a file that lost them
#: was cut or overwritten.
_MAGIC_AT, _MAGIC = 8, b"DUCK"
#: what DuckDB says when it opens a file shorter than its headers say (cut in the middle)
_CUT_MESSAGE = "Could not read enough bytes"


def damage(path: Path) -> str | None:
    """What is wrong with the queue file at ``path`` when it is emptied or cut below its
    headers; None for a file that looks whole, or no file."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            start = fh.read(_MAGIC_AT + len(_MAGIC))
    except OSError:  # none (a new queue), or unreadable: DuckDB says why when it opens it
        return None
    if size == 0:
        return "it is empty (0 bytes)"
    if size < MIN_FILE_BYTES or start[_MAGIC_AT:] != _MAGIC:
        return f"it is {size:,} bytes and has no DuckDB header"
    return None


def cut_error(exc: BaseException) -> str | None:
    """What DuckDB's error at an open says of the file, when it says the file was cut."""
    return "it is shorter than its own headers say" if _CUT_MESSAGE in str(exc) else None


def check(path: Path) -> bool:
    """Before ``path`` is opened (under the queue's lock, its folder made): whether the file is
    to be made anew. A damaged file is set aside when the journal holds every job it had (the
    queue is then rebuilt from the journal); ``StorageError`` saying what to do when it does
    not. A file to be made gets its journal's head first, so that a making cut short (a full
    disk, a kill) leaves a file known to be this queue's, and empty."""
    log = journal.Journal(path)
    what = damage(path)
    if what is None:
        if path.exists():
            return False
        with log.locked() as fd:
            if os.fstat(fd).st_size == 0:
                log.reset(fd, 0)
        return True
    survey = surveyed(log)
    if not rebuildable(survey) or path.stat().st_size >= MIN_FILE_BYTES:
        raise refusal(path, what, survey)
    aside = set_aside(path)
    logger.warning("the queue file %s was damaged (%s) and held nothing the dispatch journal "
                   "does not: set aside as %s, and rebuilt from the journal (%d dispatch(es))",
                   path, what, aside.name, sum(r.last_id - r.first_id + 1 for r in survey.jobs))
    return True


def surveyed(log: journal.Journal) -> journal.Survey:
    """What the journal holds (``journal.Survey``), read under its lock."""
    if not log.path.exists():  # (not made here: the file may be no queue's, by a mistake)
        return journal.Survey(None)
    try:
        with log.locked() as fd:
            return log.survey(fd)
    except journal.NoBase:  # no queue folder: nothing was ever written
        return journal.Survey(None)


def rebuildable(survey: journal.Survey) -> bool:
    """Whether the journal holds every job the queue file ever had: it is the queue's (it has
    a head), the file never took a record of it, and no job was stored into the file without
    one (a RESERVE record is left by each)."""
    return (survey.head is not None and survey.head.applied == 0
            and not any(r.kind == journal.RESERVE for r in survey.records))


def refusal(path: Path, what: str, survey: journal.Survey) -> StorageError:
    """The one line a command gets for a damaged queue file the journal cannot rebuild whole."""
    jobs = survey.jobs
    count = sum(r.last_id - r.first_id + 1 for r in jobs)
    held = (f"the dispatch journal holds {count} dispatch(es)"
            + (f" (ids {jobs[0].first_id}..{jobs[-1].last_id})" if jobs else ""))
    if rebuildable(survey):
        held += ", every job the file had"
    else:
        held += (", which a rebuild brings back as pending (those that had run will run "
                 "again); every other job, and every job's state and result, was only in the file")
    return StorageError(
        f"cannot open the queue database {path}: {what} (emptied or cut, by a full disk or by "
        f"other means); {held}. Restore it from a backup, or move it aside to rebuild the queue "
        f"from the journal (ids go on after {survey.last_id}): mv {path} {path}.broken")


def set_aside(path: Path) -> Path:
    """Rename the damaged file (and its WAL) beside it, never deleted: a backup or a recovery
    tool may still want it. Its new path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    aside = path.with_name(f"{path.name}.broken-{stamp}")
    os.replace(path, aside)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        os.replace(wal, aside.with_name(aside.name + ".wal"))
    return aside


def cut_under_worker(path: Path, what: str) -> str:
    """The problem a running worker reports when its queue file was cut under it."""
    return (f"the queue file {path} was cut while the worker runs ({what}): what it held is "
            "lost when the worker stops, and the dispatch journal is kept whole from now on. "
            f"Stop the worker, then restore {path} from a backup, or move it aside "
            f"(mv {path} {path}.broken) to rebuild the queue from the journal")
