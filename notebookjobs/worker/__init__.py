"""The worker: the process that owns the queue while it runs and runs its jobs (SPEC §12).

``python -m notebookjobs.worker`` (``main``). Its parts, one module each:

- ``main``: the process: ``Worker`` puts the parts together; the command line.
- ``loop``: starts due jobs, settles attempts, cancels, the graceful stop (clock passed in).
- ``state``: the pending and running jobs in memory, in run order.
- ``writer``: the group commit of what changed.
- ``service`` + ``server``: the queue as served to clients over the Unix socket.
- ``pool`` + ``child`` + ``procgroup``: the children that run attempts, and killing all an
  attempt started.
- ``runner``: one attempt in the current process (a child's, or ``notebookjobs run``'s).
- ``daemon``: starting, finding and stopping a detached worker.
- ``problems``, ``defaults``: faults reported to ``worker_status()``; timings and limits.
- ``start_child`` (here): what a new pool child runs first.

This ``__init__`` imports nothing: the pool's children import ``child`` through it, and must
stay free of the store and the server.
"""

from __future__ import annotations

from typing import Any


def start_child(*args: Any) -> None:
    """What a new pool child runs (``children.Child.spawn``): ``child.child_main``, imported in
    the child only. Here, not in ``children``, so that the child imports nothing of the pool's
    side; and not ``child_main`` itself, which the worker would have to import: it never runs an
    attempt, and the modules that do (``child``, ``runner``, ``notebook``, the registry) would
    cost it ~0.7 MB for life (SPEC §13)."""
    from .child import child_main

    child_main(*args)
