"""The dashboard: one VBox laid out for watching the queue and acting on it (SPEC §9): the
worker line and the counts, then the queue, then *New job* (the catalogue, folded), the
Schedules and a chart of the last hour.

Live updates are pushed, not polled. A daemon thread sends one ``client.watch`` request and
waits: the worker answers when the queue changes, then the thread reads what is shown and
waits again. While nothing changes, neither the kernel nor the worker does anything. While the
dashboard is not on show (no view: the cell's output was cleared; or the browser tab is hidden,
which the table's module reports), the thread waits on an event instead, so a hidden tab or a
closed Voila page costs nothing and lets Voila cull its kernel. Updating widget traits from a
thread is fine in ipykernel (the messages go out through its IOPub thread; verified in
JupyterLab and Voila, see browser-testing.md).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import ipywidgets as widgets

from .. import client
from ..client import frames
from ..errors import InvalidArgumentsError, NotebookJobsError
from ..model import validate
from ..notebook.display import STYLE, close_tree, error_text, message_html, on_click
from .catalog import JobsSection
from .chart import WINDOW, chart_svg
from .forms import DispatchForm
from .queue_tab import QueueSection
from .schedules_tab import SchedulesSection
from .worker_panel import WorkerSection

logger = logging.getLogger(__name__)

#: the longest one ``watch`` waits in the worker before it is sent again: one request a minute
#: at most while the queue is idle (the worker's idle-client limit is 30 s between requests,
#: not during one)
WATCH_HOLD_S = 60.0
#: at most one refresh per this many seconds however fast the queue changes (a drain of
#: thousands of jobs a second is shown at 10 frames a second, not at its own pace)
MIN_INTERVAL_S = 0.1
CATALOG_REFRESH_S = 30.0  # discovery imports job modules: re-read on a push at most this often
CHART_REFRESH_S = 30.0  # the chart of the last hour: redrawn on a push at most this often
ERROR_PAUSE_S = 2.0  # after a failed watch (a broken whitelist.yaml), before the next
JOIN_TIMEOUT_S = 5.0  # close() waits this long for a refresh in progress to end


def _heading(text: str) -> widgets.HTML:
    return widgets.HTML(f"<div style='font-weight:600;font-size:14px;margin-top:6px'>{text}</div>")


def job_number(job: Any) -> int | None:
    """``job=`` of ``nj.dashboard`` (an id, or the text of the page's ``?job=``)."""
    if job is None or (isinstance(job, str) and not job.strip()):
        return None
    try:
        number = int(job.strip()) if isinstance(job, str) else job
        return validate.job_id(number)
    except (ValueError, InvalidArgumentsError):
        raise InvalidArgumentsError(f"job={job!r} is not a job id; give the number of a job, "
                                    "e.g. nj.dashboard(job=12) or ?job=12") from None


class Dashboard(widgets.VBox):
    """The notebookjobs dashboard (SPEC §9); display it, or make it a cell's last expression.

    Parameters
    ----------
    refresh_interval:
        The least time between two refreshes, in seconds, however fast the queue changes.
    autorefresh:
        Start the thread that follows the queue (tests turn it off and call ``refresh()``).
    job:
        A job whose details open at once (``nj.dashboard(job=ID)``, the page's ``?job=ID``).
    """

    def __init__(self, refresh_interval: float = MIN_INTERVAL_S, autorefresh: bool = True,
                 job: Any = None) -> None:
        if not refresh_interval > 0:
            raise ValueError(f"refresh_interval={refresh_interval!r} is not allowed; "
                             "give the least seconds between refreshes, a number > 0")
        job_id = job_number(job)
        self.refresh_interval = refresh_interval
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()  # one refresh or user action at a time
        self._stop = threading.Event()
        self._wake = threading.Event()  # shown again, or closing
        self._catalog_at = self._chart_at = -float("inf")
        #: refreshes made because the queue changed (the push), and the watches sent
        self.pushes = 0
        self.watches = 0
        #: the open Dispatch form, if any
        self.form: DispatchForm | None = None
        self.error = widgets.HTML()
        self.error.add_class("nj-error")
        self.worker = WorkerSection(self._lock)
        self.queue = QueueSection(self._lock, on_rerun=self.rerun)
        self.catalog = JobsSection(on_dispatch=self.open_form)
        self.catalog.layout.display = "none"
        self.new_job_button = widgets.Button(description="New job ▸", layout={"width": "auto"},
                                             tooltip="the jobs you can dispatch")
        self.catalog_filter = widgets.Text(placeholder="filter the jobs",
                                           layout={"width": "200px", "display": "none"})
        self.reload_button = widgets.Button(description="Reload jobs", layout={"width": "auto",
                                                                                "display": "none"},
                                            tooltip="read jobs/ and whitelist.yaml again")
        for widget, name in ((self.new_job_button, "nj-new-job"),
                             (self.catalog_filter, "nj-jobs-filter"),
                             (self.reload_button, "nj-reload-jobs")):
            widget.add_class(name)
        on_click(self.new_job_button, self.toggle_catalog)
        on_click(self.reload_button, lambda: self.refresh(catalog=True))
        self.catalog_filter.observe(lambda c: self.catalog.filter(c["new"]), names="value")
        self.schedules = SchedulesSection()
        self.chart = widgets.HTML(layout={"max_width": "100%"})
        self.chart.add_class("nj-chart")
        super().__init__([
            widgets.HTML(STYLE), self.worker, self.error, self.queue,
            widgets.HBox([self.new_job_button, self.catalog_filter, self.reload_button],
                         layout={"align_items": "center", "flex_flow": "row wrap",
                                 "margin": "8px 0 0 0"}),
            self.catalog, self.schedules,
            widgets.VBox([_heading("Last hour"), self.chart]),
        ], layout={"width": "100%", "max_width": "100%"})
        self.add_class("nj-dashboard")
        # Ask the frontend to count the views of this widget (None would mean "not tracked").
        self._view_count = 0
        self.observe(lambda _c: self._woken(), names="_view_count")
        self.queue.grid.observe(lambda _c: self._woken(), names="page_hidden")
        self.refresh(catalog=True)
        if self.queue.total == 0:  # a new project: what it can dispatch is what to see first
            self._fold_catalog(False)
        if job_id is not None:
            self.open_job(job_id)
        if autorefresh:
            self._thread = threading.Thread(target=self._follow, name="notebookjobs-dashboard",
                                            daemon=True)
            self._thread.start()

    # --- refreshing --------------------------------------------------------------------------

    def refresh(self, catalog: bool | None = None) -> bool:
        """Read the queue, the worker and (now and then, or if ``catalog``) the jobs and the
        chart. Only widget values that changed are updated. A ``NotebookJobsError`` is shown
        in the error line instead of being raised; returns False then."""
        with self._lock:
            try:
                now = datetime.now(UTC)
                self.queue.refresh(now)  # first: the queue shows while whitelist.yaml is broken
                self.worker.refresh()
                settings = client.settings()  # a broken whitelist.yaml is shown, in red
                due = time.monotonic() - self._catalog_at >= CATALOG_REFRESH_S
                if catalog or (catalog is None and due and self.catalog_open):
                    self.catalog.update(client.available_jobs(), settings.whitelist_path.name)
                    self._catalog_at = time.monotonic()
                if settings.schedules or len(self.schedules.table.value):
                    self.schedules.update(client.schedules(), now)
                if time.monotonic() - self._chart_at >= CHART_REFRESH_S:
                    self._chart_at = time.monotonic()
                    svg = chart_svg(frames.history(since=now - WINDOW), now)
                    if self.chart.value != svg:
                        self.chart.value = svg
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
        """Whether a page shows this dashboard and its tab is not hidden."""
        viewed = self._view_count is None or self._view_count > 0
        return viewed and not self.queue.grid.page_hidden

    @property
    def refreshing(self) -> bool:
        """Whether the thread that follows the queue is running."""
        return self._thread is not None and self._thread.is_alive()

    def _woken(self) -> None:
        self._wake.set()
        if self.shown and self.refreshing:
            self.refresh()  # back on show: what changed while hidden, now

    def _follow(self) -> None:
        token: str | None = None
        while not self._stop.is_set():
            if not self.shown:
                self._wake.wait()
                self._wake.clear()
                token = None  # read afresh once shown again
                continue
            try:
                self.watches += 1
                new = client.watch(token, hold=WATCH_HOLD_S)
            except NotebookJobsError as exc:
                self._show_error(f"refresh failed: {error_text(exc)}")
                self._stop.wait(ERROR_PAUSE_S)
                continue
            except Exception as exc:
                # The thread's top level: it must neither die nor raise into the kernel.
                logger.exception("dashboard watch failed")
                self._show_error(f"refresh failed: {error_text(exc)}")
                self._stop.wait(ERROR_PAUSE_S)
                continue
            if new == token or self._stop.is_set():
                continue
            token = new
            if self.shown:
                self.pushes += 1
                try:
                    self.refresh()
                except Exception as exc:  # the thread's top level, as above
                    logger.exception("dashboard refresh failed")
                    self._show_error(f"refresh failed: {error_text(exc)}")
            self._stop.wait(self.refresh_interval)

    # --- New job: the catalogue and the Dispatch form ----------------------------------------

    @property
    def catalog_open(self) -> bool:
        """Whether *New job* is unfolded."""
        return self.catalog.layout.display != "none"

    def toggle_catalog(self) -> None:
        """Fold or unfold *New job* (read afresh when unfolded)."""
        with self._lock:
            opening = not self.catalog_open
            if opening:
                self.refresh(catalog=True)
            self._fold_catalog(not opening)

    def _fold_catalog(self, fold: bool) -> None:
        for widget in (self.catalog, self.catalog_filter, self.reload_button):
            widget.layout.display = "none" if fold else None
        self.new_job_button.description = "New job ▸" if fold else "New job ▾"

    def open_form(self, record: dict[str, Any], **prefill: Any) -> DispatchForm:
        """Open the Dispatch form of a target (a row of ``client.available_jobs()``) right
        below its row of *New job*; ``prefill``: ``values``, ``priority`` and ``delay``."""
        with self._lock:
            self.close_form()
            self.form = self._form(record, **prefill)
            self.catalog.show_form(record["target"], self.form)
            return self.form

    def _form(self, record: dict[str, Any], **prefill: Any) -> DispatchForm:
        return DispatchForm(record["target"], record["parameters"], record.get("doc", ""),
                            on_dispatched=self._dispatched, on_close=self.close_form, **prefill)

    def rerun(self, info: dict[str, Any]) -> DispatchForm | None:
        """Edit & re-run: the Dispatch form of a finished job's target, filled with its
        arguments, priority and delay, opened in its details (below its row); None (and the
        reason on the job's row) when the whitelist no longer allows the target."""
        with self._lock:
            record = self.catalog.records.get(info["target"])
            if record is None or not record.get("allowed"):
                self.queue.detail.say(f"{info['target']} is not allowed now, so job "
                                      f"{info['id']} cannot be run again; see New job")
                return None
            self.close_form()
            self.form = self._form(record, values=job_values(record["parameters"], info),
                                   priority=info["priority"], delay=job_delay(info))
            self.queue.detail.form_area.children = (self.form,)
            return self.form

    def close_form(self) -> None:
        """Close the open Dispatch form, if any."""
        with self._lock:
            if self.form is not None:
                self.catalog.show_form("", None)
                if self.form in self.queue.detail.form_area.children:
                    self.queue.detail.form_area.children = ()
                close_tree(self.form)
                self.form = None

    def _dispatched(self, job_id: int) -> None:
        # Show the new job at once rather than when the push comes.
        self.refresh(catalog=False)

    def open_job(self, job_id: int) -> None:
        """Open a job's details (``nj.dashboard(job=ID)``); an unknown id is said in the error
        line."""
        with self._lock:
            try:
                self.queue.act("details", job_id)
                self.queue.refresh()
            except NotebookJobsError as exc:
                self._show_error(error_text(exc))

    # --- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop following the queue and close every widget of the dashboard."""
        self._stop.set()
        self._wake.set()
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
