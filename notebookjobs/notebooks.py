"""Notebooks as jobs (SPEC §17): an allowed notebook as a target, and its parameters.

The parameters are the names assigned in the cell tagged ``parameters`` (papermill's
convention), read from the file with nbformat and ``ast``: the notebook is not run, and nothing
in it is evaluated. Each becomes a keyword-only parameter of the target's signature, with its
default and, as annotation, the default's type, so that ``arguments.bind`` refuses unknown names
and coerces strings (from a form, the CLI, the magic) as it does for functions. Running one is
``worker.notebook``'s part.
"""

from __future__ import annotations

import ast
import inspect
import threading
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import ConfigError

PARAMETERS_TAG = "parameters"
#: the types a default may have to type its parameter (bool before int: True is an int too)
_TYPES: tuple[type, ...] = (bool, int, float, str, list, dict)
_TYPE_NAMES = {t.__name__: t for t in _TYPES}

_cache: dict[Path, tuple[int, inspect.Signature, str]] = {}  #: path -> (mtime, signature, doc)
_cache_lock = threading.Lock()


def path_of(target: str, settings: Settings) -> Path:
    """The file of an allowed notebook target; ``ConfigError`` when it is not one, is missing,
    or lies outside the project (a symbolic link out of it)."""
    where = f"{settings.whitelist_path}: allowed_notebooks > {target}"
    path = settings.root / target
    try:
        inside = path.resolve().is_relative_to(settings.root.resolve())
    except OSError:
        inside = False
    if not inside:
        raise ConfigError(f"{where}: the notebook lies outside {settings.root}; allow notebooks "
                          "of the project only")
    if not path.is_file():
        raise ConfigError(f"{where}: no such notebook in {settings.root}; fix the path or "
                          "remove the entry")
    return path


def signature(target: str, settings: Settings) -> tuple[inspect.Signature, str]:
    """The notebook's parameters as a signature of keyword-only parameters, and its first
    markdown line (its doc); read again when the file changes."""
    path = path_of(target, settings)
    mtime = path.stat().st_mtime_ns
    with _cache_lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1], cached[2]
    try:
        import nbformat
    except ImportError as exc:
        raise ConfigError("notebooks as jobs need nbformat and papermill: pip install "
                          "'notebookjobs[notebooks]'") from exc
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises many kinds for a file that is no notebook
        raise ConfigError(f"{settings.whitelist_path}: allowed_notebooks > {target}: cannot "
                          f"read the notebook ({type(exc).__name__}: {exc})") from exc
    params = parameters(notebook, f"{path}")
    doc = next((line.strip("# ").strip() for cell in notebook.cells
                if cell.cell_type == "markdown" for line in cell.source.splitlines()
                if line.strip("# ").strip()), "")
    result = inspect.Signature(params)
    with _cache_lock:
        _cache[path] = (mtime, result, doc)
    return result, doc


def parameters(notebook: Any, where: str) -> list[inspect.Parameter]:
    """The keyword-only parameters assigned in the cell tagged ``parameters`` (none without
    one). A value that is not a literal (``datetime.now()``) gives a parameter without a type,
    whose default is None."""
    cell = next((c for c in notebook.cells if c.cell_type == "code"
                 and PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return []
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as exc:
        raise ConfigError(f"{where}: the parameters cell is not valid Python (line "
                          f"{exc.lineno}: {exc.msg}); fix it") from exc
    found: dict[str, inspect.Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value, annotation = node.targets[0], node.value, None
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value, annotation = node.target, node.value, node.annotation
        else:
            continue
        if not isinstance(target, ast.Name) or target.id.startswith("_"):
            continue
        try:
            default = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            default = None
        kind = _type_of(default, annotation)
        if isinstance(default, tuple):
            default = list(default)
        found[target.id] = inspect.Parameter(
            target.id, inspect.Parameter.KEYWORD_ONLY, default=default,
            annotation=inspect.Parameter.empty if kind is None else kind)
    return list(found.values())


def _type_of(default: Any, annotation: ast.expr | None) -> type | None:
    """The parameter's type: its annotation when that names a simple type, else its default's."""
    if isinstance(annotation, ast.Name) and annotation.id in _TYPE_NAMES:
        return _TYPE_NAMES[annotation.id]
    if isinstance(default, tuple):
        return list
    return next((t for t in _TYPES if isinstance(default, t)), None)
