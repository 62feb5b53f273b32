"""Schedules of whitelist.yaml (SPEC §16): what each one is, and when its ticks fall.

Pure, the clock passed in: the worker's scheduler (``worker.scheduler``) and ``nj.schedules()``
ask the same functions, and the tests ask them for any moment without waiting for it.

- ``cron:`` five fields, read in ``timezone`` (an IANA name, ``zoneinfo``) by **cronsim**.
  Chosen over croniter: it is written to match Debian's cron, including around DST changes (a
  time skipped by the spring change runs right after the jump, a time repeated in autumn runs
  once, sub-hourly jobs run in both repeated hours), it works on zoneinfo datetimes (croniter
  needs python-dateutil and has a long record of DST issues), has no dependencies, ships type
  hints, and iterates backwards, which gives "the latest tick at or before now" directly.
- ``every:`` a duration (``validate.seconds``: "90s", "15m", "1h30m", "2d", "1w"), at least
  MIN_EVERY_S; its ticks are the multiples of it counted from 1970-01-01 UTC, so they are the
  same for every worker and every restart (a daily time of day is a cron's job).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ..errors import InvalidArgumentsError
from . import validate
from .validate.values import DURATION_HINT

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_EVERY_S = 1.0  #: the shortest interval of an ``every:`` schedule, in seconds
CRON_FIELDS = 5  #: minute, hour, day of month, month, day of week
SCHEDULE_KEYS = ("target", "cron", "every", "timezone", "args", "kwargs", "priority", "enabled")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_ONE_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """One entry of ``schedules:`` in whitelist.yaml, checked."""

    name: str
    target: str  #: an allowed target: a function, a method or a notebook
    cron: str | None = None  #: five-field cron, read in ``timezone``; or
    every: str | None = None  #: the interval as written ("15m"), whose seconds are ``every_s``
    every_s: float | None = None
    timezone: str = "UTC"  #: IANA name, for ``cron``
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    priority: int = 0
    enabled: bool = True

    @property
    def definition(self) -> str:
        """What its ticks are computed from; a stored tick made from another definition (the
        schedule was edited) does not count for this one."""
        when = f"cron {self.cron} {self.timezone}" if self.cron else f"every {self.every_s!r}s"
        return f"{when} {'enabled' if self.enabled else 'disabled'}"

    def next_after(self, moment: datetime) -> datetime | None:
        """The first tick strictly after ``moment`` (UTC); None if there is none."""
        if self.every_s is not None:
            step = _step(self.every_s)
            return EPOCH + step * ((moment - EPOCH) // step + 1)
        assert self.cron is not None
        from zoneinfo import ZoneInfo  # here, not at the top: see _cron

        from cronsim import CronSim

        try:
            return next(CronSim(self.cron, moment.astimezone(ZoneInfo(self.timezone))))\
                .astimezone(UTC)
        except StopIteration:
            return None

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last tick at or before ``moment`` (UTC); None if there is none."""
        if self.every_s is not None:
            step = _step(self.every_s)
            return EPOCH + step * ((moment - EPOCH) // step)
        assert self.cron is not None
        # Backwards from a minute later, skipping what lies after the moment: cronsim's reverse
        # iteration starts before its start (truncated to the minute in some versions, not in
        # others), and a cron ticks at most once a minute.
        from zoneinfo import ZoneInfo  # here, not at the top: see _cron

        from cronsim import CronSim

        start = (moment + _ONE_MINUTE).astimezone(ZoneInfo(self.timezone))
        for tick in CronSim(self.cron, start, reverse=True):
            if tick.astimezone(UTC) <= moment:
                return tick.astimezone(UTC)
        return None

    def due(self, last: datetime, now: datetime, limit: int) -> list[datetime]:
        """The ticks after ``last`` and at or before ``now``, oldest first; when there are more
        than ``limit``, only the latest (missed ticks run once, not once each)."""
        ticks: list[datetime] = []
        moment = last
        while len(ticks) <= limit:
            tick = self.next_after(moment)
            if tick is None or tick > now:
                return ticks
            ticks.append(tick)
            moment = tick
        latest = self.latest_at_or_before(now)
        return [latest] if latest is not None else ticks[-1:]


def _step(every_s: float) -> timedelta:
    # Whole microseconds, so that ticks stay exact however many intervals from the epoch.
    return timedelta(microseconds=round(every_s * 1_000_000))


#: the columns of ``nj.schedules()``
LISTING_COLUMNS = ("name", "target", "cron", "every", "timezone", "enabled", "next_run",
                   "last_run", "last_job", "last_status", "problem")


def listing(schedules: Mapping[str, Schedule], stored: list[dict[str, Any]], now: datetime,
            problem: Callable[[Schedule], str]) -> list[dict[str, Any]]:
    """The rows of ``nj.schedules()``: each schedule of whitelist.yaml with its next run (UTC)
    and, from ``stored`` (the store's "schedules" table), its last job."""
    by_name = {row["name"]: row for row in stored}
    rows = []
    for schedule in schedules.values():
        row = by_name.get(schedule.name, {})
        rows.append({
            "name": schedule.name, "target": schedule.target, "cron": schedule.cron,
            "every": schedule.every, "timezone": schedule.timezone, "enabled": schedule.enabled,
            "next_run": schedule.next_after(now) if schedule.enabled else None,
            "last_run": row.get("last_run"), "last_job": row.get("last_job"),
            "last_status": row.get("last_status"), "problem": problem(schedule)})
    return rows


class Checker(Protocol):
    """What ``parse`` needs of whitelist.py's validator: its failures name file and key path."""

    def fail(self, keys: list[str], value: Any, expected: str) -> None: ...

    def known_keys(self, keys: list[str], data: dict, allowed: tuple[str, ...]) -> None: ...


def parse(v: Checker, name: Any, data: Any, allowed: Any) -> Schedule:
    """One entry of ``schedules:``, checked; ``v.fail`` (a ``ConfigError``) names what is
    wrong. ``allowed(target)``: whether the whitelist allows the target."""
    keys = ["schedules", str(name)]
    if not isinstance(name, str) or not _NAME.match(name):
        v.fail(keys, name, "a schedule name of letters, digits, '_', '.' and '-' (at most 100)")
    if not isinstance(data, dict):
        v.fail(keys, data, "a mapping with target: and cron: or every:, e.g. {target: "
               "jobs.reports.build_report, cron: '0 2 * * *'}")
    v.known_keys(keys, data, SCHEDULE_KEYS)
    target = data.get("target")
    if not isinstance(target, str) or not allowed(target):
        v.fail([*keys, "target"], target, "a target allowed under allowed_jobs or "
               "allowed_notebooks of this file")
    if ("cron" in data) == ("every" in data):
        v.fail(keys, sorted(data), "exactly one of cron: (five fields, e.g. '0 2 * * *') and "
               "every: (a duration, e.g. 15m)")
    values: dict[str, Any] = {"name": name, "target": target}
    if "cron" in data:
        values["cron"] = _cron(v, [*keys, "cron"], data["cron"])
    else:
        values["every"], values["every_s"] = _every(v, [*keys, "every"], data["every"])
    if "timezone" in data:
        values["timezone"] = _timezone(v, [*keys, "timezone"], data["timezone"])
        if "every" in data and values["timezone"] != "UTC":
            v.fail([*keys, "timezone"], data["timezone"], "no timezone with every: (its ticks "
                   "count from 1970-01-01 UTC); for a time of day use cron: with a timezone")
    values.update(_call(v, keys, data))
    schedule = Schedule(**values)
    if schedule.cron and schedule.next_after(EPOCH) is None:
        v.fail([*keys, "cron"], schedule.cron, "a cron expression that fires at least once")
    return schedule


def _cron(v: Checker, keys: list[str], value: Any) -> str:
    if not isinstance(value, str) or len(value.split()) != CRON_FIELDS:
        v.fail(keys, value, "a cron expression of five fields: minute hour day-of-month month "
               "day-of-week, e.g. '0 2 * * *' (quote it)")
    # cronsim and zoneinfo are imported where a schedule needs them, not at the top: every pool
    # child reads whitelist.yaml before each attempt, and a worker need not have schedules;
    # ~0.5 MB that each of these processes would keep for life (SPEC §13).
    from cronsim import CronSim, CronSimError

    try:
        CronSim(value, EPOCH)
    except CronSimError as exc:
        v.fail(keys, value, f"a valid cron expression ({exc}), e.g. '*/15 9-17 * * MON-FRI'")
    return " ".join(value.split())


def _every(v: Checker, keys: list[str], value: Any) -> tuple[str, float]:
    try:
        seconds = validate.seconds("every", value)
    except InvalidArgumentsError:
        seconds = -1.0
    if seconds < MIN_EVERY_S:
        v.fail(keys, value, f"a duration of at least {MIN_EVERY_S:g} s: {DURATION_HINT}")
    return str(value), seconds


def _timezone(v: Checker, keys: list[str], value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # here: see _cron

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        v.fail(keys, value, "an IANA time zone name like Europe/Paris or UTC")
    return str(value)


def _call(v: Checker, keys: list[str], data: dict) -> dict[str, Any]:
    """args, kwargs, priority and enabled of a schedule, checked."""
    values: dict[str, Any] = {}
    for name, kind, example in (("args", list, "[1, 'a']"), ("kwargs", dict, "{key: 1}")):
        if name in data:
            try:
                if not isinstance(data[name], kind):
                    raise InvalidArgumentsError(name)
                values[name] = validate.json_value(name, data[name])
            except InvalidArgumentsError:
                v.fail([*keys, name], data[name], f"a {kind.__name__} of JSON values, e.g. "
                       f"{example}")
    if "priority" in data:
        try:
            values["priority"] = validate.priority(data["priority"])
        except InvalidArgumentsError:
            v.fail([*keys, "priority"], data["priority"], "a whole number from "
                   f"{validate.INT32_MIN} to {validate.INT32_MAX}")
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            v.fail([*keys, "enabled"], data["enabled"], "true or false")
        values["enabled"] = data["enabled"]
    return values
