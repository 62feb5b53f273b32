"""Several processes dispatching at once through the locked file lose nothing (SPEC §11)."""

from __future__ import annotations

import json
import subprocess
import sys

import notebookjobs as nj

DISPATCHER = """
import sys, time
from pathlib import Path
import notebookjobs as nj
go = Path(sys.argv[2])
while not go.exists():  # start together, to contend for the lock
    time.sleep(0.005)
for i in range(100):
    nj.dispatch("jobs.testing.echo", sys.argv[1], i)
"""


def test_four_processes_dispatching_100_jobs_each_store_400(project, tmp_path):
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DISPATCHER, f"p{n}", str(go)],
            env=project.env(),
            cwd=project.root,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    frame = nj.history()
    assert len(frame) == 400 and frame["id"].is_unique
    assert sorted(tuple(json.loads(a)) for a in frame["args"]) == sorted(
        (f"p{n}", i) for n in range(4) for i in range(100)
    )
