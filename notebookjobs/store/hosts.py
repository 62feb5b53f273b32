"""Short opens of a queue file, attached to a DuckDB instance the process keeps for that file.

A client with no worker running opens the queue file for each call and lets it go after, so
that a worker can start (SPEC §11). A DuckDB instance made for each open cost ~35 ms here (it
builds its catalog of functions), its first statement ~17 ms more and closing it ~7 ms: most
of a 76 ms ``nj.jobs()`` page of 1,000,000 jobs. ATTACH of the file to an in-memory instance
kept for the process costs ~1 ms, and DETACH ~1 ms; DETACH checkpoints and closes the file
as closing an instance did, so a worker may open it right after.

An instance is kept per file, made with the temp folder a file's own instance would use
(``<file>.tmp``, in the private queue folder, for queries that spill); a few idle ones are
kept. A process that forked makes its own: DuckDB's state does not survive a fork.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from .failures import storage_error
from .sql import literal

#: what the queue file is called inside the instance (``USE`` makes it the default, so the
#: store's statements name its tables alone)
ALIAS = "nj_queue"
#: instances kept while no open uses them (a process that uses more queues makes them again)
KEPT_IDLE = 2


class _Host:
    def __init__(self, path: Path) -> None:
        self.conn = duckdb.connect(":memory:", config={"temp_directory": f"{path}.tmp"})
        self.lock = threading.Lock()  # one open of the file at a time in this process
        self.users = 0  # opens that took it and have not given it back (under _registry_lock)
        self.broken = False  # DETACH failed: close the instance, which lets the file go


_hosts: OrderedDict[str, _Host] = OrderedDict()
_registry_lock = threading.Lock()
_pid = os.getpid()


def _take(path: Path) -> _Host:
    global _pid
    key = os.fspath(path)
    with _registry_lock:
        if _pid != os.getpid():  # forked: the parent's instances are not ours to use or close
            _hosts.clear()
            _pid = os.getpid()
        host = _hosts.pop(key, None) or _Host(path)
        _hosts[key] = host  # most recently used last
        host.users += 1
        return host


def _give_back(path: Path, host: _Host) -> None:
    with _registry_lock:
        host.users -= 1
        if host.broken and host.users == 0:
            if _hosts.get(os.fspath(path)) is host:
                del _hosts[os.fspath(path)]
            host.conn.close()
        idle = [key for key, h in _hosts.items() if h.users == 0]
        for key in idle[:max(0, len(idle) - KEPT_IDLE)]:  # the least recently used first
            _hosts.pop(key).conn.close()


@contextmanager
def attached(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection on which the file at ``path`` (created if missing) is the default
    database, detached (checkpointed and closed) at the end; ``StorageError`` if it cannot
    be attached."""
    host = _take(path)
    try:
        with host.lock:
            conn = host.conn
            try:
                conn.execute(f"ATTACH {literal(os.fspath(path))} AS {ALIAS}")
            except duckdb.Error as exc:
                raise storage_error(f"cannot open the queue database {path}", exc) from exc
            try:
                conn.execute(f"USE {ALIAS}")
                yield conn
            finally:
                try:
                    conn.execute("USE memory")
                    conn.execute(f"DETACH {ALIAS}")
                except duckdb.Error:
                    host.broken = True
    finally:
        _give_back(path, host)
