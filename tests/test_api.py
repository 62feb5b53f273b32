"""The API of SPEC §6 without a worker: dispatch, status, cancel, retry, jobs, wait, history."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import notebookjobs as nj
from notebookjobs.model import transitions
from notebookjobs.model.records import Job, utcnow
from notebookjobs.worker.state import QueueState
from support import locked_store


def stored_count() -> int:
    return sum(nj.counts().values())


@pytest.mark.parametrize(
    "target, fragment",
    [
        ("os.system", "'os' is not under allowed_jobs"),
        ("jobs.testing.Greeter._secret", "jobs.testing.Greeter allows only hello, kind, shout"),
        ("jobs.testing._effect", "jobs.testing allows only"),
        ("jobs.sample.SampleJobClass.__init__", "allows only handle, process"),
        (
            "jobs.testing.typed_but_not_listed",
            "add 'typed_but_not_listed' under allowed_jobs > jobs.testing",
        ),
        ("builtins.eval", "'builtins' is not under allowed_jobs"),
        ("nodots", "use a dotted name"),
    ],
)
def test_dispatch_refuses_targets_not_in_the_whitelist(project, target, fragment):
    nj.counts()  # the queue exists and is empty
    with pytest.raises(nj.NotAllowedError) as info:
        nj.dispatch(target, "echo hi")
    assert fragment in str(info.value)
    assert stored_count() == 0


def test_unlisted_member_of_allowed_owner_is_refused(project):
    project.write_whitelist("allowed_jobs: {jobs.testing: [ok]}\n")
    with pytest.raises(nj.NotAllowedError, match=r"jobs.testing allows only ok"):
        nj.dispatch("jobs.testing.fail")


@pytest.mark.parametrize("args, kwargs, fragment", [
    (("a",), {}, "missing a required argument: 'param2'"),
    (("a", "b", "c"), {}, "too many positional arguments"),
    (("a", "b"), {"param3": "x"}, "unexpected keyword argument 'param3'"),
    ((object(), "b"), {}, "param1: <object object"),
    (({1, 2}, "b"), {}, "not accepted; expected str"),
])
def test_dispatch_refuses_bad_arguments_before_storing(project, args, kwargs, fragment):
    with pytest.raises(nj.InvalidArgumentsError) as info:
        nj.dispatch("jobs.sample.SampleJobClass.process", *args, **kwargs)
    assert fragment in str(info.value)
    assert stored_count() == 0


def test_json_only_for_unannotated_parameters(project):
    with pytest.raises(nj.InvalidArgumentsError, match=r"argument 1: .* is not a JSON value"):
        nj.dispatch("jobs.testing.echo", datetime.now())
    with pytest.raises(nj.InvalidArgumentsError, match="is not a JSON value"):
        nj.dispatch("jobs.testing.echo", value={"k": b"bytes"})
    with pytest.raises(nj.InvalidArgumentsError, match="is not a JSON value"):
        nj.dispatch("jobs.testing.echo", float("nan"))
    with pytest.raises(nj.InvalidArgumentsError, match="is not a JSON value"):
        nj.dispatch("jobs.testing.echo", {1, 2})
    job_id = nj.dispatch("jobs.testing.echo", (1, 2), flag=None, nested={"a": [1.5, "x"]})
    assert nj.status(job_id)["args"] == [[1, 2]]
    assert nj.status(job_id)["kwargs"] == {"flag": None, "nested": {"a": [1.5, "x"]}}


def test_strings_are_coerced_by_annotation(project):
    job_id = nj.dispatch("jobs.testing.typed", "42", "2.5", "yes", "plain", "[1, 2]", '{"a": 1}')
    assert nj.status(job_id)["args"] == [42, 2.5, True, "plain", [1, 2], {"a": 1}]
    job_id = nj.dispatch(
        "jobs.testing.typed", n="7", x="1", flag="0", name="n", items="[]", options="{}"
    )
    assert nj.status(job_id)["kwargs"] == {
        "n": 7,
        "x": 1.0,
        "flag": False,
        "name": "n",
        "items": [],
        "options": {},
    }


@pytest.mark.parametrize("position, value, fragment", [
    (0, "seven", "n: 'seven' is not accepted; expected int"),
    (1, "fast", "x: 'fast' is not accepted; expected float"),
    (1, "inf", "expected a finite float"),
    (2, "perhaps", "flag: 'perhaps' is not accepted; expected bool"),
    (4, "1, 2", "items: '1, 2' is not accepted; expected list written as JSON"),
    (5, "[1]", "options: '[1]' is not accepted; expected dict written as JSON"),
    (0, 1.5, "expected int"),
    (3, 5, "expected str"),
])
def test_coercion_errors_name_the_parameter(project, position, value, fragment):
    args = ["1", "1.0", "true", "s", "[]", "{}"]
    args[position] = value
    with pytest.raises(nj.InvalidArgumentsError, match=re.escape(fragment)):
        nj.dispatch("jobs.testing.typed", *args)
    assert stored_count() == 0


def test_dispatch_many_binds_and_coerces_each_call_as_dispatch_does(project):
    # Given calls of one target in several shapes (positional, keyword, mixed in one batch)
    calls: list[Any] = [["42", "2.5", "yes", "plain", "[1, 2]", '{"a": 1}'],
             {"n": "7", "x": "1", "flag": "0", "name": "n", "items": "[]", "options": "{}"},
             [1, 2.5, False, "again", [3], {}],
             {"options": {"b": 2}, "n": 3, "x": 0.5, "flag": True, "name": "k", "items": []}]
    # When they are dispatched in one batch and one at a time
    batch = nj.dispatch_many("jobs.testing.typed", calls)
    single = [nj.dispatch("jobs.testing.typed", **c) if isinstance(c, dict)
              else nj.dispatch("jobs.testing.typed", *c) for c in calls]
    # Then each job of the batch holds what its single dispatch holds (a shape's binding is
    # reused across the batch; each value is still coerced on its own)
    stored = [(nj.status(i)["args"], nj.status(i)["kwargs"]) for i in batch]
    assert stored == [(nj.status(i)["args"], nj.status(i)["kwargs"]) for i in single]
    assert stored[0][0] == [42, 2.5, True, "plain", [1, 2], {"a": 1}]
    assert stored[1][1]["flag"] is False and stored[3][1]["options"] == {"b": 2}
    # And a later call of a shape seen before is still checked value by value, and one of a
    # shape that does not fit is refused, each naming its call; nothing of the batch is stored
    before = stored_count()
    with pytest.raises(nj.InvalidArgumentsError, match=re.escape("calls[2]: n: 'seven'")):
        nj.dispatch_many("jobs.testing.typed", [calls[0], calls[2], ["seven", *calls[2][1:]]])
    with pytest.raises(nj.InvalidArgumentsError, match=re.escape("calls[1]: jobs.testing.typed(")):
        nj.dispatch_many("jobs.testing.typed", [calls[0], calls[0][:5]])
    with pytest.raises(nj.InvalidArgumentsError, match=re.escape("calls[1]: ")):
        nj.dispatch_many("jobs.testing.typed", [calls[1], {**calls[1], "extra": 1}])
    assert stored_count() == before


def test_priority_and_delay_are_validated(project):
    with pytest.raises(nj.InvalidArgumentsError, match="priority='high'"):
        nj.dispatch("jobs.testing.ok", priority="high")
    with pytest.raises(nj.InvalidArgumentsError, match="delay=-1 is not allowed"):
        nj.dispatch("jobs.testing.ok", delay=-1)
    assert stored_count() == 0


def test_status_has_the_keys_of_the_spec(project):
    before = utcnow()
    job_id = nj.dispatch(
        "jobs.sample.SampleJobClass.process", "a", "b", priority=4, delay=timedelta(seconds=30)
    )
    info = nj.status(job_id)
    assert tuple(info) == Job.STATUS_KEYS
    assert info["id"] == job_id and info["target"] == "jobs.sample.SampleJobClass.process"
    assert info["args"] == ["a", "b"] and info["kwargs"] == {}
    assert info["status"] == "pending" and info["priority"] == 4
    assert info["attempts"] == 0 and info["max_attempts"] == 3  # test whitelist: retry_attempts 2
    assert info["created_at"].tzinfo is not None and before <= info["created_at"] <= utcnow()
    assert info["run_at"] - info["created_at"] == timedelta(seconds=30)
    assert info["started_at"] is None and info["result"] is None and info["error"] is None
    with pytest.raises(nj.JobNotFoundError, match="no job has id 999"):
        nj.status(999)


def claim_all(now: datetime) -> list[int]:
    """What a worker starting at ``now`` runs, in order: the queue loaded from the file as a
    starting worker loads it, then each due job taken and marked running in the file."""
    with locked_store() as job_store:
        state = QueueState()
        for job in job_store.active_jobs():
            state.add(job)
        order = []
        while (due := state.pop_due(now)) is not None:
            started = transitions.start(due, "test", now)
            state.update(started)
            job_store.save(started, due.status)
            order.append(due.id)
    return order


def test_claim_order_is_priority_then_run_at_then_id(project):
    ids = {
        "low": nj.dispatch("jobs.testing.ok", 1, priority=0),
        "high_late": nj.dispatch("jobs.testing.ok", 2, priority=9, delay=2),
        "high_a": nj.dispatch("jobs.testing.ok", 3, priority=9),
        "high_b": nj.dispatch("jobs.testing.ok", 4, priority=9),
        "mid": nj.dispatch("jobs.testing.ok", 5, priority=5),
        "future": nj.dispatch("jobs.testing.ok", 6, priority=100, delay=3600),
    }
    later = utcnow() + timedelta(seconds=10)  # everything but "future" is due
    order = claim_all(later)
    assert order == [ids["high_a"], ids["high_b"], ids["high_late"], ids["mid"], ids["low"]]
    assert nj.status(ids["future"])["status"] == "pending"
    assert nj.status(ids["mid"])["status"] == "running" and nj.status(ids["mid"])["attempts"] == 1


def test_a_delayed_job_is_not_claimed_early(project):
    job_id = nj.dispatch("jobs.testing.ok", delay=60)
    assert claim_all(utcnow()) == []
    assert claim_all(utcnow() + timedelta(seconds=61)) == [job_id]


def test_jobs_pages_newest_first(project):
    ids = [nj.dispatch("jobs.testing.ok", i) for i in range(12)]
    first = nj.jobs()
    assert list(first["id"]) == ids[::-1][:5]
    assert first.attrs["total"] == 12 and first.attrs["page"] == 1 and first.attrs["pages"] == 3
    last = nj.jobs(page=3)
    assert list(last["id"]) == ids[1::-1]
    assert nj.jobs(page=4).empty and nj.jobs(page=4).attrs["pages"] == 3
    assert list(nj.jobs(page=2, per_page=4)["id"]) == ids[::-1][4:8]
    nj.cancel(ids[3])
    cancelled = nj.jobs(status="cancelled")
    assert list(cancelled["id"]) == [ids[3]] and cancelled.attrs["total"] == 1
    assert str(first["created_at"].dtype) == "datetime64[us, UTC]" or "UTC" in str(
        first["created_at"].dtype
    )
    with pytest.raises(nj.InvalidArgumentsError, match="status='done' is not a job status"):
        nj.jobs(status="done")
    with pytest.raises(nj.InvalidArgumentsError, match="page=0"):
        nj.jobs(page=0)


def test_every_page_knows_the_total(project):
    # Given 12 jobs, 5 of which hold a 7 in their arguments (70, 73, 76, 79 and 7)
    for i in range(12):
        nj.dispatch("jobs.testing.ok", i if i % 3 else 70 + i)
    # When any page of any size is read, with or without a search, then its total is the
    # number of matching jobs (the last page counts them without a second query)
    for search, matching in ((None, 12), ("7", 5), ("zz", 0)):
        for per_page in range(1, 7):
            for page in range(1, 6):
                frame = nj.jobs(page=page, per_page=per_page, search=search)
                assert frame.attrs["total"] == matching, (search, per_page, page)
                assert len(frame) == max(0, min(per_page, matching - (page - 1) * per_page))


def test_empty_queue_has_one_empty_page(project):
    frame = nj.jobs()
    assert frame.empty and frame.attrs == {
        "total": 0,
        "page": 1,
        "per_page": 5,
        "status": None,
        "search": None,
        "pages": 1,
        "order": "newest",
    }


def test_cancel_pending_then_final(project):
    job_id = nj.dispatch("jobs.testing.ok")
    assert nj.cancel(job_id) is True
    info = nj.status(job_id)
    assert info["status"] == "cancelled" and info["finished_at"] is not None
    assert nj.cancel(job_id) is False
    assert claim_all(utcnow() + timedelta(days=1)) == []
    with pytest.raises(nj.JobNotFoundError):
        nj.cancel(12345)


def test_retry_makes_a_new_job_with_the_same_arguments(project):
    job_id = nj.dispatch("jobs.testing.echo", 1, key="v", priority=3)
    with pytest.raises(nj.JobStateError, match="only failed or cancelled jobs can be retried"):
        nj.retry(job_id)
    nj.cancel(job_id)
    again = nj.retry(job_id)
    assert again != job_id
    info = nj.status(again)
    assert (info["status"], info["args"], info["kwargs"], info["priority"]) == (
        "pending",
        [1],
        {"key": "v"},
        3,
    )
    assert nj.status(job_id)["status"] == "cancelled"


def test_retry_checks_the_whitelist_again(project):
    job_id = nj.dispatch("jobs.testing.fail")
    nj.cancel(job_id)
    project.write_whitelist("allowed_jobs: {jobs.testing: [ok]}\n")
    with pytest.raises(nj.NotAllowedError):
        nj.retry(job_id)


def test_wait_times_out_on_a_pending_job_and_returns_a_final_one(project):
    job_id = nj.dispatch("jobs.testing.ok")
    with pytest.raises(TimeoutError, match=f"job {job_id} is still pending"):
        nj.wait(job_id, timeout=0.05)
    nj.cancel(job_id)
    assert nj.wait(job_id, timeout=5)["status"] == "cancelled"


def test_history_has_every_job(project):
    ids = [nj.dispatch("jobs.testing.ok", i) for i in range(3)]
    frame = nj.history()
    assert list(frame["id"]) == ids
    assert list(frame.columns) == [*Job.STATUS_KEYS, "wait_s", "duration_s"]


def test_a_notebook_in_a_subfolder_imports_jobs(project, monkeypatch):
    monkeypatch.delenv("NOTEBOOKJOBS_ROOT")
    notebooks = project.root / "notebooks"
    notebooks.mkdir()
    monkeypatch.chdir(notebooks)
    job_id = nj.dispatch("jobs.sample.SampleJobClass.handle")
    assert nj.status(job_id)["status"] == "pending"
    assert (project.root / ".notebookjobs" / "queue.duckdb").exists()


def test_times_are_stored_in_utc(project):
    job_id = nj.dispatch("jobs.testing.ok", delay=1)
    info = nj.status(job_id)
    assert info["run_at"].utcoffset() == timedelta(0)
    assert abs(info["created_at"] - datetime.now(UTC)) < timedelta(minutes=5)


def test_ids_of_pruned_jobs_are_not_handed_out_again(project):
    ids = [nj.dispatch("jobs.testing.ok", i) for i in range(3)]
    for job_id in ids:
        nj.cancel(job_id)
    assert nj.prune(older_than=0) == 3 and nj.counts()["cancelled"] == 0
    assert nj.dispatch("jobs.testing.ok", 9) == ids[-1] + 1


@pytest.mark.parametrize("delay, seconds", [
    (90, 90), ("90", 90), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("2d", 172800),
    ("1w", 604800), ("1.5h", 5400), ("500ms", 0.5), (timedelta(minutes=2), 120),
])
def test_delay_takes_seconds_or_a_duration_string(project, delay, seconds):
    job_id = nj.dispatch("jobs.testing.ok", delay=delay)
    info = nj.status(job_id)
    assert (info["run_at"] - info["created_at"]).total_seconds() == pytest.approx(seconds, abs=0.01)


@pytest.mark.parametrize("delay", ["soon", "5 minutes", "-5m", "1e3s", "", "nan"])
def test_a_delay_that_is_no_duration_is_refused_with_the_forms_it_takes(project, delay):
    with pytest.raises(nj.InvalidArgumentsError, match="'90s', '5m', '1h30m'"):
        nj.dispatch("jobs.testing.ok", delay=delay)
    assert stored_count() == 0
