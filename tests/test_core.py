"""The worker's core: its jobs in memory and its queue file, each under its lock, taken in the
one order (the file's first), on a real queue file."""

from __future__ import annotations

import threading

import pytest

from notebookjobs import config
from notebookjobs.store import Database
from notebookjobs.worker.core import Core


@pytest.fixture
def core(project):
    db = Database(config.load_settings().db_path)
    yield Core(db)
    db.close()


def test_the_file_is_taken_before_the_memory_never_inside_it(core):
    # Given a thread that holds the memory (the loop, settling an attempt)
    with core.memory(), core.memory() as state:  # (re-entrant: a helper may take it again)
        assert state is core.state
        # When it reaches for the file, then it is refused at once rather than deadlocking
        # against a writer that holds the file and waits for the memory
        with pytest.raises(RuntimeError, match="before the state lock"), core.file():
            pass
    # And the order the writer takes them in works, and nothing is left held
    with core.transaction() as job_store, core.memory() as state:
        assert job_store.last_id() == 0 and len(state) == 0
    with core.file() as db:
        assert db is core.db


def test_another_thread_waits_for_the_file_while_one_holds_it(core):
    # Given a thread inside a transaction
    inside, release = threading.Event(), threading.Event()
    order: list[str] = []

    def commit() -> None:
        with core.transaction():
            inside.set()
            release.wait()
            order.append("first")

    first = threading.Thread(target=commit)
    first.start()
    inside.wait()
    # When another takes the file, then it gets it once the first let go (the memory is free
    # meanwhile: the first thread does not hold it)
    with core.memory():
        pass
    release.set()
    with core.file():
        order.append("second")
    first.join()
    assert order == ["first", "second"]
