"""``dispatch(unique=True)`` keys the bound call with defaults applied (SPEC §7, §16, round 3):
every spelling of one call is one job, however it was written, and a frame or an array counts
by what it holds. A real queue; jobs due in a minute, so that they stay pending."""

from __future__ import annotations

import numpy as np
import pandas as pd

import notebookjobs as nj

SLOW = "jobs.sample.slow"  #: slow(seconds: float = 5.0, steps: int = 10)
DESCRIBE = "jobs.testing.describe"  #: describe(data, scale: float = 1.0)


def once(target: str, *args: object, **kwargs: object) -> int:
    return int(nj.dispatch(target, *args, unique=True, delay=60, **kwargs))


def test_every_spelling_of_one_call_is_one_job(project):
    # Given a job dispatched with unique=True, its arguments by name
    first = once(SLOW, seconds=0.5, steps=10)
    # Then the same call spelled otherwise is the same job: by position, in another order,
    # with a default left out, as strings (the CLI's, the form's), an int for a float
    spellings: list[tuple[tuple[object, ...], dict[str, object]]] = [
        ((0.5, 10), {}), ((0.5,), {"steps": 10}), ((), {"steps": 10, "seconds": 0.5}),
        ((0.5,), {}), ((), {"seconds": 0.5}), (("0.5", "10"), {})]
    for args, kwargs in spellings:
        assert once(SLOW, *args, **kwargs) == first, (args, kwargs)
    # ... and a call of the defaults alone is the call that names them
    defaults = once(SLOW)
    assert once(SLOW, 5.0, 10) == once(SLOW, 5) == once(SLOW, steps=10) == defaults
    # And another call is another job
    other = once(SLOW, 0.5, 11)
    assert len({first, defaults, other}) == 3
    assert nj.counts()["pending"] == 3


def test_a_frame_or_an_array_is_keyed_by_what_it_holds(project):
    # Given a job dispatched with a frame, unique
    frame = pd.DataFrame({"v": [1.0, 2.0]}, index=["a", "b"])
    first = once(DESCRIBE, frame)
    # Then an equal frame (another object, stored in another file) is the same call
    assert once(DESCRIBE, frame.copy()) == first
    assert once(DESCRIBE, data=frame.copy(), scale=1) == first
    # ... and other values, another column name, another index are other calls
    changed = [frame.assign(v=[1.0, 3.0]), frame.rename(columns={"v": "w"}),
               frame.set_axis(["a", "c"]), frame.astype("float32")]
    assert len({first, *(once(DESCRIBE, f) for f in changed)}) == 5
    # The same for arrays: equal ones are one call; another shape or dtype is another
    array = np.arange(6.0).reshape(2, 3)
    same = once(DESCRIBE, array)
    assert once(DESCRIBE, array.copy()) == same
    assert len({same, once(DESCRIBE, array.reshape(3, 2)),
                once(DESCRIBE, array.astype("float32"))}) == 3
