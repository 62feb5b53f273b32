"""A full disk, a nearly full one, and a queue file cut to nothing (issue 21 points 5-7, SPEC
§14): the queue is never left unopenable by us, a full disk never fails an acknowledged job,
and a file cut under us is noticed and rebuilt from the journal where the journal can.

The disks are real: a small tmpfs mounted over the queue's folder (root, as CI runs)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import notebookjobs as nj
from notebookjobs import config, journal
from support import Project, wait_until

from .disks import NEEDS_ROOT, SmallDisk, can_mount, small_disk

pytestmark = pytest.mark.skipif(not can_mount(), reason=NEEDS_ROOT)


@pytest.fixture
def disk(project: Project) -> Iterator[SmallDisk]:
    """The queue's folder on a disk of 4 MiB (request it before ``start_worker``, so that its
    workers stop before it is unmounted)."""
    with small_disk(project.db.parent, 4 * 1024 * 1024) as mounted:
        yield mounted


def problems() -> list[str]:
    return nj.worker_status().get("problems") or []


def test_a_worker_started_on_a_full_disk_leaves_no_unopenable_queue(project, disk, start_worker):
    # Given 50 dispatches in the journal of a queue whose file does not exist yet
    ids = [nj.dispatch("jobs.testing.ok", i) for i in range(50)]
    assert not project.db.exists()
    # When a worker starts while the disk is full
    disk.fill()
    worker = start_worker(ready=False)
    # Then it fails saying so, and leaves no queue file behind
    assert worker.wait_exit() != 0
    assert "No space left on device" in worker.output(), worker.output()[-3000:]
    assert not project.db.exists(), f"left behind: {project.db.stat().st_size} bytes"
    # And once space is freed, the CLI reads the queue and a worker runs every job
    disk.free()
    listed = project.cli("list", "--per-page", "100", "--json")
    assert listed.returncode == 0, listed.stderr
    start_worker()
    assert [nj.wait(i, timeout=60)["result"] for i in ids] == list(range(50))


def test_an_empty_queue_file_is_rebuilt_from_a_journal_that_holds_all_of_it(project, disk):
    # Given 50 dispatches in the journal, and the empty queue file an older version left when
    # its first open found the disk full
    ids = [nj.dispatch("jobs.testing.ok", i) for i in range(50)]
    project.db.touch(mode=0o600)
    # When the queue is read
    listed = project.cli("list", "--per-page", "100", "--json")
    # Then it was rebuilt from the journal (which held every job it ever had), nothing lost
    assert listed.returncode == 0, listed.stderr
    assert sorted(nj.jobs(per_page=100)["id"]) == ids
    assert nj.dispatch("jobs.testing.ok", 50) == 51


def test_a_nearly_full_disk_fails_no_acknowledged_job(project, disk, start_worker):
    # Given a worker, jobs whose end is large to store (64 KiB of output each) and small ones
    # that end a little later, all dispatched (the journal too is on this disk)
    start_worker("--concurrency", "2")
    assert nj.wait(nj.dispatch("jobs.testing.ok", 0), timeout=30)["status"] == "completed"
    large = [nj.dispatch("jobs.testing.noisy", 4000, delay=2) for _ in range(3)]
    small = [nj.dispatch("jobs.testing.ok", i, delay=2.5 + i / 10) for i in range(1, 16)]
    # When the disk has room left for the small ones' states, not for the large ones'
    disk.fill(leave=48 * 1024)
    # Then the commits that do not fit are reported, and the small jobs go on running
    wait_until(lambda: [p for p in problems() if "could not write job states" in p],
               timeout=60, what="the commits to fail for lack of space")
    wait_until(lambda: len(project.effect_lines("ok")) == 1 + len(small), timeout=60,
               what="the small jobs to run")
    # And once space is freed, every job completes: none was failed for the disk
    disk.free()
    ended = [nj.wait(i, timeout=60) for i in large + small]
    assert [job["status"] for job in ended] == ["completed"] * len(ended), [
        job["error"] for job in ended if job["status"] != "completed"]
    wait_until(lambda: not [p for p in problems() if "could not write job states" in p],
               timeout=30, what="the commits problem to clear")


def test_a_queue_file_cut_under_a_running_worker_is_reported_and_rebuilt(project, disk,
                                                                        start_worker):
    # Given a worker that has run a job, and a dispatch waiting for later
    worker = start_worker()
    done = nj.dispatch("jobs.testing.ok", 1)
    assert nj.wait(done, timeout=30)["status"] == "completed"
    later = nj.dispatch("jobs.testing.ok", 2, delay=3600)
    # When the queue file is cut to nothing under it
    os.truncate(project.db, 0)
    # Then worker_status() says so within seconds, and what to do
    found = wait_until(lambda: [p for p in problems() if "cut" in p], timeout=10,
                       what="the cut queue file to be reported")
    assert str(project.db) in found[0] and "journal" in found[0], found
    # And after the worker stops, the next command says what happened and what to do
    worker.stop()
    out = project.cli("list", "--json")
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert "mv " in out.stderr and "journal" in out.stderr, out.stderr
    # And set aside as it says, the queue is rebuilt from the journal: the job that waited is
    # back, and no id is handed out twice
    os.rename(project.db, project.db.with_name("queue.duckdb.broken"))
    assert nj.status(later)["status"] == "pending"
    assert nj.dispatch("jobs.testing.ok", 3) > later
    log = journal.Journal(config.load_settings().db_path)
    assert log.size() > 0
