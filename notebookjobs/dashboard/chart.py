"""The small chart under the queue: jobs finished per minute (completed and failed, stacked
bars) and their median wait (a line), over the last hour. Pure: an ``nj.history`` frame in,
inline SVG out (no plotting library, nothing fetched: the page loads nothing from elsewhere)."""

from __future__ import annotations

import html
from datetime import datetime, timedelta

import pandas as pd

WINDOW = timedelta(hours=1)
BUCKET = timedelta(minutes=1)
_W, _H, _PAD = 600, 120, 28  # the drawing's units; the SVG scales to the width it has
_COLOURS = {"completed": "#1a7f37", "failed": "#cf222e", "wait": "#9a6700"}


def buckets(history: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Per minute of the last hour: completed, failed, and the median wait in seconds."""
    start = pd.Timestamp(now - WINDOW).floor("min")
    index = pd.date_range(start, periods=int(WINDOW / BUCKET) + 1, freq="min")
    frame = pd.DataFrame(0, index=index, columns=["completed", "failed"])
    frame["wait"] = float("nan")
    if history.empty:
        return frame
    done = history[history["status"].isin(["completed", "failed"])
                   & history["finished_at"].notna()].copy()
    done["minute"] = pd.to_datetime(done["finished_at"], utc=True).dt.floor("min")
    done = done[done["minute"] >= start]
    if done.empty:
        return frame
    counts = done.groupby(["minute", "status"], observed=True).size().unstack(fill_value=0)
    for status in ("completed", "failed"):
        if status in counts:
            frame.loc[counts.index, status] = counts[status].to_numpy()
    waits = done.groupby("minute", observed=True)["wait_s"].median()
    frame.loc[waits.index, "wait"] = waits.to_numpy()
    return frame


def chart_svg(history: pd.DataFrame, now: datetime) -> str:
    """The chart of ``buckets`` as an SVG element; a line of text when nothing finished."""
    frame = buckets(history, now)
    total = int(frame["completed"].sum() + frame["failed"].sum())
    if total == 0:
        return ("<div class='nj-chart-empty' style='color:#57606a;font-size:12px'>no job "
                "finished in the last hour</div>")
    top = max(1, int((frame["completed"] + frame["failed"]).max()))
    wait_top = float(frame["wait"].max()) if frame["wait"].notna().any() else 0.0
    width = (_W - 2 * _PAD) / len(frame)
    parts = []
    for i, (minute, row) in enumerate(frame.iterrows()):
        x = _PAD + i * width
        y = float(_H - _PAD)
        for status in ("completed", "failed"):
            count = int(row[status])
            if count:
                height = count / top * (_H - 2 * _PAD)
                y -= height
                stamp = pd.Timestamp(str(minute)).tz_convert(None).strftime("%H:%M")
                parts.append(f"<rect x='{x:.1f}' y='{y:.1f}' width='{max(1.0, width - 1):.1f}' "
                             f"height='{height:.1f}' fill='{_COLOURS[status]}'><title>{stamp}: "
                             f"{count} {status}</title></rect>")
    if wait_top > 0:
        points = " ".join(
            f"{_PAD + (i + 0.5) * width:.1f},"
            f"{_H - _PAD - wait / wait_top * (_H - 2 * _PAD):.1f}"
            for i, wait in enumerate(frame["wait"]) if pd.notna(wait))
        parts.append(f"<polyline points='{points}' fill='none' stroke='{_COLOURS['wait']}' "
                     "stroke-width='1.5'/>")
    legend = (f"{total} finished in the last hour · max {top}/min · median wait up to "
              f"{wait_top:.1f} s")
    axis = (f"<line x1='{_PAD}' y1='{_H - _PAD}' x2='{_W - _PAD}' y2='{_H - _PAD}' "
            "stroke='#d0d7de'/>"
            f"<text x='{_PAD}' y='{_H - 8}' font-size='10' fill='#57606a'>-60 min</text>"
            f"<text x='{_W - _PAD}' y='{_H - 8}' font-size='10' fill='#57606a' "
            "text-anchor='end'>now</text>"
            f"<text x='{_PAD}' y='14' font-size='11' fill='#24292f'>{html.escape(legend)}</text>")
    return (f"<svg class='nj-chart-svg' viewBox='0 0 {_W} {_H}' width='100%' "
            f"style='max-width:{_W}px' role='img' aria-label='{html.escape(legend)}'>"
            + axis + "".join(parts) + "</svg>")
