"""What a new user meets first, each seen in a pip user's first hour (issue 22, point 7): text
for a frame or array parameter refused at dispatch, not on every retry; an API keyword typo
answered with "did you mean"; waits never negative; ``nj.sql``'s errors on one line. A real
queue, a real worker where one answers, the CLI as a subprocess."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

import notebookjobs as nj
from notebookjobs.model import transitions
from notebookjobs.model.records import Outcome, OutcomeKind, utcnow
from support import change_job

#: jobs/data.py of the test project: frame and array parameters, annotated as code does
DATA_JOBS = '''\
from __future__ import annotations

import numpy as np
import pandas as pd


def weigh(frame: pd.DataFrame, weights: np.ndarray | None = None, scale: float = 1.0) -> float:
    """A total of the frame, weighted."""
    return float((frame.sum(axis=1) * (1 if weights is None else weights)).sum() * scale)
'''

#: jobs/lazy.py: a module that imports pandas only where it runs; its annotation cannot be
#: evaluated, so it stays text
LAZY_JOBS = '''\
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def rows(frame: pd.DataFrame) -> int:
    """How many rows."""
    return len(frame)
'''


@pytest.fixture
def data_jobs(project):
    (project.root / "jobs" / "data.py").write_text(DATA_JOBS)
    (project.root / "jobs" / "lazy.py").write_text(LAZY_JOBS)
    project.write_whitelist(project.root.joinpath("whitelist.yaml").read_text()
                            + "  jobs.data: [weigh]\n  jobs.lazy: [rows]\n")
    return project


def test_text_for_a_frame_or_array_parameter_is_refused_at_dispatch(data_jobs):
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    before = sum(nj.counts().values())
    # A string for a DataFrame, JSON text for an array, a Series for an array: refused now,
    # in one line that says what to pass (not accepted to fail on every retry)
    refusals: list[tuple[tuple[Any, ...], dict[str, Any], str]] = [
        (("jobs.data.weigh", "prices.csv"), {},
         "frame: 'prices.csv' is not accepted; expected a pandas DataFrame: pass the pandas "
         "DataFrame itself"),
        (("jobs.data.weigh", frame), {"weights": "[1,2,3]"},
         "weights: '[1,2,3]' is not accepted; expected a numpy array"),
        (("jobs.data.weigh", frame), {"weights": pd.Series([1.0, 2.0])},
         "weights: <Series of 2 float64> is not accepted; expected a numpy array"),
        (("jobs.lazy.rows", "x"), {}, "frame: 'x' is not accepted; expected a pandas DataFrame"),
    ]
    for args, kwargs, message in refusals:
        with pytest.raises(nj.InvalidArgumentsError) as caught:
            nj.dispatch(*args, **kwargs)
        assert message in str(caught.value) and "\n" not in str(caught.value)
    assert sum(nj.counts().values()) == before
    # The data itself, or None where None is allowed, is stored as before
    for kwargs in ({}, {"weights": None}, {"weights": np.array([1.0, 0.5])}):
        nj.dispatch("jobs.data.weigh", frame, **kwargs)
    nj.dispatch("jobs.lazy.rows", frame)
    assert sum(nj.counts().values()) == before + 4
    # And the CLI, which can only give text, refuses it in one line with exit 2
    out = data_jobs.cli("dispatch", "jobs.data.weigh", "prices.csv")
    assert (out.returncode, out.stdout) == (2, "")
    assert len(out.stderr.strip().splitlines()) == 1
    assert "expected a pandas DataFrame" in out.stderr


def test_a_keyword_typo_in_the_api_says_did_you_mean(project):
    # fail_times(key, failures): a typo of the required 'failures'
    with pytest.raises(nj.InvalidArgumentsError) as caught:
        nj.dispatch("jobs.testing.fail_times", key="k", failurs=2)
    message = str(caught.value)
    assert "unexpected keyword argument 'failurs' (did you mean 'failures'?)" in message
    assert "the names it takes: key, failures" in message
    # A call that is only short of an argument still says so
    with pytest.raises(nj.InvalidArgumentsError, match="missing a required argument"):
        nj.dispatch("jobs.testing.fail_times", key="k")


def test_a_job_waiting_for_its_retry_has_no_negative_wait(project):
    # Given jobs whose retries wait a minute
    project.write_whitelist(project.root.joinpath("whitelist.yaml").read_text()
                            .replace("retry_delay: 0", "retry_delay: 60"))
    now = utcnow()
    retrying, ran = nj.dispatch("jobs.testing.fail"), nj.dispatch("jobs.testing.ok")
    # When one attempt of the first failed (it waits for its retry, due in a minute) and the
    # second started two seconds after it was due
    change_job(retrying, lambda job: transitions.settle(
        transitions.start(job, "test", now), Outcome(kind=OutcomeKind.FAILED, error="x"), now))
    change_job(ran, lambda job: transitions.start(job, "test",
                                                   job.run_at + timedelta(seconds=2)))
    assert nj.status(retrying)["status"] == "pending"
    # Then history has no wait for the one that has not started since it became due, and the
    # other's wait; stats' waits are those of started attempts, none negative
    waits = nj.history().set_index("id")["wait_s"]
    assert math.isnan(waits[retrying]) and waits[ran] == pytest.approx(2.0)
    stats = nj.stats(by="status").set_index("status")
    assert stats.loc["running", "wait_p50"] == pytest.approx(2.0)
    assert math.isnan(stats.loc["pending", "wait_p50"])


BAD_QUERIES = ["SELECT nope FROM jobs", "SELEC 1", "SELECT * FROM nothere",
               "SELECT 'a'::int FROM jobs"]


def test_sql_errors_are_one_line(project, start_worker):
    nj.dispatch("jobs.testing.ok", 1)

    def refusals() -> list[str]:
        messages = []
        for query in BAD_QUERIES:
            with pytest.raises(nj.InvalidArgumentsError) as caught:
                nj.sql(query)
            messages.append(str(caught.value))
        return messages

    # Without a worker (the locked file) and through one (its socket), the same one line
    alone = refusals()
    start_worker()
    assert refusals() == alone
    for message in alone:
        assert message.startswith("nj.sql: ") and "\n" not in message, message
    assert alone[0].startswith('nj.sql: Binder Error: Referenced column "nope" not found')
    assert alone[1].startswith('nj.sql: the query does not parse: Parser Error: syntax error '
                               'at or near "SELEC"')
