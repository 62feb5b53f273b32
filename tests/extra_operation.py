"""An operation added to the queue through the table alone (tests/test_operations.py): its
meaning, and its one entry. Imported by the test, and by the worker it starts, before either
serves a call."""

from __future__ import annotations

from notebookjobs.access import operations
from notebookjobs.access.meaning import StoreQueue
from notebookjobs.model import validate


def count_of(queue: StoreQueue, status: str) -> int:
    """How many jobs have ``status``: a trivial read, as ``counts`` is."""
    return queue.counts()[status]


COUNT_OF = operations.declare(operations.Operation(
    count_of, params=(("status", validate.status_name),), reply=int))
