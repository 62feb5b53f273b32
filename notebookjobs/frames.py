"""History frames (SPEC §10): the store computes, this module turns its Arrow tables into pandas.
(Named ``frames``, not ``history``: a submodule would be bound over ``nj.history`` on import.)

Every aggregate is computed in DuckDB (see ``store.STATS_GROUPS``); here we only fix dtypes:
timestamps become tz-aware UTC, status and target become categoricals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import validate
from .errors import InvalidArgumentsError
from .models import STATUS_NAMES

if TYPE_CHECKING:
    import pyarrow as pa

TIME_COLUMNS = ("created_at", "run_at", "started_at", "finished_at")


def to_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table from the store as a DataFrame with UTC timestamps and categoricals."""
    frame = _to_pandas(table)
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


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """``table.to_pandas()``, also with pyarrow before 23, which cannot convert the dictionary
    columns with unsigned indices that DuckDB makes of an ENUM (``status``): "Converting
    unsigned dictionary indices to pandas not yet supported". Those columns are decoded to
    their values first (``to_frame`` makes status a categorical again)."""
    import pyarrow as pa

    try:
        return table.to_pandas()
    except pa.ArrowTypeError:
        pass
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type) and pa.types.is_unsigned_integer(
                field.type.index_type):
            table = table.set_column(i, field.name, table.column(i).cast(field.type.value_type))
    return table.to_pandas()


def parse_duration(value: Any) -> timedelta:
    """'30d', '12h', '90m', '45s', '2w', '1h30m', a number of seconds or a timedelta, as a
    timedelta (``validate.seconds`` reads it: the one duration parser)."""
    return timedelta(seconds=validate.seconds("older_than", value))


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
