"""Where the worker's socket lives (SPEC §14): next to the queue file, or, when that path is
too long for a Unix socket, in a private folder of this user. Never at a predictable name in a
shared folder, where another user could bind it first and read what clients send.

The worker binds at ``socket_path`` and clients connect there, so a client never connects to a
socket in a folder it has not checked.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import tempfile
from pathlib import Path

from ..config import Settings
from ..errors import ConfigError
from ..system import sockets

ENV_RUNTIME_DIR = "XDG_RUNTIME_DIR"


def socket_path(settings: Settings) -> Path:
    """The worker's socket: next to the DB or, when that path is too long for a socket, in a
    private directory of this user (SPEC §14): never at a predictable name in a shared folder.

    The worker binds here and clients connect here, so a client never connects to a socket in
    a directory it has not checked. Raises ``ConfigError`` when that directory is not safe.
    """
    longest = sockets.path_max()  # 100 bytes on Linux, 96 on macOS
    beside = _beside(settings.db_path)
    if len(os.fsencode(beside)) <= longest:
        return beside
    digest = hashlib.sha256(os.fsencode(settings.db_path)).hexdigest()[:20]
    path = _private_socket_dir() / f"{digest}.sock"
    if len(os.fsencode(path)) > longest:
        raise ConfigError(
            f"the queue {settings.db_path} needs a socket, and neither {beside} nor {path} is "
            f"short enough ({longest} bytes at most); set NOTEBOOKJOBS_DB to a shorter "
            f"path, or {ENV_RUNTIME_DIR} or TMPDIR to a short private folder")
    return path


@functools.lru_cache(maxsize=64)
def _beside(db_path: Path) -> Path:
    """``<queue file>.sock`` (cached: a dispatch asks for it each time; pathlib is slow)."""
    return db_path.with_name(db_path.name + ".sock")


def wake_path(settings: Settings) -> Path:
    """The worker's wake socket (a datagram socket beside its stream socket): a client tells
    the worker it appended to the journal with one datagram, no reply awaited."""
    return _wake_of(socket_path(settings))


@functools.lru_cache(maxsize=64)
def _wake_of(socket: Path) -> Path:
    return socket.with_suffix(".wake")


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
