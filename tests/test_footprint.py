"""What an idle worker keeps in memory (SPEC §13: ≤ 150 MB, its children included): modules the
worker and its pool children load only when something they do needs them. Read from real
processes, as test_history does for pyarrow: a worker started for real, its children's
/proc/PID/maps, and a job that reports what its child has imported."""

from __future__ import annotations

import os
from pathlib import Path

import notebookjobs as nj
from support import TEST_WHITELIST, loaded_by_import, wait_until

#: loaded by hashlib and secrets (through hmac): OpenSSL's libcrypto, ~3.5 MB in each process
OPENSSL = ("libcrypto", "_hashlib")


def _pool_children(worker_pid: int) -> list[int]:
    """The worker's pool children: the child processes of its zygote (multiprocessing's
    forkserver, the worker's one child but the resource tracker)."""
    def children_of(ppid: int) -> list[tuple[int, bytes]]:
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                parent = int(Path(entry.path, "stat").read_text().rpartition(")")[2].split()[1])
                cmdline = Path(entry.path, "cmdline").read_bytes()
            except (FileNotFoundError, ProcessLookupError):
                continue  # it ended while we looked
            if parent == ppid:
                found.append((int(entry.name), cmdline))
        return found

    zygotes = [pid for pid, cmdline in children_of(worker_pid)
               if b"multiprocessing.forkserver" in cmdline]
    assert len(zygotes) == 1, children_of(worker_pid)
    return [pid for pid, _ in children_of(zygotes[0])]


def test_pool_children_load_neither_openssl_nor_what_schedules_and_notebooks_need(
        project, start_worker):
    # Given a worker of two children, in a project without schedules
    project.write_whitelist(TEST_WHITELIST.replace("    ok: {}\n", "    ok: {}\n    imported: {}\n",
                                                   1))
    worker = start_worker("--concurrency", "2")
    # When jobs have run (what a child imports to run one counts too)
    loaded = {module: nj.dispatch("jobs.testing.imported", module).result(timeout=60)
              for module in ("hashlib", "secrets", "cronsim", "zoneinfo", "uuid",
                             "notebookjobs.attempt.runner")}
    # Then the child that ran them has none of those modules but its own runner
    assert loaded == {"hashlib": False, "secrets": False, "cronsim": False, "zoneinfo": False,
                      "uuid": False, "notebookjobs.attempt.runner": True}
    # And neither child maps OpenSSL
    children = _pool_children(worker.pid)
    assert len(children) == 2, children
    for pid in children:
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert not [name for name in OPENSSL if name in maps], f"child {pid} loaded OpenSSL"


def test_the_worker_imports_neither_the_attempts_code_nor_dask_nor_cron():
    # The worker runs no attempt (its children do), and needs Dask and cronsim only with a
    # cluster or schedules: importing the worker's main module brings none of them
    assert loaded_by_import("notebookjobs.worker.main", (
        "notebookjobs.worker.executors.local.child", "notebookjobs.attempt.runner",
        "notebookjobs.targets.registry", "notebookjobs.attempt.notebook_runner",
        "notebookjobs.worker.executors.dask.executor", "cronsim", "zoneinfo")) == []
    # Nor DuckDB: Worker.run imports it once the pool's children are spawned, so that they
    # start while it loads (~0.15 s) and the file is opened
    assert loaded_by_import("notebookjobs.worker.main", ("duckdb", "notebookjobs.store")) == []


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_the_worker_gives_back_the_memory_of_a_large_result(project, start_worker):
    # Given a worker that has run a job (its memory as it is when it works)
    project.write_whitelist(TEST_WHITELIST.replace("    ok: {}\n", "    ok: {}\n    big_text: {}\n",
                                                   1))
    worker = start_worker("--concurrency", "1")
    nj.dispatch("jobs.testing.ok").result(timeout=60)
    before = _rss_mb(worker.pid)
    # When a job returns 100 MB of text, kept as JSON in the queue, and a client reads it
    # through the worker (keeping its connection, as a notebook does)
    size = 100 * 2**20
    assert len(nj.dispatch("jobs.testing.big_text", size).result(timeout=120)) == size
    # Then the worker gives that memory back: neither DuckDB's cache of the blocks it wrote
    # nor the reply that carried the result stays (it kept ~190 MB more for its life)
    wait_until(lambda: _rss_mb(worker.pid) < before + 40, timeout=60,
               what=f"the worker's RSS to come back near {before:.0f} MB")
