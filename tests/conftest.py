"""Fixtures: a real project folder with whitelist.yaml and jobs/ in tmp_path, its own DuckDB
file, and real workers in it. The helpers themselves live in support.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support import (
    TEST_WHITELIST,
    Project,
    enter_project,
    leave_project,
    new_project,
    recorded_pids,
    stop_leftover_worker,
    worker_starter,
)

#: test data, not tests: papermill's notebooks there are run as jobs, never by nbval
collect_ignore = ["data"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """A fresh project: the repo's jobs/ plus jobs/testing.py, the test whitelist, no queue yet."""
    proj = new_project(tmp_path / "project", TEST_WHITELIST)
    enter_project(proj, monkeypatch)
    yield proj
    stop_leftover_worker()
    leave_project(proj)


@pytest.fixture
def start_worker(project):
    """Start foreground workers in the project; all are stopped at the end of the test."""
    with worker_starter(project) as start:
        yield start


@pytest.fixture
def loop_pids(project):
    """``loop_pids(key)``: the pids a ``jobs.testing.*_loop`` job records under ``key``, once it
    has; any of them still alive when the test ends is SIGKILLed, so no loop outlives a test."""
    with recorded_pids(project) as read:
        yield read
