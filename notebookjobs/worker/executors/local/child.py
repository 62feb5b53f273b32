"""A pool child's side: run the attempts the worker sends over the pipe, one at a time.

Started by ``pool.Pool`` with multiprocessing's ``spawn``, so this module and what it imports
are all a child loads before its first attempt: nothing of the store or the server (the
children never open the database), no pandas. The pipe carries plain data only:

* worker -> child: ``("run", [(job_id, target, args, kwargs), ...])``: attempts to run in this
  order (several tiny ones travel in one message); ``("skip", job_id)``: do not start it.
* child -> worker: ``("ready", pid)`` once; ``("started", job_id, unix time, monotonic time)``
  as each attempt begins (the worker knows which of its attempts run, and counts a timeout from
  the monotonic stamp: it may read the message up to ``pool.POLL_S`` later; CLOCK_MONOTONIC is
  one clock for all processes of a host on Linux and macOS);
  ``("progress", job_id, fraction, message)``, where ``fraction`` is None for the last line
  the job printed while it reports no progress of its own; ``("done", job_id,
  outcome.to_wire())``; ``("skipped", job_id)`` for an attempt it was told to skip before it
  began. A result kept in a file (a frame, an array, bytes) is written by the child into the
  queue's data folder (``results.keep``): only its type and summary cross the pipe.

A child holds its next attempt while it runs the current one (the worker's ``pool`` sends it
ahead; several, ``pool.BATCH``, while each is of a target known short), so it starts the next
one without waiting for the worker to answer; then the "done" of one and the "started" of the
next go in one write (``pipes``: the framing of the pool's pipe).

The same loop runs the attempts of a Dask worker (``dask_child``), over JSON lines instead.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from ....attempt.capture import BoundedOutput, Capture
from ....attempt.progress import PROGRESS_INTERVAL_S, Reporter, set_reporter, throttled
from ....attempt.runner import execute
from ....config import Settings, load_settings
from ....errors import NotebookJobsError
from ....model.records import Outcome, OutcomeKind
from ....targets.registry import check_sources_once_per
from ... import procgroup
from ...defaults import JOB_UMASK_ENV
from .pipes import Framed

Send = Callable[..., None]  #: one message, or several in one write
_Attempt = tuple[int, str, list[Any], dict[str, Any]]  #: (job_id, target, args, kwargs)


class Channel(Protocol):
    """The child's end of its pipe: a multiprocessing ``Connection``'s descriptor framed by
    ``pipes.Framed`` in the pool, JSON lines on a Dask worker (``dask_child.JsonLines``)."""

    def send(self, obj: Any) -> None:
        """Send one message (a tuple of plain data)."""

    def send_many(self, messages: Sequence[Any]) -> None:
        """Send several messages in one write."""

    def recv(self) -> Any:
        """The next message; ``EOFError`` once the other end is gone."""


class _LastLine:
    """The last line a running job printed, sent as its progress message while it reports no
    progress of its own: a running job then shows what it is doing rather than the word
    "running". A ``capture.Watcher``, called by the thread that reads the attempt's output
    (so it costs nothing to an attempt that prints nothing), at most one line per interval."""

    INTERVAL_S = 2 * PROGRESS_INTERVAL_S  #: seconds between two lines sent

    def __init__(self, send: Send) -> None:
        self._send = send
        self._job_id: int | None = None
        self._sent = ""
        self._sent_at = -math.inf
        self.progress_reported = False  #: the attempt called nj.progress: its message wins

    def watch(self, job_id: int | None) -> None:
        """Follow the attempt of ``job_id`` (None: it ended)."""
        self._job_id, self._sent, self._sent_at = job_id, "", -math.inf
        self.progress_reported = False

    def __call__(self, output: BoundedOutput) -> float | None:
        job_id = self._job_id
        if job_id is None or self.progress_reported:
            return None
        wait = self._sent_at + self.INTERVAL_S - time.monotonic()
        if wait > 0:
            return wait  # called again then, with the line printed last by that time
        line = output.last_line()
        if line and line != self._sent:
            self._sent, self._sent_at = line, time.monotonic()
            self._send(("progress", job_id, None, line))
        return None


class _Whitelist:
    """whitelist.yaml as read for the attempts of one "run" message: its file is looked at (a
    ``stat``, and read when it changed) once per message, not per attempt (cProfile of a
    child in a drain of no-op jobs: ~3 µs an attempt). Each attempt is still resolved against
    it where it runs (SPEC §14), with the file as it was when the first attempt of its message
    began (a batch of short attempts: a few ms earlier at most); the worker looked at it as it
    handed the attempt out. The job modules' source files likewise
    (``registry.check_sources_once_per``): an edit of one applies from the next message."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._batches = itertools.count()  #: numbers the "run" messages as they arrive
        self._batch = -1
        self._settings: Settings | None = None

    def numbered(self, attempts: list[_Attempt]) -> list[tuple[int, _Attempt]]:
        """The attempts of a "run" message that just arrived, each with its number."""
        batch = next(self._batches)
        return [(batch, attempt) for attempt in attempts]

    def settings(self, batch: int) -> Settings:
        """The settings for an attempt of message ``batch``; ``NotebookJobsError`` while the
        file is unreadable or invalid (read again for the next attempt)."""
        if batch != self._batch or self._settings is None:
            self._settings = None
            check_sources_once_per(batch)
            self._settings = load_settings(self._root)
            self._batch = batch
        return self._settings


@dataclass(frozen=True)
class _Context:
    """What every attempt of this child shares."""

    send: Send
    root: Path
    whitelist: _Whitelist
    data: Path | None  #: the queue's data folder (argument and result files)
    last_line: _LastLine
    capture: Capture  #: fds 1 and 2 as the running attempt's output


def child_main(conn: Channel | Connection, root: str, parent_pid: int, queue_token: str,
               data_dir: str | None = None) -> None:
    """A child's life: run the attempts the parent sends until the pipe closes. ``data_dir``:
    the queue's data folder (argument and result files)."""
    procgroup.enter_child(queue_token, parent_pid)  # before "ready": jobs start in its group
    channel: Channel = Framed(conn) if isinstance(conn, Connection) else conn
    # The worker runs with umask 077 so its own files are private; job code gets back the
    # umask the worker was started with, so the files a job writes are as the user expects.
    job_umask = os.environ.pop(JOB_UMASK_ENV, None)
    if job_umask is not None and job_umask.isdigit():
        os.umask(int(job_umask))
    # multiprocessing refuses to start processes from a daemonic one. Jobs may want to
    # (multiprocessing.Pool for data work), and the parent kills us anyway.
    multiprocessing.current_process().daemon = False
    lock = threading.Lock()  # job threads may report progress while we send "done"

    def send(*messages: tuple[Any, ...]) -> None:
        with lock:
            if len(messages) == 1:
                channel.send(messages[0])
            else:
                channel.send_many(messages)

    send(("ready", os.getpid()))
    last_line = _LastLine(send)
    # From here on, what anything in this process or its children writes to fds 1 and 2 is
    # the running attempt's output (or nobody's, between attempts), never the worker's log.
    capture = Capture(watcher=last_line)
    capture.start()
    context = _Context(send, Path(root), _Whitelist(Path(root)),
                       Path(data_dir) if data_dir else None, last_line, capture)
    #: (the number of the "run" message it came in, the attempt)
    waiting: deque[tuple[int, _Attempt]] = deque()
    arrived = threading.Condition()

    def read() -> None:
        # A thread of its own, so a "skip" is answered while an attempt runs, and the worker's
        # death (EOF) is noticed at once, not after the attempt.
        while True:
            try:
                message = channel.recv()
            except (EOFError, OSError):
                # The worker died (close() kills us before it closes the pipe): EOF, or
                # ECONNRESET when it left our last messages unread. The parent watch on every
                # system (system.parent); without PDEATHSIG it is the only one.
                procgroup.kill_own_group(queue_token, parent_pid)
            with arrived:
                if message[0] == "run":
                    waiting.extend(context.whitelist.numbered(message[1]))
                    arrived.notify()
                elif message[0] == "skip":
                    for held in waiting:
                        if held[1][0] == message[1]:
                            waiting.remove(held)
                            send(("skipped", message[1]))
                            break  # not waiting (it ran, or never came): its outcome says so

    threading.Thread(target=read, name="notebookjobs-child-reader", daemon=True).start()
    # An attempt's "done" waits for the next one's "started" when that one is here already:
    # both go in one write, and the worker wakes once for them. Never while idle.
    done: tuple[Any, ...] | None = None
    while True:
        with arrived:
            held = waiting.popleft() if waiting else None
        if held is None:
            if done is not None:
                send(done)
                done = None
            with arrived:
                while not waiting:
                    arrived.wait()
                held = waiting.popleft()
        done = _run(context, *held, done=done)


def _run(context: _Context, batch: int, attempt: _Attempt, *,
         done: tuple[Any, ...] | None = None) -> tuple[Any, ...]:
    """One attempt (of "run" message ``batch``), from "started" (sent after ``done``, the
    previous attempt's "done" message, in one write) to the "done" message it returns."""
    job_id, target, args, kwargs = attempt
    send, last_line = context.send, context.last_line
    started = ("started", job_id, time.time(), time.monotonic())
    if done is None:
        send(started)
    else:
        send(done, started)
    # At most one report per PROGRESS_INTERVAL_S, so a tight loop cannot flood the pipe.
    set_reporter(throttled(_progress_sender(send, job_id, last_line)))
    last_line.watch(job_id)
    try:
        # Jobs run in the project root, whoever started the worker and from where (SPEC §12): a
        # relative path means the same from a notebook, the CLI and the dashboard. Before every
        # attempt, as the previous one may have changed directory.
        os.chdir(context.root)
        outcome = execute(context.whitelist.settings(batch), target, args, kwargs, job_id=job_id,
                          data_dir=context.data, capture=context.capture)
    except NotebookJobsError as exc:  # whitelist.yaml unreadable or invalid right now:
        # not the job's fault; the worker waits for a valid file and runs it then
        outcome = Outcome(kind=OutcomeKind.DEFERRED, error=f"not started: {exc}")
    except OSError as exc:  # the root itself is gone: the attempt cannot start
        outcome = Outcome(kind=OutcomeKind.FAILED, duration_s=0.0,
                          error=f"not started: cannot enter the project root {context.root}: {exc}")
    finally:
        set_reporter(None)
        last_line.watch(None)
    return ("done", job_id, outcome.to_wire())


def _progress_sender(send: Send, job_id: int, last_line: _LastLine) -> Reporter:
    """The reporter of one attempt: ``job_id`` bound now, as a thread of the job may report
    after the attempt ended (the worker then ignores it)."""
    def report(fraction: float, message: str | None) -> None:
        last_line.progress_reported = True
        send(("progress", job_id, fraction, message))
    return report
