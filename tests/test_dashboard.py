"""The dashboard widget without a browser: click its buttons, fill its forms, read its widgets,
against a real queue in tmp_path (SPEC §9)."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import ipywidgets as widgets
import pandas as pd
import pytest

import notebookjobs as nj
from notebookjobs import client
from notebookjobs.dashboard import Dashboard
from notebookjobs.errors import WorkerError
from support import TEST_WHITELIST, wait_until

PROCESS = "jobs.sample.SampleJobClass.process"


def find_all(root: widgets.Widget, css: str) -> list[widgets.Widget]:
    """Widgets under ``root`` (through ``children``) that carry the CSS class ``css``."""
    found = []
    stack = [root]
    while stack:
        widget = stack.pop()
        if css in getattr(widget, "_dom_classes", ()):
            found.append(widget)
        stack.extend(getattr(widget, "children", ()))
    return found


class RowPart:
    """A job's status or button in the table (``grid.QueueGrid``), as the page shows it under
    the same CSS class: ``.value`` is the status text, ``.click()`` what a click sends."""

    def __init__(self, grid, row: dict, action: str | None) -> None:
        self.grid, self.row, self.action = grid, row, action
        self.value = row["label"]
        self.disabled = False

    def click(self) -> None:
        assert self.action is not None
        self.grid.click(self.action, self.row["id"])


def _row_part(root: widgets.Widget, css: str) -> RowPart | None:
    match = re.fullmatch(r"nj-(status|cancel|retry|details)-(\d+)", css)
    if not match:
        return None
    what, job_id = match.group(1), int(match.group(2))
    for grid in find_all(root, "nj-queue-table") + find_all(root, "nj-queue-table-rest"):
        for row in grid.rows:
            if row["id"] != job_id:
                continue
            if what == "status":
                return RowPart(grid, row, None)
            if what == "details" or row["action"] == what:
                return RowPart(grid, row, what)
    return None


def find(root: widgets.Widget, css: str) -> widgets.Widget:
    """The one widget with class ``css`` reachable from ``root`` (or a row's part of the
    queue's table: ``nj-status-<id>``, ``nj-cancel-<id>``, ``nj-retry-<id>``,
    ``nj-details-<id>``)."""
    found = find_all(root, css)
    if not found:
        part = _row_part(root, css)
        if part is not None:
            return part
    assert len(found) == 1, f"{len(found)} widgets with class {css!r}"
    return found[0]


def row_ids(dash: Dashboard) -> list[int]:
    """Job ids of the rows of the queue's table, top to bottom."""
    return [row["id"] for row in dash.queue.grid.rows + dash.queue.rest_grid.rows]


@pytest.fixture
def make_dashboard(project):
    """Build dashboards (no refresh thread unless asked); close them all after the test."""
    made: list[Dashboard] = []

    def make(**options) -> Dashboard:
        options.setdefault("autorefresh", False)
        dash = Dashboard(**options)
        made.append(dash)
        return dash

    yield make
    for dash in made:
        dash.close()


def test_nj_dashboard_returns_a_displayable_dashboard(make_dashboard):
    # Given the dashboard package was imported (its name must not shadow nj.dashboard)
    import notebookjobs.dashboard  # noqa: F401

    # When nj.dashboard() is called, then it is a Dashboard a notebook can display
    dash = nj.dashboard(autorefresh=False)
    try:
        assert isinstance(dash, Dashboard)
        assert "application/vnd.jupyter.widget-view+json" in dash._repr_mimebundle_()
        assert dash.error.value == ""
    finally:
        dash.close()


def test_new_job_is_unfolded_on_an_empty_queue_and_folded_once_there_are_jobs(make_dashboard):
    # Given an empty queue (a new project), then New job is open: it is all there is to do
    dash = make_dashboard()
    assert dash.catalog_open and find(dash, "nj-new-job").description == "New job ▾"
    # Given a queue with a job, then the queue leads and New job is folded until asked for
    client.dispatch("jobs.testing.ok", 1)
    dash = make_dashboard()
    assert not dash.catalog_open and find(dash, "nj-new-job").description == "New job ▸"
    find(dash, "nj-new-job").click()
    assert dash.catalog_open


def test_jobs_section_groups_targets_and_greys_out_those_not_allowed(project, make_dashboard):
    # Given a whitelist that does not name jobs.testing.noisy
    project.write_whitelist(TEST_WHITELIST.replace("    noisy: {}\n", ""))
    dash = make_dashboard()

    # Then every discovered target is listed, grouped under its owner
    section = find(dash, "nj-jobs")
    process = find(section, "nj-target-jobs-sample-SampleJobClass-process")
    text = " ".join(w.value for w in process.children if isinstance(w, widgets.HTML))
    assert "param1: str" in text and "param2: str" in text and "Combine two parameters" in text
    owners = [w.value for w in section.children if isinstance(w, widgets.HTML)]
    assert any("jobs.sample.SampleJobClass" in v and "(class)" in v for v in owners)
    assert any("jobs.testing</b>" in v and "(module)" in v for v in owners)
    ok_text = find(section, "nj-target-jobs-testing-ok").children[1].value
    assert "value: int = 1" in ok_text
    # And the allowed one can be dispatched, the other is disabled with the line to add
    assert not find(dash, f"nj-dispatch-{PROCESS.replace('.', '-')}").disabled
    noisy = find(dash, "nj-dispatch-jobs-testing-noisy")
    assert noisy.disabled
    row = find(dash, "nj-target-jobs-testing-noisy")
    assert "nj-not-allowed" in row._dom_classes
    hint = row.children[1].value
    assert "not allowed" in hint
    assert "add under allowed_jobs &gt; jobs.testing in whitelist.yaml:\n    noisy: {}" in hint

    # When the disabled button is clicked, then no form opens (as in a browser)
    noisy.click()
    assert dash.form is None and find_all(dash, "nj-form") == []

    # When the line is added and the jobs are reloaded, then noisy can be dispatched
    project.write_whitelist(TEST_WHITELIST)
    find(dash, "nj-reload-jobs").click()
    assert not find(dash, "nj-dispatch-jobs-testing-noisy").disabled
    assert "nj-not-allowed" not in find(dash, "nj-target-jobs-testing-noisy")._dom_classes


@pytest.mark.parametrize("text, hint", [
    ("allowed_jobs:\n  a.b: [x, y]\n", "change the a.b line under allowed_jobs in whitelist.yaml "
     "to:\n  a.b: [x, y, new]"),
    ("allowed_jobs:\n    a.b:\n      - x\n", "add under allowed_jobs > a.b in whitelist.yaml:\n"
     "      - new"),
    ("allowed_jobs:\n  a.b: {x: {timeout: 3}}\n", "to:\n  a.b: {x: {timeout: 3}, new: {}}"),
    ("allowed_jobs:\n  c.d: [x]\n", "add under allowed_jobs in whitelist.yaml:\n  a.b: [new]"),
])
def test_allow_hint_matches_the_style_of_the_file(tmp_path, text, hint):
    from notebookjobs.targets.hints import allow_hint

    path = tmp_path / "whitelist.yaml"
    path.write_text(text)
    assert hint in allow_hint("a.b.new", path)


def test_dispatch_form_queues_the_job_with_priority_and_delay(make_dashboard):
    dash = make_dashboard()

    # When Dispatch is clicked for SampleJobClass.process and the form is filled and submitted
    find(dash, "nj-dispatch-jobs-sample-SampleJobClass-process").click()
    form = find(dash, "nj-form")
    first, second = find(form, "nj-input-param1"), find(form, "nj-input-param2")
    assert isinstance(first, widgets.Text) and first.description == "param1"
    first.value, second.value = "a", "b"
    find(form, "nj-form-priority").value = "3"
    find(form, "nj-form-delay").value = "60"
    find(form, "nj-form-submit").click()

    # Then the form reports the id, and the queue holds the job pending, priority 3, 60 s later
    assert "dispatched job 1" in find(form, "nj-form-message").value
    info = client.status(1)
    assert info["target"] == PROCESS
    assert (info["status"], info["priority"]) == ("pending", 3)
    assert info["args"] == [] and info["kwargs"] == {"param1": "a", "param2": "b"}
    assert abs((info["run_at"] - info["created_at"]) - timedelta(seconds=60)) < timedelta(seconds=1)
    # And the table shows it (the form refreshed the queue at once), with its run_at
    [row] = find(dash, "nj-queue-table").rows
    assert (row["id"], row["target"], row["status"]) == (1, PROCESS, "pending")
    assert 59_000 <= row["run_at"] - row["created"] <= 61_000  # the page counts down to it
    assert find(dash, "nj-status-1").value == "pending"
    assert find(dash, "nj-page-label").value == "page 1 of 1 (1 job)"


def test_form_inputs_are_typed_by_annotation(make_dashboard):
    dash = make_dashboard()
    find(dash, "nj-dispatch-jobs-testing-typed").click()
    form = dash.form
    kinds = {name: type(w) for name, w in form.inputs.items()}
    # numbers in Text inputs: a number input would turn "abc" into its last value silently
    assert kinds == {"n": widgets.Text, "x": widgets.Text, "flag": widgets.Checkbox,
                     "name": widgets.Text, "items": widgets.Text, "options": widgets.Text}
    assert all(w.description == name for name, w in form.inputs.items())

    form.inputs["n"].value = "5"
    form.inputs["x"].value = "2.5"
    form.inputs["flag"].value = True
    form.inputs["name"].value = "x"
    form.inputs["items"].value = "[1, 2]"
    form.inputs["options"].value = '{"a": 1}'
    find(form, "nj-form-submit").click()

    assert client.status(1)["kwargs"] == {"n": 5, "x": 2.5, "flag": True, "name": "x",
                                          "items": [1, 2], "options": {"a": 1}}


def test_form_fills_in_defaults_and_leaves_untouched_ones_to_the_function(make_dashboard):
    dash = make_dashboard()
    find(dash, "nj-dispatch-jobs-testing-ok").click()
    assert dash.form.inputs["value"].value == "1"
    find(dash, "nj-dispatch-jobs-testing-fail").click()  # replaces the open form
    assert dash.form.inputs["message"].value == "boom"
    assert len(find_all(dash, "nj-form")) == 1

    find(dash, "nj-form-submit").click()
    assert client.status(1)["kwargs"] == {}  # unchanged: the function's default applies
    find(dash, "nj-input-message").value = "bang"
    find(dash, "nj-form-submit").click()
    assert client.status(2)["kwargs"] == {"message": "bang"}

    find(dash, "nj-form-close").click()
    assert dash.form is None and find_all(dash, "nj-form") == []


def test_form_takes_json_for_star_args_and_star_star_kwargs(make_dashboard):
    dash = make_dashboard()
    find(dash, "nj-dispatch-jobs-testing-echo").click()
    find(dash, "nj-input-args").value = '[1, "a"]'
    find(dash, "nj-input-kwargs").value = '{"k": [2]}'
    find(dash, "nj-form-submit").click()
    info = client.status(1)
    assert (info["args"], info["kwargs"]) == ([1, "a"], {"k": [2]})


@pytest.mark.parametrize("target, values, expected", [
    ("jobs.testing.typed", {"nj-input-items": "[1,", "nj-input-options": "{}",
                            "nj-input-name": "n", "nj-input-n": "1", "nj-input-x": "1"},
     "items: '[1,'"),
    ("jobs.extra.maybe", {"nj-input-n": "abc"}, "n: 'abc' is not accepted; expected int"),
    (PROCESS, {"nj-input-param1": "", "nj-input-param2": "b"}, "param1: required; enter a value"),
    ("jobs.testing.ok", {"nj-form-delay": "-5"}, "delay='-5' is not allowed"),
    ("jobs.testing.ok", {"nj-form-delay": "soon"}, "delay='soon' is not a duration"),
    ("jobs.testing.ok", {"nj-form-priority": "high"}, "priority: 'high' is not accepted"),
    ("jobs.testing.ok", {"nj-input-value": "abc"}, "value: 'abc' is not accepted; expected int"),
    ("jobs.testing.typed", {"nj-input-n": "abc", "nj-input-x": "1", "nj-input-name": "a",
                            "nj-input-items": "[]", "nj-input-options": "{}"},
     "n: 'abc' is not accepted; expected int"),
])
def test_bad_input_shows_an_error_in_the_form_and_stores_nothing(project, make_dashboard,
                                                                 target, values, expected):
    # Given a target whose int parameter is optional (so the form gives it a Text input)
    (project.root / "jobs" / "extra.py").write_text(
        'def maybe(n: int | None = None) -> int | None:\n    """Optional int."""\n    return n\n')
    project.write_whitelist(TEST_WHITELIST + "  jobs.extra: [maybe]\n")
    dash = make_dashboard()
    find(dash, f"nj-dispatch-{target.replace('.', '-')}").click()
    for css, value in values.items():
        find(dash, css).value = value

    # When the form is submitted, then the field shows the API's words (not the class name,
    # not a traceback) and nothing is stored
    find(dash, "nj-form-submit").click()
    form = dash.form
    field, _, words = expected.partition(": ") if ": " in expected else ("", "", expected)
    shown = " ".join(note.value for note in form.notes.values()) + form.message.value
    assert words.replace("'", "&#x27;") in shown or words in shown, shown
    if field:
        assert words in form.errors[field], form.errors
    assert "InvalidArgumentsError" not in shown and "Traceback" not in shown
    assert "field to correct" in form.message.value or "fields to correct" in form.message.value
    assert client.jobs().attrs["total"] == 0


def test_paging_through_twelve_jobs(make_dashboard):
    for i in range(12):
        client.dispatch("jobs.testing.ok", i)
    dash = make_dashboard()
    label = find(dash, "nj-page-label")
    assert label.value == "page 1 of 3 (12 jobs)"
    assert row_ids(dash) == [12, 11, 10, 9, 8]
    assert find(dash, "nj-prev-page").disabled and find(dash, "nj-first-page").disabled

    find(dash, "nj-next-page").click()
    assert label.value == "page 2 of 3 (12 jobs)"
    assert row_ids(dash) == [7, 6, 5, 4, 3]
    assert [row["id"] for row in find(dash, "nj-queue-table").rows] == [7, 6, 5, 4, 3]

    find(dash, "nj-last-page").click()
    assert label.value == "page 3 of 3 (12 jobs)" and row_ids(dash) == [2, 1]
    assert find(dash, "nj-next-page").disabled and find(dash, "nj-last-page").disabled
    find(dash, "nj-prev-page").click()
    assert row_ids(dash) == [7, 6, 5, 4, 3]
    find(dash, "nj-first-page").click()
    assert label.value == "page 1 of 3 (12 jobs)" and row_ids(dash) == [12, 11, 10, 9, 8]

    # When the page size changes, then paging starts again at page 1
    find(dash, "nj-next-page").click()
    find(dash, "nj-page-size").value = 10
    assert label.value == "page 1 of 2 (12 jobs)" and row_ids(dash)[0] == 12
    assert len(row_ids(dash)) == 10


def test_a_cancel_says_what_the_cli_says(make_dashboard):
    # Given a pending job's row, and the job cancelled meanwhile by someone else
    job_id = client.dispatch("jobs.testing.ok", 7)
    dash = make_dashboard()
    stale = find(dash, f"nj-cancel-{job_id}")
    assert client.cancel_said(job_id) == (True, "cancelled")
    # When its row's Cancel is clicked, then the row says there was nothing to cancel, as an
    # error, in the words of `notebookjobs cancel` (it said "had already finished", as done)
    stale.click()
    job, said, kind = stale.grid.last_outcome
    assert (job, kind) == (job_id, "error")
    assert f"job {job_id} is cancelled: nothing to cancel" in said


def test_status_filter(make_dashboard):
    for i in range(3):
        client.dispatch("jobs.testing.ok", i)
    client.cancel(2)
    dash = make_dashboard()
    status_filter = find(dash, "nj-status-filter")
    assert list(status_filter.options) == ["all", "pending", "running", "completed", "failed",
                                           "cancelled"]

    status_filter.value = "cancelled"
    assert row_ids(dash) == [2]
    assert find(dash, "nj-page-label").value == "page 1 of 1 (1 job)"
    status_filter.value = "pending"
    assert row_ids(dash) == [3, 1]
    status_filter.value = "all"
    assert row_ids(dash) == [3, 2, 1]


def test_cancel_then_retry_from_the_rows(make_dashboard):
    job_id = client.dispatch("jobs.testing.ok", 7)
    dash = make_dashboard()
    grid = find(dash, "nj-queue-table")
    assert [row["action"] for row in grid.rows] == ["cancel"]

    # When Cancel is clicked on the pending row, then the job is cancelled and the row says so
    find(dash, f"nj-cancel-{job_id}").click()
    assert client.status(job_id)["status"] == "cancelled"
    assert find(dash, f"nj-status-{job_id}").value == "cancelled"
    assert grid.last_outcome == (job_id, "cancelled", "ok")  # shown on its row, then fades
    assert [row["action"] for row in grid.rows] == ["retry"]

    # When Retry is clicked on the cancelled row, then a new pending job has the same arguments
    find(dash, f"nj-retry-{job_id}").click()
    assert grid.last_outcome == (job_id, "dispatched again as job 2", "ok")
    new = client.status(2)
    assert new["status"] == "pending" and new["args"] == [7]
    assert row_ids(dash) == [2, 1]
    assert find(dash, "nj-status-2").value == "pending"

    # And a message from the page that is not one of ours is dropped
    grid._message(grid, {"action": "delete", "id": 2}, [])
    grid._message(grid, {"action": "cancel", "id": "2"}, [])
    assert client.status(2)["status"] == "pending"

def test_details_show_the_error_of_a_failed_job(project, make_dashboard):
    # Given a job that failed (run in the foreground by the CLI, recorded in the queue)
    done = project.cli("run", "jobs.testing", "fail")
    assert done.returncode == 1, done.stderr
    dash = make_dashboard()
    assert find(dash, "nj-status-1").value == "failed"
    detail = find(dash, "nj-detail")
    assert detail.layout.display == "none"

    # When Details is clicked
    find(dash, "nj-details-1").click()

    # Then the detail view shows the traceback, and Close hides it again
    assert detail.layout.display is None
    body = find(dash, "nj-detail-body").value
    assert "job 1" in body and "failed" in body and "jobs.testing.fail" in body
    assert "nj-detail-error" in body and "ValueError: boom" in body
    assert "3/3" in body
    find(dash, "nj-detail-close").click()
    assert detail.layout.display == "none"


def test_details_show_output_and_result(project, make_dashboard):
    done = project.cli("run", "jobs.sample.SampleJobClass", "process", "x,y")
    assert done.returncode == 0, done.stderr
    dash = make_dashboard()
    find(dash, "nj-details-1").click()
    body = find(dash, "nj-detail-body").value
    assert "processing x and y" in body
    assert "nj-detail-result" in body and "x-y" in body


def test_a_refresh_error_is_shown_not_raised(project, make_dashboard):
    dash = make_dashboard()
    assert dash.error.value == ""

    # When whitelist.yaml becomes invalid, then refresh() shows the error and does not raise
    project.write_whitelist("allowed_jobs: [\n")
    assert dash.refresh() is False
    assert "ConfigError" in dash.error.value and "not valid YAML" in dash.error.value

    # And when it is fixed, the error goes away
    project.write_whitelist(TEST_WHITELIST)
    assert dash.refresh() is True
    assert dash.error.value == ""


def test_worker_section_shows_state_counts_and_worker_errors(make_dashboard, monkeypatch):
    client.dispatch("jobs.testing.ok", 1)
    client.dispatch("jobs.testing.ok", 2)
    client.cancel(1)

    def refuse(concurrency=None):
        raise WorkerError("cannot start the worker; see logs/worker.log")

    monkeypatch.setattr(client, "worker_status", lambda: {
        "running": False, "pid": None, "concurrency": None, "started_at": None, "jobs": []})
    monkeypatch.setattr(client, "start_worker", refuse)
    dash = make_dashboard()
    assert find(dash, "nj-worker-state").value == "worker: not running"
    counts = find(dash, "nj-counts").value
    assert "<b>1</b> pending" in counts and "<b>1</b> cancelled" in counts
    assert find(dash, "nj-worker-stop").disabled

    # When Start fails, then the WorkerError shows in the section
    find(dash, "nj-worker-start").click()
    assert "WorkerError: cannot start the worker" in find(dash, "nj-worker-message").value

    # When a worker runs, then its pid and concurrency show and Stop is enabled
    monkeypatch.setattr(client, "worker_status", lambda: {
        "running": True, "pid": 4242, "concurrency": 2, "started_at": None, "jobs": [5]})
    monkeypatch.setattr(client, "stop_worker", lambda: True)
    dash.refresh()
    state = find(dash, "nj-worker-state").value
    assert "running" in state and "pid 4242" in state and "concurrency 2" in state
    assert find(dash, "nj-worker-start").disabled and not find(dash, "nj-worker-stop").disabled
    find(dash, "nj-worker-stop").click()
    assert "worker stopped" in find(dash, "nj-worker-message").value


def test_live_refresh_while_shown_and_close_stops_it(make_dashboard):
    # Given a dashboard on the page, no worker (the queue's files are watched)
    dash = make_dashboard(autorefresh=True, refresh_interval=0.05)
    assert dash.refreshing
    dash._view_count = 1  # what the frontend reports when the widget is on the page

    # When a job is dispatched elsewhere, then the table shows it without any call from us
    job_id = client.dispatch("jobs.testing.ok", 1)
    wait_until(lambda: job_id in row_ids(dash), timeout=10, what="live refresh")
    assert find(dash, f"nj-status-{job_id}").value == "pending"

    # When the tab is hidden (the table's module reports it), then nothing is read any more
    dash.queue.grid.page_hidden = True
    pushes = dash.pushes
    other = client.dispatch("jobs.testing.ok", 2)
    wait_until(lambda: not dash._wake.is_set() and dash.pushes == pushes, timeout=5,
               what="the follower to wait")
    assert other not in row_ids(dash)
    # ... and when it shows again, what changed meanwhile is shown at once
    dash.queue.grid.page_hidden = False
    assert other in row_ids(dash)

    # When the dashboard is closed, then the thread stops and the widgets are closed
    table = find(dash, "nj-queue-table")
    dash.close()
    assert not dash.refreshing
    assert dash.comm is None and table.comm is None


@pytest.mark.slow
def test_an_idle_dashboard_sends_nothing_and_a_completion_is_pushed(project, start_worker,
                                                                    make_dashboard):
    """Issue 23: a shown dashboard on an idle queue makes no request to the worker for 10 s
    (counted by the worker), and a job's completion reaches it by the worker's push (the
    figure of how fast is in benchmarks/RESULTS.md)."""
    # Given a worker and a dashboard on show, settled on an idle queue
    start_worker()
    dash = make_dashboard(autorefresh=True)
    dash._view_count = 1
    # (its first watch is answered at once; the second one waits in the worker: counted there,
    # once it has arrived, which may be a while after the thread sent it on a busy machine)
    wait_until(lambda: dash.watches >= 2 and client.worker_status()["watching"] == 1,
               timeout=30, what="the dashboard's watch to wait in the worker")
    # When 10 s pass with nothing to show
    before = client.worker_status()["requests"]
    pushes, watches = dash.pushes, dash.watches
    time.sleep(10)  # the wait is the point: nothing may happen during it
    after = client.worker_status()["requests"]
    # Then the worker got no request but our two status reads (one counts itself)
    assert after - before == 1, (before, after)
    assert (dash.pushes, dash.watches) == (pushes, watches)

    # When a job is dispatched and completes, then each change is pushed: the dashboard
    # reads once per change it was told of, never on a timer
    job_id = client.dispatch("jobs.testing.ok", 5)
    wait_until(lambda: find(dash, f"nj-status-{job_id}").value == "completed"
               if job_id in row_ids(dash) else False, timeout=10, what="the completion")
    # (``pushes`` counts the refreshes a worker's answer to a watch caused: there is no other)
    assert dash.pushes > pushes, (dash.pushes, dash.watches)
    assert dash.error.value == ""


def test_table_rows_carry_progress_attempts_and_times():
    # Given a hand-built page: a running job with progress, a pending one waiting to retry
    from notebookjobs.dashboard.table import page_rows

    now = pd.Timestamp("2026-01-01 12:00:00", tz="UTC")
    base = {"target": "jobs.testing.sleep", "args": [5], "kwargs": {"key": "<k>"}, "priority": 1,
            "max_attempts": 3, "created_at": now - pd.Timedelta(seconds=100), "finished_at": None,
            "error": None, "result": None, "output": None, "after": None}
    seconds = pd.Timedelta(seconds=1)
    page = pd.DataFrame([
        {**base, "id": 2, "status": "pending", "attempts": 1, "run_at": now + 30 * seconds,
         "started_at": None, "progress": 0.9, "progress_message": "line 0400"},
        {**base, "id": 1, "status": "running", "attempts": 2, "run_at": now - 90 * seconds,
         "started_at": now - 75 * seconds, "progress": 0.42, "progress_message": "step 4"},
        {**base, "id": 3, "status": "completed", "attempts": 1, "run_at": now - 90 * seconds,
         "started_at": now - 75 * seconds, "progress": 1.0, "progress_message": "line 0400"},
    ])

    pending, running, completed = page_rows(page)

    # Then the running row has its progress, attempts a/max and its times in ms
    assert (running["progress"], running["progress_text"]) == (0.42, "step 4")
    assert running["attempts"] == "2/3" and running["action"] == "cancel"
    assert running["started"] - running["run_at"] == 15_000
    # A job waiting for its retry says so; a pending or finished job shows no stale progress
    assert pending["label"] == "retry 2/3" and pending["status"] == "pending"
    assert pending["progress"] is None and pending["progress_text"] == ""
    assert completed["progress"] is None and completed["progress_text"] == ""
    assert completed["action"] == "" and completed["label"] == "completed"
    assert running["arguments"] == '5, key="<k>"'  # text: the page escapes it when it draws


GATED_JOB = '''\
import pathlib, time
import notebookjobs as nj

def work(path: str) -> int:
    """Report half way, then wait for the gate file."""
    nj.progress(0.5, "half way")
    while not pathlib.Path(path).exists():
        time.sleep(0.01)
    return 1
'''


def test_rows_follow_a_real_worker(project, start_worker, make_dashboard):
    # Given a worker with one child, a job that stops half way, and a short job queued behind it
    (project.root / "jobs" / "gated.py").write_text(GATED_JOB)
    project.write_whitelist(TEST_WHITELIST + "  jobs.gated: [work]\n")
    worker = start_worker("--concurrency", "1")
    dash = make_dashboard()
    state = find(dash, "nj-worker-state").value
    assert "worker: running" in state and f"pid {worker.proc.pid}" in state
    assert find(dash, "nj-worker-start").disabled and not find(dash, "nj-worker-stop").disabled
    gated = client.dispatch("jobs.gated.work", str(project.root / "gate"))
    short = client.dispatch("jobs.testing.sleep", 0.1, key="short")

    # Then the running row shows its progress bar and can be cancelled
    def progress() -> object:
        dash.refresh()
        return [r for r in find(dash, "nj-queue-table").rows if r["progress"] == 0.5]
    [row] = wait_until(progress, what="the progress bar")
    assert find(dash, f"nj-status-{gated}").value == "running"
    assert row["progress_text"] == "half way"
    find(dash, f"nj-cancel-{gated}").click()
    assert client.status(gated)["status"] == "cancelled"

    # And the next job runs to completion; its details show the result
    wait_until(lambda: dash.refresh() and find(dash, f"nj-status-{short}").value == "completed",
               what="the short job to complete")
    find(dash, f"nj-details-{short}").click()
    assert "nj-detail-result" in find(dash, "nj-detail-body").value
    assert "<b>1</b> completed" in find(dash, "nj-counts").value


def test_start_and_stop_the_worker_from_the_dashboard(make_dashboard):
    dash = make_dashboard()
    assert find(dash, "nj-worker-state").value == "worker: not running"
    find(dash, "nj-worker-start").click()
    try:
        assert "worker running (pid" in find(dash, "nj-worker-message").value
        assert find(dash, "nj-worker-state").value.startswith("worker: running")
        find(dash, "nj-worker-stop").click()
        assert "worker stopped" in find(dash, "nj-worker-message").value
        assert find(dash, "nj-worker-state").value == "worker: not running"
    finally:
        client.stop_worker()  # returns False at once when the test stopped it already
