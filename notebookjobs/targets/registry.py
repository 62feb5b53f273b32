"""Job code: whitelisted targets resolved to callables, with hot reload (discovery: ``discovery``).

The queue stores target *names*; only this module turns a name into something that runs, and only
for names the current whitelist allows (checked at dispatch and again in the worker).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ..config import Settings
from ..errors import ConfigError, NotAllowedError

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class Target:
    """A resolved, allowed target."""

    name: str  #: dotted name, e.g. jobs.sample.SampleJobClass.process
    owner: Any  #: the module or class
    member: str
    kind: str  #: function, method, classmethod, staticmethod or notebook (owner: its Path)
    signature: inspect.Signature  #: without self/cls: what callers bind against
    doc: str  #: first line of the docstring
    #: parameter -> its help, where the target has some (a notebook's parameter comments)
    parameter_help: dict[str, str] = field(default_factory=dict)

    def call(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Run the target once; a class owner is instantiated with no arguments for methods."""
        if self.kind == "method":
            return getattr(self.owner(), self.member)(*args, **kwargs)
        return getattr(self.owner, self.member)(*args, **kwargs)


def ensure_on_path(root: Path) -> None:
    """Put the project root on sys.path so ``jobs.*`` imports from anywhere (SPEC §2)."""
    entry = str(root)
    if entry not in sys.path:
        sys.path.insert(0, entry)


class _Loaded:
    """What this process knows of the job code it has imported. One per process, as
    ``sys.modules`` is: the cache of a module's source time belongs with the module."""

    def __init__(self) -> None:
        self.mtimes: dict[str, int] = {}  #: module -> st_mtime_ns of its source when loaded
        self.class_owners: set[str] = set()  #: owners known to be module.Class
        #: None: a module's source is looked at by every import_fresh; else the round set by
        #: ``check_sources_once_per``, and ``checked`` says which modules were looked at in it
        self.round: int | None = None
        self.checked: dict[str, int] = {}
        #: target -> (settings, member object, Target): reused while neither changed
        self.targets: dict[str, tuple[Settings, Any, Target]] = {}
        # Threads of one process (a notebook's, the dashboard's refresh) may resolve targets at
        # once: a module half-way through its first import is in sys.modules already, and
        # another thread would see it without its functions.
        self.lock = threading.RLock()


_LOADED = _Loaded()


def check_sources_once_per(round_: int) -> None:
    """From now on, in this process, look at a module's source file (a ``stat``) once per
    ``round_`` (a pool child: per "run" message, as it reads whitelist.yaml; ``child``'s
    ``_Whitelist`` says why), not at every ``import_fresh``: an edit applies from the next round."""
    _LOADED.round = round_


def import_fresh(modname: str) -> ModuleType:
    """Import a module, reloading it when its source changed since it was loaded (hot reload)."""
    with _LOADED.lock:
        return _import_fresh(modname)


def _import_fresh(modname: str) -> ModuleType:
    module = sys.modules.get(modname)
    round_ = _LOADED.round
    if module is None:
        importlib.invalidate_caches()
        module = importlib.import_module(modname)
    else:
        if round_ is not None and _LOADED.checked.get(modname) == round_:
            return module
        mtime = _source_mtime(module)
        if mtime is None or mtime == _LOADED.mtimes.get(modname):
            if round_ is not None:
                _LOADED.checked[modname] = round_
            return module
        module = importlib.reload(module)  # if it raises, the next call looks again
    mtime = _source_mtime(module)
    if mtime is not None:
        _LOADED.mtimes[modname] = mtime
    if round_ is not None:
        _LOADED.checked[modname] = round_
    return module


def _source_mtime(module: ModuleType) -> int | None:
    path = getattr(module, "__file__", None)
    try:
        return os.stat(path).st_mtime_ns if path else None
    except OSError:
        return None


def _import_owner(owner: str) -> Any:
    """The module or class named ``owner``; ImportError/AttributeError when it does not exist."""
    if owner not in _LOADED.class_owners:  # a known class: skip the import that fails
        try:
            return import_fresh(owner)
        except ModuleNotFoundError as exc:
            # Not a module: maybe module.Class. Only fall back when the missing module is this name.
            if exc.name != owner:
                raise
    modname, _, clsname = owner.rpartition(".")
    if not modname:
        raise ModuleNotFoundError(f"No module named {owner!r}", name=owner)
    module = import_fresh(modname)
    if not hasattr(module, clsname):
        raise AttributeError(f"module {modname!r} has no attribute {clsname!r}")
    _LOADED.class_owners.add(owner)
    return getattr(module, clsname)


def member_kind(owner: Any, member: str) -> str:
    if inspect.ismodule(owner):
        return "function"
    raw = inspect.getattr_static(owner, member)
    if isinstance(raw, staticmethod):
        return "staticmethod"
    if isinstance(raw, classmethod):
        return "classmethod"
    return "method"


def signature_of(owner: Any, member: str, kind: str) -> inspect.Signature:
    func = getattr(owner, member)
    try:
        sig = inspect.signature(func, eval_str=True)
    except (NameError, TypeError, SyntaxError):
        sig = inspect.signature(func)
    if kind == "method":
        params = list(sig.parameters.values())[1:]  # self: the worker makes the instance
        sig = sig.replace(parameters=params)
    return sig


def first_doc_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def resolve(target: str, settings: Settings) -> Target:
    """The callable behind an allowed target.

    Raises ``NotAllowedError`` when the whitelist does not name it (listing what the owner
    allows) and ``ConfigError`` when the whitelist names something that does not import,
    exist or cannot be called. A notebook of ``allowed_notebooks`` resolves to a target of
    kind "notebook" whose parameters are those of its ``parameters`` cell (``notebooks``).
    """
    if isinstance(target, str) and target in settings.notebooks:
        from . import notebooks  # nbformat only when notebooks are allowed

        taken = notebooks.signature(target, settings)
        return Target(name=target, owner=notebooks.path_of(target, settings),
                      member=target.rpartition("/")[2], kind="notebook",
                      signature=taken.signature, doc=taken.doc, parameter_help=taken.help)
    split = settings.split_target(target) if isinstance(target, str) else None
    if split is None:
        raise NotAllowedError(settings.refusal(target))
    owner_name, member = split
    ensure_on_path(settings.root)
    where = f"{settings.whitelist_path}: allowed_jobs > {owner_name}"
    try:
        owner = _import_owner(owner_name)
    except Exception as exc:  # job code can fail to import in any way; report it as config
        raise ConfigError(
            f"{where}: cannot import {owner_name!r} ({type(exc).__name__}: {exc}); "
            f"fix the module or the name (it must import from {settings.root})"
        ) from exc
    if not (inspect.ismodule(owner) or inspect.isclass(owner)):
        raise ConfigError(f"{where}: {owner_name!r} is a {type(owner).__name__}; "
                          "expected a module or a class")
    if not hasattr(owner, member):
        public = sorted(n for n in dir(owner) if not n.startswith("_")
                        and callable(getattr(owner, n, None)))
        raise ConfigError(f"{where} > {member}: {owner_name} has no member {member!r}; "
                          f"its public callables are: {', '.join(public) or 'none'}")
    if not callable(getattr(owner, member)):
        raise ConfigError(f"{where} > {member}: {owner_name}.{member} is not callable; "
                          "list only functions and methods")
    raw = getattr(owner, member)
    cached = _LOADED.targets.get(target)
    if cached is not None and cached[0] is settings and cached[1] is raw:
        return cached[2]  # same whitelist, same code: the signature need not be read again
    kind = member_kind(owner, member)
    resolved = Target(name=target, owner=owner, member=member, kind=kind,
                      signature=signature_of(owner, member, kind), doc=first_doc_line(raw))
    _LOADED.targets[target] = (settings, raw, resolved)
    return resolved

