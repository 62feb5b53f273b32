"""How a process reaches the queue (SPEC §11): the one place that chooses the path.

- While a worker runs, it alone opens the DuckDB file; every other process sends its request
  over the worker's Unix socket (JSON lines, see ``wire``).
- Without a worker, a client takes an exclusive ``fcntl.flock`` on a sidecar lock file, opens
  the file for one transaction and closes it. The worker holds that lock for its whole life, so a
  client waiting for the lock also keeps trying the socket: a worker that has just started
  answers there.

Either way the caller names one ``JobStore`` operation and gets the same result.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import select
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from . import files, store, wire
from .config import Settings
from .errors import StorageError, StoreBusyError, WorkerError

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

_FIRST_BACKOFF_S = 0.001  # lock polling starts fast: most transactions last a few ms
_MAX_BACKOFF_S = 0.02
SOCKET_PATH_MAX = 100  # bytes; sun_path holds 108 with its NUL, keep a margin
CONNECT_TIMEOUT_S = 5.0  # a worker that accepts but does not answer within this is stuck
REPLY_TIMEOUT_S = 300.0  # the longest a single request may take (a large history frame)

#: store operations a client may ask the worker for (the worker refuses any other name)
REMOTE_OPERATIONS = frozenset({
    "enqueue", "enqueue_batch", "enqueue_running", "restart", "finish", "get", "cancel", "page",
    "all_jobs", "counts", "record_progress", "prune", "query",
})


def socket_path(settings: Settings) -> Path:
    """The worker's socket: next to the DB, or in the temp dir when that path is too long."""
    beside = settings.db_path.with_name(settings.db_path.name + ".sock")
    if len(os.fsencode(beside)) <= SOCKET_PATH_MAX:
        return beside
    digest = hashlib.sha256(os.fsencode(settings.db_path)).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"notebookjobs-{digest}.sock"


class _NoWorker(Exception):
    """Nobody listens on the socket (no file, or a stale one left by a killed worker)."""


class _Link:
    """A connection to the worker, kept for the next request of this thread.

    Connecting and the worker's new handler thread cost about a third of a dispatch, so a
    client keeps its connection. The worker drops idle ones; a link whose peer has closed is
    readable (EOF) before we send, so we reconnect then, never after sending: a request is
    sent at most once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pid = os.getpid()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(CONNECT_TIMEOUT_S)
        try:
            self.sock.connect(os.fspath(path))
        except OSError as exc:
            self.sock.close()
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK):
                raise _NoWorker() from exc
            raise
        self.reader = self.sock.makefile("rb")

    def usable(self) -> bool:
        if self.pid != os.getpid():
            return False  # inherited through fork: the parent owns it
        readable, _, _ = select.select([self.sock], [], [], 0)
        return not readable  # nothing is due from the worker between requests, but an EOF

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


_links = threading.local()


def _link(path: Path) -> _Link:
    link = getattr(_links, "link", None)
    if link is not None and (link.path != path or not link.usable()):
        _links.link = None
        link.close()
        link = None
    if link is None:
        link = _Link(path)  # raises _NoWorker when nobody listens
        _links.link = link
    return link


def request(settings: Settings, operation: str, *args: Any, timeout: float = REPLY_TIMEOUT_S) -> Any:
    """Send one request to the running worker; ``_NoWorker`` when none answers."""
    path = socket_path(settings)
    link = _link(path)
    try:
        link.sock.settimeout(timeout)
        link.sock.sendall(wire.dumps({"op": operation, "args": list(args)}))
        line = link.reader.readline()
    except (socket.timeout, ConnectionError, OSError) as exc:
        _links.link = None
        link.close()
        raise WorkerError(f"the worker at {path} did not answer {operation!r} ({exc}); "
                          "see logs/worker.log") from exc
    if not line:
        _links.link = None
        link.close()
        raise WorkerError(f"the worker at {path} closed the connection during {operation!r}; "
                          "see logs/worker.log")
    reply = wire.loads(line)
    if "error" in reply:
        wire.raise_error(reply["error"])
    return reply["ok"]


def worker_info(settings: Settings) -> dict[str, Any] | None:
    """The running worker's status dict, or None when no worker answers."""
    try:
        return request(settings, "worker_status", timeout=CONNECT_TIMEOUT_S)
    except (_NoWorker, WorkerError):
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


def _ask_worker(settings: Settings, operation: str, args: tuple) -> Any:
    """The running worker's answer, or _NOTHING when none listens."""
    try:
        return request(settings, operation, *args)
    except _NoWorker:
        return _NOTHING


def call(settings: Settings, operation: str, *args: Any) -> Any:
    """Run one ``JobStore`` operation, through the worker if one runs, else on the locked file."""
    result = _ask_worker(settings, operation, args)
    if result is _NOTHING:
        fd = _open_lock(settings.lock_path)
        try:
            # A worker that has just started holds the lock: it answers on its socket instead.
            result = _wait_for_lock(fd, settings.lock_timeout, lambda: _busy(settings),
                                    lambda: _ask_worker(settings, operation, args))
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
