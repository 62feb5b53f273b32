"""Project root, file locations and whitelist.yaml: loaded, validated, turned into ``Settings``.

Validation here is about the file's shape (keys, types, numbers, names). Whether an owner imports
and a member exists is checked by ``registry`` when a target is resolved, because that needs the
job code; both raise ``ConfigError`` naming the file and the key path.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .models import RetryPolicy

logger = logging.getLogger(__name__)

WHITELIST_NAME = "whitelist.yaml"
ENV_ROOT = "NOTEBOOKJOBS_ROOT"
ENV_DB = "NOTEBOOKJOBS_DB"
ENV_LOCK_TIMEOUT = "NOTEBOOKJOBS_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_S = 60.0  # seconds a client waits for the queue file before giving up

POLICY_KEYS = ("retry_attempts", "retry_delay", "retry_backoff", "timeout")
WORKER_KEYS = ("concurrency", "autostart", "grace_period")
TOP_KEYS = (*POLICY_KEYS, "worker", "allowed_jobs")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


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

    @property
    def logs_dir(self) -> Path:
        """``<root>/logs``, created on first use."""
        path = self.root / "logs"
        if not path.is_dir():
            path.mkdir(parents=True, exist_ok=True)
        return path

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

    def policy_for(self, target: str) -> RetryPolicy:
        """The retry policy of an allowed target."""
        owner, _, member = target.rpartition(".")
        return self.allowed[owner][member]

    def targets(self) -> list[str]:
        """Every allowed target, sorted."""
        return sorted(f"{o}.{m}" for o, members in self.allowed.items() for m in members)


_roots: dict[Path, Path] = {}  # folder -> root found above it (a dispatch should not walk up)


def find_root(start: Path | None = None) -> Path:
    """The project root: ``$NOTEBOOKJOBS_ROOT``, else the nearest folder upwards with whitelist.yaml."""
    env = os.environ.get(ENV_ROOT)
    if env:
        root = Path(env).expanduser().resolve()
        if not (root / WHITELIST_NAME).is_file():
            raise ConfigError(
                f"{ENV_ROOT}={env} has no {WHITELIST_NAME}; create it there or unset {ENV_ROOT}"
            )
        return root
    here = (start or Path.cwd()).resolve()
    cached = _roots.get(here)
    if cached is not None and (cached / WHITELIST_NAME).is_file():
        return cached
    for folder in (here, *here.parents):
        if (folder / WHITELIST_NAME).is_file():
            _roots[here] = folder
            return folder
    raise ConfigError(
        f"no {WHITELIST_NAME} in {here} or any folder above it; create one in your project "
        f"folder or set {ENV_ROOT} to the folder that holds it"
    )


def db_path_for(root: Path) -> Path:
    """``$NOTEBOOKJOBS_DB`` or ``<root>/.notebookjobs/queue.duckdb``."""
    env = os.environ.get(ENV_DB)
    return Path(env).expanduser().resolve() if env else root / ".notebookjobs" / "queue.duckdb"


_cache: dict[Path, tuple[tuple[int, int, str | None, str | None], Settings]] = {}


_whitelists: dict[Path, tuple[Path, str]] = {}  # root -> its whitelist.yaml, as Path and str


def load_settings(root: Path | None = None) -> Settings:
    """Read and validate whitelist.yaml of ``root`` (default: ``find_root()``).

    The result is cached until the file changes, so edits apply to the next call (hot reload)
    while repeated dispatches do not re-parse it.
    """
    # An absolute root is taken as given: the worker and its children pass one for every
    # attempt, and resolving it would cost a system call per path component each time.
    root = root if root is not None and root.is_absolute() else (root or find_root()).resolve()
    path, name = _whitelists.get(root) or _whitelists.setdefault(
        root, (root / WHITELIST_NAME, str(root / WHITELIST_NAME)))
    try:
        stat = os.stat(name)  # per attempt in every child: plain os.stat, no pathlib
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror}); create the file") from exc
    key = (stat.st_mtime_ns, stat.st_size, os.environ.get(ENV_DB), os.environ.get(ENV_LOCK_TIMEOUT))
    cached = _cache.get(path)
    if cached and cached[0] == key:
        return cached[1]
    settings = parse_whitelist(path, path.read_text(encoding="utf-8"), root=root)
    _cache[path] = (key, settings)
    return settings


def parse_whitelist(path: Path, text: str, *, root: Path) -> Settings:
    """Validate the text of a whitelist file; every mistake is a one-line ``ConfigError``."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}; fix the syntax there") from exc
    v = _Validator(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        v.fail([], data, "a mapping with keys " + ", ".join(TOP_KEYS))
    v.known_keys([], data, TOP_KEYS)
    policy = v.policy([], data, RetryPolicy())
    worker = v.worker(data.get("worker"))
    allowed = v.allowed_jobs(data.get("allowed_jobs"), policy)
    return Settings(
        root=root, whitelist_path=path, db_path=db_path_for(root), policy=policy,
        worker=worker, allowed=allowed, lock_timeout=_lock_timeout(),
    )


def _lock_timeout() -> float:
    raw = os.environ.get(ENV_LOCK_TIMEOUT)
    if raw is None:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or math.isinf(value):
        raise ConfigError(f"{ENV_LOCK_TIMEOUT}={raw!r} is not allowed; set it to seconds > 0")
    return value


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
            values["retry_attempts"] = self.integer([*keys, "retry_attempts"], data["retry_attempts"], 0)
        for name, lowest, expected in (
            ("retry_delay", 0.0, "a number of seconds >= 0"),
            ("retry_backoff", 0.0, "a number > 0 (1.0 keeps the delay constant)"),
        ):
            if name in data:
                values[name] = self.number([*keys, name], data[name], lowest, expected,
                                           strict=name == "retry_backoff")
        if "timeout" in data and data["timeout"] is not None:
            values["timeout"] = self.number([*keys, "timeout"], data["timeout"], 0.0,
                                            "null or a number of seconds > 0", strict=True)
        elif "timeout" in data:
            values["timeout"] = None
        return RetryPolicy(**{**base.__dict__, **values})

    def integer(self, keys: list[str], value: Any, lowest: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            self.fail(keys, value, f"a whole number >= {lowest}")
        return value

    def number(self, keys: list[str], value: Any, lowest: float, expected: str, *, strict: bool) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value < lowest or (strict and value == lowest):
            self.fail(keys, value, expected)
        return float(value)

    def worker(self, data: Any) -> WorkerSettings:
        if data is None:
            return WorkerSettings()
        if not isinstance(data, dict):
            self.fail(["worker"], data, "a mapping with keys " + ", ".join(WORKER_KEYS))
        self.known_keys(["worker"], data, WORKER_KEYS)
        values: dict[str, Any] = {}
        if "concurrency" in data:
            values["concurrency"] = self.integer(["worker", "concurrency"], data["concurrency"], 1)
        if "autostart" in data:
            if not isinstance(data["autostart"], bool):
                self.fail(["worker", "autostart"], data["autostart"], "true or false")
            values["autostart"] = data["autostart"]
        if "grace_period" in data:
            values["grace_period"] = self.number(["worker", "grace_period"], data["grace_period"],
                                                 0.0, "a number of seconds >= 0", strict=False)
        return WorkerSettings(**values)

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
                self.fail(mkeys, overrides, "a mapping of overrides with keys " + ", ".join(POLICY_KEYS))
            self.known_keys(mkeys, overrides, POLICY_KEYS)
            members[member] = self.policy(mkeys, overrides, base)
        return members
