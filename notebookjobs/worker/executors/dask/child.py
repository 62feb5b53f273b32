"""The process that runs attempts on a Dask worker (SPEC §18): the pool child's loop
(``child.child_main``) over JSON lines, and the Dask worker's handle on it.

Why a process and not the Dask worker's thread: a running Dask task cannot be stopped
(``Future.cancel()`` leaves the thread running), and a job may start processes of its own.
Here each attempt runs in a child that leads its own process group, so a cancel, a timeout or
the Dask worker's death kills all of it (``procgroup``, as in the local pool). Not
multiprocessing: Dask workers are daemonic processes, which multiprocessing forbids to have
children, and its pipes pickle. ``subprocess`` with two pipes of JSON lines has neither problem.

A child serves one thread of one Dask worker and is reused by that thread's next attempts (so
a 50 ms job does not pay for a Python start), until one has to be stopped.

Run as ``python -m notebookjobs.worker.executors.dask.child READ_FD WRITE_FD ROOT PARENT_PID TOKEN
DATA`` (DATA: the queue's data folder, or an empty argument for none).
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ....errors import WorkerError
from ....model.records import Outcome, OutcomeKind
from ... import procgroup
from ..local.child import child_main
from ..local.children import REAP_TIMEOUT_S, START_TIMEOUT_S, exit_text

logger = logging.getLogger(__name__)

#: seconds between two looks at whether the attempt's Dask task is still wanted (its client,
#: our worker, may be gone: then nobody waits for the attempt, which must not run on)
WATCH_S = 0.5
READ_BYTES = 1 << 16  #: bytes read from the child's pipe at a time
# What AttemptChild._read gives instead of a message: the child is gone (EOF), the attempt's
# deadline passed, its Dask task is no longer wanted.
_GONE: list[Any] = ["gone", None]
_LATE: list[Any] = ["late", None]
_UNWANTED: list[Any] = ["unwanted", None]


class JsonLines:
    """A ``child.Channel`` of JSON lines over two file descriptors (the child's side)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._reader = os.fdopen(read_fd, "rb")
        self._writer = os.fdopen(write_fd, "wb", buffering=0)

    def send(self, obj: Any) -> None:
        self.send_many((obj,))

    def send_many(self, messages: Sequence[Any]) -> None:
        data = b"".join(json.dumps(obj).encode() + b"\n" for obj in messages)
        view = memoryview(data)
        while view:  # an unbuffered write may take part of a long line
            view = view[self._writer.write(view) or 0:]

    def recv(self) -> Any:
        line = self._reader.readline()
        if not line:
            raise EOFError("the Dask worker closed the pipe")
        return json.loads(line)


class AttemptChild:
    """A Dask worker's handle on one child: start it, run attempts on it, kill it.

    Used by one thread (the one that started it: the parent-death signal follows the thread),
    except ``interrupt``, which a stop request calls from the Dask worker's event loop.
    """

    def __init__(self, root: str, token: str, data: str | None) -> None:
        self.root, self.token, self.data = root, token, data
        to_child, self._to_child = os.pipe()
        self._from_child, from_child = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", __name__, str(to_child), str(from_child), root,
                 str(os.getpid()), token, data or ""],
                pass_fds=(to_child, from_child), cwd=root, stdin=subprocess.DEVNULL)
        except OSError as exc:
            for fd in (self._to_child, self._from_child):
                os.close(fd)
            raise WorkerError(f"could not start a process for the attempt: {exc}") from exc
        finally:
            os.close(to_child)
            os.close(from_child)
        self._buffer = b""
        self._lock = threading.Lock()  #: between kill (reaps) and interrupt (signals the pid)
        self.alive = True
        message = self._read(time.monotonic() + START_TIMEOUT_S, lambda: True)
        if message[0] != "ready":
            self.kill()
            raise WorkerError(f"the attempt's process did not start: {self._how()}")

    def run(self, job_id: int, target: str, args: list[Any], kwargs: dict[str, Any], *,
            timeout: float | None, stopped: Callable[[], tuple[OutcomeKind, str] | None],
            wanted: Callable[[], bool], on_started: Callable[[float], None],
            on_progress: Callable[[float | None, str | None], None]) -> Outcome:
        """Run one attempt until it ends, its ``timeout`` passes, ``stopped()`` says why it was
        stopped (a stop request killed the child), or ``wanted()`` turns False. The child's
        messages are ``child``'s: ``on_started(unix time)`` when it begins, ``on_progress``
        for its reports (fraction None: the last line it printed)."""
        started = time.monotonic()
        deadline = started + timeout if timeout else float("inf")
        # One attempt at a time: a Dask thread holds one, so the child never holds a next one.
        data = memoryview(json.dumps(["run", [[job_id, target, args, kwargs]]]).encode() + b"\n")
        try:
            while data:  # large arguments take more than one write of a pipe
                data = data[os.write(self._to_child, data):]
        except OSError:
            pass  # it died: reading says how
        while True:
            message = self._read(deadline, wanted)
            if message[0] == "started" and message[1] == job_id and len(message) == 4:
                on_started(message[2])
            elif message[0] == "progress" and message[1] == job_id and len(message) == 4:
                on_progress(message[2], message[3])
            elif message[0] == "done" and message[1] == job_id:
                try:
                    return Outcome.from_wire(message[2])
                except (LookupError, TypeError, ValueError, AttributeError):  # forged by job code
                    self.kill()
                    return Outcome(kind=OutcomeKind.CRASHED, error="the attempt's process "
                                   f"sent a malformed outcome: {str(message)[:200]}")
            elif message is _GONE:
                return self._ended(started, stopped(), f"the process running the job died: "
                                   f"{self._how()}", OutcomeKind.CRASHED)
            elif message is _LATE:
                return self._ended(started, stopped(), f"timed out after {timeout:g} s",
                                   OutcomeKind.TIMED_OUT)
            elif message is _UNWANTED:
                return self._ended(started, stopped(), "its Dask task was released (nobody "
                                   "waits for it: its client is gone)", OutcomeKind.CANCELLED)

    def _ended(self, started: float, stop: tuple[OutcomeKind, str] | None, error: str,
               kind: OutcomeKind) -> Outcome:
        """The outcome of an attempt that did not say "done": the reason of the stop request
        that killed it if there was one, else ``kind`` and ``error``. The child goes."""
        if stop is not None:
            kind, error = stop
        self.kill()
        return Outcome(kind=kind, error=error, duration_s=time.monotonic() - started)

    def _read(self, deadline: float, wanted: Callable[[], bool]) -> list[Any]:
        """The child's next message; ``_LATE`` at the deadline, ``_UNWANTED`` once the attempt
        is no longer wanted, ``_GONE`` when the child is (EOF, or words not its own)."""
        while b"\n" not in self._buffer:
            now = time.monotonic()
            if now >= deadline:
                return _LATE
            if not wanted():
                return _UNWANTED
            ready, _, _ = select.select([self._from_child], [], [],
                                        min(WATCH_S, deadline - now))
            if ready:
                chunk = os.read(self._from_child, READ_BYTES)
                if not chunk:
                    return _GONE
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError:
            return _GONE
        return message if isinstance(message, list) and len(message) >= 2 else _GONE

    def interrupt(self) -> None:
        """SIGKILL the child and its group, from any thread: the thread running the attempt
        then reads EOF, and ends it (``kill``) with the reason its stop request gave."""
        with self._lock:
            if self.alive:
                self.proc.kill()  # first: it may not have formed its group yet
                procgroup.kill_group(self.proc.pid)  # not reaped yet: the pid is still its own

    def kill(self) -> None:
        """SIGKILL the child's process group and what its jobs started elsewhere; reap it.
        Safe to call twice; only from the thread that runs the attempts."""
        with self._lock:
            if not self.alive:
                return
            self.alive = False
            self.proc.kill()  # first: it may not have formed its group yet
            procgroup.kill_group(self.proc.pid)  # before it is reaped, while the pid is its own
        try:
            self.proc.wait(REAP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            logger.warning("child %s did not exit %g s after SIGKILL", self.proc.pid,
                           REAP_TIMEOUT_S)
        procgroup.kill_leftovers(self.token, worker_pid=os.getpid(), child_pid=self.proc.pid,
                                 except_groups={self.proc.pid})
        self._close_pipes()

    def _how(self) -> str:
        code = self.proc.poll()
        if code is None:
            try:
                code = self.proc.wait(REAP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                return "it stopped answering"
        return exit_text(code)

    def _close_pipes(self) -> None:
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass  # closed already


def main(argv: list[str]) -> None:
    """The child's life (``child.child_main``) over the pipes the Dask worker gave it."""
    read_fd, write_fd, root, parent_pid, token, data = argv
    for fd in (int(read_fd), int(write_fd)):
        # Not for what the jobs start: a process that outlived this one would hold the pipe
        # open, and the Dask worker would never read that the attempt's process died.
        os.set_inheritable(fd, False)
    child_main(JsonLines(int(read_fd), int(write_fd)), root, int(parent_pid), token,
               data or None)


if __name__ == "__main__":
    main(sys.argv[1:])
