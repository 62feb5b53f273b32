"""Entry point of ``python -m notebookjobs.worker``.

A package with a ``__main__`` module rather than a plain module: multiprocessing's spawn
children re-import a ``python -m`` main module unless it is named ``__main__``, and the pool's
children should not import the worker's database and server code.
"""

from __future__ import annotations

import sys

from .main import main

sys.exit(main())
