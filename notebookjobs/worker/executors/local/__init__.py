"""The local executor: a pool of spawned children (``pool``: supervision, ``children``: one child
seen from the worker, ``child``: the child's own loop), each in its own process group.

This ``__init__`` imports nothing at import time: a new child imports ``start_child`` from here.
"""

from __future__ import annotations

from typing import Any


def start_child(*args: Any) -> None:
    """What a new pool child runs (``children.Child.spawn``): ``child.child_main``, imported in
    the child only. Here, not in ``children``, so that the child imports nothing of the pool's
    side; and not ``child_main`` itself, which the worker would have to import: it never runs an
    attempt, and the modules that do (``child``, ``runner``, ``notebook_runner``, the registry)
    would cost it ~0.7 MB for life (SPEC §13)."""
    from .child import child_main

    child_main(*args)
