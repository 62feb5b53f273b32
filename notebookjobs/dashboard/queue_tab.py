"""The Queue section: search, filters and paging above one page of jobs (``grid.QueueGrid``),
bulk actions, and a job's details opened right below its row.

A page is read with one ``client.jobs`` call and sent as one trait; the section changes only
what differs from what is shown. Details split the page in two grids, the rows down to that
job above and the rest below, so the details (and an *Edit & re-run* form in them) open where
the user clicked. Outcomes of a row's Cancel or Retry show on that row and fade; the bulk
actions report once per batch, failures kept (``bulk_report``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import ipywidgets as widgets

from .. import client
from ..errors import JobNotFoundError, NotebookJobsError
from ..notebook import handle
from ..notebook.display import STATUSES, close_tree, error_text, message_html, on_click
from .detail import DetailView
from .grid import QueueGrid
from .table import page_rows

PAGE_SIZES = (5, 10, 20, 50)
ALL = "all"
#: the sorts offered: label -> ``client.jobs(order=...)``
SORTS = (("newest first", "newest"), ("running first", "running"), ("oldest first", "oldest"),
         ("priority", "priority"))
#: jobs read per request when a bulk action collects the jobs of the filter
BULK_PAGE = 1000
#: a bulk cancel that would stop running jobs asks for a second click within this
CONFIRM_S = 5.0
_NAV = {"width": "34px", "padding": "0"}


def _now() -> datetime:
    return datetime.now(UTC)


def bulk_report(verb: str, done: list[str], failed: list[str]) -> tuple[str, str]:
    """One line for a bulk action: what was done, then every failure (never dropped)."""
    noun = "job" if len(done) == 1 else "jobs"
    text = f"{verb} {len(done)} {noun}" + (f": {', '.join(done)}" if done else "")
    if failed:
        text += f"; {len(failed)} refused: " + "; ".join(failed)
    return text, "error" if failed else "ok"


class QueueSection(widgets.VBox):
    """The paginated queue. ``refresh()`` reads the current page; the buttons act at once."""

    def __init__(self, lock: threading.RLock | None = None,
                 on_rerun: Callable[[dict[str, Any]], object] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = lock or threading.RLock()
        self._clock = clock
        self.page = 1
        self.pages = 1
        self.total = 0
        self.ids: list[int] = []  #: the jobs of the page shown, in order
        self._statuses: dict[int, str] = {}
        self._confirm_until = 0.0
        self.search = widgets.Text(placeholder="search target or arguments",
                                   continuous_update=False,
                                   layout={"width": "220px", "max_width": "100%"})
        self.status_filter = widgets.Dropdown(options=[ALL, *STATUSES], value=ALL,
                                              layout={"width": "110px"}, tooltip="status")
        self.sort = widgets.Dropdown(options=list(SORTS), value="newest",
                                     layout={"width": "130px"})
        self.page_size = widgets.Dropdown(options=[(f"{n} per page", n) for n in PAGE_SIZES],
                                          value=PAGE_SIZES[0], layout={"width": "110px"})
        self.first_button = widgets.Button(description="«", tooltip="first page", layout=_NAV)
        self.prev_button = widgets.Button(description="‹", tooltip="previous page", layout=_NAV)
        self.next_button = widgets.Button(description="›", tooltip="next page", layout=_NAV)
        self.last_button = widgets.Button(description="»", tooltip="last page", layout=_NAV)
        self.page_label = widgets.Label()
        self.retry_failed_button = widgets.Button(
            description="Retry failed", tooltip="dispatch again every failed job of this filter",
            layout={"width": "auto"})
        self.cancel_selected_button = widgets.Button(description="Cancel selected", disabled=True,
                                                     layout={"width": "auto"})
        self.message = widgets.HTML()
        self.grid = QueueGrid(self._act, report_visibility=True)
        # The rows below an open Details, when it is not the page's last row.
        self.rest_grid = QueueGrid(self._act, header=False)
        self.detail = DetailView(on_rerun=on_rerun)
        for widget, name in (
                (self.search, "nj-search"), (self.status_filter, "nj-status-filter"),
                (self.page_size, "nj-page-size"), (self.sort, "nj-sort"),
                (self.first_button, "nj-first-page"), (self.prev_button, "nj-prev-page"),
                (self.next_button, "nj-next-page"), (self.last_button, "nj-last-page"),
                (self.page_label, "nj-page-label"), (self.grid, "nj-queue-table"),
                (self.rest_grid, "nj-queue-table-rest"),
                (self.retry_failed_button, "nj-retry-failed"),
                (self.cancel_selected_button, "nj-cancel-selected"),
                (self.message, "nj-queue-message")):
            widget.add_class(name)
        on_click(self.first_button, lambda: self.go_to(1))
        on_click(self.prev_button, lambda: self.go_to(self.page - 1))
        on_click(self.next_button, lambda: self.go_to(self.page + 1))
        on_click(self.last_button, lambda: self.go_to(self.pages))
        on_click(self.retry_failed_button, self.retry_failed)
        on_click(self.cancel_selected_button, self.cancel_selected)
        for control in (self.search, self.status_filter, self.page_size, self.sort):
            control.observe(lambda _c: self.go_to(1), names="value")
        for grid in (self.grid, self.rest_grid):
            grid.observe(lambda _c: self._show_selection(), names="selected")
        wrap = {"align_items": "center", "flex_flow": "row wrap", "width": "100%"}
        pager = widgets.HBox([self.first_button, self.prev_button, self.page_label,
                              self.next_button, self.last_button],
                             layout={"align_items": "center", "flex_flow": "row nowrap"})
        filters = widgets.HBox([self.search, self.status_filter, self.sort, self.page_size, pager],
                               layout=dict(wrap))
        bulk = widgets.HBox([self.retry_failed_button, self.cancel_selected_button,
                             self.message], layout=dict(wrap))
        self.body = widgets.VBox([self.grid, self.detail], layout={"width": "100%"})
        self.body.add_class("nj-queue-body")
        super().__init__([filters, bulk, self.body], layout={"width": "100%"})
        self.add_class("nj-queue")

    # --- reading ------------------------------------------------------------------------------

    @property
    def status(self) -> str | None:
        """The status filter: None for all jobs."""
        return None if self.status_filter.value == ALL else self.status_filter.value

    @property
    def search_text(self) -> str | None:
        """The search box's text; None when blank."""
        return self.search.value.strip() or None

    @property
    def selected(self) -> list[int]:
        """The ticked jobs of the page, in page order."""
        ticked = set(self.grid.selected) | set(self.rest_grid.selected)
        return [i for i in self.ids if i in ticked]

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
            self._say(error_text(exc), "error")

    def _read(self) -> Any:
        return client.jobs(page=self.page, per_page=self.page_size.value, status=self.status,
                           order=self.sort.value, search=self.search_text)

    def refresh(self, now: datetime | None = None) -> None:
        """Read the current page (and the open detail) and update what changed.

        Raises NotebookJobsError when the queue cannot be read; the dashboard shows it.
        """
        now = now or _now()
        with self._lock:
            frame = self._read()
            if self.page > frame.attrs["pages"]:  # jobs went away: show the last page there is
                self.page = frame.attrs["pages"]
                frame = self._read()
            self._show(frame)
            if self.detail.job_id is not None:
                try:
                    self.detail.update(client.status(self.detail.job_id), now)
                except JobNotFoundError:  # pruned meanwhile: nothing left to show
                    self.detail.hide()

    def _show(self, frame: Any) -> None:
        self.pages, self.total = int(frame.attrs["pages"]), int(frame.attrs["total"])
        rows = page_rows(frame)
        self.ids = [row["id"] for row in rows]
        self._statuses = {row["id"]: row["status"] for row in rows}
        # Details open on a job of this page: its row ends the top part, the rest go below.
        cut = (self.ids.index(self.detail.job_id) + 1 if self.detail.job_id in self.ids
               else len(rows))
        empty = ("no jobs match this search" if self.search_text
                 else "no jobs" if self.status is None else f"no {self.status} jobs")
        if self.grid.empty_text != empty:
            self.grid.empty_text = empty
        for grid, part in ((self.grid, rows[:cut]), (self.rest_grid, rows[cut:])):
            if grid.rows != part:
                grid.rows = part
            kept = [i for i in grid.selected if i in {r["id"] for r in part}]
            if kept != list(grid.selected):
                grid.selected = kept
        children = ((self.grid, self.detail, self.rest_grid) if cut < len(rows)
                    else (self.grid, self.detail))
        if self.body.children != children:
            self.body.children = children
        noun = "job" if self.total == 1 else "jobs"
        label = f"page {self.page} of {self.pages} ({self.total} {noun})"
        if self.page_label.value != label:
            self.page_label.value = label
        for button, disabled in ((self.first_button, self.page <= 1),
                                 (self.prev_button, self.page <= 1),
                                 (self.next_button, self.page >= self.pages),
                                 (self.last_button, self.page >= self.pages),
                                 (self.retry_failed_button, self.status not in (None, "failed"))):
            if button.disabled != disabled:
                button.disabled = disabled
        self._show_selection()

    def _show_selection(self) -> None:
        chosen = self.selected
        cancellable = [i for i in chosen if self._statuses.get(i) in ("pending", "running")]
        text = f"Cancel selected ({len(cancellable)})" if chosen else "Cancel selected"
        if self.cancel_selected_button.description != text:
            self.cancel_selected_button.description = text
        if self.cancel_selected_button.disabled != (not cancellable):
            self.cancel_selected_button.disabled = not cancellable

    def _say(self, text: str, kind: str = "ok") -> None:
        value = message_html(text, kind)
        if self.message.value != value:
            self.message.value = value

    # --- acting -------------------------------------------------------------------------------

    def _act(self, action: str, job_id: int) -> None:
        """A row's button: cancel, retry or details; the outcome shows on the row."""
        with self._lock:
            grid = self.grid if job_id in {r["id"] for r in self.grid.rows} else self.rest_grid
            try:
                text = self.act(action, job_id)
            except NotebookJobsError as exc:
                grid.outcome(job_id, error_text(exc), "error")
                return
            self._refresh_shown()
            if text:
                # After the refresh: the row may have moved to the other grid.
                grid = (self.grid if job_id in {r["id"] for r in self.grid.rows}
                        else self.rest_grid)
                grid.outcome(job_id, text, "ok")

    def act(self, action: str, job_id: int) -> str:
        """Do ``action`` on the job; a few words on what happened."""
        if action == "cancel":  # a finished job: JobStateError, shown on its row
            return client.cancel_said(job_id)[1]
        if action == "retry":
            return f"dispatched again as job {handle.retry(job_id)}"
        if action == "details":
            self.detail.show_job(client.status(job_id), _now())
            return ""  # the refresh that follows moves it below the job's row
        raise ValueError(f"unknown action {action!r}; expected cancel, retry or details")

    def _filtered_ids(self, status: str) -> list[int]:
        """Every job of ``status`` that matches the search box, oldest first."""
        ids: list[int] = []
        page = 1
        while True:
            frame = client.jobs(page=page, per_page=BULK_PAGE, status=status, order="oldest",
                                search=self.search_text)
            ids += [int(i) for i in frame["id"]]
            if page >= frame.attrs["pages"]:
                return ids
            page += 1

    def retry_failed(self) -> list[int]:
        """Dispatch again every failed job of the filter (the search box; the status filter
        is all or failed); the new jobs' ids. Reported in one line, failures kept."""
        with self._lock:
            if self.status not in (None, "failed"):
                return []
            done: list[str] = []
            failed: list[str] = []
            new: list[int] = []
            try:
                for job_id in self._filtered_ids("failed"):
                    try:
                        new_id = int(handle.retry(job_id))
                    except NotebookJobsError as exc:
                        failed.append(f"job {job_id}: {error_text(exc)}")
                    else:
                        new.append(new_id)
                        done.append(f"{job_id} as {new_id}")
            except NotebookJobsError as exc:
                failed.append(error_text(exc))
            if not done and not failed:
                self._say("no failed jobs match this filter", "info")
            else:
                self._say(*bulk_report("dispatched again", done, failed))
            self._refresh_shown()
            return new

    def cancel_selected(self) -> list[int]:
        """Cancel the ticked pending and running jobs; running ones only after a second click
        within CONFIRM_S (the first one asks). The ids cancelled."""
        with self._lock:
            chosen = [i for i in self.selected
                      if self._statuses.get(i) in ("pending", "running")]
            running = [i for i in chosen if self._statuses.get(i) == "running"]
            if running and self._clock() > self._confirm_until:
                self._confirm_until = self._clock() + CONFIRM_S
                self._say(f"{len(running)} of them running: click again within "
                          f"{CONFIRM_S:g} s to stop {'it' if len(running) == 1 else 'them'}",
                          "info")
                return []
            self._confirm_until = 0.0
            done: list[str] = []
            failed: list[str] = []
            ids: list[int] = []
            for job_id in chosen:
                try:
                    took, said = client.cancel_said(job_id)
                except NotebookJobsError as exc:
                    failed.append(f"job {job_id}: {error_text(exc)}")
                else:
                    if took:  # "cancelled", or "cancel requested" while it stops
                        ids.append(int(job_id))
                        done.append(str(job_id) if said == "cancelled" else f"{job_id} ({said})")
            self._say(*bulk_report("cancelled", done, failed))
            for grid in (self.grid, self.rest_grid):
                grid.selected = []
            self._refresh_shown()
            return ids

    def close(self) -> None:
        """Close the section and every widget in it."""
        for child in (*self.children, self.rest_grid, self.detail):
            close_tree(child)
        super().close()
