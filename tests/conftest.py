"""Fixtures: a real project folder with whitelist.yaml and jobs/ in tmp_path, its own DuckDB file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parent.parent

TEST_WHITELIST = """\
retry_attempts: 2
retry_delay: 0
worker:
  concurrency: 2
  autostart: false
allowed_jobs:
  jobs.sample.SampleJobClass: [process, handle]
  jobs.sample: [flaky, always_fails, slow]
  jobs.testing:
    ok: {}
    count: {}
    fail: {}
    fail_times: {}
    sleep: {}
    crash: {}
    echo: {}
    typed: {}
    noisy: {}
  jobs.testing.Greeter: [hello, shout, kind]
"""


def wait_until(predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition"):
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _purge_job_modules() -> None:
    for name in [n for n in sys.modules if n == "jobs" or n.startswith("jobs.")]:
        del sys.modules[name]


class Project:
    """A project root on disk; helpers to edit it and to run the CLI in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.effects = root / "effects"

    @property
    def db(self) -> Path:
        return self.root / ".notebookjobs" / "queue.duckdb"

    def write_whitelist(self, text: str) -> None:
        path = self.root / "whitelist.yaml"
        path.write_text(text)
        # Make sure the change is seen even within one mtime tick.
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    def effect_lines(self, name: str) -> list[str]:
        path = self.effects / f"{name}.log"
        return path.read_text().splitlines() if path.exists() else []

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["NOTEBOOKJOBS_ROOT"] = str(self.root)
        env["NJ_TEST_EFFECTS"] = str(self.effects)
        env.pop("NOTEBOOKJOBS_DB", None)
        return env

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """``python -m notebookjobs ARGS`` in the project, for real."""
        return subprocess.run([sys.executable, "-m", "notebookjobs", *args], cwd=self.root,
                              env=self.env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
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
    _purge_job_modules()
    yield proj
    _purge_job_modules()
    while str(root) in sys.path:
        sys.path.remove(str(root))
