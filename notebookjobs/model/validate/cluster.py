"""What crosses between the worker and a Dask cluster (SPEC §18), checked where it enters: the
scheduler's address (whitelist.yaml, ``--dask``, ``nj.start_worker(dask=...)``), the attempt
request a Dask worker receives, and the outcome and progress reports that come back.

All of it is JSON text or msgpack'd plain data: a reply that does not have the expected shape
fails its attempt with a clear error (or is dropped, for a progress report); it never reaches
the queue as it came.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from ...errors import InvalidArgumentsError
from ..records import AttemptRequest, Outcome
from .values import (
    MAX_DURATION_S,
    job_id,
    json_value,
    optional_text,
    progress_fraction,
    short_repr,
    strict_loads,
    target_name,
    text,
    timestamp,
)

#: the protocols a Dask scheduler listens on that a worker of another process can reach
#: (``inproc://`` only works inside one process)
SCHEMES = ("tcp", "tls", "ucx", "ws", "wss")
_ADDRESS = re.compile(r"^(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)"
                      r":(?P<port>[0-9]{1,5})/?$")
_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")  #: attempt keys and queue tokens
ADDRESS_HINT = "a Dask scheduler address like tcp://host:8786 (tls:// for TLS)"
_PROGRESS_FIELDS = frozenset({"key", "job_id", "fraction", "message"})
_STARTED_FIELDS = frozenset({"key", "job_id", "started"})


def scheduler_address(value: Any) -> str:
    """A Dask scheduler's address: ``tcp://host:8786``, ``tls://...`` or ``host:8786`` (tcp).

    A cluster object (``LocalCluster``, a dask-gateway or dask-jobqueue cluster) or a
    ``distributed.Client`` stands for its scheduler's address, as Dask's own ``Client(...)``
    takes them.
    """
    if not isinstance(value, str):
        value = getattr(value, "scheduler_address", None) or getattr(
            getattr(value, "scheduler", None), "address", value)
    if not isinstance(value, str):
        raise InvalidArgumentsError(f"dask={short_repr(value)} is not allowed; pass "
                                    f"{ADDRESS_HINT}, or a Dask cluster or Client")
    match = _ADDRESS.match(value.strip())
    scheme = match and (match["scheme"] or "tcp")
    if match is None or scheme not in SCHEMES or not 0 < int(match["port"]) < 65536:
        raise InvalidArgumentsError(f"dask={short_repr(value)} is not allowed; pass "
                                    f"{ADDRESS_HINT} (protocols: {', '.join(SCHEMES)})")
    return f"{scheme}://{match['host']}:{int(match['port'])}"


def _loads(what: str, data: Any) -> Any:
    """What crosses as JSON text, parsed (NaN and Infinity refused): ``InvalidArgumentsError``
    for anything else."""
    if not isinstance(data, str):
        raise InvalidArgumentsError(f"{what} is JSON text, not {short_repr(data)}")
    try:
        return strict_loads(data)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgumentsError(f"{what} is not JSON: {exc}") from exc


# --- to the cluster ---------------------------------------------------------------------------

def request_json(request: AttemptRequest) -> str:
    """The request as the JSON text ``worker.dask_task.run_attempt`` receives."""
    return json.dumps(request.__dict__, allow_nan=False)


def attempt_request(data: Any) -> AttemptRequest:
    """A Dask worker's check of what it was sent (``request_json``): ``InvalidArgumentsError``
    unless every field has its type and range. Whether the target is allowed is checked next,
    against the whitelist the Dask worker sees."""
    fields = _loads("an attempt request", data)
    names = set(AttemptRequest.__dataclass_fields__)
    if not isinstance(fields, dict) or set(fields) != names:
        raise InvalidArgumentsError(f"an attempt request has the fields {sorted(names)}")
    args, kwargs = json_value("args", fields["args"]), json_value("kwargs", fields["kwargs"])
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise InvalidArgumentsError("an attempt request's args is a list, its kwargs a dict")
    for name in ("key", "token", "topic"):
        if not isinstance(fields[name], str) or not _KEY.match(fields[name]):
            raise InvalidArgumentsError(f"{name}={short_repr(fields[name])} is not allowed")
    if not isinstance(fields["root"], str) or not fields["root"].startswith("/"):
        raise InvalidArgumentsError(f"root={short_repr(fields['root'])} is not an absolute path")
    if not isinstance(fields["upload"], bool):
        raise InvalidArgumentsError(f"upload={short_repr(fields['upload'])} is not a bool")
    data = fields["data"]
    if data is not None and not (isinstance(data, str) and data.startswith("/")):
        raise InvalidArgumentsError(f"data={short_repr(data)} is not an absolute path")
    return AttemptRequest(key=fields["key"], job_id=job_id(fields["job_id"]),
                          target=target_name("target", fields["target"]), args=args,
                          kwargs=kwargs, timeout=_timeout(fields["timeout"]),
                          root=text(fields["root"]), upload=fields["upload"],
                          data=None if data is None else text(data), token=fields["token"],
                          topic=fields["topic"])


def _timeout(value: Any) -> float | None:
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0 < value <= MAX_DURATION_S:
        raise InvalidArgumentsError(f"timeout={short_repr(value)} is not allowed")
    return float(value)


# --- from the cluster -------------------------------------------------------------------------

def outcome_json(outcome: Outcome) -> str:
    """An attempt's outcome as the Dask worker sends it back (``Outcome.to_wire``)."""
    return json.dumps(outcome.to_wire())


def cluster_outcome(data: Any) -> Outcome:
    """The outcome a Dask worker sent back (``outcome_json``), its shape checked
    (``Outcome.from_wire``); ``InvalidArgumentsError`` when it is anything else. Its values are
    checked by the loop, as every executor's are (``validate.outcome``)."""
    fields = _loads("the outcome", data)
    try:
        return Outcome.from_wire(fields)
    except (LookupError, TypeError, ValueError) as exc:
        raise InvalidArgumentsError(f"the outcome is not valid ({type(exc).__name__}: {exc}): "
                                    f"{short_repr(fields)}") from exc


def cluster_progress(message: Any) -> tuple[str, int, float | None, str | None]:
    """A progress report from a Dask worker, ``(key, job_id, fraction, message)`` (fraction
    None: the message is the last line the job printed); ``InvalidArgumentsError`` when it is
    anything else (it is then dropped). Other fields are ignored: the scheduler adds
    ``worker``."""
    if not isinstance(message, dict) or not set(message) >= _PROGRESS_FIELDS:
        raise InvalidArgumentsError(f"not a progress report: {short_repr(message)}")
    key = message["key"]
    if not isinstance(key, str) or not _KEY.match(key):
        raise InvalidArgumentsError(f"key={short_repr(key)} is not allowed")
    note = message["message"]
    if note is not None and not isinstance(note, str):
        raise InvalidArgumentsError(f"message={short_repr(note)} is not text")
    fraction = message["fraction"]
    return (key, job_id(message["job_id"]),
            None if fraction is None else progress_fraction(fraction), optional_text(note))


def cluster_started(message: Any) -> tuple[str, int, datetime]:
    """A Dask worker's word that an attempt began, ``(key, job_id, when)``;
    ``InvalidArgumentsError`` when it is anything else (it is then dropped: the attempt counts
    as begun when its outcome comes)."""
    if not isinstance(message, dict) or not set(message) >= _STARTED_FIELDS:
        raise InvalidArgumentsError(f"not a start report: {short_repr(message)}")
    key, started = message["key"], message["started"]
    if not isinstance(key, str) or not _KEY.match(key):
        raise InvalidArgumentsError(f"key={short_repr(key)} is not allowed")
    if isinstance(started, bool) or not isinstance(started, (int, float)):
        raise InvalidArgumentsError(f"started={short_repr(started)} is not a time")
    try:
        when = datetime.fromtimestamp(started, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidArgumentsError(f"started={short_repr(started)} is not a time") from exc
    return key, job_id(message["job_id"]), timestamp("started", when)
