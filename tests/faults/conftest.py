"""Fixtures of the fault suite. ``project`` and ``start_worker`` come from tests/conftest.py
(pytest applies a folder's conftest to its subfolders); these add the doors and the faults."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import Project, WorkerProcess


@pytest.fixture(params=["worker", "file"])
def door(request, project: Project, start_worker) -> WorkerProcess | None:
    """Each test runs twice: through a running worker's socket, and on the locked file."""
    return start_worker() if request.param == "worker" else None


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temp dir of this test's own ($TMPDIR, inherited by the workers it starts): what the
    killed and wedged workers of these tests leave behind stays out of the shared /tmp. At a
    short path: the worker's socket lives in it when the queue's own path is too long.
    (``tmp_path`` first: pytest's own temp folders must not land in this one.)"""
    path = Path(tempfile.mkdtemp(prefix="njf-", dir="/tmp"))
    monkeypatch.setenv("TMPDIR", str(path))
    monkeypatch.setattr(tempfile, "tempdir", str(path))  # this process cached the old one
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def short_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
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
    """Tests marked ``soak`` run only under ``make soak`` (NJ_SOAK=1): they take minutes, so the
    quick suite (``make test``) leaves them out (deselected, not skipped)."""
    if os.environ.get("NJ_SOAK"):
        return
    soak = [item for item in items if "soak" in item.keywords]
    if soak:
        items[:] = [item for item in items if "soak" not in item.keywords]
        config.hook.pytest_deselected(items=soak)
