"""The Queue section: one page of jobs as a Styler table, paging, a status filter, a sort,
row actions.

The table is an HTML widget (``table.queue_html``); beside it, a column of ``JobRow`` widgets
holds each job's status and its Cancel/Retry/Details buttons, at the same row height. Details
open right below their job's row: the page is then shown as two such parts, the rows down to
that job above the details and the others below (fixed column widths keep them aligned). A
refresh reads one page through ``client.jobs`` and changes only what differs from what is shown.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import ipywidgets as widgets
import pandas as pd

from .. import client
from ..errors import JobNotFoundError, NotebookJobsError
from .common import ROW_HEIGHT_PX, STATUSES, close_tree, error_text, message_html, on_click
from .detail import DetailView
from .rows import JobRow
from .table import queue_html

PAGE_SIZES = (5, 10, 20, 50)
ALL = "all"
#: the sorts offered: label -> ``client.jobs(order=...)``
SORTS = (("newest first", "newest"), ("running first", "running"), ("oldest first", "oldest"),
         ("priority", "priority"))
_NAV_LAYOUT = {"width": "44px"}


def _now() -> datetime:
    return datetime.now(UTC)


class QueueSection(widgets.VBox):
    """The paginated queue. ``refresh()`` reads the current page; the buttons act at once."""

    def __init__(self, lock: threading.RLock | None = None,
                 on_rerun: Callable[[dict[str, Any]], object] | None = None) -> None:
        self._lock = lock or threading.RLock()
        self.page = 1
        self.pages = 1
        self.total = 0
        #: job id -> its row of widgets, for the jobs on the current page
        self.rows: dict[int, JobRow] = {}
        self._uuid = "nj" + uuid.uuid4().hex[:8]  # stable Styler ids for this dashboard
        self.status_filter = widgets.Dropdown(options=[ALL, *STATUSES], value=ALL,
                                              description="status", layout={"width": "190px"})
        self.page_size = widgets.Dropdown(options=list(PAGE_SIZES), value=PAGE_SIZES[0],
                                          description="per page", layout={"width": "160px"})
        self.sort = widgets.Dropdown(options=list(SORTS), value="newest", description="sort",
                                     layout={"width": "200px"})
        self.first_button = widgets.Button(icon="angle-double-left", tooltip="first page",
                                           layout=dict(_NAV_LAYOUT))
        self.prev_button = widgets.Button(icon="angle-left", tooltip="previous page",
                                          layout=dict(_NAV_LAYOUT))
        self.next_button = widgets.Button(icon="angle-right", tooltip="next page",
                                          layout=dict(_NAV_LAYOUT))
        self.last_button = widgets.Button(icon="angle-double-right", tooltip="last page",
                                          layout=dict(_NAV_LAYOUT))
        self.page_label = widgets.Label()
        # The table never shrinks or scrolls on its own: a scrollbar inside it would shift its rows
        # against the widget column; the two scroll together in ``body`` instead.
        self.table = widgets.HTML(layout={"margin": "0", "flex": "0 0 auto"})
        # The rows below an open Details, when it is not the page's last row.
        self.rest_table = widgets.HTML(layout={"margin": "0", "flex": "0 0 auto"})
        self.rest_actions = widgets.VBox(layout={"margin": "0", "flex": "0 0 auto"})
        self.actions_header = widgets.HTML(
            f"<div style='height:{ROW_HEIGHT_PX}px;line-height:{ROW_HEIGHT_PX}px;"
            "font-size:12px;font-weight:600;background:#f6f8fa;padding:0 6px'>status</div>",
            layout={"margin": "0", "width": "100%"})
        self.actions = widgets.VBox([self.actions_header],
                                   layout={"margin": "0", "flex": "0 0 auto"})
        self.message = widgets.HTML()
        self.detail = DetailView(on_rerun=on_rerun)
        for widget, name in (
                (self.status_filter, "nj-status-filter"), (self.page_size, "nj-page-size"),
                (self.sort, "nj-sort"), (self.rest_table, "nj-queue-table-rest"),
                (self.rest_actions, "nj-queue-actions-rest"),
                (self.first_button, "nj-first-page"), (self.prev_button, "nj-prev-page"),
                (self.next_button, "nj-next-page"), (self.last_button, "nj-last-page"),
                (self.page_label, "nj-page-label"), (self.table, "nj-queue-table"),
                (self.actions, "nj-queue-actions"), (self.message, "nj-queue-message")):
            widget.add_class(name)
        on_click(self.first_button, lambda: self.go_to(1))
        on_click(self.prev_button, lambda: self.go_to(self.page - 1))
        on_click(self.next_button, lambda: self.go_to(self.page + 1))
        on_click(self.last_button, lambda: self.go_to(self.pages))
        self.status_filter.observe(lambda _c: self.go_to(1), names="value")
        self.page_size.observe(lambda _c: self.go_to(1), names="value")
        self.sort.observe(lambda _c: self.go_to(1), names="value")
        controls = widgets.HBox([self.status_filter, self.sort, self.page_size, self.first_button,
                                 self.prev_button, self.page_label, self.next_button,
                                 self.last_button],
                                layout={"align_items": "center", "flex_flow": "row wrap"})
        # The status and buttons come first: in a narrow notebook the table's last columns
        # scroll out of sight, never the job's status and its Cancel/Retry. The body scrolls
        # sideways within the notebook's width (common.STYLE), the parts and Details together.
        part = {"align_items": "flex-start", "flex": "0 0 auto", "overflow": "visible"}
        self.top = widgets.HBox([self.actions, self.table], layout=dict(part))
        self.rest = widgets.HBox([self.rest_actions, self.rest_table], layout=dict(part))
        self.body = widgets.VBox([self.top, self.detail],
                                 layout={"width": "100%", "overflow": "auto"})
        self.body.add_class("nj-queue-body")
        super().__init__([controls, self.body, self.message])
        self.add_class("nj-queue")

    @property
    def status(self) -> str | None:
        """The status filter: None for all jobs."""
        return None if self.status_filter.value == ALL else self.status_filter.value

    def go_to(self, page: int) -> None:
        """Show page ``page`` (clamped to the pages there are)."""
        with self._lock:
            self.page = max(1, min(page, self.pages))
            self._refresh_shown()

    def _refresh_shown(self) -> None:
        # Paging and filtering are user actions: their errors go to the queue's message line.
        try:
            self.refresh()
        except NotebookJobsError as exc:
            self.message.value = message_html(error_text(exc), "error")

    def refresh(self, now: datetime | None = None) -> None:
        """Read the current page (and the open detail) and update what changed.

        Raises NotebookJobsError when the queue cannot be read; the dashboard shows it.
        """
        now = now or _now()
        with self._lock:
            frame = client.jobs(page=self.page, per_page=self.page_size.value, status=self.status,
                                order=self.sort.value)
            if self.page > frame.attrs["pages"]:  # jobs went away: show the last page there is
                self.page = frame.attrs["pages"]
                frame = client.jobs(page=self.page, per_page=self.page_size.value,
                                    status=self.status, order=self.sort.value)
            self._show(frame, now)
            if self.detail.job_id is not None:
                try:
                    self.detail.update(client.status(self.detail.job_id), now)
                except JobNotFoundError:  # pruned meanwhile: nothing left to show
                    self.detail.hide()

    def _show(self, frame: pd.DataFrame, now: datetime) -> None:
        self.pages, self.total = int(frame.attrs["pages"]), int(frame.attrs["total"])
        ids = [int(i) for i in frame["id"]]
        # Details open on a job of this page: its row ends the top part, the rest go below.
        cut = ids.index(self.detail.job_id) + 1 if self.detail.job_id in ids else len(ids)
        html = queue_html(frame.iloc[:cut], now, self._uuid)
        if frame.empty:
            html += "<div style='padding:4px 8px;color:#57606a'><i>no jobs</i></div>"
        if self.table.value != html:
            self.table.value = html
        rest = queue_html(frame.iloc[cut:], now, self._uuid + "r", header=False)
        if self.rest_table.value != rest:
            self.rest_table.value = rest
        children = (self.top, self.detail, self.rest) if cut < len(ids) else (self.top,
                                                                               self.detail)
        if self.body.children != children:
            self.body.children = children
        noun = "job" if self.total == 1 else "jobs"
        label = f"page {self.page} of {self.pages} ({self.total} {noun})"
        if self.page_label.value != label:
            self.page_label.value = label
        for button, disabled in ((self.first_button, self.page <= 1),
                                 (self.prev_button, self.page <= 1),
                                 (self.next_button, self.page >= self.pages),
                                 (self.last_button, self.page >= self.pages)):
            if button.disabled != disabled:
                button.disabled = disabled
        self._show_rows(list(zip(ids, frame["status"], strict=True)), cut)

    def _show_rows(self, jobs: list[tuple[int, str]], cut: int) -> None:
        shown = {job_id for job_id, _ in jobs}
        gone = [self.rows.pop(job_id) for job_id in list(self.rows) if job_id not in shown]
        for job_id, status in jobs:
            row = self.rows.get(job_id)
            if row is None:
                self.rows[job_id] = JobRow(job_id, status, self._act)
            else:
                row.show(status)
        children = (self.actions_header, *(self.rows[job_id] for job_id, _ in jobs[:cut]))
        if self.actions.children != children:
            self.actions.children = children
        rest = tuple(self.rows[job_id] for job_id, _ in jobs[cut:])
        if self.rest_actions.children != rest:
            self.rest_actions.children = rest
        for row in gone:  # closed only once the page no longer shows them
            close_tree(row)

    def _act(self, action: str, job_id: int) -> None:
        """A row's button: cancel, retry or details; the outcome goes to the message line."""
        with self._lock:
            try:
                text = self.act(action, job_id)
            except NotebookJobsError as exc:
                self.message.value = message_html(error_text(exc), "error")
                return
            self.message.value = message_html(text, "ok") if text else ""
            self._refresh_shown()

    def act(self, action: str, job_id: int) -> str:
        """Do ``action`` on the job; a one-line report of what happened."""
        if action == "cancel":
            if client.cancel(job_id):
                return f"job {job_id} cancelled"
            return f"job {job_id} had already finished; nothing to cancel"
        if action == "retry":
            return f"job {job_id} dispatched again as job {client.retry(job_id)}"
        if action == "details":
            self.detail.show_job(client.status(job_id), _now())
            return ""  # the refresh that follows moves it below the job's row
        raise ValueError(f"unknown action {action!r}; expected cancel, retry or details")

    def close(self) -> None:
        """Close the section and every widget in it."""
        for row in self.rows.values():
            close_tree(row)
        self.rows.clear()
        for child in (*self.children, self.rest, self.detail):
            close_tree(child)
        super().close()
