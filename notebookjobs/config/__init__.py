"""Project root, file locations, and whitelist.yaml loaded (and reloaded when it changes) into
``Settings`` (``config.whitelist`` parses and validates it).

Validation here is about the file's shape (keys, types, numbers, names). Whether an owner imports
and a member exists is checked by ``registry`` when a target is resolved, because that needs the
job code; both raise ``ConfigError`` naming the file and the key path.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import replace
from pathlib import Path

from ..errors import ConfigError
from .whitelist import DEFAULT_LOCK_TIMEOUT_S, Settings, WorkerSettings, parse_whitelist

__all__ = ["ENV_DB", "ENV_LOCK_TIMEOUT", "ENV_ROOT", "Settings", "WHITELIST_NAME",
           "WorkerSettings", "db_path_for", "find_root", "load_settings"]

logger = logging.getLogger(__name__)

WHITELIST_NAME = "whitelist.yaml"
ENV_ROOT = "NOTEBOOKJOBS_ROOT"
ENV_DB = "NOTEBOOKJOBS_DB"
ENV_LOCK_TIMEOUT = "NOTEBOOKJOBS_LOCK_TIMEOUT"


class _Cache:
    """What this process has read of projects, so that a dispatch neither walks up the folders
    nor parses whitelist.yaml again while it has not changed (its mtime and size decide)."""

    def __init__(self) -> None:
        self.roots: dict[Path, Path] = {}  #: folder -> the root found above it
        #: the working directory as os.getcwd() gives it -> (root, its whitelist as str):
        #: resolving the directory costs a system call per component, on every dispatch
        self.cwd_roots: dict[str, tuple[Path, str]] = {}
        #: $NOTEBOOKJOBS_ROOT (with the working directory when relative) -> root, whitelist
        self.env_roots: dict[str, tuple[Path, str]] = {}
        self.whitelists: dict[Path, tuple[Path, str]] = {}  #: root -> its whitelist, Path and str
        #: whitelist path -> (mtime, size, NOTEBOOKJOBS_DB, NOTEBOOKJOBS_LOCK_TIMEOUT), Settings
        self.settings: dict[Path, tuple[tuple[int, int, str | None, str | None], Settings]] = {}


_CACHE = _Cache()


def find_root(start: Path | None = None) -> Path:
    """The project root: ``$NOTEBOOKJOBS_ROOT``, else the nearest folder upwards with
    whitelist.yaml."""
    env = os.environ.get(ENV_ROOT)
    if env:
        # Kept per value (and working directory, for a relative one) while its whitelist is
        # there: resolving cost an lstat per path component on every dispatch.
        key = env if os.path.isabs(env) else f"{os.getcwd()}\0{env}"
        known = _CACHE.env_roots.get(key)
        if known is not None and os.path.isfile(known[1]):
            return known[0]
        root = Path(env).expanduser().resolve()
        if not (root / WHITELIST_NAME).is_file():
            raise ConfigError(
                f"{ENV_ROOT}={env} has no {WHITELIST_NAME}; create it there or unset {ENV_ROOT}"
            )
        _CACHE.env_roots[key] = (root, str(root / WHITELIST_NAME))
        return root
    cwd = os.getcwd() if start is None else None
    known = _CACHE.cwd_roots.get(cwd) if cwd is not None else None
    if known is not None and os.path.isfile(known[1]):
        return known[0]
    here = (start or Path(cwd or ".")).resolve()
    cached = _CACHE.roots.get(here)
    if cached is None or not (cached / WHITELIST_NAME).is_file():
        cached = next((folder for folder in (here, *here.parents)
                       if (folder / WHITELIST_NAME).is_file()), None)
    if cached is not None:
        _CACHE.roots[here] = cached
        if cwd is not None:
            _CACHE.cwd_roots[cwd] = (cached, str(cached / WHITELIST_NAME))
        return cached
    raise ConfigError(
        f"no {WHITELIST_NAME} in {here} or any folder above it; start a project with "
        f"`notebookjobs init`, or set {ENV_ROOT} to the folder that holds one"
    )


def db_path_for(root: Path) -> Path:
    """``$NOTEBOOKJOBS_DB`` or ``<root>/.notebookjobs/queue.duckdb``."""
    env = os.environ.get(ENV_DB)
    return _resolved(env) if env else root / ".notebookjobs" / "queue.duckdb"


@functools.lru_cache(maxsize=64)
def _resolved(path: str) -> Path:
    """``path`` made absolute once per value (resolving costs a system call per component, and
    every dispatch asks)."""
    return Path(path).expanduser().resolve()


def load_settings(root: Path | None = None, *, strict: bool = True) -> Settings:
    """Read and validate whitelist.yaml of ``root`` (default: ``find_root()``).

    The result is cached until the file changes, so edits apply to the next call (hot reload)
    while repeated dispatches do not re-parse it. With ``strict=False`` a whitelist that is
    missing, unreadable or invalid gives default settings with ``problem`` set instead of a
    ``ConfigError``: reads and worker control must work while the file is being fixed (SPEC §12).
    """
    try:
        return _load_settings(root)
    except ConfigError as exc:
        if strict:
            raise
        found = root if root is not None and root.is_absolute() else (root or find_root()).resolve()
        return Settings(root=found, whitelist_path=found / WHITELIST_NAME,
                        db_path=db_path_for(found), lock_timeout=_lock_timeout(),
                        problem=str(exc))


def _load_settings(root: Path | None) -> Settings:
    # An absolute root is taken as given: the worker and its children pass one for every
    # attempt, and resolving it would cost a system call per path component each time.
    # find_root's is resolved already.
    if root is None:
        root = find_root()
    elif not root.is_absolute():
        root = root.resolve()
    path, name = _CACHE.whitelists.get(root) or _CACHE.whitelists.setdefault(
        root, (root / WHITELIST_NAME, str(root / WHITELIST_NAME)))
    try:
        stat = os.stat(name)  # per attempt in every child: plain os.stat, no pathlib
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror}); create the file") from exc
    key = (stat.st_mtime_ns, stat.st_size, os.environ.get(ENV_DB), os.environ.get(ENV_LOCK_TIMEOUT))
    cached = _CACHE.settings.get(path)
    if cached and cached[0] == key:
        return cached[1]
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc
    settings = replace(parse_whitelist(path, text, root=root, lock_timeout=_lock_timeout(),
                                       db_path=db_path_for(root)), mtime_ns=stat.st_mtime_ns)
    _CACHE.settings[path] = (key, settings)
    return settings


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
