"""The queue page as HTML, rendered by a pandas ``Styler`` (pure: a frame in, a string out).

``queue_html`` takes a page from ``client.jobs()`` and the current time and gives the table the
dashboard shows. The status itself and the Cancel/Retry/Details buttons are widgets in a column
beside this table (HTML in a Styler cannot host widgets); both use ``ROW_HEIGHT_PX`` so they line
up as one table. Rows are tinted by status here, so the colours are part of the Styler table.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any

import pandas as pd

from .common import ROW_HEIGHT_PX, STATUS_TINTS, between, seconds_text, short_time

#: Columns of the rendered table, in order.
COLUMNS = ("id", "target", "arguments", "priority", "attempts", "progress", "wait", "duration",
           "created", "after")
ARGUMENTS_MAX_CHARS = 40  # longer argument lists are cut; the full text is in the tooltip
#: Each column's width in pixels. Fixed, so that the table keeps one width whatever its
#: content, scrolls sideways as a whole in a narrow notebook, and its parts above and below an
#: open Details line up column by column.
COLUMN_WIDTHS_PX = (48, 190, 190, 70, 78, 170, 84, 84, 76)


def _titled(text: str, limit: int | None = None) -> str:
    """Escaped text, cut to ``limit`` characters, with the full text as a tooltip."""
    shown = text if limit is None or len(text) <= limit else text[:limit - 1] + "…"
    return f'<span title="{html.escape(text)}">{html.escape(shown)}</span>'


def arguments_text(args: Any, kwargs: Any) -> str:
    """``1, "a", key=2``: the job's arguments as JSON, as they were dispatched."""
    parts = [json.dumps(a) for a in (args or [])]
    parts += [f"{k}={json.dumps(v)}" for k, v in (kwargs or {}).items()]
    return ", ".join(parts)


def after_text(after: Any) -> str:
    """The ids a job waits for (SPEC §16): "3, 4"; '' for none."""
    if after is None or isinstance(after, float):  # None, or NaN in a frame
        return ""
    return ", ".join(str(int(i)) for i in after)


def progress_html(fraction: Any, message: Any) -> str:
    """A small bar and a percentage (or just the message when the job reports no fraction)."""
    label = "" if message is None or pd.isna(message) else str(message)
    if fraction is None or pd.isna(fraction):
        return _titled(label or "running", 24)
    pct = max(0.0, min(1.0, float(fraction))) * 100
    bar = (f'<span class="nj-bar" style="display:inline-block;width:70px;height:9px;'
           f'background:#d0d7de;border-radius:4px;vertical-align:middle;overflow:hidden">'
           f'<span style="display:block;height:100%;width:{pct:.0f}%;background:#0969da">'
           f"</span></span>")
    return f'{bar} {pct:.0f}%' + (f" {_titled(label, 20)}" if label else "")


def wait_text(row: pd.Series, now: datetime) -> str:
    """Time between run_at and the start; 'in 55 s' for a job whose run_at is still ahead."""
    if row["status"] == "pending":
        seconds = between(row["run_at"], now)
        if seconds is None:
            return ""
        return f"in {seconds_text(-seconds)}" if seconds < 0 else seconds_text(seconds)
    return seconds_text(between(row["run_at"], row["started_at"]))


def duration_text(row: pd.Series, now: datetime) -> str:
    """Run time of the (last) attempt: up to now for a running job."""
    end = now if row["status"] == "running" else row["finished_at"]
    return seconds_text(between(row["started_at"], end))


def display_frame(page: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """The page as the table's cells: text and small HTML snippets, one row per job."""
    rows = []
    for _, row in page.iterrows():
        running = row["status"] == "running"
        rows.append({
            "id": int(row["id"]),
            "target": _titled(str(row["target"])),
            "arguments": _titled(arguments_text(row["args"], row["kwargs"]), ARGUMENTS_MAX_CHARS),
            "priority": int(row["priority"]),
            "attempts": f"{int(row['attempts'])}/{int(row['max_attempts'])}",
            "progress": progress_html(row["progress"], row["progress_message"]) if running else "",
            "wait": wait_text(row, now),
            "duration": duration_text(row, now),
            "created": short_time(row["created_at"], now),
            "after": _titled(after_text(row.get("after")), ARGUMENTS_MAX_CHARS),
        })
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _table_styles() -> list[Any]:  # Styler's CSSDicts
    # Fixed row heights and no wrapping keep the rows level with the widget column beside them.
    cell = (f"height:{ROW_HEIGHT_PX}px;line-height:{ROW_HEIGHT_PX}px;padding:0 8px;"
            "white-space:nowrap;overflow:hidden;text-overflow:ellipsis;border:none;"
            "font-size:12px;text-align:left;box-sizing:border-box")
    total = sum(COLUMN_WIDTHS_PX)
    return [
        {"selector": "", "props": "border-collapse:collapse;border-spacing:0;margin:0;"
                                  f"table-layout:fixed;width:{total}px;min-width:{total}px"},
        {"selector": "th", "props": cell + ";font-weight:600;background:#f6f8fa"},
        {"selector": "td", "props": cell},
        *({"selector": f".col{i}", "props": f"width:{width}px;max-width:{width}px"}
          for i, width in enumerate(COLUMN_WIDTHS_PX)),
    ]


def queue_html(page: pd.DataFrame, now: datetime, uuid: str, header: bool = True) -> str:
    """The Styler HTML of one queue page (or part of it: ``header`` False for the rows below
    an open Details); ``uuid`` keeps element ids stable between refreshes.

    A stable uuid matters: Styler picks a random one by default, which would change the HTML
    (and re-send it to the browser) every refresh even when nothing else changed.
    """
    cells = display_frame(page, now)
    status_of = dict(zip(cells.index, page["status"], strict=True))

    def tint(row: pd.Series) -> list[str]:
        colour = STATUS_TINTS.get(status_of[row.name], "")
        return [f"background-color:{colour}" if colour else ""] * len(row)

    styler = (cells.style.hide(axis="index").set_uuid(uuid)
              .set_table_attributes('class="nj-table"')
              .set_table_styles(_table_styles()))
    if not header:
        styler = styler.hide(axis="columns")
    if len(cells):
        styler = styler.apply(tint, axis=1)
    return styler.to_html()
