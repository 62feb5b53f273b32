"""The socket protocol's encoding: JSON lines, with tagged records for our few types. Never pickle.

Only the types listed in ``_RECORDS`` and ``_ENUMS`` can be decoded; anything else stays plain
JSON. A request is ``{"op": name, "args": [...]}``; a reply is ``{"ok": value}`` or
``{"error": {"type": name, "message": text}}``. The worker answers each request line with
exactly one reply line, in order. Instead of a reply, a client may get ``CLOSING_LINE``: the worker
closed the connection without reading a request from it (it is stopping, or the client stayed
idle too long), so that request was not carried out and may be sent again elsewhere.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from datetime import datetime
from typing import Any

from .. import errors
from .records import Job, JobBatch, JobSpec, Outcome, OutcomeKind, RetryPolicy

#: bytes in one request line, its newline included. A bulk dispatch can be large; a longer
#: request is refused by the client before it is sent, and by the worker if one comes anyway.
MAX_REQUEST_BYTES = 64 * 1024 * 1024
#: the worker's last line on a connection it closes without reading a request from it
CLOSING_LINE = b'{"closing":true}\n'

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


def request_line(operation: str, args: Any) -> bytes:
    """One request as its JSON line; ``InvalidArgumentsError`` when it is over MAX_REQUEST_BYTES."""
    line = dumps({"op": operation, "args": list(args)})
    if len(line) > MAX_REQUEST_BYTES:
        raise errors.InvalidArgumentsError(too_large(len(line)))
    return line


def too_large(size: int | None = None) -> str:
    """The refusal of a request over MAX_REQUEST_BYTES (``size``: its length, when known)."""
    what = f"{size:,} bytes, " if size is not None else ""
    return (f"the request is {what}over the limit of {MAX_REQUEST_BYTES:,} bytes per message; "
            "split it into smaller batches (several dispatch_many calls)")


def is_closing(message: Any) -> bool:
    """Whether a line read instead of a reply is the worker's ``CLOSING_LINE``."""
    return isinstance(message, dict) and message.get("closing") is True and len(message) == 1


def parse(line: bytes) -> Any:
    """One JSON line as plain JSON values; ``ValueError`` (or ``RecursionError``) when it is not
    JSON: a framing error, after which nothing more on the connection can be trusted."""
    return json.loads(line)


def decode(message: Any) -> Any:
    """Plain JSON values back to values and records; ``InvalidArgumentsError`` for a record with
    missing, extra or ill-typed fields (the message was framed well: the connection goes on)."""
    try:
        return _decode(message)
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise errors.InvalidArgumentsError(
            f"malformed message: {type(exc).__name__}: {str(exc)[:200]}") from exc


def loads(line: bytes) -> Any:
    """``decode(parse(line))``: ``ValueError`` when the line is not JSON, ``InvalidArgumentsError``
    when its records do not fit their types."""
    return decode(parse(line))


def error_reply(exc: Exception) -> dict[str, Any]:
    return {"error": {"type": type(exc).__name__, "message": str(exc)}}


def raise_error(error: dict[str, Any]) -> None:
    """Re-raise an error reply as the same NotebookJobsError subclass (or its base)."""
    cls = getattr(errors, error.get("type", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.NotebookJobsError)):
        cls = errors.WorkerError
    raise cls(error.get("message"))
