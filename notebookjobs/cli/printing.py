"""How the CLI and the ``%jobs`` magic print what they show: a job's fields, a page line, the
worker's state, a frame as text, and JSON for ``--json`` (times as ISO text, NaN as null).
pandas is imported only to print a frame: ``status`` shows a job without it."""

from __future__ import annotations

import json
import math
import sys
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from ..model import validate

if TYPE_CHECKING:
    import pandas as pd


def plain(value: Any) -> Any:
    """``value`` as JSON can hold it: times as ISO 8601 text, NaN and NaT as null, numpy
    numbers as Python numbers, anything else unknown as its repr."""
    value = validate.plain_number(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    pandas = sys.modules.get("pandas")  # (not loaded: no value can be its NaT)
    if pandas is not None and value is pandas.NaT:
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "tolist"):  # a numpy array
        return plain(value.tolist())
    return repr(value)


def print_json(value: Any) -> None:
    print(json.dumps(plain(value), indent=2, allow_nan=False))


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as JSON-ready dicts."""
    return [plain(row) for row in frame.astype(object).to_dict("records")]


def job_lines(info: dict[str, Any]) -> list[str]:
    """A job's fields, one per line; multi-line text (tracebacks, output) indented below its key."""
    lines = []
    for key, value in info.items():
        if key == "errors" and isinstance(value, list):  # one line per failed attempt
            lines.append(f"errors: {len(value)}")
            lines += [f"  attempt {e.get('attempt')} at {e.get('at')}: "
                      + ((str(e.get("error") or "").strip().splitlines() or [""])[-1])
                      for e in value if isinstance(e, dict)]
            continue
        if isinstance(value, (list, dict)):
            value = json.dumps(value)
        if isinstance(value, str) and "\n" in value:
            lines.append(f"{key}:")
            lines.append("  " + value.rstrip().replace("\n", "\n  "))
        else:
            lines.append(f"{key}: {'' if value is None else value}")
    return lines


def page_line(frame: pd.DataFrame) -> str:
    """'page X of Y (N jobs[, status])' for a page of ``nj.jobs()``."""
    a = frame.attrs
    return (f"page {a['page']} of {a['pages']} ({a['total']} job{'s' if a['total'] != 1 else ''}"
            f"{', ' + a['status'] if a.get('status') else ''})")


def worker_lines(info: dict[str, Any]) -> list[str]:
    """The worker's state as ``worker status`` prints it."""
    if not info["running"]:
        return ["worker: not running"]
    lines = [f"worker: running (pid {info['pid']}, concurrency {info['concurrency']}, "
             f"started {info['started_at']:%Y-%m-%d %H:%M:%S} UTC)",
             f"running jobs: {', '.join(map(str, info['jobs'])) or 'none'}"]
    cluster = info.get("cluster")
    if cluster:
        lines.append(f"dask: {cluster['scheduler']}, {len(cluster['workers'])} worker(s), "
                     f"{cluster['threads']} thread(s); dashboard {cluster['dashboard']}")
    lines += [f"problem: {problem}" for problem in info.get("problems") or []]
    return lines


def table_text(frame: pd.DataFrame) -> str:
    """A frame as plain text, wide enough for a terminal."""
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_colwidth", 60,
                           "display.max_columns", 20):
        return frame.to_string(index=False)


def parameter_text(p: dict[str, Any]) -> str:
    """One parameter of ``nj.available_jobs()`` as ``name: type = default``."""
    text = p["name"] + (f": {p['annotation']}" if p["annotation"] else "")
    return text if p["required"] else f"{text} = {p['default']!r}"
