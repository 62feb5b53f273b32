"""SPEC §20: every OS-specific call lives in notebookjobs/system/; the package imports and its
portable path works without what macOS lacks (epoll, prctl, fdatasync) and without fcntl; on
Windows, ``import notebookjobs`` works and starting a worker says it is not supported yet.

The worker suites themselves run a second time in the forced portable mode (the Makefile's
``test-portable``), with tests/portable/sitecustomize.py taking epoll and fdatasync away."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import notebookjobs as nj
from notebookjobs import system
from notebookjobs.system import parent, poller, sockets
from support import alive, group_members, wait_until

PACKAGE = Path(nj.__file__).parent
SYSTEM = PACKAGE / "system"
#: what make test-portable puts on PYTHONPATH: takes epoll and fdatasync away
WITHOUT_LINUX_CALLS = Path(__file__).parent / "portable"

#: modules only system/ imports
OS_MODULES = {"fcntl", "ctypes", "resource", "msvcrt", "termios"}
#: attributes of os, select and signal only system/ uses
OS_CALLS = {"os": {"fdatasync", "killpg", "setsid", "setpgrp", "setpgid", "getpgid", "getpgrp",
                   "posix_spawn", "posix_spawnp"},
            "select": {"epoll", "kqueue", "devpoll"},
            "signal": {"SIGRTMIN", "SIGRTMAX"}}
#: keyword arguments that start a process in a group or session of its own
OS_KEYWORDS = {"setsid", "start_new_session", "process_group", "preexec_fn"}


def os_specific(tree: ast.AST) -> list[str]:
    """What in ``tree`` is OS-specific (docstrings and comments aside): each as "line: what"."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                                | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        where = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] in OS_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            if top in OS_MODULES:
                found.append(f"{where}: from {node.module} import")
            found += [f"{where}: from {top} import {a.name}" for a in node.names
                      if a.name in OS_CALLS.get(top, ()) or a.name.startswith("sched_")]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module, name = node.value.id, node.attr
            if name in OS_CALLS.get(module, ()) or (module == "os" and name.startswith("sched_")):
                found.append(f"{where}: {module}.{name}")
        elif isinstance(node, ast.keyword) and node.arg in OS_KEYWORDS:
            found.append(f"{where}: {node.arg}=")
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in docstrings and "/proc" in node.value):
            found.append(f"{where}: {node.value!r}")
    return found


def test_os_specific_calls_appear_only_in_the_system_package():
    outside = {f"{path.relative_to(PACKAGE)}:{hit}"
               for path in PACKAGE.rglob("*.py") if SYSTEM not in path.parents
               for hit in os_specific(ast.parse(path.read_text()))}
    assert outside == set()
    # The check sees them where they are: every kind is found in system/
    inside = " ".join(hit for path in SYSTEM.rglob("*.py")
                      for hit in os_specific(ast.parse(path.read_text())))
    for expected in ("import fcntl", "import ctypes", "os.fdatasync", "os.killpg", "os.getpgid",
                     "os.setpgid", "os.posix_spawn", "setsid=", "'/proc'", "signal.SIGRTMIN"):
        assert expected in inside


def test_the_system_package_imports_nothing_of_ours_but_errors():
    ours = set()
    for path in SYSTEM.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 1:
                ours.add("." * node.level + (node.module or ""))
            elif isinstance(node, ast.Import):
                ours |= {a.name for a in node.names if a.name.startswith("notebookjobs")}
    assert ours <= {"..errors", "."}


# A subprocess with fcntl, select.epoll, os.fdatasync and libc's prctl made unavailable (as on
# Windows, or macOS): every module of the package imports, and the portable path works.
WITHOUT = r"""
import ctypes, importlib, os, pkgutil, select, sys, tempfile
sys.modules["fcntl"] = None  # any `import fcntl` from here on raises ImportError
del select.epoll, os.fdatasync

class NoPrctl(ctypes.CDLL):
    def __getattr__(self, name):
        if name == "prctl":
            raise AttributeError(name)
        return super().__getattr__(name)

ctypes.CDLL = NoPrctl
import notebookjobs
names = sorted(m.name for m in pkgutil.walk_packages(notebookjobs.__path__, "notebookjobs.")
               if not m.name.endswith("__main__"))
for name in names:
    importlib.import_module(name)
assert "fcntl" not in {getattr(m, "__name__", "") for m in sys.modules.values() if m}
from notebookjobs.errors import PlatformError
from notebookjobs.system import durable, locks, parent, poller, processes, sockets, stdio
assert type(poller.selector()).__name__ == "PollSelector"
assert parent.on_death(lambda: None) is False
os.environ["NOTEBOOKJOBS_PORTABLE"] = "0"  # Linux's path, where prctl is missing: no watch armed
assert parent.on_death(lambda: None) is False
os.environ["NOTEBOOKJOBS_PORTABLE"] = "1"
assert sockets.path_max() == 96
with tempfile.TemporaryFile() as fh:
    fh.write(b"x")
    fh.flush()
    durable.sync(fh.fileno())  # fsync: neither fdatasync nor F_FULLFSYNC is here
    assert stdio.pipe_size(fh.fileno()) == stdio.DEFAULT_PIPE_BYTES
    try:
        locks.try_lock(fh.fileno())
    except PlatformError as exc:
        assert "docs/windows.md" in str(exc)
    else:
        raise AssertionError("a lock without fcntl")
assert not processes.exited(os.getpid()) and processes.exited(2**22 + 1)
assert (os.getppid(), "1") not in processes.marked("NJ_SYSTEM_TEST")
print(len(names))
"""


def test_every_module_imports_without_fcntl_epoll_fdatasync_or_prctl():
    env = dict(os.environ, NOTEBOOKJOBS_PORTABLE="1", NJ_SYSTEM_TEST="1")
    done = subprocess.run([sys.executable, "-c", WITHOUT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) > 100  # every module, not a few
    assert "no prctl here" in done.stderr  # Linux's path looked for prctl, and went on without


# Windows, as far as it can be played here: the modules of the package executed again with
# sys.platform "win32" and without fcntl, epoll, poll, Unix sockets or process groups (what they
# import was loaded first, on Linux: the point is our modules, not the libraries').
AS_WINDOWS = r"""
import importlib, os, pkgutil, select, socket, sys
import notebookjobs
names = sorted(m.name for m in pkgutil.walk_packages(notebookjobs.__path__, "notebookjobs.")
               if not m.name.endswith("__main__"))
for name in names:
    importlib.import_module(name)
for name in [n for n in sys.modules if n == "notebookjobs" or n.startswith("notebookjobs.")]:
    del sys.modules[name]
sys.platform = "win32"
sys.modules["fcntl"] = None
del select.epoll, select.poll, socket.AF_UNIX, os.killpg, os.setpgid, os.getpgid, os.fdatasync
import notebookjobs as nj
for name in names:
    importlib.import_module(name)
from notebookjobs import cli, system
assert system.WINDOWS and not system.LINUX
sys.exit(cli.main(["worker", "start"]))
"""


def test_on_windows_the_package_imports_and_starting_a_worker_says_it_is_not_supported(project):
    done = subprocess.run([sys.executable, "-c", AS_WINDOWS], env=project.env(),
                          cwd=project.root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Windows is not supported yet" in lines[0], done.stderr


def test_the_forced_mode_takes_the_path_macos_takes(monkeypatch):
    monkeypatch.setenv(system.PORTABLE_ENV, "1")
    assert system.portable()
    assert type(poller.selector()).__name__ == "PollSelector"
    assert parent.death_signal() is None
    assert sockets.path_max() == sockets.SUN_PATH_BSD - sockets.MARGIN
    monkeypatch.setenv(system.PORTABLE_ENV, "0")
    assert system.portable() is not sys.platform.startswith("linux")


@pytest.mark.skipif(os.environ.get(system.PORTABLE_ENV) != "1", reason="the portable run only")
def test_the_portable_run_took_away_what_macos_lacks():
    # make test-portable: this process, and every Python process it starts, lacks them
    import select

    assert os.environ.get("NOTEBOOKJOBS_PORTABLE_CHECKED") == "1"
    assert not hasattr(select, "epoll") and not hasattr(os, "fdatasync")


PROBE = f"""import os, select
def run():
    portable = os.environ.get("{system.PORTABLE_ENV}")
    return [hasattr(select, "epoll"), hasattr(os, "fdatasync"), portable]
"""


def test_a_worker_on_the_portable_path_drains_cancels_a_tree_and_survives_kill_9(
        project, start_worker, loop_pids, monkeypatch):
    # Given a worker, its children and this client on the path macOS takes, without epoll and
    # fdatasync in any of their processes
    monkeypatch.setenv(system.PORTABLE_ENV, "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(WITHOUT_LINUX_CALLS), *filter(None, [os.environ.get("PYTHONPATH")])]))
    (project.root / "jobs" / "probe.py").write_text(PROBE)
    project.write_whitelist("retry_attempts: 1\nretry_delay: 0\n"
                            "allowed_jobs: {jobs.testing: [ok, spawn_loop], jobs.probe: [run]}\n")
    worker = start_worker("--concurrency", "2")
    assert nj.wait(nj.dispatch("jobs.probe.run"), timeout=30)["result"] == [False, False, "1"]
    # When jobs are dispatched, Then it drains them
    ids = [nj.dispatch("jobs.testing.ok", i) for i in range(20)]
    assert [nj.wait(i, timeout=60)["result"] for i in ids] == list(range(20))
    # When a job whose subprocess loops is cancelled, Then the whole tree dies with it
    job_id = nj.dispatch("jobs.testing.spawn_loop", "tree")
    child, loop = loop_pids("tree")
    assert nj.cancel(job_id) is True
    wait_until(lambda: not alive(loop), what="the job's grandchild to die")
    wait_until(lambda: not group_members(child), what="the attempt's process group to be empty")
    # When the worker is killed with SIGKILL mid-job (no parent-death signal on this path)
    running = nj.dispatch("jobs.testing.spawn_loop", "orphan")
    pids = loop_pids("orphan")
    wait_until(lambda: nj.status(running)["status"] == "running", what="the start recorded")
    os.kill(worker.pid, 9)
    worker.wait_exit()
    # Then its child and the child's subprocess die (the pipe's EOF), and the next worker takes
    # the job back and runs the queue on
    wait_until(lambda: not any(map(alive, pids)), what="the orphans to die")
    start_worker("--concurrency", "2")
    wait_until(lambda: nj.status(running)["attempts"] == 2, what="the job to run again")
    assert nj.cancel(running) is True
    assert nj.wait(nj.dispatch("jobs.testing.ok", 7), timeout=30)["result"] == 7
