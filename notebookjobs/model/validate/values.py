"""The ranges and types of single values: numbers, durations, times, text, JSON (SPEC §14).

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
from datetime import UTC, datetime, timedelta
from typing import Any

from ...errors import InvalidArgumentsError
from ..records import RetryPolicy
from .data import DataRef

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  #: priority's range (an INTEGER column)
ID_MAX = 2**63 - 1  #: job ids are BIGINT
MAX_ATTEMPTS = 1_000_000  #: retry_attempts + 1 at most: far beyond any useful policy
MAX_CONCURRENCY = 1024  #: children in one worker's pool at most
#: seconds: the longest delay, retry delay, timeout or grace period (about 100 years), so that
#: now + any of them stays a timestamp Python and DuckDB can both hold
MAX_DURATION_S = 100 * 365.25 * 86400
#: the latest run_at or `at` accepted (a timestamp beyond it is refused, not clamped)
LATEST_TIME = datetime(9000, 1, 1, tzinfo=UTC)
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
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
        raise InvalidArgumentsError(f"{name}={short_repr(value)} is not allowed; expected a "
                                    "whole number" + _range_text(lowest, highest))
    if (lowest is not None and value < lowest) or (highest is not None and value > highest):
        raise InvalidArgumentsError(f"{name}={short_repr(value)} is out of range; expected a "
                                    "whole number" + _range_text(lowest, highest))
    return int(value)


def _range_text(lowest: int | None, highest: int | None) -> str:
    if lowest is not None and highest is not None:
        return f" from {lowest} to {highest}"
    if lowest is not None:
        return f" >= {lowest}"
    return "" if highest is None else f" <= {highest}"


def concurrency(value: Any) -> int:
    """Children in one worker's pool: 1 to MAX_CONCURRENCY, as whitelist.yaml allows."""
    return integer("concurrency", value, 1, MAX_CONCURRENCY)


def priority(value: Any) -> int:
    """A job's priority: a 32-bit signed integer (higher runs first)."""
    return integer("priority", value, INT32_MIN, INT32_MAX)


def job_id(value: Any) -> int:
    """A job id: any integer type (a DataFrame's np.int64 too), 1 or more."""
    return integer("job_id", value, 1, ID_MAX)


#: one part of a duration string: a number and its unit ("1h30m" has two)
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
#: seconds per unit of a duration string
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
DURATION_HINT = "seconds, or a duration like '90s', '5m', '1h30m', '2d' or '1w'"


def parse_duration(text: str) -> float | None:
    """Seconds of a duration string ("90", "90s", "5m", "1h30m", "2d", "1w"); None when it is
    not one. A bare number means seconds.

    Not pandas' ``Timedelta``: it reads a bare number as nanoseconds ("30" is 30 ns), warns
    that lower-case "d" and "w" will go, and the pool's children must not import pandas.
    """
    text = text.strip()
    try:
        return float(text)  # a bare number of seconds ("nan" and "inf" are refused later)
    except ValueError:
        pass
    total, position = 0.0, 0
    while position < len(text):
        part = _DURATION_PART.match(text, position)
        if part is None:
            return None
        total += float(part.group(1)) * DURATION_UNITS[part.group(2).lower()]
        position = part.end()
    return total if text else None


def seconds(name: str, value: Any, *, allow_zero: bool = True) -> float:
    """A duration in seconds (a number, a timedelta, or a string ``parse_duration`` reads),
    finite, >= 0 (> 0 unless ``allow_zero``) and at most MAX_DURATION_S."""
    value = shown = plain_number(value)
    if isinstance(value, timedelta):
        value = value.total_seconds()
    elif isinstance(value, str):
        parsed = parse_duration(value)
        if parsed is None:
            raise InvalidArgumentsError(
                f"{name}={short_repr(value)} is not a duration; pass {DURATION_HINT}")
        value = parsed
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
            f"{name}={short_repr(shown)} is not allowed; expected {bound}: {DURATION_HINT}, "
            "or a timedelta")
    if number > MAX_DURATION_S:
        raise InvalidArgumentsError(
            f"{name}={short_repr(shown)} is too long; at most {MAX_DURATION_S:.4g} seconds "
            "(100 years)")
    return number


def timestamp(name: str, value: Any) -> datetime:
    """A timezone-aware datetime between 1970 and the year 9000, as UTC."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgumentsError(
            f"{name}={short_repr(value)} is not allowed; expected a timezone-aware datetime")
    try:
        value = value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise InvalidArgumentsError(f"{name}={value!r} cannot be expressed in UTC") from exc
    if not EARLIEST_TIME <= value <= LATEST_TIME:
        raise InvalidArgumentsError(
            f"{name}={value.isoformat()} is out of range; expected a time between "
            f"{EARLIEST_TIME:%Y} and {LATEST_TIME:%Y}")
    return value


def at_time(name: str, value: Any) -> datetime:
    """A time to run at (``dispatch(at=...)``): a datetime or an ISO 8601 string, as UTC. A
    time without a zone is local time, as Python's own ``datetime.astimezone()`` reads it."""
    shown = value
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidArgumentsError(
                f"{name}={short_repr(shown)} is not a time; pass a datetime or an ISO 8601 "
                "string like '2026-12-01T09:00:00+01:00' (no offset: local time)") from None
    if not isinstance(value, datetime):
        raise InvalidArgumentsError(f"{name}={short_repr(shown)} is not allowed; pass a datetime "
                                    "or an ISO 8601 string")
    if value.tzinfo is None or value.utcoffset() is None:
        try:
            value = value.astimezone()  # local time
        except (OverflowError, ValueError, OSError) as exc:
            raise InvalidArgumentsError(f"{name}={short_repr(shown)} is out of range") from exc
    return timestamp(name, value)


MAX_AFTER = 1000  #: jobs one job may wait for at most


def job_ids(name: str, value: Any) -> tuple[int, ...]:
    """Job ids to wait for (``after``): one id or a list of them, each once, in order."""
    items = [value] if isinstance(plain_number(value), int) else value
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise InvalidArgumentsError(f"{name}={short_repr(value)} is not allowed; pass a job id "
                                    "or a list of job ids, e.g. after=[3, 4]")
    if len(items) > MAX_AFTER:
        raise InvalidArgumentsError(f"{name}: {len(items)} jobs; a job may wait for at most "
                                    f"{MAX_AFTER}")
    return tuple(dict.fromkeys(integer(name, item, 1, ID_MAX) for item in items))


MAX_KEY_CHARS = 200  #: characters of a unique key at most


def unique_key(name: str, value: Any) -> str:
    """A key of ``dispatch(unique="...")``: text of 1 to MAX_KEY_CHARS characters."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_KEY_CHARS:
        raise InvalidArgumentsError(
            f"{name}={short_repr(value)} is not allowed; pass unique=True (the key is the target "
            f"and its arguments) or a key of 1 to {MAX_KEY_CHARS} characters")
    return text(value)


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
    if value is None or (isinstance(value, (bool, int)) and type(value) in (bool, int)):
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
        elif isinstance(item, DataRef):  # a frame or array argument, already in its file
            parent[key] = item.as_json()
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
            shown = short_repr(item)
            raise InvalidArgumentsError(
                f"{path}: {shown} ({type(item).__name__}) is not a JSON value; {_JSON_HINT}")
    return result[0]


def short_repr(value: Any, limit: int = 80) -> str:
    try:
        shown = repr(value)
    except Exception:  # a broken __repr__, or an int of more than 4300 digits, must not hide
        shown = f"<{type(value).__name__} object>"  # the real message
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (JSON has no NaN or infinity)")


#: json.loads that refuses NaN and Infinity, which Python's json accepts and DuckDB does not
_STRICT = json.JSONDecoder(parse_constant=_refuse_constant)
strict_loads = _STRICT.decode
#: its C scanner alone: ``(value, end)`` of the JSON at an index, without ``decode``'s two
#: whitespace matches (StopIteration or ValueError where no valid JSON starts there)
strict_scan: Callable[[str, int], tuple[Any, int]] = (
    _STRICT.scan_once)  # type: ignore[attr-defined]  # set by __init__; typeshed lacks it


def json_text(name: str, value: Any, expected: type) -> Any:
    """Parse JSON text that must hold a ``expected`` (list or dict); the value, checked."""
    if not isinstance(value, str):
        raise InvalidArgumentsError(f"{name}: {short_repr(value)} is not JSON text")
    try:
        parsed = strict_loads(value)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgumentsError(f"{name}: not valid JSON ({exc})") from exc
    if not isinstance(parsed, expected):
        raise InvalidArgumentsError(
            f"{name}: {short_repr(parsed)} is not a JSON {'list' if expected is list else 'object'}"
        )
    return json_value(name, parsed)


# --- policies and names -----------------------------------------------------------------

def retry_policy(name: str, value: Any) -> RetryPolicy:
    """A RetryPolicy whose numbers are in range (as whitelist.yaml would give them)."""
    if not isinstance(value, RetryPolicy):
        raise InvalidArgumentsError(f"{name}: {short_repr(value)} is not a retry policy")
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
            f"{name}={short_repr(value)} is not allowed; expected a number > 0 and "
            f"<= {MAX_BACKOFF:g} (1.0 keeps the delay constant)")
    return value


MAX_BACKOFF = 1000.0  #: a larger factor reaches the longest delay within a few retries anyway


def target_name(name: str, value: Any) -> str:
    """A dotted target name (checked against the whitelist elsewhere)."""
    if not isinstance(value, str) or not value or len(value) > 1000:
        raise InvalidArgumentsError(f"{name}: {short_repr(value)} is not a target name")
    return text(value)


def progress_fraction(value: Any) -> float:
    """A progress report: a finite number from 0 to 1."""
    value = plain_number(value)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0 <= value <= 1:
        raise InvalidArgumentsError(
            f"progress fraction {short_repr(value)} is not allowed; pass a number from 0 "
            "(nothing done) to 1 (all done), e.g. nj.progress(i / total)")
    return float(value)
