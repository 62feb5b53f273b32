"""The socket protocol's encoding: JSON lines, with tagged records for our few types. Never pickle.

Only the types listed in ``_RECORDS`` and ``_ENUMS`` can be decoded; anything else stays plain
JSON. A request is ``{"op": name, "args": [...]}``; a reply is ``{"ok": value}`` or
``{"error": {"type": name, "message": text}}``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from datetime import datetime
from typing import Any

from . import errors
from .models import Job, JobBatch, JobSpec, Outcome, OutcomeKind, RetryPolicy

_RECORDS: dict[str, type] = {cls.__name__: cls for cls in (Job, JobBatch, JobSpec, Outcome,
                                                               RetryPolicy)}
_ENUMS: dict[str, type[enum.Enum]] = {OutcomeKind.__name__: OutcomeKind}


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, enum.Enum):
        return {"$enum": type(value).__name__, "value": value.value}
    if dataclasses.is_dataclass(value) and type(value).__name__ in _RECORDS:
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$rec": type(value).__name__, "fields": fields}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$dt" in value:
        return datetime.fromisoformat(value["$dt"])
    if "$enum" in value and value["$enum"] in _ENUMS:
        return _ENUMS[value["$enum"]](value["value"])
    if "$rec" in value and value["$rec"] in _RECORDS:
        fields = value["fields"]
        if not isinstance(fields, dict):
            raise TypeError(f"the fields of a {value['$rec']} must be an object")
        return _RECORDS[value["$rec"]](**{k: _decode(v) for k, v in fields.items()})
    return {k: _decode(v) for k, v in value.items()}


def dumps(message: Any) -> bytes:
    """One message as a JSON line."""
    return json.dumps(_encode(message), separators=(",", ":")).encode() + b"\n"


def loads(line: bytes) -> Any:
    """One JSON line back to values and records; ``InvalidArgumentsError`` for a line that is
    not JSON, nests too deep, or holds a record with missing, extra or ill-typed fields."""
    try:
        return _decode(json.loads(line))
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise errors.InvalidArgumentsError(
            f"malformed message: {type(exc).__name__}: {str(exc)[:200]}") from exc


def error_reply(exc: Exception) -> dict[str, Any]:
    return {"error": {"type": type(exc).__name__, "message": str(exc)}}


def raise_error(error: dict[str, Any]) -> None:
    """Re-raise an error reply as the same NotebookJobsError subclass (or its base)."""
    cls = getattr(errors, error.get("type", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.NotebookJobsError)):
        cls = errors.WorkerError
    raise cls(error.get("message"))
