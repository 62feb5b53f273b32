"""What reaches the queue through a side door (issue 21, "Also seen"): the socket refuses a job
the whitelist does not allow, as the API does; a result file replaced by a link is not
followed."""

from __future__ import annotations

import dataclasses

import pytest

import notebookjobs as nj
from notebookjobs.errors import StorageError
from notebookjobs.models import JobBatch, utcnow

from .harness import socket_of
from .poison import RawClient, check_reply, good_batch, good_spec, line

#: targets a forger may name: a module function, a builtin, a member the owner does not list
NOT_ALLOWED = ["os.system", "builtins.eval", "jobs.testing.nope", "jobs.sample.SampleJob.__init__"]


@pytest.mark.parametrize("target", NOT_ALLOWED)
def test_the_socket_refuses_a_job_the_whitelist_does_not_allow(project, start_worker, target):
    # Given a worker
    start_worker()
    spec = dataclasses.replace(good_spec(), target=target)
    batch: JobBatch = dataclasses.replace(good_batch(), target=target)
    # When a process sends new jobs of that target on the socket: a dispatch (journalled, and
    # decided on the queue's state: `unique`), a batch, a foreground run's start
    requests = [line("enqueue", spec, utcnow()),
                line("enqueue", dataclasses.replace(spec, unique_key="k"), utcnow()),
                line("enqueue_batch", batch, utcnow()),
                line("run_started", spec, "run:host:1", utcnow())]
    with RawClient(socket_of(project)) as client:
        replies = [check_reply(client.ask(request)) for request in requests]
    # Then each is refused at the door as the API refuses it, and nothing is stored
    for reply in replies:
        assert reply is not None and reply["error"]["type"] == "NotAllowedError", reply
        assert "whitelist.yaml" in reply["error"]["message"]
    assert nj.jobs(per_page=100).attrs["total"] == 0
    # And an allowed job is still taken
    assert nj.dispatch("jobs.testing.ok", 5).result(timeout=30) == 5


def test_a_result_file_replaced_by_a_link_is_not_followed(project, start_worker, tmp_path):
    # Given a completed job whose result is kept in a file (bytes)
    start_worker()
    job = nj.dispatch("jobs.testing.blob", 8)
    assert job.result(timeout=60) == bytes(range(8))
    file = project.db.with_name(project.db.name + ".data") / "results" / f"{int(job)}.bin"
    assert file.is_file()
    # When the file is replaced by a link to a file elsewhere (job code can write there)
    secret = tmp_path / "secret"
    secret.write_bytes(b"not the queue's")
    file.unlink()
    file.symlink_to(secret)
    # Then reading the result refuses, saying why, and reads nothing through the link
    with pytest.raises(StorageError, match="link") as raised:
        job.result(timeout=10)
    assert "not the queue's" not in str(raised.value)
