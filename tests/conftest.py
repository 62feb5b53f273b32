"""Fixtures: a real project folder with whitelist.yaml and jobs/ in tmp_path, its own DuckDB
file, and real workers in it. The helpers themselves live in support.py."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import (
    REPO,
    TEST_WHITELIST,
    Project,
    WorkerProcess,
    alive,
    purge_job_modules,
    stop_leftover_worker,
    wait_until,
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """A fresh project: the repo's jobs/ plus jobs/testing.py, the test whitelist, no queue yet."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "jobs", root / "jobs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "tests" / "jobs_for_tests.py", root / "jobs" / "testing.py")
    proj = Project(root)
    proj.effects.mkdir()
    proj.write_whitelist(TEST_WHITELIST)
    monkeypatch.setenv("NOTEBOOKJOBS_ROOT", str(root))
    monkeypatch.setenv("NJ_TEST_EFFECTS", str(proj.effects))
    monkeypatch.delenv("NOTEBOOKJOBS_DB", raising=False)
    monkeypatch.chdir(root)
    purge_job_modules()
    yield proj
    stop_leftover_worker()
    purge_job_modules()
    while str(root) in sys.path:
        sys.path.remove(str(root))


@pytest.fixture
def start_worker(project):
    """Start foreground workers in the project; all are stopped at the end of the test."""
    started: list[WorkerProcess] = []

    def start(*args: str, ready: bool = True, env: dict[str, str] | None = None) -> WorkerProcess:
        worker = WorkerProcess(project, *args, env=env)
        started.append(worker)
        return worker.wait_ready() if ready else worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def loop_pids(project):
    """``loop_pids(key)``: the pids a ``jobs.testing.*_loop`` job records under ``key``, once it
    has; any of them still alive when the test ends is SIGKILLed, so no loop outlives a test."""
    seen: list[int] = []

    def read(key: str) -> list[int]:
        lines = wait_until(lambda: project.effect_lines(key), what=f"the {key} job's loops")
        pids = [int(pid) for pid in lines[0].split()]
        seen.extend(pids)
        return pids

    yield read
    for pid in filter(alive, seen):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it ended since we looked
