"""Who runs a job in the foreground (``notebookjobs run``), and whether that process still does.

A foreground run holds an exclusive ``flock`` on a file of its own for its whole life,
``<queue>.data/runs/<token>.lock`` (0600 in a 0700 folder), and names itself as its job's owner
``run:<host>:<pid>:<token>`` (``Hold``). The lock is its proof of life: the kernel lets it go
when the process ends, however it ends (``kill -9`` included), and nobody else can take it
meanwhile. So a check (``alive``) is not fooled by a pid used again by another process, nor by
an owner written by other means: pid 1 never dies, but it holds no lock of ours. An owner of any
other shape (an older version's ``run:<host>:<pid>``) holds none either, and counts as gone.

The running worker checks the owners of the foreground jobs every few seconds and settles the
jobs of those gone (``worker.main``); a client without a worker checks before it cancels one.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

from ..model.validate import FOREGROUND_OWNER
from ..system import files, locks


def runs_dir(data: Path) -> Path:
    """The folder of the foreground runs' lock files, in the queue's data folder ``data``."""
    return data / "runs"


class Hold:
    """This process's lock as the owner of a foreground run; ``release`` when the run ends."""

    def __init__(self, data: Path) -> None:
        for folder in (data.parent, data):  # each 0700: mkdir(parents=True) uses the umask
            files.private_dir(folder)
        folder = files.private_dir(runs_dir(data))
        token = secrets.token_hex(16)
        self.path = folder / f"{token}.lock"
        self._fd: int | None = files.open_private(self.path, os.O_RDWR | os.O_EXCL)
        locks.try_lock(self._fd)  # a new file (O_EXCL): nobody else has it
        #: the job's owner, ``run:<host>:<pid>:<token>``
        self.owner = f"run:{socket.gethostname()}:{os.getpid()}:{token}"

    def release(self) -> None:
        """The run is over: its lock file goes, and the lock with it."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None


def is_foreground(owner: str | None) -> bool:
    """Whether a running job's owner is a foreground run (of any version), not a worker."""
    return owner is not None and owner.startswith("run:")


def alive(owner: str, data: Path) -> bool:
    """Whether the foreground run ``owner`` still holds its lock in ``data``'s runs folder. A
    lock that nobody holds any more is removed here; an owner that names no lock is gone."""
    found = FOREGROUND_OWNER.match(owner)
    if found is None:
        return False
    path = runs_dir(data) / f"{found['token']}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # a file we cannot open is not ours to judge
    try:
        if locks.try_lock(fd):
            path.unlink(missing_ok=True)  # ours now: its run is over
            return False
        return True
    except OSError:
        return True
    finally:
        os.close(fd)


def describe(owner: str) -> str:
    """The owner in words: "process 4242 on host lab1"."""
    found = FOREGROUND_OWNER.match(owner)
    if found is None:
        return owner
    return f"process {found['pid']} on host {found['host']}"


def still_running(job_id: int, owner: str) -> str:
    """Why a cancel of a foreground job whose owner still runs it does nothing, and what does."""
    return (f"job {job_id} runs in the foreground, in {describe(owner)} (`notebookjobs run`), "
            "which no worker started and none stops: stop it there (Ctrl-C in its terminal)")
