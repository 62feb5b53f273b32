"""The pool's zygote (``worker.executors.local.zygote``): a worker's children are forked by it,
never by the threaded worker, and keep what spawned children had: a process group each, death
with the worker (with and without the parent-death signal), the sweep of a dead worker's
leftovers. Read from real processes (psutil, /proc), as a user's worker runs them."""

from __future__ import annotations

import os
import signal
import sys

import psutil
import pytest

import notebookjobs as nj
from support import alive, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="process ancestry read from /proc")


def _zygote(worker_pid: int) -> psutil.Process:
    """The worker's zygote, after checking that the worker has no other child but
    multiprocessing's resource tracker: both exec'd (``-c``), neither a fork of the worker."""
    zygotes, others = _children(worker_pid)
    assert len(zygotes) == 1 and len(others) == 1, (zygotes, others)
    assert "resource_tracker" in " ".join(others[0].cmdline())
    return zygotes[0]


def _children(worker_pid: int) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """The worker's live children: its zygotes, and the others."""
    children = [child for child in psutil.Process(worker_pid).children()
                if alive(child.pid)]  # a killed zygote is a zombie until the pool reaps it
    zygotes = [c for c in children if "multiprocessing.forkserver" in " ".join(c.cmdline())]
    return zygotes, [c for c in children if c not in zygotes]


def _pool_children(zygote: psutil.Process, count: int) -> list[int]:
    """The zygote's children, once there are ``count`` of them."""
    return wait_until(lambda: (pids := [c.pid for c in zygote.children()]) and
                      len(pids) == count and pids, what=f"{count} children of the zygote")


def test_a_workers_children_come_from_its_zygote_the_replacements_too(project, start_worker):
    # Given a worker of two children, and a job that times out
    project.write_whitelist("retry_attempts: 0\n"
                            "allowed_jobs: {jobs.testing: {ok: {}, sleep: {timeout: 0.5}}}\n")
    worker = start_worker("--concurrency", "2")
    # Then its one forked child is the zygote, which leads a process group of its own and
    # carries the worker's marker (what a sweep looks for)
    zygote = _zygote(worker.pid)
    assert os.getpgid(zygote.pid) == zygote.pid != os.getpgid(worker.pid)
    assert zygote.environ()["NOTEBOOKJOBS_ATTEMPT"].split(":")[1] == str(worker.pid)
    # And the zygote forked both children, each the leader of a group of its own
    first = _pool_children(zygote, 2)
    assert all(os.getpgid(pid) == pid for pid in first)
    # When an attempt is killed for its timeout
    job_id = nj.dispatch("jobs.testing.sleep", 60)
    info = nj.wait(job_id, timeout=60)
    assert info["status"] == "failed" and "timed out after 0.5 s" in info["error"]
    # Then its replacement comes from the same zygote, and the worker forked nothing itself
    wait_until(lambda: set(_pool_children(zygote, 2)) != set(first),
               what="a replacement child")
    assert _zygote(worker.pid).pid == zygote.pid
    assert nj.dispatch("jobs.testing.ok", 5).result(timeout=60) == 5


@pytest.mark.parametrize("portable", ["0", "1"], ids=["pdeathsig", "pipe-eof-only"])
def test_kill_9_of_the_worker_kills_its_zygote_children_and_their_processes(
        project, start_worker, loop_pids, portable):
    # Given a worker (with the parent-death signal, or only the pipes' EOF as on macOS) whose
    # job runs a loop in its child's group
    worker = start_worker("--concurrency", "2", env={"NOTEBOOKJOBS_PORTABLE": portable})
    zygote = _zygote(worker.pid)
    nj.dispatch("jobs.testing.spawn_loop", "inside")
    child, loop = loop_pids("inside")
    assert psutil.Process(child).ppid() == zygote.pid
    everyone = [zygote.pid, loop, *_pool_children(zygote, 2)]
    # When the worker is killed with SIGKILL
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait_exit()
    # Then the zygote, the children and what the job started all die
    wait_until(lambda: not any(map(alive, everyone)), what="the zygote and its children to die")


def test_the_next_worker_kills_a_dead_workers_zygote(project, start_worker):
    # Given a worker without the parent-death signal (as on macOS) whose child is frozen, so
    # that it cannot see its worker die (as after a `kill -STOP`, or under memory pressure):
    # the zygote then waits for that child, which holds its end of the zygote's pipe
    worker = start_worker("--concurrency", "1", env={"NOTEBOOKJOBS_PORTABLE": "1"})
    zygote = _zygote(worker.pid)
    child = _pool_children(zygote, 1)[0]
    os.kill(child, signal.SIGSTOP)
    # When the worker is killed with SIGKILL
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait_exit()
    assert alive(zygote.pid) and alive(child)
    # Then the next worker kills the zygote and the child its predecessor left, and starts a
    # zygote of its own
    successor = start_worker("--concurrency", "1")
    wait_until(lambda: not alive(zygote.pid) and not alive(child), what="the leftovers to die")
    assert "left running by a previous worker of this queue" in successor.output()
    assert _zygote(successor.pid).pid != zygote.pid
    assert nj.dispatch("jobs.testing.ok", 2).result(timeout=60) == 2


def test_a_killed_zygote_is_replaced_and_so_are_the_children_it_took_along(project,
                                                                           start_worker):
    # Given a worker whose zygote is killed (by hand, or the machine's OOM killer)
    worker = start_worker("--concurrency", "2")
    zygote = _zygote(worker.pid)
    first = _pool_children(zygote, 2)
    os.kill(zygote.pid, signal.SIGKILL)
    # Then its children die with it (their parent-death signal), a new zygote forks their
    # replacements, and jobs run as before
    wait_until(lambda: not any(map(alive, first)), what="the zygote's children to die")
    wait_until(lambda: [z for z in _children(worker.pid)[0] if z.pid != zygote.pid],
               what="a new zygote")
    successor = _zygote(worker.pid)
    assert len(_pool_children(successor, 2)) == 2
    assert nj.dispatch("jobs.testing.ok", 3).result(timeout=60) == 3
