"""Frames and arrays as a job's arguments (SPEC §15), stored as files, never pickled.

At dispatch, ``Stash.swap`` puts a ``validate.DataRef`` in the place of each DataFrame, Series
and numpy array (anywhere in the arguments, lists and dicts included), so binding and the JSON
checks see a placeholder; once the dispatch is valid, ``Stash.write`` stores each one as a file
of ``<queue>.data/arguments/`` and the job's arguments hold ``{"$nj": kind, "file": name}``.
A reference already in the arguments (``nj.retry``, Edit & re-run) is checked and kept: jobs
may share a file. Where the attempt runs, ``load`` checks each reference again
(``validate.reference``) and gives the job the object itself. ``collect`` deletes the files no
job refers to any more (``nj.prune``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentsError, StorageError
from ..model import validate
from ..model.validate import ARGUMENT_SUFFIXES, DataRef
from . import datafiles

#: seconds: an argument file younger than this is never collected, referred to or not (its
#: dispatch may not be stored yet)
COLLECT_MIN_AGE_S = 3600.0


#: values that are never data nor references: returned as they are, at once (a bulk dispatch
#: of 100,000 jobs walks every argument)
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(values: Iterable[Any]) -> bool:
    """Whether every value is a plain scalar (nothing to swap in it)."""
    return _SCALARS.issuperset(map(type, values))  # C speed: once per job of a batch


def _walk(value: Any, leaf: Callable[[Any, str], Any | None], name: str, depth: int = 0) -> Any:
    """``value`` with every part for which ``leaf(part, path)`` is not None replaced by it;
    lists, tuples and dicts rebuilt only down to MAX_JSON_DEPTH (deeper ones are refused as
    JSON anyway)."""
    if type(value) in _SCALARS:
        return value
    replaced = leaf(value, name)
    if replaced is not None:
        return replaced
    if depth >= validate.MAX_JSON_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: _walk(v, leaf, f"{name}[{k!r}]", depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_walk(v, leaf, f"{name}[{i}]", depth + 1) for i, v in enumerate(value)]
    return value


class Stash:
    """The frame and array arguments of one dispatch (or of a batch of them)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._new: list[tuple[DataRef, Any]] = []  #: placeholders whose file is not written yet
        self._written: list[Path] = []

    def swap(self, args: Iterable[Any], kwargs: dict[str, Any]
             ) -> tuple[list[Any], dict[str, Any]]:
        """The arguments with DataRef placeholders for frames, arrays and references.
        ``InvalidArgumentsError`` for a ``{"$nj": ...}`` object that is not a valid reference
        to an argument file of this queue."""
        args = list(args)
        if _plain(args) and _plain(kwargs.values()):  # the common case, at no cost
            return args, kwargs
        return ([_walk(v, self._leaf, f"argument {i + 1}") for i, v in enumerate(args)],
                {k: _walk(v, self._leaf, k) for k, v in kwargs.items()})

    def _leaf(self, value: Any, name: str) -> DataRef | None:
        if validate.is_reference(value):
            kind, path = validate.reference(name, value, self.folder)
            return DataRef(kind, path.name, f"{kind} from {path.name}")
        found = datafiles.kind_of(value)
        if found is None or found not in ARGUMENT_SUFFIXES:
            return None
        # os.urandom, not secrets: see datafiles.write
        ref = DataRef(found, os.urandom(16).hex() + ARGUMENT_SUFFIXES[found],
                      datafiles.describe(value, found))
        self._new.append((ref, value))
        return ref

    def digests(self) -> dict[str, str]:
        """file name -> a hash of the content of each new frame and array (``unique=True``
        keys them by what they hold: the file names are random)."""
        return {ref.name: digest for ref, value in self._new
                if (digest := datafiles.digest(value, ref.kind))}

    def write(self) -> None:
        """Store the new frames and arrays; ``InvalidArgumentsError`` (nothing kept) when one
        cannot be stored as Parquet or ``.npy``."""
        try:
            for ref, value in self._new:
                path = self.folder / ref.name
                try:
                    datafiles.write(value, ref.kind, path, limit=2**62)
                except OSError as exc:
                    raise StorageError(f"cannot store a {ref.shown} argument in {self.folder}: "
                                       f"{exc.strerror or exc}; free some space, or pass a "
                                       "file path instead") from exc
                except Exception as exc:  # pyarrow's errors have no common base we can name
                    raise validate_error(ref, exc) from exc
                self._written.append(path)
        except BaseException:
            self.discard()
            raise
        self._new = []

    def discard(self) -> None:
        """Delete the files written for a dispatch that was not stored."""
        for path in self._written:
            path.unlink(missing_ok=True)
        self._written = []


def validate_error(ref: DataRef, exc: BaseException) -> Exception:
    return InvalidArgumentsError(
        f"a {ref.shown or ref.kind} argument cannot be stored without pickle "
        f"({type(exc).__name__}: {exc}); convert the columns Parquet cannot hold (mixed "
        "objects, complex numbers) or pass a file path instead")


def load(args: list[Any], kwargs: dict[str, Any], folder: Path
         ) -> tuple[list[Any], dict[str, Any]]:
    """The arguments as the job receives them: each reference checked and read back into its
    DataFrame, Series or array. ``InvalidArgumentsError`` for a reference that is not one of
    ours, or whose file is missing or outside ``folder``."""
    def leaf(value: Any, name: str) -> Any | None:
        # The object read replaces the reference; _walk does not walk into what it returns.
        if not validate.is_reference(value):
            return None
        kind, path = validate.reference(name, value, folder)
        return datafiles.read(kind, path)

    if not mentions_files(args, kwargs):
        return args, kwargs  # the common case: no data argument, nothing to walk
    return ([_walk(v, leaf, f"argument {i + 1}") for i, v in enumerate(args)],
            {k: _walk(v, leaf, k) for k, v in kwargs.items()})


def mentions_files(args: Any, kwargs: Any) -> bool:
    """Whether these arguments may refer to argument files (a quick look for the tag; False
    means surely not)."""
    if not args and not kwargs:
        return False  # a call without arguments, as many are: no JSON to make
    try:
        return validate.TAG in json.dumps([args, kwargs])
    except (TypeError, ValueError, RecursionError):
        return True  # not JSON: walk it, the walk decides


def references(texts: Iterable[str]) -> set[str]:
    """The argument files named by references in these JSON texts (stored args and kwargs)."""
    names: set[str] = set()

    def leaf(value: Any, _name: str) -> Any | None:
        if validate.is_reference(value) and isinstance(value.get("file"), str):
            names.add(value["file"])
        return None

    for text in texts:
        try:
            _walk(json.loads(text), leaf, "")
        except (ValueError, TypeError, RecursionError):
            continue  # a row written by other means: it refers to nothing we keep
    return names


def collect(folder: Path, referenced: set[str], min_age_s: float = COLLECT_MIN_AGE_S) -> int:
    """Delete the argument files no job refers to, older than ``min_age_s``; how many."""
    removed, oldest = 0, time.time() - min_age_s
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name in referenced:
            continue
        try:
            if entry.stat().st_mtime < oldest:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            pass
    return removed
