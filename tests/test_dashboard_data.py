"""The dashboard as a user saw it (issue 13): a sort that shows running jobs, rows tinted by
status, milliseconds for short jobs, every attempt's error, Details below its row, a frame
result's first rows, Edit & re-run. Widgets clicked as in tests/test_dashboard.py, against a
real queue."""

from __future__ import annotations

import pytest
from test_dashboard import find, row_ids

from notebookjobs import client
from notebookjobs.dashboard import Dashboard
from notebookjobs.model import transitions
from notebookjobs.model.records import utcnow
from notebookjobs.notebook.display import seconds_text
from support import change_job

PROCESS = "jobs.sample.SampleJobClass.process"


@pytest.fixture
def make_dashboard(project):
    """Dashboards without a refresh thread, closed after the test."""
    made: list[Dashboard] = []

    def make() -> Dashboard:
        made.append(Dashboard(autorefresh=False))
        return made[-1]

    yield make
    for dash in made:
        dash.close()


@pytest.mark.parametrize("seconds, text", [(0.0004, "<1 ms"), (0.012, "12 ms"), (0.9994, "999 ms"),
                                           (1.25, "1.2 s"), (12.5, "12 s"), (185, "3 min 05 s")])
def test_short_durations_read_in_milliseconds(seconds, text):
    assert seconds_text(seconds) == text


def test_running_first_puts_the_running_job_on_page_one(make_dashboard):
    # Given a running job older than five newer ones
    client.dispatch("jobs.testing.ok", 0, delay=3600)
    change_job(1, lambda job: transitions.start(job, "w", utcnow()))
    for i in range(6):
        client.dispatch("jobs.testing.ok", i + 1, delay=3600)
    dash = make_dashboard()
    # When the page is newest first, then page 1 hides it
    assert row_ids(dash) == [7, 6, 5, 4, 3]
    # When "running first" is chosen, then it leads page 1, the pending ones after it in the
    # order the worker will take them (same priority: the earliest run_at first)
    find(dash, "nj-sort").value = "running"
    assert row_ids(dash) == [1, 2, 3, 4, 5]
    assert client.jobs(order="running").attrs["order"] == "running"
    # ... and a pending job of higher priority comes before them
    client.dispatch("jobs.testing.ok", 9, delay=7200, priority=5)
    dash.refresh()
    assert row_ids(dash) == [1, 8, 2, 3, 4]


def test_details_list_every_attempt_and_open_below_their_row(project, make_dashboard):
    # Given a job that failed its three attempts, and two newer ones
    assert project.cli("run", "jobs.testing", "fail").returncode == 1
    client.dispatch("jobs.testing.ok", 1, delay=3600)
    client.dispatch("jobs.testing.ok", 2, delay=3600)
    dash = make_dashboard()
    queue = dash.queue
    assert queue.body.children == (queue.grid, queue.detail)
    # When Details of the middle row (job 2) is clicked
    find(dash, "nj-details-2").click()
    # Then the page splits at its row: jobs 3 and 2 above the details, job 1 below
    assert queue.body.children == (queue.grid, queue.detail, queue.rest_grid)
    assert [r["id"] for r in queue.grid.rows] == [3, 2]
    assert [r["id"] for r in queue.rest_grid.rows] == [1]
    assert queue.grid.header and not queue.rest_grid.header  # one header row
    # When Details of the failed job is opened, then every attempt's error is listed
    find(dash, "nj-details-1").click()
    body = find(dash, "nj-detail-body").value
    assert "errors of every attempt (3)" in body
    assert all(f"attempt {n} · " in body for n in (1, 2, 3))
    # three attempts, the last one open and not repeated under it
    assert body.count("ValueError: boom") == 6  # each attempt's summary line and traceback
    assert body.count("<details open>") == 1 and "last error" not in body
    assert "monospace" in body  # tracebacks in a fixed font, also in Voila
    # ... whose traceback starts at the job's own code
    assert "runner.py" not in body and "registry.py" not in body


def test_a_frame_result_shows_its_first_rows_and_an_array_its_shape(project, make_dashboard):
    assert project.cli("run", "jobs.testing", "frame", "12").returncode == 0
    assert project.cli("run", "jobs.testing", "array").returncode == 0
    dash = make_dashboard()
    find(dash, "nj-details-1").click()
    body = find(dash, "nj-detail-body").value
    assert "DataFrame, 12 rows; the first 10" in body and "nj-detail-frame" in body
    assert ">k9<" in body and ">k10<" not in body  # the index, ten rows of it
    find(dash, "nj-details-2").click()
    body = find(dash, "nj-detail-body").value
    assert "ndarray, shape (2, 3), dtype float32" in body
    assert "array([[" in body  # and its values


def test_edit_and_rerun_opens_the_form_filled_in(project, make_dashboard):
    # Given a failed job of a typed target, dispatched with priority 4 and a delay of 30 s
    job = client.dispatch("jobs.testing.typed", 3, 1.5, True, "x", [1, 2], {"a": 1},
                          priority=4, delay=30)
    client.cancel(job)
    dash = make_dashboard()
    find(dash, f"nj-details-{job}").click()
    # When Edit & re-run is clicked
    rerun = find(dash, "nj-detail-rerun")
    assert not rerun.disabled
    rerun.click()
    # Then the target's form is open with the job's values, priority and delay
    form = dash.form
    assert form is not None and form.target == "jobs.testing.typed"
    shown = {name: w.value for name, w in form.inputs.items()}
    assert shown == {"n": "3", "x": "1.5", "flag": True, "name": "x", "items": "[1, 2]",
                     "options": '{"a": 1}'}
    assert (find(form, "nj-form-priority").value, find(form, "nj-form-delay").value) == ("4", "30")
    # When one value is edited and the form is submitted
    form.inputs["name"].value = "y"
    find(form, "nj-form-delay").value = "0"
    find(form, "nj-form-submit").click()
    # Then the new job has the old values (with their types) and the edit
    info = client.status(form.last_job_id)
    assert info["kwargs"] == {"n": 3, "x": 1.5, "flag": True, "name": "y", "items": [1, 2],
                              "options": {"a": 1}}
    assert info["priority"] == 4


def test_edit_and_rerun_keeps_a_frame_argument(project, make_dashboard):
    import pandas as pd

    job = client.dispatch("jobs.testing.describe", pd.DataFrame({"v": [1.0, 2.0]}), scale=3,
                          delay=3600)
    client.cancel(job)
    dash = make_dashboard()
    find(dash, f"nj-details-{job}").click()
    find(dash, "nj-detail-rerun").click()
    data = dash.form.inputs["data"]
    assert data.disabled and data.value == "DataFrame from the job (kept)"
    find(dash.form, "nj-form-submit").click()
    again = client.status(dash.form.last_job_id)
    assert again["kwargs"]["data"] == client.status(job)["args"][0] or \
        again["args"][0] == client.status(job)["args"][0]


def test_the_chart_counts_the_last_hour_per_minute_and_says_so():
    # Given a history: three completed and one failed job in the last hour, one completed two
    # hours ago, one still pending (status a categorical, as client.history() gives it)
    import pandas as pd

    from notebookjobs.dashboard.chart import buckets, chart_svg
    from notebookjobs.model.records import STATUS_NAMES

    now = pd.Timestamp("2026-01-01 12:00:30", tz="UTC")
    minutes = [1, 1, 5, 1, 120, None]
    history = pd.DataFrame({
        "status": pd.Categorical(["completed", "completed", "completed", "failed", "completed",
                                  "pending"], categories=list(STATUS_NAMES)),
        "finished_at": [now - pd.Timedelta(minutes=m) if m else pd.NaT for m in minutes],
        "wait_s": [0.5, 1.5, 2.0, 4.0, 9.0, None]})
    # Then each minute has its counts and median wait; what is older, or not finished, is left out
    frame = buckets(history, now.to_pydatetime())
    assert (int(frame["completed"].sum()), int(frame["failed"].sum())) == (3, 1)
    last = frame.loc[pd.Timestamp("2026-01-01 11:59", tz="UTC")]
    assert (last["completed"], last["failed"], last["wait"]) == (2, 1, 1.5)
    # And the picture says it in its legend; with nothing finished, a line says that instead
    svg = chart_svg(history, now.to_pydatetime())
    assert svg.startswith("<svg") and "4 finished in the last hour · max 3/min" in svg
    assert "no job finished" in chart_svg(history.iloc[4:], now.to_pydatetime())
