"""One child process of the worker's pool, as the pool sees it: the attempts it holds, and how
it is spawned and reaped (what runs inside it is ``child``)."""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from ....errors import WorkerError
from ....model.records import OutcomeKind
from . import start_child
from .pipes import READ_CHUNK, FrameReader, encode, write_all

logger = logging.getLogger(__name__)


START_TIMEOUT_S = 60.0  #: seconds a new child has to say "ready" (a cold disk makes imports slow)
REAP_TIMEOUT_S = 5.0  #: seconds to wait for a killed or exiting child to be reaped


@dataclass(eq=False)
class Attempt:
    job_id: int
    timeout: float | None
    target: str = ""
    #: its target's last attempt in this pool ran under ``pool.SHORT_S`` when it was handed over
    short: bool = False
    started: float | None = None  #: the child's time.monotonic() as it began it
    skipping: bool = False  #: a "skip" was sent
    #: how to end it if it begins after all (a cancel raced the skip); None: let it run
    stop: tuple[OutcomeKind, str] | None = None


@dataclass(eq=False)
class Child:
    """The parent's handle on one child process and the attempts it holds."""

    process: BaseProcess
    conn: Connection
    pid: int  #: kept here: process.pid is unreadable once the process is closed
    spawned: float  #: time.monotonic() when spawned
    ready: bool = False
    #: in the order sent; changed through ``hold``, ``drop`` and ``drop_all`` only
    attempts: deque[Attempt] = field(default_factory=deque)
    unsure: int = 0  #: how many of them are not known short (``pool``'s room for more)
    outbox: list[tuple[int, str, list[Any], dict[str, Any]]] = field(default_factory=list)
    inbox: FrameReader = field(default_factory=FrameReader)  #: its messages, from the bytes read
    _reader: socket.socket | None = None  #: a duplicate of conn's descriptor, for ``receive``

    @property
    def deadline(self) -> float:
        """When it must be stopped: not ready in time, or its attempt past its timeout."""
        if not self.ready:
            return self.spawned + START_TIMEOUT_S
        head = self.attempts[0] if self.attempts else None
        if head is None or head.started is None or head.timeout is None:
            return math.inf
        return head.started + head.timeout

    def waiting_behind(self, started_before: float) -> list[Attempt]:
        """The attempts held behind a running one that began before ``started_before``."""
        head = self.attempts[0] if self.attempts else None
        if head is None or head.started is None or head.started >= started_before:
            return []
        return list(self.attempts)[1:]

    def find(self, job_id: int) -> Attempt | None:
        attempts = self.attempts
        if attempts and attempts[0].job_id == job_id:  # nearly always: they run in order
            return attempts[0]
        return next((a for a in attempts if a.job_id == job_id), None)

    def hold(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        self.unsure += not attempt.short

    def drop(self, attempt: Attempt) -> None:
        self.attempts.remove(attempt)
        self.unsure -= not attempt.short

    def doubt(self, attempt: Attempt) -> None:
        """``attempt`` is no longer taken for short (it runs long)."""
        if attempt.short:
            attempt.short = False
            self.unsure += 1

    def drop_all(self) -> None:
        self.attempts.clear()
        self.unsure = 0

    def send(self, message: tuple[Any, ...]) -> None:
        """One message to the child, in one write (``pipes``); ``OSError`` if it is gone."""
        write_all(self.conn.fileno(), encode((message,)))

    def receive(self) -> tuple[list[tuple[Any, ...]], bool]:
        """The whole messages the child sent since the last call, and whether its end of the
        pipe is closed (it died). Reading them with ``Connection.recv`` cost a poll and two
        reads per message, and in a drain of no-op jobs each of those system calls let another
        thread of the worker take the GIL (pipe reads were 12 % of the worker's time). Here one
        non-blocking read takes what is there (``pipes``). ``OSError`` when the pipe cannot be
        read."""
        if self._reader is None:  # a socket of its own: MSG_DONTWAIT leaves conn blocking
            self._reader = socket.socket(fileno=os.dup(self.conn.fileno()))
        closed, messages = False, []
        while True:
            try:
                chunk = self._reader.recv(READ_CHUNK, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            if not chunk:
                closed = True
                break
            messages += self.inbox.feed(chunk)
            if len(chunk) < READ_CHUNK:
                break
        return messages, closed

    @classmethod
    def spawn(
        cls, ctx: SpawnContext | ForkServerContext, root: Path, queue_token: str,
        data_dir: Path | None
    ) -> Child:
        """A new child process (its "ready" comes later), spawned by the worker or forked by the
        pool's zygote (``ctx``, see ``pool``); ``data_dir``: the queue's data folder (argument
        and result files)."""
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        data = None if data_dir is None else str(data_dir)
        args = (child_conn, str(root), os.getpid(), queue_token, data)
        process = ctx.Process(target=start_child, name="notebookjobs-child", daemon=True, args=args)
        try:
            process.start()
        except (OSError, EOFError) as exc:  # EOFError: the zygote died before it answered
            parent_conn.close()
            raise WorkerError(f"could not start a child process: {exc}") from exc
        finally:
            child_conn.close()  # only the child holds its end now, so its death reads as EOF
        assert process.pid is not None  # start() succeeded
        return cls(process=process, conn=parent_conn, pid=process.pid, spawned=time.monotonic())

    def reap(self) -> int | None:
        """Wait for this exiting (or killed) child; its exit code, None if it would not go."""
        self.conn.close()
        if self._reader is not None:
            self._reader.close()
        self.process.join(REAP_TIMEOUT_S)
        if self.process.exitcode is None:  # it closed its pipes but lives on: make it go
            self.process.kill()
            self.process.join(REAP_TIMEOUT_S)
        code = self.process.exitcode
        if code is None:  # e.g. stuck in uninterruptible I/O: it goes when the kernel lets it
            logger.warning("child %s did not exit %g s after SIGKILL", self.pid, REAP_TIMEOUT_S)
        else:
            self.process.close()  # frees its sentinel fd now, not at garbage collection
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

