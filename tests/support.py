"""Test support: a real project folder, a real worker process, waits on conditions.

Imported by conftest.py (the fixtures) and by tests (``from support import wait_until``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from notebookjobs.model.records import Job
    from notebookjobs.store import JobStore

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
    spawn_loop: {}
    escape_loop: {}
    stubborn_loop: {}
    bad_text: {}
    stamp: {}
    frame: {}
    series: {}
    array: {}
    blob: {}
    something: {}
    mixed: {}
    describe: {}
    scaled: {}
    all_outputs: {}
    flood: {}
    say_and_wait: {}
    close_output: {}
    scribble: {}
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


def loaded_by_import(modules: str, candidates: tuple[str, ...]) -> list[str]:
    """Which of ``candidates`` a fresh interpreter has in ``sys.modules`` after importing
    ``modules`` (comma-separated), sorted: what a process that imports them pays for."""
    code = (f"import sys, {modules}; "
            f"print('\\n'.join(sorted(m for m in {candidates!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def new_project(root: Path, whitelist: str) -> Project:
    """A project folder at ``root``: the repo's jobs/ plus jobs/testing.py, ``whitelist``,
    no queue yet."""
    shutil.copytree(REPO / "jobs", root / "jobs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "tests" / "jobs_for_tests.py", root / "jobs" / "testing.py")
    project = Project(root)
    project.effects.mkdir()
    project.write_whitelist(whitelist)
    return project


def enter_project(project: Project, mp: pytest.MonkeyPatch) -> None:
    """Make ``project`` the current one (its root, effects, its own queue; the job modules
    of another project forgotten) until ``mp`` is undone; ``leave_project`` after that."""
    mp.setenv("NOTEBOOKJOBS_ROOT", str(project.root))
    mp.setenv("NJ_TEST_EFFECTS", str(project.effects))
    mp.delenv("NOTEBOOKJOBS_DB", raising=False)
    mp.chdir(project.root)
    purge_job_modules()


def leave_project(project: Project) -> None:
    """Forget the job modules ``project`` imported here, and its root on sys.path."""
    purge_job_modules()
    while str(project.root) in sys.path:
        sys.path.remove(str(project.root))


@contextmanager
def worker_starter(project: Project, *leading: str, env: dict[str, str] | None = None
                   ) -> Iterator[Callable[..., WorkerProcess]]:
    """``start(*args, ready=True, env=None)``: a foreground worker in ``project``, run with
    ``leading`` and ``args`` and the environment ``env`` adds; all are stopped (SIGTERM) when
    the block ends."""
    started: list[WorkerProcess] = []

    def start(*args: str, ready: bool = True, env: dict[str, str] | None = None
              ) -> WorkerProcess:
        worker = WorkerProcess(project, *leading, *args, env={**(defaults or {}), **(env or {})})
        started.append(worker)
        return worker.wait_ready() if ready else worker

    defaults = env
    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


@contextmanager
def recorded_pids(project: Project) -> Iterator[Callable[[str], list[int]]]:
    """``read(key)``: the pids a ``*_loop`` job of ``project`` records under ``key``, once it
    has; any of them still alive when the block ends is SIGKILLed, so no loop outlives a test."""
    seen: list[int] = []

    def read(key: str) -> list[int]:
        lines = wait_until(lambda: project.effect_lines(key), what=f"the {key} job's loops")
        pids = [int(pid) for pid in lines[0].split()]
        seen.extend(pids)
        return pids

    try:
        yield read
    finally:
        for pid in filter(alive, seen):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it ended since we looked


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs; a zombie (dead, not reaped yet) counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``, zombies left out (Linux: reads /proc)."""
    members = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(entry.path, "stat").read_text().rpartition(")")[2].split()
            except (FileNotFoundError, ProcessLookupError):
                continue  # it ended while we looked
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


@contextmanager
def locked_store() -> Iterator[JobStore]:
    """The project's queue as a client without a worker opens it: under the file's lock, for
    one transaction (committed at the end of the block)."""
    from notebookjobs import config, store
    from notebookjobs.access import lock

    settings = config.load_settings()
    fd = lock.open_lock(settings.lock_path)
    try:
        lock.wait(fd, 30, lambda: lock.busy(settings))
        with store.transaction(settings.db_path) as job_store:
            yield job_store
    finally:
        os.close(fd)


def open_queue() -> None:
    """Create the project's queue file, as the first process to open it does (a read of a
    queue that does not exist creates nothing)."""
    with locked_store():
        pass


def change_job(job_id: int, change: Callable[[Job], Job]) -> Job:
    """Apply a function of ``transitions`` to a stored job, as a client without a worker does
    (saved guarded by the status it had); the job as it is now."""
    with locked_store() as job_store:
        job = job_store.get(job_id)
        changed = change(job)
        job_store.save(changed, job.status)
        return changed


def purge_job_modules() -> None:
    for name in [n for n in sys.modules if n == "jobs" or n.startswith("jobs.")]:
        del sys.modules[name]


def stop_leftover_worker() -> None:
    """A worker a test started and did not stop must not outlive it."""
    from notebookjobs import config
    from notebookjobs.access import remote
    try:
        info = remote.worker_info(config.load_settings())
    except Exception:
        return
    if info:
        os.kill(info["pid"], 9)


class Project:
    """A project root on disk; helpers to edit it and to run the CLI in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.effects = root / "effects"

    @property
    def db(self) -> Path:
        return self.root / ".notebookjobs" / "queue.duckdb"

    def write_whitelist(self, text: str, *, raw: bool = False, age: float = 0.0) -> None:
        """Replace whitelist.yaml. Without a ``worker:`` section, autostart is turned off, so
        a test starts a worker only when it means to. ``age``: seconds to date the edit back
        (a worker waits for a whitelist edited within the last second to settle before it
        refuses a job for it)."""
        if not raw and "worker:" not in text and text.strip() and not text.lstrip().startswith("-"):
            text += "worker: {autostart: false}\n"
        path = self.root / "whitelist.yaml"
        path.write_text(text)
        # Make sure the change is seen even within one mtime tick.
        stat = path.stat()
        mtime = stat.st_mtime_ns + 1_000_000 - int(age * 1e9)
        os.utime(path, ns=(stat.st_atime_ns, mtime))

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


class WorkerProcess:
    """``python -m notebookjobs.worker`` in the foreground of a subprocess, for real."""

    def __init__(self, project: Project, *args: str, env: dict[str, str] | None = None) -> None:
        self.project = project
        self.log = project.root / f"worker-{time.monotonic_ns()}.log"
        self._log_file = open(self.log, "wb")  # noqa: SIM115 - kept open for the process; closed by stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "notebookjobs.worker", *args],
                                     cwd=project.root, env={**project.env(), **(env or {})},
                                     stdout=self._log_file, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> WorkerProcess:
        from notebookjobs import config
        from notebookjobs.access import remote
        settings = config.load_settings()
        wait_until(lambda: self.proc.poll() is not None or remote.worker_info(settings),
                   timeout=60, what="the worker to answer on its socket")
        assert self.proc.poll() is None, self.output()
        return self

    def wait_exit(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log_file.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()
