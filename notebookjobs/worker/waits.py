"""Which pending jobs wait for which others (``dispatch(after=[ids])``, SPEC §16), in the
worker's memory: the bookkeeping behind ``QueueState``, which hands out no job that still waits.
No I/O, no locking, no clock: ``QueueState`` calls it under the worker's state lock.

Why no cycle can form here: ``dependencies`` (module docstring).
"""

from __future__ import annotations


class Waits:
    """Blocked jobs and their unfinished dependencies, both ways round."""

    def __init__(self) -> None:
        self.blocked: dict[int, set[int]] = {}  #: waiting job -> dependencies not complete yet
        self.waiters: dict[int, set[int]] = {}  #: dependency -> jobs waiting for it

    def __contains__(self, job_id: int) -> bool:
        """Whether ``job_id`` is blocked."""
        return job_id in self.blocked

    def wait(self, job_id: int, dependencies: set[int]) -> None:
        """Block ``job_id`` until each of ``dependencies`` has completed (none: nothing)."""
        if not dependencies:
            return
        self.blocked[job_id] = set(dependencies)
        for dependency in dependencies:
            self.waiters.setdefault(dependency, set()).add(job_id)

    def forget(self, job_id: int) -> None:
        """``job_id`` waits no more (it ended some other way, e.g. a cancel)."""
        for dependency in self.blocked.pop(job_id, ()):
            waiting = self.waiters.get(dependency)
            if waiting is not None:
                waiting.discard(job_id)
                if not waiting:
                    del self.waiters[dependency]

    def ended(self, dependency: int, completed: bool) -> tuple[list[int], list[int]]:
        """``dependency`` ended: the jobs it released (they wait for nothing more), and, when it
        did not complete, the jobs that waited for it and never can run (they are forgotten
        here; the caller cancels them), both in id order."""
        released, doomed = [], []
        for job_id in sorted(self.waiters.pop(dependency, ())):
            if not completed:
                self.forget(job_id)
                doomed.append(job_id)
                continue
            rest = self.blocked.get(job_id)
            if rest is None:
                continue
            rest.discard(dependency)
            if not rest:
                del self.blocked[job_id]
                released.append(job_id)
        return released, doomed
