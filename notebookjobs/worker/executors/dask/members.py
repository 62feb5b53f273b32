"""The Dask workers a ``DaskExecutor`` may send attempts to: who they are, how many threads each
has, how many of our attempts each runs, and where the next attempt goes.

The executor places every attempt itself, on one named Dask worker (``workers=[address]``,
``allow_other_workers=False``), rather than letting the scheduler choose. That is what keeps two
runs of a job from overlapping (SPEC §18): Dask re-runs a task whose worker died on another
worker, but a task bound to a worker that is gone has nowhere to go; the executor fails the
attempt instead and our retry policy decides. It also bounds the attempts in flight to the
threads there are (one attempt holds one Dask thread while its child runs) and tells
``Job.ran_on`` at once.

Used from the worker's loop thread only, except ``describe``, which the socket's threads call
for ``worker_status()`` (hence the lock).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class DaskWorker:
    """One Dask worker as the scheduler describes it."""

    address: str
    name: str
    threads: int
    running: bool  #: its status is "running" (not paused, not closing): it may take attempts


class Members:
    """The cluster's workers and our attempts on each; ``limit``: attempts in flight at most
    (None: the cluster's total threads, which follows workers as they come and go)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.workers: dict[str, DaskWorker] = {}
        self.busy: Counter[str] = Counter()  #: address -> our attempts running there
        self._lock = threading.Lock()

    def update(self, identity: dict[str, Any]) -> set[str]:
        """Take the scheduler's ``identity()`` (``Client.scheduler_info()``); returns the
        addresses that had our attempts and are gone."""
        workers = {}
        for address, info in (identity.get("workers") or {}).items():
            status = str(info.get("status", "running"))
            workers[address] = DaskWorker(address=address, name=str(info.get("name", address)),
                                          threads=int(info.get("nthreads", 1)),
                                          running=status in ("running", "Status.running"))
        with self._lock:
            self.workers = workers
        return {address for address, n in self.busy.items() if n and address not in workers}

    def remove(self, address: str) -> None:
        """Forget a worker the scheduler said it removed (before the next ``update``)."""
        with self._lock:
            self.workers.pop(address, None)

    def threads(self) -> int:
        """The threads of the workers that take attempts."""
        return sum(w.threads for w in self.workers.values() if w.running)

    def allowed(self) -> int:
        """Attempts in flight at most now: ``limit``, else the cluster's threads."""
        return self.limit if self.limit is not None else self.threads()

    def free(self) -> int:
        """How many more attempts may start now."""
        room = sum(max(0, w.threads - self.busy[w.address])
                   for w in self.workers.values() if w.running)
        return max(0, min(self.allowed() - sum(self.busy.values()), room))

    def place(self) -> str:
        """The worker for the next attempt: the one with the most free threads (then the least
        busy, then by address, so that placement is stable); ``RuntimeError`` if none is free."""
        candidates = [w for w in self.workers.values()
                      if w.running and self.busy[w.address] < w.threads]
        if not candidates:
            raise RuntimeError("no Dask worker has a free thread; submit() only while "
                               "free_slots() > 0")
        best = min(candidates, key=lambda w: (self.busy[w.address] - w.threads,
                                              self.busy[w.address], w.address))
        with self._lock:
            self.busy[best.address] += 1
        return best.address

    def release(self, address: str) -> None:
        """An attempt placed on ``address`` ended."""
        with self._lock:
            self.busy[address] -= 1
            if self.busy[address] <= 0:
                del self.busy[address]

    def describe(self) -> dict[str, Any]:
        """The workers for ``worker_status()``: address, name, threads, our attempts there."""
        with self._lock:
            return {"workers": [{"address": w.address, "name": w.name, "threads": w.threads,
                                 "running": self.busy[w.address], "status":
                                 "running" if w.running else "paused or closing"}
                                for w in sorted(self.workers.values(), key=lambda w: w.address)],
                    "threads": self.threads(), "concurrency": self.allowed()}
