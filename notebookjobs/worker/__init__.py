"""``python -m notebookjobs.worker``: the worker (the loop itself lives in ``supervisor``).

A package with a ``__main__`` module rather than a plain module: multiprocessing's spawn
children re-import a ``python -m`` main module unless it is named ``__main__``, and the pool's
children should not import the worker's database and server code.
"""

from __future__ import annotations

from ..supervisor import Worker, main

__all__ = ["Worker", "main"]
