"""Fixtures of the Dask tests (SPEC §18): a real ``distributed.LocalCluster(processes=True)`` of
2 workers with 1 thread each and a project, once per test module (a cluster takes seconds to
start); a queue of its own and real workers (``python -m notebookjobs.worker --dask ADDRESS``)
per test. A module imports the fixtures it uses: ``from dask_cluster import cluster, ...``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support import REPO, Project, WorkerProcess, alive, purge_job_modules, wait_until

#: the targets of the Dask tests; retries are quick, and one target may not run at all
DASK_WHITELIST = """\
retry_attempts: 2
retry_delay: 0
worker:
  autostart: false
  grace_period: 0.5
allowed_jobs:
  jobs.testing:
    ok: {}
    echo: {}
    fail: {}
    fail_times: {}
    noisy: {}
    stamp: {}
    spawn_loop: {}
    sleep: {timeout: 1, retry_attempts: 0}
  jobs.cluster:
    where: {}
    progress_wait: {}
    slow_once: {}
"""

#: jobs/cluster.py of the test project: what only the Dask tests need
CLUSTER_JOBS = '''\
"""Jobs of the Dask tests."""

import os
import time
from pathlib import Path

import notebookjobs as nj


def _alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def where():
    """Where this attempt runs: its working directory, its pid, this file."""
    return {"cwd": os.getcwd(), "pid": os.getpid(), "file": __file__}


def progress_wait(seconds: float):
    """Report half way, then wait."""
    nj.progress(0.5, "half way")
    time.sleep(seconds)
    return "done"


def slow_once(key: str):
    """The first run records its pid and sleeps (its Dask worker is to be killed); a later
    run records its own pid and whether the first run's process is still alive."""
    path = Path(os.environ["NJ_TEST_EFFECTS"]) / f"{key}.log"
    lines = path.read_text().splitlines() if path.exists() else []
    if not lines:
        with open(path, "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        time.sleep(120)
        return "first"
    first = int(lines[0].split()[0])
    with open(path, "a") as fh:
        fh.write(f"{os.getpid()} {'alive' if _alive(first) else 'dead'}\\n")
    return "again"
'''


@pytest.fixture(scope="module")
def dask_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A project for the module (its root named uniquely: an upload is named after it)."""
    root = tmp_path_factory.mktemp("dask") / f"njproject-{secrets.token_hex(3)}"
    shutil.copytree(REPO / "jobs", root / "jobs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "tests" / "jobs_for_tests.py", root / "jobs" / "testing.py")
    (root / "jobs" / "cluster.py").write_text(CLUSTER_JOBS)
    project = Project(root)
    project.effects.mkdir()
    project.write_whitelist(DASK_WHITELIST)
    with pytest.MonkeyPatch.context() as mp:
        # Set before the cluster starts: its worker processes inherit them.
        mp.setenv("NOTEBOOKJOBS_ROOT", str(root))
        mp.setenv("NJ_TEST_EFFECTS", str(project.effects))
        mp.delenv("NOTEBOOKJOBS_DB", raising=False)
        mp.chdir(root)
        purge_job_modules()
        yield project
    purge_job_modules()
    while str(root) in sys.path:
        sys.path.remove(str(root))


@pytest.fixture(scope="module")
def cluster(dask_project: Project, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A real LocalCluster: 2 worker processes (each under a nanny), 1 thread each."""
    from distributed import LocalCluster

    scratch = tmp_path_factory.mktemp("dask-scratch")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", local_directory=str(scratch)) as local:
        yield local


@pytest.fixture(scope="module")
def client(cluster) -> Iterator:
    """A Dask client of the test itself (to find worker processes, or to forge a request)."""
    from distributed import Client

    with Client(cluster, set_as_default=False) as dask_client:
        yield dask_client


@pytest.fixture
def queue(dask_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh queue file for this test, and the module's whitelist as it was."""
    db = tmp_path / "queue.duckdb"
    monkeypatch.setenv("NOTEBOOKJOBS_DB", str(db))
    dask_project.write_whitelist(DASK_WHITELIST)
    return db


@pytest.fixture
def dask_worker(dask_project: Project, cluster, queue: Path
                ) -> Iterator[Callable[..., WorkerProcess]]:
    """``dask_worker(*args)``: ``python -m notebookjobs.worker --dask ADDRESS *args`` on this
    test's queue, answering on its socket; stopped (SIGTERM) at the end of the test."""
    started: list[WorkerProcess] = []

    def start(*args: str, ready: bool = True) -> WorkerProcess:
        worker = WorkerProcess(dask_project, "--dask", cluster.scheduler_address, *args,
                               env={"NOTEBOOKJOBS_DB": str(queue)})
        started.append(worker)
        return worker.wait_ready() if ready else worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def dask_loop_pids(dask_project: Project) -> Iterator[Callable[[str], list[int]]]:
    """``conftest.loop_pids`` for the module's project: the pids a ``*_loop`` job records
    under ``key``; any still alive at the end of the test is SIGKILLed."""
    seen: list[int] = []

    def read(key: str) -> list[int]:
        lines = wait_until(lambda: dask_project.effect_lines(key), what=f"the {key} job's loops")
        pids = [int(pid) for pid in lines[0].split()]
        seen.extend(pids)
        return pids

    yield read
    for pid in filter(alive, seen):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it ended since we looked


def worker_pids(client) -> dict[str, int]:
    """Dask worker address -> the pid of its process."""
    return client.run(os.getpid)
