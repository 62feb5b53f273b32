"""The pool's zygote: multiprocessing's forkserver, preloaded with this module, which makes it
keep what a spawned child has (``pool``'s docstring says why a worker's children start there).

The forkserver is one interpreter that the worker starts (fork and exec, like a spawned child)
and that forks each child on request, so a child starts in a few milliseconds, with the child's
modules (``child``: the runner, the whitelist's parser, yaml) imported once, here, rather than
~0.1 s of imports in an interpreter of its own. What this module adds, at its import in the
forkserver (``_become_zygote``):

- a process group of its own, as each child has: a signal sent to the worker's group (a
  Ctrl-C, a ``kill -TERM -PGID``) reaches neither it nor the children it forks;
- it dies with the worker: SIGKILL from the kernel where Linux has PDEATHSIG (not in the forced
  portable mode). Its children arm their own parent-death signal (``procgroup.enter_child``),
  now relative to the zygote, so the worker's death reaches them through its death, as before.
  Everywhere, each child also sees EOF on its pipe to the worker, the guarantee;
- the environment marker: the zygote is started after the worker has marked its environment
  (``procgroup``), so a new worker's sweep kills a dead worker's zygote like its children.

Imported in the forkserver only (``Pool`` names it as a string, never imports it): the worker
must not import the child's modules (SPEC §13), nor change its own process group.
"""

from __future__ import annotations

import os
import sys

from ....system import parent, processes


def _is_forkserver() -> bool:
    """Whether multiprocessing's forkserver is importing this module among its preloads (its
    ``main`` is on the stack), not any other importer (a test, a tool that imports them all)."""
    server = sys.modules.get("multiprocessing.forkserver")
    frame = sys._getframe(1) if server is not None else None
    while frame is not None:
        if frame.f_code is server.main.__code__:  # type: ignore[union-attr]
            return True
        frame = frame.f_back
    return False


def _become_zygote() -> None:
    starter = os.getppid()
    try:
        processes.lead_own_group()
    except OSError:  # it leads a session already: its children still form groups of their own
        pass
    parent.die_with_parent()
    if os.getppid() != starter:
        os._exit(1)  # the worker died before the watch was armed: no request will come
    from . import child  # noqa: F401  # the children's modules, imported once for all of them


if _is_forkserver():
    _become_zygote()
