"""The records that cross the worker's socket, and each request's arguments, checked field by
field before anything is stored (SPEC §14: the socket trusts nothing it receives)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from ...errors import InvalidArgumentsError
from ..records import STATUS_NAMES, JobBatch, JobSpec, Outcome, OutcomeKind
from .data import RESULT_SUFFIXES, result_type
from .values import (
    MAX_JSON_DEPTH,
    job_id,
    job_ids,
    json_text,
    json_value,
    optional_text,
    priority,
    retry_policy,
    seconds,
    short_repr,
    strict_scan,
    target_name,
    text,
    timestamp,
    unique_key,
)


def job_spec(value: Any) -> JobSpec:
    """A JobSpec from a client, every field checked (the worker trusts nothing on its socket)."""
    if not isinstance(value, JobSpec):
        raise InvalidArgumentsError(f"expected a job, got {short_repr(value)}")
    args = (
        value.args if isinstance(value.args, (list, tuple)) else _not("args", value.args, "a list")
    )
    kwargs = (
        value.kwargs if isinstance(value.kwargs, dict) else _not("kwargs", value.kwargs, "a dict")
    )
    if value.schedule is not None:
        raise InvalidArgumentsError("schedule is set by the worker for the jobs its schedules "
                                    "dispatch; a client cannot set it")
    return JobSpec(target=target_name("target", value.target), args=json_value("args", list(args)),
                   kwargs=json_value("kwargs", kwargs), priority=priority(value.priority),
                   run_at=timestamp("run_at", value.run_at),
                   policy=retry_policy("policy", value.policy),
                   after=job_ids("after", value.after),
                   unique_key=None if value.unique_key is None else unique_key(
                       "unique", value.unique_key))


def job_batch(value: Any) -> JobBatch:
    """A JobBatch from a client: each job's arguments must be JSON text of a list and a dict."""
    if not isinstance(value, JobBatch):
        raise InvalidArgumentsError(f"expected a batch of jobs, got {short_repr(value)}")
    if not isinstance(value.args, list) or not isinstance(value.kwargs, list):
        raise InvalidArgumentsError("a batch's args and kwargs must be lists, one item per job")
    if len(value.args) != len(value.kwargs):
        raise InvalidArgumentsError(
            f"a batch has {len(value.args)} args and {len(value.kwargs)} kwargs; one each per job")
    args = _all_checked("args", value.args, list)
    kwargs = _all_checked("kwargs", value.kwargs, dict)
    return JobBatch(target=target_name("target", value.target), args=args, kwargs=kwargs,
                    priority=priority(value.priority), run_at=timestamp("run_at", value.run_at),
                    policy=retry_policy("policy", value.policy))


def _all_checked(name: str, raws: list[Any], expected: type) -> list[str]:
    """``_dumps_checked`` of each item; an item equal to one checked before is that one's text
    (a batch often repeats its texts: ``[]`` and ``{}`` for 100,000 jobs cost one check each).
    Checked in order, so an error names the first bad item."""
    seen: dict[str, str] = {}
    out = []
    for i, raw in enumerate(raws):
        checked = seen.get(raw) if type(raw) is str else None
        if checked is None:
            checked = _dumps_checked(f"{name}[{i}]", raw, expected)
            if type(raw) is str:
                seen[raw] = checked
        out.append(checked)
    return out


def _dumps_checked(name: str, raw: Any, expected: type) -> str:
    """The JSON text of one job's arguments in a batch, checked; the text as sent when it is
    clean (the common case: a hundred thousand of them must cost little)."""
    if (isinstance(raw, str) and raw.isascii() and "\\u" not in raw
            and raw.count("[") + raw.count("{") <= MAX_JSON_DEPTH):
        # No escapes (so no lone surrogates) and too few brackets to nest too deep: parsing
        # is the only check left. The scanner parses one value from the first character: a
        # text it takes whole is one that ``strict_loads`` takes; any other (surrounding
        # spaces included) gets the full check below, which says what is wrong.
        try:
            parsed, end = strict_scan(raw, 0)
        except (StopIteration, ValueError, RecursionError):
            end = -1
        if end == len(raw) and isinstance(parsed, expected):
            return raw
    return json.dumps(json_text(name, raw, expected))


def _not(name: str, value: Any, expected: str) -> Any:
    raise InvalidArgumentsError(f"{name}: {short_repr(value)} is not allowed; expected {expected}")


def outcome(value: Any) -> Outcome:
    """An attempt's Outcome: its text made valid UTF-8, its result a JSON value (else its repr),
    its result type one of RESULT_TYPES. A result kept in a file must come with the summary of
    that file (a JSON object naming its type); a result type that does not fit its result is
    dropped for ``repr`` rather than refused: nothing a job returns may stop the worker."""
    if not isinstance(value, Outcome) or not isinstance(value.kind, OutcomeKind):
        raise InvalidArgumentsError(f"expected an attempt's outcome, got {short_repr(value)}")
    succeeded = value.kind is OutcomeKind.SUCCEEDED
    kept_as = (result_type(value.result_type) or "json") if succeeded else None
    try:
        result = json_value("result", value.result)
    except InvalidArgumentsError:
        result, kept_as = text(short_repr(value.result, limit=10_000)), "repr"
    if kept_as in RESULT_SUFFIXES and not (isinstance(result, dict)
                                           and result.get("type") == kept_as):
        result, kept_as = text(short_repr(result, limit=10_000)), "repr"
    if not succeeded:
        kept_as = None
    duration = value.duration_s
    ok = (
        isinstance(duration, (int, float))
        and not isinstance(duration, bool)
        and math.isfinite(duration)
    )
    error, output = optional_text(value.error), optional_text(value.output) or ""
    duration_s = float(duration) if ok and duration >= 0 else 0.0
    if (result is value.result and kept_as == value.result_type and error is value.error
            and output is value.output and type(duration) is float and duration_s == duration):
        return value  # nearly always: valid already (a second Outcome cost ~2 µs per attempt)
    return Outcome(kind=value.kind, result=result, result_type=kept_as, error=error,
                   output=output, duration_s=duration_s)


#: how long a query (``nj.sql``, ``history``, ``stats``) may run unless its caller says (SPEC
#: §14: no query holds the queue): a 1,000,000-job history takes ~2 s, so this is for mistakes
QUERY_TIME_LIMIT_S = 120.0
#: the longest time limit a caller may set: a day
MAX_QUERY_TIME_LIMIT_S = 86_400.0


def query_time_limit(name: str, value: Any) -> float:
    """A query's time limit: None for QUERY_TIME_LIMIT_S, else seconds (as ``seconds``),
    > 0 and at most MAX_QUERY_TIME_LIMIT_S."""
    if value is None:
        return QUERY_TIME_LIMIT_S
    limit = seconds(name, value, allow_zero=False)
    if limit > MAX_QUERY_TIME_LIMIT_S:
        raise InvalidArgumentsError(
            f"{name}={short_repr(value)} is too long for a query; at most "
            f"{MAX_QUERY_TIME_LIMIT_S:g} seconds (a day)")
    return limit


# --- the fields of a request on the worker's socket ---------------------------------------------
# Each is a check(name, value) -> value; which operation takes which: ``access.operations``.

MAX_PAGE_SIZE = 100_000  #: jobs per page at most
MAX_GET_MANY = 10_000  #: jobs per get_many at most
#: the orders of a page (``store.PAGE_ORDERS``, whose SQL only the store holds)
PAGE_ORDER_NAMES = ("newest", "oldest", "running", "priority")


#: a check of one field of a request: (its name, its value) -> the value checked
Check = Callable[[str, Any], Any]


def optional(check: Check) -> Check:
    """``check``, or None for None."""
    return lambda name, value: None if value is None else check(name, value)


def checked(check: Callable[[Any], Any]) -> Check:
    """A check of a value alone (``job_spec``, ``outcome``, ...) as a check of a field."""
    return lambda name, value: check(value)


def string(name: str, value: Any) -> str:
    """A text field: a str, made valid UTF-8."""
    if not isinstance(value, str):
        raise InvalidArgumentsError(f"{name}: {short_repr(value)} is not a string")
    return text(value)


#: the owner of a foreground run: its host, pid, and the token of the lock it holds (``owners``)
FOREGROUND_OWNER = re.compile(
    r"^run:(?P<host>[^:\s]{1,255}):(?P<pid>[0-9]{1,10}):(?P<token>[0-9a-f]{32})$")


def runner_name(name: str, value: Any) -> str:
    """The owner of a foreground run: ``run:<host>:<pid>:<token>`` (``owners.Hold``)."""
    if not isinstance(value, str) or not FOREGROUND_OWNER.match(value):
        raise InvalidArgumentsError(
            f"{name}: {short_repr(value)} is not run:<host>:<pid>:<32 hex digits>")
    return value


def status_name(name: str, value: Any) -> str:
    """One of the five job statuses (SPEC §5)."""
    if value not in STATUS_NAMES:
        raise InvalidArgumentsError(f"{name}={short_repr(value)} is not a job status; use one "
                                    f"of {', '.join(STATUS_NAMES)}")
    return str(value)


def page_order(name: str, value: Any) -> str:
    """The order of a page of jobs: one of PAGE_ORDER_NAMES."""
    if value not in PAGE_ORDER_NAMES:
        raise InvalidArgumentsError(f"{name}={short_repr(value)} is not an order of the queue; "
                                    f"use one of {', '.join(PAGE_ORDER_NAMES)}")
    return str(value)


MAX_WATCH_S = 300.0  #: the longest a ``watch`` request may wait for a change


def watch_hold(name: str, value: Any) -> float:
    """How long a ``watch`` request may wait: seconds from 0 to MAX_WATCH_S."""
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not 0 <= value <= MAX_WATCH_S):
        raise InvalidArgumentsError(f"{name}: {short_repr(value)} is not a number of seconds "
                                    f"from 0 to {MAX_WATCH_S:g}")
    return float(value)


MAX_SEARCH_CHARS = 200  #: the longest search text of a page of jobs


def search_text(name: str, value: Any) -> str | None:
    """The text a page of jobs is searched for (``nj.jobs(search=...)``): a string of at most
    MAX_SEARCH_CHARS characters; blank means no search (None)."""
    if not isinstance(value, str):
        raise InvalidArgumentsError(f"{name}: {short_repr(value)} is not a string; give the "
                                    "text to look for in the targets and arguments")
    if len(value) > MAX_SEARCH_CHARS:
        raise InvalidArgumentsError(f"{name}: {len(value)} characters is too long; search for "
                                    f"at most {MAX_SEARCH_CHARS}")
    stripped = text(value).strip()
    return stripped or None


def many_ids(name: str, value: Any) -> list[int]:
    """A list of at most MAX_GET_MANY job ids (``get_many``; ``after`` is ``values.job_ids``)."""
    if not isinstance(value, list) or len(value) > MAX_GET_MANY:
        raise InvalidArgumentsError(f"{name}: {short_repr(value)} is not a list of at most "
                                    f"{MAX_GET_MANY:,} job ids; ask for fewer at a time")
    return [job_id(v) for v in value]
