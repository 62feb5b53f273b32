"""A Job shown live (SPEC §15): its line, the follower that updates it until the job ends, and
what a real Jupyter kernel shows for a Job, ``%jobs dispatch`` and ``nj.notify``."""

from __future__ import annotations

from datetime import timedelta

import ipywidgets as widgets
import nbformat
from nbclient import NotebookClient

import notebookjobs as nj
from notebookjobs import live, toasts
from notebookjobs.models import utcnow
from support import wait_until

WIDGET = "application/vnd.jupyter.widget-view+json"


def info(**fields) -> dict:
    now = utcnow()
    base = {"id": 7, "target": "jobs.sample.slow", "status": "running", "attempts": 1,
            "max_attempts": 4, "run_at": now, "created_at": now,
            "started_at": now - timedelta(seconds=3.2), "finished_at": None, "progress": 0.4,
            "progress_message": "step 4/10", "error": None, "result_type": None, "result": None}
    return base | fields


def test_the_line_says_what_the_job_is_doing():
    now = utcnow()
    assert live.line_text(info(), now) == (
        "Job 7 jobs.sample.slow: running · attempt 1/4 · 40% · step 4/10 · 3.2 s")
    html = live.line_html(info(), now)
    assert "data-status='running'" in html and "nj-job-bar" in html and "width:40%" in html
    pending = info(status="pending", attempts=0, started_at=None, progress=None,
                   progress_message=None, run_at=now + timedelta(seconds=55))
    assert live.line_text(pending, now) == "Job 7 jobs.sample.slow: pending · starts in 55 s"
    failed = info(status="failed", attempts=4, finished_at=now, progress=None,
                  error="Traceback ...\nValueError: boom\n")
    assert live.line_text(failed, now).endswith("failed · 4 attempts · 3.2 s · ValueError: boom")
    done = info(status="completed", started_at=now - timedelta(seconds=1),
                finished_at=now - timedelta(seconds=0.988), result_type="DataFrame")
    assert live.line_text(done, now) == (
        "Job 7 jobs.sample.slow: completed · 1 attempt · 12 ms · result: DataFrame")
    assert toasts.message(done) == "Job 7 jobs.sample.slow completed in 12 ms"
    assert toasts.message(failed) == "Job 7 jobs.sample.slow failed: ValueError: boom"


def test_the_follower_updates_a_line_until_the_job_ends(project, start_worker):
    # Given a line showing a job that is pending, and a follower of it
    job = nj.dispatch("jobs.sample.slow", seconds=1, steps=4)
    line = widgets.HTML(live.line_html(nj.status(job)))
    ended: list[dict] = []
    follower = live.Follower(poll_s=0.05)
    follower.follow(job, line=line, on_end=ended.append)
    assert "data-status='pending'" in line.value
    # When a worker runs the job, then the line shows it running with its progress, then
    # completed, and the follower calls back once and lets it go
    start_worker()
    wait_until(lambda: "data-status='running'" in line.value and "step" in line.value,
               what="the line to show the job running with its progress")
    wait_until(lambda: "data-status='completed'" in line.value, what="the line to complete")
    wait_until(lambda: ended, what="the end callback")
    assert [e["status"] for e in ended] == ["completed"] and follower.following() == []
    follower.stop()


def run_in_kernel(cells: list[str]) -> list[list[dict]]:
    """Run ``cells`` in a real IPython kernel (its environment this test's project); the
    outputs of each cell."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    return [cell.outputs for cell in nb.cells]


def test_a_kernel_shows_a_job_as_a_live_line_and_follows_it_for_notifications(project):
    outputs = run_in_kernel([
        "import notebookjobs as nj\nfrom notebookjobs import live\n"
        "job = nj.dispatch('jobs.testing.ok', 1, delay=3600)\njob",
        "%load_ext notebookjobs\n%jobs dispatch jobs.testing.ok 2 --delay 3600",
        "print(live.FOLLOWER.following())",
        "nj.notify(False)\nquiet = nj.dispatch('jobs.testing.ok', 3, delay=3600)\n"
        "print(live.FOLLOWER.following())",
        "nj.notify(True)\nprint(repr(quiet), str(quiet), nj.result is not None)",
    ])
    # Then a Job as a cell's value is the widget, with its line as the text
    for cell in outputs[:2]:
        data = cell[-1]["data"]
        assert WIDGET in data, cell
        assert data["text/plain"].startswith("<Job ") and ": pending · starts in" in \
            data["text/plain"]
    # And the jobs this kernel dispatched are followed (for their live lines and toasts), the
    # one dispatched with notifications off is not
    assert outputs[2][0]["text"].strip() == "[1, 2]"
    assert outputs[3][0]["text"].strip() == "[1, 2]"
    assert outputs[4][0]["text"].startswith("<Job 3 jobs.testing.ok: pending") and \
        outputs[4][0]["text"].split()[-2:] == ["3", "True"]
