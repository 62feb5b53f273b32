"""The Worker section: is the detached worker running, its pid and concurrency, Start/Stop,
the Dask cluster it sends attempts to (if it does), and how many jobs are in each status.

Worker calls go through ``client`` at call time. A ``WorkerError`` (no worker available, it
failed to start, ...) is shown in this section's message line, never raised into the kernel.
"""

from __future__ import annotations

import html
import threading
from typing import Any

import ipywidgets as widgets

from .. import client
from ..errors import NotebookJobsError
from ..notebook.display import (
    STATUS_COLOURS,
    STATUSES,
    error_text,
    local_time,
    message_html,
    on_click,
)


def worker_text(info: dict[str, Any]) -> str:
    """'running · pid 123 · concurrency 2 · since ... · 1 job running' or 'not running'."""
    if not info.get("running"):
        return "worker: not running"
    parts = ["worker: running", f"pid {info.get('pid')}"]
    if info.get("concurrency") is not None:
        parts.append(f"concurrency {info['concurrency']}")
    if info.get("started_at") is not None:
        parts.append(f"since {local_time(info['started_at'])}")
    busy = len(info.get("jobs") or [])
    parts.append(f"{busy} job{'s' if busy != 1 else ''} running")
    return " · ".join(parts)


def cluster_html(info: dict[str, Any]) -> str:
    """'Dask cluster tcp://... · 2 workers (4 threads) · Dask dashboard' (a link), with each
    worker and our attempts on it; '' when the worker runs attempts itself (SPEC §18)."""
    cluster = info.get("cluster") if info.get("running") else None
    if not cluster:
        return ""
    workers = cluster.get("workers") or []
    parts = [f"Dask cluster <code>{html.escape(str(cluster.get('scheduler')))}</code>",
             f"{len(workers)} worker{'s' if len(workers) != 1 else ''} "
             f"({cluster.get('threads')} threads)"]
    link = cluster.get("dashboard")
    if isinstance(link, str) and link.startswith(("http://", "https://")):
        parts.append(f"<a href='{html.escape(link)}' target='_blank'>Dask dashboard</a>")
    rows = "".join(f"<li><code>{html.escape(str(w.get('address')))}</code> · "
                   f"{w.get('running')} of {w.get('threads')} running</li>" for w in workers)
    return " · ".join(parts) + (f"<ul style='margin:0'>{rows}</ul>" if rows else "")


def counts_html(counts: dict[str, int]) -> str:
    """One coloured 'status: n' chip per status, in lifecycle order."""
    chips = []
    for status in STATUSES:
        chips.append(f"<span class='nj-count-{status}' style='color:{STATUS_COLOURS[status]};"
                     f"margin:0 10px 0 0;white-space:nowrap'><b>{counts.get(status, 0)}</b> "
                     f"{html.escape(status)}</span>")
    return "".join(chips)


class WorkerSection(widgets.VBox):
    """Worker state, Start/Stop buttons, and counts by status."""

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self._lock = lock or threading.RLock()
        #: the last ``client.worker_status()`` shown
        self.info: dict[str, Any] = {}
        self._status_error = ""  # message shown because worker_status() itself failed
        self.state = widgets.Label("worker: unknown")
        self.start_button = widgets.Button(description="Start worker", button_style="success",
                                           layout={"width": "auto"})
        self.stop_button = widgets.Button(description="Stop worker", button_style="danger",
                                          layout={"width": "auto"})
        self.message = widgets.HTML()
        self.cluster = widgets.HTML()  #: the Dask cluster, when attempts run on one
        self.counts = widgets.HTML()
        for widget, name in ((self.state, "nj-worker-state"),
                             (self.cluster, "nj-worker-cluster"),
                             (self.start_button, "nj-worker-start"),
                             (self.stop_button, "nj-worker-stop"),
                             (self.message, "nj-worker-message"), (self.counts, "nj-counts")):
            widget.add_class(name)
        on_click(self.start_button, lambda: self._act(self.start))
        on_click(self.stop_button, lambda: self._act(self.stop))
        # One line (wrapping on a phone): the title, the worker, its buttons, the counts.
        title = widgets.HTML("<b style='font-size:15px;margin-right:10px'>notebookjobs</b>")
        top = widgets.HBox([title, self.state, self.start_button, self.stop_button, self.counts],
                           layout={"align_items": "center", "flex_flow": "row wrap",
                                   "width": "100%"})
        super().__init__([top, self.cluster, self.message], layout={"width": "100%"})
        self.add_class("nj-worker")

    def refresh(self) -> None:
        """Read the worker's state and the counts; raises NotebookJobsError if the queue can't
        be read (a WorkerError from ``worker_status`` is shown here instead)."""
        with self._lock:
            try:
                info = client.worker_status()
            except NotebookJobsError as exc:
                info = {"running": False}
                self._status_error = error_text(exc)
                self._say(self._status_error, "error")
            else:
                if self._status_error:  # the problem went away: take its message down
                    self._status_error = ""
                    self._say("", "info")
            self._show(info)
            text = counts_html(client.counts())
            if self.counts.value != text:
                self.counts.value = text

    def _show(self, info: dict[str, Any]) -> None:
        self.info = info
        text = worker_text(info)
        if self.state.value != text:
            self.state.value = text
        cluster = cluster_html(info)
        if self.cluster.value != cluster:
            self.cluster.value = cluster
        running = bool(info.get("running"))
        if self.start_button.disabled != running:
            self.start_button.disabled = running
        if self.stop_button.disabled == running:
            self.stop_button.disabled = not running

    def _say(self, text: str, kind: str) -> None:
        value = message_html(text, kind)
        if self.message.value != value:
            self.message.value = value

    def _act(self, action: Any) -> None:
        with self._lock:
            try:
                self._say(action(), "ok")
            except NotebookJobsError as exc:
                self._say(error_text(exc), "error")
                return
            try:
                self.refresh()
            except NotebookJobsError as exc:
                self._say(error_text(exc), "error")

    def start(self) -> str:
        """Start the detached worker; a report line. Raises WorkerError when it cannot start."""
        pid = client.start_worker()
        return f"worker running (pid {pid})"

    def stop(self) -> str:
        """Stop the detached worker; a report line."""
        return "worker stopped" if client.stop_worker() else "no worker was running"
