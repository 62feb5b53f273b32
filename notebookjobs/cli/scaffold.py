"""``notebookjobs init [DIR]`` (SPEC §7, §19): a new project from the package's templates.

The templates (``notebookjobs/templates/``, package data, so a pip install has them) are a
commented whitelist.yaml, ``jobs/`` with an example module whose jobs run with their defaults,
and ``notebooks/dashboard.ipynb``. Nothing is overwritten: when any of these files exists,
nothing is written at all.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from ..errors import InvalidArgumentsError

#: what ``init`` writes: the path in the project -> the path under notebookjobs/templates
FILES = {
    "whitelist.yaml": "whitelist.yaml",
    "jobs/__init__.py": "jobs/__init__.py",
    "jobs/example.py": "jobs/example.py",
    "notebooks/dashboard.ipynb": "notebooks/dashboard.ipynb",
}


def _template(name: str) -> Traversable:
    node = files("notebookjobs").joinpath("templates")
    for part in name.split("/"):
        node = node.joinpath(part)
    return node


def create(folder: Path) -> list[Path]:
    """Write the project's files into ``folder`` (made if missing); the paths written.

    ``InvalidArgumentsError`` naming the files that exist already, before anything is written.
    """
    if folder.exists() and not folder.is_dir():
        raise InvalidArgumentsError(f"{folder} is a file; give a folder for the new project")
    existing = [name for name in FILES if (folder / name).exists()]
    if existing:
        raise InvalidArgumentsError(
            f"{folder.resolve()} already has {', '.join(existing)}; init writes nothing over "
            "existing files (move them away, or init another folder)")
    written = []
    for name, template in FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_template(template).read_bytes())
        written.append(path.resolve())
    return written
