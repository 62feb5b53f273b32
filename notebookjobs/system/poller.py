"""The event loop's poller: ``selectors`` picks the best the system has (epoll on Linux, kqueue
on macOS); the forced portable mode takes ``poll``, which macOS has too and which needs no
epoll. The pool keeps one selector for its life (``worker.executors.local.pool``)."""

from __future__ import annotations

import selectors

from . import portable


def selector() -> selectors.BaseSelector:
    """A new selector: the system's best, or ``poll`` in the forced portable mode."""
    if portable() and hasattr(selectors, "PollSelector"):
        return selectors.PollSelector()
    return selectors.DefaultSelector()
