"""The architecture's rules, checked (docs/architecture.md): small modules, one package that
speaks SQL, a worker package whose ``__init__`` imports nothing. (Every way into the queue is
derived from one table of operations: tests/test_operations.py.)"""

from __future__ import annotations

from pathlib import Path

import notebookjobs as nj
from support import loaded_by_import

PACKAGE = Path(nj.__file__).parent


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_the_worker_package_init_imports_nothing_heavy():
    # The pool's children import notebookjobs.worker.child through the package: neither the store
    # (duckdb) nor the server nor pandas may come with it
    assert loaded_by_import("notebookjobs.worker.child", (
        "duckdb", "pandas", "pyarrow", "notebookjobs.store", "notebookjobs.worker.server",
        "notebookjobs.queue")) == []
