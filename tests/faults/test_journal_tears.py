"""Crash consistency of the dispatch journal (issue 21 points 3 and 4, SPEC §14), in the manner
of SQLite's crash tests and ALICE: the file is left as a crash or a cut would leave it (a torn
write at every byte offset of the last record, a cut at every record boundary and inside every
record, an un-synced tail lost or turned to zeros), then other processes append. Checked each
time: no acknowledged dispatch is lost or numbered again, and the file reads back whole.

Every offset runs in this process against the real file (the journal's own code, no DuckDB:
fast); a handful of cases run through real processes: a client SIGKILLed in the middle of its
record, dispatches from other interpreters, with and without a running worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

import notebookjobs as nj
from notebookjobs import config, journal
from notebookjobs.model.records import JobSpec, utcnow
from support import Project, open_queue, wait_until

from .harness import records_of

#: the bytes a torn record's tail must not be taken for: 8 bytes of an "id", then the footer's
#: magic. A job argument may hold them; cut right after them, the tail looks like a footer.
FOOTER_LIKE = "AAAAAAAANJRE"


def payload(*args: object) -> bytes:
    settings = config.load_settings()
    spec = JobSpec(target="jobs.testing.echo", args=list(args), kwargs={}, priority=0,
                   run_at=utcnow(), policy=settings.policy_for("jobs.testing.echo"))
    return journal.job_payload(spec, utcnow())


def job_ids(records: list[journal.Record]) -> list[int]:
    return [r.last_id for r in records if r.kind == journal.JOB]


@pytest.fixture
def log(project: Project) -> journal.Journal:
    """The journal of a queue that exists (opened once: its journal has its base)."""
    open_queue()
    return journal.Journal(config.load_settings().db_path)


def test_a_torn_last_record_at_every_offset_is_cut_and_numbers_nothing_again(log):
    # Given three acknowledged dispatches, and the bytes a fourth one writes (its argument
    # ends like a record's footer: cut there, its tail reads as a footer of id 0x41414141...)
    acked = [log.append(journal.JOB, 1, payload(i))[0] for i in range(3)]
    before = log.path.read_bytes()
    log.append(journal.JOB, 1, payload(FOOTER_LIKE, "x" * 40))
    torn = log.path.read_bytes()[len(before):]
    footer_like = torn.index(FOOTER_LIKE.encode()) + len(FOOTER_LIKE)
    offsets = range(len(torn))  # 0: nothing of it written; len(torn): whole (acknowledged)
    assert footer_like in offsets
    for cut in offsets:
        # When the fourth dispatch's write was torn at `cut` (it never returned), and another
        # dispatch appends
        log.path.write_bytes(before + torn[:cut])
        first, _ = log.append(journal.JOB, 1, payload("after", cut))
        # Then it gets the next id (the torn one was never handed out), the file reads back
        # whole to its end, and every acknowledged record is in it
        records, size = records_of(log.path)
        assert first == acked[-1] + 1, f"torn at byte {cut} of {len(torn)}: id {first}"
        assert job_ids(records)[-4:] == [*acked, first], f"torn at byte {cut}"
        assert records[-1].end == size, f"torn at byte {cut}: bytes left after the last record"
        assert json.loads(records[-1].payload)["args"] == ["after", cut]


def test_a_journal_cut_anywhere_never_hands_out_an_id_twice(log):
    # Given five acknowledged dispatches (the journal as the queue's opening left it: its base)
    base = log.size()
    acked = [log.append(journal.JOB, 1, payload(i))[0] for i in range(5)]
    whole = log.path.read_bytes()
    starts = {r.end for r in records_of(log.path)[0]}
    for cut in range(base, len(whole)):
        # When the file is cut at `cut` (a record boundary, or inside a record) and another
        # dispatch appends
        log.path.write_bytes(whole[:cut])
        first, _ = log.append(journal.JOB, 1, payload("after", cut))
        # Then its id was never handed out before, and what the cut left reads back whole
        where = "at a boundary" if cut in starts else "inside a record"
        assert first > acked[-1], f"cut at byte {cut} ({where}): id {first} again"
        records, size = records_of(log.path)
        assert records[-1].end == size and records[-1].first_id == first, f"cut at {cut}"
        kept = [r.last_id for r in records if r.kind == journal.JOB and r.end <= cut]
        assert kept == acked[:len(kept)], f"cut at {cut}"


@pytest.mark.parametrize("lost", ["all of it", "its bytes (zeros)", "the record",
                                  "all but the record"])
def test_a_lost_unsynced_tail_numbers_nothing_again(log, lost):
    """A power cut before an append's fdatasync (so the append never returned): all of what it
    wrote may be lost, or the file's new length may have reached the disk without its bytes
    (zeros), or the record without the append's other writes, or those without the record."""
    acked = [log.append(journal.JOB, 1, payload(i))[0] for i in range(3)]
    before = log.path.read_bytes()
    log.append(journal.JOB, 1, payload("never acknowledged"))
    after = log.path.read_bytes()
    record = after[len(before):]
    left = {"all of it": before, "its bytes (zeros)": before + b"\0" * len(record),
            "the record": before + record, "all but the record": after[:len(before)]}[lost]
    log.path.write_bytes(left)
    first, _ = log.append(journal.JOB, 1, payload("after"))
    records, size = records_of(log.path)
    assert first > acked[-1], (lost, first)
    assert records[-1].end == size and records[-1].first_id == first, lost
    assert [i for i in job_ids(records) if i in acked] == acked, lost


# --- through real processes ----------------------------------------------------------------------

KILLED_MID_RECORD = """
import os, signal, sys
from pathlib import Path
from notebookjobs import journal
log = journal.Journal(Path(sys.argv[1]))
payload, marker = sys.argv[2].encode(), sys.argv[3].encode()
with log.locked() as fd:
    os.lseek(fd, 0, os.SEEK_END)
    record = journal.encode(journal.JOB, 1, 1, payload)
    cut = record.index(marker) + len(marker)  # the tail ends like a footer
    os.write(fd, record[:cut])
    os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of its record, lock held
"""

DISPATCHER = """
import sys
import notebookjobs as nj
print(" ".join(str(nj.dispatch("jobs.testing.echo", "later", i)) for i in range(int(sys.argv[1]))))
"""


def kill_a_client_mid_record(project: Project) -> None:
    """A process that writes a record up to bytes that look like a footer, and is SIGKILLed."""
    out = subprocess.run([sys.executable, "-c", KILLED_MID_RECORD,
                          str(config.load_settings().db_path),
                          payload(FOOTER_LIKE, "never acknowledged").decode(), FOOTER_LIKE],
                         env=project.env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == -signal.SIGKILL, out.stderr


def dispatch_elsewhere(project: Project, count: int) -> list[int]:
    """``count`` dispatches from another interpreter; their ids."""
    out = subprocess.run([sys.executable, "-c", DISPATCHER, str(count)], env=project.env(),
                         cwd=project.root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return [int(i) for i in out.stdout.split()]


@pytest.mark.parametrize("worker", ["no worker", "a running worker"])
def test_a_client_killed_mid_append_with_a_footer_like_tail_loses_no_later_dispatch(
        project, start_worker, worker):
    # Given a queue (with or without a worker) and an acknowledged dispatch
    running = start_worker("--concurrency", "1") if worker == "a running worker" else None
    if running is None:
        open_queue()  # (a worker opened it already)
    before = nj.dispatch("jobs.testing.echo", "before")
    # When a client is killed in the middle of its record, right after argument bytes that end
    # like a footer, and another process dispatches 20 jobs
    kill_a_client_mid_record(project)
    ids = dispatch_elsewhere(project, 20)
    # Then they get the next ids, and every one of them is stored with its arguments
    assert ids == list(range(before + 1, before + 21))
    assert [nj.status(i)["args"] for i in ids] == [["later", i] for i in range(20)]
    assert nj.status(before)["args"] == ["before"]
    if running is not None:  # and the worker runs them all
        wait_until(lambda: nj.counts()["completed"] == 21, timeout=60, what="21 jobs to run")


@pytest.mark.parametrize("cut", ["inside a record", "at a record boundary", "inside its base"])
def test_a_journal_cut_under_a_running_worker_hands_out_no_id_twice(project, start_worker, cut):
    # Given a worker that has run 20 jobs, whose records are all still in the journal
    worker = start_worker("--concurrency", "2")
    first = nj.dispatch_many("jobs.testing.echo", [["first", i] for i in range(10)])
    second = [nj.dispatch("jobs.testing.echo", "second", i) for i in range(10)]
    assert [nj.wait(i, timeout=60)["status"] for i in first + second] == ["completed"] * 20
    log = journal.Journal(config.load_settings().db_path)
    records, _ = records_of(log.path)
    sixteenth = next(r for r in records if r.first_id == 16)
    # When the journal is cut (the worker has read every record in it)
    at = {"inside a record": sixteenth.end - 30, "at a record boundary": sixteenth.end - 0,
          "inside its base": 10}[cut]
    os.truncate(log.path, at)
    # Then the next five dispatches, from another process, get ids never handed out before
    ids = dispatch_elsewhere(project, 5)
    assert min(ids) > 20 and ids == sorted(set(ids)), ids
    # And each id is the job that was dispatched, and it runs
    assert [nj.wait(i, timeout=60)["result"]["args"] for i in ids] == [
        ["later", i] for i in range(5)]
    # And the worker says what happened to its journal
    if cut != "inside its base":  # (a base lost is found by the appender, and rewritten)
        found = wait_until(lambda: [p for p in nj.worker_status()["problems"] if "journal" in p],
                           timeout=10, what="a problem that names the journal")
        assert "cut" in found[0], found
    # And after a restart, every job is still there, with its own arguments
    worker.stop()
    start_worker("--concurrency", "1")
    assert [nj.status(i)["args"] for i in ids] == [["later", i] for i in range(5)]
    assert nj.status(16)["args"] == ["second", 5]


# --- journals an older version left ---------------------------------------------------------------

def test_a_journal_of_an_older_version_is_read_and_appended_to(log):
    # Given a journal as an older version wrote it: a base record with no payload, then records
    old = journal.encode(journal.BASE, 7, 7)
    records = [journal.encode(journal.JOB, i, i, payload("old", i)) for i in (8, 9)]
    log.path.write_bytes(old + b"".join(records))
    # When this version appends, torn writes and all
    log.path.write_bytes(log.path.read_bytes() + records[-1][:40])
    first, _ = log.append(journal.JOB, 1, payload("new"))
    # Then ids go on from its records, and the queue takes them all
    assert first == 10
    assert [nj.status(i)["args"] for i in (8, 9, 10)] == [["old", 8], ["old", 9], ["new"]]
    assert nj.dispatch("jobs.testing.echo", "next") == 11


def test_records_an_older_version_appended_past_a_torn_record_are_not_lost(log, caplog):
    # Given the journal an older version left after a client was killed mid-record: the torn
    # record, then records it appended after it, numbered from the torn tail's false footer
    torn = journal.encode(journal.JOB, 2, 2, payload(FOOTER_LIKE, "x"))
    cut = torn.index(FOOTER_LIKE.encode()) + len(FOOTER_LIKE)
    wild = int.from_bytes(b"AAAAAAAA", "little")
    after = [journal.encode(journal.JOB, wild + i, wild + i, payload("acknowledged", i))
             for i in (1, 2)]
    first = log.append(journal.JOB, 1, payload("first"))[0]
    log.path.write_bytes(log.path.read_bytes() + torn[:cut] + b"".join(after))
    # When the queue is read, then the records after the damage are jobs with the ids their
    # callers were given, the damage is reported, and no id is handed out twice
    assert nj.status(first)["args"] == ["first"]
    assert [nj.status(wild + i)["args"] for i in (1, 2)] == [["acknowledged", 1],
                                                              ["acknowledged", 2]]
    assert any("hold no intact record" in r.message for r in caplog.records)
    assert nj.dispatch("jobs.testing.echo", "next") == wild + 3
