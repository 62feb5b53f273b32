"""History frames (SPEC §10): the store computes, this module turns its Arrow tables into pandas.
(Named ``frames``, not ``history``: a submodule would be bound over ``nj.history`` on import.)

Every aggregate is computed in DuckDB (see ``store.STATS_GROUPS``); here we only fix dtypes:
timestamps become tz-aware UTC, status and target become categoricals.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import validate
from .errors import InvalidArgumentsError
from .models import STATUS_NAMES

if TYPE_CHECKING:
    import pyarrow as pa

TIME_COLUMNS = ("created_at", "run_at", "started_at", "finished_at")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def to_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table from the store as a DataFrame with UTC timestamps and categoricals."""
    frame = table.to_pandas()
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            series = frame[column]
            frame[column] = (
                series.dt.tz_localize("UTC")
                if series.dt.tz is None
                else series.dt.tz_convert("UTC")
            )
    if "status" in frame.columns:
        frame["status"] = pd.Categorical(
            frame["status"].astype(object), categories=list(STATUS_NAMES), ordered=True
        )
    if "target" in frame.columns:
        frame["target"] = frame["target"].astype("category")
    return frame


def parse_duration(value: Any) -> timedelta:
    """'30d', '12h', '90m', '45s', '2w', a number of seconds or a timedelta, as a timedelta."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    else:
        raise InvalidArgumentsError(
            f"older_than={value!r} is not a duration; write it like '30d', '12h', '90m', '45s' "
            "or '2w', or pass seconds or a timedelta")
    if seconds < 0:
        raise InvalidArgumentsError(f"older_than={value!r} is negative; pass a duration >= 0")
    return timedelta(seconds=validate.seconds("older_than", seconds))


def parse_time(name: str, value: Any) -> datetime | None:
    """A ``since``/``until`` bound: a datetime (naive means UTC), a string pandas parses, or
    None."""
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentsError(
            f"{name}={value!r} is not a time; pass a datetime or a string like '2026-11-28 13:00'"
        ) from exc
    if stamp is pd.NaT:
        raise InvalidArgumentsError(f"{name}={value!r} is not a time")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime().astimezone(UTC)
