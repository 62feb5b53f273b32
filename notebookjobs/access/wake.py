"""The worker's wake socket: one datagram tells a running worker that the journal grew.

A client that appended a dispatch to the journal (``journal``) sends one byte to the worker's
datagram socket (``socketdir.wake_path``) and waits for nothing: ~10 µs, where a request on the
stream socket costs a round trip. Whether the send reached a socket also says whether a worker
runs (autostart starts one when none does). A datagram lost under load costs nothing but a
little latency: the worker also looks at the journal's size every time its loop turns.
"""

from __future__ import annotations

import atexit
import errno
import os
import socket
import threading
from pathlib import Path

from ..system import sockets

# One datagram socket per process, kept (making one costs ~10 µs) and shared by its threads:
# sendto on one socket from several threads is safe. Made again after a fork: forgotten in the
# child by a fork hook, not by a getpid() per poke (a system call before the worker is told).
_sender: socket.socket | None = None
_sender_lock = threading.Lock()


def _socket() -> socket.socket:
    global _sender
    sock = _sender
    if sock is not None:
        return sock
    with _sender_lock:
        if _sender is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)
            atexit.register(sock.close)
            _sender = sock
        return _sender


def _forget_after_fork() -> None:
    global _sender, _sender_lock
    _sender, _sender_lock = None, threading.Lock()  # the parent's stays the parent's


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def poke(path: Path) -> bool:
    """Tell the worker listening at ``path`` to read the journal; whether one listens."""
    if not sockets.unix_sockets():
        return False  # Windows: no worker listens here
    sock = _socket()
    try:
        sock.sendto(b"!", os.fspath(path))
    except BlockingIOError:
        return True  # its queue of datagrams is full: it is busy reading the journal already
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK, errno.EPROTOTYPE):
            return False  # nobody listens: no worker runs
        raise
    return True


class WakeSocket:
    """The worker's end: bound at ``path`` (0600 through the worker's umask), readable when
    a client poked it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.exists() or path.is_symlink():
            path.unlink()  # left by a worker that was killed; we hold the queue's lock now
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(os.fspath(path))
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self) -> None:
        """Read every datagram waiting (one journal read serves them all)."""
        try:
            while True:
                self.sock.recv(64)
        except BlockingIOError:
            pass

    def close(self) -> None:
        self.sock.close()
        try:
            self.path.unlink()
        except OSError:
            pass  # already gone, or a read-only folder: a stale socket file refuses datagrams
