"""The worker's side of the socket: JSON lines in, the worker's answer out, one thread per client.

Transport only: what a request means is the worker's business (``Handler.handle``). The socket
is created with mode 0600, so only the user who runs the worker can talk to it.

What a client can rely on (SPEC §14, "Stops and crowds"):

- each complete request line the worker has read gets exactly one reply line, even when the
  worker is stopping: a connection is never closed in the middle of a request;
- a connection closed for any other reason (the worker stops, or the client did not send a
  whole request within REQUEST_TIMEOUT_S) first gets ``wire.CLOSING_LINE``, which says that
  nothing more was read from it;
- a line that is too long or is not JSON gets one error reply, then the connection is closed:
  the rest of such a line is never read as a request, so no stale reply is left behind;
- hundreds of clients connecting at once wait in the listen queue until they are accepted.
"""

from __future__ import annotations

import logging
import math
import os
import select
import socket
import socketserver
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from ..errors import InvalidArgumentsError, NotebookJobsError
from ..model import wire
from ..model.wire import MAX_REQUEST_BYTES

logger = logging.getLogger(__name__)

#: a client has this long to send each whole request, from the end of the reply before it (or
#: from its connection): one that sends nothing, or a byte now and then, is dropped then, and
#: its thread freed. Even a 100,000-job batch (tens of MB) arrives within a second.
REQUEST_TIMEOUT_S = 30.0
SEND_TIMEOUT_S = 30.0  # a client that reads nothing of its reply for this long is dropped
# How often the accept loop checks for shutdown: it bounds how long a stopping worker waits
# for it (a burst worker's exit), at ten cheap wake-ups a second when idle.
SHUTDOWN_POLL_S = 0.1
#: clients that may wait to be accepted; the kernel caps it at net.core.somaxconn. When it is
#: full a client's connect fails with EAGAIN, and the client waits and tries again.
LISTEN_BACKLOG = 1024
_RECV_BYTES = 256 * 1024


class Handler(Protocol):
    def handle(self, operation: str, args: list[Any]) -> Any:
        """Answer one request; raise NotebookJobsError for a refusal the client should see."""


class _FramingError(Exception):
    """The line itself is unusable (too long, not JSON): its reply is the connection's last."""


class _Connection(socketserver.BaseRequestHandler):
    """One client's connection: requests are read and answered one at a time, in order.

    socketserver's buffered ``rfile`` would block in ``readline`` for the whole idle timeout
    when the worker stops, and would read past a line it refuses; this loop waits on the
    socket and the server's stop pipe at once, and keeps its own line buffer.
    """

    server: _Server
    request: socket.socket

    def setup(self) -> None:
        self.buffer = bytearray()
        self.scanned = 0  # bytes of the buffer already searched for a newline
        self.ended = False  # the client has closed its side
        self.stopping = False  # the server is stopping: read nothing more
        self.request.settimeout(SEND_TIMEOUT_S)  # reads wait in poll; this bounds sends

    def handle(self) -> None:
        while True:
            try:
                line = self._next_line()
                if line is None:
                    return
                reply = self._answer(line)
            except _FramingError as exc:
                # Whatever follows a bad line (the rest of an overlong one, say) would be read
                # as requests of their own, with replies the client does not expect: stop here.
                self._send(wire.error_reply(InvalidArgumentsError(str(exc))))
                return
            sent = self._send(reply)
            # Not kept while we wait for the next request (a client keeps its connection for
            # its life): a 900 MB result's status reply stayed in the worker's memory.
            del line, reply
            if not sent:
                return

    def _answer(self, line: bytes) -> bytes:
        try:
            raw = wire.parse(line)
        except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, or nested too deep
            raise _FramingError(f"the request is not a valid JSON line ({type(exc).__name__}: "
                                f"{exc}); send one JSON object per line") from exc
        try:
            if not isinstance(raw, dict) or "op" not in raw:
                raise InvalidArgumentsError(
                    'a request is a JSON object {"op": name, "args": [...]}'
                )
            message = wire.decode(raw)
            result = self.server.handler.handle(message["op"], message.get("args", []))
            return wire.dumps({"ok": result})
        except NotebookJobsError as exc:
            return wire.dumps(wire.error_reply(exc))
        except Exception as exc:  # a bug must not kill the worker: report it to the client
            logger.exception("request failed")
            return wire.dumps(wire.error_reply(
                NotebookJobsError(f"worker error: {type(exc).__name__}: {exc}")))

    def _next_line(self) -> bytes | None:
        """The next complete request line; None when the connection is over (the client closed
        it, or we closed it after CLOSING_LINE). Raises _FramingError for an overlong line.
        The whole line must come within REQUEST_TIMEOUT_S: bytes that trickle in do not earn
        more time (200 clients sending a byte a second each held a thread forever)."""
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        stop = self.server.stop_r
        while True:
            end = self.buffer.find(b"\n", self.scanned)
            if end >= 0:
                if end + 1 > MAX_REQUEST_BYTES:
                    raise _FramingError(wire.too_large(end + 1))
                line = bytes(self.buffer[:end + 1])
                del self.buffer[:end + 1]
                self.scanned = 0
                return line
            self.scanned = len(self.buffer)
            if len(self.buffer) >= MAX_REQUEST_BYTES:
                raise _FramingError(wire.too_large())
            if self.ended:
                return None
            if self.stopping:
                self._send(wire.CLOSING_LINE)
                return None
            left = deadline - time.monotonic()
            ready = _readable([self.request.fileno(), stop], left) if left > 0 else set()
            if stop in ready:
                # Stopping: the requests that have fully arrived by now are still served; one
                # that has not will not be, and the client learns so from CLOSING_LINE (or from
                # EPIPE if it is still sending) and sends it again, to the file once we are gone.
                self._receive(wait=False)
                self.stopping = True
                continue
            if not ready:  # no whole request in time
                self._send(wire.CLOSING_LINE)
                return None
            self._receive(wait=True)

    def _receive(self, *, wait: bool) -> None:
        """Append what the client sent to the buffer: one read, or (without ``wait``) all that
        has arrived already. Sets ``ended`` when the client has closed the connection."""
        while wait or _readable([self.request.fileno()], 0):
            try:
                chunk = self.request.recv(_RECV_BYTES)
            except OSError:  # reset by the client
                chunk = b""
            if not chunk:
                self.ended = True
                return
            self.buffer += chunk
            if wait or len(self.buffer) >= MAX_REQUEST_BYTES:
                return

    def _send(self, data: bytes | dict) -> bool:
        if isinstance(data, dict):
            data = wire.dumps(data)
        try:
            self.request.sendall(data)
            return True
        except OSError:  # the client left, or read nothing for SEND_TIMEOUT_S
            return False


def _readable(fds: list[int], timeout: float) -> set[int]:
    """Those of ``fds`` ready to read within ``timeout`` seconds. poll, not select: a worker
    serving hundreds of clients has descriptors beyond select's limit of 1024."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    return {fd for fd, _ in poller.poll(max(0, math.ceil(timeout * 1000)))}


class _Server(socketserver.ThreadingUnixStreamServer):
    # Requests in flight finish before the worker closes the database: server_close() joins
    # the connection threads.
    daemon_threads = False
    block_on_close = True
    request_queue_size = LISTEN_BACKLOG
    handler: Handler
    stop_r: int

    def server_close(self) -> None:
        self._turn_away_waiting_clients()
        super().server_close()

    def _turn_away_waiting_clients(self) -> None:
        """Clients still in the listen queue get CLOSING_LINE rather than a reset connection,
        which would leave one that has sent its request unsure whether it was carried out."""
        self.socket.setblocking(False)
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:  # BlockingIOError: nobody is waiting any more
                return
            with conn:
                try:
                    conn.setblocking(False)
                    conn.send(wire.CLOSING_LINE)
                except OSError:
                    pass


class SocketServer:
    """Serves ``handler`` on a Unix socket at ``path`` from a background thread."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        if path.exists() or path.is_symlink():
            path.unlink()  # left by a worker that was killed; we hold the queue lock now
        old_umask = os.umask(0o177)  # the socket file is born 0600: no window with wider rights
        try:
            self._server = _Server(os.fspath(path), _Connection)
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        self._stop_r, self._stop_w = os.pipe()
        self._server.handler = handler
        self._server.stop_r = self._stop_r
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_S},
            name="notebookjobs-server",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop answering: new clients find no socket (and fall back to the file), requests
        already read are answered, every other connection gets CLOSING_LINE and is closed.
        Returns once every connection's thread has ended."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:  # a read-only folder: clients will find nobody listening anyway
            logger.warning("could not remove the socket %s (%s); it stays, unused", self.path, exc)
        self._server.shutdown()
        os.write(self._stop_w, b"x")  # never read: it stays readable for every connection
        self._server.server_close()
        os.close(self._stop_r)
        os.close(self._stop_w)
