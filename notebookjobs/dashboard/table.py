"""The queue page as the rows the table widget draws (pure: a frame in, a list of dicts out).

``page_rows`` takes a page from ``client.jobs()`` and gives one plain dict per job: text the
browser shows as it is (escaped there), and times as epoch milliseconds, so that relative times
("3 min ago", a running job's duration) tick in the browser without a word from the kernel.
``grid.QueueGrid`` sends the list as one trait: a page is one update, however many rows.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

#: Status -> the actions a row offers (SPEC §9): Cancel while it may still run, Retry once it
#: failed or was cancelled
ACTIONS = {"pending": "cancel", "running": "cancel", "failed": "retry", "cancelled": "retry"}
ARGUMENTS_MAX_CHARS = 200  # the table cuts with an ellipsis anyway; the full text is a tooltip


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


def epoch_ms(value: Any) -> int | None:
    """A timestamp as milliseconds since the epoch (what JavaScript's Date takes); None if
    missing."""
    if value is None or pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.timestamp() * 1000)


def _number(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def status_label(status: str, attempts: int, max_attempts: int) -> str:
    """The status as a row shows it: a pending job that has run before waits for a retry
    ("retry 2/3"), which plain "pending 1/3" hid."""
    if status == "pending" and attempts > 0:
        return f"retry {attempts + 1}/{max_attempts}"
    return status


def page_rows(page: pd.DataFrame) -> list[dict[str, Any]]:
    """One dict per job of a ``client.jobs()`` page, in its order."""
    rows = []
    for row in page.to_dict("records"):
        status = str(row["status"])
        attempts, max_attempts = int(row["attempts"]), int(row["max_attempts"])
        running = status == "running"
        message = row.get("progress_message")
        rows.append({
            "id": int(row["id"]),
            "status": status,
            "label": status_label(status, attempts, max_attempts),
            "target": str(row["target"]),
            "arguments": arguments_text(row["args"], row["kwargs"])[:ARGUMENTS_MAX_CHARS],
            "priority": int(row["priority"]),
            "attempts": f"{attempts}/{max_attempts}",
            # Progress only while running: a finished job's last report is history, not state.
            "progress": _number(row.get("progress")) if running else None,
            "progress_text": str(message) if running and isinstance(message, str) else "",
            "created": epoch_ms(row["created_at"]),
            "run_at": epoch_ms(row["run_at"]),
            "started": epoch_ms(row["started_at"]),
            "finished": epoch_ms(row["finished_at"]),
            "after": after_text(row.get("after")),
            "action": ACTIONS.get(status, ""),
        })
    return rows
