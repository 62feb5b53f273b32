"""Faults around the worker (issue case 7, SPEC §14): logs that cannot be written, a queue file
deleted or replaced under it, a read-only queue folder at stop, kill -9 and its temp files."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess

import pytest

import notebookjobs as nj
from notebookjobs.worker import procgroup
from support import open_queue, wait_until

from .harness import alive, cli_bytes


def problems() -> list:
    return nj.worker_status().get("problems") or []


def test_unwritable_logs_jobs_complete_and_the_problem_is_reported(project, start_worker):
    # Given logs/background_jobs.log that cannot be written (a directory stands in its place)
    logs = project.root / "logs"
    (logs / "background_jobs.log").mkdir(parents=True)
    (logs / "background_jobs_errors.log").mkdir()
    worker = start_worker()
    # When jobs complete and fail
    ok = nj.dispatch_many("jobs.testing.ok", [[i] for i in range(5)])
    bad = nj.dispatch("jobs.testing.fail", "unlogged")
    # Then they all end as they should, the worker runs, and worker_status() says what is wrong
    assert [nj.wait(i, timeout=30)["status"] for i in ok] == ["completed"] * 5
    assert nj.wait(bad, timeout=60)["status"] == "failed"
    assert worker.proc.poll() is None, worker.output()[-3000:]
    found = wait_until(problems, timeout=10, what="worker_status()['problems'] to name the logs")
    assert any("log" in str(p).lower() for p in found), found



def commit_problems() -> list[str]:
    return [p for p in problems() if "could not write job states" in p]


@pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs prlimit (Linux)")
def test_commits_that_fail_are_reported_jobs_go_on_and_are_committed_later(
        project, start_worker):
    # Given a worker that has run a job
    worker = start_worker()
    assert nj.wait(nj.dispatch("jobs.testing.ok", 1), timeout=30)["status"] == "completed"
    # When no file of the worker can grow: a file size limit of 0 makes the kernel refuse its
    # writes (EFBIG) as a full disk does (ENOSPC), with nothing of ours replaced, and without
    # root. The worker process alone: its children were spawned before (they run the jobs)
    # and so is this process (it writes the dispatches into the journal).
    _, hard = resource.prlimit(worker.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(worker.pid, resource.RLIMIT_FSIZE, (0, hard))
    try:
        ids = nj.dispatch_many("jobs.testing.ok", [[i] for i in range(2, 6)])
        # Then worker_status() says the commits fail, and the jobs run all the same (what they
        # did is in the effects file; a read of their state would commit first, and fail)
        found = wait_until(commit_problems, timeout=30, what="a commits problem")
        assert "could not write" in found[0] and "retrying" in found[0], found
        wait_until(lambda: sorted(project.effect_lines("ok")) == ["1", "2", "3", "4", "5"],
                   timeout=60, what="the jobs to run while nothing can be committed")
        assert worker.proc.poll() is None, worker.output()[-3000:]
    finally:
        resource.prlimit(worker.pid, resource.RLIMIT_FSIZE, (hard, hard))
    # And once writes work again, the problem is gone and every change is in the file
    wait_until(lambda: not commit_problems(), timeout=30, what="the commits to succeed again")
    assert [nj.wait(i, timeout=30)["result"] for i in ids] == [2, 3, 4, 5]
    worker.stop()
    assert worker.proc.returncode == 0, worker.output()[-3000:]
    assert nj.counts()["completed"] == 5  # read on the file: no worker runs


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_queue_file_deleted_or_replaced_under_the_worker_is_reported(project, start_worker, how):
    # Given a worker that has run a job
    start_worker()
    assert nj.wait(nj.dispatch("jobs.testing.ok", 1), timeout=30)["status"] == "completed"
    # When its DB file is deleted, or replaced by another file
    db = project.db
    if how == "deleted":
        db.unlink()
        db.with_name(db.name + ".wal").unlink(missing_ok=True)
    else:
        other = db.with_name("other.duckdb")
        other.write_bytes(b"not a queue")
        os.replace(other, db)
    # Then worker_status() reports it within a few seconds
    found = wait_until(problems, timeout=10, what=f"the {how} queue file to be reported")
    assert any(str(db) in str(p) or "queue" in str(p) for p in found), found


def test_worker_stop_returns_when_the_queue_folder_is_read_only(project, short_db):
    if shutil.which("chattr") is None or os.geteuid() != 0:
        pytest.skip("needs root and chattr to make the queue folder read-only for its owner")
    nj.start_worker()
    folder = short_db.parent
    try:
        assert nj.wait(nj.dispatch("jobs.testing.ok", 1), timeout=30)["status"] == "completed"
        made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"chattr +i does not work here: {made.stderr.strip()}")
        # When the worker is stopped while it cannot write beside its DB
        pid = nj.worker_status()["pid"]
        try:
            out = cli_bytes(project, "worker", "stop", timeout=90,
                            env={**project.env(), "NOTEBOOKJOBS_DB": str(short_db)})
        except subprocess.TimeoutExpired:
            pytest.fail("`notebookjobs worker stop` hung with a read-only queue folder")
        # Then the command returns, the worker has stopped (what it could not write is its
        # log's business), and nothing is left running
        assert "Traceback" not in out.stderr, out.stderr[-2000:]
        assert (out.returncode, out.stdout.strip()) == (0, "worker stopped"), out.stderr
        assert not alive(pid)
    finally:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        info = nj.worker_status()
        if info["running"]:
            os.kill(info["pid"], signal.SIGKILL)


def test_kill_9_leaves_no_frames_folder_behind(project, start_worker, private_tmp):
    # Given workers killed with SIGKILL after they served a frame (history goes through a file)
    for round_ in range(3):
        worker = start_worker()
        nj.dispatch("jobs.testing.ok", round_)
        nj.history()
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait_exit()
    # When the next worker has started
    start_worker()
    nj.history()
    # Then at most one frames folder remains in the temp dir: the live worker's own
    left = sorted(p.name for p in private_tmp.glob("notebookjobs-frames-*"))
    assert len(left) <= 1, left


def test_a_worker_that_cannot_open_the_queue_file_exits_and_leaves_no_children(project,
                                                                               start_worker):
    # The pool's children are spawned before the file is opened (they start while DuckDB is
    # imported): a file DuckDB cannot open must take them down with the worker.
    open_queue()
    project.db.write_bytes(b"not a database" * 1000)
    worker = start_worker(ready=False)
    assert worker.wait_exit() != 0
    assert "cannot open the queue database" in worker.output()
    token = procgroup.queue_token(project.db)
    assert procgroup.kill_leftovers(token, quiet=True) == []  # none of its processes lives on
