"""Property (SPEC §14, §16): whatever a ``schedules:`` entry holds, whitelist.yaml gives a
schedule whose ticks are well ordered at any moment, or a ``ConfigError``; nothing else escapes,
so no entry can stop the worker's scheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from notebookjobs.config import whitelist
from notebookjobs.errors import ConfigError

from .poison import YAML_SCALARS, examples

#: cron fields: valid ones, their edges and nonsense
FIELDS = st.sampled_from(["*", "0", "59", "60", "*/15", "1-5", "5-1", "MON-FRI", "L", "1L", "2#5",
                          "FEB", "31", "0,30", "*/0", "-1", "?", "ä", "", "1/2"])
CRONS = st.one_of(st.lists(FIELDS, min_size=4, max_size=6).map(" ".join), st.text(max_size=30))
ZONES = st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe",
                         "Asia/Kathmandu", "Mars/Olympus", "../etc/passwd", "", "utc"])
EVERIES = st.one_of(st.sampled_from(["1s", "0.5s", "15m", "1h30m", "2d", "1w", "0", "-5", "soon",
                                     "100000w", "1e400"]),
                    st.floats(allow_nan=True), st.integers(-10, 10**12), YAML_SCALARS)
ENTRIES = st.fixed_dictionaries({"target": st.sampled_from(["jobs.testing.ok", "os.system"])},
                                optional={"cron": CRONS, "every": EVERIES, "timezone": ZONES,
                                          "args": st.one_of(st.lists(YAML_SCALARS), YAML_SCALARS),
                                          "priority": st.one_of(st.integers(), YAML_SCALARS),
                                          "enabled": YAML_SCALARS})
MOMENTS = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),
                       timezones=st.just(UTC))


@examples(200)
@given(entry=ENTRIES, moment=MOMENTS)
@example(entry={"target": "jobs.testing.ok", "cron": "30 2 * * *", "timezone": "Europe/Paris"},
         moment=datetime(2026, 3, 29, 0, 45, tzinfo=UTC))
@example(entry={"target": "jobs.testing.ok", "cron": "0 0 29 2 MON"},
         moment=datetime(2026, 1, 1, tzinfo=UTC))
def test_any_schedule_entry_is_a_schedule_or_a_config_error(project, entry, moment):
    text = yaml.safe_dump({"allowed_jobs": {"jobs.testing": ["ok"]}, "schedules": {"s": entry}})
    try:
        settings = whitelist.parse_whitelist(project.root / "whitelist.yaml", text,
                                             root=project.root, db_path=project.db,
                                             lock_timeout=60.0)
    except ConfigError as exc:
        assert "schedules" in str(exc)
        return
    schedule = settings.schedules["s"]
    # Then its ticks around any moment are in order: the next one after it, the last at or
    # before it, and the due ones between
    after = schedule.next_after(moment)
    latest = schedule.latest_at_or_before(moment)
    assert after is None or after > moment
    assert latest is None or latest <= moment
    if after is not None and latest is not None:
        assert schedule.next_after(latest) == after or schedule.cron  # cron: DST may skip one
    due = schedule.due(moment - timedelta(days=1), moment, 10)
    assert due == sorted(set(due)) and all(moment - timedelta(days=1) < t <= moment for t in due)
