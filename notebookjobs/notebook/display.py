"""Small helpers shared by the dashboard's sections: names, colours, messages, durations."""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any

import pandas as pd

from ..model.records import STATUS_NAMES

#: The five job states (SPEC §5), in lifecycle order, with the colour each is shown in.
STATUS_COLOURS = {
    "pending": "#9a6700",
    "running": "#0969da",
    "completed": "#1a7f37",
    "failed": "#cf222e",
    "cancelled": "#6e7781",
}
STATUSES = STATUS_NAMES
#: The dashboard's stylesheet (an HTML widget's <style>): it fits the width it is given
#: (Lab's main area beside the file browser, a 390 px phone), inputs never overflow it, and
#: controls wrap instead of cutting their text ("St…"). A job's details are single-spaced:
#: ipywidgets gives an HTML widget's lines the height of a button (28 px), which spread a
#: frame's first 10 rows over 320 px and more.
STYLE = ("<style>.nj-dashboard, .nj-dashboard .widget-box { min-width: 0; max-width: 100%; }"
         ".nj-detail-body .widget-html-content { line-height: 1.4; }"
         ".nj-detail-body td, .nj-detail-body th { padding: 1px 10px 1px 0; line-height: 1.4;"
         " border: none; }"
         ".nj-detail-body .nj-detail-frame td, .nj-detail-body .nj-detail-frame th"
         " { padding: 1px 6px; white-space: nowrap; }"
         ".nj-dashboard .widget-button { flex-shrink: 0; }"
         ".nj-dashboard .widget-text, .nj-dashboard .widget-dropdown { max-width: 100%; }"
         ".nj-dashboard pre { font-family: var(--jp-code-font-family, monospace); }"
         ".nj-dashboard .nj-worker-state, .nj-dashboard .nj-counts .widget-html-content"
         " { white-space: normal; overflow-wrap: anywhere; height: auto; line-height: 1.5; }"
         "</style>")
_MESSAGE_COLOURS = {"error": "#cf222e", "ok": "#1a7f37", "info": "#57606a"}


def css_name(text: str) -> str:
    """``text`` reduced to characters that are safe in a CSS class name (dots become dashes)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)


def message_html(text: str, kind: str = "info") -> str:
    """Escaped ``text`` in the colour of ``kind`` (error, ok, info); empty text gives ''."""
    if not text:
        return ""
    colour = _MESSAGE_COLOURS[kind]
    return (f'<span style="color:{colour};white-space:pre-wrap">'
            f"{html.escape(text, quote=False)}</span>")


def error_text(exc: BaseException) -> str:
    """One line for the user: the error's class and message, never a traceback."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def seconds_text(seconds: float | None) -> str:
    """A duration for people: '12 ms', '4.2 s', '12 s', '3 min 05 s', '2 h 07 min'; '' for
    None. Short jobs read in milliseconds, not as "0.0 s"."""
    if seconds is None or pd.isna(seconds):
        return ""
    value = abs(float(seconds))
    if value < 0.001:
        text = "<1 ms"
    elif value < 1:
        text = f"{value * 1000:.0f} ms"
    elif value < 10:
        text = f"{value:.1f} s"
    elif value < 60:
        text = f"{int(value)} s"  # floor, so 59.9 s never shows as "60 s"
    elif value < 3600:
        text = f"{int(value // 60)} min {int(value % 60):02d} s"
    else:
        text = f"{int(value // 3600)} h {int(value % 3600 // 60):02d} min"
    return text


def between(start: Any, end: Any) -> float | None:
    """Seconds from ``start`` to ``end`` (datetimes or timestamps); None if either is missing."""
    if start is None or end is None or pd.isna(start) or pd.isna(end):
        return None
    return (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds()


def short_time(value: Any, now: datetime) -> str:
    """Local 'HH:MM:SS' for a moment of today, 'YYYY-MM-DD HH:MM' for other days; '' if missing."""
    if value is None or pd.isna(value):
        return ""
    moment = pd.Timestamp(value).to_pydatetime().astimezone()
    if moment.date() == now.astimezone().date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def local_time(value: Any) -> str:
    """A UTC timestamp as local wall-clock time, 'YYYY-MM-DD HH:MM:SS'; '' when missing."""
    if value is None or pd.isna(value):
        return ""
    stamp = pd.Timestamp(value)
    moment: datetime = stamp.to_pydatetime()
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def close_tree(widget: Any) -> None:
    """Close a widget and everything under it (``Widget.close`` does not close children)."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    widget.close()


def on_click(button: Any, action: Any) -> None:
    """Call ``action()`` when ``button`` is clicked, unless it is disabled.

    ``Button.click()`` runs the handlers even for a disabled button; a browser never does, and
    tests click through ``.click()``, so the check keeps the two the same.
    """
    button.on_click(lambda b: None if b.disabled else action())
