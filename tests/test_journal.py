"""The dispatch journal (SPEC §13): durable before dispatch() returns, ids consecutive across
processes and workers, a torn record never replayed half."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import notebookjobs as nj
from notebookjobs import config, journal
from notebookjobs.access import lock
from notebookjobs.model.records import JobSpec, utcnow
from support import open_queue, wait_until

KILLED_MID_RECORD = """
import os, signal, sys
from pathlib import Path
from notebookjobs import journal
log = journal.Journal(Path(sys.argv[1]))
with log.locked() as fd:
    last = log.last_id(fd)
    record = journal.encode(journal.JOB, last + 1, last + 1, b'{"target": "' + b"x" * 20000 + b'"}')
    os.lseek(fd, 0, os.SEEK_END)
    os.write(fd, record[: len(record) // 2])
    print(last + 1, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of its record
"""


def kill_a_writer_mid_record(project) -> int:
    """A process that writes half a record to the journal and is killed; the id it had."""
    out = subprocess.run([sys.executable, "-c", KILLED_MID_RECORD,
                          str(config.load_settings().db_path)],
                         env=project.env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == -signal.SIGKILL, out.stderr
    return int(out.stdout)


def test_a_record_torn_by_a_killed_writer_is_skipped_on_replay(project):
    # Given two dispatches, then a writer killed in the middle of the third record
    first = nj.dispatch("jobs.testing.ok", 1)
    second = nj.dispatch("jobs.testing.ok", 2)
    torn = kill_a_writer_mid_record(project)
    assert torn == second + 1
    log = journal.Journal(config.load_settings().db_path)
    with log.locked() as fd:
        intact = list(journal.read(fd, 0))
    assert intact[-1].last_id == second and intact[-1].end < log.size()  # the torn tail is there
    # When the queue is read (which replays the journal), then the torn record is not a job
    assert [job for job in nj.jobs(per_page=10)["id"]] == [second, first]
    # And the next dispatch takes the torn record's id (never acknowledged), as a whole record
    assert nj.dispatch("jobs.testing.ok", 3) == torn
    assert nj.status(torn)["args"] == [3]


def test_a_torn_record_is_skipped_by_a_running_worker_too(project, start_worker):
    # Given a running worker, and a writer killed in the middle of a record
    start_worker("--concurrency", "1")
    before = nj.dispatch("jobs.testing.ok", 1)
    torn = kill_a_writer_mid_record(project)
    # When another process dispatches, then its job gets the torn id and runs
    after = nj.dispatch("jobs.testing.ok", 2)
    assert after == torn == before + 1
    assert nj.wait(after, timeout=30)["result"] == 2
    assert nj.counts()["completed"] == 2


DISPATCHER = """
import sys, time
from pathlib import Path
import notebookjobs as nj
go = Path(sys.argv[2])
while not go.exists():  # start together, to contend for the journal
    time.sleep(0.005)
ids = [nj.dispatch("jobs.testing.echo", sys.argv[1], i) for i in range(int(sys.argv[3]))]
print(" ".join(map(str, ids)), flush=True)
"""


def test_four_processes_with_and_without_a_worker_get_consecutive_ids(project, start_worker,
                                                                        tmp_path):
    # Given four processes dispatching 60 jobs each, all at once, with no worker running
    go, per = tmp_path / "go", 60
    procs = [subprocess.Popen([sys.executable, "-c", DISPATCHER, f"p{n}", str(go), str(per)],
                              env=project.env(), cwd=project.root, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for n in range(4)]
    go.touch()
    # When a worker starts in the middle of it
    wait_until(lambda: journal.Journal(config.load_settings().db_path).size() > 10_000,
               what="some dispatches in the journal")
    start_worker("--concurrency", "2")
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in outputs]
    # Then the ids are unique and consecutive, each process's in the order it dispatched
    ids = [[int(i) for i in out.split()] for out, _ in outputs]
    assert sorted(i for own in ids for i in own) == list(range(1, 4 * per + 1))
    assert all(own == sorted(own) for own in ids)
    # And nothing is lost: every job is stored with its arguments, and runs
    wait_until(lambda: nj.counts()["completed"] == 4 * per, timeout=120, what="all jobs to run")
    frame = nj.history()
    assert sorted(tuple(json.loads(a)) for a in frame["args"]) == sorted(
        (f"p{n}", i) for n in range(4) for i in range(per))


def test_the_journal_is_private_and_reset_once_its_records_are_in(project, start_worker):
    # Given dispatches with no worker (they stay in the journal, which grows)
    for i in range(20):
        nj.dispatch("jobs.testing.ok", i, delay=3600)
    log = journal.Journal(config.load_settings().db_path)
    grown = log.size()
    assert oct(os.stat(log.path).st_mode & 0o777) == "0o600"
    # When the queue is read, then the records are moved in and the journal is back to its base
    assert nj.counts()["pending"] == 20
    assert log.size() < grown
    with log.locked() as fd:
        records = list(journal.read(fd, 0))
    assert [(r.kind, r.last_id) for r in records] == [(journal.BASE, 20)]


def test_a_record_that_cannot_be_read_back_fails_its_jobs_alone(project):
    # Given a dispatch, then a well-formed record whose payload is not a job (written by
    # other means), then another dispatch
    first = nj.dispatch("jobs.testing.ok", 1)
    log = journal.Journal(config.load_settings().db_path)
    first_bad, last_bad = log.append(journal.BATCH, 2, b'{"target": "jobs.testing.ok"}')
    after = nj.dispatch("jobs.testing.ok", 2)
    # When the queue is read, then the bad record's ids are failed jobs saying why, the others
    # are pending, and the queue reads on
    assert [nj.status(i)["status"] for i in (first, first_bad, last_bad, after)] == [
        "pending", "failed", "failed", "pending"]
    assert "could not be read back from the journal" in nj.status(first_bad)["error"]


def test_a_dispatch_with_no_worker_does_not_open_the_queue_file(project):
    # Given a queue that exists (opened once)
    open_queue()
    db = Path(config.load_settings().db_path)
    before = db.stat().st_mtime_ns
    # When jobs are dispatched with no worker running
    ids = [nj.dispatch("jobs.testing.ok", i) for i in range(5)]
    # Then the queue file was not touched (they are in the journal), and a read finds them
    assert db.stat().st_mtime_ns == before
    assert sorted(nj.jobs(per_page=10)["id"]) == ids


def test_the_first_dispatches_of_a_new_queue_do_not_create_its_file(project):
    # Given a project whose queue was never opened (creating its file costs about a second)
    db = Path(config.load_settings().db_path)
    assert not db.exists()
    # When jobs are dispatched with no worker running
    first = nj.dispatch("jobs.testing.ok", 1)
    batch = nj.dispatch_many("jobs.testing.ok", [[2], [3]])
    # Then they are durable in the journal alone, with ids from 1, and the file is not made
    assert [first, *batch] == [1, 2, 3]
    assert not db.exists()
    log = journal.Journal(db)
    with log.locked() as fd:
        # (its head, first, carries the highest id handed out)
        assert [(r.kind, r.first_id, r.last_id) for r in journal.read(fd, 0)] == [
            (journal.BASE, 3, 3), (journal.JOB, 1, 1), (journal.BATCH, 2, 3)]
    # And the first read creates the file with them in it, and the ids go on
    assert [nj.status(i)["args"] for i in (1, 2, 3)] == [[1], [2], [3]]
    assert db.exists() and oct(db.stat().st_mode & 0o777) == "0o600"
    assert nj.dispatch("jobs.testing.ok", 4) == 4


def test_a_new_queue_whose_lock_is_held_is_not_started_by_a_dispatch(project, monkeypatch):
    # Given a queue never opened, and its lock held by another process (as a starting worker
    # holds it while it creates the file)
    monkeypatch.setenv(config.ENV_LOCK_TIMEOUT, "0.5")
    settings = config.load_settings()
    held = lock.open_lock(settings.lock_path)
    assert lock.try_lock(held)
    try:
        # When a job is dispatched, then it does not start the journal: it waits for the lock
        # (and is refused once the wait runs out), so no id is handed out that the file's
        # creator does not know of
        with pytest.raises(nj.StoreBusyError):
            nj.dispatch("jobs.testing.ok", 1)
        assert journal.Journal(settings.db_path).size() == 0
    finally:
        os.close(held)
    # And once the lock is free, the dispatch goes through and gets id 1
    assert nj.dispatch("jobs.testing.ok", 1) == 1


def test_after_and_unique_are_decided_on_the_queue_and_no_record_carries_them(project):
    # Given a queue that exists, and a dispatch still in the journal
    nj.counts()
    first = nj.dispatch("jobs.testing.ok", 1, delay=3600)
    log = journal.Journal(config.load_settings().db_path)
    assert log.size() > journal.HEAD_SIZE
    # When a job is dispatched after it, and one with a unique key twice
    waiter = nj.dispatch("jobs.testing.ok", 2, delay=3600, after=[first])
    keyed = nj.dispatch("jobs.testing.ok", 3, delay=3600, unique="k")
    # Then they were decided on the queue file (which took the journal's records in first):
    # the waiter knows the journalled job, the key gives one job, the ids follow on
    assert nj.dispatch("jobs.testing.ok", 4, delay=3600, unique="k") == keyed
    assert (waiter, keyed) == (first + 1, first + 2)
    assert (nj.status(waiter)["after"], nj.status(keyed)["unique_key"]) == ([first], "k")
    # And a record never carries them: none is written, and one written by other means fails
    # its job alone instead of becoming a job that forgot what it waited for
    spec = JobSpec(target="jobs.testing.ok", args=[], kwargs={}, priority=0, run_at=utcnow(),
                   policy=config.load_settings().policy_for("jobs.testing.ok"), after=(first,))
    with pytest.raises(ValueError, match="cannot be journalled"):
        journal.job_payload(spec, utcnow())
    payload = json.loads(journal.job_payload(replace(spec, after=()), utcnow()))
    forged, _ = log.append(journal.JOB, 1, json.dumps({**payload, "after": [first]}).encode())
    assert nj.status(forged)["status"] == "failed"
    assert "cannot carry after" in nj.status(forged)["error"]


def test_the_worker_is_told_once_a_record_is_written_and_before_it_is_synced(project):
    """``append``'s ``written`` runs when the record can be read (the worker then reads it while
    the append syncs it) and before the append returns; a ``written`` that raises still leaves
    the record synced and its ids handed out."""
    open_queue()  # the queue's folder and journal
    log = journal.Journal(config.load_settings().db_path)
    with log.locked() as fd:
        log.reset(fd, 0)
    seen: list[list[int]] = []

    def written() -> None:
        reader = os.open(log.path, os.O_RDONLY)
        try:
            seen.append([r.last_id for r in journal.read(reader, 0)])
        finally:
            os.close(reader)

    assert log.append(journal.RESERVE, 2, written=written) == (1, 2)
    # this record, readable from another descriptor; the head (0) is rewritten after the call
    assert seen == [[0, 2]]
    with log.locked() as fd:
        assert log.last_id(fd) == 2
        head = journal.read_head(fd, os.fstat(fd).st_size)
        assert head is not None and head.last_id == 2

    def refused() -> None:
        raise OSError("the worker's socket refused")

    with pytest.raises(OSError, match="refused"):
        log.append(journal.RESERVE, 1, written=refused)
    assert log.append(journal.RESERVE, 1) == (4, 4)  # id 3 was handed out, not reused
    log.sync()  # the worker's writer, before it commits what it read
    log.path.unlink()
    log.sync()  # a journal removed (reset by a worker) has nothing left to sync
