"""The operation table (``access.operations``): every way into the queue is derived from it,
and an operation added there alone (``extra_operation``: one entry plus its meaning) is reached
from a client both without a worker and through a running one, its arguments checked by the
worker as the table says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import notebookjobs as nj
from notebookjobs import config
from notebookjobs.access import operations, remote
from notebookjobs.access.meaning import StoreQueue
from notebookjobs.access.queue_client import QueueClient
from notebookjobs.access.remote import RemoteQueue
from notebookjobs.errors import InvalidArgumentsError
from notebookjobs.worker.service import _SERVED, WorkerService
from support import wait_until

TESTS = Path(__file__).resolve().parent


def test_every_way_in_is_derived_from_the_table():
    # Given the table's operations with a meaning (the queue's; the worker's own have none)
    table = {name: op for name, op in operations.OPERATIONS.items() if op.meaning is not None}
    assert {"enqueue", "enqueue_batch", "get", "get_many", "page", "counts", "cancel", "prune",
            "table", "record_progress", "run_started", "run_restarted",
            "run_finished"} <= set(table)
    for name, op in table.items():
        # Then each meaning is StoreQueue's method of that name ...
        assert op.meaning is getattr(StoreQueue, name)
        # ... and the router and the socket client carry it out from the table: neither
        # writes a method of its own for it
        for cls in (QueueClient, RemoteQueue):
            assert name not in vars(cls), (cls.__name__, name)
            assert getattr(cls, name) is op
    # And the worker serves itself only what it documents; its own operations all
    assert set(_SERVED) == {"enqueue", "cancel", "run_started", "run_finished", "table",
                            "worker_status", "stop", "watch"}
    assert all(getattr(WorkerService, name) is method for name, method in _SERVED.items())


def _worker_with_the_extra_operation(project):
    """A real worker process that has loaded ``extra_operation`` before it serves anything."""
    env = {**project.env(), "PYTHONPATH": str(TESTS)}
    code = ("import sys, extra_operation; from notebookjobs.worker.main import main; "
            "sys.exit(main([]))")
    log = project.root / "extra-worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=project.root, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    settings = config.load_settings()
    wait_until(lambda: proc.poll() is not None or remote.worker_info(settings), timeout=60,
               what="the worker to answer")
    assert proc.poll() is None, log.read_text()
    return proc


@pytest.fixture
def extra_operation():
    """``extra_operation`` imported (its entry declared), and taken out of the table after."""
    import extra_operation as module

    yield module
    del operations.OPERATIONS[module.COUNT_OF.name]
    delattr(operations.Operations, module.COUNT_OF.name)
    sys.modules.pop(module.__name__)


def test_an_operation_added_through_the_table_alone_is_reached_on_both_paths(
        project, start_worker, extra_operation):
    # Given two pending jobs and one cancelled, and no worker
    ids = [int(nj.dispatch("jobs.testing.ok", delay=3600)) for _ in range(3)]
    nj.cancel(ids[0])
    queue = QueueClient(config.load_settings())
    # When a client asks the new operation: it runs on the locked file
    assert queue.perform(extra_operation.COUNT_OF, "pending") == 2
    # (an attribute of its name too; declared at run time, so mypy cannot know it)
    assert getattr(queue, "count_of")("cancelled") == 1  # noqa: B009
    assert not queue.used_worker
    # When a worker that has the same table runs: it is served there, its argument checked
    proc = _worker_with_the_extra_operation(project)
    try:
        assert queue.perform(extra_operation.COUNT_OF, "pending") == 2 and queue.used_worker
        with pytest.raises(InvalidArgumentsError, match="'bogus' is not a job status"):
            queue.perform(extra_operation.COUNT_OF, "bogus")
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0
    # And a worker whose table lacks it refuses it as any unknown operation
    start_worker()
    with pytest.raises(InvalidArgumentsError, match="unknown operation 'count_of'"):
        queue.perform(extra_operation.COUNT_OF, "pending")
