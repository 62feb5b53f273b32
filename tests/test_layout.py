"""The architecture's rules, checked (docs/architecture.md): small modules, one package that
speaks SQL, one typed protocol that every way into the queue implements, a worker package whose
``__init__`` imports nothing."""

from __future__ import annotations

import inspect
from pathlib import Path

import notebookjobs as nj
from notebookjobs import queue, remote, validate
from notebookjobs.worker.service import WorkerService
from support import loaded_by_import

PACKAGE = Path(nj.__file__).parent


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_every_way_into_the_queue_implements_the_whole_protocol():
    # Given the operations of the Queue protocol, with their signatures
    wanted = {name: inspect.signature(getattr(queue.Queue, name)) for name in queue.OPERATIONS}
    assert {"enqueue", "enqueue_batch", "get", "get_many", "page", "counts", "cancel", "prune",
            "table", "record_progress", "run_started", "run_restarted",
            "run_finished"} == set(wanted)
    # Then the file path, the socket client, the client's router and the worker's service each
    # have every one of them, taking the same parameters
    for cls in (queue.StoreQueue, remote.RemoteQueue, queue.QueueClient, WorkerService):
        for name, signature in wanted.items():
            method = getattr(cls, name, None)
            assert method is not None, f"{cls.__name__} lacks {name}"
            assert list(inspect.signature(method).parameters) == list(signature.parameters), \
                (cls.__name__, name)


def test_the_socket_checks_the_arguments_of_exactly_the_operations_it_serves():
    assert queue.OPERATIONS | {"worker_status", "stop", "watch"} == validate.REQUEST_NAMES


def test_the_worker_package_init_imports_nothing_heavy():
    # The pool's children import notebookjobs.worker.child through the package: neither the store
    # (duckdb) nor the server nor pandas may come with it
    assert loaded_by_import("notebookjobs.worker.child", (
        "duckdb", "pandas", "pyarrow", "notebookjobs.store", "notebookjobs.worker.server",
        "notebookjobs.queue")) == []
