"""Every call that depends on the operating system, in one place (SPEC §20).

The lowest layer: it imports nothing of ours but ``errors``, and nothing outside it imports
``fcntl``, ``select.epoll``, ``ctypes`` (for ``prctl`` or the C library), ``resource``, or reads
``/proc`` (``tests/test_system.py`` checks both). What each call becomes where:

| module | Linux | macOS (and the forced portable mode) |
|---|---|---|
| ``files`` | private modes: 0600 files, 0700 folders | the same |
| ``locks`` | ``flock`` | ``flock`` |
| ``durable`` | ``fdatasync`` | ``fcntl(F_FULLFSYNC)`` (forced mode: ``fsync``) |
| ``poller`` | ``selectors``: epoll | ``selectors``: kqueue (forced mode: poll) |
| ``sockets`` | 108-byte ``sun_path`` | 104-byte ``sun_path`` |
| ``processes`` | process groups; ``/proc`` | process groups; psutil |
| ``parent`` | the pipe's EOF; ``PR_SET_PDEATHSIG`` | the pipe's EOF |
| ``stdio`` | ``F_GETPIPE_SZ``; libc's ``fflush`` | the default pipe size; libc's ``fflush`` |

(Linux has no F_FULLFSYNC: the forced mode uses ``fsync``.)

``NOTEBOOKJOBS_PORTABLE=1`` forces the right-hand column on Linux: a testing aid, so that the
path macOS takes runs in this project's tests (``make test`` runs the worker suites a second
time with it). Windows (docs/windows.md): ``import notebookjobs`` works, and starting a worker
raises ``PlatformError`` (``require_worker``).
"""

from __future__ import annotations

import os
import sys

from ..errors import PlatformError

PORTABLE_ENV = "NOTEBOOKJOBS_PORTABLE"  #: "1": use only what macOS has (a testing aid)
LINUX = sys.platform.startswith("linux")
WINDOWS = sys.platform == "win32"


def portable() -> bool:
    """Whether to take the portable path: on every system but Linux, or when forced. Read on
    each call (a dict lookup), so that a test, or a worker's children, see what their
    environment says."""
    return not LINUX or os.environ.get(PORTABLE_ENV) == "1"


def require_worker() -> None:
    """Refuse to start a worker where none can run yet, in one line that says so."""
    if WINDOWS:
        raise PlatformError(
            "Windows is not supported yet: a worker runs on Linux or macOS, or in WSL on this "
            "machine (docs/windows.md says what the port needs)")
