"""Waiting for the queue to change (``client.watch``): how the dashboard is pushed to.

With a worker, one ``watch`` request over its socket waits there until the worker's version of
the queue moves (``worker.changes``): nothing is sent while nothing changes. Without one, the
queue changes only through its files, so their sizes and times are compared every
FILE_POLL_S (a few ``stat`` calls: no request, no DuckDB); a worker that starts ends the wait.

The answer is a token: another token than the one given means "read again". A worker's token
names its socket file too, so a new worker (whose count starts again) never looks unchanged.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..access import remote
from ..access.socketdir import socket_path
from ..config import Settings
from ..errors import WorkerError
from ..journal import Journal
from ..model.validate import MAX_WATCH_S

#: how often the files are compared while no worker runs: a dispatch without a worker shows
#: within this (an os.stat of three files: microseconds)
FILE_POLL_S = 0.5
#: how much longer than the hold a client waits for the worker's answer before giving up
_ANSWER_MARGIN_S = 10.0


def _stamp(path: Path) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "-"
    return f"{st.st_ino}.{st.st_size}.{st.st_mtime_ns}"


def _worker_token(sock: Path, version: int) -> str:
    return f"worker:{_stamp(sock)}:{version}"


def _file_token(settings: Settings) -> str:
    return "file:" + ":".join(_stamp(p) for p in (settings.db_path,
                                                 Journal(settings.db_path).path))


def watch(settings: Settings, seen: str | None, hold: float) -> str:
    """The queue's token once it differs from ``seen`` (at once for None), or after about
    ``hold`` seconds. Raises ``WorkerError`` only when a worker answers nonsense."""
    sock = socket_path(settings)
    deadline = time.monotonic() + hold
    while True:
        if sock.exists():
            left = max(0.0, deadline - time.monotonic())
            version, wait = 0, 0.0  # another worker's token (or the files'): answer at once
            if seen is not None and seen.startswith("worker:"):
                stamp, _, count = seen[len("worker:"):].rpartition(":")
                if stamp == _stamp(sock):
                    version, wait = int(count), min(left, MAX_WATCH_S)
            try:
                now = remote.request(settings, "watch", version, wait, read=True,
                                     timeout=wait + _ANSWER_MARGIN_S)
            except remote.NotServed:
                pass  # it stopped meanwhile: the files tell from now on
            else:
                if not isinstance(now, int):
                    raise WorkerError(f"the worker answered watch with {now!r}, not a count")
                token = _worker_token(sock, now)
                if token != seen or time.monotonic() >= deadline:
                    return token
                continue
        token = _file_token(settings)
        if token != seen or time.monotonic() >= deadline:
            return token
        time.sleep(min(FILE_POLL_S, max(0.0, deadline - time.monotonic())))
