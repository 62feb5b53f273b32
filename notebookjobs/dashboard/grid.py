"""The queue's table: one anywidget (an ES module and a stylesheet shipped in this package)
that draws a whole page from one trait of rows.

Why not a widget per cell or row: at 20 rows per page the old table (an HTML widget plus a
status Label and three Buttons per row) showed rows for ~1.3 s without their status and buttons,
each a model of its own to create in the page. Now a page is one comm message (20 rows of
two short arguments: 6.9 KB of JSON), and the browser builds the table in one go
(benchmarks/dashboard_bench.py times a change until it is shown). Why anywidget rather than
HTML with delegated events: an ipywidgets HTML widget cannot run code nor send clicks back,
so its buttons had to be widgets beside it, which is what made the rows slow and misaligned;
anywidget (one ES module, no build step, no CDN: the module travels as a trait over the
kernel's own channel) runs in Lab, Notebook 7, Voila and VS Code, and its frontend comes with
the package from PyPI.

What the browser sends back: ``{"action": "cancel" | "retry" | "details", "id": n}``, the
selection (``selected``), and whether the page is hidden (``page_hidden``, from the browser's
``visibilitychange``: a hidden tab pauses the dashboard). What the kernel sends besides the rows:
``{"outcome": {"id", "text", "kind"}}``, shown on the row and faded after a few seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

logger = logging.getLogger(__name__)

_STATIC = Path(__file__).with_name("static")
ACTIONS = ("cancel", "retry", "details")


class QueueGrid(anywidget.AnyWidget):
    """A page of jobs (``rows``: ``table.page_rows``); ``on_action(action, job_id)`` is called
    for a click on a row's Cancel, Retry or Details."""

    _esm = _STATIC / "grid.js"
    _css = _STATIC / "grid.css"
    #: the jobs of the page, as ``table.page_rows`` makes them
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: the column headings and the select-all box (False for the rows below an open Details)
    header = traitlets.Bool(True).tag(sync=True)
    #: whether this grid tells the kernel when the browser tab is hidden (one grid does)
    report_visibility = traitlets.Bool(False).tag(sync=True)
    #: ids of the jobs whose box is ticked
    selected = traitlets.List(traitlets.Int()).tag(sync=True)
    #: the browser tab is hidden (``document.hidden``), as its last view reported
    page_hidden = traitlets.Bool(False).tag(sync=True)
    #: text shown when ``rows`` is empty
    empty_text = traitlets.Unicode("no jobs").tag(sync=True)

    def __init__(self, on_action: Callable[[str, int], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_action = on_action
        self.on_msg(self._message)

    def _message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        action, job_id = content.get("action"), content.get("id")
        # The browser is outside: a message that is not one of ours is dropped, never trusted.
        if action not in ACTIONS or not isinstance(job_id, int) or isinstance(job_id, bool):
            logger.warning("dashboard: ignored a message from the page: %r", content)
            return
        self.click(action, job_id)

    def click(self, action: str, job_id: int) -> None:
        """What a click on a row's button does (tests call it as the page would)."""
        if job_id not in {row["id"] for row in self.rows}:
            return  # the page no longer shows it: a click on a row that has gone
        self._on_action(action, job_id)

    def outcome(self, job_id: int, text: str, kind: str = "ok") -> None:
        """Show ``text`` on the job's row for a few seconds (``kind``: ok or error)."""
        self.last_outcome = (job_id, text, kind)
        self.send({"outcome": {"id": job_id, "text": text, "kind": kind}})

    last_outcome: tuple[int, str, str] | None = None
