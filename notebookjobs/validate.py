"""The ranges and types of every value that enters the queue (SPEC §14), in one place.

Values come in through many doors: the Python API, the CLI, the magic, the dashboard, a raw
message on the worker's socket, whitelist.yaml, and what a job prints, returns, raises or
reports as progress. Each door calls these functions once, so the worker, the store and the
clients cannot disagree about what is acceptable. Everything here is pure: no I/O, no imports
beyond the standard library (the pool's children use it too).

Why these limits: the store keeps priorities and attempt counts as 32-bit integers, and
timestamps as microseconds; JSON nested thousands deep overflows the Python stack of whoever
reads it; text that is not valid UTF-8 cannot be written to DuckDB at all. A value outside
them is refused where it enters, with an error that says what is allowed, instead of wedging
the worker's commits later.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import InvalidArgumentsError
from .models import JobBatch, JobSpec, Outcome, OutcomeKind, RetryPolicy

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  #: priority's range (an INTEGER column)
ID_MAX = 2**63 - 1  #: job ids are BIGINT
MAX_ATTEMPTS = 1_000_000  #: retry_attempts + 1 at most: far beyond any useful policy
#: seconds: the longest delay, retry delay, timeout or grace period (about 100 years), so that
#: now + any of them stays a timestamp Python and DuckDB can both hold
MAX_DURATION_S = 100 * 365.25 * 86400
#: the latest run_at or `at` accepted (a timestamp beyond it is refused, not clamped)
LATEST_TIME = datetime(9000, 1, 1, tzinfo=timezone.utc)
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_JSON_DEPTH = 100  #: lists and dicts nested deeper are refused (SPEC §14)
REPLACEMENT = "\ufffd"  #: what stands in for text that is not valid UTF-8

_SURROGATES = re.compile("[\ud800-\udfff]")
_JSON_HINT = "use numbers, strings, booleans, null, lists and dicts with string keys"


# --- text -------------------------------------------------------------------------------------

def text(value: str) -> str:
    """``value`` with every lone surrogate replaced by U+FFFD, so it can be stored as UTF-8.

    Lone surrogates reach Python strings from bytes decoded with ``surrogateescape`` (``sys.argv``,
    ``os.environ``, file names) and from JSON escapes like ``"\\udcff"``.
    """
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub(REPLACEMENT, value)
    return value


def optional_text(value: Any) -> str | None:
    """``text`` for a str, None for None; anything else becomes its ``str`` (job outcomes)."""
    if value is None:
        return None
    return text(value if isinstance(value, str) else str(value))


# --- numbers ----------------------------------------------------------------------------------

def plain_number(value: Any) -> Any:
    """numpy scalars as the Python numbers they hold (SPEC §6); anything else unchanged.

    Checked by module name, so numpy is never imported here (the pool's children stay lean).
    """
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        try:
            return value.item()
        except (TypeError, ValueError):
            return value
    return value


def integer(name: str, value: Any, lowest: int | None = None, highest: int | None = None) -> int:
    """A whole number in ``[lowest, highest]``; any integer type (numpy's too), never a bool."""
    value = plain_number(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentsError(f"{name}={_short_repr(value)} is not allowed; expected a "
                                    "whole number" + _range_text(lowest, highest))
    if (lowest is not None and value < lowest) or (highest is not None and value > highest):
        raise InvalidArgumentsError(f"{name}={_short_repr(value)} is out of range; expected a "
                                    "whole number" + _range_text(lowest, highest))
    return int(value)


def _range_text(lowest: int | None, highest: int | None) -> str:
    if lowest is not None and highest is not None:
        return f" from {lowest} to {highest}"
    if lowest is not None:
        return f" >= {lowest}"
    return "" if highest is None else f" <= {highest}"


def priority(value: Any) -> int:
    """A job's priority: a 32-bit signed integer (higher runs first)."""
    return integer("priority", value, INT32_MIN, INT32_MAX)


def job_id(value: Any) -> int:
    """A job id: any integer type (a DataFrame's np.int64 too), 1 or more."""
    return integer("job_id", value, 1, ID_MAX)


def seconds(name: str, value: Any, *, allow_zero: bool = True) -> float:
    """A duration in seconds (a number or a timedelta), finite, >= 0 (> 0 unless
    ``allow_zero``) and at most MAX_DURATION_S."""
    value = plain_number(value)
    if isinstance(value, timedelta):
        value = value.total_seconds()
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            number = math.inf
        ok = math.isfinite(number) and (number >= 0 if allow_zero else number > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidArgumentsError(
            f"{name}={_short_repr(value)} is not allowed; expected seconds {bound} (a number or a timedelta)")
    if number > MAX_DURATION_S:
        raise InvalidArgumentsError(
            f"{name}={_short_repr(value)} is too long; at most {MAX_DURATION_S:.4g} seconds (100 years)")
    return number


def timestamp(name: str, value: Any) -> datetime:
    """A timezone-aware datetime between 1970 and the year 9000, as UTC."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgumentsError(
            f"{name}={_short_repr(value)} is not allowed; expected a timezone-aware datetime")
    try:
        value = value.astimezone(timezone.utc)
    except (OverflowError, ValueError) as exc:
        raise InvalidArgumentsError(f"{name}={value!r} cannot be expressed in UTC") from exc
    if not EARLIEST_TIME <= value <= LATEST_TIME:
        raise InvalidArgumentsError(
            f"{name}={value.isoformat()} is out of range; expected a time between "
            f"{EARLIEST_TIME:%Y} and {LATEST_TIME:%Y}")
    return value


def later(now: datetime, delay_s: float) -> datetime:
    """``now + delay_s`` seconds, clamped to LATEST_TIME (never an OverflowError)."""
    try:
        return min(now + timedelta(seconds=delay_s), LATEST_TIME)
    except OverflowError:
        return LATEST_TIME


# --- JSON values ------------------------------------------------------------------------------

def json_value(name: str, value: Any) -> Any:
    """``value`` as it will come back from the queue: tuples as lists, numpy scalars as Python
    numbers, text made valid UTF-8. Refuses what is not JSON (with the path to the bad part),
    floats that are not finite, dict keys that are not strings and nesting deeper than
    MAX_JSON_DEPTH.

    Iterative, so a value nested thousands deep is refused instead of overflowing the stack.
    """
    if value is None or isinstance(value, (bool, int)) and type(value) in (bool, int):
        return value
    if type(value) is str:
        return text(value)
    result: list[Any] = [None]
    # (container to fill, key or index in it, value to convert, depth, path for messages)
    stack: list[tuple[Any, Any, Any, int, str]] = [(result, 0, value, 0, name)]
    while stack:
        parent, key, item, depth, path = stack.pop()
        item = plain_number(item)
        if item is None or isinstance(item, bool):
            parent[key] = item
        elif isinstance(item, int):
            parent[key] = int(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidArgumentsError(
                    f"{path}: {item!r} is not a JSON value; JSON has no NaN or infinity")
            parent[key] = float(item)
        elif isinstance(item, str):
            parent[key] = text(item)
        elif isinstance(item, (list, tuple, dict)):
            if depth >= MAX_JSON_DEPTH:
                raise InvalidArgumentsError(
                    f"{name}: nested deeper than {MAX_JSON_DEPTH} levels; flatten the value "
                    "(pass a shallower structure, or a file path)")
            if isinstance(item, dict):
                out: dict[str, Any] = {}
                for k, v in item.items():
                    if not isinstance(k, str):
                        raise InvalidArgumentsError(
                            f"{path}: the key {k!r} ({type(k).__name__}) is not a string; "
                            f"JSON objects have string keys")
                    k = text(k)
                    out[k] = None
                    stack.append((out, k, v, depth + 1, f"{path}[{k!r}]"))
                parent[key] = out
            else:
                seq: list[Any] = [None] * len(item)
                for i, v in enumerate(item):
                    stack.append((seq, i, v, depth + 1, f"{path}[{i}]"))
                parent[key] = seq
        else:
            shown = _short_repr(item)
            raise InvalidArgumentsError(
                f"{path}: {shown} ({type(item).__name__}) is not a JSON value; {_JSON_HINT}")
    return result[0]


def _short_repr(value: Any, limit: int = 80) -> str:
    try:
        shown = repr(value)
    except Exception:  # a broken __repr__, or an int of more than 4300 digits, must not hide
        shown = f"<{type(value).__name__} object>"  # the real message
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (JSON has no NaN or infinity)")


#: json.loads that refuses NaN and Infinity, which Python's json accepts and DuckDB does not
strict_loads = json.JSONDecoder(parse_constant=_refuse_constant).decode


def json_text(name: str, value: Any, expected: type) -> Any:
    """Parse JSON text that must hold a ``expected`` (list or dict); the value, checked."""
    if not isinstance(value, str):
        raise InvalidArgumentsError(f"{name}: {_short_repr(value)} is not JSON text")
    try:
        parsed = strict_loads(value)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgumentsError(f"{name}: not valid JSON ({exc})") from exc
    if not isinstance(parsed, expected):
        raise InvalidArgumentsError(
            f"{name}: {_short_repr(parsed)} is not a JSON {'list' if expected is list else 'object'}")
    return json_value(name, parsed)


# --- records that cross the worker's socket -------------------------------------------------

def retry_policy(name: str, value: Any) -> RetryPolicy:
    """A RetryPolicy whose numbers are in range (as whitelist.yaml would give them)."""
    if not isinstance(value, RetryPolicy):
        raise InvalidArgumentsError(f"{name}: {_short_repr(value)} is not a retry policy")
    return RetryPolicy(
        retry_attempts=integer(f"{name}.retry_attempts", value.retry_attempts, 0, MAX_ATTEMPTS - 1),
        retry_delay=seconds(f"{name}.retry_delay", value.retry_delay),
        retry_backoff=backoff_factor(f"{name}.retry_backoff", value.retry_backoff),
        timeout=None if value.timeout is None else seconds(f"{name}.timeout", value.timeout,
                                                           allow_zero=False))


def backoff_factor(name: str, value: Any) -> float:
    """A retry backoff factor: a finite number > 0 (1.0 keeps the delay constant)."""
    value = plain_number(value)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        try:
            value = float(value)
        except OverflowError:
            ok = False
    if not ok or not math.isfinite(value) or value <= 0 or value > MAX_BACKOFF:
        raise InvalidArgumentsError(
            f"{name}={_short_repr(value)} is not allowed; expected a number > 0 and <= {MAX_BACKOFF:g} "
            "(1.0 keeps the delay constant)")
    return value


MAX_BACKOFF = 1000.0  #: a larger factor reaches the longest delay within a few retries anyway


def target_name(name: str, value: Any) -> str:
    """A dotted target name (checked against the whitelist elsewhere)."""
    if not isinstance(value, str) or not value or len(value) > 1000:
        raise InvalidArgumentsError(f"{name}: {_short_repr(value)} is not a target name")
    return text(value)


def job_spec(value: Any) -> JobSpec:
    """A JobSpec from a client, every field checked (the worker trusts nothing on its socket)."""
    if not isinstance(value, JobSpec):
        raise InvalidArgumentsError(f"expected a job, got {_short_repr(value)}")
    args = value.args if isinstance(value.args, (list, tuple)) else _not("args", value.args, "a list")
    kwargs = value.kwargs if isinstance(value.kwargs, dict) else _not("kwargs", value.kwargs, "a dict")
    return JobSpec(target=target_name("target", value.target), args=json_value("args", list(args)),
                   kwargs=json_value("kwargs", kwargs), priority=priority(value.priority),
                   run_at=timestamp("run_at", value.run_at),
                   policy=retry_policy("policy", value.policy))


def job_batch(value: Any) -> JobBatch:
    """A JobBatch from a client: each job's arguments must be JSON text of a list and a dict."""
    if not isinstance(value, JobBatch):
        raise InvalidArgumentsError(f"expected a batch of jobs, got {_short_repr(value)}")
    if not isinstance(value.args, list) or not isinstance(value.kwargs, list):
        raise InvalidArgumentsError("a batch's args and kwargs must be lists, one item per job")
    if len(value.args) != len(value.kwargs):
        raise InvalidArgumentsError(
            f"a batch has {len(value.args)} args and {len(value.kwargs)} kwargs; one each per job")
    args = [_dumps_checked(f"args[{i}]", a, list) for i, a in enumerate(value.args)]
    kwargs = [_dumps_checked(f"kwargs[{i}]", k, dict) for i, k in enumerate(value.kwargs)]
    return JobBatch(target=target_name("target", value.target), args=args, kwargs=kwargs,
                    priority=priority(value.priority), run_at=timestamp("run_at", value.run_at),
                    policy=retry_policy("policy", value.policy))


def _dumps_checked(name: str, raw: Any, expected: type) -> str:
    """The JSON text of one job's arguments in a batch, checked; the text as sent when it is
    clean (the common case: a hundred thousand of them must cost little)."""
    if (isinstance(raw, str) and raw.isascii() and "\\u" not in raw
            and raw.count("[") + raw.count("{") <= MAX_JSON_DEPTH):
        # No escapes (so no lone surrogates) and too few brackets to nest too deep: parsing
        # is the only check left.
        try:
            parsed = strict_loads(raw)
        except (ValueError, RecursionError) as exc:
            raise InvalidArgumentsError(f"{name}: not valid JSON ({exc})") from exc
        if isinstance(parsed, expected):
            return raw
    return json.dumps(json_text(name, raw, expected))


def _not(name: str, value: Any, expected: str) -> Any:
    raise InvalidArgumentsError(f"{name}: {_short_repr(value)} is not allowed; expected {expected}")


def outcome(value: Any) -> Outcome:
    """An attempt's Outcome: its text made valid UTF-8, its result a JSON value (else its repr)."""
    if not isinstance(value, Outcome) or not isinstance(value.kind, OutcomeKind):
        raise InvalidArgumentsError(f"expected an attempt's outcome, got {_short_repr(value)}")
    try:
        result = json_value("result", value.result)
    except InvalidArgumentsError:
        result = text(_short_repr(value.result, limit=10_000))
    duration = value.duration_s
    ok = isinstance(duration, (int, float)) and not isinstance(duration, bool) and math.isfinite(duration)
    return Outcome(kind=value.kind, result=result, error=optional_text(value.error),
                   output=optional_text(value.output) or "",
                   duration_s=float(duration) if ok and duration >= 0 else 0.0)


def progress_fraction(value: Any) -> float:
    """A progress report: a finite number from 0 to 1."""
    value = plain_number(value)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0 <= value <= 1:
        raise InvalidArgumentsError(
            f"progress fraction {_short_repr(value)} is not allowed; pass a number from 0 (nothing done) "
            "to 1 (all done), e.g. nj.progress(i / total)")
    return float(value)


# --- a request on the worker's socket --------------------------------------------------------

MAX_PAGE_SIZE = 100_000  #: jobs per page at most
STATUS_NAMES = ("pending", "running", "completed", "failed", "cancelled")


def _optional(check: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    return lambda name, value: None if value is None else check(name, value)


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentsError(f"{name}: {_short_repr(value)} is not a string")
    return text(value)


_RUNNER = re.compile(r"^run:[^:\s]{1,255}:[0-9]{1,10}$")


def _runner_name(name: str, value: Any) -> str:
    """The owner of a foreground run: ``run:<host>:<pid>``."""
    if not isinstance(value, str) or not _RUNNER.match(value):
        raise InvalidArgumentsError(f"{name}: {_short_repr(value)} is not run:<host>:<pid>")
    return value


def _status(name: str, value: Any) -> str:
    if value not in STATUS_NAMES:
        raise InvalidArgumentsError(f"{name}={_short_repr(value)} is not a job status; use one "
                                    f"of {', '.join(STATUS_NAMES)}")
    return str(value)


#: operation -> a check per positional argument: (name, check(name, value) -> value)
_REQUESTS: dict[str, tuple[tuple[str, Callable[[str, Any], Any]], ...]] = {
    "enqueue": (("spec", lambda n, v: job_spec(v)), ("now", timestamp)),
    "enqueue_batch": (("batch", lambda n, v: job_batch(v)), ("now", timestamp)),
    "enqueue_running": (("spec", lambda n, v: job_spec(v)), ("worker", _runner_name),
                        ("now", timestamp)),
    "restart": (("job_id", lambda n, v: job_id(v)), ("outcome", lambda n, v: outcome(v)),
                ("now", timestamp)),
    "finish": (("job_id", lambda n, v: job_id(v)), ("outcome", lambda n, v: outcome(v)),
               ("now", timestamp)),
    "get": (("job_id", lambda n, v: job_id(v)),),
    "cancel": (("job_id", lambda n, v: job_id(v)), ("now", timestamp)),
    "page": (("page", lambda n, v: integer(n, v, 1, ID_MAX)),
             ("per_page", lambda n, v: integer(n, v, 1, MAX_PAGE_SIZE)),
             ("status", _optional(_status))),
    "all_jobs": (),
    "counts": (),
    "record_progress": (("job_id", lambda n, v: job_id(v)),
                        ("fraction", lambda n, v: progress_fraction(v)),
                        ("message", _optional(_str))),
    "prune": (("before", timestamp),),
    "worker_status": (),
    "stop": (),
}
#: the named queries of "query" and the checks of their arguments
_QUERIES: dict[str, tuple[tuple[str, Callable[[str, Any], Any]], ...]] = {
    "history": (("since", _optional(timestamp)), ("until", _optional(timestamp)),
                ("target", _optional(_str)), ("status", _optional(_status))),
    "stats": (("by", _str),),
    "sql": (("query", _str),),
}


def request(operation: Any, args: Any) -> list[Any]:
    """The checked arguments of one request on the worker's socket (SPEC §14: each message's
    fields and types are checked before anything is stored); ``InvalidArgumentsError`` names
    the first one that is wrong."""
    if not isinstance(args, list):
        raise InvalidArgumentsError(f"a request's args must be a list, got {_short_repr(args)}")
    if operation == "query":
        if not args or args[0] not in _QUERIES:
            raise InvalidArgumentsError(
                f"query: the first argument must be one of {', '.join(_QUERIES)}")
        return [args[0], *_check_args(f"query {args[0]}", _QUERIES[args[0]], args[1:])]
    checks = _REQUESTS.get(operation) if isinstance(operation, str) else None
    if checks is None:
        raise InvalidArgumentsError(f"unknown operation {_short_repr(operation)}")
    return _check_args(operation, checks, args)


def _check_args(operation: str, checks: tuple[tuple[str, Callable[[str, Any], Any]], ...],
                args: list[Any]) -> list[Any]:
    if len(args) != len(checks):
        raise InvalidArgumentsError(
            f"{operation} takes {len(checks)} argument{'s' if len(checks) != 1 else ''} "
            f"({', '.join(name for name, _ in checks) or 'none'}), got {len(args)}")
    return [check(name, value) for (name, check), value in zip(checks, args, strict=True)]
