"""A pip user's first hour with one extra of the installed wheel (``make matrix``).

Run with the Python of a venv where the notebookjobs wheel is installed with that extra alone
(``scripts/install_matrix.py`` makes them): ``python tests/wheel_walk.py [EXTRA]``. Every step
is the ``notebookjobs`` command of that venv, as a subprocess in a new project: ``init``, a
schedule that has not run yet, ``dispatch`` (whose autostart starts the worker), ``status``
until the job completes, ``list``, ``schedules``, ``history``, ``stats``, ``worker stop``;
and, right after ``init``, what the extra is for:

- ``dashboard``: ``notebookjobs dashboard``, and a GET of the address it prints answers 200
  with the dashboard rendered (Voila ran the page's notebook in a kernel);
- ``notebooks``: a notebook job completes, its executed notebook saved;
- ``dask``: a worker started with ``--dask`` on a local cluster runs a job there;
- none: ``notebookjobs dashboard`` refuses in one line, saying which extra brings it.

Not a pytest module (these venvs have no test tools): exits 1 at the first step that fails,
naming it, with what the command printed. Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

NJ = str(Path(sys.executable).parent / "notebookjobs")  #: the console script pip installed
TIMEOUT_S = 180.0  #: the longest one step may take (a cold Voila kernel on 2 busy cores)
SCHEDULE = """schedules:
  hourly-count:
    target: jobs.example.count_lines
    every: 1h
"""
NOTEBOOK = {
    "cells": [
        {"cell_type": "code", "execution_count": None, "id": "p", "metadata": {
            "tags": ["parameters"]}, "outputs": [], "source": "n = 2\n"},
        {"cell_type": "code", "execution_count": None, "id": "w", "metadata": {}, "outputs": [],
         "source": "print('squared', n * n)\n"},
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}


class StepFailed(Exception):
    pass


def environment() -> dict[str, str]:
    """The user's environment: nothing of ours set, this venv's commands first."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NOTEBOOKJOBS_", "NJ_", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(*args: str, cwd: Path, expect: int = 0) -> str:
    """``notebookjobs ARGS`` in ``cwd``; its stdout. ``StepFailed`` unless it exits ``expect``."""
    out = subprocess.run([NJ, *args], cwd=cwd, env=environment(), capture_output=True,
                         text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
    if out.returncode != expect:
        raise StepFailed(f"`notebookjobs {' '.join(args)}` exited {out.returncode}, not "
                         f"{expect}:\n{out.stdout}{out.stderr}")
    return out.stdout if expect == 0 else out.stderr


def until_final(job_id: int, cwd: Path) -> dict[str, Any]:
    """``status ID --json`` until the job has ended; its fields."""
    deadline = time.monotonic() + TIMEOUT_S
    pause = 0.05
    while True:
        info = json.loads(run("status", str(job_id), "--json", cwd=cwd))
        if info["status"] in ("completed", "failed", "cancelled"):
            return dict(info)
        if time.monotonic() > deadline:
            raise StepFailed(f"job {job_id} still {info['status']} after {TIMEOUT_S:g} s")
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def completes(args: list[str], cwd: Path) -> dict[str, Any]:
    """Dispatch; the job's fields once it has completed (``StepFailed`` otherwise)."""
    info = until_final(int(run("dispatch", *args, cwd=cwd)), cwd)
    if info["status"] != "completed":
        raise StepFailed(f"`dispatch {' '.join(args)}` ended {info['status']}: {info['error']}")
    return info


def walk(root: Path) -> None:
    """dispatch, the worker, status, list, schedules, history, stats: every extra's."""
    whitelist = root / "whitelist.yaml"
    whitelist.write_text(whitelist.read_text() + SCHEDULE)
    info = completes(["jobs.example.count_lines"], root)
    assert info["result"] == len(whitelist.read_text().splitlines()), info
    assert re.search(r"\(\d+ jobs?\)", run("list", cwd=root))
    shown = run("schedules", cwd=root)
    assert "hourly-count" in shown and "jobs.example.count_lines" in shown, shown
    [schedule] = json.loads(run("schedules", "--json", cwd=root))
    assert schedule["name"] == "hourly-count" and schedule["last_job"] is None, schedule
    history = json.loads(run("history", "--json", cwd=root))
    assert history[-1]["id"] == info["id"] and history[-1]["status"] == "completed", history
    assert sum(row["completed"] for row in json.loads(run("stats", "--json", cwd=root))) >= 1


def stop_worker(root: Path) -> None:
    """``worker stop``, whatever happened before (a walk that failed leaves none behind)."""
    if root.is_dir():
        subprocess.run([NJ, "worker", "stop"], cwd=root, env=environment(),
                       capture_output=True, timeout=TIMEOUT_S)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dashboard_page(root: Path) -> None:
    """``notebookjobs dashboard``; a GET of its address renders the dashboard."""
    server = subprocess.Popen([NJ, "dashboard", "--port", str(free_port())], cwd=root,
                              env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, stdin=subprocess.DEVNULL)
    try:
        assert server.stdout is not None and server.stderr is not None
        printed = ""
        while "token=" not in printed:
            line = server.stdout.readline()
            if not line:
                raise StepFailed(f"`notebookjobs dashboard` exited {server.wait()} before it "
                                 f"printed an address:\n{printed}{server.stderr.read()}")
            printed += line
        url = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", printed)
        assert url, printed
        try:
            with urllib.request.urlopen(url.group(0), timeout=TIMEOUT_S) as response:
                status, page = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            log = (root / "logs" / "dashboard.log").read_text(errors="replace")
            raise StepFailed(f"GET {url.group(0)} answered {exc.code}; the dashboard's log "
                             f"ends:\n{log[-2000:]}") from None
        # Voila put the widget of the page's one cell in the page: the kernel ran nj.dashboard()
        if status != 200 or "application/vnd.jupyter.widget-view+json" not in page \
                or "There was an error when executing cell" in page:
            raise StepFailed(f"GET {url.group(0)} answered {status} without the dashboard")
    finally:
        server.terminate()
        server.wait(timeout=60)


def notebook_job(root: Path) -> None:
    """A notebook of allowed_notebooks runs as a job; its executed copy is the result."""
    (root / "notebooks" / "square.ipynb").write_text(json.dumps(NOTEBOOK))
    whitelist = root / "whitelist.yaml"
    whitelist.write_text(whitelist.read_text()
                         + "allowed_notebooks:\n  notebooks/square.ipynb: {}\n")
    info = completes(["notebooks/square.ipynb", "n=7"], root)
    executed = Path(info["result"])
    assert executed.is_file() and "squared 49" in executed.read_text(), info


CLUSTER = """
import sys
from distributed import LocalCluster
cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                       dashboard_address=None, host="127.0.0.1")
print(cluster.scheduler_address, flush=True)
sys.stdin.read()  # until the walk closes our stdin
cluster.close()
"""


def dask_job(root: Path) -> None:
    """A worker started with ``--dask`` on a local cluster runs a job there."""
    cluster = subprocess.Popen([sys.executable, "-c", CLUSTER], cwd=root, env=environment(),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert cluster.stdout is not None and cluster.stdin is not None
        address = cluster.stdout.readline().strip()
        if not address.startswith("tcp://"):
            raise StepFailed(f"the local Dask cluster did not start (exit {cluster.poll()})")
        run("worker", "start", "--dask", address, cwd=root)
        info = completes(["jobs.example.Report.build", "rows=3"], root)
        assert info["ran_on"] and info["ran_on"][0].startswith("tcp://"), info
    finally:
        stop_worker(root)  # before its cluster goes
        if cluster.stdin is not None:
            cluster.stdin.close()
        cluster.wait(timeout=60)


def no_extra(root: Path) -> None:
    """Without the dashboard extra, the web page is refused in one line that says why."""
    refused = run("dashboard", cwd=root, expect=2)
    assert "notebookjobs[dashboard]" in refused and refused.count("\n") == 1, refused


EXTRAS = {"": no_extra, "dashboard": dashboard_page, "notebooks": notebook_job,
          "dask": dask_job}


def main(argv: list[str]) -> int:
    extra = argv[1] if len(argv) > 1 else ""
    started = time.monotonic()
    version = run("--version", cwd=Path.cwd()).strip()
    with tempfile.TemporaryDirectory(prefix="nj-walk-") as tmp:
        root = Path(tmp) / "myproject"
        try:
            run("init", root.name, cwd=root.parent)
            EXTRAS[extra](root)
            walk(root)
            run("worker", "stop", cwd=root)
        except (StepFailed, AssertionError) as exc:
            print(f"walk [{extra}]: FAILED: {exc}", file=sys.stderr)
            return 1
        finally:
            stop_worker(root)
    print(f"walk [{extra}]: ok ({version}, {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
