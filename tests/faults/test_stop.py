"""`notebookjobs worker stop` of a worker that became a zombie of the process that started it
(issue case 9, SPEC §7)."""

from __future__ import annotations

import subprocess
import sys

import notebookjobs as nj
from support import wait_until

#: starts a detached worker, says its pid, and stays alive without ever reaping it (as a
#: notebook kernel that called nj.start_worker() does)
STARTER = "import sys, notebookjobs as nj; print(nj.start_worker(), flush=True); sys.stdin.read()"


def test_worker_stop_of_a_worker_that_became_a_zombie(project):
    starter = subprocess.Popen([sys.executable, "-c", STARTER], cwd=project.root, env=project.env(),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert starter.stdout is not None
        pid = int(starter.stdout.readline())
        assert nj.wait(nj.dispatch("jobs.testing.ok", 1), timeout=30)["result"] == 1
        # When the CLI stops it (the worker exits, and stays a zombie of the starter)
        out = project.cli("worker", "stop", timeout=90)
        # Then the CLI says it stopped
        assert (out.returncode, out.stdout.strip()) == (0, "worker stopped"), out.stderr
        assert nj.worker_status()["running"] is False
        with open(f"/proc/{pid}/stat") as fh:
            assert fh.read().rsplit(")", 1)[1].split()[0] == "Z"  # what the test set out to make
    finally:
        starter.communicate(timeout=60)  # closes its pipes, and lets it reap nothing and exit
    wait_until(lambda: not nj.worker_status()["running"], what="no worker")
