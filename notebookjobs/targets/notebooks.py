"""Notebooks as jobs (SPEC §17): an allowed notebook as a target, and its parameters.

The parameters are the names assigned in the cell tagged ``parameters`` (papermill's
convention), read from the file: the notebook is not run, and nothing in it is evaluated. Where
papermill is installed (the ``[notebooks]`` extra), papermill's own inspection reads them
(``papermill inspect``: its translator for the notebook's language), so we list what papermill
will inject, with the types and help of the comments (``a: float = 2.25  # Variable a``,
``b = [...]  # type: List[str] Nice list``), and a line it cannot parse is skipped, not the
whole cell. Without papermill, ``ast`` reads a Python cell, which must then parse whole. Either
way, names starting with ``_`` are not parameters (the notebook's own), a default is read as
a literal only (anything else: no default, None), and each becomes a keyword-only parameter of
the target's signature, annotated with its type (the comment's, else the default's), so that
``arguments.bind`` refuses unknown names and coerces strings (from a form, the CLI, the magic)
as it does for functions. Running one is ``worker.notebook``'s part.
"""

from __future__ import annotations

import ast
import inspect
import keyword
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ConfigError

PARAMETERS_TAG = "parameters"
#: the types a default may have to type its parameter (bool before int: True is an int too)
_TYPES: tuple[type, ...] = (bool, int, float, str, list, dict)
_TYPE_NAMES = {t.__name__: t for t in _TYPES}

#: the default kernel and language of a notebook whose metadata names none (as it runs)
DEFAULT_KERNEL, DEFAULT_LANGUAGE = "python3", "python"


@dataclass(frozen=True)
class Parameters:
    """What a notebook takes: its signature (keyword-only parameters), its doc (the first
    markdown line) and the help of each parameter that has some (its comment)."""

    signature: inspect.Signature
    doc: str = ""
    help: dict[str, str] = field(default_factory=dict)


_cache: dict[Path, tuple[int, Parameters]] = {}  #: path -> (mtime, what it takes)
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


def signature(target: str, settings: Settings) -> Parameters:
    """The notebook's parameters as a signature of keyword-only parameters, its first
    markdown line (its doc) and the help of its parameters; read again when the file changes."""
    path = path_of(target, settings)
    mtime = path.stat().st_mtime_ns
    with _cache_lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
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
    params, helps = parameters(notebook, f"{path}")
    doc = next((line.strip("# ").strip() for cell in notebook.cells
                if cell.cell_type == "markdown" for line in cell.source.splitlines()
                if line.strip("# ").strip()), "")
    result = Parameters(inspect.Signature(params), doc, helps)
    with _cache_lock:
        _cache[path] = (mtime, result)
    return result


#: what one parameter was read as: (name, default's source text, type name or "", help)
_Read = tuple[str, str, str, str]


def parameters(notebook: Any, where: str) -> tuple[list[inspect.Parameter], dict[str, str]]:
    """The keyword-only parameters assigned in the cell tagged ``parameters`` (none without
    one), and the help of those that have some. A value that is not a literal
    (``datetime.now()``) gives a parameter whose default is None, typed only by its comment."""
    cell = next((c for c in notebook.cells if c.cell_type == "code"
                 and PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return [], {}
    read = _by_papermill(notebook, cell)
    if read is None:
        read = _by_ast(cell.source, where)
    found: dict[str, inspect.Parameter] = {}
    helps: dict[str, str] = {}
    for name, source, type_name, text in read:
        # Our refusals, whoever read the cell: the notebook's own names (``_x``), and what no
        # keyword argument could name.
        if name.startswith("_") or not name.isidentifier() or keyword.iskeyword(name):
            continue
        try:
            default = ast.literal_eval(source)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            default = None
        kind = _type_of(default, type_name)
        if isinstance(default, tuple):
            default = list(default)
        found.pop(name, None)  # assigned twice: the last assignment, in its place
        found[name] = inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=default,
            annotation=inspect.Parameter.empty if kind is None else kind)
        helps.pop(name, None)
        if text:
            helps[name] = text
    return list(found.values()), helps


def _by_papermill(notebook: Any, cell: Any) -> list[_Read] | None:
    """The parameters as papermill's translator for the notebook's language reads them; None
    without papermill, or when papermill has no translator that can (then ours reads it)."""
    try:
        from papermill.exceptions import PapermillException
        from papermill.translators import papermill_translators
    except ImportError:
        return None
    metadata = notebook.metadata
    kernel = metadata.get("kernelspec", {}).get("name") or DEFAULT_KERNEL
    language = (metadata.get("language_info", {}).get("name")
                or metadata.get("kernelspec", {}).get("language") or DEFAULT_LANGUAGE)
    try:
        translator = papermill_translators.find_translator(kernel, language)
        found = translator.inspect(cell)
    except (PapermillException, NotImplementedError):
        return None
    # papermill's type name is "None" when it found none ("NoneType" for a None annotation)
    return [(p.name, p.default, "" if p.inferred_type_name == "None" else p.inferred_type_name,
             p.help) for p in found]


def _by_ast(source: str, where: str) -> list[_Read]:
    """The parameters of a Python cell read with ``ast`` (no papermill here):
    ``ConfigError`` when the cell is not valid Python."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ConfigError(f"{where}: the parameters cell is not valid Python (line "
                          f"{exc.lineno}: {exc.msg}); fix it") from exc
    found: list[_Read] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value, annotation = node.targets[0], node.value, None
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value, annotation = node.target, node.value, node.annotation
        else:
            continue
        if isinstance(target, ast.Name):
            found.append((target.id, ast.get_source_segment(source, value) or "",
                          "" if annotation is None else ast.unparse(annotation), ""))
    return found


def _type_of(default: Any, type_name: str) -> type | None:
    """The parameter's type: the one its annotation or type comment names when that is a
    simple type (``float``; ``list`` for ``List[str]`` or ``list[int]``), else its default's."""
    named = _TYPE_NAMES.get(type_name.strip().strip("'\"").split("[", 1)[0].lower())
    if named is not None:
        return named
    if isinstance(default, tuple):
        return list
    return next((t for t in _TYPES if isinstance(default, t)), None)
