"""Stopping an attempt stops all of it (SPEC §14): process groups, the parent-death signal, and
a sweep for what escaped both.

Three layers, each catching what the one before cannot:

1. **The process group.** Each pool child leads a group of its own (``setpgid(0, 0)`` before it
   says "ready"), so every process a job starts is in it unless it leaves. Where the pool kills
   a child (cancel, timeout, ``close()``, a child lost), it kills the group: ``killpg(SIGKILL)``.
2. **The parent-death signal.** When the worker dies, even by ``kill -9``, Linux sends each child
   ``PARENT_DEATH_SIGNAL`` (``PR_SET_PDEATHSIG``). Not SIGKILL as before: that killed the child
   but left its grandchildren running. A catchable signal lets the child kill its whole group,
   itself included. Its handler is Python code, and Python runs handlers between bytecodes in
   the main thread: a job stuck in C code that holds the GIL delays it, and a job that blocks or
   replaces the signal prevents it. Hence the third layer. (Without any of this, an orphan could
   run on a job that crash recovery re-queues; elsewhere than Linux, the only sign a child gets
   is EOF on its pipe, between attempts, and it then kills its group.)
3. **The environment marker.** A worker puts ``NOTEBOOKJOBS_ATTEMPT=<queue token>:<worker pid>``
   in its environment before it spawns children, and each child narrows it to
   ``<queue token>:<worker pid>:<child pid>``; every process they start inherits it, in a group of
   its own or not (``setsid``, ``start_new_session=True``). ``kill_leftovers`` scans
   ``/proc/*/environ`` for it: the pool after it kills a child's group, a child whose worker died,
   and a worker at its start, for anything a dead worker of its queue left running.

Limits: ``/proc/PID/environ`` shows the environment a process was *exec*'d with. A process the job
forks without exec shows what its child was exec'd with: the worker's marker, found by the
worker-wide sweeps (``close()``, the next start) but not the per-child one (and no marker at all
under a Pool that no worker started). A process that clears its environment and leaves the group
escapes all three.
Linux only for the parent-death signal and the sweep; elsewhere they do nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any, NoReturn

logger = logging.getLogger(__name__)

MARKER_VAR = "NOTEBOOKJOBS_ATTEMPT"  #: the variable every process of an attempt inherits
TOKEN_CHARS = 12  #: hex digits of the queue token (a sha256 of the DB path)
#: passes of a sweep at most: a process killed in one may have forked while we read /proc
SWEEP_PASSES = 3
_LINUX = sys.platform.startswith("linux")
#: what Linux sends a child when its worker dies: a real-time signal, as jobs hardly use those,
#: and not the lowest ones, which code that does use them tends to take first
PARENT_DEATH_SIGNAL: int | None = signal.SIGRTMIN + 6 if _LINUX else None
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def queue_token(db_path: Path | str) -> str:
    """A short name for one queue, the same for every worker of it: a hash of the DB's path."""
    # Imported here, as only the worker calls this: hashlib maps OpenSSL's libcrypto (~3.5 MB
    # resident), which the pool's children, importing this module, would keep for life (§13).
    import hashlib

    return hashlib.sha256(os.fsencode(Path(db_path).resolve())).hexdigest()[:TOKEN_CHARS]


def mark_environment(token: str, worker_pid: int, child_pid: int | None = None) -> None:
    """Put the marker in ``os.environ``, for every process started from here on to inherit.

    Only while this process has one thread: setenv is not safe against a getenv in another.
    """
    value = f"{token}:{worker_pid}" if child_pid is None else f"{token}:{worker_pid}:{child_pid}"
    os.environ[MARKER_VAR] = value


# --- the parent side -------------------------------------------------------------------------

def kill_group(pgid: int) -> None:
    """SIGKILL process group ``pgid``; nothing if it has no member left (or never formed).

    Call it before reaping the group's leader: until then its pid cannot name another process,
    and while any member lives the kernel keeps that pid reserved as the group's id.
    """
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # every member has exited, or the child died before setpgid


def kill_leftovers(token: str, *, worker_pid: int | None = None, child_pid: int | None = None,
                   except_worker_pid: int | None = None, except_groups: Collection[int] = (),
                   quiet: bool = False) -> list[int]:
    """SIGKILL every process of this user whose environment carries queue ``token``'s marker,
    narrowed to one worker's (``worker_pid``) or one child's (``child_pid``), or all workers' but
    ``except_worker_pid``'s; never this process, nor members of ``except_groups`` (groups just
    killed, whose members may not have exited yet). Returns the pids killed, and logs them unless
    ``quiet``: a child sweeps from a signal handler, where a write to the stream the job was
    writing to fails as a reentrant call.

    Reads ``/proc/*/environ`` of this uid only (about 2 ms per 100 processes); unreadable or
    vanished ones are skipped. A pid could in theory be reused between the read and the kill;
    that takes a whole cycle of the pid space within microseconds, so we do not guard it.
    """
    if not _LINUX:
        return []
    killed: list[int] = []
    for _ in range(SWEEP_PASSES):
        found = [pid for pid, marker in _markers()  # killed ones may not have exited yet
                 if pid not in killed
                 and _matches(marker, token, worker_pid, child_pid, except_worker_pid)
                 and _group(pid) not in except_groups]
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed.append(pid)
        if not found:
            break
    if killed and not quiet:
        logger.warning("killed %d process(es) that jobs started outside their child's process "
                       "group: pids %s", len(killed), killed)
    return killed


def _markers() -> list[tuple[int, str]]:
    """(pid, marker value) of each process of this uid that has one, this process left out."""
    me, uid, key = os.getpid(), os.getuid(), b"\0" + MARKER_VAR.encode() + b"="
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            with open(os.path.join(entry.path, "environ"), "rb") as fh:
                environ = b"\0" + fh.read()  # a zombie's is empty
        except OSError:  # it ended while we looked, or it is not ours to read
            continue
        start = environ.find(key)
        if start >= 0:
            start += len(key)
            end = environ.find(b"\0", start)
            value = environ[start:end] if end >= 0 else environ[start:]
            found.append((int(entry.name), value.decode(errors="replace")))
    return found


def exited(pid: int) -> bool:
    """Whether process ``pid`` has exited: gone, or a zombie nobody reaped (it runs nothing).
    Without /proc (macOS) it cannot tell a zombie from a live process, and says True."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state in (b"Z", b"X")


def _group(pid: int) -> int | None:
    """The process group of ``pid``; None once it has ended."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rpartition(b")")[2].split()[2])
    except (OSError, IndexError, ValueError):
        return None


def _matches(marker: str, token: str, worker_pid: int | None, child_pid: int | None,
             except_worker_pid: int | None) -> bool:
    parts = marker.split(":")
    if parts[0] != token or len(parts) not in (2, 3):
        return False
    worker, child = parts[1], parts[2] if len(parts) == 3 else None
    return ((worker_pid is None or worker == str(worker_pid))
            and (child_pid is None or child == str(child_pid))
            and (except_worker_pid is None or worker != str(except_worker_pid)))


# --- the child side --------------------------------------------------------------------------

def enter_child(token: str, parent_pid: int) -> None:
    """Make this pool child the leader of its own group, mark its environment, ignore SIGINT, and
    have it kill its group when the worker dies (module docstring). First thing in the child."""
    try:
        os.setpgid(0, 0)
    except OSError as exc:  # e.g. it leads a session already: the pool's kills reach it alone
        logger.warning("the child could not get a process group of its own: %s", exc)
    mark_environment(token, parent_pid, os.getpid())
    # The worker decides what stops, not a Ctrl-C sent to a process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if PARENT_DEATH_SIGNAL is not None:
        import ctypes  # here, not at the top: only children need it

        def on_parent_death(signum: int, frame: Any) -> None:
            kill_own_group(token, parent_pid)

        signal.signal(PARENT_DEATH_SIGNAL, on_parent_death)
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, PARENT_DEATH_SIGNAL, 0, 0, 0) != 0:
            logger.warning("prctl(PR_SET_PDEATHSIG) failed: errno %s", ctypes.get_errno())
    if os.getppid() != parent_pid:
        os._exit(1)  # the worker died before prctl took effect: no work will ever come


def kill_own_group(token: str, parent_pid: int) -> NoReturn:
    """Kill what this child's attempts started, then its group and itself."""
    try:
        kill_leftovers(token, worker_pid=parent_pid, child_pid=os.getpid(), quiet=True)
    finally:
        if os.getpgid(0) == os.getpid():  # never the worker's group, should setpgid have failed
            os.killpg(0, signal.SIGKILL)  # this process included
        os.kill(os.getpid(), signal.SIGKILL)
        os._exit(1)  # not reached: a SIGKILL sent to oneself is acted on before kill() returns
