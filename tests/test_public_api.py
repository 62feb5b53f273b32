"""The public names of SPEC §6 stay callables, whatever submodules have been imported."""

from __future__ import annotations

import importlib
import pkgutil

import notebookjobs as nj

SPEC_NAMES = ["dispatch", "status", "wait", "cancel", "retry", "jobs", "history", "stats", "sql",
              "available_jobs", "start_worker", "stop_worker", "worker_status", "progress",
              "dashboard"]


def test_spec_names_are_functions_even_after_importing_every_submodule():
    for module in pkgutil.walk_packages(nj.__path__, "notebookjobs."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    for name in SPEC_NAMES:
        value = getattr(nj, name)
        assert callable(value) and not isinstance(value, type(nj)), name


def test_exceptions_share_one_base():
    for name in ("ConfigError", "NotAllowedError", "InvalidArgumentsError", "JobNotFoundError"):
        assert issubclass(getattr(nj, name), nj.NotebookJobsError)
