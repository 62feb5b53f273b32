"""Fixtures of the Dask tests (SPEC §18): a real ``distributed.LocalCluster(processes=True)`` of
2 workers with 1 thread each and a project, once per test module (a cluster takes seconds to
start); a queue of its own and real workers (``python -m notebookjobs.worker --dask ADDRESS``)
per test. A module imports the fixtures it uses: ``from dask_cluster import cluster, ...``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support import (
    Project,
    WorkerProcess,
    enter_project,
    leave_project,
    new_project,
    recorded_pids,
    worker_starter,
)

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
    all_outputs: {}
    stamp: {}
    spawn_loop: {}
    sleep: {timeout: 1, retry_attempts: 0}
    frame: {}
    array: {}
    describe: {}
    scaled: {}
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
    project = new_project(root, DASK_WHITELIST)
    (root / "jobs" / "cluster.py").write_text(CLUSTER_JOBS)
    with pytest.MonkeyPatch.context() as mp:
        enter_project(project, mp)  # before the cluster starts: its processes inherit it
        yield project
    leave_project(project)


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
    with worker_starter(dask_project, "--dask", cluster.scheduler_address,
                        env={"NOTEBOOKJOBS_DB": str(queue)}) as start:
        yield start


@pytest.fixture
def dask_loop_pids(dask_project: Project) -> Iterator[Callable[[str], list[int]]]:
    """``conftest.loop_pids`` for the module's project: the pids a ``*_loop`` job records
    under ``key``; any still alive at the end of the test is SIGKILLed."""
    with recorded_pids(dask_project) as read:
        yield read


def worker_pids(client) -> dict[str, int]:
    """Dask worker address -> the pid of its process."""
    return client.run(os.getpid)
