"""The dashboard: one VBox that owns the Worker, Jobs, Dispatch and Queue sections.

Live refresh runs in a daemon thread that calls ``refresh()`` every ``refresh_interval``
seconds while the dashboard is shown. Updating widget traits from a thread is fine in
ipykernel (the messages go out through its IOPub thread; verified in JupyterLab and Voila, see
browser-testing.md). "Shown" comes from ipywidgets' ``_view_count``, which the frontend keeps up
to date: the output of a re-run or cleared cell stops costing queue reads.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import ipywidgets as widgets

from .. import client
from ..errors import NotebookJobsError
from .catalog import JobsSection
from .common import STYLE, close_tree, error_text, message_html, on_click
from .forms import DispatchForm
from .queue import QueueSection
from .schedules import SchedulesSection
from .worker_panel import WorkerSection

logger = logging.getLogger(__name__)

CATALOG_REFRESH_S = 5.0  # discovery imports job modules, so it is re-read less often than the queue
JOIN_TIMEOUT_S = 5.0  # close() waits this long for a refresh in progress to end


def _heading(text: str) -> widgets.HTML:
    return widgets.HTML(f"<div style='font-weight:600;font-size:14px;margin-top:6px'>{text}</div>")


class Dashboard(widgets.VBox):
    """The notebookjobs dashboard (SPEC §9); display it, or make it a cell's last expression.

    Parameters
    ----------
    refresh_interval:
        Seconds between live refreshes.
    autorefresh:
        Start the refresh thread (tests turn it off and call ``refresh()`` themselves).
    """

    def __init__(self, refresh_interval: float = 1.0, autorefresh: bool = True) -> None:
        if not refresh_interval > 0:
            raise ValueError(f"refresh_interval={refresh_interval!r} is not allowed; "
                             "give the seconds between refreshes, a number > 0")
        self.refresh_interval = refresh_interval
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()  # one refresh or user action at a time
        self._stop = threading.Event()
        self._catalog_at = -float("inf")
        #: the open Dispatch form, if any
        self.form: DispatchForm | None = None
        self.error = widgets.HTML()
        self.error.add_class("nj-error")
        self.worker = WorkerSection(self._lock)
        self.catalog = JobsSection(on_dispatch=self.open_form)
        self.reload_button = widgets.Button(description="Reload jobs", icon="refresh",
                                            tooltip="read jobs/ and whitelist.yaml again")
        self.reload_button.add_class("nj-reload-jobs")
        on_click(self.reload_button, lambda: self.refresh(catalog=True))
        self.form_area = widgets.VBox()
        self.form_area.add_class("nj-form-area")
        self.queue = QueueSection(self._lock, on_rerun=self.rerun)
        self.schedules = SchedulesSection()
        super().__init__([
            widgets.HTML(STYLE + "<div style='font-size:16px;font-weight:700'>notebookjobs"
                         "</div>"),
            self.error, self.worker,
            widgets.HBox([_heading("Jobs"), self.reload_button], layout={"align_items": "center"}),
            self.catalog, self.form_area, self.schedules, _heading("Queue"), self.queue,
        ])
        self.add_class("nj-dashboard")
        # Ask the frontend to count the views of this widget (None would mean "not tracked").
        self._view_count = 0
        self.refresh(catalog=True)
        if autorefresh:
            self._thread = threading.Thread(target=self._loop, name="notebookjobs-dashboard",
                                            daemon=True)
            self._thread.start()

    # --- refreshing --------------------------------------------------------------------------

    def refresh(self, catalog: bool | None = None) -> bool:
        """Read the queue, the worker and (every few seconds, or if ``catalog``) the jobs.

        Only widget values that changed are updated. A ``NotebookJobsError`` is shown in the
        error area instead of being raised; returns False then.
        """
        with self._lock:
            try:
                now = datetime.now(UTC)
                due = time.monotonic() - self._catalog_at >= CATALOG_REFRESH_S
                self.queue.refresh(now)  # first: the queue shows while whitelist.yaml is broken
                self.worker.refresh()
                settings = client.settings()  # a broken whitelist.yaml is shown, in red
                if catalog or (catalog is None and due):
                    frame = client.available_jobs()
                    self.catalog.update(frame, settings.whitelist_path.name)
                    self._catalog_at = time.monotonic()
                if settings.schedules or len(self.schedules.table.value):
                    self.schedules.update(client.schedules(), now)
            except NotebookJobsError as exc:
                self._show_error(f"refresh failed: {error_text(exc)}")
                return False
            self._show_error("")
            return True

    def _show_error(self, text: str) -> None:
        value = message_html(text, "error")
        if self.error.value != value:
            self.error.value = value

    @property
    def shown(self) -> bool:
        """Whether the page shows this dashboard (True when the frontend does not say)."""
        return self._view_count is None or self._view_count > 0

    @property
    def refreshing(self) -> bool:
        """Whether the live-refresh thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.wait(self.refresh_interval):
            if not self.shown:
                continue
            try:
                self.refresh()
            except Exception as exc:
                # The thread's top level: it must neither die nor raise into the kernel.
                logger.exception("dashboard refresh failed")
                self._show_error(f"refresh failed: {error_text(exc)}")

    # --- the Dispatch form -------------------------------------------------------------------

    def open_form(self, record: dict[str, Any], **prefill: Any) -> DispatchForm:
        """Open the Dispatch form of a target (a row of ``client.available_jobs()``);
        ``prefill``: ``values``, ``priority`` and ``delay`` to show (Edit & re-run)."""
        with self._lock:
            self.close_form()
            self.form = DispatchForm(record["target"], record["parameters"], record.get("doc", ""),
                                     on_dispatched=self._dispatched, on_close=self.close_form,
                                     **prefill)
            self.form_area.children = (self.form,)
            return self.form

    def rerun(self, info: dict[str, Any]) -> DispatchForm | None:
        """Edit & re-run: the Dispatch form of a finished job's target, filled with its
        arguments, priority and delay; None (and the reason in the queue's message line) when
        the whitelist no longer allows the target."""
        with self._lock:
            record = self.catalog.records.get(info["target"])
            if record is None or not record.get("allowed"):
                self.queue.message.value = message_html(
                    f"{info['target']} is not allowed now, so job {info['id']} cannot be run "
                    "again; see the Jobs list", "error")
                return None
            return self.open_form(record, values=job_values(record["parameters"], info),
                                  priority=info["priority"], delay=job_delay(info))

    def close_form(self) -> None:
        """Close the open Dispatch form, if any."""
        with self._lock:
            if self.form is not None:
                self.form_area.children = ()
                close_tree(self.form)
                self.form = None

    def _dispatched(self, job_id: int) -> None:
        # Show the new job at once rather than at the next tick.
        self.refresh(catalog=False)

    # --- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop refreshing and close every widget of the dashboard."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT_S)
        with self._lock:
            self.form = None
            for child in self.children:
                close_tree(child)
            super().close()


def job_values(parameters: list[dict[str, Any]], info: dict[str, Any]) -> dict[str, Any]:
    """A job's arguments by parameter name (``*args`` as a list, ``**kwargs`` as a dict), as
    its Dispatch form shows them."""
    args, kwargs = list(info["args"] or []), dict(info["kwargs"] or {})
    values: dict[str, Any] = {}
    for param in parameters:
        name, kind = param["name"], param["kind"]
        if kind in ("positional_only", "positional_or_keyword") and args:
            values[name] = args.pop(0)
        elif kind == "var_positional" and args:
            values[name], args = args, []
        elif kind == "var_keyword":
            named = {p["name"] for p in parameters}
            extra = {k: v for k, v in kwargs.items() if k not in named}
            if extra:
                values[name] = extra
        elif name in kwargs:
            values[name] = kwargs[name]
    return values


def job_delay(info: dict[str, Any]) -> float:
    """The delay a job was dispatched with: run_at - created_at while no retry moved run_at."""
    if info["attempts"] > 1 or info["run_at"] is None or info["created_at"] is None:
        return 0.0
    return max(0.0, round((info["run_at"] - info["created_at"]).total_seconds(), 3))
