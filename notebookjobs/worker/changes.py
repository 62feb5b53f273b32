"""The queue's changes, counted, for clients that wait for the next one (the dashboard's push).

A dashboard that polled the worker every second cost ~2 % of a core in its kernel and as much
in the worker, shown or not, and showed a completion up to a second late. Instead it sends one
``watch(seen, hold)`` request: the worker answers as soon as its version differs from ``seen``
(at once if it already does), or after ``hold`` seconds with nothing new. While nothing
changes, nothing is sent either way and both processes sleep (SPEC §13: an idle dashboard
costs ≤ 0.2 % of a core; a change is shown within 200 ms).

The version moves when the writer has committed changed jobs (so a client that reads after
the answer sees them), and when a request changed the file itself (``prune``, a foreground
run). A waiting request holds no lock but this condition's: nothing a commit needs.
"""

from __future__ import annotations

import threading


class Changes:
    """A counter of the queue's changes that threads can wait on; ``close`` ends every wait."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._version = 0
        self._closed = False
        #: requests waiting now (``worker_status()["watching"]``: how many dashboards follow)
        self.waiting = 0

    @property
    def version(self) -> int:
        """How many changes so far."""
        return self._version

    def bump(self) -> None:
        """Something changed: wake every waiter."""
        with self._cond:
            self._version += 1
            self._cond.notify_all()

    def wait(self, seen: int, hold: float) -> int:
        """The version, once it is not ``seen``, or after ``hold`` seconds, or at ``close``."""
        with self._cond:
            self.waiting += 1
            try:
                self._cond.wait_for(lambda: self._version != seen or self._closed, timeout=hold)
            finally:
                self.waiting -= 1
            return self._version

    def close(self) -> None:
        """The worker stops: every waiter gets its answer now (the server joins its threads)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
