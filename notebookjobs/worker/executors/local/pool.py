"""The worker's pool: N reusable child processes, each running one attempt at a time (and
holding the next one, so it starts it without waiting for the worker; a batch of up to BATCH
while they are all of targets known short).

Not ``concurrent.futures.ProcessPoolExecutor``: it cannot stop a running call, and killing one of
its processes breaks the whole pool. Here the parent SIGKILLs a child to cancel or time out an
attempt, notices one that died (``os._exit``, a segfault), turns either into an ``Outcome`` and
starts a replacement. Each child leads a process group of its own: what its attempts started
dies with it, and with the worker (``procgroup``).

Children are never forked from the worker: it is threaded, and a forked child can inherit a lock
held by another thread (https://github.com/python/cpython/issues/84559). A worker's pool
(``zygote=True``) has them forked by a zygote, multiprocessing's forkserver: one interpreter,
started by the worker (fork and exec) before it imports DuckDB, that imports the child's modules
once and forks each child in a few ms, the replacements too (``zygote`` says how it keeps the
children's process groups, their death with the worker and the environment marker). A new
interpreter per child cost ~0.13 s of CPU each (an interpreter and its imports) at every start.
Otherwise (a pool outside a worker, as the tests make) each child is ``spawn``ed: its parent is
the worker itself, which ``PR_SET_PDEATHSIG`` needs; with the zygote, its parent is the zygote,
which dies with the worker. Children never open the database; what crosses each one's pipe is in
``child``.
"""

from __future__ import annotations

import contextlib
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
from datetime import UTC, datetime
from multiprocessing import forkserver
from multiprocessing.context import ForkServerContext, SpawnContext
from pathlib import Path
from typing import Any

from ....errors import WorkerError
from ....model.records import LOCAL, Outcome, OutcomeKind
from ....system import poller
from ... import procgroup
from . import children
from .children import Attempt, Child, exit_text

logger = logging.getLogger(__name__)

MAX_START_FAILURES = 3  #: replacements in a row that die before "ready": then wait() gives up
#: attempts a child holds at once: the one it runs and the next, sent ahead so that it starts
#: the next without waiting for the worker (who then settles the last one meanwhile)
DEPTH = 2
#: attempts a child holds at once while every one of them is known short (``SHORT_S``): a
#: drain of tiny jobs then crosses to a child several per message, and the worker reads their
#: outcomes several per wake-up (``LOW_WATER``). The bound this sets on a later job of a higher
#: priority: it waits behind at most BATCH - 1 attempts per child, of which all but the last
#: one handed over are of targets whose last attempt ran under SHORT_S (BATCH x SHORT_S in
#: all while they stay short); an attempt not known short makes the child's room
#: DEPTH again, so nothing more is held behind it than today. STEAL_AFTER_S takes back what
#: waits behind one that turns out long.
BATCH = 16
#: an attempt is "short" when the last attempt of its target in this pool ran less than this
SHORT_S = 0.001
#: a child holding a batch is refilled (to BATCH, in one message) once it holds fewer than
#: this; while every child that holds attempts holds at least this many, none can run dry
#: within POLL_S: the worker reads their pipes every POLL_S rather than at each write (one
#: wake-up of the loop per POLL_S for many outcomes, not one per outcome)
LOW_WATER = BATCH // 2
POLL_S = 0.001
#: an attempt waiting behind one that has run longer than this is taken back for an idle child
STEAL_AFTER_S = 0.05
#: the module the zygote preloads (named, never imported here: the worker keeps none of the
#: child's modules, SPEC §13)
ZYGOTE = f"{__package__}.zygote"


@dataclass(frozen=True)
class PoolEvents:
    """What one ``Pool.wait()`` saw; all lists are empty after a timeout or a child got ready."""

    #: (job_id, outcome) of the attempts that ended
    finished: list[tuple[int, Outcome]] = field(default_factory=list)
    #: (job_id, fraction, message) reported by running attempts, oldest first; fraction None:
    #: the message is the last line the attempt printed (it reports no progress itself)
    progress: list[tuple[int, float | None, str | None]] = field(default_factory=list)
    ready: list[Any] = field(default_factory=list)  #: the ``extra`` objects that became ready
    #: (job_id, when, as a UTC datetime) of the attempts that began, in order
    started: list[tuple[int, datetime]] = field(default_factory=list)
    #: attempts handed back without having begun (skipped, or their child died first)
    returned: list[int] = field(default_factory=list)


class Pool:
    """``size`` child processes that run attempts and can be killed one by one.

    Each child holds up to DEPTH attempts, BATCH while all are known short (``free_slots``),
    runs them in order, and says when each begins: ``wait()`` reports ``started``,
    ``finished`` and ``returned`` (handed back unstarted) attempts. Use one Pool from one
    long-lived thread. It is not thread-safe, and Linux sends the parent-death signal when the
    *thread* that spawned a child exits (prctl(2)). Children are spawned in ``start()`` and
    ``wait()`` only.
    """

    def __init__(self, root: Path, size: int, *, queue_token: str | None = None,
                 data_dir: Path | None = None, zygote: bool = False) -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least 1 child; got size={size}")
        self.root = Path(root)  #: the project root; children read its whitelist.yaml per attempt
        #: the queue's data folder: children read argument files and write result files there
        self.data_dir = data_dir
        self.size = size
        #: the queue's name in the children's environment marker; by default this pool's own
        self.queue_token = queue_token or secrets.token_hex(procgroup.TOKEN_CHARS // 2)
        # One forkserver per process (multiprocessing's), started with the environment of that
        # moment: the worker's pool only, once its environment is marked (``procgroup``).
        self._ctx: SpawnContext | ForkServerContext = multiprocessing.get_context("spawn")
        if zygote:
            self._ctx = multiprocessing.get_context("forkserver")
            self._ctx.set_forkserver_preload([ZYGOTE])
        self._children: list[Child] = []
        # Each child's pipe and sentinel stay registered for its life, wait()'s ``extra`` while
        # the same (by id): a poll set per wait() cost ~50 µs an attempt, epoll_ctl per turn ~10.
        self._selector = poller.selector()
        self._extra: dict[int, Any] = {}
        # Events seen outside wait() (stop_job) or while it works; wait() hands them out.
        self._events = PoolEvents()
        self._start_failures, self._start_error, self._closed = 0, "", False
        #: target -> whether its last attempt here ran under SHORT_S (``BATCH``)
        self._short: dict[str, bool] = {}

    def prepare(self) -> None:
        """Get the children on their way, and return at once: with the zygote, start it (it
        imports the child's modules meanwhile; ``spawn`` then forks them), else ``spawn``."""
        if isinstance(self._ctx, ForkServerContext):
            forkserver.ensure_running()
        else:
            self.spawn()

    def spawn(self) -> None:
        """Spawn the children that are missing, and return (``start`` waits for them to be
        ready). With the zygote, this waits for it to have imported the child's modules."""
        while len(self._children) < self.size:
            self._spawn()

    def start(self) -> None:
        """Spawn the children (those ``spawn`` did not) and return once all are ready;
        ``WorkerError`` if one fails."""
        try:
            self.spawn()
            while not self._start_failures and not all(c.ready for c in self._children):
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
        """How many more attempts ``submit()`` takes now (DEPTH per ready child, BATCH for one
        whose attempts are all short)."""
        return sum(max(0, _room(c)) for c in self._children if c.ready)

    def submit(
        self,
        job_id: int,
        target: str,
        args: list[Any],
        kwargs: dict[str, Any],
        timeout: float | None,
    ) -> str:
        """Hand an attempt to the ready child that holds the fewest (it goes with the next
        ``wait()``); ``RuntimeError`` when none has room (see free_slots). Where it runs:
        ``LOCAL``."""
        room = [c for c in self._children if c.ready and _room(c) > 0]
        if not room:
            raise RuntimeError("no room in the pool; submit() only while free_slots() > 0")
        child = min(room, key=lambda c: len(c.attempts))
        child.hold(Attempt(job_id, timeout, target, self._short.get(target, False)))
        child.outbox.append((job_id, target, list(args), dict(kwargs)))
        return LOCAL

    def wait(self, timeout: float | None, extra: Sequence[Any] = ()) -> PoolEvents:
        """Send what was submitted, then block until an attempt begins, ends or reports
        progress, a child dies or gets ready, a deadline passes, one of ``extra`` is readable,
        or ``timeout`` seconds pass (None: no limit).

        ``extra``: objects with ``fileno()`` (connections, sockets) or int fds. An attempt past
        its deadline is killed (TIMED_OUT); one whose child died is CRASHED (and the attempts it
        held unstarted are returned); lost children are replaced here. ``WorkerError`` once
        MAX_START_FAILURES replacements in a row died before they were ready.
        """
        if self._start_failures >= MAX_START_FAILURES:
            raise WorkerError(f"{self._start_failures} new children in a row died before they "
                              f"were ready (last: {self._start_error}); see the worker's log")
        while not self._closed and len(self._children) < self.size:
            self._spawn()
        self.flush()
        pending = self._events
        if pending.finished or pending.progress or pending.started or pending.returned:
            timeout = 0.0  # something to hand out already: only poll
        extra = list(extra)
        if self._fed():
            # No child can run dry before POLL_S: sleep through their writes, then take all
            # they sent in one go (the wake fds in ``extra`` wait as long, as no child could
            # start another attempt sooner anyway).
            time.sleep(min(POLL_S, math.inf if timeout is None else timeout))
            timeout = 0.0
        ready = self._select(self._until_deadline(timeout), extra)
        self._service(ready)
        self._expire(time.monotonic())
        self._steal()
        ready_ids = {id(obj) for obj in ready}
        events = self._events
        self._events = PoolEvents()
        return PoolEvents(
            finished=events.finished,
            progress=events.progress,
            started=events.started,
            returned=events.returned,
            ready=[obj for obj in extra if id(obj) in ready_ids],
        )

    def stop_job(self, job_id: int, kind: OutcomeKind, reason: str) -> bool:
        """Stop the attempt of ``job_id``: if it runs, SIGKILL its child and all it started,
        and ``Outcome(kind, error=reason)`` comes out of the next ``wait()`` (the child's other
        attempts are returned); if it waits in a child, it is skipped and returned (or, if it
        begins meanwhile, stopped as above). False if the pool does not hold it, e.g. because
        it just ended: that real outcome then comes out of the next ``wait()`` instead."""
        child = self._holder(job_id)
        if child is None:
            return False
        self._read(child)  # an attempt that already ended is reported as it ended, not stopped
        if self._holder(job_id) is not child:
            return False
        attempt = child.find(job_id)
        assert attempt is not None
        if attempt.started is not None:
            self._end_running(child, kind, reason)
        else:
            self._skip(child, attempt, (kind, reason))
        return True

    def close(self) -> None:
        """Kill every child and all it started, and reap it; attempts are dropped. Safe twice."""
        self._closed = True
        for child in self._children:
            child.process.kill()  # all at once first: reaping one by one then costs no waiting
            procgroup.kill_group(child.pid)
        for child in self._children:
            self._reap(child)
        if isinstance(self._ctx, ForkServerContext):
            _stop_zygote()
        if self._children:  # one sweep for all: every marker that names this worker
            procgroup.kill_leftovers(self.queue_token, worker_pid=os.getpid(),
                                     except_groups={child.pid for child in self._children})
        self._children = []
        self._selector.close()

    # --- internals ---------------------------------------------------------------------------

    def _spawn(self) -> None:
        child = Child.spawn(self._ctx, self.root, self.queue_token, self.data_dir)
        self._selector.register(child.conn, selectors.EVENT_READ, child.conn)
        sentinel = child.process.sentinel
        self._selector.register(sentinel, selectors.EVENT_READ, sentinel)
        self._children.append(child)

    def flush(self) -> None:
        """Send each child its submitted attempts, all in one message."""
        for child in self._children:
            if child.outbox:
                outbox, child.outbox = child.outbox, []
                try:
                    child.send(("run", outbox))
                except OSError:  # it died since the last wait(): _read reports its attempts
                    logger.debug("child %s died before it got its attempts", child.pid)

    def _fed(self) -> bool:
        """Whether every child that holds attempts holds at least LOW_WATER (and one does)."""
        held = [len(c.attempts) for c in self._children if c.attempts]
        return bool(held) and min(held) >= LOW_WATER

    def _select(self, timeout: float | None, extra: list[Any]) -> list[Any]:
        """The ready ones of the children's pipes and sentinels and ``extra`` (things with
        ``fileno()``, or fds), after at most ``timeout`` seconds."""
        if [id(obj) for obj in extra] != list(self._extra):
            for obj in self._extra.values():
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(obj)
            self._extra = {id(obj): obj for obj in extra}
            for obj in extra:
                self._selector.register(obj, selectors.EVENT_READ, obj)
        return [key.data for key, _ in self._selector.select(timeout)]

    def _until_deadline(self, timeout: float | None) -> float | None:
        """``timeout``, shortened so that wait() wakes up for the next deadline."""
        until = min((c.deadline for c in self._children), default=math.inf) - time.monotonic()
        if until == math.inf:
            return timeout
        return max(0.0, until) if timeout is None else max(0.0, min(timeout, until))

    def _holder(self, job_id: int) -> Child | None:
        return next((c for c in self._children if c.find(job_id) is not None), None)

    def _service(self, ready: list[Any]) -> None:
        for child in list(self._children):
            if child.process.sentinel in ready:
                self._read(child)
            elif child.conn in ready:
                self._read(child, died=False)

    def _read(self, child: Child, *, died: bool | None = None) -> None:
        """Handle what the child sent; a child found dead is reported and dropped. ``died``:
        whether it is known to be dead; None to ask (a job may hold the pipe open after its
        child died, so its end may not read as closed)."""
        try:
            messages, closed = child.receive()
            for message in messages:
                self._handle(child, message)
        except OSError:
            self._lost(child)
            return
        except Exception as exc:  # whatever the bytes make the reading raise
            # Not our framing, or not our messages: job code wrote into its child's pipe (it
            # inherits the descriptor). Nothing more that child says can be trusted: its
            # attempt fails alone, and the worker goes on with a new child.
            self._garbled(child, exc)
            return
        if closed or died or (died is None and not child.process.is_alive()):
            self._lost(child)

    def _garbled(self, child: Child, exc: Exception) -> None:
        """A child's pipe carried what is not a message of ``child``'s: it is stopped with all
        it started, its running attempt CRASHED, the others returned."""
        why = (f"the job wrote into the pipe between its process and the worker, which the "
               f"worker could not read ({type(exc).__name__}: {exc}); the process was stopped")
        logger.warning("child %s: %s", child.pid, why)
        if not child.ready:
            self._remove(child, kill=True)
            self._start_failed(child, why)
        else:
            self._end_running(child, OutcomeKind.CRASHED, why)

    def _handle(self, child: Child, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            child.ready = True
            self._start_failures = 0
            return
        attempt = child.find(message[1])
        if attempt is None:
            return  # a late report of an attempt this pool no longer tracks
        if kind == "started":
            # The child's own stamp: the worker reads it up to POLL_S late, and a timeout
            # counted from the read would run that much long (``child`` on the clock).
            attempt.started = message[3]
            if attempt.stop is not None:  # cancelled while it waited: it must not run on
                self._end_running(child, *attempt.stop)
            else:
                attempt.skipping = False
                began = datetime.fromtimestamp(message[2], UTC)
                self._events.started.append((attempt.job_id, began))
        elif kind == "progress":
            self._events.progress.append((message[1], message[2], message[3]))
        elif kind == "done":
            child.drop(attempt)
            outcome = Outcome.from_wire(message[2])
            self._short[attempt.target] = (outcome.duration_s or 0.0) < SHORT_S
            self._events.finished.append((message[1], outcome))
        elif kind == "skipped":
            child.drop(attempt)
            self._events.returned.append(attempt.job_id)

    def _skip(self, child: Child, attempt: Attempt, stop: tuple[OutcomeKind, str] | None) -> None:
        """Ask the child not to start a waiting attempt (``stop``: how to end it should it
        begin all the same; None to let it run then)."""
        attempt.stop = stop or attempt.stop
        if attempt.skipping:
            return
        attempt.skipping = True
        if any(job_id == attempt.job_id for job_id, *_ in child.outbox):  # not even sent yet
            child.outbox = [a for a in child.outbox if a[0] != attempt.job_id]
            child.drop(attempt)
            self._events.returned.append(attempt.job_id)
            return
        try:
            child.send(("skip", attempt.job_id))
        except OSError:
            pass  # it died: _read returns its attempts

    def _steal(self) -> None:
        """Take waiting attempts back from children busy with a long one, for idle children
        (the loop hands them out again, best first): a slow job delays no other by more than
        STEAL_AFTER_S. An attempt taken for short that runs that long is short no more: its
        child takes no more attempts behind it, nor is its target batched again until one of
        its attempts ends short."""
        now = time.monotonic()
        for child in self._children:
            head = child.attempts[0] if child.attempts else None
            if (head is not None and head.short and head.started is not None
                    and head.started < now - STEAL_AFTER_S):
                child.doubt(head)
                self._short[head.target] = False
        idle = sum(1 for c in self._children if c.ready and not c.attempts)
        if not idle:
            return
        for child in self._children:
            for attempt in child.waiting_behind(now - STEAL_AFTER_S):
                if idle and not attempt.skipping:
                    self._skip(child, attempt, None)
                    idle -= 1

    def _expire(self, now: float) -> None:
        """Kill the children past their deadline: an attempt too long, or a start that hangs."""
        for child in [c for c in self._children if now >= c.deadline]:
            head = child.attempts[0] if child.attempts else None
            self._read(child)  # it may have finished, or got ready, at the last moment
            if child not in self._children or now < child.deadline:
                continue
            if not child.ready:
                self._remove(child, kill=True)
                self._start_failed(child, f"it was not ready within {children.START_TIMEOUT_S:g} s")
            elif head is not None and head.timeout is not None:
                self._end_running(
                    child, OutcomeKind.TIMED_OUT, f"timed out after {head.timeout:g} s"
                )

    def _end_running(
        self, child: Child, kind: OutcomeKind, reason: str, *, kill: bool = True
    ) -> None:
        """Take a child out (SIGKILLed with all it started, if ``kill``): its running attempt
        ends as ``kind``, the attempts it held unstarted are returned."""
        if kill:
            self._remove(child, kill=True)
        for attempt in child.attempts:
            if attempt.started is not None:
                self._events.finished.append(
                    (
                        attempt.job_id,
                        Outcome(
                            kind=kind, error=reason, duration_s=time.monotonic() - attempt.started
                        ),
                    )
                )
            else:
                self._events.returned.append(attempt.job_id)
        child.drop_all()

    def _lost(self, child: Child) -> None:
        """A child died on its own: its running attempt is CRASHED (or its start failed)."""
        how = self._remove(child, kill=False)
        if not child.ready:
            self._start_failed(child, f"it exited before it was ready: {how}")
        elif any(a.started is not None for a in child.attempts):
            running = next(a for a in child.attempts if a.started is not None)
            logger.warning("child %s died running job %s: %s", child.pid, running.job_id, how)
            self._end_running(
                child, OutcomeKind.CRASHED, f"the process running the job died: {how}", kill=False
            )
        else:
            logger.warning("child %s died (%s); a new one replaces it", child.pid, how)
            self._end_running(child, OutcomeKind.CRASHED, how, kill=False)  # returns them all

    def _start_failed(self, child: Child, how: str) -> None:
        self._start_failures += 1
        self._start_error = f"child process {child.pid}: {how}"
        logger.error("%s", self._start_error)

    def _remove(self, child: Child, *, kill: bool) -> str:
        """Take a child out (SIGKILLed first if ``kill``) with all it started; how it ended."""
        self._children.remove(child)
        if kill:
            child.process.kill()  # first: it may not have formed its group yet
        procgroup.kill_group(child.pid)  # before _reap, while child.pid cannot name another
        how = exit_text(self._reap(child))
        procgroup.kill_leftovers(
            self.queue_token, worker_pid=os.getpid(), child_pid=child.pid, except_groups={child.pid}
        )
        return how

    def _reap(self, child: Child) -> int | None:
        """Wait for an exiting (or killed) child; its exit code, None if it would not go."""
        for obj in (child.conn, child.process.sentinel):
            try:
                self._selector.unregister(obj)
            except (KeyError, ValueError):
                pass  # already unregistered
        return child.reap()


def _stop_zygote() -> None:
    """Kill multiprocessing's forkserver, this process's one, and forget it (a later pool
    starts another). Killed, not asked: it would wait for a job's process that kept its pipe.
    Its pid and ``_stop`` are private: the module has no public way to stop it."""
    server: Any = forkserver._forkserver  # its private parts are not in the stubs
    pid = server._forkserver_pid
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    try:
        server._stop()  # closes its pipe, reaps it, removes its socket
    except ChildProcessError:  # reaped already (ensure_running found it dead)
        server._forkserver_pid = None


def _room(child: Child) -> int:
    """How many more attempts ``child`` may hold: up to BATCH while it holds attempts and all
    are short, and then only once it holds fewer than LOW_WATER, or while a refill is being
    made (its outbox is not sent yet): a refill is several attempts in one message, for which
    the child's reader thread wakes once; else up to DEPTH (negative when it holds more: it
    takes none)."""
    held = len(child.attempts)
    if held and not child.unsure:
        return BATCH - held if held < LOW_WATER or child.outbox else 0
    return DEPTH - held
