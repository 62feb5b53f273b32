"""History analysis over a queue with known times and outcomes: every column and statistic to
the value."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

import notebookjobs as nj
from notebookjobs import config
from notebookjobs.access.meaning import StoreQueue
from notebookjobs.journal import Journal
from notebookjobs.journal.ledger import Ledger
from notebookjobs.model import transitions
from notebookjobs.model.records import JobSpec, Outcome, OutcomeKind, RetryPolicy
from support import change_job, locked_store

T0 = datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def known(project):
    """A: completed (wait 2, 3 s); B: failed (wait 1, 1 s); C: pending; D: completed on its second
    attempt (last wait 4, 6 s); E: cancelled while pending; F: running since 10:00:30."""
    policy = RetryPolicy(retry_attempts=1, retry_delay=10)

    def enqueue(target, created, run_after=0):
        spec = JobSpec(
            target=target,
            args=[1],
            kwargs={},
            priority=0,
            run_at=at(created + run_after),
            policy=policy,
        )
        with locked_store() as job_store:
            return StoreQueue(job_store, Ledger(Journal(config.load_settings().db_path))).enqueue(
                spec, at(created))

    def start(name, when):
        change_job(ids[name], lambda job: transitions.start(job, "w", at(when)))

    def end(name, outcome, when):
        change_job(ids[name], lambda job: transitions.settle(job, outcome, at(when)))

    t1, t2 = "jobs.testing.ok", "jobs.testing.echo"
    # C is not due for decades, so a worker started by a test leaves it pending
    ids = {name: enqueue(t, 0, after) for name, t, after in (
        ("A", t1, 0), ("B", t1, 0), ("C", t2, 10**9), ("D", t1, 0), ("E", t2, 0))}
    ids["F"] = enqueue(t1, 30)
    done = Outcome(kind=OutcomeKind.SUCCEEDED, result={"n": 1}, output="out")
    boom = Outcome(kind=OutcomeKind.FAILED, error="Traceback\nValueError: boom")
    start("A", 2)
    end("A", done, 5)
    start("B", 1)
    change_job(ids["B"], lambda job: transitions.fail(job, "Traceback\nValueError: boom", at(2)))
    start("D", 0)
    end("D", boom, 0)  # a retry 10 s later (retry_delay), at 10
    start("D", 14)
    end("D", done, 20)
    change_job(ids["E"], lambda job: transitions.cancel(job, at(3)))
    start("F", 30)
    return ids


def test_history_columns_values_and_dtypes(known):
    frame = nj.history().set_index("id")
    assert list(frame.columns) == [
        "target",
        "args",
        "kwargs",
        "status",
        "priority",
        "attempts",
        "max_attempts",
        "created_at",
        "run_at",
        "started_at",
        "finished_at",
        "error",
        "result",
        "output",
        "progress",
        "progress_message",
        "result_type",
        "errors",
        "ran_on",
        "after",
        "unique_key",
        "schedule",
        "wait_s",
        "duration_s",
    ]
    a, b, c, d, e, f = (frame.loc[known[k]] for k in "ABCDEF")
    assert (a["status"], a["attempts"], a["wait_s"], a["duration_s"]) == ("completed", 1, 2.0, 3.0)
    assert (a["result"], a["output"], a["args"], a["kwargs"]) == ('{"n": 1}', "out", "[1]", "{}")
    assert (b["status"], b["wait_s"], b["duration_s"], b["error"]) == (
        "failed",
        1.0,
        1.0,
        "Traceback\nValueError: boom",
    )
    assert (
        c["status"] == "pending"
        and c["run_at"] == pd.Timestamp(at(10**9))
        and math.isnan(c["wait_s"])
        and math.isnan(c["duration_s"])
        and c["attempts"] == 0
    )
    assert (d["status"], d["attempts"], d["max_attempts"], d["wait_s"], d["duration_s"]) == (
        "completed",
        2,
        2,
        4.0,
        6.0,
    )
    assert d["run_at"] == pd.Timestamp(at(10)) and d["started_at"] == pd.Timestamp(at(14))
    assert (
        e["status"] == "cancelled"
        and e["finished_at"] == pd.Timestamp(at(3))
        and math.isnan(e["wait_s"])
    )
    assert f["status"] == "running" and f["wait_s"] == 0.0 and math.isnan(f["duration_s"])
    for column in ("created_at", "run_at", "started_at", "finished_at"):
        assert str(frame[column].dtype).endswith("UTC]"), column
    assert frame["created_at"].iloc[0] == pd.Timestamp("2026-01-01 10:00:00", tz="UTC")
    assert list(frame["status"].cat.categories) == [
        "pending",
        "running",
        "completed",
        "failed",
        "cancelled",
    ]
    assert isinstance(frame["target"].dtype, pd.CategoricalDtype)


def test_history_filters(known):
    assert list(nj.history(status="completed")["id"]) == [known["A"], known["D"]]
    assert list(nj.history(target="jobs.testing.echo")["id"]) == [known["C"], known["E"]]
    assert list(nj.history(since="2026-01-01 10:00:10")["id"]) == [known["F"]]
    assert list(nj.history(until=at(10))["id"]) == [known[k] for k in "ABCDE"]
    assert list(nj.history(since=at(0), until=at(1), status="pending")["id"]) == [known["C"]]
    assert nj.history(since=at(3600)).empty
    with pytest.raises(nj.InvalidArgumentsError, match="since='yesterday-ish' is not a time"):
        nj.history(since="yesterday-ish")
    with pytest.raises(nj.InvalidArgumentsError, match="status='ok' is not a job status"):
        nj.history(status="ok")


def test_stats_by_target_to_the_value(known):
    stats = nj.stats().set_index("target")
    t1 = stats.loc["jobs.testing.ok"]
    assert (
        t1["jobs"],
        t1["pending"],
        t1["running"],
        t1["completed"],
        t1["failed"],
        t1["cancelled"],
    ) == (4, 0, 1, 2, 1, 0)
    assert t1["success_rate"] == pytest.approx(2 / 3)
    assert t1["duration_mean"] == pytest.approx(10 / 3)
    assert (t1["duration_p50"], t1["duration_max"]) == (3.0, 6.0)
    assert t1["duration_p95"] == pytest.approx(5.7)      # [1, 3, 6] interpolated at 0.95
    assert t1["wait_p50"] == pytest.approx(1.5)          # waits [0, 1, 2, 4]
    assert t1["wait_p95"] == pytest.approx(3.7)
    assert t1["attempts_mean"] == pytest.approx(5 / 4) and t1["retries"] == 1
    t2 = stats.loc["jobs.testing.echo"]
    assert (t2["jobs"], t2["pending"], t2["cancelled"], t2["retries"]) == (2, 1, 1, 0)
    for column in ("success_rate", "duration_mean", "duration_p50", "wait_p50", "attempts_mean"):
        assert math.isnan(t2[column]), column


def test_stats_by_status_and_hour(known):
    by_status = nj.stats(by="status")
    assert list(by_status["status"]) == ["pending", "running", "completed", "failed", "cancelled"]
    assert list(by_status["jobs"]) == [1, 1, 2, 1, 1]
    by_hour = nj.stats(by="hour")
    assert list(by_hour["hour"]) == [pd.Timestamp("2026-01-01 10:00", tz="UTC")]
    assert by_hour["jobs"].iloc[0] == 6 and by_hour["completed"].iloc[0] == 2
    with pytest.raises(
        nj.InvalidArgumentsError, match="by='day' is not allowed; use one of target, status, hour"
    ):
        nj.stats(by="day")


def test_sql_reads_and_refuses_writes(known):
    frame = nj.sql("SELECT status, count(*) AS n FROM jobs GROUP BY status ORDER BY status")
    counts = dict(zip(frame["status"], frame["n"], strict=True))
    assert counts == {"cancelled": 1, "completed": 2, "failed": 1, "pending": 1, "running": 1}
    for statement, fragment in [
        ("DELETE FROM queue", "DELETE statements are refused"),
        ("INSERT INTO queue SELECT * FROM queue", "INSERT statements are refused"),
        ("DROP VIEW jobs", "DROP statements are refused"),
        ("UPDATE queue SET status = 'pending'", "UPDATE statements are refused"),
        ("COPY queue TO 'x.csv'", "COPY statements are refused"),
        ("SELECT 1; DELETE FROM queue", "takes one statement, got 2"),
        ("SELEC nonsense", "does not parse"),
        ("SELECT * FROM no_such_table", "no_such_table"),
    ]:
        with pytest.raises(nj.InvalidArgumentsError, match=fragment):
            nj.sql(statement)
    assert len(nj.history()) == 6


def test_sql_and_history_through_the_worker(known, start_worker, project):
    before = (nj.history(), nj.stats(), nj.sql("SELECT id, target FROM jobs ORDER BY id"))
    worker = start_worker("--concurrency", "1")
    after = (nj.history(), nj.stats(), nj.sql("SELECT id, target FROM jobs ORDER BY id"))
    # the worker recovered F (left running): compare the rows it did not touch
    untouched = before[0]["id"] != known["F"]
    pd.testing.assert_frame_equal(before[0][untouched].reset_index(drop=True),
                                  after[0][after[0]["id"] != known["F"]].reset_index(drop=True))
    pd.testing.assert_frame_equal(before[2], after[2])
    with pytest.raises(nj.InvalidArgumentsError, match="DELETE statements are refused"):
        nj.sql("DELETE FROM queue")
    assert nj.stats(by="status")["jobs"].sum() == 6
    # DuckDB wrote those frames: the worker never loaded pyarrow (SPEC §13, its memory), and
    # the clients deleted every frame file they read
    maps = Path(f"/proc/{worker.pid}/maps").read_text()
    assert "arrow" not in maps, "the worker loaded pyarrow"
    frames = project.db.with_name(project.db.name + ".frames")
    assert frames.is_dir() and not list(frames.iterdir())


def test_prune_keeps_pending_running_and_recent(known):
    recent = nj.dispatch("jobs.testing.ok", 1)
    nj.cancel(recent)  # finished now: younger than 30 days
    assert nj.prune(older_than="30d") == 4  # A, B, D, E finished on 2026-01-01
    assert sorted(nj.history()["id"]) == sorted([known["C"], known["F"], recent])
    assert nj.prune(older_than=timedelta(0)) == 1
    with pytest.raises(nj.InvalidArgumentsError, match="older_than='soon' is not a duration"):
        nj.prune(older_than="soon")


def test_exports_and_prune_from_the_cli(known, project, tmp_path):
    out = project.cli("history", "--parquet", str(tmp_path / "h.parquet"))
    assert out.returncode == 0, out.stderr
    frame = pd.read_parquet(tmp_path / "h.parquet")
    assert len(frame) == 6 and frame["duration_s"].max() == 6.0
    nj.history().to_parquet(tmp_path / "api.parquet")
    assert len(pd.read_parquet(tmp_path / "api.parquet")) == 6
    out = project.cli("history", "--csv", str(tmp_path / "h.csv"))
    assert out.returncode == 0 and len(pd.read_csv(tmp_path / "h.csv")) == 6
    out = project.cli("stats", "--by", "status")
    assert out.returncode == 0 and "completed" in out.stdout
    out = project.cli("prune", "--older-than", "30d")
    assert out.returncode == 0 and out.stdout.strip() == "4 finished jobs older than 30d deleted"
    out = project.cli("prune", "--older-than", "later")
    assert out.returncode == 2 and "is not a duration" in out.stderr
