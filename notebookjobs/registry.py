"""Job code: discovery of the project's jobs/ tree, and whitelisted targets resolved to callables.

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
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .config import Settings
from .errors import ConfigError, NotAllowedError

logger = logging.getLogger(__name__)

JOBS_PACKAGE = "jobs"


@dataclass(frozen=True)
class Target:
    """A resolved, allowed target."""

    name: str  #: dotted name, e.g. jobs.sample.SampleJobClass.process
    owner: Any  #: the module or class
    member: str
    kind: str  #: function, method, classmethod or staticmethod
    signature: inspect.Signature  #: without self/cls: what callers bind against
    doc: str  #: first line of the docstring

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


_mtimes: dict[str, int] = {}
# Threads of one process (a notebook's, the dashboard's refresh) may resolve targets at once:
# a module half-way through its first import is in sys.modules already, and another thread
# would see it without its functions.
_import_lock = threading.RLock()


def import_fresh(modname: str) -> ModuleType:
    """Import a module, reloading it when its source changed since it was loaded (hot reload)."""
    with _import_lock:
        return _import_fresh(modname)


def _import_fresh(modname: str) -> ModuleType:
    module = sys.modules.get(modname)
    if module is None:
        importlib.invalidate_caches()
        module = importlib.import_module(modname)
    else:
        mtime = _source_mtime(module)
        if mtime is None or mtime == _mtimes.get(modname):
            return module
        module = importlib.reload(module)
    mtime = _source_mtime(module)
    if mtime is not None:
        _mtimes[modname] = mtime
    return module


def _source_mtime(module: ModuleType) -> int | None:
    path = getattr(module, "__file__", None)
    try:
        return os.stat(path).st_mtime_ns if path else None
    except OSError:
        return None


_class_owners: set[str] = set()  # owners known to be module.Class: skip the failing import


def _import_owner(owner: str) -> Any:
    """The module or class named ``owner``; ImportError/AttributeError when it does not exist."""
    if owner not in _class_owners:
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
    _class_owners.add(owner)
    return getattr(module, clsname)


def _member_kind(owner: Any, member: str) -> str:
    if inspect.ismodule(owner):
        return "function"
    raw = inspect.getattr_static(owner, member)
    if isinstance(raw, staticmethod):
        return "staticmethod"
    if isinstance(raw, classmethod):
        return "classmethod"
    return "method"


def _signature(owner: Any, member: str, kind: str) -> inspect.Signature:
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
    exist or cannot be called.
    """
    split = settings.split_target(target) if isinstance(target, str) else None
    if split is None:
        raise NotAllowedError(_not_allowed_message(target, settings))
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
    cached = _resolved.get(target)
    if cached is not None and cached[0] is settings and cached[1] is raw:
        return cached[2]  # same whitelist, same code: the signature need not be read again
    kind = _member_kind(owner, member)
    resolved = Target(name=target, owner=owner, member=member, kind=kind,
                      signature=_signature(owner, member, kind), doc=first_doc_line(raw))
    _resolved[target] = (settings, raw, resolved)
    return resolved


#: target -> (settings, member object, Target): reused while neither changed
_resolved: dict[str, tuple[Settings, Any, Target]] = {}


def _not_allowed_message(target: Any, settings: Settings) -> str:
    if not isinstance(target, str) or "." not in target:
        return (f"{target!r} is not a target; use a dotted name like module.function or "
                f"module.Class.method listed in {settings.whitelist_path}")
    owner, _, member = target.rpartition(".")
    if owner in settings.allowed:
        allowed = ", ".join(sorted(settings.allowed[owner]))
        return (f"{target!r} is not allowed: {owner} allows only {allowed}; add {member!r} "
                f"under allowed_jobs > {owner} in {settings.whitelist_path} to allow it")
    owners = ", ".join(sorted(settings.allowed)) or "none"
    return (f"{target!r} is not allowed: {owner!r} is not under allowed_jobs in "
            f"{settings.whitelist_path} (allowed owners: {owners}); add it there to allow it")


def validate_all(settings: Settings) -> list[str]:
    """Resolve every whitelisted target; the ConfigError messages of those that fail."""
    problems = []
    for target in settings.targets():
        try:
            resolve(target, settings)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


# --- discovery -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Discovered:
    """One row of ``nj.available_jobs()``."""

    target: str
    owner: str
    member: str
    kind: str  #: function, method, classmethod, staticmethod, or "error" for a broken module
    parameters: list[dict[str, Any]]
    doc: str
    allowed: bool


def describe_parameters(sig: inspect.Signature) -> list[dict[str, Any]]:
    """name, annotation (as text), default (None when required), required, kind of each parameter."""
    out = []
    for p in sig.parameters.values():
        annotation = "" if p.annotation is inspect.Parameter.empty else _annotation_text(p.annotation)
        required = p.default is inspect.Parameter.empty and p.kind not in (
            inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        default = None if p.default is inspect.Parameter.empty else p.default
        out.append({"name": p.name, "annotation": annotation, "default": default,
                    "required": required, "kind": p.kind.name.lower()})
    return out


def _annotation_text(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _module_names(root: Path) -> list[str]:
    package = root / JOBS_PACKAGE
    if not package.is_dir():
        return []
    names = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith("_") for p in parts) or not all(p.isidentifier() for p in parts):
            continue
        names.append(".".join(parts))
    return names


def _public_members(owner: Any, modname: str) -> list[tuple[str, str, Any]]:
    """(owner dotted name, member, owner object) for public callables defined in ``modname``."""
    found = []
    for name, obj in vars(owner).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != modname:
            continue
        if inspect.isfunction(obj):
            found.append((modname, name, owner))
        elif inspect.isclass(obj):
            for mname in dir(obj):
                if mname.startswith("_") or not callable(getattr(obj, mname, None)):
                    continue
                if inspect.isclass(getattr(obj, mname)):
                    continue
                found.append((f"{modname}.{name}", mname, obj))
    return found


def discover(settings: Settings) -> list[Discovered]:
    """Every public function, class method and allowed target of the project.

    A module that fails to import gives one row of kind ``error`` with the reason, and the
    other modules are still listed.
    """
    ensure_on_path(settings.root)
    rows: dict[str, Discovered] = {}
    for modname in _module_names(settings.root):
        try:
            module = import_fresh(modname)
        except Exception as exc:  # any error in user code: report it, keep scanning
            reason = traceback.format_exception_only(type(exc), exc)[-1].strip()
            rows[modname] = Discovered(target=modname, owner=modname, member="", kind="error",
                                       parameters=[], doc=f"cannot import: {reason}", allowed=False)
            continue
        for owner_name, member, owner in _public_members(module, modname):
            target = f"{owner_name}.{member}"
            kind = _member_kind(owner, member)
            try:
                params = describe_parameters(_signature(owner, member, kind))
            except (TypeError, ValueError):
                params = []
            rows[target] = Discovered(
                target=target, owner=owner_name, member=member, kind=kind, parameters=params,
                doc=first_doc_line(getattr(owner, member)),
                allowed=settings.split_target(target) is not None)
    # Allowed targets outside jobs/ (or broken ones) are listed too, so nothing allowed hides.
    for target in settings.targets():
        if target in rows:
            continue
        owner_name, _, member = target.rpartition(".")
        try:
            t = resolve(target, settings)
        except ConfigError as exc:
            rows[target] = Discovered(target=target, owner=owner_name, member=member, kind="error",
                                      parameters=[], doc=str(exc), allowed=True)
            continue
        rows[target] = Discovered(target=target, owner=owner_name, member=member, kind=t.kind,
                                  parameters=describe_parameters(t.signature), doc=t.doc,
                                  allowed=True)
    return sorted(rows.values(), key=lambda d: (d.owner, d.member))

