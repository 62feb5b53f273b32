"""A job's result with its type (SPEC §15): kept where the attempt runs, read back by clients.

``keep`` is the one function that turns what a job returned into what the queue stores: JSON
values as they are; a DataFrame, Series, numpy array or bytes written to the result file
``<queue>.data/results/<id>.<suffix>`` by the process that ran the attempt (so a large frame
never crosses the worker's pipe or socket) with a summary in the queue; anything else as its
``repr``. The pool's children call it, and so does a foreground ``notebookjobs run``; an
executor that runs attempts elsewhere calls it there. ``read`` gives the value back.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ..config.whitelist import DEFAULT_MAX_RESULT_BYTES
from ..errors import JobStateError, StorageError
from ..model.validate import RESULT_SUFFIXES, directly_in
from . import datafiles

logger = logging.getLogger(__name__)

_SUFFIXES = frozenset(RESULT_SUFFIXES.values())
_INT_FAST = 2**63  #: an int below this in size is kept without its JSON text (far below any limit)



class ResultTooLargeError(Exception):
    """A job's result is over ``max_result_bytes``: the attempt fails with this message."""


def path(folder: Path, job_id: int, result_type: str) -> Path:
    """The file of a job's result: named by the id and type only, never by stored text."""
    return folder / f"{int(job_id)}{RESULT_SUFFIXES[result_type]}"


def keep(value: Any, *, folder: Path | None, job_id: int | None,
         limit: int = DEFAULT_MAX_RESULT_BYTES) -> tuple[str, Any]:
    """``(result_type, what the queue stores)`` for a job's return value; writes the result
    file for a frame, array or bytes (``folder``/``job_id`` None: no file, kept as repr).

    Raises ``ResultTooLargeError`` for a result over ``limit`` bytes (as a file, or as JSON
    text). A frame that Parquet cannot hold (a column of mixed objects, complex numbers,
    repeated column names) is kept as its repr, and a line in the attempt's output says why.
    """
    if value is None or type(value) is bool or (
            type(value) is int and -_INT_FAST < value < _INT_FAST):
        return "json", value  # what most jobs return: JSON as it is, no text to make
    kind = datafiles.kind_of(value)
    if kind is None:
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            return "repr", _limited(_repr(value), limit)
        _limited(text, limit)
        return "json", json.loads(text)
    if folder is None or job_id is None:
        return "repr", _limited(_repr(value), limit)
    target = path(folder, job_id, kind)
    try:
        datafiles.write(value, kind, target, limit)
    except datafiles.TooLarge:
        raise ResultTooLargeError(_too_large(datafiles.describe(value, kind), limit)) from None
    except Exception as exc:  # the format cannot hold it (pyarrow's errors have no common base)
        print(f"[notebookjobs] the {kind} result could not be stored as "
              f"{RESULT_SUFFIXES[kind]} ({type(exc).__name__}: {exc}); it is kept as its repr")
        return "repr", _limited(_repr(value), limit)
    return kind, datafiles.summary(value, kind)


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a broken __repr__ is the job's, not the queue's, problem
        return f"<{type(value).__name__} object: repr failed: {exc}>"


def _limited(text: str, limit: int) -> str:
    if len(text) > limit:
        raise ResultTooLargeError(_too_large(f"{len(text):,} characters of text", limit))
    return text


def _too_large(what: str, limit: int) -> str:
    return (f"the job's result ({what}) is larger than max_result_bytes ({limit:,} bytes); "
            "return less (write big outputs to a file of your own and return its path), or "
            "raise max_result_bytes in whitelist.yaml")


def read(info: dict[str, Any], folder: Path, rows: int | None = None) -> Any:
    """The result of a completed job (``info``: its ``status()``) with its type; ``rows``:
    the first rows of a frame only. ``StorageError`` when its file is gone, or is not a file
    of ``folder`` (a link out of it: read as argument files are, ``validate.reference``)."""
    result_type = info.get("result_type")
    if result_type not in RESULT_SUFFIXES:
        return info["result"]  # json and repr (and jobs stored before results had types)
    file = path(folder, info["id"], result_type)
    if not directly_in(file, folder) and os.path.lexists(file):
        raise StorageError(
            f"the result file of job {info['id']} ({file}) is a link out of {folder}, or not "
            "a file: nothing was read from it; delete it and run the job again")
    try:
        return datafiles.read(result_type, file, rows)
    except FileNotFoundError:
        raise StorageError(
            f"the result file of job {info['id']} ({result_type}) is gone from {folder}; "
            "it was deleted by hand or with the job's prune; run the job again") from None


def check_completed(info: dict[str, Any]) -> None:
    """``JobStateError`` unless the job completed (only a completed job has a result)."""
    if info["status"] != "completed":
        raise JobStateError(f"job {info['id']} is {info['status']}: only a completed job has "
                            "a result; nj.result(id) waits for it")


def remove(folder: Path, job_ids: list[int]) -> int:
    """Delete the result files of these jobs (pruned); how many there were. One pass over the
    folder, which holds the files of completed jobs with data results only, rather than a
    look-up per pruned job (a prune may delete millions)."""
    wanted, removed = set(job_ids), 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        stem, _, suffix = entry.name.partition(".")
        if stem.isdigit() and int(stem) in wanted and f".{suffix}" in _SUFFIXES:
            try:
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                pass
    return removed
