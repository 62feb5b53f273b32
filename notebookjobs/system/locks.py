"""File locks whose holder's death frees them: ``flock`` on an open descriptor (Linux, macOS).

The queue's lock, the journal's append lock and a foreground run's proof of life
(``owners``) all need the same three things: a lock tied to an open file description, so the
kernel drops it when the holder ends however it ends (``kill -9`` included); a try that does
not block; and a blocking take. ``flock`` gives all three on every POSIX system we support.
The ``filelock`` library was considered and not taken: it locks by path with its own
reentrant counting and may delete the file on release, while the journal locks the very
descriptor it writes through and ``owners`` tests another process's lock by opening its file.
Windows (docs/windows.md) would use ``msvcrt.locking`` on the first byte here.
"""

from __future__ import annotations

from ..errors import PlatformError

try:
    import fcntl
except ImportError:  # Windows: import notebookjobs works; locking says why it cannot
    fcntl = None  # type: ignore[assignment]


def _fcntl() -> object:
    if fcntl is None:
        raise PlatformError("Windows is not supported yet: the queue's file lock needs flock, "
                            "which this system lacks; use the queue from Linux or macOS, or in "
                            "WSL (docs/windows.md)")
    return fcntl


def try_lock(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` if nobody holds it; whether we got it. Closing ``fd``
    (or the process ending) releases it."""
    _fcntl()
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def lock(fd: int) -> None:
    """Take the exclusive lock on ``fd``, waiting for its holder as long as it takes."""
    _fcntl()
    fcntl.flock(fd, fcntl.LOCK_EX)

