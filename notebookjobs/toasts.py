"""JupyterLab notifications (toasts) when jobs dispatched from this notebook end (SPEC §15).

``handle.dispatched`` hands every job this kernel dispatches to ``follow``; the live follower
(``live.FOLLOWER``) calls back when one ends, and a toast says which job ended and how:
completed (with its time), failed (with its error's last line), cancelled. ``nj.notify(False)``
turns them off for this kernel, ``nj.notify()`` on again.

The toast is JupyterLab's own notification (its ``apputils:notify`` command), run through
ipylab (``pip install notebookjobs[lab]``), a maintained widget library that gives a kernel
JupyterLab's command registry. Without ipylab, or outside a Jupyter kernel, nothing is shown.
When many jobs end within one read (a large ``dispatch_many``), one toast sums them up.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

from . import live
from .dashboard.common import between, seconds_text

logger = logging.getLogger(__name__)

NOTIFY_COMMAND = "apputils:notify"  #: JupyterLab's command that shows a notification
AUTO_CLOSE_MS = 8000  #: a toast closes itself after this long (a failure stays until closed)
MAX_TOASTS_PER_READ = 3  #: more jobs ending between two reads get one toast for all
#: jobs followed at most for notifications: a bulk dispatch beyond it is not followed job by job
MAX_FOLLOWED = 10_000
_TYPES = {"completed": "success", "failed": "error", "cancelled": "warning"}


class _Toasts:
    """This kernel's notifications: whether they are on, the front end, jobs that ended."""

    def __init__(self) -> None:
        self.enabled = True
        self._frontend: Any = None
        self._lock = threading.Lock()
        self._ended: list[dict[str, Any]] = []

    def frontend(self) -> Any:
        """ipylab's JupyterFrontEnd of this kernel (made once, early: its model must exist in
        the page before the first toast is sent); None without ipylab."""
        if self._frontend is None:
            try:
                from ipylab import JupyterFrontEnd
            except ImportError:
                logger.info("ipylab is not installed: no notifications "
                            "(pip install 'notebookjobs[lab]')")
                self._frontend = False
            else:
                self._frontend = JupyterFrontEnd()
        return self._frontend or None

    def ended(self, info: dict[str, Any]) -> None:
        """A followed job ended: toast it now, or with the others that ended in this read."""
        with self._lock:
            self._ended.append(info)
            first = len(self._ended) == 1
        if first:  # the follower calls back for each job of a read in turn: gather them
            threading.Timer(0.05, self.flush).start()

    def flush(self) -> None:
        with self._lock:
            ended, self._ended = self._ended, []
        if not self.enabled or not ended:
            return
        frontend = self.frontend()
        if frontend is None:
            return
        if len(ended) > MAX_TOASTS_PER_READ:
            counts = Counter(info["status"] for info in ended)
            worst = "failed" if counts["failed"] else "cancelled" if counts["cancelled"] else ""
            shown = [(f"{len(ended)} jobs ended: "
                      + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
                      _TYPES.get(worst, "success"))]
        else:
            shown = [(message(info), _TYPES[info["status"]]) for info in ended]
        for text, kind in shown:
            options = {"autoClose": False if kind == "error" else AUTO_CLOSE_MS}
            frontend.commands.execute(NOTIFY_COMMAND,
                                      {"message": text, "type": kind, "options": options})


def message(info: dict[str, Any]) -> str:
    """'Job 7 jobs.sample.slow completed in 3.2 s', '... failed: ValueError: boom', ..."""
    head = f"Job {info['id']} {info['target']}"
    if info["status"] == "completed":
        took = between(info["started_at"], info["finished_at"])
        return f"{head} completed" + ("" if took is None else f" in {seconds_text(took)}")
    if info["status"] == "failed":
        error = live.last_line(info["error"]) or "no error text"
        return f"{head} failed: {error}"[:300]
    return f"{head} was cancelled"


_TOASTS = _Toasts()


def notify(enabled: bool = True) -> None:
    """Turn this notebook's notifications on or off: a toast when a job it dispatched ends
    (completed, failed with its error's last line, cancelled)."""
    if not isinstance(enabled, bool):
        from .errors import InvalidArgumentsError

        raise InvalidArgumentsError(f"nj.notify takes True or False, not {enabled!r}")
    _TOASTS.enabled = enabled


def follow(jobs: Sequence[int]) -> None:
    """Follow jobs this kernel dispatched, for their notifications (see the module)."""
    if not _TOASTS.enabled or not live.in_kernel():
        return
    if len(live.FOLLOWER.following()) + len(jobs) > MAX_FOLLOWED:
        logger.info("not following %d more jobs for notifications: %d are followed already",
                    len(jobs), MAX_FOLLOWED)
        return
    _TOASTS.frontend()  # made now, in the cell that dispatched: the page creates its model
    for job in jobs:
        live.FOLLOWER.follow(int(job), on_end=_TOASTS.ended)
