"""The architecture's rules that import contracts cannot state (docs/architecture.md). The layers,
"only store/ imports duckdb" and "no circles" are import-linter's contracts in pyproject.toml,
checked by ``lint-imports`` in ``make test``. (Every way into the queue is derived from one table
of operations: tests/test_operations.py.)"""

from __future__ import annotations

from support import loaded_by_import


def test_the_worker_package_init_imports_nothing_heavy():
    # The pool's children import notebookjobs.worker.executors.local.child through the packages
    # above it: neither the store (duckdb) nor the server nor pandas may come with it
    assert loaded_by_import("notebookjobs.worker.executors.local.child", (
        "duckdb", "pandas", "pyarrow", "notebookjobs.store", "notebookjobs.worker.server",
        "notebookjobs.access.queue_client")) == []
