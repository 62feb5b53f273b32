"""The detail view of one job: its fields, error traceback, captured output and result."""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any

import ipywidgets as widgets

from .common import STATUS_COLOURS, between, local_time, on_click, seconds_text
from .table import after_text, arguments_text

_PRE = ("margin:2px 0 6px 0;padding:4px 6px;background:#f6f8fa;max-height:240px;overflow:auto;"
        "white-space:pre-wrap;font-size:11px")


def _block(title: str, text: str, css: str) -> str:
    return (f"<div><b>{title}</b><pre class='{css}' style='{_PRE}'>"
            f"{html.escape(text, quote=False)}</pre></div>")


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
    if info["progress"] is not None or info["progress_message"]:
        pct = "" if info["progress"] is None else f"{float(info['progress']) * 100:.0f}% "
        fields.append(("progress", pct + (info["progress_message"] or "")))
    rows = "".join(f"<tr><td style='padding:0 10px 0 0;color:#57606a'>{name}</td>"
                   f"<td>{html.escape(str(value))}</td></tr>" for name, value in fields)
    parts = [f"<div><b>job {info['id']}</b> <span style='color:{colour};font-weight:bold'>"
             f"{html.escape(status)}</span></div><table style='font-size:12px'>{rows}</table>"]
    if info["error"]:
        parts.append(_block("error", info["error"], "nj-detail-error"))
    if info["output"]:
        parts.append(_block("output", info["output"], "nj-detail-output"))
    if info["result"] is not None or status == "completed":
        parts.append(_block("result", json.dumps(info["result"], indent=2), "nj-detail-result"))
    return "".join(parts)


class DetailView(widgets.VBox):
    """Shows one job's details below the queue; empty (and hidden) until a job is opened."""

    def __init__(self) -> None:
        self.job_id: int | None = None
        self.body = widgets.HTML()
        self.body.add_class("nj-detail-body")
        self.close_button = widgets.Button(description="Close details")
        self.close_button.add_class("nj-detail-close")
        on_click(self.close_button, self.hide)
        # Hidden with display:none rather than emptied, so its widgets stay in ``children``.
        super().__init__([self.body, self.close_button],
                         layout={"display": "none", "border": "1px solid #d0d7de",
                                 "padding": "6px", "margin": "6px 0"})
        self.add_class("nj-detail")

    def show_job(self, info: dict[str, Any], now: datetime) -> None:
        """Show the job of ``info`` (from ``client.status``)."""
        self.job_id = int(info["id"])
        self.update(info, now)
        self.layout.display = None

    def update(self, info: dict[str, Any], now: datetime) -> None:
        """Refresh the text of the open job (only sent to the page when it changed)."""
        text = detail_html(info, now)
        if self.body.value != text:
            self.body.value = text

    def hide(self) -> None:
        """Close the view; the next refresh stops reading the job."""
        self.job_id = None
        self.layout.display = "none"

    def close(self) -> None:
        """Close the view and its widgets."""
        self.body.close()
        self.close_button.close()
        super().close()
