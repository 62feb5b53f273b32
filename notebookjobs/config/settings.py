"""What whitelist.yaml and the environment say, once read and checked: ``Settings`` and its
sections, with the names of the file's keys and their defaults. ``whitelist.py`` parses and
validates the file into these (and re-exports them)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..model.records import RetryPolicy
from ..model.schedule import Schedule
from ..model.validate.values import MAX_CONCURRENCY  # noqa: F401  (whitelist.yaml's cap, re-exported)

POLICY_KEYS = ("retry_attempts", "retry_delay", "retry_backoff", "timeout")
WORKER_KEYS = ("concurrency", "autostart", "grace_period", "executor", "dask")
DASK_KEYS = ("scheduler", "upload")
EXECUTORS = ("local", "dask")  #: where attempts run: the worker's own pool, or a Dask cluster
TOP_KEYS = (*POLICY_KEYS, "worker", "allowed_jobs", "external_packages", "max_result_bytes",
            "discover", "allowed_notebooks", "schedules")
DEFAULT_MAX_RESULT_BYTES = 2**30  #: a job's result is at most 1 GiB unless the file says more
#: the package discovery scans in every project (SPEC §4), whether or not the whitelist names it
DEFAULT_DISCOVER = "jobs"
NOTEBOOK_SUFFIX = ".ipynb"
#: seconds after an edit during which a whitelist that refuses a job may still be half-written
#: (an editor or a script rewriting it in place): the worker waits instead of failing the job
SETTLE_S = 1.0
DEFAULT_LOCK_TIMEOUT_S = 60.0  #: seconds a client waits for the queue file before giving up


@dataclass(frozen=True, kw_only=True)
class DaskSettings:
    """The ``worker.dask:`` section of whitelist.yaml (SPEC §18)."""

    scheduler: str | None = None  #: the Dask scheduler's address, e.g. tcp://host:8786
    #: upload the project root to the Dask workers at start (Dask's UploadDirectory plugin),
    #: for clusters that do not share the project's filesystem
    upload: bool = False


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """The ``worker:`` section of whitelist.yaml."""

    concurrency: int = 2  #: children in the pool; attempts in flight on a Dask cluster
    #: whether the file gives ``concurrency``: on Dask the default is the cluster's threads
    concurrency_set: bool = False
    autostart: bool = True  #: dispatch() starts a detached worker when none runs
    grace_period: float = 10.0  #: seconds running attempts may finish after a stop request
    executor: str = "local"  #: one of EXECUTORS
    dask: DaskSettings = field(default_factory=DaskSettings)

    @property
    def dask_scheduler(self) -> str | None:
        """The scheduler to send attempts to, when ``executor`` is dask; else None."""
        return self.dask.scheduler if self.executor == "dask" else None


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything read from the environment and whitelist.yaml."""

    root: Path
    whitelist_path: Path
    db_path: Path
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    #: owner -> member -> effective policy (global settings with the member's overrides)
    allowed: dict[str, dict[str, RetryPolicy]] = field(default_factory=dict)
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S
    #: top-level packages outside the project whose members may be allowed
    external_packages: tuple[str, ...] = ()
    #: the ``discover:`` list: packages or modules scanned by discovery besides ``jobs`` and
    #: the owners' packages (see ``discovered_packages``)
    discover: tuple[str, ...] = ()
    #: notebook path (relative to the root, "/"-separated) -> its policy (SPEC §17)
    notebooks: dict[str, RetryPolicy] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)  #: by name (SPEC §16)
    #: why whitelist.yaml could not be used (then only reads and worker control work), or None
    problem: str | None = None
    #: st_mtime_ns of whitelist.yaml when it was read
    mtime_ns: int = 0
    #: bytes a job's result may take (a result file, or its JSON or repr text); larger fails
    #: the attempt
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES

    def check(self) -> Settings:
        """These settings, or the ``ConfigError`` that made the whitelist unusable."""
        if self.problem is not None:
            raise ConfigError(self.problem)
        return self

    def settling(self) -> bool:
        """Whether whitelist.yaml changed so recently that it may be half-written."""
        return time.time_ns() - self.mtime_ns < SETTLE_S * 1e9

    @property
    def logs_dir(self) -> Path:
        """``<root>/logs`` (created, 0700, by whoever writes a log there first)."""
        return self.root / "logs"

    @property
    def lock_path(self) -> Path:
        """The sidecar file every process flocks before it opens the database."""
        return self.db_path.with_name(self.db_path.name + ".lock")

    def split_target(self, target: str) -> tuple[str, str] | None:
        """``owner, member`` when the whitelist allows ``target``, else None."""
        owner, _, member = target.rpartition(".")
        if owner in self.allowed and member in self.allowed[owner]:
            return owner, member
        return None

    def allows(self, target: str) -> bool:
        """Whether the whitelist allows ``target``: a function, a method or a notebook."""
        return target in self.notebooks or self.split_target(target) is not None

    def refusal(self, target: Any) -> str:
        """Why ``target`` may not run, and how to allow it (``NotAllowedError``'s message)."""
        if isinstance(target, str) and target.endswith(".ipynb"):
            listed = ", ".join(sorted(self.notebooks)) or "none"
            return (f"{target!r} is not allowed: add it under allowed_notebooks in "
                    f"{self.whitelist_path} (a path relative to {self.root}; allowed "
                    f"notebooks: {listed})")
        if not isinstance(target, str) or "." not in target:
            return (f"{target!r} is not a target; use a dotted name like module.function or "
                    f"module.Class.method listed in {self.whitelist_path}")
        owner, _, member = target.rpartition(".")
        if owner in self.allowed:
            allowed = ", ".join(sorted(self.allowed[owner]))
            return (f"{target!r} is not allowed: {owner} allows only {allowed}; add {member!r} "
                    f"under allowed_jobs > {owner} in {self.whitelist_path} to allow it")
        owners = ", ".join(sorted(self.allowed)) or "none"
        return (f"{target!r} is not allowed: {owner!r} is not under allowed_jobs in "
                f"{self.whitelist_path} (allowed owners: {owners}); add it there to allow it")

    @property
    def allows_anything(self) -> bool:
        """Whether any job at all may run (an empty file may be one being rewritten)."""
        return bool(self.allowed or self.notebooks)

    def policy_for(self, target: str) -> RetryPolicy:
        """The retry policy of an allowed target."""
        if target in self.notebooks:
            return self.notebooks[target]
        owner, _, member = target.rpartition(".")
        return self.allowed[owner][member]

    def discovered_packages(self) -> list[str]:
        """What discovery scans (SPEC §4): ``jobs``, the top-level package of every owner under
        allowed_jobs that lives in the project, and the ``discover:`` list; no name twice."""
        names = [DEFAULT_DISCOVER]
        names += [owner.split(".")[0] for owner in self.allowed
                  if owner.split(".")[0] not in self.external_packages]
        names += self.discover
        return list(dict.fromkeys(names))

    def targets(self) -> list[str]:
        """Every allowed target, sorted."""
        return sorted(f"{o}.{m}" for o, members in self.allowed.items() for m in members)
