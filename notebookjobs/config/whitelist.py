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
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, InvalidArgumentsError
from ..model import schedule as scheduling
from ..model import validate
from ..model.records import RetryPolicy
from ..model.schedule import Schedule
from .settings import (  # the names of its keys and what it is read into
    DASK_KEYS,
    DEFAULT_DISCOVER,
    DEFAULT_LOCK_TIMEOUT_S,
    DEFAULT_MAX_RESULT_BYTES,
    EXECUTORS,
    MAX_CONCURRENCY,
    NOTEBOOK_SUFFIX,
    POLICY_KEYS,
    SETTLE_S,
    TOP_KEYS,
    WORKER_KEYS,
    DaskSettings,
    Settings,
    WorkerSettings,
)

__all__ = ["DASK_KEYS", "DEFAULT_DISCOVER", "DEFAULT_LOCK_TIMEOUT_S", "DEFAULT_MAX_RESULT_BYTES",
           "EXECUTORS", "MAX_CONCURRENCY", "NOTEBOOK_SUFFIX", "POLICY_KEYS", "SETTLE_S",
           "TOP_KEYS", "WORKER_KEYS", "DaskSettings", "Settings", "WorkerSettings",
           "parse_whitelist"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  #: a Python identifier (ASCII)


def parse_whitelist(path: Path, text: str, *, root: Path, db_path: Path,
                    lock_timeout: float) -> Settings:
    """Validate the text of a whitelist file; every mistake is a one-line ``ConfigError``."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
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
    discover = v.discover(data.get("discover"))
    for i, name in enumerate(discover):
        top = name.split(".")[0]
        if top not in external and not _in_project(root, top):
            v.fail(["discover", str(i)], name,
                   f"a package or module of the project (no module {top!r} in {root}), or of "
                   "a package named under external_packages")
    notebooks = v.notebooks(data.get("allowed_notebooks"), policy)

    def allows(target: str) -> bool:
        owner, _, member = target.rpartition(".")
        return target in notebooks or member in allowed.get(owner, {})

    listed = v.schedules(data.get("schedules"), allows)
    return Settings(
        root=root, whitelist_path=path, db_path=db_path, policy=policy,
        worker=worker, allowed=allowed, lock_timeout=lock_timeout,
        external_packages=external, max_result_bytes=max_result_bytes, discover=discover,
        notebooks=notebooks, schedules=listed,
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
        if "retry_delay" in data:
            values["retry_delay"] = self.duration([*keys, "retry_delay"], data["retry_delay"],
                                                  strict=False)
        if "retry_backoff" in data:
            values["retry_backoff"] = self.number(
                [*keys, "retry_backoff"], data["retry_backoff"], 0.0,
                "a number > 0 (1.0 keeps the delay constant)", strict=True,
                highest=validate.MAX_BACKOFF)
        if "timeout" in data and data["timeout"] is not None:
            values["timeout"] = self.duration([*keys, "timeout"], data["timeout"], strict=True,
                                              none="null or ")
        elif "timeout" in data:
            values["timeout"] = None
        return RetryPolicy(**{**base.__dict__, **values})

    def integer(self, keys: list[str], value: Any, lowest: int, highest: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
            self.fail(keys, value, f"a whole number >= {lowest} and <= {highest}")
        return value

    def number(self, keys: list[str], value: Any, lowest: float, expected: str, *, strict: bool,
               highest: float = validate.MAX_DURATION_S, shown: Any = None) -> float:
        """A finite number in range; ``shown``: the value as written, when ``value`` was read
        from it (a duration string)."""
        shown = value if shown is None else shown
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        try:
            ok = ok and math.isfinite(value)
        except OverflowError:  # an int too large for a float
            ok = False
        if not ok or value < lowest or (strict and value == lowest) or value > highest:
            self.fail(keys, shown, f"{expected}, at most {highest:.4g}")
        return float(value)

    def duration(self, keys: list[str], value: Any, *, strict: bool, none: str = "") -> float:
        """Seconds, or a duration string ('90s', '5m', '1h30m', '2d'): SPEC §6, every duration
        key reads both, with the one parser of ``validate``."""
        seconds = validate.parse_duration(value) if isinstance(value, str) else value
        bound = "> 0" if strict else ">= 0"
        return self.number(keys, seconds if seconds is not None else value, 0.0,
                           f"{none}{validate.DURATION_HINT} ({bound})", strict=strict,
                           shown=value)

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
            values["concurrency_set"] = True
        if "autostart" in data:
            if not isinstance(data["autostart"], bool):
                self.fail(["worker", "autostart"], data["autostart"], "true or false")
            values["autostart"] = data["autostart"]
        if "grace_period" in data:
            values["grace_period"] = self.duration(["worker", "grace_period"],
                                                   data["grace_period"], strict=False)
        if "executor" in data:
            if data["executor"] not in EXECUTORS:
                self.fail(["worker", "executor"], data["executor"], "local (the worker's own "
                          "pool) or dask (a Dask cluster, with worker.dask.scheduler)")
            values["executor"] = data["executor"]
        values["dask"] = self.dask(data.get("dask"))
        if values.get("executor") == "dask" and values["dask"].scheduler is None:
            self.fail(["worker", "dask", "scheduler"], None, "the Dask scheduler's address when "
                      "worker.executor is dask, e.g. dask: {scheduler: tcp://host:8786}")
        return WorkerSettings(**values)

    def dask(self, data: Any) -> DaskSettings:
        if data is None:
            return DaskSettings()
        if not isinstance(data, dict):
            self.fail(["worker", "dask"], data, "a mapping with keys " + ", ".join(DASK_KEYS))
        self.known_keys(["worker", "dask"], data, DASK_KEYS)
        values: dict[str, Any] = {}
        if "scheduler" in data:
            try:
                values["scheduler"] = validate.scheduler_address(data["scheduler"])
            except InvalidArgumentsError:
                self.fail(["worker", "dask", "scheduler"], data["scheduler"],
                          "a Dask scheduler address like tcp://host:8786")
        if "upload" in data:
            if not isinstance(data["upload"], bool):
                self.fail(["worker", "dask", "upload"], data["upload"], "true or false")
            values["upload"] = data["upload"]
        return DaskSettings(**values)

    def external_packages(self, data: Any) -> tuple[str, ...]:
        if data is None:
            return ()
        if not isinstance(data, list) or not all(
            isinstance(n, str) and _NAME.match(n) for n in data
        ):
            self.fail(["external_packages"], data, "a list of top-level package names, e.g. "
                      "[mylib], whose members allowed_jobs may then name")
        return tuple(data)

    def discover(self, data: Any) -> tuple[str, ...]:
        if data is None:
            return ()
        if not isinstance(data, list) or not all(
            isinstance(n, str) and all(_NAME.match(p) for p in n.split(".")) for n in data
        ):
            self.fail(["discover"], data, "a list of packages or modules to list in the "
                      "dashboard, e.g. [tasks, lib.reports]")
        return tuple(dict.fromkeys(data))

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
            for item in data:
                if not isinstance(item, str):  # e.g. [ok, {f: {timeout: 1}}]: one or the other
                    self.fail(keys, item, "a member name in the list; to give members "
                              "overrides, write them all as a mapping: {ok: null, f: {timeout: 1}}")
            data = dict.fromkeys(data)
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
        """``schedules:``: name -> schedule (``schedule.parse`` checks each one)."""
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.fail(["schedules"], data, "a mapping of schedule names to {target: ..., cron: "
                      "... or every: ...}")
        return {name: scheduling.parse(self, name, entry, allowed) for name, entry in data.items()}
