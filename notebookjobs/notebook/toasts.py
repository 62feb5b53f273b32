"""JupyterLab notifications (toasts) when jobs dispatched from this notebook end (SPEC §15).

``handle.dispatched`` hands every job this kernel dispatches to ``follow``; the live follower
(``live.FOLLOWER``) calls back when one ends, and a toast says which job ended and how:
completed (with its time), failed (with its error's last line), cancelled. ``nj.notify(False)``
turns them off for this kernel, ``nj.notify()`` on again.

One toast per batch: jobs that end close together (a ``dispatch_many``, the dashboard's
*Retry failed*) make one notification, not one each: endings are gathered until none came for
QUIET_S, or for MAX_GATHER_S at the most (``Batch``), then one toast says how many ended and
how, and names the failed ones with their error. Failures are kept: a batch with one stays on
screen until it is closed, where the others close themselves (and every notification stays in
Lab's list of notifications). A toast per job stacked five deep over the dashboard.

The toast is JupyterLab's own notification (its ``apputils:notify`` command), run through
ipylab (``pip install notebookjobs[lab]``), a maintained widget library that gives a kernel
JupyterLab's command registry. Without ipylab, outside a Jupyter kernel, or in a Voila page
(no JupyterLab there to show them: the page's own rows show the jobs end), nothing is shown.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from . import live
from .display import between, seconds_text

logger = logging.getLogger(__name__)

NOTIFY_COMMAND = "apputils:notify"  #: JupyterLab's command that shows a notification
AUTO_CLOSE_MS = 8000  #: a toast closes itself after this long (a failure stays until closed)
#: a batch of endings is shown once none came for this long (the follower reads every 0.5 s;
#: the jobs of one dispatch rarely end further apart than this)
QUIET_S = 2.0
MAX_GATHER_S = 15.0  #: ... or this long after its first ending, while jobs keep ending
#: jobs followed at most for notifications: a bulk dispatch beyond it is not followed job by job
MAX_FOLLOWED = 10_000
MAX_TEXT = 300  #: characters of a toast's text (JupyterLab shows 140, its list all of it)
#: set in a Voila kernel (Voila does it for Python kernels): no JupyterLab to notify there
VOILA_ENV = "VOILA_KERNEL_ID"
_TYPES = {"completed": "success", "failed": "error", "cancelled": "warning"}
_ORDER = ("completed", "failed", "cancelled")

#: what a toast shows: its text, its type (success, error, warning) and JupyterLab's
#: ``autoClose`` (milliseconds, or False: until closed)
Toast = tuple[str, str, int | bool]


class Batch:
    """Endings gathered into one toast; the time is passed in (seconds, any clock)."""

    def __init__(self, quiet_s: float = QUIET_S, max_s: float = MAX_GATHER_S) -> None:
        self.quiet_s, self.max_s = quiet_s, max_s
        self.ended: list[dict[str, Any]] = []
        self._first = self._last = 0.0

    def add(self, info: dict[str, Any], now: float) -> None:
        """A job ended at ``now``."""
        if not self.ended:
            self._first = now
        self._last = now
        self.ended.append(info)

    def due(self) -> float | None:
        """When the batch is to be shown; None while it is empty."""
        if not self.ended:
            return None
        return min(self._last + self.quiet_s, self._first + self.max_s)

    def take(self, now: float) -> list[dict[str, Any]]:
        """The endings, once due at ``now`` (and the batch empty again); else []."""
        due = self.due()
        if due is None or now < due:
            return []
        ended, self.ended = self.ended, []
        return ended


def toast(ended: Sequence[dict[str, Any]]) -> Toast:
    """The one toast of a batch of endings (``client.status()`` of each, in the order they
    ended): one job's own line; for several, how many ended and how, and the failed ones by
    id with their error."""
    failed = sorted((info for info in ended if info["status"] == "failed"),
                    key=lambda info: info["id"])
    close: int | bool = False if failed else AUTO_CLOSE_MS
    if len(ended) == 1:
        return message(ended[0]), _TYPES[ended[0]["status"]], close
    counts = Counter(info["status"] for info in ended)
    text = (f"{len(ended)} jobs ended: "
            + ", ".join(f"{counts[status]} {status}" for status in _ORDER if counts[status]))
    if failed:
        errors = list(dict.fromkeys(live.last_line(info["error"]) or "no error text"
                                    for info in failed))
        ids = ", ".join(str(info["id"]) for info in failed)
        text += (f" (job{'s' if len(failed) > 1 else ''} {ids}: {errors[0]}"
                 + (f"; and {len(errors) - 1} other errors" if len(errors) > 1 else "") + ")")
    kind = "error" if failed else "warning" if counts["cancelled"] else "success"
    return text[:MAX_TEXT], kind, close


class _Toasts:
    """This kernel's notifications: whether they are on, where they go, the batch gathering.

    ``show(text, type, auto_close)`` puts a toast on screen (default: JupyterLab's, through
    ipylab); one daemon thread waits for the batch to be due, asleep while nothing ends."""

    def __init__(self, show: Callable[[str, str, int | bool], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, batch: Batch | None = None) -> None:
        self.enabled = True
        self._show = show
        self._clock = clock
        self._frontend: Any = None
        self._cond = threading.Condition()
        self._batch = batch or Batch()
        self._thread: threading.Thread | None = None

    def frontend(self) -> Any:
        """ipylab's JupyterFrontEnd of this kernel (made once, early: its model must exist in
        the page before the first toast is sent); None without ipylab, or in Voila."""
        if self._frontend is None:
            if os.environ.get(VOILA_ENV):
                self._frontend = False  # a Voila page has no JupyterLab (nor ipylab's plugin)
                return None
            try:
                from ipylab import JupyterFrontEnd
            except ImportError:
                logger.info("ipylab is not installed: no notifications "
                            "(pip install 'notebookjobs[lab]')")
                self._frontend = False
            else:
                self._frontend = JupyterFrontEnd()
        return self._frontend or None

    def can_show(self) -> bool:
        """Whether a toast would show (else no job needs following for one)."""
        return self._show is not None or self.frontend() is not None

    def ended(self, info: dict[str, Any]) -> None:
        """A followed job ended: into the batch, shown when the batch is due."""
        with self._cond:
            self._batch.add(info, self._clock())
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="notebookjobs-toasts",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                due = self._batch.due()
                if due is None:
                    self._cond.wait()
                    continue
                left = due - self._clock()
                if left > 0:
                    self._cond.wait(left)  # a new ending moves the time: look again
                    continue
                ended = self._batch.take(self._clock())
            try:
                self.show(ended)
            except Exception:  # the thread's top level: it must neither die nor raise
                logger.exception("showing a notification failed")

    def show(self, ended: list[dict[str, Any]]) -> None:
        """Show the toast of a batch (nothing when notifications are off or cannot show)."""
        if not self.enabled or not ended:
            return
        text, kind, close = toast(ended)
        if self._show is not None:
            self._show(text, kind, close)
            return
        frontend = self.frontend()
        if frontend is not None:
            frontend.commands.execute(NOTIFY_COMMAND, {"message": text, "type": kind,
                                                       "options": {"autoClose": close}})


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
        from ..errors import InvalidArgumentsError

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
    # (the frontend is made now, in the cell that dispatched: the page creates its model)
    if not _TOASTS.can_show():
        return
    for job in jobs:
        live.FOLLOWER.follow(int(job), on_end=_TOASTS.ended)
