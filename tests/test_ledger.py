"""The id ledger (``journal.ledger``): the one owner of the last id handed out and the last one
applied; ids never go back or repeat, whoever hands them out."""

from __future__ import annotations

import notebookjobs as nj
from notebookjobs import config
from notebookjobs.journal import Journal
from notebookjobs.journal.ledger import Ledger
from support import locked_store, open_queue


def test_a_journal_removed_under_a_running_worker_goes_on_above_every_id_it_knew(project,
                                                                                 start_worker):
    # Given a worker that has run journalled jobs and stored one itself (a RESERVE)
    start_worker()
    ran = [int(nj.dispatch("jobs.testing.ok", i)) for i in range(3)]
    reserved = int(nj.dispatch("jobs.testing.ok", unique="u", delay=3600))
    assert [nj.wait(i, timeout=60)["status"] for i in ran] == ["completed"] * 3
    # When the journal is removed under it (its head, and with it the highest id handed out)
    Journal(config.load_settings().db_path).path.unlink()
    # Then the next dispatches go on above every id it knew, through the worker
    later = [int(nj.dispatch("jobs.testing.ok", 10 + i)) for i in range(2)]
    assert later == [reserved + 1, reserved + 2], (ran, reserved, later)
    assert [nj.wait(i, timeout=60)["result"] for i in later] == [10, 11]


def test_a_commit_records_what_was_read_once_and_the_file_keeps_it(project):
    # Given a queue file, and the ledger of a process that read records up to id 7
    open_queue()
    log = Journal(config.load_settings().db_path)
    ledger = Ledger(log)
    ledger.read_up_to(7)
    # Then a commit of what it read records 7, once: the next has nothing new to record
    assert ledger.unrecorded(ledger.read) == 7
    with locked_store() as job_store:
        job_store.set_ids(applied=7)
    ledger.committed(7)
    assert ledger.unrecorded(ledger.read) is None
    # And the file and the journal's head both say so
    with locked_store() as job_store:
        assert job_store.applied() == 7
    with log.locked() as fd:
        head = log.survey(fd).head
    assert head is not None and head.applied == 7
