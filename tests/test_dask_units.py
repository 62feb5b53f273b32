"""The parts of the Dask executor that need no cluster (SPEC §18): its settings, the records
that cross to and from the cluster, where attempts go, and ``ran_on``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from notebookjobs import config
from notebookjobs.cli.commands import worker_lines
from notebookjobs.errors import ConfigError, InvalidArgumentsError
from notebookjobs.model import transitions, validate, wire
from notebookjobs.model.records import (
    LOCAL,
    AttemptRequest,
    JobSpec,
    Outcome,
    OutcomeKind,
    RetryPolicy,
)
from notebookjobs.worker.executors.dask.members import Members
from support import loaded_by_import

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BASE = "allowed_jobs:\n  jobs.testing: [ok]\n"


def settings_of(project, worker_section: str):
    project.write_whitelist(BASE + worker_section, raw=True)
    return config.load_settings()


def test_the_executor_and_the_scheduler_come_from_whitelist_yaml(project):
    # Given the worker section of a project sending its attempts to Dask
    settings = settings_of(project, "worker:\n  executor: dask\n  dask:\n"
                                    "    scheduler: tcp://dask.example:8786\n    upload: true\n")
    # Then the worker reads where to send them, and that the project is to be uploaded
    assert settings.worker.dask_scheduler == "tcp://dask.example:8786"
    assert settings.worker.dask.upload is True
    assert settings.worker.concurrency_set is False  # on Dask: the cluster's threads
    # And without the executor key the local pool runs them, whatever worker.dask says
    plain = settings_of(project, "worker:\n  concurrency: 3\n  dask: {scheduler: h:1}\n")
    assert plain.worker.dask_scheduler is None and plain.worker.concurrency_set is True


@pytest.mark.parametrize(("section", "names"), [
    ("worker:\n  executor: spark\n", "worker > executor: 'spark'"),
    ("worker:\n  executor: dask\n", "worker > dask > scheduler: None"),
    ("worker:\n  dask: {scheduler: 'inproc://x'}\n", "worker > dask > scheduler"),
    ("worker:\n  dask: {scheduler: 'tcp://h:99999'}\n", "worker > dask > scheduler"),
    ("worker:\n  dask: {upload: 'yes'}\n", "worker > dask > upload"),
    ("worker:\n  dask: {workers: 3}\n", "worker > dask > workers"),
    ("worker:\n  dask: tcp://h:1\n", "worker > dask: 'tcp://h:1'"),
])
def test_a_bad_dask_setting_is_a_config_error_that_says_what_is_allowed(project, section, names):
    with pytest.raises(ConfigError) as caught:
        settings_of(project, section)
    assert names in str(caught.value) and "expected" in str(caught.value)


@pytest.mark.parametrize(("given", "address"), [
    ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786"), ("dask-host:8786", "tcp://dask-host:8786"),
    ("tls://[::1]:8786", "tls://[::1]:8786"), (" tcp://h:1/ ", "tcp://h:1"),
])
def test_a_scheduler_address_is_read_as_dask_reads_it(given, address):
    assert validate.scheduler_address(given) == address


def test_a_cluster_object_stands_for_its_scheduler_address():
    class Cluster:
        scheduler_address = "tcp://h:8786"

    class Client:
        class scheduler:  # the shape of distributed.Client.scheduler
            address = "tls://h:8786"

    assert validate.scheduler_address(Cluster()) == "tcp://h:8786"
    assert validate.scheduler_address(Client()) == "tls://h:8786"
    for bad in (None, 8786, "tcp://h", "http://h:80", "tcp://h:1; rm -rf /"):
        with pytest.raises(InvalidArgumentsError, match="tcp://host:8786"):
            validate.scheduler_address(bad)


def request(**changes) -> AttemptRequest:
    fields = dict(key="notebookjobs-abc-1-1", job_id=1, target="jobs.testing.ok", args=[1],
                  kwargs={"a": [2]}, timeout=1.5, root="/srv/project", upload=False,
                  data="/srv/project/.notebookjobs/queue.duckdb.data", token="abc",
                  topic="notebookjobs-progress-abc")
    return AttemptRequest(**{**fields, **changes})


def test_an_attempt_request_crosses_as_json_and_comes_back_the_same():
    assert validate.attempt_request(validate.request_json(request())) == request()
    assert validate.attempt_request(validate.request_json(request(data=None))) == request(
        data=None)


@pytest.mark.parametrize("text", [
    "", "[]", '{"target": "x"}', validate.request_json(request())[:-1],
    validate.request_json(request()).replace('"job_id": 1', '"job_id": 0'),
    validate.request_json(request()).replace('"timeout": 1.5', '"timeout": -1'),
    validate.request_json(request()).replace('"/srv/project"', '"relative"'),
    validate.request_json(request()).replace('"abc"', '"a b"'),
    validate.request_json(request()).replace('"upload": false', '"upload": 1'),
    validate.request_json(request()).replace('"args": [1]', '"args": {}'),
    validate.request_json(request()).replace('"/srv/project/.notebookjobs', '"srv'),
])
def test_a_malformed_attempt_request_is_refused(text):
    with pytest.raises(InvalidArgumentsError):
        validate.attempt_request(text)


def test_an_outcome_from_the_cluster_is_checked_field_by_field():
    sent = Outcome(kind=OutcomeKind.FAILED, result=None, error="boom", output="out\udcff",
                   duration_s=0.5)
    back = validate.cluster_outcome(validate.outcome_json(sent))
    # Its shape is checked where it comes in, its values where every executor's come in
    assert back.kind is OutcomeKind.FAILED and back.error == "boom"
    assert validate.outcome(back).output == "out\ufffd" and back.duration_s == 0.5
    for bad in ('{"kind": "exploded", "output": "", "duration_s": 0}', "[1]", "nan",
                '{"kind": "failed", "output": 3, "duration_s": 0}', b"{}",
                '{"kind": "failed", "output": "", "duration_s": true}',
                '{"kind": "failed", "output": ""}', '{"kind": ["failed"], "output": "", '
                '"duration_s": 0}', '{"kind": "failed", "output": "", "duration_s": 0, '
                '"error": 5}'):
        with pytest.raises(InvalidArgumentsError):
            validate.cluster_outcome(bad)


def test_the_pool_the_cluster_and_the_socket_carry_an_outcome_one_way():
    # Given an outcome with every field set
    sent = Outcome(kind=OutcomeKind.SUCCEEDED, result={"a": [1, 2]}, result_type="json",
                   error=None, output="printed\n", duration_s=1.25)
    # When it crosses as a child's "done" (pool), as a Dask worker's JSON, or as a foreground
    # run's record on the worker's socket (wire's records), then it comes back as it was
    assert Outcome.from_wire(sent.to_wire()) == sent
    assert validate.cluster_outcome(validate.outcome_json(sent)) == sent
    assert wire.loads(wire.dumps(sent)) == sent
    # And a sender of another version may add fields: they are ignored
    assert Outcome.from_wire({**sent.to_wire(), "where": "tcp://w:1"}) == sent


def test_a_typed_result_from_the_cluster_keeps_its_type():
    # Given a frame result the Dask worker's child kept in the queue's data folder
    summary = {"type": "DataFrame", "rows": 2, "columns": ["v"]}
    sent = Outcome(kind=OutcomeKind.SUCCEEDED, result=summary, result_type="DataFrame")
    # When its outcome comes back, then the type comes with it (the loop checks it fits)
    back = validate.cluster_outcome(validate.outcome_json(sent))
    assert (back.result, back.result_type) == (summary, "DataFrame")
    assert validate.outcome(back).result_type == "DataFrame"
    # And a type that is not one of ours is dropped by the loop: the result is kept as JSON
    forged = validate.outcome_json(sent).replace('"result_type": "DataFrame"',
                                                 '"result_type": "pickle"')
    assert validate.outcome(validate.cluster_outcome(forged)).result_type == "json"


def test_a_progress_report_from_the_cluster_is_checked():
    report = {"key": "k-1", "job_id": 3, "fraction": 0.25, "message": "a", "worker": "tcp://w:1"}
    assert validate.cluster_progress(report) == ("k-1", 3, 0.25, "a")
    for bad in ({**report, "fraction": 2}, {**report, "message": 5}, {"key": "k"}, [1],
                {**report, "job_id": "3"}):
        with pytest.raises(InvalidArgumentsError):
            validate.cluster_progress(bad)
    # A last printed line comes without a fraction, as from the pool's children
    assert validate.cluster_progress({**report, "fraction": None}) == ("k-1", 3, None, "a")


def test_a_start_report_from_the_cluster_is_checked():
    report = {"key": "k-1", "job_id": 3, "started": 1_700_000_000.5, "worker": "tcp://w:1"}
    key, job_id, began = validate.cluster_started(report)
    assert (key, job_id, began.timestamp()) == ("k-1", 3, 1_700_000_000.5)
    assert began.tzinfo is not None
    for bad in ({**report, "started": "now"}, {**report, "started": 1e300},
                {**report, "started": True}, {**report, "key": "a b"}, {"key": "k-1"}, [1]):
        with pytest.raises(InvalidArgumentsError):
            validate.cluster_started(bad)


def identity(**threads: int) -> dict:
    return {"workers": {f"tcp://{name}:1": {"name": name, "nthreads": n, "status": "running"}
                        for name, n in threads.items()}}


def test_attempts_go_to_the_worker_with_the_most_free_threads_within_the_limit():
    # Given a cluster of a 2-thread and a 1-thread worker, no limit of our own
    members = Members(limit=None)
    members.update(identity(a=2, b=1))
    assert members.free() == 3
    # When attempts are placed, then the freest worker takes each
    assert [members.place() for _ in range(3)] == ["tcp://a:1", "tcp://b:1", "tcp://a:1"]
    assert members.free() == 0
    with pytest.raises(RuntimeError):
        members.place()
    # And an attempt that ends frees its thread
    members.release("tcp://b:1")
    assert members.free() == 1 and members.place() == "tcp://b:1"


def test_worker_concurrency_caps_the_attempts_in_flight():
    members = Members(limit=2)
    members.update(identity(a=4))
    assert members.free() == 2
    members.place()
    members.place()
    assert members.free() == 0 and members.describe()["concurrency"] == 2


def test_a_worker_that_leaves_is_reported_with_our_attempts_on_it():
    members = Members(limit=None)
    members.update(identity(a=1, b=1))
    where = members.place()
    assert members.update(identity(c=1)) == {where}  # it left with our attempt
    assert members.free() == 0  # until the executor has ended that attempt
    members.release(where)
    assert members.free() == 1
    paused = {"workers": {"tcp://p:1": {"name": "p", "nthreads": 4, "status": "paused"}}}
    members.update(paused)
    assert members.free() == 0  # a paused worker takes no attempt


def test_ran_on_keeps_one_entry_per_counted_attempt():
    spec = JobSpec(target="jobs.testing.ok", args=[], kwargs={}, priority=0, run_at=T0,
                   policy=RetryPolicy())
    job = transitions.start(transitions.pending(1, spec, T0), "w", T0, "tcp://a:1")
    assert job.ran_on == ["tcp://a:1"]
    again = transitions.start(transitions.settle(
        job, Outcome(kind=OutcomeKind.CRASHED, error="lost"), T0), "w", T0, "tcp://b:1")
    assert again.ran_on == ["tcp://a:1", "tcp://b:1"] and again.attempts == 2
    # An interrupted attempt is not counted, and leaves no entry
    back = transitions.requeue(again, T0)
    assert back.ran_on == ["tcp://a:1"] and back.attempts == 1
    # A foreground run says it ran here
    assert transitions.started_now(2, spec, "run:h:1", T0).ran_on == [LOCAL]


def test_worker_status_prints_the_cluster():
    info = {"running": True, "pid": 1, "concurrency": 2, "started_at": T0, "jobs": [],
            "cluster": {"scheduler": "tcp://s:8786", "workers": [{}, {}], "threads": 2,
                        "dashboard": "http://s:8787/status"}}
    assert worker_lines(info)[2] == ("dask: tcp://s:8786, 2 worker(s), 2 thread(s); "
                                     "dashboard http://s:8787/status")


def test_what_runs_on_the_dask_workers_imports_nothing_heavy():
    # The Dask worker imports the task's module (and the child it starts, the child's): neither
    # the store (duckdb), nor pandas, nor the worker's server or its Dask client side
    assert loaded_by_import(
        "notebookjobs.worker.executors.dask.task, notebookjobs.worker.executors.dask.child", (
        "duckdb", "pandas", "pyarrow", "notebookjobs.store", "notebookjobs.worker.server",
        "notebookjobs.access.queue_client", "notebookjobs.worker.executors.dask.executor")) == []
