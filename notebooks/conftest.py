"""nbval runs each notebook against a queue of its own, and stops the workers they leave.

The stored outputs were made on an empty queue (scripts/build_notebooks.py does the same), so
each notebook gets a fresh ``NOTEBOOKJOBS_DB`` before its kernel starts; nbval starts the kernel
when the notebook's first cell is set up, and a kernel inherits this process's environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

_queues: dict[str, Path] = {}
_folder = Path(tempfile.mkdtemp(prefix="notebookjobs-nbval-"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    notebook = Path(str(item.fspath))
    if notebook.suffix == ".ipynb" and notebook.name not in _queues:
        _queues[notebook.name] = _folder / f"{notebook.stem}.duckdb"
        os.environ["NOTEBOOKJOBS_DB"] = str(_queues[notebook.name])


def pytest_sessionfinish(session: pytest.Session) -> None:
    for queue in _queues.values():
        subprocess.run([sys.executable, "-m", "notebookjobs", "worker", "stop"],
                       env=dict(os.environ, NOTEBOOKJOBS_DB=str(queue)), capture_output=True,
                       timeout=120)
