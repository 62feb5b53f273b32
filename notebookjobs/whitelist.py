"""whitelist.yaml (SPEC §4): its text parsed and validated into ``Settings``.

Validation here is about the file's shape (keys, types, numbers, names) and where owners live
(in the project, or in a package named under ``external_packages``). Whether an owner imports
and a member exists is checked by ``registry`` when a target is resolved, because that needs
the job code; both raise ``ConfigError`` naming the file and the key path.
"""

from __future__ import annotations

import importlib.machinery
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import scheduling, validate
from .errors import ConfigError
from .models import RetryPolicy
from .scheduling import Schedule

POLICY_KEYS = ("retry_attempts", "retry_delay", "retry_backoff", "timeout")
WORKER_KEYS = ("concurrency", "autostart", "grace_period")
TOP_KEYS = (*POLICY_KEYS, "worker", "allowed_jobs", "external_packages", "max_result_bytes",
            "allowed_notebooks", "schedules")
DEFAULT_MAX_RESULT_BYTES = 2**30  #: a job's result is at most 1 GiB unless the file says more
NOTEBOOK_SUFFIX = ".ipynb"
MAX_CONCURRENCY = 1024  #: children in one worker's pool at most
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: seconds after an edit during which a whitelist that refuses a job may still be half-written
#: (an editor or a script rewriting it in place): the worker waits instead of failing the job
SETTLE_S = 1.0
DEFAULT_LOCK_TIMEOUT_S = 60.0  #: seconds a client waits for the queue file before giving up


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """The ``worker:`` section of whitelist.yaml."""

    concurrency: int = 2  #: children in the pool
    autostart: bool = True  #: dispatch() starts a detached worker when none runs
    grace_period: float = 10.0  #: seconds running attempts may finish after a stop request


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

    def targets(self) -> list[str]:
        """Every allowed target, sorted."""
        return sorted(f"{o}.{m}" for o, members in self.allowed.items() for m in members)


def parse_whitelist(path: Path, text: str, *, root: Path, db_path: Path,
                    lock_timeout: float) -> Settings:
    """Validate the text of a whitelist file; every mistake is a one-line ``ConfigError``."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{path}: nested too deeply to read; fix the structure") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{path}: not valid YAML{where}: {problem}; fix the syntax there"
        ) from exc
    v = _Validator(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        v.fail([], data, "a mapping with keys " + ", ".join(TOP_KEYS))
    v.known_keys([], data, TOP_KEYS)
    policy = v.policy([], data, RetryPolicy())
    worker = v.worker(data.get("worker"))
    external = v.external_packages(data.get("external_packages"))
    allowed = v.allowed_jobs(data.get("allowed_jobs"), policy)
    max_result_bytes = DEFAULT_MAX_RESULT_BYTES
    if data.get("max_result_bytes") is not None:
        max_result_bytes = v.integer(["max_result_bytes"], data["max_result_bytes"], 1, 2**62)
    for owner in allowed:
        top = owner.split(".")[0]
        if top not in external and not _in_project(root, top):
            v.fail(["allowed_jobs", owner], owner,
                   f"a module or class of the project (no module {top!r} in {root}); to allow "
                   f"an installed package, name it under external_packages: [{top}]")
    notebooks = v.notebooks(data.get("allowed_notebooks"), policy)

    def allows(target: str) -> bool:
        owner, _, member = target.rpartition(".")
        return target in notebooks or member in allowed.get(owner, {})

    listed = v.schedules(data.get("schedules"), allows)
    return Settings(
        root=root, whitelist_path=path, db_path=db_path, policy=policy,
        worker=worker, allowed=allowed, lock_timeout=lock_timeout,
        external_packages=external, max_result_bytes=max_result_bytes, notebooks=notebooks,
        schedules=listed,
    )


class _DuplicateKey(Exception):
    """A mapping in whitelist.yaml names a key twice."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:
                continue  # an unhashable key: construct_mapping below reports it
            if first != key_node.start_mark.line + 1:
                raise _DuplicateKey(
                    f"the key {key!r} is given twice (lines {first} and "
                    f"{key_node.start_mark.line + 1}); keep one of them")
        return super().construct_mapping(node, deep=deep)


def _in_project(root: Path, top: str) -> bool:
    """Whether the top-level module or package ``top`` is a file of the project under ``root``.

    Built-in and frozen modules (``builtins``, ``sys``, ``os``) never are; nor is a module
    imported from elsewhere already. Nothing is imported here.
    """
    if top in sys.builtin_module_names or importlib.machinery.FrozenImporter.find_spec(top):
        return False
    loaded = sys.modules.get(top)
    if loaded is not None:
        where = getattr(loaded, "__file__", None) or next(
            iter(getattr(loaded, "__path__", [])), None
        )
        return where is not None and Path(where).resolve().is_relative_to(root.resolve())
    try:
        spec = importlib.machinery.PathFinder.find_spec(top, [str(root)])
    except (ImportError, ValueError):
        return False
    return spec is not None


class _Validator:
    """Checks one file; ``fail`` formats 'file: key > path: value is wrong; expected ...'."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, keys: list[str], value: Any, expected: str) -> None:
        where = " > ".join(keys) if keys else "top level"
        raise ConfigError(f"{self.path}: {where}: {value!r} is not allowed; expected {expected}")

    def known_keys(self, keys: list[str], data: dict, allowed: tuple[str, ...]) -> None:
        for key in data:
            if key not in allowed:
                self.fail([*keys, str(key)], key, "one of the keys " + ", ".join(allowed))

    def policy(self, keys: list[str], data: dict, base: RetryPolicy) -> RetryPolicy:
        values: dict[str, Any] = {}
        if "retry_attempts" in data:
            values["retry_attempts"] = self.integer(
                [*keys, "retry_attempts"], data["retry_attempts"], 0, validate.MAX_ATTEMPTS - 1
            )
        for name, lowest, expected in (
            ("retry_delay", 0.0, "a number of seconds >= 0"),
            ("retry_backoff", 0.0, "a number > 0 (1.0 keeps the delay constant)"),
        ):
            if name in data:
                values[name] = self.number(
                    [*keys, name],
                    data[name],
                    lowest,
                    expected,
                    strict=name == "retry_backoff",
                    highest=validate.MAX_BACKOFF
                    if name == "retry_backoff"
                    else validate.MAX_DURATION_S,
                )
        if "timeout" in data and data["timeout"] is not None:
            values["timeout"] = self.number([*keys, "timeout"], data["timeout"], 0.0,
                                            "null or a number of seconds > 0", strict=True)
        elif "timeout" in data:
            values["timeout"] = None
        return RetryPolicy(**{**base.__dict__, **values})

    def integer(self, keys: list[str], value: Any, lowest: int, highest: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
            self.fail(keys, value, f"a whole number >= {lowest} and <= {highest}")
        return value

    def number(self, keys: list[str], value: Any, lowest: float, expected: str, *, strict: bool,
               highest: float = validate.MAX_DURATION_S) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        try:
            ok = ok and math.isfinite(value)
        except OverflowError:  # an int too large for a float
            ok = False
        if not ok or value < lowest or (strict and value == lowest) or value > highest:
            self.fail(keys, value, f"{expected}, at most {highest:.4g}")
        return float(value)

    def worker(self, data: Any) -> WorkerSettings:
        if data is None:
            return WorkerSettings()
        if not isinstance(data, dict):
            self.fail(["worker"], data, "a mapping with keys " + ", ".join(WORKER_KEYS))
        self.known_keys(["worker"], data, WORKER_KEYS)
        values: dict[str, Any] = {}
        if "concurrency" in data:
            values["concurrency"] = self.integer(["worker", "concurrency"], data["concurrency"], 1,
                                                 MAX_CONCURRENCY)
        if "autostart" in data:
            if not isinstance(data["autostart"], bool):
                self.fail(["worker", "autostart"], data["autostart"], "true or false")
            values["autostart"] = data["autostart"]
        if "grace_period" in data:
            values["grace_period"] = self.number(["worker", "grace_period"], data["grace_period"],
                                                 0.0, "a number of seconds >= 0", strict=False)
        return WorkerSettings(**values)

    def external_packages(self, data: Any) -> tuple[str, ...]:
        if data is None:
            return ()
        if not isinstance(data, list) or not all(
            isinstance(n, str) and _NAME.match(n) for n in data
        ):
            self.fail(["external_packages"], data, "a list of top-level package names, e.g. "
                      "[mylib], whose members allowed_jobs may then name")
        return tuple(data)

    def allowed_jobs(self, data: Any, base: RetryPolicy) -> dict[str, dict[str, RetryPolicy]]:
        expected = "a mapping of owners (module or module.Class) to a list or mapping of members"
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.fail(["allowed_jobs"], data, expected)
        allowed: dict[str, dict[str, RetryPolicy]] = {}
        for owner, members in data.items():
            keys = ["allowed_jobs", str(owner)]
            if not isinstance(owner, str) or not all(_NAME.match(p) for p in owner.split(".")):
                self.fail(keys, owner, "a dotted name like jobs.sample.SampleJob, each part a "
                          "Python name that does not start with _")
            allowed[owner] = self.members(keys, members, base)
        return allowed

    def members(self, keys: list[str], data: Any, base: RetryPolicy) -> dict[str, RetryPolicy]:
        if isinstance(data, list):
            data = {member: None for member in data}
        elif not isinstance(data, dict):
            self.fail(keys, data, "a list of member names, or a mapping of member names to "
                      "overrides like {retry_attempts: 0, timeout: 600}")
        members: dict[str, RetryPolicy] = {}
        for member, overrides in data.items():
            mkeys = [*keys, str(member)]
            if not isinstance(member, str) or not _NAME.match(member):
                self.fail(mkeys, member, "the name of a public function or method "
                          "(names that start with _ are never allowed)")
            if overrides is None:
                overrides = {}
            if not isinstance(overrides, dict):
                self.fail(
                    mkeys, overrides, "a mapping of overrides with keys " + ", ".join(POLICY_KEYS)
                )
            self.known_keys(mkeys, overrides, POLICY_KEYS)
            members[member] = self.policy(mkeys, overrides, base)
        return members

    def notebooks(self, data: Any, base: RetryPolicy) -> dict[str, RetryPolicy]:
        """``allowed_notebooks:``: paths relative to the root, to overrides (SPEC §17)."""
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.fail(["allowed_notebooks"], data, "a mapping of notebook paths (relative to the "
                      "project root) to overrides, e.g. {notebooks/report.ipynb: {}}")
        notebooks: dict[str, RetryPolicy] = {}
        for name, overrides in data.items():
            keys = ["allowed_notebooks", str(name)]
            parts = name.split("/") if isinstance(name, str) else []
            if (not parts or not name.endswith(NOTEBOOK_SUFFIX) or "\\" in name
                    or any(p in ("", ".", "..") or p.startswith(".") for p in parts)):
                self.fail(keys, name, "the path of a .ipynb file inside the project, relative to "
                          "its root and written with /, e.g. notebooks/report.ipynb")
            if overrides is None:
                overrides = {}
            if not isinstance(overrides, dict):
                self.fail(keys, overrides, "a mapping of overrides ({} for none) with keys "
                          + ", ".join(POLICY_KEYS))
            self.known_keys(keys, overrides, POLICY_KEYS)
            notebooks[name] = self.policy(keys, overrides, base)
        return notebooks

    def schedules(self, data: Any, allowed: Any) -> dict[str, Schedule]:
        """``schedules:``: name -> schedule (``scheduling.parse`` checks each one)."""
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.fail(["schedules"], data, "a mapping of schedule names to {target: ..., cron: "
                      "... or every: ...}")
        return {name: scheduling.parse(self, name, entry, allowed) for name, entry in data.items()}
