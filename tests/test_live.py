"""A Job shown live (SPEC §15): its line, the follower that updates it until the job ends, and
what a real Jupyter kernel shows for a Job, ``%jobs dispatch`` and ``nj.notify``."""

from __future__ import annotations

from datetime import timedelta

import ipywidgets as widgets
import nbformat
from nbclient import NotebookClient

import notebookjobs as nj
from notebookjobs.model.records import utcnow
from notebookjobs.notebook import live, toasts
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


def test_jobs_that_end_together_make_one_toast_that_names_the_failures():
    now = utcnow()
    ok = [info(id=n, status="completed", finished_at=now) for n in (3, 4, 5)]
    boom = info(id=9, status="failed", finished_at=now, error="Traceback ...\nValueError: boom\n")
    bang = info(id=6, status="failed", finished_at=now, error="KeyError: 'x'")
    gone = info(id=8, status="cancelled", finished_at=now)
    # One job: its own line; a success closes itself, a failure stays until closed
    assert toasts.toast(ok[:1]) == ("Job 3 jobs.sample.slow completed in 3.2 s", "success",
                                    toasts.AUTO_CLOSE_MS)
    assert toasts.toast([boom])[1:] == ("error", False)
    # Several: how many ended and how, each failure by id with its error, kept on screen
    assert toasts.toast([*ok, boom, gone]) == (
        "5 jobs ended: 3 completed, 1 failed, 1 cancelled (job 9: ValueError: boom)",
        "error", False)
    assert toasts.toast([boom, *ok, bang])[0] == (
        "5 jobs ended: 3 completed, 2 failed (jobs 6, 9: KeyError: 'x'; and 1 other errors)")
    assert toasts.toast([*ok, gone])[1:] == ("warning", toasts.AUTO_CLOSE_MS)


def test_a_batch_is_shown_once_jobs_stop_ending_or_after_the_longest_gather():
    # Given endings half a second apart, the batch waits for a quiet QUIET_S after the last
    batch = toasts.Batch(quiet_s=2.0, max_s=15.0)
    assert batch.due() is None and batch.take(100.0) == []
    for t in (0.0, 0.5, 1.0):
        batch.add({"id": int(t * 10)}, t)
    assert batch.take(2.9) == []
    assert [e["id"] for e in batch.take(3.0)] == [0, 5, 10] and batch.due() is None
    # Given jobs that never stop ending, a batch is shown MAX_GATHER_S after its first ending
    for t in range(20):
        batch.add({"id": t}, 100.0 + t)
        shown = batch.take(100.0 + t)
        if shown:
            break
    assert t == 15 and len(shown) == 16


def test_endings_in_a_kernel_become_one_toast_per_batch():
    # Given the notifications of a kernel, shown into a list (where Lab would show them)
    shown: list[toasts.Toast] = []
    notes = toasts._Toasts(show=lambda *toast: shown.append(toast),
                           batch=toasts.Batch(quiet_s=0.3))
    now = utcnow()
    # When three jobs end one after the other, as the follower reports them
    for job_id in (1, 2, 3):
        notes.ended(info(id=job_id, status="completed", finished_at=now))
    # Then one toast says so, once
    wait_until(lambda: shown, timeout=10, what="the toast")
    assert shown == [("3 jobs ended: 3 completed", "success", toasts.AUTO_CLOSE_MS)]
    # And with notifications off, nothing is shown
    notes.enabled = False
    notes.show([info(id=5, status="failed", finished_at=now)])
    assert len(shown) == 1


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
        "import notebookjobs as nj\nfrom notebookjobs.notebook import live\n"
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
