"""A worker's start: its first attempts begin on the head of the run order (``main.HEAD``
pending jobs), and the other pending jobs come on the loop's second turn (``main._Startup``).
Nothing of that shows but the order and the count: every job runs once, best first, and one
that waits for a job outside the head waits for it. A real burst worker on a real file."""

from __future__ import annotations

import subprocess
import sys

import notebookjobs as nj
from notebookjobs.worker.main import HEAD


def _burst(project, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "notebookjobs.worker", "--burst", *args],
                          cwd=project.root, env=project.env(), capture_output=True, text=True,
                          timeout=600)


def test_a_start_on_more_pending_jobs_than_its_head_runs_each_once_best_first(project):
    # Given more pending jobs than the head a worker starts on: one at the lowest priority,
    # many above it, and at the top one that waits for the lowest (so it is in the head, and
    # what it waits for is not)
    low = nj.dispatch("jobs.testing.ok", -1, priority=0)
    middle = nj.dispatch_many("jobs.testing.ok", [[i] for i in range(HEAD + 20)], priority=5)
    top = nj.dispatch("jobs.testing.ok", 1000, priority=9, after=[low])
    # When a burst worker of one child drains the queue
    done = _burst(project, "--concurrency", "1")
    assert done.returncode == 0, done.stderr
    # Then every job ran once, best first across the head's edge, and the top one only once
    # the one it waits for had completed
    assert project.effect_lines("ok") == [str(i) for i in range(HEAD + 20)] + ["-1", "1000"]
    for job_id in (low, *middle, top):
        info = nj.status(job_id)
        assert (info["status"], info["attempts"]) == ("completed", 1), info
    assert nj.status(top)["started_at"] >= nj.status(low)["finished_at"]
