"""Fixtures of the fault suite. ``project`` and ``start_worker`` come from tests/conftest.py
(pytest applies a folder's conftest to its subfolders); these add the doors and the faults."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from support import Project, WorkerProcess


@pytest.fixture(params=["worker", "file"])
def door(request, project: Project, start_worker) -> WorkerProcess | None:
    """Each test runs twice: through a running worker's socket, and on the locked file."""
    return start_worker() if request.param == "worker" else None


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp dir of this test's own ($TMPDIR, inherited by the workers it starts): what the
    killed and wedged workers of these tests leave behind stays out of the shared /tmp."""
    path = tmp_path / "tmp"
    path.mkdir()
    monkeypatch.setenv("TMPDIR", str(path))
    monkeypatch.setattr(tempfile, "tempdir", str(path))  # this process cached the old one
    return path


@pytest.fixture
def short_db(monkeypatch: pytest.MonkeyPatch) -> Path:
    """$NOTEBOOKJOBS_DB at a short path (so the socket lives beside it) in a folder of /tmp
    every user may enter (tmp_path's base is 0700, which would hide the queue from other
    users whatever its own modes). The detached worker inherits it; ``Project.env()`` drops it."""
    base = Path(tempfile.mkdtemp(prefix="nj-faults-", dir="/tmp"))
    os.chmod(base, 0o755)
    db = base / "queue" / "queue.duckdb"
    monkeypatch.setenv("NOTEBOOKJOBS_DB", str(db))
    yield db
    if shutil.which("chattr"):
        subprocess.run(["chattr", "-R", "-i", str(base)], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def umask0():
    """The test process (and what it starts) runs with umask 0; restored afterwards."""
    old = os.umask(0)
    yield
    os.umask(old)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``soak`` run only under ``make soak`` (NJ_SOAK=1): they take minutes."""
    if os.environ.get("NJ_SOAK"):
        return
    skip = pytest.mark.skip(reason="a soak test: run it with `make soak` (NJ_SOAK=1)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
