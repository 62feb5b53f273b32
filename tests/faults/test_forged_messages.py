"""Forged socket messages: an allowed target with one wrong-typed field (issue case 4, SPEC §14).

The socket validates each message's fields and types before anything is stored: the forger gets
an error reply, nothing is stored, the worker goes on, and the next worker starts.
"""

from __future__ import annotations

import pytest

import notebookjobs as nj

from .harness import socket_of
from .poison import FORGERIES, RawClient, check_reply

#: the forgeries the issue names; the others run in the soak (they cost a worker start each)
QUICK = [
    "kwargs_is_a_list",
    "naive_run_at",
    "retry_delay_nan",
    "priority_high",
    "batch_args_not_json",
    "after_its_own_id",
]


def forgery_is_refused(project, start_worker, name: str) -> None:
    # Given a worker and a queue with one completed job
    worker = start_worker()
    assert nj.wait(nj.dispatch("jobs.testing.ok", 1), timeout=30)["status"] == "completed"
    before = (nj.counts(), nj.jobs(per_page=100).attrs["total"])
    # When a process sends the forged record on the socket
    with RawClient(socket_of(project)) as client:
        reply = check_reply(client.ask(FORGERIES[name]()))
    # Then it gets an error reply, and nothing is stored
    assert reply is not None and "error" in reply, f"the forgery was accepted: {reply}"
    assert (nj.counts(), nj.jobs(per_page=100).attrs["total"]) == before
    # And the worker goes on: its loop has gone round and run another job since
    assert nj.wait(nj.dispatch("jobs.testing.ok", 2), timeout=30)["result"] == 2
    assert worker.proc.poll() is None, worker.output()[-3000:]
    # And after a stop, the next worker starts and runs jobs
    worker.stop()
    assert worker.proc.returncode == 0, worker.output()[-3000:]
    start_worker()
    assert nj.wait(nj.dispatch("jobs.testing.ok", 3), timeout=30)["result"] == 3
    assert (nj.counts()["completed"], nj.jobs(per_page=100).attrs["total"]) == (3, 3)


@pytest.mark.parametrize("name", QUICK)
def test_a_forged_message_is_refused_and_stores_nothing(project, start_worker, name):
    forgery_is_refused(project, start_worker, name)


@pytest.mark.soak
@pytest.mark.parametrize("name", sorted(set(FORGERIES) - set(QUICK)))
def test_more_forged_messages(project, start_worker, name):
    forgery_is_refused(project, start_worker, name)
