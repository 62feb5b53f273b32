"""The worker's pool: N reusable child processes, each running one attempt at a time.

Not ``concurrent.futures.ProcessPoolExecutor``: it cannot stop a running call, and killing one of
its processes breaks the whole pool. Here the parent SIGKILLs a child to cancel or time out an
attempt, notices one that died (``os._exit``, a segfault), turns either into an ``Outcome`` and
starts a replacement. Each child leads a process group of its own: what its attempts started
dies with it, and with the worker (``procgroup``).

Children start with ``spawn``: the worker is threaded, and a forked child can inherit a lock held
by another thread (https://github.com/python/cpython/issues/84559). With spawn, the child's parent
is the worker itself, which ``PR_SET_PDEATHSIG`` needs. Children never open the database; what
crosses each one's pipe is in ``child``.
"""

from __future__ import annotations

import enum
import logging
import math
import multiprocessing
import os
import secrets
import selectors
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from ..errors import WorkerError
from ..models import LOCAL, Outcome, OutcomeKind
from . import procgroup
from .child import child_main

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0  #: seconds start() waits for "ready" (a cold disk makes imports slow)
REAP_TIMEOUT_S = 5.0  #: seconds to wait for a killed or exiting child to be reaped
MAX_START_FAILURES = 3  #: replacements in a row that die before "ready": then wait() gives up


@dataclass(frozen=True)
class PoolEvents:
    """What one ``Pool.wait()`` saw; all lists are empty after a timeout or a child got ready."""

    #: (job_id, outcome) of the attempts that ended
    finished: list[tuple[int, Outcome]] = field(default_factory=list)
    #: (job_id, fraction, message) reported by running attempts, oldest first
    progress: list[tuple[int, float, str | None]] = field(default_factory=list)
    ready: list[Any] = field(default_factory=list)  #: the ``extra`` objects that became ready


class _State(enum.Enum):
    STARTING = "starting"  #: spawned, "ready" not received yet
    IDLE = "idle"
    BUSY = "busy"  #: running the attempt of ``job_id``


@dataclass(eq=False)
class _Child:
    """The parent's handle on one child process and the attempt it runs."""

    process: BaseProcess
    conn: Connection
    pid: int  #: kept here: process.pid is unreadable once the process is closed
    started: float  #: time.monotonic() when spawned, then when the current attempt was sent
    timeout: float | None  #: seconds to get ready, then the attempt's timeout
    state: _State = _State.STARTING
    job_id: int | None = None

    @property
    def deadline(self) -> float:
        return math.inf if self.timeout is None else self.started + self.timeout


class Pool:
    """``size`` child processes that run attempts and can be killed one by one.

    Use one Pool from one long-lived thread. It is not thread-safe, and Linux sends the
    parent-death signal when the *thread* that spawned a child exits (prctl(2)). Children are
    spawned in ``start()`` and ``wait()`` only.
    """

    def __init__(self, root: Path, size: int, *, queue_token: str | None = None) -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least 1 child; got size={size}")
        self.root = Path(root)  #: the project root; children read its whitelist.yaml per attempt
        self.size = size
        #: the queue's name in the children's environment marker; by default this pool's own
        self.queue_token = queue_token or secrets.token_hex(procgroup.TOKEN_CHARS // 2)
        self._ctx = multiprocessing.get_context("spawn")
        self._children: list[_Child] = []
        # Each child's pipe and sentinel stay registered here for its life: building a fresh
        # poll set on every wait() (multiprocessing.connection.wait) cost ~50 µs per attempt.
        self._selector = selectors.DefaultSelector()
        # Events seen outside wait() (stop_job) or while it works; wait() hands them out.
        self._finished: list[tuple[int, Outcome]] = []
        self._progress: list[tuple[int, float, str | None]] = []
        self._start_failures, self._start_error, self._closed = 0, "", False

    def start(self) -> None:
        """Spawn the children and return once all are ready; ``WorkerError`` if one fails."""
        try:
            for _ in range(self.size):
                self._spawn()
            while not self._start_failures and self.free_slots() < len(self._children):
                self._service(self._select(self._until_deadline(None), []))
                self._expire(time.monotonic())
        except WorkerError:
            self.close()
            raise
        if self._start_failures:
            self.close()
            raise WorkerError(f"the pool could not start: {self._start_error}; its error "
                              "output is in the worker's log (the worker's stderr)")

    def free_slots(self) -> int:
        """How many children are idle and ready for ``submit()``."""
        return sum(c.state is _State.IDLE for c in self._children)

    def submit(self, job_id: int, target: str, args: list[Any], kwargs: dict[str, Any],
               timeout: float | None) -> str:
        """Start an attempt on an idle child; ``RuntimeError`` if none is idle (see free_slots).
        Returns where it runs: ``LOCAL``."""
        child = next((c for c in self._children if c.state is _State.IDLE), None)
        if child is None:
            raise RuntimeError("no idle child in the pool; submit() only while free_slots() > 0")
        try:
            child.conn.send((job_id, target, list(args), dict(kwargs)))
        except OSError:  # it died since the last wait(), which reports the attempt as CRASHED
            logger.debug("child %s died before it got job %s", child.pid, job_id)
        child.state, child.job_id, child.started, child.timeout = (
            _State.BUSY, job_id, time.monotonic(), timeout)
        return LOCAL

    def wait(self, timeout: float | None, extra: Sequence[Any] = ()) -> PoolEvents:
        """Block until an attempt ends or reports progress, a child dies or gets ready, a deadline
        passes, one of ``extra`` is readable, or ``timeout`` seconds pass (None: no limit).

        ``extra``: objects with ``fileno()`` (connections, sockets) or int fds. An attempt past
        its deadline is killed (TIMED_OUT); one whose child died is CRASHED; lost children are
        replaced here. ``WorkerError`` once MAX_START_FAILURES replacements in a row died
        before they were ready.
        """
        if self._start_failures >= MAX_START_FAILURES:
            raise WorkerError(f"{self._start_failures} new children in a row died before they "
                              f"were ready (last: {self._start_error}); see the worker's log")
        while not self._closed and len(self._children) < self.size:
            self._spawn()
        if self._finished or self._progress:
            timeout = 0.0  # something to hand out already: only poll
        extra = list(extra)
        ready = self._select(self._until_deadline(timeout), extra)
        self._service(ready)
        self._expire(time.monotonic())
        ready_ids = {id(obj) for obj in ready}
        events = PoolEvents(finished=self._finished, progress=self._progress,
                            ready=[obj for obj in extra if id(obj) in ready_ids])
        self._finished, self._progress = [], []
        return events

    def stop_job(self, job_id: int, kind: OutcomeKind, reason: str) -> bool:
        """SIGKILL the child running ``job_id`` and all it started; ``Outcome(kind, error=reason)``
        comes out of the next ``wait()``. False if it is not running, e.g. because it just ended:
        that real outcome then comes out of the next ``wait()`` instead.
        """
        child = self._running(job_id)
        if child is None:
            return False
        self._read(child)  # an attempt that already ended is reported as it ended, not stopped
        if self._running(job_id) is not child:
            return False
        self._end_attempt(child, kind, reason)
        return True

    def close(self) -> None:
        """Kill every child and all it started, and reap it; attempts are dropped. Safe twice."""
        self._closed = True
        for child in self._children:
            child.process.kill()  # all at once first: reaping one by one then costs no waiting
            procgroup.kill_group(child.pid)
        for child in self._children:
            self._reap(child)
        if self._children:  # one sweep for all: every marker that names this worker
            procgroup.kill_leftovers(self.queue_token, worker_pid=os.getpid(),
                                     except_groups={child.pid for child in self._children})
        self._children = []
        self._selector.close()

    # --- internals ---------------------------------------------------------------------------

    def _spawn(self) -> None:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        args = (child_conn, str(self.root), os.getpid(), self.queue_token)
        process = self._ctx.Process(target=child_main, name="notebookjobs-child", daemon=True,
                                    args=args)
        try:
            process.start()
        except OSError as exc:
            parent_conn.close()
            raise WorkerError(f"could not start a child process: {exc}") from exc
        finally:
            child_conn.close()  # only the child holds its end now, so its death reads as EOF
        assert process.pid is not None  # start() succeeded
        self._selector.register(parent_conn, selectors.EVENT_READ, parent_conn)
        self._selector.register(process.sentinel, selectors.EVENT_READ, process.sentinel)
        self._children.append(_Child(process=process, conn=parent_conn, pid=process.pid,
                                     started=time.monotonic(), timeout=START_TIMEOUT_S))

    def _select(self, timeout: float | None, extra: list[Any]) -> list[Any]:
        """The ready objects among the children's pipes and sentinels and ``extra``
        (objects with ``fileno()`` or int fds), after at most ``timeout`` seconds."""
        for obj in extra:
            self._selector.register(obj, selectors.EVENT_READ, obj)
        try:
            return [key.data for key, _ in self._selector.select(timeout)]
        finally:
            for obj in extra:
                self._selector.unregister(obj)

    def _until_deadline(self, timeout: float | None) -> float | None:
        """``timeout``, shortened so that wait() wakes up for the next deadline."""
        until = min((c.deadline for c in self._children), default=math.inf) - time.monotonic()
        if until == math.inf:
            return timeout
        return max(0.0, until) if timeout is None else max(0.0, min(timeout, until))

    def _running(self, job_id: int) -> _Child | None:
        return next((c for c in self._children
                     if c.state is _State.BUSY and c.job_id == job_id), None)

    def _service(self, ready: list[Any]) -> None:
        for child in list(self._children):
            if child.conn in ready or child.process.sentinel in ready:
                self._read(child)

    def _read(self, child: _Child) -> None:
        """Handle what the child sent; a child found dead is reported and dropped."""
        try:
            while child.conn.poll():
                self._handle(child, child.conn.recv())
        except (EOFError, OSError):
            self._lost(child)
            return
        if not child.process.is_alive():
            self._lost(child)

    def _handle(self, child: _Child, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            child.state, child.timeout = _State.IDLE, None
            self._start_failures = 0
        elif child.state is not _State.BUSY or message[1] != child.job_id:
            return  # a late report of an attempt this pool no longer tracks
        elif kind == "progress":
            self._progress.append((message[1], message[2], message[3]))
        elif kind == "done":
            data = message[2]
            self._finished.append((message[1], Outcome(
                kind=OutcomeKind(data["kind"]), result=data["result"], error=data["error"],
                output=data["output"], duration_s=data["duration_s"])))
            child.state, child.job_id = _State.IDLE, None

    def _expire(self, now: float) -> None:
        """Kill the children past their deadline: an attempt too long, or a start that hangs."""
        for child in [c for c in self._children if now >= c.deadline]:
            state, job_id, timeout = child.state, child.job_id, child.timeout
            self._read(child)  # it may have finished, or got ready, at the last moment
            if child not in self._children or (child.state, child.job_id) != (state, job_id):
                continue
            if state is _State.BUSY:
                self._end_attempt(child, OutcomeKind.TIMED_OUT, f"timed out after {timeout:g} s")
            else:
                self._remove(child, kill=True)
                self._start_failed(child, f"it was not ready within {timeout:g} s")

    def _end_attempt(self, child: _Child, kind: OutcomeKind, reason: str, *,
                     kill: bool = True) -> None:
        """Take a busy child out (SIGKILLed if ``kill``) and record its attempt's outcome."""
        assert child.job_id is not None  # busy children always have one
        if kill:
            self._remove(child, kill=True)
        self._finished.append((child.job_id, Outcome(
            kind=kind, error=reason, duration_s=time.monotonic() - child.started)))

    def _lost(self, child: _Child) -> None:
        """A child died on its own: report its attempt as CRASHED (or note a failed start)."""
        how = self._remove(child, kill=False)
        if child.state is _State.BUSY:
            logger.warning("child %s died running job %s: %s", child.pid, child.job_id, how)
            self._end_attempt(child, OutcomeKind.CRASHED,
                              f"the process running the job died: {how}", kill=False)
        elif child.state is _State.STARTING:
            self._start_failed(child, f"it exited before it was ready: {how}")
        else:
            logger.warning("idle child %s died (%s); a new one replaces it", child.pid, how)

    def _start_failed(self, child: _Child, how: str) -> None:
        self._start_failures += 1
        self._start_error = f"child process {child.pid}: {how}"
        logger.error("%s", self._start_error)

    def _remove(self, child: _Child, *, kill: bool) -> str:
        """Take a child out (SIGKILLed first if ``kill``) with all it started; how it ended."""
        self._children.remove(child)
        if kill:
            child.process.kill()  # first: it may not have formed its group yet
        procgroup.kill_group(child.pid)  # before _reap, while child.pid cannot name another
        how = exit_text(self._reap(child))
        procgroup.kill_leftovers(self.queue_token, worker_pid=os.getpid(), child_pid=child.pid,
                                 except_groups={child.pid})
        return how

    def _reap(self, child: _Child) -> int | None:
        """Wait for an exiting (or killed) child; its exit code, None if it would not go."""
        for obj in (child.conn, child.process.sentinel):
            try:
                self._selector.unregister(obj)
            except (KeyError, ValueError):
                pass  # already unregistered
        child.conn.close()
        child.process.join(REAP_TIMEOUT_S)
        if child.process.exitcode is None:  # it closed its pipes but lives on: make it go
            child.process.kill()
            child.process.join(REAP_TIMEOUT_S)
        code = child.process.exitcode
        if code is None:  # e.g. stuck in uninterruptible I/O: it goes when the kernel lets it
            logger.warning("child %s did not exit %g s after SIGKILL", child.pid, REAP_TIMEOUT_S)
        else:
            child.process.close()  # frees its sentinel fd now, not at garbage collection
        return code


def exit_text(code: int | None) -> str:
    """'exit code 3', 'killed by signal SIGSEGV' (multiprocessing gives -N for signal N)."""
    if code is None:
        return "it did not exit"
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:  # real-time signals have no name
        name = str(-code)
    return f"killed by signal {name}"
