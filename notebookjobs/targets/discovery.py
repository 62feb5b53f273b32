"""Discovery (SPEC §6 ``nj.available_jobs()``): the project's job code, allowed or not.

Every public function and class method of the modules it scans, and every target the
whitelist allows wherever it lives, with its parameters, first doc line, whether it is allowed,
and (when it is not) the whitelist.yaml line that would allow it.

It scans (SPEC §4, ``Settings.discovered_packages``): ``jobs/``, the package of every owner
under ``allowed_jobs`` (``tasks`` for ``tasks.etl.Loader``), and the packages and modules of the
optional ``discover:`` list; a name that is a module (``tools.py``) is scanned alone, a package
with all its submodules.
"""

from __future__ import annotations

import importlib.util
import inspect
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ConfigError
from .hints import allow_hint
from .registry import (
    ensure_on_path,
    first_doc_line,
    import_fresh,
    member_kind,
    resolve,
    signature_of,
)


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
    allow_hint: str = ""  #: for a target that is not allowed: the whitelist.yaml line that would


def describe_parameters(sig: inspect.Signature, helps: dict[str, str] | None = None
                        ) -> list[dict[str, Any]]:
    """name, annotation (as text), default (None when required), required, kind and help
    (a notebook parameter's comment; "" for none) of each parameter."""
    helps = helps or {}
    out = []
    for p in sig.parameters.values():
        annotation = (
            "" if p.annotation is inspect.Parameter.empty else _annotation_text(p.annotation)
        )
        required = p.default is inspect.Parameter.empty and p.kind not in (
            inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        default = None if p.default is inspect.Parameter.empty else p.default
        out.append({"name": p.name, "annotation": annotation, "default": default,
                    "required": required, "kind": p.kind.name.lower(),
                    "help": helps.get(p.name, "")})
    return out


def _annotation_text(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _module_names(settings: Settings) -> list[str]:
    """The dotted names of the modules discovery scans, each once, in a stable order."""
    names: list[str] = []
    for name in settings.discovered_packages():
        names += _modules_of(name, settings)
    return list(dict.fromkeys(names))


def _modules_of(name: str, settings: Settings) -> list[str]:
    """``name`` and, for a package, its submodules: looked for in the project, or (for a name of
    ``external_packages``) where Python finds it. Nothing is imported here."""
    local = settings.root.joinpath(*name.split("."))
    if local.is_dir():
        return _walk(local, name)
    if local.with_suffix(".py").is_file():
        return [name]
    if name.split(".", maxsplit=1)[0] not in settings.external_packages:
        return []  # e.g. no jobs/ in this project: nothing to scan there
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return [m for folder in spec.submodule_search_locations for m in _walk(Path(folder), name)]
    return [name]


def _walk(package: Path, prefix: str) -> list[str]:
    names = []
    for path in sorted(package.rglob("*.py")):
        parts = [prefix, *path.relative_to(package).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        rest = parts[1:]
        if any(p.startswith("_") for p in rest) or not all(p.isidentifier() for p in rest):
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
    for modname in _module_names(settings):
        try:
            module = import_fresh(modname)
        except Exception as exc:  # any error in user code: report it, keep scanning
            reason = traceback.format_exception_only(type(exc), exc)[-1].strip()
            rows[modname] = Discovered(target=modname, owner=modname, member="", kind="error",
                                       parameters=[], doc=f"cannot import: {reason}", allowed=False)
            continue
        for owner_name, member, owner in _public_members(module, modname):
            target = f"{owner_name}.{member}"
            kind = member_kind(owner, member)
            try:
                params = describe_parameters(signature_of(owner, member, kind))
            except (TypeError, ValueError):
                params = []
            rows[target] = Discovered(
                target=target, owner=owner_name, member=member, kind=kind, parameters=params,
                doc=first_doc_line(getattr(owner, member)),
                allowed=settings.split_target(target) is not None)
    # Allowed targets outside what was scanned (or broken ones) are listed too, so nothing
    # allowed hides.
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
    for target in sorted(settings.notebooks):  # SPEC §17: the allowed notebooks, as targets
        folder, _, name = target.rpartition("/")
        try:
            t = resolve(target, settings)
        except ConfigError as exc:
            rows[target] = Discovered(target=target, owner=folder or ".", member=name,
                                      kind="error", parameters=[], doc=str(exc), allowed=True)
            continue
        rows[target] = Discovered(target=target, owner=folder or ".", member=name, kind=t.kind,
                                  parameters=describe_parameters(t.signature, t.parameter_help),
                                  doc=t.doc, allowed=True)
    try:
        text = settings.whitelist_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    return sorted((row if row.allowed or row.kind == "error" else
                   replace(row, allow_hint=allow_hint(row.target, settings.whitelist_path, text))
                   for row in rows.values()), key=lambda d: (d.owner, d.member))

