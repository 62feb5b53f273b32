"""notebookjobs: background jobs for Jupyter, with the queue in a DuckDB file.

The public API of SPEC §6::

    import notebookjobs as nj
    job = nj.dispatch("jobs.sample.SampleJobClass.process", "a", "b", priority=5, delay=10)
    job.result()          # a Job: an int equal to the id, with status/wait/result/cancel/retry

Names are imported on first use (PEP 562), so ``import notebookjobs`` stays cheap for the
worker's children and the CLI, which do not need pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

# Eager, not in _LAZY: nj.progress is called by job code in every pool child, and importing the
# submodule notebookjobs.dashboard would otherwise bind the *module* as nj.dashboard; this import
# binds the function over it (both modules import nothing heavy).
from .attempt.progress import progress
from .dashboard import dashboard
from .errors import (
    ConfigError,
    InvalidArgumentsError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    JobStateError,
    NotAllowedError,
    NotebookJobsError,
    NoWorkerWarning,
    QueryTimeoutError,
    StorageError,
    StoreBusyError,
    WorkerError,
)
from .model.statuses import JobStatus

#: public name -> module that defines it (``module:name`` where the module names it otherwise)
_LAZY = {
    "dispatch": "notebook.handle",
    "dispatch_many": "notebook.handle",
    "status": "client",
    "wait": "client",
    "cancel": "client",
    "retry": "notebook.handle",
    "jobs": "client",
    "history": "client.frames",
    "counts": "client",
    "available_jobs": "client",
    "start_worker": "client",
    "stop_worker": "client",
    "worker_status": "client",
    "stats": "client.frames",
    "sql": "client.frames",
    "prune": "client.frames",
    "result": "notebook.handle",
    "job": "notebook.handle",
    "Job": "notebook.handle:JobHandle",
    "notify": "notebook.toasts",
    "schedules": "client",
}

__all__ = [
    *_LAZY, "ConfigError", "InvalidArgumentsError", "JobCancelledError", "JobFailedError",
    "JobNotFoundError", "JobStateError", "NotAllowedError", "NotebookJobsError", "NoWorkerWarning",
    "QueryTimeoutError", "StorageError", "StoreBusyError", "WorkerError",
    "JobStatus", "dashboard", "progress", "__version__",
]


def _version() -> str:
    """The installed distribution's version: pyproject.toml is the one place it is written.

    Read from the name of the wheel's ``notebookjobs-<version>.dist-info`` folder beside the
    package, as installed (the installed-packages layout names it so): importlib.metadata
    costs ~18 ms to import, a third of ``notebookjobs --version`` (SPEC §13: 60 ms). An
    editable install keeps its dist-info elsewhere; importlib.metadata finds it then."""
    import os

    site = os.path.dirname(os.path.dirname(__file__))
    prefix, suffix = "notebookjobs-", ".dist-info"
    try:
        found = [n for n in os.listdir(site) if n.startswith(prefix) and n.endswith(suffix)]
    except OSError:
        found = []
    if len(found) == 1:
        return found[0][len(prefix):-len(suffix)]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("notebookjobs")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read on first use: the metadata costs a few ms to load
        globals()[name] = value = _version()
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'notebookjobs' has no attribute {name!r}")
    module, _, defined = module.partition(":")
    value = getattr(importlib.import_module(f".{module}", __name__), defined or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"__version__"})


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext notebookjobs``: register the ``%jobs`` magic."""
    from .cli.magics import load_ipython_extension as load

    load(ipython)
