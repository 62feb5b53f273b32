"""Workflows (SPEC §16) with real workers and on the locked file: ``at``, ``after`` and
``unique``, through both ways into the queue, which must give the same answers."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

import notebookjobs as nj
from notebookjobs.model import transitions
from notebookjobs.model.records import Outcome, OutcomeKind, utcnow
from support import change_job, wait_until


@pytest.fixture(params=["worker", "file"])
def door(request, project, start_worker):
    """The test runs twice: through a running worker's socket, and on the locked file."""
    return start_worker() if request.param == "worker" else None


def status(job_id: int) -> str:
    return nj.status(job_id)["status"]


def burst(project) -> None:
    """Run what is due with a worker that exits when nothing is pending or running."""
    out = subprocess.run([sys.executable, "-m", "notebookjobs.worker", "--burst"],
                         cwd=project.root, env=project.env(), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr


def test_at_runs_the_job_at_that_time(project, start_worker):
    # Given a running worker and a job to run at a time 1.5 s ahead, as ISO 8601 with an offset
    start_worker()
    at = (datetime.now(UTC) + timedelta(seconds=1.5)).astimezone()
    job = nj.dispatch("jobs.testing.ok", 7, at=at.isoformat())
    # Then it is due then, and does not start before
    info = nj.status(job)
    assert info["run_at"] == at.astimezone(UTC)
    info = nj.wait(job, timeout=30)
    assert info["status"] == "completed" and info["started_at"] >= at


def test_at_reads_datetimes_and_strings_and_excludes_delay(project):
    moment = datetime(2030, 5, 1, 9, 30, tzinfo=UTC)
    # A datetime, an ISO string with Z, and one without a zone (local time) are all accepted
    assert nj.status(nj.dispatch("jobs.testing.ok", at=moment))["run_at"] == moment
    assert nj.status(nj.dispatch("jobs.testing.ok", at="2030-05-01T09:30:00Z"))["run_at"] == moment
    local = datetime(2030, 5, 1, 9, 30).astimezone()
    assert nj.status(nj.dispatch("jobs.testing.ok", at="2030-05-01 09:30"))["run_at"] == local
    # A time and a delay together, or a time that is none, are refused before anything is stored
    before = sum(nj.counts().values())
    with pytest.raises(nj.InvalidArgumentsError, match="pass one"):
        nj.dispatch("jobs.testing.ok", at=moment, delay=5)
    with pytest.raises(nj.InvalidArgumentsError, match="ISO 8601"):
        nj.dispatch("jobs.testing.ok", at="tomorrow")
    with pytest.raises(nj.InvalidArgumentsError, match="out of range"):
        nj.dispatch("jobs.testing.ok", at=datetime(9999, 1, 1, tzinfo=UTC))
    assert sum(nj.counts().values()) == before


def test_a_dependent_starts_only_after_its_dependency_completed(project, start_worker):
    # Given a worker with two free children, a slow job, and a quick one that waits for it
    start_worker("--concurrency", "2")
    first = nj.dispatch("jobs.testing.sleep", 0.5, key="first")
    second = nj.dispatch("jobs.testing.count", "second", after=[first])
    # Then the second waits, though a child is free, and starts once the first completed
    assert nj.status(second)["after"] == [first]
    done = nj.wait(second, timeout=30)
    assert done["status"] == "completed"
    assert done["started_at"] >= nj.status(first)["finished_at"]


def test_after_may_name_a_dispatch_just_made_through_the_journal(project, door):
    # Given plain dispatches, each a journal record the worker may not have read yet
    nj.counts()  # the queue exists: plain dispatches go to the journal
    for i in range(10):
        first = nj.dispatch("jobs.testing.echo", i, delay=60)
        # Then a dispatch after it is decided at once, knowing it (never "no job has id")
        waiter = nj.dispatch("jobs.testing.echo", i, delay=60, after=[first])
        assert waiter > first and nj.status(waiter)["after"] == [first]
        assert status(waiter) == "pending"


def test_a_chain_runs_in_order(project, start_worker):
    # Given a chain of three dispatched while no worker runs (the file's answers)
    a = nj.dispatch("jobs.testing.count", "chain")
    b = nj.dispatch("jobs.testing.count", "chain", after=a)
    c = nj.dispatch("jobs.testing.count", "chain", after=[a, b])
    # When a worker loads them
    start_worker("--concurrency", "2")
    # Then each starts after the one before it finished
    infos = [nj.wait(job, timeout=30) for job in (a, b, c)]
    assert [i["status"] for i in infos] == ["completed"] * 3
    assert infos[0]["finished_at"] <= infos[1]["started_at"]
    assert infos[1]["finished_at"] <= infos[2]["started_at"]


def test_a_failed_dependency_cancels_what_waits_for_it_in_cascade(project, door):
    # Given a job that fails, one that waits for it, and one that waits for that one
    bad = nj.dispatch("jobs.testing.fail", "no")
    middle = nj.dispatch("jobs.testing.ok", 1, after=[bad])
    last = nj.dispatch("jobs.testing.ok", 2, after=[middle])
    if door is None:  # dispatched on the file: a burst worker then loads and runs them
        burst(project)
    # When it has failed (after its retries)
    assert nj.wait(bad, timeout=60)["status"] == "failed"
    # Then the chain is cancelled, each job naming the one it waited for
    info = nj.wait(last, timeout=30)
    assert (info["status"], info["error"]) == ("cancelled", f"dependency {middle} cancelled")
    assert nj.status(middle)["error"] == f"dependency {bad} failed"
    assert project.effect_lines("ok") == []  # neither ran


def test_cancelling_a_dependency_cancels_its_dependents(project, door):
    # Given a job and one that waits for it (the first running, with a worker)
    first = nj.dispatch("jobs.testing.sleep", 60, key="long")
    second = nj.dispatch("jobs.testing.ok", 1, after=[first])
    if door is not None:
        wait_until(lambda: status(first) == "running", what="the first job to run")
    # When the first is cancelled
    assert nj.cancel(first) is True
    # Then the second is cancelled too, saying why
    info = wait_until(lambda: (i := nj.status(second))["status"] != "pending" and i,
                      what="the dependent to be cancelled")
    assert (info["status"], info["error"]) == ("cancelled", f"dependency {first} cancelled")
    # And a job dispatched after a cancelled one is cancelled at once
    late = nj.dispatch("jobs.testing.ok", 2, after=[first])
    assert nj.status(late)["error"] == f"dependency {first} cancelled"


def test_waiting_for_a_completed_job_does_not_wait(project, door):
    # Given a job that completed
    done = nj.dispatch("jobs.testing.ok", 1)
    if door is None:
        burst(project)
    assert nj.wait(done, timeout=30)["status"] == "completed"
    # Then a job that waits for it runs as any other (loaded by a new worker, on the file)
    after = nj.dispatch("jobs.testing.ok", 2, after=[done])
    if door is None:
        burst(project)
    assert nj.wait(after, timeout=30)["status"] == "completed"


def test_unknown_ids_are_refused_at_dispatch(project, door):
    known = nj.dispatch("jobs.testing.ok", 1)
    before = sum(nj.counts().values())
    for after in ([known, 999], [known + 1], [-1], "3", [True]):
        with pytest.raises(nj.InvalidArgumentsError):
            nj.dispatch("jobs.testing.ok", 2, after=after)
    assert sum(nj.counts().values()) == before


def test_unique_returns_the_pending_then_running_job_then_a_new_one(project, start_worker):
    # Given a job dispatched with a key while no worker runs
    first = nj.dispatch("jobs.testing.sleep", 1, key="u", unique="nightly")
    # Then the same key gives the same job while it is pending (the file's answer) ...
    assert nj.dispatch("jobs.testing.sleep", 1, key="u", unique="nightly") == first
    assert nj.status(first)["unique_key"] == "nightly"
    # ... and while it is running (the worker's answer)
    start_worker()
    wait_until(lambda: status(first) == "running", what="the job to run")
    assert nj.dispatch("jobs.testing.sleep", 1, key="u", unique="nightly") == first
    # And once it ended, the key makes a new job
    assert nj.wait(first, timeout=30)["status"] == "completed"
    again = nj.dispatch("jobs.testing.sleep", 1, key="u", unique="nightly")
    assert again != first
    assert project.effect_lines("u").count("start") >= 1


def test_unique_true_keys_on_the_target_and_its_arguments(project, door):
    # Given pending jobs (due in a minute, so that a running worker keeps them pending)
    def echo(*args, **kwargs):
        return nj.dispatch("jobs.testing.echo", *args, delay=60, **kwargs)

    a = echo(1, x="y", unique=True)
    # Then the same call is the same job; other arguments, or no unique, make new ones
    assert echo(1, x="y", unique=True) == a
    assert echo(2, x="y", unique=True) != a
    assert echo(1, x="y") != a
    assert nj.status(a)["unique_key"].startswith("jobs.testing.echo:")
    with pytest.raises(nj.InvalidArgumentsError, match="unique=True"):
        echo(unique="")


def test_the_queue_and_history_show_what_a_job_waits_for(project):
    a = nj.dispatch("jobs.testing.ok", 1)
    b = nj.dispatch("jobs.testing.ok", 2, after=[a])
    page = nj.jobs(per_page=5).set_index("id")
    assert list(page.loc[b, "after"]) == [a]
    history = nj.history().set_index("id")
    assert list(history.loc[b, "after"]) == [a] and history.loc[a, "after"] is None
    assert nj.sql(f"SELECT after FROM jobs WHERE id = {b}")["after"].iloc[0].tolist() == [a]


def test_prune_keeps_a_job_that_a_pending_job_waits_for(project):
    # Given finished jobs, one of them completed and waited for by a pending job
    cancelled = nj.dispatch("jobs.testing.ok", 1)
    nj.cancel(cancelled)
    done = nj.dispatch("jobs.testing.ok", 2)
    now = utcnow()
    change_job(done, lambda job: transitions.settle(
        transitions.start(job, "test", now), Outcome(kind=OutcomeKind.SUCCEEDED), now))
    waiter = nj.dispatch("jobs.testing.ok", 3, after=[done])
    # When every finished job is pruned
    assert nj.prune(older_than=0) == 1
    # Then the completed one stays, for the pending job still to find how it ended
    assert (status(done), status(waiter)) == ("completed", "pending")
    with pytest.raises(nj.JobNotFoundError):
        nj.status(cancelled)


def test_the_cli_dispatches_with_at_after_and_unique(project):
    # Given a job dispatched from the CLI, and one that waits for it, with a key
    first = int(project.cli("dispatch", "jobs.testing.ok", "1", "--at",
                            "2030-05-01T09:30:00+02:00").stdout)
    out = project.cli("dispatch", "jobs.testing.ok", "2", "--after", str(first), "--unique")
    assert out.returncode == 0, out.stderr
    second = int(out.stdout)
    # Then they are stored as the API stores them, and the same --unique dispatch finds it
    assert nj.status(first)["run_at"] == datetime(2030, 5, 1, 7, 30, tzinfo=UTC)
    assert nj.status(second)["after"] == [first]
    again = project.cli("dispatch", "jobs.testing.ok", "2", "--after", str(first), "--unique")
    assert int(again.stdout) == second
    # And bad input is one line, exit 2
    out = project.cli("dispatch", "jobs.testing.ok", "--after", "x,y")
    assert out.returncode == 2 and "expected job ids" in out.stderr
    assert project.cli("schedules").stdout.startswith("no schedules in whitelist.yaml")
