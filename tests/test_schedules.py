"""Schedules (SPEC §16): when ticks fall (computed, the clock passed in), the worker's
scheduler over a real queue file with a clock passed in, and a real worker across a restart and
a downtime."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

import notebookjobs as nj
from notebookjobs import config
from notebookjobs.journal import Journal
from notebookjobs.journal.ledger import Ledger
from notebookjobs.model.schedule import Schedule
from notebookjobs.store import Database
from notebookjobs.worker.core import Core
from notebookjobs.worker.intake import Intake
from notebookjobs.worker.problems import Problems
from notebookjobs.worker.scheduler import Scheduler
from notebookjobs.worker.state import QueueState
from support import wait_until

T0 = datetime(2026, 12, 1, 12, 0, 0, 300_000, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def ticks(schedule: Schedule, start: datetime, count: int) -> list[datetime]:
    found, moment = [], start
    for _ in range(count):
        tick = schedule.next_after(moment)
        assert tick is not None
        found.append(tick)
        moment = tick
    return found


def whitelist_schedule(project, entry: str) -> Schedule:
    project.write_whitelist("allowed_jobs: {jobs.testing: [ok, count]}\n"
                            f"schedules:\n  s: {entry}\n")
    return config.load_settings().schedules["s"]


# --- when ticks fall: computed, never waited for ---------------------------------------------

def test_a_cron_in_paris_across_both_dst_changes(project):
    # Given 02:30 every day in Europe/Paris, where 2026-03-29 skips 02:00-03:00 and 2026-10-25
    # repeats it
    daily = whitelist_schedule(project, "{target: jobs.testing.ok, cron: '30 2 * * *', "
                                        "timezone: Europe/Paris}")
    # Then the skipped 02:30 runs right after the jump (03:00 CEST), as Debian's cron does
    assert ticks(daily, at("2026-03-28T12:00Z"), 3) == [
        at("2026-03-29T03:00+02:00"), at("2026-03-30T02:30+02:00"), at("2026-03-31T02:30+02:00")]
    # And the repeated 02:30 runs once, at its first occurrence
    assert ticks(daily, at("2026-10-24T12:00Z"), 2) == [
        at("2026-10-25T02:30+02:00"), at("2026-10-26T02:30+01:00")]


def test_an_hourly_cron_runs_once_per_real_hour_across_the_autumn_change(project):
    hourly = whitelist_schedule(project, "{target: jobs.testing.ok, cron: '0 * * * *', "
                                         "timezone: Europe/Paris}")
    runs = ticks(hourly, at("2026-10-24T22:30Z"), 6)
    # Both 02:00 (CEST, then CET) run: one tick per hour of real time, none twice
    assert [b - a for a, b in itertools.pairwise(runs)] == [timedelta(hours=1)] * 5
    assert at("2026-10-25T02:00+02:00") in runs and at("2026-10-25T02:00+01:00") in runs


def test_a_cron_in_new_york_and_the_latest_tick_before_a_moment(project):
    nightly = whitelist_schedule(project, "{target: jobs.testing.ok, cron: '0 2 * * *', "
                                          "timezone: America/New_York}")
    assert ticks(nightly, at("2026-03-07T12:00Z"), 2) == [
        at("2026-03-08T03:00-04:00"), at("2026-03-09T02:00-04:00")]
    assert nightly.latest_at_or_before(at("2026-03-09T06:00Z")) == at("2026-03-09T02:00-04:00")
    assert nightly.latest_at_or_before(at("2026-03-09T05:59Z")) == at("2026-03-08T03:00-04:00")


def test_every_ticks_count_from_the_epoch_and_missed_ones_collapse(project):
    every = whitelist_schedule(project, "{target: jobs.testing.ok, every: 15m}")
    assert every.every_s == 900
    assert every.next_after(at("2026-12-01T12:07:13Z")) == at("2026-12-01T12:15Z")
    assert every.next_after(at("2026-12-01T12:15Z")) == at("2026-12-01T12:30Z")
    last = at("2026-12-01T12:00Z")
    assert every.due(last, at("2026-12-01T12:31Z"), 10) == [at("2026-12-01T12:15Z"),
                                                              at("2026-12-01T12:30Z")]
    # More due than the limit: only the latest
    assert every.due(last, at("2026-12-02T09:01Z"), 10) == [at("2026-12-02T09:00Z")]
    assert every.due(last, last + timedelta(minutes=14), 10) == []


@pytest.mark.parametrize("entry, fragment", [
    ("{target: jobs.testing.ok, cron: '61 * * * *'}", "Bad minute"),
    ("{target: jobs.testing.ok, cron: '0 2 * *'}", "five fields"),
    ("{target: jobs.testing.ok, cron: '0 0 30 2 *'}", "Bad day-of-month"),
    ("{target: jobs.testing.ok, every: 0.5s}", "at least 1 s"),
    ("{target: jobs.testing.ok, every: soon}", "a duration"),
    ("{target: jobs.testing.ok, cron: '0 2 * * *', timezone: Mars/Olympus}", "IANA"),
    ("{target: jobs.testing.ok, every: 1h, timezone: Europe/Paris}", "no timezone with every"),
    ("{target: jobs.testing.ok, cron: '0 2 * * *', every: 1h}", "exactly one of cron"),
    ("{target: jobs.testing.fail, every: 1h}", "a target allowed"),
    ("{target: jobs.testing.ok, every: 1h, priority: 1.5}", "whole number"),
    ("{target: jobs.testing.ok, every: 1h, args: {a: 1}}", "a list of JSON values"),
    ("{target: jobs.testing.ok, every: 1h, when: now}", "one of the keys"),
])
def test_a_bad_schedule_is_a_config_error_naming_it(project, entry, fragment):
    project.write_whitelist(f"allowed_jobs: {{jobs.testing: [ok]}}\nschedules:\n  s: {entry}\n")
    with pytest.raises(nj.ConfigError) as info:
        config.load_settings()
    assert fragment in str(info.value) and "schedules > s" in str(info.value)


# --- the worker's scheduler, with the clock passed in ----------------------------------------

@pytest.fixture
def scheduler(project):
    """``make()``: a Scheduler over the project's queue file, as a new worker has it."""
    made: list[Database] = []

    def make() -> tuple[Scheduler, QueueState]:
        db_path = config.load_settings().db_path
        db = Database(db_path)  # opening it gives the journal its base: ids come from there
        made.append(db)
        core = Core(db)
        intake = Intake(Ledger(Journal(db_path)), core)
        sched = Scheduler(root=project.root, core=core, intake=intake, problems=Problems())
        sched.load()
        return sched, core.state

    yield make
    for db in made:
        db.close()


def scheduled_runs(db: Database) -> list[datetime]:
    with db.transaction() as store:
        rows, _ = store.page(1, 1000, None)
    return sorted(job.run_at for job in rows if job.schedule == "s")


def test_each_tick_once_across_a_restart_and_missed_ticks_once(project, scheduler):
    whitelist_schedule(project, "{target: jobs.testing.count, every: 1s, args: [tick]}")
    first, state = scheduler()
    # Given a new schedule: its first run only records it, and says when the next tick falls
    assert first.run(T0) == T0.replace(microsecond=0) + SECOND
    assert scheduled_runs(first.core.db) == []
    # When its ticks come, each is dispatched once, however often the scheduler runs
    for moment in (T0 + SECOND, T0 + SECOND, T0 + 2 * SECOND, T0 + 2 * SECOND):
        first.run(moment)
    whole = T0.replace(microsecond=0)
    assert scheduled_runs(first.core.db) == [whole + SECOND, whole + 2 * SECOND]
    assert [job.schedule for job in state.jobs.values()] == ["s", "s"]  # handed to the loop
    # And a running scheduler that was busy for three ticks dispatches all three
    first.run(T0 + 5 * SECOND)
    assert scheduled_runs(first.core.db)[-3:] == [whole + 3 * SECOND, whole + 4 * SECOND,
                                                 whole + 5 * SECOND]
    first.core.db.close()
    # When a new worker starts on the same file after ten ticks of downtime
    second, _ = scheduler()
    second.run(T0 + 15 * SECOND)
    second.run(T0 + 15 * SECOND)
    # Then the missed ticks become one job, the latest's, and nothing ran twice
    runs = scheduled_runs(second.core.db)
    assert runs[5:] == [whole + 15 * SECOND] and len(runs) == len(set(runs)) == 6
    # And the ticks after it come one by one again
    second.run(T0 + 16 * SECOND)
    assert scheduled_runs(second.core.db)[-1] == whole + 16 * SECOND


def test_an_edited_or_disabled_schedule_starts_afresh(project, scheduler):
    whitelist_schedule(project, "{target: jobs.testing.count, every: 1s, args: [tick]}")
    sched, _ = scheduler()
    sched.run(T0)
    sched.run(T0 + SECOND)
    assert len(scheduled_runs(sched.core.db)) == 1
    # When the schedule is disabled (hot reload: the next run reads whitelist.yaml again)
    whitelist_schedule(project, "{target: jobs.testing.count, every: 1s, args: [tick], "
                                "enabled: false}")
    assert sched.run(T0 + 5 * SECOND) is None  # nothing to wake up for
    # Then no tick is dispatched; and once enabled again it starts from then, not catching up
    whitelist_schedule(project, "{target: jobs.testing.count, every: 1s, args: [tick]}")
    sched.run(T0 + 9 * SECOND)
    assert len(scheduled_runs(sched.core.db)) == 1
    sched.run(T0 + 10 * SECOND)
    assert scheduled_runs(sched.core.db)[-1] == T0.replace(microsecond=0) + 10 * SECOND
    # And a broken whitelist dispatches nothing, and asks again soon
    project.write_whitelist("schedules: [\n", raw=True)
    assert sched.run(T0 + 11 * SECOND) is not None
    assert len(scheduled_runs(sched.core.db)) == 2


# --- a real worker ---------------------------------------------------------------------------

def schedule_jobs() -> list[dict]:
    page = nj.jobs(per_page=1000)
    rows = page[page["schedule"] == "tick"].sort_values("id")
    return rows.to_dict("records")


def test_every_second_across_a_restart_and_a_downtime(project, start_worker):
    project.write_whitelist("allowed_jobs: {jobs.testing: [count]}\nschedules:\n"
                            "  tick: {target: jobs.testing.count, every: 1s, args: [tick]}\n")
    # Given a worker: it dispatches one job per second
    worker = start_worker()
    wait_until(lambda: len(schedule_jobs()) >= 2, what="two ticks")
    worker.stop()
    before = schedule_jobs()
    # When a new worker starts at once
    start_worker()
    wait_until(lambda: len(schedule_jobs()) >= len(before) + 2, what="two more ticks")
    nj.stop_worker()
    lived = schedule_jobs()
    # Then no tick was dispatched twice, each job is one tick's, and each one ran
    runs = [job["run_at"] for job in lived]
    assert runs == sorted(set(runs)) and all(r.microsecond == 0 for r in runs)
    assert all(nj.status(job["id"])["status"] == "completed" for job in lived)
    assert len(project.effect_lines("tick")) == len(lived)
    # When no worker runs for more than three ticks
    last = runs[-1]
    wait_until(lambda: datetime.now(UTC) >= last + 3.5 * SECOND, what="three ticks of downtime")
    start_worker()
    wait_until(lambda: len(schedule_jobs()) > len(lived), what="the missed ticks")
    # Then they become one job, the latest's, and the ticks after it come one by one
    missed = schedule_jobs()[len(lived)]
    assert missed["run_at"] - last >= 3 * SECOND
    wait_until(lambda: len(schedule_jobs()) > len(lived) + 1, what="the next tick")
    assert schedule_jobs()[len(lived) + 1]["run_at"] == missed["run_at"] + SECOND
    # And nj.schedules() lists it with its next run and last job, as the CLI does
    listed = nj.schedules().set_index("name").loc["tick"]
    assert listed["every"] == "1s" and listed["next_run"] > missed["run_at"]
    assert listed["last_job"] >= missed["id"] and listed["problem"] == ""
    out = project.cli("schedules")
    assert out.returncode == 0 and "tick" in out.stdout and "jobs.testing.count" in out.stdout
