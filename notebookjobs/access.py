"""How a process reaches the queue (SPEC §11): the one place that chooses the path.

- While a worker runs, it alone opens the DuckDB file; every other process sends its request
  over the worker's Unix socket (JSON lines, see ``wire``).
- Without a worker, a client takes an exclusive ``fcntl.flock`` on a sidecar lock file, opens
  the file for one transaction and closes it. The worker holds that lock for its whole life, so a
  client waiting for the lock also keeps trying the socket: a worker that has just started
  answers there.

Either way the caller names one ``JobStore`` operation and gets the same result.

When the socket fails (SPEC §14, "Stops and crowds"), what happened to the request decides:

- not taken (no socket; the worker's ``wire.CLOSING_LINE``; EPIPE or ECONNRESET while sending,
  so its final newline never arrived): sent again by the normal path, the socket and then the
  file once a stopping worker has released it. Never lost, never stored twice.
- taken, and the connection ended before a reply (the worker was killed): a read is sent again;
  a write raises ``WorkerError`` saying it may or may not have been carried out.
- any other failure (a timeout, a reply that is not one, an error reply): the connection is
  closed, so the next call cannot read a reply meant for this one.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import math
import os
import select
import socket
import stat
import tempfile
import threading
import time
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from . import files, store, wire
from .config import Settings
from .errors import ConfigError, InvalidArgumentsError, StorageError, StoreBusyError, WorkerError

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

_FIRST_BACKOFF_S = 0.001  # lock polling starts fast: most transactions last a few ms
_MAX_BACKOFF_S = 0.02
SOCKET_PATH_MAX = 100  # bytes; sun_path holds 108 with its NUL, keep a margin
CONNECT_TIMEOUT_S = 5.0  # a worker that accepts but does not answer within this is stuck
#: how long a client waits for room in the worker's queue of connections (full when hundreds
#: of clients connect at the same moment) before it gives up
CONNECT_WAIT_S = 30.0
REPLY_TIMEOUT_S = 300.0  # the longest a single request may take (a large history frame)
_RECV_BYTES = 256 * 1024
ENV_RUNTIME_DIR = "XDG_RUNTIME_DIR"

#: store operations a client may ask the worker for (the worker refuses any other name)
REMOTE_OPERATIONS = frozenset({
    "enqueue", "enqueue_batch", "enqueue_running", "restart", "finish", "get", "cancel", "page",
    "all_jobs", "counts", "record_progress", "prune", "query",
})
#: operations that change nothing: safe to send again when the worker went away before answering
_READS = frozenset({"get", "page", "all_jobs", "counts", "query", "worker_status"})


def socket_path(settings: Settings) -> Path:
    """The worker's socket: next to the DB or, when that path is too long for a socket, in a
    private directory of this user (SPEC §14): never at a predictable name in a shared folder.

    The worker binds here and clients connect here, so a client never connects to a socket in
    a directory it has not checked. Raises ``ConfigError`` when that directory is not safe.
    """
    beside = settings.db_path.with_name(settings.db_path.name + ".sock")
    if len(os.fsencode(beside)) <= SOCKET_PATH_MAX:
        return beside
    digest = hashlib.sha256(os.fsencode(settings.db_path)).hexdigest()[:20]
    path = _private_socket_dir() / f"{digest}.sock"
    if len(os.fsencode(path)) > SOCKET_PATH_MAX:
        raise ConfigError(
            f"the queue {settings.db_path} needs a socket, and neither {beside} nor {path} is "
            f"short enough ({SOCKET_PATH_MAX} bytes at most); set NOTEBOOKJOBS_DB to a shorter "
            f"path, or {ENV_RUNTIME_DIR} or TMPDIR to a short private folder")
    return path


def _private_socket_dir() -> Path:
    """``$XDG_RUNTIME_DIR/notebookjobs`` when that variable names a folder of ours, else
    ``notebookjobs-<uid>`` in the temp dir; created 0700, then checked: ours, 0700, not a link."""
    runtime = os.environ.get(ENV_RUNTIME_DIR)
    folder = None
    if runtime and os.path.isabs(runtime):
        try:
            info = os.stat(runtime)
        except OSError:
            info = None
        # Under sudo or su the variable may still name the first user's folder: not ours.
        if info is not None and stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
            folder = Path(runtime) / "notebookjobs"
    if folder is None:
        folder = Path(tempfile.gettempdir()) / f"notebookjobs-{os.getuid()}"
    try:
        # The umask can only narrow 0700, so the folder never has wider rights, not even for a
        # moment; chmod undoes a umask that took our own rights away.
        os.mkdir(folder, 0o700)
        os.chmod(folder, 0o700)
    except FileExistsError:
        pass  # made before, by us or by someone else: the check below decides
    except OSError as exc:
        raise ConfigError(f"cannot create {folder} for the worker's socket ({exc.strerror}); "
                          f"set {ENV_RUNTIME_DIR} or TMPDIR to a folder of yours") from exc
    info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symbolic link"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a directory"
    elif info.st_uid != os.getuid():
        problem = f"belongs to another user (uid {info.st_uid}; you are uid {os.getuid()})"
    elif stat.S_IMODE(info.st_mode) != 0o700:
        problem = f"has mode {stat.S_IMODE(info.st_mode):04o}, not 0700"
    else:
        return folder
    raise ConfigError(
        f"{folder} {problem}, so another user could read or replace the worker's socket in it; "
        f"notebookjobs will not use it. Remove it (if another user made it, ask them or an "
        f"administrator), or point {ENV_RUNTIME_DIR} or TMPDIR to a private folder of yours")


class _NotServed(Exception):
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
    """A socket connected to the worker at ``path``; ``_NotServed`` when nobody listens.

    When the worker's queue of waiting connections is full (hundreds of clients at the same
    moment), a Unix socket refuses at once with EAGAIN: wait and try again, up to
    CONNECT_WAIT_S."""
    deadline = time.monotonic() + CONNECT_WAIT_S
    pause = _FIRST_BACKOFF_S
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT_S)
        try:
            sock.connect(os.fspath(path))
            return sock
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK):
                raise _NotServed() from exc
            if exc.errno != errno.EAGAIN:
                raise WorkerError(f"cannot connect to the worker's socket {path} ({exc}); "
                                  "see logs/worker.log") from exc
            if time.monotonic() >= deadline:
                raise WorkerError(
                    f"the worker at {path} accepted no connection within {CONNECT_WAIT_S:g} s: "
                    "too many clients were waiting for it; try again, and see "
                    "logs/worker.log if it persists") from exc
        time.sleep(pause)
        pause = min(pause * 2, _MAX_BACKOFF_S)


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
        self.sock = _connect(path)  # raises _NotServed when nobody listens
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
        """Send one request line; its reply, decoded. Raises ``_NotServed`` when the worker
        certainly did not carry the request out, ``_NoReply`` when it may have, and
        ``WorkerError`` for a worker that does not answer in time or answers nonsense."""
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(line)
        except (BrokenPipeError, ConnectionResetError) as exc:
            # The request ends with its newline, which the worker never got: not carried out.
            raise _NotServed() from exc
        except OSError as exc:  # a timeout: the worker reads nothing
            raise WorkerError(f"could not send {operation!r} to the worker at {self.path} "
                              f"({exc}); it was not carried out; see logs/worker.log") from exc
        try:
            data = self._read_line()
        except TimeoutError as exc:
            raise WorkerError(f"the worker at {self.path} did not answer {operation!r} within "
                              f"{timeout:g} s; it may still carry it out; see logs/worker.log") from exc
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
            raise _NotServed()
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

    def __init__(self, operation: str, args: tuple) -> None:
        self.operation = operation
        self.args = args
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
    link = _Link(path)  # raises _NotServed when nobody listens
    _links.link = link
    return link, True


def _drop(link: _Link) -> None:
    if getattr(_links, "link", None) is link:
        _links.link = None
    link.close()


def _exchange(path: Path, req: _Request, timeout: float) -> Any:
    """The worker's answer to one request, re-raising an error reply as its exception.

    ``_NotServed`` when the worker did not take it; after ``_NoReply``, a read is
    ``_NotServed`` too (safe to send again), a write a ``WorkerError`` that says what to check.
    """
    operation = req.operation
    while True:
        link, fresh = _link(path)
        line = req.line()  # once connected: a request to nobody is never encoded
        try:
            reply = link.exchange(line, operation, timeout)
        except _NotServed:
            _drop(link)
            if fresh:
                raise
            continue  # a kept connection the worker closed just now: once more, on a new one
        except _NoReply as exc:
            _drop(link)
            if operation in _READS:
                raise _NotServed() from exc
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


def request(settings: Settings, operation: str, *args: Any, timeout: float = REPLY_TIMEOUT_S) -> Any:
    """Send one request to the running worker; ``_NotServed`` when it did not take it (none
    runs, or it is stopping), ``InvalidArgumentsError`` when it is over the size limit."""
    return _exchange(socket_path(settings), _Request(operation, args), timeout)


def worker_info(settings: Settings) -> dict[str, Any] | None:
    """The running worker's status dict, or None when no worker answers."""
    try:
        return request(settings, "worker_status", timeout=CONNECT_TIMEOUT_S)
    except (_NotServed, WorkerError):
        return None  # absent, or closing its socket as it stops


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _open_lock(path: Path) -> int:
    try:
        files.private_dir(path.parent)
        return files.open_private(path, os.O_RDWR)
    except OSError as exc:
        raise StorageError(f"cannot use the queue's folder {path.parent}: {exc.strerror}; set "
                           "NOTEBOOKJOBS_DB to a file in a folder you can write") from exc


def lock_is_free(settings: Settings) -> bool:
    """Whether no process holds the queue's lock right now (a running worker always does)."""
    fd = _open_lock(settings.lock_path)
    try:
        return _try_lock(fd)
    finally:
        os.close(fd)  # releases the lock if we got it


def _busy(settings: Settings) -> StoreBusyError:
    return StoreBusyError(
        f"the queue {settings.db_path} stayed locked by another process for "
        f"{settings.lock_timeout:g} s; wait for it to finish, or raise NOTEBOOKJOBS_LOCK_TIMEOUT")


_LOCKED = object()  # _wait_for_lock's answer when it got the lock
_NOTHING = object()  # a `meanwhile` that found nothing to end the wait


def _wait_for_lock(fd: int, timeout: float, busy: Callable[[], Exception],
                   meanwhile: Callable[[], Any] = lambda: _NOTHING) -> Any:
    """Take the flock on ``fd``, retrying with a growing pause; ``busy()`` is raised after
    ``timeout`` seconds. Between tries ``meanwhile()`` may end the wait with a result (or
    raise); it returns _NOTHING to go on. Returns _LOCKED once the lock is held."""
    deadline = time.monotonic() + timeout
    pause = _FIRST_BACKOFF_S
    while not _try_lock(fd):
        if time.monotonic() >= deadline:
            raise busy()
        time.sleep(pause)
        pause = min(pause * 2, _MAX_BACKOFF_S)
        outcome = meanwhile()
        if outcome is not _NOTHING:
            return outcome
    return _LOCKED


def _ask_worker(settings: Settings, req: _Request) -> Any:
    """The running worker's answer, or _NOTHING when it did not take the request."""
    try:
        return _exchange(socket_path(settings), req, REPLY_TIMEOUT_S)
    except _NotServed:
        return _NOTHING


def call(settings: Settings, operation: str, *args: Any) -> Any:
    """Run one ``JobStore`` operation, through the worker if one runs, else on the locked file.

    A request the worker did not take (it is stopping, say) goes to the file once the worker
    has released it. A running worker's path refuses a request over ``wire.MAX_REQUEST_BYTES``
    with ``InvalidArgumentsError`` before sending it.
    """
    req = _Request(operation, args)
    result = _ask_worker(settings, req)
    if result is _NOTHING:
        fd = _open_lock(settings.lock_path)
        try:
            # A worker that has just started holds the lock: it answers on its socket instead;
            # a stopping one holds it until it has closed the file.
            result = _wait_for_lock(fd, settings.lock_timeout, lambda: _busy(settings),
                                    lambda: _ask_worker(settings, req))
            if result is _LOCKED:
                _links.remote = False
                with store.transaction(settings.db_path) as job_store:
                    return getattr(job_store, operation)(*args)
        finally:
            os.close(fd)  # closing the descriptor releases the lock
    _links.remote = True
    return result


def last_call_reached_worker() -> bool:
    """Whether this thread's last ``call`` was answered by a running worker."""
    return getattr(_links, "remote", False)


def table(settings: Settings, query: str, *args: Any) -> "pa.Table":
    """The Arrow table of a named store query (history, stats, sql), by either path.

    Through the worker, the table comes back as an Arrow IPC file in the worker's private
    temp folder (JSON would cost seconds for a million rows); it is read and deleted here.
    """
    import pyarrow as pa

    result = call(settings, "query", query, *args)
    if isinstance(result, pa.Table):
        return result
    path = Path(result["arrow_file"])
    try:
        with pa.memory_map(os.fspath(path)) as source:
            return pa.ipc.open_file(source).read_all()
    finally:
        path.unlink(missing_ok=True)


@contextmanager
def file_lock(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive flock on ``path``, waiting up to ``timeout`` seconds for it."""
    fd = _open_lock(path)
    try:
        _wait_for_lock(fd, timeout, lambda: StoreBusyError(
            f"{path} stayed locked by another process for {timeout:g} s; wait for it "
            "to finish, or raise NOTEBOOKJOBS_LOCK_TIMEOUT"))
        yield
    finally:
        os.close(fd)


def acquire_for_worker(settings: Settings) -> int:
    """Take the queue's lock for a worker's lifetime; returns the descriptor that holds it.

    Raises ``WorkerError`` naming the running worker when another one owns the queue.
    """
    def refuse_if_a_worker_answers() -> Any:
        info = worker_info(settings)
        if info is not None:
            raise WorkerError(f"a worker is already running for {settings.db_path} "
                              f"(pid {info['pid']}); stop it first with `notebookjobs worker stop`")
        return _NOTHING

    fd = _open_lock(settings.lock_path)
    try:
        _wait_for_lock(fd, settings.lock_timeout, lambda: _busy(settings), refuse_if_a_worker_answers)
    except BaseException:
        os.close(fd)
        raise
    return fd
