"""Poison values and malformed socket messages (SPEC §14), shared by the fault tests and soak.py.

- Hypothesis strategies for every door values come in by: dispatch arguments, priorities and
  delays; whitelist.yaml text; raw lines on the worker's socket.
- ``expected_json``: what a value must read back as once stored (or ``MustRefuse``).
- ``RawClient``: one connection to the worker's socket that sends bytes as they are.
- ``check_reply``: what a well-formed reply is.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from notebookjobs.model import wire
from notebookjobs.model.records import JobBatch, JobSpec, Outcome, OutcomeKind, RetryPolicy, utcnow

INT32 = (-2**31, 2**31 - 1)
MAX_JSON_DEPTH = 100  #: SPEC §14: JSON nested deeper than this is refused
#: delays at or beyond this many seconds cannot be held by a timestamp (year 9999 is ~2.5e11 s
#: away); they must be refused
HUGE_DELAY_S = 1e12
REPLY_TIMEOUT_S = 20.0  #: a worker that has not answered one line by then is wedged

#: for property tests whose examples share one worker or queue file: shrinking would replay
#: examples against a state earlier examples changed, so it is off; the failing example is
#: printed as generated.
SHARED_STATE: dict[str, Any] = dict(
    deadline=None,
    database=None,
    derandomize=False,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def examples(default: int) -> settings:
    """Settings for a fault property: ``$NJ_FAULT_EXAMPLES`` examples (the soak raises it);
    ``NJ_FAULT_GENERATED_ONLY=1`` skips the explicit examples (to see what generation finds)."""
    options = dict(SHARED_STATE)
    if os.environ.get("NJ_FAULT_GENERATED_ONLY"):
        options["phases"] = [Phase.generate]
    return settings(max_examples=int(os.environ.get("NJ_FAULT_EXAMPLES", default)), **options)


# --- values -----------------------------------------------------------------------------------

#: lone surrogates as surrogateescape makes them (U+DC80..U+DCFF) and a few others; low ones
#: only, so that two of them never form a pair that a JSON decoder would join
LONE_SURROGATES = st.characters(min_codepoint=0xDC00, max_codepoint=0xDFFF, categories=["Cs"])
TEXT = st.one_of(
    st.text(max_size=12),
    st.lists(st.one_of(st.characters(), LONE_SURROGATES), max_size=8).map("".join),
    st.sampled_from(["\udcff", "caf\udcff", "\ud800x", "\x00", "'; DROP TABLE queue; --",
                     "$dt", "\u2028", "🙂"]),
)
#: (10**4000 is as large as Hypothesis can print: reprs of ints over 4,300 digits fail)
HUGE_INTS = st.sampled_from([2**31, -2**31 - 1, 2**40, 2**63, -2**63 - 1, 2**64, 10**30,
                             10**4000, -(10**4000)])
NUMPY_SCALARS = st.one_of(
    st.integers(-2**63, 2**63 - 1).map(np.int64),
    st.integers(0, 255).map(np.uint8),
    st.floats(allow_nan=True, allow_infinity=True).map(np.float64),
    st.floats(width=32).map(np.float32),
    st.booleans().map(np.bool_),
)
LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), HUGE_INTS,
    st.floats(allow_nan=True, allow_infinity=True), TEXT, st.binary(max_size=6), NUMPY_SCALARS,
)
KEYS = st.one_of(TEXT, TEXT, TEXT, st.integers(), st.none(), st.booleans(), st.floats(),
                 st.integers(-2**63, 2**63 - 1).map(np.int64))


def _nest(leaf: Any, depth: int) -> Any:
    for level in range(depth):
        leaf = [leaf] if level % 2 else {"k": leaf}
    return leaf


DEEP = st.builds(_nest, LEAVES, st.one_of(st.integers(1, 120), st.integers(120, 1000)))
VALUES = st.one_of(
    st.recursive(LEAVES, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.tuples(inner, inner),
        st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12),
    DEEP,
)
#: values a forged client can put on the wire (JSON can encode them: no bytes, no numpy)
WIRE_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), HUGE_INTS,
    st.floats(allow_nan=True, allow_infinity=True), TEXT)
WIRE_VALUES = st.one_of(
    st.recursive(WIRE_LEAVES, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)), max_leaves=8),
    st.builds(_nest, WIRE_LEAVES, st.integers(90, 600)),
)
#: keyword names a caller can pass to ``nj.dispatch`` besides its own parameters
KWARG_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True).filter(
    lambda name: name not in {"target", "priority", "delay", "at", "after", "unique"})

PRIORITIES = st.one_of(
    st.integers(-5, 5), st.integers(*INT32), st.integers(), HUGE_INTS,
    st.floats(allow_nan=True, allow_infinity=True), TEXT, st.none(), st.booleans(),
    st.integers(-2**63, 2**63 - 1).map(np.int64),
)
DELAYS = st.one_of(
    st.just(0), st.floats(0, 3600), st.integers(0, 10**6),
    st.sampled_from([1e12, 1e15, 1e300, -1, -1e12, 2**70, float("nan"), float("inf"),
                     -float("inf"), "5m", "1h30m", "2d", "soon", "", "-5s", "99999999999999d",
                     None, True, b"1"]),
    st.floats(allow_nan=True, allow_infinity=True), TEXT,
    st.floats(-1e9, 1e9).map(lambda s: timedelta(seconds=s)),
)


class MustRefuse(Exception):
    """The value is not JSON (or not one SPEC §14 accepts): dispatch must refuse it."""


def _fix_text(text: str) -> str:
    """Text as stored: each lone surrogate replaced with U+FFFD (SPEC §14)."""
    return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)


def expected_json(value: Any, depth: int = 0) -> Any:
    """What ``value`` reads back as once stored; ``MustRefuse`` when it must not be stored.

    numpy scalars count as the Python numbers they hold; tuples come back as lists; dict keys
    must be text (a silent ``{1: x}`` -> ``{"1": x}`` is a changed value); NaN, infinities,
    bytes and JSON deeper than MAX_JSON_DEPTH are refused.
    """
    if depth > MAX_JSON_DEPTH + 2:  # a little slack: where counting starts is the fix's choice
        raise MustRefuse(f"nested deeper than {MAX_JSON_DEPTH}")
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise MustRefuse(f"{value!r} is not a finite number")
        return float(value)
    if isinstance(value, str):
        return _fix_text(str(value))
    if isinstance(value, (list, tuple)):
        return [expected_json(v, depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise MustRefuse(f"dict key {key!r} is not text")
            out[_fix_text(key)] = expected_json(item, depth + 1)
        return out
    raise MustRefuse(f"{type(value).__name__} is not a JSON value")


def same_json(a: Any, b: Any) -> bool:
    """Equal, and of the same JSON types all the way down (True is not 1, 1 is not 1.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    return a == b


def delay_must_be_refused(delay: Any) -> bool:
    """Delays SPEC §6/§14 refuse for sure: negative, NaN, infinite, beyond a timestamp, junk."""
    if isinstance(delay, timedelta):
        return delay < timedelta(0)
    if isinstance(delay, (bytes, bool, np.bool_)):
        return True
    if isinstance(delay, (int, float)):
        return not math.isfinite(delay) or delay < 0 or delay >= HUGE_DELAY_S
    return False  # strings and None: SPEC §6 allows duration strings; junk may be refused


# --- whitelist.yaml ------------------------------------------------------------------------------

YAML_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), HUGE_INTS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1.0e12, 1e300, -1, 0, 0.5, 2**40, "5m", "ok", "", "os", "eval"]),
    st.text(max_size=10),
)
OWNERS = st.sampled_from(["jobs.testing", "jobs.sample", "jobs.testing.Greeter", "os", "builtins",
                          "subprocess", "shutil", "jobs", "_private", "jobs.nope", "1bad", ""])
MEMBERS = st.sampled_from(["ok", "fail", "echo", "system", "eval", "exec", "run", "rmtree",
                           "hello", "_secret", "__init__", "nope", ""])
POLICY = st.dictionaries(
    st.sampled_from(["retry_attempts", "retry_delay", "retry_backoff", "timeout", "bogus"]),
    YAML_SCALARS, max_size=3)
MEMBER_LISTS = st.one_of(
    st.lists(MEMBERS, max_size=3),
    # what a list item may wrongly be: a mapping of overrides, a list, a number
    st.lists(st.one_of(MEMBERS, YAML_SCALARS, st.dictionaries(MEMBERS, POLICY, max_size=1),
                       st.lists(MEMBERS, max_size=1)), max_size=3),
    st.dictionaries(MEMBERS, st.one_of(st.none(), POLICY), max_size=3),
    YAML_SCALARS,
)
WHITELIST_DATA = st.fixed_dictionaries(
    {},
    optional={
        "retry_attempts": YAML_SCALARS,
        "retry_delay": YAML_SCALARS,
        "retry_backoff": YAML_SCALARS,
        "timeout": YAML_SCALARS,
        "worker": st.one_of(
            YAML_SCALARS,
            st.dictionaries(
                st.sampled_from(["concurrency", "autostart", "grace_period", "bogus"]),
                YAML_SCALARS,
                max_size=3,
            ),
        ),
        "allowed_jobs": st.one_of(YAML_SCALARS, st.dictionaries(OWNERS, MEMBER_LISTS, max_size=3)),
        "external_packages": st.one_of(st.lists(OWNERS, max_size=2), YAML_SCALARS),
        "bogus": YAML_SCALARS,
    },
)
YAML_TEXT = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=80),
    st.lists(
        st.sampled_from(
            [
                "retry_delay: 1.0e+12\n",
                "retry_delay: .nan\n",
                "retry_delay: 5\n",
                "retry_attempts: 99999999999\n",
                "timeout: 1e300\n",
                "timeout: .inf\n",
                "allowed_jobs:\n",
                "  os: [system]\n",
                "  builtins: [eval]\n",
                "  jobs.testing: [ok]\n",
                "  jobs.testing: [fail]\n",
                "worker:\n",
                "  concurrency: 2\n",
                "  grace_period: 1e300\n",
                "- x\n",
                ": :\n",
                "a: &a [*a]\n",
                "x: !!python/object/apply:os.system [id]\n",
                "[" * 200 + "]" * 200 + "\n",
                "\t\x00\n",
                "? [a, b]\n: 1\n",
            ]
        ),
        max_size=8,
    ).map("".join),
)


# --- socket messages -----------------------------------------------------------------------------

def good_spec() -> JobSpec:
    return JobSpec(target="jobs.testing.ok", args=[1], kwargs={}, priority=0, run_at=utcnow(),
                   policy=RetryPolicy(retry_attempts=0, retry_delay=0.0))


def good_batch() -> JobBatch:
    return JobBatch(target="jobs.testing.ok", args=["[1]", "[2]"], kwargs=["{}", "{}"], priority=0,
                    run_at=utcnow(), policy=RetryPolicy(retry_attempts=0, retry_delay=0.0))


def line(op: str, *args: Any) -> bytes:
    """A request exactly as ``remote.request`` writes it."""
    return wire.dumps({"op": op, "args": list(args)})


def forged(op: str, record: Any, **fields: Any) -> bytes:
    """A request for ``op`` carrying ``record`` with ``fields`` replaced, as-is (no checks)."""
    return line(op, dataclasses.replace(record, **fields), utcnow())


NAIVE = datetime(2030, 1, 1, 12, 0)
#: the forgeries of issue case 4, one per wrong-typed field on an allowed target
FORGERIES = {
    "kwargs_is_a_list": lambda: forged("enqueue", good_spec(), kwargs=[1]),
    "args_is_not_a_list": lambda: forged("enqueue", good_spec(), args={"a": 1}),
    "naive_run_at": lambda: forged("enqueue", good_spec(), run_at=NAIVE),
    "retry_delay_nan": lambda: forged(
        "enqueue", good_spec(), policy=RetryPolicy(retry_attempts=1, retry_delay=float("nan"))
    ),
    "timeout_negative": lambda: forged(
        "enqueue", good_spec(), policy=RetryPolicy(retry_attempts=0, timeout=-1.0)
    ),
    "priority_high": lambda: forged("enqueue", good_spec(), priority="high"),
    "priority_2_40": lambda: forged("enqueue", good_spec(), priority=2**40),
    "batch_args_not_json": lambda: forged("enqueue_batch", good_batch(), args=["[1", "not json"]),
    "batch_kwargs_not_objects": lambda: forged("enqueue_batch", good_batch(), kwargs=["[1]", "5"]),
    "batch_lengths_differ": lambda: forged("enqueue_batch", good_batch(), kwargs=["{}"]),
    "batch_priority_high": lambda: forged("enqueue_batch", good_batch(), priority="high"),
    # SPEC §16: a job waiting for its own id (the next one; the queue holds job 1), a cycle
    # attempt; ids that are not ids; a schedule only the worker may set; a key that is no text
    "after_its_own_id": lambda: forged("enqueue", good_spec(), after=[2]),
    "after_not_ids": lambda: forged("enqueue", good_spec(), after=["1", None]),
    "schedule_set_by_client": lambda: forged("enqueue", good_spec(), schedule="nightly"),
    "unique_key_not_text": lambda: forged("enqueue", good_spec(), unique_key=5),
}


def _record_with(record_fn, field_values: dict) -> st.SearchStrategy:
    """Records with one field replaced (most often: the one wrong field that gets through the
    others' checks), or several at once."""
    one_field = st.sampled_from(sorted(field_values)).flatmap(
        lambda name: field_values[name].map(lambda value: {name: value}))
    several = st.fixed_dictionaries({}, optional=field_values)
    return st.one_of(one_field, one_field, one_field, several).map(
        lambda changes: dataclasses.replace(record_fn(), **changes))


DATETIMES = st.one_of(
    st.datetimes(timezones=st.just(UTC)), st.datetimes(),
    st.sampled_from([NAIVE, datetime.max, datetime.min, datetime(9999, 12, 31, tzinfo=UTC)]),
)
ODD = st.one_of(
    WIRE_LEAVES,
    DATETIMES,
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
JSON_TEXTS = st.one_of(
    st.sampled_from(
        ["[1]", "[]", "{}", "[1", "not json", "null", "NaN", '"\\udcff"', "[" * 300 + "]" * 300]
    ),
    st.text(max_size=8),
    ODD,
)
POLICIES = st.builds(
    RetryPolicy,
    retry_attempts=st.one_of(st.integers(0, 3), HUGE_INTS, st.integers(-3, -1), ODD),
    retry_delay=st.one_of(st.floats(0, 1), st.floats(allow_nan=True, allow_infinity=True), ODD),
    retry_backoff=st.one_of(st.just(1.0), st.floats(allow_nan=True, allow_infinity=True), ODD),
    timeout=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), ODD),
)
SPECS = _record_with(good_spec, {
    "target": st.one_of(st.sampled_from(["jobs.testing.ok", "jobs.testing.echo", "os.system",
                                         "jobs.testing._effect", ""]), TEXT),
    "args": st.one_of(st.lists(WIRE_VALUES, max_size=2), ODD),
    "kwargs": st.one_of(st.dictionaries(TEXT, WIRE_VALUES, max_size=2), ODD),
    "priority": ODD,
    "run_at": st.one_of(DATETIMES, ODD),
    "policy": st.one_of(POLICIES, ODD),
})
BATCHES = _record_with(good_batch, {
    "target": st.sampled_from(["jobs.testing.ok", "jobs.testing.echo", "os.system"]),
    "args": st.one_of(st.lists(JSON_TEXTS, max_size=3), ODD),
    "kwargs": st.one_of(st.lists(JSON_TEXTS, max_size=3), ODD),
    "priority": ODD,
    "run_at": st.one_of(DATETIMES, ODD),
    "policy": st.one_of(POLICIES, ODD),
})
OUTCOMES = st.builds(
    Outcome,
    kind=st.sampled_from(list(OutcomeKind)),
    result=st.one_of(WIRE_VALUES, ODD, st.just({"type": "DataFrame", "rows": 1})),
    # a result type that does not fit its result is kept as text, never trusted (SPEC §15)
    result_type=st.one_of(st.none(), st.sampled_from(["json", "repr", "DataFrame", "ndarray",
                                                      "pickle"]), ODD),
    error=st.one_of(st.none(), TEXT),
    output=st.one_of(TEXT, ODD),
)
JOB_IDS = st.one_of(st.integers(-3, 50), HUGE_INTS, ODD)
OWNERS_OF_RUNS = st.sampled_from(
    ["run:x", "run:", "run:host:notapid", f"run:{socket.gethostname()}:1", "worker:x:1", "", "::"]
)
NOW = st.one_of(st.builds(utcnow), st.builds(utcnow), DATETIMES, ODD)
_ARGS_BY_OP = {
    "enqueue": st.tuples(SPECS, NOW),
    "enqueue_batch": st.tuples(BATCHES, NOW),
    "run_started": st.tuples(SPECS, st.one_of(OWNERS_OF_RUNS, ODD), NOW),
    "run_restarted": st.tuples(JOB_IDS, st.one_of(OUTCOMES, ODD), NOW),
    "run_finished": st.tuples(JOB_IDS, st.one_of(OUTCOMES, ODD), NOW),
    "get": st.tuples(JOB_IDS),
    "cancel": st.tuples(JOB_IDS, NOW),
    "page": st.tuples(JOB_IDS, JOB_IDS, st.one_of(st.sampled_from(["pending", "bogus"]), ODD),
                      st.one_of(st.sampled_from(["newest", "running", "bogus"]), ODD)),
    "get_many": st.tuples(st.one_of(st.lists(JOB_IDS, max_size=5), ODD)),
    # names the worker does not serve (some did once): refused like any unknown operation
    "all_jobs": st.tuples(),
    "claim_next": st.tuples(st.just("w"), NOW),
    "counts": st.tuples(),
    "worker_status": st.tuples(),
    "record_progress": st.tuples(JOB_IDS, st.one_of(st.floats(allow_nan=True), ODD),
                                 st.one_of(TEXT, ODD)),
    "prune": st.tuples(NOW),
    "table": st.one_of(
        st.tuples(st.sampled_from(["history", "stats", "sql", "nope"]), ODD),
        st.tuples(st.just("sql"), st.sampled_from([
            "SELECT 1", "SELECT * FROM jobs", "DELETE FROM queue", "SELECT repeat('x', 100)",
            "ATTACH 'x.duckdb'", "SELECT * FROM read_text('/etc/hostname')"])),
        st.tuples(st.just("stats"), st.sampled_from(["target", "status", "hour", "bogus"]))),
}
#: every operation the worker answers, except ``stop`` (a well-formed stop stops it, by design)
OPERATIONS = sorted(_ARGS_BY_OP)
STRUCTURED = st.one_of(*[
    st.tuples(st.just(op), args).map(lambda pair: line(pair[0], *pair[1]))
    for op, args in _ARGS_BY_OP.items()
])
JSON_ANY = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=6)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["op", "args", "$dt", "$rec", "$enum", "fields", "value", "x"]),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=10,
)


def _mangle(data: bytes, cut: int, flip: int) -> bytes:
    """A valid request cut short or with one byte changed (never a newline inside)."""
    body = data.rstrip(b"\n")
    if cut % 2:
        body = body[: cut % (len(body) + 1)]
    else:
        i = flip % max(len(body), 1)
        body = body[:i] + bytes([(body[i:i + 1] or b"x")[0] ^ 0x5A]) + body[i + 1:]
    return body.replace(b"\n", b" ") + b"\n"


MESSAGES = st.one_of(
    st.binary(max_size=64).map(lambda b: b.replace(b"\n", b"") + b"\n"),
    JSON_ANY.map(lambda v: json.dumps(v).encode() + b"\n"),
    st.builds(lambda op, args: json.dumps({"op": op, "args": args}).encode() + b"\n",
              st.one_of(st.sampled_from(OPERATIONS), st.text(max_size=8)), JSON_ANY),
    st.builds(lambda v: json.dumps({"op": "enqueue", "args": v}).encode() + b"\n", JSON_ANY),
    st.integers(50, 200_000).map(lambda n: b"[" * n + b"]" * n + b"\n"),
    st.integers(50, 5_000).map(lambda n: b'{"op": "get", "args": ' + b"[" * n + b"]" * n + b"}\n"),
    STRUCTURED, STRUCTURED, STRUCTURED,
    st.builds(_mangle, STRUCTURED, st.integers(0, 10**6), st.integers(0, 10**6)),
    st.sampled_from(list(FORGERIES.values())).map(lambda make: make()),
    st.just(b"\n"), st.just(b"\xff\xfe\n"),
)


# --- talking to the worker ------------------------------------------------------------------------


class RawClient:
    """One connection to the worker's socket; sends lines as they are and reads one reply."""

    def __init__(self, path: Path, timeout: float = REPLY_TIMEOUT_S) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(os.fspath(path))
        self.reader = self.sock.makefile("rb")

    def ask(self, data: bytes) -> bytes:
        """Send ``data`` and return the reply line (b"" when the worker closed the connection).

        ``socket.timeout`` when no reply comes within the timeout: the worker is wedged.
        """
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return b""
        try:
            return self.reader.readline()
        except ConnectionResetError:
            return b""

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def check_reply(reply: bytes) -> dict | None:
    """The reply as a dict if well formed; None for a closed connection; AssertionError else.

    Well formed (wire's docstring): one JSON line, ``{"ok": value}`` or
    ``{"error": {"type": name, "message": text}}`` with a non-empty message.
    """
    if reply == b"":
        return None
    assert reply.endswith(b"\n"), f"reply is not a whole line: {reply[:200]!r}"
    data = json.loads(reply)
    assert isinstance(data, dict) and len(data) == 1 and set(data) <= {"ok", "error"}, \
        f"reply is neither ok nor error: {reply[:200]!r}"
    if "error" in data:
        error = data["error"]
        assert isinstance(error, dict) and isinstance(error.get("type"), str), reply[:200]
        assert isinstance(error.get("message"), str) and error["message"].strip(), reply[:200]
    return data


def describe(data: bytes, limit: int = 160) -> str:
    """A short printable form of a message, for failure reports."""
    text = repr(data[:limit])
    return text + (f"... ({len(data)} bytes)" if len(data) > limit else "")
