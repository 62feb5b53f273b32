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
    """An Arrow table from the store as a DataFrame with UTC timestamps and categoricals.

    The types are changed in Arrow before ``to_pandas``, where each is a cast or a C++
    encoding: done in pandas after, they cost ~250 ms of a 1,000,000-job history (decoding
    ``status`` to Python strings to encode it again, ``astype("category")``, ``tz_localize``),
    done here ~20 ms."""
    import pyarrow as pa

    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_timestamp(field.type):
            # Naive times from the store are UTC; an aware one is an instant either way.
            column = column.cast(pa.timestamp(field.type.unit, tz="UTC"))
        elif field.name in ("status", "target"):
            column = _categorical(column)
        columns.append(column)
    frame = pa.Table.from_arrays(columns, names=table.column_names).to_pandas()
    if "status" in frame.columns and isinstance(frame["status"].dtype, pd.CategoricalDtype):
        # by value: the statuses in their order, also those no row has
        frame["status"] = frame["status"].cat.set_categories(list(STATUS_NAMES), ordered=True)
    elif "status" in frame.columns:  # not text (a user's SQL): no status is among its values
        frame["status"] = pd.Categorical(
            frame["status"].astype(object), categories=list(STATUS_NAMES), ordered=True
        )
    return frame


def _categorical(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A text column dictionary-encoded, which ``to_pandas`` makes a categorical. DuckDB gives
    an ENUM (``status``) unsigned indices, which pyarrow before 23 cannot convert ("Converting
    unsigned dictionary indices to pandas not yet supported"): they become int32."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_dictionary(kind):
        return column.cast(pa.dictionary(pa.int32(), kind.value_type))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pc.dictionary_encode(column)
    return column


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
