"""Property (SPEC §6, §14): whatever a caller passes to ``nj.dispatch`` or ``nj.dispatch_many``
(arguments, priority, delay), it is refused with ``InvalidArgumentsError`` or stored exactly,
and the queue goes on. Through a running worker and on the locked file (the ``door`` fixture).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

import notebookjobs as nj

from .poison import (
    DELAYS,
    INT32,
    KWARG_NAMES,
    PRIORITIES,
    VALUES,
    MustRefuse,
    _nest,
    delay_must_be_refused,
    examples,
    expected_json,
    same_json,
)

TARGET = "jobs.testing.echo"  # echo(*args, **kwargs): takes any arguments


def priority_must_be_refused(priority: Any) -> bool:
    """SPEC §14: priority is a 32-bit signed int. None and bools may go either way."""
    if priority is None or isinstance(priority, (bool, np.bool_)):
        return False
    if isinstance(priority, (int, np.integer)):
        return not INT32[0] <= int(priority) <= INT32[1]
    if isinstance(priority, (float, np.floating)):
        return not (math.isfinite(priority) and float(priority).is_integer()
                    and INT32[0] <= priority <= INT32[1])
    if isinstance(priority, str):
        try:
            return not INT32[0] <= int(priority) <= INT32[1]
        except ValueError:
            return True
    return True


def refusal_of(call) -> tuple[Any, Exception | None]:
    """(result, None), or (None, the InvalidArgumentsError); any other exception fails the test."""
    try:
        return call(), None
    except nj.NotebookJobsError as exc:
        assert isinstance(exc, nj.InvalidArgumentsError), \
            f"refused with {type(exc).__name__} instead of InvalidArgumentsError: {exc}"
        assert str(exc).strip(), "an InvalidArgumentsError without a message"
        return None, exc


def reasons_to_refuse(priority: Any, delay: Any, calls: list[tuple[list, dict]]) -> list[str]:
    reasons = []
    if priority_must_be_refused(priority):
        reasons.append(f"priority={priority!r}")
    if delay_must_be_refused(delay):
        reasons.append(f"delay={delay!r}")
    for args, kwargs in calls:
        for value in [*args, *kwargs.values()]:
            try:
                expected_json(value)
            except MustRefuse as exc:
                reasons.append(str(exc))
    return reasons


def check_stored(job_id: Any, args: list, kwargs: dict, priority: Any) -> None:
    info = nj.status(job_id)
    want_args = [expected_json(v) for v in args]
    want_kwargs = {name: expected_json(v) for name, v in kwargs.items()}
    assert same_json(info["args"], want_args), (info["args"], want_args)
    assert same_json(info["kwargs"], want_kwargs), (info["kwargs"], want_kwargs)
    assert type(info["priority"]) is int and INT32[0] <= info["priority"] <= INT32[1]
    if isinstance(priority, (int, np.integer)) and not isinstance(priority, (bool, np.bool_)):
        assert info["priority"] == int(priority)
    assert isinstance(info["run_at"], datetime) and info["run_at"].tzinfo is not None


def queue_goes_on(door) -> None:
    if door is not None:
        assert door.proc.poll() is None, f"the worker died:\n{door.output()[-3000:]}"
    counts = nj.counts()
    assert set(counts) == {"pending", "running", "completed", "failed", "cancelled"}


def test_dispatch_stores_exactly_or_refuses(project, door):
    @examples(30 if door else 15)
    @given(args=st.lists(VALUES, max_size=3),
           kwargs=st.dictionaries(KWARG_NAMES, VALUES, max_size=2),
           priority=PRIORITIES, delay=DELAYS)
    @example(args=[], kwargs={}, priority=2**40, delay=0)
    @example(args=["\udcff"], kwargs={"v": "caf\udcff"}, priority=0, delay=0)
    @example(args=[], kwargs={}, priority=0, delay=1e12)
    @example(args=[[[[[[[[[[0]]]]]]]]]], kwargs={}, priority=0, delay=0)
    # A value 100 levels deep is one level deeper in the job's argument list (or keyword
    # dict), where the worker reads it back: once acknowledged, then failed as unreadable;
    # now stored or refused (as dispatch_many's below).
    @example(args=[_nest(0, 100)], kwargs={}, priority=0, delay=0)
    @example(args=[], kwargs={"v": _nest(0, 100)}, priority=0, delay=0)
    @example(
        args=[np.int64(3), np.float64(0.5), {"n": np.int64(7)}],
        kwargs={},
        priority=np.int64(4),
        delay=0,
    )
    @example(args=[{1: "a", "1": "b"}], kwargs={}, priority=0, delay=0)
    def one(args, kwargs, priority, delay):
        job_id, refused = refusal_of(
            lambda: nj.dispatch(TARGET, *args, priority=priority, delay=delay, **kwargs))
        must = reasons_to_refuse(priority, delay, [(args, kwargs)])
        if refused is None:
            assert not must, f"stored although it must be refused: {must}"
            check_stored(job_id, args, kwargs, priority)
        queue_goes_on(door)

    one()


CALLS = st.lists(st.one_of(
    st.lists(VALUES, max_size=2), st.tuples(VALUES),
    st.dictionaries(KWARG_NAMES, VALUES, max_size=2),
    VALUES.filter(lambda v: not isinstance(v, (list, tuple, dict))),
), max_size=4)


def test_dispatch_many_stores_exactly_or_refuses(project, door):
    @examples(20 if door else 12)
    @given(calls=CALLS, priority=PRIORITIES, delay=DELAYS)
    @example(calls=[[1], [2]], priority=2**40, delay=0)
    # A value 100 levels deep is one level deeper in its job's argument list: once acknowledged
    # and then failed as unreadable by the worker (found by make soak); now stored or refused.
    @example(calls=[[_nest(0, 100)]], priority=0, delay=0)
    @example(calls=[["\udcff"]], priority=0, delay=0)
    @example(calls=[[1]], priority=0, delay=1e12)
    def one(calls, priority, delay):
        ids, refused = refusal_of(
            lambda: nj.dispatch_many(TARGET, calls, priority=priority, delay=delay)
        )
        shaped: list[tuple[list, dict]] = []
        bad_items = []
        for item in calls:
            if isinstance(item, dict):
                shaped.append(([], item))
            elif isinstance(item, (list, tuple)):
                shaped.append((list(item), {}))
            else:
                bad_items.append(f"item {item!r} is neither arguments nor keyword arguments")
        must = bad_items + reasons_to_refuse(priority, delay, shaped)
        if refused is None:
            assert not must, f"stored although it must be refused: {must}"
            assert len(ids) == len(calls) and len(set(ids)) == len(ids)
            for job_id, (args, kwargs) in zip(ids, shaped, strict=True):
                check_stored(job_id, args, kwargs, priority)
        queue_goes_on(door)

    one()
