"""Values found by hand that stopped the queue (issue cases 1, 2, 3 and 10; SPEC §6, §14).

Each is checked where it enters: priority is a 32-bit signed int; delays, retry delays and
durations stay within a timestamp; JSON deeper than 100 levels is refused; text that is not
UTF-8 is stored with U+FFFD; numpy numbers count as the Python numbers they hold.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import notebookjobs as nj
from notebookjobs import config
from notebookjobs.model import validate
from notebookjobs.model.records import JobBatch, RetryPolicy, utcnow
from support import wait_until

from .harness import cli_bytes, one_clear_line

FFFD = "\ufffd"


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def has_surrogate(value) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    if isinstance(value, (list, tuple)):
        return any(has_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(has_surrogate(k) or has_surrogate(v) for k, v in value.items())
    return False


def stored() -> int:
    return sum(nj.counts().values())


def still_runs(door) -> None:
    """The worker is alive and runs the next job; without one, the queue file still reads."""
    if door is not None:
        assert door.proc.poll() is None, door.output()[-3000:]
        assert nj.wait(nj.dispatch("jobs.testing.ok", 5), timeout=30)["result"] == 5
    nj.jobs(per_page=100)


# --- case 1: priority ----------------------------------------------------------------------------

def test_priority_beyond_32_bits_is_refused_and_the_queue_goes_on(project, door):
    for priority in (2**40, 2**31, -2**31 - 1, 10**5000):
        shown = "10**5000" if priority > 2**64 else str(priority)  # too many digits to print
        before = stored()  # still_runs below stores one job with a worker
        with pytest.raises(nj.InvalidArgumentsError, match="priority"):
            nj.dispatch("jobs.sample.flaky", priority=priority)
        with pytest.raises(nj.InvalidArgumentsError, match="priority"):
            nj.dispatch_many("jobs.testing.ok", [[1], [2]], priority=priority)
        assert stored() == before, f"stored with priority {shown}"
        still_runs(door)


def test_priority_at_the_32_bit_limits_is_stored(project, door):
    high = nj.dispatch("jobs.testing.ok", 1, priority=2**31 - 1, delay=3600)
    low = nj.dispatch("jobs.testing.ok", 2, priority=-2**31, delay=3600)
    assert (nj.status(high)["priority"], nj.status(low)["priority"]) == (2**31 - 1, -2**31)
    # (cancelled: a delayed high-priority job must not hold up due ones, but that is case 8)
    assert nj.cancel(high) and nj.cancel(low)
    still_runs(door)


# --- case 2: text that is not UTF-8 ---------------------------------------------------------------


def test_text_that_is_not_utf8_from_jobs_is_stored_with_fffd(project, start_worker):
    # Given a worker, and jobs that print, raise, report as progress and return a lone surrogate
    worker = start_worker()
    jobs = {where: nj.dispatch("jobs.testing.bad_text", where)
            for where in ("output", "error", "progress", "result")}
    # When they have ended
    infos = {where: nj.wait(job_id, timeout=60) for where, job_id in jobs.items()}
    # Then each text is stored with U+FFFD in place of the surrogate
    assert infos["output"]["status"] == "completed"
    assert f"caf{FFFD}" in infos["output"]["output"]
    assert infos["error"]["status"] == "failed"
    assert f"ValueError: caf{FFFD}" in infos["error"]["error"]
    assert infos["progress"]["progress_message"] == f"caf{FFFD}"
    assert infos["result"]["result"] == f"caf{FFFD}"
    for info in infos.values():
        assert not has_surrogate(info), info
    # And every read still works, from this process and the CLI
    nj.counts()
    nj.jobs(per_page=100)
    nj.history()
    nj.stats()
    for job_id in jobs.values():
        out = project.cli("status", str(job_id))
        assert out.returncode == 0, out.stderr
    assert project.cli("list").returncode == 0
    # And a restart works
    worker.stop()
    assert worker.proc.returncode == 0, worker.output()[-3000:]
    start_worker()
    assert nj.wait(nj.dispatch("jobs.testing.ok", 3), timeout=30)["result"] == 3
    assert nj.status(jobs["output"])["output"] == infos["output"]["output"]


def test_cli_dispatch_of_an_argument_that_is_not_utf8(project, door):
    # When the shell passes the byte 0xff as an argument
    out = cli_bytes(project, "dispatch", "jobs.testing.echo", b"\xff")
    assert out.returncode == 0, out.stderr
    job_id = int(out.stdout)
    # Then it is stored with U+FFFD, and every read works
    assert nj.status(job_id)["args"] == [FFFD]
    assert project.cli("status", str(job_id)).returncode == 0
    assert project.cli("list").returncode == 0
    if door is not None:
        assert nj.wait(job_id, timeout=30)["result"] == {"args": [FFFD], "kwargs": {}}
    still_runs(door)


# --- case 3: numbers no timestamp holds, JSON too deep --------------------------------------------

RETRY_DELAY_1E12 = """\
retry_attempts: 2
retry_delay: 1.0e+12
worker: {concurrency: 1, autostart: false}
allowed_jobs:
  jobs.testing: [ok, fail]
"""


def test_retry_delay_beyond_a_timestamp_is_refused_or_bounded(project, start_worker):
    project.write_whitelist(RETRY_DELAY_1E12)
    try:
        config.load_settings()
    except nj.ConfigError as exc:
        assert "retry_delay" in str(exc)
        return  # refused where it enters: the simplest answer
    # Accepted: then a failed attempt is retried at a bounded time, or failed with a clear
    # error, and the worker does not crash (nor crash-loop at its next start).
    worker = start_worker()
    job_id = nj.dispatch("jobs.testing.fail", "once")
    info = wait_until(
        lambda: (s := nj.status(job_id))["attempts"] >= 1 and s["status"] != "running" and s,
        timeout=30,
        what="the first attempt to be settled",
    )
    if info["status"] == "pending":
        assert info["run_at"].year <= 9999
    else:
        assert info["status"] == "failed" and info["error"]
    assert nj.wait(nj.dispatch("jobs.testing.ok", 4), timeout=30)["result"] == 4
    worker.stop()
    start_worker()
    assert nj.wait(nj.dispatch("jobs.testing.ok", 5), timeout=30)["result"] == 5


def test_delay_beyond_a_timestamp_is_refused(project, door):
    for delay in (1e12, 10**20, 1e300):
        with pytest.raises(nj.InvalidArgumentsError, match="delay"):
            nj.dispatch("jobs.testing.ok", 1, delay=delay)
        with pytest.raises(nj.InvalidArgumentsError, match="delay"):
            nj.dispatch_many("jobs.testing.ok", [[1]], delay=delay)
        assert stored() == 0
    still_runs(door)


def test_arguments_nested_deeper_than_100_levels_are_refused(project, door):
    for depth in (150, 900, 5000):
        with pytest.raises(nj.InvalidArgumentsError):
            nj.dispatch("jobs.testing.echo", nested(depth))
        with pytest.raises(nj.InvalidArgumentsError):
            nj.dispatch("jobs.testing.echo", value={"k": nested(depth)})
        with pytest.raises(nj.InvalidArgumentsError):
            nj.dispatch_many("jobs.testing.echo", [[1], [nested(depth)]])
        assert stored() == 0, f"stored arguments {depth} levels deep"
    still_runs(door)


def test_arguments_at_the_depth_limit_are_stored_or_refused_at_dispatch(project, door):
    # The limit counts the job's argument list (and its keyword dict) as a level, as the
    # worker does when it reads the dispatch back: a value 100 deep is 101 levels there. It was
    # acknowledged, then failed as "could not be read back from the journal".
    for depth, fits in ((99, True), (100, False), (101, False)):
        calls: list[tuple[list, dict]] = [([nested(depth)], {}), ([], {"value": nested(depth)})]
        for args, kwargs in calls:
            before = stored()
            if fits:
                job_id = nj.dispatch("jobs.testing.echo", *args, **kwargs, delay=3600)
                info = nj.status(job_id)
                assert (info["status"], info["args"], info["kwargs"]) == (
                    "pending", args, kwargs), info["error"]
                assert nj.cancel(job_id)
            else:
                with pytest.raises(nj.InvalidArgumentsError, match="nested deeper than 100"):
                    nj.dispatch("jobs.testing.echo", *args, **kwargs)
                with pytest.raises(nj.InvalidArgumentsError, match="nested deeper than 100"):
                    nj.dispatch_many("jobs.testing.echo", [args or kwargs])
                assert stored() == before, f"stored {args or kwargs} at depth {depth}"
    still_runs(door)


@pytest.mark.parametrize(
    "argv, env",
    [
        (["dispatch", "jobs.testing.ok", "--delay", "1e12"], {}),
        (["prune", "--older-than", "99999999999999d"], {}),
        (
            [
                "dispatch",
                "jobs.testing.typed",
                "1",
                "1.5",
                "true",
                "n",
                "[" * 5000 + "]" * 5000,
                "{}",
            ],
            {},
        ),
        (["dispatch", "jobs.testing.ok"], {"NOTEBOOKJOBS_DB": "/proc/x.duckdb"}),
    ],
    ids=["delay-1e12", "prune-huge", "json-5000-deep", "db-in-proc"],
)
def test_cli_refuses_on_one_line_without_a_traceback(project, argv, env):
    out = cli_bytes(project, *argv, env={**project.env(), **env})
    one_clear_line(out)


# --- case 10: numpy and pandas values -------------------------------------------------------------


def test_a_job_id_taken_from_a_frame_works(project, door):
    job_id = nj.dispatch("jobs.testing.ok", 1, delay=3600)
    frame_id = nj.jobs()["id"][0]
    assert isinstance(frame_id, np.integer)
    assert nj.status(frame_id)["id"] == job_id
    assert nj.cancel(frame_id) is True
    assert nj.status(np.int32(job_id))["status"] == "cancelled"


def test_numpy_numbers_are_the_python_numbers_they_hold(project, door):
    for values in ((3, np.float64(1.5), True),  # np.float64 for float
                   (np.int64(3), 1.5, True),  # np.int64 for int
                   (np.int32(3), np.float32(1.5), np.bool_(True))):
        job_id = nj.dispatch("jobs.testing.typed", *values, "n", [np.int64(1)],
                             {"k": np.float64(2.5)}, delay=3600)
        args = nj.status(job_id)["args"]
        assert args == [3, 1.5, True, "n", [1], {"k": 2.5}], values
        assert [type(a) for a in args[:3]] == [int, float, bool] and type(args[4][0]) is int
    still_runs(door)


# --- a batch's argument texts (what the socket and the journal carry) -------------------------


def batch_of(args: list) -> JobBatch:
    return JobBatch(target="jobs.testing.ok", args=args, kwargs=["{}"] * len(args), priority=0,
                    run_at=utcnow(), policy=RetryPolicy())


def test_a_batch_text_is_checked_whole_and_each_distinct_text_once():
    # Texts the fast path takes as they are, texts it leaves to the full check (spaces around,
    # an escape), and repeats: each comes back as JSON of a list, in order
    texts = ["[1]", " [2] ", "[1]", '["\\u00e9"]', " [2] ", "[]"]
    assert validate.job_batch(batch_of(texts)).args == [
        "[1]", "[2]", "[1]", '["\\u00e9"]', "[2]", "[]"]
    # Two values in one text, a text cut short, NaN, a value of the wrong type: refused, and
    # the error names the first bad item even when a good text repeats before it
    for bad in ("[1] [2]", "[1], [2]", "[1", "[NaN]", '{"a": 1}', "1"):
        with pytest.raises(nj.InvalidArgumentsError, match=re.escape("args[2]")):
            validate.job_batch(batch_of(["[1]", "[1]", bad, bad]))
