"""Frames, arrays and bytes that cross the queue as files (SPEC §15): the names of result types,
and the references to argument files that stand for a frame or an array in a job's arguments.

A reference is a JSON object ``{"$nj": "DataFrame", "file": "<32 hex>.parquet"}``: JSON like
every other argument, so it is stored, sent and shown as text, and never unpickled. Whoever
reads one (the child that runs the attempt, a client that dispatches it again) checks it here
first: a reference written by other means that names a file outside the queue's arguments
folder, or a file of the wrong kind, is refused before anything is opened.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import InvalidArgumentsError

#: the key that marks a reference to an argument file; reserved in arguments
TAG = "$nj"
#: how a result is kept: JSON in the queue, its repr as text, or a file of the kind named
RESULT_TYPES = ("json", "repr", "DataFrame", "Series", "ndarray", "bytes")
#: result type -> the suffix of its file in the results folder
RESULT_SUFFIXES = {"DataFrame": ".parquet", "Series": ".parquet", "ndarray": ".npy",
                   "bytes": ".bin"}
#: kind of a data argument -> the suffix of its file in the arguments folder
ARGUMENT_SUFFIXES = {"DataFrame": ".parquet", "Series": ".parquet", "ndarray": ".npy"}
_ARGUMENT_FILE = re.compile(r"^[0-9a-f]{32}\.(parquet|npy)$")


@dataclass(frozen=True)
class DataRef:
    """A frame or array argument, stored as the file ``name`` of the arguments folder (its
    JSON form is ``as_json()``). ``shown`` describes it in messages."""

    kind: str  #: DataFrame, Series or ndarray
    name: str  #: the file's name in the arguments folder
    shown: str = ""  #: e.g. "DataFrame 100 x 3"

    def as_json(self) -> dict[str, str]:
        return {TAG: self.kind, "file": self.name}

    def __repr__(self) -> str:
        return f"<{self.shown or self.kind}>"


def is_reference(value: Any) -> bool:
    """Whether ``value`` is (or claims to be) a reference to an argument file."""
    return isinstance(value, dict) and TAG in value


def reference(name: str, value: Any, folder: Path) -> tuple[str, Path]:
    """The kind and path of the argument file ``value`` refers to, checked: a reference of
    our own shape, to an existing file directly in ``folder`` (no link out of it).
    ``InvalidArgumentsError`` otherwise, naming the argument ``name``."""
    hint = (f"the key {TAG!r} is reserved for frames and arrays passed as arguments; pass the "
            "DataFrame, Series or numpy array itself")
    if not isinstance(value, dict) or set(value) != {TAG, "file"}:
        raise InvalidArgumentsError(f"{name}: {str(value)[:120]} is not a data reference; {hint}")
    kind, file = value[TAG], value["file"]
    if kind not in ARGUMENT_SUFFIXES or not isinstance(file, str) or not _ARGUMENT_FILE.match(
            file) or not file.endswith(ARGUMENT_SUFFIXES[kind]):
        raise InvalidArgumentsError(f"{name}: {str(value)[:120]} is not a data reference; {hint}")
    path = folder / file
    if not directly_in(path, folder):
        raise InvalidArgumentsError(
            f"{name}: the {kind} this job was given is gone from {folder} (pruned, or the "
            "reference was written by hand); dispatch the job again with the data itself")
    return kind, path


def directly_in(path: Path, folder: Path) -> bool:
    """Whether ``path`` is a regular file directly in ``folder`` once links are resolved: a
    link to a file elsewhere (planted by job code, say) is not."""
    real = Path(os.path.realpath(path))
    return real.parent == Path(os.path.realpath(folder)) and real.is_file()


def result_type(value: Any) -> str | None:
    """A result type of RESULT_TYPES or None; anything else is None (``outcome`` then keeps the
    result as text)."""
    return value if isinstance(value, str) and value in RESULT_TYPES else None
