"""Files only their owner can read (SPEC §14): the queue folder 0700; the DB, its WAL, the lock,
the logs and result files 0600, whatever the umask of the process that creates them.

Job arguments, results and tracebacks are in these files, and a shared machine has other users.
Modes are given at creation (``os.open(..., 0o600)``, ``mkdir(0o700)``), not fixed afterwards,
so there is no window with wider rights; files an older version left with wider modes are
narrowed when they are opened.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

FILE_MODE = 0o600  #: the DB, WAL, lock, logs, result files
DIR_MODE = 0o700  #: the queue folder, logs/, the worker's frames folder
PRIVATE_UMASK = 0o077  #: what a process that creates queue files runs under
#: folders we narrow to DIR_MODE even when we did not create them: ours by name
OWN_DIR_NAMES = frozenset({".notebookjobs", "logs"})

_umask_lock = threading.RLock()  # reentrant: a transaction opens the file inside one


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) as a 0700 folder; an existing folder of ours (by name,
    see OWN_DIR_NAMES, or created by us) is narrowed to 0700. Returns ``path``."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True)
    except FileExistsError:
        if path.name in OWN_DIR_NAMES:
            narrow(path, DIR_MODE)
        return path
    narrow(path, DIR_MODE)  # mkdir's mode is masked by the umask: make it exact
    return path


def narrow(path: Path, mode: int) -> None:
    """Take away the rights beyond ``mode`` from a file or folder we own (a no-op otherwise)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if info.st_uid != os.geteuid() or stat.S_ISLNK(info.st_mode):
        return
    if stat.S_IMODE(info.st_mode) & ~mode:
        with contextlib.suppress(OSError):
            os.chmod(path, stat.S_IMODE(info.st_mode) & mode)


def open_private(path: Path, flags: int) -> int:
    """``os.open`` with O_CREAT and mode 0600 (an existing file is narrowed to 0600)."""
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        info = os.fstat(fd)
        if stat.S_IMODE(info.st_mode) & ~FILE_MODE and info.st_uid == os.geteuid():
            os.fchmod(fd, FILE_MODE)
    except OSError:
        pass  # a file we cannot narrow (not ours) is still usable
    return fd


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Run the block with umask 077: DuckDB creates its database and WAL files itself, with
    modes from the umask. The umask belongs to the whole process, so for the block's length
    other threads of this process create files more private than they would: a narrowing,
    never a widening, and the blocks are short (one transaction)."""
    with _umask_lock:
        previous = os.umask(PRIVATE_UMASK)
        try:
            yield
        finally:
            os.umask(previous)
