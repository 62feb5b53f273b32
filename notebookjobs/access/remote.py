"""The socket client: a process's calls to the running worker (SPEC §11, §14).

``RemoteQueue`` carries out the operations of the table (``access.operations``) by sending each
over the worker's Unix socket (JSON lines, ``wire``); ``queue.QueueClient`` decides when to use
it. When the socket fails,
what happened to the request decides (SPEC §14, "Stops and crowds"):

- not taken (no socket; the worker's ``wire.CLOSING_LINE``; EPIPE or ECONNRESET while sending,
  so its final newline never arrived): ``NotServed``, and the caller sends it again by the
  normal path, the socket and then the file once a stopping worker has released it. Never
  lost, never stored twice.
- taken, and the connection ended before a reply (the worker was killed): a read is sent again;
  a write raises ``WorkerError`` saying it may or may not have been carried out.
- any other failure (a timeout, a reply that is not one, an error reply): the connection is
  closed, so the next call cannot read a reply meant for this one.
"""

from __future__ import annotations

import errno
import math
import os
import select
import socket
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import InvalidArgumentsError, WorkerError
from ..model import wire
from ..system import sockets
from .operations import STOP, WORKER_STATUS, Operation, Operations
from .socketdir import socket_path

_FIRST_PAUSE_S = 0.001  # connect retries start fast
_MAX_PAUSE_S = 0.02
CONNECT_TIMEOUT_S = 5.0  #: a worker that accepts but does not answer within this is stuck
#: how long a client waits for room in the worker's queue of connections (full when hundreds
#: of clients connect at the same moment) before it gives up
CONNECT_WAIT_S = 30.0
REPLY_TIMEOUT_S = 300.0  #: the longest a single request may take (a large history frame)
_RECV_BYTES = 256 * 1024


class NotServed(Exception):
    """The worker did not take the request, so it may be sent again by any path: nobody listens
    on the socket (no file, or a stale one left by a killed worker), or the worker closed the
    connection before reading the whole request (it is stopping, or dropped an idle client)."""


class _NoReply(Exception):
    """The connection ended after the whole request was sent and before a reply came: the
    worker may or may not have carried it out (it may have been killed meanwhile)."""


def _readable(sock: socket.socket, timeout: float = 0.0) -> bool:
    # poll, not select: a notebook's process can hold descriptors beyond select's 1024
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(max(0, math.ceil(timeout * 1000))))


def _connect(path: Path) -> socket.socket:
    """A socket connected to the worker at ``path``; ``NotServed`` when nobody listens.

    When the worker's queue of waiting connections is full (hundreds of clients at the same
    moment), a Unix socket refuses at once with EAGAIN: wait and try again, up to
    CONNECT_WAIT_S."""
    if not sockets.unix_sockets():
        raise NotServed()  # Windows: no worker can be reached here (docs/windows.md)
    deadline = time.monotonic() + CONNECT_WAIT_S
    pause = _FIRST_PAUSE_S
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT_S)
        try:
            sock.connect(os.fspath(path))
            return sock
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK):
                raise NotServed() from exc
            if exc.errno != errno.EAGAIN:
                raise WorkerError(f"cannot connect to the worker's socket {path} ({exc}); "
                                  "see logs/worker.log") from exc
            if time.monotonic() >= deadline:
                raise WorkerError(
                    f"the worker at {path} accepted no connection within {CONNECT_WAIT_S:g} s: "
                    "too many clients were waiting for it; try again, and see "
                    "logs/worker.log if it persists") from exc
        time.sleep(pause)
        pause = min(pause * 2, _MAX_PAUSE_S)


class _Link:
    """A connection to the worker, kept for the next request of this thread.

    Connecting and the worker's new handler thread cost about a third of a dispatch, so a
    client keeps its connection after a call that succeeded, and closes it after any failure.
    Between requests nothing is due from the worker but its CLOSING_LINE or an EOF, so a link
    with anything to read is replaced before we send: a request is sent at most once on it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pid = os.getpid()
        self.sock = _connect(path)  # raises NotServed when nobody listens
        self.buffer = bytearray()
        # Links live in a threading.local: when their thread ends, close them then rather than
        # leave them to the garbage collector (and its ResourceWarning).
        self._finalizer = weakref.finalize(self, self.sock.close)

    def usable(self) -> bool:
        if self.pid != os.getpid():
            return False  # inherited through fork: the parent owns it
        return not self.buffer and not _readable(self.sock)

    def close(self) -> None:
        self._finalizer()

    def exchange(self, line: bytes, operation: str, timeout: float) -> dict[str, Any]:
        """Send one request line; its reply, decoded. Raises ``NotServed`` when the worker
        certainly did not carry the request out, ``_NoReply`` when it may have, and
        ``WorkerError`` for a worker that does not answer in time or answers nonsense."""
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(line)
        except (BrokenPipeError, ConnectionResetError) as exc:
            # The request ends with its newline, which the worker never got: not carried out.
            raise NotServed() from exc
        except OSError as exc:  # a timeout: the worker reads nothing
            raise WorkerError(f"could not send {operation!r} to the worker at {self.path} "
                              f"({exc}); it was not carried out; see logs/worker.log") from exc
        try:
            data = self._read_line()
        except TimeoutError as exc:
            raise WorkerError(
                f"the worker at {self.path} did not answer {operation!r} within "
                f"{timeout:g} s; it may still carry it out; see logs/worker.log"
            ) from exc
        except OSError as exc:  # ECONNRESET: the worker went away
            raise _NoReply(f"closed the connection ({exc.strerror})") from exc
        if data is None:
            raise _NoReply("closed the connection")
        try:
            reply = wire.loads(data)
        except (ValueError, RecursionError, InvalidArgumentsError) as exc:
            raise WorkerError(f"the worker at {self.path} answered {operation!r} with a line that "
                              f"is not a valid reply ({exc}); see logs/worker.log") from exc
        if wire.is_closing(reply):
            raise NotServed()
        if not isinstance(reply, dict) or not ("ok" in reply or "error" in reply):
            raise WorkerError(f"the worker at {self.path} answered {operation!r} with "
                              f"{str(reply)[:200]!r}, not a reply; see logs/worker.log")
        return reply

    def _read_line(self) -> bytes | None:
        """The next line from the worker; None at the end of the connection."""
        scanned = 0
        while True:
            end = self.buffer.find(b"\n", scanned)
            if end >= 0:
                line = bytes(self.buffer[:end + 1])
                del self.buffer[:end + 1]
                return line
            scanned = len(self.buffer)
            chunk = self.sock.recv(_RECV_BYTES)
            if not chunk:
                return None
            self.buffer += chunk


class _Request:
    """One request for the worker, encoded when first sent: not at all when no worker runs,
    since the file path has no use for the JSON line (and a large batch takes a while)."""

    def __init__(self, operation: str, args: tuple[Any, ...], read: bool) -> None:
        self.operation = operation
        self.args = args
        self.read = read  #: it changes nothing: safe to send again if the worker went away
        self._line: bytes | None = None

    def line(self) -> bytes:
        """The JSON line; ``InvalidArgumentsError`` when it is over the size limit."""
        if self._line is None:
            self._line = wire.request_line(self.operation, self.args)
        return self._line


_links = threading.local()


def _link(path: Path) -> tuple[_Link, bool]:
    """This thread's link to the worker at ``path``, and whether it was made just now."""
    link = getattr(_links, "link", None)
    if link is not None and (link.path != path or not link.usable()):
        _drop(link)
        link = None
    if link is not None:
        return link, False
    link = _Link(path)  # raises NotServed when nobody listens
    _links.link = link
    return link, True


def _drop(link: _Link) -> None:
    if getattr(_links, "link", None) is link:
        _links.link = None
    link.close()


def _exchange(path: Path, req: _Request, timeout: float) -> Any:
    """The worker's answer to one request, re-raising an error reply as its exception.

    ``NotServed`` when the worker did not take it; after ``_NoReply``, a read is
    ``NotServed`` too (safe to send again), a write a ``WorkerError`` that says what to check.
    """
    operation = req.operation
    while True:
        link, fresh = _link(path)
        line = req.line()  # once connected: a request to nobody is never encoded
        try:
            reply = link.exchange(line, operation, timeout)
        except NotServed:
            _drop(link)
            if fresh:
                raise
            continue  # a kept connection the worker closed just now: once more, on a new one
        except _NoReply as exc:
            _drop(link)
            if req.read:
                raise NotServed() from exc
            raise WorkerError(
                f"the worker at {path} {exc} after it got {operation!r} and before it answered "
                "(it may have been stopped or killed): the request may or may not have been "
                "carried out. Check before sending it again: `notebookjobs list` (or nj.jobs()) "
                "shows the stored jobs; see logs/worker.log") from exc
        except BaseException:
            _drop(link)
            raise
        if "error" in reply:
            _drop(link)
            wire.raise_error(reply["error"])
        return reply["ok"]


def request(settings: Settings, operation: str, *args: Any, read: bool = False,
            timeout: float = REPLY_TIMEOUT_S) -> Any:
    """Send one request to the running worker; ``NotServed`` when it did not take it (none
    runs, or it is stopping), ``InvalidArgumentsError`` when it is over the size limit.
    ``read``: the request changes nothing, so it may be sent again after a lost connection."""
    return _exchange(socket_path(settings), _Request(operation, args, read), timeout)


def worker_info(settings: Settings) -> dict[str, Any] | None:
    """The running worker's status dict, or None when no worker answers."""
    try:
        return request(settings, WORKER_STATUS.name, read=True, timeout=CONNECT_TIMEOUT_S)
    except (NotServed, WorkerError):
        return None  # absent, or closing its socket as it stops


class RemoteQueue(Operations):
    """Every operation of the table through the running worker's socket; each call raises
    ``NotServed`` when the worker did not take it (none runs, or it is stopping)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def perform(self, op: Operation[..., Any], *args: Any) -> Any:
        """``op`` sent to the worker, its answer as the operation's reply record. A request that
        writes is not sent again after a lost reply; a query's time limit is the worker's to
        enforce, so its answer may take that much longer (``Operation.waits``)."""
        timeout = REPLY_TIMEOUT_S if op.waits is None else REPLY_TIMEOUT_S + op.waits(*args)
        return op.reply(request(self.settings, op.name, *args, read=not op.writes,
                                timeout=timeout))

    def stop(self) -> None:
        """Ask the worker to stop, as SIGTERM does (it does not wait for it)."""
        self.perform(STOP)
