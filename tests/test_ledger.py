"""The id ledger (``journal.ledger``): the one owner of the last id handed out and the last one
applied; ids never go back or repeat, whoever hands them out."""

from __future__ import annotations

import notebookjobs as nj
from notebookjobs import config, journal
from notebookjobs.journal import Journal
from notebookjobs.journal.ledger import Ledger
from notebookjobs.model.records import JobSpec, RetryPolicy, utcnow
from notebookjobs.store import Database
from notebookjobs.worker.core import Core
from notebookjobs.worker.intake import Intake
from notebookjobs.worker.problems import Problems
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


def test_the_intake_reads_a_journal_removed_and_made_anew_even_of_the_same_length(project):
    # Given a worker's intake that has read the one record of the journal
    db_path = config.load_settings().db_path
    db = Database(db_path)  # opening it gives the journal its base
    try:
        intake = Intake(Ledger(Journal(db_path)), Core(db), problems := Problems())
        log = intake.journal
        now = utcnow()

        def spec(value: int) -> JobSpec:
            return JobSpec(target="jobs.testing.ok", args=[value], kwargs={}, priority=0,
                           run_at=now, policy=RetryPolicy())

        first, _ = log.append(journal.JOB, 1, journal.job_payload(spec(1), now))
        assert intake.poll() == 1
        # When the journal is removed and made anew, its base above that id and one record of
        # the same length as the one read: the file is as long as what the intake had read
        read_length = log.size()
        log.path.unlink()
        with log.locked() as fd:
            second, _ = Ledger(log).take_locked(fd, journal.JOB, 1,
                                                journal.job_payload(spec(2), now), base=first)
        assert log.size() == read_length
        # Then the intake reads the new record, and says the journal was replaced under it
        assert intake.poll() == 1
        job = intake.core.state.get(second)
        assert job is not None and job.args == [2] and second == first + 1
        assert any("journal" in problem for problem in problems.messages())
    finally:
        db.close()
