"""Job handles, results that keep their type, frames and arrays as arguments (SPEC §15), with a
real worker and its children."""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

import notebookjobs as nj
from notebookjobs import config
from notebookjobs.data import datafiles
from support import TEST_WHITELIST, change_job


def data_files(kind: str) -> list[str]:
    folder = datafiles.data_dir(config.load_settings().db_path) / kind
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_job_handle_is_an_int_with_the_calls_of_the_spec(project):
    # Given a job dispatched without a worker (it stays pending)
    job = nj.dispatch("jobs.testing.ok", 5, delay=3600)
    # Then the handle is an int equal to the id, usable wherever an id is
    assert isinstance(job, nj.Job) and issubclass(nj.Job, int)
    assert job == job.id == 1 and type(job.id) is int
    assert (str(job), f"job {job}", f"{job:03d}", json.dumps([job])) == ("1", "job 1", "001", "[1]")
    assert {job: "x"}[1] == "x" and job + 1 == 2
    assert nj.status(job)["id"] == 1 and job.status()["status"] == "pending"
    # And its repr reads the job once: what it is and how it stands
    assert repr(job).startswith("<Job 1 jobs.testing.ok: pending")
    # And wait/result time out while it waits; nj.job(id) makes a handle of an existing id
    with pytest.raises(TimeoutError):
        job.wait(timeout=0.05)
    with pytest.raises(TimeoutError):
        job.result(timeout=0.05)
    assert nj.job(1) == job and isinstance(nj.job(1), nj.Job)
    with pytest.raises(nj.JobNotFoundError):
        nj.job(99)
    # When it is cancelled, then result() raises JobCancelledError, and retry() is a new Job
    assert job.cancel() is True and job.status()["status"] == "cancelled"
    with pytest.raises(nj.JobCancelledError, match=r"job 1 .* was cancelled"):
        job.result()
    again = job.retry()
    assert isinstance(again, nj.Job) and again == 2
    assert nj.status(again)["kwargs"] == {} and nj.status(again)["args"] == [5]
    # And dispatch_many gives handles too
    many = nj.dispatch_many("jobs.testing.ok", [[1], [2]], delay=3600)
    assert [type(j) for j in many] == [nj.Job, nj.Job] and many == [3, 4]


def test_each_result_type_comes_back_with_its_values_and_dtypes(project, start_worker):
    # Given a worker, and jobs returning JSON, a frame, a series, an array, bytes, a set
    start_worker()
    jobs = {name: nj.dispatch(f"jobs.testing.{name}")
            for name in ("frame", "series", "array", "blob", "something", "mixed")}
    jobs["json"] = nj.dispatch("jobs.testing.echo", 1, key=[1.5, "x"])
    # When their results are read back
    got = {name: job.result(timeout=60) for name, job in jobs.items()}
    # Then each has its type, values and dtypes
    expected_frame = pd.DataFrame(
        {"n": [0, 1, 2], "x": [0.0, 0.5, 1.0], "name": ["r0", "r1", "r2"],
         "when": pd.date_range("2026-01-01", periods=3, tz="UTC"),
         "kind": pd.Categorical(["a", "b", "a"]), "maybe": pd.array([1, None, 3], dtype="Int64")},
        index=pd.Index(["k0", "k1", "k2"], name="key"))
    pd.testing.assert_frame_equal(got["frame"], expected_frame)
    pd.testing.assert_series_equal(got["series"],
                                   pd.Series([1.5, 2.5], index=["a", "b"], name="price"))
    assert got["array"].dtype == np.float32 and got["array"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert got["blob"] == bytes([0, 1, 2, 3])
    assert got["something"] == "{1, 2, 3}"
    assert got["json"] == {"args": [1], "kwargs": {"key": [1.5, "x"]}}
    # And status() says how each is kept; a frame's result is a summary
    types = {name: nj.status(job)["result_type"] for name, job in jobs.items()}
    assert types == {"frame": "DataFrame", "series": "Series", "array": "ndarray",
                     "blob": "bytes", "something": "repr", "mixed": "repr", "json": "json"}
    assert nj.status(jobs["frame"])["result"] == {
        "type": "DataFrame", "rows": 3, "columns": ["n", "x", "name", "when", "kind", "maybe"]}
    assert nj.status(jobs["array"])["result"] == {"type": "ndarray", "shape": [2, 3],
                                                 "dtype": "float32"}
    # And a frame Parquet cannot hold is its repr, the output saying why
    assert "m" in got["mixed"] and "kept as its repr" in nj.status(jobs["mixed"])["output"]
    # And history() has the result_type column
    history = nj.history().set_index("id")
    assert history.loc[int(jobs["frame"]), "result_type"] == "DataFrame"
    # And the result files are private, one per file result, named by the job's id
    folder = datafiles.data_dir(project.db) / "results"
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([f"{jobs['frame']}.parquet", f"{jobs['series']}.parquet",
                            f"{jobs['array']}.npy", f"{jobs['blob']}.bin"])
    modes = {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert modes == {0o600}
    assert {stat.S_IMODE(f.stat().st_mode) for f in (folder, folder.parent)} == {0o700}


def test_frames_and_arrays_reach_the_job_as_themselves(project, start_worker):
    # Given a frame, a series and an array
    frame = pd.DataFrame({"v": [1.0, 2.0, 3.0]}, index=pd.Index(["a", "b", "c"], name="k"))
    series = pd.Series([1, 2, 3], dtype="int16", name="s")
    array = np.array([[1, 2], [3, 4]], dtype="int64")
    start_worker()
    # When they are dispatched as arguments (dispatch, and dispatch_many)
    seen = nj.dispatch("jobs.testing.describe", frame, scale=10)
    back = nj.dispatch("jobs.testing.scaled", data=frame)
    more = nj.dispatch_many("jobs.testing.describe", [[series], {"data": array, "scale": 2}])
    # Then the job received a DataFrame (a Series, an array) with its index and dtypes
    assert seen.result(timeout=60) == {
        "type": "DataFrame", "module": "pandas", "columns": ["v"], "index": ["a", "b", "c"],
        "dtypes": ["float64"], "total": 60.0}
    pd.testing.assert_frame_equal(back.result(timeout=60), frame * 2)
    assert [job.result(timeout=60) for job in more] == [
        {"type": "Series", "module": "pandas", "total": 6.0, "dtype": "int16"},
        {"type": "ndarray", "module": "numpy", "total": 20.0, "dtype": "int64"}]
    # And the stored arguments are references to private files, never the data itself
    stored = nj.status(seen)["args"][0]
    assert set(stored) == {"$nj", "file"} and stored["$nj"] == "DataFrame"
    path = datafiles.data_dir(project.db) / "arguments" / stored["file"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # And a retry gives the job the same frame again
    nj.cancel(nj.dispatch("jobs.testing.describe", frame, delay=3600))
    cancelled = nj.jobs(status="cancelled")["id"].iloc[0]
    assert nj.retry(cancelled).result(timeout=60)["total"] == 6.0


def test_a_reference_written_by_hand_is_refused_at_dispatch(project):
    with pytest.raises(nj.InvalidArgumentsError, match="is not a data reference"):
        nj.dispatch("jobs.testing.echo", {"$nj": "DataFrame", "file": "../../etc/passwd"})
    with pytest.raises(nj.InvalidArgumentsError, match="is gone from"):
        nj.dispatch("jobs.testing.echo", {"$nj": "ndarray", "file": "0" * 32 + ".npy"})
    assert nj.counts()["pending"] == 0


def test_a_failed_job_raises_with_its_traceback_and_keeps_every_error(project, start_worker):
    # Given a job that fails on each of its 3 attempts (retry_attempts: 2, no delay)
    start_worker()
    job = nj.dispatch("jobs.testing.fail", "boom")
    # When its result is asked for, then JobFailedError says why, with the job's traceback
    with pytest.raises(nj.JobFailedError,
                       match="failed after 3 attempts: ValueError: boom") as info:
        job.result(timeout=60)
    error = info.value
    assert error.job_id == job and error.traceback == nj.status(job)["error"]
    # ... starting at the job's own code: no frame of our runner before it
    assert error.traceback.startswith("Traceback (most recent call last):\n  File ")
    frames = [line for line in error.traceback.splitlines() if line.startswith("  File ")]
    assert frames and all("jobs/testing.py" in line for line in frames), frames
    # And every attempt's error is kept, oldest first
    errors = nj.status(job)["errors"]
    assert [e["attempt"] for e in errors] == [1, 2, 3]
    assert all(e["error"].rstrip().endswith("ValueError: boom") for e in errors)


def test_max_result_bytes_fails_a_larger_result(project, start_worker):
    # Given results of at most 1000 bytes
    project.write_whitelist(TEST_WHITELIST.replace("retry_attempts: 2", "retry_attempts: 0")
                            + "max_result_bytes: 1000\n")
    start_worker()
    # When jobs return 5000 bytes, a frame of 10,000 rows, a long text, and 500 bytes
    big, frame, text = (nj.dispatch("jobs.testing.blob", 5000),
                        nj.dispatch("jobs.testing.frame", 10_000),
                        nj.dispatch("jobs.testing.echo", "x" * 2000))
    small = nj.dispatch("jobs.testing.blob", 500)
    # Then the larger ones fail with an error that says what to do, and leave no file
    for job in (big, frame, text):
        with pytest.raises(nj.JobFailedError, match="larger than max_result_bytes") as info:
            job.result(timeout=60)
        assert "raise max_result_bytes in whitelist.yaml" in info.value.traceback
        assert "Traceback" not in info.value.traceback  # our refusal, not a crash of ours
    assert len(small.result(timeout=60)) == 500
    assert data_files("results") == [f"{small}.bin"]


def test_prune_removes_result_files_and_unused_argument_files(project, start_worker):
    # Given a completed job with a frame argument and a frame result, and a pending job whose
    # argument is an array, all of them an hour old
    start_worker()
    frame = pd.DataFrame({"v": [1.0]})
    done = nj.dispatch("jobs.testing.scaled", frame)
    done.result(timeout=60)
    waiting = nj.dispatch("jobs.testing.describe", np.arange(3), delay=3600)
    old = (pd.Timestamp.now().timestamp() - 7200,) * 2
    for name in data_files("arguments"):
        os.utime(datafiles.data_dir(project.db) / "arguments" / name, old)
    assert len(data_files("arguments")) == 2 and data_files("results") == [f"{done}.parquet"]
    # When the finished jobs are pruned
    assert nj.prune(older_than=timedelta(0)) == 1
    # Then the result file went with its job, and the argument file no job refers to
    assert data_files("results") == []
    assert data_files("arguments") == [nj.status(waiting)["args"][0]["file"]]
    with pytest.raises(nj.JobNotFoundError):
        nj.result(done)


def test_a_result_file_deleted_by_hand_is_a_clear_error(project, start_worker):
    start_worker()
    job = nj.dispatch("jobs.testing.array")
    job.wait(timeout=60)
    (datafiles.data_dir(project.db) / "results" / f"{job}.npy").unlink()
    with pytest.raises(nj.StorageError, match=f"the result file of job {job} .* is gone"):
        job.result()


def test_a_job_stored_before_results_had_types_reads_as_json(project):
    # Given a completed job whose row has no result_type (an older version's row)
    job = nj.dispatch("jobs.testing.ok", 1, delay=3600)
    from notebookjobs.model import transitions
    from notebookjobs.model.records import Outcome, OutcomeKind, utcnow

    change_job(job, lambda j: transitions.settle(transitions.start(j, "w", utcnow()), Outcome(
        kind=OutcomeKind.SUCCEEDED, result={"a": 1}), utcnow()).evolve(result_type=None))
    # Then its result is the JSON value
    assert nj.result(job) == {"a": 1}


def test_scalars_are_kept_as_json_as_they_are_and_a_huge_int_still_meets_the_limit():
    """None, booleans and ints of up to 63 bits skip the JSON text (most jobs return them);
    the same answer as the text would give, and an int too long for the limit still fails."""
    from notebookjobs.data import results

    for value in (None, True, False, 0, -7, 2**62, -(2**62)):
        kept = results.keep(value, folder=None, job_id=None)
        assert kept == ("json", json.loads(json.dumps(value))) and type(kept[1]) is type(value)
    assert results.keep(2**64, folder=None, job_id=None) == ("json", 2**64)
    with pytest.raises(results.ResultTooLargeError):
        results.keep(10**200, folder=None, job_id=None, limit=100)
