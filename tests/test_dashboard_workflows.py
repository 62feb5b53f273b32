"""The dashboard's part of workflows (SPEC §16, §17), without a browser: what a job waits for in
the queue and its details, the schedule list, and notebooks with their Dispatch form."""

from __future__ import annotations

import nbformat
from test_dashboard import find, make_dashboard  # noqa: F401 - the fixture, by name

import notebookjobs as nj

NOTEBOOK = "notebooks/report.ipynb"


def test_the_queue_and_details_show_what_a_job_waits_for(make_dashboard):  # noqa: F811
    # Given a job and one that waits for it, with a key
    first = nj.dispatch("jobs.testing.ok", 1)
    second = nj.dispatch("jobs.testing.ok", 2, after=[first], unique="the-second")
    dash = make_dashboard()
    # Then the table has an "after" column with the ids it waits for
    rows = {row["id"]: row for row in find(dash, "nj-queue-table").rows}
    assert rows[second]["after"] == str(first) and rows[first]["after"] == ""
    # And its details say it, with its unique key
    find(dash, f"nj-details-{second}").click()
    body = find(dash, "nj-detail-body").value
    assert f"waits for</td><td>{first}</td>" in body
    assert "unique key</td><td>the-second</td>" in body


def test_the_schedule_list_shows_next_run_and_last_job(project, make_dashboard):  # noqa: F811
    # Given no schedule, the section is hidden
    dash = make_dashboard()
    assert find(dash, "nj-schedules").layout.display == "none"
    # When whitelist.yaml gets two schedules, one disabled, one whose arguments do not fit
    project.write_whitelist("allowed_jobs: {jobs.testing: [ok]}\nschedules:\n"
                            "  nightly: {target: jobs.testing.ok, cron: '0 2 * * *', "
                            "timezone: Europe/Paris}\n"
                            "  broken: {target: jobs.testing.ok, every: 1h, args: [1, 2], "
                            "enabled: false}\n")
    dash.refresh()
    # Then they are listed with when they run and what is wrong
    section = find(dash, "nj-schedules")
    assert section.layout.display is None
    table = find(dash, "nj-schedules-table").value
    assert "cron 0 2 * * * (Europe/Paris)" in table and "every 1h, disabled" in table
    assert "too many positional arguments" in table
    # And once whitelist.yaml has none again, the section hides
    project.write_whitelist("allowed_jobs: {jobs.testing: [ok]}\n")
    dash.refresh()
    assert section.layout.display == "none"


def test_a_notebook_is_listed_with_a_dispatch_form_for_its_parameters(project,
                                                                      make_dashboard):  # noqa: F811
    # Given an allowed notebook with parameters
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("region = 'EU'\nn = 3\nfull = False")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Report"), cell]
    (project.root / "notebooks").mkdir()
    nbformat.write(nb, project.root / NOTEBOOK)
    project.write_whitelist(f"allowed_jobs: {{jobs.testing: [ok]}}\n"
                            f"allowed_notebooks: {{{NOTEBOOK}: {{}}}}\n")
    dash = make_dashboard()
    # Then the Jobs section lists it, and its Dispatch form has an input per parameter
    find(dash, "nj-dispatch-notebooks-report-ipynb").click()
    form = dash.form
    assert form is not None and list(form.inputs) == ["region", "n", "full"]
    # (numbers are Text inputs, coerced by the notebook parameter's type, as for functions)
    assert type(form.inputs["n"]).__name__ == "Text" and form.inputs["n"].value == "3"
    # When the form is filled in and submitted
    form.inputs["region"].value = "US"
    form.inputs["full"].value = True
    find(dash, "nj-form-submit").click()
    # Then the job is queued with those parameters (the untouched one left to the notebook)
    info = nj.status(form.last_job_id)
    assert (info["target"], info["args"], info["kwargs"]) == (
        NOTEBOOK, [], {"region": "US", "full": True})
