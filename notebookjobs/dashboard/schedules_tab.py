"""The Schedules section: the schedules of whitelist.yaml with their next run and last job
(SPEC §16), one HTML table from ``client.schedules()``; hidden while there are none."""

from __future__ import annotations

import html
from datetime import datetime

import ipywidgets as widgets
import pandas as pd

from ..notebook.display import STATUS_COLOURS, short_time

#: the table's columns
COLUMNS = ("name", "target", "when", "next run", "last job", "problem")


def _cell(text: str) -> str:
    return f"<td style='padding:0 8px;white-space:nowrap'>{html.escape(text)}</td>"


def schedules_html(frame: pd.DataFrame, now: datetime) -> str:
    """The table of ``client.schedules()``; pure."""
    rows = []
    for row in frame.to_dict("records"):
        when = (f"cron {row['cron']} ({row['timezone']})" if isinstance(row["cron"], str)
                else f"every {row['every']}")
        if not row["enabled"]:
            when += ", disabled"
        last = "" if pd.isna(row["last_job"]) else f"job {int(row['last_job'])}"
        status = "" if row["last_status"] is None or pd.isna(row["last_status"]) else str(
            row["last_status"])
        colour = STATUS_COLOURS.get(status, "")
        last_cell = (f"<td style='padding:0 8px;white-space:nowrap'>{html.escape(last)} "
                     f"<span style='color:{colour}'>"
                     f"{html.escape(status)}</span></td>")
        rows.append("<tr>" + _cell(row["name"]) + _cell(row["target"]) + _cell(when)
                    + _cell(short_time(row["next_run"], now)) + last_cell
                    + f"<td style='color:#cf222e'>{html.escape(row['problem'])}</td></tr>")
    head = "".join(f"<th style='text-align:left;padding:0 8px;background:#f6f8fa;"
                   f"white-space:nowrap'>{c}</th>" for c in COLUMNS)
    return (f"<table class='nj-schedules-table' style='font-size:12px;border-collapse:collapse'>"
            f"<tr>{head}</tr>{''.join(rows)}</table>")


class SchedulesSection(widgets.VBox):
    """The schedules; ``update(frame, now)`` shows them (nothing when the frame is empty)."""

    def __init__(self) -> None:
        self.heading = widgets.HTML("<div style='font-weight:600;font-size:14px;"
                                    "margin-top:6px'>Schedules</div>")
        self.table = widgets.HTML(layout={"overflow": "auto", "max_width": "100%"})
        self.table.add_class("nj-schedules-table")
        super().__init__([self.heading, self.table], layout={"display": "none"})
        self.add_class("nj-schedules")

    def update(self, frame: pd.DataFrame, now: datetime) -> None:
        """Show the schedules of ``client.schedules()``; only what changed is sent."""
        display = None if len(frame) else "none"
        if self.layout.display != display:
            self.layout.display = display
        text = schedules_html(frame, now) if len(frame) else ""
        if self.table.value != text:
            self.table.value = text
