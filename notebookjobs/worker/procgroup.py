"""Stopping an attempt stops all of it (SPEC §14): process groups, the parent-death signal, and
a sweep for what escaped both.

Three layers, each catching what the one before cannot:

1. **The process group.** Each pool child leads a group of its own (``setpgid(0, 0)`` before it
   says "ready"), so every process a job starts is in it unless it leaves. Where the pool kills
   a child (cancel, timeout, ``close()``, a child lost), it kills the group: ``killpg(SIGKILL)``.
2. **The parent watch** (``system.parent``). When the worker dies, even by ``kill -9``, each
   child sees EOF on its pipe to the worker (everywhere), and on Linux gets a signal too
   (``PR_SET_PDEATHSIG``, a speed-up). Either way it kills its whole group, itself included:
   not SIGKILL from the kernel, which killed the child but left its grandchildren running. Both
   run Python code, between bytecodes: a job stuck in C code that holds the GIL delays them,
   and a job that blocks or replaces the signal prevents the signal's. Hence the third layer.
   (Without any of this, an orphan could run on a job that crash recovery re-queues.)
3. **The environment marker.** A worker puts ``NOTEBOOKJOBS_ATTEMPT=<queue token>:<worker pid>``
   in its environment before it spawns children, and each child narrows it to
   ``<queue token>:<worker pid>:<child pid>``; every process they start inherits it, in a group of
   its own or not (``setsid``, ``start_new_session=True``). ``kill_leftovers`` looks for it in
   the environment of every process of the user (``system.processes.marked``): the pool after
   it kills a child's group, a child whose worker died, and a worker at its start, for anything
   a dead worker of its queue left running.

Limits: a process's environment, as the system shows it, is the one it was *exec*'d with. A
process the job forks without exec shows what its child was exec'd with: the worker's marker,
found by the worker-wide sweeps (``close()``, the next start) but not the per-child one (and no
marker at all under a Pool that no worker started). A process that clears its environment and
leaves the group escapes all three.

Every OS-specific call here is in ``system`` (SPEC §20): the same three layers on macOS.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Collection
from pathlib import Path
from typing import NoReturn

from ..system import parent, processes

logger = logging.getLogger(__name__)

MARKER_VAR = "NOTEBOOKJOBS_ATTEMPT"  #: the variable every process of an attempt inherits
TOKEN_CHARS = 12  #: hex digits of the queue token (a sha256 of the DB path)
#: passes of a sweep at most: a process killed in one may have forked while we looked
SWEEP_PASSES = 3


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

kill_group = processes.kill_group  #: SIGKILL a process group (``system.processes``)


def kill_leftovers(token: str, *, worker_pid: int | None = None, child_pid: int | None = None,
                   except_worker_pid: int | None = None, except_groups: Collection[int] = (),
                   quiet: bool = False) -> list[int]:
    """SIGKILL every process of this user whose environment carries queue ``token``'s marker,
    narrowed to one worker's (``worker_pid``) or one child's (``child_pid``), or all workers' but
    ``except_worker_pid``'s; never this process, nor members of ``except_groups`` (groups just
    killed, whose members may not have exited yet). Returns the pids killed, and logs them unless
    ``quiet``: a child sweeps from a signal handler, where a write to the stream the job was
    writing to fails as a reentrant call.

    Reads the environment of this uid's processes only (``system.processes.marked``; on Linux
    about 2 ms per 100 processes); unreadable or vanished ones are skipped. A pid could in
    theory be reused between the read and the kill; that takes a whole cycle of the pid space
    within microseconds, so we do not guard it.
    """
    killed: list[int] = []
    for _ in range(SWEEP_PASSES):
        # killed ones may not have exited yet
        found = [pid for pid, marker in processes.marked(MARKER_VAR)
                 if pid not in killed
                 and _matches(marker, token, worker_pid, child_pid, except_worker_pid)
                 and processes.group_of(pid) not in except_groups]
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


exited = processes.exited  #: whether a process has exited (``system.processes``)


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
    have it kill its group when the worker dies (module docstring). First thing in the child.
    Its parent is the worker, or the pool's zygote (``executors.local.zygote``), which dies
    with the worker: the parent-death signal comes either way."""
    starter = os.getppid()
    try:
        processes.lead_own_group()
    except OSError as exc:  # e.g. it leads a session already: the pool's kills reach it alone
        logger.warning("the child could not get a process group of its own: %s", exc)
    mark_environment(token, parent_pid, os.getpid())
    # The worker decides what stops, not a Ctrl-C sent to a process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent.on_death(lambda: kill_own_group(token, parent_pid))  # Linux; the pipe's EOF anywhere
    if os.getppid() != starter:
        os._exit(1)  # the parent died before the watch was armed: no work will ever come
    # (A worker dead before this child began: its pipe reads EOF at once, ``child``'s reader.)


def kill_own_group(token: str, parent_pid: int) -> NoReturn:
    """Kill what this child's attempts started, then its group and itself."""
    try:
        kill_leftovers(token, worker_pid=parent_pid, child_pid=os.getpid(), quiet=True)
    finally:
        if processes.leads_own_group():  # never the worker's group, should setpgid have failed
            processes.kill_own_group()  # this process included
        os.kill(os.getpid(), signal.SIGKILL)
        os._exit(1)  # not reached: a SIGKILL sent to oneself is acted on before kill() returns
