"""The detail view of one job: its fields, every attempt's error, captured output and result
(a frame's first rows as a Styler table, an array's shape and dtype), and *Edit & re-run*."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import ipywidgets as widgets

from ..errors import NotebookJobsError
from ..notebook import handle
from ..notebook.display import (
    STATUS_COLOURS,
    between,
    close_tree,
    error_text,
    local_time,
    message_html,
    on_click,
    seconds_text,
)
from .table import after_text, arguments_text

PREVIEW_ROWS = 10  #: rows of a frame result shown
FINAL = ("completed", "failed", "cancelled")

# Monospace and single-spaced everywhere: Voila's page styles a bare <pre> in its proportional
# font with double spacing (8 traceback lines per 240 px), so the font is named here.
_PRE = ("margin:0;padding:4px 6px;white-space:pre-wrap;overflow-wrap:anywhere;font-size:11px;"
        "line-height:1.35;font-family:var(--jp-code-font-family,ui-monospace,SFMono-Regular,"
        "Menlo,Consolas,monospace)")
# The box scrolls, and a column-reverse box starts scrolled to its end: a long output or
# traceback opens at its last lines, where the error is.
_BOX = ("display:flex;flex-direction:column-reverse;max-height:240px;overflow:auto;"
        "background:#f6f8fa;margin:2px 0 6px 0")


def _block(title: str, text: str, css: str) -> str:
    return (f"<div><b>{title}</b><div style='{_BOX}'><pre class='{css}' style='{_PRE}'>"
            f"{html.escape(text, quote=False)}</pre></div></div>")


def detail_html(info: dict[str, Any], now: datetime) -> str:
    """The HTML of one job's details, from ``client.status()``."""
    status = info["status"]
    colour = STATUS_COLOURS.get(status, "")
    running = status == "running"
    fields = [
        ("target", info["target"]),
        ("arguments", arguments_text(info["args"], info["kwargs"]) or "none"),
        ("priority", info["priority"]),
        ("attempts", f"{info['attempts']}/{info['max_attempts']}"),
        ("created", local_time(info["created_at"])),
        ("run at", local_time(info["run_at"])),
        ("started", local_time(info["started_at"])),
        ("finished", local_time(info["finished_at"])),
        ("duration", seconds_text(between(info["started_at"],
                                          now if running else info["finished_at"]))),
    ]
    for name, value in (("waits for", after_text(info.get("after"))),
                        ("unique key", info.get("unique_key")), ("schedule", info.get("schedule"))):
        if value:
            fields.append((name, value))
    if running and (info["progress"] is not None or info["progress_message"]):
        pct = "" if info["progress"] is None else f"{float(info['progress']) * 100:.0f}% "
        fields.append(("progress", pct + (info["progress_message"] or "")))
    rows = "".join(f"<tr><td style='color:#57606a'>{name}</td>"
                   f"<td>{html.escape(str(value))}</td></tr>" for name, value in fields)
    parts = [f"<div><b>job {info['id']}</b> <span style='color:{colour};font-weight:bold'>"
             f"{html.escape(status)}</span></div><table style='font-size:12px'>{rows}</table>"]
    errors = info.get("errors") or []
    if len(errors) > 1:  # every attempt's, the last one open: it is the job's error
        parts.append(_errors_html(errors))
    elif info["error"]:
        parts.append(_block("error", info["error"], "nj-detail-error"))
    if info["output"]:
        parts.append(_block("output", info["output"], "nj-detail-output"))
    if info["result"] is not None or status == "completed":
        parts.append(_result_html(info))
    return "".join(parts)


def _errors_html(errors: list[dict[str, Any]]) -> str:
    """Every failed attempt, its error's last line, the whole traceback folded under it."""
    items = []
    for number, entry in enumerate(errors, 1):
        text = str(entry.get("error") or "")
        last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
        opened = " open" if number == len(errors) else ""
        css = " class='nj-detail-error'" if number == len(errors) else ""
        items.append(f"<details{opened}><summary>attempt {entry.get('attempt')} · "
                     f"{html.escape(local_time(entry.get('at')))} · {html.escape(last)}"
                     f"</summary><div style='{_BOX}'><pre{css} style='{_PRE}'>"
                     f"{html.escape(text)}</pre></div></details>")
    return (f"<div class='nj-detail-errors'><b>errors of every attempt ({len(errors)})</b>"
            + "".join(items) + "</div>")


_previews: dict[tuple[int, Any], str] = {}  # (job id, finished_at) -> its frame's table


def _result_html(info: dict[str, Any]) -> str:
    """The result: a frame's first rows, an array's shape and dtype, else its JSON."""
    kind, summary = info.get("result_type"), info["result"]
    if kind in ("DataFrame", "Series") and info["status"] == "completed":
        key = (info["id"], info["finished_at"])
        if key not in _previews:  # read once per job, not at every refresh
            try:
                frame = handle.preview(info, PREVIEW_ROWS)
                if kind == "Series":
                    frame = frame.to_frame()
                table = frame.style.set_table_attributes('class="nj-detail-frame"').to_html()
            except NotebookJobsError as exc:
                table = html.escape(error_text(exc))
            _previews[key] = table
        rows = summary.get("rows") if isinstance(summary, dict) else None
        # All of the rows shown in sight (no box of their own to scroll), wide frames sideways.
        return (f"<div class='nj-detail-result'><b>result</b>: {kind}, {rows} rows; the first "
                f"{min(PREVIEW_ROWS, rows or 0)}:<div style='overflow-x:auto;font-size:11px'>"
                f"{_previews[key]}</div></div>")
    if kind == "ndarray" and isinstance(summary, dict) and info["status"] == "completed":
        key = (info["id"], info["finished_at"])
        if key not in _previews:  # the first rows, read once per job
            try:
                import numpy as np

                values = handle.preview(info, PREVIEW_ROWS)
                with np.printoptions(threshold=200, edgeitems=5, linewidth=100):
                    _previews[key] = html.escape(repr(values))
            except (NotebookJobsError, OSError, ValueError) as exc:
                _previews[key] = html.escape(error_text(exc))
        shape = tuple(summary.get("shape", ()))
        first = f"; the first {PREVIEW_ROWS}" if shape and shape[0] > PREVIEW_ROWS else ""
        return (f"<div class='nj-detail-result'><b>result</b>: ndarray, shape {shape}, dtype "
                f"{html.escape(str(summary.get('dtype')))}{first}:<div style='{_BOX}'>"
                f"<pre style='{_PRE}'>{_previews[key]}</pre></div></div>")
    return _block("result", json.dumps(summary, indent=2), "nj-detail-result")


class DetailView(widgets.VBox):
    """Shows one job's details below its row; empty (and hidden) until a job is opened.
    ``on_rerun(status)``: *Edit & re-run* was clicked for a finished job."""

    def __init__(self, on_rerun: Callable[[dict[str, Any]], object] | None = None) -> None:
        self.job_id: int | None = None
        self.info: dict[str, Any] | None = None
        self.body = widgets.HTML()
        self.body.add_class("nj-detail-body")
        self.close_button = widgets.Button(description="Close details")
        self.close_button.add_class("nj-detail-close")
        on_click(self.close_button, self.hide)
        self.rerun_button = widgets.Button(description="Edit & re-run", icon="edit",
                                           tooltip="open the Dispatch form with this job's "
                                           "arguments, priority and delay",
                                           layout={"width": "140px"})
        self.rerun_button.add_class("nj-detail-rerun")
        self._on_rerun = on_rerun
        on_click(self.rerun_button, self._rerun)
        #: where *Edit & re-run* opens its form: in the details, below the job's row
        self.form_area = widgets.VBox()
        self.form_area.add_class("nj-detail-form-area")
        self.message = widgets.HTML()
        self.message.add_class("nj-detail-message")
        # Hidden with display:none rather than emptied, so its widgets stay in ``children``.
        super().__init__([self.body, widgets.HBox([self.rerun_button, self.close_button,
                                                   self.message],
                                                  layout={"flex_flow": "row wrap",
                                                          "align_items": "center"}),
                          self.form_area],
                         layout={"display": "none", "border": "1px solid #d0d7de",
                                 "padding": "6px", "margin": "4px 0", "max_width": "100%"})
        self.add_class("nj-detail")

    def show_job(self, info: dict[str, Any], now: datetime) -> None:
        """Show the job of ``info`` (from ``client.status``)."""
        if self.job_id != int(info["id"]):
            self.message.value = ""
            for form in self.form_area.children:
                close_tree(form)
            self.form_area.children = ()
        self.job_id = int(info["id"])
        self.update(info, now)
        self.layout.display = None

    def update(self, info: dict[str, Any], now: datetime) -> None:
        """Refresh the text of the open job (only sent to the page when it changed)."""
        self.info = info
        text = detail_html(info, now)
        if self.body.value != text:
            self.body.value = text
        # Edit & re-run: any finished job (a running one can be cancelled, then re-run).
        disabled = info["status"] not in FINAL or self._on_rerun is None
        if self.rerun_button.disabled != disabled:
            self.rerun_button.disabled = disabled

    def say(self, text: str) -> None:
        """A problem with this job's buttons (Edit & re-run refused), beside them."""
        self.message.value = message_html(text, "error")

    def _rerun(self) -> None:
        if self.info is not None and self._on_rerun is not None:
            self._on_rerun(self.info)

    def hide(self) -> None:
        """Close the view (and a form open in it); the next refresh stops reading the job."""
        self.job_id = None
        self.layout.display = "none"
        for form in self.form_area.children:
            close_tree(form)
        self.form_area.children = ()

    def close(self) -> None:
        """Close the view and its widgets."""
        for child in self.children:
            close_tree(child)
        super().close()
