"""The parent watch: how a pool child learns that its worker died, even by ``kill -9``.

Everywhere (every POSIX system): the pipe to the worker. The child keeps a thread reading it,
and the worker is the only process that holds the other end, so its death is EOF there
(``worker.executors.local.child``'s reader). That needs nothing of the system, and catches a
death at once.

On Linux, outside the forced portable mode, also ``prctl(PR_SET_PDEATHSIG)``: the kernel sends
the child a signal as its parent dies, which interrupts the main thread's blocking calls and
does not wait for the reader thread to be scheduled. A speed-up, not the guarantee: its handler
is Python code too, and the pipe's EOF comes all the same.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import Any

from . import LINUX, portable

logger = logging.getLogger(__name__)

#: what Linux sends a child when its worker dies: a real-time signal, as jobs hardly use those,
#: and not the lowest ones, which code that does use them tends to take first
DEATH_SIGNAL: int | None = signal.SIGRTMIN + 6 if LINUX else None
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def death_signal() -> int | None:
    """The signal this process gets when its parent dies, if ``on_death`` arms one here."""
    return None if portable() else DEATH_SIGNAL


def on_death(handler: Callable[[], Any]) -> bool:
    """Have the kernel call ``handler`` (as a signal handler) when this process's parent dies,
    where it can (Linux's PDEATHSIG, not in the forced portable mode); whether it is armed.
    Check ``os.getppid()`` afterwards: a parent that died before this call sends nothing."""
    sig = death_signal()
    if sig is None:
        return False
    signal.signal(sig, lambda signum, frame: handler())
    return _arm(sig)


def die_with_parent() -> bool:
    """Have the kernel SIGKILL this process when its parent dies, where it can (as
    ``on_death``); whether it is armed. For a process that runs no job and must not outlive
    its parent even stopped or stuck: the pool's zygote (``worker.executors.local.zygote``)."""
    return death_signal() is not None and _arm(signal.SIGKILL)


def _arm(sig: int) -> bool:
    try:
        import ctypes  # here, not at the top: only children need it

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (ImportError, OSError, AttributeError) as exc:
        logger.warning("no prctl here (%s): the worker's death is seen on the pipe alone", exc)
        return False
    if prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        logger.warning("prctl(PR_SET_PDEATHSIG) failed: errno %s", ctypes.get_errno())
        return False
    return True
