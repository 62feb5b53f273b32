"""The worker's side of the socket: JSON lines in, the worker's answer out, one thread per client.

Transport only: what a request means is the worker's business (``Handler.handle``). The socket
is created with mode 0600, so only the user who runs the worker can talk to it.
"""

from __future__ import annotations

import logging
import os
import socket
import socketserver
import threading
from pathlib import Path
from typing import Any, Protocol

from . import wire
from .errors import NotebookJobsError

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024 * 1024  # a bulk dispatch can be large; anything beyond is refused
IDLE_CLIENT_TIMEOUT_S = 30.0  # a client that sends nothing for this long is dropped
# How often the accept loop checks for shutdown: it bounds how long a stopping worker waits
# for it (a burst worker's exit), at ten cheap wake-ups a second when idle.
SHUTDOWN_POLL_S = 0.1


class Handler(Protocol):
    def handle(self, operation: str, args: list[Any]) -> Any:
        """Answer one request; raise NotebookJobsError for a refusal the client should see."""


class _Connection(socketserver.StreamRequestHandler):
    server: "_Server"
    timeout = IDLE_CLIENT_TIMEOUT_S

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections.add(self.request)

    def finish(self) -> None:
        with self.server.lock:
            self.server.connections.discard(self.request)
        super().finish()

    def handle(self) -> None:
        # A client may send several requests on one connection; each line is one request.
        while True:
            try:
                line = self.rfile.readline(MAX_REQUEST_BYTES + 1)
            except (TimeoutError, ConnectionError):
                return
            if not line:
                return
            try:
                if len(line) > MAX_REQUEST_BYTES:
                    raise NotebookJobsError("request too large; dispatch in smaller batches")
                message = wire.loads(line)
                reply = {"ok": self.server.handler.handle(message["op"], list(message.get("args", [])))}
            except NotebookJobsError as exc:
                reply = wire.error_reply(exc)
            except Exception as exc:  # a bug must not kill the worker: report it to the client
                logger.exception("request failed")
                reply = wire.error_reply(NotebookJobsError(f"worker error: {type(exc).__name__}: {exc}"))
            try:
                self.wfile.write(wire.dumps(reply))
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return


class _Server(socketserver.ThreadingUnixStreamServer):
    # Requests in flight finish before the worker closes the database: close() joins them.
    daemon_threads = False
    block_on_close = True
    handler: Handler
    lock: threading.Lock
    connections: set


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
        self._server.handler = handler
        self._server.lock = threading.Lock()
        self._server.connections = set()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_S},
                                        name="notebookjobs-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop answering: new clients find no socket (and fall back to the file), current
        requests finish."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        self._server.shutdown()
        # Clients keep their connections open between requests: end the reading side, so each
        # handler finishes the request it may be serving and then sees the end of its input.
        with self._server.lock:
            for conn in list(self._server.connections):
                try:
                    conn.shutdown(socket.SHUT_RD)
                except OSError:
                    pass
        self._server.server_close()
