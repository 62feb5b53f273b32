"""A job shown live in the notebook that dispatched it (SPEC §15): the line of a ``Job`` and
the one thread of this process that follows jobs until they end.

``mimebundle(job)`` is what a ``Job`` shows as a cell's value: in a Jupyter kernel, an
ipywidgets HTML line (status in its colour, attempts, a progress bar with its message or the
last line the job printed, elapsed time) that ``FOLLOWER`` updates from its thread until the
job ends, and that then keeps showing the final state; elsewhere the same line as text.
``FOLLOWER`` also calls back when a followed job ends (``toasts``). Updating widget traits
from a thread is what the dashboard's refresh does too (see ``dashboard.app``).

CSS classes: ``nj-job-line`` and ``nj-job-line-<id>`` on the widget; inside it,
``span.nj-job-status`` holds the status word (also in ``data-status`` of the line's div).
"""

from __future__ import annotations

import atexit
import html
import logging
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .. import client
from ..errors import NotebookJobsError
from .display import STATUS_COLOURS, between, seconds_text

logger = logging.getLogger(__name__)

POLL_S = 0.5  #: seconds between two reads of the followed jobs
FINAL = ("completed", "failed", "cancelled")


def last_line(text: str | None) -> str:
    """The last line of ``text`` with something on it ('' for none): an error's summary."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _parts(info: dict[str, Any], now: datetime) -> list[str]:
    """The line's pieces after the job and its status, as text (a running job with progress:
    the percentage is the second)."""
    status, attempts = info["status"], info["attempts"]
    parts: list[str] = []
    if status == "pending":
        wait = between(info["run_at"], now)
        if wait is not None and wait < 0:
            parts.append(f"starts in {seconds_text(-wait)}")
        if attempts:
            parts.append(f"attempt {attempts}/{info['max_attempts']} failed, retrying")
        return parts
    parts.append(f"attempt {attempts}/{info['max_attempts']}" if status == "running"
                 else f"{attempts} attempt{'s' if attempts != 1 else ''}")
    if status == "running":
        if info["progress"] is not None:
            parts.append(f"{info['progress'] * 100:.0f}%")
        if info["progress_message"]:
            parts.append(str(info["progress_message"]))
    elapsed = between(info["started_at"], now if status == "running" else info["finished_at"])
    if elapsed is not None:
        parts.append(seconds_text(elapsed))
    if status == "failed":
        parts.append(last_line(info["error"]))
    if status == "completed" and info.get("result_type") not in (None, "json", "repr"):
        parts.append(f"result: {info['result_type']}")
    return [p for p in parts if p]


def line_text(info: dict[str, Any], now: datetime | None = None) -> str:
    """``Job 7 jobs.sample.slow: running · attempt 1/4 · 40% · step 4/10 · 3.2 s``."""
    parts = _parts(info, now or datetime.now(UTC))
    return f"Job {info['id']} {info['target']}: {info['status']}" + "".join(
        f" · {p}" for p in parts)


def line_html(info: dict[str, Any], now: datetime | None = None) -> str:
    """The line as the widget shows it: the status in its colour, a progress bar."""
    status = info["status"]
    parts = [html.escape(p) for p in _parts(info, now or datetime.now(UTC))]
    if status == "running" and info["progress"] is not None:
        pct = max(0.0, min(1.0, float(info["progress"]))) * 100
        parts[1] = (f"<span class='nj-job-bar' style='display:inline-block;width:80px;"
                    f"height:9px;background:#d0d7de;border-radius:4px;vertical-align:middle;"
                    f"overflow:hidden'><span style='display:block;height:100%;width:{pct:.0f}%;"
                    f"background:#0969da'></span></span> {parts[1]}")
    colour = STATUS_COLOURS.get(status, "")
    return (f"<div class='nj-job-line-body' data-status='{html.escape(status)}' "
            f"style='font-size:13px'><span class='nj-job-status' style='color:{colour};"
            f"font-weight:600'>● {html.escape(status)}</span> · <b>job {info['id']}</b> "
            f"{html.escape(str(info['target']))}" + "".join(f" · {p}" for p in parts) + "</div>")


def in_kernel() -> bool:
    """Whether this process is a Jupyter kernel (whose front end can show widgets)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def mimebundle(job: int) -> dict[str, Any]:
    """What a ``Job`` shows as a cell's value (see the module's docstring)."""
    try:
        info = client.statuses([job])[0]
    except (NotebookJobsError, IndexError):
        return {"text/plain": f"<Job {int(job)}>"}
    text = line_text(info)
    if not in_kernel():
        return {"text/plain": text}
    import ipywidgets as widgets

    line = widgets.HTML(line_html(info))
    line.add_class("nj-job-line")
    line.add_class(f"nj-job-line-{int(job)}")
    if info["status"] not in FINAL:
        FOLLOWER.follow(int(job), line=line)
    bundle: dict[str, Any] = line._repr_mimebundle_()
    bundle["text/plain"] = f"<{text}>"  # as repr(job): IPython may prefer its own text
    return bundle


class Follower:
    """Follows jobs from one thread: updates their lines, calls back when they end."""

    def __init__(self, poll_s: float = POLL_S) -> None:
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._lines: dict[int, list[Any]] = {}  #: job id -> its live lines (HTML widgets)
        self._ended: dict[int, list[Callable[[dict[str, Any]], None]]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def follow(self, job_id: int, *, line: Any = None,
               on_end: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Update ``line`` until the job ends; call ``on_end(status)`` when it does."""
        with self._lock:
            if line is not None:
                self._lines.setdefault(job_id, []).append(line)
            if on_end is not None:
                self._ended.setdefault(job_id, []).append(on_end)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="notebookjobs-follow",
                                                daemon=True)
                self._thread.start()

    def following(self) -> list[int]:
        """The ids of the jobs followed now."""
        with self._lock:
            return sorted(set(self._lines) | set(self._ended))

    def stop(self, timeout: float = 2.0) -> None:
        """Stop following (lines keep their last state), and wait for the thread to end."""
        self._stop.set()
        with self._lock:
            self._lines.clear()
            self._ended.clear()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            ids = self.following()
            if not ids:
                with self._lock:  # nothing left: end, unless follow() added a job meanwhile
                    if not (self._lines or self._ended):
                        self._thread = None
                        return
                continue
            try:
                self.tick(ids)
            except Exception:  # the thread's top level: it must neither die nor raise
                logger.exception("following jobs %s failed; trying again", ids)

    def tick(self, ids: list[int]) -> None:
        """Read the jobs once, update their lines, and call back for those that ended."""
        found = {info["id"]: info for info in client.statuses(ids)}
        now = datetime.now(UTC)
        for job_id in ids:
            info = found.get(job_id)
            ended = info is None or info["status"] in FINAL
            with self._lock:
                lines = list(self._lines.get(job_id, ()))
                callbacks = self._ended.pop(job_id, []) if ended else []
                if ended:
                    self._lines.pop(job_id, None)
            if info is None:
                continue  # pruned meanwhile: its lines keep what they showed
            value = line_html(info, now)
            for line in lines:
                if line.value != value:
                    line.value = value
            for callback in callbacks:
                callback(info)


#: the follower of this process (one thread for every line and notification)
FOLLOWER = Follower()
# Stopped before the interpreter shuts down: a daemon thread caught inside a DuckDB call at
# exit is unwound through C++ and aborts the process ("terminate called ...").
atexit.register(FOLLOWER.stop)
